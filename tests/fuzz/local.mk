# tests/fuzz: libFuzzer targets, built with ./configure --enable-fuzz (clang).
# `make fuzz` runs each for FUZZ_SECONDS; tests/fuzz/run is the CI stage.
FUZZ_TARGETS = tests/fuzz/fuzz_config tests/fuzz/fuzz_units tests/fuzz/fuzz_timetable \
	tests/fuzz/fuzz_cron tests/fuzz/fuzz_ratelimit tests/fuzz/fuzz_upload_api \
	tests/fuzz/fuzz_remote_name tests/fuzz/fuzz_mirror_record tests/fuzz/fuzz_dropin
FUZZ_SECONDS = 300
EXTRA_DIST += tests/fuzz/run tests/fuzz/lsan.supp tests/fuzz/README.md tests/fuzz/corpus

if HS_FUZZ
noinst_PROGRAMS += $(FUZZ_TARGETS)
HS_FUZZ_LINK = $(AM_LDFLAGS) -fsanitize=fuzzer
tests_fuzz_fuzz_config_SOURCES = tests/fuzz/fuzz_config.c tests/fuzz/fuzz.h tests/fuzz/fuzz_conf.h
tests_fuzz_fuzz_config_LDFLAGS = $(HS_FUZZ_LINK)
tests_fuzz_fuzz_config_LDADD = libhsconf.a $(LIBCONFIG_LIBS)
tests_fuzz_fuzz_dropin_SOURCES = tests/fuzz/fuzz_dropin.c tests/fuzz/fuzz.h tests/fuzz/fuzz_conf.h
tests_fuzz_fuzz_dropin_LDFLAGS = $(HS_FUZZ_LINK)
tests_fuzz_fuzz_dropin_LDADD = libhsconf.a $(LIBCONFIG_LIBS)
tests_fuzz_fuzz_units_SOURCES = tests/fuzz/fuzz_units.c tests/fuzz/fuzz.h
tests_fuzz_fuzz_units_LDFLAGS = $(HS_FUZZ_LINK)
tests_fuzz_fuzz_units_LDADD = libhsconf.a
tests_fuzz_fuzz_timetable_SOURCES = tests/fuzz/fuzz_timetable.c tests/fuzz/fuzz.h
tests_fuzz_fuzz_timetable_LDFLAGS = $(HS_FUZZ_LINK)
tests_fuzz_fuzz_timetable_LDADD = libhsconf.a
tests_fuzz_fuzz_cron_SOURCES = tests/fuzz/fuzz_cron.c tests/fuzz/fuzz.h
tests_fuzz_fuzz_cron_LDFLAGS = $(HS_FUZZ_LINK)
tests_fuzz_fuzz_cron_LDADD = libhsconf.a
tests_fuzz_fuzz_ratelimit_SOURCES = tests/fuzz/fuzz_ratelimit.c tests/fuzz/fuzz.h \
	agent/ratelimit.c
tests_fuzz_fuzz_ratelimit_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS)
tests_fuzz_fuzz_ratelimit_LDFLAGS = $(HS_FUZZ_LINK)
tests_fuzz_fuzz_ratelimit_LDADD = $(CURL_LIBS)
tests_fuzz_fuzz_upload_api_SOURCES = tests/fuzz/fuzz_upload_api.c tests/fuzz/fuzz.h \
	agent/upload_api.c
tests_fuzz_fuzz_upload_api_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
tests_fuzz_fuzz_upload_api_LDFLAGS = $(HS_FUZZ_LINK)
tests_fuzz_fuzz_upload_api_LDADD = libhsconf.a $(JANSSON_LIBS) $(LIBCONFIG_LIBS)
tests_fuzz_fuzz_remote_name_SOURCES = tests/fuzz/fuzz_remote_name.c tests/fuzz/fuzz.h \
	agent/remote_name.c
tests_fuzz_fuzz_remote_name_LDFLAGS = $(HS_FUZZ_LINK)
tests_fuzz_fuzz_mirror_record_SOURCES = tests/fuzz/fuzz_mirror_record.c tests/fuzz/fuzz.h \
	agent/mirror_record.c agent/cause.c
tests_fuzz_fuzz_mirror_record_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(CURL_CFLAGS)
tests_fuzz_fuzz_mirror_record_LDFLAGS = $(HS_FUZZ_LINK)
tests_fuzz_fuzz_mirror_record_LDADD = $(JANSSON_LIBS) $(CURL_LIBS)

fuzz-build: $(FUZZ_TARGETS)
fuzz: fuzz-build
	$(top_srcdir)/tests/fuzz/run --built $(abs_top_builddir) $(FUZZ_SECONDS)
else
fuzz-build fuzz:
	@echo "make $@: configure with --enable-fuzz (CC=clang) first" >&2; exit 1
endif
.PHONY: fuzz fuzz-build
