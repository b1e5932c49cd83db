/*
 * bigint: integer literals that libconfig 1.5 would silently wrap.
 *
 * libconfig 1.5 reads a literal without an L suffix as (int)strtol(), so
 * "part_size = 5368709120;" becomes 1073741824 and nothing says so. This
 * file walks the text the way libconfig's scanner does, just far enough to
 * tell values from names, strings and comments, and remembers every decimal
 * or hex literal that does not fit an int together with what libconfig
 * turned it into.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/internal.h"

#define MAX_INCLUDE_DEPTH 10 /* as libconfig */

struct scan {
	const char *path; /* the main file */
	const char *include_dir;
	struct hs_bigints *out;
	char **cause;
};

static int scan_file(struct scan *sc, const char *from, unsigned line, const char *name, int depth);

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_name_char(char c)
{
	return is_alpha(c) || is_digit(c) || c == '-' || c == '_' || c == '*';
}

/*
 * Reads a whole file into *ret. Returns 0, 1 when it cannot be read (then
 * libconfig says why), 2 when it is not a regular file (libconfig's scanner
 * would exit the process reading a folder, or wait for ever on a FIFO) or -1
 * when out of memory.
 */
static int slurp(const char *path, char **ret)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	struct stat st;
	char *text = NULL;
	size_t size = 0, n = 0, got;
	int rc = 1;
	FILE *f;

	if (fd < 0)
		return 1;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || !(f = fdopen(fd, "r"))) {
		rc = fstat(fd, &st) == 0 && !S_ISREG(st.st_mode) ? 2 : 1;
		close(fd);
		return rc;
	}
	do {
		if (size - n < 4096) {
			char *grown = realloc(text, size + 65536);

			if (!grown) {
				rc = -1;
				goto fail;
			}
			text = grown;
			size += 65536;
		}
		got = fread(text + n, 1, size - n - 1, f);
		n += got;
	} while (got > 0);
	if (ferror(f))
		goto fail;
	fclose(f);
	text[n] = '\0';
	*ret = text;
	return 0;
fail:
	fclose(f);
	free(text);
	return rc;
}

static int remember(struct scan *sc, const char *name, unsigned line, const char *tok, size_t len,
		    int wrapped)
{
	struct hs_bigint *grown, *b;

	grown = reallocarray(sc->out->v, sc->out->n + 1, sizeof(*grown));
	if (!grown)
		return -1;
	sc->out->v = grown;
	b = &grown[sc->out->n];
	*b = (struct hs_bigint){.line = line, .wrapped = wrapped};
	if (name && !(b->file = strdup(name)))
		return -1;
	if (len >= sizeof(b->text))
		snprintf(b->text, sizeof(b->text), "%.*s...", (int)sizeof(b->text) - 4, tok);
	else
		snprintf(b->text, sizeof(b->text), "%.*s", (int)len, tok);
	sc->out->n++;
	return 0;
}

/* Looks at one numeric token; only whole decimal and hex numbers matter. */
static int check_number(struct scan *sc, const char *name, unsigned line, const char *tok,
			size_t len)
{
	char buf[128];
	size_t prefix, start, used, digits = 0;
	int hex = len > 2 && tok[0] == '0' && (tok[1] == 'x' || tok[1] == 'X');

	prefix = hex ? 2 : (tok[0] == '-' || tok[0] == '+');
	for (size_t i = prefix; i < len; i++, digits++)
		if (!(is_digit(tok[i]) || (hex && strchr("abcdefABCDEF", tok[i]))))
			return 0; /* a float, or an L suffix: libconfig reads it right */
	if (digits == 0)
		return 0;
	/* Leading zeros change nothing but could push the digits that matter
	 * out of buf: "000...0005000000000" wraps as "5000000000" does. */
	for (start = prefix; start + 1 < len && tok[start] == '0'; start++)
		;
	used = len - start;
	if (used > sizeof(buf) - 1 - prefix)
		used = sizeof(buf) - 1 - prefix; /* still far beyond 32 bits */
	memcpy(buf, tok, prefix);
	memcpy(buf + prefix, tok + start, used);
	buf[prefix + used] = '\0';
	if (hex) {
		unsigned long v = strtoul(buf, NULL, 16);

		if (v > INT_MAX)
			return remember(sc, name, line, tok, len, (int)(unsigned)v);
	} else {
		long v = strtol(buf, NULL, 10);

		if (v > INT_MAX || v < INT_MIN)
			return remember(sc, name, line, tok, len, (int)v);
	}
	return 0;
}

