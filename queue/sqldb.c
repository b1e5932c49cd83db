/*
 * sqldb: opening, migrating and running statements on an SQLite file
 * (see sqldb.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue/sqldb.h"

/* Switching a new file to WAL needs it to itself for a moment, and SQLite
 * does not wait through the busy handler there (the connection would hold
 * a read lock while it waits, which could deadlock): two processes opening a
 * new file at once make one of them retry here. Once the file is in WAL the
 * pragma answers at once. */
#define WAL_RETRY_MS 5

static int fail(char **cause, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(char **cause, const char *fmt, ...)
{
	va_list ap;

	if (cause) {
		va_start(ap, fmt);
		if (vasprintf(cause, fmt, ap) < 0)
			*cause = NULL;
		va_end(ap);
	}
	return -1;
}

int hs_sqldb_cause(struct hs_sqldb *d, char **cause, const char *what)
{
	return fail(cause, "%s: %s", what, d->db ? sqlite3_errmsg(d->db) : "out of memory");
}

/* ---- statements and transactions ------------------------------------------ */

static sqlite3_stmt *prepare(struct hs_sqldb *d, sqlite3_stmt **slot, const char *sql,
			     const char *what, char **cause)
{
	if (!*slot && sqlite3_prepare_v3(d->db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL) !=
			  SQLITE_OK) {
		hs_sqldb_cause(d, cause, what);
		*slot = NULL;
	}
	return *slot;
}

sqlite3_stmt *hs_sqldb_stmt(struct hs_sqldb *d, size_t id, const char *what, char **cause)
{
	if (id >= d->n) {
		fail(cause, "%s: no statement %zu", what, id);
		return NULL;
	}
	return prepare(d, &d->stmt[id], d->sql[id], what, cause);
}

void hs_sqldb_finish(sqlite3_stmt *st)
{
	if (st) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
}

int hs_sqldb_run(struct hs_sqldb *d, sqlite3_stmt *st, const char *what, char **cause)
{
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	if (rc != SQLITE_DONE)
		hs_sqldb_cause(d, cause, what); /* before the reset, which keeps the code */
	hs_sqldb_finish(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int hs_sqldb_exec(struct hs_sqldb *d, size_t id, const char *what, char **cause)
{
	sqlite3_stmt *st = hs_sqldb_stmt(d, id, what, cause);

	return st ? hs_sqldb_run(d, st, what, cause) : -1;
}

int hs_sqldb_begin(struct hs_sqldb *d, bool write, const char *what, char **cause)
{
	sqlite3_stmt *st = write ? prepare(d, &d->begin, "BEGIN IMMEDIATE", what, cause)
				 : prepare(d, &d->begin_read, "BEGIN DEFERRED", what, cause);

	return st ? hs_sqldb_run(d, st, what, cause) : -1;
}

void hs_sqldb_rollback(struct hs_sqldb *d)
{
	sqlite3_stmt *st;

	if (d->db && !sqlite3_get_autocommit(d->db) &&
	    (st = prepare(d, &d->rollback, "ROLLBACK", "rollback", NULL)))
		hs_sqldb_run(d, st, "rollback", NULL);
}

int hs_sqldb_commit(struct hs_sqldb *d, const char *what, char **cause)
{
	sqlite3_stmt *st = prepare(d, &d->commit, "COMMIT", what, cause);

	if (st && hs_sqldb_run(d, st, what, cause) == 0)
		return 0;
	hs_sqldb_rollback(d);
	return -1;
}

int hs_sqldb_int(struct hs_sqldb *d, const char *sql, int64_t *ret, const char *what, char **cause)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(d->db, sql, -1, &st, NULL) != SQLITE_OK)
		goto fail;
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		goto fail;
	*ret = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
	sqlite3_finalize(st);
	return 0;
fail:
	hs_sqldb_cause(d, cause, what);
	sqlite3_finalize(st);
	return -1;
}

/* Statements with IN lists or such CHECKs (every insert into the queue's
 * jobs table) open ephemeral tables, each with a page cache of its own, and
 * by default each new cache starts with a bulk allocation of 20 pages (87
 * KiB). At the top of the heap, glibc gives that back to the kernel when it
 * is freed and maps it again for the next one: a scan queueing 100,000
 * files made 40,000 brk calls and as many rounds of page faults, and took
 * twice as long. Without the bulk allocation, pages come one at a time from
 * malloc's free lists. */
int hs_sqldb_setup(void)
{
	return sqlite3_config(SQLITE_CONFIG_PAGECACHE, NULL, 0, 0) == SQLITE_OK ? 0 : -1;
}

/* ---- opening ----------------------------------------------------------------- */

/* A new file is created with its mode before SQLite opens it; an existing
 * one, and its -wal and -shm (which a crash leaves behind with the mode
 * they had), are given it by path. No descriptor of an existing file is
 * opened here: closing it would drop the POSIX locks SQLite holds on the
 * file in this process, should another connection have it open. Messages
 * leave the path to the caller, who knows it. */
static int set_mode(const char *path, const char *kind, mode_t mode, char **cause)
{
	struct stat st;
	char side[4200];
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, mode);

	if (fd >= 0) {
		/* The umask may have taken bits the mode wants. */
		int rc = fchmod(fd, mode);
		int e = errno;
		close(fd);
		if (rc != 0)
			return fail(cause, "setting the mode of the %s file: %s", kind,
				    strerror(e));
		return 0;
	}
	if (errno != EEXIST)
		return fail(cause, "creating the %s file: %s", kind, strerror(errno));
	if (stat(path, &st) != 0)
		return fail(cause, "opening the %s file: %s", kind, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return fail(cause, "the %s file is not a regular file", kind);
	/* Best effort: the owner may be another user (root running the CLI). */
	if ((st.st_mode & 0777) != mode && chmod(path, mode) != 0 && errno != EPERM)
		return fail(cause, "setting the mode of the %s file: %s", kind, strerror(errno));
	for (int i = 0; i < 2; i++) {
		snprintf(side, sizeof(side), "%s%s", path, i ? "-shm" : "-wal");
		if (lstat(side, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) != mode &&
		    chmod(side, mode) != 0 && errno != EPERM)
			return fail(cause, "setting the mode of the %s file's %s: %s", kind,
				    i ? "-shm" : "-wal", strerror(errno));
	}
	return 0;
}

/* "file:" and path, percent-encoded where a URI would read it otherwise. */
static char *file_uri(const char *path, const char *query)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t len = strlen(path);
	char *uri = malloc(5 + 3 * len + strlen(query) + 1), *p = uri;

	if (!uri)
		return NULL;
	p += sprintf(p, "file:");
	for (const unsigned char *s = (const unsigned char *)path; *s; s++) {
		if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || strchr("/-._~", *s)) {
			*p++ = (char)*s;
		} else {
			*p++ = '%';
			*p++ = hex[*s >> 4];
			*p++ = hex[*s & 15];
		}
	}
	strcpy(p, query);
	return uri;
}

