/*
 * dedup.h - drops repeated DESTROY events in bounded memory.
 *
 * Reliable delivery is at-least-once: the kernel resends a DESTROY until it
 * is queued on every listening socket, so a listener can see the same event
 * twice, out of order.  The identity of a conntrack entry is (id, original
 * tuple, zone, start timestamp): the id alone is a hash of the entry's
 * address and is reused.  The filter remembers the last `window` identities
 * as 64-bit fingerprints (FIFO eviction).
 */
#pragma once

#include <glib.h>
#include "ctflowd/flow.h"

typedef struct dedup dedup;

/**
 * dedup_new:
 * A filter remembering the last @window identities (0 counts as 1).  Its
 * memory is mapped and touched now, so that the first burst takes no page
 * faults; NULL with @error when it cannot be mapped.
 */
dedup *dedup_new(guint window, GError **error);

/**
 * dedup_seen:
 * TRUE if @record's identity is among those remembered (a repeat: drop it);
 * otherwise remembers it, evicting the oldest when full, and returns FALSE.
 */
gboolean dedup_seen(dedup *filter, const struct flow_record *record);

/** dedup_has: TRUE if @record's identity is among those remembered; remembers nothing. */
gboolean dedup_has(const dedup *filter, const struct flow_record *record);

/**
 * dedup_filter:
 * dedup_seen() over @n records at once, keeping the first occurrence of
 * each identity: compacts the kept ones to the front of @records, in order,
 * and returns how many there are.
 */
size_t dedup_filter(dedup *filter, struct flow_record *records, size_t n);

/** dedup_size: identities currently remembered. */
guint dedup_size(const dedup *filter);

/** dedup_free: frees @filter (NULL is fine). */
void dedup_free(dedup *filter);
