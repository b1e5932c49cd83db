/*
 * log: the agent's only voice. When stderr is connected to the journal
 * ($JOURNAL_STREAM names it), entries go natively to the journal with
 * structured fields (HEALSYNC_JOB=, FILE=, HTTP_STATUS=, MESSAGE_ID=, ...);
 * otherwise each is one "<N>message" line on stderr, which systemd and
 * humans both read.
 *
 * Callers never pass secrets, presigned URLs' query strings or record
 * contents: messages name jobs, files, statuses and counts.
 */
#ifndef HS_AGENT_LOG_H
#define HS_AGENT_LOG_H

#include <stddef.h>
#include <syslog.h>

/* MESSAGE_IDs a sysadmin can alert on (journalctl MESSAGE_ID=...). */
#define HS_MSGID_UPLOAD_DEAD   "1dc8fe99af42433bbb391da7f8b95c9a"
#define HS_MSGID_KEY_REJECTED  "18c1243cd7b3438883807d0f5604ee94"
#define HS_MSGID_MIRROR_FAILED "8b94cbbe52bb417cb621d5f81ffcf2e9"
#define HS_MSGID_OUTAGE_BEGAN  "5b0e7c1f3a9d4e2c8f61a7b4d2c90e13"
#define HS_MSGID_OUTAGE_ENDED  "c3f28a6d9e1b47f0a5d6e8b21c7f4a90"
/* The health verdict changed (agent/health.h), one ID per new state. */
#define HS_MSGID_HEALTH_OK	 "213e45aae21b44cb926ed2db2f76b12e"
#define HS_MSGID_HEALTH_WARNING	 "e638aaf69765459280b1c78676754473"
#define HS_MSGID_HEALTH_CRITICAL "89b3f55fd1344e758dddc610a821b432"
/* An operator's pause, resume, cancel or purge (HEALSYNC_USER= names who). */
#define HS_MSGID_OPERATOR "7e2d9a41c5b84f3e9a06d1f2b8c7e315"

struct hs_log_field {
	const char *name; /* HEALSYNC_JOB, FILE, ...; NULL value: left out */
	const char *value;
};

/* Messages below level are dropped (syslog priorities, LOG_ERR..LOG_DEBUG). */
void hs_log_init(int level);
void hs_log_set_level(int level);

void hs_log(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void hs_log_fields(int priority, const struct hs_log_field *fields, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
