/*
 * The queue under SIGKILL: a worker process enqueues from a fixed list of
 * paths, claims with a short lease, records facts and multipart progress and
 * completes jobs, and is killed at a random moment, again and again; each new
 * worker carries on where the dead ones left off (abandoned leases run out
 * after LEASE_MS). A last worker runs to the end. Then the database must be
 * intact, every path done exactly once, the ledger complete, and nothing a
 * worker saw confirmed may be missing.
 *
 * HS_CRASH_ROUNDS (default 300) sets the number of kills, HS_CRASH_PATHS
 * (default 1000) the number of files, HS_CRASH_SEED the random seed (printed),
 * HS_CRASH_MAX_DELAY_US the latest kill (default: from the measured start-up
 * time), HS_CRASH_KEEP keeps the directory.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
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

#define LEASE_MS	  50
#define PARTS		  4
#define BURST		  8
#define CLAIMS_PER_BURST  4
#define FINAL_DEADLINE_MS 90000

struct crash {
	char dir[64];
	char db[128];
	char log[128];
	unsigned rounds, paths;
	long max_delay_us;
	uint64_t seed;
	unsigned killed, exited;
};

/* ---- shared ------------------------------------------------------------- */

static uint64_t next_rand(uint64_t *s)
{
	/* xorshift64* */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717u;
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_us(long us)
{
	struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* The fixed facts of file i. Every third one is sent in parts. */
struct file {
	char path[64];
	char remote[32];
	char sha[65];
	int64_t size, mtime_ns, inode;
	bool multipart;
};

static void file_facts(unsigned i, struct file *f)
{
	uint64_t h = 0x9e3779b97f4a7c15u * (i + 1);

	snprintf(f->path, sizeof(f->path), "/srv/crash/file-%04u.dat", i);
	snprintf(f->remote, sizeof(f->remote), "crash/file-%04u.dat", i);
	for (int k = 0; k < 4; k++) {
		h ^= h >> 31;
		h *= 0xbf58476d1ce4e5b9u;
		snprintf(f->sha + 16 * k, 17, "%016" PRIx64, h);
	}
	f->multipart = i % 3 == 0;
	f->size = f->multipart ? PARTS * 1000 : 100 + i;
	f->mtime_ns = 1700000000000000000 + i;
	f->inode = 10000 + i;
}

static int parse_index(const char *path, unsigned paths)
{
	unsigned i;

	if (sscanf(path, "/srv/crash/file-%u.dat", &i) != 1 || i >= paths)
		return -1;
	return (int)i;
}

/* ---- the worker ---------------------------------------------------------- */

#define WORKER_FAIL(...)                                                                           \
	do {                                                                                       \
		fprintf(stderr, "# worker %d: ", (int)getpid());                                   \
		fprintf(stderr, __VA_ARGS__);                                                      \
		fprintf(stderr, "\n");                                                             \
		goto out;                                                                          \
	} while (0)

/* Works one claimed job as far as it goes. Returns 0, or -1 on an error
 * that must fail the test. */
static int work_job(struct hs_queue *q, struct hs_job *job, uint64_t *rng, int log_fd,
		    unsigned paths)
{
	static const struct hs_backoff quick = {.base_ms = 1, .cap_ms = 20};
	struct hs_part *held = NULL;
	size_t n_held = 0;
	struct file f;
	char *cause = NULL, line[128];
	unsigned resumed = 0;
	int idx = parse_index(job->path, paths), rc, ret = -1;

	if (idx < 0)
		WORKER_FAIL("claimed a job for an unknown path %s", job->path);
	file_facts((unsigned)idx, &f);
	if (strcmp(job->remote_name, f.remote) != 0 || job->size != f.size)
		WORKER_FAIL("job %" PRId64 " has wrong facts", job->id);
	if (job->sha256[0] && strcmp(job->sha256, f.sha) != 0)
		WORKER_FAIL("job %" PRId64 " has a wrong checksum", job->id);

	rc = hs_queue_set_facts(q, job->id, job->lease_token, f.size, f.mtime_ns, f.inode, f.sha,
				&cause);
	if (rc != HS_Q_OK)
		goto result;

	switch (next_rand(rng) % 16) {
	case 0: /* a transient failure: due again in a few ms */
		rc = hs_queue_fail(q, job->id, job->lease_token, "transient", false, wall_ms(),
				   &quick, 1000000, next_rand(rng), NULL, &cause);
		goto result;
	case 1: /* given back, as at shutdown */
		rc = hs_queue_release(q, job->id, job->lease_token, wall_ms() + 2, &cause);
		goto result;
	case 2:
		rc = hs_queue_renew(q, job->id, job->lease_token, wall_ms(), LEASE_MS, &cause);
		if (rc != HS_Q_OK)
			goto result;
		break;
	default:
		break;
	}

	if (f.multipart) {
		bool have[PARTS + 1] = {false};
		char etag[129];

		if (job->upload_id) {
			/* Resume: every part held must belong to this session. */
			if (job->part_count != PARTS || job->part_size != 1000)
				WORKER_FAIL("job %" PRId64 ": bad session", job->id);
			if (hs_queue_mp_parts(q, job->id, &held, &n_held, &cause) != HS_Q_OK)
				WORKER_FAIL("mp_parts: %s", cause);
			for (size_t k = 0; k < n_held; k++) {
				snprintf(etag, sizeof(etag), "%s#%u", job->upload_id,
					 (unsigned)held[k].number);
				if (held[k].number < 1 || held[k].number > PARTS ||
				    strcmp(held[k].etag, etag) != 0 || held[k].size != 1000 ||
				    (k > 0 && held[k].number <= held[k - 1].number))
					WORKER_FAIL("job %" PRId64 ": a part of another session",
						    job->id);
				have[held[k].number] = true;
			}
			resumed = (unsigned)n_held;
		} else {
			char upload_id[64];
			free(job->upload_id);
			snprintf(upload_id, sizeof(upload_id), "upl-%" PRId64 "-%" PRId64, job->id,
				 job->lease_token);
			if (!(job->upload_id = strdup(upload_id)))
				WORKER_FAIL("out of memory");
			rc = hs_queue_mp_begin(q, job->id, job->lease_token, upload_id, 1000, PARTS,
					       true, &cause);
			if (rc != HS_Q_OK)
				goto result;
		}
		for (unsigned k = 1; k <= PARTS; k++) {
			struct hs_part part = {.number = k, .size = 1000};
			if (have[k])
				continue;
			snprintf(part.etag, sizeof(part.etag), "%s#%u", job->upload_id, k);
			rc = hs_queue_mp_part_done(q, job->id, job->lease_token, &part, true,
						   &cause);
			if (rc != HS_Q_OK)
				goto result;
		}
	}

	/* Unsynced, as the uploader completes most jobs: a SIGKILL must not
	 * lose it either (power loss, which it may, is not simulated). */
	rc = hs_queue_complete(q, job->id, job->lease_token, "fid", wall_ms(), false, &cause);
	if (rc == HS_Q_OK) {
		/* Only after the queue said it is committed. */
		int len = snprintf(line, sizeof(line), "%s %u\n", job->path, resumed);
		if (write(log_fd, line, (size_t)len) != len)
			WORKER_FAIL("log: %s", strerror(errno));
	}
result:
	if (rc == HS_Q_ERROR)
		WORKER_FAIL("queue: %s", cause ? cause : "out of memory");
	ret = 0; /* OK, or LOST: a slow worker's lease was taken over */
out:
	free(held);
	free(cause);
	return ret;
}

/* Walks the list from a random place, enqueueing what is not stored yet, and
 * works on due jobs in between, then on what is left until nothing waits.
 * Returns the exit code: 0 when everything is done, 1 on an error. */
static int worker(const struct crash *c, uint64_t seed)
{
	struct hs_queue *q = NULL;
	char *cause = NULL;
	uint64_t rng = seed | 1;
	unsigned start = (unsigned)(next_rand(&rng) % c->paths), walked = 0;
	int64_t deadline = wall_ms() + FINAL_DEADLINE_MS;
	int log_fd = open(c->log, O_WRONLY | O_APPEND | O_CLOEXEC);
	int ret = 1;

	if (log_fd < 0)
		WORKER_FAIL("%s: %s", c->log, strerror(errno));
	if (hs_queue_open(c->db, &q, &cause) != HS_Q_OK)
		WORKER_FAIL("open: %s", cause);
	for (;;) {
		if (wall_ms() > deadline)
			WORKER_FAIL("not finished after %d ms", FINAL_DEADLINE_MS);
		if (walked < c->paths) {
			struct hs_job_spec specs[BURST];
			struct file files[BURST];
			size_t n = 0;
			for (unsigned k = 0; k < BURST && walked < c->paths; k++, walked++) {
				struct file *f = &files[n];
				bool same;
				file_facts((start + walked) % c->paths, f);
				if (hs_queue_ledger_same_facts(q, f->remote, f->size, f->mtime_ns,
							       f->inode, &same, &cause) != HS_Q_OK)
					WORKER_FAIL("ledger: %s", cause);
				if (same)
					continue;
				specs[n++] = (struct hs_job_spec){.path = f->path,
								  .watch_root = "/srv/crash",
								  .remote_name = f->remote,
								  .size = f->size,
								  .mtime_ns = f->mtime_ns,
								  .inode = f->inode};
			}
			if (hs_queue_enqueue_many(q, specs, n, wall_ms(), &cause) != HS_Q_OK)
				WORKER_FAIL("enqueue: %s", cause);
		}
		for (unsigned k = 0; k < CLAIMS_PER_BURST || walked == c->paths; k++) {
			struct hs_job *job = NULL;
			int64_t at;
			int rc = hs_queue_claim(q, wall_ms(), LEASE_MS, &job, &cause);
			if (rc == HS_Q_ERROR)
				WORKER_FAIL("claim: %s", cause);
			if (rc == HS_Q_OK) {
				rc = work_job(q, job, &rng, log_fd, c->paths);
				hs_job_free(job);
				if (rc != 0)
					goto out;
				continue;
			}
			if (walked < c->paths)
				break;
			if (hs_queue_next_due(q, &at, &cause) != HS_Q_OK)
				WORKER_FAIL("next_due: %s", cause);
			if (at < 0) {
				ret = 0;
				goto out;
			}
			int64_t wait = at - wall_ms();
			sleep_us(wait <= 0 ? 200 : wait > 20 ? 20000 : (long)wait * 1000);
		}
	}
out:
	free(cause);
	hs_queue_close(q);
	if (log_fd >= 0)
		close(log_fd);
	return ret;
}

/* ---- the test ------------------------------------------------------------ */

static unsigned env_uint(const char *name, unsigned def)
{
	const char *s = getenv(name);
	char *end;
	unsigned long v;

	if (!s || !*s)
		return def;
	v = strtoul(s, &end, 10);
	return *end || v == 0 || v > 1000000 ? def : (unsigned)v;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int group_setup(void **state)
{
	struct crash *c = calloc(1, sizeof(*c));
	const char *seed = getenv("HS_CRASH_SEED");
	int fd;

	if (!c)
		return -1;
	snprintf(c->dir, sizeof(c->dir), "/tmp/hsq-crash-XXXXXX");
	if (!mkdtemp(c->dir)) {
		free(c);
		return -1;
	}
	snprintf(c->db, sizeof(c->db), "%s/queue.db", c->dir);
	snprintf(c->log, sizeof(c->log), "%s/completed.log", c->dir);
	fd = open(c->log, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	if (fd < 0)
		return -1;
	close(fd);
	c->rounds = env_uint("HS_CRASH_ROUNDS", 300);
	c->paths = env_uint("HS_CRASH_PATHS", 1000);
	c->max_delay_us = (long)env_uint("HS_CRASH_MAX_DELAY_US", 0);
	if (c->max_delay_us && c->max_delay_us < 300)
		c->max_delay_us = 300;
	c->seed = seed && *seed ? strtoull(seed, NULL, 0) : hs_random64();
	printf("# %u rounds, %u paths, HS_CRASH_SEED=%" PRIu64 ", in %s\n", c->rounds, c->paths,
	       c->seed, c->dir);
	fflush(stdout);
	*state = c;
	return 0;
}

static int group_teardown(void **state)
{
	struct crash *c = *state;

	if (getenv("HS_CRASH_KEEP"))
		printf("# kept %s\n", c->dir);
	else
		nftw(c->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(c);
	return 0;
}

static sqlite3 *open_raw(const struct crash *c)
{
	sqlite3 *db = NULL;

	if (sqlite3_open_v2(c->db, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
		fail_msg("open %s: %s", c->db, db ? sqlite3_errmsg(db) : "?");
	sqlite3_busy_timeout(db, 10000);
	return db;
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

static void expect_ok_check(sqlite3 *db, const char *pragma)
{
	sqlite3_stmt *st = NULL;

	assert_int_equal(sqlite3_prepare_v2(db, pragma, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	if (strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0)
		fail_msg("%s: %s", pragma, sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
}

static long since_us(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000000 + (t.tv_nsec - t0->tv_nsec) / 1000;
}

/* How long a worker takes to start (fork and open) and to commit one
 * transaction, in microseconds: far longer under ASan than without. Measured
 * on a database of its own; *ret_tx_us may be 0 on a fast machine. */
static int calibrate(const struct crash *c, long *ret_open_us, long *ret_tx_us)
{
	struct timespec t0;
	long times[2] = {0, 0};
	char db[160];
	int status, fds[2];
	pid_t pid;

	snprintf(db, sizeof(db), "%s/calibrate.db", c->dir);
	if (pipe(fds) != 0)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid = fork();
	if (pid == 0) {
		struct hs_queue *q = NULL;
		char *cause = NULL, path[32];
		int rc = hs_queue_open(db, &q, &cause);
		struct timespec t1;

		times[0] = since_us(&t0);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		for (int i = 0; rc == HS_Q_OK && i < 20; i++) {
			struct hs_job_spec s = {.path = path, .remote_name = path, .size = 1};
			snprintf(path, sizeof(path), "/c/%d", i);
			rc = hs_queue_enqueue(q, &s, 1, NULL, &cause);
		}
		times[1] = since_us(&t1) / 20;
		free(cause);
		hs_queue_close(q);
		_exit(rc == HS_Q_OK && write(fds[1], times, sizeof(times)) == sizeof(times) ? 0
											    : 1);
	}
	close(fds[1]);
	if (pid < 0 || read(fds[0], times, sizeof(times)) != sizeof(times) ||
	    waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		close(fds[0]);
		return -1;
	}
	close(fds[0]);
	*ret_open_us = times[0];
	*ret_tx_us = times[1];
	return 0;
}

static void test_kill_rounds(void **state)
{
	struct crash *c = *state;
	uint64_t rng = c->seed | 1;
	long open_us, tx_us;
	int status;

	/* Twice: the first run makes the schema. */
	assert_int_equal(calibrate(c, &open_us, &tx_us), 0);
	assert_int_equal(calibrate(c, &open_us, &tx_us), 0);
	/* From inside the first open (the schema is made then) to some twenty
	 * transactions into the work, so that most workers die with work in
	 * hand and the list lasts all the rounds. */
	if (!c->max_delay_us)
		c->max_delay_us = open_us + 20 * (tx_us > 50 ? tx_us : 50);
	if (c->max_delay_us < 1000)
		c->max_delay_us = 1000;
	printf("# a worker opens in %ld us, commits in %ld us; kills come 300 .. %ld us after "
	       "the fork\n",
	       open_us, tx_us, c->max_delay_us);
	for (unsigned r = 0; r < c->rounds; r++) {
		long delay = 300 + (long)(next_rand(&rng) % (uint64_t)(c->max_delay_us - 299));
		uint64_t child_seed = next_rand(&rng);
		pid_t pid = fork();

		assert_true(pid >= 0);
		if (pid == 0)
			_exit(worker(c, child_seed));
		sleep_us(delay);
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
			c->killed++;
		} else {
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
				fail_msg("round %u: the worker failed (status %#x)", r, status);
			c->exited++;
		}
		if (r % 50 == 49) { /* the file survives each kill */
			sqlite3 *db = open_raw(c);
			expect_ok_check(db, "PRAGMA quick_check");
			sqlite3_close(db);
		}
	}
	sqlite3 *db = open_raw(c);
	printf("# %u workers killed, %u ended before the kill\n", c->killed, c->exited);
	if (sql_int(db, "PRAGMA user_version") == 2)
		printf("# then: %lld of %u jobs done, %lld waiting, %lld with multipart progress\n",
		       (long long)sql_int(db, "SELECT count(*) FROM jobs WHERE state = 'done'"),
		       c->paths,
		       (long long)sql_int(db, "SELECT count(*) FROM jobs WHERE due_at IS NOT NULL"),
		       (long long)sql_int(db, "SELECT count(DISTINCT job_id) FROM parts"));
	sqlite3_close(db);
	assert_true(c->killed >= c->rounds / 2);
}

static void test_final_run(void **state)
{
	struct crash *c = *state;
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(worker(c, c->seed ^ 0xf1a1));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_integrity(void **state)
{
	struct crash *c = *state;
	sqlite3 *db = open_raw(c);

	expect_ok_check(db, "PRAGMA integrity_check");
	assert_int_equal(sql_int(db, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
	assert_int_equal(sql_int(db, "PRAGMA user_version"), 6);
	sqlite3_close(db);
}

static void test_each_path_done_once(void **state)
{
	struct crash *c = *state;
	sqlite3 *db = open_raw(c);
	sqlite3_stmt *st = NULL;
	unsigned *seen = calloc(c->paths, sizeof(*seen));

	assert_non_null(seen);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM jobs"), c->paths);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM jobs WHERE state = 'done'"), c->paths);
	assert_int_equal(
	    sqlite3_prepare_v2(db, "SELECT path, sha256, remote_name FROM jobs", -1, &st, NULL),
	    SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct file f;
		int i = parse_index((const char *)sqlite3_column_text(st, 0), c->paths);
		assert_true(i >= 0);
		file_facts((unsigned)i, &f);
		assert_string_equal((const char *)sqlite3_column_text(st, 1), f.sha);
		assert_string_equal((const char *)sqlite3_column_text(st, 2), f.remote);
		seen[i]++;
	}
	sqlite3_finalize(st);
	for (unsigned i = 0; i < c->paths; i++)
		if (seen[i] != 1)
			fail_msg("path %u has %u jobs", i, seen[i]);
	free(seen);
	sqlite3_close(db);
}

static void test_ledger(void **state)
{
	struct crash *c = *state;
	sqlite3 *db = open_raw(c);

	assert_int_equal(sql_int(db, "SELECT count(*) FROM uploaded"), c->paths);
	/* Each row is the done job's content and facts. */
	assert_int_equal(sql_int(db,
				 "SELECT count(*) FROM uploaded u JOIN jobs j ON "
				 "j.remote_name = u.remote_name AND j.sha256 = u.sha256 AND "
				 "j.size = u.size AND j.mtime_ns = u.mtime_ns AND "
				 "j.inode = u.inode AND j.state = 'done' AND u.file_id = 'fid'"),
			 c->paths);
	sqlite3_close(db);
}

static void test_job_invariants(void **state)
{
	struct crash *c = *state;
	sqlite3 *db = open_raw(c);

	/* Nothing waits, nothing is held, no multipart leftovers. */
	assert_int_equal(sql_int(db, "SELECT count(*) FROM jobs WHERE due_at IS NOT NULL OR "
				     "upload_id IS NOT NULL OR part_size IS NOT NULL OR "
				     "part_count IS NOT NULL OR sha256 IS NULL"),
			 0);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM parts"), 0);
	/* The counts kept by triggers agree with the rows. */
	assert_int_equal(sql_int(db, "SELECT count(*) FROM job_counts c WHERE n <> (SELECT "
				     "count(*) FROM jobs j WHERE j.state = c.state)"),
			 0);
	assert_int_equal(sql_int(db, "SELECT n FROM job_counts WHERE state = 'done'"), c->paths);
	/* Every job was claimed at least once; timestamps are ordered. */
	assert_int_equal(sql_int(db, "SELECT count(*) FROM jobs WHERE lease_token < 1 OR "
				     "attempts < 0 OR updated_at < created_at"),
			 0);
	printf("# %lld transient failures were retried\n",
	       (long long)sql_int(db, "SELECT sum(attempts) FROM jobs"));
	sqlite3_close(db);
}

static void test_completions_file(void **state)
{
	struct crash *c = *state;
	FILE *fp = fopen(c->log, "r");
	unsigned *seen = calloc(c->paths, sizeof(*seen)), lines = 0, resumed = 0, resumes = 0;
	char path[128];
	unsigned k;

	assert_non_null(fp);
	assert_non_null(seen);
	while (fscanf(fp, "%127s %u", path, &k) == 2) {
		int i = parse_index(path, c->paths);
		assert_true(i >= 0);
		if (++seen[i] > 1)
			fail_msg("%s was completed twice", path);
		lines++;
		resumed += k;
		resumes += k > 0;
	}
	assert_true(feof(fp));
	fclose(fp);
	free(seen);
	/* All paths are done (checked above), so all in the file are. */
	assert_in_range(lines, 1, c->paths);
	printf("# %u completions confirmed to workers; %u multipart uploads resumed %u parts\n",
	       lines, resumes, resumed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kill_rounds),	     cmocka_unit_test(test_final_run),
	    cmocka_unit_test(test_integrity),	     cmocka_unit_test(test_each_path_done_once),
	    cmocka_unit_test(test_ledger),	     cmocka_unit_test(test_job_invariants),
	    cmocka_unit_test(test_completions_file),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
