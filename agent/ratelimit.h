/*
 * ratelimit: pacing requests to one API host from what the server says.
 *
 * Every response may carry X-RateLimit-Limit, -Remaining and -Reset (Reset
 * is a Unix time in seconds when >= 1000000000, else seconds from now). The
 * limiter keeps the server's view and spreads the requests it has left over
 * the time to the reset, so a client that has seen the headers does not run
 * into a 429.
 *
 * Accounting. The response to request `seq` saying Remaining R was counted
 * before the requests granted after it (sent - seq of them) and perhaps
 * before older ones still in flight; so left = R - (sent - seq) - (older
 * requests still unanswered), at least 0. That takes the older requests
 * answered already for counted before it, which is wrong for any that
 * overtook it on the way; it is right for the response counted last, which
 * says the least. So within a window the least `left` stands (a count that
 * goes up is believed from the next window on), and any response for a later
 * window replaces the news. Remaining above Limit counts as Limit; without a
 * Limit header the largest Remaining stands in; the Limit of the response
 * to the highest seq is the one in use. A response without both Remaining
 * and Reset teaches nothing (failed transfers included: they only leave the
 * flight).
 *
 * The reset. Servers speak whole seconds; the limiter never takes a window
 * for over before the instant it was told: a Unix-time reset is taken as
 * exactly that second, a delta as now + delta (servers are assumed to round
 * up). Responses within one window may say different deltas, rounded up from
 * different instants: each is a bound, the earliest wins. Two responses
 * belong to the same window when their resets are equal (Unix time) or less
 * than 1.5 s apart (delta: exact for windows of 3 s and more). A reset in the
 * past is read as "within the next second"; a reset more than 24 h ahead as
 * 24 h. If a request sent after a reset still lands in the old window (the
 * server's clock is behind ours, or it rounds down), the limiter learns by how
 * much that server's windows overrun what they say (up to the end the 429's
 * Retry-After gives, capped at 5 min) and adds it to every later reset said
 * in the same style: a skewed clock costs a 429 or two, not one per window.
 *
 * The window's length. A whole-second reset may be up to a second late, and
 * a Unix-time one is in the server's clock; so the limiter also learns how
 * long the windows last, in its own clock, taking them to begin with the
 * first request they count and to last a fixed time (a fixed-window quota).
 * The answer saying Remaining = Limit - 1 (with a Limit of 2 or more; a 429
 * says 0) comes from the request that began its window: the window began
 * after that request was granted (g), and by the first answer from it (a).
 * When an answer from a later window comes at a', the earlier one had
 * ended: windows last at most a' - g. The least of these (len_ms) bounds
 * the current window's end at a + len_ms + 2 ms (our clock counts whole
 * ms); when that is sooner than the reset said, it is the end. Neither the
 * server's clock nor its rounding enters. Should a request sent after such
 * an end still land in the old window (its windows grew, or do not begin
 * with their first request: windows aligned to the clock, say), the length
 * is forgotten and learned anew; after the second time, no more. A delta
 * showing a window longer than learned (it was rounded up from less than a
 * second more than the time since the request was granted) also makes it
 * forget, before any 429.
 *
 * Pacing. With `left` requests left, the last granted at t and the window
 * ending at reset_at, the next may go at
 *     t + (target - t) / (left + 1),   target = reset_at
 * so they are spread evenly and the last goes a step before the reset. A
 * Unix-time reset tells only the second in which the window ends, so there
 * (unless the end came from the length learned) the spreading aims at the
 * middle of that second: target = reset_at - min(500 ms, window / 10);
 * requests sent after the true end then start the next window early instead
 * of waiting for the said one. Example: the server says limit 30, remaining
 * 20, reset in 5 s just as a request was granted: one request every 5 s / 21
 * = 238 ms. With 3 requests in flight that were sent after the one that
 * reported "20", it counts 17 left.
 *
 * When the reset has passed, the limiter waits a jitter drawn from rnd of at
 * most HS_RATELIMIT_JITTER_MS (250 ms) and at most 2% of the window length as
 * estimated (the reset delay seen at a window's first response, or the length
 * learned when shorter; with whole-second resets the former may exceed the
 * true length by up to a second), so that many clinics do not wake at the
 * same instant. Then it assumes a fresh window of `limit` less the requests
 * still in flight (they may be counted in it): the first request goes at
 * once, the rest are paced over the estimated window length. It does not
 * wait for a response; the first one from the new window replaces the guess.
 * If the server stops sending headers, guessed windows follow one another at
 * the last rate known.
 *
 * Simulated (tests/unit/test_ratelimit.c): 1500 requests, 4 in flight, round
 * trips of 2-20 ms, against a fixed window of 30 per 5 s starting at the
 * first request it counts: no 429 once the headers are known, and no window
 * taken for over before its end; 1.01x the quota's minimum with delta
 * resets, 1.03x with Unix-time resets (the first window pays the rounding).
 *
 * A 429 or 503 with Retry-After blocks the host until then (clamped to
 * [1 s, 1 h]). Before any headers were seen, requests go freely.
 *
 * Pure: every call takes the time (Unix ms) and the random value it needs,
 * so the pacing is tested exactly. No allocation; values from the network are
 * clamped so nothing overflows (counts to 2^40).
 */
