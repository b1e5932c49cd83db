/*
 * transfer: a transfer's life, from the claimed job to its end (see
 * transfer.h for the lifetime rule, upload.h for the steps).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/beneath.h"
#include "agent/clock.h"
#include "agent/log.h"
#include "agent/transfer.h"
#include "conf/units.h"

/* Retries within a claim, and jobs that failed, back off differently: a
 * step retry waits seconds, a failed job up to an hour. */
const struct hs_backoff hs_step_backoff = {.base_ms = 1000, .cap_ms = 30 * 1000};
static const struct hs_backoff job_backoff = {.base_ms = 10 * 1000, .cap_ms = 3600 * 1000};

const char *const hs_step_names[] = {
    [S_SCAN] = "scanning",	 [S_PRESIGN] = "presigning",	 [S_PUT] = "uploading",
    [S_COMPLETE] = "completing", [S_CREATE] = "creating",	 [S_LIST] = "resuming",
    [S_PARTS] = "uploading",	 [S_MP_COMPLETE] = "completing",
};

int64_t now_ms(void)
{
	return hs_wall_ms();
}

/* ---- logging ------------------------------------------------------------ */

void log_job(int prio, const struct transfer *t, long status, const char *msgid, const char *fmt,
	     ...)
{
	char id[24], st[8], msg[1024];
	va_list ap;

	snprintf(id, sizeof(id), "%" PRId64, t->job->id);
	snprintf(st, sizeof(st), "%ld", status);
	const struct hs_log_field f[] = {
	    {"HEALSYNC_JOB", id},
	    {"FILE", t->job->path},
	    {"REMOTE_NAME", t->job->remote_name},
	    {"UPLOAD_ID", t->session.upload_id ? t->session.upload_id : t->single.upload_id},
	    {"HTTP_STATUS", status > 0 ? st : NULL},
	    {"MESSAGE_ID", msgid},
	};
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	hs_log_fields(prio, f, sizeof(f) / sizeof(f[0]), "job %" PRId64 " %s: %s", t->job->id,
		      t->job->remote_name, msg);
}

void queue_error(const struct transfer *t, const char *what, char *cause)
{
	log_job(LOG_ERR, t, 0, NULL, "queue: %s: %s", what, cause ? cause : "out of memory");
	free(cause);
}

/* ---- ending a job --------------------------------------------------------- */

/* The server holds the file as read: its folder's after_upload may run. */
void report_stored(struct transfer *t)
{
	if (t->u->on_stored)
		t->u->on_stored(t->job, t->st.st_size,
				(int64_t)t->st.st_mtim.tv_sec * 1000000000 + t->st.st_mtim.tv_nsec,
				(int64_t)t->st.st_ino, t->u->stored_arg);
}

/* The watch folder the job belongs to, as the configuration in force names
 * it (the queue keeps the folder with the job); NULL for a file queued by
 * hand outside every folder, or a folder a reload removed. No I/O: it is
 * looked up at every transfer's start and end. */
static const struct hs_watch *watch_of(const struct transfer *t)
{
	const struct hs_config *cfg = t->u->cfg;

	if (!t->job->watch_root || !t->job->watch_root[0])
		return NULL;
	for (size_t i = 0; i < cfg->n_watches; i++)
		if (strcmp(cfg->watches[i].path, t->job->watch_root) == 0)
			return &cfg->watches[i];
	return NULL;
}

/* Whether the job's folder deletes or moves a file once it is stored. */
static bool acted_on(const struct transfer *t)
{
	const struct hs_watch *w = watch_of(t);

	return w && w->after_upload != HS_AFTER_KEEP;
}

