#!/usr/bin/env python3
"""Out of inotify watches: the daemon runs in a user namespace whose own
limit is 10 watches, on a tree of 16 directories. It logs the shortage
once, naming the limit and the sysctl to raise, keeps running, and the
directories without a watch fall back to the periodic rescan: every file,
old or new, in any of them is uploaded. Skipped where user namespaces are
not available."""
import json
import os
import signal
import subprocess

import hstest
from hstest import TAP, Env

tap = TAP()

with Env(tap) as env:
    lab = env.path("lab")
    dirs = ["d%02d" % i for i in range(15)]
    for d in dirs:
        os.makedirs(os.path.join(lab, d))
        env.write_file("lab/%s/old.pdf" % d, b"report written before the start\n")
    env.write_config({}, watch=['{ path = "%s"; remote_prefix = "lab/"; recursive = true; '
                                'settle = "0s"; rescan = "2s"; }' % lab])
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "sh", "-c",
                            "echo 10 > /proc/sys/user/max_inotify_watches"],
                           capture_output=True)
    if probe.returncode != 0:
        tap.skip("out of inotify watches (needs user namespaces)")
        tap.finish()

    log_path = os.path.join(env.dir, "daemon-limits.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            ["unshare", "--user", "--map-root-user", "sh", "-c",
             'echo 10 > /proc/sys/user/max_inotify_watches && exec "$0" -c "$1" run',
             hstest.HEALSYNC, env.config_path], stdout=log, stderr=subprocess.STDOUT)

    def output():
        with open(log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    try:
        ok = env.wait_until(lambda: "ready" in output(), 30, "ready")
        tap.ok(ok, "the daemon starts with fewer watches than directories", output()[-2000:])
        warned = [l for l in output().splitlines() if "out of inotify watches" in l]
        tap.ok(len(warned) == 1 and "user.max_inotify_watches = 10" in warned[0] and
               "sysctl user.max_inotify_watches=40" in warned[0],
               "the shortage is logged once, with the limit and the sysctl to raise", warned)
        tap.ok(all(env.wait_until(lambda: env.stored("lab/%s/old.pdf" % d), 30, d)
                   for d in dirs), "every file present at start is uploaded")
        for d in dirs:
            env.write_file("lab/%s/new.pdf" % d, b"report written later in %s\n" % d.encode())
        tap.ok(all(env.wait_until(lambda: env.stored("lab/%s/new.pdf" % d), 30, d)
                   for d in dirs),
               "a new file in every directory is uploaded, watched or rescanned")
        st = json.loads(env.cli("status", "--json")[1])["daemon"] or {}
        tap.ok((st.get("watch") or {}).get("unwatched_directories", 0) > 0,
               "status counts the directories without a watch", st.get("watch"))
        tap.eq(sum("out of inotify watches" in l for l in output().splitlines()), 1,
               "and rescans do not repeat the warning")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    tap.eq(proc.returncode, 0, "the daemon stops cleanly")

tap.finish()
