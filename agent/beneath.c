/*
 * beneath: component-wise opening below a root (see beneath.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent/beneath.h"

#define DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

/* -1: not tried yet, 0: the kernel (or a seccomp filter) refuses it. */
static int have_openat2 = -1;

static int close_keep_errno(int fd)
{
	int e = errno;

	close(fd);
	errno = e;
	return -1;
}

/* Whether any component of rel[0, len) is "..". */
static bool has_dotdot(const char *rel, size_t len)
{
	for (size_t i = 0; i < len;) {
		size_t j = i;
		while (j < len && rel[j] != '/')
			j++;
		if (j - i == 2 && rel[i] == '.' && rel[i + 1] == '.')
			return true;
		i = j + 1;
	}
	return false;
}

/* The mode for a folder made below parent: that of its mirror (the same
 * component below like, a folder; -1 for none) else the parent's own;
 * permission bits only, never setuid. */
static mode_t mode_like(int parent, int like, const char *comp)
{
	struct stat st;
	int fd = like >= 0 ? openat(like, comp, DIR_FLAGS) : -1;
	bool ok = fd >= 0 && fstat(fd, &st) == 0;

	if (fd >= 0)
		close(fd);
	if (!ok && fstat(parent, &st) != 0)
		return 0750;
	return st.st_mode & 07777 & ~(mode_t)S_ISUID;
}

/* One component below fd, a folder; a symlink there is ELOOP, whatever
 * the open said (O_DIRECTORY answers ENOTDIR first). A folder made here
 * gets its mode with fchmod: mkdirat's is masked by the umask (the
 * service's is 0077), which would leave it unreadable to all others. */
