#!/bin/bash
# nat_record.sh - translated connections carry their post-NAT addresses and
# ports (IPFIX 225-228, 281/282; JSON post_nat_*).
#
# In fresh namespaces (lib.sh) the router translates, by destination port:
#   20000  nothing (plain forwarding)
#   20001  SNAT to 198.19.0.10, ports 40000-40999
#   20002  masquerade (the router's 198.19.0.1), ports 41000-41999
#   20003  DNAT: 198.19.0.50 -> 198.19.0.2:30003
#   20004  NAT66 SNAT to [2001:db8:19::1], ports 42000-42999
#   20005  NAT66 DNAT: [2001:db8:19::50] -> [2001:db8:19::2]:30005
# The client makes N UDP flows of each kind; before they are flushed, the
# router's own table (conntrack -L) is taken as the truth of each flow's
# translation.  ctflowd exports to nfcapd (UDP), to an IPFIX file and to a
# JSON file.  Then, per flow and in each of nfdump (xsrcip/xsrcport/
# xdstip/xdstport), ipfixDump and the JSON lines: the post-NAT source,
# destination and ports are the reply tuple turned around, they follow the
# rule (address, port range), and flows without NAT carry none of them.
# nfdump 1.7.1 does not keep IPv6 post-NAT addresses (it reads 281/282 into
# nothing): for NAT66 it judges the ports, ipfixDump and JSON the rest.
#
# CTF_NAT_COLLECTOR_FORMAT (ipfix) sets the format of the UDP export, so
# that nfdump judges NetFlow v9's NAT fields (netflow9) the same way.
#
# Environment: see lib.sh.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ctf_require_root
ctf_require_cmd "$CTFLOWD" "$PYTHON" nfcapd nfdump ipfixDump

N=20 PKTS=2 LEN=40 PORT=$((20000 + $$ % 20000))
SNAT_IP=198.19.0.10 DNAT_IP=198.19.0.50 DNAT6_IP=2001:db8:19::50

ctf_setup
DIR=$CTF_WORK/nat
mkdir -p "$DIR"
CONF=$DIR/ctflowd.conf LOG=$DIR/ctflowd.log

ctf_nsx "$NS_RTR" nft -f - <<EOF || ctf_bail "router NAT ruleset"
table ip ctfnat {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr $DNAT_IP udp dport 20003 dnat to $SRV_IP:30003
	}
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		udp dport 20001 snat to $SNAT_IP:40000-40999
		udp dport 20002 masquerade to :41000-41999
	}
}
table ip6 ctfnat6 {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		ip6 daddr $DNAT6_IP udp dport 20005 dnat to [$SRV_IP6]:30005
	}
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		udp dport 20004 snat to [$RTR_SRV_IP6]:42000-42999
	}
}
EOF

ctf_start_nfcapd "$DIR/nf" "$PORT"; NFCAPD=$CTF_LAST_PID
ctf_ctflowd_conf "$CONF"
ctf_conf_udp_and_file "$CONF" "$PORT" "$DIR/export.ipfix"
# the first format line is the UDP export's
sed -i "0,/^format = ipfix$/s//format = ${CTF_NAT_COLLECTOR_FORMAT:-ipfix}/" "$CONF"
ctf_conf_json_file "$CONF" json "$DIR/export.json"
ctf_start_ctflowd "$CONF" "$LOG" || ctf_bail "ctflowd did not start"
PID=$CTF_LAST_PID
ctf_ok "ctflowd runs with UDP, IPFIX file and JSON file exports"

gen() {   # FAMILY DST DPORT SPORT
	local out
	out=$(ctf_nsx "$NS_CLI" "$FLOWGEN" "$1" -d "$2" -n $N -P $PKTS -l $LEN -p "$3" -S "$4" 2>&1) ||
		ctf_diag "flowgen $1 $2:$3: $out"
}
gen udp $SRV_IP 20000 1100
gen udp $SRV_IP 20001 1200
gen udp $SRV_IP 20002 1300
gen udp $DNAT_IP 20003 1400
gen udp6 $SRV_IP6 20004 31000
gen udp6 $DNAT6_IP 20005 32000

