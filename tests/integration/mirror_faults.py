#!/usr/bin/env python3
"""The mirror against a server that misbehaves: a rejected key and
malformed, mistyped, incomplete or huge answers end the run with one error
line and exit 1, leaving the database as it was; transient failures (5xx,
dropped connections, 429) are retried; a rate-limited server gets no 429
it could have foreseen; pages that shift while they are read lose nothing
and delete nothing that still exists; the configuration errors exit 78."""
import os

import mirrorlib
from hstest import TAP, Env

tap = TAP()
with Env(tap, server_args=["--patients", "300", "--id-digits", "20"]) as env:
    mirrorlib.configure(env)
    code, out, err = mirrorlib.run(env)
    tap.eq(code, 0, "a first run fills the mirror")
    records, _, _ = mirrorlib.admin_patients(env)
    ids = list(records)
    # A change a successful run would apply, so a failed one shows if it
    # applied anything.
    env.server.admin("POST", "/patients", {"rename": {ids[5]: "Changed Name"},
                                           "remove": [ids[6]], "add": 2})
    before = mirrorlib.env_snapshot(env)

    def fails(what, faults, want_in_error, max_requests=None):
        env.server.admin("DELETE", "/faults")
        env.server.admin("POST", "/reset", {})
        if faults:
            env.server.admin("POST", "/faults", faults)
        code, out, err = mirrorlib.run(env)
        errors = mirrorlib.error_lines(err)
        tap.eq(code, 1, "%s: exit 1" % what)
        tap.ok(len(errors) == 1 and want_in_error in errors[0] and "failed" in errors[0],
               "%s: one error line, naming the cause" % what, err)
        tap.eq(mirrorlib.env_snapshot(env), before, "%s: the database is unchanged" % what)
        last = mirrorlib.runs(env)[-1]
        tap.ok(last["status"] == "failed" and want_in_error in (last["error"] or ""),
               "%s: mirror_runs records the failed run" % what, last)
        tap.eq(mirrorlib.staged(env), 0, "%s: staging is cleared" % what)
        if max_requests is not None:
            total = env.server.admin("GET", "/stats")["requests_total"]
            tap.ok(total <= max_requests, "%s: no retries (%d requests)" % (what, total))

    # ---- the key ---------------------------------------------------------
    env.server.config(records_key="another-key")
    fails("401", None, "rejected the API key (HTTP 401)", max_requests=1)
    env.server.config(records_key="it-records-key-0123456789")

    # ---- answers that are not what the API promises -------------------------
    for kind, where in (("patients_list", "list page 1"), ("patient_detail", "a detail")):
        for fault, why in (("malformed_json", "not valid JSON"),
                           ("wrong_types", "not a"),
                           ("missing_fields", "missing"),
                           ("huge_body:2097152", "larger than")):
            fails("%s on %s" % (fault.split(":")[0], kind),
                  {"kind": kind, "fault": fault}, why)
    fails("an error status", {"kind": "patients_list", "fault": "status:404:not_found"},
          "list page 1: HTTP 404 not_found")
    fails("400 on a detail", {"kind": "patient_detail", "fault": "400"},
          "a detail request: HTTP 400")

    # ---- transient failures are retried ----------------------------------
    env.server.admin("POST", "/faults", [
        {"kind": "patients_list", "fault": "503", "count": 2},
        {"kind": "patients_list", "fault": "drop"},
        {"kind": "patient_detail", "fault": "500", "count": 2},
        {"kind": "patient_detail", "fault": "429"},
        {"kind": "patient_detail", "fault": "disconnect"}])
    code, out, err = mirrorlib.run(env)
    tap.eq(code, 0, "5xx, 429 and broken connections are retried, and the run succeeds")
    tap.eq(env.server.admin("GET", "/faults")["queue"], [], "every injected fault was met")
    tap.ok(not mirrorlib.error_lines(err), "retries log no error", err)
    last = mirrorlib.runs(env)[-1]
    tap.ok(last["status"] == "ok" and last["created"] == 2 and last["updated"] == 1 and
           last["deleted"] == 1, "the run applied the changes", last)
    mirrorlib.compare(tap, env, "after retries")

    # ---- a rate limit, with every record detail-fetched -----------------------
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(mirrorlib.db_path(env) + suffix):
            os.unlink(mirrorlib.db_path(env) + suffix)
    env.server.admin("POST", "/reset", {})
    env.server.config(rate_limit="100/2")
    code, out, err = mirrorlib.run(env)
    stats = env.server.admin("GET", "/stats")
    tap.eq(code, 0, "a run against a rate limit of 100 requests per 2 s succeeds")
    tap.eq(stats["rate_limited"], 0,
           "no 429 in %d requests: the limiter paced them" % stats["requests_total"])
    tap.ok(stats["requests_total"] >= 303, "every record was detail-fetched",
           stats["requests_total"])
    mirrorlib.compare(tap, env, "rate-limited")
    env.server.config(rate_limit="off")

    # ---- pages shifting while they are read --------------------------------
    # Slow list pages of 20; once page 2 is read, the list changes.
    mirrorlib.configure(env, page_size=20)

    def shifted_run(what, change):
        before_ids = {pid for pid, r in mirrorlib.rows(env).items() if not r["deleted_at"]}
        order = list(mirrorlib.admin_patients(env)[0])
        env.server.admin("POST", "/reset", {})   # stats and fault rules
        env.server.config(random_faults=[{"fault": "slow:100", "rate": 1.0,
                                          "kinds": ["patients_list"]}])
        proc = mirrorlib.start(env)
        tap.ok(mirrorlib.wait_requests(env, "patients_list", 2), "%s: page 2 is read" % what)
        answer = env.server.admin("POST", "/patients", change)
        code, out, err = mirrorlib.finish(proc)
        tap.eq(code, 0, "%s: the run succeeds" % what)
        got = mirrorlib.rows(env)
        now = mirrorlib.admin_patients(env)[0]
        lost = [order.index(pid) for pid in before_ids
                if pid in now and (pid not in got or got[pid]["deleted_at"])]
        tap.ok(not lost, "%s: no record that existed was lost or deleted" % what, lost)
        return answer, mirrorlib.runs(env)[-1]

    n = len(mirrorlib.admin_patients(env)[0])
    # Eight new records at the start push every page 8 places down: 8
    # records are listed twice, and count once.
    added, last = shifted_run("records added at the start",
                              {"add": {"count": 8, "position": "start"}})
    tap.eq((last["records"], last["created"], last["deleted"]), (n, 0, 0),
           "each record counted once; the new ones, on a page already read, wait")
    # Ten records of page 1 removed pull every later page 10 places up: 10
    # records are never listed, and asked for one by one instead. (The
    # first 8 are the new ones: they stay.)
    ids = list(mirrorlib.admin_patients(env)[0])
    removed, last = shifted_run("records removed from page 1", {"remove": ids[8:18]})
    tap.eq((last["records"], last["created"], last["deleted"]), (n + 8 - 10, 8, 0),
           "the 10 records shifted past the pages are checked, found and kept; the 8 new "
           "ones are created")
    env.server.config(random_faults=[])
    code, out, err = mirrorlib.run(env)
    last = mirrorlib.runs(env)[-1]
    tap.eq((code, last["created"], last["deleted"]), (0, 0, 10),
           "the next run deletes the 10 removed")
    mirrorlib.compare(tap, env, "after the shifts")

    # ---- configuration errors ------------------------------------------------
    env.write_config({})
    code, out, err = env.cli("mirror", check=False)
    tap.ok(code == 78 and len(err.splitlines()) == 1 and "no mirror section" in err,
           "no mirror section: exit 78 with one line", err)
    code, out, err = env.cli("mirror", "now", check=False)
    tap.eq(code, 2, "mirror takes no arguments: exit 2")
tap.finish()
