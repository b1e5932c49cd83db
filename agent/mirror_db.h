/*
 * mirror_db: the mirror database, by default state_dir/mirror.db. Its
 * public tables, `patients` and `mirror_runs`, are documented for the
 * programs that read them in docs/mirror-schema.md; `mirror_staging` is
 * private to the run in progress.
 *
 * A run, as mirror.c drives it:
 *
 *   run_begin     a 'running' row in mirror_runs; staging left by a killed
 *                 run is cleared and that run marked failed
 *   stage_*       every record fetched goes to staging, never to patients:
 *                 listed ones, then the results of detail requests (a
 *                 record, or gone after a 404)
 *   plan          after the list: records that were live but are not in it
 *                 join staging to be checked, and the records that need a
 *                 detail request are marked; next_wanted walks them
 *   apply         one transaction moves staging into patients, counts
 *                 what was created, updated and deleted, and ends the run
 *   run_end       instead of apply: the run failed or was cancelled;
 *                 staging is dropped and patients is untouched
 *
 * So a reader (WAL: readers never block the writer or each other) always
 * sees the complete state of the last finished run.
 *
 * One writer at a time: opening for writing takes an exclusive lock on
 * "<path>.lock" (HS_MDB_BUSY when another process holds it). The file is
 * created with mode 0600, WAL, synchronous=FULL, busy_timeout; the schema
 * version is PRAGMA user_version. Times are Unix milliseconds from the
 * caller, stored as RFC 3339 UTC text ("2026-03-15T09:30:00.000Z").
 *
 * Calls never log; errors come back as a negative return and an allocated
 * one-line *cause. Every call blocks on disk I/O (a write transaction ends
 * with an fsync); apply is one transaction over the whole data set.
 */
#ifndef HS_AGENT_MIRROR_DB_H
#define HS_AGENT_MIRROR_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
	HS_MDB_OK = 0,
	HS_MDB_EMPTY = 1, /* nothing (more) to return; no database yet */
	HS_MDB_BUSY = 2,  /* another process is writing the database */
	HS_MDB_ERROR = -1,
};

enum hs_mdb_mode {
	HS_MDB_READ,  /* an existing database, for status and tests */
	HS_MDB_WRITE, /* created if needed, locked against other writers */
};

struct hs_mirror_db;

/* One record for staging. Strings are copied by the call; NULL is SQL
 * NULL. */
struct hs_mirror_row {
	const char *id;
	const char *name;
	const char *created_at;
	const char *pronouns;
	const char *notes;
	int consent; /* 1, 0, or -1 for NULL */
	const char *raw_json;
	const char *list_json; /* stage_listed: this run's list record */
};

/* What a run did; also one row of mirror_runs. */
struct hs_mirror_run {
	int64_t id; /* 0: there is no such run */
	char status[16];
	int64_t started_at; /* Unix ms */
	int64_t ended_at;   /* Unix ms; 0 while running or when interrupted */
	int64_t pages, records, created, updated, deleted;
	char error[256]; /* "" when none */
};

/* After the list: what the detail requests are for. */
struct hs_mirror_plan {
	int64_t listed;	 /* distinct records in this run's list */
	int64_t absent;	 /* live before, not listed: to check */
	int64_t fresh;	 /* listed, never detail-fetched */
	int64_t refresh; /* listed, fetched before, fetched again */
	int64_t wanted;	 /* detail requests to make: the three above */
};

/* Opens path. HS_MDB_READ: HS_MDB_EMPTY when the file does not exist or
 * holds no schema yet. HS_MDB_WRITE: HS_MDB_BUSY when another writer holds
 * the lock. Both: HS_MDB_OK with *ret, or HS_MDB_ERROR. *cause is set
 * whenever *ret is not. */
int hs_mirror_db_open(const char *path, enum hs_mdb_mode mode, struct hs_mirror_db **ret,
		      char **cause);
/* Accepts NULL; returns NULL. Releases the writer lock. */
struct hs_mirror_db *hs_mirror_db_close(struct hs_mirror_db *db);

