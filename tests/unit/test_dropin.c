/*
 * test_dropin: conf.d/NAME.conf merged after healsync.conf, and the Bearer
 * token settings. Real files in a temporary folder, read by the real
 * loader.
 */
#include "config.h"

#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf/conf.h"

#define UPLOAD_KEY "upload-secret-0123456789abcdef"
#define TOKEN_A	   "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjEwfQ.c2lnbmF0dXJl"
#define TOKEN_B	   "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjIwfQ.c2lnbmF0dXJl"

struct fixture {
	char dir[64];
	char conf[96];
	char dropins[96];
};

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

/* text with every "@D@" replaced by the fixture's folder; caller frees. */
static char *subst(const struct fixture *fx, const char *text)
{
	char *out = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&out, &size);

	assert_non_null(f);
	for (const char *p = text; *p;) {
		if (strncmp(p, "@D@", 3) == 0) {
			fputs(fx->dir, f);
			p += 3;
		} else {
			fputc(*p++, f);
		}
	}
	assert_int_equal(fclose(f), 0);
	return out;
}

/* Writes name (relative to the fixture's folder) with @D@ replaced. */
static void put(const struct fixture *fx, const char *name, const char *text)
{
	char path[256], *body = subst(fx, text);

	snprintf(path, sizeof(path), "%s/%s", fx->dir, name);
	write_file(path, body, 0644);
	free(body);
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	char path[160];

	if (!fx)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/hs-test-dropin-XXXXXX");
	if (!mkdtemp(fx->dir)) {
		free(fx);
		return -1;
	}
	snprintf(fx->conf, sizeof(fx->conf), "%s/healsync.conf", fx->dir);
	snprintf(fx->dropins, sizeof(fx->dropins), "%s/conf.d", fx->dir);
	*state = fx;
	snprintf(path, sizeof(path), "%s/upload.key", fx->dir);
	write_file(path, UPLOAD_KEY "\n", 0600);
	snprintf(path, sizeof(path), "%s/upload.token", fx->dir);
	write_file(path, TOKEN_A "\n", 0640);
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	nftw(fx->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return 0;
}

static struct hs_config *load_ok(const struct fixture *fx)
{
	struct hs_config *cfg;
	char *cause = NULL;

	cfg = hs_config_load(fx->conf, &cause);
	if (!cfg)
		fail_msg("refused: %s", cause ? cause : "out of memory");
	assert_null(cause);
	return cfg;
}

static void expect_error(const struct fixture *fx, const char *want)
{
	char *cause = NULL, *expected = subst(fx, want);
	struct hs_config *cfg = hs_config_load(fx->conf, &cause);

	if (cfg)
		fail_msg("accepted, want: %s", expected);
	assert_non_null(cause);
	assert_string_equal(cause, expected);
	assert_null(strchr(cause, '\n'));
	free(expected);
	free(cause);
}

static char *print_to_string(const struct hs_config *cfg)
{
	char *text = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);

	assert_non_null(f);
	hs_config_print(cfg, f);
	assert_int_equal(fclose(f), 0);
	return text;
}

static const char main_conf[] = "state_dir = \"@D@/state\";\n"
				"upload: {\n"
				"  base_url = \"https://upload.example/ext-api/v1\";\n"
				"  api_key_file = \"@D@/upload.key\";\n"
				"  parallel = 4;\n"
				"  max_attempts = 7;\n"
				"};\n"
				"watch = ( { path = \"/srv/a\"; remote_prefix = \"a/\"; } );\n";

/* Lists add up, single settings override one by one, in byte order of the
 * names, and files that are not NAME.conf are left alone. */
