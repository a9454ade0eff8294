/*
 * supervisor.h - a minimal parent that owns the event socket and restarts
 * the worker that reads it.
 *
 * The worker does everything that can fail (parsing, exporting, threads);
 * the parent only forks, waits and forwards signals, so it does not crash
 * with it.  While no worker runs, the kernel keeps queueing events into the
 * socket the parent holds (and parks DESTROYs in reliable mode), and the
 * next worker reads them: a `kill -9` of the worker loses nothing.
 *
 * The other way round, a worker whose supervisor was killed outright learns
 * it from the kernel (PR_SET_PDEATHSIG): it then stops as on SIGTERM and,
 * holding the last copy of the socket, leaves it for the next ctflowd.
 */
#pragma once

#include <glib.h>

/** Runs in the forked worker; returns its exit status. */
typedef int (*supervisor_worker_fn)(void *user);

struct supervisor_options {
	guint restart_min_ms;   /* first wait before restarting a worker that died */
	guint restart_max_ms;   /* the wait doubles up to this while it keeps dying */
	guint stop_timeout_ms;  /* after SIGTERM, the worker gets this long, then SIGKILL */
	gboolean notify;        /* tell systemd READY=1 / STOPPING=1 */
	guint tick_ms;          /* call tick every this long (0: never) */
	void (*tick)(void *user); /* supervisor_worker_last_alive() tells it about the worker */
	void *tick_user;
};

/* Exit status a worker uses for an error restarting cannot fix (bad
 * configuration, missing permissions): the supervisor stops too. */
#define SUPERVISOR_EXIT_FATAL 78

/**
 * supervisor_run:
 * Forks a worker running @fn(@user) and keeps one running until SIGTERM or
 * SIGINT, which it forwards (as SIGTERM) and waits for.  SIGUSR1 and SIGHUP
 * are forwarded.  A worker whose reader stopped making progress (its
 * heartbeat, supervisor_worker_alive(), stood still for 60 s after its
 * first read) is killed the same way, SIGKILL after a log line saying why,
 * and restarted: the loss-free path of a `kill -9`.  A worker tells the
 * supervisor it is up by sending it SIGUSR2 (see supervisor_worker_ready()).
 * Every tick_ms it calls tick.
 * Returns the exit status for the daemon: the stopped worker's, or 1 after
 * SUPERVISOR_EXIT_FATAL.
 */
int supervisor_run(supervisor_worker_fn fn, void *user, const struct supervisor_options *opts);

/** supervisor_worker_ready: called by the worker once it reads events. */
void supervisor_worker_ready(void);

/**
 * supervisor_worker_last_alive:
 * In the supervisor: the monotonic time the running worker last drained the
 * socket, read now (0: no worker runs, or it has not read yet).
 */
gint64 supervisor_worker_last_alive(void);

/**
 * supervisor_worker_alive:
 * Called by the worker whenever it drained the socket, with the monotonic
 * time of that wake-up: a store to memory shared with the supervisor, whose
 * tick sees when the worker last read.
 */
void supervisor_worker_alive(gint64 now_us);

/**
 * supervisor_hold_signals:
 * Blocks SIGTERM, SIGINT, SIGHUP and SIGUSR1 in the calling process, from
 * its start: they wait until the supervisor's loop (or the worker's
 * handlers) take them, and none can end ctflowd halfway through starting.
 */
void supervisor_hold_signals(void);

/**
 * supervisor_worker_take_signals:
 * (worker) The worker is forked with SIGTERM, SIGINT, SIGHUP and SIGUSR1
 * blocked, so that none kills it before it can handle them; it calls this
 * once its handlers are in place, and those that came meanwhile are
 * delivered then.  Harmless outside a supervised worker.
 */
void supervisor_worker_take_signals(void);

/**
 * supervisor_worker_watch:
 * Called by the worker once SIGTERM stops it cleanly: from then on the death
 * of its supervisor sends it SIGTERM.  Returns FALSE when the supervisor is
 * already gone, before the kernel could be asked to tell.
 */
gboolean supervisor_worker_watch(void);

/**
 * supervisor_worker_orphaned:
 * TRUE in a worker whose supervisor is gone: nobody else holds the event
 * socket then (and supervisor_worker_ready() tells nobody).  FALSE outside
 * a worker.
 */
gboolean supervisor_worker_orphaned(void);
