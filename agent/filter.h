/*
 * filter: which names in a watched folder count.
 *
 * A file counts when it matches one of `include` (or include is empty) and
 * none of `exclude`, and is not a temporary file that editors and copy
 * tools leave while they write (`*~`, `.#*`, `#*#`, `*.swp`, `*.part`,
 * `*.crdownload`, `.~lock.*`): those become real files by a rename, which
 * the watcher sees. A directory is skipped, with all below it, when its
 * name matches `exclude` (".*" keeps `.git` out); include is for files.
 *
 * A pattern without "/" matches the name alone; one with "/" matches the
 * path relative to the watch folder, "*" not crossing "/" (fnmatch(3) with
 * FNM_PATHNAME). Pure functions.
 */
#ifndef HS_AGENT_FILTER_H
#define HS_AGENT_FILTER_H

#include <stdbool.h>

#include "conf/conf.h"

/* rel: path relative to the watch folder; name: its last component. */
bool hs_filter_file(const struct hs_watch *w, const char *rel, const char *name);
bool hs_filter_dir(const struct hs_watch *w, const char *rel, const char *name);

#endif
