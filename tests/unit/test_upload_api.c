/* Upload API messages: request bodies, and responses from a server that is
 * not trusted (missing fields, wrong types, header injection, clear-text
 * URLs to other hosts, ids that would walk the URL path). */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/upload_api.h"

#define SHA "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void refuse_presigned(const char *body, const char *want)
{
	struct hs_presigned p;
	char *cause = NULL;

	assert_int_equal(hs_api_parse_presigned(body, &p, &cause), -1);
	assert_non_null(cause);
	if (!strstr(cause, want))
		fail_msg("cause \"%s\" lacks \"%s\"", cause, want);
	free(cause);
}

static void test_bodies(void **state)
{
	uint32_t nums[] = {1, 2, 3};
	struct hs_part parts[] = {{.number = 1, .etag = "\"a\""}, {.number = 2, .etag = "b"}};
	char *s;

	(void)state;
	s = hs_api_presign_body("lab/x \"q\".pdf", 1234, SHA, "application/pdf");
	assert_string_equal(s, "{\"filename\":\"lab/x \\\"q\\\".pdf\",\"size_bytes\":1234,"
			       "\"sha256\":\"" SHA "\",\"content_type\":\"application/pdf\"}");
	free(s);
	s = hs_api_create_body("a", 6000000000LL, SHA, "x/y", 16777216);
	assert_non_null(strstr(s, "\"size_bytes\":6000000000"));
	assert_non_null(strstr(s, "\"part_size_bytes\":16777216"));
	free(s);
	s = hs_api_parts_body(nums, 3);
	assert_string_equal(s, "{\"part_numbers\":[1,2,3]}");
	free(s);
	s = hs_api_complete_body(parts, 2);
	assert_string_equal(s, "{\"parts\":[{\"part_number\":1,\"etag\":\"\\\"a\\\"\"},"
			       "{\"part_number\":2,\"etag\":\"b\"}]}");
	free(s);
}

static void test_presigned_ok(void **state)
{
	struct hs_presigned p;
	char *cause = NULL;

	(void)state;
	assert_int_equal(hs_api_parse_presigned(
			     "{\"data\":{\"upload_id\":\"upl_1\",\"method\":\"PUT\","
			     "\"url\":\"https://s.example/o?sig=1\",\"headers\":{\"Content-Type\":"
			     "\"application/pdf\",\"Content-Length\":\"9\",\"x-t\":\"v\"},"
			     "\"expires_at\":\"2026-11-22T10:00:00Z\",\"future\":[1]}}",
			     &p, &cause),
			 0);
	assert_string_equal(p.upload_id, "upl_1");
	assert_string_equal(p.url, "https://s.example/o?sig=1");
	assert_string_equal(p.headers[0], "Content-Type: application/pdf");
	assert_string_equal(p.headers[1], "x-t: v"); /* Content-Length is curl's */
	assert_null(p.headers[2]);
	assert_true(p.expires_ms == 1795341600000LL); /* 2026-11-22T10:00:00Z */
	hs_presigned_clear(&p);
	/* expires_at with milliseconds; unreadable or absent: -1. */
	static const char *const expiries[][2] = {
	    {"\"2026-11-22T10:00:00.250Z\"", "1795341600250"},
	    {"\"2026-11-22T10:00:00.5Z\"", "1795341600500"},
	    {"\"2026-11-22 10:00:00Z\"", "-1"},
	    {"\"2026-11-22T10:00:00+01:00\"", "-1"},
	    {"1795860000", "-1"},
	};
	for (size_t i = 0; i < sizeof(expiries) / sizeof(expiries[0]); i++) {
		char body[256];
		snprintf(body, sizeof(body),
			 "{\"data\":{\"upload_id\":\"u\",\"url\":\"https://s/o\","
			 "\"expires_at\":%s}}",
			 expiries[i][0]);
		assert_int_equal(hs_api_parse_presigned(body, &p, &cause), 0);
		assert_true(p.expires_ms == strtoll(expiries[i][1], NULL, 10));
		hs_presigned_clear(&p);
	}
	/* Loopback may be plain http (the reference server). */
	assert_int_equal(hs_api_parse_presigned("{\"data\":{\"upload_id\":\"u\",\"url\":"
						"\"http://127.0.0.1:8/s?x=1\"}}",
						&p, &cause),
			 0);
	hs_presigned_clear(&p);
}

