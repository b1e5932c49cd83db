/*
 * after_run: after-upload actions kept until done (see after_run.h).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agent/after.h"
#include "agent/after_run.h"
#include "agent/clock.h"
#include "agent/log.h"
#include "agent/refusal.h"
#include "agent/remote_name.h"

#define DUE_BATCH 16   /* pending actions tried per turn: each may fsync */
#define SAID_MAX  1024 /* folders remembered as explained; then all are */

static const struct hs_backoff retry_backoff = {.base_ms = 10 * 1000, .cap_ms = 3600 * 1000};

struct copy { /* a move across file systems under way: what a refusal needs */
	struct copy *next;
	char *path, *watch_root;
	int64_t size, mtime_ns, inode, job_id;
};

struct hs_after_run {
	sd_event *ev;
	struct hs_queue *q;
	const struct hs_config *cfg;
	struct hs_after *after;
	sd_event_source *timer;
	struct copy *copies;
	char **said; /* folders whose refusal was explained */
	size_t n_said;
	bool said_all; /* SAID_MAX reached: no more lines until a reload */
};

static void forget_said(struct hs_after_run *r)
{
	for (size_t i = 0; i < r->n_said; i++)
		free(r->said[i]);
	free(r->said);
	r->said = NULL;
	r->n_said = 0;
	r->said_all = false;
}

/* Whether key was said already; remembers it when not. */
static bool said_before(struct hs_after_run *r, const char *key)
{
	char **more, *copy;

	for (size_t i = 0; i < r->n_said; i++)
		if (strcmp(r->said[i], key) == 0)
			return true;
	if (r->said_all)
		return true;
	if (r->n_said == SAID_MAX) {
		r->said_all = true;
		return false;
	}
	if (!(copy = strdup(key)) || !(more = realloc(r->said, (r->n_said + 1) * sizeof(*more)))) {
		free(copy);
		return false; /* said again next time: better than never */
	}
	r->said = more;
	r->said[r->n_said++] = copy;
	return false;
}

/* The timer at the next pending action's due time (floor_ms from now at
 * the soonest), or off. */
static void arm_after(struct hs_after_run *r, int64_t floor_ms)
{
	int64_t at = -1, now = hs_wall_ms();
	uint64_t mono;
	char *cause = NULL;

	if (hs_queue_after_next_due(r->q, &at, &cause) != HS_Q_OK) {
		/* The queue's trouble is said where the queue is used; a
		 * scan finds the files again. */
		hs_log(LOG_WARNING, "after upload: %s", cause ? cause : "out of memory");
		free(cause);
		at = now + (int64_t)retry_backoff.cap_ms;
	}
	if (at < 0) {
		sd_event_source_set_enabled(r->timer, SD_EVENT_OFF);
		return;
	}
	if (at < now + floor_ms)
		at = now + floor_ms;
	sd_event_now(r->ev, CLOCK_MONOTONIC, &mono);
	sd_event_source_set_time(r->timer, mono + (uint64_t)(at > now ? at - now : 0) * 1000);
	sd_event_source_set_enabled(r->timer, SD_EVENT_ONESHOT);
}

static void arm(struct hs_after_run *r)
{
	arm_after(r, 0);
}

static void log_refusal(struct hs_after_run *r, const struct hs_log_field *f, size_t n_f,
			const char *cause, const struct hs_after_refusal *ref)
{
	char *line = NULL;
	enum hs_refusal kind = hs_refusal_explain(ref->dir, ref->top, ref->err, ref->owner, &line);
	/* The sandbox's fix names the configured folder: one line for it,
	 * whatever folder below it refused. */
	const char *key =
	    kind == HS_REFUSAL_SANDBOX || kind == HS_REFUSAL_READ_ONLY ? ref->top : ref->dir;

	if (kind != HS_REFUSAL_NONE && !said_before(r, key))
		hs_log_fields(LOG_ERR, f, n_f,
			      "after upload: %s; %s; the file stays and is tried again, and at "
			      "every reload",
			      cause ? cause : "refused", line ? line : "out of memory");
	else
		hs_log_fields(kind == HS_REFUSAL_NONE ? LOG_ERR : LOG_DEBUG, f, n_f,
			      "after upload: %s; tried again later", cause ? cause : "refused");
	free(line);
}

