/*
 * watch: inotify folders, scans and the settle timer, on the event loop.
 *
 * Per folder (a root): an inotify instance, and a tree of nodes, one per
 * watched directory, found by watch descriptor. A node knows its path
 * relative to the root; a directory renamed inside the tree keeps its
 * watches and its subtree's paths are rewritten. Scans are a stack of
 * directories still to list, worked through in slices by a timer source.
 *
 * A scan lists first and asks the queue after: the quiet files a listing
 * finds wait in a per-root list ("found", only their facts) and become
 * jobs in batches of BATCH_MAX, one transaction each, one batch per turn
 * of the loop once every folder is listed. READY=1 therefore waits only
 * for the watches and the listings, not for 100,000 inserts. A file found
 * but not yet committed when the process dies is on disk and not in the
 * queue, so the next start-up scan finds it again.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/after.h"
#include "agent/after_run.h"
#include "agent/beneath.h"
#include "agent/clock.h"
#include "agent/filter.h"
#include "agent/log.h"
#include "agent/remote_name.h"
#include "agent/settle.h"
#include "agent/watch.h"
#include "conf/units.h"

#define SLICE_ENTRIES	 2048  /* directory entries per scan slice, ~10 ms */
#define BATCH_MAX	 2048  /* jobs per queue transaction */
#define MISSING_RETRY_MS 10000 /* a vanished folder is looked for this often */
#define QUEUE_RETRY_MS	 30000 /* after the queue refused files (a full disk) */
#define LIMIT_SAID	 20    /* files named as outside the limits between scans */
/* Found files held at most, all roots together (about 64 bytes each):
 * past it, a listing turns one batch into jobs before it goes on, so a
 * tree of millions of files does not hold them all in memory. */
#define FOUND_MAX 131072

#define DIR_MASK                                                                                   \
	(IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_MODIFY | IN_ATTRIB |        \
	 IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK)

struct node {
	int wd;
	char *rel; /* "" for the root itself */
	struct node *parent, *child, *prev, *next;
	struct node *hnext; /* wd hash chain */
	uint64_t gen;	    /* the last full scan that saw it */
};

struct frame { /* a directory still to list */
	char *rel;
	int parent_wd; /* its parent's watch; -1 when none (or the root) */
	struct frame *below;
};

struct found { /* a quiet file a listing found, not yet asked about */
	char *rel;
	int64_t size, mtime_ns, inode;
	bool counted; /* a full scan's: its fate goes in the tally */
};

struct moved { /* a directory moved away, maybe within the tree */
	uint32_t cookie;
	struct node *n;
};

/* Paths named once in the log, per root: up to SAID_MAX by name, then
 * one line for all the others. */
struct said {
	char **rels;
	size_t n; /* SAID_MAX + 1 once the line for the others was said */
};

struct root {
	struct hs_watcher *w;
	const struct hs_watch *conf;
	unsigned id; /* settle entries name their root by it */
	int fd;
	sd_event_source *io;
	struct node *top;
	struct node **wds;
	size_t n_wds; /* buckets, a power of two */
	size_t dirs, unwatched;
	bool missing, warned_watches;

	struct frame *todo; /* scan stack */
	DIR *dir;	    /* the directory being listed */
	char *dir_rel;
	int dir_wd;
	bool full;	  /* a full scan is under way */
	bool listed;	  /* its listing ended; said once its files are asked about */
	bool full_wanted; /* another one after it */
	uint64_t gen;	  /* of the current full scan */

	struct found *found; /* found[found_head..n_found) wait, oldest first */
	size_t n_found, found_head, found_cap;

	struct moved *moved;
	size_t n_moved;
	sd_event_source *rescan_timer;
	struct root *next;

	struct said long_said; /* paths too long to open */
	struct said left_said; /* private files a crash left, kept */

	struct hs_scan_tally tally; /* of the full scan under way */
	struct hs_scan_tally last;  /* of the last one that finished */
	unsigned limit_said;	    /* files named as outside the limits since */
};

struct candidate { /* a quiet file to ask the queue about */
	struct root *r;
	struct hs_job_spec spec; /* path and remote_name owned */
	size_t rel_off;		 /* where the relative path starts in spec.path */
	bool counted;		 /* found by a full scan: its fate goes in the tally */
};

struct hs_watcher {
	sd_event *ev;
	const struct hs_config *cfg;
	struct hs_queue *q;
	struct hs_watcher_hooks hooks;
	struct root *roots;
	unsigned next_id;
	struct hs_settle *settle;
	sd_event_source *settle_timer;
	sd_event_source *scan_src;
	struct hs_job_spec *batch;
	size_t n_batch;
	struct candidate *cands;
	size_t n_cands;
	struct hs_job_spec *specs; /* flush_candidates' scratch */
	enum hs_seen *seen;
	size_t n_found; /* found files waiting, all roots together */
	bool ready_sent;
	uint64_t files_queued;
	struct hs_after_run *after; /* after-upload actions, kept until done */
};

static void root_lost(struct root *r, const char *why);
static void arm_settle(struct hs_watcher *w);
static void root_start(struct root *r);
static void scan_push(struct root *r, const char *rel, int parent_wd, bool full);

/* ---- helpers ---------------------------------------------------------------- */

static int64_t mono_ms(void)
{
	return hs_mono_us() / 1000;
}

static int64_t mtime_ns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

/* rel + "/" + name, or name when rel is "". NULL when out of memory. */
static char *join(const char *rel, const char *name)
{
	char *s;

	if (asprintf(&s, "%s%s%s", rel, rel[0] ? "/" : "", name) < 0)
		return NULL;
	return s;
}

static bool abs_path(const struct root *r, const char *rel, char *buf, size_t len)
{
	return snprintf(buf, len, "%s%s%s", r->conf->path, rel[0] ? "/" : "", rel) < (int)len;
}

/* The facts of rel below r's folder, with every component opened below the
 * folder without following a symlink (beneath.h): a folder swapped for a
 * symlink since rel was seen is not looked through, so nothing outside
 * the folder is ever taken for one of its files. */
static int stat_beneath(const struct root *r, const char *rel, struct stat *st)
{
	const char *name;
	int dir = hs_beneath_parent(r->conf->path, rel, &name), rc, e;

	if (dir < 0)
		return -1;
	rc = fstatat(dir, name, st, AT_SYMLINK_NOFOLLOW);
	e = errno;
	close(dir);
	errno = e;
	return rc;
}

#define SAID_MAX 256

/* Whether rel is to be named now: not said before, and room to remember
 * it. *others is set (once) when the room ran out: the caller then says
 * one line for all the others instead. */
