/* The mirror database on real SQLite files: runs that apply, fail or are
 * killed; counts of created, updated and deleted records; what a reader on
 * another connection sees meanwhile; the writer lock; ids as text. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "agent/mirror_db.h"

#define T0 1767225600000LL /* 2026-01-01T00:00:00.000Z */

struct fixture {
	char dir[64];
	char path[128];
	sqlite3 *reader; /* another connection, as an outside program */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/hs-mdb-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/mirror.db", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	sqlite3_close(f->reader);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static struct hs_mirror_db *open_writer(struct fixture *f)
{
	struct hs_mirror_db *db = NULL;
	char *cause = NULL;
	int rc = hs_mirror_db_open(f->path, HS_MDB_WRITE, &db, &cause);

	if (rc != HS_MDB_OK)
		fail_msg("open: %s", cause);
	return db;
}

static int64_t query_int(struct fixture *f, const char *sql)
{
	sqlite3_stmt *st;
	int64_t v = -1;

	if (!f->reader)
		assert_int_equal(sqlite3_open_v2(f->path, &f->reader, SQLITE_OPEN_READONLY, NULL),
				 SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(f->reader, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static char *query_text(struct fixture *f, const char *sql)
{
	sqlite3_stmt *st;
	char *v = NULL;

	query_int(f, "SELECT 1");
	assert_int_equal(sqlite3_prepare_v2(f->reader, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		v = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return v;
}

static void ok(int rc, char *cause)
{
	if (rc != HS_MDB_OK)
		fail_msg("%s", cause ? cause : "?");
}

static void listed(struct hs_mirror_db *db, const char *id, const char *name)
{
	char raw[256], *cause = NULL;
	struct hs_mirror_row row = {
	    .id = id, .name = name, .consent = -1, .raw_json = raw, .list_json = raw};

	snprintf(raw, sizeof(raw), "{\"id\":\"%s\",\"name\":\"%s\"}", id, name);
	ok(hs_mirror_db_stage_listed(db, &row, &cause), cause);
}

static void fetched(struct hs_mirror_db *db, const char *id, const char *name, int consent)
{
	char raw[256], *cause = NULL;
	struct hs_mirror_row row = {.id = id, .name = name, .consent = consent, .raw_json = raw};

	snprintf(raw, sizeof(raw), "{\"id\":\"%s\",\"name\":\"%s\",\"consent\":%s}", id, name,
		 consent ? "true" : "false");
	ok(hs_mirror_db_stage_fetched(db, &row, &cause), cause);
}

/* Answers every wanted detail: 404 for the ids in gone, else a record. */
static int64_t answer_details(struct hs_mirror_db *db, const char *const *gone)
{
	int64_t seq = 0, n = 0;
	char *id = NULL, *cause = NULL;
	int rc;

	while ((rc = hs_mirror_db_next_wanted(db, seq, &seq, &id, &cause)) == HS_MDB_OK) {
		bool is_gone = false;
		for (size_t i = 0; gone && gone[i]; i++)
			is_gone = is_gone || strcmp(gone[i], id) == 0;
		if (is_gone)
			ok(hs_mirror_db_stage_gone(db, id, &cause), cause);
		else
			fetched(db, id, "Fetched", 1);
		free(id);
		n++;
	}
	assert_int_equal(rc, HS_MDB_EMPTY);
	return n;
}

static void test_open(void **state)
{
	struct fixture *f = *state;
	struct hs_mirror_db *db, *db2 = NULL;
	struct hs_mirror_run last;
	char *cause = NULL;
	struct stat st;

	/* A reader finds nothing before the first writer. */
	assert_int_equal(hs_mirror_db_open(f->path, HS_MDB_READ, &db, &cause), HS_MDB_EMPTY);
	assert_null(db);
	free(cause);
	cause = NULL;
	assert_int_equal(hs_mirror_db_read_runs(f->path, &last, NULL, &cause), HS_MDB_EMPTY);
	free(cause);
	cause = NULL;

	umask(022);
	db = open_writer(f);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(query_int(f, "PRAGMA user_version"), 1);
	assert_int_equal(query_int(f, "PRAGMA application_id"), 0x68734d31);
	char *mode = query_text(f, "PRAGMA journal_mode");
	assert_string_equal(mode, "wal");
	free(mode);

	/* One writer at a time. */
	assert_int_equal(hs_mirror_db_open(f->path, HS_MDB_WRITE, &db2, &cause), HS_MDB_BUSY);
	assert_non_null(strstr(cause, "another healsync process"));
	free(cause);
	cause = NULL;
	/* Readers are welcome. */
	ok(hs_mirror_db_open(f->path, HS_MDB_READ, &db2, &cause), cause);
	ok(hs_mirror_db_runs(db2, &last, NULL, &cause), cause);
	assert_int_equal(last.id, 0);
	hs_mirror_db_close(db2);
	hs_mirror_db_close(db);
	db = open_writer(f);
	hs_mirror_db_close(db);

	/* A file made by someone else with a loose mode is made private. */
	assert_int_equal(chmod(f->path, 0644), 0);
	db = open_writer(f);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	hs_mirror_db_close(db);
	hs_mirror_db_close(NULL);
}

static void test_not_ours(void **state)
{
	struct fixture *f = *state;
	struct hs_mirror_db *db;
	sqlite3 *other;
	char *cause = NULL;

	assert_int_equal(sqlite3_open(f->path, &other), SQLITE_OK);
	assert_int_equal(sqlite3_exec(other, "CREATE TABLE t (x)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(other);
	assert_int_equal(hs_mirror_db_open(f->path, HS_MDB_WRITE, &db, &cause), HS_MDB_ERROR);
	assert_non_null(strstr(cause, "not a healsync mirror"));
	free(cause);
}

static void test_runs(void **state)
{
	struct fixture *f = *state;
	struct hs_mirror_db *db = open_writer(f);
	struct hs_mirror_plan plan;
	struct hs_mirror_run r, last, last_ok;
	char *cause = NULL, *list = NULL, *raw = NULL;
	int64_t run;

	/* Run 1: three records, two of whose ids differ only by a leading
	 * zero; every one is new, so every one gets a detail request. */
	ok(hs_mirror_db_run_begin(db, T0, &run, &cause), cause);
	assert_int_equal(run, 1);
	assert_int_equal(query_int(f, "SELECT count(*) FROM mirror_runs WHERE status = 'running'"),
			 1);
	ok(hs_mirror_db_batch_begin(db, &cause), cause);
	listed(db, "123", "A");
	listed(db, "0123", "B");
	listed(db, "123456789012345678901234567890", "C");
	listed(db, "123", "A"); /* seen again on a shifted page */
	ok(hs_mirror_db_batch_commit(db, &cause), cause);
	ok(hs_mirror_db_stage_base(db, "123", &list, &raw, &cause), cause);
	assert_string_equal(list, "{\"id\":\"123\",\"name\":\"A\"}");
	free(list);
	free(raw);
	ok(hs_mirror_db_plan(db, true, 2, 25, &plan, &cause), cause);
	assert_int_equal(plan.listed, 3);
	assert_int_equal(plan.fresh, 3);
	assert_int_equal(plan.absent + plan.refresh, 0);
	assert_int_equal(plan.wanted, 3);
	/* Nothing of it shows before the apply. */
	assert_int_equal(query_int(f, "SELECT count(*) FROM patients"), 0);
	assert_int_equal(answer_details(db, NULL), 3);
	ok(hs_mirror_db_apply(db, run, T0 + 5000, 2, &r, &cause), cause);
	assert_int_equal(r.created, 3);
	assert_int_equal(r.updated, 0);
	assert_int_equal(r.deleted, 0);
	assert_int_equal(r.records, 3);
	assert_int_equal(query_int(f, "SELECT count(*) FROM patients WHERE typeof(id) = 'text' "
				      "AND details_fetched_at = '2026-01-01T00:00:05.000Z' "
				      "AND first_seen_at = last_seen_at AND consent = 1"),
			 3);
	assert_int_equal(query_int(f, "SELECT count(*) FROM patients WHERE id = '0123'"), 1);
	assert_int_equal(query_int(f, "SELECT count(*) FROM mirror_staging"), 0);
	ok(hs_mirror_db_runs(db, &last, &last_ok, &cause), cause);
	assert_int_equal(last.id, 1);
	assert_string_equal(last.status, "ok");
	assert_int_equal(last.started_at, T0);
	assert_int_equal(last.ended_at, T0 + 5000);
	assert_int_equal(last.pages, 2);
	assert_int_equal(last.created, 3);
	assert_int_equal(last_ok.id, 1);

	/* Run 2: "123" renamed, "0123" missing from the list and gone (404),
	 * the 30-digit one missing but still there (200), one new record. No
	 * detail fetching: only the missing ones are asked about. */
	ok(hs_mirror_db_run_begin(db, T0 + 60000, &run, &cause), cause);
	ok(hs_mirror_db_stage_base(db, "123", &list, &raw, &cause), cause);
	assert_null(list); /* not staged yet: the stored record is the base */
	assert_non_null(strstr(raw, "\"consent\":true"));
	free(raw);
	listed(db, "123", "A2");
	listed(db, "9", "D");
	ok(hs_mirror_db_plan(db, false, 2, 25, &plan, &cause), cause);
	assert_int_equal(plan.listed, 2);
	assert_int_equal(plan.absent, 2);
	assert_int_equal(plan.fresh + plan.refresh, 0);
	const char *gone[] = {"0123", NULL};
	assert_int_equal(answer_details(db, gone), 2);
	ok(hs_mirror_db_apply(db, run, T0 + 65000, 1, &r, &cause), cause);
	assert_int_equal(r.created, 1);
	/* "123", renamed; the 30-digit one came back the same. */
	assert_int_equal(r.updated, 1);
	assert_int_equal(r.deleted, 1);
	assert_int_equal(query_int(f, "SELECT count(*) FROM patients WHERE deleted_at IS NULL"), 3);
	assert_int_equal(query_int(f, "SELECT count(*) FROM patients WHERE id = '0123' AND "
				      "deleted_at = '2026-01-01T00:01:05.000Z'"),
			 1);
	/* The new one has never been detail-fetched. */
	assert_int_equal(query_int(f, "SELECT count(*) FROM patients WHERE id = '9' AND "
				      "details_fetched_at IS NULL AND first_seen_at = "
				      "'2026-01-01T00:01:05.000Z'"),
			 1);
	/* A detail-fetched record keeps its first sight. */
	assert_int_equal(query_int(f, "SELECT count(*) FROM patients WHERE id = '123' AND "
				      "first_seen_at = '2026-01-01T00:00:05.000Z' AND last_seen_at "
				      "= '2026-01-01T00:01:05.000Z' AND name = 'A2'"),
			 1);

	/* Run 3 fails: staging is dropped, patients untouched. */
	ok(hs_mirror_db_run_begin(db, T0 + 120000, &run, &cause), cause);
	listed(db, "123", "Changed");
	ok(hs_mirror_db_run_end(db, run, T0 + 121000, "failed", "HTTP 401", 1, &cause), cause);
	assert_int_equal(query_int(f, "SELECT count(*) FROM patients WHERE name = 'Changed'"), 0);
	assert_int_equal(query_int(f, "SELECT count(*) FROM mirror_staging"), 0);
	ok(hs_mirror_db_runs(db, &last, &last_ok, &cause), cause);
	assert_int_equal(last.id, 3);
	assert_string_equal(last.status, "failed");
	assert_string_equal(last.error, "HTTP 401");
	assert_int_equal(last.records, 1);
	assert_int_equal(last_ok.id, 2);
	assert_int_equal(last_ok.ended_at, T0 + 65000);

	/* Run 4 is killed: the next run finds it running, marks it failed
	 * and clears what it staged. */
	ok(hs_mirror_db_run_begin(db, T0 + 180000, &run, &cause), cause);
	listed(db, "123", "Killed");
	hs_mirror_db_close(db);
	assert_int_equal(query_int(f, "SELECT count(*) FROM patients WHERE name = 'Killed'"), 0);
	db = open_writer(f);
	ok(hs_mirror_db_run_begin(db, T0 + 240000, &run, &cause), cause);
	assert_int_equal(run, 5);
	assert_int_equal(query_int(f, "SELECT count(*) FROM mirror_staging"), 0);
	char *err = query_text(f, "SELECT error FROM mirror_runs WHERE id = 4");
	assert_non_null(strstr(err, "interrupted"));
	free(err);
	/* A record deleted earlier comes back: created again. */
	listed(db, "0123", "B");
	listed(db, "123", "A2");
	listed(db, "9", "D");
	listed(db, "123456789012345678901234567890", "Fetched");
	ok(hs_mirror_db_plan(db, false, 2, 25, &plan, &cause), cause);
	assert_int_equal(plan.wanted, 0);
	ok(hs_mirror_db_apply(db, run, T0 + 245000, 1, &r, &cause), cause);
	assert_int_equal(r.created, 1);
	assert_int_equal(query_int(f, "SELECT count(*) FROM patients WHERE deleted_at IS NULL"), 4);
	hs_mirror_db_close(db);
}

/* With fetch_details, the records fetched longest ago are asked again:
 * percent of the list, at least the minimum. */
static void test_refresh(void **state)
{
	struct fixture *f = *state;
	struct hs_mirror_db *db = open_writer(f);
	struct hs_mirror_plan plan;
	char *cause = NULL, id[16];
	int64_t run, seq = 0;

	ok(hs_mirror_db_run_begin(db, T0, &run, &cause), cause);
	for (int i = 0; i < 300; i++) {
		snprintf(id, sizeof(id), "%d", 1000 + i);
		listed(db, id, "N");
	}
	ok(hs_mirror_db_plan(db, true, 2, 5, &plan, &cause), cause);
	assert_int_equal(plan.fresh, 300);
	/* Fetched in two batches, at different runs. */
	answer_details(db, NULL);
	ok(hs_mirror_db_apply(db, run, T0 + 1000, 3, NULL, &cause), cause);

	ok(hs_mirror_db_run_begin(db, T0 + 10000, &run, &cause), cause);
	for (int i = 0; i < 300; i++) {
		snprintf(id, sizeof(id), "%d", 1000 + i);
		listed(db, id, "N");
	}
	/* 2% of 300 is 6; the minimum of 5 does not matter. */
	ok(hs_mirror_db_plan(db, true, 2, 5, &plan, &cause), cause);
	assert_int_equal(plan.fresh, 0);
	assert_int_equal(plan.refresh, 6);
	char *got = NULL;
	/* The oldest first: all were fetched together, then by first sight. */
	assert_int_equal(hs_mirror_db_next_wanted(db, seq, &seq, &got, &cause), HS_MDB_OK);
	assert_string_equal(got, "1000");
	free(got);
	answer_details(db, NULL);
	ok(hs_mirror_db_apply(db, run, T0 + 11000, 3, NULL, &cause), cause);
	assert_int_equal(query_int(f, "SELECT count(*) FROM patients WHERE details_fetched_at = "
				      "'2026-01-01T00:00:11.000Z'"),
			 6);

	/* Next time the next six: 1006.. */
	ok(hs_mirror_db_run_begin(db, T0 + 20000, &run, &cause), cause);
	for (int i = 0; i < 300; i++) {
		snprintf(id, sizeof(id), "%d", 1000 + i);
		listed(db, id, "N");
	}
	ok(hs_mirror_db_plan(db, true, 2, 50, &plan, &cause), cause);
	assert_int_equal(plan.refresh, 50); /* the minimum wins */
	seq = 0;
	assert_int_equal(hs_mirror_db_next_wanted(db, seq, &seq, &got, &cause), HS_MDB_OK);
	assert_string_equal(got, "1006");
	free(got);
	hs_mirror_db_close(db);
}

static int count(const char *json, size_t len, void *arg)
{
	assert_int_equal(strlen(json), len);
	assert_true(json[0] == '{');
	++*(int *)arg;
	return 0;
}

static void test_each_live(void **state)
{
	struct fixture *f = *state;
	struct hs_mirror_db *db = open_writer(f);
	char *cause = NULL;
	int64_t run;
	int n = 0;

	ok(hs_mirror_db_run_begin(db, T0, &run, &cause), cause);
	listed(db, "1", "A");
	listed(db, "2", "B");
	ok(hs_mirror_db_apply(db, run, T0, 1, NULL, &cause), cause);
	assert_int_equal(hs_mirror_db_each_live(db, count, &n, &cause), 0);
	assert_int_equal(n, 2);
	hs_mirror_db_close(db);
}

static void test_time(void **state)
{
	char buf[32];

	(void)state;
	hs_mirror_time_format(T0 + 1234, buf, sizeof(buf));
	assert_string_equal(buf, "2026-01-01T00:00:01.234Z");
	assert_int_equal(hs_mirror_time_parse(buf), T0 + 1234);
	hs_mirror_time_format(0, buf, sizeof(buf));
	assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
	assert_int_equal(hs_mirror_time_parse(buf), 0);
	assert_int_equal(hs_mirror_time_parse("2026-02-30T00:00:00.000Z"), -1);
	assert_int_equal(hs_mirror_time_parse("2026-01-01T00:00:00Z"), -1);
	assert_int_equal(hs_mirror_time_parse("2026-01-01T00:00:00.000+01:00"), -1);
	assert_int_equal(hs_mirror_time_parse("2026-01-01T00:00:00.000Zx"), -1);
	assert_int_equal(hs_mirror_time_parse(""), -1);
	assert_int_equal(hs_mirror_time_parse(NULL), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_open, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_ours, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_runs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refresh, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_each_live, setup, teardown),
	    cmocka_unit_test(test_time),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
