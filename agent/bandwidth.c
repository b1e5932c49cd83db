/* bandwidth: the token bucket, in exact integer arithmetic. */
#include "config.h"

#include <stdbool.h>

#include "agent/bandwidth.h"

#define MICRO	  1000000ULL
#define MIN_BURST (16 * 1024ULL)
#define MAX_RATE  (1ULL << 40) /* 1 TiB/s: burst * MICRO stays far below 2^64 */

static uint64_t eff_rate(uint64_t rate)
{
	return rate > MAX_RATE ? MAX_RATE : rate;
}

static uint64_t burst_for(uint64_t rate)
{
	uint64_t r = eff_rate(rate);
	uint64_t floor = r / 2 < MIN_BURST ? r / 2 : MIN_BURST;
	uint64_t burst = r / 50 > floor ? r / 50 : floor;

	return burst ? burst : 1;
}

/* The tokens there at now (limited bucket only), without changing b. */
static uint64_t tokens_at(const struct hs_bucket *b, int64_t now_us)
{
	uint64_t cap = b->burst * MICRO;
	uint64_t rate = eff_rate(b->rate);
	uint64_t t = b->tokens < cap ? b->tokens : cap;
	uint64_t dt, need;

	if (now_us <= b->last_us || t == cap)
		return t;
	/* The true difference even when it exceeds INT64_MAX. */
	dt = (uint64_t)now_us - (uint64_t)b->last_us;
	need = cap - t;
	/* dt * rate >= need, tested without multiplying. */
	if (dt > need / rate)
		return cap;
	return t + dt * rate; /* dt * rate <= need: no overflow, <= cap */
}

static void advance(struct hs_bucket *b, int64_t now_us)
{
	if (b->rate)
		b->tokens = tokens_at(b, now_us);
	if (now_us > b->last_us)
		b->last_us = now_us;
}

void hs_bucket_init(struct hs_bucket *b, uint64_t rate, int64_t now_us)
{
	b->rate = rate;
	b->burst = rate ? burst_for(rate) : 0;
	b->tokens = b->burst * MICRO;
	b->last_us = now_us;
}

void hs_bucket_set_rate(struct hs_bucket *b, uint64_t rate, int64_t now_us)
{
	bool was_unlimited = b->rate == 0;

	advance(b, now_us);
	b->rate = rate;
	if (rate == 0) {
		b->burst = 0;
		b->tokens = 0;
		return;
	}
	b->burst = burst_for(rate);
	if (was_unlimited)
		b->tokens = 0;
	else if (b->tokens > b->burst * MICRO)
		b->tokens = b->burst * MICRO;
}

size_t hs_bucket_take(struct hs_bucket *b, size_t want, int64_t now_us)
{
	uint64_t avail;

	advance(b, now_us);
	if (b->rate == 0)
		return want;
	avail = b->tokens / MICRO;
	if ((uint64_t)want > avail)
		want = (size_t)avail;
	b->tokens -= (uint64_t)want * MICRO;
	return want;
}

int64_t hs_bucket_wait_us(const struct hs_bucket *b, size_t want, int64_t now_us)
{
	uint64_t need, have, rate = eff_rate(b->rate);

	if (rate == 0 || want == 0)
		return 0;
	need = ((uint64_t)want < b->burst ? (uint64_t)want : b->burst) * MICRO;
	have = tokens_at(b, now_us);
	if (have >= need)
		return 0;
	/* need <= burst * MICRO <= rate * MICRO (burst <= rate, or 1): <= 1 s. */
	return (int64_t)((need - have + rate - 1) / rate);
}
