#!/bin/bash
# flush_ipfix.sh - acceptance test of the foundation: every flow the router
# tracked reaches the IPFIX collector and the IPFIX file exactly once, with
# the right per-direction counters and times, and SIGTERM loses nothing.
#
# In fresh namespaces (lib.sh) the router runs ctflowd with a 16 KiB reliable
# netlink source and three IPFIX exports: UDP to nfcapd on 127.0.0.1, the
# same over UDP to pmacct's nfacctd, and a file.  Both UDP exports use the
# default mtu = auto, which on loopback (MTU 65536) must still give
# datagrams of at most 1472 bytes, as nfacctd reads only about 10 KB of one.  The client then makes
#   20,000 IPv4 UDP flows  2 packets x 78 bytes forward (the server drops
#                          them: reply direction 0/0)
#      500 TCP connections 200 bytes client -> server; the expected counts of
#                          each connection are what the client's TCP stack
#                          sent and received (flowgen -o, from TCP_INFO)
#    1,000 IPv6 UDP flows  2 packets x 98 bytes forward, 0/0 reply
# after which `conntrack -F` ends everything still in the table.  Once ctflowd
# is idle it gets SIGTERM and must exit 0 having exported everything.
#
# Judges, each on its own: nfdump (what nfcapd received), nfacctd (what it
# accounted, flow by flow; it has no reverse counters, so only the forward
# ones are compared there), ipfixDump (fixbuf reading the file), ipfix_verify.py (this project's decoder, also checking
# flowId, sequence numbers and times).  A plain netlink listener (ctlisten)
# records what the kernel reported, to tell daemon faults from harness ones.
#
# Then the same workload goes through ulogd2 in its stock configuration
# (NEW|DESTROY, hash table, default buffer) into nfcapd, and the flows it
# lost are reported for comparison; that part never fails the test and is
# skipped without ulogd.
#
# Environment: see lib.sh; CTF_PARTS="ctflowd ulogd" selects the parts.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ctf_require_root
ctf_require_cmd nfcapd nfdump nfacctd ipfixDump "$PYTHON" "$CTLISTEN"
PARTS=${CTF_PARTS:-ctflowd ulogd}
VERIFY=("$PYTHON" "$CTF_LIB_DIR/ipfix_verify.py")
export TZ=UTC   # nfdump and ipfixDump print local time; the scorer reads UTC

N_UDP=20000 N_TCP=500 N_UDP6=1000
PKTS=2 LEN=50 TCP_LEN=200
UDP_DPORT=20000 UDP_SPORT=1024
UDP6_DPORT=21000 UDP6_SPORT=30000
TCP_PORT=5001
SENTINEL_DPORT=19999
COLLECTOR_PORT=4739
PMACCT_PORT=4740
N_ALL=$((N_UDP + N_TCP + N_UDP6))
UDP_FWD_BYTES=$((PKTS * (28 + LEN)))
UDP6_FWD_BYTES=$((PKTS * (48 + LEN)))
NF_FILTER="(proto udp and dst port $UDP_DPORT) or (proto tcp and dst port $TCP_PORT) or (proto udp and dst port $UDP6_DPORT)"
NF_FMT="fmt:%pr %sa %sp %da %dp %ipkt %ibyt %opkt %obyt %ts %te"

T_BEGIN=$(ctf_now)
ctf_setup

ctf_spawn "$NS_SRV" "$CTF_WORK/tcp-server.log" "$FLOWGEN" tcp-server -p $TCP_PORT -t 600
TCP_SERVER=$CTF_LAST_PID

