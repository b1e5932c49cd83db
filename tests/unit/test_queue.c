#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <sqlite3.h>

#include "queue/queue.h"

/* queue.c's hook for tests: the connection it works on. */
sqlite3 *hs_queue_sqlite(struct hs_queue *q);

static const struct hs_backoff bo = {.base_ms = 1000, .cap_ms = 60 * 1000};

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define SHA_C "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define LEASE 1000

struct fx {
	char dir[64];
	char path[128]; /* this test's database */
	int n;
	struct hs_queue *q;
};

static char dir_template[] = "/tmp/hsq-test-XXXXXX";

/* ---- helpers --------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int group_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "%s", dir_template);
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int group_teardown(void **state)
{
	struct fx *f = *state;

	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* Each test gets a fresh database, opened. */
static int setup(void **state)
{
	struct fx *f = *state;
	char *cause = NULL;

	snprintf(f->path, sizeof(f->path), "%s/q%d.db", f->dir, ++f->n);
	if (hs_queue_open(f->path, &f->q, &cause) != HS_Q_OK) {
		fprintf(stderr, "# open: %s\n", cause ? cause : "?");
		free(cause);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	sqlite3_stmt *st = NULL;
	int bad = -1;

	if (!f->q)
		return 0;

	/* Whatever the test did, the trigger-kept counts agree with the rows. */
	if (f->q &&
	    sqlite3_prepare_v2(hs_queue_sqlite(f->q),
			       "SELECT count(*) FROM job_counts c WHERE n <> (SELECT "
			       "count(*) FROM jobs j WHERE j.state = c.state)",
			       -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		bad = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	f->q = hs_queue_close(f->q);
	if (bad != 0)
		fprintf(stderr, "# job_counts disagree with the jobs\n");
	return bad == 0 ? 0 : -1;
}

static struct hs_job_spec spec(const char *path, int64_t size)
{
	const char *base = strrchr(path, '/');
	struct hs_job_spec s = {.path = path,
				.watch_root = "/srv",
				.remote_name = base ? base + 1 : path,
				.size = size,
				.mtime_ns = 1000 + size,
				.inode = 42};
	return s;
}

static int64_t enqueue(struct hs_queue *q, const char *path, int64_t size, int64_t now)
{
	struct hs_job_spec s = spec(path, size);
	char *cause = NULL;
	int64_t id = -1;

	if (hs_queue_enqueue(q, &s, now, &id, &cause) != HS_Q_OK)
		fail_msg("enqueue %s: %s", path, cause ? cause : "?");
	return id;
}

/* Claims and checks it got job `want` (or any job when want is 0). */
static struct hs_job *claim(struct hs_queue *q, int64_t now, int64_t want)
{
	struct hs_job *job = NULL;
	char *cause = NULL;
	int rc = hs_queue_claim(q, now, LEASE, &job, &cause);

	if (rc != HS_Q_OK)
		fail_msg("claim at %lld: rc %d %s", (long long)now, rc, cause ? cause : "");
	assert_int_equal(job->state, HS_JOB_ACTIVE);
	assert_int_equal(job->lease_until, now + LEASE);
	if (want)
		assert_int_equal(job->id, want);
	return job;
}

static void claim_empty(struct hs_queue *q, int64_t now)
{
	struct hs_job *job = NULL;
	char *cause = NULL;

	assert_int_equal(hs_queue_claim(q, now, LEASE, &job, &cause), HS_Q_EMPTY);
	assert_null(job);
	assert_null(cause);
}

static struct hs_job *get(struct hs_queue *q, int64_t id)
{
	struct hs_job *job = NULL;
	char *cause = NULL;

	if (hs_queue_get(q, id, &job, &cause) != HS_Q_OK)
		fail_msg("get %lld: %s", (long long)id, cause ? cause : "no such job");
	return job;
}

static enum hs_job_state state_of(struct hs_queue *q, int64_t id)
{
	struct hs_job *job = get(q, id);
	enum hs_job_state s = job->state;

	hs_job_free(job);
	return s;
}

static void facts(struct hs_queue *q, const struct hs_job *job, const char *sha)
{
	char *cause = NULL;

	if (hs_queue_set_facts(q, job->id, job->lease_token, job->size, job->mtime_ns, job->inode,
			       sha, &cause) != HS_Q_OK)
		fail_msg("set_facts: %s", cause ? cause : "?");
}

static void complete(struct hs_queue *q, const struct hs_job *job, int64_t now)
{
	char *cause = NULL;

	if (hs_queue_complete(q, job->id, job->lease_token, "file-1", now, true, &cause) != HS_Q_OK)
		fail_msg("complete: %s", cause ? cause : "?");
}

static int64_t next_due(struct hs_queue *q)
{
	int64_t at = -2;
	char *cause = NULL;

	assert_int_equal(hs_queue_next_due(q, &at, &cause), HS_Q_OK);
	return at;
}

static int64_t sql_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int64_t v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void sql_exec(sqlite3 *db, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
		fail_msg("%s: %s", sql, err ? err : "?");
	}
}

/* The trigger-kept counts agree with the rows. */
static void counts_agree(struct hs_queue *q)
{
	assert_int_equal(
	    sql_int(hs_queue_sqlite(q),
		    "SELECT count(*) FROM job_counts c WHERE n <> (SELECT count(*) FROM "
		    "jobs j WHERE j.state = c.state)"),
	    0);
	assert_int_equal(sql_int(hs_queue_sqlite(q), "SELECT count(*) FROM job_counts"),
			 HS_JOB_NSTATES);
}

static bool ledger_has(struct hs_queue *q, const char *name, const char *sha)
{
	bool found = true;
	char *cause = NULL;

	assert_int_equal(hs_queue_ledger_has(q, name, sha, &found, &cause), HS_Q_OK);
	return found;
}

/* ---- opening --------------------------------------------------------------- */

static void test_open_settings(void **state)
{
	struct fx *f = *state;
	sqlite3 *db = hs_queue_sqlite(f->q);
	sqlite3_stmt *st;

	assert_int_equal(sql_int(db, "PRAGMA synchronous"), 2); /* FULL */
	assert_int_equal(sql_int(db, "PRAGMA foreign_keys"), 1);
	assert_int_equal(sql_int(db, "PRAGMA user_version"), 6);
	assert_true(sql_int(db, "PRAGMA busy_timeout") >= 1000);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);

	/* A second handle on the same file sees the same schema. */
	struct hs_queue *q2 = NULL;
	char *cause = NULL;
	assert_int_equal(hs_queue_open(f->path, &q2, &cause), HS_Q_OK);
	assert_int_equal(sql_int(hs_queue_sqlite(q2), "PRAGMA synchronous"), 2);
	hs_queue_close(q2);
	assert_null(hs_queue_close(NULL));
}

static void test_file_mode(void **state)
{
	struct fx *f = *state;
	char p[200];
	struct stat st;
	struct hs_queue *q = NULL;
	char *cause = NULL;
	mode_t old = umask(0);

	/* Created 0640 (the folder's group reads it) even with an open umask,
	 * and so are -wal and -shm. */
	snprintf(p, sizeof(p), "%s/mode.db", f->dir);
	assert_int_equal(hs_queue_open(p, &q, &cause), HS_Q_OK);
	enqueue(q, "/srv/m", 1, 1);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	snprintf(p, sizeof(p), "%s/mode.db-wal", f->dir);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	snprintf(p, sizeof(p), "%s/mode.db-shm", f->dir);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);

	/* A reader sees the writer's jobs through the WAL, and cannot write. */
	struct hs_queue *r = NULL;
	int64_t counts[HS_JOB_NSTATES] = {0};
	snprintf(p, sizeof(p), "%s/mode.db", f->dir);
	assert_int_equal(hs_queue_open_read(p, &r, &cause), HS_Q_OK);
	assert_int_equal(hs_queue_counts(r, counts, &cause), HS_Q_OK);
	assert_int_equal(counts[HS_JOB_QUEUED], 1);
	struct hs_job_spec spec = {.path = "/srv/r", .watch_root = "/srv", .remote_name = "r"};
	assert_int_not_equal(hs_queue_enqueue(r, &spec, 1, NULL, &cause), HS_Q_OK);
	free(cause);
	cause = NULL;
	hs_queue_close(r);
	hs_queue_close(q);

	/* An existing file with a loose mode is given the queue's. */
	snprintf(p, sizeof(p), "%s/loose.db", f->dir);
	int fd = open(p, O_CREAT | O_WRONLY, 0666);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(hs_queue_open(p, &q, &cause), HS_Q_OK);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	hs_queue_close(q);
	umask(old);

	/* A reader of a file that is not a queue yet, or not there: an error. */
	snprintf(p, sizeof(p), "%s/none.db", f->dir);
	assert_int_equal(hs_queue_open_read(p, &r, &cause), HS_Q_ERROR);
	assert_non_null(cause);
	assert_null(r);
	free(cause);
	cause = NULL;
	assert_int_equal(access(p, F_OK), -1); /* and nothing was created */

	/* A directory that is not there: an error with a cause, no crash. */
	snprintf(p, sizeof(p), "%s/missing/q.db", f->dir);
	assert_int_equal(hs_queue_open(p, &q, &cause), HS_Q_ERROR);
	assert_null(q);
	assert_non_null(cause);
	assert_non_null(strstr(cause, strerror(ENOENT)));
	free(cause);
}

/* Schema v1 as first released: jobs and the ledger, no multipart. */
static const char v1_schema[] =
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
    "  CHECK ((due_at IS NOT NULL) = (state IN ('queued','failed','active'))),\n"
    "  CHECK (state <> 'done' OR sha256 IS NOT NULL)\n"
    ");\n"
    "CREATE INDEX jobs_due ON jobs (due_at) WHERE state IN ('queued','failed','active');\n"
    "CREATE UNIQUE INDEX jobs_waiting_path ON jobs (path)\n"
    "  WHERE state IN ('queued','failed','active');\n"
    "CREATE TABLE uploaded (\n"
    "  remote_name TEXT PRIMARY KEY,\n"
    "  sha256 TEXT NOT NULL CHECK (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*'),\n"
    "  size INTEGER NOT NULL,\n"
    "  mtime_ns INTEGER NOT NULL,\n"
    "  inode INTEGER NOT NULL,\n"
    "  file_id TEXT,\n"
    "  uploaded_at INTEGER NOT NULL\n"
    ") WITHOUT ROWID;\n"
    "PRAGMA application_id = 1752387889;\n";

