/*
 * upload: the uploader: claims jobs into transfers, shares the PUT slots
 * among them, pauses for an outage or a refused key, stops and holds at
 * safe points, and reaps ended transfers (see upload.h and transfer.h).
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/clock.h"
#include "agent/log.h"
#include "agent/token.h"
#include "agent/transfer.h"

#define LEASE_MS (5 * 60 * 1000)
#define RENEW_MS (60 * 1000)

static const struct hs_backoff auth_backoff = {.base_ms = 60 * 1000, .cap_ms = 3600 * 1000};

void up_kick(struct hs_uploader *u)
{
	sd_event_source_set_enabled(u->pump_src, SD_EVENT_ONESHOT);
}

/* ---- outages and a refused key --------------------------------------------- */

void up_api_answered(struct hs_uploader *u)
{
	int64_t since = u->outage.since_ms;

	if (hs_outage_answered(&u->outage, now_ms())) {
		const struct hs_log_field f[] = {{"MESSAGE_ID", HS_MSGID_OUTAGE_ENDED}};

		hs_log_fields(LOG_NOTICE, f, 1,
			      "upload API works again after %" PRId64 " s; uploads go on",
			      (now_ms() - since) / 1000);
		sd_event_source_set_enabled(u->outage_timer, SD_EVENT_OFF);
		up_kick(u);
	}
}

bool up_api_failed(struct transfer *t, bool refused, const char *why)
{
	struct hs_uploader *u = t->u;
	int64_t pause;
	bool news;
	uint64_t now;
	enum hs_outage_advice a =
	    refused ? hs_outage_refused(&u->outage, now_ms(), hs_random64(), &news, &pause)
		    : hs_outage_failed(&u->outage, now_ms(), (uint64_t)(uintptr_t)t, t->answered,
				       hs_random64(), &news, &pause);

	if (a == HS_OUTAGE_RETRY)
		return false;
	if (news && u->outage.pauses == 1) {
		const struct hs_log_field f[] = {{"MESSAGE_ID", HS_MSGID_OUTAGE_BEGAN}};

		hs_log_fields(LOG_WARNING, f, 1,
			      "upload API unavailable (%s); uploads paused for %" PRId64
			      " s, queued files keep their attempts",
			      why, pause / 1000);
	} else if (news) {
		hs_log(LOG_INFO, "upload API still unavailable (%s); next try in %" PRId64 " s",
		       why, pause / 1000);
	}
	if (news) {
		sd_event_now(u->ev, CLOCK_MONOTONIC, &now);
		sd_event_source_set_time(u->outage_timer, now + (uint64_t)pause * 1000);
		sd_event_source_set_enabled(u->outage_timer, SD_EVENT_ONESHOT);
	}
	log_job(LOG_DEBUG, t, 0, NULL, "no answer (%s); back to the queue", why);
	/* Due at once: the pause, not the job, decides when it goes again,
	 * and after a reload it is first in line. */
	job_release(t, 0);
	return true;
}

static int on_outage_timer(sd_event_source *s, uint64_t usec, void *arg)
{
	(void)s;
	(void)usec;
	up_kick(arg);
	return 0;
}

static int on_auth_timer(sd_event_source *s, uint64_t usec, void *arg)
{
	struct pause *p = arg;

	(void)s;
	(void)usec;
	p->on = false;
	up_kick(p->u);
	return 0;
}

void up_auth_pause(struct hs_uploader *u)
{
	const struct hs_log_field f[] = {{"MESSAGE_ID", HS_MSGID_KEY_REJECTED},
					 {"HTTP_STATUS", "401"}};
	struct pause *p = &u->auth;
	char hint[512];
	int64_t delay;
	uint64_t now;

	if (p->on)
		return;
	p->on = true;
	p->count++;
	delay = 30 * 1000 + (int64_t)hs_backoff_delay(&auth_backoff, p->count, hs_random64());
	sd_event_now(u->ev, CLOCK_MONOTONIC, &now);
	sd_event_source_set_time(p->timer, now + (uint64_t)delay * 1000);
	sd_event_source_set_enabled(p->timer, SD_EVENT_ONESHOT);
	hs_log_fields(p->count == 1 ? LOG_ERR : LOG_DEBUG, f, 2,
		      "upload API rejected the %s (HTTP 401); %s; uploads paused for %" PRId64
		      " s or until the configuration is reloaded",
		      hs_auth_noun(&u->cfg->upload.api),
		      hs_auth_hint(&u->cfg->upload.api, hs_wall_ms() / 1000, hint, sizeof(hint)),
		      delay / 1000);
}

