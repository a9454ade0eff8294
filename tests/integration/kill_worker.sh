#!/bin/bash
# kill_worker.sh - a worker killed with SIGKILL in the middle of a burst loses
# no flow and repeats none.
#
# ctflowd is a supervisor that owns the conntrack event socket and a forked
# worker that reads it.  While no worker runs, the kernel keeps queueing into
# the socket the supervisor holds and, with reliable delivery, parks the
# DESTROYs that do not fit; the next worker takes them.  This test checks that
# promise under the worst timing it can arrange:
#
#   * ctflowd with a 16 KiB reliable source and two IPFIX exports: UDP to
#     nfcapd on the router's 127.0.0.1, and a file
#   * 50,000 two-packet IPv4 UDP flows (dport 20000, sports 1024..51023)
#   * `conntrack -F` starts, and while it runs the worker gets SIGKILL; once
#     the supervisor has started a new worker, that one gets SIGKILL too,
#     while the kernel is still resending what it parked
#   * the third worker finishes the job; ctflowd then exits 0 on SIGTERM
#
# Judged: the supervisor logged both deaths and restarted, the table ends
# empty with nothing parked, and every one of the 50,000 flows reached nfcapd
# (nfdump) and the file (ipfix_verify.py) exactly once by 5-tuple, with exact
# counters and times in the run window; over UDP alone a repeat is allowed
# for what a killed worker had just handed to the kernel (at most one send
# batch per kill: nothing can tell whether that send happened); flowId repeats are reported as a
# check of their own.  A plain netlink listener (ctlisten) records what the
# kernel reported, so that a loss can be told apart from a harness fault; the
# source ports of lost flows are listed, and the flowIds in the file are
# grouped into runs of consecutive numbers (one per worker) to show where
# records went missing.
#
# Environment: see lib.sh; CTF_KILL1_AFTER (0.05) and CTF_KILL2_AFTER (0.3) are
# the two delays before the kills, in seconds.  Run as kill-worker-record with
# CTF_SPOOL_SYNC=record, where each read is journaled and synced before the
# next: the workers then die with far more parked in the kernel.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ctf_require_root
ctf_require_cmd nfcapd nfdump "$PYTHON" "$CTLISTEN" "$CTFLOWD"
export TZ=UTC   # nfdump prints local time; the scorer reads UTC

N=50000 PKTS=2 LEN=50 DPORT=20000 SPORT=1024
FWD_BYTES=$((PKTS * (28 + LEN)))
PORT=4739
# how long after `conntrack -F` starts the first worker is killed, and how
# long the second one runs before it is killed
KILL1_AFTER=${CTF_KILL1_AFTER:-0.05}
KILL2_AFTER=${CTF_KILL2_AFTER:-0.3}

T_BEGIN=$(ctf_now)
ctf_setup
DIR=$CTF_WORK/kill
mkdir -p "$DIR"
CONF=$DIR/ctflowd.conf LOG=$DIR/ctflowd.log EXPORT=$DIR/export.ipfix

# ------------------------------------------------------------------ helpers

# workers_running: how many workers have said they are running so far
workers_running() { grep -c ' running: ' "$LOG"; }

# wait_worker SUP N MAX_S: wait until the N-th worker has said it runs;
# its pid lands in WORKER.  Returns 1 on timeout or when SUP is gone.
wait_worker() {
	local i
	WORKER=
	for ((i = 0; i < $3 * 20; i++)); do
		ctf_alive "$1" || return 1
		if [ "$(workers_running)" -ge "$2" ] && WORKER=$(ctf_worker_of "$1"); then
			return 0
		fi
		sleep 0.05
	done
	return 1
}

# last_stats PID: the last periodic statistics line worker PID logged
last_stats() { grep "ctflowd\[$1\] .* statistics: " "$LOG" | tail -1 | sed 's/^.* statistics: //'; }

