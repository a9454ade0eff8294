#!/bin/bash
# stop_watchdog.sh - a stop that cannot finish still ends at its bound, and
# an orphaned worker that ends that way still leaves the event socket, and
# the journal, to the next ctflowd.
#
# A destination that blocks for good (an export to a FIFO whose reader was
# stopped: write() never returns) keeps its thread from ending, so no phase
# of a stop can wait for it.  The worker's watchdog ends the stop at
# WORKER_STOP_LIMIT_MS (45 s) as a kill would.  Here the supervisor is gone
# too (SIGKILL), so nobody else would end the worker: it must end itself,
# after leaving the socket to a holder that keeps no other descriptor (the
# journal's lock is among the worker's).
#
#   * ctflowd: reliable, handover_timeout = 30s, two IPFIX exports: "file"
#     to a regular file, "stall" to a FIFO whose reader gets SIGSTOP
#   * 10,000 two-packet UDP flows (dport 20000) + flush: "stall" fills the
#     FIFO and blocks
#   * SIGKILL to the supervisor: the orphaned worker stops, and its stop
#     hangs on "stall" until the watchdog ends it
#   * while only the holder has the socket: 10,000 more flows (dport 20001)
#     + flush
#   * a new ctflowd (same configuration), the FIFO's reader resumed
#
# Judged: the worker ends itself at the bound (STOP_BOUND_S, with
# SLACK_S for the handover and a loaded machine), logging why; a holder
# keeps the first ctflowd's socket; the new ctflowd takes it over and its
# worker gets the journal; every one of the 20,000 flows is in the file
# export exactly once.
#
# Environment: see lib.sh.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ctf_require_root
ctf_require_cmd "$PYTHON" "$CTFLOWD" mkfifo

N_RUN=10000 RUNS=2 PKTS=2 LEN=50 DPORT=20000 SPORT=1024
N=$((N_RUN * RUNS))
FWD_BYTES=$((PKTS * (28 + LEN)))
HANDOVER=30s
STOP_BOUND_S=45   # WORKER_STOP_LIMIT_MS, the README's bound on a stop
SLACK_S=3

T_BEGIN=$(ctf_now)
ctf_setup
DIR=$CTF_WORK/watchdog
mkdir -p "$DIR"
CONF=$DIR/ctflowd.conf LOG1=$DIR/ctflowd-1.log LOG2=$DIR/ctflowd-2.log EXPORT=$DIR/export.ipfix
FIFO=$DIR/stall.fifo
HANDOVER_SOCK=$CTF_WORK/state/handover.sock

mkfifo "$FIFO" || ctf_bail "mkfifo $FIFO"
# opened read-write, the reader never sees an end of file when a writer
# goes, and a writer's open never waits for a reader
ctf_spawn "$NS_RTR" "$DIR/reader.log" sh -c "exec cat >/dev/null <>'$FIFO'"
READER=$CTF_LAST_PID
ctf_cont_at_exit "$READER"

CTF_HANDOVER=$HANDOVER ctf_ctflowd_conf "$CONF"
ctf_conf_ipfix_file "$CONF" file "$EXPORT"
ctf_conf_ipfix_file "$CONF" stall "$FIFO" 200ms
ctf_start_ctflowd "$CONF" "$LOG1" || ctf_bail "ctflowd did not start (config $CONF)"
SUP=$CTF_LAST_PID
INODE1=$(ctf_ct_listener_inode "$SUP")
ctf_wait_worker "$SUP" "$LOG1" || { ctf_diag_file "$LOG1" 20; ctf_bail "no worker under supervisor $SUP"; }
WORKER=$CTF_WORKER
CTF_PIDS+=("$WORKER")
kill -STOP "$READER"
ctf_ok "ctflowd runs (supervisor $SUP, worker $WORKER); the reader of the \"stall\" FIFO is stopped"

ctf_gen_udp $N_RUN $DPORT $SPORT $PKTS $LEN || ctf_bail "the first run did not create its $N_RUN entries"
W_T0=$CTF_GEN_T0
ctf_ct_flush
ctf_wait_stat_export "$LOG1" file records $N_RUN 30 ||
	ctf_diag "the file export had $(ctf_stat_export "$(ctf_last_stats "$LOG1")" file records) of $N_RUN records after 30 s"
