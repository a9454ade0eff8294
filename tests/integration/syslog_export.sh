#!/bin/bash
# syslog_export.sh - format = syslog to rsyslog, over UDP, over TCP while
# rsyslog restarts, and to a local syslog socket.
#
# In fresh namespaces (lib.sh) the router runs three rsyslogd of this test's
# own (own configuration, pid file and work directory; the host's rsyslog is
# never touched), each writing what it parsed with a template of its
# properties (PRI, TIMESTAMP, HOSTNAME, APP-NAME, PROCID, MSGID,
# structured data, MSG):
#   rsyslog-a  imudp on 127.0.0.1:$UDP_PORT
#   rsyslog-b  imtcp on 127.0.0.1:$TCP_PORT (octet counting)
#   rsyslog-c  imuxsock on a socket path in the work directory (as /dev/log
#              would be)
# and ctflowd with three syslog exports of the same records:
#   [export udp]    RFC 5424 over UDP, one message a datagram, syslog_text on
#   [export tcp]    RFC 5424 over TCP, octet counted, facility local3,
#                   severity notice, reconnect 100ms..1s
#   [export local]  transport local, path = the imuxsock socket
#
#   phase A  the foundation's workload: 20,000 IPv4 UDP flows, 500 TCP
#            connections (their counts in both directions from TCP_INFO)
#            and 200 IPv6 UDP flows; conntrack -F; every export delivers all
#   phase B  3,000 IPv4 UDP flows; while ctflowd sends them over TCP,
#            rsyslog-b is stopped (SIGTERM) and started again a second
#            later, the records waiting in the journal meanwhile.  rsyslog-c
#            is stopped before phase B and started with rsyslog-b: the
#            local export finds its socket gone, and must reopen the path
#            and send what the old socket refused
#
# Judged from rsyslog's files: each record a message of its own; UDP and
# local: every flow exactly once (local: a refused datagram is not
# delivered, so what is sent again was never taken); TCP: every flow at least once, and the
# exact repeats no more than the records ctflowd counted as resent after
# the reconnect (what rsyslog's restart can double: messages it took before
# it closed whose TCP acknowledgement ctflowd had not yet read; what it
# cannot double: anything acknowledged before the break, since ctflowd
# resumes from there).  Per message: PRI, HOSTNAME, APP-NAME, MSGID as
# configured, SD-ID ctflowd@32473, exact packets and bytes in both
# directions, start <= end within the run window, the header's TIMESTAMP the
# record's end, the same flowId for a flow in every export, and the
# key=value text equal to the structured data.
#
# Environment: see lib.sh.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ctf_require_root
ctf_require_cmd rsyslogd "$PYTHON" "$CTFLOWD"

UDP_PORT=5514 TCP_PORT=5515
N_A=20000 N6=200 N_TCP=500 N_B=3000
PKTS=2 LEN=50 TCP_LEN=200
A_DPORT=20000 A6_DPORT=41000 B_DPORT=42000 SPORT=1024 SPORT6=30000 TCP_PORT_SRV=5001

T_BEGIN=$(ctf_now)
ctf_setup
DIR=$CTF_WORK/syslog
mkdir -p "$DIR"
CONF=$DIR/ctflowd.conf LOG=$DIR/ctflowd.log SOCK=$DIR/log.sock

# rsyslog_conf NAME INPUTS...: a configuration for rsyslogd NAME writing
# what it parsed to DIR/NAME-remote.txt and DIR/NAME-local.txt
rsyslog_conf() {
	local name=$1; shift
	mkdir -p "$DIR/$name-work"
	cat >"$DIR/$name.conf" <<-EOF
	global(workDirectory="$DIR/$name-work" maxMessageSize="8k")
	template(name="parsed" type="string" string="%pri% %timereported:::date-rfc3339% %hostname% %app-name% %procid% %msgid% %structured-data% |%msg%|\n")
	template(name="tagged" type="string" string="%pri% %programname% %procid% |%msg%|\n")
	ruleset(name="remote") { action(type="omfile" file="$DIR/$name-remote.txt" template="parsed") }
	ruleset(name="local") { action(type="omfile" file="$DIR/$name-local.txt" template="tagged") }
	EOF
	printf '%s\n' "$@" >>"$DIR/$name.conf"
}

