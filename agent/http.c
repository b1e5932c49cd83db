/*
 * http: curl's multi-socket API on sd-event, plus the rate-limit line and
 * the bandwidth pause (see http.h).
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "agent/cause.h"
#include "agent/clock.h"
#include "agent/http.h"
#include "queue/backoff.h"

struct limiter {
	struct limiter *next;
	struct hs_http *h;
	char *realm;
	char *host;
	struct hs_ratelimit rl;
	sd_event_source *timer; /* a call may go at a time the limiter said */
	sd_event_source *kick;	/* a call was added: look at the line now */
	struct hs_http_call *wait_head, *wait_tail;
	unsigned n_calls; /* calls of the client that use it */
};

struct hs_http_call {
	struct hs_http *h;
	struct hs_http_call *prev, *next; /* every call of the client */
	struct hs_http_call *wait_next;	  /* in the limiter's line */
	struct hs_http_call *pause_next;  /* among transfers paused for tokens */
	CURL *easy;
	struct curl_slist *headers;
	char *json_body;
	hs_http_done_fn done;
	void *arg;

	struct limiter *lim;
	enum hs_ratelimit_class cls;
	uint64_t seq;
	bool waiting, running, paused;

	int fd;
	int64_t body_offset, offset, remaining, sent;
	bool body_changed;

	struct hs_ratelimit_headers rlh;
	char retry_after[64]; /* the header's value; "" when none */
	int64_t date_ms, date_seen_ms;
	char etag[128];
	char *body;
	size_t body_len, body_cap, max_body;
	bool too_large;
	char error[CURL_ERROR_SIZE];
	char *proxy; /* the proxy this call goes through; NULL: none set here */
};

struct hs_http {
	sd_event *ev;
	CURLM *multi;
	sd_event_source *curl_timer;
	sd_event_source *curl_now; /* curl's timeout 0 */
	sd_event_source *bw_timer;
	struct hs_bucket *bucket;
	char *ca_file;
	char *proxy;
	long connect_timeout_s;
	long stall_timeout_s;
	int64_t reloaded_ms; /* hs_http_reloaded(); 0: never */
	struct limiter *limiters;
	struct hs_http_call *calls;
	struct hs_http_call *paused;
	unsigned n_waiting, n_running;
	uint64_t bytes_sent;
};

static void check_done(struct hs_http *h);
static void limiter_pump(struct limiter *lim);
static void limiter_free_if_idle(struct limiter *lim);

/* ---- curl's sockets and timer on the loop ---------------------------- */

static int on_socket_ready(sd_event_source *s, int fd, uint32_t revents, void *arg)
{
	struct hs_http *h = arg;
	int flags = 0, running;

	if (revents & EPOLLIN)
		flags |= CURL_CSELECT_IN;
	if (revents & EPOLLOUT)
		flags |= CURL_CSELECT_OUT;
	if (revents & (EPOLLERR | EPOLLHUP))
		flags |= CURL_CSELECT_ERR;
	curl_multi_socket_action(h->multi, fd, flags, &running);
	check_done(h);
	return 0;
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *arg, void *sockp)
{
	struct hs_http *h = arg;
	sd_event_source *src = sockp;
	uint32_t events = 0;

	if (what == CURL_POLL_REMOVE) {
		if (src)
			sd_event_source_disable_unref(src);
		curl_multi_assign(h->multi, fd, NULL);
		return 0;
	}
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		events |= EPOLLIN;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		events |= EPOLLOUT;
	if (src)
		return sd_event_source_set_io_events(src, events) < 0 ? -1 : 0;
	if (sd_event_add_io(h->ev, &src, fd, events, on_socket_ready, h) < 0)
		return -1;
	curl_multi_assign(h->multi, fd, src);
	return 0;
}

static int on_curl_timer_fired(sd_event_source *s, uint64_t usec, void *arg)
{
	struct hs_http *h = arg;
	int running;

	curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(h);
	return 0;
}

