/*
 * Remote names (agent/remote_name.c): escape then unescape gives the name
 * back byte for byte; the escaped name is what the server wants: valid UTF-8
 * without control characters, starting with the prefix; and a clean UTF-8
 * name is sent as it is unless it reads as an escaped one.
 */
#include "config.h"

#include <stdbool.h>

#include "agent/remote_name.h"
#include "tests/fuzz/fuzz.h"

/* Valid UTF-8 (RFC 3629) without C0 controls or DEL. */
static bool clean_utf8(const unsigned char *s)
{
	while (*s) {
		uint32_t cp;
		size_t n;

		if (*s < 0x20 || *s == 0x7f)
			return false;
		if (*s < 0x80)
			n = 0, cp = *s;
		else if (*s >= 0xc2 && *s <= 0xdf)
			n = 1, cp = *s & 0x1f;
		else if (*s >= 0xe0 && *s <= 0xef)
			n = 2, cp = *s & 0x0f;
		else if (*s >= 0xf0 && *s <= 0xf4)
			n = 3, cp = *s & 0x07;
		else
			return false;
		for (size_t i = 1; i <= n; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		s += n + 1;
	}
	return true;
}

static void round_trip(const char *prefix, const char *rel)
{
	char *name = hs_remote_name(prefix, rel), *back;
	size_t plen = strlen(prefix);

	if (!name)
		return;
	FUZZ_ASSERT(strncmp(name, prefix, plen) == 0, "\"%s\" does not start with \"%s\"", name,
		    prefix);
	FUZZ_ASSERT(clean_utf8((const unsigned char *)name + plen),
		    "escaped name \"%s\" is not clean UTF-8", name);
	/* SPEC 1.1: a clean UTF-8 name travels byte for byte, "%" included,
	 * unless it holds a "%XX" that escaping could have made. */
	if (clean_utf8((const unsigned char *)rel) && strcmp(name + plen, rel) != 0) {
		char *back_plain = hs_remote_name_unescape(rel);

		FUZZ_ASSERT(back_plain && strcmp(back_plain, rel) != 0,
			    "clean UTF-8 \"%s\" sent escaped as \"%s\"", rel, name);
		free(back_plain);
	}
	back = hs_remote_name_unescape(name + plen);
	FUZZ_ASSERT(back != NULL, "out of memory");
	FUZZ_ASSERT(strcmp(back, rel) == 0, "\"%s\" escaped as \"%s\" unescapes to \"%s\"", rel,
		    name, back);
	free(back);
	free(name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *rel = fuzz_string(data, size);

	round_trip("", rel);
	round_trip("lab/2024 %/", rel);
	/* Unescaping anything at all is safe, and never grows the text. */
	{
		char *back = hs_remote_name_unescape(rel);

		FUZZ_ASSERT(back != NULL, "out of memory");
		FUZZ_ASSERT(strlen(back) <= strlen(rel), "unescaping grew \"%s\"", rel);
		free(back);
	}
	free(rel);
	return 0;
}
