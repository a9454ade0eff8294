# lib.sh - shared harness for the ctflowd integration tests (bash; source it).
#
# It builds a three-namespace test bed of its own, starts and tracks every
# process a test needs, and tears all of it down on exit, also on failure or
# interruption:
#
#   $NS_CLI 198.18.0.2 --veth-- 198.18.0.1 [$NS_RTR] 198.19.0.1 --veth-- 198.19.0.2 $NS_SRV
#           2001:db8:18::2       2001:db8:18::1 | 2001:db8:19::1        2001:db8:19::2
#
# The router namespace forwards, runs conntrack (with accounting, timestamps
# and events on) and hosts the daemon and the collectors on its own
# 127.0.0.1.  Namespace names carry the shell's pid, so concurrent runs and
# other test beds on the host (e.g. the shared bench's fa-*) never collide.
# Addresses come from the benchmarking (198.18.0.0/15) and documentation
# (2001:db8::/32) prefixes and exist only inside these namespaces.
#
# Environment: CTFLOWD, FLOWGEN, CTLISTEN (set by meson; otherwise looked for
# in $SRCDIR/build), CTF_KEEP=1 keeps the work directory, CTF_VERBOSE=1 shows
# the logs of failed steps in full.

set -o pipefail

CTF_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRCDIR=${SRCDIR:-$(cd "$CTF_LIB_DIR/../.." && pwd)}
CTFLOWD=${CTFLOWD:-$SRCDIR/build/ctflowd}
FLOWGEN=${FLOWGEN:-$SRCDIR/build/tests/flowgen}
CTLISTEN=${CTLISTEN:-$SRCDIR/build/tests/ctlisten}
NLFORGE=${NLFORGE:-$SRCDIR/build/tests/nlforge}
PYTHON=${PYTHON:-python3}

CTF_PREFIX=ctf-$$
NS_CLI=$CTF_PREFIX-cli
NS_RTR=$CTF_PREFIX-rtr
NS_SRV=$CTF_PREFIX-srv
CLI_IP=198.18.0.2
RTR_CLI_IP=198.18.0.1
RTR_SRV_IP=198.19.0.1
SRV_IP=198.19.0.2
CLI_IP6=2001:db8:18::2
RTR_CLI_IP6=2001:db8:18::1
RTR_SRV_IP6=2001:db8:19::1
SRV_IP6=2001:db8:19::2

# conntrack timeouts in the router: TCP entries end 1 s after the close so a
# test need not wait; UDP entries stay until a test flushes them.
CTF_TCP_CLOSE_TIMEOUT=${CTF_TCP_CLOSE_TIMEOUT:-1}
CTF_UDP_TIMEOUT=${CTF_UDP_TIMEOUT:-600}

CTF_HZ=$(getconf CLK_TCK)
CTF_PIDS=()
CTF_NS_CREATED=()
CTF_WORK=
CTF_TESTS=0
CTF_FAILED=0
CTF_LAST_PID=

# ------------------------------------------------------------------ output

