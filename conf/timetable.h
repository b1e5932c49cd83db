/*
 * timetable: the bandwidth schedule of upload.bandwidth.
 *
 * Either one rate ("2MiB/s", "off") or an rclone-style list of
 * "[Day-]HH:MM,RATE" entries separated by spaces:
 *
 *   "08:00,2MiB/s 12:00,512KiB/s 18:00,off"
 *   "Mon-08:00,1MiB/s Sat-00:00,off"
 *
 * An entry without a day applies every day at that time; one with a day
 * (Mon..Sun) once a week. Each entry holds from its moment until the next
 * entry's; before the first moment of the week the last one still holds, so
 * the schedule wraps around. Times are local wall-clock times, so the rate in
 * force follows daylight-saving changes like a wall clock does.
 *
 * All queries take the time as an argument and never read the clock, so the
 * schedule is tested exactly.
 */
#ifndef HS_CONF_TIMETABLE_H
#define HS_CONF_TIMETABLE_H

#include <stdint.h>
#include <time.h>

struct hs_timetable;

/* Parses s. Returns NULL and sets *cause (allocated, caller frees) on error. */
struct hs_timetable *hs_timetable_parse(const char *s, char **cause);
/* Accepts NULL; returns NULL. */
struct hs_timetable *hs_timetable_free(struct hs_timetable *tt);

/* Bytes per second in force at local broken-down time tm; 0 is unlimited. */
uint64_t hs_timetable_rate_at(const struct hs_timetable *tt, const struct tm *local);
/* Same, for a Unix time interpreted in the process's local time zone. */
uint64_t hs_timetable_rate(const struct hs_timetable *tt, time_t now);
/* The next Unix time after now at which the rate may change, or 0 when it
 * never does (a single rate). */
time_t hs_timetable_next_change(const struct hs_timetable *tt, time_t now);
/* The canonical text of the schedule, e.g. for check-config. Owned by tt. */
const char *hs_timetable_text(const struct hs_timetable *tt);

#endif
