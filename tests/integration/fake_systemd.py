#!/usr/bin/env python3
"""fake_systemd.py - the parts of systemd's service manager ctflowd relies on.

  fake_systemd.py --dir DIR [options] -- COMMAND [ARG...]

Runs COMMAND as the main process of a Type=notify service, the way systemd
does it, as far as a daemon can tell:

  * NOTIFY_SOCKET=DIR/notify.sock (AF_UNIX, SOCK_DGRAM, SO_PASSCRED): each
    datagram is newline-separated assignments (sd_notify(3)); it is accepted
    only from the main process (NotifyAccess=main, the default of
    Type=notify), going by the sender's SCM_CREDENTIALS.
  * the file descriptor store (FileDescriptorStoreMax=, --fdstore-max):
    descriptors sent (SCM_RIGHTS) with FDSTORE=1 are kept under FDNAME=
    ("stored" when absent; the name must be 1..255 printable characters
    without ':'); a descriptor already in the store (the same open file) is
    not stored twice; FDSTOREREMOVE=1 + FDNAME= closes the ones of that
    name; descriptors sent without FDSTORE=1 are closed.  Stored descriptors
    are watched for POLLERR and POLLHUP and closed and removed when one is
    seen, unless FDPOLL=0 came with them (--no-fdpoll turns this off for
    all, which systemd has no switch for: it only helps to tell causes
    apart).
  * on a start, the stored descriptors are passed from fd 3 on, in the order
    they were stored, with LISTEN_FDS=n, LISTEN_FDNAMES=names joined by ':'
    and LISTEN_PID=the pid of the process that execs COMMAND
    (sd_listen_fds(3)); no LISTEN_* when the store is empty.  COMMAND runs
    in a session of its own, stdin /dev/null, stdout and stderr appended to
    DIR/service-N.log for the N-th start.
  * a stop (--kill-mode, KillMode=): SIGTERM followed by SIGCONT to the
    main process and, with control-group (the default), to every other
    process of the service (here: every descendant; this process is a child
    subreaper, so orphans stay ours as they would stay in the cgroup); with
    mixed, only to the main process, and once it has exited SIGKILL to what
    is left; SIGKILL to everything after --timeout-stop (TimeoutStopSec=,
    default 90 s).  The service is stopped once all its processes are gone.

Control: write lines to the FIFO DIR/control:
  restart [DELAY]        stop; wait DELAY seconds (default 0); start again
                         with the store.  DELAY 0 is `systemctl restart`; a
                         delay is a stop and a start with
                         FileDescriptorStorePreserve=yes, or an automatic
                         restart after RestartSec=.
  restart-nofds [DELAY]  the same, but the store is closed at the stop, as
                         after a full stop without
                         FileDescriptorStorePreserve=.
  stop                   stop, close the store and exit.
SIGTERM and SIGINT do the same as "stop".  A main process that ends on its
own: with --restart on-failure (Restart=on-failure) and an unclean end (exit
status other than 0, or a signal other than SIGHUP, SIGINT, SIGTERM or
SIGPIPE) the service is started again after --restart-sec seconds
(RestartSec=) with the store; otherwise (Restart=no, or a clean end) it is
deactivated: the store is closed, the remaining processes are stopped, and
this process exits.

Everything that happens is appended to DIR/events.log, one line each:
  TIME EVENT key=value...
(values %-quoted: no blanks).  Events: manager, start, notify, fdstore-add,
fdstore-duplicate, fdstore-refused, fdstore-remove, fdstore-removed,
fdstore-closed, fds-closed, kill, exit, stopped, control, error.  notify
lines carry pid=, main=1|0, accepted=1|0, fds=N and the assignments of the
message as they came (e.g. READY=1 FDSTORE=1 FDNAME=ctnetlink).

Exit status: 0 after a stop on request, 1 when the service ended on its
own and was not restarted, 2 on a usage error.
"""
import argparse
import array
import ctypes
import fcntl
import os
import select
import signal
import socket
import struct
import sys
import time
import urllib.parse

