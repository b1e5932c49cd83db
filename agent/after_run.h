/*
 * after_run: the after-upload actions of the daemon, kept until they are
 * done.
 *
 * The watcher hands over every file the server stores (its job just ended,
 * or a scan found it stored). keep does nothing; delete and move run
 * through after.h. An action the system refuses is not forgotten: the job
 * stays done (the server holds the file), and the queue keeps the action
 * as pending (hs_queue_after_defer), which `healsync jobs` and `status`
 * show. It is tried again with a backoff (up to 10 s after the first
 * refusal, doubling to an hour, with jitter) and at once at every reload,
 * and also whenever a scan finds the file stored. An action that ends
 * (done, or the file changed or went away) clears it.
 *
 * The first refusal in a folder is explained in one journal line that
 * names the fix (refusal.h: the sandbox's ReadWritePaths= or the folder's
 * owner and modes), once per folder (per configured folder for the
 * sandbox), not per file: the files after it in that folder are logged at
 * debug level only. A reload, after which the fix may be in place, lets
 * each be said again.
 *
 * Nothing is deleted or moved that the ledger does not hold with the very
 * facts of the file on disk: a retry checks both before it acts.
 */
#ifndef HS_AGENT_AFTER_RUN_H
#define HS_AGENT_AFTER_RUN_H

#include <stdint.h>
#include <systemd/sd-event.h>

#include "conf/conf.h"
#include "queue/queue.h"

struct hs_after_run;

/* cfg and q must outlive it (cfg until the next reconfigure). NULL when
 * out of memory or the event loop refuses a timer. */
struct hs_after_run *hs_after_run_new(sd_event *ev, struct hs_queue *q,
				      const struct hs_config *cfg);
/* Abandons copies under way (they are found again by the next scan).
 * Accepts NULL; returns NULL. */
struct hs_after_run *hs_after_run_free(struct hs_after_run *r);

/* The server stores the file at path (rel below w->path) with these facts;
 * job_id: the job that stored it, 0 when a scan found it stored. */
void hs_after_run(struct hs_after_run *r, const struct hs_watch *w, const char *path,
		  const char *rel, int64_t size, int64_t mtime_ns, int64_t inode, int64_t job_id);

/* A reload: cfg replaces the configuration, every pending action is due at
 * once and each refusal is said again. */
void hs_after_run_reconfigure(struct hs_after_run *r, const struct hs_config *cfg);

#endif
