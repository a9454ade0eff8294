/*
 * intake.c - the last step on the netlink thread: filter, then spool.
 *
 * A DESTROY ends a flow: it becomes the connection's final record.  With an
 * active timeout, a dump entry of a connection alive that long since its
 * last record becomes an interim record.  Both go through here, one thread,
 * so a connection's records are decided in order: a dump entry read before
 * its DESTROY was taken gives an interim record that the final record then
 * subtracts; one handled after it (the DESTROY is in the duplicate filter)
 * gives nothing.
 *
 * NAT event logging: a NEW event of a translated connection is journaled
 * as its session create (FLOW_EVENT_NEW), once: the connection state keeps
 * its NAT key (flow_nat_identity(), as NEW events have no start time), a
 * repeat finds it and is dropped, and its DESTROY removes it.  A DESTROY
 * that finds no key had its NEW lost (the kernel never resends one): it is
 * marked FLOW_LATE, and exporters send a late create before the delete.
 * Dump entries give late creates for sessions whose NEW was lost, and
 * refreshes of sessions alive nat_refresh since their last create.  Other
 * NEW events are counted only.
 */
#include "ctflowd/dedup.h"
#include "ctflowd/intake.h"

#define INTAKE_BATCH 1024
/* A dump entry younger than this gets no late create: its NEW event may
 * still wait in the event socket, behind the dump. */
#define NAT_LATE_MIN_AGE_NS (5 * G_GUINT64_CONSTANT(1000000000))

struct intake {
	spool *out;
	dedup *seen;
	flow_ids *ids;
	conn_state *state;
	guint64 active_timeout_ns;   /* 0: no interim records */
	gboolean nat_events;         /* NAT session creates are journaled */
	guint64 nat_refresh_ns;      /* 0: no refreshes */
	GHashTable *ended_nat;       /* NAT keys of recent DESTROYs, until the landing
				      * zone is recovered (NULL: none) */
	gboolean state_changed;
	struct intake_stats stats;
	struct flow_record batch[INTAKE_BATCH];
	/* interim records and NAT creates: a dump entry may give one of each */
	struct flow_record early[2 * INTAKE_BATCH];
};

intake *intake_new(spool *out, flow_ids *ids, conn_state *state, guint dedup_window,
		   GError **error)
{
	dedup *seen = dedup_new(dedup_window, error);

	if (!seen)
		return NULL;
	intake *in = g_new0(intake, 1);
	in->out = out;
	in->ids = ids;
	in->state = state;
	in->seen = seen;
	return in;
}

void intake_set_active_timeout(intake *in, guint64 timeout_ns)
{
	in->active_timeout_ns = timeout_ns;
}

void intake_set_nat_events(intake *in, gboolean on, guint64 refresh_ns)
{
	in->nat_events = on;
	in->nat_refresh_ns = on ? refresh_ns : 0;
}

void intake_recovered(intake *in)
{
	if (in->ended_nat)
		g_hash_table_destroy(in->ended_nat);
	in->ended_nat = NULL;
}

gboolean intake_take_state_changed(intake *in)
{
	gboolean changed = in->state_changed;

	in->state_changed = FALSE;
	return changed;
}

/*
 * The interim record for dump entry @r, if one is due: the connection has
 * been alive for the active timeout since its last record (or its start),
 * and its counters moved since.  @r's end_ns is when the entry was read
 * (0: now).  Entries without timestamps or counters never get one: their
 * identity and their deltas could not be told; their final record carries
 * everything.
 */
