/*
 * conf: loading and validating healsync.conf (libconfig syntax, SPEC 3).
 *
 * hs_config_load() reads the file, checks every setting, applies defaults and
 * turns sizes, durations, rates and the bandwidth timetable into typed values,
 * so nothing downstream parses text again. It also reads each API's secret,
 * the API key (auth = "api-key", from api_key_file) or the Bearer token
 * (auth = "bearer", from token_file), from $CREDENTIALS_DIRECTORY/<basename>
 * when that variable is set, else from the file itself, and refuses secret
 * files others can read.
 *
 * Drop-ins: after the main file, every "*.conf" in the folder "conf.d"
 * beside it is read in byte order of the names (dotfiles and other names
 * are ignored: editor backups, .dpkg-old). A drop-in's groups merge into
 * the main file's setting by setting; its "watch" entries are appended to
 * the list; any other setting replaces the one read before it. Each setting
 * keeps the file and line it came from, so errors name the drop-in.
 *
 * Errors are one line, "FILE:LINE: SETTING: what is wrong", returned in an
 * allocated *cause; the caller prints it and exits 78. This module never logs
 * and never exits.
 *
 * The whole struct hs_config, and every string in it, is owned by the config
 * and freed by hs_config_free(). Keys live in memory that is excluded from
 * core dumps and wiped on free.
 */
#ifndef HS_CONF_CONF_H
#define HS_CONF_CONF_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "conf/cron.h"
#include "conf/timetable.h"

#define HS_DEFAULT_CONFIG HS_SYSCONFDIR "/healsync/healsync.conf"

enum hs_after_upload {
	HS_AFTER_KEEP,
	HS_AFTER_DELETE,
	HS_AFTER_MOVE,
};

enum hs_log_level { /* syslog priorities */
		    HS_LOG_ERR = 3,
		    HS_LOG_WARNING = 4,
		    HS_LOG_NOTICE = 5,
		    HS_LOG_INFO = 6,
		    HS_LOG_DEBUG = 7,
};

enum hs_auth {
	HS_AUTH_API_KEY, /* X-API-Key: <key> (the default) */
	HS_AUTH_BEARER,	 /* Authorization: Bearer <token> (a JWT) */
};

/*
 * An API's secret, kept apart from the rest of the (read-only) config so
 * that a 401 can make the holder read the file again (hs_api_reread()) and
 * a rotated token takes effect without a reload. Never print value.
 */
struct hs_secret {
	char *value;	     /* the key or the token */
	unsigned generation; /* new at every read that changed value, unique in
				the process: which secret a request carried */
};

struct hs_api {
	char *base_url; /* no trailing slash */
	enum hs_auth auth;
	char *api_key_file;	  /* as configured; NULL with HS_AUTH_BEARER */
	char *token_file;	  /* as configured; NULL with HS_AUTH_API_KEY */
	struct hs_secret *secret; /* NULL when loaded with HS_CONFIG_NO_KEYS */
	char *ca_file;		  /* NULL: system CAs only */
	char *proxy;		  /* NULL: the *_proxy environment variables */
};

struct hs_watch {
	char *path;	     /* absolute, no trailing slash */
	char *remote_prefix; /* "" or ends with "/" as written */
	bool recursive;
	bool ignore_case; /* include and exclude match REPORT.PDF for *.pdf */
	char **include;	  /* NULL-terminated globs; empty: everything */
	char **exclude;	  /* NULL-terminated globs */
	uint64_t settle_ms;
	uint64_t rescan_ms; /* periodic safety rescan; default 1h */
	enum hs_after_upload after_upload;
	char *move_dir; /* absolute; only for HS_AFTER_MOVE */
	/* What is never sent from this folder (agent/filter.h); 0 or false:
	 * no limit. The first night of a workstation holding years of exports
	 * is why these exist. */
	uint64_t max_age_ms;   /* modified longer ago than this */
	bool has_not_before;   /* not_before is set */
	int64_t not_before;    /* Unix seconds: modified before this */
	char *not_before_text; /* as written, local time; NULL when unset */
	uint64_t min_size;     /* bytes: smaller files */
	uint64_t max_size;     /* bytes: larger files; 0: none */
};

