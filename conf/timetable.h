/*
 * timetable: the bandwidth schedule of upload.bandwidth.
 *
 * Either one rate ("2MiB/s", "off") or an rclone-style list of
 * "[Day-]HH:MM,RATE" entries separated by spaces:
 *
 *   "08:00,2MiB/s 12:00,512KiB/s 18:00,off"
 *   "Mon-08:00,1MiB/s Sat-00:00,off"
 *   "07:00,pause 19:00,off"
 *
 * RATE "pause" holds uploads: while it is in force no upload starts (what is
 * already sending finishes, at the rate of the last entry before the pause
 * that is not one, which is what the rate queries answer during a pause).
 * "pause" is refused as the single rate and in a schedule that has nothing
 * but pauses: that would hold uploads for ever, and files would pile up
 * unnoticed; stopping the service says so more honestly.
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

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct hs_timetable;

/* Parses s. Returns NULL and sets *cause (allocated, caller frees) on error. */
struct hs_timetable *hs_timetable_parse(const char *s, char **cause);
/* Accepts NULL; returns NULL. */
struct hs_timetable *hs_timetable_free(struct hs_timetable *tt);

/* Bytes per second in force at local broken-down time tm; 0 is unlimited.
 * During a pause: the rate of the last entry before it (see above). */
uint64_t hs_timetable_rate_at(const struct hs_timetable *tt, const struct tm *local);
/* Same, for a Unix time interpreted in the process's local time zone. */
uint64_t hs_timetable_rate(const struct hs_timetable *tt, time_t now);
/* The next Unix time after now at which the rate may change, or 0 when it
 * never does (a single rate). */
time_t hs_timetable_next_change(const struct hs_timetable *tt, time_t now);
/* Whether a "pause" entry is in force at local time tm, or at Unix time now. */
bool hs_timetable_paused_at(const struct hs_timetable *tt, const struct tm *local);
bool hs_timetable_paused(const struct hs_timetable *tt, time_t now);
/* When a pause is in force at now: the Unix time it ends, that is the next
 * change to an entry that is not a pause (pauses in a row count as one).
 * 0 when no pause is in force. */
time_t hs_timetable_pause_end(const struct hs_timetable *tt, time_t now);
/* The canonical text of the schedule, e.g. for check-config. Owned by tt. */
const char *hs_timetable_text(const struct hs_timetable *tt);

#endif
