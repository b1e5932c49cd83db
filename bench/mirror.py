#!/usr/bin/env python3
"""Mirror: a first run of 50,000 patients (page_size 100, every record
detail-fetched) against a quota of 100 requests per 10 s. Prints the
elapsed time beside the least the quota allows, the 429s the server
answered (goal: none; the first request is a list page, answered before
any other goes out, so every 429 is one the limiter could have foreseen),
and healsync's peak RSS beside a run of 5,000 patients (goal: the same:
records stream through the database, not memory).

The least time: a run makes R = ceil(N / page_size) + N requests (the list
pages, then one detail per record). A fixed window of `limit` requests
opens with the first request, so R requests need ceil(R / limit) windows,
and the last one need not run out:

    least = (ceil(R / limit) - 1) * window

For the defaults, R = 50,500 and least = 504 * 10 s = 84 min; the 5,000
run adds 8.4 min. A quick check of the script:

    bench/mirror.py --patients 5000 --small 500 --window 2

    bench/mirror.py [--patients 50000] [--small 5000] [--page-size 100]
                    [--limit 100] [--window 10] [--id-digits 20]
                    [--reset-style unix|delta]"""
import argparse
import math
import os
import sys

import benchlib
from benchlib import Timer
import hstest

sys.path.insert(0, os.path.join(benchlib.TOP, "tests", "integration"))
import mirrorlib  # noqa: E402


def one_run(opts, patients):
    """A first mirror run of patients records; returns its figures."""
    tap = hstest.TAP()
    args = ["--patients", str(patients), "--id-digits", str(opts.id_digits),
            "--rate-limit", "%d/%d" % (opts.limit, opts.window),
            "--reset-style", opts.reset_style]
    with hstest.Env(tap, server_args=args, log_level="info") as env:
        mirrorlib.configure(env, page_size=opts.page_size)
        with Timer() as t:
            proc = mirrorlib.start(env)
            code, rss_kib = benchlib.wait_peak(proc, benchlib.PeakRSS(proc.pid))
        _, _, err = mirrorlib.finish(proc)
        stats = env.server.admin("GET", "/stats")
        runs = mirrorlib.runs(env) if code == 0 else []
        if code != 0 or not runs or runs[-1]["records"] != patients:
            sys.exit("the mirror run failed (exit %s):\n%s" % (code, err[-2000:]))
    requests = math.ceil(patients / opts.page_size) + patients
    return {
        "patients": patients,
        "requests": requests,
        "server_requests": stats["requests_total"],
        "rate_limited": stats["rate_limited"],
        "elapsed": t.elapsed,
        "least": (math.ceil(requests / opts.limit) - 1) * opts.window,
        "rss_mib": rss_kib / 1024,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=50000)
    ap.add_argument("--small", type=int, default=5000)
    ap.add_argument("--page-size", type=int, default=100)
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--window", type=int, default=10)
    ap.add_argument("--id-digits", type=int, default=20)
    ap.add_argument("--reset-style", default="unix", choices=("unix", "delta"))
    opts = ap.parse_args()
    hstest.HEALSYNC = benchlib.healsync_binary()
    results = [one_run(opts, opts.small), one_run(opts, opts.patients)]
    print("mirror: first run, page_size %d, every record detail-fetched, quota %d per %d s, "
          "reset as %s" % (opts.page_size, opts.limit, opts.window, opts.reset_style))
    print("  least = (ceil(requests / %d) - 1) * %d s" % (opts.limit, opts.window))
    print("  %10s %10s %10s %8s %10s %10s %7s %9s" %
          ("patients", "requests", "served", "429s", "elapsed s", "least s", "ratio",
           "peak RSS"))
    for r in results:
        print("  %10d %10d %10d %8d %10.1f %10.1f %7.3f %6.1f MiB" %
              (r["patients"], r["requests"], r["server_requests"], r["rate_limited"],
               r["elapsed"], r["least"], r["elapsed"] / r["least"] if r["least"] else 0,
               r["rss_mib"]))
    small, large = results
    print("  peak RSS %d vs %d patients: %.2fx (goal: about 1)" %
          (large["patients"], small["patients"], large["rss_mib"] / small["rss_mib"]))


if __name__ == "__main__":
    main()
