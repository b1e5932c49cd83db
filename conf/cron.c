/*
 * cron: parsing five-field expressions into bit sets, and finding the next
 * local time that matches. See cron.h for the rules.
 *
 * The search walks local calendar days, skipping months and days that cannot
 * match with calendar arithmetic alone. For a day that can, it learns how
 * the wall clock maps onto Unix time around that day (the UTC offsets in
 * force and the instants at which they change) and maps each matching wall
 * time of the day to the instants at which it occurs: none (a gap), one, or
 * two (a repeated hour).
 */
#include "config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf/cron.h"

struct hs_cron {
	uint64_t minutes; /* bit m: minute m, 0-59 */
	uint32_t hours;	  /* bit h: hour h, 0-23 */
	uint32_t days;	  /* bit d: day of the month d, 1-31 */
	uint16_t months;  /* bit m: month m, 1-12 */
	uint8_t weekdays; /* bit w: 0 Sunday .. 6 Saturday */
	bool dom_star;	  /* the day-of-month field starts with '*' */
	bool dow_star;	  /* the day-of-week field starts with '*' */
	bool fixed;	  /* neither minute nor hour starts with '*' */
};

struct field {
	const char *name;
	int lo, hi;
	const char *const *names; /* names[i] stands for name_base + i; NULL-terminated */
	int name_base;
};

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul",
					  "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const day_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

static const struct field fields[5] = {
    {"minute", 0, 59, NULL, 0},		 {"hour", 0, 23, NULL, 0},
    {"day of month", 1, 31, NULL, 0},	 {"month", 1, 12, month_names, 1},
    {"day of week", 0, 7, day_names, 0},
};

