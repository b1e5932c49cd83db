#!/usr/bin/env python3
"""Bearer tokens (auth = "bearer", token_file) for both APIs: uploads and a
mirror run carry Authorization: Bearer instead of X-API-Key; a token
rotated in its file is taken up at the first 401, without a reload; a
token the server refuses and the file has not changed pauses uploads
until a reload reads the new one; an expired token's 401 line says when it
expired; a token within a day of its exp is warned about; and no token
ever appears in what healsync prints. Tokens are made here, at test time."""
import json
import os
import signal
import time

import mirrorlib
from hstest import TAP, Env, hsserver_client, secrets_in, state_texts, write_secret

# Times in log lines are local: make them predictable.
os.environ["TZ"] = "UTC"

tap = TAP()
now = int(time.time())
week = hsserver_client.make_jwt(now + 7 * 86400, "upload")
records_token = hsserver_client.make_jwt(now + 7 * 86400, "records")
rotated = hsserver_client.make_jwt(now + 8 * 86400, "upload")
third = hsserver_client.make_jwt(now + 9 * 86400, "upload")
soon = hsserver_client.make_jwt(now + 2 * 3600, "upload")
expired_at = now - 3600
expired = hsserver_client.make_jwt(expired_at, "records")
tokens = [week, records_token, rotated, third, soon, expired]


def utc(t):
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


def auth_stats(env, api):
    return env.server.admin("GET", "/stats").get("auth", {}).get(api, {})


with Env(tap, server_args=["--upload-token", week, "--records-token", records_token]) as env:
    upload_token = os.path.join(env.dir, "upload.token")
    records_file = os.path.join(env.dir, "records.token")
    write_secret(upload_token, week)
    write_secret(records_file, records_token)
    env.write_config({"auth": "bearer", "token_file": upload_token},
                     mirror={"base_url": env.server.records_base, "auth": "bearer",
                             "token_file": records_file, "page_size": 100})
    env.mirror_settings = {}
    printed = []

    # ---- check-config ------------------------------------------------------
    code, out, err = env.cli("check-config", check=False)
    printed.append(out + err)
    tap.eq(code, 0, "check-config accepts auth = \"bearer\" with a token_file")
    tap.ok('auth = "bearer";' in out and 'token_file = "%s";' % upload_token in out
           and 'token = "<redacted>";' in out, "and shows it, the token redacted", out)

    os.chmod(records_file, 0o644)
    code, out, err = env.cli("check-config", check=False)
    printed.append(out + err)
    tap.eq(code, 78, "a token file others can read is refused")
    tap.ok("mirror.token_file: %s: is readable by others" % records_file in err,
           "naming the setting and the file", err)
    os.chmod(records_file, 0o600)

    # ---- the mirror with a token -------------------------------------------
    code, out, err = mirrorlib.run(env)
    printed.append(out + err)
    tap.eq(code, 0, "a mirror run with a Bearer token succeeds")
    got = auth_stats(env, "records")
    tap.ok(got.get("bearer", 0) > 0 and not got.get("api-key"),
           "the Records API saw only the token", got)

    # An expired token: the run fails with a line that says when it expired.
    env.server.config(records_token=expired)
    write_secret(records_file, expired)
    code, out, err = mirrorlib.run(env)
    printed.append(out + err)
    tap.ok(code != 0, "a mirror run with an expired token fails", (code, err))
    want = ("the records API rejected the token (HTTP 401); the token expired at %s; "
            "put a new one in %s" % (utc(expired_at), records_file))
    tap.ok(want in err, "the 401 line names the expiry time and the file", err)

    with env.daemon() as d:
        # ---- uploads with a token ------------------------------------------
        env.write_file("first.pdf", b"first file\n")
        env.enqueue("first.pdf")
        tap.ok(env.wait_jobs(done=1), "an upload with a Bearer token is done")
        got = auth_stats(env, "upload")
        tap.ok(got.get("bearer", 0) > 0 and not got.get("api-key"),
               "the Upload API saw only the token", got)
        out = d.output()
        tap.ok("the token in %s expired at %s" % (records_file, utc(expired_at)) in out,
               "the daemon warns at start about the mirror's expired token", out[-2000:])

        # ---- rotation: the server moves on, the file follows, no reload ----
        env.server.config(upload_token=rotated)
        write_secret(upload_token, rotated)
        env.write_file("second.pdf", b"second file\n")
        env.enqueue("second.pdf")
        tap.ok(env.wait_jobs(done=2), "after a 401 the rotated token in the file is used")
        out = d.output()
        tap.ok("upload API rejected the token (HTTP 401); %s holds a new one, trying it"
               % upload_token in out, "one line says the new token is tried", out[-2000:])
        tap.ok("uploads paused" not in out, "and uploads never paused", out[-2000:])

        # ---- a token the server no longer takes, not yet replaced -----------
        env.server.config(upload_token=third)
        env.write_file("third.pdf", b"third file\n")
        env.enqueue("third.pdf")
        tap.ok(env.wait_until(lambda: "uploads paused" in d.output(), 60, "the auth pause"),
               "a refused token whose file did not change pauses uploads")
        out = d.output()
        tap.ok("upload API rejected the token (HTTP 401); check %s; uploads paused"
               % upload_token in out, "naming the token file", out[-2000:])
        status = json.loads(env.cli("status", "--json")[1])
        printed.append(json.dumps(status))
        tap.eq(env.job("third.pdf").get("state"), "queued", "the job waits in the queue")
        write_secret(upload_token, third)
        d.proc.send_signal(signal.SIGHUP)
        tap.ok(env.wait_jobs(done=3), "a reload reads the new token and the job is done")

        # ---- a token a day from its exp --------------------------------------
        env.server.config(upload_token=soon)
        write_secret(upload_token, soon)
        d.proc.send_signal(signal.SIGHUP)
        tap.ok(env.wait_until(lambda: "expires at %s, in 2 h" % utc(now + 2 * 3600) in d.output(),
                              30, "the day-ahead warning"),
               "a token that expires within a day is warned about", d.output()[-2000:])
        code, out, err = env.cli("check-config", check=False)
        printed.append(out + err)
        tap.eq(code, 0, "check-config passes with tokens about to expire, or expired")
        tap.ok("upload.token_file: the token in %s expires at %s, in 2 h"
               % (upload_token, utc(now + 2 * 3600)) in err
               and "mirror.token_file: the token in %s expired at %s"
               % (records_file, utc(expired_at)) in err, "and says so for each", err)

        # ---- an expired upload token ---------------------------------------
        env.server.config(upload_token=expired)
        write_secret(upload_token, expired)
        d.proc.send_signal(signal.SIGHUP)
        env.write_file("fourth.pdf", b"fourth file\n")
        env.enqueue("fourth.pdf")
        want = ("upload API rejected the token (HTTP 401); the token expired at %s; "
                "put a new one in %s; uploads paused" % (utc(expired_at), upload_token))
        tap.ok(env.wait_until(lambda: want in d.output(), 60, "the expired-token line"),
               "an expired token's 401 line says when it expired", d.output()[-2000:])
        printed.append(env.cli("jobs", "--json")[1])
        printed.append(env.cli("status")[1])
    tap.eq(d.proc.returncode, 0, "the daemon exits 0")
    printed.append(d.output())
    tap.eq(secrets_in(tokens, "\n".join(printed)), [], "no token appears in any output")
    tap.eq(secrets_in(tokens, "\n".join(state_texts(env))), [],
           "nor in the state folder (status.json, queue)")

tap.finish()
