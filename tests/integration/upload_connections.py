#!/usr/bin/env python3
"""Connections reused when the Upload API and the storage are different
hosts (the server's --storage-port: presigned URLs name a second port, so
for libcurl a second origin): many small files, one PUT each, open at most
`parallel` + 2 connections to each, over HTTP and over HTTPS, where each
connection is a full handshake. The server counts the connections each
port accepted (its own admin calls left out); these are counts, not
times."""
import os

import hstest
from hstest import TAP, Env
from tlsca import CA

FILES = 300
PARALLEL = 4

tap = TAP()
base = hstest.tempfile.mkdtemp(prefix="hs-conns-")
ca = CA(os.path.join(base, "ca"))
cert, key = ca.server()

for tls in (False, True):
    scheme = "HTTPS" if tls else "HTTP"
    server_args = ["--storage-port", "0"]
    upload = {"parallel": PARALLEL}
    if tls:
        server_args += ["--tls-cert", cert, "--tls-key", key]
        upload["ca_file"] = ca.cert_file
    with Env(tap, server_args=server_args, upload=upload, log_level="info") as env:
        api_port, storage_port = env.server.port, env.server.storage_port
        tap.ok(api_port != storage_port, "%s: storage on its own port" % scheme)
        names = ["r%03d.pdf" % i for i in range(FILES)]
        for i, name in enumerate(names):
            env.write_file(name, b"a small lab report %d\n" % i * 50)
        env.enqueue(*names)
        with env.daemon() as d:
            ok = env.wait_jobs(timeout=300, done=FILES)
            tap.ok(ok, "%s: %d small files uploaded" % (scheme, FILES), d.output()[-3000:])
        stats = env.server.admin("GET", "/stats")
        puts = stats["requests"].get("put", {}).get("200", 0)
        tap.ok(puts == FILES, "%s: one PUT per file" % scheme, stats["requests"])
        by_port = stats["connections_by_port"]
        api_conns = by_port.get(str(api_port), 0)
        storage_conns = by_port.get(str(storage_port), 0)
        goal = PARALLEL + 2
        tap.ok(1 <= api_conns <= goal, "%s: %d connections to the API (at most %d)"
               % (scheme, api_conns, goal), by_port)
        tap.ok(1 <= storage_conns <= goal, "%s: %d connections to the storage (at most %d)"
               % (scheme, storage_conns, goal), by_port)
        if tls:
            shakes = stats["tls_handshakes_by_port"]
            tap.ok(shakes.get(str(storage_port), 0) <= goal,
                   "HTTPS: %d TLS handshakes with the storage (at most %d)"
                   % (shakes.get(str(storage_port), 0), goal), shakes)
        tap.ok(all(env.stored(n) for n in names[:: FILES // 10]), "%s: files stored" % scheme)

tap.finish()
