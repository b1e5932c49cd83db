/*
 * cli-health: the health verdict as `healsync status` and `healsync check`
 * see it, from the daemon's report alone: no key, no queue, nothing a
 * member of the service's group cannot read.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/cli.h"
#include "agent/daemon.h"
#include "agent/health.h"

static int64_t get_int(json_t *o, const char *name)
{
	return (int64_t)json_integer_value(json_object_get(o, name));
}

static bool get_bool(json_t *o, const char *name)
{
	return json_is_true(json_object_get(o, name));
}

/* The verdict the daemon wrote: what each reason's since is read from. */
static void read_verdict(json_t *h, struct hs_health *ret)
{
	size_t i;
	json_t *r;
	int s = hs_health_state_parse(json_string_value(json_object_get(h, "state")));

	*ret = (struct hs_health){.state = s < 0 ? HS_HEALTH_OK : (enum hs_health_state)s,
				  .since = get_int(h, "since")};
	json_array_foreach(json_object_get(h, "reasons"), i, r)
	{
		int code = hs_health_code_parse(json_string_value(json_object_get(r, "code")));
		if (code < 0 || ret->n >= HS_HEALTH_NCODES)
			continue;
		ret->reasons[ret->n].code = (enum hs_health_code)code;
		ret->reasons[ret->n].since = get_int(r, "since");
		ret->n++;
	}
}

static void read_facts(json_t *f, struct hs_health_facts *ret)
{
	const char *api = json_string_value(json_object_get(f, "token_api"));

	*ret = (struct hs_health_facts){
	    .running = true,
	    .dead = get_int(f, "dead"),
	    .waiting = get_int(f, "waiting"),
	    .oldest_waiting_at = get_int(f, "oldest_waiting_at"),
	    .last_stored_at = get_int(f, "last_stored_at"),
	    .upload_key_rejected = get_bool(f, "upload_key_rejected"),
	    .upload_unavailable = get_bool(f, "upload_unavailable"),
	    .upload_unavailable_since = get_int(f, "upload_unavailable_since"),
	    .mirror_enabled = get_bool(f, "mirror_enabled"),
	    .mirror_failed = get_bool(f, "mirror_failed"),
	    .mirror_failed_at = get_int(f, "mirror_failed_at"),
	    .mirror_due_at = get_int(f, "mirror_due_at"),
	    .watch_missing = (size_t)get_int(f, "watch_missing"),
	    .disk_free =
		json_is_integer(json_object_get(f, "disk_free")) ? get_int(f, "disk_free") : -1,
	    .token_expires_at = get_int(f, "token_expires_at"),
	};
	snprintf(ret->token_api, sizeof(ret->token_api), "%s", api ? api : "");
}

int hs_cli_health(const struct hs_config *cfg, const struct hs_health_limits *lim, int64_t now,
		  json_t **ret_daemon, struct hs_health *ret, char **ret_why)
{
	struct hs_health_facts facts = {.running = false};
	struct hs_health prev;
	json_error_t jerr;
	json_t *doc = NULL;
	char path[4096];
	json_int_t pid;
	int fd;

	*ret_daemon = NULL;
	*ret_why = NULL;
	snprintf(path, sizeof(path), "%s/%s", cfg->state_dir, HS_STATUS_FILE);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno != ENOENT) {
		if (asprintf(ret_why, "%s: %s", path, strerror(errno)) < 0)
			*ret_why = NULL;
		return -1;
	}
	if (fd >= 0) {
		doc = json_loadfd(fd, 0, &jerr);
		close(fd);
		if (!doc) {
			if (asprintf(ret_why, "%s: %s", path, jerr.text) < 0)
				*ret_why = NULL;
			return -1;
		}
		pid = json_integer_value(json_object_get(doc, "pid"));
		/* A report left by a daemon that has since stopped says
		 * nothing; another user's daemon answers EPERM. */
		if (pid <= 0 || (kill((pid_t)pid, 0) != 0 && errno != EPERM)) {
			json_decref(doc);
			doc = NULL;
		}
	}
	if (doc && json_is_object(json_object_get(doc, "health_facts"))) {
		read_facts(json_object_get(doc, "health_facts"), &facts);
		read_verdict(json_object_get(doc, "health"), &prev);
		hs_health_eval(&facts, lim, &prev, now, ret);
	} else if (doc) {
		/* A daemon of a version without a verdict. */
		json_decref(doc);
		if (asprintf(ret_why, "%s: the running daemon reports no health", path) < 0)
			*ret_why = NULL;
		return -1;
	} else {
		hs_health_eval(&facts, lim, NULL, now, ret);
	}
	*ret_daemon = doc;
	return 0;
}