void job_done(struct transfer *t, const char *file_id)
{
	char *cause = NULL, size[32];
	int rc;

	if (t->ended)
		return;
	/* Unsynced unless the file is deleted or moved next: the finished PUT
	 * is on disk already, so a power failure that takes this commit
	 * leaves a job that completes the same upload again at the next
	 * start (see "Durability" in queue/queue.h). A file about to go needs
	 * its job done on disk first, or that restart would find it gone. */
	rc = hs_queue_complete(t->u->q, t->job->id, t->job->lease_token, file_id, now_ms(),
			       acted_on(t), &cause);
	if (rc == HS_Q_OK) {
		log_job(LOG_INFO, t, 0, NULL, "uploaded (%s)",
			hs_format_size((uint64_t)t->st.st_size, size, sizeof(size)));
		report_stored(t);
	} else if (rc == HS_Q_LOST)
		log_job(LOG_WARNING, t, 0, NULL, "uploaded, but the job's lease was lost");
	else
		queue_error(t, "cannot mark the job done", cause);
	transfer_end(t);
}

void job_fail(struct transfer *t, bool permanent, long status, const char *fmt, ...)
{
	struct hs_uploader *u = t->u;
	enum hs_job_state state;
	char why[512], *cause = NULL;
	va_list ap;

	if (t->ended)
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (hs_queue_fail(u->q, t->job->id, t->job->lease_token, why, permanent, now_ms(),
			  &job_backoff, u->cfg->upload.max_attempts, hs_random64(), &state,
			  &cause) < 0) {
		queue_error(t, "cannot record a failure", cause);
	} else if (state == HS_JOB_DEAD) {
		log_job(LOG_ERR, t, status, HS_MSGID_UPLOAD_DEAD, "failed permanently: %s", why);
	} else {
		log_job(LOG_WARNING, t, status, NULL, "failed (attempt %u of %u), will retry: %s",
			t->job->attempts + 1, u->cfg->upload.max_attempts, why);
	}
	transfer_end(t);
}

void job_release(struct transfer *t, int64_t delay_ms)
{
	char *cause = NULL;

	if (t->ended)
		return;
	if (hs_queue_release(t->u->q, t->job->id, t->job->lease_token, now_ms() + delay_ms,
			     &cause) < 0)
		queue_error(t, "cannot release the job", cause);
	transfer_end(t);
}

void job_gone(struct transfer *t, const char *why)
{
	char *cause = NULL;

	if (t->ended)
		return;
	if (hs_queue_gone(t->u->q, t->job->id, t->job->lease_token, why, now_ms(), &cause) < 0)
		queue_error(t, "cannot record a vanished file", cause);
	else
		log_job(LOG_NOTICE, t, 0, NULL, "%s; nothing to send", why);
	transfer_end(t);
}

/* ---- requests and answers ------------------------------------------------- */

/* A request to the Upload API: URL base_url + path + id + tail (ids are
 * checked to be URL-safe when parsed) written into url. */
struct hs_http_request api_request(struct transfer *t, const char *method, char *url,
				   size_t url_len, const char *path, const char *id,
				   const char *tail)
{
	const struct hs_api *api = &t->u->cfg->upload.api;

	/* Two API requests of one transfer can overlap (a presign beside a
	 * step): both then carry the secret of the later one, and a 401 to the
	 * earlier one after a rotation costs at most a needless pause. */
	t->auth_gen = api->secret->generation;
	snprintf(url, url_len, "%s%s%s%s", api->base_url, path, id, tail);
	return (struct hs_http_request){.realm = "upload",
					.ca_file = api->ca_file,
					.proxy = api->proxy,
					.method = method,
					.url = url,
					.api_key = api->secret->value,
					.bearer = api->auth == HS_AUTH_BEARER,
					.body_fd = -1};
}

/* One API request for the current step (JSON body for POSTs); one that
 * cannot even start is a failed try of the step. max_response: the
 * largest answer accepted, 0 for the client's default. May end t. */
