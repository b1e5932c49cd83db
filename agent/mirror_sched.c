/*
 * mirror_sched: one CLOCK_REALTIME timer in front of the mirror.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/clock.h"
#include "agent/log.h"
#include "agent/mirror_sched.h"
#include "agent/mirror_when.h"
#include "queue/backoff.h"

#define BUSY_RETRY_MS 60000

static const struct hs_backoff fail_backoff = {.base_ms = 60 * 1000, .cap_ms = 3600 * 1000};

struct hs_mirror_sched {
	sd_event *ev;
	const struct hs_config *cfg;
	struct hs_http *http;
	struct hs_mirror *mirror;
	sd_event_source *timer;
	int64_t next_at; /* Unix ms; 0: none */
	unsigned failures;
	struct hs_mirror_run last, last_ok; /* as the database says */
	void (*changed)(void *arg);
	void *arg;
};

static void local_time(int64_t ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (!localtime_r(&t, &tm) || strftime(buf, len, "%Y-%m-%d %H:%M %Z", &tm) == 0)
		snprintf(buf, len, "?");
}

static void arm(struct hs_mirror_sched *s, int64_t at_ms, const char *why)
{
	char when[64];

	s->next_at = at_ms;
	sd_event_source_set_time(s->timer, (uint64_t)at_ms * 1000);
	sd_event_source_set_enabled(s->timer, SD_EVENT_ONESHOT);
	local_time(at_ms, when, sizeof(when));
	hs_log(LOG_INFO, "next mirror run at %s (%s)", when, why);
	if (s->changed)
		s->changed(s->arg);
}

/* The next scheduled time after after_ms, with this run's jitter. */
static int64_t scheduled_after(struct hs_mirror_sched *s, int64_t after_ms)
{
	return hs_mirror_scheduled_after(s->cfg->mirror.cron, s->cfg->mirror.jitter_ms, after_ms,
					 hs_random64());
}

static void arm_next(struct hs_mirror_sched *s)
{
	int64_t at = scheduled_after(s, hs_wall_ms());

	if (at < 0) {
		hs_log(LOG_WARNING, "mirror.schedule \"%s\" never matches; no runs",
		       s->cfg->mirror.schedule);
		s->next_at = 0;
		sd_event_source_set_enabled(s->timer, SD_EVENT_OFF);
		return;
	}
	arm(s, at, "scheduled");
}

/* Reads the last runs from the database, for the schedule and status. */
static int read_runs(struct hs_mirror_sched *s)
{
	char *cause = NULL;
	int rc = hs_mirror_db_read_runs(s->cfg->mirror.database, &s->last, &s->last_ok, &cause);

	if (rc < 0)
		hs_log(LOG_WARNING, "mirror database: %s", cause ? cause : "out of memory");
	free(cause); /* HS_MDB_EMPTY says "no mirror run yet" too */
	if (rc != HS_MDB_OK) {
		memset(&s->last, 0, sizeof(s->last));
		memset(&s->last_ok, 0, sizeof(s->last_ok));
	}
	return rc;
}

static void on_done(const struct hs_mirror_result *res, void *arg)
{
	struct hs_mirror_sched *s = arg;
	int64_t now = hs_wall_ms(), retry, next;

	read_runs(s);
	if (res->ok) {
		s->failures = 0;
		arm_next(s);
		return;
	}
	s->failures++;
	retry = now + (int64_t)hs_backoff_delay(&fail_backoff, s->failures, hs_random64());
	next = scheduled_after(s, now);
	if (next > 0 && next < retry)
		arm(s, next, "scheduled");
	else
		arm(s, retry, "retry after a failed run");
}

static int on_timer(sd_event_source *src, uint64_t usec, void *arg)
{
	struct hs_mirror_sched *s = arg;
	char *cause = NULL;

	s->next_at = 0;
	if (hs_mirror_start(s->mirror, on_done, s, &cause) != 0) {
		hs_log(LOG_WARNING, "mirror: cannot start a run: %s",
		       cause ? cause : "out of memory");
		free(cause);
		arm(s, hs_wall_ms() + BUSY_RETRY_MS, "retry");
		return 0;
	}
	if (s->changed)
		s->changed(s->arg);
	return 0;
}

