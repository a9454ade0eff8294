#!/bin/bash
# nat_events.sh - NAT event logging: a session create when a translated
# connection starts, a delete when it ends, exactly once each.
#
# The router SNATs UDP to dport 20001 and TCP to dport 20011 (to
# 198.19.0.10, ports 40000-49999); UDP to dport 20000 is forwarded
# untranslated.  ctflowd reads destroy,new events
# and exports records = nat-events to nfcapd over UDP (IPFIX, RFC 8158
# NAT44 template) and to a JSON file.  The router's table (conntrack -L),
# taken before the flush, is the truth of each connection's translation.
#
# Round 1: N translated UDP and T translated TCP connections (closed with
#   FIN), M untranslated UDP ones, then a flush.
#   nfdump (its NEL view) and the JSON lines each show exactly one create
#   and one delete per translated connection, with the inside and outside
#   addresses and ports of the table, and nothing for the others.  No
#   create is late.
# Round 2: the same with NEW events lost on purpose: a 4 KiB receive
#   buffer overruns while the connections are made (NEW events are never
#   resent), while reliable delivery still brings every DESTROY.  Every
#   connection still has exactly one create and one delete; the creates
#   whose NEW was lost are marked late in JSON, as many as ctflowd counted.
#
# CTF_NAT_EVENTS_FORMAT=netflow9 runs the same rounds, smaller (300 UDP,
# 50 TCP, 50 untranslated), with NetFlow v9 to nfcapd in place of IPFIX
# and a syslog export over UDP to an rsyslogd of the test's own in the
# router besides: its SADD and SDEL messages are judged as the nfdump
# events are, their protocol must be the table's and their late marks
# JSON's.  tshark captures the v9
# datagrams: it decodes as many natEvent 4 and 5 as nfdump, and finds
# nothing malformed.
#
# Environment: see lib.sh.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ctf_require_root
ctf_require_cmd "$CTFLOWD" "$PYTHON" nfcapd nfdump

N=1000 T=200 M=100 PKTS=2 LEN=40 PORT=$((20000 + $$ % 20000))
SNAT_IP=198.19.0.10
FMT=${CTF_NAT_EVENTS_FORMAT:-ipfix}
case $FMT in
ipfix) ;;
netflow9)
	N=300 T=50 M=50
	ctf_require_cmd rsyslogd tshark
	;;
*) ctf_bail "CTF_NAT_EVENTS_FORMAT: ipfix or netflow9, not '$FMT'" ;;
esac
SYSLOG_PORT=$((PORT + 1))

ctf_setup
ctf_nsx "$NS_RTR" nft -f - <<EOF || ctf_bail "router NAT ruleset"
table ip ctfnat {
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		udp dport 20001 snat to $SNAT_IP:40000-49999
		tcp dport 20011 snat to $SNAT_IP:40000-49999
	}
}
EOF
# the server answers TCP to the SNAT address: the router holds it
ctf_nsx "$NS_RTR" ip addr add $SNAT_IP/32 dev r-srv || ctf_bail "SNAT address on the router"
ctf_spawn "$NS_SRV" "$CTF_WORK/tcp-server.log" "$FLOWGEN" tcp-server -p 20011 -t 120

