#!/bin/bash
# stuck_reader.sh - a worker whose reader stops making progress is noticed,
# killed and restarted by the supervisor, and no flow is lost or doubled.
#
# The reader thread beats a heartbeat the supervisor sees; a worker whose
# heartbeat stands still for 60 s (twice a resync's bound) is killed with
# SIGKILL and restarted.  To make a reader hang while the rest of the worker
# runs on (SIGSTOP would stop every thread), thread_stop.py stops only the
# thread named "reader" with ptrace.  In fresh namespaces (lib.sh), ctflowd
# (16 KiB reliable source, an IPFIX file export):
#   * 200 UDP flows are made and flushed; the worker exports them
#   * the worker's reader thread is stopped; its other threads still run
#     (the worker keeps logging statistics)
#   * 300 more flows are made and flushed while the reader is stopped: the
#     kernel queues their DESTROYs and parks what does not fit
#   * the supervisor must log that the worker has not read for 60 s and is
#     killed, no sooner than 55 s and no later than 90 s after the stop,
#     then that it restarts it; the new worker must take the waiting events
# Judged: all 500 flows are in the file export exactly once with exact
# counters (ipfix_verify.py), nothing is left parked, and ctflowd exits 0 on
# SIGTERM.
#
# Environment: see lib.sh.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ctf_require_root
ctf_require_cmd "$PYTHON" "$CTFLOWD"

N1=200 N2=300 PKTS=2 LEN=50 DPORT=20000 SPORT=1024
N=$((N1 + N2))
FWD_BYTES=$((PKTS * (28 + LEN)))
STALL_S=60          # the supervisor's bound (supervisor.c)
KILL_MIN_S=55 KILL_MAX_S=90

T_BEGIN=$(ctf_now)
ctf_setup
DIR=$CTF_WORK/stuck
mkdir -p "$DIR"
CONF=$DIR/ctflowd.conf LOG=$DIR/ctflowd.log EXPORT=$DIR/export.ipfix
export CTF_LIB_DIR

ctf_ctflowd_conf "$CONF"
ctf_conf_ipfix_file "$CONF" file "$EXPORT"
ctf_start_ctflowd "$CONF" "$LOG" || ctf_bail "ctflowd did not start (config $CONF)"
SUP=$CTF_LAST_PID

# wait_worker N MAX_S: wait until the N-th worker said it runs; pid in WORKER
wait_worker() {
	local i
	WORKER=
	for ((i = 0; i < $2 * 10; i++)); do
		ctf_alive "$SUP" || return 1
		[ "$(grep -c ' running: ' "$LOG")" -ge "$1" ] && WORKER=$(ctf_worker_of "$SUP") && return 0
		sleep 0.1
	done
	return 1
}
# stats_lines PID: how many statistics lines worker PID logged so far
stats_lines() { grep -c "ctflowd\[$1\] .* statistics: " "$LOG"; }

ctf_wait_worker "$SUP" "$LOG" || { ctf_diag_file "$LOG"; ctf_bail "no worker running under supervisor $SUP"; }
W1=$CTF_WORKER
ctf_ok "ctflowd runs: supervisor $SUP, worker $W1"

# --- the reader reads
ctf_gen_udp $N1 $DPORT $SPORT $PKTS $LEN || ctf_bail "workload of $N1 flows failed"
W_T0=$CTF_GEN_T0
ctf_ct_flush
if ctf_wait_stat_export "$LOG" file records $N1 30; then
	ctf_ok "worker $W1 exports the first $N1 flows"
else
	ctf_not_ok "worker $W1 exports the first $N1 flows" "$(ctf_last_stats "$LOG")"
fi

# --- its reader hangs
ctf_spawn "$NS_RTR" "$DIR/thread_stop.log" "$PYTHON" "$CTF_LIB_DIR/thread_stop.py" "$W1" reader \
	"$DIR/thread_stop.ready"