PR_SET_CHILD_SUBREAPER = 36
SD_LISTEN_FDS_START = 3
NOTIFY_BUFFER_MAX = 4096        # systemd reads at most PIPE_BUF bytes
NOTIFY_FD_MAX = 768             # systemd's limit of descriptors per message
FDNAME_MAX = 255


class Events:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1)

    def __call__(self, event, **kv):
        parts = ["%.6f" % time.time(), event]
        for k, v in kv.items():
            parts.append("%s=%s" % (k, quote(v)))
        self.f.write(" ".join(parts) + "\n")

    def raw(self, event, head, pairs):
        """pairs: [(key, value)] written after head, in order."""
        parts = ["%.6f" % time.time(), event]
        parts += ["%s=%s" % (k, quote(v)) for k, v in head.items()]
        parts += ["%s=%s" % (quote(k), quote(v)) for k, v in pairs]
        self.f.write(" ".join(parts) + "\n")


def quote(v):
    return urllib.parse.quote(str(v), safe=":/@,.-_+")


def fdname_is_valid(name):
    return 0 < len(name) <= FDNAME_MAX and all(" " <= c < "\x7f" and c != ":" for c in name)


class StoredFd:
    def __init__(self, fd, name, poll):
        self.fd = fd
        self.name = name
        self.poll = poll
        st = os.fstat(fd)
        self.key = (st.st_dev, st.st_ino)


