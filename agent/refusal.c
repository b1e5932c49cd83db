/*
 * refusal: why a folder refused a change, and the fix (see refusal.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/refusal.h"

#define MOUNTINFO_LINES 100000 /* a bound on a file we do not control */

bool hs_refusal_errno(int err)
{
	return err == EACCES || err == EPERM || err == EROFS;
}

int hs_refusal_probe(const char *dir)
{
	return faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS) == 0 ? 0 : errno;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
	char *out = s;

	for (char *in = s; *in;) {
		if (in[0] == '\\' && in[1] >= '0' && in[1] <= '3' && in[2] >= '0' && in[2] <= '7' &&
		    in[3] >= '0' && in[3] <= '7') {
			*out++ = (char)((in[1] - '0') * 64 + (in[2] - '0') * 8 + (in[3] - '0'));
			in += 4;
		} else {
			*out++ = *in++;
		}
	}
	*out = '\0';
}

static bool has_option(const char *list, const char *opt)
{
	size_t n = strlen(opt);

	for (const char *p = list; p && *p;) {
		if (strncmp(p, opt, n) == 0 && (p[n] == ',' || p[n] == '\0'))
			return true;
		p = strchr(p, ',');
		p = p ? p + 1 : NULL;
	}
	return false;
}

/* The mount path lies on: the last line of mountinfo (later mounts lie
 * over earlier ones) whose mount point is the longest prefix of path.
 * *ret_ro: the mount's own options say read-only; *ret_fs_ro: its file
 * system's do. -1 when there is no such line. */
static int mount_of(const char *path, bool *ret_ro, bool *ret_fs_ro)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0, best = 0;
	int found = -1;

	if (!f)
		return -1;
	for (unsigned n = 0; n < MOUNTINFO_LINES && getline(&line, &cap, f) > 0; n++) {
		char *save = NULL, *field[6] = {0}, *super = NULL, *dash;
		size_t len;

		line[strcspn(line, "\n")] = '\0';
		if (!(dash = strstr(line, " - ")))
			continue;
		*dash = '\0';
		/* After " - ": file system type, source, super options. */
		strtok_r(dash + 3, " ", &save);
		strtok_r(NULL, " ", &save);
		super = strtok_r(NULL, " ", &save);
		save = NULL;
		field[0] = strtok_r(line, " ", &save);
		for (int i = 1; i < 6 && field[i - 1]; i++)
			field[i] = strtok_r(NULL, " ", &save);
		if (!field[5] || !super)
			continue;
		unescape(field[4]);
		len = strlen(field[4]);
		while (len > 1 && field[4][len - 1] == '/')
			len--;
		bool prefix =
		    (len == 1 && field[4][0] == '/') ||
		    (strncmp(path, field[4], len) == 0 && (path[len] == '/' || path[len] == '\0'));
		if (!prefix || len < best)
			continue;
		best = len;
		*ret_ro = has_option(field[5], "ro");
		*ret_fs_ro = has_option(super, "ro");
		found = 0;
	}
	free(line);
	fclose(f);
	return found;
}

/* dir, or its nearest parent that exists, in buf; its facts in *st. */
static int existing(const char *dir, char *buf, size_t len, struct stat *st)
{
	if (snprintf(buf, len, "%s", dir) >= (int)len)
		return -1;
	for (;;) {
		if (stat(buf, st) == 0)
			return 0;
		char *slash = strrchr(buf, '/');
		if (!slash || slash == buf)
			return stat("/", st) == 0 && snprintf(buf, len, "/") > 0 ? 0 : -1;
		*slash = '\0';
	}
}

/* Copied: getpwuid's answer is overwritten by the next call. */
static const char *user_name(uid_t uid, char *buf, size_t len)
{
	const struct passwd *pw = getpwuid(uid);

	if (pw)
		snprintf(buf, len, "%s", pw->pw_name);
	else
		snprintf(buf, len, "%lu", (unsigned long)uid);
	return buf;
}

static const char *group_name(gid_t gid, char *buf, size_t len)
{
	const struct group *gr = getgrgid(gid);

	if (gr)
		snprintf(buf, len, "%s", gr->gr_name);
	else
		snprintf(buf, len, "%lu", (unsigned long)gid);
	return buf;
}

static char *line_of(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *line_of(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

enum hs_refusal hs_refusal_explain(const char *dir, const char *top, int err, long owner_uid,
				   char **ret_line)
{
	char at[PATH_MAX], b1[64], b2[64], b3[64], b4[64];
	const char *user, *group;
	struct stat st;
	bool ro = false, fs_ro = false;
	int probe;

	*ret_line = NULL;
	if (!hs_refusal_errno(err) || existing(dir, at, sizeof(at), &st) != 0)
		return HS_REFUSAL_NONE;
	user = user_name(geteuid(), b1, sizeof(b1));
	group = group_name(getegid(), b2, sizeof(b2));
	probe = hs_refusal_probe(at);
	if (err == EROFS || probe == EROFS) {
		/* mountinfo has the mounts' real paths, not a symlinked one. */
		char *real = realpath(at, NULL);
		int found = mount_of(real ? real : at, &ro, &fs_ro);

		free(real);
		if (found == 0 && ro && !fs_ro) {
			*ret_line = line_of(
			    "%s is read-only in the service's view (systemd's ProtectSystem= "
			    "sandbox, or a read-only bind mount; the file system itself is "
			    "writable); let healsync write there: run \"systemctl edit healsync\", "
			    "add the two lines \"[Service]\" and \"ReadWritePaths=%s\", then "
			    "\"systemctl restart healsync\"",
			    at, top);
			return HS_REFUSAL_SANDBOX;
		}
		*ret_line = line_of("%s is on a file system mounted read-only; healsync can move "
				    "or delete nothing there until it is mounted read-write",
				    at);
		return HS_REFUSAL_READ_ONLY;
	}
	if (probe != 0) {
		*ret_line = line_of(
		    "%s: user %s (group %s) may not write there (owner %s, group %s, mode %04o; "
		    "it needs write and search, w and x); fix: setfacl -R -m u:%s:rwX -m "
		    "d:u:%s:rwX %s (this folder, the others below %s and those made there "
		    "later), or where only healsync writes: chown -R %s: %s",
		    at, user, group, user_name(st.st_uid, b3, sizeof(b3)),
		    group_name(st.st_gid, b4, sizeof(b4)), (unsigned)(st.st_mode & 07777), user,
		    user, top, top, user, top);
		return HS_REFUSAL_ACCESS;
	}
	if ((st.st_mode & S_ISVTX) && st.st_uid != geteuid() && owner_uid >= 0 &&
	    (uid_t)owner_uid != geteuid()) {
		*ret_line = line_of(
		    "%s is sticky (mode %04o, owner %s): only a file's owner or the folder's may "
		    "rename or delete it, and user %s is neither; fix: chmod -t %s, or make "
		    "%s the folder's owner",
		    at, (unsigned)(st.st_mode & 07777), user_name(st.st_uid, b3, sizeof(b3)), user,
		    at, user);
		return HS_REFUSAL_STICKY;
	}
	*ret_line = line_of("%s: the system refused user %s (%s) although the folder's modes "
			    "allow it (owner %s, mode %04o): look for a security module's denial "
			    "(SELinux: ausearch -m avc; AppArmor: journalctl -k) or a file "
			    "attribute (lsattr -d %s)",
			    at, user, strerror(err), user_name(st.st_uid, b3, sizeof(b3)),
			    (unsigned)(st.st_mode & 07777), at);
	return HS_REFUSAL_POLICY;
}
