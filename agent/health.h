/*
 * health: the one verdict a monitor reads (SPEC 5): OK, WARNING or
 * CRITICAL, with a coded reason for everything that is wrong and the time
 * each began. The daemon leads STATUS= with it, writes it to status.json
 * and the metrics file, and logs one line with a MESSAGE_ID when it
 * changes; `healsync status` and `healsync check` read it back and weigh
 * it again with the time they run at.
 *
 * An example. At 10:00 two jobs are dead and the upload API has been
 * unavailable since 09:40:
 *
 *   state CRITICAL since 09:52 (the dead jobs made it critical then)
 *   reasons  jobs_dead           CRITICAL since 09:52  "2 jobs dead"
 *            upload_unavailable  WARNING  since 09:40  "upload API unavailable"
 *
 * The rules, with the thresholds of the health section (0: the rule is off):
 *
 *   not_running          CRITICAL  no daemon (only a reader says this)
 *   jobs_dead            CRITICAL  dead jobs: files that will not be sent
 *   upload_key_rejected  CRITICAL  the upload API refuses the key or token
 *   upload_unavailable   WARNING   the upload API (or its storage, or the
 *                                  TLS or proxy on the way) does not answer
 *   stalled              CRITICAL  work was waiting and nothing was stored
 *                                  for stalled_after
 *   queued_too_long      WARNING   the oldest waiting file was queued
 *                                  queued_age_warning ago; CRITICAL past
 *                                  queued_age_critical
 *   mirror_failed        WARNING   the mirror's last run failed
 *   mirror_late          WARNING   no success since the scheduled time
 *                                  that came after the last one, plus
 *                                  mirror_grace
 *   watch_missing        WARNING   a watch folder does not exist
 *   disk_low             WARNING   the state folder's file system has less
 *                                  than min_free left; CRITICAL below a
 *                                  quarter of it
 *   token_expiring       WARNING   a Bearer token in use expires within a
 *                                  day (HS_TOKEN_WARN_S); CRITICAL once its
 *                                  exp has passed, before any 401 says so
 *
 * The verdict is the worst reason's state. A reason's since is the time the
 * caller knows it began (the outage's start), else the time it was first
 * seen in the previous verdict, else now; the verdict's since is the
 * previous one's while the state stays the same.
 *
 * Pure: the caller passes every fact and the time. Texts name counts and
 * durations, never files or records.
 */
#ifndef HS_AGENT_HEALTH_H
#define HS_AGENT_HEALTH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum hs_health_state {
	HS_HEALTH_OK,
	HS_HEALTH_WARNING,
	HS_HEALTH_CRITICAL,
	HS_HEALTH_UNKNOWN, /* a reader that cannot tell; never a daemon's verdict */
};

enum hs_health_code {
	HS_HEALTH_NOT_RUNNING,
	HS_HEALTH_JOBS_DEAD,
	HS_HEALTH_UPLOAD_KEY_REJECTED,
	HS_HEALTH_UPLOAD_UNAVAILABLE,
	HS_HEALTH_STALLED,
	HS_HEALTH_QUEUED_TOO_LONG,
	HS_HEALTH_MIRROR_FAILED,
	HS_HEALTH_MIRROR_LATE,
	HS_HEALTH_WATCH_MISSING,
	HS_HEALTH_DISK_LOW,
	HS_HEALTH_TOKEN_EXPIRING,
	HS_HEALTH_NCODES
};

/* All times Unix ms, all durations ms; 0 turns a rule off. */
struct hs_health_limits {
	int64_t stalled_after;
	int64_t queued_age_warning;
	int64_t queued_age_critical;
	int64_t mirror_grace;
	int64_t min_free; /* bytes */
};

struct hs_health_facts {
	bool running;			  /* false: only not_running is said */
	int64_t dead;			  /* jobs */
	int64_t waiting;		  /* jobs queued, active or failed */
	int64_t oldest_waiting_at;	  /* created_at of the oldest; 0: none */
	int64_t last_stored_at;		  /* the server last confirmed a file; 0: never */
	bool upload_key_rejected;	  /* */
	bool upload_unavailable;	  /* */
	int64_t upload_unavailable_since; /* 0: not known */
	bool mirror_enabled;		  /* */
	bool mirror_failed;		  /* the last finished run failed */
	int64_t mirror_failed_at;	  /* when it ended; 0: not known */
	int64_t mirror_due_at;		  /* the first scheduled time after the last
					     success; 0: none */
	size_t watch_missing;		  /* folders */
	int64_t disk_free;		  /* bytes; < 0: not known */
	int64_t token_expires_at;	  /* the soonest exp of a Bearer token in
					     use, Unix ms; 0: none known */
	char token_api[8];		  /* whose: "upload", "mirror" */
};

struct hs_health_reason {
	enum hs_health_code code;
	enum hs_health_state state;
	int64_t since;
	char text[96];
};

struct hs_health {
	enum hs_health_state state;
	int64_t since;
	size_t n; /* reasons, in the order of enum hs_health_code */
	struct hs_health_reason reasons[HS_HEALTH_NCODES];
};

struct hs_config;
/* The thresholds of cfg's health section. */
struct hs_health_limits hs_health_limits_of(const struct hs_config *cfg);

/* The verdict at now. prev may be NULL (the first one). */
void hs_health_eval(const struct hs_health_facts *f, const struct hs_health_limits *lim,
		    const struct hs_health *prev, int64_t now, struct hs_health *ret);

/* Whether a and b say the same: state and the set of reason codes (a
 * change is one journal line). */
bool hs_health_same(const struct hs_health *a, const struct hs_health *b);

/* "reason text; reason text" (worst first), or "all well"; truncated to len. */
const char *hs_health_summary(const struct hs_health *h, char *buf, size_t len);

/* "OK", "WARNING", "CRITICAL", "UNKNOWN". */
const char *hs_health_state_name(enum hs_health_state s);
/* The verdict as status.json and `status --json` give it: state, since and
 * reasons[] with code, state, since and text. New reference; NULL when
 * memory ran out. */
json_t *hs_health_json(const struct hs_health *h);
/* -1 for an unknown name. */
int hs_health_state_parse(const char *name);
/* "jobs_dead", ... */
const char *hs_health_code_name(enum hs_health_code c);
int hs_health_code_parse(const char *name);

#endif
