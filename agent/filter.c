/*
 * filter: include/exclude globs with fnmatch(3).
 */
#include "config.h"

#include <fnmatch.h>
#include <string.h>

#include "agent/filter.h"

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

static bool match(const char *pattern, const char *rel, const char *name)
{
	if (strchr(pattern, '/'))
		return fnmatch(pattern, rel, FNM_PATHNAME | FNM_PERIOD) == 0;
	return fnmatch(pattern, name, 0) == 0;
}

static bool match_any(char *const *patterns, const char *rel, const char *name)
{
	for (; patterns && *patterns; patterns++)
		if (match(*patterns, rel, name))
			return true;
	return false;
}

bool hs_filter_file(const struct hs_watch *w, const char *rel, const char *name)
{
	if (match_any((char *const *)temporaries, rel, name) || match_any(w->exclude, rel, name))
		return false;
	return !w->include || !w->include[0] || match_any(w->include, rel, name);
}

bool hs_filter_dir(const struct hs_watch *w, const char *rel, const char *name)
{
	return !match_any(w->exclude, rel, name);
}