void api_call(struct transfer *t, const char *method, const char *path, const char *id,
	      const char *tail, const char *body, hs_http_done_fn done, size_t max_response)
{
	char url[4096], *cause = NULL;
	struct hs_http_request req = api_request(t, method, url, sizeof(url), path, id, tail);

	req.json_body = body;
	req.max_response = max_response;
	bool body_ok = body || strcmp(method, "POST") != 0;
	t->call = body_ok ? hs_http_send(t->u->http, &req, done, t, &cause) : NULL;
	if (!t->call) {
		step_retry(t, -1, cause ? cause : "out of memory");
		free(cause);
	}
}

/* The verdict on an answer, noting whether the API (or its storage)
 * works: any answer below 500 says so; a 5xx says the server or a gateway
 * on the way is down, not that the request was wrong. */
enum hs_verdict judge(struct transfer *t, const struct hs_http_response *r, enum hs_dialect d,
		      char *why, size_t len)
{
	struct hs_verdict_in in = {.dialect = d,
				   .answered = r->result == CURLE_OK,
				   .refused = r->refused != HS_REFUSED_NONE,
				   .body_changed = r->body_changed,
				   .status = r->status,
				   .body = r->body,
				   .error = r->error};

	t->stalled = r->result != CURLE_OK && r->stalled;
	if (r->result == CURLE_OK && r->status > 0 && r->status < 500) {
		t->answered = true;
		up_api_answered(t->u);
	}
	return hs_verdict_of(&in, why, len);
}

/* A transient failure of the current step: again after a backoff. A
 * failure without an answer, or a 5xx, is also the API's: once it is
 * known down the job goes back at once, spending nothing. status -1: the
 * request could not even start here. May end t. */
void step_retry(struct transfer *t, long status, const char *why)
{
	enum hs_retry_cause cause = hs_retry_cause_of(status, t->stalled);

	if (t->ended)
		return;
	if ((status == 0 || status >= 500) && up_api_failed(t, false, why)) {
		count_retry(t, cause); /* the job waits for the probe, then goes again */
		return;
	}
	if (++t->tries >= STEP_TRIES) {
		if (!last_attempt(t))
			count_retry(t, cause); /* the queue gives it another attempt */
		job_fail(t, false, status, "%s", why);
		return;
	}
	count_retry(t, cause);
	log_job(LOG_DEBUG, t, status, NULL, "%s failed, retrying: %s", hs_step_names[t->step], why);
	int64_t delay = (int64_t)hs_backoff_delay(&hs_step_backoff, t->tries, hs_random64());
	t->backoff_until = now_ms() + delay; /* also for what the pump sends */
	arm_timer(t, delay);
}

void count_retry(struct transfer *t, enum hs_retry_cause cause)
{
	if ((unsigned)cause < HS_RETRY_NCAUSES)
		t->u->retries[cause]++;
}

bool last_attempt(const struct transfer *t)
{
	return t->job->attempts + 1 >= t->u->cfg->upload.max_attempts;
}

/* Verdicts every step handles alike. Returns true when it handled v (t
 * may have ended). */
bool handle_common(struct transfer *t, enum hs_verdict v, long status, const char *why)
{
	switch (v) {
	case HS_V_RETRY:
		step_retry(t, status, why);
		return true;
	case HS_V_CHANGED:
		restart_changed(t, why);
		return true;
	case HS_V_AUTH:
		up_auth_refused(t);
		return true;
	case HS_V_DEAD:
		job_fail(t, true, status, "%s", why);
		return true;
	case HS_V_REFUSED:
		/* TLS or the proxy refused: the configuration or the
		 * server's certificate must change, not this file. */
		up_api_failed(t, true, why);
		return true;
	default:
		return false;
	}
}

/* ---- presigned URLs --------------------------------------------------------- */

/* A presigned URL's expires_at, turned from the server's clock into ours
 * with the Date of the answer that carried it (SPEC 1: a workstation's
 * clock may be off by hours). -1 when either is unknown. */
int64_t local_expiry(const struct hs_http_response *r, int64_t expires_ms)
{
	if (expires_ms <= 0)
		return -1;
	if (r->date_ms < 0)
		return expires_ms;
	return expires_ms - (r->date_ms - r->date_seen_ms);
}

