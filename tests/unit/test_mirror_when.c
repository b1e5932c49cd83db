#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <cmocka.h>

#include "agent/mirror_when.h"

#define MIN  (60 * 1000LL)
#define HOUR (60 * MIN)
/* 2026-12-07 00:00:00 UTC, a Monday. */
#define DAY0 (1796601600LL * 1000)

static struct hs_cron *nightly(void)
{
	char *cause = NULL;
	struct hs_cron *c = hs_cron_parse("0 2 * * *", &cause);

	assert_non_null(c);
	return c;
}

static void test_jitter_covers_its_range(void **state)
{
	(void)state;
	assert_int_equal(hs_mirror_jitter(0, 12345), 0);
	assert_int_equal(hs_mirror_jitter(10 * MIN, 0), 0);
	assert_int_equal(hs_mirror_jitter(10 * MIN, 10 * MIN), 10 * MIN);
	assert_int_equal(hs_mirror_jitter(10 * MIN, 10 * MIN + 1), 0);
	assert_true(hs_mirror_jitter(10 * MIN, UINT64_MAX) <= 10 * MIN);
	/* an absurd jitter does not overflow a time it is added to */
	assert_true(hs_mirror_jitter(UINT64_MAX, UINT64_MAX - 1) <= INT64_MAX / 4);
}

/* Machines switched on at 07:00 after missing 02:00: each waits its own
 * draw over the jitter, never less than 5 s. */
static void test_missed_run_waits_its_jitter(void **state)
{
	struct hs_cron *c = nightly();
	enum hs_mirror_first why;
	int64_t boot = DAY0 + 7 * HOUR, last = DAY0 - 22 * HOUR; /* yesterday 02:00 */

	(void)state;
	assert_int_equal(hs_mirror_first_at(c, 10 * MIN, boot, last, 0, &why),
			 boot + HS_MIRROR_START_DELAY_MS);
	assert_int_equal(why, HS_MIRROR_FIRST_MISSED);
	assert_int_equal(hs_mirror_first_at(c, 10 * MIN, boot, last, 10 * MIN, &why),
			 boot + HS_MIRROR_START_DELAY_MS + 10 * MIN);
	assert_int_equal(hs_mirror_first_at(c, 10 * MIN, boot, last, 4 * MIN, &why),
			 boot + HS_MIRROR_START_DELAY_MS + 4 * MIN);
	/* no jitter configured: the old 5 s */
	assert_int_equal(hs_mirror_first_at(c, 0, boot, last, 4 * MIN, &why),
			 boot + HS_MIRROR_START_DELAY_MS);
	hs_cron_free(c);
}

/* A first install: no run ever finished. Its run is 17 times a nightly
 * one: spread over 36 times the jitter. */
static void test_first_ever_run_waits_its_jitter(void **state)
{
	struct hs_cron *c = nightly();
	enum hs_mirror_first why;
	int64_t now = DAY0 + 9 * HOUR + 1234;

	(void)state;
	assert_int_equal(hs_mirror_first_at(c, 10 * MIN, now, 0, 7 * MIN + 5, &why),
			 now + HS_MIRROR_START_DELAY_MS + 7 * MIN + 5);
	assert_int_equal(why, HS_MIRROR_FIRST_NEVER);
	/* the draw covers 36 times the jitter: 6 h for 10 min */
	assert_int_equal(HS_MIRROR_FIRST_SPREAD, 36);
	assert_int_equal(hs_mirror_first_at(c, 10 * MIN, now, 0, 6 * HOUR, &why),
			 now + HS_MIRROR_START_DELAY_MS + 6 * HOUR);
	assert_int_equal(hs_mirror_first_at(c, 10 * MIN, now, 0, 6 * HOUR + 1, &why),
			 now + HS_MIRROR_START_DELAY_MS);
	/* jitter 0 (tests, a single clinic): at once */
	assert_int_equal(hs_mirror_first_at(c, 0, now, 0, 6 * HOUR, &why),
			 now + HS_MIRROR_START_DELAY_MS);
	assert_true(hs_mirror_first_at(c, UINT64_MAX, now, 0, UINT64_MAX - 1, &why) >= now);
	hs_cron_free(c);
}

/* Up to date: the next scheduled time with its jitter. */
static void test_up_to_date_waits_for_the_schedule(void **state)
{
	struct hs_cron *c = nightly();
	enum hs_mirror_first why;
	int64_t last = DAY0 + 2 * HOUR + 3 * MIN, now = DAY0 + 7 * HOUR;

	(void)state;
	assert_int_equal(hs_mirror_first_at(c, 10 * MIN, now, last, 3 * MIN, &why),
			 DAY0 + 26 * HOUR + 3 * MIN);
	assert_int_equal(why, HS_MIRROR_FIRST_SCHEDULED);
	/* started at 01:59 and the machine came back at 02:00:30: missed */
	last = DAY0 + 2 * HOUR - MIN;
	now = DAY0 + 2 * HOUR + 30 * 1000;
	assert_int_equal(hs_mirror_first_at(c, 10 * MIN, now, last, 0, &why),
			 now + HS_MIRROR_START_DELAY_MS);
	assert_int_equal(why, HS_MIRROR_FIRST_MISSED);
	hs_cron_free(c);
}

static void test_scheduled_after(void **state)
{
	struct hs_cron *c = nightly();
	char *cause = NULL;
	struct hs_cron *never = hs_cron_parse("0 0 30 2 *", &cause);

	(void)state;
	assert_int_equal(hs_mirror_scheduled_after(c, 10 * MIN, DAY0, 0), DAY0 + 2 * HOUR);
	assert_int_equal(hs_mirror_scheduled_after(c, 10 * MIN, DAY0 + 2 * HOUR, 10 * MIN),
			 DAY0 + 26 * HOUR + 10 * MIN);
	assert_non_null(never);
	assert_int_equal(hs_mirror_scheduled_after(never, 10 * MIN, DAY0, 0), -1);
	hs_cron_free(never);
	hs_cron_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_jitter_covers_its_range),
	    cmocka_unit_test(test_missed_run_waits_its_jitter),
	    cmocka_unit_test(test_first_ever_run_waits_its_jitter),
	    cmocka_unit_test(test_up_to_date_waits_for_the_schedule),
	    cmocka_unit_test(test_scheduled_after),
	};

	setenv("TZ", "UTC", 1);
	tzset();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
