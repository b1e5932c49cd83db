"""Start healsync-testserver from Python tests (standard library only).

    import sys, os
    sys.path.insert(0, os.path.join(os.environ["HS_SRCDIR"], "tests", "server"))
    import hsserver_client

    with hsserver_client.start(args=["--min-part-size", "1024"]) as srv:
        srv.upload_base            # http://127.0.0.1:PORT/upload/v1 (https with --tls-cert)
        srv.records_base           # http://127.0.0.1:PORT/records/v1
        srv.admin("POST", "/faults", {"kind": "put", "fault": "500", "count": 2})
        stats = srv.admin("GET", "/stats")

The server runs as a child process with its own temporary data directory.
stop() (or leaving the with block) sends SIGTERM and waits for it to exit.
"""

import base64
import hashlib
import hmac
import json
import os
import secrets
import select
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "healsync-testserver")


class AdminError(Exception):
    """An admin call answered with status >= 400."""

    def __init__(self, status, body):
        super().__init__("admin call failed with %d: %s" % (status, body))
        self.status = status
        self.body = body


class ServerProcess:
    """A running healsync-testserver."""

    def __init__(self, proc, port, tls=False):
        self.proc = proc
        self.port = port
        self.tls = tls
        self.base = "%s://127.0.0.1:%d" % ("https" if tls else "http", port)
        self.storage_port = port     # another with --storage-port
        # Admin calls are the test's own: they do not check the certificate,
        # which may be one made wrong on purpose (expired, other host name).
        self._context = None
        if tls:
            self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            self._context.check_hostname = False
            self._context.verify_mode = ssl.CERT_NONE
        self.upload_base = self.base + "/upload/v1"
        self.records_base = self.base + "/records/v1"
        self.admin_base = self.base + "/_admin"

    @property
    def pid(self):
        return self.proc.pid

    def admin(self, method, path, body=None, timeout=30):
        """Call /_admin/<path> (path may start with "/" or "/_admin/");
        returns the decoded JSON answer, or raises AdminError."""
        path = "/" + path.lstrip("/")
        if not path.startswith("/_admin"):
            path = "/_admin" + path
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=self._context) as answer:
                raw = answer.read()
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                decoded = json.loads(raw)
            except ValueError:
                decoded = raw
            raise AdminError(e.code, decoded) from None
        return json.loads(raw) if raw else None

    def config(self, **changes):
        """Change settings (POST /_admin/config) if any are given; returns the config."""
        if changes:
            return self.admin("POST", "/config", changes)
        return self.admin("GET", "/config")

    def stop(self, timeout=10):
        """SIGTERM, wait (SIGKILL after timeout); returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def make_jwt(exp, subject="healsync-test"):
    """A JWT shaped like the vendor's (HS256, claims sub, iat, exp), made
    at test time so that no token is ever a committed fixture. Its key is
    random and thrown away: the reference server accepts the token it was
    given (--upload-token, upload_token), not a signature."""
    def part(raw):
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    header = part(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {"sub": subject, "iat": int(exp) - 3600, "exp": exp, "jti": secrets.token_hex(8)}
    payload = part(json.dumps(claims).encode())
    signing = (header + "." + payload).encode("ascii")
    sig = part(hmac.new(secrets.token_bytes(32), signing, hashlib.sha256).digest())
    return header + "." + payload + "." + sig


def start(port=0, args=(), timeout=10.0, stderr=None, env=None):
    """Start the server on 127.0.0.1:port (0: any free port) with extra
    command-line args; returns a ServerProcess once it has printed its port."""
    cmd = [sys.executable, SERVER, "--port", str(port)] + [str(a) for a in args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, env=env)
    deadline = time.monotonic() + timeout
    lines = [_read_line(proc, deadline, timeout)]
    if "--storage-port" in [str(a) for a in args]:
        lines.append(_read_line(proc, deadline, timeout))
    srv = ServerProcess(proc, int(lines[0]), tls="--tls-cert" in [str(a) for a in args])
    srv.storage_port = int(lines[-1])
    return srv


def _read_line(proc, deadline, timeout):
    """One line of the server's stdout (a port), unbuffered, by deadline."""
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        ready = select.select([proc.stdout], [], [], max(0, left))[0] if left > 0 else []
        if not ready:
            proc.kill()
            proc.wait()
            raise RuntimeError("healsync-testserver did not print its port within %gs" % timeout)
        byte = os.read(proc.stdout.fileno(), 1)
        if not byte:
            code = proc.wait()
            raise RuntimeError("healsync-testserver exited with %s before printing its port" % code)
        line += byte
    return line
