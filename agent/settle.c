/*
 * settle: a hash (path -> entry, chained) beside a min-heap (deadline).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "agent/settle.h"

struct entry {
	struct hs_pending p;
	struct entry *next; /* hash chain */
	uint64_t hash;
};

struct hs_settle {
	struct entry **buckets;
	size_t n_buckets; /* a power of two */
	struct entry **heap;
	size_t n, alloc;
};

static uint64_t hash_path(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

struct hs_settle *hs_settle_new(void)
{
	struct hs_settle *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->n_buckets = 64;
	s->buckets = calloc(s->n_buckets, sizeof(*s->buckets));
	if (!s->buckets) {
		free(s);
		return NULL;
	}
	return s;
}

void hs_pending_free(struct hs_pending *p)
{
	if (p) {
		free(p->path);
		free(p); /* p is the first member of its entry */
	}
}

struct hs_settle *hs_settle_free(struct hs_settle *s)
{
	if (!s)
		return NULL;
	for (size_t i = 0; i < s->n; i++)
		hs_pending_free(&s->heap[i]->p);
	free(s->heap);
	free(s->buckets);
	free(s);
	return NULL;
}

/* ---- the heap ------------------------------------------------------------- */

static void heap_set(struct hs_settle *s, size_t i, struct entry *e)
{
	s->heap[i] = e;
	e->p.heap_at = i;
}

static void sift_up(struct hs_settle *s, size_t i)
{
	struct entry *e = s->heap[i];

	while (i > 0) {
		size_t up = (i - 1) / 2;
		if (s->heap[up]->p.deadline <= e->p.deadline)
			break;
		heap_set(s, i, s->heap[up]);
		i = up;
	}
	heap_set(s, i, e);
}

static void sift_down(struct hs_settle *s, size_t i)
{
	struct entry *e = s->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= s->n)
			break;
		if (c + 1 < s->n && s->heap[c + 1]->p.deadline < s->heap[c]->p.deadline)
			c++;
		if (e->p.deadline <= s->heap[c]->p.deadline)
			break;
		heap_set(s, i, s->heap[c]);
		i = c;
	}
	heap_set(s, i, e);
}

static int heap_push(struct hs_settle *s, struct entry *e)
{
	if (s->n == s->alloc) {
		size_t alloc = s->alloc ? 2 * s->alloc : 64;
		struct entry **h = realloc(s->heap, alloc * sizeof(*h));
		if (!h)
			return -1;
		s->heap = h;
		s->alloc = alloc;
	}
	heap_set(s, s->n++, e);
	sift_up(s, s->n - 1);
	return 0;
}

static void heap_remove(struct hs_settle *s, size_t i)
{
	struct entry *last = s->heap[--s->n];

	if (i == s->n)
		return;
	heap_set(s, i, last);
	sift_down(s, i);
	sift_up(s, last->p.heap_at);
}

/* ---- the hash ------------------------------------------------------------- */

static struct entry **slot(const struct hs_settle *s, const char *path, uint64_t h)
{
	struct entry **e = &s->buckets[h & (s->n_buckets - 1)];

	while (*e && ((*e)->hash != h || strcmp((*e)->p.path, path) != 0))
		e = &(*e)->next;
	return e;
}

static void grow(struct hs_settle *s)
{
	size_t n = s->n_buckets * 2;
	struct entry **b = calloc(n, sizeof(*b));

	if (!b)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < s->n_buckets; i++)
		for (struct entry *e = s->buckets[i], *next; e; e = next) {
			next = e->next;
			e->next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	free(s->buckets);
	s->buckets = b;
	s->n_buckets = n;
}

static void unhash(struct hs_settle *s, struct entry *e)
{
	struct entry **at = slot(s, e->p.path, e->hash);

	if (*at == e)
		*at = e->next;
	e->next = NULL;
}

/* Links e in both structures; on failure e is left unlinked. */
static int insert(struct hs_settle *s, struct entry *e)
{
	struct entry **at;

	if (heap_push(s, e) != 0)
		return -1;
	if (s->n > s->n_buckets)
		grow(s);
	at = slot(s, e->p.path, e->hash);
	e->next = NULL;
	*at = e;
	return 0;
}

/* ---- the interface ---------------------------------------------------------- */

int hs_settle_touch(struct hs_settle *s, const char *path, unsigned root, int64_t deadline,
		    bool known, int64_t size, int64_t mtime_ns)
{
	uint64_t h = hash_path(path);
	struct entry *e = *slot(s, path, h);

	if (e) {
		if (deadline > e->p.deadline) {
			e->p.deadline = deadline;
			sift_down(s, e->p.heap_at);
		}
		e->p.known = known;
		e->p.size = size;
		e->p.mtime_ns = mtime_ns;
		e->p.root = root;
		return 0;
	}
	if (!(e = calloc(1, sizeof(*e))) || !(e->p.path = strdup(path))) {
		free(e);
		return -1;
	}
	e->hash = h;
	e->p.root = root;
	e->p.deadline = deadline;
	e->p.known = known;
	e->p.size = size;
	e->p.mtime_ns = mtime_ns;
	if (insert(s, e) != 0) {
		hs_pending_free(&e->p);
		return -1;
	}
	return 0;
}

bool hs_settle_bump(struct hs_settle *s, const char *path, int64_t deadline)
{
	struct entry *e = *slot(s, path, hash_path(path));

	if (!e)
		return false;
	if (deadline > e->p.deadline) {
		e->p.deadline = deadline;
		sift_down(s, e->p.heap_at);
	}
	return true;
}

struct hs_pending *hs_settle_pop(struct hs_settle *s, int64_t now)
{
	struct entry *e;

	if (s->n == 0 || s->heap[0]->p.deadline > now)
		return NULL;
	e = s->heap[0];
	heap_remove(s, 0);
	unhash(s, e);
	return &e->p;
}

void hs_settle_requeue(struct hs_settle *s, struct hs_pending *p, int64_t deadline, int64_t size,
		       int64_t mtime_ns)
{
	struct entry *e = (struct entry *)p, *again = *slot(s, p->path, e->hash);

	if (again) { /* touched since the pop: it already waits */
		if (deadline > again->p.deadline) {
			again->p.deadline = deadline;
			sift_down(s, again->p.heap_at);
		}
		hs_pending_free(p);
		return;
	}
	p->deadline = deadline;
	p->known = true;
	p->size = size;
	p->mtime_ns = mtime_ns;
	if (insert(s, e) != 0)
		hs_pending_free(p); /* out of memory: the next rescan finds it */
}

int64_t hs_settle_next(const struct hs_settle *s)
{
	return s->n ? s->heap[0]->p.deadline : -1;
}

size_t hs_settle_count(const struct hs_settle *s)
{
	return s->n;
}

void hs_settle_drop_root(struct hs_settle *s, unsigned root)
{
	size_t kept = 0;

	for (size_t i = 0; i < s->n; i++) {
		struct entry *e = s->heap[i];
		if (e->p.root == root) {
			unhash(s, e);
			hs_pending_free(&e->p);
		} else {
			heap_set(s, kept++, e);
		}
	}
	s->n = kept;
	for (size_t i = kept / 2; i-- > 0;)
		sift_down(s, i);
}
