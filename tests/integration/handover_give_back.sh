#!/bin/bash
# handover_give_back.sh - a ctflowd that fails after taking the held socket
# gives it back: the holder keeps it, and what it queued, for the next one.
#
#   run 1   handover_timeout = 60s; stopped, it leaves a holder
#   gap     N flows end (flushed) while only the holder has the socket: the
#           kernel queues their DESTROYs in it and parks the rest
#   run 2   manage_sysctls = no while the router's nf_conntrack_acct is 0:
#           it takes the socket, then fails its sysctl check and exits
#   run 3   nf_conntrack_acct back to 1, the configuration of run 1
#
# Judged: run 2 exits non-zero and logs that it gives the socket back; the
# same holder still keeps the same socket, still listening at handover.sock;
# run 3 takes that socket over from it, and exports all N flows of the gap
# exactly once with exact counters.
#
# Environment: see lib.sh.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ctf_require_root
ctf_require_cmd "$PYTHON" "$CTFLOWD"

N=500 PKTS=2 LEN=50 SPORT=1024 DPORT=23000
BYTES=$((PKTS * (28 + LEN)))

ctf_setup
DIR=$CTF_WORK/give-back
mkdir -p "$DIR"
SOCK=$CTF_WORK/state/handover.sock JSON=$DIR/flows.json
CONF=$DIR/ctflowd.conf STRICT=$DIR/strict.conf
CTF_HANDOVER=60s ctf_ctflowd_conf "$CONF"
ctf_conf_json_file "$CONF" json "$JSON"
CTF_HANDOVER=60s ctf_ctflowd_conf "$STRICT"
echo "manage_sysctls = no" >>"$STRICT"
ctf_conf_json_file "$STRICT" json "$JSON"

ctf_start_ctflowd "$CONF" "$DIR/ctflowd-1.log" || ctf_bail "run 1 did not start"
PID1=$CTF_LAST_PID
INODE1=$(ctf_ct_listener_inode "$PID1")
ctf_stop_clean "$PID1" "run 1" "$DIR/ctflowd-1.log"
ctf_check_holder "$INODE1" "run 1's socket"
HOLDER=$CTF_HOLDER
[ -n "$HOLDER" ] || ctf_bail "no holder"

ctf_gen_udp $N $DPORT $SPORT $PKTS $LEN || ctf_not_ok "workload of $N flows in the gap"
ctf_ct_flush

# run 2: takes the socket, then fails
ctf_nsx "$NS_RTR" sysctl -qw net.netfilter.nf_conntrack_acct=0 || ctf_bail "cannot set nf_conntrack_acct"
ctf_spawn "$NS_RTR" "$DIR/ctflowd-2.log" "$CTFLOWD" -f -c "$STRICT"
PID2=$CTF_LAST_PID
for ((i = 0; i < 150; i++)); do ctf_alive "$PID2" || break; sleep 0.1; done
ctf_stop "$PID2" 5
ctf_check "run 2 fails (exit status $CTF_STOP_STATUS, killed: $CTF_STOP_KILLED)" \
	test "$CTF_STOP_KILLED" = 0 -a "$CTF_STOP_STATUS" != 0
line=$(grep -E 'giving the conntrack event socket back' "$DIR/ctflowd-2.log")
if [ -n "$line" ] && grep -q 'nf_conntrack_acct' "$DIR/ctflowd-2.log"; then
	ctf_ok "run 2 fails its sysctl check and logs: ${line#* warning: }"
else
	ctf_not_ok "run 2 fails its sysctl check and gives the socket back" "log follows"
	ctf_diag_file "$DIR/ctflowd-2.log" 10
fi
ctf_nsx "$NS_RTR" sysctl -qw net.netfilter.nf_conntrack_acct=1 || ctf_bail "cannot reset nf_conntrack_acct"
ctf_check_holder "$INODE1" "run 1's socket after run 2 failed"
ctf_is "$CTF_HOLDER/$([ -S "$SOCK" ] && echo listening || echo gone)" "$HOLDER/listening" \
	"the same holder still listens at handover.sock (holder/socket)"

# run 3: takes it and delivers the gap
ctf_start_ctflowd "$CONF" "$DIR/ctflowd-3.log" || ctf_bail "run 3 did not start"
PID3=$CTF_LAST_PID
ctf_check_takeover "$PID3" "$DIR/ctflowd-3.log" "$INODE1" "$HOLDER" "$SOCK"
ctf_wait_json_flows "$JSON" $DPORT $PKTS $BYTES $N 60
ctf_settle "$PID3"
ctf_is "$(ctf_json_flows "$JSON" $DPORT $PKTS $BYTES)" "$N $N $N" \
	"run 3 exports all $N flows that ended in the gap once, counters exact (distinct records exact)"
ctf_stop_clean "$PID3" "run 3" "$DIR/ctflowd-3.log"
ctf_end_holders

ctf_done
