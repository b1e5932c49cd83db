/*
 * settle: files that were written and must stay quiet before they count.
 *
 * A file enters when the watcher sees it written (closed after writing,
 * moved in, found by a scan); every later sign of activity pushes its
 * deadline back. When the deadline passes, the watcher looks at the file
 * again: if its size and mtime are what was seen last, it is ready; if not,
 * it waits one more settle period with the new facts. So a file counts as
 * written after `settle` of quiet with size and mtime unchanged.
 *
 * Entries live in a hash by path and a binary heap by deadline: each call
 * is O(log n), so a burst of a hundred thousand files stays cheap. Pure
 * logic: times are passed in, nothing here reads the clock or the disk.
 */
#ifndef HS_AGENT_SETTLE_H
#define HS_AGENT_SETTLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hs_pending {
	char *path;	  /* absolute; owned by the entry */
	unsigned root;	  /* the watch folder it belongs to (the caller's index) */
	int64_t deadline; /* when to look again */
	bool known;	  /* size and mtime_ns below were seen */
	int64_t size, mtime_ns;
	size_t heap_at; /* private */
};

struct hs_settle;

struct hs_settle *hs_settle_new(void);
/* Frees every entry. Accepts NULL; returns NULL. */
struct hs_settle *hs_settle_free(struct hs_settle *s);

/* Adds path, or pushes its deadline to `deadline` if it is already
 * waiting (never earlier). size/mtime_ns are the facts seen now when
 * known, else the next look compares against nothing and waits once more.
 * Returns 0, or -1 when out of memory. */
int hs_settle_touch(struct hs_settle *s, const char *path, unsigned root, int64_t deadline,
		    bool known, int64_t size, int64_t mtime_ns);
/* Pushes the deadline of a waiting path (more writes); false if not waiting. */
bool hs_settle_bump(struct hs_settle *s, const char *path, int64_t deadline);

/* The entry due soonest if its deadline is <= now, taken out of the set:
 * the caller owns it and either frees it or gives it back with
 * hs_settle_requeue(). NULL when none is due. */
struct hs_pending *hs_settle_pop(struct hs_settle *s, int64_t now);
/* Puts a popped entry back with a new deadline and facts. If the path was
 * touched again since it was popped, the two are merged. */
void hs_settle_requeue(struct hs_settle *s, struct hs_pending *p, int64_t deadline, int64_t size,
		       int64_t mtime_ns);
void hs_pending_free(struct hs_pending *p);

/* The earliest deadline, or -1 when nothing waits. */
int64_t hs_settle_next(const struct hs_settle *s);
size_t hs_settle_count(const struct hs_settle *s);
/* Drops every entry of root (the folder vanished or was reloaded away). */
void hs_settle_drop_root(struct hs_settle *s, unsigned root);

#endif
