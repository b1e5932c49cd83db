/*
 * verdict: the answer tables (see verdict.h).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "agent/upload_api.h"
#include "agent/verdict.h"

static bool in_list(const char *code, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(code, *list) == 0)
			return true;
	return false;
}

/* S3 codes that say the signature or its time was refused: the URL's
 * fault (or the clock's, which a fresh URL signed now mends). */
static const char *const url_codes[] = {
    "AccessDenied",
    "AccessDeniedException",
    "AuthFailure",
    "ExpiredToken",
    "InvalidAccessKeyId",
    "InvalidSignatureException",
    "InvalidToken",
    "RequestExpired",
    "RequestInTheFuture",
    "RequestTimeTooSkewed",
    "SignatureDoesNotMatch",
    "TemporaryRedirect",
    "PermanentRedirect",
    "Redirect",
    NULL,
};

/* The bytes did not match what the URL was signed for. */
static const char *const changed_codes[] = {
    "BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch", "bad_digest", NULL,
};

/* The session the part belongs to is gone. */
static const char *const session_codes[] = {
    "NoSuchUpload",
    "upload_not_found",
    NULL,
};

/* The closed list of permanent answers: no fresh URL, session or retry
 * can make the storage take this file as it is. */
static const char *const dead_codes[] = {
    "EntityTooLarge",	   "EntityTooSmall",	"KeyTooLongError",   "MetadataTooLarge",
    "InvalidStorageClass", "InvalidObjectName", "InvalidBucketName", NULL,
};

enum hs_verdict hs_verdict_storage(long status, const char *code)
{
	if (status >= 200 && status < 300)
		return HS_V_OK;
	/* By code first: a code means the same under whatever status a
	 * store or a proxy put it. */
	if (code[0]) {
		if (in_list(code, changed_codes))
			return HS_V_CHANGED;
		if (in_list(code, session_codes))
			return HS_V_SESSION;
		if (in_list(code, url_codes))
			return HS_V_URL;
		if (in_list(code, dead_codes))
			return HS_V_DEAD;
	}
	/* The signature binds the host: a redirect is never followed. */
	if (status >= 300 && status < 400)
		return HS_V_URL;
	switch (status) {
	case 401:
	case 403:
		return HS_V_URL;
	case 404:
		return HS_V_SESSION;
	default:
		/* 5xx, 408, 429, throttling and timeout codes, and whatever
		 * the table does not know. */
		return HS_V_RETRY;
	}
}

enum hs_verdict hs_verdict_api(long status, const char *type)
{
	if (status >= 200 && status < 300)
		return HS_V_OK;
	if (status == 401)
		return HS_V_AUTH;
	if (status >= 500 || status == 408 || status == 425 || status == 429)
		return HS_V_RETRY;
	/* Without its error type an answer was cut or came from something
	 * on the way, not from the API: no verdict on the file. */
	if (!type[0])
		return HS_V_RETRY;
	if (strcmp(type, "url_expired") == 0 || strcmp(type, "url_used") == 0)
		return HS_V_URL;
	if (strcmp(type, "upload_not_found") == 0)
		return HS_V_SESSION;
	if (strcmp(type, "checksum_mismatch") == 0 || strcmp(type, "bad_digest") == 0)
		return HS_V_CHANGED;
	switch (status) {
	case 400: /* validation: permanent for that request */
	case 403: /* scope */
	case 404:
	case 413:
		return HS_V_DEAD;
	default:
		return HS_V_RETRY;
	}
}

void hs_xml_element(const char *body, const char *tag, char *buf, size_t len)
{
	char open[32];
	const char *start, *end;
	size_t n = 0;

	buf[0] = '\0';
	snprintf(open, sizeof(open), "<%s>", tag);
	if (!body || !(start = strstr(body, open)))
		return;
	start += strlen(open);
	if (!(end = strchr(start, '<')))
		return;
	for (const char *p = start; p < end && n + 1 < len; p++)
		buf[n++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
	buf[n] = '\0';
}

enum hs_verdict hs_verdict_of(const struct hs_verdict_in *in, char *why, size_t len)
{
	char code[64], msg[256];

	if (in->body_changed) {
		snprintf(why, len, "%s", in->error ? in->error : "the file changed while sent");
		return HS_V_CHANGED;
	}
	if (!in->answered) {
		snprintf(why, len, "%s", in->error ? in->error : "no answer");
		return in->refused ? HS_V_REFUSED : HS_V_RETRY;
	}
	if (in->status >= 200 && in->status < 300) {
		snprintf(why, len, "HTTP %ld", in->status);
		return HS_V_OK;
	}
	/* Only Code and Message of an S3 error are read: other elements
	 * (StringToSign, SignatureProvided) echo the URL's secrets. */
	code[0] = msg[0] = '\0';
	if (in->dialect == HS_DIALECT_STORAGE) {
		hs_xml_element(in->body, "Code", code, sizeof(code));
		if (code[0])
			hs_xml_element(in->body, "Message", msg, sizeof(msg));
	}
	if (!code[0]) {
		hs_api_error_type(in->body, code, sizeof(code));
		hs_api_error_message(in->body, msg, sizeof(msg));
	}
	snprintf(why, len, "HTTP %ld%s%s%s%s", in->status, code[0] ? " " : "", code,
		 msg[0] ? ": " : "", msg);
	return in->dialect == HS_DIALECT_STORAGE ? hs_verdict_storage(in->status, code)
						 : hs_verdict_api(in->status, code);
}

const char *hs_verdict_name(enum hs_verdict v)
{
	static const char *const names[] = {
	    [HS_V_OK] = "ok",		[HS_V_RETRY] = "retry",	    [HS_V_URL] = "url",
	    [HS_V_SESSION] = "session", [HS_V_CHANGED] = "changed", [HS_V_AUTH] = "auth",
	    [HS_V_DEAD] = "dead",	[HS_V_REFUSED] = "refused",
	};
	return (unsigned)v < sizeof(names) / sizeof(names[0]) ? names[v] : "?";
}

enum hs_retry_cause hs_retry_cause_of(long status, bool stalled)
{
	if (status == 429)
		return HS_RETRY_RATE_LIMITED;
	if (status > 0)
		return HS_RETRY_SERVER_ERROR;
	/* -1: the request never left, whatever an earlier one did. */
	return status == 0 && stalled ? HS_RETRY_STALLED : HS_RETRY_NO_ANSWER;
}

const char *hs_retry_cause_name(enum hs_retry_cause c)
{
	static const char *const names[] = {
	    [HS_RETRY_SERVER_ERROR] = "server_error",
	    [HS_RETRY_NO_ANSWER] = "no_answer",
	    [HS_RETRY_STALLED] = "stalled",
	    [HS_RETRY_RATE_LIMITED] = "rate_limited",
	    [HS_RETRY_URL_EXPIRED] = "url_expired",
	    [HS_RETRY_SESSION_RESTART] = "session_restart",
	    [HS_RETRY_FILE_CHANGED] = "file_changed",
	};
	return (unsigned)c < HS_RETRY_NCAUSES ? names[c] : "?";
}
