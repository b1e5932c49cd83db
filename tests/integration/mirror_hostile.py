#!/usr/bin/env python3
"""The mirror against a hostile Records API (SPEC 4: every count and page
number a server sends is bounded): a total_pages of 1,000,000, or one that
goes up with every page, ends the run after a bounded number of requests
with one error line, nothing applied and staging cleared; an error answer
echoing the URL asked for never reaches the log."""
import mirrorlib
from hstest import TAP, Env

tap = TAP()
with Env(tap, server_args=["--patients", "250"]) as env:
    mirrorlib.configure(env, page_size=100, fetch_details=False)
    code, _, _ = mirrorlib.run(env)
    tap.eq(code, 0, "a first run fills the mirror")
    records, _, _ = mirrorlib.admin_patients(env)
    ids = list(records)
    # A change a successful run would apply, so a failed one shows if it
    # applied anything.
    env.server.admin("POST", "/patients", {"rename": {ids[5]: "Changed Name"}, "add": 2})
    before = mirrorlib.env_snapshot(env)

    def hostile(mode, want_in_error, max_lists):
        env.server.admin("POST", "/reset", {})
        env.server.config(hostile=mode)
        code, _, err = mirrorlib.run(env)
        errors = mirrorlib.error_lines(err)
        tap.eq(code, 1, "%s: exit 1" % mode)
        tap.ok(len(errors) == 1 and want_in_error in errors[0] and "failed" in errors[0],
               "%s: one error line, naming the cause" % mode, err[-2000:])
        lists = sum(env.server.admin("GET", "/stats")["requests"]
                    .get("patients_list", {}).values())
        tap.ok(0 < lists <= max_lists, "%s: %d list requests (at most %d)"
               % (mode, lists, max_lists))
        tap.eq(mirrorlib.env_snapshot(env), before, "%s: the database is unchanged" % mode)
        tap.eq(mirrorlib.staged(env), 0, "%s: staging is cleared" % mode)
        return err

    hostile("total-pages=1000000", "more than the 2000000 records a run may stage", 1)
    hostile("endless", "total_pages went up to", 3)
    err = hostile("echo", "HTTP 400", 1)
    tap.ok("page=" not in err and "cannot serve" not in err and "bad request" not in err,
           "echo: neither the echoed URL nor the message is logged", err[-2000:])

    env.server.config(hostile=None)
    code, _, _ = mirrorlib.run(env)
    tap.eq(code, 0, "the same server, no longer hostile: the run succeeds")
    tap.ok(mirrorlib.env_snapshot(env) != before, "and is applied")
tap.finish()
