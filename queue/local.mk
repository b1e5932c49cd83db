# queue/: the durable job queue (owned by the queue module)
noinst_LIBRARIES += libhsqueue.a
libhsqueue_a_SOURCES = \
	queue/queue.c queue/queue.h queue/sqldb.c queue/sqldb.h \
	queue/backoff.c queue/backoff.h
libhsqueue_a_CFLAGS = $(AM_CFLAGS) $(SQLITE_CFLAGS)
EXTRA_DIST += docs/queue.md

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_backoff tests/unit/test_queue tests/queue_crash
TESTS += tests/unit/test_backoff tests/unit/test_queue tests/queue_crash
tests_unit_test_backoff_SOURCES = tests/unit/test_backoff.c
tests_unit_test_backoff_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_backoff_LDADD = libhsqueue.a $(SQLITE_LIBS) $(CMOCKA_LIBS)
tests_unit_test_queue_SOURCES = tests/unit/test_queue.c
tests_unit_test_queue_CFLAGS = $(AM_CFLAGS) $(SQLITE_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_queue_LDADD = libhsqueue.a $(SQLITE_LIBS) $(CMOCKA_LIBS)
# Kills a worker at random points hundreds of times (HS_CRASH_ROUNDS).
tests_queue_crash_SOURCES = tests/queue_crash.c
tests_queue_crash_CFLAGS = $(AM_CFLAGS) $(SQLITE_CFLAGS) $(CMOCKA_CFLAGS)
tests_queue_crash_LDADD = libhsqueue.a $(SQLITE_LIBS) $(CMOCKA_LIBS)
endif