# start_rsyslog NAME N: rsyslogd NAME in the router, its N-th start; pid in
# CTF_LAST_PID.  Its output of this start goes to NAME-N-*.txt.
start_rsyslog() {
	local name=$1 n=$2
	sed "s|$DIR/$name-remote.txt|$DIR/$name-$n-remote.txt|; s|$DIR/$name-local.txt|$DIR/$name-$n-local.txt|" \
		"$DIR/$name.conf" >"$DIR/$name-$n.conf"
	ctf_spawn "$NS_RTR" "$DIR/$name-$n.log" rsyslogd -n -f "$DIR/$name-$n.conf" -i "$DIR/$name.pid"
}

wait_tcp_port() {
	local i
	for ((i = 0; i < 100; i++)); do
		[ -n "$(ctf_nsx "$NS_RTR" ss -H -tln "sport = :$1" 2>/dev/null)" ] && return 0
		sleep 0.1
	done
	return 1
}

# lines FILES...: lines in those files together (0 when none exists yet)
lines() { cat "$@" 2>/dev/null | wc -l; }

# wait_lines WANT MAX_S FILES...: until the files hold WANT lines together
wait_lines() {
	local want=$1 max=$2 i; shift 2
	for ((i = 0; i < max * 10; i++)); do
		[ "$(lines "$@")" -ge "$want" ] && return 0
		sleep 0.1
	done
	return 1
}

rsyslog_conf rsyslog-a \
	'module(load="imudp")' \
	"input(type=\"imudp\" address=\"127.0.0.1\" port=\"$UDP_PORT\" ruleset=\"remote\" rcvbufSize=\"32m\")"
rsyslog_conf rsyslog-c \
	'module(load="imuxsock" SysSock.Use="off")' \
	"input(type=\"imuxsock\" socket=\"$SOCK\" ruleset=\"local\" rateLimit.interval=\"0\")"
rsyslog_conf rsyslog-b \
	'module(load="imtcp")' \
	"input(type=\"imtcp\" address=\"127.0.0.1\" port=\"$TCP_PORT\" ruleset=\"remote\")"

start_rsyslog rsyslog-a 1; RSA_PID=$CTF_LAST_PID
start_rsyslog rsyslog-b 1; RSB_PID=$CTF_LAST_PID
start_rsyslog rsyslog-c 1; RSC_PID=$CTF_LAST_PID
if ctf_wait_udp_port "$NS_RTR" $UDP_PORT 10 && ctf_wait_file "$SOCK" 10 && wait_tcp_port $TCP_PORT; then
	ctf_ok "three rsyslogd of the test's own listen (udp $UDP_PORT, tcp $TCP_PORT, $SOCK)"
else
	ctf_diag_file "$DIR/rsyslog-a-1.log"; ctf_diag_file "$DIR/rsyslog-b-1.log"
	ctf_diag_file "$DIR/rsyslog-c-1.log"
	ctf_bail "rsyslogd does not listen"
fi

ctf_ctflowd_conf "$CONF"
cat >>"$CONF" <<EOF

[export udp]
format = syslog
transport = udp
destination = 127.0.0.1:$UDP_PORT
syslog_hostname = ctf-router
syslog_text = yes

[export tcp]
format = syslog
transport = tcp
destination = 127.0.0.1:$TCP_PORT
flush_interval = 100ms
reconnect_min = 100ms
reconnect_max = 1s
syslog_facility = local3
syslog_severity = notice
syslog_hostname = ctf-router

[export local]
format = syslog
transport = local
path = $SOCK
EOF
ctf_spawn "$NS_SRV" "$DIR/tcp-server.log" "$FLOWGEN" tcp-server -p $TCP_PORT_SRV -t 600
ctf_start_ctflowd "$CONF" "$LOG" || ctf_bail "ctflowd did not start (config $CONF)"
CTFLOWD_PID=$CTF_LAST_PID
ctf_ok "ctflowd starts with three syslog exports and listens for DESTROY events"

