/* The bandwidth timetable: parsing, the rate in force, and the next change
 * across daylight-saving changes (Europe/Berlin, America/New_York). */
#include "config.h"

#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "conf/timetable.h"

#define KiB 1024ULL
#define MiB (1024 * KiB)

enum { MON = 1, TUE, WED, THU, FRI, SAT, SUN = 0 }; /* tm_wday */

static struct hs_timetable *parse_ok(const char *s, const char *canonical)
{
	char *cause = NULL;
	struct hs_timetable *tt = hs_timetable_parse(s, &cause);

	if (!tt)
		fail_msg("\"%s\" refused: %s", s, cause ? cause : "out of memory");
	assert_null(cause);
	assert_string_equal(hs_timetable_text(tt), canonical);
	return tt;
}

static void parse_bad(const char *s, const char *want)
{
	char *cause = NULL;
	struct hs_timetable *tt = hs_timetable_parse(s, &cause);

	if (tt)
		fail_msg("\"%s\" accepted as \"%s\"", s, hs_timetable_text(tt));
	assert_non_null(cause);
	assert_string_equal(cause, want);
	free(cause);
}

static uint64_t rate_at(const struct hs_timetable *tt, int wday, int hour, int min)
{
	struct tm tm = {.tm_wday = wday, .tm_hour = hour, .tm_min = min, .tm_sec = 30};

	return hs_timetable_rate_at(tt, &tm);
}

static time_t utc(int year, int mon, int day, int hour, int min, int sec)
{
	struct tm tm = {
	    .tm_year = year - 1900,
	    .tm_mon = mon - 1,
	    .tm_mday = day,
	    .tm_hour = hour,
	    .tm_min = min,
	    .tm_sec = sec,
	};

	return timegm(&tm);
}

static void use_zone(const char *tz)
{
	assert_int_equal(setenv("TZ", tz, 1), 0);
	tzset();
}

static void test_single_rate(void **state)
{
	struct hs_timetable *tt;

	(void)state;
	use_zone("UTC");
	tt = parse_ok("off", "off");
	assert_true(rate_at(tt, MON, 12, 0) == 0);
	assert_true(hs_timetable_next_change(tt, utc(2026, 5, 1, 0, 0, 0)) == 0);
	hs_timetable_free(tt);

	tt = parse_ok("2MiB/s", "2MiB/s");
	assert_true(rate_at(tt, SUN, 23, 59) == 2 * MiB);
	assert_true(hs_timetable_rate(tt, utc(2026, 5, 1, 0, 0, 0)) == 2 * MiB);
	assert_true(hs_timetable_next_change(tt, utc(2026, 5, 1, 0, 0, 0)) == 0);
	hs_timetable_free(tt);

	hs_timetable_free(parse_ok("1000000", "1000000/s"));
	hs_timetable_free(parse_ok("  512K/s ", "512KiB/s"));
	assert_null(hs_timetable_free(NULL));
}

static void test_canonical_text(void **state)
{
	(void)state;
	hs_timetable_free(parse_ok("08:00,2MiB/s 18:00,off", "08:00,2MiB/s 18:00,off"));
	hs_timetable_free(parse_ok(" 8:00,2M/s   18:00,off ", "08:00,2MiB/s 18:00,off"));
	hs_timetable_free(
	    parse_ok("Mon-08:00,1MiB/s Sat-00:00,off", "Mon-08:00,1MiB/s Sat-00:00,off"));
	hs_timetable_free(parse_ok("18:00,off 08:00,1000000", "18:00,off 08:00,1000000/s"));
	hs_timetable_free(parse_ok("00:00,1KiB/s", "00:00,1KiB/s"));
	hs_timetable_free(parse_ok("Sun-23:59,10MB/s", "Sun-23:59,10000000/s"));
}

