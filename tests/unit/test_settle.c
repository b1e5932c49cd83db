#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "agent/settle.h"

static void test_empty(void **state)
{
	struct hs_settle *s = hs_settle_new();

	(void)state;
	assert_int_equal(hs_settle_next(s), -1);
	assert_null(hs_settle_pop(s, 1000));
	assert_false(hs_settle_bump(s, "/x", 5));
	assert_int_equal(hs_settle_count(s), 0);
	hs_settle_free(s);
}

/* Entries come out in deadline order, only once due. */
static void test_order(void **state)
{
	struct hs_settle *s = hs_settle_new();
	struct hs_pending *p;
	const int64_t deadlines[] = {50, 10, 40, 30, 20};
	char path[16];

	(void)state;
	for (int i = 0; i < 5; i++) {
		snprintf(path, sizeof(path), "/f%d", i);
		assert_int_equal(hs_settle_touch(s, path, 0, deadlines[i], true, i, i), 0);
	}
	assert_int_equal(hs_settle_next(s), 10);
	assert_null(hs_settle_pop(s, 9));
	p = hs_settle_pop(s, 25);
	assert_string_equal(p->path, "/f1");
	hs_pending_free(p);
	p = hs_settle_pop(s, 25);
	assert_string_equal(p->path, "/f4");
	hs_pending_free(p);
	assert_null(hs_settle_pop(s, 25));
	assert_int_equal(hs_settle_count(s), 3);
	assert_int_equal(hs_settle_next(s), 30);
	hs_settle_free(s); /* frees the rest */
}

/* Activity pushes a deadline back, never forward; a touch refreshes facts. */
static void test_touch_and_bump(void **state)
{
	struct hs_settle *s = hs_settle_new();
	struct hs_pending *p;

	(void)state;
	hs_settle_touch(s, "/a", 1, 100, true, 5, 7);
	hs_settle_touch(s, "/b", 1, 150, true, 5, 7);
	assert_true(hs_settle_bump(s, "/a", 200));
	assert_true(hs_settle_bump(s, "/a", 120)); /* earlier: ignored */
	assert_int_equal(hs_settle_next(s), 150);
	hs_settle_touch(s, "/b", 2, 160, false, 0, 0);
	assert_int_equal(hs_settle_count(s), 2);
	p = hs_settle_pop(s, 1000);
	assert_string_equal(p->path, "/b");
	assert_int_equal(p->deadline, 160);
	assert_false(p->known);
	assert_int_equal(p->root, 2);
	hs_pending_free(p);
	p = hs_settle_pop(s, 1000);
	assert_string_equal(p->path, "/a");
	assert_int_equal(p->deadline, 200);
	assert_true(p->known);
	assert_int_equal(p->size, 5);
	assert_int_equal(p->mtime_ns, 7);
	hs_pending_free(p);
	hs_settle_free(s);
}

/* A popped entry that changed goes back with new facts; if the path was
 * touched meanwhile, the two merge into one. */
static void test_requeue(void **state)
{
	struct hs_settle *s = hs_settle_new();
	struct hs_pending *p;

	(void)state;
	hs_settle_touch(s, "/a", 0, 10, false, 0, 0);
	p = hs_settle_pop(s, 10);
	hs_settle_requeue(s, p, 20, 99, 98);
	assert_int_equal(hs_settle_count(s), 1);
	p = hs_settle_pop(s, 20);
	assert_true(p->known);
	assert_int_equal(p->size, 99);
	hs_settle_touch(s, "/a", 0, 40, true, 1, 1); /* written again meanwhile */
	hs_settle_requeue(s, p, 30, 2, 2);
	assert_int_equal(hs_settle_count(s), 1);
	assert_int_equal(hs_settle_next(s), 40);
	p = hs_settle_pop(s, 40);
	assert_int_equal(p->size, 1);
	hs_pending_free(p);
	assert_int_equal(hs_settle_count(s), 0);
	hs_settle_free(s);
}

/* Many entries with random deadlines, bumps and drops: the heap and the
 * hash agree and everything comes out in order. */
static void test_many(void **state)
{
	struct hs_settle *s = hs_settle_new();
	struct hs_pending *p;
	char path[32];
	int64_t last = -1;
	size_t n = 0, root0 = 0;

	(void)state;
	srand(7);
	for (int i = 0; i < 20000; i++) {
		snprintf(path, sizeof(path), "/dir/%d", i % 15000);
		unsigned root = (unsigned)(i % 3);
		hs_settle_touch(s, path, root, rand() % 100000, true, 1, 1);
	}
	for (int i = 0; i < 5000; i++) {
		snprintf(path, sizeof(path), "/dir/%d", rand() % 15000);
		assert_true(hs_settle_bump(s, path, rand() % 200000));
	}
	assert_int_equal(hs_settle_count(s), 15000);
	hs_settle_drop_root(s, 0);
	/* Each path's last touch set its root to path % 3. */
	for (int i = 0; i < 15000; i++)
		root0 += i % 3 == 0;
	assert_int_equal(hs_settle_count(s), 15000 - root0);
	while ((p = hs_settle_pop(s, INT64_MAX))) {
		assert_true(p->deadline >= last);
		assert_int_not_equal(p->root, 0);
		last = p->deadline;
		hs_pending_free(p);
		n++;
	}
	assert_int_equal(n, 15000 - root0);
	hs_settle_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_empty),	   cmocka_unit_test(test_order),
	    cmocka_unit_test(test_touch_and_bump), cmocka_unit_test(test_requeue),
	    cmocka_unit_test(test_many),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
