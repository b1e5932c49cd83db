/*
 * Sizes, durations and rates (conf/units.c). Whatever the parsers accept,
 * the exact formatters write back in a form they read as the same value;
 * and any 64-bit value, taken from the input's first bytes, survives
 * format-then-parse too. A local date that parses prints back (in UTC, so
 * no hour is ambiguous) as the same instant; a count with separators is
 * the number's digits.
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "conf/units.h"
#include "tests/fuzz/fuzz.h"

static void size_round_trip(uint64_t v, const char *from)
{
	char buf[32];
	uint64_t again = 0;

	hs_format_size_exact(v, buf, sizeof(buf));
	FUZZ_ASSERT(hs_parse_size(buf, &again) == 0, "size %s printed as \"%s\" is refused", from,
		    buf);
	FUZZ_ASSERT(again == v, "size %s printed as \"%s\" reads as %llu, not %llu", from, buf,
		    (unsigned long long)again, (unsigned long long)v);
	hs_format_size(v, buf, sizeof(buf));
}

static void duration_round_trip(uint64_t v, const char *from)
{
	char buf[32];
	uint64_t again = 0;

	hs_format_duration(v, buf, sizeof(buf));
	FUZZ_ASSERT(hs_parse_duration_ms(buf, &again) == 0,
		    "duration %s printed as \"%s\" is refused", from, buf);
	FUZZ_ASSERT(again == v, "duration %s printed as \"%s\" reads as %llu ms, not %llu", from,
		    buf, (unsigned long long)again, (unsigned long long)v);
}

static void rate_round_trip(uint64_t v, const char *from)
{
	char size[32], buf[40];
	uint64_t again = 1;

	if (v == 0)
		snprintf(buf, sizeof(buf), "off");
	else
		snprintf(buf, sizeof(buf), "%s/s", hs_format_size_exact(v, size, sizeof(size)));
	FUZZ_ASSERT(hs_parse_rate(buf, &again) == 0, "rate %s written as \"%s\" is refused", from,
		    buf);
	FUZZ_ASSERT(again == v, "rate %s written as \"%s\" reads as %llu, not %llu", from, buf,
		    (unsigned long long)again, (unsigned long long)v);
}

static void local_time_round_trip(int64_t t, const char *from)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char buf[32];
	int64_t again = 0;

	FUZZ_ASSERT(gmtime_r(&tt, &tm) && strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm),
		    "date %s (%lld) cannot be printed", from, (long long)t);
	FUZZ_ASSERT(hs_parse_local_time(buf, &again) == 0, "date %s printed as \"%s\" is refused",
		    from, buf);
	FUZZ_ASSERT(again == t, "date %s printed as \"%s\" reads as %lld, not %lld", from, buf,
		    (long long)again, (long long)t);
}

static void count_digits(uint64_t v)
{
	char buf[32], digits[32], plain[24];
	size_t o = 0;

	hs_format_count(v, buf, sizeof(buf));
	for (const char *p = buf; *p && o + 1 < sizeof(digits); p++)
		if (*p != ',')
			digits[o++] = *p;
	digits[o] = '\0';
	snprintf(plain, sizeof(plain), "%llu", (unsigned long long)v);
	FUZZ_ASSERT(strcmp(digits, plain) == 0, "count %s printed as \"%s\"", plain, buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool utc;
	char *s = fuzz_string(data, size);
	int64_t t;
	uint64_t v;

	if (!utc) {
		setenv("TZ", "UTC", 1);
		tzset();
		utc = true;
	}
	if (hs_parse_local_time(s, &t) == 0)
		local_time_round_trip(t, "parsed");

	if (hs_parse_size(s, &v) == 0)
		size_round_trip(v, "parsed");
	if (hs_parse_duration_ms(s, &v) == 0)
		duration_round_trip(v, "parsed");
	if (hs_parse_rate(s, &v) == 0)
		rate_round_trip(v, "parsed");
	free(s);

	if (size >= 8) {
		v = fuzz_take(&data, &size, 8);
		size_round_trip(v, "from the input's bytes");
		duration_round_trip(v, "from the input's bytes");
		count_digits(v);
		if (v != 0)
			rate_round_trip(v, "from the input's bytes");
	}
	return 0;
}
