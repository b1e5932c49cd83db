/*
 * fleet: a deterministic discrete-event simulation of a fleet of agents
 * sharing one Records API and one Upload API, to see what the fleet does
 * to the servers at boot, at a first install, during an outage of the
 * Upload API and at rate-limit resets.
 *
 * Every agent runs the daemon's own pure modules, unchanged: the schedule
 * (conf/cron.c, agent/mirror_when.c), the rate limiter and Retry-After
 * parsing (agent/ratelimit.c), the uploader's outage rules
 * (agent/outage.c) and the backoff (queue/backoff.c), configured by the
 * config loader from the sample conf/healsync.conf. The rest is stubbed:
 * the clock is the simulation's, requests take a fixed time plus a draw,
 * servers answer from a script. Everything random comes from one seeded
 * generator, so a run is repeatable to the request.
 *
 * What an agent does (a model of mirror.c and upload.c, kept to what
 * reaches the servers):
 *   mirror  at the times mirror_when gives: list pages one after the
 *           other, then detail requests, HS_MIRROR_PARALLEL at once (the
 *           first run fetches every record, later runs 2% but >= 25);
 *   upload  files arrive at random (one per agent per 10 minutes on
 *           average); each is three requests (presign, PUT, complete),
 *           upload.parallel at once, as hs_outage_slots allows; a failure
 *           is retried after the step backoff (1 s doubling to 30 s, 5
 *           tries) unless hs_outage_failed says give the job back; a 429
 *           or 503 blocks the limiter for its Retry-After (1 s without).
 *
 *   bench/fleet/fleet [--agents N] [--patients P] [--seed S] [--check]
 *                     [--before] [--situation NAME] [--jitter SECONDS]
 *
 * --before replays the rules as they were before the fleet work (caught-up
 * runs 5 s after start, no Retry-After spread, reset jitter <= 250 ms) by
 * passing the modules the arguments that give that; --check exits 1 when a
 * goal is missed.
 */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/mirror_when.h"
#include "agent/outage.h"
#include "agent/ratelimit.h"
#include "conf/conf.h"
#include "queue/backoff.h"

#define SEC  1000LL
#define MIN  (60 * SEC)
#define HOUR (60 * MIN)
/* 2026-12-07 00:00:00 UTC: a Monday; the simulated day. */
#define DAY0 (1796601600LL * 1000)

#define MIRROR_PARALLEL 4 /* as HS_MIRROR_PARALLEL */
#define REFRESH_PERCENT 2
#define REFRESH_MIN	25
#define STEP_TRIES	5
#define FILE_EVERY_MS	(10 * MIN)
#define API_LATENCY_MS	100  /* plus a draw of as much */
#define PUT_MS		1000 /* plus a draw of twice as much */
#define REFUSED_MS	10
#define HORIZON_S	(30 * 3600) /* the request histogram's length */
#define OUTAGE_LEN_MS	(30 * MIN)
#define QUOTA_LIMIT	20 /* per key per minute, in the quota situation */
#define QUOTA_BACKLOG	30 /* files each agent holds when that one starts */
#define BOUNDARY_MS	300
#define MAX_SLOTS	16

static const struct hs_backoff step_backoff = {.base_ms = 1000, .cap_ms = 30 * 1000};

/* ---- randomness ---------------------------------------------------------- */

static uint64_t rng_state;
static bool before; /* the rules as they were (--before) */

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static int64_t rnd_upto(int64_t n)
{
	return n > 0 ? (int64_t)(rnd() % (uint64_t)(n + 1)) : 0;
}

static int64_t rnd_exp(int64_t mean)
{
	double u = ((double)(rnd() >> 11) + 0.5) / 9007199254740992.0;
	double v = -(double)mean * log(u);

	return (int64_t)v;
}

/* The draw for the wake-up after a window's end. Before: at most 250 ms
 * (the rule's new range is wider for any window of 5 s or more, so the
 * draw lands as it did). */
static uint64_t reset_rnd(void)
{
	return before ? (uint64_t)rnd_upto(250) : rnd();
}

/* ---- events -------------------------------------------------------------- */

enum ev_kind {
	EV_MIRROR,     /* the mirror timer fires */
	EV_REC_SEND,   /* a records slot asks the limiter */
	EV_REC_ANSWER, /* ... and gets its answer */
	EV_FILE,       /* a new file is queued */
	EV_PUMP,       /* the uploader looks for work */
	EV_UP_SEND,    /* a transfer's step asks the limiter */
	EV_UP_ANSWER,  /* ... and gets its answer (or fails) */
};