static bool first_time(struct said *s, const char *rel, bool *others)
{
	char **grown;

	*others = false;
	for (size_t i = 0; i < s->n && i < SAID_MAX; i++)
		if (strcmp(s->rels[i], rel) == 0)
			return false;
	if (s->n >= SAID_MAX) {
		if ((*others = s->n == SAID_MAX))
			s->n++;
		return false;
	}
	if ((grown = reallocarray(s->rels, s->n + 1, sizeof(*grown)))) {
		s->rels = grown;
		if ((grown[s->n] = strdup(rel)))
			s->n++;
	}
	return true;
}

static void said_free(struct said *s)
{
	for (size_t i = 0; i < s->n && i < SAID_MAX; i++)
		free(s->rels[i]);
	free(s->rels);
}

/* Appends s[0..n) to out (o bytes used of len): printable ASCII as it
 * is, any other byte as \xNN, so that a log line stays one line. */
static size_t shown(char *out, size_t o, size_t len, const char *s, size_t n)
{
	for (size_t i = 0; i < n && o + 5 < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f && c != '\\')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, len - o, "\\x%02x", c);
	}
	out[o] = '\0';
	return o;
}

/*
 * rel makes a path of PATH_MAX bytes or more: the kernel opens no such
 * name, so the file (or everything under the directory) cannot be uploaded.
 * Said once per path, in one line with the name shortened; after
 * SAID_MAX such paths, once more for all the others.
 */
static void too_long(struct root *r, const char *rel, bool dir)
{
	size_t len = strlen(r->conf->path) + 1 + strlen(rel), n = strlen(rel), o;
	char name[400];
	bool others;

	if (!first_time(&r->long_said, rel, &others)) {
		if (others)
			hs_log(LOG_WARNING,
			       "%s: more paths of %d bytes or more, not uploaded; not named one by "
			       "one",
			       r->conf->path, PATH_MAX);
		return;
	}
	o = shown(name, 0, sizeof(name), rel, n < 120 ? n : 80);
	if (n >= 120) {
		o += (size_t)snprintf(name + o, sizeof(name) - o, "...");
		shown(name, o, sizeof(name), rel + n - 40, 40);
	}
	hs_log(LOG_WARNING, "%s: %s%s is %zu bytes long, over the %d a path may have; %s",
	       r->conf->path, name, dir ? "/" : "", len, PATH_MAX - 1,
	       dir ? "nothing under it is uploaded" : "not uploaded");
}

/* Whether someone has the file rel (below r's folder) open for writing: a
 * read lease is refused then. Where no lease can be taken (another owner
 * and no CAP_LEASE, a file system without leases) the answer is unknown:
 * logged once, and the settle time with unchanged size and mtime decides
 * alone. */
static bool being_written(struct root *r, const char *rel)
{
	const char *name;
	int dir = hs_beneath_parent(r->conf->path, rel, &name), fd = -1, busy;

	if (dir >= 0)
		fd = hs_beneath_open_file(dir, name);
	if (dir >= 0)
		close(dir);
	if (fd < 0)
		return false;
	busy = hs_writer_check(fd);
	if (busy < 0 && hs_writer_unknown_first()) {
		hs_log(LOG_NOTICE,
		       "%s/%s: cannot take a file lease (%s): files still open for writing are not "
		       "noticed; settle and unchanged size and mtime decide (the unit grants "
		       "CAP_LEASE for this)",
		       r->conf->path, rel, strerror(errno));
	}
	close(fd);
	return busy == 1;
}

/* ---- nodes -------------------------------------------------------------- */

static struct node **wd_slot(struct root *r, int wd)
{
	struct node **n = &r->wds[(size_t)wd & (r->n_wds - 1)];

	while (*n && (*n)->wd != wd)
		n = &(*n)->hnext;
	return n;
}

static struct node *node_get(struct root *r, int wd)
{
	return r->wds ? *wd_slot(r, wd) : NULL;
}

static void wd_grow(struct root *r)
{
	size_t n = r->n_wds ? 2 * r->n_wds : 64;
	struct node **b = calloc(n, sizeof(*b));

	if (!b)
		return;
	for (size_t i = 0; i < r->n_wds; i++)
		for (struct node *e = r->wds[i], *next; e; e = next) {
			next = e->hnext;
			e->hnext = b[(size_t)e->wd & (n - 1)];
			b[(size_t)e->wd & (n - 1)] = e;
		}
	free(r->wds);
	r->wds = b;
	r->n_wds = n;
}

static void unlink_node(struct node *n)
{
	if (n->prev)
		n->prev->next = n->next;
	else if (n->parent)
		n->parent->child = n->next;
	if (n->next)
		n->next->prev = n->prev;
	n->parent = n->prev = n->next = NULL;
}

static void link_node(struct node *n, struct node *parent)
{
	unlink_node(n);
	if (!parent)
		return;
	n->parent = parent;
	n->next = parent->child;
	if (parent->child)
		parent->child->prev = n;
	parent->child = n;
}

/* Rewrites the paths below n after n itself got a new one. */
static void rename_subtree(struct node *n)
{
	for (struct node *c = n->child; c; c = c->next) {
		const char *name = strrchr(c->rel, '/');
		char *rel = join(n->rel, name ? name + 1 : c->rel);
		if (rel) {
			free(c->rel);
			c->rel = rel;
		}
		rename_subtree(c);
	}
}

/* Forgets n and everything below it; rm: also drop the kernel's watches
 * (not when the kernel already did, IN_IGNORED). */
static void node_drop(struct root *r, struct node *n, bool rm)
{
	struct node **at;

	while (n->child)
		node_drop(r, n->child, rm);
	unlink_node(n);
	at = wd_slot(r, n->wd);
	if (*at == n)
		*at = n->hnext;
	if (rm)
		inotify_rm_watch(r->fd, n->wd);
	if (r->top == n)
		r->top = NULL;
	for (size_t i = 0; i < r->n_moved; i++)
		if (r->moved[i].n == n)
			r->moved[i].n = NULL;
	r->dirs--;
	free(n->rel);
	free(n);
}

