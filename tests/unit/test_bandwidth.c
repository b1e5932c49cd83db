/* The token bucket: exact grants, limits, idle gaps, rate changes, and a
 * simulated minute of competing transfers held to the 5%-over-10-s cap. */
#include "config.h"

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "agent/bandwidth.h"
#include "conf/timetable.h"

#define KiB 1024ULL
#define MiB (1024 * KiB)
#define GiB (1024 * MiB)
#define SEC 1000000LL

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

static void test_header_example(void **state)
{
	struct hs_bucket b;
	int64_t t0 = 5 * SEC;

	(void)state;
	hs_bucket_init(&b, MiB, t0);
	assert_int_equal(b.burst, 20971);
	assert_int_equal(hs_bucket_take(&b, 64 * KiB, t0), 20971);
	assert_int_equal(hs_bucket_take(&b, 64 * KiB, t0), 0);
	assert_int_equal(hs_bucket_take(&b, 64 * KiB, t0 + 10000), 10485);
	/* 0.76 byte is left over: (16384 - 0.76) B / 1 MiB/s = 15624.3 us */
	assert_int_equal(hs_bucket_wait_us(&b, 16384, t0 + 10000), 15625);
	assert_int_equal(hs_bucket_take(&b, 16384, t0 + 10000 + 15624), 16383);
	assert_int_equal(hs_bucket_take(&b, 1, t0 + 10000 + 15625), 1);
	assert_int_equal(hs_bucket_take(&b, 16384, t0 + 10000 + 15625), 0);
}

static void test_burst_sizes(void **state)
{
	struct hs_bucket b;

	(void)state;
	hs_bucket_init(&b, 10 * MiB, 0);
	assert_int_equal(b.burst, 10 * MiB / 50);
	hs_bucket_init(&b, 800 * KiB, 0); /* 800 KiB / 50 = 16 KiB */
	assert_int_equal(b.burst, 16 * KiB);
	hs_bucket_init(&b, 100 * KiB, 0);
	assert_int_equal(b.burst, 16 * KiB);
	hs_bucket_init(&b, 32 * KiB, 0);
	assert_int_equal(b.burst, 16 * KiB);
	hs_bucket_init(&b, 10 * KiB, 0); /* half a second, not 16 KiB */
	assert_int_equal(b.burst, 5 * KiB);
	hs_bucket_init(&b, 1, 0);
	assert_int_equal(b.burst, 1);
	hs_bucket_init(&b, 0, 0);
	assert_int_equal(b.burst, 0);
	/* The first take gets a full bucket, no more. */
	hs_bucket_init(&b, 10 * KiB, 7);
	assert_int_equal(hs_bucket_take(&b, 64 * KiB, 7), 5 * KiB);
}

static void test_continuous_refill(void **state)
{
	struct hs_bucket b;
	size_t total = 0;

	(void)state;
	hs_bucket_init(&b, 1000, 0); /* 1000 B/s: 1 byte per ms */
	assert_int_equal(hs_bucket_take(&b, 10000, 0), 500);
	for (int64_t t = 1; t <= 2000000; t++)
		total += hs_bucket_take(&b, 10000, t);
	assert_int_equal(total, 2000); /* exactly the rate, no rounding loss */
	assert_int_equal(hs_bucket_take(&b, 1, 2000000), 0);
	/* 0.999 ms gives nothing yet, 1 ms gives a byte. */
	assert_int_equal(hs_bucket_take(&b, 10, 2000999), 0);
	assert_int_equal(hs_bucket_take(&b, 10, 2001000), 1);
}

static void test_unlimited(void **state)
{
	struct hs_bucket b;

	(void)state;
	hs_bucket_init(&b, 0, 0);
	assert_true(hs_bucket_take(&b, SIZE_MAX, 0) == SIZE_MAX);
	assert_true(hs_bucket_take(&b, SIZE_MAX, 0) == SIZE_MAX);
	assert_int_equal(hs_bucket_take(&b, 0, 0), 0);
	assert_int_equal(hs_bucket_wait_us(&b, SIZE_MAX, 0), 0);
	assert_int_equal(hs_bucket_wait_us(&b, 1, INT64_MIN), 0);
}