static void test_migrate_from_v1(void **state)
{
	struct fx *f = *state;
	char p[200], *cause = NULL;
	struct hs_queue *q = NULL;
	struct hs_job *job;
	sqlite3 *db;

	snprintf(p, sizeof(p), "%s/v1.db", f->dir);
	assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
	sql_exec(db, "PRAGMA journal_mode = WAL");
	sql_exec(db, "BEGIN");
	sql_exec(db, v1_schema);
	sql_exec(db, "INSERT INTO jobs (id, path, watch_root, remote_name, size, mtime_ns, inode, "
		     "sha256, state, attempts, due_at, last_error, created_at, updated_at) VALUES "
		     "(1, '/srv/a', '/srv', 'a', 10, 11, 12, NULL, 'queued', 0, 100, NULL, 1, 1),"
		     "(2, '/srv/b', '/srv', 'b', 20, 21, 22, NULL, 'failed', 2, 200, 'boom', 2, 3),"
		     "(3, '/srv/c', '/srv', 'c', 30, 31, 32, '" SHA_C
		     "', 'done', 0, NULL, NULL, 3, 4)");
	sql_exec(db, "INSERT INTO uploaded VALUES ('c', '" SHA_C "', 30, 31, 32, 'f-c', 4)");
	sql_exec(db, "PRAGMA user_version = 1");
	sql_exec(db, "COMMIT");
	sqlite3_close(db);

	if (hs_queue_open(p, &q, &cause) != HS_Q_OK)
		fail_msg("open v1: %s", cause);
	assert_int_equal(sql_int(hs_queue_sqlite(q), "PRAGMA user_version"), 6);
	assert_int_equal(sql_int(hs_queue_sqlite(q), "SELECT count(*) FROM parts"), 0);
	int64_t counts[HS_JOB_NSTATES];
	assert_int_equal(hs_queue_counts(q, counts, &cause), HS_Q_OK);
	assert_int_equal(counts[HS_JOB_QUEUED], 1);
	assert_int_equal(counts[HS_JOB_FAILED], 1);
	assert_int_equal(counts[HS_JOB_DONE], 1);
	assert_int_equal(counts[HS_JOB_ACTIVE], 0);
	counts_agree(q);

	job = get(q, 2);
	assert_string_equal(job->path, "/srv/b");
	assert_string_equal(job->remote_name, "b");
	assert_int_equal(job->state, HS_JOB_FAILED);
	assert_int_equal(job->attempts, 2);
	assert_int_equal(job->next_attempt_at, 200);
	assert_string_equal(job->last_error, "boom");
	assert_null(job->upload_id);
	hs_job_free(job);
	job = get(q, 3);
	assert_int_equal(job->state, HS_JOB_DONE);
	assert_string_equal(job->sha256, SHA_C);
	hs_job_free(job);
	assert_true(ledger_has(q, "c", SHA_C));

	/* The old jobs work as any other, multipart included. */
	job = claim(q, 150, 1);
	assert_int_equal(
	    hs_queue_mp_begin(q, job->id, job->lease_token, "upl_1", 5 << 20, 2, true, &cause),
	    HS_Q_OK);
	struct hs_part part = {.number = 1, .size = 5 << 20, .etag = "e1"};
	assert_int_equal(hs_queue_mp_part_done(q, job->id, job->lease_token, &part, true, &cause),
			 HS_Q_OK);
	facts(q, job, SHA_A);
	complete(q, job, 160);
	hs_job_free(job);
	job = claim(q, 250, 2);
	hs_job_free(job);
	claim_empty(q, 300);
	counts_agree(q);
	hs_queue_close(q);

	/* Opening again changes nothing. */
	assert_int_equal(hs_queue_open(p, &q, &cause), HS_Q_OK);
	assert_int_equal(sql_int(hs_queue_sqlite(q), "PRAGMA user_version"), 6);
	assert_int_equal(state_of(q, 1), HS_JOB_DONE);
	hs_queue_close(q);
}

static void test_refuse_newer_and_foreign(void **state)
{
	struct fx *f = *state;
	char p[200], *cause = NULL;
	struct hs_queue *q = NULL;
	sqlite3 *db;

	snprintf(p, sizeof(p), "%s/v9.db", f->dir);
	assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
	sql_exec(db, "CREATE TABLE jobs (id INTEGER PRIMARY KEY); PRAGMA user_version = 9");
	sqlite3_close(db);
	assert_int_equal(hs_queue_open(p, &q, &cause), HS_Q_ERROR);
	assert_null(q);
	assert_non_null(cause);
	assert_non_null(strstr(cause, "newer"));
	assert_non_null(strstr(cause, "9"));
	free(cause);
	cause = NULL;
	/* untouched */
	assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
	assert_int_equal(sql_int(db, "PRAGMA user_version"), 9);
	sqlite3_close(db);

	snprintf(p, sizeof(p), "%s/other.db", f->dir);
	assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
	sql_exec(db, "CREATE TABLE patients (id TEXT)");
	sqlite3_close(db);
	assert_int_equal(hs_queue_open(p, &q, &cause), HS_Q_ERROR);
	assert_non_null(cause);
	assert_non_null(strstr(cause, "not a healsync queue"));
	free(cause);
	cause = NULL;

	snprintf(p, sizeof(p), "%s/app.db", f->dir);
	assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
	sql_exec(db, "PRAGMA application_id = 42");
	sqlite3_close(db);
	assert_int_equal(hs_queue_open(p, &q, &cause), HS_Q_ERROR);
	assert_non_null(cause);
	assert_non_null(strstr(cause, "another application"));
	free(cause);
}

/* ---- transitions ----------------------------------------------------------- */

static void test_enqueue_claim_complete(void **state)
{
	struct fx *f = *state;
	int64_t counts[HS_JOB_NSTATES];
	struct hs_job *job;
	char *cause = NULL;
	int64_t id = enqueue(f->q, "/srv/lab/a.pdf", 100, 5);

	assert_true(id > 0);
	job = get(f->q, id);
	assert_int_equal(job->state, HS_JOB_QUEUED);
	assert_string_equal(job->path, "/srv/lab/a.pdf");
	assert_string_equal(job->watch_root, "/srv");
	assert_string_equal(job->remote_name, "a.pdf");
	assert_int_equal(job->size, 100);
	assert_int_equal(job->mtime_ns, 1100);
	assert_int_equal(job->inode, 42);
	assert_string_equal(job->sha256, "");
	assert_int_equal(job->attempts, 0);
	assert_int_equal(job->created_at, 5);
	assert_null(job->last_error);
	assert_null(job->upload_id);
	hs_job_free(job);

	claim_empty(f->q, 4); /* not due before it was enqueued */
	job = claim(f->q, 10, id);
	assert_true(job->lease_token > 0);
	assert_int_equal(job->updated_at, 10);
	claim_empty(f->q, 10);
	facts(f->q, job, SHA_A);
	complete(f->q, job, 20);
	/* Completing twice is refused: the token no longer holds the job. */
	assert_int_equal(hs_queue_complete(f->q, job->id, job->lease_token, "x", 21, true, &cause),
			 HS_Q_LOST);
	hs_job_free(job);

	job = get(f->q, id);
	assert_int_equal(job->state, HS_JOB_DONE);
	assert_string_equal(job->sha256, SHA_A);
	assert_int_equal(job->updated_at, 20);
	assert_int_equal(job->lease_until, 0);
	hs_job_free(job);
	assert_true(ledger_has(f->q, "a.pdf", SHA_A));
	assert_false(ledger_has(f->q, "a.pdf", SHA_B));
	assert_false(ledger_has(f->q, "b.pdf", SHA_A));
	assert_int_equal(next_due(f->q), -1);
	assert_int_equal(hs_queue_counts(f->q, counts, &cause), HS_Q_OK);
	assert_int_equal(counts[HS_JOB_DONE], 1);
	assert_int_equal(counts[HS_JOB_QUEUED], 0);
	assert_int_equal(sql_int(hs_queue_sqlite(f->q), "SELECT file_id = 'file-1' FROM uploaded"),
			 1);

	assert_int_equal(hs_queue_get(f->q, 999, &job, &cause), HS_Q_EMPTY);
	assert_null(job);
}

static void test_complete_needs_sha(void **state)
{
	struct fx *f = *state;
	char *cause = NULL;
	struct hs_job *job;

	enqueue(f->q, "/srv/x", 1, 0);
	job = claim(f->q, 1, 0);
	assert_int_equal(hs_queue_complete(f->q, job->id, job->lease_token, NULL, 2, true, &cause),
			 HS_Q_ERROR);
	assert_non_null(cause);
	assert_non_null(strstr(cause, "SHA-256"));
	free(cause);
	cause = NULL;
	assert_int_equal(state_of(f->q, job->id), HS_JOB_ACTIVE);
	assert_int_equal(sql_int(hs_queue_sqlite(f->q), "SELECT count(*) FROM uploaded"), 0);

	/* A malformed checksum is refused too. */
	assert_int_equal(hs_queue_set_facts(f->q, job->id, job->lease_token, 1, 1, 1,
					    "ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"
					    "0123456789",
					    &cause),
			 HS_Q_ERROR);
	free(cause);
	cause = NULL;
	assert_int_equal(
	    hs_queue_set_facts(f->q, job->id, job->lease_token, 1, 1, 1, "abc", &cause),
	    HS_Q_ERROR);
	free(cause);
	cause = NULL;

	facts(f->q, job, SHA_B);
	assert_int_equal(hs_queue_complete(f->q, job->id, job->lease_token, NULL, 3, true, &cause),
			 HS_Q_OK);
	assert_true(ledger_has(f->q, "x", SHA_B));
	assert_int_equal(sql_int(hs_queue_sqlite(f->q), "SELECT file_id IS NULL FROM uploaded"), 1);
	hs_job_free(job);

	/* Updates of a job that does not exist are errors, not LOST. */
	assert_int_equal(hs_queue_renew(f->q, 12345, 1, 1, 1, &cause), HS_Q_ERROR);
	assert_non_null(strstr(cause, "no job"));
	free(cause);
}

