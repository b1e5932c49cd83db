/* The cron schedule: tables of expressions and next run times in UTC and
 * across daylight-saving changes, refused expressions and their causes, a
 * cross-check against a minute-by-minute search in four time zones, and the
 * cost of searches that find nothing. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf/cron.h"

/* "2026-03-29 03:00+02:00", "2026-01-01 00:00:30Z": a time with its UTC
 * offset, as Unix seconds; -1 for NULL. */
static int64_t at(const char *s)
{
	struct tm tm = {0};
	int y, mo, d, h, mi, sec = 0, oh = 0, om = 0, used = 0;
	const char *p;
	int64_t t;

	if (!s)
		return -1;
	if (sscanf(s, "%d-%d-%d %d:%d%n", &y, &mo, &d, &h, &mi, &used) != 5)
		fail_msg("bad time \"%s\" in the test", s);
	p = s + used;
	if (*p == ':') {
		sec = atoi(p + 1);
		p += 3;
	}
	if (*p == '+' || *p == '-') {
		if (sscanf(p + 1, "%d:%d", &oh, &om) != 2)
			fail_msg("bad offset in \"%s\"", s);
	} else if (strcmp(p, "Z") != 0) {
		fail_msg("time \"%s\" needs Z or an offset", s);
	}
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	return *p == '+' ? t - (oh * 3600 + om * 60) : *p == '-' ? t + (oh * 3600 + om * 60) : t;
}

/* "2026-03-29 03:00:00+02:00 (01:00:00Z)" in the current zone. */
static const char *show(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm lt, ut;
	char l[64], u[32];

	if (t == -1)
		return "-1 (none)";
	localtime_r(&tt, &lt);
	gmtime_r(&tt, &ut);
	strftime(l, sizeof(l), "%Y-%m-%d %H:%M:%S%z", &lt);
	strftime(u, sizeof(u), "%H:%M:%SZ", &ut);
	snprintf(buf, len, "%s (%s)", l, u);
	return buf;
}

/* Switches the process to zone tz and checks that its rules were loaded:
 * glibc falls back to UTC without a word when the zone file is missing, and
 * every DST row would then test nothing. */
static void use_zone(const char *tz, int winter_offset)
{
	const char *dir = getenv("TZDIR") ? getenv("TZDIR") : "/usr/share/zoneinfo";
	char path[512];
	time_t jan = (time_t)at("2026-01-15 12:00Z");
	struct tm lt;
	int off;

	if (strcmp(tz, "UTC") != 0 && !strchr(tz, ',')) { /* not a POSIX rule */
		snprintf(path, sizeof(path), "%s/%s", dir, tz);
		if (access(path, R_OK) != 0)
			fail_msg("time zone file %s is missing: install tzdata", path);
	}
	assert_int_equal(setenv("TZ", tz, 1), 0);
	tzset();
	localtime_r(&jan, &lt);
	off = (lt.tm_hour - 12) * 60 + lt.tm_min;
	if (off != winter_offset)
		fail_msg("TZ=%s gives UTC%+d min in January, want %+d: zone not loaded", tz, off,
			 winter_offset);
}

struct row {
	const char *expr;
	const char *from;
	const char *want; /* NULL: none within five years */
};

static void check_rows(const struct row *rows, size_t n)
{
	int bad = 0;

	for (size_t i = 0; i < n; i++) {
		char *cause = NULL;
		struct hs_cron *c = hs_cron_parse(rows[i].expr, &cause);
		int64_t got, want = at(rows[i].want);
		char b1[128], b2[128], b3[128];

		if (!c) {
			print_error("row %zu: \"%s\" refused: %s\n", i, rows[i].expr, cause);
			free(cause);
			bad++;
			continue;
		}
		got = hs_cron_next(c, at(rows[i].from));
		if (got != want) {
			print_error("row %zu: \"%s\" after %s: got %s, want %s\n", i, rows[i].expr,
				    show(at(rows[i].from), b1, sizeof(b1)),
				    show(got, b2, sizeof(b2)), show(want, b3, sizeof(b3)));
			bad++;
		}
		hs_cron_free(c);
	}
	assert_int_equal(bad, 0);
}

