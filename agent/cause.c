#include "config.h"

#include <stdarg.h>
#include <stdio.h>

#include "agent/cause.h"

int hs_cause(char **cause, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (cause && vasprintf(cause, fmt, ap) < 0)
		*cause = NULL;
	va_end(ap);
	return -1;
}
