/*
 * daemon: the life of `healsync run`, top to bottom.
 *
 *   start    open the queue, the HTTP client and the uploader on one loop
 *   ready    READY=1; the loop sleeps until a file, a timer or a signal
 *   SIGHUP   read the configuration and keys again; a bad one is refused
 *   SIGTERM  stop taking work, let transfers reach a safe point, exit 0
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <time.h>
#include <unistd.h>

#include "agent/clock.h"
#include "agent/daemon.h"
#include "agent/health.h"
#include "agent/http.h"
#include "agent/log.h"
#include "agent/metrics.h"
#include "agent/mirror_sched.h"
#include "agent/token.h"
#include "agent/upload.h"
#include "agent/watch.h"
#include "conf/units.h"
#include "queue/queue.h"

#define STOP_GRACE_MS	   5000
#define STATUS_INTERVAL_US (1000 * 1000)
/* Even an idle daemon weighs its health this often: ages grow. */
#define HEALTH_INTERVAL_US (30ULL * 1000 * 1000)
/* Finished jobs are kept this long for `healsync jobs`; the ledger keeps
 * what was stored for ever. */
#define KEEP_FINISHED_MS (30LL * 24 * 3600 * 1000)
#define PRUNE_EVERY_US	 (24ULL * 3600 * 1000 * 1000)

struct daemon {
	const char *config_path;
	struct hs_config *cfg;
	sd_event *ev;
	struct hs_queue *q;
	struct hs_bucket bucket;
	struct hs_http *http;
	struct hs_uploader *up;
	struct hs_watcher *watcher;
	struct hs_mirror_sched *mirror;
	sd_event_source *prune_timer;
	bool ready;
	int lock_fd;
	int wake_fd;
	sd_event_source *wake_src;
	sd_event_source *timetable_timer;
	time_t paused_until;	  /* the timetable's pause ends then; 0: no pause */
	struct hs_pause op_pause; /* the operator's (healsync pause), from the queue */
	sd_event_source *op_pause_timer;
	sd_event_source *status_timer;
	int64_t started_at;
	uint64_t last_sent;
	int64_t last_status_us;
	double rate; /* bytes per second, all transfers */
	int exit_code;
	bool status_unwritten; /* logged once until a write succeeds again */
	char status_line[512];
	/* health */
	sd_event_source *health_timer;
	struct hs_health health;
	bool health_known;		     /* health holds a verdict */
	int64_t last_stored_at;		     /* Unix ms; 0: never */
	uint64_t stored_files, stored_bytes; /* since start */
	bool reload_refused;		     /* until a reload is accepted */
	/* metrics_file */
	int64_t metrics_at; /* Unix ms of the last write; 0: none yet */
	bool metrics_unwritten;
	bool stopped;		       /* the loop is over: the last status and metrics */
	struct hs_token_watch *tokens; /* warns before a Bearer token expires */
};

/* ---- bandwidth timetable ---------------------------------------------- */

/* "HH:MM" of t in local time, or "Ddd HH:MM" when t is a day or more
 * after now (a weekly pause). */
static const char *local_hm(time_t t, time_t now, char *buf, size_t len)
{
	struct tm tm;

	if (!localtime_r(&t, &tm) ||
	    !strftime(buf, len, t - now >= 24 * 3600 ? "%a %H:%M" : "%H:%M", &tm))
		snprintf(buf, len, "?");
	return buf;
}

/* The rate in force, and the pause: at its start the uploader is held,
 * and the timer set for the next entry ends it at once, with no polling. */
static void apply_timetable(struct daemon *d)
{
	const struct hs_timetable *tt = d->cfg->upload.bandwidth;
	time_t now = time(NULL), next = hs_timetable_next_change(tt, now);
	uint64_t rate = hs_timetable_rate(tt, now);
	time_t until = hs_timetable_pause_end(tt, now);
	char buf[32];

	if (rate != d->bucket.rate) {
		hs_bucket_set_rate(&d->bucket, rate, hs_mono_us());
		hs_http_bandwidth_changed(d->http);
		hs_log(LOG_INFO, "bandwidth limit now %s",
		       rate ? hs_format_size(rate, buf, sizeof(buf)) : "off");
	}
	if (until && !d->paused_until)
		hs_log(LOG_NOTICE, "uploads paused until %s by the bandwidth timetable",
		       local_hm(until, now, buf, sizeof(buf)));
	else if (!until && d->paused_until)
		hs_log(LOG_NOTICE, "the bandwidth timetable's pause is over; uploads resume");
	d->paused_until = until;
	hs_uploader_hold(d->up, until != 0 || d->op_pause.on);
	if (next > 0) {
		sd_event_source_set_time(d->timetable_timer, (uint64_t)next * 1000000);
		sd_event_source_set_enabled(d->timetable_timer, SD_EVENT_ONESHOT);
	} else {
		sd_event_source_set_enabled(d->timetable_timer, SD_EVENT_OFF);
	}
}

static int on_timetable(sd_event_source *s, uint64_t usec, void *arg)
{
	apply_timetable(arg);
	return 0;
}

/* ---- the operator's pause (healsync pause / resume) ------------------- */

/* Reads the pause the CLI keeps in the queue: at start, when woken, and
 * when its end comes. Holding is the uploader's: transfers stop at a safe
 * point and spend no attempt. */