/* The end of an action: rc from after.h. Keeps a failed one pending. */
static void ended(struct hs_after_run *r, const char *path, const char *watch_root, int64_t size,
		  int64_t mtime_ns, int64_t inode, int64_t job_id, bool retry, int rc,
		  const char *dest, const char *cause, const struct hs_after_refusal *ref)
{
	char job[24], *qcause = NULL;
	const struct hs_log_field f[] = {{"FILE", path}, {"HEALSYNC_JOB", job_id > 0 ? job : NULL}};
	struct hs_job_spec spec = {.path = path,
				   .watch_root = watch_root,
				   .size = size,
				   .mtime_ns = mtime_ns,
				   .inode = inode};
	bool was = false, has = false, same = false;
	int q_rc;

	snprintf(job, sizeof(job), "%" PRId64, job_id);
	if (rc == HS_AFTER_PENDING && !retry)
		return;
	if (rc == HS_AFTER_PENDING) { /* a retry started a copy: due after it */
		q_rc = hs_queue_after_defer(r->q, &spec, job_id, "being copied to the move folder",
					    hs_wall_ms(), &retry_backoff, hs_random64(), NULL,
					    &qcause);
		arm(r);
	} else if (rc == HS_AFTER_FAILED && !retry && job_id <= 0 &&
		   hs_queue_after_has(r->q, &spec, &has, &same, &qcause) == HS_Q_OK && same) {
		/* A scan found a file whose action waits already: the timer
		 * keeps its schedule, and a large refused folder costs no
		 * write per file at every rescan. */
		hs_log_fields(LOG_DEBUG, f, 2, "after upload: %s; still waiting",
			      cause ? cause : "refused");
		return;
	} else if (rc == HS_AFTER_FAILED) {
		free(qcause);
		qcause = NULL;
		if (ref && ref->err)
			log_refusal(r, f, 2, cause, ref);
		else
			hs_log_fields(LOG_ERR, f, 2, "after upload: %s; tried again later",
				      cause ? cause : "out of memory");
		q_rc = hs_queue_after_defer(r->q, &spec, job_id, cause ? cause : "out of memory",
					    hs_wall_ms(), &retry_backoff, hs_random64(), NULL,
					    &qcause);
		arm(r);
	} else {
		if (rc == HS_AFTER_DONE)
			hs_log_fields(LOG_INFO, f, 2, "%s: %s%s", path,
				      dest ? "moved to " : "deleted", dest ? dest : "");
		q_rc = hs_queue_after_clear(r->q, path, &was, &qcause);
		if (was)
			arm(r);
	}
	if (q_rc != HS_Q_OK) {
		hs_log_fields(LOG_ERR, f, 2,
			      "after upload: cannot record it in the queue: %s; a scan finds the "
			      "file again",
			      qcause ? qcause : "out of memory");
		free(qcause);
	}
}

static bool copy_find(struct hs_after_run *r, const char *path)
{
	for (struct copy *c = r->copies; c; c = c->next)
		if (strcmp(c->path, path) == 0)
			return true;
	return false;
}

static struct copy *copy_take(struct hs_after_run *r, const char *path)
{
	for (struct copy **at = &r->copies; *at; at = &(*at)->next)
		if (strcmp((*at)->path, path) == 0) {
			struct copy *c = *at;
			*at = c->next;
			return c;
		}
	return NULL;
}

static void copy_free(struct copy *c)
{
	if (c) {
		free(c->path);
		free(c->watch_root);
		free(c);
	}
}

/* The end of a move across file systems. */
static void copy_done(const char *path, int rc, const char *dest, const char *cause,
		      const struct hs_after_refusal *ref, void *arg)
{
	struct hs_after_run *r = arg;
	struct copy *c = copy_take(r, path);

	if (c)
		ended(r, path, c->watch_root, c->size, c->mtime_ns, c->inode, c->job_id, false, rc,
		      dest, cause, ref);
	else if (rc == HS_AFTER_DONE)
		hs_log(LOG_INFO, "%s: moved to %s", path, dest ? dest : "?");
	else if (rc == HS_AFTER_FAILED)
		hs_log(LOG_ERR, "after upload: %s", cause ? cause : "out of memory");
	copy_free(c);
}

static void run_one(struct hs_after_run *r, const struct hs_watch *w, const char *path,
		    const char *rel, int64_t size, int64_t mtime_ns, int64_t inode, int64_t job_id,
		    bool retry)
{
	struct hs_after_refusal ref;
	char *dest = NULL, *cause = NULL;
	int rc;

	if (w->after_upload == HS_AFTER_KEEP)
		return;
	rc = hs_after_upload(r->after, w, path, rel, size, mtime_ns, inode, &dest, &ref, &cause);
	if (rc == HS_AFTER_PENDING && !copy_find(r, path)) {
		struct copy *c = calloc(1, sizeof(*c));
		if (c && (c->path = strdup(path)) && (c->watch_root = strdup(w->path))) {
			*c = (struct copy){.next = r->copies,
					   .path = c->path,
					   .watch_root = c->watch_root,
					   .size = size,
					   .mtime_ns = mtime_ns,
					   .inode = inode,
					   .job_id = job_id};
			r->copies = c;
		} else {
			copy_free(c); /* its end is then logged without a retry */
		}
	}
	ended(r, path, w->path, size, mtime_ns, inode, job_id, retry, rc, dest, cause, &ref);
	free(dest);
	free(cause);
}

