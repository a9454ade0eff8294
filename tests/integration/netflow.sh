#!/bin/bash
# netflow.sh - NetFlow v9 or v5 (CTF_NETFLOW=netflow9|netflow5) of the
# foundation's workload: every connection the router tracked reaches nfcapd
# with exactly the kernel's counts and times.
#
# In fresh namespaces (lib.sh) ctflowd exports over UDP to nfcapd on the
# router's 127.0.0.1 (from a fixed source_port), and for v9 also to pmacct's
# nfacctd.  tshark captures the datagrams to nfcapd on the loopback.  The
# client makes
#   20,000 IPv4 UDP flows  2 packets x 78 bytes forward, reply 0/0
#      500 TCP connections 200 bytes client -> server and the server's answer
#    1,000 IPv6 UDP flows  2 packets x 98 bytes forward, reply 0/0
# and `conntrack -F` ends what is left.  ctlisten, a plain netlink listener,
# records what the kernel reported: each connection's counters and start
# and stop times are the truth the collectors' records are held against,
# to the millisecond (netflow_score.py).
#   netflow9: one biflow record per connection (OUT_BYTES/OUT_PKTS for the
#     reply), IPv6 included; nfacctd (forward counters only) the same; nfcapd
#     sees no sequence failure; tshark decodes every datagram as NetFlow v9
#     with no malformed packet and no expert warning.
#   netflow5: a record per direction that had packets (the reply one with
#     the reply tuple), IPv4 only; the 1,000 IPv6 flows are in no record,
#     and the statistics line counts them as skipped.
# CTF_NETFLOW_TIMES (absolute|uptime) sets netflow_times for v9; with
# uptime, nfacctd is not judged: pmacct 1.7.7 turns FIRST/LAST_SWITCHED into
# whole seconds only.
#
# Environment: see lib.sh.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ctf_require_root
FORMAT=${CTF_NETFLOW:-netflow9}
TIMES=${CTF_NETFLOW_TIMES:-absolute}
ctf_require_cmd "$CTFLOWD" "$PYTHON" "$CTLISTEN" nfcapd nfdump tshark
[ "$FORMAT" = netflow9 ] && ctf_require_cmd nfacctd
export TZ=UTC   # nfdump prints local time; the scorer reads UTC

N_UDP=${CTF_N_UDP:-20000} N_TCP=500 N_UDP6=1000
PKTS=2 LEN=50 TCP_LEN=200
UDP_DPORT=20000 UDP_SPORT=1024
UDP6_DPORT=21000 UDP6_SPORT=30000
TCP_PORT=5001
PORT=$((20000 + $$ % 20000)) PMACCT_PORT=$((20000 + ($$ + 1) % 20000))
SOURCE_PORT=$((40000 + $$ % 20000))
N_ALL=$((N_UDP + N_TCP + N_UDP6))
NF_FILTER="(proto udp and port $UDP_DPORT) or (proto tcp and port $TCP_PORT) or (proto udp and port $UDP6_DPORT)"
SCORE=("$PYTHON" "$CTF_LIB_DIR/netflow_score.py")

T_BEGIN=$(ctf_now)
ctf_setup
DIR=$CTF_WORK/netflow
mkdir -p "$DIR"
CONF=$DIR/ctflowd.conf LOG=$DIR/ctflowd.log

ctf_spawn "$NS_SRV" "$DIR/tcp-server.log" "$FLOWGEN" tcp-server -p $TCP_PORT -t 600
ctf_start_nfcapd "$DIR/nf" "$PORT"; NFCAPD=$CTF_LAST_PID
NFACCTD=
if [ "$FORMAT" = netflow9 ]; then
	ctf_start_nfacctd "$DIR/pmacct" "$PMACCT_PORT"; NFACCTD=$CTF_LAST_PID
fi
ctf_start_witness "$DIR"; WITNESS=$CTF_LAST_PID
# tshark: the datagrams to nfcapd, as they were on the wire (one frame each)
ctf_start_tshark "$DIR/cap.pcapng" "$DIR/tshark.log" "udp dst port $PORT"
TSHARK=$CTF_LAST_PID

ctf_ctflowd_conf "$CONF"
cat >>"$CONF" <<EOF

