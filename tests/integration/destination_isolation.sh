#!/bin/bash
# destination_isolation.sh - one dead destination never delays another.
#
# Each destination has its own export thread reading the journal at its own
# position, so nothing one collector does can hold up the records of
# another.  Two rounds, each with a fresh ctflowd and state directory and
# three IPFIX exports in the router:
#   [export live-udp]  UDP to nfcapd on 127.0.0.1
#   [export live-tcp]  TCP to tcp_collector.py on 127.0.0.1 (the byte
#                      stream in a file, decoded by ipfixDump)
#   [export dead]      TCP to 127.0.0.1:DEAD_PORT, which is
#     round blackhole: dropped by nftables in the router's output path, so
#                      every connect waits out its full 5 s time-out
#     round stalled:   a collector that accepts, reads one byte and then
#                      nothing (tiny receive buffer), and TCP send buffers
#                      in the router capped at 64 KiB (tcp_wmem): the
#                      export's socket fills and its send blocks (up to
#                      the 30 s SO_SNDTIMEO) while the flows are exported
# Workload per round: 20,000 two-packet UDP flows and 500 TCP connections
# through the router, then `conntrack -F`; ctflowd reads with its default
# 8 MiB receive buffer, so that the time measured is the exports' and not
# the kernel's redelivery after an overrun.
#
# Judged per round: each live collector decoded every flow exactly once
# with exact counters (ipfix_verify.py on nfdump's and ipfixDump's text),
# and its last record arrived within BOUND_S of the flush: flush_interval
# (a partly filled message waits at most that long) plus 3 s for reading
# 20,500 events and the scheduling of a shared 2-core machine.  The bound
# is below the 5 s a blocked connect takes and far below the 30 s a
# blocked send takes, so a live export that waited for the dead one even
# once would miss it.  Arrival times are the collectors' own: nfdump's
# "received" time (%tr) per record, and the modification time of the TCP
# collector's file (written as bytes arrive).  The dead export delivered
# nothing and lost nothing (the journal keeps its records), ctflowd kept
# running and stopped with exit status 0 within its stop bound.
#
# Environment: see lib.sh.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ctf_require_root
ctf_require_cmd nfcapd nfdump ipfixDump "$PYTHON" "$CTFLOWD"
export TZ=UTC   # nfdump and ipfixDump print local time; the scorer reads UTC

N_UDP=20000 N_TCP=500
N_ALL=$((N_UDP + N_TCP))
PKTS=2 LEN=50
UDP_FWD_BYTES=$((PKTS * (28 + LEN)))
UDP_DPORT=20000 UDP_SPORT=1024
TCP_PORT=5001 TCP_LEN=1000
NF_PORT=4739 LIVE_PORT=4740 DEAD_PORT=4741
FLUSH_S=1
BOUND_S=$((FLUSH_S + 3))
# ctflowd's own default receive buffer, not lib.sh's 16 KiB: with that, a
# flush overruns the socket and the kernel's redelivery of what it parked
# (reliable mode) adds seconds before the last DESTROY is even read, which
# says nothing about the exports
export CTF_RCVBUF=8M

T_BEGIN=$(ctf_now)
ctf_setup
ctf_spawn "$NS_SRV" "$CTF_WORK/tcp-server.log" "$FLOWGEN" tcp-server -p $TCP_PORT -t 600

# workload DIR: the flows, client -> server; W_T0/W_T1, W_OK=1 when the
# router saw exactly what was sent
workload() {
	local dir=$1 nf0 udp0 out created udp_pkts
	W_OK=1
	nf0=$(ctf_newflows); udp0=$(ctf_srv_udp_pkts)
	W_T0=$(ctf_now)
	out=$(ctf_nsx "$NS_CLI" "$FLOWGEN" udp -d $SRV_IP -n $N_UDP -P $PKTS -l $LEN \
		-p $UDP_DPORT -S $UDP_SPORT 2>&1) || { W_OK=0; ctf_diag "flowgen udp: $out"; }
	out=$(ctf_nsx "$NS_CLI" "$FLOWGEN" tcp -d $SRV_IP -n $N_TCP -p $TCP_PORT -l $TCP_LEN \
		-c 32 -o "$dir/tcp-flows.txt" 2>&1) || { W_OK=0; ctf_diag "flowgen tcp: $out"; }
	W_T1=$(ctf_now)
	created=$(($(ctf_newflows) - nf0)); udp_pkts=$(($(ctf_srv_udp_pkts) - udp0))
	[ "$created" = $N_ALL ] && [ "$udp_pkts" = $((N_UDP * PKTS)) ] && return 0
	W_OK=0
	ctf_diag "router created $created entries (want $N_ALL), server got $udp_pkts UDP packets (want $((N_UDP * PKTS)))"
}

