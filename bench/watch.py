#!/usr/bin/env python3
"""The watch pipeline, three figures, each beside its baseline:

  scan     a tree of 100,000 files in 10,000 directories: time and peak RSS
           from start until healsync has watched and listed every folder
           ("ready", READY=1), first with an empty queue (every file gets a
           job) and again with every file known; against `inotifywait -r -m`
           setting up watches on the same tree ("Watches established").
           The jobs of the first run commit after READY; the time until the
           last is committed is printed too, and the restart waits for it.
  latency  file closed -> job queued, p50 and p99, with settle = 0s and with
           the default 2s.
  idle     context switches of an idle `healsync run` over 60 s (from
           /proc/PID/status), beside `sleep 60`.

    bench/watch.py [scan|latency|idle ...] [--files 100000 --dirs 10000] [--runs N]

Uploads are kept out of the figures: the upload key is wrong, so the first
request pauses the Upload API and the daemon does nothing but watch."""
import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import time

import benchlib
import hstest


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def ctxt(pid):
    s = proc_status(pid)
    return int(s["voluntary_ctxt_switches"]) + int(s["nonvoluntary_ctxt_switches"])


def wait_for(pred, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.005)
    return False


def make_tree(root, files, dirs):
    per = files // dirs
    width = max(1, int(dirs ** 0.5))
    for d in range(dirs):
        sub = os.path.join(root, "d%03d" % (d // width), "e%03d" % (d % width))
        os.makedirs(sub)
        for i in range(per):
            with open(os.path.join(sub, "f%02d.pdf" % i), "wb") as f:
                f.write(b"x" * 100)


def watch_env(tap, root, settle="2s"):
    env = hstest.Env(tap, log_level="info", base_dir="/var/tmp")
    with open(env.upload_key_file, "w") as f:
        f.write("a-wrong-key\n")        # the Upload API pauses: only watching is measured
    env.write_config({}, watch=['{ path = "%s"; settle = "%s"; }' % (root, settle)])
    return env


def queued_in_db(env):
    """Jobs queued, read from the queue's own counts (cheaper than the CLI)."""
    try:
        con = sqlite3.connect("file:%s?mode=ro" % os.path.join(env.state, "queue.db"),
                              uri=True, timeout=30)
        try:
            row = con.execute("SELECT n FROM job_counts WHERE state = 'queued'").fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return 0
    return row[0] if row else 0


def healsync_until_ready(env, jobs=0):
    """Seconds until ready, peak RSS (KiB), and seconds until `jobs` jobs
    are committed (None when jobs is 0)."""
    d = env.daemon()
    t0 = time.monotonic()
    if not wait_for(lambda: "scanned; ready" in d.output(), 1800):
        raise SystemExit("healsync never became ready:\n" + d.output()[-2000:])
    elapsed = time.monotonic() - t0
    committed = None
    if jobs:
        if not wait_for(lambda: queued_in_db(env) >= jobs, 1800):
            raise SystemExit("healsync never queued %d jobs:\n%s" % (jobs, d.output()[-2000:]))
        committed = time.monotonic() - t0
    peak = int(proc_status(d.proc.pid)["VmHWM"].split()[0])
    d.stop()
    return elapsed, peak, committed


def inotifywait_until_ready(root):
    p = subprocess.Popen(["inotifywait", "-r", "-m", "-q", root], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    t0 = time.monotonic()
    # -q still prints "Watches established." only without -q; poll /proc instead:
    # the watch count in fdinfo reaches the number of directories.
    want = None
    elapsed = None
    while time.monotonic() - t0 < 1800:
        try:
            fds = os.listdir("/proc/%d/fdinfo" % p.pid)
        except FileNotFoundError:
            break
        n = 0
        for fd in fds:
            try:
                with open("/proc/%d/fdinfo/%s" % (p.pid, fd)) as f:
                    n += sum(1 for line in f if line.startswith("inotify wd:"))
            except OSError:
                pass
        if want is None:
            want = sum(1 for _ in os.walk(root))
        if n >= want:
            elapsed = time.monotonic() - t0
            break
        time.sleep(0.005)
    peak = int(proc_status(p.pid)["VmHWM"].split()[0])
    p.terminate()
    p.wait()
    return elapsed, peak


def bench_scan(opts, tap):
    base = "/var/tmp/hs-bench-tree"
    shutil.rmtree(base, ignore_errors=True)
    root = os.path.join(base, "tree")
    t0 = time.monotonic()
    make_tree(root, opts.files, opts.dirs)
    print("tree: %d files in %d directories, made in %.1f s"
          % (opts.files, opts.dirs, time.monotonic() - t0))
    subprocess.run(["sync"])
    # Written longer ago than settle (2 s), as the files a start-up scan
    # finds usually are: younger ones would wait out their settle instead.
    time.sleep(max(0.0, 2.5 - (time.monotonic() - t0)))
    ratios = []
    try:
        for run in range(opts.runs):
            env = watch_env(tap, root)          # a fresh, empty queue each run
            try:
                iw1 = inotifywait_until_ready(root)
                hs_new = healsync_until_ready(env, opts.files)   # every file becomes a job
                iw2 = inotifywait_until_ready(root)
                hs_known = healsync_until_ready(env)     # every file already known
                queued = env.counts()
            finally:
                env.close()
            iw = min(iw1[0], iw2[0]), max(iw1[1], iw2[1])
            rows = [("inotifywait -r -m (watches only)", iw),
                    ("healsync, empty queue (scan + %d jobs)" % queued.get("queued", 0),
                     hs_new),
                    ("healsync, every file known (restart)", hs_known)]
            print("run %d of %d: start-up, scan and watch setup until ready"
                  % (run + 1, opts.runs))
            for name, (secs, kib, *_) in rows:
                print("  %-44s %7.2f s  %7.1f MiB peak RSS  %5.2fx"
                      % (name, secs, kib / 1024, secs / iw[0]))
            print("  healsync, empty queue: every job committed after %.2f s (%.2fx)"
                  % (hs_new[2], hs_new[2] / iw[0]))
            ratios.append((hs_new[0] / iw[0], hs_known[0] / iw[0], hs_new[2] / iw[0]))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    first, restart, committed = (statistics.median(r[i] for r in ratios) for i in range(3))
    print("median of %d runs, ratio to inotifywait in the same run: first scan %.2fx "
          "(goal <= 1.5: %s), restart %.2fx (goal <= 1: %s); every job committed %.2fx"
          % (len(ratios), first, "met" if first <= 1.5 else "NOT met", restart,
             "met" if restart <= 1 else "NOT met", committed))


def bench_latency(opts, tap):
    for settle in ("0s", "2s"):
        root = "/var/tmp/hs-bench-latency"
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(root)
        env = watch_env(tap, root, settle)
        d = env.daemon()
        wait_for(lambda: "scanned; ready" in d.output(), 60)
        closed = {}
        for i in range(opts.samples):
            path = os.path.join(root, "f%04d.pdf" % i)
            with open(path, "wb") as f:
                f.write(b"latency sample %d\n" % i)
            closed[path] = time.time() * 1000
            time.sleep(0.02)
        wait_for(lambda: len(json.loads(env.cli("jobs", "--json")[1])) >= opts.samples, 120)
        jobs = json.loads(env.cli("jobs", "--json")[1])
        d.stop()
        env.close()
        shutil.rmtree(root, ignore_errors=True)
        lat = sorted(j["created_at"] - closed[j["path"]] for j in jobs if j["path"] in closed)
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        print("detection latency, settle = %s: %d files, p50 %.0f ms, p99 %.0f ms "
              "(settle itself is the floor)" % (settle, len(lat), statistics.median(lat), p99))


def bench_idle(opts, tap):
    root = "/var/tmp/hs-bench-idle"
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(os.path.join(root, "a", "b"))
    env = watch_env(tap, root)
    d = env.daemon()
    wait_for(lambda: "scanned; ready" in d.output(), 60)
    time.sleep(3)                        # let the status refresh after start settle
    sleeper = subprocess.Popen(["sleep", str(opts.idle_secs)])
    c0, s0 = ctxt(d.proc.pid), ctxt(sleeper.pid)
    time.sleep(opts.idle_secs - 0.5)
    c1, s1 = ctxt(d.proc.pid), ctxt(sleeper.pid)
    sleeper.wait()
    d.stop()
    env.close()
    shutil.rmtree(root, ignore_errors=True)
    print("idle over %d s: healsync run %d context switches, sleep %d (baseline)"
          % (opts.idle_secs, c1 - c0, s1 - s0))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", nargs="*", default=["scan", "latency", "idle"])
    ap.add_argument("--files", type=int, default=100000)
    ap.add_argument("--dirs", type=int, default=10000)
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--idle-secs", type=int, default=60)
    ap.add_argument("--runs", type=int, default=1, help="scan: measurements on one tree")
    opts = ap.parse_args()
    hstest.HEALSYNC = benchlib.healsync_binary()
    tap = hstest.TAP()
    for what in opts.what:
        {"scan": bench_scan, "latency": bench_latency, "idle": bench_idle}[what](opts, tap)


if __name__ == "__main__":
    main()
