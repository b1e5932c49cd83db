#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "queue/queue.h"
#include "queue/sqldb.h"

/*
 * The design is described in docs/queue.md. In short: one row per job in
 * `jobs`, its state as readable text, and `due_at` saying when a waiting job
 * (queued, failed or active) next needs attention, so that claiming is one
 * indexed UPDATE. `uploaded` is the ledger of what the server holds, `parts`
 * the finished parts of open multipart sessions.
 */

#define SCHEMA_VERSION 6
/* "hsQ1": marks the file as a healsync queue for file(1) and for us. */
#define APPLICATION_ID 0x68735131
/* A job that still needs attention. Written as ORs, not as an IN list: SQLite
 * evaluates an IN list of more than two constants by building an ephemeral
 * table (a b-tree with a page cache of its own) at every execution, and this
 * test is in the CHECKs, the partial indexes and the triggers that every
 * change of a job's state runs: 15 ephemeral tables for each claim and
 * each completion, a quarter of the daemon's instructions per small file
 * (callgrind: 625 million for 300 files before, 476 million after).
 * The partial indexes' WHERE is this same text, which the queries repeat so
 * that the planner sees they imply it. */
#define WAITING "(state = 'queued' OR state = 'failed' OR state = 'active')"
/* The same of table (or alias) t, a string literal. */
#define WAITING_OF(t) "(" t ".state = 'queued' OR " t ".state = 'failed' OR " t ".state = 'active')"
/* What schema v1 wrote; kept as released. */
#define WAITING_V1 "state IN ('queued','failed','active')"
#define HELD	   "id = ?1 AND state = 'active' AND lease_token = ?2"
#define AFTER_COLUMNS                                                                              \
	"path, watch_root, job_id, size, mtime_ns, inode, attempts, due_at, last_error, since"
#define JOB_COLUMNS                                                                                \
	"id, path, watch_root, remote_name, size, mtime_ns, inode, sha256, state, attempts, "      \
	"due_at, lease_token, last_error, created_at, updated_at, upload_id, part_size, "          \
	"part_count"

/* Schema v1: jobs and the ledger. Kept exactly as first released: a database
 * made by it is migrated by the steps after it. */
static const char schema_v1[] =
    "CREATE TABLE jobs (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  path TEXT NOT NULL CHECK (path <> ''),\n"
    "  watch_root TEXT NOT NULL DEFAULT '',\n"
    "  remote_name TEXT NOT NULL CHECK (remote_name <> ''),\n"
    "  size INTEGER NOT NULL CHECK (size >= 0),\n"
    "  mtime_ns INTEGER NOT NULL,\n"
    "  inode INTEGER NOT NULL,\n"
    "  sha256 TEXT CHECK (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*'),\n"
    "  state TEXT NOT NULL CHECK (state IN\n"
    "    ('queued', 'active', 'done', 'failed', 'dead', 'skipped', 'gone')),\n"
    "  attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),\n"
    "  due_at INTEGER,\n"
    "  lease_token INTEGER NOT NULL DEFAULT 0,\n"
    "  last_error TEXT,\n"
    "  created_at INTEGER NOT NULL,\n"
    "  updated_at INTEGER NOT NULL,\n"
    "  CHECK ((due_at IS NOT NULL) = (" WAITING_V1 ")),\n"
    "  CHECK (state <> 'done' OR sha256 IS NOT NULL)\n"
    ");\n"
    "CREATE INDEX jobs_due ON jobs (due_at) WHERE " WAITING_V1 ";\n"
    "CREATE UNIQUE INDEX jobs_waiting_path ON jobs (path) WHERE " WAITING_V1 ";\n"
    "CREATE TABLE uploaded (\n"
    "  remote_name TEXT PRIMARY KEY,\n"
    "  sha256 TEXT NOT NULL CHECK (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*'),\n"
    "  size INTEGER NOT NULL,\n"
    "  mtime_ns INTEGER NOT NULL,\n"
    "  inode INTEGER NOT NULL,\n"
    "  file_id TEXT,\n"
    "  uploaded_at INTEGER NOT NULL\n"
    ") WITHOUT ROWID;\n"
    "PRAGMA application_id = 1752387889;\n"; /* APPLICATION_ID */

/* v1 -> v2: multipart progress, and counts per state. */
static const char schema_v2[] =
    "ALTER TABLE jobs ADD COLUMN upload_id TEXT CHECK (upload_id <> '');\n"
    "ALTER TABLE jobs ADD COLUMN part_size INTEGER\n"
    "  CHECK ((part_size IS NULL) = (upload_id IS NULL) AND part_size > 0);\n"
    "ALTER TABLE jobs ADD COLUMN part_count INTEGER\n"
    "  CHECK ((part_count IS NULL) = (upload_id IS NULL) AND part_count > 0);\n"
    "CREATE TABLE parts (\n"
    "  job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,\n"
    "  part_number INTEGER NOT NULL CHECK (part_number >= 1),\n"
    "  size INTEGER NOT NULL CHECK (size >= 0),\n"
    "  etag TEXT NOT NULL CHECK (length(etag) <= 128),\n"
    "  PRIMARY KEY (job_id, part_number)\n"
    ") WITHOUT ROWID;\n"
    /* Jobs per state, kept by triggers: the daemon's status line asks every
     * second, and done jobs pile up, so counting rows would not do. */
    "CREATE TABLE job_counts (\n"
    "  state TEXT PRIMARY KEY,\n"
    "  n INTEGER NOT NULL CHECK (n >= 0)\n"
    ") WITHOUT ROWID;\n"
    "INSERT INTO job_counts (state, n) SELECT s.column1,\n"
    "  (SELECT count(*) FROM jobs WHERE jobs.state = s.column1)\n"
    "  FROM (VALUES ('queued'), ('active'), ('done'), ('failed'), ('dead'), ('skipped'),\n"
    "    ('gone')) AS s;\n"
    "CREATE TRIGGER jobs_count_insert AFTER INSERT ON jobs BEGIN\n"
    "  UPDATE job_counts SET n = n + 1 WHERE state = NEW.state;\n"
    "END;\n"
    "CREATE TRIGGER jobs_count_update AFTER UPDATE OF state ON jobs\n"
    "  WHEN OLD.state <> NEW.state BEGIN\n"
    "  UPDATE job_counts SET n = n - 1 WHERE state = OLD.state;\n"
    "  UPDATE job_counts SET n = n + 1 WHERE state = NEW.state;\n"
    "END;\n"
    "CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs BEGIN\n"
    "  UPDATE job_counts SET n = n - 1 WHERE state = OLD.state;\n"
    "END;\n";

/* v2 -> v3: what the watcher needs. A file written again while its job is
 * active is flagged `changed`; when that job ends, the triggers give the
 * path a fresh job (or make a waiting one due), so a change that lands
 * after the upload read the file is never lost. The path index answers the
 * startup scan's "is this file known?" for each file of a large tree. */
static const char schema_v3[] =
    "ALTER TABLE jobs ADD COLUMN changed INTEGER NOT NULL DEFAULT 0 CHECK (changed IN (0, 1));\n"
    "CREATE INDEX jobs_path ON jobs (path, id);\n"
    "CREATE TRIGGER jobs_changed_ended AFTER UPDATE OF state ON jobs\n"
    "  WHEN NEW.changed AND OLD.state = 'active'\n"
    "  AND NEW.state IN ('done', 'skipped', 'gone', 'dead') BEGIN\n"
    "  UPDATE jobs SET changed = 0 WHERE id = NEW.id;\n"
    "  INSERT INTO jobs (path, watch_root, remote_name, size, mtime_ns, inode, state, due_at,\n"
    "    created_at, updated_at) VALUES (NEW.path, NEW.watch_root, NEW.remote_name, NEW.size,\n"
    "    NEW.mtime_ns, NEW.inode, 'queued', NEW.updated_at, NEW.updated_at, NEW.updated_at);\n"
    "END;\n"
    "CREATE TRIGGER jobs_changed_waiting AFTER UPDATE OF state ON jobs\n"
    "  WHEN NEW.changed AND OLD.state = 'active' AND NEW.state IN ('queued', 'failed') BEGIN\n"
    "  UPDATE jobs SET changed = 0, due_at = min(due_at, NEW.updated_at) WHERE id = NEW.id;\n"
    "END;\n";

/* v3 -> v4: the operator's controls. A job the operator cancelled ends
 * `gone` and names who did it; the scans leave its file alone until the
 * file changes. `controls` holds settings the CLI makes for the daemon,
 * today the pause: `until` 0 holds until resumed. */
static const char schema_v4[] =
    "ALTER TABLE jobs ADD COLUMN cancelled_by TEXT CHECK (cancelled_by <> '');\n"
    "CREATE TABLE controls (\n"
    "  name TEXT PRIMARY KEY,\n"
    "  until INTEGER NOT NULL DEFAULT 0 CHECK (until >= 0),\n"
    "  set_by TEXT NOT NULL,\n"
    "  set_at INTEGER NOT NULL\n"
    ") WITHOUT ROWID;\n";

/* v4 -> v5: after-upload actions that failed (a folder the service may not
 * write), kept apart from the jobs: the upload is done and the ledger has
 * it, only the delete or move is still to do. One row per path, retried at
 * due_at; job_id names the job that stored the file (NULL when none is
 * left), and is not a foreign key since pruning the job must not forget
 * the action. */
static const char schema_v5[] = "CREATE TABLE after_pending (\n"
				"  path TEXT PRIMARY KEY CHECK (path <> ''),\n"
				"  watch_root TEXT NOT NULL,\n"
				"  job_id INTEGER,\n"
				"  size INTEGER NOT NULL CHECK (size >= 0),\n"
				"  mtime_ns INTEGER NOT NULL,\n"
				"  inode INTEGER NOT NULL,\n"
				"  attempts INTEGER NOT NULL CHECK (attempts >= 1),\n"
				"  due_at INTEGER NOT NULL,\n"
				"  last_error TEXT NOT NULL,\n"
				"  since INTEGER NOT NULL\n"
				") WITHOUT ROWID;\n"
				"CREATE INDEX after_pending_due ON after_pending (due_at);\n";

/* v5 -> v6: the same jobs table, with every IN list of its CHECKs, partial
 * indexes and triggers written as ORs (see WAITING). SQLite cannot change a
 * CHECK in place, so the table is copied into a new one, which takes the
 * old name. Dropping the old table deletes its rows first, and with foreign
 * keys on (which a transaction cannot switch off) that would take the
 * parts of open multipart uploads with them: they are kept aside and put
 * back. The implicit delete fires no trigger and the copy is made before
 * the new table has any, so job_counts stays as it is. */
