#!/usr/bin/env python3
"""thread_stop.py PID NAME READY - holds one thread of a process stopped.

Stops the thread of PID whose name (/proc/PID/task/TID/comm) is NAME and
keeps it stopped while the process's other threads run on: a reader that
hangs inside a running process, which SIGSTOP cannot make (a stop signal
stops every thread).  ptrace does it: PTRACE_SEIZE then PTRACE_INTERRUPT
stop only the tracee thread.  Writes the thread id to READY once it is
stopped, then waits until that thread is gone (the process killed) and
exits 0; ending this program earlier lets the thread run on.  Exits 1, with
a message, when the thread cannot be found or stopped.
"""
import ctypes
import os
import sys

PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
WALL = 0x40000000  # __WALL: wait for a thread that is not a child

libc = ctypes.CDLL(None, use_errno=True)


def ptrace(request, tid):
    if libc.ptrace(ctypes.c_long(request), ctypes.c_long(tid), None, None) != 0:
        err = ctypes.get_errno()
        sys.exit("thread_stop: ptrace(0x%x, %d): %s" % (request, tid, os.strerror(err)))


def find_thread(pid, name):
    tids = []
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                if f.read().strip() == name:
                    tids.append(int(tid))
        except OSError:
            pass
    if len(tids) != 1:
        sys.exit("thread_stop: %d threads of %d are named %r" % (len(tids), pid, name))
    return tids[0]


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: thread_stop.py PID NAME READY")
    pid, name, ready = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    tid = find_thread(pid, name)
    ptrace(PTRACE_SEIZE, tid)
    ptrace(PTRACE_INTERRUPT, tid)
    _, status = os.waitpid(tid, WALL)
    if not os.WIFSTOPPED(status):
        sys.exit("thread_stop: thread %d did not stop (status 0x%x)" % (tid, status))
    with open(ready, "w") as f:
        f.write("%d\n" % tid)
    # Every later stop (a signal for the thread, another interrupt) is left
    # as it is: the thread never runs again while this program lives.
    while True:
        try:
            _, status = os.waitpid(tid, WALL)
        except ChildProcessError:
            return 0
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            return 0


if __name__ == "__main__":
    sys.exit(main())
