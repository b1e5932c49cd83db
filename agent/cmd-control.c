/*
 * pause, resume, cancel, purge: the operator's controls. Each is kept in
 * the queue (so it holds across restarts and is safe while the daemon
 * runs), wakes the daemon, and is recorded as one journal line naming the
 * user who ran it.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-journal.h>
#include <time.h>
#include <unistd.h>

#include "agent/cli.h"
#include "agent/log.h"
#include "conf/units.h"

/* Who ran the command: the login name, and under sudo the user who asked
 * for it (SUDO_USER is trusted only when we are root, and only as a plain
 * name). */
static void who(char *buf, size_t len)
{
	const struct passwd *pw = getpwuid(getuid());
	const char *sudo = getenv("SUDO_USER");
	bool plain = sudo && *sudo && strlen(sudo) <= 32;

	for (const char *p = sudo; plain && *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("._-", *p))
			plain = false;
	if (pw)
		snprintf(buf, len, "%s", pw->pw_name);
	else
		snprintf(buf, len, "uid %u", (unsigned)getuid());
	if (getuid() == 0 && plain && strcmp(sudo, buf) != 0)
		snprintf(buf, len, "%s", sudo);
}

/* One journal line for an action (journalctl -t healsync HEALSYNC_ACTION=...);
 * where no journal listens (a container), the line goes to stderr. */
static void record(const char *user, const char *action, int64_t job, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void record(const char *user, const char *action, int64_t job, const char *fmt, ...)
{
	char msg[512], jobs[32];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(jobs, sizeof(jobs), "%" PRId64, job);
	/* sd_journal_send reports success when no journal listens at all. */
	if (access("/run/systemd/journal/socket", W_OK) != 0 ||
	    sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", LOG_NOTICE,
			    "SYSLOG_IDENTIFIER=healsync", "MESSAGE_ID=%s", HS_MSGID_OPERATOR,
			    "HEALSYNC_USER=%s", user, "HEALSYNC_ACTION=%s", action,
			    job > 0 ? "HEALSYNC_JOB=%s" : NULL, jobs, NULL) < 0)
		fprintf(stderr, "healsync: %s\n", msg);
}

/* A local time as hs_parse_local_time reads it, or "HH:MM" (the next such
 * minute), as Unix ms. */
static int parse_time(const char *s, time_t now, int64_t *ret)
{
	struct tm tm;
	const char *end;
	int64_t secs;
	time_t t;

	if (hs_parse_local_time(s, &secs) == 0) {
		*ret = secs * 1000;
		return 0;
	}
	if (!localtime_r(&now, &tm))
		return -1;
	end = strptime(s, "%H:%M", &tm);
	if (!end || *end)
		return -1;
	tm.tm_sec = 0;
	tm.tm_isdst = -1;
	t = mktime(&tm);
	if (t != (time_t)-1 && t <= now) {
		tm.tm_mday++;
		tm.tm_isdst = -1;
		t = mktime(&tm);
	}
	if (t == (time_t)-1)
		return -1;
	*ret = (int64_t)t * 1000;
	return 0;
}

static const char *format_local(int64_t ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (!localtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M", &tm))
		snprintf(buf, len, "?");
	return buf;
}

int hs_cmd_pause(struct hs_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"until", required_argument, NULL, 'u'},
	    {"for", required_argument, NULL, 'f'},
	    {NULL, 0, NULL, 0},
	};
	int64_t now = hs_wall_ms(), until = 0;
	uint64_t d;
	char user[64], when[32], *cause = NULL;
	struct hs_queue *q;
	int c, rc, n = 0;

	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		n++;
		if (c == 'u' && parse_time(optarg, (time_t)(now / 1000), &until) != 0) {
			hs_cli_error("--until: '%s' is not a time (YYYY-MM-DD HH:MM, or HH:MM)",
				     optarg);
			return HS_EXIT_USAGE;
		} else if (c == 'f' &&
			   (hs_parse_duration_ms(optarg, &d) != 0 || d == 0 || d > INT64_MAX / 2)) {
			hs_cli_error("--for: '%s' is not a duration (30m, 8h, 2d)", optarg);
			return HS_EXIT_USAGE;
		} else if (c == 'f') {
			until = now + (int64_t)d;
		} else if (c != 'u' && c != 'f') {
			return HS_EXIT_USAGE;
		}
	}
	if (optind < argc || n > 1) {
		hs_cli_error("usage: healsync pause [--until TIME | --for DURATION]");
		return HS_EXIT_USAGE;
	}
	if (n && until <= now) {
		hs_cli_error("--until: %s is in the past", format_local(until, when, sizeof(when)));
		return HS_EXIT_USAGE;
	}
	who(user, sizeof(user));
	if ((rc = hs_cli_open_queue(cli, &q)) != HS_EXIT_OK)
		return rc;
	if (hs_queue_pause_set(q, until, user, now, &cause) != HS_Q_OK) {
		hs_cli_error("%s", cause ? cause : "out of memory");
		free(cause);
		hs_queue_close(q);
		return HS_EXIT_FAILURE;
	}
	hs_queue_close(q);
	hs_cli_wake_daemon(cli->cfg);
	char at[32], msg[48];
	if (until)
		snprintf(msg, sizeof(msg), "until %s", format_local(until, at, sizeof(at)));
	else
		snprintf(msg, sizeof(msg), "until resumed");
	record(user, "pause", 0, "uploads paused %s by %s", msg, user);
	printf("uploads paused %s\n", msg);
	return HS_EXIT_OK;
}

