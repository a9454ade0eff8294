#!/bin/bash
# fdstore_restart.sh - under a service manager, a restart loses no flow: the
# conntrack event socket waits in the manager's file descriptor store.
#
# fake_systemd.py stands in for systemd (see its header), set up like the
# shipped packaging/ctflowd.service (FileDescriptorStoreMax=, KillMode=,
# TimeoutStopSec=): it runs
#   ip netns exec ROUTER ctflowd -f -c CONF
# as a Type=notify service with NOTIFY_SOCKET, keeps what ctflowd stores with
# FDSTORE=1, and on a restart stops ctflowd (SIGTERM), waits until it is
# gone, and starts it again with the stored descriptors (LISTEN_FDS,
# LISTEN_FDNAMES, LISTEN_PID).  handover_timeout is 0, so nothing but the
# store keeps the socket open between the two ctflowd.
#
#   workload   5 batches of 10,000 two-packet IPv4 UDP flows (dport 20000+b,
#              sports 1024..11023), each followed by `conntrack -F`, one
#              every second or so; 50,000 flows in all
#   restart    after batch 1, the stand-in restarts ctflowd with a gap of
#              RESTART_GAP seconds between stop and start; the batches go
#              on meanwhile, and batch 3 waits until the first ctflowd is
#              gone, so its 10,000 DESTROYs happen while no ctflowd runs
#
# Judged: the first ctflowd stored the socket (FDSTORE=1, FDNAME=ctnetlink),
# said READY=1 and, when stopped, STOPPING=1 and exited 0; the second got the
# socket back at fd 3 with LISTEN_PID equal to its own pid, said READY=1, and
# logged that it took the socket over from the descriptor store; the store
# kept the socket throughout; every one of the 50,000 flows reached nfcapd
# (nfdump) and the IPFIX file (ipfix_verify.py) exactly once by 5-tuple with
# exact counters, flowIds unique.
#
# Then, for comparison, the same again (dports 30000+b) with a restart that
# does not pass the store (as a full stop and start would): the flows lost in
# that gap are reported, not judged (CTF_FDSTORE_CONTROL=0 skips it).
#
# Environment: see lib.sh; CTF_FDSTORE_POLL=0 makes the stand-in not close
# stored descriptors on POLLERR/POLLHUP (systemd has no such switch; it
# helps to tell causes apart).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ctf_require_root
ctf_require_cmd nfcapd nfdump "$PYTHON" "$CTLISTEN" "$CTFLOWD"
export TZ=UTC   # nfdump prints local time; the scorer reads UTC

BATCHES=5 N_BATCH=10000 PKTS=2 LEN=50 SPORT=1024
N=$((BATCHES * N_BATCH))
MAIN_DPORT=20000 CTRL_DPORT=30000
FWD_BYTES=$((PKTS * (28 + LEN)))
PORT=4739
PAUSE=1            # seconds between batches
RESTART_GAP=3      # seconds between the stop and the start of a restart
GAP_BATCH=3        # this batch waits until no ctflowd runs
CONTROL=${CTF_FDSTORE_CONTROL:-1}

T_BEGIN=$(ctf_now)
ctf_setup
DIR=$CTF_WORK/fdstore
SD=$DIR/manager
mkdir -p "$DIR" "$SD"
CONF=$DIR/ctflowd.conf EXPORT=$DIR/export.ipfix EVENTS=$SD/events.log
CTFLOWD_EXE=$(readlink -f "$CTFLOWD")

# ------------------------------------------------------------------ helpers

# ev REGEX: the stand-in's event lines matching REGEX (extended)
ev() { grep -E "$1" "$EVENTS" 2>/dev/null; }
# wait_ev REGEX MAX_S: wait until an event line matches
wait_ev() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do ev "$1" >/dev/null && return 0; sleep 0.1; done
	return 1
}
# start_pid N: pid of the N-th start
start_pid() { ev " start n=$1 " | sed -n 's/.* pid=\([0-9]*\) .*/\1/p' | head -1; }
ev_time() { printf '%s\n' "$1" | awk '{ print $1 }'; }

