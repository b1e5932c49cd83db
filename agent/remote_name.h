/*
 * remote_name: the name a local file is stored under on the server.
 *
 *   remote_prefix + path relative to the watch root, "/" separators
 *
 * The server wants valid UTF-8, but Linux filenames are bytes. Bytes that are
 * not part of valid UTF-8, and control characters (which no server keeps in
 * a name), are written as "%XX" (upper-case hex). So that the
 * mapping stays reversible, a literal "%" is written as "%25" when two hex
 * digits follow it; any other "%" stays as it is:
 *
 *   "caf\xe9.pdf"   -> "caf%E9.pdf"       (Latin-1 byte)
 *   "a\nb.pdf"      -> "a%0Ab.pdf"        (control character)
 *   "100%.pdf"      -> "100%.pdf"
 *   "50%AB.pdf"     -> "50%25AB.pdf"
 *
 * Pure functions, no I/O.
 */
#ifndef HS_AGENT_REMOTE_NAME_H
#define HS_AGENT_REMOTE_NAME_H

#include <stddef.h>

#include "conf/conf.h"

/* The remote name for rel (relative, no leading "/"), or NULL when rel is
 * empty, has an empty, "." or ".." segment, or memory ran out. The caller
 * frees the result. */
char *hs_remote_name(const char *prefix, const char *rel);

/* The inverse of the escaping: the original bytes of an escaped name. The
 * caller frees the result; NULL when memory ran out. */
char *hs_remote_name_unescape(const char *name);

/* The watch folder holding abspath (compared by whole path components), with
 * *ret_rel pointing into abspath after the root and its "/". NULL if none. */
const struct hs_watch *hs_watch_for_path(const struct hs_config *cfg, const char *abspath,
					 const char **ret_rel);

#endif