# round NAME RCVBUF SPORT: one round in a state directory of its own
round() {
	local name=$1 rcvbuf=$2 sport=$3 dir=$CTF_WORK/$1 pid nfcapd rsyslog= tshark= out
	mkdir -p "$dir"
	local conf=$dir/ctflowd.conf log=$dir/ctflowd.log
	CTF_RCVBUF=$rcvbuf ctf_ctflowd_conf "$conf"
	sed -i "s|^state_directory = .*|state_directory = $dir/state|" "$conf"
	mkdir -p "$dir/state"
	cat >>"$conf" <<-EOF
	events = destroy,new

	[export nel]
	format = $FMT
	transport = udp
	destination = 127.0.0.1:$PORT
	flush_interval = 200ms
	records = nat-events

	[export json]
	format = json
	transport = file
	path = $dir/events.json
	flush_interval = 200ms
	records = nat-events
	EOF
	ctf_start_nfcapd "$dir/nf" "$PORT"; nfcapd=$CTF_LAST_PID
	if [ "$FMT" = netflow9 ]; then
		ctf_start_tshark "$dir/cap.pcapng" "$dir/tshark.log" "udp dst port $PORT"
		tshark=$CTF_LAST_PID
		cat >>"$conf" <<-EOF

		[export syslog]
		format = syslog
		transport = udp
		destination = 127.0.0.1:$SYSLOG_PORT
		records = nat-events
		EOF
		mkdir -p "$dir/rsyslog-work"
		cat >"$dir/rsyslog.conf" <<-EOF
		global(workDirectory="$dir/rsyslog-work" maxMessageSize="8k")
		template(name="parsed" type="string" string="%msgid% %structured-data%\n")
		ruleset(name="remote") { action(type="omfile" file="$dir/syslog.txt" template="parsed") }
		module(load="imudp")
		input(type="imudp" address="127.0.0.1" port="$SYSLOG_PORT" ruleset="remote" rcvbufSize="32m")
		EOF
		ctf_spawn "$NS_RTR" "$dir/rsyslog.log" rsyslogd -n -f "$dir/rsyslog.conf" -i "$dir/rsyslog.pid"
		rsyslog=$CTF_LAST_PID
		ctf_wait_udp_port "$NS_RTR" "$SYSLOG_PORT" 10 ||
			{ ctf_diag_file "$dir/rsyslog.log"; ctf_bail "$name: rsyslogd does not listen"; }
	fi
	ctf_start_ctflowd "$conf" "$log" || ctf_bail "$name: ctflowd did not start"
	pid=$CTF_LAST_PID

	out=$(ctf_nsx "$NS_CLI" "$FLOWGEN" udp -d $SRV_IP -n $N -P $PKTS -l $LEN -p 20001 -S "$sport" 2>&1) ||
		ctf_diag "flowgen: $out"
	out=$(ctf_nsx "$NS_CLI" "$FLOWGEN" udp -d $SRV_IP -n $M -P $PKTS -l $LEN -p 20000 -S "$sport" 2>&1) ||
		ctf_diag "flowgen: $out"
	out=$(ctf_nsx "$NS_CLI" "$FLOWGEN" tcp -d $SRV_IP -n $T -p 20011 -l 100 -c 20 2>&1) ||
		ctf_diag "flowgen tcp: $out"
	ctf_nsx "$NS_RTR" conntrack -L -f ipv4 >"$dir/conntrack.txt" 2>/dev/null
	ctf_is "$(grep -Ec 'dport=(20000|20001|20011) ' "$dir/conntrack.txt")" $((N + T + M)) \
		"$name: the router's table holds the $((N + T + M)) connections"
	ctf_ct_flush
	ctf_settle "$pid"
	ctf_stop_clean "$pid" "$name: ctflowd" "$log"
	sleep 0.5   # the last datagrams reach nfcapd (and rsyslogd)
	ctf_stop "$nfcapd"
	[ -z "$rsyslog" ] || ctf_stop "$rsyslog"
	[ -z "$tshark" ] || ctf_stop "$tshark"
	# nfdump 1.7.1 names only natEvent 1 and 2 (ADD, DELETE): its NEL view
	# prints 4 and 5 as UNKNOW, and its raw view the numbers, read here
	nfdump -R "$dir/nf" -N -o raw >"$dir/nel-raw.txt" 2>"$dir/nel.err"
	nfdump -R "$dir/nf" -o nel >"$dir/nel-view.txt" 2>&1
}

