/*
 * upload_single: small files in one PUT: presign -> PUT -> complete.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/log.h"
#include "agent/transfer.h"

/* URLs that went stale while waiting for a slot, in one claim, before
 * that counts as a failure: a guard, never reached while slots move. */
#define STALE_URLS 100

void send_complete_single(struct transfer *t)
{
	api_call(t, "POST", "/uploads/", t->single.upload_id, "/complete", "{}", on_complete, 0);
}

/* A fresh URL for the PUT; counted refreshes are bounded, so storage that
 * refuses every URL costs the file an attempt rather than looping. May
 * end t. */
static void fresh_url(struct transfer *t, bool counted, long status, const char *why)
{
	hs_presigned_clear(&t->single);
	if (counted && ++t->refreshes > URL_REFRESHES) {
		job_fail(t, false, status, "%s (after %u fresh URLs)", why, t->refreshes - 1);
		return;
	}
	if (!counted && ++t->stale_urls > STALE_URLS) {
		job_fail(t, false, status, "%s", why);
		return;
	}
	count_retry(t, HS_RETRY_URL_EXPIRED);
	log_job(LOG_DEBUG, t, status, NULL, "%s; asking for a fresh URL", why);
	t->step = S_PRESIGN;
	run_step(t);
}

static void on_put(struct hs_http_response *resp, void *arg)
{
	struct transfer *t = arg;
	struct hs_uploader *u = t->u;
	char why[512], *cause = NULL;
	enum hs_verdict v;

	t->call = NULL;
	t->put_inflight = false;
	u->puts--;
	up_kick(u); /* a slot is free, whatever comes next */
	v = judge(t, resp, HS_DIALECT_STORAGE, why, sizeof(why));
	switch (v) {
	case HS_V_URL:
		fresh_url(t, true, resp->status, why);
		return;
	case HS_V_SESSION:
		session_restart(t, resp->status, why);
		return;
	case HS_V_OK:
		break;
	default:
		handle_common(t, v, resp->status, why);
		return;
	}
	struct hs_part put = {.number = 1, .size = t->st.st_size};
	snprintf(put.etag, sizeof(put.etag), "%s", resp->etag);
	if (hs_queue_mp_part_done(u->q, t->job->id, t->job->lease_token, &put, true, &cause) < 0)
		queue_error(t, "cannot record the finished PUT", cause);
	t->done_bytes = t->st.st_size;
	t->tries = 0;
	if (!file_unchanged(t)) {
		restart_changed(t, "the file changed after it was read");
		return;
	}
	t->step = S_COMPLETE;
	run_step(t);
}

/* Called by the uploader when a slot is free. May end t. */
void send_put_single(struct transfer *t)
{
	char *cause = NULL;
	struct hs_http_request req = {.realm = "upload",
				      .ca_file = t->u->cfg->upload.api.ca_file,
				      .proxy = t->u->cfg->upload.api.proxy,
				      .rl_class = HS_RL_STORAGE,
				      .method = "PUT",
				      .url = t->single.url,
				      .headers = (const char *const *)t->single.headers,
				      .body_fd = t->fd,
				      .body_offset = 0,
				      .body_length = t->st.st_size};

	if (t->ended)
		return;
	t->want_slot = false;
	if (url_stale(t->u, &t->single)) {
		/* It expired while waiting for a slot: not the server's
		 * fault, and the fresh one comes when a slot is free. */
		fresh_url(t, false, 0, "presigned URL expired while waiting for a slot");
		return;
	}
	t->call = hs_http_send(t->u->http, &req, on_put, t, &cause);
	if (!t->call) {
		/* A URL curl cannot use: a failed try of the step. */
		hs_presigned_clear(&t->single);
		t->step = S_PRESIGN;
		step_retry(t, -1, cause ? cause : "out of memory");
		free(cause);
		return;
	}
	t->put_inflight = true;
	t->u->puts++;
}

static void on_presign(struct hs_http_response *resp, void *arg)
{
	struct transfer *t = arg;
	char why[512], *cause = NULL;
	enum hs_verdict v;

	t->call = NULL;
	v = judge(t, resp, HS_DIALECT_API, why, sizeof(why));
	if (v == HS_V_URL || v == HS_V_SESSION)
		v = HS_V_RETRY;
	if (handle_common(t, v, resp->status, why))
		return;
	if (hs_api_parse_presigned(resp->body, &t->single, &cause) != 0) {
		step_retry(t, resp->status, cause ? cause : "out of memory");
		free(cause);
		return;
	}
	learn_url_ttl(t->u, resp, t->single.expires_ms);
	t->single.expires_ms = local_expiry(resp, t->single.expires_ms);
	if (url_stale(t->u, &t->single)) {
		/* Expired before it arrived: the server's (or the way's)
		 * fault, bounded like a 403. */
		fresh_url(t, true, resp->status, "presigned URL expired before it arrived");
		return;
	}
	/* Recorded as a session of one part, so that a restart after the PUT
	 * completes this upload instead of sending the file again. Unsynced:
	 * the PUT's record, synced, carries it to the disk before the upload
	 * is completed; a power failure before that costs a PUT sent again,
	 * to a session never completed. */
	if (hs_queue_mp_begin(t->u->q, t->job->id, t->job->lease_token, t->single.upload_id,
			      t->st.st_size > 0 ? t->st.st_size : 1, 1, false, &cause) < 0)
		queue_error(t, "cannot record the upload session", cause);
	free(t->job->upload_id);
	t->job->upload_id = strdup(t->single.upload_id);
	t->tries = 0;
	t->step = S_PUT;
	t->want_slot = true;
	up_kick(t->u);
}

void send_presign(struct transfer *t)
{
	char *body = hs_api_presign_body(t->job->remote_name, t->st.st_size, t->sha,
					 hs_content_type(t->job->remote_name));

	api_call(t, "POST", "/uploads", "", "", body, on_presign, 0);
	free(body);
}

/* Whether the queue holds the finished PUT of a single upload. */
bool single_was_sent(const struct transfer *t)
{
	struct hs_part *parts = NULL;
	size_t n = 0;
	char *cause = NULL;

	if (hs_queue_mp_parts(t->u->q, t->job->id, &parts, &n, &cause) < 0) {
		free(cause);
		return false;
	}
	free(parts);
	return n == 1;
}
