"""Real HTTP proxies for tests, from Debian's packages, run in the
foreground with a configuration the test writes: tinyproxy (CONNECT, with
or without Basic credentials) and squid (CONNECT with Basic credentials
checked by its basic_ncsa_auth helper).

    from proxylib import Tinyproxy
    with Tinyproxy(dir, user="alice", password="...") as px:
        px.url                     # http://alice:...@127.0.0.1:PORT
        px.connects()              # CONNECT tunnels it opened so far
"""

import os
import shutil
import socket
import subprocess
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def available():
    return shutil.which("tinyproxy") is not None


SQUID = shutil.which("squid") or "/usr/sbin/squid"
NCSA = "/usr/lib/squid/basic_ncsa_auth"


def squid_available():
    return os.access(SQUID, os.X_OK) and os.access(NCSA, os.X_OK)


def _wait_listening(proc, port, what):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            if proc.poll() is not None:
                return False
            time.sleep(0.05)
    return False


class _Proxy:
    """What both proxies share: a log to count tunnels in, and a stop."""
    log_path = None
    tunnel_mark = None  # the log's words for a CONNECT tunnel let through
    stop_wait = 10

    def log(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def connects(self):
        """CONNECT tunnels the proxy let through so far."""
        return self.log().count(self.tunnel_mark)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(self.stop_wait)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class Tinyproxy(_Proxy):
    tunnel_mark = "Established connection to host"

    def __init__(self, directory, user=None, password=None):
        os.makedirs(directory, exist_ok=True)
        self.port = free_port()
        self.log_path = os.path.join(directory, "tinyproxy-%d.log" % self.port)
        conf = os.path.join(directory, "tinyproxy-%d.conf" % self.port)
        lines = ["Port %d" % self.port, "Listen 127.0.0.1", "Timeout 120",
                 "MaxClients 64", "LogLevel Connect", 'LogFile "%s"' % self.log_path,
                 'PidFile "%s"' % os.path.join(directory, "tinyproxy-%d.pid" % self.port),
                 "Allow 127.0.0.1"]
        if user:
            lines.append("BasicAuth %s %s" % (user, password))
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        auth = "%s:%s@" % (user, password) if user else ""
        self.url = "http://%s127.0.0.1:%d" % (auth, self.port)
        self.proc = subprocess.Popen(["tinyproxy", "-d", "-c", conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not _wait_listening(self.proc, self.port, "tinyproxy"):
            self.stop()
            raise RuntimeError("tinyproxy did not start on port %d" % self.port)


class Squid(_Proxy):
    """squid -N (no daemon) with Basic credentials for one user. Started
    as root, squid works as the "proxy" user: its folder is opened up."""
    tunnel_mark = "TCP_TUNNEL/200"
    stop_wait = 15

    def __init__(self, directory, user, password):
        os.makedirs(directory, exist_ok=True)
        os.chmod(directory, 0o777)
        parent = os.path.dirname(directory)
        os.chmod(parent, os.stat(parent).st_mode | 0o755)
        self.port = free_port()
        self.log_path = os.path.join(directory, "access.log")
        passwd = os.path.join(directory, "passwd")
        hashed = subprocess.run(["openssl", "passwd", "-apr1", password], check=True,
                                capture_output=True, text=True).stdout.strip()
        with open(passwd, "w") as f:
            f.write("%s:%s\n" % (user, hashed))
        os.chmod(passwd, 0o644)
        conf = os.path.join(directory, "squid.conf")
        with open(conf, "w") as f:
            f.write("\n".join([
                "http_port 127.0.0.1:%d" % self.port,
                "pid_filename %s" % os.path.join(directory, "squid.pid"),
                "cache_log %s" % os.path.join(directory, "cache.log"),
                "access_log stdio:%s" % self.log_path,
                "cache deny all",
                "cache_mem 8 MB",
                "shutdown_lifetime 1 seconds",
                "auth_param basic program %s %s" % (NCSA, passwd),
                "auth_param basic realm healsync-test",
                "acl authed proxy_auth REQUIRED",
                "http_access allow authed",
                "http_access deny all"]) + "\n")
        self.url = "http://%s:%s@127.0.0.1:%d" % (user, password, self.port)
        self.proc = subprocess.Popen([SQUID, "-N", "-f", conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        if not _wait_listening(self.proc, self.port, "squid"):
            self.stop()
            raise RuntimeError("squid did not start on port %d" % self.port)