static void test_skip_and_gone(void **state)
{
	struct fx *f = *state;
	char *cause = NULL;
	struct hs_job *a, *b, *job;

	enqueue(f->q, "/srv/a", 1, 0);
	enqueue(f->q, "/srv/b", 1, 1);
	a = claim(f->q, 5, 0);
	b = claim(f->q, 5, 0);
	assert_int_equal(hs_queue_skip(f->q, a->id, a->lease_token, 6, &cause), HS_Q_OK);
	assert_int_equal(hs_queue_gone(f->q, b->id, b->lease_token, "no such file", 7, &cause),
			 HS_Q_OK);
	job = get(f->q, a->id);
	assert_int_equal(job->state, HS_JOB_SKIPPED);
	assert_int_equal(job->updated_at, 6);
	hs_job_free(job);
	job = get(f->q, b->id);
	assert_int_equal(job->state, HS_JOB_GONE);
	assert_string_equal(job->last_error, "no such file");
	hs_job_free(job);
	/* Neither touches the ledger; neither is due again. */
	assert_int_equal(sql_int(hs_queue_sqlite(f->q), "SELECT count(*) FROM uploaded"), 0);
	assert_int_equal(next_due(f->q), -1);
	assert_int_equal(hs_queue_skip(f->q, a->id, a->lease_token, 8, &cause), HS_Q_LOST);
	assert_int_equal(hs_queue_gone(f->q, b->id, b->lease_token, "x", 8, &cause), HS_Q_LOST);
	hs_job_free(a);
	hs_job_free(b);
	assert_null(cause);
}

static void test_fail_until_dead(void **state)
{
	struct fx *f = *state;
	char *cause = NULL;
	enum hs_job_state st;
	struct hs_job *job;
	int64_t id = enqueue(f->q, "/srv/f", 1, 0);
	int64_t now = 10;

	for (unsigned attempt = 1; attempt <= 3; attempt++) {
		job = claim(f->q, now, id);
		assert_int_equal(job->attempts, attempt - 1);
		/* rnd = UINT64_MAX - 1: some delay within [0, ceiling] */
		assert_int_equal(hs_queue_fail(f->q, id, job->lease_token,
					       attempt == 1 ? "e1" : NULL, false, now, &bo, 3,
					       UINT64_MAX - 1, &st, &cause),
				 HS_Q_OK);
		hs_job_free(job);
		job = get(f->q, id);
		assert_int_equal(job->attempts, attempt);
		assert_string_equal(job->last_error, "e1"); /* a NULL why keeps the last one */
		if (attempt < 3) {
			uint64_t ceiling = hs_backoff_ceiling(&bo, attempt);
			assert_int_equal(st, HS_JOB_FAILED);
			assert_int_equal(job->state, HS_JOB_FAILED);
			assert_in_range(job->next_attempt_at, now, now + (int64_t)ceiling);
			assert_int_equal(
			    job->next_attempt_at,
			    now + (int64_t)hs_backoff_delay(&bo, attempt, UINT64_MAX - 1));
			assert_int_equal(next_due(f->q), job->next_attempt_at);
			if (job->next_attempt_at > now)
				claim_empty(f->q, job->next_attempt_at - 1);
			now = job->next_attempt_at;
		} else {
			assert_int_equal(st, HS_JOB_DEAD);
			assert_int_equal(job->state, HS_JOB_DEAD);
			assert_int_equal(next_due(f->q), -1);
			claim_empty(f->q, INT64_MAX);
		}
		hs_job_free(job);
	}

	/* Permanent: dead at once, whatever the count. */
	id = enqueue(f->q, "/srv/p", 1, 0);
	job = claim(f->q, now, id);
	assert_int_equal(hs_queue_fail(f->q, id, job->lease_token, "400 bad request", true, now,
				       &bo, 10, 0, &st, &cause),
			 HS_Q_OK);
	assert_int_equal(st, HS_JOB_DEAD);
	assert_int_equal(
	    hs_queue_fail(f->q, id, job->lease_token, "again", true, now, &bo, 10, 0, NULL, &cause),
	    HS_Q_LOST);
	hs_job_free(job);
	job = get(f->q, id);
	assert_int_equal(job->attempts, 1);
	assert_string_equal(job->last_error, "400 bad request");
	hs_job_free(job);

	/* Delays that would overflow the clock saturate. */
	struct hs_backoff forever = {.base_ms = UINT64_MAX, .cap_ms = UINT64_MAX};
	id = enqueue(f->q, "/srv/o", 1, 0);
	job = claim(f->q, now, id);
	assert_int_equal(hs_queue_fail(f->q, id, job->lease_token, "x", false, now, &forever, 10,
				       UINT64_MAX, &st, &cause),
			 HS_Q_OK);
	hs_job_free(job);
	job = get(f->q, id);
	assert_int_equal(job->next_attempt_at, INT64_MAX);
	hs_job_free(job);
	assert_null(cause);
}

static void test_retry(void **state)
{
	struct fx *f = *state;
	char *cause = NULL;
	struct hs_job *job;
	size_t n = 99;
	int64_t failed = enqueue(f->q, "/srv/failed", 1, 0);
	int64_t dead = enqueue(f->q, "/srv/dead", 1, 0);
	int64_t done = enqueue(f->q, "/srv/done", 1, 0);

	job = claim(f->q, 1, failed);
	assert_int_equal(
	    hs_queue_fail(f->q, failed, job->lease_token, "e", false, 1, &bo, 5, 7, NULL, &cause),
	    HS_Q_OK);
	hs_job_free(job);
	job = claim(f->q, 1, dead);
	assert_int_equal(
	    hs_queue_fail(f->q, dead, job->lease_token, "e", true, 1, &bo, 5, 7, NULL, &cause),
	    HS_Q_OK);
	hs_job_free(job);
	job = claim(f->q, 1, done);
	facts(f->q, job, SHA_A);
	complete(f->q, job, 2);
	hs_job_free(job);

	/* One by id; a job in another state is left alone and counted out. */
	assert_int_equal(hs_queue_retry(f->q, done, 3, &n, &cause), HS_Q_OK);
	assert_int_equal(n, 0);
	assert_int_equal(state_of(f->q, done), HS_JOB_DONE);
	assert_int_equal(hs_queue_retry(f->q, dead, 3, &n, &cause), HS_Q_OK);
	assert_int_equal(n, 1);
	job = get(f->q, dead);
	assert_int_equal(job->state, HS_JOB_QUEUED);
	assert_int_equal(job->attempts, 0);
	hs_job_free(job);

	/* Put it back to dead, then retry all. */
	job = claim(f->q, 4, dead);
	assert_int_equal(
	    hs_queue_fail(f->q, dead, job->lease_token, "e", true, 4, &bo, 5, 7, NULL, &cause),
	    HS_Q_OK);
	hs_job_free(job);
	assert_int_equal(hs_queue_retry(f->q, -1, 5, &n, &cause), HS_Q_OK);
	assert_int_equal(n, 2);
	job = get(f->q, failed);
	assert_int_equal(job->state, HS_JOB_QUEUED);
	assert_int_equal(job->attempts, 0);
	assert_int_equal(job->next_attempt_at, 0);
	hs_job_free(job);
	assert_int_equal(next_due(f->q), 5);
	/* Due now: claimable at 5 although the backoff said later. */
	job = claim(f->q, 5, failed);
	hs_job_free(job);
	job = claim(f->q, 5, dead);
	hs_job_free(job);
	assert_int_equal(hs_queue_retry(f->q, -1, 5, &n, &cause), HS_Q_OK);
	assert_int_equal(n, 0);

	/* A dead job whose path already waits again stays dead. */
	int64_t d2 = enqueue(f->q, "/srv/d2", 1, 10);
	job = claim(f->q, 10, d2);
	assert_int_equal(
	    hs_queue_fail(f->q, d2, job->lease_token, "e", true, 10, &bo, 5, 7, NULL, &cause),
	    HS_Q_OK);
	hs_job_free(job);
	int64_t d2b = enqueue(f->q, "/srv/d2", 1, 11);
	assert_true(d2b != d2);
	assert_int_equal(hs_queue_retry(f->q, d2, 12, &n, &cause), HS_Q_OK);
	assert_int_equal(n, 0);
	assert_int_equal(state_of(f->q, d2), HS_JOB_DEAD);
	assert_int_equal(state_of(f->q, d2b), HS_JOB_QUEUED);
	assert_int_equal(hs_queue_retry(f->q, -1, 12, NULL, &cause), HS_Q_OK);
	assert_null(cause);
}

static void test_release(void **state)
{
	struct fx *f = *state;
	char *cause = NULL;
	struct hs_job *job, *again;
	int64_t id = enqueue(f->q, "/srv/r", 1, 0);

	job = claim(f->q, 1, id);
	assert_int_equal(hs_queue_release(f->q, id, job->lease_token, 500, &cause), HS_Q_OK);
	assert_int_equal(hs_queue_release(f->q, id, job->lease_token, 500, &cause), HS_Q_LOST);
	again = get(f->q, id);
	assert_int_equal(again->state, HS_JOB_QUEUED);
	assert_int_equal(again->attempts, 0);
	hs_job_free(again);
	assert_int_equal(next_due(f->q), 500);
	claim_empty(f->q, 499);
	again = claim(f->q, 500, id);
	assert_true(again->lease_token > job->lease_token);
	assert_int_equal(again->attempts, 0);
	/* The old token is stale for every update. */
	assert_int_equal(hs_queue_renew(f->q, id, job->lease_token, 501, LEASE, &cause), HS_Q_LOST);
	hs_job_free(job);
	hs_job_free(again);
	assert_null(cause);
}

