#!/usr/bin/env python3
"""Rate limits: small files against a fixed-window quota (each file takes 3
requests: presign, PUT, complete; the PUT draws on the quota only when the
server counts storage). Prints the 429s the server answered (goal: none
after the first answer) and the elapsed time beside the least the quota
allows (goal: within 1.1x).

    bench/ratelimit.py [--files 500] [--limit 30] [--window 5]
                       [--reset-style unix|delta|delta-exact]
                       [--window-align first|epoch] [--storage-quota counted|off]
                       [--parallel 4]
    bench/ratelimit.py --matrix [--files 50] [--limit 20]

--matrix runs one cell per window {2, 5 s} x reset {unix, delta, delta-exact}
x storage {off, counted} x windows {first request, epoch}, and prints a line
per cell."""
import argparse
import math
import sys
import time

import benchlib
from benchlib import Timer
import hstest


def run_cell(files, limit, window, reset_style, align, storage, parallel):
    """One run; returns (elapsed s, least s, 429 count)."""
    tap = hstest.TAP()
    args = ["--rate-limit", "%d/%d" % (limit, window), "--reset-style", reset_style,
            "--window-align", align, "--storage-quota", storage]
    with hstest.Env(tap, server_args=args, log_level="info",
                    upload={"parallel": parallel}) as env:
        names = []
        for i in range(files):
            names.append(env.write_file("r-%04d.pdf" % i, b"report %d\n" % i * 20)
                         .rsplit("/", 1)[1])
        env.enqueue(*names)
        if align == "epoch":
            # Start 30% into a window, so that the first (partial) window
            # can be used, and the least below is fair.
            time.sleep((0.3 * window - time.time() % window) % window)
        with Timer() as t:
            start = time.time()
            d = env.daemon()
            ok = env.wait_jobs(timeout=3600, done=files)
        d.stop()
        stats = env.server.admin("GET", "/stats")
        if not ok:
            sys.exit("not all files were uploaded:\n" + d.output()[-2000:])
    counted = (3 if storage == "counted" else 2) * files
    least = (math.ceil(counted / limit) - 1) * window
    if align == "epoch":  # the first window was partly over at the start
        least -= start % window
    return t.elapsed, least, stats["rate_limited"]


def matrix(opts):
    print("rate-limit matrix: %d files, quota %d per window, parallel %d" %
          (opts.files, opts.limit, opts.parallel))
    print("%-6s %-12s %-8s %-6s %8s %8s %6s %5s" %
          ("window", "reset", "storage", "align", "elapsed", "least", "ratio", "429s"))
    worst = 0.0
    for window in (2, 5):
        for reset in ("unix", "delta", "delta-exact"):
            for storage in ("off", "counted"):
                for align in ("first", "epoch"):
                    elapsed, least, n429 = run_cell(opts.files, opts.limit, window, reset,
                                                    align, storage, opts.parallel)
                    worst = max(worst, elapsed / least)
                    print("%-6s %-12s %-8s %-6s %7.1fs %7.1fs %6.3f %5d" %
                          ("%ds" % window, reset, storage, align, elapsed, least,
                           elapsed / least, n429), flush=True)
    print("worst ratio %.3f (goal <= 1.1)" % worst)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--matrix", action="store_true")
    ap.add_argument("--files", type=int)
    ap.add_argument("--limit", type=int)
    ap.add_argument("--window", type=int, default=5)
    ap.add_argument("--reset-style", default="unix")
    ap.add_argument("--window-align", default="first")
    ap.add_argument("--storage-quota", default="counted")
    ap.add_argument("--parallel", type=int, default=4)
    opts = ap.parse_args()
    hstest.HEALSYNC = benchlib.healsync_binary()
    if opts.matrix:
        opts.files = opts.files or 50
        opts.limit = opts.limit or 20
        matrix(opts)
        return
    opts.files = opts.files or 500
    opts.limit = opts.limit or 30
    elapsed, least, n429 = run_cell(opts.files, opts.limit, opts.window, opts.reset_style,
                                    opts.window_align, opts.storage_quota, opts.parallel)
    print("rate limits: %d files (%d requests), quota %d per %d s, reset as %s, "
          "windows from %s, storage %s" %
          (opts.files, 3 * opts.files, opts.limit, opts.window, opts.reset_style,
           opts.window_align, opts.storage_quota))
    print("  429 answers           %d (goal: 0)" % n429)
    print("  elapsed               %.1f s" % elapsed)
    print("  least the quota allows %.1f s (the last window need not run out)" % least)
    print("  ratio                 %.3f (goal <= 1.1)" % (elapsed / least))


if __name__ == "__main__":
    main()