UDP_OUT=("$DIR"/rsyslog-a-1-remote.txt)

# --- phase A
nf0=$(ctf_newflows); udp0=$(ctf_srv_udp_pkts)
A_T0=$(ctf_now)
out=$(ctf_nsx "$NS_CLI" "$FLOWGEN" udp -d $SRV_IP -n $N_A -P $PKTS -l $LEN -p $A_DPORT -S $SPORT 2>&1) ||
	ctf_diag "flowgen udp: $out"
out=$(ctf_nsx "$NS_CLI" "$FLOWGEN" udp6 -d $SRV_IP6 -n $N6 -P $PKTS -l $LEN -p $A6_DPORT -S $SPORT6 2>&1) ||
	ctf_diag "flowgen udp6: $out"
out=$(ctf_nsx "$NS_CLI" "$FLOWGEN" tcp -d $SRV_IP -n $N_TCP -p $TCP_PORT_SRV -l $TCP_LEN -c 32 \
	-o "$DIR/tcp-flows.txt" 2>&1) || ctf_diag "flowgen tcp: $out"
A_T1=$(ctf_now)
ctf_is "$(($(ctf_newflows) - nf0))/$(($(ctf_srv_udp_pkts) - udp0))/$(grep -c . "$DIR/tcp-flows.txt")" \
	"$((N_A + N6 + N_TCP))/$(((N_A + N6) * PKTS))/$N_TCP" \
	"phase A: router created $((N_A + N6 + N_TCP)) entries, every UDP packet reached the server, $N_TCP TCP connections measured (entries/packets/connections)"
ctf_ct_flush
N_TOTAL_A=$((N_A + N6 + N_TCP))
wait_lines $N_TOTAL_A 20 "$DIR"/rsyslog-b-1-remote.txt
wait_lines $N_TOTAL_A 20 "${UDP_OUT[@]}"
wait_lines $N_TOTAL_A 20 "$DIR"/rsyslog-c-1-local.txt
ctf_is "$(lines "${UDP_OUT[@]}")/$(lines "$DIR"/rsyslog-b-1-remote.txt)/$(lines "$DIR"/rsyslog-c-1-local.txt)" \
	"$N_TOTAL_A/$N_TOTAL_A/$N_TOTAL_A" "phase A: rsyslog wrote $N_TOTAL_A messages from each export (udp/tcp/local)"

# --- phase B: rsyslog-b restarts while ctflowd sends over TCP; rsyslog-c
# is away meanwhile
ctf_stop "$RSC_PID" 10
nf0=$(ctf_newflows); udp0=$(ctf_srv_udp_pkts)
B_T0=$(ctf_now)
out=$(ctf_nsx "$NS_CLI" "$FLOWGEN" udp -d $SRV_IP -n $N_B -P $PKTS -l $LEN -p $B_DPORT -S $SPORT 2>&1) ||
	ctf_diag "flowgen udp: $out"
B_T1=$(ctf_now)
ctf_is "$(($(ctf_newflows) - nf0))/$(($(ctf_srv_udp_pkts) - udp0))" "$N_B/$((N_B * PKTS))" \
	"phase B: router created $N_B entries, every packet reached the server (entries/packets)"
ctf_ct_flush &
FLUSH_PID=$!
# stop rsyslog-b as soon as phase B's first messages reach its file
for ((i = 0; i < 500; i++)); do
	[ "$(lines "$DIR"/rsyslog-b-1-remote.txt)" -gt $N_TOTAL_A ] && break
	sleep 0.01
done
at_stop=$(lines "$DIR"/rsyslog-b-1-remote.txt)
ctf_stop "$RSB_PID" 10
after_stop=$(lines "$DIR"/rsyslog-b-1-remote.txt)
wait "$FLUSH_PID"
ctf_diag "rsyslog-b stopped with $((at_stop - N_TOTAL_A)) of phase B's $N_B messages in its file" \
	"($((after_stop - N_TOTAL_A)) once it had exited)"
