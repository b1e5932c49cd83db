/*
 * after: delete or move an uploaded file, carefully (see after.h).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/after.h"
#include "agent/beneath.h"
#include "agent/cause.h"
#include "agent/refusal.h"

#define MAX_NUMBER  9999	  /* "scan.9999.pdf" and then we give up */
#define SLICE	    (1024 * 1024) /* bytes copied per turn of the loop */
#define DEL_PREFIX  HS_AFTER_PRIVATE_PREFIX
#define MOVE_PREFIX ".healsync-move-"
#define TAKEN	    3 /* take(): the checked file is under the private name */

struct move { /* a copy across file systems under way */
	struct hs_after *a;
	struct move *next;
	char *path;	/* the original, for messages */
	char *dest_dir; /* move_dir and the relative folder, for messages */
	char *src_top;	/* the watch folder and move_dir, for refusals */
	char *dst_top;
	char *name; /* the original's last component */
	int src_dir, src, dst_dir, tmp;
	char tmp_name[NAME_MAX + 1]; /* "" once renamed into place */
	struct stat st;		     /* the original, checked */
	int64_t pos;		     /* bytes copied, or compared with like */
	int like;		     /* a file in place that may be a copy, or -1 */
	unsigned like_n;	     /* which candidate name like has */
	bool plain;		     /* read and write: copy_file_range cannot here */
	int err;		     /* why the temporary could not be made */
};

struct seen_dir { /* a destination folder cleaned of old temporaries */
	dev_t dev;
	ino_t ino;
	struct seen_dir *next;
};

struct hs_after {
	sd_event *ev;
	sd_event_source *copy_src;
	hs_after_done_fn done;
	void *arg;
	struct move *moves;
	unsigned n_moves;
	struct seen_dir *cleaned;
	unsigned char *buf;
};

