/*
 * test_encoder_netflow9.c - flow records as NetFlow v9 export packets.
 *
 * The packets are read back by a small decoder written from RFC 3954 (not
 * from the encoder): header, template flowsets, data flowsets by their
 * templates.  Checked: the header's count is the number of template and
 * data records, the sequence counts packets from 0 per session, templates
 * come first and again every template_packets packets, every field of a
 * record carries what the flow record says (delta counters, NAT, ICMP,
 * VRF), flowsets are padded to 32 bits, packets stay within the limit, and
 * with netflow_times = uptime the header's clock and the records' times
 * give back the flow's times to the millisecond.
 */
#include <arpa/inet.h>
#include <glib.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "encoder_capture.h"

static encoder *new_encoder(struct capture *c, guint mtu, gboolean uniflow, enum netflow_times t,
			    guint template_packets, const char *zone_vrf)
{
	struct export_config cfg = {
		.name = (char *)"test",
		.format = EXPORT_FORMAT_NETFLOW9,
		.transport = EXPORT_TRANSPORT_UDP,
		.mtu = mtu,
		.observation_domain = 0x01020304,
		.uniflow = uniflow,
		.netflow_times = t,
		.template_packets = template_packets,
		.zone_vrf = (char *)zone_vrf,
	};
	encoder *enc = capture_encoder(&cfg, c);
	return enc;
}

static struct flow_record rec_udp4(void)
{
	struct flow_record r = {
		.start_ns = 1700000000123456789ull,
		.end_ns = 1700000030987654321ull,
		.packets = 0x0000000200000003ull,
		.bytes = 0x0000001234567890ull,
		.reply_packets = 5,
		.reply_bytes = 0xdeadbeefull,
		.flow_id = 0xfedcba9876543210ull,
		.orig = {.sport = 40000, .dport = 53},
		.reply = {.sport = 53, .dport = 40000},
		.zone = 7,
		.family = AF_INET,
		.proto = IPPROTO_UDP,
		.end_reason = FLOW_END_IDLE_TIMEOUT,
		.flags = FLOW_HAS_COUNTERS | FLOW_HAS_TIMESTAMPS | FLOW_HAS_ID,
		.event = FLOW_EVENT_DESTROY,
	};
	capture_set_addr(r.orig.src, AF_INET, "192.0.2.10");
	capture_set_addr(r.orig.dst, AF_INET, "198.51.100.20");
	capture_set_addr(r.reply.src, AF_INET, "198.51.100.20");
	capture_set_addr(r.reply.dst, AF_INET, "192.0.2.10");
	return r;
}

/* ------------------------------------------------------------------ decoder */

#define get16 capture_get16
#define get32 capture_get32
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) << 32 | get32(p + 4); }

struct tmpl {
	guint n;
	uint16_t type[32], len[32];
};

/* One decoded data record: field type -> value (numbers) and raw bytes. */
struct rec {
	uint16_t tid;
	uint64_t v[400];
	uint8_t raw[400][16];
	gboolean has[400];
	guint off[400];     /* where the field starts in the record */
	guint len;          /* of the record */
	uint8_t bytes[160]; /* the record as sent */
};

struct packet {
	uint16_t count;
	uint32_t uptime, secs, seq, source_id;
	guint templates, data;
	GArray *recs;   /* struct rec */
};

static GHashTable *templates;  /* tid -> struct tmpl */

