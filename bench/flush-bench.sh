#!/bin/bash
# flush-bench.sh - the foundation benchmark: what exporting a burst of
# conntrack DESTROY events costs ctflowd, compared with ulogd2 and with the
# floor that the kernel charges any listener.
#
# Workload (the same for every exporter): N UDP flows of PKTS packets each go
# from the client through the router namespace, then `conntrack -F` in the
# router ends them all at once, which sends N DESTROY events as fast as the
# kernel can.  Four exporters take turns, alternating within each round
# (round 1: bare, bare-batched, ulogd, ctflowd; round 2: the same; ...), so
# that slow drifts of the host hit all of them alike:
#
#   bare          tests/tools/ctlisten -R: reliable delivery, RCVBUF, one
#                 event per poll() + recv(), counts them and nothing else.
#                 The floor: socket, wake-up and copy costs that a simple
#                 listener pays.
#   bare-batched  ctlisten -R -M: the same, but reading the way ctflowd reads
#                 (recvmmsg() of up to 256 until the socket is empty, a
#                 pause between drains when the buffer is large).  The floor
#                 of ctflowd's own way of reading.
#   ulogd         ulogd2 NFCT -> IPFIX, reliable, without its hash table,
#                 DESTROY only, with a netlink buffer of RCVBUF; IPFIX over
#                 UDP to nfcapd.
#   ctflowd       build/ctflowd, reliable, receive_buffer = RCVBUF, one IPFIX
#                 export over UDP to nfcapd, flush_interval 1s.
#
# The exporter runs alone on CPU 1; the generator, the flush, the collector
# and this script run on CPU 0, so the exporter's CPU time is its own and the
# flush is not slowed down by it.  Per run it records: flows created (the
# router's nft counter of new conntrack entries), records decoded by nfdump,
# distinct flows, lost (created - distinct), duplicated (records - distinct),
# records with exact counters, and the exporter's user and system CPU from
# just before the workload until its CPU time stops moving after the flush,
# and its peak RSS (VmHWM).  CPU is that of the whole process tree: ctflowd
# is a supervisor and a worker it forked; for ctflowd also the part of its
# export threads (export_s: the format's own cost, with the system calls
# that send) and of its DESTROY reader (reader_s).  At the end: the medians per
# exporter and the figure of merit
#   CPU above the floor = median exporter CPU - median bare CPU
#   ratio = ctflowd above floor / ulogd above floor      (goal <= 0.25)
# and the same against bare-batched.
#
# Everything happens in namespaces made for this run (tests/integration/
# lib.sh builds and removes them, also on failure) and on their 127.0.0.1.
#
# usage: bench/flush-bench.sh                 run the benchmark
#        bench/flush-bench.sh --summary FILE  the tables again, from a results file
#
# Environment (defaults in brackets):
#   ROUNDS [5]         rounds; every round runs each exporter once
#   N [200000]         flows per run (at most 250000: the table holds 262144)
#   RCVBUF [16384]     netlink receive buffer asked for by all four (the
#                      kernel doubles it).  16384 is the acceptance setting;
#                      8388608 is ctflowd's default receive_buffer
#   EXPORTERS ["bare bare-batched ulogd ctflowd"]  which, in this order each round;
#                      ctflowd-walk is ctflowd with table walks for interim
#                      records every 2.5 s (walk_interval), so that a walk
#                      mostly runs during the flush: its nl_drops and CPU
#                      next to ctflowd's show what walks cost the DESTROY
#                      reader;
#                      ctflowd-none, ctflowd-batch and ctflowd-record are
#                      ctflowd with that spool_sync, so that one run shows
#                      the journal's cost next to ulogd
#   PKTS [2] LEN [50]  packets per flow, UDP payload bytes (28 + LEN at L3)
#   MTU [default]      IPFIX message size.  "default": each exporter its own
#                      (ulogd: no mtu key, its IPFIX plugin's 512; ctflowd:
#                      no mtu key, auto = the route's MTU capped at 1500,
#                      i.e. 1472-byte datagrams, on lo too).  A number, e.g.
#                      1400: that size for both, so that neither saves system
#                      calls the other cannot
#   CTFLOWD_MTU []     ctflowd's alone, overriding MTU: a number or "auto"
#   QUIET_S [2]        the exporter counts as idle once its CPU time has not
#                      moved for this long (longer than ctflowd's 1 s flush
#                      interval and the kernel's ~1 s first resend)
#   MAX_DRAIN_S [300]  give up waiting for the table to empty / the exporter
#                      to go idle after this long
#   SENTINELS [128]    flows sent after ulogd is idle to push out its last,
#                      partly filled IPFIX message (outside the measured ports)
#   PORT [4739]        collector port on the router's 127.0.0.1
#   COLLECTOR_CPU []   a CPU number: the router's loopback hands what it
#                      receives to that CPU (RPS), so that the collector's
#                      side of each datagram (GSO segmentation, UDP
#                      receive, waking nfcapd) runs there and not in the
#                      exporter's system calls, as with a collector on
#                      another host.  Empty: loopback as it is, where the
#                      sender's CPU does the receiving side too
#   RESULTS_DIR [bench/results]  where the results file and logs go
#   KEEP [0]           1: keep the work directory (nfcapd files, nfdump text)
#   CTFLOWD, CTLISTEN, FLOWGEN   binaries [build/ctflowd, build/tests/...]
#                      ctflowd-ipfix, ctflowd-netflow9, ctflowd-netflow5 and
#                      ctflowd-json are ctflowd with its one export in that
#                      format (to nfcapd; json to a file, whose lines are
#                      counted), so that one run compares the formats'
#                      costs; the summary gives each one's CPU above the
#                      floor (bare-batched's when it ran) against
#                      ctflowd-ipfix's
#   ctflowd-syslog     (only when named in EXPORTERS) ctflowd as "ctflowd", but
#                      its export is format = syslog over UDP to the same
#                      port: one RFC 5424 message per record, one datagram
#                      each.  nfcapd there only reads and drops them; records
#                      are the datagrams the router's UDP stack delivered
#                      (InDatagrams), so lost/dup/exact are not judged (the
#                      syslog-export test judges content).  The summary sets
#                      its CPU above the floor against ctflowd's (IPFIX).
#   ctflowd-syslog-tcp (likewise) the same over TCP, octet counted, to a
#                      reader on the same port that discards what it reads
#                      (a Python loop on CPU 0); records are what ctflowd
#                      counts as delivered (acknowledged).
#   CTFLOWD_ALT []     a second ctflowd binary, the exporter "ctflowd-alt",
#                      configured as "ctflowd": with both in EXPORTERS, two
#                      builds alternate within each round
#                      (EXPORTERS="bare bare-batched ctflowd-alt ctflowd")
#
# Output: one key=value line per run on stdout and in
# RESULTS_DIR/flush-<time>-n<N>-r<ROUNDS>-rb<RCVBUF>-mtu<MTU>.txt, followed
# there (as '#' lines) by the tables also printed at the end; the logs of
# each run go to the directory of the same name.
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRCDIR=${SRCDIR:-$(cd "$BENCH_DIR/.." && pwd)}
. "$SRCDIR/tests/integration/lib.sh"
. "$BENCH_DIR/lib-bench.sh"

