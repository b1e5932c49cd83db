/*
 * cron: the mirror's schedule, a five-field cron expression in local time.
 *
 *   minute  hour  day-of-month  month  day-of-week
 *   0-59    0-23  1-31          1-12   0-7 (0 and 7 are Sunday)
 *
 * Each field is '*', a number, a range "a-b", a step "a-b/n" or "a/n"
 * (from a to the end of the field, every n) or a star followed by "/n" (the
 * whole field, every n), or a list of these separated by commas. Months may
 * be named jan-dec and days sun-sat, in any case and in ranges too
 * ("mon-fri", "jun-aug/2"). Fields are separated by spaces or tabs.
 * "@hourly" (0 * * * *), "@daily" and "@midnight" (0 0 * * *), "@weekly"
 * (0 0 * * 0), "@monthly" (0 0 1 * *), "@yearly" and "@annually" (0 0 1 1 *)
 * stand for the whole expression.
 *
 * Days. When both day fields are restricted (neither starts with '*'), a day
 * matches if either does: "0 0 13 * 5" runs on the 13th and on every
 * Friday, and "0 0 1-7 * 1" on each of the first seven days and on every
 * Monday (not on the first Monday only). When either starts with '*' (a
 * plain star or a star with a step), a day must match both.
 *
 * Daylight-saving time. Times are the wall clock of the process's time zone
 * (TZ), as cron does. A job is "fixed-time" when neither its minute nor its
 * hour field starts with '*' ("0 2 * * *", "30 1,13 * * *"); otherwise it is
 * a wildcard job ("30 * * * *", or a star with "/15" in the minute field).
 *  - Spring forward: local times in the gap do not exist (02:00-02:59 on the
 *    day Europe/Berlin goes from 02:00 to 03:00). A fixed-time job due in the
 *    gap runs once, at the first instant after it (03:00 local), however many
 *    of its times fell in the gap and even if it is due at 03:00 as well. A
 *    wildcard job skips the missing times.
 *  - Fall back: local times in the repeated hour occur twice (02:00-02:59 on
 *    the day Europe/Berlin goes from 03:00 back to 02:00). A fixed-time job
 *    runs once, at the first occurrence. A wildcard job runs at both, so
 *    "30 * * * *" runs at 02:30 summer time and again at 02:30 winter time,
 *    and a job every 15 minutes keeps running every 15 minutes of real time.
 * Other offset changes (30-minute ones, changes at midnight, a zone changing
 * its standard time) follow the same rules. The search assumes a zone never
 * changes its offset and back again within six hours.
 *
 * Memory: hs_cron_parse returns an object the caller frees with
 * hs_cron_free; on error it returns NULL and sets *cause to an allocated
 * one-line message the caller frees. Pure: nothing here reads the clock;
 * hs_cron_next reads the time-zone rules through localtime_r and never
 * blocks (the C library may read the zone file once, on first use).
 */
#ifndef HS_CONF_CRON_H
#define HS_CONF_CRON_H

#include <stdint.h>

/* Expressions longer than this are refused. */
#define HS_CRON_MAX_LEN 1024

struct hs_cron;

/* Parses expr. Returns NULL and sets *cause on error, e.g.
 * "schedule: field 2 (hour): 24 is out of range 0-23". */
struct hs_cron *hs_cron_parse(const char *expr, char **cause);
/* Accepts NULL; returns NULL. */
struct hs_cron *hs_cron_free(struct hs_cron *c);

/* The first time strictly after `after` (Unix seconds) that the schedule
 * matches, in the process's local time zone; -1 if there is none within
 * five years ("0 0 30 2 *"; the search spans 5 x 366 + 2 local days from
 * the day of `after`) or the time cannot be represented. Whole
 * months, days and hours that cannot match are skipped, so a call costs
 * microseconds, not a scan of every minute. */
int64_t hs_cron_next(const struct hs_cron *c, int64_t after);

#endif