static void decode(GBytes *b, struct packet *pk)
{
	gsize len;
	const uint8_t *m = g_bytes_get_data(b, &len);

	g_assert_cmpuint(len, >=, 20);
	g_assert_cmpuint(get16(m), ==, 9);
	pk->count = get16(m + 2);
	pk->uptime = get32(m + 4);
	pk->secs = get32(m + 8);
	pk->seq = get32(m + 12);
	pk->source_id = get32(m + 16);
	pk->templates = pk->data = 0;
	pk->recs = g_array_new(FALSE, TRUE, sizeof(struct rec));
	for (gsize off = 20; off < len;) {
		g_assert_cmpuint(off + 4, <=, len);
		uint16_t id = get16(m + off), slen = get16(m + off + 2);
		g_assert_cmpuint(slen % 4, ==, 0);   /* padded to 32 bits */
		g_assert_cmpuint(slen, >=, 4);
		g_assert_cmpuint(off + slen, <=, len);
		const uint8_t *p = m + off + 4, *end = m + off + slen;
		if (id == 0) {
			while (p + 4 <= end) {
				struct tmpl *t = g_new0(struct tmpl, 1);
				uint16_t tid = get16(p);
				t->n = get16(p + 2);
				p += 4;
				g_assert_cmpuint(t->n, <=, 32);
				for (guint i = 0; i < t->n; i++, p += 4) {
					t->type[i] = get16(p);
					t->len[i] = get16(p + 2);
				}
				g_hash_table_insert(templates, GUINT_TO_POINTER(tid), t);
				pk->templates++;
			}
		} else {
			const struct tmpl *t = g_hash_table_lookup(templates, GUINT_TO_POINTER(id));
			g_assert_nonnull(t);
			guint rl = 0;
			for (guint i = 0; i < t->n; i++)
				rl += t->len[i];
			while (p + rl <= end) {
				struct rec r = { .tid = id };
				for (guint i = 0; i < t->n; i++) {
					uint16_t ty = t->type[i], l = t->len[i];
					g_assert_cmpuint(ty, <, 400);
					g_assert_cmpuint(r.len + l, <=, sizeof(r.bytes));
					memcpy(r.bytes + r.len, p, l);
					r.off[ty] = r.len;
					r.len += l;
					r.has[ty] = TRUE;
					memcpy(r.raw[ty], p, l);
					r.v[ty] = l == 1 ? p[0] : l == 2 ? get16(p) : l == 4 ? get32(p) :
						  l == 8 ? get64(p) : 0;
					p += l;
				}
				g_array_append_val(pk->recs, r);
				pk->data++;
			}
			g_assert_cmpuint(end - p, <, 4);   /* only padding left */
		}
		off += slen;
	}
	g_assert_cmpuint(pk->count, ==, pk->templates + pk->data);
}

static void setup(void)
{
	templates = g_hash_table_new_full(NULL, NULL, NULL, g_free);
}

static void teardown(void)
{
	g_hash_table_unref(templates);
}

/* ------------------------------------------------------------------ tests */

static void test_session_starts_with_templates(void)
{
	struct capture c;
	encoder *enc = new_encoder(&c, 1472, FALSE, NETFLOW_TIMES_ABSOLUTE, 20, NULL);
	struct packet pk;

	setup();
	g_assert_cmpuint(c.msgs->len, ==, 1);
	g_assert_cmpuint(capture_count(&c, 0), ==, 0);
	decode(g_ptr_array_index(c.msgs, 0), &pk);
	g_assert_cmpuint(pk.seq, ==, 0);
	g_assert_cmpuint(pk.source_id, ==, 0x01020304);
	g_assert_cmpuint(pk.templates, ==, 4);
	g_assert_cmpuint(pk.data, ==, 0);
	const struct tmpl *t = g_hash_table_lookup(templates, GUINT_TO_POINTER(256));
	g_assert_nonnull(t);
	/* biflow: IN and OUT counters, 64 bits, absolute times */
	gboolean seen[300] = {0};
	for (guint i = 0; i < t->n; i++) {
		seen[t->type[i]] = TRUE;
		if (t->type[i] <= 2 || t->type[i] == 23 || t->type[i] == 24)
			g_assert_cmpuint(t->len[i], ==, 8);
	}
	g_assert_true(seen[1] && seen[2] && seen[23] && seen[24] && seen[152] && seen[153]);
	g_assert_false(seen[21] || seen[22]);
	g_array_unref(pk.recs);
	encoder_free(enc);
	capture_clear(&c);
	teardown();
}