static const char schema_v6[] =
    "CREATE TABLE jobs_v6 (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  path TEXT NOT NULL CHECK (path <> ''),\n"
    "  watch_root TEXT NOT NULL DEFAULT '',\n"
    "  remote_name TEXT NOT NULL CHECK (remote_name <> ''),\n"
    "  size INTEGER NOT NULL CHECK (size >= 0),\n"
    "  mtime_ns INTEGER NOT NULL,\n"
    "  inode INTEGER NOT NULL,\n"
    "  sha256 TEXT CHECK (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*'),\n"
    "  state TEXT NOT NULL CHECK (state = 'queued' OR state = 'active' OR state = 'done'\n"
    "    OR state = 'failed' OR state = 'dead' OR state = 'skipped' OR state = 'gone'),\n"
    "  attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),\n"
    "  due_at INTEGER,\n"
    "  lease_token INTEGER NOT NULL DEFAULT 0,\n"
    "  last_error TEXT,\n"
    "  created_at INTEGER NOT NULL,\n"
    "  updated_at INTEGER NOT NULL,\n"
    "  upload_id TEXT CHECK (upload_id <> ''),\n"
    "  part_size INTEGER\n"
    "    CHECK ((part_size IS NULL) = (upload_id IS NULL) AND part_size > 0),\n"
    "  part_count INTEGER\n"
    "    CHECK ((part_count IS NULL) = (upload_id IS NULL) AND part_count > 0),\n"
    "  changed INTEGER NOT NULL DEFAULT 0 CHECK (changed = 0 OR changed = 1),\n"
    "  cancelled_by TEXT CHECK (cancelled_by <> ''),\n"
    "  CHECK ((due_at IS NOT NULL) = " WAITING "),\n"
    "  CHECK (state <> 'done' OR sha256 IS NOT NULL)\n"
    ");\n"
    "INSERT INTO jobs_v6 (id, path, watch_root, remote_name, size, mtime_ns, inode, sha256,\n"
    "  state, attempts, due_at, lease_token, last_error, created_at, updated_at, upload_id,\n"
    "  part_size, part_count, changed, cancelled_by)\n"
    "  SELECT id, path, watch_root, remote_name, size, mtime_ns, inode, sha256,\n"
    "  state, attempts, due_at, lease_token, last_error, created_at, updated_at, upload_id,\n"
    "  part_size, part_count, changed, cancelled_by FROM jobs;\n"
    "CREATE TEMP TABLE parts_v6 AS SELECT job_id, part_number, size, etag FROM parts;\n"
    "DROP TABLE jobs;\n"
    "ALTER TABLE jobs_v6 RENAME TO jobs;\n"
    "INSERT INTO parts (job_id, part_number, size, etag)\n"
    "  SELECT job_id, part_number, size, etag FROM temp.parts_v6;\n"
    "DROP TABLE temp.parts_v6;\n"
    "CREATE INDEX jobs_due ON jobs (due_at) WHERE " WAITING ";\n"
    "CREATE UNIQUE INDEX jobs_waiting_path ON jobs (path) WHERE " WAITING ";\n"
    "CREATE INDEX jobs_path ON jobs (path, id);\n"
    "CREATE TRIGGER jobs_count_insert AFTER INSERT ON jobs BEGIN\n"
    "  UPDATE job_counts SET n = n + 1 WHERE state = NEW.state;\n"
    "END;\n"
    "CREATE TRIGGER jobs_count_update AFTER UPDATE OF state ON jobs\n"
    "  WHEN OLD.state <> NEW.state BEGIN\n"
    "  UPDATE job_counts SET n = n - 1 WHERE state = OLD.state;\n"
    "  UPDATE job_counts SET n = n + 1 WHERE state = NEW.state;\n"
    "END;\n"
    "CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs BEGIN\n"
    "  UPDATE job_counts SET n = n - 1 WHERE state = OLD.state;\n"
    "END;\n"
    "CREATE TRIGGER jobs_changed_ended AFTER UPDATE OF state ON jobs\n"
    "  WHEN NEW.changed AND OLD.state = 'active'\n"
    "  AND (NEW.state = 'done' OR NEW.state = 'skipped' OR NEW.state = 'gone'\n"
    "    OR NEW.state = 'dead') BEGIN\n"
    "  UPDATE jobs SET changed = 0 WHERE id = NEW.id;\n"
    "  INSERT INTO jobs (path, watch_root, remote_name, size, mtime_ns, inode, state, due_at,\n"
    "    created_at, updated_at) VALUES (NEW.path, NEW.watch_root, NEW.remote_name, NEW.size,\n"
    "    NEW.mtime_ns, NEW.inode, 'queued', NEW.updated_at, NEW.updated_at, NEW.updated_at);\n"
    "END;\n"
    "CREATE TRIGGER jobs_changed_waiting AFTER UPDATE OF state ON jobs\n"
    "  WHEN NEW.changed AND OLD.state = 'active'\n"
    "  AND (NEW.state = 'queued' OR NEW.state = 'failed') BEGIN\n"
    "  UPDATE jobs SET changed = 0, due_at = min(due_at, NEW.updated_at) WHERE id = NEW.id;\n"
    "END;\n";

static const char *const migrations[SCHEMA_VERSION] = {schema_v1, schema_v2, schema_v3,
						       schema_v4, schema_v5, schema_v6};

enum stmt_id {
	S_ENQUEUE,
	S_ENQUEUE_QUIET,
	S_WAITING_ID,
	S_CLAIM,
	S_NEXT_DUE,
	S_WHO,
	S_RENEW,
	S_FACTS,
	S_DONE,
	S_LEDGER_PUT,
	S_FINISH,
	S_PARTS_CLEAR,
	S_ATTEMPTS,
	S_FAIL,
	S_RELEASE,
	S_MP_BEGIN,
	S_MP_PART,
	S_MP_RESET,
	S_MP_PARTS,
	S_LEDGER_HAS,
	S_LEDGER_FACTS,
	S_LEDGER_BY_FACTS,
	S_RETRY_IDS,
	S_RETRY_ONE,
	S_RECOVER,
	S_COUNTS,
	S_GET,
	S_CHANGED,
	S_SEEN,
	S_LEDGER_TOUCH,
	S_PRUNE,
	S_OLDEST_WAITING,
	S_LAST_STORED,
	S_PAUSE_GET,
	S_PAUSE_SET,
	S_PAUSE_CLEAR,
	S_CANCEL,
	S_PURGE,
	S_AFTER_GET,
	S_AFTER_PUT,
	S_AFTER_CLEAR,
	S_AFTER_DUE,
	S_AFTER_NEXT,
	S_AFTER_NOW,
	S_AFTER_COUNT,
	S_COUNT
};

/* A waiting job for the path is refreshed (its checksum kept only if the
 * file's facts did not change) and due now, unless it is active: then the
 * DO UPDATE does nothing and changes no row. */
#define ENQUEUE                                                                                    \
	"INSERT INTO jobs (path, watch_root, remote_name, size, mtime_ns, inode, "                 \
	"state, due_at, created_at, updated_at) "                                                  \
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?7, ?7, ?7) "                                   \
	"ON CONFLICT (path) WHERE " WAITING " DO UPDATE SET "                                      \
	"watch_root = excluded.watch_root, remote_name = excluded.remote_name, "                   \
	"sha256 = CASE WHEN size = excluded.size AND mtime_ns = excluded.mtime_ns "                \
	"AND inode = excluded.inode THEN sha256 END, "                                             \
	"size = excluded.size, mtime_ns = excluded.mtime_ns, inode = excluded.inode, "             \
	"state = 'queued', due_at = min(due_at, excluded.due_at), "                                \
	"updated_at = excluded.updated_at "                                                        \
	"WHERE state <> 'active'"

