#!/bin/bash
# filters.sh - a source's filter: matching connections are all exported,
# the others never reach ctflowd, or are dropped and counted in user space
# where the kernel cannot tell, and a filtered-out DESTROY is never held
# back by reliable delivery.
#
# In fresh namespaces (lib.sh) the router puts UDP to port 7303 in conntrack
# zone 7, and marks UDP to port 7302 and ICMP echo requests with ct mark
# 0x10.  Two runs of ctflowd (reliable delivery, an IPFIX file export,
# judged by ipfixDump):
#
#   kernel   filter_protocols = udp, filter_mark = 0x10/0xff, both done by
#            the socket filter; a receive buffer of 4 KiB (8 KiB granted).
#            N UDP flows to 7302 (match), N UDP flows to 7300 (mark 0) and
#            P pings (mark 0x10, but ICMP).  The worker is stopped
#            (SIGSTOP) and the table flushed: reliable delivery parks the
#            matching DESTROYs that do not fit in the buffer, and must park
#            none of the others (the dying list shows it).  Then the worker
#            goes on.  Judged: the N matching flows exported once each and
#            nothing else; ctflowd's counters show N DESTROYs taken and none
#            filtered in user space: the others never reached it.
#   user     filter_addresses = the server's IPv6 /64, filter_zones = 7:
#            the socket filter drops IPv4 (no prefix of that family), the
#            prefix and the zone are matched in user space.  N IPv6 flows to
#            7303 (zone 7, match), N IPv6 flows to 7300 (zone 0) and N IPv4
#            flows to 7303 (zone 7).  Judged: the N matching flows exported,
#            N DESTROYs taken and N filtered in user space (the zone 0 ones);
#            the IPv4 ones never reached ctflowd.
#
# Environment: see lib.sh.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ctf_require_root
ctf_require_cmd "$CTFLOWD" "$PYTHON" ipfixDump ping

N=40 P=5
ctf_setup

# the zone before conntrack sees the packet (raw), the mark after
ctf_nsx "$NS_RTR" nft -f - <<EOF || ctf_bail "router filter ruleset"
table inet ctffilter {
	chain zoning {
		type filter hook prerouting priority raw; policy accept;
		udp dport 7303 ct zone set 7
	}
	chain marking {
		type filter hook forward priority filter; policy accept;
		udp dport 7302 ct mark set 0x10
		icmp type echo-request ct mark set 0x10
	}
}
EOF

# counter NAME LINE: a counter of a statistics line
counter() { printf '%s\n' "$2" | grep -o "$1 [0-9]*" | head -1 | awk '{ print $NF }'; }

# check_counters NAME LOG FILTERED WHAT: ctflowd's final counters say N
# DESTROYs were taken (duplicates aside) and accepted, and FILTERED were
# dropped in user space
check_counters() {
	local stats taken
	stats=$(ctf_last_stats "$2")
	ctf_diag "$1: ${stats#*: }"
	taken=$(( $(counter 'destroy events' "$stats") - $(counter duplicates "$stats") ))
	ctf_is "$taken/$(counter accepted "$stats")" "$N/$N" "$1: $N DESTROYs taken and accepted"
	ctf_is "$(counter 'filtered out in user space' "$stats")" "$3" "$1: $4"
}

# judge NAME DIR WANT_DPORT WANT_FAMILY N: the IPFIX file holds N flows, all
# to WANT_DPORT of family WANT_FAMILY (4 or 6), each source port once
judge() {
	local name=$1 dir=$2
	TZ=UTC ipfixDump --in "$dir/export.ipfix" >"$dir/ipfixdump.txt" 2>"$dir/ipfixdump.err"
	CTF_LIB_DIR=$CTF_LIB_DIR "$PYTHON" - "$dir/ipfixdump.txt" "$3" "$4" "$5" "$name" <<'PY' >"$dir/verdict.txt" 2>&1
import os, sys
sys.path.insert(0, os.environ["CTF_LIB_DIR"])
import ipfix_verify as iv

path, dport, family, n, name = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]

def res(ok, what, *detail):
    print("|".join(["OK" if ok else "NOTOK", "%s: %s" % (name, what)] + [str(x) for x in detail]))

dump = iv.read_ipfixdump(open(path).read())
res(not dump.errors, "ipfixDump reads the IPFIX file", *dump.errors[:3])
recs = [(r.get((0, 11)), 6 if (0, 27) in r else 4, r.get((0, 7))) for r in dump.records]
good = [r for r in recs if r[0] == dport and r[1] == family]
other = sorted(set((r[0], r[1]) for r in recs if r not in good))
ok = len(good) == n and len(set(r[2] for r in good)) == n
res(ok, "%d matching flows (IPv%d to port %d), each once" % (n, family, dport),
    *([] if ok else ["got %d records, %d distinct" % (len(good), len(set(r[2] for r in good)))]))