/* 2026-01-01 is a Thursday. */
static const struct row utc_rows[] = {
    {"* * * * *", "2026-01-01 00:00Z", "2026-01-01 00:01Z"},
    {"* * * * *", "2026-01-01 00:00:30Z", "2026-01-01 00:01Z"},
    {"* * * * *", "2026-01-01 00:00:59Z", "2026-01-01 00:01Z"},
    {"0 * * * *", "2026-01-01 00:00Z", "2026-01-01 01:00Z"},
    {"30 4 * * *", "2026-01-01 04:29:59Z", "2026-01-01 04:30Z"},
    {"30 4 * * *", "2026-01-01 04:30Z", "2026-01-02 04:30Z"},
    {"  0\t0  *  *  *  ", "2026-05-10 12:00Z", "2026-05-11 00:00Z"},
    /* lists, ranges, steps */
    {"0,15,45 * * * *", "2026-01-01 10:16Z", "2026-01-01 10:45Z"},
    {"0,15,45 * * * *", "2026-01-01 10:45Z", "2026-01-01 11:00Z"},
    {"10-12 * * * *", "2026-01-01 10:12Z", "2026-01-01 11:10Z"},
    {"*/20 * * * *", "2026-01-01 10:41Z", "2026-01-01 11:00Z"},
    {"*/7 * * * *", "2026-01-01 10:56Z", "2026-01-01 11:00Z"},
    {"*/60 * * * *", "2026-01-01 10:01Z", "2026-01-01 11:00Z"},
    {"5-50/15 * * * *", "2026-01-01 10:36Z", "2026-01-01 10:50Z"},
    {"5-50/15 * * * *", "2026-01-01 10:50Z", "2026-01-01 11:05Z"},
    {"50/5 * * * *", "2026-01-01 10:56Z", "2026-01-01 11:50Z"},
    {"1,5-7,50/4 * * * *", "2026-01-01 10:07Z", "2026-01-01 10:50Z"},
    {"0 */6 * * *", "2026-01-01 07:00Z", "2026-01-01 12:00Z"},
    {"0 9-17/4 * * *", "2026-01-01 17:00Z", "2026-01-02 09:00Z"},
    {"0-59/30 0-23/12 * * *", "2026-01-01 10:00Z", "2026-01-01 12:00Z"},
    {"0 0 1,15 * *", "2026-01-02 00:00Z", "2026-01-15 00:00Z"},
    /* month ends, leap years, year rollover */
    {"0 0 31 * *", "2026-01-31 00:00Z", "2026-03-31 00:00Z"},
    {"0 0 31 * *", "2026-03-31 00:00Z", "2026-05-31 00:00Z"},
    {"0 0 30 * *", "2026-01-30 00:00Z", "2026-03-30 00:00Z"},
    {"0 0 29 2 *", "2026-01-01 00:00Z", "2028-02-29 00:00Z"},
    {"0 0 29 2 *", "2028-02-29 00:00Z", "2032-02-29 00:00Z"},
    {"0 0 29 2 *", "2399-03-01 00:00Z", "2400-02-29 00:00Z"},
    {"0 0 29 2 *", "2096-03-01 00:00Z", NULL}, /* 2100 is no leap year */
    {"0 0 28-31 2 *", "2027-02-28 00:00Z", "2028-02-28 00:00Z"},
    {"0 0 * 2 *", "2026-02-28 00:00Z", "2027-02-01 00:00Z"},
    {"59 23 31 12 *", "2026-12-31 23:59Z", "2027-12-31 23:59Z"},
    {"0 0 1 1 *", "2026-12-31 23:59:59Z", "2027-01-01 00:00Z"},
    {"0 0 1 1 *", "1969-06-01 00:00Z", "1970-01-01 00:00Z"},
    {"0 0 1 1 *", "1960-01-01 00:00Z", "1961-01-01 00:00Z"},
    {"0 0 * * *", "2099-12-31 00:00Z", "2100-01-01 00:00Z"},
    /* month and day names */
    {"0 12 * jan,jul *", "2026-02-01 00:00Z", "2026-07-01 12:00Z"},
    {"0 12 1 JUN-aug/2 *", "2026-07-01 00:00Z", "2026-08-01 12:00Z"},
    {"0 12 1 Dec *", "2026-12-01 12:00Z", "2027-12-01 12:00Z"},
    {"0 0 * * mon-fri", "2026-01-02 00:00Z", "2026-01-05 00:00Z"},
    {"0 0 * * SAT,sun", "2026-01-05 00:00Z", "2026-01-10 00:00Z"},
    {"0 0 * * Wed/2", "2026-01-01 00:00Z", "2026-01-02 00:00Z"}, /* wed, fri, sun */
    /* 0 and 7 are Sunday */
    {"0 0 * * 7", "2026-01-01 00:00Z", "2026-01-04 00:00Z"},
    {"0 0 * * 0", "2026-01-01 00:00Z", "2026-01-04 00:00Z"},
    {"0 0 * * 5-7", "2026-01-03 00:00Z", "2026-01-04 00:00Z"},
    {"0 0 * * fri-7", "2026-01-04 00:00Z", "2026-01-09 00:00Z"},
    {"0 0 * * 0-7", "2026-01-04 00:00Z", "2026-01-05 00:00Z"},
    /* both day fields restricted: either; one is '*': both */
    {"0 0 10 * 5", "2026-02-07 00:00Z", "2026-02-10 00:00Z"},
    {"0 0 10 * 5", "2026-02-10 00:00Z", "2026-02-13 00:00Z"},
    {"0 0 1-7 * 1", "2026-01-07 00:00Z", "2026-01-12 00:00Z"},
    {"0 0 29 2 1", "2026-01-31 00:00Z", "2026-02-02 00:00Z"},
    {"0 0 29 2 1", "2026-03-01 00:00Z", "2027-02-01 00:00Z"},
    {"0 0 30 2 mon", "2026-02-28 00:00Z", "2027-02-01 00:00Z"},
    {"0 0 */2 * 1", "2026-01-01 00:00Z", "2026-01-05 00:00Z"},
    {"0 0 */2 * 1", "2026-01-05 00:00Z", "2026-01-19 00:00Z"},
    {"0 0 1 * *", "2026-01-01 00:00Z", "2026-02-01 00:00Z"},
    {"0 0 * * 1", "2026-01-01 00:00Z", "2026-01-05 00:00Z"},
    {"0 0 13 * *", "2026-01-14 00:00Z", "2026-02-13 00:00Z"},
    {"0 0 13 * fri", "2026-01-14 00:00Z", "2026-01-16 00:00Z"},
    /* never */
    {"0 0 30 2 *", "2026-01-01 00:00Z", NULL},
    {"0 0 31 4,6,9,11 *", "2026-01-01 00:00Z", NULL},
    /* macros */
    {"@hourly", "2026-01-01 00:00Z", "2026-01-01 01:00Z"},
    {"@daily", "2026-12-31 23:59Z", "2027-01-01 00:00Z"},
    {"@midnight", "2026-05-10 12:00Z", "2026-05-11 00:00Z"},
    {"@weekly", "2026-01-01 00:00Z", "2026-01-04 00:00Z"},
    {"@monthly", "2026-01-31 12:00Z", "2026-02-01 00:00Z"},
    {"@yearly", "2026-06-01 00:00Z", "2027-01-01 00:00Z"},
    {"@annually", "2026-01-01 00:00Z", "2027-01-01 00:00Z"},
    {" @DAILY ", "2026-01-01 00:00Z", "2026-01-02 00:00Z"},
};

