#!/bin/bash
# failover.sh - an export's backup takes over while its collector is down and
# gives the records back when it returns; each record reaches exactly one of
# the two collectors, once.
#
# In fresh namespaces (lib.sh) the router runs ctflowd with
#   [export primary]  IPFIX over TCP to collector P (tcp_collector.py,
#                     127.0.0.1), failover = backup, reconnect 100ms..500ms
#   [export backup]   IPFIX over TCP to collector B: a standby
#   [export json]     JSON lines to a file: what the kernel reported
# The TCP collectors store each connection's byte stream in a file of its
# own; ipfixDump decodes them.
#
#   phase A  P up: 2,000 UDP flows (dport 20000), conntrack -F, all to P
#   down     P stops (SIGTERM: it reads what arrived, then closes); the
#            export's reconnect is refused and it lets go; the backup takes
#            over (both logged)
#   phase B  3,000 UDP flows (dport 22000) in 10 batches, each flushed, 0.2 s
#            apart; P is started again after the third, so the hand-back
#            falls in the middle of phase B's records: each of them goes to
#            exactly one collector
#   back     the export reconnects, asks for its records back, the backup
#            lets go once what it sent is acknowledged (logged)
#   phase C  2,000 UDP flows (dport 24000), conntrack -F, all to P
#   phase D  P stops again, the backup takes over again; 1,000 UDP flows
#            (dport 26000), conntrack -F and at once SIGTERM to ctflowd: the
#            stop waits for the backup to deliver them, not for the stop's
#            grace (10 s) that an export without backup would wait out
#
# Judged: over the files of both collectors, as ipfixDump decodes them,
# every flow of the three phases exactly once (a record sent twice would be
# allowed only up to the "doubtful" count ctflowd reports, which must then
# say so; here every hand-off is clean and it must be 0), exact counters;
# phase A and C entirely at P, phase B split between B and P, phase D at
# B; the JSON file holds all 8,000; the final statistics of both exports
# show takeovers 2, givebacks 1, doubtful 0; the log has each switch.
#
# Environment: see lib.sh.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ctf_require_root
ctf_require_cmd ipfixDump "$PYTHON" "$CTFLOWD"
export TZ=UTC

P_PORT=4740 B_PORT=4741
N_A=2000 N_B=3000 N_C=2000 N_D=1000
N_ALL=$((N_A + N_B + N_C + N_D))
PKTS=2 LEN=50
UDP_FWD_BYTES=$((PKTS * (28 + LEN)))
A_DPORT=20000 B_DPORT=22000 C_DPORT=24000 D_DPORT=26000 SPORT=1024
B_BATCHES=10

T_BEGIN=$(ctf_now)
ctf_setup
DIR=$CTF_WORK/failover
P_DIR=$DIR/primary B_DIR=$DIR/backup
mkdir -p "$P_DIR" "$B_DIR"
CONF=$DIR/ctflowd.conf LOG=$DIR/ctflowd.log JSON=$DIR/flows.json

# wait_log PATTERN MAX_S: until ctflowd's log has a line matching PATTERN
wait_log() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do grep -q "$1" "$LOG" && return 0; sleep 0.1; done
	return 1
}

# wait_delivered N MAX_S: until the two exports together count N records
# delivered (the statistics line comes every second)
wait_delivered() {
	local i st
	for ((i = 0; i < $2 * 5; i++)); do
		st=$(ctf_last_stats "$LOG")
		[ $(($(ctf_stat_export "$st" primary records) + $(ctf_stat_export "$st" backup records))) -ge "$1" ] &&
			return 0
		sleep 0.2
	done
	return 1
}

# phase NAME DPORT N: N flows, flushed
phase() {
	ctf_gen_udp "$3" "$2" $SPORT $PKTS $LEN
	ctf_check "phase $1: router created $3 entries, every packet reached the server" [ $? = 0 ]
	ctf_ct_flush
}

ctf_start_tcp_collector "$DIR" "$P_DIR" $P_PORT p1; P_PID=$CTF_LAST_PID
ctf_start_tcp_collector "$DIR" "$B_DIR" $B_PORT b1; B_PID=$CTF_LAST_PID
ctf_ctflowd_conf "$CONF"
cat >>"$CONF" <<EOF

[export primary]
format = ipfix
transport = tcp
destination = 127.0.0.1:$P_PORT
flush_interval = 200ms
reconnect_min = 100ms
reconnect_max = 500ms
failover = backup

[export backup]
format = ipfix
transport = tcp
destination = 127.0.0.1:$B_PORT
flush_interval = 200ms
reconnect_min = 100ms
reconnect_max = 500ms

[export json]
format = json
path = $JSON
EOF
ctf_start_ctflowd "$CONF" "$LOG" || ctf_bail "ctflowd did not start (config $CONF)"
CTFLOWD_PID=$CTF_LAST_PID
sleep 1
ctf_check "the standby does not connect while the export is up" \
	bash -c "! grep -q 'opened' '$DIR/collector-b1.log'"