static void test_refused(void **state)
{
	(void)state;
	parse_bad("", "empty (want a rate like \"2MiB/s\" or \"off\", or a timetable like "
		      "\"08:00,2MiB/s 18:00,off\")");
	parse_bad("   ", "empty (want a rate like \"2MiB/s\" or \"off\", or a timetable like "
			 "\"08:00,2MiB/s 18:00,off\")");
	parse_bad("fast", "bad rate \"fast\" (want e.g. \"2MiB/s\", \"512KiB/s\" or \"off\")");
	parse_bad("0", "bad rate \"0\" (want e.g. \"2MiB/s\", \"512KiB/s\" or \"off\")");
	parse_bad("24:00,off", "bad time in \"24:00,off\" (want HH:MM from 00:00 to 23:59)");
	parse_bad("8:0x,off", "bad time in \"8:0x,off\" (want HH:MM from 00:00 to 23:59)");
	parse_bad("08:60,off", "bad time in \"08:60,off\" (want HH:MM from 00:00 to 23:59)");
	parse_bad("08:5,off", "bad time in \"08:5,off\" (want HH:MM from 00:00 to 23:59)");
	parse_bad("008:00,off", "bad time in \"008:00,off\" (want HH:MM from 00:00 to 23:59)");
	parse_bad("-8:00,off", "bad time in \"-8:00,off\" (want HH:MM from 00:00 to 23:59)");
	parse_bad("0800,off", "bad time in \"0800,off\" (want HH:MM from 00:00 to 23:59)");
	parse_bad(",off", "bad time in \",off\" (want HH:MM from 00:00 to 23:59)");
	parse_bad("08:00,2MiB", "bad rate \"2MiB\" (want e.g. \"2MiB/s\", \"512KiB/s\", \"off\" "
				"or \"pause\")");
	parse_bad("08:00,", "bad rate \"\" (want e.g. \"2MiB/s\", \"512KiB/s\", \"off\" or "
			    "\"pause\")");
	parse_bad("08:00,off,", "bad rate \"off,\" (want e.g. \"2MiB/s\", \"512KiB/s\", \"off\" "
				"or \"pause\")");
	parse_bad("Mun-08:00,off", "bad day \"Mun\" in \"Mun-08:00,off\" (want Mon, Tue, Wed, Thu, "
				   "Fri, Sat or Sun)");
	parse_bad("mon-08:00,off", "bad day \"mon\" in \"mon-08:00,off\" (want Mon, Tue, Wed, Thu, "
				   "Fri, Sat or Sun)");
	parse_bad("Monday-08:00,off",
		  "bad time in \"Monday-08:00,off\" (want HH:MM from 00:00 to 23:59)");
	parse_bad("2MiB/s 18:00,off",
		  "\"2MiB/s\" is not an entry like \"08:00,2MiB/s\" or \"Mon-08:00,off\"");
	parse_bad("08:00,2MiB/s off",
		  "\"off\" is not an entry like \"08:00,2MiB/s\" or \"Mon-08:00,off\"");
	parse_bad("08:00,2MiB/s 08:00,off",
		  "\"08:00,2MiB/s\" and \"08:00,off\" both set Mon 08:00");
	parse_bad("8:00,2MiB/s Wed-08:00,off",
		  "\"08:00,2MiB/s\" and \"Wed-08:00,off\" both set Wed 08:00");
	parse_bad("Fri-23:00,off Fri-23:00,off",
		  "\"Fri-23:00,off\" and \"Fri-23:00,off\" both set Fri 23:00");
}

