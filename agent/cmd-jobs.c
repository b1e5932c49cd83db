/* jobs [--state S] [--limit N | --latest N] [--since TIME] [--after-pending]
 * [--json]: list jobs; --limit takes the oldest N, --latest the newest N,
 * newest first. A done or skipped job whose after-upload action (delete,
 * move) is still to do says so, with the reason; --after-pending lists only
 * those. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/cli.h"
#include "conf/units.h"

static const char *format_time(int64_t ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (ms <= 0 || !localtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(buf, len, "-");
	return buf;
}

/* The pending after-upload actions, looked up by job. */
struct listing {
	struct hs_after_entry *after;
	size_t n_after;
	bool only_pending;
	json_t *list; /* --json */
};

static const struct hs_after_entry *pending_of(const struct listing *l, const struct hs_job *job)
{
	if (job->state != HS_JOB_DONE && job->state != HS_JOB_SKIPPED)
		return NULL;
	for (size_t i = 0; i < l->n_after; i++)
		if (l->after[i].job_id == job->id)
			return &l->after[i];
	return NULL;
}

static int print_row(const struct hs_job *job, void *arg)
{
	const struct listing *l = arg;
	const struct hs_after_entry *e = pending_of(l, job);
	char size[32], updated[32], next[32];

	if (l->only_pending && !e)
		return 0;
	printf("%-8" PRId64 " %-8s %8u %10s  %s  %s\n", job->id, hs_job_state_name(job->state),
	       job->attempts, hs_format_size((uint64_t)job->size, size, sizeof(size)),
	       format_time(job->updated_at, updated, sizeof(updated)), job->remote_name);
	if (job->last_error &&
	    (job->state == HS_JOB_FAILED || job->state == HS_JOB_DEAD || job->state == HS_JOB_GONE))
		printf("         error: %s\n", job->last_error);
	if (e)
		printf("         after upload pending (%u attempt%s, next at %s): %s\n",
		       e->attempts, e->attempts == 1 ? "" : "s",
		       format_time(e->due_at, next, sizeof(next)), e->last_error);
	return 0;
}

static json_t *job_json(const struct hs_job *job, const struct hs_after_entry *e)
{
	json_t *o =
	    json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:i, s:I, s:I}", "id",
		      (json_int_t)job->id, "state", hs_job_state_name(job->state), "path",
		      job->path, "watch", job->watch_root, "remote_name", job->remote_name,
		      "size_bytes", (json_int_t)job->size, "mtime_ns", (json_int_t)job->mtime_ns,
		      "inode", (json_int_t)job->inode, "attempts", (int)job->attempts, "created_at",
		      (json_int_t)job->created_at, "updated_at", (json_int_t)job->updated_at);

	if (!o)
		return NULL;
	json_object_set_new(o, "sha256", job->sha256[0] ? json_string(job->sha256) : json_null());
	json_object_set_new(o, "last_error",
			    job->last_error ? json_string(job->last_error) : json_null());
	json_object_set_new(o, "next_attempt_at",
			    job->state == HS_JOB_FAILED ? json_integer(job->next_attempt_at)
							: json_null());
	json_object_set_new(o, "after_upload_pending",
			    e ? json_pack("{s:I, s:i, s:I, s:s}", "since", (json_int_t)e->since,
					  "attempts", (int)e->attempts, "next_attempt_at",
					  (json_int_t)e->due_at, "error", e->last_error)
			      : json_null());
	if (job->upload_id)
		json_object_set_new(o, "multipart",
				    json_pack("{s:s, s:I, s:i}", "upload_id", job->upload_id,
					      "part_size_bytes", (json_int_t)job->part_size,
					      "part_count", (int)job->part_count));
	return o;
}

static int append_json(const struct hs_job *job, void *arg)
{
	const struct listing *l = arg;
	const struct hs_after_entry *e = pending_of(l, job);
	json_t *o;

	if (l->only_pending && !e)
		return 0;
	o = job_json(job, e);
	return o ? json_array_append_new(l->list, o) : -1;
}

/* Pending actions whose job is gone (purged or pruned): listed by path
 * after the jobs, so --after-pending shows every one status counts. */
static int list_orphans(struct hs_queue *q, const struct listing *l, char **cause)
{
	char next[32];

	for (size_t i = 0; i < l->n_after; i++) {
		const struct hs_after_entry *e = &l->after[i];
		struct hs_job *job = NULL;
		int rc = e->job_id > 0 ? hs_queue_get(q, e->job_id, &job, cause) : HS_Q_EMPTY;

		hs_job_free(job);
		if (rc == HS_Q_OK)
			continue;
		if (rc != HS_Q_EMPTY)
			return rc;
		if (l->list) {
			json_t *o = json_pack("{s:n, s:s, s:s, s:{s:I, s:i, s:I, s:s}}", "id",
					      "path", e->path, "watch", e->watch_root,
					      "after_upload_pending", "since", (json_int_t)e->since,
					      "attempts", (int)e->attempts, "next_attempt_at",
					      (json_int_t)e->due_at, "error", e->last_error);
			if (!o || json_array_append_new(l->list, o) != 0)
				return HS_Q_ERROR;
		} else {
			printf("%-8s %-8s %8s %10s  %-19s  %s\n", "-", "-", "-", "-", "-", e->path);
			printf("         after upload pending (%u attempt%s, next at %s): %s\n",
			       e->attempts, e->attempts == 1 ? "" : "s",
			       format_time(e->due_at, next, sizeof(next)), e->last_error);
		}
	}
	return HS_Q_OK;
}

