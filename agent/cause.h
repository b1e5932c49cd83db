/*
 * cause: the one-line error message modules hand back to their caller.
 *
 * Failing calls take a `char **cause` and set it to an allocated line
 * saying what went wrong; the caller prints it and frees it. A NULL cause
 * pointer means the caller does not want the text; a NULL *cause after a
 * failure means memory ran out while writing it.
 */
#ifndef HS_AGENT_CAUSE_H
#define HS_AGENT_CAUSE_H

/* Sets *cause (if cause is not NULL) and returns -1, so that a failing
 * path can end with `return hs_cause(cause, "...", ...);`. */
int hs_cause(char **cause, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
