"""Shared pieces of the benchmarks: a healsync build, the reference server,
and process measurement. Benchmarks print figures beside a baseline run in
the same invocation; they never assert on time."""
import os
import subprocess
import sys
import threading
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


def vm_hwm_kib(pid):
    """The VmHWM (peak resident set) of pid's own address space in KiB, or
    None once it has none (exited, a zombie, or gone)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class PeakRSS:
    """The peak RSS of one process, read from its own /proc/PID/status
    (VmHWM) every few milliseconds until it exits.

    Not wait4's ru_maxrss: on Linux that carries the high-water mark of
    the address space the child had before exec, the copy of the Python
    process that started it, so a 9 MiB program was reported at the
    benchmark's 213 MiB. VmHWM belongs to the program's own address space
    and only grows, so the last reading before exit is the peak; the poll
    runs in a thread so that the benchmark can wait for other things
    meanwhile. Nothing here reaps the process."""

    def __init__(self, pid, interval=0.005):
        self.pid = pid
        self.kib = 0
        self._interval = interval
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self):
        while True:
            kib = vm_hwm_kib(self.pid)
            if kib is None:
                return
            self.kib = max(self.kib, kib)
            time.sleep(self._interval)

    def wait(self):
        """Peak in KiB, once the process has left no address space behind."""
        self._thread.join()
        return self.kib


def wait_peak(proc, peak=None):
    """Waits for the subprocess proc; returns (exit code, its peak RSS in
    KiB from VmHWM). Pass the PeakRSS started right after Popen for a
    process that runs a while; without one, polling starts now."""
    peak = peak or PeakRSS(proc.pid)
    code = proc.wait()
    return code, peak.wait()


def mib(n):
    return n / (1024 * 1024)


class Timer:
    def __enter__(self):
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.elapsed = time.monotonic() - self.start