ROUNDS=${ROUNDS:-5}
N=${N:-200000}
RCVBUF=${RCVBUF:-16384}
EXPORTERS=${EXPORTERS:-bare bare-batched ulogd ctflowd}
PKTS=${PKTS:-2}
LEN=${LEN:-50}
MTU=${MTU:-default}
CTFLOWD_MTU=${CTFLOWD_MTU:-}
# the journal of the exporter "ctflowd": none (write only), batch (group
# commit, the default), record (synced per read); ctflowd-MODE sets its own
SPOOL_SYNC=${SPOOL_SYNC:-batch}
CTFLOWD_VARIANTS="ctflowd ctflowd-none ctflowd-batch ctflowd-record ctflowd-walk"
# ctflowd-FORMAT: the export in that format, spool_sync SPOOL_SYNC
FORMAT_VARIANTS="ctflowd-ipfix ctflowd-netflow9 ctflowd-netflow5 ctflowd-json"
# ctflowd-alt: the binary CTFLOWD_ALT (another build) set up as "ctflowd"
CTFLOWD_ALT=${CTFLOWD_ALT:-}
ALL_EXPORTERS="bare bare-batched ulogd $CTFLOWD_VARIANTS $FORMAT_VARIANTS ctflowd-alt ctflowd-syslog ctflowd-syslog-tcp"
QUIET_S=${QUIET_S:-2}
MAX_DRAIN_S=${MAX_DRAIN_S:-300}
SENTINELS=${SENTINELS:-128}
PORT=${PORT:-4739}
RESULTS_DIR=${RESULTS_DIR:-$BENCH_DIR/results}
KEEP=${KEEP:-0}
GOAL=0.25

# flowgen's tuple mapping: flow i has sport SPORT_LO + i % 64512 and dport
# DPORT_LO + i / 64512; the sentinels use a dport below the measured range.
SPORT_LO=1024
DPORT_LO=20000
SENTINEL_DPORT=19999
PER_DPORT=$((65536 - SPORT_LO))
BYTES=$((PKTS * (28 + LEN)))

# ------------------------------------------------------------------ summary

# per_round KEY FILE FLOOR [CTFLOWD]: "r1 RATIO, r2 RATIO, ..." of the ratio
# computed from KEY within each round, against the exporter FLOOR of that
# round, which shows how much of the median ratio is noise
per_round() {
	awk -v key="$1" -v floor="$3" -v ct="${4:-ctflowd}" '
		/^#/ { next }
		{
			r = ""; e = ""; c = ""
			for (i = 1; i <= NF; i++) {
				p = index($i, "="); k = substr($i, 1, p - 1); v = substr($i, p + 1)
				if (k == "round") r = v; else if (k == "exporter") e = v; else if (k == key) c = v
			}
			if (r != "" && c ~ /^[0-9.]+$/) { cpu[r, e] = c; rounds[r] = 1 }
		}
		END {
			for (r in rounds) {
				if (((r, floor) in cpu) && ((r, "ulogd") in cpu) && ((r, ct) in cpu)) {
					u = cpu[r, "ulogd"] - cpu[r, floor]; c = cpu[r, ct] - cpu[r, floor]
					printf "%d %s\n", r, (u > 0 ? sprintf("%.3f", c / u) : "na")
				}
			}
		}' "$2" | sort -n | awk '{ printf "%sr%s %s", (NR > 1 ? ", " : ""), $1, $2 }'
}

# ratio_of C U: C / U with 3 decimals, "na" unless U > 0
ratio_of() { awk -v c="$1" -v u="$2" 'BEGIN { if (c != "na" && u != "na" && u > 0) printf "%.3f", c / u; else print "na" }'; }
# minus A B D: A - B with D decimals, "na" if either is
minus() { awk -v a="$1" -v b="$2" -v d="$3" 'BEGIN { if (a == "na" || b == "na") print "na"; else printf "%.*f", d, a - b }'; }
# negative X: true when X is a number below 0
negative() { awk -v x="$1" 'BEGIN { exit !(x != "na" && x < 0) }'; }

