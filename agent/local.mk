# agent/: the daemon and the command line.
bin_PROGRAMS += healsync
healsync_SOURCES = agent/main.c
healsync_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS) $(SQLITE_CFLAGS) $(LIBCONFIG_CFLAGS) \
	$(JANSSON_CFLAGS) $(CRYPTO_CFLAGS) $(SYSTEMD_CFLAGS) $(ZLIB_CFLAGS)
healsync_LDADD = libhsqueue.a libhsconf.a $(CURL_LIBS) $(SQLITE_LIBS) $(LIBCONFIG_LIBS) \
	$(JANSSON_LIBS) $(CRYPTO_LIBS) $(SYSTEMD_LIBS) $(ZLIB_LIBS)
