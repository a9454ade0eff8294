#!/usr/bin/env python3
"""ipfix_verify.py - decode an IPFIX file and score it against what a test sent.

The file holds IPFIX messages back to back (RFC 5655 style), as written by an
IPFIX file exporter, by a collector that stores UDP datagrams, or by a plain
TCP listener that stores the byte stream (several connections may follow one
another: each starts a new transport session).

  ipfix_verify.py FILE [--input ipfix|ipfixdump|nfdump] [--expect SPEC]...
                  [--t0 WALL --t1 WALL [--window S]] [--require-flowid]
                  [--seq check|report] [--allow-truncated]
                  [--ies] [--records K] [--dump TSV]

The same checks can score what other decoders made of an export, so that the
test does not depend on this decoder alone:
  --input ipfixdump  FILE is the text `ipfixDump --in EXPORT` printed (fixbuf's
                     decoding); its "*** File Stats" line must be there and
                     agree with the records printed
  --input nfdump     FILE is the output of `nfdump -q -N -o "fmt:%pr %sa %sp
                     %da %dp %ipkt %ibyt %opkt %obyt %ts %te"` run with TZ=UTC
                     (nfdump puts RFC 5103 reverse counters in its out
                     counters); it has no flowId and no sequence numbers

--expect SPEC names one class of measured flows, as space-separated key=value
pairs:
  name=NAME        label in the output
  proto=N          protocolIdentifier (required)
  family=4|6       IPv4 or IPv6 records only
  dport=LO[-HI]    destinationTransportPort range (required)
  sport=LO[-HI]    sourceTransportPort range
  src=ADDR dst=ADDR  source/destination address (IPv4 or IPv6)
  count=N          exactly N distinct flows expected (required)
  pkts= bytes=     forward (original direction) packets/octets of every flow
  rpkts= rbytes=   reverse (reply direction, RFC 5103) packets/octets
  flows=FILE       per-flow expectations, one flow a line:
                   PROTO SRC SPORT DST DPORT PKTS BYTES RPKTS RBYTES [...]
A record belongs to the first class it matches.  Counters come from
octetTotalCount/packetTotalCount (85/86), or the delta counters (1/2), and the
reverse ones with enterprise number 29305.

Checks (each failure prints a FAIL line; exit status 1):
  * the file decodes: no malformed message or set, no data set without a
    template, no truncated message at the end (unless --allow-truncated);
  * per class: exactly `count` distinct flows, no 5-tuple twice, counters
    exact in both directions;
  * flowId (148): no value twice among flow records; with --require-flowid
    every flow record has one;
  * with --t0/--t1: flowStart within [t0-slack, t1+slack], flowEnd within
    [t0-slack, t1+window], and flowEnd >= flowStart (milliseconds; seconds,
    micro- and nanosecond elements are converted);
  * sequence numbers (RFC 7011 section 3.1: the number of data records sent
    in the session and observation domain before this message): every gap
    and every step backwards is reported; with --seq check they fail.
Prints key=value summary lines and finally result=pass or result=fail.
"""
import argparse
import ipaddress
import struct
import sys
from collections import Counter, defaultdict

REVERSE_PEN = 29305  # RFC 5103 reverse information elements

