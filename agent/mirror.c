/*
 * mirror: one run of the patient mirror (see mirror.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "agent/cause.h"
#include "agent/clock.h"
#include "agent/log.h"
#include "agent/mirror.h"
#include "agent/mirror_record.h"
#include "agent/token.h"
#include "agent/upload_api.h"
#include "queue/backoff.h"

static const struct hs_backoff retry_backoff = {.base_ms = 1000, .cap_ms = 30 * 1000};

enum phase { P_IDLE, P_LIST, P_DETAILS, P_APPLY, P_EXPORT };

static const char *const phase_names[] = {
    [P_IDLE] = "idle",	    [P_LIST] = "listing",     [P_DETAILS] = "details",
    [P_APPLY] = "applying", [P_EXPORT] = "exporting",
};

/* One request and its retries: the list page (id NULL) or a detail. */
struct slot {
	struct hs_mirror *m;
	struct hs_http_call *call;
	sd_event_source *timer;
	bool busy;
	char *id;
	unsigned tries;
	unsigned auth_gen; /* of the secret the request carried */
};

struct hs_mirror {
	sd_event *ev;
	const struct hs_config *cfg;
	struct hs_http *http;
	struct slot slots[HS_MIRROR_PARALLEL];

	/* the run; its settings are copied at the start */
	enum phase phase;
	struct hs_mirror_db *db;
	int64_t run_id;
	int64_t started_at;
	int64_t started_us;
	char *base_url;
	char *database;
	char *export_path;
	unsigned page_size;
	bool fetch_details;
	int64_t page, total_pages, pages_done, received;
	int64_t max_pages;    /* fixed by the first page (mirror.h) */
	int64_t staged_bytes; /* answer bytes staged so far */
	int64_t cursor;	      /* staging seq of the last detail handed out */
	bool cursor_end;
	int64_t details_done, details_total;
	hs_mirror_done_fn done;
	void *done_arg;
};

static void pump_details(struct hs_mirror *m);

/* ---- ending a run ------------------------------------------------------------ */

static void slot_reset(struct slot *s)
{
	hs_http_cancel(s->call);
	s->call = NULL;
	sd_event_source_set_enabled(s->timer, SD_EVENT_OFF);
	free(s->id);
	s->id = NULL;
	s->busy = false;
	s->tries = 0;
}

static void run_clear(struct hs_mirror *m)
{
	for (size_t i = 0; i < HS_MIRROR_PARALLEL; i++)
		slot_reset(&m->slots[i]);
	m->db = hs_mirror_db_close(m->db);
	free(m->base_url);
	free(m->database);
	free(m->export_path);
	m->base_url = m->database = m->export_path = NULL;
	m->phase = P_IDLE;
	m->done = NULL;
	m->done_arg = NULL;
}

static double elapsed_s(const struct hs_mirror *m)
{
	return (double)(hs_mono_us() - m->started_us) / 1e6;
}

/* Every entry of a run carries MIRROR_RUN=<id>, so that
 * `journalctl MIRROR_RUN=N` tells the whole run; msgid may be NULL. */
