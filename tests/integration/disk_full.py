#!/usr/bin/env python3
"""A full disk under state_dir: `healsync enqueue` fails with one line
naming it, the daemon logs the refused file once and keeps running, and
once there is room again the file dropped meanwhile is uploaded: nothing
lost. The state directory is a small tmpfs, so this needs root (mount);
elsewhere it is skipped."""
import os
import subprocess

from hstest import TAP, Env

tap = TAP()


def stored(env, name):
    return env.stored(name) is not None


with Env(tap) as env:
    inbox = env.path("in")  # so that env.stored("in/x") finds the local copy
    os.makedirs(inbox)
    env.write_config({}, watch=['{ path = "%s"; remote_prefix = "in/"; settle = "0s"; }' % inbox])
    os.makedirs(env.state)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "hs-full",
                              env.state], capture_output=True).returncode == 0
    if not mounted:
        tap.skip("a full disk (needs root to mount a tmpfs)")
        tap.finish()
    try:
        with env.daemon() as d:
            tap.ok(env.wait_until(lambda: "ready" in d.output(), 30, "ready"), "daemon ready")
            with open(os.path.join(inbox, "before.pdf"), "wb") as f:
                f.write(b"lab report before\n" * 20)
            tap.ok(env.wait_until(lambda: stored(env, "in/before.pdf"), 30, "before.pdf"),
                   "a file is uploaded while there is room")

            # Fill the file system.
            filler = os.path.join(env.state, "filler")
            with open(filler, "wb") as f:
                try:
                    while True:
                        f.write(b"\0" * 65536)
                        f.flush()
                except OSError:
                    pass
            while True:  # the last crumbs
                try:
                    with open(filler, "ab") as f:
                        f.write(b"\0" * 512)
                except OSError:
                    break

            path = env.write_file("cli.pdf", b"queued by hand\n" * 20)
            code, out, err = env.cli("enqueue", path, check=False)
            lines = err.strip().splitlines()
            tap.diag("enqueue said: %s" % err.strip())
            tap.ok(code == 1 and len(lines) == 1 and "full" in lines[0],
                   "enqueue on a full disk: exit 1, one line saying the disk is full",
                   "exit %s: %r" % (code, err))

            with open(os.path.join(inbox, "during.pdf"), "wb") as f:
                f.write(b"lab report during\n" * 20)
            tap.ok(env.wait_until(lambda: "cannot add 1 file" in d.output(), 30, "refusal"),
                   "the daemon logs the file the queue refused", d.output()[-2000:])
            refused = [l for l in d.output().splitlines() if "cannot add" in l]
            tap.diag("the daemon said: %s" % "\n".join(l for l in d.output().splitlines()
                                                       if "full" in l or "status" in l))
            tap.ok(refused and "full" in refused[0] and "retries" in refused[0],
                   "one line naming the full disk and saying it will retry", refused)
            tap.ok(d.proc.poll() is None, "the daemon keeps running")

            os.unlink(filler)
            tap.ok(env.wait_until(lambda: stored(env, "in/during.pdf"), 90, "during.pdf"),
                   "with room again, the file dropped meanwhile is uploaded",
                   d.output()[-2000:])
            code, _, err = env.cli("enqueue", path, check=False)
            tap.ok(code == 0 and env.wait_until(lambda: stored(env, "cli.pdf"), 30, "cli.pdf"),
                   "and enqueue works again", err)
        tap.eq(d.proc.returncode, 0, "the daemon stops cleanly")
    finally:
        subprocess.run(["umount", "-l", env.state], capture_output=True)

tap.finish()
