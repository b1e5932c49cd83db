#!/usr/bin/env python3
"""Rate limits: small files against a fixed-window quota (each file takes 3
requests: presign, PUT, complete; the PUT draws on the quota only when the
server counts storage). Prints the 429s the server answered (goal: none
after the first answer) and the elapsed time beside two baselines:

  least   what the quota allows: (windows - 1) x the window, less the part
          of the first window already over for epoch-aligned windows (the
          last window need not run out);
  floor   what a client that holds a Remaining: 0 until the reset the
          server said can reach. It is the least but for Unix-time resets
          on windows that open with a request: the server says such a
          window's end rounded up to the second, the next window opens
          after it and ends a second late again, so every window but the
          first lasts W + 1 s for any such client (docs/ratelimit.md).

Goal: within 1.1x of the floor in every cell, and of the least wherever
the floor is the least.

    bench/ratelimit.py [--files 500] [--limit 30] [--window 5]
                       [--reset-style unix|delta|delta-exact]
                       [--window-align first|epoch] [--storage-quota counted|off]
                       [--parallel 4] [--clock-offset SECONDS]
    bench/ratelimit.py --matrix [--files 100] [--limit 20] [--clocks=-3600,0,3600]
                       [--windows 2,5] [--resets unix,delta,delta-exact]

--matrix runs one cell per window {2, 5 s} x reset {unix, delta, delta-exact}
x storage {off, counted} x windows {first request, epoch} x the server's
clock offsets given by --clocks (default: 0 only), and prints a line per
cell; --windows and --resets run a part of it. --clock-offset sets the
reference server's clock that far ahead of ours (negative: behind): its
Date, resets, Retry-After dates and expiry."""
import argparse
import math
import sys
import time

import benchlib
from benchlib import Timer
import hstest


def floor_for(least, windows, window, reset_style, align):
    """The least a client that waits for every said reset can take."""
    if reset_style == "unix" and align == "first" and windows >= 2:
        return least + (windows - 2)
    return least


def run_cell(files, limit, window, reset_style, align, storage, parallel, clock=0):
    """One run; returns (elapsed s, least s, floor s, 429 count)."""
    tap = hstest.TAP()
    args = ["--rate-limit", "%d/%d" % (limit, window), "--reset-style", reset_style,
            "--window-align", align, "--storage-quota", storage, "--clock-offset", str(clock)]
    with hstest.Env(tap, server_args=args, log_level="info",
                    upload={"parallel": parallel}) as env:
        names = []
        for i in range(files):
            names.append(env.write_file("r-%04d.pdf" % i, b"report %d\n" % i * 20)
                         .rsplit("/", 1)[1])
        env.enqueue(*names)
        if align == "epoch":
            # Start 30% into a window (of the server's clock), so that the first (partial) window
            # can be used, and the least below is fair.
            time.sleep((0.3 * window - (time.time() + clock) % window) % window)
        with Timer() as t:
            start = time.time() + clock
            d = env.daemon()
            ok = env.wait_jobs(timeout=3600, done=files)
        d.stop()
        stats = env.server.admin("GET", "/stats")
        if not ok:
            sys.exit("not all files were uploaded:\n" + d.output()[-2000:])
    counted = (3 if storage == "counted" else 2) * files
    windows = math.ceil(counted / limit)
    least = (windows - 1) * window
    if align == "epoch":  # the first window was partly over at the start
        least -= start % window
    return t.elapsed, least, floor_for(least, windows, window, reset_style, align), \
        stats["rate_limited"]


def matrix(opts):
    print("rate-limit matrix: %d files, quota %d per window, parallel %d" %
          (opts.files, opts.limit, opts.parallel))
    print("%-6s %-12s %-8s %-6s %6s %8s %8s %8s %6s %6s %5s" %
          ("window", "reset", "storage", "align", "clock", "elapsed", "least", "floor",
           "/least", "/floor", "429s"))
    worst = worst_floor = 0.0
    n429 = 0
    clocks = [int(c) for c in opts.clocks.split(",")]
    for window in [int(w) for w in opts.windows.split(",")]:
        for reset in opts.resets.split(","):
            for storage in ("off", "counted"):
                for align in ("first", "epoch"):
                    for clock in clocks:
                        elapsed, least, floor, n = run_cell(opts.files, opts.limit, window,
                                                            reset, align, storage,
                                                            opts.parallel, clock)
                        if floor == least:
                            worst = max(worst, elapsed / least)
                        worst_floor = max(worst_floor, elapsed / floor)
                        n429 += n
                        print("%-6s %-12s %-8s %-6s %+6d %7.1fs %7.1fs %7.1fs %6.3f %6.3f %5d" %
                              ("%ds" % window, reset, storage, align, clock, elapsed, least,
                               floor, elapsed / least, elapsed / floor, n), flush=True)
    print("429s %d (goal 0); worst ratio to the floor %.3f (goal <= 1.1); worst ratio to "
          "the least where the floor is the least %.3f (goal <= 1.1)" % (n429, worst_floor, worst))


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
    ap.add_argument("--clock-offset", type=int, default=0)
    ap.add_argument("--clocks", default="0")
    ap.add_argument("--windows", default="2,5")
    ap.add_argument("--resets", default="unix,delta,delta-exact")
    opts = ap.parse_args()
    hstest.HEALSYNC = benchlib.healsync_binary()
    if opts.matrix:
        opts.files = opts.files or 100  # 10 to 15 windows a cell
        opts.limit = opts.limit or 20
        matrix(opts)
        return
    opts.files = opts.files or 500
    opts.limit = opts.limit or 30
    elapsed, least, floor, n429 = run_cell(opts.files, opts.limit, opts.window, opts.reset_style,
                                    opts.window_align, opts.storage_quota, opts.parallel,
                                    opts.clock_offset)
    print("rate limits: %d files (%d requests), quota %d per %d s, reset as %s, "
          "windows from %s, storage %s, server clock %+d s" %
          (opts.files, 3 * opts.files, opts.limit, opts.window, opts.reset_style,
           opts.window_align, opts.storage_quota, opts.clock_offset))
    print("  429 answers           %d (goal: 0)" % n429)
    print("  elapsed               %.1f s" % elapsed)
    print("  least the quota allows %.1f s (the last window need not run out)" % least)
    print("  floor for said resets  %.1f s" % floor)
    print("  ratio to the least     %.3f" % (elapsed / least))
    print("  ratio to the floor     %.3f (goal <= 1.1)" % (elapsed / floor))


if __name__ == "__main__":
    main()
