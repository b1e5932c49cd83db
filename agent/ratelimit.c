/* ratelimit: the server's view of a host's quota, and pacing by it. */
#include "config.h"

#include <ctype.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "agent/ratelimit.h"

#define MAX_COUNT     (1LL << 40) /* limits and counts beyond are absurd: clamp */
#define UNIX_RESET    1000000000LL
#define SAME_DELTA_MS 1500 /* resets said as deltas this close: one window */
#define SAME_UNIX_MS  500  /* said as Unix seconds: equal, but for the rounding */
#define PAST_RESET_MS 1000
#define MIN_WINDOW_MS 1000
#define MAX_LATE_MS   (5 * 60 * 1000) /* the most a server's windows may end after it says */
#define UNIX_AIM_MS   500	      /* pace to this before a Unix-time reset */
#define LEN_MARGIN_MS 2		      /* past a start and a length learned: our clock's ms */
#define SAY_STEP_MS   1000	      /* resets are said in whole seconds */
#define MAX_STRIKES   2		      /* learned lengths proved short: then none */
#define UNKNOWN	      INT64_MAX

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

static int64_t sat_add(int64_t a, int64_t b)
{
	if (b > 0 && a > INT64_MAX - b)
		return INT64_MAX;
	if (b < 0 && a < INT64_MIN - b)
		return INT64_MIN;
	return a + b;
}

static int64_t sat_sub(int64_t a, int64_t b)
{
	if (b == INT64_MIN)
		return a >= 0 ? INT64_MAX : a - b;
	return sat_add(a, -b);
}

static int popcount64(uint64_t v)
{
	int n = 0;

	for (; v; v &= v - 1)
		n++;
	return n;
}

void hs_ratelimit_init(struct hs_ratelimit *rl)
{
	memset(rl, 0, sizeof(*rl));
	rl->jitter_ms = -1;
	rl->last_grant = INT64_MIN;
	rl->late_seen_at = INT64_MIN;
	rl->window_ms = MIN_WINDOW_MS;
	rl->len_ms = UNKNOWN;
	rl->win_seen = INT64_MIN;
	rl->win_sent = INT64_MIN;
}

static int64_t jitter(struct hs_ratelimit *rl, uint64_t rnd)
{
	if (rl->jitter_ms < 0) {
		int64_t max = rl->window_ms / 50;
		if (max > HS_RATELIMIT_JITTER_MS)
			max = HS_RATELIMIT_JITTER_MS;
		rl->jitter_ms = (int64_t)(rnd % (uint64_t)(max + 1));
	}
	return rl->jitter_ms;
}

/* When the next request may go (<= now: at once), moving to a guessed fresh
 * window when the current one is over. */
static int64_t earliest(struct hs_ratelimit *rl, int64_t now, uint64_t rnd)
{
	if (now >= rl->reset_at) {
		int64_t wake = sat_add(rl->reset_at, jitter(rl, rnd));
		if (now < wake)
			return wake;
		if (!rl->guessed)
			rl->guess_by_length = rl->by_length;
		rl->guessed = true;
		rl->guess_seq = rl->sent;
		rl->remaining = rl->limit - popcount64(rl->in_flight);
		if (rl->remaining < 1)
			rl->remaining = 1; /* a limit of 0: still one try per window */
		rl->reset_at = sat_add(now, rl->window_ms);
		rl->by_length = false;
		rl->jitter_ms = -1;
		rl->last_grant = INT64_MIN;
	}
	if (rl->remaining <= 0)
		return sat_add(rl->reset_at, jitter(rl, rnd));
	if (rl->last_grant == INT64_MIN || rl->last_grant >= rl->reset_at)
		return now;
	/* A Unix-time reset says only the second the window ends in: aim the
	 * spreading at the middle of it (not needed when the end came from the
	 * window's start and length instead). */
	int64_t target = rl->reset_at;
	if (rl->said_unix && !rl->guessed && !rl->by_length) {
		int64_t x = rl->window_ms / 10 < UNIX_AIM_MS ? rl->window_ms / 10 : UNIX_AIM_MS;
		if (rl->last_grant < target - x)
			target -= x;
	}
	return sat_add(rl->last_grant, sat_sub(target, rl->last_grant) / (rl->remaining + 1));
}