static void apply_op_pause(struct daemon *d)
{
	struct hs_pause p;
	char *cause = NULL, at[32];
	int64_t now = hs_wall_ms();

	if (hs_queue_pause_get(d->q, now, &p, &cause) != HS_Q_OK) {
		hs_log(LOG_WARNING, "queue: %s", cause ? cause : "out of memory");
		free(cause);
		return;
	}
	if (p.on && (!d->op_pause.on || p.until != d->op_pause.until)) {
		if (p.until)
			hs_log(LOG_NOTICE, "uploads paused by %s until %s", p.set_by,
			       local_hm((time_t)(p.until / 1000), (time_t)(now / 1000), at,
					sizeof(at)));
		else
			hs_log(LOG_NOTICE, "uploads paused by %s until resumed", p.set_by);
	} else if (!p.on && d->op_pause.on) {
		hs_log(LOG_NOTICE, "the operator's pause is over; uploads resume");
	}
	d->op_pause = p;
	hs_uploader_hold(d->up, d->paused_until != 0 || p.on);
	if (p.on && p.until) {
		sd_event_source_set_time(d->op_pause_timer, (uint64_t)p.until * 1000);
		sd_event_source_set_enabled(d->op_pause_timer, SD_EVENT_ONESHOT);
	} else {
		sd_event_source_set_enabled(d->op_pause_timer, SD_EVENT_OFF);
	}
}

static int on_op_pause_end(sd_event_source *s, uint64_t usec, void *arg)
{
	(void)s;
	(void)usec;
	apply_op_pause(arg);
	return 0;
}

/* ---- status: STATUS= for systemd, status.json for `healsync status` ---- */

struct status_ctx {
	json_t *list;
	unsigned n;
};

static void add_transfer(const struct hs_transfer_info *t, void *arg)
{
	struct status_ctx *c = arg;
	json_t *o = json_pack("{s:I, s:s, s:s, s:I, s:I}", "job_id", (json_int_t)t->job_id,
			      "remote_name", t->remote_name, "step", t->step, "size_bytes",
			      (json_int_t)t->size, "sent_bytes", (json_int_t)t->sent);

	if (o && t->part_count)
		json_object_set_new(o, "parts",
				    json_pack("{s:i, s:i}", "done", (int)t->parts_done, "count",
					      (int)t->part_count));
	if (o)
		json_array_append_new(c->list, o);
	c->n++;
}

static void add_limiter(const char *realm, const char *host, const struct hs_ratelimit *rl,
			void *arg)
{
	json_t *o = json_pack("{s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:I}", "api", realm, "host",
			      host, "known", rl->known, "limit", (json_int_t)rl->limit, "remaining",
			      (json_int_t)rl->remaining, "reset_at", (json_int_t)rl->reset_at,
			      "blocked_until", (json_int_t)rl->blocked_until, "throttled",
			      (json_int_t)rl->throttled);

	if (o)
		json_array_append_new(arg, o);
}

/*
 * Writes dir/name atomically with mode: a reader sees the old file or the
 * new one. The temporary file is made afresh (O_EXCL, never through a link
 * planted under its name), given its mode whatever the umask, and renamed
 * relative to the folder's descriptor.
 */
static int write_atomic(const char *dir, const char *name, const char *text, mode_t mode)
{
	char tmp[256];
	int dfd, fd, e;
	size_t len = strlen(text);
	ssize_t n;

	snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -1;
	if (unlinkat(dfd, tmp, 0) != 0 && errno != ENOENT)
		goto fail;
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		goto fail;
	n = fchmod(fd, mode) == 0 ? write(fd, text, len) : -1;
	if (n != (ssize_t)len) {
		e = n < 0 ? errno : ENOSPC; /* a short write: the disk is full */
		close(fd);
		unlinkat(dfd, tmp, 0);
		errno = e;
		goto fail;
	}
	close(fd);
	if (renameat(dfd, tmp, dfd, name) != 0)
		goto fail;
	close(dfd);
	return 0;
fail:
	e = errno;
	close(dfd);
	errno = e;
	return -1;
}

int hs_state_dir_check(const char *dir, bool daemon, char *err, size_t len)
{
	struct stat st;

	if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
		snprintf(err, len, "state_dir %s: %s", dir, strerror(errno));
		return -1;
	}
	if (stat(dir, &st) != 0) {
		snprintf(err, len, "state_dir %s: %s", dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, len, "state_dir %s: is not a folder", dir);
		return -1;
	}
	if (st.st_uid != geteuid() && daemon) {
		snprintf(err, len,
			 "state_dir %s: is owned by uid %u, not by uid %u (the user healsync runs "
			 "as); run chown on it",
			 dir, (unsigned)st.st_uid, (unsigned)geteuid());
		return -1;
	}
	/* Never advise a chown here: the folder is the service's. */
	if (st.st_uid != geteuid() && geteuid() != 0) {
		snprintf(err, len,
			 "state_dir %s: belongs to uid %u, the service's user; run this as root "
			 "(members of its group may run status, jobs and check)",
			 dir, (unsigned)st.st_uid);
		return -1;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(err, len,
			 "state_dir %s: is writable by %s (mode %04o); run chmod go-w on it", dir,
			 st.st_mode & S_IWOTH ? "others" : "its group",
			 (unsigned)(st.st_mode & 07777));
		return -1;
	}
	return 0;
}

/* ---- health: the verdict from what the daemon knows ------------------ */

static const char *const health_msgid[] = {
    [HS_HEALTH_OK] = HS_MSGID_HEALTH_OK,
    [HS_HEALTH_WARNING] = HS_MSGID_HEALTH_WARNING,
    [HS_HEALTH_CRITICAL] = HS_MSGID_HEALTH_CRITICAL,
};

/* The first scheduled mirror time after the last success (or after the
 * start, when none succeeded), its jitter added; 0 when none is known. */
static int64_t mirror_due_at(const struct daemon *d, const struct hs_mirror_sched_info *mi)
{
	int64_t from = mi->last_ok.id ? mi->last_ok.started_at : d->started_at;
	int64_t next;

	if (!mi->enabled || !d->cfg->mirror.cron)
		return 0;
	next = hs_cron_next(d->cfg->mirror.cron, from / 1000);
	return next > 0 ? next * 1000 + (int64_t)d->cfg->mirror.jitter_ms : 0;
}

