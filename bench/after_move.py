#!/usr/bin/env python3
"""after_upload = "move:" to another file system: how long the event loop
is held while a large file is copied, beside `cp` of the same file.

    bench/after_move.py [--size-mib 1024]

A file of --size-mib is uploaded from a folder that keeps it; then the
folder is switched (by a reload) to move its files to a tmpfs the benchmark
mounts (so it needs root), with the source dropped from the page cache.
While the move runs, SIGHUP is sent every 20 ms; the time until each
"configuration reloaded" line is what any event (a socket, a signal, the
watchdog) waits. Printed: the move's time, the reloads answered during it
and their latency (median, max). A loop held for the whole copy answers
the first SIGHUP only when the copy is done."""
import argparse
import os
import signal
import statistics
import subprocess
import tempfile
import time

import benchlib
import hstest


def drop_cache(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def folder(path, after, recursive):
    return ('{ path = "%s"; remote_prefix = "b/"; settle = "0s"; recursive = %s; '
            'after_upload = "%s"; }' % (path, recursive, after))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    args = ap.parse_args()
    size = args.size_mib << 20
    hstest.HEALSYNC = benchlib.healsync_binary()
    tap = hstest.TAP()
    with hstest.Env(tap, log_level="info") as env:
        src, sent = env.path("big"), env.path("sent")
        os.makedirs(src)
        os.makedirs(sent)
        big = os.path.join(src, "big.bin")
        hstest.write_random(big, size)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm" % (2 * args.size_mib + 64),
                           "hs-bench", sent], capture_output=True).returncode != 0:
            raise SystemExit("after_move: needs root to mount a tmpfs")
        try:
            # Baseline: cp of the same file, cold, to the same tmpfs.
            drop_cache(big)
            t = time.monotonic()
            subprocess.run(["cp", big, os.path.join(sent, "baseline.bin")], check=True)
            cp_s = time.monotonic() - t
            os.unlink(os.path.join(sent, "baseline.bin"))

            env.write_config({}, watch=[folder(src, "keep", "false")])
            with env.daemon() as d:
                env.wait_until(lambda: env.stored("big/big.bin", "b/big.bin") is not None, 3600,
                               "the upload")
                env.wait_until(lambda: "ready" in d.output(), 60, "ready")
                # recursive changes, so the reload starts the folder anew:
                # its scan finds the stored file and runs the move.
                env.write_config({}, watch=[folder(src, "move:" + sent, "true")])
                drop_cache(big)
                waits = []
                t0 = time.monotonic()
                while "moved to" not in d.output():
                    before = d.output().count("configuration reloaded")
                    t = time.monotonic()
                    d.proc.send_signal(signal.SIGHUP)
                    while d.output().count("configuration reloaded") == before:
                        if d.proc.poll() is not None:
                            raise SystemExit("healsync exited:\n" + d.output()[-2000:])
                        time.sleep(0.001)
                    waits.append(time.monotonic() - t)
                    time.sleep(0.02)
                move_s = time.monotonic() - t0
        finally:
            subprocess.run(["umount", "-l", sent], capture_output=True)
    print("after_move: %d MiB to a tmpfs, source not cached" % args.size_mib)
    print("  cp (baseline)        %8.2f s" % cp_s)
    print("  healsync move        %8.2f s  (from the reload that starts it)" % move_s)
    print("  reloads answered     %8d     during the move" % len(waits))
    print("  loop latency median  %8.3f s" % statistics.median(waits))
    print("  loop latency max     %8.3f s  (the first one includes the folder's scan)"
          % max(waits))


if __name__ == "__main__":
    main()
