#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "agent/outage.h"

static void test_failures_in_a_row(void **state)
{
	struct hs_outage o = {0};
	bool news;
	int64_t pause;

	(void)state;
	assert_int_equal(hs_outage_failed(&o, 1000, 1, false, 0, &news, &pause), HS_OUTAGE_RETRY);
	assert_int_equal(hs_outage_failed(&o, 2000, 1, false, 0, &news, &pause), HS_OUTAGE_RETRY);
	/* an answer between failures: the count starts over */
	assert_false(hs_outage_answered(&o, 2500));
	assert_int_equal(hs_outage_failed(&o, 3000, 1, false, 0, &news, &pause), HS_OUTAGE_RETRY);
	assert_int_equal(hs_outage_failed(&o, 4000, 1, false, 0, &news, &pause), HS_OUTAGE_RETRY);
	assert_false(hs_outage_known(&o));
	assert_int_equal(hs_outage_failed(&o, 5000, 1, false, 0, &news, &pause),
			 HS_OUTAGE_GIVE_BACK);
	assert_true(news);
	assert_true(hs_outage_known(&o));
	assert_int_equal(o.since_ms, 5000);
	/* rnd 0: the lower end of the upper half of 30 s, plus 15 s */
	assert_int_equal(pause, 15000 + 15000);
	assert_int_equal(hs_outage_slots(&o, 5000, 4), 0);
	/* a transfer still in flight fails during the pause: no news */
	assert_int_equal(hs_outage_failed(&o, 6000, 1, false, 0, &news, &pause),
			 HS_OUTAGE_GIVE_BACK);
	assert_false(news);
	assert_int_equal(pause, 29000);
}

static void test_one_probe_then_longer_pauses(void **state)
{
	struct hs_outage o = {0};
	bool news;
	int64_t pause, prev = 0, now = 0;

	(void)state;
	assert_int_equal(hs_outage_refused(&o, now, UINT64_MAX, &news, &pause),
			 HS_OUTAGE_GIVE_BACK);
	for (int n = 1; n < 12; n++) {
		assert_true(pause >= prev / 2);
		assert_true(pause <= HS_OUTAGE_MAX_GAP_MS);
		assert_int_equal(hs_outage_slots(&o, now + pause - 1, 4), 0);
		now += pause;
		/* the pause is over: one probe */
		assert_int_equal(hs_outage_slots(&o, now, 4), 1);
		prev = pause;
		assert_int_equal(
		    hs_outage_failed(&o, now + 10, 1, false, UINT64_MAX, &news, &pause),
		    HS_OUTAGE_GIVE_BACK);
		assert_true(news);
		now += 10;
	}
	assert_true(pause >= HS_OUTAGE_MIN_MS + HS_OUTAGE_CAP_MS / 2);
	assert_true(hs_outage_answered(&o, now));
	assert_int_equal(hs_outage_slots(&o, now, 4), 4);
	assert_false(hs_outage_known(&o));
}

/* The fleet's goal: at most 15 requests per agent in 30 min of outage,
 * counting a burst of 4 in-flight failures and one request per probe,
 * whatever the draws. */
static void test_probe_budget(void **state)
{
	uint64_t seed = 88172645463325252ULL;

	(void)state;
	for (int run = 0; run < 1000; run++) {
		struct hs_outage o = {0};
		bool news;
		int64_t pause = 0, now = 0;
		unsigned requests = 0;

		for (int i = 0; i < 4; i++) {
			seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
			hs_outage_failed(&o, now, (uint64_t)i, true, seed, &news, &pause);
			requests++;
		}
		while (now + pause < 30 * 60 * 1000) {
			now += pause;
			assert_int_equal(hs_outage_slots(&o, now, 4), 1);
			seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
			hs_outage_failed(&o, now, 9, false, seed, &news, &pause);
			requests++;
		}
		assert_true(requests <= 15);
	}
}

/* One transfer whose own requests fail while the API answered it: its
 * own problem, never an outage; a second transfer failing makes it one. */
static void test_own_failures(void **state)
{
	struct hs_outage o = {0};
	bool news;
	int64_t pause;

	(void)state;
	for (int i = 0; i < 10; i++)
		assert_int_equal(hs_outage_failed(&o, i, 7, true, 0, &news, &pause),
				 HS_OUTAGE_RETRY);
	assert_false(hs_outage_known(&o));
	assert_int_equal(hs_outage_failed(&o, 11, 8, true, 0, &news, &pause), HS_OUTAGE_GIVE_BACK);
	assert_true(news);
}

/* A file that failed on its own and ended leaves no row behind: the next
 * file starts from zero. */
static void test_forget(void **state)
{
	struct hs_outage o = {0};
	bool news;
	int64_t pause;

	(void)state;
	for (int i = 0; i < 5; i++)
		hs_outage_failed(&o, i, 7, true, 0, &news, &pause);
	hs_outage_forget(&o, 8); /* another transfer's end changes nothing */
	assert_int_equal(hs_outage_failed(&o, 6, 9, true, 0, &news, &pause), HS_OUTAGE_GIVE_BACK);
	hs_outage_answered(&o, 7);
	for (int i = 0; i < 5; i++)
		hs_outage_failed(&o, 10 + i, 7, true, 0, &news, &pause);
	hs_outage_forget(&o, 7);
	assert_int_equal(hs_outage_failed(&o, 20, 9, true, 0, &news, &pause), HS_OUTAGE_RETRY);
	assert_int_equal(hs_outage_failed(&o, 21, 9, true, 0, &news, &pause), HS_OUTAGE_RETRY);
	assert_false(hs_outage_known(&o));
}

static void test_wake(void **state)
{
	struct hs_outage o = {0};
	bool news;
	int64_t pause;

	(void)state;
	hs_outage_refused(&o, 0, 0, &news, &pause);
	hs_outage_wake(&o);
	assert_int_equal(hs_outage_slots(&o, 1, 4), 1);
	assert_true(hs_outage_known(&o));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_failures_in_a_row),
	    cmocka_unit_test(test_one_probe_then_longer_pauses),
	    cmocka_unit_test(test_probe_budget),
	    cmocka_unit_test(test_own_failures),
	    cmocka_unit_test(test_forget),
	    cmocka_unit_test(test_wake),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
