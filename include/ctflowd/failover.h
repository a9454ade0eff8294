/*
 * failover.h - who sends the records of an export that has a backup
 * (`failover = NAME`): the export itself or, while it cannot be reached,
 * its backup.
 *
 * The records of an export are the range of the journal after its
 * confirmed position (spool.h: one reader, one position).  With a backup,
 * two export threads could send that range, so exactly one of them holds
 * the position at a time: only the holder reads from it and confirms on
 * it, and the other starts, when it gets the position, from where the
 * holder confirmed.  A record confirmed by either is never sent again; a
 * record is sent by both only when the side that gave the position up had
 * sent it without a confirmation (a TCP connection that broke with bytes
 * unacknowledged, a backup whose collector did not acknowledge in time).
 * The side giving up says how many such records it had: the count of
 * possible doubles.
 *
 *   PRIMARY ──primary_down──▶ DOWN ──backup_take──▶ BACKUP
 *      ▲                       │                       │
 *      │◀──────primary_up──────┘                 primary_up
 *      │                                               ▼
 *      └──────────backup_release──────────────── RETURNING
 *                                 (primary_down: back to BACKUP)
 *
 * The transitions are the whole policy; the export threads (sink.c) do the
 * I/O and call them.  Threads: one primary and one backup thread, any
 * thread for the counters.
 */
#pragma once

#include <glib.h>

typedef struct failover failover;

enum failover_phase {
	FAILOVER_PRIMARY,    /* the export holds its position and sends */
	FAILOVER_DOWN,       /* the export could not be reached and let go; the backup takes it */
	FAILOVER_BACKUP,     /* the backup holds the position and sends */
	FAILOVER_RETURNING,  /* the export is reachable again; the backup gives the position back */
};

struct failover_stats {
	guint64 takeovers;      /* times the backup took the position */
	guint64 givebacks;      /* times the export got it back from the backup */
	guint64 doubtful;       /* records sent by the side letting go and not confirmed:
				 * the other sends them again, so at most this many doubles */
};

/**
 * failover_notify_fn:
 * Called (without the object's lock) after a transition the other side
 * waits for, so that a sleeping export thread wakes at once.
 */
typedef void (*failover_notify_fn)(void *user);

/**
 * failover_new:
 * The hand-off between @primary (the export's name) and @backup, starting
 * with the export holding its position.  @notify_primary and @notify_backup
 * wake the respective thread (may be NULL).
 */
failover *failover_new(const char *primary, const char *backup, failover_notify_fn notify_primary,
		       void *primary_user, failover_notify_fn notify_backup, void *backup_user);

/** failover_phase_get: the current phase (any thread). */
enum failover_phase failover_phase_get(failover *fo);

/**
 * failover_primary_holds:
 * (export thread) TRUE when the export may read from and confirm on its
 * position: in phase PRIMARY only.
 */
gboolean failover_primary_holds(failover *fo);

/**
 * failover_primary_down:
 * (export thread, while it holds the position, or while RETURNING) The
 * export cannot reach its destination.  From PRIMARY: it lets go, with
 * @unconfirmed records it sent without a confirmation, and the phase is
 * DOWN (logged).  From RETURNING: the connection it had opened to take over
 * again broke before the backup let go; the backup keeps the position
 * (BACKUP).  Elsewhere a no-op.
 */
void failover_primary_down(failover *fo, guint64 unconfirmed);

/**
 * failover_primary_up:
 * (export thread) The export reached its destination.  Returns TRUE when it
 * holds the position (again) and may send: at once from DOWN (the backup
 * had not taken it yet) and PRIMARY.  From BACKUP the phase becomes
 * RETURNING and FALSE is returned: the export waits for
 * failover_backup_release() and asks again.
 */
gboolean failover_primary_up(failover *fo);

/**
 * failover_backup_take:
 * (backup thread) TRUE when the backup holds the position: it takes it in
 * phase DOWN (counted as a takeover, logged), and keeps it in BACKUP and
 * RETURNING until it releases it.  FALSE in PRIMARY.
 */
gboolean failover_backup_take(failover *fo);

/**
 * failover_backup_must_release:
 * (backup thread) TRUE in phase RETURNING: the backup ends what it is
 * sending, waits briefly for its confirmation and calls
 * failover_backup_release().
 */
gboolean failover_backup_must_release(failover *fo);

/**
 * failover_backup_release:
 * (backup thread, in RETURNING) Gives the position back, with @unconfirmed
 * records the backup sent without a confirmation; the phase is PRIMARY
 * (counted as a giveback, logged).  Elsewhere a no-op.
 */
void failover_backup_release(failover *fo, guint64 unconfirmed);

/**
 * failover_backup_finished:
 * (backup thread, as it ends at a stop) Wakes the export, which may be
 * waiting for the backup to deliver the last records.  Changes no phase.
 */
void failover_backup_finished(failover *fo);

/** failover_get_stats: a snapshot of the counters (any thread). */
void failover_get_stats(failover *fo, struct failover_stats *out);

/** failover_free: frees @fo (NULL is fine); both threads must be gone. */
void failover_free(failover *fo);
