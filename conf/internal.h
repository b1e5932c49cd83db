/*
 * internal: what the files of conf/ share and nothing outside conf/ uses.
 *
 *   keyfile.c  reading an API key into memory kept out of core dumps
 *   bigint.c   finding integers that libconfig 1.5 would silently wrap
 *   dropin.c   listing conf.d and merging a drop-in's tree into the main one
 */
#ifndef HS_CONF_INTERNAL_H
#define HS_CONF_INTERNAL_H

#include <libconfig.h>
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

/*
 * The names of the drop-ins in folder dir (hs_config_is_dropin_name()),
 * sorted bytewise, as a NULL-terminated array the caller frees with
 * hs_dropin_names_free(). A missing folder has none. Returns 0, or -1 with
 * an allocated *cause "DIR: what is wrong" (NULL: out of memory): a folder
 * that cannot be read must not make drop-ins vanish without a word.
 */
int hs_dropin_list(const char *dir, char ***ret_names, char **cause);
void hs_dropin_names_free(char **names);

/*
 * Merges the tree of a drop-in (from) into the main one (root):
 *  - a group merges into the group of the same name, member by member;
 *  - the root's "watch" list gets from's entries appended;
 *  - anything else replaces the setting of that name, or is added.
 * Every setting it makes is a deep copy, given the hook origin(from-setting)
 * returns, so that errors about it can name the drop-in's file and line.
 * note(dotted name, from-setting) is called for each setting the drop-in
 * sets (each watch entry appended counts as one). Returns 0, or -1 when a
 * callback fails or memory runs out.
 */
struct hs_merge_cb {
	void *(*origin)(const config_setting_t *from, void *arg);
	int (*note)(const char *name, const config_setting_t *from, void *arg);
	void *arg;
};
int hs_config_merge(config_setting_t *root, const config_setting_t *from,
		    const struct hs_merge_cb *cb);

#endif
