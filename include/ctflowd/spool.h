/*
 * spool.h - the hand-off between the thread that drains netlink and the
 * export threads.
 *
 * Records get consecutive positions (0, 1, 2, ...).  Each destination is a
 * reader with its own confirmed position: records stay until every reader has
 * confirmed them, so a destination that reconnects can rewind to what it last
 * confirmed and send again.  Appending never blocks: past the size bound the
 * oldest records are dropped and each reader that had not confirmed them
 * counts them as lost.
 *
 * A durable spool (spool_open) keeps the records in a journal in a directory
 * and the confirmed position of each named reader next to it, so that a
 * process that dies loses nothing it had accepted: the next one resumes
 * every destination at its own confirmed position and sends the rest again.
 * Recent records are also kept in memory, and readers that keep up are
 * served from there.
 *
 * Threads: one appends, one per reader reads and confirms, any may ask for
 * counters.
 */
#pragma once

#include <glib.h>
#include "ctflowd/flow.h"

typedef struct spool spool;

/* When a durable spool waits for the disk (fdatasync). */
enum spool_sync {
	SPOOL_SYNC_NONE,    /* never: what was written survives the process, not a power loss */
	SPOOL_SYNC_BATCH,   /* group commit: every 100 ms what was written since
			     * goes to the journal's sync thread (see
			     * spool_sync_pending()), positions at most every 100 ms */
	SPOOL_SYNC_RECORD,  /* before spool_append() returns, and per spool_confirm() */
};

/**
 * spool_sync_pending:
 * (appender) With SPOOL_SYNC_BATCH, syncs records written since the last
 * group commit if it is due at @now_us (g_get_monotonic_time()).  Returns
 * microseconds until the next one is due, or -1 when nothing waits; the
 * appender calls it again by then, and after every append.
 */
gint64 spool_sync_pending(spool *s, gint64 now_us);

/** spool_new: a spool in memory only holding at most @max_bytes of records (>= one chunk). */
spool *spool_new(guint64 max_bytes);

/**
 * spool_open:
 * A durable spool in @dir (created with mode 0750 if missing), holding at
 * most @max_bytes of journal (whole 64 MiB segments, fewer and smaller when
 * @max_bytes is small).  Recovers what an earlier process left: every record
 * is checked, and what fails (a torn last write, flipped bytes, a file that
 * is not a segment) is moved to @dir/corrupt/ and logged; the rest is used.
 * Appends continue after the newest good record.  Fails if @dir cannot be
 * used or another process has it open.
 */
spool *spool_open(const char *dir, guint64 max_bytes, enum spool_sync sync, GError **error);

/**
 * spool_add_reader:
 * Registers a reader (before the first append) and returns its index.
 * A new reader starts at the current end.  Its position is not saved.
 */
guint spool_add_reader(spool *s);

/**
 * spool_add_reader_named:
 * Like spool_add_reader(), for a reader whose confirmed position a durable
 * spool keeps in its directory (cursor-@name).  A name seen before resumes
 * at its saved position, and spool_confirmed() says where: records after it
 * are read again.  A saved position past the end is brought back to the end,
 * one the size bound went past counts what it missed as lost; either is
 * logged.  A cursor that fails its checks is logged and the reader starts at
 * the oldest record held.  A new name starts at the end.  On a spool in
 * memory, the name only appears in messages.
 */
guint spool_add_reader_named(spool *s, const char *name);

/**
 * spool_append:
 * Appends @n records; wakes waiting readers.  Never waits for a reader.  A
 * durable spool writes them with one write() (and syncs as chosen); if the
 * journal cannot be written, they are kept in memory only and that is logged.
 */
void spool_append(spool *s, const struct flow_record *records, size_t n);

/**
 * spool_read:
 * Copies up to @max records starting at position *@pos into @out and
 * advances *@pos.  Waits until at least one record is there, the monotonic
 * time @deadline_us (g_get_monotonic_time) has passed, or the spool is closed.
 * If records at *@pos were dropped, *@pos first jumps to the next record
 * held (the reader's lost count grew when they were dropped).  Returns the
 * number copied.  Records no longer in memory are read from the journal.
 */
size_t spool_read(spool *s, guint reader, guint64 *pos, struct flow_record *out, size_t max,
		  gint64 deadline_us);

/**
 * spool_confirm:
 * Records before @upto are delivered for @reader and may be freed once every
 * reader has confirmed them.  A durable spool saves the position of a named
 * reader (one small write, synced unless SPOOL_SYNC_NONE) before it deletes
 * anything for it.
 */
void spool_confirm(spool *s, guint reader, guint64 upto);

/** spool_confirmed: the reader's confirmed position (where a rewind goes). */
guint64 spool_confirmed(spool *s, guint reader);

/**
 * spool_wait_durable:
 * (any thread) Waits until the records before @end are as durable as the
 * spool's sync mode makes them (with SPOOL_SYNC_BATCH: synced by a group
 * commit), at most until @deadline_us (monotonic).  TRUE when they are; a
 * spool in memory has nothing to wait for.
 */
gboolean spool_wait_durable(spool *s, guint64 end, gint64 deadline_us);

/** spool_end: position one past the newest record. */
guint64 spool_end(spool *s);

/** spool_lost: records @reader lost because the spool was full. */
guint64 spool_lost(spool *s, guint reader);

/**
 * spool_dropped_total:
 * Records deleted before every reader had confirmed them (the size bound,
 * or records the journal could not take falling out of memory): IPFIX
 * notSentFlowTotalCount.
 */
guint64 spool_dropped_total(spool *s);

/**
 * spool_recent:
 * Calls @fn for each of the last @max records held, oldest first (at start,
 * to tell the duplicate filter what was accepted before).  @fn runs without
 * the spool's lock held.
 */
void spool_recent(spool *s, size_t max, void (*fn)(const struct flow_record *r, void *user),
		  void *user);

/** spool_close: no more appends; readers get what is left, then 0 at once. */
void spool_close(spool *s);

/** spool_is_closed: TRUE after spool_close(). */
gboolean spool_is_closed(spool *s);

/** spool_free: frees @s (NULL is fine); readers must be gone. */
void spool_free(spool *s);
