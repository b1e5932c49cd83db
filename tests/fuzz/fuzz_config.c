/*
 * The config loader (conf/): whatever hs_config_load accepts, hs_config_print
 * writes so that loading the printed text gives the same configuration,
 * compared as the printed text of both and the keys read.
 *
 * What print cannot give back, and how the round trip deals with it:
 *  - the API keys are printed as api_key = "<redacted>", a setting the
 *    loader does not know: those lines are dropped before loading again, and
 *    the keys are compared directly (both loads read the same key files);
 *  - a password in the proxy URL is printed as "<redacted>": such configs
 *    are loaded and printed, but not loaded back.
 *
 * Key files: $CREDENTIALS_DIRECTORY points at a scratch folder holding
 * upload.key and records.key, so any api_key_file with one of those base
 * names loads.
 */
#include "config.h"

#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_conf.h"

static char dir[] = "/tmp/hs-fuzz-conf-XXXXXX";
static char conf_path[64];

static void remove_dir(void)
{
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
	return 0;
}

static char *print(const struct hs_config *cfg)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		abort();
	hs_config_print(cfg, f);
	if (fclose(f) != 0)
		abort();
	return text;
}

/* text without its api_key lines. */
static void drop_key_lines(char *text)
{
	static const char *const lines[] = {"  api_key = \"<redacted>\";\n",
					    "  token = \"<redacted>\";\n"};
	char *p;

	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		while ((p = strstr(text, lines[i])))
			memmove(p, p + strlen(lines[i]), strlen(p + strlen(lines[i])) + 1);
}

static const char *secret_of(const struct hs_api *api)
{
	return api->secret ? api->secret->value : NULL;
}

static bool same_key(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hs_config *cfg, *again;
	char *cause = NULL, *text, *text2;

	fuzz_write_file(conf_path, data, size, 0644);
	if (!(cfg = fuzz_conf_load(conf_path)))
		return 0;
	text = print(cfg);
	if (strstr(text, "<redacted>@")) {
		/* A proxy password: not printed, so not loaded back. */
		free(text);
		hs_config_free(cfg);
		return 0;
	}
	text2 = strdup(text);
	if (!text2)
		abort();
	drop_key_lines(text2);
	fuzz_write_file(conf_path, text2, strlen(text2), 0644);
	free(text2);
	again = hs_config_load(conf_path, &cause);
	FUZZ_ASSERT(again != NULL, "printed config refused: %s\n%s",
		    cause ? cause : "out of memory", text);
	text2 = print(again);
	FUZZ_ASSERT(strcmp(text, text2) == 0, "printed config loads as another:\n%s\nthen\n%s",
		    text, text2);
	FUZZ_ASSERT(same_key(secret_of(&cfg->upload.api), secret_of(&again->upload.api)) &&
			same_key(secret_of(&cfg->mirror.api), secret_of(&again->mirror.api)),
		    "the keys read differ");
	free(text2);
	free(text);
	hs_config_free(again);
	hs_config_free(cfg);
	return 0;
}
