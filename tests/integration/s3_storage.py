#!/usr/bin/env python3
"""Storage that speaks S3's dialect, over HTTPS: answers judged by their
status, not their body (SPEC 1.1). 403 in S3 XML, HTML or with no body, an
expired URL and a PUT whose answer was lost (retried on its used URL) all
get a fresh URL without spending an attempt; SlowDown 503s without
Retry-After are transient; NoSuchUpload starts the session over. A file
whose fresh URLs keep being refused spends an attempt instead of looping,
and so does a presigned URL that cannot be parsed."""
import os

import hstest
from hstest import TAP, Env, write_random
from tlsca import CA

MIB = 1024 * 1024

tap = TAP()
base = hstest.tempfile.mkdtemp(prefix="hs-s3-")
ca = CA(os.path.join(base, "ca"))
cert, key = ca.server()



def put_statuses(env, name):
    out = {}
    for f in env.server.admin("GET", "/stats")["requests"].get("put", {}).items():
        out[f[0]] = f[1]
    return out


with Env(tap, server_args=["--tls-cert", cert, "--tls-key", key, "--storage-dialect", "s3"],
         upload={"ca_file": ca.cert_file, "max_attempts": 1, "parallel": 2}) as env:
    # One-shot faults on storage PUTs, each answered by status alone.
    cases = [
        ("S3 XML AccessDenied (Request has expired)", [{"kind": "put", "fault": "expire_url"}]),
        ("403 with an HTML page", [{"kind": "put", "fault": "html:403"}]),
        ("403 with no body", [{"kind": "put", "fault": "empty:403"}]),
        ("an answer lost after the PUT was stored (then 403 used)",
         [{"kind": "put", "fault": "disconnect"}]),
        ("a dropped answer (no answer, nothing stored)", [{"kind": "put", "fault": "drop"}]),
        ("SlowDown 503 without Retry-After", [{"kind": "put", "fault": "503", "count": 2}]),
        ("URLs already expired by the server's clock", [{"kind": "presign", "fault": "expire_url"}]),
        ("NoSuchUpload", [{"kind": "put", "fault": "status:404:upload_not_found"}]),
    ]
    with env.daemon() as d:
        for i, (label, faults) in enumerate(cases):
            name = "s3-%d.pdf" % i
            env.server.admin("POST", "/faults", faults)
            env.write_file(name, b"report %d for S3 storage\n" % i * 60)
            env.enqueue(name)
            ok = env.wait_until(lambda: env.job(name).get("state") in ("done", "dead", "failed"),
                                90, name)
            tap.ok(ok and env.job(name).get("state") == "done" and env.stored(name),
                   "%s: stored" % label, d.output()[-1500:])
            tap.eq(env.job(name).get("attempts"), 0, "%s: no attempt spent" % label)
            tap.eq(env.server.admin("GET", "/faults")["queue"], [], "%s: the fault was met" % label)

        # Multipart: a part refused with S3 XML, one with HTML, one whose
        # answer is lost, and a SlowDown.
        env.server.admin("POST", "/faults", [
            {"kind": "put", "fault": "status:403:url_expired"},
            {"kind": "put", "fault": "html:403"},
            {"kind": "put", "fault": "disconnect"},
            {"kind": "put", "fault": "503"}])
        write_random(env.path("scan.bin"), 17 * MIB, seed=9)
        env.enqueue("scan.bin")
        ok = env.wait_until(lambda: env.job("scan.bin").get("state") in ("done", "dead", "failed"),
                            120, "scan.bin")
        tap.ok(ok and env.job("scan.bin").get("state") == "done" and env.stored("scan.bin"),
               "multipart through S3 faults: stored", d.output()[-1500:])
        tap.eq(env.job("scan.bin").get("attempts"), 0, "multipart: no attempt spent")

        # Storage that refuses every URL: bounded, one attempt spent.
        env.server.admin("POST", "/faults", {"kind": "put", "fault": "html:403", "count": 1000})
        env.write_file("refused.pdf", b"never accepted\n" * 30)
        env.enqueue("refused.pdf")
        ok = env.wait_until(lambda: env.job("refused.pdf").get("state") == "dead", 120, "dead")
        tap.ok(ok, "403 on every fresh URL: the file spends its attempt, no endless loop",
               env.job("refused.pdf"))
        met = 1000 - sum(e["count"] for e in env.server.admin("GET", "/faults")["queue"])
        tap.ok(5 <= met <= 40, "a bounded number of fresh URLs was tried (%d)" % met)
        env.server.admin("DELETE", "/faults")

        # A presigned URL no parser takes: failed tries, then the attempt.
        env.server.admin("POST", "/faults", {"kind": "presign", "fault": "bad_url", "count": 1000})
        env.write_file("bad-url.pdf", b"unreachable\n" * 30)
        env.enqueue("bad-url.pdf")
        ok = env.wait_until(lambda: env.job("bad-url.pdf").get("state") == "dead", 120, "dead")
        tap.ok(ok, "an unparseable presigned URL counts as failed tries, then an attempt",
               env.job("bad-url.pdf"))
        env.server.admin("DELETE", "/faults")
        env.server.admin("POST", "/faults", {"kind": "parts_presign", "fault": "bad_url",
                                              "count": 1000})
        write_random(env.path("bad-parts.bin"), 11 * MIB, seed=11)
        env.enqueue("bad-parts.bin")
        ok = env.wait_until(lambda: env.job("bad-parts.bin").get("state") == "dead", 120, "dead")
        tap.ok(ok, "unparseable part URLs: the part's tries, then an attempt (no 1 s loop)",
               env.job("bad-parts.bin"))
        env.server.admin("DELETE", "/faults")
        out = d.output()
    tap.eq(d.proc.returncode, 0, "the daemon exits 0 (no leak on these paths)")
    tap.ok("X-Amz-Signature" not in out and "X-Amz-Credential" not in out,
           "no presigned query string reaches the log")

hstest.shutil.rmtree(base, ignore_errors=True)
tap.finish()
