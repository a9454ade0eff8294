#!/bin/bash
# tcp_export.sh - IPFIX over TCP while the collector goes away and comes back.
#
# In fresh namespaces (lib.sh) the router runs ctflowd with two exports:
#   [export tcp]   IPFIX over TCP to tcp_collector.py on the router's
#                  127.0.0.1, flush_interval 200ms, reconnect 100ms..1s
#   [export json]  JSON lines to a file, as an independent account of what
#                  the kernel reported
# The collector stores each TCP connection's byte stream in its own file, so
# every connection can be judged as the separate IPFIX session it must be.
#
#   phase A  collector up: 2,000 UDP flows (dport 20000), conntrack -F; wait
#            until ctflowd is idle and every flow reached the collector
#   outage   the collector stops cleanly (SIGTERM: it reads what arrived,
#            then closes); phase B's 3,000 UDP flows (dport 22000) end while
#            nobody listens.  ctflowd must keep running, hold the records,
#            retry with back-off and say once, not per attempt, that the
#            destination is down
#   back     the collector starts again; ctflowd reconnects, sends templates
#            first and then everything it held
#
# Judged by ipfixDump and ipfix_verify.py per connection file (each decodes
# on its own, templates before data), then over all files: every flow of
# both phases once with exact counters and times in the run window
# (duplicates are tolerated only where a connection broke off mid-message,
# and are reported), the JSON file with exactly 5,000 matching lines, exit
# status 0 on SIGTERM and reconnects >= 1 in the final statistics.
#
# Environment: see lib.sh.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ctf_require_root
ctf_require_cmd ipfixDump "$PYTHON" "$CTFLOWD"
VERIFY=("$PYTHON" "$CTF_LIB_DIR/ipfix_verify.py")
export TZ=UTC   # ipfixDump prints local time; the scorer reads UTC

PORT=4739
N_A=2000 N_B=3000
PKTS=2 LEN=50
UDP_FWD_BYTES=$((PKTS * (28 + LEN)))
A_DPORT=20000 B_DPORT=22000 SPORT=1024
OUTAGE_S=4          # how long phase B's records wait with no collector
RECONNECT_MAX_S=1   # reconnect_max below

T_BEGIN=$(ctf_now)
ctf_setup
DIR=$CTF_WORK/tcp
COLL_DIR=$DIR/collector
mkdir -p "$COLL_DIR"
CONF=$DIR/ctflowd.conf LOG=$DIR/ctflowd.log JSON=$DIR/flows.json

# ------------------------------------------------------------------ helpers

# wait_arrived WANT_A WANT_B MAX_S: wait until the collector's files hold at
# least that many distinct flows of each phase.  Leaves the counts in
# ARRIVED ("A B").
wait_arrived() {
	local i
	for ((i = 0; i < $3 * 4; i++)); do
		ARRIVED=$("$PYTHON" "$SCORE" count "$COLL_DIR" $A_DPORT $B_DPORT)
		[ "${ARRIVED% *}" -ge "$1" ] && [ "${ARRIVED#* }" -ge "$2" ] && return 0
		sleep 0.25
	done
	return 1
}

# The scorer: reads every connection file with ipfix_verify.py's decoder
# and, as a second opinion, the text ipfixDump printed for it, and the JSON
# file.  Prints "OK|what" or "NOTOK|what|detail..." and "#" lines.
SCORE=$DIR/score.py
cat >"$SCORE" <<'PY'
import glob, json, os, re, sys
from collections import Counter, defaultdict
sys.path.insert(0, os.environ["CTF_LIB_DIR"])
import ipfix_verify as iv

def conn_files(d):
    return sorted(glob.glob(os.path.join(d, "conn-*.ipfix")),
                  key=lambda p: int(re.search(r"conn-(\d+)", p).group(1)))

def load(path):
    with open(path, "rb") as f:
        return iv.Decoder(f.read()).run()

def udp4(rec):
    k = iv.flow_key(rec)   # (family, proto, src, sport, dst, dport)
    return k if k[0] == 4 and k[1] == 17 else None

if sys.argv[1] == "count":
    d, pa, pb = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    seen = {pa: set(), pb: set()}
    for p in conn_files(d):
        for r in load(p).records:
            k = udp4(r)
            if k and k[5] in seen:
                seen[k[5]].add(k)
    print(len(seen[pa]), len(seen[pb]))
    sys.exit(0)