# IANA names of the elements a flow exporter is likely to send.
IE_NAMES = {
    1: "octetDeltaCount", 2: "packetDeltaCount", 4: "protocolIdentifier",
    5: "ipClassOfService", 6: "tcpControlBits", 7: "sourceTransportPort",
    8: "sourceIPv4Address", 10: "ingressInterface", 11: "destinationTransportPort",
    12: "destinationIPv4Address", 14: "egressInterface", 27: "sourceIPv6Address",
    28: "destinationIPv6Address", 32: "icmpTypeCodeIPv4", 60: "ipVersion",
    85: "octetTotalCount", 86: "packetTotalCount", 95: "applicationId",
    130: "exporterIPv4Address", 131: "exporterIPv6Address",
    136: "flowEndReason", 139: "icmpTypeCodeIPv6", 144: "exportingProcessId",
    145: "templateId", 148: "flowId", 149: "observationDomainId",
    150: "flowStartSeconds", 151: "flowEndSeconds",
    152: "flowStartMilliseconds", 153: "flowEndMilliseconds",
    154: "flowStartMicroseconds", 155: "flowEndMicroseconds",
    156: "flowStartNanoseconds", 157: "flowEndNanoseconds",
    176: "icmpTypeIPv4", 177: "icmpCodeIPv4", 178: "icmpTypeIPv6", 179: "icmpCodeIPv6",
    210: "paddingOctets", 225: "postNATSourceIPv4Address",
    226: "postNATDestinationIPv4Address", 227: "postNAPTSourceTransportPort",
    228: "postNAPTDestinationTransportPort", 230: "natEvent", 231: "initiatorOctets",
    232: "responderOctets", 233: "firewallEvent", 234: "ingressVRFID",
    281: "postNATSourceIPv6Address", 282: "postNATDestinationIPv6Address",
    298: "initiatorPackets", 299: "responderPackets", 303: "informationElementId",
    339: "informationElementDataType", 341: "informationElementName",
    344: "informationElementSemantics", 346: "privateEnterpriseNumber",
}
IPV4_IES = {8, 12, 130, 225, 226}
IPV6_IES = {27, 28, 131, 281, 282}
VARLEN = 65535
NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900-01-01 to 1970-01-01

# (enterprise, id) in order of preference
FWD_PKTS = [(0, 86), (0, 2), (0, 298)]
FWD_BYTES = [(0, 85), (0, 1), (0, 231)]
REV_PKTS = [(REVERSE_PEN, 86), (REVERSE_PEN, 2), (0, 299)]
REV_BYTES = [(REVERSE_PEN, 85), (REVERSE_PEN, 1), (0, 232)]


def ie_name(ent, ie):
    name = IE_NAMES.get(ie, "ie%d" % ie)
    if ent == REVERSE_PEN:
        return "reverse" + name[0].upper() + name[1:]
    if ent:
        return "%d/%s" % (ent, name if ie in IE_NAMES else "ie%d" % ie)
    return name


class Template:
    __slots__ = ("tid", "fields", "scope", "fixed", "minlen")

    def __init__(self, tid, fields, scope):
        self.tid = tid
        self.fields = fields          # [(ent, ie, length)]
        self.scope = scope            # number of scope fields (options templates)
        self.fixed = all(f[2] != VARLEN for f in fields)
        self.minlen = sum(1 if f[2] == VARLEN else f[2] for f in fields)


def decode_value(ent, ie, raw):
    if ent == 0 and ie in IPV4_IES and len(raw) == 4:
        return str(ipaddress.IPv4Address(raw))
    if ent == 0 and ie in IPV6_IES and len(raw) == 16:
        return str(ipaddress.IPv6Address(raw))
    if 1 <= len(raw) <= 8:
        return int.from_bytes(raw, "big")
    return bytes(raw)


