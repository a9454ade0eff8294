#!/bin/bash
# corrupt_journal.sh - damaged journal and cursor files are found at start,
# set aside with one log line, and the good records are still delivered.
#
# In fresh namespaces (lib.sh) the router runs ctflowd with spool_max = 1M
# and two exports: [export tcp] IPFIX over TCP to a collector that is not
# running, so its records stay in the journal, and [export json], a file,
# whose lines are the journal's records in position order (line i is
# position i): the reference for what each position held.  4,000 UDP flows
# end; ctflowd stops (SIGTERM, handover_timeout 0).
#
# With spool_max = 1M a segment takes min(64 MiB, spool_max / 2) = 524,288
# bytes, i.e. (524,288 - 32) / 248 = 2,113 frames (src/spool/journal.c,
# journal_open), so the 4,000 records lie in two segments:
#   journal-0000000000000000  positions 0..2112     524,056 bytes
#   journal-0000000000000841  positions 2113..3999  468,008 bytes
# and cursor-tcp says 0 (nothing delivered).  The test checks that layout,
# then damages a copy of the state directory in one way per case and starts
# ctflowd on it with the collector up:
#   (a) the last segment cut 100 bytes into its frame 1000 (position 3113):
#       positions 0..3112 delivered; the 100 bytes set aside
#   (b) four bytes flipped inside frame 1500 of the first segment: its
#       frames from there on are set aside, positions 0..1499 and the whole
#       second segment (2113..3999) delivered
#   (c) an empty file journal-0000000000000fa0 (where the next segment would
#       start): set aside, all 4,000 delivered
#   (d) the first segment's header says format version 3 (with a header CRC
#       that matches, so the version is the only fault): the file is set
#       aside, the second segment's 1,887 records delivered
#   (e) cursor-tcp says position 4000 but fails its CRC: it must not be
#       trusted, so all 4,000 are delivered (a replay from the oldest may
#       repeat records, with their flowId; none may be missing)
# Each case: ctflowd starts and keeps running; a warning line names the file
# and the fault (and, for damage inside a segment, the offset of the first
# bad frame); the bad part is in spool/corrupt/; the collector gets exactly
# the expected positions (by flowId and 5-tuple, against the JSON reference),
# with exact counters and nothing else; ctflowd exits 0 on SIGTERM.  Then
# ctflowd starts once more on the recovered directory: no warning, and
# nothing sent again (the cursor must be at the end of what was delivered).
#
# Environment: see lib.sh.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ctf_require_root
ctf_require_cmd "$PYTHON" "$CTFLOWD"

PORT=4739
N=4000
PKTS=2 LEN=50
UDP_FWD_BYTES=$((PKTS * (28 + LEN)))
DPORT=20000 SPORT=1024
# the journal's layout (src/spool/journal.h, journal.c), see above
HDR=32 FRAME=248 SEG_RECORDS=2113
SEG0=journal-0000000000000000
SEG1=journal-$(printf '%016x' $SEG_RECORDS)

T_BEGIN=$(ctf_now)
ctf_setup
DIR=$CTF_WORK/cases
mkdir -p "$DIR"
export CTF_LIB_DIR

# ------------------------------------------------------------------ helpers

fsize() { stat -c %s "$1" 2>/dev/null || echo missing; }

# jtool.py: reads and damages journal and cursor files the way the layout in
# src/spool/journal.h and cursor.h says (little-endian, CRC-32C).  Every
# change it makes is checked against the file first, so a layout that
# differs from what this test assumes stops the test instead of testing
# something else.
JTOOL=$DIR/jtool.py
cat >"$JTOOL" <<'PY'
import struct, sys

def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF

SEG = struct.Struct("<IIIIQQ")     # magic version record_size crc first reserved
CUR = struct.Struct("<IIQII")      # magic version position crc reserved

def seg_header(path):
    with open(path, "rb") as f:
        h = list(SEG.unpack(f.read(SEG.size)))
    want = h[3]
    h[3] = 0
    if h[0] != 0x4A465443 or crc32c(SEG.pack(*h)) != want:
        sys.exit("%s: not a segment header this tool understands" % path)
    return h

