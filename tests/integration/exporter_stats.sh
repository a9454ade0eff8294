#!/bin/bash
# exporter_stats.sh - the statistics each export sends about itself: the
# IPFIX options record (template 258, RFC 7011 section 4.3) as ipfixDump
# decodes it, and the JSON exporter_stats line, with counts that match the
# run.
#
# In fresh namespaces (lib.sh) the router runs ctflowd with two exports,
# both with `statistics = 2s`:
#   [export ipfix]  IPFIX to a file, enterprise_number = 32473 (RFC 5612's
#                   number for documentation), so the daemon's own counters
#                   go out too, named by RFC 5610 type records
#   [export json]   JSON lines to a file
# 2,000 two-packet UDP flows end (conntrack -F); a few seconds later ctflowd
# gets SIGTERM, which sends the last statistics after the last flows.
#
# Checks, from `ipfixDump --rfc5610` alone: the file holds periodic options
# records and a last one; that last one is scoped by exportingProcessId 1
# (the first export) and observationDomainId 1, and says
# exportedFlowRecordTotalCount = the flows decoded = 2,000,
# exportedMessageTotalCount = every message of the file before its own,
# exportedOctetTotalCount = the bytes of those messages, notSentFlowTotalCount
# = 0, and, by the names the type records gave them,
# ctflowdDestroyEventTotalCount - ctflowdDuplicateTotalCount = 2,000 with
# both equal to ctflowd's own final log line, as are the overruns (the
# 16 KiB receive buffer overflows; reliable delivery resends) and malformed
# messages, and no spool drop; the
# counts of the periodic records never go down.  The JSON file's last
# exporter_stats line says the same for export 2 (records = its 2,000 flow
# lines, octets = the bytes before that line).
#
# Environment: see lib.sh.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ctf_require_root
ctf_require_cmd ipfixDump "$PYTHON" "$CTFLOWD" "$FLOWGEN"
export TZ=UTC

N=2000 PKTS=2 LEN=50 DPORT=22000 SPORT=2000 PEN=32473

ctf_setup
DIR=$CTF_WORK/stats
mkdir -p "$DIR"
CONF=$DIR/ctflowd.conf LOG=$DIR/ctflowd.log IPFIX=$DIR/flows.ipfix JSON=$DIR/flows.json

ctf_ctflowd_conf "$CONF"
cat >>"$CONF" <<EOF

[export ipfix]
format = ipfix
transport = file
path = $IPFIX
flush_interval = 200ms
statistics = 2s
enterprise_number = $PEN

[export json]
format = json
transport = file
path = $JSON
flush_interval = 200ms
statistics = 2s
EOF

ctf_ct_flush
if ! ctf_start_ctflowd "$CONF" "$LOG"; then
	ctf_bail "ctflowd does not start (config $CONF)"
fi
PID=$CTF_LAST_PID
ctf_ok "ctflowd starts and listens for DESTROY events"

if ctf_gen_udp $N $DPORT $SPORT $PKTS $LEN; then
	ctf_ok "workload: $N UDP flows, every packet reached the server"
else
	ctf_not_ok "workload: $N UDP flows, every packet reached the server"
fi
ctf_ct_flush
ctf_settle "$PID"
sleep 4   # at least one periodic report after the last flow
ctf_stop_clean "$PID" ctflowd "$LOG"

FINAL=$(grep -E ' final: ' "$LOG" | tail -1)
LOG_DESTROYS=$(printf '%s\n' "$FINAL" | sed -n 's/.*destroy events \([0-9]*\).*/\1/p')
LOG_DUPS=$(printf '%s\n' "$FINAL" | sed -n 's/.*duplicates \([0-9]*\).*/\1/p')
LOG_OVERRUNS=$(printf '%s\n' "$FINAL" | sed -n 's/.*overruns \([0-9]*\).*/\1/p')
LOG_MALFORMED=$(printf '%s\n' "$FINAL" | sed -n 's/.*malformed \([0-9]*\).*/\1/p')
ctf_diag "final statistics: ${FINAL:-none}"

ipfixDump --rfc5610 --in "$IPFIX" >"$DIR/ipfixdump.txt" 2>"$DIR/ipfixdump.err"

cat >"$DIR/score.py" <<'PY'
import json, os, re, sys

dump, ipfix_path, json_path, n, log_destroys, log_dups, log_overruns, log_malformed = sys.argv[1:9]
n = int(n)

def res(ok, what, *detail):
    print("|".join(["OK" if ok else "NOTOK", what] + [str(x) for x in detail]))

# ipfixDump's text: messages with their lengths, records with their
# template and named fields ('(ID) name : value', '(PEN/ID) ...')
field_re = re.compile(r"^\s+\((?:(\d+)/)?(\d+)\)\s*(\(S\))?\s*(\S+)\s*:\s?(.*)$")
msgs, recs, rec, file_stats = [], [], None, None
for line in open(dump, encoding="utf-8", errors="replace"):
    if line.startswith("--- Message Header"):
        msgs.append(0)
        rec = None
        continue
    m = re.search(r"message length:\s*(\d+)", line)
    if m:
        msgs[-1] = int(m.group(1))
    if line.startswith("--- data record"):
        rec = {"_msg": len(msgs) - 1}
        recs.append(rec)
        continue
    if line.startswith("---"):
        rec = None
        continue
    m = re.search(r"^\s*count:\s*\d+\s+tid:\s*(\d+)", line)
    if m and rec is not None:
        rec["_tid"] = int(m.group(1))
        continue
    m = re.match(r"^\*\*\* File Stats: (\d+) Messages, (\d+) Data Records", line)
    if m:
        file_stats = (int(m.group(1)), int(m.group(2)))
    m = field_re.match(line)
    if m and rec is not None:
        v = m.group(5).strip()
        rec[m.group(4)] = int(v) if re.fullmatch(r"\d+", v) else v

