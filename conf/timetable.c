/*
 * timetable: upload.bandwidth as a weekly list of moments.
 *
 * Parsing expands every entry to the moments of the week it stands for
 * (minute of the week, Monday 00:00 being 0): an entry without a day becomes
 * seven moments, one with a day a single one. Sorted, they answer "which
 * rate holds now" with one look at the wall clock.
 *
 * The next change is found on the wall clock too. From the current local
 * minute, the next moment is a whole number of wall minutes ahead; as long
 * as the UTC offset stays the same, that is the same number of real minutes.
 * When the offset changes before then (daylight saving), the instant of the
 * change is found by bisection and the rate is looked at on either side of
 * it: a moment skipped by a spring-forward gap thus takes effect at the
 * first minute after the gap, and a fall-back that turns the clock back past
 * a moment brings the earlier rate back, as the wall clock says.
 */
#include "config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/timetable.h"
#include "conf/units.h"

#define MINUTES_PER_DAY	 (24 * 60)
#define MINUTES_PER_WEEK (7 * MINUTES_PER_DAY)
#define EVERY_DAY	 (-1)

static const char *const day_names[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};

struct entry {
	int day;       /* 0 (Mon) .. 6 (Sun), or EVERY_DAY */
	int minute;    /* of the day */
	uint64_t rate; /* bytes per second; 0 is unlimited */
	bool pause;    /* "pause": no upload starts; rate is unused */
};

struct moment {
	int minute; /* of the week */
	uint64_t rate;
	bool pause;
	size_t entry; /* the entry it comes from, to name it in errors */
};

struct hs_timetable {
	char *text;		 /* canonical */
	uint64_t rate;		 /* when there are no moments: the single rate */
	size_t n_moments;	 /* 0: a single rate */
	struct moment moments[]; /* sorted by minute */
};

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

static const char *format_rate(uint64_t rate, char *buf, size_t len)
{
	char size[32];

	if (rate == 0)
		snprintf(buf, len, "off");
	else
		snprintf(buf, len, "%s/s", hs_format_size_exact(rate, size, sizeof(size)));
	return buf;
}

/* "8:00", "08:00", "23:59": hours of one or two digits, minutes of two. */
static int parse_time(const char *s, size_t len, int *ret)
{
	int hour = 0, minute;
	size_t i = 0;

	for (; i < len && i < 2 && s[i] >= '0' && s[i] <= '9'; i++)
		hour = hour * 10 + (s[i] - '0');
	if (i == 0 || len != i + 3 || s[i] != ':')
		return -1;
	if (s[i + 1] < '0' || s[i + 1] > '5' || s[i + 2] < '0' || s[i + 2] > '9')
		return -1;
	minute = (s[i + 1] - '0') * 10 + (s[i + 2] - '0');
	if (hour > 23)
		return -1;
	*ret = hour * 60 + minute;
	return 0;
}

static int parse_rate_token(const char *s, size_t len, uint64_t *ret, char **cause)
{
	char buf[64];

	if (len == 5 && memcmp(s, "pause", 5) == 0) {
		*cause = xstrdup_printf("\"pause\" alone would hold uploads for ever (want it in a "
					"timetable, e.g. \"07:00,pause 19:00,off\")");
		return -1;
	}
	if (len < sizeof(buf)) {
		memcpy(buf, s, len);
		buf[len] = '\0';
		if (hs_parse_rate(buf, ret) == 0)
			return 0;
	}
	*cause = xstrdup_printf("bad rate \"%.*s\" (want e.g. \"2MiB/s\", \"512KiB/s\" or \"off\")",
				(int)len, s);
	return -1;
}

