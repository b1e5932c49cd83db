/*
 * hs_config_load: every typed value and default, the printed form, and each
 * error with its exact "FILE:LINE: SETTING: what" line. Each test works in
 * its own temporary folder holding the config and two key files; "@D@" in
 * the texts below stands for that folder, "@F@" for the config file.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf/conf.h"
#include "conf/units.h"

#define KiB 1024ULL
#define MiB (1024 * KiB)
#define GiB (1024 * MiB)

#define UPLOAD_KEY  "upload-secret-0123456789abcdef"
#define RECORDS_KEY "records-secret-fedcba9876543210"

/* Lines 1 to 4; a test's own settings start on line 5. */
#define UPLOAD                                                                                     \
	"upload: {\n"                                                                              \
	"  base_url = \"https://upload.example/ext-api/v1\";\n"                                    \
	"  api_key_file = \"@D@/upload.key\";\n"                                                   \
	"};\n"

/* An upload section whose line 4 is the given setting. */
#define UPLOAD_WITH(setting)                                                                       \
	"upload: {\n"                                                                              \
	"  base_url = \"https://upload.example/ext-api/v1\";\n"                                    \
	"  api_key_file = \"@D@/upload.key\";\n"                                                   \
	"  " setting "\n"                                                                          \
	"};\n"

/* An upload section with the given base URL on line 2. */
#define UPLOAD_URL(url)                                                                            \
	"upload: {\n"                                                                              \
	"  base_url = \"" url "\";\n"                                                              \
	"  api_key_file = \"@D@/upload.key\";\n"                                                   \
	"};\n"

/* A mirror section on lines 5 to 9 whose line 8 is the given setting. */
#define MIRROR_WITH(setting)                                                                       \
	"mirror: {\n"                                                                              \
	"  base_url = \"https://api.healos.ai/ext-api/v1\";\n"                                     \
	"  api_key_file = \"@D@/records.key\";\n"                                                  \
	"  " setting "\n"                                                                          \
	"};\n"

struct fixture {
	char dir[64];
	char conf[96];
};

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

