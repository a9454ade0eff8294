#!/bin/bash
# check_config.sh - the command line around the configuration, run for real:
# "ctflowd -n" on the shipped file and on every sample in tests/config, plus
# a missing file, a bad option and -V.  Needs no privileges and no network.
#
# Environment: CTFLOWD (the binary), SRCDIR (the source tree; defaults to
# the tree this script is in).  Prints "ok - ..." or "not ok - ..." per
# check and exits non-zero if any failed.
set -u

if [[ -z "${CTFLOWD:-}" || ! -x "$CTFLOWD" ]]; then
	echo "not ok - CTFLOWD is not set to an executable: '${CTFLOWD:-}'"
	exit 1
fi
SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

passed=0
failed=0

# check NAME CONDITION...: one result line; on failure what ctflowd said.
check() {
	local name=$1
	shift
	if "$@"; then
		echo "ok - $name"
		passed=$((passed + 1))
	else
		echo "not ok - $name"
		failed=$((failed + 1))
		echo "#   exit status: $status"
		sed 's/^/#   stdout: /' "$tmp/out" | head -n 20
		sed 's/^/#   stderr: /' "$tmp/err" | head -n 20
	fi
}

# run ARGS...: runs ctflowd; leaves $status, $tmp/out and $tmp/err.
run() {
	"$CTFLOWD" "$@" </dev/null >"$tmp/out" 2>"$tmp/err"
	status=$?
}

stdout_has() { grep -qF -- "$1" "$tmp/out"; }
stderr_has() { grep -qF -- "$1" "$tmp/err"; }
status_is() { [[ $status -eq $1 ]]; }
# N lines, the first "ctflowd: " then the message (a run reports every problem).
stderr_lines_are() { [[ $(wc -l <"$tmp/err") -eq $1 && $(head -c 9 "$tmp/err") == "ctflowd: " ]]; }
stderr_line_has() { sed -n "$1p" "$tmp/err" | grep -qF -- "$2"; }
further_lines_name() { ! tail -n +2 "$tmp/err" | grep -qvF -- "$1:"; }

# The effective settings, loaded again, print the same (OpenBGPD-style).
reloads_same() {
	local printed=$tmp/printed.conf
	[[ -s $tmp/out ]] || return 1
	cp "$tmp/out" "$printed"
	run -n -c "$printed"
	[[ $status -eq 0 ]] && cmp -s "$printed" "$tmp/out"
}

# --- the shipped configuration ---------------------------------------------

shipped=$SRCDIR/etc/ctflowd.conf
run -n -c "$shipped"
check "shipped ctflowd.conf: -n exits 0" status_is 0
check "shipped ctflowd.conf: prints [export json]" stdout_has "[export json]"
check "shipped ctflowd.conf: prints [export ipfix-file]" stdout_has "[export ipfix-file]"
check "shipped ctflowd.conf: prints reliable = yes" stdout_has "reliable = yes"
check "shipped ctflowd.conf: prints receive_buffer = 8388608" stdout_has "receive_buffer = 8388608"
check "shipped ctflowd.conf: prints the defaults too" stdout_has "dedup_window = 262144"
check "shipped ctflowd.conf: printed settings load back unchanged" reloads_same

# --- samples ----------------------------------------------------------------

shopt -s nullglob
good=("$SRCDIR"/tests/config/good-*.conf)
bad=("$SRCDIR"/tests/config/bad-*.conf)
shopt -u nullglob
check "tests/config has good samples" test ${#good[@]} -gt 0
check "tests/config has bad samples" test ${#bad[@]} -gt 0

for conf in "${good[@]}"; do
	name=${conf##*/}
	run -n -c "$conf"
	check "$name: -n exits 0" status_is 0
	check "$name: prints an [export] section" stdout_has "[export "
	check "$name: printed settings load back unchanged" reloads_same
done

# A bad sample starts with one "# expect: TEXT" line per problem; ctflowd
# reports them one a line, in that order, the first after "ctflowd: ".
for conf in "${bad[@]}"; do
	name=${conf##*/}
	mapfile -t expects < <(sed -n '/^# expect: /!q; s/^# expect: //p' "$conf")
	check "$name: has an '# expect: ' first line" test ${#expects[@]} -gt 0
	run -n -c "$conf"
	check "$name: -n exits 1" status_is 1
	check "$name: ${#expects[@]} line(s) on stderr, the first starting with 'ctflowd: '" \
		stderr_lines_are ${#expects[@]}
	check "$name: the message names the file" stderr_has "ctflowd: $conf"
	check "$name: every further line names the file" further_lines_name "$conf"
	for i in "${!expects[@]}"; do
		check "$name: stderr line $((i + 1)) has: ${expects[i]}" stderr_line_has $((i + 1)) "${expects[i]}"
	done
	check "$name: nothing on stdout" test ! -s "$tmp/out"
done

# --- the command line -------------------------------------------------------

missing=$tmp/no-such-dir/ctflowd.conf
run -n -c "$missing"
check "-c on a missing file: exits 1" status_is 1
check "-c on a missing file: 'ctflowd: ' and the file's name" stderr_has "ctflowd: $missing"
check "-c on a missing file: says it cannot be read" stderr_has "cannot read"

run --no-such-option
check "an unknown option: exits 2" status_is 2
check "an unknown option: says so on stderr" test -s "$tmp/err"

run -n -c "$shipped" surplus-argument
check "a stray argument: exits 2" status_is 2

version=$(sed -n "s/^[[:space:]]*version[[:space:]]*:[[:space:]]*'\([^']*\)'.*/\1/p" "$SRCDIR/meson.build" | head -n 1)
run -V
check "-V: exits 0" status_is 0
check "-V: prints 'ctflowd $version'" test "$(head -n 1 "$tmp/out")" = "ctflowd $version"

echo "# check_config: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
