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
	bench/bandwidth_cap.py bench/ratelimit.py bench/mirror.py bench/peers.py
# A move to another file system while the loop goes on.
EXTRA_DIST += bench/after_move.py

# The fleet simulation: the daemon's pure modules in 10,000 simulated
# agents (bench/fleet/fleet.c). `make bench-fleet` runs it; make check
# runs 1,000 agents and asserts the goals (docs/fleet.md).
FLEET_SOURCES = bench/fleet/fleet.c agent/mirror_when.c agent/mirror_when.h \
	agent/ratelimit.c agent/ratelimit.h agent/outage.c agent/outage.h \
	queue/backoff.c queue/backoff.h
check_PROGRAMS += bench/fleet/fleet
bench_fleet_fleet_SOURCES = $(FLEET_SOURCES)
bench_fleet_fleet_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS) $(LIBCONFIG_CFLAGS)
bench_fleet_fleet_LDADD = libhsconf.a $(LIBCONFIG_LIBS) $(CURL_LIBS) -lm
TESTS += bench/fleet/check
EXTRA_DIST += bench/fleet/check bench/fleet/run docs/fleet.md

bench-fleet: bench/fleet/fleet
	bench/fleet/fleet --srcdir $(srcdir) --check
.PHONY: bench-fleet
