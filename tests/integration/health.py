#!/usr/bin/env python3
"""The health verdict where a monitor reads it: `healsync check` in the
monitoring-plugins form (one line, exit 0/1/2/3, performance data),
`healsync status` exiting by it, and `status --json` carrying it as fields."""
import json
import os
import re
import time

from hstest import TAP, Env, as_nobody, watch_entry

tap = TAP()


def check(env, *args):
    code, out, err = env.cli("check", *args, check=False)
    return code, out, err


def status(env):
    code, out, _ = env.cli("status", "--json", check=False)
    return code, json.loads(out)



def hm(t):
    return time.strftime("%H:%M", time.localtime(t))


with Env(tap) as env:
    folder = os.path.join(env.dir, "in")
    os.makedirs(folder)
    # Uploads held by the timetable for the hours around now: files wait.
    now = time.time()
    held = "%s,pause %s,off" % (hm(now - 3600), hm(now + 3 * 3600))
    env.write_config({}, watch=[watch_entry(folder, "keep", "in/")])

    code, out, err = check(env)
    tap.eq(code, 2, "check: CRITICAL (2) when no daemon runs")
    tap.ok(out.startswith("HEALSYNC CRITICAL - daemon not running") and out.count("\n") == 1,
           "in one line", out + err)
    code, st = status(env)
    tap.eq(code, 2, "status exits 2 (CRITICAL) too")
    tap.eq(st["health"]["state"], "CRITICAL", "and says so in health.state")
    tap.eq([r["code"] for r in st["health"]["reasons"]], ["not_running"], "with its code")

    with env.daemon() as d:
        tap.ok(env.wait_until(lambda: check(env)[0] == 0, 30, "OK"),
               "check: OK (0) once the daemon runs", check(env)[1] + d.output()[-2000:])
        code, out, _ = check(env)
        tap.ok(re.match(r"^HEALSYNC OK - all well, 0 waiting \| dead=0;;0;0 .*"
                        r"oldest_queued_age=0s;21600;;0 .*upload_api_up=1;;;0;1", out),
               "one line, performance data after |", out)
        with open(os.path.join(folder, "a.pdf"), "wb") as f:
            f.write(b"first")
        tap.ok(env.wait_until(lambda: env.stored("../in/a.pdf", "in/a.pdf"), 30, "a.pdf"),
               "a file is stored")
        code, st = status(env)
        tap.eq(code, 0, "status exits 0 when all is well")
        tap.ok(st["health"]["state"] == "OK" and st["health"]["reasons"] == []
               and st["health"]["since"] > 0, "health: OK, no reasons, since", st["health"])
        tap.ok(env.wait_until(lambda: (status(env)[1].get("last_upload_at") or 0) > 0, 10,
                              "last_upload_at"), "last_upload_at is set", status(env)[1])
        tap.eq(st["apis"]["upload"]["state"], "up", "the upload API is up")
        # The server holds the file a moment before the daemon has its
        # answer and publishes the empty queue.
        tap.ok(env.wait_until(lambda: "oldest_queued_age_s" in status(env)[1] and
                              status(env)[1]["oldest_queued_age_s"] is None, 10, "no oldest"),
               "nothing waits: no oldest age", status(env)[1].get("oldest_queued_age_s"))

        # A dead job: CRITICAL, with the reason and when it began.
        env.server.admin("POST", "/faults", {"kind": "presign", "fault": "status:403:forbidden",
                                             "count": 1})
        with open(os.path.join(folder, "dead.pdf"), "wb") as f:
            f.write(b"refused")
        tap.ok(env.wait_until(lambda: check(env)[0] == 2, 30, "CRITICAL"),
               "check: CRITICAL (2) with a dead job", d.output()[-2000:])
        code, out, _ = check(env)
        tap.ok(out.startswith("HEALSYNC CRITICAL - 1 job dead |") and "dead=1;;0;0" in out,
               "naming it, with dead=1 in the performance data", out)
        code, st = status(env)
        tap.eq(code, 2, "status exits 2")
        r = [r for r in st["health"]["reasons"] if r["code"] == "jobs_dead"]
        tap.ok(r and r[0]["state"] == "CRITICAL" and r[0]["since"] > 0, "reason jobs_dead", st)
        code, out, _ = env.cli("status", check=False)
        tap.ok("health: CRITICAL since " in out and "1 job dead" in out,
               "and status prints it", out)
        env.cli("retry", "--failed")
        tap.ok(env.wait_until(lambda: check(env)[0] == 0, 30, "OK again"),
               "retried and stored: OK again", check(env)[1])
        tap.ok("health OK" in d.output() and "health CRITICAL: 1 job dead" in d.output(),
               "each change of verdict is logged", d.output()[-2000:])

    # Files held back: the age thresholds, and -w/-c overriding them.
    env.write_config({"bandwidth": held}, watch=[watch_entry(folder, "keep", "in/")])
    with env.daemon() as d:
        with open(os.path.join(folder, "held.pdf"), "wb") as f:
            f.write(b"waits")
        tap.ok(env.wait_until(lambda: status(env)[1].get("oldest_queued_age_s") is not None,
                              30, "a waiting file"), "a held file waits", d.output()[-2000:])
        tap.ok(env.wait_until(lambda: check(env, "-w", "1s")[0] == 1, 30, "WARNING"),
               "check -w 1s: WARNING (1) for a file queued over a second ago",
               check(env, "-w", "1s")[1])
        code, out, _ = check(env, "-w", "1s")
        tap.ok(out.startswith("HEALSYNC WARNING - oldest queued file waits ")
               and ";1;;0" in out, "naming the age and the threshold", out)
        tap.ok(env.wait_until(lambda: check(env, "-w", "1s", "-c", "2s")[0] == 2, 30,
                              "CRITICAL"), "check -c 2s: CRITICAL (2)")
        tap.eq(check(env)[0], 0, "the configured 6h is not reached: OK")
        code, out, err = check(env, "-w", "soon")
        tap.ok(code == 3 and out.startswith("HEALSYNC UNKNOWN - -w wants an age"),
               "a bad threshold: UNKNOWN (3)", out + err)
        code, out, err = check(env, "-w", "2h", "-c", "1h")
        tap.ok(code == 3 and out.startswith("HEALSYNC UNKNOWN - "),
               "a critical age under the warning age: UNKNOWN (3)", out)
        code, out, err = check(env, "extra")
        tap.eq(code, 3, "an extra argument: UNKNOWN (3)")

        # A monitoring user: in the group of state_dir, no key, not its owner.
        if os.geteuid() != 0:
            tap.skip("status and check as a member of the service's group (needs root)")
        else:
            os.chmod(env.dir, 0o755)
            os.chmod(env.config_path, 0o644)
            st = os.stat(env.state)
            tap.eq(oct(st.st_mode & 0o777), "0o750", "state_dir is 0750")
            tap.eq(oct(os.stat(os.path.join(env.state, "status.json")).st_mode & 0o777),
                   "0o640", "status.json is 0640")
            tap.eq(oct(os.stat(os.path.join(env.state, "queue.db")).st_mode & 0o777),
                   "0o640", "the queue is the daemon's to write, its group's to read (0640)")
            code, out, err = as_nobody(env, [st.st_gid], "check")
            tap.ok(code == 0 and out.startswith("HEALSYNC OK - "),
                   "check as a group member who cannot read the key", out + err)
            code, out, err = as_nobody(env, [st.st_gid], "status", "--json")
            doc = json.loads(out or "{}")
            tap.ok(code == 0 and doc.get("queue", {}).get("queued") == 1
                   and doc.get("health", {}).get("state") == "OK",
                   "status --json as a group member: the daemon's counts and verdict", out + err)
            before = sorted(os.listdir(env.state))
            code, out, err = as_nobody(env, [st.st_gid], "jobs", "--json", "--state", "queued")
            jobs = json.loads(out or "[]")
            tap.ok(code == 0 and [(j["state"], j["remote_name"]) for j in jobs]
                   == [("queued", "in/held.pdf")],
                   "jobs --json as a group member while the daemon runs", out + err)
            code, out, err = as_nobody(env, [st.st_gid], "jobs", "--state", "queued")
            tap.ok(code == 0 and "in/held.pdf" in out and "queued" in out,
                   "jobs as a group member", out + err)
            tap.eq(sorted(os.listdir(env.state)), before,
                   "reading the queue made no file in state_dir")
            code, out, err = as_nobody(env, [], "jobs")
            tap.ok(code == 1 and "Permission denied" in err and "members of group" in err
                   and "chown" not in err,
                   "jobs as an outsider: names the group that may read, advises no chown", err)
            code, out, err = as_nobody(env, [], "check")
            tap.ok(code == 3 and "Permission denied" in out,
                   "check as an outsider: UNKNOWN, saying why", out + err)
            code, out, err = as_nobody(env, [], "status")
            tap.ok(code != 0 and "chown" not in err, "status as an outsider advises no chown",
                   err)

    # No daemon: the queue has no WAL left, and a group member who cannot
    # write in state_dir still reads it, leaving nothing behind.
    if os.geteuid() == 0:
        st = os.stat(env.state)
        before = sorted(os.listdir(env.state))
        tap.ok("queue.db-wal" not in before, "the stopped daemon left no WAL", before)
        code, out, err = as_nobody(env, [st.st_gid], "jobs", "--json", "--state", "queued")
        jobs = json.loads(out or "[]")
        tap.ok(code == 0 and [j["remote_name"] for j in jobs] == ["in/held.pdf"],
               "jobs --json as a group member with no daemon running", out + err)
        tap.eq(sorted(os.listdir(env.state)), before, "and nothing was made in state_dir")

    # State that cannot be read: UNKNOWN.
    with open(os.path.join(env.state, "status.json"), "w") as f:
        f.write("{ not json")
    code, out, err = check(env)
    tap.ok(code == 3 and out.startswith("HEALSYNC UNKNOWN - cannot read the daemon's state"),
           "an unreadable status file: UNKNOWN (3)", out)
tap.finish()
