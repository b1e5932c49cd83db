/*
 * upload_multipart: large files in parts: create -> (list, when resuming)
 * -> presign parts just ahead of need -> PUT parts, `parallel` at once
 * across all jobs -> complete with the ETags in order.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/log.h"
#include "agent/transfer.h"

static int64_t part_offset(const struct transfer *t, uint32_t index)
{
	return (int64_t)index * t->session.part_size;
}

static int64_t part_length(const struct transfer *t, uint32_t index)
{
	int64_t rest = t->st.st_size - part_offset(t, index);

	return rest < t->session.part_size ? rest : t->session.part_size;
}

/* Cancels the parts in flight and forgets them all. */
void parts_free(struct transfer *t)
{
	for (uint32_t i = 0; t->parts && i < t->session.part_count; i++) {
		if (t->parts[i].state == P_SENDING) {
			hs_http_cancel(t->parts[i].call);
			t->u->puts--;
		}
		hs_presigned_clear(&t->parts[i].url);
	}
	free(t->parts);
	t->parts = NULL;
	t->n_done = 0;
	t->done_bytes = 0;
}

static void setup_parts(struct transfer *t)
{
	parts_free(t);
	t->parts = calloc(t->session.part_count, sizeof(*t->parts));
	if (!t->parts)
		return;
	for (uint32_t i = 0; i < t->session.part_count; i++) {
		struct part *p = &t->parts[i];
		p->t = t;
		p->index = i;
		p->size = part_length(t, i);
		if (t->scan_crcs && t->scan_part_size == t->session.part_size) {
			p->crc = t->scan_crcs[i];
			p->crc_known = true;
		}
	}
}

static bool all_crcs_known(const struct transfer *t)
{
	for (uint32_t i = 0; i < t->session.part_count; i++)
		if (t->parts[i].state != P_DONE && !t->parts[i].crc_known)
			return false;
	return true;
}

/* Parts are set up: send them, after one more read of the file if the
 * storage chose another part size than the scan used. May end t. */
void parts_ready(struct transfer *t)
{
	if (t->ended)
		return;
	if (!t->parts) {
		job_release(t, RESTART_DELAY_MS);
		return;
	}
	if (!all_crcs_known(t)) {
		start_scan(t, false, t->session.part_size);
		return;
	}
	t->step = S_PARTS;
	t->tries = 0;
	run_step(t);
}

/* ---- part URLs --------------------------------------------------------------- */

/* How many part URLs this transfer should hold ready: one for each slot
 * free now, and one for each part the busy slots will finish within a
 * URL's lifetime (up to four rounds of the slots). A URL asked for sooner
 * would expire waiting (SPEC 1.1: short-lived), and one asked for later
 * leaves a slot idle. Until the lifetime is known, one for each free
 * slot; until a part's time is known, one round ahead. */
static uint32_t urls_wanted(const struct transfer *t)
{
	const struct hs_uploader *u = t->u;
	uint32_t parallel = u->cfg->upload.parallel;
	uint32_t free_slots = u->puts < parallel ? parallel - u->puts : 0;
	int64_t soon = 0;

	if (u->url_ttl_ms > 0 && u->part_ms > 0)
		soon = (int64_t)parallel * u->url_ttl_ms / u->part_ms;
	else if (u->url_ttl_ms > 0)
		soon = parallel;
	if (soon > 4 * (int64_t)parallel)
		soon = 4 * (int64_t)parallel;
	return free_slots + (uint32_t)soon;
}

