#!/usr/bin/env python3
"""A multipart upload of 10,000 parts resumes after a crash: the listing
of the parts the storage holds (GET /uploads/multipart/{id}/parts, well over
1 MiB with long ETags) is read whole, only the missing parts are sent, and
the file is stored once with the right SHA-256.

The daemon is killed once its session exists; the parts it had not sent
yet are then sent by this test through the same API (as a daemon that
stored them but lost its records in a power cut would have), all but the
last few, so that the restarted daemon has a listing of 9,990 parts to read."""
import base64
import json
import urllib.request
import zlib

from hstest import TAP, UPLOAD_KEY, Env, write_random

PART = 1024
PARTS = 10000
LEFT = 10  # parts the restarted daemon sends itself

tap = TAP()
# Parts of 1 KiB make 10,000 parts cheap; ETags of 96 characters make the
# listing about 1.6 MB.
with Env(tap, server_args=["--force-part-size", str(PART), "--min-part-size", "1"]) as env:
    env.server.config(etag_repeat=3)
    write_random(env.path("many.bin"), PART * PARTS, seed=7)
    env.enqueue("many.bin")

    def session():
        for uid, u in env.server.admin("GET", "/uploads").items():
            if u.get("kind") == "multipart" and u.get("filename") == "many.bin":
                return uid, u
        return None, None

    d = env.daemon()
    tap.ok(env.wait_until(lambda: session()[0] is not None, 120, "the multipart session"),
           "the daemon opens a session", d.output())
    d.kill()
    uid, u = session()
    tap.eq(u and u["part_count"], PARTS, "of 10,000 parts")

    def call(method, url, body=None, headers=None):
        req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.read()

    held = {p["part_number"] for p in session()[1]["parts"]}
    todo = [n for n in range(1, PARTS - LEFT + 1) if n not in held]
    with open(env.path("many.bin"), "rb") as f:
        data = f.read()
    sent = 0
    for i in range(0, len(todo), 100):
        batch = todo[i:i + 100]
        answer = json.loads(call("POST", "%s/uploads/multipart/%s/parts" %
                                 (env.server.upload_base, uid),
                                 json.dumps({"part_numbers": batch}).encode(),
                                 {"X-API-Key": UPLOAD_KEY, "Content-Type": "application/json"}))
        for p in answer["data"]["parts"]:
            n = p["part_number"]
            chunk = data[(n - 1) * PART:n * PART]
            headers = dict(p["headers"])
            headers["x-checksum-crc32"] = base64.b64encode(
                zlib.crc32(chunk).to_bytes(4, "big")).decode()
            call("PUT", p["url"], chunk, headers)
            sent += 1
    listing = call("GET", "%s/uploads/multipart/%s/parts" % (env.server.upload_base, uid),
                   headers={"X-API-Key": UPLOAD_KEY})
    tap.ok(len(listing) > 1024 * 1024, "the listing is over 1 MiB (%d bytes)" % len(listing))

    before = env.server.admin("GET", "/stats")["bytes_received"]
    with env.daemon() as d2:
        tap.ok(env.wait_jobs(done=1, timeout=300), "the upload resumes and completes",
               d2.output()[-3000:])
    lines = d2.output().splitlines()
    tap.ok(not any("larger than" in line for line in lines), "the listing is read whole",
           [line for line in lines if "larger than" in line][:3])
    tap.ok(any("resuming: %d of %d parts held" % (PARTS - LEFT, PARTS) in line
               for line in lines), "the restart resumed the session",
           [line for line in lines if "resum" in line][:3])
    f = env.stored("many.bin")
    tap.ok(f and f["complete_count"] == 1, "stored once with the right SHA-256", f)
    tap.eq(env.server.admin("GET", "/stats")["bytes_received"] - before, LEFT * PART,
           "only the missing parts were sent")
tap.finish()
