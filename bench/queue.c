/*
 * bench_queue: the job queue against raw SQLite, and claim latency against
 * queue length.
 *
 * 1. fsync: what one fdatasync of a 4 KiB write costs in the directory, since
 *    every queue transaction pays one (WAL, synchronous=FULL).
 * 2. Throughput, in the daemon's pattern: enqueue a burst of 100 with
 *    hs_queue_enqueue_many, then for each job claim, set_facts and complete,
 *    each its own transaction. The baseline does the same SQL statements
 *    (copied from queue/queue.c) through bare prepared statements on a
 *    database with the same schema and settings. The two alternate in chunks
 *    of 1,000 jobs (each first every other chunk) so that drift in the
 *    disk's speed hits both alike.
 * 3. Claim latency with 10,000 and 1,000,000 queued jobs (filled in
 *    transactions of 10,000), median and p99 of single claims; next_due and
 *    counts beside it.
 *
 * Usage: bench_queue [-n JOBS] [-d DIR] [-s SAMPLES] [-L LARGE] [-k]
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "queue/queue.h"

#define BURST	100
#define CHUNK	1000
#define FILL_TX 10000
#define SHA	"5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"

struct opts {
	long jobs;
	long samples;
	long large;
	const char *dir;
	bool keep;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void die(const char *what, const char *why)
{
	fprintf(stderr, "bench_queue: %s: %s\n", what, why ? why : "out of memory");
	exit(1);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Sorts v and returns the q-quantile (0..1). */
