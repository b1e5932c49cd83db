#!/usr/bin/env python3
"""healsync against an S3 implementation nobody here wrote: the real daemon
uploads through the Upload API front (front.js) to s3rver, over presigned
URLs the AWS SDK minted. First the front's own contract (key, unknown
fields, 409 checksum_mismatch), then four scenarios: a single PUT, a
multipart upload, kill -9 in the middle of a multipart upload and resume,
and expired URLs (which the storage refuses when their expires_at hid it). Every check prints a PASS or FAIL line; the
last line counts them ("N passed, N failed").

    HEALSYNC=build/healsync tests/interop/interop.py

Needs tests/interop/node_modules (tests/interop/run installs it).
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
from hstest import UPLOAD_KEY, Env, sha256_file, write_random  # noqa: E402

MIB = 1024 * 1024


class Report:
    """The TAP-like interface hstest's helpers expect, printed as PASS/FAIL."""

    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.scenario = ""

    def ok(self, cond, desc, diag=None):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
        print("%s: %s: %s" % ("PASS" if cond else "FAIL", self.scenario, desc), flush=True)
        if not cond and diag is not None:
            for line in str(diag).splitlines()[-40:]:
                print("    " + line, flush=True)
        return bool(cond)

    def eq(self, got, want, desc, diag=None):
        why = "got %r, want %r" % (got, want)
        return self.ok(got == want, desc, why if diag is None else why + "\n" + str(diag))

    def diag(self, text):
        for line in str(text).splitlines():
            print("    " + line, flush=True)

    def finish(self):
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        sys.exit(1 if self.failed else 0)


