#!/usr/bin/env python3
"""tcp_collector.py - a plain TCP sink for IPFIX-over-TCP tests.

  tcp_collector.py --port PORT --dir DIR --ready FILE [--bind ADDR]

Listens on ADDR:PORT (default 127.0.0.1), accepts any number of connections
and appends the byte stream of each one, unchanged, to its own file in DIR:
conn-1.ipfix, conn-2.ipfix, ...  Numbering continues after the highest file
already in DIR, so a collector started again after a stop never mixes a new
connection into an old file: one file is exactly one transport session,
which is what the test needs to check that every session starts with its
templates.

It decodes nothing: judging the bytes is left to ipfixDump and
ipfix_verify.py, so a bug here cannot hide a bug in the exporter.

FILE is created once the socket listens (a test waits for it before it
sends anything).  One line per event goes to stdout: connection opened,
connection closed (by the peer, with an error, or at stop) with its byte
count.

SIGTERM/SIGINT: the listening socket is closed first (new connections are
refused from then on), whatever the open connections already delivered to
this host is read and stored, then they are closed and the process exits 0.
Reading before closing matters: closing a socket with unread data makes the
kernel send a reset instead of a FIN, which would look like a broken
connection to the exporter.
"""
import argparse
import errno
import os
import re
import selectors
import signal
import socket
import sys
import time

stopping = False


def on_signal(signum, frame):
    global stopping
    stopping = True


def log(msg):
    print("%.3f %s" % (time.time(), msg), flush=True)


class Conn:
    def __init__(self, sock, peer, number, path):
        self.sock = sock
        self.peer = peer
        self.number = number
        self.path = path
        self.out = open(path, "ab", buffering=0)
        self.bytes = 0

    def store(self, data):
        self.out.write(data)
        self.bytes += len(data)

    def close(self, why):
        try:
            self.sock.close()
        finally:
            self.out.close()
        log("conn %d closed (%s): %d bytes in %s" % (self.number, why, self.bytes,
                                                      os.path.basename(self.path)))


def next_number(directory):
    """One more than the highest conn-N.ipfix already there."""
    high = 0
    for name in os.listdir(directory):
        m = re.fullmatch(r"conn-(\d+)\.ipfix", name)
        if m:
            high = max(high, int(m.group(1)))
    return high + 1


def read_available(conn):
    """Reads what is queued without blocking.  Returns None while the
    connection is open, else why it ended."""
    while True:
        try:
            data = conn.sock.recv(1 << 20, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as e:
            return "error: %s" % (errno.errorcode.get(e.errno, e.errno))
        if not data:
            return "eof from peer"
        conn.store(data)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--dir", required=True)
    ap.add_argument("--ready", required=True)
    a = ap.parse_args()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    os.makedirs(a.dir, exist_ok=True)
    number = next_number(a.dir)

    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # a restart must be able to bind while the previous run's connections
    # sit in TIME_WAIT on this port
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((a.bind, a.port))
    lsock.listen(16)
    lsock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(lsock, selectors.EVENT_READ, None)
    with open(a.ready, "w") as f:
        f.write("%d\n" % os.getpid())
    log("listening on %s:%d, next connection is conn-%d" % (a.bind, a.port, number))

    conns = {}
    while not stopping:
        # the timeout bounds how late a signal is noticed
        for key, _ in sel.select(timeout=0.1):
            if key.data is None:
                try:
                    sock, peer = lsock.accept()
                except (BlockingIOError, InterruptedError):
                    continue
                sock.setblocking(False)
                path = os.path.join(a.dir, "conn-%d.ipfix" % number)
                c = Conn(sock, peer, number, path)
                number += 1
                conns[sock.fileno()] = c
                sel.register(sock, selectors.EVENT_READ, c)
                log("conn %d opened from %s:%d" % (c.number, peer[0], peer[1]))
                continue
            c = key.data
            why = read_available(c)
            if why is not None:
                sel.unregister(c.sock)
                del conns[c.sock.fileno()]
                c.close(why)

    # stop: refuse new connections, keep what already arrived, then close
    sel.unregister(lsock)
    lsock.close()
    for c in list(conns.values()):
        why = read_available(c) or "collector stopped"
        sel.unregister(c.sock)
        c.close(why)
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
