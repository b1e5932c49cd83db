/* beneath: opening below a root on real directories, with symlinks swapped
 * in at every depth, ".." and paths longer than PATH_MAX. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "tests/unit/deep.h"

#include "agent/beneath.h"

static char root[64], outside[96];

static int setup(void **state)
{
	char path[512];

	(void)state;
	snprintf(root, sizeof(root), "/tmp/hs-beneath-XXXXXX");
	if (!mkdtemp(root))
		return -1;
	snprintf(outside, sizeof(outside), "%s.out", root);
	snprintf(path, sizeof(path),
		 "mkdir -p %s/a/b %s/b && echo in > %s/a/b/f && "
		 "echo out > %s/b/f",
		 root, outside, root, outside);
	return system(path) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[256];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", root, outside);
	return system(cmd) == 0 ? 0 : -1;
}

static char *read_rel(const char *rel)
{
	static char buf[64];
	const char *name;
	int dir = hs_beneath_parent(root, rel, &name), fd;
	ssize_t n;

	if (dir < 0)
		return NULL;
	fd = hs_beneath_open_file(dir, name);
	close(dir);
	if (fd < 0)
		return NULL;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void test_plain(void **state)
{
	const char *name;
	int fd;

	(void)state;
	assert_string_equal(read_rel("a/b/f"), "in\n");
	assert_string_equal(read_rel("a//b/./f"), "in\n");
	assert_true((fd = hs_beneath_parent(root, "f", &name)) >= 0);
	assert_string_equal(name, "f");
	close(fd);
}

/* A symlink as the file, in the middle, and right below the root. */
static void test_symlinks(void **state)
{
	char path[160], target[160];

	(void)state;
	snprintf(path, sizeof(path), "%s/a/b/g", root);
	snprintf(target, sizeof(target), "%s/b/f", outside);
	assert_int_equal(symlink(target, path), 0);
	errno = 0;
	assert_null(read_rel("a/b/g"));
	assert_int_equal(errno, ELOOP);

	snprintf(path, sizeof(path), "%s/a/b", root);
	snprintf(target, sizeof(target), "%s/a/b.old", root);
	assert_int_equal(rename(path, target), 0);
	snprintf(target, sizeof(target), "%s/b", outside);
	assert_int_equal(symlink(target, path), 0);
	errno = 0;
	assert_null(read_rel("a/b/f"));
	assert_int_equal(errno, ELOOP);

	snprintf(path, sizeof(path), "%s/c", root);
	assert_int_equal(symlink(outside, path), 0);
	errno = 0;
	assert_null(read_rel("c/b/f"));
	assert_int_equal(errno, ELOOP);
	errno = 0;
	assert_int_equal(hs_beneath_dir(root, "c/b", true), -1);
	assert_int_equal(errno, ELOOP);
}

static void test_dotdot(void **state)
{
	char rel[128];

	(void)state;
	snprintf(rel, sizeof(rel), "a/../../%s/b/f", strrchr(outside, '/') + 1);
	errno = 0;
	assert_null(read_rel(rel));
	assert_int_equal(errno, EINVAL);
	assert_null(read_rel(".."));
}

/* Folders created below the root; below a root that does not exist yet,
 * the root too. */
static void test_create(void **state)
{
	char path[160], missing[160];
	struct stat st;
	int fd;

	(void)state;
	assert_true((fd = hs_beneath_dir(root, "x/y/z", true)) >= 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/x/y/z", root);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(hs_beneath_dir(root, "q/r", false), -1);
	snprintf(missing, sizeof(missing), "%s/new/root", root);
	assert_true((fd = hs_beneath_dir(missing, "s", true)) >= 0);
	close(fd);
}

/* Folders made for a move mirror the modes of the watch folder's tree
 * whatever the umask (the unit's is 0077); where the mirror has no such
 * folder, the parent's mode; folders that exist keep theirs; and a root
 * made now takes the mirror's own mode. */
static void test_create_like(void **state)
{
	char like[160], dst[160], path[200];
	struct stat st;
	mode_t old = umask(077);
	int fd;

	(void)state;
	snprintf(like, sizeof(like), "%s/lab", root);
	snprintf(path, sizeof(path), "%s/lab/2026", root);
	assert_int_equal(mkdir(like, 0700), 0);
	assert_int_equal(chmod(like, 0750), 0);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(chmod(path, 02751), 0);
	snprintf(path, sizeof(path), "%s/lab/2026/ward3", root);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(chmod(path, 0755), 0);

	snprintf(dst, sizeof(dst), "%s/sent", root);
	assert_true((fd = hs_beneath_dir_like(dst, "2026/ward3/extra", like)) >= 0);
	close(fd);
	umask(old);
	assert_int_equal(stat(dst, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0750);
	snprintf(path, sizeof(path), "%s/sent/2026", root);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 02751);
	snprintf(path, sizeof(path), "%s/sent/2026/ward3", root);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);
	snprintf(path, sizeof(path), "%s/sent/2026/ward3/extra", root);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755); /* no mirror: its parent's */

	/* An existing folder keeps its mode. */
	snprintf(path, sizeof(path), "%s/sent/2026", root);
	assert_int_equal(chmod(path, 0700), 0);
	assert_true((fd = hs_beneath_dir_like(dst, "2026/ward3", like)) >= 0);
	close(fd);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
}

