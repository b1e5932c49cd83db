/*
 * mirror: one run of the patient mirror (SPEC 1.2 and 4) on the sd-event
 * loop, asynchronous and cancellable. A run:
 *
 *   list     GET /patients?page=N&limit=page_size, one page after the
 *            other, until the page meta.total_pages names (read again from
 *            every page: the list may change while it is paged). Records
 *            go to staging as they arrive; one seen twice (pages shifted)
 *            is kept once.
 *   details  GET /patients/{id}, HS_MIRROR_PARALLEL at once, for:
 *            - records that were live but are missing from the list: only
 *              a 404 deletes them; a 200 keeps (and refreshes) them;
 *            - with fetch_details, records never fetched before, and the
 *              ones fetched longest ago, HS_MIRROR_REFRESH_PERCENT of the
 *              list but at least HS_MIRROR_REFRESH_MIN (so a daily run
 *              sees every record's detail fields again within 50 days).
 *   apply    one transaction: readers see the whole run or none of it.
 *   export   with mirror.export, every live record's JSON as a line of a
 *            file replaced atomically (temp file, fsync, rename, fsync of
 *            the directory), mode 0600.
 *
 * Example: 2,345 records at page_size 100 are 24 list pages; the first run
 * with fetch_details adds 2,345 detail requests, later runs 47 (2%) plus one
 * per record added or missing.
 *
 * Every request goes through hs_http in realm "records", so the rate
 * limiter paces them and a 429 holds the whole realm for its Retry-After.
 * Network errors, 5xx, 408 and 429 are retried per request after a
 * full-jitter backoff, up to HS_MIRROR_TRIES tries; a 401, any other error
 * status, or an answer that does not parse (wrong types, a missing id, a
 * body over the size cap) ends the run at once. Records are held in the
 * database, never in memory: memory does not grow with the data set.
 *
 * Logs name runs and counts only: never a record's fields, its id, a URL
 * with an id, or the key. A failed run is logged once at LOG_ERR with
 * MESSAGE_ID=HS_MSGID_MIRROR_FAILED and MIRROR_RUN=<run id>.
 *
 * cfg and http are borrowed: they must outlive the mirror, or be replaced
 * by hs_mirror_reconfigure(). The database is opened for the length of a
 * run (one writer at a time, across processes). The database calls block
 * the loop briefly (one fsync per page or detail answer); apply and export
 * block it for their whole duration.
 */
#ifndef HS_AGENT_MIRROR_H
#define HS_AGENT_MIRROR_H

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "agent/http.h"
#include "agent/mirror_db.h"
#include "conf/conf.h"

#define HS_MIRROR_PARALLEL	  4  /* detail requests in flight */
#define HS_MIRROR_TRIES		  8  /* tries of one request */
#define HS_MIRROR_REFRESH_PERCENT 2  /* of the list, detail-fetched again per run */
#define HS_MIRROR_REFRESH_MIN	  25 /* records, however short the list */
/*
 * What a run may stage, whatever the server says: staging shares its disk
 * with queue.db. The first list page fixes the pages a run reads (its
 * total_pages, plus a tenth for records added meanwhile); a server that
 * announces more than HS_MIRROR_MAX_RECORDS, keeps raising total_pages,
 * sends more records than a page holds or more than HS_MIRROR_MAX_STAGED
 * bytes, or leaves less than HS_MIRROR_MIN_FREE bytes free on the
 * database's file system fails the run; nothing of it is applied.
 *
 * Staging is not the whole cost. Apply copies staging into patients in one
 * transaction, so the WAL holds every page it writes until the checkpoint
 * has grown the database by them, and the export writes every live record
 * once more. Before apply, the run needs HS_MIRROR_APPLY_FACTOR bytes per
 * staged byte free on the database's file system, the export's estimate
 * (its old file's size plus the staged bytes) on the export's, and
 * HS_MIRROR_MIN_FREE on both beyond that; else it fails and nothing is
 * applied. Before the export, the export's exact size (a walk of the live
 * records) is checked the same way; a shortage then fails the export and
 * keeps the old file (the database has the run).
 *
 * The factor, measured on tmpfs (free space before apply and after it,
 * per byte of answer staged): 20,000 and 60,000 records on a first run of
 * list pages only 6.2 and 7.4 (8.2 counting the WAL room a run reuses);
 * 5,000 records with details 4.1; later runs 3.8 and 4.6. The export is
 * 0.6 to 1.4 bytes per staged byte.
 */
#define HS_MIRROR_MAX_RECORDS  2000000
#define HS_MIRROR_MAX_STAGED   (2LL * 1024 * 1024 * 1024)
#define HS_MIRROR_MIN_FREE     (64LL * 1024 * 1024)
#define HS_MIRROR_APPLY_FACTOR 8

struct hs_mirror;

struct hs_mirror_result {
	bool ok;
	const char *error;	  /* one line; NULL on success */
	struct hs_mirror_run run; /* its row in mirror_runs: id, counts */
};

/* Called once when a started run ends, as the mirror's last act: the
 * callback may start another run or free the mirror. res is valid during
 * the call only. */
typedef void (*hs_mirror_done_fn)(const struct hs_mirror_result *res, void *arg);

/* What `healsync status` shows while a run goes on. */
struct hs_mirror_progress {
	bool running;
	int64_t run_id;
	int64_t started_at;  /* Unix ms */
	const char *phase;   /* "listing", "details", "applying", "exporting" */
	int64_t page;	     /* list pages fetched ... */
	int64_t total_pages; /* ... of this many (0 before the first answer) */
	int64_t received;    /* list records received, duplicates included */
	int64_t details_done, details_total;
};

struct hs_mirror *hs_mirror_new(sd_event *ev, const struct hs_config *cfg, struct hs_http *http,
				char **cause);
/* Cancels a run in progress (no callback). Accepts NULL; returns NULL. */
struct hs_mirror *hs_mirror_free(struct hs_mirror *m);

/* Starts a run: opens the database and records the run, then returns; the
 * requests go out from the loop. Returns 0, or -1 with *cause and no
 * callback: a run is already going, the mirror section is missing, or the
 * database cannot be opened (another process is writing it). */
int hs_mirror_start(struct hs_mirror *m, hs_mirror_done_fn done, void *arg, char **cause);
/* Ends a run in progress at once, without a callback: it is recorded as
 * cancelled and the mirror keeps the last finished run. */
void hs_mirror_cancel(struct hs_mirror *m);
bool hs_mirror_running(const struct hs_mirror *m);
void hs_mirror_progress(const struct hs_mirror *m, struct hs_mirror_progress *ret);

/* A reloaded configuration (a new key): requests from now on use it. A run
 * in progress keeps its base URL, page size, database and export path. */
void hs_mirror_reconfigure(struct hs_mirror *m, const struct hs_config *cfg);

#endif