# verdict NAME WANT_LATE: per connection of the table, one create and one
# delete in nfdump and in JSON, right addresses; WANT_LATE none or some
verdict() {
	local name=$1 want_late=$2 dir=$CTF_WORK/$1 late_counted
	late_counted=$(sed -n 's/.*NAT creates [0-9]*, late \([0-9]*\),.*/\1/p' "$dir/ctflowd.log" | tail -1)
	"$PYTHON" - "$dir" "$want_late" "${late_counted:-none}" <<'PY' >"$dir/verdict.txt" 2>&1
import ipaddress, json, os, sys

d, want_late, late_counted = sys.argv[1], sys.argv[2], sys.argv[3]

def res(ok, what, *detail):
    print("|".join(["OK" if ok else "NOTOK", what] + [str(x) for x in detail]))

def a(x):
    return str(ipaddress.ip_address(x))

# conntrack -L: the protocol's number second, original tuple first, reply
# second; outside = reply turned around
truth, plain, proto = {}, set(), {}
for line in open(os.path.join(d, "conntrack.txt")):
    v = {}
    for k, x in (w.split("=", 1) for w in line.split() if "=" in w):
        v.setdefault(k, []).append(x)
    if len(v.get("src", [])) != 2 or v["dport"][0] not in ("20000", "20001", "20011"):
        continue
    key = (a(v["src"][0]), int(v["sport"][0]), a(v["dst"][0]), int(v["dport"][0]))
    post = (a(v["dst"][1]), int(v["dport"][1]), a(v["src"][1]), int(v["sport"][1]))
    if post == key:
        plain.add(key)
    else:
        truth[key] = post
        proto[key] = int(line.split()[1])
res(len(truth) > 0 and all(p[0] == "198.19.0.10" and 40000 <= p[1] <= 49999 for p in truth.values()),
    "table: %d translated connections, every one to 198.19.0.10:40000-49999, %d untranslated"
    % (len(truth), len(plain)))

def judge(view, events):
    """events: (kind, inside key, outside tuple, late or None)"""
    seen = {}
    wrong, other = [], []
    for kind, k, p, late in events:
        if k not in truth:
            other.append((kind, k))
            continue
        seen.setdefault(k, []).append(kind)
        if p != truth[k]:
            wrong.append("%s %s: outside %s, want %s" % (kind, k, p, truth[k]))
    bad = ["%s: %s" % (k, seen.get(k)) for k in truth if sorted(seen.get(k, [])) != ["create", "delete"]]
    order = [k for k in seen if seen[k] == ["delete", "create"]]
    res(not bad, "%s: %d/%d connections with exactly one create and one delete"
        % (view, len(truth) - len(bad), len(truth)), *bad[:3])
    res(not order, "%s: every create comes before its delete" % view, *order[:3])
    res(not wrong, "%s: inside and outside addresses and ports are the table's" % view, *wrong[:3])
    res(not other, "%s: no event of an untranslated or unknown connection" % view, *other[:3])

# nfdump -o raw: one block of "name = value" lines per record
NEVT = {4: "create", 5: "delete"}
ev, unknown, blocks, cur = [], [], [], None
for line in open(os.path.join(d, "nel-raw.txt")):
    if line.startswith("Flow Record"):
        cur = {}
        blocks.append(cur)
    elif cur is not None and "=" in line:
        k, v = line.split("=", 1)
        cur[k.strip()] = v.split()[0] if v.split() else ""
for b in blocks:
    kind = NEVT.get(int(b.get("nat event", "-1").rstrip(":")))
    if kind is None:
        unknown.append(b.get("nat event"))
        continue
    ev.append((kind, (a(b["src addr"]), int(b["src port"]), a(b["dst addr"]), int(b["dst port"])),
               (a(b["src xlt ip"]), int(b["src xlt port"]), a(b["dst xlt ip"]), int(b["dst xlt port"])),
               None))
res(not unknown and ev, "nfdump: %d NAT events decoded, each natEvent 4 or 5" % len(ev), *unknown[:3])
judge("nfdump", ev)

ev, late, stray = [], 0, []
for line in open(os.path.join(d, "events.json")):
    j = json.loads(line)
    if "nat_event" not in j:
        stray.append(line[:60])
        continue
    k = (a(j["src"]), j["sport"], a(j["dst"]), j["dport"])
    p = (a(j["post_nat_src"]), j["post_nat_sport"], a(j["post_nat_dst"]), j["post_nat_dport"])
    ev.append((j["nat_event"], k, p, j["late"]))
    if j["late"]:
        late += 1
        if j["nat_event"] != "create":
            stray.append("late %s" % j["nat_event"])
res(not stray, "json: only NAT event lines, late marks on creates only", *stray[:3])
judge("json", ev)
json_late = late

# rsyslog's "MSGID [SD-ID name="value" ...]" lines (netflow9 rounds)
import re
syslog = os.path.join(d, "syslog.txt")
if os.path.exists(os.path.join(d, "rsyslog.conf")):
    ev, late, stray, badproto = [], 0, [], []
    for line in open(syslog) if os.path.exists(syslog) else []:
        msgid, _, sd = line.partition(" ")
        p = {k: re.sub(r"\\(.)", r"\1", v) for k, v in re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', sd)}
        kind = {"SADD": "create", "SDEL": "delete"}.get(msgid)
        if kind is None or p.get("event") != msgid or p.get("late") not in ("0", "1"):
            stray.append(line[:80])
            continue
        k = (a(p["src"]), int(p["sport"]), a(p["dst"]), int(p["dport"]))
        ev.append((kind, k,
                   (a(p["postNatSrc"]), int(p["postNatSport"]), a(p["postNatDst"]), int(p["postNatDport"])),
                   p["late"] == "1"))
        if k in proto and p.get("proto") != str(proto[k]):
            badproto.append("%s %s: proto %s, want %d" % (msgid, k, p.get("proto"), proto[k]))
        if p["late"] == "1":
            late += 1
            if kind != "create":
                stray.append("late " + msgid)
    res(ev and not stray, "syslog: %d SADD/SDEL messages, each with its event in the structured"
        " data, late marks on SADD only" % len(ev), *stray[:3])
    judge("syslog", ev)
    res(not badproto, "syslog: every message's proto is the table's (6 or 17)", *badproto[:3])
    res(late == json_late, "syslog: %d SADD marked late, as many as in JSON (%d)" % (late, json_late))
if want_late == "none":
    res(late == 0, "json: no create is late (%d)" % late)
else:
    res(late > 0 and str(late) == late_counted,
        "json: %d creates late (NEW lost), as many as ctflowd counted (%s)" % (late, late_counted))
print("END")
PY
	local v
	while IFS='|' read -r v what rest; do
		case $v in
		OK) ctf_ok "$name: $what" ;;
		NOTOK) ctf_not_ok "$name: $what" "$rest" ;;
		END) ;;
		*) ctf_diag "$v $what $rest" ;;
		esac
	done <"$dir/verdict.txt"
	# a verdict that broke off judged nothing after the break
	grep -qx END "$dir/verdict.txt" || ctf_not_ok "$name: the verdict ran to its end"
	[ "$FMT" = netflow9 ] || return 0
	local events nf bad
	events=$(tshark -n -r "$dir/cap.pcapng" -d "udp.port==$PORT,cflow" -T fields -e cflow.nat_event \
		2>/dev/null | tr ',' '\n' | grep -cxE '4|5')
	nf=$(grep -c '^ *nat event' "$dir/nel-raw.txt")
	ctf_is "$events/$((events > 0))" "$nf/1" "$name: tshark decodes $events natEvent 4 and 5, as many as nfdump"
	bad=$(tshark -n -r "$dir/cap.pcapng" -d "udp.port==$PORT,cflow" \
		-Y "_ws.malformed || _ws.expert.severity >= \"Warning\"" -T fields -e frame.number 2>/dev/null | grep -c .)
	ctf_is "$bad" 0 "$name: tshark: no malformed packet, no expert warning or error"
}

T0=$(ctf_now)
round intact 8M 10000
verdict intact none
mapfile -t view < <(head -2 "$CTF_WORK/intact/nel-view.txt")
ctf_diag "nfdump -o nel shows:" "${view[@]}"

ctf_check "intact: no overrun of the 8 MiB buffer" grep -q 'final: .*overruns 0 in' "$CTF_WORK/intact/ctflowd.log"

round lost 4096 20000
if grep -q 'overruns [1-9]' "$CTF_WORK/lost/ctflowd.log"; then
	ctf_ok "lost: the 4 KiB buffer overran (NEW events lost)"
else
	ctf_not_ok "lost: the 4 KiB buffer overran (NEW events lost)"
fi
verdict lost some
ctf_diag "both rounds in $(ctf_elapsed "$T0") s"
ctf_done
