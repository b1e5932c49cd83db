/* check-config: load and validate the configuration, print it redacted. */
#include "config.h"

#include <stdio.h>

#include "agent/cli.h"

int hs_cmd_check_config(struct hs_cli *cli, int argc, char **argv)
{
	if (argc != 1) {
		hs_cli_error("check-config takes no arguments");
		return HS_EXIT_USAGE;
	}
	if (!hs_cli_config(cli))
		return HS_EXIT_CONFIG;
	hs_config_print(cli->cfg, stdout);
	return fflush(stdout) == 0 ? HS_EXIT_OK : HS_EXIT_FAILURE;
}