static void health_facts(struct daemon *d, const int64_t counts[HS_JOB_NSTATES],
			 const struct hs_watcher_stats *ws, const struct hs_mirror_sched_info *mi,
			 struct hs_health_facts *f)
{
	struct statvfs sv;
	char *cause = NULL;
	const char *whose;
	int64_t exp;

	*f = (struct hs_health_facts){.running = true, .disk_free = -1};
	f->dead = counts[HS_JOB_DEAD];
	f->waiting = counts[HS_JOB_QUEUED] + counts[HS_JOB_ACTIVE] + counts[HS_JOB_FAILED];
	if (f->waiting && hs_queue_oldest_waiting(d->q, &f->oldest_waiting_at, &cause) < 0) {
		hs_log(LOG_WARNING, "queue: %s", cause ? cause : "out of memory");
		free(cause);
	}
	f->last_stored_at = d->last_stored_at;
	f->upload_key_rejected = d->up && hs_uploader_auth_paused(d->up);
	f->upload_unavailable = d->up && hs_uploader_unavailable(d->up);
	f->upload_unavailable_since = d->up ? hs_uploader_unavailable_since(d->up) : 0;
	f->mirror_enabled = mi->enabled;
	f->mirror_failed = mi->last.id && strcmp(mi->last.status, "failed") == 0;
	f->mirror_failed_at = mi->last.ended_at;
	f->mirror_due_at = mirror_due_at(d, mi);
	f->watch_missing = ws->missing;
	if ((exp = hs_token_watch_soonest(d->tokens, &whose)) > 0) {
		f->token_expires_at = exp * 1000;
		snprintf(f->token_api, sizeof(f->token_api), "%s", whose);
	}
	if (statvfs(d->cfg->state_dir, &sv) == 0)
		f->disk_free = (int64_t)((uint64_t)sv.f_bavail * sv.f_frsize);
}

/* Weighs the facts; a new verdict is one journal line with its own
 * MESSAGE_ID (the first one too, unless it is OK). */
static bool weigh_health(struct daemon *d, const struct hs_health_facts *f, int64_t now)
{
	bool changed;
	struct hs_health_limits lim = hs_health_limits_of(d->cfg);
	struct hs_health h;
	char summary[512], since[32];

	hs_health_eval(f, &lim, d->health_known ? &d->health : NULL, now, &h);
	changed = d->health_known ? !hs_health_same(&d->health, &h) : h.state != HS_HEALTH_OK;
	if (changed) {
		const struct hs_log_field fields[] = {
		    {"MESSAGE_ID", health_msgid[h.state]},
		    {"HEALSYNC_HEALTH", hs_health_state_name(h.state)},
		};
		snprintf(since, sizeof(since), "%" PRId64, h.since);
		hs_log_fields(h.state == HS_HEALTH_CRITICAL  ? LOG_ERR
			      : h.state == HS_HEALTH_WARNING ? LOG_WARNING
							     : LOG_NOTICE,
			      fields, sizeof(fields) / sizeof(fields[0]), "health %s%s: %s",
			      hs_health_state_name(h.state),
			      d->health_known && d->health.state == h.state ? " still" : "",
			      hs_health_summary(&h, summary, sizeof(summary)));
	}
	d->health = h;
	d->health_known = true;
	return changed;
}

/* One folder's last full scan: every reason with its count, and the
 * setting behind each, so `status` can say "too old (max_age 30d)". */
static void scan_json(const struct hs_watch *conf, const struct hs_scan_tally *t, void *arg)
{
	json_t *counts = json_object(), *rules = json_object();
	char rule[512];

	for (int i = 0; i < HS_REASON_COUNT; i++) {
		json_object_set_new(counts, hs_reason_name((enum hs_reason)i),
				    json_integer((json_int_t)t->n[i]));
		if (hs_reason_rule(conf, (enum hs_reason)i, rule, sizeof(rule))[0])
			json_object_set_new(rules, hs_reason_name((enum hs_reason)i),
					    json_string(rule));
	}
	json_array_append_new(
	    arg, json_pack("{s:s, s:o, s:I, s:o, s:o, s:I}", "path", conf->path, "at",
			   t->at ? json_integer((json_int_t)t->at) : json_null(), "files",
			   (json_int_t)t->files, "counts", counts ? counts : json_object(), "rules",
			   rules ? rules : json_object(), "dirs_excluded",
			   (json_int_t)t->dirs_excluded));
}

/* The facts as they were weighed, so that a reader can weigh them again at
 * its own time and with its own thresholds (`healsync check -w`). */
static json_t *facts_json(const struct hs_health_facts *f)
{
	return json_pack(
	    "{s:I, s:I, s:I, s:I, s:b, s:b, s:I, s:b, s:b, s:I, s:I, s:I, s:I, s:I, s:s}", "dead",
	    (json_int_t)f->dead, "waiting", (json_int_t)f->waiting, "oldest_waiting_at",
	    (json_int_t)f->oldest_waiting_at, "last_stored_at", (json_int_t)f->last_stored_at,
	    "upload_key_rejected", f->upload_key_rejected, "upload_unavailable",
	    f->upload_unavailable, "upload_unavailable_since",
	    (json_int_t)f->upload_unavailable_since, "mirror_enabled", f->mirror_enabled,
	    "mirror_failed", f->mirror_failed, "mirror_failed_at", (json_int_t)f->mirror_failed_at,
	    "mirror_due_at", (json_int_t)f->mirror_due_at, "watch_missing",
	    (json_int_t)f->watch_missing, "disk_free", (json_int_t)f->disk_free, "token_expires_at",
	    (json_int_t)f->token_expires_at, "token_api", f->token_api);
}

static json_t *api_json(const char *state, int64_t since)
{
	return json_pack("{s:s, s:I}", "state", state, "since", (json_int_t)since);
}

#define METRICS_EVERY_MS 15000