class Front:
    """front.js on s3rver, in a process of its own."""

    def __init__(self, directory, url_ttl=900, args=()):
        self.dir = directory
        self.log_path = os.path.join(directory, "front.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            ["node", os.path.join(HERE, "front.js"), "--dir", directory,
             "--api-key", UPLOAD_KEY, "--url-ttl", str(url_ttl)] + list(args),
            stdout=subprocess.PIPE, stderr=self.log,
            # The lockfile pins SDK versions that support this Node.
            env=dict(os.environ, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED="true"))
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            raise RuntimeError("front.js did not start: " + self.output())
        where = json.loads(line)
        self.upload_base = where["api"]
        self.admin_base = where["admin"]
        self.storage_base = where["storage"]
        self.storage_pid = where["storage_pid"]

    def output(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def admin(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.admin_base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read())

    def object_sha256(self, key):
        """SHA-256 of the object's bytes as GetObject returns them."""
        url = self.admin_base + "/object?" + urllib.parse.urlencode({"key": key})
        h = hashlib.sha256()
        with urllib.request.urlopen(url, timeout=120) as r:
            for block in iter(lambda: r.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.log.close()


class FrontEnv(Env):
    """hstest's Env (files, keys, config, daemon, queue helpers) with the
    front on s3rver in place of the reference server."""

    def __init__(self, report, upload=None, front_args=()):
        self.tap = report
        self.log_level = "debug"
        self.dir = tempfile.mkdtemp(prefix="hs-interop-")
        self.files = os.path.join(self.dir, "files")
        self.state = os.path.join(self.dir, "state")
        os.makedirs(self.files)
        self._logs = 0
        self.server = Front(self.dir, args=front_args)
        self.upload_key_file = self._key("upload.key", UPLOAD_KEY)
        self.records_key_file = self._key("records.key", "unused-records-key-0123")
        self.config_path = os.path.join(self.dir, "healsync.conf")
        settings = {"base_url": self.server.upload_base}
        settings.update(upload or {})
        self.write_config(settings)

    def stored(self, name):
        """True if the bucket holds local file name, byte for byte, under
        the remote name healsync gave it."""
        key = self.job(name)["remote_name"]
        objects = {o["key"]: o for o in self.server.admin("GET", "/objects")}
        if key not in objects or objects[key]["size"] != os.path.getsize(self.path(name)):
            return False
        return self.server.object_sha256(key) == sha256_file(self.path(name))

    def job(self, name):
        for j in self.jobs():
            if j.get("path") == self.path(name):
                return j
        return None

    def close(self, crashed=False):
        self.server.stop()
        if crashed or self.tap.failed != self.tap.failed_before or os.environ.get("HS_KEEP_TMP"):
            self.tap.diag("front log:\n" + self.server.output()[-2000:])
            self.tap.diag("kept " + self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        self.tap.failed_before = self.tap.failed
        return self

    def __exit__(self, exc_type, *exc):
        self.close(crashed=exc_type is not None)


def scenario(report, name):
    report.scenario = name


def wait_settled(env, timeout):
    """Waits until the one job is done, failed or dead; True if done."""
    settled = env.wait_until(lambda: sum(env.counts().get(k, 0) for k in ("done", "failed", "dead")) == 1,
                             timeout=timeout, what="the job to settle")
    return settled and env.counts().get("done") == 1


def single_put(r):
    scenario(r, "single PUT")
    with FrontEnv(r) as env:
        env.write_file("lab/report 1.pdf", os.urandom(300 * 1024))
        env.enqueue("lab/report 1.pdf")
        with env.daemon() as d:
            r.ok(wait_settled(env, 60), "the job is done", d.output()[-3000:])
        r.ok(env.stored("lab/report 1.pdf"),
             "s3rver holds the file's bytes (GetObject, SHA-256)",
             env.server.admin("GET", "/objects"))
        stats = env.server.admin("GET", "/stats")
        r.eq(stats["storage"].get("PUT object 200"), 1, "one PUT to the presigned URL")
        r.eq(stats["completes"], 1, "completed once")


def multipart(r):
    scenario(r, "multipart")
    with FrontEnv(r) as env:
        write_random(env.path("scan.bin"), 23 * MIB + 12345, seed=3)
        env.enqueue("scan.bin")
        with env.daemon() as d:
            r.ok(wait_settled(env, 120), "the job is done", d.output()[-3000:])
        r.ok(env.stored("scan.bin"), "s3rver holds the file's bytes (GetObject, SHA-256)",
             env.server.admin("GET", "/objects"))
        stats = env.server.admin("GET", "/stats")
        puts = list(stats["part_puts"].values())
        r.eq(len(puts), 1, "one multipart upload at the storage")
        r.eq(sorted(puts[0].items()) if puts else None,
             sorted((str(n), 1) for n in range(1, 6)), "parts 1..5 each PUT once")
        r.eq(stats["storage"].get("POST upload 200"), 1, "one CompleteMultipartUpload")


def kill_resume(r):
    scenario(r, "kill -9 and resume")
    # A cap keeps the upload busy long enough to be killed in its middle.
    with FrontEnv(r, upload={"parallel": 2, "bandwidth": "6MiB/s"}) as env:
        write_random(env.path("big.bin"), 45 * MIB + 777, seed=5)
        env.enqueue("big.bin")

        def session():
            ups = [u for u in env.server.admin("GET", "/uploads") if u["kind"] == "multipart"]
            return ups[0] if ups else None

        d = env.daemon()
        try:
            got = env.wait_until(lambda: len((session() or {}).get("stored_parts", [])) >= 2,
                                 timeout=120, what="two parts stored")
        finally:
            d.kill()
        r.ok(got, "two parts stored before the kill", d.output()[-3000:])
        s = session()
        before = {p["part_number"]: p["etag"] for p in s["stored_parts"]} if s else {}
        r.ok(0 < len(before) < s["part_count"] if s else False,
             "killed in the middle: %d of %d parts stored" % (len(before), s["part_count"] if s else 0))
        r.diag("parts stored at the kill: %s" % sorted(before))
        puts_before = env.server.admin("GET", "/stats")["part_puts"].get(s["s3id"], {}) if s else {}

        with env.daemon() as d:
            r.ok(wait_settled(env, 180), "after the restart the job is done",
                 d.output()[-3000:])
        r.ok(env.stored("big.bin"), "s3rver holds the file's bytes (GetObject, SHA-256)")
        stats = env.server.admin("GET", "/stats")
        after = stats["part_puts"].get(s["s3id"], {}) if s else {}
        resent = [n for n in before if after.get(str(n), 0) != puts_before.get(str(n), 0)]
        r.eq(resent, [], "parts the storage held were not sent again")
        r.eq(sorted(int(n) for n in after), list(range(1, s["part_count"] + 1)) if s else [],
             "every part was PUT to the same upload")
        r.eq(stats["completes"], 1, "completed once")
        j = env.job("big.bin")
        r.eq(j and j.get("attempts"), 0, "no attempt spent")


def expired_urls(r, expires_at):
    """Two URLs signed too long ago. With an honest expires_at ("past")
    healsync should see it and ask again before any PUT; with the storage's
    clock ahead ("future") only the storage's 403 AccessDenied tells."""
    scenario(r, "expired URLs, expires_at in the " + expires_at)
    with FrontEnv(r) as env:
        env.server.admin("POST", "/knobs", {"stale_urls": 2, "stale_expires_at": expires_at})
        env.write_file("note.pdf", os.urandom(64 * 1024))
        env.enqueue("note.pdf")
        with env.daemon() as d:
            r.ok(wait_settled(env, 90), "the job is done", d.output()[-3000:])
            out = d.output()
        r.ok(env.stored("note.pdf"), "s3rver holds the file's bytes (GetObject, SHA-256)")
        stats = env.server.admin("GET", "/stats")
        refused = stats["storage"].get("PUT object 403", 0)
        if expires_at == "future":
            r.eq(refused, 2, "the storage refused both (403 AccessDenied, S3 XML)")
        else:
            r.eq(refused, 0, "healsync read expires_at and asked again before any PUT")
        r.ok(stats["presigned"] >= 3, "fresh URLs were asked for (%d minted)" % stats["presigned"])
        j = env.job("note.pdf")
        r.eq(j and j.get("attempts"), 0, "no attempt spent", out[-2000:])
        r.ok("X-Amz-Signature" not in out, "no presigned query string in the log")


def call(env, method, path, body=None, key=UPLOAD_KEY):
    """One Upload API call to the front: (status, JSON body)."""
    req = urllib.request.Request(env.server.upload_base + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"X-API-Key": key, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as a:
            return a.status, json.loads(a.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def front_contract(r):
    """The front itself keeps the SPEC's contract, so the scenarios above
    test healsync against the SPEC and not against a lenient front."""
    scenario(r, "front contract")
    with FrontEnv(r) as env:
        data = os.urandom(5000)
        good = {"filename": "x/a.pdf", "size_bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(), "content_type": "application/pdf"}
        r.eq(call(env, "POST", "/uploads", good, key="wrong-key")[0], 401, "a wrong key: 401")
        status, body = call(env, "POST", "/uploads", dict(good, extra=1))
        r.eq((status, body.get("error"), "extra" in body.get("details", {})),
             (400, "validation_error", True), "an unknown field: 400 naming it in details")
        bad = dict(good, sha256=hashlib.sha256(b"other bytes").hexdigest())
        status, body = call(env, "POST", "/uploads", bad)
        r.eq(status, 201, "an upload is created")
        put = urllib.request.Request(body["data"]["url"], data=data, method="PUT",
                                     headers=body["data"]["headers"])
        with urllib.request.urlopen(put, timeout=60) as a:
            r.ok(a.status == 200 and a.headers.get("ETag"), "s3rver takes the PUT, with an ETag")
        status, body = call(env, "POST", "/uploads/%s/complete" % body["data"]["upload_id"], {})
        r.eq((status, body.get("error")), (409, "checksum_mismatch"),
             "bytes that do not match the declared SHA-256: 409 checksum_mismatch")
        r.eq(env.server.admin("GET", "/objects"), [], "... and the object is not kept")
        status, body = call(env, "GET", "/uploads/multipart/upl_nope/parts")
        r.eq((status, body.get("error")), (404, "upload_not_found"), "an unknown session: 404")


def bench_front(r):
    """The front as bench/peers.py runs it (s3rver in a process of its own,
    URLs signed by the lean path, sizes read from s3rver's store) still
    stores every byte and refuses what is not stored."""
    scenario(r, "bench front")
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run(["node", os.path.join(here, "lean_check.js")], capture_output=True,
                         text=True, env=dict(os.environ, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED="true"))
    r.ok(out.returncode == 0 and out.stdout.endswith(" same, 0 differ\n"),
         "lean URLs are getSignedUrl's, byte for byte: " + out.stdout.strip().splitlines()[-1:][0]
         if out.stdout.strip() else "lean_check printed nothing", out.stdout[-2000:] + out.stderr[-2000:])
    with FrontEnv(r, front_args=["--no-verify", "--lean", "--storage-process"]) as env:
        r.ok(env.server.storage_pid != env.server.proc.pid, "s3rver runs in a process of its own")
        names = ["lab/report (1) ü.pdf", "x/semi;colon & 50%.txt"]
        for i, name in enumerate(names):
            env.write_file(name, os.urandom(2000 + i))
            env.enqueue(name)
        write_random(env.path("big scan.bin"), 11 * MIB + 7, seed=5)
        env.enqueue("big scan.bin")
        with env.daemon() as d:
            done = env.wait_until(lambda: env.counts().get("done", 0) == 3, timeout=120,
                                  what="three jobs done")
            r.ok(done, "two single PUTs and a multipart upload are done", d.output()[-3000:])
        for name in names + ["big scan.bin"]:
            r.ok(env.stored(name), "s3rver holds %r byte for byte" % name,
                 env.server.admin("GET", "/objects"))
        stats = env.server.admin("GET", "/stats")
        r.eq((stats["storage"].get("PUT object 200"), stats["completes"],
              sum(stats["connections"].values()) > 0),
             (2, 3, True), "the storage's counts come back from its process")
        data = b"never stored"
        status, body = call(env, "POST", "/uploads", {
            "filename": "ghost.txt", "size_bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(), "content_type": "text/plain"})
        status, body = call(env, "POST", "/uploads/%s/complete" % body["data"]["upload_id"], {})
        r.eq((status, body.get("error")), (409, "checksum_mismatch"),
             "a complete with nothing stored: 409 checksum_mismatch")


def sdk_classification(r):
    """Every error the pinned AWS SDK retries (throttling, transient and
    clock-skew codes, transient statuses), healsync's storage table retries
    or answers with a fresh URL: never dead, never a session restart."""
    scenario(r, "sdk classification")
    path = os.path.join(HERE, "node_modules", "@smithy", "core", "dist-es", "submodules",
                        "retry", "service-error-classification", "constants.js")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    lists = {}
    for name in ("CLOCK_SKEW_ERROR_CODES", "THROTTLING_ERROR_CODES", "TRANSIENT_ERROR_CODES",
                 "TRANSIENT_ERROR_STATUS_CODES"):
        m = re.search(name + r"\s*=\s*\[([^\]]*)\]", text)
        r.ok(m is not None, "the SDK defines %s" % name)
        lists[name] = re.findall(r'"([^"]+)"|(\d+)', m.group(1)) if m else []
    probe = os.path.join(os.path.dirname(os.environ["HEALSYNC"]), "tests", "verdict_probe")
    rows = []
    for name in ("CLOCK_SKEW_ERROR_CODES", "THROTTLING_ERROR_CODES", "TRANSIENT_ERROR_CODES"):
        for code, _ in lists[name]:
            for status in (400, 403, 503):
                rows.append((name, "storage %d %s" % (status, code)))
    for _, status in lists["TRANSIENT_ERROR_STATUS_CODES"]:
        rows.append(("TRANSIENT_ERROR_STATUS_CODES", "storage %s" % status))
        rows.append(("TRANSIENT_ERROR_STATUS_CODES", "api %s" % status))
    out = subprocess.run([probe], input="".join(q + "\n" for _, q in rows), text=True,
                         capture_output=True, check=True).stdout.split()
    r.eq(len(out), len(rows), "one verdict per SDK case")
    bad = ["%s (%s) -> %s" % (q, name, v) for (name, q), v in zip(rows, out)
           if v not in ("retry", "url")]
    r.ok(len(rows) > 30 and not bad, "every case the SDK retries is retried or refreshed (%d)"
         % len(rows), "; ".join(bad[:10]))


def main():
    r = Report()
    tests = [sdk_classification, front_contract, single_put, multipart, bench_front, kill_resume,
             lambda r: expired_urls(r, "future"), lambda r: expired_urls(r, "past")]
    for test in tests:
        try:
            test(r)
        except Exception as e:  # one scenario's crash is its failure, not the run's end
            r.ok(False, "ran to the end", "%s: %s" % (type(e).__name__, e))
    r.finish()


if __name__ == "__main__":
    main()
