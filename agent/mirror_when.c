/* mirror_when: when the mirror runs (rules in mirror_when.h). */
#include "config.h"

#include "agent/mirror_when.h"

int64_t hs_mirror_jitter(uint64_t jitter_ms, uint64_t rnd)
{
	if (jitter_ms == 0)
		return 0;
	if (jitter_ms > INT64_MAX / 4)
		jitter_ms = INT64_MAX / 4; /* no sum below overflows */
	return (int64_t)(rnd % (jitter_ms + 1));
}

int64_t hs_mirror_scheduled_after(const struct hs_cron *cron, uint64_t jitter_ms, int64_t after_ms,
				  uint64_t rnd)
{
	int64_t t = hs_cron_next(cron, after_ms / 1000);

	return t < 0 ? -1 : t * 1000 + hs_mirror_jitter(jitter_ms, rnd);
}

int64_t hs_mirror_catch_up_at(uint64_t jitter_ms, int64_t now_ms, uint64_t rnd)
{
	return now_ms + HS_MIRROR_START_DELAY_MS + hs_mirror_jitter(jitter_ms, rnd);
}

int64_t hs_mirror_first_at(const struct hs_cron *cron, uint64_t jitter_ms, int64_t now_ms,
			   int64_t last_ok_started_ms, uint64_t rnd, enum hs_mirror_first *ret_why)
{
	if (last_ok_started_ms <= 0) {
		*ret_why = HS_MIRROR_FIRST_NEVER;
		if (jitter_ms > UINT64_MAX / HS_MIRROR_FIRST_SPREAD)
			jitter_ms = UINT64_MAX / HS_MIRROR_FIRST_SPREAD;
		return hs_mirror_catch_up_at(jitter_ms * HS_MIRROR_FIRST_SPREAD, now_ms, rnd);
	}
	int64_t due = hs_cron_next(cron, last_ok_started_ms / 1000);
	if (due >= 0 && due * 1000 <= now_ms) {
		*ret_why = HS_MIRROR_FIRST_MISSED;
		return hs_mirror_catch_up_at(jitter_ms, now_ms, rnd);
	}
	*ret_why = HS_MIRROR_FIRST_SCHEDULED;
	return hs_mirror_scheduled_after(cron, jitter_ms, now_ms, rnd);
}
