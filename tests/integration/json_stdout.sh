#!/bin/bash
# json_stdout.sh - JSON lines on standard output.
#
# In fresh namespaces (lib.sh) the router runs ctflowd with a single export,
#   [export out] format = json, transport = stdout
# its stdout going to a file and its log (stderr) to another.  The client
# makes 1,000 IPv4 UDP flows and 200 IPv6 UDP flows (2 packets each, nothing
# back), conntrack -F ends them, and once ctflowd is idle it gets SIGTERM.
#
# flush_interval is 1h, so the last, partly filled batch of lines can only
# have left on SIGTERM: the test shows that stopping writes out everything
# held.  Then every flow must be on stdout as exactly one line that
# json.loads() reads, with its addresses, ports, protocol, exact counters in
# both directions, start <= end within the run, family ipv6 and 2001:db8::
# addresses for the IPv6 flows; and stdout must hold nothing else (no log
# text, no partial line).
#
# Environment: see lib.sh.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ctf_require_root
ctf_require_cmd "$CTFLOWD" "$PYTHON"

N4=1000 N6=200
PKTS=2 LEN=50
DPORT4=20000 SPORT4=1024
DPORT6=21000 SPORT6=30000
BYTES4=$((PKTS * (28 + LEN)))
BYTES6=$((PKTS * (48 + LEN)))

T_BEGIN=$(ctf_now)
ctf_setup
DIR=$CTF_WORK/stdout
mkdir -p "$DIR"
CONF=$DIR/ctflowd.conf OUT=$DIR/stdout.json ERR=$DIR/stderr.log

ctf_ctflowd_conf "$CONF"
cat >>"$CONF" <<EOF

[export out]
format = json
transport = stdout
flush_interval = 1h
EOF

# lib.sh's ctf_spawn sends stdout and stderr to one file; here they must stay
# apart.  Same tracking, so the EXIT trap still stops it.
ip netns exec "$NS_RTR" "$CTFLOWD" -f -c "$CONF" </dev/null >"$OUT" 2>"$ERR" &
PID=$!
CTF_PIDS+=("$PID")
if ctf_wait_ct_listener "$PID" 10; then
	ctf_ok "ctflowd starts with stdout export and listens for DESTROY events"
else
	ctf_diag_file "$ERR" 30
	ctf_bail "ctflowd did not start (config $CONF)"
fi

nf0=$(ctf_newflows); udp0=$(ctf_srv_udp_pkts)
W_T0=$(ctf_now)
gen4=$(ctf_nsx "$NS_CLI" "$FLOWGEN" udp -d $SRV_IP -n $N4 -P $PKTS -l $LEN -p $DPORT4 -S $SPORT4 2>&1) ||
	ctf_diag "flowgen udp: $gen4"
gen6=$(ctf_nsx "$NS_CLI" "$FLOWGEN" udp6 -d $SRV_IP6 -n $N6 -P $PKTS -l $LEN -p $DPORT6 -S $SPORT6 2>&1) ||
	ctf_diag "flowgen udp6: $gen6"
W_T1=$(ctf_now)
created=$(($(ctf_newflows) - nf0)) udp=$(($(ctf_srv_udp_pkts) - udp0))
ctf_is "$created/$udp" "$((N4 + N6))/$(((N4 + N6) * PKTS))" \
	"workload: router created $((N4 + N6)) entries, every packet reached the server (entries/packets)"

ctf_ct_flush
ctf_wait_idle "$PID" 1.5 60 || ctf_diag "ctflowd not idle after 60 s (or gone)"
before=$(wc -l <"$OUT")
ctf_diag "before SIGTERM: $before lines on stdout (the rest waits for the 1h flush_interval or the stop)"
T_TERM=$(ctf_now)
ctf_stop "$PID" 20
if [ "$CTF_STOP_KILLED" = 0 ] && [ "$CTF_STOP_STATUS" = 0 ]; then
	ctf_ok "ctflowd exits 0 on SIGTERM ($(ctf_elapsed "$T_TERM") s)"
else
	ctf_not_ok "ctflowd exits 0 on SIGTERM" "exit status $CTF_STOP_STATUS, needed SIGKILL: $CTF_STOP_KILLED"
	ctf_diag_file "$ERR" 30
fi
grep ' final: ' "$ERR" | sed 's/^[^]]*\] /# /'
grep -E 'warning|critical' "$ERR" | head -5 | sed 's/^/# ctflowd log: /'
WINDOW=$(awk -v a="$W_T1" -v b="$(ctf_now)" 'BEGIN { printf "%d", b - a + 2 }')

# The judge: one "OK|what" or "NOTOK|what|detail..." line per check.
"$PYTHON" - "$OUT" "$W_T0" "$W_T1" "$WINDOW" <<EOF >"$DIR/verdict.txt" 2>&1
import calendar, json, sys, time
from collections import Counter

