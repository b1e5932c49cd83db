#!/bin/sh
# The journal catalog explains every MESSAGE_ID the agent logs (agent/log.h),
# each once, and journalctl compiles it. TAP output; run by `make check`.
set -u
srcdir=${HS_SRCDIR:-${srcdir:-.}}
catalog=$srcdir/packaging/systemd/healsync.catalog
header=$srcdir/agent/log.h

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hs-cli-catalog.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $*"; }

sed -n 's/^#define HS_MSGID_[A-Z_]*[[:space:]]*"\([0-9a-f]\{32\}\)".*/\1/p' "$header" |
	sort >"$tmp/ids"
sed -n 's/^-- \([0-9a-f]\{32\}\)$/\1/p' "$catalog" | sort >"$tmp/entries"
if [ -s "$tmp/ids" ]; then ok "agent/log.h defines MESSAGE_IDs"; else not_ok "agent/log.h defines MESSAGE_IDs"; fi
missing=$(comm -23 "$tmp/ids" "$tmp/entries")
if [ -z "$missing" ]; then
	ok "every MESSAGE_ID has a catalog entry"
else
	not_ok "every MESSAGE_ID has a catalog entry (missing: $missing)"
fi
# An ID written anywhere but agent/log.h would escape the check above.
stray=$(grep -lE '"[0-9a-f]{32}"' "$srcdir"/agent/*.c "$srcdir"/agent/*.h "$srcdir"/queue/*.c 2>/dev/null |
	grep -v '/agent/log\.h$')
if [ -z "$stray" ]; then
	ok "MESSAGE_IDs are defined in agent/log.h only"
else
	not_ok "MESSAGE_IDs are defined in agent/log.h only (also in: $stray)"
fi
if [ -z "$(uniq -d "$tmp/entries")" ]; then ok "each entry once"; else not_ok "each entry once"; fi
# Every entry says what it is and where to read more.
entries=$(wc -l <"$tmp/entries")
for field in Subject Defined-By Documentation; do
	if [ "$(grep -c "^$field: " "$catalog")" -eq "$entries" ]; then
		ok "each entry has $field:"
	else
		not_ok "each entry has $field:"
	fi
done
if command -v journalctl >/dev/null; then
	mkdir -p "$tmp/root/usr/lib/systemd/catalog"
	cp "$catalog" "$tmp/root/usr/lib/systemd/catalog/"
	if journalctl --root="$tmp/root" --update-catalog 2>"$tmp/err" &&
		[ "$(journalctl --root="$tmp/root" --list-catalog | grep -c 'healsync: ')" -eq "$entries" ]; then
		ok "journalctl compiles it and lists every entry"
	else
		not_ok "journalctl compiles it and lists every entry"
		sed 's/^/# /' "$tmp/err"
	fi
else
	ok "journalctl compiles it # SKIP no journalctl"
fi
echo "1..$n"
