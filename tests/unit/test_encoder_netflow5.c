/*
 * test_encoder_netflow5.c - flow records as NetFlow v5 export packets.
 *
 * Packets are read back field by field as the v5 format lays them out.
 * Checked: a record per direction (the reply one with the reply tuple, left
 * out when the reply had no packet), counters above 32 bits split over
 * records whose sums are exact, at most 30 records a packet, the header's
 * flow_sequence counting records, engine type and id, First/Last against
 * the header's clock, and IPv6 connections left out and counted without a
 * packet of their own.
 */
#include <arpa/inet.h>
#include <glib.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "encoder_capture.h"

static encoder *new_encoder(struct capture *c, guint mtu)
{
	struct export_config cfg = {
		.name = (char *)"test",
		.format = EXPORT_FORMAT_NETFLOW5,
		.transport = EXPORT_TRANSPORT_UDP,
		.mtu = mtu,
		.engine_type = 3,
		.engine_id = 201,
	};
	encoder *enc = capture_encoder(&cfg, c);
	/* v5 has no templates: nothing before the first record */
	g_assert_cmpuint(c->msgs->len, ==, 0);
	return enc;
}

#define get16 capture_get16
#define get32 capture_get32

struct v5rec {
	uint8_t src[4], dst[4];
	uint32_t pkts, bytes, first, last;
	uint16_t sport, dport;
	uint8_t proto;
};

struct v5packet {
	uint16_t count;
	uint32_t uptime, secs, nsecs, seq;
	uint8_t engine_type, engine_id;
	struct v5rec recs[30];
};

static void decode(GBytes *b, struct v5packet *pk)
{
	gsize len;
	const uint8_t *m = g_bytes_get_data(b, &len);

	g_assert_cmpuint(len, >=, 24);
	g_assert_cmpuint(get16(m), ==, 5);
	pk->count = get16(m + 2);
	g_assert_cmpuint(pk->count, >=, 1);
	g_assert_cmpuint(pk->count, <=, 30);
	g_assert_cmpuint(len, ==, 24u + 48u * pk->count);
	pk->uptime = get32(m + 4);
	pk->secs = get32(m + 8);
	pk->nsecs = get32(m + 12);
	pk->seq = get32(m + 16);
	pk->engine_type = m[20];
	pk->engine_id = m[21];
	g_assert_cmpuint(get16(m + 22), ==, 0);
	for (guint i = 0; i < pk->count; i++) {
		const uint8_t *p = m + 24 + 48 * i;
		struct v5rec *r = &pk->recs[i];
		memcpy(r->src, p, 4);
		memcpy(r->dst, p + 4, 4);
		r->pkts = get32(p + 16);
		r->bytes = get32(p + 20);
		r->first = get32(p + 24);
		r->last = get32(p + 28);
		r->sport = get16(p + 32);
		r->dport = get16(p + 34);
		r->proto = p[38];
	}
}

static struct flow_record rec_tcp4(void)
{
	uint64_t now_ns = (uint64_t)g_get_real_time() * 1000u;
	struct flow_record r = {
		.start_ns = now_ns - 3600ull * 1000000000ull + 987654321,
		.end_ns = now_ns - 1000000000ull,
		.packets = 10,
		.bytes = 1000,
		.reply_packets = 8,
		.reply_bytes = 6000,
		.orig = {.sport = 40000, .dport = 443},
		.reply = {.sport = 443, .dport = 40000},
		.family = AF_INET,
		.proto = IPPROTO_TCP,
		.end_reason = FLOW_END_OF_FLOW,
		.flags = FLOW_HAS_COUNTERS | FLOW_HAS_TIMESTAMPS,
	};
	capture_set_addr(r.orig.src, AF_INET, "192.0.2.10");
	capture_set_addr(r.orig.dst, AF_INET, "198.51.100.20");
	capture_set_addr(r.reply.src, AF_INET, "198.51.100.20");
	capture_set_addr(r.reply.dst, AF_INET, "192.0.2.10");
	return r;
}

