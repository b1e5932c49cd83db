#!/usr/bin/env python3
"""Memory: peak RSS of `healsync run` while it uploads one large file
(default 4 GiB) multipart, beside the peak RSS of `curl` PUTting a 64 MiB
body as a reference point. The goal is a flat footprint: under 32 MiB
whatever the file size. Each peak is the program's own VmHWM (see
benchlib.PeakRSS), not wait4's, which counts the Python parent's.

    bench/upload_memory.py [--size-mib 4096]"""
import argparse
import os
import subprocess
import sys

import benchlib
import hstest


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=4096)
    opts = ap.parse_args()
    hstest.HEALSYNC = benchlib.healsync_binary()
    tap = hstest.TAP()
    with hstest.Env(tap, upload={"part_size": "16MiB", "multipart_threshold": "64MiB"},
                    log_level="info", base_dir="/var/tmp") as env:
        path = env.path("huge.bin")
        with open(path, "wb") as f:  # random blocks repeated: fast to make, real bytes
            block = os.urandom(1 << 20)
            for i in range(opts.size_mib):
                f.write(block[i % 997:] + block[:i % 997])
        env.enqueue("huge.bin")
        d = env.daemon()
        peak = benchlib.PeakRSS(d.proc.pid)
        ok = env.wait_jobs(timeout=7200, done=1)
        d.proc.send_signal(15)
        code, peak_kib = benchlib.wait_peak(d.proc, peak)
        d.log.close()
        if not ok or not env.stored("huge.bin"):
            sys.exit("healsync did not store the file:\n" + d.output()[-2000:])

        body = env.path("body.bin")
        with open(body, "wb") as f:
            f.write(os.urandom(64 << 20))
        curl = subprocess.Popen(["curl", "-sS", "-o", "/dev/null", "-T", body,
                                 env.server.base + "/_admin/stats"])
        _, curl_kib = benchlib.wait_peak(curl, benchlib.PeakRSS(curl.pid))

    print("peak RSS while uploading a %d MiB file" % opts.size_mib)
    print("  healsync run              %8.1f MiB" % (peak_kib / 1024))
    print("  curl -T (64 MiB body)     %8.1f MiB   (reference)" % (curl_kib / 1024))
    print("  goal: healsync under 32 MiB -> %s" % ("met" if peak_kib < 32 * 1024 else "NOT met"))


if __name__ == "__main__":
    main()
