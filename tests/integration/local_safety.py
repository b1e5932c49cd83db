#!/usr/bin/env python3
"""Only the file the daemon checked is read, deleted or moved (SPEC 4):
- a folder in the middle of a queued file's path swapped for a symlink to
  a folder outside: the file there is neither uploaded nor deleted, for a
  watched file and for one queued by hand;
- a file a writer opens after its upload, before the delete, is not
  deleted; once it is closed, the next start deletes it (a file held open
  before the upload is not read at all: watch_firstscan.py);
- without CAP_LEASE, another user's files cannot be checked for writers:
  logged once, and settle decides;
- move: to another file system (a tmpfs the test mounts, so this part
  needs root): the copy lands whole, without the setuid bit, the original
  goes, and a temporary left by an earlier run is removed; an older
  version already there with the same size and mtime is not taken for the
  copy (the new one lands beside it before the original goes)."""
import os
import subprocess

import hstest
from hstest import TAP, Env, read, write, watch_entry as watch

tap = TAP()





with Env(tap) as env:
    names = lambda: {f["filename"] for f in env.server_files()}
    inbox, outside = env.path("in"), env.path("outside")
    env.write_config({}, watch=[watch(inbox, "delete", "in/")])

    # Queued while the daemon is down, then the folder swapped.
    write(os.path.join(inbox, "lab/report.pdf"), b"secret outside the watch folder")
    env.cli("enqueue", os.path.join(inbox, "lab/report.pdf"))
    hand = env.write_file("byhand/sub/note.txt", b"queued by hand")
    env.cli("enqueue", hand)
    os.makedirs(outside)
    os.rename(os.path.join(inbox, "lab"), os.path.join(outside, "lab"))
    os.symlink(os.path.join(outside, "lab"), os.path.join(inbox, "lab"))
    os.rename(env.path("byhand/sub"), env.path("elsewhere"))
    os.symlink(env.path("elsewhere"), env.path("byhand/sub"))

    with env.daemon() as d:
        tap.ok(env.wait_until(lambda: all(j["state"] not in ("queued", "active")
                                          for j in env.jobs()), 30, "both jobs to end"),
               "both swapped jobs end", d.output())
    tap.ok(not ({"in/lab/report.pdf", "note.txt"} & names()),
           "nothing behind a swapped folder is uploaded", names())
    tap.eq(read(os.path.join(outside, "lab/report.pdf")), b"secret outside the watch folder",
           "nor deleted")
    tap.ok("a symbolic link is on its path" in d.output(), "the log says why", d.output())

    # A writer opens the file after its PUT, while the server takes 5 s to
    # answer the complete: uploaded, not deleted. The delete runs in the
    # turn of the loop that records the job done, so once the job is done
    # the file would already be gone.
    busy = os.path.join(inbox, "busy.pdf")
    write(busy, b"opened for writing after its upload")
    env.server.admin("POST", "/faults", {"kind": "complete", "fault": "delay:5000"})
    received = lambda: any(u.get("filename") == "in/busy.pdf" and u.get("state") == "received"
                           for u in env.server.admin("GET", "/uploads").values())
    with env.daemon() as d:
        tap.ok(env.wait_until(received, 30, "the PUT of busy.pdf"), "busy.pdf is sent",
               d.output())
        with open(busy, "ab") as writer:
            tap.ok(env.wait_until(lambda: "in/busy.pdf" in names() and
                                  any(j["path"] == busy and j["state"] == "done"
                                      for j in env.jobs()), 30, "busy.pdf"),
                   "its upload completes while a writer has it open", d.output())
            tap.ok(os.path.exists(busy), "but it is not deleted while the writer has it open",
                   d.output())
    with env.daemon() as d:
        tap.ok(env.wait_until(lambda: not os.path.exists(busy), 30, "the delete"),
               "once closed, the next start deletes it", d.output())

    # Without CAP_LEASE, another user's files cannot be leased: the writer
    # check says so once, and settle decides alone.
    if os.geteuid() != 0:
        tap.skip("the writer check without CAP_LEASE (needs root to chown)")
    else:
        other = env.path("other")
        os.makedirs(other)
        env.write_config({}, watch=[watch(other, "keep", "o/")])
        wrapper = os.path.join(env.dir, "healsync-nolease")
        with open(wrapper, "w") as f:
            f.write('#!/bin/sh\nexec setpriv --inh-caps=-lease --bounding-set=-lease "%s" "$@"\n'
                    % hstest.HEALSYNC)
        os.chmod(wrapper, 0o755)
        for n in ("one.pdf", "two.pdf"):
            write(os.path.join(other, n), b"owned by someone else: " + n.encode())
            os.chown(os.path.join(other, n), 65534, 65534)
        real, hstest.HEALSYNC = hstest.HEALSYNC, wrapper
        try:
            with env.daemon() as d:
                tap.ok(env.wait_until(lambda: {"o/one.pdf", "o/two.pdf"} <= names(), 30, "o/"),
                       "files of another user are uploaded without CAP_LEASE", d.output())
        finally:
            hstest.HEALSYNC = real
        tap.eq(d.output().count("cannot take a file lease"), 1,
               "that writers cannot be noticed is logged once")

    # move: across file systems.
    sent = env.path("sent")
    os.makedirs(sent)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "hs-sent", sent],
                             capture_output=True).returncode == 0
    if not mounted:
        tap.skip("a move to another file system (needs root to mount a tmpfs)")
        tap.finish()
    try:
        src = env.path("movein")
        env.write_config({}, watch=[watch(src, "move:" + sent, "m/")])
        data = os.urandom(5 * 1024 * 1024 + 17)
        write(os.path.join(src, "scans/big.bin"), data)
        os.chmod(os.path.join(src, "scans/big.bin"), 0o4755)
        write(os.path.join(sent, "scans/.healsync-move-0123456789abcdef"), b"left by a crash")
        # cp -p or rsync -t put an older version there, same size and mtime.
        new, old = os.path.join(src, "lab/r.pdf"), os.path.join(sent, "lab/r.pdf")
        write(new, b"version two, the one uploaded")
        write(old, b"version one, older than that!")
        os.utime(old, ns=(os.stat(new).st_atime_ns, os.stat(new).st_mtime_ns))
        with env.daemon() as d:
            dest = os.path.join(sent, "scans/big.bin")
            tap.ok(env.wait_until(lambda: not os.path.exists(os.path.join(src, "scans/big.bin"))
                                  and os.path.exists(dest), 60, "the move"),
                   "moved to the other file system", d.output())
            tap.ok(env.wait_until(lambda: not os.path.exists(new), 60, "the lookalike move"),
                   "the file beside an older lookalike is moved", d.output())
        tap.ok(read(dest) == data, "the copy is whole")
        tap.eq(read(old), b"version one, older than that!", "the older version stays")
        tap.eq(read(os.path.join(sent, "lab/r.1.pdf")) if os.path.exists(
            os.path.join(sent, "lab/r.1.pdf")) else None, b"version two, the one uploaded",
               "the uploaded version lands beside it, not lost")
        tap.eq(os.stat(dest).st_mode & 0o7777, 0o755, "without the setuid bit")
        tap.eq(sorted(os.listdir(os.path.join(sent, "scans"))), ["big.bin"],
               "no temporary left, the old one removed")
        tap.ok("moved to " + dest in d.output(), "the move is logged", d.output())
        tap.eq(d.proc.returncode, 0, "the daemon stops cleanly")
    finally:
        subprocess.run(["umount", "-l", sent], capture_output=True)

tap.finish()