ctf_diag() { local l; for l in "$@"; do printf '# %s\n' "$l"; done; }
ctf_diag_file() {   # FILE [LINES]: show the tail of a log as diagnostics
	[ -s "$1" ] || return 0
	local n=${2:-20}
	[ "${CTF_VERBOSE:-0}" = 1 ] && n=100000
	printf '# --- %s (last %s lines)\n' "$1" "$n"
	tail -n "$n" "$1" | sed 's/^/#   /'
}
ctf_ok() { CTF_TESTS=$((CTF_TESTS + 1)); printf 'ok %d - %s\n' "$CTF_TESTS" "$1"; }
ctf_not_ok() {
	CTF_TESTS=$((CTF_TESTS + 1)); CTF_FAILED=$((CTF_FAILED + 1))
	printf 'not ok %d - %s\n' "$CTF_TESTS" "$1"; shift
	[ $# -gt 0 ] && ctf_diag "$@"
	return 0
}
ctf_skip() { CTF_TESTS=$((CTF_TESTS + 1)); printf 'ok %d - %s # SKIP %s\n' "$CTF_TESTS" "$1" "$2"; }
# ctf_check DESC COMMAND...: ok when the command succeeds
ctf_check() { local d=$1; shift; if "$@"; then ctf_ok "$d"; else ctf_not_ok "$d"; fi; }
# ctf_is GOT WANT DESC: ok when the two strings are equal
ctf_is() {
	if [ "$1" = "$2" ]; then ctf_ok "$3"; else ctf_not_ok "$3" "got:  $1" "want: $2"; fi
}
# ctf_bail MSG: the test cannot go on; the EXIT trap still cleans up
ctf_bail() { echo "Bail out! $*"; CTF_FAILED=$((CTF_FAILED + 1)); exit 1; }
# ctf_done: plan line and exit status (0 only when every check passed)
ctf_done() {
	echo "1..$CTF_TESTS"
	if [ "$CTF_FAILED" -gt 0 ]; then
		ctf_diag "$CTF_FAILED of $CTF_TESTS checks failed"
		return 1
	fi
	return 0
}

# ctf_kv KEY LINE: the value of KEY in a line of key=value pairs
ctf_kv() { printf '%s\n' "$2" | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k { sub(/^[^=]*=/, ""); print; exit }'; }

ctf_now() { date +%s.%N; }
ctf_elapsed() { awk -v a="$1" -v b="${2:-$(ctf_now)}" 'BEGIN { printf "%.1f", b - a }'; }

# ------------------------------------------------------------------ checks

ctf_require_root() { [ "$(id -u)" = 0 ] || { echo "1..0 # SKIP needs root (network namespaces)"; exit 77; }; }

# ctf_require_cmd CMD...: bail out when a tool is missing
ctf_require_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || [ -x "$c" ] || ctf_bail "required program not found: $c"
	done
}

# ------------------------------------------------------------------ processes

# ctf_alive PID: the process exists and has not exited (a zombie counts as gone)
ctf_alive() {
	local st
	st=$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# ctf_spawn NS LOG CMD...: start CMD in namespace NS in the background.
# The pid lands in CTF_LAST_PID and is tracked for cleanup.  Call it directly,
# never in $(...) or a pipeline: the pid must be recorded in this shell.
# `ip netns exec` execs CMD in place, so the pid is the command's own.
ctf_spawn() {
	local ns=$1 log=$2; shift 2
	ip netns exec "$ns" "$@" </dev/null >"$log" 2>&1 &
	CTF_LAST_PID=$!
	CTF_PIDS+=("$CTF_LAST_PID")
}

# ctf_stop PID [TIMEOUT_S]: SIGTERM, then SIGKILL after TIMEOUT_S (default 5).
# Sets CTF_STOP_STATUS (the exit status, 128+N for signal N) and
# CTF_STOP_KILLED=1 when SIGKILL was needed.
ctf_stop() {
	local pid=$1 timeout=${2:-5} i p keep=()
	CTF_STOP_STATUS=0; CTF_STOP_KILLED=0
	[ -n "$pid" ] || return 0
	if ctf_alive "$pid"; then
		kill -TERM "$pid" 2>/dev/null
		for ((i = 0; i < timeout * 10; i++)); do
			ctf_alive "$pid" || break
			sleep 0.1
		done
		if ctf_alive "$pid"; then
			kill -KILL "$pid" 2>/dev/null
			CTF_STOP_KILLED=1
		fi
	fi
	wait "$pid" 2>/dev/null
	CTF_STOP_STATUS=$?
	for p in "${CTF_PIDS[@]}"; do [ "$p" != "$pid" ] && keep+=("$p"); done
	CTF_PIDS=("${keep[@]}")
	return 0
}

# ctf_tree_pids PID: PID and all its descendants.  ctflowd is a supervisor
# with a forked worker that does the work, so "idle" and "CPU used" must
# cover the whole tree, not one pid.
ctf_tree_pids() {
	local c
	echo "$1"
	for c in $(pgrep -P "$1" 2>/dev/null); do ctf_tree_pids "$c"; done
}
# ctf_cpu_ticks PID: utime+stime of PID and its descendants, all threads
ctf_cpu_ticks() {
	local p s=0 t
	for p in $(ctf_tree_pids "$1"); do
		t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null)
		s=$((s + ${t:-0}))
	done
	echo $s
}
ctf_ticks_to_s() { awk -v t="$1" -v hz="$CTF_HZ" 'BEGIN { printf "%.2f", t / hz }'; }

# ctf_wait_idle PID [QUIET_S] [MAX_S]: wait until the CPU time of PID and its
# descendants has not moved for QUIET_S seconds (default 1.5), at most MAX_S
# (default 120).
# Returns 1 on timeout or when the process is gone.  Prints nothing.
ctf_wait_idle() {
	local pid=$1 quiet=${2:-1.5} max=${3:-120} t0 last=-1 since cur now
	t0=$(ctf_now); since=$t0
	while :; do
		ctf_alive "$pid" || return 1
		# a restarted worker is activity too, even before it used CPU
		cur=$(ctf_tree_pids "$pid" | tr '\n' ' ')/$(ctf_cpu_ticks "$pid")
		now=$(ctf_now)
		if [ "$cur" != "$last" ]; then last=$cur; since=$now; fi
		awk -v n="$now" -v s="$since" -v q="$quiet" 'BEGIN { exit !(n - s >= q) }' && return 0
		awk -v n="$now" -v s="$t0" -v m="$max" 'BEGIN { exit !(n - s >= m) }' && return 1
		sleep 0.1
	done
}

# ctf_worker_of SUP: the worker the ctflowd supervisor SUP runs now (its live
# ctflowd child); 1 when there is none, e.g. between a death and a restart.
ctf_worker_of() {
	local c
	for c in $(pgrep -P "$1" 2>/dev/null); do
		[ "$(cat /proc/"$c"/comm 2>/dev/null)" = ctflowd ] && ctf_alive "$c" &&
			{ echo "$c"; return 0; }
	done
	return 1
}

# ctf_wait_file FILE [MAX_S]: wait until FILE exists
ctf_wait_file() {
	local i
	for ((i = 0; i < ${2:-10} * 10; i++)); do [ -e "$1" ] && return 0; sleep 0.1; done
	return 1
}

# ctf_ct_listener PID [NS]: "INODE PORTID" of a ctnetlink socket PID holds
# subscribed to DESTROY events; 1 when it holds none.  The socket is looked
# up in PID's own namespace, or in NS: a socket is listed in the namespace
# it was created in, which after setns() is not the process's.
# /proc/net/netlink columns: sk Eth Pid Groups ... Inode; Eth 12 is
# NETLINK_NETFILTER, group bit 0x4 is NFNLGRP_CONNTRACK_DESTROY, and Pid is
# the socket's port id (what a sender addresses).
ctf_ct_listener() {
	local pid=$1 ns=${2:-} link sk eth port groups rest inode
	local -A mine=()
	for link in /proc/"$pid"/fd/*; do
		link=$(readlink "$link" 2>/dev/null) || continue
		[[ $link =~ ^socket:\[([0-9]+)\]$ ]] && mine[${BASH_REMATCH[1]}]=1
	done
	[ ${#mine[@]} -gt 0 ] || return 1
	while read -r sk eth port groups rest; do
		[ "$eth" = 12 ] && [[ $groups =~ ^[0-9a-fA-F]+$ ]] || continue
		inode=${rest##* }
		((16#$groups & 4)) && [ -n "${mine[$inode]:-}" ] && { echo "$inode $port"; return 0; }
	done < <(if [ -n "$ns" ]; then ctf_nsx "$ns" cat /proc/net/netlink
		 else cat "/proc/$pid/net/netlink"; fi 2>/dev/null)
	return 1
}

# ctf_ct_listener_inode PID [NS]: the inode of that socket (see ctf_ct_listener)
ctf_ct_listener_inode() { local l; l=$(ctf_ct_listener "$@") && echo "${l% *}"; }

# ctf_ct_listener_portid PID [NS]: its port id, where netlink messages to it go
ctf_ct_listener_portid() { local l; l=$(ctf_ct_listener "$@") && echo "${l#* }"; }

# ctf_has_ct_listener PID: PID holds a ctnetlink socket subscribed to DESTROY
# events (in its own namespace)
ctf_has_ct_listener() { ctf_ct_listener_inode "$1" >/dev/null; }

# ctf_wait_ct_listener PID [MAX_S]: wait until PID listens for DESTROY events
# (so no event of the workload can be missed by a daemon that is still
# starting).  Returns 1 when PID died or time ran out.
ctf_wait_ct_listener() {
	local pid=$1 i
	for ((i = 0; i < ${2:-10} * 10; i++)); do
		ctf_alive "$pid" || return 1
		ctf_has_ct_listener "$pid" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# ctf_wait_udp_port NS PORT [MAX_S]: wait until something listens on 127.0.0.1:PORT/udp
ctf_wait_udp_port() {
	local i
	for ((i = 0; i < ${3:-10} * 10; i++)); do
		[ -n "$(ip netns exec "$1" ss -H -uln "sport = :$2" 2>/dev/null)" ] && return 0
		sleep 0.1
	done
	return 1
}

# ------------------------------------------------------------------ test bed

ctf_ns_exists() { ip netns list | awk '{ print $1 }' | grep -qx "$1"; }

ctf_nsx() { ip netns exec "$@"; }

# ctf_setup: work directory, namespaces, links, addresses, sysctls, nftables,
# and the cleanup trap.  Bails out when anything fails.
ctf_setup() {
	ctf_require_root
	ctf_require_cmd ip nft conntrack sysctl ss awk ping "$FLOWGEN"
	trap ctf_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	CTF_WORK=$(mktemp -d "${TMPDIR:-/tmp}/ctflowd-it.XXXXXX") || ctf_bail "mktemp failed"
	local ns
	for ns in "$NS_CLI" "$NS_RTR" "$NS_SRV"; do
		ctf_ns_exists "$ns" && ctf_bail "namespace $ns already exists"
	done
	for ns in "$NS_CLI" "$NS_RTR" "$NS_SRV"; do
		ip netns add "$ns" || ctf_bail "ip netns add $ns failed"
		CTF_NS_CREATED+=("$ns")
		ctf_nsx "$ns" ip link set lo up
		# no router advertisements, no duplicate address detection delay
		ctf_nsx "$ns" sysctl -qw net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 \
			net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 ||
			ctf_bail "ipv6 sysctls in $ns"
	done
	# each veth end is created directly in its namespace: nothing ever
	# appears in the namespace the test was started from
	ip link add c0 netns "$NS_CLI" type veth peer name r-cli netns "$NS_RTR" &&
	ip link add s0 netns "$NS_SRV" type veth peer name r-srv netns "$NS_RTR" ||
		ctf_bail "creating veth pairs failed"
	{
		ctf_nsx "$NS_CLI" ip addr add $CLI_IP/24 dev c0 &&
		ctf_nsx "$NS_RTR" ip addr add $RTR_CLI_IP/24 dev r-cli &&
		ctf_nsx "$NS_RTR" ip addr add $RTR_SRV_IP/24 dev r-srv &&
		ctf_nsx "$NS_SRV" ip addr add $SRV_IP/24 dev s0 &&
		ctf_nsx "$NS_CLI" ip -6 addr add $CLI_IP6/64 dev c0 nodad &&
		ctf_nsx "$NS_RTR" ip -6 addr add $RTR_CLI_IP6/64 dev r-cli nodad &&
		ctf_nsx "$NS_RTR" ip -6 addr add $RTR_SRV_IP6/64 dev r-srv nodad &&
		ctf_nsx "$NS_SRV" ip -6 addr add $SRV_IP6/64 dev s0 nodad &&
		ctf_nsx "$NS_CLI" ip link set c0 up &&
		ctf_nsx "$NS_RTR" ip link set r-cli up &&
		ctf_nsx "$NS_RTR" ip link set r-srv up &&
		ctf_nsx "$NS_SRV" ip link set s0 up &&
		ctf_nsx "$NS_CLI" ip route add default via $RTR_CLI_IP &&
		ctf_nsx "$NS_SRV" ip route add default via $RTR_SRV_IP &&
		ctf_nsx "$NS_CLI" ip -6 route add default via $RTR_CLI_IP6 &&
		ctf_nsx "$NS_SRV" ip -6 route add default via $RTR_SRV_IP6
	} || ctf_bail "addresses/routes failed"
	ctf_nsx "$NS_CLI" sysctl -qw net.ipv4.ip_local_port_range="10000 29999" ||
		ctf_bail "client sysctls"

	# Router: accounting, timestamps and events must be on before the first
	# flow exists (they are attached when an entry is created); events=1,
	# not the default "auto", so entries made before a listener appears
	# still report their end.
	ctf_nsx "$NS_RTR" sysctl -qw \
		net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
		net.netfilter.nf_conntrack_acct=1 \
		net.netfilter.nf_conntrack_timestamp=1 \
		net.netfilter.nf_conntrack_events=1 \
		net.netfilter.nf_conntrack_udp_timeout="$CTF_UDP_TIMEOUT" \
		net.netfilter.nf_conntrack_udp_timeout_stream="$CTF_UDP_TIMEOUT" \
		net.netfilter.nf_conntrack_tcp_timeout_time_wait="$CTF_TCP_CLOSE_TIMEOUT" \
		net.netfilter.nf_conntrack_tcp_timeout_close="$CTF_TCP_CLOSE_TIMEOUT" \
		net.netfilter.nf_conntrack_tcp_timeout_fin_wait="$CTF_TCP_CLOSE_TIMEOUT" \
		net.netfilter.nf_conntrack_tcp_timeout_last_ack="$CTF_TCP_CLOSE_TIMEOUT" \
		net.netfilter.nf_conntrack_tcp_timeout_close_wait="$CTF_TCP_CLOSE_TIMEOUT" ||
		ctf_bail "router sysctls"
	# The ct expressions make the kernel run conntrack in this namespace at
	# all; the named counter counts each new entry once (its first packet,
	# before confirmation).  Traffic on lo (daemon -> collector) stays out
	# of the table, or the export would report itself.
	ctf_nsx "$NS_RTR" nft -f - <<-'EOF' || ctf_bail "router nftables ruleset"
	table inet ctf {
		counter newflows { }
		chain forward {
			type filter hook forward priority filter; policy accept;
			ct status & confirmed == 0 counter name newflows
			ct state invalid counter
			ct state new,established,related counter
		}
		chain raw_prerouting {
			type filter hook prerouting priority raw; policy accept;
			iif lo notrack
		}
		chain raw_output {
			type filter hook output priority raw; policy accept;
			oif lo notrack
		}
	}
	EOF
	# Server: the synthetic UDP ends here, before the stack could answer
	# with ICMP errors that would add reply packets to the flows.
	ctf_nsx "$NS_SRV" nft -f - <<-'EOF' || ctf_bail "server nftables ruleset"
	table inet ctfsrv {
		counter udpdrop { }
		chain prerouting {
			type filter hook prerouting priority -300; policy accept;
			meta l4proto udp counter name udpdrop drop
		}
	}
	EOF
	# resolve neighbours now, so no workload packet waits in an ARP/ND queue
	ctf_nsx "$NS_CLI" ping -q -c1 -W2 $SRV_IP >/dev/null &&
	ctf_nsx "$NS_CLI" ping -q -c1 -W2 $SRV_IP6 >/dev/null ||
		ctf_bail "no connectivity client -> server through the router"
	# drop the probe entries while nobody listens: no events for them
	ctf_nsx "$NS_RTR" conntrack -F >/dev/null 2>&1
	ctf_diag "test bed: $NS_CLI $NS_RTR $NS_SRV, work directory $CTF_WORK"
}

# ctf_cleanup: the EXIT trap.  Stops every tracked process, then anything
# still running inside our namespaces (only processes started by this test
# can be there), deletes the namespaces, and removes the work directory
# unless the test failed or CTF_KEEP=1.  Keeps the exit status.
ctf_cleanup() {
	local rc=$? p ns i
	trap - EXIT INT TERM
	for p in "${CTF_PIDS[@]}"; do ctf_alive "$p" && kill -TERM "$p" 2>/dev/null; done
	for ((i = 0; i < 30; i++)); do
		local any=0
		for p in "${CTF_PIDS[@]}"; do ctf_alive "$p" && any=1; done
		[ $any = 0 ] && break
		sleep 0.1
	done
	for p in "${CTF_PIDS[@]}"; do
		ctf_alive "$p" && kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	for ns in "${CTF_NS_CREATED[@]}"; do
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
	done
	for ns in "${CTF_NS_CREATED[@]}"; do
		ip netns del "$ns" 2>/dev/null || echo "# cleanup: could not delete namespace $ns" >&2
	done
	if [ -n "$CTF_WORK" ] && [ -d "$CTF_WORK" ]; then
		if [ "$rc" != 0 ] || [ "$CTF_FAILED" != 0 ] || [ "${CTF_KEEP:-0}" = 1 ]; then
			echo "# artefacts kept in $CTF_WORK" >&2
		else
			rm -rf "$CTF_WORK"
		fi
	fi
	return "$rc"
}

# ------------------------------------------------------------------ kernel state (router)

ctf_ct_count() { ctf_nsx "$NS_RTR" cat /proc/sys/net/netfilter/nf_conntrack_count; }
# entries parked by reliable delivery: their DESTROY was not taken yet
ctf_ct_dying() { ctf_nsx "$NS_RTR" conntrack -L dying 2>/dev/null | grep -c .; }
# new conntrack entries in the router so far (nft counter)
ctf_newflows() { ctf_nsx "$NS_RTR" nft list counter inet ctf newflows | awk '/packets/ { print $2 }'; }
# UDP packets that reached the server (and were dropped there)
ctf_srv_udp_pkts() { ctf_nsx "$NS_SRV" nft list counter inet ctfsrv udpdrop | awk '/packets/ { print $2 }'; }
# sum of one `conntrack -S` field over all CPUs
ctf_ct_stat() {
	ctf_nsx "$NS_RTR" conntrack -S 2>/dev/null | tr ' ' '\n' |
		awk -F= -v k="$1" '$1 == k { s += $2 } END { print s + 0 }'
}
# UDP receive buffer errors in the router (a collector dropping datagrams)
ctf_udp_rcvbuf_errors() { ctf_nsx "$NS_RTR" awk '/^Udp:/ { n++; if (n == 2) print $6 }' /proc/net/snmp; }

# ctf_ct_flush: delete every entry in the router's table (DESTROY for each)
ctf_ct_flush() { ctf_nsx "$NS_RTR" conntrack -F >/dev/null 2>&1; }

# ctf_wait_ct_empty [MAX_S]: wait until the router's table is empty
ctf_wait_ct_empty() {
	local i
	for ((i = 0; i < ${1:-30} * 10; i++)); do
		[ "$(ctf_ct_count)" = 0 ] && return 0
		sleep 0.1
	done
	return 1
}

# ------------------------------------------------------------------ collectors and daemon

# ctf_start_nfcapd DIR PORT: nfcapd in the router on 127.0.0.1:PORT (UDP only);
# pid in CTF_LAST_PID, log in DIR.log.  Bails out when it does not listen.
ctf_start_nfcapd() {
	local dir=$1 port=$2
	ctf_require_cmd nfcapd
	mkdir -p "$dir"
	# -t 3600: one file per run rather than one per 5 wall-clock minutes
	ctf_spawn "$NS_RTR" "$dir.log" nfcapd -w "$dir" -p "$port" -b 127.0.0.1 -B 33554432 -t 3600
	local pid=$CTF_LAST_PID
	ctf_wait_udp_port "$NS_RTR" "$port" 10 || { ctf_diag_file "$dir.log"; ctf_bail "nfcapd does not listen on $port"; }
	CTF_LAST_PID=$pid
}

# ctf_ctflowd_conf FILE: the [daemon] and [source] sections; a test appends
# its [export ...] sections.  CTF_RCVBUF (16384) and CTF_RELIABLE (yes) tune
# the source; CTF_HANDOVER (0: off) is how long a stopped ctflowd keeps its
# event socket for a successor, off unless a test is about that, so that no
# holder outlives a test.  CTF_SPOOL_SYNC (batch) and CTF_SPOOL_MAX (256M)
# set the journal's sync mode and bound.
ctf_ctflowd_conf() {
	local f=$1
	mkdir -p "$CTF_WORK/state"
	cat >"$f" <<-EOF
	[daemon]
	state_directory = $CTF_WORK/state
	stats_interval = 1s
	handover_timeout = ${CTF_HANDOVER:-0}
	spool_sync = ${CTF_SPOOL_SYNC:-batch}
	spool_max = ${CTF_SPOOL_MAX:-256M}

	[source]
	receive_buffer = ${CTF_RCVBUF:-16384}
	reliable = ${CTF_RELIABLE:-yes}
	EOF
}

# ctf_start_ctflowd CONF LOG: ctflowd in the foreground in the router; returns
# once it listens for DESTROY events (pid in CTF_LAST_PID), 1 when it died or
# did not subscribe within 10 s.
ctf_start_ctflowd() {
	local conf=$1 log=$2 pid
	ctf_spawn "$NS_RTR" "$log" "$CTFLOWD" -f -c "$conf"
	pid=$CTF_LAST_PID
	if ! ctf_wait_ct_listener "$pid" 10; then
		ctf_diag_file "$log" 40
		return 1
	fi
	CTF_LAST_PID=$pid
	return 0
}

# ctf_start_tcp_collector DIR COLL_DIR PORT N: tcp_collector.py in the router
# on 127.0.0.1:PORT, one file per connection in COLL_DIR, log and ready file
# DIR/collector-N.*, so that restarts of the collector within a test keep
# apart; pid in CTF_LAST_PID.  Bails out when it does not listen within 10 s,
# as no later check could mean anything without it.
ctf_start_tcp_collector() {
	local dir=$1 coll_dir=$2 port=$3 n=$4 pid
	ctf_spawn "$NS_RTR" "$dir/collector-$n.log" "$PYTHON" "$CTF_LIB_DIR/tcp_collector.py" \
		--port "$port" --dir "$coll_dir" --ready "$dir/collector-$n.ready"
	pid=$CTF_LAST_PID
	ctf_wait_file "$dir/collector-$n.ready" 10 ||
		{ ctf_diag_file "$dir/collector-$n.log"; ctf_bail "collector $n does not listen"; }
	CTF_LAST_PID=$pid
}

# ------------------------------------------------------------------ workload

# ctf_gen_udp N DPORT SPORT PKTS LEN: N IPv4 UDP flows client -> server of
# PKTS packets of LEN payload bytes, sports from SPORT.  Sets CTF_GEN_T0 and
# CTF_GEN_T1 (wall clock around the run) and returns 1, with a diagnostic,
# unless the router created exactly N entries and the server saw every
# packet: a shortfall found later is then the daemon's, not the workload's.
ctf_gen_udp() {
	local n=$1 dport=$2 sport=$3 pkts=$4 len=$5 nf0 udp0 out created got
	nf0=$(ctf_newflows); udp0=$(ctf_srv_udp_pkts)
	CTF_GEN_T0=$(ctf_now)
	out=$(ctf_nsx "$NS_CLI" "$FLOWGEN" udp -d $SRV_IP -n "$n" -P "$pkts" -l "$len" \
		-p "$dport" -S "$sport" 2>&1) || { ctf_diag "flowgen: $out"; return 1; }
	CTF_GEN_T1=$(ctf_now)
	created=$(($(ctf_newflows) - nf0)); got=$(($(ctf_srv_udp_pkts) - udp0))
	[ "$created" = "$n" ] && [ "$got" = $((n * pkts)) ] && return 0
	ctf_diag "router created $created entries (want $n), server got $got packets (want $((n * pkts)))"
	return 1
}

# ------------------------------------------------------------------ results

# ctf_json_lines FILE: lines (one a flow) in a JSON export; 0 while the
# daemon has not created the file yet, so a poll can compare at once.
ctf_json_lines() { [ -e "$1" ] && wc -l <"$1" || echo 0; }

# ctf_last_stats LOG: ctflowd's newest statistics (or final) line in LOG;
# the counters in it are cumulative, so the newest one says all.
ctf_last_stats() { grep -E ' (statistics|final): ' "$1" | tail -1; }

# ctf_stat_export LINE NAME FIELD: the counter FIELD of export NAME in a
# statistics line; empty when the line does not carry it.
ctf_stat_export() {
	printf '%s\n' "$1" | grep -o "export $2: [^;]*" | sed -n "s/.*[:,] $3 \([0-9]*\).*/\1/p"
}

# ctf_wait_stat_export LOG NAME FIELD WANT MAX_S: wait until the counter of
# export NAME in LOG's newest statistics line reaches WANT (the daemon logs
# statistics every second, so this is how a test sees delivery progress);
# 1 when MAX_S passed first.
ctf_wait_stat_export() {
	local i v
	for ((i = 0; i < $5 * 5; i++)); do
		v=$(ctf_stat_export "$(ctf_last_stats "$1")" "$2" "$3")
		[ -n "$v" ] && [ "$v" -ge "$4" ] && return 0
		sleep 0.2
	done
	return 1
}

# ctf_report_score: turn a scorer's output on stdin into TAP: "OK|what" is a
# passed check, "NOTOK|what|detail..." a failed one with its details as
# diagnostics, "#" lines pass through, anything else is shown as a scorer
# diagnostic (so a scorer crash is not silent).
ctf_report_score() {
	local line f
	while IFS= read -r line; do
		case $line in
		'#'*) printf '%s\n' "$line" ;;
		OK\|*) ctf_ok "${line#OK|}" ;;
		NOTOK\|*)
			IFS='|' read -r -a f <<<"${line#NOTOK|}"
			ctf_not_ok "${f[@]}" ;;
		*) ctf_diag "scorer: $line" ;;
		esac
	done
}

