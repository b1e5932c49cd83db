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

#define SEC 1000000000LL	  /* ns */
#define DAY (86400LL * 1000)	  /* ms */
#define NOW (1796601600LL * 1000) /* 2026-12-06 00:00 UTC, in ms */
#define NB  1796083200LL	  /* 2026-12-01 00:00 UTC, in s */
#define KiB 1024LL

/* Every reason the decision gives, and the order of the checks, by table. */
static void test_decide_table(void **state)
{
	char *inc[] = {"*.pdf", "*.hl7", NULL}, *exc[] = {"*.tmp", ".*", "drafts/*", NULL};
	struct hs_watch lim = {.include = inc,
			       .exclude = exc,
			       .ignore_case = true,
			       .settle_ms = 2000,
			       .max_age_ms = 30 * DAY,
			       .has_not_before = true,
			       .not_before = NB,
			       .not_before_text = "2026-12-01",
			       .min_size = 1 * KiB,
			       .max_size = 100 * KiB};
	struct hs_watch none = {.settle_ms = 2000};
	int64_t fresh = (NOW - DAY) * 1000000; /* yesterday, in ns */
	static const struct row {
		const char *rel;
		int64_t size, mtime_ns;
		bool limits;
		enum hs_reason want;
		const char *rule;
	} rows[] = {
	    /* limits on */
	    {"report.pdf", 5 * KiB, 0, true, HS_REASON_SEND, NULL},
	    {"REPORT.PDF", 5 * KiB, 0, true, HS_REASON_SEND, NULL},
	    {"lab/2026/msg.hl7", 5 * KiB, 0, true, HS_REASON_SEND, NULL},
	    {"notes.txt", 5 * KiB, 0, true, HS_REASON_NOT_INCLUDED, NULL},
	    {"a.tmp", 5 * KiB, 0, true, HS_REASON_EXCLUDED, "*.tmp"},
	    {".report.pdf", 5 * KiB, 0, true, HS_REASON_EXCLUDED, ".*"},
	    {"drafts/x.pdf", 5 * KiB, 0, true, HS_REASON_EXCLUDED, "drafts/*"},
	    {"report.pdf~", 5 * KiB, 0, true, HS_REASON_TEMPORARY, NULL},
	    {"report.pdf.part", 5 * KiB, 0, true, HS_REASON_TEMPORARY, NULL},
	    {"tiny.pdf", 1 * KiB - 1, 0, true, HS_REASON_TOO_SMALL, NULL},
	    {"edge.pdf", 1 * KiB, 0, true, HS_REASON_SEND, NULL},   /* min_size is allowed */
	    {"edge.pdf", 100 * KiB, 0, true, HS_REASON_SEND, NULL}, /* max_size is allowed */
	    {"huge.pdf", 100 * KiB + 1, 0, true, HS_REASON_TOO_LARGE, NULL},
	    {"empty.pdf", 0, 0, true, HS_REASON_TOO_SMALL, NULL},
	    /* the name decides before the size: a big .txt is not included */
	    {"huge.txt", 1000 * KiB, 0, true, HS_REASON_NOT_INCLUDED, NULL},
	    /* not_before: to the second, rounded down */
	    {"nb.pdf", 5 * KiB, NB * SEC - 1, true, HS_REASON_NOT_BEFORE, NULL},
	    {"nb.pdf", 5 * KiB, NB * SEC, true, HS_REASON_SEND, NULL},
	    {"nb.pdf", 5 * KiB, NB * SEC + SEC / 2, true, HS_REASON_SEND, NULL},
	    /* not_before before max_age when both apply */
	    {"old.pdf", 5 * KiB, (NOW - 400 * DAY) * 1000000, true, HS_REASON_NOT_BEFORE, NULL},
	    {"old.pdf", 500 * KiB, (NOW - 400 * DAY) * 1000000, true, HS_REASON_TOO_LARGE, NULL},
	    /* limits off: only the temporaries are left out */
	    {"notes.txt", 0, 0, false, HS_REASON_SEND, NULL},
	    {"huge.bin", 1LL << 40, 0, false, HS_REASON_SEND, NULL},
	    {"ancient.pdf", 1, -5 * SEC, false, HS_REASON_SEND, NULL},
	    {"a.swp", 1, 0, false, HS_REASON_TEMPORARY, NULL},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];
		struct hs_file_facts f = {r->size, r->mtime_ns ? r->mtime_ns : fresh};
		const char *rule = "unset";
		enum hs_reason got = hs_filter_decide(r->limits ? &lim : &none, r->rel,
						      base(r->rel), &f, NOW, &rule);

		if (got != r->want)
			fail_msg("row %zu (%s): got %s, want %s", i, r->rel, hs_reason_name(got),
				 hs_reason_name(r->want));
		if (r->rule)
			assert_string_equal(rule, r->rule);
		else
			assert_null(rule);
	}
}

