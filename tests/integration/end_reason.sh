#!/bin/bash
# end_reason.sh - each way a connection ends gets its documented
# flowEndReason (IPFIX, read by ipfixDump) and end_reason (JSON).
#
# In fresh namespaces (lib.sh; UDP entries time out after 3 s here) the
# client makes, through the router:
#   TCP to port 7001, closed with FIN both ways     -> 3 (end of flow)
#   TCP to port 7002, reset by the client (RST)     -> 3 (end of flow)
#   UDP to port 7003, left to expire                -> 1 (idle timeout)
#   UDP to port 7004, deleted with conntrack -D     -> 4 (forced end)
#   UDP to port 7005, removed by conntrack -F       -> 4 (forced end)
# Each flow must show up exactly once in the IPFIX file and the JSON file,
# with that reason.
#
# Environment: see lib.sh.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ctf_require_root
ctf_require_cmd "$CTFLOWD" "$PYTHON" ipfixDump

CTF_UDP_TIMEOUT=3
ctf_setup
DIR=$CTF_WORK/reasons
mkdir -p "$DIR"
CONF=$DIR/ctflowd.conf LOG=$DIR/ctflowd.log

ctf_ctflowd_conf "$CONF"
ctf_conf_ipfix_file "$CONF" file "$DIR/export.ipfix"
ctf_conf_json_file "$CONF" json "$DIR/export.json"
ctf_start_ctflowd "$CONF" "$LOG" || ctf_bail "ctflowd did not start"
PID=$CTF_LAST_PID
ctf_spawn "$NS_SRV" "$DIR/tcp-server-fin.log" "$FLOWGEN" tcp-server -p 7001 -t 120
ctf_spawn "$NS_SRV" "$DIR/tcp-server-rst.log" "$FLOWGEN" tcp-server -p 7002 -t 120
sleep 0.3

out=$(ctf_nsx "$NS_CLI" "$FLOWGEN" tcp -d $SRV_IP -n 1 -p 7001 -l 1000 2>&1) ||
	ctf_diag "flowgen tcp: $out"
# connect, send, then close with SO_LINGER 0: the kernel sends a RST
ctf_nsx "$NS_CLI" "$PYTHON" - "$SRV_IP" <<'PY' || ctf_diag "RST client failed"
import socket, struct, sys, time
s = socket.create_connection((sys.argv[1], 7002), timeout=5)
s.sendall(b"x" * 100)
time.sleep(0.2)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
PY
udp() {   # DPORT
	ctf_nsx "$NS_CLI" "$FLOWGEN" udp -d $SRV_IP -n 1 -P 2 -l 20 -p "$1" -S 5555 >/dev/null 2>&1 ||
		ctf_diag "flowgen udp to $1 failed"
}
udp 7003
udp 7004
ctf_nsx "$NS_RTR" conntrack -D -p udp --dport 7004 >/dev/null 2>&1 ||
	ctf_diag "conntrack -D found nothing for udp port 7004"
# the expiry of 7003 and the closes must come first: a flush would take them
ctf_wait_ct_empty 60 || ctf_diag "router table not empty after 60 s: $(ctf_ct_count) entries"
udp 7005
ctf_ct_flush
ctf_settle "$PID"
ctf_stop_clean "$PID" ctflowd "$LOG"
TZ=UTC ipfixDump --in "$DIR/export.ipfix" >"$DIR/ipfixdump.txt" 2>"$DIR/ipfixdump.err"

CTF_LIB_DIR=$CTF_LIB_DIR "$PYTHON" - "$DIR" <<'PY' >"$DIR/verdict.txt" 2>&1
import json, os, sys
sys.path.insert(0, os.environ["CTF_LIB_DIR"])
import ipfix_verify as iv

d = sys.argv[1]
NAMES = {1: "idle", 2: "active", 3: "end", 4: "forced", 5: "resources"}
WANT = {(6, 7001): (3, "TCP closed with FIN"), (6, 7002): (3, "TCP reset"),
        (17, 7003): (1, "UDP expired"), (17, 7004): (4, "UDP deleted (conntrack -D)"),
        (17, 7005): (4, "UDP flushed (conntrack -F)")}

def res(ok, what, *detail):
    print("|".join(["OK" if ok else "NOTOK", what] + [str(x) for x in detail]))

def judge(view, recs):
    got = {}
    for proto, dport, reason in recs:
        got.setdefault((proto, dport), []).append(reason)
    for k, (reason, what) in WANT.items():
        v = got.pop(k, [])
        res(v == [reason], "%s: %s: one record, end reason %d (%s)" % (view, what, reason, NAMES[reason]),
            *(["got %s" % v] if v != [reason] else []))
    res(not got, "%s: no record of any other flow" % view, *["%s: %s" % kv for kv in got.items()])

dump = iv.read_ipfixdump(open(os.path.join(d, "ipfixdump.txt")).read())
res(not dump.errors, "ipfixDump reads the IPFIX file", *dump.errors[:3])
judge("ipfixDump", [(r.get((0, 4)), r.get((0, 11)), r.get((0, 136))) for r in dump.records])
rev = {v: k for k, v in NAMES.items()}
lines = [json.loads(l) for l in open(os.path.join(d, "export.json"))]
judge("JSON", [(o["proto"], o["dport"], rev.get(o["end_reason"], o["end_reason"]))
               for o in lines if "flow_id" in o])
PY
ctf_report_score <"$DIR/verdict.txt"
ctf_done
