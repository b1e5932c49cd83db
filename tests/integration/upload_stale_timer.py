#!/usr/bin/env python3
"""A step's retry timer outlives its step. A part-URL request fails and
arms a backoff; other transfers' events let the parts go on before it
(the bug), the parts land and the complete goes out, and then the old
timer fires. It must find the complete in flight and send nothing: a
second complete, sent on top of the first, outlives the transfer, and its
answer lands on freed memory (the sanitizer build aborts). Each round is
one large file whose first part-URL answer is malformed, among small
files that keep the uploader busy; the backoff is random (full jitter),
so each round is a fresh draw of the race, and a slow complete keeps the
first complete in flight while the timer fires."""
import time

from hstest import TAP, Env, write_random

tap = TAP()
ROUNDS = 6
SMALL = 12

with Env(tap, upload={"multipart_threshold": "8MiB", "part_size": "5MiB", "parallel": 4}) as env:
    with env.daemon() as d:
        for r in range(ROUNDS):
            big = "round-%d/scan.bin" % r
            small = ["round-%d/note-%02d.txt" % (r, i) for i in range(SMALL)]
            for i, name in enumerate(small):
                env.write_file(name, b"note %d of round %d\n" % (i, r) * (50 + i))
            write_random(env.path(big), 10 * 1024 * 1024 + r, seed=r)
            env.server.admin("POST", "/faults", {"kind": "parts_presign",
                                                 "fault": "malformed_json", "count": 1})
            # A slow complete keeps it in flight while the old timer fires.
            env.server.admin("POST", "/faults", {"kind": "multipart_complete",
                                                 "fault": "slow:1500", "count": 1})
            env.enqueue(big, *small)
            tap.ok(env.wait_jobs(timeout=60, done=(r + 1) * (SMALL + 1)),
                   "round %d: the large file and %d small ones are done" % (r, SMALL))
            if d.proc.poll() is not None:
                break
            time.sleep(1.0)  # the step backoff's first ceiling is 1 s: any old timer fires
        completes = env.server.admin("GET", "/stats")["requests"].get("multipart_complete", {})
        tap.eq(completes, {"200": ROUNDS}, "each large file completed once, old timers and all")
        faults = env.server.admin("GET", "/stats")["faults_injected"].get("parts_presign", {})
        tap.eq(faults, {"malformed_json": ROUNDS}, "every round met the malformed answer")
        tap.ok(d.proc.poll() is None, "the daemon still runs", d.output()[-3000:])
    tap.eq(d.proc.returncode, 0, "and exits 0 when stopped")

tap.finish()