int64_t hs_ratelimit_reserve(struct hs_ratelimit *rl, int64_t now, uint64_t rnd, uint64_t *ret_seq)
{
	int64_t at = now;

	if (rl->blocked_until > now)
		at = rl->blocked_until;
	else if (rl->known)
		at = earliest(rl, now, rnd);
	if (at > now) {
		rl->next_at = at;
		return at;
	}
	rl->blocked_until = 0;
	rl->sent++;
	rl->grant_at[rl->sent % 64] = now;
	rl->in_flight = rl->in_flight << 1 | 1;
	rl->last_grant = now;
	if (rl->known)
		rl->remaining--;
	/* Cannot move to a new window: reset_at is ahead of now here. */
	rl->next_at = rl->known ? earliest(rl, now, rnd) : now;
	*ret_seq = rl->sent;
	return 0;
}

void hs_ratelimit_block(struct hs_ratelimit *rl, int64_t now, int64_t delay_ms)
{
	int64_t until =
	    sat_add(now, clamp64(delay_ms, HS_RETRY_AFTER_MIN_MS, HS_RETRY_AFTER_MAX_MS));

	if (until > rl->blocked_until)
		rl->blocked_until = until;
	/* The answer just observed showed the window running past its
	 * reset: the server says how much longer. */
	if (rl->known && rl->late_seen_at == now) {
		int64_t late = clamp64(sat_sub(until, rl->said_at), 0, MAX_LATE_MS);
		if (late > rl->late_ms[rl->said_unix])
			rl->late_ms[rl->said_unix] = late;
		if (until > rl->reset_at) {
			rl->reset_at = until;
			rl->by_length = false;
		}
		rl->late_seen_at = INT64_MIN;
	}
}

/* When a window said to end at `said` (Unix ms) does end, conservatively. */
static int64_t window_end(const struct hs_ratelimit *rl, bool unix_, int64_t said, int64_t now)
{
	int64_t end = sat_add(said, rl->late_ms[unix_]);

	if (end <= now)
		end = sat_add(now, PAST_RESET_MS);
	if (sat_sub(end, now) > HS_RATELIMIT_MAX_RESET_MS)
		end = sat_add(now, HS_RATELIMIT_MAX_RESET_MS);
	return end;
}

/* Takes a new window's news. */
static void adopt(struct hs_ratelimit *rl, uint64_t seq, int64_t now, int64_t said, bool unix_,
		  int64_t end, int64_t limit, int64_t left, int64_t remaining)
{
	int64_t est = sat_sub(end, now);

	rl->known = true;
	rl->guessed = false;
	rl->said_at = said;
	rl->said_unix = unix_;
	rl->reset_at = end;
	rl->by_length = false;
	rl->win_seen = now; /* it began before this answer came */
	rl->win_sent = INT64_MIN;
	rl->limit = limit;
	rl->remaining = left;
	rl->answered_seq = seq;
	rl->jitter_ms = -1;
	/* Its first request tells the window's length best; else the longest. */
	if (remaining >= limit - 1 || est > rl->window_ms)
		rl->window_ms = est;
	if (rl->window_ms < MIN_WINDOW_MS)
		rl->window_ms = MIN_WINDOW_MS;
}

/* What the answer to seq, from the current window, tells of the window's
 * start, and its end by that start and the length learned. */
static void learn_start(struct hs_ratelimit *rl, uint64_t seq, int64_t now, int64_t said,
			bool unix_, int64_t limit, int64_t remaining)
{
	int64_t granted, end;

	if (rl->sent - seq >= 64 || rl->win_seen == INT64_MIN)
		return;
	granted = rl->grant_at[seq % 64];
	/* A delta was rounded up from less than a second more than when the
	 * request was granted: a window that long ends later than learned,
	 * so the server's windows changed. */
	if (!unix_ && rl->len_ms != UNKNOWN &&
	    sat_add(rl->len_ms, LEN_MARGIN_MS) <
		sat_sub(sat_add(granted, sat_sub(said, now)), sat_add(rl->win_seen, SAY_STEP_MS)))
		rl->len_ms = UNKNOWN;
	/* The request the window counted first began it, after it was
	 * granted. */
	if (limit >= 2 && remaining == limit - 1 && rl->win_sent == INT64_MIN &&
	    granted <= rl->win_seen)
		rl->win_sent = granted;
	if (rl->len_ms == UNKNOWN)
		return;
	end = sat_add(sat_add(rl->win_seen, rl->len_ms), LEN_MARGIN_MS);
	if (end < rl->reset_at && end > now) {
		rl->reset_at = end;
		rl->by_length = true;
	}
	if (rl->len_ms < rl->window_ms)
		rl->window_ms = rl->len_ms < MIN_WINDOW_MS ? MIN_WINDOW_MS : rl->len_ms;
}

