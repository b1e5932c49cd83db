/*
 * healsync: the command line. Parses the global options, then hands the
 * rest of the arguments to one command.
 */
#include "config.h"

#include <curl/curl.h>
#include <libconfig.h>
#include <sqlite3.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/cli.h"
#include "queue/sqldb.h"

struct command {
	const char *name;
	int (*fn)(struct hs_cli *cli, int argc, char **argv);
	const char *args;
	const char *help;
};

static const struct command commands[] = {
    {"run", hs_cmd_run, "", "the daemon, in the foreground"},
    {"check-config", hs_cmd_check_config, "[--quiet]", "validate the configuration and print it"},
    {"status", hs_cmd_status, "[--json]", "queue, transfers, bandwidth and rate-limit state"},
    {"scan", hs_cmd_scan, "[--json]", "what the watch folders would send now, and why not"},
    {"enqueue", hs_cmd_enqueue, "FILE...", "add files to the upload queue now"},
    {"jobs", hs_cmd_jobs, "[--state S] [--json]", "list jobs"},
    {"retry", hs_cmd_retry, "(JOB_ID... | --failed)", "put failed or dead jobs back in the queue"},
    {"check", hs_cmd_check, "[-w AGE] [-c AGE]",
     "the health verdict for a monitor: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN"},
    {"mirror", hs_cmd_mirror, "", "one mirror run of the patient records, in the foreground"},
    {"pause", hs_cmd_pause, "[--until TIME | --for D]", "hold uploads at a safe point"},
    {"resume", hs_cmd_resume, "", "release a pause"},
    {"cancel", hs_cmd_cancel, "JOB_ID...", "drop jobs that should not be sent"},
    {"purge", hs_cmd_purge, "--state dead|done [--older-than D]", "delete finished jobs"},
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: healsync [-c FILE] COMMAND [ARGS]\n\n"
		"Options:\n"
		"  -c, --config FILE  configuration file (default $HEALSYNC_CONFIG, else %s)\n"
		"  -h, --help         show this help\n"
		"  -V, --version      show the version\n\n"
		"Commands:\n",
		HS_DEFAULT_CONFIG);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		char left[64];
		snprintf(left, sizeof(left), "%s %s", commands[i].name, commands[i].args);
		fprintf(out, "  %-36s %s\n", left, commands[i].help);
	}
}

/* The libraries as loaded (not as built against): what a bug report needs. */
static void print_version(void)
{
	const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
	const char *sd = NULL;

	printf("healsync %s\n", PACKAGE_VERSION);
	printf("libcurl %s (%s)\n", cv->version, cv->ssl_version ? cv->ssl_version : "no TLS");
	printf("SQLite %s\n", sqlite3_libversion());
	printf("libconfig %d.%d.%d (built with)\n", LIBCONFIG_VER_MAJOR, LIBCONFIG_VER_MINOR,
	       LIBCONFIG_VER_REVISION);
#ifdef HS_SYSTEMD_VERSION
	sd = HS_SYSTEMD_VERSION;
#endif
	printf("libsystemd %s (built with)\n", sd ? sd : "unknown");
}

void hs_cli_error(const char *fmt, ...)
{
	va_list ap;

	fputs("healsync: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	struct hs_cli cli = {0};
	const char *config_arg = NULL;
	int c, rc;

	if (hs_sqldb_setup() != 0) {
		fprintf(stderr, "healsync: cannot configure SQLite\n");
		return HS_EXIT_FAILURE;
	}
	/* "+": stop at the command, whose own options follow it. */
	while ((c = getopt_long(argc, argv, "+c:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config_arg = optarg;
			break;
		case 'h':
			usage(stdout);
			return HS_EXIT_OK;
		case 'V':
			print_version();
			return HS_EXIT_OK;
		default:
			usage(stderr);
			return HS_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return HS_EXIT_USAGE;
	}
	cli.config_path = hs_config_path(config_arg);
	curl_global_init(CURL_GLOBAL_DEFAULT);

	const struct command *cmd = NULL;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[optind], commands[i].name) == 0)
			cmd = &commands[i];
	if (!cmd) {
		hs_cli_error("unknown command '%s' (see healsync --help)", argv[optind]);
		return HS_EXIT_USAGE;
	}

	int cmd_argc = argc - optind;
	char **cmd_argv = argv + optind;
	optind = 0; /* a fresh getopt scan for the command's own options */
	rc = cmd->fn(&cli, cmd_argc, cmd_argv);
	hs_config_free(cli.cfg);
	curl_global_cleanup();
	return rc;
}