# phases TIMELINE T_STOP T_STOPPED T_START: when each batch's flush ran,
# relative to the restart
phases() {
	awk -v a="$2" -v b="$3" -v c="$4" '
		function ph(t) { return t < a ? "ctflowd 1 running" : t < b ? "ctflowd 1 stopping" : t < c ? "no ctflowd" : "ctflowd 2 running" }
		{ s = ph($3); e = ph($4)
		  printf "batch %d (dport +%d): flush %.2f s, during: %s%s\n", $1, $1, $4 - $3, s, (e == s ? "" : " .. " e) }' "$1"
}

# distinct_flows INPUT FILE BASE_DPORT: distinct flows of the batches
distinct_flows() {
	local b s=0 n
	for ((b = 0; b < BATCHES; b++)); do
		n=$(ctf_seen_sports "$1" "$2" $(($3 + b)) | awk -v lo=$SPORT -v hi=$((SPORT + N_BATCH - 1)) '$1 >= lo && $1 <= hi' | wc -l)
		s=$((s + n))
	done
	echo $s
}

# verify VIEW INPUT FILE [EXTRA...]: one decoder's view of the export, as
# separate checks on the main run's flows
verify() {
	local view=$1 input=$2 file=$3 sum cls; shift 3
	ctf_ipfix_verify "$view" "$file" main --input "$input" --seq report \
		--expect "name=main proto=17 family=4 src=$CLI_IP dst=$SRV_IP dport=$MAIN_DPORT-$((MAIN_DPORT + BATCHES - 1)) sport=$SPORT-$((SPORT + N_BATCH - 1)) count=$N pkts=$PKTS bytes=$FWD_BYTES rpkts=0 rbytes=0" \
		--expect "name=control proto=17 family=4 src=$CLI_IP dst=$SRV_IP dport=$CTRL_DPORT-$((CTRL_DPORT + BATCHES - 1)) sport=$SPORT-$((SPORT + N_BATCH - 1)) count=$N pkts=$PKTS bytes=$FWD_BYTES rpkts=0 rbytes=0" \
		--t0 "$W_T0" --t1 "$W_T1" --window "$WINDOW" "$@" || return
	sum=$CTF_V_SUM cls=$CTF_V_CLS
	local distinct other
	distinct=$(ctf_kv distinct "$cls"); other=$(ctf_kv unmatched_records "$sum")
	if [ "$distinct" = $N ] && [ "$other" = 0 ]; then
		ctf_ok "$view: all $N flows of the run with the restart arrived, no record of any other flow"
	else
		local lines
		mapfile -t lines < <(ctf_batch_gaps "$input" "$file" $MAIN_DPORT $BATCHES $SPORT $N_BATCH)
		ctf_not_ok "$view: all $N flows of the run with the restart arrived, no record of any other flow" \
			"$distinct of $N distinct flows, $other records of other flows" "${lines[@]}"
	fi
	ctf_verify_exact "$view" "$input" $PKTS $FWD_BYTES
}

# check_start N: the N-th start ran ctflowd as the main process, said READY=1
# and listens; sets P
check_start() {
	local n=$1 i env_pid
	P=
	if ! wait_ev " start n=$n " 30; then
		ctf_not_ok "the stand-in starts ctflowd (start $n)"; return 1
	fi
	P=$(start_pid "$n")
	if wait_ev " notify pid=$P .*accepted=1.* READY=1( |$)" 15; then
		ctf_ok "start $n: ctflowd (pid $P) says READY=1 ($(ev " start n=$n " | awk '{ print $5, $6 }'))"
	else
		ctf_not_ok "start $n: ctflowd (pid $P) says READY=1 within 15 s"
		ctf_diag_file "$SD/service-$n.log" 20
		return 1
	fi
	ctf_is "$(readlink /proc/"$P"/exe 2>/dev/null)" "$CTFLOWD_EXE" \
		"start $n: the main process $P is ctflowd itself (ip netns exec execs in place)"
	ctf_check "start $n: ctflowd $P listens for DESTROY events" ctf_wait_ct_listener "$P" 10
	return 0
}

# ------------------------------------------------------------------ start

ctf_start_nfcapd "$DIR/nf" $PORT; NFCAPD=$CTF_LAST_PID
ctf_start_witness "$DIR"; WITNESS=$CTF_LAST_PID

CTF_HANDOVER=0 ctf_ctflowd_conf "$CONF"
ctf_conf_udp_and_file "$CONF" $PORT "$EXPORT"
grep -q '^handover_timeout = 0$' "$CONF" || ctf_bail "configuration without handover_timeout = 0"