static void test_utc(void **state)
{
	(void)state;
	use_zone("UTC", 0);
	check_rows(utc_rows, sizeof(utc_rows) / sizeof(utc_rows[0]));
}

/* Europe/Berlin: 2026-03-29 02:00 CET -> 03:00 CEST (01:00Z),
 * 2026-10-25 03:00 CEST -> 02:00 CET (01:00Z). */
static const struct row berlin_rows[] = {
    /* spring forward: fixed-time jobs in the gap run once at 03:00 */
    {"30 2 * * *", "2026-03-28 12:00+01:00", "2026-03-29 03:00+02:00"},
    {"30 2 * * *", "2026-03-29 03:00+02:00", "2026-03-30 02:30+02:00"},
    {"0 2 * * *", "2026-03-28 02:00+01:00", "2026-03-29 03:00+02:00"},
    {"0 2 * * *", "2026-03-29 03:00+02:00", "2026-03-30 02:00+02:00"},
    {"0,30 2 * * *", "2026-03-29 00:00+01:00", "2026-03-29 03:00+02:00"},
    {"0,30 2 * * *", "2026-03-29 03:00+02:00", "2026-03-30 02:00+02:00"},
    {"0 2,3 * * *", "2026-03-29 03:00+02:00", "2026-03-30 02:00+02:00"},
    {"59 1 * * *", "2026-03-29 00:00+01:00", "2026-03-29 01:59+01:00"},
    {"30 2 * * 0", "2026-03-22 03:00+01:00", "2026-03-29 03:00+02:00"},
    {"30 2 29 3 *", "2026-03-29 02:59:59+02:00", "2026-03-29 03:00+02:00"},
    {"30 2 29 3 *", "2026-03-29 03:00+02:00", "2027-03-29 02:30+02:00"},
    /* wildcard jobs skip the missing hour */
    {"*/15 * * * *", "2026-03-29 01:45+01:00", "2026-03-29 03:00+02:00"},
    {"*/15 * * * *", "2026-03-29 01:50+01:00", "2026-03-29 03:00+02:00"},
    {"30 * * * *", "2026-03-29 01:30+01:00", "2026-03-29 03:30+02:00"},
    {"* 2 * * *", "2026-03-29 01:59+01:00", "2026-03-30 02:00+02:00"},
    {"*/30 2 * * *", "2026-03-29 00:00+01:00", "2026-03-30 02:00+02:00"},
    /* fall back: fixed-time jobs run at the first occurrence only */
    {"30 2 * * *", "2026-10-24 12:00+02:00", "2026-10-25 02:30+02:00"},
    {"30 2 * * *", "2026-10-25 02:30+02:00", "2026-10-26 02:30+01:00"},
    {"30 2 * * *", "2026-10-25 02:15+01:00", "2026-10-26 02:30+01:00"},
    {"15 2 * * *", "2026-10-25 02:20+02:00", "2026-10-26 02:15+01:00"},
    {"0 2 * * *", "2026-10-25 01:59+02:00", "2026-10-25 02:00+02:00"},
    {"0 2 * * *", "2026-10-25 02:00+02:00", "2026-10-26 02:00+01:00"},
    {"0 3 * * *", "2026-10-25 02:30+01:00", "2026-10-25 03:00+01:00"},
    /* wildcard jobs run in both hours */
    {"*/15 * * * *", "2026-10-25 02:45+02:00", "2026-10-25 02:00+01:00"},
    {"*/15 * * * *", "2026-10-25 02:59+02:00", "2026-10-25 02:00+01:00"},
    {"*/15 * * * *", "2026-10-25 02:00+01:00", "2026-10-25 02:15+01:00"},
    {"*/15 * * * *", "2026-10-25 02:50+01:00", "2026-10-25 03:00+01:00"},
    {"30 * * * *", "2026-10-25 02:30+02:00", "2026-10-25 02:30+01:00"},
    {"30 * * * *", "2026-10-25 02:31+02:00", "2026-10-25 02:30+01:00"},
    {"30 * * * *", "2026-10-25 02:30+01:00", "2026-10-25 03:30+01:00"},
    {"* 2 * * *", "2026-10-25 02:59+02:00", "2026-10-25 02:00+01:00"},
    {"0 0 1 1 *", "2026-06-01 00:00+02:00", "2027-01-01 00:00+01:00"},
};