static void on_part_urls(struct hs_http_response *resp, void *arg)
{
	struct transfer *t = arg;
	struct hs_presigned *urls = NULL;
	uint32_t asked[HS_PARTS_PER_PRESIGN];
	size_t n = 0;
	char why[512], *cause = NULL;
	enum hs_verdict v;

	t->presign_call = NULL;
	for (uint32_t i = 0; i < t->session.part_count && n < HS_PARTS_PER_PRESIGN; i++)
		if (t->parts[i].state == P_PRESIGNING)
			asked[n++] = i + 1;
	v = judge(t, resp, HS_DIALECT_API, why, sizeof(why));
	if (v == HS_V_OK && hs_api_parse_part_urls(resp->body, asked, n, &urls, &cause) != 0) {
		snprintf(why, sizeof(why), "%s", cause ? cause : "out of memory");
		free(cause);
		v = HS_V_RETRY;
	}
	if (v != HS_V_OK) {
		for (size_t k = 0; k < n; k++)
			t->parts[asked[k] - 1].state = P_TODO;
		if (v == HS_V_SESSION)
			session_restart(t, resp->status, why);
		else if (v == HS_V_URL)
			step_retry(t, resp->status, why);
		else
			handle_common(t, v, resp->status, why);
		return;
	}
	for (size_t k = 0; k < n; k++) {
		struct part *p = &t->parts[asked[k] - 1];
		p->url = urls[k];
		learn_url_ttl(t->u, resp, p->url.expires_ms);
		p->url.expires_ms = local_expiry(resp, p->url.expires_ms);
		p->state = P_READY;
	}
	free(urls);
	for (size_t k = 0; k < n; k++) {
		struct part *p = &t->parts[asked[k] - 1];
		if (!url_stale(t->u, &p->url))
			continue;
		/* Expired before it arrived: the server's (or the way's)
		 * fault, bounded like a 403. */
		hs_presigned_clear(&p->url);
		p->state = P_TODO;
		if (++p->refreshes > URL_REFRESHES) {
			job_fail(t, false, resp->status,
				 "part %u: presigned URLs expire before they arrive", p->index + 1);
			return;
		}
		count_retry(t, HS_RETRY_URL_EXPIRED);
	}
	t->tries = 0;
	up_kick(t->u);
}

/* Asks for the part URLs the slots will use soon. May end t. */
void presign_parts(struct transfer *t)
{
	uint32_t numbers[HS_PARTS_PER_PRESIGN], ready = 0, want;
	size_t n = 0;
	char url[4096], *cause = NULL, *body;

	if (t->ended || t->step != S_PARTS || t->presign_call || t->u->stopping || t->u->held ||
	    now_ms() < t->backoff_until)
		return;
	for (uint32_t i = 0; i < t->session.part_count; i++)
		if (t->parts[i].state == P_READY)
			ready++;
	want = urls_wanted(t);
	/* In batches: wait while at least half the wanted URLs are ready. */
	if (ready >= want || (ready > 0 && 2 * ready >= want))
		return;
	for (uint32_t i = 0; i < t->session.part_count && ready + n < want; i++) {
		if (t->parts[i].state == P_TODO && n < HS_PARTS_PER_PRESIGN)
			numbers[n++] = i + 1;
	}
	if (n == 0)
		return;
	for (size_t k = 0; k < n; k++)
		t->parts[numbers[k] - 1].state = P_PRESIGNING;
	body = hs_api_parts_body(numbers, n);
	struct hs_http_request req = api_request(t, "POST", url, sizeof(url), "/uploads/multipart/",
						 t->session.upload_id, "/parts");
	req.json_body = body;
	t->presign_call = body ? hs_http_send(t->u->http, &req, on_part_urls, t, &cause) : NULL;
	free(body);
	if (!t->presign_call) {
		for (size_t k = 0; k < n; k++)
			t->parts[numbers[k] - 1].state = P_TODO;
		step_retry(t, -1, cause ? cause : "out of memory");
		free(cause);
	}
}

/* ---- part PUTs --------------------------------------------------------------- */

/* A part's transient failure: again after a backoff, or the job fails
 * once the part has failed STEP_TRIES times. May end t. */
