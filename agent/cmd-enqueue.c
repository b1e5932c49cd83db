/*
 * enqueue FILE...: add files to the queue now. Safe while the daemon runs:
 * the queue serialises writers. A file inside a watched folder is named and
 * treated as that folder's files are; any other file is sent under its own
 * name.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agent/cli.h"
#include "agent/remote_name.h"

static int enqueue_one(struct hs_cli *cli, struct hs_queue *q, const char *arg)
{
	char abspath[PATH_MAX], base[PATH_MAX];
	const struct hs_watch *w = NULL;
	const char *rel;
	char *remote = NULL, *cause = NULL, *inpath = NULL;
	struct stat st;
	int64_t id;
	int rc = -1;

	if (!realpath(arg, abspath)) {
		hs_cli_error("%s: %s", arg, strerror(errno));
		return -1;
	}
	if (stat(abspath, &st) != 0) {
		hs_cli_error("%s: %s", arg, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		hs_cli_error("%s: not a regular file", arg);
		return -1;
	}
	/* In a watch folder, the path is the one its watcher sees: named from
	 * the folder's configured path (which may go through a symlink), so
	 * that the job is that file's and the scans know it. */
	switch (hs_watch_for_path(cli->cfg, abspath, &w, &inpath, &rel)) {
	case 1:
		remote = hs_remote_name(w->remote_prefix, rel);
		break;
	case 0:
		snprintf(base, sizeof(base), "%s", abspath);
		remote = hs_remote_name("", basename(base));
		break;
	default:
		hs_cli_error("%s: out of memory", arg);
		return -1;
	}
	if (!remote) {
		hs_cli_error("%s: no valid remote name for this path", arg);
		free(inpath);
		return -1;
	}

	struct hs_job_spec spec = {
	    .path = inpath ? inpath : abspath,
	    .watch_root = w ? w->path : "",
	    .remote_name = remote,
	    .size = st.st_size,
	    .mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec,
	    .inode = (int64_t)st.st_ino,
	};
	if (hs_queue_enqueue(q, &spec, hs_wall_ms(), &id, &cause) != HS_Q_OK) {
		hs_cli_error("%s: %s", arg, cause ? cause : "out of memory");
		goto out;
	}
	printf("job %" PRId64 " %s\n", id, remote);
	rc = 0;
out:
	free(cause);
	free(remote);
	free(inpath);
	return rc;
}

int hs_cmd_enqueue(struct hs_cli *cli, int argc, char **argv)
{
	struct hs_queue *q;
	int open_rc;
	int failed = 0;

	if (argc < 2) {
		hs_cli_error("usage: healsync enqueue FILE...");
		return HS_EXIT_USAGE;
	}
	open_rc = hs_cli_open_queue(cli, &q);
	if (open_rc != HS_EXIT_OK)
		return open_rc;
	/* A bad file is reported and the others are still queued. */
	for (int i = 1; i < argc; i++)
		if (enqueue_one(cli, q, argv[i]) != 0)
			failed++;
	hs_queue_close(q);
	hs_cli_wake_daemon(cli->cfg);
	return failed ? HS_EXIT_FAILURE : HS_EXIT_OK;
}
