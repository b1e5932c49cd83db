#!/usr/bin/env python3
"""The operator's controls: `pause` kept in the queue holds a daemon that
starts after it and one that runs; `resume` lets the files go without an
attempt spent; `cancel` ends a waiting job for good (naming who); `purge`
drops finished jobs; each action is one line naming the user."""
import json
import time

from hstest import TAP, Env

tap = TAP()

with Env(tap) as env:
    env.write_file("a.pdf", b"first report\n" * 100)
    env.write_file("b.pdf", b"second report\n" * 100)

    rc, out, err = env.cli("pause")
    tap.eq(out.strip(), "uploads paused until resumed", "pause says what it did")
    tap.ok("uploads paused until resumed by " in err, "and records who paused", err)
    st = json.loads(env.cli("status", "--json")[1])
    tap.ok(st.get("pause") and st["pause"]["until"] == 0 and st["pause"]["by"],
           "status --json shows the pause", st.get("pause"))
    tap.ok("held by the operator until resumed" in env.cli("status")[1], "and so does status")

    env.enqueue("a.pdf", "b.pdf")
    with env.daemon() as d:
        ok = env.wait_until(lambda: "uploads paused by " in d.output(), 30, "the pause line")
        tap.ok(ok, "the daemon, started paused, says so", d.output()[-2000:])
        summary = lambda: (json.loads(env.cli("status", "--json")[1])["daemon"] or {}).get(
            "summary", "")
        ok = env.wait_until(lambda: "paused by" in summary(), 30, "STATUS")
        tap.ok(ok, "its status line says paused by", summary())
        tap.eq(env.server_files(), [], "nothing was sent while paused")
        b = env.job("b.pdf")
        rc, out, err = env.cli("cancel", str(b["id"]))
        tap.eq(out.strip(), "job %d cancelled" % b["id"], "cancel says what it did")
        tap.ok("cancelled by " in err and "b.pdf" in err, "and records who cancelled", err)
        tap.ok(env.job("b.pdf").get("last_error", "").startswith("cancelled by "),
               "the job names who cancelled it", env.job("b.pdf"))
        rc, out, err = env.cli("cancel", str(b["id"]), check=False)
        tap.eq(rc, 1, "cancelling an ended job fails")
        tap.ok("has already ended" in err, "with a line saying why", err)
        rc, out, err = env.cli("cancel", "x1", check=False)
        tap.eq(rc, 2, "a bad job id is a usage error")

        rc, out, err = env.cli("resume")
        tap.eq(out.strip(), "uploads resumed", "resume says what it did")
        tap.ok("uploads resumed by " in err, "and records who", err)
        tap.ok(env.wait_jobs(60, done=1), "the daemon, woken, sends the file")
        tap.ok(env.stored("a.pdf"), "a.pdf stored")
        tap.eq(env.job("a.pdf").get("attempts"), 0, "the pause spent no attempt")
        tap.ok(env.stored("b.pdf") is None, "the cancelled file was not sent")
        tap.ok("the operator's pause is over" in d.output(), "the end is logged")

        rc, out, err = env.cli("pause", "--for", "1h")
        until = json.loads(env.cli("status", "--json")[1])["pause"]["until"]
        tap.ok(abs(until / 1000 - (time.time() + 3600)) < 600, "pause --for 1h ends in an hour")
        ok = env.wait_until(lambda: "paused by" in summary(), 30, "STATUS")
        tap.ok(ok and " until " in summary(), "the status line says until when", summary())
        env.cli("resume")
    tap.eq(d.proc.returncode, 0, "daemon exits 0")

    d2 = env.daemon()
    tap.ok(env.wait_until(lambda: "ready" in d2.output(), 30, "ready"), "restarted")
    d2.stop()
    tap.eq(env.job("b.pdf").get("state"), "gone", "a cancelled job stays cancelled")

    ids = [j["id"] for j in env.jobs()]
    latest = json.loads(env.cli("jobs", "--latest", "1", "--json")[1])
    tap.eq([j["id"] for j in latest], [max(ids)], "jobs --latest 1 gives the newest job")
    since = json.loads(env.cli("jobs", "--since", "1h", "--json")[1])
    tap.eq([j["id"] for j in since], sorted(ids, reverse=True), "--since 1h: all, newest first")
    tap.eq(json.loads(env.cli("jobs", "--since", "2999-01-01", "--json")[1]), [],
           "--since a later date: none")
    rc, out, err = env.cli("jobs", "--since", "yesterday", check=False)
    tap.ok(rc == 2 and "--since" in err, "a bad --since names the option", err)
    rc, out, err = env.cli("purge", "--state", "queued", check=False)
    tap.eq(rc, 2, "only done or dead jobs may be purged")
    rc, out, err = env.cli("purge", "--state", "done", "--older-than", "1h")
    tap.eq(out.strip(), "0 done jobs purged", "--older-than keeps newer jobs")
    rc, out, err = env.cli("purge", "--state", "done")
    tap.eq(out.strip(), "1 done job purged", "purge drops the done job")
    tap.ok("purged by " in err, "and records who", err)
    rc, out, err = env.cli("pause", "--until", "2001-01-01 00:00", check=False)
    tap.eq(rc, 2, "a pause that would end in the past is refused")
    rc, out, err = env.cli("pause", "--until", "tomorrow", check=False)
    tap.ok(rc == 2 and "--until" in err, "a bad time names the option", err)

tap.finish()
