/*
 * mirror_db: the mirror database (see mirror_db.h and
 * docs/mirror-schema.md).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "agent/cause.h"
#include "agent/mirror_db.h"
#include "queue/sqldb.h"

#define SCHEMA_VERSION 1
#define RUNS_KEPT      1000 /* mirror_runs rows; older ones are pruned */
/* "hsM1": marks the file as a healsync mirror for file(1) and for us. */
#define APPLICATION_ID 0x68734d31

/* Schema v1. The first two tables are an interface: programs outside
 * healsync read them (docs/mirror-schema.md), so they only ever gain
 * columns. */
static const char schema_v1[] =
    "CREATE TABLE patients (\n"
    "  id TEXT PRIMARY KEY NOT NULL CHECK (typeof(id) = 'text' AND id <> ''),\n"
    "  name TEXT,\n"
    "  created_at TEXT,\n"
    "  pronouns TEXT,\n"
    "  notes TEXT,\n"
    "  consent INTEGER CHECK (consent IN (0, 1)),\n"
    "  raw_json TEXT NOT NULL,\n"
    "  first_seen_at TEXT NOT NULL,\n"
    "  last_seen_at TEXT NOT NULL,\n"
    "  details_fetched_at TEXT,\n"
    "  deleted_at TEXT\n"
    ");\n"
    "CREATE TABLE mirror_runs (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  started_at TEXT NOT NULL,\n"
    "  ended_at TEXT,\n"
    "  status TEXT NOT NULL CHECK (status IN ('running', 'ok', 'failed', 'cancelled')),\n"
    "  pages INTEGER NOT NULL DEFAULT 0,\n"
    "  records INTEGER NOT NULL DEFAULT 0,\n"
    "  created INTEGER NOT NULL DEFAULT 0,\n"
    "  updated INTEGER NOT NULL DEFAULT 0,\n"
    "  deleted INTEGER NOT NULL DEFAULT 0,\n"
    "  error TEXT\n"
    ");\n"
    /* Private: the run in progress. seq is the order of first sight. */
    "CREATE TABLE mirror_staging (\n"
    "  seq INTEGER PRIMARY KEY,\n"
    "  id TEXT NOT NULL UNIQUE,\n"
    "  listed INTEGER NOT NULL DEFAULT 0,\n"
    "  want INTEGER NOT NULL DEFAULT 0,\n"
    "  fetched INTEGER NOT NULL DEFAULT 0,\n"
    "  gone INTEGER NOT NULL DEFAULT 0,\n"
    "  name TEXT,\n"
    "  created_at TEXT,\n"
    "  pronouns TEXT,\n"
    "  notes TEXT,\n"
    "  consent INTEGER,\n"
    "  raw_json TEXT NOT NULL,\n"
    "  list_json TEXT\n"
    ");\n"
    "CREATE INDEX mirror_staging_want ON mirror_staging (want, seq);\n"
    "PRAGMA application_id = 1752386865;\n"; /* APPLICATION_ID */

static const char *const migrations[SCHEMA_VERSION] = {schema_v1};

#define COLS "name, created_at, pronouns, notes, consent, raw_json"
#define SET_COLS                                                                                   \
	"name = excluded.name, created_at = excluded.created_at, "                                 \
	"pronouns = excluded.pronouns, notes = excluded.notes, consent = excluded.consent, "       \
	"raw_json = excluded.raw_json"

enum stmt_id {
	S_INTERRUPTED,
	S_STAGING_CLEAR,
	S_RUN_INSERT,
	S_BASE_STAGED,
	S_BASE_STORED,
	S_STAGE_LISTED,
	S_STAGE_FETCHED,
	S_STAGE_GONE,
	S_PLAN_ABSENT,
	S_PLAN_WANT_ABSENT,
	S_PLAN_WANT_FRESH,
	S_PLAN_WANT_REFRESH,
	S_PLAN_COUNTS,
	S_NEXT_WANTED,
	S_APPLY_COUNTS,
	S_APPLY_UPSERT,
	S_APPLY_DELETE,
	S_RUN_OK,
	S_RUN_PRUNE,
	S_RUN_END,
	S_RUN_NOTE,
	S_LIVE,
	S_LAST_RUN,
	S_LAST_OK,
	S_COUNT
};

