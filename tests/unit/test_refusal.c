/* refusal: the kinds it tells apart on real folders. As root, the modes
 * never refuse (so a refusal there is a sticky folder's or a policy's); as
 * another user, a folder without write access is named with the fix. The
 * sandbox and read-only kinds need a mount namespace: the integration test
 * after_refused.py holds them. */
#include "config.h"

#include <errno.h>
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

#include "agent/refusal.h"

static char root[64];

static int setup(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/hs-refusal-XXXXXX");
	return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[200];

	(void)state;
	snprintf(cmd, sizeof(cmd), "chmod -R u+rwx %s; rm -rf %s", root, root);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_not_a_refusal(void **state)
{
	char *line = (char *)1;

	(void)state;
	assert_false(hs_refusal_errno(ENOENT));
	assert_true(hs_refusal_errno(EACCES) && hs_refusal_errno(EPERM) && hs_refusal_errno(EROFS));
	assert_int_equal(hs_refusal_explain(root, root, ENOSPC, -1, &line), HS_REFUSAL_NONE);
	assert_null(line);
}

/* A folder that cannot be made is looked at through its nearest parent. */
static void test_modes(void **state)
{
	char dir[128], missing[160], *line = NULL;
	enum hs_refusal kind;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/ward3", root);
	snprintf(missing, sizeof(missing), "%s/not/yet", dir);
	assert_int_equal(mkdir(dir, 0555), 0);
	assert_int_equal(chmod(dir, 0555), 0);
	kind = hs_refusal_explain(missing, root, EACCES, -1, &line);
	assert_non_null(line);
	print_message("# %s\n", line);
	if (geteuid() == 0) {
		/* Root may write anyway: what refused is no mode. */
		assert_int_equal(hs_refusal_probe(dir), 0);
		assert_int_equal(kind, HS_REFUSAL_POLICY);
		assert_non_null(strstr(line, dir));
		assert_non_null(strstr(line, "security module"));
	} else {
		assert_int_equal(hs_refusal_probe(dir), EACCES);
		assert_int_equal(kind, HS_REFUSAL_ACCESS);
		assert_non_null(strstr(line, "mode 0555"));
		assert_non_null(strstr(line, "it needs write and search"));
		assert_non_null(strstr(line, "setfacl -R -m u:"));
		assert_non_null(strstr(line, root));
	}
	free(line);
}

/* A sticky folder of another owner holding a file of a third. */
static void test_sticky(void **state)
{
	char dir[128], *line = NULL;
	uid_t other = geteuid() == 0 ? 65534 : 0;

	(void)state;
	if (geteuid() != 0)
		skip(); /* a folder of another owner needs root to make */
	snprintf(dir, sizeof(dir), "%s/shared", root);
	assert_int_equal(mkdir(dir, 01777), 0);
	assert_int_equal(chmod(dir, 01777), 0);
	assert_int_equal(chown(dir, other, other), 0);
	assert_int_equal(hs_refusal_explain(dir, root, EPERM, 4242, &line), HS_REFUSAL_STICKY);
	assert_non_null(strstr(line, "is sticky (mode 1777"));
	assert_non_null(strstr(line, "chmod -t"));
	free(line);
	/* The file is this user's own: not the sticky bit, then. */
	assert_int_equal(hs_refusal_explain(dir, root, EPERM, (long)geteuid(), &line),
			 HS_REFUSAL_POLICY);
	free(line);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_not_a_refusal, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_modes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sticky, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
