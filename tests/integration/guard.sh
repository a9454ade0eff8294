#!/bin/bash
# guard.sh - a stalled worker cannot fill the conntrack table with entries
# parked for it.
#
# With reliable delivery the kernel keeps every DESTROY it cannot queue for
# ctflowd on its dying list, and those entries count against
# nf_conntrack_max: a reader that stops reading would make the firewall drop
# new connections.  The guard in the supervisor switches reliable delivery off
# once the table holds `guard` entries and some of them are parked, and on
# again once the worker reads and the table is below 90 % of it.
#
# Part 1, guard = 3000, receive_buffer 16 KiB, reliable:
#   * the worker gets SIGSTOP; then 5 rounds of 2,000 two-packet UDP flows
#     (dport 20001..20005), each followed by `conntrack -F`.  Without the
#     guard 10,000 entries would end up parked.  nf_conntrack_count and the
#     dying list (`conntrack -L dying`) are sampled throughout and must stay
#     at most threshold + one round (<= 5,500); the supervisor must log
#     "GUARD: ... reliable delivery is OFF"
#   * SIGCONT: the guard must log "reliable delivery is back on ... N events
#     were dropped" with N > 0 (how N compares with the flows of those rounds
#     that did not reach the export is reported)
#   * one more round of 2,000 flows (dport 20010) + flush: with reliable
#     delivery back every one of them is exported exactly once, nothing is
#     left parked, and ctflowd exits 0 on SIGTERM
# Part 2, the control, guard = off, the same with the worker stopped
# (dport 21001..21005): the parked entries pass the threshold and reach about
# 10,000 (>= 9,000: what fits into the socket is not parked); after SIGCONT
# every one of the 10,000 flows is exported exactly once and nothing is left
# parked.
#
# Part 3, how soon it acts, guard = 64000 (the entry-count form: this kernel
# keeps nf_conntrack_max read-only in a child namespace), receive_buffer
# 16 KiB, the worker stopped (SIGSTOP), and new TCP connections arriving
# all along (rounds of 20 through the router):
#   * 60,000 UDP flows (dport 22001) are created and flushed: all of them
#     parked, the table still below the threshold, no GUARD line
#   * 8,000 more (dport 22002) take the table past the threshold; the
#     guard must log "reliable delivery is OFF" within REACT_MAX s of the
#     first sample of nf_conntrack_count (every 50 ms) at or past the
#     threshold.  A dump of the whole dying list at this size takes about
#     30 s here (the kernel resumes it by walking the list from its head),
#     so a guard that counted it would be that late.  Then the table falls
#     below the threshold while the worker is still stopped
#   * every TCP connection of the stream succeeded, and the router's
#     `conntrack -S` counts no drop, early_drop or insert_failed
#   * SIGCONT: "back on ... N events were dropped" with N at least 90 % of
#     the flushed flows: the lost events are counted and logged
# Part 4, a worker that reads is left alone, guard = 3000, the worker
# running: 150,000 UDP flows (dport 23001..23075) and a flush.  With a
# 16 KiB buffer the kernel parks what does not fit and the table stays past
# the threshold for a second or more while the worker empties it; the guard
# must see the table falling and the worker reading, and leave reliable
# delivery on: no "reliable delivery is OFF", and all 150,000 flows exported
# once.
#
# Exports are IPFIX files, judged with ipfix_verify.py.
#
# Environment: see lib.sh.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ctf_require_root
ctf_require_cmd "$PYTHON" "$CTFLOWD"
VERIFY=("$PYTHON" "$CTF_LIB_DIR/ipfix_verify.py")

ROUNDS=5 N_ROUND=2000 PKTS=2 LEN=50 SPORT=1024
THRESHOLD=3000
LIMIT=5500                        # threshold + one round, with some slack
CONTROL_MIN=9000                  # parked without the guard, at least
FWD_BYTES=$((PKTS * (28 + LEN)))
GUARD_DPORT=20001 AFTER_DPORT=20010 CONTROL_DPORT=21001

