/*
 * status [--json]: the queue's counts, and what a running daemon last
 * reported in state_dir/status.json (transfers, bandwidth, rate limits).
 * Reading files only: the daemon is not disturbed.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/cli.h"
#include "agent/daemon.h"
#include "agent/filter.h"
#include "agent/health.h"
#include "agent/mirror_db.h"
#include "conf/units.h"

static void print_run_time(const char *label, json_int_t ms);

static void print_time(const char *label, json_int_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char buf[32];

	if (ms > 0 && localtime_r(&t, &tm) && strftime(buf, sizeof(buf), "%H:%M:%S", &tm))
		printf("%s%s", label, buf);
}

/* label and "HH:MM" (local), or "Ddd HH:MM" a day or more ahead. */
static void print_hm(const char *label, json_int_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char buf[32];

	if (ms > 0 && localtime_r(&t, &tm) &&
	    strftime(buf, sizeof(buf), t - time(NULL) >= 24 * 3600 ? "%a %H:%M" : "%H:%M", &tm))
		printf("%s%s", label, buf);
}

static void print_health(const struct hs_health *h, json_t *d)
{
	json_int_t last = json_integer_value(json_object_get(d, "last_upload_at"));
	char summary[512];

	printf("health: %s", hs_health_state_name(h->state));
	print_run_time(" since ", h->since);
	printf(", %s\n", hs_health_summary(h, summary, sizeof(summary)));
	if (d) {
		printf("last upload: ");
		if (last > 0)
			print_run_time("", last);
		else
			printf("none yet");
		printf("\n");
	}
}

static void print_daemon(json_t *d)
{
	json_t *v, *bw = json_object_get(d, "bandwidth");
	char a[32], b[32];
	size_t i;

	if (!d) {
		printf("daemon: not running\n");
		return;
	}
	printf("daemon: pid %" JSON_INTEGER_FORMAT ", %s\n",
	       json_integer_value(json_object_get(d, "pid")),
	       json_string_value(json_object_get(d, "summary")));
	json_array_foreach(json_object_get(d, "transfers"), i, v)
	{
		json_int_t size = json_integer_value(json_object_get(v, "size_bytes"));
		json_int_t sent = json_integer_value(json_object_get(v, "sent_bytes"));
		json_t *parts = json_object_get(v, "parts");
		printf("  job %-6" JSON_INTEGER_FORMAT " %-10s %5.1f%%  %s of %s",
		       json_integer_value(json_object_get(v, "job_id")),
		       json_string_value(json_object_get(v, "step")),
		       size ? 100.0 * (double)sent / (double)size : 100.0,
		       hs_format_size((uint64_t)sent, a, sizeof(a)),
		       hs_format_size((uint64_t)size, b, sizeof(b)));
		if (parts)
			printf(", part %" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT,
			       json_integer_value(json_object_get(parts, "done")),
			       json_integer_value(json_object_get(parts, "count")));
		printf("  %s\n", json_string_value(json_object_get(v, "remote_name")));
	}
	json_int_t limit = json_integer_value(json_object_get(bw, "limit_bytes_per_s"));
	printf("bandwidth: %s/s now, limit %s%s",
	       hs_format_size((uint64_t)json_number_value(json_object_get(bw, "rate_bytes_per_s")),
			      a, sizeof(a)),
	       limit ? hs_format_size((uint64_t)limit, b, sizeof(b)) : "off", limit ? "/s" : "");
	print_hm(", uploads paused until ",
		 json_integer_value(json_object_get(bw, "paused_until")));
	printf("\n");
	json_array_foreach(json_object_get(d, "rate_limits"), i, v)
	{
		printf("rate limit: %s (%s): ", json_string_value(json_object_get(v, "api")),
		       json_string_value(json_object_get(v, "host")));
		if (!json_is_true(json_object_get(v, "known"))) {
			printf("not announced by the server\n");
			continue;
		}
		printf("%" JSON_INTEGER_FORMAT " of %" JSON_INTEGER_FORMAT " left",
		       json_integer_value(json_object_get(v, "remaining")),
		       json_integer_value(json_object_get(v, "limit")));
		print_time(", resets ", json_integer_value(json_object_get(v, "reset_at")));
		print_time(", blocked until ",
			   json_integer_value(json_object_get(v, "blocked_until")));
		printf(", %" JSON_INTEGER_FORMAT " throttled\n",
		       json_integer_value(json_object_get(v, "throttled")));
	}
}