class Decoder:
    """Walks the messages; keeps templates per (session, domain)."""

    def __init__(self, data):
        self.data = data
        self.templates = {}           # (session, odid, tid) -> Template
        self.all_templates = {}       # (odid, tid) -> Template, as last seen
        self.messages = 0
        self.template_records = 0
        self.withdrawals = 0
        self.data_records = 0         # every data record, options records included
        self.records = []             # flow records: dict (ent, ie) -> value
        self.option_records = 0
        self.errors = []
        self.truncated = False
        self.no_template_sets = 0
        self.sessions = 0
        # sequence accounting
        self.seq_next = {}            # odid -> expected sequence number
        self.seq_gaps = 0
        self.seq_lost = 0
        self.seq_back = 0
        self.seq_unknown = 0
        self.seq_events = []

    def error(self, off, msg):
        if len(self.errors) < 20:
            self.errors.append("offset %d: %s" % (off, msg))
        else:
            self.errors.append(None)

    def run(self):
        data, off, n = self.data, 0, len(self.data)
        session = 0
        self.sessions = 1 if n else 0
        while off < n:
            if n - off < 16:
                self.truncated = True
                break
            ver, mlen, etime, seq, odid = struct.unpack_from("!HHIII", data, off)
            if ver != 10 or mlen < 16:
                self.error(off, "not an IPFIX message header (version %d, length %d)" % (ver, mlen))
                break
            if off + mlen > n:
                self.truncated = True
                break
            first_set = struct.unpack_from("!H", data, off + 16)[0] if mlen >= 20 else 0
            # A new transport session (next TCP connection in a stream
            # capture, a restarted exporter) starts again at sequence 0 with
            # its templates.
            if self.messages and seq == 0 and first_set in (2, 3) and \
                    self.seq_next.get(odid, 0) != 0:
                session += 1
                self.sessions += 1
                self.seq_next = {}
            self.messages += 1
            nrec, known = self.message(session, odid, off + 16, off + mlen)
            self.sequence(odid, seq, nrec, known, off)
            off += mlen
        return self

    def sequence(self, odid, seq, nrec, known, off):
        exp = self.seq_next.get(odid)
        if exp is not None and seq != exp:
            diff = (seq - exp) & 0xFFFFFFFF
            if diff < 0x80000000:
                self.seq_gaps += 1
                self.seq_lost += diff
                what = "gap: %d records missing" % diff
            else:
                self.seq_back += 1
                what = "backwards by %d" % (0x100000000 - diff)
            if len(self.seq_events) < 10:
                where = " at offset %d" % off if off >= 0 else ""
                self.seq_events.append("message %d%s, domain %d: sequence %d, expected %d (%s)"
                                       % (self.messages, where, odid, seq, exp, what))
        if known:
            self.seq_next[odid] = (seq + nrec) & 0xFFFFFFFF
        else:
            # records of an unknown template cannot be counted
            self.seq_unknown += 1
            self.seq_next.pop(odid, None)

    def message(self, session, odid, p, end):
        data = self.data
        nrec, known = 0, True
        while p < end:
            if end - p < 4:
                self.error(p, "%d stray bytes at the end of a message" % (end - p))
                break
            sid, slen = struct.unpack_from("!HH", data, p)
            if slen < 4 or p + slen > end:
                self.error(p, "set %d with bad length %d" % (sid, slen))
                break
            body, bend = p + 4, p + slen
            if sid in (2, 3):
                self.template_set(session, odid, sid, body, bend)
            elif sid >= 256:
                t = self.templates.get((session, odid, sid))
                if t is None:
                    self.no_template_sets += 1
                    known = False
                    self.error(p, "data set %d without a template (domain %d)" % (sid, odid))
                else:
                    nrec += self.data_set(t, body, bend)
            else:
                self.error(p, "reserved set id %d" % sid)
            p = bend
        return nrec, known

    def template_set(self, session, odid, sid, p, end):
        data = self.data
        head = 4 if sid == 2 else 6
        while end - p >= head:
            if sid == 2:
                tid, count = struct.unpack_from("!HH", data, p)
                scope = 0
            else:
                tid, count, scope = struct.unpack_from("!HHH", data, p)
            if tid < 256:
                break  # padding
            if count == 0:  # withdrawal (RFC 7011 section 8.1)
                p += 4
                self.withdrawals += 1
                self.templates.pop((session, odid, tid), None)
                continue
            p += head
            fields = []
            for _ in range(count):
                if end - p < 4:
                    self.error(p, "template %d truncated" % tid)
                    return
                ie, ln = struct.unpack_from("!HH", data, p)
                p += 4
                ent = 0
                if ie & 0x8000:
                    if end - p < 4:
                        self.error(p, "template %d truncated" % tid)
                        return
                    ent = struct.unpack_from("!I", data, p)[0]
                    p += 4
                    ie &= 0x7FFF
                fields.append((ent, ie, ln))
            t = Template(tid, fields, scope)
            self.templates[(session, odid, tid)] = t
            self.all_templates[(odid, tid)] = t
            self.template_records += 1

    def data_set(self, t, p, end):
        data = self.data
        n = 0
        if t.minlen == 0:
            self.error(p, "template %d has no content" % t.tid)
            return 0
        while end - p >= t.minlen:
            rec = {}
            for ent, ie, ln in t.fields:
                if ln == VARLEN:
                    ln = data[p]
                    p += 1
                    if ln == 255:
                        if end - p < 2:
                            self.error(p, "variable-length field runs past its set")
                            return n
                        ln = struct.unpack_from("!H", data, p)[0]
                        p += 2
                if p + ln > end:
                    self.error(p, "record of template %d runs past its set" % t.tid)
                    return n
                rec[(ent, ie)] = decode_value(ent, ie, data[p:p + ln])
                p += ln
            n += 1
            self.data_records += 1
            if t.scope == 0 and (0, 4) in rec:
                self.records.append(rec)
            else:
                self.option_records += 1
        return n


