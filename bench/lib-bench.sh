# lib-bench.sh - helpers for the ctflowd benchmarks (bash; source it after
# tests/integration/lib.sh, whose test bed, process tracking and cleanup the
# benchmarks reuse).  Only what the integration harness does not offer is here.

# The exporter is measured as a process tree: ctflowd runs as a supervisor
# that forks the worker doing all the work, and the worker's CPU time is in
# neither the parent's /proc/PID/stat nor its cutime/cstime (those only
# count children that were waited for).  So every figure below is summed
# over the pid that was started and all its descendants, sampled while they
# are alive.

# bench_tree PID: PID and all its descendants, space-separated, PID first;
# fails when PID is gone.  /proc/PID/task/*/children would be cheaper but
# needs CONFIG_PROC_CHILDREN, so this scans every /proc/N/stat for its ppid
# (builtins only: it is polled ten times a second).
bench_tree() {
	local f st p pp rest out=$1 q c
	local -A kids=()
	[ -d /proc/"$1" ] || return 1
	for f in /proc/[0-9]*/stat; do
		{ read -r st <"$f"; } 2>/dev/null || continue
		p=${st%% *} rest=${st##*) }
		rest=${rest#* }            # drop the state: ppid is next
		pp=${rest%% *}
		kids[$pp]+=" $p"
	done
	q=("$1")
	while ((${#q[@]})); do
		p=${q[0]} q=("${q[@]:1}")
		for c in ${kids[$p]:-}; do
			out+=" $c" q+=("$c")
		done
	done
	echo "$out"
}

# bench_cpu PID...: "UTIME STIME" in clock ticks, summed over the given
# processes, each with all its threads (what /proc/PID/stat reports for the
# thread group, ended threads included) and with its waited-for children
# (cutime/cstime), so that a worker that ended and was reaped between two
# samples moves its time to the parent instead of losing it.  Processes
# already gone are skipped.
bench_cpu() {
	local p st rest u=0 s=0
	for p; do
		{ st=$(</proc/"$p"/stat); } 2>/dev/null || continue
		rest=${st##*) }
		# after "comm)": state ppid pgrp session tty tpgid flags minflt
		# cminflt majflt cmajflt utime stime cutime cstime
		set -- $rest
		u=$((u + ${12} + ${14})) s=$((s + ${13} + ${15}))
	done
	echo "$u $s"
}

# bench_runtime_ns PID...: CPU time in nanoseconds, summed over the given
# processes and their threads: sum_exec_runtime, the first field of
# /proc/PID/task/TID/schedstat.  utime/stime come in clock ticks of 10 ms,
# too coarse for the small differences the figure of merit is made of; this
# is a cross-check with ns resolution (threads and processes that ended are
# not in it).
bench_runtime_ns() {
	local p f t total=0
	for p; do
		for f in /proc/"$p"/task/*/schedstat; do
			{ read -r t _ <"$f"; } 2>/dev/null && total=$((total + t))
		done
	done
	echo "$total"
}

# bench_tree_detail PID...: one line per process for the run's logs, so the
# tree's figures can be checked against each process's own:
#   pid ppid comm utime stime cutime cstime (ticks) runtime_ns threads hwm_kb
bench_tree_detail() {
	local p st rest comm hwm
	for p; do
		{ st=$(</proc/"$p"/stat); } 2>/dev/null || continue
		comm=${st#*(} comm=${comm%)*}
		rest=${st##*) }
		set -- $rest
		hwm=$(bench_hwm "$p")
		echo "$p $2 $comm ${12} ${13} ${14} ${15} $(bench_runtime_ns "$p") ${18} ${hwm:-na}"
	done
}

# bench_thread_detail PID...: one line per thread of the given processes,
#   pid tid comm runtime_ns
# so that a run's CPU can be split between ctflowd's reader, journal and
# export threads (each export thread is named export-NAME, cut to 15 bytes)
bench_thread_detail() {
	local p f d t comm
	for p; do
		for f in /proc/"$p"/task/*/schedstat; do
			d=${f%/schedstat}
			{ read -r t _ <"$f" && comm=$(<"$d/comm"); } 2>/dev/null || continue
			echo "$p ${d##*/} $comm $t"
		done
	done
}

# bench_thread_s START END REGEX: seconds (3 decimals) the threads whose
# name matches REGEX ran between two bench_thread_detail files; "na" when
# none of them did
bench_thread_s() {
	awk -v re="$3" '
		FNR == NR { if ($3 ~ re) start[$1 " " $2] = $4; next }
		$3 ~ re { sum += $4 - start[$1 " " $2]; seen = 1 }
		END { if (seen) printf "%.3f", sum / 1e9; else print "na" }' "$1" "$2"
}

# bench_now_us: wall clock in microseconds (integer arithmetic in the shell)
bench_now_us() { echo "${EPOCHREALTIME/./}"; }

# bench_ticks_s TICKS: clock ticks as seconds (2 decimals)
bench_ticks_s() { awk -v t="$1" -v hz="$CTF_HZ" 'BEGIN { printf "%.2f", t / hz }'; }

# bench_hwm PID...: the largest peak resident set (VmHWM, kB) among the given
# processes; empty when all are gone.  The largest, not the sum: a forked
# worker shares the parent's pages, which a sum would count twice.
bench_hwm() {
	local p line max=
	for p; do
		while read -r line; do
			[[ $line == VmHWM:* ]] || continue
			set -- $line
			[ -z "$max" ] || (($2 > max)) && max=$2
		done 2>/dev/null <"/proc/$p/status"
	done
	echo "$max"
}

# bench_wait_idle PID QUIET_S MAX_S: wait until the process tree of PID is
# idle: for QUIET_S seconds (whole seconds) no 100 ms sample saw it use more
# than 1 ms of CPU (sum_exec_runtime).  A threshold rather than "not at
# all": a listener that wakes up now and then to look at a clock
# (ctlisten's poll timeout, a sink's idle wake-up, a supervisor's tick) is
# idle, though its CPU time creeps.  The tree is looked up again at every
# sample, so a worker restarted meanwhile is followed; a process leaving
# the tree makes the sum drop, which counts as not busy.  Sets
# BENCH_LAST_BUSY_US to the wall-clock time (us) of the last busy sample, so
# that the drain time can be told apart from the quiet period waited for.
# Returns 1 on timeout or when PID is gone.
bench_wait_idle() {
	local pid=$1 quiet_us=$(($2 * 1000000)) max_us=$(($3 * 1000000)) cur last t0 now tree
	t0=$(bench_now_us)
	tree=$(bench_tree "$pid") || return 1
	last=$(bench_runtime_ns $tree)
	BENCH_LAST_BUSY_US=$t0
	while :; do
		sleep 0.1
		tree=$(bench_tree "$pid") || return 1
		cur=$(bench_runtime_ns $tree)
		now=$(bench_now_us)
		((cur - last > 1000000)) && BENCH_LAST_BUSY_US=$now
		last=$cur
		((now - BENCH_LAST_BUSY_US >= quiet_us)) && return 0
		((now - t0 >= max_us)) && return 1
	done
}

# bench_wait_ct_empty MAX_S: wait until the router's conntrack count is 0.
# Entries parked for a reliable listener still count, so an empty table also
# means every DESTROY was taken by the listener.
bench_wait_ct_empty() {
	local i
	for ((i = 0; i < $1 * 10; i++)); do
		[ "$(ctf_ct_count)" = 0 ] && return 0
		sleep 0.1
	done
	return 1
}

# bench_nl_sock: "RCVBUF DROPS" of the ctnetlink socket in the router that is
# subscribed to DESTROY events (group bit 0x4), from sock_diag.  The
# benchmark runs one such listener at a time, so there is at most one.
# RCVBUF is what the kernel really granted (twice the requested size);
# DROPS counts events the socket could not take (with reliable delivery the
# kernel parks and resends them, so a drop there is not a loss).
bench_nl_sock() {
	local line g mem f rb d
	while read -r line; do
		[[ $line =~ nft:.*groups=0x([0-9a-fA-F]+).*skmem:\(([^\)]*)\) ]] || continue
		g=${BASH_REMATCH[1]} mem=${BASH_REMATCH[2]}
		((16#$g & 4)) || continue
		rb=na d=na
		for f in ${mem//,/ }; do
			case $f in
			rb[0-9]*) rb=${f#rb} ;;
			d[0-9]*) d=${f#d} ;;
			esac
		done
		echo "$rb $d"
		return 0
	done < <(ctf_nsx "$NS_RTR" ss -f netlink -a -e -m 2>/dev/null)
	echo "na na"
}

# bench_udp_in: UDP datagrams received in the router (Udp InDatagrams): with
# only the collector receiving there, the number of IPFIX messages
bench_udp_in() { ctf_nsx "$NS_RTR" awk '/^Udp:/ { n++; if (n == 2) print $2 }' /proc/net/snmp; }

# bench_median: the median of the numbers on stdin ("na" when there are none;
# words that are not numbers are ignored)
bench_median() {
	grep -E '^-?[0-9]+(\.[0-9]+)?$' | sort -g | awk '
		{ v[NR] = $1 }
		END {
			if (NR == 0) { print "na"; exit }
			m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			print m
		}'
}

# bench_sum: the sum of the numbers on stdin ("na" when there are none)
bench_sum() {
	grep -E '^-?[0-9]+(\.[0-9]+)?$' | awk '{ s += $1; n++ } END { if (n) print s; else print "na" }'
}

# bench_field KEY FILE EXPORTER: the values of KEY in the run lines of one
# exporter, one per line
bench_field() {
	awk -v k="$1" -v e="$3" '
		/^#/ { next }
		{
			ex = ""; val = ""
			for (i = 1; i <= NF; i++) {
				p = index($i, "=")
				if (!p) continue
				key = substr($i, 1, p - 1)
				if (key == "exporter") ex = substr($i, p + 1)
				if (key == k) val = substr($i, p + 1)
			}
			if (ex == e && val != "") print val
		}' "$2"
}