res(file_stats is not None and file_stats[0] == len(msgs),
    "ipfixDump reads the whole file (%s messages, %d printed)" % (file_stats and file_stats[0], len(msgs)))
flows = [r for r in recs if "protocolIdentifier" in r]
stats = [r for r in recs if r.get("_tid") == 258]
res(len(flows) == n, "ipfixDump: %d flow records (%d)" % (n, len(flows)))
res(len(stats) >= 2, "ipfixDump: periodic statistics and a last one (%d options records of template 258)" % len(stats))
if not stats:
    sys.exit(0)
last = stats[-1]
print("# last statistics record: %s" % ", ".join("%s=%s" % kv for kv in last.items()))
res(last["_msg"] == len(msgs) - 1, "the last statistics record is the file's last message")
res((last.get("exportingProcessId"), last.get("observationDomainId")) == (1, 1),
    "scope: exportingProcessId 1 (the first export), observationDomainId 1")
res(last.get("exportedFlowRecordTotalCount") == n,
    "exportedFlowRecordTotalCount = %d flows sent (%s)" % (n, last.get("exportedFlowRecordTotalCount")))
res(last.get("exportedMessageTotalCount") == last["_msg"],
    "exportedMessageTotalCount = %d messages before it (%s)" % (last["_msg"], last.get("exportedMessageTotalCount")))
before = sum(msgs[:last["_msg"]])
size = os.path.getsize(ipfix_path)
res(last.get("exportedOctetTotalCount") == before == size - msgs[-1],
    "exportedOctetTotalCount = %d bytes before it (%s; file %d bytes)" % (before, last.get("exportedOctetTotalCount"), size))
res(last.get("notSentFlowTotalCount") == 0, "notSentFlowTotalCount = 0 (%s)" % last.get("notSentFlowTotalCount"))
d, u = last.get("ctflowdDestroyEventTotalCount"), last.get("ctflowdDuplicateTotalCount")
res(isinstance(d, int) and isinstance(u, int) and d - u == n and str(d) == log_destroys and str(u) == log_dups,
    "ipfixDump names the own elements from the RFC 5610 records: DESTROY events %s - duplicates %s = %d, as the log says (%s, %s)"
    % (d, u, n, log_destroys, log_dups))
got = (last.get("ctflowdOverrunTotalCount"), last.get("ctflowdMalformedTotalCount"), last.get("ctflowdSpoolDroppedTotalCount"))
res(tuple(str(x) for x in got) == (log_overruns, log_malformed, "0"),
    "overruns and malformed messages as the log says (%s, %s), no spool drop: %s" % (log_overruns, log_malformed, got))
keys = ("exportedMessageTotalCount", "exportedFlowRecordTotalCount", "exportedOctetTotalCount",
        "ctflowdDestroyEventTotalCount")
down = [(a[k], b[k], k) for a, b in zip(stats, stats[1:]) for k in keys if b.get(k, 0) < a.get(k, 0)]
res(not down, "the counts of successive statistics records never go down", *down[:3])
times = [r.get("observationTimeMilliseconds") for r in stats]
res(times == sorted(times) and all(r.get("systemInitTimeMilliseconds") == stats[0].get("systemInitTimeMilliseconds") for r in stats),
    "observation times in order, one systemInitTimeMilliseconds")

# the JSON export
raw = open(json_path, "rb").read()
lines = raw.decode("utf-8").splitlines(keepends=True)
objs = [json.loads(l) for l in lines]
flow_lines = [o for o in objs if "flow_id" in o]
st = [(i, o["exporter_stats"]) for i, o in enumerate(objs) if "exporter_stats" in o]
other = [o for o in objs if "flow_id" not in o and "exporter_stats" not in o]
res(len(flow_lines) == n and not other, "json: %d flow lines (%d), no other kind of line (%d)" % (n, len(flow_lines), len(other)))
res(len(st) >= 2, "json: periodic exporter_stats lines and a last one (%d)" % len(st))
if st:
    i, s = st[-1]
    print("# last exporter_stats: %s" % s)
    res(i == len(objs) - 1, "json: the last exporter_stats line ends the file")
    res(s["exporting_process_id"] == 2 and s["records"] == n and s["not_sent_flow_total_count"] == 0,
        "json: export 2, records = %d flow lines, not_sent 0 (%s, %s, %s)" % (n, s["exporting_process_id"], s["records"], s["not_sent_flow_total_count"]))
    res(s["octets"] == len(raw) - len(lines[-1].encode()),
        "json: octets = the bytes before its line (%s, %d)" % (s["octets"], len(raw) - len(lines[-1].encode())))
    got = tuple(str(s[k]) for k in ("destroy_events", "duplicates", "overruns", "malformed", "spool_dropped"))
    res(got == (log_destroys, log_dups, log_overruns, log_malformed, "0"),
        "json: destroy_events, duplicates, overruns, malformed as the log says, no spool drop: %s" % (got,))
PY
"$PYTHON" "$DIR/score.py" "$DIR/ipfixdump.txt" "$IPFIX" "$JSON" $N "${LOG_DESTROYS:-x}" \
	"${LOG_DUPS:-x}" "${LOG_OVERRUNS:-x}" "${LOG_MALFORMED:-x}" >"$DIR/score.txt" 2>&1
ctf_report_score <"$DIR/score.txt"

ctf_done
