/*
 * remote_name: the name a local file is stored under on the server.
 *
 *   remote_prefix + path relative to the watch root, "/" separators
 *
 * The server wants valid UTF-8, but Linux filenames are bytes. SPEC 1.1: a
 * name that is valid UTF-8 without control characters travels byte for
 * byte, "%" included. Only the other names are escaped, as a whole:
 *
 *   - bytes that are not part of valid UTF-8, and control characters (C0
 *     and DEL, which no server keeps in a name), become "%XX" (upper-case
 *     hex);
 *   - every "%" that two hex digits follow becomes "%25";
 *   - everything else stays as it is.
 *
 * So that the mapping stays reversible, a name is also escaped when it
 * holds "%XX" (either case) naming a byte that escaping produces: 00-1F,
 * 7F, 80-FF, or 25. An escaped name always holds such a "%XX" and a name
 * sent as it is never does, which tells the two apart:
 *
 *   "percent%41 value.txt" -> "percent%41 value.txt" (valid UTF-8: as is)
 *   "100%.pdf"             -> "100%.pdf"
 *   "caf\xe9.pdf"          -> "caf%E9.pdf"            (Latin-1 byte)
 *   "a\nb.pdf"             -> "a%0Ab.pdf"             (control character)
 *   "caf\xe9 %41.pdf"      -> "caf%E9 %2541.pdf"
 *   "caf%E9.pdf"           -> "caf%25E9.pdf"          (looks escaped)
 *   "50%25.pdf"            -> "50%2525.pdf"
 *
 * The name functions are pure, no I/O; hs_watch_for_path reads the file
 * system (it resolves the watch folders' paths).
 */
#ifndef HS_AGENT_REMOTE_NAME_H
#define HS_AGENT_REMOTE_NAME_H

#include <stddef.h>

#include "conf/conf.h"

/* The remote name for rel (relative, no leading "/"), or NULL when rel is
 * empty, has an empty, "." or ".." segment, or memory ran out. The caller
 * frees the result. */
char *hs_remote_name(const char *prefix, const char *rel);

/* The inverse of the escaping: the original bytes of a remote name (an
 * unescaped one comes back as it is). The caller frees the result; NULL
 * when memory ran out. */
char *hs_remote_name_unescape(const char *name);

/* The watch folder holding abspath, a path as realpath() gives it:
 * compared by whole path components with each folder's path as configured
 * and as resolved, since a folder may be configured through a symlink
 * (/srv -> /data: "/data/x" is in the folder "/srv"). The first folder in
 * the config that holds it wins.
 *
 * Returns 1 with *ret_w, *ret_path and *ret_rel set when a folder holds
 * it: *ret_path is the file's path as the watcher names it, the folder's
 * configured path, "/" and the part below it ("/srv/x"; the caller frees
 * it), and *ret_rel points into *ret_path after the folder and its "/".
 * Returns 0 when no folder holds it, -1 when memory ran out; the outputs
 * are set only on 1. */
int hs_watch_for_path(const struct hs_config *cfg, const char *abspath,
		      const struct hs_watch **ret_w, char **ret_path, const char **ret_rel);

#endif