# judge VIEW INPUT FILE: every flow once with exact counters, by
# ipfix_verify.py reading a collector's decoded text
judge() {
	local view=$1 input=$2 file=$3 out window
	window=$(awk -v a="$W_T1" -v b="$(ctf_now)" 'BEGIN { printf "%d", b - a + 2 }')
	if out=$("$PYTHON" "$CTF_LIB_DIR/ipfix_verify.py" "$file" --input "$input" --no-other \
		--expect "name=udp4 proto=17 family=4 src=$CLI_IP dst=$SRV_IP dport=$UDP_DPORT sport=$UDP_SPORT-$((UDP_SPORT + N_UDP - 1)) count=$N_UDP pkts=$PKTS bytes=$UDP_FWD_BYTES rpkts=0 rbytes=0" \
		--expect "name=tcp proto=6 family=4 src=$CLI_IP dst=$SRV_IP dport=$TCP_PORT count=$N_TCP flows=$ROUND_DIR/tcp-flows.txt" \
		--t0 "$W_T0" --t1 "$W_T1" --window "$window" 2>&1); then
		ctf_ok "$view: $N_ALL flows ($N_UDP udp, $N_TCP tcp) once each, counters exact, times in window"
	else
		mapfile -t lines < <(printf '%s\n' "$out" | grep -E '^(FAIL|file=|cls=)')
		ctf_not_ok "$view: every flow once, counters exact" "${lines[@]}"
	fi
	echo "$out" >"$file.verdict"
}

# delay_ok VIEW DELAY: the last record of a live collector within BOUND_S
delay_ok() {
	ctf_check "$1: last record arrived $2 s after the flush (bound: flush_interval ${FLUSH_S} s + 3 s = ${BOUND_S} s)" \
		awk -v d="$2" -v b=$BOUND_S 'BEGIN { exit !(d != "" && d >= 0 && d <= b) }'
}