static int set_wal(struct hs_sqldb *d, char **cause)
{
	const char *what = "setting journal_mode=WAL", *mode;
	sqlite3_stmt *st = NULL;
	int rc;

	for (int tries = 0;; tries++) {
		if (sqlite3_prepare_v2(d->db, "PRAGMA journal_mode = WAL", -1, &st, NULL) !=
		    SQLITE_OK)
			goto fail;
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			break;
		if ((rc & 0xff) != SQLITE_BUSY || tries >= HS_SQLDB_BUSY_TIMEOUT_MS / WAL_RETRY_MS)
			goto fail;
		sqlite3_finalize(st);
		st = NULL;
		sqlite3_sleep(WAL_RETRY_MS);
	}
	mode = (const char *)sqlite3_column_text(st, 0);
	if (!mode || strcmp(mode, "wal") != 0) {
		fail(cause, "journal_mode=WAL did not take (the mode is %s)",
		     mode ? mode : "unknown");
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	return 0;
fail:
	hs_sqldb_cause(d, cause, what);
	sqlite3_finalize(st);
	return -1;
}

/* Sets a pragma and reads it back: `want` or an error. */
static int set_checked(struct hs_sqldb *d, const char *set, const char *get, int64_t want,
		       const char *what, char **cause)
{
	int64_t v;

	if (hs_sqldb_int(d, set, &v, what, cause) || hs_sqldb_int(d, get, &v, what, cause))
		return -1;
	if (v != want)
		return fail(cause, "%s did not take (it reads %lld)", what, (long long)v);
	return 0;
}

static int check_version(const struct hs_sqldb_schema *s, int64_t app, int64_t version,
			 char **cause)
{
	if (app != 0 && app != s->application_id)
		return fail(cause,
			    "the file is an SQLite database of another application "
			    "(application_id %#llx), not a healsync %s",
			    (unsigned long long)app, s->kind);
	if (version > s->version)
		return fail(cause,
			    "the %s database has schema version %lld, newer than this "
			    "healsync knows (%d); refusing to use it with an older version",
			    s->kind, (long long)version, s->version);
	return 0;
}

/* Checks the application id and the version; a writer brings the schema to
 * s->version in one transaction. *ret_version: the version now. */
static int migrate(struct hs_sqldb *d, const struct hs_sqldb_schema *s, bool write,
		   int64_t *ret_version, char **cause)
{
	int64_t version, objects, app;
	char *err = NULL, sql[64];

	if (hs_sqldb_int(d, "PRAGMA application_id", &app, "reading the application id", cause) ||
	    hs_sqldb_int(d, "PRAGMA user_version", &version, "reading the schema version", cause) ||
	    check_version(s, app, version, cause))
		return -1;
	*ret_version = version < 0 ? 0 : version;
	if (version == s->version || !write)
		return 0;
	/* A process opening a new file while another switches it to WAL can
	 * find it locked without the busy handler being asked: wait for that as
	 * set_wal does. */
	for (int tries = 0;; tries++) {
		if (hs_sqldb_begin(d, true, "starting the schema migration", cause) == 0)
			break;
		if ((sqlite3_errcode(d->db) & 0xff) != SQLITE_BUSY ||
		    tries >= HS_SQLDB_BUSY_TIMEOUT_MS / WAL_RETRY_MS)
			return -1;
		if (cause) {
			free(*cause);
			*cause = NULL;
		}
		sqlite3_sleep(WAL_RETRY_MS);
	}
	/* Another process may have migrated it meanwhile. */
	if (hs_sqldb_int(d, "PRAGMA user_version", &version, "reading the schema version", cause) ||
	    check_version(s, app, version, cause))
		goto fail;
	if (version == s->version) { /* it did */
		hs_sqldb_rollback(d);
		*ret_version = version;
		return 0;
	}
	if (version <= 0) {
		if (hs_sqldb_int(d, "SELECT count(*) FROM sqlite_schema", &objects,
				 "reading the schema", cause))
			goto fail;
		if (objects != 0) {
			fail(cause,
			     "the file is an SQLite database but not a healsync %s "
			     "(it has tables and no schema version)",
			     s->kind);
			goto fail;
		}
		version = 0;
	}
	for (int64_t v = version; v < s->version; v++) {
		if (sqlite3_exec(d->db, s->migrations[v], NULL, NULL, &err) != SQLITE_OK) {
			fail(cause, "migrating the schema from version %lld to %lld: %s",
			     (long long)v, (long long)v + 1, err ? err : "out of memory");
			sqlite3_free(err);
			goto fail;
		}
	}
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", s->version);
	if (sqlite3_exec(d->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		hs_sqldb_cause(d, cause, "setting the schema version");
		goto fail;
	}
	*ret_version = s->version;
	return hs_sqldb_commit(d, "committing the schema migration", cause);
fail:
	hs_sqldb_rollback(d);
	return -1;
}

int hs_sqldb_open(struct hs_sqldb *d, const char *path, const struct hs_sqldb_schema *schema,
		  unsigned flags, const char *const *sql, size_t n, int64_t *ret_version,
		  char **cause)
{
	bool write = flags & HS_SQLDB_WRITE;
	bool immutable = !write && (flags & HS_SQLDB_IMMUTABLE);
	char pragma[64], *uri = NULL;
	int64_t v;
	int rc;

	*d = (struct hs_sqldb){.sql = sql, .n = n};
	if (write && set_mode(path, schema->kind, schema->mode ? schema->mode : 0600, cause) != 0)
		return -1;
	if (!(d->stmt = calloc(n ? n : 1, sizeof(*d->stmt))))
		return fail(cause, "out of memory");
	if (immutable && !(uri = file_uri(path, "?immutable=1"))) {
		fail(cause, "out of memory");
		goto fail;
	}
	if (immutable)
		rc = sqlite3_open_v2(uri, &d->db,
				     SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX,
				     NULL);
	else
		rc = sqlite3_open_v2(path, &d->db,
				     (!write && (flags & HS_SQLDB_READONLY)
					  ? SQLITE_OPEN_READONLY
					  : SQLITE_OPEN_READWRITE) |
					 SQLITE_OPEN_NOMUTEX,
				     NULL);
	free(uri);
	if (rc != SQLITE_OK) {
		fail(cause, "opening the %s: %s", schema->kind,
		     d->db ? sqlite3_errmsg(d->db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_extended_result_codes(d->db, 1);
	if (sqlite3_busy_timeout(d->db, HS_SQLDB_BUSY_TIMEOUT_MS) != SQLITE_OK) {
		hs_sqldb_cause(d, cause, "setting the busy timeout");
		goto fail;
	}
	/* Foreign keys can only be switched outside a transaction. */
	if (schema->foreign_keys && set_checked(d, "PRAGMA foreign_keys = ON",
						"PRAGMA foreign_keys", 1, "foreign_keys=ON", cause))
		goto fail;
	if (schema->cache_kib > 0) {
		snprintf(pragma, sizeof(pragma), "PRAGMA cache_size = -%d", schema->cache_kib);
		if (hs_sqldb_int(d, pragma, &v, "setting the cache size", cause))
			goto fail;
	}
	if (write) {
		if (set_wal(d, cause) != 0 ||
		    set_checked(d, "PRAGMA synchronous = FULL", "PRAGMA synchronous", 2,
				"synchronous=FULL", cause))
			goto fail;
		/* Keep the WAL file from staying huge after a big burst. */
		if (hs_sqldb_int(d, "PRAGMA journal_size_limit = 67108864", &v,
				 "setting journal_size_limit", cause))
			goto fail;
	}
	if (migrate(d, schema, write, ret_version, cause) != 0)
		goto fail;
	return 0;
fail:
	hs_sqldb_close(d);
	return -1;
}

void hs_sqldb_close(struct hs_sqldb *d)
{
	if (!d)
		return;
	hs_sqldb_rollback(d);
	for (size_t i = 0; d->stmt && i < d->n; i++)
		sqlite3_finalize(d->stmt[i]);
	sqlite3_finalize(d->begin);
	sqlite3_finalize(d->begin_read);
	sqlite3_finalize(d->commit);
	sqlite3_finalize(d->rollback);
	sqlite3_close(d->db);
	free(d->stmt);
	*d = (struct hs_sqldb){0};
}
