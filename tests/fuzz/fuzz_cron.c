/*
 * The mirror's cron schedule (conf/cron.c). There is no formatter to round
 * trip through, so the target checks what hs_cron_next promises for a time
 * taken from the input: the next run is after it, on a whole minute, within
 * five years; nothing matches in between (asking again from any earlier
 * point gives the same run); and runs move strictly forward.
 */
#include "config.h"

#include <time.h>

#include "conf/cron.h"
#include "tests/fuzz/fuzz.h"

FUZZ_IN_A_DST_ZONE()

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* 2001-09-09 .. 2096 */
	int64_t after = 1000000000 + (int64_t)(fuzz_take(&data, &size, 4) % 3000000000u);
	char *s = fuzz_string(data, size), *cause = NULL;
	struct hs_cron *c = hs_cron_parse(s, &cause);
	int64_t next, later;

	if (!c) {
		FUZZ_ASSERT(cause != NULL, "\"%s\" refused without a cause", s);
		FUZZ_ASSERT(strchr(cause, '\n') == NULL, "cause has a newline: %s", cause);
		free(cause);
		free(s);
		return 0;
	}
	FUZZ_ASSERT(cause == NULL, "\"%s\" accepted with a cause", s);
	next = hs_cron_next(c, after);
	if (next != -1) {
		FUZZ_ASSERT(next > after, "\"%s\": next run %lld not after %lld", s,
			    (long long)next, (long long)after);
		FUZZ_ASSERT(next % 60 == 0, "\"%s\": next run %lld not on a minute", s,
			    (long long)next);
		/* The search spans 5 x 366 + 2 local days from the day of
		 * `after` (cron.h); a day more for the zone's offsets. */
		FUZZ_ASSERT(next - after <= (5 * 366 + 3) * 86400LL,
			    "\"%s\": next run %lld beyond five years of %lld", s, (long long)next,
			    (long long)after);
		FUZZ_ASSERT(hs_cron_next(c, next - 1) == next,
			    "\"%s\": from %lld the next run is %lld, from a second before it "
			    "something else",
			    s, (long long)after, (long long)next);
		FUZZ_ASSERT(hs_cron_next(c, after + (next - after) / 2) == next,
			    "\"%s\": a run between %lld and %lld was skipped", s, (long long)after,
			    (long long)next);
		later = hs_cron_next(c, next);
		FUZZ_ASSERT(later == -1 || later > next, "\"%s\": after %lld comes %lld", s,
			    (long long)next, (long long)later);
	}
	hs_cron_free(c);
	free(s);
	return 0;
}
