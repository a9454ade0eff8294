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
 * guard_check:
 * Reads the table and acts.  @reader_alive_us is when the worker last
 * drained the socket (monotonic; 0: no reader).
 */
void guard_check(guard *g, gint64 reader_alive_us);

/** guard_threshold: the threshold in entries. */
guint64 guard_threshold(const guard *g);

/** guard_get_stats: the counters. */
void guard_get_stats(const guard *g, struct guard_stats *out);

/** guard_free: frees @g (NULL is fine); leaves the socket as it is. */
void guard_free(guard *g);
