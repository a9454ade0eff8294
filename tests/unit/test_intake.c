/*
 * test_intake.c - what the daemon accepts: duplicate filter, flowId and
 * spool append, as the netlink thread runs them.
 *
 * The delivery guarantee rests here: every DESTROY that reaches intake is
 * journaled exactly once, repeats (the kernel's resends, the landing zone's
 * recovery after a kill) are dropped, each accepted record keeps the flowId
 * it was given, and a batch that goes wrong takes nothing accepted before
 * it.  The records are read back from the spool, the way the destinations
 * see them.
 */
#include <glib.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctflowd/flow_id.h"
#include "ctflowd/intake.h"
#include "ctflowd/spool.h"
#include "test_files.h"
#include "src/spool/journal.h"

#define WINDOW 4096u
#define START_NS 1700000000000000000ull

/* ---- records ------------------------------------------------------------------ */

/* The DESTROY of flow @k: its identity (id, tuple, start) and its counters
 * derive from @k, so a record read back says which flow it is. */
static struct flow_record destroy_of(guint32 k)
{
	struct flow_record r = {
		.start_ns = START_NS + k,
		.end_ns = START_NS + k + 30000000000ull,
		.packets = 2,
		.bytes = 1000ull + k,
		.orig = {.sport = (uint16_t)(1024 + k % 60000), .dport = 53},
		.ct_id = 0x10000u + k,
		.family = AF_INET,
		.proto = 17,
		.flags = FLOW_HAS_COUNTERS | FLOW_HAS_TIMESTAMPS | FLOW_HAS_ID,
		.event = FLOW_EVENT_DESTROY,
	};

	r.orig.src[0] = 10;
	r.orig.src[3] = (uint8_t)(k >> 16);
	r.orig.dst[0] = 10;
	r.orig.dst[3] = 1;
	r.flow_id = r.ct_id;   /* as the parser leaves it; intake renumbers */
	return r;
}

static guint32 flow_of(const struct flow_record *r)
{
	g_assert_cmpuint(r->ct_id, >=, 0x10000u);
	guint32 k = r->ct_id - 0x10000u;
	g_assert_cmpuint(r->bytes, ==, 1000ull + k);
	g_assert_cmpuint(r->start_ns, ==, START_NS + k);
	return k;
}

/* ---- the pipeline's tail: flowIds, intake, a spool ------------------------------- */

struct pipeline {
	char *dir;
	spool *spool;
	flow_ids *ids;
	conn_state *state;
	intake *in;
	guint reader;
};

/* With @nat, NAT events are logged (refreshes @refresh_ns after a create). */
static void pipeline_open_nat(struct pipeline *p, const char *dir, gboolean durable, gboolean nat,
			      guint64 refresh_ns)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *id_path = path_in(dir, "flow-id");
	g_autofree char *spool_dir = path_in(dir, "spool");

	p->dir = g_strdup(dir);
	p->spool = durable ? spool_open(spool_dir, 1ull << 30, SPOOL_SYNC_NONE, &error) :
			     spool_new(64ull << 20);
	g_assert_no_error(error);
	g_assert_nonnull(p->spool);
	p->ids = flow_ids_open(id_path, &error);
	g_assert_no_error(error);
	p->state = conn_state_new();
	p->in = intake_new(p->spool, p->ids, p->state, WINDOW, &error);
	g_assert_no_error(error);
	g_assert_nonnull(p->in);
	intake_set_nat_events(p->in, nat, refresh_ns);
	/* what the worker does at start: the state is the journal's fold ... */
	struct flow_record buf[256];
	guint64 pos = 0;
	size_t n;
	guint folder = spool_add_reader_named(p->spool, "fold");
	while ((n = spool_read(p->spool, folder, &pos, buf, G_N_ELEMENTS(buf), 0)))
		for (size_t i = 0; i < n; i++)
			conn_state_apply(p->state, &buf[i]);
	/* ... and the filter learns what was taken */
	spool_recent(p->spool, WINDOW, intake_remember, p->in);
	p->reader = spool_add_reader_named(p->spool, "collector");
}

static void pipeline_open(struct pipeline *p, const char *dir, gboolean durable)
{
	pipeline_open_nat(p, dir, durable, FALSE, 0);
}

static void pipeline_close(struct pipeline *p)
{
	intake_free(p->in);
	conn_state_free(p->state);
	flow_ids_free(p->ids);
	spool_free(p->spool);
	g_free(p->dir);
}

/* Everything the spool holds from position @from, in order. */
static GArray *spooled(struct pipeline *p, guint64 from)
{
	GArray *all = g_array_new(FALSE, FALSE, sizeof(struct flow_record));
	struct flow_record out[256];
	guint64 pos = from;
	size_t n;

	while ((n = spool_read(p->spool, p->reader, &pos, out, G_N_ELEMENTS(out), 0)))
		g_array_append_vals(all, out, (guint)n);
	g_assert_cmpuint(pos, ==, spool_end(p->spool));
	return all;
}

/* Asserts @got holds flows @want[0..@n) in that order, with distinct
 * flowIds that grow with the position (numbered once, in order). */