static void test_huge_values(void **state)
{
	struct hs_bucket b;

	(void)state;
	/* 10 GiB/s idle for the longest gap there is. */
	hs_bucket_init(&b, 10 * GiB, INT64_MIN);
	assert_int_equal(hs_bucket_take(&b, SIZE_MAX, INT64_MIN), 10 * GiB / 50);
	assert_int_equal(hs_bucket_take(&b, SIZE_MAX, INT64_MAX), 10 * GiB / 50);
	assert_int_equal(hs_bucket_take(&b, SIZE_MAX, INT64_MAX), 0);
	assert_int_equal(hs_bucket_wait_us(&b, SIZE_MAX, INT64_MAX), 20000);
	/* An idle gap of a bit more than the refill time. */
	hs_bucket_init(&b, 10 * GiB, 0);
	assert_int_equal(hs_bucket_take(&b, SIZE_MAX, 0), 10 * GiB / 50);
	assert_int_equal(hs_bucket_take(&b, SIZE_MAX, 1), 10 * GiB / SEC);
	assert_int_equal(hs_bucket_take(&b, SIZE_MAX, 1 + 3600 * SEC), 10 * GiB / 50);
	/* Absurd rates: capped at 1 TiB/s, still exact. */
	hs_bucket_init(&b, UINT64_MAX, 0);
	assert_true(b.rate == UINT64_MAX);
	assert_int_equal(hs_bucket_take(&b, SIZE_MAX, 0), (1ULL << 40) / 50);
	assert_int_equal(hs_bucket_take(&b, SIZE_MAX, 1), (1ULL << 40) / SEC);
	assert_int_equal(hs_bucket_take(&b, SIZE_MAX, INT64_MAX), (1ULL << 40) / 50);
	assert_int_equal(hs_bucket_wait_us(&b, SIZE_MAX, INT64_MAX), 20000);
	/* The slowest rate: a byte a second, never a wait above 1 s. */
	hs_bucket_init(&b, 1, 0);
	assert_int_equal(hs_bucket_take(&b, SIZE_MAX, 0), 1);
	assert_int_equal(hs_bucket_wait_us(&b, SIZE_MAX, 0), SEC);
	assert_int_equal(hs_bucket_take(&b, SIZE_MAX, SEC - 1), 0);
	assert_int_equal(hs_bucket_take(&b, SIZE_MAX, SEC), 1);
}

static void test_clock_backwards(void **state)
{
	struct hs_bucket b;

	(void)state;
	hs_bucket_init(&b, 1000, 10 * SEC);
	assert_int_equal(hs_bucket_take(&b, 10000, 10 * SEC), 500);
	/* Going back gives nothing and does not count the same time twice. */
	assert_int_equal(hs_bucket_take(&b, 10000, 9 * SEC), 0);
	assert_int_equal(hs_bucket_take(&b, 10000, 10 * SEC + 100000), 100);
	assert_int_equal(hs_bucket_wait_us(&b, 100, 5 * SEC), 100000);
}