static const char *const stmt_sql[S_COUNT] = {
    [S_ENQUEUE] = ENQUEUE " RETURNING id",
    /* The same without RETURNING, for callers that do not want the id:
     * SQLite gathers RETURNING rows in an ephemeral table, whose page cache
     * is made and torn down at every execution; a scan that queued 100,000
     * files spent most of its time there. */
    [S_ENQUEUE_QUIET] = ENQUEUE,
    [S_WAITING_ID] = "SELECT id FROM jobs WHERE path = ?1 AND " WAITING,
    [S_CLAIM] = "UPDATE jobs SET state = 'active', lease_token = lease_token + 1, due_at = ?2, "
		"updated_at = ?1 WHERE id = (SELECT id FROM jobs WHERE " WAITING
		" AND due_at <= ?1 ORDER BY due_at, id LIMIT 1) RETURNING " JOB_COLUMNS,
    [S_NEXT_DUE] = "SELECT due_at FROM jobs WHERE " WAITING " ORDER BY due_at LIMIT 1",
    [S_WHO] = "SELECT state, lease_token, sha256 IS NOT NULL, upload_id IS NOT NULL, "
	      "part_count FROM jobs WHERE id = ?1",
    [S_RENEW] = "UPDATE jobs SET due_at = ?4, updated_at = ?3 WHERE " HELD,
    [S_FACTS] = "UPDATE jobs SET size = ?3, mtime_ns = ?4, inode = ?5, sha256 = ?6 WHERE " HELD,
    [S_DONE] = "UPDATE jobs SET state = 'done', due_at = NULL, upload_id = NULL, "
	       "part_size = NULL, part_count = NULL, updated_at = ?3 WHERE " HELD
	       " AND sha256 IS NOT NULL RETURNING remote_name, sha256, size, mtime_ns, inode",
    [S_LEDGER_PUT] = "INSERT INTO uploaded (remote_name, sha256, size, mtime_ns, inode, "
		     "file_id, uploaded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
		     "ON CONFLICT (remote_name) DO UPDATE SET sha256 = excluded.sha256, "
		     "size = excluded.size, mtime_ns = excluded.mtime_ns, "
		     "inode = excluded.inode, file_id = excluded.file_id, "
		     "uploaded_at = excluded.uploaded_at",
    [S_FINISH] = "UPDATE jobs SET state = ?4, due_at = NULL, upload_id = NULL, "
		 "part_size = NULL, part_count = NULL, "
		 "last_error = coalesce(?5, last_error), updated_at = ?3 WHERE " HELD,
    [S_PARTS_CLEAR] = "DELETE FROM parts WHERE job_id = ?1",
    [S_ATTEMPTS] = "SELECT attempts FROM jobs WHERE " HELD,
    [S_FAIL] = "UPDATE jobs SET state = ?3, attempts = ?4, due_at = ?5, "
	       "last_error = coalesce(?6, last_error), updated_at = ?7 WHERE " HELD,
    [S_RELEASE] = "UPDATE jobs SET state = 'queued', due_at = ?3 WHERE " HELD,
    [S_MP_BEGIN] = "UPDATE jobs SET upload_id = ?3, part_size = ?4, part_count = ?5 WHERE " HELD,
    [S_MP_PART] = "INSERT INTO parts (job_id, part_number, size, etag) "
		  "SELECT id, ?3, ?4, ?5 FROM jobs WHERE " HELD
		  " AND upload_id IS NOT NULL AND ?3 <= part_count "
		  "ON CONFLICT (job_id, part_number) DO UPDATE SET "
		  "size = excluded.size, etag = excluded.etag",
    [S_MP_RESET] = "UPDATE jobs SET upload_id = NULL, part_size = NULL, part_count = NULL "
		   "WHERE " HELD,
    [S_MP_PARTS] = "SELECT part_number, size, etag FROM parts WHERE job_id = ?1 "
		   "ORDER BY part_number",
    [S_LEDGER_HAS] = "SELECT sha256 = ?2 FROM uploaded WHERE remote_name = ?1",
    [S_LEDGER_FACTS] = "SELECT size = ?2 AND mtime_ns = ?3 AND inode = ?4 FROM uploaded "
		       "WHERE remote_name = ?1",
    /* Rare (a crash in the middle of an after-upload action): a scan of
     * the ledger is fine. */
    [S_LEDGER_BY_FACTS] = "SELECT remote_name FROM uploaded WHERE size = ?1 AND mtime_ns = ?2 "
			  "AND inode = ?3 AND substr(remote_name, 1, length(?4)) = ?4 "
			  "ORDER BY uploaded_at DESC LIMIT 1",
    /* Newest first: of several dead jobs for one path, the newest wins. */
    [S_RETRY_IDS] = "SELECT id FROM jobs WHERE state IN ('failed', 'dead') "
		    "AND id BETWEEN ?1 AND ?2 ORDER BY id DESC",
    /* A dead job stays dead if another job already waits for its path. */
    [S_RETRY_ONE] = "UPDATE jobs SET state = 'queued', attempts = 0, due_at = ?2, "
		    "updated_at = ?2 WHERE id = ?1 AND state IN ('failed', 'dead') "
		    "AND NOT EXISTS (SELECT 1 FROM jobs AS w WHERE w.path = jobs.path "
		    "AND w.id <> jobs.id AND " WAITING_OF("w") ")",
    /* The WAITING term lets it walk the partial index, not the whole table. */
    [S_RECOVER] = "UPDATE jobs SET state = 'queued', due_at = ?1, updated_at = ?1 "
		  "WHERE " WAITING " AND state = 'active'",
    [S_COUNTS] = "SELECT state, n FROM job_counts",
    [S_OLDEST_WAITING] = "SELECT min(created_at) FROM jobs WHERE " WAITING,
    [S_LAST_STORED] = "SELECT max(uploaded_at) FROM uploaded",
    [S_GET] = "SELECT " JOB_COLUMNS " FROM jobs WHERE id = ?1",
    /* The file moved on while its job is active: see schema_v3. */
    [S_CHANGED] = "UPDATE jobs SET changed = 1 WHERE path = ?1 AND state = 'active' "
		  "AND NOT (size = ?2 AND mtime_ns = ?3 AND inode = ?4)",
    /* The newest job's state if it has these facts, and whether the ledger
     * holds them: one statement, as a scan asks it of every file. */
    [S_SEEN] = "SELECT (SELECT CASE WHEN size = ?2 AND mtime_ns = ?3 AND inode = ?4 "
	       "THEN iif(cancelled_by IS NULL, state, 'cancelled') END FROM jobs WHERE path = ?1 "
	       "ORDER BY id DESC LIMIT 1), "
	       "EXISTS (SELECT 1 FROM uploaded WHERE remote_name = ?5 AND size = ?2 "
	       "AND mtime_ns = ?3 AND inode = ?4)",
    /* A skip proves the stored content is this file's too. */
    [S_LEDGER_TOUCH] = "UPDATE uploaded SET (size, mtime_ns, inode) = "
		       "(SELECT size, mtime_ns, inode FROM jobs WHERE id = ?1) "
		       "WHERE (remote_name, sha256) = "
		       "(SELECT remote_name, sha256 FROM jobs WHERE id = ?1)",
    /* A cancelled job stays: it keeps the scans from sending its file. */
    [S_PRUNE] = "DELETE FROM jobs WHERE state IN ('done', 'skipped', 'gone') AND updated_at < ?1 "
		"AND cancelled_by IS NULL",
    [S_PAUSE_GET] = "SELECT until, set_by, set_at FROM controls WHERE name = 'pause'",
    [S_PAUSE_SET] = "INSERT INTO controls (name, until, set_by, set_at) "
		    "VALUES ('pause', ?1, ?2, ?3) ON CONFLICT (name) DO UPDATE SET "
		    "until = excluded.until, set_by = excluded.set_by, set_at = excluded.set_at",
    [S_PAUSE_CLEAR] = "DELETE FROM controls WHERE name = 'pause'",
    /* An active job's holder finds its lease gone at its next write. */
    [S_CANCEL] = "UPDATE jobs SET state = 'gone', due_at = NULL, upload_id = NULL, "
		 "part_size = NULL, part_count = NULL, cancelled_by = ?2, "
		 "last_error = 'cancelled by ' || ?2, lease_token = lease_token + 1, "
		 "updated_at = ?3 WHERE id = ?1 AND state IN ('queued', 'active', 'failed', "
		 "'dead') RETURNING remote_name",
    [S_PURGE] = "DELETE FROM jobs WHERE state = ?1 AND updated_at < ?2",
    [S_AFTER_GET] = "SELECT attempts, since, size = ?2 AND mtime_ns = ?3 AND inode = ?4, job_id "
		    "FROM after_pending WHERE path = ?1",
    /* A scan names no job: the newest that stored the path, if any is left. */
    [S_AFTER_PUT] = "INSERT OR REPLACE INTO after_pending (path, watch_root, job_id, size, "
		    "mtime_ns, inode, attempts, due_at, last_error, since) VALUES (?1, ?2, "
		    "coalesce(?3, (SELECT max(id) FROM jobs WHERE path = ?1 "
		    "AND state IN ('done', 'skipped'))), ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [S_AFTER_CLEAR] = "DELETE FROM after_pending WHERE path = ?1",
    [S_AFTER_DUE] = "SELECT " AFTER_COLUMNS " FROM after_pending WHERE due_at <= ?1 "
		    "ORDER BY due_at, path LIMIT ?2",
    [S_AFTER_NEXT] = "SELECT min(due_at) FROM after_pending",
    [S_AFTER_NOW] = "UPDATE after_pending SET due_at = ?1 WHERE due_at > ?1",
    [S_AFTER_COUNT] = "SELECT count(*) FROM after_pending",
};

/* The connection's synchronous setting, as last set: see begin_write. */
enum sync_mode { SYNC_UNKNOWN, SYNC_FULL, SYNC_NORMAL };

struct hs_queue {
	struct hs_sqldb sql;
	enum sync_mode sync;
	/* A write began unsynced since the last hs_queue_sync: there may be
	 * commits a power failure could lose. */
	bool unsynced;
};

static const char *const state_names[HS_JOB_NSTATES] = {
    [HS_JOB_QUEUED] = "queued", [HS_JOB_ACTIVE] = "active", [HS_JOB_DONE] = "done",
    [HS_JOB_FAILED] = "failed", [HS_JOB_DEAD] = "dead",	    [HS_JOB_SKIPPED] = "skipped",
    [HS_JOB_GONE] = "gone",
};

const char *hs_job_state_name(enum hs_job_state s)
{
	if ((unsigned)s >= HS_JOB_NSTATES)
		return "unknown";
	return state_names[s];
}

int hs_job_state_parse(const char *name)
{
	for (int s = 0; name && s < HS_JOB_NSTATES; s++)
		if (strcmp(name, state_names[s]) == 0)
			return s;
	return -1;
}

/* ---- errors ---------------------------------------------------------------- */

/* Sets *cause to a new string. An earlier value is not freed: it is the
 * caller's, and may already be. */
static void set_cause(char **cause, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_cause(char **cause, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	if (!cause)
		return;
	*cause = NULL;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !(s = malloc((size_t)n + 1)))
		return; /* the caller reports "out of memory" for a NULL cause */
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	*cause = s;
}

/* An update of a held job changed nothing: says why, as HS_Q_LOST (someone
 * else holds it, or it left the active state) or HS_Q_ERROR (no such job, or
 * `need` names what the job lacks). */
enum need { NEED_NOTHING, NEED_SHA256, NEED_SESSION };

static int unheld(struct hs_queue *q, int64_t id, int64_t token, enum need need, const char *what,
		  char **cause)
{
	sqlite3_stmt *st = hs_sqldb_stmt(&q->sql, S_WHO, what, cause);
	int rc;

	if (!st)
		return HS_Q_ERROR;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		set_cause(cause, "%s: there is no job %lld", what, (long long)id);
		rc = HS_Q_ERROR;
	} else if (rc != SQLITE_ROW) {
		hs_sqldb_cause(&q->sql, cause, what);
		rc = HS_Q_ERROR;
	} else if (!sqlite3_column_text(st, 0) ||
		   strcmp((const char *)sqlite3_column_text(st, 0), "active") != 0 ||
		   sqlite3_column_int64(st, 1) != token) {
		rc = HS_Q_LOST;
	} else if (need == NEED_SHA256 && !sqlite3_column_int(st, 2)) {
		set_cause(cause, "%s: job %lld has no SHA-256 yet (set its facts first)", what,
			  (long long)id);
		rc = HS_Q_ERROR;
	} else if (need == NEED_SESSION && !sqlite3_column_int(st, 3)) {
		set_cause(cause, "%s: job %lld has no multipart session", what, (long long)id);
		rc = HS_Q_ERROR;
	} else if (need == NEED_SESSION) {
		set_cause(cause, "%s: job %lld: part number out of range 1..%lld", what,
			  (long long)id, (long long)sqlite3_column_int64(st, 4));
		rc = HS_Q_ERROR;
	} else {
		set_cause(cause, "%s: job %lld: nothing changed", what, (long long)id);
		rc = HS_Q_ERROR;
	}
	hs_sqldb_finish(st);
	return rc;
}

/* Runs a bound UPDATE of a held job, in its own transaction or in the
 * caller's. Returns HS_Q_OK, HS_Q_LOST or HS_Q_ERROR. */
static int held_update(struct hs_queue *q, sqlite3_stmt *st, int64_t id, int64_t token,
		       enum need need, const char *what, char **cause)
{
	if (hs_sqldb_run(&q->sql, st, what, cause) != 0)
		return HS_Q_ERROR;
	if (sqlite3_changes(q->sql.db) == 0)
		return unheld(q, id, token, need, what, cause);
	return HS_Q_OK;
}

/* a + b without overflow: times saturate at the far future. */
static int64_t add_sat(int64_t a, uint64_t b)
{
	int64_t d = b > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)b;

	return a > INT64_MAX - d ? INT64_MAX : a + d;
}

static int64_t lease_end(int64_t now, int64_t lease_ms)
{
	return add_sat(now, lease_ms > 0 ? (uint64_t)lease_ms : 0);
}