struct event {
	int64_t at; /* true time, ms */
	uint32_t agent;
	uint8_t kind, slot;
	uint16_t gen;
};

static struct event *heap;
static size_t heap_len, heap_cap;

static void push(int64_t at, uint32_t agent, enum ev_kind kind, unsigned slot, unsigned gen)
{
	size_t i;

	if (heap_len == heap_cap) {
		heap_cap = heap_cap ? 2 * heap_cap : 1 << 16;
		heap = realloc(heap, heap_cap * sizeof(*heap));
		if (!heap) {
			fprintf(stderr, "fleet: out of memory\n");
			exit(1);
		}
	}
	i = heap_len++;
	while (i > 0 && heap[(i - 1) / 2].at > at) {
		heap[i] = heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	heap[i] = (struct event){.at = at,
				 .agent = agent,
				 .kind = (uint8_t)kind,
				 .slot = (uint8_t)slot,
				 .gen = (uint16_t)gen};
}

static struct event pop(void)
{
	struct event top = heap[0], last = heap[--heap_len];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= heap_len)
			break;
		if (c + 1 < heap_len && heap[c + 1].at < heap[c].at)
			c++;
		if (heap[c].at >= last.at)
			break;
		heap[i] = heap[c];
		i = c;
	}
	if (heap_len > 0)
		heap[i] = last;
	return top;
}

/* ---- the situations -------------------------------------------------------- */

enum up_fault {
	F_NONE,
	F_REFUSED,  /* connections refused */
	F_503,	    /* 503, no Retry-After */
	F_503_RA,   /* 503, Retry-After: 120 */
	F_503_DATE, /* 503, Retry-After: an HTTP-date 120 s ahead */
};

struct situation {
	const char *name, *title;
	int64_t start, end;   /* simulated span, true time */
	int64_t measure_from; /* figures from here (true time) */
	int64_t measure_to;
	bool records;	 /* figures on the Records API, else the Upload API */
	int64_t boot_at; /* agents start at boot_at + a draw over boot_spread */
	int64_t boot_spread;
	int64_t last_ok;      /* when the last mirror run started; 0: never */
	int64_t clock_spread; /* agents' clocks off by a draw over +-this */
	bool uploads;	      /* files arrive */
	enum up_fault fault;
	int64_t fault_from, fault_to;
	bool quota; /* the Upload API says a per-key quota per minute */
};

/* ---- agents -------------------------------------------------------------- */

struct slot {
	bool busy;
	uint16_t gen;
	uint8_t step, tries; /* uploads: 0 presign, 1 PUT, 2 complete */
	bool answered;	     /* the transfer had an answer below 500 */
	uint32_t serial;     /* names the transfer to the outage rules */
	uint64_t seq;
};

struct agent {
	int64_t off; /* its clock less the true time */
	/* mirror */
	struct hs_ratelimit rl_rec;
	int pages_left, details_left, rec_busy;
	bool running;
	int64_t last_ok;
	struct slot rec[MIRROR_PARALLEL];
	/* upload */
	struct hs_ratelimit rl_up;
	struct hs_outage outage;
	int pending, active;
	bool pump_armed;
	int64_t pump_at;
	struct slot up[MAX_SLOTS];
	uint32_t serial;
	/* figures */
	uint32_t sent_down; /* requests sent while the API was down */
	int64_t noticed;    /* first answer below 500 after the fault */
	int64_t drained;    /* backlog empty after the fault */
	bool pending_at_end;
};

static const struct hs_config *cfg;
static struct agent *agents;
static unsigned n_agents, n_patients;
static const struct situation *sit;

/* Requests per true second, per API; boundary counts per minute. */
static uint32_t *hist;
static uint32_t *minute_first, *minute_all;
static uint64_t n_429;

static int64_t agent_now(const struct agent *a, int64_t t)
{
	return t + a->off;
}

static int64_t true_time(const struct agent *a, int64_t local)
{
	return local - a->off;
}

static void count_request(int64_t t, bool records, bool counted_api)
{
	int64_t s = (t - sit->start) / SEC;

	if (records == sit->records && s >= 0 && s < HORIZON_S)
		hist[s]++;
	if (!records && counted_api && sit->quota) {
		int64_t m = (t - sit->start) / MIN;
		if (m >= 0 && m < HORIZON_S / 60) {
			minute_all[m]++;
			if ((t - sit->start) % MIN < BOUNDARY_MS)
				minute_first[m]++;
		}
	}
}

/* ---- the mirror ---------------------------------------------------------- */

static void arm_mirror(uint32_t i, int64_t local_at)
{
	push(true_time(&agents[i], local_at), i, EV_MIRROR, 0, 0);
}

