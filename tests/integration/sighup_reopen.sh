#!/bin/bash
# sighup_reopen.sh - SIGHUP makes file exports reopen their files, the way
# logrotate uses it: rename, then SIGHUP; nothing lost, nothing twice.
#
# In fresh namespaces (lib.sh) the router runs ctflowd (supervisor and
# worker) with a 16 KiB reliable source and two file exports, JSON lines and
# IPFIX (with sync = yes: confirmed only once synced), flushed every 200 ms.  Three batches of IPv4 UDP flows follow, each
# ended with `conntrack -F`:
#   A  before the rotation, and written to both files before it;
#   B  flushed right before both files are renamed and SIGHUP is sent to the
#      supervisor: its records are on their way through the daemon while
#      the files change;
#   C  once both exports have created their new files.
# Checks, for each format on its own (IPFIX decoded by ipfixDump):
#   * every flow of A, B and C is in exactly one of the two files (none
#     missing, none twice within a file or across both), counters exact;
#   * A is all in the renamed file, C all in the new one;
#   * the new IPFIX file decodes on its own (it starts with templates);
# and the worker's pid is the same before and after, the supervisor runs
# on, and SIGTERM ends ctflowd with status 0.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ctf_require_root
ctf_require_cmd "$CTFLOWD" ipfixDump "$PYTHON"

N=3000 PKTS=2 LEN=50 SPORT=1024 BASE_DPORT=22000
BYTES=$((PKTS * (28 + LEN)))
BATCHES=(A B C)

ctf_setup
DIR=$CTF_WORK/sighup
mkdir -p "$DIR"
CONF=$DIR/ctflowd.conf LOG=$DIR/ctflowd.log
JSON=$DIR/flows.json IPFIX=$DIR/flows.ipfix

ctf_ctflowd_conf "$CONF"
cat >>"$CONF" <<EOF

[export json]
format = json
path = $JSON
flush_interval = 200ms

[export ipfix]
format = ipfix
path = $IPFIX
flush_interval = 200ms
sync = yes
EOF

ctf_start_ctflowd "$CONF" "$LOG" || ctf_bail "ctflowd did not start (config $CONF)"
SUP=$CTF_LAST_PID
WORKER=$(ctf_worker_of "$SUP") || ctf_bail "no worker under supervisor $SUP"
ctf_ok "ctflowd starts with a JSON and an IPFIX file export (worker $WORKER)"

# batch B: flows of batch B (0, 1, 2) to dport BASE_DPORT + B
batch() {
	ctf_gen_udp $N $((BASE_DPORT + $1)) $SPORT $PKTS $LEN
	local ok=$?
	ctf_ct_flush
	return $ok
}

# delivered N: both exports have delivered N records (statistics line)
delivered() {
	ctf_wait_stat_export "$LOG" json records "$1" 30 &&
		ctf_wait_stat_export "$LOG" ipfix records "$1" 30
}

batch 0
ctf_check "batch A: $N flows made and flushed" [ $? = 0 ]
delivered $N
ctf_check "batch A is in both files before the rotation" [ $? = 0 ]

batch 1
ctf_check "batch B: $N flows made and flushed" [ $? = 0 ]
# at once, while B's records are still on their way
mv "$JSON" "$JSON.1" && mv "$IPFIX" "$IPFIX.1" && kill -HUP "$SUP"
ctf_check "both files renamed and SIGHUP sent to the supervisor" [ $? = 0 ]
ctf_wait_file "$JSON" 10 && ctf_wait_file "$IPFIX" 10
ctf_check "both exports create a new file of the same name" [ $? = 0 ]

batch 2
ctf_check "batch C: $N flows made and flushed" [ $? = 0 ]
delivered $((3 * N))
ctf_check "both exports delivered all $((3 * N)) records" [ $? = 0 ]

ctf_is "$(ctf_worker_of "$SUP")" "$WORKER" "the worker survives SIGHUP (same pid)"
ctf_check "the supervisor runs on" ctf_alive "$SUP"
ctf_is "$(grep -cE 'export (json|ipfix): reopening' "$LOG")" 2 "each file export logs its reopen once"
ctf_stop "$SUP" 30
ctf_is "$CTF_STOP_STATUS/$CTF_STOP_KILLED" 0/0 "ctflowd exits 0 on SIGTERM"
if grep -qE 'killed by signal|restarting it' "$LOG"; then
	ctf_not_ok "no worker died or was restarted" "$(grep -E 'killed by signal|restarting it' "$LOG" | head -3)"
