#!/bin/bash
# handover_netns.sh - a held socket of another network namespace is not
# used.
#
# A socket keeps the namespace it was made in.  A holder left by a run with
# `netns = X` offers X's socket; a ctflowd started then without netns
# (watching its own namespace) that took it would export X's flows and
# none of its own, and check sysctls and the guard in the wrong namespace.
#
#   run 1   netns = the server namespace, handover_timeout = 30s; stopped,
#           it leaves a holder with the server namespace's socket
#   run 2   no netns (the router's own); N flows in the router after its
#           start; stopped, it leaves a holder with the router's socket
#   run 3   netns = the server namespace again
#
# Judged: run 2 and run 3 each log one line refusing the held socket because
# it watches another namespace, do not say they took it over, read a new
# socket of their own namespace, and the holder that offered it ends (told
# the socket was refused) within 10 s; run 2 exports all N router flows
# exactly once with exact counters.
#
# Environment: see lib.sh.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ctf_require_root
ctf_require_cmd "$PYTHON" "$CTFLOWD"

N=300 PKTS=2 LEN=50 SPORT=1024 DPORT=22000
BYTES=$((PKTS * (28 + LEN)))
WANT='it watches another network namespace than the configured one'

ctf_setup
DIR=$CTF_WORK/netns
mkdir -p "$DIR"
X=$NS_SRV
JSON=$DIR/flows.json
CONF_X=$DIR/x.conf CONF_OWN=$DIR/own.conf
CTF_HANDOVER=30s ctf_ctflowd_conf "$CONF_X"
echo "netns = $X" >>"$CONF_X"
ctf_conf_json_file "$CONF_X" json "$JSON"
CTF_HANDOVER=30s ctf_ctflowd_conf "$CONF_OWN"
ctf_conf_json_file "$CONF_OWN" json "$JSON"

# start_in NS CONF LOG: ctflowd whose socket is made in NS (empty: the
# router's); pid in CTF_LAST_PID, its socket's inode in INODE
start_in() {
	local ns=$1 pid i
	ctf_spawn "$NS_RTR" "$3" "$CTFLOWD" -f -c "$2"
	pid=$CTF_LAST_PID INODE=
	for ((i = 0; i < 100; i++)); do
		ctf_alive "$pid" || break
		INODE=$(ctf_ct_listener_inode "$pid" "$ns") && break
		sleep 0.1
	done
	[ -n "$INODE" ] || { ctf_diag_file "$3" 20; ctf_bail "ctflowd ($2) does not listen"; }
	CTF_LAST_PID=$pid
}

# holder_of NS INODE: the holder that keeps socket INODE made in NS
holder_of() {
	local h
	for h in $(ctf_holders_in "$1"); do
		[ "$(ctf_ct_listener_inode "$h" "$1")" = "$2" ] && { echo "$h"; return 0; }
	done
	return 1
}

# judge_refusal WHO LOG PID NS OLD_INODE HOLDER
judge_refusal() {
	local who=$1 log=$2 pid=$3 ns=$4 old=$5 holder=$6 line mine i
	line=$(grep 'refusing the conntrack event socket' "$log")
	if [ "$(printf '%s\n' "$line" | grep -c .)" = 1 ] && printf '%s\n' "$line" | grep -q "$WANT"; then
		ctf_ok "$who logs: ${line#* warning: }"
	else
		ctf_not_ok "$who logs one line refusing the socket of another namespace" "log: ${line:-none}"
		ctf_diag_file "$log" 10
	fi
	ctf_is "$(grep -c 'took over the conntrack event socket' "$log")" 0 \
		"$who does not say it took the socket over"
	local where=${ns:-$NS_RTR}
	mine=$(ctf_ct_listener_inode "$pid" "$ns")
	ctf_is "$([ -n "$mine" ] && [ "$mine" != "$old" ] && echo new || echo "${mine:-none}")" new \
		"$who reads a new socket of $where (inode $mine; offered: $old)"
	for ((i = 0; i < 100; i++)); do ctf_alive "$holder" || break; sleep 0.1; done
	ctf_is "$(ctf_alive "$holder" && echo alive || echo gone)" gone \
		"the holder ($holder) that offered it ends"
}

# ------------------------------------------------------------------ run 1: netns = X

start_in "$X" "$CONF_X" "$DIR/ctflowd-1.log"
PID1=$CTF_LAST_PID INODE1=$INODE
ctf_ok "run 1 (netns = $X) listens in $X (inode $INODE1)"
ctf_stop_clean "$PID1" "run 1" "$DIR/ctflowd-1.log"
H1=$(holder_of "$X" "$INODE1") || ctf_bail "run 1 left no holder for socket $INODE1"
ctf_ok "a holder ($H1) keeps the socket of $X"

# ------------------------------------------------------------------ run 2: no netns

start_in "" "$CONF_OWN" "$DIR/ctflowd-2.log"
PID2=$CTF_LAST_PID
judge_refusal "run 2 (no netns)" "$DIR/ctflowd-2.log" "$PID2" "" "$INODE1" "$H1"
INODE2=$(ctf_ct_listener_inode "$PID2")

ctf_gen_udp $N $DPORT $SPORT $PKTS $LEN || ctf_not_ok "workload of $N flows in the router"
ctf_ct_flush
ctf_wait_json_flows "$JSON" $DPORT $PKTS $BYTES $N 60
ctf_is "$(ctf_json_flows "$JSON" $DPORT $PKTS $BYTES)" "$N $N $N" \
	"run 2 exports all $N router flows once, counters exact (distinct records exact)"
ctf_stop_clean "$PID2" "run 2" "$DIR/ctflowd-2.log"
H2=$(holder_of "" "$INODE2") || ctf_bail "run 2 left no holder for socket $INODE2"
ctf_ok "a holder ($H2) keeps the router's socket"

# ------------------------------------------------------------------ run 3: netns = X again

start_in "$X" "$CONF_X" "$DIR/ctflowd-3.log"
PID3=$CTF_LAST_PID
judge_refusal "run 3 (netns = $X)" "$DIR/ctflowd-3.log" "$PID3" "$X" "$INODE2" "$H2"
ctf_stop_clean "$PID3" "run 3" "$DIR/ctflowd-3.log"
for h in $(ctf_holders_in "$X") $(ctf_holders); do kill -TERM "$h" 2>/dev/null; done

ctf_done
