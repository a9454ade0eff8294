/*
 * test_dedup.c - the DESTROY repeat filter.
 *
 * The filter decides which events are dropped, so both directions of error
 * matter: a repeat that slips through is counted twice, a new flow taken for
 * a repeat is never exported.  Besides hand-picked identities, a long random
 * run is checked step by step against a plain reference model (a hash set
 * plus a FIFO queue), which is what catches a slip in the table's
 * backward-shift deletion: an entry moved to the wrong slot becomes
 * unreachable, and the filter then answers FALSE for a remembered identity.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <glib.h>
#include <unistd.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "ctflowd/dedup.h"
#include "ctflowd/error.h"

static dedup *new_filter(guint window)
{
	g_autoptr(GError) error = NULL;
	dedup *d = dedup_new(window, &error);

	g_assert_no_error(error);
	g_assert_nonnull(d);
	return d;
}

static struct flow_record udp4_record(void)
{
	struct flow_record r = {
		.start_ns = 1700000000123456789ull,
		.end_ns = 1700000030987654321ull,
		.packets = 3,
		.bytes = 300,
		.reply_packets = 2,
		.reply_bytes = 200,
		.flow_id = 42,
		.orig = {.sport = 40000, .dport = 53},
		.reply = {.sport = 53, .dport = 40000},
		.ct_id = 0x8badf00d,
		.mark = 7,
		.status = 0x0e,
		.zone = 3,
		.family = AF_INET,
		.proto = IPPROTO_UDP,
		.end_reason = 1,
		.flags = 7,
		.event = 1,
	};
	g_assert_cmpint(inet_pton(AF_INET, "192.0.2.10", r.orig.src), ==, 1);
	g_assert_cmpint(inet_pton(AF_INET, "198.51.100.20", r.orig.dst), ==, 1);
	memcpy(r.reply.src, r.orig.dst, 16);
	memcpy(r.reply.dst, r.orig.src, 16);
	return r;
}

static struct flow_record tcp6_record(void)
{
	struct flow_record r = udp4_record();

	r.family = AF_INET6;
	r.proto = IPPROTO_TCP;
	r.orig.sport = 51515;
	r.orig.dport = 443;
	g_assert_cmpint(inet_pton(AF_INET6, "2001:db8:1:2:3:4:5:6", r.orig.src), ==, 1);
	g_assert_cmpint(inet_pton(AF_INET6, "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff", r.orig.dst),
			==, 1);
	memcpy(r.reply.src, r.orig.dst, 16);
	memcpy(r.reply.dst, r.orig.src, 16);
	return r;
}

static void test_repeat_detected(void)
{
	dedup *d = new_filter(16);
	struct flow_record v4 = udp4_record();
	struct flow_record v6 = tcp6_record();

	g_assert_cmpuint(dedup_size(d), ==, 0);
	g_assert_false(dedup_seen(d, &v4));
	g_assert_cmpuint(dedup_size(d), ==, 1);
	g_assert_true(dedup_seen(d, &v4));
	g_assert_true(dedup_seen(d, &v4));
	/* a repeat is not remembered a second time */
	g_assert_cmpuint(dedup_size(d), ==, 1);

	g_assert_false(dedup_seen(d, &v6));
	g_assert_true(dedup_seen(d, &v6));
	g_assert_true(dedup_seen(d, &v4));
	g_assert_cmpuint(dedup_size(d), ==, 2);
	dedup_free(d);
}

/* A resent DESTROY is the same event; but the identity is defined as
 * (id, original tuple, zone, start), so fields outside it must not make the
 * filter take a repeat for a new flow. */
static void test_repeat_ignores_other_fields(void)
{
	dedup *d = new_filter(16);
	struct flow_record r = udp4_record();

	g_assert_false(dedup_seen(d, &r));
	r.end_ns += 5;
	r.packets++;
	r.bytes += 1000;
	r.reply_packets++;
	r.reply_bytes += 1000;
	r.flow_id++;
	r.mark++;
	r.status |= 0x100;
	r.end_reason = 4;
	r.event = 4;
	r.reply.sport = 1;
	r.reply.dst[3] ^= 1;
	g_assert_true(dedup_seen(d, &r));
	dedup_free(d);
}

typedef void (*mutate_fn)(struct flow_record *r);