static void add_metrics_limiter(const char *realm, const char *host, const struct hs_ratelimit *rl,
				void *arg)
{
	struct hs_metrics *m = arg;

	if (m->n_limiters >= HS_METRICS_MAX_LIMITERS)
		return;
	/* The names stay valid until the loop runs again: the text is made
	 * right after this walk. */
	m->limiters[m->n_limiters].api = realm;
	m->limiters[m->n_limiters].host = host;
	m->limiters[m->n_limiters].throttled = rl->throttled;
	m->n_limiters++;
}

/* metrics_file, at most every METRICS_EVERY_MS, and at once when the
 * verdict changed or the daemon stops. */
static void write_metrics(struct daemon *d, const int64_t counts[HS_JOB_NSTATES],
			  const struct hs_health_facts *f, const struct hs_mirror_sched_info *mi,
			  int64_t now, bool changed)
{
	struct hs_metrics m = {
	    .running = !d->stopped,
	    .started_at = d->started_at,
	    .stored_files = d->stored_files,
	    .stored_bytes = d->stored_bytes,
	    .sent_bytes = hs_http_bytes_sent(d->http),
	    .last_upload_at = d->last_stored_at,
	    .mirror_enabled = mi->enabled,
	    .mirror_last_success_at = mi->last_ok.id ? mi->last_ok.started_at : 0,
	    .oldest_queued_age_ms = f->oldest_waiting_at ? now - f->oldest_waiting_at : 0,
	    .upload_up = !f->upload_key_rejected && !f->upload_unavailable,
	    .records_up = !f->mirror_failed,
	    .disk_free = f->disk_free,
	    .waiting_for_quota = hs_http_waiting(d->http),
	    .health = &d->health,
	};
	const char *path = d->cfg->metrics_file, *slash;
	char dir[4096], *text;

	if (!path || (!changed && !d->stopped && d->metrics_at &&
		      now - d->metrics_at < METRICS_EVERY_MS && now >= d->metrics_at))
		return;
	for (int s = 0; s < HS_JOB_NSTATES; s++)
		m.jobs[s] = counts[s];
	if (d->up)
		hs_uploader_retries(d->up, m.retries);
	hs_http_each_limiter(d->http, add_metrics_limiter, &m);
	text = hs_metrics_text(&m);
	slash = strrchr(path, '/'); /* absolute: the configuration says so */
	snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
	if (!text || write_atomic(dir, slash + 1, text, 0644) != 0) {
		if (!d->metrics_unwritten)
			hs_log(LOG_WARNING, "cannot write %s: %s", path,
			       text ? strerror(errno) : "out of memory");
		d->metrics_unwritten = true;
	} else if (d->metrics_unwritten) {
		hs_log(LOG_NOTICE, "%s written again", path);
		d->metrics_unwritten = false;
	}
	d->metrics_at = now;
	free(text);
}

