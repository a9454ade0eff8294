/*
 * journal.h - the spool's records on disk.  Private to src/spool/ and its
 * tests.
 *
 * Segment files DIR/journal-%016llx (hex: the first position they hold):
 *
 *   segment header  32 bytes  magic "CTFJ", version, record size, CRC, first position
 *   frame           24 bytes  magic "CTFR", payload length, position, CRC
 *                  224 bytes  struct flow_record, host byte order
 *   frame ...
 *
 * Every frame has the same size, so position P of a segment is at
 * JOURNAL_HEADER_SIZE + (P - first) * JOURNAL_FRAME_SIZE.  Each CRC is a
 * CRC-32C over its header with the CRC field zero, plus the payload for a
 * frame.  The journal is local to the host: byte order and record layout
 * are fixed by the version (and flow.h pins the record size).
 *
 * Threads and locking: the journal has a lock of its own, private to
 * journal.c, which guards the segment list.  Every function below takes it
 * itself where it needs it, and never calls out of journal.c while holding
 * it: the journal's lock is always the last one taken, so a caller may hold
 * its own lock across any journal call.  File I/O runs without it.
 *
 * One thread appends (the functions under "appending"): only it writes
 * frames, creates segments, takes the oldest off for the size bound and
 * moves the newest segment's count, which it publishes with a release store, so that a reader that sees a count also
 * sees the frames it covers.  An append therefore takes no lock of the
 * journal's.  Any thread may ask what is held, read, and take segments off
 * the list.
 */
#pragma once

#include <glib.h>
#include <stdint.h>

#include "ctflowd/spool.h"

#define JOURNAL_SEGMENT_MAGIC 0x4a465443u   /* "CTFJ" in a little-endian file */
#define JOURNAL_FRAME_MAGIC 0x52465443u     /* "CTFR" */
#define JOURNAL_VERSION 2u
/* Version 1 had records of 160 bytes: the same layout, without the fields
 * flow.h added after them.  Its segments are rewritten at start. */
#define JOURNAL_V1_RECORD_SIZE 160u
#define JOURNAL_DEFAULT_SEGMENT_BYTES (64ull << 20)
#define JOURNAL_CORRUPT_DIR "corrupt"
/* Positions count records from 0, one per record: even a billion a second
 * takes a century to pass 2^62.  A segment that claims to start beyond it
 * was not written by ctflowd, and positions after it would wrap. */
#define JOURNAL_MAX_FIRST (G_GUINT64_CONSTANT(1) << 62)

struct journal_segment_header {
	uint32_t magic;
	uint32_t version;
	uint32_t record_size;
	uint32_t crc;
	uint64_t first;
	uint64_t reserved;
};

struct journal_frame_header {
	uint32_t magic;
	uint32_t length;
	uint64_t position;
	uint32_t crc;
	uint32_t reserved;
};

#define JOURNAL_HEADER_SIZE ((guint64)sizeof(struct journal_segment_header))
#define JOURNAL_FRAME_SIZE \
	((guint64)(sizeof(struct journal_frame_header) + sizeof(struct flow_record)))

_Static_assert(sizeof(struct journal_segment_header) == 32, "segment header layout");
_Static_assert(sizeof(struct journal_frame_header) == 24, "frame header layout");

typedef struct journal journal;

/**
 * journal_open:
 * Locks @dir (one process per state directory), recovers every segment in
 * it and makes sure the last one can take appends.  Segments take
 * @segment_bytes (0: JOURNAL_DEFAULT_SEGMENT_BYTES), at most half of
 * @max_bytes.  What fails a check is moved to @dir/corrupt/ and logged; a
 * gap in positions is logged.  Fails only if the directory cannot be used
 * at all.
 */
journal *journal_open(const char *dir, guint64 max_bytes, guint64 segment_bytes,
		      enum spool_sync sync, GError **error);

/** journal_free: closes everything (NULL is fine); no other thread may use @j any more. */
void journal_free(journal *j);

/** journal_dir: the directory the journal lives in. */
const char *journal_dir(const journal *j);

/** journal_dir_fd: an open descriptor of that directory (for openat, fsync). */
int journal_dir_fd(const journal *j);

/** journal_end: one past the newest good record found by journal_open(). */
guint64 journal_end(const journal *j);

/* ---- what is held (any thread) -------------------------------------------- */

/** journal_held_between: how many positions in [@from, @to) segments hold. */
guint64 journal_held_between(journal *j, guint64 from, guint64 to);

