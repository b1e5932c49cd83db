/*
 * transfer: the uploader's private contract, shared by the files that make
 * up the uploader. Nothing outside agent/upload*.c and agent/transfer.c
 * includes it; the public face is upload.h.
 *
 *   upload.c           the uploader: slots, claims, pauses, stop, reaping
 *   transfer.c         a transfer's life: begin, steps, retries, ending
 *   upload_scan.c      reading the file for its SHA-256 and part CRCs
 *   upload_single.c    small files: presign -> PUT -> complete
 *   upload_multipart.c large files: create -> list -> parts -> complete
 *   verdict.c          what an answer means (pure, a table)
 *   outage.c           when the API counts as down (pure)
 *
 * Lifetime rule (one place ends a transfer, at a safe point):
 *   transfer_end() is the only way a transfer ends. It marks it ended,
 *   cancels its requests and timers (no callback of it runs again), gives
 *   up its slots and takes it off the list of transfers, but frees
 *   nothing: the memory is reaped by the uploader's pump, which runs from
 *   the event loop with no call chain below it. So a function that may end
 *   t (any that sends, judges or ends a job) leaves t readable, and its
 *   caller checks t->ended before going on. Every step entry point returns
 *   at once on an ended transfer, and ending one twice does nothing.
 *
 * One request at a time (every step but the part PUTs and their URLs):
 *   t->call is the only one, and run_step() sends nothing while it is in
 *   flight; its answer moves the step on. The step timer may have been
 *   armed by an earlier step (a retry's backoff) and fire later: it then
 *   finds the call in flight and does nothing. A retry's backoff also
 *   holds what the pump sends rather than the timer (part URLs): it is
 *   kept in backoff_until, whatever else kicks the uploader meanwhile.
 */
#ifndef HS_AGENT_TRANSFER_H
#define HS_AGENT_TRANSFER_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <systemd/sd-event.h>

#include "agent/http.h"
#include "agent/outage.h"
#include "agent/upload.h"
#include "agent/upload_api.h"
#include "agent/verdict.h"
#include "queue/backoff.h"

#define STEP_TRIES	 5  /* transient failures of one step before the job fails */
#define URL_REFRESHES	 10 /* fresh URLs for one PUT before that counts as a failure */
#define SESSION_RESTARTS 5  /* sessions started over within one claim */
#define RESTART_DELAY_MS 2000
#define SCAN_SLICE	 (1024 * 1024)

extern const struct hs_backoff hs_step_backoff;

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

extern const char *const hs_step_names[];

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
	int64_t sent_at;  /* P_SENDING: when the PUT began, Unix ms */
	struct hs_presigned url;
	struct hs_http_call *call;
	int64_t size;
	char etag[129];
};

struct transfer {
	struct hs_uploader *u;
	struct transfer *next;
	struct transfer *ended_next; /* on the uploader's list to reap */
	struct hs_job *job;
	enum step step;
	bool ended;    /* see the lifetime rule above */
	bool answered; /* the API or storage answered it (below 500) */
	bool stalled;  /* the last answer judged: a connected request stalled */
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

	unsigned auth_gen; /* of the secret its last API request carried */
	int64_t began_ms;  /* when the transfer began (wall ms) */
	unsigned tries;	   /* of the current step */
	unsigned refreshes;
	unsigned session_restarts;
	int64_t backoff_until; /* the last step retry's backoff ends, Unix ms */
	unsigned stale_urls;   /* URLs that expired while waiting for a slot */
	sd_event_source *timer;
};

/* No job is claimed while the key is refused; its timer ends the pause.
 * count is the pauses in a row, the backoff's attempt number and what
 * decides whether a pause is logged as news. */
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
	struct transfer *ended; /* ended, waiting to be reaped */
	unsigned n_transfers;
	unsigned puts; /* PUTs in flight, all jobs */
	unsigned char *buf;
	sd_event_source *pump_src; /* runs pump() once from the loop */
	sd_event_source *due_timer;
	sd_event_source *renew_timer;
	sd_event_source *stop_timer;
	sd_event_source *outage_timer; /* wakes the pump when a pause ends */

	struct pause auth; /* the key was rejected (401) */
	struct hs_outage outage;

	/* What presigned URLs live and a part takes, learned from answers:
	 * part URLs are asked for no sooner than they can be used. 0: not
	 * known yet. */
	int64_t url_ttl_ms;
	int64_t part_ms;

	uint64_t retries[HS_RETRY_NCAUSES]; /* since start (hs_uploader_retries) */

	bool held;    /* the bandwidth timetable's "pause" (hs_uploader_hold) */
	bool changed; /* a transfer began or ended: tell on_change */

	void (*on_change)(void *arg);
	void *change_arg;
	hs_uploader_stored_fn on_stored;
	void *stored_arg;

	bool stopping;
	void (*stop_done)(void *arg);
	void *stop_arg;
};

