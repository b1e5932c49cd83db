/*
 * after: delete or move an uploaded file, carefully.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/cause.h"
#include "agent/after.h"

#define MAX_NUMBER 9999 /* "scan.9999.pdf" and then we give up */

static bool same_file(const struct stat *st, int64_t size, int64_t mtime_ns, int64_t inode)
{
	return S_ISREG(st->st_mode) && st->st_size == size && (int64_t)st->st_ino == inode &&
	       (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec == mtime_ns;
}

/* mkdir -p of path's parent folders. */
static int make_parents(char *path)
{
	for (char *p = strchr(path + 1, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		int rc = mkdir(path, 0750);
		*p = '/';
		if (rc != 0 && errno != EEXIST)
			return -1;
	}
	return 0;
}

/* The n-th candidate name: "dir/scan.pdf", "dir/scan.1.pdf", ... A dot
 * that starts the name is not an extension. */
static int candidate(char *buf, size_t len, const char *dest, unsigned n)
{
	const char *slash = strrchr(dest, '/'), *dot = strrchr(dest, '.');
	int w;

	if (n == 0)
		return snprintf(buf, len, "%s", dest) < (int)len ? 0 : -1;
	if (!dot || dot <= slash + 1)
		w = snprintf(buf, len, "%s.%u", dest, n);
	else
		w = snprintf(buf, len, "%.*s.%u%s", (int)(dot - dest), dest, n, dot);
	return w >= 0 && (size_t)w < len ? 0 : -1;
}

/* copy_file_range where the kernel can between these file systems, else
 * read and write through a buffer. */
static int copy_all(int in, int out, off_t size)
{
	char buf[65536];
	bool plain = false;

	for (off_t left = size; left > 0;) {
		ssize_t n = -1;
		if (!plain) {
			n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
			if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
				      errno == EOPNOTSUPP)) {
				plain = true;
				continue;
			}
		} else if ((n = read(in, buf, sizeof(buf))) > 0) {
			for (ssize_t done = 0, w; done < n; done += w)
				if ((w = write(out, buf + done, (size_t)(n - done))) < 0) {
					if (errno == EINTR) {
						w = 0;
						continue;
					}
					return -1;
				}
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO; /* the file shrank under us */
			return -1;
		}
		left -= n;
	}
	return 0;
}

/* Copies src into a hidden temporary beside dest, synced; returns its fd
 * and name. The copy ends up linked in place under a free name by
 * link_free_name(). */
static int copy_to_temp(int in, const char *dest, char *tmp, size_t len)
{
	const char *slash = strrchr(dest, '/');
	struct stat st;
	int out;

	if (snprintf(tmp, len, "%.*s/.healsync-move-XXXXXX", (int)(slash - dest), dest) >=
	    (int)len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((out = mkostemp(tmp, O_CLOEXEC)) < 0)
		return -1;
	if (fstat(in, &st) != 0)
		goto fail;
	if (copy_all(in, out, st.st_size) != 0)
		goto fail;
	if (fchmod(out, st.st_mode & 07777) != 0 || fsync(out) != 0)
		goto fail;
	return out;
fail:
	unlink(tmp);
	close(out);
	return -1;
}

/* Renames (or links, for a copy) from into the first free candidate name.
 * Returns 0 with the name in buf. */
static int place(const char *from, const char *dest, bool link_it, char *buf, size_t len)
{
	for (unsigned n = 0; n <= MAX_NUMBER; n++) {
		if (candidate(buf, len, dest, n) != 0) {
			errno = ENAMETOOLONG;
			return -1;
		}
		int rc = link_it ? link(from, buf)
				 : renameat2(AT_FDCWD, from, AT_FDCWD, buf, RENAME_NOREPLACE);
		if (rc == 0)
			return 0;
		if (errno != EEXIST)
			return -1;
	}
	errno = EEXIST;
	return -1;
}

static int move_across(const char *path, const char *dest, int64_t size, int64_t mtime_ns,
		       int64_t inode, char *placed, size_t len, char **cause)
{
	char tmp[PATH_MAX];
	struct stat st;
	int in, out = -1, rc = HS_AFTER_FAILED;

	if ((in = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		hs_cause(cause, "%s: %s", path, strerror(errno));
		return errno == ENOENT ? HS_AFTER_NOTHING : HS_AFTER_FAILED;
	}
	if ((out = copy_to_temp(in, dest, tmp, sizeof(tmp))) < 0) {
		hs_cause(cause, "copying to %s: %s", dest, strerror(errno));
		goto out;
	}
	/* Changed while copied: leave it, it will be sent again. */
	if (fstat(in, &st) != 0 || !same_file(&st, size, mtime_ns, inode)) {
		unlink(tmp);
		rc = HS_AFTER_NOTHING;
		goto out;
	}
	if (place(tmp, dest, true, placed, len) != 0) {
		hs_cause(cause, "%s: %s", dest, strerror(errno));
		unlink(tmp);
		goto out;
	}
	unlink(tmp);
	if (unlink(path) != 0) {
		hs_cause(cause, "copied to %s, but cannot remove %s: %s", placed, path,
			 strerror(errno));
		goto out;
	}
	rc = HS_AFTER_DONE;
out:
	if (out >= 0)
		close(out);
	close(in);
	return rc;
}

int hs_after_upload(const struct hs_watch *w, const char *path, const char *rel, int64_t size,
		    int64_t mtime_ns, int64_t inode, char **ret_dest, char **cause)
{
	char dest[PATH_MAX], placed[PATH_MAX];
	struct stat st;

	if (ret_dest)
		*ret_dest = NULL;
	if (w->after_upload == HS_AFTER_KEEP)
		return HS_AFTER_NOTHING;
	if (lstat(path, &st) != 0 || !same_file(&st, size, mtime_ns, inode))
		return HS_AFTER_NOTHING;
	if (w->after_upload == HS_AFTER_DELETE) {
		if (unlink(path) != 0 && errno != ENOENT) {
			hs_cause(cause, "cannot delete %s: %s", path, strerror(errno));
			return HS_AFTER_FAILED;
		}
		return HS_AFTER_DONE;
	}

	if (snprintf(dest, sizeof(dest), "%s/%s", w->move_dir, rel) >= (int)sizeof(dest)) {
		hs_cause(cause, "%s/%s: name too long", w->move_dir, rel);
		return HS_AFTER_FAILED;
	}
	if (make_parents(dest) != 0) {
		hs_cause(cause, "cannot create the folders of %s: %s", dest, strerror(errno));
		return HS_AFTER_FAILED;
	}
	if (place(path, dest, false, placed, sizeof(placed)) != 0) {
		if (errno == ENOENT)
			return HS_AFTER_NOTHING;
		if (errno != EXDEV) {
			hs_cause(cause, "cannot move %s to %s: %s", path, dest, strerror(errno));
			return HS_AFTER_FAILED;
		}
		int rc =
		    move_across(path, dest, size, mtime_ns, inode, placed, sizeof(placed), cause);
		if (rc != HS_AFTER_DONE)
			return rc;
	}
	if (ret_dest)
		*ret_dest = strdup(placed); /* NULL when out of memory: still done */
	return HS_AFTER_DONE;
}
