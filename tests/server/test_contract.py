#!/usr/bin/env python3
"""Contract test for healsync-testserver (TAP output).

It starts the server on port 0 and walks every endpoint, every documented
error, every fault type and the HTTP features healsync relies on:
keep-alive, chunked bodies, 100-continue and streamed large uploads. It
uses plain HTTP (http.client and sockets), never healsync. It writes only
to a temporary directory, so it also runs in a read-only source tree
(make distcheck). Exit status 0 means every check passed.
"""

import base64
import datetime
import email.utils
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True       # the source tree may be read-only (distcheck)
import hsserver_client  # noqa: E402

UPLOAD_KEY = "test-upload-key"
RECORDS_KEY = "test-records-key"
U = "/upload/v1"
R = "/records/v1"
MIB = 1024 * 1024


# ---------------------------------------------------------------------------
# TAP

class Tap:
    def __init__(self):
        self.count = 0
        self.failures = 0

    def ok(self, cond, desc, diag=None):
        self.count += 1
        desc = desc.replace("#", "No.")
        print("%s %d - %s" % ("ok" if cond else "not ok", self.count, desc))
        if not cond:
            self.failures += 1
            for line in str(diag or "").splitlines():
                print("# " + line)
        sys.stdout.flush()
        return bool(cond)

    def eq(self, got, want, desc):
        return self.ok(got == want, desc, "got:  %r\nwant: %r" % (got, want))

    def error(self, status, error, reply, desc):
        """reply has this status and this error type in a proper error body."""
        doc = reply.doc()
        good = (reply.status == status and isinstance(doc, dict) and doc.get("error") == error
                and isinstance(doc.get("message"), str)
                and (("details" in doc) == (status == 400)))
        return self.ok(good, desc, "got %s %r" % (reply.status, reply.body[:300]))


# ---------------------------------------------------------------------------
# Plain HTTP helpers

class Reply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def doc(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def data(self):
        return self.doc()["data"]

    def header(self, name):
        return self.headers.get(name)


class Client:
    def __init__(self, srv):
        self.srv = srv
        self.port = srv.port

    def connect(self, timeout=30):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, url, body=None, headers=None, conn=None, timeout=30):
        split = urllib.parse.urlsplit(url)
        target = split.path + ("?" + split.query if split.query else "")
        own = conn is None
        conn = conn or self.connect(timeout)
        try:
            conn.request(method, target, body=body, headers=headers or {})
            resp = conn.getresponse()
            return Reply(resp.status, resp.headers, resp.read())
        finally:
            if own:
                conn.close()

    def api(self, method, path, doc=None, key=UPLOAD_KEY, headers=None, raw=None, conn=None):
        h = {}
        if key is not None:
            h["X-API-Key"] = key
        body = raw if raw is not None else (None if doc is None else json.dumps(doc).encode())
        if body is not None:
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        return self.request(method, self.srv.base + path, body, h, conn)

    def records(self, path, key=RECORDS_KEY, conn=None):
        return self.api("GET", R + path, key=key, conn=conn)

    # Upload flows

    def presign(self, data, filename="lab/report.pdf", content_type="application/pdf", sha=None):
        reply = self.api("POST", U + "/uploads", {
            "filename": filename, "size_bytes": len(data),
            "sha256": sha or hashlib.sha256(data).hexdigest(), "content_type": content_type})
        assert reply.status == 201, "presign failed: %s %r" % (reply.status, reply.body)
        return reply.data

    def put(self, presigned, body, extra=None, without=(), conn=None):
        headers = {k: v for k, v in presigned["headers"].items() if k not in without}
        headers.update(extra or {})
        return self.request("PUT", presigned["url"], body, headers, conn)

    def complete(self, upload_id):
        return self.api("POST", U + "/uploads/%s/complete" % upload_id, {})

    def multipart(self, data, part_size, sha=None, filename="scans/big.bin"):
        return self.api("POST", U + "/uploads/multipart", {
            "filename": filename, "size_bytes": len(data),
            "sha256": sha or hashlib.sha256(data).hexdigest(),
            "content_type": "application/octet-stream", "part_size_bytes": part_size})

    def part_urls(self, upload_id, numbers):
        return self.api("POST", U + "/uploads/multipart/%s/parts" % upload_id,
                        {"part_numbers": numbers})

    def put_part(self, part, data, crc=None):
        return self.put(part, data, {"x-checksum-crc32": crc or crc_b64(data)})

    def list_parts(self, upload_id):
        return self.api("GET", U + "/uploads/multipart/%s/parts" % upload_id)

    def complete_multipart(self, upload_id, parts):
        return self.api("POST", U + "/uploads/multipart/%s/complete" % upload_id, {"parts": parts})

    def upload_multipart(self, data, part_size, sha=None):
        """Create, upload every part and return (create data, [{part_number, etag}])."""
        created = self.multipart(data, part_size, sha)
        assert created.status == 201, created.body
        info = created.data
        numbers = list(range(1, info["part_count"] + 1))
        urls = self.part_urls(info["upload_id"], numbers).data["parts"]
        done = []
        ps = info["part_size_bytes"]
        for part in urls:
            n = part["part_number"]
            reply = self.put_part(part, data[(n - 1) * ps:n * ps])
            assert reply.status == 200, reply.body
            done.append({"part_number": n, "etag": reply.header("ETag")})
        return info, done


