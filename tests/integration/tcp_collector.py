#!/usr/bin/env python3
"""tcp_collector.py - a plain TCP sink for IPFIX-over-TCP tests.

  tcp_collector.py --port PORT --dir DIR --ready FILE [--bind ADDR]
                   [--talk BYTES [--talk-every S]] [--rcvbuf BYTES]
                   [--reset-after BYTES [--reset-delay S]]

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

Misbehaving on purpose, for the exporter's sake:
  --talk BYTES       right after accepting, send BYTES bytes back to the
                     exporter (IPFIX over TCP is one-way; a collector may
                     still greet or send keepalives), and again every
                     --talk-every S seconds (0, the default: only once).
                     Never blocks: what the exporter's socket cannot take
                     is skipped and counted.  The close line adds the
                     bytes sent back.
  --rcvbuf BYTES     SO_RCVBUF of the listening socket, inherited by every
                     connection: with a small one, what the collector does
                     not read stays unacknowledged in the exporter's socket.
  --reset-after B    the first connection only: store its first B bytes,
                     then read no more, and --reset-delay S seconds (1)
                     later close it with a reset (SO_LINGER 0), logging
                     "conn N reset after B bytes".  Later connections are
                     served normally.
"""
import argparse
import errno
import os
import re
import selectors
import signal
import socket
import struct
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
        self.limit = None       # --reset-after: store at most this many bytes
        self.reset_at = None    # when the limit was reached: reset at this time
        self.talked = None      # --talk: bytes sent back (None: not talking)
        self.talk_skipped = 0
        self.next_talk = None

    def store(self, data):
        self.out.write(data)
        self.bytes += len(data)

    def talk(self, nbytes):
        """Sends nbytes back without blocking; what does not fit is skipped."""
        try:
            n = self.sock.send(b"\0" * nbytes, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError:
            return
        self.talked += n
        self.talk_skipped += nbytes - n

    def close(self, why):
        try:
            self.sock.close()
        finally:
            self.out.close()
        talked = ""
        if self.talked is not None:
            talked = ", %d bytes sent back (%d skipped)" % (self.talked, self.talk_skipped)
        log("conn %d closed (%s): %d bytes in %s%s" % (self.number, why, self.bytes,
                                                        os.path.basename(self.path), talked))

    def reset(self):
        """Closes with a reset: SO_LINGER 0 drops unread data and sends RST."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close("reset by the collector")


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
        want = 1 << 20
        if conn.limit is not None:
            want = conn.limit - conn.bytes
            if want <= 0:
                return None
        try:
            data = conn.sock.recv(want, socket.MSG_DONTWAIT)
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
    ap.add_argument("--talk", type=int, default=0, metavar="BYTES")
    ap.add_argument("--talk-every", type=float, default=0, metavar="S")
    ap.add_argument("--rcvbuf", type=int, default=0, metavar="BYTES")
    ap.add_argument("--reset-after", type=int, default=None, metavar="BYTES")
    ap.add_argument("--reset-delay", type=float, default=1.0, metavar="S")
    a = ap.parse_args()
    reset_pending = a.reset_after is not None

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    os.makedirs(a.dir, exist_ok=True)
    number = next_number(a.dir)

    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # a restart must be able to bind while the previous run's connections
    # sit in TIME_WAIT on this port
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if a.rcvbuf:
        # before listen(): the window is announced from it in the handshake
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, a.rcvbuf)
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
        now = time.time()
        for c in list(conns.values()):
            if c.reset_at is not None and now >= c.reset_at:
                del conns[c.sock.fileno()]
                log("conn %d reset after %d bytes" % (c.number, c.bytes))
                c.reset()
            elif c.next_talk is not None and now >= c.next_talk:
                c.talk(a.talk)
                c.next_talk = now + a.talk_every if a.talk_every > 0 else None
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
                if reset_pending:
                    c.limit = a.reset_after
                    reset_pending = False
                if a.talk:
                    c.talked = 0
                    c.talk(a.talk)
                    if a.talk_every > 0:
                        c.next_talk = time.time() + a.talk_every
                continue
            c = key.data
            why = read_available(c)
            if why is None and c.limit is not None and c.bytes >= c.limit:
                # read no more: the rest backs up unacknowledged
                sel.unregister(c.sock)
                c.reset_at = time.time() + a.reset_delay
                log("conn %d stops reading after %d bytes" % (c.number, c.bytes))
            elif why is not None:
                sel.unregister(c.sock)
                del conns[c.sock.fileno()]
                c.close(why)

    # stop: refuse new connections, keep what already arrived, then close
    sel.unregister(lsock)
    lsock.close()
    for c in list(conns.values()):
        if c.reset_at is not None:
            c.reset()
            continue
        why = read_available(c) or "collector stopped"
        sel.unregister(c.sock)
        c.close(why)
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
