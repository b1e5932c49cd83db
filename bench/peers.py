#!/usr/bin/env python3
"""Peers: healsync, rclone and aws-cli uploading the same files to ONE
s3rver (tests/interop's front) in the same run, so that every figure has
its baselines beside it.

    bench/peers.py [--small-files 1000] [--large-mib 512] [--parallel 4]
                   [--runs 1] [--only small|large] [--no-strace] [--base BIN]
                   [--storage-dir DIR] [--one-process] [--no-lean]

Workloads: --small-files files of 4 KiB and a little more (one PUT each),
and one file of --large-mib MiB (multipart, 16 MiB parts). Each client
sends with --parallel transfers at once, parts of 16 MiB above 64 MiB:

  healsync  `healsync run` watching the folder (the start-up scan finds the
            files, settle 0 s), through the front's Upload API: per small
            file presign, PUT, complete; done when its log says every file
            was uploaded, then stopped with SIGTERM.
  rclone    `rclone copy DIR s3:...` straight to s3rver (Debian's package),
            --transfers / --s3-upload-concurrency = parallel.
  aws-cli   `aws s3 cp --recursive DIR s3://...` straight to s3rver
            (Debian's awscli), s3.max_concurrent_requests = parallel.

The server is the field's shape, and its own work is not billed to the
client measured (tests/interop/front.js): the Upload API and s3rver run
in two processes, as they are two hosts in the field (--one-process: in
one); a complete checks the object's size (--no-verify), read from
s3rver's store, and URLs are signed by one presigner built once
(--lean; --no-lean: getSignedUrl and HeadObject, the SDK client's whole
middleware stack per call); s3rver's store is on --storage-dir, by
default /dev/shm, so that the server's disk writes neither cost the
server's CPU nor ride on healsync's fdatasync (ext4's ordered mode
writes every file's dirty data at a journal commit). The peers never
talk to the front's API at all.

Per client: wall time (exec to exit; healsync's to its last file's
"uploaded" line), CPU (user + sys of the client's process tree from
wait4, so what it forked and reaped counts too), peak RSS (the client's
own VmHWM, benchlib.PeakRSS, not Python's), the requests the front and
s3rver answered and the connections they accepted (API + storage, the
benchmark's admin calls on a port of their own). Then, unless
--no-strace, one more healsync run of the small files under
`strace -f --seccomp-bpf -c -e trace=fsync,fdatasync` (apart from the
timed runs: strace slows what it traces) for syncs per file.

Goals (issue 23): healsync's wall time at most the fastest peer's on the
large file and at most 1.2x on small files (it makes 3 requests per file
where they make 1); healsync's CPU per small file at most rclone's; at
most 2 fdatasync per small file. Ratios are per run; nothing asserts.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import benchlib

sys.path.insert(0, os.path.join(benchlib.TOP, "tests", "interop"))
import hstest  # noqa: E402
from interop import Front  # noqa: E402

MIB = 1024 * 1024
PART = 16 * MIB
THRESHOLD = 64 * MIB


def cpu_seconds(pid):
    """user + sys CPU of process pid so far (its own threads)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def front_stats(front):
    with urllib.request.urlopen(front.admin_base + "/stats", timeout=60) as r:
        s = json.loads(r.read())
    # The front's own calls to s3rver (HeadObject, CompleteMultipartUpload)
    # are the server's work, not the client's.
    return {"requests": (s["api_requests"] + sum(s["storage"].values())
                         - sum(s["own_storage"].values())),
            "api_requests": s["api_requests"],
            "connections": s["connections"]["api"] + s["connections"]["storage"],
            "completes": s["completes"],
            "server_cpu": sum(cpu_seconds(pid) for pid in {front.proc.pid, front.storage_pid})}


def since(front, before):
    after = front_stats(front)
    return {k: after[k] - before[k] for k in after}


def reap(proc):
    """wait4 on proc: (exit code, rusage of it and its reaped children)."""
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, ru


class Result:
    def __init__(self, name, wall, ru, peak_kib, counts):
        self.name = name
        self.wall = wall
        self.user, self.sys = ru.ru_utime, ru.ru_stime
        self.cpu = ru.ru_utime + ru.ru_stime
        self.peak_kib = peak_kib
        self.requests = counts["requests"]
        self.connections = counts["connections"]
        self.server_cpu = counts["server_cpu"]


