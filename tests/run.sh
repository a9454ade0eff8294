#!/bin/bash
# run.sh - the whole test suite, as root on a Debian machine:
#   unit tests (GTest) and the integration tests that run the real daemon
#   against the kernel in network namespaces, judged by collectors from Debian
#   (nfdump, ipfixDump); then the unit tests and the daemon's main end-to-end
#   tests again built with ASan and UBSan; then each fuzz target for a bounded
#   time (CTF_FUZZ_SECONDS, 15 s; tests/fuzz/run.sh explores longer).
# Installs what it needs with apt-get, then ends with "N passed, N failed".
set -u
cd "$(dirname "$0")/.."

PACKAGES="build-essential meson ninja-build pkg-config libglib2.0-dev libfixbuf-dev
          libnetfilter-conntrack-dev libmnl-dev libfixbuf-tools nfdump ulogd2 conntrack
          nftables iproute2 iputils-ping python3 procps util-linux clang libclang-rt-14-dev pmacct tshark rsyslog"

if [ "${CTF_NO_APT:-0}" != 1 ]; then
    missing=$(for p in $PACKAGES; do dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
              grep -q "install ok installed" || echo "$p"; done)
    if [ -n "$missing" ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null && apt-get install -y -qq $missing >/dev/null ||
            { echo "cannot install: $missing" >&2; echo "0 passed, 1 failed"; exit 1; }
    fi
fi

passed=0
failed=0
count_results() {   # count_results BUILD_DIR: tallies meson's test log
    local log=$1/meson-logs/testlog.json p f
    [ -f "$log" ] || { failed=$((failed + 1)); return; }
    p=$(python3 -c 'import json,sys
print(sum(1 for l in open(sys.argv[1]) if json.loads(l)["result"] in ("OK","EXPECTEDFAIL")))' "$log")
    f=$(python3 -c 'import json,sys
print(sum(1 for l in open(sys.argv[1]) if json.loads(l)["result"] not in ("OK","EXPECTEDFAIL","SKIP")))' "$log")
    passed=$((passed + p)); failed=$((failed + f))
}

build() {   # build DIR [meson options]: a fresh configured build
    local dir=$1; shift
    { [ -d "$dir" ] && meson setup --reconfigure "$dir" "$@" >/dev/null; } ||
        meson setup "$dir" "$@" >/dev/null || return 1
    ninja -C "$dir" >/dev/null
}

phase_start=$SECONDS
phase_end() { echo "# $1: $((SECONDS - phase_start)) s"; phase_start=$SECONDS; }

if build build-test -Dwerror=true; then
    meson test -C build-test --print-errorlogs --num-processes 2
    count_results build-test
else
    echo "build failed" >&2; failed=$((failed + 1))
fi
phase_end "build and tests"

if build build-asan -Db_sanitize=address,undefined -Db_lundef=false; then
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        meson test -C build-asan --print-errorlogs --num-processes 2 \
            test_coalesce test_config test_ct_parse test_dedup test_flow_id test_spool test_journal \
            test_encoder_ipfix test_encoder_json fuzz_config fuzz_journal fuzz_landing fuzz_state test_sink test_transport \
            test_intake test_cursor test_landing test_ct_request test_state_dir test_datagrams test_ct_socket test_conn_state \
            flush-ipfix tcp-export json-stdout kill-worker supervisor-killed forged-events \
            test_encoder_netflow9 test_encoder_netflow5 test_encoder_syslog \
            test_failover failover test_ct_filter filters test_ct_labels nat-events interim
    count_results build-asan
else
    echo "sanitizer build failed" >&2; failed=$((failed + 1))
fi
phase_end "build and tests under ASan and UBSan"

# the fuzz targets, each for a bounded time from its seed corpus
while read -r line; do
	echo "$line"
	case $line in
	"fuzz "*": ok"*) passed=$((passed + 1)) ;;
	"fuzz "*": FAILED"* | "fuzz: "*) failed=$((failed + 1)) ;;
	esac
done < <("$PWD/tests/fuzz/run.sh" "${CTF_FUZZ_SECONDS:-15}" 2>&1)
phase_end "fuzz targets"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
