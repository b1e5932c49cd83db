#!/usr/bin/env python3
"""Remote names (SPEC 1.1): a valid UTF-8 name without control characters
is stored byte for byte, "%" included; a name that only looks escaped is
escaped so that it cannot be taken for another. A path of PATH_MAX bytes or
more is said once, in one line, and left alone. A file queued by hand in
a watch folder configured through a symlink (/srv -> /data), named either
way, gets the folder's name and after_upload and is sent once."""
import os

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

# Paths of PATH_MAX (4,096) bytes or more: the kernel opens no such name.
# Each is said once, in one line with the name shortened, and left alone;
# the rest of the folder is uploaded as usual.
with Env(tap) as env:
    inbox = env.path("in")
    os.makedirs(inbox)
    env.write_config({}, watch=['{ path = "%s"; remote_prefix = "in/"; settle = "0s"; '
                                'rescan = "1s"; }' % inbox])
    env.write_file("in/short.txt", b"short\n")
    fd = os.open(inbox, os.O_RDONLY | os.O_DIRECTORY)
    base = len(inbox)
    # Folders down to a path of exactly 4,000 bytes.
    names = []
    while base + 251 <= 3745:
        names.append("d" * 250)
        base += 251
    rest = 4000 - base - 2
    names += ["e" * (rest // 2), "e" * (rest - rest // 2)]
    for name in names:
        os.mkdir(name, dir_fd=fd)
        fd2 = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = fd2
    tap.eq(len(inbox) + sum(len(n) + 1 for n in names), 4000, "a folder 4,000 bytes deep")
    long_file = "f" * 200 + "\nx.txt"
    wfd = os.open(long_file, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
    os.write(wfd, b"too deep\n")
    os.close(wfd)
    os.mkdir("g" * 250, dir_fd=fd)
    os.close(fd)
    with env.daemon() as d:
        tap.ok(env.wait_jobs(done=1), "the short name is uploaded", d.output())
        tap.ok(env.wait_until(lambda: d.output().count(": scanned;") >= 3, 60, "rescans"),
               "the folder is scanned again", d.output()[-2000:])
    log = d.output().splitlines()
    files = [line for line in log if "x.txt is" in line and "not uploaded" in line]
    dirs = [line for line in log if "g/ is" in line and "nothing under it" in line]
    tap.ok(len(files) == 1, "a file whose path is too long is said once", files or log[-20:])
    tap.ok(len(dirs) == 1, "a folder whose path is too long is said once", dirs or log[-20:])
    tap.ok(files and "\\x0a" in files[0] and "..." in files[0] and len(files[0]) < 600,
           "in one line, the name escaped and shortened", files)
    tap.eq(len(env.server_files()), 1, "nothing else reaches the server")

# The watch folder is configured as a symlink to the real folder. A file
# queued by hand under either name is that folder's file: its remote name,
# its after_upload, and the watcher does not send it again.
with Env(tap) as env:
    data, srv = env.path("data"), env.path("srv")
    os.makedirs(data)
    os.symlink(data, srv)
    env.write_config({}, watch=['{ path = "%s"; remote_prefix = "s/"; settle = "0s"; '
                                'rescan = "1s"; after_upload = "delete"; }' % srv])
    env.write_file("data/real.pdf", b"named by the real path\n")
    env.write_file("data/link.pdf", b"named through the symlink\n")
    out = env.cli("enqueue", os.path.join(data, "real.pdf"), os.path.join(srv, "link.pdf"))[1]
    tap.ok("s/real.pdf" in out and "s/link.pdf" in out, "queued under the folder's names", out)
    with env.daemon() as d:
        tap.ok(env.wait_until(lambda: not os.listdir(data), 60, "the deletes"),
               "the folder's after_upload runs for both", d.output()[-3000:])
        tap.ok(env.wait_until(lambda: d.output().count(": scanned;") >= 3, 60, "rescans"),
               "the folder is scanned again", d.output()[-2000:])
    stored = sorted((f["filename"], f["complete_count"]) for f in env.server_files())
    tap.eq(stored, [("s/link.pdf", 1), ("s/real.pdf", 1)], "each is sent once, by its name")
tap.finish()
