#!/bin/bash
# handover_foreign.sh - a socket offered on handover.sock by anyone but a
# holder ctflowd left is not used.
#
# The state directory is root's, as ctflowd requires, but whoever can put a
# listener at state_directory/handover.sock (here: bound as root, listening
# as uid nobody, which is what the peer credentials show) could hand
# ctflowd a netlink socket it reads too, or one that a filter blinds.
#
#   case uid      fake_holder.py listens as nobody and offers its own
#                 NETLINK_NETFILTER socket subscribed to DESTROY events
#   case locked   the same as root, but the socket carries a socket filter
#                 that drops every message, locked to it (SO_LOCK_FILTER)
#
# Judged, for each: ctflowd logs one line saying why it refused the socket,
# does not log that it took one over, subscribes a socket of its own (not
# the fake's inode), and exports every one of N flows that end afterwards
# exactly once with exact counters.
#
#   case filter   a holder of ctflowd's uid hands over a socket with a
#                 filter that drops every message, not locked, and reads it
#                 no more, as a holder does
#
# Judged: ctflowd takes the socket over (the fake's inode), logs that it
# removed the filter it found, and exports every one of N flows exactly
# once: a filter on a handed-over socket never decides what ctflowd sees.
# The same with a filter configured (filter_protocols = udp): the
# configured filter replaces the foreign one.
#
#   case asker    the other way round: a holder left by a stopped ctflowd
#                 is asked for its socket by a process of uid nobody (given
#                 CAP_DAC_OVERRIDE, so that it reaches handover.sock)
#
# Judged: the asker gets no descriptor, the holder keeps the socket, and the
# next ctflowd takes it over from it.
#
# Environment: see lib.sh.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ctf_require_root
ctf_require_cmd "$PYTHON" "$CTFLOWD" id setpriv
id nobody >/dev/null 2>&1 || { echo "1..0 # SKIP no user nobody"; exit 77; }

N=300 PKTS=2 LEN=50 SPORT=1024
BYTES=$((PKTS * (28 + LEN)))

ctf_setup
SOCK=$CTF_WORK/state/handover.sock
NOBODY=$(id -u nobody)

# flows_then_stop NAME DPORT JSON PID LOG FAKE: N flows end; each must be in
# JSON once with exact counters; then ctflowd PID and the fake holder stop
flows_then_stop() {
	local name=$1 dport=$2 json=$3 got
	ctf_gen_udp $N "$dport" $SPORT $PKTS $LEN || ctf_not_ok "$name: workload of $N flows"
	ctf_ct_flush
	ctf_wait_json_flows "$json" "$dport" $PKTS $BYTES $N 60
	got=$(ctf_json_flows "$json" "$dport" $PKTS $BYTES)
	ctf_is "$got" "$N $N $N" "$name: all $N flows exported once, counters exact (distinct records exact)"
	ctf_stop_clean "$4" "$name: ctflowd" "$5"
	ctf_stop "$6"
}

# run_case NAME DPORT WANT_LOG FAKE_ARGS...: one fake holder, one ctflowd
run_case() {
	local name=$1 dport=$2 want=$3 dir conf log json fake pid line fake_inode mine
	shift 3
	dir=$CTF_WORK/$name
	mkdir -p "$dir"
	conf=$dir/ctflowd.conf log=$dir/ctflowd.log json=$dir/flows.json
	ctf_ctflowd_conf "$conf"
	ctf_conf_json_file "$conf" json "$json"

	ctf_start_fake_holder "$dir" "$SOCK" "$@"
	fake=$CTF_LAST_PID
	fake_inode=$(ctf_ct_listener_inode "$fake")
	ctf_diag "$name: fake holder $fake ($(cat "$dir/fake.ready")) offers socket inode $fake_inode"

	ctf_start_ctflowd "$conf" "$log" || ctf_bail "$name: ctflowd did not start"
	pid=$CTF_LAST_PID
	line=$(grep 'refusing the conntrack event socket' "$log")
	if [ "$(printf '%s\n' "$line" | grep -c .)" = 1 ] && printf '%s\n' "$line" | grep -q -- "$want"; then
		ctf_ok "$name: ctflowd logs: ${line#* warning: }"
	else
		ctf_not_ok "$name: ctflowd logs one line refusing the socket ($want)" "log: ${line:-none}"
		ctf_diag_file "$log" 10
	fi
	ctf_is "$(grep -c 'took over the conntrack event socket' "$log")" 0 \
		"$name: ctflowd does not say it took a socket over"
	mine=$(ctf_ct_listener_inode "$pid")
	ctf_is "$([ -n "$mine" ] && [ "$mine" != "$fake_inode" ] && echo own || echo "${mine:-none}")" own \
		"$name: ctflowd reads a socket of its own (inode $mine, the fake's $fake_inode)"

	flows_then_stop "$name" "$dport" "$json" "$pid" "$log" "$fake"
}