# the truth: what the router's table says about each flow's translation
{ ctf_nsx "$NS_RTR" conntrack -L -f ipv4 -p udp; ctf_nsx "$NS_RTR" conntrack -L -f ipv6 -p udp; } \
	>"$DIR/conntrack.txt" 2>/dev/null
ctf_is "$(grep -c 'dport=2000[0-5] ' "$DIR/conntrack.txt")" $((6 * N)) \
	"router table holds the $((6 * N)) flows of the workload"

ctf_ct_flush
ctf_settle "$PID"
ctf_stop_clean "$PID" ctflowd "$LOG"
sleep 0.5   # the last datagrams reach nfcapd
ctf_stop "$NFCAPD"
nfdump -R "$DIR/nf" -q -N -6 -o "fmt:%pr %sa %sp %da %dp %xsa %xsp %xda %xdp" \
	>"$DIR/nfdump.txt" 2>"$DIR/nfdump.err"
TZ=UTC ipfixDump --in "$DIR/export.ipfix" >"$DIR/ipfixdump.txt" 2>"$DIR/ipfixdump.err"

CTF_LIB_DIR=$CTF_LIB_DIR "$PYTHON" - "$DIR" $N <<'PY' >"$DIR/verdict.txt" 2>&1
import ipaddress, json, os, sys
sys.path.insert(0, os.environ["CTF_LIB_DIR"])
import ipfix_verify as iv

d, n = sys.argv[1], int(sys.argv[2])

def res(ok, what, *detail):
    print("|".join(["OK" if ok else "NOTOK", what] + [str(x) for x in detail]))

def a(x):
    return str(ipaddress.ip_address(x))

# class: dport -> (name, rule the translation must follow, or None)
def in_range(lo, hi):
    return lambda p: lo <= p <= hi
CLASSES = {
    20000: ("no NAT", None),
    20001: ("SNAT", dict(src="198.19.0.10", sport=in_range(40000, 40999))),
    20002: ("masquerade", dict(src="198.19.0.1", sport=in_range(41000, 41999))),
    20003: ("DNAT", dict(dst="198.19.0.2", dport=in_range(30003, 30003))),
    20004: ("NAT66 SNAT", dict(src="2001:db8:19::1", sport=in_range(42000, 42999))),
    20005: ("NAT66 DNAT", dict(dst="2001:db8:19::2", dport=in_range(30005, 30005))),
}

# conntrack -L: the first src/dst/sport/dport are the original tuple, the
# second the reply tuple; post-NAT is the reply turned around
truth = {}
for line in open(os.path.join(d, "conntrack.txt")):
    kv = [w.split("=", 1) for w in line.split() if "=" in w]
    vals = {}
    for k, v in kv:
        vals.setdefault(k, []).append(v)
    if len(vals.get("src", [])) != 2:
        continue
    key = (a(vals["src"][0]), int(vals["sport"][0]), a(vals["dst"][0]), int(vals["dport"][0]))
    if key[3] not in CLASSES:
        continue
    post = (a(vals["dst"][1]), int(vals["dport"][1]), a(vals["src"][1]), int(vals["sport"][1]))
    truth[key] = None if post == key else post

for dport, (name, rule) in CLASSES.items():
    keys = [k for k in truth if k[3] == dport]
    bad = []
    for k in keys:
        p = truth[k]
        if rule is None:
            if p is not None:
                bad.append("%s translated to %s" % (k, p))
            continue
        if p is None:
            bad.append("%s not translated" % (k,))
            continue
        want = dict(src=k[0], sport=k[1], dst=k[2], dport=k[3])
        got = dict(src=p[0], sport=p[1], dst=p[2], dport=p[3])
        for f in ("src", "dst"):
            if got[f] != rule.get(f, want[f]):
                bad.append("%s: post-NAT %s %s" % (k, f, got[f]))
        for f in ("sport", "dport"):
            if f in rule and not rule[f](got[f]):
                bad.append("%s: post-NAT %s %d" % (k, f, got[f]))
    res(len(keys) == n and not bad, "%s: the router's table has %d/%d flows translated as the rule says"
        % (name, len(keys), n), *bad[:3])

