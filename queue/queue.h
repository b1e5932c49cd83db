/*
 * queue: the durable job queue in state_dir/queue.db.
 *
 * A job is one file to send. Its life:
 *
 *   enqueue -> queued --claim--> active --complete--> done
 *                ^                 |  \--skip------> skipped (same content
 *                |                 |                 already stored)
 *                |                 |--gone-------->  gone (file vanished)
 *                |                 |--fail-------->  failed (due again at
 *                |                 |                 next_attempt_at) or dead
 *                |                 |                 (max_attempts reached)
 *                +--release / lease expiry / retry---+
 *
 * Claiming is a single UPDATE that takes the job due soonest and gives it a
 * lease (lease_until plus a fresh lease token). A holder renews the lease
 * while it works; when the process dies the lease runs out and the job is due
 * again. Every call that changes an active job names the token it was claimed
 * with, so a holder whose lease was taken over cannot complete the job twice:
 * such calls return HS_Q_LOST.
 *
 * Durability: WAL, synchronous=FULL (checked after setting it), every write
 * in BEGIN IMMEDIATE, busy_timeout so the daemon and CLI commands share the
 * file. Schema version in PRAGMA user_version, migrated forward on open.
 * A few writes that a power failure may lose without harm are committed
 * unsynced (synchronous=NORMAL for that commit): claims, facts, a single
 * upload's session, the parts in the middle of a multipart upload, and
 * the completion of a job when the caller says so. The WAL keeps commits
 * in order and the next synced commit (FULL), or hs_queue_sync, fsyncs
 * every frame before it, so a power failure loses at most a run of the
 * latest unsynced commits, never one before a synced one; a kill -9 loses
 * none (the WAL is in the page cache). The uploader syncs before anything
 * that must not be forgotten reaches the server: the finished PUT before
 * it completes an upload. A completion lost to a power failure leaves the
 * job active with its PUT recorded, so the next start completes the same
 * upload again, which the API answers as before (a complete is
 * idempotent): nothing is sent twice. The uploader syncs a completion at
 * once when the file is to be deleted or moved next, and otherwise when
 * it runs out of work (hs_queue_sync), or with the next synced commit.
 * A small file thereby costs one fsync in steady state, not five.
 *
 * Times are Unix milliseconds passed in by the caller: the queue never reads
 * the clock. Calls never log; errors come back as an allocated *cause (the
 * caller frees it) and a negative return. All calls block on disk I/O (an
 * fsync per synced write transaction); none waits on the network.
 */
#ifndef HS_QUEUE_QUEUE_H
#define HS_QUEUE_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue/backoff.h"

enum {
	HS_Q_OK = 0,
	HS_Q_EMPTY = 1, /* claim: nothing is due */
	HS_Q_LOST = 2,	/* the lease token no longer holds the job */
	HS_Q_ERROR = -1,
};

enum hs_job_state {
	HS_JOB_QUEUED,
	HS_JOB_ACTIVE,
	HS_JOB_DONE,
	HS_JOB_FAILED,
	HS_JOB_DEAD,
	HS_JOB_SKIPPED,
	HS_JOB_GONE,
	HS_JOB_NSTATES
};

const char *hs_job_state_name(enum hs_job_state s);
/* Returns -1 for an unknown name. */
int hs_job_state_parse(const char *name);

/* What the caller knows when it adds a file. Strings are copied. */
struct hs_job_spec {
	const char *path;	 /* absolute path of the file */
	const char *watch_root;	 /* the watched folder it belongs to, or "" */
	const char *remote_name; /* name sent to the server */
	int64_t size;
	int64_t mtime_ns;
	int64_t inode;
};

/* Multipart progress stored with a job. */
struct hs_part {
	uint32_t number;
	int64_t size;
	char etag[129];
};

struct hs_job {
	int64_t id;
	char *path;
	char *watch_root;
	char *remote_name;
	int64_t size;
	int64_t mtime_ns;
	int64_t inode;
	char sha256[65]; /* "" until known */
	enum hs_job_state state;
	unsigned attempts;
	int64_t next_attempt_at; /* failed jobs: when due again */
	int64_t lease_until;	 /* active jobs */
	int64_t lease_token;	 /* active jobs: pass back to every update */
	char *last_error;	 /* NULL when none */
	int64_t created_at;
	int64_t updated_at;
	/* Multipart session, when one is open. */
	char *upload_id; /* NULL when none */
	int64_t part_size;
	uint32_t part_count;
};

struct hs_queue;

/* Opens (creating and migrating as needed) the database at path, with the
 * file mode 0640: the folder's group may read it, only the owner writes. */
