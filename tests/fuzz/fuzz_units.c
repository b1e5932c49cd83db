/*
 * Sizes, durations and rates (conf/units.c). Whatever the parsers accept,
 * the exact formatters write back in a form they read as the same value;
 * and any 64-bit value, taken from the input's first bytes, survives
 * format-then-parse too.
 */
#include "config.h"

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_string(data, size);
	uint64_t v;

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
		if (v != 0)
			rate_round_trip(v, "from the input's bytes");
	}
	return 0;
}
