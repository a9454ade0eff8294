#!/usr/bin/env python3
"""tcp_peer_score.py - judge what a TCP collector stored against a JSON export.

  tcp_peer_score.py DIR JSON SRC DST DPORT SPORT COUNT PKTS BYTES MODE

DIR holds tcp_collector.py's files, one per connection (conn-N.ipfix); JSON
is the same daemon's JSON file export, the independent account of which
flows it accepted and which flowId each one got.  The workload is COUNT
IPv4 UDP flows SRC -> DST, destination port DPORT, source ports SPORT..,
each with PKTS packets and BYTES bytes forward and nothing back.

MODE once: the collector must hold every flow exactly once (nothing was
resent).  MODE resent: a flow may come more than once, but only as a resend
of an unconfirmed record: the same record, same flowId, in a later
connection than its first copy; never twice in one connection.

Each connection file is read by ipfix_verify.py's decoder and, as a second
opinion, by fixbuf's ipfixDump (its text is kept beside the file).  Per
file: it decodes on its own, its first set is a template set, one session,
no data set without a template; only a connection that is not the last may
end inside a message (the one the collector cut off).  Over all files, in
both views: every flow present with exact counters, nothing else, and the
set of flowIds exactly the one the JSON export gave those flows, each flow
with its own.

Prints "OK|what", "NOTOK|what|detail..." and "#" lines for
ctf_report_score.
"""
import glob
import json
import os
import re
import subprocess
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ipfix_verify as iv  # noqa: E402

FLOW_ID = (0, 148)


def res(ok, what, *detail):
    print("|".join(["OK" if ok else "NOTOK", what] + [str(x) for x in detail]))


def conn_files(d):
    return sorted(glob.glob(os.path.join(d, "conn-*.ipfix")),
                  key=lambda p: int(re.search(r"conn-(\d+)", p).group(1)))


def check_file(path, last):
    """One connection file on its own; returns (decoder, ipfixDump view)."""
    name = os.path.basename(path)
    with open(path, "rb") as f:
        data = f.read()
    dec = iv.Decoder(data).run()
    first_set = int.from_bytes(data[16:18], "big") if len(data) >= 18 else None
    detail = []
    if dec.errors:
        detail.append("decode errors: %s" % "; ".join(e for e in dec.errors[:3] if e))
    if first_set != 2:
        detail.append("first set id %s, want 2 (templates first)" % first_set)
    if dec.sessions != 1:
        detail.append("%d sessions in one connection" % dec.sessions)
    if dec.no_template_sets:
        detail.append("%d data sets without a template" % dec.no_template_sets)
    if dec.truncated and last:
        detail.append("the last connection ends inside a message")
    res(not detail, "ipfix_verify.py: %s decodes on its own, templates first, %d records%s"
        % (name, dec.data_records, " (cut off mid-message)" if dec.truncated else ""), *detail)

    txt = path[:-len(".ipfix")] + ".ipfixdump.txt"
    with open(txt, "w") as out, open(txt[:-len(".txt")] + ".err", "w") as err:
        subprocess.run(["ipfixDump", "--in", path], stdout=out, stderr=err, check=False)
    with open(txt, encoding="utf-8", errors="replace") as f:
        text = f.read()
    stats = next((l for l in text.splitlines() if l.startswith("*** File Stats")), None)
    view = iv.read_ipfixdump(text)
    # a stream cut off mid-message: fixbuf stops at the cut, as the decoder does
    same = stats is not None and len(view.records) == len(dec.records)
    res(same, "ipfixDump: %s: %s" % (name, stats or "no File Stats line"),
        *([] if same else ["ipfixDump %d flow records, ipfix_verify.py %d"
                           % (len(view.records), len(dec.records))]))
    return dec, view


