/*
 * intake.h - what the daemon accepts from the kernel: drops repeated
 * DESTROYs, keeps NEW and dump entries out of the export path, gives each
 * record its flowId and appends it to the spool.  Runs on the thread that drains netlink.
 */
#pragma once

#include <glib.h>
#include "ctflowd/flow.h"
#include "ctflowd/flow_id.h"
#include "ctflowd/spool.h"

typedef struct intake intake;

struct intake_stats {
	guint64 accepted;     /* records appended to the spool */
	guint64 duplicates;   /* repeated DESTROYs dropped */
	guint64 not_exported; /* NEW/dump entries (no flow ended) */
};

/**
 * intake_new:
 * Appends to @out, numbering records from @ids (both borrowed), remembering
 * @dedup_window identities.  NULL with @error when the duplicate filter
 * cannot get its memory.
 */
intake *intake_new(spool *out, flow_ids *ids, guint dedup_window, GError **error);

/** intake_records: a ct_source_records_fn; @user is the intake. */
void intake_records(const struct flow_record *records, size_t n, void *user);

/**
 * intake_remember:
 * Adds @record (one already accepted, e.g. from the journal at start) to
 * the duplicate filter without accepting it again; @user is the intake.
 */
void intake_remember(const struct flow_record *record, void *user);

/** intake_get_stats: the counters (same thread). */
const struct intake_stats *intake_get_stats(const intake *in);

/** intake_free: frees @in (NULL is fine). */
void intake_free(intake *in);
