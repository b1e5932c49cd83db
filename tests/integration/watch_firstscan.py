#!/usr/bin/env python3
"""The start-up scan lists first and queues after, and leaves the writer
check to the uploader (docs/watch.md, "Scans"):

- a file quiet for an hour but still held open by a writer when the
  daemon starts is queued by the scan, and the uploader, which looks for
  a writer on the descriptor it reads, sends it back to wait without
  reading it and without spending an attempt; once the writer has
  finished, it is uploaded whole, once;
- READY comes once the folder is watched and listed, and the jobs for
  what the listing found are committed after it, in batches: a kill -9
  between those batches loses nothing, because every file not yet
  committed is on disk and found again by the next start-up scan. Each
  file then has exactly one job."""
import os
import signal
import sqlite3
import time

from hstest import TAP, Env, read, write, watch_entry as watch

tap = TAP()
FILES, DIRS = 12000, 60

with Env(tap) as env:
    inbox = env.path("in")
    held, quiet = os.path.join(inbox, "held.pdf"), os.path.join(inbox, "quiet.pdf")
    write(quiet, b"nobody writes this one\n")
    write(held, b"first half, ")
    hour_ago = time.time() - 3600
    os.utime(quiet, (hour_ago, hour_ago))
    env.write_config({}, watch=[watch(inbox, "keep", "in/")])
    names = lambda: {f["filename"] for f in env.server_files()}
    creates = lambda: [u for u in env.server.admin("GET", "/uploads").values()
                       if u.get("filename") == "in/held.pdf"]

    with open(held, "ab") as writer:
        # Quiet for an hour: neither settle nor the scan hold it back,
        # only the writer that still has it open.
        os.utime(held, (hour_ago, hour_ago))
        with env.daemon() as d:
            tap.ok(env.wait_until(lambda: "in/quiet.pdf" in names(), 30, "quiet.pdf"),
                   "a quiet file found by the start-up scan is uploaded", d.output()[-2000:])
            busy = "in/held.pdf: still being written (held open by a writer)"
            tap.ok(env.wait_until(lambda: d.output().count(busy) >= 2, 30, "the writer check"),
                   "the uploader finds the writer, and again when the job comes round",
                   d.output()[-2000:])
            tap.eq(creates(), [], "the held file is not read: no upload was begun for it")
            job = env.job("in/held.pdf")
            tap.eq((job.get("state"), job.get("attempts")), ("queued", 0),
                   "its job waits without spending an attempt")
            writer.write(b"second half\n")
            writer.close()
            tap.ok(env.wait_until(lambda: env.stored("in/held.pdf"), 30, "held.pdf whole"),
                   "once the writer closes it, it is uploaded whole", d.output()[-2000:])
            tap.eq(read(held), b"first half, second half\n", "(the file as written)")
            tap.eq(len(creates()), 1, "and only once")
            tap.eq(env.job("in/held.pdf").get("attempts"), 0, "without an attempt spent")
        tap.eq(d.proc.returncode, 0, "the daemon stops cleanly")

with Env(tap, log_level="info") as env:
    tree = env.path("tree")
    for i in range(DIRS):
        sub = os.path.join(tree, "d%02d" % i)
        os.makedirs(sub)
        for j in range(FILES // DIRS):
            with open(os.path.join(sub, "f%03d.pdf" % j), "wb") as f:
                f.write(b"%d/%d\n" % (i, j))
    old = time.time() - 60
    for top, _, files in os.walk(tree):
        for n in files:
            os.utime(os.path.join(top, n), (old, old))
    env.write_config({}, watch=[watch(tree, "keep", "t/")])
    env.cli("pause")           # nothing is sent: only the queue is looked at
    db = os.path.join(env.state, "queue.db")

    def jobs_in_db():
        con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=30)
        try:
            return con.execute("SELECT count(*), count(DISTINCT path) FROM jobs").fetchone()
        finally:
            con.close()

    def soon(pred, timeout=120):
        """pred() polled every 2 ms: the states looked for last a few ms."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return True
            time.sleep(0.002)
        return False

    # The daemon is stopped (SIGSTOP) as soon as the first batch is
    # committed, and killed there. The batches commit one per turn of the
    # loop, so it is almost always stopped with some still to come; should
    # it have committed them all first, the state is wiped and it starts
    # again.
    partial = None
    for attempt in range(5):
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.unlink(db + suffix)
        env.cli("pause")
        d = env.daemon()
        ok = soon(lambda: "scanned; ready" in d.output()) and soon(lambda: jobs_in_db()[0] > 0)
        d.proc.send_signal(signal.SIGSTOP)
        d.kill()                # SIGKILL works on a stopped process
        if not ok:
            tap.diag(d.output()[-2000:])
            break
        partial = jobs_in_db()
        tap.diag("attempt %d: killed with %d of %d files committed, after READY"
                 % (attempt + 1, partial[0], FILES))
        if partial[0] < FILES:
            break
    tap.ok(partial is not None and 0 < partial[0] < FILES,
           "READY=1 comes before the start-up scan's jobs, which commit in batches", partial)

    with env.daemon() as d:
        tap.ok(env.wait_until(lambda: jobs_in_db()[0] >= FILES, 120, "every job"),
               "after a kill -9 between the batches, the next start queues every file",
               d.output()[-2000:])
        tap.eq(jobs_in_db(), (FILES, FILES), "each with exactly one job")
        counts = env.counts()
        tap.eq(counts.get("queued"), FILES, "all waiting (uploads are paused)")
    tap.eq(d.proc.returncode, 0, "the daemon stops cleanly")
tap.finish()
