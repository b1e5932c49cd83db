#!/usr/bin/env python3
"""The mirror end to end: 2,345 patients with 20-digit ids and unknown
extra fields mirrored exactly; a second run after additions (at the end,
and at the start, which shifts every page), renames, removals and hidden
records, with the right counts; a reader polling from its own connection
that only ever sees the state before or after a run; the export file; and
no patient name or note in the output."""
import json
import os
import stat
import threading

import mirrorlib
from hstest import TAP, Env, RECORDS_KEY

N = 2345
tap = TAP()
with Env(tap, server_args=["--patients", str(N), "--id-digits", "20", "--extra-fields"]) as env:
    export = os.path.join(env.dir, "out", "patients.jsonl")
    os.makedirs(os.path.dirname(export))
    mirrorlib.configure(env, export=export)
    records, _, _ = mirrorlib.admin_patients(env)
    tap.eq(len(records), N, "the server holds %d records" % N)
    outputs = []

    # ---- the first run -------------------------------------------------
    code, out, err = mirrorlib.run(env)
    outputs.append(err)
    tap.eq(code, 0, "the first run succeeds")
    tap.ok("%d records, %d created, 0 updated, 0 deleted" % (N, N) in out,
           "it reports what it did on stdout", out + err)
    mirrorlib.compare(tap, env, "first run")
    got = mirrorlib.rows(env)
    tap.ok(all(isinstance(pid, str) and len(pid) == 20 for pid in got),
           "ids are stored as 20-character text")
    raw = json.loads(next(iter(got.values()))["raw_json"])
    tap.ok({"blood_type", "tags", "external_ref"} <= set(raw),
           "unknown fields are kept in raw_json", raw)
    tap.ok(all(r["details_fetched_at"] and r["first_seen_at"] == r["last_seen_at"]
               for r in got.values()), "every record was detail-fetched and first seen now")
    db = mirrorlib.db_path(env)
    tap.eq(stat.S_IMODE(os.stat(db).st_mode), 0o600, "mirror.db has mode 0600")
    for suffix in ("-wal", "-shm"):
        if os.path.exists(db + suffix):
            tap.eq(stat.S_IMODE(os.stat(db + suffix).st_mode), 0o600,
                   "mirror.db%s has mode 0600" % suffix)
    runs = mirrorlib.runs(env)
    want = {"id": 1, "status": "ok", "pages": 24, "records": N, "created": N, "updated": 0,
            "deleted": 0, "error": None}
    tap.eq({k: runs[-1][k] for k in want}, want, "mirror_runs holds the run with its counts")
    tap.ok(runs[-1]["started_at"] < runs[-1]["ended_at"] and
           runs[-1]["ended_at"].endswith("Z") and len(runs[-1]["ended_at"]) == 24,
           "run times are RFC 3339 UTC", runs[-1])
    tap.eq(mirrorlib.staged(env), 0, "nothing is left in staging")

    with open(export) as f:
        lines = f.read().splitlines()
    tap.eq(sorted(json.loads(line)["id"] for line in lines), sorted(records),
           "the export has one line per live record")
    tap.ok(all(json.loads(line) == records[json.loads(line)["id"]] for line in lines),
           "each export line is the record's full JSON")
    tap.eq(stat.S_IMODE(os.stat(export).st_mode), 0o600, "the export has mode 0600")
    tap.eq(os.listdir(os.path.dirname(export)), ["patients.jsonl"],
           "no temporary file is left beside the export")
    export_inode = os.stat(export).st_ino

    # ---- changes, then a second run ---------------------------------------
    ids = list(records)
    removed, renamed, hidden = ids[100:103], ids[500:502], ids[1000:1002]
    answer = env.server.admin("POST", "/patients", {
        "remove": removed, "hide": hidden,
        "rename": {renamed[0]: "Renamed Person", renamed[1]: "Zoë Renamed-Twice"},
        "add": {"count": 4, "position": "start"}})
    added = answer["add"]
    added += env.server.admin("POST", "/patients", {"add": 3})["add"]
    # Slow answers stretch the run so the reader below looks often.
    env.server.config(random_faults=[{"fault": "slow:25", "rate": 1.0,
                                      "kinds": ["patients_list", "patient_detail"]}])

    before = mirrorlib.env_snapshot(env)
    seen, stop = set(), threading.Event()
    polls = [0]

    def reader():
        with mirrorlib.connect(env) as rdb:
            while not stop.is_set():
                seen.add(mirrorlib.snapshot(rdb))
                polls[0] += 1

    t = threading.Thread(target=reader)
    t.start()
    code, out, err = mirrorlib.run(env)
    stop.set()
    t.join()
    outputs.append(err)
    env.server.config(random_faults=[])
    after = mirrorlib.env_snapshot(env)
    tap.eq(code, 0, "the second run succeeds")
    tap.ok(before != after and seen <= {before, after},
           "a reader polling during the run saw only the state before or after it",
           "%d states seen in %d polls" % (len(seen), polls[0]))
    tap.ok(polls[0] >= 20 and before in seen, "the reader polled while the run went on",
           "%d polls" % polls[0])
    tap.diag("%d polls during the run" % polls[0])

    runs = mirrorlib.runs(env)
    live = N - 3 + 7
    want = {"id": 2, "status": "ok", "records": live - 2, "created": 7, "updated": 2,
            "deleted": 3}
    tap.eq({k: runs[-1][k] for k in want}, want,
           "mirror_runs counts 7 created, 2 renamed, 3 deleted")
    mirrorlib.compare(tap, env, "second run")
    got = mirrorlib.rows(env)
    tap.ok(all(got[pid]["deleted_at"] == runs[-1]["ended_at"] for pid in removed),
           "removed records are kept, marked deleted at the run's end")
    tap.ok(all(got[pid]["deleted_at"] is None and got[pid]["last_seen_at"] ==
               runs[-1]["ended_at"] for pid in hidden),
           "hidden records (their detail answers 200) stay live and were seen")
    tap.ok(all(got[pid]["first_seen_at"] == runs[0]["ended_at"] for pid in renamed),
           "a renamed record keeps its first sight")
    tap.eq(got[renamed[1]]["name"], "Zoë Renamed-Twice", "a new name is stored as sent")
    tap.ok(all(got[pid]["details_fetched_at"] == runs[-1]["ended_at"] for pid in added),
           "new records are detail-fetched")
    refreshed = [r for r in got.values() if r["details_fetched_at"] == runs[-1]["ended_at"]
                 and r["id"] not in added and r["id"] not in hidden]
    tap.eq(len(refreshed), -(-(live - 2) * 2 // 100),
           "2% of the list, fetched longest ago, is detail-fetched again")

    with open(export) as f:
        lines = f.read().splitlines()
    tap.eq(len(lines), live, "the export has every live record, hidden ones included")
    tap.ok(os.stat(export).st_ino != export_inode, "the export was replaced, not rewritten")

    # ---- what the output never holds ------------------------------------
    records, _, _ = mirrorlib.admin_patients(env)
    text = "\n".join(outputs)
    names = {r["name"] for r in records.values()} | {"Renamed Person"}
    notes = {r["notes"] for r in records.values() if r["notes"]}
    leaked = [s for s in names | notes if s in text]
    tap.ok(not leaked, "no patient name or note appears in the output (%d names, %d notes)"
           % (len(names), len(notes)), leaked[:5])
    tap.ok(not any(pid in text for pid in list(records) + removed),
           "no patient id appears in the output")
    tap.ok(RECORDS_KEY not in text, "the key does not appear in the output")
    tap.ok(all(len(line) < 400 for line in text.splitlines()), "log lines are short")
tap.finish()