# summary FILE: medians per exporter and the figure of merit against both
# floors, from the run lines of a results file
summary() {
	local file=$1 e f runs floor floor_rt bb bb_rt ratio ratio_rt
	local -A med=() tot_lost=() tot_dup=()
	local keys="created records lost dup exact user_s sys_s cpu_s rt_s rss_kb msgs flush_s drain_s nl_drops export_s reader_s"
	local fmt='%-12s %4s %7s %7s %5s %5s %7s %6s %6s %6s %6s %6s %6s %6s %6s %7s %6s %7s %7s %8s %8s %7s\n'
	local mtu
	mtu=$(awk '/^# MTU mode:/ { sub(/^# /, ""); print; exit }' "$file")
	[ -n "$mtu" ] && echo "$mtu"
	printf "$fmt" exporter runs created records lost dup exact user_s sys_s cpu_s \
		above above_bb rt_s rt_abv rt_abb rss_kb msgs flush_s drain_s nl_drops lost_tot dup_tot |
		sed 's/ *$//'
	floor=$(bench_field cpu_s "$file" bare | bench_median)
	floor_rt=$(bench_field rt_s "$file" bare | bench_median)
	bb=$(bench_field cpu_s "$file" bare-batched | bench_median)
	bb_rt=$(bench_field rt_s "$file" bare-batched | bench_median)
	for e in $ALL_EXPORTERS; do
		runs=$(bench_field cpu_s "$file" "$e" | grep -c .)
		[ "$runs" -gt 0 ] || continue
		for f in $keys; do med[$e.$f]=$(bench_field "$f" "$file" "$e" | bench_median); done
		tot_lost[$e]=$(bench_field lost "$file" "$e" | bench_sum)
		tot_dup[$e]=$(bench_field dup "$file" "$e" | bench_sum)
		med[$e.above]=$(minus "${med[$e.cpu_s]}" "$floor" 2)
		med[$e.rt_above]=$(minus "${med[$e.rt_s]}" "$floor_rt" 3)
		med[$e.above_bb]=$(minus "${med[$e.cpu_s]}" "$bb" 2)
		med[$e.rt_above_bb]=$(minus "${med[$e.rt_s]}" "$bb_rt" 3)
		printf "$fmt" "$e" "$runs" "${med[$e.created]}" "${med[$e.records]}" "${med[$e.lost]}" \
			"${med[$e.dup]}" "${med[$e.exact]}" "${med[$e.user_s]}" "${med[$e.sys_s]}" \
			"${med[$e.cpu_s]}" "${med[$e.above]}" "${med[$e.above_bb]}" "${med[$e.rt_s]}" \
			"${med[$e.rt_above]}" "${med[$e.rt_above_bb]}" "${med[$e.rss_kb]}" \
			"${med[$e.msgs]}" "${med[$e.flush_s]}" "${med[$e.drain_s]}" "${med[$e.nl_drops]}" \
			"${tot_lost[$e]}" "${tot_dup[$e]}"
	done
	# results from before the process tree was measured have no procs= key
	local what="the exporter's process tree"
	grep -q ' procs=' "$file" || what="the started process alone (older results)"
	echo "(medians over the rounds; cpu_s = utime + stime of $what, in s;"
	echo " above/above_bb = median cpu_s - median cpu_s of bare/bare-batched; rt_s, rt_abv, rt_abb:"
	echo " the same from sum_exec_runtime (ns resolution); msgs: UDP datagrams the collector got;"
	echo " nl_drops: events the kernel parked and resent; lost_tot/dup_tot: sums over all runs)"
	# the journal's cost: each ctflowd variant against ulogd, same floor
	local n_variants=0 v
	for v in $CTFLOWD_VARIANTS; do [ -n "${med[$v.cpu_s]:-}" ] && n_variants=$((n_variants + 1)); done
	for v in ctflowd-syslog ctflowd-syslog-tcp; do
		[ -n "${med[$v.above]:-}" ] && [ -n "${med[ctflowd.above]:-}" ] || continue
		echo "formats: CPU above the floor: ipfix ${med[ctflowd.above]} s, $v ${med[$v.above]} s," \
			"ratio $(ratio_of "${med[$v.above]}" "${med[ctflowd.above]}")" \
			"(rt: ${med[ctflowd.rt_above]} s, ${med[$v.rt_above]} s," \
			"$(ratio_of "${med[$v.rt_above]}" "${med[ctflowd.rt_above]}"); goal <= 2)"
	done
	if [ "$n_variants" -gt 1 ] && [ -n "${med[ulogd.above]:-}" ]; then
		echo "journal: CPU above the floor (ratio to ulogd's ${med[ulogd.above]} s; rt in brackets), retries, drain time:"
		for v in $CTFLOWD_VARIANTS; do
			[ -n "${med[$v.cpu_s]:-}" ] || continue
			printf '  %-15s %6s s (%s; rt %s s, %s)  nl_drops %s  drain_s %s\n' "$v" "${med[$v.above]}" \
				"$(ratio_of "${med[$v.above]}" "${med[ulogd.above]}")" "${med[$v.rt_above]}" \
				"$(ratio_of "${med[$v.rt_above]}" "${med[ulogd.rt_above]}")" "${med[$v.nl_drops]}" \
				"${med[$v.drain_s]}"
		done
	fi
	# the formats' cost: each one's CPU above the floor against IPFIX's,
	# the floor of ctflowd's own way of reading when bare-batched ran
	local fl=above flr=rt_above fname=bare
	[ -n "${med[bare-batched.cpu_s]:-}" ] && fl=above_bb flr=rt_above_bb fname=bare-batched
	if [ -n "${med[ctflowd-ipfix.$fl]:-}" ]; then
		echo "formats: CPU above $fname (ratio to ctflowd-ipfix's ${med[ctflowd-ipfix.$fl]} s; rt in brackets);"
		echo "  the export thread's own CPU (median, ratio to ctflowd-ipfix's); the reader's; drain time:"
		for v in $FORMAT_VARIANTS ctflowd-syslog ctflowd-syslog-tcp; do
			[ -n "${med[$v.cpu_s]:-}" ] || continue
			printf '  %-18s %6s s (%s; rt %s s, %s)  export %s s (%s)  reader %s s  drain_s %s  records %s\n' \
				"$v" "${med[$v.$fl]}" \
				"$(ratio_of "${med[$v.$fl]}" "${med[ctflowd-ipfix.$fl]}")" "${med[$v.$flr]}" \
				"$(ratio_of "${med[$v.$flr]}" "${med[ctflowd-ipfix.$flr]}")" \
				"${med[$v.export_s]}" "$(ratio_of "${med[$v.export_s]}" "${med[ctflowd-ipfix.export_s]}")" \
				"${med[$v.reader_s]}" "${med[$v.drain_s]}" "${med[$v.records]}"
		done
	fi
	# the figure of merit is for ctflowd as it ships: batched sync
	local ct=ctflowd
	[ -z "${med[ctflowd.cpu_s]:-}" ] && [ -n "${med[ctflowd-batch.cpu_s]:-}" ] && ct=ctflowd-batch
	[ "$ct" = ctflowd ] || echo "figure of merit for $ct:"
	local cu=${med[$ct.above]:-na} uu=${med[ulogd.above]:-na}
	if [ "$cu" = na ] || [ "$uu" = na ]; then
		echo "figure of merit: needs bare, ulogd and ctflowd runs"
		return 0
	fi
	ratio=$(ratio_of "$cu" "$uu")
	ratio_rt=$(ratio_of "${med[$ct.rt_above]}" "${med[ulogd.rt_above]}")
	local verdict="not met"
	[ "$ratio" != na ] && awk -v r="$ratio" -v g="$GOAL" 'BEGIN { exit !(r <= g) }' && verdict=met
	# bare takes one event per poll() + recv(); a reader that takes many per
	# system call can cost less than that, and then the "floor" is not one
	# and the ratio says nothing beyond "cheaper than the floor".
	negative "$cu" && verdict="met, but ctflowd is below the floor: the ratio is not meaningful"
	echo "CPU above the floor: ulogd $uu s, ctflowd $cu s (floor: bare $floor s)"
	echo "figure of merit: ctflowd_above_floor / ulogd_above_floor = $ratio (goal <= $GOAL: $verdict)"
	echo "cross-check from sum_exec_runtime: ulogd ${med[ulogd.rt_above]} s, ctflowd ${med[$ct.rt_above]} s above the floor ($floor_rt s), ratio $ratio_rt"
	echo "per-round ratio from cpu_s: $(per_round cpu_s "$file" bare "$ct")"
	echo "per-round ratio from rt_s:  $(per_round rt_s "$file" bare "$ct")"
	if [ "$bb" != na ]; then
		local cb=${med[$ct.above_bb]} ub=${med[ulogd.above_bb]}
		local cb_rt=${med[$ct.rt_above_bb]} ub_rt=${med[ulogd.rt_above_bb]}
		# bare-batched reads the way ctflowd reads: what ctflowd spends
		# above it is what it does with the events.  ulogd reads like bare,
		# so its own work is its CPU above bare; the last ratio sets each
		# exporter's own work against the floor of its own way of reading.
		echo "against bare-batched (reads the way ctflowd does; floor $bb s, rt $bb_rt s; bare - bare-batched = $(minus "$floor" "$bb" 2) s):"
		echo "  CPU above it: ulogd $ub s, ctflowd $cb s (rt: ulogd $ub_rt s, ctflowd $cb_rt s)"
		echo "  figure of merit against bare-batched: $(ratio_of "$cb" "$ub") (rt: $(ratio_of "$cb_rt" "$ub_rt"))"
		echo "  each above the floor of its own way of reading, ctflowd over bare-batched / ulogd over bare: $(ratio_of "$cb" "$uu") (rt: $(ratio_of "$cb_rt" "${med[ulogd.rt_above]}"))"
		echo "  per-round ratio from cpu_s: $(per_round cpu_s "$file" bare-batched "$ct")"
		echo "  per-round ratio from rt_s:  $(per_round rt_s "$file" bare-batched "$ct")"
		negative "$cb" && echo "  (ctflowd is below bare-batched: it reads more cheaply than its floor)"
	fi
	echo "lost in total: bare ${tot_lost[bare]:-na}, bare-batched ${tot_lost[bare-batched]:-na}," \
		"ulogd ${tot_lost[ulogd]:-na}, $ct ${tot_lost[$ct]:-na};" \
		"duplicated in total: ulogd ${tot_dup[ulogd]:-na}, $ct ${tot_dup[$ct]:-na}"
	for v in $CTFLOWD_VARIANTS ctflowd-alt; do
		[ "$v" != "$ct" ] && [ -n "${tot_lost[$v]:-}" ] &&
			echo "lost / duplicated in total, $v: ${tot_lost[$v]} / ${tot_dup[$v]}"
	done
	return 0
}

