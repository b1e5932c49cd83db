/* ratelimit: the server's view of a host's quota (rules in ratelimit.h). */
#include "config.h"

#include <ctype.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "agent/ratelimit.h"

#define MAX_COUNT     (1LL << 40) /* limits and counts beyond are absurd: clamp */
#define UNIX_RESET_MS (1000000000LL * 1000)
#define SAY_STEP_MS   1000 /* resets and Dates are said in whole seconds */
#define SAME_DELTA_MS 1500 /* delta ends closer: one window (rounding, transit) */
#define MIN_WINDOW_MS 1000

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
	rl->window_ms = MIN_WINDOW_MS;
}

/* Rule 5: the most a window's end may be spread by. */
static int64_t max_jitter(const struct hs_ratelimit *rl)
{
	if (rl->window_ms >= HS_RATELIMIT_JITTER_MAX_MS / HS_RATELIMIT_JITTER_PERMILLE * 1000)
		return HS_RATELIMIT_JITTER_MAX_MS;
	return rl->window_ms * HS_RATELIMIT_JITTER_PERMILLE / 1000;
}

static int64_t jitter(struct hs_ratelimit *rl, uint64_t rnd)
{
	if (rl->jitter_ms < 0)
		rl->jitter_ms = (int64_t)(rnd % (uint64_t)(max_jitter(rl) + 1));
	return rl->jitter_ms;
}

/* Rule 6: when the window's last slot may go. */
static int64_t last_slot_at(struct hs_ratelimit *rl, int64_t now, bool more_waiting)
{
	if (!rl->said_whole || rl->guessed || !more_waiting)
		return now;
	if (!rl->hold_set) {
		int64_t left = sat_sub(rl->reset_at, now);
		rl->hold_at = left >= SAY_STEP_MS
				  ? sat_sub(rl->reset_at, left / SAY_STEP_MS * SAY_STEP_MS)
				  : now;
		rl->hold_set = true;
	}
	return rl->hold_at > now ? rl->hold_at : now;
}

/* When the next counted request may go (<= now: at once); rule 5 when the
 * window is spent and over. */
static int64_t earliest(struct hs_ratelimit *rl, int64_t now, uint64_t rnd, bool more_waiting)
{
	int64_t wake;

	if (rl->remaining > 1)
		return now;
	if (rl->remaining == 1)
		return last_slot_at(rl, now, more_waiting);
	wake = sat_add(rl->reset_at, jitter(rl, rnd));
	if (now < wake)
		return wake;
	if (!rl->guessed)
		rl->old_end = rl->reset_at;
	rl->guessed = true;
	rl->guess_seq = rl->sent;
	rl->remaining = rl->limit - popcount64(rl->in_flight);
	if (rl->remaining < 1)
		rl->remaining = 1; /* a limit of 0: still one try per window */
	rl->reset_at = sat_add(now, rl->window_ms);
	rl->jitter_ms = -1;
	rl->said_whole = false;
	rl->hold_set = false;
	return now;
}

int64_t hs_ratelimit_reserve(struct hs_ratelimit *rl, enum hs_ratelimit_class cls, int64_t now,
			     uint64_t rnd, bool more_waiting, uint64_t *ret_seq)
{
	int64_t at = now;

	if ((unsigned)cls >= HS_RL_NCLASSES)
		cls = HS_RL_API;
	if (rl->blocked_until > now)
		at = rl->blocked_until;
	else if (rl->quiet[cls]) {
		*ret_seq = 0; /* draws on no quota */
		return 0;
	} else if (rl->known)
		at = earliest(rl, now, rnd, more_waiting);
	if (at > now) {
		rl->next_at = at;
		return at;
	}
	rl->sent++;
	rl->grant_at[rl->sent % 64] = now;
	rl->in_flight = rl->in_flight << 1 | 1;
	if (rl->known)
		rl->remaining--;
	/* Not more_waiting: the last slot's hold is pinned when it is asked for. */
	rl->next_at = rl->known ? earliest(rl, now, rnd, false) : now;
	*ret_seq = rl->sent;
	return 0;
}

void hs_ratelimit_block(struct hs_ratelimit *rl, int64_t now, int64_t delay_ms, uint64_t rnd)
{
	int64_t delay = clamp64(delay_ms, HS_RETRY_AFTER_MIN_MS, HS_RETRY_AFTER_MAX_MS);
	int64_t asked = sat_add(now, delay), spread;

	if (asked <= rl->blocked_until)
		return; /* the block in force covers it: no new draw */
	spread = delay < HS_RETRY_SPREAD_MAX_MS ? delay : HS_RETRY_SPREAD_MAX_MS;
	rl->blocked_until = sat_add(asked, (int64_t)(rnd % (uint64_t)(spread + 1)));
}

bool hs_ratelimit_idle(const struct hs_ratelimit *rl, int64_t now)
{
	return rl->blocked_until <= now && rl->in_flight == 0 &&
	       (!rl->known || sat_add(rl->reset_at, max_jitter(rl)) <= now);
}

/* Rule 1: the server's clock less ours, from below. */
static void learn_offset(struct hs_ratelimit *rl, int64_t date_ms, int64_t now, int64_t granted)
{
	int64_t lo = sat_sub(date_ms, now);

	if (!rl->offset_known || lo > rl->offset_ms ||
	    (granted != INT64_MIN &&
	     sat_sub(sat_add(date_ms, SAY_STEP_MS), granted) < rl->offset_ms))
		rl->offset_ms = lo;
	rl->offset_known = true;
}