T_BEGIN=$(ctf_now)
ctf_setup
DIR=$CTF_WORK/guard
mkdir -p "$DIR"

# A stopped worker would keep any stop from completing: whatever happens,
# let it run again before lib.sh's cleanup stops everything.
cont_all() {
	local rc=$? p
	for p in $(ip netns pids "$NS_RTR" 2>/dev/null); do
		[ "$(cat /proc/"$p"/comm 2>/dev/null)" = ctflowd ] && kill -CONT "$p" 2>/dev/null
	done
	(exit $rc)
	ctf_cleanup
}
trap cont_all EXIT

# ------------------------------------------------------------------ helpers

# proc_state PID: the state letter (R, S, T, ...)
proc_state() { awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null; }

# start_daemon NAME GUARD: ctflowd with `guard = GUARD` and an IPFIX file
# export NAME.ipfix; sets SUP, WORKER, LOG, EXPORT
start_daemon() {
	local name=$1 guard=$2 i conf=$DIR/$1.conf
	LOG=$DIR/$name.log EXPORT=$DIR/$name.ipfix
	ctf_ctflowd_conf "$conf"
	# still in [source], which ctf_ctflowd_conf writes last
	echo "guard = $guard" >>"$conf"
	cat >>"$conf" <<-EOF

	[export file]
	format = ipfix
	transport = file
	path = $EXPORT
	flush_interval = 200ms
	EOF
	ctf_start_ctflowd "$conf" "$LOG" || ctf_bail "ctflowd ($name) did not start (config $conf)"
	SUP=$CTF_LAST_PID
	WORKER=
	for ((i = 0; i < 100; i++)); do
		grep -q ' running: ' "$LOG" && WORKER=$(ctf_worker_of "$SUP") && break
		sleep 0.1
	done
	[ -n "$WORKER" ] || { ctf_diag_file "$LOG" 20; ctf_bail "no worker under $SUP"; }
}

# stop_worker: SIGSTOP the worker and wait until it is stopped
stop_worker() {
	local i
	kill -STOP "$WORKER"
	for ((i = 0; i < 50; i++)); do [ "$(proc_state "$WORKER")" = T ] && return 0; sleep 0.1; done
	return 1
}

# sampler FILE: every ~0.1 s "time count dying" until killed
sampler() {
	while :; do
		echo "$(ctf_now) $(ctf_ct_count) $(ctf_ct_dying)" >>"$1"
		sleep 0.1
	done
}
start_sampler() { sampler "$1" & SAMPLER=$!; CTF_PIDS+=("$SAMPLER"); }
stop_sampler() { kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null; }
# max_col FILE COL: the largest value in column COL
max_col() { awk -v c="$2" 'BEGIN { m = 0 } $c + 0 > m { m = $c + 0 } END { print m }' "$1"; }

# rounds BASE_DPORT N_ROUNDS SAMPLES: rounds of N_ROUND flows + flush; after
# each, the table and the dying list once more.  Sets R_T0, R_T1 and R_BAD
# (rounds whose flows the router did not all create).
rounds() {
	local base=$1 n=$2 samples=$3 r nf0 out created
	R_BAD=0
	R_T0=$(ctf_now)
	for ((r = 0; r < n; r++)); do
		nf0=$(ctf_newflows)
		out=$(ctf_nsx "$NS_CLI" "$FLOWGEN" udp -d $SRV_IP -n $N_ROUND -P $PKTS -l $LEN \
			-p $((base + r)) -S $SPORT 2>&1) || ctf_diag "flowgen: $out"
		created=$(($(ctf_newflows) - nf0))
		[ "$created" = $N_ROUND ] || { R_BAD=$((R_BAD + 1)); ctf_diag "round $r: $created entries created"; }
		ctf_ct_flush
		# give the supervisor's guard (every 200 ms) time to look
		sleep 0.5
		echo "$(ctf_now) $(ctf_ct_count) $(ctf_ct_dying)" >>"$samples"
		ctf_diag "round $((r + 1)): $(tail -1 "$samples" | awk '{ printf "table %d entries, %d parked", $2, $3 }')"
	done
	R_T1=$(ctf_now)
}

