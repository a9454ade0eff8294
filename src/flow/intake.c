/*
 * intake.c - the last step on the netlink thread: filter, then spool.
 *
 * Only DESTROY events end a flow, and only they carry counters and
 * timestamps; NEW events and dump entries describe flows still running and
 * are counted here until interim records use them.
 */
#include "ctflowd/dedup.h"
#include "ctflowd/intake.h"

#define INTAKE_BATCH 1024

struct intake {
	spool *out;
	dedup *seen;
	flow_ids *ids;
	struct intake_stats stats;
	struct flow_record batch[INTAKE_BATCH];
};

intake *intake_new(spool *out, flow_ids *ids, guint dedup_window, GError **error)
{
	dedup *seen = dedup_new(dedup_window, error);

	if (!seen)
		return NULL;
	intake *in = g_new0(intake, 1);
	in->out = out;
	in->ids = ids;
	in->seen = seen;
	return in;
}

void intake_records(const struct flow_record *records, size_t n, void *user)
{
	intake *in = user;

	while (n) {
		size_t take = MIN(n, (size_t)INTAKE_BATCH);
		size_t destroys = 0;

		for (size_t i = 0; i < take; i++) {
			if (records[i].event == FLOW_EVENT_DESTROY)
				in->batch[destroys++] = records[i];
			else
				in->stats.not_exported++;
		}
		size_t kept = dedup_filter(in->seen, in->batch, destroys);
		in->stats.duplicates += destroys - kept;
		for (size_t i = 0; i < kept; i++) {
			struct flow_record *r = &in->batch[i];
			/* Entries created before nf_conntrack_timestamp was on
			 * have no times; the record still counts, placed at the
			 * moment it ended as far as ctflowd can tell (exporters
			 * that can say "unknown" look at the flags). */
			if (!(r->flags & FLOW_HAS_TIMESTAMPS))
				r->start_ns = r->end_ns = (guint64)g_get_real_time() * 1000;
			/* numbered once, here: a record sent again keeps its flowId */
			r->flow_id = flow_ids_next(in->ids);
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