#define RUN_COLUMNS                                                                                \
	"id, started_at, ended_at, status, pages, records, created, updated, deleted, error"

static const char *const stmt_sql[S_COUNT] = {
    [S_INTERRUPTED] = "UPDATE mirror_runs SET status = 'failed', "
		      "error = 'interrupted: the process ended during the run' "
		      "WHERE status = 'running'",
    [S_STAGING_CLEAR] = "DELETE FROM mirror_staging",
    [S_RUN_INSERT] = "INSERT INTO mirror_runs (started_at, status) VALUES (?1, 'running') "
		     "RETURNING id",
    [S_BASE_STAGED] = "SELECT list_json, raw_json FROM mirror_staging WHERE id = ?1",
    [S_BASE_STORED] = "SELECT raw_json FROM patients WHERE id = ?1",
    [S_STAGE_LISTED] =
	"INSERT INTO mirror_staging (id, listed, " COLS ", list_json) "
	"VALUES (?1, 1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
	"ON CONFLICT (id) DO UPDATE SET listed = 1, " SET_COLS ", list_json = excluded.list_json",
    [S_STAGE_FETCHED] = "UPDATE mirror_staging SET fetched = 1, gone = 0, name = ?2, "
			"created_at = ?3, pronouns = ?4, notes = ?5, consent = ?6, "
			"raw_json = ?7 WHERE id = ?1",
    [S_STAGE_GONE] = "UPDATE mirror_staging SET gone = 1, fetched = 0 WHERE id = ?1",
    [S_PLAN_ABSENT] = "INSERT INTO mirror_staging (id, listed, " COLS ") "
		      "SELECT id, 0, " COLS " FROM patients AS p WHERE deleted_at IS NULL "
		      "AND NOT EXISTS (SELECT 1 FROM mirror_staging AS s WHERE s.id = p.id) "
		      "ORDER BY rowid",
    [S_PLAN_WANT_ABSENT] = "UPDATE mirror_staging SET want = 1 WHERE listed = 0",
    [S_PLAN_WANT_FRESH] = "UPDATE mirror_staging SET want = 1 WHERE listed = 1 AND want = 0 "
			  "AND NOT EXISTS (SELECT 1 FROM patients AS p WHERE p.id = "
			  "mirror_staging.id AND p.details_fetched_at IS NOT NULL)",
    [S_PLAN_WANT_REFRESH] = "UPDATE mirror_staging SET want = 1 WHERE seq IN "
			    "(SELECT s.seq FROM mirror_staging AS s JOIN patients AS p "
			    "ON p.id = s.id WHERE s.listed = 1 AND s.want = 0 "
			    "AND p.details_fetched_at IS NOT NULL "
			    "ORDER BY p.details_fetched_at, p.rowid LIMIT ?1)",
    [S_PLAN_COUNTS] = "SELECT count(*) FROM mirror_staging WHERE listed = 1",
    /* Walks the index (want, seq): one descent per call. */
    [S_NEXT_WANTED] = "SELECT seq, id FROM mirror_staging WHERE want = 1 AND seq > ?1 "
		      "ORDER BY seq LIMIT 1",
    [S_APPLY_COUNTS] =
	"SELECT "
	"coalesce(sum(s.gone = 0 AND (p.id IS NULL OR p.deleted_at IS NOT NULL)), 0), "
	"coalesce(sum(s.gone = 0 AND p.id IS NOT NULL AND p.deleted_at IS NULL "
	"AND p.raw_json IS NOT s.raw_json), 0), "
	"coalesce(sum(s.gone = 1 AND p.id IS NOT NULL AND p.deleted_at IS NULL), 0), "
	"coalesce(sum(s.listed), 0) "
	"FROM mirror_staging AS s LEFT JOIN patients AS p ON p.id = s.id",
    /* A record seen again after it was deleted comes back to life. */
    [S_APPLY_UPSERT] =
	"INSERT INTO patients (id, " COLS ", first_seen_at, last_seen_at, "
	"details_fetched_at, deleted_at) "
	"SELECT id, " COLS ", ?1, ?1, CASE WHEN fetched THEN ?1 END, NULL "
	"FROM mirror_staging WHERE gone = 0 ORDER BY seq "
	"ON CONFLICT (id) DO UPDATE SET " SET_COLS ", last_seen_at = excluded.last_seen_at, "
	"details_fetched_at = coalesce(excluded.details_fetched_at, details_fetched_at), "
	"deleted_at = NULL",
    [S_APPLY_DELETE] = "UPDATE patients SET deleted_at = ?1 WHERE deleted_at IS NULL AND id IN "
		       "(SELECT id FROM mirror_staging WHERE gone = 1)",
    [S_RUN_OK] = "UPDATE mirror_runs SET status = 'ok', ended_at = ?2, pages = ?3, "
		 "records = ?4, created = ?5, updated = ?6, deleted = ?7, error = NULL "
		 "WHERE id = ?1 AND status = 'running'",
    [S_RUN_PRUNE] = "DELETE FROM mirror_runs WHERE id <= ?1",
    [S_RUN_END] = "UPDATE mirror_runs SET status = ?2, ended_at = ?3, error = ?4, pages = ?5, "
		  "records = (SELECT count(*) FROM mirror_staging WHERE listed = 1) "
		  "WHERE id = ?1 AND status = 'running'",
    [S_RUN_NOTE] = "UPDATE mirror_runs SET error = ?2 WHERE id = ?1",
    [S_LIVE] = "SELECT raw_json FROM patients WHERE deleted_at IS NULL ORDER BY rowid",
    [S_LAST_RUN] = "SELECT " RUN_COLUMNS " FROM mirror_runs ORDER BY id DESC LIMIT 1",
    [S_LAST_OK] = "SELECT " RUN_COLUMNS " FROM mirror_runs WHERE status = 'ok' "
		  "ORDER BY id DESC LIMIT 1",
};