static void test_merge(void **state)
{
	struct fixture *fx = *state;
	struct hs_config *cfg;
	char *text, *want;

	put(fx, "healsync.conf", main_conf);
	assert_int_equal(mkdir(fx->dropins, 0755), 0);
	put(fx, "conf.d/10-site.conf",
	    "upload: { parallel = 2; };\n"
	    "watch = ( { path = \"/srv/b\"; remote_prefix = \"b/\"; } );\n");
	put(fx, "conf.d/20-night.conf",
	    "upload: { parallel = 3; };\nlog: { level = \"debug\"; };\n");
	/* Not read: each would be an error if it were. */
	put(fx, "conf.d/20-night.conf~", "upload: { parallel = 99; };\n");
	put(fx, "conf.d/.#20-night.conf", "garbage(\n");
	put(fx, "conf.d/20-night.conf.dpkg-old", "garbage(\n");
	put(fx, "conf.d/README", "garbage(\n");
	put(fx, "conf.d/.conf", "garbage(\n");

	cfg = load_ok(fx);
	assert_int_equal(cfg->upload.parallel, 3);
	assert_int_equal(cfg->upload.max_attempts, 7); /* untouched by the drop-ins */
	assert_string_equal(cfg->upload.api.base_url, "https://upload.example/ext-api/v1");
	assert_int_equal(cfg->log_level, HS_LOG_DEBUG);
	assert_int_equal(cfg->n_watches, 2);
	assert_string_equal(cfg->watches[0].path, "/srv/a");
	assert_string_equal(cfg->watches[1].path, "/srv/b");
	assert_string_equal(cfg->watches[1].remote_prefix, "b/");
	assert_non_null(cfg->dropins);
	want = subst(fx, "@D@/conf.d/10-site.conf");
	assert_string_equal(cfg->dropins[0], want);
	free(want);
	assert_non_null(cfg->dropins[1]);
	assert_null(cfg->dropins[2]);

	/* check-config's output names each drop-in and what it set. */
	text = print_to_string(cfg);
	want = subst(fx, "# and its drop-ins, in this order:\n"
			 "#   @D@/conf.d/10-site.conf\n"
			 "#   @D@/conf.d/20-night.conf\n"
			 "# set by the drop-ins (the last one wins):\n"
			 "#   upload.parallel  @D@/conf.d/10-site.conf:1\n"
			 "#   watch[1]  @D@/conf.d/10-site.conf:2\n"
			 "#   upload.parallel  @D@/conf.d/20-night.conf:1\n"
			 "#   log.level  @D@/conf.d/20-night.conf:2\n");
	if (!strstr(text, want))
		fail_msg("want\n%s\nin\n%s", want, text);
	assert_non_null(strstr(text, "  parallel = 3;\n"));
	free(want);
	free(text);
	hs_config_free(cfg);
}

/* Byte order, not natural order: "10-" comes before "9-", "B" before "a". */
static void test_byte_order(void **state)
{
	struct fixture *fx = *state;
	struct hs_config *cfg;

	put(fx, "healsync.conf", main_conf);
	assert_int_equal(mkdir(fx->dropins, 0755), 0);
	put(fx, "conf.d/9-late.conf", "upload: { parallel = 9; };\n");
	put(fx, "conf.d/10-early.conf", "upload: { parallel = 10; };\n");
	cfg = load_ok(fx);
	assert_int_equal(cfg->upload.parallel, 9);
	hs_config_free(cfg);

	put(fx, "conf.d/a.conf", "upload: { parallel = 11; };\n");
	put(fx, "conf.d/B.conf", "upload: { parallel = 12; };\n");
	cfg = load_ok(fx);
	assert_int_equal(cfg->upload.parallel, 11);
	hs_config_free(cfg);
}

/* Without conf.d nothing changes; watch lists may start in a drop-in; a
 * drop-in may add a whole section. */
static void test_shapes(void **state)
{
	struct fixture *fx = *state;
	struct hs_config *cfg;

	put(fx, "healsync.conf", main_conf);
	cfg = load_ok(fx);
	assert_non_null(cfg->dropins);
	assert_null(cfg->dropins[0]);
	assert_null(cfg->dropin_settings);
	assert_int_equal(cfg->n_watches, 1);
	hs_config_free(cfg);

	put(fx, "healsync.conf",
	    "state_dir = \"@D@/state\";\n"
	    "upload: { base_url = \"https://u.example/v1\";"
	    " api_key_file = \"@D@/upload.key\"; };\n"
	    "watch = [];\n");
	assert_int_equal(mkdir(fx->dropins, 0755), 0);
	put(fx, "conf.d/lab.conf",
	    "watch = ( { path = \"/srv/lab\"; }, { path = \"/srv/xray\"; } );\n"
	    "mirror: { base_url = \"https://r.example/v1\"; api_key_file = \"@D@/upload.key\"; "
	    "};\n");
	put(fx, "conf.d/zz-none.conf", "watch = [];\n"); /* adds nothing, removes nothing */
	cfg = load_ok(fx);
	assert_int_equal(cfg->n_watches, 2);
	assert_string_equal(cfg->watches[1].path, "/srv/xray");
	assert_true(cfg->mirror.enabled);
	assert_string_equal(cfg->mirror.api.base_url, "https://r.example/v1");
	hs_config_free(cfg);
}