static void test_daily_rates(void **state)
{
	struct hs_timetable *tt = parse_ok("08:00,2MiB/s 12:00,512KiB/s 18:00,off",
					   "08:00,2MiB/s 12:00,512KiB/s 18:00,off");

	(void)state;
	assert_true(rate_at(tt, WED, 7, 59) == 0); /* still yesterday's 18:00 */
	assert_true(rate_at(tt, WED, 8, 0) == 2 * MiB);
	assert_true(rate_at(tt, WED, 11, 59) == 2 * MiB);
	assert_true(rate_at(tt, WED, 12, 0) == 512 * KiB);
	assert_true(rate_at(tt, WED, 17, 59) == 512 * KiB);
	assert_true(rate_at(tt, WED, 18, 0) == 0);
	assert_true(rate_at(tt, MON, 0, 0) == 0); /* Sunday 18:00 wraps into Monday */
	assert_true(rate_at(tt, SUN, 9, 0) == 2 * MiB);
	hs_timetable_free(tt);

	/* Wrap-around of a rate set late in the day. */
	tt = parse_ok("22:00,1MiB/s 06:00,off", "22:00,1MiB/s 06:00,off");
	assert_true(rate_at(tt, MON, 0, 0) == MiB);
	assert_true(rate_at(tt, MON, 5, 59) == MiB);
	assert_true(rate_at(tt, MON, 6, 0) == 0);
	assert_true(rate_at(tt, MON, 22, 0) == MiB);
	hs_timetable_free(tt);

	/* One entry: it always holds. */
	tt = parse_ok("08:00,1MiB/s", "08:00,1MiB/s");
	assert_true(rate_at(tt, MON, 0, 0) == MiB);
	assert_true(rate_at(tt, SUN, 23, 59) == MiB);
	hs_timetable_free(tt);
}

static void test_weekday_rates(void **state)
{
	struct hs_timetable *tt =
	    parse_ok("Mon-08:00,1MiB/s Sat-00:00,off", "Mon-08:00,1MiB/s Sat-00:00,off");

	(void)state;
	assert_true(rate_at(tt, SUN, 23, 59) == 0);
	assert_true(rate_at(tt, MON, 7, 59) == 0);
	assert_true(rate_at(tt, MON, 8, 0) == MiB);
	assert_true(rate_at(tt, WED, 3, 0) == MiB);
	assert_true(rate_at(tt, FRI, 23, 59) == MiB);
	assert_true(rate_at(tt, SAT, 0, 0) == 0);
	hs_timetable_free(tt);

	/* Daily and weekly entries together. */
	tt = parse_ok("08:00,1MiB/s Sat-09:00,off 20:00,2MiB/s",
		      "08:00,1MiB/s Sat-09:00,off 20:00,2MiB/s");
	assert_true(rate_at(tt, SAT, 8, 30) == MiB);
	assert_true(rate_at(tt, SAT, 9, 0) == 0);
	assert_true(rate_at(tt, SAT, 19, 59) == 0);
	assert_true(rate_at(tt, SAT, 20, 0) == 2 * MiB);
	assert_true(rate_at(tt, SUN, 7, 59) == 2 * MiB);
	assert_true(rate_at(tt, SUN, 8, 0) == MiB);
	hs_timetable_free(tt);
}

static void test_next_change_utc(void **state)
{
	struct hs_timetable *tt = parse_ok("08:00,2MiB/s 18:00,off", "08:00,2MiB/s 18:00,off");
	time_t wed_10 = utc(2026, 5, 6, 10, 0, 30); /* a Wednesday */

	(void)state;
	use_zone("UTC");
	assert_true(hs_timetable_rate(tt, wed_10) == 2 * MiB);
	assert_true(hs_timetable_next_change(tt, wed_10) == utc(2026, 5, 6, 18, 0, 0));
	/* At the very moment of a change, the next one is the following. */
	assert_true(hs_timetable_next_change(tt, utc(2026, 5, 6, 18, 0, 0)) ==
		    utc(2026, 5, 7, 8, 0, 0));
	assert_true(hs_timetable_next_change(tt, utc(2026, 5, 6, 17, 59, 59)) ==
		    utc(2026, 5, 6, 18, 0, 0));
	/* Across the end of the week: Sunday evening to Monday morning. */
	assert_true(hs_timetable_next_change(tt, utc(2026, 5, 10, 20, 0, 0)) ==
		    utc(2026, 5, 11, 8, 0, 0));
	hs_timetable_free(tt);

	tt = parse_ok("Mon-08:00,1MiB/s Sat-00:00,off", "Mon-08:00,1MiB/s Sat-00:00,off");
	assert_true(hs_timetable_next_change(tt, wed_10) == utc(2026, 5, 9, 0, 0, 0));
	assert_true(hs_timetable_next_change(tt, utc(2026, 5, 9, 0, 0, 0)) ==
		    utc(2026, 5, 11, 8, 0, 0));
	hs_timetable_free(tt);

	/* A single weekly entry comes back a week later. */
	tt = parse_ok("Tue-03:00,1MiB/s", "Tue-03:00,1MiB/s");
	assert_true(hs_timetable_next_change(tt, utc(2026, 5, 5, 3, 0, 0)) ==
		    utc(2026, 5, 12, 3, 0, 0));
	hs_timetable_free(tt);
}