# --- phase A: the export sends
phase A $A_DPORT $N_A
ctf_wait_stat_export "$LOG" primary records $N_A 20 ||
	ctf_diag "primary: $(ctf_last_stats "$LOG" | grep -o 'export primary: [^;]*')"

# --- down
ctf_stop "$P_PID" 5
ctf_is "$CTF_STOP_STATUS/$CTF_STOP_KILLED" 0/0 "collector P stops on SIGTERM (exit status/killed)"
T_DOWN=$(ctf_now)
if wait_log 'export backup: taking over the records of export primary' 10; then
	ctf_ok "the backup takes over $(ctf_elapsed "$T_DOWN") s after P went down"
else
	ctf_not_ok "the backup takes over after P went down" "$(grep 'export primary\|export backup' "$LOG" | tail -5)"
fi

# --- phase B: the backup sends; P comes back while phase B's flows still end
ok=0
for ((i = 0; i < B_BATCHES; i++)); do
	ctf_gen_udp $((N_B / B_BATCHES)) $B_DPORT $((SPORT + i * N_B / B_BATCHES)) $PKTS $LEN || ok=1
	ctf_ct_flush
	if [ $i = 2 ]; then
		ctf_start_tcp_collector "$DIR" "$P_DIR" $P_PORT p2; P_PID=$CTF_LAST_PID
		T_UP=$(ctf_now)
	fi
	sleep 0.2
done
ctf_check "phase B: router created $N_B entries in $B_BATCHES batches, every packet reached the server" [ $ok = 0 ]
if wait_log 'export backup: gives the records of export primary back' 10; then
	# from the export's request to the backup letting go, by the log's
	# clock: at most the backup's wait for records (1 s) and for the
	# acknowledgement of what it sent (2 s)
	asked=$(grep -m1 'export primary: back; asking' "$LOG" | awk '{ print $2 }')
	given=$(grep -m1 'export backup: gives the records' "$LOG" | awk '{ print $2 }')
	took=$(awk -v a="$asked" -v b="$given" 'BEGIN { split(a, x, ":"); split(b, y, ":");
		printf "%.2f", (y[1] - x[1]) * 3600 + (y[2] - x[2]) * 60 + y[3] - x[3] }')
	ctf_check "the backup gives the records back ${took} s after the export asked (at most 3 s), $(ctf_elapsed "$T_UP") s after P is back" \
		awk -v t="$took" 'BEGIN { exit !(t >= 0 && t <= 3) }'
else
	ctf_not_ok "the backup gives the records back after P is back" "$(grep 'export primary\|export backup' "$LOG" | tail -5)"
fi
ctf_wait_stat_export "$LOG" json records $((N_A + N_B)) 20 || ctf_diag "json export behind"

# --- phase C: the export again
phase C $C_DPORT $N_C
wait_delivered $((N_A + N_B + N_C)) 20 || ctf_diag "not delivered: $(ctf_last_stats "$LOG")"

# --- phase D: down again, and a stop right after the flush
ctf_stop "$P_PID" 5
for ((i = 0; i < 100; i++)); do
	[ "$(grep -c 'export backup: taking over the records' "$LOG")" = 2 ] && break
	sleep 0.1
done
ctf_is "$(grep -c 'export backup: taking over the records' "$LOG")" 2 "P down again: the backup takes over again"
ctf_gen_udp $N_D $D_DPORT $SPORT $PKTS $LEN
ctf_check "phase D: router created $N_D entries, every packet reached the server" [ $? = 0 ]
ctf_ct_flush
T_TERM=$(ctf_now)
ctf_stop "$CTFLOWD_PID" 20
took=$(ctf_elapsed "$T_TERM")
ctf_is "$CTF_STOP_STATUS/$CTF_STOP_KILLED" 0/0 "ctflowd exits 0 on SIGTERM ($took s; exit status/killed)"
ctf_check "the stop waits for the backup, not for the grace of 10 s ($took s, at most 5 s)" \
	awk -v t="$took" 'BEGIN { exit !(t <= 5) }'
ctf_stop "$B_PID" 5

# --- the log and the counters
grep -E 'export (primary|backup):' "$LOG" | grep -v 'statistics\|final' | sed 's/^/# log: /'
ctf_is "$(grep -c 'export primary: down; export backup takes over' "$LOG")/$(grep -c 'export backup: taking over the records of export primary' "$LOG")/$(grep -c 'export primary: back; asking export backup' "$LOG")/$(grep -c 'export backup: gives the records of export primary back' "$LOG")" \
	2/2/1/1 "each switch logged once (down/takeover/back/giveback)"