/* At start: a run soon if one was missed (or none ever succeeded), else at
 * the next scheduled time; either way spread over the jitter. */
static void arm_first(struct hs_mirror_sched *s)
{
	enum hs_mirror_first why;
	int64_t at;

	read_runs(s);
	at = hs_mirror_first_at(s->cfg->mirror.cron, s->cfg->mirror.jitter_ms, hs_wall_ms(),
				s->last_ok.id ? s->last_ok.started_at : 0, hs_random64(), &why);
	if (why == HS_MIRROR_FIRST_NEVER)
		arm(s, at, "no run has finished yet");
	else if (why == HS_MIRROR_FIRST_MISSED)
		arm(s, at, "a scheduled run was missed");
	else
		arm_next(s);
}

struct hs_mirror_sched *hs_mirror_sched_new(sd_event *ev, const struct hs_config *cfg,
					    struct hs_http *http, void (*changed)(void *arg),
					    void *arg, char **cause)
{
	struct hs_mirror_sched *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->ev = ev;
	s->cfg = cfg;
	s->http = http;
	s->changed = changed;
	s->arg = arg;
	if (!cfg->mirror.enabled)
		return s;
	if (!(s->mirror = hs_mirror_new(ev, cfg, http, cause)))
		return hs_mirror_sched_free(s);
	if (sd_event_add_time(ev, &s->timer, CLOCK_REALTIME, 0, 1000 * 1000, on_timer, s) < 0) {
		if (cause)
			*cause = strdup("cannot add the mirror timer to the event loop");
		return hs_mirror_sched_free(s);
	}
	arm_first(s);
	return s;
}

struct hs_mirror_sched *hs_mirror_sched_free(struct hs_mirror_sched *s)
{
	if (!s)
		return NULL;
	hs_mirror_free(s->mirror);
	sd_event_source_disable_unref(s->timer);
	free(s);
	return NULL;
}

int hs_mirror_sched_reconfigure(struct hs_mirror_sched *s, const struct hs_config *cfg,
				char **cause)
{
	bool was = s->cfg->mirror.enabled;
	bool same_schedule = was && cfg->mirror.enabled &&
			     strcmp(s->cfg->mirror.schedule, cfg->mirror.schedule) == 0;

	if (!cfg->mirror.enabled) { /* section removed: stop */
		s->mirror = hs_mirror_free(s->mirror);
		s->timer = sd_event_source_disable_unref(s->timer);
		s->next_at = 0;
		s->cfg = cfg;
		if (was)
			hs_log(LOG_NOTICE, "mirror section removed; no more runs");
		return 0;
	}
	s->cfg = cfg;
	if (!was) { /* section added: start as at start-up */
		if (!(s->mirror = hs_mirror_new(s->ev, cfg, s->http, cause)) ||
		    sd_event_add_time(s->ev, &s->timer, CLOCK_REALTIME, 0, 1000 * 1000, on_timer,
				      s) < 0) {
			s->mirror = hs_mirror_free(s->mirror);
			return -1;
		}
		arm_first(s);
		return 0;
	}
	hs_mirror_reconfigure(s->mirror, cfg);
	if (hs_mirror_running(s->mirror))
		return 0;
	/* A reload after a failed run is most often the fix (a key, a CA, a
	 * proxy): try it soon rather than at the end of the backoff. */
	if (s->failures > 0)
		arm(s, hs_wall_ms() + HS_MIRROR_START_DELAY_MS, "reloaded after a failed run");
	else if (!same_schedule)
		arm_next(s);
	return 0;
}

void hs_mirror_sched_get_info(struct hs_mirror_sched *s, struct hs_mirror_sched_info *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->enabled = s->cfg->mirror.enabled;
	if (!ret->enabled)
		return;
	ret->next_at = s->next_at;
	ret->running = hs_mirror_running(s->mirror);
	hs_mirror_progress(s->mirror, &ret->progress);
	ret->last = s->last;
	ret->last_ok = s->last_ok;
}