/* Follows the schedule from start, checking each change against want. */
static void expect_changes(const struct hs_timetable *tt, time_t start, const time_t *want,
			   const uint64_t *rates, size_t n)
{
	time_t t = start;

	for (size_t i = 0; i < n; i++) {
		time_t next = hs_timetable_next_change(tt, t);

		if (next != want[i])
			fail_msg("change %zu: got %lld, want %lld", i, (long long)next,
				 (long long)want[i]);
		assert_true(hs_timetable_rate(tt, next) == rates[i]);
		t = next;
	}
}

static void test_berlin_spring_forward(void **state)
{
	struct hs_timetable *tt;

	(void)state;
	use_zone("Europe/Berlin");
	/* 2026-03-29: 02:00 CET becomes 03:00 CEST at 01:00 UTC. 02:30 never
	 * happens, so it takes effect at 03:00, the first minute after. */
	tt = parse_ok("02:30,1MiB/s 18:00,off", "02:30,1MiB/s 18:00,off");
	{
		const time_t want[] = {utc(2026, 3, 29, 1, 0, 0), utc(2026, 3, 29, 16, 0, 0),
				       utc(2026, 3, 30, 0, 30, 0)};
		const uint64_t rates[] = {MiB, 0, MiB};

		expect_changes(tt, utc(2026, 3, 29, 0, 0, 0), want, rates, 3);
	}
	assert_true(hs_timetable_rate(tt, utc(2026, 3, 29, 0, 59, 59)) == 0);
	hs_timetable_free(tt);

	/* A moment just after the gap is an hour closer in real time. */
	tt = parse_ok("03:30,1MiB/s 18:00,off", "03:30,1MiB/s 18:00,off");
	assert_true(hs_timetable_next_change(tt, utc(2026, 3, 29, 0, 0, 0)) ==
		    utc(2026, 3, 29, 1, 30, 0));
	assert_true(hs_timetable_next_change(tt, utc(2026, 3, 28, 12, 0, 0)) ==
		    utc(2026, 3, 28, 17, 0, 0)); /* 18:00 CET */
	hs_timetable_free(tt);

	/* The night across the change holds no moment: no extra wake-up. */
	tt = parse_ok("08:00,1MiB/s 18:00,off", "08:00,1MiB/s 18:00,off");
	assert_true(hs_timetable_next_change(tt, utc(2026, 3, 28, 20, 0, 0)) ==
		    utc(2026, 3, 29, 6, 0, 0)); /* 08:00 CEST */
	hs_timetable_free(tt);

	/* A weekly moment inside the gap. */
	tt = parse_ok("Sun-02:00,1MiB/s Mon-00:00,off", "Sun-02:00,1MiB/s Mon-00:00,off");
	assert_true(hs_timetable_next_change(tt, utc(2026, 3, 28, 12, 0, 0)) ==
		    utc(2026, 3, 29, 1, 0, 0));
	assert_true(hs_timetable_rate(tt, utc(2026, 3, 29, 1, 0, 0)) == MiB);
	hs_timetable_free(tt);
}

