/* Records API messages from a server that is not trusted: wrong types,
 * missing ids, absurd page counts, duplicate keys, ids that would walk the
 * URL path; and the merge that keeps unknown fields and a stable text. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/mirror_record.h"

static void refuse_page(const char *body, const char *want)
{
	struct hs_patient_page p;
	char *cause = NULL;

	assert_int_equal(hs_patient_page_parse(body, &p, &cause), -1);
	assert_null(p.root);
	assert_non_null(cause);
	if (!strstr(cause, want))
		fail_msg("cause \"%s\" lacks \"%s\"", cause, want);
	assert_null(strchr(cause, '\n'));
	free(cause);
}

static void refuse_detail(const char *body, const char *id, const char *want)
{
	char *cause = NULL;

	assert_null(hs_patient_detail_parse(body, id, &cause));
	assert_non_null(cause);
	if (!strstr(cause, want))
		fail_msg("cause \"%s\" lacks \"%s\"", cause, want);
	free(cause);
}

static void test_ids(void **state)
{
	char id[HS_PATIENT_ID_MAX + 2];

	(void)state;
	assert_true(hs_patient_id_valid("1743552000000", 13));
	assert_true(hs_patient_id_valid("0123", 4));
	assert_false(hs_patient_id_valid("", 0));
	assert_false(hs_patient_id_valid(NULL, 0));
	assert_false(hs_patient_id_valid("a\0b", 3));
	memset(id, '7', sizeof(id));
	assert_true(hs_patient_id_valid(id, HS_PATIENT_ID_MAX));
	assert_false(hs_patient_id_valid(id, HS_PATIENT_ID_MAX + 1));
}

static void test_page_ok(void **state)
{
	struct hs_patient_page p;
	struct hs_patient_columns c;
	char *cause = NULL;

	(void)state;
	assert_int_equal(
	    hs_patient_page_parse("{\"data\": [{\"id\": \"00000000000000000000123\", \"name\": "
				  "\"Zo\\u00eb\", \"created_at\": \"2024-01-01T00:00:00.000Z\", "
				  "\"tags\": [\"a\"], \"blood_type\": null}, "
				  "{\"id\": \"123\", \"name\": null}], "
				  "\"meta\": {\"page\": 1, \"limit\": 2, \"total_pages\": 7}}",
				  &p, &cause),
	    0);
	assert_int_equal(p.total_pages, 7);
	assert_int_equal(json_array_size(p.data), 2);
	hs_patient_columns(json_array_get(p.data, 0), &c);
	/* The id is the text as sent: leading zeros and all. */
	assert_string_equal(c.id, "00000000000000000000123");
	assert_string_equal(c.name, "Zo\xc3\xab");
	assert_string_equal(c.created_at, "2024-01-01T00:00:00.000Z");
	assert_null(c.pronouns);
	assert_int_equal(c.consent, -1);
	hs_patient_columns(json_array_get(p.data, 1), &c);
	assert_string_equal(c.id, "123");
	assert_null(c.name);
	hs_patient_page_clear(&p);

	assert_int_equal(
	    hs_patient_page_parse("{\"data\": [], \"meta\": {\"total_pages\": 0}}", &p, &cause), 0);
	assert_int_equal(p.total_pages, 0);
	assert_int_equal(json_array_size(p.data), 0);
	hs_patient_page_clear(&p);
}

