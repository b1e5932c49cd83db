/*
 * token: what healsync reads of a Bearer token, and the warning before it
 * expires.
 *
 * The vendor's tokens are JWTs: three base64url parts joined by dots, the
 * middle one a JSON object whose "exp" claim is the Unix time the token
 * stops working. healsync reads exp and nothing else, and verifies no
 * signature: whether a token is good is the server's to say. exp is used
 * for words only, never to decide whether to send: a warning in the
 * journal a day ahead, and "the token expired at ..." in the 401 line.
 *
 * Example: a token with exp 1765000000 (2025-12-06 05:46:40 UTC), loaded
 * at 2025-12-04 12:00 UTC, arms a timer for 2025-12-05 05:46:40 UTC, which
 * logs one warning naming token_file and the time; a token rotated in the
 * file and taken up before then moves the timer to its own exp.
 *
 * The token itself never reaches a log line: only the file it is in, and
 * the time it expires.
 */
#ifndef HS_AGENT_TOKEN_H
#define HS_AGENT_TOKEN_H

#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "conf/conf.h"

/* How long before exp the journal is told. */
#define HS_TOKEN_WARN_S (24 * 3600)

/*
 * The exp claim of token (a JWT), in Unix seconds. Returns 0 with
 * *ret_exp set, or -1 when token is not a JWT or has no numeric exp (an
 * opaque token is fine: nothing is said about its expiry).
 */
int hs_jwt_exp(const char *token, int64_t *ret_exp);

/* unix_s as local time with its zone, "2026-12-07 09:30:00 CET". */
const char *hs_token_time(int64_t unix_s, char *buf, size_t len);

/*
 * Why a 401 from api probably happened, for its log line, into buf:
 * "the token in FILE expired at TIME; put a new one there", "check FILE",
 * with now_s the current Unix time. Never quotes the secret.
 */
const char *hs_auth_hint(const struct hs_api *api, int64_t now_s, char *buf, size_t len);

/* The word for api's credential in log lines: "API key" or "token". */
const char *hs_auth_noun(const struct hs_api *api);

/*
 * For check-config: say(line) for each API whose token is within
 * HS_TOKEN_WARN_S of its exp, or past it, at now_s: "upload.token_file:
 * the token in FILE expires at TIME, in N h; ...". Never quotes the token.
 */
void hs_token_notes(const struct hs_config *cfg, int64_t now_s, void (*say)(const char *line));

/*
 * The day-ahead warning, for every API with auth = "bearer": one timer on
 * CLOCK_REALTIME at exp - HS_TOKEN_WARN_S; when it fires the token in
 * memory is looked at again (a 401 may have taken up a rotated one), so a
 * warning is only given for the token in use, once per token.
 */
struct hs_token_watch;

struct hs_token_watch *hs_token_watch_new(sd_event *ev, const struct hs_config *cfg, char **cause);
/* A new configuration (reload): cfg replaces the old one, which the watch
 * no longer touches. Checks at once. */
void hs_token_watch_set(struct hs_token_watch *w, const struct hs_config *cfg);
/* The soonest exp (Unix s) of the tokens in use, and whose ("upload",
 * "mirror", static) in *ret_section; 0 and NULL when none has one. For
 * the health verdict's token_expiring. Accepts NULL. */
int64_t hs_token_watch_soonest(struct hs_token_watch *w, const char **ret_section);
/* Accepts NULL; returns NULL. */
struct hs_token_watch *hs_token_watch_free(struct hs_token_watch *w);

#endif
