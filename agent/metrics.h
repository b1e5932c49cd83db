/*
 * metrics: the daemon's facts in the Prometheus text exposition format
 * (version 0.0.4), for node_exporter's textfile collector. The daemon
 * writes the text to `metrics_file` atomically (a temporary file beside it,
 * then a rename), so the collector never reads half a file.
 *
 *   # HELP healsync_jobs Jobs in the queue, by state.
 *   # TYPE healsync_jobs gauge
 *   healsync_jobs{state="queued"} 3
 *   ...
 *   healsync_health_state 1
 *   healsync_health_reason{code="queued_too_long"} 1
 *   healsync_upload_retries_total{cause="server_error"} 2
 *
 * Names follow Prometheus conventions: base units (seconds, bytes),
 * _total for counters, _timestamp_seconds for Unix times. Counters count
 * from the daemon's start (Prometheus sees a restart as a reset). Labels
 * carry states, codes, API names and host names, never file names.
 *
 * Pure: the caller passes every value.
 */
#ifndef HS_AGENT_METRICS_H
#define HS_AGENT_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/health.h"
#include "agent/verdict.h"
#include "queue/queue.h"

#define HS_METRICS_MAX_LIMITERS 16

struct hs_metrics {
	bool running;	    /* false: the daemon is stopping */
	int64_t started_at; /* Unix ms */
	int64_t jobs[HS_JOB_NSTATES];
	uint64_t stored_files;	/* since start */
	uint64_t stored_bytes;	/* since start */
	uint64_t sent_bytes;	/* request bodies, since start */
	int64_t last_upload_at; /* Unix ms; 0: never */
	bool mirror_enabled;
	int64_t mirror_last_success_at; /* Unix ms; 0: never */
	int64_t oldest_queued_age_ms;	/* 0: nothing waits */
	bool upload_up;
	bool records_up;
	int64_t disk_free; /* bytes; < 0: not known */
	unsigned waiting_for_quota;
	uint64_t retries[HS_RETRY_NCAUSES]; /* by cause, since start */
	size_t n_limiters;
	struct {
		const char *api, *host;
		uint64_t throttled; /* 429s */
	} limiters[HS_METRICS_MAX_LIMITERS];
	const struct hs_health *health;
};

/* The exposition text; the caller frees it. NULL when out of memory. */
char *hs_metrics_text(const struct hs_metrics *m);

#endif
