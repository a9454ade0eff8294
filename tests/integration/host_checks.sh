#!/bin/bash
# host_checks.sh - ctflowd's start-up checks of the watched namespace.
#
# Conntrack's DESTROY events only carry counters and times when
# net.netfilter.nf_conntrack_acct and nf_conntrack_timestamp are 1, and with
# nf_conntrack_events=2 ("auto") entries created while no listener was
# subscribed end silently.  So, in fresh namespaces (lib.sh):
#
#   (a) manage_sysctls = no and one of them wrong in the router (acct=0,
#       timestamp=0, events=2): ctflowd must refuse to start, exit 1, and say
#       on stderr which sysctl, its value and why; the value stays as it was
#   (b) manage_sysctls = yes, given explicitly and by default: with all three
#       wrong ctflowd sets them to 1 (read back), logs each change, and the
#       flows that follow are exported with their counters
#   (c) [source] netns = <router>: ctflowd runs in the client namespace (whose
#       own conntrack sysctls are left wrong, with manage_sysctls = no, so a
#       check of the wrong namespace would refuse to start) and must watch
#       the router: 500 flows through the router, flushed there, all appear
#       in its JSON with exact counters.  A namespace that does not exist
#       makes it exit 1 naming it.
#
# ctflowd never runs in the namespace the test was started from.
#
# Environment: see lib.sh.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ctf_require_root
ctf_require_cmd "$CTFLOWD" "$PYTHON" timeout

PKTS=2 LEN=50 SPORT=1024
UDP_FWD_BYTES=$((PKTS * (28 + LEN)))
SYSCTLS="nf_conntrack_acct nf_conntrack_timestamp nf_conntrack_events"

T_BEGIN=$(ctf_now)
ctf_setup
DIR=$CTF_WORK/host
mkdir -p "$DIR"

# ------------------------------------------------------------------ helpers

sysctl_get() { ctf_nsx "$1" cat "/proc/sys/net/netfilter/$2" 2>/dev/null; }
sysctl_set() { ctf_nsx "$1" sysctl -qw "net.netfilter.$2=$3"; }
# the three values in a namespace, e.g. "1 1 1"
sysctls_of() { local s v=(); for s in $SYSCTLS; do v+=("$(sysctl_get "$1" $s)"); done; echo "${v[*]}"; }
router_good() { local s; for s in $SYSCTLS; do sysctl_set "$NS_RTR" $s 1; done; }

# conf FILE NAME [SOURCE_LINE...]: the harness's [daemon] and [source], extra
# [source] lines, and one JSON file export to $DIR/NAME.json.  Each daemon
# gets a state directory of its own, so that none can inherit anything (an
# event socket handed over at a stop) from the one before: (c) must prove
# that ctflowd opened its socket in the namespace it was told to watch.
conf() {
	local f=$1 name=$2 l; shift 2
	ctf_ctflowd_conf "$f"
	sed -i "s|^state_directory = .*|state_directory = $DIR/state-$name|" "$f"
	grep -qx "state_directory = $DIR/state-$name" "$f" || ctf_bail "cannot set the state directory in $f"
	for l in "$@"; do printf '%s\n' "$l" >>"$f"; done
	cat >>"$f" <<-EOF

	[export json]
	format = json
	transport = file
	path = $DIR/$name.json
	flush_interval = 200ms
	EOF
}

# run_fg NS CONF OUT ERR: ctflowd in the foreground in NS, bounded by a
# timeout so that a daemon that does not refuse cannot hang the test.
# Sets RC (124 when it had to be stopped).
run_fg() {
	timeout -s KILL 15 ip netns exec "$1" "$CTFLOWD" -f -c "$2" </dev/null >"$3" 2>"$4"
	RC=$?
}

# gen_flows N DPORT: N two-packet UDP flows client -> server through the
# router; 1 (with a diagnostic) unless the router saw exactly those
gen_flows() {
	local n=$1 dport=$2 nf0 out created
	nf0=$(ctf_newflows)
	out=$(ctf_nsx "$NS_CLI" "$FLOWGEN" udp -d $SRV_IP -n "$n" -P $PKTS -l $LEN -p "$dport" \
		-S $SPORT 2>&1) || { ctf_diag "flowgen: $out"; return 1; }
	created=$(($(ctf_newflows) - nf0))
	[ "$created" = "$n" ] || { ctf_diag "router created $created entries, want $n"; return 1; }
}