if [ "${1:-}" = --summary ]; then
	[ -r "${2:-}" ] || { echo "usage: $0 --summary RESULTS_FILE" >&2; exit 2; }
	summary "$2"
	exit 0
fi
[ $# = 0 ] || { echo "usage: $0 [--summary RESULTS_FILE]" >&2; exit 2; }

# ------------------------------------------------------------------ checks

[[ $MTU =~ ^([0-9]+|default)$ ]] || { echo "MTU must be a number or default" >&2; exit 2; }
[[ $CTFLOWD_MTU =~ ^([0-9]+|auto|)$ ]] || { echo "CTFLOWD_MTU must be a number or auto" >&2; exit 2; }
for v in ROUNDS N RCVBUF PKTS LEN QUIET_S MAX_DRAIN_S SENTINELS PORT; do
	[[ ${!v} =~ ^[0-9]+$ ]] && [ "${!v}" -gt 0 ] || { echo "$v must be a positive integer, got '${!v}'" >&2; exit 2; }
done
# the router's table holds nf_conntrack_max entries (262144, read-only in a
# namespace); a run larger than that would measure drops, not export
[ "$N" -le 250000 ] || { echo "N=$N: at most 250000 flows fit in the conntrack table" >&2; exit 2; }
for e in $EXPORTERS; do
	case " $ALL_EXPORTERS " in *" $e "*) ;; *) echo "unknown exporter '$e' (known: $ALL_EXPORTERS)" >&2; exit 2 ;; esac
done
DPORT_HI=$((DPORT_LO + (N - 1) / PER_DPORT))