struct hs_mirror_db {
	struct hs_sqldb sql;
	int lock_fd;
};

/* ---- binding ------------------------------------------------------------------ */

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

static void bind_time(sqlite3_stmt *st, int i, int64_t ms)
{
	char buf[32];

	hs_mirror_time_format(ms, buf, sizeof(buf));
	sqlite3_bind_text(st, i, buf, -1, SQLITE_TRANSIENT);
}

/* ?2..?7: the columns of row. */
static void bind_columns(sqlite3_stmt *st, const struct hs_mirror_row *row)
{
	bind_text(st, 2, row->name);
	bind_text(st, 3, row->created_at);
	bind_text(st, 4, row->pronouns);
	bind_text(st, 5, row->notes);
	if (row->consent < 0)
		sqlite3_bind_null(st, 6);
	else
		sqlite3_bind_int(st, 6, row->consent ? 1 : 0);
	sqlite3_bind_text(st, 7, row->raw_json, -1, SQLITE_TRANSIENT);
}

/* ---- time ----------------------------------------------------------------- */

void hs_mirror_time_format(int64_t ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (ms < 0 || !gmtime_r(&t, &tm)) {
		snprintf(buf, len, "1970-01-01T00:00:00.000Z");
		return;
	}
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

int64_t hs_mirror_time_parse(const char *s)
{
	struct tm tm = {0};
	int y, mo, d, h, mi, sec, msec, n = 0;
	char check[32];
	time_t t;

	if (!s || strlen(s) != 24 ||
	    sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n", &y, &mo, &d, &h, &mi, &sec, &msec, &n) !=
		7 ||
	    n != 24)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	if (t == (time_t)-1 || y < 1970)
		return -1;
	/* Round trip: refuses 2026-02-30 and the like. */
	hs_mirror_time_format((int64_t)t * 1000 + msec, check, sizeof(check));
	if (strcmp(check, s) != 0)
		return -1;
	return (int64_t)t * 1000 + msec;
}

/* ---- opening ----------------------------------------------------------------- */

/* Only one writer: "<path>.lock", held until close. A separate file, since
 * closing any descriptor of the database file itself would drop the POSIX
 * locks SQLite holds on it in this process. */
static int lock_writer(struct hs_mirror_db *db, const char *path, char **cause)
{
	char *lock_path;

	if (asprintf(&lock_path, "%s.lock", path) < 0)
		return hs_cause(cause, "%s", "out of memory");
	db->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
	if (db->lock_fd < 0) {
		hs_cause(cause, "%s: %s", lock_path, strerror(errno));
		free(lock_path);
		return HS_MDB_ERROR;
	}
	free(lock_path);
	if (flock(db->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK)
			return hs_cause(cause, "locking: %s", strerror(errno));
		hs_cause(cause, "%s", "another healsync process is mirroring into it");
		return HS_MDB_BUSY;
	}
	return HS_MDB_OK;
}

static const struct hs_sqldb_schema schema = {
    .kind = "mirror",
    .application_id = APPLICATION_ID,
    .version = SCHEMA_VERSION,
    .migrations = migrations,
};

int hs_mirror_db_open(const char *path, enum hs_mdb_mode mode, struct hs_mirror_db **ret,
		      char **cause)
{
	struct hs_mirror_db *db;
	bool write = mode == HS_MDB_WRITE;
	int64_t v;
	int rc;

	*ret = NULL;
	if (!(db = calloc(1, sizeof(*db))))
		return hs_cause(cause, "%s", "out of memory");
	db->lock_fd = -1;
	if (write) {
		if ((rc = lock_writer(db, path, cause)) != HS_MDB_OK)
			goto fail;
	} else if (access(path, F_OK) != 0) {
		rc = errno == ENOENT ? HS_MDB_EMPTY : HS_MDB_ERROR;
		hs_cause(cause, "%s", rc == HS_MDB_EMPTY ? "no mirror run yet" : strerror(errno));
		goto fail;
	}
	rc = HS_MDB_ERROR;
	if (hs_sqldb_open(&db->sql, path, &schema, write ? HS_SQLDB_WRITE : 0, stmt_sql, S_COUNT,
			  &v, cause) != 0)
		goto fail;
	if (v <= 0) {
		rc = HS_MDB_EMPTY;
		hs_cause(cause, "%s", "no mirror run yet");
		goto fail;
	}
	*ret = db;
	return HS_MDB_OK;
fail:
	hs_mirror_db_close(db);
	return rc;
}

struct hs_mirror_db *hs_mirror_db_close(struct hs_mirror_db *db)
{
	if (!db)
		return NULL;
	hs_sqldb_close(&db->sql);
	if (db->lock_fd >= 0)
		close(db->lock_fd);
	free(db);
	return NULL;
}

/* ---- a run -------------------------------------------------------------------- */

int hs_mirror_db_run_begin(struct hs_mirror_db *db, int64_t now, int64_t *ret_id, char **cause)
{
	sqlite3_stmt *st;
	int rc;

	if (hs_sqldb_begin(&db->sql, true, "starting a run", cause) != HS_MDB_OK)
		return HS_MDB_ERROR;
	if (hs_sqldb_exec(&db->sql, S_INTERRUPTED, "ending an interrupted run", cause) !=
		HS_MDB_OK ||
	    hs_sqldb_exec(&db->sql, S_STAGING_CLEAR, "clearing staging", cause) != HS_MDB_OK ||
	    !(st = hs_sqldb_stmt(&db->sql, S_RUN_INSERT, "starting a run", cause)))
		goto fail;
	bind_time(st, 1, now);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret_id = sqlite3_column_int64(st, 0);
	if (rc != SQLITE_ROW || hs_sqldb_run(&db->sql, st, "starting a run", cause) != HS_MDB_OK) {
		if (rc != SQLITE_ROW)
			hs_sqldb_cause(&db->sql, cause, "starting a run");
		hs_sqldb_finish(st);
		goto fail;
	}
	return hs_sqldb_commit(&db->sql, "starting a run", cause);
fail:
	hs_sqldb_rollback(&db->sql);
	return HS_MDB_ERROR;
}

int hs_mirror_db_batch_begin(struct hs_mirror_db *db, char **cause)
{
	return hs_sqldb_begin(&db->sql, true, "starting a transaction", cause);
}

int hs_mirror_db_batch_commit(struct hs_mirror_db *db, char **cause)
{
	return hs_sqldb_commit(&db->sql, "committing staged records", cause);
}

void hs_mirror_db_batch_rollback(struct hs_mirror_db *db)
{
	hs_sqldb_rollback(&db->sql);
}

static int dup_column(sqlite3_stmt *st, int col, char **ret)
{
	const unsigned char *s = sqlite3_column_text(st, col);

	*ret = NULL;
	if (!s)
		return sqlite3_column_type(st, col) == SQLITE_NULL ? 0 : -1;
	*ret = strdup((const char *)s);
	return *ret ? 0 : -1;
}

int hs_mirror_db_stage_base(struct hs_mirror_db *db, const char *id, char **ret_list,
			    char **ret_raw, char **cause)
{
	sqlite3_stmt *st = hs_sqldb_stmt(&db->sql, S_BASE_STAGED, "reading staging", cause);
	int rc;

	*ret_list = *ret_raw = NULL;
	if (!st)
		return HS_MDB_ERROR;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (dup_column(st, 0, ret_list) != 0 || dup_column(st, 1, ret_raw) != 0)
			goto oom;
		hs_sqldb_finish(st);
		return HS_MDB_OK;
	}
	hs_sqldb_finish(st);
	if (rc != SQLITE_DONE)
		return hs_sqldb_cause(&db->sql, cause, "reading staging");
	if (!(st = hs_sqldb_stmt(&db->sql, S_BASE_STORED, "reading a record", cause)))
		return HS_MDB_ERROR;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && dup_column(st, 0, ret_raw) != 0)
		goto oom;
	hs_sqldb_finish(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return hs_sqldb_cause(&db->sql, cause, "reading a record");
	return HS_MDB_OK;
oom:
	hs_sqldb_finish(st);
	free(*ret_list);
	free(*ret_raw);
	*ret_list = *ret_raw = NULL;
	return hs_cause(cause, "%s", "out of memory");
}

