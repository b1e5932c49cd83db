/* Sizes, durations and rates: every suffix, and what is refused. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "conf/units.h"

#define KiB 1024ULL
#define MiB (1024 * KiB)
#define GiB (1024 * MiB)
#define TiB (1024 * GiB)

static void expect_size(const char *s, uint64_t want)
{
	uint64_t got = 0;

	assert_int_equal(hs_parse_size(s, &got), 0);
	assert_true(got == want);
}

static void expect_bad_size(const char *s)
{
	uint64_t got = 42;

	assert_int_equal(hs_parse_size(s, &got), -1);
	assert_true(got == 42); /* left untouched */
}

static void expect_duration(const char *s, uint64_t want_ms)
{
	uint64_t got = 0;

	assert_int_equal(hs_parse_duration_ms(s, &got), 0);
	assert_true(got == want_ms);
}

static void expect_bad_duration(const char *s)
{
	uint64_t got = 42;

	assert_int_equal(hs_parse_duration_ms(s, &got), -1);
	assert_true(got == 42);
}

static void expect_rate(const char *s, uint64_t want)
{
	uint64_t got = 42;

	assert_int_equal(hs_parse_rate(s, &got), 0);
	assert_true(got == want);
}

static void expect_bad_rate(const char *s)
{
	uint64_t got = 42;

	assert_int_equal(hs_parse_rate(s, &got), -1);
	assert_true(got == 42);
}

static void test_size_suffixes(void **state)
{
	(void)state;
	expect_size("0", 0);
	expect_size("4096", 4096);
	expect_size("007", 7);
	expect_size("10B", 10);
	expect_size("1KiB", KiB);
	expect_size("512KiB", 512 * KiB);
	expect_size("16MiB", 16 * MiB);
	expect_size("5GiB", 5 * GiB);
	expect_size("2TiB", 2 * TiB);
	expect_size("3k", 3 * KiB);
	expect_size("3K", 3 * KiB);
	expect_size("3M", 3 * MiB);
	expect_size("3G", 3 * GiB);
	expect_size("3T", 3 * TiB);
	expect_size("10kB", 10000);
	expect_size("10KB", 10000);
	expect_size("10MB", 10000000);
	expect_size("10GB", 10000000000ULL);
	expect_size("10TB", 10000000000000ULL);
}

static void test_size_limits(void **state)
{
	(void)state;
	expect_size("18446744073709551615", UINT64_MAX);
	expect_bad_size("18446744073709551616");
	expect_bad_size("99999999999999999999999");
	expect_size("16777215TiB", 16777215ULL * TiB);
	expect_bad_size("16777216TiB"); /* 2^64 */
	expect_bad_size("18446744073709551615K");
	expect_size("18446744TB", 18446744ULL * 1000000000000ULL);
	expect_bad_size("18446745TB");
}

static void test_size_refused(void **state)
{
	(void)state;
	expect_bad_size("");
	expect_bad_size("MiB");
	expect_bad_size("-1");
	expect_bad_size("-1MiB");
	expect_bad_size("+1");
	expect_bad_size("1.5MiB");
	expect_bad_size("16 MiB");
	expect_bad_size(" 16MiB");
	expect_bad_size("16MiB ");
	expect_bad_size("16mib");
	expect_bad_size("16Mib");
	expect_bad_size("16mB");
	expect_bad_size("16Mi");
	expect_bad_size("16MiBx");
	expect_bad_size("16MiB/s");
	expect_bad_size("16b");
	expect_bad_size("0x10");
	expect_bad_size("1e6");
	expect_bad_size(NULL);
}

static void test_duration_suffixes(void **state)
{
	(void)state;
	expect_duration("0s", 0);
	expect_duration("0", 0);
	expect_duration("90", 90000);
	expect_duration("250ms", 250);
	expect_duration("2s", 2000);
	expect_duration("15m", 15 * 60000);
	expect_duration("1h", 3600000);
	expect_duration("1d", 86400000);
	expect_duration("18446744073709551615ms", UINT64_MAX);
}

static void test_duration_refused(void **state)
{
	(void)state;
	expect_bad_duration("");
	expect_bad_duration("s");
	expect_bad_duration("-1s");
	expect_bad_duration("1.5s");
	expect_bad_duration("1h30m");
	expect_bad_duration("2 s");
	expect_bad_duration("2S");
	expect_bad_duration("2H");
	expect_bad_duration("2sec");
	expect_bad_duration("2w");
	expect_bad_duration("2us");
	expect_bad_duration("18446744073709551615s");
	expect_bad_duration("18446744073709552d");
	expect_bad_duration("18446744073709551616ms");
	expect_bad_duration(NULL);
}

static void test_rates(void **state)
{
	(void)state;
	expect_rate("off", 0);
	expect_rate("2MiB/s", 2 * MiB);
	expect_rate("512KiB/s", 512 * KiB);
	expect_rate("1GiB/s", GiB);
	expect_rate("1M/s", MiB);
	expect_rate("10MB/s", 10000000);
	expect_rate("100B/s", 100);
	expect_rate("100/s", 100);
	expect_rate("1000000", 1000000);
}

