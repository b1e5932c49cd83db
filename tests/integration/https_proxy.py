#!/usr/bin/env python3
"""HTTPS through real proxies (tinyproxy and squid, CONNECT): uploads through
upload.proxy with Basic credentials, the mirror only through its own
mirror.proxy, credentials in no log line and redacted by check-config; a
proxy that refuses the credentials (407) or is not there pauses uploads
with one line naming it, spends no attempt, and a fixed proxy setting
applies on reload (SIGHUP); a proxy that cannot reach the server is an
outage of the upload API, said so, and also spends no attempt."""
import os
import signal
import sqlite3

import hstest
import proxylib
from hstest import TAP, Env, write_random
from tlsca import CA

MIB = 1024 * 1024
SECRET = "Pr0xy-s3cret-7f3a"

tap = TAP()
if not proxylib.available():
    tap.skip("tinyproxy is not installed (dev/setup installs it)")
    tap.finish()

base = hstest.tempfile.mkdtemp(prefix="hs-proxy-")
ca = CA(os.path.join(base, "ca"))
cert, key = ca.server()



def pause_lines(d):
    return [ln for ln in d.output().splitlines() if "uploads paused" in ln]


with proxylib.Tinyproxy(os.path.join(base, "up"), "alice", SECRET) as up_px, \
        proxylib.Tinyproxy(os.path.join(base, "rec")) as rec_px, \
        Env(tap, server_args=["--tls-cert", cert, "--tls-key", key, "--patients", "20"],
            log_level="info") as env:
    outputs = []
    upload = {"ca_file": ca.cert_file, "proxy": up_px.url, "max_attempts": 1}
    db = os.path.join(env.state, "mirror.db")
    mirror = {"base_url": env.server.records_base, "api_key_file": env.records_key_file,
              "database": db, "ca_file": ca.cert_file, "proxy": rec_px.url,
              "schedule": "0 2 * * *", "jitter": "0s"}
    env.write_config(upload, mirror=mirror)

    code, out, err = env.cli("check-config")
    outputs.append(out + err)
    tap.ok("<redacted>@127.0.0.1:%d" % up_px.port in out and SECRET not in out,
           "check-config redacts the upload proxy's credentials", out)

    env.write_file("report.pdf", b"lab report through a proxy\n" * 100)
    write_random(env.path("scan.bin"), 11 * MIB, seed=5)
    env.enqueue("report.pdf", "scan.bin")
    with env.daemon() as d:
        ok = env.wait_jobs(timeout=120, done=2)
        tap.ok(ok, "a small and a multipart file uploaded through the proxy", d.output()[-2000:])

        def mirrored():
            try:
                conn = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
                try:
                    return conn.execute("SELECT count(*) FROM patients").fetchone()[0] == 20
                finally:
                    conn.close()
            except sqlite3.Error:
                return False
        tap.ok(env.wait_until(mirrored, 120, "the daemon's mirror run"),
               "the daemon's mirror run went through", d.output()[-2000:])
        outputs.append(d.output())
    tap.ok(env.stored("report.pdf") and env.stored("scan.bin"), "both stored with their SHA-256")
    tap.ok(up_px.connects() >= 1, "the upload proxy carried CONNECT tunnels (%d)" % up_px.connects())
    tap.ok(rec_px.connects() >= 1, "the mirror went through its own proxy (%d tunnels)"
           % rec_px.connects())

    # healsync mirror: only through mirror.proxy, never the upload's.
    before = up_px.connects(), rec_px.connects()
    code, out, err = env.cli("mirror", check=False)
    outputs.append(out + err)
    tap.eq(code, 0, "healsync mirror through mirror.proxy exits 0")
    tap.ok(rec_px.connects() > before[1] and up_px.connects() == before[0],
           "healsync mirror used mirror.proxy and not upload.proxy",
           (before, up_px.connects(), rec_px.connects()))

    # Wrong credentials (407), then a proxy that is not there, then a proxy
    # that cannot reach the server (it answers CONNECT with 500: an outage,
    # not a refusal): each pauses uploads once, names the proxy, spends
    # nothing; the fix and a reload let the file through.
    dead_port, gone_port = proxylib.free_port(), proxylib.free_port()
    gone_base = env.server.upload_base.replace(":%d/" % env.server.port, ":%d/" % gone_port)
    faults = [("wrong credentials",
               {"proxy": "http://alice:wrong-%s@127.0.0.1:%d" % (SECRET, up_px.port)},
               "proxy 127.0.0.1:%d refused the tunnel" % up_px.port, "(HTTP 40"),
              ("no proxy there", {"proxy": "http://alice:%s@127.0.0.1:%d" % (SECRET, dead_port)},
               "proxy 127.0.0.1:%d" % dead_port, "onnect"),
              ("the server behind the proxy down", {"base_url": gone_base},
               "upload API unavailable (proxy 127.0.0.1:%d could not reach 127.0.0.1:%d"
               % (up_px.port, gone_port), "(HTTP 500)")]
    with env.daemon() as d:
        # SIGHUP before the daemon set up its handler would end it.
        env.wait_until(lambda: "ready" in d.output(), 30, "the daemon to be ready")
        for i, (label, bad, names, cause) in enumerate(faults):
            name = "proxy-%d.pdf" % i
            env.write_config(dict(upload, **bad), mirror=mirror)
            d.proc.send_signal(signal.SIGHUP)
            env.wait_until(lambda: d.output().count("configuration reloaded") == 2 * i + 1, 20,
                           "reload")
            env.write_file(name, b"report %d\n" % i * 50)
            env.enqueue(name)
            ok = env.wait_until(lambda: len(pause_lines(d)) == i + 1, 60, "pause")
            tap.ok(ok, "%s: uploads pause" % label, d.output()[-2000:])
            line = pause_lines(d)[-1] if ok else ""
            tap.ok(names in line and cause in line and line.startswith("<4>"),
                   "%s: one warning naming the proxy and the cause" % label, line)
            tap.eq((env.job(name).get("state"), env.job(name).get("attempts")), ("queued", 0),
                   "%s: the job keeps its attempts (max_attempts = 1)" % label)
            env.write_config(upload, mirror=mirror)
            d.proc.send_signal(signal.SIGHUP)
            ok = env.wait_until(lambda: env.job(name).get("state") == "done", 60, "done")
            tap.ok(ok and env.job(name).get("attempts") == 0,
                   "%s: after the fix and a reload the file goes through" % label,
                   d.output()[-2000:])
            tap.eq(len(pause_lines(d)), i + 1, "%s: one pause line for it" % label)
        outputs.append(d.output())
    tap.eq(d.proc.returncode, 0, "the daemon exits 0 (no leak on the refusal paths)")

    text = "\n".join(outputs)
    tap.ok(SECRET not in text and "alice:" not in text,
           "the proxy credentials never reach a log line or an error")

