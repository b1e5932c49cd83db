/*
 * log: the agent's only voice. When stderr is connected to the journal
 * ($JOURNAL_STREAM names it), entries go natively to the journal with
 * structured fields (JOB_ID=, FILE=, HTTP_STATUS=, MESSAGE_ID=, ...);
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
#define HS_MSGID_UPLOAD_DEAD   "8a4c1f0e3b2d4e6f9a7b5c3d1e0f2a4b"
#define HS_MSGID_KEY_REJECTED  "5d3e7a9c1b4f4d2e8c6a0b9f7e5d3c1a"
#define HS_MSGID_MIRROR_FAILED "8b94cbbe52bb417cb621d5f81ffcf2e9"

struct hs_log_field {
	const char *name; /* JOB_ID, FILE, ...; NULL value: left out */
	const char *value;
};

/* Messages below level are dropped (syslog priorities, LOG_ERR..LOG_DEBUG). */
void hs_log_init(int level);
void hs_log_set_level(int level);

void hs_log(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void hs_log_fields(int priority, const struct hs_log_field *fields, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
