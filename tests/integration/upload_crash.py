#!/usr/bin/env python3
"""kill -9 during multipart uploads, again and again: afterwards every file
is stored exactly once with the right content, and finished parts were not
sent again (the bytes the server received stay under 1.5x the data)."""
import os
import random
import time

from hstest import TAP, Env, write_random

ROUNDS = int(os.environ.get("HS_CRASH_ROUNDS", "12"))
MIB = 1024 * 1024

tap = TAP()
# Two transfers at once and a cap keep each run busy for a while, so every
# kill lands in the middle of parts.
with Env(tap, upload={"parallel": 2, "bandwidth": "32MiB/s"}) as env:
    names = ["scan-%d.bin" % i for i in range(4)]
    for i, name in enumerate(names):
        write_random(env.path(name), 40 * MIB + i * 777, seed=10 + i)
    for i in range(3):
        env.write_file("note-%d.pdf" % i, b"small file %d\n" % i * 300)
    names += ["note-%d.pdf" % i for i in range(3)]
    total = sum(os.path.getsize(env.path(n)) for n in names)
    env.enqueue(*names)

    rnd = random.Random(7)
    kills = 0
    for _ in range(ROUNDS):
        d = env.daemon()
        time.sleep(rnd.uniform(0.4, 1.5))
        d.kill()
        kills += 1
        if all(env.stored(n) for n in names):
            break
    tap.diag("killed the daemon %d times" % kills)

    with env.daemon() as d:
        ok = env.wait_jobs(timeout=180, done=len(names))
        tap.ok(ok, "after the kills every job is done", d.output()[-3000:])
    tap.eq(d.proc.returncode, 0, "the last daemon exits 0")

    files = {f["filename"]: f for f in env.server_files()}
    for name in names:
        f = env.stored(name)
        tap.ok(f is not None, "%s stored with the right SHA-256" % name)
        tap.eq(files.get(name, {}).get("complete_count"), 1, "%s completed exactly once" % name)
    received = env.server.admin("GET", "/stats")["bytes_received"]
    tap.diag("data %d bytes, received %d bytes (%.2fx)" % (total, received, received / total))
    tap.ok(received < 1.5 * total, "finished parts were not sent again (received < 1.5x data)",
           "received %.2fx" % (received / total))
    counts = env.counts()
    tap.eq((counts["done"], counts["failed"], counts["dead"], counts["queued"], counts["active"]),
           (len(names), 0, 0, 0, 0), "the queue agrees: all done, nothing lost")
tap.finish()
