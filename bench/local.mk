# bench/: benchmarks, built by `make bench`, never run by `make check`.

# The job queue against raw SQLite, and claim latency against queue length.
EXTRA_PROGRAMS += bench/bench_queue
bench_bench_queue_SOURCES = bench/queue.c
bench_bench_queue_CFLAGS = $(AM_CFLAGS) $(SQLITE_CFLAGS)
bench_bench_queue_LDADD = libhsqueue.a $(SQLITE_LIBS)
CLEANFILES += bench/bench_queue
EXTRA_DIST += bench/README.md

# Upload benchmarks: healsync against curl and the reference server.
EXTRA_DIST += bench/benchlib.py bench/upload_throughput.py bench/upload_memory.py \
	bench/bandwidth_cap.py bench/ratelimit.py bench/mirror.py
# A move to another file system while the loop goes on.
EXTRA_DIST += bench/after_move.py