static void test_directions(void)
{
	struct capture c;
	encoder *enc = new_encoder(&c, 0);
	struct flow_record r = rec_tcp4(), oneway = rec_tcp4();
	g_autoptr(GError) error = NULL;
	struct v5packet pk;

	oneway.reply_packets = oneway.reply_bytes = 0;
	g_assert_true(encoder_add(enc, &r, &error));
	g_assert_true(encoder_add(enc, &oneway, &error));
	g_assert_true(encoder_flush(enc, &error));
	g_assert_cmpuint(c.msgs->len, ==, 1);
	g_assert_cmpuint(capture_count(&c, 0), ==, 2);
	decode(g_ptr_array_index(c.msgs, 0), &pk);
	g_assert_cmpuint(pk.count, ==, 3);
	g_assert_cmpuint(pk.seq, ==, 0);
	g_assert_cmpuint(pk.engine_type, ==, 3);
	g_assert_cmpuint(pk.engine_id, ==, 201);
	g_assert_cmpuint(pk.nsecs, ==, 0);
	uint64_t boot = (uint64_t)pk.secs * 1000u - pk.uptime;
	/* forward */
	g_assert_cmpmem(pk.recs[0].src, 4, r.orig.src, 4);
	g_assert_cmpuint(pk.recs[0].sport, ==, 40000);
	g_assert_cmpuint(pk.recs[0].dport, ==, 443);
	g_assert_cmpuint(pk.recs[0].pkts, ==, 10);
	g_assert_cmpuint(pk.recs[0].bytes, ==, 1000);
	g_assert_cmpuint(pk.recs[0].proto, ==, IPPROTO_TCP);
	g_assert_cmpuint(boot + pk.recs[0].first, ==, r.start_ns / 1000000);
	g_assert_cmpuint(boot + pk.recs[0].last, ==, r.end_ns / 1000000);
	/* reply, with the reply tuple */
	g_assert_cmpmem(pk.recs[1].src, 4, r.reply.src, 4);
	g_assert_cmpmem(pk.recs[1].dst, 4, r.reply.dst, 4);
	g_assert_cmpuint(pk.recs[1].sport, ==, 443);
	g_assert_cmpuint(pk.recs[1].pkts, ==, 8);
	g_assert_cmpuint(pk.recs[1].bytes, ==, 6000);
	/* one way: the forward record only */
	g_assert_cmpmem(pk.recs[2].src, 4, r.orig.src, 4);
	/* the next packet's sequence counts the records before it */
	g_assert_true(encoder_add(enc, &oneway, &error));
	g_assert_true(encoder_flush(enc, &error));
	decode(g_ptr_array_index(c.msgs, 1), &pk);
	g_assert_cmpuint(pk.seq, ==, 3);
	encoder_free(enc);
	capture_clear(&c);
}

/* Counters over 2^32 - 1: split into records that each fit, sums exact;
 * a connection spread over several packets counts in its last one. */
static void test_split_exact(void)
{
	struct capture c;
	encoder *enc = new_encoder(&c, 0);
	struct flow_record r = rec_tcp4();
	g_autoptr(GError) error = NULL;

	r.packets = 5000000000ull;                 /* over 2^32 */
	r.bytes = 3000000000000ull;                /* 699 records' worth */
	r.reply_packets = 4294967295ull + 1;       /* just over: 2 records */
	r.reply_bytes = 7;
	g_assert_true(encoder_add(enc, &r, &error));
	g_assert_true(encoder_flush(enc, &error));
	g_assert_no_error(error);

	uint64_t fp = 0, fb = 0, rp = 0, rb = 0, n_fwd = 0, n_rep = 0, seq = 0;
	guint connections = 0;
	for (guint i = 0; i < c.msgs->len; i++) {
		struct v5packet pk;
		decode(g_ptr_array_index(c.msgs, i), &pk);
		g_assert_cmpuint(pk.seq, ==, seq);
		seq += pk.count;
		connections += capture_count(&c, i);
		g_assert_cmpuint(capture_count(&c, i), ==, i + 1 == c.msgs->len);
		for (guint k = 0; k < pk.count; k++) {
			if (pk.recs[k].sport == 40000) {
				fp += pk.recs[k].pkts;
				fb += pk.recs[k].bytes;
				n_fwd++;
			} else {
				rp += pk.recs[k].pkts;
				rb += pk.recs[k].bytes;
				n_rep++;
			}
		}
	}
	g_assert_cmpuint(connections, ==, 1);
	g_assert_cmpuint(fp, ==, r.packets);
	g_assert_cmpuint(fb, ==, r.bytes);
	g_assert_cmpuint(rp, ==, r.reply_packets);
	g_assert_cmpuint(rb, ==, r.reply_bytes);
	g_assert_cmpuint(n_fwd, ==, 699);   /* ceil(3e12 / (2^32 - 1)) */
	g_assert_cmpuint(n_rep, ==, 2);
	g_assert_cmpuint(c.msgs->len, ==, (699 + 2 + 29) / 30);
	g_assert_cmpuint(encoder_pending(enc), ==, 0);
	encoder_free(enc);
	capture_clear(&c);
}

