#!/usr/bin/env python3
"""after_upload move: and delete: that the system refuses, as in the field:
the daemon runs as an unprivileged user (setpriv, umask 077 as the unit's
UMask=) and the writing program (here root) makes subfolders the service
user may not write.
- the first refusal in a folder is one journal line naming the folder, the
  user, the access it needs and the fix; a second file there adds none;
- the job stays done, its after-action pending: `jobs` and `status` show
  it, also once the job is purged; nothing is uploaded again;
- fixed and reloaded, the pending actions run at once; fixed without a
  reload, the backoff's retry runs them;
- folders made in the move folder take the modes of those they mirror,
  whatever the umask;
- a move folder that is read-only in the daemon's view of a writable file
  system (a read-only bind mount in a private mount namespace, what
  systemd's ProtectSystem= makes) gets the ReadWritePaths= drop-in, once
  for the whole folder.
Needs root (to chown, setpriv and mount); skipped otherwise."""
import json
import os
import shutil
import signal
import subprocess

import hstest
from hstest import TAP, Env, write, watch_entry as watch

tap = TAP()
UID = GID = 65534  # nobody: a service user that owns nothing the lab makes

if os.geteuid() != 0 or not shutil.which("setpriv") or not shutil.which("unshare"):
    tap.skip("refused after-upload actions (needs root, setpriv and unshare)")
    tap.finish()


def wrapper(env, name, ro_dirs=()):
    """A healsync that runs as UID with umask 077, perhaps with ro_dirs
    mounted read-only in a mount namespace of its own."""
    path = os.path.join(env.dir, name)
    drop = 'umask 077; exec setpriv --reuid=%d --regid=%d --clear-groups "%s" "$@"' % (
        UID, GID, hstest.HEALSYNC)
    with open(path, "w") as f:
        f.write("#!/bin/sh\n")
        if ro_dirs:
            mounts = "".join('mount --bind "%s" "%s" && mount -o remount,bind,ro "%s" && '
                             % (p, p, p) for p in ro_dirs)
            f.write("exec unshare -m --propagation private sh -c '%s%s' healsync \"$@\"\n"
                    % (mounts, drop))
        else:
            f.write(drop + "\n")
    os.chmod(path, 0o755)
    return path


def start(env, healsync):
    real, hstest.HEALSYNC = hstest.HEALSYNC, healsync
    try:
        return env.daemon()
    finally:
        hstest.HEALSYNC = real


def pending(env):
    """{path: after_upload_pending} of the jobs that have one."""
    return {j["path"]: j["after_upload_pending"] for j in env.jobs()
            if j.get("after_upload_pending")}


def lines(text, *words):
    return [ln for ln in text.splitlines() if all(w in ln for w in words)]