static void assert_flows(GArray *got, const guint32 *want, size_t n)
{
	g_assert_cmpuint(got->len, ==, n);
	for (guint i = 0; i < got->len; i++) {
		const struct flow_record *r = &g_array_index(got, struct flow_record, i);
		g_assert_cmpuint(flow_of(r), ==, want[i]);
		g_assert_cmpint(r->event, ==, FLOW_EVENT_DESTROY);
		if (i)
			g_assert_cmpuint(r->flow_id, >, g_array_index(got, struct flow_record,
								      i - 1).flow_id);
	}
}

/* ---- tests ---------------------------------------------------------------------- */

/* DESTROYs are journaled once each, in arrival order; repeats in a batch
 * and across batches are dropped; NEW and dump entries are counted, not
 * exported, and do not make a later DESTROY of the same flow a repeat. */
static void test_accepts_each_once(void)
{
	g_autofree char *dir = make_dir();
	struct pipeline p;

	pipeline_open(&p, dir, FALSE);
	struct flow_record batch[8] = {
		destroy_of(1), destroy_of(2), destroy_of(5), destroy_of(1),
		destroy_of(3), destroy_of(5), destroy_of(2), destroy_of(6),
	};
	batch[2].event = FLOW_EVENT_NEW;    /* flow 5 starts */
	batch[5].event = FLOW_EVENT_DUMP;   /* still running in a resync dump */
	batch[7].event = FLOW_EVENT_UPDATE;
	intake_records(batch, G_N_ELEMENTS(batch), p.in);
	const struct intake_stats *st = intake_get_stats(p.in);
	g_assert_cmpuint(st->accepted, ==, 3);
	g_assert_cmpuint(st->duplicates, ==, 2);
	g_assert_cmpuint(st->not_exported, ==, 3);

	struct flow_record more[4] = {destroy_of(3), destroy_of(5), destroy_of(4), destroy_of(5)};
	intake_records(more, G_N_ELEMENTS(more), p.in);
	intake_records(more, 0, p.in);
	g_assert_cmpuint(st->accepted, ==, 5);
	g_assert_cmpuint(st->duplicates, ==, 4);
	g_assert_cmpuint(spool_end(p.spool), ==, 5);

	g_autoptr(GArray) got = spooled(&p, 0);
	const guint32 want[] = {1, 2, 3, 5, 4};
	assert_flows(got, want, G_N_ELEMENTS(want));
	/* the caller's records are left as they were */
	g_assert_cmpuint(batch[0].flow_id, ==, destroy_of(1).flow_id);
	pipeline_close(&p);
	remove_tree(dir);
}

/* A call larger than intake's own batch, with repeats across its inner
 * batch boundaries: still each flow once, in order. */
static void test_large_call(void)
{
	g_autofree char *dir = make_dir();
	struct pipeline p;
	const guint n = 3500;
	g_autofree struct flow_record *recs = g_new(struct flow_record, n);
	g_autofree guint32 *want = g_new(guint32, n);
	guint unique = 0;

	pipeline_open(&p, dir, FALSE);
	/* flows 0..2499, then 1000 repeats of flows 1000..1999 */
	for (guint i = 0; i < n; i++) {
		guint32 k = i < 2500 ? i : i - 1500;
		recs[i] = destroy_of(k);
		if (i < 2500)
			want[unique++] = k;
	}
	intake_records(recs, n, p.in);
	g_assert_cmpuint(intake_get_stats(p.in)->accepted, ==, 2500);
	g_assert_cmpuint(intake_get_stats(p.in)->duplicates, ==, 1000);
	g_autoptr(GArray) got = spooled(&p, 0);
	assert_flows(got, want, unique);
	pipeline_close(&p);
	remove_tree(dir);
}

/* An entry created before nf_conntrack_timestamp was on has no times: it
 * is still accepted, placed at the moment intake saw it. */
static void test_without_timestamps(void)
{
	g_autofree char *dir = make_dir();
	struct pipeline p;
	struct flow_record r = destroy_of(7);

	pipeline_open(&p, dir, FALSE);
	r.flags &= (uint8_t)~FLOW_HAS_TIMESTAMPS;
	r.start_ns = r.end_ns = 0;
	guint64 before = (guint64)g_get_real_time() * 1000;
	intake_records(&r, 1, p.in);
	guint64 after = (guint64)g_get_real_time() * 1000;

	struct flow_record out;
	guint64 pos = 0;
	g_assert_cmpuint(spool_read(p.spool, p.reader, &pos, &out, 1, 0), ==, 1);
	g_assert_cmpuint(out.ct_id, ==, r.ct_id);
	g_assert_cmpuint(out.start_ns, >=, before);
	g_assert_cmpuint(out.start_ns, <=, after);
	g_assert_cmpuint(out.end_ns, ==, out.start_ns);
	g_assert_false(out.flags & FLOW_HAS_TIMESTAMPS);
	pipeline_close(&p);
	remove_tree(dir);
}

