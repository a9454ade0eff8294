#!/bin/bash
# spool_bound.sh - the journal's size bound: a destination that stays away
# loses the oldest records, counted, logged and reported to its collector as
# notSentFlowTotalCount, while a destination that keeps up loses nothing.
#
# In fresh namespaces (lib.sh) the router runs ctflowd with spool_max = 1M
# (the smallest allowed) and two exports:
#   [export tcp]   IPFIX over TCP to 127.0.0.1, where no collector listens yet
#   [export json]  JSON lines to a file; it keeps up
# 20,000 two-packet UDP flows end, in four batches of 5,000 (generate, then
# conntrack -F, then wait for the JSON export to have them).
#
# What the bound holds (src/spool/journal.c journal_open, spool.c): segments
# are min(64 MiB, spool_max / 2) = 524,288 bytes, i.e. (524,288 - 32) / 184
# = 2,849 frames, and at most max(spool_max / segment, 2) = 2 of them exist;
# creating a third deletes the oldest.  Records also stay in a memory cache
# of whole 4,096-record chunks (records_for(): 1 MiB / 160 bytes = 6,553
# records, raised to the two-chunk minimum of 8,192), and a record is
# dropped only once it is in neither.  Only a reader that has not confirmed
# a dropped record loses it: with the TCP reader never reading, the oldest
# chunk leaving the cache takes its records with it once the journal no
# longer has them.  At 20,000 records the cache holds positions
# 12,288..19,999 (chunks start at multiples of 4,096 and the newest two
# stay) and the journal 17,094..19,999, so exactly 12,288 records are lost
# for tcp and 7,712 remain for it.  The JSON reader confirms each record
# long before it drops out, so it loses none.
#
# Checks: ctflowd keeps running; a warning says how many undelivered records
# were dropped and for which export, and these counts add up to the tcp
# export's "lost" in the statistics, which equals "spool dropped" (> 0) and
# the expected 12,288; the JSON file holds all 20,000 flows with exact
# counters.  Then the collector starts: ctflowd delivers what the spool still
# holds, and the IPFIX stream carries an options record (template 258, scope
# exportingProcessId 1, the first export, and observationDomainId; RFC 7011
# section 4.3) whose notSentFlowTotalCount (IANA element 166)
# equals the records lost for tcp; decoded flows + notSentFlowTotalCount =
# 20,000, every decoded flow is one of the workload's with exact counters,
# and the flows decoded are the newest ones (the bound drops the oldest).
# The statistics' delivered count must match what the collector decoded.
#
# Environment: see lib.sh.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ctf_require_root
ctf_require_cmd ipfixDump "$PYTHON" "$CTFLOWD"
VERIFY=("$PYTHON" "$CTF_LIB_DIR/ipfix_verify.py")
export TZ=UTC

PORT=4739
BATCHES=4 PER_BATCH=5000
N=$((BATCHES * PER_BATCH))
PKTS=2 LEN=50
UDP_FWD_BYTES=$((PKTS * (28 + LEN)))
DPORT0=20000 SPORT=1024
DOMAIN=1
# derived in the header comment from spool_max = 1M
WANT_LOST=12288

T_BEGIN=$(ctf_now)
ctf_setup
DIR=$CTF_WORK/bound
COLL_DIR=$DIR/collector
mkdir -p "$COLL_DIR"
CONF=$DIR/ctflowd.conf LOG=$DIR/ctflowd.log JSON=$DIR/flows.json
export CTF_LIB_DIR

# ------------------------------------------------------------------ helpers

stat_dropped() { printf '%s\n' "$1" | sed -n 's/.*; spool dropped \([0-9]*\).*/\1/p'; }

# The scorer.  ipfix_verify.py only counts options records, so their values
# are taken here from a decoder whose data sets also keep scoped records.
SCORE=$DIR/score.py
cat >"$SCORE" <<'PY'
import glob, json, os, re, sys
from collections import Counter
sys.path.insert(0, os.environ["CTF_LIB_DIR"])
import ipfix_verify as iv

class OptionsDecoder(iv.Decoder):
    """ipfix_verify's decoder, also keeping the options records it only counts."""
    def __init__(self, data):
        super().__init__(data)
        self.options = []      # (template id, scope fields, record)

    def data_set(self, t, p, end):
        before = self.option_records
        n = super().data_set(t, p, end)
        if t.scope and t.fixed:
            for _ in range(self.option_records - before):
                rec = {}
                for ent, ie, ln in t.fields:
                    rec[(ent, ie)] = iv.decode_value(ent, ie, self.data[p:p + ln])
                    p += ln
                self.options.append((t.tid, t.fields[:t.scope], rec))
        return n

