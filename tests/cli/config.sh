#!/bin/sh
# healsync check-config: a broken file exits 78 with one line on stderr that
# names FILE:LINE: SETTING; a good one exits 0 and prints the effective
# configuration without the keys; HEALSYNC_CONFIG and CREDENTIALS_DIRECTORY
# are honoured. TAP output; run by `make check` with HEALSYNC and HS_SRCDIR.
set -u

if [ -z "${HEALSYNC:-}" ] || [ ! -x "$HEALSYNC" ]; then
	echo "Bail out! HEALSYNC (${HEALSYNC:-unset}) is not an executable healsync"
	exit 1
fi
unset HEALSYNC_CONFIG CREDENTIALS_DIRECTORY

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hs-cli-config.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

n=0
ok() {
	n=$((n + 1))
	echo "ok $n - $1"
}
not_ok() {
	n=$((n + 1))
	echo "not ok $n - $1"
	sed 's/^/# /' "$tmp/out" "$tmp/err"
}

upload_key=cli-upload-secret-4f1d0a9b
records_key=cli-records-secret-77c2e3d5
printf '%s\n' "$upload_key" >"$tmp/upload.key"
printf '%s\n' "$records_key" >"$tmp/records.key"
chmod 0600 "$tmp/upload.key"
chmod 0640 "$tmp/records.key"

# run [VAR=VALUE...] HEALSYNC [-c FILE]: runs check-config with those variables in
# its environment; $rc, $tmp/out and $tmp/err hold what happened.
run() {
	env "$@" check-config >"$tmp/out" 2>"$tmp/err"
	rc=$?
}

# expect_broken NAME WHERE: $tmp/bad.conf must be refused with exit 78 and
# exactly one line "healsync: FILE:WHERE..." on stderr, where WHERE is
# "LINE: SETTING: " (or "LINE: " for a syntax error).
expect_broken() {
	run "$HEALSYNC" -c "$tmp/bad.conf"
	lines=$(wc -l <"$tmp/err")
	first=$(head -n 1 "$tmp/err")
	case $first in
	"healsync: $tmp/bad.conf:$2"*) named=yes ;;
	*) named=no ;;
	esac
	if [ "$rc" -eq 78 ] && [ "$lines" -eq 1 ] && [ "$named" = yes ] && [ ! -s "$tmp/out" ]; then
		ok "$1"
	else
		not_ok "$1 (exit $rc, $lines lines on stderr)"
	fi
}

upload_section() {
	cat <<EOF
upload: {
  base_url = "https://upload.example/ext-api/v1";
  api_key_file = "$tmp/upload.key";
  $1
};
EOF
}

