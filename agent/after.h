/*
 * after: what happens to a file once the server confirmed storing it, as
 * its watch folder's `after_upload` says: keep it, delete it, or move it to
 * move_dir under the same relative path.
 *
 * Only the file that was checked is acted on:
 *  - The file and the folders above it are opened below the watch folder
 *    (and move_dir) without following symlinks (beneath.h); a folder
 *    swapped for a symlink makes the action fail, nothing outside is
 *    touched. Everything after that goes through descriptors.
 *  - Nothing is done to a file that is no longer exactly what was stored
 *    (its size, mtime or inode differ): it changed after the upload and
 *    will be sent again.
 *  - Delete and move first rename the name to a private one in the same
 *    folder (".healsync-del-*"), then check that this is still the checked
 *    inode, unchanged, and that nobody has it open for writing (a read
 *    lease, hs_writer_check); only then is it unlinked or moved. A new
 *    version saved over the name meanwhile is put back (under a numbered
 *    name if the name was taken again) and is sent like any new file. A
 *    file still open for writing is left alone; the next rescan tries
 *    again.
 *
 * A move never overwrites: a name that is taken gets a number ("scan.pdf"
 * -> "scan.1.pdf"). Across file systems the file is copied in slices on
 * the event loop (HS_AFTER_PENDING; done() reports the end): into a
 * ".healsync-move-*" temporary in the destination folder, setuid and
 * setgid bits dropped, mtime kept, synced, renamed into place, the folder
 * synced, and only then is the original removed. Temporaries left by a
 * crash are removed the next time a move goes to that folder, and a copy
 * already in place (one of the candidate names holding the original's very
 * bytes, compared in slices on the loop) is not made again, so a restart
 * neither leaves litter nor duplicates. Same size and mtime alone never
 * make a copy: an older version often has both (cp -p, rsync -t,
 * whole-second times), and the new one is copied beside it.
 *
 * Crash safety as a whole comes from the caller: the action runs after the
 * queue recorded the upload, and a scan that finds a file the ledger says is
 * stored runs it again. A scan that finds a private name a crash left puts
 * it back first when the ledger holds its very facts (hs_after_restore).
 */
#ifndef HS_AGENT_AFTER_H
#define HS_AGENT_AFTER_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "conf/conf.h"

/* The private name's prefix (delete, and the end of a move). */
#define HS_AFTER_PRIVATE_PREFIX ".healsync-del-"

enum {
	HS_AFTER_PENDING = 2, /* a copy across file systems runs; done() ends it */
	HS_AFTER_DONE = 1,    /* deleted or moved (*ret_dest says where) */
	HS_AFTER_NOTHING = 0, /* keep, or the file changed, vanished or is in use */
	HS_AFTER_FAILED = -1, /* *cause says why; the file is where it was */
};

struct hs_after;

/* A failure that the system refused (EACCES, EPERM, EROFS): where, so that
 * the caller can find out why (refusal.h) and say the fix once per folder.
 * The folder that refused is the file's own for a rename or unlink there,
 * else the destination folder (or the one a folder could not be made in). */
struct hs_after_refusal {
	int err;	    /* 0: the failure was no refusal */
	bool dest;	    /* in the move folder's tree, not the watch folder's */
	long owner;	    /* the file's owner (uid) */
	char dir[PATH_MAX]; /* the folder that refused (cut short past PATH_MAX) */
	char top[PATH_MAX]; /* the configured folder above it */
};

/* The end of a pending move: rc is HS_AFTER_DONE (dest says where),
 * HS_AFTER_NOTHING or HS_AFTER_FAILED (cause says why; refusal, NULL when
 * it was no refusal, where the system refused). */
typedef void (*hs_after_done_fn)(const char *path, int rc, const char *dest, const char *cause,
				 const struct hs_after_refusal *refusal, void *arg);

struct hs_after *hs_after_new(sd_event *ev, hs_after_done_fn done, void *arg);
/* Abandons the copies under way (their temporaries are removed; the
 * originals stay). Accepts NULL; returns NULL. */
struct hs_after *hs_after_free(struct hs_after *a);
/* Copies under way. */
unsigned hs_after_pending(const struct hs_after *a);

/* path: the file (for messages); rel: its path below w->path. *ret_dest
 * (may be NULL) gets the new path after a move; the caller frees it. The
 * watch's strings are copied: w may go away while a copy runs. On
 * HS_AFTER_FAILED, *ret_refusal (may be NULL) says where the system
 * refused, if it did (err 0 otherwise).
 *
 * Folders made below move_dir take the permission bits of the folder they
 * mirror (set with fchmod: the service's umask would mask mkdir's mode),
 * so that a move keeps who may read what; move_dir's own for a folder
 * whose mirror cannot be read. */
int hs_after_upload(struct hs_after *a, const struct hs_watch *w, const char *path, const char *rel,
		    int64_t size, int64_t mtime_ns, int64_t inode, char **ret_dest,
		    struct hs_after_refusal *ret_refusal, char **cause);

/* A ".healsync-del-*" file at rel that a crash left between the private
 * rename and the action's end, whose facts the ledger says were stored as
 * rel_orig (in the same folder): renamed back to rel_orig's name if that
 * is free, the facts still match and no one writes to it, so the action
 * can run again as configured. HS_AFTER_DONE when renamed; HS_AFTER_NOTHING
 * when it is not that file or the name is taken; HS_AFTER_FAILED (*cause
 * says why). */
int hs_after_restore(const struct hs_watch *w, const char *rel, const char *rel_orig, int64_t size,
		     int64_t mtime_ns, int64_t inode, char **cause);

#endif
