/*
 * mirror_record: Records API messages, checked (see mirror_record.h).
 */
#include "config.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/cause.h"
#include "agent/mirror_record.h"

bool hs_patient_id_valid(const char *id, size_t len)
{
	return id && len > 0 && len <= HS_PATIENT_ID_MAX && memchr(id, '\0', len) == NULL;
}

/* The fields with a known meaning, and the JSON types each may have (null is
 * always allowed but for the id). */
static const struct {
	const char *name;
	json_type type;
} known_fields[] = {
    {"name", JSON_STRING},  {"created_at", JSON_STRING}, {"pronouns", JSON_STRING},
    {"notes", JSON_STRING}, {"consent", JSON_TRUE},
};

static bool type_ok(const json_t *v, json_type want)
{
	if (json_is_null(v))
		return true;
	if (want == JSON_TRUE)
		return json_is_boolean(v);
	return json_typeof(v) == want;
}

int hs_patient_check(const json_t *rec, char **cause)
{
	const json_t *id;

	if (!json_is_object(rec))
		return hs_cause(cause, "%s", "not an object");
	id = json_object_get(rec, "id");
	if (!id)
		return hs_cause(cause, "%s", "\"id\" is missing");
	if (!json_is_string(id))
		return hs_cause(cause, "%s", "\"id\" is not a string");
	if (!hs_patient_id_valid(json_string_value(id), json_string_length(id)))
		return hs_cause(cause, "\"id\" is empty or longer than %d bytes",
				HS_PATIENT_ID_MAX);
	for (size_t i = 0; i < sizeof(known_fields) / sizeof(known_fields[0]); i++) {
		const json_t *v = json_object_get(rec, known_fields[i].name);
		if (v && !type_ok(v, known_fields[i].type))
			return hs_cause(cause, "\"%s\" is not a %s", known_fields[i].name,
					known_fields[i].type == JSON_TRUE ? "boolean" : "string");
	}
	return 0;
}

/* Never quotes the body: jansson's "near '...'" could be record contents. */
static json_t *load(const char *body, char **cause)
{
	json_error_t err;
	json_t *root;

	if (!body) {
		hs_cause(cause, "%s", "empty answer");
		return NULL;
	}
	root = json_loads(body, JSON_REJECT_DUPLICATES, &err);
	if (!root)
		hs_cause(cause, "not valid JSON (line %d, column %d)", err.line, err.column);
	return root;
}

int hs_patient_page_parse(const char *body, struct hs_patient_page *ret, char **cause)
{
	json_t *root = load(body, cause), *data, *meta, *total, *rec;
	char *why = NULL;
	size_t i;

	memset(ret, 0, sizeof(*ret));
	if (!root)
		return -1;
	data = json_object_get(root, "data");
	meta = json_object_get(root, "meta");
	total = json_object_get(meta, "total_pages");
	if (!json_is_array(data)) {
		hs_cause(cause, "%s", "\"data\" is missing or not a list");
		goto fail;
	}
	if (!json_is_object(meta)) {
		hs_cause(cause, "%s", "\"meta\" is missing or not an object");
		goto fail;
	}
	if (!json_is_integer(total) || json_integer_value(total) < 0 ||
	    json_integer_value(total) > HS_PATIENT_MAX_PAGES) {
		hs_cause(cause, "meta.total_pages is missing or not a whole number from 0 to %d",
			 HS_PATIENT_MAX_PAGES);
		goto fail;
	}
	json_array_foreach(data, i, rec)
	{
		if (hs_patient_check(rec, &why) != 0) {
			hs_cause(cause, "record %zu: %s", i + 1, why ? why : "out of memory");
			free(why);
			goto fail;
		}
	}
	ret->root = root;
	ret->data = data;
	ret->total_pages = json_integer_value(total);
	return 0;
fail:
	json_decref(root);
	return -1;
}

void hs_patient_page_clear(struct hs_patient_page *p)
{
	json_decref(p->root);
	memset(p, 0, sizeof(*p));
}

json_t *hs_patient_detail_parse(const char *body, const char *want_id, char **cause)
{
	json_t *root = load(body, cause), *rec;
	char *why = NULL;

	if (!root)
		return NULL;
	rec = json_object_get(root, "data");
	if (!rec) {
		hs_cause(cause, "%s", "\"data\" is missing");
		goto fail;
	}
	if (hs_patient_check(rec, &why) != 0) {
		hs_cause(cause, "record: %s", why ? why : "out of memory");
		free(why);
		goto fail;
	}
	if (strcmp(json_string_value(json_object_get(rec, "id")), want_id) != 0) {
		hs_cause(cause, "%s", "the record's id is not the one asked for");
		goto fail;
	}
	json_incref(rec);
	json_decref(root);
	return rec;
fail:
	json_decref(root);
	return NULL;
}

json_t *hs_patient_merge(const char *base_json, const json_t *update, char **cause)
{
	json_t *out;
	json_error_t err;

	if (base_json) {
		out = json_loads(base_json, JSON_REJECT_DUPLICATES, &err);
		if (!json_is_object(out)) {
			json_decref(out);
			hs_cause(cause, "%s", "a stored record is not a JSON object");
			return NULL;
		}
	} else if (!(out = json_object())) {
		hs_cause(cause, "%s", "out of memory");
		return NULL;
	}
	/* json_object_update keeps an existing key where it is and appends
	 * new ones, so the text is stable from run to run. The update is
	 * deep-copied: it may be a borrowed member of a page. */
	json_t *copy = json_deep_copy(update);
	if (!copy || json_object_update(out, copy) != 0) {
		json_decref(copy);
		json_decref(out);
		hs_cause(cause, "%s", "out of memory");
		return NULL;
	}
	json_decref(copy);
	return out;
}

static const char *string_or_null(const json_t *rec, const char *key)
{
	return json_string_value(json_object_get(rec, key));
}

void hs_patient_columns(const json_t *rec, struct hs_patient_columns *ret)
{
	const json_t *consent = json_object_get(rec, "consent");

	ret->id = string_or_null(rec, "id");
	ret->name = string_or_null(rec, "name");
	ret->created_at = string_or_null(rec, "created_at");
	ret->pronouns = string_or_null(rec, "pronouns");
	ret->notes = string_or_null(rec, "notes");
	ret->consent = json_is_boolean(consent) ? json_is_true(consent) : -1;
}

char *hs_patient_dump(const json_t *rec)
{
	return json_dumps(rec, JSON_COMPACT);
}

char *hs_patients_url(const char *base_url, int64_t page, unsigned limit)
{
	char *url;

	if (asprintf(&url, "%s/patients?page=%lld&limit=%u", base_url, (long long)page, limit) < 0)
		return NULL;
	return url;
}

char *hs_patient_url(const char *base_url, const char *id)
{
	size_t len = id ? strlen(id) : 0;
	char *escaped, *url;
	bool dots;

	if (!hs_patient_id_valid(id, len))
		return NULL;
	/* "." and ".." would be dot segments, which URL normalization
	 * removes: spelled %2E they are just an id. */
	dots = strspn(id, ".") == len;
	if (dots) {
		if (!(escaped = malloc(3 * len + 1)))
			return NULL;
		for (size_t i = 0; i < len; i++)
			memcpy(escaped + 3 * i, "%2E", 4);
	} else if (!(escaped = curl_easy_escape(NULL, id, (int)len))) {
		/* The handle argument is unused by libcurl (7.82 and later). */
		return NULL;
	}
	if (asprintf(&url, "%s/patients/%s", base_url, escaped) < 0)
		url = NULL;
	if (dots)
		free(escaped);
	else
		curl_free(escaped);
	return url;
}
