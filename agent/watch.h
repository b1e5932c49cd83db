/*
 * watch: the `watch` folders, from inotify events to jobs in the queue.
 *
 * Each folder has its own inotify instance on the event loop, so a queue
 * overflow names the folder to rescan. A file is a candidate when it was
 * closed after writing or moved in; it becomes a job once it stayed quiet
 * for `settle` with size and mtime unchanged (see settle.h), matches the
 * folder's filter (filter.h), and the queue does not already know exactly
 * this file (hs_queue_seen). Symlinks are never followed.
 *
 * Scans walk a folder in slices between other events, watching each
 * directory before listing it, so nothing written meanwhile is missed.
 * A scan lists first and queues after: what the listings found becomes
 * jobs in batches once every folder is listed. It does not look for
 * writers; the uploader does, on the descriptor it reads. Scans run:
 *  - at start and for each folder added by a reload: files that appeared
 *    while the daemon was down; files the ledger says are stored but that
 *    are still there get their after_upload action (a crash between the
 *    upload and the action);
 *  - for each directory created or moved in;
 *  - every `rescan` interval, and after an inotify queue overflow, to catch
 *    what inotify cannot see (network file systems, lost events).
 * Each full scan ends with one journal line counting every regular file it
 * saw by what became of it (filter.h: queued, already stored, too old...),
 * and keeps those counts for status.json. When the kernel runs out of watches, that is logged once
 * with the sysctl to raise, and the unwatched directories rely on the periodic rescan. A folder
 * that vanishes (deleted, unmounted) is looked for every few seconds and picked up again, with a
 * scan, when it is back.
 *
 * The watcher borrows the config, the queue and the loop; they must outlive
 * it (reconfigure before freeing an old config). Nothing here waits on the
 * network; directory reads and queue writes block briefly.
 */
#ifndef HS_AGENT_WATCH_H
#define HS_AGENT_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "agent/filter.h"
#include "conf/conf.h"
#include "queue/queue.h"

struct hs_watcher;

struct hs_watcher_hooks {
	void (*queued)(void *arg); /* jobs were added: wake the uploader */
	void (*ready)(void *arg);  /* every folder is watched and listed (once);
				    * the jobs for what was found follow */
	void *arg;
};

struct hs_watcher_stats {
	size_t folders;	       /* watch folders being watched */
	size_t missing;	       /* watch folders that do not exist now */
	size_t dirs;	       /* directories with an inotify watch */
	size_t unwatched;      /* directories only the rescan covers */
	size_t settling;       /* files waiting to be quiet */
	bool scanning;	       /* a scan is running */
	uint64_t files_queued; /* jobs added since start */
};

struct hs_watcher *hs_watcher_new(sd_event *ev, const struct hs_config *cfg, struct hs_queue *q,
				  const struct hs_watcher_hooks *hooks, char **cause);
/* Accepts NULL; returns NULL. */
struct hs_watcher *hs_watcher_free(struct hs_watcher *w);

/* A reload: folders no longer listed stop, new ones start with a scan, the
 * others keep their watches and take the new settings. */
void hs_watcher_reconfigure(struct hs_watcher *w, const struct hs_config *cfg);

/* The server confirmed it stores job's file, read with these facts: runs
 * its folder's after_upload. */
void hs_watcher_stored(struct hs_watcher *w, const struct hs_job *job, int64_t size,
		       int64_t mtime_ns, int64_t inode);

void hs_watcher_get_stats(const struct hs_watcher *w, struct hs_watcher_stats *ret);

/* What one full scan of a folder found. */
struct hs_scan_tally {
	int64_t at;		     /* wall ms when it ended; 0: none finished yet */
	uint64_t files;		     /* regular files (and other entries) seen */
	uint64_t n[HS_REASON_COUNT]; /* by what became of them; SEND: queued */
	uint64_t dirs_excluded;	     /* directories not entered (exclude) */
};

/* Calls fn for each watch folder with its last full scan's counts. */
void hs_watcher_foreach_scan(const struct hs_watcher *w,
			     void (*fn)(const struct hs_watch *conf, const struct hs_scan_tally *t,
					void *arg),
			     void *arg);

#endif