/* Starts a run at now: *ret_id is its mirror_runs id. */
int hs_mirror_db_run_begin(struct hs_mirror_db *db, int64_t now, int64_t *ret_id, char **cause);

/* Groups stage calls in one transaction (one fsync for a page). */
int hs_mirror_db_batch_begin(struct hs_mirror_db *db, char **cause);
int hs_mirror_db_batch_commit(struct hs_mirror_db *db, char **cause);
void hs_mirror_db_batch_rollback(struct hs_mirror_db *db);

/* The JSON a record of id is merged onto: *ret_list is this run's list
 * record (NULL when it was not listed), *ret_raw the staged record, else
 * the stored one (NULL when none). Caller frees both. */
int hs_mirror_db_stage_base(struct hs_mirror_db *db, const char *id, char **ret_list,
			    char **ret_raw, char **cause);
/* A record seen in the list (again: it replaces the earlier sighting). */
int hs_mirror_db_stage_listed(struct hs_mirror_db *db, const struct hs_mirror_row *row,
			      char **cause);
/* A record a detail request returned; row->list_json is not used. */
int hs_mirror_db_stage_fetched(struct hs_mirror_db *db, const struct hs_mirror_row *row,
			       char **cause);
/* A detail request for id answered 404. */
int hs_mirror_db_stage_gone(struct hs_mirror_db *db, const char *id, char **cause);

/* Stages the records to check, and marks the detail requests: every absent
 * record; with fetch_details, every listed record never fetched, plus the
 * listed records fetched longest ago, refresh_percent of the list but at
 * least refresh_min of them. */
int hs_mirror_db_plan(struct hs_mirror_db *db, bool fetch_details, unsigned refresh_percent,
		      int64_t refresh_min, struct hs_mirror_plan *ret, char **cause);
/* The next record wanted after after_seq (start with 0): *ret_seq, and its
 * id in *ret_id (caller frees). HS_MDB_EMPTY when there is none. */
int hs_mirror_db_next_wanted(struct hs_mirror_db *db, int64_t after_seq, int64_t *ret_seq,
			     char **ret_id, char **cause);

/* Applies the run at now in one transaction and ends it 'ok': *ret holds
 * its mirror_runs row. pages: how many list pages were fetched. */
int hs_mirror_db_apply(struct hs_mirror_db *db, int64_t run_id, int64_t now, int64_t pages,
		       struct hs_mirror_run *ret, char **cause);
/* Ends the run as status ("failed" or "cancelled") with error, dropping
 * staging; patients is not touched. */
int hs_mirror_db_run_end(struct hs_mirror_db *db, int64_t run_id, int64_t now, const char *status,
			 const char *error, int64_t pages, char **cause);
/* Adds an error to a run that was applied (the export failed). */
int hs_mirror_db_run_note(struct hs_mirror_db *db, int64_t run_id, const char *error, char **cause);

/* Calls fn with each live record's raw JSON, from one consistent read. A
 * non-zero return from fn stops the walk and is returned. */
int hs_mirror_db_each_live(struct hs_mirror_db *db,
			   int (*fn)(const char *json, size_t len, void *arg), void *arg,
			   char **cause);

/* The last run (any status) and the last successful one; id 0 when none.
 * Either pointer may be NULL. */
int hs_mirror_db_runs(struct hs_mirror_db *db, struct hs_mirror_run *ret_last,
		      struct hs_mirror_run *ret_last_ok, char **cause);
/* The same for the database at path, opened for reading and closed again:
 * HS_MDB_EMPTY when it does not exist yet. For `healsync status` and the
 * scheduler (last_ok->ended_at is the last successful run's end). */
int hs_mirror_db_read_runs(const char *path, struct hs_mirror_run *ret_last,
			   struct hs_mirror_run *ret_last_ok, char **cause);

/* RFC 3339 UTC with milliseconds; buf holds at least 32 bytes. */
void hs_mirror_time_format(int64_t ms, char *buf, size_t len);
/* The inverse, for that exact form only; -1 for anything else. */
int64_t hs_mirror_time_parse(const char *s);

#endif