int hs_queue_open(const char *path, struct hs_queue **ret, char **cause);
/* Opens the existing queue at path to read it only (`healsync scan`, and
 * `jobs` run by a member of the state folder's group): nothing is created,
 * changed or migrated, so the daemon's state stays as it was; a queue of
 * another schema version is an error. Only the read-only calls (marked
 * "Read-only") may be used on it. While a daemon has the queue open it is
 * read through the WAL; with none, and a folder the caller cannot write
 * in, the file alone is read (see HS_SQLDB_IMMUTABLE). */
int hs_queue_open_read(const char *path, struct hs_queue **ret, char **cause);
/* Accepts NULL; returns NULL. */
struct hs_queue *hs_queue_close(struct hs_queue *q);

/* Adds a file. If a job for the same path is already waiting (queued or
 * failed), its facts are refreshed instead and it is due now. If one is
 * active and spec's facts differ from it, it is flagged changed: when it
 * ends, the path gets a fresh job (or, back to waiting, is due at once).
 * *ret_id (may be NULL) gets the job's id. */
int hs_queue_enqueue(struct hs_queue *q, const struct hs_job_spec *spec, int64_t now,
		     int64_t *ret_id, char **cause);
/* The same for n files in one transaction (a burst from the watcher). */
int hs_queue_enqueue_many(struct hs_queue *q, const struct hs_job_spec *specs, size_t n,
			  int64_t now, char **cause);

/* Takes the job due soonest (queued, failed and due, or active with an
 * expired lease) and leases it until now + lease_ms. Returns HS_Q_OK with
 * *ret (free with hs_job_free), HS_Q_EMPTY, or HS_Q_ERROR. */
int hs_queue_claim(struct hs_queue *q, int64_t now, int64_t lease_ms, struct hs_job **ret,
		   char **cause);
/* For the daemon at start, while it holds the state directory's lock: active
 * jobs are leftovers of a process that stopped, so they go back to queued,
 * due at now, without counting an attempt (multipart progress is kept).
 * *ret_n (may be NULL): how many. */
int hs_queue_recover(struct hs_queue *q, int64_t now, size_t *ret_n, char **cause);
/* When the next job becomes due: *ret_at is a Unix ms time, or -1 if there is
 * nothing waiting at all. The daemon arms a timer with it. */
int hs_queue_next_due(struct hs_queue *q, int64_t *ret_at, char **cause);

/* Updates of an active job; each returns HS_Q_LOST if the token no longer
 * holds it. */
int hs_queue_renew(struct hs_queue *q, int64_t id, int64_t token, int64_t now, int64_t lease_ms,
		   char **cause);
int hs_queue_set_facts(struct hs_queue *q, int64_t id, int64_t token, int64_t size,
		       int64_t mtime_ns, int64_t inode, const char *sha256, char **cause);
/* done: records (remote_name, sha256) in the ledger in the same transaction.
 * durable: fsync this commit (see "Durability"); else it becomes durable
 * with the next synced commit or hs_queue_sync. */
int hs_queue_complete(struct hs_queue *q, int64_t id, int64_t token, const char *file_id,
		      int64_t now, bool durable, char **cause);
/* Makes every commit so far durable (one fsync of the WAL), if any was
 * made unsynced since the last call; otherwise does nothing. */
int hs_queue_sync(struct hs_queue *q, char **cause);
/* skip: the server already holds this content under the remote name; the
 * ledger takes the file's facts, so scans know it is stored. */
int hs_queue_skip(struct hs_queue *q, int64_t id, int64_t token, int64_t now, char **cause);
int hs_queue_gone(struct hs_queue *q, int64_t id, int64_t token, const char *why, int64_t now,
		  char **cause);
/* Counts an attempt. failed with next_attempt_at = now + backoff, or dead
 * once attempts reaches max_attempts (or at once when permanent). *ret_state
 * (may be NULL) says which. */
int hs_queue_fail(struct hs_queue *q, int64_t id, int64_t token, const char *why, bool permanent,
		  int64_t now, const struct hs_backoff *backoff, unsigned max_attempts,
		  uint64_t rnd, enum hs_job_state *ret_state, char **cause);
/* Back to queued without counting an attempt, due at `at` (shutdown, a paused
 * API). */
int hs_queue_release(struct hs_queue *q, int64_t id, int64_t token, int64_t at, char **cause);

/* Multipart progress. begin records the session and forgets old parts.
 * durable: fsync it (see "Durability"). A multipart session must be, so
 * that a power failure does not make the parts the storage holds be sent
 * again; a single upload's need not, as its PUT is recorded durably before
 * the upload is completed. */
int hs_queue_mp_begin(struct hs_queue *q, int64_t id, int64_t token, const char *upload_id,
		      int64_t part_size, uint32_t part_count, bool durable, char **cause);
