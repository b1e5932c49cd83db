/*
 * scan [--json]: what the watch folders would send now, and why every other
 * file would not, without sending anything.
 *
 * The same decision as the daemon's scans (filter.h), on the same facts:
 * the name, size and mtime from lstat, the time now, the settle time, and
 * what the queue knows (already queued, already stored), read from the
 * queue opened read-only. Nothing is queued, nothing is written in
 * state_dir, and no daemon is asked: this runs before the service is
 * started on a workstation with years of exports, and beside a running
 * daemon. One thing only the daemon can see: a file still open by its
 * writer. It is reported "send" here and waits for the writer there.
 *
 * Output, per folder, one entry per file (and per directory not entered),
 * sorted by path, then the totals per reason; --json prints one document
 * (docs/watch.md). Paths that are not valid UTF-8 or hold control
 * characters are shown with those bytes as \xNN, and a backslash as \\.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/beneath.h"
#include "agent/cli.h"
#include "agent/filter.h"
#include "agent/remote_name.h"
#include "conf/units.h"

#define SEEN_BATCH 1024 /* files per read transaction of the queue */

struct entry {
	char *rel;	   /* relative to the folder */
	char *remote;	   /* NULL: no remote name */
	const char *match; /* the exclude pattern that matched, borrowed */
	bool dir;	   /* a directory not entered */
	enum hs_reason why;
	int64_t size, mtime_ns, inode;
};

struct folder {
	const struct hs_watch *conf;
	struct entry *e;
	size_t n, cap;
	const char *problem; /* the folder could not be listed at all */
	int problem_errno;
	size_t unlisted; /* directories below that could not be listed */
	uint64_t files, dirs_excluded;
	uint64_t count[HS_REASON_COUNT];
};

struct scan {
	struct hs_queue *q; /* NULL: no queue yet, or unreadable */
	char *queue_error;  /* why it could not be read; NULL when fine */
	int64_t now;
	bool out_of_memory;
};

/* "a/b" from rel "a" and name "b"; NULL when memory ran out. */
static char *join(const char *rel, const char *name)
{
	char *s;

	if (asprintf(&s, "%s%s%s", rel, rel[0] ? "/" : "", name) < 0)
		return NULL;
	return s;
}

static struct entry *add(struct scan *sc, struct folder *f)
{
	if (f->n == f->cap) {
		size_t cap = f->cap ? 2 * f->cap : 256;
		struct entry *e = realloc(f->e, cap * sizeof(*e));

		if (!e) {
			sc->out_of_memory = true;
			return NULL;
		}
		f->e = e;
		f->cap = cap;
	}
	f->e[f->n] = (struct entry){0};
	return &f->e[f->n++];
}

/* Lists rel_dir and what is below it (when the folder is recursive). A
 * directory's files come out in readdir's order; they are sorted later. */