static const struct {
	const char *name;
	const char *expr;
} macros[] = {
    {"@hourly", "0 * * * *"},	{"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
    {"@weekly", "0 0 * * 0"},	{"@monthly", "0 0 1 * *"}, {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"},
};

#define WANT_FIELDS "minute hour day-of-month month day-of-week"

static char *xstrdup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *xstrdup_printf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

/* Sets *cause to "schedule: field N (name): message". */
static void field_fail(char **cause, int n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void field_fail(char **cause, int n, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	*cause =
	    msg ? xstrdup_printf("schedule: field %d (%s): %s", n + 1, fields[n].name, msg) : NULL;
	free(msg);
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool same_ci(const char *a, size_t alen, const char *b)
{
	size_t blen = strlen(b);

	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++)
		if (lower(a[i]) != lower(b[i]))
			return false;
	return true;
}

/* Reads a run of digits at *p (before end) as a number, saturating at
 * 1000000 so that any long run reads as out of range. */
static int read_number(const char **p, const char *end)
{
	int v = 0;

	while (*p < end && is_digit(**p)) {
		if (v < 1000000)
			v = v * 10 + (**p - '0');
		(*p)++;
	}
	return v;
}

/* A number or (in month and day-of-week) a name, at *p. */
static int parse_value(const char **p, const char *end, int n, int *ret, char **cause)
{
	const struct field *f = &fields[n];
	const char *start = *p;

	if (*p < end && is_digit(**p)) {
		int v = read_number(p, end);

		if (v < f->lo || v > f->hi) {
			field_fail(cause, n, "%.*s is out of range %d-%d", (int)(*p - start), start,
				   f->lo, f->hi);
			return -1;
		}
		*ret = v;
		return 0;
	}
	if (*p < end && is_alpha(**p)) {
		while (*p < end && is_alpha(**p))
			(*p)++;
		for (int i = 0; f->names && f->names[i]; i++) {
			if (same_ci(start, (size_t)(*p - start), f->names[i])) {
				*ret = f->name_base + i;
				return 0;
			}
		}
		if (f->names)
			field_fail(cause, n, "unknown name \"%.*s\" (want %s-%s or a number)",
				   (int)(*p - start), start, f->names[0],
				   f->names[f->name_base ? 11 : 6]);
		else
			field_fail(cause, n, "\"%.*s\" is not a number", (int)(*p - start), start);
		return -1;
	}
	if (*p == end)
		field_fail(cause, n, "a number is missing at the end");
	else
		field_fail(cause, n, "unexpected '%c' where a number should be", **p);
	return -1;
}

/* One list item: "*", "a", "a-b", each optionally followed by "/step". */
static int parse_item(const char *s, const char *end, int n, uint64_t *bits, char **cause)
{
	const struct field *f = &fields[n];
	const char *p = s;
	int a, b, step = 1;

	if (p < end && *p == '*') {
		p++;
		a = f->lo;
		b = f->hi;
	} else {
		if (parse_value(&p, end, n, &a, cause) != 0)
			return -1;
		b = a;
		if (p < end && *p == '-') {
			p++;
			if (parse_value(&p, end, n, &b, cause) != 0)
				return -1;
			if (b < a) {
				field_fail(cause, n, "range %.*s is reversed (want low-high)",
					   (int)(p - s), s);
				return -1;
			}
		} else if (p < end && *p == '/') {
			b = f->hi; /* "a/n": from a to the end of the field */
		}
	}
	if (p < end && *p == '/') {
		const char *num = ++p;
		int span = n == 4 ? 7 : f->hi - f->lo + 1; /* 0 and 7 are one day */

		if (p == end || !is_digit(*p)) {
			field_fail(cause, n, "step in \"%.*s\" is not a number", (int)(end - s), s);
			return -1;
		}
		step = read_number(&p, end);
		if (step < 1 || step > span) {
			field_fail(cause, n, "step %.*s is out of range 1-%d", (int)(p - num), num,
				   span);
			return -1;
		}
	}
	if (p != end) {
		field_fail(cause, n, "unexpected '%c' in \"%.*s\"", *p, (int)(end - s), s);
		return -1;
	}
	for (int v = a; v <= b; v += step)
		*bits |= UINT64_C(1) << v;
	return 0;
}

/* Field n, the len bytes at s: a comma-separated list of items. */
static int parse_field(const char *s, size_t len, int n, uint64_t *bits, char **cause)
{
	const char *end = s + len;

	for (size_t i = 0; i < len; i++) {
		if (s[i] < '!' || s[i] > '~') {
			field_fail(cause, n, "character 0x%02x is not allowed",
				   (unsigned char)s[i]);
			return -1;
		}
	}
	*bits = 0;
	for (const char *p = s;;) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *item_end = comma ? comma : end;

		if (item_end == p) {
			field_fail(cause, n, "empty item in list \"%.*s\"", (int)len, s);
			return -1;
		}
		if (parse_item(p, item_end, n, bits, cause) != 0)
			return -1;
		if (!comma)
			break;
		p = comma + 1;
	}
	return 0;
}

static struct hs_cron *parse_fields(const char *expr, char **cause)
{
	struct hs_cron *c = NULL;
	const char *start[6];
	size_t len[6];
	uint64_t bits[5];
	int count = 0;

	for (const char *p = expr; *p;) {
		while (is_blank(*p))
			p++;
		if (!*p)
			break;
		if (count < 6) {
			start[count] = p;
			len[count] = 0;
		}
		while (*p && !is_blank(*p))
			p++;
		if (count < 6)
			len[count] = (size_t)(p - start[count]);
		count++;
	}
	if (count == 0) {
		*cause = xstrdup_printf("schedule: empty (want 5 fields: " WANT_FIELDS ")");
		return NULL;
	}
	if (count != 5) {
		*cause = xstrdup_printf("schedule: %d field%s, want 5 (" WANT_FIELDS ")", count,
					count == 1 ? "" : "s");
		return NULL;
	}
	for (int n = 0; n < 5; n++)
		if (parse_field(start[n], len[n], n, &bits[n], cause) != 0)
			return NULL;
	c = calloc(1, sizeof(*c));
	if (!c) {
		*cause = xstrdup_printf("schedule: out of memory");
		return NULL;
	}
	c->minutes = bits[0];
	c->hours = (uint32_t)bits[1];
	c->days = (uint32_t)bits[2];
	c->months = (uint16_t)bits[3];
	/* 7 is Sunday too */
	c->weekdays = (uint8_t)((bits[4] | bits[4] >> 7) & 0x7f);
	c->dom_star = start[2][0] == '*';
	c->dow_star = start[4][0] == '*';
	c->fixed = start[0][0] != '*' && start[1][0] != '*';
	return c;
}

static struct hs_cron *parse(const char *expr, char **cause)
{
	const char *p = expr;
	size_t len;

	*cause = NULL;
	if (strnlen(expr, HS_CRON_MAX_LEN + 1) > HS_CRON_MAX_LEN) {
		*cause = xstrdup_printf("schedule: longer than %d characters", HS_CRON_MAX_LEN);
		return NULL;
	}
	while (is_blank(*p))
		p++;
	if (*p != '@')
		return parse_fields(expr, cause);
	len = strcspn(p, " \t");
	for (size_t i = 0; i < sizeof(macros) / sizeof(macros[0]); i++) {
		if (!same_ci(p, len, macros[i].name))
			continue;
		if (p[len + strspn(p + len, " \t")]) {
			*cause = xstrdup_printf("schedule: %s stands for the whole schedule, "
						"nothing may follow it",
						macros[i].name);
			return NULL;
		}
		return parse_fields(macros[i].expr, cause);
	}
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '!' || p[i] > '~') {
			len = i;
			break;
		}
	}
	*cause = xstrdup_printf("schedule: unknown \"%.*s\" (want 5 fields, or @hourly, @daily, "
				"@midnight, @weekly, @monthly, @yearly or @annually)",
				(int)len, p);
	return NULL;
}

