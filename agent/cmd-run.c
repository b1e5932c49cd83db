/* run: the daemon, in the foreground (systemd Type=notify). */
#include "config.h"

#include <signal.h>

#include "agent/cli.h"
#include "agent/daemon.h"

int hs_cmd_run(struct hs_cli *cli, int argc, char **argv)
{
	struct hs_config *cfg;

	sigset_t mask;

	if (argc != 1) {
		hs_cli_error("run takes no arguments");
		return HS_EXIT_USAGE;
	}
	/* Before anything else: a SIGTERM that comes while the daemon starts
	 * waits for the loop, which stops cleanly, instead of killing it. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0) {
		hs_cli_error("cannot block signals");
		return HS_EXIT_FAILURE;
	}
	if (!hs_cli_config(cli))
		return HS_EXIT_CONFIG;
	/* The daemon owns the configuration from here on (reloads replace
	 * it). */
	cfg = cli->cfg;
	cli->cfg = NULL;
	return hs_daemon_run(cli->config_path, cfg) == 0 ? HS_EXIT_OK : HS_EXIT_FAILURE;
}
