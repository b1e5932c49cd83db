#!/usr/bin/env python3
"""TLS refused: a certificate from a CA that ca_file does not hold, one for
another host name, and an expired one. Each pauses uploads with one
warning naming the host and the cause, spends no attempt (even with
max_attempts = 1), and is over after the fix and a reload (SIGHUP): a new
CA bundle written over the old file at the same path, or a server with a
proper certificate."""
import json
import os
import re
import signal

import hstest
from hstest import TAP, Env, hsserver_client
from tlsca import CA

tap = TAP()
base = hstest.tempfile.mkdtemp(prefix="hs-tls-")
ca = CA(os.path.join(base, "ca"))
good_cert, good_key = ca.server("good")
other = CA(os.path.join(base, "other"), name="somebody else's CA")
cases = [
    ("untrusted", ca.server("untrusted"), r"unable to get local issuer certificate"),
    ("wrong host", ca.server("wronghost", hosts=["wrong.example"]),
     r"(no alternative certificate subject name|does not match)"),
    ("expired", ca.server("expired", expired=True), r"certificate has expired"),
]



for label, (cert, key), cause in cases:
    # "untrusted": the server's certificate is good, ca_file holds another CA.
    bundle = os.path.join(base, "bundle-%s.pem" % label.replace(" ", "-"))
    with open(bundle, "wb") as out, open((other if label == "untrusted" else ca).cert_file,
                                         "rb") as src:
        out.write(src.read())
    if label == "untrusted":
        cert, key = good_cert, good_key
    with Env(tap, server_args=["--tls-cert", cert, "--tls-key", key], log_level="info",
             upload={"ca_file": bundle, "max_attempts": 1}) as env:
        port = env.server.port
        name = "%s.pdf" % label.replace(" ", "-")
        env.write_file(name, b"report behind a %s certificate\n" % label.encode() * 40)
        env.enqueue(name)
        with env.daemon() as d:
            paused = env.wait_until(lambda: "uploads paused" in d.output(), 60, "the pause")
            tap.ok(paused, "%s: uploads pause" % label, d.output()[-2000:])
            lines = [ln for ln in d.output().splitlines() if "uploads paused" in ln]
            tap.eq(len(lines), 1, "%s: one line for the pause" % label)
            line = lines[0] if lines else ""
            tap.ok("127.0.0.1:%d" % port in line and re.search(cause, line),
                   "%s: the line names the host and the cause" % label, line)
            tap.ok(line.startswith("<4>"), "%s: logged as a warning" % label, line)
            tap.eq((env.job(name).get("state"), env.job(name).get("attempts")), ("queued", 0),
                   "%s: the job keeps its attempts (max_attempts = 1)" % label)

            def health():
                code, out, _ = env.cli("status", "--json", check=False)
                doc = json.loads(out or "{}")
                return (code, [(r["code"], r["state"]) for r in
                               doc.get("health", {}).get("reasons", [])],
                        doc.get("apis", {}).get("upload", {}).get("state"))
            tap.ok(env.wait_until(lambda: health() == (1, [("upload_unavailable", "WARNING")],
                                                       "unavailable"), 30, "the verdict"),
                   "%s: health WARNING, upload_unavailable; status exits 1" % label, health())

            if label == "untrusted":
                # The right CA written over the same file: a reload reads it.
                with open(bundle, "wb") as out, open(ca.cert_file, "rb") as src:
                    out.write(src.read())
            else:
                # The server gets a proper certificate on the same port.
                data_dir = os.path.join(env.dir, "server")
                env.server.stop()
                env.server = hsserver_client.start(
                    port=port, args=["--upload-key", hstest.UPLOAD_KEY, "--records-key",
                                     hstest.RECORDS_KEY, "--data-dir", data_dir,
                                     "--tls-cert", good_cert, "--tls-key", good_key])
            d.proc.send_signal(signal.SIGHUP)
            ok = env.wait_jobs(timeout=60, done=1)
            tap.ok(ok, "%s: after the fix and a reload the file is uploaded" % label,
                   d.output()[-2000:])
            tap.eq(env.job(name).get("attempts"), 0, "%s: without spending an attempt" % label)
            tap.ok(env.wait_until(lambda: health() == (0, [], "up"), 30, "OK again"),
                   "%s: health OK again, the upload API up" % label, health())
            tap.ok(env.stored(name), "%s: stored with its SHA-256" % label)
            tap.eq(len([ln for ln in d.output().splitlines() if "uploads paused" in ln]), 1,
                   "%s: still one pause line in the whole log" % label)
        tap.eq(d.proc.returncode, 0, "%s: the daemon exits 0" % label)

hstest.shutil.rmtree(base, ignore_errors=True)
tap.finish()
