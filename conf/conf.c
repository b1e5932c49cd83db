/*
 * conf: healsync.conf, read with libconfig (1.5 API) and checked against the
 * schema of SPEC 3.
 *
 * The loader walks the tree section by section. Every setting is looked up
 * by name in its group, after the group has been checked for names it does
 * not know, and turned into a typed value or refused with the file, line and
 * dotted path of the setting at fault. Checks that involve several settings
 * (overlapping watch folders, a move: folder inside a watched one) run as
 * soon as the settings they compare are known, and the key files are read
 * last, so a typo is reported before a missing key.
 *
 * The drop-ins are parsed each into a tree of its own and merged into the
 * main file's tree before any of this (dropin.c), so validation sees one
 * tree; a merged setting carries its drop-in's file and line in its hook.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "conf/internal.h"
#include "conf/units.h"

#define DEFAULT_STATE_DIR HS_LOCALSTATEDIR "/lib/healsync"

#define KiB 1024ULL
#define MiB (1024 * KiB)
#define GiB (1024 * MiB)

/* A drop-in, parsed on its own before it is merged into the main tree. */
struct dropin {
	char *path;	   /* DIR/conf.d/NAME.conf */
	char *include_dir; /* DIR/conf.d: its relative @include names */
	config_t lc;
	struct hs_bigints bigints;
};

/*
 * Where a setting merged in from a drop-in came from (its hook): libconfig
 * records a file and line per setting, but a copy made with
 * config_setting_add() has neither.
 */
struct origin {
	struct origin *next;
	const struct dropin *dropin;
	const char *lc_file; /* as the drop-in's libconfig names it (NULL: the drop-in) */
	unsigned line;
	char file[]; /* as a reader finds it */
};

struct loader {
	const char *path;
	char *include_dir; /* where relative @include names are found */
	config_t lc;
	struct hs_bigints bigints;
	struct dropin *dropins;
	size_t n_dropins;
	struct origin *origins;
	size_t n_notes;
	struct hs_config *cfg;
	char **cause;
};

/* The settings each group may hold, separated by spaces. */
static const char root_keys[] = "state_dir metrics_file health upload watch mirror log";
static const char health_keys[] =
    "stalled_after queued_age_warning queued_age_critical mirror_grace min_free";
static const char upload_keys[] =
    "base_url auth api_key_file token_file multipart_threshold part_size parallel "
    "bandwidth max_attempts ca_file proxy connect_timeout stall_timeout";
static const char watch_keys[] =
    "path remote_prefix recursive ignore_case include exclude settle rescan "
    "after_upload max_age not_before min_size max_size";
static const char mirror_keys[] =
    "base_url auth api_key_file token_file schedule jitter page_size fetch_details "
    "database export ca_file proxy";
static const char log_keys[] = "level";

static const struct {
	const char *name;
	enum hs_log_level level;
} log_levels[] = {
    {"debug", HS_LOG_DEBUG},	 {"info", HS_LOG_INFO}, {"notice", HS_LOG_NOTICE},
    {"warning", HS_LOG_WARNING}, {"err", HS_LOG_ERR},
};

/* Errors */

