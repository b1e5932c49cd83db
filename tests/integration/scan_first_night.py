#!/usr/bin/env python3
"""A safe first night: the per-folder limits (not_before, max_age,
min_size, max_size) on the real daemon and in `healsync scan --json`,
which must agree.

Two folders: "lab" holds an archive of old files, a not_before date three
days back and a size window; "scans" has max_age 7d and rescans every few
seconds. `scan` is run before the daemon ever started (no queue), then the
daemon sends exactly the files scan called "send", under the remote names
scan gave, and its scan lines and `status` count what it skipped and why;
after it, scan tells stored, queued and settling files apart. A broken
value stops check-config, scan and run with one line, and a queue that
cannot be read is one line and no failure."""
import json
import os
import re
import subprocess
import time

from hstest import HEALSYNC, TAP, Env

DAY = 86400
ARCHIVE = 300

tap = TAP()


def put(path, size, mtime, seed=b"x"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write((seed * size)[:size])
    os.utime(path, (mtime, mtime))


def folder(doc, path):
    return next(f for f in doc["folders"] if f["path"] == path)


def nonzero(counts):
    return {k: v for k, v in counts.items() if v}


def scan_json(env):
    rc, out, err = env.cli("scan", "--json")
    return json.loads(out), err


with Env(tap) as env:
    now = time.time()
    lab = os.path.join(env.dir, "lab")
    scans = os.path.join(env.dir, "scans")
    # not_before: local midnight three days ago, written as a date.
    day = time.localtime(now - 3 * DAY)
    not_before = "%04d-%02d-%02d" % (day.tm_year, day.tm_mon, day.tm_mday)
    nb = time.mktime((day.tm_year, day.tm_mon, day.tm_mday, 0, 0, 0, 0, 0, -1))
    recent = now - 600

    for i in range(ARCHIVE):
        put(os.path.join(lab, "archive", "%04d" % (2020 + i % 5), "old%03d.pdf" % i), 2000,
            now - 400 * DAY - i, b"%d" % i)
    send_lab = ["new1.pdf", "new2.pdf", "100% done.pdf", "\u00fcn\u00efcode.pdf",
                "line\nbreak.pdf", "edge.pdf"]
    for i, name in enumerate(send_lab):
        put(os.path.join(lab, name), 2000, nb if name == "edge.pdf" else recent, b"s%d" % i)
    put(os.path.join(lab, "edge-1s.pdf").encode(), 2000, nb - 1, b"e")
    put(os.path.join(lab, "tiny.pdf"), 10, recent)
    put(os.path.join(lab, "big.pdf"), 300 * 1024, recent)
    put(os.path.join(lab, "notes.txt"), 2000, recent)
    put(os.path.join(lab, "draft.tmp"), 2000, recent)
    # A name that is not UTF-8: sent under an escaped remote name.
    put(os.path.join(lab.encode(), b"caf\xe9.pdf"), 2000, recent, b"c")
    for i in range(3):
        put(os.path.join(scans, "s-old%d.pdf" % i), 500, now - 10 * DAY, b"o%d" % i)
    put(os.path.join(scans, "s-new1.pdf"), 500, now - 7200, b"n1")
    put(os.path.join(scans, "s-new2.bin"), 500, now - 7200, b"n2")

    env.write_config({}, watch=[
        '{ path = "%s"; remote_prefix = "lab/"; settle = "200ms"; include = [ "*.pdf" ];\n'
        '  exclude = [ "*.tmp" ]; ignore_case = true; not_before = "%s";\n'
        '  min_size = "100"; max_size = "200KiB"; }' % (lab, not_before),
        '{ path = "%s"; remote_prefix = "scans/"; settle = "200ms"; max_age = "7d";\n'
        '  rescan = "3s"; }' % scans])

    # ---- before the first night: nothing queued, nothing stored ----------
    doc, err = scan_json(env)
    a, b = folder(doc, lab), folder(doc, scans)
    want_a = {"send": 7, "not_before": ARCHIVE + 1, "too_small": 1, "too_large": 1,
              "not_included": 1, "excluded": 1}
    tap.eq(doc["queue"], "none", "scan: no queue yet is no error")
    tap.eq(err, "", "scan: nothing on stderr")
    tap.eq(nonzero(a["counts"]), want_a, "scan: lab's reasons and totals exact")
    tap.eq(a["files"], ARCHIVE + 12, "scan: every file in lab counted")
    tap.eq(nonzero(b["counts"]), {"send": 2, "too_old": 3}, "scan: scans' max_age")
    tap.eq(doc["totals"]["counts"]["send"], 9, "scan: totals across folders")
    tap.eq(doc["totals"]["files"], ARCHIVE + 12 + 5, "scan: total files")
    by_path = {e["path"]: e for e in a["entries"]}
    tap.eq(by_path["edge.pdf"]["reason"], "send", "scan: modified at not_before is sent")
    tap.eq((by_path["edge-1s.pdf"]["reason"], by_path["edge-1s.pdf"]["rule"]),
           ("not_before", "not_before " + not_before), "scan: a second before is not")
    tap.eq(by_path["archive/2020/old000.pdf"]["reason"], "not_before",
           "scan: the archive is not sent")
    tap.eq((by_path["draft.tmp"]["reason"], by_path["draft.tmp"]["rule"]),
           ("excluded", "exclude *.tmp"), "scan: names the exclude pattern")
    tap.eq(by_path["big.pdf"]["rule"], "max_size 200KiB", "scan: names max_size")
    tap.eq(by_path["tiny.pdf"]["rule"], "min_size 100", "scan: names min_size")
    tap.ok("caf\\xe9.pdf" in by_path and "line\\x0abreak.pdf" in by_path,
           "scan: names that are not UTF-8 or hold control characters are escaped",
           sorted(by_path)[:20])
    would_send = sorted(e["remote_name"] for f in doc["folders"] for e in f["entries"]
                        if e["reason"] == "send")
    tap.ok(not os.path.exists(env.state), "scan created no state (no queue.db)")
    rc, human, _ = env.cli("scan")
    tap.ok("scan of %s: 312 files, 7 to send" % lab in human and
           "before not_before  archive/2020/old000.pdf" in human and
           "send               new1.pdf -> lab/new1.pdf" in human,
           "scan: human output lists files and totals", human[-1500:])

    # ---- the night: only the right files reach the server ----------------
    with env.daemon() as d:
        tap.ok(env.wait_jobs(60, done=9), "the daemon sends the 9 files", d.output()[-3000:])
        line_b2 = "scan of %s: 5 files, 0 queued, 2 already stored, 3 too old (max_age 7d)" % scans
        tap.ok(env.wait_until(lambda: line_b2 in d.output(), 30, "a rescan of scans"),
               "a periodic rescan counts what is stored and what is skipped",
               d.output()[-3000:])

        def last_scans():
            doc = json.loads(env.cli("status", "--json")[1])
            return {s["path"]: s for s in doc["last_scans"] or []}

        # status.json is rewritten every few seconds: the rescan shows up.
        env.wait_until(lambda: last_scans().get(scans, {}).get("counts", {}).get("stored") == 2,
                       30, "status to show the rescan")
        scans_st = last_scans()
        rc, status_text, _ = env.cli("status")
        # Written while the daemon runs, with an old date kept (cp -p):
        # the limits decide when it settles, and it is named.
        late = os.path.join(scans, "late-old.pdf")
        put(late, 500, now - 10 * DAY, b"late")
        tap.ok(env.wait_until(lambda: "%s: not sent: too old (max_age 7d)" % late in d.output(),
                              30, "the late file's line"),
               "a file written later outside the limits is named in one line",
               d.output()[-2000:])
        tap.ok(env.wait_until(lambda: ("scan of %s: 6 files, 0 queued, 2 already stored, "
                                       "4 too old (max_age 7d)" % scans) in d.output(),
                              30, "the next rescan"),
               "and the next rescan counts it", d.output()[-2000:])
    out = d.output()
    tap.eq(sorted(f["filename"] for f in env.server_files()), would_send,
           "the server got exactly what scan said, under the names scan gave")
    line_a = ("scan of %s: 312 files, 7 queued, 1 excluded (exclude *.tmp), 1 not included "
              "(include *.pdf), 1 too small (min_size 100), 1 too large (max_size 200KiB), "
              "301 before not_before (not_before %s)" % (lab, not_before))
    tap.ok(line_a in out, "the start-up scan's line counts every reason", out[-3000:])
    tap.ok("scan of %s: 5 files, 2 queued, 3 too old (max_age 7d)" % scans in out,
           "the start-up scan of scans says 3 too old", out[-3000:])
    tap.eq(nonzero(scans_st[lab]["counts"]), want_a, "status --json: lab's last scan")
    tap.eq(scans_st[lab]["rules"]["not_before"], "not_before " + not_before,
           "status --json: the rule behind a count")
    tap.eq(nonzero(scans_st[scans]["counts"]), {"stored": 2, "too_old": 3},
           "status --json: the last rescan of scans")
    tap.ok(re.search(r"scan of %s at \d\d:\d\d: 312 files, 7 queued, .*301 before not_before"
                     % re.escape(lab), status_text), "status shows the counts", status_text)

    # ---- the morning after: stored, queued, settling ---------------------
    put(os.path.join(lab, "waiting.pdf"), 2000, recent, b"w")
    env.cli("enqueue", os.path.join(lab, "waiting.pdf"))
    put(os.path.join(lab, "future.pdf"), 2000, now + 3600, b"f")
    doc, err = scan_json(env)
    a = folder(doc, lab)
    tap.eq(doc["queue"], "read", "scan reads the queue")
    del want_a["send"]
    tap.eq(nonzero(a["counts"]), dict(want_a, stored=7, queued=1, settling=1),
           "scan: already stored, already queued and too new are told apart")
    tap.eq(nonzero(folder(doc, scans)["counts"]), {"stored": 2, "too_old": 4},
           "scan: scans' files stored")
    counts_before = env.counts()
    env.cli("scan")
    tap.eq(env.counts(), counts_before, "scan adds nothing to the queue")

    # ---- a queue that cannot be read: one line, no failure -------------
    with open(os.path.join(env.state, "queue.db"), "rb") as f:
        saved = f.read()
    for suffix in ("-wal", "-shm"):
        if os.path.exists(os.path.join(env.state, "queue.db" + suffix)):
            os.unlink(os.path.join(env.state, "queue.db" + suffix))
    with open(os.path.join(env.state, "queue.db"), "wb") as f:
        f.write(b"not a database at all, " * 100)
    p = subprocess.run([HEALSYNC, "-c", env.config_path, "scan", "--json"],
                       capture_output=True, timeout=120)
    err = p.stderr.decode("utf-8", "replace")
    tap.eq(p.returncode, 0, "scan: an unreadable queue is no failure")
    tap.ok(len(err.splitlines()) == 1 and "cannot read the queue" in err,
           "scan: an unreadable queue is one line", err)
    tap.eq(json.loads(p.stdout)["queue"], "unreadable", "scan --json says the queue is unreadable")

    # ---- a broken value: one line naming file, line and setting --------
    with open(env.config_path) as f:
        text = f.read()
    with open(env.config_path, "w") as f:
        f.write(text.replace('max_age = "7d"', 'max_age = "7 days"'))
    lineno = next(i for i, l in enumerate(text.splitlines(), 1) if 'max_age = "7d"' in l)
    want = ('%s:%d: watch[1].max_age: bad duration "7 days" (want e.g. "2s", "15m", "1h" or a '
            'number of seconds)' % (env.config_path, lineno))
    for cmd in ("check-config", "scan", "run"):
        p = subprocess.run([HEALSYNC, "-c", env.config_path, cmd], capture_output=True,
                           timeout=60)
        err = p.stderr.decode("utf-8", "replace").strip()
        tap.ok(p.returncode == 78 and err == "healsync: " + want,
               "%s: a broken max_age is exit 78 and one line naming it" % cmd,
               "%d %r" % (p.returncode, err))

tap.finish()