# json_check FILE N DPORT: FILE holds exactly N lines, the N flows of
# gen_flows N DPORT, once each, with exact counters and times.  Prints a
# summary; non-zero when anything is off.
json_check() {
	"$PYTHON" - "$1" "$2" "$3" "$SPORT" "$CLI_IP" "$SRV_IP" "$PKTS" "$UDP_FWD_BYTES" <<-'PY'
	import json, sys
	path, n, dport, sport, src, dst, pkts, nbytes = sys.argv[1:]
	n, dport, sport, pkts, nbytes = int(n), int(dport), int(sport), int(pkts), int(nbytes)
	try:
	    lines = open(path).read().splitlines()
	except OSError as e:
	    print("no JSON file: %s" % e); sys.exit(1)
	bad = wrong = other = times = 0
	seen = {}
	for line in lines:
	    try:
	        o = json.loads(line)
	        k = (o["proto"], o["src"], o["sport"], o["dst"], o["dport"])
	    except (ValueError, KeyError, TypeError):
	        bad += 1; continue
	    if k[0] != 17 or k[1] != src or k[3] != dst or k[4] != dport or not sport <= k[2] < sport + n:
	        other += 1; continue
	    seen[k] = seen.get(k, 0) + 1
	    if (o.get("packets"), o.get("bytes"), o.get("reply_packets"), o.get("reply_bytes")) != (pkts, nbytes, 0, 0):
	        wrong += 1
	    s, e = o.get("start_ns"), o.get("end_ns")
	    if not isinstance(s, int) or not isinstance(e, int) or not 0 < s <= e:
	        times += 1
	dups = sum(c - 1 for c in seen.values())
	print("lines=%d distinct=%d/%d duplicates=%d counters_wrong=%d bad_times=%d unreadable=%d other=%d"
	      % (len(lines), len(seen), n, dups, wrong, times, bad, other))
	sys.exit(0 if len(lines) == n and len(seen) == n and not (dups or wrong or times or bad or other) else 1)
	PY
}

# ------------------------------------------------------------------ (a) refuse

# refuse NAME VALUE WHY_RE: with NAME=VALUE in the router (the other two at 1)
# and manage_sysctls = no, ctflowd exits 1 naming NAME, VALUE and why.
refuse() {
	local name=$1 value=$2 why=$3 c=$DIR/refuse-$1.conf out=$DIR/refuse-$1.out err=$DIR/refuse-$1.err
	router_good
	sysctl_set "$NS_RTR" "$name" "$value" || ctf_bail "cannot set $name=$value in the router"
	conf "$c" "refuse-$name" "manage_sysctls = no"
	run_fg "$NS_RTR" "$c" "$out" "$err"
	local msg
	msg=$(grep -F "$name" "$err" | head -1)
	if [ "$RC" = 1 ] && [ -n "$msg" ] &&
		printf '%s\n' "$msg" | grep -Eq "$name[^0-9]{0,20}\\b$value\\b" &&
		printf '%s\n' "$msg" | grep -Eqi "$why"; then
		ctf_ok "(a) $name=$value, manage_sysctls = no: refuses to start, exit 1, names it, its value and why"
		ctf_diag "stderr: ${msg#*ctflowd\[*\] }"
	else
		ctf_not_ok "(a) $name=$value, manage_sysctls = no: refuses to start, exit 1, names it, its value and why" \
			"exit status $RC (124: still running after 15 s, killed)" \
			"a line naming $name, the value $value and matching /$why/: ${msg:-none}"
		ctf_diag_file "$err" 10
	fi
	ctf_is "$(sysctl_get "$NS_RTR" "$name")" "$value" "(a) $name left at $value (manage_sysctls = no)"
}

refuse nf_conntrack_acct 0 'counter'
refuse nf_conntrack_timestamp 0 'start|end time'
refuse nf_conntrack_events 2 'auto|listener|subscri'

# ------------------------------------------------------------------ (b) manage