static void test_page_hostile(void **state)
{
	(void)state;
	refuse_page(NULL, "empty");
	refuse_page("", "not valid JSON");
	/* A syntax error is reported by position, never by quoting the body. */
	refuse_page("{\"data\": [{\"id\": \"1\", \"name\": \"Secret Name\" \"x\"}]}",
		    "not valid JSON (line 1");
	{
		struct hs_patient_page p;
		char *cause = NULL;
		hs_patient_page_parse("{\"data\": [{\"name\": \"Secret Name\", oops}]}", &p,
				      &cause);
		assert_non_null(cause);
		assert_null(strstr(cause, "Secret"));
		assert_null(strstr(cause, "oops"));
		free(cause);
	}
	refuse_page("[]", "\"data\" is missing");
	refuse_page("{\"data\": {}, \"meta\": {\"total_pages\": 1}}", "\"data\" is missing or not");
	refuse_page("{\"data\": []}", "\"meta\" is missing");
	refuse_page("{\"data\": [], \"meta\": {}}", "total_pages");
	refuse_page("{\"data\": [], \"meta\": {\"total_pages\": \"3\"}}", "total_pages");
	refuse_page("{\"data\": [], \"meta\": {\"total_pages\": -1}}", "total_pages");
	refuse_page("{\"data\": [], \"meta\": {\"total_pages\": 1.5}}", "total_pages");
	refuse_page("{\"data\": [], \"meta\": {\"total_pages\": 1000000000000}}", "total_pages");
	refuse_page("{\"data\": [], \"meta\": {\"total_pages\": true}}", "total_pages");
	/* What the reference server's missing_fields and wrong_types faults
	 * answer. */
	refuse_page("{\"data\": [{}, {}]}", "\"meta\" is missing");
	refuse_page("{\"data\": [{}], \"meta\": {\"total_pages\": 1}}",
		    "record 1: \"id\" is missing");
	refuse_page("{\"data\": [{\"id\": 1743552000000, \"name\": \"A\"}], "
		    "\"meta\": {\"total_pages\": 1}}",
		    "record 1: \"id\" is not a string");
	refuse_page("{\"data\": [{\"id\": \"1\"}, {\"id\": \"2\", \"name\": 5}], "
		    "\"meta\": {\"total_pages\": 1}}",
		    "record 2: \"name\" is not a string");
	refuse_page("{\"data\": [{\"id\": \"1\", \"created_at\": []}], "
		    "\"meta\": {\"total_pages\": 1}}",
		    "\"created_at\" is not a string");
	refuse_page("{\"data\": [\"1\"], \"meta\": {\"total_pages\": 1}}",
		    "record 1: not an object");
	refuse_page("{\"data\": [{\"id\": \"\"}], \"meta\": {\"total_pages\": 1}}", "empty");
	refuse_page("{\"data\": [{\"id\": \"1\", \"id\": \"2\"}], \"meta\": {\"total_pages\": 1}}",
		    "not valid JSON");
	refuse_page("{\"data\": [{\"id\": \"a\\u0000b\"}], \"meta\": {\"total_pages\": 1}}",
		    "not valid JSON");
	refuse_page("{\"data\": [{\"id\": \"\xff\"}], \"meta\": {\"total_pages\": 1}}",
		    "not valid JSON");

	char *big = malloc(HS_PATIENT_ID_MAX + 100);
	int n = snprintf(big, HS_PATIENT_ID_MAX + 100, "{\"data\": [{\"id\": \"");
	memset(big + n, '9', HS_PATIENT_ID_MAX + 1);
	strcpy(big + n + HS_PATIENT_ID_MAX + 1, "\"}], \"meta\": {\"total_pages\": 1}}");
	refuse_page(big, "longer than 256 bytes");
	free(big);
}

static void test_detail(void **state)
{
	struct hs_patient_columns c;
	char *cause = NULL;
	json_t *rec;

	(void)state;
	rec = hs_patient_detail_parse("{\"data\": {\"id\": \"42\", \"name\": \"A\", \"pronouns\": "
				      "\"they/them\", \"notes\": \"line\\nline\", \"consent\": "
				      "false, \"external_ref\": {\"v\": 1}}}",
				      "42", &cause);
	assert_non_null(rec);
	hs_patient_columns(rec, &c);
	assert_string_equal(c.pronouns, "they/them");
	assert_string_equal(c.notes, "line\nline");
	assert_int_equal(c.consent, 0);
	json_decref(rec);

	refuse_detail("{\"data\": {\"id\": \"042\"}}", "42", "not the one asked for");
	refuse_detail("{\"data\": {}}", "42", "\"id\" is missing");
	refuse_detail("{}", "42", "\"data\" is missing");
	refuse_detail("{\"data\": {\"id\": \"42\", \"consent\": \"yes\"}}", "42",
		      "\"consent\" is not a boolean");
	refuse_detail("{\"data\": {\"id\": \"42\", \"notes\": 7}}", "42",
		      "\"notes\" is not a string");
	refuse_detail("{\"data\": {\"id\": 42}}", "42", "\"id\" is not a string");
	refuse_detail("<html>", "42", "not valid JSON");
}