static void test_berlin(void **state)
{
	(void)state;
	use_zone("Europe/Berlin", 60);
	check_rows(berlin_rows, sizeof(berlin_rows) / sizeof(berlin_rows[0]));
}

/* America/New_York: 2026-03-08 02:00 EST -> 03:00 EDT (07:00Z),
 * 2026-11-01 02:00 EDT -> 01:00 EST (06:00Z). */
static const struct row new_york_rows[] = {
    {"30 2 * * *", "2026-03-07 12:00-05:00", "2026-03-08 03:00-04:00"},
    {"0 2 * * *", "2026-03-08 00:00-05:00", "2026-03-08 03:00-04:00"},
    {"0 2 * * *", "2026-03-08 03:00-04:00", "2026-03-09 02:00-04:00"},
    {"0 3 * * *", "2026-03-08 00:00-05:00", "2026-03-08 03:00-04:00"},
    {"*/15 * * * *", "2026-03-08 01:45-05:00", "2026-03-08 03:00-04:00"},
    {"0 * * * *", "2026-03-08 01:00-05:00", "2026-03-08 03:00-04:00"},
    {"30 1 * * *", "2026-11-01 00:00-04:00", "2026-11-01 01:30-04:00"},
    {"30 1 * * *", "2026-11-01 01:30-04:00", "2026-11-02 01:30-05:00"},
    {"30 1 * * *", "2026-11-01 01:10-05:00", "2026-11-02 01:30-05:00"},
    {"0 2 * * *", "2026-11-01 00:00-04:00", "2026-11-01 02:00-05:00"},
    {"0 2 * * *", "2026-11-01 01:59-04:00", "2026-11-01 02:00-05:00"},
    {"0 2 * * *", "2026-11-01 01:59-05:00", "2026-11-01 02:00-05:00"},
    {"*/15 * * * *", "2026-11-01 01:45-04:00", "2026-11-01 01:00-05:00"},
    {"*/15 * * * *", "2026-11-01 01:59-05:00", "2026-11-01 02:00-05:00"},
    {"0 * * * *", "2026-11-01 01:00-04:00", "2026-11-01 01:00-05:00"},
    {"0 0 1 11 *", "2026-10-31 12:00-04:00", "2026-11-01 00:00-04:00"},
};

static void test_new_york(void **state)
{
	(void)state;
	use_zone("America/New_York", -300);
	check_rows(new_york_rows, sizeof(new_york_rows) / sizeof(new_york_rows[0]));
}

/* Zones with other kinds of change: Lord Howe moves by 30 minutes (02:00 ->
 * 02:30 on 2026-10-04, 02:00 -> 01:30 on 2026-04-05); Chile moves its
 * clocks at midnight (2026-09-06 00:00 -> 01:00, the day before the change
 * back at 2026-04-05 00:00 -> 2026-04-04 23:00). */
static const struct row other_rows[] = {
    {"15 2 * * *", "2026-10-03 12:00+10:30", "2026-10-04 02:30+11:00"},
    {"*/10 * * * *", "2026-10-04 01:55+10:30", "2026-10-04 02:30+11:00"},
    {"45 1 * * *", "2026-04-05 01:45+11:00", "2026-04-06 01:45+10:30"},
    {"45 * * * *", "2026-04-05 01:45+11:00", "2026-04-05 01:45+10:30"},
};