/* Every error in a drop-in names the drop-in, its line and the setting. */
static void test_errors(void **state)
{
	struct fixture *fx = *state;
	char path[160];

	put(fx, "healsync.conf", main_conf);
	assert_int_equal(mkdir(fx->dropins, 0755), 0);

	put(fx, "conf.d/50-x.conf", "upload: {\n  parallel = 2;\n  max_attempts = = 3;\n};\n");
	expect_error(fx, "@D@/conf.d/50-x.conf:3: syntax error");

	put(fx, "conf.d/50-x.conf", "\nupload: {\n  paralel = 2;\n};\n");
	expect_error(fx, "@D@/conf.d/50-x.conf:3: upload.paralel: unknown setting");

	put(fx, "conf.d/50-x.conf", "upload: { parallel = 0; };\n");
	expect_error(fx, "@D@/conf.d/50-x.conf:1: upload.parallel: 0 is out of range (1 to 64)");

	put(fx, "conf.d/50-x.conf", "\n\nupload: { part_size = 5368709120; };\n");
	expect_error(fx, "@D@/conf.d/50-x.conf:3: upload.part_size: 5368709120 does not fit in 32 "
			 "bits; write it as a string (\"5368709120\") or as 5368709120L");

	put(fx, "conf.d/50-x.conf", "watch = (\n  { path = \"/srv/a\"; }\n);\n");
	expect_error(fx, "@D@/conf.d/50-x.conf:2: watch[1].path: \"/srv/a\" is already watched "
			 "by watch[0]");

	put(fx, "conf.d/50-x.conf", "upload = 5;\n");
	expect_error(fx,
		     "@D@/conf.d/50-x.conf:1: upload: wrong type: want a group: upload: { ... };");

	/* A drop-in that is a folder, and a conf.d that is a file. */
	snprintf(path, sizeof(path), "%s/50-x.conf", fx->dropins);
	assert_int_equal(unlink(path), 0);
	snprintf(path, sizeof(path), "%s/60-d.conf", fx->dropins);
	assert_int_equal(mkdir(path, 0755), 0);
	expect_error(fx, "@D@/conf.d/60-d.conf: is a directory");
	assert_int_equal(rmdir(path), 0);
	assert_int_equal(rmdir(fx->dropins), 0);
	put(fx, "conf.d", "not a folder\n");
	expect_error(fx, "@D@/conf.d: Not a directory");
}

