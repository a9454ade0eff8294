#!/usr/bin/env python3
"""udp_rounds.py - long-lived UDP connections with known traffic both ways.

  udp_rounds.py server ADDR PORT
      answers every datagram with one of twice its payload, until killed.
  udp_rounds.py client SRC DST PORT N SPORT ROUNDS GAP OUT [MARKS]
      N sockets bound to SRC:SPORT.., each sends 1 + i % 3 datagrams of
      20 + i % 50 payload bytes per round to DST:PORT and waits for every
      answer; ROUNDS rounds, GAP seconds apart (from round start to round
      start).  Before round r (from 1), touches MARKS.r if MARKS is given,
      and after the last round writes OUT: one line per connection,
        17 SRC SPORT DST PORT PKTS BYTES RPKTS RBYTES
      with what was sent and answered (IP and UDP headers counted), then
      exits 0 only if every answer came.
"""
import os
import select
import socket
import sys
import time


def server(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((addr, port))
    while True:
        data, peer = s.recvfrom(65535)
        s.sendto(data * 2, peer)


def client(src, dst, port, n, sport, rounds, gap, out, marks):
    socks = []
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((src, sport + i))
        s.setblocking(False)
        socks.append(s)
    sent = [[0, 0] for _ in range(n)]
    got = [[0, 0] for _ in range(n)]
    ok = True
    t0 = time.monotonic()
    for r in range(rounds):
        due = t0 + r * gap
        while time.monotonic() < due:
            time.sleep(min(0.05, due - time.monotonic()))
        if marks:
            open("%s.%d" % (marks, r + 1), "w").close()
        want = 0
        for i, s in enumerate(socks):
            payload = b"r" * (20 + i % 50)
            for _ in range(1 + i % 3):
                s.sendto(payload, (dst, port))
                sent[i][0] += 1
                sent[i][1] += 28 + len(payload)
                want += 1
        fds = {s.fileno(): i for i, s in enumerate(socks)}
        poller = select.poll()
        for fd in fds:
            poller.register(fd, select.POLLIN)
        deadline = time.monotonic() + 5
        while want and time.monotonic() < deadline:
            for fd, _ in poller.poll(100):
                i = fds[fd]
                while True:
                    try:
                        data = socks[i].recv(65535)
                    except BlockingIOError:
                        break
                    got[i][0] += 1
                    got[i][1] += 28 + len(data)
                    want -= 1
        if want:
            ok = False
            print("round %d: %d answers missing" % (r + 1, want), file=sys.stderr)
    with open(out, "w") as f:
        for i in range(n):
            f.write("17 %s %d %s %d %d %d %d %d\n" % (src, sport + i, dst, port, sent[i][0],
                                                     sent[i][1], got[i][0], got[i][1]))
    return 0 if ok else 1


def main():
    if sys.argv[1] == "server":
        server(sys.argv[2], int(sys.argv[3]))
        return 0
    a = sys.argv[2:]
    return client(a[0], a[1], int(a[2]), int(a[3]), int(a[4]), int(a[5]), float(a[6]), a[7],
                  a[8] if len(a) > 8 else None)


if __name__ == "__main__":
    sys.exit(main())