static void list_dir(struct scan *sc, struct folder *f, const char *rel_dir)
{
	const struct hs_watch *w = f->conf;
	int fd = hs_beneath_dir(w->path, rel_dir, false);
	struct dirent *de;
	DIR *d;

	if (fd < 0 || !(d = fdopendir(fd))) {
		int err = errno;

		if (fd >= 0)
			close(fd);
		if (!rel_dir[0]) {
			f->problem = "cannot be listed";
			f->problem_errno = err;
		} else if (err != ENOENT) { /* gone since it was listed: nothing lost */
			hs_cli_error("cannot list %s/%s: %s; the files below it are not in this "
				     "scan",
				     w->path, rel_dir, strerror(err));
			f->unlisted++;
		}
		return;
	}
	while ((errno = 0, de = readdir(d))) {
		struct entry *e;
		struct stat st;
		char *rel;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (!(rel = join(rel_dir, de->d_name))) {
			sc->out_of_memory = true;
			break;
		}
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			free(rel); /* gone since it was listed */
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			/* As the watcher: a folder that is not recursive has
			 * no subfolders to it. */
			const char *match = NULL;

			if (!w->recursive) {
				free(rel);
			} else if (hs_filter_dir_rule(w, rel, de->d_name, &match)) {
				list_dir(sc, f, rel);
				free(rel);
			} else if ((e = add(sc, f))) {
				*e = (struct entry){.rel = rel,
						    .dir = true,
						    .why = HS_REASON_EXCLUDED,
						    .match = match};
				f->dirs_excluded++;
			} else {
				free(rel);
			}
			continue;
		}
		if (!(e = add(sc, f))) {
			free(rel);
			break;
		}
		f->files++;
		*e = (struct entry){.rel = rel,
				    .size = st.st_size,
				    .mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 +
						st.st_mtim.tv_nsec,
				    .inode = (int64_t)st.st_ino};
		e->remote = hs_remote_name(w->remote_prefix, rel);
		if (!S_ISREG(st.st_mode)) {
			e->why = HS_REASON_NOT_REGULAR;
			continue;
		}
		struct hs_file_facts facts = {e->size, e->mtime_ns};
		e->why = hs_filter_decide(w, rel, de->d_name, &facts, sc->now, &e->match);
		if (e->why != HS_REASON_SEND)
			continue;
		/* In the watcher's order: the path, the settle time, the name. */
		if (strlen(w->path) + 1 + strlen(rel) >= PATH_MAX)
			e->why = HS_REASON_UNNAMEABLE;
		else if (!hs_filter_settled(w, e->mtime_ns, sc->now))
			e->why = HS_REASON_SETTLING;
		else if (!e->remote)
			e->why = HS_REASON_UNNAMEABLE;
	}
	if (errno)
		hs_cli_error("reading %s%s%s: %s; the listing is incomplete", w->path,
			     rel_dir[0] ? "/" : "", rel_dir, strerror(errno));
	closedir(d);
}

/* What the queue says of the files that would be sent: already queued, or
 * already stored. Read in batches, each one read transaction. */
static void ask_queue(struct scan *sc, struct folder *f)
{
	struct hs_job_spec specs[SEEN_BATCH];
	struct entry *which[SEEN_BATCH];
	enum hs_seen seen[SEEN_BATCH];
	char *paths[SEEN_BATCH], *cause = NULL;
	size_t n = 0;

	if (!sc->q)
		return;
	for (size_t i = 0; i <= f->n && sc->q; i++) {
		struct entry *e = i < f->n ? &f->e[i] : NULL;

		if (e && e->why == HS_REASON_SEND) {
			if (asprintf(&paths[n], "%s/%s", f->conf->path, e->rel) < 0) {
				sc->out_of_memory = true;
				break;
			}
			specs[n] = (struct hs_job_spec){.path = paths[n],
							.watch_root = f->conf->path,
							.remote_name = e->remote,
							.size = e->size,
							.mtime_ns = e->mtime_ns,
							.inode = e->inode};
			which[n++] = e;
		}
		if (n == SEEN_BATCH || (!e && n)) {
			if (hs_queue_seen_many(sc->q, specs, n, seen, &cause) != HS_Q_OK) {
				/* Said once; what follows is reported without it. */
				if (asprintf(&sc->queue_error, "%s",
					     cause ? cause : "out of memory") < 0)
					sc->queue_error = NULL;
				sc->q = hs_queue_close(sc->q);
			} else {
				for (size_t k = 0; k < n; k++)
					which[k]->why = seen[k] == HS_SEEN_STORED ? HS_REASON_STORED
							: seen[k] == HS_SEEN_PENDING
							    ? HS_REASON_QUEUED
							    : HS_REASON_SEND;
			}
			free(cause);
			cause = NULL;
			for (size_t k = 0; k < n; k++)
				free(paths[k]);
			n = 0;
		}
	}
	for (size_t k = 0; k < n; k++)
		free(paths[k]);
}

static int by_rel(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->rel, ((const struct entry *)b)->rel);
}