static void test_berlin_fall_back(void **state)
{
	struct hs_timetable *tt;

	(void)state;
	use_zone("Europe/Berlin");
	/* 2026-10-25: 03:00 CEST becomes 02:00 CET at 01:00 UTC; 02:00 to 03:00
	 * happens twice. The wall clock passes 02:30 twice, and between the
	 * two the clock is back before 02:30, where the old rate holds. */
	tt = parse_ok("02:30,1MiB/s 08:00,off", "02:30,1MiB/s 08:00,off");
	{
		const time_t want[] = {utc(2026, 10, 25, 0, 30, 0), utc(2026, 10, 25, 1, 0, 0),
				       utc(2026, 10, 25, 1, 30, 0), utc(2026, 10, 25, 7, 0, 0)};
		const uint64_t rates[] = {MiB, 0, MiB, 0};

		expect_changes(tt, utc(2026, 10, 24, 22, 0, 0), want, rates, 4);
	}
	hs_timetable_free(tt);

	/* Moments outside the repeated hour: no extra wake-up. */
	tt = parse_ok("08:00,1MiB/s 18:00,off", "08:00,1MiB/s 18:00,off");
	assert_true(hs_timetable_next_change(tt, utc(2026, 10, 24, 20, 0, 0)) ==
		    utc(2026, 10, 25, 7, 0, 0)); /* 08:00 CET */
	assert_true(hs_timetable_next_change(tt, utc(2026, 10, 25, 7, 0, 0)) ==
		    utc(2026, 10, 25, 17, 0, 0)); /* 18:00 CET */
	hs_timetable_free(tt);
}

static void test_new_york(void **state)
{
	struct hs_timetable *tt;

	(void)state;
	use_zone("America/New_York");
	/* 2026-03-08: 02:00 EST becomes 03:00 EDT at 07:00 UTC. */
	tt = parse_ok("02:15,1MiB/s 12:00,off", "02:15,1MiB/s 12:00,off");
	assert_true(hs_timetable_next_change(tt, utc(2026, 3, 8, 5, 0, 0)) ==
		    utc(2026, 3, 8, 7, 0, 0));
	assert_true(hs_timetable_next_change(tt, utc(2026, 3, 8, 7, 0, 0)) ==
		    utc(2026, 3, 8, 16, 0, 0)); /* 12:00 EDT */
	hs_timetable_free(tt);

	/* 2026-11-01: 02:00 EDT becomes 01:00 EST at 06:00 UTC. */
	tt = parse_ok("01:30,1MiB/s 12:00,off", "01:30,1MiB/s 12:00,off");
	{
		const time_t want[] = {utc(2026, 11, 1, 5, 30, 0), utc(2026, 11, 1, 6, 0, 0),
				       utc(2026, 11, 1, 6, 30, 0), utc(2026, 11, 1, 17, 0, 0)};
		const uint64_t rates[] = {MiB, 0, MiB, 0};

		expect_changes(tt, utc(2026, 11, 1, 4, 0, 0), want, rates, 4);
	}
	hs_timetable_free(tt);

	/* Weekly schedule across the change. */
	tt = parse_ok("Mon-09:00,1MiB/s Fri-17:00,off", "Mon-09:00,1MiB/s Fri-17:00,off");
	assert_true(hs_timetable_next_change(tt, utc(2026, 10, 30, 12, 0, 0)) ==
		    utc(2026, 10, 30, 21, 0, 0)); /* Fri 17:00 EDT */
	assert_true(hs_timetable_next_change(tt, utc(2026, 10, 30, 21, 0, 0)) ==
		    utc(2026, 11, 2, 14, 0, 0)); /* Mon 09:00 EST */
	hs_timetable_free(tt);
}

static bool paused_at(const struct hs_timetable *tt, int wday, int hour, int min)
{
	struct tm tm = {.tm_wday = wday, .tm_hour = hour, .tm_min = min, .tm_sec = 30};

	return hs_timetable_paused_at(tt, &tm);
}

