/*
 * guard.h - keeps reliable delivery from filling the host's conntrack table.
 *
 * With NETLINK_BROADCAST_ERROR the kernel parks every DESTROY it cannot
 * queue for us, and parked entries count against nf_conntrack_max: a reader
 * that stalls makes the firewall drop new connections.  The guard watches the
 * table (nf_conntrack_count, parked entries included) from the supervisor,
 * which a stalled worker cannot stall, and past the threshold switches
 * reliable delivery off: the kernel then lets go of what it parked, and
 * events that do not fit are lost, counted from the socket's drop counter.
 * Reliable delivery comes back once the table is below the threshold again
 * and the worker is reading.
 *
 * It must act within a moment of the crossing: with a small receive buffer
 * the kernel resends parked DESTROYs only as fast as the socket takes them,
 * so a short stall means minutes of a nearly full table.  It therefore looks
 * only at whether anything is parked (the first entry of the dying list,
 * never the whole list, which takes minutes to dump when it is long), and
 * decides on facts read right before it switches: a worker that is reading
 * again while the table falls is left to empty it, unless the table is past
 * the ceiling halfway between the threshold and nf_conntrack_max.
 */
#pragma once

#include <glib.h>

struct guard_options {
	guint percent;      /* threshold as % of nf_conntrack_max (used when entries is 0) */
	guint64 entries;    /* threshold as an entry count (wins over percent) */
};

struct guard_stats {
	guint64 activations;     /* times reliable delivery was switched off */
	guint64 dropped;         /* events the socket dropped while it was off */
	guint64 off_ms;          /* time spent with reliable delivery off */
};

typedef struct guard guard;

/**
 * guard_new:
 * A guard for @events_fd.  Opens the sysctl and netlink statistics files of
 * the calling thread's current network namespace, so call it there (see
 * netns_enter()).  Returns NULL with @error when they cannot be read.
 */
guard *guard_new(int events_fd, const struct guard_options *opts, GError **error);

/**
 * guard_reader_fn:
 * Returns when the worker last drained the socket (monotonic, as
 * g_get_monotonic_time(); 0: no worker).  Called as often as the guard needs
 * a fresh answer.
 */
typedef gint64 (*guard_reader_fn)(void);

/**
 * guard_check:
 * Reads the table and acts: reliable delivery off when the table is past the
 * threshold with entries parked and the worker is not emptying it (see
 * above); back on once the worker reads and the table is below 90 % of the
 * threshold.  @reader_alive_us NULL means no worker reads (while the socket
 * waits for a successor).  Takes at most about half a second (the bounded
 * look at the dying list).
 */
void guard_check(guard *g, guard_reader_fn reader_alive_us);

/** guard_threshold: the threshold in entries. */
guint64 guard_threshold(const guard *g);

/** guard_get_stats: the counters. */
void guard_get_stats(const guard *g, struct guard_stats *out);

/** guard_free: frees @g (NULL is fine); leaves the socket as it is. */
void guard_free(guard *g);