static void test_enqueue_refresh(void **state)
{
	struct fx *f = *state;
	char *cause = NULL;
	struct hs_job *job;
	struct hs_job_spec s;
	int64_t id = enqueue(f->q, "/srv/a", 10, 100), id2;

	/* Waiting and queued: refreshed, keeps its place (due at the earlier time). */
	s = spec("/srv/a", 11);
	s.remote_name = "renamed";
	assert_int_equal(hs_queue_enqueue(f->q, &s, 200, &id2, &cause), HS_Q_OK);
	assert_int_equal(id2, id);
	job = get(f->q, id);
	assert_int_equal(job->size, 11);
	assert_int_equal(job->mtime_ns, 1011);
	assert_string_equal(job->remote_name, "renamed");
	assert_int_equal(job->state, HS_JOB_QUEUED);
	assert_int_equal(job->updated_at, 200);
	hs_job_free(job);
	assert_int_equal(next_due(f->q), 100);
	assert_int_equal(sql_int(hs_queue_sqlite(f->q), "SELECT count(*) FROM jobs"), 1);

	/* Failed: refreshed, queued and due now rather than after the backoff. */
	job = claim(f->q, 300, id);
	facts(f->q, job, SHA_A);
	assert_int_equal(hs_queue_fail(f->q, id, job->lease_token, "503", false, 300, &bo, 10, 1000,
				       NULL, &cause),
			 HS_Q_OK);
	hs_job_free(job);
	assert_int_equal(next_due(f->q), 300 + 1000);
	/* Same facts: the checksum is kept. */
	s = spec("/srv/a", 11);
	assert_int_equal(hs_queue_enqueue(f->q, &s, 400, &id2, &cause), HS_Q_OK);
	assert_int_equal(id2, id);
	job = get(f->q, id);
	assert_int_equal(job->state, HS_JOB_QUEUED);
	assert_int_equal(job->attempts, 1);
	assert_string_equal(job->sha256, SHA_A);
	assert_string_equal(job->last_error, "503");
	hs_job_free(job);
	assert_int_equal(next_due(f->q), 400);
	/* Changed facts: the checksum no longer holds. */
	s = spec("/srv/a", 12);
	assert_int_equal(hs_queue_enqueue(f->q, &s, 500, NULL, &cause), HS_Q_OK);
	job = get(f->q, id);
	assert_string_equal(job->sha256, "");
	assert_int_equal(job->size, 12);
	hs_job_free(job);

	/* Done: a new job for the same path. */
	job = claim(f->q, 600, id);
	facts(f->q, job, SHA_A);
	complete(f->q, job, 601);
	hs_job_free(job);
	id2 = enqueue(f->q, "/srv/a", 13, 700);
	assert_true(id2 > id);
	assert_int_equal(state_of(f->q, id), HS_JOB_DONE);
	assert_int_equal(state_of(f->q, id2), HS_JOB_QUEUED);

	/* A burst, with the same path twice in it. */
	struct hs_job_spec burst[4] = {spec("/srv/m1", 1), spec("/srv/m2", 2), spec("/srv/m1", 3),
				       spec("/srv/a", 14)};
	assert_int_equal(hs_queue_enqueue_many(f->q, burst, 4, 800, &cause), HS_Q_OK);
	assert_int_equal(hs_queue_enqueue_many(f->q, burst, 0, 800, &cause), HS_Q_OK);
	assert_int_equal(sql_int(hs_queue_sqlite(f->q), "SELECT count(*) FROM jobs"), 4);
	assert_int_equal(
	    sql_int(hs_queue_sqlite(f->q), "SELECT size FROM jobs WHERE path = '/srv/m1'"), 3);
	/* A bad spec rolls the whole burst back. */
	struct hs_job_spec bad[2] = {spec("/srv/m3", 1), spec("", 1)};
	assert_int_equal(hs_queue_enqueue_many(f->q, bad, 2, 900, &cause), HS_Q_ERROR);
	assert_non_null(cause);
	free(cause);
	cause = NULL;
	assert_int_equal(sql_int(hs_queue_sqlite(f->q), "SELECT count(*) FROM jobs"), 4);
}

static void test_enqueue_while_active(void **state)
{
	struct fx *f = *state;
	char *cause = NULL;
	struct hs_job *job, *now;
	struct hs_job_spec s = spec("/srv/a", 99);
	int64_t id = enqueue(f->q, "/srv/a", 10, 0), id2 = 0;

	job = claim(f->q, 1, id);
	facts(f->q, job, SHA_A);
	assert_int_equal(hs_queue_enqueue(f->q, &s, 2, &id2, &cause), HS_Q_OK);
	assert_int_equal(id2, id);
	assert_int_equal(hs_queue_enqueue(f->q, &s, 2, NULL, &cause), HS_Q_OK);
	now = get(f->q, id);
	assert_int_equal(now->state, HS_JOB_ACTIVE);
	assert_int_equal(now->size, 10);
	assert_int_equal(now->lease_token, job->lease_token);
	assert_int_equal(now->lease_until, 1 + LEASE);
	assert_string_equal(now->sha256, SHA_A);
	hs_job_free(now);
	assert_int_equal(sql_int(hs_queue_sqlite(f->q), "SELECT count(*) FROM jobs"), 1);
	complete(f->q, job, 3);
	hs_job_free(job);
	/* The file moved on while it was sent: the path gets a fresh job, due
	 * when the old one ended, and the old one is no longer flagged. */
	assert_int_equal(sql_int(hs_queue_sqlite(f->q), "SELECT count(*) FROM jobs"), 2);
	assert_int_equal(state_of(f->q, id), HS_JOB_DONE);
	assert_int_equal(sql_int(hs_queue_sqlite(f->q), "SELECT sum(changed) FROM jobs"), 0);
	assert_int_equal(next_due(f->q), 3);
	job = claim(f->q, 3, 0);
	assert_int_not_equal(job->id, id);
	assert_string_equal(job->path, "/srv/a");
	hs_job_free(job);
	assert_null(cause);
}

/* Enqueueing the very facts the active job has is no change. */
static void test_enqueue_active_same_facts(void **state)
{
	struct fx *f = *state;
	char *cause = NULL;
	struct hs_job *job;
	int64_t id = enqueue(f->q, "/srv/a", 10, 0);

	job = claim(f->q, 1, id);
	enqueue(f->q, "/srv/a", 10, 2);
	facts(f->q, job, SHA_A);
	assert_int_equal(hs_queue_skip(f->q, job->id, job->lease_token, 3, &cause), HS_Q_OK);
	hs_job_free(job);
	assert_int_equal(sql_int(hs_queue_sqlite(f->q), "SELECT count(*) FROM jobs"), 1);
	assert_int_equal(next_due(f->q), -1);
	assert_null(cause);
}

/* A change flagged during an attempt that then fails, or is released, makes
 * the waiting job due at once; one flagged before a dead end or a vanished
 * file gets a fresh job. */
static void test_changed_then_fail_or_gone(void **state)
{
	struct fx *f = *state;
	struct hs_backoff slow = {.base_ms = 100000, .cap_ms = 100000};
	char *cause = NULL;
	struct hs_job *job;
	enum hs_job_state st;
	int64_t a = enqueue(f->q, "/srv/a", 10, 0), b = enqueue(f->q, "/srv/b", 10, 0);

	job = claim(f->q, 1, a);
	enqueue(f->q, "/srv/a", 11, 2);
	assert_int_equal(hs_queue_fail(f->q, job->id, job->lease_token, "503", false, 5, &slow, 10,
				       7, &st, &cause),
			 HS_Q_OK);
	assert_int_equal(st, HS_JOB_FAILED);
	hs_job_free(job);
	assert_int_equal(sql_int(hs_queue_sqlite(f->q), "SELECT due_at FROM jobs WHERE id = 1"), 5);

	job = claim(f->q, 6, b);
	enqueue(f->q, "/srv/b", 12, 7);
	assert_int_equal(hs_queue_gone(f->q, job->id, job->lease_token, "vanished", 8, &cause),
			 HS_Q_OK);
	hs_job_free(job);
	assert_int_equal(state_of(f->q, b), HS_JOB_GONE);
	assert_int_equal(
	    sql_int(hs_queue_sqlite(f->q),
		    "SELECT count(*) FROM jobs WHERE path = '/srv/b' AND state = 'queued'"),
	    1);

	job = claim(f->q, 9, a);
	enqueue(f->q, "/srv/a", 13, 9);
	assert_int_equal(hs_queue_fail(f->q, job->id, job->lease_token, "400", true, 10, &slow, 10,
				       7, &st, &cause),
			 HS_Q_OK);
	assert_int_equal(st, HS_JOB_DEAD);
	hs_job_free(job);
	assert_int_equal(
	    sql_int(hs_queue_sqlite(f->q),
		    "SELECT count(*) FROM jobs WHERE path = '/srv/a' AND state = 'queued'"),
	    1);
	assert_int_equal(sql_int(hs_queue_sqlite(f->q), "SELECT sum(changed) FROM jobs"), 0);
	assert_null(cause);
}

static enum hs_seen seen(struct hs_queue *q, const char *path, int64_t size)
{
	struct hs_job_spec s = spec(path, size);
	enum hs_seen v = (enum hs_seen) - 1;
	char *cause = NULL;

	if (hs_queue_seen(q, &s, &v, &cause) != HS_Q_OK)
		fail_msg("seen %s: %s", path, cause ? cause : "?");
	return v;
}

