#!/bin/bash
# tcp_talkback.sh - a TCP collector that talks back is not a closed connection.
#
# IPFIX over TCP is one-way, but a collector may greet or send keepalives.
# ctflowd must read and drop those bytes, and keep the connection: taking
# them for a close cost a reconnect and a resend per message.
#
# In fresh namespaces (lib.sh) the router runs ctflowd with two exports
# (tcp_peer_lib.sh): IPFIX over TCP to tcp_collector.py on the router's
# 127.0.0.1 (flush_interval 200ms, reconnect 100ms..1s), and a JSON file.
# The collector sends 512 bytes right after accepting and 512 more every
# 0.1 s for as long as the connection lasts.
#
#   phase A  1,000 UDP flows end (conntrack -F) while the collector talks
#   quiet    ctflowd is idle for a few seconds while the collector keeps
#            talking: it must neither spin on the incoming bytes nor drop
#            the connection
#   phase B  1,000 more flows end on the same connection
#
# Judged by tcp_peer_score.py (ipfix_verify.py's decoder and ipfixDump):
# one connection, every flow exactly once with exact counters, the set of
# flowIds exactly the one in the JSON export.  ctflowd's final statistics:
# reconnects 0, resent 0, send errors 0, all 2,000 records delivered; no
# warning about the export in its log.
#
# Environment: see lib.sh.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$CTF_LIB_DIR/tcp_peer_lib.sh"

ctf_require_root
ctf_require_cmd ipfixDump "$PYTHON" "$CTFLOWD"

N_A=1000
TP_N=2000
QUIET_S=4

# wait_delivered PHASE N: ctflowd's statistics count N records delivered
wait_delivered() {
	if ctf_wait_stat_export "$TP_LOG" tcp records "$2" 60; then
		ctf_ok "phase $1: ctflowd counts $2 records delivered"
	else
		ctf_not_ok "phase $1: ctflowd counts $2 records delivered" "$(ctf_last_stats "$TP_LOG")"
	fi
}

T_BEGIN=$(ctf_now)
ctf_setup
tp_init "$CTF_WORK/talkback"
tp_start_collector --talk 512 --talk-every 0.1
tp_start_ctflowd 200ms 100ms 1s

# --- phase A, while the collector talks
sleep 0.5   # the greeting and a few more bytes are in ctflowd's socket before any record
ctf_gen_udp $N_A $TP_DPORT $TP_SPORT $TP_PKTS $TP_LEN; ok_a=$?
ctf_ct_flush
wait_delivered A $N_A

# --- quiet: idle, the collector keeps talking
ctf_wait_idle "$TP_PID" 1.5 30 || ctf_diag "ctflowd not idle after 30 s (or gone)"
TICKS0=$(ctf_cpu_ticks "$TP_PID") T_QUIET=$(ctf_now)
sleep $QUIET_S
ticks=$(($(ctf_cpu_ticks "$TP_PID") - TICKS0))
ctf_check "no spinning on the collector's bytes: $(ctf_ticks_to_s $ticks) s CPU in $(ctf_elapsed "$T_QUIET") s idle (< 1 s)" \
	[ "$ticks" -lt "$CTF_HZ" ]
ctf_check "ctflowd keeps running" ctf_alive "$TP_PID"

# --- phase B, same connection
ctf_gen_udp $((TP_N - N_A)) $TP_DPORT $((TP_SPORT + N_A)) $TP_PKTS $TP_LEN; ok_b=$?
ctf_check "the router created $TP_N entries and the server got every packet" [ "$ok_a$ok_b" = 00 ]
ctf_ct_flush
wait_delivered B $TP_N
ctf_wait_idle "$TP_PID" 1.5 30 || ctf_diag "ctflowd not idle after 30 s (or gone)"

# --- stop
tp_stop
ctf_is "$(ctf_stat_export "$TP_FINAL" tcp reconnects)/$(ctf_stat_export "$TP_FINAL" tcp resent)/$(ctf_stat_export "$TP_FINAL" tcp 'send errors')" 0/0/0 \
	"final statistics: no reconnect, no resend, no send error (reconnects/resent/send errors)"
warnings=$(grep -c 'warning: export tcp:' "$TP_LOG")
ctf_is "$warnings" 0 "no warning about the TCP export in ctflowd's log"
grep 'warning: export tcp:' "$TP_LOG" | head -3 | sed 's/^/# /'
ctf_is "$(grep -c ' opened from ' "$TP_CLOG")" 1 "the collector saw one connection"
talked=$(sed -n 's/.* \([0-9]*\) bytes sent back.*/\1/p' "$TP_CLOG" | head -1)
ctf_check "the collector really talked back (${talked:-0} bytes sent to ctflowd)" [ "${talked:-0}" -gt 512 ]

tp_score once
ctf_diag "total $(ctf_elapsed "$T_BEGIN") s"
ctf_done
