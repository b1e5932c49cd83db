/*
 * fuzz_conf: the scratch folder the configuration targets load from.
 *
 * fuzz_conf_init() makes DIR (a mkdtemp template) holding upload.key and
 * records.key, and points $CREDENTIALS_DIRECTORY at it, so that any
 * api_key_file with one of those base names loads; fuzz_conf_clean()
 * removes the two keys and DIR (the target removes what it added first).
 * Both abort on failure: a target without its folder tests nothing.
 *
 * fuzz_conf_load() loads path as the daemon would: NULL when it is
 * refused, which must be with a cause on one line.
 */
#ifndef HS_TESTS_FUZZ_FUZZ_CONF_H
#define HS_TESTS_FUZZ_FUZZ_CONF_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "tests/fuzz/fuzz.h"

static inline void fuzz_write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	FILE *f = fopen(path, "we");

	if (!f || fwrite(data, 1, len, f) != len || fchmod(fileno(f), mode) != 0 || fclose(f) != 0)
		abort();
}

static inline void fuzz_conf_init(char *dir)
{
	char path[4096];

	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof(path), "%s/upload.key", dir);
	fuzz_write_file(path, "fuzz-upload-key\n", 16, 0600);
	snprintf(path, sizeof(path), "%s/records.key", dir);
	fuzz_write_file(path, "fuzz-records-key\n", 17, 0600);
	setenv("CREDENTIALS_DIRECTORY", dir, 1);
}

static inline void fuzz_conf_clean(const char *dir)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/upload.key", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/records.key", dir);
	unlink(path);
	rmdir(dir);
}

static inline struct hs_config *fuzz_conf_load(const char *path)
{
	char *cause = NULL;
	struct hs_config *cfg = hs_config_load(path, &cause);

	if (!cfg) {
		FUZZ_ASSERT(!cause || !strchr(cause, '\n'), "cause on two lines: %s", cause);
		free(cause);
		return NULL;
	}
	FUZZ_ASSERT(cause == NULL, "loaded with a cause: %s", cause);
	return cfg;
}

#endif
