#!/usr/bin/env python3
"""A watched folder swapped for a symlink to a folder outside the watch
folder (SPEC 4): the files waiting to settle in it are not looked for
through the symlink, so the files outside get no job and no log line;
the rest of the folder is uploaded as usual.

The files wait deterministically: a writer holds them open, so each
settle finds them still being written and waits again, until the swap."""
import json
import os

from hstest import TAP, Env, write, watch_entry as watch

tap = TAP()
with Env(tap) as env:
    inbox, outside = env.path("in"), env.path("outside")
    names = ("report-17a.pdf", "report-17b.pdf")
    for n in names:
        write(os.path.join(inbox, "sub", n), b"inside, being written")
        write(os.path.join(outside, n), b"outside the watch folder")
    env.write_config({}, watch=[watch(inbox, "keep", "in/")])

    def settling():
        try:
            with open(os.path.join(env.state, "status.json")) as f:
                return json.load(f)["watch"]["settling"]
        except (OSError, ValueError, KeyError):
            return None

    writers = [open(os.path.join(inbox, "sub", n), "ab") for n in names]
    try:
        with env.daemon() as d:
            tap.ok(env.wait_until(lambda: settling() == len(names), 60, "the files to settle"),
                   "the files still being written wait", d.output()[-2000:])
            os.rename(os.path.join(inbox, "sub"), env.path("sub-moved-away"))
            os.symlink(outside, os.path.join(inbox, "sub"))
            write(os.path.join(inbox, "after.pdf"), b"written after the swap")
            tap.ok(env.wait_until(lambda: settling() == 0, 60, "the settle after the swap"),
                   "after the swap nothing waits any more", d.output()[-2000:])
            tap.ok(env.wait_until(lambda: "in/after.pdf" in
                                  {f["filename"] for f in env.server_files()}, 60, "after.pdf"),
                   "the rest of the folder is uploaded", d.output()[-2000:])
    finally:
        for f in writers:
            f.close()
    jobs = [j["path"] for j in env.jobs()]
    tap.eq([p for p in jobs if "report-17" in p], [], "no job for a file behind the symlink")
    lines = [ln for ln in d.output().splitlines() if "report-17" in ln]
    tap.eq(lines, [], "and no log line about one")
    tap.eq(sorted(os.listdir(outside)), sorted(names), "the outside folder is untouched")
    tap.eq(d.proc.returncode, 0, "the daemon stops cleanly")
tap.finish()
