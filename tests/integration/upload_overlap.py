#!/usr/bin/env python3
"""Field conditions that come together, each against the real daemon:

- a slow Upload API (every presign answer 2 s late) while presigned URLs
  live 1 s, as behind a slow proxy or after a suspend: part URLs are asked
  for no sooner than a slot can use them, and every file is stored without
  spending an attempt (this once crashed the daemon: a transfer ended under
  a caller that went on using it)
- part-URL requests answered 404 upload_not_found (API nodes that do not
  share sessions): a new session after a backoff, bounded, the abandoned
  ones aborted at the server, an attempt spent past the bound
- S3's transient answers (400 RequestTimeout, 307 TemporaryRedirect): the
  file is retried or gets a fresh URL, never dead
- an answer cut inside its headers (404 upload_not_found with no body) is
  no verdict on the file"""

from hstest import TAP, Env, write_random

MIB = 1024 * 1024
tap = TAP()


def clean(tap, out, what):
    bad = [line for line in out.splitlines()
           if "AddressSanitizer" in line or "runtime error" in line or "LeakSanitizer" in line]
    tap.ok(not bad, "%s: no sanitizer report" % what, bad[:5])


def creates(env):
    return sum(env.server.admin("GET", "/stats")["requests"].get("multipart_create", {}).values())


# ---- a slow API and 1 s URLs ------------------------------------------------
with Env(tap, upload={"multipart_threshold": "8MiB", "part_size": "5MiB"}) as env:
    env.server.config(url_ttl=1, random_faults=[
        {"fault": "delay:2000", "rate": 1.0, "kinds": ["presign", "parts_presign"]}])
    names = ["big-%d.bin" % i for i in range(3)] + ["small-%d.pdf" % i for i in range(4)]
    for i, name in enumerate(names):
        write_random(env.path(name), 23 * MIB if name.startswith("big") else 3000 + i, seed=i)
    env.enqueue(*names)
    with env.daemon() as d:
        ok = env.wait_jobs(done=len(names), timeout=400)
        tap.ok(ok, "slow API, 1 s URLs: every file is stored", d.output()[-3000:])
        tap.eq([env.job(n).get("attempts") for n in names], [0] * len(names),
               "and none spent an attempt")
        tap.eq([(env.stored(n) or {}).get("complete_count") for n in names], [1] * len(names),
               "each stored once, whole")
        expired = sum(p.get("status") == 403
                      for u in env.server.admin("GET", "/uploads").values()
                      for p in u.get("puts", []))
        tap.diag("PUTs refused as expired: %d" % expired)
    tap.eq(d.proc.returncode, 0, "the daemon exits 0")
    clean(tap, d.output(), "slow API")

# ---- part URLs answered 404 upload_not_found ---------------------------------
with Env(tap, upload={"multipart_threshold": "8MiB", "part_size": "5MiB",
                      "max_attempts": 20}) as env:
    env.server.config(random_faults=[
        {"fault": "status:404:upload_not_found", "rate": 1.0, "kinds": ["parts_presign"]}])
    write_random(env.path("lb.bin"), 12 * MIB, seed=11)
    env.enqueue("lb.bin")
    with env.daemon() as d:
        ok = env.wait_until(lambda: env.job("lb.bin").get("attempts", 0) >= 1, 180,
                            "an attempt spent")
        job = env.job("lb.bin")
        tap.ok(ok, "past the bound of session restarts the job spends an attempt", job)
        n = creates(env)
        tap.ok(6 <= n <= 7, "404 on part URLs: %d sessions for that attempt, not a loop" % n)
        uploads = env.server.admin("GET", "/uploads").values()
        states = [u["state"] for u in uploads if u["kind"] == "multipart"]
        tap.ok(states and all(s == "aborted" for s in states[:-1]) and
               states.count("aborted") >= len(states) - 1,
               "the abandoned sessions are aborted at the server", states)
        env.server.config(random_faults=[])
        env.cli("retry", str(job["id"]))
        tap.ok(env.wait_jobs(done=1, timeout=120), "once part URLs come, the file is stored",
               d.output()[-2000:])
        tap.eq((env.stored("lb.bin") or {}).get("complete_count"), 1, "once")
    clean(tap, d.output(), "part-URL 404s")

# ---- S3's transient answers ----------------------------------------------------
with Env(tap, upload={"max_attempts": 1}) as env:
    env.server.config(storage_dialect="s3")
    env.server.admin("POST", "/faults", [
        {"kind": "put", "fault": "status:400:request_timeout", "count": 2},
        {"kind": "put", "fault": "redirect:307", "count": 2}])
    env.write_file("s3.pdf", b"a lab report\n" * 100)
    env.enqueue("s3.pdf")
    with env.daemon() as d:
        ok = env.wait_jobs(done=1, timeout=90)
        tap.ok(ok, "S3 RequestTimeout and 307: the file is stored", d.output()[-2000:])
        tap.eq(env.job("s3.pdf").get("attempts"), 0, "with max_attempts 1, no attempt spent")
        tap.ok("RequestTimeout" in d.output() and "TemporaryRedirect" in d.output(),
               "the log names both S3 codes")
    clean(tap, d.output(), "S3 answers")

# ---- an answer cut in its headers ---------------------------------------------
with Env(tap, upload={"max_attempts": 1}) as env:
    env.server.admin("POST", "/faults", [{"kind": "complete", "fault": "empty:404"}])
    env.write_file("cut.pdf", b"cut answer\n" * 10)
    env.enqueue("cut.pdf")
    with env.daemon() as d:
        ok = env.wait_jobs(done=1, timeout=90)
        tap.ok(ok, "a 404 with no body is retried, and the file stored", d.output()[-2000:])
        tap.ok("failed permanently" not in d.output(), "it never made the job dead")
    clean(tap, d.output(), "cut answer")

tap.finish()