static void mirror_boot(uint32_t i, int64_t now)
{
	struct agent *a = &agents[i];
	int64_t local = agent_now(a, now), at;
	enum hs_mirror_first why;

	at = hs_mirror_first_at(cfg->mirror.cron, cfg->mirror.jitter_ms, local, a->last_ok, rnd(),
				&why);
	if (before && why != HS_MIRROR_FIRST_SCHEDULED)
		at = hs_mirror_catch_up_at(0, local, rnd()); /* start + 5 s */
	if (at >= 0)
		arm_mirror(i, at);
}

static void rec_send(uint32_t i, unsigned k, int64_t now);

static void mirror_start(uint32_t i, int64_t now)
{
	struct agent *a = &agents[i];
	int refresh = (int)n_patients * REFRESH_PERCENT / 100;

	if (a->running)
		return;
	a->running = true;
	a->pages_left =
	    ((int)n_patients + (int)cfg->mirror.page_size - 1) / (int)cfg->mirror.page_size;
	if (!cfg->mirror.fetch_details)
		a->details_left = 0;
	else if (a->last_ok == 0)
		a->details_left = (int)n_patients;
	else
		a->details_left = refresh > REFRESH_MIN ? refresh : REFRESH_MIN;
	a->rec[0].busy = true;
	a->rec[0].step = 0; /* a list page */
	a->rec_busy = 1;
	rec_send(i, 0, now);
}

static void rec_send(uint32_t i, unsigned k, int64_t now)
{
	struct agent *a = &agents[i];
	struct slot *s = &a->rec[k];
	int64_t local = agent_now(a, now);
	int64_t at = hs_ratelimit_reserve(&a->rl_rec, HS_RL_API, local, reset_rnd(),
					  a->rec_busy > 1, &s->seq);

	if (at > 0) {
		push(true_time(a, at), i, EV_REC_SEND, k, ++s->gen);
		return;
	}
	count_request(now, true, true);
	push(now + API_LATENCY_MS + rnd_upto(API_LATENCY_MS), i, EV_REC_ANSWER, k, ++s->gen);
}

static void rec_answer(uint32_t i, unsigned k, int64_t now)
{
	struct agent *a = &agents[i];
	struct slot *s = &a->rec[k];
	struct hs_ratelimit_headers h = {0};
	struct hs_ratelimit_answer ans = {.h = &h, .date_ms = now / SEC * SEC};

	/* The Records API in these situations says no quota. */
	hs_ratelimit_observe(&a->rl_rec, s->seq, HS_RL_API, agent_now(a, now), &ans);
	s->busy = false;
	a->rec_busy--;
	if (s->step == 0 && --a->pages_left > 0) {
		s->busy = true;
		a->rec_busy++;
		rec_send(i, k, now);
		return;
	}
	/* Details, MIRROR_PARALLEL at once. */
	for (unsigned j = 0; j < MIRROR_PARALLEL && a->details_left > 0; j++) {
		if (a->rec[j].busy)
			continue;
		a->rec[j].busy = true;
		a->rec[j].step = 1;
		a->details_left--;
		a->rec_busy++;
		rec_send(i, j, now);
	}
	if (a->rec_busy == 0) { /* the run is done */
		int64_t local = agent_now(a, now), next;
		a->running = false;
		a->last_ok = local;
		next = hs_mirror_scheduled_after(cfg->mirror.cron, cfg->mirror.jitter_ms, local,
						 rnd());
		if (next >= 0 && true_time(a, next) < sit->end)
			arm_mirror(i, next);
	}
}

/* ---- the uploader -------------------------------------------------------- */

static bool fault_now(int64_t now)
{
	return sit->fault != F_NONE && now >= sit->fault_from && now < sit->fault_to;
}

static void arm_pump(uint32_t i, int64_t at)
{
	struct agent *a = &agents[i];

	if (a->pump_armed && a->pump_at <= at)
		return;
	a->pump_armed = true;
	a->pump_at = at;
	push(at, i, EV_PUMP, 0, 0);
}

static void up_send(uint32_t i, unsigned k, int64_t now);

static void pump(uint32_t i, int64_t now)
{
	struct agent *a = &agents[i];
	int64_t local = agent_now(a, now);
	unsigned slots = hs_outage_slots(&a->outage, local, cfg->upload.parallel);

	if (slots > MAX_SLOTS)
		slots = MAX_SLOTS;
	while (a->pending > 0 && (unsigned)a->active < slots) {
		unsigned k = 0;
		while (a->up[k].busy)
			k++;
		a->up[k].busy = true;
		a->up[k].step = 0;
		a->up[k].tries = 0;
		a->up[k].answered = false;
		a->up[k].serial = ++a->serial;
		a->pending--;
		a->active++;
		up_send(i, k, now);
	}
	if (a->pending > 0 && slots == 0 && a->outage.until_ms > local)
		arm_pump(i, true_time(a, a->outage.until_ms));
}