static int on_curl_now(sd_event_source *s, void *arg)
{
	return on_curl_timer_fired(s, 0, arg);
}

/* curl asks for "now" (0) at least once per request. A timer set to now
 * and then back to the next deadline re-arms the kernel's timerfd twice,
 * and on the VM perf found timerfd_settime the largest single cost of the
 * daemon's system time (11 calls per small file); a defer source runs at
 * the loop's next turn without a system call. A timer left set for later
 * may still fire: curl takes a timeout with nothing due as a no-op. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *arg)
{
	struct hs_http *h = arg;
	uint64_t now;

	if (timeout_ms == 0)
		return sd_event_source_set_enabled(h->curl_now, SD_EVENT_ONESHOT) < 0 ? -1 : 0;
	if (timeout_ms < 0)
		return sd_event_source_set_enabled(h->curl_timer, SD_EVENT_OFF) < 0 ? -1 : 0;
	sd_event_now(h->ev, CLOCK_MONOTONIC, &now);
	if (sd_event_source_set_time(h->curl_timer, now + (uint64_t)timeout_ms * 1000) < 0 ||
	    sd_event_source_set_enabled(h->curl_timer, SD_EVENT_ONESHOT) < 0)
		return -1;
	return 0;
}

/* ---- bandwidth ----------------------------------------------------------- */

static int on_bandwidth_timer(sd_event_source *s, uint64_t usec, void *arg)
{
	struct hs_http *h = arg;
	struct hs_http_call *list = h->paused, *next;

	/* A resumed transfer may pause again at once and rejoin h->paused, so
	 * walk a list of our own. */
	h->paused = NULL;
	for (struct hs_http_call *c = list; c; c = next) {
		next = c->pause_next;
		c->pause_next = NULL;
		c->paused = false;
		curl_easy_pause(c->easy, CURLPAUSE_CONT);
	}
	return 0;
}

static void pause_for_tokens(struct hs_http_call *c, size_t want)
{
	struct hs_http *h = c->h;
	int64_t wait = hs_bucket_wait_us(h->bucket, want, hs_mono_us());
	uint64_t now;

	c->paused = true;
	c->pause_next = h->paused;
	h->paused = c;
	sd_event_now(h->ev, CLOCK_MONOTONIC, &now);
	sd_event_source_set_time(h->bw_timer, now + (uint64_t)(wait > 0 ? wait : 1000));
	sd_event_source_set_enabled(h->bw_timer, SD_EVENT_ONESHOT);
}

void hs_http_bandwidth_changed(struct hs_http *h)
{
	if (h->paused)
		on_bandwidth_timer(NULL, 0, h);
}

/* ---- one transfer's callbacks -------------------------------------------- */

static size_t on_read(char *buf, size_t size, size_t n, void *arg)
{
	struct hs_http_call *c = arg;
	size_t want = size * n;
	ssize_t r;

	if (c->remaining == 0)
		return 0;
	if ((int64_t)want > c->remaining)
		want = (size_t)c->remaining;
	if (c->h->bucket) {
		size_t got = hs_bucket_take(c->h->bucket, want, hs_mono_us());
		if (got == 0) {
			pause_for_tokens(c, want);
			return CURL_READFUNC_PAUSE;
		}
		want = got;
	}
	do
		r = pread(c->fd, buf, want, c->offset);
	while (r < 0 && errno == EINTR);
	if (r <= 0) {
		/* Shorter than it was, or unreadable: never send what is
		 * not the file the checksums describe. */
		c->body_changed = true;
		return CURL_READFUNC_ABORT;
	}
	c->offset += r;
	c->remaining -= r;
	c->sent += r;
	c->h->bytes_sent += (uint64_t)r;
	return (size_t)r;
}

static int on_seek(void *arg, curl_off_t off, int origin)
{
	struct hs_http_call *c = arg;
	int64_t length = c->offset - c->body_offset + c->remaining;

	if (origin != SEEK_SET || off < 0 || off > length)
		return CURL_SEEKFUNC_CANTSEEK;
	c->offset = c->body_offset + off;
	c->remaining = length - off;
	return CURL_SEEKFUNC_OK;
}