# exported FILE DPORT_LO DPORT_HI T0 T1: "distinct duplicates wrong other
# flowid_dups parse_errors" of the flows with those dports in an export file
exported() {
	local file=$1 lo=$2 hi=$3 out sum cls
	out=$("${VERIFY[@]}" "$file" --seq report \
		--expect "name=c proto=17 family=4 src=$CLI_IP dst=$SRV_IP dport=$lo-$hi sport=$SPORT-$((SPORT + N_ROUND - 1)) count=1 pkts=$PKTS bytes=$FWD_BYTES rpkts=0 rbytes=0" \
		--t0 "$4" --t1 "$5" --window 120 2>&1)
	echo "$out" >>"$file.verdict"
	sum=$(printf '%s\n' "$out" | grep '^file=')
	cls=$(printf '%s\n' "$out" | grep '^cls=c ')
	if [ -z "$cls" ]; then
		echo "none none none none none"   # no export to score
		return
	fi
	local w s e
	w=$(ctf_kv counters_wrong "$cls"); s=$(ctf_kv start_outside "$cls"); e=$(ctf_kv end_outside "$cls")
	echo "$(ctf_kv distinct "$cls") $(ctf_kv duplicates "$cls") $((w + s + e)) $(ctf_kv flowid_dups "$sum") $(ctf_kv parse_errors "$sum")"
}

# wait_log PATTERN: the first line of $LOG that matches, waiting up to 10 s
wait_log() {
	local i l=
	for ((i = 0; i < 100; i++)); do
		l=$(grep "$1" "$LOG" | head -1)
		[ -n "$l" ] && break
		sleep 0.1
	done
	printf '%s\n' "$l"
}

# dropped_in LINE: N of the guard's "... N events were dropped meanwhile"
dropped_in() { printf '%s\n' "$1" | sed -n 's/.*; \([0-9]*\) events were dropped meanwhile.*/\1/p'; }

# wait_parked_zero MAX_S: wait until nothing is parked and the table is empty
wait_parked_zero() {
	local i
	for ((i = 0; i < $1 * 5; i++)); do
		[ "$(ctf_ct_count)" = 0 ] && [ "$(ctf_ct_dying)" = 0 ] && return 0
		sleep 0.2
	done
	return 1
}

# ------------------------------------------------------------------ part 1: guard = 3000

start_daemon guarded $THRESHOLD
line=$(grep 'guard: reliable delivery goes off at' "$LOG")
ctf_is "$(printf '%s\n' "$line" | sed -n 's/.* goes off at \([0-9]*\) conntrack entries.*/\1/p')" $THRESHOLD \
	"ctflowd starts with the guard at $THRESHOLD entries (supervisor $SUP, worker $WORKER)"
ctf_check "the worker stops on SIGSTOP" stop_worker
SAMPLES=$DIR/guarded.samples
start_sampler "$SAMPLES"
rounds $GUARD_DPORT $ROUNDS "$SAMPLES"
G_T0=$R_T0 G_T1=$R_T1
sleep 1
stop_sampler
ctf_is "$R_BAD" 0 "the router created $N_ROUND entries in each of the $ROUNDS rounds"
max_count=$(max_col "$SAMPLES" 2); max_dying=$(max_col "$SAMPLES" 3)
ctf_diag "with the worker stopped: at most $max_count entries in the table, $max_dying parked ($(wc -l <"$SAMPLES") samples)"
ctf_check "the table stays near the threshold: at most $max_count entries (<= $LIMIT)" [ "$max_count" -le $LIMIT ]
ctf_check "the parked entries stay near the threshold: at most $max_dying (<= $LIMIT)" [ "$max_dying" -le $LIMIT ]
line=$(grep 'GUARD: .*reliable delivery is OFF' "$LOG" | head -1)
if [ -n "$line" ]; then
	ctf_ok "the supervisor logs: ${line#* warning: }"