# score DIR JSON SRC DST PKTS BYTES WINDOW PHASE...   PHASE = name:dport:sport:count:t0:t1
d, json_path, src, dst = sys.argv[2:6]
pkts, nbytes, window = int(sys.argv[6]), int(sys.argv[7]), float(sys.argv[8])
phases = []
for spec in sys.argv[9:]:
    name, dport, sport, count, t0, t1 = spec.split(":")
    phases.append(dict(name=name, dport=int(dport), sport=int(sport), count=int(count),
                       t0=float(t0), t1=float(t1)))
by_dport = {p["dport"]: p for p in phases}
want_total = sum(p["count"] for p in phases)

def res(ok, what, *detail):
    print("|".join(["OK" if ok else "NOTOK", what] + [str(x) for x in detail]))

files = conn_files(d)
broken = []        # connections whose stream ends inside a message
decoded = {}
for p in files:
    dec = load(p)
    decoded[p] = dec
    if dec.truncated:
        broken.append(os.path.basename(p))
if broken:
    print("# connections that broke off mid-message: %s" % ", ".join(broken))

def expected(p, sport):
    return p["sport"] <= sport < p["sport"] + p["count"]

def judge(label, per_file):
    """per_file: [(file, decoder)] -> checks over the union of their records."""
    recs = []                 # (file, key, record)
    other = []
    for f, dec in per_file:
        for r in dec.records:
            k = udp4(r)
            p = by_dport.get(k[5]) if k else None
            if p and k[2] == src and k[4] == dst and expected(p, k[3]):
                recs.append((f, k, r))
            else:
                other.append(iv.flow_key(r))
    groups = defaultdict(list)
    for f, k, r in recs:
        groups[k].append((f, r))
    total_distinct = 0
    for p in phases:
        keys = [k for k in groups if k[5] == p["dport"]]
        total_distinct += len(keys)
        missing = sorted(set(range(p["sport"], p["sport"] + p["count"])) - {k[3] for k in keys})
        wrong = []
        no_id = bad_time = 0
        lo = (p["t0"] - 2) * 1000
        hi_s, hi_e = (p["t1"] + 2) * 1000, (p["t1"] + window) * 1000
        where = Counter()
        for k in keys:
            for f, r in groups[k]:
                where[os.path.basename(f)] += 1
                got = (iv.first(r, iv.FWD_PKTS), iv.first(r, iv.FWD_BYTES),
                       iv.first(r, iv.REV_PKTS), iv.first(r, iv.REV_BYTES))
                if got != (pkts, nbytes, 0, 0):
                    wrong.append("sport %d: %s" % (k[3], got))
                if (0, 148) not in r:
                    no_id += 1
                s, e = iv.time_ms(r, "start"), iv.time_ms(r, "end")
                if s is None or e is None or not (lo <= s <= hi_s and lo <= e <= hi_e and s <= e):
                    bad_time += 1
        print("# %s: phase %s records per connection: %s" % (
            label, p["name"], ", ".join("%s %d" % kv for kv in sorted(where.items())) or "none"))
        detail = []
        if missing:
            detail.append("%d flows missing, source ports e.g. %s" % (len(missing), missing[:10]))
        if wrong:
            detail.append("%d records with wrong counters (pkts, bytes, rpkts, rbytes), e.g. %s"
                          % (len(wrong), "; ".join(wrong[:3])))
        if no_id:
            detail.append("%d records without flowId" % no_id)
        if bad_time:
            detail.append("%d records with start/end outside the run window or end < start" % bad_time)
        res(not detail, "%s: phase %s: %d/%d flows (dport %d), counters exact (%d pkts/%d bytes, reply 0/0), flowId, times in window"
            % (label, p["name"], len(keys), p["count"], p["dport"], pkts, nbytes), *detail)
    res(total_distinct == want_total and not other,
        "%s: no flow missing overall (%d/%d), no record of any other flow" % (label, total_distinct, want_total),
        *(["%d other records, e.g. %s" % (len(other), other[:3])] if other else []))
    dups = {k: v for k, v in groups.items() if len(v) > 1}
    ndup = sum(len(v) - 1 for v in dups.values())
    if not ndup:
        res(True, "%s: no flow exported twice" % label)
        return groups
    differ = 0
    for k, v in dups.items():
        first = v[0][1]
        if any(r != first for _, r in v[1:]):
            differ += 1
    ex = ["sport %d dport %d in %s" % (k[3], k[5], ",".join(os.path.basename(f) for f, _ in v))
          for k, v in list(dups.items())[:3]]
    if broken and not differ:
        res(True, "%s: %d duplicate records, identical resends after a connection broke mid-message (%s)"
            % (label, ndup, ", ".join(broken)))
        print("# %s: duplicates e.g. %s" % (label, "; ".join(ex)))
    else:
        res(False, "%s: no flow exported twice" % label,
            "%d duplicate records (%d with differing content); connections broken mid-message: %s"
            % (ndup, differ, ", ".join(broken) or "none"), "e.g. " + "; ".join(ex))
    return groups

