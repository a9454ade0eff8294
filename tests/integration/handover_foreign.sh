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
# configured filter replaces the foreign one.  Both warn.
#
#   case own      ctflowd with a filter stops and leaves its socket to a
#                 holder; the next one with the same configuration takes
#                 it: no refusal and no warning, the same socket, and every
#                 one of N flows exported once.
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
run_case locked 21001 "its socket filter is locked (SO_LOCK_FILTER, 1 instructions" --filter --lock

# replaced NAME DPORT FILTER_KEYS WANT_LOG: a foreign, unlocked filter on the
# socket handed over; ctflowd with FILTER_KEYS in [source] takes it, warns
# (WANT_LOG) and sees all
replaced() {
	local name=$1 dport=$2 keys=$3 want=$4 dir conf log json fake pid fake_inode
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
	ctf_is "$(grep -c "socket filter (1 instructions) that is not this configuration's.*$want" "$log")/$(grep -c 'took over the conntrack event socket' "$log")" \
		1/1 "$name: ctflowd takes the socket over and warns: the foreign filter $want"
	ctf_is "$(ctf_ct_listener_inode "$pid")" "$fake_inode" "$name: ctflowd reads the socket handed over"
	flows_then_stop "$name" "$dport" "$json" "$pid" "$log" "$fake"
}

replaced filter 21002 "" "removed, as none is configured"
replaced filter-configured 21003 "filter_protocols = udp" "replaced by the configured one"

# first_in_holder NAME WHAT [SOURCE_KEY]: a ctflowd (a JSON export, the
# socket left to a holder for 30 s, SOURCE_KEY added to [source]) starts
# and stops; the holder must keep its socket (WHAT names it).  Sets DIR,
# CONF, INODE1 and HOLDER.
first_in_holder() {
	DIR=$CTF_WORK/$1
	mkdir -p "$DIR"
	CONF=$DIR/ctflowd.conf
	CTF_HANDOVER=30s ctf_ctflowd_conf "$CONF"
	[ -z "${3:-}" ] || echo "$3" >>"$CONF"
	ctf_conf_json_file "$CONF" json "$DIR/flows.json"
	ctf_start_ctflowd "$CONF" "$DIR/ctflowd-1.log" || ctf_bail "$1: ctflowd did not start"
	local pid=$CTF_LAST_PID
	INODE1=$(ctf_ct_listener_inode "$pid")
	ctf_stop_clean "$pid" "$1: the first ctflowd" "$DIR/ctflowd-1.log"
	ctf_check_holder "$INODE1" "$2"
	HOLDER=$CTF_HOLDER
}

# ------------------------------------------------------------------ own filter
# ctflowd's own filter on the socket it left in a holder is what the next
# ctflowd with the same configuration attaches: no warning, no refusal
first_in_holder own "own: the first ctflowd's filtered socket" "filter_protocols = udp"
ctf_start_ctflowd "$CONF" "$DIR/ctflowd-2.log" || ctf_bail "own: the second ctflowd did not start"
PID2=$CTF_LAST_PID
ctf_is "$(ctf_ct_listener_inode "$PID2")/$(grep -c "not this configuration's" "$DIR/ctflowd-2.log")" "$INODE1/0" \
	"own: the next ctflowd takes the socket with its own filter on it, without a warning"
flows_then_stop own 21004 "$DIR/flows.json" "$PID2" "$DIR/ctflowd-2.log" ""
ctf_end_holders

# ------------------------------------------------------------------ asker
first_in_holder asker "the first ctflowd's socket"
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