static long read_limit(const char *path)
{
	FILE *f = fopen(path, "re");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/* Once per folder, naming the limit that binds: the per-user sysctl, or
 * the user namespace's own (a container's) when that is lower. */
static void log_no_watches(struct root *r)
{
	long max = read_limit("/proc/sys/fs/inotify/max_user_watches");
	long ns = read_limit("/proc/sys/user/max_inotify_watches");
	const char *name = "fs.inotify.max_user_watches";
	char every[32];

	if (r->warned_watches)
		return;
	r->warned_watches = true;
	if (ns > 0 && (max <= 0 || ns < max)) {
		max = ns;
		name = "user.max_inotify_watches";
	}
	hs_log(LOG_WARNING,
	       "%s: out of inotify watches (%s = %ld); folders without one are checked every "
	       "%s; raise it with: sysctl %s=%ld",
	       r->conf->path, name, max,
	       hs_format_duration(r->conf->rescan_ms, every, sizeof(every)), name,
	       max > 0 ? max * 4 : 524288);
}

/* Watches the directory rel, a child of parent_wd's directory, open as
 * dirfd (beneath the root), and returns its node; NULL when it cannot be
 * watched. The watch goes on that very directory, named by its descriptor:
 * the path would follow a folder on the way swapped for a symlink since.
 * Without /proc, the path is used (events from such a watch are still
 * never taken for files: every file is looked at beneath the root). A
 * directory already watched (renamed inside the tree) gets its new path. */
static struct node *watch_dir(struct root *r, const char *rel, int parent_wd, int dirfd)
{
	char path[PATH_MAX], self[64];
	struct node *n, *parent = rel[0] && parent_wd >= 0 ? node_get(r, parent_wd) : NULL;
	int wd;

	if (!abs_path(r, rel, path, sizeof(path)))
		return NULL;
	snprintf(self, sizeof(self), "/proc/self/fd/%d", dirfd);
	wd = inotify_add_watch(r->fd, self, DIR_MASK & ~(uint32_t)IN_DONT_FOLLOW);
	if (wd < 0 && errno == ENOENT && access("/proc/self/fd", F_OK) != 0)
		wd = inotify_add_watch(r->fd, path, DIR_MASK);
	if (wd < 0) {
		if (errno == ENOSPC) {
			log_no_watches(r);
			r->unwatched++;
		} else if (errno != ENOENT && errno != ENOTDIR) {
			hs_log(LOG_WARNING, "cannot watch %s: %s", path, strerror(errno));
			r->unwatched++;
		}
		return NULL;
	}
	if ((n = node_get(r, wd))) {
		if (strcmp(n->rel, rel) != 0) {
			char *copy = strdup(rel);
			if (copy) {
				free(n->rel);
				n->rel = copy;
				rename_subtree(n);
			}
		}
		if (n != r->top && n->parent != parent)
			link_node(n, parent);
		n->gen = r->gen;
		return n;
	}
	if (!(n = calloc(1, sizeof(*n))) || !(n->rel = strdup(rel))) {
		free(n);
		inotify_rm_watch(r->fd, wd);
		return NULL;
	}
	n->wd = wd;
	n->gen = r->gen;
	if (r->dirs + 1 > r->n_wds)
		wd_grow(r);
	n->hnext = *wd_slot(r, wd);
	*wd_slot(r, wd) = n;
	r->dirs++;
	if (!rel[0])
		r->top = n;
	else
		link_node(n, parent);
	return n;
}

/* ---- jobs ----------------------------------------------------------------- */

static void arm_rescan(struct root *r, uint64_t after_ms);

/* The queue refused files (a full disk, say): every folder is scanned again
 * soon, not at its next periodic rescan, so nothing waits an hour once the
 * queue takes writes again. */
static void retry_soon(struct hs_watcher *w)
{
	uint64_t now, at;
	int on;

	sd_event_now(w->ev, CLOCK_MONOTONIC, &now);
	for (struct root *r = w->roots; r; r = r->next) {
		if (sd_event_source_get_enabled(r->rescan_timer, &on) >= 0 && on != SD_EVENT_OFF &&
		    sd_event_source_get_time(r->rescan_timer, &at) >= 0 &&
		    at <= now + QUEUE_RETRY_MS * 1000ULL)
			continue;
		arm_rescan(r, QUEUE_RETRY_MS);
	}
}

static void flush_batch(struct hs_watcher *w)
{
	char *cause = NULL;
	size_t n = w->n_batch;

	if (n == 0)
		return;
	if (hs_queue_enqueue_many(w->q, w->batch, n, hs_wall_ms(), &cause) != HS_Q_OK) {
		hs_log(LOG_ERR, "queue: cannot add %zu file%s: %s; a rescan in %d s retries", n,
		       n == 1 ? "" : "s", cause ? cause : "out of memory", QUEUE_RETRY_MS / 1000);
		free(cause);
		retry_soon(w);
	} else {
		w->files_queued += n;
		hs_log(LOG_DEBUG, "queued %zu file%s", n, n == 1 ? "" : "s");
	}
	for (size_t i = 0; i < n; i++) {
		free((char *)w->batch[i].path);
		free((char *)w->batch[i].remote_name);
	}
	w->n_batch = 0;
	if (w->hooks.queued)
		w->hooks.queued(w->hooks.arg);
}

/* job_id: the job that stored the file, 0 when a scan found it stored.
 * after_run.h logs it and keeps a refused action pending. */
static void run_after(struct root *r, const char *path, const char *rel, int64_t size,
		      int64_t mtime, int64_t inode, int64_t job_id)
{
	hs_after_run(r->w->after, r->conf, path, rel, size, mtime, inode, job_id);
}

static void settle_facts(struct root *r, const char *path, bool known, int64_t size, int64_t mtime)
{
	int64_t deadline = mono_ms() + (int64_t)r->conf->settle_ms;

	if (hs_settle_touch(r->w->settle, path, r->id, deadline, known, size, mtime) != 0)
		hs_log(LOG_WARNING, "%s: out of memory; the next rescan finds it", path);
}

/* Asks the queue about the candidates in one go, then queues the new ones,
 * runs after_upload for stored ones and forgets the rest. Whether a writer
 * still holds a file is asked by the uploader, on the descriptor it reads
 * (transfer.c), not here: a scan would pay an open and a lease per file. */
static void flush_candidates(struct hs_watcher *w)
{
	struct hs_job_spec *specs = w->specs;
	enum hs_seen *seen = w->seen;
	char *cause = NULL;
	size_t n = w->n_cands;

	if (n == 0)
		return;
	for (size_t i = 0; i < n; i++)
		specs[i] = w->cands[i].spec;
	if (hs_queue_seen_many(w->q, specs, n, seen, &cause) != HS_Q_OK) {
		hs_log(LOG_ERR, "queue: %s; a rescan in %d s retries",
		       cause ? cause : "out of memory", QUEUE_RETRY_MS / 1000);
		free(cause);
		retry_soon(w);
		for (size_t i = 0; i < n; i++)
			seen[i] = HS_SEEN_PENDING;
	}
	w->n_cands = 0;
	for (size_t i = 0; i < n; i++) {
		struct candidate *c = &w->cands[i];
		struct hs_job_spec *sp = &c->spec;
		bool queue_it = false;
		enum hs_reason fate = HS_REASON_QUEUED;

		if (seen[i] == HS_SEEN_STORED) {
			fate = HS_REASON_STORED;
			run_after(c->r, sp->path, sp->path + c->rel_off, sp->size, sp->mtime_ns,
				  sp->inode, 0);
		} else if (seen[i] == HS_SEEN_NEW) {
			fate = HS_REASON_SEND;
			queue_it = true;
		}
		if (c->counted)
			c->r->tally.n[fate]++;
		if (queue_it) {
			if (w->n_batch == BATCH_MAX)
				flush_batch(w);
			w->batch[w->n_batch++] = *sp; /* takes the strings */
		} else {
			free((char *)sp->path);
			free((char *)sp->remote_name);
		}
	}
	arm_settle(w);
}

/* A file that counts (quiet, passing the filter): queued unless the queue
 * knows it; size, mtime and inode are its facts as last read. counted: a
 * full scan found it (its fate is tallied). */
static void consider(struct root *r, const char *path, const char *rel, int64_t size, int64_t mtime,
		     int64_t inode, bool counted)
{
	struct hs_watcher *w = r->w;
	char *remote = hs_remote_name(r->conf->remote_prefix, rel), *copy = strdup(path);

	if (!remote || !copy) {
		if (copy && !remote) {
			hs_log(LOG_WARNING, "%s: no valid remote name for this path; not sent",
			       path);
			if (counted)
				r->tally.n[HS_REASON_UNNAMEABLE]++;
		}
		free(remote);
		free(copy);
		return;
	}
	if (w->n_cands == BATCH_MAX)
		flush_candidates(w);
	w->cands[w->n_cands++] = (struct candidate){
	    .r = r,
	    .rel_off = strlen(r->conf->path) + 1, /* path is the folder, "/", rel */
	    .counted = counted,
	    .spec = {.path = copy,
		     .watch_root = r->conf->path, /* borrowed: flushed before any reload */
		     .remote_name = remote,
		     .size = size,
		     .mtime_ns = mtime,
		     .inode = inode},
	};
}

/* ---- found files --------------------------------------------------------- */

/* Keeps a quiet file a listing found (rel is taken) for drain_found. Out
 * of memory, it is asked about at once instead. */
static void found_add(struct root *r, char *rel, const char *path, const struct stat *st,
		      bool counted)
{
	struct hs_watcher *w = r->w;

	if (r->n_found == r->found_cap) {
		size_t cap = r->found_cap ? 2 * r->found_cap : 256;
		struct found *grown = reallocarray(r->found, cap, sizeof(*grown));
		if (!grown) {
			consider(r, path, rel, st->st_size, mtime_ns(st), (int64_t)st->st_ino,
				 counted);
			free(rel);
			return;
		}
		r->found = grown;
		r->found_cap = cap;
	}
	r->found[r->n_found++] = (struct found){.rel = rel,
						.size = st->st_size,
						.mtime_ns = mtime_ns(st),
						.inode = (int64_t)st->st_ino,
						.counted = counted};
	w->n_found++;
}

static void found_drop(struct root *r)
{
	for (size_t i = r->found_head; i < r->n_found; i++)
		free(r->found[i].rel);
	r->w->n_found -= r->n_found - r->found_head;
	free(r->found);
	r->found = NULL;
	r->n_found = r->found_head = r->found_cap = 0;
}

/* Turns up to BATCH_MAX found files, oldest first, into candidates, and
 * the candidates into jobs: one read and one write transaction. The
 * facts are the ones the listing read; a file changed since is a new
 * event, and the uploader reads what is there. */
static void drain_found(struct hs_watcher *w)
{
	size_t left = BATCH_MAX;
	char path[PATH_MAX];

	for (struct root *r = w->roots; r && left; r = r->next) {
		while (left && r->found_head < r->n_found) {
			struct found *f = &r->found[r->found_head++];
			if (abs_path(r, f->rel, path, sizeof(path))) /* checked when found */
				consider(r, path, f->rel, f->size, f->mtime_ns, f->inode,
					 f->counted);
			free(f->rel);
			w->n_found--;
			left--;
		}
		if (r->found_head == r->n_found)
			found_drop(r); /* a large scan's list is not kept */
	}
	flush_candidates(w);
	flush_batch(w);
}

/* ---- settling ---------------------------------------------------------- */

static struct root *root_by_id(struct hs_watcher *w, unsigned id)
{
	for (struct root *r = w->roots; r; r = r->next)
		if (r->id == id)
			return r;
	return NULL;
}

static void arm_settle(struct hs_watcher *w)
{
	int64_t next = hs_settle_next(w->settle);

	if (next < 0) {
		sd_event_source_set_enabled(w->settle_timer, SD_EVENT_OFF);
		return;
	}
	sd_event_source_set_time(w->settle_timer, (uint64_t)next * 1000);
	sd_event_source_set_enabled(w->settle_timer, SD_EVENT_ONESHOT);
}

/* A file that settled after an event: the folder's limits, which need its
 * facts, decide now. Each skipped one is named in a line, since no scan
 * counted it, up to LIMIT_SAID between full scans: an old archive copied
 * in with its dates kept is then one line more, and the next full scan
 * counts the files all the same. */
static bool passes(struct root *r, const char *rel, const struct stat *st)
{
	const char *name = strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel;
	struct hs_file_facts facts = {st->st_size, mtime_ns(st)};
	enum hs_reason why = hs_filter_decide(r->conf, rel, name, &facts, hs_wall_ms(), NULL);
	char rule[256];

	if (why == HS_REASON_SEND)
		return true;
	if (r->limit_said < LIMIT_SAID) {
		hs_reason_rule(r->conf, why, rule, sizeof(rule));
		hs_log(LOG_INFO, "%s/%s: not sent: %s%s%s%s", r->conf->path, rel,
		       hs_reason_text(why), rule[0] ? " (" : "", rule, rule[0] ? ")" : "");
	} else if (r->limit_said == LIMIT_SAID) {
		hs_log(LOG_INFO,
		       "%s: more new files outside the folder's limits; not named one by one, "
		       "the next scan counts them",
		       r->conf->path);
	}
	r->limit_said++;
	return false;
}

static int on_settle(sd_event_source *s, uint64_t usec, void *arg)
{
	struct hs_watcher *w = arg;
	int64_t now = mono_ms();
	struct hs_pending *p;

	while ((p = hs_settle_pop(w->settle, now))) {
		struct root *r = root_by_id(w, p->root);
		size_t len = r ? strlen(r->conf->path) : 0;
		struct stat st;

		if (!r || strncmp(p->path, r->conf->path, len) != 0 || p->path[len] != '/' ||
		    stat_beneath(r, p->path + len + 1, &st) != 0 || !S_ISREG(st.st_mode)) {
			hs_pending_free(p); /* vanished, replaced, or its folder left */
			continue;
		}
		if (!p->known || p->size != st.st_size || p->mtime_ns != mtime_ns(&st) ||
		    being_written(r, p->path + len + 1)) {
			hs_settle_requeue(w->settle, p, now + (int64_t)r->conf->settle_ms,
					  st.st_size, mtime_ns(&st));
			continue;
		}
		if (passes(r, p->path + len + 1, &st))
			consider(r, p->path, p->path + len + 1, st.st_size, mtime_ns(&st),
				 (int64_t)st.st_ino, false);
		hs_pending_free(p);
	}
	flush_candidates(w);
	flush_batch(w);
	arm_settle(w);
	return 0;
}

/* ---- inotify events --------------------------------------------------------- */

static void file_event(struct root *r, struct node *n, const struct inotify_event *ev)
{
	char *rel = join(n->rel, ev->name), path[PATH_MAX];
	const char *name = ev->name;
	struct stat st;

	if (!rel || !hs_filter_file(r->conf, rel, name)) {
		free(rel);
		return;
	}
	if (!abs_path(r, rel, path, sizeof(path))) {
		if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO))
			too_long(r, rel, false);
		free(rel);
		return;
	}
	if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) {
		if (stat_beneath(r, rel, &st) == 0 && S_ISREG(st.st_mode)) {
			settle_facts(r, path, true, st.st_size, mtime_ns(&st));
			arm_settle(r->w);
		}
	} else if (ev->mask & (IN_MODIFY | IN_ATTRIB)) {
		/* Still being written, or touched: only files already waiting
		 * wait longer; the close that ends a write brings the others. */
		hs_settle_bump(r->w->settle, path, mono_ms() + (int64_t)r->conf->settle_ms);
	}
	free(rel);
}