static const struct row santiago_rows[] = {
    {"30 0 * * *", "2026-09-05 12:00-04:00", "2026-09-06 01:00-03:00"},
    {"0 0 * * *", "2026-09-05 12:00-04:00", "2026-09-06 01:00-03:00"},
    {"0 0 * * *", "2026-09-06 01:00-03:00", "2026-09-07 00:00-03:00"},
    {"30 * * * *", "2026-09-05 23:30-04:00", "2026-09-06 01:30-03:00"},
    {"30 23 * * *", "2026-04-04 23:30-03:00", "2026-04-05 23:30-04:00"},
    {"*/30 * * * *", "2026-04-04 23:30-03:00", "2026-04-04 23:00-04:00"},
};

/* Made-up rules that move the clocks back across midnight, from 00:30 to
 * 23:30 the day before (2026-04-05), so that a local time seen before the
 * change comes from a later day than times seen after it; one east and one
 * west of Greenwich. */
#define WEST_RULE "WST3WDT2,M9.1.0/0,M4.1.0/0:30"
#define EAST_RULE "EST-10EDT-11,M10.1.0/0,M4.1.0/0:30"

static const struct row west_rows[] = {
    {"45 * * * *", "2026-04-05 00:10-02:00", "2026-04-04 23:45-03:00"},
    {"15,45 * * * *", "2026-04-05 00:00-02:00", "2026-04-05 00:15-02:00"},
    {"45 23 * * *", "2026-04-05 00:10-02:00", "2026-04-05 23:45-03:00"},
    {"30 0 * * *", "2026-09-05 12:00-03:00", "2026-09-06 01:00-02:00"},
};

static const struct row east_rows[] = {
    {"45 * * * *", "2026-04-05 00:10+11:00", "2026-04-04 23:45+10:00"},
    {"15,45 * * * *", "2026-04-05 00:00+11:00", "2026-04-05 00:15+11:00"},
    {"15,45 * * * *", "2026-04-05 00:20+11:00", "2026-04-04 23:45+10:00"},
    {"45 23 * * *", "2026-04-05 00:10+11:00", "2026-04-05 23:45+10:00"},
};

static void test_other_zones(void **state)
{
	(void)state;
	use_zone(WEST_RULE, -120);
	check_rows(west_rows, sizeof(west_rows) / sizeof(west_rows[0]));
	use_zone(EAST_RULE, 660);
	check_rows(east_rows, sizeof(east_rows) / sizeof(east_rows[0]));
	use_zone("Australia/Lord_Howe", 660);
	check_rows(other_rows, sizeof(other_rows) / sizeof(other_rows[0]));
	use_zone("America/Santiago", -180);
	check_rows(santiago_rows, sizeof(santiago_rows) / sizeof(santiago_rows[0]));
}

/* A daily job at an hour that is skipped or repeated once a year still runs
 * once on every local day of the year. */
static void test_daily_through_a_year(void **state)
{
	static const struct {
		const char *tz, *start, *end;
		int winter;
	} zones[] = {
	    {"Europe/Berlin", "2025-12-31 23:59+01:00", "2027-01-01 00:00+01:00", 60},
	    {"America/New_York", "2025-12-31 23:59-05:00", "2027-01-01 00:00-05:00", -300},
	};
	static const char *const exprs[] = {"0 2 * * *", "30 2 * * *", "0 0 * * *", "59 1 * * *"};

	(void)state;
	for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++) {
		use_zone(zones[z].tz, zones[z].winter);
		for (size_t e = 0; e < sizeof(exprs) / sizeof(exprs[0]); e++) {
			char *cause;
			struct hs_cron *c = hs_cron_parse(exprs[e], &cause);
			int64_t t = at(zones[z].start);
			int runs = 0;

			assert_non_null(c);
			for (;;) {
				int64_t next = hs_cron_next(c, t);

				assert_true(next > t);
				if (next >= at(zones[z].end))
					break;
				/* never twice on one day: at least 22 h apart */
				assert_true(runs == 0 || next - t >= 22 * 3600);
				t = next;
				runs++;
			}
			assert_int_equal(runs, 365);
			hs_cron_free(c);
		}
	}
}

struct bad {
	const char *expr;
	const char *cause; /* a part of the cause */
};