# The message size each IPFIX exporter is configured with; empty = no mtu
# key, i.e. the exporter's own default.
ULOGD_MTU= CTFLOWD_MTU_SET=
[ "$MTU" != default ] && ULOGD_MTU=$MTU CTFLOWD_MTU_SET=$MTU
[ -n "$CTFLOWD_MTU" ] && CTFLOWD_MTU_SET=$CTFLOWD_MTU
if [ "$MTU" = default ]; then
	MTU_MODE="own defaults: ulogd no mtu key (its IPFIX default, 512)"
else
	MTU_MODE="forced: ulogd mtu=$MTU"
fi
if [ -n "$CTFLOWD_MTU_SET" ]; then
	MTU_MODE+=", ctflowd mtu = $CTFLOWD_MTU_SET"
else
	MTU_MODE+=", ctflowd no mtu key (auto: the route's MTU, at most 1500: 1472-byte datagrams on lo)"
fi

# lib.sh names its namespaces ctf-PID; a distinct prefix tells a benchmark's
# test bed apart from a concurrent integration test's.
CTF_PREFIX=ctfb-$$
NS_CLI=$CTF_PREFIX-cli
NS_RTR=$CTF_PREFIX-rtr
NS_SRV=$CTF_PREFIX-srv

ctf_require_root
ctf_require_cmd taskset ss nfcapd nfdump conntrack "$FLOWGEN"
[ "$(getconf _NPROCESSORS_ONLN)" -ge 2 ] || { echo "needs 2 CPUs (exporter on CPU 1)" >&2; exit 2; }
PLUGDIR=
for e in $EXPORTERS; do
	case $e in
	bare | bare-batched) ctf_require_cmd "$CTLISTEN" ;;
	ctflowd-alt) ctf_require_cmd "$CTFLOWD_ALT" ;;
	ctflowd*) ctf_require_cmd "$CTFLOWD" ;;
	ulogd)
		ctf_require_cmd ulogd
		PLUGDIR=$(dirname "$(find /usr/lib /usr/local/lib -name ulogd_inpflow_NFCT.so 2>/dev/null | head -1)")
		[ -e "$PLUGDIR/ulogd_output_IPFIX.so" ] || { echo "ulogd NFCT/IPFIX plugins not found" >&2; exit 2; }
		;;
	esac
done

# The harness itself (polling, ss, nfdump) stays on CPU 0 with the workload;
# everything it starts inherits that, except the exporter, placed on CPU 1.
taskset -pc 0 $$ >/dev/null || { echo "cannot pin the harness to CPU 0" >&2; exit 2; }
GEN_TS=(taskset -c 0)
EXP_TS=(taskset -c 1)

mkdir -p "$RESULTS_DIR" || exit 2
STEM=$RESULTS_DIR/flush-$(date +%Y%m%d-%H%M%S)-n$N-r$ROUNDS-rb$RCVBUF-mtu${MTU/default/def}-sync$SPOOL_SYNC
RAW=$STEM.txt
ART=$STEM
mkdir -p "$ART" || exit 2

{
	echo "# flush-bench $(date -u +%Y-%m-%dT%H:%M:%SZ) ROUNDS=$ROUNDS N=$N RCVBUF=$RCVBUF PKTS=$PKTS LEN=$LEN MTU=$MTU CTFLOWD_MTU=$CTFLOWD_MTU SPOOL_SYNC=$SPOOL_SYNC QUIET_S=$QUIET_S EXPORTERS=\"$EXPORTERS\""
	echo "# MTU mode: $MTU_MODE"
	echo "# kernel $(uname -r), $(getconf _NPROCESSORS_ONLN) CPUs; ctflowd: $("$CTFLOWD" -V 2>/dev/null) ($CTFLOWD, git $(git -C "$SRCDIR" describe --always --dirty 2>/dev/null))"
	[ -z "$CTFLOWD_ALT" ] || echo "# ctflowd-alt: $CTFLOWD_ALT"
	echo "# $(dpkg-query -W -f '${Package} ${Version}; ' ulogd2 nfdump conntrack nftables 2>/dev/null)"
} >"$RAW"
cat "$RAW"

ctf_setup
[ "$KEEP" = 1 ] && CTF_KEEP=1
if [ -n "${COLLECTOR_CPU:-}" ]; then
	mask=$(printf '%x' $((1 << COLLECTOR_CPU)))
	ctf_nsx "$NS_RTR" sh -c "echo $mask >/sys/class/net/lo/queues/rx-0/rps_cpus" ||
		ctf_bail "cannot steer the router's loopback receive to CPU $COLLECTOR_CPU"
	echo "# the router's loopback receives on CPU $COLLECTOR_CPU (rps_cpus $mask)" | tee -a "$RAW"
fi

# Others rebuild build/ while a benchmark runs: every round must run the
# same binaries, so run copies taken now.
mkdir -p "$CTF_WORK/bin"
for v in CTFLOWD CTFLOWD_ALT CTLISTEN FLOWGEN; do
	[ -n "${!v}" ] && [ -x "${!v}" ] || continue
	cp "${!v}" "$CTF_WORK/bin/${v,,}" || ctf_bail "cannot copy ${!v}"
	# the hash of the copy: the one that runs, even if build/ changed since
	echo "# $v ${!v} sha256 $(sha256sum "$CTF_WORK/bin/${v,,}" | cut -c1-16)" | tee -a "$RAW"
	printf -v "$v" '%s' "$CTF_WORK/bin/${v,,}"
done

# ------------------------------------------------------------------ one run

write_ulogd_conf() {   # FILE LOGFILE
	cat >"$1" <<-EOF
	[global]
	logfile="$2"
	loglevel=3
	plugin="$PLUGDIR/ulogd_inpflow_NFCT.so"
	plugin="$PLUGDIR/ulogd_output_IPFIX.so"
	stack=ct1:NFCT,ipfix1:IPFIX

	[ct1]
	# DESTROY only, no hash table (it also needs NEW events), and reliable
	# delivery, as ctflowd is configured.
	hash_enable=0
	event_mask=4
	reliable=1
	# ulogd ignores the size unless the maximum is larger; one byte more
	# also keeps it from growing the buffer.
	netlink_socket_buffer_size=$RCVBUF
	netlink_socket_buffer_maxsize=$((RCVBUF + 1))

	[ipfix1]
	oid=1
	host="127.0.0.1"
	port=$PORT
	proto="udp"
	send_template="once"
	EOF
	[ -z "$ULOGD_MTU" ] || echo "mtu=$ULOGD_MTU" >>"$1"
}