res(not other, "no flow outside the filter exported", *["port %s IPv%s" % o for o in other])
PY
	ctf_report_score <"$dir/verdict.txt"
}

# ------------------------------------------------------------------ kernel
DIR=$CTF_WORK/kernel
mkdir -p "$DIR"
CONF=$DIR/ctflowd.conf LOG=$DIR/ctflowd.log
CTF_RCVBUF=4096 ctf_ctflowd_conf "$CONF"
cat >>"$CONF" <<EOF
filter_protocols = udp
filter_mark = 0x10/0xff
EOF
ctf_conf_ipfix_file "$CONF" file "$DIR/export.ipfix"
ctf_start_ctflowd "$CONF" "$LOG" || ctf_bail "kernel: ctflowd did not start"
PID=$CTF_LAST_PID
grep -q 'connections filtered in the kernel: protocols udp; mark 0x10/0xff; in user space only: nothing' "$LOG" ||
	ctf_diag "kernel: the log does not say what is filtered where"

ctf_gen_udp $N 7302 2000 2 20 || ctf_not_ok "kernel: workload of $N matching flows"
ctf_gen_udp $N 7300 3000 2 20 || ctf_not_ok "kernel: workload of $N flows of mark 0"
for ((i = 0; i < P; i++)); do
	ctf_nsx "$NS_CLI" ping -q -c1 -W2 $SRV_IP >/dev/null || ctf_diag "ping $i failed"
done
ctf_is "$(ctf_nsx "$NS_RTR" conntrack -L -m 0x10 2>/dev/null | grep -c .)" $((N + P)) \
	"kernel: the router marked $N UDP flows and $P pings 0x10"
WORKER=$(ctf_worker_of "$PID") || ctf_bail "kernel: no worker"
ctf_cont_at_exit "$WORKER"
kill -STOP "$WORKER"
ctf_ct_flush
sleep 0.5
DYING=$(ctf_nsx "$NS_RTR" conntrack -L dying 2>/dev/null)
HELD_MATCH=$(printf '%s\n' "$DYING" | grep -c 'dport=7302 ')
HELD_OTHER=$(printf '%s\n' "$DYING" | grep -c -e 'dport=7300 ' -e '^icmp')
ctf_diag "kernel: with the worker stopped, $HELD_MATCH matching DESTROYs held back"
ctf_check "kernel: reliable delivery holds back matching DESTROYs the stopped reader cannot take ($HELD_MATCH of $N)" \
	test "$HELD_MATCH" -gt 0
ctf_is "$HELD_OTHER" 0 "kernel: no filtered-out DESTROY held back"
ctf_is "$(ctf_ct_count)" "$HELD_MATCH" "kernel: the table holds only what is held back"
kill -CONT "$WORKER"
ctf_settle "$PID"
ctf_stop_clean "$PID" "kernel: ctflowd" "$LOG"
check_counters kernel "$LOG" 0 "none filtered in user space: the $((N + P)) others never reached ctflowd"
judge kernel "$DIR" 7302 4 $N

# ------------------------------------------------------------------ user
DIR=$CTF_WORK/user
mkdir -p "$DIR"
CONF=$DIR/ctflowd.conf LOG=$DIR/ctflowd.log
ctf_ctflowd_conf "$CONF"
cat >>"$CONF" <<EOF
filter_addresses = ${SRV_IP6%::*}::/64
filter_zones = 7
EOF
ctf_conf_ipfix_file "$CONF" file "$DIR/export.ipfix"
ctf_start_ctflowd "$CONF" "$LOG" || ctf_bail "user: ctflowd did not start"
PID=$CTF_LAST_PID
grep -q 'connections filtered in the kernel: IPv6 only; in user space only: addresses .*/64; zones 7' "$LOG" ||
	ctf_diag "user: the log does not say what is filtered where"

for p in 7303 7300; do
	ctf_nsx "$NS_CLI" "$FLOWGEN" udp6 -d $SRV_IP6 -n $N -P 2 -l 20 -p $p -S 6000 >/dev/null 2>&1 ||
		ctf_not_ok "user: IPv6 workload to port $p"
done
ctf_gen_udp $N 7303 2000 2 20 || ctf_not_ok "user: IPv4 workload to port 7303"
ctf_is "$(ctf_nsx "$NS_RTR" conntrack -L -f ipv6 -w 7 2>/dev/null | grep -c .)/$(ctf_nsx "$NS_RTR" conntrack -L -f ipv4 -w 7 2>/dev/null | grep -c .)" \
	"$N/$N" "user: the router put $N IPv6 and $N IPv4 flows in zone 7"
ctf_ct_flush
ctf_settle "$PID"
ctf_stop_clean "$PID" "user: ctflowd" "$LOG"
check_counters user "$LOG" $N "the $N IPv6 flows of zone 0 filtered in user space; the IPv4 ones never reached ctflowd"
judge user "$DIR" 7303 6 $N

ctf_done
