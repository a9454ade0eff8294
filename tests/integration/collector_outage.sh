#!/bin/bash
# collector_outage.sh - a long TCP collector outage while many flows end:
# the journal holds them, and once the collector is back every one arrives
# with exact counters.
#
# In fresh namespaces (lib.sh) the router runs ctflowd (16 KiB reliable
# netlink source) with one export, IPFIX over TCP to tcp_collector.py on the
# router's 127.0.0.1 (flush_interval 200ms, reconnect 100ms..1s).
#
#   up       the collector runs and ctflowd connects (templates only)
#   outage   the collector stops (SIGTERM: it reads what arrived, then
#            closes); for 20 s nobody listens.  Meanwhile 50,000 two-packet
#            UDP flows end in five batches of 10,000 (dports 20000..20004),
#            each generated and then flushed with conntrack -F, spread over
#            the outage.  ctflowd must keep running and accept all of them
#            into its journal while delivering none
#   back     the collector starts again; ctflowd reconnects and sends what
#            it held.  The test waits until the statistics line counts
#            50,000 records delivered to the export and ctflowd is idle
#
# Judged per connection file by ipfix_verify.py (each file a session of its
# own that decodes completely) and by ipfixDump, then over all files by both
# decoders: each of the 50,000 flows present, counters exact (2 packets, 156
# bytes forward, 0/0 reply), flowId on every record, nothing else.  A flow
# may come twice only if some connection broke off mid-message, and then
# all its records must carry one flowId (the collector can drop the repeat);
# distinct flows never share a flowId.  The number of duplicates is
# reported.
#
# Environment: see lib.sh.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ctf_require_root
ctf_require_cmd ipfixDump "$PYTHON" "$CTFLOWD"
VERIFY=("$PYTHON" "$CTF_LIB_DIR/ipfix_verify.py")
export TZ=UTC   # ipfixDump prints local time; the scorer reads UTC

PORT=4739
BATCHES=5 PER_BATCH=10000
N=$((BATCHES * PER_BATCH))
BATCH_AT=(1 5 9 13 17)   # seconds into the outage at which each batch starts
OUTAGE_S=20
PKTS=2 LEN=50
UDP_FWD_BYTES=$((PKTS * (28 + LEN)))
DPORT0=20000 SPORT=1024

T_BEGIN=$(ctf_now)
ctf_setup
DIR=$CTF_WORK/outage
COLL_DIR=$DIR/collector
mkdir -p "$COLL_DIR"
CONF=$DIR/ctflowd.conf LOG=$DIR/ctflowd.log
export CTF_LIB_DIR

# ------------------------------------------------------------------ helpers

# stat_source LINE FIELD: a counter of the source part of a statistics line
stat_source() { printf '%s\n' "$1" | sed -n "s/^.*: destroy events.*[:,] $2 \([0-9]*\)[,;].*/\1/p"; }

# sleep_until T0 S: until S seconds after the wall clock time T0
sleep_until() {
	while awk -v a="$1" -v b="$(ctf_now)" -v s="$2" 'BEGIN { exit !(b - a < s) }'; do
		sleep 0.1
	done
}

# The scorer: every conn-N.ipfix read by ipfix_verify.py's decoder and, as a
# second opinion, the text ipfixDump printed for it.
SCORE=$DIR/score.py
cat >"$SCORE" <<'PY'
import glob, os, re, sys, time
from collections import Counter, defaultdict
sys.path.insert(0, os.environ["CTF_LIB_DIR"])
import ipfix_verify as iv

# score DIR SRC DST PKTS BYTES T0 DPORT:SPORT:COUNT...
d, src, dst = sys.argv[1:4]
pkts, nbytes, t0 = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
want = set()
for spec in sys.argv[7:]:
    dport, sport, count = (int(x) for x in spec.split(":"))
    want |= {(4, 17, src, s, dst, dport) for s in range(sport, sport + count)}
lo_ms, hi_ms = (t0 - 2) * 1000, (time.time() + 2) * 1000

def res(ok, what, *detail):
    print("|".join(["OK" if ok else "NOTOK", what] + [str(x) for x in detail]))

