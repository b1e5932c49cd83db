/* The answer tables of agent/verdict.h, row by row. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "agent/verdict.h"

struct row {
	long status;
	const char *code;
	enum hs_verdict want;
};

static void check_rows(enum hs_dialect d, const struct row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		enum hs_verdict got = d == HS_DIALECT_STORAGE
					  ? hs_verdict_storage(rows[i].status, rows[i].code)
					  : hs_verdict_api(rows[i].status, rows[i].code);
		if (got != rows[i].want)
			fail_msg("%s %ld %s: %s, want %s",
				 d == HS_DIALECT_STORAGE ? "storage" : "api", rows[i].status,
				 rows[i].code, hs_verdict_name(got), hs_verdict_name(rows[i].want));
	}
}

static void test_storage_table(void **state)
{
	static const struct row rows[] = {
	    {200, "", HS_V_OK},
	    {204, "", HS_V_OK},
	    /* transient: retried */
	    {500, "InternalError", HS_V_RETRY},
	    {503, "SlowDown", HS_V_RETRY},
	    {503, "ServiceUnavailable", HS_V_RETRY},
	    {502, "", HS_V_RETRY},
	    {400, "RequestTimeout", HS_V_RETRY},
	    {400, "IncompleteBody", HS_V_RETRY},
	    {400, "Throttling", HS_V_RETRY},
	    {408, "", HS_V_RETRY},
	    {429, "", HS_V_RETRY},
	    {409, "OperationAborted", HS_V_RETRY},
	    {400, "SomeCodeNobodyKnowsYet", HS_V_RETRY},
	    {400, "", HS_V_RETRY},
	    /* a fresh URL */
	    {403, "AccessDenied", HS_V_URL},
	    {403, "", HS_V_URL},
	    {403, "url_expired", HS_V_URL},
	    {403, "url_used", HS_V_URL},
	    {403, "RequestTimeTooSkewed", HS_V_URL},
	    {403, "SignatureDoesNotMatch", HS_V_URL},
	    {400, "ExpiredToken", HS_V_URL},
	    {401, "", HS_V_URL},
	    {307, "TemporaryRedirect", HS_V_URL},
	    {307, "", HS_V_URL},
	    {301, "PermanentRedirect", HS_V_URL},
	    /* the session */
	    {404, "NoSuchUpload", HS_V_SESSION},
	    {404, "", HS_V_SESSION},
	    {404, "upload_not_found", HS_V_SESSION},
	    /* the bytes */
	    {400, "BadDigest", HS_V_CHANGED},
	    {400, "InvalidDigest", HS_V_CHANGED},
	    {400, "bad_digest", HS_V_CHANGED},
	    /* the closed list */
	    {400, "EntityTooLarge", HS_V_DEAD},
	    {400, "EntityTooSmall", HS_V_DEAD},
	    {400, "KeyTooLongError", HS_V_DEAD},
	    {400, "MetadataTooLarge", HS_V_DEAD},
	};
	(void)state;
	check_rows(HS_DIALECT_STORAGE, rows, sizeof(rows) / sizeof(rows[0]));
}

static void test_api_table(void **state)
{
	static const struct row rows[] = {
	    {200, "", HS_V_OK},
	    {201, "", HS_V_OK},
	    {401, "", HS_V_AUTH},
	    {401, "unauthorized", HS_V_AUTH},
	    {403, "url_expired", HS_V_URL},
	    {403, "url_used", HS_V_URL},
	    {403, "forbidden", HS_V_DEAD},
	    {404, "upload_not_found", HS_V_SESSION},
	    {404, "not_found", HS_V_DEAD},
	    {409, "checksum_mismatch", HS_V_CHANGED},
	    {409, "conflict", HS_V_RETRY},
	    {400, "bad_digest", HS_V_CHANGED},
	    {400, "validation_error", HS_V_DEAD},
	    {429, "rate_limited", HS_V_RETRY},
	    {408, "", HS_V_RETRY},
	    {500, "internal", HS_V_RETRY},
	    {503, "", HS_V_RETRY},
	    /* cut or foreign answers are no verdict on the file */
	    {404, "", HS_V_RETRY},
	    {400, "", HS_V_RETRY},
	    {403, "", HS_V_RETRY},
	    {302, "", HS_V_RETRY},
	};
	(void)state;
	check_rows(HS_DIALECT_API, rows, sizeof(rows) / sizeof(rows[0]));
}