# squid, with Basic credentials checked by its own helper.
SQUID_SECRET = "Squ1d-s3cret-c4e1"
if not proxylib.squid_available():
    tap.skip("squid is not installed (dev/setup installs it)")
else:
    with proxylib.Squid(os.path.join(base, "squid"), "bob", SQUID_SECRET) as sq, \
            Env(tap, server_args=["--tls-cert", cert, "--tls-key", key],
                log_level="info") as env:
        upload = {"ca_file": ca.cert_file, "proxy": sq.url, "max_attempts": 1}
        env.write_config(dict(upload, proxy=sq.url.replace(SQUID_SECRET, "not-" + SQUID_SECRET)))
        env.write_file("squid.pdf", b"through squid\n" * 100)
        write_random(env.path("squid.bin"), 11 * MIB, seed=6)
        env.enqueue("squid.pdf", "squid.bin")
        with env.daemon() as d:
            ok = env.wait_until(lambda: len(pause_lines(d)) == 1, 60, "pause")
            line = pause_lines(d)[0] if ok else ""
            tap.ok("proxy 127.0.0.1:%d refused the tunnel" % sq.port in line
                   and "(HTTP 407)" in line,
                   "squid, wrong password: one warning naming the proxy and the 407", line)
            tap.eq(sorted(j["attempts"] for j in env.jobs()), [0, 0],
                   "squid, wrong password: no attempt spent")
            env.write_config(upload)
            d.proc.send_signal(signal.SIGHUP)
            ok = env.wait_jobs(timeout=120, done=2)
            tap.ok(ok, "squid: after the fix and a reload both files go through",
                   d.output()[-2000:])
            out = d.output()
        tap.eq(d.proc.returncode, 0, "squid: the daemon exits 0")
        tap.ok(env.stored("squid.pdf") and env.stored("squid.bin"),
               "squid: both stored with their SHA-256")
        tap.ok(sq.connects() >= 1, "squid carried the CONNECT tunnels (%d)" % sq.connects())
        tap.ok(SQUID_SECRET not in out and "bob:" not in out,
               "squid: the credentials never reach a log line")

hstest.shutil.rmtree(base, ignore_errors=True)
tap.finish()
