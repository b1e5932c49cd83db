#!/usr/bin/env python3
"""state_dir is checked before use: a folder others (or its group) may
write, or one owned by another user than the daemon's, is refused with one
line naming it (root's commands may use the service user's folder);
the status file is never written through a link planted in state_dir."""
import os

from hstest import TAP, Env

tap = TAP()
with Env(tap) as env:
    os.makedirs(env.state, mode=0o700)

    os.chmod(env.state, 0o777)
    code, _, err = env.cli("jobs", check=False)
    tap.ok(code != 0 and "state_dir %s: is writable by others (mode 0777)" % env.state in err
           and err.count("\n") == 1, "a world-writable state_dir is refused in one line", err)
    os.chmod(env.state, 0o770)
    with env.daemon() as d:
        d.proc.wait(60)
    tap.ok(d.proc.returncode != 0 and "is writable by its group (mode 0770)" in d.output(),
           "the daemon refuses a group-writable state_dir", d.output())
    os.chmod(env.state, 0o700)

    if os.geteuid() == 0:
        # The daemon (the command-line tools run by root act as the owner
        # of state_dir instead, see commands.sh).
        os.chown(env.state, 65534, 65534)
        with env.daemon() as d:
            d.proc.wait(60)
        tap.ok(d.proc.returncode != 0 and "is owned by uid 65534, not by uid 0" in d.output(),
               "the daemon refuses a state_dir owned by another user", d.output())
        # An administrator (root) may still look at the service's queue: the
        # commands act as the folder's owner, who must reach it.
        os.chmod(env.dir, 0o711)
        code, _, err = env.cli("jobs", check=False)
        tap.ok(code == 0, "root's commands may use the service user's state_dir", err)
        os.chmod(env.dir, 0o700)
        os.chown(env.state, 0, 0)
    else:
        tap.skip("a state_dir owned by another user (needs root to chown)")
        tap.skip("root's commands and another user's state_dir (needs root)")

    # A link planted where the status file's temporary copy is made.
    victim = os.path.join(env.dir, "victim.txt")
    with open(victim, "w") as f:
        f.write("precious\n")
    os.symlink(victim, os.path.join(env.state, ".status.json.tmp"))
    status = os.path.join(env.state, "status.json")
    with env.daemon() as d:
        tap.ok(env.wait_until(lambda: os.path.exists(status), what="status.json"),
               "the daemon writes its status file", d.output())
    with open(victim) as f:
        tap.eq(f.read(), "precious\n", "the link's target is left alone")
    tap.ok(os.path.isfile(status) and not os.path.islink(status),
           "status.json is a file of its own")
tap.finish()