static void test_pause_parse(void **state)
{
	(void)state;
	hs_timetable_free(parse_ok("07:00,pause 19:00,off", "07:00,pause 19:00,off"));
	hs_timetable_free(
	    parse_ok(" Sat-00:00,pause   Mon-06:00,2M/s ", "Sat-00:00,pause Mon-06:00,2MiB/s"));
	hs_timetable_free(parse_ok("07:00,pause 12:00,pause 19:00,1MiB/s",
				   "07:00,pause 12:00,pause 19:00,1MiB/s"));
	/* Alone it would hold uploads for ever: refused, saying why. */
	parse_bad("pause", "\"pause\" alone would hold uploads for ever (want it in a timetable, "
			   "e.g. \"07:00,pause 19:00,off\")");
	parse_bad(" pause ", "\"pause\" alone would hold uploads for ever (want it in a "
			     "timetable, e.g. \"07:00,pause 19:00,off\")");
	parse_bad("07:00,pause", "every entry is \"pause\": uploads would never run (want at "
				 "least one rate, e.g. \"07:00,pause 19:00,off\")");
	parse_bad("Sat-00:00,pause 07:00,pause",
		  "every entry is \"pause\": uploads would never run (want at least one rate, "
		  "e.g. \"07:00,pause 19:00,off\")");
	parse_bad("07:00,paused 19:00,off", "bad rate \"paused\" (want e.g. \"2MiB/s\", "
					    "\"512KiB/s\", \"off\" or \"pause\")");
	parse_bad("07:00,Pause 19:00,off", "bad rate \"Pause\" (want e.g. \"2MiB/s\", "
					   "\"512KiB/s\", \"off\" or \"pause\")");
	parse_bad("07:00,pause 07:00,off", "\"07:00,pause\" and \"07:00,off\" both set Mon 07:00");
}

static void test_pause_in_force(void **state)
{
	struct hs_timetable *tt = parse_ok("07:00,pause 19:00,2MiB/s", "07:00,pause 19:00,2MiB/s");

	(void)state;
	assert_false(paused_at(tt, WED, 6, 59));
	assert_true(paused_at(tt, WED, 7, 0));
	assert_true(paused_at(tt, WED, 18, 59));
	assert_false(paused_at(tt, WED, 19, 0));
	assert_false(paused_at(tt, MON, 0, 0)); /* Sunday 19:00 wraps into Monday */
	/* During a pause the rate is the one before it: what is still sending
	 * finishes at it. */
	assert_true(rate_at(tt, WED, 12, 0) == 2 * MiB);
	hs_timetable_free(tt);

	/* Across midnight, and the rate before the pause when two precede it. */
	tt = parse_ok("08:00,1MiB/s 18:00,off 22:00,pause 06:00,512KiB/s",
		      "08:00,1MiB/s 18:00,off 22:00,pause 06:00,512KiB/s");
	assert_true(paused_at(tt, TUE, 22, 0));
	assert_true(paused_at(tt, WED, 0, 0));
	assert_true(paused_at(tt, WED, 5, 59));
	assert_false(paused_at(tt, WED, 6, 0));
	assert_false(paused_at(tt, WED, 21, 59));
	assert_true(rate_at(tt, WED, 3, 0) == 0);
	assert_true(rate_at(tt, WED, 6, 0) == 512 * KiB);
	hs_timetable_free(tt);

	/* A weekly pause; a schedule without one never pauses. */
	tt = parse_ok("Sat-00:00,pause Mon-06:00,off", "Sat-00:00,pause Mon-06:00,off");
	assert_false(paused_at(tt, FRI, 23, 59));
	assert_true(paused_at(tt, SAT, 0, 0));
	assert_true(paused_at(tt, SUN, 23, 59));
	assert_true(paused_at(tt, MON, 5, 59));
	assert_false(paused_at(tt, MON, 6, 0));
	hs_timetable_free(tt);
	tt = parse_ok("08:00,2MiB/s 18:00,off", "08:00,2MiB/s 18:00,off");
	assert_false(paused_at(tt, WED, 12, 0));
	assert_true(hs_timetable_pause_end(tt, utc(2026, 5, 6, 12, 0, 0)) == 0);
	hs_timetable_free(tt);
	tt = parse_ok("off", "off");
	assert_false(hs_timetable_paused(tt, utc(2026, 5, 6, 12, 0, 0)));
	assert_true(hs_timetable_pause_end(tt, utc(2026, 5, 6, 12, 0, 0)) == 0);
	hs_timetable_free(tt);
}

