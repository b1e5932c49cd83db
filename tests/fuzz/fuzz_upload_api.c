/*
 * The Upload API answers (agent/upload_api.c). The input's first byte picks
 * the parser, the next eight its argument (the file size, the part count,
 * the part numbers asked for), the rest is the body. What a parser accepts
 * must hold what upload.c relies on: allowed URLs, headers that cannot
 * smuggle another header, part counts that match the size, parts ascending
 * and in range, a SHA-256 in lower-case hex, error texts of printable ASCII
 * that fit their buffer. Round trips: the parts a listing gives make a
 * "complete" request naming the same parts and etags, and a request body
 * built from a name (the body text itself) holds that name.
 */
#include "config.h"

#include <jansson.h>
#include <stdbool.h>
#include <strings.h>

#include "agent/upload_api.h"
#include "conf/conf.h"
#include "tests/fuzz/fuzz.h"

#define SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static void check_presigned(const struct hs_presigned *p)
{
	FUZZ_ASSERT(p->url && hs_url_allowed(p->url), "URL \"%s\" not allowed",
		    p->url ? p->url : "(null)");
	FUZZ_ASSERT(p->headers != NULL, "no header list");
	for (size_t i = 0; p->headers[i]; i++) {
		const char *h = p->headers[i];

		FUZZ_ASSERT(strstr(h, ": ") && h[0] != ':', "header \"%s\" has no name", h);
		for (const char *c = h; *c; c++)
			FUZZ_ASSERT((unsigned char)*c >= 0x20 && *c != 0x7f,
				    "header \"%s\" holds a control character", h);
		FUZZ_ASSERT(strncasecmp(h, "Content-Length:", 15) != 0,
			    "a Content-Length header accepted");
	}
}

static void check_plain_id(const char *id)
{
	FUZZ_ASSERT(id && *id && strlen(id) <= 256 &&
			strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				   "0123456789-_.") == strlen(id),
		    "id \"%s\" accepted", id ? id : "(null)");
}

static void part_list(const char *body, uint32_t part_count)
{
	struct hs_part *parts = NULL;
	size_t n = 0;
	char *cause = NULL, *req;
	json_t *root, *list;

	if (hs_api_parse_part_list(body, part_count, &parts, &n, &cause) != 0) {
		free(cause);
		return;
	}
	FUZZ_ASSERT(n <= part_count, "%zu parts of %u", n, part_count);
	for (size_t i = 0; i < n; i++) {
		FUZZ_ASSERT(parts[i].number >= 1 && parts[i].number <= part_count,
			    "part number %u of %u", parts[i].number, part_count);
		FUZZ_ASSERT(i == 0 || parts[i].number > parts[i - 1].number, "parts not ascending");
		FUZZ_ASSERT(parts[i].size >= 0 && parts[i].size <= HS_MAX_PART_SIZE,
			    "part size %lld", (long long)parts[i].size);
		FUZZ_ASSERT(parts[i].etag[0] != '\0', "empty etag");
	}
	req = hs_api_complete_body(parts, n);
	FUZZ_ASSERT(req != NULL, "no complete body for the parts listed");
	root = json_loads(req, JSON_REJECT_DUPLICATES, NULL);
	list = json_object_get(root, "parts");
	FUZZ_ASSERT(json_array_size(list) == n, "complete body %s lists other parts", req);
	for (size_t i = 0; i < n; i++) {
		json_t *p = json_array_get(list, i);

		FUZZ_ASSERT(
		    json_integer_value(json_object_get(p, "part_number")) == parts[i].number &&
			strcmp(json_string_value(json_object_get(p, "etag")), parts[i].etag) == 0,
		    "complete body %s: part %zu is not what was listed", req, i);
	}
	json_decref(root);
	free(req);
	free(parts);
}