write_ctflowd_conf() {   # FILE STATE_DIR SPOOL_SYNC [FORMAT [TRANSPORT [SOURCE_LINES]]]
	cat >"$1" <<-EOF
	[daemon]
	state_directory = $2
	stats_interval = 0
	# Stopped, ctflowd would otherwise leave a holder process with the
	# event socket for a successor (60 s by default): the next run would
	# start with its events queued, and the holder would be a second
	# DESTROY listener in the namespace.
	handover_timeout = 0
	spool_sync = $3

	[source]
	receive_buffer = $RCVBUF
	reliable = yes
	${6:-}

	[export collector]
	format = ${4:-ipfix}
	flush_interval = 1s
	EOF
	if [ "${4:-ipfix}" = json ]; then
		printf 'transport = file\npath = %s\n' "$2/flows.json" >>"$1"
		return
	fi
	printf 'transport = %s\ndestination = 127.0.0.1:%s\n' "${5:-udp}" "$PORT" >>"$1"
	[ -z "$CTFLOWD_MTU_SET" ] || echo "mtu = $CTFLOWD_MTU_SET" >>"$1"
}

# anomalies NFDUMP_TEXT: the measured flows missing from, or repeated in,
# what the collector received (first 2000 lines)
anomalies() {
	awk -v n="$N" -v s0=$SPORT_LO -v d0=$DPORT_LO -v per=$PER_DPORT '
		{ c[$3 " " $5]++ }
		END {
			for (i = 0; i < n; i++) {
				k = (s0 + i % per) " " (d0 + int(i / per))
				if (!(k in c)) print "missing sport/dport", k
			}
			for (k in c) if (c[k] > 1) print "repeated sport/dport", k, "times", c[k]
		}' "$1" | head -2000
}