/* Keeps a message on one line, whatever the values quoted in it hold. */
static void one_line(char *s)
{
	for (; s && *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

/* The dotted path of s: "upload.part_size", "watch[1].include[0]". */
static void setting_path(const config_setting_t *s, char *buf, size_t len)
{
	const config_setting_t *parent = config_setting_parent(s);
	size_t used;

	if (!parent) {
		buf[0] = '\0';
		return;
	}
	setting_path(parent, buf, len);
	used = strlen(buf);
	if (config_setting_is_group(parent))
		snprintf(buf + used, len - used, "%s%s", used ? "." : "", config_setting_name(s));
	else
		snprintf(buf + used, len - used, "[%d]", config_setting_index(s));
}

/* The file a setting came from, as a reader finds it. */
static const char *file_of(const struct loader *ld, const char *file, char *buf, size_t len)
{
	if (!file)
		return ld->path;
	if (file[0] == '/' || !ld->include_dir)
		return file;
	snprintf(buf, len, "%s/%s", ld->include_dir, file);
	return buf;
}

/* The file (as a reader finds it) and line setting s was read from. */
static const char *source_of(const struct loader *ld, const config_setting_t *s, char *buf,
			     size_t len, unsigned *ret_line)
{
	const struct origin *o = config_setting_get_hook(s);

	if (o) {
		*ret_line = o->line;
		return o->file;
	}
	*ret_line = config_setting_source_line(s);
	return file_of(ld, config_setting_source_file(s), buf, len);
}

/*
 * Sets *cause to "FILE:LINE: SETTING: message" for setting s, or for its
 * member child when child is not NULL (a missing setting has no line of its
 * own; the group's is the best there is). Returns -1.
 */
static int fail_setting(struct loader *ld, const config_setting_t *s, const char *child,
			const char *fmt, va_list ap)
{
	char name[256], file[4096], *msg;
	const char *where;
	unsigned line;
	size_t used;
	int rc;

	where = source_of(ld, s, file, sizeof(file), &line);
	setting_path(s, name, sizeof(name));
	used = strlen(name);
	if (child)
		snprintf(name + used, sizeof(name) - used, "%s%s", used ? "." : "", child);
	if (vasprintf(&msg, fmt, ap) < 0)
		return -1;
	if (line > 0)
		rc = asprintf(ld->cause, "%s:%u: %s: %s", where, line, name, msg);
	else
		rc = asprintf(ld->cause, "%s: %s: %s", where, name, msg);
	if (rc < 0)
		*ld->cause = NULL;
	free(msg);
	return -1;
}

static int fail_at(struct loader *ld, const config_setting_t *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail_at(struct loader *ld, const config_setting_t *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fail_setting(ld, s, NULL, fmt, ap);
	va_end(ap);
	return -1;
}

static int fail_member(struct loader *ld, const config_setting_t *group, const char *name,
		       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int fail_member(struct loader *ld, const config_setting_t *group, const char *name,
		       const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fail_setting(ld, group, name, fmt, ap);
	va_end(ap);
	return -1;
}

/* Typed values */

static bool is_known(const char *known, const char *name)
{
	size_t len = strlen(name);

	for (const char *p = known; *p; p += strcspn(p, " "), p += strspn(p, " "))
		if (strncmp(p, name, len) == 0 && (p[len] == ' ' || p[len] == '\0'))
			return true;
	return false;
}

static int check_keys(struct loader *ld, const config_setting_t *group, const char *known)
{
	for (int i = 0; i < config_setting_length(group); i++) {
		const config_setting_t *s = config_setting_get_elem(group, (unsigned)i);

		if (!is_known(known, config_setting_name(s)))
			return fail_at(ld, s, "unknown setting");
	}
	return 0;
}

static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

static int get_string(struct loader *ld, const config_setting_t *s, const char **ret)
{
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return fail_at(ld, s, "wrong type: want a string in double quotes");
	*ret = config_setting_get_string(s);
	if (has_control(*ret))
		return fail_at(ld, s, "must not contain control characters");
	return 0;
}

static int dup_string(struct loader *ld, const config_setting_t *s, char **ret)
{
	const char *v;

	if (get_string(ld, s, &v) != 0)
		return -1;
	*ret = strdup(v);
	return *ret ? 0 : -1;
}

static bool is_integer(const config_setting_t *s)
{
	return config_setting_type(s) == CONFIG_TYPE_INT ||
	       config_setting_type(s) == CONFIG_TYPE_INT64;
}

/* An int or int64 setting, refusing one that libconfig 1.5 wrapped. */
static int get_integer(struct loader *ld, const config_setting_t *s, long long *ret)
{
	const struct origin *o = config_setting_get_hook(s);
	const struct hs_bigint *big;
	long long v = config_setting_get_int64(s);

	/* Each file's literals are looked up in the scan of that file. */
	if (config_setting_type(s) == CONFIG_TYPE_INT &&
	    (big = o ? hs_bigint_find(&o->dropin->bigints, o->lc_file, o->line, (int)v)
		     : hs_bigint_find(&ld->bigints, config_setting_source_file(s),
				      config_setting_source_line(s), (int)v)))
		return fail_at(
		    ld, s, "%s does not fit in 32 bits; write it as a string (\"%s\") or as %sL",
		    big->text, big->text, big->text);
	*ret = v;
	return 0;
}

static int get_size(struct loader *ld, const config_setting_t *s, uint64_t *ret)
{
	long long v;

	if (config_setting_type(s) == CONFIG_TYPE_STRING) {
		const char *text = config_setting_get_string(s);

		if (hs_parse_size(text, ret) != 0)
			return fail_at(ld, s,
				       "bad size \"%s\" (want e.g. \"16MiB\", \"512KiB\" or a "
				       "number of bytes)",
				       text);
		return 0;
	}
	if (!is_integer(s))
		return fail_at(ld, s,
			       "wrong type: want a size like \"16MiB\" or a number of bytes");
	if (get_integer(ld, s, &v) != 0)
		return -1;
	if (v < 0)
		return fail_at(ld, s, "must not be negative");
	*ret = (uint64_t)v;
	return 0;
}

static int get_size_in(struct loader *ld, const config_setting_t *s, uint64_t min, uint64_t max,
		       uint64_t *ret)
{
	char a[32], b[32], c[32];
	uint64_t v;

	if (get_size(ld, s, &v) != 0)
		return -1;
	if (v < min || v > max)
		return fail_at(ld, s, "%s is out of range (%s to %s)",
			       hs_format_size_exact(v, a, sizeof(a)),
			       hs_format_size_exact(min, b, sizeof(b)),
			       hs_format_size_exact(max, c, sizeof(c)));
	*ret = v;
	return 0;
}

/* A string with a unit, or an integer number of seconds. */
static int get_duration(struct loader *ld, const config_setting_t *s, uint64_t *ret);

/* Network timeouts: whole seconds from 1 s to 1 h (curl counts seconds). */
static int get_timeout(struct loader *ld, const config_setting_t *s, uint64_t *ret)
{
	if (get_duration(ld, s, ret) != 0)
		return -1;
	if (*ret < 1000 || *ret > 3600 * 1000 || *ret % 1000)
		return fail_at(ld, s, "must be whole seconds from 1s to 1h");
	return 0;
}

static int get_duration(struct loader *ld, const config_setting_t *s, uint64_t *ret)
{
	long long v;

	if (config_setting_type(s) == CONFIG_TYPE_STRING) {
		const char *text = config_setting_get_string(s);

		if (hs_parse_duration_ms(text, ret) != 0)
			return fail_at(ld, s,
				       "bad duration \"%s\" (want e.g. \"2s\", \"15m\", \"1h\" "
				       "or a number of seconds)",
				       text);
		return 0;
	}
	if (!is_integer(s))
		return fail_at(ld, s,
			       "wrong type: want a duration like \"2s\" or a number of "
			       "seconds");
	if (get_integer(ld, s, &v) != 0)
		return -1;
	if (v < 0)
		return fail_at(ld, s, "must not be negative");
	if ((uint64_t)v > UINT64_MAX / 1000)
		return fail_at(ld, s, "is too long");
	*ret = (uint64_t)v * 1000;
	return 0;
}

static int get_uint(struct loader *ld, const config_setting_t *s, unsigned min, unsigned max,
		    unsigned *ret)
{
	long long v;

	if (!is_integer(s))
		return fail_at(ld, s, "wrong type: want a whole number (without quotes)");
	if (get_integer(ld, s, &v) != 0)
		return -1;
	if (v < min || v > max)
		return fail_at(ld, s, "%lld is out of range (%u to %u)", v, min, max);
	*ret = (unsigned)v;
	return 0;
}

static int get_bool(struct loader *ld, const config_setting_t *s, bool *ret)
{
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return fail_at(ld, s, "wrong type: want true or false");
	*ret = config_setting_get_bool(s);
	return 0;
}

/* Paths */

/* Whether path is dir or inside it, both being normalized. */
static bool path_within(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (strcmp(dir, "/") == 0)
		return true;
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/*
 * An absolute path with repeated and trailing slashes removed. "." and ".."
 * are refused rather than resolved: with them, "inside that folder" could
 * not be told from the text.
 */
static int normalize_path(struct loader *ld, const config_setting_t *s, const char *text,
			  char **ret)
{
	size_t o = 0;
	char *out;

	if (text[0] != '/')
		return fail_at(ld, s, "\"%s\" is not an absolute path", text);
	if (has_control(text))
		return fail_at(ld, s, "must not contain control characters");
	out = malloc(strlen(text) + 2);
	if (!out)
		return -1;
	for (const char *p = text; *p;) {
		size_t len;

		p += strspn(p, "/");
		len = strcspn(p, "/");
		if (len == 0)
			break;
		if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.')) {
			free(out);
			return fail_at(ld, s, "\"%s\" must not contain . or .. components", text);
		}
		out[o++] = '/';
		memcpy(out + o, p, len);
		o += len;
		p += len;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	*ret = out;
	return 0;
}

static int get_path(struct loader *ld, const config_setting_t *s, char **ret)
{
	const char *text;

	if (get_string(ld, s, &text) != 0)
		return -1;
	return normalize_path(ld, s, text, ret);
}

/* "" (none) or an absolute path. */
static int get_optional_path(struct loader *ld, const config_setting_t *s, char **ret)
{
	const char *text;

	if (get_string(ld, s, &text) != 0)
		return -1;
	if (!*text) {
		*ret = NULL;
		return 0;
	}
	return normalize_path(ld, s, text, ret);
}

/* URLs */

static bool is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6) ||
		       (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
	return false;
}

/*
 * What is wrong with url, or NULL. A base URL (base) must also be free of
 * user names and passwords (they would end up in logs) and of a query or a
 * fragment (paths are appended to it).
 */
static const char *url_problem(const char *url, bool base)
{
	const char *auth, *end, *host, *port;
	char name[256];
	size_t len, colons = 0;
	bool https;

	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '\\')
			return "must not contain spaces, control characters or backslashes";
	if (strncasecmp(url, "https://", 8) == 0)
		https = true;
	else if (strncasecmp(url, "http://", 7) == 0)
		https = false;
	else
		return "must start with https:// (or http:// for a server on this machine)";
	auth = strstr(url, "://") + 3;
	end = auth + strcspn(auth, "/?#");
	host = auth;
	for (const char *p = auth; p < end; p++)
		if (*p == '@')
			host = p + 1;
	for (const char *p = host; p < end; p++)
		colons += *p == ':';
	if (base && host != auth)
		return "must not contain a user name or password";
	if (base && end[strcspn(end, "?#")])
		return "must not contain a query (?) or a fragment (#)";

	if (*host == '[') { /* [IPv6] */
		const char *close = memchr(host, ']', (size_t)(end - host));

		if (!close)
			return "has a bad host";
		host++;
		len = (size_t)(close - host);
		port = close + 1;
	} else if (colons > 1) { /* a bare IPv6 address such as ::1 */
		len = (size_t)(end - host);
		port = end;
	} else {
		len = strcspn(host, ":/?#");
		port = host + len;
	}
	if (port < end) {
		if (*port != ':' || strspn(port + 1, "0123456789") != (size_t)(end - port - 1) ||
		    end - port - 1 > 5 || atoi(port + 1) > 65535)
			return "has a bad port";
	}
	if (len == 0)
		return "has no host";
	if (len >= sizeof(name))
		return "has a host name that is too long";
	memcpy(name, host, len);
	name[len] = '\0';
	if (!https && !is_loopback(name))
		return "uses http:// to another machine; use https:// (http:// is only allowed to "
		       "localhost, 127.0.0.0/8 and ::1)";
	return NULL;
}

bool hs_url_allowed(const char *url)
{
	return url && !url_problem(url, false);
}

static int get_base_url(struct loader *ld, const config_setting_t *s, char **ret)
{
	const char *text, *problem;
	size_t len, host;

	if (get_string(ld, s, &text) != 0)
		return -1;
	problem = url_problem(text, true);
	if (problem)
		return fail_at(ld, s, "%s", problem);
	len = strlen(text);
	host = (size_t)(strstr(text, "://") + 3 - text);
	while (len > host + 1 && text[len - 1] == '/')
		len--;
	*ret = strndup(text, len);
	return *ret ? 0 : -1;
}

/* Sections */

/* An API's own CA bundle and proxy: each group has its own, never
 * borrowed from another (SPEC 3). Empty strings mean "none". */
static int load_transport(struct loader *ld, const config_setting_t *group, struct hs_api *api)
{
	const config_setting_t *s;

	if ((s = config_setting_get_member(group, "ca_file"))) {
		struct stat st;

		if (get_optional_path(ld, s, &api->ca_file) != 0)
			return -1;
		if (api->ca_file && stat(api->ca_file, &st) != 0)
			return fail_at(ld, s, "%s: %s", api->ca_file, strerror(errno));
		if (api->ca_file && !S_ISREG(st.st_mode))
			return fail_at(ld, s, "%s: is not a file", api->ca_file);
	}
	if ((s = config_setting_get_member(group, "proxy"))) {
		if (dup_string(ld, s, &api->proxy) != 0)
			return -1;
		if (!*api->proxy) {
			free(api->proxy);
			api->proxy = NULL;
		}
	}
	return 0;
}

/* A file naming a secret: absolute, not a folder. */
static int get_secret_file(struct loader *ld, const config_setting_t *s, char **ret)
{
	const char *text;

	if (get_string(ld, s, &text) != 0)
		return -1;
	if (text[0] != '/')
		return fail_at(ld, s, "\"%s\" is not an absolute path", text);
	if (text[strlen(text) - 1] == '/')
		return fail_at(ld, s, "\"%s\" names a folder, not a file", text);
	*ret = strdup(text);
	return *ret ? 0 : -1;
}

/* auth, and the file of the secret it needs (read later). With "bearer" an
 * api_key_file left over (from the main file, say, when a drop-in turns
 * the token on) is not used; a token_file without "bearer" is an error, as
 * it would be ignored while its writer believes it is in use. */
static int load_auth(struct loader *ld, const config_setting_t *group, struct hs_api *api)
{
	const config_setting_t *s = config_setting_get_member(group, "auth");
	const config_setting_t *token = config_setting_get_member(group, "token_file");
	const char *text;

	api->auth = HS_AUTH_API_KEY;
	if (s) {
		if (get_string(ld, s, &text) != 0)
			return -1;
		if (strcmp(text, "bearer") == 0)
			api->auth = HS_AUTH_BEARER;
		else if (strcmp(text, "api-key") != 0)
			return fail_at(ld, s, "bad value \"%s\" (want \"api-key\" or \"bearer\")",
				       text);
	}
	if (api->auth == HS_AUTH_BEARER) {
		if (!token) /* where "bearer" was asked for, maybe a drop-in */
			return fail_at(ld, s,
				       "\"bearer\" needs token_file = \"/path/of/the/token\"");
		return get_secret_file(ld, token, &api->token_file);
	}
	if (token)
		return fail_at(ld, token,
			       "is only used with auth = \"bearer\"; add that line, or "
			       "remove this one");
	s = config_setting_get_member(group, "api_key_file");
	if (!s)
		return fail_member(ld, group, "api_key_file", "is required");
	return get_secret_file(ld, s, &api->api_key_file);
}

/* base_url and the credential, both required (the secret is read later),
 * and the API's own ca_file and proxy. */
static int load_api(struct loader *ld, const config_setting_t *group, struct hs_api *api)
{
	const config_setting_t *s;

	s = config_setting_get_member(group, "base_url");
	if (!s)
		return fail_member(ld, group, "base_url", "is required");
	if (get_base_url(ld, s, &api->base_url) != 0)
		return -1;
	if (load_auth(ld, group, api) != 0)
		return -1;
	return load_transport(ld, group, api);
}

static int load_upload(struct loader *ld, const config_setting_t *root)
{
	struct hs_config *cfg = ld->cfg;
	const config_setting_t *group = config_setting_get_member(root, "upload"), *s;
	char *cause = NULL;

	if (!group)
		return fail_member(ld, root, "upload", "is required");
	if (!config_setting_is_group(group))
		return fail_at(ld, group, "wrong type: want a group: upload: { ... };");
	if (check_keys(ld, group, upload_keys) != 0 || load_api(ld, group, &cfg->upload.api) != 0)
		return -1;

	if ((s = config_setting_get_member(group, "multipart_threshold"))) {
		if (get_size(ld, s, &cfg->upload.multipart_threshold) != 0)
			return -1;
		if (cfg->upload.multipart_threshold == 0)
			return fail_at(ld, s, "must be at least 1 byte");
	}
	if ((s = config_setting_get_member(group, "part_size")) &&
	    get_size_in(ld, s, 5 * MiB, 5 * GiB, &cfg->upload.part_size) != 0)
		return -1;
	if ((s = config_setting_get_member(group, "parallel")) &&
	    get_uint(ld, s, 1, 64, &cfg->upload.parallel) != 0)
		return -1;
	if ((s = config_setting_get_member(group, "max_attempts")) &&
	    get_uint(ld, s, 1, 1000, &cfg->upload.max_attempts) != 0)
		return -1;
	if ((s = config_setting_get_member(group, "connect_timeout")) &&
	    get_timeout(ld, s, &cfg->upload.connect_timeout_ms) != 0)
		return -1;
	if ((s = config_setting_get_member(group, "stall_timeout")) &&
	    get_timeout(ld, s, &cfg->upload.stall_timeout_ms) != 0)
		return -1;

	s = config_setting_get_member(group, "bandwidth");
	if (s && is_integer(s)) {
		char text[32];
		long long v;

		if (get_integer(ld, s, &v) != 0)
			return -1;
		if (v <= 0)
			return fail_at(ld, s,
				       "%lld is not a rate (want e.g. \"2MiB/s\" or \"off\")", v);
		snprintf(text, sizeof(text), "%lld", v);
		cfg->upload.bandwidth = hs_timetable_parse(text, &cause);
	} else if (s) {
		const char *text;

		if (config_setting_type(s) != CONFIG_TYPE_STRING)
			return fail_at(ld, s,
				       "wrong type: want a rate like \"2MiB/s\", \"off\" or a "
				       "timetable like \"08:00,2MiB/s 18:00,off\"");
		if (get_string(ld, s, &text) != 0)
			return -1;
		cfg->upload.bandwidth = hs_timetable_parse(text, &cause);
	} else {
		cfg->upload.bandwidth = hs_timetable_parse("off", &cause);
	}
	if (!cfg->upload.bandwidth) {
		if (cause && s)
			fail_at(ld, s, "%s", cause);
		free(cause);
		return -1;
	}
	return 0;
}

/* NUL-terminated glob list; absent: empty. */
static int get_globs(struct loader *ld, const config_setting_t *s, char ***ret)
{
	int n = s ? config_setting_length(s) : 0;
	char **globs;

	if (s && config_setting_type(s) != CONFIG_TYPE_ARRAY &&
	    config_setting_type(s) != CONFIG_TYPE_LIST)
		return fail_at(ld, s, "wrong type: want a list of patterns like [ \"*.pdf\" ]");
	globs = calloc((size_t)n + 1, sizeof(*globs));
	if (!globs)
		return -1;
	*ret = globs;
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *text;

		if (get_string(ld, e, &text) != 0)
			return -1;
		if (!*text)
			return fail_at(ld, e, "empty pattern");
		globs[i] = strdup(text);
		if (!globs[i])
			return -1;
	}
	return 0;
}

/* How many continuation bytes follow lead, or -1 if it starts no character. */
static int utf8_tail(unsigned char lead)
{
	if (lead < 0x80)
		return 0;
	if (lead >= 0xc2 && lead < 0xe0)
		return 1;
	if (lead >= 0xe0 && lead < 0xf0)
		return 2;
	if (lead >= 0xf0 && lead < 0xf5)
		return 3;
	return -1;
}

/* Whether s is valid UTF-8 (the server wants file names in it). */
static bool is_utf8(const unsigned char *s)
{
	while (*s) {
		int n = utf8_tail(*s);
		unsigned cp;

		if (n < 0)
			return false;
		cp = *s & (0x7f >> n);
		for (int i = 1; i <= n; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i] & 0x3f);
		}
		/* overlong forms, surrogates, beyond U+10FFFF */
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		s += n + 1;
	}
	return true;
}