static void mut_ct_id(struct flow_record *r) { r->ct_id ^= 1; }
static void mut_ct_id_high(struct flow_record *r) { r->ct_id ^= 0x80000000u; }
static void mut_start(struct flow_record *r) { r->start_ns += 1; }
static void mut_start_high(struct flow_record *r) { r->start_ns ^= 1ull << 63; }
static void mut_zone(struct flow_record *r) { r->zone ^= 1; }
static void mut_zone_zero(struct flow_record *r) { r->zone = 0; }
static void mut_sport(struct flow_record *r) { r->orig.sport ^= 1; }
static void mut_dport(struct flow_record *r) { r->orig.dport ^= 0x8000; }
static void mut_ports_swapped(struct flow_record *r)
{
	uint16_t t = r->orig.sport;
	r->orig.sport = r->orig.dport;
	r->orig.dport = t;
}
static void mut_src_first(struct flow_record *r) { r->orig.src[0] ^= 1; }
static void mut_src_v4_last(struct flow_record *r) { r->orig.src[3] ^= 1; }
static void mut_dst_v4_last(struct flow_record *r) { r->orig.dst[3] ^= 1; }
static void mut_src_v6_mid(struct flow_record *r) { r->orig.src[8] ^= 1; }
static void mut_src_v6_last(struct flow_record *r) { r->orig.src[15] ^= 1; }
static void mut_dst_v6_last(struct flow_record *r) { r->orig.dst[15] ^= 0x80; }
static void mut_addrs_swapped(struct flow_record *r)
{
	uint8_t t[16];
	memcpy(t, r->orig.src, 16);
	memcpy(r->orig.src, r->orig.dst, 16);
	memcpy(r->orig.dst, t, 16);
}
static void mut_proto(struct flow_record *r) { r->proto = r->proto == IPPROTO_UDP ? IPPROTO_TCP : IPPROTO_UDP; }
static void mut_family(struct flow_record *r) { r->family = r->family == AF_INET ? AF_INET6 : AF_INET; }

struct mutation {
	const char *name;
	mutate_fn fn;
	gboolean v4, v6; /* which base records it applies to */
};

static const struct mutation mutations[] = {
	{"ct-id", mut_ct_id, TRUE, TRUE},
	{"ct-id-high-bit", mut_ct_id_high, TRUE, TRUE},
	{"start", mut_start, TRUE, TRUE},
	{"start-high-bit", mut_start_high, TRUE, TRUE},
	{"zone", mut_zone, TRUE, TRUE},
	{"zone-zero", mut_zone_zero, TRUE, TRUE},
	{"sport", mut_sport, TRUE, TRUE},
	{"dport", mut_dport, TRUE, TRUE},
	{"ports-swapped", mut_ports_swapped, TRUE, TRUE},
	{"src-first-byte", mut_src_first, TRUE, TRUE},
	{"src-v4-last-byte", mut_src_v4_last, TRUE, FALSE},
	{"dst-v4-last-byte", mut_dst_v4_last, TRUE, FALSE},
	{"src-v6-byte-8", mut_src_v6_mid, FALSE, TRUE},
	{"src-v6-last-byte", mut_src_v6_last, FALSE, TRUE},
	{"dst-v6-last-byte", mut_dst_v6_last, FALSE, TRUE},
	{"addresses-swapped", mut_addrs_swapped, TRUE, TRUE},
	{"proto", mut_proto, TRUE, TRUE},
	{"family", mut_family, TRUE, TRUE},
};

/* Each part of the identity on its own makes a different flow: conntrack
 * ids are reused, and the same tuple recurs in another zone or later. */
static void test_differs_not_repeat(void)
{
	for (int fam = 0; fam < 2; fam++) {
		for (size_t i = 0; i < G_N_ELEMENTS(mutations); i++) {
			const struct mutation *m = &mutations[i];
			if (fam == 0 ? !m->v4 : !m->v6)
				continue;
			dedup *d = new_filter(64);
			struct flow_record base = fam == 0 ? udp4_record() : tcp6_record();
			struct flow_record other = base;

			m->fn(&other);
			g_test_message("%s: %s", fam == 0 ? "ipv4" : "ipv6", m->name);
			g_assert_false(dedup_seen(d, &base));
			g_assert_false(dedup_seen(d, &other));
			g_assert_cmpuint(dedup_size(d), ==, 2);
			/* both remembered, neither evicted the other */
			g_assert_true(dedup_seen(d, &base));
			g_assert_true(dedup_seen(d, &other));
			dedup_free(d);
		}
	}
}

/* Distinct identities: ct_id counts up, the rest varies a little so that
 * fingerprints do not all come from one field. */
static struct flow_record identity(guint64 n)
{
	struct flow_record r = (n & 1) ? tcp6_record() : udp4_record();

