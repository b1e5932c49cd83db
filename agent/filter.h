/*
 * filter: whether a file in a watched folder is sent, and if not, why.
 *
 * One decision for the daemon's watcher (watch.c) and for `healsync scan`
 * (cmd-scan.c), so what scan says is what the daemon does. The checks, in
 * this order, the first that fails giving the reason:
 *
 *   temporary     a temporary file that editors and copy tools leave while
 *                 they write (`*~`, `.#*`, `#*#`, `*.swp`, `*.part`,
 *                 `*.crdownload`, `.~lock.*`): it becomes a real file by a
 *                 rename, which the watcher sees
 *   excluded      matches one of `exclude` (which one: *ret_rule)
 *   not_included  `include` is not empty and it matches none of it
 *   too_small     smaller than `min_size`
 *   too_large     larger than `max_size`
 *   not_before    modified before `not_before`
 *   too_old       modified longer ago than `max_age`
 *
 * For example, with include ["*.pdf"], max_age "30d" and now 2026-12-06, a
 * report.pdf written 2026-10-01 is HS_REASON_TOO_OLD, notes.txt of today
 * HS_REASON_NOT_INCLUDED, and report.pdf of yesterday HS_REASON_SEND. What
 * happens to a file that passes is for the settle time (hs_filter_settled)
 * and the queue to say: the other reasons below are theirs, listed here so
 * that one list of names serves the journal, status.json and scan --json.
 *
 * A directory is skipped, with all below it, when its name matches
 * `exclude` (".*" keeps `.git` out); include is for files. A pattern
 * without "/" matches the name alone; one with "/" matches the path
 * relative to the watch folder, "*" not crossing "/" (fnmatch(3) with
 * FNM_PATHNAME). Pure functions: the time is an argument.
 */
#ifndef HS_AGENT_FILTER_H
#define HS_AGENT_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"

enum hs_reason {
	HS_REASON_SEND,	       /* passes: a new job (unless the queue knows it) */
	HS_REASON_QUEUED,      /* the queue already holds a job for these facts */
	HS_REASON_STORED,      /* the server already holds exactly this file */
	HS_REASON_SETTLING,    /* written less than `settle` ago: not yet */
	HS_REASON_UNNAMEABLE,  /* its path is too long or has no remote name */
	HS_REASON_NOT_REGULAR, /* a symlink, socket, device: never followed or sent */
	HS_REASON_TEMPORARY,   /* the checks of hs_filter_decide, in order */
	HS_REASON_EXCLUDED,
	HS_REASON_NOT_INCLUDED,
	HS_REASON_TOO_SMALL,
	HS_REASON_TOO_LARGE,
	HS_REASON_NOT_BEFORE,
	HS_REASON_TOO_OLD,
	HS_REASON_COUNT
};

/* What is known of a file from stat(2). */
struct hs_file_facts {
	int64_t size;
	int64_t mtime_ns;
};

/*
 * rel: path relative to the watch folder; name: its last component.
 * facts NULL: the name checks only (an inotify event, before any stat).
 * now_ms: the wall clock. *ret_rule (may be NULL) gets the exclude pattern
 * that matched, borrowed from w, else NULL. Returns HS_REASON_SEND or one of
 * HS_REASON_TEMPORARY .. HS_REASON_TOO_OLD.
 */
enum hs_reason hs_filter_decide(const struct hs_watch *w, const char *rel, const char *name,
				const struct hs_file_facts *facts, int64_t now_ms,
				const char **ret_rule);

/* Whether a file modified at mtime_ns has been quiet for `settle` at now_ms:
 * a scan queues it now, else it waits for the settle timer. */
bool hs_filter_settled(const struct hs_watch *w, int64_t mtime_ns, int64_t now_ms);

/* The name checks alone: hs_filter_decide(w, rel, name, NULL, ...) == SEND. */
bool hs_filter_file(const struct hs_watch *w, const char *rel, const char *name);
/* Whether a directory is listed; *ret_rule as above when it is not. */
bool hs_filter_dir_rule(const struct hs_watch *w, const char *rel, const char *name,
			const char **ret_rule);
bool hs_filter_dir(const struct hs_watch *w, const char *rel, const char *name);

/* The stable name of a reason, for JSON and journal fields: "send",
 * "queued", "stored", "settling", "unnameable", "not_regular", "temporary",
 * "excluded",
 * "not_included", "too_small", "too_large", "not_before", "too_old". */
const char *hs_reason_name(enum hs_reason r);
/* The same for people: "already stored", "too old", "not included"... */
const char *hs_reason_text(enum hs_reason r);
/* The folder's setting behind a reason, for a reader to check:
 * "max_age 30d", "include *.pdf, *.hl7", "settle 2s"; "" when there is
 * none (send, queued, stored, unnameable, not_regular, temporary, or the
 * setting is off). Writes buf (len > 0). */
const char *hs_reason_rule(const struct hs_watch *w, enum hs_reason r, char *buf, size_t len);

#endif
