/* Remote names: prefixing, escaping of non-UTF-8 bytes, reversibility. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* SPEC 1.1: valid UTF-8 without control characters travels byte for byte,
 * even with "%XX" in it; a name that merely looks escaped is escaped so
 * that it cannot be taken for another one. */
static void test_valid_utf8_as_is(void **state)
{
	(void)state;
	expect_name("", "percent%41 value.txt", "percent%41 value.txt");
	expect_name("p/", "a%7e%20b/%41%5A.pdf", "p/a%7e%20b/%41%5A.pdf");
	expect_name("", "Zoë%2F.pdf", "Zoë%2F.pdf");
	expect_name("", "caf%E9.pdf", "caf%25E9.pdf");
	expect_name("", "caf%e9.pdf", "caf%25e9.pdf");
	expect_name("", "a%0Ab.pdf", "a%250Ab.pdf");
	expect_name("", "50%25.pdf", "50%2525.pdf");
	expect_name("", "caf\xe9 %41.pdf", "caf%E9 %2541.pdf");
	expect_name("", "x\n%41%", "x%0A%2541%");
}

/* Every name of up to three bytes from a small alphabet maps to a distinct
 * remote name that unescapes to it. */
static void test_round_trip_exhaustive(void **state)
{
	static const char alphabet[] = {'%', '0',  '2',	       '5',	   'A',	      'e',
					'x', '\n', (char)0xe9, (char)0xc3, (char)0xa9};
	enum { K = sizeof(alphabet) };
	char *seen[K * K * K + K * K + K];
	size_t n = 0;

	(void)state;
	for (size_t len = 1; len <= 3; len++) {
		size_t total = len == 1 ? K : len == 2 ? K * K : K * K * K;

		for (size_t v = 0; v < total; v++) {
			char rel[4];
			size_t x = v;

			for (size_t i = 0; i < len; i++, x /= K)
				rel[i] = alphabet[x % K];
			rel[len] = '\0';
			if (strcmp(rel, ".") == 0)
				continue;
			seen[n] = hs_remote_name("", rel);
			assert_non_null(seen[n]);
			char *back = hs_remote_name_unescape(seen[n]);
			assert_non_null(back);
			assert_string_equal(back, rel);
			free(back);
			for (size_t j = 0; j < n; j++)
				assert_string_not_equal(seen[j], seen[n]);
			n++;
		}
	}
	for (size_t j = 0; j < n; j++)
		free(seen[j]);
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
	const struct hs_watch *got = NULL;
	const char *rel = NULL;
	char *path = NULL;

	(void)state;
	assert_int_equal(hs_watch_for_path(&cfg, "/srv/lab/a/b.pdf", &got, &path, &rel), 1);
	assert_ptr_equal(got, &w[0]);
	assert_string_equal(path, "/srv/lab/a/b.pdf");
	assert_string_equal(rel, "a/b.pdf");
	free(path);
	assert_int_equal(hs_watch_for_path(&cfg, "/srv/labx/c.pdf", &got, &path, &rel), 1);
	assert_ptr_equal(got, &w[1]);
	assert_string_equal(rel, "c.pdf");
	free(path);
	path = NULL;
	assert_int_equal(hs_watch_for_path(&cfg, "/srv/lab", &got, &path, &rel), 0);
	assert_int_equal(hs_watch_for_path(&cfg, "/srv/la/x", &got, &path, &rel), 0);
	assert_int_equal(hs_watch_for_path(&cfg, "/srv/lab/", &got, &path, &rel), 0);
	assert_null(path);
}

/* A folder configured through a symlink (/srv -> /data) holds the files
 * below the folder it resolves to, named by its configured path. */
static void test_watch_for_path_symlink(void **state)
{
	char dir[] = "/tmp/hs-rn-XXXXXX", data[64], srv[64], file[96], cmd[96];
	struct hs_watch w[2] = {{.path = "/nonexistent/hs", .remote_prefix = "n/"},
				{.path = srv, .remote_prefix = "s/"}};
	struct hs_config cfg = {.watches = w, .n_watches = 2};
	const struct hs_watch *got = NULL;
	const char *rel = NULL;
	char *path = NULL;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(data, sizeof(data), "%s/data", dir);
	snprintf(srv, sizeof(srv), "%s/srv", dir);
	assert_int_equal(mkdir(data, 0700), 0);
	assert_int_equal(symlink(data, srv), 0);
	snprintf(file, sizeof(file), "%s/sub/x.pdf", data);
	assert_int_equal(hs_watch_for_path(&cfg, file, &got, &path, &rel), 1);
	assert_ptr_equal(got, &w[1]);
	snprintf(file, sizeof(file), "%s/sub/x.pdf", srv);
	assert_string_equal(path, file);
	assert_string_equal(rel, "sub/x.pdf");
	free(path);
	path = NULL;
	assert_int_equal(hs_watch_for_path(&cfg, data, &got, &path, &rel), 0);
	snprintf(file, sizeof(file), "%s/datax/y.pdf", dir);
	assert_int_equal(hs_watch_for_path(&cfg, file, &got, &path, &rel), 0);
	assert_null(path);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain),
	    cmocka_unit_test(test_invalid_utf8_escaped),
	    cmocka_unit_test(test_percent_kept_reversible),
	    cmocka_unit_test(test_valid_utf8_as_is),
	    cmocka_unit_test(test_round_trip_exhaustive),
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_watch_for_path),
	    cmocka_unit_test(test_watch_for_path_symlink),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