void hs_after_run(struct hs_after_run *r, const struct hs_watch *w, const char *path,
		  const char *rel, int64_t size, int64_t mtime_ns, int64_t inode, int64_t job_id)
{
	run_one(r, w, path, rel, size, mtime_ns, inode, job_id, false);
}

static const struct hs_watch *watch_of(const struct hs_config *cfg, const char *root)
{
	for (size_t i = 0; i < cfg->n_watches; i++)
		if (strcmp(cfg->watches[i].path, root) == 0)
			return &cfg->watches[i];
	return NULL;
}

/* Whether the ledger holds the file at e with its very facts now. */
static bool still_stored(struct hs_after_run *r, const struct hs_watch *w,
			 const struct hs_after_entry *e, const char *rel, char **cause)
{
	char *remote = hs_remote_name(w->remote_prefix, rel);
	struct stat st;
	bool same = false;

	if (!remote) {
		*cause = strdup("out of memory");
		return false;
	}
	if (lstat(e->path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == e->size &&
	    (int64_t)st.st_ino == e->inode &&
	    (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec == e->mtime_ns &&
	    hs_queue_ledger_same_facts(r->q, remote, e->size, e->mtime_ns, e->inode, &same,
				       cause) != HS_Q_OK)
		same = false;
	free(remote);
	return same;
}

/* false when the queue could not be asked or told: the entry stays due. */
static bool retry_one(struct hs_after_run *r, const struct hs_after_entry *e)
{
	const struct hs_watch *w = watch_of(r->cfg, e->watch_root);
	size_t len = strlen(e->watch_root);
	char *cause = NULL;

	/* No longer configured, or no longer this file: nothing to do. */
	if (!w || w->after_upload == HS_AFTER_KEEP || strncmp(e->path, w->path, len) != 0 ||
	    e->path[len] != '/' || !still_stored(r, w, e, e->path + len + 1, &cause)) {
		bool ok = !cause && hs_queue_after_clear(r->q, e->path, NULL, &cause) == HS_Q_OK;
		if (!ok)
			hs_log(LOG_ERR, "after upload: %s", cause ? cause : "out of memory");
		free(cause);
		return ok;
	}
	run_one(r, w, e->path, e->path + len + 1, e->size, e->mtime_ns, e->inode, e->job_id, true);
	return true;
}

static int on_due(sd_event_source *s, uint64_t usec, void *arg)
{
	struct hs_after_run *r = arg;
	struct hs_after_entry *e = NULL;
	size_t n = 0;
	char *cause = NULL;
	bool stuck = false;

	(void)s;
	(void)usec;
	if (hs_queue_after_due(r->q, hs_wall_ms(), DUE_BATCH, &e, &n, &cause) != HS_Q_OK) {
		hs_log(LOG_ERR, "after upload: %s", cause ? cause : "out of memory");
		free(cause);
		stuck = true;
	}
	for (size_t i = 0; i < n; i++)
		stuck |= !retry_one(r, &e[i]);
	hs_after_entries_free(e, n);
	/* An entry the queue would not take stays due: not at once again. */
	arm_after(r, stuck ? (int64_t)retry_backoff.base_ms : 0);
	return 0;
}

struct hs_after_run *hs_after_run_new(sd_event *ev, struct hs_queue *q, const struct hs_config *cfg)
{
	struct hs_after_run *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->ev = ev;
	r->q = q;
	r->cfg = cfg;
	if (!(r->after = hs_after_new(ev, copy_done, r)) ||
	    sd_event_add_time(ev, &r->timer, CLOCK_MONOTONIC, 0, 1000 * 1000, on_due, r) < 0 ||
	    sd_event_source_set_enabled(r->timer, SD_EVENT_OFF) < 0)
		return hs_after_run_free(r);
	arm(r); /* what an earlier run left pending */
	return r;
}

struct hs_after_run *hs_after_run_free(struct hs_after_run *r)
{
	if (!r)
		return NULL;
	hs_after_free(r->after); /* reports nothing: its callback is dropped */
	while (r->copies)
		copy_free(copy_take(r, r->copies->path));
	sd_event_source_disable_unref(r->timer);
	forget_said(r);
	free(r);
	return NULL;
}

void hs_after_run_reconfigure(struct hs_after_run *r, const struct hs_config *cfg)
{
	char *cause = NULL;
	size_t n = 0;

	r->cfg = cfg;
	forget_said(r);
	if (hs_queue_after_due_now(r->q, hs_wall_ms(), &n, &cause) != HS_Q_OK) {
		hs_log(LOG_ERR, "after upload: %s", cause ? cause : "out of memory");
		free(cause);
	} else if (n) {
		hs_log(LOG_NOTICE, "after upload: %zu pending action%s tried again now", n,
		       n == 1 ? "" : "s");
	}
	arm(r);
}