# The stand-in is set up like the shipped unit: FileDescriptorStoreMax=,
# KillMode= and TimeoutStopSec= come from packaging/ctflowd.service.
UNIT=$SRCDIR/packaging/ctflowd.service
unit_value() { [ -r "$UNIT" ] && sed -n "s/^$1=[[:space:]]*//p" "$UNIT" | tail -1; }
FDSTORE_MAX=$(unit_value FileDescriptorStoreMax)
[[ $FDSTORE_MAX =~ ^[0-9]+$ ]] || FDSTORE_MAX=1
KILL_MODE=$(unit_value KillMode)
case $KILL_MODE in control-group|mixed) ;; *) KILL_MODE=control-group ;; esac
TIMEOUT_STOP=$(unit_value TimeoutStopSec)
TIMEOUT_STOP=${TIMEOUT_STOP%s}
[[ $TIMEOUT_STOP =~ ^[0-9]+$ ]] || TIMEOUT_STOP=90
ctf_diag "service manager stand-in: FileDescriptorStoreMax=$FDSTORE_MAX KillMode=$KILL_MODE TimeoutStopSec=${TIMEOUT_STOP}s ($( [ -r "$UNIT" ] && echo "from $UNIT" || echo "no unit file; defaults"))"
SD_OPTS=(--dir "$SD" --fdstore-max "$FDSTORE_MAX" --kill-mode "$KILL_MODE" --timeout-stop "$TIMEOUT_STOP")
[ "${CTF_FDSTORE_POLL:-1}" = 0 ] && SD_OPTS+=(--no-fdpoll)
# the stand-in lives in the test's own namespace, like a service manager;
# the service it runs enters the router namespace
"$PYTHON" "$CTF_LIB_DIR/fake_systemd.py" "${SD_OPTS[@]}" -- \
	ip netns exec "$NS_RTR" "$CTFLOWD" -f -c "$CONF" </dev/null >"$SD/manager.log" 2>&1 &
MANAGER=$!
CTF_PIDS+=("$MANAGER")
wait_ev " manager " 10 || { ctf_diag_file "$SD/manager.log"; ctf_bail "the stand-in did not start"; }

check_start 1 || ctf_bail "ctflowd did not start under the stand-in"
P1=$P
line=$(ev " notify pid=$P1 .*FDSTORE=1")
if printf '%s\n' "$line" | grep -Eq "accepted=1 fds=1 .*FDSTORE=1.* FDNAME=ctnetlink( |$)" &&
	ev " fdstore-add name=ctnetlink " >/dev/null; then
	ctf_ok "ctflowd stores one descriptor with FDSTORE=1 FDNAME=ctnetlink"
else
	ctf_not_ok "ctflowd stores one descriptor with FDSTORE=1 FDNAME=ctnetlink" "notify: ${line:-none}"
fi
printf '%s\n' "$line" | grep -q 'FDPOLL=0' ||
	ctf_diag "the FDSTORE message carries no FDPOLL=0: the manager closes the stored socket on POLLERR (a netlink overrun raises it)"
INODE=$(ev " fdstore-add name=ctnetlink " | head -1 | sed -n 's/.* inode=\([0-9]*\).*/\1/p')
ctf_is "$(readlink /proc/"$P1"/fd/* 2>/dev/null | grep -c "^socket:\[$INODE\]$")" 1 \
	"the stored descriptor is ctflowd's conntrack socket (inode ${INODE:-?})"

# ------------------------------------------------------------------ run with the store

TL=$DIR/timeline-main.txt
W_T0=$(ctf_now)
ctf_batch_workload "$TL" $MAIN_DPORT $GAP_BATCH wait_ev " stopped pid=$P1( |$)" 60 &
WL=$!
CTF_PIDS+=("$WL")
ctf_wait_lines "$TL" 2 60 || ctf_bail "the workload did not get through 2 batches"
echo "restart $RESTART_GAP" >"$SD/control"
T_RESTART=$(ctf_now)

if wait_ev " stopped pid=$P1( |$)" 60; then
	stop_ok=1
else
	stop_ok=0
	ctf_not_ok "the first ctflowd stops within 60 s of SIGTERM"
fi
line=$(ev " notify pid=$P1 .*STOPPING=1")
if printf '%s\n' "$line" | grep -q 'accepted=1' &&
	[ "$(ev_time "$line")" \> "$(ev_time "$(ev " stop-begin pid=$P1( |$)")")" ]; then
	ctf_ok "the first ctflowd says STOPPING=1 when stopped"