# ctf_start_witness DIR: an independent DESTROY listener (ctlisten) in the
# router, writing DIR/witness.txt for ctf_witness_exact.  A large buffer and
# no reliable delivery: it changes nothing in how the kernel treats
# ctflowd's socket.  Its pid lands in CTF_LAST_PID.
ctf_start_witness() {
	local dir=$1 pid
	ctf_spawn "$NS_RTR" "$dir/witness.log" "$CTLISTEN" -b 67108864 -i 600 -T 600 \
		-o "$dir/witness.txt" -r "$dir/witness.ready"
	pid=$CTF_LAST_PID
	ctf_wait_file "$dir/witness.ready" 5 || ctf_bail "ctlisten did not start: $(cat "$dir/witness.log")"
	CTF_LAST_PID=$pid
}

# ctf_conf_udp_and_file CONF PORT PATH: appends two IPFIX exports flushed
# every second, "collector" over UDP to the router's 127.0.0.1:PORT and
# "file" to PATH
ctf_conf_udp_and_file() {
	cat >>"$1" <<-EOF

	[export collector]
	format = ipfix
	transport = udp
	destination = 127.0.0.1:$2
	flush_interval = 1s

	[export file]
	format = ipfix
	transport = file
	path = $3
	flush_interval = 1s
	EOF
}

