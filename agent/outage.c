/*
 * outage: the uploader's outage rules (see outage.h).
 */
#include "config.h"

#include "agent/outage.h"

static int64_t pause_length(unsigned n, uint64_t rnd)
{
	uint64_t ceiling = HS_OUTAGE_BASE_MS;

	for (unsigned i = 1; i < n && ceiling < HS_OUTAGE_CAP_MS; i++)
		ceiling *= 2;
	if (ceiling > HS_OUTAGE_CAP_MS)
		ceiling = HS_OUTAGE_CAP_MS;
	uint64_t half = ceiling / 2;
	return HS_OUTAGE_MIN_MS + (int64_t)(half + rnd % (ceiling - half + 1));
}

static void begin_pause(struct hs_outage *o, int64_t now_ms, uint64_t rnd)
{
	if (!o->pauses)
		o->since_ms = now_ms;
	o->pauses++;
	o->until_ms = now_ms + pause_length(o->pauses, rnd);
}

bool hs_outage_answered(struct hs_outage *o, int64_t now_ms)
{
	bool was = o->pauses > 0;

	(void)now_ms;
	o->failures = 0;
	o->shared = false;
	o->pauses = 0;
	o->since_ms = 0;
	o->until_ms = 0;
	return was;
}

static enum hs_outage_advice down(struct hs_outage *o, int64_t now_ms, uint64_t rnd, bool *news,
				  int64_t *pause_ms)
{
	*news = false;
	/* A failure after the pause ended is the probe's: the next pause. */
	if (o->until_ms <= now_ms) {
		begin_pause(o, now_ms, rnd);
		*news = true;
	}
	*pause_ms = o->until_ms - now_ms;
	return HS_OUTAGE_GIVE_BACK;
}

enum hs_outage_advice hs_outage_failed(struct hs_outage *o, int64_t now_ms, uint64_t who,
				       bool answered, uint64_t rnd, bool *news, int64_t *pause_ms)
{
	if (o->failures == 0)
		o->first_of = who;
	if (o->failures < UINT32_MAX)
		o->failures++;
	if (!answered || who != o->first_of)
		o->shared = true;
	if (o->pauses || (o->failures >= HS_OUTAGE_FAILURES && o->shared))
		return down(o, now_ms, rnd, news, pause_ms);
	*news = false;
	*pause_ms = 0;
	return HS_OUTAGE_RETRY;
}

void hs_outage_forget(struct hs_outage *o, uint64_t who)
{
	if (!o->pauses && !o->shared && o->failures && o->first_of == who)
		o->failures = 0;
}

enum hs_outage_advice hs_outage_refused(struct hs_outage *o, int64_t now_ms, uint64_t rnd,
					bool *news, int64_t *pause_ms)
{
	if (o->failures < HS_OUTAGE_FAILURES)
		o->failures = HS_OUTAGE_FAILURES;
	o->shared = true;
	return down(o, now_ms, rnd, news, pause_ms);
}

unsigned hs_outage_slots(const struct hs_outage *o, int64_t now_ms, unsigned parallel)
{
	if (!o->pauses)
		return parallel;
	if (o->until_ms > now_ms)
		return 0;
	return parallel ? 1 : 0;
}

bool hs_outage_known(const struct hs_outage *o)
{
	return o->pauses > 0;
}

void hs_outage_wake(struct hs_outage *o)
{
	o->until_ms = 0;
}