/* "" or "a/b/": relative, "/"-terminated, no empty, "." or ".." segment. */
static int get_remote_prefix(struct loader *ld, const config_setting_t *s, char **ret)
{
	const char *text;
	size_t len;

	if (get_string(ld, s, &text) != 0)
		return -1;
	len = strlen(text);
	if (len > 0 && text[len - 1] != '/')
		return fail_at(ld, s, "\"%s\" must end with \"/\" (or be \"\")", text);
	if (text[0] == '/')
		return fail_at(ld, s, "\"%s\" must not start with \"/\"", text);
	for (const char *p = text; *p;) {
		size_t seg = strcspn(p, "/");

		if (seg == 0 || (seg == 1 && p[0] == '.') ||
		    (seg == 2 && p[0] == '.' && p[1] == '.'))
			return fail_at(ld, s, "\"%s\" must not contain empty, . or .. segments",
				       text);
		p += seg + 1;
	}
	if (!is_utf8((const unsigned char *)text))
		return fail_at(ld, s, "is not valid UTF-8");
	*ret = strdup(text);
	return *ret ? 0 : -1;
}

static int get_after_upload(struct loader *ld, const config_setting_t *s, struct hs_watch *w)
{
	const char *text;

	if (get_string(ld, s, &text) != 0)
		return -1;
	if (strcmp(text, "keep") == 0) {
		w->after_upload = HS_AFTER_KEEP;
	} else if (strcmp(text, "delete") == 0) {
		w->after_upload = HS_AFTER_DELETE;
	} else if (strncmp(text, "move:", 5) == 0) {
		w->after_upload = HS_AFTER_MOVE;
		if (normalize_path(ld, s, text + 5, &w->move_dir) != 0)
			return -1;
	} else {
		return fail_at(ld, s,
			       "bad value \"%s\" (want \"keep\", \"delete\" or "
			       "\"move:/absolute/folder\")",
			       text);
	}
	return 0;
}

