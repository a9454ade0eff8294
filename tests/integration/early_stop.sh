#!/bin/bash
# early_stop.sh - a stop asked for while ctflowd is still starting is a
# stop like any other: exit status 0, never a death by the signal.
#
# The supervisor opens the event socket and forks the worker, which then
# sets up its state directory, journal and destinations before its loop
# runs.  A SIGTERM that reaches the worker in that time must be taken, not
# kill it (that would end ctflowd with status 1 and a stop that logged
# nothing).  In fresh namespaces (lib.sh), ROUNDS times: ctflowd (reliable,
# a JSON file export) is started, and SIGTERM follows the moment its worker
# exists plus a delay that grows by STEP_MS each round, so that some land in
# the worker's set-up and some after it.
# Judged, per round: exit status 0 without SIGKILL, "stopping on signal"
# logged by the worker when it had started, and no worker killed by a signal.
# Then 6 starts get SIGHUP and SIGUSR1 (whose default action would end a
# process) 0 to 15 ms after the worker's fork: the one worker runs on, and
# ctflowd stops cleanly after.
#
# Environment: see lib.sh.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ctf_require_root
ctf_require_cmd "$CTFLOWD"

ROUNDS=16 STEP_MS=2

# worker_forked PID: returns as soon as PID has forked its worker (a tight
# loop with no process started in it: the point is to catch the worker
# young); 1 after about 5 s
worker_forked() {
	local i c
	for ((i = 0; i < 500000; i++)); do
		c=
		read -r c <"/proc/$1/task/$1/children" 2>/dev/null   # no newline: status 1
		[ -n "$c" ] && return 0
		[ -e "/proc/$1" ] || return 1
	done
	return 1
}

# start_young LOG DELAY_MS: ctflowd whose worker was forked DELAY_MS ago
# (0: this moment); pid in PID
start_young() {
	ctf_spawn "$NS_RTR" "$1" "$CTFLOWD" -f -c "$CONF"
	PID=$CTF_LAST_PID
	worker_forked "$PID" || { ctf_diag_file "$1" 20; ctf_bail "no worker ($1)"; }
	[ "$2" = 0 ] || sleep "$(printf '0.%03d' "$2")"
}

ctf_setup
DIR=$CTF_WORK/early
mkdir -p "$DIR"
CONF=$DIR/ctflowd.conf
ctf_ctflowd_conf "$CONF"
ctf_conf_json_file "$CONF" json "$DIR/flows.json"

bad=0
for ((r = 0; r < ROUNDS; r++)); do
	log=$DIR/ctflowd-$r.log
	start_young "$log" $((r * STEP_MS))
	ctf_stop "$PID" 30
	killed=$(grep -c 'killed by signal' "$log")
	if [ "$CTF_STOP_STATUS/$CTF_STOP_KILLED/$killed" != 0/0/0 ]; then
		bad=$((bad + 1))
		ctf_not_ok "round $r (SIGTERM $((r * STEP_MS)) ms after the worker's fork) ends with status 0" \
			"exit status $CTF_STOP_STATUS, needed SIGKILL: $CTF_STOP_KILLED, workers killed by a signal: $killed"
		ctf_diag_file "$log" 20
	fi
	# a worker that got as far as running stops as a stop does
	if grep -q ' running: ' "$log" && ! grep -q 'stopping on signal' "$log"; then
		bad=$((bad + 1))
		ctf_not_ok "round $r: the worker that ran logs its stop" "no 'stopping on signal'"
		ctf_diag_file "$log" 20
	fi
done
ctf_is "$bad" 0 "$ROUNDS starts stopped at once or soon after: every one ends cleanly"

# SIGHUP (reopen) and SIGUSR1 (statistics) during the set-up: the worker
# takes them once it runs, and is neither killed nor restarted for them
bad=0
for ((r = 0; r < 6; r++)); do
	log=$DIR/ctflowd-sig-$r.log
	start_young "$log" $((r * 3))
	kill -HUP "$PID"
	kill -USR1 "$PID"
	for ((i = 0; i < 100; i++)); do grep -q ' running: ' "$log" && break; sleep 0.1; done
	sleep 0.5
	workers=$(grep -c ' running: ' "$log")
	ctf_stop "$PID" 30
	killed=$(grep -c 'killed by signal\|restarting it' "$log")
	if [ "$workers/$killed/$CTF_STOP_STATUS/$CTF_STOP_KILLED" != 1/0/0/0 ]; then
		bad=$((bad + 1))
		ctf_not_ok "signal round $r (SIGHUP and SIGUSR1 $((r * 3)) ms after the worker's fork)" \
			"workers started $workers, killed or restarted $killed, exit status $CTF_STOP_STATUS, needed SIGKILL $CTF_STOP_KILLED"
		ctf_diag_file "$log" 20
	fi
done
ctf_is "$bad" 0 "SIGHUP and SIGUSR1 during set-up: one worker each time, which then stops cleanly"

ctf_done
