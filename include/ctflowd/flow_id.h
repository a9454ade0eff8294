/*
 * flow_id.h - flowId values that no other record of this host ever had.
 *
 * The conntrack id is a hash of the entry's address and tuple: two live
 * flows can share it (seen within 21,500 flows) and memory reuse repeats it.
 * A collector that drops replayed records by flowId needs better: ctflowd
 * numbers the records it accepts from a 64-bit counter that survives
 * restarts (reserved in blocks in the state directory) and never starts
 * below the clock (seconds since the epoch << 28), so that losing the state
 * directory does not bring back old numbers either.
 */
#pragma once

#include <glib.h>
#include <stdint.h>

typedef struct flow_ids flow_ids;

/**
 * flow_ids_open:
 * Reads (or creates) the reservation file @path and reserves the first
 * block.  Fails if the file cannot be written: numbers that might repeat
 * after a restart are worse than not starting.
 */
flow_ids *flow_ids_open(const char *path, GError **error);

/**
 * flow_ids_next:
 * The next number.  Reserves a new block on disk when one is used up; if
 * that write fails, numbering goes on from the clock floor and the failure
 * is logged (a record is never held back for it).
 */
uint64_t flow_ids_next(flow_ids *ids);

/** flow_ids_free: frees @ids (NULL is fine); the unused rest of the block is skipped. */
void flow_ids_free(flow_ids *ids);