else
	ctf_ok "no worker died or was restarted"
fi

for f in "$IPFIX.1" "$IPFIX"; do
	ipfixDump --in "$f" >"$f.txt" 2>"$f.err"
	grep '^\*\*\* File Stats' "$f.txt" | sed "s|^|# ipfixDump $(basename "$f"): |"
done

# The scorer reads both views of both files and prints OK|/NOTOK| lines.
# (process substitution: the checks must be counted in this shell)
ctf_report_score < <(CTF_LIB_DIR=$CTF_LIB_DIR "$PYTHON" - "$N" "$PKTS" "$BYTES" "$BASE_DPORT" \
	"$SPORT" "$JSON.1" "$JSON" "$IPFIX.1.txt" "$IPFIX.txt" <<'PY'

import json, os, sys
from collections import Counter
sys.path.insert(0, os.environ["CTF_LIB_DIR"])
import ipfix_verify as iv

n, pkts, nbytes, base, sport = (int(x) for x in sys.argv[1:6])
json_old, json_new, ipfix_old, ipfix_new = sys.argv[6:10]
names = "ABC"

def read_json(path):
    out, bad = [], 0
    for line in open(path):
        try:
            o = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if "flow_id" not in o:
            continue
        out.append((o["proto"], o["sport"], o["dport"], o["packets"], o["bytes"]))
    return out, bad

def read_ipfixdump(path):
    d = iv.read_ipfixdump(open(path, encoding="utf-8", errors="replace").read())
    out = []
    for r in d.records:
        k = iv.flow_key(r)
        out.append((k[1], k[3], k[5], iv.first(r, iv.FWD_PKTS), iv.first(r, iv.FWD_BYTES)))
    return out, len(d.errors) + d.no_template_sets

def check(ok, what, detail):
    print("OK|" + what if ok else "NOTOK|%s|%s" % (what, detail))

def score(view, old, new):
    (ro, eo), (rn, en) = old, new
    check(not eo and not en, "%s: both files read cleanly" % view,
          "%d problems in the renamed file, %d in the new one" % (eo, en))
    where = {"old": Counter(), "new": Counter()}
    wrong = 0
    for tag, recs in (("old", ro), ("new", rn)):
        for proto, sp, dp, p, b in recs:
            if proto != 17 or not base <= dp < base + 3:
                continue
            where[tag][(dp, sp)] += 1
            if (p, b) != (pkts, nbytes):
                wrong += 1
    for i, name in enumerate(names):
        dp = base + i
        keys = [(dp, sp) for sp in range(sport, sport + n)]
        o = sum(1 for k in keys if where["old"][k])
        w = sum(1 for k in keys if where["new"][k])
        both = sum(1 for k in keys if where["old"][k] and where["new"][k])
        twice = sum(1 for k in keys if where["old"][k] > 1 or where["new"][k] > 1)
        missing = sum(1 for k in keys if not where["old"][k] and not where["new"][k])
        detail = "renamed file %d, new file %d, in both %d, twice in one file %d, missing %d" % (o, w, both, twice, missing)
        ok = both == 0 and twice == 0 and missing == 0
        print("# %s batch %s: %s" % (view, name, detail))
        check(ok, "%s: batch %s, each of %d flows in exactly one file" % (view, name, n), detail)
        if name == "A":
            check(o == n and w == 0, "%s: batch A (before the rotation) is all in the renamed file" % view, detail)
        if name == "C":
            check(w == n and o == 0, "%s: batch C (after the reopen) is all in the new file" % view, detail)
    check(not wrong, "%s: counters exact (%d pkts/%d bytes)" % (view, pkts, nbytes), "%d records wrong" % wrong)

score("json", read_json(json_old), read_json(json_new))
score("ipfixDump", read_ipfixdump(ipfix_old), read_ipfixdump(ipfix_new))
PY
)
ctf_done
