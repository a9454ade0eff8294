#!/bin/bash
# zone_vrf.sh - the conntrack zone goes into ingressVRFID, mapped by
# zone_vrf where the configuration says so.
#
# In fresh namespaces (lib.sh) the router puts UDP to port 7101 in conntrack
# zone 5 and UDP to port 7102 in zone 9 (nft `ct zone set`); port 7100 stays
# in zone 0.  ctflowd exports with `zone_vrf = 5=500` to nfcapd (UDP), an
# IPFIX file and a JSON file.  Each flow must carry ingressVRFID 0, 500 and
# 9 as decoded by nfdump (%ivrf) and ipfixDump, and its own zone (0, 5, 9)
# in JSON.
#
# Environment: see lib.sh.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ctf_require_root
ctf_require_cmd "$CTFLOWD" "$PYTHON" nfcapd nfdump ipfixDump

N=5 PORT=$((20000 + $$ % 20000))
ctf_setup
DIR=$CTF_WORK/zones
mkdir -p "$DIR"
CONF=$DIR/ctflowd.conf LOG=$DIR/ctflowd.log

# zones are set before conntrack sees the packet (raw priority)
ctf_nsx "$NS_RTR" nft -f - <<EOF || ctf_bail "router zone ruleset"
table ip ctfzone {
	chain pre {
		type filter hook prerouting priority raw; policy accept;
		udp dport 7101 ct zone set 5
		udp dport 7102 ct zone set 9
	}
}
EOF

ctf_start_nfcapd "$DIR/nf" "$PORT"; NFCAPD=$CTF_LAST_PID
ctf_ctflowd_conf "$CONF"
ctf_conf_udp_and_file "$CONF" "$PORT" "$DIR/export.ipfix"
sed -i '/^\[export \(collector\|file\)\]$/a zone_vrf = 5=500' "$CONF"
ctf_conf_json_file "$CONF" json "$DIR/export.json"
ctf_start_ctflowd "$CONF" "$LOG" || ctf_bail "ctflowd did not start"
PID=$CTF_LAST_PID

for p in 7100 7101 7102; do
	ctf_nsx "$NS_CLI" "$FLOWGEN" udp -d $SRV_IP -n $N -P 2 -l 20 -p $p -S 6000 >/dev/null 2>&1 ||
		ctf_diag "flowgen udp to $p failed"
done
ctf_is "$(ctf_nsx "$NS_RTR" conntrack -L -p udp 2>/dev/null | grep -c 'zone=5 ')/$(ctf_nsx "$NS_RTR" conntrack -L -p udp 2>/dev/null | grep -c 'zone=9 ')" \
	"$N/$N" "the router put $N flows in zone 5 and $N in zone 9"
ctf_ct_flush
ctf_settle "$PID"
ctf_stop_clean "$PID" ctflowd "$LOG"
sleep 0.5   # the last datagrams reach nfcapd
ctf_stop "$NFCAPD"
nfdump -R "$DIR/nf" -q -N -o "fmt:%pr %dp %ivrf" >"$DIR/nfdump.txt" 2>"$DIR/nfdump.err"
TZ=UTC ipfixDump --in "$DIR/export.ipfix" >"$DIR/ipfixdump.txt" 2>"$DIR/ipfixdump.err"

CTF_LIB_DIR=$CTF_LIB_DIR "$PYTHON" - "$DIR" $N <<'PY' >"$DIR/verdict.txt" 2>&1
import json, os, sys
sys.path.insert(0, os.environ["CTF_LIB_DIR"])
import ipfix_verify as iv

d, n = sys.argv[1], int(sys.argv[2])
VRF = {7100: 0, 7101: 500, 7102: 9}
ZONE = {7100: 0, 7101: 5, 7102: 9}

def res(ok, what, *detail):
    print("|".join(["OK" if ok else "NOTOK", what] + [str(x) for x in detail]))

def judge(view, pairs, want, what):
    got = {}
    for dport, v in pairs:
        got.setdefault(dport, []).append(v)
    for dport, w in want.items():
        v = got.pop(dport, [])
        res(v == [w] * n, "%s: %d flows to port %d, %s %d each" % (view, n, dport, what, w),
            *([] if v == [w] * n else ["got %s" % v]))
    res(not got, "%s: no other flow" % view, *["%s: %s" % kv for kv in got.items()])

rows = [l.split() for l in open(os.path.join(d, "nfdump.txt"))]
judge("nfdump", [(int(r[1]), int(r[2])) for r in rows if len(r) == 3], VRF, "ingress VRF")
dump = iv.read_ipfixdump(open(os.path.join(d, "ipfixdump.txt")).read())
res(not dump.errors, "ipfixDump reads the IPFIX file", *dump.errors[:3])
judge("ipfixDump", [(r.get((0, 11)), r.get((0, 234))) for r in dump.records], VRF, "ingressVRFID")
lines = [json.loads(l) for l in open(os.path.join(d, "export.json"))]
judge("JSON", [(o["dport"], o["zone"]) for o in lines if "flow_id" in o], ZONE, "zone")
PY
ctf_report_score <"$DIR/verdict.txt"
ctf_done