static int load_limits(struct loader *ld, const config_setting_t *group, struct hs_watch *w);

static int load_watch(struct loader *ld, const config_setting_t *group, size_t index)
{
	struct hs_watch *w = &ld->cfg->watches[index];
	const config_setting_t *s;

	w->recursive = true;
	w->settle_ms = 2 * 1000;
	w->rescan_ms = 3600 * 1000;
	w->after_upload = HS_AFTER_KEEP;
	if (check_keys(ld, group, watch_keys) != 0)
		return -1;

	s = config_setting_get_member(group, "path");
	if (!s)
		return fail_member(ld, group, "path", "is required");
	if (get_path(ld, s, &w->path) != 0)
		return -1;
	for (size_t i = 0; i < index; i++) {
		const char *other = ld->cfg->watches[i].path;

		if (strcmp(w->path, other) == 0)
			return fail_at(ld, s, "\"%s\" is already watched by watch[%zu]", w->path,
				       i);
		if (path_within(w->path, other))
			return fail_at(ld, s, "\"%s\" is inside watch[%zu].path \"%s\"", w->path, i,
				       other);
		if (path_within(other, w->path))
			return fail_at(ld, s, "\"%s\" contains watch[%zu].path \"%s\"", w->path, i,
				       other);
	}
	if (path_within(ld->cfg->state_dir, w->path))
		return fail_at(ld, s,
			       "\"%s\" contains state_dir \"%s\"; the queue would upload "
			       "itself",
			       w->path, ld->cfg->state_dir);

	s = config_setting_get_member(group, "remote_prefix");
	if (s ? get_remote_prefix(ld, s, &w->remote_prefix) != 0 : !(w->remote_prefix = strdup("")))
		return -1;
	if ((s = config_setting_get_member(group, "recursive")) &&
	    get_bool(ld, s, &w->recursive) != 0)
		return -1;
	if ((s = config_setting_get_member(group, "ignore_case")) &&
	    get_bool(ld, s, &w->ignore_case) != 0)
		return -1;
	if (get_globs(ld, config_setting_get_member(group, "include"), &w->include) != 0 ||
	    get_globs(ld, config_setting_get_member(group, "exclude"), &w->exclude) != 0)
		return -1;
	if ((s = config_setting_get_member(group, "settle")) &&
	    get_duration(ld, s, &w->settle_ms) != 0)
		return -1;
	if ((s = config_setting_get_member(group, "rescan"))) {
		if (get_duration(ld, s, &w->rescan_ms) != 0)
			return -1;
		if (w->rescan_ms < 1000)
			return fail_at(ld, s, "must be at least 1s");
	}
	if ((s = config_setting_get_member(group, "after_upload")) &&
	    get_after_upload(ld, s, w) != 0)
		return -1;
	return load_limits(ld, group, w);
}

