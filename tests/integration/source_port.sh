#!/bin/bash
# source_port.sh - a UDP export sends from the same source port after a
# restart without any configuration (a NetFlow v9 collector keys the
# templates it learnt on the exporter's address and port).
#
# In fresh namespaces (lib.sh) ctflowd exports NetFlow v9 over UDP to a
# listener on the router's 127.0.0.1 that writes down the source port of
# every datagram.  A flush of 50 flows, a restart of ctflowd, another flush:
# every datagram of both runs came from one port, the one kept in the state
# directory.  Then another program holds that port while ctflowd starts
# again: ctflowd says so, sends from a new port, and keeps that one.
#
# Environment: see lib.sh.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ctf_require_root
ctf_require_cmd "$CTFLOWD" "$PYTHON"

PORT=$((20000 + $$ % 20000))
ctf_setup
DIR=$CTF_WORK/sport
mkdir -p "$DIR"
CONF=$DIR/ctflowd.conf
KEPT=$CTF_WORK/state/source-port-nf

ctf_spawn "$NS_RTR" "$DIR/listener.log" "$PYTHON" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        data, peer = s.recvfrom(65535)
        out.write("%d %d\n" % (peer[1], len(data)))' "$PORT" "$DIR/ports.txt"
ctf_wait_udp_port "$NS_RTR" "$PORT" 10 || ctf_bail "the listener does not listen"
ctf_ctflowd_conf "$CONF"
cat >>"$CONF" <<EOF

[export nf]
format = netflow9
transport = udp
destination = 127.0.0.1:$PORT
flush_interval = 200ms
EOF

# run N SPORT: one ctflowd run exporting a flush of 50 flows
run() {
	ctf_start_ctflowd "$CONF" "$DIR/ctflowd-$1.log" || ctf_bail "ctflowd did not start ($1)"
	local pid=$CTF_LAST_PID
	ctf_gen_udp 50 7400 "$2" 1 10 || ctf_bail "workload ($1)"
	ctf_ct_flush
	ctf_wait_ct_empty 30
	sleep 1
	ctf_stop_clean "$pid" "ctflowd (run $1)" "$DIR/ctflowd-$1.log"
}
ports_of() { awk '{ print $1 }' "$DIR/ports.txt" | sort -u | tr '\n' ' '; }

run 1 30000
first=$(ports_of)
ctf_check "run 1: datagrams came ($(wc -l <"$DIR/ports.txt")), from one port ($first)" \
	[ "$(wc -w <<<"$first")" = 1 ]
ctf_is "$(cat "$KEPT" 2>/dev/null)" "${first% }" "the port is kept in the state directory"
run 2 31000
ctf_is "$(ports_of)" "$first" "run 2 sent from the same port"

# another program holds the port: a new one, said and kept
kept=$(cat "$KEPT")
ctf_spawn "$NS_RTR" "$DIR/holder.log" "$PYTHON" -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
time.sleep(120)' "$kept"
HOLDER=$CTF_LAST_PID
sleep 0.3
: >"$DIR/ports.txt"
run 3 32000
ctf_stop "$HOLDER"
third=$(ports_of)
ctf_check "run 3: sent from one other port ($third, the held one was $kept)" \
	[ "$(wc -w <<<"$third")" = 1 ] && [ "${third% }" != "$kept" ]
ctf_check "run 3 said that it could not send from port $kept" \
	grep -q "cannot send from port $kept again" "$DIR/ctflowd-3.log"
ctf_is "$(cat "$KEPT")" "${third% }" "the new port is kept"
ctf_done
