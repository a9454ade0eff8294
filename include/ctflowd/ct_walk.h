/*
 * ct_walk.h - the periodic walk of the conntrack table that finds
 * long-lived connections for interim records, and the rhythm of the
 * connection state's snapshots.
 *
 * The walk runs on a thread of its own with a dump socket of its own (see
 * ct_request.h), so it never holds up the reader of DESTROY events.  It
 * parses each entry and keeps those that started at least the active
 * timeout ago (younger ones cannot be due; translated ones also when they
 * started the NAT refresh ago, if that is shorter), stamped with the time
 * they were read (end_ns), as FLOW_EVENT_DUMP records.  The reader thread
 * takes them in batches (ct_walk_take()) and decides, against the
 * connection state it owns, which become interim records, NAT refreshes
 * or late NAT creates.
 *
 * A dump flagged NLM_F_DUMP_INTR (the table changed under it) is not
 * redone: every entry read is a true reading of its connection at that
 * moment, an entry read twice finds its interim record already made, and
 * one missed is found by the next walk.  It is counted.
 *
 * After each walk (or each interval, with walks off) the reader hands over
 * a snapshot of the state it owns with the journal position it covers
 * (ct_walk_hand_snapshot()); the walker thread passes it to the persist
 * callback, off the reader thread.
 */
#pragma once

#include <glib.h>
#include "ctflowd/ct_source.h"

typedef struct ct_walk ct_walk;

struct ct_walk_stats {
	guint64 walks;          /* walks finished */
	guint64 entries;        /* entries read */
	guint64 handed;         /* entries handed to the reader (old enough) */
	guint64 interrupted;    /* walks the kernel flagged NLM_F_DUMP_INTR */
	guint64 failed;         /* walks cut short by an error or the deadline */
	guint64 yields;         /* pauses made for a reader that was behind */
	guint64 last_us;        /* duration of the last walk */
	guint64 last_cpu_us;    /* CPU time of the walker thread in the last walk */
	guint64 last_entries;   /* entries of the last walk */
};

/**
 * ct_walk_persist_fn:
 * Called on the walker thread with each snapshot the reader handed over and
 * the journal position it covers; NULL when the state did not change since
 * the last one (the journal up to @position changed nothing in it).
 */
typedef void (*ct_walk_persist_fn)(GBytes *snapshot, guint64 position, void *user);

/**
 * ct_walk_new:
 * A walker for the calling thread's network namespace (see netns_enter()),
 * not started.  It walks every @interval_ms, handing entries that started
 * at least @min_age_ns before, and translated ones (flow_is_translated())
 * also when they started at least @nat_min_age_ns before (G_MAXUINT64:
 * never); @walk FALSE only sets the rhythm of snapshots.  NULL with @error
 * when the dump socket cannot be opened.
 */
ct_walk *ct_walk_new(guint interval_ms, guint64 min_age_ns, guint64 nat_min_age_ns,
		     gboolean walk, ct_walk_persist_fn persist, void *user, GError **error);

/**
 * ct_walk_burst_fn:
 * (walker thread) The monotonic time at which the reader last found itself
 * behind, 0 if never (ct_source_burst_seen_us()).
 */
typedef gint64 (*ct_walk_burst_fn)(const void *user);

/**
 * ct_walk_yield_to:
 * Before the start: while @burst_seen says the reader was behind in the
 * last 100 ms, the walk slows to about 25,000 entries a second, so that the
 * kernel's work of building the dump does not take the reader's CPU in a
 * burst.  It never stops altogether.
 */
void ct_walk_yield_to(ct_walk *w, ct_walk_burst_fn burst_seen, const void *user);

/** ct_walk_start: starts the walker thread. */
gboolean ct_walk_start(ct_walk *w, GError **error);

/** ct_walk_fd: readable when batches (or a walk's end) wait for the reader. */
int ct_walk_fd(const ct_walk *w);

/**
 * ct_walk_take:
 * (reader thread) Passes the entries waiting to @fn, in batches.  Returns
 * TRUE when a walk ended with them: the reader then hands a snapshot over.
 */
gboolean ct_walk_take(ct_walk *w, ct_source_records_fn fn, void *user);

/**
 * ct_walk_hand_snapshot:
 * (reader thread) Gives @snapshot (taken; NULL: no change since the last
 * one) covering the journal up to @position to the walker thread, which
 * persists it before its next walk.
 */
void ct_walk_hand_snapshot(ct_walk *w, GBytes *snapshot, guint64 position);

/** ct_walk_get_stats: a copy of the counters (any thread). */
void ct_walk_get_stats(ct_walk *w, struct ct_walk_stats *out);

/**
 * ct_walk_free:
 * Stops the thread (a walk under way is cut short; a snapshot handed over
 * and not yet persisted is persisted first) and frees @w (NULL is fine).
 */
void ct_walk_free(ct_walk *w);