void hs_ratelimit_observe(struct hs_ratelimit *rl, uint64_t seq, int64_t now,
			  const struct hs_ratelimit_headers *h)
{
	uint64_t since, older = 0;
	int64_t limit, remaining, said, end, left;
	bool unix_;

	if (seq == 0 || seq > rl->sent)
		return; /* not a request this limiter granted */
	since = rl->sent - seq;
	if (since < 64) {
		rl->in_flight &= ~(1ULL << since);
		if (since < 63)
			older = (uint64_t)popcount64(rl->in_flight >> (since + 1));
	}
	if (!h || !h->has_remaining || !h->has_reset)
		return;

	remaining = clamp64(h->remaining, 0, MAX_COUNT);
	limit = h->has_limit ? clamp64(h->limit, 0, MAX_COUNT)
			     : (rl->limit > remaining ? rl->limit : remaining);
	if (remaining > limit)
		remaining = limit;
	if (since > (uint64_t)MAX_COUNT)
		since = (uint64_t)MAX_COUNT;
	left = remaining - (int64_t)since - (int64_t)older;
	if (left < 0)
		left = 0;

	unix_ = h->reset >= UNIX_RESET;
	if (unix_)
		said = h->reset > INT64_MAX / 1000 ? INT64_MAX : h->reset * 1000;
	else
		said = sat_add(now, clamp64(h->reset, 0, HS_RATELIMIT_MAX_RESET_MS / 1000) * 1000);
	end = window_end(rl, unix_, said, now);

	int64_t tol = unix_ && rl->said_unix ? SAME_UNIX_MS : SAME_DELTA_MS;
	if (!rl->known || sat_sub(said, rl->said_at) >= tol) {
		/* A later window: the one in use had ended before this one
		 * began, so it lasted at most from its first grant to now. */
		if (rl->known && rl->win_sent != INT64_MIN && rl->len_strikes < MAX_STRIKES &&
		    sat_sub(now, rl->win_sent) < rl->len_ms)
			rl->len_ms = sat_sub(now, rl->win_sent);
		adopt(rl, seq, now, said, unix_, end, limit, left, remaining);
		learn_start(rl, seq, now, said, unix_, limit, remaining);
		return;
	}
	if (sat_sub(rl->said_at, said) >= tol)
		return; /* an older window's news, arriving late */

	/* The window already in use. */
	if (rl->guessed || now >= rl->reset_at) {
		/* We took it for over. A request sent since that still landed
		 * in it shows the server had not moved on: believe the server. */
		if (rl->guessed && seq > rl->guess_seq) {
			/* Sent after the end we took from the length learned:
			 * the windows are longer, or do not begin with their
			 * first request. Learn it anew; twice, and no more. */
			if (rl->guess_by_length) {
				rl->len_ms = UNKNOWN;
				rl->len_strikes++;
			}
			/* Sent after the reset it said: the server's windows
			 * end later than it says (its clock is behind ours,
			 * or it rounds down), by about this much at least. A
			 * Retry-After with this answer tells the rest
			 * (hs_ratelimit_block). */
			if (rl->sent - seq >= 64 ||
			    rl->grant_at[seq % 64] >= sat_add(rl->said_at, rl->late_ms[unix_])) {
				int64_t late = clamp64(sat_sub(now, rl->said_at), 0, MAX_LATE_MS);
				if (late > rl->late_ms[unix_])
					rl->late_ms[unix_] = late;
				rl->late_seen_at = now;
			}
			end = window_end(rl, unix_, said, now);
			adopt(rl, seq, now, said, unix_, end, limit, left, remaining);
		}
		return;
	}
	if (said < rl->said_at)
		rl->said_at = said;
	if (end < rl->reset_at) {
		rl->reset_at = end;
		rl->by_length = false;
	}
	learn_start(rl, seq, now, said, unix_, limit, remaining);
	if (seq > rl->answered_seq) {
		rl->answered_seq = seq;
		rl->limit = limit;
	} else if (seq == rl->answered_seq) {
		return; /* the same answer again */
	}
	/* Each answer takes the older requests answered before it for counted
	 * before it, which is wrong for those that overtook it on the way; it
	 * is right for the one counted last, which says the least. */
	if (left < rl->remaining)
		rl->remaining = left;
}