# run_one ROUND EXPORTER: one measurement; appends its line to $RAW
run_one() {
	local round=$1 exp=$2 dir tag pid nfcapd log conf out rc tcp_sink=
	tag=r$round-$exp
	dir=$CTF_WORK/$tag
	mkdir -p "$dir" "$ART/$tag"

	# a clean table, emptied while nobody listens (no events)
	ctf_ct_flush
	bench_wait_ct_empty 30 || ctf_bail "$tag: the router's table does not empty"

	# nfcapd refuses a directory that is not there yet
	mkdir -p "$dir/nf"
	ctf_spawn "$NS_RTR" "$dir/nfcapd.log" "${GEN_TS[@]}" nfcapd -w "$dir/nf" -p "$PORT" \
		-b 127.0.0.1 -B 33554432 -t 3600
	nfcapd=$CTF_LAST_PID
	ctf_wait_udp_port "$NS_RTR" "$PORT" 10 || { cat "$dir/nfcapd.log"; ctf_bail "$tag: nfcapd does not listen"; }

	case $exp in
	bare | bare-batched)
		log=$dir/$exp.out
		local batched=()
		[ "$exp" = bare-batched ] && batched=(-M)
		# -i/-T: it must not leave on its own before it is measured
		ctf_spawn "$NS_RTR" "$log" "${EXP_TS[@]}" "$CTLISTEN" -b "$RCVBUF" -R "${batched[@]}" \
			-i 86400 -T 86400 -r "$dir/ready"
		pid=$CTF_LAST_PID
		ctf_wait_file "$dir/ready" 10 || { cat "$log"; ctf_bail "$tag: ctlisten did not start"; }
		;;
	ulogd)
		log=$dir/ulogd.log conf=$dir/ulogd.conf
		write_ulogd_conf "$conf" "$log"
		ctf_spawn "$NS_RTR" "$dir/ulogd.stdout" "${EXP_TS[@]}" ulogd -c "$conf"
		pid=$CTF_LAST_PID
		ctf_wait_ct_listener "$pid" 10 || { cat "$log" "$dir/ulogd.stdout"; ctf_bail "$tag: ulogd did not start"; }
		for _ in $(seq 50); do grep -q "entering main loop" "$log" 2>/dev/null && break; sleep 0.1; done
		# ulogd 2.0.8 arms its IPFIX flush timer once, at start: let it
		# fire on an empty message rather than in the middle of the run
		sleep 1.3
		;;
	ctflowd*)
		log=$dir/ctflowd.log conf=$dir/ctflowd.conf
		local sync=${exp#ctflowd-} bin=$CTFLOWD
		[ "$exp" = ctflowd ] && sync=$SPOOL_SYNC
		local format=ipfix transport=udp
		[ "$exp" = ctflowd-alt ] && sync=$SPOOL_SYNC bin=$CTFLOWD_ALT
		[ "$exp" = ctflowd-syslog ] && sync=$SPOOL_SYNC format=syslog
		if [ "$exp" = ctflowd-syslog-tcp ]; then
			sync=$SPOOL_SYNC format=syslog transport=tcp
			# a reader that discards, so that acknowledgements keep coming
			ctf_spawn "$NS_RTR" "$dir/tcp-sink.log" "${GEN_TS[@]}" "$PYTHON" -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(4)
while True:
    c, _ = s.accept()
    while c.recv(1 << 20):
        pass
    c.close()' "$PORT"
			tcp_sink=$CTF_LAST_PID
			for _ in $(seq 50); do
				[ -n "$(ctf_nsx "$NS_RTR" ss -H -tln "sport = :$PORT")" ] && break
				sleep 0.1
			done
		fi
		# ctflowd-walk: a table walk every 2.5 s through the run (each
		# reads every entry; none is old enough for an interim record);
		# a walk of 200,000 entries takes most of a second, so one mostly
		# overlaps the flush, and the exporter is still idle between
		# walks for QUIET_S
		local walk=
		[ "$exp" = ctflowd-walk ] && sync=$SPOOL_SYNC \
			walk=$'active_timeout = 10m\nwalk_interval = 2500ms'
		case " $FORMAT_VARIANTS " in *" $exp "*) sync=$SPOOL_SYNC format=${exp#ctflowd-} ;; esac
		write_ctflowd_conf "$conf" "$dir/state" "$sync" "$format" "$transport" "$walk"
		ctf_spawn "$NS_RTR" "$log" "${EXP_TS[@]}" "$bin" -f -c "$conf"
		pid=$CTF_LAST_PID
		ctf_wait_ct_listener "$pid" 10 || { cat "$log"; ctf_bail "$tag: ctflowd did not start"; }
		# the supervisor opens the socket, then forks the worker that reads
		# it: the tree must be complete before the first CPU sample
		local t
		for ((t = 0; t < 100; t++)); do
			[ "$(wc -w <<<"$(bench_tree "$pid")")" -ge 2 ] && break
			sleep 0.1
		done
		[ "$t" -lt 100 ] || { cat "$log"; ctf_bail "$tag: ctflowd started no worker"; }
		;;
	esac
	local rb_eff nl_drops0 nl_drops
	read -r rb_eff nl_drops0 <<<"$(bench_nl_sock)"
	[ "$rb_eff" = $((2 * RCVBUF)) ] ||
		echo "# warning: $tag: DESTROY socket receive buffer is $rb_eff, expected $((2 * RCVBUF))" | tee -a "$RAW"
	sleep 0.5   # start-up work done

	# ---- measured part: workload, flush, drain
	local load nf0 rcverr0 udp0 u0 s0 u1 s1 ns0 ns1 top0 top1 tree0 tree1 gen gen_rc created
	local t_flush t_flushed
	load=$(cut -d' ' -f1 /proc/loadavg)
	nf0=$(ctf_newflows); rcverr0=$(ctf_udp_rcvbuf_errors); udp0=$(bench_udp_in)
	# CPU of the whole process tree (see lib-bench.sh); the started process
	# alone (top) is kept as well, so that a worker's share can be told
	tree0=$(bench_tree "$pid")
	read -r u0 s0 <<<"$(bench_cpu $tree0)"
	ns0=$(bench_runtime_ns $tree0)
	top0=$(bench_runtime_ns "$pid")
	bench_tree_detail $tree0 >"$ART/$tag/cpu-tree-start.txt"
	bench_thread_detail $tree0 >"$ART/$tag/cpu-threads-start.txt"
	gen=$(ctf_nsx "$NS_CLI" "${GEN_TS[@]}" "$FLOWGEN" udp -d "$SRV_IP" -n "$N" -P "$PKTS" -l "$LEN" \
		-p $DPORT_LO -S $SPORT_LO 2>&1)
	gen_rc=$?
	echo "$gen" >"$dir/flowgen.out"
	created=$(($(ctf_newflows) - nf0))
	[ "$gen_rc" = 0 ] || echo "# warning: $tag: flowgen failed ($gen_rc): $gen" | tee -a "$RAW"

	t_flush=$(bench_now_us)
	ctf_nsx "$NS_RTR" "${GEN_TS[@]}" conntrack -F >/dev/null 2>&1
	t_flushed=$(bench_now_us)
	# entries parked for the reliable listener still count: empty means
	# every DESTROY was handed over
	bench_wait_ct_empty "$MAX_DRAIN_S" ||
		echo "# warning: $tag: $(ctf_ct_count) entries left after ${MAX_DRAIN_S}s" | tee -a "$RAW"
	bench_wait_idle "$pid" "$QUIET_S" "$MAX_DRAIN_S" ||
		echo "# warning: $tag: exporter not idle after ${MAX_DRAIN_S}s (or gone)" | tee -a "$RAW"
	tree1=$(bench_tree "$pid") || echo "# warning: $tag: the exporter is gone" | tee -a "$RAW"
	read -r u1 s1 <<<"$(bench_cpu $tree1)"
	ns1=$(bench_runtime_ns $tree1)
	top1=$(bench_runtime_ns "$pid")
	bench_tree_detail $tree1 >"$ART/$tag/cpu-tree-end.txt"
	bench_thread_detail $tree1 >"$ART/$tag/cpu-threads-end.txt"
	[ "$tree0" = "$tree1" ] ||
		echo "# warning: $tag: the process tree changed during the run: $tree0 -> $tree1" | tee -a "$RAW"
	local rss drain_us
	rss=$(bench_hwm $tree1)
	read -r _ nl_drops <<<"$(bench_nl_sock)"
	drain_us=$((BENCH_LAST_BUSY_US - t_flush)); ((drain_us < 0)) && drain_us=0
	# ---- end of the measured part

	if [ "$exp" = ulogd ]; then
		# ulogd sends a message only once it is full: more flows (outside
		# the measured ports) push out the one holding the last records
		ctf_nsx "$NS_CLI" "$FLOWGEN" udp -d "$SRV_IP" -n "$SENTINELS" -P 1 -l 10 \
			-p $SENTINEL_DPORT -S $SPORT_LO >"$dir/sentinel.out" 2>&1
		ctf_ct_flush
		bench_wait_ct_empty 30
		bench_wait_idle "$pid" "$QUIET_S" 60
	fi
	ctf_stop "$pid" 20
	rc=$CTF_STOP_STATUS
	[ "$CTF_STOP_KILLED" = 1 ] && rc=killed
	sleep 0.3   # the last datagrams reach nfcapd
	ctf_stop "$nfcapd" 10
	[ -z "$tcp_sink" ] || ctf_stop "$tcp_sink" 5
	local coll_drops=$(($(ctf_udp_rcvbuf_errors) - rcverr0)) msgs=$(($(bench_udp_in) - udp0))

	# ---- count
	local records=na distinct=na lost dup=na exact=na seqfail=na ev=na dedup=na overruns=na reads=na
	if [ "$exp" = bare ] || [ "$exp" = bare-batched ]; then
		out=$(tail -n 1 "$log")
		records=$(ctf_kv destroys "$out")
		reads=$(ctf_kv reads "$out")   # recv() / recvmmsg() calls that returned events
		ev=$records
		lost=$((created - ${records:-0}))
	elif [ "$exp" = ctflowd-syslog ]; then
		# one datagram per record; nfcapd cannot decode syslog
		records=$msgs
		lost=$((created - records))
	elif [ "$exp" = ctflowd-syslog-tcp ]; then
		records=$(grep 'final:' "$log" | tail -n 1 | grep -o 'export collector: records [0-9]*' | awk '{ print $4 }')
		lost=$((created - ${records:-0}))
	else
		if [ "$exp" = ctflowd-json ]; then
			# the same fields from the JSON lines, as nfdump prints them
			"$PYTHON" -c 'import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if "flow_id" in r and r["proto"] == 17 and int(sys.argv[2]) <= r["dport"] <= int(sys.argv[3]):
        print(r["proto"], r["src"], r["sport"], r["dst"], r["dport"], r["packets"], r["bytes"])' \
				"$dir/state/flows.json" "$DPORT_LO" "$DPORT_HI" >"$dir/nfdump.txt" 2>"$dir/nfdump.err"
		else
			nfdump -R "$dir/nf" -q -N -o "fmt:%pr %sa %sp %da %dp %ipkt %ibyt" \
				"proto udp and dst port >= $DPORT_LO and dst port <= $DPORT_HI" \
				>"$dir/nfdump.txt" 2>"$dir/nfdump.err"
		fi
		records=$(grep -c . "$dir/nfdump.txt")
		distinct=$(awk '{ print $1, $2, $3, $4, $5 }' "$dir/nfdump.txt" | sort -u | wc -l)
		exact=$(awk -v p="$PKTS" -v b="$BYTES" '$6 == p && $7 == b' "$dir/nfdump.txt" | wc -l)
		lost=$((created - distinct))
		dup=$((records - distinct))
		nfdump -R "$dir/nf" -I >"$ART/$tag/nfdump-stat.txt" 2>&1
		seqfail=$(awk '/^Sequence failures:/ { print $3 }' "$ART/$tag/nfdump-stat.txt")
		if [ "$lost" != 0 ] || [ "$dup" != 0 ]; then
			anomalies "$dir/nfdump.txt" >"$ART/$tag/anomalies.txt"
		fi
		if [[ $exp == ctflowd* ]]; then
			# "final: destroy events E, duplicates D, accepted A, malformed M,
			#  overruns O in B bursts, ..."
			out=$(grep 'final:' "$log" | tail -n 1)
			ev=$(sed -n 's/.*destroy events \([0-9]*\).*/\1/p' <<<"$out")
			dedup=$(sed -n 's/.*duplicates \([0-9]*\).*/\1/p' <<<"$out")
			overruns=$(sed -n 's/.*overruns \([0-9]*\).*/\1/p' <<<"$out")
		fi
	fi
	for f in "$conf" "$log" "$dir/ulogd.stdout" "$dir/nfcapd.log" "$dir/flowgen.out" "$dir/sentinel.out"; do
		[ -n "$f" ] && [ -s "$f" ] && cp "$f" "$ART/$tag/"
	done
	[ "$KEEP" = 1 ] || rm -rf "$dir/nf" "$dir/nfdump.txt"

	local line mtu=na
	case $exp in
	ulogd) mtu=${ULOGD_MTU:-default} ;;
	ctflowd*) mtu=${CTFLOWD_MTU_SET:-default} ;;
	esac
	line="round=$round exporter=$exp n=$N rcvbuf=$RCVBUF rb_eff=$rb_eff mtu=$mtu created=$created"
	line+=" records=${records:-na} distinct=$distinct lost=$lost dup=$dup exact=$exact"
	line+=" user_s=$(bench_ticks_s $((u1 - u0))) sys_s=$(bench_ticks_s $((s1 - s0)))"
	line+=" cpu_s=$(bench_ticks_s $((u1 - u0 + s1 - s0)))"
	line+=" rt_s=$(awk -v d=$((ns1 - ns0)) 'BEGIN { printf "%.3f", d / 1e9 }')"
	line+=" top_rt_s=$(awk -v d=$((top1 - top0)) 'BEGIN { printf "%.3f", d / 1e9 }')"
	line+=" procs=$(wc -w <<<"$tree1") rss_kb=${rss:-na} msgs=$msgs"
	line+=" gen_s=$(ctf_kv elapsed_s "$gen") flush_s=$(awk -v d=$((t_flushed - t_flush)) 'BEGIN { printf "%.2f", d / 1e6 }')"
	line+=" drain_s=$(awk -v d=$drain_us 'BEGIN { printf "%.2f", d / 1e6 }')"
	line+=" nl_drops=$((${nl_drops:-0} - ${nl_drops0:-0})) coll_drops=$coll_drops seqfail=${seqfail:-na}"
	line+=" ev=${ev:-na} dedup=${dedup:-na} overruns=${overruns:-na} reads=${reads:-na}"
	# ctflowd's CPU split: its export threads and its DESTROY reader
	line+=" export_s=$(bench_thread_s "$ART/$tag/cpu-threads-start.txt" "$ART/$tag/cpu-threads-end.txt" '^export-')"
	line+=" reader_s=$(bench_thread_s "$ART/$tag/cpu-threads-start.txt" "$ART/$tag/cpu-threads-end.txt" '^reader$')"
	line+=" exit=$rc load=$load"
	echo "$line" | tee -a "$RAW"
}

# ------------------------------------------------------------------ main

T0=$(bench_now_us)
for ((r = 1; r <= ROUNDS; r++)); do
	for e in $EXPORTERS; do run_one "$r" "$e"; done
done
echo
SUM=$(summary "$RAW")
echo "$SUM"
sed 's/^/# /' <<<"$SUM" >>"$RAW"
echo "# took $(( ($(bench_now_us) - T0) / 1000000 )) s" | tee -a "$RAW"
echo "results: $RAW (logs: $ART/)"
exit 0
