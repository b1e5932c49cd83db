#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/remote_name.h"

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 when the
 * bytes there are not one: overlong forms, surrogates and code points past
 * U+10FFFF are refused as RFC 3629 says. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
	uint32_t cp;
	size_t len;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	if (cp >= 0xd800 && cp <= 0xdfff)
		return 0;
	return len;
}

/* Reading rel[i + 2] is safe: && stops at the terminating NUL first. */
static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool segments_ok(const char *rel)
{
	const char *seg = rel;

	if (*rel == '\0' || *rel == '/')
		return false;
	for (;;) {
		size_t len = strcspn(seg, "/");
		if (len == 0 || (len == 1 && seg[0] == '.') ||
		    (len == 2 && seg[0] == '.' && seg[1] == '.'))
			return false;
		if (seg[len] == '\0')
			return true;
		seg += len + 1;
	}
}

char *hs_remote_name(const char *prefix, const char *rel)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t plen = strlen(prefix), n = strlen(rel), o;
	const unsigned char *s = (const unsigned char *)rel;
	char *out;

	if (!segments_ok(rel))
		return NULL;
	/* Worst case every byte becomes three. */
	out = malloc(plen + 3 * n + 1);
	if (!out)
		return NULL;
	memcpy(out, prefix, plen);
	o = plen;
	for (size_t i = 0; i < n;) {
		size_t len = utf8_seq_len(s + i, n - i);
		bool control = s[i] < 0x20 || s[i] == 0x7f;
		if (len == 0 || control ||
		    (s[i] == '%' && is_hex(rel[i + 1]) && is_hex(rel[i + 2]))) {
			out[o++] = '%';
			out[o++] = hex[s[i] >> 4];
			out[o++] = hex[s[i] & 0xf];
			i++;
			continue;
		}
		memcpy(out + o, s + i, len);
		o += len;
		i += len;
	}
	out[o] = '\0';
	return out;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return c - 'A' + 10;
}

char *hs_remote_name_unescape(const char *name)
{
	size_t n = strlen(name), o = 0;
	char *out = malloc(n + 1);

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (name[i] == '%' && is_hex(name[i + 1]) && is_hex(name[i + 2])) {
			out[o++] = (char)(hex_value(name[i + 1]) << 4 | hex_value(name[i + 2]));
			i += 2;
		} else {
			out[o++] = name[i];
		}
	}
	out[o] = '\0';
	return out;
}

const struct hs_watch *hs_watch_for_path(const struct hs_config *cfg, const char *abspath,
					 const char **ret_rel)
{
	for (size_t i = 0; i < cfg->n_watches; i++) {
		const struct hs_watch *w = &cfg->watches[i];
		size_t len = strlen(w->path);
		/* The root "/" has no trailing component separator to skip. */
		if (len == 1 && w->path[0] == '/')
			len = 0;
		if (strncmp(abspath, w->path, len) == 0 && abspath[len] == '/' &&
		    abspath[len + 1] != '\0') {
			*ret_rel = abspath + len + 1;
			return w;
		}
	}
	return NULL;
}