/* How long the server's URLs live, by its own clock: expires_at against
 * the Date of the answer that carried them. */
void learn_url_ttl(struct hs_uploader *u, const struct hs_http_response *r, int64_t expires_ms)
{
	if (expires_ms > 0 && r->date_ms > 0 && expires_ms > r->date_ms)
		u->url_ttl_ms = expires_ms - r->date_ms;
}

/* Whether a URL is too close to its end to be worth a PUT: a PUT that
 * starts after it only spends bandwidth on a 403. The margin covers the
 * whole-second Date and the way to the storage: 5 s, or a fifth of a
 * short lifetime. */
bool url_stale(const struct hs_uploader *u, const struct hs_presigned *p)
{
	int64_t margin = 5000;

	if (u->url_ttl_ms > 0 && u->url_ttl_ms / 5 < margin)
		margin = u->url_ttl_ms / 5;
	return p->expires_ms > 0 && now_ms() >= p->expires_ms - margin;
}

/* ---- sessions -------------------------------------------------------------- */

/* Whether the job's file goes in parts. A session recorded under another
 * threshold is still handled safely: the server answers 404 for the wrong
 * kind and the job starts over. */
bool is_multipart(const struct transfer *t)
{
	return (uint64_t)t->st.st_size >= t->u->cfg->upload.multipart_threshold;
}

static void ignore_response(struct hs_http_response *resp, void *arg)
{
	(void)resp;
	(void)arg;
}

/* Drops the upload session here and, for a multipart one, politely at the
 * server (SPEC 1.1 DELETE): an abandoned session would hold its parts
 * until it expires. A single upload's session simply expires. */
void session_drop(struct transfer *t, bool abort_remote)
{
	char *cause = NULL, url[4096];

	if (!t->session.upload_id && !t->job->upload_id)
		return;
	if (abort_remote && is_multipart(t)) {
		const char *id = t->session.upload_id ? t->session.upload_id : t->job->upload_id;
		struct hs_http_request req =
		    api_request(t, "DELETE", url, sizeof(url), "/uploads/multipart/", id, "");
		/* Nobody waits for the answer: an abandoned session expires. */
		hs_http_send(t->u->http, &req, ignore_response, NULL, NULL);
	}
	if (hs_queue_mp_reset(t->u->q, t->job->id, t->job->lease_token, &cause) < 0)
		queue_error(t, "cannot drop the multipart session", cause);
	free(t->job->upload_id);
	t->job->upload_id = NULL;
	parts_free(t);
	hs_http_cancel(t->presign_call);
	t->presign_call = NULL;
	hs_session_clear(&t->session);
	hs_presigned_clear(&t->single);
}

/* The session is gone (404 upload_not_found, NoSuchUpload, a complete the
 * storage will not take): start a new one after a backoff, aborting the
 * old one at the server, which may still hold it (API nodes that do not
 * share sessions). Bounded: past SESSION_RESTARTS in one claim the job
 * spends an attempt. May end t. */
void session_restart(struct transfer *t, long status, const char *why)
{
	if (t->ended)
		return;
	if (++t->session_restarts > SESSION_RESTARTS) {
		job_fail(t, false, status, "%s (after %u upload sessions)", why,
			 t->session_restarts);
		return;
	}
	count_retry(t, HS_RETRY_SESSION_RESTART);
	log_job(LOG_INFO, t, status, NULL, "upload session gone (%s); starting a new one", why);
	session_drop(t, true);
	t->tries = 0;
	t->step = is_multipart(t) ? S_CREATE : S_PRESIGN;
	arm_timer(t,
		  (int64_t)hs_backoff_delay(&hs_step_backoff, t->session_restarts, hs_random64()));
}

