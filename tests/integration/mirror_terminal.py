#!/usr/bin/env python3
"""`healsync mirror` run from a terminal speaks to a person: its lines have
no "<6>" priority prefixes (those are for the journal and for systemd),
while the same run with stderr in a file keeps them."""
import os
import pty
import subprocess

import hstest
import mirrorlib
from hstest import TAP, Env

tap = TAP()

with Env(tap) as env:
    mirrorlib.configure(env)
    penv = dict(os.environ)
    penv.pop("JOURNAL_STREAM", None)
    master, slave = pty.openpty()
    proc = subprocess.Popen([hstest.HEALSYNC, "-c", env.config_path, "mirror"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave,
                            env=penv)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the other end is closed
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    rc = proc.wait(300)
    text = b"".join(chunks).decode("utf-8", "replace")
    tap.eq(rc, 0, "the mirror run succeeds")
    tap.ok(text.strip() != "", "it says something on the terminal", text)
    tap.ok("<6>" not in text and "<3>" not in text and "<5>" not in text,
           "with no priority prefixes", text[-1500:])

    proc = mirrorlib.start(env)
    rc, out, err = mirrorlib.finish(proc)
    tap.ok(err.startswith("<"), "into a file the prefixes stay, for systemd", err[:300])

tap.finish()
