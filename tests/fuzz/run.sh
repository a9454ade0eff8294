#!/bin/bash
# run.sh - builds the fuzz targets with clang's libFuzzer, ASan and UBSan,
# and runs each for a bounded time (one per CPU at a time), starting from its seed corpus
# (tests/fuzz/corpus/NAME).  New inputs go to a scratch copy, never into
# the source tree.  A fault prints the input that caused it; add that file
# to the corpus so that the replay tests keep it fixed.
#   tests/fuzz/run.sh [SECONDS [TARGET...]]     (default 40 s each, all targets)
# Prints one "fuzz NAME: ok|FAILED" line per target; exits 1 if any failed.
set -u
cd "$(dirname "$0")/../.." || exit 1
root=$PWD
seconds=${1:-40}
shift || true
targets=${*:-"fuzz_config fuzz_journal fuzz_landing fuzz_state"}
build=$root/build-fuzz

if [ ! -d "$build" ]; then
	CC=clang meson setup "$build" -Dfuzz=true -Db_sanitize=address,undefined \
		-Db_lundef=false >/dev/null || { echo "fuzz: cannot configure $build" >&2; exit 1; }
fi
# shellcheck disable=SC2086
ninja -C "$build" $(for t in $targets; do echo tests/fuzz/$t; done) >/dev/null ||
	{ echo "fuzz: build failed" >&2; exit 1; }

scratch=$(mktemp -d "${TMPDIR:-/tmp}/ctflowd-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
# run_one TARGET: fuzzes one target; its verdict line (and on failure what
# to reproduce it with) goes to $scratch/TARGET.result
run_one() {
	local t=$1 corpus=$scratch/$1 out=$scratch/$1.result
	mkdir -p "$corpus" "$scratch/$t-artifacts"
	cp "$root"/tests/fuzz/corpus/"${t#fuzz_}"/* "$corpus"/
	# TMPDIR: a target that faults leaves its scratch files in $scratch
	if TMPDIR=$scratch UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	   ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	   "$build/tests/fuzz/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$scratch/$t-artifacts/" "$corpus" >"$scratch/$t.log" 2>&1; then
		echo "fuzz $t: ok ($(grep -Eo 'Done [0-9]+ runs' "$scratch/$t.log" | awk '{print $2}') runs," \
			"$(grep -Eo 'cov: [0-9]+' "$scratch/$t.log" | tail -1 | awk '{print $2}') edges)" >"$out"
	else
		{
			echo "fuzz $t: FAILED"
			tail -40 "$scratch/$t.log"
			for a in "$scratch/$t-artifacts"/*; do
				[ -f "$a" ] || continue
				echo "input that failed ($(basename "$a")), base64:"
				base64 "$a"
			done
		} >"$out"
	fi
}

# one target per CPU at a time: each fuzzer is single-threaded
jobs=$(nproc 2>/dev/null || echo 1)
running=0
for t in $targets; do
	if [ "$running" -ge "$jobs" ]; then
		wait -n
		running=$((running - 1))
	fi
	run_one "$t" &
	running=$((running + 1))
done
wait
status=0
for t in $targets; do
	if [ -f "$scratch/$t.result" ]; then
		cat "$scratch/$t.result"
		grep -q "^fuzz $t: ok" "$scratch/$t.result" || status=1
	else
		echo "fuzz $t: FAILED (no verdict)"
		status=1
	fi
done
exit $status