/* Whether the file at the job's path is still the one that was scanned. */
bool file_unchanged(const struct transfer *t)
{
	struct stat a, b;

	if (fstat(t->fd, &a) != 0 || stat(t->job->path, &b) != 0)
		return false;
	return a.st_ino == b.st_ino && a.st_dev == b.st_dev && a.st_size == t->st.st_size &&
	       a.st_mtim.tv_sec == t->st.st_mtim.tv_sec &&
	       a.st_mtim.tv_nsec == t->st.st_mtim.tv_nsec && a.st_ino == t->st.st_ino;
}

/* Whether a file in a watch folder is still being written: milliseconds
 * until it is looked at again, else 0. Two signs, both on the descriptor
 * just opened, so it is this very file that is judged:
 *  - it changed less than its folder's settle time ago (a job sent back by
 *    restart_changed, or a writer that came back after the watcher let it
 *    go): due once it can have been quiet that long. A time ahead of the
 *    clock says nothing.
 *  - another process holds it open for writing (a read lease is refused,
 *    hs_writer_check): due after the settle time. The watcher's scans
 *    leave this check here rather than pay an open and a lease for every
 *    file they list; a writer that pauses longer than settle between
 *    pieces would otherwise have its half-written file read. Where no
 *    lease can be had (another user's file without CAP_LEASE) that is
 *    said once, and the settle time decides alone, as in the watcher.
 * A file queued by hand outside every watch folder has no settle time and
 * is read as it is. */
static int64_t still_written(struct transfer *t, const char **ret_why)
{
	const struct hs_watch *w = watch_of(t);
	int64_t age, mtime = (int64_t)t->st.st_mtim.tv_sec * 1000 + t->st.st_mtim.tv_nsec / 1000000;
	int busy;

	if (!w)
		return 0;
	age = hs_wall_ms() - mtime;
	if (age >= 0 && (uint64_t)age < w->settle_ms) {
		*ret_why = "changed within its settle time";
		return (int64_t)w->settle_ms - age;
	}
	busy = hs_writer_check(t->fd);
	if (busy < 0 && hs_writer_unknown_first())
		log_job(LOG_NOTICE, t, 0, NULL,
			"cannot take a file lease (%s): files still open for writing are not "
			"noticed; settle and unchanged size and mtime decide (the unit grants "
			"CAP_LEASE for this)",
			strerror(errno));
	if (busy != 1)
		return 0;
	*ret_why = "held open by a writer";
	return w->settle_ms > 0 ? (int64_t)w->settle_ms : 1000;
}

/* The file is not what was hashed: never complete, start from the new
 * content. If its facts did not change, the cause was elsewhere and it
 * counts as a failed attempt, so a broken server cannot loop us forever.
 * Ends t. */
void restart_changed(struct transfer *t, const char *why)
{
	if (t->ended)
		return;
	bool changed = !file_unchanged(t);
	session_drop(t, true);
	if (!changed) {
		job_fail(t, false, 0, "%s", why);
		return;
	}
	count_retry(t, HS_RETRY_FILE_CHANGED);
	log_job(LOG_NOTICE, t, 0, NULL, "file changed while uploading (%s); starting over", why);
	job_release(t, RESTART_DELAY_MS);
}

/* ---- complete ---------------------------------------------------------------- */

/* The answer to a complete, single or multipart. */
void on_complete(struct hs_http_response *resp, void *arg)
{
	struct transfer *t = arg;
	struct hs_stored stored = {0};
	char why[512], *cause = NULL;
	enum hs_verdict v;
	bool multipart = t->step == S_MP_COMPLETE;

	t->call = NULL;
	v = judge(t, resp, HS_DIALECT_API, why, sizeof(why));
	if (multipart && v == HS_V_DEAD && resp->status == 400) {
		/* The storage disagrees about the parts: look again,
		 * bounded. */
		if (++t->session_restarts > SESSION_RESTARTS) {
			job_fail(t, false, resp->status, "%s", why);
			return;
		}
		count_retry(t, HS_RETRY_SESSION_RESTART);
		t->step = S_LIST;
		run_step(t);
		return;
	}
	if (v == HS_V_SESSION || v == HS_V_URL) {
		/* The session expired between the PUTs and complete. */
		session_restart(t, resp->status, why);
		return;
	}
	if (handle_common(t, v, resp->status, why))
		return;
	if (hs_api_parse_stored(resp->body, &stored, &cause) != 0) {
		step_retry(t, resp->status, cause ? cause : "out of memory");
		free(cause);
		return;
	}
	if (strcmp(stored.sha256, t->sha) != 0 || stored.size != t->st.st_size) {
		hs_stored_clear(&stored);
		job_fail(t, false, resp->status, "the server stored other content than was sent");
		return;
	}
	job_done(t, stored.file_id);
	hs_stored_clear(&stored);
}

