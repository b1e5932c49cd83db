#!/usr/bin/env python3
"""Throughput: one file (default 1 GiB) uploaded multipart to the reference
storage by healsync, and the same parts PUT by curl with the same
parallelism, in the same run against the same server.

    bench/upload_throughput.py [--size-mib 1024] [--parallel 4] [--part-mib 16]

healsync's figure is end to end (reading the file for SHA-256 and CRCs,
presigning, PUTs, complete); its transfer phase alone (first PUT byte to the
last) is printed too. The baseline does the same upload with standard
tools: sha256sum, the API calls, and one curl PUTting the parts (cut into
files beforehand, untimed) with the same parallelism; its PUTs alone are
printed too. Both pay the server's complete, which re-hashes the file.
The figure to watch is end to end, healsync against the baseline."""
import argparse
import datetime
import base64
import json
import os
import subprocess
import sys
import time
import urllib.request
import zlib

import benchlib
from benchlib import Timer, mib
import hstest


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def api(server, method, path, body=None):
    req = urllib.request.Request(server.upload_base + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"X-API-Key": hstest.UPLOAD_KEY,
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read() or b"null")


def curl_baseline(env, path, size, part_size, parallel):
    """The same upload done with standard tools: sha256sum for the hash the
    API wants first, the API calls (create, presign, complete) from here,
    and one curl doing all the PUTs, `parallel` at once. The parts are cut
    into files beforehand, untimed. Returns (end to end, PUTs alone)."""
    count = -(-size // part_size)
    parts_dir = os.path.join(env.dir, "parts")
    os.makedirs(parts_dir)
    crcs = []
    with open(path, "rb") as f:
        for n in range(1, count + 1):
            data = f.read(part_size)
            with open(os.path.join(parts_dir, "%05d" % n), "wb") as out:
                out.write(data)
            crcs.append(base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode())
    with Timer() as total:
        sha = subprocess.run(["sha256sum", path], check=True, capture_output=True,
                             text=True).stdout.split()[0]
        s = api(env.server, "POST", "/uploads/multipart",
                {"filename": "curl-baseline.bin", "size_bytes": size, "sha256": sha,
                 "content_type": "application/octet-stream", "part_size_bytes": part_size})["data"]
        if s["part_count"] != count or s["part_size_bytes"] != part_size:
            sys.exit("the server changed the part size; run with another --part-mib")
        args = ["curl", "-sS", "--fail", "--no-progress-meter", "-Z", "--parallel-max",
                str(parallel)]
        for first in range(1, count + 1, 100):
            numbers = list(range(first, min(first + 100, count + 1)))
            urls = api(env.server, "POST", "/uploads/multipart/%s/parts" % s["upload_id"],
                       {"part_numbers": numbers})["data"]["parts"]
            for u in sorted(urls, key=lambda p: p["part_number"]):
                n = u["part_number"]
                if n > 1:
                    args.append("--next")
                args += ["-o", "/dev/null", "-D", os.path.join(parts_dir, "h%05d" % n),
                         "-T", os.path.join(parts_dir, "%05d" % n),
                         "-H", "x-checksum-crc32: " + crcs[n - 1]]
                for k, v in u["headers"].items():
                    args += ["-H", "%s: %s" % (k, v)]
                args.append(u["url"])
        with Timer() as puts:
            subprocess.run(args, check=True)
        etags = []
        for n in range(1, count + 1):
            with open(os.path.join(parts_dir, "h%05d" % n)) as h:
                etag = [l.split(":", 1)[1].strip() for l in h if l.lower().startswith("etag:")]
            etags.append({"part_number": n, "etag": etag[-1]})
        api(env.server, "POST", "/uploads/multipart/%s/complete" % s["upload_id"],
            {"parts": etags})
    return total.elapsed, puts.elapsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--part-mib", type=int, default=16)
    opts = ap.parse_args()
    hstest.HEALSYNC = benchlib.healsync_binary()
    size = opts.size_mib * 1024 * 1024
    tap = hstest.TAP()
    with hstest.Env(tap, upload={"parallel": opts.parallel, "part_size": "%dMiB" % opts.part_mib,
                                 "multipart_threshold": "64MiB"},
                    log_level="info", base_dir="/var/tmp") as env:
        path = env.path("big.bin")
        hstest.write_random(path, size, seed=1)
        hstest.sha256_file(path)  # warm the page cache for both runs alike

        env.enqueue("big.bin")
        with Timer() as t:
            started = time.time()
            d = env.daemon()
            ok = env.wait_jobs(timeout=3600, done=1)
        d.stop()
        if not ok or not env.stored("big.bin"):
            sys.exit("healsync did not store the file:\n" + d.output()[-2000:])
        hs_elapsed = t.elapsed
        series = [b for b in env.server.admin("GET", "/received?bucket_ms=10") if b[1]]
        first, last = (series[0][0], series[-1][0] + 0.01) if series else (0, 0)
        up = [u for u in env.server.admin("GET", "/uploads").values()
              if u.get("filename") == "big.bin"][0]
        stored = env.stored("big.bin")
        created = parse_time(up["created_at"])
        completed = parse_time(stored["last_completed_at"])

        curl_total, curl_puts = curl_baseline(env, path, size, opts.part_mib * 1024 * 1024,
                                              opts.parallel)

    print("upload throughput, %d MiB file, %d MiB parts, %d at once" %
          (opts.size_mib, opts.part_mib, opts.parallel))
    row = "  %-38s %8.2f s  %8.1f MiB/s"
    print(row % ("healsync, end to end", hs_elapsed, mib(size) / hs_elapsed))
    print("    %-36s %8.2f s" % ("start, read for SHA-256 + CRCs", created - started))
    print("    %-36s %8.2f s" % ("first to last PUT byte", last - first))
    print("    %-36s %8.2f s" % ("server's complete (it re-hashes)", completed - last))
    print(row % ("sha256sum + API calls + curl, end to end", curl_total, mib(size) / curl_total))
    print("    %-36s %8.2f s  %8.1f MiB/s" % ("of which curl's PUTs", curl_puts,
                                              mib(size) / curl_puts))
    print("  ratio healsync/baseline: end to end %.2f (goal <= 1.1), PUT phase %.2f" %
          (hs_elapsed / curl_total, (last - first) / curl_puts))


if __name__ == "__main__":
    main()