#ifndef HS_AGENT_RATELIMIT_H
#define HS_AGENT_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HS_RETRY_AFTER_MIN_MS	  1000
#define HS_RETRY_AFTER_MAX_MS	  (3600 * 1000)
#define HS_RATELIMIT_JITTER_MS	  250		       /* at most, and <= 2% of the window */
#define HS_RATELIMIT_MAX_RESET_MS (24 * 3600 * 1000LL) /* a reset further ahead is read as this */

struct hs_ratelimit_headers {
	bool has_limit, has_remaining, has_reset;
	int64_t limit;
	int64_t remaining;
	int64_t reset; /* as sent: Unix seconds or seconds from now */
};

struct hs_ratelimit {
	bool known;	       /* headers seen at least once */
	int64_t limit;	       /* requests per window, as last said */
	int64_t remaining;     /* the server's count, less requests sent since; >= 0 */
	int64_t reset_at;      /* Unix ms when the current window ends (or is guessed to);
				  0 when unknown */
	int64_t blocked_until; /* Unix ms from Retry-After; 0 when not (cleared by the
				  first request granted after it) */
	int64_t next_at;       /* earliest time the next request may go, as of the last
				  hs_ratelimit_reserve */
	uint64_t sent;	       /* requests granted so far: their sequence numbers are 1..sent */
	uint64_t answered_seq; /* the seq whose Remaining is in use */
	uint64_t throttled;    /* 429s seen, for status */

	/* Internals. */
	bool guessed;	      /* reset_at passed: a fresh window is assumed, unconfirmed */
	bool said_unix;	      /* the server's reset came as a Unix time */
	int64_t said_at;      /* the server's reset as said, Unix ms: tells windows apart */
	int64_t window_ms;    /* estimated window length */
	int64_t jitter_ms;    /* added at the current reset; -1 until drawn */
	int64_t last_grant;   /* when the last request was granted; INT64_MIN: go at once */
	uint64_t guess_seq;   /* `sent` when the current guessed window began */
	uint64_t in_flight;   /* bit i set: request sent - i not answered yet (older ones
				 are taken as counted) */
	int64_t late_ms[2];   /* how much later than said windows were seen to end,
				 [0] for delta resets, [1] for Unix-time ones */
	int64_t late_seen_at; /* when an answer last showed that */
	bool by_length;	      /* reset_at is win_seen + len_ms, sooner than said */
	bool guess_by_length; /* the guessed windows began at such a reset_at */
	int len_strikes;      /* times a request sent at such a reset_at still landed in
				 the window */
	int64_t len_ms;	      /* the longest a window can last, in our clock;
				 INT64_MAX while unknown */
	int64_t win_seen;     /* the first answer from the current window: it began by then */
	int64_t win_sent;     /* when the request it counted first was granted: it began
				 after; INT64_MIN until that answer came */
	int64_t grant_at[64]; /* when request seq was granted, at [seq % 64] */
};

void hs_ratelimit_init(struct hs_ratelimit *rl);

/* May a request go at now? Returns 0 and sets *ret_seq (pass it back to
 * hs_ratelimit_observe) when it may, else the Unix ms time (> now) to ask
 * again. rnd supplies the jitter at a reset. */
int64_t hs_ratelimit_reserve(struct hs_ratelimit *rl, int64_t now, uint64_t rnd, uint64_t *ret_seq);
/* Learns from the headers of the response to request seq; call it once per
 * granted request, also when it failed (h then has nothing), so the limiter
 * knows it is no longer in flight. */
void hs_ratelimit_observe(struct hs_ratelimit *rl, uint64_t seq, int64_t now,
			  const struct hs_ratelimit_headers *h);
/* A 429/503 said Retry-After: delay_ms from now (clamped again here). Called
 * right after hs_ratelimit_observe of the same response, with the same now. */
void hs_ratelimit_block(struct hs_ratelimit *rl, int64_t now, int64_t delay_ms);

/* Parses one header line as curl delivers it ("X-RateLimit-Remaining: 17\r\n")
 * into h; returns true if it was one of the three with a valid value (a
 * decimal integer >= 0 that fits int64, optional whitespace around it). The
 * name is case-insensitive. Anything else returns false and leaves h alone. */
bool hs_ratelimit_parse_header(struct hs_ratelimit_headers *h, const char *line, size_t len);
/* Retry-After as delta-seconds or an HTTP-date (curl_getdate), as a delay in
 * ms from now, clamped to [HS_RETRY_AFTER_MIN_MS, HS_RETRY_AFTER_MAX_MS] (a
 * date in the past gives the minimum); -1 when the value is neither. */
int64_t hs_retry_after_parse(const char *value, int64_t now);

#endif
