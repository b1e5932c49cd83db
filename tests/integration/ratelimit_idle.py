#!/usr/bin/env python3
"""Idle rate limiters are freed: the limiter the mirror's records API
left behind, once its window has ended and nothing is in flight, is
dropped when an upload looks up a limiter of its own, so per-upload
storage hosts cannot pile up limiters without bound."""
import json
import sqlite3
import time

import mirrorlib
from hstest import TAP, Env

tap = TAP()

# A quota nothing reaches: the answers carry rate-limit headers (so each
# host gets a limiter with a window) but nothing is ever held back.
args = ["--rate-limit", "1000/2", "--patients", "20"]
with Env(tap, server_args=args) as env:
    mirror = {
        "base_url": env.server.records_base,
        "api_key_file": env.records_key_file,
        "page_size": 10,
        "fetch_details": True,
        "schedule": "0 2 * * *",
        "jitter": "0s",
    }
    env.mirror_settings = mirror
    env.write_config({"parallel": 1}, mirror=mirror)

    def limiters():
        code, out, _ = env.cli("status", "--json", check=False)
        if code != 0:
            return None
        return (json.loads(out).get("daemon") or {}).get("rate_limits")

    def realms():
        return sorted((r.get("api") or r.get("realm")) for r in limiters() or [])

    def mirrored():
        try:
            return any(r["status"] == "ok" for r in mirrorlib.runs(env))
        except sqlite3.Error:
            return False

    with env.daemon() as d:
        # With no finished run yet, the daemon mirrors soon after start.
        ok = env.wait_until(mirrored, 60, "the first mirror run")
        tap.ok(ok, "the daemon's first mirror run finishes", d.output()[-2000:])
        ok = env.wait_until(lambda: "records" in realms(), 10, "a records limiter")
        tap.ok(ok, "status lists the records API's limiter", limiters())

        # Past the 2 s window and the jitter allowed on it: the records
        # limiter now holds nothing. Waiting for the window to end is not
        # a claim about speed.
        time.sleep(4)

        env.write_file("after-mirror.pdf", b"lab report\n" * 64)
        env.enqueue("after-mirror.pdf")
        ok = env.wait_until(lambda: env.stored("after-mirror.pdf") is not None, 60, "stored")
        tap.ok(ok, "a file is uploaded after the mirror run", d.output()[-2000:])
        ok = env.wait_until(lambda: "upload" in realms(), 10, "an upload limiter")
        tap.ok(ok, "status lists the upload's limiter", limiters())

        # The upload's lookup swept the idle records limiter; the status
        # file is rewritten about once a second.
        ok = env.wait_until(lambda: "records" not in realms(), 15, "the records limiter freed")
        tap.ok(ok, "the idle records limiter is freed (no longer listed)", limiters())
tap.finish()