static const struct bad bad_rows[] = {
    {"", "schedule: empty"},
    {" \t ", "schedule: empty"},
    {"* * * *", "4 fields, want 5"},
    {"*", "1 field, want 5"},
    {"* * * * * *", "6 fields, want 5"},
    {"0 0 * * * extra", "6 fields, want 5"},
    {"60 * * * *", "field 1 (minute): 60 is out of range 0-59"},
    {"* 24 * * *", "field 2 (hour): 24 is out of range 0-23"},
    {"* * 0 * *", "field 3 (day of month): 0 is out of range 1-31"},
    {"* * 32 * *", "field 3 (day of month): 32 is out of range 1-31"},
    {"* * * 13 *", "field 4 (month): 13 is out of range 1-12"},
    {"* * * 0 *", "field 4 (month): 0 is out of range 1-12"},
    {"* * * * 8", "field 5 (day of week): 8 is out of range 0-7"},
    {"99999999999999999999 * * * *", "field 1 (minute): 99999999999999999999 is out of range"},
    {"*/0 * * * *", "field 1 (minute): step 0 is out of range 1-60"},
    {"* 1-10/0 * * *", "field 2 (hour): step 0 is out of range 1-24"},
    {"* */25 * * *", "field 2 (hour): step 25 is out of range 1-24"},
    {"* * * * */8", "field 5 (day of week): step 8 is out of range 1-7"},
    {"*/ * * * *", "field 1 (minute): step in \"*/\" is not a number"},
    {"* * */x * *", "field 3 (day of month): step in \"*/x\" is not a number"},
    {"* 5-1 * * *", "field 2 (hour): range 5-1 is reversed"},
    {"* * * dec-jan *", "field 4 (month): range dec-jan is reversed"},
    {"* * * * sat-sun", "field 5 (day of week): range sat-sun is reversed"},
    {"5x * * * *", "field 1 (minute): unexpected 'x' in \"5x\""},
    {"1-2-3 * * * *", "field 1 (minute): unexpected '-' in \"1-2-3\""},
    {"1/2/3 * * * *", "field 1 (minute): unexpected '/' in \"1/2/3\""},
    {"*-5 * * * *", "field 1 (minute): unexpected '-' in \"*-5\""},
    {"* * * * 1.5", "field 5 (day of week): unexpected '.' in \"1.5\""},
    {"-5 * * * *", "field 1 (minute): unexpected '-' where a number should be"},
    {"0 0 +1 * *", "field 3 (day of month): unexpected '+'"},
    {"? * * * *", "field 1 (minute): unexpected '?'"},
    {"* * ? * *", "field 3 (day of month): unexpected '?'"},
    {"5- * * * *", "field 1 (minute): a number is missing at the end"},
    {"1,,2 * * * *", "field 1 (minute): empty item in list \"1,,2\""},
    {"* * * * mon,", "field 5 (day of week): empty item in list \"mon,\""},
    {",1 * * * *", "field 1 (minute): empty item"},
    {"* * * foo *", "field 4 (month): unknown name \"foo\" (want jan-dec"},
    {"* * * * monday", "field 5 (day of week): unknown name \"monday\" (want sun-sat"},
    {"* * * * jan", "field 5 (day of week): unknown name \"jan\""},
    {"* * * january *", "field 4 (month): unknown name \"january\""},
    {"jan * * * *", "field 1 (minute): \"jan\" is not a number"},
    {"* * mon * *", "field 3 (day of month): \"mon\" is not a number"},
    {"* * * * *\n", "field 5 (day of week): character 0x0a is not allowed"},
    {"* * * * \xc3\xa9", "field 5 (day of week): character 0xc3 is not allowed"},
    {"@reboot", "unknown \"@reboot\""},
    {"@hourlyx", "unknown \"@hourlyx\""},
    {"@", "unknown \"@\""},
    {"@daily *", "@daily stands for the whole schedule"},
    {"* @daily", "2 fields, want 5"},
};

static void test_refused(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_rows) / sizeof(bad_rows[0]); i++) {
		char *cause = (char *)"untouched";
		struct hs_cron *c = hs_cron_parse(bad_rows[i].expr, &cause);

		if (c)
			fail_msg("\"%s\" was accepted", bad_rows[i].expr);
		assert_non_null(cause);
		if (!strstr(cause, bad_rows[i].cause) || strncmp(cause, "schedule: ", 10) != 0 ||
		    strchr(cause, '\n'))
			fail_msg("\"%s\": cause \"%s\", want one line with \"%s\"",
				 bad_rows[i].expr, cause, bad_rows[i].cause);
		free(cause);
	}
}

