/*
 * print: the effective configuration, as check-config shows it.
 *
 * Every setting is written out, defaults included, in libconfig syntax and
 * in units hs_config_load() reads back, so the output can be diffed against
 * another machine's or pasted into a file. The secrets never appear: a key
 * is shown as api_key = "<redacted>", a token as token = "<redacted>", and a
 * password inside the proxy URL is masked the same way. The drop-ins read
 * and what each set lead the output, as comments.
 */
#include "config.h"

#include <string.h>

#include "conf/conf.h"
#include "conf/units.h"

/* The inside of a libconfig string literal. */
static void print_escaped(FILE *out, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(out, "\\x%02x", c);
		else
			fputc(c, out);
	}
}

static void print_string(FILE *out, const char *s)
{
	fputc('"', out);
	print_escaped(out, s, strlen(s));
	fputc('"', out);
}

static void print_setting(FILE *out, const char *indent, const char *name, const char *value)
{
	fprintf(out, "%s%s = ", indent, name);
	print_string(out, value);
	fputs(";\n", out);
}

static void print_size(FILE *out, const char *indent, const char *name, uint64_t bytes)
{
	char buf[32];

	print_setting(out, indent, name, hs_format_size_exact(bytes, buf, sizeof(buf)));
}

static void print_duration(FILE *out, const char *indent, const char *name, uint64_t ms)
{
	char buf[32];

	print_setting(out, indent, name, hs_format_duration(ms, buf, sizeof(buf)));
}

static void print_globs(FILE *out, const char *indent, const char *name, char **globs)
{
	fprintf(out, "%s%s = [", indent, name);
	for (size_t i = 0; globs && globs[i]; i++) {
		fputs(i ? ", " : " ", out);
		print_string(out, globs[i]);
	}
	fputs(" ];\n", out);
}

/* "http://user:secret@proxy:3128" -> "http://<redacted>@proxy:3128" */
static void print_proxy(FILE *out, const char *indent, const char *proxy)
{
	const char *scheme = proxy ? strstr(proxy, "://") : NULL;
	const char *auth = scheme ? scheme + 3 : proxy;
	const char *end = auth ? auth + strcspn(auth, "/?#") : NULL;
	const char *at = NULL;

	for (const char *p = auth; p && p < end; p++)
		if (*p == '@')
			at = p;
	if (!at) {
		print_setting(out, indent, "proxy", proxy ? proxy : "");
		return;
	}
	fprintf(out, "%sproxy = \"", indent);
	print_escaped(out, proxy, (size_t)(auth - proxy));
	fputs("<redacted>", out);
	print_escaped(out, at, strlen(at));
	fputs("\";\n", out);
}

static void print_api(FILE *out, const struct hs_api *api)
{
	print_setting(out, "  ", "base_url", api->base_url);
	if (api->auth == HS_AUTH_BEARER) {
		print_setting(out, "  ", "auth", "bearer");
		print_setting(out, "  ", "token_file", api->token_file);
		print_setting(out, "  ", "token", "<redacted>");
	} else {
		print_setting(out, "  ", "auth", "api-key");
		print_setting(out, "  ", "api_key_file", api->api_key_file);
		print_setting(out, "  ", "api_key", "<redacted>");
	}
}

static const char *level_name(enum hs_log_level level)
{
	switch (level) {
	case HS_LOG_ERR:
		return "err";
	case HS_LOG_WARNING:
		return "warning";
	case HS_LOG_NOTICE:
		return "notice";
	case HS_LOG_INFO:
		return "info";
	case HS_LOG_DEBUG:
		return "debug";
	}
	return "info";
}

static void print_watch(FILE *out, const struct hs_watch *w, bool last)
{
	const char *in = "    ";

	fputs("  {\n", out);
	print_setting(out, in, "path", w->path);
	print_setting(out, in, "remote_prefix", w->remote_prefix);
	fprintf(out, "%srecursive = %s;\n", in, w->recursive ? "true" : "false");
	fprintf(out, "%signore_case = %s;\n", in, w->ignore_case ? "true" : "false");
	print_globs(out, in, "include", w->include);
	print_globs(out, in, "exclude", w->exclude);
	print_duration(out, in, "settle", w->settle_ms);
	print_duration(out, in, "rescan", w->rescan_ms);
	/* The limits as the sample writes them: "" when off. */
	if (w->max_age_ms)
		print_duration(out, in, "max_age", w->max_age_ms);
	else
		print_setting(out, in, "max_age", "");
	print_setting(out, in, "not_before", w->has_not_before ? w->not_before_text : "");
	if (w->min_size)
		print_size(out, in, "min_size", w->min_size);
	else
		print_setting(out, in, "min_size", "");
	if (w->max_size)
		print_size(out, in, "max_size", w->max_size);
	else
		print_setting(out, in, "max_size", "");
	if (w->after_upload == HS_AFTER_MOVE) {
		fprintf(out, "%safter_upload = \"move:", in);
		print_escaped(out, w->move_dir, strlen(w->move_dir));
		fputs("\";\n", out);
	} else {
		print_setting(out, in, "after_upload",
			      w->after_upload == HS_AFTER_DELETE ? "delete" : "keep");
	}
	fprintf(out, "  }%s\n", last ? "" : ",");
}

