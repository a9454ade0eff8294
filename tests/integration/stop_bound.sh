#!/bin/bash
# stop_bound.sh - a stop ends within its documented bound even while another
# reliable listener keeps 100,000 entries on the kernel's dying list.
#
# A reliable listener that stops reading (SIGSTOP) makes the kernel park the
# DESTROY of every entry it could not queue for that listener, and resend it
# to every socket until that listener takes it: the dying list stays long,
# and a dump of it takes the kernel long to walk.  A stop of ctflowd reads
# until the dying list is empty; the README bounds the whole stop
# (STOP_BOUND_S), and nothing may stretch it: not the neighbour's entries,
# not the dump.
#
#   * a neighbour (ctlisten -R, 16 KiB buffer) subscribes and gets SIGSTOP
#   * ctflowd: reliable, a 64 MiB receive buffer (it takes every DESTROY
#     the first time), an IPFIX file export, no handover (a stop closes the
#     socket, so it must read what the kernel holds back)
#   * 100,000 two-packet IPv4 UDP flows (2 x 50,000, dports 20000 and 20001,
#     sports 1024..51023), then `conntrack -F`: the neighbour leaves them all
#     parked
#   * SIGTERM to ctflowd's supervisor
#
# Judged: at least 99,000 entries are parked when the stop begins; the
# supervisor and its worker are both gone within STOP_BOUND_S of the SIGTERM,
# with exit status 0 (a stop that ended by itself, not by a kill); the
# export holds every one of the 100,000 flows exactly once.
#
# Environment: see lib.sh.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ctf_require_root
ctf_require_cmd "$PYTHON" "$CTLISTEN" "$CTFLOWD"

# two runs of 50,000 flows (dports 20000 and 20001, sports 1024..51023 each)
N_RUN=50000 RUNS=2 PKTS=2 LEN=50 DPORT=20000 SPORT=1024
N=$((N_RUN * RUNS))
FWD_BYTES=$((PKTS * (28 + LEN)))
PARKED_MIN=99000
# the bound the README's "Stopping" states for a whole stop
STOP_BOUND_S=45

T_BEGIN=$(ctf_now)
ctf_setup
DIR=$CTF_WORK/stop
mkdir -p "$DIR"
CONF=$DIR/ctflowd.conf LOG=$DIR/ctflowd.log EXPORT=$DIR/export.ipfix

max=$(ctf_nsx "$NS_RTR" cat /proc/sys/net/netfilter/nf_conntrack_max)
[ "$max" -ge $((N + N / 10)) ] ||
	ctf_bail "nf_conntrack_max in the router is $max: too small for $N entries and their parking"

# ------------------------------------------------------------------ start

ctf_spawn "$NS_RTR" "$DIR/neighbour.log" "$CTLISTEN" -R -b 16384 -i 600 -T 600 -r "$DIR/neighbour.ready"
NEIGHBOUR=$CTF_LAST_PID
ctf_cont_at_exit "$NEIGHBOUR"
ctf_wait_file "$DIR/neighbour.ready" 5 || ctf_bail "ctlisten did not start: $(cat "$DIR/neighbour.log")"
kill -STOP "$NEIGHBOUR"

CTF_RCVBUF=64M ctf_ctflowd_conf "$CONF"
ctf_conf_ipfix_file "$CONF" file "$EXPORT"
ctf_start_ctflowd "$CONF" "$LOG" || ctf_bail "ctflowd did not start (config $CONF)"
SUP=$CTF_LAST_PID
ctf_wait_worker "$SUP" "$LOG" || { ctf_diag_file "$LOG" 20; ctf_bail "no worker under supervisor $SUP"; }
WORKER=$CTF_WORKER
CTF_PIDS+=("$WORKER")
ctf_ok "ctflowd runs (supervisor $SUP, worker $WORKER) beside a stopped reliable neighbour ($NEIGHBOUR)"

for ((r = 0; r < RUNS; r++)); do
	ctf_gen_udp $N_RUN $((DPORT + r)) $SPORT $PKTS $LEN ||
		ctf_bail "run $r of the workload did not create its $N_RUN entries"
	[ $r = 0 ] && W_T0=$CTF_GEN_T0
done
W_T1=$CTF_GEN_T1
T_FLUSH=$(ctf_now)
ctf_ct_flush
ctf_diag "conntrack -F took $(ctf_elapsed "$T_FLUSH") s"
# ctflowd takes every DESTROY once; what stays in the table is parked
ctf_wait_stat_export "$LOG" file records $N 60 ||
	ctf_diag "ctflowd delivered $(ctf_stat_export "$(ctf_last_stats "$LOG")" file records) of $N records within 60 s"
parked=$(ctf_ct_count)
ctf_check "the neighbour leaves $parked entries parked (>= $PARKED_MIN)" [ "$parked" -ge $PARKED_MIN ]

# ------------------------------------------------------------------ the stop

T_TERM=$(ctf_now)
kill -TERM "$SUP"
for ((i = 0; i < (STOP_BOUND_S + 30) * 10; i++)); do
	ctf_alive "$SUP" || ctf_alive "$WORKER" || break
	sleep 0.1
done
T_END=$(ctf_now)
took=$(ctf_elapsed "$T_TERM" "$T_END")
left=$( (ctf_alive "$SUP" || ctf_alive "$WORKER") && echo running || echo gone)
ctf_stop "$SUP" 1
status=$CTF_STOP_STATUS
ctf_stop "$WORKER" 1
if [ "$left" = gone ] && awk -v t="$took" -v b=$STOP_BOUND_S 'BEGIN { exit !(t <= b) }'; then
	ctf_ok "supervisor and worker are gone $took s after SIGTERM (<= $STOP_BOUND_S s)"
else
	ctf_not_ok "supervisor and worker are gone within $STOP_BOUND_S s of SIGTERM" \
		"after $took s: $left"
fi
ctf_is "$status" 0 "ctflowd exits 0: the stop ended by itself"
ctf_diag "table still at $(ctf_ct_count) entries after the stop"
grep -E ' (stopping|final: |critical|warning)' "$LOG" | sed 's/^.*\] /# ctflowd log: /' | head -8

kill -CONT "$NEIGHBOUR"
ctf_stop "$NEIGHBOUR"

# ------------------------------------------------------------------ judge

WINDOW=$(awk -v a="$W_T1" -v b="$(ctf_now)" 'BEGIN { printf "%d", b - a + 2 }')
if [ -s "$EXPORT" ]; then
	ctf_ipfix_verify "file export" "$EXPORT" udp --input ipfix --seq report --require-flowid \
		--expect "name=udp proto=17 family=4 src=$CLI_IP dst=$SRV_IP dport=$DPORT-$((DPORT + RUNS - 1)) sport=$SPORT-$((SPORT + N_RUN - 1)) count=$N pkts=$PKTS bytes=$FWD_BYTES rpkts=0 rbytes=0" \
		--t0 "$W_T0" --t1 "$W_T1" --window "$WINDOW" &&
	{
		ctf_is "$(ctf_kv distinct "$CTF_V_CLS")/$(ctf_kv unmatched_records "$CTF_V_SUM")" "$N/0" \
			"file export: all $N flows arrived, no record of any other flow (distinct/other)"
		ctf_verify_exact "file export" ipfix $PKTS $FWD_BYTES
	}
else
	ctf_not_ok "file export" "no export file at $EXPORT"
fi

ctf_diag "total $(ctf_elapsed "$T_BEGIN") s"
ctf_done