void up_auth_refused(struct transfer *t)
{
	struct hs_uploader *u = t->u;
	const struct hs_api *api = &u->cfg->upload.api;
	bool changed = false;
	char *cause = NULL;

	/* Sent before the secret last changed: it simply goes again. Else the
	 * file is read once more before the API is paused, so that a rotated
	 * token is taken up without a reload. */
	if (!u->auth.on && t->auth_gen == api->secret->generation) {
		if (hs_api_reread(api, &changed, &cause) != 0) {
			hs_log(LOG_WARNING, "upload: cannot read the %s again: %s",
			       hs_auth_noun(api), cause ? cause : "out of memory");
			free(cause);
		}
		if (changed)
			hs_log(
			    LOG_NOTICE,
			    "upload API rejected the %s (HTTP 401); %s holds a new one, trying it",
			    hs_auth_noun(api), hs_api_secret_file(api));
		else
			up_auth_pause(u);
	}
	job_release(t, 0);
}

/* ---- slots ------------------------------------------------------------------- */

static bool has_inflight_puts(const struct transfer *t)
{
	if (t->put_inflight || t->step == S_COMPLETE || t->step == S_MP_COMPLETE)
		return true;
	for (uint32_t i = 0; t->parts && i < t->session.part_count; i++)
		if (t->parts[i].state == P_SENDING)
			return true;
	return false;
}

/* Gives back every transfer with nothing to finish: a stop or a hold.
 * Each one released ends only itself, and ended ones keep their place on
 * the list until the pump reaps them. */
static void release_idle(struct hs_uploader *u, const char *why)
{
	struct transfer *t, *next;

	for (t = u->transfers; t; t = next) {
		next = t->next;
		if (has_inflight_puts(t))
			continue;
		if (why)
			log_job(LOG_DEBUG, t, 0, NULL, "%s; back to the queue", why);
		job_release(t, 0);
	}
}

static void stop_check(struct hs_uploader *u)
{
	/* Everything not sending or completing has no safe point to reach. */
	release_idle(u, NULL);
	if (!u->transfers && u->stop_done) {
		void (*done)(void *) = u->stop_done;
		u->stop_done = NULL;
		sd_event_source_set_enabled(u->stop_timer, SD_EVENT_OFF);
		done(u->stop_arg);
	}
}

/* Hands the free PUT slots to the transfers that wait for one. Any call
 * below may end its transfer: each is checked before it is used again. */
static void fill_slots(struct hs_uploader *u)
{
	unsigned parallel = u->cfg->upload.parallel;
	struct transfer *t, *next;

	for (t = u->transfers; t; t = next) {
		next = t->next;
		if (t->step == S_PUT && t->want_slot) {
			if (u->puts < parallel)
				send_put_single(t);
			continue;
		}
		if (t->step != S_PARTS)
			continue;
		for (uint32_t i = 0; i < t->session.part_count && u->puts < parallel; i++) {
			if (t->ended || t->step != S_PARTS)
				break;
			if (t->parts[i].state == P_READY)
				send_part(t, &t->parts[i]);
		}
		presign_parts(t);
	}
}

