/*
 * check [-w AGE] [-c AGE]: the health verdict in the monitoring-plugins
 * form, for Nagios, Icinga, NRPE, Sensu and the like:
 *
 *   HEALSYNC WARNING - oldest queued file waits 7h 5m (warning at 6h 0m) | dead=0;;0;0 ...
 *
 * one line on stdout, exit 0 OK, 1 WARNING, 2 CRITICAL (also when no daemon
 * runs), 3 UNKNOWN (the state cannot be read, the arguments are wrong).
 * -w and -c set the age of the oldest queued file that is WARNING and
 * CRITICAL, instead of the health section's queued_age_warning and
 * queued_age_critical. Reads the configuration without keys and the
 * daemon's status.json, nothing else.
 */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/cli.h"
#include "agent/health.h"
#include "conf/units.h"

enum { CHECK_UNKNOWN = 3 };

static int unknown(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int unknown(const char *fmt, ...)
{
	va_list ap;

	printf("HEALSYNC UNKNOWN - ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	return CHECK_UNKNOWN;
}

static int get_age(const char *arg, int64_t *ret)
{
	uint64_t ms;

	if (hs_parse_duration_ms(arg, &ms) != 0 || ms > (uint64_t)INT64_MAX / 2)
		return -1;
	*ret = (int64_t)ms;
	return 0;
}

/* A threshold in seconds, or nothing when it is off. */
static void threshold(char *buf, size_t len, int64_t ms)
{
	if (ms > 0)
		snprintf(buf, len, "%" PRId64, ms / 1000);
	else
		buf[0] = '\0';
}

static void perfdata(json_t *daemon, const struct hs_health_limits *lim, int64_t now)
{
	json_t *f = json_object_get(daemon, "health_facts");
	int64_t oldest = (int64_t)json_integer_value(json_object_get(f, "oldest_waiting_at"));
	int64_t last = (int64_t)json_integer_value(json_object_get(f, "last_stored_at"));
	json_t *free_bytes = json_object_get(f, "disk_free");
	char w[32], c[32];

	printf(" | dead=%" JSON_INTEGER_FORMAT ";;0;0 waiting=%" JSON_INTEGER_FORMAT ";;;0",
	       json_integer_value(json_object_get(f, "dead")),
	       json_integer_value(json_object_get(f, "waiting")));
	threshold(w, sizeof(w), lim->queued_age_warning);
	threshold(c, sizeof(c), lim->queued_age_critical);
	printf(" oldest_queued_age=%" PRId64 "s;%s;%s;0", oldest > 0 ? (now - oldest) / 1000 : 0, w,
	       c);
	if (last > 0)
		printf(" last_upload_age=%" PRId64 "s;;;0", (now - last) / 1000);
	printf(" upload_api_up=%d;;;0;1",
	       json_is_true(json_object_get(f, "upload_unavailable")) ||
		       json_is_true(json_object_get(f, "upload_key_rejected"))
		   ? 0
		   : 1);
	if (json_integer_value(free_bytes) >= 0 && json_is_integer(free_bytes)) {
		if (lim->min_free > 0)
			printf(" state_dir_free=%" JSON_INTEGER_FORMAT "B;%" PRId64 ":;%" PRId64
			       ":;0",
			       json_integer_value(free_bytes), lim->min_free, lim->min_free / 4);
		else
			printf(" state_dir_free=%" JSON_INTEGER_FORMAT "B;;;0",
			       json_integer_value(free_bytes));
	}
}

int hs_cmd_check(struct hs_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"warning", required_argument, NULL, 'w'},
	    {"critical", required_argument, NULL, 'c'},
	    {NULL, 0, NULL, 0},
	};
	struct hs_health_limits lim;
	struct hs_health h;
	int64_t warn = -1, crit = -1, now;
	json_t *daemon = NULL;
	char *why = NULL, summary[512];
	int c;

	while ((c = getopt_long(argc, argv, "+w:c:", opts, NULL)) != -1) {
		if (c == 'w' && get_age(optarg, &warn) == 0)
			continue;
		if (c == 'c' && get_age(optarg, &crit) == 0)
			continue;
		if (c == 'w' || c == 'c')
			return unknown(
			    "-%s wants an age such as 6h or 30m (see healsync check --help)",
			    c == 'w' ? "w" : "c");
		return unknown("%s", "usage: healsync check [-w AGE] [-c AGE]");
	}
	if (optind < argc)
		return unknown("%s", "usage: healsync check [-w AGE] [-c AGE]");
	cli->load_flags |= HS_CONFIG_NO_KEYS;
	if (!hs_cli_config(cli))
		return unknown("%s", "the configuration does not load (see the line above)");
	lim = hs_health_limits_of(cli->cfg);
	if (warn >= 0)
		lim.queued_age_warning = warn;
	if (crit >= 0)
		lim.queued_age_critical = crit;
	if (lim.queued_age_warning > 0 && lim.queued_age_critical > 0 &&
	    lim.queued_age_critical < lim.queued_age_warning)
		return unknown("%s", "the critical age is shorter than the warning age");
	now = hs_wall_ms();
	if (hs_cli_health(cli->cfg, &lim, now, &daemon, &h, &why) != 0) {
		c = unknown("cannot read the daemon's state: %s", why ? why : "out of memory");
		free(why);
		return c;
	}
	printf("HEALSYNC %s - %s", hs_health_state_name(h.state),
	       hs_health_summary(&h, summary, sizeof(summary)));
	if (daemon) {
		/* OK says what the daemon does, in a few words. */
		if (h.state == HS_HEALTH_OK) {
			json_t *f = json_object_get(daemon, "health_facts");
			printf(", %" JSON_INTEGER_FORMAT " waiting",
			       json_integer_value(json_object_get(f, "waiting")));
		}
		perfdata(daemon, &lim, now);
	}
	printf("\n");
	json_decref(daemon);
	if (fflush(stdout) != 0)
		return CHECK_UNKNOWN;
	return (int)h.state;
}