# verify VIEW INPUT FILE [EXTRA...]: score one decoder's view of the export
# and turn it into separate checks: completeness, repeats by 5-tuple,
# counters and times, and for IPFIX input flowId repeats and clean decoding.
verify() {
	local view=$1 input=$2 file=$3 sum cls; shift 3
	ctf_ipfix_verify "$view" "$file" udp --input "$input" --seq report \
		--expect "name=udp proto=17 family=4 src=$CLI_IP dst=$SRV_IP dport=$DPORT sport=$SPORT-$((SPORT + N - 1)) count=$N pkts=$PKTS bytes=$FWD_BYTES rpkts=0 rbytes=0" \
		--t0 "$W_T0" --t1 "$W_T1" --window "$WINDOW" "$@" || return
	sum=$CTF_V_SUM cls=$CTF_V_CLS
	local distinct missing other
	distinct=$(ctf_kv distinct "$cls"); missing=$(ctf_kv missing "$cls")
	other=$(ctf_kv unmatched_records "$sum")
	if [ "$distinct" = $N ] && [ "$other" = 0 ]; then
		ctf_ok "$view: all $N flows arrived, no record of any other flow"
	else
		ctf_not_ok "$view: all $N flows arrived, no record of any other flow" \
			"$distinct of $N distinct flows, $missing missing, $other records of other flows" \
			"missing source ports: $(missing_ports "$input" "$file")"
	fi
	# Over UDP a kill between a send and the write of the position that
	# follows it repeats that send after the restart (same flowIds): at
	# most one batch per kill, 128 messages of at most 20 of these records.
	# Nothing can tell afterwards whether the send happened; the file
	# export, confirmed by its own write, must have no repeat at all.
	local resent_max=0
	[ "$input" = nfdump ] && resent_max=$((KILLS * 128 * 20))
	ctf_verify_exact "$view" "$input" $PKTS $FWD_BYTES $resent_max
	if [ "$input" = ipfix ]; then
		ctf_diag "$view: sequence gaps $(ctf_kv seq_gaps "$sum") ($(ctf_kv seq_lost_records "$sum") records), backwards $(ctf_kv seq_backwards "$sum")"
	fi
}

# missing_ports INPUT FILE: the source ports of the workload absent from an
# export view, as ranges (at most 10), "none" when none is
missing_ports() {
	local n runs
	read -r n runs < <(ctf_seen_sports "$1" "$2" $DPORT | ctf_sport_gaps $SPORT $((SPORT + N - 1)) 10)
	echo "$runs"
}
export CTF_LIB_DIR

# ------------------------------------------------------------------ run

ctf_start_nfcapd "$DIR/nf" $PORT; NFCAPD=$CTF_LAST_PID
ctf_start_witness "$DIR"; WITNESS=$CTF_LAST_PID

ctf_ctflowd_conf "$CONF"
ctf_diag "spool_sync = ${CTF_SPOOL_SYNC:-batch}"
ctf_conf_udp_and_file "$CONF" $PORT "$EXPORT"
ctf_start_ctflowd "$CONF" "$LOG" || ctf_bail "ctflowd did not start (config $CONF)"
SUP=$CTF_LAST_PID
wait_worker "$SUP" 1 10 || { ctf_diag_file "$LOG" 30; ctf_bail "no worker running under supervisor $SUP"; }
W1=$WORKER
ctf_ok "ctflowd starts: supervisor $SUP listens for DESTROY events, worker $W1 runs"
RCVERR0=$(ctf_udp_rcvbuf_errors)

nf0=$(ctf_newflows); udp0=$(ctf_srv_udp_pkts)
W_T0=$(ctf_now)
out=$(ctf_nsx "$NS_CLI" "$FLOWGEN" udp -d $SRV_IP -n $N -P $PKTS -l $LEN -p $DPORT -S $SPORT 2>&1) ||
	ctf_diag "flowgen: $out"