/* The rate of a timetable entry: a rate, or "pause". */
static int parse_entry_rate(const char *s, size_t len, struct entry *e, char **cause)
{
	e->pause = len == 5 && memcmp(s, "pause", 5) == 0;
	e->rate = 0;
	if (e->pause)
		return 0;
	if (parse_rate_token(s, len, &e->rate, cause) == 0)
		return 0;
	free(*cause);
	*cause = xstrdup_printf("bad rate \"%.*s\" (want e.g. \"2MiB/s\", \"512KiB/s\", \"off\" "
				"or \"pause\")",
				(int)len, s);
	return -1;
}

/* One "[Day-]HH:MM,RATE" token of len bytes. */
static int parse_entry(const char *s, size_t len, struct entry *e, char **cause)
{
	const char *comma = memchr(s, ',', len);
	const char *time = s;
	size_t time_len;

	if (!comma) {
		*cause = xstrdup_printf("\"%.*s\" is not an entry like \"08:00,2MiB/s\" or "
					"\"Mon-08:00,off\"",
					(int)len, s);
		return -1;
	}
	e->day = EVERY_DAY;
	if (len > 4 && s[3] == '-') {
		for (int d = 0; d < 7; d++)
			if (memcmp(s, day_names[d], 3) == 0)
				e->day = d;
		if (e->day == EVERY_DAY) {
			*cause = xstrdup_printf("bad day \"%.3s\" in \"%.*s\" (want Mon, Tue, Wed, "
						"Thu, Fri, Sat or Sun)",
						s, (int)len, s);
			return -1;
		}
		time = s + 4;
	}
	time_len = (size_t)(comma - time);
	if (comma < time || parse_time(time, time_len, &e->minute) != 0) {
		*cause = xstrdup_printf("bad time in \"%.*s\" (want HH:MM from 00:00 to 23:59)",
					(int)len, s);
		return -1;
	}
	return parse_entry_rate(comma + 1, len - (size_t)(comma + 1 - s), e, cause);
}

static int compare_moments(const void *a, const void *b)
{
	const struct moment *x = a, *y = b;

	return (x->minute > y->minute) - (x->minute < y->minute);
}

static const char *entry_text(const struct entry *e, char *buf, size_t len)
{
	char rate[48];

	if (e->pause)
		snprintf(rate, sizeof(rate), "pause");
	else
		format_rate(e->rate, rate, sizeof(rate));
	if (e->day == EVERY_DAY)
		snprintf(buf, len, "%02d:%02d,%s", e->minute / 60, e->minute % 60, rate);
	else
		snprintf(buf, len, "%s-%02d:%02d,%s", day_names[e->day], e->minute / 60,
			 e->minute % 60, rate);
	return buf;
}

/* Joins the canonical form of the entries with single spaces. */
static char *timetable_text(const struct entry *entries, size_t n)
{
	char *text = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);

	if (!f)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		char buf[96];

		fprintf(f, "%s%s", i ? " " : "", entry_text(&entries[i], buf, sizeof(buf)));
	}
	if (ferror(f)) {
		fclose(f);
		free(text);
		return NULL;
	}
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

/* Expands the entries to sorted moments; refuses two at the same minute. */
static struct hs_timetable *expand(const struct entry *entries, size_t n_entries, char **cause)
{
	struct hs_timetable *tt;
	size_t n = 0;

