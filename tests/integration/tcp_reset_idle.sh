#!/bin/bash
# tcp_reset_idle.sh - a TCP collector that resets the connection while
# ctflowd waits for acknowledgements is noticed at once, not at the next send.
#
# In fresh namespaces (lib.sh) the router runs ctflowd with two exports
# (tcp_peer_lib.sh): IPFIX over TCP to tcp_collector.py on the router's
# 127.0.0.1 (flush_interval 500ms, reconnect 500ms..5s), and a JSON file.
# The collector's receive buffer is the smallest the kernel allows.  On its
# first connection it reads the first 600 bytes (the templates and a few
# records), then nothing more, so the rest of the message stays
# unacknowledged in ctflowd's socket; 3 s later it resets the connection
# (SO_LINGER 0) and goes on listening.
#
#   burst    100 UDP flows end (conntrack -F): one message.  Before the
#            reset, ctflowd has sent them all and counts none delivered:
#            it is idle, waiting for acknowledgements
#   reset    ctflowd must notice, reconnect after reconnect_min and resend
#            what was not acknowledged, templates first.  Nothing else
#            happens meanwhile: no flow ends, so no send would find the
#            broken connection
#
# Checks: the new connection opens within reconnect_min + 3 s of the reset,
# and every flow is in it within reconnect_min + flush_interval + 5 s; the
# final statistics count a reconnect, a resend and all 100 records
# delivered, and the log no "records not delivered".  Judged by
# tcp_peer_score.py (ipfix_verify.py's decoder and ipfixDump): every flow
# with exact counters, the set of flowIds exactly the one in the JSON
# export; a flow may come twice only as an identical resend in the later
# connection.
#
# Environment: see lib.sh.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$CTF_LIB_DIR/tcp_peer_lib.sh"

ctf_require_root
ctf_require_cmd ipfixDump "$PYTHON" "$CTFLOWD"

TP_N=100
READ_BYTES=600      # what the collector reads of its first connection
RESET_DELAY_S=3     # then, this much later, the reset
RECONNECT_MIN_S=0.5 FLUSH_S=0.5

T_BEGIN=$(ctf_now)
ctf_setup
tp_init "$CTF_WORK/reset"

# flows_in FILE: distinct flows of the workload in one connection file
flows_in() {
	CTF_LIB_DIR=$CTF_LIB_DIR "$PYTHON" - "$1" $TP_DPORT <<-'PY'
	import os, sys
	sys.path.insert(0, os.environ["CTF_LIB_DIR"])
	import ipfix_verify as iv
	try:
	    data = open(sys.argv[1], "rb").read()
	except OSError:
	    data = b""
	print(len({iv.flow_key(r) for r in iv.Decoder(data).run().records
	           if iv.flow_key(r)[5] == int(sys.argv[2])}))
	PY
}

tp_start_collector --rcvbuf 1 --reset-after $READ_BYTES --reset-delay $RESET_DELAY_S
# a receive buffer that takes the whole burst in one read: no overrun, whose
# recovery could spread the records over two messages
CTF_RCVBUF=4194304
tp_start_ctflowd 500ms 500ms 5s

# --- burst: one message, read in part
ctf_gen_udp $TP_N $TP_DPORT $TP_SPORT $TP_PKTS $TP_LEN; ok=$?
ctf_check "the router created $TP_N entries and the server got every packet" [ $ok = 0 ]
ctf_ct_flush
tp_wait_log 'conn 1 stops reading' 10
ctf_check "the collector read $READ_BYTES bytes of the first connection and stopped reading" \
	grep -q "conn 1 stops reading after $READ_BYTES bytes" "$TP_CLOG"
# what ctflowd says while it waits (statistics every second): all sent,
# none acknowledged.  Otherwise this run would not test the case, and a
# message acknowledged by the collector's kernel but never read by the
# collector would be lost with the reset (TCP cannot tell).
for ((i = 0; i < 25; i++)); do
	st=$(ctf_last_stats "$TP_LOG")
	[ "$(ctf_stat_export "$st" tcp sent)" = $TP_N ] && break
	sleep 0.1
done
grep -q 'conn 1 reset' "$TP_CLOG" && ctf_diag "the reset came before the statistics were read"
sent=$(ctf_stat_export "$st" tcp sent) delivered=$(ctf_stat_export "$st" tcp records)
if [ "$sent" = $TP_N ] && [ "$delivered" = 0 ]; then
	ctf_ok "before the reset ctflowd has sent all $TP_N records and counts none delivered (waiting for acknowledgements)"
else
	ctf_not_ok "before the reset ctflowd has sent all $TP_N records and counts none delivered" "statistics: $st"
fi

# --- reset: noticed without any send
tp_wait_log 'conn 1 reset after' 5
T_RESET=$(tp_log_time 'conn 1 reset after')
[ -n "$T_RESET" ] || ctf_bail "the collector did not reset its first connection: $(tail -3 "$TP_CLOG")"
tp_wait_log 'conn 2 opened' 10
T_CONN2=$(tp_log_time 'conn 2 opened')
if [ -n "$T_CONN2" ]; then
	delay=$(ctf_elapsed "$T_RESET" "$T_CONN2")
	ctf_check "ctflowd reconnects ${delay} s after the reset (reconnect_min ${RECONNECT_MIN_S} s; allowed + 3 s)" \
		awk -v d="$delay" -v m=$RECONNECT_MIN_S 'BEGIN { exit !(d <= m + 3) }'
else
	ctf_not_ok "ctflowd reconnects after the reset" "no second connection within 10 s" \
		"$(grep 'export tcp' "$TP_LOG" | tail -3)"
fi
got=0
for ((i = 0; i < 100; i++)); do
	got=$(flows_in "$TP_COLL_DIR/conn-2.ipfix")
	[ "$got" -ge $TP_N ] && break
	sleep 0.2
done
T_ALL=$(ctf_now)
if [ "$got" -ge $TP_N ]; then
	took=$(ctf_elapsed "$T_RESET" "$T_ALL")
	ctf_check "all $TP_N flows are in the new connection ${took} s after the reset (allowed: reconnect_min + flush_interval + 5 s)" \
		awk -v d="$took" -v m=$RECONNECT_MIN_S -v f=$FLUSH_S 'BEGIN { exit !(d <= m + f + 5) }'
else
	ctf_not_ok "all $TP_N flows are in the new connection" "$got after 20 s"
fi
grep 'warning: export tcp:' "$TP_LOG" | head -3 | sed 's/^/# ctflowd: /'
ctf_check "ctflowd logs that the connection was lost" \
	grep -q 'warning: export tcp: .*connection lost: .*; reconnecting' "$TP_LOG"
ctf_wait_idle "$TP_PID" 1.5 30 || ctf_diag "ctflowd not idle after 30 s (or gone)"

# --- stop
tp_stop
reconnects=$(ctf_stat_export "$TP_FINAL" tcp reconnects) resent=$(ctf_stat_export "$TP_FINAL" tcp resent)
ctf_check "final statistics: reconnected once, resent what was not acknowledged (reconnects $reconnects, resent $resent)" \
	test "$reconnects" = 1 -a "${resent:-0}" -ge 1 -a "${resent:-0}" -le $TP_N
if grep -q 'records not delivered' "$TP_LOG"; then
	ctf_not_ok "nothing left undelivered at the stop" "$(grep 'records not delivered' "$TP_LOG")"
else
	ctf_ok "nothing left undelivered at the stop"
fi

tp_score resent
ctf_diag "total $(ctf_elapsed "$T_BEGIN") s"
ctf_done
