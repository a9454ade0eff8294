/*
 * intake.c - the last step on the netlink thread: filter, then spool.
 *
 * Only DESTROY events end a flow, and only they carry counters and
 * timestamps; NEW events and dump entries describe flows still running and
 * are counted here until interim records use them.
 */
#include "ctflowd/dedup.h"
#include "ctflowd/intake.h"

#define INTAKE_BATCH 256

struct intake {
	spool *out;
	dedup *seen;
	struct intake_stats stats;
	struct flow_record batch[INTAKE_BATCH];
};

intake *intake_new(spool *out, guint dedup_window)
{
	intake *in = g_new0(intake, 1);

	in->out = out;
	in->seen = dedup_new(dedup_window);
	return in;
}

void intake_records(const struct flow_record *records, size_t n, void *user)
{
	intake *in = user;
	size_t kept = 0;

	for (size_t i = 0; i < n; i++) {
		const struct flow_record *r = &records[i];
		if (r->event != FLOW_EVENT_DESTROY) {
			in->stats.not_exported++;
			continue;
		}
		if (dedup_seen(in->seen, r)) {
			in->stats.duplicates++;
			continue;
		}
		struct flow_record *kept_rec = &in->batch[kept++];
		*kept_rec = *r;
		/* Entries created before nf_conntrack_timestamp was on have no
		 * times; the record still counts, placed at the moment it
		 * ended as far as ctflowd can tell (exporters that can say
		 * "unknown" look at the flags). */
		if (!(r->flags & FLOW_HAS_TIMESTAMPS))
			kept_rec->start_ns = kept_rec->end_ns = (guint64)g_get_real_time() * 1000;
		if (kept == INTAKE_BATCH) {
			spool_append(in->out, in->batch, kept);
			in->stats.accepted += kept;
			kept = 0;
		}
	}
	spool_append(in->out, in->batch, kept);
	in->stats.accepted += kept;
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