STOPPER=$CTF_LAST_PID
ctf_wait_file "$DIR/thread_stop.ready" 10 ||
	ctf_bail "cannot stop the reader thread: $(cat "$DIR/thread_stop.log")"
T_STALL=$(ctf_now)
ctf_ok "the reader thread of worker $W1 (tid $(cat "$DIR/thread_stop.ready")) is stopped"
s0=$(stats_lines "$W1")
sleep 3
s1=$(stats_lines "$W1")
ctf_check "worker $W1 runs on without its reader: it logged $((s1 - s0)) statistics lines in 3 s" \
	[ "$s1" -gt "$s0" ]

ctf_gen_udp $N2 $DPORT $((SPORT + N1)) $PKTS $LEN || ctf_diag "workload of $N2 flows incomplete"
W_T1=$CTF_GEN_T1
ctf_ct_flush
ctf_diag "$N2 flows flushed while the reader is stopped: $(ctf_ct_count) entries left in the table, $(ctf_ct_dying) parked"

# --- the supervisor notices
line=
for ((i = 0; i < (KILL_MAX_S + 5) * 5; i++)); do
	line=$(grep "worker $W1 has not read conntrack events for " "$LOG" | head -1)
	[ -n "$line" ] && break
	sleep 0.2
done
T_KILL=$(ctf_now)
after=$(ctf_elapsed "$T_STALL" "$T_KILL")
if [ -n "$line" ]; then
	ctf_ok "the supervisor logs the stuck reader: ${line#* warning: }"
	ctf_check "... $after s after the reader stopped (bound ${STALL_S} s: between $KILL_MIN_S and $KILL_MAX_S s)" \
		awk -v a="$after" -v lo=$KILL_MIN_S -v hi=$KILL_MAX_S 'BEGIN { exit !(a >= lo && a <= hi) }'
else
	ctf_not_ok "the supervisor logs the stuck reader within $KILL_MAX_S s" "$(ctf_worker_of "$SUP")"
	ctf_diag_file "$LOG" 20
fi
if wait_worker 2 15; then
	ctf_ok "a new worker $WORKER runs $(ctf_elapsed "$T_KILL") s later"
else
	ctf_not_ok "a new worker runs within 15 s"
fi
line=$(grep -E "worker $W1 was killed by signal 9.*restarting it in" "$LOG" | head -1)
ctf_check "the supervisor logs the kill and the restart: ${line#* warning: }" [ -n "$line" ]
ctf_alive "$W1" && ctf_not_ok "worker $W1 is gone" || ctf_ok "worker $W1 is gone"
ctf_stop "$STOPPER"

ctf_settle "$SUP"
ctf_stop_clean "$SUP" ctflowd "$LOG"
grep -E 'recovered [0-9]+ conntrack events' "$LOG" | sed 's/^.*\] /# ctflowd log: /'
grep ' final: ' "$LOG" | sed 's/^.*\] /# /'
WINDOW=$(awk -v a="$W_T1" -v b="$(ctf_now)" 'BEGIN { printf "%d", b - a + 2 }')

# ------------------------------------------------------------------ judge

if ctf_ipfix_verify "ipfix_verify.py (file export)" "$EXPORT" udp --input ipfix --require-flowid \
	--expect "name=udp proto=17 family=4 src=$CLI_IP dst=$SRV_IP dport=$DPORT sport=$SPORT-$((SPORT + N - 1)) count=$N pkts=$PKTS bytes=$FWD_BYTES rpkts=0 rbytes=0" \
	--t0 "$W_T0" --t1 "$W_T1" --window "$WINDOW"; then
	ctf_is "$(ctf_kv distinct "$CTF_V_CLS")/$(ctf_kv unmatched_records "$CTF_V_SUM")" "$N/0" \
		"file export: all $N flows arrived, from before and during the stall, no other record (distinct/other)"
	ctf_verify_exact "file export" ipfix $PKTS $FWD_BYTES
fi

ctf_diag "total $(ctf_elapsed "$T_BEGIN") s"
ctf_done
