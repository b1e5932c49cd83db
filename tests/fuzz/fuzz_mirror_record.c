/*
 * The Records API answers (agent/mirror_record.c). The input is a list page,
 * or, when its first line is an id and the rest a body, a detail answer.
 * For every record a page accepts: its dump, sent back as a detail answer,
 * gives an equal record; merging it into its own dump changes no byte; its
 * columns are its fields; and its URL stays one path segment below
 * /patients that decodes to the id.
 */
#include "config.h"

#include <curl/curl.h>
#include <jansson.h>

#include "agent/mirror_record.h"
#include "tests/fuzz/fuzz.h"

#define BASE "https://records.example/ext-api/v1"

static void check_url(const char *id)
{
	char *url = hs_patient_url(BASE, id), *seg, *back;
	int len = 0;

	FUZZ_ASSERT(url != NULL, "no URL for a valid id");
	FUZZ_ASSERT(strncmp(url, BASE "/patients/", strlen(BASE "/patients/")) == 0,
		    "URL \"%s\" not below /patients/", url);
	seg = url + strlen(BASE "/patients/");
	FUZZ_ASSERT(seg[strcspn(seg, "/?#\\ \"<>")] == '\0' && *seg,
		    "URL \"%s\" is not one plain path segment", url);
	FUZZ_ASSERT(strcmp(seg, ".") != 0 && strcmp(seg, "..") != 0, "URL \"%s\" is a dot segment",
		    url);
	back = curl_easy_unescape(NULL, seg, 0, &len);
	FUZZ_ASSERT(back && (size_t)len == strlen(id) && memcmp(back, id, (size_t)len) == 0,
		    "URL segment \"%s\" does not decode to the id", seg);
	curl_free(back);
	free(url);
}

static void check_record(const json_t *rec)
{
	struct hs_patient_columns col;
	char *dump = hs_patient_dump(rec), *body, *cause = NULL, *again;
	json_t *detail, *merged;

	FUZZ_ASSERT(dump != NULL, "a checked record does not dump");
	hs_patient_columns(rec, &col);
	FUZZ_ASSERT(col.id && strcmp(col.id, json_string_value(json_object_get(rec, "id"))) == 0,
		    "the id column is not the id");
	FUZZ_ASSERT(col.consent >= -1 && col.consent <= 1, "consent %d", col.consent);

	if (asprintf(&body, "{\"data\":%s}", dump) < 0)
		abort();
	detail = hs_patient_detail_parse(body, col.id, &cause);
	FUZZ_ASSERT(detail != NULL, "a record's own dump refused as its detail: %s",
		    cause ? cause : "out of memory");
	FUZZ_ASSERT(json_equal(detail, (json_t *)rec), "the detail of a dump differs: %s", dump);
	json_decref(detail);
	free(body);

	merged = hs_patient_merge(dump, rec, &cause);
	FUZZ_ASSERT(merged != NULL, "merging a record into its dump: %s",
		    cause ? cause : "out of memory");
	again = hs_patient_dump(merged);
	FUZZ_ASSERT(again && strcmp(again, dump) == 0, "merge changed %s into %s", dump,
		    again ? again : "(null)");
	free(again);
	json_decref(merged);
	free(dump);
	check_url(col.id);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_string(data, size), *cause = NULL, *nl;
	struct hs_patient_page page;
	json_t *rec;
	size_t i;

	if (hs_patient_page_parse(text, &page, &cause) == 0) {
		FUZZ_ASSERT(cause == NULL, "accepted with a cause");
		FUZZ_ASSERT(page.total_pages >= 0 && page.total_pages <= HS_PATIENT_MAX_PAGES,
			    "total_pages %lld", (long long)page.total_pages);
		json_array_foreach(page.data, i, rec) check_record(rec);
		hs_patient_page_clear(&page);
	} else {
		FUZZ_ASSERT(cause && !strchr(cause, '\n'), "refused without a one-line cause");
		free(cause);
		cause = NULL;
	}

	nl = strchr(text, '\n');
	if (nl) {
		*nl = '\0';
		rec = hs_patient_detail_parse(nl + 1, text, &cause);
		if (rec) {
			FUZZ_ASSERT(strcmp(json_string_value(json_object_get(rec, "id")), text) ==
					0,
				    "a detail answer for another id accepted");
			check_record(rec);
			json_decref(rec);
		} else {
			FUZZ_ASSERT(cause && !strchr(cause, '\n'),
				    "refused without a one-line cause");
			free(cause);
		}
	}
	free(text);
	return 0;
}