static void test_presigned_hostile(void **state)
{
	(void)state;
	refuse_presigned(NULL, "empty body");
	refuse_presigned("not json", "malformed JSON");
	refuse_presigned("{\"upload_id\":\"u\"}", "\"data\"");
	refuse_presigned("{\"data\":{}}", "upload_id");
	refuse_presigned("{\"data\":{\"upload_id\":7,\"url\":\"https://a/b\"}}", "upload_id");
	refuse_presigned("{\"data\":{\"upload_id\":\"../../admin\",\"url\":\"https://a/b\"}}",
			 "plain id");
	refuse_presigned("{\"data\":{\"upload_id\":\"u?x\",\"url\":\"https://a/b\"}}", "plain id");
	refuse_presigned("{\"data\":{\"upload_id\":\"u\"}}", "url");
	refuse_presigned("{\"data\":{\"upload_id\":\"u\",\"url\":\"http://evil.example/x\"}}",
			 "https");
	refuse_presigned("{\"data\":{\"upload_id\":\"u\",\"url\":\"file:///etc/passwd\"}}",
			 "https");
	refuse_presigned("{\"data\":{\"upload_id\":\"u\",\"url\":\"https://a/b\",\"method\":"
			 "\"POST\"}}",
			 "method");
	refuse_presigned("{\"data\":{\"upload_id\":\"u\",\"url\":\"https://a/b\",\"headers\":"
			 "{\"X-A\":\"v\\r\\nX-Injected: 1\"}}}",
			 "header");
	refuse_presigned("{\"data\":{\"upload_id\":\"u\",\"url\":\"https://a/b\",\"headers\":"
			 "{\"X A\":\"v\"}}}",
			 "header");
	refuse_presigned("{\"data\":{\"upload_id\":\"u\",\"url\":\"https://a/b\",\"headers\":"
			 "{\"X-A\":5}}}",
			 "header");
	refuse_presigned("{\"data\":{\"upload_id\":\"u\",\"url\":\"https://a/b\",\"headers\":[]}}",
			 "headers");
	refuse_presigned("{\"data\":{\"upload_id\":\"u\\u0000x\",\"url\":\"https://a/b\"}}",
			 "malformed JSON");
}

static void test_session(void **state)
{
	struct hs_session s;
	char *cause = NULL;
	const int64_t mib = 1024 * 1024;

	(void)state;
	assert_int_equal(hs_api_parse_session("{\"data\":{\"upload_id\":\"m1\",\"part_size_bytes\":"
					      "16777216,\"part_count\":3}}",
					      40 * mib, &s, &cause),
			 0);
	assert_int_equal(s.part_size, 16 * mib);
	assert_int_equal(s.part_count, 3);
	hs_session_clear(&s);
	/* A count that does not match the size and part size. */
	assert_int_equal(hs_api_parse_session("{\"data\":{\"upload_id\":\"m1\",\"part_size_bytes\":"
					      "16777216,\"part_count\":4}}",
					      40 * mib, &s, &cause),
			 -1);
	free(cause);
	cause = NULL;
	/* Absurd numbers. */
	assert_int_equal(hs_api_parse_session("{\"data\":{\"upload_id\":\"m1\",\"part_size_bytes\":"
					      "0,\"part_count\":1}}",
					      1, &s, &cause),
			 -1);
	free(cause);
	cause = NULL;
	assert_int_equal(hs_api_parse_session("{\"data\":{\"upload_id\":\"m1\",\"part_size_bytes\":"
					      "5242880,\"part_count\":10001}}",
					      10001LL * 5242880, &s, &cause),
			 -1);
	free(cause);
}

static void test_part_urls(void **state)
{
	uint32_t asked[] = {2, 3};
	struct hs_presigned *urls = NULL;
	char *cause = NULL;

	(void)state;
	assert_int_equal(hs_api_parse_part_urls("{\"data\":{\"parts\":[{\"part_number\":3,\"url\":"
						"\"https://s/3\"},{\"part_number\":2,\"url\":"
						"\"https://s/2\",\"headers\":{\"h\":\"v\"}}]}}",
						asked, 2, &urls, &cause),
			 0);
	assert_string_equal(urls[0].url, "https://s/2");
	assert_string_equal(urls[0].headers[0], "h: v");
	assert_string_equal(urls[1].url, "https://s/3");
	assert_true(urls[0].expires_ms == -1); /* none given */
	hs_presigned_clear(&urls[0]);
	hs_presigned_clear(&urls[1]);
	free(urls);
	/* A part not asked for, a duplicate, a short list. */
	assert_int_equal(hs_api_parse_part_urls("{\"data\":{\"parts\":[{\"part_number\":3,\"url\":"
						"\"https://s/3\"},{\"part_number\":4,\"url\":"
						"\"https://s/4\"}]}}",
						asked, 2, &urls, &cause),
			 -1);
	free(cause);
	cause = NULL;
	assert_int_equal(hs_api_parse_part_urls("{\"data\":{\"parts\":[{\"part_number\":3,\"url\":"
						"\"https://s/3\"},{\"part_number\":3,\"url\":"
						"\"https://s/3\"}]}}",
						asked, 2, &urls, &cause),
			 -1);
	free(cause);
	cause = NULL;
	assert_int_equal(
	    hs_api_parse_part_urls("{\"data\":{\"parts\":[]}}", asked, 2, &urls, &cause), -1);
	free(cause);
}