static void part_retry(struct transfer *t, struct part *p, long status, const char *why)
{
	enum hs_retry_cause cause = hs_retry_cause_of(status, t->stalled);
	char msg[600];

	snprintf(msg, sizeof(msg), "part %u: %s", p->index + 1, why);
	if ((status == 0 || status >= 500) && up_api_failed(t, false, msg)) {
		count_retry(t, cause);
		return;
	}
	if (++p->tries >= STEP_TRIES) {
		if (!last_attempt(t))
			count_retry(t, cause);
		job_fail(t, false, status, "%s", msg);
		return;
	}
	count_retry(t, cause);
	log_job(LOG_DEBUG, t, status, NULL, "%s; retrying", msg);
	p->state = P_WAIT;
	p->retry_at =
	    now_ms() + (int64_t)hs_backoff_delay(&hs_step_backoff, p->tries, hs_random64());
	run_step(t); /* arms the timer for the earliest waiting part */
}

static void part_done(struct transfer *t, struct part *p, const char *etag)
{
	struct hs_uploader *u = t->u;
	struct hs_part done = {.number = p->index + 1, .size = p->size};
	char *cause = NULL;
	int64_t took = now_ms() - p->sent_at;

	if (took > 0)
		u->part_ms = u->part_ms ? (3 * u->part_ms + took) / 4 : took;
	snprintf(done.etag, sizeof(done.etag), "%s", etag);
	snprintf(p->etag, sizeof(p->etag), "%s", etag);
	p->state = P_DONE;
	p->tries = 0;
	t->n_done++;
	t->done_bytes += p->size;
	/* Committed as it lands: a crash from here on does not send this
	 * part again. The last one is synced, with all before it, before
	 * the complete goes out. */
	if (hs_queue_mp_part_done(u->q, t->job->id, t->job->lease_token, &done,
				  t->n_done == t->session.part_count, &cause) < 0)
		queue_error(t, "cannot record a finished part", cause);
	if (t->n_done < t->session.part_count)
		return;
	if (!file_unchanged(t)) {
		restart_changed(t, "the file changed after it was read");
		return;
	}
	t->tries = 0;
	t->step = S_MP_COMPLETE;
	run_step(t);
}

static void on_part_put(struct hs_http_response *resp, void *arg)
{
	struct part *p = arg;
	struct transfer *t = p->t;
	char why[512];
	enum hs_verdict v;

	p->call = NULL;
	p->state = P_TODO; /* no longer sending, whatever comes next */
	t->u->puts--;
	up_kick(t->u);		     /* a slot is free */
	hs_presigned_clear(&p->url); /* single-use, whatever happened */
	v = judge(t, resp, HS_DIALECT_STORAGE, why, sizeof(why));
	if (v == HS_V_OK && !resp->etag[0]) {
		snprintf(why, sizeof(why), "storage answered part %u without an ETag",
			 p->index + 1);
		v = HS_V_RETRY;
	}
	if (v == HS_V_URL && ++p->refreshes > URL_REFRESHES)
		v = HS_V_RETRY;

	switch (v) {
	case HS_V_OK:
		part_done(t, p, resp->etag);
		return;
	case HS_V_URL:
		count_retry(t, HS_RETRY_URL_EXPIRED);
		return; /* P_TODO: a fresh URL comes with the next batch */
	case HS_V_RETRY:
		part_retry(t, p, resp->status, why);
		return;
	case HS_V_SESSION:
		session_restart(t, resp->status, why);
		return;
	default:
		handle_common(t, v, resp->status, why);
		return;
	}
}

/* Sends part p (P_READY) if its URL is still good; a URL that expired
 * while waiting for a slot goes back in line uncounted (it was nobody's
 * fault), bounded by a guard. May end t. */
