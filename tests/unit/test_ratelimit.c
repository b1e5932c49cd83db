/* The rate limiter: header parsing, Retry-After, each rule of ratelimit.h on
 * its own, and uploads simulated against fixed-window servers over windows,
 * reset styles, storage, clocks and parallelism: no foreseeable 429, and the
 * time taken beside the least the quota allows. */
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
#include <time.h>

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
					     .reset_ms = reset * 1000};
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
	assert_true(h.has_reset && h.reset_ms == INT64_C(1767225605000));
	assert_true(parse(&h, "X-RateLimit-Remaining: 0\n"));
	assert_true(h.remaining == 0);
	assert_true(parse(&h, "X-RateLimit-Remaining: 007"));
	assert_true(h.remaining == 7);
	assert_true(parse(&h, "X-RateLimit-Limit: 9223372036854775807\r\n"));
	assert_true(h.limit == INT64_MAX);
	/* Only len bytes count. */
	assert_true(hs_ratelimit_parse_header(&h, "X-RateLimit-Reset: 42garbage", 21));
	assert_true(h.reset_ms == 42000);
	/* Reset alone may have a fraction. */
	assert_true(parse(&h, "X-RateLimit-Reset: 1.25\r\n"));
	assert_true(h.reset_ms == 1250);
	assert_true(parse(&h, "X-RateLimit-Reset: 0.007\r\n"));
	assert_true(h.reset_ms == 7);
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
	    "X-RateLimit-Reset: 1.\r\n",
	    "X-RateLimit-Reset: .5\r\n",
	    "X-RateLimit-Reset: 1.2345\r\n",
	    "X-RateLimit-Reset: 1.2.3\r\n",
	    "X-RateLimit-Reset: 9223372036854776\r\n",
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

/* The answer's Date: an HTTP-date in Unix ms; a year no clock says (the
 * fuzzer found one whose ms overflowed) or no date at all is -1. */