groups = judge("ipfix_verify.py", [(p, decoded[p]) for p in files])
dump_views = []
for p in files:
    txt = p[:-len(".ipfix")] + ".ipfixdump.txt"
    with open(txt, encoding="utf-8", errors="replace") as f:
        dump_views.append((p, iv.read_ipfixdump(f.read())))
judge("ipfixDump", dump_views)

# ---- the JSON export
lines = open(json_path, encoding="utf-8", errors="replace").read().splitlines() \
    if os.path.exists(json_path) else []
res(len(lines) == want_total, "json: exactly %d lines (%d)" % (want_total, len(lines)))
bad, flows, fields = 0, Counter(), ("src", "dst", "sport", "dport", "proto", "packets", "bytes",
                                    "reply_packets", "reply_bytes", "start_ns", "end_ns", "flow_id")
jwrong, jother, jbad_time = [], [], 0
by_tuple = {}
for n, line in enumerate(lines, 1):
    try:
        o = json.loads(line)
        if not isinstance(o, dict) or any(f not in o for f in fields):
            raise ValueError("not an object with %s" % ", ".join(fields))
    except ValueError as e:
        bad += 1
        if bad <= 3:
            print("# json line %d: %s: %.120s" % (n, e, line))
        continue
    k = (4, o["proto"], o["src"], o["sport"], o["dst"], o["dport"])
    p = by_dport.get(o["dport"])
    if o.get("family") != "ipv4" or o["proto"] != 17 or o["src"] != src or o["dst"] != dst \
            or p is None or not expected(p, o["sport"]):
        jother.append(k)
        continue
    flows[k] += 1
    by_tuple[k] = o
    got = (o["packets"], o["bytes"], o["reply_packets"], o["reply_bytes"])
    if got != (pkts, nbytes, 0, 0):
        jwrong.append("sport %d dport %d: %s" % (o["sport"], o["dport"], got))
    s, e = o["start_ns"], o["end_ns"]
    if not (isinstance(s, int) and isinstance(e, int)) or s > e or \
            not (p["t0"] - 2) * 1e9 <= s <= (p["t1"] + 2) * 1e9 or e > (p["t1"] + window) * 1e9:
        jbad_time += 1
res(bad == 0, "json: every line is a JSON object with %s" % ", ".join(fields),
    *(["%d unreadable lines" % bad] if bad else []))
jdup = sum(c - 1 for c in flows.values() if c > 1)
detail = []
for p in phases:
    got = sum(1 for k in flows if k[5] == p["dport"])
    if got != p["count"]:
        detail.append("phase %s: %d/%d flows" % (p["name"], got, p["count"]))
if jdup:
    detail.append("%d flows twice" % jdup)
if jother:
    detail.append("%d lines of other flows, e.g. %s" % (len(jother), jother[:3]))
if jwrong:
    detail.append("%d wrong counters, e.g. %s" % (len(jwrong), "; ".join(jwrong[:3])))
if jbad_time:
    detail.append("%d with start/end outside the window or start > end" % jbad_time)