	r.ct_id = (guint32)(n * 2654435761u);
	r.start_ns = 1700000000000000000ull + n * 1000;
	r.orig.sport = (uint16_t)(1024 + n % 60000);
	r.zone = (uint16_t)(n % 3);
	if (r.family == AF_INET6)
		memcpy(r.orig.src + 8, &n, sizeof(n));
	return r;
}

static void check_fifo_window(guint window)
{
	dedup *d = new_filter(window);

	for (guint64 i = 0; i < window; i++) {
		struct flow_record r = identity(i);
		g_assert_false(dedup_seen(d, &r));
		g_assert_cmpuint(dedup_size(d), ==, i + 1);
	}
	/* a repeat of the oldest does not make it young again (FIFO, not LRU) */
	struct flow_record oldest = identity(0);
	g_assert_true(dedup_seen(d, &oldest));

	struct flow_record newest = identity(window);
	g_assert_false(dedup_seen(d, &newest));
	g_assert_cmpuint(dedup_size(d), ==, window);

	/* the newest W are all there (seen() of a remembered one changes nothing) */
	for (guint64 i = 1; i <= window; i++) {
		struct flow_record r = identity(i);
		if (!dedup_seen(d, &r))
			g_error("window %u: identity %" G_GUINT64_FORMAT " forgotten too early",
				window, i);
	}
	/* the oldest is forgotten: it counts as new and is remembered again */
	g_assert_false(dedup_seen(d, &oldest));
	g_assert_true(dedup_seen(d, &oldest));
	g_assert_cmpuint(dedup_size(d), ==, window);
	/* ... which pushed identity 1 out, and only that one */
	struct flow_record second = identity(1);
	for (guint64 i = 2; i <= window; i++) {
		struct flow_record r = identity(i);
		g_assert_true(dedup_seen(d, &r));
	}
	g_assert_false(dedup_seen(d, &second));
	dedup_free(d);
}

static void test_fifo_eviction(void)
{
	static const guint windows[] = {2, 3, 7, 8, 9, 100, 4096};

	for (size_t i = 0; i < G_N_ELEMENTS(windows); i++)
		check_fifo_window(windows[i]);
}

static void test_window_one(void)
{
	dedup *d = new_filter(1);
	struct flow_record a = identity(1), b = identity(2);

	g_assert_false(dedup_seen(d, &a));
	g_assert_true(dedup_seen(d, &a));
	g_assert_cmpuint(dedup_size(d), ==, 1);
	g_assert_false(dedup_seen(d, &b));
	g_assert_cmpuint(dedup_size(d), ==, 1);
	g_assert_true(dedup_seen(d, &b));
	g_assert_false(dedup_seen(d, &a));
	g_assert_false(dedup_seen(d, &b));
	g_assert_false(dedup_seen(d, &a));
	g_assert_true(dedup_seen(d, &a));
	dedup_free(d);

	/* the header asks for >= 1; 0 must not give a filter that cannot hold
	 * anything (or divides by zero) */
	d = new_filter(0);
	g_assert_false(dedup_seen(d, &a));
	g_assert_true(dedup_seen(d, &a));
	g_assert_false(dedup_seen(d, &b));
	g_assert_false(dedup_seen(d, &a));
	g_assert_cmpuint(dedup_size(d), ==, 1);
	dedup_free(d);
}

/* The reference: the identities (by number) remembered, in arrival order. */
struct model {
	GHashTable *set;
	GQueue fifo;
	guint window;
};

static gboolean model_seen(struct model *m, guint64 n)
{
	gpointer key = GSIZE_TO_POINTER((gsize)n + 1);

	if (g_hash_table_contains(m->set, key))
		return TRUE;
	g_hash_table_add(m->set, key);
	g_queue_push_tail(&m->fifo, key);
	if (m->fifo.length > m->window)
		g_hash_table_remove(m->set, g_queue_pop_head(&m->fifo));
	return FALSE;
}