static size_t on_write(char *data, size_t size, size_t n, void *arg)
{
	struct hs_http_call *c = arg;
	size_t len = size * n;

	if (c->body_len + len > c->max_body) {
		c->too_large = true;
		return 0;
	}
	if (c->body_len + len + 1 > c->body_cap) {
		size_t cap = c->body_cap ? c->body_cap : 4096;
		while (cap < c->body_len + len + 1)
			cap *= 2;
		char *p = realloc(c->body, cap);
		if (!p)
			return 0;
		c->body = p;
		c->body_cap = cap;
	}
	memcpy(c->body + c->body_len, data, len);
	c->body_len += len;
	c->body[c->body_len] = '\0';
	return len;
}

/* The value of header line "Name: value\r\n" if its name is name. */
static bool header_value(const char *line, size_t len, const char *name, char *out, size_t outlen)
{
	size_t nlen = strlen(name), vlen;
	const char *v, *end = line + len;

	if (len <= nlen || strncasecmp(line, name, nlen) != 0 || line[nlen] != ':')
		return false;
	for (v = line + nlen + 1; v < end && (*v == ' ' || *v == '\t'); v++)
		;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	vlen = (size_t)(end - v);
	if (vlen >= outlen)
		return false;
	memcpy(out, v, vlen);
	out[vlen] = '\0';
	return true;
}

static size_t on_header(char *line, size_t size, size_t n, void *arg)
{
	struct hs_http_call *c = arg;
	size_t len = size * n;
	char value[256];

	/* A new status line (after "100 Continue") starts a new response. */
	if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
		memset(&c->rlh, 0, sizeof(c->rlh));
		c->retry_after[0] = '\0';
		c->date_ms = -1;
		c->etag[0] = '\0';
		return len;
	}
	if (hs_ratelimit_parse_header(&c->rlh, line, len))
		return len;
	/* Retry-After is read in finish(), against the Date (which may come
	 * after it); a value too long for the buffer is no valid one. */
	if (header_value(line, len, "Retry-After", c->retry_after, sizeof(c->retry_after)))
		return len;
	if (header_value(line, len, "Date", value, sizeof(value))) {
		/* The server's clock, as of when its headers reached ours. */
		c->date_ms = hs_http_date_parse(value);
		c->date_seen_ms = hs_wall_ms();
	} else {
		header_value(line, len, "ETag", c->etag, sizeof(c->etag));
	}
	return len;
}

/* ---- calls ------------------------------------------------------------------ */

