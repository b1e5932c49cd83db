/* jobs [--state S] [--limit N | --latest N] [--since TIME] [--json]: list
 * jobs; --limit takes the oldest N, --latest the newest N, newest first. */
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

static int print_row(const struct hs_job *job, void *arg)
{
	char size[32], updated[32];

	(void)arg;
	printf("%-8" PRId64 " %-8s %8u %10s  %s  %s\n", job->id, hs_job_state_name(job->state),
	       job->attempts, hs_format_size((uint64_t)job->size, size, sizeof(size)),
	       format_time(job->updated_at, updated, sizeof(updated)), job->remote_name);
	if (job->last_error &&
	    (job->state == HS_JOB_FAILED || job->state == HS_JOB_DEAD || job->state == HS_JOB_GONE))
		printf("         error: %s\n", job->last_error);
	return 0;
}

static json_t *job_json(const struct hs_job *job)
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
	if (job->upload_id)
		json_object_set_new(o, "multipart",
				    json_pack("{s:s, s:I, s:i}", "upload_id", job->upload_id,
					      "part_size_bytes", (json_int_t)job->part_size,
					      "part_count", (int)job->part_count));
	return o;
}

static int append_json(const struct hs_job *job, void *arg)
{
	json_t *o = job_json(job);

	return o ? json_array_append_new(arg, o) : -1;
}

static int list_jobs(struct hs_queue *q, int state, bool recent, int64_t since, size_t n,
		     int (*fn)(const struct hs_job *job, void *arg), void *arg, char **cause)
{
	if (recent)
		return hs_queue_list_recent(q, state, since, n, fn, arg, cause);
	return hs_queue_list(q, state, n, fn, arg, cause);
}

/* "YYYY-MM-DD" or "YYYY-MM-DD HH:MM", local time, as Unix ms. */
static int parse_since(const char *s, int64_t *ret)
{
	static const char *const forms[] = {"%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d"};
	struct tm tm;
	const char *end;
	time_t t;

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		memset(&tm, 0, sizeof(tm));
		end = strptime(s, forms[i], &tm);
		if (end && !*end) {
			tm.tm_isdst = -1;
			if ((t = mktime(&tm)) == (time_t)-1)
				return -1;
			*ret = (int64_t)t * 1000;
			return 0;
		}
	}
	return -1;
}

int hs_cmd_jobs(struct hs_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"state", required_argument, NULL, 's'},  {"limit", required_argument, NULL, 'n'},
	    {"latest", required_argument, NULL, 'L'}, {"since", required_argument, NULL, 'S'},
	    {"json", no_argument, NULL, 'j'},	      {NULL, 0, NULL, 0},
	};
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
			} else if (parse_since(optarg, &since) != 0) {
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
		default:
			return HS_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		hs_cli_error("usage: healsync jobs [--state S] [--limit N | --latest N] "
			     "[--since TIME] [--json]");
		return HS_EXIT_USAGE;
	}
	cli->load_flags |= HS_CONFIG_NO_KEYS; /* a monitor may not read them */
	open_rc = hs_cli_open_queue_read(cli, &q);
	if (open_rc != HS_EXIT_OK)
		return open_rc;

	if (as_json) {
		list = json_array();
		if (!list ||
		    list_jobs(q, state, recent, since, limit, append_json, list, &cause) != HS_Q_OK)
			goto out;
		if (json_dumpf(list, stdout, JSON_INDENT(2)) != 0 || putchar('\n') == EOF)
			goto out;
	} else {
		printf("%-8s %-8s %8s %10s  %-19s  %s\n", "ID", "STATE", "ATTEMPTS", "SIZE",
		       "UPDATED", "REMOTE NAME");
		if (list_jobs(q, state, recent, since, limit, print_row, NULL, &cause) != HS_Q_OK)
			goto out;
	}
	rc = fflush(stdout) == 0 ? HS_EXIT_OK : HS_EXIT_FAILURE;
out:
	if (rc != HS_EXIT_OK)
		hs_cli_error("%s", cause ? cause : "cannot list jobs");
	free(cause);
	json_decref(list);
	hs_queue_close(q);
	return rc;
}