static int stage(struct hs_mirror_db *db, enum stmt_id id, const struct hs_mirror_row *row,
		 const char *what, char **cause)
{
	sqlite3_stmt *st = hs_sqldb_stmt(&db->sql, id, what, cause);

	if (!st)
		return HS_MDB_ERROR;
	if (!row->id || !row->raw_json) {
		hs_sqldb_finish(st);
		return hs_cause(cause, "%s: a record needs an id and its JSON", what);
	}
	sqlite3_bind_text(st, 1, row->id, -1, SQLITE_TRANSIENT);
	bind_columns(st, row);
	if (id == S_STAGE_LISTED)
		bind_text(st, 8, row->list_json);
	return hs_sqldb_run(&db->sql, st, what, cause);
}

int hs_mirror_db_stage_listed(struct hs_mirror_db *db, const struct hs_mirror_row *row,
			      char **cause)
{
	return stage(db, S_STAGE_LISTED, row, "staging a listed record", cause);
}

int hs_mirror_db_stage_fetched(struct hs_mirror_db *db, const struct hs_mirror_row *row,
			       char **cause)
{
	if (stage(db, S_STAGE_FETCHED, row, "staging a fetched record", cause) != HS_MDB_OK)
		return HS_MDB_ERROR;
	if (sqlite3_changes(db->sql.db) != 1)
		return hs_cause(cause, "%s", "staging a fetched record: it was never staged");
	return HS_MDB_OK;
}