static void run_random(guint window, guint64 steps, guint32 seed)
{
	GRand *rand = g_rand_new_with_seed(seed);
	dedup *d = new_filter(window);
	struct model m = {.set = g_hash_table_new(g_direct_hash, g_direct_equal), .window = window};
	guint64 next = 0;
	guint64 repeats_hit = 0, repeats_missed = 0;
	const guint64 check_every = MAX(window * 4ull, 10000);

	g_test_message("window %u, %" G_GUINT64_FORMAT " steps, seed %u", window, steps, seed);
	for (guint64 step = 0; step < steps; step++) {
		guint64 n;
		/* half new identities; half an earlier one, mostly within the
		 * window, some just beyond it (forgotten, must count as new) */
		if (next == 0 || g_rand_boolean(rand)) {
			n = next++;
		} else {
			guint64 back = (guint64)g_rand_int_range(rand, 1, (gint32)(window + window / 2 + 2));
			n = back > next ? 0 : next - back;
		}
		struct flow_record r = identity(n);
		gboolean want = model_seen(&m, n);
		gboolean got = dedup_seen(d, &r);
		if (got != want)
			g_error("step %" G_GUINT64_FORMAT ": identity %" G_GUINT64_FORMAT
				" seen=%d, model says %d (window %u, seed %u)",
				step, n, got, want, window, seed);
		if (want)
			repeats_hit++;
		else if (n + 1 < next)
			repeats_missed++;
		if (dedup_size(d) != m.fifo.length)
			g_error("step %" G_GUINT64_FORMAT ": size %u, model %u", step,
				dedup_size(d), m.fifo.length);

		/* every remembered identity still reachable: catches entries a
		 * wrong shift has parked behind an empty slot */
		if (step % check_every == check_every - 1) {
			for (GList *l = m.fifo.head; l; l = l->next) {
				guint64 k = GPOINTER_TO_SIZE(l->data) - 1;
				struct flow_record q = identity(k);
				if (!dedup_seen(d, &q))
					g_error("step %" G_GUINT64_FORMAT ": remembered identity %"
						G_GUINT64_FORMAT " not found", step, k);
			}
		}
	}
	/* the run really mixed repeats and forgotten identities */
	g_assert_cmpuint(repeats_hit, >, steps / 8);
	if (steps > 10ull * window)
		g_assert_cmpuint(repeats_missed, >, 0);

	g_hash_table_destroy(m.set);
	g_queue_clear(&m.fifo);
	dedup_free(d);
	g_rand_free(rand);
}

static void test_random_large(void)
{
	run_random(4096, g_test_slow() ? 4000000 : 1000000, 20240611);
}

static void test_random_small_windows(void)
{
	static const guint windows[] = {1, 2, 5, 8, 9, 31, 33, 1000};

	for (size_t i = 0; i < G_N_ELEMENTS(windows); i++)
		run_random(windows[i], 200000, 7 + windows[i]);
}

/* dedup_filter() must decide exactly as dedup_seen() one record at a time
 * would, including repeats inside one batch and batches larger than the
 * window, and keep the survivors in order. */
static void run_filter_random(guint window, guint64 steps, guint32 seed)
{
	GRand *rand = g_rand_new_with_seed(seed);
	dedup *d = new_filter(window);
	struct model m = {.set = g_hash_table_new(g_direct_hash, g_direct_equal), .window = window};
	g_autofree struct flow_record *batch = g_new(struct flow_record, 1100);
	g_autofree guint64 *want = g_new(guint64, 1100);
	guint64 next = 0, step = 0, dropped = 0;

	g_test_message("filter: window %u, %" G_GUINT64_FORMAT " steps, seed %u", window, steps,
		       seed);
	while (step < steps) {
		/* sizes around the filter's internal chunk of 64, and big ones */
		static const gint32 sizes[] = {0, 1, 2, 63, 64, 65, 127, 128, 129, 1024, 1100};
		size_t n = (size_t)sizes[g_rand_int_range(rand, 0, G_N_ELEMENTS(sizes))];
		size_t nwant = 0;

		for (size_t i = 0; i < n; i++, step++) {
			guint64 id;
			if (next == 0 || g_rand_boolean(rand)) {
				id = next++;
			} else {
				guint64 back = (guint64)g_rand_int_range(rand, 1,
									 (gint32)(window + window / 2 + 2));
				id = back > next ? 0 : next - back;
			}
			batch[i] = identity(id);
			batch[i].flow_id = id;
			if (!model_seen(&m, id))
				want[nwant++] = id;
		}
		size_t kept = dedup_filter(d, batch, n);
		if (kept != nwant)
			g_error("step %" G_GUINT64_FORMAT ": batch of %zu kept %zu, model %zu", step,
				n, kept, nwant);
		for (size_t i = 0; i < kept; i++) {
			struct flow_record expect = identity(want[i]);
			if (batch[i].flow_id != want[i] || batch[i].ct_id != expect.ct_id ||
			    batch[i].start_ns != expect.start_ns)
				g_error("step %" G_GUINT64_FORMAT ": kept[%zu] is identity %"
					G_GUINT64_FORMAT ", want %" G_GUINT64_FORMAT,
					step, i, batch[i].flow_id, want[i]);
		}
		dropped += n - kept;
		if (dedup_size(d) != m.fifo.length)
			g_error("step %" G_GUINT64_FORMAT ": size %u, model %u", step, dedup_size(d),
				m.fifo.length);
	}
	g_assert_cmpuint(dropped, >, steps / 8);

	g_hash_table_destroy(m.set);
	g_queue_clear(&m.fifo);
	dedup_free(d);
	g_rand_free(rand);
}

