#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
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

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return c - 'A' + 10;
}

static bool is_control(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* Whether s[i] starts "%XX" naming a byte that escaping produces. */
static bool is_escape_at(const char *s, size_t i)
{
	int v;

	if (s[i] != '%' || !is_hex(s[i + 1]) || !is_hex(s[i + 2]))
		return false;
	v = hex_value(s[i + 1]) << 4 | hex_value(s[i + 2]);
	return is_control((unsigned char)v) || v >= 0x80 || v == '%';
}

/* Whether rel must travel escaped (see remote_name.h). */
static bool needs_escape(const char *rel, size_t n)
{
	const unsigned char *s = (const unsigned char *)rel;

	for (size_t i = 0; i < n;) {
		size_t len = utf8_seq_len(s + i, n - i);

		if (len == 0 || is_control(s[i]) || is_escape_at(rel, i))
			return true;
		i += len;
	}
	return false;
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
	if (!needs_escape(rel, n)) {
		out = malloc(plen + n + 1);
		if (out) {
			memcpy(out, prefix, plen);
			memcpy(out + plen, rel, n + 1);
		}
		return out;
	}
	/* Worst case every byte becomes three. */
	out = malloc(plen + 3 * n + 1);
	if (!out)
		return NULL;
	memcpy(out, prefix, plen);
	o = plen;
	for (size_t i = 0; i < n;) {
		size_t len = utf8_seq_len(s + i, n - i);
		if (len == 0 || is_control(s[i]) ||
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

char *hs_remote_name_unescape(const char *name)
{
	size_t n = strlen(name), o = 0;
	char *out = malloc(n + 1);

	bool escaped = false;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n && !escaped; i++)
		escaped = is_escape_at(name, i);
	for (size_t i = 0; i < n; i++) {
		if (escaped && name[i] == '%' && is_hex(name[i + 1]) && is_hex(name[i + 2])) {
			out[o++] = (char)(hex_value(name[i + 1]) << 4 | hex_value(name[i + 2]));
			i += 2;
		} else {
			out[o++] = name[i];
		}
	}
	out[o] = '\0';
	return out;
}

/* Whether path lies below root (by whole components, not root itself);
 * *ret_rel then points into path after root and its "/". */
static bool below(const char *root, const char *path, const char **ret_rel)
{
	size_t len = strlen(root);

	/* The root "/" has no trailing component separator to skip. */
	if (len == 1 && root[0] == '/')
		len = 0;
	if (strncmp(path, root, len) != 0 || path[len] != '/' || path[len + 1] == '\0')
		return false;
	*ret_rel = path + len + 1;
	return true;
}

int hs_watch_for_path(const struct hs_config *cfg, const char *abspath,
		      const struct hs_watch **ret_w, char **ret_path, const char **ret_rel)
{
	for (size_t i = 0; i < cfg->n_watches; i++) {
		const struct hs_watch *w = &cfg->watches[i];
		const char *rel = NULL;
		char *real = NULL, *path;
		bool root = strcmp(w->path, "/") == 0;

		if (!below(w->path, abspath, &rel)) {
			/* A folder missing now holds nothing. */
			if (!(real = realpath(w->path, NULL)) && errno == ENOMEM)
				return -1;
			if (!real || !below(real, abspath, &rel)) {
				free(real);
				continue;
			}
			free(real); /* rel points into abspath */
		}
		if (asprintf(&path, "%s%s%s", w->path, root ? "" : "/", rel) < 0)
			return -1;
		*ret_w = w;
		*ret_rel = path + strlen(path) - strlen(rel);
		*ret_path = path;
		return 1;
	}
	return 0;
}
