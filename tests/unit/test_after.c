/* after_upload on real files in a temporary directory. */
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

#include "agent/after.h"

struct fx {
	char dir[64];
	char src[128], dst[128];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/hs-after-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->src, sizeof(f->src), "%s/in", f->dir);
	snprintf(f->dst, sizeof(f->dst), "%s/sent", f->dir);
	mkdir(f->src, 0700);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

/* Writes rel below dir and returns its facts. */
static struct stat put(const char *dir, const char *rel, const char *text)
{
	char path[256], cmd[512];
	struct stat st;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\"", path);
	assert_int_equal(system(cmd), 0);
	assert_non_null(fp = fopen(path, "w"));
	fputs(text, fp);
	fclose(fp);
	assert_int_equal(stat(path, &st), 0);
	return st;
}

static char *slurp(const char *path)
{
	static char buf[256];
	FILE *fp = fopen(path, "r");
	size_t n;

	if (!fp)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

static int64_t mns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static int act(const struct hs_watch *w, const char *rel, const struct stat *st, char **dest)
{
	char path[256], *cause = NULL;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", w->path, rel);
	rc = hs_after_upload(w, path, rel, st->st_size, mns(st), (int64_t)st->st_ino, dest, &cause);
	if (rc == HS_AFTER_FAILED)
		print_message("# %s\n", cause ? cause : "?");
	free(cause);
	return rc;
}

static void test_keep(void **state)
{
	struct fx *f = *state;
	struct hs_watch w = {.path = f->src, .after_upload = HS_AFTER_KEEP};
	struct stat st = put(f->src, "a.pdf", "a");
	char path[256];

	assert_int_equal(act(&w, "a.pdf", &st, NULL), HS_AFTER_NOTHING);
	snprintf(path, sizeof(path), "%s/a.pdf", f->src);
	assert_string_equal(slurp(path), "a");
}

static void test_delete(void **state)
{
	struct fx *f = *state;
	struct hs_watch w = {.path = f->src, .after_upload = HS_AFTER_DELETE};
	struct stat st = put(f->src, "x/a.pdf", "a"), old;
	char path[256];

	assert_int_equal(act(&w, "x/a.pdf", &st, NULL), HS_AFTER_DONE);
	snprintf(path, sizeof(path), "%s/x/a.pdf", f->src);
	assert_int_not_equal(access(path, F_OK), 0);
	/* Gone already: nothing to do, no error. */
	assert_int_equal(act(&w, "x/a.pdf", &st, NULL), HS_AFTER_NOTHING);
	/* Changed since the upload: left alone. */
	old = put(f->src, "b.pdf", "b");
	put(f->src, "b.pdf", "b, longer now");
	assert_int_equal(act(&w, "b.pdf", &old, NULL), HS_AFTER_NOTHING);
	snprintf(path, sizeof(path), "%s/b.pdf", f->src);
	assert_string_equal(slurp(path), "b, longer now");
}

static void test_move_numbered(void **state)
{
	struct fx *f = *state;
	struct hs_watch w = {.path = f->src, .after_upload = HS_AFTER_MOVE, .move_dir = f->dst};
	char *dest = NULL, want[256];
	struct stat st;
	const char *expect[] = {"lab/2026/r.pdf", "lab/2026/r.1.pdf", "lab/2026/r.2.pdf"};

	for (int i = 0; i < 3; i++) {
		char text[8];
		snprintf(text, sizeof(text), "v%d", i);
		st = put(f->src, "lab/2026/r.pdf", text);
		assert_int_equal(act(&w, "lab/2026/r.pdf", &st, &dest), HS_AFTER_DONE);
		snprintf(want, sizeof(want), "%s/%s", f->dst, expect[i]);
		assert_string_equal(dest, want);
		assert_string_equal(slurp(dest), text); /* never overwritten */
		free(dest);
	}
	snprintf(want, sizeof(want), "%s/%s", f->dst, expect[0]);
	assert_string_equal(slurp(want), "v0");
	/* No extension, and a leading dot that is not one. */
	st = put(f->src, "README", "1");
	assert_int_equal(act(&w, "README", &st, &dest), HS_AFTER_DONE);
	free(dest);
	st = put(f->src, "README", "2");
	assert_int_equal(act(&w, "README", &st, &dest), HS_AFTER_DONE);
	snprintf(want, sizeof(want), "%s/README.1", f->dst);
	assert_string_equal(dest, want);
	free(dest);
	st = put(f->src, ".profile", "1");
	assert_int_equal(act(&w, ".profile", &st, &dest), HS_AFTER_DONE);
	free(dest);
	st = put(f->src, ".profile", "2");
	assert_int_equal(act(&w, ".profile", &st, &dest), HS_AFTER_DONE);
	snprintf(want, sizeof(want), "%s/.profile.1", f->dst);
	assert_string_equal(dest, want);
	free(dest);
}

/* To another file system (/dev/shm is tmpfs): copied, synced, linked in,
 * then the original removed. */
static void test_move_across(void **state)
{
	struct fx *f = *state;
	char shm[64], want[256], cmd[256], *dest = NULL;
	struct stat st, a, b;

	if (stat("/dev/shm", &a) != 0 || stat(f->dir, &b) != 0 || a.st_dev == b.st_dev)
		skip();
	snprintf(shm, sizeof(shm), "/dev/shm/hs-after-XXXXXX");
	assert_non_null(mkdtemp(shm));
	struct hs_watch w = {.path = f->src, .after_upload = HS_AFTER_MOVE, .move_dir = shm};
	st = put(f->src, "d/scan.pdf", "across");
	put(shm, "d/scan.pdf", "taken");
	assert_int_equal(act(&w, "d/scan.pdf", &st, &dest), HS_AFTER_DONE);
	snprintf(want, sizeof(want), "%s/d/scan.1.pdf", shm);
	assert_string_equal(dest, want);
	assert_string_equal(slurp(dest), "across");
	free(dest);
	snprintf(want, sizeof(want), "%s/d/scan.pdf", f->src);
	assert_int_not_equal(access(want, F_OK), 0);
	snprintf(cmd, sizeof(cmd), "test $(ls -A '%s/d' | wc -l) -eq 2 && rm -rf '%s'", shm, shm);
	assert_int_equal(system(cmd), 0); /* no temporary left behind */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_keep, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_move_numbered, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_move_across, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