static const char *fx_path(const struct fixture *fx, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", fx->dir, name);
	return buf;
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	char path[160];

	if (!fx)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/hs-test-conf-XXXXXX");
	if (!mkdtemp(fx->dir)) {
		free(fx);
		return -1;
	}
	snprintf(fx->conf, sizeof(fx->conf), "%s/healsync.conf", fx->dir);
	*state = fx;
	write_file(fx_path(fx, "upload.key", path, sizeof(path)), UPLOAD_KEY "\n", 0600);
	write_file(fx_path(fx, "records.key", path, sizeof(path)), RECORDS_KEY "\n", 0640);
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

	unsetenv("CREDENTIALS_DIRECTORY");
	nftw(fx->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return 0;
}

/* text with every from replaced by to; the caller frees it. */
static char *replace(const char *text, const char *from, const char *to)
{
	char *out = NULL;
	size_t size = 0, n = strlen(from);
	FILE *f = open_memstream(&out, &size);

	assert_non_null(f);
	for (const char *p = text; *p;) {
		if (strncmp(p, from, n) == 0) {
			fputs(to, f);
			p += n;
		} else {
			fputc(*p++, f);
		}
	}
	assert_int_equal(fclose(f), 0);
	return out;
}

/* text with @D@ and @F@ replaced; the caller frees it. */
static char *subst(const struct fixture *fx, const char *text)
{
	char *dir = replace(text, "@D@", fx->dir), *out = replace(dir, "@F@", fx->conf);

	free(dir);
	return out;
}

static void fx_file(const struct fixture *fx, const char *name, const char *text, mode_t mode)
{
	char path[160], *body = subst(fx, text);

	snprintf(path, sizeof(path), "%s/%s", fx->dir, name);
	write_file(path, body, mode);
	free(body);
}

static struct hs_config *load_ok(const struct fixture *fx, const char *text)
{
	struct hs_config *cfg;
	char *cause = NULL;

	fx_file(fx, "healsync.conf", text, 0644);
	cfg = hs_config_load(fx->conf, &cause);
	if (!cfg)
		fail_msg("refused: %s", cause ? cause : "out of memory");
	assert_null(cause);
	return cfg;
}

static void expect_error(const struct fixture *fx, const char *text, const char *want)
{
	struct hs_config *cfg;
	char *cause = NULL, *expected = subst(fx, want);

	fx_file(fx, "healsync.conf", text, 0644);
	cfg = hs_config_load(fx->conf, &cause);
	if (cfg)
		fail_msg("accepted, want: %s", expected);
	assert_non_null(cause);
	assert_string_equal(cause, expected);
	assert_null(strchr(cause, '\n'));
	free(expected);
	free(cause);
}

static const char full_config[] =
    "# the SPEC 3 example, in a temporary folder\n"
    "state_dir = \"@D@/state\";\n"
    "\n"
    "upload: {\n"
    "  base_url = \"https://upload.example/ext-api/v1/\";\n"
    "  api_key_file = \"@D@/upload.key\";\n"
    "  multipart_threshold = \"64MiB\";\n"
    "  part_size = \"16MiB\";\n"
    "  parallel = 4;\n"
    "  bandwidth = \"08:00,2MiB/s 18:00,off\";\n"
    "  max_attempts = 10;\n"
    "  ca_file = \"\";\n"
    "  proxy = \"\";\n"
    "};\n"
    "\n"
    "watch = (\n"
    "  { path = \"/srv/exports/lab\";\n"
    "    remote_prefix = \"lab/\";\n"
    "    recursive = true;\n"
    "    include = [ \"*.pdf\", \"*.hl7\" ];\n"
    "    exclude = [ \"*.tmp\", \".*\", \"~*\" ];\n"
    "    settle = \"2s\";\n"
    "    after_upload = \"keep\";\n"
    "    max_age = \"30d\"; not_before = \"2026-12-01\";\n"
    "    min_size = \"1KiB\"; max_size = \"2GiB\";\n"
    "  },\n"
    "  { path = \"/srv/exports/scans/\";\n"
    "    remote_prefix = \"scans/2026/\";\n"
    "    recursive = false;\n"
    "    settle = \"250ms\";\n"
    "    rescan = \"15m\";\n"
    "    after_upload = \"move:/srv/sent//scans/\";\n"
    "  },\n"
    "  { path = \"/srv/exports/labs\";\n"
    "    after_upload = \"delete\";\n"
    "  }\n"
    ");\n"
    "\n"
    "mirror: {\n"
    "  base_url = \"https://api.healos.ai/ext-api/v1\";\n"
    "  api_key_file = \"@D@/records.key\";\n"
    "  schedule = \"0 2 * * *\";\n"
    "  jitter = \"10m\";\n"
    "  page_size = 50;\n"
    "  fetch_details = false;\n"
    "  database = \"/var/lib/healsync/mirror.db\";\n"
    "  export = \"/srv/exports/patients.jsonl\";\n"
    "  ca_file = \"\";\n"
    "  proxy = \"http://mirror:m1rr0rpass@records-proxy.example:8080\";\n"
    "};\n"
    "\n"
    "log: { level = \"notice\"; };\n";

static void test_full_config(void **state)
{
	struct fixture *fx = *state;
	struct hs_config *cfg = load_ok(fx, full_config);
	char *want;

	assert_string_equal(cfg->path, fx->conf);
	want = subst(fx, "@D@/state");
	assert_string_equal(cfg->state_dir, want);
	free(want);

	assert_string_equal(cfg->upload.api.base_url, "https://upload.example/ext-api/v1");
	want = subst(fx, "@D@/upload.key");
	assert_string_equal(cfg->upload.api.api_key_file, want);
	free(want);
	assert_string_equal(cfg->upload.api.secret->value, UPLOAD_KEY);
	assert_null(cfg->upload.api.ca_file);
	assert_null(cfg->upload.api.proxy);
	assert_true(cfg->upload.multipart_threshold == 64 * MiB);
	assert_true(cfg->upload.part_size == 16 * MiB);
	assert_int_equal(cfg->upload.parallel, 4);
	assert_int_equal(cfg->upload.max_attempts, 10);
	assert_string_equal(hs_timetable_text(cfg->upload.bandwidth), "08:00,2MiB/s 18:00,off");
	{
		struct tm noon = {.tm_wday = 2, .tm_hour = 12},
			  night = {.tm_wday = 2, .tm_hour = 23};

		assert_true(hs_timetable_rate_at(cfg->upload.bandwidth, &noon) == 2 * MiB);
		assert_true(hs_timetable_rate_at(cfg->upload.bandwidth, &night) == 0);
	}

	assert_int_equal(cfg->n_watches, 3);
	assert_string_equal(cfg->watches[0].path, "/srv/exports/lab");
	assert_string_equal(cfg->watches[0].remote_prefix, "lab/");
	assert_true(cfg->watches[0].recursive);
	assert_string_equal(cfg->watches[0].include[0], "*.pdf");
	assert_string_equal(cfg->watches[0].include[1], "*.hl7");
	assert_null(cfg->watches[0].include[2]);
	assert_string_equal(cfg->watches[0].exclude[0], "*.tmp");
	assert_string_equal(cfg->watches[0].exclude[1], ".*");
	assert_string_equal(cfg->watches[0].exclude[2], "~*");
	assert_null(cfg->watches[0].exclude[3]);
	assert_true(cfg->watches[0].settle_ms == 2000);
	assert_true(cfg->watches[0].rescan_ms == 3600 * 1000);
	assert_int_equal(cfg->watches[0].after_upload, HS_AFTER_KEEP);
	assert_null(cfg->watches[0].move_dir);

	assert_string_equal(cfg->watches[1].path, "/srv/exports/scans");
	assert_string_equal(cfg->watches[1].remote_prefix, "scans/2026/");
	assert_false(cfg->watches[1].recursive);
	assert_null(cfg->watches[1].include[0]);
	assert_null(cfg->watches[1].exclude[0]);
	assert_true(cfg->watches[1].settle_ms == 250);
	assert_true(cfg->watches[1].rescan_ms == 15 * 60 * 1000);
	assert_int_equal(cfg->watches[1].after_upload, HS_AFTER_MOVE);
	assert_string_equal(cfg->watches[1].move_dir, "/srv/sent/scans");

	/* "/srv/exports/labs" does not overlap "/srv/exports/lab". */
	assert_string_equal(cfg->watches[2].path, "/srv/exports/labs");
	assert_int_equal(cfg->watches[2].after_upload, HS_AFTER_DELETE);

	assert_true(cfg->mirror.enabled);
	assert_string_equal(cfg->mirror.api.base_url, "https://api.healos.ai/ext-api/v1");
	assert_string_equal(cfg->mirror.api.secret->value, RECORDS_KEY);
	assert_string_equal(cfg->mirror.schedule, "0 2 * * *");
	assert_true(cfg->mirror.jitter_ms == 10 * 60 * 1000);
	assert_int_equal(cfg->mirror.page_size, 50);
	assert_false(cfg->mirror.fetch_details);
	assert_string_equal(cfg->mirror.database, "/var/lib/healsync/mirror.db");
	assert_string_equal(cfg->mirror.export_path, "/srv/exports/patients.jsonl");
	/* The mirror's own proxy; the upload section has none and lends none. */
	assert_null(cfg->mirror.api.ca_file);
	assert_string_equal(cfg->mirror.api.proxy,
			    "http://mirror:m1rr0rpass@records-proxy.example:8080");
	assert_null(cfg->upload.api.proxy);
	assert_int_equal(cfg->log_level, HS_LOG_NOTICE);
	assert_null(hs_config_free(cfg));
}

static void test_defaults(void **state)
{
	struct fixture *fx = *state;
	struct hs_config *cfg = load_ok(fx, UPLOAD);

	assert_string_equal(cfg->state_dir, HS_LOCALSTATEDIR "/lib/healsync");
	assert_true(cfg->upload.multipart_threshold == 64 * MiB);
	assert_true(cfg->upload.part_size == 16 * MiB);
	assert_int_equal(cfg->upload.parallel, 4);
	assert_int_equal(cfg->upload.max_attempts, 10);
	assert_true(cfg->upload.connect_timeout_ms == 30 * 1000);
	assert_true(cfg->upload.stall_timeout_ms == 60 * 1000);
	assert_string_equal(hs_timetable_text(cfg->upload.bandwidth), "off");
	assert_true(hs_timetable_rate(cfg->upload.bandwidth, 0) == 0);
	assert_null(cfg->upload.api.ca_file);
	assert_null(cfg->upload.api.proxy);
	assert_int_equal(cfg->n_watches, 0);
	assert_false(cfg->mirror.enabled);
	assert_null(cfg->mirror.api.secret);
	assert_int_equal(cfg->log_level, HS_LOG_INFO);
	assert_null(cfg->metrics_file);
	assert_true(cfg->health.stalled_after_ms == 24 * 3600 * 1000);
	assert_true(cfg->health.queued_age_warning_ms == 6 * 3600 * 1000);
	assert_true(cfg->health.queued_age_critical_ms == 0);
	assert_true(cfg->health.mirror_grace_ms == 2 * 3600 * 1000);
	assert_true(cfg->health.min_free == 1024 * MiB);
	hs_config_free(cfg);

	/* A watch with a path only, a mirror with its two required settings. */
	cfg = load_ok(fx, "state_dir = \"/\";\n" UPLOAD "watch = ( { path = \"/srv/in\"; } );\n"
			  "mirror: { base_url = \"https://api.healos.ai/ext-api/v1\";\n"
			  "  api_key_file = \"@D@/records.key\"; };\n"
			  "log: { };\n");
	assert_int_equal(cfg->n_watches, 1);
	assert_string_equal(cfg->watches[0].remote_prefix, "");
	assert_true(cfg->watches[0].recursive);
	assert_null(cfg->watches[0].include[0]);
	assert_null(cfg->watches[0].exclude[0]);
	assert_true(cfg->watches[0].settle_ms == 2000);
	assert_true(cfg->watches[0].rescan_ms == 3600 * 1000);
	assert_int_equal(cfg->watches[0].after_upload, HS_AFTER_KEEP);
	assert_true(cfg->mirror.enabled);
	assert_string_equal(cfg->mirror.schedule, "0 2 * * *");
	assert_true(cfg->mirror.jitter_ms == 10 * 60 * 1000);
	assert_int_equal(cfg->mirror.page_size, 100);
	assert_true(cfg->mirror.fetch_details);
	assert_string_equal(cfg->mirror.database, "/mirror.db");
	assert_null(cfg->mirror.export_path);
	hs_config_free(cfg);

	cfg = load_ok(fx, "state_dir = \"/var/lib//hs/\";\n" UPLOAD
			  "mirror: { base_url = \"https://api.healos.ai/ext-api/v1\";\n"
			  "  api_key_file = \"@D@/records.key\"; export = \"\"; };\n");
	assert_string_equal(cfg->state_dir, "/var/lib/hs");
	assert_string_equal(cfg->mirror.database, "/var/lib/hs/mirror.db");
	assert_null(cfg->mirror.export_path);
	hs_config_free(cfg);
}

/* Sizes and durations as plain numbers; 64-bit ones with L. */
static void test_numbers(void **state)
{
	struct fixture *fx = *state;
	struct hs_config *cfg;

	cfg = load_ok(fx, "upload: {\n"
			  "  base_url = \"http://127.0.0.1:8080\";\n"
			  "  api_key_file = \"@D@/upload.key\";\n"
			  "  multipart_threshold = 1;\n"
			  "  part_size = 5368709120L;\n"
			  "  parallel = 64;\n"
			  "  max_attempts = 1000;\n"
			  "  bandwidth = 1000000;\n"
			  "};\n"
			  "watch = ( { path = \"/in\"; settle = 0; rescan = 90; } );\n"
			  "mirror: { base_url = \"https://[::1]/v1\"; api_key_file = "
			  "\"@D@/records.key\"; jitter = 3600; page_size = 1; };\n");
	assert_string_equal(cfg->upload.api.base_url, "http://127.0.0.1:8080");
	assert_true(cfg->upload.multipart_threshold == 1);
	assert_true(cfg->upload.part_size == 5 * GiB);
	assert_int_equal(cfg->upload.parallel, 64);
	assert_int_equal(cfg->upload.max_attempts, 1000);
	assert_string_equal(hs_timetable_text(cfg->upload.bandwidth), "1000000/s");
	assert_true(hs_timetable_rate(cfg->upload.bandwidth, 0) == 1000000);
	assert_true(cfg->watches[0].settle_ms == 0);
	assert_true(cfg->watches[0].rescan_ms == 90000);
	assert_true(cfg->mirror.jitter_ms == 3600000);
	assert_int_equal(cfg->mirror.page_size, 1);
	hs_config_free(cfg);

	cfg = load_ok(fx, UPLOAD_WITH("part_size = 5242880; multipart_threshold = \"1TiB\";"));
	assert_true(cfg->upload.part_size == 5 * MiB);
	assert_true(cfg->upload.multipart_threshold == 1024 * GiB);
	hs_config_free(cfg);
}

/* The shipped sample loads once its key files exist. */
static void test_shipped_sample(void **state)
{
	struct fixture *fx = *state;
	char path[4096], *text = NULL, *ours;
	size_t size = 0;
	FILE *in, *out;
	struct hs_config *cfg;
	int c;

	snprintf(path, sizeof(path), "%s/conf/healsync.conf", HS_TEST_SRCDIR);
	in = fopen(path, "r");
	assert_non_null(in);
	out = open_memstream(&text, &size);
	assert_non_null(out);
	while ((c = fgetc(in)) != EOF)
		fputc(c, out);
	fclose(in);
	assert_int_equal(fclose(out), 0);
	/* Point the key files at the test's own. */
	ours = replace(text, "\"/etc/healsync/", "\"@D@/");
	cfg = load_ok(fx, ours);
	free(ours);
	free(text);
	assert_string_equal(cfg->state_dir, "/var/lib/healsync");
	assert_string_equal(cfg->upload.api.secret->value, UPLOAD_KEY);
	assert_string_equal(hs_timetable_text(cfg->upload.bandwidth), "08:00,2MiB/s 18:00,off");
	assert_int_equal(cfg->n_watches, 1);
	assert_string_equal(cfg->watches[0].path, "/srv/exports/lab");
	assert_true(cfg->mirror.enabled);
	assert_string_equal(cfg->mirror.api.secret->value, RECORDS_KEY);
	assert_int_equal(cfg->log_level, HS_LOG_INFO);
	hs_config_free(cfg);
}

static const char printed_full[] = "# healsync: effective configuration of @F@\n"
				   "\n"
				   "state_dir = \"@D@/state\";\n"
				   "metrics_file = \"\";\n"
				   "\n"
				   "health: {\n"
				   "  stalled_after = \"1d\";\n"
				   "  queued_age_warning = \"6h\";\n"
				   "  queued_age_critical = \"0s\";\n"
				   "  mirror_grace = \"2h\";\n"
				   "  min_free = \"1GiB\";\n"
				   "};\n"
				   "\n"
				   "upload: {\n"
				   "  base_url = \"https://upload.example/ext-api/v1\";\n"
				   "  auth = \"api-key\";\n"
				   "  api_key_file = \"@D@/upload.key\";\n"
				   "  api_key = \"<redacted>\";\n"
				   "  multipart_threshold = \"64MiB\";\n"
				   "  part_size = \"16MiB\";\n"
				   "  parallel = 4;\n"
				   "  bandwidth = \"08:00,2MiB/s 18:00,off\";\n"
				   "  max_attempts = 10;\n"
				   "  connect_timeout = \"30s\";\n"
				   "  stall_timeout = \"1m\";\n"
				   "  ca_file = \"\";\n"
				   "  proxy = \"\";\n"
				   "};\n"
				   "\n"
				   "watch = (\n"
				   "  {\n"
				   "    path = \"/srv/exports/lab\";\n"
				   "    remote_prefix = \"lab/\";\n"
				   "    recursive = true;\n"
				   "    ignore_case = false;\n"
				   "    include = [ \"*.pdf\", \"*.hl7\" ];\n"
				   "    exclude = [ \"*.tmp\", \".*\", \"~*\" ];\n"
				   "    settle = \"2s\";\n"
				   "    rescan = \"1h\";\n"
				   "    max_age = \"30d\";\n"
				   "    not_before = \"2026-12-01\";\n"
				   "    min_size = \"1KiB\";\n"
				   "    max_size = \"2GiB\";\n"
				   "    after_upload = \"keep\";\n"
				   "  },\n"
				   "  {\n"
				   "    path = \"/srv/exports/scans\";\n"
				   "    remote_prefix = \"scans/2026/\";\n"
				   "    recursive = false;\n"
				   "    ignore_case = false;\n"
				   "    include = [ ];\n"
				   "    exclude = [ ];\n"
				   "    settle = \"250ms\";\n"
				   "    rescan = \"15m\";\n"
				   "    max_age = \"\";\n"
				   "    not_before = \"\";\n"
				   "    min_size = \"\";\n"
				   "    max_size = \"\";\n"
				   "    after_upload = \"move:/srv/sent/scans\";\n"
				   "  },\n"
				   "  {\n"
				   "    path = \"/srv/exports/labs\";\n"
				   "    remote_prefix = \"\";\n"
				   "    recursive = true;\n"
				   "    ignore_case = false;\n"
				   "    include = [ ];\n"
				   "    exclude = [ ];\n"
				   "    settle = \"2s\";\n"
				   "    rescan = \"1h\";\n"
				   "    max_age = \"\";\n"
				   "    not_before = \"\";\n"
				   "    min_size = \"\";\n"
				   "    max_size = \"\";\n"
				   "    after_upload = \"delete\";\n"
				   "  }\n"
				   ");\n"
				   "\n"
				   "mirror: {\n"
				   "  base_url = \"https://api.healos.ai/ext-api/v1\";\n"
				   "  auth = \"api-key\";\n"
				   "  api_key_file = \"@D@/records.key\";\n"
				   "  api_key = \"<redacted>\";\n"
				   "  schedule = \"0 2 * * *\";\n"
				   "  jitter = \"10m\";\n"
				   "  page_size = 50;\n"
				   "  fetch_details = false;\n"
				   "  database = \"/var/lib/healsync/mirror.db\";\n"
				   "  export = \"/srv/exports/patients.jsonl\";\n"
				   "  ca_file = \"\";\n"
				   "  proxy = \"http://<redacted>@records-proxy.example:8080\";\n"
				   "};\n"
				   "\n"
				   "log: { level = \"notice\"; };\n";

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

static void test_print(void **state)
{
	struct fixture *fx = *state;
	struct hs_config *cfg = load_ok(fx, full_config);
	char *text = print_to_string(cfg), *want = subst(fx, printed_full);

	assert_string_equal(text, want);
	assert_null(strstr(text, UPLOAD_KEY));
	assert_null(strstr(text, RECORDS_KEY));
	assert_null(strstr(text, "m1rr0rpass"));
	free(want);
	hs_config_free(cfg);

	/* Without the api_key lines, the output loads back to the same. */
	{
		static const char line[] = "  api_key = \"<redacted>\";\n";
		char *again, *p;

		while ((p = strstr(text, line)))
			memmove(p, p + strlen(line), strlen(p + strlen(line)) + 1);
		cfg = load_ok(fx, text);
		again = print_to_string(cfg);
		want = subst(fx, printed_full);
		assert_string_equal(again, want);
		free(want);
		free(again);
		hs_config_free(cfg);
	}
	free(text);

	/* Defaults spelt out; a proxy password masked; odd characters escaped. */
	cfg = load_ok(
	    fx,
	    "state_dir = \"/var/lib/a \\\"b\\\\\";\n" UPLOAD_WITH(
		"proxy = \"http://user:s3cr3tpass@proxy.example:3128\"; bandwidth = \"1000\";"));
	text = print_to_string(cfg);
	want = subst(fx, "# healsync: effective configuration of @F@\n"
			 "\n"
			 "state_dir = \"/var/lib/a \\\"b\\\\\";\n"
			 "metrics_file = \"\";\n"
			 "\n"
			 "health: {\n"
			 "  stalled_after = \"1d\";\n"
			 "  queued_age_warning = \"6h\";\n"
			 "  queued_age_critical = \"0s\";\n"
			 "  mirror_grace = \"2h\";\n"
			 "  min_free = \"1GiB\";\n"
			 "};\n"
			 "\n"
			 "upload: {\n"
			 "  base_url = \"https://upload.example/ext-api/v1\";\n"
			 "  auth = \"api-key\";\n"
			 "  api_key_file = \"@D@/upload.key\";\n"
			 "  api_key = \"<redacted>\";\n"
			 "  multipart_threshold = \"64MiB\";\n"
			 "  part_size = \"16MiB\";\n"
			 "  parallel = 4;\n"
			 "  bandwidth = \"1000/s\";\n"
			 "  max_attempts = 10;\n"
			 "  connect_timeout = \"30s\";\n"
			 "  stall_timeout = \"1m\";\n"
			 "  ca_file = \"\";\n"
			 "  proxy = \"http://<redacted>@proxy.example:3128\";\n"
			 "};\n"
			 "\n"
			 "watch = (\n"
			 ");\n"
			 "\n"
			 "# mirror: not configured\n"
			 "\n"
			 "log: { level = \"info\"; };\n");
	assert_string_equal(text, want);
	assert_null(strstr(text, "s3cr3tpass"));
	free(want);
	free(text);
	hs_config_free(cfg);
}

/* Each API has its own CA bundle and proxy (SPEC 3): neither is borrowed
 * from the other section, and the mirror's are checked like the upload's. */
static void test_mirror_transport(void **state)
{
	struct fixture *fx = *state;
	struct hs_config *cfg;
	char path[160];

	snprintf(path, sizeof(path), "%s/records-ca.pem", fx->dir);
	write_file(path, "not parsed here\n", 0644);
	cfg = load_ok(fx, UPLOAD "watch = ();\n"
				 "mirror: {\n"
				 "  base_url = \"https://api.healos.ai/ext-api/v1\";\n"
				 "  api_key_file = \"@D@/records.key\";\n"
				 "  ca_file = \"@D@/records-ca.pem\";\n"
				 "  proxy = \"http://proxy.clinic.example:3128\";\n"
				 "};\n");
	assert_string_equal(cfg->mirror.api.ca_file, path);
	assert_string_equal(cfg->mirror.api.proxy, "http://proxy.clinic.example:3128");
	assert_null(cfg->upload.api.ca_file);
	assert_null(cfg->upload.api.proxy);
	hs_config_free(cfg);

	expect_error(fx, UPLOAD MIRROR_WITH("ca_file = \"@D@/nope.pem\";"),
		     "@F@:8: mirror.ca_file: @D@/nope.pem: No such file or directory");
	expect_error(fx, UPLOAD MIRROR_WITH("ca_file = \"certs/ca.pem\";"),
		     "@F@:8: mirror.ca_file: \"certs/ca.pem\" is not an absolute path");
}

static void test_syntax_and_files(void **state)
{
	struct fixture *fx = *state;
	char *cause = NULL, missing[128];

	expect_error(fx, UPLOAD "watch = (\n  { path = \"/a\" }\n  { path = \"/b\"; }\n);\n",
		     "@F@:7: syntax error");
	expect_error(fx, "state_dir = \"/a\";\nstate_dir = \"/b\";\n",
		     "@F@:2: duplicate setting name");

	snprintf(missing, sizeof(missing), "%s/nope.conf", fx->dir);
	assert_null(hs_config_load(missing, &cause));
	assert_non_null(cause);
	assert_true(strncmp(cause, missing, strlen(missing)) == 0);
	assert_string_equal(cause + strlen(missing), ": No such file or directory");
	free(cause);

	assert_null(hs_config_load(fx->dir, &cause));
	assert_non_null(cause);
	assert_true(strncmp(cause, fx->dir, strlen(fx->dir)) == 0);
	assert_string_equal(cause + strlen(fx->dir), ": is a directory");
	free(cause);

	/* Settings from an @include are named with that file. */
	fx_file(fx, "extra.conf", "\n  colour = 1;\n", 0644);
	expect_error(fx, "@include \"extra.conf\"\n" UPLOAD,
		     "@D@/extra.conf:2: colour: unknown setting");
	expect_error(fx, "@include \"absent.conf\"\n" UPLOAD, "@F@:1: cannot open include file");
	fx_file(fx, "upload.conf", UPLOAD_WITH("part_size = 5368709120;"), 0644);
	expect_error(
	    fx, "\n@include \"upload.conf\"\n",
	    "@D@/upload.conf:4: upload.part_size: 5368709120 does not fit in 32 bits; write "
	    "it as a string (\"5368709120\") or as 5368709120L");
}

/* libconfig 1.5 exits the process reading an @include that is a folder: a
 * reload would kill the daemon. Such a file is refused before it is read. */
static void test_include_not_a_file(void **state)
{
	struct fixture *fx = *state;
	char sub[128];

	expect_error(fx, "@include \".\"\n" UPLOAD, "@F@:1: @include \".\": is not a regular file");
	expect_error(fx, UPLOAD "@include \"@D@\"\n",
		     "@F@:5: @include \"@D@\": is not a regular file");
	snprintf(sub, sizeof(sub), "%s/sub", fx->dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	fx_file(fx, "inner.conf", "\n\n@include \"sub\"\n", 0644);
	expect_error(fx, UPLOAD "@include \"inner.conf\"\n",
		     "@D@/inner.conf:3: @include \"sub\": is not a regular file");
	assert_int_equal(rmdir(sub), 0);
	assert_int_equal(mkfifo(sub, 0600), 0);
	expect_error(fx, UPLOAD "@include \"sub\"\n",
		     "@F@:5: @include \"sub\": is not a regular file");
	assert_int_equal(unlink(sub), 0);
}

/* Zeros in front of a literal do not hide that it wraps. */
static void test_padded_numbers(void **state)
{
	struct fixture *fx = *state;
	struct hs_config *cfg;
	char text[1024], digits[400], *cause = NULL;

	memset(digits, '0', 300);
	strcpy(digits + 300, "5368709120");
	snprintf(text, sizeof(text), UPLOAD_WITH("part_size = %s;"), digits);
	fx_file(fx, "healsync.conf", text, 0644);
	cfg = hs_config_load(fx->conf, &cause);
	if (cfg)
		fail_msg("accepted a padded 5368709120 as %llu",
			 (unsigned long long)cfg->upload.part_size);
	assert_non_null(cause);
	assert_non_null(strstr(cause, ":4: upload.part_size: 000"));
	assert_non_null(strstr(cause, "does not fit in 32 bits"));
	free(cause);
	hs_config_free(load_ok(fx, UPLOAD_WITH("part_size = 0000000000005242880;")));
}

static void test_unknown_settings(void **state)
{
	struct fixture *fx = *state;

	expect_error(fx, UPLOAD "uplaod: { };\n", "@F@:5: uplaod: unknown setting");
	expect_error(fx, UPLOAD_WITH("colour = \"blue\";"),
		     "@F@:4: upload.colour: unknown setting");
	expect_error(
	    fx, UPLOAD "watch = (\n  { path = \"/a\"; },\n  { path = \"/b\";\n    pth = 1; }\n);\n",
	    "@F@:8: watch[1].pth: unknown setting");
	expect_error(fx, UPLOAD MIRROR_WITH("limit = 5;"), "@F@:8: mirror.limit: unknown setting");
	expect_error(fx, UPLOAD "log: {\n  level = \"info\";\n  facility = \"daemon\";\n};\n",
		     "@F@:7: log.facility: unknown setting");
}

static void test_health(void **state)
{
	struct fixture *fx = *state;
	struct hs_config *cfg;

	cfg = load_ok(
	    fx, "metrics_file = \"/var/lib/prometheus/node-exporter/healsync.prom\";\n"
		"health: { stalled_after = \"12h\"; queued_age_warning = \"1h\";\n"
		"  queued_age_critical = \"3h\"; mirror_grace = 0; min_free = \"0\"; };\n" UPLOAD);
	assert_string_equal(cfg->metrics_file, "/var/lib/prometheus/node-exporter/healsync.prom");
	assert_true(cfg->health.stalled_after_ms == 12 * 3600 * 1000);
	assert_true(cfg->health.queued_age_warning_ms == 3600 * 1000);
	assert_true(cfg->health.queued_age_critical_ms == 3 * 3600 * 1000);
	assert_true(cfg->health.mirror_grace_ms == 0);
	assert_true(cfg->health.min_free == 0);
	hs_config_free(cfg);

	expect_error(fx, "health: { stale = \"1h\"; };\n" UPLOAD,
		     "@F@:1: health.stale: unknown setting");
	expect_error(
	    fx, "health: { queued_age_warning = \"2h\"; queued_age_critical = \"1h\"; };\n" UPLOAD,
	    "@F@:1: health.queued_age_critical: is shorter than queued_age_warning");
	expect_error(
	    fx, "health: { stalled_after = \"soon\"; };\n" UPLOAD,
	    "@F@:1: health.stalled_after: bad duration \"soon\" (want e.g. \"2s\", \"15m\", "
	    "\"1h\" or a number of seconds)");
	expect_error(fx, "metrics_file = \"metrics.prom\";\n" UPLOAD,
		     "@F@:1: metrics_file: \"metrics.prom\" is not an absolute path");
	expect_error(
	    fx, "health = 5;\n" UPLOAD,
	    "@F@:1: health: wrong type: want a group: health: { stalled_after = \"24h\"; };");
}

static void test_wrong_types(void **state)
{
	struct fixture *fx = *state;

	expect_error(fx, "upload = \"https://x\";\n",
		     "@F@:1: upload: wrong type: want a group: upload: { ... };");
	expect_error(fx, UPLOAD_WITH("parallel = \"4\";"),
		     "@F@:4: upload.parallel: wrong type: want a whole number (without quotes)");
	expect_error(
	    fx, UPLOAD_WITH("part_size = 16.5;"),
	    "@F@:4: upload.part_size: wrong type: want a size like \"16MiB\" or a number of "
	    "bytes");
	expect_error(fx, "upload: {\n  base_url = 5;\n};\n",
		     "@F@:2: upload.base_url: wrong type: want a string in double quotes");
	expect_error(
	    fx, UPLOAD_WITH("bandwidth = true;"),
	    "@F@:4: upload.bandwidth: wrong type: want a rate like \"2MiB/s\", \"off\" or a "
	    "timetable like \"08:00,2MiB/s 18:00,off\"");
	expect_error(fx, UPLOAD "watch = { path = \"/a\"; };\n",
		     "@F@:5: watch: wrong type: want a list of folders: ( { path = \"...\"; } )");
	expect_error(fx, UPLOAD "watch = ( \"/a\" );\n",
		     "@F@:5: watch[0]: wrong type: want a group { path = \"...\"; }");
	expect_error(fx, UPLOAD "watch = ( { path = \"/a\";\n  recursive = \"yes\"; } );\n",
		     "@F@:6: watch[0].recursive: wrong type: want true or false");
	expect_error(
	    fx, UPLOAD "watch = ( { path = \"/a\";\n  include = \"*.pdf\"; } );\n",
	    "@F@:6: watch[0].include: wrong type: want a list of patterns like [ \"*.pdf\" ]");
	expect_error(fx, UPLOAD "watch = ( { path = \"/a\";\n  exclude = [ 1, 2 ]; } );\n",
		     "@F@:6: watch[0].exclude[0]: wrong type: want a string in double quotes");
	expect_error(fx,
		     UPLOAD "watch = ( { path = \"/a\";\n  exclude = [ \"*.tmp\", \"\" ]; } );\n",
		     "@F@:6: watch[0].exclude[1]: empty pattern");
	expect_error(
	    fx, UPLOAD "watch = ( { path = \"/a\";\n  settle = 2.5; } );\n",
	    "@F@:6: watch[0].settle: wrong type: want a duration like \"2s\" or a number of "
	    "seconds");
	expect_error(fx, UPLOAD MIRROR_WITH("fetch_details = 1;"),
		     "@F@:8: mirror.fetch_details: wrong type: want true or false");
	expect_error(fx, UPLOAD "mirror = ( );\n",
		     "@F@:5: mirror: wrong type: want a group: mirror: { ... };");
	expect_error(fx, UPLOAD "log = \"debug\";\n",
		     "@F@:5: log: wrong type: want a group: log: { level = \"info\"; };");
	expect_error(fx, UPLOAD "log: { level = 7; };\n",
		     "@F@:5: log.level: wrong type: want a string in double quotes");
	expect_error(fx, "state_dir = \"/var/lib/\\n\";\n" UPLOAD,
		     "@F@:1: state_dir: must not contain control characters");
}

static void test_bad_values(void **state)
{
	struct fixture *fx = *state;

	expect_error(
	    fx, UPLOAD_WITH("part_size = \"16 MiB\";"),
	    "@F@:4: upload.part_size: bad size \"16 MiB\" (want e.g. \"16MiB\", \"512KiB\" "
	    "or a number of bytes)");
	expect_error(fx, UPLOAD_WITH("multipart_threshold = \"-1\";"),
		     "@F@:4: upload.multipart_threshold: bad size \"-1\" (want e.g. \"16MiB\", "
		     "\"512KiB\" or a number of bytes)");
	expect_error(fx, UPLOAD_WITH("multipart_threshold = -1;"),
		     "@F@:4: upload.multipart_threshold: must not be negative");
	expect_error(
	    fx, UPLOAD_WITH("bandwidth = \"08:00,2MiB\";"),
	    "@F@:4: upload.bandwidth: bad rate \"2MiB\" (want e.g. \"2MiB/s\", \"512KiB/s\", "
	    "\"off\" or \"pause\")");
	expect_error(fx, UPLOAD_WITH("bandwidth = \"pause\";"),
		     "@F@:4: upload.bandwidth: \"pause\" alone would hold uploads for ever (want "
		     "it in a timetable, e.g. \"07:00,pause 19:00,off\")");
	expect_error(fx, UPLOAD_WITH("bandwidth = \"24:00,off\";"),
		     "@F@:4: upload.bandwidth: bad time in \"24:00,off\" (want HH:MM from 00:00 to "
		     "23:59)");
	expect_error(fx, UPLOAD_WITH("bandwidth = \"\";"),
		     "@F@:4: upload.bandwidth: empty (want a rate like \"2MiB/s\" or \"off\", or a "
		     "timetable like \"08:00,2MiB/s 18:00,off\")");
	expect_error(fx, UPLOAD_WITH("bandwidth = 0;"),
		     "@F@:4: upload.bandwidth: 0 is not a rate (want e.g. \"2MiB/s\" or \"off\")");
	expect_error(fx, UPLOAD "watch = ( { path = \"/a\";\n  settle = \"2 sec\"; } );\n",
		     "@F@:6: watch[0].settle: bad duration \"2 sec\" (want e.g. \"2s\", \"15m\", "
		     "\"1h\" or a number of seconds)");
	expect_error(fx, UPLOAD "watch = ( { path = \"/a\";\n  settle = -2; } );\n",
		     "@F@:6: watch[0].settle: must not be negative");
	expect_error(
	    fx, UPLOAD "watch = ( { path = \"/a\";\n  after_upload = \"remove\"; } );\n",
	    "@F@:6: watch[0].after_upload: bad value \"remove\" (want \"keep\", \"delete\" "
	    "or \"move:/absolute/folder\")");
	expect_error(fx, UPLOAD MIRROR_WITH("schedule = \"0 2 * *\";"),
		     "@F@:8: mirror.schedule: \"0 2 * *\": 4 fields, want 5 (minute hour "
		     "day-of-month month day-of-week)");
	expect_error(fx, UPLOAD MIRROR_WITH("schedule = \"0 24 * * *\";"),
		     "@F@:8: mirror.schedule: \"0 24 * * *\": field 2 (hour): 24 is out of range "
		     "0-23");
	expect_error(fx, UPLOAD "log: { level = \"warn\"; };\n",
		     "@F@:5: log.level: bad level \"warn\" (want debug, info, notice, warning or "
		     "err)");
	expect_error(
	    fx, UPLOAD_WITH("part_size = \"16\\nMiB\";"),
	    "@F@:4: upload.part_size: bad size \"16?MiB\" (want e.g. \"16MiB\", \"512KiB\" "
	    "or a number of bytes)");
	/* libconfig 1.5 would wrap these to 32 bits without a word. */
	expect_error(fx, UPLOAD_WITH("part_size = 5368709120;"),
		     "@F@:4: upload.part_size: 5368709120 does not fit in 32 bits; write it as a "
		     "string (\"5368709120\") or as 5368709120L");
	expect_error(fx, UPLOAD_WITH("multipart_threshold = 4294967297;"),
		     "@F@:4: upload.multipart_threshold: 4294967297 does not fit in 32 bits; write "
		     "it as a string (\"4294967297\") or as 4294967297L");
	expect_error(fx, UPLOAD_WITH("parallel = 0x100000004;"),
		     "@F@:4: upload.parallel: 0x100000004 does not fit in 32 bits; write it as a "
		     "string (\"0x100000004\") or as 0x100000004L");
}

static void test_remote_prefix(void **state)
{
	struct fixture *fx = *state;
	static const struct {
		const char *value, *want;
	} bad[] = {
	    {"lab", "\"lab\" must end with \"/\" (or be \"\")"},
	    {"/lab/", "\"/lab/\" must not start with \"/\""},
	    {"a//b/", "\"a//b/\" must not contain empty, . or .. segments"},
	    {"../x/", "\"../x/\" must not contain empty, . or .. segments"},
	    {"x/./", "\"x/./\" must not contain empty, . or .. segments"},
	    {"/", "\"/\" must not start with \"/\""},
	    {"caf\\xe9/", "is not valid UTF-8"},
	    /* bytes that start no character at all */
	    {"caf\\xff/", "is not valid UTF-8"},
	    {"\\x80x/", "is not valid UTF-8"},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[512], want[512];

		snprintf(text, sizeof(text),
			 UPLOAD "watch = ( { path = \"/a\";\n  remote_prefix = \"%s\"; } );\n",
			 bad[i].value);
		snprintf(want, sizeof(want), "@F@:6: watch[0].remote_prefix: %s", bad[i].want);
		expect_error(fx, text, want);
	}
	hs_config_free(
	    load_ok(fx, UPLOAD "watch = ( { path = \"/a\"; remote_prefix = \"Zoë/a b/\"; } );\n"));
}

static void test_ranges(void **state)
{
	struct fixture *fx = *state;

	expect_error(fx, UPLOAD_WITH("part_size = \"4MiB\";"),
		     "@F@:4: upload.part_size: 4MiB is out of range (5MiB to 5GiB)");
	expect_error(fx, UPLOAD_WITH("part_size = \"5121MiB\";"),
		     "@F@:4: upload.part_size: 5121MiB is out of range (5MiB to 5GiB)");
	expect_error(fx, UPLOAD_WITH("part_size = 5242879;"),
		     "@F@:4: upload.part_size: 5242879 is out of range (5MiB to 5GiB)");
	expect_error(fx, UPLOAD_WITH("multipart_threshold = \"0\";"),
		     "@F@:4: upload.multipart_threshold: must be at least 1 byte");
	expect_error(fx, UPLOAD_WITH("parallel = 0;"),
		     "@F@:4: upload.parallel: 0 is out of range (1 to 64)");
	expect_error(fx, UPLOAD_WITH("parallel = 65;"),
		     "@F@:4: upload.parallel: 65 is out of range (1 to 64)");
	expect_error(fx, UPLOAD_WITH("stall_timeout = \"500ms\";"),
		     "@F@:4: upload.stall_timeout: must be whole seconds from 1s to 1h");
	expect_error(fx, UPLOAD_WITH("connect_timeout = \"2h\";"),
		     "@F@:4: upload.connect_timeout: must be whole seconds from 1s to 1h");
	expect_error(fx, UPLOAD_WITH("max_attempts = 0;"),
		     "@F@:4: upload.max_attempts: 0 is out of range (1 to 1000)");
	expect_error(fx, UPLOAD_WITH("max_attempts = 1001;"),
		     "@F@:4: upload.max_attempts: 1001 is out of range (1 to 1000)");
	expect_error(fx, UPLOAD_WITH("max_attempts = -1;"),
		     "@F@:4: upload.max_attempts: -1 is out of range (1 to 1000)");
	expect_error(fx, UPLOAD MIRROR_WITH("page_size = 101;"),
		     "@F@:8: mirror.page_size: 101 is out of range (1 to 100)");
	expect_error(fx, UPLOAD MIRROR_WITH("page_size = 0;"),
		     "@F@:8: mirror.page_size: 0 is out of range (1 to 100)");
	expect_error(fx, UPLOAD "watch = ( { path = \"/a\";\n  rescan = \"500ms\"; } );\n",
		     "@F@:6: watch[0].rescan: must be at least 1s");
	/* A small threshold below part_size is fine. */
	hs_config_free(load_ok(fx, UPLOAD_WITH("multipart_threshold = \"1MiB\";")));
}

/* The first-night limits: "" is off, each bad value names its line. */
static void test_watch_limits(void **state)
{
	struct fixture *fx = *state;
	struct hs_config *cfg;
	static const struct {
		const char *setting, *want;
	} bad[] = {
	    {"max_age = \"30 days\";", "watch[0].max_age: bad duration \"30 days\" (want e.g. "
				       "\"2s\", \"15m\", \"1h\" or a number of seconds)"},
	    {"max_age = \"0s\";", "watch[0].max_age: must be longer than 0s (write \"\" for no "
				  "limit)"},
	    {"not_before = \"01/12/2026\";",
	     "watch[0].not_before: bad date \"01/12/2026\" (want "
	     "local time as \"2026-12-01\" or \"2026-12-01 18:00\")"},
	    {"not_before = \"2026-02-30\";",
	     "watch[0].not_before: bad date \"2026-02-30\" (want "
	     "local time as \"2026-12-01\" or \"2026-12-01 18:00\")"},
	    {"not_before = \"2026-12-01 18\";", "watch[0].not_before: bad date \"2026-12-01 18\" "
						"(want local time as \"2026-12-01\" or "
						"\"2026-12-01 18:00\")"},
	    {"not_before = \"2026-12-01 24:00\";", "watch[0].not_before: bad date \"2026-12-01 "
						   "24:00\" (want local time as \"2026-12-01\" or "
						   "\"2026-12-01 18:00\")"},
	    {"not_before = 20261201;", "watch[0].not_before: wrong type: want a string in double "
				       "quotes"},
	    {"min_size = \"1 KiB\";", "watch[0].min_size: bad size \"1 KiB\" (want e.g. "
				      "\"16MiB\", \"512KiB\" or a number of bytes)"},
	    {"max_size = -1;", "watch[0].max_size: must not be negative"},
	    {"max_size = 0;", "watch[0].max_size: must be more than 0 (write \"\" for no limit)"},
	    {"min_size = \"2MiB\"; max_size = \"1MiB\";",
	     "watch[0].max_size: 1MiB is below min_size 2MiB; no file could be sent"},
	};

	setenv("TZ", "UTC", 1);
	tzset();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[512], want[512];

		snprintf(text, sizeof(text), UPLOAD "watch = ( { path = \"/a\";\n  %s } );\n",
			 bad[i].setting);
		snprintf(want, sizeof(want), "@F@:6: %s", bad[i].want);
		expect_error(fx, text, want);
	}

	/* Unset, and "" for each: no limit. */
	cfg = load_ok(fx, UPLOAD "watch = ( { path = \"/a\"; }, { path = \"/b\"; max_age = \"\";\n"
				 "  not_before = \"\"; min_size = \"\"; max_size = \"\"; } );\n");
	for (size_t i = 0; i < 2; i++) {
		assert_true(cfg->watches[i].max_age_ms == 0);
		assert_false(cfg->watches[i].has_not_before);
		assert_null(cfg->watches[i].not_before_text);
		assert_true(cfg->watches[i].min_size == 0);
		assert_true(cfg->watches[i].max_size == 0);
	}
	hs_config_free(cfg);

	cfg = load_ok(fx, UPLOAD "watch = ( { path = \"/a\"; max_age = \"30d\";\n"
				 "  not_before = \"2026-12-01\"; min_size = 1;\n"
				 "  max_size = \"2GiB\"; },\n"
				 "  { path = \"/b\"; not_before = \"2026-12-01T17:00:30\"; } );\n");
	assert_true(cfg->watches[0].max_age_ms == 30ULL * 24 * 3600 * 1000);
	assert_true(cfg->watches[0].has_not_before);
	assert_true(cfg->watches[0].not_before == 1796083200); /* 2026-12-01 00:00 UTC */
	assert_string_equal(cfg->watches[0].not_before_text, "2026-12-01");
	assert_true(cfg->watches[0].min_size == 1);
	assert_true(cfg->watches[0].max_size == 2 * GiB);
	assert_true(cfg->watches[1].not_before == 1796144430);
	hs_config_free(cfg);

	/* Local time: 18:00 in Central European winter time is 17:00 UTC. */
	setenv("TZ", "CET-1", 1);
	tzset();
	cfg = load_ok(fx, UPLOAD
		      "watch = ( { path = \"/a\"; not_before = \"2026-12-01 18:00\"; } );\n");
	assert_true(cfg->watches[0].not_before == 1796144400);
	hs_config_free(cfg);
	unsetenv("TZ");
	tzset();
}

static void test_required(void **state)
{
	struct fixture *fx = *state;

	expect_error(fx, "state_dir = \"/var/lib/healsync\";\n", "@F@: upload: is required");
	expect_error(fx, "upload: {\n  api_key_file = \"@D@/upload.key\";\n};\n",
		     "@F@:1: upload.base_url: is required");
	expect_error(fx, "upload: {\n  base_url = \"https://upload.example\";\n};\n",
		     "@F@:1: upload.api_key_file: is required");
	expect_error(fx, UPLOAD "watch = (\n  { path = \"/a\"; },\n  { recursive = false; }\n);\n",
		     "@F@:7: watch[1].path: is required");
	expect_error(fx, UPLOAD "mirror: {\n  api_key_file = \"@D@/records.key\";\n};\n",
		     "@F@:5: mirror.base_url: is required");
	expect_error(fx,
		     UPLOAD "mirror: {\n  base_url = \"https://api.healos.ai/ext-api/v1\";\n};\n",
		     "@F@:5: mirror.api_key_file: is required");
}

static void test_paths(void **state)
{
	struct fixture *fx = *state;

	expect_error(fx, "state_dir = \"var/lib/healsync\";\n" UPLOAD,
		     "@F@:1: state_dir: \"var/lib/healsync\" is not an absolute path");
	expect_error(fx, "state_dir = \"\";\n" UPLOAD,
		     "@F@:1: state_dir: \"\" is not an absolute path");
	expect_error(fx, "state_dir = \"/var/lib/../tmp\";\n" UPLOAD,
		     "@F@:1: state_dir: \"/var/lib/../tmp\" must not contain . or .. components");
	expect_error(fx,
		     "upload: {\n  base_url = \"https://upload.example\";\n  api_key_file = "
		     "\"upload.key\";\n};\n",
		     "@F@:3: upload.api_key_file: \"upload.key\" is not an absolute path");
	expect_error(fx,
		     "upload: {\n  base_url = \"https://upload.example\";\n  api_key_file = "
		     "\"/etc/healsync/\";\n};\n",
		     "@F@:3: upload.api_key_file: \"/etc/healsync/\" names a folder, not a file");
	expect_error(fx, UPLOAD_WITH("ca_file = \"certs/ca.pem\";"),
		     "@F@:4: upload.ca_file: \"certs/ca.pem\" is not an absolute path");
	expect_error(fx, UPLOAD_WITH("ca_file = \"@D@/ca.pem\";"),
		     "@F@:4: upload.ca_file: @D@/ca.pem: No such file or directory");
	expect_error(fx, UPLOAD_WITH("ca_file = \"@D@\";"),
		     "@F@:4: upload.ca_file: @D@: is not a file");
	expect_error(fx, UPLOAD "watch = ( { path = \"srv/in\"; } );\n",
		     "@F@:5: watch[0].path: \"srv/in\" is not an absolute path");
	expect_error(fx, UPLOAD "watch = ( { path = \"/srv/./in\"; } );\n",
		     "@F@:5: watch[0].path: \"/srv/./in\" must not contain . or .. components");
	expect_error(
	    fx, UPLOAD "watch = ( { path = \"/srv/in\";\n  after_upload = \"move:sent\"; } );\n",
	    "@F@:6: watch[0].after_upload: \"sent\" is not an absolute path");
	expect_error(fx,
		     UPLOAD "watch = ( { path = \"/srv/in\";\n  after_upload = \"move:\"; } );\n",
		     "@F@:6: watch[0].after_upload: \"\" is not an absolute path");
	expect_error(fx,
		     UPLOAD "mirror: {\n  base_url = \"https://api.healos.ai/ext-api/v1\";\n"
			    "  api_key_file = \"records.key\";\n};\n",
		     "@F@:7: mirror.api_key_file: \"records.key\" is not an absolute path");
	expect_error(fx, UPLOAD MIRROR_WITH("database = \"mirror.db\";"),
		     "@F@:8: mirror.database: \"mirror.db\" is not an absolute path");
	expect_error(fx, UPLOAD MIRROR_WITH("export = \"out/patients.jsonl\";"),
		     "@F@:8: mirror.export: \"out/patients.jsonl\" is not an absolute path");

	/* An existing CA file is taken. */
	fx_file(fx, "ca.pem", "-----BEGIN CERTIFICATE-----\n", 0644);
	{
		struct hs_config *cfg = load_ok(fx, UPLOAD_WITH("ca_file = \"@D@/ca.pem\";"));
		char *want = subst(fx, "@D@/ca.pem");

		assert_string_equal(cfg->upload.api.ca_file, want);
		free(want);
		hs_config_free(cfg);
	}
}

static void test_overlaps(void **state)
{
	struct fixture *fx = *state;

	expect_error(
	    fx, UPLOAD "watch = (\n  { path = \"/srv/in\"; },\n  { path = \"/srv/in/\"; }\n);\n",
	    "@F@:7: watch[1].path: \"/srv/in\" is already watched by watch[0]");
	expect_error(
	    fx, UPLOAD "watch = (\n  { path = \"/srv/in\"; },\n  { path = \"/srv/in/lab\"; }\n);\n",
	    "@F@:7: watch[1].path: \"/srv/in/lab\" is inside watch[0].path \"/srv/in\"");
	expect_error(
	    fx, UPLOAD "watch = (\n  { path = \"/srv/in/lab\"; },\n  { path = \"/srv\"; }\n);\n",
	    "@F@:7: watch[1].path: \"/srv\" contains watch[0].path \"/srv/in/lab\"");
	expect_error(fx,
		     UPLOAD "watch = (\n  { path = \"/srv/a\"; },\n  { path = \"/srv/b\"; },\n"
			    "  { path = \"/\"; }\n);\n",
		     "@F@:8: watch[2].path: \"/\" contains watch[0].path \"/srv/a\"");
	expect_error(
	    fx, "state_dir = \"/srv/in/.state\";\n" UPLOAD "watch = ( { path = \"/srv/in\"; } );\n",
	    "@F@:6: watch[0].path: \"/srv/in\" contains state_dir \"/srv/in/.state\"; the "
	    "queue would upload itself");
	/* Component-wise: these do not overlap. */
	hs_config_free(load_ok(fx, UPLOAD "watch = ( { path = \"/a/b\"; }, { path = \"/a/bc\"; },"
					  " { path = \"/a/b-c\"; } );\n"));
}

static void test_move_dirs(void **state)
{
	struct fixture *fx = *state;

	expect_error(
	    fx,
	    UPLOAD
	    "watch = ( { path = \"/srv/in\";\n  after_upload = \"move:/srv/in/sent\"; } );\n",
	    "@F@:6: watch[0].after_upload: \"/srv/in/sent\" is inside this watch's own folder; "
	    "moved files would be uploaded again");
	expect_error(
	    fx, UPLOAD "watch = ( { path = \"/srv/in\";\n  after_upload = \"move:/srv/in\"; } );\n",
	    "@F@:6: watch[0].after_upload: \"/srv/in\" is inside this watch's own folder; "
	    "moved files would be uploaded again");
	expect_error(
	    fx,
	    UPLOAD "watch = (\n  { path = \"/srv/a\"; },\n  { path = \"/srv/b\";\n"
		   "    after_upload = \"move:/srv/a/done\"; }\n);\n",
	    "@F@:8: watch[1].after_upload: \"/srv/a/done\" is inside watch[0].path \"/srv/a\"; "
	    "moved files would be uploaded again");
	/* Beside the folder is fine, even with a shared name prefix. */
	hs_config_free(load_ok(
	    fx,
	    UPLOAD "watch = ( { path = \"/srv/in\"; after_upload = \"move:/srv/in-sent\"; } );\n"));
}

static void test_urls(void **state)
{
	struct fixture *fx = *state;
	struct hs_config *cfg;

	expect_error(
	    fx, UPLOAD_URL("http://upload.example/v1"),
	    "@F@:2: upload.base_url: uses http:// to another machine; use https:// (http:// "
	    "is only allowed to localhost, 127.0.0.0/8 and ::1)");
	expect_error(
	    fx, UPLOAD_URL("ftp://upload.example/v1"),
	    "@F@:2: upload.base_url: must start with https:// (or http:// for a server on this "
	    "machine)");
	expect_error(
	    fx, UPLOAD_URL("upload.example/v1"),
	    "@F@:2: upload.base_url: must start with https:// (or http:// for a server on this "
	    "machine)");
	expect_error(fx, UPLOAD_URL("https://me:pw@upload.example/v1"),
		     "@F@:2: upload.base_url: must not contain a user name or password");
	expect_error(fx, UPLOAD_URL("https://upload.example/v1?x=1"),
		     "@F@:2: upload.base_url: must not contain a query (?) or a fragment (#)");
	expect_error(fx, UPLOAD_URL("https:///v1"), "@F@:2: upload.base_url: has no host");
	expect_error(fx, UPLOAD_URL("https://upload.example:99999/v1"),
		     "@F@:2: upload.base_url: has a bad port");
	expect_error(fx, UPLOAD_URL("https://upload example/v1"),
		     "@F@:2: upload.base_url: must not contain spaces, control characters or "
		     "backslashes");
	expect_error(
	    fx,
	    UPLOAD "mirror: {\n  base_url = \"http://10.0.0.1/v1\";\n"
		   "  api_key_file = \"@D@/records.key\";\n};\n",
	    "@F@:6: mirror.base_url: uses http:// to another machine; use https:// (http:// "
	    "is only allowed to localhost, 127.0.0.0/8 and ::1)");

	cfg = load_ok(fx, UPLOAD_URL("http://localhost:8080///"));
	assert_string_equal(cfg->upload.api.base_url, "http://localhost:8080");
	hs_config_free(cfg);
	cfg = load_ok(fx, UPLOAD_URL("https://upload.example/"));
	assert_string_equal(cfg->upload.api.base_url, "https://upload.example");
	hs_config_free(cfg);
	cfg = load_ok(fx, UPLOAD_URL("http://[::1]:8443/ext-api/v1"));
	assert_string_equal(cfg->upload.api.base_url, "http://[::1]:8443/ext-api/v1");
	hs_config_free(cfg);
}

static void test_url_allowed(void **state)
{
	static const char *const good[] = {
	    "https://upload.example/ext-api/v1",
	    "HTTPS://upload.example",
	    "https://user@upload.example/x?sig=1#f",
	    "https://[2001:db8::1]:443/x",
	    "http://localhost/x",
	    "http://LOCALHOST:8080",
	    "http://127.0.0.1:9000/presigned?X-Sig=abc",
	    "http://127.255.255.254/",
	    "http://[::1]:8080/x",
	    "http://[::ffff:127.0.0.1]/",
	    "http://::1/",
	};
	static const char *const bad[] = {
	    "",
	    "ftp://upload.example/",
	    "upload.example",
	    "//upload.example",
	    "http://upload.example/",
	    "http://128.0.0.1/",
	    "http://127.0.0.1.nip.io/",
	    "http://localhost.example/",
	    "http://127.0.0.1@evil.example/",
	    "http://evil.example#@127.0.0.1/",
	    "http://evil.example\\@127.0.0.1/",
	    "http://[::2]/",
	    "http://[::1/",
	    "http://127.1/",
	    "https://",
	    "https:///x",
	    "https://host:80x/",
	    "https://up load.example/",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!hs_url_allowed(good[i]))
			fail_msg("refused: %s", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (hs_url_allowed(bad[i]))
			fail_msg("allowed: %s", bad[i]);
	assert_false(hs_url_allowed(NULL));
}

static void test_key_files(void **state)
{
	struct fixture *fx = *state;
	char key[9100];
	struct hs_config *cfg;

	char path[160];

	assert_int_equal(unlink(fx_path(fx, "upload.key", path, sizeof(path))), 0);
	expect_error(fx, UPLOAD,
		     "@F@:3: upload.api_key_file: @D@/upload.key: No such file or directory");
	fx_file(fx, "upload.key", "", 0600);
	expect_error(fx, UPLOAD, "@F@:3: upload.api_key_file: @D@/upload.key: is empty");
	fx_file(fx, "upload.key", " \n\r\n", 0600);
	expect_error(fx, UPLOAD, "@F@:3: upload.api_key_file: @D@/upload.key: is empty");
	fx_file(fx, "upload.key", "abc\n", 0644);
	expect_error(
	    fx, UPLOAD,
	    "@F@:3: upload.api_key_file: @D@/upload.key: is readable by others (mode 0644); "
	    "run chmod o-rwx on it");
	fx_file(fx, "upload.key", "abc\n", 0602);
	expect_error(
	    fx, UPLOAD,
	    "@F@:3: upload.api_key_file: @D@/upload.key: is writable by others (mode 0602); "
	    "run chmod o-rwx on it");
	fx_file(fx, "upload.key",
		"ab\x01"
		"c\n",
		0600);
	expect_error(fx, UPLOAD,
		     "@F@:3: upload.api_key_file: @D@/upload.key: holds control characters (a key "
		     "is one line of text)");
	fx_file(fx, "upload.key", "key-one\nkey-two\n", 0600);
	expect_error(fx, UPLOAD,
		     "@F@:3: upload.api_key_file: @D@/upload.key: holds control characters (a key "
		     "is one line of text)");
	memset(key, 'k', 4097);
	key[4097] = '\0';
	fx_file(fx, "upload.key", key, 0600);
	expect_error(
	    fx, UPLOAD,
	    "@F@:3: upload.api_key_file: @D@/upload.key: holds a key longer than 4096 bytes");
	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	fx_file(fx, "upload.key", key, 0600);
	expect_error(
	    fx, UPLOAD,
	    "@F@:3: upload.api_key_file: @D@/upload.key: holds a key longer than 4096 bytes");
	/* Nothing hides behind much whitespace. */
	memset(key, ' ', sizeof(key) - 2);
	memcpy(key, "abc", 3);
	key[sizeof(key) - 2] = 'x';
	key[sizeof(key) - 1] = '\0';
	fx_file(fx, "upload.key", key, 0600);
	expect_error(
	    fx, UPLOAD,
	    "@F@:3: upload.api_key_file: @D@/upload.key: holds a key longer than 4096 bytes");
	expect_error(
	    fx,
	    "upload: {\n  base_url = \"https://upload.example\";\n  api_key_file = \"@D@\";\n};\n",
	    "@F@:3: upload.api_key_file: @D@: is not a regular file");

	fx_file(fx, "upload.key", "abc\n", 0660);
	expect_error(
	    fx, UPLOAD,
	    "@F@:3: upload.api_key_file: @D@/upload.key: is writable by its group (mode 0660); "
	    "run chmod g-w on it");
	fx_file(fx, "real.key", "abc\n", 0600);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(symlink("real.key", path), 0);
	expect_error(fx, UPLOAD,
		     "@F@:3: upload.api_key_file: @D@/upload.key: is a symbolic link; name the "
		     "file itself");
	assert_int_equal(unlink(path), 0);
	fx_file(fx, "upload.key", "abc\n", 0600);
	if (geteuid() == 0) {
		char want[200];

		assert_int_equal(chown(path, 65534, 65534), 0);
		snprintf(
		    want, sizeof(want),
		    "@F@:3: upload.api_key_file: @D@/upload.key: is owned by uid 65534, not by "
		    "root or uid 0 (the user healsync runs as)");
		expect_error(fx, UPLOAD, want);
		assert_int_equal(chown(path, 0, 0), 0);
	}

	/* Exactly 4096 bytes, a CRLF, group-readable: fine. */
	memset(key, 'k', 4096);
	memcpy(key + 4096, "\r\n", 3);
	fx_file(fx, "upload.key", key, 0640);
	cfg = load_ok(fx, UPLOAD);
	assert_int_equal(strlen(cfg->upload.api.secret->value), 4096);
	hs_config_free(cfg);

	fx_file(fx, "upload.key", "with inner space \t \n", 0400);
	cfg = load_ok(fx, UPLOAD);
	assert_string_equal(cfg->upload.api.secret->value, "with inner space");
	hs_config_free(cfg);

	/* The mirror's key is checked too, after everything else. */
	fx_file(fx, "records.key", "x\n", 0604);
	expect_error(fx, UPLOAD MIRROR_WITH("page_size = 10;"),
		     "@F@:7: mirror.api_key_file: @D@/records.key: is readable by others (mode "
		     "0604); run chmod o-rwx on it");
	expect_error(fx, UPLOAD MIRROR_WITH("page_size = 0;"),
		     "@F@:8: mirror.page_size: 0 is out of range (1 to 100)");
}

static void test_credentials_directory(void **state)
{
	struct fixture *fx = *state;
	struct hs_config *cfg;
	char creds[128];

	snprintf(creds, sizeof(creds), "%s/creds", fx->dir);
	assert_int_equal(mkdir(creds, 0700), 0);
	fx_file(fx, "creds/upload.key", "from-credentials\n", 0400);
	assert_int_equal(setenv("CREDENTIALS_DIRECTORY", creds, 1), 0);

	/* Only the base name of api_key_file counts. */
	cfg = load_ok(fx, "upload: {\n  base_url = \"https://upload.example\";\n"
			  "  api_key_file = \"/etc/healsync/upload.key\";\n};\n");
	assert_string_equal(cfg->upload.api.secret->value, "from-credentials");
	assert_string_equal(cfg->upload.api.api_key_file, "/etc/healsync/upload.key");
	hs_config_free(cfg);

	expect_error(fx, UPLOAD MIRROR_WITH("page_size = 10;"),
		     "@F@:7: mirror.api_key_file: @D@/creds/records.key (from "
		     "$CREDENTIALS_DIRECTORY): No such file or directory");

	/* Empty means unset. */
	assert_int_equal(setenv("CREDENTIALS_DIRECTORY", "", 1), 0);
	cfg = load_ok(fx, UPLOAD);
	assert_string_equal(cfg->upload.api.secret->value, UPLOAD_KEY);
	hs_config_free(cfg);
}

static void test_config_path(void **state)
{
	(void)state;
	assert_int_equal(unsetenv("HEALSYNC_CONFIG"), 0);
	assert_string_equal(hs_config_path(NULL), HS_SYSCONFDIR "/healsync/healsync.conf");
	assert_string_equal(hs_config_path("/x.conf"), "/x.conf");
	assert_int_equal(setenv("HEALSYNC_CONFIG", "/env.conf", 1), 0);
	assert_string_equal(hs_config_path(NULL), "/env.conf");
	assert_string_equal(hs_config_path("/x.conf"), "/x.conf");
	assert_int_equal(setenv("HEALSYNC_CONFIG", "", 1), 0);
	assert_string_equal(hs_config_path(NULL), HS_DEFAULT_CONFIG);
	assert_int_equal(unsetenv("HEALSYNC_CONFIG"), 0);
	assert_null(hs_config_free(NULL));
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_full_config),
	    T(test_defaults),
	    T(test_numbers),
	    T(test_shipped_sample),
	    T(test_print),
	    T(test_mirror_transport),
	    T(test_syntax_and_files),
	    T(test_include_not_a_file),
	    T(test_padded_numbers),
	    T(test_health),
	    T(test_unknown_settings),
	    T(test_wrong_types),
	    T(test_bad_values),
	    T(test_remote_prefix),
	    T(test_ranges),
	    T(test_watch_limits),
	    T(test_required),
	    T(test_paths),
	    T(test_overlaps),
	    T(test_move_dirs),
	    T(test_urls),
	    T(test_url_allowed),
	    T(test_key_files),
	    T(test_credentials_directory),
	    T(test_config_path),
	};

	unsetenv("CREDENTIALS_DIRECTORY");
	unsetenv("HEALSYNC_CONFIG");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