	for (size_t i = 0; i < n_entries; i++)
		n += entries[i].day == EVERY_DAY ? 7 : 1;
	tt = calloc(1, sizeof(*tt) + n * sizeof(tt->moments[0]));
	if (!tt)
		return NULL;
	for (size_t i = 0; i < n_entries; i++) {
		for (int d = 0; d < 7; d++) {
			if (entries[i].day != EVERY_DAY && entries[i].day != d)
				continue;
			tt->moments[tt->n_moments++] = (struct moment){
			    .minute = d * MINUTES_PER_DAY + entries[i].minute,
			    .rate = entries[i].rate,
			    .pause = entries[i].pause,
			    .entry = i,
			};
		}
	}
	qsort(tt->moments, tt->n_moments, sizeof(tt->moments[0]), compare_moments);
	for (size_t i = 1; i < tt->n_moments; i++) {
		const struct moment *a = &tt->moments[i - 1], *b = &tt->moments[i];
		char x[96], y[96];

		if (a->minute != b->minute)
			continue;
		entry_text(&entries[a->entry < b->entry ? a->entry : b->entry], x, sizeof(x));
		entry_text(&entries[a->entry < b->entry ? b->entry : a->entry], y, sizeof(y));
		*cause = xstrdup_printf("\"%s\" and \"%s\" both set %s %02d:%02d", x, y,
					day_names[a->minute / MINUTES_PER_DAY],
					a->minute % MINUTES_PER_DAY / 60, a->minute % 60);
		free(tt);
		return NULL;
	}
	/* A pause keeps the rate of the last entry before it that is not one:
	 * requests already sending finish at that rate. */
	for (size_t i = 0; i < tt->n_moments; i++) {
		if (tt->moments[i].pause)
			continue;
		for (size_t k = 1; k < tt->n_moments; k++) {
			struct moment *m = &tt->moments[(i + k) % tt->n_moments];

			if (!m->pause)
				break;
			m->rate = tt->moments[i].rate;
		}
	}
	for (size_t i = 0; i < tt->n_moments; i++)
		if (!tt->moments[i].pause)
			return tt;
	*cause = xstrdup_printf("every entry is \"pause\": uploads would never run (want at "
				"least one rate, e.g. \"07:00,pause 19:00,off\")");
	free(tt);
	return NULL;
}

static struct hs_timetable *parse_single(const char *s, size_t len, char **cause)
{
	struct hs_timetable *tt = calloc(1, sizeof(*tt));
	char buf[48];

	if (!tt)
		return NULL;
	if (parse_rate_token(s, len, &tt->rate, cause) != 0)
		goto fail;
	tt->text = strdup(format_rate(tt->rate, buf, sizeof(buf)));
	if (!tt->text)
		goto fail;
	return tt;
fail:
	free(tt);
	return NULL;
}

struct hs_timetable *hs_timetable_parse(const char *s, char **cause)
{
	struct hs_timetable *tt = NULL;
	struct entry *entries = NULL;
	size_t n = 0, max = 0;

	*cause = NULL;
	for (const char *p = s; *p;) {
		size_t len;

		while (*p == ' ')
			p++;
		if (!*p)
			break;
		len = strcspn(p, " ");
		/* A lone token without a comma is a single rate. */
		if (n == 0 && !memchr(p, ',', len) && !p[len + strspn(p + len, " ")]) {
			free(entries);
			return parse_single(p, len, cause);
		}
		if (n == max) {
			struct entry *grown;

			max = max ? 2 * max : 8;
			grown = reallocarray(entries, max, sizeof(*entries));
			if (!grown)
				goto fail;
			entries = grown;
		}
		if (parse_entry(p, len, &entries[n], cause) != 0)
			goto fail;
		n++;
		p += len;
	}
	if (n == 0) {
		*cause = xstrdup_printf("empty (want a rate like \"2MiB/s\" or \"off\", or a "
					"timetable like \"08:00,2MiB/s 18:00,off\")");
		goto fail;
	}
	tt = expand(entries, n, cause);
	if (!tt)
		goto fail;
	tt->text = timetable_text(entries, n);
	if (!tt->text)
		goto fail;
	free(entries);
	return tt;
fail:
	free(entries);
	return hs_timetable_free(tt);
}

struct hs_timetable *hs_timetable_free(struct hs_timetable *tt)
{
	if (tt) {
		free(tt->text);
		free(tt);
	}
	return NULL;
}

const char *hs_timetable_text(const struct hs_timetable *tt)
{
	return tt->text;
}

static int minute_of_week(const struct tm *tm)
{
	int day = ((tm->tm_wday + 6) % 7 + 7) % 7; /* Monday first */

	return day * MINUTES_PER_DAY + tm->tm_hour * 60 + tm->tm_min;
}