static void test_length(void **state)
{
	char buf[HS_CRON_MAX_LEN + 2];
	char *cause;
	struct hs_cron *c;

	(void)state;
	/* exactly at the limit: "0 0 * * *" padded with spaces */
	memset(buf, ' ', HS_CRON_MAX_LEN);
	memcpy(buf, "0 0 * * *", 9);
	buf[HS_CRON_MAX_LEN] = '\0';
	c = hs_cron_parse(buf, &cause);
	assert_non_null(c);
	assert_null(cause);
	hs_cron_free(c);
	buf[HS_CRON_MAX_LEN] = ' ';
	buf[HS_CRON_MAX_LEN + 1] = '\0';
	assert_null(hs_cron_parse(buf, &cause));
	assert_string_equal(cause, "schedule: longer than 1024 characters");
	free(cause);
	/* a long list is fine: every minute spelled out */
	buf[0] = '\0';
	for (int m = 0; m < 60; m++)
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%d", m ? "," : "", m);
	strcat(buf, " 0-23 1-31 1-12 0-7");
	c = hs_cron_parse(buf, &cause);
	assert_non_null(c);
	use_zone("UTC", 0);
	assert_int_equal(hs_cron_next(c, at("2026-01-01 00:00Z")), at("2026-01-01 00:01Z"));
	hs_cron_free(c);
	assert_null(hs_cron_free(NULL));
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Searches that find nothing, or find it years ahead, end. Their cost is
 * printed, never asserted: these machines are shared and noisy. */
static void test_cost(void **state)
{
	static const char *const exprs[] = {
	    "0 0 30 2 *",    "0 0 31 4,6,9,11 *", "0 0 29 2 *",	 "0 0 29 2 1",
	    "59 23 31 12 *", "* * 29 2 *",	  "30 2 29 3 *",
	};
	struct timespec t0;
	char *cause;
	struct hs_cron *c;
	double spent;

	(void)state;
	use_zone("Europe/Berlin", 60);
	c = hs_cron_parse("0 0 30 2 *", &cause);
	assert_non_null(c);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(hs_cron_next(c, at("2026-01-01 00:00Z")), -1);
	spent = seconds_since(&t0);
	print_message("\"0 0 30 2 *\": -1 in %.3f ms\n", spent * 1e3);
	hs_cron_free(c);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t e = 0; e < sizeof(exprs) / sizeof(exprs[0]); e++) {
		c = hs_cron_parse(exprs[e], &cause);
		assert_non_null(c);
		for (int i = 0; i < 100; i++)
			hs_cron_next(c, at("2020-01-01 00:00Z") + (int64_t)i * 987654);
		hs_cron_free(c);
	}
	spent = seconds_since(&t0);
	print_message("%zu sparse searches in %.1f ms\n", sizeof(exprs) / sizeof(exprs[0]) * 100,
		      spent * 1e3);
}

/*
 * The cross-check: random schedules against a search that looks at every
 * minute of real time and applies the rules of cron.h directly. Each field
 * is either star-like ("*", "*" "/n") or a list of random values.
 */
struct ref {
	char expr[256];
	uint64_t sets[5];
	int star[5];
	int fixed;
};

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* splitmix64 */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static int rnd_range(int lo, int hi)
{
	return lo + (int)(rnd() % (uint64_t)(hi - lo + 1));
}

/* hot[]: hours the hour field favours, where the zone changes its clocks. */
static void random_ref(struct ref *r, const int *hot, int n_hot)
{
	static const int lo[5] = {0, 0, 1, 1, 0}, hi[5] = {59, 23, 31, 12, 7};
	static const int star_pct[5] = {30, 30, 85, 90, 85};
	size_t len = 0;

	memset(r, 0, sizeof(*r));
	for (int f = 0; f < 5; f++) {
		char *out = r->expr + len;
		size_t room = sizeof(r->expr) - len;

		if (rnd_range(1, 100) <= star_pct[f]) {
			int step = rnd_range(0, 2) ? 1 : rnd_range(2, f == 1 ? 7 : 20);

			if (f >= 2)
				step = 1 + (step > 1);
			r->star[f] = 1;
			for (int v = lo[f]; v <= hi[f]; v += step)
				r->sets[f] |= 1ULL << v;
			if (step == 1)
				snprintf(out, room, "*");
			else
				snprintf(out, room, "*/%d", step);
		} else {
			int k = rnd_range(1, 4);

			out[0] = '\0';
			for (int i = 0; i < k; i++) {
				int v = lo[f] + (f == 1 && rnd_range(0, 1)
						     ? rnd_range(0, 4)
						     : rnd_range(0, hi[f] - lo[f]));

				r->sets[f] |= 1ULL << v;
				snprintf(out + strlen(out), room - strlen(out), "%s%d",
					 i ? "," : "", v);
			}
		}
		len += strlen(out);
		if (f < 4)
			r->expr[len++] = ' ';
	}
	if (r->sets[4] >> 7 & 1)
		r->sets[4] |= 1;
	r->fixed = !r->star[0] && !r->star[1];
}

static int ref_day(const struct ref *r, const struct tm *tm)
{
	int dom = (int)(r->sets[2] >> tm->tm_mday & 1), dow = (int)(r->sets[4] >> tm->tm_wday & 1);

	if (!(r->sets[3] >> (tm->tm_mon + 1) & 1))
		return 0;
	return r->star[2] || r->star[4] ? dom && dow : dom || dow;
}

static int ref_wall(const struct ref *r, const struct tm *tm)
{
	return (r->sets[0] >> tm->tm_min & 1) && (r->sets[1] >> tm->tm_hour & 1) && ref_day(r, tm);
}

static int64_t wall_of(int64_t t, struct tm *tm)
{
	time_t tt = (time_t)t;

	localtime_r(&tt, tm);
	return (int64_t)timegm(tm);
}

