# conf/: configuration loading (owned by the conf module)
noinst_LIBRARIES += libhsconf.a
libhsconf_a_SOURCES = \
	conf/conf.c conf/conf.h \
	conf/print.c \
	conf/keyfile.c conf/bigint.c conf/dropin.c conf/internal.h \
	conf/units.c conf/units.h \
	conf/timetable.c conf/timetable.h \
	conf/cron.c conf/cron.h
libhsconf_a_CFLAGS = $(AM_CFLAGS) $(LIBCONFIG_CFLAGS)
dist_noinst_DATA += conf/healsync.conf

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_units tests/unit/test_timetable tests/unit/test_conf \
	tests/unit/test_cron tests/unit/test_dropin
TESTS += tests/unit/test_units tests/unit/test_timetable tests/unit/test_conf \
	tests/unit/test_cron tests/unit/test_dropin
tests_unit_test_units_SOURCES = tests/unit/test_units.c
tests_unit_test_units_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_units_LDADD = libhsconf.a $(LIBCONFIG_LIBS) $(CMOCKA_LIBS)
tests_unit_test_timetable_SOURCES = tests/unit/test_timetable.c
tests_unit_test_timetable_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_timetable_LDADD = libhsconf.a $(LIBCONFIG_LIBS) $(CMOCKA_LIBS)
tests_unit_test_cron_SOURCES = tests/unit/test_cron.c
tests_unit_test_cron_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_cron_LDADD = libhsconf.a $(LIBCONFIG_LIBS) $(CMOCKA_LIBS)
tests_unit_test_dropin_SOURCES = tests/unit/test_dropin.c
tests_unit_test_dropin_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_dropin_LDADD = libhsconf.a $(LIBCONFIG_LIBS) $(CMOCKA_LIBS)
tests_unit_test_conf_SOURCES = tests/unit/test_conf.c
tests_unit_test_conf_CPPFLAGS = $(AM_CPPFLAGS) -DHS_TEST_SRCDIR='"$(abs_top_srcdir)"'
tests_unit_test_conf_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_conf_LDADD = libhsconf.a $(LIBCONFIG_LIBS) $(CMOCKA_LIBS)
endif

# check-config against broken and good files; needs the healsync binary.
TESTS += tests/cli/config.sh
EXTRA_DIST += tests/cli/config.sh