def cursor(path):
    with open(path, "rb") as f:
        c = list(CUR.unpack(f.read()))
    want = c[3]
    c[3] = 0
    if c[0] != 0x43465443 or crc32c(CUR.pack(*c)) != want:
        sys.exit("%s: not a cursor this tool understands" % path)
    return c

cmd, path = sys.argv[1:3]
if cmd == "header":            # prints: version record_size first
    h = seg_header(path)
    print(h[1], h[2], h[4])
elif cmd == "cursor":          # prints the position
    print(cursor(path)[2])
elif cmd == "set-version":     # VERSION: a valid header of another version
    h = seg_header(path)
    h[1], h[3] = int(sys.argv[3]), 0
    h[3] = crc32c(SEG.pack(*h))
    with open(path, "r+b") as f:
        f.write(SEG.pack(*h))
elif cmd == "flip":            # OFFSET COUNT: invert COUNT bytes
    off, n = int(sys.argv[3]), int(sys.argv[4])
    with open(path, "r+b") as f:
        f.seek(off)
        b = f.read(n)
        f.seek(off)
        f.write(bytes(x ^ 0xFF for x in b))
elif cmd == "bad-cursor":      # POSITION: a cursor for POSITION whose CRC is wrong
    c = cursor(path)
    c[2], c[3] = int(sys.argv[3]), 0
    c[3] = crc32c(CUR.pack(*c)) ^ 0x5A5A5A5A
    with open(path, "r+b") as f:
        f.write(CUR.pack(*c))
else:
    sys.exit("unknown command " + cmd)
PY

# The judge of one case: the collector's files against the JSON reference.
SCORE=$DIR/score.py
cat >"$SCORE" <<'PY'
import glob, json, os, re, sys
from collections import defaultdict
sys.path.insert(0, os.environ["CTF_LIB_DIR"])
import ipfix_verify as iv

# score LABEL JSON COLLDIR RANGES PKTS BYTES DUPS_OK   RANGES: a-b,c-d (positions)
label, json_path, d, ranges = sys.argv[1:5]
pkts, nbytes, dups_ok = int(sys.argv[5]), int(sys.argv[6]), sys.argv[7] == "1"

def res(ok, what, *detail):
    print("|".join(["OK" if ok else "NOTOK", "%s: %s" % (label, what)] + [str(x) for x in detail]))

ref = []
for line in open(json_path, encoding="utf-8"):
    o = json.loads(line)
    ref.append((o["flow_id"], (4, o["proto"], o["src"], o["sport"], o["dst"], o["dport"])))
want = set()
for r in ranges.split(","):
    a, b = (int(x) for x in r.split("-"))
    want |= set(ref[a:b + 1])
files = sorted(glob.glob(os.path.join(d, "conn-*.ipfix")),
               key=lambda p: int(re.search(r"conn-(\d+)", p).group(1)))
got, broken, errors = defaultdict(list), [], []
for p in files:
    dec = iv.Decoder(open(p, "rb").read()).run()
    if dec.truncated:
        broken.append(os.path.basename(p))
    errors += [e for e in dec.errors if e]
    for r in dec.records:
        got[(r.get((0, 148)), iv.flow_key(r))].append(r)
res(not errors, "the collector's %d connection file(s) decode" % len(files), *errors[:3])
missing, extra = want - set(got), set(got) - want
wrong = sum(1 for v in got.values() for r in v
            if (iv.first(r, iv.FWD_PKTS), iv.first(r, iv.FWD_BYTES),
                iv.first(r, iv.REV_PKTS), iv.first(r, iv.REV_BYTES)) != (pkts, nbytes, 0, 0))
res(not missing and not extra,
    "exactly the %d records of positions %s arrived (by flowId and 5-tuple): %d" % (len(want), ranges, len(set(got) & want)),
    *(["%d missing" % len(missing)] if missing else []),
    *(["%d not expected, e.g. %s" % (len(extra), sorted(extra, key=str)[:3])] if extra else []))
res(not wrong, "counters exact (%d pkts/%d bytes, reply 0/0)" % (pkts, nbytes),
    *(["%d records wrong" % wrong] if wrong else []))
# a repeat carries the flowId of its first sending (the key includes it),
# so a repeat with another flowId shows up above as a record not expected
ndup = sum(len(v) - 1 for v in got.values())
print("# %s: %d duplicate records; connections broken mid-message: %s"
      % (label, ndup, ", ".join(broken) or "none"))
