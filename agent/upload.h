/*
 * upload: takes jobs from the queue and sends them through the Upload API.
 *
 * Each claimed job becomes a transfer that walks these steps, all on the
 * event loop and none of them blocking it for long:
 *
 *   scan      read the file once in 1 MiB slices between other events:
 *             SHA-256 of the whole file and CRC-32 of each part
 *   small     presign -> PUT -> complete
 *   large     create -> (list parts, when resuming) -> presign parts a
 *             batch ahead -> PUT parts, `parallel` at once across all jobs
 *             -> complete with the ETags in order
 *
 * Lifetime: a transfer ends in exactly one place (transfer_end in
 * transfer.c), which cancels its requests and timers at once but leaves
 * the memory to be reaped by the uploader's pump from the event loop; no
 * call chain can hold a freed transfer (the rule is in transfer.h).
 *
 * Every finished part's ETag is committed to the queue as it lands, so a
 * restart resumes from what the storage holds. A file found changed (stat
 * facts, a short read, a CRC or checksum the server refuses) is never
 * completed: the session is dropped and the job starts again from the new
 * content. What an answer means comes from one table (verdict.h).
 * Transient failures are retried step by step (part by part) with
 * full-jitter backoff; past a bound the job fails and the queue schedules
 * it. Failures in a row with no answer make the API known down (outage.h):
 * jobs go back without spending attempts and one probe at a time tests
 * it. A 401 pauses the whole API until the key is reloaded or a backoff
 * passes.
 *
 * The uploader owns its transfers; the config, queue and http client are
 * borrowed and must outlive it.
 */
#ifndef HS_AGENT_UPLOAD_H
#define HS_AGENT_UPLOAD_H

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "agent/http.h"
#include "agent/verdict.h"
#include "conf/conf.h"
#include "queue/queue.h"

struct hs_uploader;

struct hs_transfer_info {
	int64_t job_id;
	const char *remote_name;
	const char *step; /* "scanning", "uploading", "completing", ... */
	int64_t size;
	int64_t sent; /* bytes confirmed or in flight */
	uint32_t parts_done, part_count;
};

struct hs_uploader *hs_uploader_new(sd_event *ev, const struct hs_config *cfg, struct hs_queue *q,
				    struct hs_http *http, char **cause);
/* Cancels everything at once, releasing jobs to the queue. Accepts NULL. */
struct hs_uploader *hs_uploader_free(struct hs_uploader *u);

/* The queue may hold new work (an enqueue, a retry). */
void hs_uploader_kick(struct hs_uploader *u);
/* A new configuration (reload): keys, limits. Clears an auth pause. */
void hs_uploader_reconfigure(struct hs_uploader *u, const struct hs_config *cfg);
/* Takes no new work; transfers in flight may reach a safe point for up to
 * grace_ms, then the rest is cancelled and released. done(arg) is called
 * once nothing is left. */
void hs_uploader_stop(struct hs_uploader *u, uint64_t grace_ms, void (*done)(void *arg), void *arg);

/* fn(arg) is called whenever a transfer starts or ends (status updates). */
void hs_uploader_on_change(struct hs_uploader *u, void (*fn)(void *arg), void *arg);

/* fn is called when the server confirmed it holds a job's file (uploaded,
 * or the same content already stored), with the facts the file had when it
 * was read; the job is valid during the call only. */
typedef void (*hs_uploader_stored_fn)(const struct hs_job *job, int64_t size, int64_t mtime_ns,
				      int64_t inode, void *arg);
void hs_uploader_on_stored(struct hs_uploader *u, hs_uploader_stored_fn fn, void *arg);

void hs_uploader_each(struct hs_uploader *u,
		      void (*fn)(const struct hs_transfer_info *t, void *arg), void *arg);
unsigned hs_uploader_active(const struct hs_uploader *u);
/* The bandwidth timetable's pause. While on, no job is claimed and no PUT
 * or part starts; a PUT already sending finishes, and so does the complete
 * that follows a transfer's last one (it only confirms what was sent).
 * Every other transfer goes back to the queue without spending an attempt,
 * and resumes from what the storage holds once off. */
void hs_uploader_hold(struct hs_uploader *u, bool on);
bool hs_uploader_auth_paused(const struct hs_uploader *u);
/* Whether nothing has worked since uploads were last paused for an
 * outage (status shows it). */
bool hs_uploader_unavailable(const struct hs_uploader *u);
/* Since when (Unix ms) the API is known down; 0 when it is not. */
int64_t hs_uploader_unavailable_since(const struct hs_uploader *u);
/* How often, since the uploader was made, it tried something again after a
 * transient fault, by cause (verdict.h): a request sent again, a fresh
 * URL, a new session, a file read again, or a job given back to wait out
 * an outage. A failure that makes a job dead is not a retry. */
void hs_uploader_retries(const struct hs_uploader *u, uint64_t ret[HS_RETRY_NCAUSES]);

#endif
