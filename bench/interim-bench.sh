#!/bin/bash
# interim-bench.sh - what interim records (active timeout) cost: memory per
# connection with interim state, and CPU per table walk and per entry.
#
# For each size in SIZES: the router namespace gets that many UDP
# connections (one packet each, flowgen), which stay in its table (UDP
# timeout 600 s).  ctflowd watches it with active_timeout = 10s and
# walk_interval = WALK_S, exporting IPFIX to a file.  Once every connection
# is older than the timeout, one walk gives each its interim record; the
# walks after it find nothing due (no traffic since) and measure the walk
# alone.  Per size it prints:
#   state_bytes_per_conn  the connection state's own allocation (what the
#                         daemon logs: chunks of 72-byte entries and their
#                         index) divided by the connections in it
#   rss_per_conn          growth of the worker's resident memory from before
#                         the first interim record to after the last, per
#                         connection (includes the spool's in-memory cache
#                         of recent records and allocator slack)
#   walk_ms, walk_cpu_ms  wall and CPU time of the walker thread for one walk
#                         with nothing due (median of the walks measured)
#   us_per_entry          walker CPU per entry; proc_us_per_entry: CPU of the
#                         whole worker over those walks, per entry walked
#
# The conntrack table holds nf_conntrack_max entries, which can be raised
# only in the root namespace: it is raised for the run (to the largest size
# plus 10%) and restored on exit, also on failure.
#
# Everything happens in namespaces made for this run (tests/integration/
# lib.sh builds and removes them).
#
# For reference it also prints what `conntrack -L` and a bare dump
# (ctlisten -L: the same reads as the walk, nothing done with the entries,
# so the kernel's cost alone) take per entry of the same table.
#
# Environment: SIZES ["250000 1000000"], WALK_S [5] (seconds between walks),
# WALKS [3] walks measured with nothing due, CTFLOWD, FLOWGEN, CTLISTEN.
set -u
SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
. "$SRCDIR/tests/integration/lib.sh"
. "$SRCDIR/bench/lib-bench.sh"

SIZES=${SIZES:-250000 1000000}
WALK_S=${WALK_S:-5}
WALKS=${WALKS:-3}
CTF_PREFIX=ctfi-$$
NS_CLI=$CTF_PREFIX-cli NS_RTR=$CTF_PREFIX-rtr NS_SRV=$CTF_PREFIX-srv

ctf_require_root
ctf_require_cmd "$CTFLOWD" "$FLOWGEN" "$CTLISTEN" conntrack
MAX0=$(cat /proc/sys/net/netfilter/nf_conntrack_max 2>/dev/null) ||
	{ echo "nf_conntrack is not loaded" >&2; exit 2; }
biggest=0
for n in $SIZES; do [ "$n" -gt "$biggest" ] && biggest=$n; done
restore_max() { echo "$MAX0" >/proc/sys/net/netfilter/nf_conntrack_max; }

# the worker's resident memory, kB
worker_rss() { awk '/^VmRSS:/ { print $2 }' /proc/"$1"/status; }
# "entries cpu_ms wall_ms" of the last walk, and the walk count, from the log
last_walk() {
	grep -E ' statistics: ' "$1" | tail -1 |
		sed -n 's/.*table walks \([0-9]*\) .*last walk \([0-9]*\) entries in \([0-9]*\) ms, \([0-9]*\) ms CPU.*/\1 \2 \4 \3/p'
}
state_line() {
	grep -E ' statistics: ' "$1" | tail -1 |
		sed -n 's/.*interim records \([0-9]*\), connections with interim records \([0-9]*\) (\([0-9]*\) bytes).*/\1 \2 \3/p'
}

