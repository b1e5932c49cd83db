/*
 * http: every HTTP request healsync makes, on one curl multi handle driven
 * by the sd-event loop through curl's multi-socket API. Connections are
 * reused (keep-alive, HTTP/2 when offered); TLS is always verified.
 *
 * Two policies live here so that no caller can forget them:
 *  - pacing: each request names a realm ("upload", "records") and a class
 *    (API call or storage transfer); requests to one realm and host share a
 *    rate limiter (agent/ratelimit.h) that learns from every answer's
 *    X-RateLimit-* and Retry-After headers, read against its Date. A request
 *    the limiter holds back waits in line, on a timer, before curl sees it;
 *    one class held back does not hold the other. A limiter that holds
 *    nothing worth keeping (per-upload storage hosts) is freed.
 *  - bandwidth: request bodies read from files draw from the shared token
 *    bucket; a transfer that finds it empty is paused through curl's read
 *    callback and resumed by a timer when tokens are back.
 *
 * A call is owned by the client from hs_http_send() until its done callback
 * has returned; hs_http_cancel() ends it early without calling back. The
 * response passed to the callback is valid during the callback only; take
 * resp->body (set it to NULL) to keep it. Nothing here blocks.
 */
#ifndef HS_AGENT_HTTP_H
#define HS_AGENT_HTTP_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "agent/bandwidth.h"
#include "agent/ratelimit.h"

#define HS_HTTP_MAX_RESPONSE (1024 * 1024) /* API bodies; more is hostile */

struct hs_http;
struct hs_http_call;

struct hs_http_opts {
	const char *ca_file; /* NULL: system CAs only */
	const char *proxy;   /* NULL: the usual *_proxy variables */
	long connect_timeout_s;
	long stall_timeout_s; /* no byte moving for this long ends a transfer */
	long max_connections; /* kept open, in use or idle, all hosts; 0: libcurl's default */
};

struct hs_http_request {
	const char *realm;		  /* rate-limit realm, required */
	enum hs_ratelimit_class rl_class; /* HS_RL_API (the default) or HS_RL_STORAGE */
	const char *method;
	const char *url;
	const char *api_key; /* sent as X-API-Key; NULL: none */
	bool bearer;	     /* api_key is a token, sent as Authorization: Bearer */
	/* This API's own CA bundle and proxy; NULL: the client's (opts).
	 * Callers pass their API's settings each time, so that a reloaded
	 * configuration applies to the next request. */
	const char *ca_file;
	const char *proxy;
	const char *json_body; /* POST/PUT body; NULL: none */
	/* Extra headers "Name: value", NULL-terminated; may be NULL. */
	const char *const *headers;
	/* A body streamed from a file range, throttled by the bucket. */
	int body_fd; /* -1: none */
	int64_t body_offset;
	int64_t body_length;
	/* The largest answer body accepted, in bytes; 0: HS_HTTP_MAX_RESPONSE.
	 * Only for answers whose size the request itself bounds. */
	size_t max_response;
};

/* Why a transfer got no answer, when it is not the network's fault. */
enum hs_refused {
	HS_REFUSED_NONE,
	HS_REFUSED_TLS,	  /* certificate untrusted, for another host, expired... */
	HS_REFUSED_PROXY, /* the proxy could not be reached or refused the tunnel
			     (a 5xx to CONNECT is the server's outage, not this) */
};

struct hs_http_response {
	CURLcode result; /* CURLE_OK when an HTTP answer arrived */
	char error[CURL_ERROR_SIZE];
	long status;
	char *body; /* NUL-terminated; NULL when empty */
	size_t body_len;
	char etag[128];	     /* "" when none or too long */
	int64_t retry_after; /* ms from date_seen_ms (HTTP-dates read against
				date_ms), clamped; -1 when none */
	/* The answer's Date header (the server's clock, whole seconds) in Unix
	 * ms, and our Unix ms when it arrived: their difference is how far the
	 * server's clock is ahead of ours (SPEC 1: resets, Retry-After dates
	 * and expires_at are read against it). date_ms is -1 when absent. */
	int64_t date_ms;
	int64_t date_seen_ms;
	bool body_changed; /* the body file ended early or failed to read */
	/* With result != CURLE_OK: the connection was made and then no byte
	 * moved for stall_timeout_s (not a connect timeout). */
	bool stalled;
	/* With result != CURLE_OK: TLS or the proxy refused. error then
	 * names the host (or proxy) and the cause, never credentials. */
	enum hs_refused refused;
};

typedef void (*hs_http_done_fn)(struct hs_http_response *resp, void *arg);

struct hs_http *hs_http_new(sd_event *ev, const struct hs_http_opts *opts, struct hs_bucket *bucket,
			    char **cause);
/* Cancels every call without calling back. Accepts NULL; returns NULL. */
struct hs_http *hs_http_free(struct hs_http *h);

/* Starts a request (or queues it behind the rate limiter). Returns NULL with
 * *cause when it cannot even be set up. */
struct hs_http_call *hs_http_send(struct hs_http *h, const struct hs_http_request *req,
				  hs_http_done_fn done, void *arg, char **cause);
void hs_http_cancel(struct hs_http_call *call);
/* Body bytes sent so far by this call. */
int64_t hs_http_call_sent(const struct hs_http_call *call);

/* The configuration was reloaded: CA bundles are read again from their
 * files, even at the same path, for every request from now on. */
void hs_http_reloaded(struct hs_http *h);

/* Connections kept open, in use or idle, over all hosts (see
 * hs_http_opts.max_connections); for a reload that changes the parallelism. */
void hs_http_set_max_connections(struct hs_http *h, long n);

/* The bucket's rate changed (the timetable): wake paused transfers. */
void hs_http_bandwidth_changed(struct hs_http *h);

/* Calls fn for each limiter (status output). */
void hs_http_each_limiter(struct hs_http *h,
			  void (*fn)(const char *realm, const char *host,
				     const struct hs_ratelimit *rl, void *arg),
			  void *arg);
/* Request body bytes sent by all calls so far. */
uint64_t hs_http_bytes_sent(const struct hs_http *h);
/* Requests waiting for the rate limiter, and transfers in flight. */
unsigned hs_http_waiting(const struct hs_http *h);
unsigned hs_http_running(const struct hs_http *h);

/* url without its query string and fragment, for log lines: presigned
 * query strings are secrets. Caller frees; NULL when out of memory. */
char *hs_url_redact(const char *url);

#endif
