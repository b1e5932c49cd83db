#!/usr/bin/env python3
"""Throughput: one file (default 1 GiB) uploaded multipart to the reference
storage by healsync, and the same parts PUT by curl with the same
parallelism, in the same run against the same server.

    bench/upload_throughput.py [--size-mib 1024] [--parallel 4] [--part-mib 16]
                               [--tls] [--two-hosts] [--small-files 1000]

healsync's figure is end to end (reading the file for SHA-256 and CRCs,
presigning, PUTs, complete); its transfer phase alone (first PUT byte to the
last) is printed too. The baseline does the same upload with standard
tools: sha256sum, the API calls, and one curl PUTting the parts (cut into
files beforehand, untimed) with the same parallelism; its PUTs alone are
printed too. Both pay the server's complete, which re-hashes the file.
The figure to watch is end to end, healsync against the baseline.

--tls runs the same over HTTPS: a throwaway CA (openssl), the reference
server on TLS with a certificate it signed, healsync (ca_file) and curl
(--cacert) trusting it. It also counts the TLS connections (each one a full
handshake) that healsync opened for the 1 GiB upload and then, with a
fresh daemon, for --small-files small files; curl's PUTs are counted too.
The goal is no more than parallel + 2 each: connections kept alive and
reused for the API calls and the PUTs alike.

--two-hosts serves the storage on a second port of the server
(--storage-port), as in the field where the Upload API and the storage are
different hosts: a client's connection cache keeps them apart. The
connections and handshakes are then counted per host, and the goal is
parallel + 2 for each. --small-files runs with --tls or --two-hosts."""
import argparse
import datetime
import base64
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib

import benchlib
from benchlib import Timer, mib
import hstest

CONTEXT = None  # the SSL context of the benchmark's own API calls (--tls)


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def api(server, method, path, body=None):
    req = urllib.request.Request(server.upload_base + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"X-API-Key": hstest.UPLOAD_KEY,
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=CONTEXT) as r:
        return json.loads(r.read() or b"null")


def connections(server):
    """Connections the server has accepted for the Upload API and its
    storage (the benchmark's own admin calls left out), TLS handshakes in
    all, and per host {"api"|"storage": [connections, handshakes]} (the
    same host twice without --two-hosts). The handshakes per host include
    the admin calls' on the API's, this call's own among them."""
    stats = server.admin("GET", "/stats")
    by_api = stats.get("connections_by_api", {})
    by_port = stats.get("connections_by_port", {})
    shakes = stats.get("tls_handshakes_by_port", {})
    per_host = {}
    for name, port in (("api", server.port), ("storage", server.storage_port)):
        per_host[name] = [by_port.get(str(port), 0), shakes.get(str(port), 0)]
    return (sum(n for api_name, n in by_api.items() if api_name != "admin"),
            stats.get("tls_handshakes", 0), per_host)


def per_host_since(server, before):
    """Connections and handshakes per host since the counts before: the
    figure the goal is about. One admin handshake (this call's) left out."""
    after = connections(server)[2]
    out = {k: [after[k][0] - before[k][0], after[k][1] - before[k][1]] for k in after}
    out["api"][1] -= 1
    return out


def curl_baseline(env, path, size, part_size, parallel, cacert=None):
    """The same upload done with standard tools: sha256sum for the hash the
    API wants first, the API calls (create, presign, complete) from here,
    and one curl doing all the PUTs, `parallel` at once. The parts are cut
    into files beforehand, untimed. Returns (end to end, PUTs alone,
    connections curl opened)."""
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
                if cacert:  # per transfer: --next starts each one afresh
                    args += ["--cacert", cacert]
                args += ["-o", "/dev/null", "-D", os.path.join(parts_dir, "h%05d" % n),
                         "-T", os.path.join(parts_dir, "%05d" % n),
                         "-H", "x-checksum-crc32: " + crcs[n - 1]]
                for k, v in u["headers"].items():
                    args += ["-H", "%s: %s" % (k, v)]
                args.append(u["url"])
        conns_before = connections(env.server)[0]
        with Timer() as puts:
            subprocess.run(args, check=True)
        curl_conns = connections(env.server)[0] - conns_before
        etags = []
        for n in range(1, count + 1):
            with open(os.path.join(parts_dir, "h%05d" % n)) as h:
                etag = [l.split(":", 1)[1].strip() for l in h if l.lower().startswith("etag:")]
            etags.append({"part_number": n, "etag": etag[-1]})
        api(env.server, "POST", "/uploads/multipart/%s/complete" % s["upload_id"],
            {"parts": etags})
    return total.elapsed, puts.elapsed, curl_conns