static void test_set_rate(void **state)
{
	struct hs_bucket b;

	(void)state;
	/* Same-rate calls and raises keep the tokens. */
	hs_bucket_init(&b, MiB, 0);
	assert_int_equal(hs_bucket_take(&b, 10000, 0), 10000);
	hs_bucket_set_rate(&b, MiB, 0);
	hs_bucket_set_rate(&b, 2 * MiB, 0);
	assert_int_equal(b.burst, 2 * MiB / 50);
	assert_int_equal(hs_bucket_take(&b, SIZE_MAX, 0), 20971 - 10000);
	/* Tokens accrued at the old rate up to the change, the new after. */
	hs_bucket_init(&b, 1000, 0);
	assert_int_equal(hs_bucket_take(&b, SIZE_MAX, 0), 500);
	hs_bucket_set_rate(&b, 2000, 100000); /* 100 bytes at 1000 B/s */
	assert_int_equal(hs_bucket_take(&b, SIZE_MAX, 200000), 300);
	/* Lowering the rate drops the tokens above the new burst. */
	hs_bucket_init(&b, 10 * MiB, 0);
	hs_bucket_set_rate(&b, MiB, SEC);
	assert_int_equal(b.burst, 20971);
	assert_int_equal(hs_bucket_take(&b, SIZE_MAX, SEC), 20971);
	/* To unlimited and back: the limit starts from an empty bucket. */
	hs_bucket_set_rate(&b, 0, 2 * SEC);
	assert_true(hs_bucket_take(&b, 5 * GiB, 2 * SEC) == 5 * GiB);
	assert_int_equal(hs_bucket_wait_us(&b, 5 * GiB, 2 * SEC), 0);
	hs_bucket_set_rate(&b, MiB, 3 * SEC);
	assert_int_equal(hs_bucket_take(&b, SIZE_MAX, 3 * SEC), 0);
	assert_int_equal(hs_bucket_wait_us(&b, 16384, 3 * SEC), 15625);
	assert_int_equal(hs_bucket_take(&b, SIZE_MAX, 3 * SEC + 15625), 16384);
	/* However long it was unlimited. */
	hs_bucket_set_rate(&b, 0, 4 * SEC);
	hs_bucket_set_rate(&b, MiB, 4000 * SEC);
	assert_int_equal(hs_bucket_take(&b, SIZE_MAX, 4000 * SEC), 0);
	assert_int_equal(hs_bucket_take(&b, SIZE_MAX, 4001 * SEC), 20971);
}

/* wait_us is exact: one microsecond earlier is not enough, at it is. */
static void test_wait_exact(void **state)
{
	static const uint64_t rates[] = {1, 999, 10 * KiB, 1000000, MiB, 3 * MiB + 7, 10 * GiB};

	(void)state;
	rng_state = 42;
	for (size_t r = 0; r < sizeof(rates) / sizeof(rates[0]); r++) {
		struct hs_bucket b;
		int64_t t = rnd_range(0, SEC);

		hs_bucket_init(&b, rates[r], t);
		for (int i = 0; i < 2000; i++) {
			size_t want = (size_t)rnd_range(1, 256 * 1024);
			size_t need = want < b.burst ? want : (size_t)b.burst;
			int64_t w;

			t += rnd_range(0, 30000);
			hs_bucket_take(&b, (size_t)rnd_range(0, 128 * 1024), t);
			w = hs_bucket_wait_us(&b, want, t);
			assert_true(w >= 0 && w <= SEC);
			if (w > 0) {
				struct hs_bucket c = b;
				assert_true(hs_bucket_take(&c, want, t + w - 1) < need);
			}
			struct hs_bucket c = b;
			assert_true(hs_bucket_take(&c, want, t + w) >= need);
		}
	}
}

/* ---- a simulated minute ------------------------------------------------ */

struct grant {
	int64_t t;
	uint64_t n;
};

struct regime {
	int64_t from; /* us */
	uint64_t rate;
};

#define MAX_GRANTS (1 << 20)

struct run {
	struct grant *g;
	size_t n;
	uint64_t total;
};

/* n_xfers transfers asking for 64 KiB whenever they are ready, at random
 * times (a send takes up to 2 ms, a wake-up is up to 0.5 ms late), the rate
 * following the regimes, until end_us. */
static void simulate(struct run *run, const struct regime *reg, size_t n_reg, int n_xfers,
		     int64_t end_us)
{
	struct hs_bucket b;
	int64_t next[16];
	size_t cur = 0;

	assert_true(n_xfers <= 16);
	run->g = calloc(MAX_GRANTS, sizeof(*run->g));
	assert_non_null(run->g);
	run->n = 0;
	run->total = 0;
	hs_bucket_init(&b, reg[0].rate, 0);
	for (int i = 0; i < n_xfers; i++)
		next[i] = rnd_range(0, 100000);
	for (;;) {
		int k = 0;
		for (int i = 1; i < n_xfers; i++)
			if (next[i] < next[k])
				k = i;
		int64_t t = next[k];
		if (t >= end_us)
			break;
		while (cur + 1 < n_reg && reg[cur + 1].from <= t) {
			cur++;
			hs_bucket_set_rate(&b, reg[cur].rate, reg[cur].from);
		}
		size_t got = hs_bucket_take(&b, 64 * KiB, t);
		if (got) {
			assert_true(run->n < MAX_GRANTS);
			run->g[run->n++] = (struct grant){t, got};
			run->total += got;
			next[k] = t + rnd_range(0, 2000);
		} else {
			int64_t w = hs_bucket_wait_us(&b, 64 * KiB, t);
			assert_true(w > 0);
			next[k] = t + w + rnd_range(0, 500);
		}
	}
}

