#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "agent/health.h"
#include "agent/metrics.h"

#define MIN  (60LL * 1000)
#define HOUR (60 * MIN)
#define T0   1780000000000LL /* a Unix time in ms */

static const struct hs_health_limits limits = {
    .stalled_after = 24 * HOUR,
    .queued_age_warning = 6 * HOUR,
    .mirror_grace = 2 * HOUR,
    .min_free = 1024LL * 1024 * 1024,
};

static struct hs_health_facts healthy(void)
{
	struct hs_health_facts f = {.running = true, .disk_free = 100LL * 1024 * 1024 * 1024};
	return f;
}

static const struct hs_health_reason *find(const struct hs_health *h, enum hs_health_code c)
{
	for (size_t i = 0; i < h->n; i++)
		if (h->reasons[i].code == c)
			return &h->reasons[i];
	return NULL;
}

static void test_all_well(void **state)
{
	struct hs_health_facts f = healthy();
	struct hs_health h;
	char buf[128];

	(void)state;
	hs_health_eval(&f, &limits, NULL, T0, &h);
	assert_int_equal(h.state, HS_HEALTH_OK);
	assert_int_equal(h.n, 0);
	assert_int_equal(h.since, T0);
	assert_string_equal(hs_health_summary(&h, buf, sizeof(buf)), "all well");
}

static void test_not_running_says_only_that(void **state)
{
	struct hs_health_facts f = healthy();
	struct hs_health h;

	(void)state;
	f.running = false;
	f.dead = 3;
	hs_health_eval(&f, &limits, NULL, T0, &h);
	assert_int_equal(h.state, HS_HEALTH_CRITICAL);
	assert_int_equal(h.n, 1);
	assert_int_equal(h.reasons[0].code, HS_HEALTH_NOT_RUNNING);
}

static void test_dead_jobs_are_critical(void **state)
{
	struct hs_health_facts f = healthy();
	struct hs_health h;

	(void)state;
	f.dead = 2;
	hs_health_eval(&f, &limits, NULL, T0, &h);
	assert_int_equal(h.state, HS_HEALTH_CRITICAL);
	assert_string_equal(find(&h, HS_HEALTH_JOBS_DEAD)->text, "2 jobs dead");
	f.dead = 1;
	hs_health_eval(&f, &limits, NULL, T0, &h);
	assert_string_equal(find(&h, HS_HEALTH_JOBS_DEAD)->text, "1 job dead");
}

static void test_outage_keeps_its_own_since(void **state)
{
	struct hs_health_facts f = healthy();
	struct hs_health h;

	(void)state;
	f.upload_unavailable = true;
	f.upload_unavailable_since = T0 - 20 * MIN;
	hs_health_eval(&f, &limits, NULL, T0, &h);
	assert_int_equal(h.state, HS_HEALTH_WARNING);
	assert_int_equal(find(&h, HS_HEALTH_UPLOAD_UNAVAILABLE)->since, T0 - 20 * MIN);
	/* a rejected key says more than an outage */
	f.upload_key_rejected = true;
	hs_health_eval(&f, &limits, NULL, T0, &h);
	assert_int_equal(h.state, HS_HEALTH_CRITICAL);
	assert_non_null(find(&h, HS_HEALTH_UPLOAD_KEY_REJECTED));
	assert_null(find(&h, HS_HEALTH_UPLOAD_UNAVAILABLE));
}