def main():
    d, json_path, src, dst = sys.argv[1:5]
    dport, sport, count, pkts, nbytes = (int(x) for x in sys.argv[5:10])
    mode = sys.argv[10]
    want = {(4, 17, src, s, dst, dport) for s in range(sport, sport + count)}

    # ---- the JSON export: what the daemon accepted, and the flowIds it gave
    lines = open(json_path, encoding="utf-8", errors="replace").read().splitlines() \
        if os.path.exists(json_path) else []
    json_id = {}
    bad = 0
    for line in lines:
        try:
            o = json.loads(line)
            k = (4, o["proto"], o["src"], o["sport"], o["dst"], o["dport"])
            json_id.setdefault(k, []).append(o["flow_id"])
        except (ValueError, KeyError, TypeError):
            bad += 1
    ok = len(lines) == count and not bad and set(json_id) == want and \
        all(len(v) == 1 for v in json_id.values())
    res(ok, "json: exactly the %d flows of the workload, each once (%d lines)" % (count, len(lines)),
        *([] if ok else ["%d unreadable, %d distinct flows of the workload, %d other"
                         % (bad, len(set(json_id) & want), len(set(json_id) - want))]))
    sent_ids = {v[0]: k for k, v in json_id.items() if k in want}

    files = conn_files(d)
    print("# connections: %s" % (", ".join(os.path.basename(p) for p in files) or "none"))
    views = {"ipfix_verify.py": [], "ipfixDump": []}
    for i, p in enumerate(files):
        dec, text = check_file(p, i == len(files) - 1)
        views["ipfix_verify.py"].append((i, dec.records))
        views["ipfixDump"].append((i, text.records))

    for label, view in views.items():
        groups = defaultdict(list)       # flow -> [(connection index, record)]
        other, wrong = [], []
        for i, records in view:
            for r in records:
                k = iv.flow_key(r)
                if k not in want:
                    other.append(k)
                    continue
                groups[k].append((i, r))
                got = (iv.first(r, iv.FWD_PKTS), iv.first(r, iv.FWD_BYTES),
                       iv.first(r, iv.REV_PKTS), iv.first(r, iv.REV_BYTES))
                if got != (pkts, nbytes, 0, 0):
                    wrong.append("sport %d: %s" % (k[3], got))
        missing = sorted(k[3] for k in want - set(groups))
        detail = []
        if missing:
            detail.append("%d flows missing, source ports e.g. %s" % (len(missing), missing[:10]))
        if other:
            detail.append("%d records of other flows, e.g. %s" % (len(other), other[:3]))
        if wrong:
            detail.append("%d records with wrong counters (pkts, bytes, rpkts, rbytes), e.g. %s"
                          % (len(wrong), "; ".join(wrong[:3])))
        res(not detail, "%s: all %d flows arrived (%d), counters exact, no other record"
            % (label, count, len(groups)), *detail)

        # flowIds: exactly the ones the daemon gave these flows, per flow
        got_ids = defaultdict(set)
        for k, v in groups.items():
            for _, r in v:
                got_ids[r.get(FLOW_ID)].add(k)
        detail = []
        if None in got_ids:
            detail.append("records without flowId")
        foreign = set(got_ids) - set(sent_ids) - {None}
        if foreign:
            detail.append("%d flowIds the JSON export never gave, e.g. %s" % (len(foreign), sorted(foreign)[:3]))
        absent = set(sent_ids) - set(got_ids)
        if absent:
            detail.append("%d flowIds not received, e.g. %s" % (len(absent), sorted(absent)[:3]))
        moved = [i for i, ks in got_ids.items() if i in sent_ids and ks != {sent_ids[i]}]
        if moved:
            detail.append("%d flowIds on another flow than in the JSON export, e.g. %s" % (len(moved), moved[:3]))
        res(not detail, "%s: the set of flowIds is exactly the %d the daemon gave these flows"
            % (label, len(sent_ids)), *detail)

        # duplicates
        dups = {k: v for k, v in groups.items() if len(v) > 1}
        ndup = sum(len(v) - 1 for v in dups.values())
        print("# %s: %d duplicate records (%d flows more than once)" % (label, ndup, len(dups)))
        if mode == "once":
            ex = ["sport %d in connections %s" % (k[3], [i + 1 for i, _ in v]) for k, v in list(dups.items())[:3]]
            res(not ndup, "%s: no flow arrived twice" % label,
                *(["%d duplicates, e.g. %s" % (ndup, "; ".join(ex))] if ndup else []))
            continue
        bad_dup = []
        for k, v in dups.items():
            conns = [i for i, _ in v]
            if len(set(conns)) != len(conns) or any(r != v[0][1] for _, r in v[1:]):
                bad_dup.append("sport %d in connections %s" % (k[3], [i + 1 for i in conns]))
        res(not bad_dup, "%s: a flow that came again is an identical resend in a later connection"
            % label, *(["%d flows, e.g. %s" % (len(bad_dup), "; ".join(bad_dup[:3]))] if bad_dup else []))


if __name__ == "__main__":
    main()