res(dups_ok or not ndup, "no record twice" if not dups_ok else
    "repeats (%d) allowed, each with its original flowId" % ndup,
    *(["%d duplicates" % ndup] if ndup and not dups_ok else []))
PY

# ------------------------------------------------------------------ the journal to damage

CONF0=$DIR/ctflowd.conf LOG0=$DIR/ctflowd.log JSON=$DIR/flows.json
CTF_SPOOL_MAX=1M ctf_ctflowd_conf "$CONF0"
cat >>"$CONF0" <<EOF

[export tcp]
format = ipfix
transport = tcp
destination = 127.0.0.1:$PORT
flush_interval = 200ms
reconnect_min = 100ms
reconnect_max = 500ms

[export json]
format = json
transport = file
path = $JSON
flush_interval = 100ms
EOF
STATE0=$CTF_WORK/state SPOOL0=$CTF_WORK/state/spool
ctf_start_ctflowd "$CONF0" "$LOG0" || ctf_bail "ctflowd did not start (config $CONF0)"
PID=$CTF_LAST_PID
nf0=$(ctf_newflows)
out=$(ctf_nsx "$NS_CLI" "$FLOWGEN" udp -d $SRV_IP -n $N -P $PKTS -l $LEN -p $DPORT -S $SPORT 2>&1) ||
	ctf_diag "flowgen: $out"
ctf_is "$(($(ctf_newflows) - nf0))" $N "the router created $N entries"
ctf_ct_flush
for ((i = 0; i < 150; i++)); do [ "$(wc -l <"$JSON" 2>/dev/null || echo 0)" -ge $N ] && break; sleep 0.1; done
ctf_wait_idle "$PID" 1.5 60 || ctf_diag "ctflowd not idle after 60 s (or gone)"
# the TCP export is down, so a stop waits out its grace period (10 s)
ctf_stop "$PID" 25
ctf_is "$CTF_STOP_STATUS/$CTF_STOP_KILLED" 0/0 "first run: ctflowd exits 0 on SIGTERM (exit status/killed)"
ctf_is "$(wc -l <"$JSON")" $N "first run: the JSON reference holds $N records"
final=$(grep ' final: ' "$LOG0" | tail -1)
ctf_is "$(ctf_stat_export "$final" tcp records)" 0 "first run: nothing was delivered to the absent collector"

# the layout the cases rely on
ls -l "$SPOOL0" | sed 's/^/# spool: /'
layout="$(fsize "$SPOOL0/$SEG0") $(fsize "$SPOOL0/$SEG1") $(fsize "$SPOOL0/journal-$(printf '%016x' $N)")"
layout+=" $("$PYTHON" "$JTOOL" header "$SPOOL0/$SEG0" 2>&1) / $("$PYTHON" "$JTOOL" header "$SPOOL0/$SEG1" 2>&1)"
layout+=" / cursor $("$PYTHON" "$JTOOL" cursor "$SPOOL0/cursor-tcp" 2>&1)"
want_layout="$((HDR + SEG_RECORDS * FRAME)) $((HDR + (N - SEG_RECORDS) * FRAME)) missing"
want_layout+=" 2 224 0 / 2 224 $SEG_RECORDS / cursor 0"
ctf_is "$layout" "$want_layout" "journal as expected: two segments of $SEG_RECORDS and $((N - SEG_RECORDS)) records, version 2, cursor-tcp at 0 (sizes, headers, cursor)"
[ "$layout" = "$want_layout" ] || ctf_bail "the journal is not laid out as this test assumes"

# ------------------------------------------------------------------ the cases