# score DIR JSON SRC DST PKTS BYTES DOMAIN WANT_TOTAL LOST_TCP DELIVERED DPORT:SPORT:COUNT...
d, json_path, src, dst = sys.argv[1:5]
pkts, nbytes, domain, total, lost, delivered = (int(x) for x in sys.argv[5:11])
want = set()
for spec in sys.argv[11:]:
    dport, sport, count = (int(x) for x in spec.split(":"))
    want |= {(4, 17, src, s, dst, dport) for s in range(sport, sport + count)}

def res(ok, what, *detail):
    print("|".join(["OK" if ok else "NOTOK", what] + [str(x) for x in detail]))

files = sorted(glob.glob(os.path.join(d, "conn-*.ipfix")),
               key=lambda p: int(re.search(r"conn-(\d+)", p).group(1)))
flows, other, options, broken = {}, [], [], []
ndup, split = 0, 0
for p in files:
    dec = OptionsDecoder(open(p, "rb").read()).run()
    if dec.truncated:
        broken.append(os.path.basename(p))
    options += [(os.path.basename(p),) + o for o in dec.options]
    for r in dec.records:
        k = iv.flow_key(r)
        if k not in want:
            other.append(k)
        elif k in flows:
            ndup += 1
            split += flows[k].get((0, 148)) != r.get((0, 148))
        else:
            flows[k] = r
wrong = [k for k, r in flows.items()
         if (iv.first(r, iv.FWD_PKTS), iv.first(r, iv.FWD_BYTES),
             iv.first(r, iv.REV_PKTS), iv.first(r, iv.REV_BYTES)) != (pkts, nbytes, 0, 0)]
print("# ipfix: %d distinct flows, %d duplicates, %d other records, %d options records; broken mid-message: %s"
      % (len(flows), ndup, len(other), len(options), ", ".join(broken) or "none"))
res(not other and not wrong,
    "ipfix: every decoded flow is one of the workload's, counters exact (%d pkts/%d bytes, reply 0/0)" % (pkts, nbytes),
    *(["%d records of other flows, e.g. %s" % (len(other), other[:3])] if other else []),
    *(["%d wrong counters, e.g. %s" % (len(wrong), wrong[:3])] if wrong else []))
res(not split and (not ndup or broken),
    "ipfix: no flow twice, or only resends with the same flowId after a broken connection (%d duplicates)" % ndup,
    *(["%d repeats with another flowId" % split] if split else []))

# the options record: template 258, scope exportingProcessId (144) and
# observationDomainId (149), and notSentFlowTotalCount, which IANA numbers
# 166 (167 is notSentPacketTotalCount)
for f, tid, scope, rec in options:
    name = lambda e, i: "notSentFlowTotalCount" if (e, i) == (0, 166) else iv.ie_name(e, i)
    print("# options record in %s: template %d, scope %s, %s" % (
        f, tid, [name(e, i) for e, i, _ in scope],
        ", ".join("%s=%s" % (name(*k), v) for k, v in rec.items())))
ns = [(f, tid, scope, rec) for f, tid, scope, rec in options if (0, 166) in rec]
good = [o for o in ns if o[1] == 258 and [(e, i) for e, i, _ in o[2]] == [(0, 144), (0, 149)]
        and o[3].get((0, 144)) == 1 and o[3].get((0, 149)) == domain]
res(bool(good), "ipfix: an options record (template 258, scope exportingProcessId 1, observationDomainId %d) carries notSentFlowTotalCount (IE 166)" % domain,
    *([] if good else ["%d options records, %d with IE 166: %s" % (
        len(options), len(ns), [(o[0], o[1], o[3]) for o in options[:3]])]))
reported = max((o[3][(0, 166)] for o in good), default=None)
res(reported == lost, "ipfix: notSentFlowTotalCount %s = records lost for tcp (%d)" % (reported, lost))
res(reported is not None and len(flows) + reported == total,
    "ipfix: decoded flows + notSentFlowTotalCount = %d (%d + %s)" % (total, len(flows), reported))
# the bound drops the oldest: what arrived must be the newest records.  The
# JSON export wrote every record in journal order, so its last lines are
# the newest positions.
order = []
for line in open(json_path, encoding="utf-8", errors="replace") if os.path.exists(json_path) else []:
    try:
        o = json.loads(line)
        order.append((4, o["proto"], o["src"], o["sport"], o["dst"], o["dport"]))
    except (ValueError, KeyError, TypeError):
        order.append(None)
newest = set(order[len(order) - len(flows):]) if flows else set()
res(set(flows) == newest, "ipfix: the %d flows delivered are the newest ones (the last lines of the JSON export)" % len(flows),
    *(["%d of them are not among the newest" % len(set(flows) - newest)] if set(flows) != newest else []))