/* The index of the moment in force at minute m: the last one at or before
 * it, else the last of the week, which still holds from the week before. */
static size_t moment_at(const struct hs_timetable *tt, int m)
{
	size_t i = tt->n_moments;

	while (i > 0 && tt->moments[i - 1].minute > m)
		i--;
	return i > 0 ? i - 1 : tt->n_moments - 1;
}

uint64_t hs_timetable_rate_at(const struct hs_timetable *tt, const struct tm *local)
{
	if (tt->n_moments == 0)
		return tt->rate;
	return tt->moments[moment_at(tt, minute_of_week(local))].rate;
}

uint64_t hs_timetable_rate(const struct hs_timetable *tt, time_t now)
{
	struct tm tm;

	if (tt->n_moments == 0)
		return tt->rate;
	if (!localtime_r(&now, &tm))
		return tt->moments[tt->n_moments - 1].rate;
	return hs_timetable_rate_at(tt, &tm);
}

bool hs_timetable_paused_at(const struct hs_timetable *tt, const struct tm *local)
{
	return tt->n_moments > 0 && tt->moments[moment_at(tt, minute_of_week(local))].pause;
}

bool hs_timetable_paused(const struct hs_timetable *tt, time_t now)
{
	struct tm tm;

	return tt->n_moments > 0 && localtime_r(&now, &tm) && hs_timetable_paused_at(tt, &tm);
}

/* The moment in force at t, or (size_t)-1 when t has no local time. */
static size_t moment_at_time(const struct hs_timetable *tt, time_t t)
{
	struct tm tm;

	if (!localtime_r(&t, &tm))
		return (size_t)-1;
	return moment_at(tt, minute_of_week(&tm));
}

static bool offset_is(time_t t, long offset)
{
	struct tm tm;

	return localtime_r(&t, &tm) && tm.tm_gmtoff == offset;
}

/* The first second in (lo, hi] whose UTC offset differs from lo's, given
 * that lo has offset and hi does not. */
static time_t offset_change(time_t lo, time_t hi, long offset)
{
	while (hi - lo > 1) {
		time_t mid = lo + (hi - lo) / 2;

		if (offset_is(mid, offset))
			lo = mid;
		else
			hi = mid;
	}
	return hi;
}

time_t hs_timetable_next_change(const struct hs_timetable *tt, time_t now)
{
	time_t t = now, next = 0;

	if (tt->n_moments == 0)
		return 0;
	/* Each round either answers or moves t past one offset change; a week
	 * never holds more than a few of those. */
	for (int round = 0; round < 8; round++) {
		struct tm tm;
		int m, ahead;
		size_t i;

		if (!localtime_r(&t, &tm))
			return 0;
		m = minute_of_week(&tm);
		for (i = 0; i < tt->n_moments && tt->moments[i].minute <= m; i++)
			;
		ahead = i < tt->n_moments ? tt->moments[i].minute - m
					  : tt->moments[0].minute + MINUTES_PER_WEEK - m;
		next = t - tm.tm_sec + (time_t)ahead * 60;
		if (offset_is(next, tm.tm_gmtoff))
			return next;
		t = offset_change(t, next, tm.tm_gmtoff);
		if (moment_at_time(tt, t) != moment_at_time(tt, t - 1))
			return t;
	}
	return next;
}

time_t hs_timetable_pause_end(const struct hs_timetable *tt, time_t now)
{
	time_t t = now;

	if (!hs_timetable_paused(tt, now))
		return 0;
	/* Pauses in a row (say "Sat-00:00,pause Sun-00:00,pause") end at the
	 * first change to an entry that is not one; the parser refused a
	 * schedule of pauses only, so one comes within a week. */
	for (size_t i = 0; i <= tt->n_moments + 8; i++) {
		t = hs_timetable_next_change(tt, t);
		if (t <= 0)
			return 0;
		if (!hs_timetable_paused(tt, t))
			return t;
	}
	return 0;
}
