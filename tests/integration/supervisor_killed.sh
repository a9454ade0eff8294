#!/bin/bash
# supervisor_killed.sh - a supervisor killed with SIGKILL in the middle of a
# flush leaves no worker reading on, and no flow is lost or doubled.
#
# The worker asks the kernel to tell it of its supervisor's death
# (PR_SET_PDEATHSIG).  It then stops as on SIGTERM and, holding the last copy
# of the conntrack event socket, leaves it to a holder, as the supervisor
# would have done; the next ctflowd takes it over.
#
#   * ctflowd with a 16 KiB reliable source, handover_timeout = 30s and two
#     IPFIX exports: UDP to nfcapd on the router's 127.0.0.1, and a file
#   * 50,000 two-packet IPv4 UDP flows (dport 20000, sports 1024..51023)
#   * `conntrack -F` starts, and while it runs the supervisor gets SIGKILL
#   * once the worker is gone, a new ctflowd starts with the same
#     configuration (the same state directory)
#
# Judged: the worker notices and is gone within WORKER_GONE_MAX seconds
# (its journal lock is free then); a holder keeps the socket the first
# ctflowd opened; the new ctflowd takes that socket over from it; the table
# ends empty with nothing parked; every one of the 50,000 flows reached
# nfcapd (nfdump) and the file (ipfix_verify.py) exactly once by 5-tuple with
# exact counters, flowIds unique.  A plain netlink listener (ctlisten)
# records what the kernel reported, to tell a loss from a harness fault.
#
# Environment: see lib.sh; CTF_KILL_AFTER (0.05): seconds from the start of
# `conntrack -F` to the kill.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ctf_require_root
ctf_require_cmd nfcapd nfdump "$PYTHON" "$CTLISTEN" "$CTFLOWD"
export TZ=UTC   # nfdump prints local time; the scorer reads UTC

N=50000 PKTS=2 LEN=50 DPORT=20000 SPORT=1024
FWD_BYTES=$((PKTS * (28 + LEN)))
PORT=4739
HANDOVER=30s
KILL_AFTER=${CTF_KILL_AFTER:-0.05}
# "within a few seconds", with room for a loaded 2-core machine
WORKER_GONE_MAX=10

T_BEGIN=$(ctf_now)
ctf_setup
DIR=$CTF_WORK/orphan
mkdir -p "$DIR"
CONF=$DIR/ctflowd.conf LOG1=$DIR/ctflowd-1.log LOG2=$DIR/ctflowd-2.log EXPORT=$DIR/export.ipfix
HANDOVER_SOCK=$CTF_WORK/state/handover.sock

# verify VIEW INPUT FILE [EXTRA...]: one decoder's view of the export, as
# separate checks
verify() {
	local view=$1 input=$2 file=$3 sum cls distinct other; shift 3
	ctf_ipfix_verify "$view" "$file" udp --input "$input" --seq report \
		--expect "name=udp proto=17 family=4 src=$CLI_IP dst=$SRV_IP dport=$DPORT sport=$SPORT-$((SPORT + N - 1)) count=$N pkts=$PKTS bytes=$FWD_BYTES rpkts=0 rbytes=0" \
		--t0 "$W_T0" --t1 "$W_T1" --window "$WINDOW" "$@" || return
	sum=$CTF_V_SUM cls=$CTF_V_CLS
	distinct=$(ctf_kv distinct "$cls"); other=$(ctf_kv unmatched_records "$sum")
	if [ "$distinct" = $N ] && [ "$other" = 0 ]; then
		ctf_ok "$view: all $N flows arrived, no record of any other flow"
	else
		ctf_not_ok "$view: all $N flows arrived, no record of any other flow" \
			"$distinct of $N distinct flows, $other records of other flows" \
			"$(ctf_batch_gaps "$input" "$file" $DPORT 1 $SPORT $N)"
	fi
	ctf_verify_exact "$view" "$input" $PKTS $FWD_BYTES
}

# ------------------------------------------------------------------ start

ctf_start_nfcapd "$DIR/nf" $PORT; NFCAPD=$CTF_LAST_PID
ctf_start_witness "$DIR"; WITNESS=$CTF_LAST_PID

CTF_HANDOVER=$HANDOVER ctf_ctflowd_conf "$CONF"
ctf_conf_udp_and_file "$CONF" $PORT "$EXPORT"
ctf_start_ctflowd "$CONF" "$LOG1" || ctf_bail "ctflowd did not start (config $CONF)"
SUP=$CTF_LAST_PID
INODE1=$(ctf_ct_listener_inode "$SUP")
ctf_wait_worker "$SUP" "$LOG1" || { ctf_diag_file "$LOG1" 20; ctf_bail "no worker under supervisor $SUP"; }
WORKER=$CTF_WORKER
# after the kill nobody else would stop it
CTF_PIDS+=("$WORKER")
ctf_ok "ctflowd starts: supervisor $SUP (socket inode $INODE1), worker $WORKER"

