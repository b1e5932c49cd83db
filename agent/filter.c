/*
 * filter: include/exclude globs with fnmatch(3), then the folder's limits.
 */
#include "config.h"

#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "agent/filter.h"
#include "conf/units.h"

/* Editors' and downloaders' temporaries, and healsync's own (after.c). */
static const char *const temporaries[] = {
    "*~",
    ".#*",
    ".~lock.*",
    "#*#",
    "*.swp",
    "*.swx",
    "*.part",
    "*.crdownload",
    ".healsync-del-*",
    ".healsync-move-*",
    NULL,
};

static bool match(const char *pattern, const char *rel, const char *name, int flags)
{
	if (strchr(pattern, '/'))
		return fnmatch(pattern, rel, FNM_PATHNAME | FNM_PERIOD | flags) == 0;
	return fnmatch(pattern, name, flags) == 0;
}

/* The first of patterns that matches, or NULL. */
static const char *match_any(char *const *patterns, const char *rel, const char *name, int flags)
{
	for (; patterns && *patterns; patterns++)
		if (match(*patterns, rel, name, flags))
			return *patterns;
	return NULL;
}

enum hs_reason hs_filter_decide(const struct hs_watch *w, const char *rel, const char *name,
				const struct hs_file_facts *facts, int64_t now_ms,
				const char **ret_rule)
{
	int f = w->ignore_case ? FNM_CASEFOLD : 0;
	const char *rule;

	if (ret_rule)
		*ret_rule = NULL;
	if (match_any((char *const *)temporaries, rel, name, 0))
		return HS_REASON_TEMPORARY;
	if ((rule = match_any(w->exclude, rel, name, f))) {
		if (ret_rule)
			*ret_rule = rule;
		return HS_REASON_EXCLUDED;
	}
	if (w->include && w->include[0] && !match_any(w->include, rel, name, f))
		return HS_REASON_NOT_INCLUDED;
	if (!facts)
		return HS_REASON_SEND;
	if (facts->size < 0 || (uint64_t)facts->size < w->min_size)
		return HS_REASON_TOO_SMALL;
	if (w->max_size && (uint64_t)facts->size > w->max_size)
		return HS_REASON_TOO_LARGE;
	/* Whole seconds, rounded down: not_before is written to the second,
	 * and a file modified at 18:00:00.5 is not before 18:00:00. */
	int64_t sec = facts->mtime_ns / 1000000000 - (facts->mtime_ns % 1000000000 < 0);
	if (w->has_not_before && sec < w->not_before)
		return HS_REASON_NOT_BEFORE;
	if (w->max_age_ms && now_ms - facts->mtime_ns / 1000000 > (int64_t)w->max_age_ms)
		return HS_REASON_TOO_OLD;
	return HS_REASON_SEND;
}

bool hs_filter_settled(const struct hs_watch *w, int64_t mtime_ns, int64_t now_ms)
{
	return now_ms - mtime_ns / 1000000 >= (int64_t)w->settle_ms;
}

bool hs_filter_file(const struct hs_watch *w, const char *rel, const char *name)
{
	return hs_filter_decide(w, rel, name, NULL, 0, NULL) == HS_REASON_SEND;
}

bool hs_filter_dir_rule(const struct hs_watch *w, const char *rel, const char *name,
			const char **ret_rule)
{
	const char *rule = match_any(w->exclude, rel, name, w->ignore_case ? FNM_CASEFOLD : 0);

	if (ret_rule)
		*ret_rule = rule;
	return !rule;
}

bool hs_filter_dir(const struct hs_watch *w, const char *rel, const char *name)
{
	return hs_filter_dir_rule(w, rel, name, NULL);
}

static const struct {
	const char *name, *text;
} reasons[HS_REASON_COUNT] = {
    [HS_REASON_SEND] = {"send", "to send"},
    [HS_REASON_QUEUED] = {"queued", "already queued"},
    [HS_REASON_STORED] = {"stored", "already stored"},
    [HS_REASON_SETTLING] = {"settling", "too new (settling)"},
    [HS_REASON_UNNAMEABLE] = {"unnameable", "no remote name"},
    [HS_REASON_NOT_REGULAR] = {"not_regular", "not regular"},
    [HS_REASON_TEMPORARY] = {"temporary", "temporary"},
    [HS_REASON_EXCLUDED] = {"excluded", "excluded"},
    [HS_REASON_NOT_INCLUDED] = {"not_included", "not included"},
    [HS_REASON_TOO_SMALL] = {"too_small", "too small"},
    [HS_REASON_TOO_LARGE] = {"too_large", "too large"},
    [HS_REASON_NOT_BEFORE] = {"not_before", "before not_before"},
    [HS_REASON_TOO_OLD] = {"too_old", "too old"},
};

const char *hs_reason_name(enum hs_reason r)
{
	return r < HS_REASON_COUNT ? reasons[r].name : "unknown";
}

const char *hs_reason_text(enum hs_reason r)
{
	return r < HS_REASON_COUNT ? reasons[r].text : "unknown";
}

static const char *globs(const char *key, char *const *g, char *buf, size_t len)
{
	size_t o = (size_t)snprintf(buf, len, "%s ", key);

	for (size_t i = 0; g && g[i] && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? ", " : "", g[i]);
	return buf;
}

const char *hs_reason_rule(const struct hs_watch *w, enum hs_reason r, char *buf, size_t len)
{
	char v[32];

	buf[0] = '\0';
	switch (r) {
	case HS_REASON_SETTLING:
		snprintf(buf, len, "settle %s", hs_format_duration(w->settle_ms, v, sizeof(v)));
		break;
	case HS_REASON_EXCLUDED:
		return w->exclude && w->exclude[0] ? globs("exclude", w->exclude, buf, len) : buf;
	case HS_REASON_NOT_INCLUDED:
		return w->include && w->include[0] ? globs("include", w->include, buf, len) : buf;
	case HS_REASON_TOO_SMALL:
		if (w->min_size)
			snprintf(buf, len, "min_size %s",
				 hs_format_size_exact(w->min_size, v, sizeof(v)));
		break;
	case HS_REASON_TOO_LARGE:
		if (w->max_size)
			snprintf(buf, len, "max_size %s",
				 hs_format_size_exact(w->max_size, v, sizeof(v)));
		break;
	case HS_REASON_NOT_BEFORE:
		if (w->has_not_before && w->not_before_text)
			snprintf(buf, len, "not_before %s", w->not_before_text);
		break;
	case HS_REASON_TOO_OLD:
		if (w->max_age_ms)
			snprintf(buf, len, "max_age %s",
				 hs_format_duration(w->max_age_ms, v, sizeof(v)));
		break;
	default:
		break;
	}
	return buf;
}