# workload DIR: the three kinds of flows, client -> server through the router.
# Sets W_T0/W_T1 (wall clock) and W_OK (1 when every generator did its part
# and the router saw exactly the flows and packets sent).
workload() {
	local dir=$1 nf0 udp0 out
	W_OK=1
	nf0=$(ctf_newflows); udp0=$(ctf_srv_udp_pkts)
	W_T0=$(ctf_now)
	if ! out=$(ctf_nsx "$NS_CLI" "$FLOWGEN" udp -d $SRV_IP -n $N_UDP -P $PKTS -l $LEN \
			-p $UDP_DPORT -S $UDP_SPORT 2>&1); then
		W_OK=0; ctf_diag "flowgen udp: $out"
	fi
	echo "$out" >"$dir/gen-udp.txt"
	if ! out=$(ctf_nsx "$NS_CLI" "$FLOWGEN" tcp -d $SRV_IP -n $N_TCP -p $TCP_PORT -l $TCP_LEN \
			-c 32 -o "$dir/tcp-flows.txt" 2>&1); then
		W_OK=0; ctf_diag "flowgen tcp: $out"
	fi
	echo "$out" >"$dir/gen-tcp.txt"
	ctf_diag "tcp per connection: $(ctf_kv pkts_per_flow "$out") pkts/$(ctf_kv bytes_per_flow "$out") bytes forward, $(ctf_kv rev_pkts_per_flow "$out") pkts/$(ctf_kv rev_bytes_per_flow "$out") bytes reply"
	if ! out=$(ctf_nsx "$NS_CLI" "$FLOWGEN" udp6 -d $SRV_IP6 -n $N_UDP6 -P $PKTS -l $LEN \
			-p $UDP6_DPORT -S $UDP6_SPORT 2>&1); then
		W_OK=0; ctf_diag "flowgen udp6: $out"
	fi
	echo "$out" >"$dir/gen-udp6.txt"
	W_T1=$(ctf_now)
	local created=$(($(ctf_newflows) - nf0)) udp_pkts=$(($(ctf_srv_udp_pkts) - udp0))
	ctf_diag "workload: $created new conntrack entries, $udp_pkts UDP packets reached the server, $(ctf_elapsed "$W_T0" "$W_T1") s"
	[ "$created" = $N_ALL ] || { W_OK=0; ctf_diag "router created $created entries, expected $N_ALL"; }
	[ "$udp_pkts" = $(((N_UDP + N_UDP6) * PKTS)) ] ||
		{ W_OK=0; ctf_diag "server got $udp_pkts UDP packets, expected $(((N_UDP + N_UDP6) * PKTS))"; }
}

# expect_args TCP_FLOWS_FILE: the three measured classes for ipfix_verify.py
expect_args() {
	EXPECT=(
		--expect "name=udp4 proto=17 family=4 src=$CLI_IP dst=$SRV_IP dport=$UDP_DPORT sport=$UDP_SPORT-$((UDP_SPORT + N_UDP - 1)) count=$N_UDP pkts=$PKTS bytes=$UDP_FWD_BYTES rpkts=0 rbytes=0"
		--expect "name=tcp proto=6 family=4 src=$CLI_IP dst=$SRV_IP dport=$TCP_PORT count=$N_TCP flows=$1"
		--expect "name=udp6 proto=17 family=6 src=$CLI_IP6 dst=$SRV_IP6 dport=$UDP6_DPORT sport=$UDP6_SPORT-$((UDP6_SPORT + N_UDP6 - 1)) count=$N_UDP6 pkts=$PKTS bytes=$UDP6_FWD_BYTES rpkts=0 rbytes=0"
	)
}

# judge NAME INPUT FILE EXTRA...: score one decoder's view; TAP line + details
judge() {
	local name=$1 input=$2 file=$3 out rc; shift 3
	out=$("${VERIFY[@]}" "$file" --input "$input" "${EXPECT[@]}" --t0 "$W_T0" --t1 "$W_T1" \
		--window "$WINDOW" "$@" 2>&1)
	rc=$?
	echo "$out" >"$file.verdict"
	if [ $rc = 0 ]; then
		ctf_ok "$name: $N_ALL flows ($N_UDP udp4, $N_TCP tcp, $N_UDP6 udp6) once each, counters exact ${JUDGE_WAYS:-both ways}, times in window"
		printf '%s\n' "$out" | grep '^cls=' | sed 's/^/# /'
	else
		local lines
		mapfile -t lines < <(printf '%s\n' "$out" | grep -E '^(FAIL|file=|cls=)')
		ctf_not_ok "$name" "${lines[@]}"
	fi
}