static void test_since_carries_over(void **state)
{
	struct hs_health_facts f = healthy();
	struct hs_health h1, h2, h3;

	(void)state;
	f.watch_missing = 1;
	hs_health_eval(&f, &limits, NULL, T0, &h1);
	assert_int_equal(h1.since, T0);
	f.dead = 1;
	hs_health_eval(&f, &limits, &h1, T0 + MIN, &h2);
	/* the missing folder began at T0; the verdict became critical later */
	assert_int_equal(find(&h2, HS_HEALTH_WATCH_MISSING)->since, T0);
	assert_int_equal(find(&h2, HS_HEALTH_JOBS_DEAD)->since, T0 + MIN);
	assert_int_equal(h2.state, HS_HEALTH_CRITICAL);
	assert_int_equal(h2.since, T0 + MIN);
	assert_false(hs_health_same(&h1, &h2));
	hs_health_eval(&f, &limits, &h2, T0 + 2 * MIN, &h3);
	assert_int_equal(h3.since, T0 + MIN);
	assert_true(hs_health_same(&h2, &h3));
}

static void test_queued_age(void **state)
{
	struct hs_health_facts f = healthy();
	struct hs_health_limits lim = limits;
	struct hs_health h;

	(void)state;
	f.waiting = 4;
	f.oldest_waiting_at = T0;
	f.last_stored_at = T0 + MIN; /* work goes on: not stalled */
	hs_health_eval(&f, &lim, NULL, T0 + 6 * HOUR - 1, &h);
	assert_int_equal(h.state, HS_HEALTH_OK);
	hs_health_eval(&f, &lim, NULL, T0 + 6 * HOUR, &h);
	assert_int_equal(h.state, HS_HEALTH_WARNING);
	assert_int_equal(find(&h, HS_HEALTH_QUEUED_TOO_LONG)->since, T0 + 6 * HOUR);
	assert_string_equal(find(&h, HS_HEALTH_QUEUED_TOO_LONG)->text,
			    "oldest queued file waits 6h 0m (warning at 6h 0m)");
	lim.queued_age_critical = 8 * HOUR;
	hs_health_eval(&f, &lim, NULL, T0 + 9 * HOUR, &h);
	assert_int_equal(find(&h, HS_HEALTH_QUEUED_TOO_LONG)->state, HS_HEALTH_CRITICAL);
	/* nothing waits: no age */
	f.waiting = 0;
	hs_health_eval(&f, &lim, NULL, T0 + 9 * HOUR, &h);
	assert_int_equal(h.state, HS_HEALTH_OK);
}

static void test_stalled(void **state)
{
	struct hs_health_facts f = healthy();
	struct hs_health_limits lim = limits;
	struct hs_health h;

	(void)state;
	lim.queued_age_warning = 0;
	f.waiting = 1;
	f.last_stored_at = T0 - 48 * HOUR;
	/* the file arrived an hour ago: nothing has been waiting 24 h */
	f.oldest_waiting_at = T0 - HOUR;
	hs_health_eval(&f, &lim, NULL, T0, &h);
	assert_int_equal(h.state, HS_HEALTH_OK);
	hs_health_eval(&f, &lim, NULL, T0 + 23 * HOUR, &h);
	assert_int_equal(h.state, HS_HEALTH_CRITICAL);
	assert_int_equal(find(&h, HS_HEALTH_STALLED)->since, T0 + 23 * HOUR);
	/* idle, with nothing to send: never stalled */
	f.waiting = 0;
	hs_health_eval(&f, &lim, NULL, T0 + 100 * HOUR, &h);
	assert_int_equal(h.state, HS_HEALTH_OK);
	/* off */
	f.waiting = 1;
	lim.stalled_after = 0;
	hs_health_eval(&f, &lim, NULL, T0 + 100 * HOUR, &h);
	assert_int_equal(h.state, HS_HEALTH_OK);
}

