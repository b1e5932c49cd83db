#!/usr/bin/env python3
"""Each reason of the health verdict, caused for real in a running daemon
and read back through status --json, check and the daemon's log: a watch
folder missing, state_dir's file system short of min_free, nothing stored
for stalled_after while a file waits, the upload API unavailable (5xx),
the upload API refusing the key, a mirror run failed and the mirror late.
Each clears once its cause is gone, and each change of verdict is one log
line. (Dead jobs, the queued age and a refused TLS certificate are in
health.py and https_refused.py.)"""
import json
import os
import signal
import time

import mirrorlib
from hstest import RECORDS_KEY, TAP, UPLOAD_KEY, Env, watch_entry

tap = TAP()


def status(env):
    code, out, _ = env.cli("status", "--json", check=False)
    return code, json.loads(out or "{}")


def reasons(env):
    """{code: state} of the daemon's verdict."""
    return {r["code"]: r["state"] for r in status(env)[1].get("health", {}).get("reasons", [])}


def verdict_lines(d):
    return [ln for ln in d.output().splitlines() if "health " in ln and
            ("health OK" in ln or "health WARNING" in ln or "health CRITICAL" in ln)]


def hm(t):
    return time.strftime("%H:%M", time.localtime(t))


with Env(tap) as env:
    folder = os.path.join(env.dir, "in")
    missing = os.path.join(env.dir, "later")
    os.makedirs(folder)

    # ---- watch_missing, disk_low, stalled ------------------------------------
    sv = os.statvfs(env.dir)
    free = sv.f_bavail * sv.f_frsize
    now = time.time()
    held = "%s,pause %s,off" % (hm(now - 3600), hm(now + 3 * 3600))
    env.write_config({"bandwidth": held},
                     watch=[watch_entry(folder, "keep", "in/"),
                            watch_entry(missing, "keep", "later/")],
                     extra='health: { stalled_after = "1s"; min_free = "%d"; };' % (2 * free))
    with env.daemon() as d:
        with open(os.path.join(folder, "waits.pdf"), "wb") as f:
            f.write(b"held by the timetable")
        want = {"watch_missing": "WARNING", "disk_low": "WARNING", "stalled": "CRITICAL"}
        ok = env.wait_until(lambda: reasons(env) == want, 60, "three reasons")
        tap.ok(ok, "a missing watch folder, a short disk and a stalled queue are reasons",
               reasons(env))
        code, doc = status(env)
        tap.eq((code, doc.get("health", {}).get("state")), (2, "CRITICAL"),
               "the verdict is the worst of them, CRITICAL, and status exits 2")
        texts = [r["text"] for r in doc.get("health", {}).get("reasons", [])]
        tap.ok(all(r.get("since", 0) > 0 for r in doc.get("health", {}).get("reasons", [])),
               "each reason has its since", doc.get("health"))
        tap.ok(not any(env.dir in t or "waits.pdf" in t for t in texts),
               "the texts name no file or folder", texts)
        code, out, _ = env.cli("check", check=False)
        tap.ok(code == 2 and out.startswith("HEALSYNC CRITICAL - ") and "state_dir_free=" in out,
               "check: CRITICAL, with the free space in the performance data", out)

        # Readers weigh the facts at their own time; the daemon weighs
        # reasons that come with time every 30 s and logs its verdict then.
        ok = env.wait_until(lambda: any("health CRITICAL" in ln and "watch folder missing" in ln
                                        for ln in verdict_lines(d)), 60, "the daemon's line")
        tap.ok(ok, "the daemon logs its CRITICAL verdict, naming the reasons", verdict_lines(d))

        os.makedirs(missing)
        ok = env.wait_until(lambda: "watch_missing" not in reasons(env), 60, "the folder")
        tap.ok(ok, "the folder made: watch_missing is gone", reasons(env))
        tap.ok(env.wait_until(lambda: any("health CRITICAL still" in ln
                                          for ln in verdict_lines(d)), 10, "a log line"),
               "a change of reasons within CRITICAL is a line of its own", verdict_lines(d))

    # ---- upload_unavailable ----------------------------------------------------
    env.write_config({}, watch=[watch_entry(folder, "keep", "in/")])
    env.server.admin("POST", "/faults", {"kind": "presign", "fault": "503", "count": 10000})
    with env.daemon() as d:
        ok = env.wait_until(lambda: reasons(env) == {"upload_unavailable": "WARNING"}, 120,
                            "the outage")
        tap.ok(ok, "5xx answers in a row: WARNING upload_unavailable", reasons(env))
        code, doc = status(env)
        api = doc.get("apis", {}).get("upload", {})
        tap.ok(code == 1 and api.get("state") == "unavailable" and api.get("since", 0) > 0,
               "status exits 1; apis.upload is unavailable, with since", (code, api))
        tap.ok(any("health WARNING: upload API unavailable" in ln for ln in verdict_lines(d)),
               "the change is one log line", verdict_lines(d))
        env.server.admin("DELETE", "/faults")
        ok = env.wait_until(lambda: status(env)[1].get("queue", {}).get("done") == 1 and
                            reasons(env) == {}, 180, "the outage's end")
        tap.ok(ok, "the API answers again: the file is stored and the verdict is OK",
               reasons(env))
        tap.ok(any("health OK" in ln for ln in verdict_lines(d)), "OK again is a line too",
               verdict_lines(d))

    # ---- upload_key_rejected ---------------------------------------------------
    with env.daemon() as d:
        env.server.config(upload_key="another-key")
        with open(os.path.join(folder, "refused.pdf"), "wb") as f:
            f.write(b"the key is refused")
        ok = env.wait_until(lambda: reasons(env) == {"upload_key_rejected": "CRITICAL"}, 60,
                            "the refused key")
        tap.ok(ok, "a 401: CRITICAL upload_key_rejected", reasons(env))
        code, doc = status(env)
        tap.ok(code == 2 and doc.get("apis", {}).get("upload", {}).get("state") == "key_rejected",
               "status exits 2; apis.upload is key_rejected", doc.get("apis"))
        env.server.config(upload_key=UPLOAD_KEY)
        d.proc.send_signal(signal.SIGHUP)
        ok = env.wait_until(lambda: reasons(env) == {} and
                            status(env)[1].get("queue", {}).get("done") == 2, 60, "the key")
        tap.ok(ok, "the key accepted after a reload: OK, the file stored", reasons(env))

    # ---- mirror_failed, mirror_late ----------------------------------------------
    # Every minute, no jitter, one second of grace: the first scheduled time
    # passes within a minute with no success.
    mirrorlib.configure(env, schedule="* * * * *", jitter="0s")
    with open(env.config_path, "a") as f:
        f.write('health: { mirror_grace = "1s"; };\n')
    env.server.config(records_key="another-records-key")
    with env.daemon() as d:
        ok = env.wait_until(lambda: reasons(env).get("mirror_failed") == "WARNING", 60,
                            "the failed run")
        tap.ok(ok, "a failed mirror run: WARNING mirror_failed", reasons(env))
        code, doc = status(env)
        tap.eq(doc.get("apis", {}).get("records", {}).get("state"), "failed",
               "apis.records is failed")
        ok = env.wait_until(lambda: reasons(env).get("mirror_late") == "WARNING", 130,
                            "the late mirror")
        tap.ok(ok, "no success past the schedule and its grace: WARNING mirror_late",
               reasons(env))
        env.server.config(records_key=RECORDS_KEY)
        d.proc.send_signal(signal.SIGHUP)
        ok = env.wait_until(lambda: reasons(env) == {}, 130, "a good run")
        tap.ok(ok, "a successful run after the fix: OK again", reasons(env))
tap.finish()
