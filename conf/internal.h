/*
 * internal: what the files of conf/ share and nothing outside conf/ uses.
 *
 *   keyfile.c  reading an API key into memory kept out of core dumps
 *   bigint.c   finding integers that libconfig 1.5 would silently wrap
 */
#ifndef HS_CONF_INTERNAL_H
#define HS_CONF_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

/* The longest API key accepted, in bytes. */
#define HS_KEY_MAX 4096

/*
 * Reads the key that api_key_file names: $CREDENTIALS_DIRECTORY/<basename>
 * when that variable is set (systemd LoadCredential=), else the file itself.
 * Trailing whitespace is dropped. Refuses a file others may read, an empty
 * key, control characters and keys over HS_KEY_MAX bytes. Returns the key,
 * to be released with hs_key_free(), or NULL and an allocated *cause that
 * names the file read and what is wrong with it (NULL: out of memory).
 */
char *hs_key_read(const char *api_key_file, char **cause);
/* Wipes and releases a key. Accepts NULL; returns NULL. */
char *hs_key_free(char *key);

/*
 * libconfig 1.5 stores "x = 5000000000;" as the 32-bit int 705032704 without
 * a word: an integer literal only becomes 64-bit with an L suffix. To refuse
 * such values instead of using wrapped ones, the file (and what it
 * @includes) is scanned for decimal or hex literals without L that do not
 * fit an int, and each is remembered with the value libconfig made of it;
 * the loader then refuses an int setting that matches one.
 */
struct hs_bigint {
	char *file; /* as libconfig names it; NULL for the main file */
	unsigned line;
	int wrapped;   /* what libconfig stored */
	char text[24]; /* the literal as written, maybe shortened */
};

struct hs_bigints {
	struct hs_bigint *v;
	size_t n;
};

/*
 * Scans path (the main file) and the files it includes, relative ones from
 * include_dir. Must run before libconfig reads the file: an @include naming
 * a folder (or a FIFO, a device) would make libconfig's scanner exit the
 * process, so it is refused here with *cause "FILE:LINE: @include "X": is
 * not a regular file". Returns 0, or -1 with *cause set (NULL: out of
 * memory). Unreadable files are skipped: libconfig reports them.
 */
int hs_bigint_scan(const char *path, const char *include_dir, struct hs_bigints *ret, char **cause);
/* The literal that produced value on that line of that file, if any. */
const struct hs_bigint *hs_bigint_find(const struct hs_bigints *b, const char *file, unsigned line,
				       int value);
void hs_bigint_free(struct hs_bigints *b);

#endif