static void error_fields(const char *body)
{
	char small[8], big[512];

	hs_api_error_type(body, small, sizeof(small));
	hs_api_error_message(body, big, sizeof(big));
	FUZZ_ASSERT(strlen(small) < sizeof(small), "error type overflows");
	for (const char *c = big; *c; c++)
		FUZZ_ASSERT(*c >= 0x20 && *c < 0x7f, "error message holds byte 0x%02x",
			    (unsigned char)*c);
}

static void request_body(const char *name)
{
	char *body = hs_api_presign_body(name, 42, SHA, hs_content_type(name));
	json_t *root;

	if (!body)
		return; /* not UTF-8: names are escaped to UTF-8 before they get here */
	root = json_loads(body, JSON_REJECT_DUPLICATES, NULL);
	FUZZ_ASSERT(root, "presign body %s is not JSON", body);
	FUZZ_ASSERT(strcmp(json_string_value(json_object_get(root, "filename")), name) == 0,
		    "presign body %s names another file", body);
	json_decref(root);
	free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned which = (unsigned)fuzz_take(&data, &size, 1);
	uint64_t arg = fuzz_take(&data, &size, 8);
	char *body = fuzz_string(data, size), *cause = NULL;

	switch (which % 6) {
	case 0: {
		struct hs_presigned p;

		if (hs_api_parse_presigned(body, &p, &cause) == 0) {
			check_presigned(&p);
			check_plain_id(p.upload_id);
			hs_presigned_clear(&p);
		}
		break;
	}
	case 1: {
		/* A file of up to 64 TiB, as a local file's size can be. */
		int64_t fsize = (int64_t)(arg % (1ULL << 46));
		struct hs_session s;

		if (hs_api_parse_session(body, fsize, &s, &cause) == 0) {
			check_plain_id(s.upload_id);
			FUZZ_ASSERT(s.part_size >= 1 && s.part_size <= HS_MAX_PART_SIZE,
				    "part size %lld", (long long)s.part_size);
			FUZZ_ASSERT(s.part_count >= 1 && s.part_count <= HS_MAX_PARTS &&
					(int64_t)s.part_count * s.part_size >= fsize &&
					(int64_t)(s.part_count - 1) * s.part_size <
					    (fsize ? fsize : 1),
				    "%u parts of %lld bytes for %lld", s.part_count,
				    (long long)s.part_size, (long long)fsize);
			hs_session_clear(&s);
		}
		break;
	}
	case 2: {
		/* Up to four part numbers asked for, from the argument's bytes. */
		uint32_t asked[4];
		size_t n = (size_t)(arg & 3) + 1;
		struct hs_presigned *urls = NULL;

		for (size_t i = 0; i < n; i++)
			asked[i] = (uint32_t)((arg >> (8 + 12 * i)) & 0xfff) + 1;
		if (hs_api_parse_part_urls(body, asked, n, &urls, &cause) == 0) {
			for (size_t i = 0; i < n; i++) {
				FUZZ_ASSERT(urls[i].part_number == asked[i],
					    "part %u answered for %u", urls[i].part_number,
					    asked[i]);
				check_presigned(&urls[i]);
				hs_presigned_clear(&urls[i]);
			}
			free(urls);
		}
		break;
	}
	case 3:
		part_list(body, (uint32_t)(arg % HS_MAX_PARTS) + 1);
		break;
	case 4: {
		struct hs_stored st;

		if (hs_api_parse_stored(body, &st, &cause) == 0) {
			check_plain_id(st.file_id);
			FUZZ_ASSERT(st.size >= 0, "size %lld", (long long)st.size);
			FUZZ_ASSERT(strlen(st.sha256) == 64 &&
					strspn(st.sha256, "0123456789abcdef") == 64,
				    "sha256 \"%s\"", st.sha256);
			hs_stored_clear(&st);
		}
		break;
	}
	default:
		error_fields(body);
		request_body(body);
		break;
	}
	free(cause);
	free(body);
	return 0;
}