void send_part(struct transfer *t, struct part *p)
{
	const char *headers[40];
	unsigned char be[4] = {p->crc >> 24, p->crc >> 16, p->crc >> 8, p->crc};
	char crc_header[64] = "x-checksum-crc32: ";
	size_t n = 0, off = strlen(crc_header);
	char *cause = NULL;

	if (t->ended)
		return;
	if (url_stale(t->u, &p->url)) {
		hs_presigned_clear(&p->url);
		p->state = P_TODO;
		if (++t->stale_urls > 100 + t->session.part_count)
			job_fail(t, false, 0,
				 "part %u: presigned URLs expire before a slot is free",
				 p->index + 1);
		else
			count_retry(t, HS_RETRY_URL_EXPIRED);
		return;
	}
	EVP_EncodeBlock((unsigned char *)crc_header + off, be, sizeof(be));
	for (char **h = p->url.headers; h && *h && n < 38; h++)
		headers[n++] = *h;
	headers[n++] = crc_header;
	headers[n] = NULL;
	struct hs_http_request req = {.realm = "upload",
				      .ca_file = t->u->cfg->upload.api.ca_file,
				      .proxy = t->u->cfg->upload.api.proxy,
				      .rl_class = HS_RL_STORAGE,
				      .method = "PUT",
				      .url = p->url.url,
				      .headers = headers,
				      .body_fd = t->fd,
				      .body_offset = part_offset(t, p->index),
				      .body_length = p->size};
	p->call = hs_http_send(t->u->http, &req, on_part_put, p, &cause);
	if (!p->call) {
		/* A URL curl cannot use (or no memory): a failed try of the
		 * part, with the same bound as any other, never a loop. */
		hs_presigned_clear(&p->url);
		part_retry(t, p, -1, cause ? cause : "out of memory");
		free(cause);
		return;
	}
	p->state = P_SENDING;
	p->sent_at = now_ms();
	t->u->puts++;
}

/* Waiting parts whose time has come go back in line; the timer is armed
 * for the next one, or for the end of a backoff on part URLs. */
void wake_parts(struct transfer *t)
{
	int64_t now = now_ms(), next = 0;

	for (uint32_t i = 0; t->parts && i < t->session.part_count; i++) {
		struct part *p = &t->parts[i];
		if (p->state != P_WAIT)
			continue;
		if (p->retry_at <= now)
			p->state = P_TODO;
		else if (!next || p->retry_at < next)
			next = p->retry_at;
	}
	if (t->backoff_until > now && (!next || t->backoff_until < next))
		next = t->backoff_until;
	if (next)
		arm_timer(t, next - now);
}

/* ---- the session ------------------------------------------------------------- */

static void on_create(struct hs_http_response *resp, void *arg)
{
	struct transfer *t = arg;
	char why[512], *cause = NULL;
	enum hs_verdict v;
	int rc;

	t->call = NULL;
	v = judge(t, resp, HS_DIALECT_API, why, sizeof(why));
	if (v == HS_V_URL || v == HS_V_SESSION)
		v = HS_V_RETRY;
	if (handle_common(t, v, resp->status, why))
		return;
	if (hs_api_parse_session(resp->body, t->st.st_size, &t->session, &cause) != 0) {
		step_retry(t, resp->status, cause ? cause : "out of memory");
		free(cause);
		return;
	}
	rc = hs_queue_mp_begin(t->u->q, t->job->id, t->job->lease_token, t->session.upload_id,
			       t->session.part_size, t->session.part_count, true, &cause);
	if (rc != HS_Q_OK) {
		if (rc == HS_Q_LOST)
			log_job(LOG_WARNING, t, 0, NULL, "lease lost; leaving the job");
		else
			queue_error(t, "cannot record the multipart session", cause);
		transfer_end(t);
		return;
	}
	free(t->job->upload_id);
	if (!(t->job->upload_id = strdup(t->session.upload_id))) {
		job_release(t, RESTART_DELAY_MS);
		return;
	}
	log_job(LOG_DEBUG, t, resp->status, NULL, "multipart session of %" PRIu32 " parts",
		t->session.part_count);
	setup_parts(t);
	parts_ready(t);
}

void send_create(struct transfer *t)
{
	int64_t part_size =
	    hs_api_part_size_for(t->st.st_size, (int64_t)t->u->cfg->upload.part_size);
	char *body = hs_api_create_body(t->job->remote_name, t->st.st_size, t->sha,
					hs_content_type(t->job->remote_name), part_size);

	api_call(t, "POST", "/uploads/multipart", "", "", body, on_create, 0);
	free(body);
}