/* The file name of @include "NAME", which libconfig reads without escapes. */
static int scan_include(struct scan *sc, const char *from, unsigned line, const char *p, int depth)
{
	const char *end = strchr(p, '"');
	char *name;
	int rc;

	if (!end)
		return 0;
	name = strndup(p, (size_t)(end - p));
	if (!name)
		return -1;
	rc = depth < MAX_INCLUDE_DEPTH ? scan_file(sc, from, line, name, depth + 1) : 0;
	free(name);
	return rc;
}

static int scan_text(struct scan *sc, const char *name, const char *s, int depth)
{
	unsigned line = 1;

	while (*s) {
		if (*s == '\n') {
			line++;
			s++;
		} else if (*s == '#' || (s[0] == '/' && s[1] == '/')) {
			s += strcspn(s, "\n");
		} else if (s[0] == '/' && s[1] == '*') {
			for (s += 2; *s && !(s[0] == '*' && s[1] == '/'); s++)
				line += *s == '\n';
			s += *s ? 2 : 0;
		} else if (*s == '"') {
			for (s++; *s && *s != '"'; s++) {
				if (*s == '\\' && s[1])
					s++;
				line += *s == '\n';
			}
			s += *s ? 1 : 0;
		} else if (strncmp(s, "@include", 8) == 0) {
			s += 8 + strspn(s + 8, " \t");
			if (*s == '"' && scan_include(sc, name, line, s + 1, depth) != 0)
				return -1;
		} else if (is_alpha(*s) || *s == '*') {
			while (is_name_char(*s))
				s++;
		} else if (is_digit(*s) || ((*s == '-' || *s == '+') && is_digit(s[1]))) {
			const char *tok = s++;

			while (is_alpha(*s) || is_digit(*s) || *s == '.' ||
			       ((*s == '-' || *s == '+') && (s[-1] == 'e' || s[-1] == 'E')))
				s++;
			if (check_number(sc, name, line, tok, (size_t)(s - tok)) != 0)
				return -1;
		} else {
			s++;
		}
	}
	return 0;
}

/* name: as written after @include on that line of file from (NULL: the main
 * file). */
static int scan_file(struct scan *sc, const char *from, unsigned line, const char *name, int depth)
{
	char *path = NULL, *text, *fpath = NULL;
	int rc;

	if (name[0] != '/' && sc->include_dir &&
	    asprintf(&path, "%s/%s", sc->include_dir, name) < 0)
		return -1;
	rc = slurp(path ? path : name, &text);
	free(path);
	if (rc == 2) {
		if (from && from[0] != '/' && sc->include_dir &&
		    asprintf(&fpath, "%s/%s", sc->include_dir, from) < 0)
			return -1;
		if (asprintf(sc->cause, "%s:%u: @include \"%s\": is not a regular file",
			     fpath  ? fpath
			     : from ? from
				    : sc->path,
			     line, name) < 0)
			*sc->cause = NULL;
		free(fpath);
		return -1;
	}
	if (rc != 0)
		return rc < 0 ? -1 : 0;
	rc = scan_text(sc, name, text, depth);
	free(text);
	return rc;
}

int hs_bigint_scan(const char *path, const char *include_dir, struct hs_bigints *ret, char **cause)
{
	struct scan sc = {.path = path, .include_dir = include_dir, .out = ret, .cause = cause};
	char *text;
	int rc;

	*ret = (struct hs_bigints){0};
	*cause = NULL;
	rc = slurp(path, &text);
	if (rc != 0)
		return rc < 0 ? -1 : 0;
	rc = scan_text(&sc, NULL, text, 0);
	free(text);
	if (rc != 0)
		hs_bigint_free(ret);
	return rc;
}

const struct hs_bigint *hs_bigint_find(const struct hs_bigints *b, const char *file, unsigned line,
				       int value)
{
	for (size_t i = 0; i < b->n; i++) {
		const struct hs_bigint *x = &b->v[i];

		if (x->line == line && x->wrapped == value &&
		    (x->file && file ? strcmp(x->file, file) == 0 : x->file == file))
			return x;
	}
	return NULL;
}

void hs_bigint_free(struct hs_bigints *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->v[i].file);
	free(b->v);
	*b = (struct hs_bigints){0};
}
