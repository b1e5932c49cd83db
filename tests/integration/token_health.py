#!/usr/bin/env python3
"""A Bearer token near or past its exp in the health verdict: WARNING
token_expiring within a day of exp, CRITICAL once exp has passed (before
any upload meets a 401), cleared by a reload that reads a fresh token;
the mirror's token counts as much as the upload's, and the sooner of the
two is the one named. status --json, check and the log say it; no token
ever appears in them. Tokens are made here, at test time."""
import json
import os
import signal
import time

from hstest import TAP, Env, hsserver_client, secrets_in, state_texts, write_secret

tap = TAP()
now = int(time.time())
week = hsserver_client.make_jwt(now + 7 * 86400, "upload")
soon_at = now + 2 * 3600
soon = hsserver_client.make_jwt(soon_at, "upload")
expired_at = now - 3600
expired = hsserver_client.make_jwt(expired_at, "upload")
records_week = hsserver_client.make_jwt(now + 7 * 86400, "records")
records_soon_at = now + 3600
records_soon = hsserver_client.make_jwt(records_soon_at, "records")
tokens = [week, soon, expired, records_week, records_soon]


def token_reason(env):
    code, out, _ = env.cli("status", "--json", check=False)
    printed.append(out)
    for r in json.loads(out or "{}").get("health", {}).get("reasons", []):
        if r["code"] == "token_expiring":
            return r
    return None


def wait_reason(env, want, what):
    """Waits until the token_expiring reason is want(reason) (None: absent)."""
    got = []

    def seen():
        got[:] = [token_reason(env)]
        return want(got[0])
    ok = env.wait_until(seen, 30, what)
    return ok, got[0] if got else None


printed = []
with Env(tap, server_args=["--upload-token", soon, "--records-token", records_week]) as env:
    upload_file = os.path.join(env.dir, "upload.token")
    records_file = os.path.join(env.dir, "records.token")
    write_secret(upload_file, soon)
    write_secret(records_file, records_week)
    env.write_config({"auth": "bearer", "token_file": upload_file},
                     mirror={"base_url": env.server.records_base, "auth": "bearer",
                             "token_file": records_file, "page_size": 100})

    with env.daemon() as d:
        # ---- within a day: WARNING, since exp less a day ---------------------
        ok, r = wait_reason(env, lambda r: r is not None, "the token_expiring reason")
        tap.ok(ok and r["state"] == "WARNING", "an upload token 2 h from exp: WARNING", r)
        tap.ok(r is not None and r["text"].startswith("upload token expires in 1h 5"),
               "its text says whose and how long", r)
        tap.eq(r["since"] if r else None, (soon_at - 86400) * 1000,
               "since the moment it came within a day of exp")
        code, out, err = env.cli("check", check=False)
        printed.append(out + err)
        tap.eq(code, 1, "check exits 1 (WARNING)")
        tap.ok(out.startswith("HEALSYNC WARNING - upload token expires in 1h 5"),
               "and prints the reason", out)
        tap.ok(env.wait_until(lambda: "health WARNING: upload token expires in" in d.output(),
                              30, "the verdict line"),
               "one journal line gives the new verdict", d.output()[-2000:])

        # ---- a fresh token in the file and a reload: all well -----------------
        env.server.config(upload_token=week)
        write_secret(upload_file, week)
        d.proc.send_signal(signal.SIGHUP)
        ok, r = wait_reason(env, lambda r: r is None, "the reason to clear")
        tap.ok(ok, "a reload that reads a week-long token clears it", r)
        tap.eq(env.cli("check", check=False)[0], 0, "check exits 0 again")

        # ---- the mirror's token counts too -----------------------------------
        env.server.config(records_token=records_soon)
        write_secret(records_file, records_soon)
        d.proc.send_signal(signal.SIGHUP)
        ok, r = wait_reason(env, lambda r: r is not None, "the mirror's token reason")
        tap.ok(ok and r["state"] == "WARNING" and r["text"].startswith("mirror token expires in"),
               "a mirror token an hour from exp: WARNING naming the mirror", r)

        # ---- past exp: CRITICAL before any 401 -------------------------------
        write_secret(upload_file, expired)
        d.proc.send_signal(signal.SIGHUP)
        ok, r = wait_reason(env, lambda r: r is not None and r["state"] == "CRITICAL",
                            "the CRITICAL reason")
        tap.ok(ok and r["text"] == "upload token expired 1h 0m ago",
               "an upload token past exp: CRITICAL, the sooner of the two named", r)
        tap.eq(r["since"] if r else None, expired_at * 1000, "since its exp")
        code, out, err = env.cli("check", check=False)
        printed.append(out + err)
        tap.eq(code, 2, "check exits 2 (CRITICAL)")
        auth = env.server.admin("GET", "/stats").get("auth", {}).get("upload", {})
        tap.ok(not auth.get("refused") and not auth.get("expired"),
               "with no request refused by the server yet", auth)
        printed.append(d.output())
    printed.append(d.output())
    tap.eq(secrets_in(tokens, "\n".join(printed + state_texts(env))), [],
           "no token appears in any output or in the state folder")

tap.finish()