/* auth = "bearer" reads token_file instead of api_key_file. */
static void test_bearer(void **state)
{
	struct fixture *fx = *state;
	struct hs_config *cfg;
	char path[160], *text, *cause = NULL;
	bool changed = true;

	put(fx, "healsync.conf",
	    "upload: {\n"
	    "  base_url = \"https://upload.example/ext-api/v1\";\n"
	    "  auth = \"bearer\";\n"
	    "  token_file = \"@D@/upload.token\";\n"
	    "};\n");
	cfg = load_ok(fx);
	assert_int_equal(cfg->upload.api.auth, HS_AUTH_BEARER);
	assert_string_equal(cfg->upload.api.secret->value, TOKEN_A);
	assert_null(cfg->upload.api.api_key_file);
	snprintf(path, sizeof(path), "%s/upload.token", fx->dir);
	assert_string_equal(hs_api_secret_file(&cfg->upload.api), path);
	text = print_to_string(cfg);
	assert_non_null(strstr(text, "  auth = \"bearer\";\n"));
	assert_non_null(strstr(text, "  token = \"<redacted>\";\n"));
	assert_null(strstr(text, "eyJ"));
	free(text);

	/* A rotated token is taken; the same one is not a change. */
	assert_int_equal(hs_api_reread(&cfg->upload.api, &changed, &cause), 0);
	assert_false(changed);
	write_file(path, TOKEN_B "\n", 0640);
	assert_int_equal(hs_api_reread(&cfg->upload.api, &changed, &cause), 0);
	assert_true(changed);
	assert_string_equal(cfg->upload.api.secret->value, TOKEN_B);
	/* A file gone bad keeps the old token and says why. */
	write_file(path, TOKEN_A "\n", 0644);
	assert_int_equal(hs_api_reread(&cfg->upload.api, &changed, &cause), -1);
	assert_non_null(cause);
	assert_non_null(strstr(cause, "readable by others"));
	assert_null(strstr(cause, "eyJ"));
	free(cause);
	assert_string_equal(cfg->upload.api.secret->value, TOKEN_B);
	write_file(path, TOKEN_A "\n", 0640);
	hs_config_free(cfg);

	/* The main file's key, turned into a token by a drop-in. */
	put(fx, "healsync.conf", main_conf);
	assert_int_equal(mkdir(fx->dropins, 0755), 0);
	put(fx, "conf.d/token.conf",
	    "upload: { auth = \"bearer\"; token_file = \"@D@/upload.token\"; };\n");
	cfg = load_ok(fx);
	assert_int_equal(cfg->upload.api.auth, HS_AUTH_BEARER);
	assert_string_equal(cfg->upload.api.secret->value, TOKEN_A);
	hs_config_free(cfg);

	/* Mistakes, each named with its file and line. */
	put(fx, "conf.d/token.conf", "upload: {\n  auth = \"jwt\";\n};\n");
	expect_error(fx, "@D@/conf.d/token.conf:2: upload.auth: bad value \"jwt\" (want "
			 "\"api-key\" or \"bearer\")");
	put(fx, "conf.d/token.conf", "upload: { auth = \"bearer\"; };\n");
	expect_error(fx, "@D@/conf.d/token.conf:1: upload.auth: \"bearer\" needs token_file = "
			 "\"/path/of/the/token\"");
	put(fx, "conf.d/token.conf", "upload: { token_file = \"@D@/upload.token\"; };\n");
	expect_error(fx, "@D@/conf.d/token.conf:1: upload.token_file: is only used with auth = "
			 "\"bearer\"; add that line, or remove this one");
	put(fx, "conf.d/token.conf",
	    "upload: { auth = \"bearer\"; token_file = \"@D@/missing.token\"; };\n");
	expect_error(fx, "@D@/conf.d/token.conf:1: upload.token_file: @D@/missing.token: No such "
			 "file or directory");
	write_file(path, TOKEN_A "\n", 0604);
	put(fx, "conf.d/token.conf",
	    "upload: { auth = \"bearer\"; token_file = \"@D@/upload.token\"; };\n");
	expect_error(fx, "@D@/conf.d/token.conf:1: upload.token_file: @D@/upload.token: is "
			 "readable by others (mode 0604); run chmod o-rwx on it");

	/* Commands that need no secret read no token either. */
	cfg = hs_config_load_opts(fx->conf, HS_CONFIG_NO_KEYS, &cause);
	assert_non_null(cfg);
	assert_null(cfg->upload.api.secret);
	hs_config_free(cfg);
}

static void test_names(void **state)
{
	char *dir;

	(void)state;
	assert_true(hs_config_is_dropin_name("10-site.conf"));
	assert_true(hs_config_is_dropin_name("a.conf"));
	assert_false(hs_config_is_dropin_name(".conf"));
	assert_false(hs_config_is_dropin_name(".#a.conf"));
	assert_false(hs_config_is_dropin_name(".hidden.conf"));
	assert_false(hs_config_is_dropin_name("a.conf~"));
	assert_false(hs_config_is_dropin_name("a.conf.dpkg-old"));
	assert_false(hs_config_is_dropin_name("a.conf.rpmsave"));
	assert_false(hs_config_is_dropin_name("a.CONF"));
	assert_false(hs_config_is_dropin_name("a.conf.swp"));
	dir = hs_config_dropin_dir("/etc/healsync/healsync.conf");
	assert_string_equal(dir, "/etc/healsync/conf.d");
	free(dir);
	dir = hs_config_dropin_dir("healsync.conf");
	assert_string_equal(dir, "conf.d");
	free(dir);
	dir = hs_config_dropin_dir("/healsync.conf");
	assert_string_equal(dir, "/conf.d");
	free(dir);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_merge),  T(test_byte_order), T(test_shapes),
	    T(test_errors), T(test_bearer),	T(test_names),
	};

	unsetenv("CREDENTIALS_DIRECTORY");
	unsetenv("HEALSYNC_CONFIG");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