run_size() {
	local n=$1 dir=$CTF_WORK/n$n
	mkdir -p "$dir"
	# n connections, one packet each: sports x dports
	local t0
	t0=$(ctf_now)
	ctf_nsx "$NS_CLI" "$FLOWGEN" udp -d $SRV_IP -n "$n" -P 1 -l 10 -p 40000 -S 1024 >"$dir/gen.txt" 2>&1 ||
		{ cat "$dir/gen.txt"; return 1; }
	local have
	have=$(ctf_ct_count)
	echo "# size $n: $have entries in the router's table after $(ctf_elapsed "$t0") s"
	cat >"$dir/ctflowd.conf" <<-EOF
	[daemon]
	state_directory = $dir/state
	stats_interval = 1s
	handover_timeout = 0
	spool_max = 2G

	[source]
	receive_buffer = 8M
	active_timeout = 10s
	walk_interval = ${WALK_S}s

	[export file]
	format = ipfix
	path = $dir/flows.ipfix
	EOF
	ctf_start_ctflowd "$dir/ctflowd.conf" "$dir/ctflowd.log" || return 1
	local pid=$CTF_LAST_PID worker
	worker=$(ctf_worker_of "$pid") || return 1
	sleep 1
	local rss0
	rss0=$(worker_rss "$worker")
	# every connection gets its interim record in one walk
	local i s
	for ((i = 0; i < 600; i++)); do
		s=$(state_line "$dir/ctflowd.log")
		[ "$(awk '{ print $2 }' <<<"$s")" = "$n" ] 2>/dev/null && break
		sleep 0.5
	done
	read -r interim conns state_bytes <<<"$s"
	[ "${conns:-0}" = "$n" ] || { echo "# only ${conns:-0} of $n connections had an interim record"; }
	sleep 2
	local rss1
	rss1=$(worker_rss "$worker")
	# walks with nothing due: each reads every entry and makes no record
	local w0 walks=() cpu_t0
	w0=$(last_walk "$dir/ctflowd.log" | awk '{ print $1 }')
	cpu_t0=$(bench_cpu "$worker" | awk '{ print $1 + $2 }')
	local seen=$w0
	while [ "${#walks[@]}" -lt "$WALKS" ]; do
		sleep 0.5
		local lw
		lw=$(last_walk "$dir/ctflowd.log")
		[ -n "$lw" ] || continue
		local wn=${lw%% *}
		if [ "$wn" != "$seen" ]; then
			seen=$wn
			walks+=("$lw")
		fi
	done
	local cpu_t1
	cpu_t1=$(bench_cpu "$worker" | awk '{ print $1 + $2 }')
	local per=() cpu=() wall=()
	for lw in "${walks[@]}"; do
		read -r _ entries wcpu wwall <<<"$lw"
		cpu+=("$wcpu") wall+=("$wwall")
		per+=("$(awk -v c="$wcpu" -v e="$entries" 'BEGIN { printf "%.3f", c * 1000 / e }')")
	done
	local proc_per
	proc_per=$(awk -v t="$((cpu_t1 - cpu_t0))" -v hz="$CTF_HZ" -v w="$((seen - w0))" -v n="$n" \
		'BEGIN { if (w > 0) printf "%.3f", t / hz * 1e6 / (w * n); else print "na" }')
	printf 'size=%s interim=%s state_bytes=%s state_bytes_per_conn=%s rss_kb_before=%s rss_kb_after=%s rss_per_conn=%s walk_ms=%s walk_cpu_ms=%s us_per_entry=%s proc_us_per_entry=%s\n' \
		"$n" "$interim" "$state_bytes" "$(awk -v b="$state_bytes" -v n="$n" 'BEGIN { printf "%.1f", b / n }')" \
		"$rss0" "$rss1" "$(awk -v a="$rss0" -v b="$rss1" -v n="$n" 'BEGIN { printf "%.1f", (b - a) * 1024 / n }')" \
		"$(printf '%s\n' "${wall[@]}" | bench_median)" "$(printf '%s\n' "${cpu[@]}" | bench_median)" \
		"$(printf '%s\n' "${per[@]}" | bench_median)" "$proc_per"
	# the kernel's side of a dump, for reference: conntrack -L reads the
	# same table (and parses it with libnetfilter_conntrack)
	local tl
	tl=$( { TIMEFORMAT='%U %S'; time ctf_nsx "$NS_RTR" conntrack -L >/dev/null 2>&1; } 2>&1 | tail -1)
	awk -v u="${tl% *}" -v s="${tl#* }" -v n="$n" \
		'BEGIN { printf "# conntrack -L of the same table: user %.2f s, system %.2f s: %.2f us an entry\n", u, s, (u + s) * 1e6 / n }'
	# the kernel's floor: the same dump in the same 32 KiB reads, with
	# nothing done with the entries (ctlisten -L), median of 3
	ctf_nsx "$NS_RTR" "$CTLISTEN" -L 3 >"$dir/dump.txt" 2>&1 || cat "$dir/dump.txt"
	sed -n 's/.*entries=\([0-9]*\) cpu_us=\([0-9]*\).*/\2 \1/p' "$dir/dump.txt" |
		awk '{ printf "%.3f\n", $1 / $2 }' | bench_median |
		awk '{ printf "# bare dump of the same table (ctlisten -L): %s us an entry, all of it the kernel'"'"'s\n", $1 }'
	ctf_stop_clean "$pid" "ctflowd (size $n)" "$dir/ctflowd.log" 60 >/dev/null
	ctf_ct_flush
	ctf_wait_ct_empty 120 || true
}

trap 'restore_max; ctf_cleanup' EXIT
RAISED=$((biggest + biggest / 10))
[ "$RAISED" -gt "$MAX0" ] || RAISED=$MAX0
echo "$RAISED" >/proc/sys/net/netfilter/nf_conntrack_max ||
	{ echo "cannot raise nf_conntrack_max" >&2; exit 2; }
# lib.sh's own EXIT trap is ctf_cleanup; ours also restores the maximum
ctf_setup
trap 'restore_max; ctf_cleanup' EXIT
echo "# interim-bench $(date -u +%Y-%m-%dT%H:%M:%SZ) SIZES=\"$SIZES\" WALK_S=$WALK_S WALKS=$WALKS;" \
	"kernel $(uname -r); nf_conntrack_max $MAX0, $RAISED for the run"
for n in $SIZES; do
	run_size "$n" || echo "# size $n failed"
done
