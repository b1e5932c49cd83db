"""Shared pieces of the benchmarks: a healsync build, the reference server,
and process measurement. Benchmarks print figures beside a baseline run in
the same invocation; they never assert on time."""
import os
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
import hstest  # noqa: E402,F401


def healsync_binary():
    """A release build of healsync ($HEALSYNC, else bench/build/healsync,
    made on first use without sanitizers)."""
    if os.environ.get("HEALSYNC"):
        return os.environ["HEALSYNC"]
    build = os.path.join(TOP, "bench", "out", "build")
    binary = os.path.join(build, "healsync")
    os.makedirs(build, exist_ok=True)
    if not os.path.exists(os.path.join(TOP, "configure")):
        subprocess.run(["./autogen.sh"], cwd=TOP, check=True, capture_output=True)
    if not os.path.exists(os.path.join(build, "Makefile")):
        subprocess.run([os.path.join(TOP, "configure"), "CFLAGS=-O2 -g"], cwd=build,
                       check=True, capture_output=True)
    # Always brought up to date: figures from an old binary would mislead.
    subprocess.run(["make", "-j2", "healsync"], cwd=build, check=True, capture_output=True)
    return binary


def wait4_rss(proc):
    """Waits for proc; returns (exit code, peak RSS in KiB) from wait4."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss


def mib(n):
    return n / (1024 * 1024)


class Timer:
    def __enter__(self):
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.elapsed = time.monotonic() - self.start