static struct node *child_named(struct node *n, const char *rel)
{
	for (struct node *c = n->child; c; c = c->next)
		if (strcmp(c->rel, rel) == 0)
			return c;
	return NULL;
}

static void dir_event(struct root *r, struct node *n, const struct inotify_event *ev)
{
	char *rel = join(n->rel, ev->name);
	struct node *c;

	if (!rel)
		return;
	if (!r->conf->recursive || !hs_filter_dir(r->conf, rel, ev->name)) {
		if ((ev->mask & IN_MOVED_FROM) && (c = child_named(n, rel)))
			node_drop(r, c, true);
		free(rel);
		return;
	}
	if (ev->mask & IN_MOVED_FROM) {
		c = child_named(n, rel);
		struct moved *m = c ? realloc(r->moved, (r->n_moved + 1) * sizeof(*m)) : NULL;
		if (m) {
			r->moved = m;
			r->moved[r->n_moved++] = (struct moved){ev->cookie, c};
		} else if (c) {
			node_drop(r, c, true);
		}
	} else if (ev->mask & (IN_MOVED_TO | IN_CREATE)) {
		for (size_t i = 0; i < r->n_moved; i++)
			if (r->moved[i].cookie == ev->cookie && r->moved[i].n &&
			    (ev->mask & IN_MOVED_TO)) {
				r->moved[i].n = NULL; /* renamed inside the tree: kept */
			}
		/* New or renamed: (re)watch it and list it, now. */
		scan_push(r, rel, n->wd, false);
	}
	free(rel);
}