res(not detail, "json: each flow of both phases once, counters exact, start <= end within the run window", *detail)
# the two exports describe the same kernel events
mism, absent = [], 0
for k, v in groups.items():
    o = by_tuple.get(k)
    if o is None:
        absent += 1
        continue
    r = v[0][1]
    if (r.get((0, 148)), r.get((0, 152)), r.get((0, 153))) != \
            (o["flow_id"], o["start_ns"] // 1000000, o["end_ns"] // 1000000):
        mism.append("sport %d dport %d: ipfix %s json %s" % (
            k[3], k[5], (r.get((0, 148)), r.get((0, 152)), r.get((0, 153))),
            (o["flow_id"], o["start_ns"] // 1000000, o["end_ns"] // 1000000)))
# (flows missing from one side are judged above; this compares the rest)
res(not mism and not absent,
    "json and IPFIX agree flow by flow (flowId, start and end ms) on the %d flows the collector got"
    % len(groups),
    *(["%d IPFIX flows not in the JSON" % absent] if absent else []),
    *(["%d differ, e.g. %s" % (len(mism), "; ".join(mism[:3]))] if mism else []))
PY
export CTF_LIB_DIR

# ------------------------------------------------------------------ run

ctf_start_tcp_collector "$DIR" "$COLL_DIR" $PORT 1; COLL_PID=$CTF_LAST_PID
ctf_ctflowd_conf "$CONF"
cat >>"$CONF" <<EOF

[export tcp]
format = ipfix
transport = tcp
destination = 127.0.0.1:$PORT
flush_interval = 200ms
reconnect_min = 100ms
reconnect_max = ${RECONNECT_MAX_S}s

[export json]
format = json
transport = file
path = $JSON
EOF
ctf_start_ctflowd "$CONF" "$LOG" || ctf_bail "ctflowd did not start (config $CONF)"
CTFLOWD_PID=$CTF_LAST_PID
ctf_ok "ctflowd starts and listens for DESTROY events"
for ((i = 0; i < 50; i++)); do grep -q 'conn 1 opened' "$DIR/collector-1.log" && break; sleep 0.1; done
ctf_check "ctflowd connects to the collector at start" grep -q 'conn 1 opened' "$DIR/collector-1.log"

# --- phase A: collector up
ctf_gen_udp $N_A $A_DPORT $SPORT $PKTS $LEN; ok=$?
A_T0=$CTF_GEN_T0 A_T1=$CTF_GEN_T1
ctf_check "phase A: router created $N_A entries, every packet reached the server" [ $ok = 0 ]
ctf_ct_flush
ctf_wait_idle "$CTFLOWD_PID" 1.5 60 || ctf_diag "ctflowd not idle after 60 s (or gone)"
if wait_arrived $N_A 0 20; then
	ctf_ok "phase A: all $N_A flows reached the collector"
else
	ctf_not_ok "phase A: all $N_A flows reached the collector" "distinct flows stored (A B): $ARRIVED"
fi

# --- outage: the collector stops cleanly, phase B ends while nobody listens
LOG_MARK=$(wc -l <"$LOG")
ctf_stop "$COLL_PID" 5
ctf_is "$CTF_STOP_STATUS/$CTF_STOP_KILLED" 0/0 "collector stops on SIGTERM (exit status/killed)"
T_DOWN=$(ctf_now)
TICKS_DOWN=$(ctf_cpu_ticks "$CTFLOWD_PID")
ctf_gen_udp $N_B $B_DPORT $SPORT $PKTS $LEN; ok=$?
B_T0=$CTF_GEN_T0 B_T1=$CTF_GEN_T1
ctf_check "phase B: router created $N_B entries, every packet reached the server" [ $ok = 0 ]
ctf_ct_flush
# the JSON export is unaffected by the TCP outage: it shows the events were read
for ((i = 0; i < 100; i++)); do [ "$(ctf_json_lines "$JSON")" -ge $((N_A + N_B)) ] && break; sleep 0.1; done
ctf_is "$(ctf_json_lines "$JSON")" $((N_A + N_B)) "during the outage the JSON export still gets phase B ($((N_A + N_B)) lines)"
# let ctflowd retry for a while with nobody listening
while awk -v a="$T_DOWN" -v b="$(ctf_now)" -v s=$OUTAGE_S 'BEGIN { exit !(b - a < s) }'; do sleep 0.2; done
if ctf_alive "$CTFLOWD_PID"; then
	ctf_ok "ctflowd keeps running while the collector is away ($(ctf_elapsed "$T_DOWN") s)"
else
	ctf_not_ok "ctflowd keeps running while the collector is away"; ctf_diag_file "$LOG" 30
fi
ticks=$(($(ctf_cpu_ticks "$CTFLOWD_PID") - TICKS_DOWN))
ctf_check "no busy retry loop: $(ctf_ticks_to_s $ticks) s CPU during the $(ctf_elapsed "$T_DOWN") s outage (< 1 s)" \
	[ "$ticks" -lt "$CTF_HZ" ]
# What the log said about the destination while it was away: one line that
# it is down (and at most one for the connection that broke), not one per
# attempt.
tail -n +"$((LOG_MARK + 1))" "$LOG" >"$DIR/outage.log"
down=$(grep -c "warning: export tcp: .*127.0.0.1:$PORT" "$DIR/outage.log")
refused=$(grep -c "warning: export tcp: .*cannot connect" "$DIR/outage.log")
grep "warning: export tcp:" "$DIR/outage.log" | head -5 | sed 's/^/# outage log: /'
if [ "$refused" = 1 ] && [ "$down" -le 2 ]; then
	ctf_ok "the log says once that the destination is down ($down warning lines in the outage)"
else
	ctf_not_ok "the log says once that the destination is down" \
		"$refused 'cannot connect' lines, $down warnings naming 127.0.0.1:$PORT during the outage (want 1 and <= 2)"
fi

# --- back: the collector restarts; ctflowd reconnects and sends what it held
ctf_start_tcp_collector "$DIR" "$COLL_DIR" $PORT 2; COLL_PID=$CTF_LAST_PID
T_UP=$(ctf_now)
for ((i = 0; i < 50; i++)); do grep -q ' opened from ' "$DIR/collector-2.log" && break; sleep 0.1; done
if grep -q ' opened from ' "$DIR/collector-2.log"; then
	t_conn=$(awk '/ opened from / { print $1; exit }' "$DIR/collector-2.log")
	delay=$(ctf_elapsed "$T_UP" "$t_conn")
	# back-off is capped at reconnect_max; allow scheduling slack
	ctf_check "ctflowd reconnects within reconnect_max after the collector is back (${delay} s)" \
		awk -v d="$delay" -v m=$RECONNECT_MAX_S 'BEGIN { exit !(d <= m + 1) }'
else
	ctf_not_ok "ctflowd reconnects after the collector is back" "no connection within 5 s"
fi
ctf_wait_idle "$CTFLOWD_PID" 1.5 60 || ctf_diag "ctflowd not idle after 60 s (or gone)"
wait_arrived $N_A $N_B 10 || ctf_diag "after reconnecting, the collector holds (A B) $ARRIVED distinct flows, want $N_A $N_B"

# --- stop
T_TERM=$(ctf_now)
ctf_stop "$CTFLOWD_PID" 20
if [ "$CTF_STOP_KILLED" = 0 ] && [ "$CTF_STOP_STATUS" = 0 ]; then
	ctf_ok "ctflowd exits 0 on SIGTERM ($(ctf_elapsed "$T_TERM") s)"
else
	ctf_not_ok "ctflowd exits 0 on SIGTERM" "exit status $CTF_STOP_STATUS, needed SIGKILL: $CTF_STOP_KILLED"
	ctf_diag_file "$LOG" 30
fi
final=$(grep ' final: ' "$LOG" | tail -1)
tcp_stats=$(printf '%s\n' "$final" | grep -o 'export tcp: [^;]*')
json_stats=$(printf '%s\n' "$final" | grep -o 'export json: [^;]*')
ctf_diag "final $tcp_stats" "final $json_stats"
reconnects=$(printf '%s\n' "$tcp_stats" | sed -n 's/.*reconnects \([0-9]*\).*/\1/p')
if [ -n "$reconnects" ] && [ "$reconnects" -ge 1 ]; then
	ctf_ok "final statistics show reconnects >= 1 ($reconnects)"
else
	ctf_not_ok "final statistics show reconnects >= 1" "final line: ${final:-none}"
fi
lost_tcp=$(printf '%s\n' "$tcp_stats" | sed -n 's/.*lost \([0-9]*\).*/\1/p')
lost_json=$(printf '%s\n' "$json_stats" | sed -n 's/.*lost \([0-9]*\).*/\1/p')
ctf_is "${lost_tcp:-?}/${lost_json:-?}" 0/0 "final statistics: no record lost by either export (tcp/json)"
grep -E 'warning|critical' "$LOG" | grep -v 'export tcp:' | head -5 | sed 's/^/# ctflowd log: /'
ctf_stop "$COLL_PID" 5
ctf_is "$CTF_STOP_STATUS/$CTF_STOP_KILLED" 0/0 "restarted collector stops on SIGTERM (exit status/killed)"
cat "$DIR"/collector-*.log | grep -E 'opened|closed' | sed 's/^/# collector: /'

# ------------------------------------------------------------------ judge

mapfile -t FILES < <(ls -v "$COLL_DIR"/conn-*.ipfix 2>/dev/null)
if [ ${#FILES[@]} -ge 2 ]; then
	ctf_ok "the collector got ${#FILES[@]} connections (one before the outage, at least one after)"
else
	ctf_not_ok "the collector got at least 2 connections" "files: ${FILES[*]:-none}"
fi
STORED=0
WINDOW=$(awk -v a="$B_T1" -v b="$(ctf_now)" 'BEGIN { printf "%d", b - a + 2 }')
for f in "${FILES[@]}"; do
	b=$(basename "$f" .ipfix)
	# this project's decoder: the file alone is a complete session, templates
	# before data, sequence numbers continuous, flowIds unique
	out=$("${VERIFY[@]}" "$f" --allow-truncated --require-flowid 2>&1)
	echo "$out" >"${f%.ipfix}.verdict"
	sum=$(printf '%s\n' "$out" | grep '^file=')
	recs=$(ctf_kv data_records "$sum")
	STORED=$((STORED + ${recs:-0}))
	first_set=$("$PYTHON" -c 'import struct,sys; d=open(sys.argv[1],"rb").read(20); print(struct.unpack("!H", d[16:18])[0] if len(d) >= 18 else "none")' "$f")
	if printf '%s\n' "$out" | grep -q '^result=pass' && [ "$first_set" = 2 ] &&
		[ "$(ctf_kv sessions "$sum")" = 1 ] && [ "$(ctf_kv data_sets_without_template "$sum")" = 0 ]; then
		ctf_ok "ipfix_verify.py: $b decodes on its own: template set first, $recs records, no data set without a template (truncated=$(ctf_kv truncated "$sum"))"
	else
		mapfile -t lines < <(printf '%s\n' "$out" | grep -E '^(FAIL|file=)')
		ctf_not_ok "ipfix_verify.py: $b decodes on its own" "first set id: $first_set" "${lines[@]}"
	fi
	# fixbuf's reading of the same bytes
	ipfixDump --in "$f" >"${f%.ipfix}.ipfixdump.txt" 2>"${f%.ipfix}.ipfixdump.err"
	stats=$(grep '^\*\*\* File Stats' "${f%.ipfix}.ipfixdump.txt")
	drecs=$(printf '%s\n' "$stats" | awk '{ print $6 }')
	trecs=$(printf '%s\n' "$stats" | awk '{ print $9 }')
	if [ -n "$stats" ] && [ "${drecs:-0}" -gt 0 ] && [ "$drecs" = "$recs" ] && [ "${trecs:-0}" -ge 1 ]; then
		ctf_ok "ipfixDump: $b: ${stats#\*\*\* }"
	else
		ctf_not_ok "ipfixDump reads $b with its records" "ipfixDump: ${stats:-no File Stats line}" \
			"ipfix_verify.py: $recs data records" "$(head -3 "${f%.ipfix}.ipfixdump.err")"
	fi
done

# What ctflowd counts as delivered over TCP (resends included) must be what
# reached the collector: a record counted but not stored was lost silently.
delivered=$(printf '%s\n' "$tcp_stats" | sed -n 's/.*records \([0-9]*\).*/\1/p')
ctf_is "${delivered:-?}" "$STORED" "records ctflowd counts as delivered over TCP = records stored by the collector"

"$PYTHON" "$SCORE" score "$COLL_DIR" "$JSON" $CLI_IP $SRV_IP $PKTS $UDP_FWD_BYTES "$WINDOW" \
	"A:$A_DPORT:$SPORT:$N_A:$A_T0:$A_T1" "B:$B_DPORT:$SPORT:$N_B:$B_T0:$B_T1" \
	>"$DIR/score.txt" 2>&1
ctf_report_score <"$DIR/score.txt"

ctf_diag "total $(ctf_elapsed "$T_BEGIN") s"
ctf_done
