#!/usr/bin/env python3
"""The mirror inside `healsync run`: a first run soon after start when
none has finished yet, no run at start when the last one is recent, one
run soon after start when a scheduled time was missed while the daemon
was down, a failed run retried (soon after a reload, which is most often
the fix), status showing the last and next run, and no patient data in the
daemon's log."""
import json
import signal
import sqlite3
import time

import mirrorlib
from hstest import TAP, Env

tap = TAP()

with Env(tap, server_args=["--patients", "180", "--id-digits", "20"]) as env:
    mirrorlib.configure(env, schedule="0 2 * * *", jitter="0s", page_size=50)

    def status():
        return json.loads(env.cli("status", "--json")[1])

    def ok_runs():
        try:
            return [r for r in mirrorlib.runs(env) if r["status"] == "ok"]
        except sqlite3.Error:
            return []

    # No database yet: "no mirror run yet" is not an error, and its text
    # is freed (LeakSanitizer fails the command otherwise).
    code, _, err = env.cli("status", check=False)
    # (no daemon runs: the verdict is CRITICAL, and status exits 2)
    tap.ok(code == 2 and "LeakSanitizer" not in err, "status before the first run", err)

    with env.daemon() as d:
        tap.ok(env.wait_until(lambda: len(ok_runs()) == 1, 60, "first run"),
               "with no finished run yet, the daemon mirrors soon after start", d.output())
        mirrorlib.compare(tap, env, "the daemon's first run")
        env.wait_until(lambda: (status().get("mirror") or {}).get("next_at", 0) > 0, 10,
                       "the daemon's report of the next run")
        st = status()
        m = st.get("mirror") or {}
        tap.ok((m.get("last_success") or {}).get("records") == 180,
               "status --json shows the last successful run", m)
        nxt = m.get("next_at", 0) / 1000
        lt = time.localtime(nxt)
        tap.ok(nxt > time.time() and (lt.tm_hour, lt.tm_min) == (2, 0),
               "and the next run at 02:00 local time", m)
        code, out, _ = env.cli("status")
        tap.ok("mirror: last run 1 ok" in out and "next " in out and "02:00" in out,
               "status prints the last and the next run", out)
        tap.ok("next mirror 02:00" in (st.get("daemon") or {}).get("summary", ""),
               "the summary line names the next run", st.get("daemon"))
        d.proc.send_signal(signal.SIGINT)  # Ctrl-C
        d.proc.wait(60)
    # The daemon started with no finished run; LeakSanitizer (the tests'
    # build) turns a leak into a failed exit.
    tap.ok(d.proc.returncode == 0 and "LeakSanitizer" not in d.output(),
           "the daemon stops cleanly, nothing leaked (exit %s)" % d.proc.returncode,
           d.output()[-3000:])
    first_log = d.output()

    # Restarted soon after: the last run is recent, nothing runs at start.
    with env.daemon() as d:
        time.sleep(8)
        tap.eq(len(mirrorlib.runs(env)), 1, "a restart after a recent run does not mirror again")

    # The last success began two days ago: the 02:00 run in between was
    # missed, so one run comes soon after start.
    db = sqlite3.connect(mirrorlib.db_path(env), isolation_level=None)
    two_days = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - 2 * 86400))
    db.execute("UPDATE mirror_runs SET started_at = ?1, ended_at = ?1", (two_days,))
    db.close()
    env.server.admin("POST", "/patients", {"add": 7})
    with env.daemon() as d:
        tap.ok(env.wait_until(lambda: len(ok_runs()) == 2, 60, "catch-up run"),
               "a run missed while the daemon was down happens soon after start", d.output())
        tap.ok("missed" in d.output(), "and the log says why")
        mirrorlib.compare(tap, env, "the catch-up run")

    # A run that fails (the key is refused) is tried again after a backoff.
    db = sqlite3.connect(mirrorlib.db_path(env), isolation_level=None)
    db.execute("UPDATE mirror_runs SET started_at = ?1, ended_at = ?1", (two_days,))
    db.close()
    env.server.config(records_key="rotated-key")
    with env.daemon() as d:
        tap.ok(env.wait_until(lambda: any(r["status"] == "failed"
                                          for r in mirrorlib.runs(env)), 60, "failed run"),
               "a run refused by the server is recorded as failed", d.output())
        tap.ok(env.wait_until(lambda: "retry after a failed run" in d.output(), 10, "retry"),
               "and scheduled again after a backoff", d.output())
        m = status().get("mirror") or {}
        tap.ok(m.get("next_at", 0) / 1000 < time.time() + 3600 + 60,
               "the retry comes within the hour", m)
        # The fix and a reload: the next run comes soon, not after the backoff.
        with open(env.records_key_file, "w") as f:
            f.write("rotated-key\n")
        d.proc.send_signal(signal.SIGHUP)
        tap.ok(env.wait_until(lambda: "reloaded after a failed run" in d.output(), 10, "rearm"),
               "a reload after a failed run brings the next run forward", d.output()[-2000:])
        tap.ok(env.wait_until(lambda: len(ok_runs()) == 3, 60, "run after the fix"),
               "and with the new key it succeeds", d.output()[-2000:])
    logs = first_log + d.output()
    records, _, _ = mirrorlib.admin_patients(env)
    leaked = [p["name"] for p in records.values() if p.get("name") and p["name"] in logs]
    leaked += [pid for pid in records if pid in logs]
    tap.eq(leaked[:3], [], "no patient name or id in the daemon's log")
tap.finish()