/* Directories moved away whose other half never came: they left the tree. */
static void settle_moves(struct root *r)
{
	for (size_t i = 0; i < r->n_moved; i++)
		if (r->moved[i].n)
			node_drop(r, r->moved[i].n, true);
	free(r->moved);
	r->moved = NULL;
	r->n_moved = 0;
}

static int on_inotify(sd_event_source *s, int fd, uint32_t revents, void *arg)
{
	struct root *r = arg;
	char buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t len;

	while ((len = read(fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + len;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			struct node *n;

			p += sizeof(*ev) + ev->len;
			if (ev->mask & IN_Q_OVERFLOW) {
				hs_log(LOG_WARNING,
				       "%s: inotify queue overflowed; rescanning the folder",
				       r->conf->path);
				scan_push(r, "", -1, true);
				continue;
			}
			if (!(n = node_get(r, ev->wd)))
				continue;
			if (ev->mask & IN_IGNORED) {
				if (n == r->top) {
					root_lost(r, "its watch ended");
					return 0;
				}
				node_drop(r, n, false);
				continue;
			}
			if (n == r->top &&
			    (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT))) {
				root_lost(r, ev->mask & IN_UNMOUNT	 ? "unmounted"
					     : ev->mask & IN_DELETE_SELF ? "deleted"
									 : "moved away");
				return 0;
			}
			if (!ev->len)
				continue;
			if (ev->mask & IN_ISDIR)
				dir_event(r, n, ev);
			else
				file_event(r, n, ev);
		}
	}
	if (len < 0 && errno != EAGAIN && errno != EINTR)
		hs_log(LOG_ERR, "%s: reading inotify events: %s", r->conf->path, strerror(errno));
	settle_moves(r);
	return 0;
}

/* ---- scans -------------------------------------------------------------- */

/* A directory is still to be listed. */
static bool listing(const struct hs_watcher *w)
{
	for (const struct root *r = w->roots; r; r = r->next)
		if (r->todo || r->dir)
			return true;
	return false;
}

/* Listing, or found files not yet made jobs. */
static bool scanning(const struct hs_watcher *w)
{
	return w->n_found || listing(w);
}

/* The next slice at the next turn of the loop. A timer due at once, not a
 * defer source: sd-event keeps a defer source pending from the turn it was
 * added in, so one left on always runs before every other source of its
 * priority, and uploads, inotify and signals would wait for the whole scan.
 * A timer becomes pending anew at each turn, behind what was already
 * waiting. Left alone while already armed: re-arming a pending timer would
 * push it back. */
static void scan_soon(struct hs_watcher *w)
{
	uint64_t now;
	int on;

	if (sd_event_source_get_enabled(w->scan_src, &on) >= 0 && on != SD_EVENT_OFF)
		return;
	if (sd_event_now(w->ev, CLOCK_MONOTONIC, &now) < 0 ||
	    sd_event_source_set_time(w->scan_src, now) < 0 ||
	    sd_event_source_set_enabled(w->scan_src, SD_EVENT_ONESHOT) < 0)
		sd_event_source_set_enabled(w->scan_src, SD_EVENT_ON); /* try anyway */
}

static void scan_push(struct root *r, const char *rel, int parent_wd, bool full)
{
	struct frame *f;

	if (r->missing)
		return;
	if (full) {
		if (r->full) { /* one at a time; another follows it */
			r->full_wanted = true;
			return;
		}
		r->full = true;
		r->gen++;
		r->unwatched = 0;
		memset(&r->tally, 0, sizeof(r->tally));
	}
	if (!(f = calloc(1, sizeof(*f))) || !(f->rel = strdup(rel))) {
		free(f);
		return;
	}
	f->parent_wd = parent_wd;
	f->below = r->todo;
	r->todo = f;
	scan_soon(r->w);
}

/* After a full scan: nodes it did not see are directories that left the
 * tree while events were lost. */
static void sweep(struct root *r, struct node *n)
{
	for (struct node *c = n->child, *next; c; c = next) {
		next = c->next;
		if (c->gen != r->gen)
			node_drop(r, c, true);
		else
			sweep(r, c);
	}
}