static bool valid_sha256(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (i >= 64 || !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return i == 64;
}

/* ---- jobs ------------------------------------------------------------------ */

struct hs_job *hs_job_free(struct hs_job *job)
{
	if (job) {
		free(job->path);
		free(job->watch_root);
		free(job->remote_name);
		free(job->last_error);
		free(job->upload_id);
		free(job);
	}
	return NULL;
}

static char *column_dup(sqlite3_stmt *st, int col, bool *oom)
{
	const unsigned char *s = sqlite3_column_text(st, col);
	char *d;

	if (!s) {
		if (sqlite3_column_type(st, col) != SQLITE_NULL)
			*oom = true;
		return NULL;
	}
	if (!(d = strdup((const char *)s)))
		*oom = true;
	return d;
}

/* Reads a row of JOB_COLUMNS. Returns NULL when out of memory. */
static struct hs_job *job_from_row(sqlite3_stmt *st)
{
	struct hs_job *job = calloc(1, sizeof(*job));
	const char *text;
	bool oom = false;
	int64_t due;

	if (!job)
		return NULL;
	job->id = sqlite3_column_int64(st, 0);
	job->path = column_dup(st, 1, &oom);
	job->watch_root = column_dup(st, 2, &oom);
	job->remote_name = column_dup(st, 3, &oom);
	job->size = sqlite3_column_int64(st, 4);
	job->mtime_ns = sqlite3_column_int64(st, 5);
	job->inode = sqlite3_column_int64(st, 6);
	text = (const char *)sqlite3_column_text(st, 7);
	if (text && strlen(text) < sizeof(job->sha256))
		strcpy(job->sha256, text);
	text = (const char *)sqlite3_column_text(st, 8);
	job->state = text ? (enum hs_job_state)hs_job_state_parse(text) : HS_JOB_QUEUED;
	job->attempts = (unsigned)sqlite3_column_int64(st, 9);
	due = sqlite3_column_int64(st, 10);
	if (job->state == HS_JOB_FAILED)
		job->next_attempt_at = due;
	else if (job->state == HS_JOB_ACTIVE)
		job->lease_until = due;
	job->lease_token = sqlite3_column_int64(st, 11);
	job->last_error = column_dup(st, 12, &oom);
	job->created_at = sqlite3_column_int64(st, 13);
	job->updated_at = sqlite3_column_int64(st, 14);
	job->upload_id = column_dup(st, 15, &oom);
	job->part_size = sqlite3_column_int64(st, 16);
	job->part_count = (uint32_t)sqlite3_column_int64(st, 17);
	if (oom || !job->path || !job->watch_root || !job->remote_name)
		return hs_job_free(job);
	return job;
}

/* ---- opening ----------------------------------------------------------------- */

static const struct hs_sqldb_schema schema = {
    .kind = "queue",
    .application_id = APPLICATION_ID,
    .version = SCHEMA_VERSION,
    .migrations = migrations,
    /* 8 MiB of page cache instead of 2: a scan that queues 100,000 files
     * took 8 s with the default, 2.8 s with this (bench/watch.py). */
    .cache_kib = 8192,
    .foreign_keys = true,
    /* The folder's group may read it (healsync jobs for a monitor); the
     * mirror, with patient records, stays private. */
    .mode = 0640,
};

int hs_queue_open(const char *path, struct hs_queue **ret, char **cause)
{
	struct hs_queue *q;
	int64_t v;

	*ret = NULL;
	if (!(q = calloc(1, sizeof(*q)))) {
		set_cause(cause, "out of memory");
		return HS_Q_ERROR;
	}
	if (hs_sqldb_open(&q->sql, path, &schema, HS_SQLDB_WRITE, stmt_sql, S_COUNT, &v, cause) !=
	    0) {
		free(q);
		return HS_Q_ERROR;
	}
	*ret = q;
	return HS_Q_OK;
}

int hs_queue_open_read(const char *path, struct hs_queue **ret, char **cause)
{
	struct hs_queue *q;
	const char *slash = strrchr(path, '/');
	char wal[4200], dir[4200];
	unsigned flags = HS_SQLDB_READONLY;
	int64_t v;

	*ret = NULL;
	/* A WAL database is read through its -shm, which a reader creates if
	 * no writer left one: a reader that cannot write in the folder reads
	 * the file alone, which holds everything once no WAL is left. */
	snprintf(wal, sizeof(wal), "%s-wal", path);
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
	if (access(wal, F_OK) != 0 && errno == ENOENT && access(dir, W_OK) != 0)
		flags |= HS_SQLDB_IMMUTABLE;
	if (!(q = calloc(1, sizeof(*q)))) {
		set_cause(cause, "out of memory");
		return HS_Q_ERROR;
	}
	if (hs_sqldb_open(&q->sql, path, &schema, flags, stmt_sql, S_COUNT, &v, cause) != 0) {
		free(q);
		return HS_Q_ERROR;
	}
	if (v <= 0) {
		hs_queue_close(q);
		set_cause(cause, "not a queue yet");
		return HS_Q_ERROR;
	}
	if (v != SCHEMA_VERSION) {
		set_cause(cause,
			  "the queue has schema version %lld; the daemon brings it to %d when "
			  "it starts",
			  (long long)v, SCHEMA_VERSION);
		hs_queue_close(q);
		return HS_Q_ERROR;
	}
	*ret = q;
	return HS_Q_OK;
}

struct hs_queue *hs_queue_close(struct hs_queue *q)
{
	if (q) {
		hs_sqldb_close(&q->sql);
		free(q);
	}
	return NULL;
}

/* For the tests: the connection the queue works on. Not in queue.h. */
sqlite3 *hs_queue_sqlite(struct hs_queue *q);
sqlite3 *hs_queue_sqlite(struct hs_queue *q)
{
	return q->sql.db;
}

/* ---- enqueue ----------------------------------------------------------------- */

static int enqueue_one(struct hs_queue *q, const struct hs_job_spec *spec, int64_t now,
		       int64_t *ret_id, char **cause)
{
	sqlite3_stmt *st;
	int rc;

	if (!spec->path || !spec->path[0] || !spec->remote_name || !spec->remote_name[0] ||
	    spec->size < 0) {
		set_cause(cause, "enqueue: a job needs a path, a remote name and a size >= 0");
		return -1;
	}
	if (!(st = hs_sqldb_stmt(&q->sql, ret_id ? S_ENQUEUE : S_ENQUEUE_QUIET, "enqueue", cause)))
		return -1;
	sqlite3_bind_text(st, 1, spec->path, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, spec->watch_root ? spec->watch_root : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, spec->remote_name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, spec->size);
	sqlite3_bind_int64(st, 5, spec->mtime_ns);
	sqlite3_bind_int64(st, 6, spec->inode);
	sqlite3_bind_int64(st, 7, now);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (ret_id)
			*ret_id = sqlite3_column_int64(st, 0);
		rc = sqlite3_step(st);
	}
	if (rc != SQLITE_DONE) {
		set_cause(cause, "enqueue %s: %s", spec->path, sqlite3_errmsg(q->sql.db));
		hs_sqldb_finish(st);
		return -1;
	}
	hs_sqldb_finish(st);
	if (sqlite3_changes(q->sql.db) > 0)
		return 0;

	/* An active job holds the path: left alone, but flagged if the file is
	 * no longer what it is sending (schema_v3). */
	if (!(st = hs_sqldb_stmt(&q->sql, S_CHANGED, "enqueue", cause)))
		return -1;
	sqlite3_bind_text(st, 1, spec->path, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, spec->size);
	sqlite3_bind_int64(st, 3, spec->mtime_ns);
	sqlite3_bind_int64(st, 4, spec->inode);
	if (hs_sqldb_run(&q->sql, st, "enqueue", cause) != 0)
		return -1;
	if (!ret_id)
		return 0;
	if (!(st = hs_sqldb_stmt(&q->sql, S_WAITING_ID, "enqueue", cause)))
		return -1;
	sqlite3_bind_text(st, 1, spec->path, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret_id = sqlite3_column_int64(st, 0);
	else if (rc == SQLITE_DONE)
		set_cause(cause, "enqueue %s: the job vanished", spec->path);
	else
		set_cause(cause, "enqueue %s: %s", spec->path, sqlite3_errmsg(q->sql.db));
	hs_sqldb_finish(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

/* Every write transaction of the queue begins here and says whether its
 * commit is synced: FULL (fsync at the commit) or NORMAL (fsync when the WAL
 * is checkpointed, or at the next FULL commit, which covers every frame
 * before it). The setting is changed only when it differs from the last
 * one: a PRAGMA takes effect when it is prepared, so each switch parses it
 * anew, and switching back after every unsynced commit cost as much CPU
 * as a small commit. Since each write sets its own, none inherits
 * another's; after a failed switch the setting is unknown and the next
 * write sets it again. */
static int begin_write(struct hs_queue *q, bool synced, const char *what, char **cause)
{
	enum sync_mode want = synced ? SYNC_FULL : SYNC_NORMAL;
	char *err = NULL;

	if (q->sync != want) {
		q->sync = SYNC_UNKNOWN;
		if (sqlite3_exec(q->sql.db,
				 synced ? "PRAGMA synchronous = FULL"
					: "PRAGMA synchronous = NORMAL",
				 NULL, NULL, &err) != SQLITE_OK) {
			set_cause(cause, "%s: setting synchronous: %s", what, err ? err : "?");
			sqlite3_free(err);
			return -1;
		}
		q->sync = want;
	}
	if (!synced)
		q->unsynced = true;
	return hs_sqldb_begin(&q->sql, true, what, cause);
}

int hs_queue_sync(struct hs_queue *q, char **cause)
{
	sqlite3_file *wal = NULL;

	if (!q->unsynced)
		return HS_Q_OK;
	/* Every commit is in the WAL file already (written at the commit,
	 * synced or not): syncing that file makes them all durable, as the
	 * next FULL commit would, without writing anything. */
	if (sqlite3_file_control(q->sql.db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal) !=
		SQLITE_OK ||
	    !wal || !wal->pMethods) {
		set_cause(cause, "syncing the queue: no write-ahead log to sync");
		return HS_Q_ERROR;
	}
	if (wal->pMethods->xSync(wal, SQLITE_SYNC_NORMAL) != SQLITE_OK) {
		set_cause(cause, "syncing the queue's write-ahead log failed");
		return HS_Q_ERROR;
	}
	q->unsynced = false;
	return HS_Q_OK;
}

int hs_queue_enqueue(struct hs_queue *q, const struct hs_job_spec *spec, int64_t now,
		     int64_t *ret_id, char **cause)
{
	if (begin_write(q, true, "enqueue", cause) != 0)
		return HS_Q_ERROR;
	if (enqueue_one(q, spec, now, ret_id, cause) != 0)
		goto fail;
	if (hs_sqldb_commit(&q->sql, "enqueue", cause) != 0)
		return HS_Q_ERROR;
	return HS_Q_OK;
fail:
	hs_sqldb_rollback(&q->sql);
	return HS_Q_ERROR;
}

int hs_queue_enqueue_many(struct hs_queue *q, const struct hs_job_spec *specs, size_t n,
			  int64_t now, char **cause)
{
	if (n == 0)
		return HS_Q_OK;
	if (begin_write(q, true, "enqueue", cause) != 0)
		return HS_Q_ERROR;
	for (size_t i = 0; i < n; i++)
		if (enqueue_one(q, &specs[i], now, NULL, cause) != 0)
			goto fail;
	if (hs_sqldb_commit(&q->sql, "enqueue", cause) != 0)
		return HS_Q_ERROR;
	return HS_Q_OK;
fail:
	hs_sqldb_rollback(&q->sql);
	return HS_Q_ERROR;
}

/* ---- claiming ---------------------------------------------------------------- */

int hs_queue_claim(struct hs_queue *q, int64_t now, int64_t lease_ms, struct hs_job **ret,
		   char **cause)
{
	struct hs_job *job = NULL;
	sqlite3_stmt *st;
	int rc;

	*ret = NULL;
	/* Unsynced (see "Durability" in queue.h): a claim lost to a power
	 * failure leaves the job queued, where hs_queue_recover puts it anyway. */
	if (begin_write(q, false, "claim", cause) != 0)
		return HS_Q_ERROR;
	if (!(st = hs_sqldb_stmt(&q->sql, S_CLAIM, "claim", cause)))
		goto fail;
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int64(st, 2, lease_end(now, lease_ms));
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (!(job = job_from_row(st))) {
			set_cause(cause, "claim: out of memory");
			hs_sqldb_finish(st);
			goto fail;
		}
		rc = sqlite3_step(st);
	}
	if (rc != SQLITE_DONE) {
		hs_sqldb_cause(&q->sql, cause, "claim");
		hs_sqldb_finish(st);
		goto fail;
	}
	hs_sqldb_finish(st);
	if (hs_sqldb_commit(&q->sql, "claim", cause) != 0) {
		hs_job_free(job);
		return HS_Q_ERROR;
	}
	if (!job)
		return HS_Q_EMPTY;
	*ret = job;
	return HS_Q_OK;
fail:
	hs_job_free(job);
	hs_sqldb_rollback(&q->sql);
	return HS_Q_ERROR;
}

int hs_queue_next_due(struct hs_queue *q, int64_t *ret_at, char **cause)
{
	sqlite3_stmt *st = hs_sqldb_stmt(&q->sql, S_NEXT_DUE, "next due time", cause);
	int rc;

	if (!st)
		return HS_Q_ERROR;
	rc = sqlite3_step(st);
	*ret_at = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		hs_sqldb_cause(&q->sql, cause, "next due time");
		hs_sqldb_finish(st);
		return HS_Q_ERROR;
	}
	hs_sqldb_finish(st);
	return HS_Q_OK;
}

/* One integer, 0 when the answer is NULL (no rows). */
static int one_time(struct hs_queue *q, int which, const char *what, int64_t *ret, char **cause)
{
	sqlite3_stmt *st = hs_sqldb_stmt(&q->sql, which, what, cause);
	int rc;

	if (!st)
		return HS_Q_ERROR;
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		hs_sqldb_cause(&q->sql, cause, what);
		hs_sqldb_finish(st);
		return HS_Q_ERROR;
	}
	*ret = sqlite3_column_int64(st, 0);
	hs_sqldb_finish(st);
	return HS_Q_OK;
}

