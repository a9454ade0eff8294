/*
 * spool_load.h - records that carry their own position, and threads that
 * read a spool while the test appends to it: shared by test_spool (in
 * memory) and test_journal (on disk).
 *
 * Every record carries its position (flow_id) and values derived from it
 * (ct_id, bytes), so a read that returns the wrong record, skips one or
 * repeats one is caught wherever it happens.
 */
#pragma once

#include <glib.h>

#include "ctflowd/spool.h"

/** load_fill: @n records for positions @first.. */
void load_fill(struct flow_record *out, guint64 first, size_t n);

/** load_record_is: @r is the record load_fill() made for position @want. */
gboolean load_record_is(const struct flow_record *r, guint64 want);

/* A reader thread: reads up to @max records a time, confirms what it read,
 * and accounts for every position from 0 to the end. */
struct load_reader {
	size_t max;
	gboolean slow;      /* sleeps now and then, so the appender runs ahead */
	/* results */
	guint64 delivered;  /* records read */
	guint64 gaps;       /* positions skipped over, the tail included */
	guint64 lost;       /* spool_lost() at the end */
	gboolean ok;        /* never backwards, every record the right one */
	/* internal */
	spool *s;
	guint reader;
	guint64 next;
};

/**
 * load_run:
 * Adds a reader for each of @readers (named "consumer-N" when @named), starts
 * their threads, appends @total records in batches of 1..300, closes the
 * spool and waits for the readers.
 */
void load_run(spool *s, guint64 total, struct load_reader *readers, size_t n, gboolean named);