else
	ctf_not_ok "the supervisor logs 'GUARD: ... reliable delivery is OFF'"
	ctf_diag_file "$LOG" 10
fi
ctf_is "$(proc_state "$WORKER")" T "the worker was stopped all along"

T_CONT=$(ctf_now)
kill -CONT "$WORKER"
line=$(wait_log 'GUARD: reliable delivery is back on')
dropped=$(dropped_in "$line")
if [ -n "$line" ] && [ "${dropped:-0}" -gt 0 ]; then
	ctf_ok "after SIGCONT the guard logs: ${line#* warning: }"
else
	ctf_not_ok "after SIGCONT the guard logs 'reliable delivery is back on ... N events were dropped' with N > 0" \
		"line: ${line:-none within 10 s}"
	ctf_diag_file "$LOG" 10
fi
wait_parked_zero 60 || ctf_diag "still $(ctf_ct_count) entries, $(ctf_ct_dying) parked 60 s after SIGCONT"
ctf_wait_idle "$SUP" 1.5 30
read -r got dup _ _ _ <<<"$(exported "$EXPORT" $GUARD_DPORT $((GUARD_DPORT + ROUNDS - 1)) "$G_T0" "$(ctf_now)")"
ctf_diag "of the $((ROUNDS * N_ROUND)) flows of those rounds $got were exported ($dup twice), $((ROUNDS * N_ROUND - got)) not; the guard counted ${dropped:-?} dropped events"
ctf_is "$dup" 0 "no flow of the guarded rounds exported twice"

# reliable again: one more round must arrive in full
A_T0=$(ctf_now)
: >"$DIR/after.samples"
rounds $AFTER_DPORT 1 "$DIR/after.samples"
wait_parked_zero 60 || ctf_diag "still $(ctf_ct_count) entries, $(ctf_ct_dying) parked 60 s after the last round"
ctf_wait_idle "$SUP" 1.5 30
ctf_is "$(ctf_ct_count)/$(ctf_ct_dying)" 0/0 "afterwards the table is empty and nothing is parked (count/dying)"
T_TERM=$(ctf_now)
ctf_stop "$SUP" 30
ctf_is "$CTF_STOP_STATUS/$CTF_STOP_KILLED" 0/0 "ctflowd exits 0 on SIGTERM ($(ctf_elapsed "$T_TERM") s; status/killed)"
grep ' final: ' "$LOG" | sed 's/^.*\] /# guarded: /'
read -r got dup wrong fdup perr <<<"$(exported "$EXPORT" $AFTER_DPORT $AFTER_DPORT "$A_T0" "$(ctf_now)")"
ctf_is "$got/$dup/$wrong" "$N_ROUND/0/0" \
	"with reliable delivery back all $N_ROUND flows of the next round are exported once, counters and times right (distinct/twice/wrong)"
ctf_is "$fdup/$perr" 0/0 "the export decodes cleanly, no flowId twice (flowId repeats/parse errors)"

# ------------------------------------------------------------------ part 2: control, guard = off

ctf_wait_ct_empty 10
start_daemon unguarded off
ctf_is "$(grep -c 'guard: reliable delivery goes off' "$LOG")" 0 \
	"control: ctflowd starts without a guard (supervisor $SUP, worker $WORKER)"
ctf_check "control: the worker stops on SIGSTOP" stop_worker
SAMPLES=$DIR/unguarded.samples
start_sampler "$SAMPLES"
rounds $CONTROL_DPORT $ROUNDS "$SAMPLES"
C_T0=$R_T0
sleep 1
stop_sampler
max_count=$(max_col "$SAMPLES" 2); max_dying=$(max_col "$SAMPLES" 3)
ctf_check "control: without the guard the parked entries pass the threshold: $max_dying parked at most, $max_count in the table (>= $CONTROL_MIN)" \
	[ "$max_dying" -ge $CONTROL_MIN ]