printf 'upload: {\n  base_url = "https://x";\n  parallel = ;\n};\n' >"$tmp/bad.conf"
expect_broken "syntax error" "3: "
upload_section 'colour = "blue";' >"$tmp/bad.conf"
expect_broken "unknown setting" "4: upload.colour: "
upload_section 'parallel = "4";' >"$tmp/bad.conf"
expect_broken "wrong type" "4: upload.parallel: "
upload_section 'part_size = "16 MiB";' >"$tmp/bad.conf"
expect_broken "bad unit" "4: upload.part_size: "
upload_section 'part_size = 5368709120;' >"$tmp/bad.conf"
expect_broken "integer beyond 32 bits" "4: upload.part_size: "
upload_section 'parallel = 65;' >"$tmp/bad.conf"
expect_broken "out of range" "4: upload.parallel: "
upload_section 'bandwidth = "08:00,2MiB/s 24:00,off";' >"$tmp/bad.conf"
expect_broken "bad timetable" "4: upload.bandwidth: "
printf 'upload: {\n  api_key_file = "%s/upload.key";\n};\n' "$tmp" >"$tmp/bad.conf"
expect_broken "missing required setting" "1: upload.base_url: "
{
	upload_section ''
	printf 'watch = (\n  { path = "srv/in"; }\n);\n'
} >"$tmp/bad.conf"
expect_broken "relative watch path" "7: watch[0].path: "
{
	upload_section ''
	printf 'watch = (\n  { path = "/srv/in"; },\n  { path = "/srv/in/lab"; }\n);\n'
} >"$tmp/bad.conf"
expect_broken "overlapping watch folders" "8: watch[1].path: "
{
	upload_section ''
	printf 'watch = (\n  { path = "/srv/in";\n    after_upload = "move:/srv/in/sent"; }\n);\n'
} >"$tmp/bad.conf"
expect_broken "move: folder inside its watch" "8: watch[0].after_upload: "
printf 'upload: {\n  base_url = "http://upload.example/v1";\n  api_key_file = "%s/upload.key";\n};\n' "$tmp" >"$tmp/bad.conf"
expect_broken "http:// to another machine" "2: upload.base_url: "
printf 'upload: {\n  base_url = "https://upload.example";\n  api_key_file = "%s/absent.key";\n};\n' "$tmp" >"$tmp/bad.conf"
expect_broken "missing key file" "3: upload.api_key_file: "
: >"$tmp/empty.key"
chmod 0600 "$tmp/empty.key"
printf 'upload: {\n  base_url = "https://upload.example";\n  api_key_file = "%s/empty.key";\n};\n' "$tmp" >"$tmp/bad.conf"
expect_broken "empty key file" "3: upload.api_key_file: "
printf '%s\n' "$upload_key" >"$tmp/open.key"
chmod 0644 "$tmp/open.key"
printf 'upload: {\n  base_url = "https://upload.example";\n  api_key_file = "%s/open.key";\n};\n' "$tmp" >"$tmp/bad.conf"
expect_broken "world-readable key file" "3: upload.api_key_file: "
chmod 0660 "$tmp/open.key"
expect_broken "group-writable key file" "3: upload.api_key_file: "
chmod 0600 "$tmp/open.key"
ln -s open.key "$tmp/link.key"
printf 'upload: {\n  base_url = "https://upload.example";\n  api_key_file = "%s/link.key";\n};\n' "$tmp" >"$tmp/bad.conf"
expect_broken "symlinked key file" "3: upload.api_key_file: "
# libconfig exits the process reading a folder as an @include: refused first.
{
	upload_section ''
	printf '@include "."\n'
} >"$tmp/bad.conf"
expect_broken "@include of a folder" "6: @include \".\": is not a regular file"
{
	upload_section ''
	printf 'mirror: {\n  base_url = "https://api.healos.ai/ext-api/v1";\n'
	printf '  api_key_file = "%s/records.key";\n  schedule = "0 2 * *";\n};\n' "$tmp"
} >"$tmp/bad.conf"
expect_broken "cron schedule without 5 fields" "9: mirror.schedule: "
{
	upload_section ''
	printf 'mirror: {\n  base_url = "https://api.healos.ai/ext-api/v1";\n'
	printf '  api_key_file = "%s/records.key";\n  schedule = "0 24 * * mon-fri";\n};\n' "$tmp"
} >"$tmp/bad.conf"
expect_broken "cron hour out of range" "9: mirror.schedule: "
if grep -q "field 2 (hour)" "$tmp/err"; then ok "the cron error names the field"; else not_ok "the cron error names the field"; fi
if grep -q -e "$upload_key" -e "$records_key" "$tmp/err"; then
	not_ok "errors never show a key"
else
	ok "errors never show a key"
fi

# A good file: exit 0, the effective config on stdout, the keys redacted.
# Its watch folder exists: a missing one is a warning on stderr.
mkdir -p "$tmp/in"
cat >"$tmp/good.conf" <<EOF
state_dir = "$tmp/state";
$(upload_section 'bandwidth = "08:00,2MiB/s 18:00,off";')
watch = ( { path = "$tmp/in"; remote_prefix = "lab/"; } );
mirror: {
  base_url = "https://api.healos.ai/ext-api/v1";
  api_key_file = "$tmp/records.key";
};
EOF
run "$HEALSYNC" -c "$tmp/good.conf"
if [ "$rc" -eq 0 ] && [ ! -s "$tmp/err" ] &&
	grep -q "^# healsync: effective configuration of $tmp/good.conf\$" "$tmp/out" &&
	[ "$(grep -c '^  api_key = "<redacted>";$' "$tmp/out")" -eq 2 ] &&
	grep -q '^  part_size = "16MiB";$' "$tmp/out"; then
	ok "good config: exit 0, effective config printed"
else
	not_ok "good config: exit 0, effective config printed (exit $rc)"
