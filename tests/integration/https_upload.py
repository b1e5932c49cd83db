#!/usr/bin/env python3
"""Over HTTPS with a throwaway CA in ca_file: a small file, a multipart
file, a multipart upload resumed after kill -9 without sending its held
parts again, and the mirror, with its own ca_file (the upload section's is
not lent to it), failing on the wrong one and fixed by a reload."""
import os
import signal
import sqlite3

import hstest
from hstest import TAP, Env, write_random
from tlsca import CA

MIB = 1024 * 1024

tap = TAP()
base = hstest.tempfile.mkdtemp(prefix="hs-tls-")
ca = CA(os.path.join(base, "ca"))
cert, key = ca.server()
records_ca = CA(os.path.join(base, "records-ca"), name="records test CA")

with Env(tap, server_args=["--tls-cert", cert, "--tls-key", key],
         upload={"ca_file": ca.cert_file, "parallel": 2}) as env:
    tap.ok(env.server.upload_base.startswith("https://"), "the server speaks HTTPS")
    env.write_file("report.pdf", b"a lab report over TLS\n" * 100)
    write_random(env.path("scan.bin"), 12 * MIB + 123, seed=3)
    env.enqueue("report.pdf", "scan.bin")
    with env.daemon() as d:
        ok = env.wait_jobs(timeout=120, done=2)
        tap.ok(ok, "a small and a multipart file uploaded over HTTPS", d.output()[-3000:])
    tap.ok(env.stored("report.pdf"), "small file stored with its SHA-256")
    tap.ok(env.stored("scan.bin"), "multipart file stored with its SHA-256")
    stats = env.server.admin("GET", "/stats")
    tap.ok(stats["tls_handshakes"] >= 1 and stats["tls_handshake_failures"] == 0,
           "every connection completed its TLS handshake", stats)

    # kill -9 in the middle of a multipart upload, then resume.
    write_random(env.path("big.bin"), 40 * MIB + 7, seed=4)
    env.write_config({"ca_file": ca.cert_file, "parallel": 1, "bandwidth": "8MiB/s"})
    env.enqueue("big.bin")
    d = env.daemon()

    def parts_held():
        ups = [u for u in env.server.admin("GET", "/uploads").values()
               if u["filename"] == "big.bin"]
        return ups and len(ups[0]["parts"]) >= 2
    held = env.wait_until(parts_held, 120, "two parts of big.bin held")
    d.kill()
    tap.ok(held, "killed with parts of big.bin held by the storage", d.output()[-2000:])
    env.write_config({"ca_file": ca.cert_file, "parallel": 2})
    with env.daemon() as d:
        ok = env.wait_jobs(timeout=120, done=3)
        tap.ok(ok, "after kill -9 the multipart upload resumes over HTTPS", d.output()[-3000:])
        tap.ok("resuming:" in d.output(), "it resumed from the parts held")
    tap.ok(env.stored("big.bin"), "big.bin stored with its SHA-256")
    ups = [u for u in env.server.admin("GET", "/uploads").values() if u["filename"] == "big.bin"]
    sent = {}
    for put in (ups[0]["puts"] if ups else []):
        if put["status"] == 200:
            sent[put["part_number"]] = sent.get(put["part_number"], 0) + 1
    tap.ok(ups and sent and max(sent.values()) == 1,
           "no part stored twice: held parts were not sent again", sent)

# The mirror over HTTPS with its own CA (another CA than the upload's),
# from `healsync mirror` and from the daemon.
rcert, rkey = records_ca.server()
with Env(tap, server_args=["--tls-cert", rcert, "--tls-key", rkey, "--patients", "30"]) as env:
    db = os.path.join(env.state, "mirror.db")
    mirror = {"base_url": env.server.records_base, "api_key_file": env.records_key_file,
              "database": db, "ca_file": records_ca.cert_file, "schedule": "0 2 * * *",
              "jitter": "0s"}
    # The upload section trusts only the other CA: the mirror must not use it.
    env.write_config({"ca_file": ca.cert_file}, mirror=mirror)

    def count(path):
        conn = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
        try:
            return conn.execute("SELECT count(*) FROM patients").fetchone()[0]
        except sqlite3.Error:
            return -1
        finally:
            conn.close()

    # The daemon runs the mirror soon after its first start.
    with env.daemon() as d:
        ok = env.wait_until(lambda: os.path.exists(db) and count(db) == 30, 120,
                            "the daemon's mirror run")
        tap.ok(ok, "the daemon's mirror uses mirror.ca_file, not upload.ca_file",
               d.output()[-3000:])

    env.server.admin("POST", "/patients", {"add": 5})
    code, out, err = env.cli("mirror", check=False)
    tap.eq(code, 0, "healsync mirror over HTTPS with mirror.ca_file exits 0")
    if code:
        tap.diag(err)
    tap.eq(count(db), 35, "and it mirrored the 5 new patients")

    # The daemon's mirror trusting the wrong CA: the run fails and names
    # the host and the cause; a new mirror.ca_file and a reload fix it,
    # soon, without waiting out the backoff.
    env.server.admin("POST", "/patients", {"add": 5})
    wrong = dict(mirror, ca_file=ca.cert_file)
    env.write_config({"ca_file": ca.cert_file}, mirror=wrong)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE mirror_runs SET started_at = '2020-01-01T00:00:00.000Z'")
    conn.commit()
    conn.close()
    with env.daemon() as d:
        failed = env.wait_until(lambda: "failed:" in d.output(), 60, "the failed run")
        line = next((ln for ln in d.output().splitlines() if "failed:" in ln), "")
        tap.ok(failed and "127.0.0.1:%d" % env.server.port in line and
               "certificate" in line, "mirror.ca_file without the server's CA: the run fails, "
               "naming the host and the cause", line or d.output()[-2000:])
        env.write_config({"ca_file": ca.cert_file}, mirror=mirror)
        d.proc.send_signal(signal.SIGHUP)
        ok = env.wait_until(lambda: count(db) == 40, 60, "the run after the reload")
        tap.ok(ok and "reloaded after a failed run" in d.output(),
               "a new mirror.ca_file and a reload: the next run comes soon and succeeds",
               d.output()[-2000:])

hstest.shutil.rmtree(base, ignore_errors=True)
tap.finish()
