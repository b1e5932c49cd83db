/*
 * ratelimit: pacing requests to one host from what its answers say.
 *
 * An answer may carry X-RateLimit-Limit, -Remaining and -Reset. Reset is a
 * Unix time in seconds when >= 1000000000, else seconds from now; either may
 * have a decimal fraction ("1.25"). The rules, each checkable on its own:
 *
 * 1. The window's end. A delta reset ends the window at our time of receipt
 *    plus the delta (the server counted it before we received it, so this is
 *    never early). A Unix-time reset is read against the answer's Date: it
 *    ends at reset - offset, where offset is how far the server's clock is
 *    ahead of ours, taken from below: the largest Date - receipt seen (Date
 *    is whole seconds, rounded down, and was stamped before receipt). An
 *    answer proving that too large (Date + 1 s - grant of its request is
 *    less) restarts the offset from that answer, so a clock step on either
 *    side costs at most one conservative answer. Without a Date, the local
 *    clock stands in. An end in the past is now; one more than 24 h ahead is
 *    24 h.
 *
 * 2. Which window an answer speaks of. Unix resets: the same value is the
 *    same window, a larger one a later window. Deltas: an end at least 1.5 s
 *    after the current window's first end is a later window, one at least
 *    1.5 s before it an older one, anything between the same (servers round
 *    to whole seconds; answers take time). News of an older window is
 *    ignored. Taking a later window for the same one only errs on the safe
 *    side: its count is the least, its end the latest (rule 5 covers the
 *    rest).
 *
 * 3. What is left. Within a window, the least Remaining said is the
 *    server's latest count; every request of ours still in flight may have
 *    been counted after it. So left = least Remaining - requests in flight
 *    (>= 0); a later window's first answer starts the least anew. Remaining
 *    above Limit counts as Limit; without Limit, the largest Remaining
 *    stands in.
 *
 * 4. Remaining 0 holds until its reset as said. An answer whose Remaining is
 *    0 moves the window's end to its own end when that is later; nothing
 *    learned ever moves an end sooner. While left is 0, no counted request
 *    goes before the end.
 *
 * 5. After the end. The limiter waits a jitter (rnd, drawn once per
 *    window: uniform over [0, HS_RATELIMIT_JITTER_PERMILLE/1000 of the
 *    longest window said], at most HS_RATELIMIT_JITTER_MAX_MS) so clinics
 *    whose quotas end together (per-key windows aligned to the minute) do
 *    not wake together: a fleet held to the minute wakes over 3 s, not in
 *    its first 0.3 s, and one agent loses 2.5% of a window on average (the
 *    choice is measured in bench/fleet/ and bench/ratelimit.py). It then
 *    assumes a
 *    fresh window of Limit less the requests still in flight, lasting the
 *    longest window ever said (learned lengths only make it wait longer).
 *    The first answer from the server replaces the guess. An answer to a
 *    request granted after the end that still speaks of the old window (a
 *    server whose clock runs behind its Date, or that rounds down) puts the
 *    old window back with what it says is left.
 *
 * 6. Requests are not paced within a window: while left > 1 they go at once,
 *    so a window's quota is used at its start and the last window need not
 *    run out. The last slot (left = 1) of a window whose resets all came as
 *    whole-second deltas, asked for while other requests wait, goes when a
 *    whole number of seconds is left until the window's end: its answer
 *    says Remaining 0 with a delta rounded up, which then names that same
 *    end instead of one up to a second later (rule 4 holds the window until
 *    the end it names). A request that waits alone goes at once: then there
 *    may be no next window to gain, and the hold would only delay it.
 *
 * 7. Classes. Requests come in classes (API calls, storage PUTs). A class
 *    whose last answer on this host carried no rate-limit headers draws on no
 *    quota: its requests go without counting (only a Retry-After block holds
 *    them). A class counts until its first answer, and again as soon as one
 *    of its answers carries headers. A request counted that way leaves the
 *    flight with its answer, so it is off the count again (rule 3).
 *
 * 8. A 429 or 503 with Retry-After blocks every class until then: a delta
 *    from the time of receipt, an HTTP-date read against the answer's Date
 *    (hs_retry_after_parse), clamped to [1 s, 1 h], plus a spread: a draw
 *    uniform over [0, min(the wait, HS_RETRY_SPREAD_MAX_MS)], made once per
 *    block (an answer asking for no later than the block holds changes
 *    nothing). Agents that were told the same thing at the same time (a
 *    fleet behind an API that comes back, or a date) then return over as
 *    long as they were told to wait, never before they were told: with
 *    Retry-After: 120 a fleet comes back over 2 minutes instead of in one
 *    second (bench/fleet/). Before any headers were seen, requests go
 *    freely.
 *
 * Pure: every call takes the time (Unix ms, our clock), the server's Date
 * and the random value it needs, so it is tested exactly (tests/unit/
 * test_ratelimit.c simulates fixed-window servers over windows, reset
 * styles, clocks, storage and parallelism). No allocation; values from the
 * network are clamped so nothing overflows (counts to 2^40).
 */
#ifndef HS_AGENT_RATELIMIT_H
#define HS_AGENT_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HS_RETRY_AFTER_MIN_MS	     1000
#define HS_RETRY_AFTER_MAX_MS	     (3600 * 1000)
#define HS_RETRY_SPREAD_MAX_MS	     (240 * 1000)	  /* the most rule 8 adds */
#define HS_RATELIMIT_JITTER_PERMILLE 50			  /* of the window, rule 5 */
#define HS_RATELIMIT_JITTER_MAX_MS   60000		  /* rule 5's jitter at most */
#define HS_RATELIMIT_MAX_RESET_MS    (24 * 3600 * 1000LL) /* a reset further ahead is read as this */

