/*
 * check-config [--quiet]: load and validate the configuration, print it
 * redacted. --quiet loads it as a reload does and prints only an error.
 *
 * Then the folders. A watch folder (or move: folder) that does not exist
 * is a warning: the daemon waits for it, but it is most often a typo. It
 * gets no write-access advice, since a ReadWritePaths= naming a missing
 * folder keeps the unit from starting. For delete: and move:, every
 * folder the service user must write (the watch folder and the folders
 * below it now, the move folder and its folders) is tried as that user in
 * a child process (ACLs count), and each it may not write is named with
 * the fix (refusal.h), the first few per folder and then a count.
 *
 * The service user is the unit's User= where healsync.service is loaded;
 * else the user running check-config, or, for root, user healsync if
 * there is one (the packages make it).
 *
 * Where healsync.service is loaded, it also checks the configuration
 * against the service's sandbox as systemd reports it (its unit's
 * properties over D-Bus; as root over systemd's own socket, so that it
 * works without a D-Bus daemon, as systemctl does):
 * a watch folder the service cannot see (PrivateTmp), one whose
 * after_upload needs write access the sandbox refuses, and a
 * ReadWritePaths= folder that does not exist (the unit would fail to
 * start, status 226/NAMESPACE).
 *
 * Each problem is one line on stderr with the fix, and the exit code is
 * then 78; warnings alone leave it 0.
 */
#include "config.h"

#include <errno.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "agent/cli.h"
#include "agent/clock.h"
#include "agent/refusal.h"
#include "agent/token.h"

#define UNIT "healsync.service"

/* What systemd says of the unit's sandbox. */
struct unit_view {
	bool loaded;
	char *user;	      /* "" when none */
	char *protect_system; /* no, yes, full, strict */
	char *protect_home;   /* no, yes, read-only, tmpfs */
	bool private_tmp;
	char **rw_paths; /* ReadWritePaths=, each perhaps with "-" or "+" before it */
};

#define SYSTEMD	  "org.freedesktop.systemd1"
#define I_UNIT	  SYSTEMD ".Unit"
#define I_SERVICE SYSTEMD ".Service"

static void unit_view_free(struct unit_view *u)
{
	free(u->user);
	free(u->protect_system);
	free(u->protect_home);
	for (char **p = u->rw_paths; p && *p; p++)
		free(*p);
	free(u->rw_paths);
	memset(u, 0, sizeof(*u));
}

/* The system manager: as root its own socket (no D-Bus daemon needed),
 * else the system bus. */
static sd_bus *open_manager(void)
{
	sd_bus *bus = NULL;

	if (geteuid() == 0 && sd_bus_new(&bus) >= 0) {
		if (sd_bus_set_address(bus, "unix:path=/run/systemd/private") >= 0 &&
		    sd_bus_start(bus) >= 0)
			return bus;
		bus = sd_bus_unref(bus);
	}
	if (sd_bus_open_system(&bus) < 0)
		return NULL;
	return bus;
}

static int get_string(sd_bus *bus, const char *path, const char *iface, const char *name,
		      char **ret)
{
	sd_bus_error err = SD_BUS_ERROR_NULL;
	int r = sd_bus_get_property_string(bus, SYSTEMD, path, iface, name, &err, ret);

	sd_bus_error_free(&err);
	return r;
}

/* False when systemd or the unit is not there: nothing to check. */
static bool read_unit(struct unit_view *u)
{
	sd_bus_error err = SD_BUS_ERROR_NULL;
	char *path = NULL, *load = NULL;
	sd_bus *bus;
	int private_tmp = 0;
	bool ok = false;

	memset(u, 0, sizeof(*u));
	if (!(bus = open_manager()))
		return false;
	if (sd_bus_path_encode("/org/freedesktop/systemd1/unit", UNIT, &path) < 0 ||
	    get_string(bus, path, I_UNIT, "LoadState", &load) < 0 || strcmp(load, "loaded") != 0)
		goto out;
	if (get_string(bus, path, I_SERVICE, "User", &u->user) < 0 ||
	    get_string(bus, path, I_SERVICE, "ProtectSystem", &u->protect_system) < 0 ||
	    get_string(bus, path, I_SERVICE, "ProtectHome", &u->protect_home) < 0 ||
	    sd_bus_get_property_trivial(bus, SYSTEMD, path, I_SERVICE, "PrivateTmp", &err, 'b',
					&private_tmp) < 0 ||
	    sd_bus_get_property_strv(bus, SYSTEMD, path, I_SERVICE, "ReadWritePaths", &err,
				     &u->rw_paths) < 0)
		goto out;
	u->private_tmp = private_tmp;
	u->loaded = ok = true;
out:
	sd_bus_error_free(&err);
	sd_bus_flush_close_unref(bus);
	free(path);
	free(load);
	if (!ok)
		unit_view_free(u);
	return ok;
}

