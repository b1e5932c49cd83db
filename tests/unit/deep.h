/*
 * deep: a file below a chain of folders longer than PATH_MAX, for the tests
 * that walk such paths (test_beneath, test_after). Unit-test use only: a
 * failure is a cmocka assertion.
 */
#ifndef HS_TESTS_UNIT_DEEP_H
#define HS_TESTS_UNIT_DEEP_H

#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Folders of 200 'd's below root until rel ("ddd.../ddd.../", at least
 * PATH_MAX + 512 bytes of room) is PATH_MAX + 100 bytes long, and in the
 * last one the file name holding text, its facts in *st. Returns the last
 * folder, open (the caller closes it); rel ends with name. */
static int make_deep(const char *root, char *rel, const char *name, const char *text,
		     struct stat *st)
{
	char comp[201];
	int dir, next;

	memset(comp, 'd', 200);
	comp[200] = '\0';
	rel[0] = '\0';
	assert_true((dir = open(root, O_RDONLY | O_DIRECTORY)) >= 0);
	while (strlen(rel) < PATH_MAX + 100) {
		assert_int_equal(mkdirat(dir, comp, 0700), 0);
		assert_true((next = openat(dir, comp, O_RDONLY | O_DIRECTORY)) >= 0);
		close(dir);
		dir = next;
		strcat(rel, comp);
		strcat(rel, "/");
	}
	assert_true((next = openat(dir, name, O_WRONLY | O_CREAT, 0600)) >= 0);
	assert_int_equal(write(next, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fstat(next, st), 0);
	close(next);
	strcat(rel, name);
	return dir;
}

#endif