static void call_free(struct hs_http_call *c)
{
	struct hs_http *h = c->h;

	if (c->running) {
		curl_multi_remove_handle(h->multi, c->easy);
		h->n_running--;
	}
	if (c->lim)
		c->lim->n_calls--;
	if (c->waiting) {
		struct hs_http_call **pp = &c->lim->wait_head, *prev = NULL;
		while (*pp != c) {
			prev = *pp;
			pp = &(*pp)->wait_next;
		}
		*pp = c->wait_next;
		if (c->lim->wait_tail == c)
			c->lim->wait_tail = prev;
		h->n_waiting--;
	}
	if (c->paused) {
		struct hs_http_call **pp = &h->paused;
		while (*pp != c)
			pp = &(*pp)->pause_next;
		*pp = c->pause_next;
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		h->calls = c->next;
	if (c->next)
		c->next->prev = c->prev;
	curl_easy_cleanup(c->easy);
	curl_slist_free_all(c->headers);
	free(c->proxy);
	free(c->json_body);
	free(c->body);
	free(c);
}

static void finish(struct hs_http_call *c, CURLcode result);

/* Always called from the loop (the limiter's timer), so a transfer that
 * cannot start is reported like any other failure. */
static void call_start(struct hs_http_call *c)
{
	if (curl_multi_add_handle(c->h->multi, c->easy) != CURLM_OK) {
		snprintf(c->error, sizeof(c->error), "cannot start the transfer");
		finish(c, CURLE_FAILED_INIT);
		return;
	}
	c->running = true;
	c->h->n_running++;
}

/* "host:port" of a proxy setting, without scheme or credentials, for a
 * log line; "?" when it cannot be read. Caller frees. */
static char *proxy_host(const char *proxy)
{
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL, *out = NULL;

	if (u && curl_url_set(u, CURLUPART_URL, proxy, CURLU_GUESS_SCHEME) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
		int n = curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK
			    ? asprintf(&out, "%s:%s", host, port)
			    : asprintf(&out, "%s", host);
		if (n < 0)
			out = NULL;
	}
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return out ? out : strdup("?");
}

/* A failed transfer's error line and kind. TLS and proxy refusals name
 * the host (or proxy) that refused and why: they are a matter of
 * configuration (ca_file, proxy) or of the server's certificate, which
 * an operator must be able to see in one line. */
static void refusal(struct hs_http_call *c, CURLcode result, struct hs_http_response *resp)
{
	const char *text = c->error[0] ? c->error : curl_easy_strerror(result);
	const char *host = c->lim ? c->lim->host : "?";
	long connect_code = 0;
	char *via = NULL;

	curl_easy_getinfo(c->easy, CURLINFO_HTTP_CONNECTCODE, &connect_code);
	switch (result) {
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_CONNECT_ERROR:
		resp->refused = HS_REFUSED_TLS;
		snprintf(resp->error, sizeof(resp->error), "TLS with %.60s refused: %.170s", host,
			 text);
		return;
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_OPERATION_TIMEDOUT:
		/* Only when the proxy, not the server, is the one at fault:
		 * it could not be reached, or it answered the CONNECT with
		 * 3xx or 4xx (407: credentials wanted or wrong). */
		if (!c->proxy || (result != CURLE_COULDNT_RESOLVE_PROXY &&
				  !(connect_code >= 300 ||
				    (result == CURLE_COULDNT_CONNECT && connect_code == 0))))
			break;
		via = proxy_host(c->proxy);
		if (connect_code >= 500) {
			/* The proxy works but could not reach the server: an
			 * outage like any other, retried as one. */
			snprintf(resp->error, sizeof(resp->error),
				 "proxy %.60s could not reach %.60s (HTTP %ld)", via, host,
				 connect_code);
			free(via);
			return;
		}
		resp->refused = HS_REFUSED_PROXY;
		if (connect_code >= 300)
			snprintf(resp->error, sizeof(resp->error),
				 "proxy %.60s refused the tunnel to %.60s (HTTP %ld)", via, host,
				 connect_code);
		else
			snprintf(resp->error, sizeof(resp->error), "proxy %.60s for %.60s: %.120s",
				 via, host, text);
		free(via);
		return;
	default:
		break;
	}
	snprintf(resp->error, sizeof(resp->error), "%s", text);
}

static void finish(struct hs_http_call *c, CURLcode result)
{
	struct hs_http_response resp = {.result = result,
					.retry_after = -1,
					.date_ms = c->date_ms,
					.date_seen_ms = c->date_seen_ms};
	struct hs_ratelimit *rl = c->lim ? &c->lim->rl : NULL;
	int64_t now = hs_wall_ms();

	/* The answer's time of receipt, and the server's clock then: a
	 * Retry-After date is a delay from the server's Date (SPEC 1). */
	if (c->date_ms >= 0)
		now = c->date_seen_ms;
	else
		resp.date_seen_ms = now;
	if (c->retry_after[0])
		resp.retry_after =
		    hs_retry_after_parse(c->retry_after, c->date_ms >= 0 ? c->date_ms : now);

	curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &resp.status);
	if (c->too_large) {
		resp.result = CURLE_WRITE_ERROR;
		snprintf(resp.error, sizeof(resp.error), "response body larger than %zu bytes",
			 c->max_body);
	} else if (c->body_changed) {
		snprintf(resp.error, sizeof(resp.error),
			 "file changed or unreadable while sending");
	} else if (result != CURLE_OK) {
		refusal(c, result, &resp);
	}
	resp.body_changed = c->body_changed;
	if (result == CURLE_OPERATION_TIMEDOUT) {
		/* Connected, then timed out: only the low-speed limit ends a
		 * transfer that way (there is no overall timeout). */
		curl_off_t connected = 0;
		resp.stalled =
		    curl_easy_getinfo(c->easy, CURLINFO_CONNECT_TIME_T, &connected) == CURLE_OK &&
		    connected > 0;
	}
	if (resp.result == CURLE_OK) {
		resp.body = c->body;
		resp.body_len = c->body_len;
		c->body = NULL;
		snprintf(resp.etag, sizeof(resp.etag), "%s", c->etag);
	}
	if (rl) {
		struct hs_ratelimit_answer answer = {.h = &c->rlh, .date_ms = c->date_ms};
		/* Only an HTTP answer teaches anything; a failed transfer just
		 * leaves the flight. */
		hs_ratelimit_observe(rl, c->seq, c->cls, now, resp.status > 0 ? &answer : NULL);
		if (resp.status == 429)
			rl->throttled++;
		if (resp.status == 429 || resp.status == 503)
			hs_ratelimit_block(rl, now,
					   resp.retry_after >= 0 ? resp.retry_after
								 : HS_RETRY_AFTER_MIN_MS,
					   hs_random64());
	}

	hs_http_done_fn done = c->done;
	void *arg = c->arg;
	struct limiter *lim = c->lim;
	call_free(c);
	if (lim)
		lim->n_calls++; /* not freed while done() sends more */
	done(&resp, arg);
	if (lim)
		lim->n_calls--;
	free(resp.body);
	/* A block may have ended the line's wait, or started one. */
	if (lim) {
		limiter_pump(lim);
		limiter_free_if_idle(lim);
	}
}

