/*
 * bandwidth: one token bucket shared by every transfer.
 *
 * Tokens are bytes. They accrue continuously at `rate` bytes per second (no
 * once-a-second refill, so no bursts at second boundaries) up to `burst`
 * bytes. A transfer about to send asks for n bytes and is granted what is
 * there, possibly less; with nothing there it pauses and asks the bucket
 * when enough will be.
 *
 * burst = max(rate / 50, min(16 KiB, rate / 2)): 20 ms of traffic, but at
 * least 16 KiB so that fast links are not fed in crumbs, and never more than
 * half a second of traffic, so that the cap below holds at low rates too.
 *
 * Example: rate 1 MiB/s, so burst 20971 bytes. The bucket starts full: a
 * transfer asking for 64 KiB at t=0 gets 20971 bytes and the bucket is empty;
 * asking again at t=10 ms gets 10485 bytes (1 MiB/s * 10 ms, the 0.76 byte
 * left over is kept); then hs_bucket_wait_us(b, 16384, t) says 15625 us.
 * Over any window of w seconds at most rate * w + burst bytes pass, so the
 * cap holds within 5% over any 10 s (burst <= 0.5 s of traffic).
 *
 * A rate of 0 means unlimited: everything is granted at once. The rate may
 * change at any time (the timetable): tokens are kept, those above the new
 * burst are dropped; going from unlimited to a limit starts with an empty
 * bucket, so the switch never lets more than the new rate through.
 *
 * The arithmetic is exact integers (tokens are counted in millionths of a
 * byte, so rate * elapsed microseconds needs no rounding) and cannot overflow
 * however long the bucket sat idle. Rates above 1 TiB/s are treated as
 * 1 TiB/s. Pure: times are passed in (monotonic microseconds); a time
 * earlier than one already seen counts as no time passing.
 */
#ifndef HS_AGENT_BANDWIDTH_H
#define HS_AGENT_BANDWIDTH_H

#include <stddef.h>
#include <stdint.h>

struct hs_bucket {
	uint64_t rate;	 /* bytes per second as configured; 0 = unlimited */
	uint64_t burst;	 /* bytes; 0 when unlimited */
	uint64_t tokens; /* millionths of a byte, as of last_us */
	int64_t last_us;
};

void hs_bucket_init(struct hs_bucket *b, uint64_t rate, int64_t now_us);
void hs_bucket_set_rate(struct hs_bucket *b, uint64_t rate, int64_t now_us);
/* Takes up to want bytes; returns how many were granted (0..want). */
size_t hs_bucket_take(struct hs_bucket *b, size_t want, int64_t now_us);
/* Microseconds until at least min(want, burst) bytes are there; 0 if now
 * (or unlimited, or want is 0). Never more than 1 s. */
int64_t hs_bucket_wait_us(const struct hs_bucket *b, size_t want, int64_t now_us);

#endif