/* max_age is measured from now, at millisecond precision. */
static void test_max_age_edges(void **state)
{
	struct hs_watch w = {.max_age_ms = 30 * DAY};
	struct hs_file_facts f = {.size = 10};

	(void)state;
	f.mtime_ns = (NOW - 30 * DAY) * 1000000;
	assert_int_equal(hs_filter_decide(&w, "a", "a", &f, NOW, NULL), HS_REASON_SEND);
	assert_int_equal(hs_filter_decide(&w, "a", "a", &f, NOW + 1, NULL), HS_REASON_TOO_OLD);
	f.mtime_ns = (NOW + DAY) * 1000000; /* from the future: not old */
	assert_int_equal(hs_filter_decide(&w, "a", "a", &f, NOW, NULL), HS_REASON_SEND);
	/* Without facts, only the names count. */
	assert_int_equal(hs_filter_decide(&w, "a", "a", NULL, NOW, NULL), HS_REASON_SEND);
}

static void test_settled(void **state)
{
	struct hs_watch w = {.settle_ms = 2000};

	(void)state;
	assert_true(hs_filter_settled(&w, (NOW - 2000) * 1000000, NOW));
	assert_false(hs_filter_settled(&w, (NOW - 1999) * 1000000, NOW));
	assert_false(hs_filter_settled(&w, (NOW + 60000) * 1000000, NOW));
	w.settle_ms = 0;
	assert_true(hs_filter_settled(&w, NOW * 1000000, NOW));
}

static void test_reason_names(void **state)
{
	char *inc[] = {"*.pdf", "*.hl7", NULL};
	struct hs_watch w = {.include = inc,
			     .settle_ms = 2000,
			     .max_age_ms = 30 * DAY,
			     .has_not_before = true,
			     .not_before_text = "2026-12-01 18:00",
			     .min_size = KiB,
			     .max_size = 16 * 1024 * KiB};
	char buf[128];

	(void)state;
	/* Every reason has a distinct name. */
	for (int a = 0; a < HS_REASON_COUNT; a++)
		for (int b = a + 1; b < HS_REASON_COUNT; b++)
			assert_string_not_equal(hs_reason_name((enum hs_reason)a),
						hs_reason_name((enum hs_reason)b));
	assert_string_equal(hs_reason_name(HS_REASON_TOO_OLD), "too_old");
	assert_string_equal(hs_reason_text(HS_REASON_STORED), "already stored");
	assert_string_equal(hs_reason_rule(&w, HS_REASON_TOO_OLD, buf, sizeof(buf)), "max_age 30d");
	assert_string_equal(hs_reason_rule(&w, HS_REASON_NOT_INCLUDED, buf, sizeof(buf)),
			    "include *.pdf, *.hl7");
	assert_string_equal(hs_reason_rule(&w, HS_REASON_NOT_BEFORE, buf, sizeof(buf)),
			    "not_before 2026-12-01 18:00");
	assert_string_equal(hs_reason_rule(&w, HS_REASON_TOO_SMALL, buf, sizeof(buf)),
			    "min_size 1KiB");
	assert_string_equal(hs_reason_rule(&w, HS_REASON_TOO_LARGE, buf, sizeof(buf)),
			    "max_size 16MiB");
	assert_string_equal(hs_reason_rule(&w, HS_REASON_SETTLING, buf, sizeof(buf)), "settle 2s");
	assert_string_equal(hs_reason_rule(&w, HS_REASON_STORED, buf, sizeof(buf)), "");
	/* A short buffer is cut, never overrun. */
	assert_string_equal(hs_reason_rule(&w, HS_REASON_NOT_INCLUDED, buf, 12), "include *.p");
	/* A setting that is off is no rule. */
	w = (struct hs_watch){.settle_ms = 0};
	for (int r = 0; r < HS_REASON_COUNT; r++)
		if (r != HS_REASON_SETTLING)
			assert_string_equal(hs_reason_rule(&w, (enum hs_reason)r, buf, sizeof(buf)),
					    "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_everything_by_default), cmocka_unit_test(test_include_exclude),
	    cmocka_unit_test(test_ignore_case),		  cmocka_unit_test(test_temporaries),
	    cmocka_unit_test(test_path_patterns),	  cmocka_unit_test(test_decide_table),
	    cmocka_unit_test(test_max_age_edges),	  cmocka_unit_test(test_settled),
	    cmocka_unit_test(test_reason_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
