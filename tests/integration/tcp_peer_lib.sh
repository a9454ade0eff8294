# tcp_peer_lib.sh - what the tests of a misbehaving TCP collector share
# (bash; source it after lib.sh, once ctf_setup has run).
#
# One collector (tcp_collector.py with the test's options) on the router's
# 127.0.0.1:$TP_PORT, and ctflowd with two exports: "tcp", IPFIX to that
# collector, and "json", a JSON file that says which flows ctflowd accepted
# and the flowId each one got.  The workload is TP_N IPv4 UDP flows client
# -> server, dport TP_DPORT, sports from TP_SPORT, TP_PKTS packets of
# TP_LEN bytes each.
#
# Set by tp_init DIR: TP_DIR, TP_COLL_DIR (one file per connection),
# TP_CLOG (the collector's log), TP_CONF, TP_LOG (ctflowd's), TP_JSON.

TP_PORT=4739
TP_DPORT=20000 TP_SPORT=1024
TP_PKTS=2 TP_LEN=50
TP_FWD_BYTES=$((TP_PKTS * (28 + TP_LEN)))   # IPv4 + UDP headers with each payload

# tp_init DIR: the test's directories and file names
tp_init() {
	TP_DIR=$1
	TP_COLL_DIR=$TP_DIR/collector
	TP_CLOG=$TP_DIR/collector.log
	TP_CONF=$TP_DIR/ctflowd.conf TP_LOG=$TP_DIR/ctflowd.log TP_JSON=$TP_DIR/flows.json
	mkdir -p "$TP_COLL_DIR"
}

# tp_start_collector ARGS...: the collector with tcp_collector.py's options
# ARGS; pid in TP_COLL_PID.  Bails out when it does not listen within 10 s.
tp_start_collector() {
	ctf_spawn "$NS_RTR" "$TP_CLOG" "$PYTHON" "$CTF_LIB_DIR/tcp_collector.py" \
		--port $TP_PORT --dir "$TP_COLL_DIR" --ready "$TP_DIR/collector.ready" "$@"
	TP_COLL_PID=$CTF_LAST_PID
	ctf_wait_file "$TP_DIR/collector.ready" 10 ||
		{ ctf_diag_file "$TP_CLOG"; ctf_bail "the collector does not listen"; }
}

# tp_start_ctflowd FLUSH RECONNECT_MIN RECONNECT_MAX: ctflowd with the two
# exports; pid in TP_PID.  Checks that it starts and connects.
tp_start_ctflowd() {
	ctf_ctflowd_conf "$TP_CONF"
	cat >>"$TP_CONF" <<-EOF

	[export tcp]
	format = ipfix
	transport = tcp
	destination = 127.0.0.1:$TP_PORT
	flush_interval = $1
	reconnect_min = $2
	reconnect_max = $3

	[export json]
	format = json
	transport = file
	path = $TP_JSON
	EOF
	ctf_start_ctflowd "$TP_CONF" "$TP_LOG" || ctf_bail "ctflowd did not start (config $TP_CONF)"
	TP_PID=$CTF_LAST_PID
	ctf_ok "ctflowd starts and listens for DESTROY events"
	tp_wait_log 'conn 1 opened' 5
	ctf_check "ctflowd connects to the collector" grep -q 'conn 1 opened' "$TP_CLOG"
}

# tp_wait_log PATTERN MAX_S: wait until the collector logs a line matching
# PATTERN; 1 on timeout
tp_wait_log() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do grep -q "$1" "$TP_CLOG" && return 0; sleep 0.1; done
	return 1
}

# tp_log_time PATTERN: the time stamp of the first collector log line matching
tp_log_time() { awk -v p="$1" '$0 ~ p { print $1; exit }' "$TP_CLOG"; }

# tp_stop: stops ctflowd and then the collector, checking that both exit 0;
# ctflowd's final statistics line in TP_FINAL.  Checks that it counts all
# TP_N records delivered and none lost.
tp_stop() {
	ctf_stop "$TP_PID" 20
	ctf_is "$CTF_STOP_STATUS/$CTF_STOP_KILLED" 0/0 "ctflowd exits 0 on SIGTERM (exit status/killed)"
	TP_FINAL=$(grep ' final: ' "$TP_LOG" | tail -1)
	ctf_diag "final $(printf '%s\n' "$TP_FINAL" | grep -o 'export tcp: [^;]*')"
	ctf_is "$(ctf_stat_export "$TP_FINAL" tcp records)/$(ctf_stat_export "$TP_FINAL" tcp lost)" "$TP_N/0" \
		"final statistics: $TP_N records delivered, none lost (records/lost)"
	ctf_stop "$TP_COLL_PID" 5
	ctf_is "$CTF_STOP_STATUS/$CTF_STOP_KILLED" 0/0 "collector stops on SIGTERM (exit status/killed)"
	grep -E ' (opened|closed|reset|stops) ' "$TP_CLOG" | sed 's/^/# collector: /'
}

# tp_score MODE: tcp_peer_score.py over the collector's files and the JSON
# export (MODE once or resent, see there), as TAP
tp_score() {
	"$PYTHON" "$CTF_LIB_DIR/tcp_peer_score.py" "$TP_COLL_DIR" "$TP_JSON" $CLI_IP $SRV_IP \
		$TP_DPORT $TP_SPORT $TP_N $TP_PKTS $TP_FWD_BYTES "$1" >"$TP_DIR/score.txt" 2>&1
	ctf_report_score <"$TP_DIR/score.txt"
}