/* path is dir or inside it. */
static bool under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	while (n > 1 && dir[n - 1] == '/')
		n--;
	if (n == 1 && dir[0] == '/')
		return true;
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* path is inside a ReadWritePaths= entry (its "-" or "+" prefix apart). */
static bool in_rw_paths(const struct unit_view *u, const char *path)
{
	for (char **p = u->rw_paths; p && *p; p++)
		if (under(path, *p + strspn(*p, "-+")))
			return true;
	return false;
}

static bool read_only_in_sandbox(const struct unit_view *u, const char *path)
{
	const char *ps = u->protect_system, *ph = u->protect_home;
	bool ro = false;

	if (strcmp(ps, "strict") == 0)
		ro = true;
	else if (strcmp(ps, "yes") == 0 || strcmp(ps, "full") == 0)
		ro = under(path, "/usr") || under(path, "/boot") || under(path, "/efi") ||
		     (strcmp(ps, "full") == 0 && under(path, "/etc"));
	if (strcmp(ph, "read-only") == 0 &&
	    (under(path, "/home") || under(path, "/root") || under(path, "/run/user")))
		ro = true;
	return ro && !in_rw_paths(u, path);
}

#define SAY_MAX	 5	/* folders named per tree; then a count */
#define WALK_MAX 100000 /* folders looked at per tree */

/* The walk below one folder, in the child (nftw takes no argument). */
static struct {
	const char *top, *what;
	unsigned said, more, seen;
} walk;

static int walk_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	char *line = NULL;

	(void)st;
	(void)ftw;
	if (++walk.seen > WALK_MAX)
		return 1; /* enough: a huge archive must not make this slow */
	if (type != FTW_D && type != FTW_DNR)
		return 0;
	if (hs_refusal_probe(path) == 0)
		return 0;
	if (walk.said == SAY_MAX) {
		walk.more++;
		return 0;
	}
	if (hs_refusal_explain(path, walk.top, EACCES, -1, &line) == HS_REFUSAL_NONE)
		return 0;
	hs_cli_error("%s needs write access to %s: %s", walk.what, path,
		     line ? line : "out of memory");
	free(line);
	walk.said++;
	return 0;
}

/* The service user (see the top of this file); NULL: no one to check for. */
static const struct passwd *service_user(const struct unit_view *u)
{
	if (u->loaded)
		return u->user && u->user[0] ? getpwnam(u->user) : NULL;
	if (geteuid() != 0)
		return getpwuid(geteuid());
	return getpwnam("healsync");
}

/* Every folder from dir down that pw may not write, named as a problem.
 * Returns the number of folders at fault (capped); 0 when it cannot tell. */