class Bench:
    def __init__(self, opts, work):
        self.opts = opts
        self.work = work
        self.front_dir = tempfile.mkdtemp(prefix="hs-peers-front-", dir=opts.storage_dir)
        self.front = Front(self.front_dir, args=self.front_args(opts))
        self.seq = 0
        self.key_file = os.path.join(work, "upload.key")
        with open(self.key_file, "w") as f:
            f.write(hstest.UPLOAD_KEY + "\n")
        os.chmod(self.key_file, 0o600)
        self._peer_config()

    @staticmethod
    def front_args(opts):
        return (["--no-verify"] + ([] if opts.no_lean else ["--lean"])
                + ([] if opts.one_process else ["--storage-process"]))

    def close(self):
        self.front.stop()
        shutil.rmtree(self.front_dir, ignore_errors=True)

    def _peer_config(self):
        storage = self.front.storage_base
        # Only what is set here: an AWS_CA_BUNDLE or profile from the
        # caller's environment would change what the peers do (rclone
        # refuses a CA bundle on its transport).
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_"))}
        self.rclone_env = dict(base, RCLONE_CONFIG=os.path.join(self.work, "rclone.conf"),
                               RCLONE_CONFIG_S3R_TYPE="s3", RCLONE_CONFIG_S3R_PROVIDER="Other",
                               RCLONE_CONFIG_S3R_ACCESS_KEY_ID="S3RVER",
                               RCLONE_CONFIG_S3R_SECRET_ACCESS_KEY="S3RVER",
                               RCLONE_CONFIG_S3R_ENDPOINT=storage,
                               RCLONE_CONFIG_S3R_REGION="us-east-1",
                               RCLONE_CONFIG_S3R_FORCE_PATH_STYLE="true")
        open(self.rclone_env["RCLONE_CONFIG"], "w").close()
        aws_config = os.path.join(self.work, "aws.config")
        with open(aws_config, "w") as f:
            f.write("[default]\nregion = us-east-1\ns3 =\n"
                    "  max_concurrent_requests = %d\n  multipart_threshold = %d\n"
                    "  multipart_chunksize = %d\n  addressing_style = path\n"
                    % (self.opts.parallel, THRESHOLD, PART))
        self.aws_env = dict(base, AWS_CONFIG_FILE=aws_config,
                            AWS_SHARED_CREDENTIALS_FILE="/dev/null",
                            AWS_ACCESS_KEY_ID="S3RVER", AWS_SECRET_ACCESS_KEY="S3RVER",
                            AWS_EC2_METADATA_DISABLED="true", AWS_PAGER="")
        self.aws_endpoint = storage

    # ---- the clients ----------------------------------------------------

    def _command(self, name, argv, env, expect):
        before = front_stats(self.front)
        start = time.monotonic()
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        peak = benchlib.PeakRSS(proc.pid)
        code, ru = reap(proc)
        wall = time.monotonic() - start
        err = proc.stderr.read().decode("utf-8", "replace")
        proc.stderr.close()
        kib = peak.wait()
        counts = since(self.front, before)
        if code != 0:
            sys.exit("%s exited %d:\n%s" % (name, code, err[-2000:]))
        puts = counts["requests"]
        if puts < expect:
            sys.exit("%s made %d requests for %d files" % (name, puts, expect))
        return Result(name, wall, ru, kib, counts)

    def rclone(self, src, dest):
        p = str(self.opts.parallel)
        return self._command("rclone", [
            "rclone", "copy", src, "s3r:healsync/" + dest, "--transfers", p, "--checkers", p,
            "--s3-upload-concurrency", p, "--s3-chunk-size", "16M", "--s3-upload-cutoff", "64M",
            "--retries", "1", "-q"], self.rclone_env, count_files(src))

    def aws(self, src, dest):
        return self._command("aws-cli", [
            self.opts.aws, "s3", "cp", "--recursive", "--only-show-errors", "--endpoint-url",
            self.aws_endpoint, src, "s3://healsync/" + dest], self.aws_env, count_files(src))

    def healsync_config(self, src, dest):
        self.seq += 1
        run_dir = os.path.join(self.work, "hs-%d" % self.seq)
        os.makedirs(run_dir)
        config = os.path.join(run_dir, "healsync.conf")
        with open(config, "w") as f:
            f.write('state_dir = "%s";\n' % os.path.join(run_dir, "state"))
            f.write('upload: {\n  base_url = "%s";\n  api_key_file = "%s";\n'
                    '  multipart_threshold = "%d";\n  part_size = "%d";\n  parallel = %d;\n};\n'
                    % (self.front.upload_base, self.key_file, THRESHOLD, PART,
                       self.opts.parallel))
            f.write('watch = ({ path = "%s"; remote_prefix = "%s/"; settle = "0s"; });\n'
                    % (src, dest))
            f.write('log: { level = "info"; };\n')
        return run_dir, config

    def base(self, src, dest):
        """--base BIN: another healsync build (say, the main branch's) in the
        same run, for before/after ratios."""
        return self.healsync(src, dest, binary=self.opts.base, name="hs-base")

    def healsync(self, src, dest, strace=None, binary=None, name="healsync"):
        """One daemon from an empty state to every file in src uploaded.
        strace: a file for strace -c's summary of the syncs; the daemon
        then runs under strace and its wall, CPU and RSS are not kept."""
        want = count_files(src)
        run_dir, config = self.healsync_config(src, dest)
        log_path = os.path.join(run_dir, "daemon.log")
        env = dict(os.environ)
        env.pop("JOURNAL_STREAM", None)
        env.pop("NOTIFY_SOCKET", None)
        argv = [binary or hstest.HEALSYNC, "-c", config, "run"]
        if strace:
            argv = ["strace", "-f", "--seccomp-bpf", "-c", "-e", "trace=fsync,fdatasync",
                    "-o", strace] + argv
        before = front_stats(self.front)
        with open(log_path, "wb") as log:
            start = time.monotonic()
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
            peak = benchlib.PeakRSS(proc.pid)
            done = wait_uploaded(log_path, want, proc, timeout=3600)
            wall = time.monotonic() - start
            target = daemon_pid(proc.pid) if strace else proc.pid
            if target:
                os.kill(target, signal.SIGTERM)
            code, ru = reap(proc)
        kib = peak.wait()
        counts = since(self.front, before)
        if not done or code != 0:
            with open(log_path, "rb") as f:
                tail = f.read()[-3000:].decode("utf-8", "replace")
            sys.exit("healsync uploaded %d of %d files (exit %s):\n%s"
                     % (done, want, code, tail))
        if counts["completes"] != want:
            sys.exit("the front completed %d uploads, not %d" % (counts["completes"], want))
        shutil.rmtree(run_dir, ignore_errors=True)
        return Result(name, wall, ru, kib, counts)