class Manager:
    def __init__(self, args):
        self.a = args
        self.dir = args.dir
        self.ev = Events(os.path.join(self.dir, "events.log"))
        self.store = []                # [StoredFd], in the order stored
        self.main = None               # pid of the main process
        self.starts = 0
        self.state = "dead"            # dead, running, stopping, waiting
        self.after_stop = None         # ("start", at_time) or ("exit", status)
        self.stop_deadline = None
        self.exit_status = None
        self.main_status = None
        self.close_store_at_stop = False
        self.start_at = 0.0

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")

        self.notify_path = os.path.join(self.dir, "notify.sock")
        if len(self.notify_path.encode()) >= 108:
            raise SystemExit("fake_systemd: %s: path too long for a Unix socket" % self.notify_path)
        try:
            os.unlink(self.notify_path)
        except FileNotFoundError:
            pass
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.notify.bind(self.notify_path)
        self.notify.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.notify.setblocking(False)

        self.control_path = os.path.join(self.dir, "control")
        try:
            os.unlink(self.control_path)
        except FileNotFoundError:
            pass
        os.mkfifo(self.control_path, 0o600)
        # read and write: the FIFO never reports end-of-file between writers
        self.control = os.open(self.control_path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        self.control_buf = b""

        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(self.wake_w)
        self.signals = []
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(s, self.on_signal)
        self.ev("manager", pid=os.getpid(), notify_socket=self.notify_path,
                fdstore_max=self.a.fdstore_max, fdpoll=int(not self.a.no_fdpoll),
                kill_mode=self.a.kill_mode, restart=self.a.restart)

    def on_signal(self, signum, frame):
        self.signals.append(signum)

    # ---------------------------------------------------------------- processes

    def descendants(self):
        out, todo = [], [os.getpid()]
        while todo:
            p = todo.pop()
            try:
                tasks = os.listdir("/proc/%d/task" % p)
            except OSError:
                continue
            for t in tasks:
                try:
                    with open("/proc/%d/task/%s/children" % (p, t)) as f:
                        kids = [int(x) for x in f.read().split()]
                except OSError:
                    continue
                for k in kids:
                    if k not in out:
                        out.append(k)
                        todo.append(k)
        return out

    def start(self):
        self.starts += 1
        n = self.starts
        fds = [s.fd for s in self.store]
        names = [s.name for s in self.store]
        env = {k: v for k, v in os.environ.items()
               if k not in ("LISTEN_FDS", "LISTEN_FDNAMES", "LISTEN_PID", "LISTEN_PIDFDID",
                            "NOTIFY_SOCKET")}
        env["NOTIFY_SOCKET"] = self.notify_path
        if fds:
            env["LISTEN_FDS"] = str(len(fds))
            env["LISTEN_FDNAMES"] = ":".join(names)
        log = os.path.join(self.dir, "service-%d.log" % n)
        pid = os.fork()
        if pid == 0:
            self.exec_child(self.a.command, env, fds, log)   # never returns
        self.main = pid
        self.main_status = None
        self.state = "running"
        self.ev("start", n=n, pid=pid, listen_fds=len(fds), names=":".join(names) or "-",
                log=log)

    @staticmethod
    def exec_child(cmd, env, fds, log):
        try:
            os.setsid()
            signal.set_wakeup_fd(-1)
            # a pristine signal state: Python ignores SIGPIPE and SIGXFSZ,
            # and an ignored signal stays ignored across exec
            for s in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD, signal.SIGPIPE,
                      signal.SIGXFSZ):
                signal.signal(s, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
            null = os.open("/dev/null", os.O_RDONLY)
            out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(null, 0)
            os.dup2(out, 1)
            os.dup2(out, 2)
            n = len(fds)
            # first out of the way of 3..3+n-1, then into place
            moved = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, SD_LISTEN_FDS_START + n) for fd in fds]
            for i, fd in enumerate(moved):
                os.dup2(fd, SD_LISTEN_FDS_START + i, inheritable=True)
            os.closerange(SD_LISTEN_FDS_START + n, os.sysconf("SC_OPEN_MAX"))
            if n:
                # the process that execs COMMAND: `ip netns exec` and the
                # like exec in place, so this is also the daemon's pid
                env["LISTEN_PID"] = str(os.getpid())
            os.execvpe(cmd[0], cmd, env)
        except BaseException as e:   # noqa: B902 - the child must never return
            try:
                os.write(2, ("fake_systemd: cannot run %s: %s\n" % (cmd[0], e)).encode())
            finally:
                os._exit(127)

    def kill_all(self, sig, cont=False, main_only=False):
        pids = [] if main_only else self.descendants()
        if self.main and self.main not in pids and self.main_status is None:
            pids.insert(0, self.main)
        for p in pids:
            try:
                os.kill(p, sig)
                if cont:
                    os.kill(p, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.ev("kill", signal=signal.Signals(sig).name, pids=",".join(map(str, pids)) or "-")

    def terminate(self):
        """The stop signal, per KillMode=."""
        if self.a.kill_mode == "control-group":
            self.kill_all(signal.SIGTERM, cont=True)
        else:
            self.kill_all(signal.SIGTERM, cont=True, main_only=True)

    def begin_stop(self, then, close_store=False):
        """then: ("start", delay_s) or ("exit", status)."""
        if self.state == "running":
            self.state = "stopping"
            self.after_stop = then
            self.close_store_at_stop = close_store
            self.stop_deadline = time.monotonic() + self.a.timeout_stop
            self.ev("stop-begin", pid=self.main)
            self.terminate()
        elif self.state == "stopping":
            self.ev("error", what="already stopping; command ignored")
        elif self.state in ("dead", "waiting"):
            self.after_stop = then
            self.close_store_at_stop = close_store
            self.finish_stop()

    def finish_stop(self):
        self.state = "dead"
        self.ev("stopped", pid=self.main, status=self.main_status if self.main_status else "-")
        if self.close_store_at_stop:
            self.close_store("stopped without FileDescriptorStorePreserve")
        what, arg = self.after_stop
        self.after_stop = None
        if what == "exit":
            self.exit_status = arg
        else:
            self.state = "waiting"
            self.start_at = time.monotonic() + arg

    def reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if os.WIFSIGNALED(status):
                how = "signal:%s" % signal.Signals(os.WTERMSIG(status)).name
            else:
                how = "exit:%d" % os.WEXITSTATUS(status)
            self.ev("exit", pid=pid, main=int(pid == self.main), status=how)
            if pid == self.main:
                self.main_status = how
                if self.state == "stopping" and self.a.kill_mode == "mixed":
                    # mixed: what outlives the main process gets SIGKILL
                    if self.descendants():
                        self.kill_all(signal.SIGKILL)
                elif self.state == "running":
                    clean = how == "exit:0" or how in (
                        "signal:SIGHUP", "signal:SIGINT", "signal:SIGTERM", "signal:SIGPIPE")
                    self.ev("error", what="main process ended on its own", status=how)
                    self.state = "stopping"
                    self.stop_deadline = time.monotonic() + self.a.timeout_stop
                    if self.a.restart == "on-failure" and not clean:
                        self.after_stop = ("start", self.a.restart_sec)
                        self.close_store_at_stop = False
                    else:
                        self.after_stop = ("exit", 1)
                        self.close_store_at_stop = True
                    self.terminate()
                    if self.a.kill_mode == "mixed" and self.descendants():
                        self.kill_all(signal.SIGKILL)

    # ---------------------------------------------------------------- fd store

    def close_store(self, why):
        for s in self.store:
            os.close(s.fd)
            self.ev("fdstore-closed", name=s.name, reason=why)
        self.store = []

    def store_fds(self, fds, name, poll):
        for fd in fds:
            st = os.fstat(fd)
            if any(s.key == (st.st_dev, st.st_ino) for s in self.store):
                self.ev("fdstore-duplicate", name=name, inode=st.st_ino)
                os.close(fd)
                continue
            if len(self.store) >= self.a.fdstore_max:
                self.ev("fdstore-refused", name=name,
                        reason="FileDescriptorStoreMax=%d reached" % self.a.fdstore_max)
                os.close(fd)
                continue
            s = StoredFd(fd, name, poll)
            self.store.append(s)
            self.ev("fdstore-add", name=name, fd=fd, inode=st.st_ino, poll=int(poll))

    def check_store(self):
        watched = [s for s in self.store if s.poll]
        if not watched:
            return
        p = select.poll()
        for s in watched:
            p.register(s.fd, 0)   # POLLERR and POLLHUP are always reported
        for fd, rev in p.poll(0):
            if rev & (select.POLLERR | select.POLLHUP | select.POLLNVAL):
                s = next(x for x in self.store if x.fd == fd)
                why = "|".join(n for b, n in ((select.POLLERR, "POLLERR"),
                                              (select.POLLHUP, "POLLHUP"),
                                              (select.POLLNVAL, "POLLNVAL")) if rev & b)
                self.store.remove(s)
                os.close(s.fd)
                self.ev("fdstore-removed", name=s.name, reason=why)

    # ---------------------------------------------------------------- notify

    def on_notify(self):
        while True:
            try:
                data, anc, flags, _ = self.notify.recvmsg(
                    NOTIFY_BUFFER_MAX, socket.CMSG_SPACE(NOTIFY_FD_MAX * 4) +
                    socket.CMSG_SPACE(struct.calcsize("iII")), socket.MSG_CMSG_CLOEXEC)
            except BlockingIOError:
                return
            fds, pid = [], None
            for level, typ, cdata in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                    a = array.array("i")
                    a.frombytes(cdata[:len(cdata) - len(cdata) % a.itemsize])
                    fds.extend(a)
                elif level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("iII", cdata[:struct.calcsize("iII")])[0]
            pairs = []
            for line in data.decode("utf-8", "replace").split("\n"):
                if line:
                    k, _, v = line.partition("=")
                    pairs.append((k, v))
            is_main = pid is not None and pid == self.main and self.main_status is None
            trunc = bool(flags & (socket.MSG_CTRUNC | socket.MSG_TRUNC))
            accepted = is_main and not trunc
            self.ev.raw("notify", {"pid": pid if pid is not None else "-", "main": int(is_main),
                                   "accepted": int(accepted), "fds": len(fds),
                                   "truncated": int(trunc)}, pairs)
            if not accepted:
                for fd in fds:
                    os.close(fd)
                continue
            tags = {k: v for k, v in pairs}
            if tags.get("FDSTOREREMOVE") == "1":
                name = tags.get("FDNAME")
                if name is None or not fdname_is_valid(name):
                    self.ev("error", what="FDSTOREREMOVE=1 without a valid FDNAME=")
                else:
                    for s in [s for s in self.store if s.name == name]:
                        self.store.remove(s)
                        os.close(s.fd)
                        self.ev("fdstore-remove", name=name)
            if fds:
                if tags.get("FDSTORE") == "1":
                    name = tags.get("FDNAME", "stored")
                    if not fdname_is_valid(name):
                        self.ev("error", what="invalid FDNAME=, descriptors closed", name=name)
                        for fd in fds:
                            os.close(fd)
                    else:
                        poll = tags.get("FDPOLL") != "0" and not self.a.no_fdpoll
                        self.store_fds(fds, name, poll)
                else:
                    self.ev("fds-closed", count=len(fds), reason="sent without FDSTORE=1")
                    for fd in fds:
                        os.close(fd)

    # ---------------------------------------------------------------- control

    def on_control(self):
        try:
            chunk = os.read(self.control, 4096)
        except BlockingIOError:
            return
        self.control_buf += chunk
        while b"\n" in self.control_buf:
            line, self.control_buf = self.control_buf.split(b"\n", 1)
            words = line.decode("utf-8", "replace").split()
            if not words:
                continue
            self.ev("control", command=" ".join(words))
            cmd, rest = words[0], words[1:]
            try:
                delay = float(rest[0]) if rest else 0.0
            except ValueError:
                self.ev("error", what="bad delay", command=" ".join(words))
                continue
            if cmd == "restart":
                self.begin_stop(("start", delay))
            elif cmd == "restart-nofds":
                self.begin_stop(("start", delay), close_store=True)
            elif cmd == "stop":
                self.begin_stop(("exit", 0), close_store=True)
            else:
                self.ev("error", what="unknown command", command=" ".join(words))

    # ---------------------------------------------------------------- loop

    def run(self):
        self.start()
        while self.exit_status is None:
            p = select.poll()
            p.register(self.notify.fileno(), select.POLLIN)
            p.register(self.control, select.POLLIN)
            p.register(self.wake_r, select.POLLIN)
            try:
                p.poll(50)
            except InterruptedError:
                pass
            try:
                while os.read(self.wake_r, 256):
                    pass
            except BlockingIOError:
                pass
            sigs, self.signals = self.signals, []
            if signal.SIGTERM in sigs or signal.SIGINT in sigs:
                self.ev("control", command="stop (signal)")
                self.begin_stop(("exit", 0), close_store=True)
            self.on_notify()
            self.on_control()
            self.reap()
            self.check_store()
            if self.state == "stopping":
                if self.main_status is not None and not self.descendants():
                    self.finish_stop()
                elif time.monotonic() >= self.stop_deadline:
                    self.ev("error", what="stop timed out, SIGKILL")
                    self.kill_all(signal.SIGKILL)
                    self.stop_deadline = time.monotonic() + 5
            elif self.state == "waiting" and time.monotonic() >= self.start_at:
                self.start()
        self.close_store("manager exits")
        self.notify.close()
        os.unlink(self.notify_path)
        os.unlink(self.control_path)
        self.ev("manager-exit", status=self.exit_status)
        return self.exit_status


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True, help="directory for the sockets, FIFO, logs")
    ap.add_argument("--fdstore-max", type=int, default=4, help="FileDescriptorStoreMax= [4]")
    ap.add_argument("--no-fdpoll", action="store_true",
                    help="do not watch stored descriptors for POLLERR/POLLHUP")
    ap.add_argument("--timeout-stop", type=float, default=90.0, help="TimeoutStopSec= [90]")
    ap.add_argument("--kill-mode", choices=("control-group", "mixed"), default="control-group",
                    help="KillMode= [control-group]")
    ap.add_argument("--restart", choices=("no", "on-failure"), default="no", help="Restart= [no]")
    ap.add_argument("--restart-sec", type=float, default=0.1, help="RestartSec= [0.1]")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    if a.command and a.command[0] == "--":
        a.command = a.command[1:]
    if not a.command:
        ap.error("no command")
    return Manager(a).run()


if __name__ == "__main__":
    sys.exit(main())