struct hs_config {
	char *path;	/* the main file it was read from */
	char **dropins; /* the drop-ins read after it, in order; NULL-terminated */
	/* What the drop-ins set, one "SETTING  FILE:LINE" each, in the order
	 * they were merged; NULL-terminated (check-config shows it). */
	char **dropin_settings;
	char *state_dir;

	struct {
		struct hs_api api;
		uint64_t multipart_threshold;	/* bytes; default 64 MiB */
		uint64_t part_size;		/* bytes; default 16 MiB */
		unsigned parallel;		/* default 4 */
		struct hs_timetable *bandwidth; /* default "off" */
		unsigned max_attempts;		/* default 10 */
		uint64_t connect_timeout_ms;	/* default 30 s */
		uint64_t stall_timeout_ms;	/* no progress this long ends a transfer; 60 s */
	} upload;

	struct hs_watch *watches;
	size_t n_watches;

	struct {
		bool enabled; /* the mirror section is present */
		struct hs_api api;
		char *schedule;	      /* 5-field cron; default "0 2 * * *" */
		struct hs_cron *cron; /* schedule, parsed */
		uint64_t jitter_ms;
		unsigned page_size; /* 1..100; default 100 */
		bool fetch_details;
		char *database;	   /* default state_dir/mirror.db */
		char *export_path; /* NULL: no export */
	} mirror;

	/* The health verdict's thresholds (agent/health.h); 0: rule off. */
	struct {
		uint64_t stalled_after_ms;	 /* default 24 h */
		uint64_t queued_age_warning_ms;	 /* default 6 h */
		uint64_t queued_age_critical_ms; /* default off */
		uint64_t mirror_grace_ms;	 /* default 2 h */
		uint64_t min_free;		 /* bytes for state_dir; default 1 GiB */
	} health;
	char *metrics_file; /* Prometheus textfile; NULL: none */

	enum hs_log_level log_level;
};

/* What hs_config_load_opts() leaves out. */
enum {
	/* No API key is read (api_key is NULL): for commands that only read
	 * the queue and the status, run by users who may not read the keys. */
	HS_CONFIG_NO_KEYS = 1 << 0,
};

/* Loads path. Returns NULL and sets *cause on any error. Reads key files. */
struct hs_config *hs_config_load(const char *path, char **cause);
/* The same, with HS_CONFIG_* flags. */
struct hs_config *hs_config_load_opts(const char *path, unsigned flags, char **cause);
/* Accepts NULL; returns NULL. Wipes the secrets. */
struct hs_config *hs_config_free(struct hs_config *cfg);

/* Prints the effective configuration in libconfig syntax, keys redacted. */
void hs_config_print(const struct hs_config *cfg, FILE *out);

/* The config file to use: the -c argument, else $HEALSYNC_CONFIG, else the
 * default. Returns a pointer into its arguments or a static string. */
const char *hs_config_path(const char *arg);

/* The file the API's secret is read from: token_file or api_key_file. */
const char *hs_api_secret_file(const struct hs_api *api);

/*
 * Reads the API's secret file again (a 401: the token may have been
 * rotated). When it now holds another secret, api->secret takes it and
 * *ret_changed is true. Returns 0, or -1 with an allocated *cause naming the
 * file and the problem (the old secret stays). Reads a small file; blocks
 * no longer than that.
 */
int hs_api_reread(const struct hs_api *api, bool *ret_changed, char **cause);

/* The folder of drop-ins for the main file path: DIR/conf.d. Caller frees;
 * NULL when out of memory. */
char *hs_config_dropin_dir(const char *path);

/* Whether a drop-in folder entry is read: NAME.conf, not a dotfile. */
bool hs_config_is_dropin_name(const char *name);

/* Whether url is acceptable: https://, or http:// to a loopback host. */
bool hs_url_allowed(const char *url);

#endif
