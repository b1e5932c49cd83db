#!/usr/bin/env python3
"""Bandwidth cap: healsync with `bandwidth = "4MiB/s"` and 4 transfers at
once, uploading for 60 s. The reference server records the bytes it
receives every 10 ms; from that series this prints the highest rate over
any 10-second window and the average, beside the cap.

    bench/bandwidth_cap.py [--rate-mib 4] [--seconds 60]"""
import argparse
import sys
import time

import benchlib
import hstest


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate-mib", type=int, default=4)
    ap.add_argument("--seconds", type=int, default=60)
    opts = ap.parse_args()
    hstest.HEALSYNC = benchlib.healsync_binary()
    cap = opts.rate_mib * 1024 * 1024
    tap = hstest.TAP()
    with hstest.Env(tap, upload={"parallel": 4, "bandwidth": "%dMiB/s" % opts.rate_mib,
                                 "part_size": "5MiB", "multipart_threshold": "8MiB"},
                    log_level="info", base_dir="/var/tmp") as env:
        # More data than the window can carry, in both small and large files.
        names = []
        for i in range(4):
            name = "big-%d.bin" % i
            hstest.write_random(env.path(name), cap * opts.seconds // 2, seed=i)
            names.append(name)
        for i in range(40):
            name = "small-%d.pdf" % i
            hstest.write_random(env.path(name), 512 * 1024, seed=100 + i)
            names.append(name)
        env.enqueue(*names)
        d = env.daemon()
        time.sleep(opts.seconds + 5)
        d.stop()
        series = env.server.admin("GET", "/received?bucket_ms=10")

    # Skip the first bytes' bucket edge effects: windows start at the first
    # bucket with data and end at the last full window.
    data = [b for _, b in series]
    start = next((i for i, b in enumerate(data) if b), None)
    if start is None:
        sys.exit("nothing was received")
    data = data[start:]
    win = 1000  # 10 s of 10 ms buckets
    if len(data) < win:
        sys.exit("ran for less than one window")
    s = sum(data[:win])
    best = s
    for i in range(win, len(data)):
        s += data[i] - data[i - win]
        best = max(best, s)
    span = min(len(data), opts.seconds * 100)
    avg = sum(data[:span]) / (span / 100)
    print("bandwidth cap %d MiB/s, 4 transfers, %d s" % (opts.rate_mib, opts.seconds))
    print("  highest 10 s window   %8.3f MiB/s  (%.1f%% of the cap; goal <= 105%%)" %
          (best / 10 / 2**20, 100 * best / 10 / cap))
    print("  average               %8.3f MiB/s  (%.1f%% of the cap; goal >= 95%%)" %
          (avg / 2**20, 100 * avg / cap))


if __name__ == "__main__":
    main()
