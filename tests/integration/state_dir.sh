#!/bin/bash
# state_dir.sh - a state directory others could write is refused, and links
# planted where ctflowd writes are never followed.
#
# ctflowd runs as root.  Whoever can write its state directory could plant a
# symbolic link where ctflowd writes and make it resize, overwrite or replace
# any file of the host.  In fresh namespaces (lib.sh):
#
# Refused at start, before anything is written (exit status 1 within 20 s,
# a message naming the path and what is wrong, no file created in it):
#   - a state directory owned by nobody (with a link "landing" planted in
#     it, as an attacker would: the file it points to stays unchanged);
#   - a world-writable one (mode 0777), and a group-writable one (0770);
#   - a symbolic link to a good directory;
#   - a good directory whose spool/ is a symbolic link, or world-writable.
#
# Then a good state directory (root, 0750) with a link, each to a file of
# its own owned by root, planted at every name ctflowd writes:
#     landing                        replaced by a file of ctflowd's (warning)
#     flow-id                        not read (warning), replaced by the
#                                    new reservation
#     flow-id.tmp                    removed; a new temporary file is made
#     spool/journal-0000000000000000 moved to spool/corrupt/ as it is (warning)
#     spool/cursor-good              replaced (warning); "good" replays from
#                                    the oldest record
#     pid file (state/ctflowd.pid)   replaced by the pid file
#     handover.sock                  replaced by the holder's socket (0600)
#     export "linked" path           refused (a warning names it, the export
#                                    keeps retrying), nothing written
# ctflowd runs under umask 000 with export "good" (JSON file) working beside
# them; 50 UDP flows go through the router and are flushed.  Checks: every
# flow reaches export "good"; every target file has the checksum it had
# before; each name ends as said above; nothing ctflowd wrote is writable by
# group or others (the pid file was world-writable under umask 000 before).
#
# Environment: see lib.sh.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ctf_require_root
ctf_require_cmd "$CTFLOWD" sha256sum timeout

N=50 PKTS=2 LEN=50 DPORT=20000 SPORT=1024
NOBODY=65534

T_BEGIN=$(ctf_now)
ctf_setup
DIR=$CTF_WORK/statedir
TARGETS=$DIR/targets
mkdir -p "$DIR" "$TARGETS"
chmod 0755 "$DIR"

