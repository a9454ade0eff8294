/*
 * intake.c - the last step on the netlink thread: filter, then spool.
 *
 * A DESTROY ends a flow: it becomes the connection's final record.  With an
 * active timeout, a dump entry of a connection alive that long since its
 * last record becomes an interim record.  Both go through here, one thread,
 * so a connection's records are decided in order: a dump entry read before
 * its DESTROY was taken gives an interim record that the final record then
 * subtracts; one handled after it (the DESTROY is in the duplicate filter)
 * gives nothing.  NEW events are counted only.
 */
#include "ctflowd/dedup.h"
#include "ctflowd/intake.h"

#define INTAKE_BATCH 1024

struct intake {
	spool *out;
	dedup *seen;
	flow_ids *ids;
	conn_state *state;
	guint64 active_timeout_ns;   /* 0: no interim records */
	gboolean state_changed;
	struct intake_stats stats;
	struct flow_record batch[INTAKE_BATCH];
	struct flow_record interim[INTAKE_BATCH];
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
		out->flow_id = flow_ids_next(in->ids);
	}
	conn_state_apply(in->state, out);
	in->state_changed = TRUE;
	in->stats.interim++;
	return TRUE;
}

/* A final record of a connection that had interim records carries the rest:
 * what they reported becomes its base, and its flowId is theirs. */
static void finish_connection(intake *in, struct flow_record *r)
{
	const struct conn_state_entry *e = conn_state_find(in->state, r);

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

		size_t interim = 0;

		for (size_t i = 0; i < take; i++) {
			if (records[i].event == FLOW_EVENT_DESTROY)
				in->batch[destroys++] = records[i];
			else if (records[i].event == FLOW_EVENT_DUMP && in->active_timeout_ns)
				interim += make_interim(in, &records[i], &in->interim[interim]);
			else
				in->stats.not_exported++;
		}
		/* before the final records: a connection's DESTROY later in
		 * this batch subtracts what its interim record reported */
		spool_append(in->out, in->interim, interim);
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
	if (r->event == FLOW_EVENT_DESTROY)
		dedup_seen(in->seen, r);
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
	g_free(in);
}
