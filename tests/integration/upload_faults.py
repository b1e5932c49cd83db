#!/usr/bin/env python3
"""The upload engine against every fault the reference server can make:
transient errors are retried and the file lands once; permanent ones leave
a dead job with the server's reason; hostile answers never crash it."""
import json
import os
import signal
import time

from hstest import TAP, Env, write_random

tap = TAP()


def one_file(env, name, size=3000, seed=0):
    data = os.urandom(size) if seed is None else bytes((i * 7 + seed) % 251 for i in range(size))
    env.write_file(name, data)
    env.enqueue(name)
    return name



with Env(tap, upload={"max_attempts": 3}) as env:
    with env.daemon() as d:
        # Transient faults, each answered once or twice, then success.
        for kind, fault, count in [("presign", "500", 2), ("put", "503:1", 1),
                                   ("complete", "drop", 1), ("put", "disconnect", 1),
                                   ("presign", "malformed_json", 2), ("presign", "missing_fields", 1),
                                   ("presign", "wrong_types", 1), ("complete", "huge_body", 1),
                                   ("put", "slow:300", 1), ("presign", "expire_url", 1),
                                   ("presign", "429:1", 1)]:
            env.server.admin("POST", "/faults", {"kind": kind, "fault": fault, "count": count})
            name = one_file(env, "t-%s-%s.pdf" % (kind, fault.replace(":", "_")))
            ok = env.wait_until(lambda: env.job(name).get("state") == "done", 60,
                                name + " done")
            tap.ok(ok and env.stored(name) and env.stored(name)["complete_count"] == 1,
                   "%s fault %s x%d: retried, stored once" % (kind, fault, count),
                   "%r\n%s" % (env.job(name), d.output()[-3000:]))

        # Retry-After as an HTTP-date.
        env.server.config(retry_after_style="date")
        env.server.admin("POST", "/faults", {"kind": "presign", "fault": "429:1", "count": 1})
        name = one_file(env, "t-429-date.pdf")
        tap.ok(env.wait_until(lambda: env.job(name).get("state") == "done", 30),
               "429 with an HTTP-date Retry-After is waited out")

        # Permanent: 403 scope and 400 validation make the job dead with a reason.
        for fault, want in [("status:403:forbidden", "forbidden"),
                            ("status:400:validation_error", "validation_error")]:
            env.server.admin("POST", "/faults", {"kind": "presign", "fault": fault, "count": 1})
            name = one_file(env, "t-dead-%s.pdf" % want)
            ok = env.wait_until(lambda: env.job(name).get("state") == "dead", 30)
            j = env.job(name)
            tap.ok(ok and want in (j.get("last_error") or ""),
                   "%s: job dead with the server's reason" % fault, j)
        tap.ok("failed permanently" in d.output(), "dead jobs are logged as such")

        # A fault that outlasts every retry: failed, then dead after max_attempts.
        env.server.admin("POST", "/faults", {"kind": "presign", "fault": "malformed_json",
                                             "count": 1000})
        name = one_file(env, "t-hostile.pdf")
        ok = env.wait_until(lambda: env.job(name).get("state") in ("failed", "dead"), 60)
        j = env.job(name)
        tap.ok(ok and "malformed JSON" in (j.get("last_error") or ""),
               "endless malformed JSON: job failed with a clear error", j)
        env.server.admin("DELETE", "/faults")
        code, out, _ = env.cli("retry", str(j.get("id")), check=False)
        tap.ok(env.wait_until(lambda: env.job(name).get("state") == "done", 30),
               "retry after the server recovered: done", out)

        # A vanished file: gone, not failed.
        path = env.write_file("vanish.pdf", b"x" * 100)
        env.enqueue("vanish.pdf")
        os.unlink(path)
        ok = env.wait_until(lambda: env.job("vanish.pdf").get("state") in ("gone", "done"), 30)
        j = env.job("vanish.pdf")
        tap.ok(j.get("state") in ("gone", "done"), "a vanished file is gone (or was sent before)", j)

        # 401: uploads pause, one log line; a reload with the right key resumes.
        env.server.config(upload_key="rotated-key-456")
        name = one_file(env, "t-401.pdf")
        time.sleep(2)
        tap.ok(env.job(name).get("state") in ("queued", "active"),
               "with a rejected key the job waits, not fails", env.job(name))
        out = d.output()
        tap.eq(out.count("rejected the API key"), 1, "the rejection is logged once")
        tap.ok("check %s;" % env.upload_key_file in out, "naming the key file", out[-1500:])
        with open(env.upload_key_file, "w") as f:
            f.write("rotated-key-456\n")
        d.proc.send_signal(signal.SIGHUP)
        tap.ok(env.wait_until(lambda: env.job(name).get("state") == "done", 30),
               "after SIGHUP with the new key the job is done", d.output()[-2000:])
    tap.eq(d.proc.returncode, 0, "daemon exits 0")

# A stalled upload body: the stall timeout ends the transfer, the retry lands.
with Env(tap, upload={"bandwidth": "2MiB/s", "stall_timeout": "2s"}) as env:
    write_random(env.path("stall.bin"), 6 * 1024 * 1024, seed=5)
    env.server.admin("POST", "/faults", {"kind": "put", "fault": "stall:10", "count": 1})
    env.enqueue("stall.bin")
    with env.daemon() as d:
        ok = env.wait_until(lambda: env.stored("stall.bin") is not None, 60, "stall.bin stored")
        tap.ok(ok, "a stalled PUT is abandoned after stall_timeout and retried",
               d.output()[-3000:])

# A file that changes while it uploads is never stored half-old, half-new.
with Env(tap, upload={"bandwidth": "4MiB/s"}) as env:
    write_random(env.path("grow.bin"), 12 * 1024 * 1024, seed=3)
    env.enqueue("grow.bin")
    with env.daemon() as d:
        env.wait_until(lambda: env.server.admin("GET", "/stats")["bytes_received"] > 1_000_000, 30,
                       "upload under way")
        # The status is refreshed once a second: wait for one that has
        # seen bytes go out and the API's limits.
        def status():
            return json.loads(env.cli("status", "--json")[1])["daemon"] or {}

        def moving_in(st):
            return [t for t in st.get("transfers", []) if t.get("sent_bytes", 0) > 0]
        env.wait_until(lambda: moving_in(status()) and status().get("rate_limits"), 30,
                       "a status with the transfer in flight")
        st = status()
        moving = moving_in(st)
        tap.ok(moving and moving[0]["remote_name"] == "grow.bin",
               "status --json shows the transfer in flight with bytes sent", st)
        tap.eq(st.get("bandwidth", {}).get("limit_bytes_per_s"), 4 * 1024 * 1024,
               "status --json shows the bandwidth limit in force")
        tap.ok(any(r.get("api") == "upload" for r in st.get("rate_limits", [])),
               "status --json lists the upload API's rate-limit state", st)
        code, out, _ = env.cli("status")
        tap.ok("uploading 1 file" in out and "limit 4.0 MiB/s" in out,
               "status prints a readable summary", out)
        write_random(env.path("grow.bin"), 12 * 1024 * 1024, seed=4)
        ok = env.wait_until(lambda: env.stored("grow.bin") is not None, 60, "new content stored")
        tap.ok(ok, "a file changed during upload is stored with its new content", d.output()[-3000:])
        files = [f for f in env.server_files() if f["filename"] == "grow.bin"]
        tap.eq(len(files), 1, "only one version of it was ever completed")
tap.finish()
