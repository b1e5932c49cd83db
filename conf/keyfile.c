/*
 * keyfile: reading an API key so that it leaks as little as possible.
 *
 * The key is read straight into an anonymous mapping marked MADV_DONTDUMP,
 * so a core dump of the daemon does not carry it, and the mapping is wiped
 * before it is unmapped. The mapping has a fixed size, one byte more than
 * the longest key and its newline, which is how hs_key_free() knows it.
 *
 * Permissions: packages ship key files 0640 root:healsync, so group read is
 * expected; read or write by others is refused (a key others can replace
 * would send the uploads to someone else's account), and so are group
 * write, an owner other than root or the user the daemon runs as, and a
 * symbolic link (whoever may change the link chooses the key).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/internal.h"

static size_t map_size(void)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t want = HS_KEY_MAX + 2; /* the key, its newline, one to see there is more */

	if (page <= 0)
		page = 4096;
	return (want + (size_t)page - 1) / (size_t)page * (size_t)page;
}

static char *secret_alloc(void)
{
	size_t size = map_size();
	char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (madvise(p, size, MADV_DONTDUMP) != 0) {
		int saved = errno;

		munmap(p, size);
		errno = saved;
		return NULL;
	}
	return p;
}

char *hs_key_free(char *key)
{
	if (key) {
		explicit_bzero(key, map_size());
		munmap(key, map_size());
	}
	return NULL;
}

/* The file the key is read from: under $CREDENTIALS_DIRECTORY if set. */
static char *key_path(const char *api_key_file, int *from_credentials)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	const char *base = strrchr(api_key_file, '/');
	char *path;

	*from_credentials = dir && *dir;
	if (!*from_credentials)
		return strdup(api_key_file);
	base = base ? base + 1 : api_key_file;
	if (asprintf(&path, "%s/%s", dir, base) < 0)
		return NULL;
	return path;
}

/* Reads up to size bytes; -1 on a read error. */
static ssize_t read_all(int fd, char *buf, size_t size)
{
	size_t n = 0;

	while (n < size) {
		ssize_t got = read(fd, buf + n, size - n);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -1;
		if (got == 0)
			break;
		n += (size_t)got;
	}
	return (ssize_t)n;
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* What is wrong with the key in buf (len bytes, trailing space gone). */
static const char *key_problem(const char *buf, size_t len)
{
	if (len == 0)
		return "is empty";
	if (len > HS_KEY_MAX)
		return "holds a key longer than 4096 bytes";
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			return "holds control characters (a key is one line of text)";
	return NULL;
}

char *hs_key_read(const char *api_key_file, char **cause)
{
	char *path, *key = NULL, extra, mode[120];
	const char *problem = NULL, *where;
	int fd = -1, from_credentials;
	struct stat st;
	ssize_t n;

	*cause = NULL;
	path = key_path(api_key_file, &from_credentials);
	if (!path)
		return NULL;
	where = from_credentials ? " (from $CREDENTIALS_DIRECTORY)" : "";

	/* O_NONBLOCK: a FIFO put there by mistake must not hang the loader. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
	if (fd < 0 && errno == ELOOP) {
		problem = "is a symbolic link; name the file itself";
		goto fail;
	}
	if (fd < 0 || fstat(fd, &st) != 0) {
		problem = strerror(errno);
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		problem = "is not a regular file";
		goto fail;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		snprintf(mode, sizeof(mode),
			 "is owned by uid %u, not by root or uid %u (the user healsync runs as)",
			 (unsigned)st.st_uid, (unsigned)geteuid());
		problem = mode;
		goto fail;
	}
	if (st.st_mode & S_IWGRP) {
		snprintf(mode, sizeof(mode),
			 "is writable by its group (mode %04o); run chmod g-w on it",
			 (unsigned)(st.st_mode & 07777));
		problem = mode;
		goto fail;
	}
	if (st.st_mode & (S_IROTH | S_IWOTH)) {
		snprintf(mode, sizeof(mode), "is %s by others (mode %04o); run chmod o-rwx on it",
			 st.st_mode & S_IROTH ? "readable" : "writable",
			 (unsigned)(st.st_mode & 07777));
		problem = mode;
		goto fail;
	}

	key = secret_alloc();
	if (!key) {
		problem = strerror(errno);
		goto fail;
	}
	n = read_all(fd, key, map_size() - 1);
	if (n < 0 || (n == (ssize_t)map_size() - 1 && read_all(fd, &extra, 1) != 0)) {
		problem = n < 0 ? strerror(errno) : "holds a key longer than 4096 bytes";
		explicit_bzero(&extra, sizeof(extra));
		goto fail;
	}
	while (n > 0 && is_space(key[n - 1]))
		key[--n] = '\0';
	problem = key_problem(key, (size_t)n);
	if (problem)
		goto fail;
	close(fd);
	free(path);
	return key;
fail:
	if (problem && asprintf(cause, "%s%s: %s", path, where, problem) < 0)
		*cause = NULL;
	if (fd >= 0)
		close(fd);
	hs_key_free(key);
	free(path);
	return NULL;
}