/* Whole answers: bodies, cut bodies, transport failures, and the why. */
static void test_answers(void **state)
{
	char why[256];
	struct hs_verdict_in in = {.dialect = HS_DIALECT_API, .answered = true, .status = 404};

	(void)state;
	/* a 404 cut in its headers: no body, no verdict */
	assert_int_equal(hs_verdict_of(&in, why, sizeof(why)), HS_V_RETRY);
	assert_string_equal(why, "HTTP 404");
	in.body = "{\"error\": \"upload_not_found\", \"message\": \"gone\"}";
	assert_int_equal(hs_verdict_of(&in, why, sizeof(why)), HS_V_SESSION);
	assert_string_equal(why, "HTTP 404 upload_not_found: gone");
	in.body = "{\"error\": \"upload_not";
	assert_int_equal(hs_verdict_of(&in, why, sizeof(why)), HS_V_RETRY);
	in.body = "<html><body>404 Not Found</body></html>";
	assert_int_equal(hs_verdict_of(&in, why, sizeof(why)), HS_V_RETRY);

	struct hs_verdict_in s3 = {
	    .dialect = HS_DIALECT_STORAGE,
	    .answered = true,
	    .status = 400,
	    .body = "<?xml version=\"1.0\"?><Error><Code>RequestTimeout</Code><Message>Your "
		    "socket connection was idle</Message><StringToSign>SECRET</StringToSign>"
		    "</Error>"};
	assert_int_equal(hs_verdict_of(&s3, why, sizeof(why)), HS_V_RETRY);
	assert_string_equal(why, "HTTP 400 RequestTimeout: Your socket connection was idle");
	assert_null(strstr(why, "SECRET"));
	s3.status = 307;
	s3.body = "<Error><Code>TemporaryRedirect</Code><Endpoint>x</Endpoint></Error>";
	assert_int_equal(hs_verdict_of(&s3, why, sizeof(why)), HS_V_URL);

	struct hs_verdict_in none = {.dialect = HS_DIALECT_STORAGE, .error = "Connection reset"};
	assert_int_equal(hs_verdict_of(&none, why, sizeof(why)), HS_V_RETRY);
	assert_string_equal(why, "Connection reset");
	none.refused = true;
	assert_int_equal(hs_verdict_of(&none, why, sizeof(why)), HS_V_REFUSED);
	none.body_changed = true;
	assert_int_equal(hs_verdict_of(&none, why, sizeof(why)), HS_V_CHANGED);
}

/* The causes a retry is counted under (the metric's label values). */
static void test_retry_causes(void **state)
{
	(void)state;
	assert_int_equal(hs_retry_cause_of(429, false), HS_RETRY_RATE_LIMITED);
	assert_int_equal(hs_retry_cause_of(503, false), HS_RETRY_SERVER_ERROR);
	assert_int_equal(hs_retry_cause_of(408, false), HS_RETRY_SERVER_ERROR);
	/* An answer that arrived but could not be read. */
	assert_int_equal(hs_retry_cause_of(201, false), HS_RETRY_SERVER_ERROR);
	assert_int_equal(hs_retry_cause_of(0, false), HS_RETRY_NO_ANSWER);
	assert_int_equal(hs_retry_cause_of(0, true), HS_RETRY_STALLED);
	/* A request that never left is no answer, whatever the last one did. */
	assert_int_equal(hs_retry_cause_of(-1, true), HS_RETRY_NO_ANSWER);
	/* Prometheus label values: lower case words, each cause its own. */
	for (int a = 0; a < HS_RETRY_NCAUSES; a++) {
		const char *name = hs_retry_cause_name(a);
		assert_true(strlen(name) > 1);
		assert_int_equal(strspn(name, "abcdefghijklmnopqrstuvwxyz_"), strlen(name));
		for (int b = 0; b < a; b++)
			assert_string_not_equal(name, hs_retry_cause_name(b));
	}
	assert_string_equal(hs_retry_cause_name(HS_RETRY_NCAUSES), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_storage_table),
	    cmocka_unit_test(test_api_table),
	    cmocka_unit_test(test_answers),
	    cmocka_unit_test(test_retry_causes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
