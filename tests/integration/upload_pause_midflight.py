#!/usr/bin/env python3
"""A pause of the bandwidth timetable that begins while a multipart upload
is sending: the parts already sending finish (their bytes are not thrown
away), no part starts after them, the job goes back to the queue without
spending an attempt, and when the pause ends it resumes from the parts the
storage holds. The entries are computed from the present local time."""
import json
import time

from hstest import TAP, Env, write_random

tap = TAP()


def hm(t):
    return time.strftime("%H:%M", time.localtime(t))


def minute_start(t):
    return int(t) - time.localtime(t).tm_sec


def puts(env):
    return env.server.admin("GET", "/stats").get("requests", {}).get("put", {}).get("200", 0)


# Limited to 192 KiB/s until the pause begins 40 to 100 s from now, so the
# 30 MiB file (6 parts of 5 MiB) is still sending then; the pause lasts two
# minutes, long enough for the parts in flight to finish; then no limit.
now = time.time()
start = minute_start(now) + 60
if start - now < 40:
    start += 60
end = start + 120
schedule = "%s,192KiB/s %s,pause %s,off" % (hm(start - 120), hm(start), hm(end))
tap.diag("now %s, bandwidth = \"%s\"" % (time.strftime("%H:%M:%S"), schedule))

with Env(tap, upload={"bandwidth": schedule, "parallel": 2}) as env:
    write_random(env.path("big.bin"), 30 * 1024 * 1024)
    env.enqueue("big.bin")
    with env.daemon() as d:
        def daemon_status():
            return json.loads(env.cli("status", "--json")[1])["daemon"] or {}

        while time.time() < start - 2 and d.proc.poll() is None:
            time.sleep(0.5)
        sending = [t for t in daemon_status().get("transfers", []) if t["step"] == "uploading"]
        tap.diag("just before the pause: %r" % sending)

        ok = env.wait_until(lambda: env.counts().get("queued") == 1, end - time.time() - 5,
                            "the job back in the queue")
        tap.ok(ok, "during the pause the job goes back to the queue", d.output()[-2000:])
        held = puts(env)
        job = env.jobs()[0]
        tap.eq(job.get("attempts"), 0, "without spending an attempt")
        if sending:
            tap.ok(held >= 1, "the parts sending when the pause began finished (%d)" % held)
        else:
            tap.skip("the machine was too slow to be sending when the pause began")
        while time.time() < end - 5 and d.proc.poll() is None:
            time.sleep(0.5)
        if time.time() < end - 1:
            tap.eq(puts(env), held, "no part started during the pause")
            tap.ok("paused until %s" % hm(end) in daemon_status().get("summary", ""),
                   "status says paused until %s" % hm(end))
        else:
            tap.skip("the machine was too slow to look inside the pause")

        ok = env.wait_until(lambda: env.counts().get("done") == 1, 180, "done")
        tap.ok(ok, "after the pause the upload is finished", d.output()[-3000:])
        tap.ok("resuming: %d of 6 parts held" % held in d.output(),
               "from the %d parts the storage held" % held)
        tap.eq(puts(env), 6, "each part sent once")
        tap.eq((env.stored("big.bin") or {}).get("complete_count"), 1, "stored once")
    tap.eq(d.proc.returncode, 0, "daemon exits 0")

tap.finish()