/* The bytes the schedule allows over [a, b] (us), not counting the burst. */
static double allowed(const struct regime *reg, size_t n_reg, int64_t a, int64_t b)
{
	double sum = 0;

	for (size_t i = 0; i < n_reg; i++) {
		int64_t lo = reg[i].from, hi = i + 1 < n_reg ? reg[i + 1].from : INT64_MAX;
		if (lo < a)
			lo = a;
		if (hi > b)
			hi = b;
		if (hi > lo)
			sum += (double)reg[i].rate * (double)(hi - lo) / SEC;
	}
	return sum;
}

/* Every 10-s window [t, t + 10 s] starting at a grant (the worst ones). */
static void check_windows(const struct run *run, const struct regime *reg, size_t n_reg,
			  uint64_t max_burst)
{
	uint64_t sum = 0, worst_rel = 0;
	size_t j = 0;

	for (size_t i = 0; i < run->n; i++) {
		int64_t a = run->g[i].t, b = a + 10 * SEC;
		while (j < run->n && run->g[j].t <= b)
			sum += run->g[j++].n;
		/* The bucket's own bound, exact. */
		assert_true((double)sum <= allowed(reg, n_reg, a, b) + (double)max_burst + 0.5);
		/* The promise: within 5% of the rate of a window in one regime. */
		for (size_t r = 0; r < n_reg; r++) {
			int64_t lo = reg[r].from, hi = r + 1 < n_reg ? reg[r + 1].from : INT64_MAX;
			if (a >= lo && b <= hi && reg[r].rate) {
				assert_true((double)sum <= 1.05 * (double)reg[r].rate * 10);
				uint64_t rel = sum * 1000 / (reg[r].rate * 10);
				if (rel > worst_rel)
					worst_rel = rel;
			}
		}
		sum -= run->g[i].n;
	}
	print_message("# worst 10-s window: %.1f%% of the rate\n", (double)worst_rel / 10);
}

static uint64_t burst_of(uint64_t rate)
{
	struct hs_bucket b;

	hs_bucket_init(&b, rate, 0);
	return b.burst;
}

static void test_simulated_minute(void **state)
{
	static const uint64_t rates[] = {10 * KiB, 100 * KiB, MiB, 20 * MiB};

	(void)state;
	rng_state = 7;
	for (size_t r = 0; r < sizeof(rates) / sizeof(rates[0]); r++) {
		struct regime reg = {0, rates[r]};
		struct run run;

		simulate(&run, &reg, 1, 8, 60 * SEC);
		check_windows(&run, &reg, 1, burst_of(rates[r]));
		/* Demand exceeds supply: the rate is used. */
		assert_true((double)run.total >= 0.95 * (double)rates[r] * 60);
		assert_true((double)run.total <= (double)rates[r] * 60 + 16 * KiB + rates[r] / 50);
		print_message("# %llu B/s: %llu bytes in 60 s (%.2f%%), %zu grants\n",
			      (unsigned long long)rates[r], (unsigned long long)run.total,
			      100.0 * (double)run.total / ((double)rates[r] * 60), run.n);
		free(run.g);
	}
}

