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
 */
#pragma once

#include <glib.h>
#include "ctflowd/flow.h"

typedef struct spool spool;

/** spool_new: a spool holding at most @max_bytes of records (>= one chunk). */
spool *spool_new(guint64 max_bytes);

/**
 * spool_add_reader:
 * Registers a reader (before the first append) and returns its index.
 * A new reader starts at the current end.
 */
guint spool_add_reader(spool *s);

/** spool_append: appends @n records; wakes waiting readers.  Never blocks. */
void spool_append(spool *s, const struct flow_record *records, size_t n);

/**
 * spool_read:
 * Copies up to @max records starting at position *@pos into @out and
 * advances *@pos.  Waits until at least one record is there, the monotonic
 * time @deadline_us (g_get_monotonic_time) has passed, or the spool is closed.
 * If records at *@pos were dropped, *@pos first jumps to the oldest record
 * held (the reader's lost count grows by the gap).  Returns the number copied.
 */
size_t spool_read(spool *s, guint reader, guint64 *pos, struct flow_record *out, size_t max,
		  gint64 deadline_us);

/**
 * spool_confirm:
 * Records before @upto are delivered for @reader and may be freed once every
 * reader has confirmed them.
 */
void spool_confirm(spool *s, guint reader, guint64 upto);

/** spool_confirmed: the reader's confirmed position (where a rewind goes). */
guint64 spool_confirmed(spool *s, guint reader);

/** spool_end: position one past the newest record. */
guint64 spool_end(spool *s);

/** spool_lost: records @reader lost because the spool was full. */
guint64 spool_lost(spool *s, guint reader);

/** spool_close: no more appends; readers get what is left, then 0 at once. */
void spool_close(spool *s);

/** spool_is_closed: TRUE after spool_close(). */
gboolean spool_is_closed(spool *s);

/** spool_free: frees @s (NULL is fine); readers must be gone. */
void spool_free(spool *s);
