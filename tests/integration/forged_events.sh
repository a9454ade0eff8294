#!/bin/bash
# forged_events.sh - netlink messages a local process forges and sends to
# ctflowd's event socket are not believed, and cannot stop or crash it.
#
# Any process with CAP_NET_ADMIN in the watched namespace can unicast to the
# port id of ctflowd's event socket.  In fresh namespaces (lib.sh) the
# router runs ctflowd (16 KiB reliable source) with three exports: IPFIX
# over UDP to nfcapd, an IPFIX file and a JSON file.  From inside the
# router namespace, nlforge then sends to the port id /proc/net/netlink
# lists for ctflowd's socket:
#   * a well-formed DESTROY of a flow that never existed, 203.0.113.66 ->
#     198.51.100.77 with 999,999,999,999 bytes, once and then 20 times more
#   * a DESTROY whose header claims 0xFFFFFFF0 bytes (once crashed the
#     worker), one claiming 0xFFFFFFFF (once made the reader spin), and one
#     claiming 0 bytes
# Judged:
#   * the worker is the same process afterwards (no death, no restart) and
#     its CPU time comes to rest (no spinning reader)
#   * the statistics count every forged datagram as not from the kernel
#     (none as malformed: they are dropped before parsing), and the log
#     names the sender's port id, once and not once per message
#   * 500 real UDP flows made afterwards reach every export exactly once,
#     with exact counters (nfdump for nfcapd, ipfixDump and ipfix_verify.py
#     for the file, the JSON lines), and nothing forged appears in any
#     export: neither its addresses nor its byte count
#   * ctflowd exits 0 on SIGTERM
#
# Environment: see lib.sh.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ctf_require_root
ctf_require_cmd nfcapd nfdump ipfixDump "$PYTHON" "$NLFORGE" "$CTFLOWD"
export TZ=UTC   # nfdump prints local time; the scorer reads UTC

N=500 PKTS=2 LEN=50 DPORT=20000 SPORT=1024
FWD_BYTES=$((PKTS * (28 + LEN)))
PORT=4739
FORGED_SRC=203.0.113.66 FORGED_DST=198.51.100.77 FORGED_BYTES=999999999999
REPEATS=20

T_BEGIN=$(ctf_now)
ctf_setup
DIR=$CTF_WORK/forged
mkdir -p "$DIR"
CONF=$DIR/ctflowd.conf LOG=$DIR/ctflowd.log EXPORT=$DIR/export.ipfix JSON=$DIR/export.json
export CTF_LIB_DIR

ctf_start_nfcapd "$DIR/nf" $PORT; NFCAPD=$CTF_LAST_PID
ctf_ctflowd_conf "$CONF"
ctf_conf_udp_and_file "$CONF" $PORT "$EXPORT"
cat >>"$CONF" <<EOF

[export json]
format = json
transport = file
path = $JSON
flush_interval = 200ms
EOF
ctf_start_ctflowd "$CONF" "$LOG" || ctf_bail "ctflowd did not start (config $CONF)"
SUP=$CTF_LAST_PID
ctf_wait_worker "$SUP" "$LOG" || { ctf_diag_file "$LOG"; ctf_bail "no worker running under supervisor $SUP"; }
WORKER=$CTF_WORKER
PORTID=$(ctf_ct_listener_portid "$SUP" "$NS_RTR")
if [ -n "$PORTID" ] && [ "$PORTID" != 0 ]; then
	ctf_ok "ctflowd runs (supervisor $SUP, worker $WORKER); its event socket has port id $PORTID"
else
	ctf_bail "no port id for ctflowd's event socket in /proc/net/netlink of $NS_RTR"
fi

# ------------------------------------------------------------------ the forgeries

# forge KIND [ARGS...]: nlforge in the router, to ctflowd's port id
forge() { ctf_nsx "$NS_RTR" "$NLFORGE" -p "$PORTID" "$@" 2>&1; }

TICKS0=$(ctf_cpu_ticks "$WORKER")
SENT=0
for kind in destroy len-fffffff0 len-ffffffff len-zero; do
	if out=$(forge "$kind" -s $FORGED_SRC -d $FORGED_DST -B $FORGED_BYTES); then
		SENT=$((SENT + 1))
		ctf_ok "nlforge sent '$kind' to port id $PORTID (the kernel delivered it)"
	else
		ctf_not_ok "nlforge sent '$kind' to port id $PORTID" "$out"
	fi
	sleep 0.2
	ctf_is "$(ctf_worker_of "$SUP")" "$WORKER" "after '$kind' the worker $WORKER still runs"
done
if out=$(forge destroy -s $FORGED_SRC -d $FORGED_DST -B $FORGED_BYTES -S 4445 -n $REPEATS); then
	SENT=$((SENT + REPEATS))
	ctf_ok "nlforge sent $REPEATS more forged DESTROYs"
else
	ctf_not_ok "nlforge sent $REPEATS more forged DESTROYs" "$out"
fi

# no spinning reader: the worker's CPU time comes to rest
if ctf_wait_idle "$WORKER" 2 30; then
	ctf_ok "the worker is idle after the forgeries (CPU $(ctf_ticks_to_s $(($(ctf_cpu_ticks "$WORKER") - TICKS0))) s since the first)"
else
	ctf_not_ok "the worker is idle after the forgeries" \
		"CPU $(ctf_ticks_to_s $(($(ctf_cpu_ticks "$WORKER") - TICKS0))) s since the first; alive: $(ctf_alive "$WORKER" && echo yes || echo no)"
fi