static void test_simulated_rate_changes(void **state)
{
	/* The timetable: 2 MiB/s, down to 512 KiB/s, off, 4 MiB/s. */
	static const struct regime reg[] = {
	    {0, 2 * MiB}, {30 * SEC, 512 * KiB}, {45 * SEC, 0}, {50 * SEC, 4 * MiB}};
	struct run run;

	(void)state;
	rng_state = 99;
	simulate(&run, reg, 4, 6, 80 * SEC);
	/* Windows that see the unlimited stretch are not bounded; split at it. */
	struct run before = {run.g, 0, 0}, after = {NULL, 0, 0};
	while (before.n < run.n && run.g[before.n].t < 45 * SEC)
		before.n++;
	size_t k = before.n;
	while (k < run.n && run.g[k].t < 50 * SEC)
		k++;
	after.g = run.g + k;
	after.n = run.n - k;
	check_windows(&before, reg, 2, 4 * MiB / 50);
	check_windows(&after, reg + 3, 1, 4 * MiB / 50);
	/* Each stretch got its rate. */
	uint64_t seg[4] = {0};
	for (size_t i = 0; i < run.n; i++)
		seg[run.g[i].t < 30 * SEC   ? 0
		    : run.g[i].t < 45 * SEC ? 1
		    : run.g[i].t < 50 * SEC ? 2
					    : 3] += run.g[i].n;
	assert_true((double)seg[0] >= 0.95 * 2.0 * MiB * 30);
	assert_true((double)seg[1] >= 0.95 * 512.0 * KiB * 15 &&
		    seg[1] <= 512 * KiB * 15 + 2 * MiB / 50);
	assert_true((double)seg[3] >= 0.95 * 4.0 * MiB * 30);
	/* The switch from unlimited starts empty: no more than the rate. */
	uint64_t first = 0;
	for (size_t i = k; i < run.n && run.g[i].t < 50 * SEC + 100000; i++)
		first += run.g[i].n;
	assert_true(first <= 4 * MiB / 10 + 1);
	free(run.g);
}

/* The daemon sets the bucket to the timetable's rate at each change. A
 * "pause" entry stops new uploads; the bytes of a PUT already sending
 * still pass the bucket, at the rate before the pause, never unlimited. */
static void test_pause_keeps_the_cap(void **state)
{
	char *cause = NULL;
	struct hs_timetable *tt = hs_timetable_parse("08:00,1MiB/s 12:00,pause 13:00,off", &cause);
	struct tm before = {.tm_wday = 3, .tm_hour = 11, .tm_min = 59};
	struct tm during = {.tm_wday = 3, .tm_hour = 12, .tm_min = 30};
	struct tm after = {.tm_wday = 3, .tm_hour = 13, .tm_min = 0};
	struct hs_bucket b;
	uint64_t passed = 0;

	(void)state;
	assert_non_null(tt);
	assert_false(hs_timetable_paused_at(tt, &before));
	hs_bucket_init(&b, hs_timetable_rate_at(tt, &before), 0);
	assert_true(b.rate == MiB);
	/* 12:00: the pause begins while a 16 MiB part is sending. */
	assert_true(hs_timetable_paused_at(tt, &during));
	hs_bucket_set_rate(&b, hs_timetable_rate_at(tt, &during), SEC);
	assert_true(b.rate == MiB);
	for (int64_t t = SEC; t <= 11 * SEC; t += 1000)
		passed += hs_bucket_take(&b, 64 * KiB, t);
	/* Ten seconds at 1 MiB/s plus the burst, no more. */
	assert_true(passed <= 10 * MiB + 20971 + MiB / 1000 + 1);
	assert_true(passed >= 10 * MiB);
	/* 13:00: the pause is over and the limit with it. */
	assert_false(hs_timetable_paused_at(tt, &after));
	hs_bucket_set_rate(&b, hs_timetable_rate_at(tt, &after), 12 * SEC);
	assert_true(hs_bucket_take(&b, 5 * GiB, 12 * SEC) == 5 * GiB);
	hs_timetable_free(tt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_header_example),
	    cmocka_unit_test(test_burst_sizes),
	    cmocka_unit_test(test_continuous_refill),
	    cmocka_unit_test(test_unlimited),
	    cmocka_unit_test(test_huge_values),
	    cmocka_unit_test(test_clock_backwards),
	    cmocka_unit_test(test_set_rate),
	    cmocka_unit_test(test_wait_exact),
	    cmocka_unit_test(test_simulated_minute),
	    cmocka_unit_test(test_simulated_rate_changes),
	    cmocka_unit_test(test_pause_keeps_the_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