static void test_fields_and_counts(void)
{
	struct capture c;
	encoder *enc = new_encoder(&c, 1472, FALSE, NETFLOW_TIMES_ABSOLUTE, 20, "7=4242");
	struct flow_record r = rec_udp4(), nat = rec_udp4(), icmp = rec_udp4();
	g_autoptr(GError) error = NULL;
	struct packet pk;

	setup();
	/* SNAT: the reply goes back to the router's address and port */
	capture_set_addr(nat.reply.dst, AF_INET, "203.0.113.5");
	nat.reply.dport = 61000;
	/* an interim record's deltas: the base was reported before */
	nat.base_packets = 1;
	nat.base_bytes = 0x10;
	nat.base_reply_packets = 2;
	nat.period_start_ns = 1700000010000000000ull;
	icmp.proto = IPPROTO_ICMP;
	icmp.icmp_type = 8;
	icmp.icmp_code = 1;
	icmp.orig.sport = 0x4d2e;
	icmp.orig.dport = 0;
	icmp.reply.sport = 0x4d2e;
	icmp.reply.dport = 0;
	g_assert_true(encoder_add(enc, &r, &error));
	g_assert_true(encoder_add(enc, &nat, &error));
	g_assert_true(encoder_add(enc, &icmp, &error));
	g_assert_cmpuint(encoder_pending(enc), ==, 3);
	g_assert_true(encoder_flush(enc, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(c.msgs->len, ==, 2);
	g_assert_cmpuint(capture_count(&c, 1), ==, 3);
	g_assert_cmpuint(encoder_pending(enc), ==, 0);
	decode(g_ptr_array_index(c.msgs, 0), &pk);
	g_array_unref(pk.recs);
	decode(g_ptr_array_index(c.msgs, 1), &pk);
	g_assert_cmpuint(pk.seq, ==, 1);   /* packets, not records */
	g_assert_cmpuint(pk.data, ==, 3);
	g_assert_cmpuint(pk.count, ==, 3);

	const struct rec *a = &g_array_index(pk.recs, struct rec, 0);
	g_assert_cmpuint(a->tid, ==, 256);
	g_assert_cmpuint(a->v[1], ==, r.bytes);
	g_assert_cmpuint(a->v[2], ==, r.packets);
	g_assert_cmpuint(a->v[23], ==, r.reply_bytes);
	g_assert_cmpuint(a->v[24], ==, r.reply_packets);
	g_assert_cmpuint(a->v[152], ==, r.start_ns / 1000000);
	g_assert_cmpuint(a->v[153], ==, r.end_ns / 1000000);
	g_assert_cmpmem(a->raw[8], 4, r.orig.src, 4);
	g_assert_cmpmem(a->raw[12], 4, r.orig.dst, 4);
	g_assert_cmpuint(a->v[7], ==, 40000);
	g_assert_cmpuint(a->v[11], ==, 53);
	g_assert_cmpuint(a->v[4], ==, IPPROTO_UDP);
	g_assert_cmpuint(a->v[136], ==, FLOW_END_IDLE_TIMEOUT);
	g_assert_cmpuint(a->v[234], ==, 4242);
	g_assert_cmpuint(a->v[148], ==, r.flow_id);
	g_assert_false(a->has[225]);

	const struct rec *b = &g_array_index(pk.recs, struct rec, 1);
	g_assert_cmpuint(b->tid, ==, 258);
	g_assert_cmpuint(b->v[2], ==, r.packets - 1);
	g_assert_cmpuint(b->v[1], ==, r.bytes - 0x10);
	g_assert_cmpuint(b->v[24], ==, r.reply_packets - 2);
	g_assert_cmpuint(b->v[152], ==, 1700000010000ull);
	g_assert_cmpmem(b->raw[225], 4, nat.reply.dst, 4);
	g_assert_cmpmem(b->raw[226], 4, nat.reply.src, 4);
	g_assert_cmpuint(b->v[227], ==, 61000);
	g_assert_cmpuint(b->v[228], ==, 53);

	const struct rec *d = &g_array_index(pk.recs, struct rec, 2);
	g_assert_cmpuint(d->v[32], ==, 8 << 8 | 1);
	g_assert_cmpuint(d->v[11], ==, 8 << 8 | 1);
	g_assert_cmpuint(d->v[7], ==, 0);
	g_array_unref(pk.recs);
	encoder_free(enc);
	capture_clear(&c);
	teardown();
}

/* Templates at the head of every template_packets-th packet, sequence one
 * per packet, count = template records + data records. */
static void test_template_refresh_by_packets(void)
{
	struct capture c;
	encoder *enc = new_encoder(&c, 512, FALSE, NETFLOW_TIMES_ABSOLUTE, 3, NULL);
	struct flow_record r = rec_udp4();
	g_autoptr(GError) error = NULL;
	guint64 data = 0;

	setup();
	for (int i = 0; i < 200; i++) {
		r.flow_id = (guint64)i;
		g_assert_true(encoder_add(enc, &r, &error));
	}
	g_assert_true(encoder_flush(enc, &error));
	g_assert_cmpuint(c.msgs->len, >, 10);
	for (guint i = 0; i < c.msgs->len; i++) {
		struct packet pk;
		GBytes *b = g_ptr_array_index(c.msgs, i);
		g_assert_cmpuint(g_bytes_get_size(b), <=, 512);
		decode(b, &pk);
		g_assert_cmpuint(pk.seq, ==, i);
		g_assert_cmpuint(pk.templates, ==, i % 3 == 0 ? 4 : 0);
		g_assert_cmpuint(capture_count(&c, i), ==, pk.data);
		for (guint k = 0; k < pk.data; k++)
			g_assert_cmpuint(g_array_index(pk.recs, struct rec, k).v[148], ==, data + k);
		data += pk.data;
		g_array_unref(pk.recs);
	}
	g_assert_cmpuint(data, ==, 200);
	/* the timer's refresh: a packet of templates alone, next in sequence */
	guint before = c.msgs->len;
	g_assert_true(encoder_refresh_templates(enc, &error));
	g_assert_cmpuint(c.msgs->len, ==, before + 1);
	struct packet pk;
	decode(g_ptr_array_index(c.msgs, before), &pk);
	g_assert_cmpuint(pk.seq, ==, before);
	g_assert_cmpuint(pk.templates, ==, 4);
	g_assert_cmpuint(pk.data, ==, 0);
	g_array_unref(pk.recs);
	/* a new session starts the sequence again, with templates */
	g_assert_true(encoder_start_session(enc, &error));
	decode(g_ptr_array_index(c.msgs, c.msgs->len - 1), &pk);
	g_assert_cmpuint(pk.seq, ==, 0);
	g_assert_cmpuint(pk.templates, ==, 4);
	g_array_unref(pk.recs);
	encoder_free(enc);
	capture_clear(&c);
	teardown();
}

/* Encodes @r alone with uptime times; @pk is its packet, after the one of
 * templates that starts the session. */
static void encode_uptime(struct capture *c, gboolean uniflow, const struct flow_record *r,
			  struct packet *pk)
{
	encoder *enc = new_encoder(c, 1472, uniflow, NETFLOW_TIMES_UPTIME, 0, NULL);
	g_autoptr(GError) error = NULL;

	g_assert_true(encoder_add(enc, r, &error));
	g_assert_true(encoder_flush(enc, &error));
	g_assert_cmpuint(c->msgs->len, ==, 2);
	decode(g_ptr_array_index(c->msgs, 0), pk);
	g_array_unref(pk->recs);
	decode(g_ptr_array_index(c->msgs, 1), pk);
	encoder_free(enc);
}

/* Uptime times: boot = header secs * 1000 - sysUptime, and boot + FIRST /
 * LAST give the flow's start and end ms back, also for a connection that
 * began days before the exporter. */
static void test_uptime_times(void)
{
	struct capture c;
	struct flow_record r = rec_udp4();
	uint64_t now_ns = (uint64_t)g_get_real_time() * 1000u;
	struct packet pk;

	setup();
	r.start_ns = now_ns - 10ull * 24 * 3600 * 1000000000ull + 123456789;  /* 10 days ago */
	r.end_ns = now_ns - 5000000;
	encode_uptime(&c, TRUE, &r, &pk);
	/* uniflow: a record per direction, both of this connection's packet */
	g_assert_cmpuint(pk.data, ==, 2);
	g_assert_cmpuint(capture_count(&c, 1), ==, 1);
	uint64_t boot = (uint64_t)pk.secs * 1000u - pk.uptime;
	for (guint k = 0; k < 2; k++) {
		const struct rec *x = &g_array_index(pk.recs, struct rec, k);
		g_assert_true(x->has[22] && x->has[21] && !x->has[152] && !x->has[23]);
		g_assert_cmpuint(boot + x->v[22], ==, r.start_ns / 1000000);
		g_assert_cmpuint(boot + x->v[21], ==, r.end_ns / 1000000);
		/* no flow ends after its packet's sysUptime */
		g_assert_cmpuint(x->v[21], <=, pk.uptime);
		g_assert_cmpuint(x->v[239], ==, k + 1);
		g_assert_cmpuint(x->v[2], ==, k ? r.reply_packets : r.packets);
	}
	const struct rec *rep = &g_array_index(pk.recs, struct rec, 1);
	g_assert_cmpuint(rep->v[7], ==, 53);
	g_assert_cmpmem(rep->raw[8], 4, r.reply.src, 4);
	g_array_unref(pk.recs);
	capture_clear(&c);
	teardown();
}

/* A connection older than sysUptime's reference (2^31 ms before the
 * encoder started) starts at the reference itself: FIRST_SWITCHED 0. */
static void test_uptime_before_reference(void)
{
	struct capture c;
	struct flow_record r = rec_udp4();
	uint64_t now_ns = (uint64_t)g_get_real_time() * 1000u;
	struct packet pk;

	setup();
	r.start_ns = now_ns - 30ull * 24 * 3600 * 1000000000ull;
	r.end_ns = now_ns - 1000000000ull;
	encode_uptime(&c, FALSE, &r, &pk);
	const struct rec *x = &g_array_index(pk.recs, struct rec, 0);
	g_assert_cmpuint(x->v[22], ==, 0);
	g_assert_cmpuint((uint64_t)pk.secs * 1000u - pk.uptime + x->v[21], ==, r.end_ns / 1000000);
	/* the reference: 2^31 ms before now, to the second the header rounds to */
	g_assert_cmpuint(pk.uptime, >=, UINT64_C(1) << 31);
	g_assert_cmpuint(pk.uptime, <, (UINT64_C(1) << 31) + 2000);
	g_array_unref(pk.recs);
	capture_clear(&c);
	teardown();
}

/* records = nat-events: the RFC 8158 NAT44 session template (264) after
 * the flow ones, and one event record per create and delete, byte for
 * byte.  A DESTROY whose NEW was lost gives a late create (which v9 cannot
 * mark) and its delete; untranslated and IPv6 connections give nothing
 * and count as passed over, the IPv6 one also as left out. */
static void test_nat_events(void)
{
	struct capture c;
	struct export_config cfg = {
		.name = (char *)"test",
		.format = EXPORT_FORMAT_NETFLOW9,
		.transport = EXPORT_TRANSPORT_UDP,
		.mtu = 1472,
		.observation_domain = 1,
		.netflow_times = NETFLOW_TIMES_ABSOLUTE,
		.template_packets = 20,
		.records = EXPORT_RECORDS_NAT_EVENTS,
	};
	encoder *enc = capture_encoder(&cfg, &c);
	struct flow_record create = rec_udp4(), late = rec_udp4(), plain = rec_udp4(),
			   v6 = rec_udp4();
	g_autoptr(GError) error = NULL;
	struct packet pk;

	setup();
	capture_set_addr(create.reply.dst, AF_INET, "203.0.113.5");
	create.reply.dport = 61000;
	create.event = FLOW_EVENT_NEW;
	create.end_ns = 1700000040123456789ull;   /* when the NEW was read */
	late = create;
	late.event = FLOW_EVENT_DESTROY;
	late.flags |= FLOW_LATE;
	late.end_ns = 1700000030987654321ull;
	v6 = late;
	v6.family = AF_INET6;
	capture_set_addr(v6.orig.src, AF_INET6, "2001:db8::1");
	capture_set_addr(v6.reply.dst, AF_INET6, "2001:db8::99");
	g_assert_true(encoder_add(enc, &create, &error));
	g_assert_true(encoder_add(enc, &late, &error));
	g_assert_true(encoder_add(enc, &plain, &error));
	g_assert_true(encoder_add(enc, &v6, &error));
	g_assert_true(encoder_flush(enc, &error));
	g_assert_no_error(error);

	g_assert_cmpuint(c.msgs->len, ==, 2);
	decode(g_ptr_array_index(c.msgs, 0), &pk);
	g_assert_cmpuint(pk.templates, ==, 5);
	g_array_unref(pk.recs);
	static const uint16_t want_fields[][2] = {
		{ 323, 8 }, { 234, 4 }, { 8, 4 }, { 225, 4 }, { 12, 4 }, { 226, 4 },
		{ 7, 2 }, { 227, 2 }, { 11, 2 }, { 228, 2 }, { 230, 1 }, { 4, 1 },
	};
	const struct tmpl *t = g_hash_table_lookup(templates, GUINT_TO_POINTER(264));
	g_assert_nonnull(t);
	g_assert_cmpuint(t->n, ==, G_N_ELEMENTS(want_fields));
	for (guint i = 0; i < t->n; i++) {
		g_assert_cmpuint(t->type[i], ==, want_fields[i][0]);
		g_assert_cmpuint(t->len[i], ==, want_fields[i][1]);
	}

	/* all four records end with the one packet of events */
	g_assert_cmpuint(capture_count(&c, 1), ==, 4);
	decode(g_ptr_array_index(c.msgs, 1), &pk);
	g_assert_cmpuint(pk.data, ==, 3);
	static const uint8_t want_create[38] = {
		0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe6, 0x04, 0xbb,   /* 1700000040123 ms */
		0x00, 0x00, 0x00, 0x07,                           /* VRF: the zone */
		192, 0, 2, 10, 203, 0, 113, 5,                    /* source, post-NAT */
		198, 51, 100, 20, 198, 51, 100, 20,               /* destination, post-NAT */
		0x9c, 0x40, 0xee, 0x48,                           /* 40000, 61000 */
		0x00, 0x35, 0x00, 0x35,                           /* 53, 53 */
		4, IPPROTO_UDP,                                   /* create */
	};
	const struct rec *e = &g_array_index(pk.recs, struct rec, 0);
	g_assert_cmpuint(e->tid, ==, 264);
	g_assert_cmpmem(e->bytes, e->len, want_create, sizeof(want_create));
	/* the late create: at the connection's start; then the delete at its end */
	uint8_t want[38];
	memcpy(want, want_create, sizeof(want));
	memcpy(want, (const uint8_t[]){ 0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x7b }, 8);
	e = &g_array_index(pk.recs, struct rec, 1);
	g_assert_cmpmem(e->bytes, e->len, want, sizeof(want));
	memcpy(want, (const uint8_t[]){ 0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0xe1, 0x0b }, 8);
	want[36] = 5;
	e = &g_array_index(pk.recs, struct rec, 2);
	g_assert_cmpmem(e->bytes, e->len, want, sizeof(want));
	g_array_unref(pk.recs);
	encoder_free(enc);
	capture_clear(&c);
	teardown();
}

/* An ICMP session: its query id on both sides of the NAT where the source
 * ports are, no destination ports. */
static void test_nat_event_icmp(void)
{
	struct capture c;
	struct export_config cfg = {
		.name = (char *)"test",
		.format = EXPORT_FORMAT_NETFLOW9,
		.transport = EXPORT_TRANSPORT_UDP,
		.netflow_times = NETFLOW_TIMES_ABSOLUTE,
		.records = EXPORT_RECORDS_BOTH,
	};
	encoder *enc = capture_encoder(&cfg, &c);
	struct flow_record r = rec_udp4();
	g_autoptr(GError) error = NULL;
	struct packet pk;

	setup();
	r.proto = IPPROTO_ICMP;
	r.icmp_type = 8;
	r.orig.sport = 0x1234;
	r.orig.dport = 0;
	capture_set_addr(r.reply.dst, AF_INET, "203.0.113.5");
	r.reply.sport = 0x5678;
	r.reply.dport = 0;
	g_assert_true(encoder_add(enc, &r, &error));
	g_assert_true(encoder_flush(enc, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(c.msgs->len, ==, 2);
	g_assert_cmpuint(capture_count(&c, 1), ==, 1);
	decode(g_ptr_array_index(c.msgs, 0), &pk);
	g_array_unref(pk.recs);
	decode(g_ptr_array_index(c.msgs, 1), &pk);
	/* records = both: the flow, then its delete, in one packet */
	g_assert_cmpuint(pk.data, ==, 2);
	g_assert_cmpuint(g_array_index(pk.recs, struct rec, 0).tid, ==, 258);
	const struct rec *e = &g_array_index(pk.recs, struct rec, 1);
	g_assert_cmpuint(e->tid, ==, 264);
	g_assert_cmpuint(e->v[230], ==, 5);
	g_assert_cmpuint(e->v[7], ==, 0x1234);
	g_assert_cmpuint(e->v[227], ==, 0x5678);
	g_assert_cmpuint(e->v[11], ==, 0);
	g_assert_cmpuint(e->v[228], ==, 0);
	g_assert_cmpuint(e->v[4], ==, IPPROTO_ICMP);
	g_array_unref(pk.recs);
	encoder_free(enc);
	capture_clear(&c);
	teardown();
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/netflow9/session-starts-with-templates", test_session_starts_with_templates);
	g_test_add_func("/netflow9/fields-and-counts", test_fields_and_counts);
	g_test_add_func("/netflow9/template-refresh-by-packets", test_template_refresh_by_packets);
	g_test_add_func("/netflow9/uptime-times", test_uptime_times);
	g_test_add_func("/netflow9/uptime-before-reference", test_uptime_before_reference);
	g_test_add_func("/netflow9/nat-events", test_nat_events);
	g_test_add_func("/netflow9/nat-event-icmp", test_nat_event_icmp);
	return g_test_run();
}