static void check_done(struct hs_http *h)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(h->multi, &left))) {
		struct hs_http_call *c;
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
		finish(c, msg->data.result);
	}
}

/* ---- the rate-limit line -------------------------------------------------- */

static int on_limiter_timer(sd_event_source *s, uint64_t usec, void *arg)
{
	limiter_pump(arg);
	return 0;
}

static int on_limiter_kick(sd_event_source *s, void *arg)
{
	limiter_pump(arg);
	return 0;
}

/* Starts the calls the limiter lets go, in order within each class; a
 * class held back does not hold the other. A call that cannot start
 * finishes at once, and its callback may send or cancel calls: so the line
 * is scanned anew from its head after each start, with the limiter pinned. */
static void limiter_pump(struct limiter *lim)
{
	struct hs_http *h = lim->h;
	bool held[HS_RL_NCLASSES] = {false};
	int64_t wake = 0;

	lim->n_calls++;
	for (;;) {
		struct hs_http_call *c, *prev = NULL;
		uint64_t seq;
		int64_t at = 0;

		for (c = lim->wait_head; c && held[c->cls]; c = c->wait_next)
			prev = c;
		if (!c)
			break;
		at = hs_ratelimit_reserve(&lim->rl, c->cls, hs_wall_ms(), hs_random64(),
					  lim->wait_head != lim->wait_tail, &seq);
		if (at != 0) {
			if (wake == 0 || at < wake)
				wake = at;
			held[c->cls] = true;
			continue;
		}
		if (prev)
			prev->wait_next = c->wait_next;
		else
			lim->wait_head = c->wait_next;
		if (lim->wait_tail == c)
			lim->wait_tail = prev;
		c->wait_next = NULL;
		c->waiting = false;
		h->n_waiting--;
		c->seq = seq;
		call_start(c);
	}
	if (wake != 0) {
		sd_event_source_set_time(lim->timer, (uint64_t)wake * 1000);
		sd_event_source_set_enabled(lim->timer, SD_EVENT_ONESHOT);
	}
	lim->n_calls--;
}

