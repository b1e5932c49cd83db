"""Real HTTP proxies for tests, from Debian's packages, run in the
foreground with a configuration the test writes: tinyproxy (CONNECT, with
or without Basic credentials).

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


class Tinyproxy:
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
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("tinyproxy did not start on port %d" % self.port)

    def log(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def connects(self):
        """Tunnels the proxy established (CONNECT requests it let through)."""
        return self.log().count("Established connection to host")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