/* durable: fsync this commit (and every earlier one) before returning.
 * Parts in the middle of an upload need not be: after a power failure the
 * storage's own list of parts says what it holds. The uploader asks for it
 * on the record that completes the set, before it completes the upload,
 * and for single uploads. A kill -9 loses nothing either way (WAL). */
int hs_queue_mp_part_done(struct hs_queue *q, int64_t id, int64_t token, const struct hs_part *part,
			  bool durable, char **cause);
/* Drops the session and its parts (expired, aborted, or content changed). */
int hs_queue_mp_reset(struct hs_queue *q, int64_t id, int64_t token, char **cause);
/* Finished parts in ascending order; *ret is malloc'd (free it), may be NULL
 * when *ret_n is 0. Read-only. */
int hs_queue_mp_parts(struct hs_queue *q, int64_t id, struct hs_part **ret, size_t *ret_n,
		      char **cause);

/* The ledger of what the server holds. Read-only. *ret_found says whether
 * remote_name's last stored content has this sha256. */
int hs_queue_ledger_has(struct hs_queue *q, const char *remote_name, const char *sha256,
			bool *ret_found, char **cause);
/* Whether remote_name was last stored from a file with exactly these facts
 * (so a startup scan need not hash it again). */
int hs_queue_ledger_same_facts(struct hs_queue *q, const char *remote_name, int64_t size,
			       int64_t mtime_ns, int64_t inode, bool *ret_same, char **cause);
/* The remote name (starting with prefix) last stored from a file with
 * exactly these facts, in *ret_name (the caller frees it), or NULL. */
int hs_queue_ledger_by_facts(struct hs_queue *q, const char *prefix, int64_t size, int64_t mtime_ns,
			     int64_t inode, char **ret_name, char **cause);

/* What the queue knows of a file found on disk (the watcher's scans). */
enum hs_seen {
	HS_SEEN_NEW,	 /* enqueue it */
	HS_SEEN_PENDING, /* a job with these facts waits, or is dead until retried */
	HS_SEEN_STORED,	 /* the server holds exactly this file (ledger facts match) */
};
/* Read-only. Compares spec's path, remote name and facts (size, mtime,
 * inode) with the newest job for the path and with the ledger. */
int hs_queue_seen(struct hs_queue *q, const struct hs_job_spec *spec, enum hs_seen *ret,
		  char **cause);

/* The same for n files at once, in one read transaction: ret[i] is the
 * answer for specs[i]. */
int hs_queue_seen_many(struct hs_queue *q, const struct hs_job_spec *specs, size_t n,
		       enum hs_seen *ret, char **cause);

/* Deletes done, skipped and gone jobs last updated before `before`; the
 * ledger keeps what was stored. Dead jobs stay until retried. */
int hs_queue_prune(struct hs_queue *q, int64_t before, size_t *ret_n, char **cause);

/* Failed or dead jobs back to queued with attempts reset. id < 0: all of
 * them. *ret_n (may be NULL): how many changed. A job in another state is
 * left alone (and counted out). */
int hs_queue_retry(struct hs_queue *q, int64_t id, int64_t now, size_t *ret_n, char **cause);

/* ---- the operator's controls (healsync pause, resume, cancel, purge) ----
 * Kept here so that they hold across restarts and a CLI command can make
 * them while the daemon runs; the daemon reads them when woken. */
struct hs_pause {
	bool on;	 /* false: no pause, or its `until` has passed */
	int64_t until;	 /* Unix ms; 0: until resumed */
	int64_t set_at;	 /* Unix ms */
	char set_by[64]; /* who paused, "" when unknown */
};
/* The pause as of now. Read-only. */
int hs_queue_pause_get(struct hs_queue *q, int64_t now, struct hs_pause *ret, char **cause);
/* Pauses uploads until `until` (0: until resumed), replacing a pause. */
int hs_queue_pause_set(struct hs_queue *q, int64_t until, const char *by, int64_t now,
		       char **cause);
/* Ends the pause; *ret_was (may be NULL): whether one was set. */
int hs_queue_resume(struct hs_queue *q, bool *ret_was, char **cause);
/* Ends a queued, failed, dead or active job: it becomes gone, names `by`,
 * and the scans leave its file alone until the file changes. An active
 * job's holder loses its lease. HS_Q_EMPTY when there is no such job in
 * those states. *ret_remote (may be NULL; the caller frees it): its name. */
int hs_queue_cancel(struct hs_queue *q, int64_t id, const char *by, int64_t now, char **ret_remote,
		    char **cause);