static void update_status(struct daemon *d)
{
	struct status_ctx c = {.list = json_array()};
	json_t *doc, *limits = json_array(), *apis;
	int64_t now_us = hs_mono_us(), now = hs_wall_ms();
	uint64_t sent = hs_http_bytes_sent(d->http);
	int64_t counts[HS_JOB_NSTATES] = {0};
	char rate[32], limit[32], pause_hm[32], what[256], reasons[256], *text, *cause = NULL;
	struct hs_watcher_stats ws = {0};
	struct hs_mirror_sched_info mi = {0};
	struct hs_health_facts facts;

	/* Bytes over the last interval; a longer gap (an idle daemon woken)
	 * would spread a transfer's first second over the idle time. */
	if (d->last_status_us && now_us > d->last_status_us &&
	    now_us - d->last_status_us <= 2 * STATUS_INTERVAL_US)
		d->rate =
		    (double)(sent - d->last_sent) * 1e6 / (double)(now_us - d->last_status_us);
	else if (!d->last_status_us || sent == d->last_sent)
		d->rate = 0;
	d->last_sent = sent;
	d->last_status_us = now_us;

	if (c.list && d->up)
		hs_uploader_each(d->up, add_transfer, &c);
	if (limits)
		hs_http_each_limiter(d->http, add_limiter, limits);
	if (hs_queue_counts(d->q, counts, &cause) < 0) {
		hs_log(LOG_WARNING, "queue: %s", cause ? cause : "out of memory");
		free(cause);
	}
	if (d->watcher)
		hs_watcher_get_stats(d->watcher, &ws);
	if (d->mirror)
		hs_mirror_sched_get_info(d->mirror, &mi);
	health_facts(d, counts, &ws, &mi, &facts);
	write_metrics(d, counts, &facts, &mi, now, weigh_health(d, &facts, now));

	hs_format_size((uint64_t)d->rate, rate, sizeof(rate));
	if (d->bucket.rate)
		hs_format_size(d->bucket.rate, limit, sizeof(limit));
	else
		snprintf(limit, sizeof(limit), "off");
	if (!d->ready)
		snprintf(what, sizeof(what), "scanning %zu watch folder%s, %" PRId64 " queued",
			 ws.folders, ws.folders == 1 ? "" : "s",
			 counts[HS_JOB_QUEUED] + counts[HS_JOB_FAILED]);
	else if (c.n)
		snprintf(what, sizeof(what), "uploading %u file%s (%s/s), %" PRId64 " queued", c.n,
			 c.n == 1 ? "" : "s", rate, counts[HS_JOB_QUEUED] + counts[HS_JOB_FAILED]);
	else if (d->op_pause.on && d->op_pause.until)
		snprintf(what, sizeof(what), "paused by %s until %s, %" PRId64 " queued",
			 d->op_pause.set_by,
			 local_hm((time_t)(d->op_pause.until / 1000), time(NULL), pause_hm,
				  sizeof(pause_hm)),
			 counts[HS_JOB_QUEUED] + counts[HS_JOB_FAILED]);
	else if (d->op_pause.on)
		snprintf(what, sizeof(what), "paused by %s until resumed, %" PRId64 " queued",
			 d->op_pause.set_by, counts[HS_JOB_QUEUED] + counts[HS_JOB_FAILED]);
	else if (d->paused_until)
		snprintf(what, sizeof(what), "paused until %s, %" PRId64 " queued",
			 local_hm(d->paused_until, time(NULL), pause_hm, sizeof(pause_hm)),
			 counts[HS_JOB_QUEUED] + counts[HS_JOB_FAILED]);
	else
		snprintf(what, sizeof(what), "idle, %" PRId64 " queued",
			 counts[HS_JOB_QUEUED] + counts[HS_JOB_FAILED]);
	/* Transfers finishing what they were sending, or still scanning. */
	if (d->paused_until && (c.n || !d->ready))
		snprintf(what + strlen(what), sizeof(what) - strlen(what), ", paused until %s",
			 local_hm(d->paused_until, time(NULL), pause_hm, sizeof(pause_hm)));
	if (mi.running && mi.progress.total_pages)
		snprintf(what + strlen(what), sizeof(what) - strlen(what),
			 ", mirroring page %" PRId64 " of %" PRId64, mi.progress.page,
			 mi.progress.total_pages);
	else if (mi.running)
		snprintf(what + strlen(what), sizeof(what) - strlen(what), ", mirroring");
	else if (mi.next_at > 0) {
		time_t t = (time_t)(mi.next_at / 1000);
		struct tm tm;
		char hm[16] = "?";
		if (localtime_r(&t, &tm))
			strftime(hm, sizeof(hm), "%H:%M", &tm);
		snprintf(what + strlen(what), sizeof(what) - strlen(what), ", next mirror %s", hm);
	}
	/* The verdict leads: a glance at `systemctl status` tells. */
	if (d->health.state == HS_HEALTH_OK)
		snprintf(d->status_line, sizeof(d->status_line), "OK: %s", what);
	else
		snprintf(d->status_line, sizeof(d->status_line), "%s (%s): %s",
			 hs_health_state_name(d->health.state),
			 hs_health_summary(&d->health, reasons, sizeof(reasons)), what);
	if (d->reload_refused)
		snprintf(d->status_line + strlen(d->status_line),
			 sizeof(d->status_line) - strlen(d->status_line),
			 "; reload refused, the old configuration is in force");
	sd_notifyf(0, "STATUS=%s", d->status_line);

	apis = json_object();
	if (apis)
		json_object_set_new(apis, "upload",
				    facts.upload_key_rejected ? api_json("key_rejected", 0)
				    : facts.upload_unavailable
					? api_json("unavailable", facts.upload_unavailable_since)
					: api_json("up", 0));
	if (apis && mi.enabled)
		json_object_set_new(apis, "records",
				    facts.mirror_failed ? api_json("failed", facts.mirror_failed_at)
							: api_json("up", 0));
	for (size_t i = 0; apis && i < d->health.n; i++) {
		/* A state's since is the verdict's, which remembers it. */
		const struct hs_health_reason *r = &d->health.reasons[i];
		if (r->code == HS_HEALTH_UPLOAD_KEY_REJECTED)
			json_object_set_new(json_object_get(apis, "upload"), "since",
					    json_integer((json_int_t)r->since));
	}

	doc = json_pack(
	    "{s:i, s:I, s:I, s:s, s:o, s:{s:I, s:f, s:i}, s:o}", "pid", (int)getpid(), "started_at",
	    (json_int_t)d->started_at, "updated_at", (json_int_t)now, "summary", d->status_line,
	    "transfers", c.list ? c.list : json_array(), "bandwidth", "limit_bytes_per_s",
	    (json_int_t)d->bucket.rate, "rate_bytes_per_s", d->rate, "waiting_for_quota",
	    (int)hs_http_waiting(d->http), "rate_limits", limits ? limits : json_array());
	if (doc) {
		json_object_set_new(doc, "health", hs_health_json(&d->health));
		json_object_set_new(doc, "health_facts", facts_json(&facts));
		json_object_set_new(doc, "apis", apis ? apis : json_object());
		json_object_set_new(doc, "last_upload_at",
				    d->last_stored_at ? json_integer((json_int_t)d->last_stored_at)
						      : json_null());
		json_object_set_new(
		    doc, "oldest_queued_age_s",
		    facts.oldest_waiting_at
			? json_integer((json_int_t)((now - facts.oldest_waiting_at) / 1000))
			: json_null());
		json_t *queue = json_object();
		for (int st = 0; queue && st < HS_JOB_NSTATES; st++)
			json_object_set_new(queue, hs_job_state_name(st),
					    json_integer((json_int_t)counts[st]));
		json_object_set_new(doc, "queue", queue ? queue : json_object());
		json_object_set_new(doc, "stored",
				    json_pack("{s:I, s:I}", "files", (json_int_t)d->stored_files,
					      "bytes", (json_int_t)d->stored_bytes));
		/* Stored files whose delete or move waits (a refused folder). */
		int64_t after_pending = 0;
		char *why = NULL;
		if (hs_queue_after_count(d->q, &after_pending, &why) != HS_Q_OK) {
			hs_log(LOG_WARNING, "queue: %s", why ? why : "out of memory");
			free(why);
		}
		json_object_set_new(doc, "after_upload_pending",
				    json_integer((json_int_t)after_pending));
	} else {
		json_decref(apis);
	}
	if (doc)
		json_object_set_new(json_object_get(doc, "bandwidth"), "paused_until",
				    d->paused_until
					? json_integer((json_int_t)d->paused_until * 1000)
					: json_null());
	if (doc)
		json_object_set_new(doc, "pause",
				    d->op_pause.on
					? json_pack("{s:s, s:I, s:I}", "by", d->op_pause.set_by,
						    "set_at", (json_int_t)d->op_pause.set_at,
						    "until", (json_int_t)d->op_pause.until)
					: json_null());
	if (doc)
		json_object_set_new(doc, "watch",
				    json_pack("{s:I, s:I, s:I, s:I, s:I, s:b, s:I}", "folders",
					      (json_int_t)ws.folders, "missing",
					      (json_int_t)ws.missing, "directories",
					      (json_int_t)ws.dirs, "unwatched_directories",
					      (json_int_t)ws.unwatched, "settling",
					      (json_int_t)ws.settling, "scanning", ws.scanning,
					      "files_queued", (json_int_t)ws.files_queued));
	if (doc && d->watcher) {
		json_t *scans = json_array();
		hs_watcher_foreach_scan(d->watcher, scan_json, scans);
		json_object_set_new(json_object_get(doc, "watch"), "scans",
				    scans ? scans : json_array());
	}
	if (doc && mi.enabled)
		json_object_set_new(doc, "mirror",
				    json_pack("{s:b, s:I, s:s?, s:I, s:I, s:I, s:I}", "running",
					      mi.running, "next_at", (json_int_t)mi.next_at,
					      "phase", mi.running ? mi.progress.phase : NULL,
					      "page", (json_int_t)mi.progress.page, "total_pages",
					      (json_int_t)mi.progress.total_pages, "details_done",
					      (json_int_t)mi.progress.details_done, "details_total",
					      (json_int_t)mi.progress.details_total));
	text = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
	if (!text || write_atomic(d->cfg->state_dir, HS_STATUS_FILE, text, 0640) != 0) {
		if (!d->status_unwritten)
			hs_log(LOG_WARNING,
			       "cannot write %s/%s: %s; `healsync status` shows old news",
			       d->cfg->state_dir, HS_STATUS_FILE,
			       text ? strerror(errno) : "out of memory");
		d->status_unwritten = true;
	} else if (d->status_unwritten) {
		hs_log(LOG_NOTICE, "%s/%s written again", d->cfg->state_dir, HS_STATUS_FILE);
		d->status_unwritten = false;
	}
	free(text);
	json_decref(doc);
}

