/*
 * sqldb: the SQLite plumbing under both of healsync's databases, the job
 * queue (queue.c) and the patient mirror (agent/mirror_db.c).
 *
 * Opening does what both need before any query: the file is given the
 * schema's mode (0600, private, unless the schema says otherwise; SQLite
 * gives its -wal and -shm files the same mode), has
 * extended result codes and a busy timeout, and for a writer WAL and
 * synchronous=FULL, each read back, since a queue that silently ran without
 * them could lose work on a power failure. Then the file's application_id
 * must be ours (or 0 for a new file) and its user_version no newer than the
 * caller knows; a writer brings an older one up to date through the
 * caller's numbered migrations in one transaction, re-reading the version
 * inside it because two processes may open a new file at once.
 *
 * After that, statements: each caller numbers its SQL in an array of its
 * own (an enum indexes it) and hs_sqldb_stmt prepares an entry on first use
 * and keeps it for the life of the connection. Transactions run on three
 * statements of sqldb's own.
 *
 * Example, the mirror's writer:
 *
 *   struct hs_sqldb db;
 *   hs_sqldb_open(&db, path, &mirror_schema, HS_SQLDB_WRITE, stmt_sql, S_COUNT,
 *                 &version, &cause);
 *   hs_sqldb_begin(&db, "starting a run", &cause);
 *   st = hs_sqldb_stmt(&db, S_RUN_INSERT, "starting a run", &cause);
 *   ... bind, step, hs_sqldb_finish(st) ...
 *   hs_sqldb_commit(&db, "starting a run", &cause);
 *   hs_sqldb_close(&db);
 *
 * Like the rest of queue/ it never logs. Calls return 0, or -1 with an
 * allocated one-line *cause ("what: SQLite's message"; cause may be NULL for
 * no message) that the caller frees. Every call may block on the disk (a
 * commit ends with an fsync) or on another process's lock, for at most the
 * busy timeout. A struct hs_sqldb is used by one thread at a time.
 */
#ifndef HS_QUEUE_SQLDB_H
#define HS_QUEUE_SQLDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#define HS_SQLDB_BUSY_TIMEOUT_MS 10000

struct hs_sqldb_schema {
	const char *kind; /* what the file is, in messages: "queue", "mirror" */
	int32_t application_id;
	int version;		       /* the schema this code uses */
	const char *const *migrations; /* [v] brings version v to v + 1 */
	int cache_kib;		       /* page cache; 0 for SQLite's default */
	bool foreign_keys;	       /* switch them on (and check they are) */
	/* The permission bits a writer gives the file and its -wal and -shm;
	 * 0 for 0600. 0640 lets the folder's group read it (healsync jobs). */
	unsigned mode;
};

enum hs_sqldb_flags {
	HS_SQLDB_WRITE = 1 << 0, /* create, WAL, synchronous=FULL, migrate; else an
				    existing file, read as it is */
	/* Without WRITE: refuse every write, even where the file's mode
	 * would allow it. */
	HS_SQLDB_READONLY = 1 << 1,
	/* READONLY, and read the file alone, with no lock, WAL or -shm. Only
	 * for a reader that cannot create the -shm beside a WAL file no
	 * writer holds open (SQLite cannot read it otherwise). A writer that
	 * starts meanwhile may make a read fail; it never harms the file. */
	HS_SQLDB_IMMUTABLE = 1 << 2,
};

struct hs_sqldb {
	sqlite3 *db;
	const char *const *sql; /* the caller's statements, n of them */
	sqlite3_stmt **stmt;	/* prepared on first use */
	size_t n;
	sqlite3_stmt *begin, *begin_read, *commit, *rollback;
};

/* Process-wide settings: call once, before any database is opened (main
 * does, first thing). Returns 0, or -1 if SQLite was already in use. */
int hs_sqldb_setup(void);

/* Opens path into *d (all zero on failure). *ret_version: the schema
 * version the file has now (0 for an empty file opened read-only). sql and
 * its n statements must outlive d. */
int hs_sqldb_open(struct hs_sqldb *d, const char *path, const struct hs_sqldb_schema *schema,
		  unsigned flags, const char *const *sql, size_t n, int64_t *ret_version,
		  char **cause);
/* Rolls back an open transaction, finalizes everything, closes. Accepts a
 * closed or zeroed d. */
void hs_sqldb_close(struct hs_sqldb *d);

/* The caller's statement id, prepared; NULL with *cause set on failure. */
sqlite3_stmt *hs_sqldb_stmt(struct hs_sqldb *d, size_t id, const char *what, char **cause);
/* Resets st and clears its bindings; accepts NULL. */
void hs_sqldb_finish(sqlite3_stmt *st);
/* Steps st to its end (rows are not wanted) and finishes it. */
int hs_sqldb_run(struct hs_sqldb *d, sqlite3_stmt *st, const char *what, char **cause);
/* hs_sqldb_run of the caller's statement id. */
int hs_sqldb_exec(struct hs_sqldb *d, size_t id, const char *what, char **cause);

/* BEGIN IMMEDIATE (write), or BEGIN DEFERRED (a consistent read). */
int hs_sqldb_begin(struct hs_sqldb *d, bool write, const char *what, char **cause);
/* On failure the transaction is rolled back. */
int hs_sqldb_commit(struct hs_sqldb *d, const char *what, char **cause);
/* Rolls back the transaction open, if any. */
void hs_sqldb_rollback(struct hs_sqldb *d);

/* A one-row query's first column as an integer (-1 when it gave no row). */
int hs_sqldb_int(struct hs_sqldb *d, const char *sql, int64_t *ret, const char *what, char **cause);
/* Sets *cause to "what: SQLite's last message"; returns -1. */
int hs_sqldb_cause(struct hs_sqldb *d, char **cause, const char *what);

#endif
