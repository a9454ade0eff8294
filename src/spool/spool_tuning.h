/*
 * spool_tuning.h - spool_open() with sizes of the caller's choosing, so that
 * tests reach segment and cache boundaries with few records.  Private to
 * src/spool/ and its tests.
 */
#pragma once

#include <glib.h>

#include "ctflowd/spool.h"

struct spool_tuning {
	guint64 segment_bytes;   /* journal segment size; 0: 64 MiB */
	guint64 cache_bytes;     /* records kept in memory; 0: 64 MiB (at most max_bytes) */
};

/** spool_open_tuned: spool_open() with @tuning (NULL: the defaults). */
spool *spool_open_tuned(const char *dir, guint64 max_bytes, enum spool_sync sync,
			const struct spool_tuning *tuning, GError **error);
