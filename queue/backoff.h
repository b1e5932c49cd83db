/*
 * backoff: exponential backoff with full jitter.
 *
 * The delay before retry n (n = 1 after the first failure) is drawn
 * uniformly from [0, min(cap, base * 2^(n-1))]. With base 1 s and cap 1 h:
 * retry 1 waits up to 1 s, retry 2 up to 2 s, retry 13 and later up to 1 h.
 * Spreading the whole interval (not just adding a little noise) keeps many
 * clinics that failed together from retrying together.
 *
 * Pure: the caller supplies the random number, so tests are exact.
 */
#ifndef HS_QUEUE_BACKOFF_H
#define HS_QUEUE_BACKOFF_H

#include <stdint.h>

struct hs_backoff {
	uint64_t base_ms;
	uint64_t cap_ms;
};

/* The ceiling for attempt n (>= 1), saturating at cap without overflow. */
uint64_t hs_backoff_ceiling(const struct hs_backoff *b, unsigned attempt);
/* A delay in [0, ceiling]; rnd is any uniformly distributed 64-bit value. */
uint64_t hs_backoff_delay(const struct hs_backoff *b, unsigned attempt, uint64_t rnd);
/* A uniformly distributed 64-bit value from the system's CSPRNG. */
uint64_t hs_random64(void);

#endif