static void test_thirty_per_packet(void)
{
	struct capture c;
	encoder *enc = new_encoder(&c, 0);
	struct flow_record r = rec_tcp4();
	g_autoptr(GError) error = NULL;

	r.reply_packets = 0;
	for (int i = 0; i < 61; i++)
		g_assert_true(encoder_add(enc, &r, &error));
	g_assert_true(encoder_flush(enc, &error));
	g_assert_cmpuint(c.msgs->len, ==, 3);
	g_assert_cmpuint(g_bytes_get_size(g_ptr_array_index(c.msgs, 0)), ==, 24 + 30 * 48);
	g_assert_cmpuint(capture_count(&c, 0), ==, 30);
	g_assert_cmpuint(capture_count(&c, 2), ==, 1);
	encoder_free(enc);
	capture_clear(&c);
}

/* A smaller limit than 30 records: fewer per packet, a connection's two
 * records never split between two packets. */
static void test_small_limit(void)
{
	struct capture c;
	encoder *enc = new_encoder(&c, 512);
	struct flow_record r = rec_tcp4();
	g_autoptr(GError) error = NULL;

	for (int i = 0; i < 10; i++)
		g_assert_true(encoder_add(enc, &r, &error));
	g_assert_true(encoder_flush(enc, &error));
	guint total = 0;
	for (guint i = 0; i < c.msgs->len; i++) {
		struct v5packet pk;
		g_assert_cmpuint(g_bytes_get_size(g_ptr_array_index(c.msgs, i)), <=, 512);
		decode(g_ptr_array_index(c.msgs, i), &pk);
		g_assert_cmpuint(pk.count, ==, 2 * capture_count(&c, i));
		total += capture_count(&c, i);
	}
	g_assert_cmpuint(total, ==, 10);
	encoder_free(enc);
	capture_clear(&c);
}

static void test_ipv6_skipped(void)
{
	struct capture c;
	encoder *enc = new_encoder(&c, 0);
	struct flow_record r = rec_tcp4(), r6 = rec_tcp4();
	g_autoptr(GError) error = NULL;
	struct v5packet pk;

	r6.family = AF_INET6;
	capture_set_addr(r6.orig.src, AF_INET6, "2001:db8::1");
	/* alone: handed over as done, in a message of 0 bytes (not sent) */
	g_assert_true(encoder_add(enc, &r6, &error));
	g_assert_cmpuint(c.msgs->len, ==, 1);
	g_assert_cmpuint(g_bytes_get_size(g_ptr_array_index(c.msgs, 0)), ==, 0);
	g_assert_cmpuint(capture_count(&c, 0), ==, 1);
	g_assert_cmpuint(encoder_pending(enc), ==, 0);
	/* after an IPv4 one: counted in its packet */
	g_assert_true(encoder_add(enc, &r, &error));
	g_assert_true(encoder_add(enc, &r6, &error));
	g_assert_cmpuint(encoder_pending(enc), ==, 2);
	g_assert_true(encoder_flush(enc, &error));
	g_assert_cmpuint(c.msgs->len, ==, 2);
	g_assert_cmpuint(capture_count(&c, 1), ==, 2);
	decode(g_ptr_array_index(c.msgs, 1), &pk);
	g_assert_cmpuint(pk.count, ==, 2);
	g_assert_cmpuint(encoder_skipped(enc), ==, 2);
	encoder_free(enc);
	capture_clear(&c);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/netflow5/directions", test_directions);
	g_test_add_func("/netflow5/split-exact", test_split_exact);
	g_test_add_func("/netflow5/thirty-per-packet", test_thirty_per_packet);
	g_test_add_func("/netflow5/small-limit", test_small_limit);
	g_test_add_func("/netflow5/ipv6-skipped", test_ipv6_skipped);
	return g_test_run();
}