def count_files(src):
    return sum(len(files) for _, _, files in os.walk(src))


def wait_uploaded(log_path, want, proc, timeout):
    """Follows the daemon's log until `want` files were uploaded; returns
    how many were (fewer if it exited or the time ran out)."""
    seen, tail = 0, b""
    deadline = time.monotonic() + timeout
    with open(log_path, "rb") as f:
        while seen < want and time.monotonic() < deadline and proc.poll() is None:
            chunk = f.read()
            if not chunk:
                time.sleep(0.01)
                continue
            lines = (tail + chunk).split(b"\n")
            tail = lines.pop()
            seen += sum(1 for line in lines if b": uploaded (" in line)
    return seen


def daemon_pid(strace_pid):
    """The traced healsync, strace's only child."""
    try:
        with open("/proc/%d/task/%d/children" % (strace_pid, strace_pid)) as f:
            kids = f.read().split()
    except OSError:
        return None
    return int(kids[0]) if kids else None


def strace_syncs(path):
    """(fsync + fdatasync calls) from strace -c's summary."""
    calls = 0
    with open(path) as f:
        for line in f:
            cols = line.split()
            if cols and cols[-1] in ("fsync", "fdatasync"):
                calls += int(cols[3])
    return calls


def make_small(root, n):
    os.makedirs(root)
    for i in range(n):
        with open(os.path.join(root, "%04d.pdf" % i), "wb") as f:
            f.write(os.urandom(4096 + i))


def make_large(root, size):
    os.makedirs(root)
    with open(os.path.join(root, "big.bin"), "wb") as f:
        left = size
        while left:
            n = min(left, 8 * MIB)
            f.write(os.urandom(n))
            left -= n


def warm(root):
    for d, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(d, name), "rb") as f:
                while f.read(8 * MIB):
                    pass


def table(title, results, files):
    print(title)
    print("    %-10s %8s %7s %7s %7s %12s %13s %9s %12s %13s" % (
        "client", "wall s", "CPU s", "user", "sys", "CPU ms/file", "peak RSS MiB", "requests",
        "connections", "server CPU s"))
    for r in results:
        print("    %-10s %8.2f %7.2f %7.2f %7.2f %12.3f %13.1f %9d %12d %13.2f" % (
            r.name, r.wall, r.cpu, r.user, r.sys, 1000 * r.cpu / files, r.peak_kib / 1024,
            r.requests, r.connections, r.server_cpu))