static void test_http_date(void **state)
{
	(void)state;
	assert_int_equal(hs_http_date_parse("Fri, 04 Dec 2026 12:00:00 GMT"),
			 INT64_C(1796385600000));
	assert_int_equal(hs_http_date_parse("Fri, 31 Dec 9999 23:59:59 GMT"),
			 INT64_C(253402300799000));
	assert_int_equal(hs_http_date_parse("Sat, 01 Jan 10000 00:00:00 GMT"), -1);
	assert_int_equal(hs_http_date_parse("Mon, 01 Jan 2000000000 00:00:00 GMT"), -1);
	assert_int_equal(hs_http_date_parse("Thu, 01 Jan 1970 00:00:00 GMT"), -1);
	assert_int_equal(hs_http_date_parse("yesterday-ish"), -1);
	assert_int_equal(hs_http_date_parse(""), -1);
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

/* ---- the rules, one by one --------------------------------------------------- */

static uint64_t grant(struct hs_ratelimit *rl, enum hs_ratelimit_class cls, int64_t now)
{
	uint64_t seq = 12345;

	assert_int_equal(hs_ratelimit_reserve(rl, cls, now, 0, true, &seq), 0);
	assert_true(seq != 12345);
	return seq;
}

/* reserve says wait, until exactly `at` */
static void expect_wait(struct hs_ratelimit *rl, enum hs_ratelimit_class cls, int64_t now,
			int64_t at)
{
	uint64_t seq = 12345;
	int64_t got = hs_ratelimit_reserve(rl, cls, now, 0, true, &seq);

	if (got != at)
		print_message("# reserve(%" PRId64 ") = %" PRId64 ", expected %" PRId64 "\n",
			      now - T0, got ? got - T0 : 0, at - T0);
	assert_true(got == at);
	assert_true(seq == 12345);
}

static void answer(struct hs_ratelimit *rl, uint64_t seq, enum hs_ratelimit_class cls, int64_t now,
		   const struct hs_ratelimit_headers *h, int64_t date_ms)
{
	struct hs_ratelimit_answer a = {.h = h, .date_ms = date_ms};

	hs_ratelimit_observe(rl, seq, cls, now, &a);
}

static void test_free_before_headers(void **state)
{
	struct hs_ratelimit rl;

	(void)state;
	hs_ratelimit_init(&rl);
	for (int i = 0; i < 100; i++)
		assert_true(grant(&rl, HS_RL_API, T0) == (uint64_t)i + 1);
	assert_false(rl.known);
}

/* Rule 3: the least Remaining said, less every request still in flight. */
static void test_in_flight_accounting(void **state)
{
	struct hs_ratelimit rl;
	struct hs_ratelimit_headers h = hdr(30, 20, 5);
	uint64_t s[6];

	(void)state;
	hs_ratelimit_init(&rl);
	for (int i = 0; i < 6; i++)
		s[i] = grant(&rl, HS_RL_API, T0);
	answer(&rl, s[2], HS_RL_API, T0 + 10, &h, -1);
	assert_true(rl.known && rl.remaining == 20 - 5);
	/* s[0] says more: counted before; the least stands, and it is off
	 * the flight. */
	h.remaining = 25;
	answer(&rl, s[0], HS_RL_API, T0 + 11, &h, -1);
	assert_true(rl.remaining == 20 - 4);
	h.remaining = 14;
	answer(&rl, s[5], HS_RL_API, T0 + 12, &h, -1);
	assert_true(rl.remaining == 14 - 3);
	/* A failed transfer leaves the flight. */
	hs_ratelimit_observe(&rl, s[1], HS_RL_API, T0 + 13, NULL);
	assert_true(rl.remaining == 14 - 2);
	/* Granting takes one. */
	grant(&rl, HS_RL_API, T0 + 14);
	assert_true(rl.remaining == 14 - 3);
}

/* Rule 4, the case: 20 per 2 s, windows at multiples of 2 s, deltas
 * rounded up. An early answer said 2 s (end 0.1 s after the true end), the
 * one saying Remaining 0 said 1 s from later on: it holds until its own. */
static void test_zero_holds_until_said(void **state)
{
	struct hs_ratelimit rl;
	struct hs_ratelimit_headers h = hdr(20, 19, 2);
	uint64_t seq;

	(void)state;
	hs_ratelimit_init(&rl);
	seq = grant(&rl, HS_RL_API, T0 + 100);
	answer(&rl, seq, HS_RL_API, T0 + 100, &h, -1); /* ends T0 + 2100 */
	assert_true(rl.reset_at == T0 + 2100);
	for (int i = 0; i < 19; i++) {
		seq = grant(&rl, HS_RL_API, T0 + 1100);
		h.remaining = 18 - i;
		h.reset_ms = 1000;
		answer(&rl, seq, HS_RL_API, T0 + 1100, &h, -1); /* says T0 + 2100 */
	}
	assert_true(rl.remaining == 0);
	/* The last one comes later: Remaining 0, Reset 1, at T0 + 1890. */
	h.remaining = 0;
	answer(&rl, seq, HS_RL_API, T0 + 1890, &h, -1);
	assert_true(rl.reset_at == T0 + 2890);
	expect_wait(&rl, HS_RL_API, T0 + 2100, T0 + 2890);
	/* Jitter 0 here (rnd 0): the first request of the next window goes at
	 * the end as said, the rest follow at once. */
	seq = grant(&rl, HS_RL_API, T0 + 2890);
	assert_true(rl.guessed && rl.remaining == 19);
}

/* Rule 6: a window's last slot, with whole-second deltas and others waiting,
 * goes when a whole number of seconds is left, so its Remaining 0 says the
 * same end. Other reset styles, and a request alone, send it at once. */
static void test_last_slot(void **state)
{
	struct hs_ratelimit rl;
	struct hs_ratelimit_headers h = hdr(3, 2, 2);
	uint64_t seq;

	(void)state;
	hs_ratelimit_init(&rl);
	seq = grant(&rl, HS_RL_API, T0);
	answer(&rl, seq, HS_RL_API, T0 + 10, &h, -1); /* ends T0 + 2010 */
	seq = grant(&rl, HS_RL_API, T0 + 20);
	h.remaining = 1;
	answer(&rl, seq, HS_RL_API, T0 + 30, &h, -1); /* says T0 + 2030: the same window */
	assert_true(rl.remaining == 1 && rl.reset_at == T0 + 2010);
	/* 1.68 s left: the last slot waits 0.68 s, for all who ask. */
	expect_wait(&rl, HS_RL_API, T0 + 330, T0 + 1010);
	expect_wait(&rl, HS_RL_STORAGE, T0 + 900, T0 + 1010);
	/* Asked for alone, it goes at once. */
	{
		struct hs_ratelimit alone = rl;
		uint64_t seq2 = 0;
		assert_int_equal(hs_ratelimit_reserve(&alone, HS_RL_API, T0 + 330, 0, false, &seq2),
				 0);
		assert_true(seq2 != 0 && alone.remaining == 0);
	}
	/* A late wake-up does not push it a second further. */
	seq = grant(&rl, HS_RL_API, T0 + 1013);
	assert_true(rl.remaining == 0);
	/* Its answer: Remaining 0, the delta rounded up to 1 s: the same end. */
	h.remaining = 0;
	h.reset_ms = 1000;
	answer(&rl, seq, HS_RL_API, T0 + 1020, &h, -1);
	expect_wait(&rl, HS_RL_API, T0 + 1030, T0 + 2020);

	/* A fraction in a delta: no hold. */
	hs_ratelimit_init(&rl);
	h = hdr(2, 1, 2);
	h.reset_ms = 1990;
	seq = grant(&rl, HS_RL_API, T0);
	answer(&rl, seq, HS_RL_API, T0 + 10, &h, -1);
	assert_true(rl.remaining == 1);
	grant(&rl, HS_RL_API, T0 + 300);

	/* Less than a second left: at once. */
	hs_ratelimit_init(&rl);
	h = hdr(2, 1, 1);
	seq = grant(&rl, HS_RL_API, T0);
	answer(&rl, seq, HS_RL_API, T0 + 10, &h, -1);
	grant(&rl, HS_RL_API, T0 + 300);

	/* Unix resets say one end for the whole window: at once. */
	hs_ratelimit_init(&rl);
	h = hdr(2, 1, (T0 + 5000) / 1000);
	seq = grant(&rl, HS_RL_API, T0);
	answer(&rl, seq, HS_RL_API, T0 + 10, &h, T0);
	grant(&rl, HS_RL_API, T0 + 300);
}

/* Rule 1: Unix resets read against the answer's Date, clocks an hour off. */
static void test_unix_reset_against_date(void **state)
{
	static const int64_t skews[] = {-3600000, 0, 3600000, 7 * 86400000LL};

	(void)state;
	for (size_t i = 0; i < sizeof(skews) / sizeof(skews[0]); i++) {
		struct hs_ratelimit rl;
		int64_t server = T0 + 10300; /* the server's clock */
		int64_t local = server - skews[i];
		struct hs_ratelimit_headers h = hdr(5, 0, (T0 + 12000) / 1000);
		uint64_t seq;

		hs_ratelimit_init(&rl);
		seq = grant(&rl, HS_RL_API, local - 20);
		/* Date says 10 s (rounded down from 10.3): 2 s left by it. */
		answer(&rl, seq, HS_RL_API, local, &h, T0 + 10000);
		assert_true(rl.reset_at == local + 2000);
		expect_wait(&rl, HS_RL_API, local + 1, local + 2000);
	}
	/* The offset learned: largest Date - receipt; a proof it is too large
	 * restarts it (our clock stepped back by 10 s). */
	struct hs_ratelimit rl;
	struct hs_ratelimit_headers h = hdr(5, 4, (T0 + 20000) / 1000);
	uint64_t seq;

	hs_ratelimit_init(&rl);
	seq = grant(&rl, HS_RL_API, T0 + 990);
	answer(&rl, seq, HS_RL_API, T0 + 1000, &h, T0 + 1000);
	assert_true(rl.offset_ms == 0);
	seq = grant(&rl, HS_RL_API, T0 + 1200);
	answer(&rl, seq, HS_RL_API, T0 + 1400, &h, T0 + 1000); /* lower: kept */
	assert_true(rl.offset_ms == 0);
	seq = grant(&rl, HS_RL_API, T0 - 9000);
	answer(&rl, seq, HS_RL_API, T0 - 8990, &h, T0 + 2000);
	assert_true(rl.offset_ms == 10990); /* larger: taken */
	seq = grant(&rl, HS_RL_API, T0 + 4000);
	answer(&rl, seq, HS_RL_API, T0 + 4010, &h, T0 + 4000);
	/* Date + 1 s - grant = 1000 < 10990: our clock stepped; restart. */
	assert_true(rl.offset_ms == -10);
}

/* Rule 7: a class whose answers carry no headers draws on no quota; one
 * whose answers do, counts. */
static void test_classes(void **state)
{
	struct hs_ratelimit rl;
	struct hs_ratelimit_headers none = {0}, h = hdr(3, 2, 5);
	uint64_t seq, put;

	(void)state;
	hs_ratelimit_init(&rl);
	seq = grant(&rl, HS_RL_API, T0);
	answer(&rl, seq, HS_RL_API, T0 + 10, &h, -1);
	put = grant(&rl, HS_RL_STORAGE, T0 + 20); /* unknown yet: counts */
	assert_true(put == 2 && rl.remaining == 1);
	answer(&rl, put, HS_RL_STORAGE, T0 + 30, &none, -1);
	assert_true(rl.remaining == 2); /* off the flight: given back */
	for (int i = 0; i < 50; i++)
		assert_true(grant(&rl, HS_RL_STORAGE, T0 + 40) == 0);
	assert_true(rl.remaining == 2 && rl.sent == 2);
	/* A failed transfer (no answer) teaches nothing. */
	hs_ratelimit_observe(&rl, 0, HS_RL_STORAGE, T0 + 41, NULL);
	assert_true(grant(&rl, HS_RL_STORAGE, T0 + 41) == 0);
	/* A block holds every class. */
	hs_ratelimit_block(&rl, T0 + 50, 2000, 0);
	expect_wait(&rl, HS_RL_STORAGE, T0 + 60, T0 + 2050);
	expect_wait(&rl, HS_RL_API, T0 + 60, T0 + 2050);
	/* Storage answers with headers: it counts again. */
	h.remaining = 0;
	answer(&rl, 0, HS_RL_STORAGE, T0 + 2100, &h, -1);
	seq = grant(&rl, HS_RL_STORAGE, T0 + 2100);
	assert_true(seq == 3 && rl.remaining == 1);
	h.reset_ms = 3000;
	answer(&rl, seq, HS_RL_STORAGE, T0 + 2110, &h, -1);
	assert_true(rl.remaining == 0);
	expect_wait(&rl, HS_RL_STORAGE, T0 + 2111, T0 + 5110);
}

/* Rule 5: after the end, a guessed window; an answer to a request sent in
 * it that still speaks of the old window puts the old one back. */
static void test_guess_and_late_window(void **state)
{
	struct hs_ratelimit rl;
	struct hs_ratelimit_headers h = hdr(4, 0, 1);
	uint64_t seq;

	(void)state;
	hs_ratelimit_init(&rl);
	seq = grant(&rl, HS_RL_API, T0);
	answer(&rl, seq, HS_RL_API, T0 + 10, &h, -1); /* 0 left until T0 + 1010 */
	expect_wait(&rl, HS_RL_API, T0 + 20, T0 + 1010);
	seq = grant(&rl, HS_RL_API, T0 + 1010);
	assert_true(rl.guessed && rl.remaining == 3);
	/* The server's window had not ended (it rounds down): 0 left, 0.5 s. */
	h.reset_ms = 500;
	answer(&rl, seq, HS_RL_API, T0 + 1020, &h, -1);
	assert_false(rl.guessed);
	assert_true(rl.remaining == 0 && rl.reset_at == T0 + 1520);
	expect_wait(&rl, HS_RL_API, T0 + 1030, T0 + 1520);
}

/* Rule 8: the block is Retry-After plus a draw over [0, min(wait, cap)],
 * drawn once per block, never earlier than asked. */
static void test_retry_after_spread(void **state)
{
	struct hs_ratelimit rl;
	uint64_t seq;

	(void)state;
	hs_ratelimit_init(&rl);
	hs_ratelimit_block(&rl, T0, 120000, 0);
	assert_int_equal(rl.blocked_until, T0 + 120000);
	hs_ratelimit_init(&rl);
	hs_ratelimit_block(&rl, T0, 120000, 120000);
	assert_int_equal(rl.blocked_until, T0 + 240000);
	hs_ratelimit_init(&rl);
	hs_ratelimit_block(&rl, T0, 120000, 120001); /* the draw wraps */
	assert_int_equal(rl.blocked_until, T0 + 120000);

	/* Once per block: more answers asking for no later change nothing. */
	hs_ratelimit_init(&rl);
	hs_ratelimit_block(&rl, T0, 120000, 60000);
	assert_int_equal(rl.blocked_until, T0 + 180000);
	hs_ratelimit_block(&rl, T0 + 2000, 120000, 0);
	hs_ratelimit_block(&rl, T0 + 3000, 120000, UINT64_MAX);
	assert_int_equal(rl.blocked_until, T0 + 180000);
	expect_wait(&rl, HS_RL_API, T0 + 179999, T0 + 180000);
	assert_int_equal(hs_ratelimit_reserve(&rl, HS_RL_API, T0 + 180000, 0, false, &seq), 0);
	/* A later ask is a new block, with its own draw. */
	hs_ratelimit_block(&rl, T0 + 180000, 1000, 500);
	assert_int_equal(rl.blocked_until, T0 + 181500);

	/* The spread is capped; the wait is never shorter than asked. */
	for (uint64_t r = 0; r < 4000000; r += 3917) {
		for (int64_t d = 0; d <= HS_RETRY_AFTER_MAX_MS; d += 599999) {
			int64_t asked = d < HS_RETRY_AFTER_MIN_MS ? HS_RETRY_AFTER_MIN_MS : d;
			int64_t extra =
			    asked < HS_RETRY_SPREAD_MAX_MS ? asked : HS_RETRY_SPREAD_MAX_MS;
			hs_ratelimit_init(&rl);
			hs_ratelimit_block(&rl, T0, d, r * 2654435761u);
			assert_true(rl.blocked_until >= T0 + asked);
			assert_true(rl.blocked_until <= T0 + asked + extra);
		}
	}

	/* An HTTP-date: the same spread over the wait it names. */
	hs_ratelimit_init(&rl);
	hs_ratelimit_block(&rl, T0, hs_retry_after_parse("Thu, 01 Jan 2026 00:02:00 GMT", T0),
			   120000);
	assert_int_equal(rl.blocked_until, T0 + 240000);
	hs_ratelimit_init(&rl);
	hs_ratelimit_block(&rl, T0, hs_retry_after_parse("Thu, 01 Jan 2026 01:00:00 GMT", T0),
			   UINT64_MAX);
	assert_true(rl.blocked_until >= T0 + 3600000 &&
		    rl.blocked_until <= T0 + 3600000 + HS_RETRY_SPREAD_MAX_MS);
}

/* Rule 5: the wake-up after a window's end is spread over a part of the
 * window, never before the end. */
static void test_reset_jitter_scales_with_the_window(void **state)
{
	struct hs_ratelimit_headers h = hdr(20, 0, 60);
	const int64_t most = 60000 * HS_RATELIMIT_JITTER_PERMILLE / 1000;
	struct hs_ratelimit rl;
	uint64_t seq;

	(void)state;
	assert_true(most >= 3000); /* a minute's fleet wakes over 3 s at least */
	hs_ratelimit_init(&rl);
	seq = grant(&rl, HS_RL_API, T0);
	answer(&rl, seq, HS_RL_API, T0, &h, -1); /* 0 left until T0 + 60 s */
	assert_int_equal(hs_ratelimit_reserve(&rl, HS_RL_API, T0 + 10, (uint64_t)most, false, &seq),
			 T0 + 60000 + most);
	/* drawn once per window: another ask keeps the draw */
	assert_int_equal(hs_ratelimit_reserve(&rl, HS_RL_API, T0 + 20, 0, false, &seq),
			 T0 + 60000 + most);
	assert_false(hs_ratelimit_idle(&rl, T0 + 60000 + most - 1));

	hs_ratelimit_init(&rl);
	seq = grant(&rl, HS_RL_API, T0);
	answer(&rl, seq, HS_RL_API, T0, &h, -1);
	assert_int_equal(
	    hs_ratelimit_reserve(&rl, HS_RL_API, T0 + 10, (uint64_t)most + 1, false, &seq),
	    T0 + 60000); /* never before the end */

	/* A day's window: capped. */
	h = hdr(20, 0, 86400);
	hs_ratelimit_init(&rl);
	seq = grant(&rl, HS_RL_API, T0);
	answer(&rl, seq, HS_RL_API, T0, &h, -1);
	assert_int_equal(
	    hs_ratelimit_reserve(&rl, HS_RL_API, T0 + 10, HS_RATELIMIT_JITTER_MAX_MS, false, &seq),
	    T0 + 86400000 + HS_RATELIMIT_JITTER_MAX_MS);
}

static void test_idle(void **state)
{
	struct hs_ratelimit rl;
	struct hs_ratelimit_headers h = hdr(4, 3, 2);
	uint64_t seq;

	(void)state;
	hs_ratelimit_init(&rl);
	assert_true(hs_ratelimit_idle(&rl, T0));
	seq = grant(&rl, HS_RL_STORAGE, T0);
	assert_false(hs_ratelimit_idle(&rl, T0)); /* in flight */
	hs_ratelimit_observe(&rl, seq, HS_RL_STORAGE, T0 + 5, NULL);
	assert_true(hs_ratelimit_idle(&rl, T0 + 5));
	hs_ratelimit_block(&rl, T0 + 5, 1000, 0);
	assert_false(hs_ratelimit_idle(&rl, T0 + 6));
	assert_true(hs_ratelimit_idle(&rl, T0 + 1005));
	seq = grant(&rl, HS_RL_API, T0 + 1005);
	answer(&rl, seq, HS_RL_API, T0 + 1010, &h, -1);
	assert_false(hs_ratelimit_idle(&rl, T0 + 1011)); /* a window in force */
	/* the window's end, then its jitter's most */
	assert_false(
	    hs_ratelimit_idle(&rl, T0 + 3010 + 2000 * HS_RATELIMIT_JITTER_PERMILLE / 1000 - 1));
	assert_true(hs_ratelimit_idle(&rl, T0 + 3010 + 2000 * HS_RATELIMIT_JITTER_PERMILLE / 1000));
}

static void test_hostile_values(void **state)
{
	static const int64_t v[] = {
	    0,	      1, 999, 1000, INT64_C(999999999999), INT64_C(1000000000000), INT64_MAX / 2,
	    INT64_MAX};
	static const int64_t nows[] = {0, T0, INT64_MAX / 4, -T0};

	(void)state;
	for (size_t n = 0; n < sizeof(nows) / sizeof(nows[0]); n++)
		for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
			for (size_t j = 0; j < sizeof(v) / sizeof(v[0]); j++) {
				struct hs_ratelimit rl;
				struct hs_ratelimit_headers h = {.has_limit = true,
								 .has_remaining = true,
								 .has_reset = true,
								 .limit = v[i],
								 .remaining = v[j],
								 .reset_ms = v[(i + j) % 8]};
				int64_t now = nows[n];
				uint64_t seq = 0;

				hs_ratelimit_init(&rl);
				assert_int_equal(
				    hs_ratelimit_reserve(&rl, HS_RL_API, now, 7, i & 1, &seq), 0);
				answer(&rl, seq, HS_RL_API, now, &h, v[j]);
				hs_ratelimit_block(&rl, now, v[i], UINT64_MAX);
				int64_t at = hs_ratelimit_reserve(&rl, HS_RL_API, now, UINT64_MAX,
								  j & 1, &seq);
				assert_true(at == 0 || at > now);
				assert_true(rl.remaining >= 0);
			}
}

/* ---- simulation ------------------------------------------------------------- */

enum reset_style { R_UNIX, R_DELTA_UP, R_DELTA_EXACT };
enum storage_mode { S_SAME_QUIET, S_SAME_COUNTED, S_OTHER_HOST };
static const char *const reset_names[] = {"unix", "delta-up", "delta-exact"};
static const char *const storage_names[] = {"same-quiet", "same-counted", "other-host"};

struct sim_cfg {
	int64_t window_ms;
	int quota;
	enum reset_style reset;
	enum storage_mode storage;
	int64_t clock_ms; /* our clock less the server's */
	int parallel;
	bool aligned; /* windows at multiples of the window since the epoch */
	int files;    /* each: presign (API), PUT (storage), complete (API) */
};

struct sim_result {
	int throttled_after_known; /* 429s to requests granted after headers were seen */
	int throttled;
	int64_t elapsed_ms, least_ms;
	int64_t floor_ms; /* the least for a client that waits for every said reset */
};

enum { T_IDLE, T_TO_SERVER, T_TO_CLIENT, T_DONE };

struct sim_transfer {
	int state, step;
	int64_t at; /* next event, our clock */
	int64_t rtt;
	uint64_t seq;
	bool counted_known; /* granted after headers were seen */
	struct hs_ratelimit *lim;
	enum hs_ratelimit_class cls;
	/* the answer */
	int status;
	struct hs_ratelimit_headers h;
	int64_t date_ms;
	char retry_after[64];
};

static void sim_run(const struct sim_cfg *cfg, struct sim_result *res)
{
	struct hs_ratelimit api, other;
	struct sim_transfer tr[16];
	int files_left = cfg->files, counted = 0;
	int64_t win_start = INT64_MIN, win_end = INT64_MIN, count = 0;
	int64_t server0 = T0 + 86400000; /* the server's clock at the start */
	int64_t start;

	memset(res, 0, sizeof(*res));
	memset(tr, 0, sizeof(tr));
	if (cfg->aligned) /* start 37% into a window */
		server0 = (server0 / cfg->window_ms) * cfg->window_ms + cfg->window_ms * 37 / 100;
	start = server0 + cfg->clock_ms;
	hs_ratelimit_init(&api);
	hs_ratelimit_init(&other);
	for (int i = 0; i < cfg->parallel; i++) {
		tr[i].state = files_left-- > 0 ? T_IDLE : T_DONE;
		tr[i].at = start;
	}
	int64_t last = start;
	for (int guard = 0; guard < 10000000; guard++) {
		struct sim_transfer *t = NULL;
		for (int i = 0; i < cfg->parallel; i++)
			if (tr[i].state != T_DONE && (!t || tr[i].at < t->at))
				t = &tr[i];
		if (!t)
			break;
		int64_t now = t->at;
		if (t->state == T_IDLE) {
			t->cls = t->step == 1 ? HS_RL_STORAGE : HS_RL_API;
			t->lim =
			    t->cls == HS_RL_STORAGE && cfg->storage == S_OTHER_HOST ? &other : &api;
			bool known = t->lim->known;
			bool more = false; /* others wait to send */
			for (int i = 0; i < cfg->parallel; i++)
				more = more || (&tr[i] != t && tr[i].state == T_IDLE);
			int64_t wait =
			    hs_ratelimit_reserve(t->lim, t->cls, now, rnd(), more, &t->seq);
			if (wait != 0) {
				assert_true(wait > now);
				t->at = wait;
				continue;
			}
			t->counted_known = known && t->seq != 0;
			t->rtt = rnd_range(2, 20);
			t->state = T_TO_SERVER;
			t->at = now + t->rtt / 2;
		} else if (t->state == T_TO_SERVER) {
			/* The server, in its clock. */
			int64_t s = now - cfg->clock_ms;
			bool counts = t->cls == HS_RL_API || cfg->storage == S_SAME_COUNTED;
			memset(&t->h, 0, sizeof(t->h));
			t->retry_after[0] = '\0';
			t->status = 200;
			t->date_ms = s - ((s % 1000) + 1000) % 1000;
			if (counts) {
				if (cfg->aligned) {
					win_start = s - ((s % cfg->window_ms) + cfg->window_ms) %
							    cfg->window_ms;
					if (win_start + cfg->window_ms != win_end)
						count = 0;
					win_end = win_start + cfg->window_ms;
				} else if (s >= win_end) {
					win_start = s;
					win_end = s + cfg->window_ms;
					count = 0;
				}
				if (count < cfg->quota) {
					count++;
				} else {
					t->status = 429;
					res->throttled++;
					if (t->counted_known)
						res->throttled_after_known++;
				}
				t->h = hdr(cfg->quota, cfg->quota - count, 0);
				int64_t left_ms = win_end - s;
				if (cfg->reset == R_UNIX)
					t->h.reset_ms = (win_end + 999) / 1000 * 1000;
				else if (cfg->reset == R_DELTA_UP)
					t->h.reset_ms = (left_ms + 999) / 1000 * 1000;
				else
					t->h.reset_ms = left_ms;
				if (t->status == 429) {
					if (cfg->reset == R_UNIX) {
						time_t at = (time_t)((win_end + 999) / 1000);
						struct tm tm;
						gmtime_r(&at, &tm);
						strftime(t->retry_after, sizeof(t->retry_after),
							 "%a, %d %b %Y %H:%M:%S GMT", &tm);
					} else {
						snprintf(t->retry_after, sizeof(t->retry_after),
							 "%" PRId64, (left_ms + 999) / 1000);
					}
				}
			}
			t->state = T_TO_CLIENT;
			t->at = now + t->rtt - t->rtt / 2;
		} else {
			struct hs_ratelimit_answer a = {.h = &t->h, .date_ms = t->date_ms};
			hs_ratelimit_observe(t->lim, t->seq, t->cls, now, &a);
			last = now;
			if (t->status == 429) {
				int64_t d = hs_retry_after_parse(t->retry_after, t->date_ms);
				hs_ratelimit_block(t->lim, now, d >= 0 ? d : HS_RETRY_AFTER_MIN_MS,
						   rnd());
				t->state = T_IDLE;
				continue;
			}
			if (t->cls == HS_RL_API || cfg->storage == S_SAME_COUNTED)
				counted++;
			t->state = T_IDLE;
			if (++t->step == 3) {
				t->step = 0;
				if (files_left-- <= 0)
					t->state = T_DONE;
			}
		}
	}
	res->elapsed_ms = last - start;
	int64_t windows = (counted + cfg->quota - 1) / cfg->quota;
	res->least_ms = (windows - 1) * cfg->window_ms;
	if (cfg->aligned)
		res->least_ms -= cfg->window_ms * 37 / 100;
	/* A Unix reset on a window opened by a request says its end rounded up
	 * to the second; the next window opens after that, so it ends a second
	 * late again: every window but the first lasts W + 1 s for any client
	 * that waits for the said reset (docs/ratelimit.md). */
	res->floor_ms = res->least_ms;
	if (!cfg->aligned && cfg->reset == R_UNIX && windows >= 2)
		res->floor_ms += (windows - 2) * 1000;
}

/* The whole matrix: 0 foreseeable 429s in every cell, and the time taken
 * within 1.1x of the floor (the least the quota allows, or the least the
 * said resets allow where that is more). The exceptions are short windows
 * with resets in whole seconds. The answer that says Remaining 0 names an
 * end rounded up to the second, late by as long as the client took to send
 * the window's quota. Rule 6 avoids that only while others wait. With 1 s
 * windows every answer says "1" (up to 1.4x). With 2 s windows and one
 * request at a time, each window is late by 20 round trips (up to 1.2x). */
static void test_sim_matrix(void **state)
{
	static const int64_t windows[] = {1000, 2000, 5000, 10000, 60000};
	static const int64_t clocks[] = {-3600000, 0, 3600000};
	static const int parallels[] = {1, 4, 16};
	double worst = 0, sum = 0;
	int cells = 0, throttled = 0;

	(void)state;
	rng_state = 42;
	for (int al = 0; al < 2; al++)
		for (size_t w = 0; w < 5; w++)
			for (int r = 0; r < 3; r++)
				for (int st = 0; st < 3; st++)
					for (size_t c = 0; c < 3; c++)
						for (size_t p = 0; p < 3; p++) {
							struct sim_cfg cfg = {
							    .window_ms = windows[w],
							    .quota = 20,
							    .reset = (enum reset_style)r,
							    .storage = (enum storage_mode)st,
							    .clock_ms = clocks[c],
							    .parallel = parallels[p],
							    .aligned = al,
							    .files = 300};
							struct sim_result res;
							sim_run(&cfg, &res);
							double ratio = (double)res.elapsed_ms /
								       (double)res.floor_ms;
							double bound = 1.1;
							if (r == R_DELTA_UP && windows[w] == 1000)
								bound = 1.4;
							else if (r == R_DELTA_UP &&
								 windows[w] == 2000 &&
								 parallels[p] == 1)
								bound = 1.2;
							if (res.throttled_after_known ||
							    ratio > bound)
								print_message(
								    "# %s W=%" PRId64
								    " %s %s clock=%+" PRId64
								    " p=%d: 429s %d (%d after "
								    "headers), %.3fx\n",
								    al ? "aligned"
								       : "first-request",
								    windows[w] / 1000,
								    reset_names[r],
								    storage_names[st],
								    clocks[c] / 3600000,
								    parallels[p], res.throttled,
								    res.throttled_after_known,
								    ratio);
							assert_true(ratio <= bound);
							throttled += res.throttled_after_known;
							if (ratio > worst)
								worst = ratio;
							sum += ratio;
							cells++;
						}
	print_message("# sim: %d cells, 429s after headers %d, elapsed/floor mean %.3f worst "
		      "%.3f\n",
		      cells, throttled, sum / cells, worst);
	assert_int_equal(throttled, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_header),
	    cmocka_unit_test(test_parse_header_refused),
	    cmocka_unit_test(test_retry_after),
	    cmocka_unit_test(test_http_date),
	    cmocka_unit_test(test_free_before_headers),
	    cmocka_unit_test(test_in_flight_accounting),
	    cmocka_unit_test(test_zero_holds_until_said),
	    cmocka_unit_test(test_last_slot),
	    cmocka_unit_test(test_unix_reset_against_date),
	    cmocka_unit_test(test_classes),
	    cmocka_unit_test(test_guess_and_late_window),
	    cmocka_unit_test(test_retry_after_spread),
	    cmocka_unit_test(test_reset_jitter_scales_with_the_window),
	    cmocka_unit_test(test_idle),
	    cmocka_unit_test(test_hostile_values),
	    cmocka_unit_test(test_sim_matrix),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