/* upload.c */
void up_kick(struct hs_uploader *u);
/* An answer below 500 from the API or its storage: it works. */
void up_api_answered(struct hs_uploader *u);
/* A request of t failed without an answer or with a 5xx (refused: TLS or
 * the proxy). Returns true when the API is known down and the job has
 * been given back (t ended). */
bool up_api_failed(struct transfer *t, bool refused, const char *why);
void up_auth_pause(struct hs_uploader *u);
/* A 401 for t's API request: t goes back to the queue, and the API pauses
 * unless the secret changed since the request left or its file now holds
 * a new one. */
void up_auth_refused(struct transfer *t);

/* transfer.c */
void transfer_begin(struct hs_uploader *u, struct hs_job *job);
void transfer_end(struct transfer *t);
void transfer_free(struct transfer *t);
void log_job(int prio, const struct transfer *t, long status, const char *msgid, const char *fmt,
	     ...) __attribute__((format(printf, 5, 6)));
void queue_error(const struct transfer *t, const char *what, char *cause);
void report_stored(struct transfer *t);
void job_done(struct transfer *t, const char *file_id);
void job_fail(struct transfer *t, bool permanent, long status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void job_release(struct transfer *t, int64_t delay_ms);
void job_gone(struct transfer *t, const char *why);
void run_step(struct transfer *t);
void arm_timer(struct transfer *t, int64_t delay_ms);
void step_retry(struct transfer *t, long status, const char *why);
/* One more try for cause, counted for the metrics. */
void count_retry(struct transfer *t, enum hs_retry_cause cause);
/* Whether a failed attempt now would make the job dead. */
bool last_attempt(const struct transfer *t);
void step_failed(struct transfer *t, long status, const char *why);
bool handle_common(struct transfer *t, enum hs_verdict v, long status, const char *why);
enum hs_verdict judge(struct transfer *t, const struct hs_http_response *r, enum hs_dialect d,
		      char *why, size_t len);
/* Also notes in t which secret the request carries. */
struct hs_http_request api_request(struct transfer *t, const char *method, char *url,
				   size_t url_len, const char *path, const char *id,
				   const char *tail);
void api_call(struct transfer *t, const char *method, const char *path, const char *id,
	      const char *tail, const char *body, hs_http_done_fn done, size_t max_response);
void session_drop(struct transfer *t, bool abort_remote);
void session_restart(struct transfer *t, long status, const char *why);
void restart_changed(struct transfer *t, const char *why);
bool file_unchanged(const struct transfer *t);
bool is_multipart(const struct transfer *t);
int64_t local_expiry(const struct hs_http_response *r, int64_t expires_ms);
void learn_url_ttl(struct hs_uploader *u, const struct hs_http_response *r, int64_t expires_ms);
bool url_stale(const struct hs_uploader *u, const struct hs_presigned *p);
void on_complete(struct hs_http_response *resp, void *arg);
int64_t now_ms(void);

/* upload_scan.c */
int scan_init(struct transfer *t);
void start_scan(struct transfer *t, bool with_sha, int64_t part_size);

/* upload_single.c */
void send_presign(struct transfer *t);
void send_put_single(struct transfer *t);
void send_complete_single(struct transfer *t);
bool single_was_sent(const struct transfer *t);

/* upload_multipart.c */
void send_create(struct transfer *t);
void send_list(struct transfer *t);
void send_mp_complete(struct transfer *t);
void presign_parts(struct transfer *t);
/* Sends part p (P_READY). May end t. */
void send_part(struct transfer *t, struct part *p);
void wake_parts(struct transfer *t);
void parts_ready(struct transfer *t);
bool complete_from_records(struct transfer *t);
void parts_free(struct transfer *t);

#endif