int hs_queue_oldest_waiting(struct hs_queue *q, int64_t *ret_at, char **cause)
{
	return one_time(q, S_OLDEST_WAITING, "oldest waiting job", ret_at, cause);
}

int hs_queue_last_stored(struct hs_queue *q, int64_t *ret_at, char **cause)
{
	return one_time(q, S_LAST_STORED, "last stored file", ret_at, cause);
}

int hs_queue_recover(struct hs_queue *q, int64_t now, size_t *ret_n, char **cause)
{
	sqlite3_stmt *st;
	size_t n;

	if (ret_n)
		*ret_n = 0;
	if (begin_write(q, true, "recovering interrupted jobs", cause) != 0)
		return HS_Q_ERROR;
	if (!(st = hs_sqldb_stmt(&q->sql, S_RECOVER, "recovering interrupted jobs", cause)))
		goto fail;
	sqlite3_bind_int64(st, 1, now);
	if (hs_sqldb_run(&q->sql, st, "recovering interrupted jobs", cause) != 0)
		goto fail;
	n = (size_t)sqlite3_changes(q->sql.db);
	if (hs_sqldb_commit(&q->sql, "recovering interrupted jobs", cause) != 0)
		return HS_Q_ERROR;
	if (ret_n)
		*ret_n = n;
	return HS_Q_OK;
fail:
	hs_sqldb_rollback(&q->sql);
	return HS_Q_ERROR;
}

/* ---- updates of a held job --------------------------------------------------- */

/* A held-job update alone in its transaction: bind id and token, the caller
 * binds the rest between prepare and run. */
static sqlite3_stmt *held_stmt(struct hs_queue *q, enum stmt_id id_stmt, int64_t id, int64_t token,
			       const char *what, char **cause)
{
	sqlite3_stmt *st = hs_sqldb_stmt(&q->sql, id_stmt, what, cause);

	if (st) {
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int64(st, 2, token);
	}
	return st;
}

static int held_end(struct hs_queue *q, int rc, const char *what, char **cause)
{
	if (rc != HS_Q_OK) {
		hs_sqldb_rollback(&q->sql);
		return rc;
	}
	return hs_sqldb_commit(&q->sql, what, cause) == 0 ? HS_Q_OK : HS_Q_ERROR;
}

int hs_queue_renew(struct hs_queue *q, int64_t id, int64_t token, int64_t now, int64_t lease_ms,
		   char **cause)
{
	const char *what = "renewing a lease";
	sqlite3_stmt *st;
	int rc = HS_Q_ERROR;

	if (begin_write(q, true, what, cause) != 0)
		return HS_Q_ERROR;
	if ((st = held_stmt(q, S_RENEW, id, token, what, cause))) {
		sqlite3_bind_int64(st, 3, now);
		sqlite3_bind_int64(st, 4, lease_end(now, lease_ms));
		rc = held_update(q, st, id, token, NEED_NOTHING, what, cause);
	}
	return held_end(q, rc, what, cause);
}

static int set_facts(struct hs_queue *q, int64_t id, int64_t token, int64_t size, int64_t mtime_ns,
		     int64_t inode, const char *sha256, char **cause)
{
	const char *what = "recording the file's facts";
	sqlite3_stmt *st;
	int rc = HS_Q_ERROR;

	if (sha256 && sha256[0] && !valid_sha256(sha256)) {
		set_cause(cause, "%s: the SHA-256 is not 64 lowercase hex digits", what);
		return HS_Q_ERROR;
	}
	if (size < 0) {
		set_cause(cause, "%s: negative size", what);
		return HS_Q_ERROR;
	}
	if (begin_write(q, false, what, cause) != 0)
		return HS_Q_ERROR;
	if ((st = held_stmt(q, S_FACTS, id, token, what, cause))) {
		sqlite3_bind_int64(st, 3, size);
		sqlite3_bind_int64(st, 4, mtime_ns);
		sqlite3_bind_int64(st, 5, inode);
		if (sha256 && sha256[0])
			sqlite3_bind_text(st, 6, sha256, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 6);
		rc = held_update(q, st, id, token, NEED_NOTHING, what, cause);
	}
	return held_end(q, rc, what, cause);
}

int hs_queue_set_facts(struct hs_queue *q, int64_t id, int64_t token, int64_t size,
		       int64_t mtime_ns, int64_t inode, const char *sha256, char **cause)
{
	/* Unsynced: the uploader reads the facts from the file again after a
	 * restart; the commit that completes the job syncs them with it. */
	return set_facts(q, id, token, size, mtime_ns, inode, sha256, cause);
}

static int clear_parts(struct hs_queue *q, int64_t id, const char *what, char **cause)
{
	sqlite3_stmt *st = hs_sqldb_stmt(&q->sql, S_PARTS_CLEAR, what, cause);

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	return hs_sqldb_run(&q->sql, st, what, cause);
}

int hs_queue_complete(struct hs_queue *q, int64_t id, int64_t token, const char *file_id,
		      int64_t now, bool durable, char **cause)
{
	const char *what = "completing a job";
	sqlite3_stmt *st, *ledger;
	int rc;

	if (begin_write(q, durable, what, cause) != 0)
		return HS_Q_ERROR;
	if (!(st = held_stmt(q, S_DONE, id, token, what, cause)) ||
	    !(ledger = hs_sqldb_stmt(&q->sql, S_LEDGER_PUT, what, cause)))
		goto fail;
	sqlite3_bind_int64(st, 3, now);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) { /* nothing changed */
		hs_sqldb_finish(st);
		rc = unheld(q, id, token, NEED_SHA256, what, cause);
		hs_sqldb_rollback(&q->sql);
		return rc;
	}
	if (rc != SQLITE_ROW) {
		hs_sqldb_cause(&q->sql, cause, what);
		hs_sqldb_finish(st);
		goto fail;
	}
	/* The RETURNING row stays valid until the statement is stepped again. */
	sqlite3_bind_value(ledger, 1, sqlite3_column_value(st, 0));
	sqlite3_bind_value(ledger, 2, sqlite3_column_value(st, 1));
	sqlite3_bind_int64(ledger, 3, sqlite3_column_int64(st, 2));
	sqlite3_bind_int64(ledger, 4, sqlite3_column_int64(st, 3));
	sqlite3_bind_int64(ledger, 5, sqlite3_column_int64(st, 4));
	if (file_id)
		sqlite3_bind_text(ledger, 6, file_id, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(ledger, 6);
	sqlite3_bind_int64(ledger, 7, now);
	if (hs_sqldb_run(&q->sql, st, what, cause) != 0) {
		hs_sqldb_finish(ledger);
		goto fail;
	}
	if (hs_sqldb_run(&q->sql, ledger, "recording the upload in the ledger", cause) != 0 ||
	    clear_parts(q, id, what, cause) != 0)
		goto fail;
	return hs_sqldb_commit(&q->sql, what, cause) == 0 ? HS_Q_OK : HS_Q_ERROR;
fail:
	hs_sqldb_rollback(&q->sql);
	return HS_Q_ERROR;
}

static int finish_job(struct hs_queue *q, int64_t id, int64_t token, const char *state,
		      const char *why, int64_t now, const char *what, char **cause)
{
	sqlite3_stmt *st;
	int rc = HS_Q_ERROR;

	if (begin_write(q, true, what, cause) != 0)
		return HS_Q_ERROR;
	if ((st = held_stmt(q, S_FINISH, id, token, what, cause))) {
		sqlite3_bind_int64(st, 3, now);
		sqlite3_bind_text(st, 4, state, -1, SQLITE_STATIC);
		if (why)
			sqlite3_bind_text(st, 5, why, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 5);
		rc = held_update(q, st, id, token, NEED_NOTHING, what, cause);
		if (rc == HS_Q_OK && clear_parts(q, id, what, cause) != 0)
			rc = HS_Q_ERROR;
		if (rc == HS_Q_OK && strcmp(state, "skipped") == 0) {
			if (!(st = hs_sqldb_stmt(&q->sql, S_LEDGER_TOUCH, what, cause)))
				rc = HS_Q_ERROR;
			else
				sqlite3_bind_int64(st, 1, id);
			if (st && hs_sqldb_run(&q->sql, st, what, cause) != 0)
				rc = HS_Q_ERROR;
		}
	}
	return held_end(q, rc, what, cause);
}

int hs_queue_skip(struct hs_queue *q, int64_t id, int64_t token, int64_t now, char **cause)
{
	return finish_job(q, id, token, "skipped", NULL, now, "skipping a job", cause);
}

int hs_queue_gone(struct hs_queue *q, int64_t id, int64_t token, const char *why, int64_t now,
		  char **cause)
{
	return finish_job(q, id, token, "gone", why, now, "marking a job gone", cause);
}