static bool same_file(const struct stat *st, int64_t size, int64_t mtime_ns, int64_t inode)
{
	return S_ISREG(st->st_mode) && st->st_size == size && (int64_t)st->st_ino == inode &&
	       (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec == mtime_ns;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Notes where the system refused (see after.h): the folder of the file
 * path for a change in the source folder, dir itself for the destination. */
static void note_refusal(struct hs_after_refusal *r, int err, bool dest, const char *path_or_dir,
			 const char *top, long owner)
{
	const char *slash;
	int len;

	if (!r || !hs_refusal_errno(err))
		return;
	r->err = err;
	r->dest = dest;
	r->owner = owner;
	slash = dest ? NULL : strrchr(path_or_dir, '/');
	len = slash ? (int)(slash - path_or_dir) : (int)strlen(path_or_dir);
	snprintf(r->dir, sizeof(r->dir), "%.*s", slash == path_or_dir ? 1 : len, path_or_dir);
	snprintf(r->top, sizeof(r->top), "%s", top);
}

/* The n-th candidate for a file name: "scan.pdf", "scan.1.pdf", ... A dot
 * that starts the name is not an extension. */
static int candidate(char *buf, size_t len, const char *name, unsigned n)
{
	const char *dot = strrchr(name, '.');
	int w;

	if (n == 0)
		w = snprintf(buf, len, "%s", name);
	else if (!dot || dot == name)
		w = snprintf(buf, len, "%s.%u", name, n);
	else
		w = snprintf(buf, len, "%.*s.%u%s", (int)(dot - name), name, n, dot);
	return w >= 0 && (size_t)w < len ? 0 : -1;
}

static void temp_name(char *buf, size_t len, const char *prefix)
{
	uint64_t r = 0;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
		r ^= (uint64_t)getpid() << 32 ^ (uint64_t)(uintptr_t)buf ^ (uint64_t)rand();
	snprintf(buf, len, "%s%016" PRIx64, prefix, r);
}

/* rename that never replaces: renameat2(RENAME_NOREPLACE), or where the
 * file system lacks it (NFS, some FUSE), a hard link and an unlink, which
 * fail the same way on a taken name. */
static int rename_new(int from_dir, const char *from, int to_dir, const char *to)
{
	if (renameat2(from_dir, from, to_dir, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	if (linkat(from_dir, from, to_dir, to, 0) != 0)
		return -1;
	if (unlinkat(from_dir, from, 0) != 0) {
		int e = errno;
		unlinkat(to_dir, to, 0);
		errno = e;
		return -1;
	}
	return 0;
}

/* Renames from (in from_dir) to the first free candidate for name in
 * to_dir, never replacing anything; the name used lands in placed. */
static int place(int from_dir, const char *from, int to_dir, const char *name, char *placed,
		 size_t len)
{
	for (unsigned n = 0; n <= MAX_NUMBER; n++) {
		if (candidate(placed, len, name, n) != 0) {
			errno = ENAMETOOLONG;
			return -1;
		}
		if (rename_new(from_dir, from, to_dir, placed) == 0)
			return 0;
		if (errno != EEXIST)
			return -1;
	}
	errno = EEXIST;
	return -1;
}

/* Gives a file taken by take() its name back, or the first free numbered
 * one when a new file has the name now. */
static int put_back(int dir, const char *tmp, const char *name)
{
	char back[NAME_MAX + 1];

	return place(dir, tmp, dir, name, back, sizeof(back));
}

/* Takes the checked file (open as fd, named name in dir) away from its
 * name: renamed to a private name (tmp), then checked to be the same inode,
 * unchanged and not open for writing. Returns TAKEN, or HS_AFTER_NOTHING
 * when it is not that file any more (put back), or HS_AFTER_FAILED. */
static int take(int dir, const char *name, int fd, int64_t size, int64_t mtime_ns, int64_t inode,
		char *tmp, size_t len, const char *path, const char *top,
		struct hs_after_refusal *ref, char **cause)
{
	struct stat now = {0}, st;

	if (hs_writer_check(fd) == 1) /* plainly in use: the name is not touched */
		return HS_AFTER_NOTHING;
	for (int tries = 0;; tries++) {
		temp_name(tmp, len, DEL_PREFIX);
		if (rename_new(dir, name, dir, tmp) == 0)
			break;
		if (errno == ENOENT)
			return HS_AFTER_NOTHING;
		if (errno != EEXIST || tries == 100) {
			int e = errno;
			struct stat own;
			hs_cause(cause, "cannot rename %s: %s", path, strerror(e));
			note_refusal(ref, e, false, path, top,
				     fstat(fd, &own) == 0 ? (long)own.st_uid : -1);
			return HS_AFTER_FAILED;
		}
	}
	/* The name may have got another file since the check: only the very
	 * inode that was checked, as it was stored and with no writer, goes. */
	if (fstatat(dir, tmp, &now, AT_SYMLINK_NOFOLLOW) == 0 && fstat(fd, &st) == 0 &&
	    now.st_dev == st.st_dev && now.st_ino == st.st_ino &&
	    same_file(&st, size, mtime_ns, inode) && hs_writer_check(fd) != 1)
		return TAKEN;
	if (put_back(dir, tmp, name) != 0) {
		hs_cause(cause, "%s changed after the upload and cannot be put back from %s: %s",
			 path, tmp, strerror(errno));
		return HS_AFTER_FAILED;
	}
	return HS_AFTER_NOTHING;
}

/* Why a file could not be opened below its folder. */
static int not_opened(const char *path, char **cause)
{
	if (errno == ENOENT || errno == ENOTDIR)
		return HS_AFTER_NOTHING;
	if (errno == ELOOP)
		hs_cause(cause,
			 "%s: a symbolic link is on its path now, which is not followed; "
			 "left alone",
			 path);
	else
		hs_cause(cause, "%s: %s", path, strerror(errno));
	return HS_AFTER_FAILED;
}

/* ---- moves across file systems ----------------------------------------- */

static void move_end_refused(struct move *m, int rc, const char *dest, const char *cause,
			     const struct hs_after_refusal *ref)
{
	struct hs_after *a = m->a;

	for (struct move **at = &a->moves; *at; at = &(*at)->next)
		if (*at == m) {
			*at = m->next;
			a->n_moves--;
			break;
		}
	if (m->tmp_name[0] && m->dst_dir >= 0)
		unlinkat(m->dst_dir, m->tmp_name, 0);
	close_fd(&m->tmp);
	close_fd(&m->like);
	close_fd(&m->src);
	close_fd(&m->src_dir);
	close_fd(&m->dst_dir);
	if (a->done && rc != HS_AFTER_PENDING)
		a->done(m->path, rc, dest, cause, ref && ref->err ? ref : NULL, a->arg);
	free(m->path);
	free(m->dest_dir);
	free(m->src_top);
	free(m->dst_top);
	free(m->name);
	free(m);
	if (!a->moves)
		sd_event_source_set_enabled(a->copy_src, SD_EVENT_OFF);
}

static void move_end(struct move *m, int rc, const char *dest, const char *cause)
{
	move_end_refused(m, rc, dest, cause, NULL);
}

/* The end of a move that failed with errno err in the destination folder. */
static void move_refused(struct move *m, int err, const char *cause)
{
	struct hs_after_refusal ref = {0};

	note_refusal(&ref, err, true, m->dest_dir, m->dst_top, (long)m->st.st_uid);
	move_end_refused(m, HS_AFTER_FAILED, NULL, cause, &ref);
}

/* Removes the original once its copy is in place as placed. */
static void move_finish_original(struct move *m, const char *placed)
{
	char tmp[NAME_MAX + 1], *dest = NULL, *cause = NULL;
	struct hs_after_refusal ref = {0};
	int64_t mtime = (int64_t)m->st.st_mtim.tv_sec * 1000000000 + m->st.st_mtim.tv_nsec;
	int rc = take(m->src_dir, m->name, m->src, m->st.st_size, mtime, (int64_t)m->st.st_ino, tmp,
		      sizeof(tmp), m->path, m->src_top, &ref, &cause);

	if (asprintf(&dest, "%s/%s", m->dest_dir, placed) < 0)
		dest = NULL;
	if (rc == TAKEN && unlinkat(m->src_dir, tmp, 0) != 0) {
		int e = errno;
		hs_cause(&cause, "copied to %s, but cannot remove %s: %s",
			 dest ? dest : m->dest_dir, m->path, strerror(e));
		note_refusal(&ref, e, false, m->path, m->src_top, (long)m->st.st_uid);
		put_back(m->src_dir, tmp, m->name);
		rc = HS_AFTER_FAILED;
	} else if (rc == TAKEN) {
		fsync(m->src_dir);
		rc = HS_AFTER_DONE;
	} else if (rc == HS_AFTER_NOTHING) {
		hs_cause(&cause,
			 "copied to %s, but %s changed or is open for writing; left in place",
			 dest ? dest : m->dest_dir, m->path);
		rc = HS_AFTER_FAILED;
	}
	move_end_refused(m, rc, dest, cause, &ref);
	free(dest);
	free(cause);
}

/* The whole file is in the temporary: sync it, check the original did
 * not change meanwhile, rename the copy into place, sync the folder, and
 * only then remove the original. */
static void move_copied(struct move *m)
{
	struct timespec times[2] = {m->st.st_atim, m->st.st_mtim};
	int64_t mtime = (int64_t)m->st.st_mtim.tv_sec * 1000000000 + m->st.st_mtim.tv_nsec;
	char placed[NAME_MAX + 1], *cause = NULL;
	struct stat now;

	if (fchmod(m->tmp, m->st.st_mode & 0777) != 0 || futimens(m->tmp, times) != 0 ||
	    fsync(m->tmp) != 0) {
		hs_cause(&cause, "copying %s to %s: %s", m->path, m->dest_dir, strerror(errno));
		move_end(m, HS_AFTER_FAILED, NULL, cause);
		free(cause);
		return;
	}
	if (fstat(m->src, &now) != 0 ||
	    !same_file(&now, m->st.st_size, mtime, (int64_t)m->st.st_ino)) {
		move_end(m, HS_AFTER_NOTHING, NULL, NULL); /* it will be sent again */
		return;
	}
	if (place(m->dst_dir, m->tmp_name, m->dst_dir, m->name, placed, sizeof(placed)) != 0) {
		int e = errno;
		hs_cause(&cause, "%s/%s: %s", m->dest_dir, m->name, strerror(e));
		move_refused(m, e, cause);
		free(cause);
		return;
	}
	m->tmp_name[0] = '\0';
	if (fsync(m->dst_dir) != 0) {
		hs_cause(&cause,
			 "copied to %s/%s, but syncing the folder failed: %s; the original "
			 "stays",
			 m->dest_dir, placed, strerror(errno));
		move_end(m, HS_AFTER_FAILED, NULL, cause);
		free(cause);
		return;
	}
	move_finish_original(m, placed);
}

static ssize_t pwrite_all(int fd, const unsigned char *buf, size_t len, off_t at)
{
	for (size_t done = 0; done < len;) {
		ssize_t w = pwrite(fd, buf + done, len - done, at + (off_t)done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		done += (size_t)w;
	}
	return (ssize_t)len;
}

/* Reads len bytes at `at`, or fewer only at the end of the file. */
static ssize_t pread_all(int fd, unsigned char *buf, size_t len, off_t at)
{
	size_t done = 0;

	while (done < len) {
		ssize_t r = pread(fd, buf + done, len - done, at + (off_t)done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

/*
 * A copy an earlier run put in place before it could remove the original
 * is one of the candidate names holding the original's very bytes. Size
 * and mtime only pick the files worth reading: an older version often has
 * both the same (cp -p, rsync -t, whole-second FAT or SMB times), and
 * taking it for the copy would remove the only copy of the new one.
 *
 * Opens the next candidate from m->like_n on with the original's size and
 * mtime as m->like, to be compared slice by slice (compare_slice); when
 * there is none, starts the copy: a temporary in the destination folder.
 */
static int next_candidate(struct move *m, char **cause)
{
	char name[NAME_MAX + 1];
	struct stat st;

	close_fd(&m->like);
	m->pos = 0;
	for (; m->like_n <= MAX_NUMBER; m->like_n++) {
		if (candidate(name, sizeof(name), m->name, m->like_n) != 0 ||
		    fstatat(m->dst_dir, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			break; /* place() takes the first free name: none after it */
		if (!S_ISREG(st.st_mode) || st.st_size != m->st.st_size ||
		    st.st_mtim.tv_sec != m->st.st_mtim.tv_sec ||
		    st.st_mtim.tv_nsec != m->st.st_mtim.tv_nsec)
			continue;
		m->like = openat(m->dst_dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (m->like >= 0 && fstat(m->like, &st) == 0 && S_ISREG(st.st_mode) &&
		    st.st_size == m->st.st_size)
			return 0;
		close_fd(&m->like);
	}
	for (int tries = 0; m->tmp < 0 && tries < 100; tries++) {
		temp_name(m->tmp_name, sizeof(m->tmp_name), MOVE_PREFIX);
		m->tmp = openat(m->dst_dir, m->tmp_name,
				O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (m->tmp < 0 && errno != EEXIST)
			break;
	}
	if (m->tmp < 0) {
		m->err = errno;
		m->tmp_name[0] = '\0';
		hs_cause(cause, "cannot create a temporary file in %s: %s", m->dest_dir,
			 strerror(m->err));
		return -1;
	}
	return 0;
}

/* One slice of comparing the original with m->like: at the end, equal and
 * still under its name, it is the copy and the original goes; different,
 * the next candidate is tried (or the copy starts). */
static void compare_slice(struct hs_after *a, struct move *m)
{
	size_t half = SLICE / 2, want;
	int64_t left = m->st.st_size - m->pos;
	char placed[NAME_MAX + 1], *cause = NULL;
	struct stat now, st;
	ssize_t n, k;

	if (left > 0) {
		want = left < (int64_t)half ? (size_t)left : half;
		if ((n = pread_all(m->src, a->buf, want, m->pos)) < 0) {
			hs_cause(&cause, "reading %s: %s", m->path, strerror(errno));
			move_end(m, HS_AFTER_FAILED, NULL, cause);
			free(cause);
			return;
		}
		if ((size_t)n < want) { /* shorter than when checked: it is sent again */
			move_end(m, HS_AFTER_NOTHING, NULL, NULL);
			return;
		}
		k = pread_all(m->like, a->buf + half, want, m->pos);
		if (k == n && memcmp(a->buf, a->buf + half, want) == 0) {
			m->pos += n;
			return;
		}
	} else if (candidate(placed, sizeof(placed), m->name, m->like_n) == 0 &&
		   fstat(m->like, &now) == 0 &&
		   fstatat(m->dst_dir, placed, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		   st.st_dev == now.st_dev && st.st_ino == now.st_ino &&
		   now.st_size == m->st.st_size) {
		close_fd(&m->like);
		move_finish_original(m, placed);
		return;
	}
	m->like_n++; /* not the copy (or unreadable): the next one */
	if (next_candidate(m, &cause) != 0) {
		move_refused(m, m->err, cause);
		free(cause);
	}
}

/* One slice of the copy whose turn it is. */
static void copy_slice(struct hs_after *a)
{
	struct move *m = a->moves, **tail;
	int64_t left;
	ssize_t n;

	if (!m)
		return;
	if (m->next) { /* to the end of the line */
		a->moves = m->next;
		for (tail = &a->moves; *tail; tail = &(*tail)->next)
			;
		*tail = m;
		m->next = NULL;
	}
	if (m->like >= 0) {
		compare_slice(a, m);
		return;
	}
	left = m->st.st_size - m->pos;
	if (left == 0) {
		move_copied(m);
		return;
	}
	size_t want = left < SLICE ? (size_t)left : SLICE;
	if (!m->plain) {
		off_t in = m->pos, out = m->pos;
		n = copy_file_range(m->src, &in, m->tmp, &out, want, 0);
		if (n < 0 &&
		    (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
			m->plain = true;
			return;
		}
	} else if ((n = pread(m->src, a->buf, want, m->pos)) > 0) {
		n = pwrite_all(m->tmp, a->buf, (size_t)n, m->pos);
	}
	if (n < 0 && errno == EINTR)
		return;
	if (n == 0) { /* shorter than when checked: it changed, it is sent again */
		move_end(m, HS_AFTER_NOTHING, NULL, NULL);
		return;
	}
	if (n < 0) {
		char *cause = NULL;
		hs_cause(&cause, "copying %s to %s: %s", m->path, m->dest_dir, strerror(errno));
		move_end(m, HS_AFTER_FAILED, NULL, cause);
		free(cause);
		return;
	}
	/* Start writing back now, so the final fsync has little left. */
	sync_file_range(m->tmp, m->pos, n, SYNC_FILE_RANGE_WRITE);
	m->pos += n;
}

/* The next slice at the next turn of the loop. A timer due at once, not a
 * defer source: a defer source left on stays ahead of every other source
 * of its priority (sd-event orders pending sources by when they became
 * pending), so signals and sockets would wait for the whole copy. */
static void copy_soon(struct hs_after *a)
{
	uint64_t now;

	if (sd_event_now(a->ev, CLOCK_MONOTONIC, &now) < 0 ||
	    sd_event_source_set_time(a->copy_src, now) < 0 ||
	    sd_event_source_set_enabled(a->copy_src, SD_EVENT_ONESHOT) < 0)
		sd_event_source_set_enabled(a->copy_src, SD_EVENT_ON); /* try anyway */
}

/* One slice per turn of the loop, the copies taking turns. */
static int on_copy(sd_event_source *s, uint64_t usec, void *arg)
{
	struct hs_after *a = arg;

	(void)s;
	(void)usec;
	copy_slice(a);
	if (a->moves)
		copy_soon(a);
	return 0;
}

/* Removes the temporaries an earlier run left in a destination folder, the
 * first time this run moves something there. */
static void clean_once(struct hs_after *a, int dir)
{
	struct seen_dir *s;
	struct stat st;
	struct dirent *de;
	DIR *d;
	int fd;

	if (fstat(dir, &st) != 0)
		return;
	for (s = a->cleaned; s; s = s->next)
		if (s->dev == st.st_dev && s->ino == st.st_ino)
			return;
	if (!(s = calloc(1, sizeof(*s))))
		return;
	*s = (struct seen_dir){st.st_dev, st.st_ino, a->cleaned};
	a->cleaned = s;
	if ((fd = openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return;
	if (!(d = fdopendir(fd))) {
		close(fd);
		return;
	}
	while ((de = readdir(d))) {
		bool ours = false;
		if (strncmp(de->d_name, MOVE_PREFIX, strlen(MOVE_PREFIX)) != 0)
			continue;
		for (struct move *m = a->moves; m; m = m->next)
			ours |= strcmp(m->tmp_name, de->d_name) == 0;
		if (!ours && fstatat(dir, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode))
			unlinkat(dir, de->d_name, 0);
	}
	closedir(d);
}

/* Starts a copy across file systems; takes the descriptors over. */
static int move_start(struct hs_after *a, const char *path, const char *name, int src_dir, int src,
		      const struct stat *st, int dst_dir, const char *dest_dir,
		      const struct hs_watch *w, struct hs_after_refusal *ref, char **cause)
{
	struct move *m;

	for (m = a->moves; m; m = m->next)
		if (m->st.st_dev == st->st_dev && m->st.st_ino == st->st_ino)
			break;
	if (m || !(m = calloc(1, sizeof(*m)))) { /* already under way, or no memory */
		close(src);
		close(src_dir);
		close(dst_dir);
		if (!m)
			hs_cause(cause, "%s: out of memory", path);
		return m ? HS_AFTER_PENDING : HS_AFTER_FAILED;
	}
	*m = (struct move){.a = a,
			   .src_dir = src_dir,
			   .src = src,
			   .dst_dir = dst_dir,
			   .tmp = -1,
			   .like = -1,
			   .st = *st};
	if (!(m->path = strdup(path)) || !(m->dest_dir = strdup(dest_dir)) ||
	    !(m->name = strdup(name)) || !(m->src_top = strdup(w->path)) ||
	    !(m->dst_top = strdup(w->move_dir))) {
		hs_cause(cause, "%s: out of memory", path);
		goto fail;
	}
	clean_once(a, dst_dir);
	if (next_candidate(m, cause) != 0) {
		note_refusal(ref, m->err, true, dest_dir, w->move_dir, (long)st->st_uid);
		goto fail;
	}
	m->next = a->moves;
	a->moves = m;
	a->n_moves++;
	copy_soon(a);
	return HS_AFTER_PENDING;
fail:
	close(src);
	close(src_dir);
	close(dst_dir);
	close_fd(&m->like);
	close_fd(&m->tmp);
	free(m->path);
	free(m->dest_dir);
	free(m->src_top);
	free(m->dst_top);
	free(m->name);
	free(m);
	return HS_AFTER_FAILED;
}

/* ---- the interface ------------------------------------------------------- */

struct hs_after *hs_after_new(sd_event *ev, hs_after_done_fn done, void *arg)
{
	struct hs_after *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->ev = ev;
	a->done = done;
	a->arg = arg;
	if (!(a->buf = malloc(SLICE)) ||
	    sd_event_add_time(ev, &a->copy_src, CLOCK_MONOTONIC, 0, 1, on_copy, a) < 0 ||
	    sd_event_source_set_enabled(a->copy_src, SD_EVENT_OFF) < 0)
		return hs_after_free(a);
	return a;
}

struct hs_after *hs_after_free(struct hs_after *a)
{
	if (!a)
		return NULL;
	a->done = NULL;
	while (a->moves)
		move_end(a->moves, HS_AFTER_NOTHING, NULL, NULL);
	while (a->cleaned) {
		struct seen_dir *s = a->cleaned;
		a->cleaned = s->next;
		free(s);
	}
	sd_event_source_disable_unref(a->copy_src);
	free(a->buf);
	free(a);
	return NULL;
}

unsigned hs_after_pending(const struct hs_after *a)
{
	return a ? a->n_moves : 0;
}

int hs_after_restore(const struct hs_watch *w, const char *rel, const char *rel_orig, int64_t size,
		     int64_t mtime_ns, int64_t inode, char **cause)
{
	const char *name, *orig = strrchr(rel_orig, '/');
	size_t dir_len = orig ? (size_t)(orig - rel_orig) : 0;
	struct stat st;
	int dir, fd = -1, rc = HS_AFTER_NOTHING;

	orig = orig ? orig + 1 : rel_orig;
	/* Only back to the folder it is in, under a name of its own. */
	if (strncmp(rel, rel_orig, dir_len) != 0 || (dir_len && rel[dir_len] != '/') ||
	    strchr(rel + dir_len + (dir_len ? 1 : 0), '/') || !orig[0] ||
	    strncmp(orig, DEL_PREFIX, strlen(DEL_PREFIX)) == 0)
		return HS_AFTER_NOTHING;
	if ((dir = hs_beneath_parent(w->path, rel, &name)) < 0)
		return not_opened(rel, cause);
	if ((fd = hs_beneath_open_file(dir, name)) < 0) {
		rc = not_opened(rel, cause);
		goto out;
	}
	if (fstat(fd, &st) != 0 || !same_file(&st, size, mtime_ns, inode) ||
	    hs_writer_check(fd) == 1)
		goto out;
	if (rename_new(dir, name, dir, orig) == 0) {
		fsync(dir);
		rc = HS_AFTER_DONE;
	} else if (errno != EEXIST) {
		hs_cause(cause, "cannot rename %s/%s back to %s: %s", w->path, rel, orig,
			 strerror(errno));
		rc = HS_AFTER_FAILED;
	}
out:
	close_fd(&fd);
	close_fd(&dir);
	return rc;
}

int hs_after_upload(struct hs_after *a, const struct hs_watch *w, const char *path, const char *rel,
		    int64_t size, int64_t mtime_ns, int64_t inode, char **ret_dest,
		    struct hs_after_refusal *ref, char **cause)
{
	char tmp[NAME_MAX + 1], placed[NAME_MAX + 1], *rel_dir = NULL, *dest_dir = NULL;
	const char *name;
	struct stat st, dst;
	int src_dir, fd = -1, dst_dir = -1, rc;

	if (ret_dest)
		*ret_dest = NULL;
	if (ref)
		ref->err = 0;
	if (w->after_upload == HS_AFTER_KEEP)
		return HS_AFTER_NOTHING;
	if ((src_dir = hs_beneath_parent(w->path, rel, &name)) < 0)
		return not_opened(path, cause);
	if ((fd = hs_beneath_open_file(src_dir, name)) < 0) {
		rc = not_opened(path, cause);
		goto out;
	}
	rc = HS_AFTER_NOTHING;
	if (fstat(fd, &st) != 0 || !same_file(&st, size, mtime_ns, inode))
		goto out;

	if (w->after_upload == HS_AFTER_DELETE) {
		rc = take(src_dir, name, fd, size, mtime_ns, inode, tmp, sizeof(tmp), path, w->path,
			  ref, cause);
		if (rc == TAKEN && unlinkat(src_dir, tmp, 0) != 0) {
			int e = errno;
			hs_cause(cause, "cannot delete %s: %s", path, strerror(e));
			note_refusal(ref, e, false, path, w->path, (long)st.st_uid);
			put_back(src_dir, tmp, name);
			rc = HS_AFTER_FAILED;
		} else if (rc == TAKEN) {
			rc = HS_AFTER_DONE;
		}
		goto out;
	}

	/* move: the same folders below move_dir, symlinks not followed */
	const char *slash = strrchr(rel, '/');
	if (!(rel_dir = strndup(rel, slash ? (size_t)(slash - rel) : 0)) ||
	    asprintf(&dest_dir, "%s%s%s", w->move_dir, rel_dir[0] ? "/" : "", rel_dir) < 0) {
		dest_dir = NULL;
		hs_cause(cause, "%s: out of memory", path);
		rc = HS_AFTER_FAILED;
		goto out;
	}
	if ((dst_dir = hs_beneath_dir_like(w->move_dir, rel_dir, w->path)) < 0 ||
	    fstat(dst_dir, &dst) != 0) {
		int e = errno;
		hs_cause(cause, "cannot create the folder %s: %s", dest_dir,
			 e == ELOOP ? "a symbolic link is on its path" : strerror(e));
		note_refusal(ref, e, true, dest_dir, w->move_dir, (long)st.st_uid);
		rc = HS_AFTER_FAILED;
		goto out;
	}
	if (dst.st_dev == st.st_dev) {
		rc = take(src_dir, name, fd, size, mtime_ns, inode, tmp, sizeof(tmp), path, w->path,
			  ref, cause);
		if (rc != TAKEN)
			goto out;
		if (place(src_dir, tmp, dst_dir, name, placed, sizeof(placed)) == 0) {
			rc = HS_AFTER_DONE;
			if (ret_dest && asprintf(ret_dest, "%s/%s", dest_dir, placed) < 0)
				*ret_dest = NULL; /* still done */
			goto out;
		}
		int e = errno;
		put_back(src_dir, tmp, name);
		if (e != EXDEV) { /* EXDEV: another mount of the same file system */
			hs_cause(cause, "cannot move %s to %s: %s", path, dest_dir, strerror(e));
			/* The source folder let the file go to a private name, so
			 * it is the destination that refused. */
			note_refusal(ref, e, true, dest_dir, w->move_dir, (long)st.st_uid);
			rc = HS_AFTER_FAILED;
			goto out;
		}
	}
	if (hs_writer_check(fd) == 1) { /* no copy of a file still being written */
		rc = HS_AFTER_NOTHING;
		goto out;
	}
	if (!a) {
		hs_cause(cause, "cannot move %s to %s: another file system", path, dest_dir);
		rc = HS_AFTER_FAILED;
		goto out;
	}
	rc = move_start(a, path, name, src_dir, fd, &st, dst_dir, dest_dir, w, ref, cause);
	src_dir = fd = dst_dir = -1;
out:
	close_fd(&fd);
	close_fd(&src_dir);
	close_fd(&dst_dir);
	free(rel_dir);
	free(dest_dir);
	return rc;
}
