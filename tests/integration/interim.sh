#!/bin/bash
# interim.sh - long-lived connections with active_timeout = 10s: interim
# records whose deltas add up exactly, across a kill -9 of the worker and a
# restart of ctflowd.
#
# In fresh namespaces (lib.sh) N UDP connections client -> server carry
# traffic both ways (udp_rounds.py: the server answers each datagram) in
# three rounds 12 s apart.  ctflowd watches the router with active_timeout =
# 10s and exports IPFIX to nfcapd over UDP, IPFIX to a file (read by
# ipfixDump) and JSON lines with counters = both (the deltas and the
# kernel's totals).  Between the first and the second interim record of
# every connection, the worker gets SIGKILL (the supervisor starts another)
# and then ctflowd is stopped and started again.  Once every connection had
# two interim records, after the third round, the table is flushed.
#
# Every decoder must then show, per connection and direction, deltas that
# add up to exactly what was sent, which the final record's totals (the
# kernel's final counters, from its DESTROY) confirm; at least three records
# per connection, the last one final and the others interim (flowEndReason
# 2); no record twice; one flowId per connection.
#
# Until the kill, a directory stands where the snapshot of the connection
# state goes, so none can be written: the worker started after the kill
# must set it aside and rebuild the state from the journal alone (it logs
# how many records it folded in).
#
# Environment: see lib.sh.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ctf_require_root
ctf_require_cmd "$CTFLOWD" "$PYTHON" nfcapd nfdump ipfixDump

N=200 UDP_PORT=7300 SPORT=31000 GAP=12
PORT=$((20000 + $$ % 20000))
export TZ=UTC
ctf_setup
DIR=$CTF_WORK/interim
mkdir -p "$DIR"
CONF=$DIR/ctflowd.conf JSON=$DIR/flows.json IPFIX=$DIR/flows.ipfix
ROUNDS=("$PYTHON" "$CTF_LIB_DIR/udp_rounds.py")

# the server takes this port's datagrams (the rest of the test bed's UDP
# ends in the server's prerouting)
ctf_nsx "$NS_SRV" nft insert rule inet ctfsrv prerouting udp dport $UDP_PORT accept ||
	ctf_bail "server accept rule"
ctf_start_nfcapd "$DIR/nf" "$PORT"; NFCAPD=$CTF_LAST_PID
ctf_ctflowd_conf "$CONF"
cat >>"$CONF" <<EOF
active_timeout = 10s
walk_interval = 500ms

[export collector]
format = ipfix
transport = udp
destination = 127.0.0.1:$PORT
flush_interval = 500ms

[export file]
format = ipfix
path = $IPFIX
flush_interval = 500ms

[export json]
format = json
path = $JSON
flush_interval = 500ms
counters = both
EOF

# interim records of a connection so far, per connection: "min max"
interim_spread() {
	"$PYTHON" - "$JSON" <<'PY'
import json, sys
from collections import Counter
c = Counter()
try:
    for line in open(sys.argv[1]):
        r = json.loads(line)
        if "flow_id" in r and r["end_reason"] == "active":
            c[r["sport"]] += 1
except FileNotFoundError:
    pass
print(min(c.values()) if len(c) else 0, max(c.values()) if c else 0, len(c))
PY
}
wait_marks() { ctf_wait_file "$DIR/round.$1" 60 || ctf_bail "round $1 did not start"; }

ctf_start_ctflowd "$CONF" "$DIR/ctflowd-1.log" || ctf_bail "ctflowd did not start"
PID=$CTF_LAST_PID
T0=$(ctf_now)
# The worker reads the snapshot once it runs, which may be after the event
# socket (the supervisor's) is subscribed: the directory goes in only after
# that read, or the first worker would set it aside instead of the second.
# Its first walk writes a snapshot of nothing, which is replaced; no other is
# written before the traffic starts, and none can be written over a directory.
for ((i = 0; i < 100; i++)); do
	grep -q "connection state: 0 connections with interim records" "$DIR/ctflowd-1.log" && break
	sleep 0.1
done
for ((i = 0; i < 20; i++)); do
	[ -d "$CTF_WORK/state/interim-state" ] && break
	rm -f "$CTF_WORK/state/interim-state"
	mkdir -p "$CTF_WORK/state/interim-state/in-the-way" 2>/dev/null
done
[ -d "$CTF_WORK/state/interim-state/in-the-way" ] ||
	ctf_bail "cannot put a directory in the snapshot's place"