/* The queue, read-only. No queue.db yet is no error: nothing was queued or
 * stored, as on the first night. Anything else unreadable is one line,
 * and the scan goes on without telling queued and stored files apart. */
static void open_queue(struct scan *sc, const struct hs_config *cfg)
{
	char *path = NULL, *cause = NULL;

	if (asprintf(&path, "%s/queue.db", cfg->state_dir) < 0) {
		sc->out_of_memory = true;
		return;
	}
	if (access(path, F_OK) != 0 && errno == ENOENT) {
		free(path);
		return;
	}
	if (hs_queue_open_read(path, &sc->q, &cause) != HS_Q_OK) {
		if (asprintf(&sc->queue_error, "%s: %s", path, cause ? cause : "out of memory") < 0)
			sc->queue_error = NULL;
		sc->q = NULL;
	}
	free(cause);
	free(path);
}

/* ---- output ------------------------------------------------------------ */

/* Bytes a terminal or a JSON string can show as they are: valid UTF-8
 * without control characters. The rest as \xNN, a backslash as \\. */
static char *shown(const char *s)
{
	size_t len = strlen(s), o = 0;
	char *out = malloc(4 * len + 1);
	const unsigned char *p = (const unsigned char *)s;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len;) {
		unsigned char c = p[i];
		size_t n = c < 0x80		? 1
			   : (c & 0xe0) == 0xc0 ? 2
			   : (c & 0xf0) == 0xe0 ? 3
			   : (c & 0xf8) == 0xf0 ? 4
						: 0;
		bool ok = n > 0 && i + n <= len && !(n == 2 && c < 0xc2) && !(n == 4 && c > 0xf4);

		for (size_t k = 1; ok && k < n; k++)
			ok = (p[i + k] & 0xc0) == 0x80;
		if (ok && n == 3)
			ok = !(c == 0xe0 && p[i + 1] < 0xa0) && !(c == 0xed && p[i + 1] >= 0xa0);
		if (ok && n == 4)
			ok = !(c == 0xf0 && p[i + 1] < 0x90) && !(c == 0xf4 && p[i + 1] >= 0x90);
		if (ok && n == 1 && (c < 0x20 || c == 0x7f))
			ok = false;
		if (ok && c == '\\') {
			out[o++] = '\\';
			out[o++] = '\\';
			i++;
		} else if (ok) {
			memcpy(out + o, p + i, n);
			o += n;
			i += n;
		} else {
			o += (size_t)sprintf(out + o, "\\x%02x", c);
			i++;
		}
	}
	out[o] = '\0';
	return out;
}

/* The setting behind an entry's reason: its own pattern when excluded. */
static const char *entry_rule(const struct folder *f, const struct entry *e, char *buf, size_t len)
{
	if (e->why == HS_REASON_EXCLUDED && e->match) {
		snprintf(buf, len, "exclude %s", e->match);
		return buf;
	}
	return hs_reason_rule(f->conf, e->why, buf, len);
}

static const char *label(enum hs_reason r)
{
	return r == HS_REASON_SEND ? "send" : hs_reason_text(r);
}

static void print_counts(const struct hs_watch *w, uint64_t files, const uint64_t *count,
			 uint64_t dirs_excluded)
{
	char num[32], rule[512];

	printf("%s file%s", hs_format_count(files, num, sizeof(num)), files == 1 ? "" : "s");
	for (int r = 0; r < HS_REASON_COUNT; r++) {
		if (!count[r] && r != HS_REASON_SEND)
			continue;
		if (w)
			hs_reason_rule(w, (enum hs_reason)r, rule, sizeof(rule));
		else
			rule[0] = '\0';
		printf(", %s %s%s%s%s", hs_format_count(count[r], num, sizeof(num)),
		       r == HS_REASON_SEND ? "to send" : hs_reason_text((enum hs_reason)r),
		       rule[0] ? " (" : "", rule, rule[0] ? ")" : "");
	}
	if (dirs_excluded)
		printf("; %s folder%s excluded%s%s%s",
		       hs_format_count(dirs_excluded, num, sizeof(num)),
		       dirs_excluded == 1 ? "" : "s", w ? " (" : "",
		       w ? hs_reason_rule(w, HS_REASON_EXCLUDED, rule, sizeof(rule)) : "",
		       w ? ")" : "");
	printf("\n");
}