fi
if grep -q -e "$upload_key" -e "$records_key" "$tmp/out"; then
	not_ok "check-config never prints a key"
else
	ok "check-config never prints a key"
fi

# The shipped sample loads, given its key files (its watch folder may not
# exist here: only that warning may be on stderr).
sed "s|\"/etc/healsync/|\"$tmp/|" "$HS_SRCDIR/conf/healsync.conf" >"$tmp/sample.conf"
run "$HEALSYNC" -c "$tmp/sample.conf"
if [ "$rc" -eq 0 ] && ! grep -qv '^healsync: warning: watch folder ' "$tmp/err"; then
	ok "the sample healsync.conf is valid"
else
	not_ok "the sample healsync.conf is valid (exit $rc)"
fi

# HEALSYNC_CONFIG names the file when -c does not; -c wins.
run HEALSYNC_CONFIG="$tmp/good.conf" "$HEALSYNC"
if [ "$rc" -eq 0 ] && grep -q "^# healsync: effective configuration of $tmp/good.conf\$" "$tmp/out"; then
	ok "HEALSYNC_CONFIG is honoured"
else
	not_ok "HEALSYNC_CONFIG is honoured (exit $rc)"
fi
run HEALSYNC_CONFIG="$tmp/bad.conf" "$HEALSYNC"
case $(head -n 1 "$tmp/err") in
"healsync: $tmp/bad.conf:"*) named=yes ;;
*) named=no ;;
esac
if [ "$rc" -eq 78 ] && [ "$named" = yes ]; then
	ok "HEALSYNC_CONFIG: errors name that file"
else
	not_ok "HEALSYNC_CONFIG: errors name that file (exit $rc)"
fi
run HEALSYNC_CONFIG="$tmp/absent.conf" "$HEALSYNC" -c "$tmp/good.conf"
if [ "$rc" -eq 0 ]; then
	ok "-c wins over HEALSYNC_CONFIG"
else
	not_ok "-c wins over HEALSYNC_CONFIG (exit $rc)"
fi

# CREDENTIALS_DIRECTORY: keys come from there, by the key file's base name.
mkdir "$tmp/creds"
printf 'creds-upload-secret-1b2c\n' >"$tmp/creds/upload.key"
printf 'creds-records-secret-3d4e\n' >"$tmp/creds/records.key"
chmod 0400 "$tmp/creds/upload.key" "$tmp/creds/records.key"
sed "s|$tmp/upload.key|/nonexistent/upload.key|; s|$tmp/records.key|/nonexistent/records.key|" \
	"$tmp/good.conf" >"$tmp/creds.conf"
run "$HEALSYNC" -c "$tmp/creds.conf"
case $(head -n 1 "$tmp/err") in
"healsync: $tmp/creds.conf:4: upload.api_key_file: /nonexistent/upload.key: "*) named=yes ;;
*) named=no ;;
esac
if [ "$rc" -eq 78 ] && [ "$named" = yes ]; then
	ok "without CREDENTIALS_DIRECTORY the key file itself is read"
else
	not_ok "without CREDENTIALS_DIRECTORY the key file itself is read (exit $rc)"
fi
run CREDENTIALS_DIRECTORY="$tmp/creds" "$HEALSYNC" -c "$tmp/creds.conf"
if [ "$rc" -eq 0 ] && [ ! -s "$tmp/err" ] && ! grep -q 'creds-.*-secret' "$tmp/out"; then
	ok "CREDENTIALS_DIRECTORY is honoured"
else
	not_ok "CREDENTIALS_DIRECTORY is honoured (exit $rc)"
fi
rm "$tmp/creds/records.key"
run CREDENTIALS_DIRECTORY="$tmp/creds" "$HEALSYNC" -c "$tmp/creds.conf"
case $(head -n 1 "$tmp/err") in
"healsync: $tmp/creds.conf:"*": mirror.api_key_file: $tmp/creds/records.key"*) named=yes ;;
*) named=no ;;
esac
if [ "$rc" -eq 78 ] && [ "$named" = yes ]; then
	ok "CREDENTIALS_DIRECTORY: a missing credential is named"
else
	not_ok "CREDENTIALS_DIRECTORY: a missing credential is named (exit $rc)"
fi

echo "1..$n"