/* While anything moves, the status is refreshed every second; an idle
 * daemon writes it once and sleeps. */
static int on_status_timer(sd_event_source *s, uint64_t usec, void *arg)
{
	struct daemon *d = arg;
	struct hs_watcher_stats ws = {0};
	uint64_t now;

	if (d->watcher)
		hs_watcher_get_stats(d->watcher, &ws);
	struct hs_mirror_sched_info mi = {0};
	if (d->mirror)
		hs_mirror_sched_get_info(d->mirror, &mi);
	bool busy = hs_uploader_active(d->up) > 0 || hs_http_waiting(d->http) > 0 || ws.scanning ||
		    ws.settling > 0 || mi.running;

	/* The next refresh counts from now, not from when this one was due:
	 * the first is due at 0, and adding the interval to that would put
	 * every following one in the past, rewriting the file back to back
	 * for as many times as the machine has been up seconds. */
	(void)usec;
	sd_event_now(d->ev, CLOCK_MONOTONIC, &now);
	update_status(d);
	sd_event_source_set_time(s, now + STATUS_INTERVAL_US);
	sd_event_source_set_enabled(s, busy ? SD_EVENT_ONESHOT : SD_EVENT_OFF);
	return 0;
}

/* Something may have changed: make sure a status refresh is coming. */
static void status_soon(struct daemon *d)
{
	int enabled = SD_EVENT_OFF;
	uint64_t now;

	sd_event_source_get_enabled(d->status_timer, &enabled);
	if (enabled != SD_EVENT_OFF)
		return;
	sd_event_now(d->ev, CLOCK_MONOTONIC, &now);
	sd_event_source_set_time(d->status_timer, now + 100 * 1000);
	sd_event_source_set_enabled(d->status_timer, SD_EVENT_ONESHOT);
}

static void on_uploader_change(void *arg)
{
	status_soon(arg);
}

static void on_stored(const struct hs_job *job, int64_t size, int64_t mtime_ns, int64_t inode,
		      void *arg)
{
	struct daemon *d = arg;

	d->last_stored_at = hs_wall_ms();
	d->stored_files++;
	d->stored_bytes += size > 0 ? (uint64_t)size : 0;
	if (d->watcher)
		hs_watcher_stored(d->watcher, job, size, mtime_ns, inode);
}

static void on_watch_queued(void *arg)
{
	struct daemon *d = arg;

	hs_uploader_kick(d->up);
	status_soon(d);
}

/* The start-up scans are done: the daemon is ready. */
static void on_watch_ready(void *arg)
{
	struct daemon *d = arg;

	d->ready = true;
	hs_log(LOG_INFO, "watch folders scanned; ready");
	sd_notify(0, "READY=1");
	status_soon(d);
}

/* Ages grow while nothing happens: the verdict is weighed again now and
 * then, and written where monitors read it. */
static int on_health_timer(sd_event_source *s, uint64_t usec, void *arg)
{
	struct daemon *d = arg;

	update_status(d);
	sd_event_source_set_time(s, usec + HEALTH_INTERVAL_US);
	sd_event_source_set_enabled(s, SD_EVENT_ON);
	return 0;
}

static int on_prune(sd_event_source *s, uint64_t usec, void *arg)
{
	struct daemon *d = arg;
	char *cause = NULL;
	size_t n = 0;

	if (hs_queue_prune(d->q, hs_wall_ms() - KEEP_FINISHED_MS, &n, &cause) != HS_Q_OK) {
		hs_log(LOG_WARNING, "queue: %s", cause ? cause : "out of memory");
		free(cause);
	} else if (n) {
		hs_log(LOG_INFO, "pruned %zu finished job%s older than 30 days", n,
		       n == 1 ? "" : "s");
	}
	sd_event_source_set_time(s, usec + PRUNE_EVERY_US);
	sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
	return 0;
}

/* ---- the queue's wake-up file ------------------------------------------ */