# ctf_batch_workload TIMELINE BASE_DPORT GAP_BATCH WAIT_CMD...: the caller's
# BATCHES batches of N_BATCH UDP flows (PKTS packets of LEN bytes, sports
# from SPORT, dport BASE_DPORT + b), each generated and then flushed with
# `conntrack -F`, PAUSE seconds apart; batch GAP_BATCH first runs WAIT_CMD
# (which waits for the moment the test wants it in).  One line per batch in
# TIMELINE: "b t_gen0 t_flush0 t_flush1 created pkts" (created: new entries
# in the router; pkts: UDP packets the server got); flowgen's complaints go
# to TIMELINE.err.
ctf_batch_workload() {
	local tl=$1 base=$2 gap=$3 b nf0 udp0 t0 t1 t2 out; shift 3
	for ((b = 0; b < BATCHES; b++)); do
		[ $b = "$gap" ] && "$@"
		nf0=$(ctf_newflows); udp0=$(ctf_srv_udp_pkts)
		t0=$(ctf_now)
		out=$(ctf_nsx "$NS_CLI" "$FLOWGEN" udp -d $SRV_IP -n $N_BATCH -P $PKTS -l $LEN \
			-p $((base + b)) -S $SPORT 2>&1) || echo "# flowgen: $out" >>"$tl.err"
		t1=$(ctf_now)
		ctf_ct_flush
		t2=$(ctf_now)
		echo "$b $t0 $t1 $t2 $(($(ctf_newflows) - nf0)) $(($(ctf_srv_udp_pkts) - udp0))" >>"$tl"
		[ $b -lt $((BATCHES - 1)) ] && sleep "$PAUSE"
	done
	return 0
}