void hs_config_print(const struct hs_config *cfg, FILE *out)
{
	fputs("# healsync: effective configuration of ", out);
	print_escaped(out, cfg->path, strlen(cfg->path));
	fputs("\n", out);
	for (size_t i = 0; cfg->dropins && cfg->dropins[i]; i++) {
		fputs(i ? "#   " : "# and its drop-ins, in this order:\n#   ", out);
		print_escaped(out, cfg->dropins[i], strlen(cfg->dropins[i]));
		fputs("\n", out);
	}
	for (size_t i = 0; cfg->dropin_settings && cfg->dropin_settings[i]; i++) {
		fputs(i ? "#   " : "# set by the drop-ins (the last one wins):\n#   ", out);
		print_escaped(out, cfg->dropin_settings[i], strlen(cfg->dropin_settings[i]));
		fputs("\n", out);
	}
	fputs("\n", out);
	print_setting(out, "", "state_dir", cfg->state_dir);
	print_setting(out, "", "metrics_file", cfg->metrics_file ? cfg->metrics_file : "");

	fputs("\nhealth: {\n", out);
	print_duration(out, "  ", "stalled_after", cfg->health.stalled_after_ms);
	print_duration(out, "  ", "queued_age_warning", cfg->health.queued_age_warning_ms);
	print_duration(out, "  ", "queued_age_critical", cfg->health.queued_age_critical_ms);
	print_duration(out, "  ", "mirror_grace", cfg->health.mirror_grace_ms);
	print_size(out, "  ", "min_free", cfg->health.min_free);
	fputs("};\n", out);

	fputs("\nupload: {\n", out);
	print_api(out, &cfg->upload.api);
	print_size(out, "  ", "multipart_threshold", cfg->upload.multipart_threshold);
	print_size(out, "  ", "part_size", cfg->upload.part_size);
	fprintf(out, "  parallel = %u;\n", cfg->upload.parallel);
	print_setting(out, "  ", "bandwidth", hs_timetable_text(cfg->upload.bandwidth));
	fprintf(out, "  max_attempts = %u;\n", cfg->upload.max_attempts);
	print_duration(out, "  ", "connect_timeout", cfg->upload.connect_timeout_ms);
	print_duration(out, "  ", "stall_timeout", cfg->upload.stall_timeout_ms);
	print_setting(out, "  ", "ca_file", cfg->upload.api.ca_file ? cfg->upload.api.ca_file : "");
	print_proxy(out, "  ", cfg->upload.api.proxy);
	fputs("};\n\nwatch = (\n", out);
	for (size_t i = 0; i < cfg->n_watches; i++)
		print_watch(out, &cfg->watches[i], i + 1 == cfg->n_watches);
	fputs(");\n", out);

	if (cfg->mirror.enabled) {
		fputs("\nmirror: {\n", out);
		print_api(out, &cfg->mirror.api);
		print_setting(out, "  ", "schedule", cfg->mirror.schedule);
		print_duration(out, "  ", "jitter", cfg->mirror.jitter_ms);
		fprintf(out, "  page_size = %u;\n", cfg->mirror.page_size);
		fprintf(out, "  fetch_details = %s;\n",
			cfg->mirror.fetch_details ? "true" : "false");
		print_setting(out, "  ", "database", cfg->mirror.database);
		print_setting(out, "  ", "export",
			      cfg->mirror.export_path ? cfg->mirror.export_path : "");
		print_setting(out, "  ", "ca_file",
			      cfg->mirror.api.ca_file ? cfg->mirror.api.ca_file : "");
		print_proxy(out, "  ", cfg->mirror.api.proxy);
		fputs("};\n", out);
	} else {
		fputs("\n# mirror: not configured\n", out);
	}
	fprintf(out, "\nlog: { level = \"%s\"; };\n", level_name(cfg->log_level));
}