/* An empty string: the limit is off, as the sample writes it. */
static bool is_unset(const config_setting_t *s)
{
	return config_setting_type(s) == CONFIG_TYPE_STRING && !config_setting_get_string(s)[0];
}

/* max_age, not_before, min_size, max_size (filter.h applies them). */
static int load_limits(struct loader *ld, const config_setting_t *group, struct hs_watch *w)
{
	const config_setting_t *s, *max;
	char a[32], b[32];

	if ((s = config_setting_get_member(group, "max_age")) && !is_unset(s)) {
		if (get_duration(ld, s, &w->max_age_ms) != 0)
			return -1;
		if (w->max_age_ms == 0)
			return fail_at(ld, s, "must be longer than 0s (write \"\" for no limit)");
	}
	if ((s = config_setting_get_member(group, "not_before")) && !is_unset(s)) {
		const char *text;

		if (get_string(ld, s, &text) != 0)
			return -1;
		if (hs_parse_local_time(text, &w->not_before) != 0)
			return fail_at(ld, s,
				       "bad date \"%s\" (want local time as \"2026-12-01\" or "
				       "\"2026-12-01 18:00\")",
				       text);
		if (!(w->not_before_text = strdup(text)))
			return -1;
		w->has_not_before = true;
	}
	if ((s = config_setting_get_member(group, "min_size")) && !is_unset(s) &&
	    get_size(ld, s, &w->min_size) != 0)
		return -1;
	if ((max = config_setting_get_member(group, "max_size")) && !is_unset(max)) {
		if (get_size(ld, max, &w->max_size) != 0)
			return -1;
		if (w->max_size == 0)
			return fail_at(ld, max, "must be more than 0 (write \"\" for no limit)");
		if (w->min_size > w->max_size)
			return fail_at(ld, max, "%s is below min_size %s; no file could be sent",
				       hs_format_size_exact(w->max_size, a, sizeof(a)),
				       hs_format_size_exact(w->min_size, b, sizeof(b)));
	}
	return 0;
}

/* A moved file must land outside every watched folder, or it comes back. */
static int check_move_dirs(struct loader *ld, const config_setting_t *list)
{
	for (size_t i = 0; i < ld->cfg->n_watches; i++) {
		const struct hs_watch *w = &ld->cfg->watches[i];
		const config_setting_t *s;

		if (w->after_upload != HS_AFTER_MOVE)
			continue;
		s = config_setting_get_member(config_setting_get_elem(list, (unsigned)i),
					      "after_upload");
		for (size_t j = 0; j < ld->cfg->n_watches; j++) {
			if (!path_within(w->move_dir, ld->cfg->watches[j].path))
				continue;
			if (j == i)
				return fail_at(ld, s,
					       "\"%s\" is inside this watch's own folder; moved "
					       "files would be uploaded again",
					       w->move_dir);
			return fail_at(ld, s,
				       "\"%s\" is inside watch[%zu].path \"%s\"; moved files "
				       "would be uploaded again",
				       w->move_dir, j, ld->cfg->watches[j].path);
		}
	}
	return 0;
}