# manage LABEL SOURCE_LINE...: all three wrong in the router; ctflowd with
# the given [source] lines must set them to 1 and log each change.
manage() {
	local label=$1 c=$DIR/manage-$1.conf log=$DIR/manage-$1.log s msg missing=(); shift
	sysctl_set "$NS_RTR" nf_conntrack_acct 0 && sysctl_set "$NS_RTR" nf_conntrack_timestamp 0 &&
		sysctl_set "$NS_RTR" nf_conntrack_events 2 || ctf_bail "cannot set router sysctls"
	conf "$c" "manage-$label" "$@"
	if ! ctf_start_ctflowd "$c" "$log"; then
		ctf_not_ok "(b) $label: ctflowd starts with acct=0 timestamp=0 events=2 in the router"
		router_good
		return 1
	fi
	MANAGE_PID=$CTF_LAST_PID
	ctf_ok "(b) $label: ctflowd starts with acct=0 timestamp=0 events=2 in the router"
	ctf_is "$(sysctls_of "$NS_RTR")" "1 1 1" "(b) $label: router's $SYSCTLS read back as 1"
	for s in "nf_conntrack_acct 0" "nf_conntrack_timestamp 0" "nf_conntrack_events 2"; do
		set -- $s
		grep -Eq "$1[^0-9]*\\b$2\\b.*\\b1\\b" "$log" || missing+=("$1 (was $2)")
	done
	if [ ${#missing[@]} = 0 ]; then
		ctf_ok "(b) $label: the log names each sysctl it changed, the old value and the new"
		grep -E 'nf_conntrack_(acct|timestamp|events)' "$log" | sed 's/^[^]]*\] /# log: /'
	else
		ctf_not_ok "(b) $label: the log names each sysctl it changed, the old value and the new" \
			"no line for: ${missing[*]}"
		ctf_diag_file "$log" 10
	fi
}

# stop_ok PID LABEL: SIGTERM; ok when it exits 0 without SIGKILL
stop_ok() {
	ctf_stop "$1" 20
	ctf_is "$CTF_STOP_STATUS/$CTF_STOP_KILLED" 0/0 "$2 exits 0 on SIGTERM (exit status/killed)"
}

if manage explicit "manage_sysctls = yes"; then
	# the settings took effect: flows made now carry counters and times
	ok=0; gen_flows 100 20000 || ok=1
	ctf_ct_flush
	ctf_wait_idle "$MANAGE_PID" 1.5 30
	stop_ok "$MANAGE_PID" "(b) explicit: ctflowd"
	if [ $ok = 0 ] && v=$(json_check "$DIR/manage-explicit.json" 100 20000); then
		ctf_ok "(b) explicit: 100 flows made after start exported with exact counters and times ($v)"
	else
		ctf_not_ok "(b) explicit: 100 flows made after start exported with exact counters and times" "$v"
	fi
fi
ctf_ct_flush
if manage default; then
	stop_ok "$MANAGE_PID" "(b) default: ctflowd"
fi
router_good

# ------------------------------------------------------------------ (c) netns

# The client's own conntrack sysctls are made wrong: with manage_sysctls = no
# a daemon that checked its own namespace instead of the router would refuse.
cli_bad=1
sysctl_set "$NS_CLI" nf_conntrack_acct 0 && sysctl_set "$NS_CLI" nf_conntrack_timestamp 0 &&
	sysctl_set "$NS_CLI" nf_conntrack_events 2 || cli_bad=0
[ $cli_bad = 1 ] || ctf_diag "cannot set conntrack sysctls in the client namespace: that part of the proof is missing"
CLI_BEFORE=$(sysctls_of "$NS_CLI")
ctf_diag "client namespace's own $SYSCTLS: $CLI_BEFORE"
C_CONF=$DIR/netns.conf C_LOG=$DIR/netns.log
conf "$C_CONF" netns "netns = $NS_RTR" "manage_sysctls = no"
ctf_ct_flush
ctf_spawn "$NS_CLI" "$C_LOG" "$CTFLOWD" -f -c "$C_CONF"
C_PID=$CTF_LAST_PID
for ((i = 0; i < 100; i++)); do
	ctf_alive "$C_PID" || break
	ctf_ct_listener_inode "$C_PID" "$NS_RTR" >/dev/null 2>/dev/null && break
	sleep 0.1
done
if ctf_ct_listener_inode "$C_PID" "$NS_RTR" >/dev/null 2>/dev/null; then
	ctf_ok "(c) ctflowd in the client namespace with netns = $NS_RTR listens for DESTROY events in the router"
	ok=0; gen_flows 500 21000 || ok=1
	ctf_check "(c) router created 500 entries" [ $ok = 0 ]
	ctf_ct_flush
	ctf_wait_idle "$C_PID" 1.5 30
	stop_ok "$C_PID" "(c) ctflowd (netns)"
	if v=$(json_check "$DIR/netns.json" 500 21000); then
		ctf_ok "(c) all 500 flows of the router in the JSON, counters exact ($v)"
	else
		ctf_not_ok "(c) all 500 flows of the router in the JSON, counters exact" "$v"
		ctf_diag_file "$C_LOG" 15
	fi
else
	ctf_not_ok "(c) ctflowd in the client namespace with netns = $NS_RTR listens for DESTROY events in the router" \
		"alive: $(ctf_alive "$C_PID" && echo yes || echo no)"
	ctf_diag_file "$C_LOG" 20
	ctf_stop "$C_PID"
fi
ctf_is "$(sysctls_of "$NS_CLI")" "$CLI_BEFORE" "(c) client namespace's own sysctls untouched"
ctf_is "$(sysctls_of "$NS_RTR")" "1 1 1" "(c) router's sysctls still 1 1 1"

# a namespace that does not exist
NOSUCH=$CTF_PREFIX-nosuch
conf "$DIR/nosuch.conf" nosuch "netns = $NOSUCH"
run_fg "$NS_CLI" "$DIR/nosuch.conf" "$DIR/nosuch.out" "$DIR/nosuch.err"
msg=$(grep -F "$NOSUCH" "$DIR/nosuch.err" | head -1)
if [ "$RC" = 1 ] && [ -n "$msg" ]; then
	ctf_ok "(c) netns = $NOSUCH (absent): exit 1, stderr names it"
	ctf_diag "stderr: ${msg#*ctflowd\[*\] }"
else
	ctf_not_ok "(c) netns = $NOSUCH (absent): exit 1, stderr names it" "exit status $RC" "line: ${msg:-none}"
	ctf_diag_file "$DIR/nosuch.err" 10
fi
ctf_check "(c) nothing was created under /run/netns for it" [ ! -e "/run/netns/$NOSUCH" ]

ctf_diag "total $(ctf_elapsed "$T_BEGIN") s"
ctf_done
