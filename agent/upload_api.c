#include "config.h"

#include <ctype.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "agent/upload_api.h"
#include "conf/conf.h"

#define MAX_HEADERS    32
#define MAX_HEADER_LEN 4096
#define MAX_URL_LEN    8192
#define MAX_ID_LEN     256

static int fail(char **cause, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(char **cause, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (cause && vasprintf(cause, fmt, ap) < 0)
		*cause = NULL;
	va_end(ap);
	return -1;
}

/* Serialises o compactly and releases it; NULL when o is NULL. */
static char *dump(json_t *o)
{
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return s;
}

char *hs_api_presign_body(const char *filename, int64_t size, const char *sha256,
			  const char *content_type)
{
	return dump(json_pack("{s:s, s:I, s:s, s:s}", "filename", filename, "size_bytes",
			      (json_int_t)size, "sha256", sha256, "content_type", content_type));
}

char *hs_api_create_body(const char *filename, int64_t size, const char *sha256,
			 const char *content_type, int64_t part_size)
{
	return dump(json_pack("{s:s, s:I, s:s, s:s, s:I}", "filename", filename, "size_bytes",
			      (json_int_t)size, "sha256", sha256, "content_type", content_type,
			      "part_size_bytes", (json_int_t)part_size));
}

char *hs_api_parts_body(const uint32_t *numbers, size_t n)
{
	json_t *list = json_array();

	if (!list)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (json_array_append_new(list, json_integer(numbers[i])) != 0) {
			json_decref(list);
			return NULL;
		}
	}
	return dump(json_pack("{s:o}", "part_numbers", list));
}

char *hs_api_complete_body(const struct hs_part *parts, size_t n)
{
	json_t *list = json_array();

	if (!list)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		json_t *p = json_pack("{s:i, s:s}", "part_number", (int)parts[i].number, "etag",
				      parts[i].etag);
		if (json_array_append_new(list, p) != 0) {
			json_decref(list);
			return NULL;
		}
	}
	return dump(json_pack("{s:o}", "parts", list));
}

/* ---- reading responses ------------------------------------------------ */

/* The "data" member of a success body. */
static json_t *parse_data(const char *body, json_t **root, char **cause)
{
	json_error_t err;
	json_t *data;

	*root = body ? json_loads(body, JSON_REJECT_DUPLICATES, &err) : NULL;
	if (!*root) {
		fail(cause, "malformed JSON in the response%s", body ? "" : " (empty body)");
		return NULL;
	}
	data = json_object_get(*root, "data");
	if (!data) {
		json_decref(*root);
		*root = NULL;
		fail(cause, "response without %s", "\"data\"");
	}
	return data;
}

static const char *get_string(json_t *o, const char *key, size_t max, char **cause)
{
	json_t *v = json_object_get(o, key);
	const char *s = json_string_value(v);

	if (!s || json_string_length(v) == 0 || json_string_length(v) > max ||
	    strlen(s) != json_string_length(v)) {
		fail(cause, "response field \"%s\" missing or not a sensible string", key);
		return NULL;
	}
	return s;
}

/* An id goes into URL paths: letters, digits and "-_." only, so a hostile
 * one cannot walk to another path with our key. */
static const char *get_id(json_t *o, const char *key, char **cause)
{
	const char *s = get_string(o, key, MAX_ID_LEN, cause);

	if (s && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") !=
		     strlen(s)) {
		fail(cause, "response field \"%s\" is not a plain id", key);
		return NULL;
	}
	return s;
}

static int get_int(json_t *o, const char *key, int64_t min, int64_t max, int64_t *ret, char **cause)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return fail(cause, "response field \"%s\" missing or out of range", key);
	*ret = json_integer_value(v);
	return 0;
}

static bool is_token_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && !strchr("()<>@,;:\\\"/[]?={}", c);
}

/* "headers": {"Name": "value"} as "Name: value" lines. A name that is not an
 * HTTP token or a value with a control character could smuggle a second
 * header or request, so both are refused. */
