"""What the mirror tests share: pointing an Env's configuration at the
Records API, running `healsync mirror`, and reading the mirror database
the way an outside program would (its own SQLite connection).

    from hstest import TAP, Env
    import mirrorlib

    with Env(tap, server_args=["--patients", "100"]) as env:
        mirrorlib.configure(env, page_size=50)
        code, out, err = mirrorlib.run(env)
        rows = mirrorlib.rows(env)          # {id: sqlite3.Row}
"""

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import time

import hstest


def configure(env, **settings):
    """Rewrites env's configuration with a mirror section (settings are
    added to, or replace, the defaults below)."""
    mirror = {
        "base_url": env.server.records_base,
        "api_key_file": env.records_key_file,
        "page_size": 100,
        "fetch_details": True,
    }
    mirror.update(settings)
    env.mirror_settings = mirror
    env.write_config({}, mirror=mirror)


def db_path(env):
    return env.mirror_settings.get("database") or os.path.join(env.state, "mirror.db")


def start(env, extra_env=None):
    """`healsync mirror` in the background; stdout and stderr are files."""
    n = env.next_log()
    out = open(os.path.join(env.dir, "mirror-%d.out" % n), "wb")
    err = open(os.path.join(env.dir, "mirror-%d.err" % n), "wb")
    penv = dict(os.environ)
    penv.pop("JOURNAL_STREAM", None)
    penv.update(extra_env or {})
    proc = subprocess.Popen([hstest.HEALSYNC, "-c", env.config_path, "mirror"],
                            stdout=out, stderr=err, env=penv)
    proc.out_path, proc.err_path = out.name, err.name
    out.close()
    err.close()
    return proc


def finish(proc, timeout=300):
    """Waits for a started run; returns (exit code, stdout, stderr)."""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    with open(proc.out_path, "rb") as f:
        out = f.read().decode("utf-8", "replace")
    with open(proc.err_path, "rb") as f:
        err = f.read().decode("utf-8", "replace")
    return proc.returncode, out, err


def run(env, timeout=300):
    return finish(start(env), timeout)


def stop(proc, sig=signal.SIGTERM):
    if proc.poll() is None:
        proc.send_signal(sig)
    return finish(proc)


def connect(env):
    db = sqlite3.connect("file:%s?mode=ro" % db_path(env), uri=True, timeout=30,
                         isolation_level=None)
    db.row_factory = sqlite3.Row
    return db


def rows(env):
    """Every patients row, by id."""
    with connect(env) as db:
        return {r["id"]: r for r in db.execute("SELECT * FROM patients")}


def runs(env):
    with connect(env) as db:
        return [dict(r) for r in db.execute("SELECT * FROM mirror_runs ORDER BY id")]


def staged(env):
    with connect(env) as db:
        return db.execute("SELECT count(*) FROM mirror_staging").fetchone()[0]


def snapshot(db):
    """(live rows, digest of every column of every row), read in one
    statement, so from one consistent snapshot of the database."""
    row = db.execute(
        "SELECT sum(d IS NULL), count(*), group_concat(r, x'1e') FROM "
        "(SELECT deleted_at AS d, id || x'1f' || raw_json || x'1f' || "
        "coalesce(deleted_at, '') || x'1f' || last_seen_at AS r FROM patients ORDER BY id)"
    ).fetchone()
    return (row[0] or 0, row[1], hashlib.sha256((row[2] or "").encode()).hexdigest())


def env_snapshot(env):
    with connect(env) as db:
        return snapshot(db)


def admin_patients(env):
    """The server's data set: (records by id in list order, hidden, removed)."""
    doc = env.server.admin("GET", "/patients")
    return ({p["id"]: p for p in doc["patients"]}, set(doc["hidden"]), set(doc["removed"]))


def compare(tap, env, what):
    """Every record the server holds is a live row equal to it (columns
    and raw_json); every other row is deleted."""
    records, _, _ = admin_patients(env)
    got = rows(env)
    bad = []
    for pid, rec in records.items():
        r = got.get(pid)
        if r is None or r["deleted_at"] is not None:
            bad.append((pid, "missing or deleted"))
            continue
        cols = {k: r[k] for k in ("id", "name", "created_at", "pronouns", "notes")}
        want = {k: rec.get(k) for k in cols}
        consent = None if r["consent"] is None else bool(r["consent"])
        if cols != want or consent != rec.get("consent") or json.loads(r["raw_json"]) != rec:
            bad.append((pid, "differs"))
    extra = [pid for pid, r in got.items() if pid not in records and r["deleted_at"] is None]
    tap.ok(not bad and not extra, "%s: every record equal to the server's, nothing else live"
           % what, "bad %r, extra %r" % (bad[:5], extra[:5]))
    return not bad and not extra


def error_lines(err):
    """Lines at priority err or worse ("<0>".."<3>")."""
    return [line for line in err.splitlines() if line[:3] in ("<0>", "<1>", "<2>", "<3>")]


def wait_requests(env, kind, n, timeout=60):
    """Waits until the server has answered n requests of kind."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = env.server.admin("GET", "/stats")
        if sum(stats["requests"].get(kind, {}).values()) >= n:
            return True
        time.sleep(0.02)
    return False