ctf_spawn "$NS_SRV" "$DIR/server.log" "${ROUNDS[@]}" server $SRV_IP $UDP_PORT
sleep 0.3
ctf_spawn "$NS_CLI" "$DIR/client.log" "${ROUNDS[@]}" client $CLI_IP $SRV_IP $UDP_PORT $N \
	$SPORT 3 $GAP "$DIR/sent.txt" "$DIR/round"
CLIENT=$CTF_LAST_PID

# first interim record of every connection, then the second round
# the first interim record of every connection (due 10 s after the start;
# a walk runs at low priority, so a busy machine may delay it a little)
for ((i = 0; i < 300; i++)); do
	read -r lo hi conns <<<"$(interim_spread)"
	[ "$conns" = $N ] && [ "$lo" -ge 1 ] && break
	sleep 0.1
done
ctf_is "$lo/$hi/$conns" "1/1/$N" "one interim record per connection (min/max/connections), $(ctf_elapsed "$T0") s after the start"

# the worker dies; the supervisor starts another
WORKER=$(ctf_worker_of "$PID") || ctf_bail "no worker under $PID"
kill -9 "$WORKER"
for ((i = 0; i < 100; i++)); do
	W2=$(ctf_worker_of "$PID") && [ "$W2" != "$WORKER" ] && break
	sleep 0.1
done
ctf_check "the supervisor started a new worker after SIGKILL" [ -n "${W2:-}" ] && [ "${W2:-}" != "$WORKER" ]
sleep 1
folded=$(grep "connection state: $N connections with interim records" "$DIR/ctflowd-1.log" |
	sed -n 's/.*(\([0-9]*\) journal records folded in).*/\1/p' | tail -1)
ctf_check "the new worker rebuilt the state of all $N connections from the journal (${folded:-no} records folded in)" \
	[ "${folded:-0}" -ge "$N" ]
ctf_check "the directory in the snapshot's place was set aside" [ -d "$CTF_WORK/state/interim-state.bad" ]
# and ctflowd is stopped and started again, all before the second interim records
ctf_stop_clean "$PID" "ctflowd (first run)" "$DIR/ctflowd-1.log"
ctf_start_ctflowd "$CONF" "$DIR/ctflowd-2.log" || ctf_bail "ctflowd did not start again"
PID=$CTF_LAST_PID
read -r lo hi conns <<<"$(interim_spread)"
ctf_is "$lo/$hi" "1/1" "still one interim record per connection after the kill and the restart"

# the third round, then the second interim record of every connection
wait_marks 3
for ((i = 0; i < 150; i++)); do
	read -r lo hi conns <<<"$(interim_spread)"
	[ "$lo" -ge 2 ] && break
	sleep 0.2
done
ctf_check "every connection had its second interim record ($lo to $hi)" [ "$lo" -ge 2 ]
ctf_diag "second interim records complete at $(ctf_elapsed "$T0") s"

for ((i = 0; i < 100; i++)); do ctf_alive "$CLIENT" || break; sleep 0.1; done
ctf_stop "$CLIENT"
ctf_is "$CTF_STOP_STATUS" 0 "the client got an answer to every datagram"
ctf_diag "flush at $(ctf_elapsed "$T0") s"
ctf_ct_flush
# the walks keep the worker from ever being idle: wait for the records instead
ctf_wait_ct_empty 60 || ctf_diag "router table not empty after 60 s"
for ((i = 0; i < 300; i++)); do
	[ "$(grep -c '"end_reason":"\(idle\|forced\|end\)"' "$JSON")" -ge $N ] && break
	sleep 0.1
done
ctf_is "$(ctf_ct_count)/$(ctf_ct_dying)" 0/0 "router table empty, no entry parked waiting for delivery (count/dying)"
ctf_diag "settled at $(ctf_elapsed "$T0") s"
ctf_stop_clean "$PID" "ctflowd (second run)" "$DIR/ctflowd-2.log"
sleep 0.5
ctf_stop "$NFCAPD"
grep -h "connection state:" "$DIR"/ctflowd-*.log | sed 's/^/# /'
ctf_last_stats "$DIR/ctflowd-2.log" | sed 's/^/# /'

nfdump -R "$DIR/nf" -q -N -o "fmt:%pr %sa %sp %da %dp %ipkt %ibyt %opkt %obyt %ts %te" \
	>"$DIR/nfdump.txt" 2>"$DIR/nfdump.err"