/** journal_next_held: the lowest position >= @pos a segment holds, or G_MAXUINT64. */
guint64 journal_next_held(journal *j, guint64 pos);

/** journal_next_unheld: the lowest position >= @pos no segment holds. */
guint64 journal_next_unheld(journal *j, guint64 pos);

/**
 * journal_read:
 * Reads up to @n records at @pos.. from the segment holding @pos, checking
 * each frame; never past that segment's end.  Returns how many good records
 * lead the range.  0 without @error: no segment holds @pos (any more).
 * Fewer than asked with @error: the next frame is bad (@error says why and
 * where) or the read failed.
 */
size_t journal_read(journal *j, guint64 pos, struct flow_record *out, size_t n,
		    GError **error);

/* ---- taking segments off the list (any thread) ----------------------------- */

/*
 * Segments taken off the list go to a GPtrArray of the caller's (its
 * elements are the journal's: only journal_discard() looks at them), so that
 * their files are deleted once the caller has let go of its own lock.
 */

/**
 * journal_detach_before:
 * Takes off the list the segments that end at or before @pos, but never the
 * newest one, and adds them to @detached.
 */
void journal_detach_before(journal *j, guint64 pos, GPtrArray *detached);

/** journal_discard: deletes the files of the segments in @detached and frees the array. */
void journal_discard(journal *j, GPtrArray *detached);

/* ---- appending (appender) ---------------------------------------------------- */

/**
 * journal_at_bound:
 * TRUE when the segments listed are as many as the size bound allows: a new
 * one needs the oldest gone first (journal_detach_oldest()).
 */
gboolean journal_at_bound(journal *j);

/**
 * journal_detach_oldest:
 * Takes the oldest segment off the list and adds it to @detached; it held
 * positions [*@first, *@end).  Returns its file name (for messages; valid
 * until journal_discard()).
 */
const char *journal_detach_oldest(journal *j, GPtrArray *detached, guint64 *first,
				  guint64 *end);

/** journal_tail_room: frames the newest segment can still take (0 when sealed, full or missing). */
guint64 journal_tail_room(journal *j);

/**
 * journal_add_segment:
 * Creates the file for a segment starting at @first, writes its header
 * (synced unless SPOOL_SYNC_NONE) and lists it as the newest, sealing the
 * one before.  The caller makes room first (journal_at_bound()).
 */
gboolean journal_add_segment(journal *j, guint64 first, GError **error);

/**
 * journal_write:
 * Appends @n records at positions @pos.. to the newest segment, which must
 * have room: one write() for all of them, followed by a sync with
 * SPOOL_SYNC_RECORD (SPOOL_SYNC_BATCH leaves it to journal_commit()).
 * They are not held until journal_publish().  On failure the file is cut
 * back to what it held before and the segment is sealed, so a later append
 * never follows a torn frame (one that never held a record is deleted).
 */
gboolean journal_write(journal *j, guint64 pos, const struct flow_record *records, size_t n,
		       GError **error);

/** journal_publish: the @n records journal_write() wrote last are now held. */
void journal_publish(journal *j, guint64 n);

/* SPOOL_SYNC_BATCH: records are synced in groups, at most this long after
 * they were written (group commit; a power loss can take at most this much). */
#define JOURNAL_GROUP_COMMIT_US (100 * 1000)

/**
 * journal_commit:
 * SPOOL_SYNC_BATCH: hands what was written since the last commit to the
 * journal's sync thread and returns at once; @now_us (monotonic) starts the
 * next group-commit interval.
 */
void journal_commit(journal *j, gint64 now_us);

/**
 * journal_wait_synced:
 * (any thread) With SPOOL_SYNC_BATCH, waits until every position before
 * @end is on disk, at most until @deadline_us (monotonic); TRUE when they
 * are.  The other modes have nothing to wait for: TRUE at once.
 */
gboolean journal_wait_synced(journal *j, guint64 end, gint64 deadline_us);

/**
 * journal_sync:
 * (appender, or once it has stopped) Returns once everything written is on
 * disk: waits for the commits handed on, then syncs the rest.
 */
gboolean journal_sync(journal *j, GError **error);

/**
 * journal_sync_due_us: microseconds from @now_us (monotonic) until a pending
 * group commit is due (0: now), -1: none.
 */
gint64 journal_sync_due_us(const journal *j, gint64 now_us);

/* ---- for tests ------------------------------------------------------------ */

/** journal_segment_name: "journal-%016llx" for @first (free with g_free). */
char *journal_segment_name(guint64 first);