static double quantile(double *v, size_t n, double q)
{
	size_t i;

	qsort(v, n, sizeof(*v), cmp_double);
	i = (size_t)(q * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

struct names {
	char path[BURST][96];
	char remote[BURST][80];
	struct hs_job_spec spec[BURST];
};

static void make_burst(struct names *nm, long first, const char *tag)
{
	for (int i = 0; i < BURST; i++) {
		long k = first + i;
		snprintf(nm->path[i], sizeof(nm->path[i]),
			 "/srv/exports/lab/2026-11-22/%s/report-%07ld.pdf", tag, k);
		snprintf(nm->remote[i], sizeof(nm->remote[i]), "lab/2026-11-22/%s/report-%07ld.pdf",
			 tag, k);
		nm->spec[i] = (struct hs_job_spec){.path = nm->path[i],
						   .watch_root = "/srv/exports/lab",
						   .remote_name = nm->remote[i],
						   .size = 10000 + k % 5000,
						   .mtime_ns = 1763800000000000000 + k,
						   .inode = 100000 + k};
	}
}

static void db_path(char *buf, size_t len, const struct opts *o, const char *name)
{
	snprintf(buf, len, "%s/%s", o->dir, name);
}

static void remove_db(const char *path)
{
	char p[4200];

	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
}

/* ---- 1. fsync ------------------------------------------------------------ */

static double fsync_us(const struct opts *o)
{
	char path[4200], block[4096];
	double t[200];
	int fd;

	snprintf(path, sizeof(path), "%s/fsync.probe", o->dir);
	fd = open(path, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		die(path, strerror(errno));
	memset(block, 'x', sizeof(block));
	for (int i = 0; i < 200; i++) {
		double t0 = now_s();
		if (pwrite(fd, block, sizeof(block), (off_t)(i % 16) * 4096) != sizeof(block) ||
		    fdatasync(fd) != 0)
			die(path, strerror(errno));
		t[i] = (now_s() - t0) * 1e6;
	}
	close(fd);
	unlink(path);
	return quantile(t, 200, 0.5);
}

/* ---- 2. throughput: the queue ------------------------------------------------ */

static void queue_chunk(struct hs_queue *q, long first, long n)
{
	static const char *sha = SHA;
	struct names nm;
	char *cause = NULL;

	for (long b = first; b < first + n; b += BURST) {
		make_burst(&nm, b, "q");
		if (hs_queue_enqueue_many(q, nm.spec, BURST, wall_ms(), &cause) != HS_Q_OK)
			die("enqueue", cause);
		for (int i = 0; i < BURST; i++) {
			struct hs_job *job = NULL;
			int rc = hs_queue_claim(q, wall_ms(), 300000, &job, &cause);
			if (rc != HS_Q_OK)
				die("claim", rc == HS_Q_EMPTY ? "nothing due" : cause);
			if (hs_queue_set_facts(q, job->id, job->lease_token, job->size,
					       job->mtime_ns, job->inode, sha, &cause) != HS_Q_OK ||
			    hs_queue_complete(q, job->id, job->lease_token, "file", wall_ms(), true,
					      &cause) != HS_Q_OK)
				die("complete", cause);
			hs_job_free(job);
		}
	}
}

/* ---- 2. throughput: the raw baseline ---------------------------------------- */

/* The statements queue/queue.c runs for this pattern, verbatim. */
#define WAITING "(state = 'queued' OR state = 'failed' OR state = 'active')"
#define HELD	"id = ?1 AND state = 'active' AND lease_token = ?2"
static const char *const raw_sql[] = {
    "BEGIN IMMEDIATE",
    "COMMIT",
    "INSERT INTO jobs (path, watch_root, remote_name, size, mtime_ns, inode, "
    "state, due_at, created_at, updated_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?7, ?7, ?7) "
    "ON CONFLICT (path) WHERE " WAITING " DO UPDATE SET "
    "watch_root = excluded.watch_root, remote_name = excluded.remote_name, "
    "sha256 = CASE WHEN size = excluded.size AND mtime_ns = excluded.mtime_ns "
    "AND inode = excluded.inode THEN sha256 END, "
    "size = excluded.size, mtime_ns = excluded.mtime_ns, inode = excluded.inode, "
    "state = 'queued', due_at = min(due_at, excluded.due_at), "
    "updated_at = excluded.updated_at "
    "WHERE state <> 'active' RETURNING id",
    "UPDATE jobs SET state = 'active', lease_token = lease_token + 1, due_at = ?2, "
    "updated_at = ?1 WHERE id = (SELECT id FROM jobs WHERE " WAITING
    " AND due_at <= ?1 ORDER BY due_at, id LIMIT 1) RETURNING "
    "id, path, watch_root, remote_name, size, mtime_ns, inode, sha256, state, attempts, "
    "due_at, lease_token, last_error, created_at, updated_at, upload_id, part_size, "
    "part_count",
    "UPDATE jobs SET size = ?3, mtime_ns = ?4, inode = ?5, sha256 = ?6 WHERE " HELD,
    "UPDATE jobs SET state = 'done', due_at = NULL, upload_id = NULL, "
    "part_size = NULL, part_count = NULL, updated_at = ?3 WHERE " HELD
    " AND sha256 IS NOT NULL RETURNING remote_name, sha256, size, mtime_ns, inode",
    "INSERT INTO uploaded (remote_name, sha256, size, mtime_ns, inode, "
    "file_id, uploaded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
    "ON CONFLICT (remote_name) DO UPDATE SET sha256 = excluded.sha256, "
    "size = excluded.size, mtime_ns = excluded.mtime_ns, "
    "inode = excluded.inode, file_id = excluded.file_id, "
    "uploaded_at = excluded.uploaded_at",
    "DELETE FROM parts WHERE job_id = ?1",
};
enum { R_BEGIN, R_COMMIT, R_ENQUEUE, R_CLAIM, R_FACTS, R_DONE, R_LEDGER, R_PARTS, R_COUNT };

struct raw {
	sqlite3 *db;
	sqlite3_stmt *st[R_COUNT];
};

static void raw_check(struct raw *r, int rc, int want, const char *what)
{
	if (rc != want)
		die(what, sqlite3_errmsg(r->db));
}

static void raw_exec(struct raw *r, int id)
{
	raw_check(r, sqlite3_step(r->st[id]), SQLITE_DONE, raw_sql[id]);
	sqlite3_reset(r->st[id]);
}

static void raw_open(struct raw *r, const char *path)
{
	struct hs_queue *q = NULL;
	char *cause = NULL;

	/* The same schema, made by the queue; then bare SQLite. */
	if (hs_queue_open(path, &q, &cause) != HS_Q_OK)
		die(path, cause);
	hs_queue_close(q);
	if (sqlite3_open_v2(path, &r->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
		die(path, sqlite3_errmsg(r->db));
	sqlite3_busy_timeout(r->db, 10000);
	if (sqlite3_exec(r->db,
			 "PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL; "
			 "PRAGMA synchronous = FULL; PRAGMA journal_size_limit = 67108864",
			 NULL, NULL, NULL) != SQLITE_OK)
		die(path, sqlite3_errmsg(r->db));
	for (int i = 0; i < R_COUNT; i++)
		if (sqlite3_prepare_v3(r->db, raw_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &r->st[i],
				       NULL) != SQLITE_OK)
			die(raw_sql[i], sqlite3_errmsg(r->db));
}

static void raw_close(struct raw *r)
{
	for (int i = 0; i < R_COUNT; i++)
		sqlite3_finalize(r->st[i]);
	sqlite3_close(r->db);
}

static void raw_chunk(struct raw *r, long first, long n)
{
	struct names nm;
	sqlite3_stmt *st;

	for (long b = first; b < first + n; b += BURST) {
		int64_t now = wall_ms();
		make_burst(&nm, b, "r");
		raw_exec(r, R_BEGIN);
		st = r->st[R_ENQUEUE];
		for (int i = 0; i < BURST; i++) {
			sqlite3_bind_text(st, 1, nm.spec[i].path, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 2, nm.spec[i].watch_root, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 3, nm.spec[i].remote_name, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 4, nm.spec[i].size);
			sqlite3_bind_int64(st, 5, nm.spec[i].mtime_ns);
			sqlite3_bind_int64(st, 6, nm.spec[i].inode);
			sqlite3_bind_int64(st, 7, now);
			raw_check(r, sqlite3_step(st), SQLITE_ROW, "enqueue");
			raw_check(r, sqlite3_step(st), SQLITE_DONE, "enqueue");
			sqlite3_reset(st);
		}
		raw_exec(r, R_COMMIT);

		for (int i = 0; i < BURST; i++) {
			int64_t id, token, size, mtime, inode;

			now = wall_ms();
			raw_exec(r, R_BEGIN);
			st = r->st[R_CLAIM];
			sqlite3_bind_int64(st, 1, now);
			sqlite3_bind_int64(st, 2, now + 300000);
			raw_check(r, sqlite3_step(st), SQLITE_ROW, "claim");
			id = sqlite3_column_int64(st, 0);
			size = sqlite3_column_int64(st, 4);
			mtime = sqlite3_column_int64(st, 5);
			inode = sqlite3_column_int64(st, 6);
			token = sqlite3_column_int64(st, 11);
			raw_check(r, sqlite3_step(st), SQLITE_DONE, "claim");
			sqlite3_reset(st);
			raw_exec(r, R_COMMIT);

			raw_exec(r, R_BEGIN);
			st = r->st[R_FACTS];
			sqlite3_bind_int64(st, 1, id);
			sqlite3_bind_int64(st, 2, token);
			sqlite3_bind_int64(st, 3, size);
			sqlite3_bind_int64(st, 4, mtime);
			sqlite3_bind_int64(st, 5, inode);
			sqlite3_bind_text(st, 6, SHA, -1, SQLITE_STATIC);
			raw_exec(r, R_FACTS);
			if (sqlite3_changes(r->db) != 1)
				die("facts", "no row");
			raw_exec(r, R_COMMIT);

			now = wall_ms();
			raw_exec(r, R_BEGIN);
			st = r->st[R_DONE];
			sqlite3_bind_int64(st, 1, id);
			sqlite3_bind_int64(st, 2, token);
			sqlite3_bind_int64(st, 3, now);
			raw_check(r, sqlite3_step(st), SQLITE_ROW, "done");
			sqlite3_stmt *l = r->st[R_LEDGER];
			sqlite3_bind_value(l, 1, sqlite3_column_value(st, 0));
			sqlite3_bind_value(l, 2, sqlite3_column_value(st, 1));
			sqlite3_bind_int64(l, 3, sqlite3_column_int64(st, 2));
			sqlite3_bind_int64(l, 4, sqlite3_column_int64(st, 3));
			sqlite3_bind_int64(l, 5, sqlite3_column_int64(st, 4));
			sqlite3_bind_text(l, 6, "file", -1, SQLITE_STATIC);
			sqlite3_bind_int64(l, 7, now);
			raw_check(r, sqlite3_step(st), SQLITE_DONE, "done");
			sqlite3_reset(st);
			raw_exec(r, R_LEDGER);
			sqlite3_bind_int64(r->st[R_PARTS], 1, id);
			raw_exec(r, R_PARTS);
			raw_exec(r, R_COMMIT);
		}
	}
}

/* ---- 3. claim latency --------------------------------------------------------- */

struct latency {
	long queued;
	double fill_s;
	double claim_med, claim_p99, due_med, counts_med;
};

static void measure_latency(const struct opts *o, long queued, struct latency *res)
{
	struct hs_job_spec *specs = calloc(FILL_TX, sizeof(*specs));
	char(*paths)[64] = calloc(FILL_TX, sizeof(*paths));
	double *t = calloc((size_t)o->samples, sizeof(*t));
	struct hs_queue *q = NULL;
	char path[4200], *cause = NULL;
	int64_t base = wall_ms() - 1000000000, counts[HS_JOB_NSTATES], at;
	double t0;

	if (!specs || !paths || !t)
		die("latency", NULL);
	snprintf(path, sizeof(path), "%s/latency-%ld.db", o->dir, queued);
	remove_db(path);
	if (hs_queue_open(path, &q, &cause) != HS_Q_OK)
		die(path, cause);

	/* Filled through the API in big transactions, due over the past. */
	t0 = now_s();
	for (long first = 0; first < queued; first += FILL_TX) {
		long n = queued - first < FILL_TX ? queued - first : FILL_TX;
		for (long i = 0; i < n; i++) {
			snprintf(paths[i], sizeof(paths[i]), "/srv/exports/lab/fill/%08ld.hl7",
				 first + i);
			specs[i] = (struct hs_job_spec){.path = paths[i],
							.watch_root = "/srv/exports/lab",
							.remote_name = paths[i] + 17,
							.size = 2048,
							.mtime_ns = first + i,
							.inode = first + i};
		}
		if (hs_queue_enqueue_many(q, specs, (size_t)n, base + first, &cause) != HS_Q_OK)
			die("fill", cause);
	}
	res->fill_s = now_s() - t0;
	res->queued = queued;
	/* The fill's WAL into the database first, as a running daemon would
	 * have long done: the claims below then pay only their own way. */
	{
		sqlite3 *db = NULL;
		if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
		    sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL) !=
			SQLITE_OK)
			die("checkpoint", sqlite3_errmsg(db));
		sqlite3_close(db);
	}

	for (long i = 0; i < o->samples; i++) {
		struct hs_job *job = NULL;
		double s = now_s();
		if (hs_queue_claim(q, wall_ms(), 300000, &job, &cause) != HS_Q_OK)
			die("claim", cause);
		t[i] = (now_s() - s) * 1e6;
		hs_job_free(job);
	}
	res->claim_p99 = quantile(t, (size_t)o->samples, 0.99);
	res->claim_med = quantile(t, (size_t)o->samples, 0.5);

	for (long i = 0; i < o->samples; i++) {
		double s = now_s();
		if (hs_queue_next_due(q, &at, &cause) != HS_Q_OK)
			die("next_due", cause);
		t[i] = (now_s() - s) * 1e6;
	}
	res->due_med = quantile(t, (size_t)o->samples, 0.5);

	for (long i = 0; i < 5; i++) {
		double s = now_s();
		if (hs_queue_counts(q, counts, &cause) != HS_Q_OK)
			die("counts", cause);
		t[i] = (now_s() - s) * 1e6;
	}
	res->counts_med = quantile(t, 5, 0.5);

	hs_queue_close(q);
	if (!o->keep)
		remove_db(path);
	free(specs);
	free(paths);
	free(t);
}

/* ---- main ------------------------------------------------------------------- */

static long parse_count(const char *s, const char *opt)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*end || v <= 0) {
		fprintf(stderr, "bench_queue: %s needs a positive number\n", opt);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	struct opts o = {.jobs = 100000, .samples = 2000, .large = 1000000};
	char tmpdir[] = "/var/tmp/hsbench-queue-XXXXXX", qpath[4200], rpath[4200], *cause = NULL;
	struct latency lat[2];
	double tq = 0, tr = 0, fs, t0;
	struct hs_queue *q = NULL;
	struct raw raw = {0};
	int c;

	while ((c = getopt(argc, argv, "n:d:s:L:kh")) != -1) {
		switch (c) {
		case 'n':
			o.jobs = parse_count(optarg, "-n");
			break;
		case 'd':
			o.dir = optarg;
			break;
		case 's':
			o.samples = parse_count(optarg, "-s");
			break;
		case 'L':
			o.large = parse_count(optarg, "-L");
			break;
		case 'k':
			o.keep = true;
			break;
		default:
			fprintf(stderr, "usage: bench_queue [-n JOBS] [-d DIR] [-s SAMPLES] "
					"[-L LARGE_QUEUE] [-k]\n");
			return c == 'h' ? 0 : 2;
		}
	}
	o.jobs = (o.jobs + BURST - 1) / BURST * BURST;
	if (!o.dir) {
		if (!mkdtemp(tmpdir))
			die(tmpdir, strerror(errno));
		o.dir = tmpdir;
	}
	printf("bench_queue: SQLite %s, directory %s%s\n", sqlite3_libversion(), o.dir,
	       o.keep ? " (kept)" : "");

	fs = fsync_us(&o);
	printf("fdatasync of a 4 KiB write: %.0f us (median of 200)\n", fs);
	/* claim, set_facts, complete: three commits per job, one per burst */
	printf("%ld jobs: at least %.0f s of fsync for each of the two runs\n\n", o.jobs,
	       (double)o.jobs * 3.01 * fs / 1e6);
	fflush(stdout);

	db_path(qpath, sizeof(qpath), &o, "throughput-queue.db");
	db_path(rpath, sizeof(rpath), &o, "throughput-raw.db");
	remove_db(qpath);
	remove_db(rpath);
	if (hs_queue_open(qpath, &q, &cause) != HS_Q_OK)
		die(qpath, cause);
	raw_open(&raw, rpath);
	for (long first = 0; first < o.jobs; first += CHUNK) {
		long n = o.jobs - first < CHUNK ? o.jobs - first : CHUNK;
		/* Each goes first every other chunk. */
		for (int k = 0; k < 2; k++) {
			bool raw_now = (k == 0) == ((first / CHUNK) % 2 == 0);
			t0 = now_s();
			if (raw_now)
				raw_chunk(&raw, first, n);
			else
				queue_chunk(q, first, n);
			*(raw_now ? &tr : &tq) += now_s() - t0;
		}
	}
	hs_queue_close(q);
	raw_close(&raw);
	if (!o.keep) {
		remove_db(qpath);
		remove_db(rpath);
	}

	printf("enqueue (bursts of %d) + claim + set_facts + complete, %ld jobs\n", BURST, o.jobs);
	printf("  %-28s %10s %10s %12s\n", "", "seconds", "jobs/s", "commits/s");
	printf("  %-28s %10.1f %10.0f %12.0f\n", "raw SQLite (same SQL)", tr, (double)o.jobs / tr,
	       (double)o.jobs * 3.01 / tr);
	printf("  %-28s %10.1f %10.0f %12.0f\n", "hs_queue", tq, (double)o.jobs / tq,
	       (double)o.jobs * 3.01 / tq);
	printf("  ratio hs_queue / raw: %.2f (goal >= 0.80)\n\n", tr / tq);
	fflush(stdout);

	measure_latency(&o, 10000, &lat[0]);
	measure_latency(&o, o.large, &lat[1]);
	printf("claim latency (each claim its own transaction), %ld samples\n", o.samples);
	printf("  %12s %8s %13s %13s %16s %10s\n", "queued jobs", "fill s", "claim med us",
	       "claim p99 us", "next_due med us", "counts us");
	for (int i = 0; i < 2; i++)
		printf("  %12ld %8.1f %13.0f %13.0f %16.1f %10.1f\n", lat[i].queued, lat[i].fill_s,
		       lat[i].claim_med, lat[i].claim_p99, lat[i].due_med, lat[i].counts_med);

	if (!o.keep && o.dir == tmpdir)
		rmdir(tmpdir);
	return 0;
}
