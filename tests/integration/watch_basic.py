#!/usr/bin/env python3
"""The watch pipeline end to end, on real directories with real inotify:
files present at start, nested directories made while running, a slow
writer, moves in, out and within the tree, filters, identical and changed
rewrites, and a watch folder that is deleted and comes back."""
import os
import shutil
import time

from hstest import TAP, Env, write

tap = TAP()


def watch_conf(path, **kw):
    settings = {"path": path, "remote_prefix": "lab/", "recursive": True,
                "include": [], "exclude": ["*.tmp", ".*", "~*"], "settle": "300ms"}
    settings.update(kw)
    out = []
    for k, v in settings.items():
        if isinstance(v, list):
            out.append("%s = [%s];" % (k, ", ".join('"%s"' % x for x in v)))
        elif isinstance(v, bool):
            out.append("%s = %s;" % (k, "true" if v else "false"))
        else:
            out.append('%s = "%s";' % (k, v))
    return "{ " + " ".join(out) + " }"



def names(env):
    return {f["filename"]: f for f in env.server_files()}


def wait_stored(env, remote, data=None, timeout=30):
    import hashlib
    want = hashlib.sha256(data).hexdigest() if data is not None else None

    def held():
        f = names(env).get(remote)
        return f is not None and (want is None or f["sha256"] == want)
    return env.wait_until(held, timeout, "%s on the server" % remote)


with Env(tap) as env:
    root = os.path.join(env.dir, "inbox")
    outside = os.path.join(env.dir, "outside")
    os.makedirs(outside)
    env.write_config({}, watch=[watch_conf(root)])

    # Present before the daemon starts, nested too.
    write(os.path.join(root, "early.pdf"), b"early report\n" * 10)
    write(os.path.join(root, "2026/11/deep.hl7"), b"MSH|deep\r" * 20)
    write(os.path.join(root, "skip.tmp"), b"temporary")
    write(os.path.join(root, ".hidden"), b"hidden")
    write(os.path.join(root, ".git/config"), b"hidden folder")
    write(os.path.join(root, "~lock.pdf"), b"lock file")
    with env.daemon() as d:
        tap.ok(wait_stored(env, "lab/early.pdf"), "a file present at start is uploaded",
               d.output())
        tap.ok(wait_stored(env, "lab/2026/11/deep.hl7"),
               "a nested file present at start is uploaded under its relative path")

        # mkdir -p and write at once: the new directories are watched and
        # listed, so nothing written before their watch existed is missed.
        for i in range(5):
            write(os.path.join(root, "new/a%d/b/c/f%d.txt" % (i, i)), b"fresh %d\n" % i)
        tap.ok(all(wait_stored(env, "lab/new/a%d/b/c/f%d.txt" % (i, i)) for i in range(5)),
               "files written right after mkdir -p are uploaded", d.output())

        # A slow writer holds the file open and appends; only the whole file
        # may be sent.
        slow = os.path.join(root, "slow.bin")
        chunks = [b"chunk %02d " % i * 1000 for i in range(12)]
        with open(slow, "wb") as f:
            for c in chunks:
                f.write(c)
                f.flush()
                time.sleep(0.15)
        whole = b"".join(chunks)
        tap.ok(wait_stored(env, "lab/slow.bin", whole), "a slowly written file is uploaded whole")
        uploads = [u for u in env.server.admin("GET", "/uploads").values()
                   if u.get("filename") == "lab/slow.bin"]
        tap.eq(len(uploads), 1, "and only once, never early")

        # Moved in from outside the tree.
        write(os.path.join(outside, "moved.pdf"), b"moved in\n" * 30)
        os.rename(os.path.join(outside, "moved.pdf"), os.path.join(root, "moved.pdf"))
        tap.ok(wait_stored(env, "lab/moved.pdf"), "a file renamed into the folder is uploaded")

        # A whole directory moved in.
        write(os.path.join(outside, "batch/x/one.txt"), b"one")
        write(os.path.join(outside, "batch/two.txt"), b"two")
        os.rename(os.path.join(outside, "batch"), os.path.join(root, "batch"))
        tap.ok(wait_stored(env, "lab/batch/x/one.txt") and wait_stored(env, "lab/batch/two.txt"),
               "a directory moved in is listed and uploaded")

        # A directory renamed inside the tree keeps its watches: a file
        # written into it afterwards arrives under the new path.
        os.rename(os.path.join(root, "batch"), os.path.join(root, "renamed"))
        write(os.path.join(root, "renamed/x/three.txt"), b"three")
        tap.ok(wait_stored(env, "lab/renamed/x/three.txt"),
               "a directory renamed inside the tree is still watched, under its new path",
               d.output())

        # Moved out: no longer watched.
        os.rename(os.path.join(root, "renamed"), os.path.join(outside, "gone-away"))
        write(os.path.join(outside, "gone-away/x/four.txt"), b"four")

        # Symlinks are never followed, to files or to directories.
        write(os.path.join(outside, "target.pdf"), b"reached through a link")
        write(os.path.join(outside, "linked-dir/inner.pdf"), b"inside a linked folder")
        os.symlink(os.path.join(outside, "target.pdf"), os.path.join(root, "link.pdf"))
        os.symlink(os.path.join(outside, "linked-dir"), os.path.join(root, "link-dir"))

        # Excluded and temporary names are ignored.
        write(os.path.join(root, "later.tmp"), b"tmp")
        write(os.path.join(root, "report.pdf.part"), b"partial download")
        write(os.path.join(root, "marker.pdf"), b"marker")
        tap.ok(wait_stored(env, "lab/marker.pdf"), "a later file is uploaded")
        time.sleep(1)
        held = names(env)
        bad = [n for n in held if n.endswith((".tmp", ".part")) or "/." in n or "~" in n
               or "four.txt" in n or "link" in n]
        tap.eq(bad, [], "excluded, hidden, temporary, moved-out and symlinked files are not "
               "uploaded")

        # The same bytes written again: skipped; new bytes: sent.
        before = env.counts()
        write(os.path.join(root, "early.pdf"), b"early report\n" * 10)
        tap.ok(env.wait_until(lambda: env.counts().get("skipped", 0) >
                              before.get("skipped", 0), 30, "a skip"),
               "an identical rewrite is skipped")
        write(os.path.join(root, "early.pdf"), b"early report, amended\n" * 10)
        tap.ok(wait_stored(env, "lab/early.pdf", b"early report, amended\n" * 10),
               "a changed file is sent again")

        # The folder itself deleted, then back.
        shutil.rmtree(root)
        time.sleep(0.5)
        os.makedirs(root)
        write(os.path.join(root, "after-return.pdf"), b"back again")
        tap.ok(wait_stored(env, "lab/after-return.pdf", timeout=40),
               "a deleted watch folder is picked up again when it comes back", d.output())
        out = d.output()
        tap.ok("inbox: deleted" in out or "inbox: its watch ended" in out,
               "the vanished folder is logged", out[-2000:])
    tap.eq(d.proc.returncode, 0, "the daemon stops cleanly")

    # Files written while it was down are found by the start-up scan; files
    # already uploaded are not sent again.
    write(os.path.join(root, "while-down.pdf"), b"written while stopped")
    completes = sum(f["complete_count"] for f in env.server_files())
    with env.daemon() as d:
        tap.ok(wait_stored(env, "lab/while-down.pdf"), "a file written while stopped is uploaded")
        time.sleep(1)
        tap.eq(sum(f["complete_count"] for f in env.server_files()), completes + 1,
               "nothing already stored is sent again after a restart")
tap.finish()
