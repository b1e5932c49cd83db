# agent/: the daemon and the command line.
bin_PROGRAMS += healsync
healsync_SOURCES = agent/main.c agent/cli.c agent/cli.h \
	agent/cmd-check-config.c agent/cmd-enqueue.c agent/cmd-jobs.c \
	agent/cmd-retry.c agent/cmd-status.c agent/cmd-check.c agent/cli-health.c \
	agent/cmd-control.c agent/cmd-scan.c \
	agent/remote_name.c agent/remote_name.h \
	agent/cmd-run.c agent/daemon.c agent/daemon.h agent/clock.h \
	agent/log.c agent/log.h agent/http.c agent/http.h \
	agent/ratelimit.c agent/ratelimit.h agent/bandwidth.c agent/bandwidth.h \
	agent/upload.c agent/upload.h agent/upload_api.c agent/upload_api.h \
	agent/outage.c agent/outage.h agent/verdict.c agent/verdict.h \
	agent/transfer.c agent/transfer.h agent/upload_scan.c \
	agent/upload_single.c agent/upload_multipart.c \
	agent/health.c agent/health.h agent/metrics.c agent/metrics.h \
	agent/watch.c agent/watch.h agent/settle.c agent/settle.h \
	agent/filter.c agent/filter.h agent/after.c agent/after.h \
	agent/after_run.c agent/after_run.h agent/refusal.c agent/refusal.h \
	agent/beneath.c agent/beneath.h \
	agent/cmd-mirror.c agent/mirror.c agent/mirror.h \
	agent/mirror_db.c agent/mirror_db.h agent/mirror_record.c agent/mirror_record.h \
	agent/mirror_sched.c agent/mirror_sched.h agent/mirror_when.c agent/mirror_when.h \
	agent/cause.c agent/cause.h agent/token.c agent/token.h
# For programs that read the mirror database.
EXTRA_DIST += docs/mirror-schema.md
healsync_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS) $(SQLITE_CFLAGS) $(LIBCONFIG_CFLAGS) \
	$(JANSSON_CFLAGS) $(CRYPTO_CFLAGS) $(SYSTEMD_CFLAGS) $(ZLIB_CFLAGS)
healsync_LDADD = libhsqueue.a libhsconf.a $(CURL_LIBS) $(SQLITE_LIBS) $(LIBCONFIG_LIBS) \
	$(JANSSON_LIBS) $(CRYPTO_LIBS) $(SYSTEMD_LIBS) $(ZLIB_LIBS)

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_remote_name
TESTS += tests/unit/test_remote_name
tests_unit_test_remote_name_SOURCES = tests/unit/test_remote_name.c agent/remote_name.c
tests_unit_test_remote_name_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_remote_name_LDADD = $(CMOCKA_LIBS)
endif

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_bandwidth tests/unit/test_ratelimit
TESTS += tests/unit/test_bandwidth tests/unit/test_ratelimit
tests_unit_test_bandwidth_SOURCES = tests/unit/test_bandwidth.c agent/bandwidth.c
tests_unit_test_bandwidth_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_bandwidth_LDADD = libhsconf.a $(LIBCONFIG_LIBS) $(CMOCKA_LIBS)
tests_unit_test_ratelimit_SOURCES = tests/unit/test_ratelimit.c agent/ratelimit.c
tests_unit_test_ratelimit_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(CURL_CFLAGS)
tests_unit_test_ratelimit_LDADD = $(CMOCKA_LIBS) $(CURL_LIBS)
endif

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_upload_api
TESTS += tests/unit/test_upload_api
tests_unit_test_upload_api_SOURCES = tests/unit/test_upload_api.c agent/upload_api.c
tests_unit_test_upload_api_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_upload_api_LDADD = libhsconf.a $(CMOCKA_LIBS) $(JANSSON_LIBS) $(LIBCONFIG_LIBS)
endif

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_settle tests/unit/test_filter tests/unit/test_after tests/unit/test_refusal
TESTS += tests/unit/test_settle tests/unit/test_filter tests/unit/test_after tests/unit/test_refusal
tests_unit_test_settle_SOURCES = tests/unit/test_settle.c agent/settle.c
tests_unit_test_settle_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_settle_LDADD = $(CMOCKA_LIBS)
tests_unit_test_filter_SOURCES = tests/unit/test_filter.c agent/filter.c
tests_unit_test_filter_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_filter_LDADD = libhsconf.a $(LIBCONFIG_LIBS) $(CMOCKA_LIBS)
tests_unit_test_refusal_SOURCES = tests/unit/test_refusal.c agent/refusal.c
tests_unit_test_refusal_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_refusal_LDADD = $(CMOCKA_LIBS)
tests_unit_test_after_SOURCES = tests/unit/test_after.c tests/unit/deep.h agent/after.c agent/beneath.c agent/refusal.c \
	agent/cause.c