/* What a scan learns of a file: new, waiting (or dead), or stored. */
static void test_seen(void **state)
{
	struct fx *f = *state;
	struct hs_backoff b = {.base_ms = 10, .cap_ms = 10};
	char *cause = NULL;
	struct hs_job *job;
	enum hs_job_state st;

	assert_int_equal(seen(f->q, "/srv/a", 10), HS_SEEN_NEW);
	enqueue(f->q, "/srv/a", 10, 0);
	assert_int_equal(seen(f->q, "/srv/a", 10), HS_SEEN_PENDING);
	assert_int_equal(seen(f->q, "/srv/a", 11), HS_SEEN_NEW); /* changed since */
	job = claim(f->q, 1, 0);
	assert_int_equal(seen(f->q, "/srv/a", 10), HS_SEEN_PENDING);
	facts(f->q, job, SHA_A);
	complete(f->q, job, 2);
	hs_job_free(job);
	assert_int_equal(seen(f->q, "/srv/a", 10), HS_SEEN_STORED);
	assert_int_equal(seen(f->q, "/srv/a", 11), HS_SEEN_NEW);

	/* Rewritten with the same content: the skip teaches the ledger the new
	 * facts, so the next scan knows the file is stored. */
	enqueue(f->q, "/srv/a", 10, 3);
	assert_int_equal(sql_int(hs_queue_sqlite(f->q),
				 "UPDATE jobs SET inode = 43 WHERE state = 'queued' "
				 "RETURNING inode"),
			 43);
	job = claim(f->q, 4, 0);
	facts(f->q, job, SHA_A);
	assert_int_equal(hs_queue_skip(f->q, job->id, job->lease_token, 5, &cause), HS_Q_OK);
	hs_job_free(job);
	struct hs_job_spec moved = spec("/srv/a", 10);
	moved.inode = 43;
	enum hs_seen v;
	assert_int_equal(hs_queue_seen(f->q, &moved, &v, &cause), HS_Q_OK);
	assert_int_equal(v, HS_SEEN_STORED);
	assert_int_equal(seen(f->q, "/srv/a", 10), HS_SEEN_NEW); /* the old inode */

	/* Dead stays dead for scans; gone does not hide a file that is back. */
	enqueue(f->q, "/srv/d", 20, 6);
	job = claim(f->q, 6, 0);
	assert_int_equal(
	    hs_queue_fail(f->q, job->id, job->lease_token, "400", true, 7, &b, 3, 1, &st, &cause),
	    HS_Q_OK);
	hs_job_free(job);
	assert_int_equal(seen(f->q, "/srv/d", 20), HS_SEEN_PENDING);
	enqueue(f->q, "/srv/g", 20, 8);
	job = claim(f->q, 8, 0);
	assert_int_equal(hs_queue_gone(f->q, job->id, job->lease_token, "gone", 9, &cause),
			 HS_Q_OK);
	hs_job_free(job);
	assert_int_equal(seen(f->q, "/srv/g", 20), HS_SEEN_NEW);
	assert_null(cause);
}

static void test_health_facts(void **state)
{
	struct fx *f = *state;
	char *cause = NULL;
	struct hs_job *job;
	int64_t at = -1;

	assert_int_equal(hs_queue_oldest_waiting(f->q, &at, &cause), HS_Q_OK);
	assert_int_equal(at, 0);
	assert_int_equal(hs_queue_last_stored(f->q, &at, &cause), HS_Q_OK);
	assert_int_equal(at, 0);
	enqueue(f->q, "/srv/a", 10, 100);
	enqueue(f->q, "/srv/b", 10, 200);
	job = claim(f->q, 300, 0);
	facts(f->q, job, SHA_A);
	complete(f->q, job, 400);
	hs_job_free(job);
	/* a is stored: b is the oldest waiting */
	assert_int_equal(hs_queue_oldest_waiting(f->q, &at, &cause), HS_Q_OK);
	assert_int_equal(at, 200);
	assert_int_equal(hs_queue_last_stored(f->q, &at, &cause), HS_Q_OK);
	assert_int_equal(at, 400);
	assert_null(cause);
}

static void test_prune(void **state)
{
	struct fx *f = *state;
	struct hs_backoff b = {.base_ms = 10, .cap_ms = 10};
	char *cause = NULL;
	struct hs_job *job;
	size_t n = 99;
	const char *paths[] = {"/srv/done", "/srv/skip", "/srv/gone", "/srv/dead", "/srv/wait"};

	for (int i = 0; i < 5; i++)
		enqueue(f->q, paths[i], 10, i);
	for (int i = 0; i < 4; i++) {
		job = claim(f->q, 10, 0);
		facts(f->q, job, SHA_A);
		if (i == 0)
			complete(f->q, job, 20);
		else if (i == 1)
			assert_int_equal(hs_queue_skip(f->q, job->id, job->lease_token, 20, &cause),
					 HS_Q_OK);
		else if (i == 2)
			assert_int_equal(
			    hs_queue_gone(f->q, job->id, job->lease_token, "x", 20, &cause),
			    HS_Q_OK);
		else
			assert_int_equal(hs_queue_fail(f->q, job->id, job->lease_token, "x", true,
						       20, &b, 3, 1, NULL, &cause),
					 HS_Q_OK);
		hs_job_free(job);
	}
	assert_int_equal(hs_queue_prune(f->q, 20, &n, &cause), HS_Q_OK);
	assert_int_equal(n, 0);
	assert_int_equal(hs_queue_prune(f->q, 21, &n, &cause), HS_Q_OK);
	assert_int_equal(n, 3);
	assert_int_equal(sql_int(hs_queue_sqlite(f->q), "SELECT count(*) FROM jobs"), 2);
	assert_true(ledger_has(f->q, "done", SHA_A));
	assert_int_equal(seen(f->q, "/srv/done", 10), HS_SEEN_STORED);
	assert_null(cause);
}

static void test_lease_expiry(void **state)
{
	struct fx *f = *state;
	char *cause = NULL;
	struct hs_job *old, *cur;
	struct hs_part part = {.number = 1, .size = 1, .etag = "e"};
	int64_t id = enqueue(f->q, "/srv/l", 1, 0);

	old = claim(f->q, 0, id); /* lease until 1000 */
	claim_empty(f->q, 999);
	assert_int_equal(next_due(f->q), LEASE);
	/* Renewing moves the expiry. */
	assert_int_equal(hs_queue_renew(f->q, id, old->lease_token, 900, LEASE, &cause), HS_Q_OK);
	claim_empty(f->q, 1899);
	assert_int_equal(next_due(f->q), 900 + LEASE);
	/* Expired: due again, someone else takes it with a new token. */
	cur = claim(f->q, 1900, id);
	assert_int_not_equal(cur->lease_token, old->lease_token);
	assert_int_equal(cur->attempts, 0);

	int64_t t = old->lease_token;
	enum hs_job_state st;
	assert_int_equal(hs_queue_renew(f->q, id, t, 1901, LEASE, &cause), HS_Q_LOST);
	assert_int_equal(hs_queue_set_facts(f->q, id, t, 1, 1, 1, SHA_A, &cause), HS_Q_LOST);
	assert_int_equal(hs_queue_complete(f->q, id, t, NULL, 1901, true, &cause), HS_Q_LOST);
	assert_int_equal(hs_queue_skip(f->q, id, t, 1901, &cause), HS_Q_LOST);
	assert_int_equal(hs_queue_gone(f->q, id, t, "x", 1901, &cause), HS_Q_LOST);
	assert_int_equal(hs_queue_fail(f->q, id, t, "x", false, 1901, &bo, 5, 0, &st, &cause),
			 HS_Q_LOST);
	assert_int_equal(hs_queue_release(f->q, id, t, 1901, &cause), HS_Q_LOST);
	assert_int_equal(hs_queue_mp_begin(f->q, id, t, "u", 5, 1, true, &cause), HS_Q_LOST);
	assert_int_equal(hs_queue_mp_part_done(f->q, id, t, &part, true, &cause), HS_Q_LOST);
	assert_int_equal(hs_queue_mp_reset(f->q, id, t, &cause), HS_Q_LOST);
	assert_null(cause);

	/* None of that touched the job; the new holder finishes it. */
	struct hs_job *now = get(f->q, id);
	assert_int_equal(now->state, HS_JOB_ACTIVE);
	assert_int_equal(now->lease_token, cur->lease_token);
	assert_string_equal(now->sha256, "");
	assert_null(now->upload_id);
	hs_job_free(now);
	facts(f->q, cur, SHA_B);
	complete(f->q, cur, 1902);
	assert_true(ledger_has(f->q, "l", SHA_B));
	hs_job_free(old);
	hs_job_free(cur);
}

static void test_recover(void **state)
{
	struct fx *f = *state;
	char *cause = NULL;
	struct hs_job *a, *b;
	size_t n = 0;

	enqueue(f->q, "/srv/a", 1, 0);
	enqueue(f->q, "/srv/b", 1, 0);
	enqueue(f->q, "/srv/c", 1, 0);
	a = claim(f->q, 1, 0);
	b = claim(f->q, 1, 0);
	assert_int_equal(hs_queue_mp_begin(f->q, a->id, a->lease_token, "u", 5, 2, true, &cause),
			 HS_Q_OK);
	assert_int_equal(hs_queue_recover(f->q, 50, &n, &cause), HS_Q_OK);
	assert_int_equal(n, 2);
	assert_int_equal(state_of(f->q, a->id), HS_JOB_QUEUED);
	assert_int_equal(state_of(f->q, b->id), HS_JOB_QUEUED);
	assert_int_equal(hs_queue_renew(f->q, a->id, a->lease_token, 51, LEASE, &cause), HS_Q_LOST);
	struct hs_job *again = get(f->q, a->id);
	assert_string_equal(again->upload_id, "u"); /* progress kept */
	assert_int_equal(again->attempts, 0);
	hs_job_free(again);
	assert_int_equal(hs_queue_recover(f->q, 60, NULL, &cause), HS_Q_OK);
	hs_job_free(a);
	hs_job_free(b);
	assert_null(cause);
}

static void test_claim_order(void **state)
{
	struct fx *f = *state;
	struct hs_job *job;
	int64_t a = enqueue(f->q, "/srv/a", 1, 300);
	int64_t b = enqueue(f->q, "/srv/b", 1, 100);
	int64_t c = enqueue(f->q, "/srv/c", 1, 200);
	int64_t d = enqueue(f->q, "/srv/d", 1, 200); /* same time: lower id first */

	claim_empty(f->q, 99);
	job = claim(f->q, 150, b);
	hs_job_free(job);
	claim_empty(f->q, 150);
	job = claim(f->q, 1000, c);
	hs_job_free(job);
	job = claim(f->q, 1000, d);
	hs_job_free(job);
	job = claim(f->q, 1000, a);
	hs_job_free(job);
	claim_empty(f->q, 1000);
	/* The first lease (b's, until 1150) runs out first. */
	job = claim(f->q, 5000, b);
	hs_job_free(job);
}