nf0=$(ctf_newflows); udp0=$(ctf_srv_udp_pkts)
W_T0=$(ctf_now)
out=$(ctf_nsx "$NS_CLI" "$FLOWGEN" udp -d $SRV_IP -n $N -P $PKTS -l $LEN -p $DPORT -S $SPORT 2>&1) ||
	ctf_diag "flowgen: $out"
W_T1=$(ctf_now)
created=$(($(ctf_newflows) - nf0)) pkts=$(($(ctf_srv_udp_pkts) - udp0))
ctf_is "$created/$pkts" "$N/$((N * PKTS))" \
	"workload: router created $N entries, every packet reached the server (entries/packets)"

# ------------------------------------------------------------------ the kill

T_FLUSH=$(ctf_now)
ctf_nsx "$NS_RTR" conntrack -F >"$DIR/flush.log" 2>&1 &
FLUSH=$!
CTF_PIDS+=("$FLUSH")
sleep "$KILL_AFTER"
flush_running=no; ctf_alive "$FLUSH" && flush_running=yes
count_at_kill=$(ctf_ct_count)
kill -KILL "$SUP"
T_KILL=$(ctf_now)
ctf_diag "supervisor $SUP killed $(ctf_elapsed "$T_FLUSH" "$T_KILL") s after conntrack -F started (flush still running: $flush_running; table at $count_at_kill entries)"

for ((i = 0; i < WORKER_GONE_MAX * 20; i++)); do ctf_alive "$WORKER" || break; sleep 0.05; done
T_GONE=$(ctf_now)
if ctf_alive "$WORKER"; then
	ctf_not_ok "the orphaned worker $WORKER is gone within $WORKER_GONE_MAX s of the kill" \
		"still running after $(ctf_elapsed "$T_KILL" "$T_GONE") s"
	ctf_diag_file "$LOG1" 20
	kill -KILL "$WORKER" 2>/dev/null
else
	ctf_ok "the orphaned worker $WORKER is gone $(ctf_elapsed "$T_KILL" "$T_GONE") s after the kill (<= $WORKER_GONE_MAX s)"
fi
line=$(grep "ctflowd\[$WORKER\] .*the supervisor is gone" "$LOG1" | head -1)
if [ -n "$line" ]; then
	ctf_ok "the worker logs: ${line#* warning: }"
else
	ctf_not_ok "the worker logs that the supervisor is gone"
	ctf_diag_file "$LOG1" 20
fi
ctf_check "the worker stopped cleanly, with its final statistics" grep -q "ctflowd\[$WORKER\] .* final: " "$LOG1"
line=$(grep "ctflowd\[$WORKER\] .*conntrack event socket held for a successor" "$LOG1")
if [ -n "$line" ]; then
	ctf_ok "the worker logs: ${line#* notice: }"
else
	ctf_not_ok "the worker says it left the socket to a holder" "no 'held for a successor' line from $WORKER"
fi
grep -E 'warning|critical' "$LOG1" | grep -v 'the supervisor is gone' | head -5 | sed 's/^/# ctflowd 1 log: /'
ctf_check_holder "$INODE1" "the socket the first ctflowd opened"
HOLDER1=$CTF_HOLDER

# ------------------------------------------------------------------ the next start

T_START2=$(ctf_now)
ctf_start_ctflowd "$CONF" "$LOG2" || ctf_bail "the second ctflowd did not start (config $CONF)"
PID2=$CTF_LAST_PID
for ((i = 0; i < 100; i++)); do grep -q ' running: ' "$LOG2" && break; sleep 0.1; done
ctf_check "the second ctflowd's worker runs (it got the journal)" grep -q ' running: ' "$LOG2"
ctf_check_takeover "$PID2" "$LOG2" "$INODE1" "$HOLDER1" "$HANDOVER_SOCK"

wait "$FLUSH"; flush_rc=$?
ctf_is "$flush_rc" 0 "conntrack -F succeeded"
ctf_settle "$PID2"

# ------------------------------------------------------------------ stop for good

ctf_stop_clean "$PID2" "the second ctflowd" "$LOG2" 60
grep ' final: ' "$LOG1" "$LOG2" | sed 's/^.*ctflowd-\([0-9]\)\.log:.*\] /# ctflowd \1: /'
grep -E 'warning|critical' "$LOG2" | head -5 | sed 's/^/# ctflowd 2 log: /'
# the second ctflowd leaves a holder of its own: end it rather than leave
# it to its timeout
ctf_end_holders

WINDOW=$(awk -v a="$W_T1" -v b="$(ctf_now)" 'BEGIN { printf "%d", b - a + 2 }')
sleep 0.5   # the last datagrams reach nfcapd
ctf_stop "$WITNESS"; ctf_stop "$NFCAPD"

# ------------------------------------------------------------------ judge

wit=$(ctf_witness_exact "$DIR/witness.txt" $DPORT $DPORT $PKTS $FWD_BYTES)
ctf_is "$wit" "$N $N" "the kernel reported all $N flows (ctlisten: distinct exact)"

ctf_verify_views "$DIR/nf" "$EXPORT"

ctf_diag "total $(ctf_elapsed "$T_BEGIN") s"
ctf_done
