/*
 * token: a JWT's exp claim, and the day-ahead warning (see token.h).
 */
#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "agent/clock.h"
#include "agent/log.h"
#include "agent/token.h"

/* A payload this long is not a token anyone sends in a header. */
#define MAX_PAYLOAD 8192

int hs_jwt_exp(const char *token, int64_t *ret_exp)
{
	const char *start = token ? strchr(token, '.') : NULL, *end;
	unsigned char *raw = NULL;
	char *b64 = NULL;
	size_t len, padded;
	int n, rc = -1;
	json_t *root = NULL, *exp;

	if (!start)
		return -1;
	start++;
	end = strchr(start, '.');
	if (!end)
		return -1;
	len = (size_t)(end - start);
	if (len == 0 || len > MAX_PAYLOAD || len % 4 == 1)
		return -1;
	/* base64url without padding -> base64 with it, for EVP_DecodeBlock */
	padded = (len + 3) / 4 * 4;
	b64 = malloc(padded + 1);
	raw = malloc(padded / 4 * 3 + 1);
	if (!b64 || !raw)
		goto out;
	for (size_t i = 0; i < len; i++) {
		char c = start[i];

		if (c == '-')
			c = '+';
		else if (c == '_')
			c = '/';
		else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			   (c >= '0' && c <= '9')))
			goto out; /* not the URL alphabet: "+", "/" and "=" included */
		b64[i] = c;
	}
	memset(b64 + len, '=', padded - len);
	b64[padded] = '\0';
	n = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)padded);
	if (n < 0)
		goto out;
	/* EVP_DecodeBlock counts the bytes the padding stands for as zeros. */
	n -= (int)(padded - len);
	root = json_loadb((const char *)raw, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
	exp = json_is_object(root) ? json_object_get(root, "exp") : NULL;
	if (json_is_integer(exp) && json_integer_value(exp) > 0) {
		*ret_exp = (int64_t)json_integer_value(exp);
		rc = 0;
	} else if (json_is_real(exp) && json_real_value(exp) > 0 && json_real_value(exp) < 1e17) {
		*ret_exp = (int64_t)json_real_value(exp);
		rc = 0;
	}
out:
	json_decref(root);
	if (raw)
		explicit_bzero(raw, padded / 4 * 3 + 1);
	if (b64)
		explicit_bzero(b64, padded + 1);
	free(raw);
	free(b64);
	return rc;
}