/* Deletes the jobs in state (done or dead) last updated before `before`. A
 * dead job's file still in its folder is found by the next scan and
 * queued afresh. */
int hs_queue_purge(struct hs_queue *q, enum hs_job_state state, int64_t before, size_t *ret_n,
		   char **cause);

/* Read-only views for the CLI. */
int hs_queue_counts(struct hs_queue *q, int64_t ret_counts[HS_JOB_NSTATES], char **cause);
/* Calls fn for each job (state < 0: all) in id order, newest last, at most
 * limit (0: no limit). fn returning non-zero stops the walk. The job passed
 * to fn is freed after fn returns. */
int hs_queue_list(struct hs_queue *q, int state, size_t limit,
		  int (*fn)(const struct hs_job *job, void *arg), void *arg, char **cause);
/* For the health verdict: created_at of the oldest waiting (queued, active
 * or failed) job, and the latest time the ledger recorded a stored file;
 * 0 when there is none. The second reads the whole ledger: call it once
 * and follow hs_uploader_on_stored after. */
int hs_queue_oldest_waiting(struct hs_queue *q, int64_t *ret_at, char **cause);
int hs_queue_last_stored(struct hs_queue *q, int64_t *ret_at, char **cause);

/* The same, newest first: the `latest` newest (0: all) of those updated at
 * or after `since` (Unix ms; 0: any time). */
int hs_queue_list_recent(struct hs_queue *q, int state, int64_t since, size_t latest,
			 int (*fn)(const struct hs_job *job, void *arg), void *arg, char **cause);
/* HS_Q_EMPTY (and *ret NULL) when there is no such job. */
int hs_queue_get(struct hs_queue *q, int64_t id, struct hs_job **ret, char **cause);

/* Accepts NULL; returns NULL. */
struct hs_job *hs_job_free(struct hs_job *job);

/* ---- after-upload actions still to do ----
 * A delete or move that the system refused (a folder the service may not
 * write) stays to do: the job is done (the server holds the file, the
 * ledger says so), and this list, one entry per path, says the action is
 * pending, why, and when it is tried again. The daemon retries at due_at
 * and at a reload; an action that ends (done, or the file changed or went
 * away) clears the entry. Example: scan.pdf stored by job 41, its move
 * refused with EACCES at 10:00: entry {path, job_id 41, attempts 1,
 * due_at 10:00 + backoff, last_error "cannot rename ..."}; refused again,
 * attempts 2 and a longer backoff; moved, the entry goes. */
struct hs_after_entry {
	char *path;
	char *watch_root;
	int64_t job_id;		       /* the job that stored the file; 0 when none is left */
	int64_t size, mtime_ns, inode; /* the stored file's facts */
	unsigned attempts;
	int64_t due_at;
	char *last_error;
	int64_t since; /* the first refusal of this version of the file */
};
/* Records a refused action for spec's file (path, watch_root and facts;
 * remote_name unused): attempts + 1 when the entry has the same facts,
 * else 1; due at now + the backoff of that attempt (*ret_due, may be
 * NULL). job_id <= 0: the newest done or skipped job for the path. */
int hs_queue_after_defer(struct hs_queue *q, const struct hs_job_spec *spec, int64_t job_id,
			 const char *why, int64_t now, const struct hs_backoff *backoff,
			 uint64_t rnd, int64_t *ret_due, char **cause);
/* Whether spec's path has an entry (*ret_has) and with spec's very facts
 * (*ret_same). Read-only: a scan that finds a refused file again need not
 * write. */
int hs_queue_after_has(struct hs_queue *q, const struct hs_job_spec *spec, bool *ret_has,
		       bool *ret_same, char **cause);
/* Forgets the path's entry; *ret_was (may be NULL) says whether there was
 * one. Writes only when there is one. */
int hs_queue_after_clear(struct hs_queue *q, const char *path, bool *ret_was, char **cause);
/* The entries due at now (now = INT64_MAX: all), soonest first, at most
 * limit (0: all), in *ret (free with hs_after_entries_free) and *ret_n. */
int hs_queue_after_due(struct hs_queue *q, int64_t now, size_t limit, struct hs_after_entry **ret,
		       size_t *ret_n, char **cause);
struct hs_after_entry *hs_after_entries_free(struct hs_after_entry *e, size_t n);
/* When the next entry is due (Unix ms), -1 when there is none. */
int hs_queue_after_next_due(struct hs_queue *q, int64_t *ret_at, char **cause);
/* Every entry due at now (a reload: the operator may have fixed it). */
int hs_queue_after_due_now(struct hs_queue *q, int64_t now, size_t *ret_n, char **cause);
int hs_queue_after_count(struct hs_queue *q, int64_t *ret_n, char **cause);

#endif
