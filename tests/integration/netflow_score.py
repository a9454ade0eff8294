#!/usr/bin/env python3
"""netflow_score.py - hold a NetFlow collector's records against the kernel's.

WITNESS is what ctlisten wrote (one DESTROY a line: proto src sport dst dport
pkts bytes rpkts rbytes start_ns stop_ns id).  RECORDS is a collector's view
in the field order of ctf_nfdump_flows (proto src sport dst dport ipkt ibyt
opkt obyt start end, times as "YYYY-MM-DD HH:MM:SS.mmm..." UTC).

Every witness connection of a --class must show as the format records it:
  biflow  one record, forward counters in/reverse counters out
  forward one record with the forward counters only (a collector that keeps
          no reverse counters: nfacctd)
  v5      a record for the forward direction and, when the reply had
          packets, one for the reply with the reply tuple
  none    no record (a family the format cannot carry)
with start and end equal to the kernel's timestamps to the millisecond.
Prints one "cls=NAME key=value ..." line per class and exits 1 when any
class has a missing, repeated or wrong record, or the witness has not the
expected count.
"""
import argparse
import calendar
import sys
import time
from collections import Counter


def parse_time(date, clock):
    """ms since the epoch of nfdump/nfacctd's UTC text time."""
    whole, _, frac = clock.partition('.')
    secs = calendar.timegm(time.strptime(date + ' ' + whole, '%Y-%m-%d %H:%M:%S'))
    return secs * 1000 + int((frac + '000')[:3])


def norm(addr):
    return addr.lower()


def read_records(path):
    recs = Counter()
    for line in open(path):
        f = line.split()
        if len(f) < 13:
            continue
        proto, src, sport, dst, dport = f[0], norm(f[1]), f[2], norm(f[3]), f[4]
        proto = {'UDP': '17', 'TCP': '6', 'ICMP': '1'}.get(proto.upper(), proto)
        key = (proto, src, sport.split('.')[0], dst, dport.split('.')[0],
               int(f[5]), int(f[6]), int(f[7]), int(f[8]),
               parse_time(f[9], f[10]), parse_time(f[11], f[12]))
        recs[key] += 1
    return recs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('witness')
    ap.add_argument('records')
    ap.add_argument('--class', dest='classes', action='append', default=[],
                    help='NAME:PROTO:FAMILY:DPORT:COUNT:MODE')
    a = ap.parse_args()
    recs = read_records(a.records)
    tuples = set(x[:5] for x in recs)
    seen = set()
    ok = True
    used = Counter()
    for spec in a.classes:
        name, proto, family, dport, count, mode = spec.split(':')
        n = missing = wrong = 0
        for line in open(a.witness):
            w = line.split()
            if len(w) < 11 or w[0] != proto or w[4] != dport:
                continue
            if (family == '6') != (':' in w[1]):
                continue
            k = tuple(w[:5])
            if k in seen:
                continue   # the witness may see a redelivered DESTROY
            seen.add(k)
            n += 1
            pk, by, rpk, rby = (int(x) for x in w[5:9])
            t0, t1 = int(w[9]) // 1000000, int(w[10]) // 1000000
            src, dst = norm(w[1]), norm(w[3])
            want = []
            if mode == 'biflow':
                want.append((proto, src, w[2], dst, w[4], pk, by, rpk, rby, t0, t1))
            elif mode == 'forward':
                want.append((proto, src, w[2], dst, w[4], pk, by, 0, 0, t0, t1))
            elif mode == 'v5':
                want.append((proto, src, w[2], dst, w[4], pk, by, 0, 0, t0, t1))
                if rpk:
                    want.append((proto, dst, w[4], src, w[2], rpk, rby, 0, 0, t0, t1))
            for r in want:
                if recs.get(r, 0) - used[r] > 0:
                    used[r] += 1
                    continue
                # tell a wrong record from a missing one by its 5-tuple
                if r[:5] in tuples:
                    wrong += 1
                else:
                    missing += 1
            if mode == 'none':
                if (proto, src, w[2], dst, w[4]) in tuples:
                    wrong += 1
        good = n == int(count) and not missing and not wrong
        ok = ok and good
        print(f"cls={name} witness={n} expected={count} missing={missing} wrong={wrong} ok={int(good)}")
    extra = sum(recs.values()) - sum(used.values())
    print(f"records={sum(recs.values())} matched={sum(used.values())} other={extra}")
    return 0 if ok and not extra else 1


if __name__ == '__main__':
    sys.exit(main())