else
	ctf_not_ok "the first ctflowd says STOPPING=1 when stopped" "notify: ${line:-none}"
fi
ctf_is "$(ev " exit pid=$P1 main=1( |$)" | sed -n 's/.* status=\(.*\)$/\1/p')" exit:0 \
	"the first ctflowd exits with status 0"

check_start 2 || ctf_diag_file "$SD/service-2.log" 20
P2=$P
if [ -n "$P2" ]; then
	line=$(ev " start n=2 ")
	ctf_is "$(printf '%s\n' "$line" | sed -n 's/.* listen_fds=\([0-9]*\) names=\([^ ]*\) .*/\1 \2/p')" "1 ctnetlink" \
		"the second start gets the stored socket (LISTEN_FDS LISTEN_FDNAMES)"
	# /proc/PID/environ is the environment the process was exec'd with,
	# whatever ctflowd removed from its own since
	env_pid=$(tr '\0' '\n' <"/proc/$P2/environ" 2>/dev/null | sed -n 's/^LISTEN_PID=//p')
	if printf '%s\n' "$line" | grep -q ' listen_fds=0 '; then
		ctf_skip "LISTEN_PID is the pid of the process that runs ctflowd" "no descriptor was passed"
	else
		ctf_is "$env_pid" "$P2" "LISTEN_PID is the pid of the process that runs ctflowd"
	fi
	ctf_is "$(readlink /proc/"$P2"/fd/* 2>/dev/null | grep -c "^socket:\[$INODE\]$")" 1 \
		"the second ctflowd reads the socket the first one stored (inode ${INODE:-?})"
	line=$(grep 'took over the conntrack event socket' "$SD/service-2.log")
	if printf '%s\n' "$line" | grep -q "from the service manager's descriptor store"; then
		ctf_ok "the second ctflowd logs: ${line#* notice: }"
	else
		ctf_not_ok "the second ctflowd logs that it took the socket over from the descriptor store" \
			"log: ${line:-no 'took over' line}"
		ctf_diag_file "$SD/service-2.log" 10
	fi
fi
T_STOP=$(ev_time "$(ev " stop-begin pid=$P1( |$)")")
T_STOPPED=$(ev_time "$(ev " stopped pid=$P1( |$)")")
T_START2=$(ev_time "$(ev " start n=2 ")")

wait "$WL"
W_T1=$(ctf_now)
bad=$(awk -v n=$N_BATCH -v p=$((N_BATCH * PKTS)) '$5 != n || $6 != p' "$TL")
ctf_is "$(wc -l <"$TL")/${bad:-none}" "$BATCHES/none" \
	"workload: $BATCHES batches, each created $N_BATCH entries and every packet reached the server (batches/bad)"
[ -s "$TL.err" ] && ctf_diag "$(cat "$TL.err")"
mapfile -t lines < <(phases "$TL" "${T_STOP:-9e9}" "${T_STOPPED:-9e9}" "${T_START2:-9e9}")
ctf_diag "${lines[@]}" "no ctflowd ran for $(ctf_elapsed "${T_STOPPED:-0}" "${T_START2:-0}") s; stopping took $(ctf_elapsed "${T_STOP:-0}" "${T_STOPPED:-0}") s"
ctf_check "batch $GAP_BATCH ended its flows while no ctflowd ran (the store alone held the socket)" \
	awk -v b=$GAP_BATCH -v s="${T_STOPPED:-9e9}" -v e="${T_START2:-0}" '$1 == b { f = ($3 >= s && $4 <= e) } END { exit !f }' "$TL"

ctf_wait_ct_empty 60 || ctf_diag "router table not empty after 60 s: $(ctf_ct_count) entries"
for ((i = 0; i < 300; i++)); do [ "$(ctf_ct_dying)" = 0 ] && break; sleep 0.2; done
[ -n "$P2" ] && { ctf_wait_idle "$P2" 2 60 || ctf_diag "ctflowd not idle after 60 s (or gone)"; }
ctf_is "$(ctf_ct_count)/$(ctf_ct_dying)" 0/0 "router table empty, no entry parked waiting for delivery (count/dying)"

removed=$(ev " fdstore-(removed|closed|refused) ")
if [ -z "$removed" ]; then
	ctf_ok "the store kept the socket through the restart"