# witness_check FILE: did the kernel report the workload the way it was sent?
witness_check() {
	local w=$1 tcp=$2
	awk -v u4=$UDP_DPORT -v u6=$UDP6_DPORT -v tp=$TCP_PORT -v ub=$UDP_FWD_BYTES -v u6b=$UDP6_FWD_BYTES \
		-v pk=$PKTS -v nu=$N_UDP -v nt=$N_TCP -v n6=$N_UDP6 '
		FILENAME == ARGV[1] { tcp[$2 " " $3 " " $4 " " $5] = $6 " " $7 " " $8 " " $9; next }
		{ k = $1 " " $2 " " $3 " " $4 " " $5; if (k in seen) next; seen[k] = 1 }
		$1 == 17 && $5 == u4 && $2 !~ /:/ { n4++; if ($6 == pk && $7 == ub && $8 == 0 && $9 == 0) g4++ }
		$1 == 17 && $5 == u6 && $2 ~ /:/ { n6x++; if ($6 == pk && $7 == u6b && $8 == 0 && $9 == 0) g6++ }
		$1 == 6 && $5 == tp { ntx++; if (tcp[$2 " " $3 " " $4 " " $5] == $6 " " $7 " " $8 " " $9) gt++ }
		END {
			printf "udp4 %d/%d exact %d, tcp %d/%d agree with the client %d, udp6 %d/%d exact %d\n",
				n4, nu, g4, ntx, nt, gt, n6x, n6, g6
			exit !(n4 == nu && g4 == nu && ntx == nt && gt == nt && n6x == n6 && g6 == n6)
		}' "$tcp" "$w"
}

# ------------------------------------------------------------------ ctflowd

