#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "queue/backoff.h"

static const struct hs_backoff sec_hour = {.base_ms = 1000, .cap_ms = 3600 * 1000};

static void test_ceiling_doubles(void **state)
{
	(void)state;
	assert_int_equal(hs_backoff_ceiling(&sec_hour, 1), 1000);
	assert_int_equal(hs_backoff_ceiling(&sec_hour, 2), 2000);
	assert_int_equal(hs_backoff_ceiling(&sec_hour, 3), 4000);
	assert_int_equal(hs_backoff_ceiling(&sec_hour, 12), 2048000);
	/* attempt 0 is treated as the first */
	assert_int_equal(hs_backoff_ceiling(&sec_hour, 0), 1000);
}

static void test_ceiling_caps(void **state)
{
	(void)state;
	/* 1 s * 2^12 = 4096 s > 1 h: retry 13 and later wait up to 1 h */
	assert_int_equal(hs_backoff_ceiling(&sec_hour, 13), 3600 * 1000);
	assert_int_equal(hs_backoff_ceiling(&sec_hour, 14), 3600 * 1000);
	assert_int_equal(hs_backoff_ceiling(&sec_hour, 64), 3600 * 1000);
	assert_int_equal(hs_backoff_ceiling(&sec_hour, 65), 3600 * 1000);
	/* base above cap */
	struct hs_backoff b = {.base_ms = 5000, .cap_ms = 100};
	assert_int_equal(hs_backoff_ceiling(&b, 1), 100);
	assert_int_equal(hs_backoff_ceiling(&b, 7), 100);
}

static void test_no_overflow(void **state)
{
	struct hs_backoff huge = {.base_ms = UINT64_MAX / 3, .cap_ms = UINT64_MAX};
	struct hs_backoff one = {.base_ms = 1, .cap_ms = UINT64_MAX};
	struct hs_backoff zero = {.base_ms = 0, .cap_ms = 1000};

	(void)state;
	assert_int_equal(hs_backoff_ceiling(&sec_hour, 1000), 3600 * 1000);
	assert_int_equal(hs_backoff_ceiling(&sec_hour, UINT32_MAX), 3600 * 1000);
	assert_true(hs_backoff_ceiling(&huge, 2) == (UINT64_MAX / 3) * 2);
	assert_true(hs_backoff_ceiling(&huge, 3) == UINT64_MAX);
	assert_true(hs_backoff_ceiling(&huge, 1000) == UINT64_MAX);
	assert_true(hs_backoff_ceiling(&one, 64) == (uint64_t)1 << 63);
	assert_true(hs_backoff_ceiling(&one, 65) == UINT64_MAX);
	assert_true(hs_backoff_ceiling(&one, 1000) == UINT64_MAX);
	assert_int_equal(hs_backoff_ceiling(&zero, 1000), 0);
	assert_int_equal(hs_backoff_delay(&zero, 1000, UINT64_MAX), 0);
}

static void test_delay_bounds(void **state)
{
	static const uint64_t rnds[] = {0,
					1,
					999,
					1000,
					1001,
					0x8000000000000000u,
					UINT64_MAX - 1,
					UINT64_MAX,
					0x123456789abcdef0u};
	struct hs_backoff all = {.base_ms = 1, .cap_ms = UINT64_MAX};

	(void)state;
	for (unsigned attempt = 0; attempt <= 1000; attempt++) {
		uint64_t c = hs_backoff_ceiling(&sec_hour, attempt);
		for (size_t i = 0; i < sizeof(rnds) / sizeof(rnds[0]); i++) {
			assert_true(hs_backoff_delay(&sec_hour, attempt, rnds[i]) <= c);
			assert_true(hs_backoff_delay(&all, attempt, rnds[i]) <=
				    hs_backoff_ceiling(&all, attempt));
		}
	}
	/* both ends of [0, ceiling] are reachable */
	assert_int_equal(hs_backoff_delay(&sec_hour, 1, 0), 0);
	assert_int_equal(hs_backoff_delay(&sec_hour, 1, 1000), 1000);
	assert_int_equal(hs_backoff_delay(&sec_hour, 2, 2000), 2000);
	assert_int_equal(hs_backoff_delay(&sec_hour, 2, 2001), 0);
	assert_true(hs_backoff_delay(&all, 1000, UINT64_MAX) == UINT64_MAX);
	assert_true(hs_backoff_delay(&all, 1000, 0) == 0);
}

static void test_random(void **state)
{
	uint64_t a = hs_random64(), b = hs_random64(), c = hs_random64();
	uint64_t ones = 0;

	(void)state;
	/* three equal draws from 2^64 values: practically impossible */
	assert_false(a == b && b == c);
	for (int i = 0; i < 256; i++)
		ones += (uint64_t)__builtin_popcountll(hs_random64());
	/* 16384 bits: mean 8192, sd 64; 10 sd either way */
	assert_in_range(ones, 8192 - 640, 8192 + 640);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ceiling_doubles), cmocka_unit_test(test_ceiling_caps),
	    cmocka_unit_test(test_no_overflow),	    cmocka_unit_test(test_delay_bounds),
	    cmocka_unit_test(test_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
