#!/usr/bin/env python3
"""after_upload: keep, delete, move:DIR (relative path kept, collisions
numbered), a file that changed after its upload left alone, a crash
between the complete and the move finished by the next start, and one in
the middle of the action (the file under its private name) too."""
import os

from hstest import TAP, Env, read, write, watch_entry as watch

tap = TAP()





with Env(tap) as env:
    keep, dele, move = (os.path.join(env.dir, n) for n in ("keep", "delete", "move"))
    sent = os.path.join(env.dir, "sent")
    for p in (keep, dele, move):
        os.makedirs(p)
    env.write_config({}, watch=[watch(keep, "keep", "k/"), watch(dele, "delete", "d/"),
                                watch(move, "move:" + sent, "m/")])
    names = lambda: {f["filename"] for f in env.server_files()}
    with env.daemon() as d:
        write(os.path.join(keep, "a.pdf"), b"kept")
        write(os.path.join(dele, "x/b.pdf"), b"deleted after upload")
        write(os.path.join(move, "2026/c.pdf"), b"moved after upload")
        write(os.path.join(sent, "2026/c.pdf"), b"already here")   # a collision
        tap.ok(env.wait_until(lambda: {"k/a.pdf", "d/x/b.pdf", "m/2026/c.pdf"} <= names(), 30,
                              "three uploads"), "all three folders upload", d.output())
        tap.ok(env.wait_until(lambda: not os.path.exists(os.path.join(dele, "x/b.pdf")), 10,
                              "the delete"), "delete: the file is removed after the upload")
        tap.ok(os.path.exists(os.path.join(keep, "a.pdf")), "keep: the file stays")
        tap.ok(env.wait_until(lambda: os.path.exists(os.path.join(sent, "2026/c.1.pdf")), 10,
                              "the move"), "move: the file lands under its relative path",
               d.output())
        tap.eq(read(os.path.join(sent, "2026/c.pdf")), b"already here",
               "move: an existing file is never overwritten")
        tap.eq(read(os.path.join(sent, "2026/c.1.pdf")), b"moved after upload",
               "move: the collision gets a numbered name")
        tap.ok(not os.path.exists(os.path.join(move, "2026/c.pdf")), "move: the original is gone")
    tap.eq(d.proc.returncode, 0, "the daemon stops cleanly")

    # A crash between the complete and the action leaves the file in place
    # with the ledger saying it is stored. Reproduce that state exactly: the
    # file uploaded by a folder that keeps files, then the folder switched to
    # move. The next start must finish the move without uploading again.
    crash = os.path.join(env.dir, "crash")
    os.makedirs(crash)
    env.write_config({}, watch=[watch(crash, "keep", "c/")])
    with env.daemon() as d:
        write(os.path.join(crash, "r.pdf"), b"stored, then the power failed")
        tap.ok(env.wait_until(lambda: "c/r.pdf" in names(), 30, "upload"), "uploaded first")
    completes = sum(f["complete_count"] for f in env.server_files())
    env.write_config({}, watch=[watch(crash, "move:" + sent, "c/")])
    with env.daemon() as d:
        tap.ok(env.wait_until(lambda: os.path.exists(os.path.join(sent, "r.pdf")), 30,
                              "the move after restart"),
               "the start-up scan finishes an interrupted move", d.output())
        tap.eq(sum(f["complete_count"] for f in env.server_files()), completes,
               "without uploading the file again")

    # Changed after its upload, before the action: never deleted.
    env.write_config({}, watch=[watch(dele, "delete", "d/")])
    with env.daemon() as d:
        write(os.path.join(dele, "y.pdf"), b"version one")
        tap.ok(env.wait_until(lambda: "d/y.pdf" in names() and
                              not os.path.exists(os.path.join(dele, "y.pdf")), 30, "delete"),
               "delete works after a restart too")
        # Now a file whose content moves on while it is sent: the version
        # that ends up deleted is only ever one the server holds.
        big = os.path.join(dele, "z.bin")
        write(big, os.urandom(3 * 1024 * 1024))
        write(big, os.urandom(3 * 1024 * 1024))
        tap.ok(env.wait_until(lambda: not os.path.exists(big), 30, "z.bin deleted"),
               "a rewritten file is deleted once its last content is stored", d.output())
        held = [f for f in env.server_files() if f["filename"] == "d/z.bin"]
        tap.ok(held and held[-1]["size_bytes"] == 3 * 1024 * 1024, "the server holds it", held)

    # A power cut between the private rename of a delete or move and its
    # end leaves the file under ".healsync-del-*". Reproduce that: stored
    # from a folder that keeps files, then renamed as the action would, and
    # the folder switched to move. Beside it, a private name whose content
    # the server never got (it may be the only copy of a newer version).
    cut, sent2 = os.path.join(env.dir, "cut"), os.path.join(env.dir, "sent2")
    os.makedirs(os.path.join(cut, "sub"))
    env.write_config({}, watch=[watch(cut, "keep", "p/")])
    with env.daemon() as d:
        write(os.path.join(cut, "sub/p.pdf"), b"stored, then cut off mid-action")
        tap.ok(env.wait_until(lambda: "p/sub/p.pdf" in names(), 30, "upload"), "uploaded first")
    completes = sum(f["complete_count"] for f in env.server_files())
    os.rename(os.path.join(cut, "sub/p.pdf"), os.path.join(cut, "sub/.healsync-del-t3st01"))
    write(os.path.join(cut, "sub/.healsync-del-zz9999"), b"a version never sent")
    env.write_config({}, watch=[watch(cut, "move:" + sent2, "p/")])
    with env.daemon() as d:
        tap.ok(env.wait_until(lambda: os.path.exists(os.path.join(sent2, "sub/p.pdf")), 30,
                              "the move after the cut"),
               "a private name holding the stored version is put back and moved",
               d.output()[-2000:])
        tap.ok(not os.path.exists(os.path.join(cut, "sub/.healsync-del-t3st01")) and
               not os.path.exists(os.path.join(cut, "sub/p.pdf")), "nothing is left behind")
        tap.eq(sum(f["complete_count"] for f in env.server_files()), completes,
               "and it is not uploaded again")
        tap.eq(read(os.path.join(cut, "sub/.healsync-del-zz9999")), b"a version never sent",
               "a private name the ledger does not know is kept")
        warned = [ln for ln in d.output().splitlines() if ".healsync-del-zz9999" in ln]
        tap.ok(len(warned) == 1 and "kept" in warned[0], "and named once", warned)
tap.finish()