run_ctflowd() {
	local dir=$CTF_WORK/ctflowd conf log pid nfcapd nfacctd witness t_flush t_idle t_term rc0
	mkdir -p "$dir"
	conf=$dir/ctflowd.conf log=$dir/ctflowd.log
	ctf_ct_flush
	ctf_start_nfcapd "$dir/nf" $COLLECTOR_PORT; nfcapd=$CTF_LAST_PID
	ctf_start_nfacctd "$dir/pmacct" $PMACCT_PORT; nfacctd=$CTF_LAST_PID
	ctf_start_witness "$dir"; witness=$CTF_LAST_PID

	ctf_ctflowd_conf "$conf"
	ctf_conf_udp_and_file "$conf" $COLLECTOR_PORT "$dir/export.ipfix"
	cat >>"$conf" <<-EOF

	[export pmacct]
	format = ipfix
	transport = udp
	destination = 127.0.0.1:$PMACCT_PORT
	flush_interval = 1s
	EOF
	if ! ctf_start_ctflowd "$conf" "$log"; then
		ctf_not_ok "ctflowd starts and listens for DESTROY events" "config: $conf"
		return 1
	fi
	pid=$CTF_LAST_PID
	ctf_ok "ctflowd starts and listens for DESTROY events"
	local rcverr0 ticks0
	rcverr0=$(ctf_udp_rcvbuf_errors); ticks0=$(ctf_cpu_ticks "$pid")

	workload "$dir"
	ctf_check "workload: router created $N_ALL entries, every packet reached the server" [ "$W_OK" = 1 ]

	t_flush=$(ctf_now)
	ctf_ct_flush
	ctf_wait_idle "$pid" 1.5 60 || ctf_diag "ctflowd did not become idle within 60 s (or died)"
	t_idle=$(ctf_now)
	local ticks=$(($(ctf_cpu_ticks "$pid") - ticks0)) dying count
	dying=$(ctf_ct_dying); count=$(ctf_ct_count)
	ctf_diag "flush + drain took $(ctf_elapsed "$t_flush" "$t_idle") s; ctflowd used $(ctf_ticks_to_s $ticks) s CPU since start of workload"
	ctf_check "router table empty, no entry parked waiting for delivery (count=$count dying=$dying)" \
		[ "$count/$dying" = 0/0 ]

	t_term=$(ctf_now)
	ctf_stop "$pid" 20
	rc0=$CTF_STOP_STATUS
	if [ "$CTF_STOP_KILLED" = 0 ] && [ "$rc0" = 0 ]; then
		ctf_ok "ctflowd exits 0 on SIGTERM ($(ctf_elapsed "$t_term") s)"
	else
		ctf_not_ok "ctflowd exits 0 on SIGTERM" "exit status $rc0, needed SIGKILL: $CTF_STOP_KILLED"
		ctf_diag_file "$log" 30
	fi
	grep -iE 'critical|error|warn' "$log" | head -5 | sed 's/^/# ctflowd log: /'
	WINDOW=$(awk -v a="$W_T1" -v b="$(ctf_now)" 'BEGIN { printf "%d", b - a + 2 }')
	sleep 0.5   # the last datagrams reach nfcapd
	ctf_stop "$witness"; ctf_stop "$nfcapd"; ctf_stop_nfacctd "$nfacctd" "$dir/pmacct"
	local rcverr=$(($(ctf_udp_rcvbuf_errors) - rcverr0))
	[ "$rcverr" = 0 ] || ctf_diag "UDP receive buffer errors in the router during the run: $rcverr (collector drops)"

	local wit
	if wit=$(witness_check "$dir/witness.txt" "$dir/tcp-flows.txt"); then
		ctf_ok "kernel reported the workload as sent (ctlisten: $wit)"
	else
		ctf_not_ok "kernel reported the workload as sent" "ctlisten: $wit" "$(cat "$dir/witness.log")"
	fi

	expect_args "$dir/tcp-flows.txt"
	# nfdump: what the UDP collector received
	nfdump -R "$dir/nf" -q -N -o "$NF_FMT" "$NF_FILTER" >"$dir/nfdump.txt" 2>"$dir/nfdump.err"
	judge "nfdump (UDP export via nfcapd)" nfdump "$dir/nfdump.txt"
	local seqf
	seqf=$(nfdump -R "$dir/nf" -I 2>/dev/null | awk '/^Sequence failures:/ { print $3 }')
	ctf_is "${seqf:-none}" 0 "nfcapd saw no IPFIX sequence failures"
	# nfacctd: what pmacct accounted from the other UDP export
	ctf_nfacctd_flows "$dir/pmacct" "$dir/nfacctd.txt"
	awk '{ print $1, $2, $3, $4, $5, $6, $7, 0, 0 }' "$dir/tcp-flows.txt" >"$dir/tcp-forward.txt"
	expect_args "$dir/tcp-forward.txt"
	JUDGE_WAYS="forward (nfacctd keeps no reverse counters)" \
		judge "nfacctd (UDP export via pmacct)" nfdump "$dir/nfacctd.txt"
	expect_args "$dir/tcp-flows.txt"
	local troubles
	troubles=$(ctf_nfacctd_troubles "$dir/pmacct")
	ctf_check "nfacctd lost nothing: every datagram read whole, no queue or cache overflow" [ -z "$troubles" ]
	[ -z "$troubles" ] || printf '%s\n' "$troubles" | head -3 | sed 's/^/# nfacctd: /'
	grep -E 'obtained' "$dir/pmacct/nfacctd.log" | head -1 | sed 's/^/# nfacctd: /'
	# ipfixDump: fixbuf's reading of the file export
	if [ -s "$dir/export.ipfix" ]; then
		ipfixDump --in "$dir/export.ipfix" >"$dir/ipfixdump.txt" 2>"$dir/ipfixdump.err"
		grep '^\*\*\* File Stats' "$dir/ipfixdump.txt" | sed 's/^/# ipfixDump: /'
		judge "ipfixDump (file export)" ipfixdump "$dir/ipfixdump.txt" --no-other
		judge "ipfix_verify.py (file export)" ipfix "$dir/export.ipfix" --no-other --require-flowid --ies
	else
		ctf_not_ok "ipfixDump (file export)" "no export file at $dir/export.ipfix"
		ctf_not_ok "ipfix_verify.py (file export)" "no export file"
	fi
	CTFLOWD_CPU=$(ctf_ticks_to_s $ticks)
}

# ------------------------------------------------------------------ ulogd2, for comparison