const char *hs_token_time(int64_t unix_s, char *buf, size_t len)
{
	time_t t = (time_t)unix_s;
	struct tm tm;

	if (!localtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M:%S %Z", &tm))
		snprintf(buf, len, "@%lld", (long long)unix_s);
	return buf;
}

const char *hs_auth_noun(const struct hs_api *api)
{
	return api->auth == HS_AUTH_BEARER ? "token" : "API key";
}

const char *hs_auth_hint(const struct hs_api *api, int64_t now_s, char *buf, size_t len)
{
	const char *file = hs_api_secret_file(api);
	char when[64];
	int64_t exp;

	if (api->auth == HS_AUTH_BEARER && api->secret &&
	    hs_jwt_exp(api->secret->value, &exp) == 0 && exp <= now_s)
		snprintf(buf, len, "the token expired at %s; put a new one in %s",
			 hs_token_time(exp, when, sizeof(when)), file);
	else
		snprintf(buf, len, "check %s", file);
	return buf;
}

/* ---- the day-ahead warning ------------------------------------------------- */

/* What to say of a token with exp at now: it expired, or expires soon. */
static const char *expiry_text(const struct hs_api *api, int64_t exp, int64_t now, char *buf,
			       size_t len)
{
	char when[64];

	hs_token_time(exp, when, sizeof(when));
	if (now >= exp)
		snprintf(buf, len, "the token in %s expired at %s; put a new one there and reload",
			 api->token_file, when);
	else
		snprintf(
		    buf, len,
		    "the token in %s expires at %s, in %lld h; put a new one there before then",
		    api->token_file, when, (long long)((exp - now + 3599) / 3600));
	return buf;
}

void hs_token_notes(const struct hs_config *cfg, int64_t now_s, void (*say)(const char *line))
{
	const struct hs_api *apis[2] = {&cfg->upload.api,
					cfg->mirror.enabled ? &cfg->mirror.api : NULL};
	char text[1024], line[1100];
	int64_t exp;

	for (size_t i = 0; i < 2; i++) {
		const struct hs_api *api = apis[i];

		if (!api || api->auth != HS_AUTH_BEARER || !api->secret ||
		    hs_jwt_exp(api->secret->value, &exp) != 0 || now_s < exp - HS_TOKEN_WARN_S)
			continue;
		snprintf(line, sizeof(line), "%s.token_file: %s", i ? "mirror" : "upload",
			 expiry_text(api, exp, now_s, text, sizeof(text)));
		say(line);
	}
}

struct watched {
	const char *section; /* "upload", "mirror" */
	const struct hs_api *api;
	unsigned generation; /* of the token last looked at */
	int64_t exp;	     /* its exp; 0: none */
	bool warned;	     /* about this token */
};

struct hs_token_watch {
	sd_event_source *timer;
	struct watched w[2];
};

/* Reads exp again when the token in memory changed (a 401 may have
 * taken up a rotated one); false when w watches no token. */
static bool refresh(struct watched *w)
{
	if (!w->api || !w->api->secret)
		return false;
	if (w->generation != w->api->secret->generation) {
		w->generation = w->api->secret->generation;
		w->warned = false;
		if (hs_jwt_exp(w->api->secret->value, &w->exp) != 0)
			w->exp = 0;
	}
	return true;
}

/* Looks at each token: warns once when it is within a day of exp, and
 * arms the timer for the next one that is not yet. */
static void check(struct hs_token_watch *tw)
{
	int64_t now = hs_wall_ms() / 1000, next = -1;
	char text[1024];

	for (size_t i = 0; i < 2; i++) {
		struct watched *w = &tw->w[i];

		if (!refresh(w) || !w->exp || w->warned)
			continue;
		if (now >= w->exp - HS_TOKEN_WARN_S) {
			w->warned = true;
			hs_log(LOG_WARNING, "%s: %s", w->section,
			       expiry_text(w->api, w->exp, now, text, sizeof(text)));
			continue;
		}
		if (next < 0 || w->exp - HS_TOKEN_WARN_S < next)
			next = w->exp - HS_TOKEN_WARN_S;
	}
	if (next < 0) {
		sd_event_source_set_enabled(tw->timer, SD_EVENT_OFF);
		return;
	}
	sd_event_source_set_time(tw->timer, (uint64_t)next * 1000000);
	sd_event_source_set_enabled(tw->timer, SD_EVENT_ONESHOT);
}

int64_t hs_token_watch_soonest(struct hs_token_watch *tw, const char **ret_section)
{
	int64_t soonest = 0;

	*ret_section = NULL;
	for (size_t i = 0; tw && i < 2; i++) {
		struct watched *w = &tw->w[i];

		if (refresh(w) && w->exp && (!soonest || w->exp < soonest)) {
			soonest = w->exp;
			*ret_section = w->section;
		}
	}
	return soonest;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *arg)
{
	(void)s;
	(void)usec;
	check(arg);
	return 0;
}

void hs_token_watch_set(struct hs_token_watch *tw, const struct hs_config *cfg)
{
	const struct hs_api *apis[2] = {&cfg->upload.api,
					cfg->mirror.enabled ? &cfg->mirror.api : NULL};

	for (size_t i = 0; i < 2; i++) {
		struct watched *w = &tw->w[i];
		const struct hs_api *api =
		    apis[i] && apis[i]->auth == HS_AUTH_BEARER ? apis[i] : NULL;

		/* Generations are unique in the process: a reload that read the
		 * same token again still counts as a new one, and warns again. */
		*w = (struct watched){.section = i ? "mirror" : "upload", .api = api};
	}
	check(tw);
}

struct hs_token_watch *hs_token_watch_new(sd_event *ev, const struct hs_config *cfg, char **cause)
{
	struct hs_token_watch *tw = calloc(1, sizeof(*tw));
	int r;

	if (!tw) {
		*cause = strdup("out of memory");
		return NULL;
	}
	r = sd_event_add_time(ev, &tw->timer, CLOCK_REALTIME, 0, 0, on_timer, tw);
	if (r >= 0)
		r = sd_event_source_set_enabled(tw->timer, SD_EVENT_OFF);
	if (r < 0) {
		if (asprintf(cause, "token timer: %s", strerror(-r)) < 0)
			*cause = NULL;
		return hs_token_watch_free(tw);
	}
	hs_token_watch_set(tw, cfg);
	return tw;
}

struct hs_token_watch *hs_token_watch_free(struct hs_token_watch *tw)
{
	if (tw) {
		sd_event_source_disable_unref(tw->timer);
		free(tw);
	}
	return NULL;
}