struct hs_cron *hs_cron_free(struct hs_cron *c)
{
	free(c);
	return NULL;
}

/* Calendar arithmetic on the proleptic Gregorian calendar; days count from
 * 1970-01-01. Eras of 400 years (146097 days) repeat exactly; within one,
 * years are counted from March so that the leap day comes last. */

static int64_t floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static bool is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
	static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	if (m <= 2)
		y--;
	era = floor_div(y, 400);
	yoe = y - era * 400;				       /* 0-399 */
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* 0-365, from March 1 */
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;	       /* 0-146096 */
	return era * 146097 + doe - 719468; /* 719468: 0000-03-01 to 1970-01-01 */
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = floor_div(z, 146097);
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153; /* 0 is March */
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

/* 0 Sunday .. 6 Saturday; 1970-01-01 was a Thursday. */
static int weekday(int64_t days)
{
	return (int)(((days + 4) % 7 + 7) % 7);
}

/* The UTC offset in force at instant t: local wall time minus t, seconds. */
static int offset_at(int64_t t, int64_t *ret)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if ((int64_t)tt != t || !localtime_r(&tt, &tm))
		return -1;
	*ret = days_from_civil((int64_t)tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday) * 86400 +
	       tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec - t;
	return 0;
}

/*
 * How the wall clock maps onto Unix time around one local day: segments of
 * constant offset, in time order; segment i holds from start[i] (the first
 * one from the beginning of the window) to start[i + 1]. A wall time W (in
 * seconds, as if it were UTC) occurs at W - off[i] if that instant lies in
 * segment i.
 *
 * Real offsets lie within -16 h..+16 h, so the instants of one local day
 * lie within the day, as if UTC, widened by 16 h each side. The window is
 * probed every 6 h and each change of offset found is located to the
 * second by bisection (several between two probes are found one after the
 * other); only a change and its reversal within 6 h would go unseen.
 */
#define OFFSET_MAX  (16 * 3600)
#define PROBE_STEP  (6 * 3600)
#define MAX_SEGMENT 16

struct day_map {
	int n;
	int64_t start[MAX_SEGMENT];
	int64_t off[MAX_SEGMENT];
};

