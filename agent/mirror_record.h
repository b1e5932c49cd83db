/*
 * mirror_record: the messages of the Records API (SPEC 1.2), checked before
 * anything reaches the mirror database.
 *
 * The server is not trusted. A list page must be {"data": [records],
 * "meta": {"total_pages": N}}, a detail answer {"data": record}. A record is
 * an object whose "id" is a non-empty string of at most HS_PATIENT_ID_MAX
 * bytes, kept byte for byte (never parsed as a number); "name",
 * "created_at", "pronouns" and "notes" are strings or null, "consent" a
 * boolean or null, each when present. Anything else (wrong types, missing
 * id, duplicate keys, invalid JSON) is refused with a one-line *cause that
 * names the place (record 17, meta.total_pages) and never quotes record
 * contents, so causes may be logged. Unknown fields are kept: a record's
 * raw JSON is what gets stored.
 *
 * Records are jansson objects. The caller owns what a function returns and
 * frees it (json_decref, free, hs_patient_page_clear). Pure: no I/O.
 */
#ifndef HS_AGENT_MIRROR_RECORD_H
#define HS_AGENT_MIRROR_RECORD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HS_PATIENT_ID_MAX    256     /* bytes; longer ids are refused */
#define HS_PATIENT_MAX_PAGES 1000000 /* total_pages above this is hostile */

struct hs_patient_page {
	json_t *root;
	json_t *data; /* array of checked records, borrowed from root */
	int64_t total_pages;
};

/* Columns of a record; the strings point into it. NULL: absent or null. */
struct hs_patient_columns {
	const char *id;
	const char *name;
	const char *created_at;
	const char *pronouns;
	const char *notes;
	int consent; /* 1, 0, or -1 when absent or null */
};

/* Whether id (len bytes) is acceptable: non-empty, at most
 * HS_PATIENT_ID_MAX bytes, no NUL. */
bool hs_patient_id_valid(const char *id, size_t len);

/* Checks one record. Returns 0, or -1 with *cause ("\"name\" is not a
 * string"). */
int hs_patient_check(const json_t *rec, char **cause);

/* Parses and checks a list page. Returns 0 with *ret (clear it), or -1
 * with *cause. */
int hs_patient_page_parse(const char *body, struct hs_patient_page *ret, char **cause);
void hs_patient_page_clear(struct hs_patient_page *p);

/* Parses and checks a detail answer, whose id must be want_id. Returns the
 * record (a new reference) or NULL with *cause. */
json_t *hs_patient_detail_parse(const char *body, const char *want_id, char **cause);

/* A new object: base_json (a stored record's raw JSON, or NULL for none)
 * with every field of update set on it. Keys keep their first position, so
 * merging the same fields again gives the same text. NULL with *cause when
 * base_json is not an object or memory runs out. */
json_t *hs_patient_merge(const char *base_json, const json_t *update, char **cause);

void hs_patient_columns(const json_t *rec, struct hs_patient_columns *ret);

/* The compact JSON text of rec, UTF-8 as is. Caller frees; NULL when out
 * of memory. */
char *hs_patient_dump(const json_t *rec);

/* base_url + "/patients?page=N&limit=L", and base_url + "/patients/" + the
 * percent-encoded id (every byte but A-Z a-z 0-9 - . _ ~ is encoded, and
 * the dots of an id made only of dots, so an id cannot walk the path or add
 * a query). Caller frees; NULL when out of memory or the id is not valid. */
char *hs_patients_url(const char *base_url, int64_t page, unsigned limit);
char *hs_patient_url(const char *base_url, const char *id);

#endif