static void test_next_due(void **state)
{
	struct fx *f = *state;
	struct hs_job *job;

	assert_int_equal(next_due(f->q), -1);
	enqueue(f->q, "/srv/a", 1, 500);
	assert_int_equal(next_due(f->q), 500);
	enqueue(f->q, "/srv/b", 1, 400);
	assert_int_equal(next_due(f->q), 400);
	job = claim(f->q, 450, 0);
	assert_int_equal(next_due(f->q), 500);
	hs_job_free(job);
	claim_empty(f->q, 499);
	job = claim(f->q, 500, 0);
	assert_int_equal(next_due(f->q), 450 + LEASE);
	hs_job_free(job);
}

static void test_ledger(void **state)
{
	struct fx *f = *state;
	char *cause = NULL;
	struct hs_job *job;
	bool same;
	const char *shas[] = {SHA_A, SHA_B, SHA_A};

	/* A stored, then B, then A again: only the last one counts. */
	for (int i = 0; i < 3; i++) {
		enqueue(f->q, "/srv/r.pdf", 10 + i, 10 * i);
		job = claim(f->q, 10 * i, 0);
		assert_false(ledger_has(f->q, "r.pdf", shas[i]));
		facts(f->q, job, shas[i]);
		complete(f->q, job, 10 * i + 1);
		hs_job_free(job);
		assert_true(ledger_has(f->q, "r.pdf", shas[i]));
		if (i == 1)
			assert_false(ledger_has(f->q, "r.pdf", SHA_A));
	}
	assert_false(ledger_has(f->q, "r.pdf", SHA_B));
	assert_int_equal(sql_int(hs_queue_sqlite(f->q), "SELECT count(*) FROM uploaded"), 1);
	assert_int_equal(sql_int(hs_queue_sqlite(f->q), "SELECT count(*) FROM jobs"), 3);

	/* Same facts: exactly the last upload's size, mtime and inode. */
	assert_int_equal(hs_queue_ledger_same_facts(f->q, "r.pdf", 12, 1012, 42, &same, &cause),
			 HS_Q_OK);
	assert_true(same);
	assert_int_equal(hs_queue_ledger_same_facts(f->q, "r.pdf", 11, 1011, 42, &same, &cause),
			 HS_Q_OK);
	assert_false(same);
	assert_int_equal(hs_queue_ledger_same_facts(f->q, "r.pdf", 12, 1013, 42, &same, &cause),
			 HS_Q_OK);
	assert_false(same);
	assert_int_equal(hs_queue_ledger_same_facts(f->q, "r.pdf", 12, 1012, 43, &same, &cause),
			 HS_Q_OK);
	assert_false(same);
	assert_int_equal(hs_queue_ledger_same_facts(f->q, "other", 12, 1012, 42, &same, &cause),
			 HS_Q_OK);
	assert_false(same);
	assert_null(cause);
}

/* A completion committed unsynced is done at once for every reader; the
 * sync after it, and any more, succeed. */
static void test_complete_unsynced(void **state)
{
	struct fx *f = *state;
	char *cause = NULL;
	int64_t id = enqueue(f->q, "/srv/u.pdf", 10, 0);
	struct hs_job *job = claim(f->q, 1, id);

	assert_int_equal(hs_queue_sync(f->q, &cause), HS_Q_OK);
	facts(f->q, job, SHA_A);
	assert_int_equal(
	    hs_queue_complete(f->q, job->id, job->lease_token, "file-u", 2, false, &cause),
	    HS_Q_OK);
	assert_int_equal(sql_int(hs_queue_sqlite(f->q), "PRAGMA synchronous"), 1);
	assert_int_equal(state_of(f->q, id), HS_JOB_DONE);
	assert_true(ledger_has(f->q, "u.pdf", SHA_A));
	assert_int_equal(hs_queue_sync(f->q, &cause), HS_Q_OK);
	assert_int_equal(hs_queue_sync(f->q, &cause), HS_Q_OK);
	assert_null(cause);
	/* The next synced write is synced again. */
	enqueue(f->q, "/srv/v.pdf", 10, 3);
	assert_int_equal(sql_int(hs_queue_sqlite(f->q), "PRAGMA synchronous"), 2);
	hs_job_free(job);
	counts_agree(f->q);
}

static void test_multipart(void **state)
{
	struct fx *f = *state;
	char *cause = NULL;
	struct hs_job *job, *now;
	struct hs_part *parts = NULL;
	size_t n = 9;
	int64_t id = enqueue(f->q, "/srv/big", 3 << 20, 0);
	struct hs_part p1 = {.number = 1, .size = 1 << 20, .etag = "\"e1\""};
	struct hs_part p2 = {.number = 2, .size = 1 << 20, .etag = "e2"};
	struct hs_part p3 = {.number = 3, .size = 1 << 20, .etag = "e3"};
	struct hs_part p4 = {.number = 4, .size = 1, .etag = "e4"};

	job = claim(f->q, 1, id);
	/* No session yet. */
	assert_int_equal(hs_queue_mp_part_done(f->q, id, job->lease_token, &p1, true, &cause),
			 HS_Q_ERROR);
	assert_non_null(strstr(cause, "no multipart session"));
	free(cause);
	cause = NULL;
	assert_int_equal(hs_queue_mp_parts(f->q, id, &parts, &n, &cause), HS_Q_OK);
	assert_int_equal(n, 0);
	assert_null(parts);

	assert_int_equal(
	    hs_queue_mp_begin(f->q, id, job->lease_token, "upl_1", 1 << 20, 3, true, &cause),
	    HS_Q_OK);
	/* A part recorded without a sync leaves every later synced commit
	 * synced: each write sets the mode it needs (kept until one needs the
	 * other, so that the PRAGMA is not parsed at every commit). */
	assert_int_equal(hs_queue_mp_part_done(f->q, id, job->lease_token, &p3, false, &cause),
			 HS_Q_OK);
	assert_int_equal(sql_int(hs_queue_sqlite(f->q), "PRAGMA synchronous"), 1);
	assert_int_equal(hs_queue_mp_part_done(f->q, id, job->lease_token, &p1, true, &cause),
			 HS_Q_OK);
	assert_int_equal(sql_int(hs_queue_sqlite(f->q), "PRAGMA synchronous"), 2);
	assert_int_equal(hs_queue_mp_part_done(f->q, id, job->lease_token, &p2, true, &cause),
			 HS_Q_OK);
	snprintf(p2.etag, sizeof(p2.etag), "e2-again");
	assert_int_equal(hs_queue_mp_part_done(f->q, id, job->lease_token, &p2, true, &cause),
			 HS_Q_OK);
	/* Out of range. */
	assert_int_equal(hs_queue_mp_part_done(f->q, id, job->lease_token, &p4, true, &cause),
			 HS_Q_ERROR);
	assert_non_null(strstr(cause, "out of range"));
	free(cause);
	cause = NULL;
	p4.number = 0;
	assert_int_equal(hs_queue_mp_part_done(f->q, id, job->lease_token, &p4, true, &cause),
			 HS_Q_ERROR);
	free(cause);
	cause = NULL;

	assert_int_equal(hs_queue_mp_parts(f->q, id, &parts, &n, &cause), HS_Q_OK);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(parts[i].number, i + 1);
		assert_int_equal(parts[i].size, 1 << 20);
	}
	assert_string_equal(parts[0].etag, "\"e1\"");
	assert_string_equal(parts[1].etag, "e2-again");
	assert_string_equal(parts[2].etag, "e3");
	free(parts);

	now = get(f->q, id);
	assert_string_equal(now->upload_id, "upl_1");
	assert_int_equal(now->part_size, 1 << 20);
	assert_int_equal(now->part_count, 3);
	hs_job_free(now);

	/* Kept across a release and a new claim (resume after restart). */
	assert_int_equal(hs_queue_release(f->q, id, job->lease_token, 2, &cause), HS_Q_OK);
	hs_job_free(job);
	job = claim(f->q, 2, id);
	assert_string_equal(job->upload_id, "upl_1");
	assert_int_equal(job->part_count, 3);
	assert_int_equal(hs_queue_mp_parts(f->q, id, &parts, &n, &cause), HS_Q_OK);
	assert_int_equal(n, 3);
	free(parts);

	/* A new session forgets the old parts. */
	assert_int_equal(
	    hs_queue_mp_begin(f->q, id, job->lease_token, "upl_2", 2 << 20, 2, true, &cause),
	    HS_Q_OK);
	assert_int_equal(hs_queue_mp_parts(f->q, id, &parts, &n, &cause), HS_Q_OK);
	assert_int_equal(n, 0);
	assert_int_equal(hs_queue_mp_part_done(f->q, id, job->lease_token, &p1, true, &cause),
			 HS_Q_OK);

	/* Reset drops session and parts. */
	assert_int_equal(hs_queue_mp_reset(f->q, id, job->lease_token, &cause), HS_Q_OK);
	now = get(f->q, id);
	assert_null(now->upload_id);
	assert_int_equal(now->part_count, 0);
	hs_job_free(now);
	assert_int_equal(hs_queue_mp_parts(f->q, id, &parts, &n, &cause), HS_Q_OK);
	assert_int_equal(n, 0);

	/* Completing drops them too. */
	assert_int_equal(
	    hs_queue_mp_begin(f->q, id, job->lease_token, "upl_3", 1 << 20, 3, true, &cause),
	    HS_Q_OK);
	assert_int_equal(hs_queue_mp_part_done(f->q, id, job->lease_token, &p1, true, &cause),
			 HS_Q_OK);
	facts(f->q, job, SHA_A);
	complete(f->q, job, 3);
	hs_job_free(job);
	assert_int_equal(sql_int(hs_queue_sqlite(f->q), "SELECT count(*) FROM parts"), 0);
	assert_int_equal(hs_queue_mp_begin(f->q, id, 1, "u", 1, 1, true, &cause), HS_Q_LOST);
	assert_int_equal(hs_queue_mp_begin(f->q, id, 1, "", 1, 1, true, &cause), HS_Q_ERROR);
	free(cause);
}

static int collect(const struct hs_job *job, void *arg)
{
	int64_t *ids = arg;

	ids[++ids[0]] = job->id;
	return ids[0] == 3 ? 1 : 0; /* stops after three */
}