files = sorted(glob.glob(os.path.join(d, "conn-*.ipfix")),
               key=lambda p: int(re.search(r"conn-(\d+)", p).group(1)))
binary, text = [], []
for p in files:
    with open(p, "rb") as f:
        binary.append((p, iv.Decoder(f.read()).run()))
    with open(p[:-len(".ipfix")] + ".ipfixdump.txt", encoding="utf-8", errors="replace") as f:
        text.append((p, iv.read_ipfixdump(f.read())))
# a stream that ends inside a message: the connection broke mid-message
broken = [os.path.basename(p) for p, dec in binary if dec.truncated]
print("# connections that broke off mid-message: %s" % (", ".join(broken) or "none"))

def judge(label, view):
    groups, other = defaultdict(list), []
    for p, dec in view:
        for r in dec.records:
            k = iv.flow_key(r)
            if k in want:
                groups[k].append((os.path.basename(p), r))
            else:
                other.append(k)
    print("# %s: records per connection: %s" % (label, ", ".join(
        "%s %d" % kv for kv in sorted(Counter(f for v in groups.values() for f, _ in v).items()))))
    missing = want - set(groups)
    wrong, no_id, bad_time = [], 0, 0
    for k, v in groups.items():
        for f, r in v:
            got = (iv.first(r, iv.FWD_PKTS), iv.first(r, iv.FWD_BYTES),
                   iv.first(r, iv.REV_PKTS), iv.first(r, iv.REV_BYTES))
            if got != (pkts, nbytes, 0, 0):
                wrong.append("sport %d dport %d: %s" % (k[3], k[5], got))
            if (0, 148) not in r:
                no_id += 1
            s, e = iv.time_ms(r, "start"), iv.time_ms(r, "end")
            if s is None or e is None or not lo_ms <= s <= e <= hi_ms:
                bad_time += 1
    detail = []
    if missing:
        ex = sorted(missing)[:5]
        detail.append("%d flows missing, e.g. %s" % (len(missing), ["sport %d dport %d" % (k[3], k[5]) for k in ex]))
    if other:
        detail.append("%d records of other flows, e.g. %s" % (len(other), other[:3]))
    if wrong:
        detail.append("%d records with wrong counters (pkts, bytes, rpkts, rbytes), e.g. %s"
                      % (len(wrong), "; ".join(wrong[:3])))
    if no_id:
        detail.append("%d records without flowId" % no_id)
    if bad_time:
        detail.append("%d records with start/end outside the run or end < start" % bad_time)
    res(not detail, "%s: all %d flows decoded (%d), counters exact (%d pkts/%d bytes, reply 0/0), flowId, times, nothing else"
        % (label, len(want), len(groups), pkts, nbytes), *detail)
    # one flowId per flow, and no two flows share one
    owner, shared, split = {}, 0, []
    for k, v in groups.items():
        ids = {r.get((0, 148)) for _, r in v}
        if len(ids) != 1:
            split.append("sport %d dport %d: flowIds %s in %s" % (k[3], k[5], sorted(ids, key=str),
                                                                  ",".join(f for f, _ in v)))
        for i in ids:
            if i is not None and owner.setdefault(i, k) != k:
                shared += 1
    res(not shared, "%s: no flowId on two different flows" % label,
        *(["%d flowIds shared by different flows" % shared] if shared else []))
    dups = {k: v for k, v in groups.items() if len(v) > 1}
    ndup = sum(len(v) - 1 for v in dups.values())
    ex = ["sport %d dport %d in %s" % (k[3], k[5], ",".join(f for f, _ in v))
          for k, v in list(dups.items())[:3]]
    print("# %s: %d duplicate records (%d flows more than once)%s"
          % (label, ndup, len(dups), ", e.g. " + "; ".join(ex) if ex else ""))
    print("DUPS|%s|%d" % (label, ndup))
    res(not split, "%s: every flow seen more than once has one flowId in all its records (%d such flows)"
        % (label, len(dups)), *split[:3])
    res(not ndup or broken, "%s: duplicates only after a connection broke mid-message (%d duplicates)"
        % (label, ndup), *(["connections broken mid-message: none", "e.g. " + "; ".join(ex)]
                           if ndup and not broken else []))