static int get_headers(json_t *o, char ***ret, char **cause)
{
	json_t *hdrs = json_object_get(o, "headers"), *v;
	const char *name;
	char **out;
	size_t n = 0;

	if (hdrs && !json_is_object(hdrs))
		return fail(cause, "response field \"%s\" is not an object", "headers");
	if (json_object_size(hdrs) > MAX_HEADERS)
		return fail(cause, "response field \"%s\" has too many entries", "headers");
	out = calloc(json_object_size(hdrs) + 1, sizeof(*out));
	if (!out)
		return fail(cause, "%s", "out of memory");
	json_object_foreach(hdrs, name, v)
	{
		const char *value = json_string_value(v);
		bool ok = value && *name && strlen(name) + json_string_length(v) < MAX_HEADER_LEN;
		for (const char *p = name; ok && *p; p++)
			ok = is_token_char((unsigned char)*p);
		for (size_t i = 0; ok && i < json_string_length(v); i++)
			ok = (unsigned char)value[i] >= 0x20 && value[i] != 0x7f;
		/* Content-Length is curl's to send, from the real body size. */
		if (ok && strcasecmp(name, "Content-Length") == 0)
			continue;
		if (!ok || asprintf(&out[n], "%s: %s", name, value) < 0) {
			out[n] = NULL;
			for (size_t i = 0; i < n; i++)
				free(out[i]);
			free(out);
			return fail(cause, "response field \"%s\" holds an unusable header",
				    "headers");
		}
		n++;
	}
	*ret = out;
	return 0;
}

static int get_url(json_t *o, char **ret, char **cause)
{
	const char *url = get_string(o, "url", MAX_URL_LEN, cause);

	if (!url)
		return -1;
	/* A presigned URL in the clear to another host would expose the
	 * file: the same rule as for the configured base URLs. */
	if (!hs_url_allowed(url))
		return fail(cause, "response field \"%s\" is not an https URL", "url");
	if (!(*ret = strdup(url)))
		return fail(cause, "%s", "out of memory");
	return 0;
}

/* "expires_at": RFC 3339 UTC ("2026-03-15T09:30:00.000Z", fraction
 * optional) in Unix ms; -1 when absent or unreadable, which only costs
 * the early refresh of a URL about to expire. */
static int64_t get_expires(json_t *o)
{
	const char *s = json_string_value(json_object_get(o, "expires_at"));
	int y, mo, d, h, mi, sec, n = 0;
	struct tm tm = {0};
	int64_t ms = 0;
	time_t t;

	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6)
		return -1;
	s += n;
	if (*s == '.') {
		int64_t scale = 100;
		for (s++; *s >= '0' && *s <= '9'; s++, scale /= 10)
			ms += (*s - '0') * scale;
	}
	if (strcmp(s, "Z") != 0 || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
	    mi > 59 || sec > 60)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	return t == (time_t)-1 ? -1 : (int64_t)t * 1000 + ms;
}

int hs_api_parse_presigned(const char *body, struct hs_presigned *ret, char **cause)
{
	struct hs_presigned p = {0};
	json_t *root, *data = parse_data(body, &root, cause);
	const char *id, *method;

	if (!data)
		return -1;
	if (!(id = get_id(data, "upload_id", cause)))
		goto fail;
	method = json_string_value(json_object_get(data, "method"));
	if (method && strcmp(method, "PUT") != 0) {
		fail(cause, "response asks for method %s, not PUT", "\"method\"");
		goto fail;
	}
	if (!(p.upload_id = strdup(id))) {
		fail(cause, "%s", "out of memory");
		goto fail;
	}
	if (get_url(data, &p.url, cause) != 0 || get_headers(data, &p.headers, cause) != 0)
		goto fail;
	p.expires_ms = get_expires(data);
	json_decref(root);
	*ret = p;
	return 0;
fail:
	hs_presigned_clear(&p);
	json_decref(root);
	return -1;
}

int64_t hs_api_part_size_for(int64_t size, int64_t configured)
{
	const int64_t mib = 1024 * 1024;
	int64_t part = configured;

	if (size / part >= HS_MAX_PARTS) {
		part = (size + HS_MAX_PARTS - 1) / HS_MAX_PARTS;
		part = (part + mib - 1) / mib * mib;
	}
	return part;
}

