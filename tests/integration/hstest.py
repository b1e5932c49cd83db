"""Shared pieces of healsync's integration tests: real healsync processes,
real SQLite files, real HTTP over loopback to the reference server.

    from hstest import TAP, Env

    tap = TAP()
    with Env(tap) as env:                     # a temp dir, a server, a config
        env.write_file("a.pdf", b"...")
        env.enqueue("a.pdf")
        with env.daemon():
            env.wait_jobs(done=1)
        tap.ok(env.stored("a.pdf"), "a.pdf stored")
    tap.finish()

The harness runs where `make check` runs it: HEALSYNC names the binary and
HS_SRCDIR the source tree. Tests print TAP; every helper that waits has a
deadline and says what it was waiting for when it gives up.
"""

import hashlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SRCDIR = os.environ.get("HS_SRCDIR") or os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(SRCDIR, "tests", "server"))
import hsserver_client  # noqa: E402

HEALSYNC = os.environ.get("HEALSYNC") or os.path.join(SRCDIR, "build", "healsync")
UPLOAD_KEY = "it-upload-key-0123456789"
RECORDS_KEY = "it-records-key-0123456789"


class TAP:
    """TAP output: one line per assertion, the plan at the end."""

    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, desc, diag=None):
        self.n += 1
        if not cond:
            self.failed += 1
        print("%s %d - %s" % ("ok" if cond else "not ok", self.n, desc), flush=True)
        if not cond and diag is not None:
            for line in str(diag).splitlines()[-40:]:
                print("# " + line, flush=True)
        return bool(cond)

    def eq(self, got, want, desc):
        return self.ok(got == want, desc, "got %r, want %r" % (got, want))

    def skip(self, desc):
        self.n += 1
        print("ok %d - %s # SKIP" % (self.n, desc), flush=True)

    def diag(self, text):
        for line in str(text).splitlines():
            print("# " + line, flush=True)

    def finish(self):
        print("1..%d" % self.n, flush=True)
        sys.exit(1 if self.failed else 0)


def as_nobody(env, groups, *args):
    """healsync as user nobody with these supplementary groups: a monitor
    that is not the service. Returns (exit code, stdout, stderr)."""
    nobody = pwd.getpwnam("nobody")

    def drop():
        os.setgroups(groups)
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)
    p = subprocess.run([HEALSYNC, "-c", env.config_path] + list(args), capture_output=True,
                       timeout=60, preexec_fn=drop)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write(path, data):
    """data (bytes) as the file at path, its folders made as needed."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def read(path):
    """The file's bytes, or None when it cannot be read (gone, say)."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def write_secret(path, secret):
    """A key or token file: secret and a newline, mode 0600."""
    with open(path, "w") as f:
        f.write(secret + "\n")
    os.chmod(path, 0o600)
    return path


def secrets_in(secrets, text):
    """Which of secrets (JWTs or keys) text holds, whole or by a JWT's
    signature alone, each shortened to a prefix fit to print."""
    return [t[:12] + "..." for t in secrets if t in text or t.rsplit(".", 1)[-1] in text]


def state_texts(env):
    """Every file in env's state folder, as text (status.json, the queue)."""
    texts = []
    for root, _, names in os.walk(env.state):
        for name in names:
            with open(os.path.join(root, name), "rb") as f:
                texts.append(f.read().decode("latin-1"))
    return texts


def watch_entry(path, after, prefix, settle="200ms"):
    """One entry of the watch list, for Env(watch=[...])."""
    return ('{ path = "%s"; remote_prefix = "%s"; settle = "%s"; after_upload = "%s"; }'
            % (path, prefix, settle, after))


def write_random(path, size, seed=0):
    """A file of size pseudo-random bytes, written in pieces."""
    import random
    rnd = random.Random(seed)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 1 << 20)
            f.write(rnd.randbytes(n))
            left -= n