# ---------------------------------------------------------------- other decoders

def parse_utc(text):
    """'YYYY-MM-DD HH:MM:SS[.fff]' in UTC -> ms since the epoch."""
    import calendar
    import time as _time
    base, _, frac = text.partition(".")
    secs = calendar.timegm(_time.strptime(base, "%Y-%m-%d %H:%M:%S"))
    return secs * 1000 + (int((frac + "000")[:3]) if frac else 0)


class TextDecoded:
    """What ipfixDump or nfdump printed, in the shape Decoder produces."""

    def __init__(self):
        self.templates = {}
        self.all_templates = {}
        self.messages = 0
        self.template_records = 0
        self.withdrawals = 0
        self.data_records = 0
        self.records = []
        self.option_records = 0
        self.errors = []
        self.truncated = False
        self.no_template_sets = 0
        self.sessions = 0
        self.seq_next = {}
        self.seq_gaps = self.seq_lost = self.seq_back = self.seq_unknown = 0
        self.seq_events = []

    error = Decoder.error
    sequence = Decoder.sequence


TIME_IES = {150: 1000, 151: 1000, 152: 1, 153: 1}


def read_ipfixdump(text):
    """Records from the text ipfixDump prints (one field a line:
    '(ID) name : value' or '(PEN/ID) ...'; '(S)' marks scope fields)."""
    import re
    d = TextDecoded()
    field_re = re.compile(r"^\s+\((?:(\d+)/)?(\d+)\)\s*(\(S\))?\s*(\S+)\s*:\s?(.*)$")
    hdr_re = re.compile(r"sequence number:\s*(\d+)")
    dom_re = re.compile(r"observation domain id:\s*(\d+)")
    stats_re = re.compile(r"^\*\*\* File Stats: (\d+) Messages, (\d+) Data Records, (\d+) Template Records")
    rec, scoped, in_data = None, False, False
    odid, seq, nrec = 0, None, 0
    file_stats = None

    def close_record():
        nonlocal rec
        if rec is not None:
            d.data_records += 1
            if not scoped and (0, 4) in rec:
                d.records.append(rec)
            else:
                d.option_records += 1
        rec = None

    def close_message():
        if seq is not None:
            d.sequence(odid, seq, nrec, True, -1)

    for line in text.splitlines():
        if line.startswith("--- Message Header"):
            close_record()
            close_message()
            d.messages += 1
            seq, nrec, in_data = None, 0, False
            continue
        m = dom_re.search(line)
        if m:
            odid = int(m.group(1))
        m = hdr_re.search(line)
        if m:
            seq = int(m.group(1))
            continue
        if line.startswith("--- data record"):
            close_record()
            rec, scoped, in_data = {}, False, True
            nrec += 1
            continue
        if line.startswith("--- template record") or line.startswith("--- options template record"):
            close_record()
            d.template_records += 1
            in_data = False
            continue
        m = stats_re.match(line)
        if m:
            close_record()
            file_stats = tuple(int(x) for x in m.groups())
            continue
        if not in_data or rec is None:
            continue
        m = field_re.match(line)
        if not m:
            continue
        ent, ie = int(m.group(1) or 0), int(m.group(2))
        scoped = scoped or bool(m.group(3))
        val = m.group(5).strip()
        if ent == 0 and ie in TIME_IES:
            try:
                rec[(ent, ie)] = parse_utc(val) // TIME_IES[ie]
            except ValueError:
                d.error(0, "unreadable time '%s'" % val)
        elif ent == 0 and ie in IPV4_IES | IPV6_IES:
            rec[(ent, ie)] = norm_addr(val)
        elif re.fullmatch(r"\d+", val):
            rec[(ent, ie)] = int(val)
        else:
            rec[(ent, ie)] = val
    close_record()
    close_message()
    d.sessions = 1 if d.messages else 0
    if file_stats is None:
        d.error(0, "no '*** File Stats' line: ipfixDump could not read the input")
    elif file_stats[0] != d.messages or file_stats[1] != d.data_records:
        d.error(0, "File Stats say %d messages / %d data records, %d / %d printed"
                % (file_stats[0], file_stats[1], d.messages, d.data_records))
    return d