/* A ".healsync-del-*" file: a crash came between an after-upload action's
 * private rename and its end (after.h). When the ledger stored its very
 * facts from this folder, it goes back under its name and is handled like
 * any stored file the scan finds: the action runs again as configured.
 * Anything else is kept (it may be the only copy of a newer version) and
 * named once. */
static void interrupted(struct root *r, const char *rel, const struct stat *st)
{
	const char *prefix = r->conf->remote_prefix;
	size_t plen = strlen(prefix);
	char *remote = NULL, *orig = NULL, *cause = NULL, path[PATH_MAX];
	int rc = HS_AFTER_NOTHING;
	bool others;

	if (hs_queue_ledger_by_facts(r->w->q, prefix, st->st_size, mtime_ns(st),
				     (int64_t)st->st_ino, &remote, &cause) != HS_Q_OK) {
		hs_log(LOG_ERR, "queue: %s", cause ? cause : "out of memory");
		goto out;
	}
	if (remote && (orig = hs_remote_name_unescape(remote)) && strncmp(orig, prefix, plen) == 0)
		rc = hs_after_restore(r->conf, rel, orig + plen, st->st_size, mtime_ns(st),
				      (int64_t)st->st_ino, &cause);
	if (rc == HS_AFTER_DONE && abs_path(r, orig + plen, path, sizeof(path))) {
		hs_log(LOG_NOTICE,
		       "%s: put back from %s, where a crash during its after-upload "
		       "action left it",
		       path, rel);
		run_after(r, path, orig + plen, st->st_size, mtime_ns(st), (int64_t)st->st_ino, 0);
	} else if (rc == HS_AFTER_FAILED) {
		hs_log(LOG_ERR, "after upload: %s", cause ? cause : "out of memory");
	} else if (rc == HS_AFTER_NOTHING && !first_time(&r->left_said, rel, &others)) {
		if (others)
			hs_log(LOG_WARNING,
			       "%s: more files left by interrupted after-upload actions; not "
			       "named one by one",
			       r->conf->path);
	} else if (rc == HS_AFTER_NOTHING) {
		hs_log(LOG_WARNING,
		       "%s/%s: left by an after-upload action that a crash "
		       "interrupted; %s, so it is kept: look at it, and rename or remove it",
		       r->conf->path, rel,
		       remote ? "its name is taken again or it changed"
			      : "it is no version the ledger holds");
	}
out:
	free(remote);
	free(orig);
	free(cause);
}

/* Counts a file's fate in the full scan under way. */
static void tally(struct root *r, enum hs_reason why)
{
	if (r->full)
		r->tally.n[why]++;
}

