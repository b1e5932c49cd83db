#!/bin/sh
# The queue commands from the command line: exit codes (0, 1, 2, 78), one
# error line on stderr, valid JSON from --json, and the queue they leave.
# TAP output; run by `make check` with HEALSYNC and PYTHON set.
set -u

if [ -z "${HEALSYNC:-}" ] || [ ! -x "$HEALSYNC" ]; then
	echo "Bail out! HEALSYNC (${HEALSYNC:-unset}) is not an executable healsync"
	exit 1
fi
PYTHON=${PYTHON:-python3}
unset HEALSYNC_CONFIG CREDENTIALS_DIRECTORY

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hs-cli-commands.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

n=0
check() { # check DESCRIPTION COMMAND...: ok when COMMAND succeeds
	desc=$1
	shift
	n=$((n + 1))
	if "$@"; then
		echo "ok $n - $desc"
	else
		echo "not ok $n - $desc"
		sed 's/^/# out: /' "$tmp/out"
		sed 's/^/# err: /' "$tmp/err"
	fi
}
hs() { # hs ARGS...: runs healsync; $rc, $tmp/out and $tmp/err hold the result
	"$HEALSYNC" -c "$tmp/healsync.conf" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
}
is_json() { "$PYTHON" -c 'import json,sys; json.load(open(sys.argv[1]))' "$tmp/out"; }
one_line() { [ "$(wc -l <"$tmp/err")" -eq 1 ]; }
json_get() { # json_get EXPR: prints EXPR evaluated on the JSON output as d
	"$PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
		"$tmp/out" "$1"
}

printf 'cli-key-0123\n' >"$tmp/upload.key"
chmod 0600 "$tmp/upload.key"
mkdir "$tmp/lab"
cat >"$tmp/healsync.conf" <<CONF
state_dir = "$tmp/state";
upload: { base_url = "http://127.0.0.1:9/upload/v1"; api_key_file = "$tmp/upload.key"; };
watch = ( { path = "$tmp/lab"; remote_prefix = "lab/"; } );
CONF
printf 'report\n' >"$tmp/lab/a.pdf"
printf 'other\n' >"$tmp/b.txt"