sleep 1
start_rsyslog rsyslog-b 2; RSB_PID=$CTF_LAST_PID
start_rsyslog rsyslog-c 2; RSC_PID=$CTF_LAST_PID
wait_tcp_port $TCP_PORT || { ctf_diag_file "$DIR/rsyslog-b-2.log"; ctf_bail "rsyslog-b does not listen again"; }
ctf_ok "rsyslog-b and rsyslog-c restarted"
N_ALL=$((N_TOTAL_A + N_B))
wait_lines $N_ALL 20 "$DIR"/rsyslog-b-*-remote.txt
wait_lines $N_ALL 20 "${UDP_OUT[@]}"
wait_lines $N_ALL 20 "$DIR"/rsyslog-c-*-local.txt
ctf_wait_idle "$CTFLOWD_PID" 1.5 30 || ctf_diag "ctflowd not idle after 30 s (or gone)"

# --- stop
ctf_check_clean_stop "$CTFLOWD_PID" "$LOG"
final=$(grep ' final: ' "$LOG" | tail -1)
for e in udp tcp local; do ctf_diag "final $(printf '%s\n' "$final" | grep -o "export $e: [^;]*")"; done
RESENT=$(ctf_stat_export "$final" tcp resent)
RECONNECTS=$(ctf_stat_export "$final" tcp reconnects)
ctf_is "$(ctf_stat_export "$final" udp lost)/$(ctf_stat_export "$final" tcp lost)/$(ctf_stat_export "$final" local lost)" \
	0/0/0 "final statistics: no record lost by any export (udp/tcp/local)"
if [ -n "$RECONNECTS" ] && [ "$RECONNECTS" -ge 1 ]; then
	ctf_ok "the TCP export reconnected after rsyslog's restart ($RECONNECTS reconnects, $RESENT records resent)"
else
	ctf_not_ok "the TCP export reconnected after rsyslog's restart" "final line: ${final:-none}"
fi
reopened=$(ctf_stat_export "$final" local reconnects)
if [ -n "$reopened" ] && [ "$reopened" -ge 1 ]; then
	ctf_ok "the local export reopened the socket after rsyslog-c's restart ($reopened reconnects)"
else
	ctf_not_ok "the local export reopened the socket after rsyslog-c's restart" "final line: ${final:-none}"
fi
# rsyslog writes its last messages when it stops
ctf_stop "$RSA_PID" 10
ctf_stop "$RSB_PID" 10
ctf_stop "$RSC_PID" 10
grep -h -iE 'error|warning' "$DIR"/rsyslog-*.log 2>/dev/null | head -5 | sed 's/^/# rsyslog: /'
ctf_diag "udp receive buffer errors in the router: $(ctf_udp_rcvbuf_errors)"

# ------------------------------------------------------------------ judge

"$PYTHON" - "$PKTS" "$LEN" "$RESENT" "$DIR/tcp-flows.txt" \
	"A:$A_DPORT:$SPORT:$N_A:4:$A_T0:$A_T1" "A6:$A6_DPORT:$SPORT6:$N6:6:$A_T0:$A_T1" \
	"B:$B_DPORT:$SPORT:$N_B:4:$B_T0:$B_T1" \
	"udp=${UDP_OUT[*]}" "tcp=$(echo "$DIR"/rsyslog-b-*-remote.txt)" "local=$(echo "$DIR"/rsyslog-c-*-local.txt)" \
	>"$DIR/score.txt" 2>&1 <<'PY'
import re, sys, time
from collections import Counter, defaultdict
from datetime import datetime, timezone

pkts, plen, resent = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3] or 0)
# TCP connections: what each end's TCP_INFO said, as L3 packets and bytes
tcp_want = {}
for line in open(sys.argv[4]):
    f = line.split()
    if len(f) == 9:
        tcp_want[(f[1], int(f[2]), f[3], int(f[4]), 6)] = tuple(f[5:9])
