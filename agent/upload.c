/*
 * upload: the transfer state machine (see upload.h for the steps).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "agent/beneath.h"
#include "agent/clock.h"
#include "agent/log.h"
#include "agent/upload.h"
#include "agent/upload_api.h"
#include "conf/units.h"

#define SCAN_SLICE	 (1024 * 1024)
#define LEASE_MS	 (5 * 60 * 1000)
#define RENEW_MS	 (60 * 1000)
#define STEP_TRIES	 5  /* transient failures of one step before the job fails */
#define URL_REFRESHES	 10 /* fresh URLs for one PUT before that counts as a failure */
#define RESTART_DELAY_MS 2000

/* Retries within a claim, and jobs that failed, back off differently: a
 * step retry waits seconds, a failed job up to an hour. */
static const struct hs_backoff step_backoff = {.base_ms = 1000, .cap_ms = 30 * 1000};
static const struct hs_backoff job_backoff = {.base_ms = 10 * 1000, .cap_ms = 3600 * 1000};
static const struct hs_backoff auth_backoff = {.base_ms = 60 * 1000, .cap_ms = 3600 * 1000};
/* While nothing answers: at least 10 s, then up to 30 s, 1 min, ... 15 min. */
static const struct hs_backoff outage_backoff = {.base_ms = 30 * 1000, .cap_ms = 15 * 60 * 1000};
#define OUTAGE_MIN_MS 10000

enum step {
	S_SCAN,
	S_PRESIGN,
	S_PUT,
	S_COMPLETE,
	S_CREATE,
	S_LIST,
	S_PARTS,
	S_MP_COMPLETE,
};

static const char *const step_names[] = {
    [S_SCAN] = "scanning",	 [S_PRESIGN] = "presigning",	 [S_PUT] = "uploading",
    [S_COMPLETE] = "completing", [S_CREATE] = "creating",	 [S_LIST] = "resuming",
    [S_PARTS] = "uploading",	 [S_MP_COMPLETE] = "completing",
};

enum part_state { P_TODO, P_PRESIGNING, P_READY, P_SENDING, P_WAIT, P_DONE };

struct part {
	struct transfer *t;
	uint32_t index;
	enum part_state state;
	bool crc_known;
	uint32_t crc;
	unsigned tries;
	unsigned refreshes;
	int64_t retry_at; /* P_WAIT: Unix ms */
	struct hs_presigned url;
	struct hs_http_call *call;
	int64_t size;
	char etag[129];
};

/* How a response ends a step. */
enum verdict {
	V_OK,
	V_RETRY,   /* transient: again after a backoff */
	V_URL,	   /* presigned URL expired or used: a fresh one */
	V_SESSION, /* upload_not_found: start the session over */
	V_CHANGED, /* the file is not what was hashed: start over */
	V_AUTH,	   /* 401: the key was refused */
	V_DEAD,	   /* permanent for this file */
	V_REFUSED, /* TLS or the proxy refused: configuration, not this file */
};

struct transfer {
	struct hs_uploader *u;
	struct transfer *next;
	struct hs_job *job;
	enum step step;
	int fd;
	struct stat st; /* facts when scanned */

	/* scan */
	sd_event_source *scan_src;
	EVP_MD_CTX *md; /* NULL on a CRC-only rescan */
	int64_t scan_pos;
	int64_t scan_part_size;
	uint32_t *scan_crcs;
	uint32_t scan_crc;
	char sha[65];

	/* one request at a time for every step but the part PUTs */
	struct hs_http_call *call;
	bool want_slot; /* S_PUT waiting for a transfer slot */
	struct hs_presigned single;
	bool put_inflight;

	/* multipart */
	struct hs_session session;
	struct part *parts;
	uint32_t n_done;
	struct hs_http_call *presign_call;
	int64_t done_bytes;

	int64_t began_ms; /* when the transfer began (wall ms) */
	unsigned tries;	  /* of the current step */
	unsigned refreshes;
	unsigned session_restarts;
	sd_event_source *timer;
};

/* No job is claimed while a pause is on; its timer ends it. count is the
 * pauses in a row, the backoff's attempt number and what decides whether
 * a pause is logged as news. */
struct pause {
	struct hs_uploader *u;
	bool on;
	unsigned count;
	sd_event_source *timer;
};

struct hs_uploader {
	sd_event *ev;
	const struct hs_config *cfg;
	struct hs_queue *q;
	struct hs_http *http;
	struct transfer *transfers;
	unsigned n_transfers;
	unsigned puts; /* PUTs in flight, all jobs */
	unsigned char *buf;
	sd_event_source *pump_src; /* runs pump() once from the loop */
	sd_event_source *due_timer;
	sd_event_source *renew_timer;
	sd_event_source *stop_timer;

	struct pause auth; /* the key was rejected (401) */

	struct pause outage;	/* nothing worked for a whole transfer (outage_pause) */
	int64_t last_answer_ms; /* the last answer below 500 from the API or storage */

	bool held; /* the bandwidth timetable's "pause" (hs_uploader_hold) */

	void (*on_change)(void *arg);
	void *change_arg;
	hs_uploader_stored_fn on_stored;
	void *stored_arg;

	bool stopping;
	void (*stop_done)(void *arg);
	void *stop_arg;
};

static void kick(struct hs_uploader *u);
static void run_step(struct transfer *t);
static void transfer_end(struct transfer *t);
static bool complete_from_records(struct transfer *t);

/* ---- logging -------------------------------------------------------------- */

static void log_job(int prio, const struct transfer *t, long status, const char *msgid,
		    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void log_job(int prio, const struct transfer *t, long status, const char *msgid,
		    const char *fmt, ...)
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
	    {"HTTP_STATUS", status ? st : NULL},
	    {"MESSAGE_ID", msgid},
	};
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	hs_log_fields(prio, f, sizeof(f) / sizeof(f[0]), "job %" PRId64 " %s: %s", t->job->id,
		      t->job->remote_name, msg);
}

static void queue_error(const struct transfer *t, const char *what, char *cause)
{
	log_job(LOG_ERR, t, 0, NULL, "queue: %s: %s", what, cause ? cause : "out of memory");
	free(cause);
}

/* ---- ending a job ------------------------------------------------------- */

/* The server holds the file as read: its folder's after_upload may run. */
static void report_stored(struct transfer *t)
{
	if (t->u->on_stored)
		t->u->on_stored(t->job, t->st.st_size,
				(int64_t)t->st.st_mtim.tv_sec * 1000000000 + t->st.st_mtim.tv_nsec,
				(int64_t)t->st.st_ino, t->u->stored_arg);
}

static int64_t now_ms(void)
{
	return hs_wall_ms();
}