static void arm_due_timer(struct hs_uploader *u)
{
	int64_t at = -1;
	char *cause = NULL;

	if (u->auth.on || u->held || u->stopping ||
	    u->n_transfers >= hs_outage_slots(&u->outage, now_ms(), u->cfg->upload.parallel)) {
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

static void claim(struct hs_uploader *u)
{
	struct hs_job *job;
	char *cause = NULL;

	/* While the API is known down, one transfer at a time: the probe. */
	while (!u->auth.on &&
	       u->n_transfers < hs_outage_slots(&u->outage, now_ms(), u->cfg->upload.parallel)) {
		int rc = hs_queue_claim(u->q, now_ms(), LEASE_MS, &job, &cause);
		if (rc == HS_Q_EMPTY)
			break;
		if (rc != HS_Q_OK) {
			hs_log(LOG_ERR, "queue: cannot claim a job: %s",
			       cause ? cause : "out of memory");
			free(cause);
			break;
		}
		start_renewing(u);
		transfer_begin(u, job);
	}
}

/* Frees the ended transfers: the pump runs from the event loop, with no
 * call chain below it that could still hold one. */
static void reap(struct hs_uploader *u)
{
	while (u->ended) {
		struct transfer *t = u->ended;
		u->ended = t->ended_next;
		transfer_free(t);
	}
}

/* With no transfer left, the completions committed unsynced (job_done)
 * are made durable in one fsync: a burst of files costs one sync each (its
 * PUT) plus one at its end. While transfers run, their synced commits
 * (PUTs, lease renewals every RENEW_MS) carry the others' to the disk. */
static void idle_sync(struct hs_uploader *u)
{
	char *cause = NULL;

	if (u->transfers)
		return;
	if (hs_queue_sync(u->q, &cause) != HS_Q_OK) {
		hs_log(LOG_ERR, "queue: %s", cause ? cause : "out of memory");
		free(cause);
	}
}

static int on_pump(sd_event_source *s, void *arg)
{
	struct hs_uploader *u = arg;

	(void)s;
	reap(u);
	if (u->stopping) {
		stop_check(u);
	} else if (u->held) {
		release_idle(u, "uploads paused");
	} else {
		fill_slots(u);
		claim(u);
	}
	idle_sync(u);
	arm_due_timer(u);
	if (u->changed) {
		u->changed = false;
		if (u->on_change)
			u->on_change(u->change_arg);
	}
	return 0;
}

static int on_due(sd_event_source *s, uint64_t usec, void *arg)
{
	(void)s;
	(void)usec;
	up_kick(arg);
	return 0;
}

static int on_renew(sd_event_source *s, uint64_t usec, void *arg)
{
	struct hs_uploader *u = arg;
	struct transfer *t, *next;
	uint64_t now;

	(void)usec;
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

static int on_stop_timer(sd_event_source *s, uint64_t usec, void *arg)
{
	struct hs_uploader *u = arg;

	(void)s;
	(void)usec;
	while (u->transfers)
		job_release(u->transfers, 0);
	stop_check(u);
	return 0;
}

/* ---- the public face ---------------------------------------------------------- */

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
	u->auth.u = u;
	if (sd_event_add_defer(ev, &u->pump_src, on_pump, u) < 0 ||
	    sd_event_add_time(ev, &u->due_timer, CLOCK_REALTIME, 0, 10 * 1000, on_due, u) < 0 ||
	    sd_event_source_set_enabled(u->due_timer, SD_EVENT_OFF) < 0 ||
	    sd_event_add_time(ev, &u->renew_timer, CLOCK_MONOTONIC, 0, 1000 * 1000, on_renew, u) <
		0 ||
	    sd_event_source_set_enabled(u->renew_timer, SD_EVENT_OFF) < 0 ||
	    sd_event_add_time(ev, &u->auth.timer, CLOCK_MONOTONIC, 0, 0, on_auth_timer, &u->auth) <
		0 ||
	    sd_event_source_set_enabled(u->auth.timer, SD_EVENT_OFF) < 0 ||
	    sd_event_add_time(ev, &u->outage_timer, CLOCK_MONOTONIC, 0, 0, on_outage_timer, u) <
		0 ||
	    sd_event_source_set_enabled(u->outage_timer, SD_EVENT_OFF) < 0 ||
	    sd_event_add_time(ev, &u->stop_timer, CLOCK_MONOTONIC, 0, 0, on_stop_timer, u) < 0 ||
	    sd_event_source_set_enabled(u->stop_timer, SD_EVENT_OFF) < 0) {
		if (cause)
			*cause = strdup("cannot add the uploader to the event loop");
		return hs_uploader_free(u);
	}
	up_kick(u);
	return u;
}

struct hs_uploader *hs_uploader_free(struct hs_uploader *u)
{
	if (!u)
		return NULL;
	u->stopping = true;
	while (u->transfers)
		job_release(u->transfers, 0);
	reap(u);
	sd_event_source_disable_unref(u->pump_src);
	sd_event_source_disable_unref(u->due_timer);
	sd_event_source_disable_unref(u->renew_timer);
	sd_event_source_disable_unref(u->auth.timer);
	sd_event_source_disable_unref(u->outage_timer);
	sd_event_source_disable_unref(u->stop_timer);
	sd_event_unref(u->ev);
	free(u->buf);
	free(u);
	return NULL;
}

void hs_uploader_kick(struct hs_uploader *u)
{
	up_kick(u);
}

void hs_uploader_reconfigure(struct hs_uploader *u, const struct hs_config *cfg)
{
	u->cfg = cfg;
	/* Perhaps a new key: try it now, and forget the backoff. */
	u->auth.on = false;
	u->auth.count = 0;
	sd_event_source_set_enabled(u->auth.timer, SD_EVENT_OFF);
	/* Perhaps a mended proxy or CA: probe now. */
	hs_outage_wake(&u->outage);
	sd_event_source_set_enabled(u->outage_timer, SD_EVENT_OFF);
	up_kick(u);
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
	up_kick(u);
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
		    .step = hs_step_names[t->step],
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
	up_kick(u);
	if (u->on_change)
		u->on_change(u->change_arg);
}

bool hs_uploader_auth_paused(const struct hs_uploader *u)
{
	return u->auth.on;
}

bool hs_uploader_unavailable(const struct hs_uploader *u)
{
	return hs_outage_known(&u->outage);
}

int64_t hs_uploader_unavailable_since(const struct hs_uploader *u)
{
	return u->outage.since_ms;
}

void hs_uploader_retries(const struct hs_uploader *u, uint64_t ret[HS_RETRY_NCAUSES])
{
	for (int c = 0; c < HS_RETRY_NCAUSES; c++)
		ret[c] = u->retries[c];
}
