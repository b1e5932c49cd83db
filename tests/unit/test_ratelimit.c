/* The rate limiter: header parsing, Retry-After, the accounting of requests
 * in flight, pacing, resets, the window length learned, blocks, hostile
 * values, and a simulated upload run against a fixed-window server that must
 * see no avoidable 429 and no window taken for over before its end. */
#include "config.h"

#include <inttypes.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "agent/ratelimit.h"

#define T0 INT64_C(1767225600000) /* 2026-01-01T00:00:00Z, Unix ms */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* splitmix64 */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static int64_t rnd_range(int64_t lo, int64_t hi)
{
	return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

static struct hs_ratelimit_headers hdr(int64_t limit, int64_t remaining, int64_t reset)
{
	return (struct hs_ratelimit_headers){.has_limit = limit >= 0,
					     .has_remaining = true,
					     .has_reset = true,
					     .limit = limit,
					     .remaining = remaining,
					     .reset = reset};
}

static uint64_t grant(struct hs_ratelimit *rl, int64_t now)
{
	uint64_t seq = 0;

	assert_int_equal(hs_ratelimit_reserve(rl, now, 0, &seq), 0);
	assert_true(seq == rl->sent);
	return seq;
}

static int64_t ceil_div_us(int64_t a, int64_t b)
{
	return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}

/* reserve says wait, until exactly `at` */
static void expect_wait(struct hs_ratelimit *rl, int64_t now, int64_t at)
{
	uint64_t seq = 12345;
	int64_t got = hs_ratelimit_reserve(rl, now, 0, &seq);

	if (got != at)
		print_message("# reserve(%" PRId64 ") = %" PRId64 ", expected %" PRId64 "\n",
			      now - T0, got ? got - T0 : 0, at - T0);
	assert_true(got == at);
	assert_true(seq == 12345);
}

/* ---- parsing ---------------------------------------------------------------- */

static bool parse(struct hs_ratelimit_headers *h, const char *line)
{
	return hs_ratelimit_parse_header(h, line, strlen(line));
}

static void test_parse_header(void **state)
{
	struct hs_ratelimit_headers h = {0};

	(void)state;
	assert_true(parse(&h, "X-RateLimit-Limit: 30\r\n"));
	assert_true(h.has_limit && h.limit == 30);
	assert_true(parse(&h, "x-ratelimit-remaining:17\r\n"));
	assert_true(h.has_remaining && h.remaining == 17);
	assert_true(parse(&h, "X-RATELIMIT-RESET: \t 1767225605 \t\r\n"));
	assert_true(h.has_reset && h.reset == 1767225605);
	assert_true(parse(&h, "X-RateLimit-Remaining: 0\n"));
	assert_true(h.remaining == 0);
	assert_true(parse(&h, "X-RateLimit-Remaining: 007"));
	assert_true(h.remaining == 7);
	assert_true(parse(&h, "X-RateLimit-Limit: 9223372036854775807\r\n"));
	assert_true(h.limit == INT64_MAX);
	/* Only len bytes count. */
	assert_true(hs_ratelimit_parse_header(&h, "X-RateLimit-Reset: 42garbage", 21));
	assert_true(h.reset == 42);
}

static void test_parse_header_refused(void **state)
{
	static const char *bad[] = {
	    "X-RateLimit-Remaining: -1\r\n",
	    "X-RateLimit-Remaining: +1\r\n",
	    "X-RateLimit-Remaining: 1.5\r\n",
	    "X-RateLimit-Remaining: 1e3\r\n",
	    "X-RateLimit-Remaining: 0x10\r\n",
	    "X-RateLimit-Remaining: 12 13\r\n",
	    "X-RateLimit-Remaining: 12a\r\n",
	    "X-RateLimit-Remaining:\r\n",
	    "X-RateLimit-Remaining:   \r\n",
	    "X-RateLimit-Remaining: 9223372036854775808\r\n",
	    "X-RateLimit-Remaining: 99999999999999999999999999\r\n",
	    "X-RateLimit-Remaining : 5\r\n",
	    " X-RateLimit-Remaining: 5\r\n",
	    "X-RateLimit-Remainingx: 5\r\n",
	    "X-RateLimit: 5\r\n",
	    "X-RateLimit-Remaining 5\r\n",
	    "Retry-After: 5\r\n",
	    "HTTP/1.1 200 OK\r\n",
	    "\r\n",
	    "",
	};
	struct hs_ratelimit_headers h = hdr(1, 2, 3), before = h;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(&h, bad[i]))
			print_message("# accepted: %s\n", bad[i]);
		assert_false(parse(&h, bad[i]));
		assert_memory_equal(&h, &before, sizeof(h));
	}
	/* A NUL inside the value. */
	assert_false(hs_ratelimit_parse_header(&h, "X-RateLimit-Limit: 1\0002\r\n", 24));
	assert_false(hs_ratelimit_parse_header(&h, "X-RateLimit-Limit: 5", 0));
	assert_false(hs_ratelimit_parse_header(&h, NULL, 0));
	assert_memory_equal(&h, &before, sizeof(h));
}