ctf_is "$(grep -c 'GUARD:' "$LOG")" 0 "control: no GUARD line"
T_CONT=$(ctf_now)
kill -CONT "$WORKER"
if wait_parked_zero 90; then
	ctf_ok "control: after SIGCONT the kernel delivers every parked DESTROY ($(ctf_elapsed "$T_CONT") s)"
else
	ctf_not_ok "control: after SIGCONT the kernel delivers every parked DESTROY within 90 s" \
		"$(ctf_ct_count) entries, $(ctf_ct_dying) parked"
fi
ctf_wait_idle "$SUP" 1.5 30
T_TERM=$(ctf_now)
ctf_stop "$SUP" 30
ctf_is "$CTF_STOP_STATUS/$CTF_STOP_KILLED" 0/0 "control: ctflowd exits 0 on SIGTERM ($(ctf_elapsed "$T_TERM") s; status/killed)"
grep ' final: ' "$LOG" | sed 's/^.*\] /# unguarded: /'
grep -E 'warning|critical' "$LOG" | head -5 | sed 's/^/# unguarded log: /'
read -r got dup wrong fdup perr <<<"$(exported "$EXPORT" $CONTROL_DPORT $((CONTROL_DPORT + ROUNDS - 1)) "$C_T0" "$(ctf_now)")"
ctf_is "$got/$dup/$wrong" "$((ROUNDS * N_ROUND))/0/0" \
	"control: all $((ROUNDS * N_ROUND)) flows exported once, counters and times right (distinct/twice/wrong)"
ctf_is "$fdup/$perr" 0/0 "control: the export decodes cleanly, no flowId twice (flowId repeats/parse errors)"

# ------------------------------------------------------------------ part 3: how soon it acts

R_THRESHOLD=64000 R_PARKED=60000 R_CROSS=8000 REACT_MAX=2.5
R_PARKED_DPORT=22001 R_CROSS_DPORT=22002 STREAM_PORT=5201

# log_epoch LINE: the epoch time of a log line's timestamp
log_epoch() { date -d "$(printf '%s\n' "$1" | awk '{ print $1, $2 }')" +%s.%N; }

# count_sampler FILE: "time count" every ~50 ms until killed
count_sampler() {
	while :; do
		echo "$(ctf_now) $(ctf_ct_count)" >>"$1"
		sleep 0.05
	done
}

# stream FILE: rounds of 20 new TCP connections until killed; one flowgen
# result line per round, "FAILED" after a round that did not all succeed
stream() {
	while :; do
		ctf_nsx "$NS_CLI" "$FLOWGEN" tcp -d $SRV_IP -n 20 -p $STREAM_PORT -l 100 -c 4 \
			>>"$1" 2>&1 || echo FAILED >>"$1"
		sleep 0.1
	done
}

ctf_wait_ct_empty 10
ctf_spawn "$NS_SRV" "$DIR/stream-server.log" "$FLOWGEN" tcp-server -p $STREAM_PORT -t 600
for ((i = 0; i < 50; i++)); do
	[ -n "$(ctf_nsx "$NS_SRV" ss -H -tln "sport = :$STREAM_PORT")" ] && break
	sleep 0.1
done
start_daemon reaction $R_THRESHOLD
ctf_check "reaction: the worker stops on SIGSTOP" stop_worker
drop0=$(ctf_ct_stat drop) early0=$(ctf_ct_stat early_drop) insf0=$(ctf_ct_stat insert_failed)
STREAM_LOG=$DIR/stream.log
stream "$STREAM_LOG" & STREAM=$!; CTF_PIDS+=("$STREAM")
COUNTS=$DIR/reaction.counts
count_sampler "$COUNTS" & COUNTER=$!; CTF_PIDS+=("$COUNTER")

