/*
 * Rate-limit headers and Retry-After (agent/ratelimit.c), then the limiter
 * driven by them. The input is a list of lines as a server would send them.
 * Every line goes through hs_ratelimit_parse_header and hs_retry_after_parse,
 * whose answers must be in range; between lines the clock moves on by an
 * amount taken from the line, requests are reserved, and the headers read so
 * far are handed to hs_ratelimit_observe for the oldest request in flight
 * (with the Date a "Date:" line set, read by hs_http_date_parse), a Retry-After to
 * hs_ratelimit_block. Requests alternate between the API and storage
 * classes as the lines' lengths do. However hostile the values, the limiter
 * never keeps a negative count, never says "wait" for a time not after now,
 * and never makes a request wait longer than its caps allow.
 */
#include "config.h"

#include <stdbool.h>
#include <strings.h>

#include "agent/ratelimit.h"
#include "tests/fuzz/fuzz.h"

#define T0	 INT64_C(1767225600000) /* 2026-01-01T00:00:00Z, Unix ms */
#define MAX_WAIT (HS_RATELIMIT_MAX_RESET_MS + 3600 * 1000LL)

static void check_parsed(const struct hs_ratelimit_headers *h, const char *line)
{
	FUZZ_ASSERT(h->has_limit || h->has_remaining || h->has_reset,
		    "\"%s\" accepted but sets nothing", line);
	FUZZ_ASSERT(h->limit >= 0 && h->remaining >= 0 && h->reset_ms >= 0,
		    "\"%s\" read as a negative value", line);
	FUZZ_ASSERT(strncasecmp(line, "X-RateLimit-", 12) == 0,
		    "\"%s\" accepted as a rate-limit header", line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_string(data, size), *line = text, *end;
	struct hs_ratelimit rl;
	struct hs_ratelimit_headers h = {0};
	uint64_t flight[8], n_flight = 0, seq;
	enum hs_ratelimit_class cls[8], c;
	int64_t now = T0, date_ms = -1;

	hs_ratelimit_init(&rl);
	for (; line; line = end) {
		size_t len;
		int64_t delay, at;
		bool retry;
		struct hs_ratelimit_headers one = {0};

		end = strchr(line, '\n');
		if (end)
			*end++ = '\0';
		len = strlen(line);

		if (hs_ratelimit_parse_header(&one, line, len)) {
			check_parsed(&one, line);
			hs_ratelimit_parse_header(&h, line, len);
		}
		if (strncasecmp(line, "Date:", 5) == 0) {
			date_ms = hs_http_date_parse(line + 5);
			FUZZ_ASSERT(date_ms == -1 || (date_ms > 0 && date_ms % 1000 == 0),
				    "Date \"%s\" read as %lld", line, (long long)date_ms);
		}
		retry = strncasecmp(line, "Retry-After:", 12) == 0;
		delay = hs_retry_after_parse(retry ? line + 12 : line, now);
		FUZZ_ASSERT(delay == -1 ||
				(delay >= HS_RETRY_AFTER_MIN_MS && delay <= HS_RETRY_AFTER_MAX_MS),
			    "Retry-After \"%s\" gives %lld ms", line, (long long)delay);

		/* The clock: up to about 10 s on, from the line's first bytes. */
		now += (int64_t)((len ? (unsigned char)line[0] : 0) * 40 +
				 (len > 1 ? (unsigned char)line[1] : 0));
		c = len % 2 ? HS_RL_STORAGE : HS_RL_API;
		at = hs_ratelimit_reserve(&rl, c, now, (uint64_t)len * 2654435761u, len & 2, &seq);
		FUZZ_ASSERT(at == 0 || at > now, "reserve at %lld says wait until %lld",
			    (long long)now, (long long)at);
		FUZZ_ASSERT(at - now <= MAX_WAIT, "reserve at %lld says wait %lld ms",
			    (long long)now, (long long)(at - now));
		if (at == 0 && n_flight < sizeof(flight) / sizeof(flight[0])) {
			cls[n_flight] = c;
			flight[n_flight++] = seq;
		} else if (at == 0) {
			hs_ratelimit_observe(&rl, seq, c, now, NULL);
		}

		/* An empty line ends a response: the oldest request gets it. */
		if (len == 0 && n_flight > 0) {
			struct hs_ratelimit_answer a = {.h = &h, .date_ms = date_ms};
			hs_ratelimit_observe(&rl, flight[0], cls[0], now, &a);
			memmove(flight, flight + 1, (size_t)(n_flight - 1) * sizeof(flight[0]));
			memmove(cls, cls + 1, (size_t)(n_flight - 1) * sizeof(cls[0]));
			n_flight--;
			h = (struct hs_ratelimit_headers){0};
			FUZZ_ASSERT(rl.remaining >= 0, "remaining %lld", (long long)rl.remaining);
		} else if (retry && delay > 0) {
			hs_ratelimit_block(&rl, now, delay, (uint64_t)delay * 0x9e3779b97f4a7c15u);
			FUZZ_ASSERT(rl.blocked_until > now &&
					rl.blocked_until - now <=
					    HS_RETRY_AFTER_MAX_MS + HS_RETRY_SPREAD_MAX_MS,
				    "blocked from %lld until %lld", (long long)now,
				    (long long)rl.blocked_until);
		}
	}
	while (n_flight > 0) {
		struct hs_ratelimit_answer a = {.h = &h, .date_ms = date_ms};
		n_flight--;
		hs_ratelimit_observe(&rl, flight[n_flight], cls[n_flight], now, &a);
	}
	FUZZ_ASSERT(rl.remaining >= 0, "remaining %lld", (long long)rl.remaining);
	free(text);
	return 0;
}