static int open_component(int fd, const char *comp, bool create, int like)
{
	int next = openat(fd, comp, DIR_FLAGS);
	struct stat st;

	if (next < 0 && errno == ENOENT && create) {
		mode_t mode = like >= -1 ? mode_like(fd, like, comp) : 0750;
		bool made = mkdirat(fd, comp, 0700) == 0;

		if (!made && errno != EEXIST)
			return -1;
		next = openat(fd, comp, DIR_FLAGS);
		if (next >= 0 && made && like >= -1 && fchmod(next, mode) != 0)
			return close_keep_errno(next);
	}
	if (next < 0 && errno == ENOTDIR && fstatat(fd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISLNK(st.st_mode))
		errno = ELOOP;
	return next;
}

/* Walks rel[0, len) from fd one component at a time; takes fd over. like:
 * the folder whose tree made folders mirror (-1: none, take the parent's
 * mode; -2: mode 0750 as masked by the umask). */
static int walk(int fd, const char *rel, size_t len, bool create, int like)
{
	char comp[NAME_MAX + 1];

	for (size_t i = 0; i < len;) {
		size_t j = i;
		while (j < len && rel[j] != '/')
			j++;
		if (j - i > NAME_MAX) {
			errno = ENAMETOOLONG;
			if (like >= 0)
				close(like);
			return close_keep_errno(fd);
		}
		memcpy(comp, rel + i, j - i);
		comp[j - i] = '\0';
		i = j + 1;
		if (!comp[0] || strcmp(comp, ".") == 0)
			continue;
		int next = open_component(fd, comp, create, like);
		close_keep_errno(fd);
		if (like >= 0) { /* the mirror follows along while it can */
			int l = openat(like, comp, DIR_FLAGS);
			close_keep_errno(like);
			like = l >= 0 ? l : -1;
		}
		if (next < 0) {
			if (like >= 0)
				close_keep_errno(like);
			return -1;
		}
		fd = next;
	}
	if (like >= 0)
		close_keep_errno(like);
	return fd;
}

/* rel[0, len) below fd in one call; -2 when openat2 cannot be used here. */
static int open_resolved(int fd, const char *rel, size_t len)
{
	struct open_how how = {
	    .flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
	    .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	char path[PATH_MAX];
	long r;

	if (have_openat2 == 0 || len >= sizeof(path))
		return -2;
	memcpy(path, rel, len);
	path[len] = '\0';
	for (int tries = 0; tries < 3; tries++) {
		r = syscall(SYS_openat2, fd, path, &how, sizeof(how));
		if (r >= 0 || errno != EAGAIN) /* EAGAIN: a rename raced the lookup */
			break;
	}
	if (r < 0 && (errno == ENOSYS || errno == EPERM || errno == E2BIG ||
		      (errno == EINVAL && have_openat2 < 0))) {
		have_openat2 = 0;
		return -2;
	}
	if (r < 0 && errno == EAGAIN)
		return -2;
	have_openat2 = 1;
	return (int)r;
}

/* mkdir -p of a root: its path is trusted as configured, symlinks too. */
static int make_root(const char *root)
{
	char *path = strdup(root);
	int rc = 0;

	if (!path)
		return -1;
	for (char *p = strchr(path + 1, '/');; p = strchr(p + 1, '/')) {
		if (p)
			*p = '\0';
		if (mkdir(path, 0750) != 0 && errno != EEXIST)
			rc = -1;
		if (!p || rc)
			break;
		*p = '/';
	}
	free(path);
	return rc;
}

static int open_dir(const char *root, const char *rel, size_t len, bool create, const char *like)
{
	struct stat st;
	int fd, r, like_fd = -2;

	if (has_dotdot(rel, len)) {
		errno = EINVAL;
		return -1;
	}
	fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && create && make_root(root) == 0) {
		fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		/* The root made now mirrors like itself, as the folders below. */
		if (fd >= 0 && like && stat(like, &st) == 0 &&
		    fchmod(fd, st.st_mode & 07777 & ~(mode_t)S_ISUID) != 0)
			return close_keep_errno(fd);
	}
	if (fd < 0)
		return -1;
	while (len && rel[0] == '/') {
		rel++;
		len--;
	}
	if (!len)
		return fd;
	r = open_resolved(fd, rel, len);
	if (r >= 0 || (r == -1 && !(create && errno == ENOENT))) {
		close_keep_errno(fd);
		return r;
	}
	if (create && like) /* a mirror that cannot be opened: the parents' modes */
		like_fd = open(like, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return walk(fd, rel, len, create, like_fd);
}

int hs_beneath_parent(const char *root, const char *rel, const char **ret_name)
{
	const char *slash = strrchr(rel, '/');
	const char *name = slash ? slash + 1 : rel;

	if (!name[0] || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
		errno = EINVAL;
		return -1;
	}
	*ret_name = name;
	return open_dir(root, rel, slash ? (size_t)(slash - rel) : 0, false, NULL);
}

int hs_beneath_dir(const char *root, const char *rel_dir, bool create)
{
	return open_dir(root, rel_dir, strlen(rel_dir), create, NULL);
}

int hs_beneath_dir_like(const char *root, const char *rel_dir, const char *like)
{
	return open_dir(root, rel_dir, strlen(rel_dir), true, like);
}

int hs_beneath_open_file(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	int flags;

	/* Reads must wait for the data like any other read. */
	if (fd >= 0 && (flags = fcntl(fd, F_GETFL)) >= 0)
		fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
	return fd;
}

int hs_writer_check(int fd)
{
	static bool sigio_ignored;

	/* A lease broken while held (a writer opening the file in the short
	 * moment it is held) sends SIGIO, whose default ends the process. */
	if (!sigio_ignored && signal(SIGIO, SIG_IGN) != SIG_ERR)
		sigio_ignored = true;
	if (fcntl(fd, F_SETLEASE, F_RDLCK) == 0) {
		fcntl(fd, F_SETLEASE, F_UNLCK);
		return 0;
	}
	return errno == EAGAIN ? 1 : -1;
}

bool hs_writer_unknown_first(void)
{
	static bool said;
	bool first = !said;

	said = true;
	return first;
}

const char *hs_beneath_split(const char *watch_root, const char *path, const char **ret_root)
{
	size_t len = watch_root ? strlen(watch_root) : 0;

	if (path[0] != '/')
		return NULL;
	while (len > 1 && watch_root[len - 1] == '/')
		len--;
	if (len > 1 && strncmp(path, watch_root, len) == 0 && path[len] == '/') {
		*ret_root = watch_root;
		return path + len + 1;
	}
	*ret_root = "/";
	return path + 1;
}