# the statistics line counts them (logged every second)
not_kernel=
for ((i = 0; i < 50; i++)); do
	line=$(grep "ctflowd\[$WORKER\] .* statistics: " "$LOG" | tail -1)
	not_kernel=$(printf '%s\n' "$line" | sed -n 's/.*, not from the kernel \([0-9]*\).*/\1/p')
	[ "${not_kernel:-0}" -ge "$SENT" ] && break
	sleep 0.2
done
malformed=$(printf '%s\n' "$line" | sed -n 's/.*, malformed \([0-9]*\),.*/\1/p')
ctf_is "${not_kernel:-none}/${malformed:-none}" "$SENT/0" \
	"the statistics count the $SENT forged datagrams as not from the kernel, none as malformed (not from the kernel/malformed)"
first=$(grep -c "dropped a message from port id [0-9]*, not from the kernel" "$LOG")
ctf_is "$first" 1 "the first forged message is logged with its sender's port id, once"
grep "not from the kernel" "$LOG" | grep -v ' statistics: ' | head -3 | sed 's/^.*\] /# ctflowd log: /'

# ------------------------------------------------------------------ real flows afterwards

if ctf_gen_udp $N $DPORT $SPORT $PKTS $LEN; then
	ctf_ok "workload: router created $N entries, every packet reached the server"
else
	ctf_not_ok "workload: router created $N entries, every packet reached the server"
fi
W_T0=$CTF_GEN_T0 W_T1=$CTF_GEN_T1
ctf_ct_flush
ctf_wait_stat_export "$LOG" file records $N 30 ||
	ctf_diag "the file export has not taken $N records within 30 s"
ctf_wait_lines "$JSON" $N 30 || ctf_diag "the JSON export has not $N lines within 30 s"
ctf_is "$(ctf_worker_of "$SUP")" "$WORKER" "the worker $WORKER ran throughout"
restarts=$(grep -c 'restarting it in' "$LOG")
ctf_is "$restarts" 0 "the supervisor restarted no worker"

ctf_stop_clean "$SUP" ctflowd "$LOG"
grep ' final: ' "$LOG" | sed 's/^.*\] /# /'
WINDOW=$(awk -v a="$W_T1" -v b="$(ctf_now)" 'BEGIN { printf "%d", b - a + 2 }')
sleep 0.5   # the last datagrams reach nfcapd
ctf_stop "$NFCAPD"

# ------------------------------------------------------------------ judge

# verify VIEW INPUT FILE [EXTRA...]: the real flows once each, no other record
verify() {
	local view=$1 input=$2 file=$3 sum cls; shift 3
	ctf_ipfix_verify "$view" "$file" udp --input "$input" \
		--expect "name=udp proto=17 family=4 src=$CLI_IP dst=$SRV_IP dport=$DPORT sport=$SPORT-$((SPORT + N - 1)) count=$N pkts=$PKTS bytes=$FWD_BYTES rpkts=0 rbytes=0" \
		--t0 "$W_T0" --t1 "$W_T1" --window "$WINDOW" "$@" || return
	sum=$CTF_V_SUM cls=$CTF_V_CLS
	ctf_is "$(ctf_kv distinct "$cls")/$(ctf_kv unmatched_records "$sum")" "$N/0" \
		"$view: all $N real flows arrived, no record of any other flow (distinct/other)"
	ctf_verify_exact "$view" "$input" $PKTS $FWD_BYTES
}

# forged_in VIEW FILE: the forged flow's addresses and byte count are absent
forged_in() {
	local hits
	hits=$(grep -cE "$FORGED_SRC|$FORGED_DST|$FORGED_BYTES" "$2")
	ctf_is "$hits" 0 "$1: nothing forged ($FORGED_SRC, $FORGED_DST, $FORGED_BYTES bytes) in it"
}

ctf_nfdump_flows "$DIR/nf" "$DIR/nfdump.txt"
nfdump -R "$DIR/nf" -q -N -o csv >"$DIR/nfdump.csv" 2>/dev/null
verify "nfdump (UDP export via nfcapd)" nfdump "$DIR/nfdump.txt"
forged_in "nfdump (all records, csv)" "$DIR/nfdump.csv"
if [ -s "$EXPORT" ]; then
	verify "ipfix_verify.py (file export)" ipfix "$EXPORT" --require-flowid
	ipfixDump --in "$EXPORT" >"$DIR/ipfixdump.txt" 2>"$DIR/ipfixdump.err"
	grep '^\*\*\* File Stats' "$DIR/ipfixdump.txt" | sed 's/^/# ipfixDump: /'
	records=$(sed -n 's/^\*\*\* File Stats: .* \([0-9]*\) Data Records.*/\1/p' "$DIR/ipfixdump.txt")
	ctf_is "${records:-none}" $N "ipfixDump reads $N data records from the file export"
	forged_in "ipfixDump (file export)" "$DIR/ipfixdump.txt"
else
	ctf_not_ok "ipfix_verify.py (file export)" "no export file at $EXPORT"
fi
json_flows=$(grep -c "\"src\":\"$CLI_IP\",\"dst\":\"$SRV_IP\"" "$JSON")
json_sports=$(grep -o '"sport":[0-9]*' "$JSON" | sort -u | wc -l)
ctf_is "$(ctf_json_lines "$JSON")/$json_flows/$json_sports" "$N/$N/$N" \
	"JSON export: $N lines, all real flows, $N distinct source ports (lines/real/sports)"
forged_in "JSON export" "$JSON"

ctf_diag "total $(ctf_elapsed "$T_BEGIN") s"
ctf_done