static void test_mirror(void **state)
{
	struct hs_health_facts f = healthy();
	struct hs_health h;

	(void)state;
	f.mirror_enabled = true;
	f.mirror_due_at = T0;
	hs_health_eval(&f, &limits, NULL, T0 + 2 * HOUR - 1, &h);
	assert_int_equal(h.state, HS_HEALTH_OK);
	hs_health_eval(&f, &limits, NULL, T0 + 2 * HOUR, &h);
	assert_int_equal(h.state, HS_HEALTH_WARNING);
	assert_int_equal(find(&h, HS_HEALTH_MIRROR_LATE)->since, T0 + 2 * HOUR);
	f.mirror_failed = true;
	f.mirror_failed_at = T0 + 10 * MIN;
	hs_health_eval(&f, &limits, NULL, T0 + 2 * HOUR, &h);
	assert_int_equal(find(&h, HS_HEALTH_MIRROR_FAILED)->since, T0 + 10 * MIN);
	/* no mirror section: nothing about it */
	f.mirror_enabled = false;
	hs_health_eval(&f, &limits, NULL, T0 + 2 * HOUR, &h);
	assert_int_equal(h.state, HS_HEALTH_OK);
}

static void test_disk(void **state)
{
	struct hs_health_facts f = healthy();
	struct hs_health h;

	(void)state;
	f.disk_free = limits.min_free - 1;
	hs_health_eval(&f, &limits, NULL, T0, &h);
	assert_int_equal(h.state, HS_HEALTH_WARNING);
	f.disk_free = limits.min_free / 4 - 1;
	hs_health_eval(&f, &limits, NULL, T0, &h);
	assert_int_equal(h.state, HS_HEALTH_CRITICAL);
	f.disk_free = -1; /* not known: not said */
	hs_health_eval(&f, &limits, NULL, T0, &h);
	assert_int_equal(h.state, HS_HEALTH_OK);
}

static void test_token(void **state)
{
	struct hs_health_facts f = healthy();
	struct hs_health h, prev;
	const struct hs_health_reason *r;
	char buf[128];

	(void)state;
	/* A week away: nothing to say. */
	f.token_expires_at = T0 + 7 * 24 * HOUR;
	snprintf(f.token_api, sizeof(f.token_api), "upload");
	hs_health_eval(&f, &limits, NULL, T0, &h);
	assert_int_equal(h.state, HS_HEALTH_OK);

	/* Within a day: WARNING since the day began, whenever first seen. */
	f.token_expires_at = T0 + 5 * HOUR + 30 * MIN;
	hs_health_eval(&f, &limits, NULL, T0, &h);
	assert_int_equal(h.state, HS_HEALTH_WARNING);
	r = find(&h, HS_HEALTH_TOKEN_EXPIRING);
	assert_non_null(r);
	assert_int_equal(r->since, f.token_expires_at - 24 * HOUR);
	assert_string_equal(hs_health_summary(&h, buf, sizeof(buf)),
			    "upload token expires in 5h 30m");

	/* Past exp: CRITICAL since exp, even before any 401 says so. */
	prev = h;
	hs_health_eval(&f, &limits, &prev, f.token_expires_at + 2 * HOUR, &h);
	assert_int_equal(h.state, HS_HEALTH_CRITICAL);
	r = find(&h, HS_HEALTH_TOKEN_EXPIRING);
	assert_non_null(r);
	assert_int_equal(r->state, HS_HEALTH_CRITICAL);
	assert_int_equal(r->since, f.token_expires_at);
	assert_string_equal(r->text, "upload token expired 2h 0m ago");

	/* A new token in the file (the daemon's facts change): all well. */
	prev = h;
	f.token_expires_at = T0 + 30 * 24 * HOUR;
	hs_health_eval(&f, &limits, &prev, T0 + 8 * HOUR, &h);
	assert_int_equal(h.state, HS_HEALTH_OK);
	assert_null(find(&h, HS_HEALTH_TOKEN_EXPIRING));

	/* An opaque token, or none: nothing known, nothing said. */
	f.token_expires_at = 0;
	hs_health_eval(&f, &limits, NULL, T0, &h);
	assert_int_equal(h.state, HS_HEALTH_OK);
}

