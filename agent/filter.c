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

static bool match(const char *pattern, const char *rel, const char *name, int flags)
{
	if (strchr(pattern, '/'))
		return fnmatch(pattern, rel, FNM_PATHNAME | FNM_PERIOD | flags) == 0;
	return fnmatch(pattern, name, flags) == 0;
}

static bool match_any(char *const *patterns, const char *rel, const char *name, int flags)
{
	for (; patterns && *patterns; patterns++)
		if (match(*patterns, rel, name, flags))
			return true;
	return false;
}

bool hs_filter_file(const struct hs_watch *w, const char *rel, const char *name)
{
	int f = w->ignore_case ? FNM_CASEFOLD : 0;

	if (match_any((char *const *)temporaries, rel, name, 0) ||
	    match_any(w->exclude, rel, name, f))
		return false;
	return !w->include || !w->include[0] || match_any(w->include, rel, name, f);
}

bool hs_filter_dir(const struct hs_watch *w, const char *rel, const char *name)
{
	return !match_any(w->exclude, rel, name, w->ignore_case ? FNM_CASEFOLD : 0);
}
