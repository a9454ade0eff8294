#!/usr/bin/env python3
"""fake_holder.py - someone else's process on ctflowd's handover socket.

Listens at PATH as a holder does and passes every ctflowd that connects a
NETLINK_NETFILTER socket of its own, subscribed to conntrack DESTROY events
in the namespace it runs in.  With --uid it binds as root (the state
directory is root's), then becomes that user before listen(): the peer
credentials a connecting process reads (SO_PEERCRED) are those of the
listen() call.  With --filter the offered socket carries a classic BPF
filter that drops every message, with --lock locked to it (SO_LOCK_FILTER).
With --no-read it never reads its socket: it only hands it over, as a holder
does, so that whoever takes it gets every event.

Writes READY once it listens; then, until SIGTERM, counts the connections
it served and the DESTROY messages its socket received, and writes them to
STATUS as "served=N events=N" on exit.
"""
import argparse
import os
import pwd
import select
import signal
import socket
import struct
import sys

SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
NETLINK_NETFILTER = 12
NFNLGRP_CONNTRACK_DESTROY = 3
SO_ATTACH_FILTER = 26
SO_LOCK_FILTER = 44
BPF_RET_K = 0x06


def drop_all_filter():
    """A sock_fprog of one instruction, "return 0": every message dropped.
    The instruction array must outlive the setsockopt call."""
    import ctypes
    insn = ctypes.create_string_buffer(struct.pack("HBBI", BPF_RET_K, 0, 0, 0), 8)
    return insn, struct.pack("HL", 1, ctypes.addressof(insn))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--path", required=True)
    ap.add_argument("--ready", required=True)
    ap.add_argument("--status", required=True)
    ap.add_argument("--uid", help="user to listen as (name)")
    ap.add_argument("--filter", action="store_true")
    ap.add_argument("--lock", action="store_true")
    ap.add_argument("--no-read", action="store_true")
    a = ap.parse_args()

    events = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    events.bind((0, 0))
    events.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, NFNLGRP_CONNTRACK_DESTROY)
    keep = None
    if a.filter:
        keep, prog = drop_all_filter()
        events.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, prog)
        if a.lock:
            events.setsockopt(socket.SOL_SOCKET, SO_LOCK_FILTER, 1)
    events.setblocking(False)

    try:
        os.unlink(a.path)
    except FileNotFoundError:
        pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(a.path)
    # opened while still root: the test's directory is root's
    ready = open(a.ready, "w")
    status = open(a.status, "w")
    if a.uid:
        pw = pwd.getpwnam(a.uid)
        os.setgroups([])
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
    listener.listen(4)

    served = received = 0
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    with ready:
        ready.write("uid=%d\n" % os.geteuid())
    while not stop:
        try:
            r, _, _ = select.select([listener] + ([] if a.no_read else [events]), [], [], 0.2)
        except InterruptedError:
            continue
        if listener in r:
            conn, _ = listener.accept()
            try:
                socket.send_fds(conn, [b"S"], [events.fileno()])
                served += 1
                conn.settimeout(5)
                conn.recv(1)
            except OSError:
                pass
            conn.close()
        if events in r:
            try:
                while True:
                    events.recv(65536)
                    received += 1
            except (BlockingIOError, OSError):
                pass
    with status:
        status.write("served=%d events=%d\n" % (served, received))
    del keep
    return 0


if __name__ == "__main__":
    sys.exit(main())
