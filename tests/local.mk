# tests/: command-line, integration and server contract tests.

# The reference server's own contract test, then healsync against it.
TESTS += tests/cli/commands.sh tests/cli/catalog.sh tests/cli/monitoring.sh \
	tests/cli/check_moves.sh \
	tests/server/test_contract.py \
	tests/integration/upload_basic.py \
	tests/integration/upload_faults.py \
	tests/integration/upload_outage.py \
	tests/integration/upload_overlap.py \
	tests/integration/upload_pause.py \
	tests/integration/upload_pause_midflight.py \
	tests/integration/upload_ratelimit.py \
	tests/integration/ratelimit_idle.py \
	tests/integration/disk_full.py \
	tests/integration/local_state.py \
	tests/integration/names.py \
	tests/integration/upload_crash.py \
	tests/integration/upload_lost_complete.py \
	tests/integration/upload_many_parts.py \
	tests/integration/watch_basic.py \
	tests/integration/watch_after.py \
	tests/integration/after_refused.py \
	tests/integration/watch_swap.py \
	tests/integration/watch_firstscan.py \
	tests/integration/watch_burst.py \
	tests/integration/watch_limits.py \
	tests/integration/loop_fairness.py \
	tests/integration/local_safety.py \
	tests/integration/service.py \
	tests/integration/mirror_basic.py \
	tests/integration/mirror_faults.py \
	tests/integration/mirror_hostile.py \
	tests/integration/mirror_ratelimit.py \
	tests/integration/mirror_disk.py \
	tests/integration/mirror_crash.py \
	tests/integration/mirror_daemon.py \
	tests/integration/https_upload.py \
	tests/integration/https_refused.py \
	tests/integration/https_proxy.py \
	tests/integration/s3_storage.py \
	tests/integration/clock_skew.py \
	tests/integration/status_writes.py \
	tests/integration/health.py \
	tests/integration/adm_access.py \
	tests/integration/health_reasons.py \
	tests/integration/metrics.py \
	tests/integration/upload_connections.py \
	tests/integration/operator_controls.py \
	tests/integration/mirror_terminal.py \
	tests/integration/watch_case.py \
	tests/integration/scan_first_night.py
EXTRA_DIST += tests/cli/commands.sh tests/cli/catalog.sh tests/cli/monitoring.sh \
	tests/cli/check_moves.sh \
	tests/server/healsync-testserver tests/server/hsserver_client.py \
	tests/server/test_contract.py tests/server/README.md \
	tests/integration/hstest.py tests/integration/tlsca.py \
	tests/integration/proxylib.py \
	tests/integration/https_upload.py \
	tests/integration/https_refused.py \
	tests/integration/https_proxy.py \
	tests/integration/s3_storage.py \
	tests/integration/clock_skew.py \
	tests/integration/health.py \
	tests/integration/adm_access.py \
	tests/integration/health_reasons.py \
	tests/integration/metrics.py \
	tests/integration/upload_connections.py \
	tests/integration/upload_basic.py \
	tests/integration/upload_faults.py \
	tests/integration/upload_outage.py \
	tests/integration/upload_overlap.py \
	tests/integration/upload_pause.py \
	tests/integration/upload_pause_midflight.py \
	tests/integration/upload_ratelimit.py \
	tests/integration/ratelimit_idle.py \
	tests/integration/disk_full.py \
	tests/integration/local_state.py \
	tests/integration/names.py \
	tests/integration/upload_crash.py \
	tests/integration/upload_lost_complete.py \
	tests/integration/upload_many_parts.py \
	tests/integration/watch_basic.py \
	tests/integration/watch_after.py \
	tests/integration/after_refused.py \
	tests/integration/watch_swap.py \
	tests/integration/watch_firstscan.py \
	tests/integration/watch_burst.py \
	tests/integration/watch_limits.py \
	tests/integration/loop_fairness.py \
	tests/integration/local_safety.py \
	tests/integration/service.py \
	tests/integration/mirrorlib.py \
	tests/integration/mirror_basic.py \
	tests/integration/mirror_faults.py \
	tests/integration/mirror_hostile.py \
	tests/integration/mirror_ratelimit.py \
	tests/integration/mirror_disk.py \
	tests/integration/mirror_crash.py \
	tests/integration/mirror_daemon.py \
	tests/integration/status_writes.py \
	tests/integration/operator_controls.py \
	tests/integration/mirror_terminal.py \
	tests/integration/watch_case.py \
	tests/integration/scan_first_night.py

# Drop-in configuration and Bearer tokens.
TESTS += tests/integration/bearer_auth.py tests/integration/dropin_reload.py \
	tests/integration/token_health.py

# A step's retry timer that outlives its step (found by the chaos soak).
TESTS += tests/integration/upload_stale_timer.py
EXTRA_DIST += tests/integration/bearer_auth.py tests/integration/dropin_reload.py \
	tests/integration/token_health.py tests/integration/upload_stale_timer.py