static void print_folder(const struct folder *f)
{
	char rule[512];

	printf("%s:\n", f->conf->path);
	if (f->problem) {
		printf("  %s: %s\n", f->problem, strerror(f->problem_errno));
		return;
	}
	for (size_t i = 0; i < f->n; i++) {
		const struct entry *e = &f->e[i];
		char *path = shown(e->rel), *remote = e->remote ? shown(e->remote) : NULL;

		entry_rule(f, e, rule, sizeof(rule));
		printf("  %-18s %s%s", label(e->why), path ? path : "?", e->dir ? "/" : "");
		if (e->why == HS_REASON_SEND || e->why == HS_REASON_QUEUED ||
		    e->why == HS_REASON_SETTLING)
			printf(" -> %s", remote ? remote : "?");
		if (rule[0])
			printf("  (%s)", rule);
		printf("\n");
		free(path);
		free(remote);
	}
	printf("scan of %s: ", f->conf->path);
	print_counts(f->conf, f->files, f->count, f->dirs_excluded);
}

static json_t *counts_json(const uint64_t *count)
{
	json_t *o = json_object();

	for (int r = 0; o && r < HS_REASON_COUNT; r++)
		json_object_set_new(o, hs_reason_name((enum hs_reason)r),
				    json_integer((json_int_t)count[r]));
	return o;
}

static json_t *folder_json(const struct folder *f)
{
	json_t *o, *list = json_array(), *rules = json_object();
	char rule[512], *path = shown(f->conf->path);

	for (int r = 0; rules && r < HS_REASON_COUNT; r++)
		if (hs_reason_rule(f->conf, (enum hs_reason)r, rule, sizeof(rule))[0])
			json_object_set_new(rules, hs_reason_name((enum hs_reason)r),
					    json_string(rule));
	for (size_t i = 0; list && i < f->n; i++) {
		const struct entry *e = &f->e[i];
		char *rel = shown(e->rel);

		entry_rule(f, e, rule, sizeof(rule));
		json_array_append_new(
		    list, e->dir ? json_pack("{s:s?, s:b, s:s, s:s?}", "path", rel, "directory", 1,
					     "reason", hs_reason_name(e->why), "rule",
					     rule[0] ? rule : NULL)
				 : json_pack("{s:s?, s:s?, s:I, s:I, s:s, s:s?, s:b}", "path", rel,
					     "remote_name", e->remote, "size", (json_int_t)e->size,
					     "mtime", (json_int_t)(e->mtime_ns / 1000000), "reason",
					     hs_reason_name(e->why), "rule", rule[0] ? rule : NULL,
					     "send", e->why == HS_REASON_SEND));
		free(rel);
	}
	o = json_pack("{s:s?, s:s, s:s?, s:I, s:o, s:o, s:I, s:I, s:o}", "path", path,
		      "remote_prefix", f->conf->remote_prefix, "error",
		      f->problem ? strerror(f->problem_errno) : NULL, "files", (json_int_t)f->files,
		      "counts", counts_json(f->count), "rules", rules ? rules : json_object(),
		      "dirs_excluded", (json_int_t)f->dirs_excluded, "dirs_unlisted",
		      (json_int_t)f->unlisted, "entries", list ? list : json_array());
	free(path);
	return o;
}