/*
 * A worker killed in the middle of a batch: the part it had appended is in
 * the journal; the next worker gets the whole batch again (landing zone or
 * kernel resend) and journals only the rest.  Every flow ends up in the
 * journal once, and what was journaled keeps its flowId.
 */
static void test_killed_mid_batch(void)
{
	g_autofree char *dir = make_dir();
	const guint n = 3000, first_part = 1024;
	g_autofree struct flow_record *recs = g_new(struct flow_record, n);
	g_autofree guint32 *want = g_new(guint32, n);

	for (guint i = 0; i < n; i++) {
		recs[i] = destroy_of(i);
		want[i] = i;
	}
	pid_t child = fork();
	g_assert_cmpint(child, >=, 0);
	if (child == 0) {
		struct pipeline p;
		pipeline_open(&p, dir, TRUE);
		intake_records(recs, first_part, p.in);
		raise(SIGKILL);
		_exit(1);
	}
	int status;
	g_assert_cmpint(waitpid(child, &status, 0), ==, child);
	g_assert_true(WIFSIGNALED(status));

	struct pipeline p;
	pipeline_open(&p, dir, TRUE);
	g_assert_cmpuint(spool_end(p.spool), ==, first_part);
	g_autoptr(GArray) before = spooled(&p, 0);
	assert_flows(before, want, first_part);

	intake_records(recs, n, p.in);
	g_assert_cmpuint(intake_get_stats(p.in)->duplicates, ==, first_part);
	g_assert_cmpuint(intake_get_stats(p.in)->accepted, ==, n - first_part);
	g_autoptr(GArray) all = spooled(&p, 0);
	assert_flows(all, want, n);
	for (guint i = 0; i < first_part; i++)
		g_assert_cmpuint(g_array_index(all, struct flow_record, i).flow_id, ==,
				 g_array_index(before, struct flow_record, i).flow_id);
	pipeline_close(&p);

	/* and once more: a third start accepts none of them */
	pipeline_open(&p, dir, TRUE);
	intake_records(recs, n, p.in);
	g_assert_cmpuint(intake_get_stats(p.in)->accepted, ==, 0);
	g_assert_cmpuint(spool_end(p.spool), ==, n);
	pipeline_close(&p);
	remove_tree(dir);
}

/*
 * A batch the journal refuses (a file size limit stands in for a full
 * disk): that batch is kept in memory and still delivered, and the batch
 * accepted before it stays whole in the journal, where the next start
 * finds it.
 */
static void test_failed_batch_keeps_accepted(void)
{
	g_autofree char *dir = make_dir();
	const guint accepted = 100, refused = 50;
	/* the header, the first batch's frames, and less than a frame more */
	const rlim_t limit = (rlim_t)(JOURNAL_HEADER_SIZE + accepted * JOURNAL_FRAME_SIZE + 100);
	guint32 want[150];

	for (guint i = 0; i < G_N_ELEMENTS(want); i++)
		want[i] = i;
	pid_t child = fork();
	g_assert_cmpint(child, >=, 0);
	if (child == 0) {
		struct rlimit rl = {limit, limit};
		struct flow_record recs[150];
		struct pipeline p;
		signal(SIGXFSZ, SIG_IGN);
		if (setrlimit(RLIMIT_FSIZE, &rl) < 0)
			_exit(10);
		for (guint i = 0; i < G_N_ELEMENTS(recs); i++)
			recs[i] = destroy_of(i);
		pipeline_open(&p, dir, TRUE);
		intake_records(recs, accepted, p.in);
		g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING,
				      "*cannot write*journal-0000000000000000*File too large;"
				      " records are kept in memory only*");
		intake_records(recs + accepted, refused, p.in);
		g_test_assert_expected_messages();
		if (intake_get_stats(p.in)->accepted != accepted + refused)
			_exit(11);
		g_autoptr(GArray) got = spooled(&p, 0);
		assert_flows(got, want, accepted + refused);
		raise(SIGKILL);
		_exit(12);
	}
	int status;
	g_assert_cmpint(waitpid(child, &status, 0), ==, child);
	g_assert_true(WIFSIGNALED(status));
	g_assert_cmpint(WTERMSIG(status), ==, SIGKILL);

	struct pipeline p;
	pipeline_open(&p, dir, TRUE);
	g_assert_cmpuint(spool_end(p.spool), ==, accepted);
	g_autoptr(GArray) got = spooled(&p, 0);
	assert_flows(got, want, accepted);
	pipeline_close(&p);
	remove_tree(dir);
}

/* ---- interim records ------------------------------------------------------------ */

#define SECOND_NS 1000000000ull
#define TIMEOUT_NS (10 * SECOND_NS)

/* Flow @k as a dump reads it @after_ns after its start, with these counters. */
static struct flow_record dumped(guint32 k, guint64 after_ns, guint64 packets, guint64 bytes,
				 guint64 reply_packets, guint64 reply_bytes)
{
	struct flow_record r = destroy_of(k);

	r.event = FLOW_EVENT_DUMP;
	r.end_ns = r.start_ns + after_ns;
	r.packets = packets;
	r.bytes = bytes;
	r.reply_packets = reply_packets;
	r.reply_bytes = reply_bytes;
	return r;
}