W_T1=$(ctf_now)
created=$(($(ctf_newflows) - nf0)) pkts=$(($(ctf_srv_udp_pkts) - udp0))
ctf_is "$created/$pkts" "$N/$((N * PKTS))" \
	"workload: router created $N entries, every packet reached the server (entries/packets, $(ctf_elapsed "$W_T0" "$W_T1") s)"

# --- the flush, and the kills while it runs
T_FLUSH=$(ctf_now)
ctf_nsx "$NS_RTR" conntrack -F >"$DIR/flush.log" 2>&1 &
FLUSH=$!
CTF_PIDS+=("$FLUSH")
# the flush's own duration, apart from the kills
( while ctf_alive "$FLUSH"; do sleep 0.02; done; ctf_now >"$DIR/flush.end" ) &
FLUSH_WATCH=$!
CTF_PIDS+=("$FLUSH_WATCH")
sleep "$KILL1_AFTER"
flush_running=no; ctf_alive "$FLUSH" && flush_running=yes
count_at_kill1=$(ctf_ct_count)
kill -KILL "$W1"
KILLS=1
T_KILL1=$(ctf_now)
ctf_diag "worker $W1 killed $(ctf_elapsed "$T_FLUSH" "$T_KILL1") s after conntrack -F started (flush still running: $flush_running; table at $count_at_kill1 entries)"

if wait_worker "$SUP" 2 10; then
	W2=$WORKER
	ctf_ok "the supervisor restarts the worker: worker $W2 runs $(ctf_elapsed "$T_KILL1") s after the kill"
else
	W2=
	ctf_not_ok "the supervisor restarts the worker within 10 s" "workers running: $(ctf_worker_of "$SUP")"
	ctf_diag_file "$LOG" 20
fi
if [ -n "$W2" ]; then
	sleep "$KILL2_AFTER"
	flush_running=no; ctf_alive "$FLUSH" && flush_running=yes
	count_at_kill2=$(ctf_ct_count)
	kill -KILL "$W2"
	KILLS=2
	T_KILL2=$(ctf_now)
	ctf_diag "worker $W2 killed $(ctf_elapsed "$T_FLUSH" "$T_KILL2") s after conntrack -F started (flush still running: $flush_running; table at $count_at_kill2 entries)"
	if wait_worker "$SUP" 3 15; then
		W3=$WORKER
		ctf_ok "the supervisor restarts the worker again: worker $W3 runs $(ctf_elapsed "$T_KILL2") s after the kill"
	else
		ctf_not_ok "the supervisor restarts the worker again within 15 s" "workers running: $(ctf_worker_of "$SUP")"
		ctf_diag_file "$LOG" 20
	fi
fi
wait "$FLUSH"; flush_rc=$?
wait "$FLUSH_WATCH"
ctf_is "$flush_rc" 0 "conntrack -F succeeded"

ctf_diag "conntrack -F took $(ctf_elapsed "$T_FLUSH" "$(cat "$DIR/flush.end" 2>/dev/null || ctf_now)") s"
ctf_wait_ct_empty 60 || ctf_diag "router table not empty after 60 s: $(ctf_ct_count) entries"
ctf_diag "the kernel had delivered every DESTROY $(ctf_elapsed "$T_FLUSH") s after the flush began"
for ((i = 0; i < 300; i++)); do [ "$(ctf_ct_dying)" = 0 ] && break; sleep 0.2; done
ctf_wait_idle "$SUP" 2 60 || ctf_diag "ctflowd not idle after 60 s (or gone)"
T_IDLE=$(ctf_now)
count=$(ctf_ct_count); dying=$(ctf_ct_dying)
ctf_is "$count/$dying" 0/0 "router table empty, no entry parked waiting for delivery ($(ctf_elapsed "$T_FLUSH" "$T_IDLE") s after the flush began; count/dying)"

# --- what the supervisor said
for w in "$W1" $W2; do
	line=$(grep -E "worker $w (was killed by signal 9|exited).*restarting it in" "$LOG" | head -1)
	if [ -n "$line" ]; then
		ctf_ok "the supervisor logged the death of worker $w and the restart: ${line#* warning: }"
	else
		ctf_not_ok "the supervisor logged the death of worker $w and the restart" \
			"no line 'worker $w was killed by signal 9 ...; restarting it in ...'"
	fi