int hs_queue_fail(struct hs_queue *q, int64_t id, int64_t token, const char *why, bool permanent,
		  int64_t now, const struct hs_backoff *backoff, unsigned max_attempts,
		  uint64_t rnd, enum hs_job_state *ret_state, char **cause)
{
	const char *what = "recording a failure";
	sqlite3_stmt *st;
	int64_t attempts;
	bool dead;
	int rc;

	if (begin_write(q, true, what, cause) != 0)
		return HS_Q_ERROR;
	if (!(st = held_stmt(q, S_ATTEMPTS, id, token, what, cause)))
		goto fail;
	rc = sqlite3_step(st);
	attempts = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		hs_sqldb_cause(&q->sql, cause, what);
	hs_sqldb_finish(st);
	if (rc == SQLITE_DONE) {
		rc = unheld(q, id, token, NEED_NOTHING, what, cause);
		hs_sqldb_rollback(&q->sql);
		return rc;
	}
	if (rc != SQLITE_ROW)
		goto fail;

	if (attempts < UINT_MAX)
		attempts++;
	dead = permanent || attempts >= (int64_t)max_attempts;
	if (!(st = held_stmt(q, S_FAIL, id, token, what, cause)))
		goto fail;
	sqlite3_bind_text(st, 3, dead ? "dead" : "failed", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, attempts);
	if (dead)
		sqlite3_bind_null(st, 5);
	else
		sqlite3_bind_int64(
		    st, 5, add_sat(now, hs_backoff_delay(backoff, (unsigned)attempts, rnd)));
	if (why)
		sqlite3_bind_text(st, 6, why, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 6);
	sqlite3_bind_int64(st, 7, now);
	rc = held_update(q, st, id, token, NEED_NOTHING, what, cause);
	if (rc == HS_Q_OK && ret_state)
		*ret_state = dead ? HS_JOB_DEAD : HS_JOB_FAILED;
	return held_end(q, rc, what, cause);
fail:
	hs_sqldb_rollback(&q->sql);
	return HS_Q_ERROR;
}

int hs_queue_release(struct hs_queue *q, int64_t id, int64_t token, int64_t at, char **cause)
{
	const char *what = "releasing a job";
	sqlite3_stmt *st;
	int rc = HS_Q_ERROR;

	if (begin_write(q, true, what, cause) != 0)
		return HS_Q_ERROR;
	if ((st = held_stmt(q, S_RELEASE, id, token, what, cause))) {
		sqlite3_bind_int64(st, 3, at);
		rc = held_update(q, st, id, token, NEED_NOTHING, what, cause);
	}
	return held_end(q, rc, what, cause);
}

/* ---- multipart --------------------------------------------------------------- */

int hs_queue_mp_begin(struct hs_queue *q, int64_t id, int64_t token, const char *upload_id,
		      int64_t part_size, uint32_t part_count, bool durable, char **cause)
{
	const char *what = "recording a multipart session";
	sqlite3_stmt *st;
	int rc = HS_Q_ERROR;

	if (!upload_id || !upload_id[0] || part_size <= 0 || part_count == 0) {
		set_cause(cause, "%s: needs an upload id, a part size and a part count", what);
		return HS_Q_ERROR;
	}
	if (begin_write(q, durable, what, cause) != 0)
		return HS_Q_ERROR;
	if ((st = held_stmt(q, S_MP_BEGIN, id, token, what, cause))) {
		sqlite3_bind_text(st, 3, upload_id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, part_size);
		sqlite3_bind_int64(st, 5, part_count);
		rc = held_update(q, st, id, token, NEED_NOTHING, what, cause);
		if (rc == HS_Q_OK && clear_parts(q, id, what, cause) != 0)
			rc = HS_Q_ERROR;
	}
	return held_end(q, rc, what, cause);
}

int hs_queue_mp_part_done(struct hs_queue *q, int64_t id, int64_t token, const struct hs_part *part,
			  bool durable, char **cause)
{
	const char *what = "recording a finished part";
	sqlite3_stmt *st;
	size_t len = strnlen(part->etag, sizeof(part->etag));
	int rc = HS_Q_ERROR;

	if (part->number == 0 || part->size < 0 || len == sizeof(part->etag)) {
		set_cause(cause, "%s: bad part (number %u, size %lld)", what,
			  (unsigned)part->number, (long long)part->size);
		return HS_Q_ERROR;
	}
	if (begin_write(q, durable, what, cause) == 0) {
		if ((st = held_stmt(q, S_MP_PART, id, token, what, cause))) {
			sqlite3_bind_int64(st, 3, part->number);
			sqlite3_bind_int64(st, 4, part->size);
			sqlite3_bind_text(st, 5, part->etag, (int)len, SQLITE_STATIC);
			rc = held_update(q, st, id, token, NEED_SESSION, what, cause);
		}
		rc = held_end(q, rc, what, cause);
	}
	return rc;
}

int hs_queue_mp_reset(struct hs_queue *q, int64_t id, int64_t token, char **cause)
{
	const char *what = "dropping a multipart session";
	sqlite3_stmt *st;
	int rc = HS_Q_ERROR;

	if (begin_write(q, true, what, cause) != 0)
		return HS_Q_ERROR;
	if ((st = held_stmt(q, S_MP_RESET, id, token, what, cause))) {
		rc = held_update(q, st, id, token, NEED_NOTHING, what, cause);
		if (rc == HS_Q_OK && clear_parts(q, id, what, cause) != 0)
			rc = HS_Q_ERROR;
	}
	return held_end(q, rc, what, cause);
}

int hs_queue_mp_parts(struct hs_queue *q, int64_t id, struct hs_part **ret, size_t *ret_n,
		      char **cause)
{
	const char *what = "reading the finished parts";
	struct hs_part *parts = NULL, *grown;
	size_t n = 0, alloc = 0;
	sqlite3_stmt *st;
	int rc;

	*ret = NULL;
	*ret_n = 0;
	if (!(st = hs_sqldb_stmt(&q->sql, S_MP_PARTS, what, cause)))
		return HS_Q_ERROR;
	sqlite3_bind_int64(st, 1, id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *etag = sqlite3_column_text(st, 2);
		if (n == alloc) {
			alloc = alloc ? alloc * 2 : 16;
			if (!(grown = realloc(parts, alloc * sizeof(*parts)))) {
				set_cause(cause, "%s: out of memory", what);
				goto fail;
			}
			parts = grown;
		}
		memset(&parts[n], 0, sizeof(parts[n]));
		parts[n].number = (uint32_t)sqlite3_column_int64(st, 0);
		parts[n].size = sqlite3_column_int64(st, 1);
		if (etag)
			snprintf(parts[n].etag, sizeof(parts[n].etag), "%s", (const char *)etag);
		n++;
	}
	if (rc != SQLITE_DONE) {
		hs_sqldb_cause(&q->sql, cause, what);
		goto fail;
	}
	hs_sqldb_finish(st);
	*ret = parts;
	*ret_n = n;
	return HS_Q_OK;
fail:
	hs_sqldb_finish(st);
	free(parts);
	return HS_Q_ERROR;
}

/* ---- the ledger -------------------------------------------------------------- */

static int ledger_query(struct hs_queue *q, sqlite3_stmt *st, bool *ret, const char *what,
			char **cause)
{
	int rc = sqlite3_step(st);

	*ret = rc == SQLITE_ROW && sqlite3_column_int(st, 0) == 1;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		hs_sqldb_cause(&q->sql, cause, what);
		hs_sqldb_finish(st);
		return HS_Q_ERROR;
	}
	hs_sqldb_finish(st);
	return HS_Q_OK;
}

int hs_queue_ledger_has(struct hs_queue *q, const char *remote_name, const char *sha256,
			bool *ret_found, char **cause)
{
	const char *what = "reading the ledger";
	sqlite3_stmt *st = hs_sqldb_stmt(&q->sql, S_LEDGER_HAS, what, cause);

	*ret_found = false;
	if (!st)
		return HS_Q_ERROR;
	sqlite3_bind_text(st, 1, remote_name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, sha256, -1, SQLITE_STATIC);
	return ledger_query(q, st, ret_found, what, cause);
}

int hs_queue_ledger_same_facts(struct hs_queue *q, const char *remote_name, int64_t size,
			       int64_t mtime_ns, int64_t inode, bool *ret_same, char **cause)
{
	const char *what = "reading the ledger";
	sqlite3_stmt *st = hs_sqldb_stmt(&q->sql, S_LEDGER_FACTS, what, cause);

	*ret_same = false;
	if (!st)
		return HS_Q_ERROR;
	sqlite3_bind_text(st, 1, remote_name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, size);
	sqlite3_bind_int64(st, 3, mtime_ns);
	sqlite3_bind_int64(st, 4, inode);
	return ledger_query(q, st, ret_same, what, cause);
}

int hs_queue_ledger_by_facts(struct hs_queue *q, const char *prefix, int64_t size, int64_t mtime_ns,
			     int64_t inode, char **ret_name, char **cause)
{
	const char *what = "reading the ledger";
	sqlite3_stmt *st = hs_sqldb_stmt(&q->sql, S_LEDGER_BY_FACTS, what, cause);
	int rc;

	*ret_name = NULL;
	if (!st)
		return HS_Q_ERROR;
	sqlite3_bind_int64(st, 1, size);
	sqlite3_bind_int64(st, 2, mtime_ns);
	sqlite3_bind_int64(st, 3, inode);
	sqlite3_bind_text(st, 4, prefix ? prefix : "", -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		if (name && !(*ret_name = strdup(name))) {
			hs_sqldb_finish(st);
			set_cause(cause, "%s: out of memory", what);
			return HS_Q_ERROR;
		}
	} else if (rc != SQLITE_DONE) {
		hs_sqldb_cause(&q->sql, cause, what);
		hs_sqldb_finish(st);
		return HS_Q_ERROR;
	}
	hs_sqldb_finish(st);
	return HS_Q_OK;
}

int hs_queue_seen(struct hs_queue *q, const struct hs_job_spec *spec, enum hs_seen *ret,
		  char **cause)
{
	const char *what = "looking up a file";
	sqlite3_stmt *st = hs_sqldb_stmt(&q->sql, S_SEEN, what, cause);
	const char *state;
	int rc;

	*ret = HS_SEEN_NEW;
	if (!st)
		return HS_Q_ERROR;
	sqlite3_bind_text(st, 1, spec->path, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, spec->size);
	sqlite3_bind_int64(st, 3, spec->mtime_ns);
	sqlite3_bind_int64(st, 4, spec->inode);
	sqlite3_bind_text(st, 5, spec->remote_name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		hs_sqldb_cause(&q->sql, cause, what);
		hs_sqldb_finish(st);
		return HS_Q_ERROR;
	}
	state = (const char *)sqlite3_column_text(st, 0);
	if (state && strcmp(state, "done") != 0 && strcmp(state, "skipped") != 0 &&
	    strcmp(state, "gone") != 0)
		*ret = HS_SEEN_PENDING; /* waiting, or dead until retried */
	else if (sqlite3_column_int(st, 1) == 1)
		*ret = HS_SEEN_STORED;
	hs_sqldb_finish(st);
	return HS_Q_OK;
}

int hs_queue_seen_many(struct hs_queue *q, const struct hs_job_spec *specs, size_t n,
		       enum hs_seen *ret, char **cause)
{
	int rc = HS_Q_OK;