static void test_part_list(void **state)
{
	struct hs_part *parts = NULL;
	size_t n = 0;
	char *cause = NULL;

	(void)state;
	assert_int_equal(hs_api_parse_part_list("{\"data\":{\"parts\":[{\"part_number\":2,\"etag\":"
						"\"e2\",\"size_bytes\":5},{\"part_number\":1,"
						"\"etag\":\"e1\",\"size_bytes\":5}]}}",
						3, &parts, &n, &cause),
			 0);
	assert_int_equal(n, 2);
	assert_int_equal(parts[0].number, 1);
	assert_string_equal(parts[1].etag, "e2");
	free(parts);
	assert_int_equal(hs_api_parse_part_list("{\"data\":{\"parts\":[]}}", 3, &parts, &n, &cause),
			 0);
	assert_int_equal(n, 0);
	free(parts);
	assert_int_equal(hs_api_parse_part_list("{\"data\":{\"parts\":[{\"part_number\":9,\"etag\":"
						"\"e\",\"size_bytes\":5}]}}",
						3, &parts, &n, &cause),
			 -1);
	free(cause);
}

static void test_stored(void **state)
{
	struct hs_stored s;
	char *cause = NULL;

	(void)state;
	assert_int_equal(hs_api_parse_stored("{\"data\":{\"file_id\":\"f_1\",\"size_bytes\":3,"
					     "\"sha256\":\"" SHA "\",\"status\":\"stored\"}}",
					     &s, &cause),
			 0);
	assert_string_equal(s.file_id, "f_1");
	assert_string_equal(s.sha256, SHA);
	hs_stored_clear(&s);
	assert_int_equal(hs_api_parse_stored("{\"data\":{\"file_id\":\"f_1\",\"size_bytes\":3,"
					     "\"sha256\":\"XYZ\",\"status\":\"stored\"}}",
					     &s, &cause),
			 -1);
	free(cause);
	cause = NULL;
	assert_int_equal(hs_api_parse_stored("{\"data\":{\"file_id\":\"f_1\",\"size_bytes\":3,"
					     "\"sha256\":\"" SHA "\",\"status\":\"pending\"}}",
					     &s, &cause),
			 -1);
	free(cause);
}

static void test_errors_and_helpers(void **state)
{
	char buf[32];

	(void)state;
	hs_api_error_type("{\"error\":\"url_expired\",\"message\":\"m\"}", buf, sizeof(buf));
	assert_string_equal(buf, "url_expired");
	hs_api_error_message("{\"error\":\"e\",\"message\":\"bad\\nline\\u0007\"}", buf,
			     sizeof(buf));
	assert_string_equal(buf, "bad?line?");
	hs_api_error_type("<html>", buf, sizeof(buf));
	assert_string_equal(buf, "");
	hs_api_error_type(NULL, buf, sizeof(buf));
	assert_string_equal(buf, "");

	/* A server's text may quote a presigned URL or anything else asked. */
	char msg[256];
	hs_api_error_type("{\"error\":\"bad https://s/x?X-Sig=abc\"}", buf, sizeof(buf));
	assert_string_equal(buf, "");
	hs_api_error_type("{\"error\":\"UrlExpired\"}", buf, sizeof(buf));
	assert_string_equal(buf, "");
	hs_api_error_message("{\"message\":\"no such key https://store.example/b/k?X-Sig=s3cr3t "
			     "(token=abc, user@host) for /p?id=12\"}",
			     msg, sizeof(msg));
	assert_string_equal(msg, "no such key [...] [...] [...] for [...]");
	hs_api_error_message("{\"message\":\"a  b \"}", msg, sizeof(msg));
	assert_string_equal(msg, "a  b ");
	hs_api_error_message("{\"message\":\"abcdefghijklmnopqrstuvwxyz0123456789ABCDEF\"}", buf,
			     sizeof(buf));
	assert_int_equal(strlen(buf), sizeof(buf) - 1);
	hs_api_error_message("{\"message\":\"x http://a.example/very/long/path?q=1\"}", buf, 4);
	assert_string_equal(buf, "x [");

	assert_int_equal(hs_api_part_size_for(1000, 16 << 20), 16 << 20);
	/* 1 TiB in 16 MiB parts would be 65536 parts: raised to fit 10,000. */
	int64_t ps = hs_api_part_size_for(1LL << 40, 16 << 20);
	assert_true((1LL << 40) / ps < 10000 || ((1LL << 40) + ps - 1) / ps <= 10000);
	assert_int_equal(ps % (1 << 20), 0);

	assert_string_equal(hs_content_type("a/b/Report.PDF"), "application/pdf");
	assert_string_equal(hs_content_type("x.hl7"), "application/hl7-v2");
	assert_string_equal(hs_content_type("dir.pdf/noext"), "application/octet-stream");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bodies),
	    cmocka_unit_test(test_presigned_ok),
	    cmocka_unit_test(test_presigned_hostile),
	    cmocka_unit_test(test_session),
	    cmocka_unit_test(test_part_urls),
	    cmocka_unit_test(test_part_list),
	    cmocka_unit_test(test_stored),
	    cmocka_unit_test(test_errors_and_helpers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