tests_unit_test_after_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(SYSTEMD_CFLAGS) -pthread
tests_unit_test_after_LDADD = $(CMOCKA_LIBS) $(SYSTEMD_LIBS)
tests_unit_test_after_LDFLAGS = -pthread
endif

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_beneath
TESTS += tests/unit/test_beneath
tests_unit_test_beneath_SOURCES = tests/unit/test_beneath.c tests/unit/deep.h agent/beneath.c
tests_unit_test_beneath_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_beneath_LDADD = $(CMOCKA_LIBS)
endif

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_mirror_record tests/unit/test_mirror_db
TESTS += tests/unit/test_mirror_record tests/unit/test_mirror_db
tests_unit_test_mirror_record_SOURCES = tests/unit/test_mirror_record.c agent/mirror_record.c \
	agent/cause.c
tests_unit_test_mirror_record_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS) \
	$(CURL_CFLAGS)
tests_unit_test_mirror_record_LDADD = $(CMOCKA_LIBS) $(JANSSON_LIBS) $(CURL_LIBS)
tests_unit_test_mirror_db_SOURCES = tests/unit/test_mirror_db.c agent/mirror_db.c agent/cause.c
tests_unit_test_mirror_db_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(SQLITE_CFLAGS)
tests_unit_test_mirror_db_LDADD = libhsqueue.a $(CMOCKA_LIBS) $(SQLITE_LIBS)
endif

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_outage
TESTS += tests/unit/test_outage
tests_unit_test_outage_SOURCES = tests/unit/test_outage.c agent/outage.c
tests_unit_test_outage_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_outage_LDADD = $(CMOCKA_LIBS)
endif

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_health
TESTS += tests/unit/test_health
# metrics.c names the retry causes from verdict.c, which reads error bodies.
tests_unit_test_health_SOURCES = tests/unit/test_health.c agent/health.c agent/metrics.c \
	agent/verdict.c agent/upload_api.c queue/queue.h
tests_unit_test_health_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_health_LDADD = libhsqueue.a libhsconf.a $(SQLITE_LIBS) $(CMOCKA_LIBS) \
	$(JANSSON_LIBS) $(LIBCONFIG_LIBS)
endif

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_verdict
TESTS += tests/unit/test_verdict
tests_unit_test_verdict_SOURCES = tests/unit/test_verdict.c agent/verdict.c agent/upload_api.c
tests_unit_test_verdict_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_verdict_LDADD = libhsconf.a $(CMOCKA_LIBS) $(JANSSON_LIBS) $(LIBCONFIG_LIBS)
endif

# The interop stage asks it for the verdicts it compares with the AWS SDK's.
check_PROGRAMS += tests/verdict_probe
tests_verdict_probe_SOURCES = tests/verdict_probe.c agent/verdict.c agent/upload_api.c
tests_verdict_probe_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
tests_verdict_probe_LDADD = libhsconf.a $(JANSSON_LIBS) $(LIBCONFIG_LIBS)

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_mirror_when
TESTS += tests/unit/test_mirror_when
tests_unit_test_mirror_when_SOURCES = tests/unit/test_mirror_when.c agent/mirror_when.c
tests_unit_test_mirror_when_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_mirror_when_LDADD = libhsconf.a $(LIBCONFIG_LIBS) $(CMOCKA_LIBS)
endif

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_token
TESTS += tests/unit/test_token
tests_unit_test_token_SOURCES = tests/unit/test_token.c agent/token.c agent/log.c
tests_unit_test_token_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS) $(CRYPTO_CFLAGS) \
	$(SYSTEMD_CFLAGS)
tests_unit_test_token_LDADD = libhsconf.a $(LIBCONFIG_LIBS) $(CMOCKA_LIBS) $(JANSSON_LIBS) \
	$(CRYPTO_LIBS) $(SYSTEMD_LIBS)
endif