int hs_mirror_db_stage_gone(struct hs_mirror_db *db, const char *id, char **cause)
{
	sqlite3_stmt *st = hs_sqldb_stmt(&db->sql, S_STAGE_GONE, "staging a deletion", cause);

	if (!st)
		return HS_MDB_ERROR;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	if (hs_sqldb_run(&db->sql, st, "staging a deletion", cause) != HS_MDB_OK)
		return HS_MDB_ERROR;
	if (sqlite3_changes(db->sql.db) != 1)
		return hs_cause(cause, "%s", "staging a deletion: the record was never staged");
	return HS_MDB_OK;
}

/* Runs a planning UPDATE; *ret_n: the rows it marked. */
static int mark(struct hs_mirror_db *db, enum stmt_id id, int64_t limit, int64_t *ret_n,
		char **cause)
{
	sqlite3_stmt *st = hs_sqldb_stmt(&db->sql, id, "planning", cause);

	if (!st)
		return HS_MDB_ERROR;
	if (id == S_PLAN_WANT_REFRESH)
		sqlite3_bind_int64(st, 1, limit > 0 ? limit : 0);
	if (hs_sqldb_run(&db->sql, st, "planning", cause) != HS_MDB_OK)
		return HS_MDB_ERROR;
	*ret_n = sqlite3_changes(db->sql.db);
	return HS_MDB_OK;
}