static int check_tree(const struct passwd *pw, const char *dir, const char *top, const char *what)
{
	int status;
	pid_t pid;

	if (!pw || pw->pw_uid == 0)
		return 0; /* root may write anywhere the sandbox allows */
	if (geteuid() != 0 && geteuid() != pw->pw_uid)
		return 0;
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return 0;
	if (pid == 0) {
		if (geteuid() != pw->pw_uid && (initgroups(pw->pw_name, pw->pw_gid) != 0 ||
						setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0))
			_exit(0);
		walk.top = top;
		walk.what = what;
		nftw(dir, walk_one, 16, FTW_PHYS);
		if (walk.more)
			hs_cli_error("%s needs write access to %u more folders below %s that user "
				     "%s may not write; the same fix covers them",
				     what, walk.more, top, pw->pw_name);
		_exit(walk.said + walk.more > 100 ? 100 : (int)(walk.said + walk.more));
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return 0;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 0;
}

/* A folder the service must write to (after_upload): the sandbox, then the
 * modes of it and the folders below. A missing one is a warning, with no
 * ReadWritePaths= advice: systemd refuses to start a unit whose
 * ReadWritePaths= names a folder that does not exist. Returns the number
 * of problems printed. */
static int check_writable(const struct unit_view *u, const char *dir, const char *noun,
			  const char *why, const char *missing)
{
	struct stat st;

	if (stat(dir, &st) != 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			hs_cli_error("warning: %s %s does not exist (%s)", noun, dir, missing);
		else
			hs_cli_error("warning: %s %s cannot be looked at: %s", noun, dir,
				     strerror(errno));
		return 0;
	}
	if (!S_ISDIR(st.st_mode)) {
		hs_cli_error("%s %s is not a folder", noun, dir);
		return 1;
	}
	if (u->loaded && read_only_in_sandbox(u, dir)) {
		hs_cli_error("%s: %s needs write access, but the service sees it read-only "
			     "(ProtectSystem=%s); run \"systemctl edit healsync\", add the two "
			     "lines \"[Service]\" and \"ReadWritePaths=%s\", then \"systemctl "
			     "restart healsync\"",
			     dir, why, u->protect_system, dir);
		return 1;
	}
	return check_tree(service_user(u), dir, dir, why);
}

static int check_folders(const struct hs_config *cfg)
{
	struct unit_view u;
	int problems = 0;

	if (!read_unit(&u))
		memset(&u, 0, sizeof(u));
	for (size_t i = 0; i < cfg->n_watches; i++) {
		const struct hs_watch *w = &cfg->watches[i];
		struct stat st;

		if (u.private_tmp && (under(w->path, "/tmp") || under(w->path, "/var/tmp"))) {
			hs_cli_error("watch folder %s: the service cannot see it (PrivateTmp=yes "
				     "gives it its own /tmp and /var/tmp); use a folder outside "
				     "/tmp and /var/tmp, e.g. under /srv",
				     w->path);
			problems++;
			continue;
		}
		if (w->after_upload == HS_AFTER_KEEP) {
			if (stat(w->path, &st) != 0 && (errno == ENOENT || errno == ENOTDIR))
				hs_cli_error("warning: watch folder %s does not exist (a typo? "
					     "the daemon waits for it to appear)",
					     w->path);
			continue;
		}
		problems += check_writable(&u, w->path, "watch folder",
					   w->after_upload == HS_AFTER_DELETE
					       ? "after_upload = \"delete\""
					       : "after_upload = \"move:...\"",
					   "a typo? the daemon waits for it to appear; create it "
					   "before naming it in ReadWritePaths=");
		if (w->after_upload == HS_AFTER_MOVE)
			problems += check_writable(
			    &u, w->move_dir, "move: folder", "the move: folder",
			    "the first move makes it where the service user may; to name it "
			    "in ReadWritePaths=, create it first, owned by that user");
	}
	for (char **p = u.rw_paths; p && *p; p++) {
		const char *t = *p;
		struct stat st;

		if (t[0] == '-' || t[0] == '+' || stat(t, &st) == 0)
			continue;
		hs_cli_error("ReadWritePaths=%s does not exist, so the service cannot start "
			     "(status 226/NAMESPACE); create it (mkdir -p %s) or write "
			     "ReadWritePaths=-%s in the drop-in",
			     t, t, t);
		problems++;
	}
	unit_view_free(&u);
	return problems;
}

static void token_note(const char *line)
{
	hs_cli_error("%s", line);
}

int hs_cmd_check_config(struct hs_cli *cli, int argc, char **argv)
{
	int problems;
	bool quiet = argc == 2 && (strcmp(argv[1], "--quiet") == 0 || strcmp(argv[1], "-q") == 0);

	if (argc != 1 && !quiet) {
		hs_cli_error("usage: healsync check-config [--quiet]");
		return HS_EXIT_USAGE;
	}
	if (!hs_cli_config(cli))
		return HS_EXIT_CONFIG;
	/* --quiet: what the daemon itself checks at a reload (the unit's
	 * ExecReload=), so that a refused configuration fails the reload. */
	if (quiet)
		return HS_EXIT_OK;
	hs_config_print(cli->cfg, stdout);
	if (fflush(stdout) != 0)
		return HS_EXIT_FAILURE;
	problems = check_folders(cli->cfg);
	/* A token about to expire is the sysadmin's to replace, not an error
	 * in the configuration: said, and the exit status stays. */
	hs_token_notes(cli->cfg, hs_wall_ms() / 1000, token_note);
	return problems ? HS_EXIT_CONFIG : HS_EXIT_OK;
}