def judge(view, recs, ports_only6=False):
    """recs: (orig key, post tuple or None) per record.  ports_only6: the
    view does not show IPv6 post-NAT addresses (0.0.0.0 in their place)."""
    seen, wrong, other = {}, {}, []
    unshown = 0
    for k, p in recs:
        if k not in truth:
            other.append(k)
            continue
        seen[k] = seen.get(k, 0) + 1
        want = truth[k]
        if ports_only6 and ":" in k[0] and p is not None and want is not None \
                and p[0] == p[2] == "0.0.0.0":
            unshown += 1
            p = (want[0], p[1], want[2], p[3])
        if p != want:
            wrong.setdefault(k[3], []).append("%s: %s, want %s" % (k, p, want))
    if unshown:
        print("# %s shows no IPv6 post-NAT addresses (%d records): their ports are judged"
              % (view, unshown))
    for dport, (name, rule) in CLASSES.items():
        keys = [k for k in truth if k[3] == dport]
        got = [k for k in keys if k in seen]
        dup = sum(seen[k] - 1 for k in got)
        w = wrong.get(dport, [])
        res(len(got) == len(keys) and not dup and not w,
            "%s: %s: %d/%d flows once each, post-NAT fields %s" % (view, name, len(got), len(keys),
            "absent" if rule is None else "= the reply tuple turned around"),
            *(["%d twice" % dup] if dup else []), *(["%d wrong" % len(w)] + w[:3] if w else []))
    res(not other, "%s: no record of any other flow" % view, *other[:3])

# nfdump: %xsa etc. read 0.0.0.0 and 0 when a record has no NAT fields
def nfdump_recs():
    out = []
    for line in open(os.path.join(d, "nfdump.txt")):
        w = line.split()
        if len(w) != 9:
            continue
        k = (a(w[1]), int(w[2]), a(w[3]), int(w[4]))
        p = (a(w[5]), int(w[6]), a(w[7]), int(w[8]))
        out.append((k, None if p == ("0.0.0.0", 0, "0.0.0.0", 0) else p))
    return out

def ipfix_recs(records):
    out = []
    for r in records:
        fam, proto, src, sport, dst, dport = iv.flow_key(r)
        k = (src, sport, dst, dport)
        ps, pd = (225, 226) if fam == 4 else (281, 282)
        if (0, ps) in r:
            out.append((k, (r[(0, ps)], r.get((0, 227)), r.get((0, pd)), r.get((0, 228)))))
        else:
            out.append((k, None))
    return out

def json_recs():
    out = []
    for line in open(os.path.join(d, "export.json")):
        o = json.loads(line)
        if "flow_id" not in o:
            continue
        k = (a(o["src"]), o["sport"], a(o["dst"]), o["dport"])
        if "post_nat_src" in o:
            out.append((k, (a(o["post_nat_src"]), o["post_nat_sport"], a(o["post_nat_dst"]),
                            o["post_nat_dport"])))
        else:
            out.append((k, None))
    return out

# nfdump 1.7.1 keeps the post-NAT ports of IPv6 records but not the
# addresses (281/282): those only ipfixDump and JSON can judge
judge("nfdump", nfdump_recs(), ports_only6=True)
dump = iv.read_ipfixdump(open(os.path.join(d, "ipfixdump.txt")).read())
res(not dump.errors, "ipfixDump reads the IPFIX file", *dump.errors[:3])
judge("ipfixDump", ipfix_recs(dump.records))
judge("JSON", json_recs())
PY
ctf_report_score <"$DIR/verdict.txt"
ctf_done