	/* One read transaction: a scan asks this of every file of a tree. */
	if (n > 1 && hs_sqldb_begin(&q->sql, false, "looking up files", cause) != 0)
		return HS_Q_ERROR;
	for (size_t i = 0; i < n && rc == HS_Q_OK; i++)
		rc = hs_queue_seen(q, &specs[i], &ret[i], cause);
	if (n > 1)
		hs_sqldb_commit(&q->sql, "looking up files", NULL);
	return rc;
}

int hs_queue_prune(struct hs_queue *q, int64_t before, size_t *ret_n, char **cause)
{
	const char *what = "pruning finished jobs";
	sqlite3_stmt *st;

	if (ret_n)
		*ret_n = 0;
	if (begin_write(q, true, what, cause) != 0)
		return HS_Q_ERROR;
	if (!(st = hs_sqldb_stmt(&q->sql, S_PRUNE, what, cause)))
		goto fail;
	sqlite3_bind_int64(st, 1, before);
	if (hs_sqldb_run(&q->sql, st, what, cause) != 0)
		goto fail;
	if (ret_n)
		*ret_n = (size_t)sqlite3_changes(q->sql.db);
	return hs_sqldb_commit(&q->sql, what, cause) == 0 ? HS_Q_OK : HS_Q_ERROR;
fail:
	hs_sqldb_rollback(&q->sql);
	return HS_Q_ERROR;
}

/* ---- retry ------------------------------------------------------------------- */

int hs_queue_retry(struct hs_queue *q, int64_t id, int64_t now, size_t *ret_n, char **cause)
{
	const char *what = "retrying jobs";
	sqlite3_stmt *ids, *one;
	int64_t *list = NULL, *grown;
	size_t n = 0, alloc = 0, changed = 0;
	int rc;

	if (ret_n)
		*ret_n = 0;
	if (begin_write(q, true, what, cause) != 0)
		return HS_Q_ERROR;
	if (!(ids = hs_sqldb_stmt(&q->sql, S_RETRY_IDS, what, cause)) ||
	    !(one = hs_sqldb_stmt(&q->sql, S_RETRY_ONE, what, cause)))
		goto fail;
	/* Collected first: the updates must not run under the open SELECT. */
	sqlite3_bind_int64(ids, 1, id < 0 ? INT64_MIN : id);
	sqlite3_bind_int64(ids, 2, id < 0 ? INT64_MAX : id);
	while ((rc = sqlite3_step(ids)) == SQLITE_ROW) {
		if (n == alloc) {
			alloc = alloc ? alloc * 2 : 64;
			if (!(grown = realloc(list, alloc * sizeof(*list)))) {
				set_cause(cause, "%s: out of memory", what);
				hs_sqldb_finish(ids);
				goto fail;
			}
			list = grown;
		}
		list[n++] = sqlite3_column_int64(ids, 0);
	}
	if (rc != SQLITE_DONE) {
		hs_sqldb_cause(&q->sql, cause, what);
		hs_sqldb_finish(ids);
		goto fail;
	}
	hs_sqldb_finish(ids);
	for (size_t i = 0; i < n; i++) {
		sqlite3_bind_int64(one, 1, list[i]);
		sqlite3_bind_int64(one, 2, now);
		if (hs_sqldb_run(&q->sql, one, what, cause) != 0)
			goto fail;
		changed += (size_t)sqlite3_changes(q->sql.db);
	}
	free(list);
	list = NULL;
	if (hs_sqldb_commit(&q->sql, what, cause) != 0)
		return HS_Q_ERROR;
	if (ret_n)
		*ret_n = changed;
	return HS_Q_OK;
fail:
	free(list);
	hs_sqldb_rollback(&q->sql);
	return HS_Q_ERROR;
}

/* ---- the operator's controls ------------------------------------------------ */

int hs_queue_pause_get(struct hs_queue *q, int64_t now, struct hs_pause *ret, char **cause)
{
	const char *what = "reading the pause";
	sqlite3_stmt *st = hs_sqldb_stmt(&q->sql, S_PAUSE_GET, what, cause);
	const char *by;
	int rc;

	memset(ret, 0, sizeof(*ret));
	if (!st)
		return HS_Q_ERROR;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		ret->until = sqlite3_column_int64(st, 0);
		by = (const char *)sqlite3_column_text(st, 1);
		snprintf(ret->set_by, sizeof(ret->set_by), "%s", by ? by : "");
		ret->set_at = sqlite3_column_int64(st, 2);
		ret->on = ret->until == 0 || ret->until > now;
	} else if (rc != SQLITE_DONE) {
		hs_sqldb_cause(&q->sql, cause, what);
	}
	hs_sqldb_finish(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? HS_Q_OK : HS_Q_ERROR;
}

/* Runs one of the queue's statements in a write transaction; *ret_n (may
 * be NULL): rows changed. */
static int write_one(struct hs_queue *q, sqlite3_stmt *st, const char *what, size_t *ret_n,
		     char **cause)
{
	if (hs_sqldb_run(&q->sql, st, what, cause) != 0) {
		hs_sqldb_rollback(&q->sql);
		return HS_Q_ERROR;
	}
	if (ret_n)
		*ret_n = (size_t)sqlite3_changes(q->sql.db);
	return hs_sqldb_commit(&q->sql, what, cause) == 0 ? HS_Q_OK : HS_Q_ERROR;
}

int hs_queue_pause_set(struct hs_queue *q, int64_t until, const char *by, int64_t now, char **cause)
{
	const char *what = "pausing uploads";
	sqlite3_stmt *st;

	if (until < 0 || !by) {
		set_cause(cause, "%s: no valid end or user", what);
		return HS_Q_ERROR;
	}
	if (begin_write(q, true, what, cause) != 0)
		return HS_Q_ERROR;
	if (!(st = hs_sqldb_stmt(&q->sql, S_PAUSE_SET, what, cause))) {
		hs_sqldb_rollback(&q->sql);
		return HS_Q_ERROR;
	}
	sqlite3_bind_int64(st, 1, until);
	sqlite3_bind_text(st, 2, by, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, now);
	return write_one(q, st, what, NULL, cause);
}

int hs_queue_resume(struct hs_queue *q, bool *ret_was, char **cause)
{
	const char *what = "resuming uploads";
	sqlite3_stmt *st;
	size_t n = 0;
	int rc;

	if (begin_write(q, true, what, cause) != 0)
		return HS_Q_ERROR;
	if (!(st = hs_sqldb_stmt(&q->sql, S_PAUSE_CLEAR, what, cause))) {
		hs_sqldb_rollback(&q->sql);
		return HS_Q_ERROR;
	}
	rc = write_one(q, st, what, &n, cause);
	if (rc == HS_Q_OK && ret_was)
		*ret_was = n > 0;
	return rc;
}

int hs_queue_cancel(struct hs_queue *q, int64_t id, const char *by, int64_t now, char **ret_remote,
		    char **cause)
{
	const char *what = "cancelling a job";
	const unsigned char *name;
	sqlite3_stmt *st;
	char *remote = NULL;
	int rc;

	if (ret_remote)
		*ret_remote = NULL;
	if (!by || !by[0]) {
		set_cause(cause, "%s: no user named", what);
		return HS_Q_ERROR;
	}
	if (begin_write(q, true, what, cause) != 0)
		return HS_Q_ERROR;
	if (!(st = hs_sqldb_stmt(&q->sql, S_CANCEL, what, cause)))
		goto fail;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, by, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, now);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && (name = sqlite3_column_text(st, 0)) &&
	    !(remote = strdup((const char *)name))) {
		set_cause(cause, "%s: out of memory", what);
		hs_sqldb_finish(st);
		goto fail;
	}
	if (rc == SQLITE_ROW)
		rc = sqlite3_step(st);
	if (rc != SQLITE_DONE) {
		hs_sqldb_cause(&q->sql, cause, what);
		hs_sqldb_finish(st);
		goto fail;
	}
	hs_sqldb_finish(st);
	if (!remote) {
		hs_sqldb_rollback(&q->sql);
		return HS_Q_EMPTY;
	}
	if (clear_parts(q, id, what, cause) != 0 || hs_sqldb_commit(&q->sql, what, cause) != 0) {
		free(remote);
		goto fail;
	}
	if (ret_remote)
		*ret_remote = remote;
	else
		free(remote);
	return HS_Q_OK;
fail:
	hs_sqldb_rollback(&q->sql);
	return HS_Q_ERROR;
}

int hs_queue_purge(struct hs_queue *q, enum hs_job_state state, int64_t before, size_t *ret_n,
		   char **cause)
{
	const char *what = "purging jobs";
	sqlite3_stmt *st;

	if (ret_n)
		*ret_n = 0;
	if (state != HS_JOB_DONE && state != HS_JOB_DEAD) {
		set_cause(cause, "%s: only done or dead jobs may be purged", what);
		return HS_Q_ERROR;
	}
	if (begin_write(q, true, what, cause) != 0)
		return HS_Q_ERROR;
	if (!(st = hs_sqldb_stmt(&q->sql, S_PURGE, what, cause))) {
		hs_sqldb_rollback(&q->sql);
		return HS_Q_ERROR;
	}
	sqlite3_bind_text(st, 1, state_names[state], -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, before);
	return write_one(q, st, what, ret_n, cause);
}

/* ---- read-only views --------------------------------------------------------- */

int hs_queue_counts(struct hs_queue *q, int64_t ret_counts[HS_JOB_NSTATES], char **cause)
{
	const char *what = "counting jobs";
	sqlite3_stmt *st = hs_sqldb_stmt(&q->sql, S_COUNTS, what, cause);
	int rc;

	for (int s = 0; s < HS_JOB_NSTATES; s++)
		ret_counts[s] = 0;
	if (!st)
		return HS_Q_ERROR;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int s = hs_job_state_parse((const char *)sqlite3_column_text(st, 0));
		if (s >= 0)
			ret_counts[s] = sqlite3_column_int64(st, 1);
	}
	if (rc != SQLITE_DONE) {
		hs_sqldb_cause(&q->sql, cause, what);
		hs_sqldb_finish(st);
		return HS_Q_ERROR;
	}
	hs_sqldb_finish(st);
	return HS_Q_OK;
}

static int list_jobs(struct hs_queue *q, int state, int64_t since, size_t limit, bool newest_first,
		     int (*fn)(const struct hs_job *job, void *arg), void *arg, char **cause)
{
	const char *what = "listing jobs";
	sqlite3_stmt *st = NULL;
	struct hs_job *job;
	int rc;

	if (state >= HS_JOB_NSTATES) {
		set_cause(cause, "%s: no such state %d", what, state);
		return HS_Q_ERROR;
	}
	/* Not cached: fn may call back into the queue, even hs_queue_list. */
	if (sqlite3_prepare_v2(
		q->sql.db,
		newest_first ? "SELECT " JOB_COLUMNS " FROM jobs WHERE (?1 IS NULL OR state = ?1) "
			       "AND updated_at >= ?3 ORDER BY id DESC LIMIT ?2"
			     : "SELECT " JOB_COLUMNS " FROM jobs WHERE (?1 IS NULL OR state = ?1) "
			       "AND updated_at >= ?3 ORDER BY id LIMIT ?2",
		-1, &st, NULL) != SQLITE_OK) {
		hs_sqldb_cause(&q->sql, cause, what);
		goto fail;
	}
	if (state >= 0)
		sqlite3_bind_text(st, 1, state_names[state], -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, limit == 0 || limit > INT64_MAX ? -1 : (int64_t)limit);
	sqlite3_bind_int64(st, 3, since);
	for (;;) {
		int stop;

		rc = sqlite3_step(st);
		if (rc == SQLITE_DONE)
			break;
		if (rc != SQLITE_ROW) {
			hs_sqldb_cause(&q->sql, cause, what);
			goto fail;
		}
		if (!(job = job_from_row(st))) {
			set_cause(cause, "%s: out of memory", what);
			goto fail;
		}
		stop = fn(job, arg);
		hs_job_free(job);
		if (stop)
			break;
	}
	sqlite3_finalize(st);
	return HS_Q_OK;
fail:
	sqlite3_finalize(st);
	return HS_Q_ERROR;
}