def read_nfdump(text):
    """Records from nfdump -q -N -o 'fmt:%pr %sa %sp %da %dp %ipkt %ibyt %opkt %obyt %ts %te'."""
    d = TextDecoded()
    for n, line in enumerate(text.splitlines(), 1):
        w = line.split()
        if not w or line.strip() == "No matching flows":
            continue
        try:
            if len(w) != 13:
                raise ValueError("%d columns" % len(w))
            src, dst = norm_addr(w[1]), norm_addr(w[3])
            v6 = ":" in src
            rec = {(0, 4): int(w[0]),
                   (0, 27 if v6 else 8): src, (0, 28 if v6 else 12): dst,
                   (0, 7): int(w[2]), (0, 11): int(w[4]),
                   (0, 86): int(w[5]), (0, 85): int(w[6]),
                   (REVERSE_PEN, 86): int(w[7]), (REVERSE_PEN, 85): int(w[8]),
                   (0, 152): parse_utc(w[9] + " " + w[10]),
                   (0, 153): parse_utc(w[11] + " " + w[12])}
        except ValueError as e:
            d.error(n, "line %d unreadable (%s): %s" % (n, e, line.strip()))
            continue
        d.records.append(rec)
        d.data_records += 1
    return d


# ---------------------------------------------------------------- helpers

def first(rec, keys):
    for k in keys:
        if k in rec:
            return rec[k]
    return None


def time_ms(rec, which):
    """flowStart/flowEnd in ms since the epoch, from whichever element is there."""
    base = 150 if which == "start" else 151
    if (0, base + 2) in rec:
        return rec[(0, base + 2)]
    if (0, base) in rec:
        return rec[(0, base)] * 1000
    if (0, base + 4) in rec:
        return rec[(0, base + 4)] // 1000
    if (0, base + 6) in rec:
        v = rec[(0, base + 6)]
        return ((v >> 32) - NTP_EPOCH_OFFSET) * 1000 + ((v & 0xFFFFFFFF) * 1000 >> 32)
    return None


def flow_key(rec):
    if (0, 8) in rec:
        fam, src, dst = 4, rec.get((0, 8)), rec.get((0, 12))
    else:
        fam, src, dst = 6, rec.get((0, 27)), rec.get((0, 28))
    return (fam, rec.get((0, 4)), src, rec.get((0, 7)), dst, rec.get((0, 11)))


