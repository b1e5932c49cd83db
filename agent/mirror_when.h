/*
 * mirror_when: when the mirror runs, as pure arithmetic on times, so that
 * the rules are tested exactly and the fleet simulation (bench/fleet/)
 * runs them unchanged. mirror_sched.c arms its timer with these.
 *
 * Every run is spread over the configured jitter J (mirror.jitter): a draw
 * uniform in [0, J] added to the time it is due. That holds for the run a
 * machine catches up at start too: a fleet that is switched on at 07:00,
 * or installed on one morning, would otherwise call the records API in the
 * same few seconds. Example, schedule "0 2 * * *" and J = 10 min:
 *
 *   - a scheduled run: 02:00 plus a draw in [0, 10 min]
 *   - at start, with a run missed (the machine was off at 02:00): start +
 *     HS_MIRROR_START_DELAY_MS plus a draw in [0, 10 min], never sooner
 *     than 5 s after start
 *   - at start, when no run ever finished (a first install): the same, but
 *     the draw is over HS_MIRROR_FIRST_SPREAD times the jitter, [0, 6 h].
 *     A first run fetches every record (500 patients: 505 requests, where
 *     a nightly run makes 30), and the rate limiter only keeps it within
 *     its own key's quota, not the fleet within the server's: spread over
 *     36 times as long, a fleet installed in one morning asks no more per
 *     second than its nightly runs do (bench/fleet/, docs/fleet.md). An
 *     operator who wants the records at once runs `healsync mirror`.
 *   - after failed run n: a backoff (1 min doubling to 1 h, full jitter),
 *     or the next scheduled time when that comes first
 *
 * All times are Unix ms; rnd is any uniformly distributed 64-bit value.
 */
#ifndef HS_AGENT_MIRROR_WHEN_H
#define HS_AGENT_MIRROR_WHEN_H

#include <stdint.h>

#include "conf/cron.h"

#define HS_MIRROR_START_DELAY_MS 5000 /* a caught-up run waits at least this */
#define HS_MIRROR_FIRST_SPREAD	 36   /* a first run's draw: times the jitter */

/* A draw in [0, jitter_ms]. */
int64_t hs_mirror_jitter(uint64_t jitter_ms, uint64_t rnd);

/* The next scheduled time strictly after after_ms, plus a jitter draw; -1
 * when the schedule never matches again. */
int64_t hs_mirror_scheduled_after(const struct hs_cron *cron, uint64_t jitter_ms, int64_t after_ms,
				  uint64_t rnd);

/* Why a run goes when it does at start. */
enum hs_mirror_first {
	HS_MIRROR_FIRST_NEVER,	   /* no run has finished yet: catch up */
	HS_MIRROR_FIRST_MISSED,	   /* a scheduled time passed since the last one: catch up */
	HS_MIRROR_FIRST_SCHEDULED, /* up to date: the next scheduled time */
};

/* The first run at start (now_ms), given when the last successful run
 * started (0: none). Sets *ret_why. -1 when the schedule never matches
 * again and nothing is to be caught up. */
int64_t hs_mirror_first_at(const struct hs_cron *cron, uint64_t jitter_ms, int64_t now_ms,
			   int64_t last_ok_started_ms, uint64_t rnd, enum hs_mirror_first *ret_why);

/* A catch-up run: now + HS_MIRROR_START_DELAY_MS + a jitter draw (pass
 * the first run's jitter, HS_MIRROR_FIRST_SPREAD times it, for one). */
int64_t hs_mirror_catch_up_at(uint64_t jitter_ms, int64_t now_ms, uint64_t rnd);

#endif