int hs_mirror_db_plan(struct hs_mirror_db *db, bool fetch_details, unsigned refresh_percent,
		      int64_t refresh_min, struct hs_mirror_plan *ret, char **cause)
{
	sqlite3_stmt *st;
	int64_t refresh_max;
	int rc;

	memset(ret, 0, sizeof(*ret));
	if (hs_sqldb_begin(&db->sql, true, "planning", cause) != HS_MDB_OK)
		return HS_MDB_ERROR;
	if (!(st = hs_sqldb_stmt(&db->sql, S_PLAN_COUNTS, "planning", cause)))
		goto fail;
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		hs_sqldb_cause(&db->sql, cause, "planning");
		hs_sqldb_finish(st);
		goto fail;
	}
	ret->listed = sqlite3_column_int64(st, 0);
	hs_sqldb_finish(st);
	refresh_max = (ret->listed * refresh_percent + 99) / 100;
	if (refresh_max < refresh_min)
		refresh_max = refresh_min;
	if (hs_sqldb_exec(&db->sql, S_PLAN_ABSENT, "staging absent records", cause) != HS_MDB_OK ||
	    mark(db, S_PLAN_WANT_ABSENT, 0, &ret->absent, cause) != HS_MDB_OK)
		goto fail;
	if (fetch_details &&
	    (mark(db, S_PLAN_WANT_FRESH, 0, &ret->fresh, cause) != HS_MDB_OK ||
	     mark(db, S_PLAN_WANT_REFRESH, refresh_max, &ret->refresh, cause) != HS_MDB_OK))
		goto fail;
	ret->wanted = ret->absent + ret->fresh + ret->refresh;
	return hs_sqldb_commit(&db->sql, "planning", cause);
fail:
	hs_sqldb_rollback(&db->sql);
	return HS_MDB_ERROR;
}

int hs_mirror_db_next_wanted(struct hs_mirror_db *db, int64_t after_seq, int64_t *ret_seq,
			     char **ret_id, char **cause)
{
	sqlite3_stmt *st = hs_sqldb_stmt(&db->sql, S_NEXT_WANTED, "reading staging", cause);
	int rc;

	*ret_id = NULL;
	if (!st)
		return HS_MDB_ERROR;
	sqlite3_bind_int64(st, 1, after_seq);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		hs_sqldb_finish(st);
		return HS_MDB_EMPTY;
	}
	if (rc != SQLITE_ROW) {
		hs_sqldb_finish(st);
		return hs_sqldb_cause(&db->sql, cause, "reading staging");
	}
	*ret_seq = sqlite3_column_int64(st, 0);
	if (dup_column(st, 1, ret_id) != 0 || !*ret_id) {
		hs_sqldb_finish(st);
		return hs_cause(cause, "%s", "out of memory");
	}
	hs_sqldb_finish(st);
	return HS_MDB_OK;
}

int hs_mirror_db_apply(struct hs_mirror_db *db, int64_t run_id, int64_t now, int64_t pages,
		       struct hs_mirror_run *ret, char **cause)
{
	struct hs_mirror_run r = {.id = run_id, .started_at = 0, .ended_at = now, .pages = pages};
	sqlite3_stmt *st;
	int rc;

