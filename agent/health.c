/* health: the verdict from the facts (see health.h). */
#include "config.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "agent/health.h"
#include "agent/token.h"
#include "conf/conf.h"

static const char *const state_names[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};

static const char *const code_names[HS_HEALTH_NCODES] = {
    [HS_HEALTH_NOT_RUNNING] = "not_running",
    [HS_HEALTH_JOBS_DEAD] = "jobs_dead",
    [HS_HEALTH_UPLOAD_KEY_REJECTED] = "upload_key_rejected",
    [HS_HEALTH_UPLOAD_UNAVAILABLE] = "upload_unavailable",
    [HS_HEALTH_STALLED] = "stalled",
    [HS_HEALTH_QUEUED_TOO_LONG] = "queued_too_long",
    [HS_HEALTH_MIRROR_FAILED] = "mirror_failed",
    [HS_HEALTH_MIRROR_LATE] = "mirror_late",
    [HS_HEALTH_WATCH_MISSING] = "watch_missing",
    [HS_HEALTH_DISK_LOW] = "disk_low",
    [HS_HEALTH_TOKEN_EXPIRING] = "token_expiring",
};

const char *hs_health_state_name(enum hs_health_state s)
{
	return (unsigned)s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s] : "?";
}

int hs_health_state_parse(const char *name)
{
	for (size_t i = 0; name && i < sizeof(state_names) / sizeof(state_names[0]); i++)
		if (strcmp(name, state_names[i]) == 0)
			return (int)i;
	return -1;
}

const char *hs_health_code_name(enum hs_health_code c)
{
	return (unsigned)c < HS_HEALTH_NCODES ? code_names[c] : "?";
}

int hs_health_code_parse(const char *name)
{
	for (int i = 0; name && i < HS_HEALTH_NCODES; i++)
		if (strcmp(name, code_names[i]) == 0)
			return i;
	return -1;
}

struct hs_health_limits hs_health_limits_of(const struct hs_config *cfg)
{
	return (struct hs_health_limits){
	    .stalled_after = (int64_t)cfg->health.stalled_after_ms,
	    .queued_age_warning = (int64_t)cfg->health.queued_age_warning_ms,
	    .queued_age_critical = (int64_t)cfg->health.queued_age_critical_ms,
	    .mirror_grace = (int64_t)cfg->health.mirror_grace_ms,
	    .min_free = (int64_t)cfg->health.min_free,
	};
}

/* "45s", "12m", "5h 30m", "3d 4h": two units at most. */
static const char *span(int64_t ms, char *buf, size_t len)
{
	int64_t s = ms > 0 ? ms / 1000 : 0;

	if (s < 60)
		snprintf(buf, len, "%" PRId64 "s", s);
	else if (s < 3600)
		snprintf(buf, len, "%" PRId64 "m", s / 60);
	else if (s < 86400)
		snprintf(buf, len, "%" PRId64 "h %" PRId64 "m", s / 3600, s / 60 % 60);
	else
		snprintf(buf, len, "%" PRId64 "d %" PRId64 "h", s / 86400, s / 3600 % 24);
	return buf;
}

static void add(struct hs_health *h, const struct hs_health *prev, int64_t now,
		enum hs_health_code code, enum hs_health_state state, int64_t since,
		const char *fmt, ...) __attribute__((format(printf, 7, 8)));

static void add(struct hs_health *h, const struct hs_health *prev, int64_t now,
		enum hs_health_code code, enum hs_health_state state, int64_t since,
		const char *fmt, ...)
{
	struct hs_health_reason *r = &h->reasons[h->n++];
	va_list ap;

	r->code = code;
	r->state = state;
	r->since = since > 0 && since <= now ? since : now;
	for (size_t i = 0; since <= 0 && prev && i < prev->n; i++)
		if (prev->reasons[i].code == code && prev->reasons[i].since > 0)
			r->since = prev->reasons[i].since;
	va_start(ap, fmt);
	vsnprintf(r->text, sizeof(r->text), fmt, ap);
	va_end(ap);
	if (state > h->state)
		h->state = state;
}

