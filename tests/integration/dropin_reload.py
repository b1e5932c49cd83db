#!/usr/bin/env python3
"""Drop-in configuration: conf.d/*.conf beside the configuration file,
added while the daemon runs. check-config shows the merged result and
which drop-in set what; a reload takes up a second watch folder and an
override from a drop-in; backups and dotfiles beside it are never read;
an error in a drop-in is one line naming its file and line, and a reload
that meets it keeps the running configuration."""
import os
import signal

from hstest import TAP, Env, watch_entry

tap = TAP()
with Env(tap) as env:
    first = os.path.join(env.dir, "first")
    second = os.path.join(env.dir, "second")
    os.makedirs(first)
    os.makedirs(second)
    env.write_config({"max_attempts": 5}, watch=[watch_entry(first, "keep", "one/")])
    dropins = os.path.join(env.dir, "conf.d")

    code, out, err = env.cli("check-config", check=False)
    tap.eq(code, 0, "check-config passes without a conf.d folder")
    tap.ok("drop-ins" not in out, "and names no drop-in", out)

    with env.daemon() as d:
        with open(os.path.join(first, "a.pdf"), "wb") as f:
            f.write(b"in the first folder\n")
        tap.ok(env.wait_until(lambda: any(f["filename"] == "one/a.pdf"
                                          for f in env.server_files()), 60, "one/a.pdf"),
               "the main file's watch folder is uploaded")

        # A drop-in adds a folder and overrides one setting; what an editor
        # or a package manager leaves beside it must not be read.
        os.makedirs(dropins)
        with open(os.path.join(dropins, "50-second.conf"), "w") as f:
            f.write("# the second export folder\n"
                    "upload: { max_attempts = 3; };\n"
                    "watch = ( %s );\n" % watch_entry(second, "keep", "two/"))
        for name in ("50-second.conf~", ".#50-second.conf", "50-second.conf.dpkg-old",
                     "README"):
            with open(os.path.join(dropins, name), "w") as f:
                f.write("upload: { max_attempts = 999; }; this is not a setting\n")

        code, out, err = env.cli("check-config", check=False)
        tap.eq(code, 0, "check-config accepts the drop-in")
        path = os.path.join(dropins, "50-second.conf")
        tap.ok("#   %s\n" % path in out, "it names the drop-in it read", out)
        tap.ok("#   upload.max_attempts  %s:2\n" % path in out
               and "#   watch[1]  %s:3\n" % path in out,
               "and what it set, with file and line", out)
        tap.ok("  max_attempts = 3;\n" in out and 'path = "%s";' % first in out
               and 'path = "%s";' % second in out,
               "the merged result: the override, and both folders", out)
        tap.ok("999" not in out, "backups and dotfiles are not read", out)

        d.proc.send_signal(signal.SIGHUP)
        tap.ok(env.wait_until(lambda: "and 1 drop-in" in d.output(), 30, "the reload line"),
               "the reload reads the drop-in", d.output()[-2000:])
        with open(os.path.join(second, "b.pdf"), "wb") as f:
            f.write(b"in the second folder\n")
        tap.ok(env.wait_until(lambda: any(f["filename"] == "two/b.pdf"
                                          for f in env.server_files()), 60, "two/b.pdf"),
               "the drop-in's watch folder is uploaded after the reload", d.output()[-2000:])

        # An error in a drop-in: one line with its file and line; a reload
        # keeps what runs.
        bad = os.path.join(dropins, "60-bad.conf")
        with open(bad, "w") as f:
            f.write("# too many\n\nupload: {\n  parallel = 0;\n};\n")
        code, out, err = env.cli("check-config", check=False)
        tap.eq(code, 78, "check-config refuses a bad drop-in")
        tap.eq(err.strip(),
               "healsync: %s:4: upload.parallel: 0 is out of range (1 to 64)" % bad,
               "naming its file, line and setting")
        with open(bad, "w") as f:
            f.write("upload: {\n  parallel = = 3;\n};\n")
        code, out, err = env.cli("check-config", check=False)
        tap.ok(code == 78 and err.startswith("healsync: %s:2: " % bad) and err.count("\n") == 1,
               "a syntax error in a drop-in names its file and line", err)
        d.proc.send_signal(signal.SIGHUP)
        tap.ok(env.wait_until(lambda: "reload refused" in d.output(), 30, "the refused reload"),
               "a reload with a bad drop-in is refused", d.output()[-2000:])
        tap.ok(bad in d.output(), "the daemon's line names the drop-in", d.output()[-2000:])
        with open(os.path.join(second, "c.pdf"), "wb") as f:
            f.write(b"still watched\n")
        tap.ok(env.wait_until(lambda: any(f["filename"] == "two/c.pdf"
                                          for f in env.server_files()), 60, "two/c.pdf"),
               "the running configuration, drop-in included, stays in force")

        # Removing the drop-ins and reloading drops the folder again.
        for name in os.listdir(dropins):
            os.unlink(os.path.join(dropins, name))
        d.proc.send_signal(signal.SIGHUP)
        tap.ok(env.wait_until(lambda: ("configuration reloaded from %s" % env.config_path)
                              in d.output().split("reload refused")[-1], 30, "the last reload"),
               "a reload without drop-ins is accepted")
        code, out, err = env.cli("check-config", check=False)
        tap.ok(code == 0 and 'path = "%s";' % second not in out,
               "the folder the drop-in added is gone from the configuration", out)
    tap.eq(d.proc.returncode, 0, "the daemon exits 0")

tap.finish()