static int map_day(int64_t day, struct day_map *map)
{
	int64_t lo = day * 86400 - OFFSET_MAX, hi = (day + 1) * 86400 + OFFSET_MAX;
	int64_t prev_t = lo, prev_off;

	if (offset_at(lo, &prev_off) != 0)
		return -1;
	map->n = 1;
	map->start[0] = INT64_MIN;
	map->off[0] = prev_off;
	for (int64_t t = lo + PROBE_STEP; prev_t < hi; t += PROBE_STEP) {
		int64_t off;

		if (t > hi)
			t = hi;
		if (offset_at(t, &off) != 0)
			return -1;
		while (off != prev_off) {
			/* The first second after prev_t at which the offset changes. */
			int64_t l = prev_t, r = t, change_off;

			while (r - l > 1) {
				int64_t mid = l + (r - l) / 2, mid_off;

				if (offset_at(mid, &mid_off) != 0)
					return -1;
				if (mid_off == prev_off)
					l = mid;
				else
					r = mid;
			}
			if (offset_at(r, &change_off) != 0 || map->n == MAX_SEGMENT)
				return -1;
			map->start[map->n] = r;
			map->off[map->n] = change_off;
			map->n++;
			prev_t = r;
			prev_off = change_off;
		}
		prev_t = t;
	}
	return 0;
}

static void consider(int64_t t, int64_t after, int64_t *best)
{
	if (t > after && t < *best)
		*best = t;
}

/* The instants at which wall time w runs, as the rules in cron.h say. */
static void run_times(const struct hs_cron *c, const struct day_map *map, int64_t w, int64_t after,
		      int64_t *best)
{
	bool occurs = false;

	for (int i = 0; i < map->n; i++) {
		int64_t t = w - map->off[i];

		if (t < map->start[i] || (i + 1 < map->n && t >= map->start[i + 1]))
			continue;
		consider(t, after, best);
		occurs = true;
		if (c->fixed)
			return; /* the first occurrence only */
	}
	if (occurs || !c->fixed)
		return;
	/* In a gap: at the instant the clock jumps over it. */
	for (int i = 1; i < map->n; i++) {
		if (w >= map->start[i] + map->off[i - 1] && w < map->start[i] + map->off[i]) {
			consider(map->start[i], after, best);
			return;
		}
	}
}

static bool day_matches(const struct hs_cron *c, int64_t day, int d)
{
	bool dom = c->days >> d & 1, dow = c->weekdays >> weekday(day) & 1;

	if (c->dom_star || c->dow_star)
		return dom && dow;
	return dom || dow;
}

/* Wide enough for five years from any time a 64-bit time_t can show. */
#define AFTER_LIMIT  (INT64_C(1) << 40)
#define SEARCH_YEARS 5

int64_t hs_cron_next(const struct hs_cron *c, int64_t after)
{
	int64_t best = INT64_MAX, off, day, last_day, y;
	int m, d;

	if (after < -AFTER_LIMIT || after > AFTER_LIMIT || offset_at(after, &off) != 0)
		return -1;
	/* From the day before: a repeated hour can bring back yesterday's times. */
	day = floor_div(after + off, 86400) - 1;
	last_day = day + SEARCH_YEARS * 366 + 2;
	civil_from_days(day, &y, &m, &d);
	while (day <= last_day) {
		struct day_map map;

		/* Nothing on this day or later can come before the best found. */
		if (day * 86400 - OFFSET_MAX > best)
			break;
		if (!(c->months >> m & 1)) {
			day += days_in_month(y, m) - d + 1;
			d = 1;
			if (++m > 12) {
				m = 1;
				y++;
			}
			continue;
		}
		if (day_matches(c, day, d)) {
			if (map_day(day, &map) != 0)
				return -1;
			for (int h = 0; h < 24; h++) {
				if (!(c->hours >> h & 1))
					continue;
				for (int mi = 0; mi < 60; mi++)
					if (c->minutes >> mi & 1)
						run_times(c, &map, day * 86400 + h * 3600 + mi * 60,
							  after, &best);
			}
		}
		day++;
		if (++d > days_in_month(y, m)) {
			d = 1;
			if (++m > 12) {
				m = 1;
				y++;
			}
		}
	}
	return best == INT64_MAX ? -1 : best;
}

struct hs_cron *hs_cron_parse(const char *expr, char **cause)
{
	char *why = NULL;
	struct hs_cron *c = parse(expr, &why);

	if (cause)
		*cause = why;
	else
		free(why);
	return c;
}
