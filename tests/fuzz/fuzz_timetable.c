/*
 * The bandwidth timetable (conf/timetable.c): parse, print the canonical
 * text, parse that again: the same text. And for a time taken from the
 * input, the next change lies after it, and the rate in force does not
 * change before it.
 */
#include "config.h"

#include <time.h>

#include "conf/timetable.h"
#include "tests/fuzz/fuzz.h"

FUZZ_IN_A_DST_ZONE()

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* 2001-09-09 .. 2106: where the schedule is read in practice. */
	time_t now = (time_t)(1000000000 + fuzz_take(&data, &size, 4) % 3000000000u);
	char *s = fuzz_string(data, size), *cause = NULL, *cause2 = NULL;
	struct hs_timetable *tt = hs_timetable_parse(s, &cause), *again;
	time_t next;

	if (!tt) {
		FUZZ_ASSERT(cause != NULL, "\"%s\" refused without a cause", s);
		free(cause);
		free(s);
		return 0;
	}
	FUZZ_ASSERT(cause == NULL, "\"%s\" accepted with a cause", s);
	again = hs_timetable_parse(hs_timetable_text(tt), &cause2);
	FUZZ_ASSERT(again != NULL, "canonical \"%s\" refused: %s", hs_timetable_text(tt),
		    cause2 ? cause2 : "out of memory");
	FUZZ_ASSERT(strcmp(hs_timetable_text(again), hs_timetable_text(tt)) == 0,
		    "canonical \"%s\" reads back as \"%s\"", hs_timetable_text(tt),
		    hs_timetable_text(again));

	next = hs_timetable_next_change(tt, now);
	FUZZ_ASSERT(next == hs_timetable_next_change(again, now),
		    "\"%s\" and its canonical form change at different times",
		    hs_timetable_text(tt));
	FUZZ_ASSERT(hs_timetable_rate(tt, now) == hs_timetable_rate(again, now),
		    "\"%s\" and its canonical form differ at %lld", hs_timetable_text(tt),
		    (long long)now);
	if (next != 0) {
		FUZZ_ASSERT(next > now, "\"%s\": next change %lld is not after %lld",
			    hs_timetable_text(tt), (long long)next, (long long)now);
		/* A week, or two when the moment falls in a spring-forward gap
		 * and the rate does not change there. */
		FUZZ_ASSERT(next - now <= 15 * 86400, "\"%s\": next change %lld s after %lld",
			    hs_timetable_text(tt), (long long)(next - now), (long long)now);
		FUZZ_ASSERT(hs_timetable_rate(tt, now) ==
				hs_timetable_rate(tt, now + (next - now) / 2),
			    "\"%s\": the rate changes between %lld and %lld, before the next "
			    "change",
			    hs_timetable_text(tt), (long long)now, (long long)next);
		FUZZ_ASSERT(hs_timetable_rate(tt, now) == hs_timetable_rate(tt, next - 1),
			    "\"%s\": the rate changes between %lld and %lld, before the next "
			    "change",
			    hs_timetable_text(tt), (long long)now, (long long)next);
	}
	hs_timetable_free(again);
	hs_timetable_free(tt);
	free(s);
	return 0;
}