static void take(struct pipeline *p, struct flow_record r)
{
	intake_records(&r, 1, p->in);
}

/*
 * A connection looked at by three walks and then ended: an interim record
 * when the timeout has passed since the start and again since the last
 * record, none when it is not due or nothing moved, and a final record
 * with the rest.  The deltas of its records add up to the final counters
 * per direction, every record has the same flowId, and each interim
 * record's period starts where the one before ended.
 */
static void test_interim_deltas(void)
{
	g_autofree char *dir = make_dir();
	struct pipeline p;

	pipeline_open(&p, dir, FALSE);
	intake_set_active_timeout(p.in, TIMEOUT_NS);
	take(&p, dumped(7, 5 * SECOND_NS, 10, 1000, 5, 500));     /* not due */
	take(&p, dumped(7, 11 * SECOND_NS, 20, 2000, 8, 800));    /* interim 1 */
	take(&p, dumped(7, 15 * SECOND_NS, 30, 3000, 9, 900));    /* 4 s after it: not due */
	take(&p, dumped(7, 22 * SECOND_NS, 45, 4500, 12, 1200));  /* interim 2 */
	take(&p, dumped(7, 33 * SECOND_NS, 45, 4500, 12, 1200));  /* nothing new: none */
	struct flow_record end = destroy_of(7);
	end.end_ns = end.start_ns + 40 * SECOND_NS;
	end.packets = 50;
	end.bytes = 5000;
	end.reply_packets = 13;
	end.reply_bytes = 1300;
	take(&p, end);
	take(&p, dumped(7, 39 * SECOND_NS, 49, 4900, 13, 1300));  /* read before the end, taken after */
	g_assert_true(intake_take_state_changed(p.in));
	g_assert_false(intake_take_state_changed(p.in));

	g_autoptr(GArray) got = spooled(&p, 0);
	g_assert_cmpuint(got->len, ==, 3);
	struct flow_counts sum = {0};
	guint64 period = 0;
	for (guint i = 0; i < got->len; i++) {
		const struct flow_record *r = &g_array_index(got, struct flow_record, i);
		struct flow_counts c = flow_delta_counts(r);
		sum.packets += c.packets;
		sum.bytes += c.bytes;
		sum.reply_packets += c.reply_packets;
		sum.reply_bytes += c.reply_bytes;
		g_assert_cmpuint(r->flow_id, ==, g_array_index(got, struct flow_record, 0).flow_id);
		g_assert_cmpuint(flow_period_start_ns(r), ==, i ? period : r->start_ns);
		period = r->end_ns;
		g_assert_cmpint(flow_is_interim(r), ==, i < 2);
	}
	const struct flow_record *r0 = &g_array_index(got, struct flow_record, 0);
	g_assert_cmpuint(r0->end_ns, ==, r0->start_ns + 11 * SECOND_NS);
	g_assert_cmpuint(flow_delta_counts(r0).bytes, ==, 2000);
	g_assert_cmpuint(flow_delta_counts(&g_array_index(got, struct flow_record, 1)).bytes, ==, 2500);
	g_assert_cmpuint(sum.packets, ==, 50);
	g_assert_cmpuint(sum.bytes, ==, 5000);
	g_assert_cmpuint(sum.reply_packets, ==, 13);
	g_assert_cmpuint(sum.reply_bytes, ==, 1300);
	/* the totals stay the kernel's */
	g_assert_cmpuint(g_array_index(got, struct flow_record, 2).bytes, ==, 5000);
	g_assert_cmpuint(conn_state_size(p.state), ==, 0);
	const struct intake_stats *st = intake_get_stats(p.in);
	g_assert_cmpuint(st->interim, ==, 2);
	g_assert_cmpuint(st->walked, ==, 6);
	g_assert_cmpuint(st->walked_ended, ==, 1);
	g_assert_cmpuint(st->accepted, ==, 1);
	pipeline_close(&p);
	remove_tree(dir);
}

/* At start the duplicate filter learns the final records the journal holds,
 * not the interim ones: their connections' DESTROYs are still to come. */
static void test_interim_not_remembered(void)
{
	g_autofree char *dir = make_dir();
	struct pipeline p;

	pipeline_open(&p, dir, TRUE);
	intake_set_active_timeout(p.in, TIMEOUT_NS);
	take(&p, dumped(3, 11 * SECOND_NS, 20, 2000, 8, 800));
	take(&p, destroy_of(4));
	g_assert_cmpuint(spool_end(p.spool), ==, 2);
	pipeline_close(&p);

	pipeline_open(&p, dir, TRUE);   /* a restart: spool_recent() -> intake_remember() */
	take(&p, destroy_of(4));        /* a repeat */
	take(&p, destroy_of(3));        /* the end of the connection with the interim record */
	const struct intake_stats *st = intake_get_stats(p.in);
	g_assert_cmpuint(st->duplicates, ==, 1);
	g_assert_cmpuint(st->accepted, ==, 1);
	g_assert_cmpuint(spool_end(p.spool), ==, 3);
	pipeline_close(&p);
	remove_tree(dir);
}