[export collector]
format = $FORMAT
transport = udp
destination = 127.0.0.1:$PORT
source_port = $SOURCE_PORT
flush_interval = 1s
EOF
if [ "$FORMAT" = netflow9 ]; then
	cat >>"$CONF" <<-EOF
	netflow_times = $TIMES

	[export pmacct]
	format = netflow9
	transport = udp
	destination = 127.0.0.1:$PMACCT_PORT
	flush_interval = 1s
	netflow_times = $TIMES
	EOF
fi
ctf_start_ctflowd "$CONF" "$LOG" || ctf_bail "ctflowd did not start"
PID=$CTF_LAST_PID
ctf_ok "ctflowd starts with a $FORMAT export"

nf0=$(ctf_newflows)
W_T0=$(ctf_now)
ctf_nsx "$NS_CLI" "$FLOWGEN" udp -d $SRV_IP -n $N_UDP -P $PKTS -l $LEN -p $UDP_DPORT -S $UDP_SPORT \
	>"$DIR/gen-udp.txt" 2>&1 || ctf_diag "flowgen udp: $(cat "$DIR/gen-udp.txt")"
ctf_nsx "$NS_CLI" "$FLOWGEN" tcp -d $SRV_IP -n $N_TCP -p $TCP_PORT -l $TCP_LEN -c 32 \
	>"$DIR/gen-tcp.txt" 2>&1 || ctf_diag "flowgen tcp: $(cat "$DIR/gen-tcp.txt")"
ctf_nsx "$NS_CLI" "$FLOWGEN" udp6 -d $SRV_IP6 -n $N_UDP6 -P $PKTS -l $LEN -p $UDP6_DPORT -S $UDP6_SPORT \
	>"$DIR/gen-udp6.txt" 2>&1 || ctf_diag "flowgen udp6: $(cat "$DIR/gen-udp6.txt")"
created=$(($(ctf_newflows) - nf0))
ctf_is "$created" $N_ALL "workload: the router created $N_ALL connections"
ctf_ct_flush
ctf_wait_idle "$PID" 1.5 60 || ctf_diag "ctflowd did not become idle within 60 s"
ctf_wait_ct_empty 30 || ctf_diag "router table not empty"
sleep 1.5   # the last partly filled packet leaves (flush_interval) and is logged
FINAL=$(ctf_last_stats "$LOG")
ctf_stop "$PID" 20
ctf_is "$CTF_STOP_STATUS/$CTF_STOP_KILLED" 0/0 "ctflowd exits 0 on SIGTERM"
grep -iE 'critical|error|warn' "$LOG" | head -5 | sed 's/^/# ctflowd log: /'
sleep 0.5
ctf_stop "$WITNESS"; ctf_stop "$NFCAPD"; ctf_stop "$TSHARK"
[ -n "$NFACCTD" ] && ctf_stop_nfacctd "$NFACCTD" "$DIR/pmacct"

# ---------------------------------------------------------------- nfdump
nfdump -R "$DIR/nf" -q -N -o "fmt:%pr %sa %sp %da %dp %ipkt %ibyt %opkt %obyt %ts %te" \
	"$NF_FILTER" >"$DIR/nfdump.txt" 2>"$DIR/nfdump.err"
if [ "$FORMAT" = netflow9 ]; then
	MODE=biflow MODE6=biflow
else
	MODE=v5 MODE6=none
fi
CLASSES=(--class "udp4:17:4:$UDP_DPORT:$N_UDP:$MODE" --class "tcp:6:4:$TCP_PORT:$N_TCP:$MODE"
	 --class "udp6:17:6:$UDP6_DPORT:$N_UDP6:$MODE6")
out=$("${SCORE[@]}" "$DIR/witness.txt" "$DIR/nfdump.txt" "${CLASSES[@]}" 2>&1)
rc=$?
echo "$out" >"$DIR/nfdump.verdict"
if [ $rc = 0 ]; then
	ctf_ok "nfdump: every connection as $FORMAT sends it ($MODE; IPv6 $MODE6), counts and start/end times exact to the ms"
else
	ctf_not_ok "nfdump: every connection, counts and times exact" "$out"
