#!/usr/bin/env python3
"""A mirror run that dies: killed with SIGKILL halfway, the database keeps
the last finished run and the next run completes; stopped with SIGTERM or
SIGINT, the run is cancelled cleanly; a second run while one is going is
refused. Ids here have 30 digits."""
import signal

import mirrorlib
from hstest import TAP, Env

tap = TAP()
with Env(tap, server_args=["--patients", "1000", "--id-digits", "30"]) as env:
    mirrorlib.configure(env, page_size=50)
    code, out, err = mirrorlib.run(env)
    tap.eq(code, 0, "a first run fills the mirror")
    mirrorlib.compare(tap, env, "first run")
    ids = list(mirrorlib.admin_patients(env)[0])

    def slow_run():
        """Starts a run that takes a while, and waits until it is halfway
        through the list."""
        env.server.admin("POST", "/reset", {})
        env.server.config(random_faults=[{"fault": "slow:100", "rate": 1.0,
                                          "kinds": ["patients_list"]}])
        proc = mirrorlib.start(env)
        tap.ok(mirrorlib.wait_requests(env, "patients_list", 8), "the run is on page 8 of 20")
        return proc

    # ---- SIGKILL --------------------------------------------------------------
    env.server.admin("POST", "/patients", {"remove": ids[:5], "rename": {ids[900]: "New Name"},
                                           "add": 5})
    before = mirrorlib.env_snapshot(env)
    proc = slow_run()
    proc.kill()
    code, out, err = mirrorlib.finish(proc)
    tap.eq(code, -signal.SIGKILL, "the run is killed")
    tap.eq(mirrorlib.env_snapshot(env), before, "the records are those of the last finished run")
    tap.eq(mirrorlib.runs(env)[-1]["status"], "running", "mirror_runs shows the run unfinished")
    tap.ok(mirrorlib.staged(env) > 0, "it left staged records behind")

    env.server.config(random_faults=[])
    code, out, err = mirrorlib.run(env)
    tap.eq(code, 0, "the next run completes")
    runs = mirrorlib.runs(env)
    tap.ok(runs[-2]["status"] == "failed" and "interrupted" in runs[-2]["error"],
           "the killed run is recorded as interrupted", runs[-2])
    tap.eq((runs[-1]["created"], runs[-1]["updated"], runs[-1]["deleted"]), (5, 1, 5),
           "the next run applies all the changes")
    tap.eq(mirrorlib.staged(env), 0, "staging is cleared")
    mirrorlib.compare(tap, env, "after the kill")

    # ---- SIGTERM and SIGINT -------------------------------------------------------
    env.server.admin("POST", "/patients", {"remove": ids[5:7], "add": 1})
    for sig in (signal.SIGTERM, signal.SIGINT):
        before = mirrorlib.env_snapshot(env)
        proc = slow_run()
        code, out, err = mirrorlib.stop(proc, sig)
        name = signal.Signals(sig).name
        tap.eq(code, 1, "%s: the command exits 1" % name)
        tap.ok("cancelled" in err and not mirrorlib.error_lines(err),
               "%s: it says the run was cancelled, without an error" % name, err)
        tap.eq(mirrorlib.env_snapshot(env), before, "%s: the records are unchanged" % name)
        last = mirrorlib.runs(env)[-1]
        tap.ok(last["status"] == "cancelled" and last["ended_at"],
               "%s: mirror_runs records the cancelled run" % name, last)
        tap.eq(mirrorlib.staged(env), 0, "%s: staging is cleared" % name)

    # ---- one run at a time ----------------------------------------------------------
    proc = slow_run()
    code, out, err = mirrorlib.run(env)
    tap.ok(code == 1 and len(err.splitlines()) == 1 and "another healsync process" in err,
           "a second run while one goes is refused with one line", err)
    code, out, err = mirrorlib.finish(proc)
    tap.eq(code, 0, "the first run is not disturbed")
    env.server.config(random_faults=[])
    mirrorlib.compare(tap, env, "in the end")
tap.finish()