else
	mapfile -t lines <<<"$removed"
	ctf_not_ok "the store kept the socket through the restart" "${lines[@]}"
fi
rejected=$(ev " notify .*accepted=0")
ctf_is "${rejected:-none}" none "every notification came from the main process and was accepted"

# ------------------------------------------------------------------ control: restart without the store

if [ "$CONTROL" = 1 ] && [ -n "$P2" ]; then
	TLC=$DIR/timeline-control.txt
	ctf_batch_workload "$TLC" $CTRL_DPORT $GAP_BATCH wait_ev " stopped pid=$P2( |$)" 60 &
	WL=$!
	CTF_PIDS+=("$WL")
	ctf_wait_lines "$TLC" 2 60 || ctf_diag "the control workload did not get through 2 batches"
	echo "restart-nofds $RESTART_GAP" >"$SD/control"
	check_start 3
	P3=$P
	wait "$WL"
	W_T1=$(ctf_now)
	ctf_wait_ct_empty 60
	for ((i = 0; i < 300; i++)); do [ "$(ctf_ct_dying)" = 0 ] && break; sleep 0.2; done
	[ -n "$P3" ] && ctf_wait_idle "$P3" 2 60
	line=$(grep 'took over the conntrack event socket' "$SD/service-3.log" 2>/dev/null)
	ctf_diag "control: the third ctflowd (pid ${P3:-none}) started with $(ev " start n=3 " | awk '{ print $5 }'); took over: ${line:-nothing (new socket)}"
else
	P3=
fi

# ------------------------------------------------------------------ stop

LAST=${P3:-$P2}
echo stop >"$SD/control"
for ((i = 0; i < 300; i++)); do ctf_alive "$MANAGER" || break; sleep 0.1; done
ctf_stop "$MANAGER" 5
ctf_is "$CTF_STOP_STATUS/$CTF_STOP_KILLED" 0/0 "the stand-in stops ctflowd and exits 0 (status/killed)"
if [ -n "$LAST" ]; then
	line=$(ev " notify pid=$LAST .*STOPPING=1")
	ctf_is "$(printf '%s\n' "$line" | grep -c 'accepted=1')/$(ev " exit pid=$LAST main=1( |$)" | sed -n 's/.* status=\(.*\)$/\1/p')" \
		"1/exit:0" "the last ctflowd says STOPPING=1 and exits 0 on the final stop"
fi
for n in 1 2 3; do
	[ -e "$SD/service-$n.log" ] || continue
	grep ' final: ' "$SD/service-$n.log" | sed "s/^.*\] /# ctflowd $n: /"
	grep -E 'warning|critical' "$SD/service-$n.log" | head -5 | sed "s/^/# ctflowd $n log: /"
done
WINDOW=$(awk -v a="$W_T1" -v b="$(ctf_now)" 'BEGIN { printf "%d", b - a + 2 }')
sleep 0.5   # the last datagrams reach nfcapd
ctf_stop "$WITNESS"; ctf_stop "$NFCAPD"

# ------------------------------------------------------------------ judge

wit=$(ctf_witness_exact "$DIR/witness.txt" $MAIN_DPORT $((MAIN_DPORT + BATCHES - 1)) $PKTS $FWD_BYTES)
ctf_is "$wit" "$N $N" "the kernel reported all $N flows of the run with the restart (ctlisten: distinct exact)"

ctf_nfdump_flows "$DIR/nf" "$DIR/nfdump.txt"
verify "nfdump (UDP export via nfcapd)" nfdump "$DIR/nfdump.txt"
if [ -s "$EXPORT" ]; then
	verify "ipfix_verify.py (file export)" ipfix "$EXPORT" --require-flowid
else
	ctf_not_ok "ipfix_verify.py (file export)" "no export file at $EXPORT"
fi

if [ "$CONTROL" = 1 ] && [ -n "$P2" ]; then
	got=$(distinct_flows nfdump "$DIR/nfdump.txt" $CTRL_DPORT)
	mapfile -t lines < <(ctf_batch_gaps nfdump "$DIR/nfdump.txt" $CTRL_DPORT $BATCHES $SPORT $N_BATCH)
	ctf_ok "control, restart without the store: $got of $N flows reached the collector, $((N - got)) lost (informational)"
	ctf_diag "${lines[@]}"
fi

ctf_diag "total $(ctf_elapsed "$T_BEGIN") s"
ctf_done
