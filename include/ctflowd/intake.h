/*
 * intake.h - what the daemon accepts from the kernel: drops repeated
 * DESTROYs, turns dump entries of long-lived connections into interim
 * records (active timeout) and subtracts those from the final record,
 * journals NAT session creates (NAT event logging), gives each connection
 * its flowId and appends the records to the spool.
 * Runs on the thread that drains netlink.
 */
#pragma once

#include <glib.h>
#include "ctflowd/conn_state.h"
#include "ctflowd/flow.h"
#include "ctflowd/flow_id.h"
#include "ctflowd/spool.h"

typedef struct intake intake;

struct intake_stats {
	guint64 accepted;     /* final records appended to the spool */
	guint64 duplicates;   /* repeated DESTROYs dropped */
	guint64 not_exported; /* NEW events giving no NAT create; dump entries giving none
			       * without an active timeout (with one: walked) */
	guint64 interim;      /* interim records appended */
	guint64 walked;       /* dump entries looked at for interim records */
	guint64 walked_ended; /* ... of connections whose DESTROY was already taken */
	guint64 nat_creates;  /* NAT session creates journaled from NEW events */
	guint64 nat_repeats;  /* NEW events of sessions whose create was journaled */
	guint64 nat_late;     /* late creates: DESTROYs marked FLOW_LATE, and from dumps */
	guint64 nat_refreshes; /* refresh creates from dumps (nat_refresh) */
};

/**
 * intake_new:
 * Appends to @out, numbering connections from @ids, keeping what interim
 * records reported in @state (all three borrowed), remembering
 * @dedup_window identities.  NULL with @error when the duplicate filter
 * cannot get its memory.
 */
intake *intake_new(spool *out, flow_ids *ids, conn_state *state, guint dedup_window,
		   GError **error);

/**
 * intake_set_active_timeout:
 * Dump entries (FLOW_EVENT_DUMP, their end_ns the time they were read, 0:
 * now) of connections alive @timeout_ns since their last record, with
 * traffic since, become interim records; 0 (the default): dump entries
 * are only counted.
 */
void intake_set_active_timeout(intake *in, guint64 timeout_ns);

/**
 * intake_set_nat_events:
 * With @on, NEW events of translated connections become NAT session create
 * records (FLOW_EVENT_NEW, start_ns = end_ns = when read), once per
 * connection; a DESTROY of a translated connection without one is marked
 * FLOW_LATE; dump entries of translated connections give late creates
 * (FLOW_LATE, start_ns the connection's start, end_ns the reading) and,
 * when @refresh_ns is not 0, refreshes (FLOW_REFRESH, end_ns the reading)
 * @refresh_ns after the last create.  Call before intake_remember().
 */
void intake_set_nat_events(intake *in, gboolean on, guint64 refresh_ns);

/**
 * intake_recovered:
 * The landing zone's events were taken: NAT keys of journaled DESTROYs
 * (from intake_remember()) need no longer stop a NEW that came again.
 */
void intake_recovered(intake *in);

/** intake_take_state_changed: whether the state changed since the last call. */
gboolean intake_take_state_changed(intake *in);

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