static void run_log(const struct hs_mirror *m, int prio, const char *msgid, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void run_log(const struct hs_mirror *m, int prio, const char *msgid, const char *fmt, ...)
{
	char id[24], msg[1024];
	va_list ap;

	snprintf(id, sizeof(id), "%" PRId64, m->run_id);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	const struct hs_log_field f[] = {{"MIRROR_RUN", id}, {"MESSAGE_ID", msgid}};
	hs_log_fields(prio, f, 2, "%s", msg);
}

/* Ends the run that failed with error (status "failed" or "cancelled"):
 * staging is dropped, patients untouched. Calls back unless cancelled. */
static void run_stop(struct hs_mirror *m, const char *status, const char *error)
{
	char *cause = NULL;
	struct hs_mirror_result res = {.ok = false, .error = error};
	hs_mirror_done_fn done = m->done;
	void *arg = m->done_arg;
	bool cancelled = strcmp(status, "cancelled") == 0;

	for (size_t i = 0; i < HS_MIRROR_PARALLEL; i++)
		slot_reset(&m->slots[i]);
	if (m->db && hs_mirror_db_run_end(m->db, m->run_id, hs_wall_ms(), status, error,
					  m->pages_done, &cause) != HS_MDB_OK) {
		run_log(m, LOG_WARNING, NULL,
			"mirror run %" PRId64 ": cannot record its end in %s: %s", m->run_id,
			m->database, cause ? cause : "out of memory");
		free(cause);
	}
	res.run.id = m->run_id;
	snprintf(res.run.status, sizeof(res.run.status), "%s", status);
	res.run.started_at = m->started_at;
	res.run.pages = m->pages_done;
	if (cancelled) {
		run_log(m, LOG_NOTICE, NULL,
			"mirror run %" PRId64 " cancelled after %.1f s; the mirror keeps "
			"the last finished run",
			m->run_id, elapsed_s(m));
	} else {
		run_log(m, LOG_ERR, HS_MSGID_MIRROR_FAILED, "mirror run %" PRId64 " failed: %s",
			m->run_id, error);
	}
	run_clear(m);
	if (done && !cancelled)
		done(&res, arg);
}

static void fail(struct hs_mirror *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(struct hs_mirror *m, const char *fmt, ...)
{
	char error[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(error, sizeof(error), fmt, ap);
	va_end(ap);
	/* One line, whatever a server's error type or curl put in it. */
	for (char *p = error; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	run_stop(m, "failed", error);
}

/* ---- room on disk --------------------------------------------------------------- */

#define MIB(b) ((long long)(((b) + 1024 * 1024 - 1) / (1024 * 1024)))

/* Free bytes on the file system of the folder holding path, or -1; *ret_dev
 * (may be NULL) gets that folder's device. */
static int64_t free_bytes(const char *path, dev_t *ret_dev)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	struct statvfs vfs;
	struct stat st;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
	if (statvfs(dir, &vfs) != 0 || (ret_dev && stat(dir, &st) != 0))
		return -1;
	if (ret_dev)
		*ret_dev = st.st_dev;
	return (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize;
}

/* Whether need bytes, and HS_MIRROR_MIN_FREE beyond them, are free where
 * path lives; else *ret_avail says what is. Unknown free space passes. */
static bool room(const char *path, int64_t need, int64_t *ret_avail)
{
	int64_t avail = free_bytes(path, NULL);

	*ret_avail = avail;
	return avail < 0 || avail - HS_MIRROR_MIN_FREE >= need;
}

/* Before apply (mirror.h): the apply's estimate where the database is, the
 * export's where the export goes (both there when it is one file system).
 * Fails the run, and returns false, when either does not fit. */
static bool room_to_apply(struct hs_mirror *m)
{
	int64_t apply = HS_MIRROR_APPLY_FACTOR * m->staged_bytes, export = 0, avail;
	dev_t db_dev = 0, ex_dev = 0;
	struct stat old;

	if (m->export_path) {
		export = m->staged_bytes;
		if (stat(m->export_path, &old) == 0 && S_ISREG(old.st_mode))
			export += old.st_size;
		if (free_bytes(m->database, &db_dev) >= 0 &&
		    free_bytes(m->export_path, &ex_dev) >= 0 && db_dev == ex_dev) {
			apply += export;
			export = 0;
		}
	}
	if (!room(m->database, apply, &avail)) {
		fail(m,
		     "%s: applying this run needs about %lld MiB free on its file system "
		     "(%lld MiB%s and %lld MiB kept free), only %lld MiB are; nothing is applied",
		     m->database, MIB(apply + HS_MIRROR_MIN_FREE), MIB(apply),
		     m->export_path && !export ? " with the export" : "", MIB(HS_MIRROR_MIN_FREE),
		     MIB(avail));
		return false;
	}
	if (export && !room(m->export_path, export, &avail)) {
		fail(m,
		     "%s: exporting this run needs about %lld MiB free on its file system "
		     "(%lld MiB and %lld MiB kept free), only %lld MiB are; nothing is applied",
		     m->export_path, MIB(export + HS_MIRROR_MIN_FREE), MIB(export),
		     MIB(HS_MIRROR_MIN_FREE), MIB(avail));
		return false;
	}
	return true;
}

/* ---- export ------------------------------------------------------------------- */

static int count_line(const char *json, size_t len, void *arg)
{
	(void)json;
	*(int64_t *)arg += (int64_t)len + 1;
	return 0;
}

static int write_line(const char *json, size_t len, void *arg)
{
	FILE *f = arg;

	if (fwrite(json, 1, len, f) != len || putc('\n', f) == EOF)
		return -1;
	return 0;
}

/* Writes the live records to export_path atomically: a reader sees the
 * old file or the new one, complete. */
static int export_records(struct hs_mirror *m, char **cause)
{
	char *dir = NULL, *tmp = NULL, *slash;
	FILE *f = NULL;
	int fd = -1, dfd = -1, rc = -1, walk;

	/* The exact size first: the file must fit with room to spare. */
	int64_t size = 0, avail;
	if (hs_mirror_db_each_live(m->db, count_line, &size, cause) == HS_MDB_ERROR)
		return -1;
	if (!room(m->export_path, size, &avail)) {
		hs_cause(cause,
			 "it needs about %lld MiB free on its file system (%lld MiB and %lld "
			 "MiB kept free), only %lld MiB are; the old export is kept",
			 MIB(size + HS_MIRROR_MIN_FREE), MIB(size), MIB(HS_MIRROR_MIN_FREE),
			 MIB(avail));
		return -1;
	}
	if (!(dir = strdup(m->export_path)))
		goto oom;
	slash = strrchr(dir, '/');
	if (slash == dir)
		dir[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		strcpy(dir, ".");
	slash = strrchr(m->export_path, '/');
	if (asprintf(&tmp, "%s/.%s.XXXXXX", dir, slash ? slash + 1 : m->export_path) < 0) {
		tmp = NULL;
		goto oom;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		hs_cause(cause, "%s: %s", tmp, strerror(errno));
		free(tmp);
		tmp = NULL;
		goto out;
	}
	if (fchmod(fd, 0600) != 0 || !(f = fdopen(fd, "w"))) {
		hs_cause(cause, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	walk = hs_mirror_db_each_live(m->db, write_line, f, cause);
	if (walk == HS_MDB_ERROR)
		goto out;
	if (walk != 0 || fflush(f) != 0 || fsync(fileno(f)) != 0) {
		hs_cause(cause, "writing %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (fclose(f) != 0) {
		f = NULL;
		hs_cause(cause, "writing %s: %s", tmp, strerror(errno));
		goto out;
	}
	f = NULL;
	if (rename(tmp, m->export_path) != 0) {
		hs_cause(cause, "renaming %s to %s: %s", tmp, m->export_path, strerror(errno));
		goto out;
	}
	free(tmp);
	tmp = NULL;
	/* The rename is durable once the directory is. */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) != 0) {
		hs_cause(cause, "syncing %s: %s", dir, strerror(errno));
		goto out;
	}
	rc = 0;
	goto out;
oom:
	hs_cause(cause, "%s", "out of memory");
out:
	if (f)
		fclose(f);
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	if (tmp)
		unlink(tmp);
	free(tmp);
	free(dir);
	return rc;
}

/* ---- the end of a successful run ---------------------------------------------- */

static void apply(struct hs_mirror *m)
{
	struct hs_mirror_result res = {.ok = true};
	char *cause = NULL, error[512];
	hs_mirror_done_fn done = m->done;
	void *arg = m->done_arg;

	m->phase = P_APPLY;
	if (!room_to_apply(m))
		return;
	if (hs_mirror_db_apply(m->db, m->run_id, hs_wall_ms(), m->pages_done, &res.run, &cause) !=
	    HS_MDB_OK) {
		snprintf(error, sizeof(error), "applying the run to %s: %s", m->database,
			 cause ? cause : "out of memory");
		free(cause);
		fail(m, "%s", error);
		return;
	}
	res.run.started_at = m->started_at;
	run_log(m, LOG_NOTICE, NULL,
		"mirror run %" PRId64 " done in %.1f s: %" PRId64 " records in %" PRId64
		" pages, %" PRId64 " created, %" PRId64 " updated, %" PRId64 " deleted, %" PRId64
		" detail requests",
		m->run_id, elapsed_s(m), res.run.records, res.run.pages, res.run.created,
		res.run.updated, res.run.deleted, m->details_done);

	if (m->export_path) {
		m->phase = P_EXPORT;
		if (export_records(m, &cause) != 0) {
			snprintf(error, sizeof(error), "export to %s failed: %s", m->export_path,
				 cause ? cause : "out of memory");
			free(cause);
			cause = NULL;
			if (hs_mirror_db_run_note(m->db, m->run_id, error, &cause) != HS_MDB_OK)
				free(cause);
			run_log(m, LOG_ERR, HS_MSGID_MIRROR_FAILED,
				"mirror run %" PRId64 " failed: %s (the database has "
				"the run)",
				m->run_id, error);
			res.ok = false;
			res.error = error;
		} else {
			run_log(m, LOG_INFO, NULL, "mirror run %" PRId64 ": exported to %s",
				m->run_id, m->export_path);
		}
	}
	run_clear(m);
	if (done)
		done(&res, arg);
}

/* ---- requests ---------------------------------------------------------------- */

static void on_response(struct hs_http_response *resp, void *arg);

static const char *slot_kind(const struct slot *s)
{
	return s->id ? "detail" : "list";
}

/* Sends the slot's request. A request that cannot even be set up counts
 * as a failed try. */
static void retry(struct slot *s, long status, const char *why);

static void send_request(struct slot *s)
{
	struct hs_mirror *m = s->m;
	char *url, *cause = NULL;

	url = s->id ? hs_patient_url(m->base_url, s->id)
		    : hs_patients_url(m->base_url, m->page, m->page_size);
	if (!url) {
		/* Ids were checked when staged: only memory is left. */
		fail(m, "out of memory");
		return;
	}
	s->auth_gen = m->cfg->mirror.api.secret->generation;
	struct hs_http_request req = {.realm = "records",
				      .method = "GET",
				      .url = url,
				      .api_key = m->cfg->mirror.api.secret->value,
				      .bearer = m->cfg->mirror.api.auth == HS_AUTH_BEARER,
				      .ca_file = m->cfg->mirror.api.ca_file,
				      .proxy = m->cfg->mirror.api.proxy,
				      .body_fd = -1};
	s->busy = true;
	s->call = hs_http_send(m->http, &req, on_response, s, &cause);
	free(url);
	if (!s->call) {
		char why[256];
		snprintf(why, sizeof(why), "%s", cause ? cause : "out of memory");
		free(cause);
		retry(s, 0, why);
	}
}

static int on_retry_timer(sd_event_source *src, uint64_t usec, void *arg)
{
	send_request(arg);
	return 0;
}

/* A transient failure: the same request again after a backoff, or the run
 * fails after HS_MIRROR_TRIES tries. A 429 goes again at once: the rate
 * limiter already holds the realm until its Retry-After. */
static void retry(struct slot *s, long status, const char *why)
{
	struct hs_mirror *m = s->m;
	uint64_t delay = 0, now;

	if (++s->tries >= HS_MIRROR_TRIES) {
		if (s->id)
			fail(m, "a detail request failed %u times, last: %s", s->tries, why);
		else
			fail(m, "list page %" PRId64 " failed %u times, last: %s", m->page,
			     s->tries, why);
		return;
	}
	if (status != 429)
		delay = hs_backoff_delay(&retry_backoff, s->tries, hs_random64());
	run_log(m, LOG_DEBUG, NULL,
		"mirror run %" PRId64 ": %s request failed (%s); try %u of %d in %.1f s", m->run_id,
		slot_kind(s), why, s->tries + 1, HS_MIRROR_TRIES, (double)delay / 1000);
	sd_event_now(m->ev, CLOCK_MONOTONIC, &now);
	sd_event_source_set_time(s->timer, now + delay * 1000);
	sd_event_source_set_enabled(s->timer, SD_EVENT_ONESHOT);
}

/* ---- staging what arrives ------------------------------------------------------ */

static void row_from(struct hs_mirror_row *row, const json_t *rec, const char *raw,
		     const char *list)
{
	struct hs_patient_columns c;

	hs_patient_columns(rec, &c);
	*row = (struct hs_mirror_row){.id = c.id,
				      .name = c.name,
				      .created_at = c.created_at,
				      .pronouns = c.pronouns,
				      .notes = c.notes,
				      .consent = c.consent,
				      .raw_json = raw,
				      .list_json = list};
}

/* A listed record: merged onto what this run saw of it before (pages
 * shift), and onto the stored record, whose detail fields it keeps. */
static int stage_listed(struct hs_mirror *m, const json_t *rec, char **cause)
{
	const char *id = json_string_value(json_object_get(rec, "id"));
	char *list = NULL, *raw = NULL, *list_text = NULL, *raw_text = NULL;
	json_t *list_obj = NULL, *raw_obj = NULL;
	struct hs_mirror_row row;
	int rc = -1;

	if (hs_mirror_db_stage_base(m->db, id, &list, &raw, cause) != HS_MDB_OK)
		return -1;
	if (!(list_obj = hs_patient_merge(list, rec, cause)) ||
	    !(raw_obj = hs_patient_merge(raw, rec, cause)))
		goto out;
	if (!(list_text = hs_patient_dump(list_obj)) || !(raw_text = hs_patient_dump(raw_obj))) {
		hs_cause(cause, "%s", "out of memory");
		goto out;
	}
	row_from(&row, raw_obj, raw_text, list_text);
	rc = hs_mirror_db_stage_listed(m->db, &row, cause) == HS_MDB_OK ? 0 : -1;
out:
	json_decref(list_obj);
	json_decref(raw_obj);
	free(list);
	free(raw);
	free(list_text);
	free(raw_text);
	return rc;
}

/* A detail record: this run's list record with the detail fields on it; a
 * record missing from the list keeps its stored fields under them. */
static int stage_fetched(struct hs_mirror *m, const json_t *rec, char **cause)
{
	const char *id = json_string_value(json_object_get(rec, "id"));
	char *list = NULL, *raw = NULL, *text = NULL;
	json_t *obj = NULL;
	struct hs_mirror_row row;
	int rc = -1;

	if (hs_mirror_db_stage_base(m->db, id, &list, &raw, cause) != HS_MDB_OK)
		return -1;
	if (!(obj = hs_patient_merge(list ? list : raw, rec, cause)))
		goto out;
	if (!(text = hs_patient_dump(obj))) {
		hs_cause(cause, "%s", "out of memory");
		goto out;
	}
	row_from(&row, obj, text, NULL);
	rc = hs_mirror_db_stage_fetched(m->db, &row, cause) == HS_MDB_OK ? 0 : -1;
out:
	json_decref(obj);
	free(list);
	free(raw);
	free(text);
	return rc;
}

/* ---- the phases ------------------------------------------------------------------ */

static void start_details(struct hs_mirror *m)
{
	struct hs_mirror_plan plan;
	char *cause = NULL, error[512];

	if (hs_mirror_db_plan(m->db, m->fetch_details, HS_MIRROR_REFRESH_PERCENT,
			      HS_MIRROR_REFRESH_MIN, &plan, &cause) != HS_MDB_OK) {
		snprintf(error, sizeof(error), "%s: %s", m->database,
			 cause ? cause : "out of memory");
		free(cause);
		fail(m, "%s", error);
		return;
	}
	run_log(m, LOG_INFO, NULL,
		"mirror run %" PRId64 ": %" PRId64 " records listed in %" PRId64 " pages; %" PRId64
		" detail requests (%" PRId64 " missing from the list, %" PRId64 " new, %" PRId64
		" refreshed)",
		m->run_id, plan.listed, m->pages_done, plan.wanted, plan.absent, plan.fresh,
		plan.refresh);
	m->phase = P_DETAILS;
	m->details_total = plan.wanted;
	m->cursor = 0;
	m->cursor_end = false;
	pump_details(m);
}

/* Whether staging an answer of len bytes keeps the run within the bounds
 * of mirror.h; fails the run otherwise. page: NULL for a detail answer. */
static bool bounded(struct hs_mirror *m, const struct hs_patient_page *page, size_t n, size_t len)
{
	int64_t avail;

	if (page && n > m->page_size) {
		fail(m, "list page %" PRId64 ": %zu records, more than the %u asked for", m->page,
		     n, m->page_size);
		return false;
	}
	if (page && m->pages_done == 0) {
		if (page->total_pages > HS_MIRROR_MAX_RECORDS / m->page_size) {
			fail(m,
			     "list page %" PRId64 ": the server announces %" PRId64
			     " pages of %u records, more than the %d records a run may stage",
			     m->page, page->total_pages, m->page_size, HS_MIRROR_MAX_RECORDS);
			return false;
		}
		m->max_pages = page->total_pages + page->total_pages / 10 + 1;
	} else if (page && page->total_pages > m->max_pages) {
		fail(m,
		     "list page %" PRId64 ": total_pages went up to %" PRId64
		     " during the run, more than the %" PRId64 " the first page allows",
		     m->page, page->total_pages, m->max_pages);
		return false;
	}
	m->staged_bytes += (int64_t)len;
	if (m->staged_bytes > HS_MIRROR_MAX_STAGED) {
		fail(m, "the server sent more than %lld MiB in one run",
		     HS_MIRROR_MAX_STAGED / (1024 * 1024));
		return false;
	}
	avail = free_bytes(m->database, NULL);
	if (avail >= 0 && avail < HS_MIRROR_MIN_FREE) {
		fail(m,
		     "%s: less than %lld MiB free on its file system; the run stops before it "
		     "fills the disk",
		     m->database, HS_MIRROR_MIN_FREE / (1024 * 1024));
		return false;
	}
	return true;
}

static void list_page_done(struct hs_mirror *m, const char *body)
{
	struct hs_patient_page page;
	char *cause = NULL, error[512];
	size_t i, n;
	json_t *rec;

	if (hs_patient_page_parse(body, &page, &cause) != 0) {
		snprintf(error, sizeof(error), "list page %" PRId64 ": %s", m->page,
			 cause ? cause : "out of memory");
		free(cause);
		fail(m, "%s", error);
		return;
	}
	n = json_array_size(page.data);
	if (!bounded(m, &page, n, strlen(body))) {
		hs_patient_page_clear(&page);
		return;
	}
	if (hs_mirror_db_batch_begin(m->db, &cause) != HS_MDB_OK)
		goto db_fail;
	json_array_foreach(page.data, i, rec)
	{
		if (stage_listed(m, rec, &cause) != 0) {
			hs_mirror_db_batch_rollback(m->db);
			goto db_fail;
		}
	}
	if (hs_mirror_db_batch_commit(m->db, &cause) != HS_MDB_OK)
		goto db_fail;
	m->pages_done++;
	m->received += (int64_t)n;
	m->total_pages = page.total_pages;
	hs_patient_page_clear(&page);
	run_log(m, LOG_DEBUG, NULL,
		"mirror run %" PRId64 ": page %" PRId64 " of %" PRId64 ", %zu records", m->run_id,
		m->page, m->total_pages, n);
	/* An empty page is past the end, whatever total_pages says. */
	if (n == 0 || m->page >= m->total_pages) {
		slot_reset(&m->slots[0]);
		start_details(m);
		return;
	}
	m->page++;
	m->slots[0].tries = 0;
	send_request(&m->slots[0]);
	return;
db_fail:
	hs_patient_page_clear(&page);
	snprintf(error, sizeof(error), "%s: %s", m->database, cause ? cause : "out of memory");
	free(cause);
	fail(m, "%s", error);
}

/* A detail answer: 200 with the record, or 404 (gone). */
static void detail_done(struct slot *s, long status, const char *body)
{
	struct hs_mirror *m = s->m;
	char *cause = NULL, error[512];
	json_t *rec = NULL;
	int rc;

	if (status == 404) {
		rc = hs_mirror_db_stage_gone(m->db, s->id, &cause);
	} else {
		if (!bounded(m, NULL, 0, body ? strlen(body) : 0))
			return;
		rec = hs_patient_detail_parse(body, s->id, &cause);
		if (!rec) {
			snprintf(error, sizeof(error), "a detail answer: %s",
				 cause ? cause : "out of memory");
			free(cause);
			fail(m, "%s", error);
			return;
		}
		rc = stage_fetched(m, rec, &cause);
		json_decref(rec);
	}
	if (rc != 0) {
		snprintf(error, sizeof(error), "%s: %s", m->database,
			 cause ? cause : "out of memory");
		free(cause);
		fail(m, "%s", error);
		return;
	}
	m->details_done++;
	if (m->details_done % 500 == 0)
		run_log(m, LOG_DEBUG, NULL,
			"mirror run %" PRId64 ": %" PRId64 " of %" PRId64 " details", m->run_id,
			m->details_done, m->details_total);
	slot_reset(s);
	pump_details(m);
}

/* Keeps HS_MIRROR_PARALLEL detail requests going, walking staging in
 * order; applies the run once all have answered. */
static void pump_details(struct hs_mirror *m)
{
	char *cause = NULL, error[512];
	bool busy = false;

	for (size_t i = 0; i < HS_MIRROR_PARALLEL && m->phase == P_DETAILS; i++) {
		struct slot *s = &m->slots[i];
		if (!s->busy && !m->cursor_end) {
			int rc =
			    hs_mirror_db_next_wanted(m->db, m->cursor, &m->cursor, &s->id, &cause);
			if (rc == HS_MDB_ERROR) {
				snprintf(error, sizeof(error), "%s: %s", m->database,
					 cause ? cause : "out of memory");
				free(cause);
				fail(m, "%s", error);
				return;
			}
			if (rc == HS_MDB_EMPTY) {
				m->cursor_end = true;
			} else {
				s->tries = 0;
				send_request(s);
				/* send_request may have ended the run. */
				if (m->phase != P_DETAILS)
					return;
			}
		}
		busy = busy || s->busy;
	}
	if (m->phase == P_DETAILS && m->cursor_end && !busy)
		apply(m);
}

/* A 401: sends the request again, spending no try, when the secret
 * changed since it left or its file now holds a new one (a rotated token
 * is taken up without a reload). Returns whether it did. */
static bool auth_again(struct slot *s)
{
	const struct hs_api *api = &s->m->cfg->mirror.api;
	bool changed = false;
	char *cause = NULL;

	if (s->auth_gen == api->secret->generation) {
		if (hs_api_reread(api, &changed, &cause) != 0) {
			run_log(s->m, LOG_WARNING, NULL, "mirror: cannot read the %s again: %s",
				hs_auth_noun(api), cause ? cause : "out of memory");
			free(cause);
			return false;
		}
		if (!changed)
			return false;
		run_log(s->m, LOG_NOTICE, NULL,
			"the records API rejected the %s (HTTP 401); %s holds a new one, trying it",
			hs_auth_noun(api), hs_api_secret_file(api));
	}
	send_request(s);
	return true;
}

static void on_response(struct hs_http_response *resp, void *arg)
{
	struct slot *s = arg;
	struct hs_mirror *m = s->m;
	char type[64], why[320];

	s->call = NULL;
	if (resp->result != CURLE_OK) {
		/* The body cap: an answer that large is not a record. */
		if (resp->result == CURLE_WRITE_ERROR) {
			fail(m, "%s answer: %s", s->id ? "a detail" : "a list", resp->error);
			return;
		}
		/* Configuration, not chance: trying again within the run only
		 * delays the line that says what to fix. */
		if (resp->refused != HS_REFUSED_NONE) {
			fail(m, "%s; check mirror.%s, then reload", resp->error,
			     resp->refused == HS_REFUSED_TLS ? "ca_file" : "proxy");
			return;
		}
		retry(s, 0, resp->error);
		return;
	}
	if (resp->status == 200) {
		if (s->id)
			detail_done(s, 200, resp->body);
		else
			list_page_done(m, resp->body);
		return;
	}
	if (resp->status == 404 && s->id) {
		detail_done(s, 404, NULL);
		return;
	}
	/* The error type only, and only if it looks like one: a message, or
	 * a hostile type, could quote what was asked for. */
	hs_api_error_type(resp->body, type, sizeof(type));
	if (type[strspn(type, "abcdefghijklmnopqrstuvwxyz0123456789_")] != '\0')
		type[0] = '\0';
	snprintf(why, sizeof(why), "HTTP %ld%s%s", resp->status, type[0] ? " " : "", type);
	if (resp->status == 401 && auth_again(s))
		return;
	if (resp->status == 401) {
		char hint[512];

		fail(m, "the records API rejected the %s (HTTP 401); %s",
		     hs_auth_noun(&m->cfg->mirror.api),
		     hs_auth_hint(&m->cfg->mirror.api, hs_wall_ms() / 1000, hint, sizeof(hint)));
		return;
	}
	if (resp->status == 408 || resp->status == 425 || resp->status == 429 ||
	    resp->status >= 500) {
		retry(s, resp->status, why);
		return;
	}
	if (s->id)
		fail(m, "a detail request: %s", why);
	else
		fail(m, "list page %" PRId64 ": %s", m->page, why);
}

/* ---- the object -------------------------------------------------------------- */

struct hs_mirror *hs_mirror_new(sd_event *ev, const struct hs_config *cfg, struct hs_http *http,
				char **cause)
{
	struct hs_mirror *m = calloc(1, sizeof(*m));

	if (!m) {
		hs_cause(cause, "%s", "out of memory");
		return NULL;
	}
	m->ev = sd_event_ref(ev);
	m->cfg = cfg;
	m->http = http;
	for (size_t i = 0; i < HS_MIRROR_PARALLEL; i++) {
		struct slot *s = &m->slots[i];
		s->m = m;
		if (sd_event_add_time(ev, &s->timer, CLOCK_MONOTONIC, 0, 0, on_retry_timer, s) <
			0 ||
		    sd_event_source_set_enabled(s->timer, SD_EVENT_OFF) < 0) {
			hs_cause(cause, "%s", "cannot add the mirror to the event loop");
			return hs_mirror_free(m);
		}
	}
	return m;
}

struct hs_mirror *hs_mirror_free(struct hs_mirror *m)
{
	if (!m)
		return NULL;
	hs_mirror_cancel(m);
	for (size_t i = 0; i < HS_MIRROR_PARALLEL; i++)
		sd_event_source_disable_unref(m->slots[i].timer);
	sd_event_unref(m->ev);
	free(m);
	return NULL;
}

int hs_mirror_start(struct hs_mirror *m, hs_mirror_done_fn done, void *arg, char **cause)
{
	const struct hs_config *cfg = m->cfg;
	char *why = NULL;
	int rc;

	if (m->phase != P_IDLE)
		return hs_cause(cause, "%s", "a mirror run is already going");
	if (!cfg->mirror.enabled || !cfg->mirror.api.base_url || !cfg->mirror.database)
		return hs_cause(cause, "%s", "no mirror section in the configuration");
	if (!(m->base_url = strdup(cfg->mirror.api.base_url)) ||
	    !(m->database = strdup(cfg->mirror.database)) ||
	    (cfg->mirror.export_path && !(m->export_path = strdup(cfg->mirror.export_path)))) {
		run_clear(m);
		return hs_cause(cause, "%s", "out of memory");
	}
	m->page_size = cfg->mirror.page_size ? cfg->mirror.page_size : 100;
	m->fetch_details = cfg->mirror.fetch_details;
	m->started_at = hs_wall_ms();
	m->started_us = hs_mono_us();
	m->page = 1;
	m->total_pages = m->pages_done = m->received = 0;
	m->max_pages = m->staged_bytes = 0;
	m->details_done = m->details_total = 0;
	rc = hs_mirror_db_open(m->database, HS_MDB_WRITE, &m->db, &why);
	if (rc == HS_MDB_OK)
		rc = hs_mirror_db_run_begin(m->db, m->started_at, &m->run_id, &why);
	if (rc != HS_MDB_OK) {
		hs_cause(cause, "%s: %s", m->database, why ? why : "out of memory");
		free(why);
		run_clear(m);
		return -1;
	}
	m->phase = P_LIST;
	m->done = done;
	m->done_arg = arg;
	run_log(m, LOG_INFO, NULL, "mirror run %" PRId64 " started: %s, %u records a page%s",
		m->run_id, m->database, m->page_size, m->fetch_details ? ", with details" : "");
	send_request(&m->slots[0]);
	return 0;
}

void hs_mirror_cancel(struct hs_mirror *m)
{
	if (m->phase != P_IDLE)
		run_stop(m, "cancelled", "cancelled");
}

bool hs_mirror_running(const struct hs_mirror *m)
{
	return m->phase != P_IDLE;
}

void hs_mirror_progress(const struct hs_mirror *m, struct hs_mirror_progress *ret)
{
	*ret = (struct hs_mirror_progress){
	    .running = m->phase != P_IDLE,
	    .phase = phase_names[m->phase],
	};
	if (!ret->running)
		return;
	ret->run_id = m->run_id;
	ret->started_at = m->started_at;
	ret->page = m->pages_done;
	ret->total_pages = m->total_pages;
	ret->received = m->received;
	ret->details_done = m->details_done;
	ret->details_total = m->details_total;
}

void hs_mirror_reconfigure(struct hs_mirror *m, const struct hs_config *cfg)
{
	m->cfg = cfg;
}