enum hs_ratelimit_class {
	HS_RL_API,     /* API calls */
	HS_RL_STORAGE, /* presigned storage transfers */
	HS_RL_NCLASSES
};

struct hs_ratelimit_headers {
	bool has_limit, has_remaining, has_reset;
	int64_t limit;
	int64_t remaining;
	int64_t reset_ms; /* as sent, times 1000: Unix ms or ms from now */
};

struct hs_ratelimit {
	bool known;	       /* headers seen at least once */
	int64_t limit;	       /* requests per window, as last said */
	int64_t remaining;     /* left in the current window, by the server less our
				  requests since; >= 0 */
	int64_t reset_at;      /* our Unix ms when the current window ends (or is guessed
				  to); 0 when unknown */
	int64_t blocked_until; /* our Unix ms from Retry-After; 0 when not */
	int64_t next_at;       /* earliest time the next counted request may go, as of the
				  last hs_ratelimit_reserve */
	uint64_t sent;	       /* counted requests granted: their seqs are 1..sent */
	uint64_t throttled;    /* 429s seen, for status */

	/* Internals. */
	bool guessed;		    /* the current window is assumed, not said */
	bool quiet[HS_RL_NCLASSES]; /* the class's last answer had no headers */
	bool said_unix;		    /* the current window's reset came as a Unix time */
	bool said_whole;	    /* ... or as deltas, all in whole seconds */
	bool hold_set;		    /* hold_at holds a value */
	int64_t hold_at;	    /* when the window's last slot may go (rule 6) */
	int64_t said;		    /* its reset as said (Unix ms) or its first end (delta) */
	int64_t old_end;	    /* when guessed: the end of the window said last */
	int64_t window_ms;	    /* the longest window said */
	int64_t jitter_ms;	    /* added at the current end; -1 until drawn */
	bool offset_known;	    /* offset_ms holds a value */
	int64_t offset_ms;	    /* the server's clock less ours, from below */
	uint64_t in_flight;	    /* bit i: counted request sent - i not answered yet */
	int64_t said_left;	    /* the least Remaining said in the current window */
	uint64_t guess_seq;	    /* `sent` when the guessed window began */
	int64_t grant_at[64];	    /* when counted request seq was granted, at [seq % 64] */
};

/* What one answer said: headers (NULL or all absent: none) and its Date (the
 * server's Unix ms; -1 when absent). */
struct hs_ratelimit_answer {
	const struct hs_ratelimit_headers *h;
	int64_t date_ms;
};

void hs_ratelimit_init(struct hs_ratelimit *rl);

/* May a request of class cls go at now? Returns 0 and sets *ret_seq (pass it
 * back to hs_ratelimit_observe; 0 for a request that draws on no quota) when
 * it may, else the Unix ms time (> now) to ask again. rnd supplies the jitter
 * at a window's end; more_waiting says other requests wait behind this one
 * (rule 6). */
int64_t hs_ratelimit_reserve(struct hs_ratelimit *rl, enum hs_ratelimit_class cls, int64_t now,
			     uint64_t rnd, bool more_waiting, uint64_t *ret_seq);
/* Learns from the answer to request seq of class cls, received at now. Call
 * it once per granted request; with a NULL answer when no answer came (the
 * transfer failed), so the limiter knows it is no longer in flight. */
void hs_ratelimit_observe(struct hs_ratelimit *rl, uint64_t seq, enum hs_ratelimit_class cls,
			  int64_t now, const struct hs_ratelimit_answer *a);
/* A 429/503 said Retry-After: delay_ms from now, the time of receipt (clamped
 * again here); rnd draws the spread (rule 8). */
void hs_ratelimit_block(struct hs_ratelimit *rl, int64_t now, int64_t delay_ms, uint64_t rnd);
/* Holds nothing worth keeping at now: no block, no window in force, nothing
 * in flight. The caller also checks that nothing waits for it. */
bool hs_ratelimit_idle(const struct hs_ratelimit *rl, int64_t now);

/* Parses one header line as curl delivers it ("X-RateLimit-Remaining: 17\r\n")
 * into h; returns true if it was one of the three with a valid value (a
 * decimal integer >= 0 that fits, for Reset optionally with a fraction of up
 * to 3 digits, optional whitespace around it). The name is case-insensitive.
 * Anything else returns false and leaves h alone. */
bool hs_ratelimit_parse_header(struct hs_ratelimit_headers *h, const char *line, size_t len);
/* Retry-After as delta-seconds or an HTTP-date (curl_getdate), as a delay in
 * ms: an HTTP-date less server_now (the answer's Date, or our clock when it
 * had none), clamped to [HS_RETRY_AFTER_MIN_MS, HS_RETRY_AFTER_MAX_MS] (a
 * date in the past gives the minimum); -1 when the value is neither. */
int64_t hs_retry_after_parse(const char *value, int64_t server_now);
/* An answer's Date header (an HTTP-date, curl_getdate) in Unix ms; -1 when
 * it is none, or before 1970 or after 9999 (no clock says that, and the ms
 * would not fit). */
int64_t hs_http_date_parse(const char *value);

#endif
