#!/usr/bin/env python3
"""Rate limits and storage on the API's host: storage PUTs whose answers
carry no rate-limit headers draw on no quota (a quota that fits the API
calls alone is enough, with no wait for its reset); PUTs whose answers do
carry them are counted (the quota is then spent, and the next file waits
for the reset instead of drawing a 429)."""
import json

from hstest import TAP, Env

tap = TAP()



# 2 files = 4 API calls (presign, complete) + 2 PUTs; a quota of 4 per hour.
args = ["--rate-limit", "4/3600", "--reset-style", "delta", "--storage-quota", "off"]
with Env(tap, server_args=args, upload={"parallel": 2}) as env:
    names = ["quiet-%d.pdf" % i for i in range(2)]
    for i, name in enumerate(names):
        env.write_file(name, b"lab report %d\n" % i * 40)
    env.enqueue(*names)
    with env.daemon() as d:
        ok = env.wait_until(lambda: all(env.job(n).get("state") == "done" for n in names),
                            60, "both done")
        tap.ok(ok, "PUTs without rate-limit headers draw on no quota: no wait for the reset",
               d.output()[-2000:])
        stats = env.server.admin("GET", "/stats")
        tap.eq(stats["rate_limited"], 0, "no 429")

# 1 file = 3 requests, all counted; a quota of 3 per hour is then spent.
args = ["--rate-limit", "3/3600", "--reset-style", "delta", "--storage-quota", "counted"]
with Env(tap, server_args=args, upload={"parallel": 1}) as env:
    env.write_file("counted-0.pdf", b"lab report\n" * 40)
    env.enqueue("counted-0.pdf")
    with env.daemon() as d:
        ok = env.wait_until(lambda: env.job("counted-0.pdf").get("state") == "done", 60,
                            "first done")
        tap.ok(ok, "a quota that fits one file's three requests stores it", d.output()[-2000:])
        env.write_file("counted-1.pdf", b"lab report 2\n" * 40)
        env.enqueue("counted-1.pdf")
        limits = lambda: (json.loads(env.cli("status", "--json")[1])["daemon"] or {}).get(
            "rate_limits", [])
        ok = env.wait_until(lambda: any(r.get("known") and r.get("remaining") == 0 and
                                        r.get("reset_at", 0) > 0 for r in limits()),
                            10, "quota spent")
        tap.ok(ok, "PUTs with rate-limit headers are counted: the quota is spent", limits())
        requests = env.server.admin("GET", "/stats")["requests_total"]
        waiting = lambda: ((json.loads(env.cli("status", "--json")[1])["daemon"] or {})
                           .get("bandwidth", {}).get("waiting_for_quota"))
        ok = env.wait_until(lambda: waiting() == 1, 10, "a request waiting")
        tap.ok(ok and env.job("counted-1.pdf").get("state") != "done",
               "the next file's first request waits for the reset", waiting())
        tap.eq(env.server.admin("GET", "/stats")["rate_limited"], 0,
               "and draws no 429 (%d requests)" % requests)

tap.finish()