int hs_cmd_scan(struct hs_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {NULL, 0, NULL, 0},
	};
	struct scan sc = {.now = hs_wall_ms()};
	struct folder *folders = NULL;
	uint64_t total[HS_REASON_COUNT] = {0}, files = 0, dirs = 0;
	bool as_json = false;
	const struct hs_config *cfg;
	int c, rc = HS_EXIT_FAILURE;
	json_t *doc = NULL;

	while ((c = getopt_long(argc, argv, "+j", opts, NULL)) != -1) {
		if (c != 'j')
			return HS_EXIT_USAGE;
		as_json = true;
	}
	if (optind < argc) {
		hs_cli_error("usage: healsync scan [--json]");
		return HS_EXIT_USAGE;
	}
	cli->load_flags |= HS_CONFIG_NO_KEYS; /* it sends nothing */
	if (!(cfg = hs_cli_config(cli)))
		return HS_EXIT_CONFIG;
	if (cfg->n_watches == 0) {
		hs_cli_error("%s: no watch folders configured; nothing would be sent", cfg->path);
		return HS_EXIT_CONFIG;
	}
	/* Run by root: as the daemon's user, who owns state_dir, so that
	 * opening the queue cannot leave files there that the daemon cannot
	 * open, and the folders are seen as the daemon sees them. */
	if (hs_cli_become_state_owner(cfg) != 0)
		return HS_EXIT_FAILURE;
	if (!(folders = calloc(cfg->n_watches, sizeof(*folders)))) {
		hs_cli_error("out of memory");
		return HS_EXIT_FAILURE;
	}
	open_queue(&sc, cfg);
	for (size_t i = 0; i < cfg->n_watches && !sc.out_of_memory; i++) {
		struct folder *f = &folders[i];

		f->conf = &cfg->watches[i];
		list_dir(&sc, f, "");
		ask_queue(&sc, f);
		if (f->problem)
			hs_cli_error("watch folder %s: %s: %s", f->conf->path, f->problem,
				     strerror(f->problem_errno));
		qsort(f->e, f->n, sizeof(*f->e), by_rel);
		for (size_t k = 0; k < f->n; k++)
			if (!f->e[k].dir)
				f->count[f->e[k].why]++;
		for (int r = 0; r < HS_REASON_COUNT; r++)
			total[r] += f->count[r];
		files += f->files;
		dirs += f->dirs_excluded;
	}
	if (sc.out_of_memory) {
		hs_cli_error("out of memory");
		goto out;
	}
	if (sc.queue_error)
		hs_cli_error("cannot read the queue (%s); files already queued or stored are "
			     "reported as to send",
			     sc.queue_error);

	if (as_json) {
		json_t *list = json_array();

		for (size_t i = 0; list && i < cfg->n_watches; i++)
			json_array_append_new(list, folder_json(&folders[i]));
		doc = json_pack("{s:I, s:s, s:s?, s:o, s:{s:I, s:o, s:I}}", "generated_at",
				(json_int_t)sc.now, "queue",
				sc.queue_error ? "unreadable"
				: sc.q	       ? "read"
					       : "none",
				"queue_error", sc.queue_error, "folders",
				list ? list : json_array(), "totals", "files", (json_int_t)files,
				"counts", counts_json(total), "dirs_excluded", (json_int_t)dirs);
		if (!doc || json_dumpf(doc, stdout, JSON_INDENT(2)) != 0 || putchar('\n') == EOF)
			goto out;
	} else {
		for (size_t i = 0; i < cfg->n_watches; i++) {
			if (i)
				printf("\n");
			print_folder(&folders[i]);
		}
		if (cfg->n_watches > 1) {
			printf("\ntotal: ");
			print_counts(NULL, files, total, dirs);
		}
	}
	rc = fflush(stdout) == 0 ? HS_EXIT_OK : HS_EXIT_FAILURE;
out:
	for (size_t i = 0; i < cfg->n_watches; i++) {
		for (size_t k = 0; k < folders[i].n; k++) {
			free(folders[i].e[k].rel);
			free(folders[i].e[k].remote);
		}
		free(folders[i].e);
	}
	free(folders);
	free(sc.queue_error);
	hs_queue_close(sc.q);
	json_decref(doc);
	return rc;
}
