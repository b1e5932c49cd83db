#!/bin/sh
# The alert rules of docs/monitoring.md pass `promtool check rules`.
set -u
srcdir=${HS_SRCDIR:-${srcdir:-.}}
if ! command -v promtool >/dev/null; then
	echo "ok 1 - promtool check rules # SKIP no promtool (Debian's prometheus)"
	echo "1..1"
	exit 0
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hs-cli-monitoring.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
sed -n '/^```yaml$/,/^```$/p' "$srcdir/docs/monitoring.md" | sed '1d;$d' >"$tmp/rules.yml"
if [ -s "$tmp/rules.yml" ] && promtool check rules "$tmp/rules.yml" >"$tmp/out" 2>&1; then
	echo "ok 1 - docs/monitoring.md: promtool check rules accepts the alert rules"
else
	echo "not ok 1 - docs/monitoring.md: promtool check rules accepts the alert rules"
	sed 's/^/# /' "$tmp/out"
fi
echo "1..1"