/* Without an active timeout dump entries are only counted; entries
 * without timestamps or counters never get an interim record. */
static void test_interim_needs_timeout_and_facts(void)
{
	g_autofree char *dir = make_dir();
	struct pipeline p;

	pipeline_open(&p, dir, FALSE);
	take(&p, dumped(1, 60 * SECOND_NS, 10, 1000, 1, 100));
	g_assert_cmpuint(spool_end(p.spool), ==, 0);
	g_assert_cmpuint(intake_get_stats(p.in)->not_exported, ==, 1);

	intake_set_active_timeout(p.in, TIMEOUT_NS);
	struct flow_record no_times = dumped(2, 60 * SECOND_NS, 10, 1000, 1, 100);
	no_times.flags &= (guint8)~FLOW_HAS_TIMESTAMPS;
	take(&p, no_times);
	struct flow_record no_counters = dumped(3, 60 * SECOND_NS, 10, 1000, 1, 100);
	no_counters.flags &= (guint8)~FLOW_HAS_COUNTERS;
	take(&p, no_counters);
	g_assert_cmpuint(spool_end(p.spool), ==, 0);
	take(&p, dumped(4, 60 * SECOND_NS, 10, 1000, 1, 100));
	g_assert_cmpuint(spool_end(p.spool), ==, 1);
	pipeline_close(&p);
	remove_tree(dir);
}

/*
 * The state is a fold of the journal: folding every spooled record into
 * an empty table gives the table the intake holds, and a snapshot taken
 * midway plus the records after it give it too.
 */
