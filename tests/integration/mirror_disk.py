#!/usr/bin/env python3
"""The mirror near a full disk: with less than 64 MiB free where
mirror.db lives, a run stops before it stages anything more, says so in
one line naming the database, and leaves the mirror as it was; with room
again the next run applies the changes. The database's folder is a
tmpfs, so this needs root (mount); elsewhere it is skipped."""
import os
import subprocess

import mirrorlib
from hstest import TAP, Env

tap = TAP()
with Env(tap, server_args=["--patients", "250"]) as env:
    folder = os.path.join(env.dir, "mirror-fs")
    os.makedirs(folder)

    def mount(*opts):
        return subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(opts), "hs-mirror-fs",
                               folder], capture_output=True).returncode == 0

    if not mount("size=200m", "mode=0700"):
        tap.skip("a nearly full disk (needs root to mount a tmpfs)")
        tap.finish()
    try:
        mirrorlib.configure(env, database=os.path.join(folder, "mirror.db"), page_size=50)
        code, _, err = mirrorlib.run(env)
        tap.ok(code == 0, "with room, the first run succeeds", err[-2000:])
        before = mirrorlib.env_snapshot(env)

        env.server.admin("POST", "/patients", {"add": 20})
        tap.ok(mount("remount", "size=48m"), "the file system shrunk to 48 MiB")
        code, out, err = mirrorlib.run(env)
        lines = [ln for ln in err.splitlines() if "MiB free" in ln]
        tap.ok(code != 0, "with less than 64 MiB free, the run fails", err[-2000:])
        tap.ok(len(lines) == 1 and "mirror.db" in lines[0] and "less than 64 MiB" in lines[0],
               "in one line naming the database and the bound", lines)
        tap.eq(mirrorlib.env_snapshot(env), before, "the mirror is as it was")
        tap.eq(mirrorlib.staged(env), 0, "nothing is left staged")

        tap.ok(mount("remount", "size=200m"), "room again")
        code, out, err = mirrorlib.run(env)
        tap.ok(code == 0, "the next run succeeds", err[-2000:])
        tap.eq(mirrorlib.env_snapshot(env)[0], 270, "and applies the 20 new records")
        mirrorlib.compare(tap, env, "after the disk had room again")
    finally:
        subprocess.run(["umount", "-l", folder], capture_output=True)
tap.finish()
