#!/usr/bin/env python3
"""A completion lost to a power failure: the uploader commits a job's
completion unsynced (queue/queue.h, "Durability"), so after a power
failure the queue may hold the job as it was just before: active, its
single upload's session and finished PUT recorded, nothing in the ledger.
That state is made here by hand in a real queue.db, after a real upload.
The next daemon must complete the same upload again (the API answers a
second complete as the first) without sending the file again, and end
the job done, in the ledger, with nothing stored twice."""
import sqlite3
import time

from hstest import TAP, Env

tap = TAP()
with Env(tap) as env:
    env.write_file("lab/report.pdf", b"a report\n" * 4000)
    env.enqueue("lab/report.pdf")
    with env.daemon() as d:
        tap.ok(env.wait_jobs(timeout=60, done=1), "the file is uploaded", d.output()[-2000:])
    job = next(j for j in env.jobs() if j["path"] == env.path("lab/report.pdf"))
    remote = job["remote_name"]
    ups = [(uid, u) for uid, u in env.server.admin("GET", "/uploads").items()
           if u.get("filename") == remote]
    tap.eq(len(ups), 1, "one upload session at the server")
    upload_id, up = ups[0]
    puts_before = len(up.get("puts", []))

    # The queue as a power failure may leave it when the completion's
    # commit was not yet on disk.
    db = sqlite3.connect(env.state + "/queue.db")
    with db:
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("UPDATE jobs SET state = 'active', due_at = ?, upload_id = ?, part_size = ?, "
                   "part_count = 1 WHERE id = ?",
                   (int(time.time() * 1000), upload_id, job["size_bytes"], job["id"]))
        db.execute("INSERT INTO parts (job_id, part_number, size, etag) VALUES (?, 1, ?, 'e')",
                   (job["id"], job["size_bytes"]))
        db.execute("DELETE FROM uploaded WHERE remote_name = ?", (remote,))
    db.close()
    tap.eq(env.counts().get("active"), 1, "the job is active again, as if its completion was lost")

    with env.daemon() as d:
        tap.ok(env.wait_jobs(timeout=60, done=1), "the next daemon ends it done",
               d.output()[-2000:])
    stored = env.stored("lab/report.pdf", remote)
    tap.ok(stored is not None, "the server holds the file")
    tap.eq(stored and stored["complete_count"], 1, "stored once: the same upload, completed again")
    up = env.server.admin("GET", "/uploads")[upload_id]
    tap.eq(len(up.get("puts", [])), puts_before, "the file was not PUT again")
    tap.eq(up.get("repeat_completes"), 1, "the upload was completed a second time")
    db = sqlite3.connect(env.state + "/queue.db")
    n = db.execute("SELECT count(*) FROM uploaded WHERE remote_name = ?",
                   (remote,)).fetchone()[0]
    db.close()
    tap.eq(n, 1, "the ledger records it again")
tap.finish()
