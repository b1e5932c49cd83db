#!/usr/bin/env python3
"""Group adm reads the health and the queue through the ACL the packages
set with packaging/systemd/healsync.tmpfiles (applied here by the real
systemd-tmpfiles, under --root): status, check and jobs work for a member
of adm, the files the daemon keeps 0600 stay out of its reach, and an
outsider reads nothing."""
import json
import os
import pwd
import shutil
import subprocess
import tempfile

from hstest import HEALSYNC, TAP, Env, as_nobody, watch_entry

tap = TAP()
srcdir = os.environ.get("HS_SRCDIR", os.environ.get("srcdir", "."))
tmpfiles = os.path.join(srcdir, "packaging", "systemd", "healsync.tmpfiles")



def readable_by_nobody(path, groups):
    """Whether nobody with these groups can open path for reading."""
    nobody = pwd.getpwnam("nobody")

    def drop():
        os.setgroups(groups)
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)
    return subprocess.run(["cat", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          preexec_fn=drop, timeout=30).returncode == 0


def acl_lines():
    """The ACL lines of the shipped tmpfiles.d file (the d line wants the
    user healsync, which a test machine has not)."""
    with open(tmpfiles) as f:
        return [line for line in f if line.startswith("a")]


if os.geteuid() != 0:
    tap.skip("adm reads the state through the ACL (needs root)")
elif not shutil.which("systemd-tmpfiles"):
    tap.skip("adm reads the state through the ACL (needs systemd-tmpfiles)")
else:
    try:
        adm = __import__("grp").getgrnam("adm").gr_gid
    except KeyError:
        adm = 4  # Debian's and Fedora's number for it
    with Env(tap) as env:
        os.chmod(env.dir, 0o755)
        folder = os.path.join(env.dir, "in")
        os.makedirs(folder)
        root = os.path.join(env.dir, "root")
        env.state = os.path.join(root, "var", "lib", "healsync")
        os.makedirs(env.state, mode=0o755)
        os.chmod(env.state, 0o750)  # StateDirectoryMode=
        with tempfile.NamedTemporaryFile("w", suffix=".conf") as conf:
            conf.writelines(acl_lines())
            conf.flush()
            p = subprocess.run(["systemd-tmpfiles", "--create", "--root=" + root, conf.name],
                               capture_output=True, timeout=60)
        tap.ok(p.returncode == 0 and acl_lines(), "systemd-tmpfiles applies the shipped ACL",
               p.stderr.decode())
        has_acl = "system.posix_acl_default" in os.listxattr(env.state)
        tap.ok(has_acl, "state_dir carries the default ACL for new files", os.listxattr(env.state))
        tap.eq(oct(os.stat(env.state).st_mode & 0o777), "0o750",
               "its mode stays 0750: group and others gain nothing")

        env.write_config({}, watch=[watch_entry(folder, "keep", "in/")])
        os.chmod(env.config_path, 0o644)
        with env.daemon() as d:
            with open(os.path.join(folder, "a.pdf"), "wb") as f:
                f.write(b"for adm")
            ok = env.wait_until(
                lambda: json.loads(env.cli("status", "--json", check=False)[1] or "{}")
                .get("queue", {}).get("done") == 1, 60, "a stored file")
            tap.ok(ok, "a file is stored", d.output()[-2000:])

            code, out, err = as_nobody(env, [adm], "check")
            tap.ok(code == 0 and out.startswith("HEALSYNC OK - "), "check as a member of adm",
                   out + err)
            # status reads what the daemon publishes, which follows the
            # queue within its refresh.
            def adm_status():
                code, out, err = as_nobody(env, [adm], "status", "--json")
                doc = json.loads(out or "{}")
                return (code == 0 and doc.get("health", {}).get("state") == "OK"
                        and doc.get("queue", {}).get("done") == 1)
            tap.ok(env.wait_until(adm_status, 30, "adm's status"),
                   "status --json as a member of adm", as_nobody(env, [adm], "status", "--json"))
            code, out, err = as_nobody(env, [adm], "jobs", "--json")
            jobs = json.loads(out or "[]")
            tap.ok(code == 0 and [(j["state"], j["remote_name"]) for j in jobs]
                   == [("done", "in/a.pdf")], "jobs --json as a member of adm", out + err)

            private = [n for n in os.listdir(env.state)
                       if not os.stat(os.path.join(env.state, n)).st_mode & 0o040]
            tap.ok(private, "the daemon keeps some files 0600 (its lock)", os.listdir(env.state))
            tap.ok(not any(readable_by_nobody(os.path.join(env.state, n), [adm])
                           for n in private),
                   "adm cannot read the daemon's 0600 files", private)
            code, out, err = as_nobody(env, [], "status")
            tap.ok(code != 0 and "chown" not in err, "an outsider reads nothing, told no chown",
                   out + err)
            code, out, err = as_nobody(env, [], "jobs")
            tap.ok(code == 1 and "chown" not in err, "nor lists jobs", err)

        code, out, err = as_nobody(env, [adm], "jobs", "--json")
        jobs = json.loads(out or "[]")
        tap.ok(code == 0 and len(jobs) == 1, "jobs as a member of adm with no daemon running",
               out + err)
        code, out, err = as_nobody(env, [adm], "check")
        tap.ok(code == 2 and out.startswith("HEALSYNC CRITICAL - daemon not running"),
               "check as a member of adm: CRITICAL once the daemon stopped", out + err)
tap.finish()