static gboolean make_interim(intake *in, const struct flow_record *r, struct flow_record *out)
{
	const guint want = FLOW_HAS_COUNTERS | FLOW_HAS_TIMESTAMPS;

	in->stats.walked++;
	if ((r->flags & want) != want || !r->start_ns)
		return FALSE;
	if (dedup_has(in->seen, r)) {
		in->stats.walked_ended++;
		return FALSE;
	}
	guint64 seen_at = r->end_ns ? r->end_ns : (guint64)g_get_real_time() * 1000;
	const struct conn_state_entry *e = conn_state_find(in->state, r);
	guint64 last = e ? e->last_ns : r->start_ns;
	if (seen_at < last || seen_at - last < in->active_timeout_ns)
		return FALSE;
	if (e && e->packets == r->packets && e->bytes == r->bytes &&
	    e->reply_packets == r->reply_packets && e->reply_bytes == r->reply_bytes)
		return FALSE;   /* nothing new since the last record */

	*out = *r;
	out->event = FLOW_EVENT_DUMP;
	out->end_reason = FLOW_END_ACTIVE_TIMEOUT;
	out->end_ns = seen_at;
	if (e) {
		out->period_start_ns = e->last_ns;
		out->base_packets = e->packets;
		out->base_bytes = e->bytes;
		out->base_reply_packets = e->reply_packets;
		out->base_reply_bytes = e->reply_bytes;
		out->flow_id = e->flow_id;
	} else {
		out->period_start_ns = 0;
		out->base_packets = out->base_bytes = 0;
		out->base_reply_packets = out->base_reply_bytes = 0;
		/* every record of a connection carries the same flowId */
		const struct conn_state_entry *n =
			in->nat_events ? conn_state_find_nat(in->state, r) : NULL;
		out->flow_id = n ? n->flow_id : flow_ids_next(in->ids);
	}
	conn_state_apply(in->state, out);
	in->state_changed = TRUE;
	in->stats.interim++;
	return TRUE;
}

static guint64 now_ns(void)
{
	return (guint64)g_get_real_time() * 1000;
}

/* @out becomes a NAT session create record of @r's connection, journaled
 * once its entry in the connection state says so. */
static void make_nat_create(intake *in, const struct flow_record *r, struct flow_record *out,
			    guint8 mark, guint64 flow_id)
{
	*out = *r;
	out->event = FLOW_EVENT_NEW;
	out->end_reason = 0;
	out->flags = (uint8_t)((r->flags & ~(FLOW_LATE | FLOW_REFRESH)) | mark);
	out->period_start_ns = 0;
	out->flow_id = flow_id;
	conn_state_apply(in->state, out);
	in->state_changed = TRUE;
}

/*
 * A NEW event: the create of a translated connection, unless its key is
 * there already (a NEW the landing zone had, sent again) or its DESTROY
 * was journaled just before a restart.  The time is when ctflowd read it:
 * a NEW carries no timestamp, and the kernel sends it as the connection
 * is confirmed.
 */
static gboolean nat_create(intake *in, const struct flow_record *r, struct flow_record *out)
{
	if (!in->nat_events || !flow_is_translated(r)) {
		in->stats.not_exported++;
		return FALSE;
	}
	if (conn_state_find_nat(in->state, r) ||
	    (in->ended_nat && g_hash_table_contains(in->ended_nat, &(guint64){ flow_nat_identity(r) }))) {
		in->stats.nat_repeats++;
		return FALSE;
	}
	struct flow_record copy = *r;
	copy.start_ns = copy.end_ns = now_ns();
	make_nat_create(in, &copy, out, 0, flow_ids_next(in->ids));
	in->stats.nat_creates++;
	return TRUE;
}

/*
 * A dump entry of a translated connection: a late create when its NEW was
 * lost (no key; the observation time its start, end_ns when it was found),
 * a refresh when its last create is nat_refresh old (its time the reading).
 */
static gboolean nat_from_dump(intake *in, const struct flow_record *r, struct flow_record *out)
{
	if (!in->nat_events || !flow_is_translated(r) || !(r->flags & FLOW_HAS_TIMESTAMPS) ||
	    !r->start_ns || dedup_has(in->seen, r))
		return FALSE;
	struct flow_record copy = *r;
	copy.end_ns = r->end_ns ? r->end_ns : now_ns();
	const struct conn_state_entry *n = conn_state_find_nat(in->state, r);
	if (n) {
		if (!in->nat_refresh_ns || copy.end_ns < n->last_ns ||
		    copy.end_ns - n->last_ns < in->nat_refresh_ns)
			return FALSE;
		make_nat_create(in, &copy, out, FLOW_REFRESH, n->flow_id);
		in->stats.nat_refreshes++;
		return TRUE;
	}
	if (copy.end_ns < r->start_ns || copy.end_ns - r->start_ns < NAT_LATE_MIN_AGE_NS)
		return FALSE;
	const struct conn_state_entry *e = conn_state_find(in->state, r);
	make_nat_create(in, &copy, out, FLOW_LATE, e ? e->flow_id : flow_ids_next(in->ids));
	in->stats.nat_late++;
	return TRUE;
}