int hs_api_parse_session(const char *body, int64_t size, struct hs_session *ret, char **cause)
{
	struct hs_session s = {0};
	json_t *root, *data = parse_data(body, &root, cause);
	const char *id;
	int64_t part_size, count;

	if (!data)
		return -1;
	if (!(id = get_id(data, "upload_id", cause)) ||
	    get_int(data, "part_size_bytes", 1, HS_MAX_PART_SIZE, &part_size, cause) != 0 ||
	    get_int(data, "part_count", 1, HS_MAX_PARTS, &count, cause) != 0)
		goto fail;
	/* The count must be what the size and part size make, or parts and
	 * offsets would disagree. */
	if (count != (size + part_size - 1) / part_size && !(size == 0 && count == 1)) {
		fail(cause, "response %s does not match the file size", "\"part_count\"");
		goto fail;
	}
	if (!(s.upload_id = strdup(id))) {
		fail(cause, "%s", "out of memory");
		goto fail;
	}
	s.part_size = part_size;
	s.part_count = (uint32_t)count;
	json_decref(root);
	*ret = s;
	return 0;
fail:
	json_decref(root);
	return -1;
}

int hs_api_parse_part_urls(const char *body, const uint32_t *asked, size_t n,
			   struct hs_presigned **ret, char **cause)
{
	json_t *root, *data = parse_data(body, &root, cause), *parts, *p;
	struct hs_presigned *out = NULL;
	size_t i;

	if (!data)
		return -1;
	parts = json_object_get(data, "parts");
	if (!json_is_array(parts) || json_array_size(parts) != n) {
		fail(cause, "response %s do not match the part numbers asked for", "\"parts\"");
		goto fail;
	}
	if (!(out = calloc(n, sizeof(*out)))) {
		fail(cause, "%s", "out of memory");
		goto fail;
	}
	json_array_foreach(parts, i, p)
	{
		int64_t num;
		size_t k;
		if (get_int(p, "part_number", 1, HS_MAX_PARTS, &num, cause) != 0)
			goto fail;
		for (k = 0; k < n && asked[k] != (uint32_t)num; k++)
			;
		if (k == n || out[k].url) {
			fail(cause, "response %s has a part number not asked for", "\"parts\"");
			goto fail;
		}
		out[k].part_number = (uint32_t)num;
		if (get_url(p, &out[k].url, cause) != 0 ||
		    get_headers(p, &out[k].headers, cause) != 0)
			goto fail;
		out[k].expires_ms = get_expires(p);
	}
	json_decref(root);
	*ret = out;
	return 0;
fail:
	for (i = 0; out && i < n; i++)
		hs_presigned_clear(&out[i]);
	free(out);
	json_decref(root);
	return -1;
}

static int part_cmp(const void *a, const void *b)
{
	const struct hs_part *x = a, *y = b;

	return (x->number > y->number) - (x->number < y->number);
}

int hs_api_parse_part_list(const char *body, uint32_t part_count, struct hs_part **ret,
			   size_t *ret_n, char **cause)
{
	json_t *root, *data = parse_data(body, &root, cause), *parts, *p;
	struct hs_part *out = NULL;
	size_t i, n;

	if (!data)
		return -1;
	parts = json_object_get(data, "parts");
	n = json_array_size(parts);
	if (!json_is_array(parts) || n > part_count) {
		fail(cause, "response %s is not a list of parts", "\"parts\"");
		goto fail;
	}
	if (n && !(out = calloc(n, sizeof(*out)))) {
		fail(cause, "%s", "out of memory");
		goto fail;
	}
	json_array_foreach(parts, i, p)
	{
		int64_t num, size;
		const char *etag;
		if (get_int(p, "part_number", 1, part_count, &num, cause) != 0 ||
		    get_int(p, "size_bytes", 0, HS_MAX_PART_SIZE, &size, cause) != 0 ||
		    !(etag = get_string(p, "etag", sizeof(out[i].etag) - 1, cause)))
			goto fail;
		out[i].number = (uint32_t)num;
		out[i].size = size;
		snprintf(out[i].etag, sizeof(out[i].etag), "%s", etag);
	}
	if (n)
		qsort(out, n, sizeof(*out), part_cmp);
	for (i = 1; i < n; i++) {
		if (out[i].number == out[i - 1].number) {
			fail(cause, "response %s lists a part twice", "\"parts\"");
			goto fail;
		}
	}
	json_decref(root);
	*ret = out;
	*ret_n = n;
	return 0;
fail:
	free(out);
	json_decref(root);
	return -1;
}