def norm_addr(a):
    return str(ipaddress.ip_address(a))


def parse_range(v):
    lo, _, hi = v.partition("-")
    return int(lo), int(hi or lo)


class Expect:
    INT_KEYS = ("proto", "family", "count", "pkts", "bytes", "rpkts", "rbytes")

    def __init__(self, spec):
        self.spec = spec
        kv = {}
        for item in spec.split():
            k, sep, v = item.partition("=")
            if not sep:
                raise ValueError("'%s' is not key=value" % item)
            kv[k] = v
        unknown = set(kv) - {"name", "dport", "sport", "src", "dst", "flows"} - set(self.INT_KEYS)
        if unknown:
            raise ValueError("unknown keys %s" % ", ".join(sorted(unknown)))
        for k in ("proto", "dport", "count"):
            if k not in kv:
                raise ValueError("%s= is required" % k)
        self.name = kv.get("name", "proto%s-dport%s" % (kv["proto"], kv["dport"]))
        self.vals = {k: int(kv[k]) for k in self.INT_KEYS if k in kv}
        self.dport = parse_range(kv["dport"])
        self.sport = parse_range(kv["sport"]) if "sport" in kv else None
        self.src = norm_addr(kv["src"]) if "src" in kv else None
        self.dst = norm_addr(kv["dst"]) if "dst" in kv else None
        self.per_flow = None
        if "flows" in kv:
            self.per_flow = {}
            with open(kv["flows"]) as f:
                for line in f:
                    w = line.split()
                    if len(w) < 9 or w[0].startswith("#"):
                        continue
                    k = (int(w[0]), norm_addr(w[1]), int(w[2]), norm_addr(w[3]), int(w[4]))
                    self.per_flow[k] = tuple(int(x) for x in w[5:9])
        self.records = []

    def matches(self, rec, key):
        fam, proto, src, sport, dst, dport = key
        if proto != self.vals["proto"]:
            return False
        if "family" in self.vals and fam != self.vals["family"]:
            return False
        if dport is None or not self.dport[0] <= dport <= self.dport[1]:
            return False
        if self.sport and (sport is None or not self.sport[0] <= sport <= self.sport[1]):
            return False
        if (self.src and src != self.src) or (self.dst and dst != self.dst):
            return False
        return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("file")
    ap.add_argument("--input", choices=("ipfix", "ipfixdump", "nfdump"), default="ipfix",
                    help="what FILE holds [ipfix]")
    ap.add_argument("--expect", action="append", default=[], metavar="SPEC")
    ap.add_argument("--t0", type=float, help="wall clock time the workload began")
    ap.add_argument("--t1", type=float, help="wall clock time the workload ended")
    ap.add_argument("--window", type=float, default=120,
                    help="seconds after t1 a flow may still end (timeouts, flush) [120]")
    ap.add_argument("--slack", type=float, default=2, help="clock slack in seconds [2]")
    ap.add_argument("--require-flowid", action="store_true")
    ap.add_argument("--no-other", action="store_true",
                    help="a flow record that matches no --expect class is a failure")
    ap.add_argument("--seq", choices=("check", "report"), default="check")
    ap.add_argument("--allow-truncated", action="store_true",
                    help="a cut-off last message (stream capture) is not a failure")
    ap.add_argument("--ies", action="store_true", help="print the templates")
    ap.add_argument("--records", type=int, default=0, help="print the first K flow records")
    ap.add_argument("--dump", help="write every flow record to this file (TSV)")
    a = ap.parse_args()

    try:
        classes = [Expect(s) for s in a.expect]
    except (ValueError, OSError) as e:
        ap.error("--expect: %s" % e)
    try:
        with open(a.file, "rb") as f:
            data = f.read()
    except OSError as e:
        print("result=fail error=%s" % str(e).replace(" ", "_"))
        return 2

    if a.input == "ipfix":
        dec = Decoder(data).run()
    elif a.input == "ipfixdump":
        dec = read_ipfixdump(data.decode("utf-8", "replace"))
    else:
        dec = read_nfdump(data.decode("utf-8", "replace"))
    fails = []

    # ---- the file as a whole
    errs = [e for e in dec.errors if e]
    nerr = len(dec.errors)
    if nerr:
        fails.append("%d decoding errors, first: %s" % (nerr, "; ".join(errs[:3])))
    if dec.truncated and not a.allow_truncated:
        fails.append("the last message is truncated")
    if dec.seq_gaps or dec.seq_back:
        msg = "sequence numbers: %d gaps (%d records), %d steps backwards: %s" % (
            dec.seq_gaps, dec.seq_lost, dec.seq_back, "; ".join(dec.seq_events[:3]))
        if a.seq == "check":
            fails.append(msg)
        else:
            print("# " + msg)

    keys = [flow_key(r) for r in dec.records]
    ids = Counter(r[(0, 148)] for r in dec.records if (0, 148) in r)
    flowid_missing = sum(1 for r in dec.records if (0, 148) not in r)
    flowid_dups = sum(c - 1 for c in ids.values() if c > 1)
    if flowid_dups:
        ex = [i for i, c in ids.items() if c > 1][:3]
        fails.append("%d records repeat a flowId (e.g. %s)" % (flowid_dups, ex))
    if a.require_flowid and flowid_missing:
        fails.append("%d flow records without flowId" % flowid_missing)
    all_dups = sum(c - 1 for c in Counter(keys).values() if c > 1)

    # ---- classes
    other = 0
    for rec, key in zip(dec.records, keys):
        for c in classes:
            if c.matches(rec, key):
                c.records.append((rec, key))
                break
        else:
            other += 1

    summary = dict(file=a.file, input=a.input, bytes=len(data), messages=dec.messages, sessions=dec.sessions,
                   parse_errors=nerr, truncated=int(dec.truncated),
                   templates=len(dec.all_templates), template_records=dec.template_records,
                   withdrawals=dec.withdrawals, data_records=dec.data_records,
                   flow_records=len(dec.records), option_records=dec.option_records,
                   data_sets_without_template=dec.no_template_sets,
                   seq_gaps=dec.seq_gaps, seq_lost_records=dec.seq_lost,
                   seq_backwards=dec.seq_back, seq_unknown=dec.seq_unknown,
                   flowid_missing=flowid_missing, flowid_dups=flowid_dups,
                   tuple_dups=all_dups, unmatched_records=other)
    print(" ".join("%s=%s" % kv for kv in summary.items()))

    if a.no_other and other:
        ex = [k for r, k in zip(dec.records, keys) if not any(c.matches(r, k) for c in classes)][:3]
        fails.append("%d flow records match no expected class (e.g. %s)" % (other, ex))

    lo_ms = hi_start_ms = hi_end_ms = None
    if a.t0 is not None:
        t1 = a.t1 if a.t1 is not None else a.t0
        lo_ms = int((a.t0 - a.slack) * 1000)
        hi_start_ms = int((t1 + a.slack) * 1000)
        hi_end_ms = int((t1 + a.window) * 1000)

    for c in classes:
        v = c.vals
        per_key = Counter(k for _, k in c.records)
        distinct = len(per_key)
        dups = sum(n - 1 for n in per_key.values() if n > 1)
        exact = wrong = unexpected = 0
        no_start = start_bad = end_bad = backwards = 0
        reasons = Counter()
        wrong_ex = []
        seen = set()
        for rec, key in c.records:
            got = (first(rec, FWD_PKTS), first(rec, FWD_BYTES), first(rec, REV_PKTS), first(rec, REV_BYTES))
            want = None
            if c.per_flow is not None:
                want = c.per_flow.get((key[1], key[2], key[3], key[4], key[5]))
                if want is None:
                    unexpected += 1
            else:
                want = tuple(v.get(k) for k in ("pkts", "bytes", "rpkts", "rbytes"))
            if want is not None:
                if all(w is None or w == g for w, g in zip(want, got)):
                    exact += 1
                else:
                    wrong += 1
                    if len(wrong_ex) < 3:
                        wrong_ex.append("%s got %s want %s" % (key, got, want))
            if c.per_flow is not None:
                seen.add((key[1], key[2], key[3], key[4], key[5]))
            s, e = time_ms(rec, "start"), time_ms(rec, "end")
            if not s:
                no_start += 1
            if lo_ms is not None:
                if s is None or not lo_ms <= s <= hi_start_ms:
                    start_bad += 1
                if e is None or not lo_ms <= e <= hi_end_ms:
                    end_bad += 1
            if s is not None and e is not None and e < s:
                backwards += 1
            reasons[rec.get((0, 136), "none")] += 1
        missing = max(v["count"] - distinct, 0)
        extra = max(distinct - v["count"], 0)
        per_flow_missing = len(set(c.per_flow) - seen) if c.per_flow is not None else 0
        line = dict(cls=c.name, expected=v["count"], records=len(c.records), distinct=distinct,
                    missing=missing, extra=extra, duplicates=dups, counters_exact=exact,
                    counters_wrong=wrong, unexpected_flows=unexpected,
                    expected_flows_missing=per_flow_missing, start_zero=no_start,
                    start_outside=start_bad, end_outside=end_bad, end_before_start=backwards,
                    end_reasons=",".join("%s:%d" % kv for kv in sorted(reasons.items(), key=str)))
        print(" ".join("%s=%s" % kv for kv in line.items()))
        n = c.name
        if distinct != v["count"]:
            fails.append("%s: %d distinct flows, expected %d" % (n, distinct, v["count"]))
        if dups:
            ex = [k for k, m in per_key.items() if m > 1][:3]
            fails.append("%s: %d duplicate records (e.g. %s)" % (n, dups, ex))
        if wrong:
            fails.append("%s: %d records with wrong counters (pkts, bytes, rpkts, rbytes): %s"
                         % (n, wrong, "; ".join(wrong_ex)))
        if unexpected:
            fails.append("%s: %d records of flows not in the flows file" % (n, unexpected))
        if per_flow_missing:
            fails.append("%s: %d flows of the flows file not exported" % (n, per_flow_missing))
        if no_start:
            fails.append("%s: %d records without a start time" % (n, no_start))
        if start_bad or end_bad:
            fails.append("%s: %d starts and %d ends outside the run window" % (n, start_bad, end_bad))
        if backwards:
            fails.append("%s: %d records end before they start" % (n, backwards))

    if a.ies:
        for (odid, tid), t in sorted(dec.all_templates.items()):
            print("# template domain=%d id=%d fields=%d%s" % (
                odid, tid, len(t.fields), " scope=%d" % t.scope if t.scope else ""))
            for ent, ie, ln in t.fields:
                print("#   %-5s %-36s len %s" % (
                    "%d" % ie if not ent else "%d/%d" % (ent, ie), ie_name(ent, ie),
                    "var" if ln == VARLEN else ln))
    for rec in dec.records[:a.records]:
        print("# " + " ".join("%s=%s" % (ie_name(*k), rec[k]) for k in rec))
    if a.dump:
        cols = sorted({k for r in dec.records for k in r})
        with open(a.dump, "w") as f:
            f.write("\t".join(ie_name(*k) for k in cols) + "\n")
            for r in dec.records:
                f.write("\t".join(str(r.get(k, "")) for k in cols) + "\n")

    for msg in fails:
        print("FAIL: " + msg)
    print("result=%s" % ("fail" if fails else "pass"))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