out=$(ctf_nsx "$NS_CLI" "$FLOWGEN" udp -d $SRV_IP -n $R_PARKED -P 1 -l $LEN -p $R_PARKED_DPORT -S $SPORT 2>&1) ||
	ctf_diag "flowgen: $out"
ctf_ct_flush
# what a flush leaves in the table is parked (listing the dying list
# instead would take half a minute at this size)
parked=$(ctf_ct_count)
ctf_check "reaction: the flush of $R_PARKED flows leaves at least 90 % of them parked ($parked)" \
	[ "$parked" -ge $((R_PARKED * 9 / 10)) ] && [ "$parked" -lt $R_THRESHOLD ]
sleep 0.5
ctf_is "$(grep -c 'GUARD:' "$LOG")" 0 "reaction: below the threshold ($(ctf_ct_count) entries) the guard does nothing"

out=$(ctf_nsx "$NS_CLI" "$FLOWGEN" udp -d $SRV_IP -n $R_CROSS -P 1 -l $LEN -p $R_CROSS_DPORT -S $SPORT 2>&1) ||
	ctf_diag "flowgen: $out"
line=$(wait_log 'GUARD: .*reliable delivery is OFF')
fell=
for ((i = 0; i < 100; i++)); do
	[ "$(ctf_ct_count)" -lt $R_THRESHOLD ] && { fell=$(ctf_now); break; }
	sleep 0.1
done
sleep 1
kill "$COUNTER" 2>/dev/null; wait "$COUNTER" 2>/dev/null
kill "$STREAM" 2>/dev/null; wait "$STREAM" 2>/dev/null
crossed=$(awk -v t=$R_THRESHOLD '$2 >= t { print $1; exit }' "$COUNTS")
if [ -n "$line" ] && [ -n "$crossed" ]; then
	react=$(awk -v a="$crossed" -v b="$(log_epoch "$line")" 'BEGIN { printf "%.2f", b - a }')
	ctf_diag "the table reached $R_THRESHOLD entries at $crossed; the guard acted $react s later: ${line#* warning: }"
	ctf_check "reaction: the guard switches reliable delivery off within $REACT_MAX s of the crossing ($react s)" \
		awk -v r="$react" -v m=$REACT_MAX 'BEGIN { exit !(r <= m) }'
else
	ctf_not_ok "reaction: the table crosses $R_THRESHOLD entries and the guard logs 'reliable delivery is OFF'" \
		"crossed at ${crossed:-never}, line: ${line:-none}"
	ctf_diag_file "$LOG" 10
fi
ctf_check "reaction: then the table falls below the threshold with the worker still stopped (at ${fell:-never})" \
	[ -n "$fell" ] && [ "$(proc_state "$WORKER")" = T ]
rounds_ok=$(grep -c '^mode=tcp flows=20 failed=0 ' "$STREAM_LOG")
rounds_bad=$(grep -c '^FAILED' "$STREAM_LOG")
retrans=$(grep '^mode=tcp' "$STREAM_LOG" | tr ' ' '\n' | awk -F= '$1 == "retrans" { s += $2 } END { print s + 0 }')
ctf_diag "new TCP connections meanwhile: $((rounds_ok * 20)) in $rounds_ok rounds, $retrans retransmissions"
ctf_check "reaction: every new TCP connection succeeded ($rounds_ok rounds of 20, $rounds_bad failed)" \
	[ "$rounds_ok" -ge 10 ] && [ "$rounds_bad" = 0 ]
ctf_is "$(($(ctf_ct_stat drop) - drop0))/$(($(ctf_ct_stat early_drop) - early0))/$(($(ctf_ct_stat insert_failed) - insf0))" 0/0/0 \
	"reaction: the firewall dropped no connection (conntrack -S drop/early_drop/insert_failed)"

