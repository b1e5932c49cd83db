/*
 * verdict: what an answer to one of the uploader's requests means for the
 * file, decided from a table: the HTTP status, the error code the body
 * names, and who answered (the Upload API, which speaks JSON, or the
 * storage behind presigned URLs, which speaks S3 XML, an HTML page from a
 * proxy, or nothing).
 *
 * Two rules hold everywhere:
 *  - only an answer that arrived whole and names its error is a verdict on
 *    the file; no answer, a cut or missing body, or a code the table does
 *    not know is transient (bounded by the caller's retries), so no
 *    network fault, proxy page or new storage code kills a file
 *  - a permanent verdict comes only from a closed list
 *
 * Pure: no I/O, no state.
 */
#ifndef HS_AGENT_VERDICT_H
#define HS_AGENT_VERDICT_H

#include <stdbool.h>
#include <stddef.h>

enum hs_verdict {
	HS_V_OK,
	HS_V_RETRY,   /* transient: again after a backoff */
	HS_V_URL,     /* the presigned URL is expired, used or refused: a fresh one */
	HS_V_SESSION, /* the upload session is gone: start it over */
	HS_V_CHANGED, /* the bytes are not what was hashed: read the file again */
	HS_V_AUTH,    /* 401 from the API: the key or token was refused */
	HS_V_DEAD,    /* permanent for this file */
	HS_V_REFUSED, /* TLS or the proxy refused: configuration, not this file */
};

enum hs_dialect {
	HS_DIALECT_API,	    /* the Upload API: JSON error bodies with a type */
	HS_DIALECT_STORAGE, /* presigned URLs: judged by status and S3 code */
};

struct hs_verdict_in {
	enum hs_dialect dialect;
	bool answered;	   /* an HTTP answer arrived (no transport error) */
	bool refused;	   /* with !answered: TLS or the proxy refused */
	bool body_changed; /* the file changed while it was sent */
	long status;
	const char *body;  /* the answer's body; NULL when none */
	const char *error; /* the transport's error text, for why */
};

/* The verdict, and in why a one-line cause for the log: the status, the
 * error code and the message, never a URL, a query or an echoed
 * signature. */
enum hs_verdict hs_verdict_of(const struct hs_verdict_in *in, char *why, size_t len);

/* The tables themselves; code "" when the body named none. */
enum hs_verdict hs_verdict_api(long status, const char *type);
enum hs_verdict hs_verdict_storage(long status, const char *code);

const char *hs_verdict_name(enum hs_verdict v);

/*
 * Why the uploader tries something again, a closed set for the metric
 * healsync_upload_retries_total{cause}: a sysadmin tells a flaky server
 * from a slow line or a rate limit at a glance.
 *
 *   server_error     an answer that asks for another try: 5xx, 408, an
 *                    answer that could not be read
 *   no_answer        no HTTP answer: refused or cut connection, connect
 *                    timeout, a request that could not be sent
 *   stalled          a connected request on which no byte moved for
 *                    upload.stall_timeout
 *   rate_limited     429
 *   url_expired      a presigned URL expired, used or refused: a fresh one
 *   session_restart  the upload session is gone: a new one
 *   file_changed     the file changed while it was sent: read it again
 */
enum hs_retry_cause {
	HS_RETRY_SERVER_ERROR,
	HS_RETRY_NO_ANSWER,
	HS_RETRY_STALLED,
	HS_RETRY_RATE_LIMITED,
	HS_RETRY_URL_EXPIRED,
	HS_RETRY_SESSION_RESTART,
	HS_RETRY_FILE_CHANGED,
	HS_RETRY_NCAUSES
};

/* The cause of a transient failure judged HS_V_RETRY (or a request that
 * could not start, status -1): by its status, and for no answer at all by
 * whether a connected request stalled. */
enum hs_retry_cause hs_retry_cause_of(long status, bool stalled);
/* "server_error", ...; "?" outside the set. */
const char *hs_retry_cause_name(enum hs_retry_cause c);

/* The text of <tag>...</tag> in an S3 XML error body, printable ASCII
 * only, cut to fit; "" when absent. */
void hs_xml_element(const char *body, const char *tag, char *buf, size_t len);

#endif