run_case uid 21000 "by a process of uid $NOBODY" --uid nobody
run_case locked 21001 "a socket filter of 1 instructions is locked to it" --filter --lock

# replaced NAME DPORT FILTER_KEYS: a foreign, unlocked filter on the socket
# handed over; ctflowd with FILTER_KEYS in [source] takes it and sees all
replaced() {
	local name=$1 dport=$2 keys=$3 dir conf log json fake pid fake_inode
	dir=$CTF_WORK/$name
	mkdir -p "$dir"
	conf=$dir/ctflowd.conf log=$dir/ctflowd.log json=$dir/flows.json
	ctf_ctflowd_conf "$conf"
	[ -n "$keys" ] && printf '%s\n' "$keys" >>"$conf"
	ctf_conf_json_file "$conf" json "$json"
	ctf_start_fake_holder "$dir" "$SOCK" --filter --no-read
	fake=$CTF_LAST_PID
	fake_inode=$(ctf_ct_listener_inode "$fake")
	ctf_start_ctflowd "$conf" "$log" || ctf_bail "$name: ctflowd did not start"
	pid=$CTF_LAST_PID
	ctf_is "$(grep -c 'removed the socket filter (1 classic BPF instructions)' "$log")/$(grep -c 'took over the conntrack event socket' "$log")" \
		1/1 "$name: ctflowd removes the foreign filter and takes the socket over"
	ctf_is "$(ctf_ct_listener_inode "$pid")" "$fake_inode" "$name: ctflowd reads the socket handed over"
	flows_then_stop "$name" "$dport" "$json" "$pid" "$log" "$fake"
}

replaced filter 21002 ""
replaced filter-configured 21003 "filter_protocols = udp"

# ------------------------------------------------------------------ asker
DIR=$CTF_WORK/asker
mkdir -p "$DIR"
CONF=$DIR/ctflowd.conf
CTF_HANDOVER=30s ctf_ctflowd_conf "$CONF"
ctf_conf_json_file "$CONF" json "$DIR/flows.json"
ctf_start_ctflowd "$CONF" "$DIR/ctflowd-1.log" || ctf_bail "asker: ctflowd did not start"
PID1=$CTF_LAST_PID
INODE1=$(ctf_ct_listener_inode "$PID1")
ctf_stop_clean "$PID1" "asker: the first ctflowd" "$DIR/ctflowd-1.log"
ctf_check_holder "$INODE1" "the first ctflowd's socket"
HOLDER=$CTF_HOLDER
got=$(ctf_nsx "$NS_RTR" setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups \
	--inh-caps=+dac_override --ambient-caps=+dac_override "$PYTHON" -c '
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
s.connect(sys.argv[1])
try:
    msg, fds, _, _ = socket.recv_fds(s, 16, 4)
except socket.timeout:
    fds = []
print("uid=%d fds=%d" % (os.geteuid(), len(fds)))' "$SOCK" 2>&1)
ctf_is "$got" "uid=$NOBODY fds=0" "asker: a process of uid nobody that asks the holder gets no descriptor"
ctf_check_holder "$INODE1" "the socket after it refused the asker"
ctf_start_ctflowd "$CONF" "$DIR/ctflowd-2.log" || ctf_bail "asker: the second ctflowd did not start"
PID2=$CTF_LAST_PID
ctf_check_takeover "$PID2" "$DIR/ctflowd-2.log" "$INODE1" "$HOLDER" "$SOCK"
ctf_stop_clean "$PID2" "asker: the second ctflowd" "$DIR/ctflowd-2.log"
ctf_end_holders

ctf_done