judge("ipfix_verify.py", binary)
judge("ipfixDump", text)
PY

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
reconnect_max = 1s
EOF
ctf_start_ctflowd "$CONF" "$LOG" || ctf_bail "ctflowd did not start (config $CONF)"
CTFLOWD_PID=$CTF_LAST_PID
ctf_ok "ctflowd starts and listens for DESTROY events"
for ((i = 0; i < 50; i++)); do grep -q 'conn 1 opened' "$DIR/collector-1.log" && break; sleep 0.1; done
ctf_check "ctflowd connects to the collector" grep -q 'conn 1 opened' "$DIR/collector-1.log"

# --- outage: the collector stops; all flows end while nobody listens
ctf_stop "$COLL_PID" 5
ctf_is "$CTF_STOP_STATUS/$CTF_STOP_KILLED" 0/0 "collector stops on SIGTERM (exit status/killed)"
T_DOWN=$(ctf_now)
GEN_OK=0
for ((b = 0; b < BATCHES; b++)); do
	sleep_until "$T_DOWN" "${BATCH_AT[$b]}"
	ctf_gen_udp $PER_BATCH $((DPORT0 + b)) $SPORT $PKTS $LEN && GEN_OK=$((GEN_OK + 1))
	ctf_ct_flush
	ctf_diag "batch $((b + 1)) (dport $((DPORT0 + b))) ended at +$(ctf_elapsed "$T_DOWN") s"
done
ctf_is "$GEN_OK" $BATCHES "every batch: the router created $PER_BATCH entries and the server got every packet"
ctf_wait_ct_empty 10 || ctf_diag "router table not empty: $(ctf_ct_count) entries"
sleep_until "$T_DOWN" $OUTAGE_S
st=$(ctf_last_stats "$LOG")
accepted=$(stat_source "$st" accepted)
# the journal took everything even though nothing could be delivered: wait
# a little for DESTROYs the kernel still resends
for ((i = 0; i < 50 && ${accepted:-0} < N; i++)); do
	sleep 0.2; st=$(ctf_last_stats "$LOG"); accepted=$(stat_source "$st" accepted)
done
if ctf_alive "$CTFLOWD_PID"; then
	ctf_ok "ctflowd keeps running through the $(ctf_elapsed "$T_DOWN") s outage"
else
	ctf_not_ok "ctflowd keeps running through the outage"; ctf_diag_file "$LOG" 30
fi
delivered=$(ctf_stat_export "$st" tcp records)
ctf_is "${accepted:-?}/${delivered:-?}" "$N/0" \
	"before the collector is back, ctflowd accepted every flow into its journal and delivered none (accepted/delivered)"
grep -c 'warning: export tcp:' "$LOG" | sed 's/^/# warning lines about export tcp so far: /'

# --- back: the collector restarts; ctflowd sends what it held
ctf_start_tcp_collector "$DIR" "$COLL_DIR" $PORT 2; COLL_PID=$CTF_LAST_PID
T_UP=$(ctf_now)
if ctf_wait_stat_export "$LOG" tcp records $N 90; then
	ctf_ok "ctflowd counts all $N records delivered $(ctf_elapsed "$T_UP") s after the collector is back"
else
	ctf_not_ok "ctflowd counts all $N records delivered after the collector is back" "last statistics: $(ctf_last_stats "$LOG")"
fi
ctf_wait_idle "$CTFLOWD_PID" 1.5 60 || ctf_diag "ctflowd not idle after 60 s (or gone)"
T_DELIVERED=$(ctf_now)

T_TERM=$(ctf_now)
ctf_stop "$CTFLOWD_PID" 20
if [ "$CTF_STOP_KILLED" = 0 ] && [ "$CTF_STOP_STATUS" = 0 ]; then
	ctf_ok "ctflowd exits 0 on SIGTERM ($(ctf_elapsed "$T_TERM") s)"
else
	ctf_not_ok "ctflowd exits 0 on SIGTERM" "exit status $CTF_STOP_STATUS, needed SIGKILL: $CTF_STOP_KILLED"
	ctf_diag_file "$LOG" 30