	snprintf(r.status, sizeof(r.status), "ok");
	if (hs_sqldb_begin(&db->sql, true, "applying the run", cause) != HS_MDB_OK)
		return HS_MDB_ERROR;
	if (!(st = hs_sqldb_stmt(&db->sql, S_APPLY_COUNTS, "counting changes", cause)))
		goto fail;
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		hs_sqldb_cause(&db->sql, cause, "counting changes");
		hs_sqldb_finish(st);
		goto fail;
	}
	r.created = sqlite3_column_int64(st, 0);
	r.updated = sqlite3_column_int64(st, 1);
	r.deleted = sqlite3_column_int64(st, 2);
	r.records = sqlite3_column_int64(st, 3);
	hs_sqldb_finish(st);

	if (!(st = hs_sqldb_stmt(&db->sql, S_APPLY_UPSERT, "applying records", cause)))
		goto fail;
	bind_time(st, 1, now);
	if (hs_sqldb_run(&db->sql, st, "applying records", cause) != HS_MDB_OK)
		goto fail;
	if (!(st = hs_sqldb_stmt(&db->sql, S_APPLY_DELETE, "applying deletions", cause)))
		goto fail;
	bind_time(st, 1, now);
	if (hs_sqldb_run(&db->sql, st, "applying deletions", cause) != HS_MDB_OK)
		goto fail;
	if (hs_sqldb_exec(&db->sql, S_STAGING_CLEAR, "clearing staging", cause) != HS_MDB_OK)
		goto fail;

	if (!(st = hs_sqldb_stmt(&db->sql, S_RUN_OK, "ending the run", cause)))
		goto fail;
	sqlite3_bind_int64(st, 1, run_id);
	bind_time(st, 2, now);
	sqlite3_bind_int64(st, 3, pages);
	sqlite3_bind_int64(st, 4, r.records);
	sqlite3_bind_int64(st, 5, r.created);
	sqlite3_bind_int64(st, 6, r.updated);
	sqlite3_bind_int64(st, 7, r.deleted);
	if (hs_sqldb_run(&db->sql, st, "ending the run", cause) != HS_MDB_OK)
		goto fail;
	if (sqlite3_changes(db->sql.db) != 1) {
		hs_cause(cause, "ending the run: run %lld is not running", (long long)run_id);
		goto fail;
	}
	if (!(st = hs_sqldb_stmt(&db->sql, S_RUN_PRUNE, "pruning old runs", cause)))
		goto fail;
	sqlite3_bind_int64(st, 1, run_id - RUNS_KEPT);
	if (hs_sqldb_run(&db->sql, st, "pruning old runs", cause) != HS_MDB_OK)
		goto fail;
	if (hs_sqldb_commit(&db->sql, "committing the run", cause) != HS_MDB_OK)
		return HS_MDB_ERROR;
	if (ret)
		*ret = r;
	return HS_MDB_OK;
fail:
	hs_sqldb_rollback(&db->sql);
	return HS_MDB_ERROR;
}

int hs_mirror_db_run_end(struct hs_mirror_db *db, int64_t run_id, int64_t now, const char *status,
			 const char *error, int64_t pages, char **cause)
{
	sqlite3_stmt *st;

	hs_sqldb_rollback(&db->sql); /* a batch the failure interrupted */
	if (hs_sqldb_begin(&db->sql, true, "ending the run", cause) != HS_MDB_OK)
		return HS_MDB_ERROR;
	if (!(st = hs_sqldb_stmt(&db->sql, S_RUN_END, "ending the run", cause)))
		goto fail;
	sqlite3_bind_int64(st, 1, run_id);
	sqlite3_bind_text(st, 2, status, -1, SQLITE_TRANSIENT);
	bind_time(st, 3, now);
	bind_text(st, 4, error);
	sqlite3_bind_int64(st, 5, pages);
	if (hs_sqldb_run(&db->sql, st, "ending the run", cause) != HS_MDB_OK ||
	    hs_sqldb_exec(&db->sql, S_STAGING_CLEAR, "clearing staging", cause) != HS_MDB_OK)
		goto fail;
	return hs_sqldb_commit(&db->sql, "ending the run", cause);
fail:
	hs_sqldb_rollback(&db->sql);
	return HS_MDB_ERROR;
}

