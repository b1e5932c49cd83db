#!/usr/bin/env python3
"""The mirror against tight quotas: every record detail-fetched, 20
requests per 2 s, with windows aligned to the clock and resets as whole
seconds from now (a window's Remaining 0 said "Reset: 1" and the next
request once went 0.11 s later), with windows that open with a request and
Unix-time resets, and with exact deltas. No 429 in any of them: the
limiter waits for each window's reset as the server said it. (The limiter
that let a learned window length override the said reset drew 429s here
in the first and the third case.)"""
import os

import mirrorlib
from hstest import TAP, Env

N = 300
tap = TAP()
with Env(tap, server_args=["--patients", str(N)]) as env:
    mirrorlib.configure(env, page_size=100)
    for align, reset in (("epoch", "delta"), ("first", "unix"), ("first", "delta-exact")):
        what = "windows from %s, resets as %s" % ("the epoch" if align == "epoch" else
                                                   "a request", reset)
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(mirrorlib.db_path(env) + suffix):
                os.unlink(mirrorlib.db_path(env) + suffix)
        env.server.admin("POST", "/reset", {})
        env.server.config(rate_limit="20/2", window_align=align, reset_style=reset)
        code, out, err = mirrorlib.run(env)
        stats = env.server.admin("GET", "/stats")
        tap.ok(code == 0, "%s: the run succeeds" % what, err[-2000:])
        tap.ok(stats["requests_total"] >= N + 2, "%s: every record was detail-fetched" % what,
               stats["requests_total"])
        tap.eq(stats["rate_limited"], 0,
               "%s: no 429 in %d requests" % (what, stats["requests_total"]))
        mirrorlib.compare(tap, env, what)
    env.server.config(rate_limit="off")
tap.finish()
