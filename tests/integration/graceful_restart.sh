#!/bin/bash
# graceful_restart.sh - without a service manager, a stop and a start of
# ctflowd lose no flow: the stopped ctflowd leaves its conntrack event socket
# to a holder process, and the next ctflowd takes it over.
#
# handover_timeout = 30s: on SIGTERM ctflowd hands the socket to a detached
# holder that keeps it (the kernel keeps queueing into it and, in reliable
# mode, parks what does not fit) until a ctflowd started with the same state
# directory takes it over through state_directory/handover.sock.
#
#   workload   5 batches of 10,000 two-packet IPv4 UDP flows (dport 20000+b,
#              sports 1024..11023), each followed by `conntrack -F`, one
#              every second or so; 50,000 flows in all
#   restart    after batch 1 the supervisor gets SIGTERM and must exit 0;
#              batch 3 waits until it has, so its 10,000 DESTROYs happen
#              while only the holder has the socket; GAP seconds after the
#              exit a new ctflowd starts with the same configuration
#
# Judged: the first ctflowd exits 0 and says it left the socket to a holder;
# a holder with the socket exists while no ctflowd runs; the second ctflowd
# logs that it took the socket over from the previous ctflowd, reads the same
# socket, and the holder is gone; every one of the 50,000 flows reached
# nfcapd (nfdump) and the IPFIX file (ipfix_verify.py) exactly once by
# 5-tuple with exact counters, flowIds unique.  Finally the second ctflowd
# stops too; the holder it leaves is found, checked and killed (by pid).
#
# Environment: see lib.sh.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ctf_require_root
ctf_require_cmd nfcapd nfdump "$PYTHON" "$CTLISTEN" "$CTFLOWD"
export TZ=UTC   # nfdump prints local time; the scorer reads UTC

BATCHES=5 N_BATCH=10000 PKTS=2 LEN=50 SPORT=1024 DPORT=20000
N=$((BATCHES * N_BATCH))
FWD_BYTES=$((PKTS * (28 + LEN)))
PORT=4739
PAUSE=1        # seconds between batches
GAP=3          # seconds from the first ctflowd's exit to the second's start
GAP_BATCH=3    # this batch waits until the first ctflowd has exited
HANDOVER=30s

T_BEGIN=$(ctf_now)
ctf_setup
DIR=$CTF_WORK/graceful
mkdir -p "$DIR"
CONF=$DIR/ctflowd.conf LOG1=$DIR/ctflowd-1.log LOG2=$DIR/ctflowd-2.log EXPORT=$DIR/export.ipfix
HANDOVER_SOCK=$CTF_WORK/state/handover.sock

# ------------------------------------------------------------------ helpers

# verify VIEW INPUT FILE [EXTRA...]: one decoder's view of the export, as
# separate checks
verify() {
	local view=$1 input=$2 file=$3 sum cls; shift 3
	ctf_ipfix_verify "$view" "$file" all --input "$input" --seq report \
		--expect "name=all proto=17 family=4 src=$CLI_IP dst=$SRV_IP dport=$DPORT-$((DPORT + BATCHES - 1)) sport=$SPORT-$((SPORT + N_BATCH - 1)) count=$N pkts=$PKTS bytes=$FWD_BYTES rpkts=0 rbytes=0" \
		--t0 "$W_T0" --t1 "$W_T1" --window "$WINDOW" "$@" || return
	sum=$CTF_V_SUM cls=$CTF_V_CLS
	local distinct other
	distinct=$(ctf_kv distinct "$cls"); other=$(ctf_kv unmatched_records "$sum")
	if [ "$distinct" = $N ] && [ "$other" = 0 ]; then
		ctf_ok "$view: all $N flows arrived, no record of any other flow"
	else
		local lines
		mapfile -t lines < <(ctf_batch_gaps "$input" "$file" $DPORT $BATCHES $SPORT $N_BATCH)
		ctf_not_ok "$view: all $N flows arrived, no record of any other flow" \
			"$distinct of $N distinct flows, $other records of other flows" "${lines[@]}"
	fi
	ctf_verify_exact "$view" "$input" $PKTS $FWD_BYTES
}

# ------------------------------------------------------------------ start

ctf_start_nfcapd "$DIR/nf" $PORT; NFCAPD=$CTF_LAST_PID
ctf_start_witness "$DIR"; WITNESS=$CTF_LAST_PID

CTF_HANDOVER=$HANDOVER ctf_ctflowd_conf "$CONF"
ctf_conf_udp_and_file "$CONF" $PORT "$EXPORT"
grep -q "^handover_timeout = $HANDOVER\$" "$CONF" || ctf_bail "configuration without handover_timeout = $HANDOVER"

ctf_start_ctflowd "$CONF" "$LOG1" || ctf_bail "ctflowd did not start (config $CONF)"
PID1=$CTF_LAST_PID
INODE1=$(ctf_ct_listener_inode "$PID1")
ctf_ok "the first ctflowd ($PID1) starts and listens for DESTROY events (socket inode $INODE1)"

# ------------------------------------------------------------------ run

TL=$DIR/timeline.txt
W_T0=$(ctf_now)
ctf_batch_workload "$TL" $DPORT $GAP_BATCH ctf_wait_file "$DIR/first.exited" 60 &
WL=$!
CTF_PIDS+=("$WL")
ctf_wait_lines "$TL" 2 60 || ctf_bail "the workload did not get through 2 batches"