int hs_queue_list(struct hs_queue *q, int state, size_t limit,
		  int (*fn)(const struct hs_job *job, void *arg), void *arg, char **cause)
{
	return list_jobs(q, state, INT64_MIN, limit, false, fn, arg, cause);
}

int hs_queue_list_recent(struct hs_queue *q, int state, int64_t since, size_t latest,
			 int (*fn)(const struct hs_job *job, void *arg), void *arg, char **cause)
{
	return list_jobs(q, state, since, latest, true, fn, arg, cause);
}

int hs_queue_get(struct hs_queue *q, int64_t id, struct hs_job **ret, char **cause)
{
	const char *what = "reading a job";
	sqlite3_stmt *st = hs_sqldb_stmt(&q->sql, S_GET, what, cause);
	int rc;

	*ret = NULL;
	if (!st)
		return HS_Q_ERROR;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (!(*ret = job_from_row(st))) {
			set_cause(cause, "%s: out of memory", what);
			hs_sqldb_finish(st);
			return HS_Q_ERROR;
		}
		hs_sqldb_finish(st);
		return HS_Q_OK;
	}
	if (rc != SQLITE_DONE)
		hs_sqldb_cause(&q->sql, cause, what);
	hs_sqldb_finish(st);
	return rc == SQLITE_DONE ? HS_Q_EMPTY : HS_Q_ERROR;
}

/* ---- after-upload actions still to do ---------------------------------------- */

struct hs_after_entry *hs_after_entries_free(struct hs_after_entry *e, size_t n)
{
	for (size_t i = 0; e && i < n; i++) {
		free(e[i].path);
		free(e[i].watch_root);
		free(e[i].last_error);
	}
	free(e);
	return NULL;
}

int hs_queue_after_defer(struct hs_queue *q, const struct hs_job_spec *spec, int64_t job_id,
			 const char *why, int64_t now, const struct hs_backoff *backoff,
			 uint64_t rnd, int64_t *ret_due, char **cause)
{
	const char *what = "keeping an after-upload action";
	sqlite3_stmt *st;
	int64_t attempts = 1, since = now, due;
	int rc;

	if (!spec->path || !spec->path[0] || !why || spec->size < 0) {
		set_cause(cause, "%s: it needs a path, a size >= 0 and a reason", what);
		return HS_Q_ERROR;
	}
	if (begin_write(q, true, what, cause) != 0)
		return HS_Q_ERROR;
	if (!(st = hs_sqldb_stmt(&q->sql, S_AFTER_GET, what, cause)))
		goto fail;
	sqlite3_bind_text(st, 1, spec->path, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, spec->size);
	sqlite3_bind_int64(st, 3, spec->mtime_ns);
	sqlite3_bind_int64(st, 4, spec->inode);
	rc = sqlite3_step(st);
	/* The same file failing again counts on; a new version starts over. */
	if (rc == SQLITE_ROW && sqlite3_column_int(st, 2)) {
		attempts = sqlite3_column_int64(st, 0) + 1;
		since = sqlite3_column_int64(st, 1);
		if (job_id <= 0 && sqlite3_column_type(st, 3) != SQLITE_NULL)
			job_id = sqlite3_column_int64(st, 3);
	} else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		hs_sqldb_cause(&q->sql, cause, what);
		hs_sqldb_finish(st);
		goto fail;
	}
	hs_sqldb_finish(st);
	if (attempts > UINT_MAX)
		attempts = UINT_MAX;
	due = add_sat(now, hs_backoff_delay(backoff, (unsigned)attempts, rnd));
	if (!(st = hs_sqldb_stmt(&q->sql, S_AFTER_PUT, what, cause)))
		goto fail;
	sqlite3_bind_text(st, 1, spec->path, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, spec->watch_root ? spec->watch_root : "", -1, SQLITE_TRANSIENT);
	if (job_id > 0)
		sqlite3_bind_int64(st, 3, job_id);
	sqlite3_bind_int64(st, 4, spec->size);
	sqlite3_bind_int64(st, 5, spec->mtime_ns);
	sqlite3_bind_int64(st, 6, spec->inode);
	sqlite3_bind_int64(st, 7, attempts);
	sqlite3_bind_int64(st, 8, due);
	sqlite3_bind_text(st, 9, why, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 10, since);
	if (write_one(q, st, what, NULL, cause) != HS_Q_OK)
		return HS_Q_ERROR;
	if (ret_due)
		*ret_due = due;
	return HS_Q_OK;
fail:
	hs_sqldb_rollback(&q->sql);
	return HS_Q_ERROR;
}

int hs_queue_after_has(struct hs_queue *q, const struct hs_job_spec *spec, bool *ret_has,
		       bool *ret_same, char **cause)
{
	const char *what = "looking up an after-upload action";
	sqlite3_stmt *st = hs_sqldb_stmt(&q->sql, S_AFTER_GET, what, cause);
	int rc;

	*ret_has = *ret_same = false;
	if (!st)
		return HS_Q_ERROR;
	sqlite3_bind_text(st, 1, spec->path, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, spec->size);
	sqlite3_bind_int64(st, 3, spec->mtime_ns);
	sqlite3_bind_int64(st, 4, spec->inode);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*ret_has = true;
		*ret_same = sqlite3_column_int(st, 2) != 0;
	}
	hs_sqldb_finish(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		hs_sqldb_cause(&q->sql, cause, what);
		return HS_Q_ERROR;
	}
	return HS_Q_OK;
}

int hs_queue_after_clear(struct hs_queue *q, const char *path, bool *ret_was, char **cause)
{
	const char *what = "ending an after-upload action";
	sqlite3_stmt *st = hs_sqldb_stmt(&q->sql, S_AFTER_GET, what, cause);
	size_t n = 0;
	int rc;

	if (ret_was)
		*ret_was = false;
	if (!st)
		return HS_Q_ERROR;
	/* Read first: nearly every action succeeds with nothing to clear, and
	 * a write transaction would cost an fsync each. */
	sqlite3_bind_text(st, 1, path, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	hs_sqldb_finish(st);
	if (rc == SQLITE_DONE)
		return HS_Q_OK;
	if (rc != SQLITE_ROW) {
		hs_sqldb_cause(&q->sql, cause, what);
		return HS_Q_ERROR;
	}
	if (begin_write(q, true, what, cause) != 0)
		return HS_Q_ERROR;
	if (!(st = hs_sqldb_stmt(&q->sql, S_AFTER_CLEAR, what, cause))) {
		hs_sqldb_rollback(&q->sql);
		return HS_Q_ERROR;
	}
	sqlite3_bind_text(st, 1, path, -1, SQLITE_TRANSIENT);
	rc = write_one(q, st, what, &n, cause);
	if (rc == HS_Q_OK && ret_was)
		*ret_was = n > 0;
	return rc;
}

int hs_queue_after_due(struct hs_queue *q, int64_t now, size_t limit, struct hs_after_entry **ret,
		       size_t *ret_n, char **cause)
{
	const char *what = "listing after-upload actions";
	sqlite3_stmt *st = hs_sqldb_stmt(&q->sql, S_AFTER_DUE, what, cause);
	struct hs_after_entry *e = NULL;
	size_t n = 0, cap = 0;
	int rc;

	*ret = NULL;
	*ret_n = 0;
	if (!st)
		return HS_Q_ERROR;
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int64(st, 2, limit == 0 || limit > INT64_MAX ? -1 : (int64_t)limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		bool oom = false;

		if (n == cap) {
			size_t c = cap ? cap * 2 : 16;
			struct hs_after_entry *m = reallocarray(e, c, sizeof(*e));
			if (!m)
				goto oom;
			e = m;
			cap = c;
		}
		struct hs_after_entry *x = &e[n];
		memset(x, 0, sizeof(*x));
		n++;
		x->path = column_dup(st, 0, &oom);
		x->watch_root = column_dup(st, 1, &oom);
		x->job_id =
		    sqlite3_column_type(st, 2) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 2);
		x->size = sqlite3_column_int64(st, 3);
		x->mtime_ns = sqlite3_column_int64(st, 4);
		x->inode = sqlite3_column_int64(st, 5);
		x->attempts = (unsigned)sqlite3_column_int64(st, 6);
		x->due_at = sqlite3_column_int64(st, 7);
		x->last_error = column_dup(st, 8, &oom);
		x->since = sqlite3_column_int64(st, 9);
		if (oom || !x->path || !x->watch_root || !x->last_error)
			goto oom;
	}
	if (rc != SQLITE_DONE) {
		hs_sqldb_cause(&q->sql, cause, what);
		hs_sqldb_finish(st);
		hs_after_entries_free(e, n);
		return HS_Q_ERROR;
	}
	hs_sqldb_finish(st);
	*ret = e;
	*ret_n = n;
	return HS_Q_OK;
oom:
	hs_sqldb_finish(st);
	hs_after_entries_free(e, n);
	set_cause(cause, "%s: out of memory", what);
	return HS_Q_ERROR;
}

int hs_queue_after_next_due(struct hs_queue *q, int64_t *ret_at, char **cause)
{
	const char *what = "next after-upload action";
	sqlite3_stmt *st = hs_sqldb_stmt(&q->sql, S_AFTER_NEXT, what, cause);
	int rc;

	*ret_at = -1;
	if (!st)
		return HS_Q_ERROR;
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		hs_sqldb_cause(&q->sql, cause, what);
		hs_sqldb_finish(st);
		return HS_Q_ERROR;
	}
	if (sqlite3_column_type(st, 0) != SQLITE_NULL)
		*ret_at = sqlite3_column_int64(st, 0);
	hs_sqldb_finish(st);
	return HS_Q_OK;
}

int hs_queue_after_due_now(struct hs_queue *q, int64_t now, size_t *ret_n, char **cause)
{
	const char *what = "making after-upload actions due";
	sqlite3_stmt *st;

	if (begin_write(q, true, what, cause) != 0)
		return HS_Q_ERROR;
	if (!(st = hs_sqldb_stmt(&q->sql, S_AFTER_NOW, what, cause))) {
		hs_sqldb_rollback(&q->sql);
		return HS_Q_ERROR;
	}
	sqlite3_bind_int64(st, 1, now);
	return write_one(q, st, what, ret_n, cause);
}

int hs_queue_after_count(struct hs_queue *q, int64_t *ret_n, char **cause)
{
	return one_time(q, S_AFTER_COUNT, "counting after-upload actions", ret_n, cause);
}