static void limiter_unlink_free(struct limiter *lim)
{
	struct limiter **pp = &lim->h->limiters;

	while (*pp != lim)
		pp = &(*pp)->next;
	*pp = lim->next;
	sd_event_source_disable_unref(lim->timer);
	sd_event_source_disable_unref(lim->kick);
	free(lim->realm);
	free(lim->host);
	free(lim);
}

/* Frees a limiter that holds nothing worth keeping: per-upload storage
 * hosts would otherwise pile up. */
static void limiter_free_if_idle(struct limiter *lim)
{
	if (lim->n_calls == 0 && hs_ratelimit_idle(&lim->rl, hs_wall_ms()))
		limiter_unlink_free(lim);
}

static char *url_host(const char *url)
{
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL, *out = NULL;

	if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK)
		goto out;
	if (asprintf(&out, "%s:%s", host, port) < 0)
		out = NULL;
out:
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return out;
}

/* The limiter for a realm and the host of url, created on first use; idle
 * ones are swept on the way. */
static struct limiter *limiter_get(struct hs_http *h, const char *realm, const char *url)
{
	struct limiter *lim = NULL, *next;
	char *host = url_host(url);

	if (!host)
		return NULL;
	for (lim = h->limiters; lim; lim = next) {
		next = lim->next;
		if (strcmp(lim->realm, realm) == 0 && strcmp(lim->host, host) == 0)
			break;
		limiter_free_if_idle(lim);
	}
	if (lim) {
		free(host);
		return lim;
	}
	lim = calloc(1, sizeof(*lim));
	if (!lim || !(lim->realm = strdup(realm)))
		goto fail;
	if (sd_event_add_time(h->ev, &lim->timer, CLOCK_REALTIME, 0, 1000, on_limiter_timer, lim) <
		0 ||
	    sd_event_source_set_enabled(lim->timer, SD_EVENT_OFF) < 0 ||
	    sd_event_add_defer(h->ev, &lim->kick, on_limiter_kick, lim) < 0 ||
	    sd_event_source_set_enabled(lim->kick, SD_EVENT_OFF) < 0)
		goto fail;
	lim->h = h;
	lim->host = host;
	hs_ratelimit_init(&lim->rl);
	lim->next = h->limiters;
	h->limiters = lim;
	return lim;
fail:
	if (lim) {
		sd_event_source_disable_unref(lim->timer);
		sd_event_source_disable_unref(lim->kick);
		free(lim->realm);
	}
	free(lim);
	free(host);
	return NULL;
}

void hs_http_each_limiter(struct hs_http *h,
			  void (*fn)(const char *realm, const char *host,
				     const struct hs_ratelimit *rl, void *arg),
			  void *arg)
{
	for (struct limiter *lim = h->limiters; lim; lim = lim->next)
		fn(lim->realm, lim->host, &lim->rl, arg);
}

uint64_t hs_http_bytes_sent(const struct hs_http *h)
{
	return h->bytes_sent;
}

unsigned hs_http_waiting(const struct hs_http *h)
{
	return h->n_waiting;
}

unsigned hs_http_running(const struct hs_http *h)
{
	return h->n_running;
}

/* ---- requests ---------------------------------------------------------------- */

