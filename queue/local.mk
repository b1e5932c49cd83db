# queue/: the durable job queue (owned by the queue module)
noinst_LIBRARIES += libhsqueue.a
libhsqueue_a_SOURCES = \
	queue/queue.c queue/queue.h \
	queue/backoff.c queue/backoff.h
libhsqueue_a_CFLAGS = $(AM_CFLAGS) $(SQLITE_CFLAGS)
