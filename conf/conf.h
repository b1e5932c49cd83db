/*
 * conf: loading and validating healsync.conf (libconfig syntax, SPEC 3).
 *
 * hs_config_load() reads the file, checks every setting, applies defaults and
 * turns sizes, durations, rates and the bandwidth timetable into typed values,
 * so nothing downstream parses text again. It also reads the API keys (from
 * $CREDENTIALS_DIRECTORY/<basename of api_key_file> when that variable is set,
 * else from api_key_file itself) and refuses key files others can read.
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

struct hs_api {
	char *base_url;	    /* no trailing slash */
	char *api_key_file; /* as configured */
	char *api_key;	    /* the secret itself; never print it */
	char *ca_file;	    /* NULL: system CAs only */
	char *proxy;	    /* NULL: the *_proxy environment variables */
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
	char *path; /* the file it was read from */
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
/* Accepts NULL; returns NULL. Wipes the keys. */
struct hs_config *hs_config_free(struct hs_config *cfg);

/* Prints the effective configuration in libconfig syntax, keys redacted. */
void hs_config_print(const struct hs_config *cfg, FILE *out);

/* The config file to use: the -c argument, else $HEALSYNC_CONFIG, else the
 * default. Returns a pointer into its arguments or a static string. */
const char *hs_config_path(const char *arg);

/* Whether url is acceptable: https://, or http:// to a loopback host. */
bool hs_url_allowed(const char *url);

#endif
