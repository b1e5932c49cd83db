/*
 * outage: when the Upload API (with its storage) counts as down, how long
 * the uploader then waits, and how much it may send while it is down.
 *
 * A fleet of agents shares one API: while it is down each agent sends one
 * probe at a time, spaced by a backoff with a random spread, and no
 * transfer keeps retrying its own steps; the API's return is noticed
 * within HS_OUTAGE_MAX_GAP_MS of it. The rules:
 *
 *  - a failure is a request that got no answer, or a 5xx: the server or a
 *    gateway on the way is down. Any answer below 500, from the API or the
 *    storage and from any transfer, says the API works (hs_outage_answered)
 *  - HS_OUTAGE_FAILURES failures in a row with no answer between them, and
 *    the API is known down, provided they are not one transfer's own: they
 *    come from two transfers or more, or from one that has had no answer
 *    since it began. (A file whose own requests fail while the API answers
 *    it is that file's problem and spends its attempts.) From then on every
 *    transfer gives its job back at its next failure without spending an
 *    attempt, and no job is claimed until the pause ends
 *  - when a pause ends, one job is claimed as the probe; its first failure
 *    starts the next, longer pause; its first answer ends the outage
 *  - pause n lasts HS_OUTAGE_MIN_MS plus a draw from the upper half of
 *    min(HS_OUTAGE_CAP_MS, HS_OUTAGE_BASE_MS * 2^(n-1)): the half keeps
 *    probes from bunching up early, the draw keeps agents that failed
 *    together from probing together
 *
 * Pure: the caller passes the time (Unix ms) and random numbers, so the
 * rules are tested exactly and the fleet simulation runs them unchanged.
 */
#ifndef HS_AGENT_OUTAGE_H
#define HS_AGENT_OUTAGE_H

#include <stdbool.h>
#include <stdint.h>

#define HS_OUTAGE_FAILURES 3
#define HS_OUTAGE_MIN_MS   (15 * 1000)
#define HS_OUTAGE_BASE_MS  (30 * 1000)
#define HS_OUTAGE_CAP_MS   (285 * 1000)
/* The longest pause: the API's return is noticed within this. */
#define HS_OUTAGE_MAX_GAP_MS (HS_OUTAGE_MIN_MS + HS_OUTAGE_CAP_MS)

struct hs_outage {
	unsigned failures; /* in a row, with no answer between */
	uint64_t first_of; /* whose failure began the row */
	bool shared;	   /* the row is not only first_of's own */
	unsigned pauses;   /* pauses of this outage: 0 while the API works */
	int64_t since_ms;  /* when this outage was first known; 0: none */
	int64_t until_ms;  /* the current pause ends then; 0: none */
};

/* What the caller does after a failure. */
enum hs_outage_advice {
	HS_OUTAGE_RETRY,     /* the API is not known down: retry as usual */
	HS_OUTAGE_GIVE_BACK, /* known down: give the job back, spend nothing */
};

/* An answer below 500 arrived. Returns true when that ends an outage (the
 * news to log). */
bool hs_outage_answered(struct hs_outage *o, int64_t now_ms);

/* A failure arrived at now_ms, of the transfer named who (any number
 * that tells transfers apart), which has had an answer since it began
 * (answered) or not. *news is set when it began an outage or a new pause
 * of one (a probe failed); *pause_ms to what is left of the pause (0 with
 * HS_OUTAGE_RETRY). */
enum hs_outage_advice hs_outage_failed(struct hs_outage *o, int64_t now_ms, uint64_t who,
				       bool answered, uint64_t rnd, bool *news, int64_t *pause_ms);

/* The transfer named who ended: a row of failures that were only its own
 * (it had answers) ends with it, so that the next file's first failure is
 * not counted as the row's third. */
void hs_outage_forget(struct hs_outage *o, uint64_t who);

/* A failure that is the configuration's (TLS or a proxy refused): the API
 * counts as down at once. Same results as hs_outage_failed. */
enum hs_outage_advice hs_outage_refused(struct hs_outage *o, int64_t now_ms, uint64_t rnd,
					bool *news, int64_t *pause_ms);

/* How many transfers may run now, given `parallel` slots: all of them
 * while the API works, 0 during a pause, 1 (the probe) after it. */
unsigned hs_outage_slots(const struct hs_outage *o, int64_t now_ms, unsigned parallel);

/* Whether the API is known down (status, health). */
bool hs_outage_known(const struct hs_outage *o);

/* Ends a pause now (a reload: try again at once); the outage stays known
 * so that one probe goes first. */
void hs_outage_wake(struct hs_outage *o);

#endif