/* ---- steps -------------------------------------------------------------------- */

void arm_timer(struct transfer *t, int64_t delay_ms)
{
	uint64_t now;

	if (t->ended)
		return;
	sd_event_now(t->u->ev, CLOCK_MONOTONIC, &now);
	sd_event_source_set_time(t->timer, now + (uint64_t)delay_ms * 1000);
	sd_event_source_set_enabled(t->timer, SD_EVENT_ONESHOT);
}

/* Steps that lead to new body traffic: held back by a pause. */
static bool step_starts_upload(enum step step)
{
	return step == S_PRESIGN || step == S_PUT || step == S_CREATE || step == S_LIST;
}

/* May end t. */
void run_step(struct transfer *t)
{
	struct hs_uploader *u = t->u;

	if (t->ended || t->call)
		return; /* its answer moves the step on (the rule in transfer.h) */
	if (u->held && step_starts_upload(t->step)) {
		log_job(LOG_DEBUG, t, 0, NULL, "uploads paused; back to the queue");
		job_release(t, 0);
		return;
	}
	switch (t->step) {
	case S_SCAN:
		break;
	case S_PRESIGN:
		send_presign(t);
		break;
	case S_PUT:
		t->want_slot = true;
		up_kick(u);
		break;
	case S_COMPLETE:
		send_complete_single(t);
		break;
	case S_CREATE:
		send_create(t);
		break;
	case S_LIST:
		send_list(t);
		break;
	case S_PARTS:
		wake_parts(t);
		up_kick(u);
		presign_parts(t);
		break;
	case S_MP_COMPLETE:
		send_mp_complete(t);
		break;
	}
}

static int on_step_timer(sd_event_source *s, uint64_t usec, void *arg)
{
	(void)s;
	(void)usec;
	run_step(arg);
	return 0;
}

/* ---- beginning and end ------------------------------------------------------ */

/* Ends t: see the lifetime rule in transfer.h. */
void transfer_end(struct transfer *t)
{
	struct hs_uploader *u = t->u;

	if (t->ended)
		return;
	t->ended = true;
	for (struct transfer **pp = &u->transfers; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	}
	u->n_transfers--;
	hs_outage_forget(&u->outage, (uint64_t)(uintptr_t)t);
	hs_http_cancel(t->call);
	t->call = NULL;
	if (t->put_inflight)
		u->puts--;
	t->put_inflight = false;
	parts_free(t);
	hs_http_cancel(t->presign_call);
	t->presign_call = NULL;
	sd_event_source_set_enabled(t->scan_src, SD_EVENT_OFF);
	sd_event_source_set_enabled(t->timer, SD_EVENT_OFF);
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	/* t->next still leads on along the list, for a loop that holds t. */
	u->changed = true;
	up_kick(u);
	/* Reaped from the pump, with no call chain below it. */
	struct transfer **tail = &u->ended;
	while (*tail)
		tail = &(*tail)->ended_next;
	*tail = t;
}

/* Frees an ended transfer: only from the pump (the lifetime rule). */
void transfer_free(struct transfer *t)
{
	hs_session_clear(&t->session);
	hs_presigned_clear(&t->single);
	sd_event_source_disable_unref(t->scan_src);
	sd_event_source_disable_unref(t->timer);
	EVP_MD_CTX_free(t->md);
	free(t->scan_crcs);
	hs_job_free(t->job);
	free(t);
}

