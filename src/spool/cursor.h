/*
 * cursor.h - a reader's confirmed position in the state directory, so that
 * a destination resumes where it was after a restart.  Private to
 * src/spool/.
 *
 * DIR/cursor-NAME holds one 24-byte record, rewritten in place:
 *
 *   magic "CTFC" | version | position (records before it are delivered) | CRC-32C | 0
 *
 * A record that fails its checks is never trusted: the reader then starts
 * from the oldest record held, which sends too much rather than too little.
 */
#pragma once

#include <glib.h>
#include <stdint.h>

#include "ctflowd/spool.h"

#define CURSOR_MAGIC 0x43465443u   /* "CTFC" in a little-endian file */
#define CURSOR_VERSION 1u

struct cursor_record {
	uint32_t magic;
	uint32_t version;
	uint64_t position;
	uint32_t crc;        /* over the record with this field zero */
	uint32_t reserved;
};

_Static_assert(sizeof(struct cursor_record) == 24, "cursor record layout");

enum cursor_state {
	CURSOR_NEW,       /* no file before: created holding the initial position */
	CURSOR_SAVED,     /* a good record */
	CURSOR_DAMAGED,   /* a file that fails its checks */
};

typedef struct cursor cursor;

/**
 * cursor_open:
 * Opens the cursor of reader @name in the directory @dirfd (named @dir in
 * messages).  A new one is created holding @initial (synced, with the
 * directory entry, unless @sync is SPOOL_SYNC_NONE).  *@saved gets the
 * stored position of a CURSOR_SAVED cursor; *@problem says what is wrong
 * with a CURSOR_DAMAGED one.  NULL with @error if the file cannot be used.
 */
cursor *cursor_open(int dirfd, const char *dir, const char *name, guint64 initial,
		    enum spool_sync sync, enum cursor_state *state, guint64 *saved,
		    char **problem, GError **error);

/**
 * cursor_store:
 * Rewrites the record with @position: one pwrite of 24 bytes, and an
 * fdatasync unless @sync is SPOOL_SYNC_NONE.
 */
gboolean cursor_store(cursor *c, guint64 position, enum spool_sync sync, GError **error);

/** cursor_path: the file, for messages. */
const char *cursor_path(const cursor *c);

/** cursor_file_name: "cursor-" and @name, with bytes a file name should not hold as %XX. */
char *cursor_file_name(const char *name);

/** cursor_free: closes @c (NULL is fine). */
void cursor_free(cursor *c);
