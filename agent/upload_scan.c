/*
 * upload_scan: reading a job's file once, in slices between other events,
 * for its SHA-256 and the CRC-32 of each part (see upload.h).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "agent/log.h"
#include "agent/transfer.h"

static int on_scan(sd_event_source *s, uint64_t usec, void *arg);

int scan_init(struct transfer *t)
{
	if (sd_event_add_time(t->u->ev, &t->scan_src, CLOCK_MONOTONIC, 0, 1, on_scan, t) < 0 ||
	    sd_event_source_set_enabled(t->scan_src, SD_EVENT_OFF) < 0)
		return -1;
	return 0;
}

static void scan_finished(struct transfer *t)
{
	struct hs_uploader *u = t->u;
	unsigned char digest[32];
	unsigned len = 0;
	char *cause = NULL;
	bool stored = false;
	int rc;

	sd_event_source_set_enabled(t->scan_src, SD_EVENT_OFF);
	if (!file_unchanged(t)) {
		restart_changed(t, "the file changed while it was read");
		return;
	}
	log_job(LOG_DEBUG, t, 0, NULL, "file read for its checksums");
	if (!t->md) { /* a CRC-only rescan for a session's part size */
		for (uint32_t i = 0; i < t->session.part_count; i++) {
			t->parts[i].crc = t->scan_crcs[i];
			t->parts[i].crc_known = true;
		}
		parts_ready(t);
		return;
	}
	if (EVP_DigestFinal_ex(t->md, digest, &len) != 1 || len != sizeof(digest)) {
		job_fail(t, false, 0, "SHA-256 failed");
		return;
	}
	/* By hand: 32 snprintf calls were 1.4 % of the daemon's instructions
	 * for a small file (callgrind). */
	static const char hex[] = "0123456789abcdef";
	for (unsigned i = 0; i < len; i++) {
		t->sha[2 * i] = hex[digest[i] >> 4];
		t->sha[2 * i + 1] = hex[digest[i] & 0xf];
	}
	t->sha[2 * len] = '\0';
	EVP_MD_CTX_free(t->md);
	t->md = NULL;

	rc = hs_queue_set_facts(u->q, t->job->id, t->job->lease_token, t->st.st_size,
				(int64_t)t->st.st_mtim.tv_sec * 1000000000 + t->st.st_mtim.tv_nsec,
				(int64_t)t->st.st_ino, t->sha, &cause);
	if (rc == HS_Q_OK)
		rc = hs_queue_ledger_has(u->q, t->job->remote_name, t->sha, &stored, &cause);
	if (rc != HS_Q_OK) {
		if (rc == HS_Q_LOST)
			log_job(LOG_WARNING, t, 0, NULL, "lease lost; leaving the job");
		else
			queue_error(t, "cannot record the file's checksum", cause);
		transfer_end(t);
		return;
	}
	if (stored) {
		rc = hs_queue_skip(u->q, t->job->id, t->job->lease_token, now_ms(), &cause);
		if (rc < 0) {
			queue_error(t, "cannot mark the job skipped", cause);
		} else if (rc == HS_Q_OK) {
			log_job(LOG_INFO, t, 0, NULL, "same content already stored; skipped");
			report_stored(t);
		}
		transfer_end(t);
		return;
	}
	t->tries = 0;
	t->step = is_multipart(t) ? S_CREATE : S_PRESIGN;
	run_step(t);
}

/* The next slice at the next turn of the loop. A timer due at once, not a
 * defer source: sd-event keeps a defer source pending from the turn it was
 * added in, so one left on always runs before every other source of its
 * priority, and sockets, inotify and signals would wait for the whole file.
 * A timer becomes pending anew at each turn, behind what was already
 * waiting. Left alone while already armed: re-arming a pending timer would
 * push it back. */
static void scan_soon(struct transfer *t)
{
	uint64_t now;
	int on;

	if (sd_event_source_get_enabled(t->scan_src, &on) >= 0 && on != SD_EVENT_OFF)
		return;
	if (sd_event_now(t->u->ev, CLOCK_MONOTONIC, &now) < 0 ||
	    sd_event_source_set_time(t->scan_src, now) < 0 ||
	    sd_event_source_set_enabled(t->scan_src, SD_EVENT_ONESHOT) < 0)
		sd_event_source_set_enabled(t->scan_src, SD_EVENT_ON); /* try anyway */
}

/* One slice of the file per turn of the loop. */
static int on_scan(sd_event_source *s, uint64_t usec, void *arg)
{
	struct transfer *t = arg;
	unsigned char *buf = t->u->buf;
	int64_t size = t->st.st_size, P = t->scan_part_size;
	size_t len = size - t->scan_pos < SCAN_SLICE ? (size_t)(size - t->scan_pos) : SCAN_SLICE;
	ssize_t r;

	(void)s;
	(void)usec;
	if (len == 0) {
		scan_finished(t);
		return 0;
	}
	do
		r = pread(t->fd, buf, len, t->scan_pos);
	while (r < 0 && errno == EINTR);
	if (r <= 0) {
		sd_event_source_set_enabled(t->scan_src, SD_EVENT_OFF);
		if (r == 0)
			restart_changed(t, "the file became shorter while it was read");
		else
			job_fail(t, false, 0, "read: %s", strerror(errno));
		return 0;
	}
	if (t->md && EVP_DigestUpdate(t->md, buf, (size_t)r) != 1) {
		sd_event_source_set_enabled(t->scan_src, SD_EVENT_OFF);
		job_fail(t, false, 0, "SHA-256 failed");
		return 0;
	}
	for (ssize_t off = 0; off < r;) {
		int64_t index = t->scan_pos / P, boundary = (index + 1) * P;
		int64_t take = boundary - t->scan_pos < r - off ? boundary - t->scan_pos : r - off;
		t->scan_crc = (uint32_t)crc32(t->scan_crc, buf + off, (uInt)take);
		t->scan_pos += take;
		off += take;
		if (t->scan_pos == boundary || t->scan_pos == size) {
			t->scan_crcs[index] = t->scan_crc;
			t->scan_crc = (uint32_t)crc32(0, NULL, 0);
		}
	}
	scan_soon(t);
	return 0;
}

/* Reads the whole file in slices from the loop: SHA-256 (with_sha) and the
 * CRC-32 of each part of part_size. May end t. */
void start_scan(struct transfer *t, bool with_sha, int64_t part_size)
{
	int64_t count = t->st.st_size ? (t->st.st_size + part_size - 1) / part_size : 1;

	if (t->ended)
		return;
	t->step = S_SCAN;
	t->scan_pos = 0;
	t->scan_part_size = part_size;
	t->scan_crc = (uint32_t)crc32(0, NULL, 0);
	free(t->scan_crcs);
	t->scan_crcs = calloc((size_t)count, sizeof(*t->scan_crcs));
	EVP_MD_CTX_free(t->md);
	t->md = NULL;
	if (with_sha &&
	    (!(t->md = EVP_MD_CTX_new()) || EVP_DigestInit_ex(t->md, EVP_sha256(), NULL) != 1)) {
		job_fail(t, false, 0, "SHA-256 unavailable");
		return;
	}
	if (!t->scan_crcs) {
		job_release(t, RESTART_DELAY_MS);
		return;
	}
	scan_soon(t);
}