# make_target NAME: a root-owned file with contents of its own; prints its path
make_target() {
	local t=$TARGETS/$1
	printf 'root-owned file for %s\n%s\n' "$1" "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$t"
	chmod 0644 "$t"
	echo "$t"
}
sums() { sha256sum "$TARGETS"/* | sort -k2; }

# base_conf FILE STATE: [daemon] and [source] for state directory STATE
base_conf() {
	ctf_ctflowd_conf "$1"
	sed -i "s|^state_directory = .*|state_directory = $2|" "$1"
	grep -qx "state_directory = $2" "$1" || ctf_bail "cannot set the state directory in $1"
}

# refused NAME STATE WANT_RE: ctflowd must refuse STATE at start with a
# message that names STATE (or, given as 4th argument, the path named) and
# matches WANT_RE, and must have written nothing there
refused() {
	local name=$1 state=$2 want=$3 named=${4:-$2} conf=$DIR/$1.conf log=$DIR/$1.log rc
	base_conf "$conf" "$state"
	printf '\n[export out]\nformat = json\ntransport = file\npath = flows.json\n' >>"$conf"
	local before
	before=$(find -L "$state" 2>/dev/null | sort | tr '\n' ' ')
	ip netns exec "$NS_RTR" timeout 20 "$CTFLOWD" -f -c "$conf" </dev/null >"$log" 2>&1
	rc=$?
	ctf_is "$rc" 1 "$name: ctflowd refuses to start (exit status)"
	if grep -F -- "$named" "$log" | grep -qE -- "$want"; then
		ctf_ok "$name: the message names $named and says /$want/"
	else
		ctf_not_ok "$name: the message names $named and says /$want/" "log: $(head -5 "$log")"
	fi
	grep -E 'critical|CRITICAL' "$log" | head -2 | sed "s/^/# $name: /"
	ctf_is "$(find -L "$state" 2>/dev/null | sort | tr '\n' ' ')" "$before" \
		"$name: nothing was created in the refused directory"
}

# ------------------------------------------------------------------ refused

S=$DIR/nobody
mkdir -m 0750 "$S"
T_NOBODY=$(make_target nobody-landing)
ln -s "$T_NOBODY" "$S/landing"
chown -h "$NOBODY:$NOBODY" "$S/landing" "$S"
sum0=$(sha256sum "$T_NOBODY")
refused owned-by-nobody "$S" "owned by uid $NOBODY.*mode 0750.*runs as uid 0"
ctf_is "$(sha256sum "$T_NOBODY")" "$sum0" "owned-by-nobody: the file its 'landing' link points to is unchanged"

S=$DIR/world
mkdir -m 0777 "$S"; chmod 0777 "$S"
refused world-writable "$S" "writable by others.*mode 0777"

S=$DIR/group
mkdir -m 0770 "$S"; chmod 0770 "$S"
refused group-writable "$S" "writable by its group.*mode 0770"

mkdir -m 0750 "$DIR/real"
ln -s "$DIR/real" "$DIR/link"
refused symbolic-link "$DIR/link" "is a symbolic link \\(to $DIR/real\\)"

S=$DIR/spool-link
mkdir -m 0750 "$S" "$DIR/elsewhere"
ln -s "$DIR/elsewhere" "$S/spool"
refused spool-link "$S" "is a symbolic link" "$S/spool"

S=$DIR/spool-world
mkdir -m 0750 "$S"
mkdir -m 0777 "$S/spool"; chmod 0777 "$S/spool"
refused spool-world-writable "$S" "writable by others.*mode 0777" "$S/spool"

# ------------------------------------------------------------------ links in a good directory

S=$DIR/state
mkdir -m 0750 "$S" "$S/spool"
PIDFILE=$S/ctflowd.pid
GOOD=$DIR/good.json LINKED=$DIR/linked.json
declare -A LINKS=(
	[landing]=$S/landing
	[flow-id]=$S/flow-id
	[flow-id.tmp]=$S/flow-id.tmp
	[journal]=$S/spool/journal-0000000000000000
	[cursor]=$S/spool/cursor-good
	[pid]=$PIDFILE
	[handover]=$S/handover.sock
	[export]=$LINKED
)
for k in "${!LINKS[@]}"; do
	ln -s "$(make_target "$k")" "${LINKS[$k]}" || ctf_bail "cannot plant ${LINKS[$k]}"
done
SUMS0=$(sums)

CONF=$DIR/ctflowd.conf LOG=$DIR/ctflowd.log
base_conf "$CONF" "$S"
sed -i -e "s|^handover_timeout = .*|handover_timeout = 3s|" -e "/^\\[daemon\\]/a pid_file = $PIDFILE" "$CONF"
cat >>"$CONF" <<EOF

[export good]
format = json
transport = file
path = $GOOD
flush_interval = 100ms

[export linked]
format = json
transport = file
path = $LINKED
flush_interval = 100ms
EOF

umask 000
ctf_start_ctflowd "$CONF" "$LOG" || ctf_bail "ctflowd did not start on a good state directory with links in it"
PID=$CTF_LAST_PID
umask 022
ctf_ok "ctflowd starts on a good state directory with links planted in it"
# the pid file goes at exit: looked at while ctflowd runs
ctf_is "$(stat -c '%F %a' "$PIDFILE" 2>/dev/null || echo missing)/$(cat "$PIDFILE" 2>/dev/null)" \
	"regular file 640/$PID" \
	"pid file: the link was replaced by the pid file (mode 0640 under umask 000), with the pid"
ctf_gen_udp $N $DPORT $SPORT $PKTS $LEN || ctf_diag "the workload fell short (see above)"
ctf_ct_flush
for ((i = 0; i < 100; i++)); do [ "$(ctf_json_lines "$GOOD")" -ge $N ] && break; sleep 0.1; done
ctf_is "$(ctf_json_lines "$GOOD")" $N "export good delivered all $N flows"
ctf_wait_idle "$PID" 1.5 30 || ctf_diag "ctflowd not idle after 30 s (or gone)"
ctf_stop "$PID" 30
ctf_is "$CTF_STOP_STATUS/$CTF_STOP_KILLED" 0/0 "ctflowd exits 0 on SIGTERM (exit status/killed)"
grep -E 'warning|critical' "$LOG" | grep -v 'export linked: ' | sed 's/^/# ctflowd log: /'
grep -m1 'export linked: ' "$LOG" | sed 's/^/# ctflowd log: /'

SUMS1=$(sums)
if [ "$SUMS1" = "$SUMS0" ]; then
	ctf_ok "every file a planted link points to is unchanged (sha256)"
else
	ctf_not_ok "every file a planted link points to is unchanged (sha256)" \
		"$(diff <(echo "$SUMS0") <(echo "$SUMS1") | grep '^[<>]')"
fi

# kind PATH: what is at PATH now (the name itself, links not followed)
kind() { stat -c %F "$1" 2>/dev/null || echo missing; }
# warned RE: a warning in the log matches RE
warned() { grep -E 'warning' "$LOG" | grep -qE -- "$1"; }

ctf_is "$(kind "$S/landing")" "regular file" "landing: the link was replaced by a file"
ctf_check "landing: a warning says the link was not followed" \
	warned "$S/landing was a symbolic link .*not followed"
ctf_is "$(kind "$S/flow-id")" "regular file" "flow-id: the link was replaced by the reservation"
ctf_check "flow-id: a warning says the link was not read" \
	warned "$S/flow-id is a symbolic link.*continuing from the clock"
ctf_is "$(kind "$S/flow-id.tmp")" missing "flow-id.tmp: the link was removed, the new file renamed"
ctf_is "$(kind "$S/spool/journal-0000000000000000")" "regular file" \
	"journal-0000000000000000: a segment of ctflowd's own is at that name"
ctf_is "$(kind "$S/spool/corrupt/journal-0000000000000000")" "symbolic link" \
	"journal-0000000000000000: the link was moved to spool/corrupt/ as it is"
ctf_check "journal-0000000000000000: a warning names it" \
	warned "journal-0000000000000000: a symbolic link, not followed; moved"
ctf_is "$(kind "$S/spool/cursor-good")" "regular file" "cursor-good: the link was replaced by a cursor"
ctf_check "cursor-good: a warning says so" \
	warned "cursor-good: a symbolic link, not followed: replaced by a new cursor"
ctf_is "$(kind "$PIDFILE")" missing "pid file: removed at exit"
# the socket is left to the holder for handover_timeout (3 s)
ctf_is "$(stat -c '%F %a' "$S/handover.sock" 2>/dev/null || echo missing)" "socket 600" \
	"handover.sock: the link was replaced by the holder's socket, mode 0600"
ctf_is "$(kind "$LINKED")" "symbolic link" "export linked: its path is left as it is"
ctf_check "export linked: a warning says the link is not followed" \
	warned "$LINKED: a symbolic link, not followed"

# under umask 000, nothing ctflowd made is writable by group or others
loose=$(find "$S" "$GOOD" ! -type l -perm /022 -printf '%m %p\n')
ctf_is "$loose" "" "nothing ctflowd wrote under umask 000 is writable by group or others"

# the holder gives up after handover_timeout and removes its socket
for ((i = 0; i < 100; i++)); do [ -e "$S/handover.sock" ] || break; sleep 0.1; done
ctf_is "$(kind "$S/handover.sock")" missing "the holder went after handover_timeout and removed its socket"
ctf_is "$(sums)" "$SUMS0" "the targets are still unchanged after the holder left"

ctf_diag "total $(ctf_elapsed "$T_BEGIN") s"
ctf_done