static int setup_easy(struct hs_http_call *c, const struct hs_http_request *req, char **cause)
{
	struct hs_http *h = c->h;
	CURL *e = c->easy;
	char *key_header = NULL;
	struct curl_slist *l;

	if (req->api_key) {
		if (asprintf(&key_header,
			     req->bearer ? "Authorization: Bearer %s" : "X-API-Key: %s",
			     req->api_key) < 0)
			return hs_cause(cause, "%s", "out of memory");
		l = curl_slist_append(c->headers, key_header);
		explicit_bzero(key_header, strlen(key_header));
		free(key_header);
		if (!l)
			return hs_cause(cause, "%s", "out of memory");
		c->headers = l;
	}
	for (const char *const *hd = req->headers; hd && *hd; hd++) {
		if (!(l = curl_slist_append(c->headers, *hd)))
			return hs_cause(cause, "%s", "out of memory");
		c->headers = l;
	}
	if (req->json_body) {
		if (!(l = curl_slist_append(c->headers, "Content-Type: application/json")))
			return hs_cause(cause, "%s", "out of memory");
		c->headers = l;
		if (!(c->json_body = strdup(req->json_body)))
			return hs_cause(cause, "%s", "out of memory");
	}
	/* Send only what the APIs document: no "Accept: * / *", and no
	 * "Expect: 100-continue", which costs every part a wait for the
	 * server's go-ahead; the pacing already avoids the refusals it would
	 * catch before the body. */
	static const char *const unsent[] = {"Accept:", "Expect:"};
	for (size_t i = 0; i < sizeof(unsent) / sizeof(unsent[0]); i++) {
		if (!(l = curl_slist_append(c->headers, unsent[i])))
			return hs_cause(cause, "%s", "out of memory");
		c->headers = l;
	}

	curl_easy_setopt(e, CURLOPT_PRIVATE, c);
	curl_easy_setopt(e, CURLOPT_URL, req->url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, PACKAGE_NAME "/" PACKAGE_VERSION);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->error);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, h->connect_timeout_s);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, h->stall_timeout_s);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	if (req->ca_file || h->ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, req->ca_file ? req->ca_file : h->ca_file);
	/* curl keeps a parsed CA store for a day, keyed by the file's name: a
	 * bundle changed in place and reloaded must not be served from it. */
	if (h->reloaded_ms > 0) {
		long age = (long)((hs_wall_ms() - h->reloaded_ms) / 1000);
		curl_easy_setopt(e, CURLOPT_CA_CACHE_TIMEOUT, age > 0 ? age : 0L);
	}
	if (req->proxy || h->proxy) {
		const char *proxy = req->proxy ? req->proxy : h->proxy;
		curl_easy_setopt(e, CURLOPT_PROXY, proxy);
		if (!(c->proxy = strdup(proxy)))
			return hs_cause(cause, "%s", "out of memory");
	}

	if (req->body_fd >= 0) {
		c->fd = req->body_fd;
		c->body_offset = c->offset = req->body_offset;
		c->remaining = req->body_length;
		curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->body_length);
		curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(e, CURLOPT_READDATA, c);
		curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(e, CURLOPT_SEEKDATA, c);
		curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 256L * 1024);
	} else if (c->json_body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->json_body);
	}
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
	if (strcmp(req->method, "GET") == 0)
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	else if (strcmp(req->method, "POST") == 0 && !c->json_body)
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
	return 0;
}

struct hs_http_call *hs_http_send(struct hs_http *h, const struct hs_http_request *req,
				  hs_http_done_fn done, void *arg, char **cause)
{
	struct hs_http_call *c = calloc(1, sizeof(*c));

	if (!c) {
		hs_cause(cause, "%s", "out of memory");
		return NULL;
	}
	c->h = h;
	c->done = done;
	c->arg = arg;
	c->fd = -1;
	c->date_ms = -1;
	c->cls = (unsigned)req->rl_class < HS_RL_NCLASSES ? req->rl_class : HS_RL_API;
	c->max_body = req->max_response ? req->max_response : HS_HTTP_MAX_RESPONSE;
	c->next = h->calls;
	if (h->calls)
		h->calls->prev = c;
	h->calls = c;
	if (!(c->easy = curl_easy_init())) {
		hs_cause(cause, "%s", "cannot create a curl handle");
		goto fail;
	}
	if (setup_easy(c, req, cause) != 0)
		goto fail;

	c->lim = limiter_get(h, req->realm, req->url);
	if (!c->lim) {
		hs_cause(cause, "%s", "bad URL or out of memory");
		goto fail;
	}
	c->lim->n_calls++;
	c->waiting = true;
	h->n_waiting++;
	if (c->lim->wait_tail)
		c->lim->wait_tail->wait_next = c;
	else
		c->lim->wait_head = c;
	c->lim->wait_tail = c;
	/* Started from the loop, never from inside the caller: at its next
	 * turn (a defer source, so no timer is armed and disarmed for it). */
	sd_event_source_set_enabled(c->lim->kick, SD_EVENT_ONESHOT);
	return c;
fail:
	call_free(c);
	return NULL;
}