phases, files = [], {}
for a in sys.argv[5:]:
    if "=" in a:
        k, v = a.split("=", 1)
        files[k] = v.split()
        continue
    name, dport, sport, n, fam, t0, t1 = a.split(":")
    phases.append(dict(name=name, dport=int(dport), sport=int(sport), n=int(n), fam=int(fam),
                       t0=float(t0), t1=float(t1)))
by_dport = {p["dport"]: p for p in phases}
want_total = sum(p["n"] for p in phases) + len(tcp_want)
now = time.time()

def res(ok, what, *detail):
    print(("OK|%s" % what) if ok else "|".join(["NOTOK", what] + list(detail)))

PARAM = re.compile(r'([^ =\]"]+)="((?:[^"\\]|\\.)*)"')
def parse_sd(sd):
    m = re.match(r'^\[([^ \]]+)((?: [^ =\]"]+="(?:[^"\\]|\\.)*")*)\]$', sd)
    if not m:
        return None, None
    return m.group(1), {k: re.sub(r'\\(["\\\]])', r"\1", v) for k, v in PARAM.findall(m.group(2))}

def ns_of(text):   # RFC 3339 UTC with 9 digits -> ns
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{9})Z$", text)
    if not m:
        return None
    s = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    return int(s.timestamp()) * 10**9 + int(m.group(2))

def read(kind):
    msgs, bad = [], []
    for f in files[kind]:
        try:
            text = open(f, encoding="utf-8", errors="replace").read()
        except OSError:
            continue
        for line in text.splitlines():
            if kind == "local":
                m = re.match(r"^(\d+) (\S+) (\S+) \|(.*)\|$", line)
                if not m:
                    bad.append(line); continue
                pri, app, procid, msg = m.groups()
                msg = msg.lstrip(" ")
                sd_end = msg.find("]")
                sdid, params = parse_sd(msg[:sd_end + 1])
                msgs.append(dict(pri=pri, app=app, procid=procid, sdid=sdid, p=params,
                                 text=msg[sd_end + 1:], raw=line))
            else:
                m = re.match(r"^(\d+) (\S+) (\S+) (\S+) (\S+) (\S+) (\[.*\]) \|(.*)\|$", line)
                if not m:
                    bad.append(line); continue
                pri, ts, host, app, procid, msgid, sd, msg = m.groups()
                sdid, params = parse_sd(sd)
                msgs.append(dict(pri=pri, ts=ts, host=host, app=app, procid=procid, msgid=msgid,
                                 sdid=sdid, p=params, text=msg, raw=line))
    return msgs, bad

tcp_phase = dict(phases[0], name="A-tcp")

def expected(p, sport):
    return p["sport"] <= sport < p["sport"] + p["n"]