static void up_send(uint32_t i, unsigned k, int64_t now)
{
	struct agent *a = &agents[i];
	struct slot *s = &a->up[k];
	enum hs_ratelimit_class cls = s->step == 1 ? HS_RL_STORAGE : HS_RL_API;
	int64_t local = agent_now(a, now), done;
	int64_t at =
	    hs_ratelimit_reserve(&a->rl_up, cls, local, reset_rnd(), a->pending > 0, &s->seq);

	if (at > 0) {
		push(true_time(a, at), i, EV_UP_SEND, k, ++s->gen);
		return;
	}
	count_request(now, false, cls == HS_RL_API);
	if (fault_now(now))
		a->sent_down++;
	if (fault_now(now) && sit->fault == F_REFUSED)
		done = now + REFUSED_MS;
	else if (s->step == 1)
		done = now + PUT_MS + rnd_upto(2 * PUT_MS);
	else
		done = now + API_LATENCY_MS + rnd_upto(API_LATENCY_MS);
	push(done, i, EV_UP_ANSWER, k, ++s->gen);
}

/* The server's quota for one key: minute windows by its clock (the true
 * time), Unix-time resets. */
struct quota {
	int64_t window;
	int used;
};
static struct quota *quotas;

static void transfer_end(uint32_t i, unsigned k, int64_t now, bool give_back)
{
	struct agent *a = &agents[i];

	hs_outage_forget(&a->outage, a->up[k].serial);
	a->up[k].busy = false;
	a->active--;
	if (give_back)
		a->pending++;
	if (!give_back && a->pending == 0 && a->active == 0 && a->drained == 0 &&
	    a->pending_at_end && now >= sit->fault_to && sit->fault != F_NONE)
		a->drained = now;
	arm_pump(i, now);
}

static void up_answer(uint32_t i, unsigned k, int64_t now)
{
	struct agent *a = &agents[i];
	struct slot *s = &a->up[k];
	enum hs_ratelimit_class cls = s->step == 1 ? HS_RL_STORAGE : HS_RL_API;
	int64_t local = agent_now(a, now), date = now / SEC * SEC;
	struct hs_ratelimit_headers h = {0};
	struct hs_ratelimit_answer ans = {.h = &h, .date_ms = date};
	int status = 200;
	int64_t retry_after = -1;

	if (fault_now(now - 1)) {
		if (sit->fault == F_REFUSED) {
			status = 0;
		} else {
			status = 503;
			if (sit->fault == F_503_RA) {
				retry_after = hs_retry_after_parse("120", date);
			} else if (sit->fault == F_503_DATE) {
				char buf[64];
				time_t t = (time_t)(date / SEC + 120);
				struct tm tm;
				gmtime_r(&t, &tm);
				strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
				retry_after = hs_retry_after_parse(buf, date);
			}
		}
	} else if (sit->quota && cls == HS_RL_API) {
		struct quota *q = &quotas[i];
		int64_t w = now / MIN;
		if (q->window != w) {
			q->window = w;
			q->used = 0;
		}
		h.has_limit = h.has_remaining = h.has_reset = true;
		h.limit = QUOTA_LIMIT;
		h.reset_ms = (w + 1) * MIN;
		if (q->used >= QUOTA_LIMIT) {
			status = 429;
			n_429++;
			h.remaining = 0;
			/* until the reset, rounded up to the second */
			retry_after = ((w + 1) * MIN - now + SEC - 1) / SEC * SEC;
		} else {
			q->used++;
			h.remaining = QUOTA_LIMIT - q->used;
		}
	}
	hs_ratelimit_observe(&a->rl_up, s->seq, cls, local, status > 0 ? &ans : NULL);
	if (status == 429 || status == 503)
		hs_ratelimit_block(&a->rl_up, local,
				   retry_after >= 0 ? retry_after : HS_RETRY_AFTER_MIN_MS,
				   before ? 0 : rnd());
	if (status > 0 && status < 500) {
		s->answered = true;
		hs_outage_answered(&a->outage, local);
		if (sit->fault && now >= sit->fault_to && a->noticed == 0)
			a->noticed = now;
		if (status == 429) { /* again, once the block ends */
			up_send(i, k, now);
			return;
		}
		if (++s->step == 3) {
			transfer_end(i, k, now, false);
			return;
		}
		s->tries = 0;
		up_send(i, k, now);
		return;
	}
	/* A failure. */
	bool news;
	int64_t pause;
	if (hs_outage_failed(&a->outage, local, s->serial, s->answered, rnd(), &news, &pause) ==
		HS_OUTAGE_GIVE_BACK ||
	    ++s->tries >= STEP_TRIES) {
		transfer_end(i, k, now, true);
		return;
	}
	push(now + (int64_t)hs_backoff_delay(&step_backoff, s->tries, rnd()), i, EV_UP_SEND, k,
	     ++s->gen);
}