static int list_jobs(struct hs_queue *q, int state, bool recent, int64_t since, size_t n,
		     int (*fn)(const struct hs_job *job, void *arg), void *arg, char **cause)
{
	if (recent)
		return hs_queue_list_recent(q, state, since, n, fn, arg, cause);
	return hs_queue_list(q, state, n, fn, arg, cause);
}

int hs_cmd_jobs(struct hs_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"state", required_argument, NULL, 's'},
	    {"limit", required_argument, NULL, 'n'},
	    {"latest", required_argument, NULL, 'L'},
	    {"since", required_argument, NULL, 'S'},
	    {"json", no_argument, NULL, 'j'},
	    {"after-pending", no_argument, NULL, 'A'},
	    {NULL, 0, NULL, 0},
	};
	struct listing l = {0};
	bool recent = false;
	int64_t since = 0;
	uint64_t ago;
	struct hs_queue *q;
	int open_rc;
	json_t *list = NULL;
	bool as_json = false;
	int c, state = -1, rc = HS_EXIT_FAILURE;
	unsigned long limit = 0;
	char *cause = NULL, *end;

	while ((c = getopt_long(argc, argv, "+s:n:j", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			state = hs_job_state_parse(optarg);
			if (state < 0) {
				hs_cli_error("unknown state '%s' (queued, active, done, failed, "
					     "dead, skipped, gone)",
					     optarg);
				return HS_EXIT_USAGE;
			}
			break;
		case 'S':
			recent = true;
			if (hs_parse_duration_ms(optarg, &ago) == 0 && ago < INT64_MAX / 2) {
				since = hs_wall_ms() - (int64_t)ago;
			} else if (hs_parse_local_time(optarg, &since) == 0) {
				since *= 1000;
			} else {
				hs_cli_error("--since: '%s' is neither a duration (2h) nor a date "
					     "(YYYY-MM-DD [HH:MM])",
					     optarg);
				return HS_EXIT_USAGE;
			}
			break;
		case 'L':
			recent = true;
			/* fall through */
		case 'n':
			errno = 0;
			limit = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end) {
				hs_cli_error("%s wants a number, not '%s'",
					     c == 'L' ? "--latest" : "--limit", optarg);
				return HS_EXIT_USAGE;
			}
			break;
		case 'j':
			as_json = true;
			break;
		case 'A':
			l.only_pending = true;
			break;
		default:
			return HS_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		hs_cli_error("usage: healsync jobs [--state S] [--limit N | --latest N] "
			     "[--since TIME] [--after-pending] [--json]");
		return HS_EXIT_USAGE;
	}
	cli->load_flags |= HS_CONFIG_NO_KEYS; /* a monitor may not read them */
	open_rc = hs_cli_open_queue_read(cli, &q);
	if (open_rc != HS_EXIT_OK)
		return open_rc;
	if (hs_queue_after_due(q, INT64_MAX, 0, &l.after, &l.n_after, &cause) != HS_Q_OK)
		goto out;

	if (as_json) {
		l.list = list = json_array();
		if (!list ||
		    list_jobs(q, state, recent, since, limit, append_json, &l, &cause) != HS_Q_OK ||
		    (l.only_pending && list_orphans(q, &l, &cause) != HS_Q_OK))
			goto out;
		if (json_dumpf(list, stdout, JSON_INDENT(2)) != 0 || putchar('\n') == EOF)
			goto out;
	} else {
		printf("%-8s %-8s %8s %10s  %-19s  %s\n", "ID", "STATE", "ATTEMPTS", "SIZE",
		       "UPDATED", "REMOTE NAME");
		if (list_jobs(q, state, recent, since, limit, print_row, &l, &cause) != HS_Q_OK ||
		    (l.only_pending && list_orphans(q, &l, &cause) != HS_Q_OK))
			goto out;
	}
	rc = fflush(stdout) == 0 ? HS_EXIT_OK : HS_EXIT_FAILURE;
out:
	if (rc != HS_EXIT_OK)
		hs_cli_error("%s", cause ? cause : "cannot list jobs");
	free(cause);
	json_decref(list);
	hs_after_entries_free(l.after, l.n_after);
	hs_queue_close(q);
	return rc;
}