/*
 * A final record of a connection that had interim records carries the rest:
 * what they reported becomes its base, and its flowId is theirs (or its NAT
 * create's).  A translated connection's NAT key goes; one that had none
 * gets its create late (FLOW_LATE), when NAT events are logged.
 */
static void finish_connection(intake *in, struct flow_record *r)
{
	const struct conn_state_entry *e = conn_state_find(in->state, r);

	/* with NAT logging off and the table empty, no key can be there */
	if ((in->nat_events || conn_state_size(in->state)) && flow_is_translated(r)) {
		const struct conn_state_entry *n = conn_state_find_nat(in->state, r);
		if (n) {
			if (!e)
				r->flow_id = n->flow_id;
			conn_state_remove_nat(in->state, r);
			in->state_changed = TRUE;
			/* the removal may have moved the interim entry */
			e = conn_state_find(in->state, r);
			if (!e)
				return;
		} else if (in->nat_events) {
			r->flags |= FLOW_LATE;
			in->stats.nat_late++;
		}
	}
	if (!e) {
		r->flow_id = flow_ids_next(in->ids);
		return;
	}
	/* the kernel's end time may lie before the last look at the entry */
	r->period_start_ns = MIN(e->last_ns, r->end_ns);
	r->base_packets = e->packets;
	r->base_bytes = e->bytes;
	r->base_reply_packets = e->reply_packets;
	r->base_reply_bytes = e->reply_bytes;
	r->flow_id = e->flow_id;
	conn_state_remove(in->state, r);
	in->state_changed = TRUE;
}

void intake_records(const struct flow_record *records, size_t n, void *user)
{
	intake *in = user;

	while (n) {
		size_t take = MIN(n, (size_t)INTAKE_BATCH);
		size_t destroys = 0;

		size_t early = 0;

		for (size_t i = 0; i < take; i++) {
			const struct flow_record *r = &records[i];
			gboolean used = FALSE;
			if (r->event == FLOW_EVENT_DESTROY) {
				in->batch[destroys++] = *r;
				continue;
			}
			if (r->event == FLOW_EVENT_NEW) {
				early += nat_create(in, r, &in->early[early]);
				continue;
			}
			if (r->event == FLOW_EVENT_DUMP) {
				/* the create first: an interim record takes its flowId */
				used = nat_from_dump(in, r, &in->early[early]);
				early += used;
				/* with an active timeout every entry counts as walked */
				if (in->active_timeout_ns) {
					early += make_interim(in, r, &in->early[early]);
					continue;
				}
			}
			if (!used)
				in->stats.not_exported++;
		}
		/* before the final records: a connection's DESTROY later in
		 * this batch subtracts what its interim record reported, and
		 * finds the key of its NAT create */
		spool_append(in->out, in->early, early);
		size_t kept = dedup_filter(in->seen, in->batch, destroys);
		in->stats.duplicates += destroys - kept;
		for (size_t i = 0; i < kept; i++) {
			struct flow_record *r = &in->batch[i];
			/* numbered once, here: a record sent again keeps its
			 * flowId (before the times below: the connection's
			 * identity includes its start) */
			finish_connection(in, r);
			/* Entries created before nf_conntrack_timestamp was on
			 * have no times; the record still counts, placed at the
			 * moment it ended as far as ctflowd can tell (exporters
			 * that can say "unknown" look at the flags). */
			if (!(r->flags & FLOW_HAS_TIMESTAMPS))
				r->start_ns = r->end_ns = (guint64)g_get_real_time() * 1000;
		}
		spool_append(in->out, in->batch, kept);
		in->stats.accepted += kept;
		records += take;
		n -= take;
	}
}

void intake_remember(const struct flow_record *r, void *user)
{
	intake *in = user;

	/* interim records end nothing: their connection's DESTROY is still to come */
	if (r->event != FLOW_EVENT_DESTROY)
		return;
	dedup_seen(in->seen, r);
	/* a NEW of it that the landing zone still holds must not create again */
	if (in->nat_events && flow_is_translated(r)) {
		if (!in->ended_nat)
			in->ended_nat = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
		guint64 *key = g_new(guint64, 1);
		*key = flow_nat_identity(r);
		g_hash_table_add(in->ended_nat, key);
	}
}

const struct intake_stats *intake_get_stats(const intake *in)
{
	return &in->stats;
}

void intake_free(intake *in)
{
	if (!in)
		return;
	dedup_free(in->seen);
	intake_recovered(in);
	g_free(in);
}