void hs_health_eval(const struct hs_health_facts *f, const struct hs_health_limits *lim,
		    const struct hs_health *prev, int64_t now, struct hs_health *ret)
{
	struct hs_health h = {.state = HS_HEALTH_OK};
	char a[32], b[32];

	if (!f->running) {
		add(&h, prev, now, HS_HEALTH_NOT_RUNNING, HS_HEALTH_CRITICAL, 0,
		    "daemon not running");
		goto done;
	}
	if (f->dead > 0)
		add(&h, prev, now, HS_HEALTH_JOBS_DEAD, HS_HEALTH_CRITICAL, 0,
		    "%" PRId64 " job%s dead", f->dead, f->dead == 1 ? "" : "s");
	if (f->upload_key_rejected)
		add(&h, prev, now, HS_HEALTH_UPLOAD_KEY_REJECTED, HS_HEALTH_CRITICAL, 0,
		    "upload API refuses the key");
	else if (f->upload_unavailable)
		add(&h, prev, now, HS_HEALTH_UPLOAD_UNAVAILABLE, HS_HEALTH_WARNING,
		    f->upload_unavailable_since, "upload API unavailable");
	if (f->waiting > 0 && lim->stalled_after > 0) {
		/* Nothing stored since the later of the last success and the
		 * oldest waiting file's arrival. */
		int64_t from = f->last_stored_at > f->oldest_waiting_at ? f->last_stored_at
									: f->oldest_waiting_at;
		if (from > 0 && now - from >= lim->stalled_after)
			add(&h, prev, now, HS_HEALTH_STALLED, HS_HEALTH_CRITICAL,
			    from + lim->stalled_after,
			    "nothing stored for %s with %" PRId64 " waiting",
			    span(now - from, a, sizeof(a)), f->waiting);
	}
	if (f->waiting > 0 && f->oldest_waiting_at > 0) {
		int64_t age = now - f->oldest_waiting_at;
		if (lim->queued_age_critical > 0 && age >= lim->queued_age_critical)
			add(&h, prev, now, HS_HEALTH_QUEUED_TOO_LONG, HS_HEALTH_CRITICAL,
			    f->oldest_waiting_at + lim->queued_age_critical,
			    "oldest queued file waits %s (critical at %s)", span(age, a, sizeof(a)),
			    span(lim->queued_age_critical, b, sizeof(b)));
		else if (lim->queued_age_warning > 0 && age >= lim->queued_age_warning)
			add(&h, prev, now, HS_HEALTH_QUEUED_TOO_LONG, HS_HEALTH_WARNING,
			    f->oldest_waiting_at + lim->queued_age_warning,
			    "oldest queued file waits %s (warning at %s)", span(age, a, sizeof(a)),
			    span(lim->queued_age_warning, b, sizeof(b)));
	}
	if (f->mirror_enabled && f->mirror_failed)
		add(&h, prev, now, HS_HEALTH_MIRROR_FAILED, HS_HEALTH_WARNING, f->mirror_failed_at,
		    "last mirror run failed");
	if (f->mirror_enabled && f->mirror_due_at > 0 && lim->mirror_grace > 0 &&
	    now >= f->mirror_due_at + lim->mirror_grace)
		add(&h, prev, now, HS_HEALTH_MIRROR_LATE, HS_HEALTH_WARNING,
		    f->mirror_due_at + lim->mirror_grace, "mirror late by %s",
		    span(now - f->mirror_due_at, a, sizeof(a)));
	if (f->watch_missing > 0)
		add(&h, prev, now, HS_HEALTH_WATCH_MISSING, HS_HEALTH_WARNING, 0,
		    "%zu watch folder%s missing", f->watch_missing,
		    f->watch_missing == 1 ? "" : "s");
	if (lim->min_free > 0 && f->disk_free >= 0 && f->disk_free < lim->min_free)
		add(&h, prev, now, HS_HEALTH_DISK_LOW,
		    f->disk_free < lim->min_free / 4 ? HS_HEALTH_CRITICAL : HS_HEALTH_WARNING, 0,
		    "%" PRId64 " MiB free for state_dir", f->disk_free / (1024 * 1024));
	if (f->token_expires_at > 0) {
		int64_t exp = f->token_expires_at, notice = exp - HS_TOKEN_WARN_S * 1000LL;
		const char *api = f->token_api[0] ? f->token_api : "a";

		if (now >= exp)
			add(&h, prev, now, HS_HEALTH_TOKEN_EXPIRING, HS_HEALTH_CRITICAL, exp,
			    "%s token expired %s ago", api, span(now - exp, a, sizeof(a)));
		else if (now >= notice)
			add(&h, prev, now, HS_HEALTH_TOKEN_EXPIRING, HS_HEALTH_WARNING, notice,
			    "%s token expires in %s", api, span(exp - now, a, sizeof(a)));
	}
done:
	h.since = prev && prev->state == h.state && prev->since > 0 ? prev->since : now;
	*ret = h;
}

bool hs_health_same(const struct hs_health *a, const struct hs_health *b)
{
	if (a->state != b->state || a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (a->reasons[i].code != b->reasons[i].code ||
		    a->reasons[i].state != b->reasons[i].state)
			return false;
	return true;
}

const char *hs_health_summary(const struct hs_health *h, char *buf, size_t len)
{
	size_t used = 0;

	if (!len)
		return buf;
	buf[0] = '\0';
	if (h->n == 0) {
		snprintf(buf, len, "all well");
		return buf;
	}
	/* Worst first, then in code order. */
	for (int s = HS_HEALTH_CRITICAL; s >= HS_HEALTH_WARNING; s--) {
		for (size_t i = 0; i < h->n; i++) {
			if ((int)h->reasons[i].state != s)
				continue;
			int n = snprintf(buf + used, len - used, "%s%s", used ? "; " : "",
					 h->reasons[i].text);
			if (n < 0 || (size_t)n >= len - used) {
				buf[used] = '\0'; /* whole reasons only */
				return buf;
			}
			used += (size_t)n;
		}
	}
	return buf;
}

json_t *hs_health_json(const struct hs_health *h)
{
	json_t *reasons = json_array();

	for (size_t i = 0; reasons && i < h->n; i++) {
		const struct hs_health_reason *r = &h->reasons[i];
		json_array_append_new(reasons, json_pack("{s:s, s:s, s:I, s:s}", "code",
							 hs_health_code_name(r->code), "state",
							 hs_health_state_name(r->state), "since",
							 (json_int_t)r->since, "text", r->text));
	}
	return json_pack("{s:s, s:I, s:o}", "state", hs_health_state_name(h->state), "since",
			 (json_int_t)h->since, "reasons", reasons ? reasons : json_array());
}