fi
printf '%s\n' "$out" | sed 's/^/# /'
seqf=$(nfdump -R "$DIR/nf" -I 2>/dev/null | awk '/^Sequence failures:/ { print $3 }')
ctf_is "${seqf:-none}" 0 "nfcapd saw no sequence failures"

# ---------------------------------------------------------------- statistics
skipped=$(ctf_stat_export "$FINAL" collector skipped)
if [ "$FORMAT" = netflow5 ]; then
	ctf_is "${skipped:-none}" $N_UDP6 "statistics: the $N_UDP6 IPv6 connections counted as skipped"
	ctf_is "$(grep -c 'IPv6 connections are left out' "$LOG")" 1 "the skipping of IPv6 is logged once"
else
	ctf_is "${skipped:-none}" 0 "statistics: nothing skipped"
fi

# ---------------------------------------------------------------- nfacctd
if [ -n "$NFACCTD" ] && [ "$TIMES" = uptime ]; then
	ctf_skip "nfacctd: every connection, counts and times exact" "nfacctd reads sysUptime times to the second only"
elif [ -n "$NFACCTD" ]; then
	ctf_nfacctd_flows "$DIR/pmacct" "$DIR/nfacctd.txt"
	awk -v u=$UDP_DPORT -v t=$TCP_PORT -v u6=$UDP6_DPORT '$5 == u || $5 == t || $5 == u6' \
		"$DIR/nfacctd.txt" >"$DIR/nfacctd-measured.txt"
	out=$("${SCORE[@]}" "$DIR/witness.txt" "$DIR/nfacctd-measured.txt" \
		--class "udp4:17:4:$UDP_DPORT:$N_UDP:forward" --class "tcp:6:4:$TCP_PORT:$N_TCP:forward" \
		--class "udp6:17:6:$UDP6_DPORT:$N_UDP6:forward" 2>&1)
	rc=$?
	echo "$out" >"$DIR/nfacctd.verdict"
	if [ $rc = 0 ]; then
		ctf_ok "nfacctd: every connection, forward counts and start/end times exact to the ms"
	else
		ctf_not_ok "nfacctd: every connection, forward counts and times exact" "$out" \
			"$(head -3 "$DIR/nfacctd-measured.txt")"
	fi
	troubles=$(ctf_nfacctd_troubles "$DIR/pmacct")
	ctf_check "nfacctd lost nothing (no incomplete datagram, no queue or cache overflow)" [ -z "$troubles" ]
fi

# ---------------------------------------------------------------- tshark
tshark -n -r "$DIR/cap.pcapng" -d "udp.port==$PORT,cflow" -T fields -e frame.number -e cflow.version \
	>"$DIR/tshark-frames.txt" 2>"$DIR/tshark-read.err"
frames=$(grep -c . "$DIR/tshark-frames.txt")
want_version=${FORMAT#netflow}
decoded=$(awk -v v="$want_version" '$2 == v' "$DIR/tshark-frames.txt" | wc -l)
messages=$(ctf_stat_export "$FINAL" collector messages)
ctf_is "$decoded/$frames" "${messages:-?}/${messages:-?}" \
	"tshark decodes every datagram ctflowd sent as NetFlow v$want_version (decoded/captured)"
bad=$(tshark -n -r "$DIR/cap.pcapng" -d "udp.port==$PORT,cflow" \
	-Y "_ws.malformed || _ws.expert.severity >= \"Warning\"" -T fields -e frame.number 2>/dev/null | grep -c .)
ctf_is "$bad" 0 "tshark: no malformed packet, no expert warning or error"
tshark -n -r "$DIR/cap.pcapng" -d "udp.port==$PORT,cflow" -q -z expert >"$DIR/tshark-expert.txt" 2>&1
[ "$bad" = 0 ] || ctf_diag_file "$DIR/tshark-expert.txt" 20
sports=$(tshark -n -r "$DIR/cap.pcapng" -T fields -e udp.srcport 2>/dev/null | sort -u | tr '\n' ' ')
ctf_is "$sports" "$SOURCE_PORT " "every datagram from source_port $SOURCE_PORT"

ctf_diag "total $(ctf_elapsed "$T_BEGIN") s"
ctf_done