static int on_wake(sd_event_source *s, int fd, uint32_t revents, void *arg)
{
	struct daemon *d = arg;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool wake = false;
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			if (ev->len && strcmp(ev->name, HS_WAKEUP_FILE) == 0)
				wake = true;
			p += sizeof(*ev) + ev->len;
		}
	}
	if (wake) {
		apply_op_pause(d);
		hs_uploader_kick(d->up);
		status_soon(d);
	}
	return 0;
}

static int watch_wakeup(struct daemon *d)
{
	d->wake_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (d->wake_fd < 0 ||
	    inotify_add_watch(d->wake_fd, d->cfg->state_dir, IN_CLOSE_WRITE | IN_ATTRIB) < 0 ||
	    sd_event_add_io(d->ev, &d->wake_src, d->wake_fd, EPOLLIN, on_wake, d) < 0) {
		hs_log(LOG_ERR, "cannot watch %s: %s", d->cfg->state_dir, strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- signals ---------------------------------------------------------------- */

static void stopped(void *arg)
{
	struct daemon *d = arg;

	sd_event_exit(d->ev, d->exit_code);
}

static int on_stop_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *arg)
{
	struct daemon *d = arg;

	hs_log(LOG_NOTICE, "%s: stopping", strsignal((int)si->ssi_signo));
	sd_notify(0, "STOPPING=1\nSTATUS=stopping");
	sd_event_source_set_enabled(s, SD_EVENT_OFF);
	hs_uploader_stop(d->up, STOP_GRACE_MS, stopped, d);
	return 0;
}

/* The connections worth keeping: parallel + 2 for the Upload API and as
 * many for the storage (in the field another host: the uploads' PUTs and,
 * beside them, the calls that presign and complete them), and two for the
 * records API of the mirror. */
static long connections_kept(const struct hs_config *cfg)
{
	return 2 * ((long)cfg->upload.parallel + 2) + 2;
}

static int on_reload(sd_event_source *s, const struct signalfd_siginfo *si, void *arg)
{
	struct daemon *d = arg;
	struct hs_config *cfg;
	char *cause = NULL;

	sd_notify(0, "RELOADING=1");
	cfg = hs_config_load(d->config_path, &cause);
	if (!cfg) {
		hs_log(LOG_ERR, "reload refused, keeping the running configuration: %s",
		       cause ? cause : "out of memory");
		free(cause);
		update_status(d);
		sd_notifyf(0,
			   "READY=1\nSTATUS=reload refused, the old configuration is in force; %s",
			   d->status_line);
		return 0;
	}
	if (strcmp(cfg->state_dir, d->cfg->state_dir) != 0)
		hs_log(LOG_WARNING, "state_dir changes take effect at the next start");
	free(cfg->state_dir);
	cfg->state_dir = strdup(d->cfg->state_dir);
	if (!cfg->state_dir) {
		hs_config_free(cfg);
		sd_notify(0, "READY=1");
		return 0;
	}
	hs_http_reloaded(d->http);
	hs_http_set_max_connections(d->http, connections_kept(cfg));
	hs_uploader_reconfigure(d->up, cfg);
	hs_watcher_reconfigure(d->watcher, cfg);
	if (hs_mirror_sched_reconfigure(d->mirror, cfg, &cause) != 0) {
		hs_log(LOG_ERR, "mirror: %s", cause ? cause : "out of memory");
		free(cause);
		cause = NULL;
	}
	hs_token_watch_set(d->tokens, cfg);
	hs_config_free(d->cfg);
	d->cfg = cfg;
	hs_log_set_level(cfg->log_level);
	apply_timetable(d);
	size_t n_dropins = 0;
	while (cfg->dropins && cfg->dropins[n_dropins])
		n_dropins++;
	if (n_dropins)
		hs_log(LOG_NOTICE, "configuration reloaded from %s and %zu drop-in%s",
		       d->config_path, n_dropins, n_dropins == 1 ? "" : "s");
	else
		hs_log(LOG_NOTICE, "configuration reloaded from %s", d->config_path);
	d->reload_refused = false;
	update_status(d);
	sd_notify(0, "READY=1");
	return 0;
}

/* ---- the life of the process -------------------------------------------- */

/* One daemon per state_dir, held by a lock the kernel drops when the
 * process dies however it dies. Holding it, the daemon knows every active
 * job's lease was left by a predecessor and can take the jobs back at once
 * instead of waiting for the leases to run out. */
static int lock_state(struct daemon *d)
{
	char path[4096], pid[32];
	int n;

	snprintf(path, sizeof(path), "%s/daemon.lock", d->cfg->state_dir);
	d->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (d->lock_fd < 0) {
		hs_log(LOG_ERR, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(d->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		n = (int)pread(d->lock_fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		hs_log(LOG_ERR, "another healsync daemon (pid %s) already uses %s",
		       pid[0] ? pid : "?", d->cfg->state_dir);
		return -1;
	}
	n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(d->lock_fd, 0) != 0 || pwrite(d->lock_fd, pid, (size_t)n, 0) != n)
		hs_log(LOG_WARNING, "%s: cannot record the pid", path);
	return 0;
}

static int open_state(struct daemon *d)
{
	char path[4096], *cause = NULL;
	size_t n = 0;

	if (hs_state_dir_check(d->cfg->state_dir, true, path, sizeof(path)) != 0) {
		hs_log(LOG_ERR, "%s", path);
		return -1;
	}
	if (lock_state(d) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/queue.db", d->cfg->state_dir);
	if (hs_queue_open(path, &d->q, &cause) != HS_Q_OK ||
	    hs_queue_recover(d->q, hs_wall_ms(), &n, &cause) != HS_Q_OK) {
		hs_log(LOG_ERR, "%s: %s", path, cause ? cause : "out of memory");
		free(cause);
		return -1;
	}
	if (n)
		hs_log(LOG_NOTICE, "resuming %zu job%s interrupted by the last stop", n,
		       n == 1 ? "" : "s");
	return 0;
}

static int start(struct daemon *d)
{
	struct hs_http_opts opts = {
	    .connect_timeout_s = (long)(d->cfg->upload.connect_timeout_ms / 1000),
	    .stall_timeout_s = (long)(d->cfg->upload.stall_timeout_ms / 1000),
	    .max_connections = connections_kept(d->cfg),
	};
	sigset_t mask;
	char *cause = NULL;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0 || signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		return -1;
	if (sd_event_new(&d->ev) < 0 ||
	    sd_event_add_signal(d->ev, NULL, SIGTERM, on_stop_signal, d) < 0 ||
	    sd_event_add_signal(d->ev, NULL, SIGINT, on_stop_signal, d) < 0 ||
	    sd_event_add_signal(d->ev, NULL, SIGHUP, on_reload, d) < 0 ||
	    sd_event_set_watchdog(d->ev, true) < 0) {
		hs_log(LOG_ERR, "cannot set up the event loop");
		return -1;
	}
	if (open_state(d) != 0 || watch_wakeup(d) != 0)
		return -1;
	if (hs_queue_last_stored(d->q, &d->last_stored_at, &cause) != HS_Q_OK) {
		hs_log(LOG_WARNING, "queue: %s", cause ? cause : "out of memory");
		free(cause);
		cause = NULL;
	}

	hs_bucket_init(&d->bucket, 0, hs_mono_us());
	d->http = hs_http_new(d->ev, &opts, &d->bucket, &cause);
	if (d->http)
		d->up = hs_uploader_new(d->ev, d->cfg, d->q, d->http, &cause);
	if (!d->up) {
		hs_log(LOG_ERR, "cannot start: %s", cause ? cause : "out of memory");
		free(cause);
		return -1;
	}
	hs_uploader_on_change(d->up, on_uploader_change, d);
	hs_uploader_on_stored(d->up, on_stored, d);
	d->mirror = hs_mirror_sched_new(d->ev, d->cfg, d->http, on_uploader_change, d, &cause);
	if (!d->mirror) {
		hs_log(LOG_ERR, "cannot start the mirror: %s", cause ? cause : "out of memory");
		free(cause);
		return -1;
	}
	d->tokens = hs_token_watch_new(d->ev, d->cfg, &cause);
	if (!d->tokens) {
		hs_log(LOG_ERR, "cannot start: %s", cause ? cause : "out of memory");
		free(cause);
		return -1;
	}
	const struct hs_watcher_hooks hooks = {on_watch_queued, on_watch_ready, d};
	d->watcher = hs_watcher_new(d->ev, d->cfg, d->q, &hooks, &cause);
	if (!d->watcher) {
		hs_log(LOG_ERR, "cannot start: %s", cause ? cause : "out of memory");
		free(cause);
		return -1;
	}
	if (sd_event_add_time(d->ev, &d->timetable_timer, CLOCK_REALTIME, 0, 1000 * 1000,
			      on_timetable, d) < 0 ||
	    sd_event_add_time(d->ev, &d->op_pause_timer, CLOCK_REALTIME, 0, 1000 * 1000,
			      on_op_pause_end, d) < 0 ||
	    sd_event_add_time(d->ev, &d->status_timer, CLOCK_MONOTONIC, 0, 50 * 1000,
			      on_status_timer, d) < 0 ||
	    sd_event_add_time_relative(d->ev, &d->prune_timer, CLOCK_MONOTONIC, 60 * 1000 * 1000,
				       60 * 1000 * 1000, on_prune, d) < 0 ||
	    sd_event_add_time_relative(d->ev, &d->health_timer, CLOCK_MONOTONIC, HEALTH_INTERVAL_US,
				       1000 * 1000, on_health_timer, d) < 0) {
		hs_log(LOG_ERR, "cannot add timers to the event loop");
		return -1;
	}
	sd_event_source_set_enabled(d->op_pause_timer, SD_EVENT_OFF);
	apply_timetable(d);
	apply_op_pause(d);
	return 0;
}

int hs_daemon_run(const char *config_path, struct hs_config *cfg)
{
	struct daemon d = {.config_path = config_path, .cfg = cfg, .wake_fd = -1, .lock_fd = -1};
	int rc = 1;

	/* Keys and file contents must never end up in a core dump. */
	prctl(PR_SET_DUMPABLE, 0);
	hs_log_init(cfg->log_level);
	d.started_at = hs_wall_ms();
	if (start(&d) == 0) {
		update_status(&d);
		hs_log(LOG_NOTICE, "healsync %s started: %zu watch folder%s, %u transfers at once",
		       PACKAGE_VERSION, d.cfg->n_watches, d.cfg->n_watches == 1 ? "" : "s",
		       d.cfg->upload.parallel);
		status_soon(&d);
		rc = sd_event_loop(d.ev) < 0 ? 1 : d.exit_code;
		d.stopped = true;
		update_status(&d);
		/* systemd keeps the last STATUS= of a stopped unit: none. */
		sd_notify(0, "STATUS=");
		hs_log(LOG_NOTICE, "stopped");
	}
	hs_watcher_free(d.watcher);
	hs_token_watch_free(d.tokens);
	hs_mirror_sched_free(d.mirror);
	hs_uploader_free(d.up);
	hs_http_free(d.http);
	sd_event_source_disable_unref(d.wake_src);
	sd_event_source_disable_unref(d.timetable_timer);
	sd_event_source_disable_unref(d.op_pause_timer);
	sd_event_source_disable_unref(d.status_timer);
	sd_event_source_disable_unref(d.prune_timer);
	sd_event_source_disable_unref(d.health_timer);
	if (d.wake_fd >= 0)
		close(d.wake_fd);
	hs_queue_close(d.q);
	if (d.lock_fd >= 0)
		close(d.lock_fd);
	sd_event_unref(d.ev);
	hs_config_free(d.cfg);
	return rc;
}