static void test_list_and_counts(void **state)
{
	struct fx *f = *state;
	char *cause = NULL;
	int64_t counts[HS_JOB_NSTATES], ids[10];
	struct hs_job *job;

	for (int i = 0; i < 5; i++) {
		char p[32];
		snprintf(p, sizeof(p), "/srv/%d", i);
		enqueue(f->q, p, 1, i);
	}
	job = claim(f->q, 10, 1);
	hs_job_free(job);

	memset(ids, 0, sizeof(ids));
	assert_int_equal(hs_queue_list(f->q, -1, 0, collect, ids, &cause), HS_Q_OK);
	assert_int_equal(ids[0], 3);
	assert_int_equal(ids[1], 1);
	assert_int_equal(ids[3], 3);
	memset(ids, 0, sizeof(ids));
	assert_int_equal(hs_queue_list(f->q, HS_JOB_QUEUED, 2, collect, ids, &cause), HS_Q_OK);
	assert_int_equal(ids[0], 2);
	assert_int_equal(ids[1], 2);
	assert_int_equal(ids[2], 3);
	memset(ids, 0, sizeof(ids));
	assert_int_equal(hs_queue_list(f->q, HS_JOB_ACTIVE, 0, collect, ids, &cause), HS_Q_OK);
	assert_int_equal(ids[0], 1);
	assert_int_equal(hs_queue_list(f->q, HS_JOB_NSTATES, 0, collect, ids, &cause), HS_Q_ERROR);
	free(cause);
	cause = NULL;

	assert_int_equal(hs_queue_counts(f->q, counts, &cause), HS_Q_OK);
	assert_int_equal(counts[HS_JOB_QUEUED], 4);
	assert_int_equal(counts[HS_JOB_ACTIVE], 1);
	assert_int_equal(counts[HS_JOB_DONE], 0);

	for (int s = 0; s < HS_JOB_NSTATES; s++)
		assert_int_equal(hs_job_state_parse(hs_job_state_name(s)), s);
	assert_string_equal(hs_job_state_name(HS_JOB_DEAD), "dead");
	assert_int_equal(hs_job_state_parse("nope"), -1);
	assert_int_equal(hs_job_state_parse(NULL), -1);
	assert_null(cause);
}