static void test_pause_end(void **state)
{
	struct hs_timetable *tt = parse_ok("07:00,pause 19:00,off", "07:00,pause 19:00,off");
	time_t wed_10 = utc(2026, 5, 6, 10, 0, 30); /* a Wednesday */

	(void)state;
	use_zone("UTC");
	assert_true(hs_timetable_paused(tt, wed_10));
	assert_true(hs_timetable_pause_end(tt, wed_10) == utc(2026, 5, 6, 19, 0, 0));
	/* The minute it starts, and the last second of it. */
	assert_true(hs_timetable_pause_end(tt, utc(2026, 5, 6, 7, 0, 0)) ==
		    utc(2026, 5, 6, 19, 0, 0));
	assert_true(hs_timetable_pause_end(tt, utc(2026, 5, 6, 18, 59, 59)) ==
		    utc(2026, 5, 6, 19, 0, 0));
	/* At its end it holds no longer: the daemon's timer for the next
	 * change lands there and finds nothing paused. */
	assert_false(hs_timetable_paused(tt, utc(2026, 5, 6, 19, 0, 0)));
	assert_true(hs_timetable_pause_end(tt, utc(2026, 5, 6, 19, 0, 0)) == 0);
	assert_true(hs_timetable_next_change(tt, wed_10) == utc(2026, 5, 6, 19, 0, 0));
	hs_timetable_free(tt);

	/* Pauses in a row end at the first entry that is not one, across
	 * midnight and the end of the week. */
	tt = parse_ok("22:00,pause 01:00,pause 06:00,1MiB/s",
		      "22:00,pause 01:00,pause 06:00,1MiB/s");
	assert_true(hs_timetable_pause_end(tt, utc(2026, 5, 10, 23, 30, 0)) ==
		    utc(2026, 5, 11, 6, 0, 0)); /* Sunday night to Monday */
	assert_true(hs_timetable_next_change(tt, utc(2026, 5, 10, 23, 30, 0)) ==
		    utc(2026, 5, 11, 1, 0, 0));
	hs_timetable_free(tt);

	tt = parse_ok("Sat-00:00,pause Mon-06:00,off", "Sat-00:00,pause Mon-06:00,off");
	assert_true(hs_timetable_pause_end(tt, utc(2026, 5, 9, 0, 0, 0)) ==
		    utc(2026, 5, 11, 6, 0, 0));
	hs_timetable_free(tt);

	/* Local time: a pause ending at 02:30 on the night the clocks spring
	 * forward ends at 03:00 CEST, the first minute after the gap. */
	use_zone("Europe/Berlin");
	tt = parse_ok("01:00,pause 02:30,off", "01:00,pause 02:30,off");
	assert_true(hs_timetable_paused(tt, utc(2026, 3, 29, 0, 30, 0))); /* 01:30 CET */
	assert_true(hs_timetable_pause_end(tt, utc(2026, 3, 29, 0, 30, 0)) ==
		    utc(2026, 3, 29, 1, 0, 0));
	assert_false(hs_timetable_paused(tt, utc(2026, 3, 29, 1, 0, 0)));
	/* An ordinary night: 02:30 CET. */
	assert_true(hs_timetable_pause_end(tt, utc(2026, 3, 28, 0, 30, 0)) ==
		    utc(2026, 3, 28, 1, 30, 0));
	hs_timetable_free(tt);
	use_zone("UTC");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_single_rate),
	    cmocka_unit_test(test_canonical_text),
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_daily_rates),
	    cmocka_unit_test(test_weekday_rates),
	    cmocka_unit_test(test_next_change_utc),
	    cmocka_unit_test(test_berlin_spring_forward),
	    cmocka_unit_test(test_berlin_fall_back),
	    cmocka_unit_test(test_new_york),
	    cmocka_unit_test(test_pause_parse),
	    cmocka_unit_test(test_pause_in_force),
	    cmocka_unit_test(test_pause_end),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