/* ---- running a situation ------------------------------------------------- */

struct figures {
	double peak1, peak10, mean, peak_over_mean;
	double per_agent_down;
	double noticed_max, noticed_mean, drain;
	double recovery_peak1, recovery_mean, recovery_ratio;
	double boundary_worst, boundary_all;
	uint64_t requests, n429;
};

static void run(const struct situation *s, struct figures *f)
{
	sit = s;
	memset(hist, 0, HORIZON_S * sizeof(*hist));
	memset(minute_first, 0, HORIZON_S / 60 * sizeof(*minute_first));
	memset(minute_all, 0, HORIZON_S / 60 * sizeof(*minute_all));
	memset(agents, 0, n_agents * sizeof(*agents));
	memset(quotas, 0, n_agents * sizeof(*quotas));
	heap_len = 0;
	n_429 = 0;

	for (uint32_t i = 0; i < n_agents; i++) {
		struct agent *a = &agents[i];
		int64_t boot = s->boot_at + rnd_upto(s->boot_spread);
		hs_ratelimit_init(&a->rl_rec);
		hs_ratelimit_init(&a->rl_up);
		a->off = s->clock_spread ? rnd_upto(2 * s->clock_spread) - s->clock_spread : 0;
		a->last_ok = s->last_ok ? s->last_ok + a->off : 0;
		mirror_boot(i, boot);
		if (s->uploads)
			push(boot + rnd_exp(FILE_EVERY_MS), i, EV_FILE, 0, 0);
		if (s->quota) {
			a->pending = QUOTA_BACKLOG;
			arm_pump(i, boot);
		}
	}
	bool swept = false;
	while (heap_len > 0) {
		struct event e = pop();
		struct agent *a = &agents[e.agent];
		if (e.at >= s->end)
			break;
		if (s->fault && !swept && e.at >= s->fault_to) {
			/* The figures after the fault are of agents with work then. */
			for (uint32_t i = 0; i < n_agents; i++)
				agents[i].pending_at_end = agents[i].pending + agents[i].active > 0;
			swept = true;
		}
		switch (e.kind) {
		case EV_MIRROR:
			mirror_start(e.agent, e.at);
			break;
		case EV_REC_SEND:
			if (a->rec[e.slot].gen == e.gen)
				rec_send(e.agent, e.slot, e.at);
			break;
		case EV_REC_ANSWER:
			if (a->rec[e.slot].gen == e.gen)
				rec_answer(e.agent, e.slot, e.at);
			break;
		case EV_FILE:
			a->pending++;
			arm_pump(e.agent, e.at);
			push(e.at + rnd_exp(FILE_EVERY_MS), e.agent, EV_FILE, 0, 0);
			break;
		case EV_PUMP:
			if (a->pump_armed && a->pump_at == e.at) {
				a->pump_armed = false;
				pump(e.agent, e.at);
			}
			break;
		case EV_UP_SEND:
			if (a->up[e.slot].gen == e.gen)
				up_send(e.agent, e.slot, e.at);
			break;
		case EV_UP_ANSWER:
			if (a->up[e.slot].gen == e.gen)
				up_answer(e.agent, e.slot, e.at);
			break;
		}
	}

	/* Figures. */
	memset(f, 0, sizeof(*f));
	int64_t from = (s->measure_from - s->start) / SEC, to = (s->measure_to - s->start) / SEC;
	uint64_t sum = 0, win = 0;
	for (int64_t t = from; t < to; t++) {
		sum += hist[t];
		if (hist[t] > f->peak1)
			f->peak1 = hist[t];
		win += hist[t];
		if (t - from >= 10)
			win -= hist[t - 10];
		if (win / 10.0 > f->peak10)
			f->peak10 = win / 10.0;
	}
	f->requests = sum;
	f->mean = (double)sum / (double)(to - from);
	f->peak_over_mean = f->mean > 0 ? f->peak1 / f->mean : 0;
	f->n429 = n_429;
	if (s->fault) {
		uint64_t down = 0;
		double nsum = 0;
		unsigned nn = 0;
		for (uint32_t i = 0; i < n_agents; i++) {
			down += agents[i].sent_down;
			if (!agents[i].pending_at_end)
				continue;
			if (agents[i].noticed) {
				double d = (double)(agents[i].noticed - s->fault_to) / SEC;
				nsum += d;
				nn++;
				if (d > f->noticed_max)
					f->noticed_max = d;
			} else {
				f->noticed_max = 1e9; /* never noticed within the span */
			}
			if (agents[i].drained) {
				double d = (double)(agents[i].drained - s->fault_to) / SEC;
				if (d > f->drain)
					f->drain = d;
			} else {
				f->drain = 1e9;
			}
		}
		f->per_agent_down = (double)down / n_agents;
		f->noticed_mean = nn ? nsum / nn : 0;
		int64_t r0 = (s->fault_to - s->start) / SEC;
		uint64_t rsum = 0;
		for (int64_t t = r0; t < r0 + 300; t++) {
			rsum += hist[t];
			if (hist[t] > f->recovery_peak1)
				f->recovery_peak1 = hist[t];
		}
		f->recovery_mean = rsum / 300.0;
		f->recovery_ratio = f->recovery_mean > 0 ? f->recovery_peak1 / f->recovery_mean : 0;
	}
	if (s->quota) {
		uint64_t first = 0, all = 0;
		for (int64_t m = from / 60; m < to / 60; m++) {
			first += minute_first[m];
			all += minute_all[m];
			/* windows with a fleet's worth of requests */
			if (minute_all[m] >= n_agents) {
				double r = (double)minute_first[m] / minute_all[m];
				if (r > f->boundary_worst)
					f->boundary_worst = r;
			}
		}
		f->boundary_all = all ? (double)first / all : 0;
	}
}

