/*
 * units: sizes, durations and rates as healsync.conf writes them.
 *
 * Every value is a run of decimal digits and an optional suffix from a fixed
 * table. Anything else (a sign, a fraction, a space, an unknown or misspelt
 * suffix) is refused rather than guessed at, and every multiplication is
 * checked so a huge value cannot wrap around into a small one.
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "conf/units.h"

struct unit {
	const char *suffix;
	uint64_t factor;
};

#define KiB 1024ULL
#define MiB (1024ULL * KiB)
#define GiB (1024ULL * MiB)
#define TiB (1024ULL * GiB)

static const struct unit size_units[] = {
    {"", 1},
    {"B", 1},
    {"KiB", KiB},
    {"MiB", MiB},
    {"GiB", GiB},
    {"TiB", TiB},
    {"k", KiB},
    {"K", KiB},
    {"M", MiB},
    {"G", GiB},
    {"T", TiB},
    {"kB", 1000},
    {"KB", 1000},
    {"MB", 1000 * 1000},
    {"GB", 1000ULL * 1000 * 1000},
    {"TB", 1000ULL * 1000 * 1000 * 1000},
};

/* A plain integer is seconds: "90" reads as a minute and a half. */
static const struct unit duration_units[] = {
    {"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 3600 * 1000}, {"d", 86400 * 1000},
};

/*
 * Reads the leading digits of s into *ret and points *end past them. Fails
 * on no digits at all and on a value beyond 64 bits.
 */
static int parse_digits(const char *s, uint64_t *ret, const char **end)
{
	uint64_t v = 0;
	const char *p = s;

	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (p == s)
		return -1;
	*ret = v;
	*end = p;
	return 0;
}

static int parse_with_units(const char *s, const struct unit *units, size_t n_units, uint64_t *ret)
{
	const char *suffix;
	uint64_t v;

	if (!s || parse_digits(s, &v, &suffix) != 0)
		return -1;
	for (size_t i = 0; i < n_units; i++) {
		if (strcmp(suffix, units[i].suffix) != 0)
			continue;
		if (v != 0 && units[i].factor > UINT64_MAX / v)
			return -1;
		*ret = v * units[i].factor;
		return 0;
	}
	return -1;
}

int hs_parse_size(const char *s, uint64_t *ret)
{
	return parse_with_units(s, size_units, sizeof(size_units) / sizeof(size_units[0]), ret);
}

int hs_parse_duration_ms(const char *s, uint64_t *ret)
{
	return parse_with_units(s, duration_units,
				sizeof(duration_units) / sizeof(duration_units[0]), ret);
}

/*
 * Local time, which curl_getdate() cannot give: it reads a date without a
 * zone as GMT, and a sysadmin writing "2026-12-01 18:00" means the clinic's
 * evening. The shape is checked character by character, so "2026-1-5" or
 * "2026-12-01 18" is refused rather than guessed at; mktime() then decides
 * the offset, and a date it had to normalise did not exist.
 */
int hs_parse_local_time(const char *s, int64_t *ret)
{
	/* d: a digit; other characters stand for themselves, 'T' for 'T' or ' '. */
	static const char shape[] = "dddd-dd-ddTdd:dd:dd";
	struct tm tm = {0}, want;
	size_t len = s ? strlen(s) : 0;
	int y, mo, d, h = 0, mi = 0, sec = 0;
	time_t t;

	if (len != 10 && len != 16 && len != 19)
		return -1;
	for (size_t i = 0; i < len; i++) {
		char c = shape[i];
		if (c == 'd'   ? !(s[i] >= '0' && s[i] <= '9')
		    : c == 'T' ? s[i] != 'T' && s[i] != ' '
			       : s[i] != c)
			return -1;
	}
	if (sscanf(s, "%4d-%2d-%2d", &y, &mo, &d) != 3 ||
	    (len >= 16 && sscanf(s + 11, "%2d:%2d", &h, &mi) != 2) ||
	    (len == 19 && sscanf(s + 17, "%2d", &sec) != 1) || y < 1970)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	tm.tm_isdst = -1;
	want = tm;
	/* (time_t)-1 is also 00:59:59 on the first day of 1970 east of UTC:
	 * the fields, given back unchanged, tell it from a failure. */
	t = mktime(&tm);
	if (tm.tm_year != want.tm_year || tm.tm_mon != want.tm_mon || tm.tm_mday != want.tm_mday ||
	    tm.tm_hour != want.tm_hour || tm.tm_min != want.tm_min || tm.tm_sec != want.tm_sec)
		return -1;
	*ret = (int64_t)t;
	return 0;
}

/*
 * A rate of zero is refused: "0" would read as "off" (unlimited) to the code
 * but as "stop" to many a reader, so the schedule must say "off" outright.
 */
int hs_parse_rate(const char *s, uint64_t *ret)
{
	char size[64];
	size_t len;
	uint64_t v;

	if (!s)
		return -1;
	if (strcmp(s, "off") == 0) {
		*ret = 0;
		return 0;
	}
	len = strlen(s);
	if (len > 2 && strcmp(s + len - 2, "/s") == 0) {
		if (len - 2 >= sizeof(size))
			return -1;
		memcpy(size, s, len - 2);
		size[len - 2] = '\0';
		if (hs_parse_size(size, &v) != 0)
			return -1;
	} else if (parse_with_units(s, size_units, 1, &v) != 0) { /* plain bytes per second */
		return -1;
	}
	if (v == 0)
		return -1;
	*ret = v;
	return 0;
}

const char *hs_format_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *const names[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	double v = (double)bytes;
	size_t i = 0;

	if (bytes < KiB) {
		snprintf(buf, len, "%llu B", (unsigned long long)bytes);
		return buf;
	}
	v /= 1024;
	while (v >= 1024 && i + 1 < sizeof(names) / sizeof(names[0])) {
		v /= 1024;
		i++;
	}
	snprintf(buf, len, "%.1f %s", v, names[i]);
	return buf;
}

const char *hs_format_size_exact(uint64_t bytes, char *buf, size_t len)
{
	static const struct unit exact[] = {{"TiB", TiB}, {"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB}};

	for (size_t i = 0; bytes != 0 && i < sizeof(exact) / sizeof(exact[0]); i++) {
		if (bytes % exact[i].factor == 0) {
			snprintf(buf, len, "%llu%s", (unsigned long long)(bytes / exact[i].factor),
				 exact[i].suffix);
			return buf;
		}
	}
	snprintf(buf, len, "%llu", (unsigned long long)bytes);
	return buf;
}

const char *hs_format_duration(uint64_t ms, char *buf, size_t len)
{
	static const struct {
		const char *suffix;
		uint64_t ms;
	} units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}};
	size_t i = 0;

	while (i < sizeof(units) / sizeof(units[0]) && ms % units[i].ms != 0)
		i++;
	if (ms == 0)
		snprintf(buf, len, "0s");
	else if (i < sizeof(units) / sizeof(units[0]))
		snprintf(buf, len, "%llu%s", (unsigned long long)(ms / units[i].ms),
			 units[i].suffix);
	else
		snprintf(buf, len, "%llums", (unsigned long long)ms);
	return buf;
}

const char *hs_format_count(uint64_t n, char *buf, size_t len)
{
	char digits[24];
	int nd = snprintf(digits, sizeof(digits), "%llu", (unsigned long long)n);
	size_t o = 0;

	if (len == 0)
		return buf;
	for (int i = 0; i < nd && o + 1 < len; i++) {
		if (i && (nd - i) % 3 == 0) {
			if (o + 2 >= len)
				break;
			buf[o++] = ',';
		}
		buf[o++] = digits[i];
	}
	buf[o] = '\0';
	return buf;
}