final=$(grep ' final: ' "$LOG" | tail -1)
for e in primary backup; do
	st=$(printf '%s\n' "$final" | grep -o "export $e: [^;]*")
	ctf_diag "final $st"
	ctf_is "$(ctf_stat_export "$final" $e takeovers)/$(ctf_stat_export "$final" $e givebacks)/$(ctf_stat_export "$final" $e doubtful)" \
		2/1/0 "final statistics of $e: takeovers/givebacks/doubtful"
done
P_REC=$(ctf_stat_export "$final" primary records)
B_REC=$(ctf_stat_export "$final" backup records)
ctf_is "$((${P_REC:-0} + ${B_REC:-0}))" $N_ALL "records the two exports count as delivered add up to every flow ($P_REC + $B_REC)"
ctf_is "$(ctf_json_lines "$JSON")" $N_ALL "the JSON export holds every flow"

# --- what the collectors decoded
for f in "$P_DIR"/conn-*.ipfix "$B_DIR"/conn-*.ipfix; do
	[ -e "$f" ] || continue
	ipfixDump --in "$f" >"${f%.ipfix}.txt" 2>"${f%.ipfix}.err"
	printf '# ipfixDump %s/%s: %s\n' "$(basename "$(dirname "$f")")" "$(basename "$f")" \
		"$(grep '^\*\*\* File Stats' "${f%.ipfix}.txt")"
done
SCORE=$DIR/score.py
cat >"$SCORE" <<'PY'
import glob, os, sys
from collections import Counter, defaultdict
sys.path.insert(0, os.environ["CTF_LIB_DIR"])
import ipfix_verify as iv

pdir, bdir, src, dst, pkts, nbytes = sys.argv[1:7]
phases = {}
for spec in sys.argv[7:]:
    name, dport, sport, count = spec.split(":")
    phases[int(dport)] = (name, int(sport), int(count))

def res(ok, what, *detail):
    print("|".join(["OK" if ok else "NOTOK", what] + [str(x) for x in detail]))

seen = defaultdict(list)           # flow key -> ["P"|"B", ...]
other, wrong = [], []
for side, d in (("P", pdir), ("B", bdir)):
    for path in sorted(glob.glob(os.path.join(d, "conn-*.txt"))):
        dec = iv.read_ipfixdump(open(path, encoding="utf-8", errors="replace").read())
        for r in dec.records:
            k = iv.flow_key(r)
            if not (k[0] == 4 and k[1] == 17 and k[2] == src and k[4] == dst and k[5] in phases):
                other.append(k)
                continue
            seen[k].append(side)
            got = (iv.first(r, iv.FWD_PKTS), iv.first(r, iv.FWD_BYTES),
                   iv.first(r, iv.REV_PKTS), iv.first(r, iv.REV_BYTES))
            if got != (int(pkts), int(nbytes), 0, 0):
                wrong.append((k[3], k[5], got))
for dport, (name, sport, count) in sorted(phases.items()):
    keys = [k for k in seen if k[5] == dport]
    missing = sorted(set(range(sport, sport + count)) - {k[3] for k in keys})
    twice = [k for k in keys if len(seen[k]) > 1]
    where = Counter(s for k in keys for s in seen[k])
    print("# phase %s: records at P %d, at B %d" % (name, where["P"], where["B"]))
    res(not missing and not twice,
        "phase %s: %d/%d flows, each exactly once over both collectors" % (name, len(keys), count),
        *(["%d missing, e.g. sport %s" % (len(missing), missing[:5])] if missing else []),
        *(["%d twice, e.g. %s" % (len(twice), [(k[3], seen[k]) for k in twice[:5]])] if twice else []))
    if name == "D":
        res(where["P"] == 0, "phase D: all at B (P was down)", *(["%d at P" % where["P"]] if where["P"] else []))
    elif name in ("A", "C"):
        res(where["B"] == 0, "phase %s: all at P (the export was up)" % name,
            *(["%d at B" % where["B"]] if where["B"] else []))
    else:
        res(where["B"] > 0 and where["P"] > 0,
            "phase B: split between the backup (while P was down: %d) and P (once back: %d)"
            % (where["B"], where["P"]))
res(not wrong, "counters exact (%s pkts/%s bytes, reply 0/0)" % (pkts, nbytes),
    *(["%d wrong, e.g. %s" % (len(wrong), wrong[:3])] if wrong else []))
res(not other, "no record of any other flow", *(["%d, e.g. %s" % (len(other), other[:3])] if other else []))
PY
export CTF_LIB_DIR
"$PYTHON" "$SCORE" "$P_DIR" "$B_DIR" $CLI_IP $SRV_IP $PKTS $UDP_FWD_BYTES \
	"A:$A_DPORT:$SPORT:$N_A" "B:$B_DPORT:$SPORT:$N_B" "C:$C_DPORT:$SPORT:$N_C" "D:$D_DPORT:$SPORT:$N_D" \
	>"$DIR/score.txt" 2>&1
ctf_report_score <"$DIR/score.txt"

ctf_diag "total $(ctf_elapsed "$T_BEGIN") s"
ctf_done