static void test_summary_worst_first(void **state)
{
	struct hs_health_facts f = healthy();
	struct hs_health h;
	char buf[128], small[12];

	(void)state;
	f.watch_missing = 2;
	f.dead = 1;
	hs_health_eval(&f, &limits, NULL, T0, &h);
	assert_string_equal(hs_health_summary(&h, buf, sizeof(buf)),
			    "1 job dead; 2 watch folders missing");
	/* a short buffer keeps whole reasons only */
	assert_string_equal(hs_health_summary(&h, small, sizeof(small)), "1 job dead");
}

static void test_names(void **state)
{
	(void)state;
	for (int c = 0; c < HS_HEALTH_NCODES; c++)
		assert_int_equal(hs_health_code_parse(hs_health_code_name(c)), c);
	for (int s = HS_HEALTH_OK; s <= HS_HEALTH_UNKNOWN; s++)
		assert_int_equal(hs_health_state_parse(hs_health_state_name(s)), s);
	assert_int_equal(hs_health_code_parse("nope"), -1);
	assert_int_equal(hs_health_state_parse(NULL), -1);
}

static void test_metrics_text(void **state)
{
	struct hs_health_facts f = healthy();
	struct hs_health h;
	struct hs_metrics m = {.running = true,
			       .started_at = T0,
			       .stored_files = 3,
			       .stored_bytes = 4096,
			       .last_upload_at = T0 + 1500,
			       .upload_up = true,
			       .disk_free = -1,
			       .n_limiters = 1,
			       .health = &h};
	char *text;

	(void)state;
	f.dead = 1;
	hs_health_eval(&f, &limits, NULL, T0, &h);
	m.jobs[HS_JOB_DEAD] = 1;
	m.limiters[0].api = "upload";
	m.limiters[0].host = "a\"b";
	m.limiters[0].throttled = 2;
	m.retries[HS_RETRY_RATE_LIMITED] = 2;
	text = hs_metrics_text(&m);
	assert_non_null(text);
	assert_non_null(
	    strstr(text, "# TYPE healsync_jobs gauge\nhealsync_jobs{state=\"queued\"} 0\n"));
	assert_non_null(strstr(text, "healsync_jobs{state=\"dead\"} 1\n"));
	assert_non_null(strstr(text, "healsync_health_state 2\n"));
	assert_non_null(
	    strstr(text, "healsync_health_reason{code=\"jobs_dead\",state=\"CRITICAL\"} 1\n"));
	assert_non_null(strstr(text, "# TYPE healsync_stored_files_total counter\n"
				     "healsync_stored_files_total 3\n"));
	assert_non_null(
	    strstr(text, "healsync_last_upload_success_timestamp_seconds 1780000001.500\n"));
	assert_non_null(strstr(text, "healsync_api_up{api=\"upload\"} 1\n"));
	/* a host name is a label value: escaped */
	assert_non_null(strstr(text, "{api=\"upload\",host=\"a\\\"b\"} 2\n"));
	/* retries: every cause, counted or not */
	assert_non_null(strstr(text, "# TYPE healsync_upload_retries_total counter\n"));
	assert_non_null(strstr(text, "healsync_upload_retries_total{cause=\"rate_limited\"} 2\n"));
	assert_non_null(strstr(text, "healsync_upload_retries_total{cause=\"file_changed\"} 0\n"));
	/* no mirror, no free space known: not said at all */
	assert_null(strstr(text, "mirror"));
	assert_null(strstr(text, "healsync_state_dir_free_bytes"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_all_well),
	    cmocka_unit_test(test_not_running_says_only_that),
	    cmocka_unit_test(test_dead_jobs_are_critical),
	    cmocka_unit_test(test_outage_keeps_its_own_since),
	    cmocka_unit_test(test_since_carries_over),
	    cmocka_unit_test(test_queued_age),
	    cmocka_unit_test(test_stalled),
	    cmocka_unit_test(test_mirror),
	    cmocka_unit_test(test_disk),
	    cmocka_unit_test(test_token),
	    cmocka_unit_test(test_summary_worst_first),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_metrics_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
