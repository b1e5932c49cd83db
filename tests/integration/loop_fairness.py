#!/usr/bin/env python3
"""Long work sliced on the event loop leaves room for everything else: a
SIGHUP sent while a 4 GiB file is read for its checksums, and one sent
while a folder of many files is scanned, is answered before that work ends.
What is asserted is the order of the daemon's own log lines (the reload
line comes before the line that ends the work), not a duration."""
import os
import signal
import time

from hstest import TAP, Env

tap = TAP()
RELOADED = "configuration reloaded"
HASHED = "file read for its checksums"
SCANNED = ": scanned; "      # a folder scan ends, its files queued
BIG = 4 << 30
FILES = 50000


def opened(pid, path):
    """Whether process pid holds path open."""
    fds = "/proc/%d/fd" % pid
    try:
        names = os.listdir(fds)
    except OSError:
        return False
    for n in names:
        try:
            if os.readlink(os.path.join(fds, n)) == path:
                return True
        except OSError:
            continue
    return False


def answered_first(env, d, end, what):
    """Sends SIGHUP while the work is under way (end not logged yet) and
    checks that the reload line comes before end."""
    before = d.output()
    if not tap.ok(end not in before, "%s is still under way when SIGHUP is sent" % what,
                  before[-1500:]):
        return
    t0 = time.monotonic()
    d.proc.send_signal(signal.SIGHUP)
    tap.ok(env.wait_until(lambda: RELOADED in d.output(), 600, "the reload line"),
           "the reload is answered", d.output()[-1500:])
    t1 = time.monotonic()
    tap.ok(env.wait_until(lambda: end in d.output(), 600, "the end of the work"),
           "%s ends" % what, d.output()[-1500:])
    tap.diag("%s: reload seen after %.2f s, its end after %.2f s" %
             (what, t1 - t0, time.monotonic() - t0))
    out = d.output()
    at_end = out.find(end)
    tap.ok(0 <= out.find(RELOADED) < at_end,
           "SIGHUP is answered while %s still runs, not after it" % what,
           "\n".join(l for l in out.splitlines() if RELOADED in l or end in l))


with Env(tap) as env:
    # The checksum pass of a big file before its upload. Sparse: reading
    # it costs no disk, only the SHA-256 and CRC-32 work.
    big = env.path("big.img")
    with open(big, "wb") as f:
        f.truncate(BIG)
    env.enqueue("big.img")
    with env.daemon() as d:
        tap.ok(env.wait_until(lambda: opened(d.proc.pid, big), 60, "big.img opened"),
               "the daemon starts reading big.img", d.output()[-1500:])
        answered_first(env, d, HASHED, "the checksum pass")
    tap.eq(d.proc.returncode, 0, "SIGTERM stops the daemon")
    os.unlink(big)

with Env(tap) as env:
    # The first scan of a watch folder holding many files.
    inbox = os.path.join(env.dir, "inbox")
    os.makedirs(inbox)
    for i in range(FILES // 1000):
        sub = os.path.join(inbox, "d%02d" % i)
        os.makedirs(sub)
        for j in range(1000):
            with open(os.path.join(sub, "f%04d.txt" % j), "wb") as f:
                f.write(b"%d %d\n" % (i, j))
    env.write_config({"parallel": 1, "bandwidth": "64KiB/s"}, watch=[
        '{ path = "%s"; remote_prefix = "i/"; settle = "1s"; }' % inbox])
    with env.daemon() as d:
        tap.ok(env.wait_until(lambda: "queued " in d.output() or SCANNED in d.output(), 120,
                              "the scan's first batch"),
               "the scan of the watch folder has begun", d.output()[-1500:])
        answered_first(env, d, SCANNED, "the folder scan")
    tap.eq(d.proc.returncode, 0, "SIGTERM stops the daemon")
tap.finish()