int hs_mirror_db_run_note(struct hs_mirror_db *db, int64_t run_id, const char *error, char **cause)
{
	sqlite3_stmt *st = hs_sqldb_stmt(&db->sql, S_RUN_NOTE, "noting an error", cause);

	if (!st)
		return HS_MDB_ERROR;
	sqlite3_bind_int64(st, 1, run_id);
	bind_text(st, 2, error);
	return hs_sqldb_run(&db->sql, st, "noting an error", cause);
}

int hs_mirror_db_each_live(struct hs_mirror_db *db,
			   int (*fn)(const char *json, size_t len, void *arg), void *arg,
			   char **cause)
{
	sqlite3_stmt *st;
	int rc, out = 0;

	/* A deferred transaction: one snapshot for the whole walk. */
	if (sqlite3_exec(db->sql.db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return hs_sqldb_cause(&db->sql, cause, "reading records");
	if (!(st = hs_sqldb_stmt(&db->sql, S_LIVE, "reading records", cause))) {
		hs_sqldb_rollback(&db->sql);
		return HS_MDB_ERROR;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *json = (const char *)sqlite3_column_text(st, 0);
		if (!json) {
			rc = SQLITE_NOMEM;
			break;
		}
		if ((out = fn(json, (size_t)sqlite3_column_bytes(st, 0), arg)) != 0)
			break;
	}
	if (out == 0 && rc != SQLITE_DONE)
		out = hs_sqldb_cause(&db->sql, cause, "reading records");
	hs_sqldb_finish(st);
	hs_sqldb_rollback(&db->sql);
	return out;
}

/* ---- history --------------------------------------------------------------- */

static void text_to(sqlite3_stmt *st, int col, char *buf, size_t len)
{
	const char *s = (const char *)sqlite3_column_text(st, col);

	snprintf(buf, len, "%s", s ? s : "");
}

static int read_run(struct hs_mirror_db *db, enum stmt_id id, struct hs_mirror_run *ret,
		    char **cause)
{
	sqlite3_stmt *st = hs_sqldb_stmt(&db->sql, id, "reading runs", cause);
	int rc;

	memset(ret, 0, sizeof(*ret));
	if (!st)
		return HS_MDB_ERROR;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		ret->id = sqlite3_column_int64(st, 0);
		ret->started_at = hs_mirror_time_parse((const char *)sqlite3_column_text(st, 1));
		ret->ended_at = hs_mirror_time_parse((const char *)sqlite3_column_text(st, 2));
		if (ret->ended_at < 0)
			ret->ended_at = 0;
		text_to(st, 3, ret->status, sizeof(ret->status));
		ret->pages = sqlite3_column_int64(st, 4);
		ret->records = sqlite3_column_int64(st, 5);
		ret->created = sqlite3_column_int64(st, 6);
		ret->updated = sqlite3_column_int64(st, 7);
		ret->deleted = sqlite3_column_int64(st, 8);
		text_to(st, 9, ret->error, sizeof(ret->error));
	}
	hs_sqldb_finish(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return hs_sqldb_cause(&db->sql, cause, "reading runs");
	return HS_MDB_OK;
}

int hs_mirror_db_runs(struct hs_mirror_db *db, struct hs_mirror_run *ret_last,
		      struct hs_mirror_run *ret_last_ok, char **cause)
{
	if (ret_last && read_run(db, S_LAST_RUN, ret_last, cause) != HS_MDB_OK)
		return HS_MDB_ERROR;
	if (ret_last_ok && read_run(db, S_LAST_OK, ret_last_ok, cause) != HS_MDB_OK)
		return HS_MDB_ERROR;
	return HS_MDB_OK;
}

int hs_mirror_db_read_runs(const char *path, struct hs_mirror_run *ret_last,
			   struct hs_mirror_run *ret_last_ok, char **cause)
{
	struct hs_mirror_db *db;
	int rc;

	if (ret_last)
		memset(ret_last, 0, sizeof(*ret_last));
	if (ret_last_ok)
		memset(ret_last_ok, 0, sizeof(*ret_last_ok));
	rc = hs_mirror_db_open(path, HS_MDB_READ, &db, cause);
	if (rc != HS_MDB_OK)
		return rc;
	rc = hs_mirror_db_runs(db, ret_last, ret_last_ok, cause);
	hs_mirror_db_close(db);
	return rc;
}
