#include "config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <systemd/sd-journal.h>

#include "agent/log.h"

#define MAX_FIELDS 12

static int log_level = LOG_INFO;
static bool to_journal;
static bool to_terminal; /* a person reads it: no "<N>" priority prefix */

/* systemd sets JOURNAL_STREAM=dev:ino for the stream it connected; it may
 * have been inherited by a child whose stderr goes elsewhere, so compare. */
static bool stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) != 0)
		return false;
	return st.st_dev == (dev_t)dev && st.st_ino == (ino_t)ino;
}

void hs_log_init(int level)
{
	log_level = level;
	to_journal = stderr_is_journal();
	to_terminal = !to_journal && isatty(STDERR_FILENO);
}

void hs_log_set_level(int level)
{
	log_level = level;
}

static void emit(int priority, const struct hs_log_field *fields, size_t n, const char *fmt,
		 va_list ap)
{
	char msg[2048];
	char *items[MAX_FIELDS + 3] = {NULL};
	struct iovec iov[MAX_FIELDS + 3];
	size_t k = 0;

	if (priority > log_level)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* A message is one line: file names may hold newlines or escape
	 * sequences, which must not split an entry or forge another one. */
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	if (to_terminal) {
		fprintf(stderr, "%s%s\n", priority <= LOG_WARNING ? "healsync: " : "", msg);
		return;
	}
	if (!to_journal) {
		fprintf(stderr, "<%d>%s\n", priority, msg);
		return;
	}
	if (asprintf(&items[0], "MESSAGE=%s", msg) < 0)
		goto fallback;
	k = 1;
	if (asprintf(&items[1], "PRIORITY=%d", priority) < 0)
		goto fallback;
	k = 2;
	for (size_t i = 0; i < n && k < MAX_FIELDS + 2; i++) {
		if (!fields[i].value)
			continue;
		if (asprintf(&items[k], "%s=%s", fields[i].name, fields[i].value) < 0)
			goto fallback;
		k++;
	}
	for (size_t i = 0; i < k; i++)
		iov[i] = (struct iovec){.iov_base = items[i], .iov_len = strlen(items[i])};
	if (sd_journal_sendv(iov, (int)k) >= 0)
		goto out;
fallback:
	fprintf(stderr, "<%d>%s\n", priority, msg);
out:
	for (size_t i = 0; i < k; i++)
		free(items[i]);
}

void hs_log(int priority, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(priority, NULL, 0, fmt, ap);
	va_end(ap);
}

void hs_log_fields(int priority, const struct hs_log_field *fields, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(priority, fields, n, fmt, ap);
	va_end(ap);
}