/* ---- main ---------------------------------------------------------------- */

static char *load_sample(const char *srcdir, struct hs_config **ret)
{
	static char dir[] = "/tmp/hs-fleet-XXXXXX";
	char path[512], *cause = NULL, *text = NULL;
	FILE *in, *out;
	long len;

	snprintf(path, sizeof(path), "%s/conf/healsync.conf", srcdir);
	if (!(in = fopen(path, "r")))
		return strdup("cannot read conf/healsync.conf");
	fseek(in, 0, SEEK_END);
	len = ftell(in);
	rewind(in);
	text = calloc(1, (size_t)len + 1);
	if (!text || fread(text, 1, (size_t)len, in) != (size_t)len) {
		fclose(in);
		free(text);
		return strdup("cannot read conf/healsync.conf");
	}
	fclose(in);
	if (!mkdtemp(dir)) {
		free(text);
		return strdup("cannot make a temporary folder");
	}
	/* The sample with its key files in a folder of ours. */
	snprintf(path, sizeof(path), "%s/healsync.conf", dir);
	out = fopen(path, "w");
	for (char *p = text; out && *p;) {
		char *hit = strstr(p, "/etc/healsync/");
		if (!hit) {
			fputs(p, out);
			break;
		}
		fwrite(p, 1, (size_t)(hit - p), out);
		fprintf(out, "%s/", dir);
		p = hit + strlen("/etc/healsync/");
	}
	free(text);
	if (!out || fclose(out) != 0)
		return strdup("cannot write the config");
	for (int k = 0; k < 2; k++) {
		snprintf(path, sizeof(path), "%s/%s.key", dir, k ? "records" : "upload");
		out = fopen(path, "w");
		if (!out)
			return strdup("cannot write a key");
		fputs("fleet-simulation-key\n", out);
		fclose(out);
		chmod(path, 0600);
	}
	snprintf(path, sizeof(path), "%s/healsync.conf", dir);
	*ret = hs_config_load(path, &cause);
	for (int k = 0; k < 3; k++) {
		snprintf(path, sizeof(path), "%s/%s", dir,
			 k == 0	  ? "records.key"
			 : k == 1 ? "upload.key"
				  : "healsync.conf");
		unlink(path);
	}
	rmdir(dir);
	if (!*ret)
		return cause ? cause : strdup("out of memory");
	return NULL;
}

