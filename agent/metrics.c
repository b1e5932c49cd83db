/* metrics: the Prometheus text (see metrics.h). */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "agent/metrics.h"

static void head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value with \, " and newline escaped, as the format asks. */
static void label(FILE *f, const char *v)
{
	for (; v && *v; v++) {
		if (*v == '\\' || *v == '"')
			fputc('\\', f);
		if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

static double seconds(int64_t ms)
{
	return (double)ms / 1000.0;
}

char *hs_metrics_text(const struct hs_metrics *m)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return NULL;
	head(f, "healsync_up", "gauge", "Whether the healsync daemon runs (0 once it stopped).");
	fprintf(f, "healsync_up %d\n", m->running ? 1 : 0);
	head(f, "healsync_start_time_seconds", "gauge", "When the daemon started, Unix time.");
	fprintf(f, "healsync_start_time_seconds %.3f\n", seconds(m->started_at));

	head(f, "healsync_health_state", "gauge",
	     "The health verdict: 0 OK, 1 WARNING, 2 CRITICAL.");
	fprintf(f, "healsync_health_state %d\n", m->health ? (int)m->health->state : 0);
	head(f, "healsync_health_reason", "gauge",
	     "1 for each reason of the verdict, by code (healsync status explains them).");
	for (size_t i = 0; m->health && i < m->health->n; i++)
		fprintf(f, "healsync_health_reason{code=\"%s\",state=\"%s\"} 1\n",
			hs_health_code_name(m->health->reasons[i].code),
			hs_health_state_name(m->health->reasons[i].state));

	head(f, "healsync_jobs", "gauge", "Jobs in the queue, by state.");
	for (int s = 0; s < HS_JOB_NSTATES; s++)
		fprintf(f, "healsync_jobs{state=\"%s\"} %" PRId64 "\n", hs_job_state_name(s),
			m->jobs[s]);
	head(f, "healsync_stored_files_total", "counter",
	     "Files the server confirmed it stores, since the daemon started.");
	fprintf(f, "healsync_stored_files_total %" PRIu64 "\n", m->stored_files);
	head(f, "healsync_stored_bytes_total", "counter",
	     "Bytes of the files the server confirmed, since the daemon started.");
	fprintf(f, "healsync_stored_bytes_total %" PRIu64 "\n", m->stored_bytes);
	head(f, "healsync_sent_bytes_total", "counter",
	     "Request body bytes sent, retries included, since the daemon started.");
	fprintf(f, "healsync_sent_bytes_total %" PRIu64 "\n", m->sent_bytes);
	head(f, "healsync_last_upload_success_timestamp_seconds", "gauge",
	     "When the server last confirmed a file, Unix time; 0: never.");
	fprintf(f, "healsync_last_upload_success_timestamp_seconds %.3f\n",
		seconds(m->last_upload_at));
	head(f, "healsync_oldest_queued_age_seconds", "gauge",
	     "How long the oldest waiting file has been queued; 0: none waits.");
	fprintf(f, "healsync_oldest_queued_age_seconds %.3f\n", seconds(m->oldest_queued_age_ms));
	if (m->mirror_enabled) {
		head(f, "healsync_mirror_last_success_timestamp_seconds", "gauge",
		     "When the last successful mirror run started, Unix time; 0: never.");
		fprintf(f, "healsync_mirror_last_success_timestamp_seconds %.3f\n",
			seconds(m->mirror_last_success_at));
	}
	head(f, "healsync_api_up", "gauge",
	     "Whether an API answers and takes the key (records: its last run did not fail).");
	fprintf(f, "healsync_api_up{api=\"upload\"} %d\n", m->upload_up ? 1 : 0);
	if (m->mirror_enabled)
		fprintf(f, "healsync_api_up{api=\"records\"} %d\n", m->records_up ? 1 : 0);
	head(f, "healsync_ratelimit_throttled_total", "counter",
	     "429 answers (rate limited), by API and host, since the daemon started.");
	for (size_t i = 0; i < m->n_limiters && i < HS_METRICS_MAX_LIMITERS; i++) {
		fputs("healsync_ratelimit_throttled_total{api=\"", f);
		label(f, m->limiters[i].api);
		fputs("\",host=\"", f);
		label(f, m->limiters[i].host);
		fprintf(f, "\"} %" PRIu64 "\n", m->limiters[i].throttled);
	}
	head(f, "healsync_upload_retries_total", "counter",
	     "Times the uploader tried again after a transient fault, by cause, since the "
	     "daemon started.");
	/* Every cause, 0 included: a rate() over a series that appears only
	 * with its first retry misses that retry. */
	for (int c = 0; c < HS_RETRY_NCAUSES; c++)
		fprintf(f, "healsync_upload_retries_total{cause=\"%s\"} %" PRIu64 "\n",
			hs_retry_cause_name(c), m->retries[c]);
	head(f, "healsync_ratelimit_waiting_requests", "gauge",
	     "Requests waiting for a rate-limit window to reopen.");
	fprintf(f, "healsync_ratelimit_waiting_requests %u\n", m->waiting_for_quota);
	if (m->disk_free >= 0) {
		head(f, "healsync_state_dir_free_bytes", "gauge",
		     "Bytes free for the state folder's file system.");
		fprintf(f, "healsync_state_dir_free_bytes %" PRId64 "\n", m->disk_free);
	}
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}
