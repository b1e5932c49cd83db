/*
 * cli: the commands of the healsync binary (SPEC 2), one file each
 * (agent/cmd-*.c), dispatched from main.c.
 *
 * A command gets its own arguments (argv[0] is the command's name) and the
 * global context. It returns a process exit code; it prints its own errors,
 * one line each on stderr, and never calls exit().
 */
#ifndef HS_AGENT_CLI_H
#define HS_AGENT_CLI_H

#include <jansson.h>
#include <stdint.h>

#include "agent/clock.h"
#include "conf/conf.h"
#include "queue/queue.h"

enum {
	HS_EXIT_OK = 0,
	HS_EXIT_FAILURE = 1,
	HS_EXIT_USAGE = 2,
	HS_EXIT_CONFIG = 78, /* EX_CONFIG */
};

struct hs_cli {
	const char *config_path; /* resolved: -c, $HEALSYNC_CONFIG or default */
	struct hs_config *cfg;	 /* loaded on demand by hs_cli_config() */
	unsigned load_flags;	 /* HS_CONFIG_*: status, jobs, check read no key */
};

/* Loads the configuration once; on failure prints the reason and returns
 * NULL (the caller returns HS_EXIT_CONFIG). */
struct hs_config *hs_cli_config(struct hs_cli *cli);
/* Run by root, becomes the owner of state_dir (user, its groups) when that
 * is another user, so that what a command creates there (the queue's
 * journal files, the wake-up file, the mirror database) stays the
 * daemon's. Returns 0, or -1 after printing the reason. */
int hs_cli_become_state_owner(const struct hs_config *cfg);
/* Loads the configuration and opens state_dir/queue.db, creating state_dir
 * (0700) if needed, as its owner (hs_cli_become_state_owner). Returns
 * HS_EXIT_OK with *ret, or the exit code after printing the reason. */
int hs_cli_open_queue(struct hs_cli *cli, struct hs_queue **ret);
/* Opens state_dir/queue.db to read it (jobs). Root, or the owner of
 * state_dir, opens it as hs_cli_open_queue does; anyone else opens it
 * read-only, which members of the folder's group (or a group its ACL
 * names, such as adm) may do, and nothing is created or changed. Returns
 * HS_EXIT_OK with *ret, or the exit code after printing the reason (which
 * names the group that may read, never a chown). */
int hs_cli_open_queue_read(struct hs_cli *cli, struct hs_queue **ret);
/* Tells a running daemon that the queue changed (it watches for this). */
void hs_cli_wake_daemon(const struct hs_config *cfg);
/* Prints "healsync: <fmt>" on stderr. */
void hs_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A job id as the commands take it: a positive decimal number. 0 or -1. */
int hs_cli_parse_job_id(const char *s, int64_t *ret);

int hs_cmd_run(struct hs_cli *cli, int argc, char **argv);
int hs_cmd_check_config(struct hs_cli *cli, int argc, char **argv);
int hs_cmd_enqueue(struct hs_cli *cli, int argc, char **argv);
int hs_cmd_jobs(struct hs_cli *cli, int argc, char **argv);
int hs_cmd_retry(struct hs_cli *cli, int argc, char **argv);
int hs_cmd_status(struct hs_cli *cli, int argc, char **argv);
int hs_cmd_mirror(struct hs_cli *cli, int argc, char **argv);
int hs_cmd_check(struct hs_cli *cli, int argc, char **argv);
int hs_cmd_scan(struct hs_cli *cli, int argc, char **argv);

struct hs_health;
struct hs_health_limits;
/*
 * The daemon's last report, state_dir/status.json, and its health verdict
 * weighed again at now with lim (the facts it wrote, the verdict it had for
 * the times each reason began). No daemon: *ret_daemon NULL and the verdict
 * is CRITICAL "daemon not running". Returns 0, or -1 with an allocated
 * *ret_why when it cannot tell (the report is unreadable). The caller
 * frees *ret_daemon with json_decref. Reads files only.
 */
int hs_cli_health(const struct hs_config *cfg, const struct hs_health_limits *lim, int64_t now,
		  json_t **ret_daemon, struct hs_health *ret, char **ret_why);

int hs_cmd_pause(struct hs_cli *cli, int argc, char **argv);
int hs_cmd_resume(struct hs_cli *cli, int argc, char **argv);
int hs_cmd_cancel(struct hs_cli *cli, int argc, char **argv);
int hs_cmd_purge(struct hs_cli *cli, int argc, char **argv);

#endif