res(delivered == len(flows), "statistics: export tcp 'records' (%d) = flows the collector decoded (%d)"
    % (delivered, len(flows)))

# the JSON export kept up: every flow, once, counters exact
seen, jwrong, jother, bad = Counter(), 0, 0, 0
for line in open(json_path, encoding="utf-8", errors="replace") if os.path.exists(json_path) else []:
    try:
        o = json.loads(line)
        k = (4, o["proto"], o["src"], o["sport"], o["dst"], o["dport"])
    except (ValueError, KeyError, TypeError):
        bad += 1
        continue
    if k not in want:
        jother += 1
        continue
    seen[k] += 1
    if (o["packets"], o["bytes"], o["reply_packets"], o["reply_bytes"]) != (pkts, nbytes, 0, 0):
        jwrong += 1
jdup = sum(c - 1 for c in seen.values())
res(len(seen) == total and not jdup and not jwrong and not jother and not bad,
    "json: all %d flows once, counters exact (%d)" % (total, len(seen)),
    *["%s %d" % kv for kv in (("duplicates", jdup), ("wrong counters", jwrong),
                              ("other flows", jother), ("unreadable lines", bad)) if kv[1]])
PY

# ------------------------------------------------------------------ run

CTF_SPOOL_MAX=1M ctf_ctflowd_conf "$CONF"
cat >>"$CONF" <<EOF

[export tcp]
format = ipfix
transport = tcp
destination = 127.0.0.1:$PORT
observation_domain = $DOMAIN
flush_interval = 200ms
reconnect_min = 100ms
reconnect_max = 500ms

[export json]
format = json
transport = file
path = $JSON
flush_interval = 100ms
EOF
ctf_start_ctflowd "$CONF" "$LOG" || ctf_bail "ctflowd did not start (config $CONF)"
CTFLOWD_PID=$CTF_LAST_PID
ctf_ok "ctflowd starts with spool_max = 1M and no collector listening"

GEN_OK=0
for ((b = 0; b < BATCHES; b++)); do
	ctf_gen_udp $PER_BATCH $((DPORT0 + b)) $SPORT $PKTS $LEN && GEN_OK=$((GEN_OK + 1))
	ctf_ct_flush
	want=$(((b + 1) * PER_BATCH))
	# the JSON export keeps up: the next batch starts once it has this one
	for ((i = 0; i < 150; i++)); do [ "$(ctf_json_lines "$JSON")" -ge $want ] && break; sleep 0.1; done
	l=$(ctf_stat_export "$(ctf_last_stats "$LOG")" tcp lost)
	ctf_diag "batch $((b + 1)): json has $(ctf_json_lines "$JSON") lines, tcp lost ${l:-? (no statistics line yet)}"
done
ctf_is "$GEN_OK" $BATCHES "every batch: the router created $PER_BATCH entries and the server got every packet"
ctf_wait_idle "$CTFLOWD_PID" 1.5 60 || ctf_diag "ctflowd not idle after 60 s (or gone)"
sleep 1.2   # one more statistics line after the last drop
if ctf_alive "$CTFLOWD_PID"; then
	ctf_ok "ctflowd keeps running with the journal full"
else
	ctf_not_ok "ctflowd keeps running with the journal full"; ctf_diag_file "$LOG" 30
fi
ctf_is "$(ctf_json_lines "$JSON")" $N "the JSON export has $N lines while tcp is down"

st=$(ctf_last_stats "$LOG")
lost_tcp=$(ctf_stat_export "$st" tcp lost)
lost_json=$(ctf_stat_export "$st" json lost)
dropped=$(stat_dropped "$st")
ctf_diag "statistics: $(printf '%s\n' "$st" | grep -o 'export tcp: [^;]*')" \
	"statistics: $(printf '%s\n' "$st" | grep -o 'export json: [^;]*'); spool dropped $dropped"
if [ -n "$dropped" ] && [ "$dropped" -gt 0 ] && [ "$lost_tcp" = "$dropped" ]; then
	ctf_ok "statistics: export tcp lost $lost_tcp = spool dropped $dropped > 0"
else
	ctf_not_ok "statistics: export tcp lost N = spool dropped N > 0" "line: $st"
