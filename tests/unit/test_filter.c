#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "agent/filter.h"

static const char *base(const char *rel)
{
	const char *s = strrchr(rel, '/');
	return s ? s + 1 : rel;
}

static bool file_ok(const struct hs_watch *w, const char *rel)
{
	return hs_filter_file(w, rel, base(rel));
}

static void test_everything_by_default(void **state)
{
	struct hs_watch w = {0};

	(void)state;
	assert_true(file_ok(&w, "a.pdf"));
	assert_true(file_ok(&w, "x/y/z.hl7"));
	assert_true(file_ok(&w, ".hidden")); /* only excluded when configured */
	assert_true(hs_filter_dir(&w, ".git", ".git"));
}

static void test_include_exclude(void **state)
{
	char *inc[] = {"*.pdf", "*.hl7", NULL}, *exc[] = {"*.tmp", ".*", "~*", NULL};
	struct hs_watch w = {.include = inc, .exclude = exc};

	(void)state;
	assert_true(file_ok(&w, "report.pdf"));
	assert_true(file_ok(&w, "2026/11/msg.hl7"));
	assert_false(file_ok(&w, "notes.txt"));	  /* not included */
	assert_false(file_ok(&w, ".report.pdf")); /* excluded wins */
	assert_false(file_ok(&w, "~report.pdf"));
	assert_false(file_ok(&w, "a/b.tmp"));
	assert_false(hs_filter_dir(&w, ".git", ".git"));
	assert_false(hs_filter_dir(&w, "a/.cache", ".cache"));
	assert_true(hs_filter_dir(&w, "2026", "2026")); /* include is for files */
}

static void test_ignore_case(void **state)
{
	char *inc[] = {"*.pdf", "lab/*.hl7", NULL}, *exc[] = {"*.tmp", NULL};
	struct hs_watch w = {.include = inc, .exclude = exc};

	(void)state;
	assert_false(file_ok(&w, "REPORT.PDF")); /* by default, case counts */
	w.ignore_case = true;
	assert_true(file_ok(&w, "REPORT.PDF"));
	assert_true(file_ok(&w, "Report.Pdf"));
	assert_true(file_ok(&w, "LAB/MSG.HL7"));
	assert_false(file_ok(&w, "A.TMP")); /* exclude too */
	assert_false(file_ok(&w, "xray.jpg"));
}

static void test_temporaries(void **state)
{
	struct hs_watch w = {0};
	const char *tmp[] = {"a.pdf~",
			     ".#a.pdf",
			     "#a.pdf#",
			     ".a.pdf.swp",
			     "a.pdf.part",
			     "a.pdf.crdownload",
			     ".~lock.a.odt#",
			     ".healsync-del-0123456789abcdef",
			     ".healsync-move-0123456789abcdef"};

	(void)state;
	for (size_t i = 0; i < sizeof(tmp) / sizeof(tmp[0]); i++)
		assert_false(file_ok(&w, tmp[i]));
	assert_true(file_ok(&w, "a.partial.pdf"));
}

/* A pattern with "/" matches the relative path, "*" not crossing "/". */
static void test_path_patterns(void **state)
{
	char *exc[] = {"archive/*", "*/draft-*", NULL}, *inc[] = {"lab/*.pdf", NULL};
	struct hs_watch w = {.exclude = exc};
	struct hs_watch v = {.include = inc};

	(void)state;
	assert_false(file_ok(&w, "archive/a.pdf"));
	assert_true(file_ok(&w, "archive/old/a.pdf"));
	assert_false(file_ok(&w, "x/draft-1.pdf"));
	assert_true(file_ok(&w, "draft-1.pdf"));
	assert_false(hs_filter_dir(&w, "archive/old", "old"));
	assert_true(file_ok(&v, "lab/a.pdf"));
	assert_false(file_ok(&v, "lab/2026/a.pdf"));
	assert_false(file_ok(&v, "a.pdf"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_everything_by_default), cmocka_unit_test(test_include_exclude),
	    cmocka_unit_test(test_ignore_case),		  cmocka_unit_test(test_temporaries),
	    cmocka_unit_test(test_path_patterns),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
