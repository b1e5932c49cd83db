/*
 * cli: what the commands share: loading the configuration and opening the
 * queue, each with its error printed once.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/cli.h"
#include "agent/daemon.h"

struct hs_config *hs_cli_config(struct hs_cli *cli)
{
	char *cause = NULL;

	if (cli->cfg)
		return cli->cfg;
	cli->cfg = hs_config_load_opts(cli->config_path, cli->load_flags, &cause);
	if (!cli->cfg) {
		hs_cli_error("%s", cause ? cause : "out of memory");
		free(cause);
	}
	return cli->cfg;
}

int hs_cli_become_state_owner(const struct hs_config *cfg)
{
	const struct passwd *pw;
	struct stat st;
	int rc;

	if (geteuid() != 0 || stat(cfg->state_dir, &st) != 0 || st.st_uid == 0)
		return 0;
	errno = 0;
	pw = getpwuid(st.st_uid);
	rc = pw ? initgroups(pw->pw_name, st.st_gid) : setgroups(0, NULL);
	if (rc != 0 || setgid(st.st_gid) != 0 || setuid(st.st_uid) != 0) {
		hs_cli_error("cannot act as %s, the owner of state_dir %s: %s",
			     pw ? pw->pw_name : "its owner", cfg->state_dir, strerror(errno));
		return -1;
	}
	return 0;
}

int hs_cli_open_queue(struct hs_cli *cli, struct hs_queue **ret)
{
	char *cause = NULL, *path = NULL, err[4200];
	int rc = HS_EXIT_FAILURE;

	if (!hs_cli_config(cli))
		return HS_EXIT_CONFIG;
	if (hs_cli_become_state_owner(cli->cfg) != 0)
		return HS_EXIT_FAILURE;
	if (hs_state_dir_check(cli->cfg->state_dir, false, err, sizeof(err)) != 0) {
		hs_cli_error("%s", err);
		return HS_EXIT_FAILURE;
	}
	if (asprintf(&path, "%s/queue.db", cli->cfg->state_dir) < 0) {
		hs_cli_error("out of memory");
		return HS_EXIT_FAILURE;
	}
	if (hs_queue_open(path, ret, &cause) != HS_Q_OK)
		hs_cli_error("%s: %s", path, cause ? cause : "out of memory");
	else
		rc = HS_EXIT_OK;
	free(cause);
	free(path);
	return rc;
}

int hs_cli_open_queue_read(struct hs_cli *cli, struct hs_queue **ret)
{
	char *cause = NULL, *path = NULL;
	const struct group *gr;
	struct stat st;
	int rc = HS_EXIT_FAILURE, dir;

	if (!hs_cli_config(cli))
		return HS_EXIT_CONFIG;
	/* The owner and root keep what they always had: a queue made if
	 * there is none yet. */
	dir = stat(cli->cfg->state_dir, &st);
	if (geteuid() == 0 || (dir != 0 && errno == ENOENT) || (dir == 0 && st.st_uid == geteuid()))
		return hs_cli_open_queue(cli, ret);
	if (asprintf(&path, "%s/queue.db", cli->cfg->state_dir) < 0) {
		hs_cli_error("out of memory");
		return HS_EXIT_FAILURE;
	}
	if (access(path, R_OK) != 0) {
		int e = errno;
		/* Who may read: the file's group, else the folder's. */
		if (stat(path, &st) != 0 && stat(cli->cfg->state_dir, &st) != 0)
			hs_cli_error("%s: %s", path, strerror(e));
		else if ((gr = getgrgid(st.st_gid)))
			hs_cli_error("%s: %s; members of group %s may read it", path, strerror(e),
				     gr->gr_name);
		else
			hs_cli_error("%s: %s; members of its group (gid %u) may read it", path,
				     strerror(e), (unsigned)st.st_gid);
	} else if (hs_queue_open_read(path, ret, &cause) != HS_Q_OK) {
		hs_cli_error("%s: %s", path, cause ? cause : "out of memory");
	} else {
		rc = HS_EXIT_OK;
	}
	free(cause);
	free(path);
	return rc;
}

void hs_cli_wake_daemon(const struct hs_config *cfg)
{
	char path[4096];
	int fd;

	/* Closing a file opened for writing is what the daemon waits for;
	 * without a daemon this is harmless. */
	snprintf(path, sizeof(path), "%s/%s", cfg->state_dir, HS_WAKEUP_FILE);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0)
		close(fd);
}

int hs_cli_parse_job_id(const char *s, int64_t *ret)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v <= 0)
		return -1;
	*ret = v;
	return 0;
}