fi
ctf_is "${lost_tcp:-?}" $WANT_LOST "records lost for tcp are what spool_max = 1M holds no more"
ctf_is "${lost_json:-?}" 0 "statistics: export json lost 0"
# the warnings: one per drop, each with a count for every reader that lost
# records ("...; lost for tcp 4096"); their sum is the statistics' count
grep -E 'warning: spool: .*records not yet delivered are gone' "$LOG" >"$DIR/drops.log"
head -3 "$DIR/drops.log" | sed 's/^/# ctflowd log: /'
warned=$(grep -oE 'lost for ([^;]*, )?tcp [0-9]+' "$DIR/drops.log" | awk '{ s += $NF } END { print s + 0 }')
warned_json=$(grep -oE 'lost for ([^;]*, )?json [0-9]+' "$DIR/drops.log" | awk '{ s += $NF } END { print s + 0 }')
if [ -s "$DIR/drops.log" ] && [ "$warned" = "$lost_tcp" ] && [ "$warned_json" = 0 ]; then
	ctf_ok "$(wc -l <"$DIR/drops.log") warnings say records not yet delivered were dropped, $warned for tcp, none for json"
else
	ctf_not_ok "warnings say how many undelivered records were dropped for tcp" \
		"$(wc -l <"$DIR/drops.log") warning lines, sum for tcp $warned (statistics: ${lost_tcp:-?}), for json $warned_json"
fi

# --- the collector starts: what the journal still holds goes out
DELIVER_WANT=$((N - ${lost_tcp:-0}))
ctf_start_tcp_collector "$DIR" "$COLL_DIR" $PORT 1; COLL_PID=$CTF_LAST_PID
T_UP=$(ctf_now)
if ctf_wait_stat_export "$LOG" tcp records $DELIVER_WANT 60; then
	ctf_ok "once the collector listens, ctflowd delivers ($(ctf_elapsed "$T_UP") s)"
else
	ctf_not_ok "once the collector listens, ctflowd delivers" "last statistics: $(ctf_last_stats "$LOG")"
fi
ctf_wait_idle "$CTFLOWD_PID" 1.5 60 || ctf_diag "ctflowd not idle after 60 s (or gone)"
ctf_stop "$CTFLOWD_PID" 20
ctf_is "$CTF_STOP_STATUS/$CTF_STOP_KILLED" 0/0 "ctflowd exits 0 on SIGTERM (exit status/killed)"
final=$(grep ' final: ' "$LOG" | tail -1)
ctf_diag "final $(printf '%s\n' "$final" | grep -o 'export tcp: [^;]*'); spool dropped $(stat_dropped "$final")"
ctf_stop "$COLL_PID" 5

# ------------------------------------------------------------------ judge

mapfile -t FILES < <(ls -v "$COLL_DIR"/conn-*.ipfix 2>/dev/null)
[ ${#FILES[@]} -ge 1 ] || ctf_not_ok "the collector got a connection" "none"
for f in "${FILES[@]}"; do
	b=$(basename "$f" .ipfix)
	out=$("${VERIFY[@]}" "$f" --allow-truncated --require-flowid 2>&1)
	echo "$out" >"${f%.ipfix}.verdict"
	sum=$(printf '%s\n' "$out" | grep '^file=')
	if printf '%s\n' "$out" | grep -q '^result=pass'; then
		ctf_ok "ipfix_verify.py: $b decodes: $(ctf_kv flow_records "$sum") flow records, $(ctf_kv option_records "$sum") options records"
	else
		mapfile -t lines < <(printf '%s\n' "$out" | grep -E '^(FAIL|file=)')
		ctf_not_ok "ipfix_verify.py: $b decodes" "${lines[@]}"
	fi
	# fixbuf's view of the options record
	ipfixDump --in "$f" >"${f%.ipfix}.ipfixdump.txt" 2>"${f%.ipfix}.ipfixdump.err"
	ns=$(grep -E '^\s+\(166\).*notSentFlowTotalCount' "${f%.ipfix}.ipfixdump.txt" | tail -1 | awk -F: '{ gsub(/ /, "", $NF); print $NF }')
	if [ "${ns:-x}" = "${lost_tcp:-y}" ]; then
		ctf_ok "ipfixDump: $b: notSentFlowTotalCount $ns"
	else
		ctf_not_ok "ipfixDump: $b shows notSentFlowTotalCount = ${lost_tcp:-?}" "ipfixDump: ${ns:-no such field}" \
			"$(grep '^\*\*\* File Stats' "${f%.ipfix}.ipfixdump.txt")"
	fi
done

specs=()
for ((b = 0; b < BATCHES; b++)); do specs+=("$((DPORT0 + b)):$SPORT:$PER_BATCH"); done
"$PYTHON" "$SCORE" "$COLL_DIR" "$JSON" $CLI_IP $SRV_IP $PKTS $UDP_FWD_BYTES $DOMAIN $N \
	"${lost_tcp:-0}" "$(ctf_stat_export "$final" tcp records)" "${specs[@]}" >"$DIR/score.txt" 2>&1
ctf_report_score <"$DIR/score.txt"

ctf_diag "total $(ctf_elapsed "$T_BEGIN") s"
ctf_done