path, t0, t1, window = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
classes = {
    "ipv4": dict(n=$N4, src="$CLI_IP", dst="$SRV_IP", dport=$DPORT4, sport=$SPORT4,
                 counters=($PKTS, $BYTES4, 0, 0)),
    "ipv6": dict(n=$N6, src="$CLI_IP6", dst="$SRV_IP6", dport=$DPORT6, sport=$SPORT6,
                 counters=($PKTS, $BYTES6, 0, 0)),
}
FIELDS = ("family", "src", "dst", "sport", "dport", "proto", "packets", "bytes",
          "reply_packets", "reply_bytes", "start", "end")

def res(ok, what, *detail):
    print("|".join(["OK" if ok else "NOTOK", what] + [str(d) for d in detail]))

def ns_of(text):
    """'YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ' -> ns since the epoch"""
    base, frac = text.rstrip("Z").split(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) * 10**9 + int(frac.ljust(9, "0"))

raw = open(path, "rb").read()
res(raw.endswith(b"\n") or not raw, "stdout ends with a complete line")
lines = raw.decode("utf-8", "replace").splitlines()
want = sum(c["n"] for c in classes.values())
res(len(lines) == want, "stdout holds exactly %d lines (%d)" % (want, len(lines)))

bad, missing_fields, other = [], Counter(), []
seen = {k: Counter() for k in classes}
wrong = {k: [] for k in classes}
time_bad, ids = [], Counter()
lo, hi_s, hi_e = (t0 - 2) * 1e9, (t1 + 2) * 1e9, (t1 + window) * 1e9
for n, line in enumerate(lines, 1):
    try:
        o = json.loads(line)
    except ValueError as e:
        bad.append("line %d: %s: %.80s" % (n, e, line))
        continue
    if not isinstance(o, dict):
        bad.append("line %d: not an object" % n)
        continue
    absent = [f for f in FIELDS if f not in o]
    if absent:
        missing_fields.update(absent)
        continue
    ids[o.get("flow_id")] += 1
    c = classes.get(o["family"])
    if c is None or o["proto"] != 17 or o["src"] != c["src"] or o["dst"] != c["dst"] \
            or o["dport"] != c["dport"] or not c["sport"] <= o["sport"] < c["sport"] + c["n"]:
        other.append((o["family"], o["proto"], o["src"], o["sport"], o["dst"], o["dport"]))
        continue
    seen[o["family"]][o["sport"]] += 1
    got = (o["packets"], o["bytes"], o["reply_packets"], o["reply_bytes"])
    if got != c["counters"]:
        wrong[o["family"]].append("sport %d: %s" % (o["sport"], got))
    try:
        s, e = ns_of(o["start"]), ns_of(o["end"])
        if s > e or not lo <= s <= hi_s or not lo <= e <= hi_e \
                or o.get("start_ns", s) != s or o.get("end_ns", e) != e:
            time_bad.append("line %d: start %s end %s" % (n, o["start"], o["end"]))
    except (ValueError, AttributeError, TypeError) as ex:
        time_bad.append("line %d: unreadable time (%s): %s %s" % (n, ex, o["start"], o["end"]))

res(not bad, "every line is one JSON object (json.loads)", *(["%d unreadable, e.g. %s" % (len(bad), "; ".join(bad[:3]))] if bad else []))
res(not missing_fields, "every object has %s" % ", ".join(FIELDS),
    *(["missing: %s" % dict(missing_fields)] if missing_fields else []))
for fam, c in classes.items():
    got = seen[fam]
    dups = sum(v - 1 for v in got.values())
    miss = sorted(set(range(c["sport"], c["sport"] + c["n"])) - set(got))
    detail = []
    if miss:
        detail.append("%d flows missing, sports e.g. %s" % (len(miss), miss[:10]))
    if dups:
        detail.append("%d flows twice" % dups)
    if wrong[fam]:
        detail.append("%d wrong counters (pkts, bytes, rpkts, rbytes), e.g. %s" % (len(wrong[fam]), "; ".join(wrong[fam][:3])))
    res(not detail, "%s: %d/%d flows %s -> %s dport %d once each, counters exact %s"
        % (fam, len(got), c["n"], c["src"], c["dst"], c["dport"], c["counters"]), *detail)
res(not other, "no line for any other flow", *(["%d others, e.g. %s" % (len(other), other[:3])] if other else []))
res(not time_bad, "start <= end, both within the run window, start/start_ns and end/end_ns agree",
    *(["%d bad, e.g. %s" % (len(time_bad), "; ".join(time_bad[:3]))] if time_bad else []))
idups = sum(v - 1 for v in ids.values() if v > 1)
res(not idups and None not in ids, "flow_id present and unique", *(["%d repeated" % idups] if idups else []))
EOF
while IFS= read -r line; do
	case $line in
	OK\|*) ctf_ok "${line#OK|}" ;;
	NOTOK\|*) IFS='|' read -r -a f <<<"${line#NOTOK|}"; ctf_not_ok "${f[@]}" ;;
	*) ctf_diag "judge: $line" ;;
	esac
done <"$DIR/verdict.txt"

ctf_diag "total $(ctf_elapsed "$T_BEGIN") s"
ctf_done