def small_files(env, count, parallel):
    """count small files through a fresh daemon: (seconds, connections,
    connections and handshakes per host)."""
    names = ["small/%04d.pdf" % i for i in range(count)]
    for i, name in enumerate(names):
        env.write_file(name, os.urandom(4096 + i))
    env.enqueue(*names)
    before = connections(env.server)
    with Timer() as t:
        d = env.daemon()
        ok = env.wait_jobs(timeout=1800, done=count + 1)
    d.stop()
    if not ok:
        sys.exit("healsync did not store the small files:\n" + d.output()[-2000:])
    per_host = per_host_since(env.server, before[2])
    return t.elapsed, connections(env.server)[0] - before[0], per_host


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--part-mib", type=int, default=16)
    ap.add_argument("--tls", action="store_true", help="over HTTPS, counting connections")
    ap.add_argument("--two-hosts", action="store_true",
                    help="storage on a second port: connections counted per host")
    ap.add_argument("--small-files", type=int, default=1000,
                    help="with --tls or --two-hosts: small files whose connections are "
                    "counted (0: none)")
    opts = ap.parse_args()
    hstest.HEALSYNC = benchlib.healsync_binary()
    size = opts.size_mib * 1024 * 1024
    tap = hstest.TAP()
    upload = {"parallel": opts.parallel, "part_size": "%dMiB" % opts.part_mib,
              "multipart_threshold": "64MiB"}
    server_args, cacert, ca_dir = [], None, None
    if opts.tls:
        global CONTEXT
        import tlsca
        ca_dir = tempfile.mkdtemp(prefix="hs-bench-ca-", dir="/var/tmp")
        ca = tlsca.CA(ca_dir)
        cert, key = ca.server()
        server_args = ["--tls-cert", cert, "--tls-key", key]
        cacert = upload["ca_file"] = ca.cert_file
        CONTEXT = ssl.create_default_context(cafile=cacert)
    if opts.two_hosts:
        server_args += ["--storage-port", "0"]
    try:
        run(opts, size, tap, upload, server_args, cacert)
    finally:
        if ca_dir:
            shutil.rmtree(ca_dir, ignore_errors=True)


def run(opts, size, tap, upload, server_args, cacert):
    with hstest.Env(tap, upload=upload, server_args=server_args,
                    log_level="info", base_dir="/var/tmp") as env:
        path = env.path("big.bin")
        hstest.write_random(path, size, seed=1)
        hstest.sha256_file(path)  # warm the page cache for both runs alike

        env.enqueue("big.bin")
        conns_before = connections(env.server)
        with Timer() as t:
            started = time.time()
            d = env.daemon()
            ok = env.wait_jobs(timeout=3600, done=1)
        d.stop()
        hs_hosts = per_host_since(env.server, conns_before[2])
        hs_conns = connections(env.server)[0] - conns_before[0]
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

        curl_total, curl_puts, curl_conns = curl_baseline(
            env, path, size, opts.part_mib * 1024 * 1024, opts.parallel, cacert)
        small = small_files(env, opts.small_files, opts.parallel) \
            if (opts.tls or opts.two_hosts) and opts.small_files else None
        handshakes = connections(env.server)[1]

    print("upload throughput%s, %d MiB file, %d MiB parts, %d at once" %
          (" over HTTPS" if opts.tls else "", opts.size_mib, opts.part_mib, opts.parallel))
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
    if opts.two_hosts:
        goal = opts.parallel + 2
        print("  per host (API and storage on two ports), goal <= parallel + 2 = %d each:" % goal)
        print("    %-36s %12s %12s" % ("", "API", "storage"))
        rows = [("healsync, the %d MiB upload" % opts.size_mib, hs_hosts)]
        if small:
            rows.append(("healsync, %d small files" % opts.small_files, small[2]))
        for name, hosts in rows:
            cells = ["%d" % hosts[k][0] + (" (%d TLS)" % hosts[k][1] if opts.tls else "")
                     for k in ("api", "storage")]
            print("    %-36s %12s %12s" % (name, cells[0], cells[1]))
        worst = max(h[k][0] for _, h in rows for k in ("api", "storage"))
        print("  goal: at most %d connections per host -> %s"
              % (goal, "met" if worst <= goal else "NOT met"))
    if opts.tls or (opts.two_hosts and small):
        goal = opts.parallel + 2
        print("  %s, goal <= parallel + 2 = %d:" % (
            "TLS connections (full handshakes)" if opts.tls else "connections", goal))
        print("    %-36s %8d" % ("healsync, the %d MiB upload" % opts.size_mib, hs_conns))
        print("    %-36s %8d" % ("curl's PUTs of the same parts", curl_conns))
        if small:
            print("    %-36s %8d  (%.2f s, %.0f files/s)" % (
                "healsync, %d small files" % opts.small_files, small[1], small[0],
                opts.small_files / small[0]))
        print("    %-36s %8d" % ("handshakes in all, admin calls too", handshakes))


if __name__ == "__main__":
    main()