done
ctf_is "$(ctf_worker_of "$SUP" >/dev/null && echo alive)/$(ctf_has_ct_listener "$SUP" && echo listening)" \
	alive/listening "the supervisor kept the event socket and runs a worker (worker/socket)"
grep -E 'recovered [0-9]+ conntrack events' "$LOG" | sed 's/^.*\] /# ctflowd log: /'
for w in "$W1" $W2; do
	st=$(last_stats "$w")
	ctf_diag "worker $w, last statistics before its death: ${st:-none (it lived less than stats_interval)}"
done

T_TERM=$(ctf_now)
ctf_stop "$SUP" 30
if [ "$CTF_STOP_KILLED" = 0 ] && [ "$CTF_STOP_STATUS" = 0 ]; then
	ctf_ok "ctflowd exits 0 on SIGTERM ($(ctf_elapsed "$T_TERM") s)"
else
	ctf_not_ok "ctflowd exits 0 on SIGTERM" "exit status $CTF_STOP_STATUS, needed SIGKILL: $CTF_STOP_KILLED"
	ctf_diag_file "$LOG" 30
fi
grep ' final: ' "$LOG" | sed 's/^.*\] /# /'
grep -E 'warning|critical' "$LOG" | grep -v 'restarting it in' | head -5 | sed 's/^/# ctflowd log: /'
WINDOW=$(awk -v a="$W_T1" -v b="$(ctf_now)" 'BEGIN { printf "%d", b - a + 2 }')
sleep 0.5   # the last datagrams reach nfcapd
ctf_stop "$WITNESS"; ctf_stop "$NFCAPD"
rcverr=$(($(ctf_udp_rcvbuf_errors) - RCVERR0))
[ "$rcverr" = 0 ] || ctf_diag "UDP receive buffer errors in the router during the run: $rcverr (collector drops)"

# ------------------------------------------------------------------ judge

wit=$(ctf_witness_exact "$DIR/witness.txt" $DPORT $DPORT $PKTS $FWD_BYTES)
ctf_is "$wit" "$N $N" "the kernel reported all $N flows with these counters (ctlisten: distinct exact)"

ctf_nfdump_flows "$DIR/nf" "$DIR/nfdump.txt"
verify "nfdump (UDP export via nfcapd)" nfdump "$DIR/nfdump.txt"
if [ -s "$EXPORT" ]; then
	verify "ipfix_verify.py (file export)" ipfix "$EXPORT" --require-flowid
	# Each worker numbers the records it accepts consecutively from a block
	# of its own, so the flowIds in the file show where records went
	# missing: a hole inside a run is a record lost between acceptance and
	# export in the middle of a worker's life; a run that just ends early
	# is a worker killed with records accepted but not yet exported.
	"$PYTHON" - "$EXPORT" <<-'PY' | sed 's/^/# /'
	import os, sys
	sys.path.insert(0, os.environ["CTF_LIB_DIR"])
	import ipfix_verify as iv
	ids = sorted({r[(0, 148)] for r in iv.Decoder(open(sys.argv[1], "rb").read()).run().records
	              if (0, 148) in r})
	runs, start = [], 0
	for i in range(1, len(ids) + 1):
	    if i == len(ids) or ids[i] - ids[i - 1] > 1:
	        runs.append((ids[start], ids[i - 1]))
	        start = i
	print("file export: %d flowIds in %d runs of consecutive numbers: %s" % (
	    len(ids), len(runs), ", ".join("%d..%d (%d)" % (a, b, b - a + 1) for a, b in runs[:10])))
	PY
else
	ctf_not_ok "ipfix_verify.py (file export)" "no export file at $EXPORT"
fi

ctf_diag "total $(ctf_elapsed "$T_BEGIN") s"
ctf_done