static int load_watches(struct loader *ld, const config_setting_t *root)
{
	const config_setting_t *list = config_setting_get_member(root, "watch");
	int n;

	if (!list)
		return 0;
	n = config_setting_length(list);
	if (config_setting_type(list) != CONFIG_TYPE_LIST &&
	    !(config_setting_type(list) == CONFIG_TYPE_ARRAY && n == 0))
		return fail_at(ld, list,
			       "wrong type: want a list of folders: ( { path = \"...\"; } )");
	if (n == 0)
		return 0;
	ld->cfg->watches = calloc((size_t)n, sizeof(*ld->cfg->watches));
	if (!ld->cfg->watches)
		return -1;
	ld->cfg->n_watches = (size_t)n;
	for (int i = 0; i < n; i++) {
		const config_setting_t *group = config_setting_get_elem(list, (unsigned)i);

		if (!config_setting_is_group(group))
			return fail_at(ld, group, "wrong type: want a group { path = \"...\"; }");
		if (load_watch(ld, group, (size_t)i) != 0)
			return -1;
	}
	return check_move_dirs(ld, list);
}

/* Parsed here, so a bad schedule is a configuration error with its line. */
static int check_schedule(struct loader *ld, const config_setting_t *s, const char *text)
{
	char *cause = NULL;
	const char *why;
	int rc;

	ld->cfg->mirror.cron = hs_cron_parse(text, &cause);
	if (ld->cfg->mirror.cron)
		return 0;
	why = cause ? cause : "out of memory";
	if (strncmp(why, "schedule: ", 10) == 0)
		why += 10;
	rc = fail_at(ld, s, "\"%s\": %s", text, why);
	free(cause);
	return rc;
}

static int load_mirror(struct loader *ld, const config_setting_t *root)
{
	struct hs_config *cfg = ld->cfg;
	const config_setting_t *group = config_setting_get_member(root, "mirror"), *s;

	if (!group)
		return 0;
	if (!config_setting_is_group(group))
		return fail_at(ld, group, "wrong type: want a group: mirror: { ... };");
	cfg->mirror.enabled = true;
	if (check_keys(ld, group, mirror_keys) != 0 || load_api(ld, group, &cfg->mirror.api) != 0)
		return -1;

	s = config_setting_get_member(group, "schedule");
	if (s) {
		if (dup_string(ld, s, &cfg->mirror.schedule) != 0 ||
		    check_schedule(ld, s, cfg->mirror.schedule) != 0)
			return -1;
	} else if (!(cfg->mirror.schedule = strdup("0 2 * * *")) ||
		   !(cfg->mirror.cron = hs_cron_parse(cfg->mirror.schedule, NULL))) {
		return -1;
	}
	if ((s = config_setting_get_member(group, "jitter")) &&
	    get_duration(ld, s, &cfg->mirror.jitter_ms) != 0)
		return -1;
	if ((s = config_setting_get_member(group, "page_size")) &&
	    get_uint(ld, s, 1, 100, &cfg->mirror.page_size) != 0)
		return -1;
	if ((s = config_setting_get_member(group, "fetch_details")) &&
	    get_bool(ld, s, &cfg->mirror.fetch_details) != 0)
		return -1;
	if ((s = config_setting_get_member(group, "database"))) {
		if (get_path(ld, s, &cfg->mirror.database) != 0)
			return -1;
	} else if (asprintf(&cfg->mirror.database, "%s/mirror.db",
			    strcmp(cfg->state_dir, "/") == 0 ? "" : cfg->state_dir) < 0) {
		cfg->mirror.database = NULL;
		return -1;
	}
	if ((s = config_setting_get_member(group, "export")) &&
	    get_optional_path(ld, s, &cfg->mirror.export_path) != 0)
		return -1;
	return 0;
}

static int load_log(struct loader *ld, const config_setting_t *root)
{
	const config_setting_t *group = config_setting_get_member(root, "log"), *s;
	const char *text;

	if (!group)
		return 0;
	if (!config_setting_is_group(group))
		return fail_at(ld, group, "wrong type: want a group: log: { level = \"info\"; };");
	if (check_keys(ld, group, log_keys) != 0)
		return -1;
	s = config_setting_get_member(group, "level");
	if (!s)
		return 0;
	if (get_string(ld, s, &text) != 0)
		return -1;
	for (size_t i = 0; i < sizeof(log_levels) / sizeof(log_levels[0]); i++) {
		if (strcmp(text, log_levels[i].name) == 0) {
			ld->cfg->log_level = log_levels[i].level;
			return 0;
		}
	}
	return fail_at(ld, s, "bad level \"%s\" (want debug, info, notice, warning or err)", text);
}

static int load_health(struct loader *ld, const config_setting_t *root)
{
	const config_setting_t *group = config_setting_get_member(root, "health"), *s;
	struct {
		const char *name;
		uint64_t *ms;
	} spans[] = {
	    {"stalled_after", &ld->cfg->health.stalled_after_ms},
	    {"queued_age_warning", &ld->cfg->health.queued_age_warning_ms},
	    {"queued_age_critical", &ld->cfg->health.queued_age_critical_ms},
	    {"mirror_grace", &ld->cfg->health.mirror_grace_ms},
	};

	if (!group)
		return 0;
	if (!config_setting_is_group(group))
		return fail_at(ld, group,
			       "wrong type: want a group: health: { stalled_after = \"24h\"; };");
	if (check_keys(ld, group, health_keys) != 0)
		return -1;
	for (size_t i = 0; i < sizeof(spans) / sizeof(spans[0]); i++) {
		s = config_setting_get_member(group, spans[i].name);
		if (!s)
			continue;
		if (get_duration(ld, s, spans[i].ms) != 0)
			return -1;
		/* Durations in ms feed signed arithmetic: ten years is plenty. */
		if (*spans[i].ms > 10ULL * 366 * 24 * 3600 * 1000)
			return fail_at(ld, s, "is too long (at most ten years; 0 turns it off)");
	}
	if ((s = config_setting_get_member(group, "min_free")) &&
	    get_size_in(ld, s, 0, (uint64_t)1 << 50, &ld->cfg->health.min_free) != 0)
		return -1;
	if (ld->cfg->health.queued_age_critical_ms && ld->cfg->health.queued_age_warning_ms &&
	    ld->cfg->health.queued_age_critical_ms < ld->cfg->health.queued_age_warning_ms)
		return fail_at(ld, config_setting_get_member(group, "queued_age_critical"),
			       "is shorter than queued_age_warning");
	return 0;
}