static void adopt(struct hs_ratelimit *rl, int64_t now, bool unix_, bool whole, int64_t said,
		  int64_t end, int64_t limit, int64_t remaining)
{
	rl->known = true;
	rl->guessed = false;
	rl->said_unix = unix_;
	rl->said_whole = !unix_ && whole;
	rl->hold_set = false;
	rl->said = said;
	rl->reset_at = end;
	rl->limit = limit;
	rl->said_left = remaining;
	rl->jitter_ms = -1;
	if (sat_sub(end, now) > rl->window_ms)
		rl->window_ms = sat_sub(end, now);
}

void hs_ratelimit_observe(struct hs_ratelimit *rl, uint64_t seq, enum hs_ratelimit_class cls,
			  int64_t now, const struct hs_ratelimit_answer *a)
{
	const struct hs_ratelimit_headers *h = a ? a->h : NULL;
	bool said_any = h && (h->has_limit || h->has_remaining || h->has_reset);
	int64_t granted = INT64_MIN, limit, remaining, said, end;
	uint64_t since = 0;
	bool unix_, whole;

	if ((unsigned)cls >= HS_RL_NCLASSES)
		cls = HS_RL_API;
	if (seq > rl->sent)
		return; /* not a request this limiter granted */
	if (seq > 0) {
		since = rl->sent - seq;
		if (since < 64) {
			granted = rl->grant_at[seq % 64];
			rl->in_flight &= ~(1ULL << since);
		}
	}
	if (!a)
		goto recount;	    /* no answer: teaches nothing */
	rl->quiet[cls] = !said_any; /* rule 7 */
	if (a->date_ms >= 0)
		learn_offset(rl, a->date_ms, now, granted);
	if (seq == 0 || !h->has_remaining || !h->has_reset)
		goto recount;

	remaining = clamp64(h->remaining, 0, MAX_COUNT);
	limit = h->has_limit ? clamp64(h->limit, 0, MAX_COUNT)
			     : (rl->limit > remaining ? rl->limit : remaining);
	if (remaining > limit)
		remaining = limit;

	/* Rule 1. */
	unix_ = h->reset_ms >= UNIX_RESET_MS;
	whole = h->reset_ms % SAY_STEP_MS == 0;
	if (unix_) {
		said = h->reset_ms;
		end = sat_sub(said, rl->offset_known ? rl->offset_ms : 0);
	} else {
		said = end = sat_add(now, clamp64(h->reset_ms, 0, HS_RATELIMIT_MAX_RESET_MS));
	}
	end = clamp64(end, now, sat_add(now, HS_RATELIMIT_MAX_RESET_MS));
	if (!unix_)
		said = end;

	/* Rule 2. */
	if (!rl->known || unix_ != rl->said_unix ||
	    (unix_ ? said > rl->said : said >= sat_add(rl->said, SAME_DELTA_MS))) {
		adopt(rl, now, unix_, whole, said, end, limit, remaining);
		goto recount;
	}
	if (unix_ ? said < rl->said : said <= sat_sub(rl->said, SAME_DELTA_MS))
		goto recount; /* an older window's news, arriving late */

	/* The window said last. */
	if (rl->guessed) {
		if (seq <= rl->guess_seq)
			goto recount; /* sent in it, answered late */
		/* Sent after its end, and still counted in it (rule 5). */
		rl->guessed = false;
		rl->said = said;
		rl->reset_at = rl->old_end > end ? rl->old_end : end;
		rl->said_left = remaining;
		rl->limit = limit;
		rl->jitter_ms = -1;
		rl->said_whole = !unix_ && whole;
		rl->hold_set = false;
		goto recount;
	}
	if (remaining < rl->said_left)
		rl->said_left = remaining;
	rl->said_whole = rl->said_whole && whole;
	if (remaining == 0 && end > rl->reset_at) { /* rule 4 */
		rl->reset_at = end;
		rl->jitter_ms = -1;
	}
	rl->limit = limit;
recount:
	/* Rule 3 (a guessed window counts down from its guess instead). */
	if (rl->known && !rl->guessed) {
		rl->remaining = rl->said_left - popcount64(rl->in_flight);
		if (rl->remaining < 0)
			rl->remaining = 0;
	}
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
		/* Seconds, perhaps with up to 3 decimals ("1.25"). */
		const char *dot = memchr(s, '.', (size_t)(e - s));
		int64_t frac = 0;
		if (!parse_count(s, dot ? dot : e, &v) || v > INT64_MAX / 1000)
			return false;
		if (dot) {
			int digits = 0;
			for (const char *p = dot + 1; p < e; p++, digits++) {
				if (*p < '0' || *p > '9' || digits == 3)
					return false;
				frac = frac * 10 + (*p - '0');
			}
			if (digits == 0)
				return false;
			for (; digits < 3; digits++)
				frac *= 10;
		}
		h->reset_ms = v * 1000 + frac;
		h->has_reset = true;
	} else {
		return false;
	}
	return true;
}

int64_t hs_retry_after_parse(const char *value, int64_t server_now)
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
		int64_t now = server_now, now_s = now / 1000;
		if ((int64_t)t <= now_s - 1)
			return HS_RETRY_AFTER_MIN_MS;
		if ((int64_t)t - now_s > HS_RETRY_AFTER_MAX_MS / 1000 + 1)
			return HS_RETRY_AFTER_MAX_MS;
		ms = (int64_t)t * 1000 - now;
	}
	return clamp64(ms, HS_RETRY_AFTER_MIN_MS, HS_RETRY_AFTER_MAX_MS);
}

int64_t hs_http_date_parse(const char *value)
{
	time_t t = curl_getdate(value, NULL);

	return t > 0 && (int64_t)t <= INT64_C(253402300799) ? (int64_t)t * 1000 : -1;
}