static void test_rates_refused(void **state)
{
	(void)state;
	expect_bad_rate("");
	expect_bad_rate("Off");
	expect_bad_rate("OFF");
	expect_bad_rate("0");	   /* ambiguous: write "off" */
	expect_bad_rate("0MiB/s"); /* likewise */
	expect_bad_rate("2MiB");   /* a size is not a rate */
	expect_bad_rate("2MiB/m");
	expect_bad_rate("2MiB/s ");
	expect_bad_rate("2MiB /s");
	expect_bad_rate("/s");
	expect_bad_rate("MiB/s");
	expect_bad_rate("-2MiB/s");
	expect_bad_rate("1.5MiB/s");
	expect_bad_rate("16777216TiB/s");
	expect_bad_rate("99999999999999999999999999999999999999999999999999999999999999999999/s");
	expect_bad_rate(NULL);
}

static void test_format(void **state)
{
	char buf[32];

	(void)state;
	assert_string_equal(hs_format_size(0, buf, sizeof(buf)), "0 B");
	assert_string_equal(hs_format_size(1023, buf, sizeof(buf)), "1023 B");
	assert_string_equal(hs_format_size(KiB, buf, sizeof(buf)), "1.0 KiB");
	assert_string_equal(hs_format_size(14890000, buf, sizeof(buf)), "14.2 MiB");
	assert_string_equal(hs_format_size(5 * GiB, buf, sizeof(buf)), "5.0 GiB");
	assert_string_equal(hs_format_size(UINT64_MAX, buf, sizeof(buf)), "16.0 EiB");

	assert_string_equal(hs_format_size_exact(0, buf, sizeof(buf)), "0");
	assert_string_equal(hs_format_size_exact(1000, buf, sizeof(buf)), "1000");
	assert_string_equal(hs_format_size_exact(512 * KiB, buf, sizeof(buf)), "512KiB");
	assert_string_equal(hs_format_size_exact(64 * MiB, buf, sizeof(buf)), "64MiB");
	assert_string_equal(hs_format_size_exact(1536 * MiB, buf, sizeof(buf)), "1536MiB");
	assert_string_equal(hs_format_size_exact(5 * GiB, buf, sizeof(buf)), "5GiB");
	assert_string_equal(hs_format_size_exact(3 * TiB, buf, sizeof(buf)), "3TiB");
	assert_string_equal(hs_format_size_exact(UINT64_MAX, buf, sizeof(buf)),
			    "18446744073709551615");
}

/* What hs_format_size_exact writes, hs_parse_size reads back. */
static void test_count(void **state)
{
	char buf[32];

	(void)state;
	assert_string_equal(hs_format_count(0, buf, sizeof(buf)), "0");
	assert_string_equal(hs_format_count(999, buf, sizeof(buf)), "999");
	assert_string_equal(hs_format_count(1000, buf, sizeof(buf)), "1,000");
	assert_string_equal(hs_format_count(1204, buf, sizeof(buf)), "1,204");
	assert_string_equal(hs_format_count(1234567, buf, sizeof(buf)), "1,234,567");
	assert_string_equal(hs_format_count(UINT64_MAX, buf, sizeof(buf)),
			    "18,446,744,073,709,551,615");
	assert_string_equal(hs_format_count(1234567, buf, 6), "1,234"); /* cut, never overrun */
}

static void test_local_time(void **state)
{
	int64_t t = 0;

	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	assert_int_equal(hs_parse_local_time("2026-12-01", &t), 0);
	assert_true(t == 1796083200);
	assert_int_equal(hs_parse_local_time("2026-12-01 17:00", &t), 0);
	assert_true(t == 1796144400);
	assert_int_equal(hs_parse_local_time("2026-12-01T17:00:30", &t), 0);
	assert_true(t == 1796144430);
	assert_int_equal(hs_parse_local_time("2028-02-29", &t), 0); /* a leap day */
	static const char *const bad[] = {"",
					  "2026-12-1",
					  "2026/12/01",
					  "2026-13-01",
					  "2027-02-29",
					  "2026-12-01 17",
					  "2026-12-01 17:60",
					  "2026-12-01 25:00",
					  "2026-12-01x17:00",
					  " 2026-12-01",
					  "2026-12-01 17:00:00Z",
					  "+026-12-01",
					  "0226-12-01",
					  "1969-12-31"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (hs_parse_local_time(bad[i], &t) == 0)
			fail_msg("\"%s\" was accepted", bad[i]);
	unsetenv("TZ");
	tzset();
}

static void test_round_trip(void **state)
{
	static const uint64_t values[] = {0,	    1,	     1000,    KiB,	 5 * MiB + 1,
					  16 * MiB, 5 * GiB, 7 * TiB, UINT64_MAX};
	char buf[32];

	(void)state;
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++)
		expect_size(hs_format_size_exact(values[i], buf, sizeof(buf)), values[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_size_suffixes),    cmocka_unit_test(test_size_limits),
	    cmocka_unit_test(test_size_refused),     cmocka_unit_test(test_duration_suffixes),
	    cmocka_unit_test(test_duration_refused), cmocka_unit_test(test_rates),
	    cmocka_unit_test(test_rates_refused),    cmocka_unit_test(test_format),
	    cmocka_unit_test(test_round_trip),	     cmocka_unit_test(test_count),
	    cmocka_unit_test(test_local_time),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