# run_case NAME RANGES DUPS_OK FILE FAULT_RE [OFFSET] CORRUPT_NAME [CORRUPT_SIZE]
# Starts ctflowd on $DIR/NAME/state (damaged by the caller) with the
# collector up and judges:
#   FILE, FAULT_RE, OFFSET  a warning line names FILE, matches FAULT_RE and,
#                           when OFFSET is given, says "offset OFFSET"
#   CORRUPT_NAME [SIZE]     spool/corrupt/CORRUPT_NAME holds the bad part
#   RANGES, DUPS_OK         see score.py
run_case() {
	local name=$1 ranges=$2 dups_ok=$3 file=$4 fault=$5 offset=$6 cname=$7 csize=$8
	local cdir=$DIR/$name conf log pid coll st recs want i line
	conf=$cdir/ctflowd.conf log=$cdir/ctflowd.log
	want=$("$PYTHON" -c 'import sys; print(sum(int(b) - int(a) + 1 for a, b in (r.split("-") for r in sys.argv[1].split(","))))' "$ranges")
	sed -e "s|^state_directory = .*|state_directory = $cdir/state|" "$CONF0" |
		awk '/^\[export json\]/ { skip = 1 } !skip' >"$conf"
	ctf_start_tcp_collector "$cdir" "$cdir/collector" $PORT 1
	coll=$CTF_LAST_PID
	if ctf_start_ctflowd "$conf" "$log"; then
		pid=$CTF_LAST_PID
		ctf_ok "$name: ctflowd starts on the damaged state directory"
	else
		ctf_not_ok "$name: ctflowd starts on the damaged state directory"
		ctf_stop "$CTF_LAST_PID" 5
		ctf_stop "$coll" 5
		return
	fi
	for ((i = 0; i < 150; i++)); do
		recs=$(ctf_stat_export "$(ctf_last_stats "$log")" tcp records)
		[ "${recs:-0}" -ge "$want" ] && break
		sleep 0.2
	done
	ctf_wait_idle "$pid" 1.5 30 || ctf_diag "$name: ctflowd not idle after 30 s (or gone)"
	if ctf_alive "$pid"; then
		ctf_ok "$name: ctflowd keeps running"
	else
		ctf_not_ok "$name: ctflowd keeps running"; ctf_diag_file "$log" 20
	fi
	ctf_stop "$pid" 20
	ctf_is "$CTF_STOP_STATUS/$CTF_STOP_KILLED" 0/0 "$name: ctflowd exits 0 on SIGTERM (exit status/killed)"
	ctf_stop "$coll" 5
	grep -E 'warning|critical' "$log" | grep -v 'export tcp: ' | sed "s/^/# $name: ctflowd log: /"
	ctf_diag "$name: final $(grep ' final: ' "$log" | tail -1 | grep -o 'export tcp: [^;]*')"

	# the log line about the fault
	line=$(grep -E "warning: .*$file" "$log" | grep -E "$fault" |
		{ [ -n "$offset" ] && grep -E "offset $offset([^0-9]|$)" || cat; } | head -1)
	if [ -n "$line" ]; then
		ctf_ok "$name: a warning names $file, the fault${offset:+, offset $offset}"
	else
		ctf_not_ok "$name: a warning names $file, the fault (/$fault/)${offset:+ and offset $offset}" \
			"warnings: $(grep -E 'warning' "$log" | grep -v 'export tcp: ' | head -3)"
	fi
	# the bad part set aside
	local got
	got=$(fsize "$cdir/state/spool/corrupt/$cname")
	if [ "$got" != missing ] && { [ -z "$csize" ] || [ "$got" = "$csize" ]; }; then
		ctf_ok "$name: the bad part is in spool/corrupt/$cname ($got bytes)"
	else
		ctf_not_ok "$name: the bad part is in spool/corrupt/$cname${csize:+ ($csize bytes)}" \
			"spool/corrupt: $(ls -l "$cdir/state/spool/corrupt" 2>&1 | tr '\n' ' ')"
	fi
	"$PYTHON" "$SCORE" "$name" "$JSON" "$cdir/collector" "$ranges" $PKTS $UDP_FWD_BYTES "$dups_ok" \
		>"$cdir/score.txt" 2>&1
	ctf_report_score <"$cdir/score.txt"

	cp "$cdir/state/spool/cursor-tcp" "$cdir/cursor-tcp.before-2" 2>/dev/null
	# A second start on the recovered directory: the damage is gone and
	# every record held was confirmed, so there is nothing to warn about
	# and nothing to send again.
	log=$cdir/ctflowd-2.log
	ctf_start_tcp_collector "$cdir" "$cdir/collector-2" $PORT 2
	coll=$CTF_LAST_PID
	if ! ctf_start_ctflowd "$conf" "$log"; then
		ctf_not_ok "$name: ctflowd starts again on the recovered directory"
		ctf_stop "$CTF_LAST_PID" 5
		ctf_stop "$coll" 5
		return
	fi
	pid=$CTF_LAST_PID
	for ((i = 0; i < 50; i++)); do grep -q ' opened from ' "$cdir/collector-2.log" && break; sleep 0.1; done
	ctf_wait_idle "$pid" 1.5 30
	ctf_stop "$pid" 20
	ctf_stop "$coll" 5
	local again=0 f warn
	for f in "$cdir"/collector-2/conn-*.ipfix; do
		[ -e "$f" ] || continue
		recs=$(ctf_kv flow_records "$("$PYTHON" "$CTF_LIB_DIR/ipfix_verify.py" "$f" --allow-truncated | grep '^file=')")
		again=$((again + ${recs:-0}))
	done
	warn=$(grep -E 'warning|critical' "$log" | grep -v 'export tcp: ' | head -3)
	st=$(grep ' final: ' "$log" | tail -1 | grep -o 'export tcp: [^;]*')
	if [ "$again" = 0 ] && [ -z "$warn" ]; then
		ctf_ok "$name: a second start finds nothing wrong and sends nothing again"
	else
		ctf_not_ok "$name: a second start finds nothing wrong and sends nothing again" \
			"$again records sent again; cursor-tcp before it said $("$PYTHON" "$JTOOL" cursor "$cdir/cursor-tcp.before-2" 2>&1)" \
			"final $st" ${warn:+"warnings: $warn"}
	fi
}