def order(run, with_base):
    """The clients' order, rotated each run so none always goes first."""
    names = ["healsync", "rclone", "aws"] + (["base"] if with_base else [])
    k = run % len(names)
    return names[k:] + names[:k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--small-files", type=int, default=1000)
    ap.add_argument("--large-mib", type=int, default=512)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--only", choices=("small", "large"))
    ap.add_argument("--no-strace", action="store_true")
    ap.add_argument("--storage-dir", default="/dev/shm" if os.path.isdir("/dev/shm") else "/var/tmp",
                    help="where the front keeps s3rver's store (default: /dev/shm)")
    ap.add_argument("--one-process", action="store_true",
                    help="serve the API and the storage from one node process")
    ap.add_argument("--no-lean", action="store_true",
                    help="the front signs with getSignedUrl and checks sizes with HeadObject")
    ap.add_argument("--base", metavar="BIN",
                    help="another healsync binary to run beside the others (hs-base)")
    ap.add_argument("--aws", default="/usr/bin/aws" if os.path.exists("/usr/bin/aws") else "aws",
                    help="the aws-cli to run (default: Debian's, /usr/bin/aws)")
    opts = ap.parse_args()
    hstest.HEALSYNC = benchlib.healsync_binary()
    for tool in ("node", "rclone", opts.aws) + (() if opts.no_strace else ("strace",)):
        if not shutil.which(tool):
            sys.exit("bench/peers.py: %s is not installed (apt-get install rclone awscli "
                     "nodejs npm strace; tests/interop/run installs the front's packages)" % tool)
    if not os.path.isdir(os.path.join(benchlib.TOP, "tests", "interop", "node_modules")):
        sys.exit("bench/peers.py: no tests/interop/node_modules (tests/interop/run installs it)")
    work = tempfile.mkdtemp(prefix="hs-peers-", dir="/var/tmp")
    bench = None
    try:
        bench = Bench(opts, work)
        run_all(opts, bench, work)
    finally:
        if bench:
            bench.close()
        shutil.rmtree(work, ignore_errors=True)


def run_all(opts, bench, work):
    small_dir, large_dir = os.path.join(work, "small"), os.path.join(work, "large")
    workloads = []
    if opts.only != "large":
        make_small(small_dir, opts.small_files)
        workloads.append(("small", small_dir, opts.small_files))
    if opts.only != "small":
        make_large(large_dir, opts.large_mib * MIB)
        workloads.append(("large", large_dir, 1))
    ratios = {}
    print("peers: healsync, rclone %s, aws-cli %s; one s3rver behind the front (%s); parallel %d"
          % (tool_version(["rclone", "version"]), tool_version([opts.aws, "--version"]),
             " ".join(Bench.front_args(opts) + ["store in " + opts.storage_dir]), opts.parallel))
    for run in range(opts.runs):
        for kind, src, files in workloads:
            warm(src)
            results = {}
            for name in order(run, bool(opts.base)):
                dest = "%s-%s-%d" % (name, kind, run)
                results[name] = getattr(bench, name)(src, dest)
            rows = [results[n] for n in ("healsync", "rclone", "aws", "base") if n in results]
            what = ("%d small files (4 KiB + i bytes)" % files if kind == "small"
                    else "one %d MiB file, 16 MiB parts" % opts.large_mib)
            table("  run %d, %s:" % (run + 1, what), rows, files)
            hs = results["healsync"]
            fastest = min(results["rclone"], results["aws"], key=lambda r: r.wall)
            wall_ratio = hs.wall / fastest.wall
            goal = 1.2 if kind == "small" else 1.0
            print("    healsync wall / fastest peer (%s): %.2f (goal <= %.1f)"
                  % (fastest.name, wall_ratio, goal))
            ratios.setdefault(kind + " wall", []).append(wall_ratio)
            if kind == "small":
                cpu_ratio = hs.cpu / results["rclone"].cpu
                print("    healsync CPU / rclone CPU: %.2f (goal <= 1)" % cpu_ratio)
                ratios.setdefault("small CPU vs rclone", []).append(cpu_ratio)
            if "base" in results:
                b = results["base"]
                print("    healsync / hs-base: wall %.2f, CPU %.2f"
                      % (hs.wall / b.wall, hs.cpu / b.cpu))
                ratios.setdefault(kind + " wall vs hs-base", []).append(hs.wall / b.wall)
                ratios.setdefault(kind + " CPU vs hs-base", []).append(hs.cpu / b.cpu)
    if not opts.no_strace and opts.only != "large":
        for name, binary in [("healsync", None)] + ([("hs-base", opts.base)] if opts.base else []):
            out = os.path.join(work, "strace.txt")
            bench.healsync(small_dir, "%s-strace" % name, strace=out, binary=binary, name=name)
            syncs = strace_syncs(out)
            print("  %s under strace -f -c, %d small files: %d fsync + fdatasync, "
                  "%.2f per file (goal <= 2)" % (name, opts.small_files, syncs,
                                                 syncs / opts.small_files))
    if opts.runs > 1:
        print("  over %d runs (min / median / max):" % opts.runs)
        for k, v in ratios.items():
            print("    %-24s %.2f / %.2f / %.2f" % (k, min(v), statistics.median(v), max(v)))


def tool_version(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60).stdout
    except OSError:
        return "?"
    words = out.split()
    return words[1] if argv[0] == "rclone" and len(words) > 1 else (
        words[0].split("/", 1)[-1] if words else "?")


if __name__ == "__main__":
    main()
