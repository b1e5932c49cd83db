#!/usr/bin/env python3
"""metrics_file: the daemon's facts in the Prometheus text format, replaced
atomically, accepted by `promtool check metrics` and served by Debian's
real prometheus-node-exporter through its textfile collector."""
import os
import shutil
import socket
import subprocess
import urllib.request

from hstest import TAP, Env, watch_entry

tap = TAP()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def samples(text):
    """{'name{labels}': 'value'} of the sample lines."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = value
    return out


with Env(tap) as env:
    folder = os.path.join(env.dir, "in")
    textdir = os.path.join(env.dir, "node-exporter")
    os.makedirs(folder)
    os.makedirs(textdir)
    prom = os.path.join(textdir, "healsync.prom")
    env.write_config({}, watch=[watch_entry(folder, "keep", "in/")],
                     extra='metrics_file = "%s";' % prom)
    with env.daemon() as d:
        with open(os.path.join(folder, "a.pdf"), "wb") as f:
            f.write(b"x" * 1234)
        ok = env.wait_until(lambda: samples(read(prom)).get("healsync_stored_files_total") == "1",
                            60, "a stored file in the metrics")
        tap.ok(ok, "the metrics file counts a stored file", read(prom) + d.output()[-2000:])
        m = samples(read(prom))
        tap.eq(m.get("healsync_stored_bytes_total"), "1234", "and its bytes")
        tap.eq(m.get('healsync_jobs{state="done"}'), "1", "jobs by state")
        tap.eq(m.get("healsync_health_state"), "0", "health state 0 (OK)")
        tap.ok(float(m.get("healsync_last_upload_success_timestamp_seconds", "0")) > 1e9,
               "the last upload as a Unix time", m)
        tap.eq(m.get('healsync_api_up{api="upload"}'), "1", "the upload API is up")
        tap.eq(m.get("healsync_up"), "1", "the daemon is up")
        tap.eq(oct(os.stat(prom).st_mode & 0o777), "0o644",
               "readable by the collector's user (0644)")
        tap.eq(sorted(os.listdir(textdir)), ["healsync.prom"],
               "no temporary file is left beside it")
        tap.eq(m.get('healsync_upload_retries_total{cause="server_error"}'), "0",
               "no retries yet, and the series is there at 0")

        # Faults that force retries, one of each kind the server can cause
        # here: a 429 on the presign, an expired URL and a 500 on the PUT.
        env.server.admin("POST", "/faults", [
            {"kind": "presign", "fault": "429", "count": 1},
            {"kind": "put", "fault": "expire_url", "count": 1},
            {"kind": "put", "fault": "500", "count": 1},
        ])
        with open(os.path.join(folder, "b.pdf"), "wb") as f:
            f.write(b"y" * 2345)

        def retried():
            m = samples(read(prom))
            return (m.get("healsync_stored_files_total") == "2" and
                    all(m.get('healsync_upload_retries_total{cause="%s"}' % c, "0") != "0"
                        for c in ("server_error", "rate_limited", "url_expired")))
        ok = env.wait_until(retried, 90, "the retries in the metrics")
        tap.ok(ok, "the file is stored after its retries", read(prom) + d.output()[-2000:])
        m = samples(read(prom))
        for cause in ("server_error", "rate_limited", "url_expired"):
            tap.eq(m.get('healsync_upload_retries_total{cause="%s"}' % cause), "1",
                   "healsync_upload_retries_total counts one retry caused by " + cause)
        for cause in ("no_answer", "stalled", "session_restart", "file_changed"):
            tap.eq(m.get('healsync_upload_retries_total{cause="%s"}' % cause), "0",
                   "and none caused by " + cause)

        if shutil.which("promtool"):
            p = subprocess.run(["promtool", "check", "metrics"], input=read(prom).encode(),
                               capture_output=True, timeout=60)
            tap.ok(p.returncode == 0, "promtool check metrics accepts it",
                   (p.stdout + p.stderr).decode())
        else:
            tap.skip("promtool check metrics (install Debian's prometheus)")

        exporter = shutil.which("prometheus-node-exporter")
        if not exporter:
            tap.skip("node_exporter's textfile collector (install prometheus-node-exporter)")
        else:
            port = free_port()
            ne = subprocess.Popen([exporter, "--web.listen-address=127.0.0.1:%d" % port,
                                   "--collector.disable-defaults", "--collector.textfile",
                                   "--collector.textfile.directory=" + textdir],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                def scrape():
                    try:
                        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                                    timeout=5) as r:
                            return r.read().decode()
                    except OSError:
                        return ""
                tap.ok(env.wait_until(lambda: "healsync_jobs" in scrape(), 30, "a scrape"),
                       "node_exporter serves the series")
                got = samples(scrape())
                tap.eq(got.get('healsync_jobs{state="done"}'), "2",
                       "healsync_jobs{state=\"done\"} through node_exporter")
                tap.eq(got.get('healsync_upload_retries_total{cause="rate_limited"}'), "1",
                       "the retries by cause through node_exporter")
                tap.eq(got.get("node_textfile_scrape_error"), "0",
                       "and the collector reports no error")
            finally:
                ne.terminate()
                ne.wait(30)

        # A dead job: the verdict and its reason are series too.
        env.server.admin("POST", "/faults", {"kind": "presign", "fault": "status:403:forbidden",
                                             "count": 1})
        with open(os.path.join(folder, "dead.pdf"), "wb") as f:
            f.write(b"refused")
        ok = env.wait_until(lambda: samples(read(prom)).get("healsync_health_state") == "2", 60,
                            "CRITICAL in the metrics")
        tap.ok(ok, "health state 2 (CRITICAL) with a dead job", read(prom))
        tap.eq(samples(read(prom)).get('healsync_health_reason{code="jobs_dead",state="CRITICAL"}'),
               "1", "with the reason's code")
    tap.eq(samples(read(prom)).get("healsync_up"), "0", "healsync_up is 0 once it stopped")
tap.finish()
