# conf/: configuration loading (owned by the conf module)
noinst_LIBRARIES += libhsconf.a
libhsconf_a_SOURCES = \
	conf/conf.c conf/conf.h \
	conf/units.c conf/units.h \
	conf/timetable.c conf/timetable.h
libhsconf_a_CFLAGS = $(AM_CFLAGS) $(LIBCONFIG_CFLAGS)
dist_noinst_DATA += conf/healsync.conf
