/*
 * mirror: one mirror run in the foreground, then exit: 0 when it finished,
 * 1 when it failed (the run's own log line on stderr says why), 78 without
 * a usable mirror section. SIGINT or SIGTERM cancels the run: the database
 * keeps the last finished run.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <systemd/sd-event.h>

#include "agent/cli.h"
#include "agent/daemon.h"
#include "agent/http.h"
#include "agent/log.h"
#include "agent/mirror.h"

struct ctx {
	sd_event *ev;
	struct hs_mirror *m;
	int exit_code;
};

static void on_done(const struct hs_mirror_result *res, void *arg)
{
	struct ctx *c = arg;

	/* A failure was logged by the run itself, as one line. */
	c->exit_code = res->ok ? HS_EXIT_OK : HS_EXIT_FAILURE;
	if (res->ok)
		printf("mirror run %" PRId64 ": %" PRId64 " records, %" PRId64 " created, %" PRId64
		       " updated, %" PRId64 " deleted\n",
		       res->run.id, res->run.records, res->run.created, res->run.updated,
		       res->run.deleted);
	sd_event_exit(c->ev, 0);
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *arg)
{
	struct ctx *c = arg;

	hs_log(LOG_NOTICE, "%s: cancelling the mirror run", strsignal((int)si->ssi_signo));
	hs_mirror_cancel(c->m);
	c->exit_code = HS_EXIT_FAILURE;
	sd_event_exit(c->ev, 0);
	return 0;
}

int hs_cmd_mirror(struct hs_cli *cli, int argc, char **argv)
{
	struct ctx c = {.exit_code = HS_EXIT_FAILURE};
	struct hs_config *cfg;
	struct hs_http *http = NULL;
	sigset_t mask;
	char *cause = NULL, err[4200];

	(void)argv;
	if (argc != 1) {
		hs_cli_error("mirror takes no arguments");
		return HS_EXIT_USAGE;
	}
	if (!(cfg = hs_cli_config(cli)))
		return HS_EXIT_CONFIG;
	if (!cfg->mirror.enabled) {
		hs_cli_error("%s: no mirror section: there is nothing to mirror", cfg->path);
		return HS_EXIT_CONFIG;
	}
	/* The key and the records must never end up in a core dump. */
	prctl(PR_SET_DUMPABLE, 0);
	hs_log_init(cfg->log_level);
	/* The default database lives in state_dir, which belongs to the
	 * daemon's user. */
	if (hs_cli_become_state_owner(cfg) != 0)
		return HS_EXIT_FAILURE;
	if (hs_state_dir_check(cfg->state_dir, false, err, sizeof(err)) != 0) {
		hs_cli_error("%s", err);
		return HS_EXIT_FAILURE;
	}

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0 || signal(SIGPIPE, SIG_IGN) == SIG_ERR ||
	    sd_event_new(&c.ev) < 0 ||
	    sd_event_add_signal(c.ev, NULL, SIGTERM, on_signal, &c) < 0 ||
	    sd_event_add_signal(c.ev, NULL, SIGINT, on_signal, &c) < 0) {
		hs_cli_error("cannot set up the event loop");
		goto out;
	}
	struct hs_http_opts opts = {.ca_file = cfg->mirror.api.ca_file,
				    .proxy = cfg->mirror.api.proxy};
	if (!(http = hs_http_new(c.ev, &opts, NULL, &cause)) ||
	    !(c.m = hs_mirror_new(c.ev, cfg, http, &cause)) ||
	    hs_mirror_start(c.m, on_done, &c, &cause) != 0) {
		hs_cli_error("mirror: %s", cause ? cause : "out of memory");
		goto out;
	}
	if (sd_event_loop(c.ev) < 0) {
		hs_cli_error("the event loop failed");
		c.exit_code = HS_EXIT_FAILURE;
	}
out:
	free(cause);
	hs_mirror_free(c.m);
	hs_http_free(http);
	sd_event_unref(c.ev);
	if (fflush(stdout) != 0)
		c.exit_code = HS_EXIT_FAILURE;
	return c.exit_code;
}