# copy_state NAME: a fresh copy of the first run's state directory
copy_state() {
	mkdir -p "$DIR/$1"
	cp -a "$STATE0" "$DIR/$1/state" || ctf_bail "cannot copy $STATE0"
}

# (a) the last segment ends 100 bytes into frame 1000: a torn last write
CUT_FRAME=1000 CUT_BYTES=100
OFF_A=$((HDR + CUT_FRAME * FRAME))
copy_state a-cut
truncate -s $((OFF_A + CUT_BYTES)) "$DIR/a-cut/state/spool/$SEG1"
run_case a-cut "0-$((SEG_RECORDS + CUT_FRAME - 1))" 0 "$SEG1" 'cut short' $OFF_A \
	"$SEG1.from-$OFF_A" $CUT_BYTES

# (b) four bytes flipped in the payload of frame 1500 of the first segment
FLIP_FRAME=1500
OFF_B=$((HDR + FLIP_FRAME * FRAME))
copy_state b-flip
"$PYTHON" "$JTOOL" flip "$DIR/b-flip/state/spool/$SEG0" $((OFF_B + 24 + 60)) 4 ||
	ctf_bail "cannot damage $SEG0"
run_case b-flip "0-$((FLIP_FRAME - 1)),$SEG_RECORDS-$((N - 1))" 0 "$SEG0" 'fails its CRC' $OFF_B \
	"$SEG0.from-$OFF_B" $(((SEG_RECORDS - FLIP_FRAME) * FRAME))

# (c) an empty segment file where the next segment would start
SEG_C=journal-$(printf '%016x' $N)
copy_state c-zero
: >"$DIR/c-zero/state/spool/$SEG_C"
run_case c-zero "0-$((N - 1))" 0 "$SEG_C" ': empty file' '' "$SEG_C" 0

# (d) the first segment written by a (future) format version 3
copy_state d-version
"$PYTHON" "$JTOOL" set-version "$DIR/d-version/state/spool/$SEG0" 3 || ctf_bail "cannot damage $SEG0"
run_case d-version "$SEG_RECORDS-$((N - 1))" 0 "$SEG0" 'format version 3' '' "$SEG0" $((HDR + SEG_RECORDS * FRAME))

# (e) cursor-tcp claims 4000 records delivered but fails its CRC
copy_state e-cursor
"$PYTHON" "$JTOOL" bad-cursor "$DIR/e-cursor/state/spool/cursor-tcp" 4000 || ctf_bail "cannot damage cursor-tcp"
run_case e-cursor "0-$((N - 1))" 1 cursor-tcp 'fails its CRC' '' cursor-tcp 24

ctf_diag "total $(ctf_elapsed "$T_BEGIN") s"
ctf_done
