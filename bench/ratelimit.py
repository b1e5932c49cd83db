#!/usr/bin/env python3
"""Rate limits: 500 small files against a quota of 30 requests per 5 s
(each file takes 3 requests: presign, PUT, complete). Prints the 429s the
server answered after the first response (goal: none) and the elapsed time
beside the least the quota allows (goal: within 1.1x).

    bench/ratelimit.py [--files 500] [--limit 30] [--window 5] [--reset-style unix|delta]"""
import argparse
import math
import sys

import benchlib
from benchlib import Timer
import hstest


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=500)
    ap.add_argument("--limit", type=int, default=30)
    ap.add_argument("--window", type=int, default=5)
    ap.add_argument("--reset-style", default="unix")
    opts = ap.parse_args()
    hstest.HEALSYNC = benchlib.healsync_binary()
    tap = hstest.TAP()
    args = ["--rate-limit", "%d/%d" % (opts.limit, opts.window),
            "--reset-style", opts.reset_style]
    with hstest.Env(tap, server_args=args, log_level="info") as env:
        names = []
        for i in range(opts.files):
            names.append(env.write_file("r-%04d.pdf" % i, b"report %d\n" % i * 20)
                         .rsplit("/", 1)[1])
        env.enqueue(*names)
        with Timer() as t:
            d = env.daemon()
            ok = env.wait_jobs(timeout=3600, done=opts.files)
        d.stop()
        stats = env.server.admin("GET", "/stats")
        if not ok:
            sys.exit("not all files were uploaded:\n" + d.output()[-2000:])
    requests = 3 * opts.files
    least = (math.ceil(requests / opts.limit) - 1) * opts.window
    print("rate limits: %d files (%d requests), quota %d per %d s, reset as %s" %
          (opts.files, requests, opts.limit, opts.window, opts.reset_style))
    print("  429 answers           %d (goal: 0)" % stats["rate_limited"])
    print("  elapsed               %.1f s" % t.elapsed)
    print("  least the quota allows %.1f s (the last window need not run out)" % least)
    print("  ratio                 %.3f (goal <= 1.1)" % (t.elapsed / least))


if __name__ == "__main__":
    main()