/* Deeper than PATH_MAX: walked a folder at a time, and a symlink deep
 * down is still refused. */
static void test_long(void **state)
{
	char rel[PATH_MAX + 512], target[160];
	const char *name;
	struct stat st;
	int dir = make_deep(root, rel, "f", "deep", &st);

	(void)state;
	assert_string_equal(read_rel(rel), "deep");

	/* The deepest folder swapped for a symlink to the outside. */
	snprintf(target, sizeof(target), "%s/b", outside);
	assert_int_equal(renameat(dir, "f", dir, "g"), 0);
	assert_int_equal(mkdirat(dir, "s", 0700), 0);
	close(dir);
	strcpy(strrchr(rel, '/') + 1, "s");
	assert_true((dir = hs_beneath_parent(root, rel, &name)) >= 0);
	assert_int_equal(unlinkat(dir, name, AT_REMOVEDIR), 0);
	assert_int_equal(symlinkat(target, dir, name), 0);
	close(dir);
	strcat(rel, "/f");
	errno = 0;
	assert_null(read_rel(rel));
	assert_int_equal(errno, ELOOP);
	assert_true(strlen(rel) > PATH_MAX);
}

/* Where a seccomp filter refuses openat2 (a unit's SystemCallFilter on a
 * systemd that does not know it), every component is opened one by one,
 * and a swapped symlink is still refused. Runs in a child: a filter cannot
 * be taken off again. */
static void test_without_openat2(void **state)
{
	struct sock_filter code[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat2, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(code) / sizeof(code[0]), .filter = code};
	char path[160], target[160];
	int status;
	pid_t pid;

	(void)state;
	snprintf(path, sizeof(path), "%s/a/b", root);
	snprintf(target, sizeof(target), "%s/a/b.old", root);
	assert_int_equal(rename(path, target), 0);
	snprintf(target, sizeof(target), "%s/b", outside);
	assert_int_equal(symlink(target, path), 0);
	assert_true((pid = fork()) >= 0);
	if (pid == 0) {
		const char *got;
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
		    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
			_exit(2);
		if (syscall(SYS_openat2, AT_FDCWD, ".", NULL, 0) != -1 || errno != EPERM)
			_exit(3); /* the filter is not in place */
		if (!(got = read_rel("a/b.old/f")) || strcmp(got, "in\n") != 0)
			_exit(4);
		errno = 0;
		if (read_rel("a/b/f") || errno != ELOOP)
			_exit(5);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_split(void **state)
{
	const char *r;

	(void)state;
	assert_string_equal(hs_beneath_split("/srv/lab", "/srv/lab/x/y.pdf", &r), "x/y.pdf");
	assert_string_equal(r, "/srv/lab");
	assert_string_equal(hs_beneath_split("/srv/lab", "/srv/labs/y.pdf", &r), "srv/labs/y.pdf");
	assert_string_equal(r, "/");
	assert_string_equal(hs_beneath_split("", "/tmp/y.pdf", &r), "tmp/y.pdf");
	assert_string_equal(r, "/");
	assert_null(hs_beneath_split("", "tmp/y.pdf", &r));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_plain, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_symlinks, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dotdot, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_create, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_create_like, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_long, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_without_openat2, setup, teardown),
	    cmocka_unit_test(test_split),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
