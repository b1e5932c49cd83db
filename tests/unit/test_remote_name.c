/* Remote names: prefixing, escaping of non-UTF-8 bytes, reversibility. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/remote_name.h"

static void expect_name(const char *prefix, const char *rel, const char *want)
{
	char *got = hs_remote_name(prefix, rel);
	char *back;

	assert_non_null(got);
	assert_string_equal(got, want);
	back = hs_remote_name_unescape(got + strlen(prefix));
	assert_non_null(back);
	assert_string_equal(back, rel);
	free(back);
	free(got);
}

static void test_plain(void **state)
{
	(void)state;
	expect_name("lab/", "2026-11-22/report.pdf", "lab/2026-11-22/report.pdf");
	expect_name("", "a.pdf", "a.pdf");
	expect_name("x/", "Zoë Ångström/ß.hl7", "x/Zoë Ångström/ß.hl7");
	expect_name("", "\xf0\x9f\x93\x84.pdf", "\xf0\x9f\x93\x84.pdf"); /* U+1F4C4 */
}

static void test_invalid_utf8_escaped(void **state)
{
	(void)state;
	expect_name("", "caf\xe9.pdf", "caf%E9.pdf");
	expect_name("", "\xff\xfe", "%FF%FE");
	expect_name("", "\xc0\xaf", "%C0%AF");		     /* overlong "/" */
	expect_name("", "\xed\xa0\x80", "%ED%A0%80");	     /* surrogate */
	expect_name("", "\xf4\x90\x80\x80", "%F4%90%80%80"); /* past U+10FFFF */
	expect_name("", "trunc\xe2\x82", "trunc%E2%82");
	expect_name("", "a\nb\tc\x1b[0m\x7f.pdf", "a%0Ab%09c%1B[0m%7F.pdf");
}

static void test_percent_kept_reversible(void **state)
{
	(void)state;
	expect_name("", "100%.pdf", "100%.pdf");
	expect_name("", "50%AB.pdf", "50%25AB.pdf");
	expect_name("", "x%2", "x%2");
	expect_name("", "%25", "%2525");
}

static void test_refused(void **state)
{
	(void)state;
	assert_null(hs_remote_name("p/", ""));
	assert_null(hs_remote_name("p/", "/abs"));
	assert_null(hs_remote_name("p/", "a/../b"));
	assert_null(hs_remote_name("p/", ".."));
	assert_null(hs_remote_name("p/", "a//b"));
	assert_null(hs_remote_name("p/", "a/./b"));
	assert_null(hs_remote_name("p/", "a/"));
	char *ok = hs_remote_name("p/", "...");
	assert_non_null(ok);
	assert_string_equal(ok, "p/...");
	free(ok);
}

static void test_watch_for_path(void **state)
{
	struct hs_watch w[2] = {{.path = "/srv/lab", .remote_prefix = "lab/"},
				{.path = "/srv/labx", .remote_prefix = "x/"}};
	struct hs_config cfg = {.watches = w, .n_watches = 2};
	const char *rel = NULL;

	(void)state;
	assert_ptr_equal(hs_watch_for_path(&cfg, "/srv/lab/a/b.pdf", &rel), &w[0]);
	assert_string_equal(rel, "a/b.pdf");
	assert_ptr_equal(hs_watch_for_path(&cfg, "/srv/labx/c.pdf", &rel), &w[1]);
	assert_string_equal(rel, "c.pdf");
	assert_null(hs_watch_for_path(&cfg, "/srv/lab", &rel));
	assert_null(hs_watch_for_path(&cfg, "/srv/la/x", &rel));
	assert_null(hs_watch_for_path(&cfg, "/srv/lab/", &rel));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain),
	    cmocka_unit_test(test_invalid_utf8_escaped),
	    cmocka_unit_test(test_percent_kept_reversible),
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_watch_for_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