/* Each folder's last full scan, as the daemon's journal line said it:
 * "scan of /srv/exports at 02:00: 1,204 files, 3 queued, 1,180 too old
 * (max_age 30d)". */
static void print_scans(json_t *d)
{
	json_t *v;
	size_t i;

	json_array_foreach(json_object_get(json_object_get(d, "watch"), "scans"), i, v)
	{
		json_t *counts = json_object_get(v, "counts"), *rules = json_object_get(v, "rules");
		json_int_t at = json_integer_value(json_object_get(v, "at"));
		char num[32];

		printf("scan of %s", json_string_value(json_object_get(v, "path")));
		if (!at) {
			printf(": not finished yet\n");
			continue;
		}
		print_hm(" at ", at);
		printf(": %s files",
		       hs_format_count((uint64_t)json_integer_value(json_object_get(v, "files")),
				       num, sizeof(num)));
		for (int r = 0; r < HS_REASON_COUNT; r++) {
			const char *name = hs_reason_name((enum hs_reason)r);
			json_int_t n = json_integer_value(json_object_get(counts, name));
			const char *rule = json_string_value(json_object_get(rules, name));

			if (n || r == HS_REASON_SEND)
				printf(", %s %s%s%s%s",
				       hs_format_count((uint64_t)n, num, sizeof(num)),
				       r == HS_REASON_SEND ? "queued"
							   : hs_reason_text((enum hs_reason)r),
				       rule ? " (" : "", rule ? rule : "", rule ? ")" : "");
		}
		json_int_t dirs = json_integer_value(json_object_get(v, "dirs_excluded"));
		if (dirs)
			printf("; %s folder%s excluded (%s)",
			       hs_format_count((uint64_t)dirs, num, sizeof(num)),
			       dirs == 1 ? "" : "s",
			       json_string_value(json_object_get(rules, "excluded")));
		printf("\n");
	}
}

static json_t *run_json(const struct hs_mirror_run *r)
{
	if (r->id == 0)
		return json_null();
	return json_pack("{s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s?}", "id",
			 (json_int_t)r->id, "status", r->status, "started_at",
			 (json_int_t)r->started_at, "ended_at", (json_int_t)r->ended_at, "pages",
			 (json_int_t)r->pages, "records", (json_int_t)r->records, "created",
			 (json_int_t)r->created, "updated", (json_int_t)r->updated, "deleted",
			 (json_int_t)r->deleted, "error", r->error[0] ? r->error : NULL);
}

/* The mirror's last runs from its database (readable without a daemon),
 * with the running daemon's view of the next one. NULL: no mirror. */
static json_t *mirror_status(const struct hs_config *cfg, json_t *daemon)
{
	struct hs_mirror_run last = {0}, last_ok = {0};
	json_t *m, *live = json_object_get(daemon, "mirror");
	char *cause = NULL;

	if (!cfg->mirror.enabled)
		return NULL;
	if (hs_mirror_db_read_runs(cfg->mirror.database, &last, &last_ok, &cause) < 0)
		hs_cli_error("%s: %s", cfg->mirror.database, cause ? cause : "out of memory");
	free(cause); /* HS_MDB_EMPTY says "no mirror run yet" too */
	m = json_pack("{s:o, s:o}", "last_run", run_json(&last), "last_success",
		      run_json(&last_ok));
	if (m && live)
		json_object_update(m, live);
	return m;
}