static void test_merge(void **state)
{
	json_t *list, *detail, *m1, *m2, *m3;
	char *cause = NULL, *t1, *t2, *t3;

	(void)state;
	list = json_pack("{s:s, s:s, s:s, s:[s]}", "id", "7", "name", "Old", "created_at", "x",
			 "tags", "t");
	detail = json_pack("{s:s, s:s, s:s, s:n, s:b}", "id", "7", "name", "Old", "pronouns",
			   "she/her", "notes", "consent", 1);

	/* First run: the list record with the detail fields on it. */
	m1 = hs_patient_merge(NULL, list, &cause);
	t1 = hs_patient_dump(m1);
	m2 = hs_patient_merge(t1, detail, &cause);
	t2 = hs_patient_dump(m2);
	assert_string_equal(t2, "{\"id\":\"7\",\"name\":\"Old\",\"created_at\":\"x\","
				"\"tags\":[\"t\"],\"pronouns\":\"she/her\",\"notes\":null,"
				"\"consent\":true}");

	/* A later run lists it renamed, without a detail request: the detail
	 * fields stay, and every key keeps its place. */
	json_object_set_new(list, "name", json_string("New"));
	m3 = hs_patient_merge(t2, list, &cause);
	t3 = hs_patient_dump(m3);
	assert_string_equal(t3, "{\"id\":\"7\",\"name\":\"New\",\"created_at\":\"x\","
				"\"tags\":[\"t\"],\"pronouns\":\"she/her\",\"notes\":null,"
				"\"consent\":true}");
	/* The same fields again: the same text. */
	json_t *m4 = hs_patient_merge(t3, list, &cause);
	char *t4 = hs_patient_dump(m4);
	assert_string_equal(t3, t4);
	/* The merge copies: changing the update later changes nothing. */
	json_object_set_new(list, "name", json_string("Other"));
	assert_string_equal(json_string_value(json_object_get(m3, "name")), "New");

	assert_null(hs_patient_merge("[1]", list, &cause));
	assert_non_null(strstr(cause, "not a JSON object"));
	free(cause);

	free(t1);
	free(t2);
	free(t3);
	free(t4);
	json_decref(m1);
	json_decref(m2);
	json_decref(m3);
	json_decref(m4);
	json_decref(list);
	json_decref(detail);
}

static void test_urls(void **state)
{
	char *u, id[HS_PATIENT_ID_MAX + 2];

	(void)state;
	u = hs_patients_url("https://api.example/ext-api/v1", 3, 100);
	assert_string_equal(u, "https://api.example/ext-api/v1/patients?page=3&limit=100");
	free(u);
	u = hs_patient_url("https://h/v1", "12345678901234567890");
	assert_string_equal(u, "https://h/v1/patients/12345678901234567890");
	free(u);
	/* Nothing in an id can leave its path segment. */
	u = hs_patient_url("https://h/v1", "../x/y?z=1#f %\xc3\xa9~-._");
	assert_string_equal(u, "https://h/v1/patients/..%2Fx%2Fy%3Fz%3D1%23f%20%25%C3%A9~-._");
	free(u);
	u = hs_patient_url("https://h/v1", "..");
	assert_string_equal(u, "https://h/v1/patients/%2E%2E");
	free(u);
	u = hs_patient_url("https://h/v1", "...1");
	assert_string_equal(u, "https://h/v1/patients/...1");
	free(u);
	assert_null(hs_patient_url("https://h/v1", ""));
	assert_null(hs_patient_url("https://h/v1", NULL));
	memset(id, '1', sizeof(id));
	id[HS_PATIENT_ID_MAX + 1] = '\0';
	assert_null(hs_patient_url("https://h/v1", id));
	id[HS_PATIENT_ID_MAX] = '\0';
	u = hs_patient_url("https://h/v1", id);
	assert_non_null(u);
	free(u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ids),		 cmocka_unit_test(test_page_ok),
	    cmocka_unit_test(test_page_hostile), cmocka_unit_test(test_detail),
	    cmocka_unit_test(test_merge),	 cmocka_unit_test(test_urls),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
