/*
 * mirror_sched: the mirror's place in the daemon. Runs the patient mirror
 * (mirror.h) at the times of `mirror.schedule`, a 5-field cron expression in
 * local time (conf/cron.h), each delayed by a random part of `mirror.jitter` so
 * that many clinics do not call the API in the same second.
 *
 * At start, the last successful run is read from the mirror database. If a
 * scheduled time passed since it began (the machine was off), or there never
 * was one, a run starts once, 5 s after start plus its own draw over the
 * jitter, so that a fleet switched on at 07:00 does not catch up in the same
 * second (the rules in mirror_when.h). A failed run is tried again
 * after a backoff (1 min doubling to 1 h, full jitter), never later than
 * the next scheduled time. A run that finds the database busy (a
 * `healsync mirror` in another process) waits a minute.
 *
 * Borrows the loop, config and http client; reconfigure before an old config
 * is freed. Nothing here blocks but the mirror's own database calls.
 */
#ifndef HS_AGENT_MIRROR_SCHED_H
#define HS_AGENT_MIRROR_SCHED_H

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "agent/http.h"
#include "agent/mirror.h"
#include "conf/conf.h"

struct hs_mirror_sched;

struct hs_mirror_sched_info {
	bool enabled;		      /* a mirror section is configured */
	bool running;		      /* a run is under way (progress says where) */
	int64_t next_at;	      /* Unix ms of the next run; 0 when none */
	struct hs_mirror_run last;    /* id 0 when none */
	struct hs_mirror_run last_ok; /* id 0 when none */
	struct hs_mirror_progress progress;
};

/* changed(arg) is called when a run starts or ends (status updates). With
 * no mirror section the scheduler exists but never runs. NULL and *cause
 * when the schedule does not parse or the loop refuses a timer. */
struct hs_mirror_sched *hs_mirror_sched_new(sd_event *ev, const struct hs_config *cfg,
					    struct hs_http *http, void (*changed)(void *arg),
					    void *arg, char **cause);
/* Cancels a run in progress (it changes nothing). Accepts NULL. */
struct hs_mirror_sched *hs_mirror_sched_free(struct hs_mirror_sched *s);

/* A reload: a new schedule, key or section takes effect; a run in progress
 * goes on. -1 and *cause when a new section cannot be set up. */
int hs_mirror_sched_reconfigure(struct hs_mirror_sched *s, const struct hs_config *cfg,
				char **cause);

void hs_mirror_sched_get_info(struct hs_mirror_sched *s, struct hs_mirror_sched_info *ret);

#endif