# ctf_wait_lines FILE N MAX_S: wait until FILE has N lines; 1 on timeout
ctf_wait_lines() {
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		[ -e "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

# ctf_seen_sports INPUT FILE DPORT: the source ports of the UDP flows to
# DPORT in one export view, sorted and distinct (INPUT nfdump: the text of
# ctf_nfdump_flows; ipfix: an IPFIX file)
ctf_seen_sports() {
	local input=$1 file=$2 dport=$3
	if [ "$input" = nfdump ]; then
		awk -v d="$dport" '$1 == 17 && $5 == d { print $3 }' "$file"
	else
		CTF_LIB_DIR=$CTF_LIB_DIR "$PYTHON" - "$file" "$dport" <<-'PY'
		import os, sys
		sys.path.insert(0, os.environ["CTF_LIB_DIR"])
		import ipfix_verify as iv
		for r in iv.Decoder(open(sys.argv[1], "rb").read()).run().records:
		    k = iv.flow_key(r)
		    if k[1] == 17 and k[5] == int(sys.argv[2]):
		        print(k[3])
		PY
	fi | sort -un
}

# ctf_sport_gaps LO HI MAX: of the ports LO..HI, those not read from stdin,
# as "COUNT RANGES": the number missing and the first MAX runs of them
# ("1024-1030, 2000, ..."), "0 none" when none is
ctf_sport_gaps() {
	awk -v lo="$1" -v hi="$2" -v max="$3" '
		{ seen[$1] = 1 }
		END {
			n = 0; k = 0; runs = ""
			for (p = lo; p <= hi; p++) {
				if (p in seen) continue
				s = p; while (p + 1 <= hi && !((p + 1) in seen)) p++
				n += p - s + 1; k++
				if (k <= max) runs = runs (runs == "" ? "" : ", ") (s == p ? s : s "-" p)
			}
			print n, (n ? runs (k > max ? ", ..." : "") : "none")
		}'
}

# ctf_batch_gaps INPUT FILE BASE_DPORT BATCHES SPORT PER_BATCH: for a workload
# of BATCHES batches of PER_BATCH flows (dport BASE_DPORT + b, sports from
# SPORT), one line "batch b: n missing (sports ...)" per batch with a gap in
# an export view
ctf_batch_gaps() {
	local b n runs
	for ((b = 0; b < $4; b++)); do
		read -r n runs < <(ctf_seen_sports "$1" "$2" $(($3 + b)) | ctf_sport_gaps "$5" $(($5 + $6 - 1)) 5)
		[ "$n" = 0 ] || echo "batch $b: $n missing (sports $runs)"
	done
}

# ctf_witness_exact FILE LO HI PKTS BYTES: "DISTINCT EXACT" over a ctlisten
# record of UDP flows with dport LO..HI: how many distinct flows the kernel
# reported, and how many of those had exactly PKTS packets and BYTES bytes
# forward and nothing back.  What the kernel said is the yardstick: a loss
# it shows is the harness's, not the daemon's.
ctf_witness_exact() {
	awk -v lo="$2" -v hi="$3" -v pk="$4" -v b="$5" '
	$1 == 17 && $5 >= lo && $5 <= hi { k = $3 " " $5; if (k in seen) next; seen[k] = 1; n++
		if ($6 == pk && $7 == b && $8 == 0 && $9 == 0) g++ }
	END { printf "%d %d", n, g }' "$1"
}

# ctf_nfdump_flows NFDIR OUT: what nfcapd stored in NFDIR, one flow a
# line in the field order ipfix_verify.py's --input nfdump reads; nfdump's
# own complaints go to nfdump.err beside OUT, for the kept artefacts.
ctf_nfdump_flows() {
	nfdump -R "$1" -q -N -o "fmt:%pr %sa %sp %da %dp %ipkt %ibyt %opkt %obyt %ts %te" \
		>"$2" 2>"$(dirname "$2")/nfdump.err"
}

# ctf_ipfix_verify VIEW FILE CLASS ARGS...: score FILE with ipfix_verify.py
# (ARGS: --input, --expect, window ...), keep its verdict in FILE.verdict and
# set CTF_V_SUM (the file= line) and CTF_V_CLS (the cls=CLASS line).  A
# failed check and 1 when either is missing: nothing else can be judged.
ctf_ipfix_verify() {
	local view=$1 file=$2 class=$3 out; shift 3
	out=$("$PYTHON" "$CTF_LIB_DIR/ipfix_verify.py" "$file" "$@" 2>&1)
	echo "$out" >"$file.verdict"
	CTF_V_SUM=$(printf '%s\n' "$out" | grep '^file=')
	CTF_V_CLS=$(printf '%s\n' "$out" | grep "^cls=$class ")
	if [ -z "$CTF_V_SUM" ] || [ -z "$CTF_V_CLS" ]; then
		ctf_not_ok "$view: ipfix_verify.py scores the export" "$(printf '%s\n' "$out" | tail -5)"
		return 1
	fi
}

# ctf_verify_exact VIEW INPUT PKTS BYTES [RESENT_MAX]: after ctf_ipfix_verify,
# the checks every exactly-once test makes: no repeated 5-tuple, exact
# counters and times in the window, and for an IPFIX file also unique
# flowIds and a clean decode (nfdump's text has neither, so those only apply
# to INPUT ipfix).  RESENT_MAX (0): repeats a UDP view may show after worker
# kills, at most what the killed workers had handed to the kernel without
# having written their position yet (see the README on UDP).
ctf_verify_exact() {
	local view=$1 input=$2 pkts=$3 bytes=$4 resent_max=${5:-0} sum=$CTF_V_SUM cls=$CTF_V_CLS
	local dups
	dups=$(ctf_kv duplicates "$cls")
	if [ "$resent_max" = 0 ]; then
		ctf_is "$dups" 0 "$view: no flow exported twice (records repeating a 5-tuple)"
	else
		ctf_check "$view: no flow exported twice but resends of what a killed worker was sending ($dups records repeating a 5-tuple, at most $resent_max)" \
			[ "${dups:-x}" -le "$resent_max" ] 2>/dev/null
	fi
	ctf_is "$(ctf_kv counters_wrong "$cls")/$(ctf_kv start_outside "$cls")/$(ctf_kv end_outside "$cls")/$(ctf_kv end_before_start "$cls")" 0/0/0/0 \
		"$view: counters exact ($pkts pkts/$bytes bytes, reply 0/0), times in the run window (wrong counters/start outside/end outside/end before start)"
	if [ "$input" = ipfix ]; then
		ctf_is "$(ctf_kv flowid_dups "$sum")/$(ctf_kv flowid_missing "$sum")" 0/0 \
			"$view: every record has a flowId no other record has (repeated/missing)"
		ctf_is "$(ctf_kv parse_errors "$sum")/$(ctf_kv truncated "$sum")/$(ctf_kv data_sets_without_template "$sum")" 0/0/0 \
			"$view: the file decodes cleanly, $(ctf_kv sessions "$sum") sessions (parse errors/truncated/data sets without template)"
	fi
}

# ------------------------------------------------------------------ pmacct's nfacctd

# ctf_start_nfacctd DIR PORT: pmacct's nfacctd in the router on
# 127.0.0.1:PORT (UDP), accounting every flow on its own (5-tuple and times)
# into DIR/flows.csv; config DIR/nfacctd.conf, log DIR/nfacctd.log; pid in
# CTF_LAST_PID.  Bails out when it does not listen within 10 s.
# Sized so that it is a fair judge: a socket buffer for a burst of a few
# thousand datagrams (its default overflows at about 100; the kernel grants
# up to twice net.core.rmem_max), a queue to its print plugin of 32 MiB (it
# logs "missing data detected" when that overflows), and a cache of 65,537
# buckets (about 650,000 flows a second; 16,411 by default).  The plugin
# gets each record at once: with plugin_buffer_size set it waits for a full
# buffer, and a test's last records would stay there.  "flows" counts the
# records that went into each line, so a flow exported twice shows as 2.
ctf_start_nfacctd() {
	local dir=$1 port=$2 pid
	ctf_require_cmd nfacctd
	mkdir -p "$dir"
	cat >"$dir/nfacctd.conf" <<-EOF2
	daemonize: false
	logfile: $dir/nfacctd.log
	nfacctd_ip: 127.0.0.1
	nfacctd_port: $port
	nfacctd_pipe_size: 33554432
	plugins: print[flows]
	aggregate[flows]: proto, src_host, src_port, dst_host, dst_port, timestamp_start, timestamp_end, flows
	print_output[flows]: csv
	print_output_file[flows]: $dir/flows.csv
	print_output_file_append[flows]: true
	print_refresh_time[flows]: 1
	print_cache_entries[flows]: 65537
	print_num_protos[flows]: true
	plugin_pipe_size[flows]: 33554432
	timestamps_utc: true
	EOF2
	ctf_spawn "$NS_RTR" "$dir/nfacctd.stdout" nfacctd -f "$dir/nfacctd.conf"
	pid=$CTF_LAST_PID
	ctf_wait_udp_port "$NS_RTR" "$port" 10 ||
		{ ctf_diag_file "$dir/nfacctd.log"; ctf_bail "nfacctd does not listen on $port"; }
	CTF_LAST_PID=$pid
}

# ctf_stop_nfacctd PID DIR: lets nfacctd write what it holds (its print
# plugin empties its cache every second: wait until DIR/flows.csv has not
# grown for 3 s, at most 60 s), then stops it.
ctf_stop_nfacctd() {
	local pid=$1 f=$2/flows.csv i last=-1 cur same=0
	for ((i = 0; i < 600 && same < 30; i++)); do
		cur=$(stat -c %s "$f" 2>/dev/null || echo 0)
		if [ "$cur" = "$last" ]; then same=$((same + 1)); else same=0; last=$cur; fi
		sleep 0.1
	done
	ctf_stop "$pid"
}

# ctf_nfacctd_troubles DIR: the lines of nfacctd's log that say it lost
# something (a datagram it read only in part, a full queue to its plugin, a
# full cache); "no log" when nfacctd wrote none.  Empty when all is well.
ctf_nfacctd_troubles() {
	[ -s "$1/nfacctd.log" ] || { echo "no log"; return; }
	grep -E 'incomplete NetFlow|missing data detected|Finished cache entries' "$1/nfacctd.log"
}

# ctf_nfacctd_flows DIR OUT: what nfacctd accounted, one line per line of
# DIR/flows.csv in the field order ipfix_verify.py's --input nfdump reads.
# nfacctd keeps no reverse (RFC 5103) counters: they read as 0 0.  A line
# that counts more than one record ("flows" above 1: the same flow twice)
# is written that many times, so that the scorer sees the duplicate.
ctf_nfacctd_flows() {
	awk -F, '
		NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
		/^$/ || $col["SRC_IP"] == "SRC_IP" { next }
		{
			n = $col["FLOWS"] + 0; if (n < 1) n = 1
			for (k = 0; k < n; k++)
				print $col["PROTOCOL"], $col["SRC_IP"], $col["SRC_PORT"], $col["DST_IP"],
				      $col["DST_PORT"], $col["PACKETS"], $col["BYTES"], 0, 0,
				      $col["TIMESTAMP_START"], $col["TIMESTAMP_END"]
		}' "$1/flows.csv" >"$2"
}

# ------------------------------------------------------------------ socket holders

# ctf_holders [EXCEPT_PID]: ctflowd processes in the router that hold a
# DESTROY listener and are not EXCEPT_PID or one of its descendants (a
# holder, which keeps a stopped ctflowd's socket for the next one, is
# double-forked: nobody's child)
ctf_holders() { ctf_holders_in "" "$@"; }

# ctf_holders_in NS [EXCEPT_PID]: the same for a listener made in namespace
# NS (a run with `netns = NS`); empty NS: the router's own
ctf_holders_in() {
	local ns=$1 p skip=" "
	[ -n "${2:-}" ] && skip=" $(ctf_tree_pids "$2" | tr '\n' ' ')"
	for p in $(ip netns pids "$NS_RTR" 2>/dev/null); do
		[[ $skip == *" $p "* ]] && continue
		[ "$(cat /proc/"$p"/comm 2>/dev/null)" = ctflowd ] && ctf_alive "$p" &&
			ctf_ct_listener_inode "$p" "$ns" >/dev/null && echo "$p"
	done
}

# ------------------------------------------------------------------ common steps

# ctf_wait_worker SUP LOG [MAX_S]: wait until the ctflowd supervisor SUP
# logged (in LOG) that a worker runs and has one; its pid lands in
# CTF_WORKER.  1 on timeout (default 10 s).
ctf_wait_worker() {
	local i
	CTF_WORKER=
	for ((i = 0; i < ${3:-10} * 10; i++)); do
		grep -q ' running: ' "$2" && CTF_WORKER=$(ctf_worker_of "$1") && return 0
		sleep 0.1
	done
	return 1
}

# ctf_conf_file_export CONF NAME FORMAT PATH [FLUSH]: appends a file export
# NAME in FORMAT writing PATH, flushed every FLUSH (default 1s)
ctf_conf_file_export() {
	cat >>"$1" <<-EOF

	[export $2]
	format = $3
	transport = file
	path = $4
	flush_interval = ${5:-1s}
	EOF
}

# ctf_conf_ipfix_file CONF NAME PATH [FLUSH]: appends an IPFIX file export
# NAME writing PATH, flushed every FLUSH (default 1s)
ctf_conf_ipfix_file() { ctf_conf_file_export "$1" "$2" ipfix "$3" "${4:-1s}"; }

# ctf_conf_json_file CONF NAME PATH [FLUSH]: the same as JSON lines
ctf_conf_json_file() { ctf_conf_file_export "$1" "$2" json "$3" "${4:-1s}"; }

# ctf_settle PID: wait until the router's table is empty, nothing is parked
# and ctflowd PID is idle, then check the first two
ctf_settle() {
	local i
	ctf_wait_ct_empty 60 || ctf_diag "router table not empty after 60 s: $(ctf_ct_count) entries"
	for ((i = 0; i < 300; i++)); do [ "$(ctf_ct_dying)" = 0 ] && break; sleep 0.2; done
	ctf_wait_idle "$1" 2 60 || ctf_diag "ctflowd not idle after 60 s (or gone)"
	ctf_is "$(ctf_ct_count)/$(ctf_ct_dying)" 0/0 "router table empty, no entry parked waiting for delivery (count/dying)"
}

# ctf_stop_clean PID WHO LOG [TIMEOUT_S]: SIGTERM ctflowd PID (WHO names it
# in the check) and check that it exits 0 by itself within TIMEOUT_S
# (default 30); its log's tail is shown when not
ctf_stop_clean() {
	local t0
	t0=$(ctf_now)
	ctf_stop "$1" "${4:-30}"
	if [ "$CTF_STOP_KILLED" = 0 ] && [ "$CTF_STOP_STATUS" = 0 ]; then
		ctf_ok "$2 exits 0 on SIGTERM ($(ctf_elapsed "$t0") s)"
	else
		ctf_not_ok "$2 exits 0 on SIGTERM" "exit status $CTF_STOP_STATUS, needed SIGKILL: $CTF_STOP_KILLED"
		ctf_diag_file "$3" 20
	fi
}

# ctf_check_holder INODE WHAT: check that one holder keeps the socket INODE
# (WHAT describes it); the holder's pid lands in CTF_HOLDER (empty: none)
ctf_check_holder() {
	local h
	mapfile -t h < <(ctf_holders)
	CTF_HOLDER=${h[0]:-}
	if [ ${#h[@]} = 1 ] && [ "$(ctf_ct_listener_inode "$CTF_HOLDER")" = "$1" ]; then
		ctf_ok "a holder ($CTF_HOLDER) keeps $2 (inode $1)"
	else
		ctf_not_ok "a holder keeps $2" \
			"holders: ${h[*]:-none}; their socket: $( [ -n "$CTF_HOLDER" ] && ctf_ct_listener_inode "$CTF_HOLDER")"
	fi
}

# ctf_check_takeover PID LOG INODE HOLDER SOCK: check that ctflowd PID
# (logging to LOG) took the socket INODE over from the holder HOLDER, which
# is gone then, its listening socket SOCK removed
ctf_check_takeover() {
	local pid=$1 log=$2 inode=$3 holder=$4 sock=$5 line i
	line=$(grep 'took over the conntrack event socket' "$log")
	if printf '%s\n' "$line" | grep -q 'from the previous ctflowd'; then
		ctf_ok "ctflowd $pid logs: ${line#* notice: }"
	else
		ctf_not_ok "ctflowd $pid logs that it took the socket over from the previous ctflowd" \
			"log: ${line:-no 'took over' line}"
		ctf_diag_file "$log" 10
	fi
	ctf_is "$(ctf_ct_listener_inode "$pid")" "$inode" "ctflowd $pid reads the socket the first one opened"
	for ((i = 0; i < 50; i++)); do [ -n "$holder" ] && ctf_alive "$holder" || break; sleep 0.1; done
	ctf_is "$( [ -n "$holder" ] && ctf_alive "$holder" && echo alive || echo gone)/$( [ -e "$sock" ] && echo present || echo removed)" \
		gone/removed "after the takeover the holder is gone and $(basename "$sock") removed"
}

# ctf_verify_views NFDIR EXPORT: the caller's `verify VIEW INPUT FILE
# [EXTRA...]` on what nfcapd stored in NFDIR and on the IPFIX file EXPORT
ctf_verify_views() {
	local out
	out=$(dirname "$1")/nfdump.txt
	ctf_nfdump_flows "$1" "$out"
	verify "nfdump (UDP export via nfcapd)" nfdump "$out"
	if [ -s "$2" ]; then
		verify "ipfix_verify.py (file export)" ipfix "$2" --require-flowid
	else
		ctf_not_ok "ipfix_verify.py (file export)" "no export file at $2"
	fi
}

# ctf_end_holders: end every holder in the router (SIGTERM, then SIGKILL
# after 5 s), so that none outlives the test waiting for a successor
ctf_end_holders() {
	local h i
	for h in $(ctf_holders); do kill -TERM "$h" 2>/dev/null; done
	for ((i = 0; i < 50; i++)); do [ -z "$(ctf_holders)" ] && break; sleep 0.1; done
	for h in $(ctf_holders); do kill -KILL "$h" 2>/dev/null; done
}

# ctf_cont_at_exit PID...: make the EXIT trap resume these processes before
# the cleanup ends everything: a stopped process ignores the SIGTERM that
# cleanup sends, and a stopped reliable listener keeps the kernel resending
CTF_CONT_PIDS=()
ctf_cont_at_exit() {
	CTF_CONT_PIDS+=("$@")
	trap ctf_cont_and_clean EXIT
}
ctf_cont_and_clean() {
	local rc=$? p
	for p in "${CTF_CONT_PIDS[@]}"; do kill -CONT "$p" 2>/dev/null; done
	(exit $rc)
	ctf_cleanup
}

# ------------------------------------------------------------------ handover checks

# ctf_conf_json_file CONF NAME PATH: appends a JSON lines file export NAME
# writing PATH, flushed every second
ctf_conf_json_file() {
	cat >>"$1" <<-EOF

	[export $2]
	format = json
	transport = file
	path = $3
	flush_interval = 1s
	EOF
}

# ctf_json_flows FILE DPORT PKTS BYTES: "DISTINCT RECORDS EXACT" for the
# UDP flows client -> server to DPORT in a JSON lines export: distinct
# 5-tuples, records, and records with exactly PKTS packets and BYTES bytes
ctf_json_flows() {
	[ -e "$1" ] || { echo "0 0 0"; return; }
	"$PYTHON" - "$@" <<-'PYEOF'
	import json, sys
	path, dport, pkts, nbytes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
	seen, records, exact = set(), 0, 0
	for line in open(path):
	    try:
	        o = json.loads(line)
	    except ValueError:
	        continue
	    if o.get("proto") != 17 or o.get("dport") != dport:
	        continue
	    records += 1
	    seen.add((o["src"], o["sport"], o["dst"], o["dport"]))
	    exact += o.get("packets") == pkts and o.get("bytes") == nbytes
	print(len(seen), records, exact)
	PYEOF
}

# ctf_wait_json_flows FILE DPORT PKTS BYTES N MAX_S: wait until the export
# has N distinct flows to DPORT; 1 when MAX_S passed first
ctf_wait_json_flows() {
	local i
	for ((i = 0; i < $6 * 5; i++)); do
		[ "$(ctf_json_flows "$1" "$2" "$3" "$4" | cut -d' ' -f1)" -ge "$5" ] && return 0
		sleep 0.2
	done
	return 1
}

# ctf_start_fake_holder DIR SOCK ARGS...: fake_holder.py in the router,
# listening at SOCK (ARGS: --uid USER, --filter, --lock, --no-read); its ready and status files
# are DIR/fake.ready and DIR/fake.status, its pid in CTF_LAST_PID.  Bails
# out when it does not listen within 10 s.
ctf_start_fake_holder() {
	local dir=$1 sock=$2 pid; shift 2
	rm -f "$dir/fake.ready" "$dir/fake.status"
	ctf_spawn "$NS_RTR" "$dir/fake.log" "$PYTHON" "$CTF_LIB_DIR/fake_holder.py" \
		--path "$sock" --ready "$dir/fake.ready" --status "$dir/fake.status" "$@"
	pid=$CTF_LAST_PID
	ctf_wait_file "$dir/fake.ready" 10 ||
		{ ctf_diag_file "$dir/fake.log"; ctf_bail "the fake holder does not listen"; }
	CTF_LAST_PID=$pid
}

# ctf_fd_targets PID: where PID's descriptors lead, one "N -> TARGET" a line
ctf_fd_targets() {
	local f
	for f in /proc/"$1"/fd/*; do
		printf '%s -> %s\n' "${f##*/}" "$(readlink "$f" 2>/dev/null)"
	done | sort -n
}

# ctf_check_clean_stop PID LOG: SIGTERM to ctflowd PID; ok when it exits 0
# without needing SIGKILL (within 20 s), else the tail of LOG as diagnostics
ctf_check_clean_stop() {
	local t0
	t0=$(ctf_now)
	ctf_stop "$1" 20
	if [ "$CTF_STOP_KILLED" = 0 ] && [ "$CTF_STOP_STATUS" = 0 ]; then
		ctf_ok "ctflowd exits 0 on SIGTERM ($(ctf_elapsed "$t0") s)"
	else
		ctf_not_ok "ctflowd exits 0 on SIGTERM" "exit status $CTF_STOP_STATUS, needed SIGKILL: $CTF_STOP_KILLED"
		ctf_diag_file "$2" 30
	fi
}

# ctf_start_tshark PCAP LOG FILTER: tshark in the router capturing what
# FILTER takes on its loopback to PCAP (pid in CTF_LAST_PID); bails out
# when it does not capture within 10 s.  ctflowd sends runs of datagrams as
# one UDP GSO send, which the loopback would pass (and the capture show) as
# one frame: segments of one are cut by the stack before the device
# instead, so the capture holds each datagram alone.
ctf_start_tshark() {
	local pcap=$1 log=$2 filter=$3 pid i
	ctf_nsx "$NS_RTR" ip link set lo gso_max_segs 1 || ctf_bail "cannot set gso_max_segs on the router's lo"
	ctf_spawn "$NS_RTR" "$log" tshark -n -i lo -B 64 -f "$filter" -w "$pcap"
	pid=$CTF_LAST_PID
	for ((i = 0; i < 100; i++)); do
		grep -q "Capture started" "$log" 2>/dev/null && break
		sleep 0.1
	done
	grep -q "Capture started" "$log" || { ctf_diag_file "$log"; ctf_bail "tshark does not capture"; }
	CTF_LAST_PID=$pid
}
