#!/usr/bin/env python3
"""An outage: while nothing works (no answer at all, or only 5xx from a
gateway), queued files keep their attempts (even with max_attempts = 1) and uploads pause, logged once; when
the server answers again every file is stored once. A file whose own
requests fail while the server answers for others still spends attempts."""
import json

from hstest import TAP, Env

tap = TAP()


def outage_lines(out):
    """The uploader's outage lines (the health verdict's change is one of its own)."""
    return [l for l in out.splitlines()
            if "upload API unavailable" in l and "health WARNING" not in l]


with Env(tap, upload={"max_attempts": 1, "parallel": 1}) as env:
    # The next 3 requests are dropped unanswered: three failures in a row of
    # a transfer that never had an answer make an outage.
    env.server.admin("POST", "/faults", {"kind": "*", "fault": "drop", "count": 3})
    names = ["outage-%d.pdf" % i for i in range(3)]
    for i, name in enumerate(names):
        env.write_file(name, b"lab report %d\n" % i * 50)
        env.enqueue(name)
    with env.daemon() as d:
        ok = env.wait_until(lambda: "unavailable" in d.output(), 90, "pause")
        tap.ok(ok, "with no answer at all, uploads pause", d.output()[-2000:])
        summary = lambda: (json.loads(env.cli("status", "--json")[1])["daemon"] or {}).get(
            "summary", "")
        tap.ok(env.wait_until(lambda: "upload API unavailable" in summary(), 10, "status"),
               "status says the upload API is unavailable", summary())
        tap.eq([env.job(n).get("state") for n in names], ["queued"] * 3,
               "no job failed, though max_attempts is 1")
        tap.eq([env.job(n).get("attempts") for n in names], [0] * 3,
               "and none spent an attempt")
        ok = env.wait_until(lambda: all(env.job(n).get("state") == "done" for n in names),
                            180, "all done")
        tap.ok(ok, "once the server answers, every file is uploaded", d.output()[-3000:])
        tap.eq([(env.stored(n) or {}).get("complete_count") for n in names], [1] * 3,
               "each stored once")
        out = d.output()
        # (the health verdict's own change is a line of its own)
        tap.eq(len(outage_lines(out)), 1, "the outage is logged once")
        tap.ok("upload API works again" in out, "and so is its end")

        # Only this file's PUTs go unanswered while the server answers the
        # rest: its attempt is spent, it does not wait forever. (The first
        # PUT reuses the presign's connection, which curl retries once.)
        env.server.admin("POST", "/faults", {"kind": "put", "fault": "drop", "count": 6})
        env.write_file("own-fault.pdf", b"x" * 500)
        env.enqueue("own-fault.pdf")
        ok = env.wait_until(lambda: env.job("own-fault.pdf").get("state") == "dead", 90,
                            "dead")
        tap.ok(ok, "a file whose own requests go unanswered fails its attempts",
               env.job("own-fault.pdf"))

        # A gateway that answers 502 for everything (a proxy whose upstream
        # is down) is an outage too.
        env.server.admin("POST", "/faults", {"kind": "*", "fault": "502", "count": 3})
        env.write_file("gateway.pdf", b"lab report behind a proxy\n" * 20)
        env.enqueue("gateway.pdf")
        ok = env.wait_until(lambda: len(outage_lines(d.output())) == 2, 90,
                            "second pause")
        tap.ok(ok, "only 502s: uploads pause again", d.output()[-2000:])
        ok = env.wait_until(lambda: env.job("gateway.pdf").get("state") == "done", 120,
                            "gateway.pdf")
        tap.ok(ok and env.job("gateway.pdf").get("attempts") == 0,
               "and the file is uploaded afterwards without spending an attempt",
               [env.job("gateway.pdf"), d.output()[-3000:]])
    tap.eq(d.proc.returncode, 0, "daemon exits 0")

tap.finish()
