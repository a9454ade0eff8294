/*
 * journal.h - the spool's records on disk.  Private to src/spool/ and its
 * tests.
 *
 * Segment files DIR/journal-%016llx (hex: the first position they hold):
 *
 *   segment header  32 bytes  magic "CTFJ", version, record size, CRC, first position
 *   frame           24 bytes  magic "CTFR", payload length, position, CRC
 *                  160 bytes  struct flow_record, host byte order
 *   frame ...
 *
 * Every frame has the same size, so position P of a segment is at
 * JOURNAL_HEADER_SIZE + (P - first) * JOURNAL_FRAME_SIZE.  Each CRC is a
 * CRC-32C over its header with the CRC field zero, plus the payload for a
 * frame.  The journal is local to the host: byte order and record layout
 * are fixed by the version (and flow.h pins the record size).
 *
 * Locking: the journal has no lock of its own.  The segment list and
 * segment counts are guarded by the spool's mutex; file I/O runs without it
 * on segments the caller holds a reference to.  Only the appending thread
 * writes frames or creates segments.
 */
#pragma once

#include <glib.h>
#include <stdint.h>

#include "ctflowd/spool.h"

#define JOURNAL_SEGMENT_MAGIC 0x4a465443u   /* "CTFJ" in a little-endian file */
#define JOURNAL_FRAME_MAGIC 0x52465443u     /* "CTFR" */
#define JOURNAL_VERSION 1u
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

/* One segment file.  first and sealed never change once it is listed;
 * count grows under the spool lock as the appender publishes frames. */
struct segment {
	guint64 first;
	guint64 count;          /* good frames */
	gboolean sealed;        /* no appends: full, or a write to it failed */
	int fd;
	char *name;             /* journal-%016llx */
	gint refs;              /* atomic */
};

typedef struct journal journal;

/**
 * journal_open:
 * Locks @dir (one process per state directory), recovers every segment in
 * it and makes sure the last one can take appends.  What fails a check is
 * moved to @dir/corrupt/ and logged; a gap in positions is logged.  Fails
 * only if the directory cannot be used at all.
 */
journal *journal_open(const char *dir, guint64 max_bytes, guint64 segment_bytes,
		      enum spool_sync sync, GError **error);

/** journal_free: closes everything (NULL is fine); segments still referenced stay open. */
void journal_free(journal *j);

/** journal_dir: the directory the journal lives in. */
const char *journal_dir(const journal *j);

/** journal_dir_fd: an open descriptor of that directory (for openat, fsync). */
int journal_dir_fd(const journal *j);

/** journal_end: one past the newest good record found by journal_open(). */
guint64 journal_end(const journal *j);

/** journal_segment_bytes: the size a full segment has. */
guint64 journal_segment_bytes(const journal *j);

/* ---- the segment list (under the spool lock) ---------------------------- */

/** journal_segments: segments oldest first; the last one takes appends. */
GPtrArray *journal_segments(journal *j);

/** journal_segment_at: the segment holding @pos, or NULL. */
struct segment *journal_segment_at(journal *j, guint64 pos);

/**
 * journal_held_between:
 * How many positions in [@from, @to) segments hold.
 */
guint64 journal_held_between(journal *j, guint64 from, guint64 to);

/**
 * journal_next_held:
 * The lowest position >= @pos a segment holds, or G_MAXUINT64.
 */
guint64 journal_next_held(journal *j, guint64 pos);

/** journal_max_segments: how many segments the size bound allows (>= 2). */
guint journal_max_segments(const journal *j);

/**
 * journal_tail_room:
 * Frames the last segment can still take (0 when sealed, full or missing).
 * Appending thread only.
 */
guint64 journal_tail_room(journal *j);

/* ---- file work (without the spool lock) --------------------------------- */

void segment_ref(struct segment *seg);
void segment_unref(struct segment *seg);

/**
 * journal_create_segment:
 * Creates the file for a segment starting at @first and writes its header
 * (synced unless SPOOL_SYNC_NONE).  Not listed yet: see journal_push().
 */
struct segment *journal_create_segment(journal *j, guint64 first, GError **error);

/** journal_push: (lock) lists @seg as the new last segment, sealing the previous one. */
void journal_push(journal *j, struct segment *seg);

/* SPOOL_SYNC_BATCH: records are synced in groups, at most this long after
 * they were written (group commit; a power loss can take at most this much). */
#define JOURNAL_GROUP_COMMIT_US (100 * 1000)

/**
 * journal_commit:
 * (appender) SPOOL_SYNC_BATCH: hands what was written since the last commit
 * to the journal's sync thread and returns at once; @now_us (monotonic)
 * starts the next group-commit interval.
 */
void journal_commit(journal *j, gint64 now_us);

/**
 * journal_sync:
 * (appender) Returns once everything written is on disk: waits for the
 * commits handed on, then syncs the rest.
 */
gboolean journal_sync(journal *j, GError **error);

/**
 * journal_sync_due_us: microseconds from @now_us (monotonic) until a pending
 * group commit is due (0: now), -1: none.
 */
gint64 journal_sync_due_us(const journal *j, gint64 now_us);

/** journal_publish: (lock) @n records journal_write() wrote are now held. */
void journal_publish(journal *j, guint64 n);

/**
 * journal_remove:
 * (lock) Takes the segment at @index off the list and returns it; the
 * caller passes it to journal_discard() once the lock is released.
 */
struct segment *journal_remove(journal *j, guint index);

/** journal_discard: deletes the file of a removed segment and drops the list's reference. */
void journal_discard(journal *j, struct segment *seg);

/**
 * journal_write:
 * Appends @n records at positions @pos.. to the last segment, which must
 * have room: one write() for all of them, followed by a sync with
 * SPOOL_SYNC_RECORD (SPOOL_SYNC_BATCH leaves it to journal_commit()).
 * The caller publishes them by adding @n to the segment's count under the
 * lock.  On failure the file is cut back to what it held before and the
 * segment is sealed, so a later append never follows a torn frame.
 */
gboolean journal_write(journal *j, guint64 pos, const struct flow_record *records, size_t n,
		       GError **error);

/**
 * journal_read:
 * Reads up to @n records at @pos.. from @seg (referenced by the caller),
 * checking each frame.  Returns how many good records lead the range;
 * fewer than @n means the next frame is bad (@error says why) or the read
 * failed.
 */
size_t journal_read(journal *j, struct segment *seg, guint64 pos, struct flow_record *out,
		    size_t n, GError **error);

/* ---- for tests ------------------------------------------------------------ */

struct spool_tuning {
	guint64 segment_bytes;   /* journal segment size; 0: 64 MiB */
	guint64 cache_bytes;     /* records kept in memory; 0: 64 MiB (at most max_bytes) */
};

/**
 * spool_open_tuned:
 * spool_open() with segment and cache sizes of the caller's choosing, so
 * that tests reach segment and cache boundaries with few records.
 */
spool *spool_open_tuned(const char *dir, guint64 max_bytes, enum spool_sync sync,
			const struct spool_tuning *tuning, GError **error);

/** journal_segment_name: "journal-%016llx" for @first (free with g_free). */
char *journal_segment_name(guint64 first);
