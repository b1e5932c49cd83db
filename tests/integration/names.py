#!/usr/bin/env python3
"""Remote names (SPEC 1.1): a valid UTF-8 name without control characters
is stored byte for byte, "%" included; a name that only looks escaped is
escaped so that it cannot be taken for another."""
from hstest import TAP, Env

tap = TAP()
with Env(tap) as env:
    names = {"percent%41 value.txt": "percent%41 value.txt",
             "100% sure.pdf": "100% sure.pdf",
             "caf%E9.pdf": "caf%25E9.pdf"}
    for i, name in enumerate(names):
        env.write_file(name, b"content %d\n" % i)
    env.enqueue(*names)
    with env.daemon() as d:
        tap.ok(env.wait_jobs(done=len(names)), "every file is uploaded", d.output())
    stored = [f["filename"] for f in env.server_files()]
    for name, remote in names.items():
        tap.ok(env.stored(name, remote), "%r is stored as %r" % (name, remote), stored)
tap.finish()