static void print_run_time(const char *label, json_int_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char buf[40];

	if (ms > 0 && localtime_r(&t, &tm) && strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M", &tm))
		printf("%s%s", label, buf);
}

static void print_mirror(json_t *m)
{
	json_t *last = json_object_get(m, "last_run");

	if (!m)
		return;
	printf("mirror: ");
	if (json_is_object(last)) {
		printf("last run %" JSON_INTEGER_FORMAT " %s",
		       json_integer_value(json_object_get(last, "id")),
		       json_string_value(json_object_get(last, "status")));
		print_run_time(" at ", json_integer_value(json_object_get(last, "started_at")));
		printf(" (%" JSON_INTEGER_FORMAT " records, %" JSON_INTEGER_FORMAT
		       " new, %" JSON_INTEGER_FORMAT " changed, %" JSON_INTEGER_FORMAT " deleted)",
		       json_integer_value(json_object_get(last, "records")),
		       json_integer_value(json_object_get(last, "created")),
		       json_integer_value(json_object_get(last, "updated")),
		       json_integer_value(json_object_get(last, "deleted")));
	} else {
		printf("no run yet");
	}
	if (json_is_true(json_object_get(m, "running")))
		printf("; running now, page %" JSON_INTEGER_FORMAT " of %" JSON_INTEGER_FORMAT,
		       json_integer_value(json_object_get(m, "page")),
		       json_integer_value(json_object_get(m, "total_pages")));
	else
		print_run_time("; next ", json_integer_value(json_object_get(m, "next_at")));
	printf("\n");
}

/* A new reference to v, or JSON null when there is none. */
static json_t *or_null(json_t *v)
{
	return v ? json_incref(v) : json_null();
}

/* Whether this user may open the queue: root (who acts as its owner), its
 * owner, or anyone when there is no state_dir yet (it is made). */
static bool owns_state(const struct hs_config *cfg)
{
	struct stat st;

	return geteuid() == 0 || stat(cfg->state_dir, &st) != 0 || st.st_uid == geteuid();
}

int hs_cmd_status(struct hs_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {NULL, 0, NULL, 0},
	};
	int64_t counts[HS_JOB_NSTATES] = {0}, after_pending = 0;
	struct hs_queue *q = NULL;
	int open_rc;
	bool own;
	json_t *doc = NULL, *queue, *daemon = NULL, *mirror = NULL;
	bool as_json = false;
	int c, rc = HS_EXIT_FAILURE;
	char *cause = NULL;
	struct hs_health_limits lim;
	struct hs_health health;
	int64_t now = hs_wall_ms();

	while ((c = getopt_long(argc, argv, "+j", opts, NULL)) != -1) {
		if (c != 'j')
			return HS_EXIT_USAGE;
		as_json = true;
	}
	if (optind < argc) {
		hs_cli_error("usage: healsync status [--json]");
		return HS_EXIT_USAGE;
	}
	cli->load_flags |= HS_CONFIG_NO_KEYS; /* a monitor may not read them */
	if (!hs_cli_config(cli))
		return HS_EXIT_CONFIG;
	/* A member of the service's group reads the daemon's report only. */
	own = owns_state(cli->cfg);
	if (own) {
		open_rc = hs_cli_open_queue(cli, &q);
		if (open_rc != HS_EXIT_OK)
			return open_rc;
		if (hs_queue_counts(q, counts, &cause) != HS_Q_OK ||
		    hs_queue_after_count(q, &after_pending, &cause) != HS_Q_OK) {
			hs_cli_error("%s", cause ? cause : "out of memory");
			goto out;
		}
	}
	lim = hs_health_limits_of(cli->cfg);
	if (hs_cli_health(cli->cfg, &lim, now, &daemon, &health, &cause) != 0) {
		hs_cli_error("%s", cause ? cause : "out of memory");
		goto out;
	}
	if (!own) {
		json_t *dq = json_object_get(daemon, "queue");
		for (int s = 0; s < HS_JOB_NSTATES; s++)
			counts[s] = json_integer_value(json_object_get(dq, hs_job_state_name(s)));
		after_pending = json_integer_value(json_object_get(daemon, "after_upload_pending"));
	}
	/* The pause lives in the queue; a monitor sees it as the daemon reported it. */
	struct hs_pause pause = {0};
	if (own) {
		if (hs_queue_pause_get(q, now, &pause, &cause) != HS_Q_OK) {
			hs_cli_error("%s", cause ? cause : "out of memory");
			goto out;
		}
	} else {
		json_t *dp = json_object_get(daemon, "pause");
		if (json_is_object(dp)) {
			pause.on = true;
			pause.until = json_integer_value(json_object_get(dp, "until"));
			pause.set_at = json_integer_value(json_object_get(dp, "set_at"));
			snprintf(pause.set_by, sizeof(pause.set_by), "%s",
				 json_string_value(json_object_get(dp, "by"))
				     ? json_string_value(json_object_get(dp, "by"))
				     : "");
		}
	}
	mirror =
	    own ? mirror_status(cli->cfg, daemon) : json_incref(json_object_get(daemon, "mirror"));

	if (as_json) {
		doc = json_object();
		queue = json_object();
		if (!doc || !queue || json_object_set_new(doc, "queue", queue) != 0)
			goto out;
		for (int s = 0; s < HS_JOB_NSTATES; s++)
			json_object_set_new(queue, hs_job_state_name(s), json_integer(counts[s]));
		json_object_set_new(doc, "after_upload_pending", json_integer(after_pending));
		json_object_set_new(doc, "health", hs_health_json(&health));
		json_int_t oldest = json_integer_value(
		    json_object_get(json_object_get(daemon, "health_facts"), "oldest_waiting_at"));
		json_object_set_new(doc, "last_upload_at",
				    or_null(json_object_get(daemon, "last_upload_at")));
		/* Counted now: the daemon may have written it a while ago. */
		json_object_set_new(doc, "oldest_queued_age_s",
				    oldest > 0 ? json_integer(((json_int_t)now - oldest) / 1000)
					       : json_null());
		json_object_set_new(doc, "apis", or_null(json_object_get(daemon, "apis")));
		json_object_set_new(
		    doc, "last_scans",
		    or_null(json_object_get(json_object_get(daemon, "watch"), "scans")));
		json_object_set_new(doc, "pause",
				    pause.on ? json_pack("{s:s, s:I, s:I}", "by", pause.set_by,
							 "set_at", (json_int_t)pause.set_at,
							 "until", (json_int_t)pause.until)
					     : json_null());
		json_object_set(doc, "daemon", daemon ? daemon : json_null());
		json_object_set(doc, "mirror", mirror ? mirror : json_null());
		if (json_dumpf(doc, stdout, JSON_INDENT(2)) != 0 || putchar('\n') == EOF)
			goto out;
	} else {
		printf("queue:");
		for (int s = 0; s < HS_JOB_NSTATES; s++)
			printf(" %" PRId64 " %s%s", counts[s], hs_job_state_name(s),
			       s + 1 < HS_JOB_NSTATES ? "," : "\n");
		if (after_pending)
			printf("after upload: %" PRId64 " stored file%s still to delete or move "
			       "(healsync jobs --after-pending; the journal says why)\n",
			       after_pending, after_pending == 1 ? "" : "s");
		print_health(&health, daemon);
		if (pause.on && pause.until)
			print_hm("paused: uploads held by the operator until ", pause.until);
		else if (pause.on)
			printf("paused: uploads held by the operator until resumed");
		if (pause.on)
			printf(" (paused by %s)\n", pause.set_by);
		print_daemon(daemon);
		print_scans(daemon);
		print_mirror(mirror);
	}
	/* Exits by the verdict, as `healsync check` does: 0, 1 or 2. */
	rc = fflush(stdout) == 0 ? (int)health.state : HS_EXIT_FAILURE;
out:
	free(cause);
	json_decref(daemon);
	json_decref(mirror);
	json_decref(doc);
	hs_queue_close(q);
	return rc;
}