static bool is_sha256_hex(const char *s)
{
	if (strlen(s) != 64)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

int hs_api_parse_stored(const char *body, struct hs_stored *ret, char **cause)
{
	struct hs_stored s = {0};
	json_t *root, *data = parse_data(body, &root, cause);
	const char *id, *sha, *status;

	if (!data)
		return -1;
	if (!(id = get_id(data, "file_id", cause)) ||
	    get_int(data, "size_bytes", 0, INT64_MAX, &s.size, cause) != 0 ||
	    !(sha = get_string(data, "sha256", 64, cause)))
		goto fail;
	if (!is_sha256_hex(sha)) {
		fail(cause, "response field %s is not a SHA-256", "\"sha256\"");
		goto fail;
	}
	status = json_string_value(json_object_get(data, "status"));
	if (status && strcmp(status, "stored") != 0) {
		fail(cause, "response status is not %s", "\"stored\"");
		goto fail;
	}
	if (!(s.file_id = strdup(id))) {
		fail(cause, "%s", "out of memory");
		goto fail;
	}
	memcpy(s.sha256, sha, 65);
	json_decref(root);
	*ret = s;
	return 0;
fail:
	json_decref(root);
	return -1;
}

/* The string field key of an error body, or NULL; *root to release. */
static const char *error_field(const char *body, const char *key, json_t **root)
{
	*root = body ? json_loads(body, 0, NULL) : NULL;
	return json_string_value(json_object_get(*root, key));
}

void hs_api_error_type(const char *body, char *buf, size_t len)
{
	json_t *root;
	const char *s = error_field(body, "error", &root);
	size_t n = s ? strlen(s) : 0;

	/* A type is a short word of [a-z0-9_]; anything else is not one and
	 * could quote what was asked for. */
	if (len)
		buf[0] = '\0';
	if (n > 0 && n < len && n < 64 &&
	    s[strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_")] == '\0')
		memcpy(buf, s, n + 1);
	json_decref(root);
}

/* Whether a word of a message looks like a URL, a query or an address:
 * presigned query strings are secrets. */
static bool word_hidden(const char *w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strchr("?&=@", w[i]) || (i + 3 <= n && memcmp(w + i, "://", 3) == 0))
			return true;
	return false;
}

void hs_api_error_message(const char *body, char *buf, size_t len)
{
	json_t *root;
	const char *s = error_field(body, "message", &root);
	size_t o = 0;

	while (s && *s && o + 1 < len) {
		size_t n = strcspn(s, " ");

		if (n == 0) {
			buf[o++] = *s++;
		} else if (word_hidden(s, n)) {
			o += (size_t)snprintf(buf + o, len - o, "%s", "[...]");
			o = o < len ? o : len - 1;
			s += n;
		} else {
			for (; n && o + 1 < len; n--, s++)
				buf[o++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
			s += n;
		}
	}
	if (len)
		buf[o] = '\0';
	json_decref(root);
}

void hs_presigned_clear(struct hs_presigned *p)
{
	for (char **h = p->headers; h && *h; h++)
		free(*h);
	free(p->headers);
	free(p->url);
	free(p->upload_id);
	memset(p, 0, sizeof(*p));
}

void hs_session_clear(struct hs_session *s)
{
	free(s->upload_id);
	memset(s, 0, sizeof(*s));
}

void hs_stored_clear(struct hs_stored *s)
{
	free(s->file_id);
	memset(s, 0, sizeof(*s));
}

const char *hs_content_type(const char *filename)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
	    {"pdf", "application/pdf"},	  {"hl7", "application/hl7-v2"}, {"xml", "application/xml"},
	    {"json", "application/json"}, {"txt", "text/plain"},	 {"csv", "text/csv"},
	    {"dcm", "application/dicom"}, {"jpg", "image/jpeg"},	 {"jpeg", "image/jpeg"},
	    {"png", "image/png"},	  {"tif", "image/tiff"},	 {"tiff", "image/tiff"},
	    {"zip", "application/zip"},	  {"gz", "application/gzip"},
	};
	const char *dot = strrchr(filename, '.'), *slash = strrchr(filename, '/');

	if (dot && (!slash || dot > slash))
		for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			if (strcasecmp(dot + 1, types[i].ext) == 0)
				return types[i].type;
	return "application/octet-stream";
}
