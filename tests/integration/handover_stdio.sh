#!/bin/bash
# handover_stdio.sh - the holder a stopped ctflowd leaves keeps nothing of
# the caller's: not its stdout, not a lock it passed down.
#
#   ctflowd -f -c CONF 2>&1 | cat >OUT, started from a shell that holds an
#   flock on LOCK on descriptor 9 (inherited by ctflowd), handover_timeout
#   = 60s.  ctflowd gets SIGTERM; then a second ctflowd starts.
#
# Judged: the pipe reaches its end within 15 s of the first ctflowd's SIGTERM
# (not at the holder's timeout); a holder keeps the first ctflowd's socket
# meanwhile, with its descriptors 0-2 on /dev/null and none leading to LOCK,
# a pipe or a terminal; LOCK can be locked again at once; nothing the holder
# logs reaches OUT; the second ctflowd takes the socket over from it.
#
# Environment: see lib.sh.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ctf_require_root
ctf_require_cmd "$CTFLOWD" flock

EOF_BOUND=15

ctf_setup
DIR=$CTF_WORK/stdio
mkdir -p "$DIR"
CONF=$DIR/ctflowd.conf OUT=$DIR/out.txt LOCK=$DIR/lock LOG2=$DIR/ctflowd-2.log
SOCK=$CTF_WORK/state/handover.sock
CTF_HANDOVER=60s ctf_ctflowd_conf "$CONF"
ctf_conf_json_file "$CONF" json "$DIR/flows.json"

# The shell execs ctflowd in place, so the pid it writes is ctflowd's.
(
	sh -c 'echo $$ >"$1"; exec 9>"$2"; flock 9 || exit 1
	       exec ip netns exec "$3" "$4" -f -c "$5"' sh \
		"$DIR/pid" "$LOCK" "$NS_RTR" "$CTFLOWD" "$CONF" </dev/null 2>&1 | cat >"$OUT"
	ctf_now >"$DIR/eof"
) &
CTF_PIDS+=("$!")
ctf_wait_file "$DIR/pid" 10 || ctf_bail "the pipeline did not start"
PID1=$(cat "$DIR/pid")
CTF_PIDS+=("$PID1")
ctf_wait_ct_listener "$PID1" 10 || { ctf_diag_file "$OUT"; ctf_bail "ctflowd did not start"; }
INODE1=$(ctf_ct_listener_inode "$PID1")
ctf_is "$(flock -n "$LOCK" echo free || echo held)" held "ctflowd ($PID1) holds the caller's lock on $LOCK"

T_TERM=$(ctf_now)
ctf_stop "$PID1" 30
# not this shell's child: its status is not to be had, its last words are
ctf_is "$CTF_STOP_KILLED/$(grep -c ' final: ' "$OUT")" 0/1 \
	"ctflowd ends on SIGTERM by itself, logging its final line (killed/final lines)"
ctf_check_holder "$INODE1" "the socket after the stop"
HOLDER=$CTF_HOLDER

if ctf_wait_file "$DIR/eof" $EOF_BOUND; then
	ctf_ok "the pipe ends $(ctf_elapsed "$T_TERM" "$(cat "$DIR/eof")") s after the SIGTERM (bound $EOF_BOUND s; handover_timeout 60 s)"
else
	ctf_not_ok "the pipe ends within $EOF_BOUND s of the SIGTERM" "no end of file yet"
fi
ctf_is "$(flock -n "$LOCK" echo free || echo held)" free "the lock on $LOCK is released"

if [ -n "$HOLDER" ]; then
	targets=$(ctf_fd_targets "$HOLDER")
	std=$(printf '%s\n' "$targets" | awk '$1 <= 2 { print $3 }' | sort -u | tr '\n' ' ')
	ctf_is "$std" "/dev/null " "the holder's descriptors 0-2 lead to /dev/null"
	bad=$(printf '%s\n' "$targets" | grep -E "$LOCK|pipe:|/dev/pts|/dev/tty|$OUT")
	ctf_is "${bad:-none}" none "the holder keeps no descriptor of the caller's (lock, pipe, terminal)"
	ctf_diag "holder $HOLDER descriptors: $(printf '%s\n' "$targets" | tr '\n' ';')"
fi

ctf_start_ctflowd "$CONF" "$LOG2" || ctf_bail "the second ctflowd did not start"
PID2=$CTF_LAST_PID
ctf_check_takeover "$PID2" "$LOG2" "$INODE1" "$HOLDER" "$SOCK"
ctf_is "$(grep -c "ctflowd\[$HOLDER\]" "$OUT")" 0 "nothing the holder logs reaches the pipe"
ctf_stop_clean "$PID2" "the second ctflowd" "$LOG2"
ctf_end_holders

ctf_done
