#!/usr/bin/env python3
"""The status file is refreshed about once a second while the daemon is
busy, from its first second on: not rewritten back to back (a refresh
once timed from the moment the first was due, 0, put every later one in
the past, and the daemon rewrote status.json as many times as the machine
had been up seconds, at the cost of CPU the uploads needed). Counted with
inotify: every refresh renames a new status.json into state_dir."""
import ctypes
import os
import struct
import time

from hstest import TAP, Env, write_random

IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_NONBLOCK = 0o4000
MIB = 1024 * 1024


class Renames:
    """Counts files renamed into a directory, by name (inotify)."""

    def __init__(self, path):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(IN_NONBLOCK)
        # Both halves of a rename: alone, successive IN_MOVED_TO events
        # of one name may reach the reader as one.
        mask = IN_MOVED_FROM | IN_MOVED_TO
        if self.fd < 0 or self.libc.inotify_add_watch(self.fd, path.encode(), mask) < 0:
            raise OSError(ctypes.get_errno(), "inotify on " + path)
        self.counts = {}

    def drain(self):
        while True:
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                return self.counts
            at = 0
            while at < len(buf):
                _, mask, _, length = struct.unpack_from("iIII", buf, at)
                name = buf[at + 16:at + 16 + length].rstrip(b"\0").decode()
                if mask & IN_MOVED_TO:
                    self.counts[name] = self.counts.get(name, 0) + 1
                at += 16 + length

    def close(self):
        os.close(self.fd)


tap = TAP()
# A cap keeps the daemon busy for a few seconds.
with Env(tap, upload={"bandwidth": "8MiB/s"}) as env:
    write_random(env.path("scan.bin"), 24 * MIB, seed=4)
    env.enqueue("scan.bin")
    os.makedirs(env.state, exist_ok=True)
    renames = Renames(env.state)
    started = time.monotonic()
    with env.daemon() as d:
        ok = env.wait_jobs(timeout=120, done=1)
        tap.ok(ok, "the upload is done", d.output()[-2000:])
        busy = time.monotonic() - started
        writes = renames.drain().get("status.json", 0)
    renames.close()
    tap.diag("busy %.1f s, status.json written %d times" % (busy, writes))
    tap.ok(writes >= 2, "the status is refreshed while the daemon is busy (%d writes)" % writes)
    # About one a second; the bound only grows with a slower machine.
    tap.ok(writes <= 2 * busy + 5,
           "no more than about one refresh a second (%d writes in %.1f s)" % (writes, busy))
tap.finish()