/* The job's file, opened below its watch folder (or below "/" for a file
 * queued by hand) without following a symlink anywhere on the way. */
static int open_job_file(const struct hs_job *job)
{
	const char *root, *name, *rel = hs_beneath_split(job->watch_root, job->path, &root);
	int dirfd, fd;

	if (!rel) {
		errno = ENOENT;
		return -1;
	}
	if ((dirfd = hs_beneath_parent(root, rel, &name)) < 0)
		return -1;
	fd = hs_beneath_open_file(dirfd, name);
	int e = errno;
	close(dirfd);
	errno = e;
	return fd;
}

void transfer_begin(struct hs_uploader *u, struct hs_job *job)
{
	struct transfer *t = calloc(1, sizeof(*t));
	char *cause = NULL;

	if (!t) {
		hs_queue_release(u->q, job->id, job->lease_token, now_ms() + 1000, &cause);
		free(cause);
		hs_job_free(job);
		return;
	}
	t->u = u;
	t->job = job;
	t->fd = -1;
	t->began_ms = now_ms();
	t->next = u->transfers;
	u->transfers = t;
	u->n_transfers++;
	u->changed = true;
	if (sd_event_add_time(u->ev, &t->timer, CLOCK_MONOTONIC, 0, 0, on_step_timer, t) < 0 ||
	    sd_event_source_set_enabled(t->timer, SD_EVENT_OFF) < 0 || scan_init(t) < 0) {
		job_release(t, 1000);
		return;
	}

	t->fd = open_job_file(job);
	if (t->fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			job_gone(t, "the file vanished");
		else if (errno == ELOOP)
			job_gone(t, "a symbolic link is on its path now, which is not followed");
		else
			job_fail(t, false, 0, "open: %s", strerror(errno));
		return;
	}
	if (fstat(t->fd, &t->st) != 0) {
		job_fail(t, false, 0, "fstat: %s", strerror(errno));
		return;
	}
	if (!S_ISREG(t->st.st_mode)) {
		job_gone(t, "no longer a regular file");
		return;
	}
	const char *why = NULL;
	int64_t quiet_in = still_written(t, &why);
	if (quiet_in > 0) {
		log_job(LOG_DEBUG, t, 0, NULL, "still being written (%s); read in %" PRId64 " ms",
			why, quiet_in);
		job_release(t, quiet_in);
		return;
	}

	int64_t mtime_ns = (int64_t)t->st.st_mtim.tv_sec * 1000000000 + t->st.st_mtim.tv_nsec;
	bool same = job->sha256[0] && job->size == t->st.st_size && job->mtime_ns == mtime_ns &&
		    job->inode == (int64_t)t->st.st_ino;
	if (job->upload_id && same && !is_multipart(t) && single_was_sent(t)) {
		/* The PUT had landed: only the complete may be missing. */
		memcpy(t->sha, job->sha256, sizeof(t->sha));
		if (!(t->single.upload_id = strdup(job->upload_id))) {
			job_release(t, 1000);
			return;
		}
		t->step = S_COMPLETE;
		run_step(t);
		return;
	}
	if (job->upload_id && same && is_multipart(t)) {
		/* Resume: the session belongs to exactly this content. */
		memcpy(t->sha, job->sha256, sizeof(t->sha));
		t->session.upload_id = strdup(job->upload_id);
		t->session.part_size = job->part_size;
		t->session.part_count = job->part_count;
		if (!t->session.upload_id) {
			job_release(t, 1000);
			return;
		}
		t->step = S_LIST;
		run_step(t);
		return;
	}
	if (job->upload_id)
		session_drop(t, true); /* a session for older content */
	start_scan(t, true, hs_api_part_size_for(t->st.st_size, (int64_t)u->cfg->upload.part_size));
}