stalled=$(ctf_stat_export "$(ctf_last_stats "$LOG1")" stall records)
ctf_check "\"stall\" is stuck: it delivered ${stalled:-?} of $N_RUN records" [ "${stalled:-0}" -lt $N_RUN ]

# ------------------------------------------------------------------ the kill

kill -KILL "$SUP"
T_KILL=$(ctf_now)
for ((i = 0; i < (STOP_BOUND_S + SLACK_S + 10) * 10; i++)); do ctf_alive "$WORKER" || break; sleep 0.1; done
T_GONE=$(ctf_now)
took=$(ctf_elapsed "$T_KILL" "$T_GONE")
if ! ctf_alive "$WORKER" && awk -v t="$took" -v b=$((STOP_BOUND_S + SLACK_S)) 'BEGIN { exit !(t <= b) }'; then
	ctf_ok "the orphaned worker ends itself $took s after the kill (bound $STOP_BOUND_S s, <= $((STOP_BOUND_S + SLACK_S)) s)"
else
	ctf_not_ok "the orphaned worker ends itself within $((STOP_BOUND_S + SLACK_S)) s of the kill" \
		"after $took s: $(ctf_alive "$WORKER" && echo running || echo gone)"
	ctf_diag_file "$LOG1" 20
	kill -KILL "$WORKER" 2>/dev/null
fi
line=$(grep "ctflowd\[$WORKER\] .*the stop did not end within" "$LOG1" | head -1)
if [ -n "$line" ]; then
	ctf_ok "the worker logs: ${line#* critical: }"
else
	ctf_not_ok "the worker logs that its stop overran"
	ctf_diag_file "$LOG1" 20
fi
ctf_check_holder "$INODE1" "the socket the first ctflowd opened"
HOLDER1=$CTF_HOLDER

ctf_gen_udp $N_RUN $((DPORT + 1)) $SPORT $PKTS $LEN || ctf_bail "the second run did not create its $N_RUN entries"
W_T1=$CTF_GEN_T1
ctf_ct_flush

# ------------------------------------------------------------------ the next start

kill -CONT "$READER"
ctf_start_ctflowd "$CONF" "$LOG2" || ctf_bail "the second ctflowd did not start (config $CONF)"
PID2=$CTF_LAST_PID
ctf_check "the second ctflowd's worker runs: the holder does not keep the journal" ctf_wait_worker "$PID2" "$LOG2"
ctf_check_takeover "$PID2" "$LOG2" "$INODE1" "$HOLDER1" "$HANDOVER_SOCK"
ctf_settle "$PID2"
ctf_wait_stat_export "$LOG2" file records $N_RUN 30 ||
	ctf_diag "the file export of the second ctflowd has $(ctf_stat_export "$(ctf_last_stats "$LOG2")" file records) records"
ctf_stop_clean "$PID2" "the second ctflowd" "$LOG2" 60
grep -E 'warning|critical' "$LOG1" "$LOG2" | head -8 | sed 's/^.*ctflowd-\([0-9]\)\.log:.*\] /# ctflowd \1: /'
ctf_end_holders

# ------------------------------------------------------------------ judge

WINDOW=$(awk -v a="$W_T1" -v b="$(ctf_now)" 'BEGIN { printf "%d", b - a + 2 }')
if ctf_ipfix_verify "file export" "$EXPORT" udp --input ipfix --seq report --require-flowid \
	--expect "name=udp proto=17 family=4 src=$CLI_IP dst=$SRV_IP dport=$DPORT-$((DPORT + RUNS - 1)) sport=$SPORT-$((SPORT + N_RUN - 1)) count=$N pkts=$PKTS bytes=$FWD_BYTES rpkts=0 rbytes=0" \
	--t0 "$W_T0" --t1 "$W_T1" --window "$WINDOW"; then
	ctf_is "$(ctf_kv distinct "$CTF_V_CLS")/$(ctf_kv unmatched_records "$CTF_V_SUM")" "$N/0" \
		"file export: all $N flows arrived, no record of any other flow (distinct/other)"
	ctf_verify_exact "file export" ipfix $PKTS $FWD_BYTES
fi

ctf_diag "total $(ctf_elapsed "$T_BEGIN") s"
ctf_done