/* Generations of secrets, process-wide, so that one read after a reload
 * is never taken for one before it. */
static unsigned last_generation;

/* Reads the secret of one API; errors point at the setting naming its
 * file. */
static int load_key(struct loader *ld, const char *section, struct hs_api *api)
{
	const config_setting_t *group = config_lookup(&ld->lc, section);
	const char *name = api->auth == HS_AUTH_BEARER ? "token_file" : "api_key_file";
	char *cause = NULL;

	api->secret = calloc(1, sizeof(*api->secret));
	if (!api->secret)
		return -1;
	api->secret->value = hs_key_read(hs_api_secret_file(api), &cause);
	api->secret->generation = ++last_generation;
	if (api->secret->value)
		return 0;
	if (cause)
		fail_at(ld, config_setting_get_member(group, name), "%s", cause);
	free(cause);
	return -1;
}

const char *hs_api_secret_file(const struct hs_api *api)
{
	return api->auth == HS_AUTH_BEARER ? api->token_file : api->api_key_file;
}

int hs_api_reread(const struct hs_api *api, bool *ret_changed, char **cause)
{
	char *fresh;

	*cause = NULL;
	if (!api->secret) { /* loaded with HS_CONFIG_NO_KEYS */
		*cause = strdup("no secret was read for this API");
		return -1;
	}
	fresh = hs_key_read(hs_api_secret_file(api), cause);
	if (!fresh)
		return -1;
	*ret_changed = !api->secret->value || strcmp(fresh, api->secret->value) != 0;
	if (*ret_changed) {
		hs_key_free(api->secret->value);
		api->secret->value = fresh;
		api->secret->generation = ++last_generation;
	} else {
		hs_key_free(fresh);
	}
	return 0;
}

static struct hs_config *config_new(void)
{
	struct hs_config *cfg = calloc(1, sizeof(*cfg));

	if (!cfg)
		return NULL;
	cfg->upload.multipart_threshold = 64 * MiB;
	cfg->upload.part_size = 16 * MiB;
	cfg->upload.parallel = 4;
	cfg->upload.max_attempts = 10;
	cfg->upload.connect_timeout_ms = 30 * 1000;
	cfg->upload.stall_timeout_ms = 60 * 1000;
	cfg->mirror.jitter_ms = 10 * 60 * 1000;
	cfg->mirror.page_size = 100;
	cfg->mirror.fetch_details = true;
	cfg->health.stalled_after_ms = 24 * 3600 * 1000;
	cfg->health.queued_age_warning_ms = 6 * 3600 * 1000;
	cfg->health.mirror_grace_ms = 2 * 3600 * 1000;
	cfg->health.min_free = GiB;
	cfg->log_level = HS_LOG_INFO;
	return cfg;
}

/* "FILE:LINE: message" for a file libconfig could not read, named as a
 * reader finds it (include_dir: where its relative @includes are). */
static void parse_error(struct loader *ld, const config_t *lc, const char *path,
			const char *include_dir)
{
	const char *file = config_error_file(lc);
	int line = config_error_line(lc);
	char buf[4096];

	if (!file)
		file = path;
	else if (file[0] != '/' && include_dir)
		file = (snprintf(buf, sizeof(buf), "%s/%s", include_dir, file), buf);
	if ((line > 0 ? asprintf(ld->cause, "%s:%d: %s", file, line, config_error_text(lc))
		      : asprintf(ld->cause, "%s: %s", file, config_error_text(lc))) < 0)
		*ld->cause = NULL;
}

/* Opens path and lets libconfig parse it into lc, after the bigint scan;
 * syntax errors become *cause. */
static int read_tree(struct loader *ld, const char *path, const char *include_dir, config_t *lc,
		     struct hs_bigints *bigints)
{
	struct stat st;
	FILE *f = NULL;
	int fd, ok;