void hs_http_cancel(struct hs_http_call *call)
{
	if (call)
		call_free(call);
}

int64_t hs_http_call_sent(const struct hs_http_call *call)
{
	return call->sent;
}

/* ---- the client ------------------------------------------------------------ */

void hs_http_reloaded(struct hs_http *h)
{
	h->reloaded_ms = hs_wall_ms();
}

struct hs_http *hs_http_new(sd_event *ev, const struct hs_http_opts *opts, struct hs_bucket *bucket,
			    char **cause)
{
	struct hs_http *h = calloc(1, sizeof(*h));

	if (!h) {
		hs_cause(cause, "%s", "out of memory");
		return NULL;
	}
	h->ev = sd_event_ref(ev);
	h->bucket = bucket;
	h->connect_timeout_s = opts->connect_timeout_s > 0 ? opts->connect_timeout_s : 30;
	h->stall_timeout_s = opts->stall_timeout_s > 0 ? opts->stall_timeout_s : 60;
	if ((opts->ca_file && !(h->ca_file = strdup(opts->ca_file))) ||
	    (opts->proxy && !(h->proxy = strdup(opts->proxy)))) {
		hs_cause(cause, "%s", "out of memory");
		goto fail;
	}
	if (!(h->multi = curl_multi_init())) {
		hs_cause(cause, "%s", "cannot create a curl multi handle");
		goto fail;
	}
	/* Accuracy 1 us: curl's timeouts are often "now" (a transfer just
	 * added), and the default accuracy would let each wait up to 250 ms. */
	if (sd_event_add_time(ev, &h->curl_timer, CLOCK_MONOTONIC, 0, 1, on_curl_timer_fired, h) <
		0 ||
	    sd_event_source_set_enabled(h->curl_timer, SD_EVENT_OFF) < 0 ||
	    sd_event_add_defer(ev, &h->curl_now, on_curl_now, h) < 0 ||
	    sd_event_source_set_enabled(h->curl_now, SD_EVENT_OFF) < 0 ||
	    sd_event_add_time(ev, &h->bw_timer, CLOCK_MONOTONIC, 0, 0, on_bandwidth_timer, h) < 0 ||
	    sd_event_source_set_enabled(h->bw_timer, SD_EVENT_OFF) < 0) {
		hs_cause(cause, "%s", "cannot add timers to the event loop");
		goto fail;
	}
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
	hs_http_set_max_connections(h, opts->max_connections);
	return h;
fail:
	return hs_http_free(h);
}

/* By default libcurl sizes its connection cache at 4 per easy handle
 * added at the moment, so when the transfers in flight drop to one or two
 * (between small files) it closes the idle connections that the next
 * files would have reused: with the API and the storage on two hosts,
 * hundreds of connections, and as many TLS handshakes, for 1,000 files.
 * A fixed size keeps them. */
void hs_http_set_max_connections(struct hs_http *h, long n)
{
	if (n > 0)
		curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, n);
}

struct hs_http *hs_http_free(struct hs_http *h)
{
	if (!h)
		return NULL;
	while (h->calls)
		call_free(h->calls);
	while (h->limiters)
		limiter_unlink_free(h->limiters);
	if (h->multi)
		curl_multi_cleanup(h->multi);
	sd_event_source_disable_unref(h->curl_timer);
	sd_event_source_disable_unref(h->curl_now);
	sd_event_source_disable_unref(h->bw_timer);
	sd_event_unref(h->ev);
	free(h->ca_file);
	free(h->proxy);
	free(h);
	return NULL;
}

char *hs_url_redact(const char *url)
{
	size_t len = strcspn(url, "?#");
	char *out = malloc(len + 1);

	if (out) {
		memcpy(out, url, len);
		out[len] = '\0';
	}
	return out;
}