static void test_retry_after(void **state)
{
	time_t date = curl_getdate("Wed, 21 Oct 2015 07:28:00 GMT", NULL);
	int64_t d = (int64_t)date * 1000;

	(void)state;
	assert_true(date == 1445412480);
	assert_int_equal(hs_retry_after_parse("120", T0), 120000);
	assert_int_equal(hs_retry_after_parse(" 5 ", T0), 5000);
	assert_int_equal(hs_retry_after_parse("0", T0), HS_RETRY_AFTER_MIN_MS);
	assert_int_equal(hs_retry_after_parse("1", T0), 1000);
	assert_int_equal(hs_retry_after_parse("3600", T0), HS_RETRY_AFTER_MAX_MS);
	assert_int_equal(hs_retry_after_parse("3601", T0), HS_RETRY_AFTER_MAX_MS);
	assert_int_equal(hs_retry_after_parse("9223372036854775808", T0), HS_RETRY_AFTER_MAX_MS);
	assert_int_equal(hs_retry_after_parse("99999999999999999999999999999999", T0),
			 HS_RETRY_AFTER_MAX_MS);
	assert_int_equal(hs_retry_after_parse("000000000000000000000000000000002", T0), 2000);
	/* The three HTTP-date forms. */
	assert_int_equal(hs_retry_after_parse("Wed, 21 Oct 2015 07:28:00 GMT", d - 120000), 120000);
	assert_int_equal(hs_retry_after_parse("Wednesday, 21-Oct-15 07:28:00 GMT", d - 90500),
			 90500);
	assert_int_equal(hs_retry_after_parse("Wed Oct 21 07:28:00 2015", d - 2000), 2000);
	/* Past, now, a hair ahead, far ahead. */
	assert_int_equal(hs_retry_after_parse("Wed, 21 Oct 2015 07:28:00 GMT", d + 86400000),
			 HS_RETRY_AFTER_MIN_MS);
	assert_int_equal(hs_retry_after_parse("Wed, 21 Oct 2015 07:28:00 GMT", d),
			 HS_RETRY_AFTER_MIN_MS);
	assert_int_equal(hs_retry_after_parse("Wed, 21 Oct 2015 07:28:00 GMT", d - 1500), 1500);
	assert_int_equal(hs_retry_after_parse("Thu, 01 Jan 1970 00:00:00 GMT", T0),
			 HS_RETRY_AFTER_MIN_MS);
	assert_int_equal(hs_retry_after_parse("Wed, 21 Oct 2015 07:28:00 GMT", INT64_MIN),
			 HS_RETRY_AFTER_MAX_MS);
	assert_int_equal(hs_retry_after_parse("Wed, 21 Oct 2015 07:28:00 GMT", INT64_MAX),
			 HS_RETRY_AFTER_MIN_MS);
	assert_int_equal(hs_retry_after_parse("Fri, 31 Dec 9999 23:59:59 GMT", T0),
			 HS_RETRY_AFTER_MAX_MS);
	/* Neither. */
	static const char *bad[] = {"",
				    "   ",
				    "soon",
				    "-5",
				    "+5",
				    "5s",
				    "1.5",
				    "5 6",
				    "0x10",
				    "1e3",
				    "Wed, 99 Foo 2015 99:99:99 GMT",
				    "in a minute"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (hs_retry_after_parse(bad[i], T0) != -1)
			print_message("# accepted: '%s'\n", bad[i]);
		assert_int_equal(hs_retry_after_parse(bad[i], T0), -1);
	}
	assert_int_equal(hs_retry_after_parse(NULL, T0), -1);
	char longer[200];
	memset(longer, 'a', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	assert_int_equal(hs_retry_after_parse(longer, T0), -1);
}

/* ---- the limiter ----------------------------------------------------------- */

static void test_free_before_headers(void **state)
{
	struct hs_ratelimit rl;

	(void)state;
	hs_ratelimit_init(&rl);
	assert_false(rl.known);
	for (uint64_t i = 1; i <= 1000; i++)
		assert_true(grant(&rl, T0) == i);
	/* Responses without headers teach nothing. */
	struct hs_ratelimit_headers none = {0};
	hs_ratelimit_observe(&rl, 1, T0 + 5, &none);
	hs_ratelimit_observe(&rl, 2, T0 + 5, NULL);
	struct hs_ratelimit_headers partial = {
	    .has_limit = true, .limit = 1, .has_remaining = true};
	hs_ratelimit_observe(&rl, 3, T0 + 5, &partial);
	assert_false(rl.known);
	grant(&rl, T0 + 5);
	assert_int_equal(rl.reset_at, 0);
}

static void test_header_example(void **state)
{
	struct hs_ratelimit rl;
	struct hs_ratelimit_headers h = hdr(30, 20, 5);

	(void)state;
	hs_ratelimit_init(&rl);
	/* Four go at once, before any headers. */
	for (int i = 0; i < 4; i++)
		grant(&rl, T0);
	/* The first says 20 left: three more were sent after it, 17. */
	hs_ratelimit_observe(&rl, 1, T0 + 10, &h);
	assert_true(rl.known);
	assert_int_equal(rl.limit, 30);
	assert_int_equal(rl.remaining, 17);
	assert_true(rl.reset_at == T0 + 5010);
	/* The last grant was at T0: 17 spread over 5.01 s, 278 ms apart. */
	expect_wait(&rl, T0 + 10, T0 + 5010 / 18);
	grant(&rl, T0 + 278);
	/* Remaining 20 with nothing in flight since: 238 ms apart. */
	hs_ratelimit_init(&rl);
	grant(&rl, T0);
	hs_ratelimit_observe(&rl, 1, T0, &h);
	assert_int_equal(rl.remaining, 20);
	expect_wait(&rl, T0, T0 + 238);
	expect_wait(&rl, T0 + 237, T0 + 238);
	grant(&rl, T0 + 238);
	/* 19 left over 4762 ms: 238 again; the rest evenly up to the reset. */
	int64_t t = T0 + 238;
	for (int i = 0; i < 19; i++) {
		int64_t at = t + (T0 + 5000 - t) / (rl.remaining + 1);
		expect_wait(&rl, t, at);
		grant(&rl, at);
		t = at;
	}
	assert_int_equal(rl.remaining, 0);
	assert_true(t < T0 + 5000 && t > T0 + 4700);
	/* Then the reset, plus a jitter of 0 (rnd 0). */
	expect_wait(&rl, t, T0 + 5000);
	grant(&rl, T0 + 5000);
	/* 30, less the 20 still in flight, less this one. */
	assert_int_equal(rl.remaining, 30 - 20 - 1);
}

static void test_in_flight_accounting(void **state)
{
	struct hs_ratelimit rl;
	struct hs_ratelimit_headers h;

	(void)state;
	hs_ratelimit_init(&rl);
	for (int i = 0; i < 4; i++)
		grant(&rl, T0);
	/* Request 4 answers first: 1..3 may not have been counted yet. */
	h = hdr(30, 26, 5);
	hs_ratelimit_observe(&rl, 4, T0 + 10, &h);
	assert_int_equal(rl.remaining, 23);
	assert_true(rl.answered_seq == 4);
	/* Older answers of the same window are older news: ignored. */
	h = hdr(30, 29, 5);
	hs_ratelimit_observe(&rl, 1, T0 + 11, &h);
	assert_int_equal(rl.remaining, 23);
	assert_true(rl.answered_seq == 4);
	/* Paced: 23 over 5010 ms from T0, 208 ms apart. */
	expect_wait(&rl, T0 + 11, T0 + 208);
	/* Two more go; the answer to 5 says 24: 6 is not counted, 2 and 3 may
	 * not be (still in flight), 1 and 4 are. */
	grant(&rl, T0 + 300);
	grant(&rl, T0 + 600);
	h = hdr(30, 24, 5);
	hs_ratelimit_observe(&rl, 5, T0 + 610, &h);
	assert_int_equal(rl.remaining, 24 - 1 - 2);
	/* Failed transfers leave the flight too. */
	hs_ratelimit_observe(&rl, 2, T0 + 620, NULL);
	hs_ratelimit_observe(&rl, 3, T0 + 620, &(struct hs_ratelimit_headers){0});
	hs_ratelimit_observe(&rl, 6, T0 + 630, NULL);
	assert_true(rl.in_flight == 0);
	h = hdr(30, 20, 5);
	grant(&rl, T0 + 800);
	hs_ratelimit_observe(&rl, 7, T0 + 810, &h);
	assert_int_equal(rl.remaining, 20);
	/* A count that goes up within the window (a request the server never
	 * counted) is believed from the next window on. */
	h = hdr(30, 22, 5);
	grant(&rl, T0 + 1000);
	hs_ratelimit_observe(&rl, 8, T0 + 1010, &h);
	assert_int_equal(rl.remaining, 19);
	assert_true(rl.answered_seq == 8);
	/* Unknown sequence numbers are ignored. */
	h = hdr(30, 0, 5);
	hs_ratelimit_observe(&rl, 0, T0 + 1020, &h);
	hs_ratelimit_observe(&rl, 99, T0 + 1020, &h);
	assert_int_equal(rl.remaining, 19);
	/* Four go before any headers and reach the server out of order:
	 * 4, 1, 3, 2. The answer to 4 (counted first) takes 1, answered, for
	 * counted before it; the answers to 1 and 2 say the least. */
	hs_ratelimit_init(&rl);
	for (int i = 0; i < 4; i++)
		grant(&rl, T0);
	h = hdr(4, 2, 13);
	hs_ratelimit_observe(&rl, 1, T0 + 4, &h);
	assert_int_equal(rl.remaining, 0);
	h = hdr(4, 3, 13);
	hs_ratelimit_observe(&rl, 4, T0 + 6, &h);
	assert_int_equal(rl.remaining, 0);
	h = hdr(4, 1, 13);
	hs_ratelimit_observe(&rl, 3, T0 + 9, &h);
	h = hdr(4, 0, 13);
	hs_ratelimit_observe(&rl, 2, T0 + 11, &h);
	assert_int_equal(rl.remaining, 0);
	assert_true(rl.answered_seq == 4);
	expect_wait(&rl, T0 + 11, T0 + 13004);
	/* Three go; 2 is counted last and answered before 3, which takes it
	 * for counted before it: the answer to 2 stands. */
	hs_ratelimit_init(&rl);
	for (int i = 0; i < 3; i++)
		grant(&rl, T0);
	h = hdr(3, 2, 11);
	hs_ratelimit_observe(&rl, 1, T0 + 13, &h);
	h = hdr(3, 0, 11);
	hs_ratelimit_observe(&rl, 2, T0 + 23, &h);
	assert_int_equal(rl.remaining, 0);
	h = hdr(3, 1, 11);
	hs_ratelimit_observe(&rl, 3, T0 + 28, &h);
	assert_int_equal(rl.remaining, 0);
	assert_true(rl.answered_seq == 3);
}

static void test_same_window_tightens(void **state)
{
	struct hs_ratelimit rl;
	struct hs_ratelimit_headers h;

	(void)state;
	hs_ratelimit_init(&rl);
	grant(&rl, T0);
	/* Said at T0+5 with "5": ends by T0+5005. */
	h = hdr(30, 29, 5);
	hs_ratelimit_observe(&rl, 1, T0 + 5, &h);
	assert_true(rl.reset_at == T0 + 5005);
	/* Later answers round up from later instants: a later bound, kept out. */
	grant(&rl, T0 + 300);
	h = hdr(30, 28, 5);
	hs_ratelimit_observe(&rl, 2, T0 + 1300, &h);
	assert_true(rl.reset_at == T0 + 5005);
	assert_int_equal(rl.remaining, 28);
	grant(&rl, T0 + 1400);
	h = hdr(30, 27, 4);
	hs_ratelimit_observe(&rl, 3, T0 + 2400, &h);
	assert_true(rl.reset_at == T0 + 5005);
	assert_int_equal(rl.remaining, 27);
	/* An earlier one tightens. */
	grant(&rl, T0 + 2500);
	h = hdr(30, 26, 2);
	hs_ratelimit_observe(&rl, 4, T0 + 2510, &h);
	assert_true(rl.reset_at == T0 + 4510);
	assert_int_equal(rl.remaining, 26);
	/* Unix-time resets: the same second is the same window. */
	hs_ratelimit_init(&rl);
	grant(&rl, T0);
	h = hdr(30, 29, T0 / 1000 + 5);
	hs_ratelimit_observe(&rl, 1, T0 + 5, &h);
	assert_true(rl.reset_at == T0 + 5000);
	grant(&rl, T0 + 200);
	h = hdr(30, 28, T0 / 1000 + 6);
	hs_ratelimit_observe(&rl, 2, T0 + 205, &h); /* a second later: a new window */
	assert_true(rl.said_at == T0 + 6000);
	assert_int_equal(rl.remaining, 28);
	/* The first began after T0 (its first request was granted then) and
	 * ended before T0 + 205: windows last 205 ms at most, and this one
	 * began by T0 + 205. */
	assert_true(rl.len_ms == 205);
	assert_true(rl.reset_at == T0 + 205 + 205 + 2);
	assert_true(rl.by_length);
}

/* A server's fixed window of 3 requests, in microseconds: begun by the
 * first request after the last one ended. skew_us: its clock minus ours;
 * next_len_us: the length of the windows begun from now on, when set. */
struct fixed_window {
	int64_t skew_us, start_us, len_us, next_len_us;
	int count;
	bool open;
};

/* A request reaching the server at `at_us` (our clock); the headers it gets. */
static struct hs_ratelimit_headers fw_take(struct fixed_window *fw, int64_t at_us, bool unix_)
{
	int64_t ts = at_us + fw->skew_us;

	if (!fw->open || ts >= fw->start_us + fw->len_us) {
		fw->open = true;
		fw->start_us = ts;
		fw->count = 0;
		if (fw->next_len_us)
			fw->len_us = fw->next_len_us;
	}
	if (fw->count < 3)
		fw->count++;
	int64_t end = fw->start_us + fw->len_us;
	return hdr(3, 3 - fw->count,
		   unix_ ? ceil_div_us(end, 1000000) : ceil_div_us(end - ts, 1000000));
}

/* The current window's end in our clock, us. */
static int64_t fw_end(const struct fixed_window *fw)
{
	return fw->start_us + fw->len_us - fw->skew_us;
}

static void test_length_learned(void **state)
{
	struct hs_ratelimit rl;
	struct hs_ratelimit_headers h;
	struct fixed_window fw = {.len_us = 5000000};
	const int64_t U = T0 * 1000; /* T0 in us */
	uint64_t s;

	(void)state;
	hs_ratelimit_init(&rl);
	/* Granted at T0 + 300, it reaches the server at +303.4 ms and begins
	 * a window that ends at +5303.4: said as the second T0 + 6 s. */
	grant(&rl, T0 + 300);
	h = fw_take(&fw, U + 303400, true);
	hs_ratelimit_observe(&rl, 1, T0 + 306, &h);
	assert_true(rl.reset_at == T0 + 6000 && !rl.by_length);
	assert_true(rl.win_sent == T0 + 300 && rl.win_seen == T0 + 306);
	assert_true(rl.len_ms == INT64_MAX);
	/* Two more, paced towards the middle of the said second. */
	expect_wait(&rl, T0 + 306, T0 + 300 + 5200 / 3);
	grant(&rl, T0 + 2033);
	h = fw_take(&fw, U + 2035000, true);
	hs_ratelimit_observe(&rl, 2, T0 + 2037, &h);
	grant(&rl, T0 + 3766);
	h = fw_take(&fw, U + 3768000, true);
	hs_ratelimit_observe(&rl, 3, T0 + 3770, &h);
	assert_int_equal(rl.remaining, 0);
	expect_wait(&rl, T0 + 3770, T0 + 6000);
	/* The next begins a window at +6002.7 that ends at +11002.7 (said:
	 * +12 s). The one before had ended by the time its answer came:
	 * windows last at most 6005 - 300 ms, so this one ends by 6005 +
	 * 5705 + 2. */
	grant(&rl, T0 + 6000);
	h = fw_take(&fw, U + 6002700, true);
	hs_ratelimit_observe(&rl, 4, T0 + 6005, &h);
	assert_true(rl.len_ms == 5705);
	assert_true(rl.reset_at == T0 + 11712 && rl.by_length);
	assert_true(rl.reset_at * 1000 >= fw_end(&fw));
	/* Paced to that end itself, not to a second's middle. */
	expect_wait(&rl, T0 + 6005, T0 + 6000 + 5712 / 3);
	/* A request granted late reaches the server after the true end,
	 * before the one taken: a new window, so windows last at most
	 * 11106 - 6000 ms. */
	grant(&rl, T0 + 11100);
	h = fw_take(&fw, U + 11103000, true);
	hs_ratelimit_observe(&rl, 5, T0 + 11106, &h);
	assert_true(rl.len_ms == 5106);
	assert_true(rl.reset_at == T0 + 11106 + 5106 + 2 && rl.by_length);
	assert_true(rl.reset_at * 1000 >= fw_end(&fw));

	/* The same with the server's clock 2.5 s ahead of ours: its resets
	 * say later seconds; the length is learned in our clock all the
	 * same. */
	hs_ratelimit_init(&rl);
	fw = (struct fixed_window){.len_us = 5000000, .skew_us = 2500000};
	grant(&rl, T0 + 300);
	h = fw_take(&fw, U + 303400, true);
	hs_ratelimit_observe(&rl, 1, T0 + 306, &h);
	assert_true(rl.reset_at == T0 + 8000); /* the window ends at +5303.4 */
	grant(&rl, T0 + 5400);
	h = fw_take(&fw, U + 5402700, true);
	hs_ratelimit_observe(&rl, 2, T0 + 5405, &h);
	assert_true(rl.len_ms == 5105);
	assert_true(rl.reset_at == T0 + 5405 + 5105 + 2 && rl.by_length);
	assert_true(rl.reset_at < T0 + 11000); /* sooner than said */
	assert_true(rl.reset_at * 1000 >= fw_end(&fw));

	/* The server's windows grow to 9 s from the next one on. The end
	 * taken from the length is then too soon: a request sent then lands
	 * in the old window (a 429). The length is forgotten, the said reset
	 * stands, and no lateness is learned: the reset was not wrong. */
	grant(&rl, T0 + 7104);
	h = fw_take(&fw, U + 7106000, true);
	hs_ratelimit_observe(&rl, 3, T0 + 7108, &h);
	grant(&rl, T0 + 8808);
	h = fw_take(&fw, U + 8810000, true);
	hs_ratelimit_observe(&rl, 4, T0 + 8812, &h);
	expect_wait(&rl, T0 + 8812, T0 + 10512);
	fw.next_len_us = 9000000;
	grant(&rl, T0 + 10512);
	h = fw_take(&fw, U + 10514000, true); /* ends at +19514, said +23 s */
	hs_ratelimit_observe(&rl, 5, T0 + 10516, &h);
	assert_true(rl.reset_at == T0 + 10516 + 5105 + 2 && rl.by_length);
	grant(&rl, T0 + 12215);
	h = fw_take(&fw, U + 12217000, true);
	hs_ratelimit_observe(&rl, 6, T0 + 12219, &h);
	grant(&rl, T0 + 13919);
	h = fw_take(&fw, U + 13921000, true);
	hs_ratelimit_observe(&rl, 7, T0 + 13923, &h);
	expect_wait(&rl, T0 + 13923, T0 + 15623);
	s = grant(&rl, T0 + 15623);
	h = fw_take(&fw, U + 15625000, true);
	assert_int_equal(fw.count, 3); /* a 429 */
	hs_ratelimit_observe(&rl, s, T0 + 15627, &h);
	hs_ratelimit_block(&rl, T0 + 15627, hs_retry_after_parse("4", T0 + 15627));
	assert_true(rl.len_ms == INT64_MAX && rl.len_strikes == 1);
	assert_true(rl.late_ms[1] == 0 && rl.late_ms[0] == 0);
	assert_true(rl.reset_at == T0 + 23000 && !rl.by_length);
	assert_true(rl.blocked_until == T0 + 19627);
	/* Once proved short twice (the count set here), it is learned no
	 * more. */
	rl.len_strikes = 2;
	expect_wait(&rl, T0 + 19627, T0 + 23000);
	grant(&rl, T0 + 23000);
	h = fw_take(&fw, U + 23002000, true); /* ends at +32002, said +35 s */
	hs_ratelimit_observe(&rl, 9, T0 + 23004, &h);
	grant(&rl, T0 + 26833);
	grant(&rl, T0 + 30666);
	expect_wait(&rl, T0 + 30666, T0 + 35000);
	grant(&rl, T0 + 35000);
	h = fw_take(&fw, U + 35002000, true);
	hs_ratelimit_observe(&rl, 12, T0 + 35004, &h);
	assert_true(rl.len_ms == INT64_MAX && !rl.by_length);

	/* Delta resets. Windows of 4.3 s say "5": a request past the true
	 * end, before the said one, shows the length. */
	hs_ratelimit_init(&rl);
	fw = (struct fixed_window){.len_us = 4300000};
	grant(&rl, T0);
	h = fw_take(&fw, U + 2000, false);
	hs_ratelimit_observe(&rl, 1, T0 + 4, &h);
	assert_true(rl.reset_at == T0 + 5004);
	grant(&rl, T0 + 4400);
	h = fw_take(&fw, U + 4402000, false);
	hs_ratelimit_observe(&rl, 2, T0 + 4404, &h);
	assert_true(rl.len_ms == 4404);
	assert_true(rl.reset_at == T0 + 4404 + 4404 + 2 && rl.by_length);
	assert_true(rl.reset_at < T0 + 9404); /* sooner than said */
	assert_true(rl.reset_at * 1000 >= fw_end(&fw));
	/* The windows grow to 8 s: the first answer from one says "8" from a
	 * request granted 4 ms before, a window longer than learned. It is
	 * forgotten before any 429. */
	fw.next_len_us = 8000000;
	expect_wait(&rl, T0 + 4404, T0 + 4400 + 4410 / 3);
	s = grant(&rl, T0 + 8810);
	h = fw_take(&fw, U + 8812000, false);
	hs_ratelimit_observe(&rl, s, T0 + 8814, &h);
	assert_true(rl.len_ms == INT64_MAX && !rl.by_length);
	assert_true(rl.reset_at == T0 + 16814);
	assert_true(rl.reset_at * 1000 >= fw_end(&fw));
	assert_true(rl.len_strikes == 0);
}

static void test_new_window_out_of_order(void **state)
{
	struct hs_ratelimit rl;
	struct hs_ratelimit_headers h;

	(void)state;
	hs_ratelimit_init(&rl);
	grant(&rl, T0);
	h = hdr(10, 0, T0 / 1000 + 5);
	hs_ratelimit_observe(&rl, 1, T0 + 5, &h);
	expect_wait(&rl, T0 + 5, T0 + 5000);
	expect_wait(&rl, T0 + 4999, T0 + 5000);
	uint64_t a = grant(&rl, T0 + 5000);
	/* The rest of the guessed fresh window (4995 ms) is paced. */
	assert_true(rl.guessed);
	assert_int_equal(rl.remaining, 9);
	expect_wait(&rl, T0 + 5001, T0 + 5000 + 4995 / 10);
	int64_t t = T0 + 5000 + 4995 / 10;
	uint64_t b = grant(&rl, t);
	/* b's answer comes first, from the new window. */
	h = hdr(10, 8, T0 / 1000 + 10);
	hs_ratelimit_observe(&rl, b, t + 5, &h);
	assert_false(rl.guessed);
	assert_true(rl.reset_at == T0 + 10000);
	assert_int_equal(rl.remaining, 7); /* a may not be counted yet */
	/* a's answer, late, from the window before: ignored. */
	h = hdr(10, 0, T0 / 1000 + 5);
	hs_ratelimit_observe(&rl, a, t + 6, &h);
	assert_true(rl.reset_at == T0 + 10000);
	assert_int_equal(rl.remaining, 7);
	/* A lower seq that reports the later window is news all the same. */
	hs_ratelimit_init(&rl);
	grant(&rl, T0);
	grant(&rl, T0);
	h = hdr(10, 0, T0 / 1000 + 5);
	hs_ratelimit_observe(&rl, 2, T0 + 3, &h);
	h = hdr(10, 9, T0 / 1000 + 9);
	hs_ratelimit_observe(&rl, 1, T0 + 4, &h);
	assert_true(rl.reset_at == T0 + 9000);
	assert_int_equal(rl.remaining, 8); /* 2 may count in it too */
}

static void test_block(void **state)
{
	struct hs_ratelimit rl;
	struct hs_ratelimit_headers h;

	(void)state;
	hs_ratelimit_init(&rl);
	/* Before any headers too. */
	hs_ratelimit_block(&rl, T0, 30000);
	expect_wait(&rl, T0, T0 + 30000);
	expect_wait(&rl, T0 + 29999, T0 + 30000);
	grant(&rl, T0 + 30000);
	/* A shorter block does not shorten a longer one. */
	hs_ratelimit_block(&rl, T0 + 30000, 60000);
	hs_ratelimit_block(&rl, T0 + 31000, 2000);
	assert_true(rl.blocked_until == T0 + 90000);
	/* Clamped. */
	hs_ratelimit_init(&rl);
	hs_ratelimit_block(&rl, T0, 0);
	assert_true(rl.blocked_until == T0 + HS_RETRY_AFTER_MIN_MS);
	hs_ratelimit_block(&rl, T0, -5);
	assert_true(rl.blocked_until == T0 + HS_RETRY_AFTER_MIN_MS);
	hs_ratelimit_block(&rl, T0, INT64_MAX);
	assert_true(rl.blocked_until == T0 + HS_RETRY_AFTER_MAX_MS);
	/* A 429 with headers, then Retry-After shorter than the reset: the
	 * reset rules; longer: the block does. */
	hs_ratelimit_init(&rl);
	grant(&rl, T0);
	h = hdr(30, 0, 20);
	hs_ratelimit_observe(&rl, 1, T0 + 10, &h);
	rl.throttled++;
	hs_ratelimit_block(&rl, T0 + 10, hs_retry_after_parse("5", T0 + 10));
	expect_wait(&rl, T0 + 10, T0 + 5010);
	expect_wait(&rl, T0 + 5010, T0 + 20010);
	hs_ratelimit_block(&rl, T0 + 5010, hs_retry_after_parse("60", T0 + 5010));
	expect_wait(&rl, T0 + 20010, T0 + 65010);
	grant(&rl, T0 + 65010);
}

static void test_jitter_bound(void **state)
{
	static const int64_t windows[] = {1, 2, 5, 10, 12, 13, 60, 3600};

	(void)state;
	for (size_t w = 0; w < sizeof(windows) / sizeof(windows[0]); w++) {
		int64_t bound = windows[w] * 1000 / 50;
		int64_t worst = 0;
		if (bound > HS_RATELIMIT_JITTER_MS)
			bound = HS_RATELIMIT_JITTER_MS;
		rng_state = (uint64_t)w;
		for (int i = 0; i < 300; i++) {
			struct hs_ratelimit rl;
			struct hs_ratelimit_headers h = hdr(5, 4, windows[w]);
			uint64_t seq;
			hs_ratelimit_init(&rl);
			grant(&rl, T0);
			hs_ratelimit_observe(&rl, 1, T0, &h);
			h = hdr(5, 0, windows[w]);
			hs_ratelimit_observe(&rl, 1, T0, &h); /* same seq: ignored */
			assert_int_equal(rl.remaining, 4);
			rl.remaining = 0;
			uint64_t r = i == 0 ? UINT64_MAX : rnd();
			int64_t at = hs_ratelimit_reserve(&rl, T0 + 1, r, &seq);
			int64_t end = T0 + windows[w] * 1000;
			assert_true(at >= end && at <= end + bound);
			if (at - end > worst)
				worst = at - end;
			/* Drawn once: asking again with other randomness, same answer. */
			assert_true(hs_ratelimit_reserve(&rl, T0 + 2, rnd(), &seq) == at);
			if (at > end)
				assert_true(hs_ratelimit_reserve(&rl, end, rnd(), &seq) == at);
			assert_int_equal(hs_ratelimit_reserve(&rl, at, rnd(), &seq), 0);
		}
		/* The whole range is used. */
		assert_true(worst >= bound * 9 / 10);
	}
}

static void test_guessed_windows(void **state)
{
	struct hs_ratelimit rl;
	struct hs_ratelimit_headers h = hdr(10, 9, 2);
	int64_t t = T0;

	(void)state;
	hs_ratelimit_init(&rl);
	grant(&rl, t);
	hs_ratelimit_observe(&rl, 1, t + 5, &h);
	assert_int_equal(rl.window_ms, 2000);
	/* Then the server stops sending headers. For a minute: ten per two
	 * seconds, never more, never stalled, never a wait in the past. */
	int per_window[40] = {0};
	int64_t last = t;
	while (t < T0 + 60000) {
		uint64_t seq;
		int64_t at = hs_ratelimit_reserve(&rl, t, rnd(), &seq);
		if (at == 0) {
			per_window[(t - T0) / 2000]++;
			hs_ratelimit_observe(&rl, seq, t + 3, NULL);
			last = t;
			continue;
		}
		assert_true(at > t && at <= t + 2000 + 40);
		t = at;
	}
	assert_true(last > T0 + 58000);
	int total = 0;
	for (int i = 0; i < 30; i++)
		total += per_window[i];
	assert_true(total >= 10 * 30 * 95 / 100 && total <= 10 * 30 + 10);
	/* With requests in flight at the reset, the guess counts them used. */
	hs_ratelimit_init(&rl);
	grant(&rl, T0);
	h = hdr(10, 5, 2);
	hs_ratelimit_observe(&rl, 1, T0 + 5, &h);
	for (int i = 0; i < 5; i++) {
		uint64_t seq;
		int64_t at = hs_ratelimit_reserve(&rl, T0 + 5, 0, &seq);
		if (at)
			grant(&rl, at);
		else
			assert_true(seq == rl.sent);
	}
	assert_int_equal(rl.remaining, 0);
	uint64_t seq;
	assert_int_equal(hs_ratelimit_reserve(&rl, T0 + 2005, 0, &seq), 0);
	assert_int_equal(rl.remaining, 10 - 5 - 1);
	assert_true(rl.guessed);
}

static void test_reset_in_the_past(void **state)
{
	struct hs_ratelimit rl;
	struct hs_ratelimit_headers h;

	(void)state;
	/* Unix time ten seconds ago, nothing left: within the second. */
	hs_ratelimit_init(&rl);
	grant(&rl, T0);
	h = hdr(30, 0, T0 / 1000 - 10);
	hs_ratelimit_observe(&rl, 1, T0 + 7, &h);
	assert_true(rl.reset_at == T0 + 1007);
	expect_wait(&rl, T0 + 7, T0 + 1007);
	grant(&rl, T0 + 1007);
	/* A delta of 0, likewise. */
	hs_ratelimit_init(&rl);
	grant(&rl, T0);
	h = hdr(30, 0, 0);
	hs_ratelimit_observe(&rl, 1, T0 + 7, &h);
	expect_wait(&rl, T0 + 7, T0 + 1007);
	/* Reset said as the epoch: also "now". */
	hs_ratelimit_init(&rl);
	grant(&rl, T0);
	h = hdr(30, 0, 1000000000);
	hs_ratelimit_observe(&rl, 1, T0 + 7, &h);
	expect_wait(&rl, T0 + 7, T0 + 1007);
	/* The server still counts in a window we took for over (its clock
	 * is behind): the first answer from the guessed window says so. */
	hs_ratelimit_init(&rl);
	grant(&rl, T0);
	h = hdr(3, 0, T0 / 1000 + 1);
	hs_ratelimit_observe(&rl, 1, T0 + 5, &h);
	uint64_t s = grant(&rl, T0 + 1000);
	assert_true(rl.guessed);
	h = hdr(3, 0, T0 / 1000 + 1); /* a 429 from the old window */
	hs_ratelimit_observe(&rl, s, T0 + 1010, &h);
	assert_false(rl.guessed);
	assert_int_equal(rl.remaining, 0);
	/* It counted at least until 10 ms after, for every window said as a
	 * Unix time from now on; this one ends within the second. */
	assert_int_equal(rl.late_ms[1], 10);
	assert_int_equal(rl.late_ms[0], 0);
	assert_true(rl.reset_at == T0 + 2010);
	/* The 429's Retry-After says how much longer it runs: 1 s at most. */
	hs_ratelimit_block(&rl, T0 + 1010, hs_retry_after_parse("1", T0 + 1010));
	assert_int_equal(rl.late_ms[1], 1010);
	assert_true(rl.reset_at == T0 + 2010);
	expect_wait(&rl, T0 + 1010, T0 + 2010);
	grant(&rl, T0 + 2010);
	h = hdr(3, 2, T0 / 1000 + 3);
	hs_ratelimit_observe(&rl, 3, T0 + 2020, &h);
	assert_true(rl.reset_at == T0 + 4010);
	/* Only a Retry-After that comes with such an answer teaches. */
	hs_ratelimit_block(&rl, T0 + 2020, 60000);
	assert_int_equal(rl.late_ms[1], 1010);
	assert_true(rl.reset_at == T0 + 4010);
	/* Learning is capped. */
	hs_ratelimit_init(&rl);
	grant(&rl, T0);
	h = hdr(3, 0, 1000000000);
	hs_ratelimit_observe(&rl, 1, T0, &h);
	s = grant(&rl, T0 + 1000);
	hs_ratelimit_observe(&rl, s, T0 + 1000, &h);
	assert_int_equal(rl.late_ms[1], 5 * 60 * 1000);
	assert_true(rl.reset_at == T0 + 2000); /* the epoch + 5 min: long past */
}

static void test_limit_changes(void **state)
{
	struct hs_ratelimit rl;
	struct hs_ratelimit_headers h;

	(void)state;
	hs_ratelimit_init(&rl);
	grant(&rl, T0);
	h = hdr(30, 0, 5);
	hs_ratelimit_observe(&rl, 1, T0, &h);
	grant(&rl, T0 + 5000);
	h = hdr(60, 59, 10); /* a new window, a bigger quota */
	hs_ratelimit_observe(&rl, 2, T0 + 5010, &h);
	assert_int_equal(rl.limit, 60);
	assert_int_equal(rl.remaining, 59);
	assert_int_equal(rl.window_ms, 10000);
	/* Cut mid-window: believed at once. */
	grant(&rl, T0 + 5200);
	h = hdr(20, 3, 10);
	hs_ratelimit_observe(&rl, 3, T0 + 5210, &h);
	assert_int_equal(rl.limit, 20);
	assert_int_equal(rl.remaining, 3);
	/* Without a Limit header: the largest Remaining stands in. */
	hs_ratelimit_init(&rl);
	grant(&rl, T0);
	h = hdr(-1, 7, 5);
	hs_ratelimit_observe(&rl, 1, T0, &h);
	assert_int_equal(rl.limit, 7);
	/* Remaining above Limit counts as Limit. */
	hs_ratelimit_init(&rl);
	grant(&rl, T0);
	h = hdr(10, 500, 5);
	hs_ratelimit_observe(&rl, 1, T0, &h);
	assert_int_equal(rl.remaining, 10);
	/* A limit of 0: one try per window, no spin. */
	hs_ratelimit_init(&rl);
	grant(&rl, T0);
	h = hdr(0, 0, 5);
	hs_ratelimit_observe(&rl, 1, T0, &h);
	expect_wait(&rl, T0, T0 + 5000);
	grant(&rl, T0 + 5000);
	uint64_t seq;
	int64_t at = hs_ratelimit_reserve(&rl, T0 + 5000, 0, &seq);
	assert_true(at >= T0 + 10000);
}

static void test_hostile_values(void **state)
{
	static const int64_t values[] = {0,
					 1,
					 999999999,
					 1000000000,
					 4102444800,
					 INT64_MAX / 1000,
					 INT64_MAX / 1000 + 1,
					 INT64_MAX - 1,
					 INT64_MAX};
	const size_t n = sizeof(values) / sizeof(values[0]);

	(void)state;
	rng_state = 3;
	for (size_t a = 0; a < n; a++)
		for (size_t b = 0; b < n; b++)
			for (size_t c = 0; c < n; c++) {
				struct hs_ratelimit rl;
				struct hs_ratelimit_headers h =
				    hdr(values[a], values[b], values[c]);
				int64_t now = T0;
				hs_ratelimit_init(&rl);
				grant(&rl, now);
				grant(&rl, now);
				hs_ratelimit_observe(&rl, 2, now, &h);
				hs_ratelimit_observe(&rl, 1, now, &h);
				assert_true(rl.reset_at > now &&
					    rl.reset_at <= now + HS_RATELIMIT_MAX_RESET_MS);
				assert_true(rl.remaining <= (1LL << 40));
				for (int i = 0; i < 50; i++) {
					uint64_t seq;
					int64_t at = hs_ratelimit_reserve(&rl, now, rnd(), &seq);
					if (at == 0) {
						hs_ratelimit_observe(&rl, seq, now, &h);
						continue;
					}
					assert_true(at > now);
					assert_true(at <= now + HS_RATELIMIT_MAX_RESET_MS +
							      HS_RATELIMIT_JITTER_MS);
					now = at;
				}
			}
	/* Times at the edges of int64 do not overflow either. */
	struct hs_ratelimit rl;
	struct hs_ratelimit_headers h = hdr(INT64_MAX, INT64_MAX, INT64_MAX);
	hs_ratelimit_init(&rl);
	grant(&rl, INT64_MAX - 10);
	hs_ratelimit_observe(&rl, 1, INT64_MAX - 10, &h);
	h = hdr(INT64_MAX, 0, 999999999);
	hs_ratelimit_observe(&rl, 1, INT64_MAX - 10, &h);
	hs_ratelimit_init(&rl);
	grant(&rl, INT64_MIN);
	h = hdr(5, 0, INT64_MAX);
	hs_ratelimit_observe(&rl, 1, INT64_MIN, &h);
	h = hdr(5, 0, 3);
	grant(&rl, INT64_MIN);
	hs_ratelimit_observe(&rl, 2, INT64_MIN + 1, &h);
}

/* ---- the simulated run ------------------------------------------------------- */

/* The server runs in microseconds, so its windows begin at any fraction of
 * a millisecond; the limiter sees whole milliseconds, as from hs_wall_ms. */
struct sim {
	bool unix_reset;   /* Reset as Unix seconds (rounded up), else delta (rounded up) */
	int limit;	   /* the server's N per window */
	int64_t window_ms; /* and W */
	int workers;	   /* requests in flight at most */
	int64_t lat_min;   /* one-way latency, ms */
	int64_t lat_max;
	int64_t skew_ms;     /* the server's clock minus ours */
	int files, per_file; /* small files and their requests each */
	int64_t window_us;   /* added to the window: a fraction of a ms */
	bool aligned;	     /* windows begin at multiples of W, not at their first request */
};

struct sim_result {
	int64_t elapsed;     /* first request to last answer */
	int rejected;	     /* 429s */
	int rejected_late;   /* 429s to requests sent after the first answer */
	int max_counted;     /* the most one server window counted */
	int64_t max_jitter;  /* the longest wait past a known reset */
	int64_t last_429;    /* when the last 429 came, from the start */
	int early;	     /* windows the limiter took to end before they did */
	int early_by_length; /* of which by the length learned */
	int64_t last_early;  /* when it last did, from the start */
	int by_length;	     /* answers after which the end came from the length learned */
};

struct sim_req {
	bool used, arrived, after_first;
	uint64_t seq;
	int worker;
	int64_t arrive_at, resp_at; /* us */
	int status;
	int window;	 /* the server window it landed in, 1.. */
	int64_t win_end; /* its end in our clock, us */
	char lines[3][64];
	char retry_after[32];
};

static int64_t ceil_div(int64_t a, int64_t b)
{
	return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}

static int64_t floor_div(int64_t a, int64_t b)
{
	return a >= 0 ? a / b : -ceil_div(-a, b);
}

static void run_sim(const struct sim *s, uint64_t seed, struct sim_result *r)
{
	struct hs_ratelimit rl;
	struct sim_req req[16];
	int step[16], queue[16];
	int qhead = 0, qlen = 0, next_file = 0, done = 0;
	bool first_answer = false, active = false;
	int64_t t, start_time = -1, win_start = 0;
	const int64_t win = s->window_ms * 1000 + s->window_us;
	int count = 0, window = 0, heard = 0, early_window = 0;
	int64_t heard_end = 0;

	assert_true(s->workers <= 16);
	*r = (struct sim_result){0};
	rng_state = seed;
	/* The run starts anywhere within a second. */
	t = T0 * 1000 + rnd_range(0, 999999);
	hs_ratelimit_init(&rl);
	memset(req, 0, sizeof(req));
	for (int w = 0; w < s->workers && next_file < s->files; w++) {
		next_file++;
		step[w] = 0;
		queue[(qhead + qlen++) % 16] = w;
	}
	while (done < s->files) {
		int64_t wake = INT64_MAX;
		while (qlen > 0) {
			uint64_t seq;
			int64_t now = t / 1000;
			int64_t at = hs_ratelimit_reserve(&rl, now, rnd(), &seq);
			if (at) {
				assert_true(at > now);
				if (rl.known && rl.remaining <= 0 && at > rl.reset_at &&
				    at - rl.reset_at > r->max_jitter)
					r->max_jitter = at - rl.reset_at;
				wake = at * 1000;
				break;
			}
			int w = queue[qhead];
			qhead = (qhead + 1) % 16;
			qlen--;
			int k = 0;
			while (req[k].used)
				k++;
			req[k] = (struct sim_req){
			    .used = true,
			    .after_first = first_answer,
			    .seq = seq,
			    .worker = w,
			    .arrive_at = t + rnd_range(s->lat_min * 1000, s->lat_max * 1000)};
			req[k].resp_at =
			    req[k].arrive_at + rnd_range(s->lat_min * 1000, s->lat_max * 1000);
			if (start_time < 0)
				start_time = t;
		}
		/* The next event. */
		int64_t tn = wake;
		for (int k = 0; k < 16; k++)
			if (req[k].used) {
				int64_t e = req[k].arrived ? req[k].resp_at : req[k].arrive_at;
				if (e < tn)
					tn = e;
			}
		assert_true(tn != INT64_MAX && tn >= t);
		t = tn;
		/* Arrivals at the server, in order. */
		for (;;) {
			int k = -1;
			for (int i = 0; i < 16; i++)
				if (req[i].used && !req[i].arrived && req[i].arrive_at == t &&
				    (k < 0 || req[i].seq < req[k].seq))
					k = i;
			if (k < 0)
				break;
			int64_t ts = t + s->skew_ms * 1000;
			if (!active || ts >= win_start + win) {
				active = true;
				win_start = s->aligned ? floor_div(ts, win) * win : ts;
				count = 0;
				window++;
			}
			int64_t end = win_start + win;
			req[k].arrived = true;
			req[k].window = window;
			req[k].win_end = end - s->skew_ms * 1000;
			if (count < s->limit) {
				count++;
				req[k].status = 200;
				if (count > r->max_counted)
					r->max_counted = count;
			} else {
				req[k].status = 429;
			}
			int64_t reset =
			    s->unix_reset ? ceil_div(end, 1000000) : ceil_div(end - ts, 1000000);
			snprintf(req[k].lines[0], sizeof(req[k].lines[0]),
				 "X-RateLimit-Limit: %d\r\n", s->limit);
			snprintf(req[k].lines[1], sizeof(req[k].lines[1]),
				 "X-RateLimit-Remaining: %d\r\n", s->limit - count);
			snprintf(req[k].lines[2], sizeof(req[k].lines[2]),
				 "X-RateLimit-Reset: %" PRId64 "\r\n", reset);
			snprintf(req[k].retry_after, sizeof(req[k].retry_after), "%" PRId64,
				 ceil_div(end - ts, 1000000));
		}
		/* Answers. */
		for (;;) {
			int k = -1;
			for (int i = 0; i < 16; i++)
				if (req[i].used && req[i].arrived && req[i].resp_at == t &&
				    (k < 0 || req[i].seq < req[k].seq))
					k = i;
			if (k < 0)
				break;
			struct hs_ratelimit_headers h = {0};
			int64_t now = t / 1000;
			for (int i = 0; i < 3; i++)
				assert_true(parse(&h, req[k].lines[i]));
			hs_ratelimit_observe(&rl, req[k].seq, now, &h);
			first_answer = true;
			int w = req[k].worker;
			req[k].used = false;
			if (req[k].status == 429) {
				r->rejected++;
				if (req[k].after_first)
					r->rejected_late++;
				r->last_429 = now - start_time / 1000;
				rl.throttled++;
				hs_ratelimit_block(&rl, now,
						   hs_retry_after_parse(req[k].retry_after, now));
			}
			/* The latest window heard of is the one in use: the
			 * limiter may not take it for over before it is. (A
			 * reset said as a delta counts from the ms the answer
			 * came in, up to 1 ms before the server said it.) */
			if (req[k].window > heard) {
				heard = req[k].window;
				heard_end = req[k].win_end;
			}
			int64_t taken_end = rl.reset_at * 1000 + (rl.by_length ? 0 : 999);
			if (!rl.guessed && taken_end < heard_end && heard != early_window) {
				early_window = heard;
				r->early++;
				if (rl.by_length)
					r->early_by_length++;
				r->last_early = now - start_time / 1000;
			}
			if (rl.by_length)
				r->by_length++;
			if (req[k].status == 429) {
				queue[(qhead + qlen++) % 16] = w;
				continue;
			}
			if (++step[w] < s->per_file) {
				queue[(qhead + qlen++) % 16] = w;
				continue;
			}
			done++;
			if (next_file < s->files) {
				next_file++;
				step[w] = 0;
				queue[(qhead + qlen++) % 16] = w;
			}
		}
	}
	r->elapsed = (t - start_time) / 1000;
	assert_true(rl.throttled == (uint64_t)r->rejected);
}

/* Runs seeds simulations: at most max_late 429s after the first answer and
 * max_early windows taken for over too soon (-1: any), none of them by the
 * length learned unless the windows are aligned; elapsed at most max_ratio x
 * the minimum. */
static void sim_check(const struct sim *base, const char *name, int seeds, double max_ratio,
		      int max_late, int max_early)
{
	int64_t min_ms = (int64_t)base->files * base->per_file / base->limit * base->window_ms;
	double worst = 0, sum = 0, by_length = 0;
	int64_t worst_jitter = 0;
	int early = 0;

	if (getenv("SIM_SEEDS")) /* a longer soak: SIM_SEEDS=200 */
		seeds = atoi(getenv("SIM_SEEDS"));
	for (int i = 0; i < seeds; i++) {
		struct sim_result s;
		run_sim(base, (uint64_t)(i + 1) * 7919, &s);
		double ratio = (double)s.elapsed / (double)min_ms;
		bool bad_early = (max_early >= 0 && s.early > max_early) ||
				 (!base->aligned && s.early_by_length > 0);
		if (s.rejected_late > max_late || bad_early || ratio > max_ratio)
			print_message(
			    "# %s seed %d: %.3f s, %d late 429s, the last at %.3f s; "
			    "%d windows over too soon (%d by length), the last at %.3f s\n",
			    name, i, (double)s.elapsed / 1000, s.rejected_late,
			    (double)s.last_429 / 1000, s.early, s.early_by_length,
			    (double)s.last_early / 1000);
		assert_true(s.rejected_late <= max_late);
		assert_false(bad_early);
		assert_true(s.max_counted <= base->limit);
		assert_true(ratio <= max_ratio);
		if (ratio > worst)
			worst = ratio;
		if (s.max_jitter > worst_jitter)
			worst_jitter = s.max_jitter;
		if (s.early > early)
			early = s.early;
		sum += ratio;
		by_length += (double)s.by_length / (base->files * base->per_file);
	}
	print_message("# %s: minimum %.0f s, mean %.3fx, worst %.3fx over %d runs; "
		      "longest wait past a reset %" PRId64 " ms; ends by length %.0f%%; "
		      "windows over too soon %d\n",
		      name, (double)min_ms / 1000, sum / seeds, worst, seeds, worst_jitter,
		      100 * by_length / seeds, early);
}

/* 500 small files x 3 requests, 30 per 5 s, 4 in flight, 1-20 ms round trips. */
static void test_sim_delta(void **state)
{
	struct sim s = {.unix_reset = false,
			.limit = 30,
			.window_ms = 5000,
			.workers = 4,
			.lat_min = 1,
			.lat_max = 10,
			.files = 500,
			.per_file = 3};

	(void)state;
	sim_check(&s, "delta reset", 10, 1.05, 0, 0);
}

static void test_sim_unix(void **state)
{
	struct sim s = {.unix_reset = true,
			.limit = 30,
			.window_ms = 5000,
			.workers = 4,
			.lat_min = 1,
			.lat_max = 10,
			.files = 500,
			.per_file = 3};

	(void)state;
	sim_check(&s, "unix reset", 10, 1.06, 0, 0);
}

/* Harder settings: no 429 once the limits are known, whatever the cost. */
static void test_sim_variants(void **state)
{
	static const struct {
		const char *name;
		struct sim s;
		double max_ratio;
		int max_late, max_early;
	} v[] = {
	    {"unix, round trips 2-200 ms", {true, 30, 5000, 4, 1, 100, 0, 500, 3, 0, 0}, 1.1, 0, 0},
	    {"delta, round trips 2-200 ms",
	     {false, 30, 5000, 4, 1, 100, 0, 500, 3, 0, 0},
	     1.1,
	     0,
	     0},
	    {"unix, 8 in flight", {true, 30, 5000, 8, 1, 10, 0, 500, 3, 0, 0}, 1.1, 0, 0},
	    {"delta, 8 in flight", {false, 30, 5000, 8, 1, 10, 0, 500, 3, 0, 0}, 1.1, 0, 0},
	    {"unix, 16 in flight, 10 per 5 s",
	     {true, 10, 5000, 16, 1, 10, 0, 200, 3, 0, 0},
	     1.1,
	     0,
	     0},
	    {"delta, 16 in flight, 10 per 5 s",
	     {false, 10, 5000, 16, 1, 10, 0, 200, 3, 0, 0},
	     1.1,
	     0,
	     0},
	    {"unix, 5.5-s window", {true, 30, 5500, 4, 1, 10, 0, 500, 3, 0, 0}, 1.1, 0, 0},
	    {"delta, 5.5-s window", {false, 30, 5500, 4, 1, 10, 0, 500, 3, 0, 0}, 1.1, 0, 0},
	    {"unix, 5.0007-s window", {true, 30, 5000, 4, 1, 10, 0, 500, 3, 700, 0}, 1.1, 0, 0},
	    {"delta, 5.0007-s window", {false, 30, 5000, 4, 1, 10, 0, 500, 3, 700, 0}, 1.1, 0, 0},
	    {"unix, 3 per 3 s", {true, 3, 3000, 4, 1, 10, 0, 100, 3, 0, 0}, 1.25, 0, 0},
	    {"delta, 3 per 3 s", {false, 3, 3000, 4, 1, 10, 0, 100, 3, 0, 0}, 1.1, 0, 0},
	    {"unix, 1 per 1 s", {true, 1, 1000, 4, 1, 10, 0, 50, 3, 0, 0}, 2.5, 0, 0},
	    {"delta, 1 per 1 s", {false, 1, 1000, 4, 1, 10, 0, 50, 3, 0, 0}, 2.5, 0, 0},
	    {"delta, 5 per 2 s", {false, 5, 2000, 4, 1, 10, 0, 100, 3, 0, 0}, 1.1, 0, 0},
	    {"unix, 5 per 2 s", {true, 5, 2000, 4, 1, 10, 0, 100, 3, 0, 0}, 1.2, 0, 0},
	    {"delta, 5 per 2 s, rtt to 200",
	     {false, 5, 2000, 4, 1, 100, 0, 100, 3, 0, 0},
	     1.2,
	     0,
	     0},
	    {"unix, 100 per 60 s", {true, 100, 60000, 4, 1, 10, 0, 500, 3, 0, 0}, 1.1, 0, 0},
	    {"delta, 100 per 60 s", {false, 100, 60000, 4, 1, 10, 0, 500, 3, 0, 0}, 1.1, 0, 0},
	    {"unix, server clock 700 ms ahead",
	     {true, 30, 5000, 4, 1, 10, 700, 500, 3, 0, 0},
	     1.1,
	     0,
	     0},
	    {"unix, server clock 3.3 s ahead",
	     {true, 30, 5000, 4, 1, 10, 3300, 500, 3, 0, 0},
	     1.1,
	     0,
	     0},
	    /* Our clock ahead: Unix resets look early until the limiter has
	     * learned by how much (a few windows, a 429 or two); the length
	     * learned is in our clock, never early. */
	    {"unix, server clock 300 ms behind",
	     {true, 30, 5000, 4, 1, 10, -300, 500, 3, 0, 0},
	     1.1,
	     2,
	     6},
	    {"unix, server clock 3 s behind",
	     {true, 30, 5000, 4, 1, 10, -3000, 500, 3, 0, 0},
	     1.1,
	     2,
	     6},
	    {"unix, server clock 2 min behind",
	     {true, 30, 5000, 4, 1, 10, -120000, 500, 3, 0, 0},
	     1.1,
	     2,
	     6},
	    /* Windows aligned to the clock do not last a fixed time from their
	     * first request: what the limiter learns of their length may prove
	     * short, twice at most. */
	    {"unix, windows aligned", {true, 30, 5000, 4, 1, 10, 0, 500, 3, 0, 1}, 1.1, 2, -1},
	    {"unix, 5.5-s windows aligned",
	     {true, 30, 5500, 4, 1, 10, 0, 500, 3, 0, 1},
	     1.1,
	     2,
	     -1},
	    {"delta, 5.5-s windows aligned",
	     {false, 30, 5500, 4, 1, 10, 0, 500, 3, 0, 1},
	     1.1,
	     2,
	     -1},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		sim_check(&v[i].s, v[i].name, 5, v[i].max_ratio, v[i].max_late, v[i].max_early);
	}
}

/* Windows of any length to the microsecond, quotas, round trips, either
 * reset style and server clocks up to 5 s either way: the end taken from
 * the length learned is never before the window's true end. A server clock
 * behind ours may still make a said reset look early until the limiter has
 * learned by how much (test_sim_variants); ahead or even, no window is taken
 * for over too soon and no 429 comes after the first answer. */
static void test_sim_length_sweep(void **state)
{
	int runs = 300, by_length = 0;

	(void)state;
	if (getenv("SIM_SEEDS")) /* a longer soak: SIM_SEEDS=200, 15 runs a seed */
		runs = atoi(getenv("SIM_SEEDS")) * 15;
	for (int i = 0; i < runs; i++) {
		struct sim s;
		struct sim_result r;
		rng_state = (uint64_t)i * 104729 + 17;
		s = (struct sim){.unix_reset = i % 2 == 0,
				 .limit = (int)rnd_range(2, 40),
				 .window_ms = rnd_range(1500, 20000),
				 .window_us = rnd_range(0, 999),
				 .workers = (int)rnd_range(1, 8),
				 .lat_min = rnd_range(0, 5),
				 .skew_ms = i % 3 == 0 ? 0 : rnd_range(-5000, 5000),
				 .per_file = 3};
		s.lat_max = s.lat_min + rnd_range(0, 40);
		s.files = s.limit * 25 / 3 + 1; /* some 25 windows */
		run_sim(&s, (uint64_t)i * 7919 + 1, &r);
		bool behind = s.unix_reset && s.skew_ms < 0;
		bool bad = r.early_by_length > 0 || r.max_counted > s.limit ||
			   (!behind && (r.early > 0 || r.rejected_late > 0));
		if (bad)
			print_message("# sweep %d: %s, %d per %" PRId64 ".%03" PRId64
				      " s, %d in flight, latency %" PRId64 "-%" PRId64
				      " ms, skew %" PRId64 " ms: %d late 429s, "
				      "%d windows over too soon, %d by length\n",
				      i, s.unix_reset ? "unix" : "delta", s.limit, s.window_ms,
				      s.window_us, s.workers, s.lat_min, s.lat_max, s.skew_ms,
				      r.rejected_late, r.early, r.early_by_length);
		assert_false(bad);
		if (r.by_length)
			by_length++;
	}
	/* And it is learned and used, in most runs. */
	print_message("# length sweep: %d runs, the length in use in %d\n", runs, by_length);
	assert_true(by_length >= runs * 3 / 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_header),
	    cmocka_unit_test(test_parse_header_refused),
	    cmocka_unit_test(test_retry_after),
	    cmocka_unit_test(test_free_before_headers),
	    cmocka_unit_test(test_header_example),
	    cmocka_unit_test(test_in_flight_accounting),
	    cmocka_unit_test(test_same_window_tightens),
	    cmocka_unit_test(test_new_window_out_of_order),
	    cmocka_unit_test(test_length_learned),
	    cmocka_unit_test(test_block),
	    cmocka_unit_test(test_jitter_bound),
	    cmocka_unit_test(test_guessed_windows),
	    cmocka_unit_test(test_reset_in_the_past),
	    cmocka_unit_test(test_limit_changes),
	    cmocka_unit_test(test_hostile_values),
	    cmocka_unit_test(test_sim_delta),
	    cmocka_unit_test(test_sim_unix),
	    cmocka_unit_test(test_sim_variants),
	    cmocka_unit_test(test_sim_length_sweep),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
