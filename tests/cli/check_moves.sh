#!/bin/sh
# healsync check-config and the folders after_upload writes to, checked as
# the service user (here nobody, through setpriv: check-config run by a
# user other than root checks for that user):
# - a watch folder that does not exist is a warning (exit 0), with keep too,
#   and never gets ReadWritePaths= advice;
# - move: and delete: name every folder below the watch folder that the
#   user may not write (exit 78), with its owner, mode and the fix; keep
#   does not need write access;
# - a move: folder that does not exist is a warning, without
#   ReadWritePaths= advice; one the user may not write is named.
# TAP output; run by `make check` with HEALSYNC. Needs root and setpriv.
set -u

if [ -z "${HEALSYNC:-}" ] || [ ! -x "$HEALSYNC" ]; then
	echo "Bail out! HEALSYNC (${HEALSYNC:-unset}) is not an executable healsync"
	exit 1
fi
if [ "$(id -u)" -ne 0 ] || ! command -v setpriv >/dev/null 2>&1; then
	echo "1..0 # SKIP needs root and setpriv"
	exit 0
fi
unset HEALSYNC_CONFIG CREDENTIALS_DIRECTORY

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hs-cli-moves.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM
chmod 0755 "$tmp"
user=nobody
uid=$(id -u $user) || exit 1
gid=$(id -g $user) || exit 1

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
check() { # check DESCRIPTION COMMAND...: ok when COMMAND succeeds
	desc=$1
	shift
	if "$@"; then ok "$desc"; else not_ok "$desc (exit $rc)"; fi
}

printf '%s\n' cli-moves-upload-secret >"$tmp/upload.key"
chown "$uid:$gid" "$tmp/upload.key"
chmod 0600 "$tmp/upload.key"

# The lab's tree: the watch folder is the service user's, a subfolder the
# lab program made is not; the move folder is the user's.
mkdir -p "$tmp/lab/2026-12/ward3" "$tmp/lab/2026-12/ward4" "$tmp/sent" "$tmp/locked"
chown "$uid:$gid" "$tmp/lab" "$tmp/lab/2026-12" "$tmp/lab/2026-12/ward4" "$tmp/sent"
chmod 0755 "$tmp/lab/2026-12/ward3" "$tmp/locked"

# conf WATCH AFTER: a configuration with one watch folder.
conf() {
	cat >"$tmp/h.conf" <<EOF
state_dir = "$tmp/state";
upload: {
  base_url = "https://upload.example/ext-api/v1";
  api_key_file = "$tmp/upload.key";
};
watch = ( { path = "$1"; after_upload = "$2"; } );
EOF
	chmod 0644 "$tmp/h.conf"
}

# run: check-config as the service user; $rc, $tmp/out, $tmp/err.
run() {
	setpriv --reuid="$uid" --regid="$gid" --clear-groups \
		"$HEALSYNC" -c "$tmp/h.conf" check-config >"$tmp/out" 2>"$tmp/err"
	rc=$?
}

conf "$tmp/lba" keep
run
check "a missing watch folder with keep is a warning, exit 0" \
	[ "$rc" -eq 0 ]
check "it names the folder" \
	grep -q "^healsync: warning: watch folder $tmp/lba does not exist" "$tmp/err"

conf "$tmp/lba" "move:$tmp/sent"
run
check "a missing watch folder with move: is a warning, exit 0" [ "$rc" -eq 0 ]
check "and gets no ReadWritePaths= advice" sh -c "! grep -q ReadWritePaths=$tmp/lba '$tmp/err'"

conf "$tmp/lab" "move:$tmp/sent"
run
check "a subfolder the user may not write fails move: (exit 78)" [ "$rc" -eq 78 ]
check "it is named with the user, owner, mode and the fix" \
	grep -q "move:...\" needs write access to $tmp/lab/2026-12/ward3: .*user $user .*owner root.*mode 0755.*setfacl -R -m u:$user:rwX -m d:u:$user:rwX $tmp/lab" "$tmp/err"
check "only the folder at fault is named" \
	sh -c "[ \$(grep -c 'needs write access' '$tmp/err') -eq 1 ]"
check "the effective configuration is still printed" grep -q "watch" "$tmp/out"

conf "$tmp/lab" delete
run
check "delete: the same (exit 78)" [ "$rc" -eq 78 ]
check "delete: names the subfolder" \
	grep -q "delete\" needs write access to $tmp/lab/2026-12/ward3: " "$tmp/err"

conf "$tmp/lab" keep
run
check "keep needs no write access: exit 0, nothing on stderr" \
	sh -c "[ $rc -eq 0 ] && [ ! -s '$tmp/err' ]"

chown "$uid:$gid" "$tmp/lab/2026-12/ward3"
conf "$tmp/lab" "move:$tmp/sent"
run
check "all writable: exit 0, nothing on stderr" sh -c "[ $rc -eq 0 ] && [ ! -s '$tmp/err' ]"

conf "$tmp/lab" "move:$tmp/nowhere"
run
check "a missing move: folder is a warning, exit 0" [ "$rc" -eq 0 ]
check "it is named, without ReadWritePaths= advice" \
	sh -c "grep -q 'warning: move: folder $tmp/nowhere does not exist' '$tmp/err' &&
		! grep -q 'ReadWritePaths=$tmp/nowhere' '$tmp/err'"

conf "$tmp/lab" "move:$tmp/locked"
run
check "a move: folder the user may not write fails (exit 78)" [ "$rc" -eq 78 ]
check "it is named" grep -q "the move: folder needs write access to $tmp/locked: " "$tmp/err"

echo "1..$n"