ipfixDump --in "$IPFIX" >"$DIR/ipfixdump.txt" 2>"$DIR/ipfixdump.err"
"$PYTHON" "$CTF_LIB_DIR/ipfix_verify.py" "$DIR/ipfixdump.txt" --input ipfixdump \
	--dump "$DIR/ipfixdump.tsv" >"$DIR/ipfixdump.verify" 2>&1

"$PYTHON" - "$DIR" $N <<'PY' >"$DIR/verdict.txt" 2>&1
import csv, json, sys
from collections import Counter, defaultdict

d, n = sys.argv[1], int(sys.argv[2])

def res(ok, what, *detail):
    print("|".join(["OK" if ok else "NOTOK", what] + [str(x) for x in detail]))

want = {}
for line in open("%s/sent.txt" % d):
    w = line.split()
    want[int(w[2])] = tuple(int(x) for x in w[5:9])
res(len(want) == n, "the client wrote the counts of %d connections" % n, len(want))

def judge(name, recs):
    """recs: sport -> list of (pkts, bytes, rpkts, rbytes, reason, key)"""
    sums_ok = [p for p in want if tuple(map(sum, zip(*[r[:4] for r in recs.get(p, [])]))) == want[p]]
    bad = [p for p in want if p not in sums_ok][:3]
    res(len(sums_ok) == n, "%s: deltas add up to what was sent, per connection and direction, for %d of %d"
        % (name, len(sums_ok), n),
        *["sport %d: got %s want %s" % (p, tuple(map(sum, zip(*[r[:4] for r in recs.get(p, [])]))), want[p]) for p in bad])
    few = [p for p in want if len(recs.get(p, [])) < 3]
    res(not few, "%s: at least 3 records per connection" % name, *few[:3])
    if all(r[4] is not None for p in recs for r in recs[p]):
        shape = [p for p in want if recs.get(p) and
                 ([r[4] for r in recs[p]].count(2) != len(recs[p]) - 1 or recs[p][-1][4] == 2)]
        res(not shape, "%s: per connection, every record interim (reason 2) but the last" % name, *shape[:3])
    dup = Counter(r[5] for p in recs for r in recs[p])
    twice = [k for k, c in dup.items() if c > 1]
    res(not twice, "%s: no record twice" % name, *twice[:3])
    other = set(recs) - set(want)
    res(not other, "%s: no record of another connection" % name, *sorted(other)[:3])

# JSON (counters = both): deltas, and the kernel's totals in the final record
recs, finals, ids = defaultdict(list), {}, defaultdict(set)
for line in open("%s/flows.json" % d):
    r = json.loads(line)
    if "flow_id" not in r:
        continue
    reason = 2 if r["end_reason"] == "active" else 1
    recs[r["sport"]].append((r["packets"], r["bytes"], r["reply_packets"], r["reply_bytes"], reason,
                             (r["flow_id"], r["end_ns"])))
    ids[r["sport"]].add(r["flow_id"])
    if reason != 2:
        finals[r["sport"]] = (r["total_packets"], r["total_bytes"], r["total_reply_packets"],
                              r["total_reply_bytes"])
judge("JSON", recs)
kern = [p for p in want if finals.get(p) == want[p]]
res(len(kern) == n, "JSON: the final record's totals (the kernel's final counters) are what was sent, %d of %d"
    % (len(kern), n), *[(p, finals.get(p), want[p]) for p in want if p not in kern][:3])
multi = [p for p in ids if len(ids[p]) != 1]
res(not multi, "JSON: one flowId per connection", *multi[:3])

# nfdump
recs = defaultdict(list)
for line in open("%s/nfdump.txt" % d):
    w = line.split()
    if len(w) < 11:
        continue
    recs[int(w[2])].append((int(w[5]), int(w[6]), int(w[7]), int(w[8]), None, tuple(w)))
judge("nfdump", recs)

# ipfixDump (fixbuf), through ipfix_verify.py's reading of its text
recs = defaultdict(list)
rows = list(csv.DictReader(open("%s/ipfixdump.tsv" % d), delimiter="\t"))
for r in rows:
    if not r.get("sourceTransportPort"):
        continue
    g = lambda k: int(r.get(k) or 0)
    recs[g("sourceTransportPort")].append(
        (g("packetDeltaCount"), g("octetDeltaCount"), g("reversePacketDeltaCount"),
         g("reverseOctetDeltaCount"), g("flowEndReason"),
         (g("flowId"), g("flowEndMilliseconds"))))
judge("ipfixDump", recs)
PY
ctf_report_score <"$DIR/verdict.txt"
ctf_done
