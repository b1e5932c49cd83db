/*
 * upload_api: the messages of the Upload API (SPEC 1.1), built and checked
 * here so that the state machine in upload.c only sees validated values.
 *
 * Every parser treats the server as untrusted: missing or mistyped fields,
 * absurd numbers, header names or values that could inject a header, and
 * URLs that would send a file in the clear to another host are refused with
 * a one-line *cause. Unknown fields are ignored. All returned strings are
 * allocated and owned by the struct they are in; free with the matching
 * *_clear(). Pure: no I/O.
 */
#ifndef HS_AGENT_UPLOAD_API_H
#define HS_AGENT_UPLOAD_API_H

#include <stddef.h>
#include <stdint.h>

#include "queue/queue.h"

#define HS_MAX_PARTS	     10000
#define HS_MIN_PART_SIZE     (5LL * 1024 * 1024)
#define HS_MAX_PART_SIZE     (5LL * 1024 * 1024 * 1024)
#define HS_PARTS_PER_PRESIGN 100
/* The listing of the parts a session holds: at most HS_MAX_PARTS entries of
 * a part number, a size and an ETag (at most 128 bytes), with generous
 * room for JSON escapes and white space in each. */
#define HS_PART_LIST_ENTRY_MAX	  512
#define HS_PART_LIST_MAX_RESPONSE (HS_MAX_PARTS * HS_PART_LIST_ENTRY_MAX + 64 * 1024)

/* A presigned request: where to PUT and the headers to send with it. */
struct hs_presigned {
	uint32_t part_number; /* 0 for a single upload */
	char *url;
	char **headers;	 /* "Name: value", NULL-terminated */
	char *upload_id; /* single uploads only */
	/* expires_at in Unix ms, as parsed: the server's clock; the uploader
	 * turns it into ours with the answer's Date. -1: none or unreadable. */
	int64_t expires_ms;
};

struct hs_session {
	char *upload_id;
	int64_t part_size;
	uint32_t part_count;
};

struct hs_stored {
	char *file_id;
	int64_t size;
	char sha256[65];
};

/* Request bodies; NULL when out of memory. Caller frees. */
char *hs_api_presign_body(const char *filename, int64_t size, const char *sha256,
			  const char *content_type);
char *hs_api_create_body(const char *filename, int64_t size, const char *sha256,
			 const char *content_type, int64_t part_size);
char *hs_api_parts_body(const uint32_t *numbers, size_t n);
char *hs_api_complete_body(const struct hs_part *parts, size_t n);

/* Response bodies. Return 0, or -1 with *cause. */
int hs_api_parse_presigned(const char *body, struct hs_presigned *ret, char **cause);
int hs_api_parse_session(const char *body, int64_t size, struct hs_session *ret, char **cause);
/* Part URLs for exactly the numbers asked for, in any order. *ret has n. */
int hs_api_parse_part_urls(const char *body, const uint32_t *asked, size_t n,
			   struct hs_presigned **ret, char **cause);
/* Parts the storage holds; *ret malloc'd, ascending, *ret_n may be 0. */
int hs_api_parse_part_list(const char *body, uint32_t part_count, struct hs_part **ret,
			   size_t *ret_n, char **cause);
int hs_api_parse_stored(const char *body, struct hs_stored *ret, char **cause);
/* The "error" type of an error body ("url_expired"), or "" when none or
 * when it is not a word of [a-z0-9_] under 64 bytes. */
void hs_api_error_type(const char *body, char *buf, size_t len);
/* The "message" of an error body for a log line, or "" when none: printable
 * ASCII only, every word that looks like a URL, a query or an address
 * (holds "://", "?", "&", "=" or "@") shown as "[...]", cut to fit. */
void hs_api_error_message(const char *body, char *buf, size_t len);

/* The part size to ask for: the configured one, raised so that a file of
 * size bytes needs at most HS_MAX_PARTS parts. */
int64_t hs_api_part_size_for(int64_t size, int64_t configured);

void hs_presigned_clear(struct hs_presigned *p);
void hs_session_clear(struct hs_session *s);
void hs_stored_clear(struct hs_stored *s);

/* A Content-Type from the file name's extension. */
const char *hs_content_type(const char *filename);

#endif