class Daemon:
    """A `healsync run` process; stderr goes to a log file."""

    def __init__(self, env, extra_env=None):
        self.env = env
        self.log_path = os.path.join(env.dir, "daemon-%d.log" % env.next_log())
        self.log = open(self.log_path, "wb")
        penv = dict(os.environ)
        penv.pop("JOURNAL_STREAM", None)
        penv.pop("NOTIFY_SOCKET", None)
        penv.update(extra_env or {})
        self.proc = subprocess.Popen([HEALSYNC, "-c", env.config_path, "run"],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=penv)

    def stop(self, timeout=30):
        """SIGTERM and wait; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.log.close()
                return "hung"
        self.log.close()
        return self.proc.returncode

    def kill(self):
        """SIGKILL: the power-failure case."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.log.close()

    def output(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class Env:
    """A temporary world: a directory, a reference server, key files and a
    configuration pointing healsync at them."""

    def __init__(self, tap, server_args=(), upload=None, watch=None, mirror=None, extra="",
                 log_level="debug", base_dir=None):
        self.tap = tap
        self.log_level = log_level
        self.dir = tempfile.mkdtemp(prefix="hs-it-", dir=base_dir)
        self.files = os.path.join(self.dir, "files")
        self.state = os.path.join(self.dir, "state")
        os.makedirs(self.files)
        self._logs = 0
        self.server = hsserver_client.start(
            args=["--upload-key", UPLOAD_KEY, "--records-key", RECORDS_KEY,
                  "--data-dir", os.path.join(self.dir, "server")] + list(server_args))
        self.upload_key_file = self._key("upload.key", UPLOAD_KEY)
        self.records_key_file = self._key("records.key", RECORDS_KEY)
        self.config_path = os.path.join(self.dir, "healsync.conf")
        self.write_config(upload or {}, watch, mirror, extra)

    def next_log(self):
        self._logs += 1
        return self._logs

    def _key(self, name, key):
        return write_secret(os.path.join(self.dir, name), key)

    def write_config(self, upload, watch=None, mirror=None, extra=""):
        settings = {
            "base_url": self.server.upload_base,
            "api_key_file": self.upload_key_file,
            "multipart_threshold": "8MiB",
            "part_size": "5MiB",
            "parallel": 4,
        }
        settings.update(upload)
        lines = ['state_dir = "%s";' % self.state, "upload: {"]
        for k, v in settings.items():
            lines.append("  %s = %s;" % (k, json.dumps(v)))
        lines.append("};")
        if watch is not None:
            lines.append("watch = (" + ",\n".join(watch) + ");")
        if mirror is not None:
            lines.append("mirror: {")
            for k, v in mirror.items():
                lines.append("  %s = %s;" % (k, json.dumps(v)))
            lines.append("};")
        lines.append('log: { level = "%s"; };' % self.log_level)
        lines.append(extra)
        with open(self.config_path, "w") as f:
            f.write("\n".join(lines) + "\n")

    # ---- files and the queue -------------------------------------------

    def path(self, name):
        return os.path.join(self.files, name)

    def write_file(self, name, data):
        path = self.path(name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def cli(self, *args, check=True):
        """Runs a healsync command; returns (exit code, stdout, stderr)."""
        p = subprocess.run([HEALSYNC, "-c", self.config_path] + list(args),
                           capture_output=True, timeout=120)
        out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
        # status exits by the health verdict (0 OK, 1 WARNING, 2 CRITICAL):
        # only check tests ask about that.
        ok = (0, 1, 2) if args and args[0] == "status" else (0,)
        if check and p.returncode not in ok:
            raise RuntimeError("healsync %s exited %d: %s" % (" ".join(args), p.returncode, err))
        return p.returncode, out, err

    def enqueue(self, *names):
        self.cli("enqueue", *[self.path(n) for n in names])

    def jobs(self):
        return json.loads(self.cli("jobs", "--json")[1])

    def job(self, remote_name):
        """The first job `jobs` lists for remote_name, or {} when there is none."""
        return next((j for j in self.jobs() if j["remote_name"] == remote_name), {})

    def counts(self):
        return json.loads(self.cli("status", "--json")[1])["queue"]

    def wait_jobs(self, timeout=60, **want):
        """Waits until the queue counts include want (e.g. done=3)."""
        deadline = time.monotonic() + timeout
        counts = {}
        while time.monotonic() < deadline:
            counts = self.counts()
            if all(counts.get(k) == v for k, v in want.items()):
                return True
            time.sleep(0.1)
        self.tap.diag("waited %gs for %r; queue is %r" % (timeout, want, counts))
        return False

    def wait_until(self, pred, timeout=60, what="a condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return True
            time.sleep(0.05)
        self.tap.diag("waited %gs for %s" % (timeout, what))
        return False

    def daemon(self, extra_env=None):
        return Daemon(self, extra_env)

    # ---- what the server holds ------------------------------------------

    def server_files(self):
        answer = self.server.admin("GET", "/files")
        return answer["files"] if isinstance(answer, dict) else answer

    def stored(self, name, remote=None):
        """The server's record of local file name if it holds exactly its
        bytes under remote (default: the name itself)."""
        want = sha256_file(self.path(name))
        for f in self.server_files():
            if f["filename"] == (remote or name) and f["sha256"] == want:
                return f
        return None

    def close(self):
        self.server.stop()
        if os.environ.get("HS_KEEP_TMP"):
            self.tap.diag("kept " + self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
