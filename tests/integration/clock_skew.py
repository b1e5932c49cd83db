#!/usr/bin/env python3
"""A workstation clock an hour off the server's, both ways (the server's
--clock-offset), over HTTPS under a rate limit with Unix resets and
Retry-After dates: Unix resets, HTTP-dates and expires_at are read against
the answers' Date (SPEC 1). Every file is stored; once the headers are
known no 429 is caused; presigned URLs that look an hour stale (or fresh)
by the local clock are used as the server means them."""
import os

import hstest
from hstest import TAP, Env
from tlsca import CA

FILES = 24
tap = TAP()
base = hstest.tempfile.mkdtemp(prefix="hs-clock-")
ca = CA(os.path.join(base, "ca"))
cert, key = ca.server()



for offset in (3600, -3600):
    label = "server clock %+d s" % offset
    with Env(tap, server_args=["--tls-cert", cert, "--tls-key", key,
                               "--clock-offset", str(offset), "--rate-limit", "8/4",
                               "--reset-style", "unix", "--retry-after-style", "date",
                               "--url-ttl", "120"],
             upload={"ca_file": ca.cert_file, "parallel": 2}) as env:
        names = ["clock-%d.pdf" % i for i in range(FILES)]
        for i, name in enumerate(names):
            env.write_file(name, b"report %d under a skewed clock\n" % i * 20)
        # The first request gets a 429 with a Retry-After date 2 s ahead
        # by the server's clock, before any quota header is known.
        env.server.admin("POST", "/faults", {"kind": "presign", "fault": "429:2"})
        env.enqueue(*names)
        with env.daemon() as d:
            ok = env.wait_jobs(timeout=150, done=FILES)
            tap.ok(ok, "%s: every file stored (Retry-After date, resets and expires_at "
                   "read against Date)" % label, d.output()[-2000:])
        stored = sum(1 for n in names if env.stored(n))
        tap.eq(stored, FILES, "%s: all %d stored with their SHA-256" % (label, FILES))
        tap.eq(sum(env.job(n).get("attempts", 0) for n in names), 0,
               "%s: no attempt spent" % label)
        stats = env.server.admin("GET", "/stats")
        tap.eq(stats["rate_limited"], 0,
               "%s: no 429 caused once the rate-limit headers were known" % label)

hstest.shutil.rmtree(base, ignore_errors=True)
tap.finish()