/* The states are readable text and the invariants are in the schema. */
static void test_schema_constraints(void **state)
{
	struct fx *f = *state;
	sqlite3 *db = hs_queue_sqlite(f->q);
	sqlite3_stmt *st;

	enqueue(f->q, "/srv/a", 1, 7);
	assert_int_equal(sql_int(db, "SELECT state = 'queued' AND due_at = 7 FROM jobs"), 1);
	assert_int_not_equal(sqlite3_exec(db, "UPDATE jobs SET state = 'bogus'", NULL, NULL, NULL),
			     SQLITE_OK);
	assert_int_not_equal(
	    sqlite3_exec(db, "UPDATE jobs SET state = 'done', due_at = NULL", NULL, NULL, NULL),
	    SQLITE_OK); /* done without a checksum */
	assert_int_not_equal(sqlite3_exec(db, "UPDATE jobs SET due_at = NULL", NULL, NULL, NULL),
			     SQLITE_OK);
	assert_int_not_equal(
	    sqlite3_exec(db,
			 "INSERT INTO jobs (path, remote_name, size, mtime_ns, inode, state, "
			 "due_at, created_at, updated_at) VALUES ('/srv/a', 'a', 1, 1, 1, "
			 "'failed', 1, 1, 1)",
			 NULL, NULL, NULL),
	    SQLITE_OK); /* a second waiting job for one path */

	/* Claiming and next_due use the partial index, not a scan. */
	assert_int_equal(sqlite3_prepare_v2(db,
					    "EXPLAIN QUERY PLAN SELECT id FROM jobs WHERE (state = "
					    "'queued' OR state = 'failed' OR state = 'active') AND "
					    "due_at <= 5 ORDER BY due_at, id LIMIT 1",
					    -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_non_null(strstr((const char *)sqlite3_column_text(st, 3), "USING INDEX jobs_due"));
	sqlite3_finalize(st);
}

/* ---- two processes ------------------------------------------------------- */

#define PER_PROC 150
#define BURST	 10

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fake_sha(const char *s, char out[65])
{
	uint64_t h = 1469598103934665603u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	for (int i = 0; i < 4; i++, h = h * 6364136223846793005u + 1442695040888963407u)
		snprintf(out + 16 * i, 17, "%016llx", (unsigned long long)h);
}

/* Enqueues its own paths in bursts and works on whatever is due, until all
 * 2 * PER_PROC jobs are done. Writes the ids it completed to fd. Returns the
 * number of unexpected results. */
static int worker(const char *db, const char *tag, int fd)
{
	struct hs_queue *q = NULL;
	char *cause = NULL, sha[65];
	int64_t counts[HS_JOB_NSTATES] = {0}, deadline = wall_ms() + 60000;
	int errors = 0, enqueued = 0;

	if (hs_queue_open(db, &q, &cause) != HS_Q_OK) {
		fprintf(stderr, "# %s: open: %s\n", tag, cause);
		free(cause);
		return 1;
	}
	while (wall_ms() < deadline) {
		if (enqueued < PER_PROC) {
			struct hs_job_spec specs[BURST];
			char paths[BURST][64];
			for (int i = 0; i < BURST; i++) {
				snprintf(paths[i], sizeof(paths[i]), "/srv/%s-%d", tag,
					 enqueued + i);
				specs[i] = spec(paths[i], enqueued + i);
			}
			if (hs_queue_enqueue_many(q, specs, BURST, wall_ms(), &cause) != HS_Q_OK)
				goto error;
			enqueued += BURST;
		}
		for (int i = 0; i < BURST; i++) {
			struct hs_job *job = NULL;
			int rc = hs_queue_claim(q, wall_ms(), 600000, &job, &cause);
			if (rc == HS_Q_EMPTY)
				break;
			if (rc != HS_Q_OK)
				goto error;
			fake_sha(job->path, sha);
			rc = hs_queue_set_facts(q, job->id, job->lease_token, job->size,
						job->mtime_ns, job->inode, sha, &cause);
			if (rc == HS_Q_OK)
				rc = hs_queue_complete(q, job->id, job->lease_token, tag, wall_ms(),
						       true, &cause);
			if (rc == HS_Q_OK &&
			    write(fd, &job->id, sizeof(job->id)) != (ssize_t)sizeof(job->id))
				errors++;
			hs_job_free(job);
			if (rc != HS_Q_OK)
				goto error;
		}
		if (hs_queue_counts(q, counts, &cause) != HS_Q_OK)
			goto error;
		if (counts[HS_JOB_DONE] == 2 * PER_PROC)
			break;
		continue;
	error:
		fprintf(stderr, "# %s: %s\n", tag, cause ? cause : "unexpected result");
		free(cause);
		cause = NULL;
		errors++;
	}
	if (counts[HS_JOB_DONE] != 2 * PER_PROC)
		errors++;
	hs_queue_close(q);
	return errors;
}

static size_t read_ids(const char *path, int64_t *ids, size_t max)
{
	FILE *fp = fopen(path, "rb");
	size_t n;

	assert_non_null(fp);
	n = fread(ids, sizeof(*ids), max, fp);
	fclose(fp);
	return n;
}

static void test_two_processes(void **state)
{
	struct fx *f = *state;
	char db[200], out[2][220];
	int64_t ids[2][2 * PER_PROC + 1], seen[2 * PER_PROC + 1];
	size_t n[2];
	int fd[2], status;
	pid_t pid;

	f->q = hs_queue_close(f->q); /* no connection may cross a fork */
	snprintf(db, sizeof(db), "%s/two.db", f->dir);
	for (int i = 0; i < 2; i++) {
		snprintf(out[i], sizeof(out[i]), "%s/two.%d", f->dir, i);
		fd[i] = open(out[i], O_CREAT | O_TRUNC | O_WRONLY | O_APPEND, 0600);
		assert_true(fd[i] >= 0);
	}
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(worker(db, "child", fd[1]) == 0 ? 0 : 1);
	int errors = worker(db, "parent", fd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	close(fd[0]);
	close(fd[1]);
	assert_int_equal(errors, 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	/* Every job done exactly once, by one of the two. */
	n[0] = read_ids(out[0], ids[0], 2 * PER_PROC + 1);
	n[1] = read_ids(out[1], ids[1], 2 * PER_PROC + 1);
	assert_int_equal(n[0] + n[1], 2 * PER_PROC);
	assert_true(n[0] > 0 && n[1] > 0); /* both did work */
	memset(seen, 0, sizeof(seen));
	for (int p = 0; p < 2; p++)
		for (size_t i = 0; i < n[p]; i++) {
			assert_in_range(ids[p][i], 1, 2 * PER_PROC);
			assert_int_equal(seen[ids[p][i]], 0);
			seen[ids[p][i]] = 1;
		}

	char *cause = NULL;
	int64_t counts[HS_JOB_NSTATES];
	assert_int_equal(hs_queue_open(db, &f->q, &cause), HS_Q_OK);
	assert_int_equal(hs_queue_counts(f->q, counts, &cause), HS_Q_OK);
	assert_int_equal(counts[HS_JOB_DONE], 2 * PER_PROC);
	assert_int_equal(sql_int(hs_queue_sqlite(f->q), "SELECT count(*) FROM jobs"), 2 * PER_PROC);
	assert_int_equal(sql_int(hs_queue_sqlite(f->q), "SELECT count(*) FROM uploaded"),
			 2 * PER_PROC);
	assert_int_equal(sql_int(hs_queue_sqlite(f->q),
				 "SELECT count(*) FROM jobs j JOIN uploaded u ON "
				 "u.remote_name = j.remote_name AND u.sha256 = j.sha256"),
			 2 * PER_PROC);
}

/* Several processes opening one new file at once all succeed: one makes
 * the schema, the others wait for it. */
static void test_concurrent_open(void **state)
{
	struct fx *f = *state;

	f->q = hs_queue_close(f->q); /* no connection may cross a fork */
	for (int round = 0; round < 20; round++) {
		char db[200];
		pid_t pids[4];
		int gate[2], status;

		snprintf(db, sizeof(db), "%s/race-%d.db", f->dir, round);
		assert_int_equal(pipe(gate), 0);
		for (int i = 0; i < 4; i++) {
			pids[i] = fork();
			assert_true(pids[i] >= 0);
			if (pids[i] == 0) {
				struct hs_queue *q = NULL;
				char *cause = NULL, path[32], c;
				struct hs_job_spec s = spec(path, i);
				close(gate[1]);
				if (read(gate[0], &c, 1) != 0) /* returns at the gate's close */
					_exit(3);
				snprintf(path, sizeof(path), "/srv/race-%d", i);
				s.remote_name = path + 5;
				if (hs_queue_open(db, &q, &cause) != HS_Q_OK ||
				    hs_queue_enqueue(q, &s, 1, NULL, &cause) != HS_Q_OK) {
					fprintf(stderr, "# %s\n", cause ? cause : "?");
					_exit(1);
				}
				hs_queue_close(q);
				_exit(0);
			}
		}
		close(gate[0]);
		close(gate[1]);
		for (int i = 0; i < 4; i++) {
			assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
			assert_true(WIFEXITED(status));
			assert_int_equal(WEXITSTATUS(status), 0);
		}
		char *cause = NULL;
		int64_t counts[HS_JOB_NSTATES];
		assert_int_equal(hs_queue_open(db, &f->q, &cause), HS_Q_OK);
		assert_int_equal(hs_queue_counts(f->q, counts, &cause), HS_Q_OK);
		assert_int_equal(counts[HS_JOB_QUEUED], 4);
		f->q = hs_queue_close(f->q);
	}
}

/* The operator's controls: a pause kept with its end and author; a
 * cancelled job ends gone, its holder loses the lease, and the scans leave
 * its unchanged file alone; purge drops only the state it names. */
/* A refused after-upload action stays pending: counted on while the file
 * is the same, started over for a new version, due at once after a reload
 * (due_now), gone once cleared; a scan's entry finds the job that stored
 * the path. */
static void test_after_pending(void **state)
{
	struct fx *f = *state;
	const struct hs_backoff b = {.base_ms = 1000, .cap_ms = 8000};
	struct hs_job_spec s = spec("/srv/lab/scan.pdf", 7);
	struct hs_after_entry *e = NULL;
	struct hs_job *job;
	char *cause = NULL;
	int64_t at = 0, n = -1, due = 0;
	size_t got = 9;
	bool was = true;

	assert_int_equal(hs_queue_after_next_due(f->q, &at, &cause), HS_Q_OK);
	assert_int_equal(at, -1);
	assert_int_equal(hs_queue_after_clear(f->q, s.path, &was, &cause), HS_Q_OK);
	assert_false(was);

	int64_t id = enqueue(f->q, s.path, 7, 0);
	job = claim(f->q, 1, id);
	facts(f->q, job, SHA_C);
	complete(f->q, job, 2);
	hs_job_free(job);

	/* rnd the ceiling draws the ceiling: 1 s, then 2 s. */
	assert_int_equal(hs_queue_after_defer(f->q, &s, 0, "refused", 100, &b, 1000, &due, &cause),
			 HS_Q_OK);
	assert_int_equal(due, 100 + 1000);
	assert_int_equal(
	    hs_queue_after_defer(f->q, &s, 0, "refused again", 200, &b, 2000, &due, &cause),
	    HS_Q_OK);
	assert_int_equal(due, 200 + 2000);
	assert_int_equal(hs_queue_after_count(f->q, &n, &cause), HS_Q_OK);
	assert_int_equal(n, 1);
	bool has = false, same = false;
	assert_int_equal(hs_queue_after_has(f->q, &s, &has, &same, &cause), HS_Q_OK);
	assert_true(has && same);
	s.inode++;
	assert_int_equal(hs_queue_after_has(f->q, &s, &has, &same, &cause), HS_Q_OK);
	assert_true(has && !same);
	s.inode--;
	assert_int_equal(hs_queue_after_due(f->q, 2199, 0, &e, &got, &cause), HS_Q_OK);
	assert_int_equal(got, 0);
	assert_int_equal(hs_queue_after_due(f->q, INT64_MAX, 0, &e, &got, &cause), HS_Q_OK);
	assert_int_equal(got, 1);
	assert_string_equal(e[0].path, s.path);
	assert_string_equal(e[0].watch_root, "/srv");
	assert_int_equal(e[0].job_id, id); /* found by path: the job that stored it */
	assert_int_equal(e[0].attempts, 2);
	assert_int_equal(e[0].since, 100);
	assert_int_equal(e[0].size, 7);
	assert_string_equal(e[0].last_error, "refused again");
	e = hs_after_entries_free(e, got);

	/* A new version of the file starts over. */
	s.size = 8;
	assert_int_equal(hs_queue_after_defer(f->q, &s, id, "new", 300, &b, 1000, &due, &cause),
			 HS_Q_OK);
	assert_int_equal(due, 300 + 1000);
	/* A reload: due at once. */
	assert_int_equal(hs_queue_after_due_now(f->q, 301, &got, &cause), HS_Q_OK);
	assert_int_equal(got, 1);
	assert_int_equal(hs_queue_after_next_due(f->q, &at, &cause), HS_Q_OK);
	assert_int_equal(at, 301);
	assert_int_equal(hs_queue_after_due(f->q, 301, 0, &e, &got, &cause), HS_Q_OK);
	assert_int_equal(got, 1);
	assert_int_equal(e[0].attempts, 1);
	assert_int_equal(e[0].since, 300);
	e = hs_after_entries_free(e, got);

	assert_int_equal(hs_queue_after_clear(f->q, s.path, &was, &cause), HS_Q_OK);
	assert_true(was);
	assert_int_equal(hs_queue_after_count(f->q, &n, &cause), HS_Q_OK);
	assert_int_equal(n, 0);
	/* Refused input names what is wrong. */
	s.path = "";
	assert_int_equal(hs_queue_after_defer(f->q, &s, 0, "x", 1, &b, 0, NULL, &cause),
			 HS_Q_ERROR);
	assert_non_null(cause);
	free(cause);
}

static void test_operator_controls(void **state)
{
	struct fx *f = *state;
	char *cause = NULL, *remote = NULL;
	struct hs_pause p;
	struct hs_job *job;
	bool was = true;
	size_t n = 99;

	assert_int_equal(hs_queue_pause_get(f->q, 10, &p, &cause), HS_Q_OK);
	assert_false(p.on);
	assert_int_equal(hs_queue_pause_set(f->q, 100, "alice", 10, &cause), HS_Q_OK);
	assert_int_equal(hs_queue_pause_get(f->q, 99, &p, &cause), HS_Q_OK);
	assert_true(p.on);
	assert_int_equal(p.until, 100);
	assert_string_equal(p.set_by, "alice");
	assert_int_equal(hs_queue_pause_get(f->q, 100, &p, &cause), HS_Q_OK);
	assert_false(p.on); /* over at its end */
	assert_int_equal(hs_queue_pause_set(f->q, 0, "bob", 11, &cause), HS_Q_OK);
	assert_int_equal(hs_queue_pause_get(f->q, 1000000, &p, &cause), HS_Q_OK);
	assert_true(p.on);
	assert_int_equal(hs_queue_resume(f->q, &was, &cause), HS_Q_OK);
	assert_true(was);
	assert_int_equal(hs_queue_resume(f->q, &was, &cause), HS_Q_OK);
	assert_false(was);

	int64_t queued = enqueue(f->q, "/srv/c1", 1, 0);
	int64_t active = enqueue(f->q, "/srv/c2", 1, 0);
	job = claim(f->q, 1, queued); /* due first */
	hs_job_free(job);
	/* queued was claimed: cancel it while active. */
	assert_int_equal(hs_queue_cancel(f->q, queued, "alice", 2, &remote, &cause), HS_Q_OK);
	assert_non_null(remote);
	free(remote);
	assert_int_equal(state_of(f->q, queued), HS_JOB_GONE);
	assert_int_equal(seen(f->q, "/srv/c1", 1), HS_SEEN_PENDING);
	assert_int_equal(seen(f->q, "/srv/c1", 2), HS_SEEN_NEW); /* changed: new */
	assert_int_equal(hs_queue_cancel(f->q, queued, "alice", 3, NULL, &cause), HS_Q_EMPTY);
	assert_int_equal(hs_queue_cancel(f->q, 9999, "alice", 3, NULL, &cause), HS_Q_EMPTY);
	assert_int_equal(hs_queue_cancel(f->q, active, "bob", 3, NULL, &cause), HS_Q_OK);
	job = get(f->q, active);
	assert_string_equal(job->last_error, "cancelled by bob");
	hs_job_free(job);

	/* Purge: only the state named, only older than `before`. */
	assert_int_equal(hs_queue_purge(f->q, HS_JOB_DONE, 100, &n, &cause), HS_Q_OK);
	assert_int_equal(n, 0);
	assert_int_equal(hs_queue_purge(f->q, HS_JOB_GONE, 100, &n, &cause), HS_Q_ERROR);
	free(cause);
}

int main(void)
{

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_open_settings),
	    T(test_operator_controls),
	    T(test_after_pending),
	    T(test_file_mode),
	    T(test_migrate_from_v1),
	    T(test_refuse_newer_and_foreign),
	    T(test_enqueue_claim_complete),
	    T(test_complete_needs_sha),
	    T(test_skip_and_gone),
	    T(test_fail_until_dead),
	    T(test_retry),
	    T(test_release),
	    T(test_enqueue_refresh),
	    T(test_enqueue_while_active),
	    T(test_lease_expiry),
	    T(test_recover),
	    T(test_claim_order),
	    T(test_next_due),
	    T(test_ledger),
	    T(test_complete_unsynced),
	    T(test_multipart),
	    T(test_list_and_counts),
	    T(test_schema_constraints),
	    T(test_enqueue_active_same_facts),
	    T(test_changed_then_fail_or_gone),
	    T(test_seen),
	    T(test_health_facts),
	    T(test_prune),
	    T(test_two_processes),
	    T(test_concurrent_open),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