static void scan_entry(struct root *r, const struct dirent *de, int64_t now_wall)
{
	char *rel = join(r->dir_rel, de->d_name), path[PATH_MAX];
	struct hs_file_facts facts;
	enum hs_reason why;
	struct stat st;

	if (!rel)
		return;
	if (de->d_type == DT_DIR) {
		bool enter = r->conf->recursive && hs_filter_dir(r->conf, rel, de->d_name);

		if (r->conf->recursive && !enter && r->full)
			r->tally.dirs_excluded++;
		if (enter) {
			struct frame *f = calloc(1, sizeof(*f));
			if (f) {
				f->rel = rel;
				f->parent_wd = r->dir_wd;
				rel = NULL;
				f->below = r->todo;
				r->todo = f;
			}
		}
		goto out;
	}
	bool known = (de->d_type == DT_REG || de->d_type == DT_UNKNOWN) &&
		     fstatat(dirfd(r->dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0;
	if (known && S_ISDIR(st.st_mode)) /* no d_type from this file system */
		goto out;
	if (r->full)
		r->tally.files++;
	if (!known || !S_ISREG(st.st_mode)) {
		tally(r, HS_REASON_NOT_REGULAR); /* or gone since it was listed */
		goto out;
	}
	if (strncmp(de->d_name, HS_AFTER_PRIVATE_PREFIX, strlen(HS_AFTER_PRIVATE_PREFIX)) == 0) {
		tally(r, HS_REASON_TEMPORARY);
		interrupted(r, rel, &st);
		goto out;
	}
	facts = (struct hs_file_facts){st.st_size, mtime_ns(&st)};
	if ((why = hs_filter_decide(r->conf, rel, de->d_name, &facts, now_wall, NULL)) !=
	    HS_REASON_SEND) {
		tally(r, why);
		goto out;
	}
	if (!abs_path(r, rel, path, sizeof(path))) {
		tally(r, HS_REASON_UNNAMEABLE);
		too_long(r, rel, false);
		goto out;
	}
	/* Written long enough ago: it counts, once the listings are done
	 * (a writer that still holds it open is noticed by the uploader);
	 * else it settles like a file just written. */
	if (hs_filter_settled(r->conf, facts.mtime_ns, now_wall)) {
		found_add(r, rel, path, &st, r->full); /* takes rel */
		return;
	}
	tally(r, HS_REASON_SETTLING);
	settle_facts(r, path, true, st.st_size, mtime_ns(&st));
	arm_settle(r->w);
out:
	free(rel);
}

static void scan_close(struct root *r)
{
	if (r->dir)
		closedir(r->dir);
	r->dir = NULL;
	free(r->dir_rel);
	r->dir_rel = NULL;
}

/* Lists one directory, or part of it; returns the entries used. */
static unsigned scan_step(struct root *r, unsigned budget)
{
	int64_t now = hs_wall_ms();
	unsigned used = 0;
	struct dirent *de;

	if (!r->dir) {
		struct frame *f = r->todo;
		char path[PATH_MAX];
		int fd;

		struct node *n = NULL;
		int parent_wd = f->parent_wd;

		r->todo = f->below;
		r->dir_rel = f->rel;
		r->dir_wd = -1;
		free(f);
		if (!abs_path(r, r->dir_rel, path, sizeof(path))) {
			too_long(r, r->dir_rel, true);
			scan_close(r);
			return 1;
		}
		/* Each component below the root opened without following a
		 * symlink: a folder swapped for one mid-scan is neither watched
		 * nor listed. Watch first, then list: what is written meanwhile
		 * is seen. */
		fd = hs_beneath_dir(r->conf->path, r->dir_rel, false);
		if (fd >= 0 && (!r->dir_rel[0] || r->conf->recursive))
			n = watch_dir(r, r->dir_rel, parent_wd, fd);
		r->dir_wd = n ? n->wd : -1;
		if (fd < 0 || !(r->dir = fdopendir(fd))) {
			if (fd >= 0)
				close(fd);
			if (errno != ENOENT && errno != ENOTDIR)
				hs_log(LOG_WARNING, "cannot list %s: %s", path, strerror(errno));
			if (!r->dir_rel[0] && errno == ENOENT) {
				scan_close(r);
				root_lost(r, "not found");
				return 1;
			}
			scan_close(r);
			return 1;
		}
	}
	while (used < budget && (errno = 0, de = readdir(r->dir))) {
		used++;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		scan_entry(r, de, now);
	}
	if (used < budget)
		scan_close(r);
	return used ? used : 1;
}

/* "scan of /srv/exports: 1,204 files, 3 queued, 1,180 too old (max_age
 * 30d), 21 not included (include *.pdf, *.hl7)": every file is in one of
 * the counts, so nothing is skipped without a word. */
static void log_tally(struct root *r)
{
	const struct hs_scan_tally *t = &r->tally;
	char line[2048], num[32], rule[512], files[32];
	const struct hs_log_field f[] = {{"HEALSYNC_WATCH", r->conf->path},
					 {"HEALSYNC_SCAN_FILES", files}};
	size_t o = 0;

	snprintf(files, sizeof(files), "%" PRIu64, t->files);
	o +=
	    (size_t)snprintf(line + o, sizeof(line) - o, "%s file%s",
			     hs_format_count(t->files, num, sizeof(num)), t->files == 1 ? "" : "s");
	for (int i = 0; i < HS_REASON_COUNT && o < sizeof(line); i++) {
		enum hs_reason why = (enum hs_reason)i;

		if (!t->n[i] && why != HS_REASON_SEND)
			continue;
		hs_reason_rule(r->conf, why, rule, sizeof(rule));
		o += (size_t)snprintf(line + o, sizeof(line) - o, ", %s %s%s%s%s",
				      hs_format_count(t->n[i], num, sizeof(num)),
				      why == HS_REASON_SEND ? "queued" : hs_reason_text(why),
				      rule[0] ? " (" : "", rule, rule[0] ? ")" : "");
	}
	if (t->dirs_excluded && o < sizeof(line))
		snprintf(line + o, sizeof(line) - o, "; %s folder%s excluded (%s)",
			 hs_format_count(t->dirs_excluded, num, sizeof(num)),
			 t->dirs_excluded == 1 ? "" : "s",
			 hs_reason_rule(r->conf, HS_REASON_EXCLUDED, rule, sizeof(rule)));
	hs_log_fields(LOG_INFO, f, 2, "scan of %s: %s", r->conf->path, line);
}

static void scan_finished(struct root *r)
{
	char every[32];

	if (r->full) {
		if (r->top)
			sweep(r, r->top);
		r->full = false;
		r->listed = true; /* the tally is told once its files are asked about */
		if (r->unwatched)
			hs_log(LOG_NOTICE, "%s: %zu directories without a watch, checked every %s",
			       r->conf->path, r->unwatched,
			       hs_format_duration(r->conf->rescan_ms, every, sizeof(every)));
		if (r->full_wanted) {
			r->full_wanted = false;
			scan_push(r, "", -1, true);
		}
	}
}

/* One slice per turn of the loop: SLICE_ENTRIES directory entries while
 * any folder is being listed, then BATCH_MAX found files made jobs. */
static int on_scan(sd_event_source *s, uint64_t usec, void *arg)
{
	struct hs_watcher *w = arg;
	unsigned budget = SLICE_ENTRIES;
	bool was_listing = listing(w);

	(void)usec;

	if (!was_listing || w->n_found >= FOUND_MAX)
		drain_found(w);
	for (struct root *r = w->roots; r && budget; r = r->next) {
		while (budget && (r->dir || r->todo)) {
			unsigned used = scan_step(r, budget);
			budget -= used < budget ? used : budget;
			if (!r->dir && !r->todo)
				scan_finished(r);
		}
	}
	flush_candidates(w);
	flush_batch(w);
	for (struct root *r = w->roots; r; r = r->next) {
		if (r->listed && r->found_head == r->n_found) {
			/* Every file it found has its fate: the tally is complete. */
			r->listed = false;
			r->tally.at = hs_wall_ms();
			r->last = r->tally;
			r->limit_said = 0;
			log_tally(r);
			hs_log(LOG_DEBUG, "%s: scanned; %zu directories watched", r->conf->path,
			       r->dirs);
		}
	}
	/* Every folder watched and listed: ready, with the jobs for what the
	 * listings found still to come, a batch per turn from the next. */
	if (!listing(w) && !w->ready_sent) {
		w->ready_sent = true;
		if (w->hooks.ready)
			w->hooks.ready(w->hooks.arg);
	}
	if (scanning(w))
		scan_soon(w);
	else
		sd_event_source_set_enabled(s, SD_EVENT_OFF);
	return 0;
}

/* ---- roots ------------------------------------------------------------------ */

static void arm_rescan(struct root *r, uint64_t after_ms)
{
	uint64_t now;

	sd_event_now(r->w->ev, CLOCK_MONOTONIC, &now);
	sd_event_source_set_time(r->rescan_timer, now + after_ms * 1000);
	sd_event_source_set_enabled(r->rescan_timer, SD_EVENT_ONESHOT);
}

static int on_rescan(sd_event_source *s, uint64_t usec, void *arg)
{
	struct root *r = arg;

	if (r->missing) {
		root_start(r);
		if (r->missing) {
			arm_rescan(r, MISSING_RETRY_MS);
			return 0;
		}
		hs_log(LOG_NOTICE, "%s: the folder is back; watching it again", r->conf->path);
	} else {
		scan_push(r, "", -1, true);
	}
	arm_rescan(r, r->conf->rescan_ms);
	return 0;
}

static void root_stop(struct root *r)
{
	struct frame *f;

	scan_close(r);
	while ((f = r->todo)) {
		r->todo = f->below;
		free(f->rel);
		free(f);
	}
	r->full = r->full_wanted = false;
	found_drop(r); /* the folder is gone; the scan when it is back finds them */
	if (r->top)
		node_drop(r, r->top, false);
	free(r->moved);
	r->moved = NULL;
	r->n_moved = 0;
	r->io = sd_event_source_disable_unref(r->io);
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	r->dirs = r->unwatched = 0;
	hs_settle_drop_root(r->w->settle, r->id);
}

/* Sets up the inotify instance and starts a full scan; a folder that is
 * not there is marked missing and looked for again later. */
static void root_start(struct root *r)
{
	struct stat st;
	bool was_missing = r->missing;

	r->missing = false;
	errno = 0;
	if (stat(r->conf->path, &st) != 0 || !S_ISDIR(st.st_mode)) {
		if (!was_missing)
			hs_log(LOG_WARNING, "watch folder %s: %s; looking for it every %d s",
			       r->conf->path, errno ? strerror(errno) : "not a directory",
			       MISSING_RETRY_MS / 1000);
		r->missing = true;
		return;
	}
	r->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (r->fd < 0 || sd_event_add_io(r->w->ev, &r->io, r->fd, EPOLLIN, on_inotify, r) < 0) {
		hs_log(LOG_ERR, "watch folder %s: cannot set up inotify: %s%s", r->conf->path,
		       strerror(errno),
		       errno == EMFILE ? " (raise fs.inotify.max_user_instances)" : "");
		if (r->fd >= 0)
			close(r->fd);
		r->fd = -1;
		r->missing = true;
		return;
	}
	scan_push(r, "", -1, true);
}

static void root_lost(struct root *r, const char *why)
{
	hs_log(LOG_WARNING, "watch folder %s: %s; looking for it every %d s", r->conf->path, why,
	       MISSING_RETRY_MS / 1000);
	root_stop(r);
	r->missing = true;
	arm_rescan(r, MISSING_RETRY_MS);
}

static struct root *root_new(struct hs_watcher *w, const struct hs_watch *conf)
{
	struct root *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->w = w;
	r->conf = conf;
	r->id = w->next_id++;
	r->fd = -1;
	if (sd_event_add_time(w->ev, &r->rescan_timer, CLOCK_MONOTONIC, 0, 1000 * 1000, on_rescan,
			      r) < 0) {
		free(r);
		return NULL;
	}
	root_start(r);
	arm_rescan(r, r->missing ? MISSING_RETRY_MS : conf->rescan_ms);
	return r;
}

static struct root *root_free(struct root *r)
{
	root_stop(r);
	sd_event_source_disable_unref(r->rescan_timer);
	said_free(&r->long_said);
	said_free(&r->left_said);
	free(r->wds);
	free(r);
	return NULL;
}

/* ---- the interface ------------------------------------------------------- */

struct hs_watcher *hs_watcher_new(sd_event *ev, const struct hs_config *cfg, struct hs_queue *q,
				  const struct hs_watcher_hooks *hooks, char **cause)
{
	struct hs_watcher *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->ev = ev;
	w->cfg = cfg;
	w->q = q;
	if (hooks)
		w->hooks = *hooks;
	if (!(w->settle = hs_settle_new()) || !(w->after = hs_after_run_new(ev, q, cfg)) ||
	    !(w->batch = calloc(BATCH_MAX, sizeof(*w->batch))) ||
	    !(w->cands = calloc(BATCH_MAX, sizeof(*w->cands))) ||
	    !(w->specs = calloc(BATCH_MAX, sizeof(*w->specs))) ||
	    !(w->seen = calloc(BATCH_MAX, sizeof(*w->seen))) ||
	    sd_event_add_time(ev, &w->settle_timer, CLOCK_MONOTONIC, 0, 1000, on_settle, w) < 0 ||
	    sd_event_source_set_enabled(w->settle_timer, SD_EVENT_OFF) < 0 ||
	    sd_event_add_time(ev, &w->scan_src, CLOCK_MONOTONIC, 0, 1, on_scan, w) < 0 ||
	    sd_event_source_set_enabled(w->scan_src, SD_EVENT_OFF) < 0) {
		if (cause)
			*cause = strdup("cannot set up the watcher on the event loop");
		return hs_watcher_free(w);
	}
	/* Normal priority, bounded slices: at idle priority a scan would
	 * starve while any upload keeps its socket writable. */
	hs_watcher_reconfigure(w, cfg);
	if (!scanning(w)) /* nothing to scan: ready at once */
		scan_soon(w);
	return w;
}

struct hs_watcher *hs_watcher_free(struct hs_watcher *w)
{
	if (!w)
		return NULL;
	while (w->roots) {
		struct root *r = w->roots;
		w->roots = r->next;
		root_free(r);
	}
	for (size_t i = 0; i < w->n_batch; i++) {
		free((char *)w->batch[i].path);
		free((char *)w->batch[i].remote_name);
	}
	free(w->batch);
	for (size_t i = 0; i < w->n_cands; i++) {
		free((char *)w->cands[i].spec.path);
		free((char *)w->cands[i].spec.remote_name);
	}
	free(w->cands);
	free(w->specs);
	free(w->seen);
	hs_settle_free(w->settle);
	hs_after_run_free(w->after);
	sd_event_source_disable_unref(w->settle_timer);
	sd_event_source_disable_unref(w->scan_src);
	free(w);
	return NULL;
}

void hs_watcher_reconfigure(struct hs_watcher *w, const struct hs_config *cfg)
{
	struct root *kept = NULL, **tail = &kept;

	flush_candidates(w); /* both borrow folder paths from the old config */
	flush_batch(w);
	w->cfg = cfg;
	for (size_t i = 0; i < cfg->n_watches; i++) {
		const struct hs_watch *c = &cfg->watches[i];
		struct root **at = &w->roots, *r;

		while (*at && !(strcmp((*at)->conf->path, c->path) == 0 &&
				(*at)->conf->recursive == c->recursive))
			at = &(*at)->next;
		if ((r = *at)) { /* same folder: keep its watches */
			*at = r->next;
			r->conf = c;
		} else if (!(r = root_new(w, c))) {
			hs_log(LOG_ERR, "watch folder %s: out of memory", c->path);
			continue;
		} else if (w->ready_sent) {
			hs_log(LOG_NOTICE, "watching %s", c->path);
		}
		r->next = NULL;
		*tail = r;
		tail = &r->next;
	}
	while (w->roots) { /* no longer listed */
		struct root *r = w->roots;
		w->roots = r->next;
		hs_log(LOG_NOTICE, "no longer watching %s", r->conf->path);
		root_free(r);
	}
	w->roots = kept;
	if (w->after)
		hs_after_run_reconfigure(w->after, cfg);
	arm_settle(w);
}

void hs_watcher_stored(struct hs_watcher *w, const struct hs_job *job, int64_t size,
		       int64_t mtime_ns, int64_t inode)
{
	for (struct root *r = w->roots; r; r = r->next) {
		size_t len = strlen(r->conf->path);
		if (strcmp(job->watch_root, r->conf->path) != 0 ||
		    strncmp(job->path, r->conf->path, len) != 0 || job->path[len] != '/')
			continue;
		run_after(r, job->path, job->path + len + 1, size, mtime_ns, inode, job->id);
		return;
	}
}

void hs_watcher_foreach_scan(const struct hs_watcher *w,
			     void (*fn)(const struct hs_watch *conf, const struct hs_scan_tally *t,
					void *arg),
			     void *arg)
{
	for (const struct root *r = w->roots; r; r = r->next)
		fn(r->conf, &r->last, arg);
}

void hs_watcher_get_stats(const struct hs_watcher *w, struct hs_watcher_stats *ret)
{
	*ret = (struct hs_watcher_stats){.settling = hs_settle_count(w->settle),
					 .scanning = scanning(w),
					 .files_queued = w->files_queued};
	for (const struct root *r = w->roots; r; r = r->next) {
		ret->folders++;
		ret->missing += r->missing;
		ret->dirs += r->dirs;
		ret->unwatched += r->unwatched;
	}
}
