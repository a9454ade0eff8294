#!/bin/bash
# marks.sh - the conntrack mark and labels in IPFIX (marks = yes, under the
# export's enterprise number, named by RFC 5610 type records) and in JSON.
#
# In fresh namespaces (lib.sh) the router marks UDP to port 7201 with ct
# mark 0x2a and labels 3 and 100, and UDP to port 7202 with ct mark 0x10
# and label 127 (nft `ct mark set`, `ct label set`); port 7200 keeps mark 0
# and no label.  ctflowd exports to an IPFIX file with enterprise_number
# 32473 (RFC 5612's, for documentation) and marks = yes, and to a JSON file.
# ipfixDump, told to read RFC 5610 type records, must name ctMark and
# ctLabels and show each flow's values; JSON must carry the same.  The
# kernel leaves labels out of DESTROY events and sends them with NEW ones,
# so ctflowd reads NEW events too (events = destroy,new) and gives each
# DESTROY the labels of its NEW; port 7200's flows, with no label ever
# set, have labels null in JSON and ctLabels zero.
#
# Environment: see lib.sh.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ctf_require_root
ctf_require_cmd "$CTFLOWD" "$PYTHON" ipfixDump

N=5
ctf_setup
DIR=$CTF_WORK/marks
mkdir -p "$DIR"
CONF=$DIR/ctflowd.conf LOG=$DIR/ctflowd.log

# after conntrack (priority filter), before the entry is confirmed
ctf_nsx "$NS_RTR" nft -f - <<EOF || ctf_bail "router mark ruleset"
table inet ctfmark {
	chain marking {
		type filter hook forward priority filter; policy accept;
		udp dport 7201 ct mark set 0x2a ct label set 3 ct label set 100
		udp dport 7202 ct mark set 0x10 ct label set 127
	}
}
EOF

ctf_ctflowd_conf "$CONF"
echo "events = destroy,new" >>"$CONF"
ctf_conf_ipfix_file "$CONF" file "$DIR/export.ipfix"
sed -i '/^\[export file\]$/a enterprise_number = 32473\nmarks = yes' "$CONF"
ctf_conf_json_file "$CONF" json "$DIR/export.json"
ctf_start_ctflowd "$CONF" "$LOG" || ctf_bail "ctflowd did not start"
PID=$CTF_LAST_PID

for p in 7200 7201 7202; do
	ctf_nsx "$NS_CLI" "$FLOWGEN" udp -d $SRV_IP -n $N -P 2 -l 20 -p $p -S 6000 >/dev/null 2>&1 ||
		ctf_diag "flowgen udp to $p failed"
done
ctf_is "$(ctf_nsx "$NS_RTR" conntrack -L -p udp -m 0x2a 2>/dev/null | grep -c 'dport=7201 ')" \
	"$N" "the router marked $N flows 0x2a"
ctf_ct_flush
ctf_settle "$PID"
ctf_stop_clean "$PID" ctflowd "$LOG"
TZ=UTC ipfixDump --rfc5610 --hexdump=16 --in "$DIR/export.ipfix" >"$DIR/ipfixdump.txt" 2>"$DIR/ipfixdump.err"

CTF_LIB_DIR=$CTF_LIB_DIR "$PYTHON" - "$DIR" $N <<'PY' >"$DIR/verdict.txt" 2>&1
import json, os, re, sys
sys.path.insert(0, os.environ["CTF_LIB_DIR"])
import ipfix_verify as iv

d, n = sys.argv[1], int(sys.argv[2])
PEN = 32473
MARK = {7200: 0, 7201: 0x2a, 7202: 0x10}
LABELS = {7200: [], 7201: [3, 100], 7202: [127]}
# never a label set: none known, null in JSON
JSON_LABELS = {7200: None, 7201: [3, 100], 7202: [127]}

def res(ok, what, *detail):
    print("|".join(["OK" if ok else "NOTOK", what] + [str(x) for x in detail]))

def labels_of(text):
    """The label numbers in ipfixDump's text of a 16-octet array."""
    m = re.search(r"0x([0-9a-fA-F]{32})\b", text)
    if not m:
        return "unreadable %r" % text
    octets = bytes.fromhex(m.group(1))
    return [i for i in range(128) if octets[i // 8] >> (i % 8) & 1]

def judge(view, rows, what, labels):
    got = {}
    for dport, v in rows:
        got.setdefault(dport, []).append(v)
    for dport in MARK:
        want = (MARK[dport], labels[dport])
        v = got.pop(dport, [])
        res(v == [want] * n, "%s: %d flows to port %d, %s %s each" % (view, n, dport, what, want),
            *([] if v == [want] * n else ["got %s" % v]))
    res(not got, "%s: no other flow" % view, *["%s: %s" % kv for kv in got.items()])

text = open(os.path.join(d, "ipfixdump.txt")).read()
dump = iv.read_ipfixdump(text)
res(not dump.errors, "ipfixDump reads the IPFIX file", *dump.errors[:3])
# the names come from the type records: without --rfc5610 ipfixDump has none
for name in ("ctMark", "ctLabels"):
    named = re.findall(r"\(%d/(\d+)\)\s*%s\s*:" % (PEN, name), text)
    res(bool(named), "ipfixDump names %s (enterprise %d) from the RFC 5610 records" % (name, PEN))
rows = [(r.get((0, 11)), (r.get((PEN, 105)), labels_of(str(r.get((PEN, 106), "")))))
        for r in dump.records]
judge("ipfixDump", rows, "ctMark/ctLabels", LABELS)
lines = [json.loads(l) for l in open(os.path.join(d, "export.json"))]
judge("JSON", [(o["dport"], (o["mark"], o["labels"])) for o in lines if "flow_id" in o],
      "mark/labels", JSON_LABELS)
PY
ctf_report_score <"$DIR/verdict.txt"
ctf_done