# round NAME: one ctflowd, three exports, the dead one of kind NAME
round() {
	local name=$1 dir=$CTF_WORK/$1 dead_pid= conf log pid t_flush i
	ROUND_DIR=$dir
	mkdir -p "$dir/live" "$dir/dead"
	rm -rf "$CTF_WORK/state"
	conf=$dir/ctflowd.conf log=$dir/ctflowd.log
	ctf_diag "--- round $name"

	ctf_start_nfcapd "$dir/nf" $NF_PORT; local nf_pid=$CTF_LAST_PID
	ctf_start_tcp_collector "$dir" "$dir/live" $LIVE_PORT live; local live_pid=$CTF_LAST_PID
	if [ "$name" = blackhole ]; then
		ctf_nsx "$NS_RTR" nft -f - <<-EOF || ctf_bail "blackhole ruleset"
		table inet ctfdead {
			chain out {
				type filter hook output priority filter; policy accept;
				tcp dport $DEAD_PORT drop
			}
		}
		EOF
	else
		ctf_nsx "$NS_RTR" sysctl -qw net.ipv4.tcp_wmem="4096 16384 65536" || ctf_bail "tcp_wmem"
		ctf_spawn "$NS_RTR" "$dir/collector-dead.log" "$PYTHON" "$CTF_LIB_DIR/tcp_collector.py" \
			--port $DEAD_PORT --dir "$dir/dead" --ready "$dir/collector-dead.ready" \
			--rcvbuf 4096 --reset-after 1 --reset-delay 600
		dead_pid=$CTF_LAST_PID
		ctf_wait_file "$dir/collector-dead.ready" 10 || ctf_bail "stalled collector does not listen"
	fi

	ctf_ctflowd_conf "$conf"
	cat >>"$conf" <<-EOF

	[export live-udp]
	format = ipfix
	transport = udp
	destination = 127.0.0.1:$NF_PORT
	flush_interval = ${FLUSH_S}s

	[export live-tcp]
	format = ipfix
	transport = tcp
	destination = 127.0.0.1:$LIVE_PORT
	flush_interval = ${FLUSH_S}s

	[export dead]
	format = ipfix
	transport = tcp
	destination = 127.0.0.1:$DEAD_PORT
	flush_interval = ${FLUSH_S}s
	reconnect_min = 100ms
	reconnect_max = 1s
	EOF
	ctf_start_ctflowd "$conf" "$log" || ctf_bail "ctflowd did not start (config $conf)"
	pid=$CTF_LAST_PID
	for ((i = 0; i < 50; i++)); do grep -q 'conn 1 opened' "$dir/collector-live.log" && break; sleep 0.1; done
	if [ -n "$dead_pid" ]; then
		for ((i = 0; i < 50; i++)); do grep -q 'conn 1 opened' "$dir/collector-dead.log" && break; sleep 0.1; done
		ctf_check "$name: the dead export is connected to the collector that stops reading" \
			grep -q 'conn 1 opened' "$dir/collector-dead.log"
	fi

	workload "$dir"
	ctf_check "$name: router created $N_ALL entries, every UDP packet reached the server" [ $W_OK = 1 ]
	t_flush=$(ctf_now)
	ctf_ct_flush
	ctf_wait_stat_export "$log" live-udp records $N_ALL 30 ||
		ctf_diag "live-udp: $(ctf_last_stats "$log" | grep -o 'export live-udp: [^;]*')"
	ctf_wait_stat_export "$log" live-tcp records $N_ALL 30 ||
		ctf_diag "live-tcp: $(ctf_last_stats "$log" | grep -o 'export live-tcp: [^;]*')"
	sleep 0.5
	local stats dead_records dead_lost
	stats=$(ctf_last_stats "$log")
	dead_records=$(ctf_stat_export "$stats" dead records)
	dead_lost=$(ctf_stat_export "$stats" dead lost)
	ctf_diag "$(printf '%s\n' "$stats" | grep -o 'overruns [0-9]*') $(printf '%s\n' "$stats" | grep -o 'export [^;]*' | tr '\n' ';')"
	ctf_is "${dead_records:-?}/${dead_lost:-?}" 0/0 "$name: the dead export delivered nothing and lost nothing (records/lost)"
	if [ "$name" = stalled ]; then
		local dead_sent; dead_sent=$(ctf_stat_export "$stats" dead sent)
		ctf_check "$name: the dead export's send is stuck: ${dead_sent:-?} of $N_ALL records handed to its socket" \
			[ "${dead_sent:-$N_ALL}" -lt $N_ALL ]
	fi
	ctf_check "$name: ctflowd keeps running with a dead destination" ctf_alive "$pid"

	# the collectors' own arrival times
	local tcp_file=$dir/live/conn-1.ipfix tcp_delay udp_delay last_tr
	tcp_delay=$(awk -v a="$t_flush" -v b="$(stat -c '%.9Y' "$tcp_file" 2>/dev/null)" \
		'BEGIN { if (b != "") printf "%.2f", b - a }')

	# stop: a stalled collector is let go first (its reset ends the blocked
	# send); the dead export then waits out the stop's grace, as documented
	[ -n "$dead_pid" ] && ctf_stop "$dead_pid" 5
	local t_term; t_term=$(ctf_now)
	ctf_stop "$pid" 20
	ctf_is "$CTF_STOP_STATUS/$CTF_STOP_KILLED" 0/0 "$name: ctflowd exits 0 on SIGTERM within its stop bound ($(ctf_elapsed "$t_term") s; exit status/killed)"
	ctf_check "$name: the log names what the dead export did not deliver" \
		grep -q 'export dead: stopping with [0-9]* records not delivered' "$log"
	ctf_stop "$live_pid" 5
	ctf_stop "$nf_pid" 5
	[ "$name" = blackhole ] && ctf_nsx "$NS_RTR" nft delete table inet ctfdead

	last_tr=$(nfdump -R "$dir/nf" -q -N -o 'fmt:%tr' 2>/dev/null | sed 's/^ *//' | sort | tail -1)
	udp_delay=$(awk -v a="$t_flush" -v b="$(date -d "$last_tr" +%s.%N 2>/dev/null)" \
		'BEGIN { if (b != "") printf "%.2f", b - a }')
	delay_ok "$name: live-udp (nfcapd)" "$udp_delay"
	delay_ok "$name: live-tcp (TCP collector)" "$tcp_delay"

	ctf_nfdump_flows "$dir/nf" "$dir/nfdump.txt"
	judge "$name: live-udp, nfdump" nfdump "$dir/nfdump.txt"
	ipfixDump --in "$tcp_file" >"$dir/ipfixdump.txt" 2>"$dir/ipfixdump.err"
	grep '^\*\*\* File Stats' "$dir/ipfixdump.txt" | sed 's/^/# ipfixDump: /'
	judge "$name: live-tcp, ipfixDump" ipfixdump "$dir/ipfixdump.txt"
}

round blackhole
round stalled

ctf_diag "total $(ctf_elapsed "$T_BEGIN") s"
ctf_done