static void job_done(struct transfer *t, const char *file_id)
{
	char *cause = NULL, size[32];
	int rc =
	    hs_queue_complete(t->u->q, t->job->id, t->job->lease_token, file_id, now_ms(), &cause);

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

static void job_fail(struct transfer *t, bool permanent, long status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void job_fail(struct transfer *t, bool permanent, long status, const char *fmt, ...)
{
	struct hs_uploader *u = t->u;
	enum hs_job_state state;
	char why[512], *cause = NULL;
	va_list ap;

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

static void job_release(struct transfer *t, int64_t delay_ms)
{
	char *cause = NULL;

	if (hs_queue_release(t->u->q, t->job->id, t->job->lease_token, now_ms() + delay_ms,
			     &cause) < 0)
		queue_error(t, "cannot release the job", cause);
	transfer_end(t);
}

static void job_gone(struct transfer *t, const char *why)
{
	char *cause = NULL;

	if (hs_queue_gone(t->u->q, t->job->id, t->job->lease_token, why, now_ms(), &cause) < 0)
		queue_error(t, "cannot record a vanished file", cause);
	else
		log_job(LOG_NOTICE, t, 0, NULL, "%s; nothing to send", why);
	transfer_end(t);
}

/* ---- sessions --------------------------------------------------------- */

/* base_url + path + id + tail: ids are checked to be URL-safe when parsed. */
static void api_url(const struct transfer *t, char *buf, size_t len, const char *path,
		    const char *id, const char *tail)
{
	snprintf(buf, len, "%s%s%s%s", t->u->cfg->upload.api.base_url, path, id, tail);
}

static void ignore_response(struct hs_http_response *resp, void *arg)
{
}

/* Whether the job's file goes in parts. A session recorded under another
 * threshold is still handled safely: the server answers 404 for the wrong
 * kind and the job starts over. */
static bool is_multipart(const struct transfer *t)
{
	return (uint64_t)t->st.st_size >= t->u->cfg->upload.multipart_threshold;
}

/* Drops the upload session here and, for a multipart one, politely at the
 * server. A single upload's session simply expires. */
static void session_drop(struct transfer *t, bool abort_remote)
{
	char *cause = NULL, url[4096];

	if (!t->session.upload_id && !t->job->upload_id)
		return;
	if (abort_remote && is_multipart(t)) {
		const char *id = t->session.upload_id ? t->session.upload_id : t->job->upload_id;
		api_url(t, url, sizeof(url), "/uploads/multipart/", id, "");
		struct hs_http_request req = {.realm = "upload",
					      .ca_file = t->u->cfg->upload.api.ca_file,
					      .proxy = t->u->cfg->upload.api.proxy,
					      .method = "DELETE",
					      .url = url,
					      .api_key = t->u->cfg->upload.api.api_key,
					      .body_fd = -1};
		/* Nobody waits for the answer: an abandoned session expires. */
		hs_http_send(t->u->http, &req, ignore_response, NULL, NULL);
	}
	if (hs_queue_mp_reset(t->u->q, t->job->id, t->job->lease_token, &cause) < 0)
		queue_error(t, "cannot drop the multipart session", cause);
	free(t->job->upload_id);
	t->job->upload_id = NULL;
	for (uint32_t i = 0; t->parts && i < t->session.part_count; i++) {
		hs_http_cancel(t->parts[i].call);
		if (t->parts[i].state == P_SENDING)
			t->u->puts--;
		hs_presigned_clear(&t->parts[i].url);
	}
	free(t->parts);
	t->parts = NULL;
	t->n_done = 0;
	t->done_bytes = 0;
	hs_http_cancel(t->presign_call);
	t->presign_call = NULL;
	hs_session_clear(&t->session);
}

/* The file is not what was hashed: never complete, start from the new
 * content. If its facts did not change, the cause was elsewhere and it
 * counts as a failed attempt, so a broken server cannot loop us forever. */
static void restart_changed(struct transfer *t, const char *why)
{
	struct stat st;
	bool changed = stat(t->job->path, &st) != 0 || st.st_size != t->st.st_size ||
		       st.st_ino != t->st.st_ino || st.st_mtim.tv_sec != t->st.st_mtim.tv_sec ||
		       st.st_mtim.tv_nsec != t->st.st_mtim.tv_nsec;

	session_drop(t, true);
	if (!changed) {
		job_fail(t, false, 0, "%s", why);
		return;
	}
	log_job(LOG_NOTICE, t, 0, NULL, "file changed while uploading (%s); starting over", why);
	job_release(t, RESTART_DELAY_MS);
}

/* ---- responses ---------------------------------------------------------- */

static enum verdict classify(const struct hs_http_response *r, long want, char *why, size_t len)
{
	char type[64], msg[256];

	if (r->body_changed) {
		snprintf(why, len, "%s", r->error);
		return V_CHANGED;
	}
	if (r->result != CURLE_OK) {
		snprintf(why, len, "%s", r->error);
		return r->refused != HS_REFUSED_NONE ? V_REFUSED : V_RETRY;
	}
	if (r->status == want || (want == 200 && r->status >= 200 && r->status < 300))
		return V_OK;
	hs_api_error_type(r->body, type, sizeof(type));
	hs_api_error_message(r->body, msg, sizeof(msg));
	snprintf(why, len, "HTTP %ld%s%s%s%s", r->status, type[0] ? " " : "", type,
		 msg[0] ? ": " : "", msg);
	switch (r->status) {
	case 401:
		return V_AUTH;
	case 403:
		if (strcmp(type, "url_expired") == 0 || strcmp(type, "url_used") == 0)
			return V_URL;
		return V_DEAD;
	case 404:
		return strcmp(type, "upload_not_found") == 0 ? V_SESSION : V_DEAD;
	case 409:
		return strcmp(type, "checksum_mismatch") == 0 ? V_CHANGED : V_RETRY;
	case 400:
		return strcmp(type, "bad_digest") == 0 ? V_CHANGED : V_DEAD;
	case 408:
	case 425:
	case 429:
		return V_RETRY;
	default:
		return r->status >= 500 ? V_RETRY : V_DEAD;
	}
}

/* classify, noting when the API (or its storage) last worked: answered
 * with anything but a 5xx, which says the server or a gateway on the way
 * is down, not that the request was wrong. */
static enum verdict judge(struct transfer *t, const struct hs_http_response *r, long want,
			  char *why, size_t len)
{
	struct hs_uploader *u = t->u;

	if (r->status > 0 && r->status < 500) {
		u->last_answer_ms = now_ms();
		if (u->outage.count) {
			hs_log(LOG_NOTICE, "upload API works again; uploads go on");
			u->outage.count = 0;
		}
	}
	return classify(r, want, why, len);
}

/* The text of <tag>...</tag> in an S3 XML error body, printable ASCII
 * only and cut to fit; "" when absent. Only Code and Message are read:
 * other elements of S3 errors (StringToSign, SignatureProvided) echo the
 * presigned URL's secrets. */
static void xml_element(const char *body, const char *tag, char *buf, size_t len)
{
	char open[32];
	const char *start, *end;
	size_t n = 0;

	buf[0] = '\0';
	snprintf(open, sizeof(open), "<%s>", tag);
	if (!body || !(start = strstr(body, open)))
		return;
	start += strlen(open);
	if (!(end = strchr(start, '<')))
		return;
	for (const char *p = start; p < end && n + 1 < len; p++)
		buf[n++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
	buf[n] = '\0';
}

/* A storage answer, judged by its status (SPEC 1.1): the storage behind
 * presigned URLs is S3-compatible and its bodies are S3 XML, an HTML page
 * from a proxy, or nothing, as often as JSON. Any 403 asks for a fresh URL
 * (expired, used, or a signature the storage no longer takes), 404 means
 * the session is gone (NoSuchUpload), 400 BadDigest / InvalidDigest that
 * the bytes did not match; 5xx, 408 and 429 are transient (classify). */
static enum verdict judge_storage(struct transfer *t, const struct hs_http_response *r, char *why,
				  size_t len)
{
	enum verdict v = judge(t, r, 200, why, len);
	char code[64], msg[160], type[64];

	if (v == V_OK || r->result != CURLE_OK || r->body_changed)
		return v;
	xml_element(r->body, "Code", code, sizeof(code));
	if (code[0]) {
		xml_element(r->body, "Message", msg, sizeof(msg));
		snprintf(why, len, "HTTP %ld %s%s%s", r->status, code, msg[0] ? ": " : "", msg);
	}
	hs_api_error_type(r->body, type, sizeof(type));
	switch (r->status) {
	case 403:
		return V_URL;
	case 404:
		return V_SESSION;
	case 400:
		if (strcmp(code, "BadDigest") == 0 || strcmp(code, "InvalidDigest") == 0 ||
		    strcmp(type, "bad_digest") == 0)
			return V_CHANGED;
		return V_DEAD;
	case 401:
		/* Presigned URLs carry no key: not the API key's fault. */
		return V_URL;
	default:
		return v;
	}
}

/* A presigned URL's expires_at, turned from the server's clock into ours
 * with the Date of the answer that carried it (SPEC 1: a workstation's
 * clock may be off by hours). -1 when either is unknown. */
static int64_t local_expiry(const struct hs_http_response *r, int64_t expires_ms)
{
	if (expires_ms <= 0)
		return -1;
	if (r->date_ms < 0)
		return expires_ms;
	return expires_ms - (r->date_ms - r->date_seen_ms);
}

/* Whether a URL is too close to its end to be worth a PUT: a PUT that
 * cannot finish in time only spends bandwidth on a 403. */
#define EXPIRY_MARGIN_MS 5000
static bool url_stale(const struct hs_presigned *p)
{
	return p->expires_ms > 0 && now_ms() >= p->expires_ms - EXPIRY_MARGIN_MS;
}

static int on_step_timer(sd_event_source *s, uint64_t usec, void *arg);

static void arm_timer(struct transfer *t, int64_t delay_ms)
{
	uint64_t now;

	sd_event_now(t->u->ev, CLOCK_MONOTONIC, &now);
	sd_event_source_set_time(t->timer, now + (uint64_t)delay_ms * 1000);
	sd_event_source_set_enabled(t->timer, SD_EVENT_ONESHOT);
}

static int64_t outage_pause(struct hs_uploader *u, const char *why);

/* A step out of tries. If it failed without an answer or with a 5xx, and
 * nothing has worked since the transfer began (no answer below 500, from
 * any transfer), the network, a proxy or the server is down, not this
 * file: the job goes back without spending an attempt and the uploader
 * pauses, so that an outage of an afternoon does not kill the whole queue.
 * Otherwise the job has failed an attempt. Bounded either way: while the
 * server works for others (or for this file's earlier steps), a file's own
 * failures are charged. */
static void step_failed(struct transfer *t, long status, const char *why)
{
	if ((status == 0 || status >= 500) && t->u->last_answer_ms < t->began_ms) {
		log_job(LOG_DEBUG, t, 0, NULL, "no answer (%s); back to the queue", why);
		job_release(t, outage_pause(t->u, why));
		return;
	}
	job_fail(t, false, status, "%s", why);
}

/* A transient failure of the current step: again after a backoff, or
 * step_failed once the step has failed STEP_TRIES times in a row. */
static void step_retry(struct transfer *t, long status, const char *why)
{
	if (++t->tries >= STEP_TRIES) {
		step_failed(t, status, why);
		return;
	}
	log_job(LOG_DEBUG, t, status, NULL, "%s failed, retrying: %s", step_names[t->step], why);
	arm_timer(t, (int64_t)hs_backoff_delay(&step_backoff, t->tries, hs_random64()));
}

/* One API request for the current step (URL base_url + path + id + tail,
 * JSON body for POSTs); a request that cannot even start is a failed try
 * of the step. May end the transfer. */
/* max_response: the largest answer accepted; 0: the client's default. */
static void api_call_max(struct transfer *t, const char *method, const char *path, const char *id,
			 const char *tail, const char *body, hs_http_done_fn done,
			 size_t max_response)
{
	char url[4096], *cause = NULL;

	api_url(t, url, sizeof(url), path, id, tail);
	struct hs_http_request req = {.realm = "upload",
				      .ca_file = t->u->cfg->upload.api.ca_file,
				      .proxy = t->u->cfg->upload.api.proxy,
				      .method = method,
				      .url = url,
				      .api_key = t->u->cfg->upload.api.api_key,
				      .json_body = body,
				      .body_fd = -1,
				      .max_response = max_response};
	bool body_ok = body || strcmp(method, "POST") != 0;
	t->call = body_ok ? hs_http_send(t->u->http, &req, done, t, &cause) : NULL;
	if (!t->call) {
		step_retry(t, 0, cause ? cause : "out of memory");
		free(cause);
	}
}

static void api_call(struct transfer *t, const char *method, const char *path, const char *id,
		     const char *tail, const char *body, hs_http_done_fn done)
{
	api_call_max(t, method, path, id, tail, body, done, 0);
}

static void auth_pause(struct hs_uploader *u);

/* TLS or the proxy refused: an untrusted, expired or wrong-host
 * certificate, or a proxy that cannot be reached or refuses the tunnel.
 * The configuration (ca_file, proxy) or the server's certificate must
 * change, not this file: the job goes back without spending an attempt
 * and uploads pause, logged once with the host and the cause (why). A
 * reload ends the pause at once, and the job is first in line. */
static void refused_pause(struct transfer *t, const char *why)
{
	outage_pause(t->u, why);
	job_release(t, 0);
}

/* Verdicts every step handles alike. Returns true when it handled v. */
static bool handle_common(struct transfer *t, enum verdict v, long status, const char *why)
{
	switch (v) {
	case V_RETRY:
		step_retry(t, status, why);
		return true;
	case V_CHANGED:
		restart_changed(t, why);
		return true;
	case V_AUTH:
		auth_pause(t->u);
		job_release(t, 0);
		return true;
	case V_DEAD:
		job_fail(t, true, status, "%s", why);
		return true;
	case V_REFUSED:
		refused_pause(t, why);
		return true;
	default:
		return false;
	}
}

/* ---- stat facts ---------------------------------------------------------- */

/* Whether the file at the job's path is still the one that was scanned. */
static bool file_unchanged(const struct transfer *t)
{
	struct stat a, b;

	if (fstat(t->fd, &a) != 0 || stat(t->job->path, &b) != 0)
		return false;
	return a.st_ino == b.st_ino && a.st_dev == b.st_dev && a.st_size == t->st.st_size &&
	       a.st_mtim.tv_sec == t->st.st_mtim.tv_sec &&
	       a.st_mtim.tv_nsec == t->st.st_mtim.tv_nsec && a.st_ino == t->st.st_ino;
}

/* ---- small files: presign, PUT, complete ---------------------------------- */

static void on_complete(struct hs_http_response *resp, void *arg)
{
	struct transfer *t = arg;
	struct hs_stored stored = {0};
	char why[512], *cause = NULL;
	enum verdict v;

	t->call = NULL;
	v = judge(t, resp, 200, why, sizeof(why));
	bool multipart = t->step == S_MP_COMPLETE;
	if (v == V_SESSION || v == V_URL || (multipart && v == V_DEAD && resp->status == 400)) {
		/* The session expired between the PUTs and complete, or the
		 * storage disagrees about the parts: look again, bounded. */
		if (++t->session_restarts > STEP_TRIES) {
			job_fail(t, false, resp->status, "%s", why);
			return;
		}
		if (multipart && v == V_DEAD) {
			t->step = S_LIST;
		} else {
			hs_presigned_clear(&t->single);
			session_drop(t, false);
			t->step = multipart ? S_CREATE : S_PRESIGN;
		}
		run_step(t);
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

static void send_complete_single(struct transfer *t)
{
	api_call(t, "POST", "/uploads/", t->single.upload_id, "/complete", "{}", on_complete);
}

static void on_put(struct hs_http_response *resp, void *arg)
{
	struct transfer *t = arg;
	struct hs_uploader *u = t->u; /* t may be gone before the end */
	char why[512];
	enum verdict v;

	t->call = NULL;
	t->put_inflight = false;
	u->puts--;
	v = judge_storage(t, resp, why, sizeof(why));
	if (v == V_URL || v == V_SESSION) {
		hs_presigned_clear(&t->single);
		/* Bounded: storage that refuses every fresh URL costs the
		 * file an attempt rather than looping. */
		if (v == V_URL ? ++t->refreshes > URL_REFRESHES
			       : ++t->session_restarts > STEP_TRIES) {
			job_fail(t, false, resp->status, "%s (after %u fresh URLs)", why,
				 t->refreshes + t->session_restarts - 1);
			kick(u);
			return;
		}
		if (v == V_SESSION)
			session_drop(t, false);
		t->step = S_PRESIGN;
		run_step(t);
		kick(u);
		return;
	}
	if (!handle_common(t, v, resp->status, why)) {
		struct hs_part put = {.number = 1, .size = t->st.st_size};
		char *cause = NULL;
		snprintf(put.etag, sizeof(put.etag), "%s", resp->etag);
		if (hs_queue_mp_part_done(u->q, t->job->id, t->job->lease_token, &put, true,
					  &cause) < 0)
			queue_error(t, "cannot record the finished PUT", cause);
		t->done_bytes = t->st.st_size;
		t->tries = 0;
		if (!file_unchanged(t)) {
			restart_changed(t, "the file changed after it was read");
		} else {
			t->step = S_COMPLETE;
			run_step(t);
		}
	}
	kick(u);
}

static void send_put_single(struct transfer *t)
{
	char *cause = NULL;
	struct hs_http_request req = {.realm = "upload",
				      .ca_file = t->u->cfg->upload.api.ca_file,
				      .proxy = t->u->cfg->upload.api.proxy,
				      .rl_class = HS_RL_STORAGE,
				      .method = "PUT",
				      .url = t->single.url,
				      .headers = (const char *const *)t->single.headers,
				      .body_fd = t->fd,
				      .body_offset = 0,
				      .body_length = t->st.st_size};

	t->want_slot = false;
	if (url_stale(&t->single)) {
		/* Expired by the server's clock: a fresh URL, bounded. */
		hs_presigned_clear(&t->single);
		if (++t->refreshes > URL_REFRESHES) {
			job_fail(t, false, 0, "presigned URLs expire before they can be used");
			return;
		}
		log_job(LOG_DEBUG, t, 0, NULL, "presigned URL expired; asking for a fresh one");
		t->step = S_PRESIGN;
		run_step(t);
		return;
	}
	t->call = hs_http_send(t->u->http, &req, on_put, t, &cause);
	if (!t->call) {
		/* A URL curl cannot use: a failed try of the step. */
		hs_presigned_clear(&t->single);
		t->step = S_PRESIGN;
		step_retry(t, 0, cause ? cause : "out of memory");
		free(cause);
		return;
	}
	t->put_inflight = true;
	t->u->puts++;
}

static void on_presign(struct hs_http_response *resp, void *arg)
{
	struct transfer *t = arg;
	char why[512], *cause = NULL;
	enum verdict v;

	t->call = NULL;
	v = judge(t, resp, 201, why, sizeof(why));
	if (v == V_URL || v == V_SESSION)
		v = V_RETRY;
	if (handle_common(t, v, resp->status, why))
		return;
	if (hs_api_parse_presigned(resp->body, &t->single, &cause) != 0) {
		step_retry(t, resp->status, cause ? cause : "out of memory");
		free(cause);
		return;
	}
	t->single.expires_ms = local_expiry(resp, t->single.expires_ms);
	/* Recorded as a session of one part, so that a restart after the PUT
	 * completes this upload instead of sending the file again. */
	if (hs_queue_mp_begin(t->u->q, t->job->id, t->job->lease_token, t->single.upload_id,
			      t->st.st_size > 0 ? t->st.st_size : 1, 1, &cause) < 0)
		queue_error(t, "cannot record the upload session", cause);
	free(t->job->upload_id);
	t->job->upload_id = strdup(t->single.upload_id);
	t->tries = 0;
	t->step = S_PUT;
	t->want_slot = true;
	kick(t->u);
}

static void send_presign(struct transfer *t)
{
	char *body = hs_api_presign_body(t->job->remote_name, t->st.st_size, t->sha,
					 hs_content_type(t->job->remote_name));

	api_call(t, "POST", "/uploads", "", "", body, on_presign);
	free(body);
}

/* ---- large files: parts ------------------------------------------------ */

static int64_t part_offset(const struct transfer *t, uint32_t index)
{
	return (int64_t)index * t->session.part_size;
}

static int64_t part_length(const struct transfer *t, uint32_t index)
{
	int64_t rest = t->st.st_size - part_offset(t, index);

	return rest < t->session.part_size ? rest : t->session.part_size;
}

static void parts_for_status(const struct transfer *t, uint32_t *todo, uint32_t *ready)
{
	*todo = *ready = 0;
	for (uint32_t i = 0; i < t->session.part_count; i++) {
		if (t->parts[i].state == P_TODO)
			(*todo)++;
		else if (t->parts[i].state == P_READY || t->parts[i].state == P_PRESIGNING)
			(*ready)++;
	}
}

static void on_part_urls(struct hs_http_response *resp, void *arg)
{
	struct transfer *t = arg;
	struct hs_presigned *urls = NULL;
	uint32_t asked[HS_PARTS_PER_PRESIGN];
	size_t n = 0;
	char why[512], *cause = NULL;
	enum verdict v;

	t->presign_call = NULL;
	for (uint32_t i = 0; i < t->session.part_count && n < HS_PARTS_PER_PRESIGN; i++)
		if (t->parts[i].state == P_PRESIGNING)
			asked[n++] = i + 1;
	v = judge(t, resp, 200, why, sizeof(why));
	if (v == V_OK && hs_api_parse_part_urls(resp->body, asked, n, &urls, &cause) != 0) {
		snprintf(why, sizeof(why), "%s", cause ? cause : "out of memory");
		free(cause);
		v = V_RETRY;
	}
	if (v != V_OK) {
		for (size_t k = 0; k < n; k++)
			t->parts[asked[k] - 1].state = P_TODO;
		if (v == V_SESSION) {
			session_drop(t, false);
			t->step = S_CREATE;
			run_step(t);
		} else if (v == V_URL) {
			step_retry(t, resp->status, why);
		} else {
			handle_common(t, v, resp->status, why);
		}
		return;
	}
	for (size_t k = 0; k < n; k++) {
		struct part *p = &t->parts[asked[k] - 1];
		p->url = urls[k];
		p->url.expires_ms = local_expiry(resp, p->url.expires_ms);
		p->state = P_READY;
	}
	free(urls);
	t->tries = 0;
	kick(t->u);
}

static void presign_parts(struct transfer *t)
{
	uint32_t numbers[HS_PARTS_PER_PRESIGN], todo, ready;
	uint32_t parallel = t->u->cfg->upload.parallel;
	size_t n = 0, want = 4 * (size_t)parallel;
	char url[4096], *cause = NULL, *body;

	if (t->presign_call || t->u->stopping || t->u->held)
		return;
	parts_for_status(t, &todo, &ready);
	/* A batch a little ahead of need: URLs are short-lived. */
	if (todo == 0 || ready >= parallel)
		return;
	if (want > HS_PARTS_PER_PRESIGN)
		want = HS_PARTS_PER_PRESIGN;
	for (uint32_t i = 0; i < t->session.part_count && n < want; i++) {
		if (t->parts[i].state == P_TODO) {
			numbers[n++] = i + 1;
			t->parts[i].state = P_PRESIGNING;
		}
	}
	body = hs_api_parts_body(numbers, n);
	api_url(t, url, sizeof(url), "/uploads/multipart/", t->session.upload_id, "/parts");
	struct hs_http_request req = {.realm = "upload",
				      .ca_file = t->u->cfg->upload.api.ca_file,
				      .proxy = t->u->cfg->upload.api.proxy,
				      .method = "POST",
				      .url = url,
				      .api_key = t->u->cfg->upload.api.api_key,
				      .json_body = body,
				      .body_fd = -1};
	t->presign_call = body ? hs_http_send(t->u->http, &req, on_part_urls, t, &cause) : NULL;
	free(body);
	if (!t->presign_call) {
		for (size_t k = 0; k < n; k++)
			t->parts[numbers[k] - 1].state = P_TODO;
		step_retry(t, 0, cause ? cause : "out of memory");
		free(cause);
	}
}

static void on_part_put(struct hs_http_response *resp, void *arg)
{
	struct part *p = arg;
	struct transfer *t = p->t;
	struct hs_uploader *u = t->u;
	char why[512], *cause = NULL;
	enum verdict v;

	p->call = NULL;
	p->state = P_TODO; /* no longer sending, whatever comes next */
	u->puts--;
	hs_presigned_clear(&p->url); /* single-use, whatever happened */
	v = judge_storage(t, resp, why, sizeof(why));
	if (v == V_OK && !resp->etag[0]) {
		snprintf(why, sizeof(why), "storage answered part %u without an ETag",
			 p->index + 1);
		v = V_RETRY;
	}
	if (v == V_URL && ++p->refreshes > URL_REFRESHES)
		v = V_RETRY;

	switch (v) {
	case V_OK: {
		struct hs_part done = {.number = p->index + 1, .size = p->size};
		snprintf(done.etag, sizeof(done.etag), "%s", resp->etag);
		snprintf(p->etag, sizeof(p->etag), "%s", resp->etag);
		p->state = P_DONE;
		p->tries = 0;
		t->n_done++;
		t->done_bytes += p->size;
		/* Committed as it lands: a crash from here on does not send
		 * this part again. The last one is synced, with all before
		 * it, before the complete goes out. */
		if (hs_queue_mp_part_done(u->q, t->job->id, t->job->lease_token, &done,
					  t->n_done == t->session.part_count, &cause) < 0)
			queue_error(t, "cannot record a finished part", cause);
		if (t->n_done == t->session.part_count) {
			if (!file_unchanged(t)) {
				restart_changed(t, "the file changed after it was read");
				return;
			}
			t->tries = 0;
			t->step = S_MP_COMPLETE;
			run_step(t);
		}
		break;
	}
	case V_URL:
		p->state = P_TODO;
		break;
	case V_RETRY:
		if (++p->tries >= STEP_TRIES) {
			char msg[600];
			snprintf(msg, sizeof(msg), "part %u: %s", p->index + 1, why);
			step_failed(t, resp->status, msg);
			return;
		}
		log_job(LOG_DEBUG, t, resp->status, NULL, "part %u failed, retrying: %s",
			p->index + 1, why);
		p->state = P_WAIT;
		p->retry_at =
		    now_ms() + (int64_t)hs_backoff_delay(&step_backoff, p->tries, hs_random64());
		run_step(t); /* arms the timer for the earliest waiting part */
		break;
	case V_SESSION:
		if (++t->session_restarts > STEP_TRIES) {
			job_fail(t, false, resp->status, "%s", why);
			return;
		}
		session_drop(t, false);
		t->step = S_CREATE;
		run_step(t);
		break;
	default:
		handle_common(t, v, resp->status, why);
		return;
	}
	kick(u);
}

/* Returns -1 when the part could not even be started (t may be gone). */
static int send_part(struct transfer *t, struct part *p)
{
	const char *headers[40];
	unsigned char be[4] = {p->crc >> 24, p->crc >> 16, p->crc >> 8, p->crc};
	char crc_header[64] = "x-checksum-crc32: ";
	size_t n = 0, off = strlen(crc_header);
	char *cause = NULL;

	EVP_EncodeBlock((unsigned char *)crc_header + off, be, sizeof(be));
	for (char **h = p->url.headers; h && *h && n < 38; h++)
		headers[n++] = *h;
	headers[n++] = crc_header;
	headers[n] = NULL;
	struct hs_http_request req = {.realm = "upload",
				      .ca_file = t->u->cfg->upload.api.ca_file,
				      .proxy = t->u->cfg->upload.api.proxy,
				      .rl_class = HS_RL_STORAGE,
				      .method = "PUT",
				      .url = p->url.url,
				      .headers = headers,
				      .body_fd = t->fd,
				      .body_offset = part_offset(t, p->index),
				      .body_length = p->size};
	if (url_stale(&p->url)) {
		/* Expired by the server's clock: back in line for a fresh URL,
		 * bounded like a 403. */
		hs_presigned_clear(&p->url);
		p->state = P_TODO;
		if (++p->refreshes > URL_REFRESHES) {
			job_fail(t, false, 0,
				 "part %u: presigned URLs expire before they can be used",
				 p->index + 1);
			return -1;
		}
		return 0;
	}
	p->call = hs_http_send(t->u->http, &req, on_part_put, p, &cause);
	if (!p->call) {
		/* A URL curl cannot use (or no memory): a failed try of the
		 * part, with the same bound as any other, never a loop. */
		char msg[600];
		snprintf(msg, sizeof(msg), "part %u: %s", p->index + 1,
			 cause ? cause : "out of memory");
		free(cause);
		hs_presigned_clear(&p->url);
		if (++p->tries >= STEP_TRIES) {
			job_fail(t, false, 0, "%s", msg);
			return -1;
		}
		log_job(LOG_DEBUG, t, 0, NULL, "%s; retrying", msg);
		p->state = P_WAIT;
		p->retry_at =
		    now_ms() + (int64_t)hs_backoff_delay(&step_backoff, p->tries, hs_random64());
		run_step(t);
		return -1;
	}
	p->state = P_SENDING;
	t->u->puts++;
	return 0;
}

static void setup_parts(struct transfer *t)
{
	t->parts = calloc(t->session.part_count, sizeof(*t->parts));
	if (!t->parts)
		return;
	for (uint32_t i = 0; i < t->session.part_count; i++) {
		struct part *p = &t->parts[i];
		p->t = t;
		p->index = i;
		p->size = part_length(t, i);
		if (t->scan_crcs && t->scan_part_size == t->session.part_size) {
			p->crc = t->scan_crcs[i];
			p->crc_known = true;
		}
	}
}

static bool all_crcs_known(const struct transfer *t)
{
	for (uint32_t i = 0; i < t->session.part_count; i++)
		if (t->parts[i].state != P_DONE && !t->parts[i].crc_known)
			return false;
	return true;
}

static void start_scan(struct transfer *t, bool with_sha, int64_t part_size);

/* Parts are set up: send them, after one more read of the file if the
 * storage chose another part size than the scan used. */
static void parts_ready(struct transfer *t)
{
	if (!t->parts) {
		job_release(t, RESTART_DELAY_MS);
		return;
	}
	if (!all_crcs_known(t)) {
		start_scan(t, false, t->session.part_size);
		return;
	}
	t->step = S_PARTS;
	t->tries = 0;
	run_step(t);
}

static void on_create(struct hs_http_response *resp, void *arg)
{
	struct transfer *t = arg;
	char why[512], *cause = NULL;
	enum verdict v;
	int rc;

	t->call = NULL;
	v = judge(t, resp, 201, why, sizeof(why));
	if (v == V_URL || v == V_SESSION)
		v = V_RETRY;
	if (handle_common(t, v, resp->status, why))
		return;
	if (hs_api_parse_session(resp->body, t->st.st_size, &t->session, &cause) != 0) {
		step_retry(t, resp->status, cause ? cause : "out of memory");
		free(cause);
		return;
	}
	rc = hs_queue_mp_begin(t->u->q, t->job->id, t->job->lease_token, t->session.upload_id,
			       t->session.part_size, t->session.part_count, &cause);
	if (rc != HS_Q_OK) {
		if (rc == HS_Q_LOST)
			log_job(LOG_WARNING, t, 0, NULL, "lease lost; leaving the job");
		else
			queue_error(t, "cannot record the multipart session", cause);
		transfer_end(t);
		return;
	}
	if (!(t->job->upload_id = strdup(t->session.upload_id))) {
		job_release(t, RESTART_DELAY_MS);
		return;
	}
	log_job(LOG_DEBUG, t, resp->status, NULL, "multipart session of %" PRIu32 " parts",
		t->session.part_count);
	setup_parts(t);
	parts_ready(t);
}

static void send_create(struct transfer *t)
{
	int64_t part_size =
	    hs_api_part_size_for(t->st.st_size, (int64_t)t->u->cfg->upload.part_size);
	char *body = hs_api_create_body(t->job->remote_name, t->st.st_size, t->sha,
					hs_content_type(t->job->remote_name), part_size);

	api_call(t, "POST", "/uploads/multipart", "", "", body, on_create);
	free(body);
}

/* Resuming: what does the storage already hold? */
static void on_list(struct hs_http_response *resp, void *arg)
{
	struct transfer *t = arg;
	struct hs_part *held = NULL;
	size_t n = 0;
	char why[512], *cause = NULL;
	enum verdict v;

	t->call = NULL;
	v = judge(t, resp, 200, why, sizeof(why));
	if ((v == V_SESSION || v == V_URL) && complete_from_records(t))
		return;
	if (v == V_SESSION || v == V_URL) {
		log_job(LOG_INFO, t, resp->status, NULL,
			"multipart session expired; starting it over");
		session_drop(t, false);
		t->step = S_CREATE;
		run_step(t);
		return;
	}
	if (handle_common(t, v, resp->status, why))
		return;
	if (hs_api_parse_part_list(resp->body, t->session.part_count, &held, &n, &cause) != 0) {
		step_retry(t, resp->status, cause ? cause : "out of memory");
		free(cause);
		return;
	}
	for (uint32_t i = 0; t->parts && i < t->session.part_count; i++)
		hs_presigned_clear(&t->parts[i].url);
	free(t->parts);
	t->n_done = 0;
	t->done_bytes = 0;
	setup_parts(t);
	for (size_t k = 0; t->parts && k < n; k++) {
		struct part *p = &t->parts[held[k].number - 1];
		/* A part of the wrong size is not ours to keep. */
		if (held[k].size != p->size)
			continue;
		p->state = P_DONE;
		snprintf(p->etag, sizeof(p->etag), "%s", held[k].etag);
		t->n_done++;
		t->done_bytes += p->size;
		if (hs_queue_mp_part_done(t->u->q, t->job->id, t->job->lease_token, &held[k],
					  k + 1 == n, &cause) < 0)
			queue_error(t, "cannot record a held part", cause);
	}
	free(held);
	if (t->parts)
		log_job(LOG_INFO, t, 0, NULL, "resuming: %" PRIu32 " of %" PRIu32 " parts held",
			t->n_done, t->session.part_count);
	if (t->parts && t->n_done == t->session.part_count) {
		t->step = S_MP_COMPLETE;
		run_step(t);
		return;
	}
	parts_ready(t);
}

static void send_list(struct transfer *t)
{
	/* 10,000 parts with long ETags do not fit the default 1 MiB. */
	api_call_max(t, "GET", "/uploads/multipart/", t->session.upload_id, "/parts", NULL, on_list,
		     HS_PART_LIST_MAX_RESPONSE);
}

static void send_mp_complete(struct transfer *t)
{
	struct hs_part *list = calloc(t->session.part_count, sizeof(*list));
	char *body = NULL;

	for (uint32_t i = 0; list && i < t->session.part_count; i++) {
		list[i].number = i + 1;
		snprintf(list[i].etag, sizeof(list[i].etag), "%s", t->parts[i].etag);
	}
	body = list ? hs_api_complete_body(list, t->session.part_count) : NULL;
	free(list);
	api_call(t, "POST", "/uploads/multipart/", t->session.upload_id, "/complete", body,
		 on_complete);
	free(body);
}

/* Waiting parts whose time has come go back in line; the timer is armed
 * for the next one. */
static void wake_parts(struct transfer *t)
{
	int64_t now = now_ms(), next = 0;

	for (uint32_t i = 0; i < t->session.part_count; i++) {
		struct part *p = &t->parts[i];
		if (p->state != P_WAIT)
			continue;
		if (p->retry_at <= now)
			p->state = P_TODO;
		else if (!next || p->retry_at < next)
			next = p->retry_at;
	}
	if (next)
		arm_timer(t, next - now);
}

/* ---- the scan ------------------------------------------------------------ */

static void scan_finished(struct transfer *t)
{
	struct hs_uploader *u = t->u;
	unsigned char digest[32];
	unsigned len = 0;
	char *cause = NULL;
	bool stored = false;
	int rc;

	sd_event_source_set_enabled(t->scan_src, SD_EVENT_OFF);
	if (!file_unchanged(t)) {
		restart_changed(t, "the file changed while it was read");
		return;
	}
	log_job(LOG_DEBUG, t, 0, NULL, "file read for its checksums");
	if (!t->md) { /* a CRC-only rescan for a session's part size */
		for (uint32_t i = 0; i < t->session.part_count; i++) {
			t->parts[i].crc = t->scan_crcs[i];
			t->parts[i].crc_known = true;
		}
		parts_ready(t);
		return;
	}
	if (EVP_DigestFinal_ex(t->md, digest, &len) != 1 || len != sizeof(digest)) {
		job_fail(t, false, 0, "SHA-256 failed");
		return;
	}
	for (unsigned i = 0; i < len; i++)
		snprintf(t->sha + 2 * i, 3, "%02x", digest[i]);
	EVP_MD_CTX_free(t->md);
	t->md = NULL;

	rc = hs_queue_set_facts(u->q, t->job->id, t->job->lease_token, t->st.st_size,
				(int64_t)t->st.st_mtim.tv_sec * 1000000000 + t->st.st_mtim.tv_nsec,
				(int64_t)t->st.st_ino, t->sha, &cause);
	if (rc == HS_Q_OK)
		rc = hs_queue_ledger_has(u->q, t->job->remote_name, t->sha, &stored, &cause);
	if (rc != HS_Q_OK) {
		if (rc == HS_Q_LOST)
			log_job(LOG_WARNING, t, 0, NULL, "lease lost; leaving the job");
		else
			queue_error(t, "cannot record the file's checksum", cause);
		transfer_end(t);
		return;
	}
	if (stored) {
		rc = hs_queue_skip(u->q, t->job->id, t->job->lease_token, now_ms(), &cause);
		if (rc < 0) {
			queue_error(t, "cannot mark the job skipped", cause);
		} else if (rc == HS_Q_OK) {
			log_job(LOG_INFO, t, 0, NULL, "same content already stored; skipped");
			report_stored(t);
		}
		transfer_end(t);
		return;
	}
	t->tries = 0;
	t->step =
	    (uint64_t)t->st.st_size < u->cfg->upload.multipart_threshold ? S_PRESIGN : S_CREATE;
	run_step(t);
}

/* The next slice at the next turn of the loop. A timer due at once, not a
 * defer source: sd-event keeps a defer source pending from the turn it was
 * added in, so one left on always runs before every other source of its
 * priority, and sockets, inotify and signals would wait for the whole file.
 * A timer becomes pending anew at each turn, behind what was already
 * waiting. Left alone while already armed: re-arming a pending timer would
 * push it back. */
static void scan_soon(struct transfer *t)
{
	uint64_t now;
	int on;

	if (sd_event_source_get_enabled(t->scan_src, &on) >= 0 && on != SD_EVENT_OFF)
		return;
	if (sd_event_now(t->u->ev, CLOCK_MONOTONIC, &now) < 0 ||
	    sd_event_source_set_time(t->scan_src, now) < 0 ||
	    sd_event_source_set_enabled(t->scan_src, SD_EVENT_ONESHOT) < 0)
		sd_event_source_set_enabled(t->scan_src, SD_EVENT_ON); /* try anyway */
}

/* One slice of the file per turn of the loop. */
static int on_scan(sd_event_source *s, uint64_t usec, void *arg)
{
	struct transfer *t = arg;
	unsigned char *buf = t->u->buf;
	int64_t size = t->st.st_size, P = t->scan_part_size;
	size_t len = size - t->scan_pos < SCAN_SLICE ? (size_t)(size - t->scan_pos) : SCAN_SLICE;
	ssize_t r;

	(void)s;
	(void)usec;
	if (len == 0) {
		scan_finished(t);
		return 0;
	}
	do
		r = pread(t->fd, buf, len, t->scan_pos);
	while (r < 0 && errno == EINTR);
	if (r <= 0) {
		sd_event_source_set_enabled(t->scan_src, SD_EVENT_OFF);
		if (r == 0)
			restart_changed(t, "the file became shorter while it was read");
		else
			job_fail(t, false, 0, "read: %s", strerror(errno));
		return 0;
	}
	if (t->md && EVP_DigestUpdate(t->md, buf, (size_t)r) != 1) {
		sd_event_source_set_enabled(t->scan_src, SD_EVENT_OFF);
		job_fail(t, false, 0, "SHA-256 failed");
		return 0;
	}
	for (ssize_t off = 0; off < r;) {
		int64_t index = t->scan_pos / P, boundary = (index + 1) * P;
		int64_t take = boundary - t->scan_pos < r - off ? boundary - t->scan_pos : r - off;
		t->scan_crc = (uint32_t)crc32(t->scan_crc, buf + off, (uInt)take);
		t->scan_pos += take;
		off += take;
		if (t->scan_pos == boundary || t->scan_pos == size) {
			t->scan_crcs[index] = t->scan_crc;
			t->scan_crc = (uint32_t)crc32(0, NULL, 0);
		}
	}
	scan_soon(t);
	return 0;
}

/* Reads the whole file in slices from the loop: SHA-256 (with_sha) and the
 * CRC-32 of each part of part_size. */
static void start_scan(struct transfer *t, bool with_sha, int64_t part_size)
{
	int64_t count = t->st.st_size ? (t->st.st_size + part_size - 1) / part_size : 1;

	t->step = S_SCAN;
	t->scan_pos = 0;
	t->scan_part_size = part_size;
	t->scan_crc = (uint32_t)crc32(0, NULL, 0);
	free(t->scan_crcs);
	t->scan_crcs = calloc((size_t)count, sizeof(*t->scan_crcs));
	EVP_MD_CTX_free(t->md);
	t->md = NULL;
	if (with_sha &&
	    (!(t->md = EVP_MD_CTX_new()) || EVP_DigestInit_ex(t->md, EVP_sha256(), NULL) != 1)) {
		job_fail(t, false, 0, "SHA-256 unavailable");
		return;
	}
	if (!t->scan_crcs) {
		job_release(t, RESTART_DELAY_MS);
		return;
	}
	scan_soon(t);
}

/* ---- steps ------------------------------------------------------------------ */

/* Steps that lead to new body traffic: held back by a pause. */
static bool step_starts_upload(enum step step)
{
	return step == S_PRESIGN || step == S_PUT || step == S_CREATE || step == S_LIST;
}

/* May end the transfer: callers must not touch t afterwards. */
static void run_step(struct transfer *t)
{
	struct hs_uploader *u = t->u;

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
		kick(u);
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
		kick(u);
		presign_parts(t);
		break;
	case S_MP_COMPLETE:
		send_mp_complete(t);
		break;
	}
}

static int on_step_timer(sd_event_source *s, uint64_t usec, void *arg)
{
	run_step(arg);
	return 0;
}

/* ---- transfers ------------------------------------------------------------ */

static void transfer_end(struct transfer *t)
{
	struct hs_uploader *u = t->u;

	for (struct transfer **pp = &u->transfers; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	}
	u->n_transfers--;
	hs_http_cancel(t->call);
	if (t->put_inflight)
		u->puts--;
	hs_http_cancel(t->presign_call);
	for (uint32_t i = 0; t->parts && i < t->session.part_count; i++) {
		if (t->parts[i].state == P_SENDING) {
			hs_http_cancel(t->parts[i].call);
			u->puts--;
		}
		hs_presigned_clear(&t->parts[i].url);
	}
	free(t->parts);
	hs_session_clear(&t->session);
	hs_presigned_clear(&t->single);
	sd_event_source_disable_unref(t->scan_src);
	sd_event_source_disable_unref(t->timer);
	EVP_MD_CTX_free(t->md);
	free(t->scan_crcs);
	if (t->fd >= 0)
		close(t->fd);
	hs_job_free(t->job);
	free(t);
	kick(u);
	if (u->on_change)
		u->on_change(u->change_arg);
}

/* Whether the queue holds the finished PUT of a single upload. */
static bool single_was_sent(const struct transfer *t)
{
	struct hs_part *parts = NULL;
	size_t n = 0;
	char *cause = NULL;

	if (hs_queue_mp_parts(t->u->q, t->job->id, &parts, &n, &cause) < 0) {
		free(cause);
		return false;
	}
	free(parts);
	return n == 1;
}

/* The storage forgot the session; if every part was recorded here, it may
 * have been completed just before a crash: complete again (the server
 * answers a repeated complete as the first) before starting over. */
static bool complete_from_records(struct transfer *t)
{
	struct hs_part *held = NULL;
	size_t n = 0;
	char *cause = NULL;

	if (t->session_restarts > 0 ||
	    hs_queue_mp_parts(t->u->q, t->job->id, &held, &n, &cause) < 0 ||
	    n != t->session.part_count) {
		free(cause);
		free(held);
		return false;
	}
	for (uint32_t i = 0; t->parts && i < t->session.part_count; i++)
		hs_presigned_clear(&t->parts[i].url);
	free(t->parts);
	setup_parts(t);
	if (!t->parts) {
		free(held);
		return false;
	}
	for (size_t k = 0; k < n; k++) {
		struct part *p = &t->parts[held[k].number - 1];
		p->state = P_DONE;
		snprintf(p->etag, sizeof(p->etag), "%s", held[k].etag);
	}
	t->n_done = t->session.part_count;
	t->done_bytes = t->st.st_size;
	free(held);
	t->session_restarts++;
	t->step = S_MP_COMPLETE;
	run_step(t);
	return true;
}

/* Leases are renewed every RENEW_MS while any transfer runs. */
static void start_renewing(struct hs_uploader *u)
{
	int enabled = SD_EVENT_OFF;
	uint64_t now;

	sd_event_source_get_enabled(u->renew_timer, &enabled);
	if (enabled != SD_EVENT_OFF)
		return;
	sd_event_now(u->ev, CLOCK_MONOTONIC, &now);
	sd_event_source_set_time(u->renew_timer, now + RENEW_MS * 1000ULL);
	sd_event_source_set_enabled(u->renew_timer, SD_EVENT_ONESHOT);
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

static void transfer_begin(struct hs_uploader *u, struct hs_job *job)
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
	start_renewing(u);
	if (u->on_change)
		u->on_change(u->change_arg);
	if (sd_event_add_time(u->ev, &t->timer, CLOCK_MONOTONIC, 0, 0, on_step_timer, t) < 0 ||
	    sd_event_source_set_enabled(t->timer, SD_EVENT_OFF) < 0 ||
	    sd_event_add_time(u->ev, &t->scan_src, CLOCK_MONOTONIC, 0, 1, on_scan, t) < 0 ||
	    sd_event_source_set_enabled(t->scan_src, SD_EVENT_OFF) < 0) {
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

/* ---- the uploader ---------------------------------------------------------- */

static void kick(struct hs_uploader *u)
{
	sd_event_source_set_enabled(u->pump_src, SD_EVENT_ONESHOT);
}

static bool has_inflight_puts(const struct transfer *t)
{
	if (t->put_inflight || t->step == S_COMPLETE || t->step == S_MP_COMPLETE)
		return true;
	for (uint32_t i = 0; t->parts && i < t->session.part_count; i++)
		if (t->parts[i].state == P_SENDING)
			return true;
	return false;
}

static void arm_due_timer(struct hs_uploader *u)
{
	int64_t at = -1;
	char *cause = NULL;

	if (u->auth.on || u->outage.on || u->held || u->n_transfers >= u->cfg->upload.parallel) {
		sd_event_source_set_enabled(u->due_timer, SD_EVENT_OFF);
		return;
	}
	if (hs_queue_next_due(u->q, &at, &cause) < 0) {
		hs_log(LOG_ERR, "queue: %s", cause ? cause : "out of memory");
		free(cause);
		at = now_ms() + 5000;
	}
	if (at < 0) {
		sd_event_source_set_enabled(u->due_timer, SD_EVENT_OFF);
		return;
	}
	sd_event_source_set_time(u->due_timer, (uint64_t)at * 1000);
	sd_event_source_set_enabled(u->due_timer, SD_EVENT_ONESHOT);
}

static void stop_check(struct hs_uploader *u)
{
	struct transfer *t = u->transfers, *next;

	/* Everything not sending or completing has no safe point to reach. */
	for (; t; t = next) {
		next = t->next;
		if (!has_inflight_puts(t))
			job_release(t, 0);
	}
	if (!u->transfers && u->stop_done) {
		void (*done)(void *) = u->stop_done;
		u->stop_done = NULL;
		sd_event_source_set_enabled(u->stop_timer, SD_EVENT_OFF);
		done(u->stop_arg);
	}
}

/* A pause: a transfer with a PUT sending or a complete under way finishes
 * that; every other one goes back to the queue as it is (its finished
 * parts are recorded there) and resumes when the pause ends. Nothing is
 * held in memory across a pause of hours, when presigned URLs and leases
 * would run out anyway. */
static void hold_check(struct hs_uploader *u)
{
	struct transfer *t = u->transfers, *next;

	for (; t; t = next) {
		next = t->next;
		if (!has_inflight_puts(t)) {
			log_job(LOG_DEBUG, t, 0, NULL, "uploads paused; back to the queue");
			job_release(t, 0);
		}
	}
}

static void fill_slots(struct hs_uploader *u)
{
	unsigned parallel = u->cfg->upload.parallel;

	struct transfer *t, *next;

	/* Starting a request can end its transfer (a step out of tries), so
	 * the next one is taken first. */
	for (t = u->transfers; t && u->puts < parallel; t = next) {
		next = t->next;
		if (t->step == S_PUT && t->want_slot) {
			send_put_single(t);
			continue;
		}
		if (t->step != S_PARTS)
			continue;
		uint32_t i = 0;
		while (t->step == S_PARTS && i < t->session.part_count && u->puts < parallel) {
			if (t->parts[i].state == P_READY && send_part(t, &t->parts[i]) != 0)
				break; /* t may be gone */
			i++;
		}
		if (i == t->session.part_count || u->puts >= parallel)
			presign_parts(t);
	}
}

static int on_pump(sd_event_source *s, void *arg)
{
	struct hs_uploader *u = arg;
	struct hs_job *job;
	char *cause = NULL;

	if (u->stopping) {
		stop_check(u);
		return 0;
	}
	if (u->held) {
		hold_check(u);
		arm_due_timer(u);
		return 0;
	}
	fill_slots(u);
	while (!u->auth.on && !u->outage.on && u->n_transfers < u->cfg->upload.parallel) {
		int rc = hs_queue_claim(u->q, now_ms(), LEASE_MS, &job, &cause);
		if (rc == HS_Q_EMPTY)
			break;
		if (rc != HS_Q_OK) {
			hs_log(LOG_ERR, "queue: cannot claim a job: %s",
			       cause ? cause : "out of memory");
			free(cause);
			break;
		}
		transfer_begin(u, job);
	}
	arm_due_timer(u);
	return 0;
}

static int on_due(sd_event_source *s, uint64_t usec, void *arg)
{
	kick(arg);
	return 0;
}

static int on_renew(sd_event_source *s, uint64_t usec, void *arg)
{
	struct hs_uploader *u = arg;
	struct transfer *t, *next;
	uint64_t now;

	for (t = u->transfers; t; t = next) {
		char *cause = NULL;
		next = t->next;
		int rc = hs_queue_renew(u->q, t->job->id, t->job->lease_token, now_ms(), LEASE_MS,
					&cause);
		if (rc == HS_Q_LOST) {
			log_job(LOG_WARNING, t, 0, NULL, "lease lost; leaving the job");
			transfer_end(t);
		} else if (rc != HS_Q_OK) {
			queue_error(t, "cannot renew the lease", cause);
		}
	}
	/* An idle uploader has no leases to keep: the timer stops until the
	 * next transfer starts it. */
	if (u->transfers) {
		sd_event_now(u->ev, CLOCK_MONOTONIC, &now);
		sd_event_source_set_time(s, now + RENEW_MS * 1000ULL);
		sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
	}
	return 0;
}

static int on_pause_timer(sd_event_source *s, uint64_t usec, void *arg)
{
	struct pause *p = arg;

	p->on = false;
	kick(p->u);
	return 0;
}

/* Turns p on for min_ms plus a full-jitter backoff, or leaves it on.
 * *ret_ms: how long it has left. Returns true when this call began it. */
static bool pause_begin(struct pause *p, int64_t min_ms, const struct hs_backoff *b,
			int64_t *ret_ms)
{
	uint64_t now, end;

	sd_event_now(p->u->ev, CLOCK_MONOTONIC, &now);
	if (p->on) {
		*ret_ms = sd_event_source_get_time(p->timer, &end) == 0 && end > now
			      ? (int64_t)((end - now) / 1000)
			      : min_ms;
		return false;
	}
	p->on = true;
	p->count++;
	*ret_ms = min_ms + (int64_t)hs_backoff_delay(b, p->count, hs_random64());
	sd_event_source_set_time(p->timer, now + (uint64_t)*ret_ms * 1000);
	sd_event_source_set_enabled(p->timer, SD_EVENT_ONESHOT);
	return true;
}

/* Ends p now (a reload: try again at once); forget resets the backoff. */
static void pause_end(struct pause *p, bool forget)
{
	p->on = false;
	if (forget)
		p->count = 0;
	sd_event_source_set_enabled(p->timer, SD_EVENT_OFF);
}

/* Stops claiming jobs for a while; returns how long (ms). Logged once per
 * outage: later pauses of the same one only at debug. */
static int64_t outage_pause(struct hs_uploader *u, const char *why)
{
	int64_t delay;

	if (pause_begin(&u->outage, OUTAGE_MIN_MS, &outage_backoff, &delay))
		hs_log(u->outage.count == 1 ? LOG_WARNING : LOG_DEBUG,
		       "upload API unavailable (%s); uploads paused for %" PRId64
		       " s, queued files keep their attempts",
		       why, delay / 1000);
	return delay;
}

static void auth_pause(struct hs_uploader *u)
{
	const struct hs_log_field f[] = {{"MESSAGE_ID", HS_MSGID_KEY_REJECTED},
					 {"HTTP_STATUS", "401"}};
	int64_t delay;

	if (pause_begin(&u->auth, 30 * 1000, &auth_backoff, &delay))
		hs_log_fields(u->auth.count == 1 ? LOG_ERR : LOG_DEBUG, f, 2,
			      "upload API rejected the API key (HTTP 401); uploads paused for "
			      "%" PRId64 " s or until the configuration is reloaded",
			      delay / 1000);
}

static int on_stop_timer(sd_event_source *s, uint64_t usec, void *arg)
{
	struct hs_uploader *u = arg;

	while (u->transfers)
		job_release(u->transfers, 0);
	stop_check(u);
	return 0;
}

struct hs_uploader *hs_uploader_new(sd_event *ev, const struct hs_config *cfg, struct hs_queue *q,
				    struct hs_http *http, char **cause)
{
	struct hs_uploader *u = calloc(1, sizeof(*u));

	if (!u || !(u->buf = malloc(SCAN_SLICE))) {
		free(u);
		if (cause)
			*cause = strdup("out of memory");
		return NULL;
	}
	u->ev = sd_event_ref(ev);
	u->cfg = cfg;
	u->q = q;
	u->http = http;
	u->auth.u = u->outage.u = u;
	if (sd_event_add_defer(ev, &u->pump_src, on_pump, u) < 0 ||
	    sd_event_add_time(ev, &u->due_timer, CLOCK_REALTIME, 0, 10 * 1000, on_due, u) < 0 ||
	    sd_event_source_set_enabled(u->due_timer, SD_EVENT_OFF) < 0 ||
	    sd_event_add_time(ev, &u->renew_timer, CLOCK_MONOTONIC, 0, 1000 * 1000, on_renew, u) <
		0 ||
	    sd_event_source_set_enabled(u->renew_timer, SD_EVENT_OFF) < 0 ||
	    sd_event_add_time(ev, &u->auth.timer, CLOCK_MONOTONIC, 0, 0, on_pause_timer, &u->auth) <
		0 ||
	    sd_event_source_set_enabled(u->auth.timer, SD_EVENT_OFF) < 0 ||
	    sd_event_add_time(ev, &u->outage.timer, CLOCK_MONOTONIC, 0, 0, on_pause_timer,
			      &u->outage) < 0 ||
	    sd_event_source_set_enabled(u->outage.timer, SD_EVENT_OFF) < 0 ||
	    sd_event_add_time(ev, &u->stop_timer, CLOCK_MONOTONIC, 0, 0, on_stop_timer, u) < 0 ||
	    sd_event_source_set_enabled(u->stop_timer, SD_EVENT_OFF) < 0) {
		if (cause)
			*cause = strdup("cannot add the uploader to the event loop");
		return hs_uploader_free(u);
	}
	kick(u);
	return u;
}

struct hs_uploader *hs_uploader_free(struct hs_uploader *u)
{
	if (!u)
		return NULL;
	u->stopping = true;
	while (u->transfers)
		job_release(u->transfers, 0);
	sd_event_source_disable_unref(u->pump_src);
	sd_event_source_disable_unref(u->due_timer);
	sd_event_source_disable_unref(u->renew_timer);
	sd_event_source_disable_unref(u->auth.timer);
	sd_event_source_disable_unref(u->outage.timer);
	sd_event_source_disable_unref(u->stop_timer);
	sd_event_unref(u->ev);
	free(u->buf);
	free(u);
	return NULL;
}

void hs_uploader_kick(struct hs_uploader *u)
{
	kick(u);
}

void hs_uploader_reconfigure(struct hs_uploader *u, const struct hs_config *cfg)
{
	u->cfg = cfg;
	pause_end(&u->auth, true); /* perhaps a new key */
	pause_end(&u->outage, false);
	kick(u);
}

void hs_uploader_stop(struct hs_uploader *u, uint64_t grace_ms, void (*done)(void *arg), void *arg)
{
	uint64_t now;

	u->stopping = true;
	u->stop_done = done;
	u->stop_arg = arg;
	sd_event_now(u->ev, CLOCK_MONOTONIC, &now);
	sd_event_source_set_time(u->stop_timer, now + grace_ms * 1000);
	sd_event_source_set_enabled(u->stop_timer, SD_EVENT_ONESHOT);
	sd_event_source_set_enabled(u->due_timer, SD_EVENT_OFF);
	kick(u);
}

void hs_uploader_on_stored(struct hs_uploader *u, hs_uploader_stored_fn fn, void *arg)
{
	u->on_stored = fn;
	u->stored_arg = arg;
}

void hs_uploader_on_change(struct hs_uploader *u, void (*fn)(void *arg), void *arg)
{
	u->on_change = fn;
	u->change_arg = arg;
}

void hs_uploader_each(struct hs_uploader *u,
		      void (*fn)(const struct hs_transfer_info *t, void *arg), void *arg)
{
	for (struct transfer *t = u->transfers; t; t = t->next) {
		struct hs_transfer_info info = {
		    .job_id = t->job->id,
		    .remote_name = t->job->remote_name,
		    .step = step_names[t->step],
		    .size = t->st.st_size,
		    .sent = t->done_bytes,
		    .parts_done = t->n_done,
		    .part_count = t->session.part_count,
		};
		if (t->put_inflight)
			info.sent += hs_http_call_sent(t->call);
		for (uint32_t i = 0; t->parts && i < t->session.part_count; i++)
			if (t->parts[i].state == P_SENDING)
				info.sent += hs_http_call_sent(t->parts[i].call);
		if (t->step == S_SCAN)
			info.sent = t->scan_pos; /* how far the read has come */
		fn(&info, arg);
	}
}

unsigned hs_uploader_active(const struct hs_uploader *u)
{
	return u->n_transfers;
}

void hs_uploader_hold(struct hs_uploader *u, bool on)
{
	if (u->held == on)
		return;
	u->held = on;
	kick(u);
	if (u->on_change)
		u->on_change(u->change_arg);
}

bool hs_uploader_auth_paused(const struct hs_uploader *u)
{
	return u->auth.on;
}

bool hs_uploader_unavailable(const struct hs_uploader *u)
{
	return u->outage.count > 0;
}