kill -CONT "$WORKER"
line=$(wait_log 'GUARD: reliable delivery is back on')
dropped=$(dropped_in "$line")
ctf_check "reaction: after SIGCONT the guard logs the lost events, at least 90 % of the $R_PARKED flushed: ${line#* warning: }" \
	[ -n "$line" ] && [ "${dropped:-0}" -ge $((R_PARKED * 9 / 10)) ]
ctf_ct_flush
wait_parked_zero 60 || ctf_diag "still $(ctf_ct_count) entries, $(ctf_ct_dying) parked 60 s after the last flush"
ctf_wait_idle "$SUP" 1.5 30
T_TERM=$(ctf_now)
ctf_stop "$SUP" 30
ctf_is "$CTF_STOP_STATUS/$CTF_STOP_KILLED" 0/0 "reaction: ctflowd exits 0 on SIGTERM ($(ctf_elapsed "$T_TERM") s; status/killed)"
grep ' final: ' "$LOG" | sed 's/^.*\] /# reaction: /'

# ------------------------------------------------------------------ part 4: a reading worker is left alone

# enough flows that even a quick worker takes most of a second to drain
# them: 40,000 took 0.27 s once, too short for the guard to have to decide,
# and 150,000 took 0.56 s on an idle machine (the table holds 262,144)
L_THRESHOLD=3000 L_FLOWS=240000 L_DPORT=23001
ctf_wait_ct_empty 10
start_daemon reading $L_THRESHOLD
COUNTS=$DIR/reading.counts
count_sampler "$COUNTS" & COUNTER=$!; CTF_PIDS+=("$COUNTER")
L_T0=$(ctf_now)
for ((r = 0; r < L_FLOWS / N_ROUND; r++)); do
	out=$(ctf_nsx "$NS_CLI" "$FLOWGEN" udp -d $SRV_IP -n $N_ROUND -P $PKTS -l $LEN -p $((L_DPORT + r)) \
		-S $SPORT 2>&1) || ctf_diag "flowgen: $out"
done
T_FLUSH=$(ctf_now)
ctf_ct_flush
wait_parked_zero 60 || ctf_diag "still $(ctf_ct_count) entries, $(ctf_ct_dying) parked 60 s after the flush"
kill "$COUNTER" 2>/dev/null; wait "$COUNTER" 2>/dev/null
ctf_diag "the worker emptied the table in $(ctf_elapsed "$T_FLUSH") s after the flush"
# the guard must have had to decide: several of its checks (every 200 ms)
# saw the table past the threshold with entries parked
above=$(awk -v t0="$T_FLUSH" -v th=$L_THRESHOLD '$1 >= t0 && $2 >= th { last = $1 } END { printf "%.2f", last ? last - t0 : 0 }' "$COUNTS")
ctf_check "reading: after the flush the table stays past the threshold for a while ($above s >= 0.6 s)" \
	awk -v a="$above" 'BEGIN { exit !(a >= 0.6) }'
grep -E 'guard:|GUARD:' "$LOG" | sed 's/^.*\] /# reading: /'
ctf_is "$(grep -c 'GUARD: .*reliable delivery is OFF' "$LOG")" 0 \
	"reading: a worker that reads and empties the table is left alone (no 'reliable delivery is OFF')"
ctf_wait_idle "$SUP" 1.5 30
ctf_stop "$SUP" 30
ctf_is "$CTF_STOP_STATUS/$CTF_STOP_KILLED" 0/0 "reading: ctflowd exits 0 on SIGTERM (status/killed)"
read -r got dup wrong fdup perr <<<"$(exported "$EXPORT" $L_DPORT $((L_DPORT + L_FLOWS / N_ROUND - 1)) "$L_T0" "$(ctf_now)")"
ctf_is "$got/$dup/$wrong" "$L_FLOWS/0/0" "reading: all $L_FLOWS flows exported once (distinct/twice/wrong)"

ctf_diag "total $(ctf_elapsed "$T_BEGIN") s"
ctf_done