/* ---- parsing ------------------------------------------------------------- */

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* A non-negative decimal that fits int64, the whole of [s, e). */
static bool parse_count(const char *s, const char *e, int64_t *ret)
{
	int64_t v = 0;

	if (s == e)
		return false;
	for (; s < e; s++) {
		if (*s < '0' || *s > '9')
			return false;
		int d = *s - '0';
		if (v > (INT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*ret = v;
	return true;
}

static bool name_is(const char *s, size_t n, const char *name)
{
	size_t i;

	if (n != strlen(name))
		return false;
	for (i = 0; i < n; i++)
		if (tolower((unsigned char)s[i]) != tolower((unsigned char)name[i]))
			return false;
	return true;
}

bool hs_ratelimit_parse_header(struct hs_ratelimit_headers *h, const char *line, size_t len)
{
	const char *colon, *s, *e;
	int64_t v;

	if (!line)
		return false;
	colon = memchr(line, ':', len);
	if (!colon)
		return false;
	s = colon + 1;
	e = line + len;
	if (e > s && e[-1] == '\n')
		e--;
	if (e > s && e[-1] == '\r')
		e--;
	while (s < e && is_ows(*s))
		s++;
	while (e > s && is_ows(e[-1]))
		e--;

	size_t n = (size_t)(colon - line);
	if (name_is(line, n, "X-RateLimit-Limit")) {
		if (!parse_count(s, e, &v))
			return false;
		h->limit = v;
		h->has_limit = true;
	} else if (name_is(line, n, "X-RateLimit-Remaining")) {
		if (!parse_count(s, e, &v))
			return false;
		h->remaining = v;
		h->has_remaining = true;
	} else if (name_is(line, n, "X-RateLimit-Reset")) {
		if (!parse_count(s, e, &v))
			return false;
		h->reset = v;
		h->has_reset = true;
	} else {
		return false;
	}
	return true;
}

int64_t hs_retry_after_parse(const char *value, int64_t now)
{
	const char *s = value, *e;
	int64_t secs, ms;

	if (!value)
		return -1;
	e = s + strlen(s);
	while (s < e && is_ows(*s))
		s++;
	while (e > s && (is_ows(e[-1]) || e[-1] == '\r' || e[-1] == '\n'))
		e--;
	if (s == e)
		return -1;
	if (*s >= '0' && *s <= '9') {
		/* delta-seconds: digits only; any number of them. */
		secs = 0;
		for (const char *p = s; p < e; p++) {
			if (*p < '0' || *p > '9')
				return -1;
			if (secs < HS_RETRY_AFTER_MAX_MS / 1000)
				secs = secs * 10 + (*p - '0');
		}
		ms = secs >= HS_RETRY_AFTER_MAX_MS / 1000 ? HS_RETRY_AFTER_MAX_MS : secs * 1000;
	} else {
		/* An HTTP-date starts with the day's name. */
		char buf[64];
		time_t t;

		if (!isalpha((unsigned char)*s) || (size_t)(e - s) >= sizeof(buf))
			return -1;
		memcpy(buf, s, (size_t)(e - s));
		buf[e - s] = '\0';
		t = curl_getdate(buf, NULL);
		if (t == (time_t)-1)
			return -1;
		/* Compare in seconds first: no overflow whatever t is. */
		int64_t now_s = now / 1000;
		if ((int64_t)t <= now_s - 1)
			return HS_RETRY_AFTER_MIN_MS;
		if ((int64_t)t - now_s > HS_RETRY_AFTER_MAX_MS / 1000 + 1)
			return HS_RETRY_AFTER_MAX_MS;
		ms = (int64_t)t * 1000 - now;
	}
	return clamp64(ms, HS_RETRY_AFTER_MIN_MS, HS_RETRY_AFTER_MAX_MS);
}