static void test_interim_state_is_a_fold(void)
{
	g_autofree char *dir = make_dir();
	struct pipeline p;

	pipeline_open(&p, dir, FALSE);
	intake_set_active_timeout(p.in, TIMEOUT_NS);
	for (guint32 k = 0; k < 3000; k++)
		take(&p, dumped(k, 20 * SECOND_NS, 10 + k, 1000 + k, 1, 100));
	guint64 mid = spool_end(p.spool);
	g_autoptr(GBytes) snap = conn_state_snapshot(p.state, mid);
	for (guint32 k = 0; k < 3000; k += 3) {
		struct flow_record end = destroy_of(k);
		end.packets = 20 + k;
		take(&p, end);
	}
	for (guint32 k = 1; k < 3000; k += 3)
		take(&p, dumped(k, 40 * SECOND_NS, 30 + k, 3000 + k, 2, 200));
	g_assert_cmpuint(conn_state_size(p.state), ==, 2000);

	g_autoptr(GArray) got = spooled(&p, 0);
	g_autoptr(GError) error = NULL;
	guint64 covered = 0;
	gsize len;
	const guint8 *data = g_bytes_get_data(snap, &len);
	conn_state *from_snap = conn_state_parse(data, len, "snapshot", &covered, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(covered, ==, mid);
	conn_state *from_zero = conn_state_new();
	for (guint i = 0; i < got->len; i++) {
		conn_state_apply(from_zero, &g_array_index(got, struct flow_record, i));
		if (i >= mid)
			conn_state_apply(from_snap, &g_array_index(got, struct flow_record, i));
	}
	for (guint32 k = 0; k < 3000; k++) {
		struct flow_record probe = destroy_of(k);
		struct conn_state_entry *a = conn_state_find(p.state, &probe);
		struct conn_state_entry *b = conn_state_find(from_zero, &probe);
		struct conn_state_entry *c = conn_state_find(from_snap, &probe);
		if (k % 3 == 0) {
			g_assert_null(a);
			g_assert_null(b);
			g_assert_null(c);
			continue;
		}
		g_assert_nonnull(a);
		g_assert_cmpmem(a, sizeof(*a), b, sizeof(*b));
		g_assert_cmpmem(a, sizeof(*a), c, sizeof(*c));
	}
	g_assert_cmpuint(conn_state_size(from_zero), ==, 2000);
	g_assert_cmpuint(conn_state_size(from_snap), ==, 2000);
	conn_state_free(from_zero);
	conn_state_free(from_snap);
	pipeline_close(&p);
	remove_tree(dir);
}

/* ---- NAT event logging ---------------------------------------------------------- */

#define REFRESH_NS (60 * SECOND_NS)

/* Flow @k translated: source NAT to 198.19.0.10, port 40000 + k. */
static struct flow_record translated(struct flow_record r, guint32 k)
{
	memcpy(r.reply.src, r.orig.dst, 16);
	r.reply.dst[0] = 198;
	r.reply.dst[1] = 19;
	r.reply.dst[3] = 10;
	r.reply.sport = r.orig.dport;
	r.reply.dport = (uint16_t)(40000 + k % 20000);
	return r;
}

/* The NEW event of flow @k, as the kernel sends it: no counters, no times. */
static struct flow_record new_of(guint32 k, gboolean nat)
{
	struct flow_record r = destroy_of(k);

	r.event = FLOW_EVENT_NEW;
	r.start_ns = r.end_ns = 0;
	r.packets = r.bytes = 0;
	r.flags = FLOW_HAS_ID;
	if (nat)
		return translated(r, k);
	/* untranslated: the reply tuple is the original one turned around */
	memcpy(r.reply.src, r.orig.dst, 16);
	memcpy(r.reply.dst, r.orig.src, 16);
	r.reply.sport = r.orig.dport;
	r.reply.dport = r.orig.sport;
	return r;
}

static struct flow_record nat_destroy_of(guint32 k)
{
	return translated(destroy_of(k), k);
}

static const struct flow_record *at(GArray *a, guint i)
{
	return &g_array_index(a, struct flow_record, i);
}

/*
 * A NEW of a translated connection is journaled once as its create (its
 * time when read), a repeat is dropped, its DESTROY is final and not late
 * and has the create's flowId; a NEW without NAT is counted only; with NAT
 * events off, nothing of this happens.
 */
static void test_nat_new_and_destroy(void)
{
	g_autofree char *dir = make_dir();
	struct pipeline p;

	pipeline_open_nat(&p, dir, FALSE, TRUE, 0);
	guint64 before = (guint64)g_get_real_time() * 1000;
	take(&p, new_of(1, TRUE));
	take(&p, new_of(1, TRUE));          /* a repeat */
	take(&p, new_of(2, FALSE));         /* no NAT */
	guint64 after = (guint64)g_get_real_time() * 1000;
	g_assert_cmpuint(conn_state_size(p.state), ==, 1);
	take(&p, nat_destroy_of(1));
	take(&p, destroy_of(2));
	g_assert_cmpuint(conn_state_size(p.state), ==, 0);

	g_autoptr(GArray) got = spooled(&p, 0);
	g_assert_cmpuint(got->len, ==, 3);
	const struct flow_record *create = at(got, 0), *end = at(got, 1);
	g_assert_cmpint(create->event, ==, FLOW_EVENT_NEW);
	g_assert_cmpuint(create->ct_id, ==, 0x10001u);
	g_assert_cmpuint(create->flags & (FLOW_LATE | FLOW_REFRESH), ==, 0);
	g_assert_cmpuint(create->end_ns, >=, before);
	g_assert_cmpuint(create->end_ns, <=, after);
	g_assert_cmpuint(create->start_ns, ==, create->end_ns);
	g_assert_false(flow_is_interim(create));
	g_assert_cmpint(end->event, ==, FLOW_EVENT_DESTROY);
	g_assert_cmpuint(end->flags & FLOW_LATE, ==, 0);
	g_assert_cmpuint(end->flow_id, ==, create->flow_id);
	g_assert_cmpuint(at(got, 2)->flow_id, !=, create->flow_id);
	const struct intake_stats *st = intake_get_stats(p.in);
	g_assert_cmpuint(st->nat_creates, ==, 1);
	g_assert_cmpuint(st->nat_repeats, ==, 1);
	g_assert_cmpuint(st->nat_late, ==, 0);
	g_assert_cmpuint(st->not_exported, ==, 1);
	g_assert_cmpuint(st->accepted, ==, 2);
	pipeline_close(&p);

	/* off: NEW events are counted, DESTROYs not marked */
	pipeline_open(&p, dir, FALSE);
	take(&p, new_of(3, TRUE));
	take(&p, nat_destroy_of(3));
	g_autoptr(GArray) off = spooled(&p, 0);
	g_assert_cmpuint(off->len, ==, 1);
	g_assert_cmpuint(at(off, 0)->flags & FLOW_LATE, ==, 0);
	g_assert_cmpuint(intake_get_stats(p.in)->not_exported, ==, 1);
	pipeline_close(&p);
	remove_tree(dir);
}

/* A DESTROY of a translated connection whose NEW never came is marked late;
 * one without NAT is not. */
static void test_nat_lost_new(void)
{
	g_autofree char *dir = make_dir();
	struct pipeline p;

	pipeline_open_nat(&p, dir, FALSE, TRUE, 0);
	take(&p, nat_destroy_of(5));
	take(&p, destroy_of(6));
	take(&p, nat_destroy_of(5));   /* a repeat: dropped before it could be marked again */
	g_autoptr(GArray) got = spooled(&p, 0);
	g_assert_cmpuint(got->len, ==, 2);
	g_assert_cmpuint(at(got, 0)->flags & FLOW_LATE, ==, FLOW_LATE);
	g_assert_cmpuint(at(got, 1)->flags & FLOW_LATE, ==, 0);
	g_assert_cmpuint(intake_get_stats(p.in)->nat_late, ==, 1);
	g_assert_cmpuint(intake_get_stats(p.in)->duplicates, ==, 1);
	g_assert_cmpuint(conn_state_size(p.state), ==, 0);
	pipeline_close(&p);
	remove_tree(dir);
}

/*
 * Dump entries: a translated connection without a create gets a late one
 * (its time the connection's start), unless it is too young for its NEW
 * to be known lost; one with a create gets a refresh once nat_refresh has
 * passed since the last create, with the same flowId; after the DESTROY
 * was taken, a dump entry gives nothing.
 */
static void test_nat_dump_late_and_refresh(void)
{
	g_autofree char *dir = make_dir();
	struct pipeline p;

	pipeline_open_nat(&p, dir, FALSE, TRUE, REFRESH_NS);
	take(&p, translated(dumped(8, 2 * SECOND_NS, 1, 100, 1, 100), 8));    /* too young */
	g_assert_cmpuint(spool_end(p.spool), ==, 0);
	take(&p, translated(dumped(8, 20 * SECOND_NS, 1, 100, 1, 100), 8));   /* late create */
	take(&p, translated(dumped(8, 70 * SECOND_NS, 1, 100, 1, 100), 8));   /* 50 s after: none */
	take(&p, translated(dumped(8, 81 * SECOND_NS, 1, 100, 1, 100), 8));   /* refresh */
	take(&p, new_of(9, TRUE));
	take(&p, translated(dumped(9, 30 * SECOND_NS, 1, 100, 1, 100), 9));   /* NEW just read: none */
	take(&p, dumped(10, 300 * SECOND_NS, 1, 100, 1, 100));                /* no NAT: none */
	take(&p, nat_destroy_of(8));
	take(&p, translated(dumped(8, 200 * SECOND_NS, 1, 100, 1, 100), 8));  /* ended: none */

	g_autoptr(GArray) got = spooled(&p, 0);
	g_assert_cmpuint(got->len, ==, 4);
	const struct flow_record *late = at(got, 0), *refresh = at(got, 1), *end = at(got, 3);
	guint64 start = START_NS + 8;
	g_assert_cmpint(late->event, ==, FLOW_EVENT_NEW);
	g_assert_cmpuint(late->flags & (FLOW_LATE | FLOW_REFRESH), ==, FLOW_LATE);
	g_assert_cmpuint(late->start_ns, ==, start);
	g_assert_cmpuint(late->end_ns, ==, start + 20 * SECOND_NS);
	g_assert_cmpint(refresh->event, ==, FLOW_EVENT_NEW);
	g_assert_cmpuint(refresh->flags & (FLOW_LATE | FLOW_REFRESH), ==, FLOW_REFRESH);
	g_assert_cmpuint(refresh->end_ns, ==, start + 81 * SECOND_NS);
	g_assert_cmpuint(refresh->flow_id, ==, late->flow_id);
	g_assert_cmpint(at(got, 2)->event, ==, FLOW_EVENT_NEW);   /* flow 9's create */
	g_assert_cmpuint(at(got, 2)->ct_id, ==, 0x10009u);
	g_assert_cmpint(end->event, ==, FLOW_EVENT_DESTROY);
	g_assert_cmpuint(end->flags & FLOW_LATE, ==, 0);
	g_assert_cmpuint(end->flow_id, ==, late->flow_id);
	const struct intake_stats *st = intake_get_stats(p.in);
	g_assert_cmpuint(st->nat_late, ==, 1);
	g_assert_cmpuint(st->nat_refreshes, ==, 1);
	g_assert_cmpuint(conn_state_size(p.state), ==, 1);   /* flow 9 lives on */
	pipeline_close(&p);

	/* without nat_refresh, no refresh */
	pipeline_open_nat(&p, dir, FALSE, TRUE, 0);
	take(&p, translated(dumped(8, 20 * SECOND_NS, 1, 100, 1, 100), 8));
	take(&p, translated(dumped(8, 5000 * SECOND_NS, 1, 100, 1, 100), 8));
	g_assert_cmpuint(spool_end(p.spool), ==, 1);
	pipeline_close(&p);
	remove_tree(dir);
}

/*
 * Across a restart: the NAT keys are the journal's fold.  A NEW the
 * landing zone gives again is dropped, whether its connection is still
 * alive (its key is there) or its DESTROY was journaled too (the key is
 * gone, the DESTROY is known); the DESTROY that comes again is a
 * duplicate, and a live connection's DESTROY is not late.
 */
static void test_nat_restart(void)
{
	g_autofree char *dir = make_dir();
	struct pipeline p;

	pipeline_open_nat(&p, dir, TRUE, TRUE, 0);
	take(&p, new_of(1, TRUE));
	take(&p, nat_destroy_of(1));
	take(&p, new_of(2, TRUE));
	g_assert_cmpuint(spool_end(p.spool), ==, 3);
	pipeline_close(&p);

	pipeline_open_nat(&p, dir, TRUE, TRUE, 0);
	g_assert_cmpuint(conn_state_size(p.state), ==, 1);
	take(&p, new_of(1, TRUE));          /* the landing zone's */
	take(&p, nat_destroy_of(1));
	take(&p, new_of(2, TRUE));
	intake_recovered(p.in);
	take(&p, nat_destroy_of(2));
	const struct intake_stats *st = intake_get_stats(p.in);
	g_assert_cmpuint(st->nat_repeats, ==, 2);
	g_assert_cmpuint(st->duplicates, ==, 1);
	g_assert_cmpuint(st->nat_late, ==, 0);
	g_assert_cmpuint(st->nat_creates, ==, 0);
	g_autoptr(GArray) got = spooled(&p, 0);
	g_assert_cmpuint(got->len, ==, 4);
	g_assert_cmpint(at(got, 3)->event, ==, FLOW_EVENT_DESTROY);
	g_assert_cmpuint(at(got, 3)->flow_id, ==, at(got, 2)->flow_id);
	g_assert_cmpuint(conn_state_size(p.state), ==, 0);
	/* once recovered, the same connection made again is a new one */
	take(&p, new_of(1, TRUE));
	g_assert_cmpuint(intake_get_stats(p.in)->nat_creates, ==, 1);
	pipeline_close(&p);
	remove_tree(dir);
}

/* The NAT keys are part of the fold: from the journal, or from a snapshot
 * and the records after it, the same table as the intake's. */
static void test_nat_state_is_a_fold(void)
{
	g_autofree char *dir = make_dir();
	struct pipeline p;

	pipeline_open_nat(&p, dir, FALSE, TRUE, REFRESH_NS);
	intake_set_active_timeout(p.in, TIMEOUT_NS);
	for (guint32 k = 0; k < 2000; k++)
		take(&p, new_of(k, TRUE));
	guint64 mid = spool_end(p.spool);
	g_autoptr(GBytes) snap = conn_state_snapshot(p.state, mid);
	for (guint32 k = 0; k < 2000; k += 2)
		take(&p, nat_destroy_of(k));
	for (guint32 k = 1; k < 2000; k += 4)   /* interim records beside the NAT keys */
		take(&p, translated(dumped(k, 20 * SECOND_NS, 10, 1000, 1, 100), k));
	for (guint32 k = 2000; k < 2100; k++)   /* lost NEW: late creates from a dump */
		take(&p, translated(dumped(k, 20 * SECOND_NS, 10, 1000, 1, 100), k));

	g_autoptr(GArray) got = spooled(&p, 0);
	g_autoptr(GError) error = NULL;
	guint64 covered = 0;
	gsize len;
	const guint8 *data = g_bytes_get_data(snap, &len);
	conn_state *from_snap = conn_state_parse(data, len, "snapshot", &covered, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(covered, ==, mid);
	conn_state *from_zero = conn_state_new();
	for (guint i = 0; i < got->len; i++) {
		conn_state_apply(from_zero, at(got, i));
		if (i >= mid)
			conn_state_apply(from_snap, at(got, i));
	}
	guint live = 0;
	for (guint32 k = 0; k < 2100; k++) {
		struct flow_record probe = nat_destroy_of(k);
		struct conn_state_entry *a = conn_state_find_nat(p.state, &probe);
		struct conn_state_entry *b = conn_state_find_nat(from_zero, &probe);
		struct conn_state_entry *c = conn_state_find_nat(from_snap, &probe);
		if (k < 2000 && k % 2 == 0) {
			g_assert_null(a);
			g_assert_null(b);
			g_assert_null(c);
			continue;
		}
		live++;
		g_assert_nonnull(a);
		g_assert_cmpuint(a->flags, ==, CONN_NAT_CREATED);
		g_assert_cmpmem(a, sizeof(*a), b, sizeof(*b));
		g_assert_cmpmem(a, sizeof(*a), c, sizeof(*c));
	}
	g_assert_cmpuint(live, ==, 1100);
	/* 1100 NAT keys, and interim entries of the 500 + 100 dumped */
	g_assert_cmpuint(conn_state_size(p.state), ==, 1700);
	g_assert_cmpuint(conn_state_size(from_zero), ==, 1700);
	g_assert_cmpuint(conn_state_size(from_snap), ==, 1700);
	conn_state_free(from_zero);
	conn_state_free(from_snap);
	pipeline_close(&p);
	remove_tree(dir);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);

	g_test_add_func("/intake/accepts-each-once", test_accepts_each_once);
	g_test_add_func("/intake/large-call", test_large_call);
	g_test_add_func("/intake/without-timestamps", test_without_timestamps);
	g_test_add_func("/intake/killed-mid-batch", test_killed_mid_batch);
	g_test_add_func("/intake/failed-batch-keeps-accepted", test_failed_batch_keeps_accepted);
	g_test_add_func("/intake/interim/deltas", test_interim_deltas);
	g_test_add_func("/intake/interim/needs-timeout-and-facts", test_interim_needs_timeout_and_facts);
	g_test_add_func("/intake/interim/state-is-a-fold", test_interim_state_is_a_fold);
	g_test_add_func("/intake/interim/not-remembered", test_interim_not_remembered);
	g_test_add_func("/intake/nat/new-and-destroy", test_nat_new_and_destroy);
	g_test_add_func("/intake/nat/lost-new", test_nat_lost_new);
	g_test_add_func("/intake/nat/dump-late-and-refresh", test_nat_dump_late_and_refresh);
	g_test_add_func("/intake/nat/restart", test_nat_restart);
	g_test_add_func("/intake/nat/state-is-a-fold", test_nat_state_is_a_fold);

	return g_test_run();
}