static void define_situations(struct situation *v, size_t *n)
{
	int64_t night = DAY0 + 2 * HOUR;
	size_t k = 0;

	v[k++] = (struct situation){.name = "nightly",
				    .title = "nightly mirror (02:00, jitter)",
				    .start = DAY0,
				    .end = DAY0 + 6 * HOUR,
				    .measure_from = night - 10 * MIN,
				    .measure_to = night + 40 * MIN,
				    .records = true,
				    .boot_at = DAY0,
				    .boot_spread = 0,
				    .last_ok = night - 24 * HOUR};
	v[k++] = (struct situation){.name = "boot",
				    .title = "boot at 07:00 after a night off",
				    .start = DAY0 + 6 * HOUR,
				    .end = DAY0 + 10 * HOUR,
				    .measure_from = DAY0 + 7 * HOUR,
				    .measure_to = DAY0 + 7 * HOUR + 50 * MIN,
				    .records = true,
				    .boot_at = DAY0 + 7 * HOUR,
				    .boot_spread = 60 * SEC,
				    .last_ok = night - 24 * HOUR};
	v[k++] = (struct situation){.name = "install",
				    .title = "first install (09:00, all at once)",
				    .start = DAY0 + 8 * HOUR,
				    .end = DAY0 + 26 * HOUR,
				    .measure_from = DAY0 + 9 * HOUR,
				    .measure_to = DAY0 + 25 * HOUR,
				    .records = true,
				    .boot_at = DAY0 + 9 * HOUR,
				    .boot_spread = 60 * SEC,
				    .last_ok = 0};
	static const struct {
		const char *name, *title;
		enum up_fault fault;
	} faults[] = {
	    {"refused", "Upload API down 30 min: refused", F_REFUSED},
	    {"503", "Upload API down 30 min: 503, no Retry-After", F_503},
	    {"503-ra", "Upload API down 30 min: 503, Retry-After: 120", F_503_RA},
	    {"503-date", "Upload API down 30 min: 503, Retry-After: a date 120 s on", F_503_DATE},
	};
	for (size_t j = 0; j < sizeof(faults) / sizeof(faults[0]); j++)
		v[k++] = (struct situation){.name = faults[j].name,
					    .title = faults[j].title,
					    .start = DAY0 + 10 * HOUR,
					    .end = DAY0 + 12 * HOUR,
					    .measure_from = DAY0 + 10 * HOUR + 30 * MIN,
					    .measure_to = DAY0 + 11 * HOUR + 30 * MIN,
					    .records = false,
					    .boot_at = DAY0 + 10 * HOUR - 2 * HOUR,
					    .boot_spread = 0,
					    .last_ok = night,
					    .uploads = true,
					    .fault = faults[j].fault,
					    .fault_from = DAY0 + 10 * HOUR + 30 * MIN,
					    .fault_to = DAY0 + 11 * HOUR};
	/* A short shedding while every agent is busy: whoever was told the
	 * same Retry-After in those 20 s comes back together, unless the
	 * wait is spread. */
	for (size_t j = 2; j < 4; j++) {
		v[k] = v[k - 1]; /* a fault situation, changed below */
		v[k].name = j == 2 ? "shed-ra" : "shed-date";
		v[k].title = j == 2 ? "Upload API sheds 20 s: 503, Retry-After: 120"
				    : "Upload API sheds 20 s: 503, Retry-After: a date 120 s on";
		v[k].fault = faults[j].fault;
		v[k].fault_to = v[k].fault_from + 20 * SEC;
		v[k].measure_to = v[k].fault_to + 30 * MIN;
		k++;
	}
	v[k++] = (struct situation){.name = "quota",
				    .title = "per-key quotas, 20/min aligned to the minute",
				    .start = DAY0 + 13 * HOUR,
				    .end = DAY0 + 14 * HOUR,
				    .measure_from = DAY0 + 13 * HOUR,
				    .measure_to = DAY0 + 13 * HOUR + 30 * MIN,
				    .records = false,
				    .boot_at = DAY0 + 13 * HOUR,
				    .boot_spread = 60 * SEC,
				    .last_ok = night,
				    .quota = true};
	v[k] = v[0];
	v[k].name = "clocks";
	v[k].title = "nightly mirror, clocks spread +-2 min";
	v[k].clock_spread = 2 * MIN;
	k++;
	*n = k;
}

