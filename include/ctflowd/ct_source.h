/*
 * ct_source.h - the kernel side: a ctnetlink socket subscribed to conntrack
 * events of one network namespace.
 *
 * Reliable mode (NETLINK_BROADCAST_ERROR) makes the kernel keep a DESTROY it
 * could not queue on this socket and resend it until it is queued; the
 * source drains the socket in batches (recvmmsg) into a landing zone that
 * survives the process, parses each message and hands the records to the
 * caller, which must have made them durable when it returns.  Only what the
 * kernel sent is taken: a datagram another local process sent to the
 * socket's port id is dropped before it is parsed, counted and logged
 * (rate-limited).  An overrun
 * (ENOBUFS) is counted and logged once per burst.  In reliable mode the
 * DESTROYs that did not fit come again, so only when NEW events are
 * subscribed, or delivery is not reliable, does a table dump (resync)
 * follow once the burst is over: a dump recovers the state of running
 * flows, not ended ones.
 */
#pragma once

#include <glib.h>
#include "ctflowd/flow.h"

typedef struct ct_source ct_source;
struct ct_filter;

struct ct_source_options {
	guint64 receive_buffer;     /* bytes asked for; the granted size sizes read coalescing */
	gboolean reliable;          /* whether NETLINK_BROADCAST_ERROR is on */
	gboolean subscribe_new;     /* NEW events are expected too */
	guint resync_delay_ms;      /* quiet time after the last overrun before the dump */
	gboolean hand_on_each_read; /* spool_sync = record: what a read took is handed
				     * on (and made durable) before the next read,
				     * not held back to gather a batch */
	const struct ct_filter *filter; /* only matching records are handed on (NULL:
				     * all); dumps ask the kernel for them; it must
				     * outlive the source */
};

struct ct_source_stats {
	guint64 messages;           /* netlink messages read */
	guint64 destroys;           /* DESTROY records produced */
	guint64 news;
	guint64 dumped;             /* entries read by resync dumps */
	guint64 ignored;            /* valid messages that are not IPv4/IPv6 entries */
	guint64 malformed;          /* messages that failed to parse (logged) */
	guint64 overruns;           /* ENOBUFS returns */
	guint64 overrun_bursts;     /* runs of ENOBUFS separated by quiet time */
	guint64 resyncs;            /* table dumps done */
	guint64 no_counters;        /* DESTROYs without counters (acct off at creation) */
	guint64 no_timestamps;      /* DESTROYs without timestamps */
	guint64 recovered;          /* events found in the landing zone at start */
	guint64 not_kernel;         /* datagrams another process sent (dropped unread) */
	guint64 filtered;           /* records the filter dropped in user space (what
				     * the kernel's filters let through) */
};

/**
 * ct_source_records_fn:
 * Receives the records parsed from one batch of messages, in arrival order.
 * Runs on the thread that drains the socket: it must not block.
 */
typedef void (*ct_source_records_fn)(const struct flow_record *records, size_t n, void *user);

/**
 * ct_source_new:
 * Reads events from @events_fd (a configured ct_socket, still owned by the
 * caller).  Events land in the file @landing_path (NULL: in memory) until
 * @fn has taken them; events a killed predecessor left there are delivered
 * first.  The table-dump socket is opened in the calling thread's current
 * network namespace (see netns_enter()).  On a netlink socket only datagrams
 * from the kernel are taken, in the drain and in the recovery alike.  A
 * socket of another family has no netlink sender: it is taken only when
 * connected (a socketpair in tests), and then what its one peer sends is
 * taken; an unconnected one is refused (ENOTCONN).
 */
ct_source *ct_source_new(int events_fd, const char *landing_path,
			 const struct ct_source_options *opts, ct_source_records_fn fn,
			 void *user, GError **error);

/** ct_source_fd: the socket, for the event loop (readable = drain). */
int ct_source_fd(const ct_source *src);

/**
 * ct_source_drain:
 * Reads what is queued (at most a bounded amount per call, so the loop stays
 * responsive) and delivers it.  @now_us is the caller's reading of
 * g_get_monotonic_time() for this wake-up: a burst wakes the reader tens of
 * thousands of times a second, and one clock reading each is enough.
 * Returns FALSE only on a fatal socket error.
 */
gboolean ct_source_drain(ct_source *src, gint64 now_us, GError **error);

/**
 * ct_source_burst_seen_us:
 * (any thread) The monotonic time at which the reader last found itself
 * behind: a read that filled a whole batch, or a receive buffer overrun;
 * 0 if never.  Background work on the reader's CPU (the table walk) backs
 * off while it is recent.
 */
gint64 ct_source_burst_seen_us(const ct_source *src);

/**
 * ct_source_landed_due_us:
 * Events wait in the landing zone until enough came to hand them on in one
 * batch.  Microseconds until the waiting ones are due (0: now), or -1 if
 * none wait; the reader calls ct_source_deliver_landed() by then.
 */
gint64 ct_source_landed_due_us(const ct_source *src, gint64 now_us);

/** ct_source_deliver_landed: hands on the events waiting in the landing zone now. */
void ct_source_deliver_landed(ct_source *src);

/**
 * ct_source_resync_due:
 * Milliseconds until a pending resync is due (0: now), or -1 if none.
 */
gint64 ct_source_resync_due(const ct_source *src);

/**
 * ct_source_resync:
 * Dumps the conntrack table on a separate socket (restarting when the dump is
 * interrupted, NLM_F_DUMP_INTR) and delivers the entries as FLOW_EVENT_DUMP
 * records.  The dump socket is opened in the namespace the source was
 * created in.  The whole resync is bounded in time (30 s) and fails with
 * ETIMEDOUT past it, keeping what it delivered.
 */
gboolean ct_source_resync(ct_source *src, GError **error);

/**
 * ct_source_held_back:
 * Whether the kernel's dying list holds any entry: in reliable mode, a
 * DESTROY that could not be queued yet and will be sent again.  A socket
 * closed while they wait loses them, so a stop keeps reading while any is
 * left.  Looks only at the first entry (one reply, however long the list)
 * and gives up at @deadline_us (monotonic), with an ETIMEDOUT error.
 * Sets *@any; returns FALSE with @error when the kernel could not be asked.
 */
gboolean ct_source_held_back(ct_source *src, gint64 deadline_us, gboolean *any,
			     GError **error);

/** ct_source_get_stats: the counters (same thread). */
const struct ct_source_stats *ct_source_get_stats(const ct_source *src);

/**
 * ct_source_free: frees @src and closes its dump socket (NULL is fine); the
 * events socket stays open: it belongs to the caller.
 */
void ct_source_free(ct_source *src);
