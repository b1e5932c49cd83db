#!/usr/bin/env python3
"""The mirror near a full disk: with less than 64 MiB free where
mirror.db lives, a run stops before it stages anything more, says so in
one line naming the database, and leaves the mirror as it was; with room
again the next run applies the changes. Staging is not all: applying a
run (INSERT ... SELECT, its WAL) and the export take several bytes per
byte of answer, so a run that staged within the bound but whose apply or
export would eat into those 64 MiB fails before it applies anything, in
one line naming what it needs and what is free. The database's folder is
a tmpfs, so this needs root (mount); elsewhere it is skipped."""
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

# 20,000 records of list pages stage about 2 MB, which costs about 10 MB
# of database and WAL; applying them writes several times that again.
# On 81 MiB, staging keeps its 64 MiB free, but the apply would not.
with Env(tap, server_args=["--patients", "20000"]) as env:
    folder, other = os.path.join(env.dir, "mirror-fs"), os.path.join(env.dir, "export-fs")
    os.makedirs(folder)
    os.makedirs(other)

    def mount(where, *opts):
        return subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(opts), "hs-mirror-fs",
                               where], capture_output=True).returncode == 0

    if not mount(folder, "size=81m", "mode=0700"):
        tap.skip("a disk too small to apply a run (needs root to mount a tmpfs)")
        tap.finish()
    try:
        export = os.path.join(folder, "patients.jsonl")
        mirrorlib.configure(env, database=os.path.join(folder, "mirror.db"), page_size=100,
                            fetch_details=False, export=export)
        code, out, err = mirrorlib.run(env)
        lines = [ln for ln in err.splitlines() if "needs about" in ln]
        tap.ok(code != 0, "a run whose apply would leave less than 64 MiB free fails",
               err[-2000:])
        tap.ok(len(lines) == 1 and "mirror.db" in lines[0] and "MiB free" in lines[0] and
               "nothing is applied" in lines[0],
               "in one line naming the database and the shortage", lines or err[-2000:])
        tap.diag(lines[0] if lines else "no line")
        tap.eq(mirrorlib.env_snapshot(env)[:2], (0, 0), "nothing is applied")
        tap.eq(mirrorlib.staged(env), 0, "nothing is left staged")
        tap.ok(not os.path.exists(export), "nor exported")

        tap.ok(mount(folder, "remount", "size=200m"), "room again")
        code, out, err = mirrorlib.run(env)
        tap.ok(code == 0, "the next run succeeds", err[-2000:])
        tap.eq(mirrorlib.env_snapshot(env)[0], 20000, "and applies the 20,000 records")
        with open(export, "rb") as f:
            tap.eq(sum(1 for _ in f), 20000, "and exports them")
        before = mirrorlib.env_snapshot(env)

        # The export on a file system of its own, with no room beyond the
        # 64 MiB kept free: the run fails before it applies anything.
        tap.ok(mount(other, "size=64m", "mode=0700"), "an export file system of 64 MiB")
        small = os.path.join(other, "patients.jsonl")
        mirrorlib.configure(env, database=os.path.join(folder, "mirror.db"), page_size=100,
                            fetch_details=False, export=small)
        env.server.admin("POST", "/patients", {"add": 20})
        code, out, err = mirrorlib.run(env)
        lines = [ln for ln in err.splitlines() if "needs about" in ln]
        tap.ok(code != 0, "a run whose export would not fit fails", err[-2000:])
        tap.ok(len(lines) == 1 and "patients.jsonl" in lines[0] and "MiB free" in lines[0],
               "in one line naming the export file and the shortage", lines or err[-2000:])
        tap.diag(lines[0] if lines else "no line")
        tap.eq(mirrorlib.env_snapshot(env), before, "the mirror is as it was")
        tap.ok(not os.listdir(other), "and nothing is written there")
    finally:
        subprocess.run(["umount", "-l", other], capture_output=True)
        subprocess.run(["umount", "-l", folder], capture_output=True)
tap.finish()
