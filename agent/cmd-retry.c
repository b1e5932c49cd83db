/* retry (JOB_ID... | --failed): failed or dead jobs back to the queue. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "agent/cli.h"

int hs_cmd_retry(struct hs_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"failed", no_argument, NULL, 'f'},
	    {NULL, 0, NULL, 0},
	};
	struct hs_queue *q;
	int open_rc;
	bool all = false;
	int c, rc = HS_EXIT_OK;
	size_t n;
	char *cause = NULL;

	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		if (c != 'f')
			return HS_EXIT_USAGE;
		all = true;
	}
	if (all == (optind < argc)) {
		hs_cli_error("usage: healsync retry (JOB_ID... | --failed)");
		return HS_EXIT_USAGE;
	}
	for (int i = optind; i < argc; i++) {
		int64_t id;
		if (hs_cli_parse_job_id(argv[i], &id) != 0) {
			hs_cli_error("'%s' is not a job id", argv[i]);
			return HS_EXIT_USAGE;
		}
	}
	open_rc = hs_cli_open_queue(cli, &q);
	if (open_rc != HS_EXIT_OK)
		return open_rc;

	if (all) {
		if (hs_queue_retry(q, -1, hs_wall_ms(), &n, &cause) != HS_Q_OK)
			goto fail;
		printf("%zu job%s queued again\n", n, n == 1 ? "" : "s");
	}
	for (int i = optind; i < argc; i++) {
		int64_t id = 0;
		hs_cli_parse_job_id(argv[i], &id);
		if (hs_queue_retry(q, id, hs_wall_ms(), &n, &cause) != HS_Q_OK)
			goto fail;
		if (n == 0) {
			hs_cli_error("job %" PRId64 " does not exist or is not failed or dead", id);
			rc = HS_EXIT_FAILURE;
		} else {
			printf("job %" PRId64 " queued again\n", id);
		}
	}
	hs_queue_close(q);
	hs_cli_wake_daemon(cli->cfg);
	return rc;
fail:
	hs_cli_error("%s", cause ? cause : "out of memory");
	free(cause);
	hs_queue_close(q);
	return HS_EXIT_FAILURE;
}