def crc_b64(data):
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def payload(n, seed=b"x"):
    block = hashlib.sha256(seed).digest()
    return (block * (n // len(block) + 1))[:n]


def raw_exchange(port, request, timeout=5):
    """Send raw bytes, half-close, read until the server closes; returns
    what came back."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        out = b""
        try:
            while True:
                piece = s.recv(65536)
                if not piece:
                    break
                out += piece
        except (ConnectionResetError, socket.timeout):
            pass
        return out


def parse_rfc3339(text):
    """Unix time of an RFC 3339 UTC time such as 2026-03-15T09:30:00.000Z."""
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def split_url(url):
    split = urllib.parse.urlsplit(url)
    return split.path + "?" + split.query


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    return predicate()


# ---------------------------------------------------------------------------
# Cases. Each starts from a server reset to its start configuration.

CASES = []


def case(fn):
    CASES.append(fn)
    return fn


@case
def startup(t, srv, c):
    t.ok(srv.port > 0, "server printed its port (%d) on the first line" % srv.port)
    stats = srv.admin("GET", "/stats")
    t.eq(stats["port"], srv.port, "admin stats report the same port")


@case
def authentication(t, srv, c):
    body = {"filename": "a.txt", "size_bytes": 1, "sha256": "0" * 64, "content_type": "text/plain"}
    t.error(401, "unauthorized", c.api("POST", U + "/uploads", body, key=None),
            "upload API without X-API-Key is 401 unauthorized")
    t.error(401, "unauthorized", c.api("POST", U + "/uploads", body, key="wrong"),
            "upload API with a wrong key is 401")
    t.error(401, "unauthorized", c.api("POST", U + "/uploads", body, key=RECORDS_KEY),
            "upload API with the records key is 401")
    t.error(401, "unauthorized", c.records("/patients", key=None), "records API without key is 401")
    t.error(401, "unauthorized", c.records("/patients", key=UPLOAD_KEY),
            "records API with the upload key is 401")
    t.error(401, "unauthorized", c.records("/patients/1", key="nope"), "patient detail with a bad key is 401")
    srv.admin("POST", "/config", {"upload_key": "rotated-key"})
    t.eq(c.api("POST", U + "/uploads", body, key="rotated-key").status, 201,
         "upload key can be changed at run time")
    t.eq(c.api("POST", U + "/uploads", body).status, 401, "old upload key is refused after the change")


@case
def bearer_tokens(t, srv, c):
    body = {"filename": "a.txt", "size_bytes": 1, "sha256": "0" * 64, "content_type": "text/plain"}
    now = int(time.time())
    good = hsserver_client.make_jwt(now + 3600)
    expired = hsserver_client.make_jwt(now - 60)

    def bearer(token):
        return {"Authorization": "Bearer " + token}

    t.error(401, "unauthorized", c.api("POST", U + "/uploads", body, key=None, headers=bearer(good)),
            "without upload_token no Bearer token is accepted")
    srv.admin("POST", "/config", {"upload_token": good, "records_token": expired})
    t.eq(c.api("POST", U + "/uploads", body, key=None, headers=bearer(good)).status, 201,
         "upload API accepts its Bearer token")
    t.eq(c.api("POST", U + "/uploads", body).status, 201, "and still its key")
    t.error(401, "unauthorized", c.api("POST", U + "/uploads", body, key=None,
                                       headers=bearer(good + "x")), "another token is 401")
    t.error(401, "unauthorized", c.api("GET", R + "/patients", key=None, headers=bearer(good)),
            "the upload token is no records token")
    t.error(401, "token_expired", c.api("GET", R + "/patients", key=None, headers=bearer(expired)),
            "a token past its exp is 401 token_expired")
    srv.admin("POST", "/config", {"records_token": "opaque-token"})
    t.eq(c.api("GET", R + "/patients", key=None, headers=bearer("opaque-token")).status, 200,
         "a token that is not a JWT never expires")
    auth = srv.admin("GET", "/stats")["auth"]
    t.eq((auth["upload"].get("bearer"), auth["upload"].get("api-key"), auth["records"].get("expired")),
         (1, 1, 1), "stats count each credential used")
    try:
        srv.admin("POST", "/config", {"upload_token": "bad\ntoken"})
        refused = False
    except hsserver_client.AdminError as e:
        refused = e.status == 400
    t.ok(refused, "a token with a control character is refused")


@case
def request_validation(t, srv, c):
    good = {"filename": "lab/a.pdf", "size_bytes": 3, "sha256": "a" * 64, "content_type": "application/pdf"}

    def check(doc, want_fields, desc, raw=None, headers=None):
        reply = c.api("POST", U + "/uploads", doc, raw=raw, headers=headers)
        details = (reply.doc() or {}).get("details", {})
        t.ok(reply.status == 400 and reply.doc().get("error") == "validation_error"
             and set(want_fields) <= set(details), desc, "got %s %r" % (reply.status, reply.body))

    check(dict(good, colour="blue", extra=1), ["colour", "extra"], "unknown fields are 400, each named in details")
    check({"filename": "x"}, ["size_bytes", "sha256", "content_type"], "missing fields are each named")
    check(dict(good, size_bytes="3"), ["size_bytes"], "size_bytes as a string is 400")
    check(dict(good, size_bytes=True), ["size_bytes"], "size_bytes as a boolean is 400")
    check(dict(good, size_bytes=3.0), ["size_bytes"], "size_bytes as a float is 400")
    check(dict(good, size_bytes=-1), ["size_bytes"], "negative size_bytes is 400")
    check(dict(good, sha256="A" * 64), ["sha256"], "uppercase sha256 is 400")
    check(dict(good, sha256="a" * 63), ["sha256"], "short sha256 is 400")
    check(dict(good, filename=""), ["filename"], "empty filename is 400")
    check(dict(good, filename="lab/../etc/passwd"), ["filename"], "filename with a .. segment is 400")
    check(dict(good, filename="/abs/path"), ["filename"], "filename with a leading slash is 400")
    check(dict(good, filename=12), ["filename"], "filename as a number is 400")
    check(dict(good, content_type=["x"]), ["content_type"], "content_type as a list is 400")
    bad_utf8 = json.dumps(dict(good, filename="PLACEHOLDER")).encode().replace(b"PLACEHOLDER", b"bad\xff\xfe")
    check(None, ["filename"], "filename that is not valid UTF-8 is 400", raw=bad_utf8)
    check(None, ["body"], "a body that is not JSON is 400", raw=b"{not json")
    check(None, ["body"], "a JSON array body is 400", raw=b"[]")
    reply = c.api("POST", U + "/uploads", raw=json.dumps(good).encode(), headers={"Content-Type": "text/plain"})
    t.ok(reply.status == 400 and "Content-Type" in reply.doc()["details"], "writes without application/json are 400")
    ok = c.api("POST", U + "/uploads", dict(good, filename="lab/été/Zoë ü.pdf"))
    t.eq(ok.status, 201, "UTF-8 filename with spaces is accepted")
    reply = c.api("POST", U + "/uploads/%s/complete" % ok.data["upload_id"], {"force": True})
    t.ok(reply.status == 400 and "force" in reply.doc()["details"], "complete with an unknown field is 400")
    t.error(404, "not_found", c.api("GET", U + "/nothing"), "unknown path is 404 not_found")
    t.error(405, "method_not_allowed", c.api("GET", U + "/uploads"), "wrong method on a known path is 405")


@case
def small_upload_flow(t, srv, c):
    data = payload(10000, b"small")
    sha = hashlib.sha256(data).hexdigest()
    d = c.presign(data, filename="lab/2026-11-22/report.pdf")
    t.ok(d["upload_id"].startswith("upl_") and d["method"] == "PUT", "presign gives an upl_ id and method PUT")
    t.ok(d["url"].startswith("http://127.0.0.1:%d/storage/" % srv.port) and "X-Sig=" in d["url"]
         and "X-Expires=" in d["url"], "presigned URL points at /storage/ with X-Sig and X-Expires")
    t.eq(d["headers"].get("Content-Type"), "application/pdf", "signed headers include the Content-Type")
    t.ok(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", d["expires_at"]),
         "expires_at is RFC 3339 UTC", d["expires_at"])
    early = c.complete(d["upload_id"])
    t.error(409, "checksum_mismatch", early, "complete before any PUT is 409 checksum_mismatch")
    put = c.put(d, data)
    t.eq(put.status, 200, "PUT to the presigned URL is 200")
    t.eq(put.header("ETag"), '"%s"' % hashlib.md5(data).hexdigest(), "ETag is the quoted MD5 of the body")
    t.error(403, "url_used", c.put(d, data), "second PUT to the same URL is 403 url_used")
    done = c.complete(d["upload_id"])
    t.eq(done.status, 200, "complete is 200")
    t.ok(done.data["status"] == "stored" and done.data["sha256"] == sha and done.data["size_bytes"] == 10000
         and done.data["file_id"], "complete answers file_id, size_bytes, sha256 and status stored",
         done.body)
    again = c.complete(d["upload_id"])
    t.ok(again.status == 200 and again.data == done.data, "completing again is idempotent (same answer)")
    files = srv.admin("GET", "/files")
    t.eq(len(files), 1, "admin lists one stored file")
    f = files[0]
    t.ok(f["filename"] == "lab/2026-11-22/report.pdf" and f["sha256"] == sha and f["size_bytes"] == 10000
         and f["complete_count"] == 1 and f["file_id"] == done.data["file_id"],
         "stored file has filename, sha256, size, complete_count 1 and file_id", f)
    with open(f["path"], "rb") as stored:
        t.ok(stored.read() == data, "bytes on disk equal the uploaded bytes")
    c.put(c.presign(data, filename="lab/2026-11-22/report.pdf"), data)
    second = c.presign(data, filename="lab/2026-11-22/report.pdf")
    c.put(second, data)
    c.complete(second["upload_id"])
    t.eq(srv.admin("GET", "/files")[0]["complete_count"], 2, "a second upload of the same content counts 2")
    t.error(404, "upload_not_found", c.complete("upl_doesnotexist"), "complete of an unknown id is 404")
    empty = c.presign(b"", filename="empty.txt", content_type="text/plain")
    t.eq(c.put(empty, b"").status, 200, "zero-byte file PUT is 200")
    t.eq(c.complete(empty["upload_id"]).status, 200, "zero-byte file completes")


@case
def checksum_mismatch(t, srv, c):
    good, bad = payload(4096, b"good"), payload(4096, b"bad")
    d = c.presign(good)
    t.eq(c.put(d, bad).status, 200, "PUT of different bytes with the declared size is accepted")
    t.error(409, "checksum_mismatch", c.complete(d["upload_id"]), "complete then is 409 checksum_mismatch")
    t.error(409, "checksum_mismatch", c.complete(d["upload_id"]), "the failed upload stays unfinished")
    fresh = c.presign(good)
    c.put(fresh, good)
    t.eq(c.complete(fresh["upload_id"]).status, 200, "uploading again with a new POST /uploads succeeds")


@case
def presigned_url_checks(t, srv, c):
    data = payload(2048, b"sig")
    d = c.presign(data)
    t.error(403, "signature_mismatch", c.put(d, data, without=["x-upload-token"]),
            "PUT without the signed x-upload-token is 403 signature_mismatch")
    t.error(403, "signature_mismatch", c.put(d, data, extra={"Content-Type": "text/plain"}),
            "PUT with a different Content-Type is 403 signature_mismatch")
    t.error(403, "signature_mismatch", c.put(d, data, without=["Content-Type"]),
            "PUT without Content-Type is 403 signature_mismatch")
    tampered = dict(d, url=re.sub(r"X-Sig=[^&]+", "X-Sig=forged", d["url"]))
    t.error(403, "signature_mismatch", c.put(tampered, data), "PUT with a forged X-Sig is 403")
    tampered = dict(d, url=re.sub(r"X-Expires=\d+", "X-Expires=9999999999", d["url"]))
    t.error(403, "signature_mismatch", c.put(tampered, data), "PUT with an altered X-Expires is 403")
    unknown = dict(d, url=re.sub(r"/storage/[^?]+", "/storage/0000", d["url"]))
    t.error(403, "signature_mismatch", c.put(unknown, data), "PUT to an unknown storage URL is 403")
    t.error(400, "size_mismatch", c.put(d, data[:-1]), "PUT with fewer bytes than size_bytes is 400")
    t.error(400, "size_mismatch", c.put(d, data + b"!"), "PUT with more bytes than size_bytes is 400")
    t.eq(c.put(d, data).status, 200, "rejected PUTs did not use up the URL")
    t.eq(c.complete(d["upload_id"]).status, 200, "and the upload completes")

    srv.admin("POST", "/config", {"url_ttl": 0.3})
    d = c.presign(data)
    time.sleep(0.5)
    t.error(403, "url_expired", c.put(d, data), "PUT after url_ttl is 403 url_expired")
    srv.admin("POST", "/config", {"url_ttl": 900})
    d = c.presign(data)
    srv.admin("POST", "/expire", {"upload_ids": [d["upload_id"]], "sessions": False, "urls": True})
    t.error(403, "url_expired", c.put(d, data), "admin expire of URLs makes PUT 403 url_expired")


@case
def multipart_create(t, srv, c):
    data = payload(10 * 1024 + 300)

    def create(part_size, **kw):
        reply = c.multipart(data, part_size, **kw)
        return reply.status, reply.doc()

    status, doc = create(100)
    t.ok(status == 201 and doc["data"]["part_size_bytes"] == 1024 and doc["data"]["part_count"] == 11,
         "too-small part size is raised to min_part_size", doc)
    t.ok(doc["data"]["upload_id"].startswith("upl_") and doc["data"]["expires_at"].endswith("Z"),
         "create answers upload_id and expires_at")
    status, doc = create(3000)
    t.ok(doc["data"]["part_size_bytes"] == 3000 and doc["data"]["part_count"] == 4,
         "a part size within limits is kept", doc)
    srv.admin("POST", "/config", {"max_part_size": 2000})
    status, doc = create(3000)
    t.ok(doc["data"]["part_size_bytes"] == 2000 and doc["data"]["part_count"] == 6,
         "a part size above max_part_size is lowered", doc)
    srv.admin("POST", "/config", {"max_part_size": 5 * 1024 ** 3, "max_parts": 4})
    status, doc = create(1024)
    t.ok(doc["data"]["part_size_bytes"] == 2635 and doc["data"]["part_count"] == 4,
         "part size is raised so that part_count <= max_parts", doc)
    srv.admin("POST", "/config", {"max_parts": 10000, "force_part_size": 2048})
    status, doc = create(4096)
    t.ok(doc["data"]["part_size_bytes"] == 2048 and doc["data"]["part_count"] == 6,
         "force_part_size overrides the requested size", doc)
    srv.admin("POST", "/config", {"force_part_size": None})
    reply = c.api("POST", U + "/uploads/multipart", {"filename": "a", "size_bytes": 0, "sha256": "0" * 64,
                                                     "content_type": "a/b", "part_size_bytes": 1024})
    t.ok(reply.status == 400 and "size_bytes" in reply.doc()["details"], "multipart of 0 bytes is 400")
    reply = c.api("POST", U + "/uploads/multipart", {"filename": "a", "size_bytes": 5, "sha256": "0" * 64,
                                                     "content_type": "a/b"})
    t.ok(reply.status == 400 and reply.doc()["details"].get("part_size_bytes") == "required",
         "missing part_size_bytes is 400 naming it")
    reply = c.api("POST", U + "/uploads/multipart", {"filename": "a", "size_bytes": 5, "sha256": "0" * 64,
                                                     "content_type": "a/b", "part_size_bytes": 5, "x": 1})
    t.ok(reply.status == 400 and "x" in reply.doc()["details"], "unknown multipart field is 400")


@case
def multipart_parts(t, srv, c):
    data = payload(3 * 1024 + 100, b"parts")
    info = c.multipart(data, 1024).data
    uid, count = info["upload_id"], info["part_count"]
    t.eq(count, 4, "multipart of 3 KiB + 100 with 1 KiB parts has 4 parts")

    def bad_batch(numbers, desc):
        reply = c.part_urls(uid, numbers)
        t.ok(reply.status == 400 and "part_numbers" in reply.doc().get("details", {}), desc, reply.body)

    bad_batch([], "presigning 0 parts is 400")
    bad_batch(list(range(1, 102)), "presigning 101 parts is 400")
    bad_batch([0], "part number 0 is 400")
    bad_batch([count + 1], "part number above part_count is 400")
    bad_batch([1, 1], "repeated part numbers are 400")
    bad_batch(["1"], "part number as a string is 400")
    t.error(404, "upload_not_found", c.part_urls("upl_unknown", [1]), "presigning parts of an unknown upload is 404")
    reply = c.part_urls(uid, [4, 1, 2, 3])
    parts = {p["part_number"]: p for p in reply.data["parts"]}
    t.ok(reply.status == 200 and [p["part_number"] for p in reply.data["parts"]] == [4, 1, 2, 3]
         and all(p["url"] and p["headers"] and p["expires_at"] for p in reply.data["parts"]),
         "a batch of part URLs comes back in request order with url, headers, expires_at")
    big = c.api("POST", U + "/uploads/multipart", {
        "filename": "x", "size_bytes": 200 * 1024, "sha256": "0" * 64,
        "content_type": "a/b", "part_size_bytes": 1024}).data
    t.eq(len(c.part_urls(big["upload_id"], list(range(1, 101))).data["parts"]), 100,
         "a batch of 100 part URLs is allowed")

    chunk = lambda n: data[(n - 1) * 1024:n * 1024]  # noqa: E731
    t.error(400, "validation_error", c.put(parts[1], chunk(1)), "part PUT without x-checksum-crc32 is 400")
    t.error(400, "bad_digest", c.put_part(parts[1], chunk(1), crc=crc_b64(b"other")),
            "part PUT with a wrong CRC-32 is 400 bad_digest")
    t.error(400, "bad_digest", c.put_part(parts[1], chunk(1), crc="!!notbase64"),
            "part PUT with a malformed CRC header is 400 bad_digest")
    t.eq(c.list_parts(uid).data["parts"], [], "a part with a bad digest is not stored")
    t.error(400, "bad_part_size", c.put_part(parts[1], chunk(1)[:1000]), "a short middle part is 400 bad_part_size")
    t.error(400, "bad_part_size", c.put_part(parts[4], data[:1024]),
            "a last part longer than the remainder is 400 bad_part_size")
    t.error(403, "signature_mismatch", c.put(parts[1], chunk(1), {"x-checksum-crc32": crc_b64(chunk(1))},
                                             without=["x-upload-token"]),
            "part PUT without the signed header is 403")
    etags = {}
    for n in (1, 3, 4):
        reply = c.put_part(parts[n], chunk(n))
        etags[n] = reply.header("ETag")
        t.ok(reply.status == 200 and etags[n] == '"%s"' % hashlib.md5(chunk(n)).hexdigest(),
             "part %d PUT is 200 with the MD5 ETag" % n)
    t.error(403, "url_used", c.put_part(parts[1], chunk(1)), "a part URL is single-use")
    wrong = payload(1024, b"wrong")
    t.eq(c.put_part(parts[2], wrong).status, 200, "part 2 uploaded with wrong bytes first")
    fresh = c.part_urls(uid, [2]).data["parts"][0]
    reply = c.put_part(fresh, chunk(2))
    etags[2] = reply.header("ETag")
    t.eq(reply.status, 200, "part 2 uploaded again through a fresh URL")
    listed = c.list_parts(uid).data["parts"]
    t.eq([p["part_number"] for p in listed], [1, 2, 3, 4], "parts are listed in ascending order")
    t.eq([p["size_bytes"] for p in listed], [1024, 1024, 1024, 100], "listed sizes include the short last part")
    t.eq(listed[1]["etag"], etags[2], "re-uploaded part 2 replaced the first upload")
    t.eq(c.list_parts("upl_nothing").status, 404, "listing parts of an unknown upload is 404")

    want = [{"part_number": n, "etag": etags[n]} for n in (1, 2, 3, 4)]
    t.error(400, "invalid_parts", c.complete_multipart(uid, [want[1], want[0], want[2], want[3]]),
            "complete with parts out of order is 400 invalid_parts")
    t.error(400, "invalid_parts", c.complete_multipart(uid, want[:3]), "complete missing a part is 400")
    t.error(400, "invalid_parts", c.complete_multipart(uid, want[:3] + [{"part_number": 4, "etag": '"00"'}]),
            "complete with a wrong etag is 400")
    t.error(400, "validation_error", c.complete_multipart(uid, [{"part_number": "1"}]),
            "complete with malformed entries is 400 validation_error")
    unquoted = [{"part_number": p["part_number"], "etag": p["etag"].strip('"')} for p in want]
    done = c.complete_multipart(uid, unquoted)
    t.ok(done.status == 200 and done.data["sha256"] == hashlib.sha256(data).hexdigest()
         and done.data["status"] == "stored" and done.data["size_bytes"] == len(data),
         "complete (etags quoted or not) is 200 with the file's sha256", done.body)
    again = c.complete_multipart(uid, want)
    t.ok(again.status == 200 and again.data == done.data, "completing a multipart again is idempotent")
    t.eq(c.list_parts(uid).status, 404, "a completed session no longer lists parts")
    stored = [f for f in srv.admin("GET", "/files") if f["file_id"] == done.data["file_id"]][0]
    with open(stored["path"], "rb") as f:
        t.ok(f.read() == data, "stored multipart file equals the parts concatenated")

    info, parts_done = c.upload_multipart(data, 1024, sha=hashlib.sha256(b"not it").hexdigest())
    t.error(409, "checksum_mismatch", c.complete_multipart(info["upload_id"], parts_done),
            "multipart complete with the wrong sha256 is 409 checksum_mismatch")
    t.eq(c.list_parts(info["upload_id"]).status, 200, "the session stays open after a checksum mismatch")
    reply = c.api("DELETE", U + "/uploads/multipart/%s" % info["upload_id"])
    t.ok(reply.status == 204 and reply.body == b"", "abort is 204 with no body")
    t.error(404, "upload_not_found", c.list_parts(info["upload_id"]), "list after abort is 404 upload_not_found")
    t.error(404, "upload_not_found", c.complete_multipart(info["upload_id"], parts_done), "complete after abort is 404")
    t.error(404, "upload_not_found", c.part_urls(info["upload_id"], [1]), "presign after abort is 404")
    t.error(404, "upload_not_found", c.api("DELETE", U + "/uploads/multipart/%s" % info["upload_id"]),
            "abort after abort is 404")


@case
def multipart_parallel_and_expiry(t, srv, c):
    data = payload(8 * 1024, b"parallel")
    info = c.multipart(data, 1024).data
    parts = c.part_urls(info["upload_id"], list(range(1, 9))).data["parts"]
    results = {}

    def send(part):
        n = part["part_number"]
        results[n] = c.put_part(part, data[(n - 1) * 1024:n * 1024])

    threads = [threading.Thread(target=send, args=(p,)) for p in parts]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    t.ok(all(r.status == 200 for r in results.values()) and len(results) == 8,
         "8 parts uploaded concurrently are all 200")
    done = c.complete_multipart(info["upload_id"], [{"part_number": n, "etag": results[n].header("ETag")}
                                                    for n in range(1, 9)])
    t.eq(done.status, 200, "the concurrently uploaded file completes")

    srv.admin("POST", "/config", {"session_ttl": 0.4})
    info = c.multipart(data, 1024).data
    part = c.part_urls(info["upload_id"], [1]).data["parts"][0]
    time.sleep(0.6)
    t.error(404, "upload_not_found", c.list_parts(info["upload_id"]), "list parts after session_ttl is 404")
    t.error(404, "upload_not_found", c.part_urls(info["upload_id"], [1]), "presign after session_ttl is 404")
    t.error(404, "upload_not_found", c.put_part(part, data[:1024]), "part PUT after session_ttl is 404")
    t.eq(srv.admin("GET", "/uploads")[info["upload_id"]]["state"], "expired", "admin shows the session expired")
    srv.admin("POST", "/config", {"session_ttl": 86400})
    info = c.multipart(data, 1024).data
    srv.admin("POST", "/expire", {"upload_ids": [info["upload_id"]]})
    t.error(404, "upload_not_found", c.list_parts(info["upload_id"]), "admin expire ends a session at once")


@case
def patients(t, srv, c):
    srv.admin("POST", "/patients", {"reset": {"count": 45, "id_digits": 25, "seed": "contract"}})
    truth = srv.admin("GET", "/patients")["patients"]
    t.eq(len(truth), 45, "admin reset made 45 records")
    pages, seen, raw = [], [], b""
    for page in (1, 2, 3):
        reply = c.records("/patients?page=%d&limit=20" % page)
        pages.append(reply.doc())
        seen += reply.data
        raw += reply.body
    t.eq([p["meta"] for p in pages], [{"page": n, "limit": 20, "total_pages": 3} for n in (1, 2, 3)],
         "meta carries page, limit and total_pages 3")
    t.eq([len(p["data"]) for p in pages], [20, 20, 5], "pages hold 20, 20 and 5 records")
    t.ok(all(isinstance(r["id"], str) and re.fullmatch(r"[1-9]\d{24}", r["id"]) for r in seen),
         "ids are 25-digit strings, intact")
    t.ok(re.search(rb'"id": "\d{25}"', raw) is not None, "ids are JSON strings on the wire")
    t.eq([(r["id"], r["name"], r["created_at"]) for r in seen],
         [(r["id"], r["name"], r["created_at"]) for r in truth], "pages list every record in order")
    t.eq(set(seen[0]), {"id", "name", "created_at"}, "list records carry id, name, created_at")
    t.ok(any(ord(ch) > 127 for r in seen for ch in r["name"]), "names include non-ASCII characters")
    t.ok(all(r["name"].encode("utf-8") in raw for r in seen), "names are sent as raw UTF-8")
    keys = [(r["created_at"], len(r["id"]), r["id"]) for r in seen]
    t.ok(keys == sorted(keys), "order is ascending created_at, then id")
    t.eq(c.records("/patients?page=4&limit=20").data, [], "a page past the end is empty")
    default = c.records("/patients").doc()
    t.ok(default["meta"] == {"page": 1, "limit": 20, "total_pages": 3} and len(default["data"]) == 20,
         "page and limit default to 1 and 20")
    for query, field in (("limit=0", "limit"), ("limit=101", "limit"), ("page=0", "page"),
                         ("page=abc", "page"), ("limit=-1", "limit"), ("sort=name", "sort")):
        reply = c.records("/patients?" + query)
        t.ok(reply.status == 400 and field in reply.doc()["details"], "?%s is 400 naming %s" % (query, field))
    t.eq(c.records("/patients?limit=100").doc()["meta"]["total_pages"], 1, "limit=100 is allowed")

    srv.admin("POST", "/config", {"json_ascii": True})
    reply = c.records("/patients?limit=100")
    t.ok(all(b < 128 for b in reply.body) and [r["name"] for r in reply.data] == [r["name"] for r in truth],
         "json_ascii sends \\u escapes that decode to the same names")
    srv.admin("POST", "/config", {"json_ascii": False})

    first = truth[0]
    detail = c.records("/patients/" + first["id"])
    t.eq(detail.data, first, "detail matches the admin data set")
    t.eq(set(detail.data), {"id", "name", "created_at", "pronouns", "notes", "consent"},
         "detail carries id, name, created_at, pronouns, notes, consent")
    t.ok(isinstance(detail.data["consent"], bool), "consent is a boolean")
    t.error(404, "not_found", c.records("/patients/0" + first["id"]), "an id with a leading 0 added is 404")
    t.error(404, "not_found", c.records("/patients/123"), "an unknown id is 404 not_found")

    gone, hidden, renamed = truth[3]["id"], truth[5]["id"], truth[7]["id"]
    result = srv.admin("POST", "/patients", {"remove": [gone], "hide": [hidden],
                                             "rename": {renamed: "Zoë Ångström-Test"}})
    t.eq(result, {"remove": [gone], "hide": [hidden], "rename": [renamed]}, "admin mutations report what they did")
    ids = [r["id"] for r in c.records("/patients?limit=100").data]
    t.ok(gone not in ids and hidden not in ids and len(ids) == 43, "removed and hidden records leave the list")
    t.error(404, "not_found", c.records("/patients/" + gone), "detail of a removed record is 404")
    t.eq(c.records("/patients/" + hidden).status, 200, "detail of a hidden record still works")
    t.eq(c.records("/patients/" + renamed).data["name"], "Zoë Ångström-Test", "rename shows in detail")
    t.eq(c.records("/patients?limit=20&page=1").data[3]["id"], truth[4]["id"], "a removal shifts later pages")
    added = srv.admin("POST", "/patients", {"add": 3})["add"]
    ids = [r["id"] for r in c.records("/patients?limit=100").data]
    t.ok(len(ids) == 46 and ids[-3:] == added, "added records appear at the end of the list")
    front = srv.admin("POST", "/patients", {"add": {"count": 1, "position": "start"}})["add"]
    t.eq(c.records("/patients?limit=1").data[0]["id"], front[0], "add at start shifts every page")
    reply = srv_admin_status(srv, "POST", "/patients", {"remove": ["nope"]})
    t.eq(reply, 400, "removing an unknown id is 400")

    srv.admin("POST", "/config", {"extra_fields": True})
    item = c.records("/patients?limit=1").data[0]
    t.ok({"blood_type", "tags", "external_ref"} <= set(item), "extra_fields adds unknown fields to list records")
    t.ok({"blood_type", "tags", "external_ref"} <= set(c.records("/patients/" + item["id"]).data),
         "and to detail records")
    srv.admin("POST", "/config", {"extra_fields": False})

    for digits in (20, 30):
        srv.admin("POST", "/patients", {"reset": {"count": 5, "id_digits": digits}})
        got = [r["id"] for r in c.records("/patients").data]
        t.ok(len(got) == 5 and all(len(i) == digits and i.isdigit() for i in got),
             "%d-digit ids survive intact" % digits)
    srv.admin("POST", "/patients", {"reset": {"count": 45, "id_digits": 25, "seed": "contract"}})
    t.eq(srv.admin("GET", "/patients")["patients"], truth, "the same seed gives the same data set")
    srv.admin("POST", "/patients", {"reset": {"count": 0}})
    t.eq(c.records("/patients").doc()["meta"]["total_pages"], 0, "an empty data set has total_pages 0")


def wait_quiet(srv, quiet=1.0, limit=20.0):
    """Waits until the server's request and byte counts stay unchanged for
    `quiet` seconds (at most `limit` seconds)."""
    def snapshot():
        stats = srv.admin("GET", "/stats")
        return stats["requests_total"], stats["bytes_received"]
    deadline = time.monotonic() + limit
    last, since = snapshot(), time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - since < quiet:
        time.sleep(0.1)
        now = snapshot()
        if now != last:
            last, since = now, time.monotonic()


def srv_admin_status(srv, method, path, body=None):
    try:
        srv.admin(method, path, body)
        return 200
    except hsserver_client.AdminError as e:
        return e.status


@case
def rate_limits(t, srv, c):
    srv.admin("POST", "/config", {"rate_limit": {"limit": 3, "window": 30}, "reset_style": "unix",
                                  "retry_after_style": "seconds"})
    now = time.time()
    replies = [c.records("/patients?limit=1") for _ in range(3)]
    t.eq([r.header("X-RateLimit-Remaining") for r in replies], ["2", "1", "0"], "X-RateLimit-Remaining counts down")
    t.ok(all(r.header("X-RateLimit-Limit") == "3" for r in replies), "X-RateLimit-Limit is the quota")
    reset = int(replies[0].header("X-RateLimit-Reset"))
    t.ok(reset >= 1000000000 and now + 30 <= reset <= now + 36, "unix-style X-RateLimit-Reset is the window end",
         reset)
    limited = c.records("/patients?limit=1")
    t.error(429, "rate_limited", limited, "the request past the quota is 429 rate_limited")
    ra = limited.header("Retry-After")
    t.ok(ra is not None and ra.isdigit() and 1 <= int(ra) <= 30, "429 carries Retry-After in seconds", ra)
    t.ok(limited.header("X-RateLimit-Remaining") == "0" and limited.header("X-RateLimit-Reset"),
         "429 carries the rate-limit headers too")
    t.error(401, "unauthorized", c.records("/patients", key="other"), "other keys have their own quota")

    d = c.presign(b"abc")
    t.eq(c.api("GET", U + "/uploads/multipart/upl_x/parts").header("X-RateLimit-Remaining"), "1",
         "the upload key has a separate quota; errors carry headers")
    put = c.put(d, b"abc")
    t.ok(put.status == 200 and put.header("X-RateLimit-Remaining") == "0",
         "storage PUTs count against the upload key and carry the headers", put.header("X-RateLimit-Remaining"))
    t.error(429, "rate_limited", c.complete(d["upload_id"]), "upload key exhausted: 429")

    srv.admin("POST", "/config", {"reset_style": "delta", "retry_after_style": "date"})
    limited = c.records("/patients")
    delta = int(limited.header("X-RateLimit-Reset"))
    t.ok(limited.status == 429 and 0 < delta <= 30, "delta-style X-RateLimit-Reset is seconds to the window end",
         delta)
    when = email.utils.parsedate_to_datetime(limited.header("Retry-After") or "")
    t.ok(when is not None and time.time() - 2 <= when.timestamp() <= time.time() + 32,
         "date-style Retry-After is an HTTP-date at the window end", limited.header("Retry-After"))
    stats = srv.admin("GET", "/stats")
    t.eq(stats["rate_limited"], 3, "stats count the 429s")

    srv.admin("POST", "/config", {"rate_limit": "1/1"})
    first, second = c.records("/patients"), c.records("/patients")
    time.sleep(1.1)
    third = c.records("/patients")
    t.ok((first.status, second.status, third.status) == (200, 429, 200), "a new window opens after the old one")
    srv.admin("POST", "/config", {"rate_limit": None})
    t.eq(c.records("/patients").header("X-RateLimit-Limit"), None, "no rate-limit headers when it is off")


@case
def rate_limit_knobs(t, srv, c):
    srv.admin("POST", "/config", {"rate_limit": {"limit": 5, "window": 3600}, "reset_style": "delta-exact",
                                  "window_align": "epoch", "storage_quota": "off"})
    now = time.time()
    reply = c.records("/patients?limit=1")
    reset = reply.header("X-RateLimit-Reset") or ""
    t.ok(re.fullmatch(r"\d+\.\d{3}", reset) is not None, "delta-exact X-RateLimit-Reset has 3 decimals", reset)
    end = now + float(reset or "0")
    t.ok(min(end % 3600, 3600 - end % 3600) < 2, "epoch-aligned windows end at a multiple of the window", reset)
    d = c.presign(b"abc")
    before = c.records("/patients?limit=1")
    put = c.put(d, b"abc")
    t.ok(put.status == 200 and put.header("X-RateLimit-Remaining") is None,
         "with storage_quota off, storage PUTs carry no rate-limit headers")
    after = c.api("GET", U + "/uploads/multipart/upl_x/parts")
    t.eq(after.header("X-RateLimit-Remaining"), "3", "and draw on no quota (upload key: presign, this)")
    t.eq(before.header("X-RateLimit-Remaining"), "3", "the records key counts on its own")
    srv.admin("POST", "/config", {"rate_limit": None, "reset_style": "unix", "window_align": "first",
                                  "storage_quota": "counted"})


@case
def faults_status(t, srv, c):
    srv.admin("POST", "/faults", {"kind": "patients_list", "fault": "500", "count": 2})
    statuses = [c.records("/patients").status for _ in range(3)]
    t.eq(statuses, [500, 500, 200], "one-shot 500 x2 hits exactly the next two requests of that kind")
    srv.admin("POST", "/faults", {"kind": "patients_list", "fault": "500"})
    t.eq(c.records("/patients/1").status, 404, "a fault for one kind leaves other kinds alone")
    t.error(500, "internal_error", c.records("/patients"), "500 fault has an error body")
    srv.admin("POST", "/faults", [{"kind": "patient_detail", "fault": "503"},
                                  {"kind": "patient_detail", "fault": "503:7"}])
    first, second = c.records("/patients/1"), c.records("/patients/1")
    t.ok(first.status == 503 and first.header("Retry-After") == "1", "503 fault carries Retry-After: 1")
    t.ok(second.status == 503 and second.header("Retry-After") == "7", "503:7 carries Retry-After: 7")
    srv.admin("POST", "/config", {"retry_after_style": "date"})
    srv.admin("POST", "/faults", {"kind": "*", "fault": "429"})
    limited = c.records("/patients")
    t.ok(limited.status == 429 and email.utils.parsedate_to_datetime(limited.header("Retry-After")),
         "429 fault on kind * with an HTTP-date Retry-After")
    srv.admin("POST", "/faults", {"kind": "presign", "fault": "status:403"})
    t.error(403, "forbidden", c.api("POST", U + "/uploads", {}), "status:403 gives 403 forbidden")
    data = b"fault data"
    d = c.presign(data)
    srv.admin("POST", "/faults", {"kind": "put", "fault": "status:403:url_used"})
    t.error(403, "url_used", c.put(d, data), "status:403:url_used gives that error type")
    t.eq(c.put(d, data).status, 200, "a status fault does not process the request (URL unused)")
    srv.admin("POST", "/faults", {"kind": "complete", "fault": "status:400"})
    t.error(400, "validation_error", c.complete(d["upload_id"]), "status:400 has details")
    srv.admin("POST", "/faults", {"kind": "multipart_create", "fault": "502"})
    t.error(502, "bad_gateway", c.multipart(payload(5000), 1024), "a bare status code works as a fault")
    stats = srv.admin("GET", "/stats")
    t.eq(stats["faults_injected"].get("patients_list"), {"500": 3, "429": 1}, "stats count injected faults")
    t.eq(stats["requests"]["patients_list"].get("500"), 3, "stats count requests per kind and status")
    for bad in ({"kind": "nope", "fault": "500"}, {"kind": "put", "fault": "explode"},
                {"kind": "put", "fault": "500", "count": 0}, {"kind": "put", "fault": "status:200"}):
        t.eq(srv_admin_status(srv, "POST", "/faults", bad), 400, "admin refuses fault %s" % json.dumps(bad))


@case
def faults_connection(t, srv, c):
    srv.admin("POST", "/faults", {"kind": "patient_detail", "fault": "drop"})
    got = raw_exchange(srv.port, b"GET /records/v1/patients/1 HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\n\r\n"
                       % RECORDS_KEY.encode())
    t.eq(got, b"", "drop closes the connection without an answer")

    srv.admin("POST", "/faults", {"kind": "patients_list", "fault": "disconnect"})
    conn = c.connect()
    conn.request("GET", R + "/patients", headers={"X-API-Key": RECORDS_KEY})
    resp = conn.getresponse()
    try:
        resp.read()
        cut = False
    except http.client.IncompleteRead as e:
        cut = len(e.partial) > 0
    conn.close()
    t.ok(resp.status == 200 and cut, "disconnect sends headers and part of the body, then closes")

    data = payload(3000, b"disc")
    d = c.presign(data)
    srv.admin("POST", "/faults", {"kind": "put", "fault": "disconnect"})
    head = "PUT %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nx-upload-token: %s\r\nContent-Length: %d\r\n\r\n" % (
        split_url(d["url"]), d["headers"]["Content-Type"], d["headers"]["x-upload-token"], len(data))
    got = raw_exchange(srv.port, head.encode() + data)
    t.ok(got.startswith(b"HTTP/1.1") and b"\r\n\r\n" not in got, "disconnect on PUT cuts the header block", got)
    t.error(403, "url_used", c.put(d, data), "the PUT was processed anyway: its URL is used")
    t.eq(c.complete(d["upload_id"]).status, 200, "and the upload completes")

    srv.admin("POST", "/faults", {"kind": "patients_list", "fault": "slow:300"})
    started = time.monotonic()
    reply = c.records("/patients")
    t.ok(reply.status == 200 and time.monotonic() - started >= 0.29, "slow:300 delays the answer by 300 ms")

    size = 32 * MIB
    d = c.api("POST", U + "/uploads", {"filename": "stall.bin", "size_bytes": size,
                                       "sha256": "0" * 64, "content_type": "application/octet-stream"}).data
    srv.admin("POST", "/faults", {"kind": "put", "fault": "stall:1"})
    block = payload(MIB, b"stall")
    stalled = False
    with socket.create_connection(("127.0.0.1", srv.port)) as s:
        s.settimeout(0.5)
        s.sendall(("PUT %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                   "x-upload-token: %s\r\nContent-Length: %d\r\n\r\n"
                   % (split_url(d["url"]), d["headers"]["x-upload-token"], size)).encode())
        try:
            for _ in range(size // MIB):
                s.sendall(block)
        except socket.timeout:
            stalled = True
    t.ok(stalled, "stall stops reading the body midway (client send timed out)")

    def attempt():
        puts = srv.admin("GET", "/uploads")[d["upload_id"]]["puts"]
        return puts and puts[0]["status"] != "receiving" and puts[0]
    first = wait_for(attempt, 10)
    t.ok(first and first["status"] == "aborted" and 16 * MIB <= first["bytes"] < size,
         "the broken-off PUT is recorded as aborted, with the bytes received", first)
    reply = c.request("PUT", d["url"], (block for _ in range(size // MIB)),
                      {"Content-Type": "application/octet-stream",
                       "x-upload-token": d["headers"]["x-upload-token"], "Content-Length": str(size)})
    t.eq(reply.status, 200, "a PUT that failed midway did not use up the URL")
    info = srv.admin("GET", "/uploads")[d["upload_id"]]
    t.ok(info["bytes_received"] >= size + 16 * MIB, "bytes_received counts failed and retried PUT bytes",
         info["bytes_received"])


@case
def faults_bodies(t, srv, c):
    srv.admin("POST", "/faults", {"kind": "presign", "fault": "malformed_json"})
    reply = c.api("POST", U + "/uploads", {"filename": "m.txt", "size_bytes": 1, "sha256": "0" * 64,
                                           "content_type": "text/plain"})
    t.ok(reply.status == 201 and reply.doc() is None and reply.header("Content-Type") == "application/json",
         "malformed_json: 201 whose body is not JSON", reply.body)

    srv.admin("POST", "/faults", {"kind": "patients_list", "fault": "huge_body"})
    conn = c.connect()
    conn.request("GET", R + "/patients", headers={"X-API-Key": RECORDS_KEY})
    resp = conn.getresponse()
    first = resp.read(16)
    total = len(first)
    while True:
        piece = resp.read(MIB)
        if not piece:
            break
        total += len(piece)
    conn.close()
    t.ok(resp.status == 200 and first.startswith(b'{"data": [') and total == 64 * MIB
         and resp.getheader("Content-Length") == str(64 * MIB), "huge_body streams 64 MiB of JSON-ish garbage")
    srv.admin("POST", "/faults", {"kind": "patients_list", "fault": "huge_body:1000"})
    t.eq(len(c.records("/patients").body), 1000, "huge_body:1000 sends 1000 bytes")

    srv.admin("POST", "/faults", {"kind": "presign", "fault": "missing_fields"})
    reply = c.api("POST", U + "/uploads", {"filename": "m.txt", "size_bytes": 1, "sha256": "0" * 64,
                                           "content_type": "text/plain"})
    t.ok(reply.status == 201 and reply.doc() == {"data": {}}, "missing_fields: 201 {\"data\": {}}", reply.body)
    srv.admin("POST", "/faults", {"kind": "patients_list", "fault": "missing_fields"})
    doc = c.records("/patients?limit=2").doc()
    t.eq(doc, {"data": [{}, {}]}, "missing_fields on a list drops every field and meta")
    d = c.presign(b"xyz")
    srv.admin("POST", "/faults", {"kind": "put", "fault": "missing_fields"})
    reply = c.put(d, b"xyz")
    t.ok(reply.status == 200 and reply.header("ETag") is None, "missing_fields on a PUT drops the ETag")

    srv.admin("POST", "/faults", {"kind": "multipart_create", "fault": "wrong_types"})
    doc = c.multipart(payload(5000), 1024).doc()
    data = doc["data"]
    t.ok(isinstance(data["upload_id"], int) and isinstance(data["part_count"], str)
         and isinstance(data["part_size_bytes"], str), "wrong_types changes the type of every field", doc)
    srv.admin("POST", "/faults", {"kind": "patient_detail", "fault": "wrong_types"})
    first_id = c.records("/patients?limit=1").data[0]["id"]
    detail = c.records("/patients/" + first_id).data
    t.ok(isinstance(detail["id"], int) and isinstance(detail["consent"], str), "wrong_types on detail", detail)
    srv.admin("POST", "/faults", {"kind": "abort", "fault": "malformed_json"})
    info = c.multipart(payload(5000), 1024).data
    reply = c.api("DELETE", U + "/uploads/multipart/%s" % info["upload_id"])
    t.ok(reply.status == 200 and reply.doc() is None and reply.body, "body faults turn a 204 into 200 with a body")


@case
def faults_upload_effects(t, srv, c):
    data = payload(5000, b"expire")
    srv.admin("POST", "/faults", {"kind": "presign", "fault": "expire_url"})
    d = c.presign(data)
    t.ok(parse_rfc3339(d["expires_at"]) <= time.time(), "expire_url on presign issues an already expired URL", d["expires_at"])
    t.error(403, "url_expired", c.put(d, data), "its PUT is 403 url_expired")
    info = c.multipart(data, 1024).data
    srv.admin("POST", "/faults", {"kind": "parts_presign", "fault": "expire_url"})
    part = c.part_urls(info["upload_id"], [1]).data["parts"][0]
    t.error(403, "url_expired", c.put_part(part, data[:1024]), "expire_url on parts_presign expires part URLs")
    d = c.presign(data)
    srv.admin("POST", "/faults", {"kind": "put", "fault": "expire_url"})
    t.error(403, "url_expired", c.put(d, data), "expire_url on put answers url_expired")
    t.eq(c.put(d, data).status, 200, "the URL itself was still good")

    d = c.presign(data)
    srv.admin("POST", "/faults", {"kind": "put", "fault": "corrupt"})
    reply = c.put(d, data)
    t.ok(reply.status == 200 and reply.header("ETag") == '"%s"' % hashlib.md5(data).hexdigest(),
         "corrupt: the PUT looks fine")
    t.error(409, "checksum_mismatch", c.complete(d["upload_id"]), "corrupt: complete finds a checksum mismatch")

    srv.admin("POST", "/config", {"seed": "dice", "random_faults": [
        {"fault": "500", "rate": 0.5, "kinds": ["patients_list"]}]})
    run1 = [c.records("/patients").status for _ in range(16)]
    t.eq(c.records("/patients/1").status, 404, "random faults only hit the kinds they name")
    srv.admin("POST", "/config", {"seed": "dice"})
    run2 = [c.records("/patients").status for _ in range(16)]
    t.ok(run1 == run2 and 500 in run1 and 200 in run1, "random faults are reproducible from the seed",
         "%r\n%r" % (run1, run2))
    srv.admin("POST", "/config", {"random_faults": [{"fault": "503", "rate": 1.0}]})
    t.eq(c.records("/patients/1").status, 503, "a rule without kinds hits every kind at rate 1")
    listed = srv.admin("GET", "/faults")
    t.eq(listed["random_faults"], [{"fault": "503", "rate": 1.0, "kinds": None}], "GET /_admin/faults lists rules")
    srv.admin("POST", "/faults", {"kind": "put", "fault": "500", "count": 3})
    srv.admin("DELETE", "/faults")
    t.eq(srv.admin("GET", "/faults"), {"queue": [], "random_faults": []}, "DELETE /_admin/faults clears all")
    t.eq(c.records("/patients").status, 200, "no faults after clearing")
    bad = srv_admin_status(srv, "POST", "/config", {"random_faults": [{"fault": "500", "rate": 2}]})
    t.eq(bad, 400, "a rule with rate above 1 is refused")


@case
def http_features(t, srv, c):
    def chunks():
        doc = json.dumps({"filename": "chunked.txt", "size_bytes": 300000,
                          "sha256": hashlib.sha256(payload(300000, b"ch")).hexdigest(),
                          "content_type": "text/plain"}).encode()
        for i in range(0, len(doc), 7):
            yield doc[i:i + 7]

    reply = c.request("POST", srv.base + U + "/uploads", chunks(),
                      {"X-API-Key": UPLOAD_KEY, "Content-Type": "application/json"})
    t.eq(reply.status, 201, "a chunked JSON request body is read")
    d = reply.data
    data = payload(300000, b"ch")
    reply = c.request("PUT", d["url"], (data[i:i + 65536] for i in range(0, len(data), 65536)), d["headers"])
    t.eq(reply.status, 200, "a chunked storage PUT is accepted")
    t.eq(c.complete(d["upload_id"]).status, 200, "and the chunked upload completes")
    d = c.presign(data)
    reply = c.request("PUT", d["url"], iter([data[:1000]]), d["headers"])
    t.error(400, "size_mismatch", reply, "a chunked PUT of the wrong total size is 400")
    got = raw_exchange(srv.port, b"POST /upload/v1/uploads HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\n"
                       b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
                       % UPLOAD_KEY.encode())
    t.ok(got.startswith(b"HTTP/1.1 400") and b"Connection: close" in got, "malformed chunking is 400 and closes")

    d = c.presign(data)
    target = split_url(d["url"])
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall(("PUT %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nx-upload-token: %s\r\n"
                   "Content-Length: %d\r\nExpect: 100-continue\r\n\r\n"
                   % (target, d["headers"]["Content-Type"], d["headers"]["x-upload-token"], len(data))).encode())
        interim = s.recv(100)
        t.eq(interim, b"HTTP/1.1 100 Continue\r\n\r\n", "Expect: 100-continue gets 100 Continue")
        s.sendall(data)
        final = s.recv(4096)
        t.ok(final.startswith(b"HTTP/1.1 200 OK") and b"ETag:" in final, "then the final 200 with ETag")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall(("PUT %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n"
                   % (target, len(data))).encode())
        answer = s.recv(4096)
    t.ok(answer.startswith(b"HTTP/1.1 403") and b"100 Continue" not in answer,
         "a PUT refused on its headers is answered without 100 Continue")

    conn = c.connect()
    before = c.api("GET", "/_admin/stats", key=None, conn=conn).doc()["connections"]
    sock = conn.sock
    statuses = [c.records("/patients?limit=2", conn=conn).status for _ in range(3)]
    d = c.presign(b"keepalive")
    statuses.append(c.put(d, b"keepalive", conn=conn).status)
    statuses.append(c.api("POST", U + "/uploads/%s/complete" % d["upload_id"], {}, conn=conn).status)
    statuses.append(c.api("POST", U + "/uploads", {"bad": 1}, conn=conn).status)
    statuses.append(c.records("/patients/1", conn=conn).status)
    after = c.api("GET", "/_admin/stats", key=None, conn=conn).doc()["connections"]
    t.eq(statuses, [200, 200, 200, 200, 200, 400, 404], "requests, including errors, on one connection")
    t.ok(conn.sock is sock and after - before == 1, "keep-alive: they all reused one connection",
         "connections before %d after %d" % (before, after))
    conn.close()

    http10 = raw_exchange(srv.port, b"GET /records/v1/patients?limit=1 HTTP/1.0\r\nX-API-Key: %s\r\n\r\n"
                          % RECORDS_KEY.encode())
    t.ok(http10.startswith(b"HTTP/1.1 200") and b"Content-Length:" in http10, "HTTP/1.0 requests are answered")


@case
def large_streamed_upload(t, srv, c):
    blocks = 64
    block = payload(MIB, b"big")

    def body():
        for i in range(blocks):
            yield i.to_bytes(4, "big") + block[4:]

    digest = hashlib.sha256()
    for piece in body():
        digest.update(piece)
    size = blocks * MIB
    d = c.api("POST", U + "/uploads", {"filename": "big/64mib.bin", "size_bytes": size,
                                       "sha256": digest.hexdigest(),
                                       "content_type": "application/octet-stream"}).data
    reply = c.request("PUT", d["url"], body(), dict(d["headers"], **{"Content-Length": str(size)}))
    t.eq(reply.status, 200, "64 MiB streamed PUT is 200")
    done = c.complete(d["upload_id"])
    t.ok(done.status == 200 and done.data["sha256"] == digest.hexdigest(), "64 MiB upload completes verified")
    with open("/proc/%d/status" % srv.pid) as f:
        hwm = int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1))
    t.ok(hwm < 60 * 1024, "server peak RSS stays small (%d KiB)" % hwm)
    series = srv.admin("GET", "/_admin/received?bucket_ms=100")
    stats = srv.admin("GET", "/stats")
    t.ok(series and sum(b for _, b in series) == stats["bytes_received"] >= size,
         "received series adds up to bytes_received", stats["bytes_received"])
    starts = [s for s, _ in series]
    t.ok(all(abs(b - a - 0.1) < 1e-6 for a, b in zip(starts, starts[1:])) and abs(starts[0] - time.time()) < 60,
         "series buckets are consecutive 100 ms steps in Unix time")
    t.eq(srv_admin_status(srv, "GET", "/received?bucket_ms=abc"), 400, "a bad bucket_ms is 400")


@case
def admin_interface(t, srv, c):
    data = payload(2000, b"admin")
    d = c.presign(data, filename="a/one.txt", content_type="text/plain")
    c.put(d, data[:-1] + b"!")
    c.complete(d["upload_id"])
    info = c.multipart(payload(3000), 1024).data
    part = c.part_urls(info["upload_id"], [1]).data["parts"][0]
    c.put_part(part, payload(3000)[:1024])
    uploads = srv.admin("GET", "/uploads")
    single, multi = uploads[d["upload_id"]], uploads[info["upload_id"]]
    t.ok(single["kind"] == "single" and single["filename"] == "a/one.txt" and single["bytes_received"] == 2000
         and single["state"] == "pending", "uploads show kind, filename, bytes and state", single)
    t.ok(multi["kind"] == "multipart" and multi["parts"][0]["part_number"] == 1
         and multi["parts"][0]["received_at"].endswith("Z") and multi["puts"][0]["status"] == 200,
         "multipart uploads list parts with timestamps and PUT attempts", multi)
    stats = srv.admin("GET", "/stats")
    t.ok(stats["requests"]["presign"] == {"201": 1} and stats["requests"]["put"] == {"200": 2}
         and stats["requests"]["complete"] == {"409": 1} and stats["requests_total"] == 6,
         "stats count requests per kind and status", stats)
    config = srv.admin("GET", "/config")
    t.ok(config["min_part_size"] == 1024 and config["url_ttl"] == 900 and config["rate_limit"] is None,
         "GET /_admin/config shows the command-line settings", config)
    changed = srv.admin("POST", "/config", {"url_ttl": 60, "rate_limit": "30/5"})
    t.ok(changed["url_ttl"] == 60 and changed["rate_limit"] == {"limit": 30, "window": 5},
         "POST /_admin/config changes settings and answers the new config")
    t.eq(srv_admin_status(srv, "POST", "/config", {"no_such_knob": 1}), 400, "unknown settings are 400")
    t.eq(srv_admin_status(srv, "POST", "/config", {"url_ttl": "soon"}), 400, "invalid values are 400")
    t.eq(srv_admin_status(srv, "GET", "/nothing"), 404, "unknown admin paths are 404")
    # Requests of earlier checks (stalled or slow faults) may still be
    # finishing on other threads: let the server go quiet before the reset,
    # or their late counts would land after it.
    wait_quiet(srv)
    srv.admin("POST", "/reset")
    t.ok(srv.admin("GET", "/uploads") == {} and srv.admin("GET", "/files") == []
         and srv.admin("GET", "/stats")["requests_total"] == 0 and srv.admin("GET", "/received") == [],
         "POST /_admin/reset clears uploads, files, stats and the received series")
    t.eq(srv.admin("GET", "/config")["url_ttl"], 60, "a plain reset keeps the configuration")
    srv.admin("POST", "/reset", {"config": True})
    t.eq(srv.admin("GET", "/config")["url_ttl"], 900, "reset with config: true restores the start configuration")

@case
def clock_offset(t, srv, c):
    srv.config(clock_offset=-3600, url_ttl=60, rate_limit="5/30", reset_style="unix",
               retry_after_style="date")
    before = time.time()
    reply = c.api("POST", U + "/uploads", {"filename": "a.txt", "size_bytes": 1,
                                             "sha256": "0" * 64, "content_type": "text/plain"})
    date = email.utils.parsedate_to_datetime(reply.header("Date")).timestamp()
    t.ok(abs(date - (before - 3600)) < 5, "clock_offset -3600: Date is an hour behind",
         reply.header("Date"))
    expires = parse_rfc3339(reply.data["expires_at"])
    t.ok(abs(expires - (before - 3600 + 60)) < 5, "expires_at is in the shifted clock",
         reply.data["expires_at"])
    reset = int(reply.header("X-RateLimit-Reset"))
    t.ok(abs(reset - (before - 3600 + 30)) < 5, "Unix X-RateLimit-Reset is in the shifted clock")
    for _ in range(6):
        reply = c.records("/patients")
    t.eq(reply.status, 429, "quota of the records key used up")
    retry = email.utils.parsedate_to_datetime(reply.header("Retry-After")).timestamp()
    t.ok(abs(retry - (before - 3600 + 30)) < 5, "Retry-After date is in the shifted clock",
         reply.header("Retry-After"))
    srv.config(clock_offset=0, rate_limit="off")
    reply = c.records("/patients")
    date = email.utils.parsedate_to_datetime(reply.header("Date")).timestamp()
    t.ok(abs(date - time.time()) < 5, "clock_offset 0 puts Date back")
    try:
        srv.config(clock_offset="soon")
        t.ok(False, "clock_offset must be a number")
    except hsserver_client.AdminError as e:
        t.eq(e.status, 400, "clock_offset must be a number")


def xml_code(reply):
    match = re.search(rb"<Code>([^<]*)</Code>", reply.body)
    return match.group(1).decode() if match else None


@case
def storage_dialect_s3(t, srv, c):
    srv.config(storage_dialect="s3")
    data = b"s3 dialect body"
    pre = c.presign(data)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(pre["url"]).query)
    t.eq(sorted(query), ["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
                         "X-Amz-Signature", "X-Amz-SignedHeaders"],
         "s3: presigned URL carries the SigV4 query parameters")
    t.eq(query["X-Amz-Algorithm"], ["AWS4-HMAC-SHA256"], "s3: X-Amz-Algorithm")
    t.eq(c.put(pre, data).status, 200, "s3: PUT through the S3-shaped URL is accepted")
    reply = c.put(pre, data)
    t.ok(reply.status == 403 and xml_code(reply) == "AccessDenied"
         and reply.header("Content-Type") == "application/xml",
         "s3: a used URL is 403 AccessDenied in XML", reply.body)
    pre = c.presign(data)
    srv.admin("POST", "/expire", {"urls": True, "sessions": False})
    reply = c.put(pre, data)
    t.ok(reply.status == 403 and xml_code(reply) == "AccessDenied"
         and b"<Message>Request has expired</Message>" in reply.body,
         "s3: an expired URL is 403 AccessDenied, Request has expired", reply.body)
    pre = c.presign(data)
    forged = dict(pre, url=pre["url"].replace("X-Amz-Signature=", "X-Amz-Signature=0"))
    t.eq(xml_code(c.put(forged, data)), "SignatureDoesNotMatch", "s3: altered signature")
    srv.admin("POST", "/faults", {"kind": "put", "fault": "503"})
    reply = c.put(pre, data)
    t.ok(reply.status == 503 and xml_code(reply) == "SlowDown" and reply.header("Retry-After") is None,
         "s3: 503 is SlowDown without Retry-After", reply.headers)
    info = c.multipart(payload(3000), 1024).data
    part = c.part_urls(info["upload_id"], [1]).data["parts"][0]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(part["url"]).query)
    t.ok(query.get("partNumber") == ["1"] and query.get("uploadId") == [info["upload_id"]],
         "s3: part URLs carry partNumber and uploadId")
    reply = c.put_part(part, payload(1024), crc=crc_b64(b"other"))
    t.ok(reply.status == 400 and xml_code(reply) == "BadDigest", "s3: CRC mismatch is BadDigest")
    reply = c.put_part(part, payload(1024), crc="???")
    t.ok(reply.status == 400 and xml_code(reply) == "InvalidDigest", "s3: malformed CRC is InvalidDigest")
    c.api("DELETE", U + "/uploads/multipart/%s" % info["upload_id"])
    reply = c.put_part(part, payload(1024))
    t.ok(reply.status == 404 and xml_code(reply) == "NoSuchUpload", "s3: aborted upload is NoSuchUpload")
    reply = c.api("POST", U + "/uploads", {"filename": 1})
    t.ok(reply.status == 400 and reply.doc().get("error") == "validation_error",
         "s3: the Upload API itself still answers JSON")


@case
def chaos_faults(t, srv, c):
    """The faults the chaos soak (tests/chaos) needs beyond the others:
    a delay before processing, S3's 307 and its 400 RequestTimeout."""
    data = b"delayed"
    srv.config(url_ttl=1)
    srv.admin("POST", "/faults", {"kind": "presign", "fault": "delay:1500"})
    started = time.monotonic()
    pre = c.presign(data)
    took = time.monotonic() - started
    t.ok(took >= 1.45, "delay:1500 holds the request 1.5 s before processing it", took)
    t.eq(c.put(pre, data).status, 200, "delay: URLs are issued after the wait, so a 1 s URL still works")
    srv.config(url_ttl=900)

    pre = c.presign(data)
    srv.admin("POST", "/faults", {"kind": "put", "fault": "redirect"})
    reply = c.put(pre, data)
    location = reply.header("Location") or ""
    t.ok(reply.status == 307 and location.startswith("http://redirected.invalid/storage/")
         and location.endswith("?" + urllib.parse.urlsplit(pre["url"]).query),
         "redirect: 307 to the same path and query on a host that never resolves", reply.headers)
    t.eq(reply.doc().get("error"), "temporary_redirect", "redirect: JSON dialect error type")
    t.eq(c.put(pre, data).status, 200, "redirect: answered instead of processing, the URL is not used up")

    srv.config(storage_dialect="s3")
    pre = c.presign(data)
    srv.admin("POST", "/faults", [{"kind": "put", "fault": "redirect:307"},
                                  {"kind": "put", "fault": "redirect:301"},
                                  {"kind": "put", "fault": "status:400:request_timeout"}])
    reply = c.put(pre, data)
    t.ok(reply.status == 307 and xml_code(reply) == "TemporaryRedirect"
         and reply.header("Content-Type") == "application/xml" and reply.header("Location"),
         "s3: redirect is 307 TemporaryRedirect in XML with a Location", reply.body)
    reply = c.put(pre, data)
    t.ok(reply.status == 301 and xml_code(reply) == "PermanentRedirect",
         "s3: redirect:301 is PermanentRedirect", reply.body)
    reply = c.put(pre, data)
    t.ok(reply.status == 400 and xml_code(reply) == "RequestTimeout",
         "s3: status:400:request_timeout is 400 RequestTimeout", reply.body)
    t.eq(c.put(pre, data).status, 200, "s3: none of them used up the URL")
    for bad in ("redirect:404", "redirect:x", "delay:x"):
        try:
            srv.admin("POST", "/faults", {"kind": "put", "fault": bad})
            t.ok(False, "%s is refused" % bad)
        except hsserver_client.AdminError as e:
            t.eq(e.status, 400, "%s is refused" % bad)
    stats = srv.admin("GET", "/stats")["faults_injected"]
    t.ok(stats.get("presign", {}).get("delay:1500") == 1 and stats.get("put", {}).get("redirect") == 1,
         "delay and redirect faults are counted", stats)


@case
def html_and_empty_faults(t, srv, c):
    data = b"page"
    pre = c.presign(data)
    srv.admin("POST", "/faults", [{"kind": "put", "fault": "html:403"},
                                  {"kind": "put", "fault": "empty:403"}])
    reply = c.put(pre, data)
    t.ok(reply.status == 403 and reply.header("Content-Type") == "text/html"
         and reply.body.startswith(b"<!DOCTYPE html>"), "html:403 answers an HTML page", reply.body)
    reply = c.put(pre, data)
    t.ok(reply.status == 403 and reply.body == b"" and reply.header("Content-Type") is None,
         "empty:403 answers no body at all", reply.headers)
    t.eq(c.put(pre, data).status, 200, "neither used up the URL")
    srv.admin("POST", "/faults", {"kind": "presign", "fault": "bad_url"})
    pre = c.presign(data)
    t.ok(urllib.parse.urlsplit(pre["url"]).netloc.startswith("bad%zzhost:"),
         "bad_url: the presigned URL has a host no parser takes", pre["url"])
    try:
        srv.admin("POST", "/faults", {"kind": "put", "fault": "html:42"})
        t.ok(False, "html:42 is refused")
    except hsserver_client.AdminError as e:
        t.eq(e.status, 400, "html:42 is refused")


def tls_checks(t, tmp):
    """A second server with --tls-cert: HTTPS everywhere, https URLs, and
    the handshakes counted."""
    import ssl
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
    from tlsca import CA
    ca = CA(os.path.join(tmp, "ca"))
    cert, key = ca.server()
    with hsserver_client.start(args=["--tls-cert", cert, "--tls-key", key]) as srv:
        context = ssl.create_default_context(cafile=ca.cert_file)

        def connect(timeout=30):
            return http.client.HTTPSConnection("127.0.0.1", srv.port, timeout=timeout,
                                               context=context)
        c = Client(srv)
        c.connect = connect
        t.ok(srv.base.startswith("https://"), "TLS: the helper knows the server speaks HTTPS")
        data = b"over tls"
        conn = connect()
        pre = c.presign(data)
        t.ok(pre["url"].startswith("https://127.0.0.1:%d/storage/" % srv.port), "TLS: https URLs")
        t.eq(c.put(pre, data, conn=conn).status, 200, "TLS: PUT over HTTPS")
        reply = c.api("POST", U + "/uploads/%s/complete" % pre["upload_id"], {}, conn=conn)
        t.eq(reply.status, 200, "TLS: complete on the same connection")
        t.eq(c.records("/patients", conn=conn).status, 200, "TLS: Records API over HTTPS")
        conn.close()
        stats = srv.admin("GET", "/stats")
        t.ok(stats["tls"] and stats["tls_handshakes"] >= 3, "TLS: handshakes counted", stats)
        t.eq(stats["connections_by_api"].get("upload"), 1, "TLS: connections counted by the API "
             "of their first request (one for the presign)")
        t.eq(stats["connections_by_api"].get("storage"), 1, "TLS: PUT, complete and list shared "
             "the storage connection")
        try:
            http.client.HTTPSConnection("127.0.0.1", srv.port, timeout=10,
                                        context=ssl.create_default_context()).request("GET", "/")
            t.ok(False, "TLS: a client without the CA refuses the server")
        except ssl.SSLError:
            t.ok(True, "TLS: a client without the CA refuses the server")
        t.ok(wait_for(lambda: srv.admin("GET", "/stats")["tls_handshake_failures"] >= 1),
             "TLS: the refused handshake is counted")
    bad = subprocess.run([sys.executable, hsserver_client.SERVER, "--tls-cert", cert],
                         capture_output=True)
    t.eq(bad.returncode, 2, "--tls-cert without --tls-key is a usage error")
    bad = subprocess.run([sys.executable, hsserver_client.SERVER, "--tls-cert", key,
                          "--tls-key", key], capture_output=True)
    t.eq(bad.returncode, 2, "an unusable certificate exits 2")


def check_log(t, path):
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    pattern = re.compile(r"\S+Z (GET|POST|PUT|DELETE|HEAD|PATCH|OPTIONS) /\S* \S+ \d+ \d+ \d+ms")
    t.ok(lines and all(pattern.fullmatch(line) for line in lines), "log has one well-formed line per request",
         "\n".join(line for line in lines if not pattern.fullmatch(line))[:2000])
    text = "\n".join(lines)
    t.ok("?" not in text and "X-Sig" not in text, "log lines carry no query strings")
    t.ok(UPLOAD_KEY not in text and RECORDS_KEY not in text and "rotated-key" not in text,
         "log lines carry no API keys")
    t.ok(any(" PUT /storage/" in line for line in lines), "storage PUTs are logged")


def main():
    t = Tap()
    tmp = tempfile.mkdtemp(prefix="hs-contract-")
    log = os.path.join(tmp, "server.log")
    srv = hsserver_client.start(args=["--min-part-size", "1KiB", "--log", log, "--seed", "contract"])
    c = Client(srv)
    try:
        for fn in CASES:
            try:
                srv.admin("POST", "/reset", {"config": True, "patients": True})
                fn(t, srv, c)
            except Exception:
                t.ok(False, "%s ran to the end" % fn.__name__, traceback.format_exc())
        check_log(t, log)
        try:
            tls_checks(t, tmp)
        except Exception:
            t.ok(False, "tls_checks ran to the end", traceback.format_exc())
        data_dir = srv.admin("GET", "/stats")["data_dir"]
        srv.proc.send_signal(signal.SIGTERM)
        try:
            code = srv.proc.wait(10)
        except subprocess.TimeoutExpired:
            code = None
        t.eq(code, 0, "SIGTERM stops the server with exit status 0")
        t.ok(not os.path.exists(data_dir), "the temporary data directory is removed at exit")
    finally:
        srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print("1..%d" % t.count)
    return 0 if t.failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