hs --version
check "--version prints the version" grep -q '^healsync [0-9]' "$tmp/out"
check "--version names libcurl and its TLS library" grep -q '^libcurl [0-9.]* (.*)$' "$tmp/out"
check "--version names SQLite" grep -q '^SQLite [0-9]' "$tmp/out"
check "--version names libconfig" grep -q '^libconfig [0-9]' "$tmp/out"
check "--version names libsystemd" grep -q '^libsystemd ' "$tmp/out"
complete() { # complete WORD...: what the bash completion offers for the last word
	bash -c '. "$HS_SRCDIR/packaging/bash-completion/healsync"; COMP_WORDS=("$@")
		COMP_CWORD=$(($# - 1)); _healsync; echo "${COMPREPLY[*]}"' complete "$@"
}
if command -v bash >/dev/null && [ -n "${HS_SRCDIR:-}" ]; then
	check "bash completion offers the commands" \
		sh -c '[ "$1" = "pause purge" ]' - "$(complete healsync p)"
	check "and purge's states" sh -c '[ "$1" = "dead done" ]' - "$(complete healsync purge --state '')"
else
	n=$((n + 1))
	echo "ok $n - bash completion # SKIP needs bash and HS_SRCDIR"
fi
hs --help
check "--help lists the commands" grep -q 'enqueue FILE' "$tmp/out"
hs frobnicate
check "an unknown command exits 2" [ "$rc" -eq 2 ]
check "... with one line naming it" grep -q "unknown command 'frobnicate'" "$tmp/err"
hs
check "no command exits 2" [ "$rc" -eq 2 ]

hs enqueue "$tmp/lab/a.pdf" "$tmp/b.txt"
check "enqueue exits 0" [ "$rc" -eq 0 ]
check "a file in a watch folder gets the folder's remote name" grep -q ' lab/a.pdf$' "$tmp/out"
check "a file elsewhere is sent under its own name" grep -q ' b.txt$' "$tmp/out"
check "the state directory is not writable by its group" [ "$(stat -c %a "$tmp/state")" = 750 ]
hs enqueue "$tmp/nope.pdf" "$tmp/b.txt"
check "enqueue of a missing file exits 1" [ "$rc" -eq 1 ]
check "... with one error line naming the file" sh -c "grep -q 'nope.pdf' '$tmp/err' && [ \$(wc -l <'$tmp/err') -eq 1 ]"
hs enqueue "$tmp/lab"
check "enqueue of a directory exits 1" [ "$rc" -eq 1 ]
check "... saying it is not a regular file" grep -q 'not a regular file' "$tmp/err"
hs enqueue
check "enqueue without files exits 2" [ "$rc" -eq 2 ]

hs jobs --json
check "jobs --json exits 0" [ "$rc" -eq 0 ]
check "jobs --json is valid JSON" is_json
check "two jobs, the refreshed one not duplicated" [ "$(json_get 'len(d)')" = 2 ]
check "jobs are queued" [ "$(json_get 'sorted(j["state"] for j in d)')" = "['queued', 'queued']" ]
hs jobs --state queued
check "jobs --state queued lists both" [ "$(grep -c queued "$tmp/out")" -eq 2 ]
hs jobs --state bogus
check "jobs --state with an unknown state exits 2" [ "$rc" -eq 2 ]
check "... with one error line" one_line

hs status --json
check "status --json is valid JSON" is_json
check "status counts two queued jobs" [ "$(json_get 'd["queue"]["queued"]')" = 2 ]
check "status knows no daemon runs" [ "$(json_get 'd["daemon"]')" = None ]
hs status
check "status prints the counts" grep -q '^queue: 2 queued' "$tmp/out"

hs retry 1
check "retry of a queued job exits 1 (nothing to retry)" [ "$rc" -eq 1 ]
hs retry abc
check "retry of a non-number exits 2" [ "$rc" -eq 2 ]
hs retry
check "retry without ids or --failed exits 2" [ "$rc" -eq 2 ]
hs retry --failed
check "retry --failed with nothing failed exits 0" [ "$rc" -eq 0 ]
check "... and says so" grep -q '^0 jobs queued again' "$tmp/out"

printf 'upload: { ' >"$tmp/broken.conf"
"$HEALSYNC" -c "$tmp/broken.conf" jobs >"$tmp/out" 2>"$tmp/err"
rc=$?
check "a broken configuration exits 78" [ "$rc" -eq 78 ]
check "... with one line naming the file" sh -c "grep -q 'broken.conf' '$tmp/err' && [ \$(wc -l <'$tmp/err') -eq 1 ]"

# What ExecReload= runs before it signals: silent when the daemon would
# take the configuration, 78 and one line when it would refuse it.
hs check-config --quiet
check "check-config --quiet exits 0 for a good configuration" [ "$rc" -eq 0 ]
check "... and prints nothing" sh -c "[ ! -s '$tmp/out' ] && [ ! -s '$tmp/err' ]"
"$HEALSYNC" -c "$tmp/broken.conf" check-config --quiet >"$tmp/out" 2>"$tmp/err"
rc=$?
check "check-config --quiet exits 78 for a broken one" [ "$rc" -eq 78 ]
check "... with one line on stderr" one_line
hs check-config --loud
check "check-config with an unknown option exits 2" [ "$rc" -eq 2 ]

# Run by root, the queue commands act as the owner of state_dir, so that
# nothing they create there (queue, journal files, wake-up file) is left to
# root, where the daemon's user could not open it.
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
	chmod 0755 "$tmp"
	mkdir -m 0700 "$tmp/owned" && chown nobody: "$tmp/owned"
	sed "s|$tmp/state|$tmp/owned|" "$tmp/healsync.conf" >"$tmp/owned.conf"
	"$HEALSYNC" -c "$tmp/owned.conf" enqueue "$tmp/lab/a.pdf" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	check "enqueue run by root into a state_dir owned by nobody exits 0" [ "$rc" -eq 0 ]
	check "... and leaves nothing owned by root there" sh -c \
		"[ -f '$tmp/owned/queue.db' ] && [ -z \"\$(find '$tmp/owned' ! -user nobody)\" ]"
else
	n=$((n + 1))
	echo "ok $n - enqueue run by root acts as the owner of state_dir # SKIP needs root"
fi

echo "1..$n"