/* How often the reference decided by a daylight-saving rule. */
static int ref_repeats_skipped, ref_gap_runs;

/* Every minute from after to until; -2 if nothing matched by then. */
static int64_t ref_next(const struct ref *r, int64_t after, int64_t until)
{
	struct tm tm, prev;

	for (int64_t t = (after / 60 + 1) * 60; t <= until; t += 60) {
		int64_t w = wall_of(t, &tm), pw = wall_of(t - 60, &prev);

		if (ref_wall(r, &tm)) {
			int repeat = 0;

			/* a fixed-time job runs at a wall time's first occurrence */
			for (int k = 1; r->fixed && k <= 180 && !repeat; k++) {
				struct tm back;

				repeat = wall_of(t - 60 * k, &back) == w;
			}
			if (!repeat)
				return t;
			ref_repeats_skipped++;
		}
		/* the clock jumped over (pw, w): fixed-time jobs due in it run now */
		for (int64_t g = pw + 60; r->fixed && w - pw > 60 && g < w; g += 60) {
			struct tm gtm;
			time_t gt = (time_t)g;

			gmtime_r(&gt, &gtm);
			if (ref_wall(r, &gtm)) {
				ref_gap_runs++;
				return t;
			}
		}
	}
	return -2;
}

static void cross_check(const char *tz, int winter, const char *const *changes, int n_changes,
			const int *hot, int n_hot, int cases)
{
	int bad = 0, found = 0;

	use_zone(tz, winter);
	for (int i = 0; i < cases; i++) {
		struct ref r;
		char *cause;
		struct hs_cron *c;
		int64_t after, want, got, until;
		char b1[128], b2[128], b3[128];

		random_ref(&r, hot, n_hot);
		c = hs_cron_parse(r.expr, &cause);
		if (!c)
			fail_msg("\"%s\" refused: %s", r.expr, cause);
		/* a time in the year, a day or two before a change, or within
		 * two hours of one (between the two runs of a repeated hour) */
		if (i % 4 == 0)
			after = at("2026-01-01 00:00Z") + (int64_t)(rnd() % (365 * 86400ULL));
		else if (i % 4 == 1)
			after = at(changes[i % n_changes]) + rnd_range(-2 * 86400, 86400);
		else
			after = at(changes[i % n_changes]) + rnd_range(-7200, 7200);
		until = after + 3 * 86400;
		want = ref_next(&r, after, until);
		got = hs_cron_next(c, after);
		if (want == -2 ? got != -1 && got <= until : got != want) {
			print_error("%s: \"%s\" after %s: got %s, want %s\n", tz, r.expr,
				    show(after, b1, sizeof(b1)), show(got, b2, sizeof(b2)),
				    want == -2 ? "none within 3 days" : show(want, b3, sizeof(b3)));
			bad++;
		}
		found += want != -2;
		hs_cron_free(c);
	}
	print_message("%s: %d random schedules, %d with a run within 3 days\n", tz, cases, found);
	assert_int_equal(bad, 0);
	assert_true(found > cases / 3);
}

static void test_cross_check(void **state)
{
	static const char *const berlin[] = {"2026-03-29 01:00Z", "2026-10-25 01:00Z"};
	static const char *const new_york[] = {"2026-03-08 07:00Z", "2026-11-01 06:00Z"};
	static const char *const lord_howe[] = {"2026-04-04 15:00Z", "2026-10-03 15:30Z"};
	static const char *const santiago[] = {"2026-04-05 03:00Z", "2026-09-06 04:00Z"};
	static const int berlin_hot[] = {1, 2, 3}, new_york_hot[] = {0, 1, 2, 3};
	static const int lord_howe_hot[] = {1, 2}, santiago_hot[] = {22, 23, 0, 1};

	(void)state;
	rng_state = 20260329;
	cross_check("Europe/Berlin", 60, berlin, 2, berlin_hot, 3, 800);
	cross_check("America/New_York", -300, new_york, 2, new_york_hot, 4, 800);
	cross_check("Australia/Lord_Howe", 660, lord_howe, 2, lord_howe_hot, 2, 500);
	cross_check("America/Santiago", -180, santiago, 2, santiago_hot, 4, 500);
	cross_check("UTC", 0, berlin, 2, berlin_hot, 3, 100);
	print_message("fixed-time runs moved out of a gap: %d, repeats skipped: %d\n", ref_gap_runs,
		      ref_repeats_skipped);
	assert_true(ref_gap_runs >= 10);
	assert_true(ref_repeats_skipped >= 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_utc),
	    cmocka_unit_test(test_berlin),
	    cmocka_unit_test(test_new_york),
	    cmocka_unit_test(test_other_zones),
	    cmocka_unit_test(test_daily_through_a_year),
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_length),
	    cmocka_unit_test(test_cost),
	    cmocka_unit_test(test_cross_check),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