/* Resuming: what does the storage already hold? */
static void on_list(struct hs_http_response *resp, void *arg)
{
	struct transfer *t = arg;
	struct hs_part *held = NULL;
	size_t n = 0;
	char why[512], *cause = NULL;
	enum hs_verdict v;

	t->call = NULL;
	v = judge(t, resp, HS_DIALECT_API, why, sizeof(why));
	if (v == HS_V_SESSION || v == HS_V_URL) {
		if (!complete_from_records(t))
			session_restart(t, resp->status, why);
		return;
	}
	if (handle_common(t, v, resp->status, why))
		return;
	if (hs_api_parse_part_list(resp->body, t->session.part_count, &held, &n, &cause) != 0) {
		step_retry(t, resp->status, cause ? cause : "out of memory");
		free(cause);
		return;
	}
	setup_parts(t);
	for (size_t k = 0; t->parts && k < n; k++) {
		struct part *p = &t->parts[held[k].number - 1];
		/* A part of the wrong size is not ours to keep. */
		if (held[k].size != p->size)
			continue;
		p->state = P_DONE;
		snprintf(p->etag, sizeof(p->etag), "%s", held[k].etag);
		t->n_done++;
		t->done_bytes += p->size;
		if (hs_queue_mp_part_done(t->u->q, t->job->id, t->job->lease_token, &held[k],
					  k + 1 == n, &cause) < 0)
			queue_error(t, "cannot record a held part", cause);
	}
	free(held);
	if (t->parts)
		log_job(LOG_INFO, t, 0, NULL, "resuming: %" PRIu32 " of %" PRIu32 " parts held",
			t->n_done, t->session.part_count);
	if (t->parts && t->n_done == t->session.part_count) {
		t->step = S_MP_COMPLETE;
		run_step(t);
		return;
	}
	parts_ready(t);
}

void send_list(struct transfer *t)
{
	/* 10,000 parts with long ETags do not fit the default 1 MiB. */
	api_call(t, "GET", "/uploads/multipart/", t->session.upload_id, "/parts", NULL, on_list,
		 HS_PART_LIST_MAX_RESPONSE);
}

void send_mp_complete(struct transfer *t)
{
	struct hs_part *list = calloc(t->session.part_count, sizeof(*list));
	char *body = NULL;

	for (uint32_t i = 0; list && t->parts && i < t->session.part_count; i++) {
		list[i].number = i + 1;
		snprintf(list[i].etag, sizeof(list[i].etag), "%s", t->parts[i].etag);
	}
	body = list && t->parts ? hs_api_complete_body(list, t->session.part_count) : NULL;
	free(list);
	api_call(t, "POST", "/uploads/multipart/", t->session.upload_id, "/complete", body,
		 on_complete, 0);
	free(body);
}

/* The storage forgot the session; if every part was recorded here, it may
 * have been completed just before a crash: complete again (the server
 * answers a repeated complete as the first) before starting over. Returns
 * whether it did (t may have ended). */
bool complete_from_records(struct transfer *t)
{
	struct hs_part *held = NULL;
	size_t n = 0;
	char *cause = NULL;

	if (t->session_restarts > 0 ||
	    hs_queue_mp_parts(t->u->q, t->job->id, &held, &n, &cause) < 0 ||
	    n != t->session.part_count) {
		free(cause);
		free(held);
		return false;
	}
	setup_parts(t);
	if (!t->parts) {
		free(held);
		return false;
	}
	for (size_t k = 0; k < n; k++) {
		struct part *p = &t->parts[held[k].number - 1];
		p->state = P_DONE;
		snprintf(p->etag, sizeof(p->etag), "%s", held[k].etag);
	}
	t->n_done = t->session.part_count;
	t->done_bytes = t->st.st_size;
	free(held);
	t->session_restarts++;
	t->step = S_MP_COMPLETE;
	run_step(t);
	return true;
}