int main(int argc, char **argv)
{
	unsigned long long seed = 20;
	const char *only = NULL, *srcdir = getenv("srcdir") ? getenv("srcdir") : ".";
	bool check = false;
	long jitter_s = -1;
	struct hs_config *c = NULL;
	struct situation sits[16];
	struct figures fig[16];
	size_t n_sits;
	char *cause;
	int bad = 0;

	n_agents = 10000;
	n_patients = 500;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--agents") == 0 && i + 1 < argc)
			n_agents = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--patients") == 0 && i + 1 < argc)
			n_patients = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
			seed = strtoull(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--situation") == 0 && i + 1 < argc)
			only = argv[++i];
		else if (strcmp(argv[i], "--srcdir") == 0 && i + 1 < argc)
			srcdir = argv[++i];
		else if (strcmp(argv[i], "--jitter") == 0 && i + 1 < argc)
			jitter_s = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--check") == 0)
			check = true;
		else if (strcmp(argv[i], "--before") == 0)
			before = true;
		else {
			fprintf(
			    stderr,
			    "usage: fleet [--agents N] [--patients P] [--seed S] [--check] "
			    "[--before] [--situation NAME] [--jitter SECONDS] [--srcdir DIR]\n");
			return 2;
		}
	}
	if (n_agents == 0 || n_agents > 1000000 || n_patients == 0) {
		fprintf(stderr, "fleet: 1 to 1000000 agents, at least 1 patient\n");
		return 2;
	}
	setenv("TZ", "UTC", 1);
	tzset();
	if ((cause = load_sample(srcdir, &c))) {
		fprintf(stderr, "fleet: the sample config: %s\n", cause);
		free(cause);
		return 1;
	}
	if (jitter_s >= 0)
		c->mirror.jitter_ms = (uint64_t)jitter_s * 1000;
	cfg = c;
	agents = calloc(n_agents, sizeof(*agents));
	quotas = calloc(n_agents, sizeof(*quotas));
	hist = calloc(HORIZON_S, sizeof(*hist));
	minute_first = calloc(HORIZON_S / 60, sizeof(*minute_first));
	minute_all = calloc(HORIZON_S / 60, sizeof(*minute_all));
	if (!agents || !quotas || !hist || !minute_first || !minute_all) {
		fprintf(stderr, "fleet: out of memory\n");
		return 1;
	}
	define_situations(sits, &n_sits);
	printf("fleet: %u agents x %u patients, seed %llu, %s rules; sample config: schedule "
	       "\"%s\", jitter %" PRIu64 " s, upload.parallel %u\n",
	       n_agents, n_patients, seed, before ? "the old" : "the current", cfg->mirror.schedule,
	       cfg->mirror.jitter_ms / 1000, cfg->upload.parallel);
	for (size_t k = 0; k < n_sits; k++) {
		struct figures *f = &fig[k];
		if (only && strcmp(only, sits[k].name) != 0 &&
		    !(strcmp(sits[k].name, "nightly") == 0))
			continue;
		rng_state = seed * 1000003 + k;
		run(&sits[k], f);
		printf("\n%-9s %s\n", sits[k].name, sits[k].title);
		printf("  %s API: peak 1 s %.0f req/s, peak 10 s %.1f req/s, mean %.1f req/s, "
		       "peak/mean %.1f, %" PRIu64 " requests\n",
		       sits[k].records ? "Records" : "Upload", f->peak1, f->peak10, f->mean,
		       f->peak_over_mean, f->requests);
		if (sits[k].records && k > 0)
			printf("  peak 1 s / nightly peak 1 s: %.2f\n", f->peak1 / fig[0].peak1);
		if (sits[k].fault)
			printf(
			    "  while down: %.1f requests per agent; return noticed after %.0f s "
			    "(mean %.0f s); drained %.0f s after; after recovery: peak 1 s %.0f, "
			    "5-min mean %.1f, ratio %.2f\n",
			    f->per_agent_down, f->noticed_max, f->noticed_mean, f->drain,
			    f->recovery_peak1, f->recovery_mean, f->recovery_ratio);
		if (sits[k].quota)
			printf(
			    "  first 0.3 s of a window: worst window %.1f%%, all windows %.1f%%; "
			    "429s %" PRIu64 "\n",
			    100 * f->boundary_worst, 100 * f->boundary_all, f->n429);

		/* The goals. */
		const char *miss = NULL;
		if ((strcmp(sits[k].name, "boot") == 0 || strcmp(sits[k].name, "install") == 0) &&
		    f->peak1 > 1.2 * fig[0].peak1)
			miss = "peak 1 s above 1.2x the nightly peak";
		if (sits[k].fault && f->per_agent_down > 15)
			miss = "more than 15 requests per agent while down";
		if (sits[k].fault && f->noticed_max > HS_OUTAGE_MAX_GAP_MS / SEC)
			miss = "return not noticed within 5 min";
		if (sits[k].fault && f->recovery_ratio > 3)
			miss = "recovery peak 1 s above 3x the 5-min mean";
		if (sits[k].quota && (f->boundary_worst > 0.10 || f->n429 > 0))
			miss = "more than 10% of a window's requests in its first 0.3 s, or 429s";
		if (miss) {
			printf("  GOAL MISSED: %s\n", miss);
			bad = 1;
		}
	}
	free(agents);
	free(quotas);
	free(hist);
	free(minute_first);
	free(minute_all);
	free(heap);
	hs_config_free(c);
	return check ? bad : 0;
}