int hs_cmd_resume(struct hs_cli *cli, int argc, char **argv)
{
	char user[64], *cause = NULL;
	struct hs_queue *q;
	bool was = false;
	int rc;

	(void)argv;
	if (argc > 1) {
		hs_cli_error("usage: healsync resume");
		return HS_EXIT_USAGE;
	}
	who(user, sizeof(user));
	if ((rc = hs_cli_open_queue(cli, &q)) != HS_EXIT_OK)
		return rc;
	if (hs_queue_resume(q, &was, &cause) != HS_Q_OK) {
		hs_cli_error("%s", cause ? cause : "out of memory");
		free(cause);
		hs_queue_close(q);
		return HS_EXIT_FAILURE;
	}
	hs_queue_close(q);
	hs_cli_wake_daemon(cli->cfg);
	if (was)
		record(user, "resume", 0, "uploads resumed by %s", user);
	printf(was ? "uploads resumed\n" : "uploads were not paused\n");
	return HS_EXIT_OK;
}

int hs_cmd_cancel(struct hs_cli *cli, int argc, char **argv)
{
	char user[64], *cause = NULL, *remote = NULL;
	struct hs_queue *q;
	int64_t id;
	int rc, failed = 0;

	if (argc < 2) {
		hs_cli_error("usage: healsync cancel JOB_ID...");
		return HS_EXIT_USAGE;
	}
	for (int i = 1; i < argc; i++)
		if (hs_cli_parse_job_id(argv[i], &id) != 0) {
			hs_cli_error("'%s' is not a job id", argv[i]);
			return HS_EXIT_USAGE;
		}
	who(user, sizeof(user));
	if ((rc = hs_cli_open_queue(cli, &q)) != HS_EXIT_OK)
		return rc;
	for (int i = 1; i < argc; i++) {
		hs_cli_parse_job_id(argv[i], &id);
		rc = hs_queue_cancel(q, id, user, hs_wall_ms(), &remote, &cause);
		if (rc == HS_Q_OK) {
			record(user, "cancel", id, "job %" PRId64 " (%s) cancelled by %s", id,
			       remote, user);
			printf("job %" PRId64 " cancelled\n", id);
		} else if (rc == HS_Q_EMPTY) {
			hs_cli_error("job %" PRId64 " does not exist or has already ended", id);
			failed++;
		} else {
			hs_cli_error("%s", cause ? cause : "out of memory");
			failed++;
		}
		free(remote);
		free(cause);
		remote = cause = NULL;
	}
	hs_queue_close(q);
	hs_cli_wake_daemon(cli->cfg);
	return failed ? HS_EXIT_FAILURE : HS_EXIT_OK;
}

int hs_cmd_purge(struct hs_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"state", required_argument, NULL, 's'},
	    {"older-than", required_argument, NULL, 'o'},
	    {NULL, 0, NULL, 0},
	};
	int state = -1, c, rc;
	uint64_t age = 0;
	char user[64], *cause = NULL, agebuf[32] = "";
	struct hs_queue *q;
	size_t n = 0;

	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		if (c == 's') {
			state = hs_job_state_parse(optarg);
			if (state != HS_JOB_DONE && state != HS_JOB_DEAD) {
				hs_cli_error("--state: '%s' cannot be purged (dead or done)",
					     optarg);
				return HS_EXIT_USAGE;
			}
		} else if (c == 'o') {
			if (hs_parse_duration_ms(optarg, &age) != 0 || age > INT64_MAX / 2) {
				hs_cli_error("--older-than: '%s' is not a duration (7d, 12h)",
					     optarg);
				return HS_EXIT_USAGE;
			}
			snprintf(agebuf, sizeof(agebuf), " older than %s", optarg);
		} else {
			return HS_EXIT_USAGE;
		}
	}
	if (optind < argc || state < 0) {
		hs_cli_error("usage: healsync purge --state dead|done [--older-than DURATION]");
		return HS_EXIT_USAGE;
	}
	who(user, sizeof(user));
	if ((rc = hs_cli_open_queue(cli, &q)) != HS_EXIT_OK)
		return rc;
	if (hs_queue_purge(q, (enum hs_job_state)state, hs_wall_ms() - (int64_t)age + (age ? 0 : 1),
			   &n, &cause) != HS_Q_OK) {
		hs_cli_error("%s", cause ? cause : "out of memory");
		free(cause);
		hs_queue_close(q);
		return HS_EXIT_FAILURE;
	}
	hs_queue_close(q);
	record(user, "purge", 0, "%zu %s job%s%s purged by %s", n,
	       hs_job_state_name((enum hs_job_state)state), n == 1 ? "" : "s", agebuf, user);
	printf("%zu %s job%s purged\n", n, hs_job_state_name((enum hs_job_state)state),
	       n == 1 ? "" : "s");
	return HS_EXIT_OK;
}
