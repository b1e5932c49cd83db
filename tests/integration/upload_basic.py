#!/usr/bin/env python3
"""Uploads end to end: small files (presign, PUT, complete) and multipart
files, each stored once with the right SHA-256; identical content skipped;
changed content sent again; files enqueued while the daemon runs."""
import os

from hstest import TAP, Env, write_random

tap = TAP()
with Env(tap) as env:
    small = {"lab/a.pdf": b"%PDF-1.4 small report\n" * 10, "b.hl7": b"MSH|^~\\&|LAB\r" * 50,
             "empty.txt": b"", "Zoë Ångström.pdf": b"non-ASCII name" * 100}
    for name, data in small.items():
        env.write_file(name, data)
    write_random(env.path("big.bin"), 23 * 1024 * 1024 + 12345, seed=1)   # 5 parts
    env.enqueue(*small, "big.bin")
    with env.daemon() as d:
        tap.ok(env.wait_jobs(done=5), "five jobs done", d.output())
        for name in list(small) + ["big.bin"]:
            remote = os.path.basename(name)
            f = env.stored(name, remote)
            tap.ok(f and f["filename"] == remote and f["complete_count"] == 1,
                   "%s stored once with the right SHA-256" % remote, f)
        uploads = env.server.admin("GET", "/uploads")
        big = [u for u in uploads.values() if u.get("filename") == "big.bin"]
        tap.ok(big and big[0].get("kind") == "multipart", "big.bin went multipart", big)

        # The same content again: skipped without contacting the storage.
        before = env.server.admin("GET", "/stats")["bytes_received"]
        env.enqueue("b.hl7")
        tap.ok(env.wait_jobs(skipped=1), "identical content is skipped")
        tap.eq(env.server.admin("GET", "/stats")["bytes_received"], before,
               "a skipped file sends no bytes")

        # New content under the same name: sent again.
        env.write_file("b.hl7", b"MSH|^~\\&|LAB|changed\r" * 50)
        env.enqueue("b.hl7")
        tap.ok(env.wait_jobs(done=6), "changed content is uploaded", d.output())
        tap.ok(env.stored("b.hl7"), "the server holds the new content")

        code, out, _ = env.cli("status")
        tap.ok(code == 0 and "daemon: pid" in out, "status reports the running daemon", out)
    # A strange name: a newline, an escape sequence and a Latin-1 byte.
    odd = "odd\nname \x1b[31m\udce9.pdf"
    odd_path = os.path.join(env.files.encode(), os.fsencode(odd))
    with open(odd_path, "wb") as f:
        f.write(b"strange name")
    env.cli("enqueue", os.fsdecode(odd_path))
    with env.daemon() as d2:
        tap.ok(env.wait_jobs(done=7), "a file with control characters and invalid UTF-8 in its "
               "name is uploaded", d2.output())
    names = [f["filename"] for f in env.server_files()]
    tap.ok("odd%0Aname %1B[31m%E9.pdf" in names, "its remote name keeps every byte, "
           "escaped where not printable UTF-8", names)
    lines = d2.output().splitlines()
    tap.ok(not any(line.startswith("name ") for line in lines) and "\x1b" not in d2.output(),
           "log lines stay single lines without escape sequences", d2.output())
    tap.eq(d.proc.returncode, 0, "SIGTERM stops the daemon with exit code 0")
    log = d.output()
    tap.ok(env.server.upload_base not in log or "X-Sig" not in log, "no presigned query in the log")
    tap.ok("X-Sig=" not in log and "it-upload-key" not in log,
           "neither key nor presigned query string in the log", log)
tap.finish()
