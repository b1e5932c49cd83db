/*
 * units: the value syntaxes of healsync.conf, parsed once at load time.
 *
 *   size      "16MiB", "512KiB", "1GiB", "10MB", "4096"    -> bytes
 *   duration  "2s", "15m", "1h", "1d", "250ms", "0s", "90" -> milliseconds
 *             (a plain integer is seconds)
 *   rate      "2MiB/s", "512KiB/s", "1000000", "off"      -> bytes per second,
 *             0 meaning unlimited ("off")
 *
 * Binary (KiB, MiB, GiB, TiB) and decimal (kB, KB, MB, GB, TB) suffixes are
 * accepted; "k"/"M"/"G" alone are binary, as rclone reads them. Values that
 * overflow 64 bits, negative numbers, fractions and trailing garbage are
 * refused. Pure functions: no allocation, no I/O.
 */
#ifndef HS_CONF_UNITS_H
#define HS_CONF_UNITS_H

#include <stddef.h>
#include <stdint.h>

/* Each returns 0 and sets *ret, or -1 leaving *ret untouched. */
int hs_parse_size(const char *s, uint64_t *ret);
int hs_parse_duration_ms(const char *s, uint64_t *ret);
int hs_parse_rate(const char *s, uint64_t *ret);
/* A date, or a date and time, in local time: "2026-12-01",
 * "2026-12-01 18:00", "2026-12-01 18:00:30" ("T" may replace the space).
 * Dates that do not exist ("2026-02-30", a time skipped by a change to
 * summer time) and years before 1970 are refused. *ret: Unix seconds. Reads the time zone. */
int hs_parse_local_time(const char *s, int64_t *ret);

/* Writes a human form of a byte count ("14.2 MiB") into buf. */
const char *hs_format_size(uint64_t bytes, char *buf, size_t len);
/* Writes a byte count exactly, in the largest binary unit that divides it
 * ("64MiB", "1000"), so hs_parse_size() reads the same value back. */
const char *hs_format_size_exact(uint64_t bytes, char *buf, size_t len);
/* A count with thousands separators: "1,234,567". */
const char *hs_format_count(uint64_t n, char *buf, size_t len);
/* In the largest unit that divides it: "2s", "10m", "1h", "250ms". */
const char *hs_format_duration(uint64_t ms, char *buf, size_t len);

#endif
