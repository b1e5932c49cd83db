#!/usr/bin/env python3
"""ignore_case: with include = [ "*.pdf" ], REPORT.PDF is sent when the
folder says ignore_case = true, and skipped when it does not."""
import os

from hstest import TAP, Env

tap = TAP()

with Env(tap) as env:
    lab = os.path.join(env.dir, "lab")
    scans = os.path.join(env.dir, "scans")
    for d in (lab, scans):
        os.makedirs(d)
        for name in ("REPORT.PDF", "notes.pdf", "xray.jpg"):
            with open(os.path.join(d, name), "wb") as f:
                f.write(d.encode() + name.encode() + b"\n" * 50)
    env.write_config({}, watch=[
        '{ path = "%s"; remote_prefix = "lab/"; settle = "200ms"; include = [ "*.pdf" ]; '
        'ignore_case = true; }' % lab,
        '{ path = "%s"; remote_prefix = "scans/"; settle = "200ms"; include = [ "*.pdf" ]; }'
        % scans])
    with env.daemon() as d:
        tap.ok(env.wait_jobs(60, done=3), "three files sent", d.output()[-2000:])
    names = sorted(f["filename"] for f in env.server_files())
    tap.eq(names, ["lab/REPORT.PDF", "lab/notes.pdf", "scans/notes.pdf"],
           "REPORT.PDF only where ignore_case is on; xray.jpg nowhere")
    rc, out, err = env.cli("check-config")
    tap.ok("ignore_case = true;" in out and "ignore_case = false;" in out,
           "check-config prints the setting", out)

tap.finish()