static void test_filter_random(void)
{
	run_filter_random(4096, 1000000, 4242);
	run_filter_random(100, 200000, 99);
	run_filter_random(8, 100000, 8);
	run_filter_random(1, 50000, 1);
}

static void test_filter_batch(void)
{
	dedup *d = new_filter(64);
	struct flow_record recs[6] = {identity(1), identity(2), identity(1),
				      identity(3), identity(2), identity(4)};

	for (size_t i = 0; i < G_N_ELEMENTS(recs); i++)
		recs[i].flow_id = 100 + i;
	g_assert_cmpuint(dedup_filter(d, recs, 0), ==, 0);
	g_assert_cmpuint(dedup_size(d), ==, 0);

	/* repeats inside the batch go; the first of each stays, in order */
	g_assert_cmpuint(dedup_filter(d, recs, G_N_ELEMENTS(recs)), ==, 4);
	g_assert_cmpuint(recs[0].flow_id, ==, 100);
	g_assert_cmpuint(recs[1].flow_id, ==, 101);
	g_assert_cmpuint(recs[2].flow_id, ==, 103);
	g_assert_cmpuint(recs[3].flow_id, ==, 105);
	g_assert_cmpuint(dedup_size(d), ==, 4);

	/* and they are remembered for later batches and single look-ups */
	struct flow_record again[2] = {identity(3), identity(5)};
	g_assert_cmpuint(dedup_filter(d, again, 2), ==, 1);
	g_assert_cmpuint(again[0].ct_id, ==, identity(5).ct_id);
	struct flow_record four = identity(4);
	g_assert_true(dedup_seen(d, &four));
	dedup_free(d);
}

/* Bytes of address space this process maps now. */
static guint64 mapped_bytes(void)
{
	g_autofree char *statm = NULL;

	g_assert_true(g_file_get_contents("/proc/self/statm", &statm, NULL, NULL));
	return g_ascii_strtoull(statm, NULL, 10) * (guint64)sysconf(_SC_PAGESIZE);
}

/* A filter that cannot get its memory is an error the caller sees (the
 * worker then exits as fatal), not an abort that gets it restarted in a
 * loop.  The address space is capped in a child so the mapping fails. */
static void test_no_memory(void)
{
	if (g_test_subprocess()) {
		struct rlimit cap;
		g_autoptr(GError) error = NULL;
		cap.rlim_cur = cap.rlim_max = mapped_bytes() + (64u << 20);
		g_assert_cmpint(setrlimit(RLIMIT_AS, &cap), ==, 0);
		/* 2^26 identities: a 1 GiB table, far past the cap */
		dedup *d = dedup_new(1u << 26, &error);
		g_assert_null(d);
		g_assert_error(error, CTFLOWD_ERROR, ENOMEM);
		g_assert_nonnull(strstr(error->message, "cannot map 1073741824 bytes for the table"
						       " of a window of 67108864 identities"));
		/* a small one still works afterwards */
		d = new_filter(16);
		dedup_free(d);
		g_print("returned: %s\n", error->message);
		return;
	}
	g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
	g_test_trap_assert_passed();
	g_test_trap_assert_stdout("*returned: dedup: cannot map*");
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	/* One failing case is reported and the others still run. */
	g_test_set_nonfatal_assertions();

	g_test_add_func("/dedup/repeat-detected", test_repeat_detected);
	g_test_add_func("/dedup/repeat-ignores-other-fields", test_repeat_ignores_other_fields);
	g_test_add_func("/dedup/identity-parts-differ", test_differs_not_repeat);
	g_test_add_func("/dedup/fifo-eviction", test_fifo_eviction);
	g_test_add_func("/dedup/window-one", test_window_one);
	g_test_add_func("/dedup/random/window-4096", test_random_large);
	g_test_add_func("/dedup/random/small-windows", test_random_small_windows);
	g_test_add_func("/dedup/filter/batch", test_filter_batch);
	g_test_add_func("/dedup/filter/random", test_filter_random);
	g_test_add_func("/dedup/no-memory", test_no_memory);

	return g_test_run();
}