flow_ids = {}
for kind, header in (("udp", dict(pri="134", host="ctf-router", msgid="flow")),
                     ("tcp", dict(pri="157", host="ctf-router", msgid="flow")),
                     ("local", dict(pri="134"))):
    msgs, bad = read(kind)
    res(not bad, "%s: every line of rsyslog's output is a parsed syslog message with structured data" % kind,
        *(["%d unreadable, e.g. %.150s" % (len(bad), bad[0])] if bad else []))
    flows, wrong, other, hdr, times, texts, ids = Counter(), [], [], [], 0, [], {}
    raw_of = defaultdict(set)
    for m in msgs:
        p = m["p"]
        if m["sdid"] != "ctflowd@32473" or p is None:
            wrong.append("SD-ID %s" % m["sdid"]); continue
        try:
            k = (p["src"], int(p["sport"]), p["dst"], int(p["dport"]), int(p["proto"]))
        except (KeyError, ValueError):
            wrong.append("no tuple: %.120s" % m["raw"]); continue
        ph = by_dport.get(k[3])
        got = tuple(p.get(f) for f in ("packets", "bytes", "replyPackets", "replyBytes"))
        if k in tcp_want:
            ph = tcp_phase
            want = tcp_want[k]
        elif k[4] == 17 and ph is not None and expected(ph, k[1]):
            l3 = 28 if ph["fam"] == 4 else 48
            want = (str(pkts), str(pkts * (l3 + plen)), "0", "0")
        else:
            other.append(k); continue
        flows[k] += 1
        raw_of[k].add(m["raw"])
        if got != want:
            wrong.append("sport %d dport %d: counters %s, want %s" % (k[1], k[3], got, want))
        if p.get("interim") != "0" or p.get("endReason") not in ("idle", "end", "forced"):
            wrong.append("sport %d: interim %s endReason %s" % (k[1], p.get("interim"), p.get("endReason")))
        s, e = ns_of(p.get("start", "")), ns_of(p.get("end", ""))
        if s is None or e is None or s > e or s < (ph["t0"] - 2) * 1e9 or e > (now + 1) * 1e9:
            times += 1
        elif "ts" in m and m["ts"] != p["end"][:26] + "Z":
            hdr.append("TIMESTAMP %s, end %s" % (m["ts"], p["end"]))
        for f, v in header.items():
            if m[f] != v:
                hdr.append("%s %s, want %s" % (f, m[f], v))
        if m["app"] != "ctflowd" or not m["procid"].isdigit():
            hdr.append("app %s procid %s" % (m["app"], m["procid"]))
        if kind == "udp":
            want_text = " ".join("%s=%s" % kv for kv in p.items())
            if m["text"] != want_text:
                texts.append("%.100s / %.100s" % (m["text"], want_text))
        ids.setdefault(k, set()).add(p.get("flowId"))
    flow_ids[kind] = ids
    detail = []
    for ph in phases:
        got = sum(1 for k in flows if k[3] == ph["dport"] and k[4] == 17)
        if got != ph["n"]:
            detail.append("phase %s: %d/%d flows" % (ph["name"], got, ph["n"]))
    got = sum(1 for k in flows if k in tcp_want)
    if got != len(tcp_want):
        detail.append("TCP: %d/%d connections" % (got, len(tcp_want)))
    res(not detail and len(flows) == want_total,
        "%s: every flow of every phase arrived (%d/%d)" % (kind, len(flows), want_total), *detail)
    dups = sum(c - 1 for c in flows.values())
    differ = sum(1 for k, c in flows.items() if c > 1 and len(raw_of[k]) > 1)
    if kind == "tcp":
        res(dups <= resent and differ == 0,
            "tcp: %d exact repeats, at most the %d records resent after the reconnect" % (dups, resent),
            *(["%d repeats differ in content" % differ] if differ else []))
    else:
        res(dups == 0, "%s: no flow twice (%d repeats)" % (kind, dups))
    res(not wrong and not other, "%s: exact counters (UDP %d packets, reply 0/0; TCP both directions as TCP_INFO says), interim 0, SD-ID ctflowd@32473" % (kind, pkts),
        *(["%d wrong, e.g. %s" % (len(wrong), "; ".join(wrong[:3]))] if wrong else []),
        *(["%d other flows, e.g. %s" % (len(other), other[:3])] if other else []))
    res(times == 0 and not hdr, "%s: start <= end within the run; header as configured%s" %
        (kind, ", TIMESTAMP the record's end" if kind != "local" else ""),
        *(["%d with times out of the window" % times] if times else []),
        *(["%d header mismatches, e.g. %s" % (len(hdr), "; ".join(hdr[:3]))] if hdr else []))
    if kind == "udp":
        res(not texts, "udp: the key=value text says what the structured data says",
            *(["%d differ, e.g. %s" % (len(texts), texts[0])] if texts else []))
# one flowId per flow, the same in every export
mism = [k for k in flow_ids["udp"]
        if len(flow_ids["udp"][k] | flow_ids["tcp"].get(k, set()) | flow_ids["local"].get(k, set())) != 1]
res(not mism, "one flowId per flow, the same in the udp, tcp and local exports",
    *(["%d flows differ, e.g. %s" % (len(mism), mism[:3])] if mism else []))
allids = [next(iter(v)) for v in flow_ids["udp"].values() if len(v) == 1]
res(len(allids) == len(set(allids)), "flowIds are unique across flows")
PY
ctf_report_score <"$DIR/score.txt"

ctf_diag "total $(ctf_elapsed "$T_BEGIN") s"
ctf_done