run_ulogd() {
	local dir=$CTF_WORK/ulogd pid nfcapd conf plugdir
	if ! command -v ulogd >/dev/null 2>&1; then
		ctf_skip "ulogd2 (stock) on the same workload" "ulogd not installed"
		return 0
	fi
	plugdir=$(dirname "$(find /usr/lib /usr/local/lib -name ulogd_inpflow_NFCT.so 2>/dev/null | head -1)")
	if [ ! -e "$plugdir/ulogd_output_IPFIX.so" ]; then
		ctf_skip "ulogd2 (stock) on the same workload" "ulogd NFCT/IPFIX plugins not found"
		return 0
	fi
	mkdir -p "$dir"
	conf=$dir/ulogd.conf
	# Stock accounting settings: nothing set in [ct1] (hash table on,
	# NEW|DESTROY, default buffer, not reliable).  [ipfix1] only says where
	# the collector is.
	cat >"$conf" <<-EOF
	[global]
	logfile="$dir/ulogd.log"
	loglevel=3
	plugin="$plugdir/ulogd_inpflow_NFCT.so"
	plugin="$plugdir/ulogd_output_IPFIX.so"
	stack=ct1:NFCT,ipfix1:IPFIX

	[ct1]

	[ipfix1]
	oid=1
	host="127.0.0.1"
	port=$COLLECTOR_PORT
	proto="udp"
	EOF
	ctf_ct_flush
	ctf_start_nfcapd "$dir/nf" $COLLECTOR_PORT; nfcapd=$CTF_LAST_PID
	ctf_spawn "$NS_RTR" "$dir/ulogd.stdout" ulogd -c "$conf"
	pid=$CTF_LAST_PID
	if ! ctf_wait_ct_listener "$pid" 10; then
		ctf_skip "ulogd2 (stock) on the same workload" "ulogd did not start: $(tail -3 "$dir/ulogd.log" "$dir/ulogd.stdout" 2>/dev/null | tr '\n' ' ')"
		ctf_stop "$pid"; ctf_stop "$nfcapd"
		return 0
	fi
	# ulogd 2.0.8 arms its IPFIX flush timer once, at start; let it expire
	# on an empty message before the workload.
	sleep 1.3
	local ticks0
	ticks0=$(ctf_cpu_ticks "$pid")
	workload "$dir"
	ctf_ct_flush
	ctf_wait_idle "$pid" 1.5 60
	local ticks=$(($(ctf_cpu_ticks "$pid") - ticks0))
	# Its last, partly filled message only leaves when later records fill
	# it: push it out with sentinel flows (outside the measured ports).
	ctf_nsx "$NS_CLI" "$FLOWGEN" udp -d $SRV_IP -n 64 -P 1 -l 10 -p $SENTINEL_DPORT -S $UDP_SPORT >/dev/null
	ctf_ct_flush
	ctf_wait_idle "$pid" 1.5 30
	sleep 0.5
	ctf_stop "$pid" 5; ctf_stop "$nfcapd"

	nfdump -R "$dir/nf" -q -N -o "$NF_FMT" "$NF_FILTER" >"$dir/nfdump.txt" 2>"$dir/nfdump.err"
	# ulogd sums both directions into one counter and writes IPv6 flows as
	# IPv4 records, so only count distinct flows per class here.
	local v
	v=$("${VERIFY[@]}" "$dir/nfdump.txt" --input nfdump \
		--expect "name=udp4 proto=17 family=4 dport=$UDP_DPORT count=$N_UDP" \
		--expect "name=tcp proto=6 dport=$TCP_PORT count=$N_TCP" \
		--expect "name=udp6 proto=17 dport=$UDP6_DPORT count=$N_UDP6" 2>&1)
	echo "$v" >"$dir/nfdump.txt.verdict"
	local d4 dt d6 got lost v6ok
	d4=$(ctf_kv distinct "$(echo "$v" | grep '^cls=udp4 ')")
	dt=$(ctf_kv distinct "$(echo "$v" | grep '^cls=tcp ')")
	d6=$(ctf_kv distinct "$(echo "$v" | grep '^cls=udp6 ')")
	v6ok=$(awk -v p=$UDP6_DPORT '$1 == 17 && $5 == p && $2 ~ /:/' "$dir/nfdump.txt" | wc -l)
	got=$((${d4:-0} + ${dt:-0} + ${d6:-0})); lost=$((N_ALL - got))
	ctf_ok "ulogd2 (stock) on the same workload: $got of $N_ALL flows received, $lost lost (informational)"
	ctf_diag "ulogd2: udp4 ${d4:-0}/$N_UDP, tcp ${dt:-0}/$N_TCP, udp6 ${d6:-0}/$N_UDP6 (of which $v6ok with their IPv6 addresses); CPU $(ctf_ticks_to_s $ticks) s (ctflowd: ${CTFLOWD_CPU:-n/a} s)"
}

CTFLOWD_CPU=
for part in $PARTS; do
	case $part in
	ctflowd)
		ctf_require_cmd "$CTFLOWD"
		run_ctflowd ;;
	ulogd) run_ulogd ;;
	*) ctf_bail "unknown part '$part' in CTF_PARTS" ;;
	esac
done
ctf_stop "$TCP_SERVER"
ctf_diag "total $(ctf_elapsed "$T_BEGIN") s"
ctf_done
