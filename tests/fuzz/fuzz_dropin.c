/*
 * The drop-in merge (conf/dropin.c): a main file and up to three drop-ins
 * in its conf.d load as one configuration, or fail with a one-line cause;
 * and what loads is what one file would say, with no drop-ins at all: the
 * printed configuration, written alone where no conf.d is, loads and
 * prints the same again. The comments naming the drop-ins and what each
 * set are left out of that comparison, and the key lines as in
 * fuzz_config.c.
 *
 * Input: the main file, then each drop-in, separated by NUL bytes (a
 * configuration holds none). Without a NUL the whole input is one drop-in
 * beside a small valid main file, so that every mutation tests a merge.
 */
#include "config.h"

#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_conf.h"

#define MAX_DROPINS 3

static const char base_main[] = "upload: {\n"
				"  base_url = \"https://upload.example.invalid/v1\";\n"
				"  api_key_file = \"/keys/upload.key\";\n"
				"};\n"
				"watch = ( { path = \"/srv/inbox\"; } );\n";

static char dir[] = "/tmp/hs-fuzz-dropin-XXXXXX";
static char conf_path[96], dropin_dir[96], alone_dir[96], alone_path[128];

static void dropin_path(char *buf, size_t len, int i)
{
	snprintf(buf, len, "%s/%d0-fuzz.conf", dropin_dir, i + 1);
}

static void remove_dir(void)
{
	char path[160];

	for (int i = 0; i < MAX_DROPINS; i++) {
		dropin_path(path, sizeof(path), i);
		unlink(path);
	}
	rmdir(dropin_dir);
	unlink(alone_path);
	rmdir(alone_dir);
	unlink(conf_path);
	fuzz_conf_clean(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_conf_init(dir);
	atexit(remove_dir);
	snprintf(conf_path, sizeof(conf_path), "%s/healsync.conf", dir);
	snprintf(dropin_dir, sizeof(dropin_dir), "%s/conf.d", dir);
	snprintf(alone_dir, sizeof(alone_dir), "%s/alone", dir);
	snprintf(alone_path, sizeof(alone_path), "%s/healsync.conf", alone_dir);
	if (mkdir(dropin_dir, 0755) != 0 || mkdir(alone_dir, 0755) != 0)
		abort();
	return 0;
}

/* cfg as printed, without comment and key lines: what one file says. */
static char *settings_of(const struct hs_config *cfg)
{
	char *text = NULL, *out, *p, *q;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		abort();
	hs_config_print(cfg, f);
	if (fclose(f) != 0 || !(out = malloc(len + 1)))
		abort();
	q = out;
	for (p = text; *p;) {
		char *end = strchr(p, '\n');
		size_t n = end ? (size_t)(end - p + 1) : strlen(p);
		const char *s = p + strspn(p, " ");

		if (*s != '#' && strncmp(s, "api_key = \"<redacted>\";", 23) != 0 &&
		    strncmp(s, "token = \"<redacted>\";", 21) != 0) {
			memcpy(q, p, n);
			q += n;
		}
		p += n;
	}
	*q = '\0';
	free(text);
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *part[1 + MAX_DROPINS], *end = data + size;
	size_t len[1 + MAX_DROPINS], n = 0;
	struct hs_config *cfg, *alone;
	char *cause = NULL, *text, *text2, path[160];

	/* Split at the NULs: the main file, then the drop-ins. */
	if (!memchr(data, 0, size)) {
		part[0] = (const uint8_t *)base_main;
		len[0] = sizeof(base_main) - 1;
		part[1] = data;
		len[1] = size;
		n = 2;
	} else {
		const uint8_t *p = data;

		for (;;) {
			const uint8_t *nul = memchr(p, 0, (size_t)(end - p));
			bool last = !nul || n == MAX_DROPINS; /* the last takes the rest */

			part[n] = p;
			len[n] = last ? (size_t)(end - p) : (size_t)(nul - p);
			n++;
			if (last)
				break;
			p = nul + 1;
		}
	}
	fuzz_write_file(conf_path, part[0], len[0], 0644);
	for (int i = 0; i < MAX_DROPINS; i++) {
		dropin_path(path, sizeof(path), i);
		if ((size_t)i + 1 < n)
			fuzz_write_file(path, part[i + 1], len[i + 1], 0644);
		else
			unlink(path);
	}

	if (!(cfg = fuzz_conf_load(conf_path)))
		return 0;
	text = settings_of(cfg);
	if (strstr(text, "<redacted>@")) {
		/* A proxy password: not printed, so not loaded back. */
		free(text);
		hs_config_free(cfg);
		return 0;
	}
	fuzz_write_file(alone_path, text, strlen(text), 0644);
	alone = hs_config_load(alone_path, &cause);
	FUZZ_ASSERT(alone != NULL, "the merged config, printed, is refused alone: %s\n%s",
		    cause ? cause : "out of memory", text);
	text2 = settings_of(alone);
	FUZZ_ASSERT(strcmp(text, text2) == 0,
		    "the merged config loads alone as another:\n%s\nthen\n%s", text, text2);
	free(text2);
	free(text);
	hs_config_free(alone);
	hs_config_free(cfg);
	return 0;
}
