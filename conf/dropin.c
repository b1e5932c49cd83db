/*
 * dropin: the conf.d folder beside healsync.conf.
 *
 * libconfig 1.5 (Debian 12's) can @include files but not a folder, so the
 * drop-ins are read here, each into its own tree, and merged into the main
 * file's tree before it is validated. Validation then sees one tree and
 * needs no notion of drop-ins, except for the file and line of a setting,
 * which the copies carry in their hooks.
 *
 * Only "NAME.conf" entries that do not start with "." are read: editors and
 * package managers leave "x.conf~", ".#x.conf", "x.conf.swp" and
 * "x.conf.dpkg-old" beside the real file, and reading them would apply an
 * old copy of the settings.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "conf/internal.h"

/* More than any workstation needs; a bound, as for every listing. */
#define MAX_DROPINS 1000

bool hs_config_is_dropin_name(const char *name)
{
	size_t len = strlen(name);

	return name[0] != '.' && len > 5 && strcmp(name + len - 5, ".conf") == 0;
}

char *hs_config_dropin_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir;

	if (!slash)
		return strdup("conf.d");
	if (asprintf(&dir, "%.*s/conf.d", (int)(slash - path), path) < 0)
		return NULL;
	return dir;
}

static int by_bytes(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void hs_dropin_names_free(char **names)
{
	for (size_t i = 0; names && names[i]; i++)
		free(names[i]);
	free(names);
}

int hs_dropin_list(const char *dir, char ***ret_names, char **cause)
{
	char **names = calloc(1, sizeof(*names)), **grown;
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	*cause = NULL;
	if (!names)
		return -1;
	d = opendir(dir);
	if (!d) {
		if (errno == ENOENT) {
			*ret_names = names;
			return 0;
		}
		if (asprintf(cause, "%s: %s", dir, strerror(errno)) < 0)
			*cause = NULL;
		free(names);
		return -1;
	}
	for (errno = 0; (de = readdir(d)); errno = 0) {
		if (!hs_config_is_dropin_name(de->d_name))
			continue;
		if (n == MAX_DROPINS) {
			if (asprintf(cause, "%s: more than %d drop-ins", dir, MAX_DROPINS) < 0)
				*cause = NULL;
			goto fail;
		}
		grown = reallocarray(names, n + 2, sizeof(*names));
		if (!grown)
			goto fail;
		names = grown;
		names[n + 1] = NULL;
		if (!(names[n] = strdup(de->d_name)))
			goto fail;
		n++;
	}
	if (errno != 0) {
		if (asprintf(cause, "%s: %s", dir, strerror(errno)) < 0)
			*cause = NULL;
		goto fail;
	}
	closedir(d);
	qsort(names, n, sizeof(*names), by_bytes);
	*ret_names = names;
	return 0;
fail:
	closedir(d);
	hs_dropin_names_free(names);
	return -1;
}

/* Dotted name of child name under prefix. */
static void child_name(char *buf, size_t len, const char *prefix, const char *name)
{
	snprintf(buf, len, "%s%s%s", prefix, *prefix ? "." : "", name);
}

/* A deep copy of from as a new member (or element) of parent. */
static int copy_setting(config_setting_t *parent, const config_setting_t *from,
			const struct hs_merge_cb *cb)
{
	int type = config_setting_type(from);
	const char *name = config_setting_is_group(parent) ? config_setting_name(from) : NULL;
	config_setting_t *to = config_setting_add(parent, name, type);
	void *hook;

	if (!to)
		return -1;
	switch (type) {
	case CONFIG_TYPE_INT:
		config_setting_set_int(to, config_setting_get_int(from));
		break;
	case CONFIG_TYPE_INT64:
		config_setting_set_int64(to, config_setting_get_int64(from));
		break;
	case CONFIG_TYPE_FLOAT:
		config_setting_set_float(to, config_setting_get_float(from));
		break;
	case CONFIG_TYPE_BOOL:
		config_setting_set_bool(to, config_setting_get_bool(from));
		break;
	case CONFIG_TYPE_STRING:
		if (config_setting_set_string(to, config_setting_get_string(from)) != CONFIG_TRUE)
			return -1;
		break;
	default: /* group, list, array */
		for (int i = 0; i < config_setting_length(from); i++)
			if (copy_setting(to, config_setting_get_elem(from, (unsigned)i), cb) != 0)
				return -1;
		break;
	}
	config_setting_set_format(to, config_setting_get_format(from));
	hook = cb->origin(from, cb->arg);
	if (!hook)
		return -1;
	config_setting_set_hook(to, hook);
	return 0;
}

static int merge_group(config_setting_t *into, const config_setting_t *from, const char *prefix,
		       const struct hs_merge_cb *cb)
{
	for (int i = 0; i < config_setting_length(from); i++) {
		const config_setting_t *f = config_setting_get_elem(from, (unsigned)i);
		const char *name = config_setting_name(f);
		config_setting_t *old = config_setting_get_member(into, name);
		char dotted[256];

		child_name(dotted, sizeof(dotted), prefix, name);
		/* A group merges member by member, also into a new one, so that
		 * each setting is noted on its own. */
		if (config_setting_is_group(f)) {
			if (!old || !config_setting_is_group(old)) {
				void *hook = cb->origin(f, cb->arg);

				if (!hook)
					return -1;
				if (old && config_setting_remove(into, name) != CONFIG_TRUE)
					return -1;
				if (!(old = config_setting_add(into, name, CONFIG_TYPE_GROUP)))
					return -1;
				config_setting_set_hook(old, hook);
			}
			if (merge_group(old, f, dotted, cb) != 0)
				return -1;
			continue;
		}
		/* The watch list adds up, entry by entry: a drop-in's
		 * "watch = [];" (an empty array, which the loader takes for no
		 * folders) adds none, and a main file's becomes a list first. */
		if (!*prefix && strcmp(name, "watch") == 0 &&
		    config_setting_type(f) == CONFIG_TYPE_ARRAY && config_setting_length(f) == 0)
			continue;
		if (!*prefix && strcmp(name, "watch") == 0 &&
		    config_setting_type(f) == CONFIG_TYPE_LIST &&
		    (!old || config_setting_type(old) == CONFIG_TYPE_LIST ||
		     config_setting_length(old) == 0)) {
			if (!old || config_setting_type(old) != CONFIG_TYPE_LIST) {
				if (old && config_setting_remove(into, name) != CONFIG_TRUE)
					return -1;
				if (!(old = config_setting_add(into, name, CONFIG_TYPE_LIST)))
					return -1;
			}
			for (int j = 0; j < config_setting_length(f); j++) {
				const config_setting_t *e = config_setting_get_elem(f, (unsigned)j);
				char entry[64];

				snprintf(entry, sizeof(entry), "watch[%d]",
					 config_setting_length(old));
				if (copy_setting(old, e, cb) != 0 ||
				    cb->note(entry, e, cb->arg) != 0)
					return -1;
			}
			continue;
		}
		if (old && config_setting_remove(into, name) != CONFIG_TRUE)
			return -1;
		if (copy_setting(into, f, cb) != 0 || cb->note(dotted, f, cb->arg) != 0)
			return -1;
	}
	return 0;
}

int hs_config_merge(config_setting_t *root, const config_setting_t *from,
		    const struct hs_merge_cb *cb)
{
	return merge_group(root, from, "", cb);
}
