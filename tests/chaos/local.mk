# tests/chaos: the seeded chaos soak of the real daemon. Not part of
# `make check` (minutes, not seconds): CI runs tests/chaos/ci as its own
# stage, and `make chaos MINUTES=N` runs new seeds for N minutes.
MINUTES = 10
EXTRA_DIST += tests/chaos/run tests/chaos/ci tests/chaos/README.md

chaos: healsync$(EXEEXT)
	HEALSYNC='$(abs_top_builddir)/healsync' HS_SRCDIR='$(abs_top_srcdir)' \
		$(top_srcdir)/tests/chaos/ci --for $(MINUTES)
.PHONY: chaos
