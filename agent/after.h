/*
 * after: what happens to a file once the server confirmed storing it, as
 * its watch folder's `after_upload` says: keep it, delete it, or move it to
 * move_dir under the same relative path.
 *
 * Nothing is done to a file that is no longer exactly what was stored (its
 * size, mtime or inode differ): it changed after the upload and will be
 * sent again. A move never overwrites: a name that is taken gets a number
 * ("scan.pdf" -> "scan.1.pdf"). Across file systems the file is copied,
 * synced and linked into place before the original is removed, so a crash
 * at any point leaves at least one whole copy.
 *
 * Crash safety as a whole comes from the caller: the action runs after the
 * queue recorded the upload, and a scan that finds a file the ledger says is
 * stored runs it again. Blocks on file I/O (a copy when moving across file
 * systems).
 */
#ifndef HS_AGENT_AFTER_H
#define HS_AGENT_AFTER_H

#include <stdint.h>

#include "conf/conf.h"

enum {
	HS_AFTER_DONE = 1,    /* deleted or moved (*ret_dest says where) */
	HS_AFTER_NOTHING = 0, /* keep, or the file changed or vanished */
	HS_AFTER_FAILED = -1, /* *cause says why; the file is where it was */
};

/* path: the file; rel: its path below w->path. *ret_dest (may be NULL) gets
 * the new path after a move; the caller frees it. */
int hs_after_upload(const struct hs_watch *w, const char *path, const char *rel, int64_t size,
		    int64_t mtime_ns, int64_t inode, char **ret_dest, char **cause);

#endif