fi
final=$(grep ' final: ' "$LOG" | tail -1)
ctf_diag "final $(printf '%s\n' "$final" | grep -o 'export tcp: [^;]*')"
ctf_is "$(ctf_stat_export "$final" tcp records)/$(ctf_stat_export "$final" tcp lost)" "$N/0" \
	"final statistics: export tcp delivered $N records, lost 0 (records/lost)"
ctf_stop "$COLL_PID" 5
ctf_is "$CTF_STOP_STATUS/$CTF_STOP_KILLED" 0/0 "restarted collector stops on SIGTERM (exit status/killed)"
cat "$DIR"/collector-*.log | grep -E 'opened|closed' | sed 's/^/# collector: /'

# ------------------------------------------------------------------ judge

mapfile -t FILES < <(ls -v "$COLL_DIR"/conn-*.ipfix 2>/dev/null)
[ ${#FILES[@]} -ge 2 ] || ctf_not_ok "the collector got a connection before and one after the outage" "files: ${FILES[*]:-none}"
for f in "${FILES[@]}"; do
	b=$(basename "$f" .ipfix)
	# each file alone is a complete session: templates first, sequence
	# numbers continuous, flowIds unique (a cut-off last message is allowed:
	# that is a connection that broke)
	out=$("${VERIFY[@]}" "$f" --allow-truncated --require-flowid 2>&1)
	echo "$out" >"${f%.ipfix}.verdict"
	sum=$(printf '%s\n' "$out" | grep '^file=')
	recs=$(ctf_kv data_records "$sum")
	first_set=$("$PYTHON" -c 'import struct,sys; d=open(sys.argv[1],"rb").read(20); print(struct.unpack("!H", d[16:18])[0] if len(d) >= 18 else "none")' "$f")
	if printf '%s\n' "$out" | grep -q '^result=pass' && [ "$first_set" = 2 ] &&
		[ "$(ctf_kv sessions "$sum")" = 1 ]; then
		ctf_ok "ipfix_verify.py: $b decodes on its own: template set first, $recs records (truncated=$(ctf_kv truncated "$sum"))"
	else
		mapfile -t lines < <(printf '%s\n' "$out" | grep -E '^(FAIL|file=)')
		ctf_not_ok "ipfix_verify.py: $b decodes on its own" "first set id: $first_set" "${lines[@]}"
	fi
	ipfixDump --in "$f" >"${f%.ipfix}.ipfixdump.txt" 2>"${f%.ipfix}.ipfixdump.err"
	stats=$(grep '^\*\*\* File Stats' "${f%.ipfix}.ipfixdump.txt")
	drecs=$(printf '%s\n' "$stats" | awk '{ print $6 }')
	if [ -n "$stats" ] && [ "${drecs:-x}" = "$recs" ]; then
		ctf_ok "ipfixDump: $b: ${stats#\*\*\* }"
	else
		ctf_not_ok "ipfixDump reads $b with its records" "ipfixDump: ${stats:-no File Stats line}" \
			"ipfix_verify.py: $recs data records" "$(head -3 "${f%.ipfix}.ipfixdump.err")"
	fi
done

specs=()
for ((b = 0; b < BATCHES; b++)); do specs+=("$((DPORT0 + b)):$SPORT:$PER_BATCH"); done
"$PYTHON" "$SCORE" "$COLL_DIR" $CLI_IP $SRV_IP $PKTS $UDP_FWD_BYTES "$T_BEGIN" "${specs[@]}" \
	>"$DIR/score.txt" 2>&1
ctf_report_score < <(grep -v '^DUPS|' "$DIR/score.txt")
ndup=$(awk -F'|' '$1 == "DUPS" && $2 == "ipfix_verify.py" { print $3 }' "$DIR/score.txt")
ctf_diag "duplicate records after the outage: ${ndup:-?}"

ctf_diag "delivery took $(ctf_elapsed "$T_UP" "$T_DELIVERED") s after the collector came back; total $(ctf_elapsed "$T_BEGIN") s"
ctf_done
