#!/bin/bash
# uniflow.sh - `uniflow = yes`: a connection as one IPFIX record per
# direction, as nfdump reads them.
#
# In fresh namespaces (lib.sh) the client makes N TCP connections (200 bytes
# each way at most: one segment, which no offload merges) to the
# server (flowgen tcp: each one's packets and bytes per direction come from
# TCP_INFO) and N one-way UDP flows.  ctflowd exports with uniflow = yes to
# nfcapd.  Then nfdump must show, for each TCP connection, one record from
# the client with the client's counts and one from the server (the reply
# tuple's addresses and ports) with the server's counts, neither with
# reverse counters; for each UDP flow only the client's record (the reply
# direction had no packet).
#
# Environment: see lib.sh.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ctf_require_root
ctf_require_cmd "$CTFLOWD" "$PYTHON" nfcapd nfdump

N=20 TCP_PORT=7201 UDP_PORT=7202 PORT=$((20000 + $$ % 20000))
ctf_setup
DIR=$CTF_WORK/uniflow
mkdir -p "$DIR"
CONF=$DIR/ctflowd.conf LOG=$DIR/ctflowd.log

ctf_start_nfcapd "$DIR/nf" "$PORT"; NFCAPD=$CTF_LAST_PID
ctf_ctflowd_conf "$CONF"
cat >>"$CONF" <<EOF

[export collector]
format = ipfix
transport = udp
destination = 127.0.0.1:$PORT
flush_interval = 1s
uniflow = yes
EOF
ctf_start_ctflowd "$CONF" "$LOG" || ctf_bail "ctflowd did not start"
PID=$CTF_LAST_PID
ctf_spawn "$NS_SRV" "$DIR/tcp-server.log" "$FLOWGEN" tcp-server -p $TCP_PORT -t 120
sleep 0.3

out=$(ctf_nsx "$NS_CLI" "$FLOWGEN" tcp -d $SRV_IP -n $N -p $TCP_PORT -l 200 -o "$DIR/tcp.txt" 2>&1) ||
	ctf_diag "flowgen tcp: $out"
out=$(ctf_nsx "$NS_CLI" "$FLOWGEN" udp -d $SRV_IP -n $N -P 3 -l 30 -p $UDP_PORT -S 3000 2>&1) ||
	ctf_diag "flowgen udp: $out"
ctf_is "$(grep -c . "$DIR/tcp.txt")" $N "flowgen made $N TCP connections and wrote their counts"
# the TCP entries end 1 s after their close; the UDP ones wait for the flush
for ((i = 0; i < 300; i++)); do
	[ "$(ctf_nsx "$NS_RTR" conntrack -L -p tcp 2>/dev/null | grep -c .)" = 0 ] && break
	sleep 0.1
done
ctf_ct_flush
ctf_settle "$PID"
ctf_stop_clean "$PID" ctflowd "$LOG"
sleep 0.5   # the last datagrams reach nfcapd
ctf_stop "$NFCAPD"
nfdump -R "$DIR/nf" -q -N -o "fmt:%pr %sa %sp %da %dp %ipkt %ibyt %opkt %obyt" \
	>"$DIR/nfdump.txt" 2>"$DIR/nfdump.err"

"$PYTHON" - "$DIR" $N $TCP_PORT $UDP_PORT <<'PY' >"$DIR/verdict.txt" 2>&1
import sys
from collections import Counter

d, n, tcp_port, udp_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
CLI, SRV = "198.18.0.2", "198.19.0.2"

def res(ok, what, *detail):
    print("|".join(["OK" if ok else "NOTOK", what] + [str(x) for x in detail]))

want = Counter()
for line in open("%s/tcp.txt" % d):
    p, src, sport, dst, dport, fp, fb, rp, rb = line.split()
    want[("TCP", src, int(sport), dst, int(dport), int(fp), int(fb), 0, 0)] += 1
    want[("TCP", dst, int(dport), src, int(sport), int(rp), int(rb), 0, 0)] += 1
for i in range(n):
    want[("UDP", CLI, 3000 + i, SRV, udp_port, 3, 3 * 58, 0, 0)] += 1

got = Counter()
for line in open("%s/nfdump.txt" % d):
    w = line.split()
    if len(w) != 9:
        continue
    proto = {"6": "TCP", "17": "UDP"}.get(w[0], w[0])
    got[(proto, w[1], int(w[2]), w[3], int(w[4])) + tuple(int(x) for x in w[5:])] += 1

def part(c, proto, src):
    return Counter({k: v for k, v in c.items() if k[0] == proto and k[1] == src})

for proto, src, what in (("TCP", CLI, "client -> server records, the client's counts"),
                         ("TCP", SRV, "server -> client records (reply tuple), the server's counts"),
                         ("UDP", CLI, "UDP records, client -> server, 3 packets each"),
                         ("UDP", SRV, "UDP reply records (there must be none: no packet came back)")):
    w, g = part(want, proto, src), part(got, proto, src)
    missing, extra = w - g, g - w
    res(not missing and not extra, "nfdump: %s: %d of %d, no reverse counters" % (what, sum((w & g).values()), sum(w.values())),
        *(["missing e.g. %s" % list(missing)[:2]] if missing else []),
        *(["unexpected e.g. %s" % list(extra)[:2]] if extra else []))
others = got - want - sum((part(got, p, s) for p in ("TCP", "UDP") for s in (CLI, SRV)), Counter())
res(not others, "nfdump: no other record", *list(others)[:3])
PY
ctf_report_score <"$DIR/verdict.txt"
ctf_done