	/* O_NONBLOCK: a FIFO put there by mistake must not hang the loader. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) != 0) {
		if (asprintf(ld->cause, "%s: %s", path, strerror(errno)) < 0)
			*ld->cause = NULL;
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		if (asprintf(ld->cause, "%s: %s", path,
			     S_ISDIR(st.st_mode) ? "is a directory" : "is not a regular file") < 0)
			*ld->cause = NULL;
		return -1;
	}
	if (!(f = fdopen(fd, "r"))) {
		close(fd);
		return -1;
	}
	if (include_dir)
		config_set_include_dir(lc, include_dir);
	if (hs_bigint_scan(path, include_dir, bigints, ld->cause) != 0) {
		fclose(f);
		return -1;
	}
	ok = config_read(lc, f);
	fclose(f);
	if (!ok) {
		parse_error(ld, lc, path, include_dir);
		return -1;
	}
	return 0;
}

/* The file a setting of drop-in di was read from: di itself, or a file
 * it @includes. */
static const char *dropin_file(const struct dropin *di, const config_setting_t *from, char *buf,
			       size_t len)
{
	const char *lc_file = config_setting_source_file(from);

	if (!lc_file)
		return di->path;
	if (lc_file[0] == '/')
		return lc_file;
	snprintf(buf, len, "%s/%s", di->include_dir, lc_file);
	return buf;
}

/* The hook of a setting merge copies from the drop-in being read. */
static void *origin_of(const config_setting_t *from, void *arg)
{
	struct loader *ld = arg;
	const struct dropin *di = &ld->dropins[ld->n_dropins - 1];
	const char *lc_file = config_setting_source_file(from);
	char buf[4096];
	const char *file = dropin_file(di, from, buf, sizeof(buf));
	struct origin *o;

	o = malloc(sizeof(*o) + strlen(file) + 1);
	if (!o)
		return NULL;
	*o = (struct origin){.next = ld->origins,
			     .dropin = di,
			     .lc_file = lc_file,
			     .line = config_setting_source_line(from)};
	strcpy(o->file, file);
	ld->origins = o;
	return o;
}

/* Appends s to the NULL-terminated list *v of *n entries; takes s. */
static int strv_push(char ***v, size_t *n, char *s)
{
	char **grown;

	if (!s)
		return -1;
	grown = reallocarray(*v, *n + 2, sizeof(**v));
	if (!grown) {
		free(s);
		return -1;
	}
	*v = grown;
	grown[(*n)++] = s;
	grown[*n] = NULL;
	return 0;
}

static int note_setting(const char *name, const config_setting_t *from, void *arg)
{
	struct loader *ld = arg;
	char buf[4096], *line;
	const char *file = dropin_file(&ld->dropins[ld->n_dropins - 1], from, buf, sizeof(buf));

	if (asprintf(&line, "%s  %s:%u", name, file, config_setting_source_line(from)) < 0)
		return -1;
	return strv_push(&ld->cfg->dropin_settings, &ld->n_notes, line);
}

/* Reads DIR/conf.d/NAME.conf in name order, each merged into the main tree. */
static int read_dropins(struct loader *ld)
{
	const struct hs_merge_cb cb = {origin_of, note_setting, ld};
	char *dir = hs_config_dropin_dir(ld->path), **names = NULL;
	size_t n = 0, n_read = 0;
	int rc = -1;

	if (!dir || hs_dropin_list(dir, &names, ld->cause) != 0)
		goto out;
	while (names[n])
		n++;
	if (!(ld->cfg->dropins = calloc(n + 1, sizeof(*ld->cfg->dropins))))
		goto out;
	if (n && !(ld->dropins = calloc(n, sizeof(*ld->dropins))))
		goto out;
	for (size_t i = 0; i < n; i++) {
		struct dropin *di = &ld->dropins[i];

		config_init(&di->lc);
		ld->n_dropins = i + 1;
		if (asprintf(&di->path, "%s/%s", dir, names[i]) < 0) {
			di->path = NULL;
			goto out;
		}
		if (!(di->include_dir = strdup(dir)) ||
		    strv_push(&ld->cfg->dropins, &n_read, strdup(di->path)) != 0)
			goto out;
		if (read_tree(ld, di->path, di->include_dir, &di->lc, &di->bigints) != 0 ||
		    hs_config_merge(config_root_setting(&ld->lc), config_root_setting(&di->lc),
				    &cb) != 0)
			goto out;
	}
	rc = 0;
out:
	hs_dropin_names_free(names);
	free(dir);
	return rc;
}

/* Reads the main file, then the drop-ins into its tree. */
static int parse(struct loader *ld)
{
	const char *slash = strrchr(ld->path, '/');

	if (slash) {
		ld->include_dir =
		    slash == ld->path ? strdup("/") : strndup(ld->path, (size_t)(slash - ld->path));
		if (!ld->include_dir)
			return -1;
	}
	if (read_tree(ld, ld->path, ld->include_dir, &ld->lc, &ld->bigints) != 0)
		return -1;
	return read_dropins(ld);
}

static int load(struct loader *ld, unsigned flags)
{
	const config_setting_t *root, *s;

	if (parse(ld) != 0)
		return -1;
	root = config_root_setting(&ld->lc);
	if (check_keys(ld, root, root_keys) != 0)
		return -1;
	s = config_setting_get_member(root, "state_dir");
	if (s ? get_path(ld, s, &ld->cfg->state_dir) != 0
	      : !(ld->cfg->state_dir = strdup(DEFAULT_STATE_DIR)))
		return -1;
	if ((s = config_setting_get_member(root, "metrics_file")) &&
	    get_optional_path(ld, s, &ld->cfg->metrics_file) != 0)
		return -1;
	if (load_health(ld, root) != 0 || load_upload(ld, root) != 0 ||
	    load_watches(ld, root) != 0 || load_mirror(ld, root) != 0 || load_log(ld, root) != 0)
		return -1;
	if (flags & HS_CONFIG_NO_KEYS)
		return 0;
	if (load_key(ld, "upload", &ld->cfg->upload.api) != 0)
		return -1;
	if (ld->cfg->mirror.enabled && load_key(ld, "mirror", &ld->cfg->mirror.api) != 0)
		return -1;
	return 0;
}

struct hs_config *hs_config_load(const char *path, char **cause)
{
	return hs_config_load_opts(path, 0, cause);
}

struct hs_config *hs_config_load_opts(const char *path, unsigned flags, char **cause)
{
	struct loader ld = {.path = path, .cause = cause};
	struct hs_config *cfg = NULL;

	*cause = NULL;
	if (!path) {
		*cause = strdup("no configuration file given");
		return NULL;
	}
	config_init(&ld.lc);
	ld.cfg = config_new();
	if (!ld.cfg || !(ld.cfg->path = strdup(path)))
		goto fail;
	if (load(&ld, flags) != 0) {
		one_line(*cause);
		goto fail;
	}
	cfg = ld.cfg;
	ld.cfg = NULL;
fail:
	hs_config_free(ld.cfg);
	hs_bigint_free(&ld.bigints);
	/* The main tree first: its hooks point at origins and drop-ins. */
	config_destroy(&ld.lc);
	for (size_t i = 0; i < ld.n_dropins; i++) {
		config_destroy(&ld.dropins[i].lc);
		hs_bigint_free(&ld.dropins[i].bigints);
		free(ld.dropins[i].path);
		free(ld.dropins[i].include_dir);
	}
	free(ld.dropins);
	while (ld.origins) {
		struct origin *next = ld.origins->next;

		free(ld.origins);
		ld.origins = next;
	}
	free(ld.include_dir);
	return cfg;
}

static void api_free(struct hs_api *api)
{
	free(api->base_url);
	free(api->api_key_file);
	free(api->token_file);
	if (api->secret) {
		hs_key_free(api->secret->value);
		free(api->secret);
	}
	free(api->ca_file);
	free(api->proxy);
}

static void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

struct hs_config *hs_config_free(struct hs_config *cfg)
{
	if (!cfg)
		return NULL;
	free(cfg->path);
	strv_free(cfg->dropins);
	strv_free(cfg->dropin_settings);
	free(cfg->state_dir);
	free(cfg->metrics_file);
	api_free(&cfg->upload.api);
	hs_timetable_free(cfg->upload.bandwidth);
	for (size_t i = 0; i < cfg->n_watches; i++) {
		struct hs_watch *w = &cfg->watches[i];

		free(w->path);
		free(w->remote_prefix);
		strv_free(w->include);
		strv_free(w->exclude);
		free(w->move_dir);
		free(w->not_before_text);
	}
	free(cfg->watches);
	api_free(&cfg->mirror.api);
	free(cfg->mirror.schedule);
	hs_cron_free(cfg->mirror.cron);
	free(cfg->mirror.database);
	free(cfg->mirror.export_path);
	free(cfg);
	return NULL;
}

const char *hs_config_path(const char *arg)
{
	const char *env = getenv("HEALSYNC_CONFIG");

	if (arg)
		return arg;
	if (env && *env)
		return env;
	return HS_DEFAULT_CONFIG;
}