with Env(tap) as env:
    names = lambda: [f["filename"] for f in env.server_files()]
    completes = lambda: sum(f["complete_count"] for f in env.server_files())
    os.chmod(env.dir, 0o755)
    os.chmod(env.config_path, 0o644)
    os.chown(env.upload_key_file, UID, GID)
    os.makedirs(env.state, exist_ok=True)
    os.chown(env.state, UID, GID)
    lab, sent, outbox = env.path("lab"), env.path("sent"), env.path("outbox")
    for p in (lab, sent, outbox):
        os.makedirs(p)
        os.chown(p, UID, GID)
    os.chmod(env.files, 0o755)
    env.write_config({}, watch=[watch(lab, "move:" + sent, "lab/"),
                                watch(outbox, "delete", "out/")])
    os.chmod(env.config_path, 0o644)
    # The lab program (root) makes its folders: 0751 and 0755, its own.
    month, ward = os.path.join(lab, "2026-12"), os.path.join(lab, "2026-12/ward3")
    os.makedirs(ward)
    os.chmod(month, 0o751)
    os.chmod(ward, 0o755)
    os.chown(month, UID, GID)  # the month folder is the service's: only ward3 refuses
    drop = os.path.join(outbox, "x")
    os.makedirs(drop)  # a delete: folder of root's, 0755

    user = wrapper(env, "healsync-user")
    with start(env, user) as d:
        write(os.path.join(ward, "scan.pdf"), b"a scan")
        write(os.path.join(ward, "scan2.pdf"), b"another scan")
        write(os.path.join(drop, "r.hl7"), b"a result")
        want = {os.path.join(ward, "scan.pdf"), os.path.join(ward, "scan2.pdf"),
                os.path.join(drop, "r.hl7")}
        tap.ok(env.wait_until(lambda: want <= set(pending(env)), 60, "three pending actions"),
               "uploaded, the refused actions are pending in `jobs`", d.output())
        out = d.output()
        said = lines(out, ward + ":", "user nobody", "may not write", "setfacl", lab)
        tap.eq(len(said), 1, "one line for ward3, with the user, the access and the fix")
        tap.ok(said and "w and x" in said[0] and "owner root" in said[0]
               and "mode 0755" in said[0], "it names the owner, the mode and the access", said)
        tap.eq(len(lines(out, drop + ":", "may not write", "setfacl", outbox)), 1,
               "the delete: folder's refusal is one line too, naming the watch folder")
        tap.ok(lines(out, "after upload:", ward, "tried again later"),
               "the other file there (and every retry) is a debug line")
        tap.ok(all(j["state"] == "done" for j in env.jobs()), "the jobs are done")
        p = pending(env)[os.path.join(ward, "scan.pdf")]
        tap.ok(p["attempts"] >= 1 and "Permission denied" in p["error"], "with its reason", p)
        st = json.loads(env.cli("status", "--json")[1])
        tap.eq(st["after_upload_pending"], 3, "status --json counts them")
        text = env.cli("status")[1]
        tap.ok("3 stored files still to delete or move" in text, "status says so", text)
        text = env.cli("jobs", "--after-pending")[1]
        tap.ok(text.count("after upload pending") == 3, "jobs --after-pending lists them", text)
        tap.ok(os.path.exists(os.path.join(ward, "scan.pdf")), "the files stay in place")
        # The done jobs purged: the actions are kept, listed by path.
        subprocess.run([user, "-c", env.config_path, "purge", "--state", "done"], check=True,
                       capture_output=True, timeout=60)
        left = json.loads(env.cli("jobs", "--after-pending", "--json")[1])
        tap.eq(sorted((j["id"], j["path"]) for j in left), sorted((None, p) for p in want),
               "purged jobs' pending actions are still listed, by path")

        # Fixed, and reloaded: the pending actions run at once.
        stored = completes()
        os.chown(ward, UID, GID)
        os.chown(drop, UID, GID)
        d.proc.send_signal(signal.SIGHUP)
        moved = os.path.join(sent, "2026-12/ward3/scan.pdf")
        tap.ok(env.wait_until(lambda: os.path.exists(moved) and not os.path.exists(
            os.path.join(drop, "r.hl7")) and not pending(env), 30, "the moves after a reload"),
            "fixed and reloaded, the moves and the delete run at once", d.output())
        tap.eq(completes(), stored, "nothing is uploaded again")
        tap.eq(json.loads(env.cli("status", "--json")[1])["after_upload_pending"], 0,
               "status counts none")
        mode = lambda p: os.stat(p).st_mode & 0o7777
        tap.eq((mode(os.path.join(sent, "2026-12")), mode(os.path.join(sent, "2026-12/ward3"))),
               (0o751, 0o755), "folders made in the move folder take their mirrors' modes")

        # Refused again, fixed without a reload: the backoff's retry runs it.
        ward4 = os.path.join(lab, "2026-12/ward4")
        os.makedirs(ward4)
        write(os.path.join(ward4, "late.pdf"), b"late")
        tap.ok(env.wait_until(lambda: os.path.join(ward4, "late.pdf") in pending(env), 60,
                              "ward4 pending"), "a new folder refuses", d.output())
        tap.eq(len(lines(d.output(), ward4 + ":", "may not write")), 1, "and is said once")
        os.chown(ward4, UID, GID)
        tap.ok(env.wait_until(lambda: os.path.exists(os.path.join(sent, "2026-12/ward4/late.pdf")),
                              60, "the retry"), "the retry moves it without a reload",
               d.output())
    tap.eq(d.proc.returncode, 0, "the daemon stops cleanly")

    # The sandbox: sent and outbox read-only in the daemon's view, writable
    # underneath.
    boxed = wrapper(env, "healsync-boxed", ro_dirs=(sent, outbox))
    write(os.path.join(drop, "boxed.hl7"), b"in a read-only view")
    for w in ("ward5", "ward6"):
        write(os.path.join(lab, "2026-12", w, "s.pdf"), b"boxed " + w.encode())
        os.chown(os.path.join(lab, "2026-12", w), UID, GID)
    with start(env, boxed) as d:
        want = {os.path.join(lab, "2026-12", w, "s.pdf") for w in ("ward5", "ward6")}
        want.add(os.path.join(drop, "boxed.hl7"))
        tap.ok(env.wait_until(lambda: want <= set(pending(env)), 60, "boxed pending"),
               "moves into and deletes in a read-only view stay pending", d.output())
        said = lines(d.output(), "read-only in the service's view", "systemctl edit healsync",
                     "ReadWritePaths=%s\"" % sent)
        tap.eq(len(said), 1, "one line for the move folder, with the ReadWritePaths= drop-in")
        said = lines(d.output(), "read-only in the service's view", "ReadWritePaths=%s\"" % outbox)
        tap.eq(len(said), 1, "and one for the delete: watch folder")
    # Out of the sandbox, the next start finishes them.
    with start(env, user) as d:
        tap.ok(env.wait_until(lambda: not pending(env), 60, "no more pending"),
               "outside the sandbox the pending moves finish", d.output())
        tap.ok(os.path.exists(os.path.join(sent, "2026-12/ward6/s.pdf")), "ward6's file moved")
        tap.ok(not os.path.exists(os.path.join(drop, "boxed.hl7")), "boxed.hl7 deleted")

tap.finish()