T_TERM=$(ctf_now)
ctf_stop "$PID1" 30
T_EXIT=$(ctf_now)
touch "$DIR/first.exited"
if [ "$CTF_STOP_KILLED" = 0 ] && [ "$CTF_STOP_STATUS" = 0 ]; then
	ctf_ok "the first ctflowd exits 0 on SIGTERM ($(ctf_elapsed "$T_TERM" "$T_EXIT") s)"
else
	ctf_not_ok "the first ctflowd exits 0 on SIGTERM" "exit status $CTF_STOP_STATUS, needed SIGKILL: $CTF_STOP_KILLED"
	ctf_diag_file "$LOG1" 20
fi
line=$(grep 'conntrack event socket held for a successor' "$LOG1")
if [ -n "$line" ]; then
	ctf_ok "the first ctflowd logs: ${line#* notice: }"
else
	ctf_not_ok "the first ctflowd says it left the socket to a holder" "no 'held for a successor' line"
	ctf_diag_file "$LOG1" 10
fi
grep -E 'warning|critical' "$LOG1" | head -5 | sed 's/^/# ctflowd 1 log: /'
ctf_check_holder "$INODE1" "the first ctflowd's socket while no ctflowd runs"
HOLDER1=$CTF_HOLDER
ctf_check "the holder listens at $HANDOVER_SOCK" [ -S "$HANDOVER_SOCK" ]

sleep $GAP
T_START2=$(ctf_now)
ctf_start_ctflowd "$CONF" "$LOG2" || ctf_bail "the second ctflowd did not start (config $CONF)"
PID2=$CTF_LAST_PID
ctf_check_takeover "$PID2" "$LOG2" "$INODE1" "$HOLDER1" "$HANDOVER_SOCK"

wait "$WL"
W_T1=$(ctf_now)
bad=$(awk -v n=$N_BATCH -v p=$((N_BATCH * PKTS)) '$5 != n || $6 != p' "$TL")
ctf_is "$(wc -l <"$TL")/${bad:-none}" "$BATCHES/none" \
	"workload: $BATCHES batches, each created $N_BATCH entries and every packet reached the server (batches/bad)"
[ -s "$TL.err" ] && ctf_diag "$(cat "$TL.err")"
awk -v a="$T_TERM" -v b="$T_EXIT" -v c="$T_START2" '
	function ph(t) { return t < a ? "ctflowd 1 running" : t < b ? "ctflowd 1 stopping" : t < c ? "only the holder" : "ctflowd 2 running" }
	{ s = ph($3); e = ph($4)
	  printf "# batch %d (dport +%d): flush %.2f s, during: %s%s\n", $1, $1, $4 - $3, s, (e == s ? "" : " .. " e) }' "$TL"
ctf_diag "the first ctflowd took $(ctf_elapsed "$T_TERM" "$T_EXIT") s to stop; no ctflowd ran for $(ctf_elapsed "$T_EXIT" "$T_START2") s"
ctf_check "batch $GAP_BATCH ended its flows while only the holder had the socket" \
	awk -v b=$GAP_BATCH -v s="$T_EXIT" -v e="$T_START2" '$1 == b { f = ($3 >= s && $4 <= e) } END { exit !f }' "$TL"

ctf_settle "$PID2"

# ------------------------------------------------------------------ stop for good

ctf_stop_clean "$PID2" "the second ctflowd" "$LOG2"
grep ' final: ' "$LOG1" "$LOG2" | sed 's/^.*ctflowd-\([0-9]\)\.log:.*\] /# ctflowd \1: /'
grep -E 'warning|critical' "$LOG2" | head -5 | sed 's/^/# ctflowd 2 log: /'
# The second ctflowd leaves a holder too (handover_timeout is 30 s): it must
# exist, and this test ends it rather than leave it to its timeout.
mapfile -t H < <(ctf_holders)
if [ ${#H[@]} = 1 ] && [ "$(ctf_ct_listener_inode "${H[0]}")" = "$INODE1" ]; then
	ctf_ok "after the final stop a holder (${H[0]}) keeps the socket"
else
	ctf_not_ok "after the final stop one holder keeps the socket" "holders: ${H[*]:-none}"
fi
for h in "${H[@]}"; do kill -TERM "$h" 2>/dev/null; done
for ((i = 0; i < 50; i++)); do [ -z "$(ctf_holders)" ] && break; sleep 0.1; done
left=$(ctf_holders)
ctf_is "${left:-none}" none "the holder ends on SIGTERM (holders left)"
for h in $left; do kill -KILL "$h" 2>/dev/null; done

WINDOW=$(awk -v a="$W_T1" -v b="$(ctf_now)" 'BEGIN { printf "%d", b - a + 2 }')
sleep 0.5   # the last datagrams reach nfcapd
ctf_stop "$WITNESS"; ctf_stop "$NFCAPD"

# ------------------------------------------------------------------ judge

wit=$(ctf_witness_exact "$DIR/witness.txt" $DPORT $((DPORT + BATCHES - 1)) $PKTS $FWD_BYTES)
ctf_is "$wit" "$N $N" "the kernel reported all $N flows (ctlisten: distinct exact)"

ctf_verify_views "$DIR/nf" "$EXPORT"

ctf_diag "total $(ctf_elapsed "$T_BEGIN") s"
ctf_done
