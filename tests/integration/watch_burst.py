#!/usr/bin/env python3
"""Volume: a burst of 20,000 files in 100 new directories, all uploaded;
then an inotify queue overflow, forced by stopping the daemon while the
kernel queue fills, recovered by a rescan with nothing lost."""
import os
import signal
import time

from hstest import TAP, Env, write

tap = TAP()
DIRS, PER_DIR = 100, 200



with Env(tap, upload={"parallel": 8}, log_level="info") as env:
    root = os.path.join(env.dir, "inbox")
    os.makedirs(root)
    env.write_config({"parallel": 8}, watch=[
        '{ path = "%s"; remote_prefix = "b/"; settle = "200ms"; }' % root], )
    with env.daemon() as d:
        tap.ok(env.wait_until(lambda: "ready" in d.output(), 30, "ready"), "the daemon is ready")
        t0 = time.monotonic()
        for i in range(DIRS):
            sub = os.path.join(root, "batch-%03d" % i, "deep")
            os.makedirs(sub)
            for j in range(PER_DIR):
                write(os.path.join(sub, "f%03d.txt" % j), b"file %d %d\n" % (i, j))
        total = DIRS * PER_DIR
        tap.ok(env.wait_jobs(timeout=600, done=total), "all %d files are uploaded" % total,
               d.output()[-3000:])
        tap.diag("burst of %d files uploaded in %.1f s" % (total, time.monotonic() - t0))
        held = {f["filename"] for f in env.server_files()}
        missing = [(i, j) for i in range(DIRS) for j in range(PER_DIR)
                   if "b/batch-%03d/deep/f%03d.txt" % (i, j) not in held]
        tap.eq(missing[:5], [], "the server holds every one under its relative path")

        # Overflow: with the daemon stopped, 3 events per file for 8,000
        # files in a watched directory overrun the kernel's default queue of
        # 16,384 events.
        d.proc.send_signal(signal.SIGSTOP)
        flood = os.path.join(root, "batch-000")
        for j in range(8000):
            write(os.path.join(flood, "g%04d.txt" % j), b"flood %d\n" % j)
        d.proc.send_signal(signal.SIGCONT)
        tap.ok(env.wait_jobs(timeout=600, done=total + 8000),
               "after a queue overflow every file is still uploaded", d.output()[-3000:])
        tap.ok("overflowed" in d.output(), "the overflow is logged")
        tap.eq(sum(f["complete_count"] for f in env.server_files()), total + 8000,
               "and nothing is uploaded twice")
    tap.eq(d.proc.returncode, 0, "the daemon stops cleanly")
tap.finish()
