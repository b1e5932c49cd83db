#!/usr/bin/env python3
"""The bandwidth timetable's pause: with `bandwidth = "HH:MM,pause HH:MM,off"`
around the present minute, files dropped in a watch folder stay queued and
the server sees no request at all; the status line and `status --json` say
"paused until HH:MM"; when the next entry's minute comes, everything is
uploaded without being kicked from outside."""
import datetime
import json
import os
import time

from hstest import TAP, Env

tap = TAP()


def hm(t):
    return time.strftime("%H:%M", time.localtime(t))


def minute_start(t):
    """The Unix time of the start of the local minute holding t."""
    lt = time.localtime(t)
    return t - lt.tm_sec - (t - int(t))


# The pause holds from the start of this minute to the start of the one two
# minutes on: 60 to 120 s from now. Daily entries wrap at midnight, so
# 23:59 to 00:01 is a pause like any other.
now = time.time()
start = minute_start(now)
end = start + 120
while hm(end) == hm(start):  # never the same minute (a DST fold): push on
    end += 60
schedule = "%s,pause %s,off" % (hm(start), hm(end))
tap.diag("now %s, bandwidth = \"%s\"" % (time.strftime("%H:%M:%S"), schedule))

with Env(tap, upload={"bandwidth": schedule, "parallel": 2}) as env:
    folder = os.path.join(env.dir, "lab")
    os.makedirs(folder)
    env.write_config({"bandwidth": schedule, "parallel": 2},
                     watch=['{ path = "%s"; remote_prefix = ""; settle = "200ms"; }' % folder])
    names = ["pause-%d.pdf" % i for i in range(3)]
    with env.daemon() as d:
        for i, name in enumerate(names):
            with open(os.path.join(folder, name), "wb") as f:
                f.write(b"lab report %d\n" % i * 100)
        tap.ok(env.wait_jobs(60, queued=3), "the dropped files are queued")

        def status():
            return json.loads(env.cli("status", "--json")[1])["daemon"] or {}

        want = "paused until %s" % hm(end)
        ok = env.wait_until(lambda: want in status().get("summary", ""), 30, "status")
        st = status()
        tap.ok(ok, "the status line says \"%s\"" % want, st.get("summary"))
        tap.eq(st.get("bandwidth", {}).get("paused_until"), int(end) * 1000,
               "status --json gives the pause's end (Unix ms)")
        tap.ok(want in env.cli("status")[1], "and so does `healsync status`")
        tap.ok("uploads paused until %s" % hm(end) in d.output(), "the pause is logged",
               d.output()[-2000:])

        # Nothing may start while the pause holds: look again close to its
        # end, when any upload would long have been done.
        while time.time() < end - 10 and d.proc.poll() is None:
            time.sleep(0.5)
        if time.time() < end - 1:
            stats = env.server.admin("GET", "/stats")
            tap.eq(stats.get("requests"), {}, "the server saw no request during the pause")
            tap.eq(env.server_files(), [], "and holds no file")
            tap.eq(env.counts().get("queued"), 3, "the files are still queued")
        else:
            tap.skip("the machine was too slow to look inside the pause")

        ok = env.wait_until(lambda: env.counts().get("done") == 3, 120 + end - time.time(),
                            "all done")
        tap.ok(ok, "when the pause ends, every file is uploaded", d.output()[-3000:])
        tap.eq([(env.stored(os.path.join("..", "lab", n), n) or {}).get("complete_count")
                for n in names], [1] * 3, "each stored once")
        done_at = [datetime.datetime.fromisoformat(f["first_completed_at"].replace("Z", "+00:00"))
                   .timestamp() for f in env.server_files()]
        tap.ok(len(done_at) == 3 and min(done_at) >= end, "none before the pause's end",
               (done_at, end))
        tap.ok("pause is over; uploads resume" in d.output(), "the end is logged")
        ok = env.wait_until(lambda: "paused" not in status().get("summary", "x paused"), 30,
                            "status")
        tap.ok(ok and status().get("bandwidth", {}).get("paused_until") is None,
               "status no longer says paused", status())
    tap.eq(d.proc.returncode, 0, "daemon exits 0")

tap.finish()
