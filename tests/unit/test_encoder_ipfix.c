/*
 * test_encoder_ipfix.c - flow records as IPFIX messages.
 *
 * The encoder's output is judged three ways: read back by libfixbuf's own
 * collector (every field of every record), parsed here byte by byte from
 * RFC 7011 (message header, sets, template records, sequence numbers, the
 * record counts handed to the transport), and, where installed, by
 * ipfixDump, a collector that shares nothing with the encoder but the
 * library.
 */
#include <arpa/inet.h>
#include <fixbuf/public.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>

#include "ctflowd/encoder.h"
#include "interim_example.h"
#include "encoder_capture.h"

#define DOMAIN 7
#define TID_FLOW4 256
#define TID_FLOW6 257
#define TID_FLOW4_NAT 264
#define TID_FLOW6_NAT 265
#define TID_UNI4 266
#define TID_UNI6 267
#define TID_UNI4_NAT 268
#define TID_UNI6_NAT 269
#define IPFIX_HEADER_LEN 16
#define SET_HEADER_LEN 4
#define TEMPLATE_SET_ID 2
#define OPTIONS_TEMPLATE_SET_ID 3

/* ------------------------------------------------------------------------ */
/* Capturing what the encoder emits                                          */
/* ------------------------------------------------------------------------ */

/* struct capture and its functions: encoder_capture.h */

/* @pen: the export's enterprise_number (0: none); @zone_vrf: its zone_vrf
 * (NULL: none); @uniflow: its uniflow */
/* the export's records key, for the encoders made from here on */
static enum export_records next_records = EXPORT_RECORDS_FLOWS;

static encoder *new_encoder_all(guint mtu, guint32 pen, const char *zone_vrf, gboolean uniflow,
				enum export_counters counters, struct capture *c)
{
	struct export_config cfg = {
		.records = next_records,
		.name = (char *)"test",
		.format = EXPORT_FORMAT_IPFIX,
		.transport = EXPORT_TRANSPORT_FILE,
		.mtu = mtu,
		.observation_domain = DOMAIN,
		.enterprise_number = pen,
		.zone_vrf = (char *)zone_vrf,
		.uniflow = uniflow,
		.counters = counters,
	};
	g_autoptr(GError) error = NULL;

	capture_init(c);
	encoder *enc = encoder_new(&cfg, capture_emit, c, &error);
	g_assert_no_error(error);
	g_assert_nonnull(enc);
	return enc;
}

static encoder *new_encoder_full(guint mtu, guint32 pen, const char *zone_vrf, gboolean uniflow,
				 struct capture *c)
{
	return new_encoder_all(mtu, pen, zone_vrf, uniflow, EXPORT_COUNTERS_DELTA, c);
}

static encoder *new_encoder_counters(enum export_counters counters, gboolean uniflow,
				     struct capture *c)
{
	return new_encoder_all(65000, 0, NULL, uniflow, counters, c);
}

static encoder *new_encoder(guint mtu, struct capture *c)
{
	return new_encoder_full(mtu, 0, NULL, FALSE, c);
}

static encoder *new_encoder_pen(guint mtu, guint32 pen, struct capture *c)
{
	return new_encoder_full(mtu, pen, NULL, FALSE, c);
}

static encoder *new_encoder_opts(guint mtu, const char *zone_vrf, gboolean uniflow,
				 struct capture *c)
{
	return new_encoder_full(mtu, 0, zone_vrf, uniflow, c);
}

static void add_ok(encoder *enc, const struct flow_record *r)
{
	g_autoptr(GError) error = NULL;

	g_assert_true(encoder_add(enc, r, &error));
	g_assert_no_error(error);
}

static void flush_ok(encoder *enc)
{
	g_autoptr(GError) error = NULL;

	g_assert_true(encoder_flush(enc, &error));
	g_assert_no_error(error);
}

static void start_ok(encoder *enc)
{
	g_autoptr(GError) error = NULL;

	g_assert_true(encoder_start_session(enc, &error));
	g_assert_no_error(error);
}

/* ------------------------------------------------------------------------ */
/* Records                                                                   */
/* ------------------------------------------------------------------------ */

static void set_addr(uint8_t out[16], int family, const char *text)
{
	memset(out, 0, 16);
	g_assert_cmpint(inet_pton(family, text, out), ==, 1);
}

/* Values chosen so that a byte-order slip, a 32-bit truncation or a swap of
 * the directions changes them. */
static struct flow_record rec_udp4(void)
{
	struct flow_record r = {
		.start_ns = 1700000000123456789ull,
		.end_ns = 1700000030987654321ull,
		.packets = 0x0000000200000003ull,
		.bytes = 0x0000001234567890ull,
		.reply_packets = 5,
		.reply_bytes = 0x00000000deadbeefull,
		.flow_id = 0xfedcba9876543210ull,
		.orig = {.sport = 40000, .dport = 53},
		/* masqueraded: the reply goes to the router's address and port */
		.reply = {.sport = 53, .dport = 61000},
		.ct_id = 0x8badf00d,
		.mark = 0x80c0ffee,
		.status = 0x18e,
		.zone = 0x0102,
		.family = AF_INET,
		.proto = IPPROTO_UDP,
		.end_reason = FLOW_END_IDLE_TIMEOUT,
		.flags = FLOW_HAS_COUNTERS | FLOW_HAS_TIMESTAMPS | FLOW_HAS_ID,
		.event = FLOW_EVENT_DESTROY,
	};
	set_addr(r.orig.src, AF_INET, "192.0.2.10");
	set_addr(r.orig.dst, AF_INET, "198.51.100.20");
	set_addr(r.reply.src, AF_INET, "198.51.100.20");
	set_addr(r.reply.dst, AF_INET, "203.0.113.5");
	return r;
}

static struct flow_record rec_tcp6(void)
{
	struct flow_record r = rec_udp4();

	r.family = AF_INET6;
	r.proto = IPPROTO_TCP;
	set_addr(r.orig.src, AF_INET6, "2001:db8:1:2:3:4:5:6");
	set_addr(r.orig.dst, AF_INET6, "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff");
	memcpy(r.reply.src, r.orig.dst, 16);
	memcpy(r.reply.dst, r.orig.src, 16);
	r.orig.sport = 51515;
	r.orig.dport = 443;
	r.reply.sport = 443;
	r.reply.dport = 51515;
	r.packets = 0xffffffffffffffffull;
	r.bytes = 0x8000000000000001ull;
	r.reply_packets = 0x100000000ull;
	r.reply_bytes = 0x1122334455667788ull;
	r.start_ns = 999999;       /* rounds down to 0 ms */
	r.end_ns = 1000000;        /* exactly 1 ms */
	r.flow_id = 1;
	r.end_reason = FLOW_END_OF_FLOW;
	r.tcp_state = 7;
	return r;
}

static struct flow_record rec_icmp4(void)
{
	struct flow_record r = rec_udp4();

	r.proto = IPPROTO_ICMP;
	r.icmp_type = 8;
	r.icmp_code = 0;
	r.orig.sport = 0x4d2e; /* the echo id stands where a port would */
	r.orig.dport = 0;
	r.reply.sport = 0x4d2e;
	r.reply.dport = 0;
	r.end_reason = FLOW_END_FORCED;
	r.flow_id = 0x0000000100000000ull;
	return r;
}

static struct flow_record rec_icmp6(void)
{
	struct flow_record r = rec_tcp6();

	r.proto = IPPROTO_ICMPV6;
	r.icmp_type = 1; /* destination unreachable */
	r.icmp_code = 4; /* port unreachable */
	r.orig.sport = 0x1f2e;
	r.orig.dport = 0;
	r.end_reason = FLOW_END_LACK_OF_RESOURCES;
	r.flow_id = 0x7fffffffffffffffull;
	return r;
}

static struct flow_record rec_udp6_active(void)
{
	struct flow_record r = rec_tcp6();

	r.proto = IPPROTO_UDP;
	r.orig.sport = 5353;
	r.orig.dport = 5353;
	r.end_reason = FLOW_END_ACTIVE_TIMEOUT;
	r.start_ns = 1700000000000000000ull;
	r.end_ns = 1700000000999999999ull;
	r.flow_id = 0xffffffffffffffffull;
	return r;
}

/* Record number @i of a reproducible stream mixing families and protocols. */
static struct flow_record rec_numbered(guint64 i)
{
	struct flow_record r;

	switch (i % 5) {
	case 0: r = rec_udp4(); break;
	case 1: r = rec_tcp6(); break;
	case 2: r = rec_icmp4(); break;
	case 3: r = rec_icmp6(); break;
	default: r = rec_udp6_active(); break;
	}
	r.flow_id = i * 0x9e3779b97f4a7c15ull;
	r.bytes += i << 33;
	r.packets ^= i;
	r.start_ns += i * 1000000;
	r.end_ns = r.start_ns + 5000000000ull;
	r.orig.src[3] ^= (uint8_t)i;
	if (!flow_is_icmp(&r))
		r.orig.sport = (uint16_t)(1024 + i);
	else
		r.icmp_code = (uint8_t)(i & 0x0f);
	return r;
}

/* ------------------------------------------------------------------------ */
/* Reading back with libfixbuf                                               */
/* ------------------------------------------------------------------------ */

#define COLL_TID 0x9999

/* Both families, with and without NAT, in one layout: elements a message
 * lacks read as zeroes. */
struct coll_rec {
	uint64_t flowStartMilliseconds;
	uint64_t flowEndMilliseconds;
	uint64_t octetDeltaCount;
	uint64_t packetDeltaCount;
	uint64_t reverseOctetDeltaCount;
	uint64_t reversePacketDeltaCount;
	uint64_t octetTotalCount;
	uint64_t packetTotalCount;
	uint64_t reverseOctetTotalCount;
	uint64_t reversePacketTotalCount;
	uint64_t flowId;
	uint8_t sourceIPv6Address[16];
	uint8_t destinationIPv6Address[16];
	uint8_t postNATSourceIPv6Address[16];
	uint8_t postNATDestinationIPv6Address[16];
	uint32_t sourceIPv4Address;
	uint32_t destinationIPv4Address;
	uint32_t postNATSourceIPv4Address;
	uint32_t postNATDestinationIPv4Address;
	uint32_t observationDomainId;
	uint32_t ingressVRFID;
	uint16_t sourceTransportPort;
	uint16_t destinationTransportPort;
	uint16_t postNAPTSourceTransportPort;
	uint16_t postNAPTDestinationTransportPort;
	uint16_t icmpTypeCodeIPv4;
	uint16_t icmpTypeCodeIPv6;
	uint8_t protocolIdentifier;
	uint8_t flowEndReason;
	uint8_t biflowDirection;
	uint8_t paddingOctets[1];
};
_Static_assert(offsetof(struct coll_rec, paddingOctets) == 191, "coll_rec layout");
_Static_assert(sizeof(struct coll_rec) == 192, "coll_rec size");

#define IE(name, len) { (char *)(name), (len), 0 }
static fbInfoElementSpec_t coll_spec[] = {
	IE("flowStartMilliseconds", 8),
	IE("flowEndMilliseconds", 8),
	IE("octetDeltaCount", 8),
	IE("packetDeltaCount", 8),
	IE("reverseOctetDeltaCount", 8),
	IE("reversePacketDeltaCount", 8),
	IE("octetTotalCount", 8),
	IE("packetTotalCount", 8),
	IE("reverseOctetTotalCount", 8),
	IE("reversePacketTotalCount", 8),
	IE("flowId", 8),
	IE("sourceIPv6Address", 16),
	IE("destinationIPv6Address", 16),
	IE("postNATSourceIPv6Address", 16),
	IE("postNATDestinationIPv6Address", 16),
	IE("sourceIPv4Address", 4),
	IE("destinationIPv4Address", 4),
	IE("postNATSourceIPv4Address", 4),
	IE("postNATDestinationIPv4Address", 4),
	IE("observationDomainId", 4),
	IE("ingressVRFID", 4),
	IE("sourceTransportPort", 2),
	IE("destinationTransportPort", 2),
	IE("postNAPTSourceTransportPort", 2),
	IE("postNAPTDestinationTransportPort", 2),
	IE("icmpTypeCodeIPv4", 2),
	IE("icmpTypeCodeIPv6", 2),
	IE("protocolIdentifier", 1),
	IE("flowEndReason", 1),
	IE("biflowDirection", 1),
	IE("paddingOctets", 1),
	FB_IESPEC_NULL
};

struct collected {
	struct coll_rec rec;
	uint16_t ext_tid;   /* template the record came with */
	uint32_t domain;    /* observation domain of its message */
	guint msg;          /* index of its message */
};

/* A collecting buffer whose records come out in the layout of @spec
 * (template @tid); free with fBufFree() and then *@model. */
static fBuf_t *collector_for(fbInfoElementSpec_t *spec, uint16_t tid, fbInfoModel_t **model)
{
	g_autoptr(GError) error = NULL;
	*model = fbInfoModelAlloc();
	fbSession_t *session = fbSessionAlloc(*model);
	fbTemplate_t *tmpl = fbTemplateAlloc(*model);

	g_assert_true(fbTemplateAppendSpecArray(tmpl, spec, UINT32_MAX, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(fbSessionAddTemplate(session, TRUE, tid, tmpl, &error), ==, tid);
	g_assert_no_error(error);
	fBuf_t *fbuf = fBufAllocForCollection(session, NULL);
	g_assert_true(fBufSetInternalTemplate(fbuf, tid, &error));
	g_assert_no_error(error);
	return fbuf;
}

/* Reads messages [from, to) of @c as one collector session would. */
static GArray *read_back(const struct capture *c, guint from, guint to)
{
	GArray *out = g_array_new(FALSE, TRUE, sizeof(struct collected));
	g_autoptr(GError) error = NULL;
	fbInfoModel_t *model = NULL;
	fBuf_t *fbuf = collector_for(coll_spec, COLL_TID, &model);
	fbSession_t *session = fBufGetSession(fbuf);

	for (guint m = from; m < to; m++) {
		gsize len;
		const uint8_t *data = g_bytes_get_data(g_ptr_array_index(c->msgs, m), &len);
		g_autofree uint8_t *copy = g_memdup2(data, len);

		fBufSetBuffer(fbuf, copy, len);
		for (;;) {
			struct collected got = {.msg = m};
			size_t reclen = sizeof(got.rec);
			if (!fBufNext(fbuf, (uint8_t *)&got.rec, &reclen, &error)) {
				/* the end of what was handed over */
				g_assert_error(error, FB_ERROR_DOMAIN, FB_ERROR_BUFSZ);
				g_clear_error(&error);
				break;
			}
			g_assert_cmpuint(reclen, ==, sizeof(got.rec));
			g_assert_nonnull(fBufGetCollectionTemplate(fbuf, &got.ext_tid));
			got.domain = fbSessionGetDomain(session);
			g_array_append_val(out, got);
		}
		g_assert_cmpuint(fBufRemaining(fbuf), ==, 0);
	}
	fBufFree(fbuf);
	fbInfoModelFree(model);
	return out;
}

static uint32_t v4_host(const uint8_t addr[16])
{
	uint32_t a;

	memcpy(&a, addr, 4);
	return ntohl(a);
}

/* @vrf: the ingressVRFID the record must carry */
static void check_collected_vrf(const struct collected *got, const struct flow_record *r,
				uint32_t vrf)
{
	static const uint8_t zero16[16];
	const struct coll_rec *c = &got->rec;

	g_assert_cmpuint(c->ingressVRFID, ==, vrf);

	g_assert_cmpuint(got->domain, ==, DOMAIN);
	g_assert_cmpuint(c->observationDomainId, ==, DOMAIN);
	g_assert_cmpuint(c->flowStartMilliseconds, ==, r->start_ns / 1000000);
	g_assert_cmpuint(c->flowEndMilliseconds, ==, r->end_ns / 1000000);
	/* counters = delta, the default: delta elements only */
	g_assert_cmpuint(c->octetDeltaCount, ==, r->bytes);
	g_assert_cmpuint(c->packetDeltaCount, ==, r->packets);
	g_assert_cmpuint(c->reverseOctetDeltaCount, ==, r->reply_bytes);
	g_assert_cmpuint(c->reversePacketDeltaCount, ==, r->reply_packets);
	g_assert_cmpuint(c->octetTotalCount, ==, 0);
	g_assert_cmpuint(c->reverseOctetTotalCount, ==, 0);
	g_assert_cmpuint(c->flowId, ==, r->flow_id);
	g_assert_cmpuint(c->protocolIdentifier, ==, r->proto);
	g_assert_cmpuint(c->flowEndReason, ==, r->end_reason);

	/* NAT: the post-NAT elements hold the reply tuple turned around, in
	 * a template of their own; without NAT none of them is sent */
	const gboolean nat = flow_is_translated(r);
	g_assert_cmpmem(c->postNATSourceIPv6Address, 16,
			nat && r->family == AF_INET6 ? r->reply.dst : zero16, 16);
	g_assert_cmpmem(c->postNATDestinationIPv6Address, 16,
			nat && r->family == AF_INET6 ? r->reply.src : zero16, 16);
	g_assert_cmphex(c->postNATSourceIPv4Address, ==,
			nat && r->family == AF_INET ? v4_host(r->reply.dst) : 0);
	g_assert_cmphex(c->postNATDestinationIPv4Address, ==,
			nat && r->family == AF_INET ? v4_host(r->reply.src) : 0);
	g_assert_cmpuint(c->postNAPTSourceTransportPort, ==,
			 nat && !flow_is_icmp(r) ? r->reply.dport : 0);
	g_assert_cmpuint(c->postNAPTDestinationTransportPort, ==,
			 nat && !flow_is_icmp(r) ? r->reply.sport : 0);

	if (r->family == AF_INET) {
		g_assert_cmpuint(got->ext_tid, ==, nat ? TID_FLOW4_NAT : TID_FLOW4);
		g_assert_cmphex(c->sourceIPv4Address, ==, v4_host(r->orig.src));
		g_assert_cmphex(c->destinationIPv4Address, ==, v4_host(r->orig.dst));
		g_assert_cmpmem(c->sourceIPv6Address, 16, zero16, 16);
		g_assert_cmpmem(c->destinationIPv6Address, 16, zero16, 16);
	} else {
		g_assert_cmpuint(got->ext_tid, ==, nat ? TID_FLOW6_NAT : TID_FLOW6);
		g_assert_cmpmem(c->sourceIPv6Address, 16, r->orig.src, 16);
		g_assert_cmpmem(c->destinationIPv6Address, 16, r->orig.dst, 16);
		g_assert_cmpuint(c->sourceIPv4Address, ==, 0);
		g_assert_cmpuint(c->destinationIPv4Address, ==, 0);
	}

	uint16_t type_code = (uint16_t)(r->icmp_type << 8 | r->icmp_code);
	if (flow_is_icmp(r)) {
		/* no ports; type/code also in the destination port, where
		 * NetFlow-era collectors look for it */
		g_assert_cmpuint(c->sourceTransportPort, ==, 0);
		g_assert_cmphex(c->destinationTransportPort, ==, type_code);
	} else {
		g_assert_cmpuint(c->sourceTransportPort, ==, r->orig.sport);
		g_assert_cmpuint(c->destinationTransportPort, ==, r->orig.dport);
	}
	g_assert_cmphex(c->icmpTypeCodeIPv4, ==, r->proto == IPPROTO_ICMP ? type_code : 0);
	g_assert_cmphex(c->icmpTypeCodeIPv6, ==, r->proto == IPPROTO_ICMPV6 ? type_code : 0);
}

/* Without zone_vrf, the zone number is the VRF id. */
static void check_collected(const struct collected *got, const struct flow_record *r)
{
	check_collected_vrf(got, r, r->zone);
}

/* ------------------------------------------------------------------------ */
/* Reading the bytes (RFC 7011 section 3)                                    */
/* ------------------------------------------------------------------------ */

struct field {
	uint16_t id;     /* without the enterprise bit */
	uint16_t len;
	uint32_t pen;
};

struct tmpl {
	GArray *fields;  /* struct field */
	guint reclen;
};

static void tmpl_free(gpointer p)
{
	struct tmpl *t = p;

	g_array_unref(t->fields);
	g_free(t);
}

/* What a collector knows about one transport session. */
struct wire_session {
	GHashTable *templates;   /* template id -> struct tmpl * */
	guint64 data_records;    /* in the messages read so far */
	guint messages;
};

struct wire_msg {
	uint16_t length;
	uint32_t seq;
	uint32_t domain;
	guint data_records;
	GArray *template_ids;    /* uint16_t, template records in this message */
	GArray *data_set_tids;   /* uint16_t, one per data set, in order */
};

static void wire_session_init(struct wire_session *ws)
{
	ws->templates = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, tmpl_free);
	ws->data_records = 0;
	ws->messages = 0;
}

static void wire_session_clear(struct wire_session *ws)
{
	g_hash_table_destroy(ws->templates);
}

static void wire_msg_clear(struct wire_msg *wm)
{
	g_array_unref(wm->template_ids);
	g_array_unref(wm->data_set_tids);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void parse_template_set(struct wire_session *ws, struct wire_msg *wm, const uint8_t *p,
			       size_t len)
{
	size_t off = 0;

	/* what is left after the last record shorter than a template header
	 * is padding */
	while (len - off >= 4) {
		uint16_t tid = get16(p + off);
		uint16_t count = get16(p + off + 2);
		off += 4;
		g_assert_cmpuint(tid, >=, 256);
		g_assert_cmpuint(count, >, 0); /* no withdrawals expected */
		struct tmpl *t = g_new0(struct tmpl, 1);
		t->fields = g_array_new(FALSE, TRUE, sizeof(struct field));
		for (uint16_t i = 0; i < count; i++) {
			g_assert_cmpuint(len - off, >=, 4);
			struct field f = {.id = get16(p + off), .len = get16(p + off + 2)};
			off += 4;
			if (f.id & 0x8000) {
				g_assert_cmpuint(len - off, >=, 4);
				f.id &= 0x7fff;
				f.pen = get32(p + off);
				off += 4;
			}
			g_assert_cmpuint(f.len, !=, 65535); /* nothing variable-length */
			t->reclen += f.len;
			g_array_append_val(t->fields, f);
		}
		g_hash_table_replace(ws->templates, GUINT_TO_POINTER(tid), t);
		g_array_append_val(wm->template_ids, tid);
	}
	g_assert_cmpuint(len - off, ==, 0);
}

/* Parses one message, checking its framing; updates @ws. */
static void parse_message(struct wire_session *ws, const uint8_t *p, size_t len,
			  struct wire_msg *wm)
{
	memset(wm, 0, sizeof(*wm));
	wm->template_ids = g_array_new(FALSE, FALSE, sizeof(uint16_t));
	wm->data_set_tids = g_array_new(FALSE, FALSE, sizeof(uint16_t));

	g_assert_cmpuint(len, >=, IPFIX_HEADER_LEN);
	g_assert_cmpuint(get16(p), ==, 10);
	wm->length = get16(p + 2);
	g_assert_cmpuint(wm->length, ==, len);
	wm->seq = get32(p + 8);
	wm->domain = get32(p + 12);

	size_t off = IPFIX_HEADER_LEN;
	while (off < len) {
		g_assert_cmpuint(len - off, >=, SET_HEADER_LEN);
		uint16_t set_id = get16(p + off);
		uint16_t set_len = get16(p + off + 2);
		g_assert_cmpuint(set_len, >=, SET_HEADER_LEN);
		g_assert_cmpuint(set_len, <=, len - off);
		const uint8_t *body = p + off + SET_HEADER_LEN;
		size_t body_len = set_len - SET_HEADER_LEN;

		if (set_id == TEMPLATE_SET_ID) {
			parse_template_set(ws, wm, body, body_len);
		} else if (set_id >= 256) {
			struct tmpl *t = g_hash_table_lookup(ws->templates, GUINT_TO_POINTER(set_id));
			if (!t)
				g_error("data set %u before its template", set_id);
			g_assert_cmpuint(t->reclen, >, 0);
			g_assert_cmpuint(body_len, >=, t->reclen);
			g_assert_cmpuint(body_len % t->reclen, ==, 0);
			wm->data_records += (guint)(body_len / t->reclen);
			g_array_append_val(wm->data_set_tids, set_id);
		} else if (set_id != OPTIONS_TEMPLATE_SET_ID) {
			g_error("set id %u is reserved", set_id);
		}
		off += set_len;
	}
	ws->data_records += wm->data_records;
	ws->messages++;
}

/*
 * Checks messages [from, to) of @c as one transport session: framing, the
 * observation domain, the size bound, the counts handed to the transport,
 * and sequence numbers (RFC 7011 section 3.1: the data records sent in
 * earlier messages of the session, modulo 2^32).  Returns the data records
 * in those messages.
 */
static guint64 check_session(const struct capture *c, guint from, guint to, guint mtu,
			     struct wire_session *ws)
{
	guint64 total = 0;

	for (guint m = from; m < to; m++) {
		gsize len;
		const uint8_t *data = g_bytes_get_data(g_ptr_array_index(c->msgs, m), &len);
		struct wire_msg wm;
		guint64 before = ws->data_records;

		parse_message(ws, data, len, &wm);
		g_test_message("message %u: %zu bytes, seq %u, %u records (%u reported), %u templates",
			       m, len, wm.seq, wm.data_records, capture_count(c, m),
			       wm.template_ids->len);
		g_assert_cmpuint(len, <=, mtu);
		g_assert_cmpuint(wm.domain, ==, DOMAIN);
		g_assert_cmpuint(wm.seq, ==, (uint32_t)before);
		g_assert_cmpuint(capture_count(c, m), ==, wm.data_records);
		total += wm.data_records;
		wire_msg_clear(&wm);
	}
	return total;
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                     */
/* ------------------------------------------------------------------------ */

struct expect_ie {
	const char *name;
	uint16_t len;
};

static const struct expect_ie flow4_ies[] = {
	{"flowStartMilliseconds", 8}, {"flowEndMilliseconds", 8},
	{"octetDeltaCount", 8}, {"packetDeltaCount", 8},
	{"reverseOctetDeltaCount", 8}, {"reversePacketDeltaCount", 8},
	{"flowId", 8}, {"sourceIPv4Address", 4}, {"destinationIPv4Address", 4},
	{"observationDomainId", 4}, {"sourceTransportPort", 2},
	{"destinationTransportPort", 2}, {"icmpTypeCodeIPv4", 2},
	{"protocolIdentifier", 1}, {"flowEndReason", 1}, {"ingressVRFID", 4},
};

static const struct expect_ie flow6_ies[] = {
	{"flowStartMilliseconds", 8}, {"flowEndMilliseconds", 8},
	{"octetDeltaCount", 8}, {"packetDeltaCount", 8},
	{"reverseOctetDeltaCount", 8}, {"reversePacketDeltaCount", 8},
	{"flowId", 8}, {"sourceIPv6Address", 16}, {"destinationIPv6Address", 16},
	{"observationDomainId", 4}, {"sourceTransportPort", 2},
	{"destinationTransportPort", 2}, {"icmpTypeCodeIPv6", 2},
	{"protocolIdentifier", 1}, {"flowEndReason", 1}, {"ingressVRFID", 4},
};

/* what a NAT template adds after the flow's elements */
static const struct expect_ie nat4_ies[] = {
	{"postNATSourceIPv4Address", 4}, {"postNATDestinationIPv4Address", 4},
	{"postNAPTSourceTransportPort", 2}, {"postNAPTDestinationTransportPort", 2},
};

static const struct expect_ie nat6_ies[] = {
	{"postNATSourceIPv6Address", 16}, {"postNATDestinationIPv6Address", 16},
	{"postNAPTSourceTransportPort", 2}, {"postNAPTDestinationTransportPort", 2},
};

/* The template on the wire holds exactly these elements (by the number and
 * enterprise the information model gives their names), @want and then
 * @more (NULL: nothing more), no padding. */
static void check_template_with(const struct tmpl *t, const struct expect_ie *want,
				size_t n_want, const struct expect_ie *more, size_t n_more)
{
	fbInfoModel_t *model = fbInfoModelAlloc();
	guint reclen = 0;
	struct expect_ie all[32];
	size_t n = n_want + n_more;

	g_assert_cmpuint(n, <=, G_N_ELEMENTS(all));
	memcpy(all, want, n_want * sizeof(*want));
	if (n_more)
		memcpy(all + n_want, more, n_more * sizeof(*more));
	want = all;
	g_assert_cmpuint(t->fields->len, ==, n);
	for (size_t i = 0; i < n; i++) {
		const fbInfoElement_t *ie = fbInfoModelGetElementByName(model, want[i].name);
		gboolean found = FALSE;

		g_assert_nonnull(ie);
		for (guint j = 0; j < t->fields->len; j++) {
			const struct field *f = &g_array_index(t->fields, struct field, j);
			if (f->id == ie->num && f->pen == ie->ent) {
				g_assert_cmpuint(f->len, ==, want[i].len);
				found = TRUE;
			}
		}
		if (!found)
			g_error("template lacks %s", want[i].name);
		reclen += want[i].len;
	}
	g_assert_cmpuint(t->reclen, ==, reclen);
	fbInfoModelFree(model);
}

static void check_template(const struct tmpl *t, const struct expect_ie *want, size_t n)
{
	check_template_with(t, want, n, NULL, 0);
}

static void test_session_starts_with_templates(void)
{
	struct capture c;
	encoder *enc = new_encoder(1400, &c);
	struct wire_session ws;
	struct wire_msg wm;

	start_ok(enc);
	g_assert_cmpuint(c.msgs->len, ==, 1);
	g_assert_cmpuint(capture_count(&c, 0), ==, 0);
	g_assert_cmpuint(encoder_pending(enc), ==, 0);

	wire_session_init(&ws);
	gsize len;
	const uint8_t *data = g_bytes_get_data(g_ptr_array_index(c.msgs, 0), &len);
	parse_message(&ws, data, len, &wm);
	g_assert_cmpuint(wm.seq, ==, 0);
	g_assert_cmpuint(wm.domain, ==, DOMAIN);
	g_assert_cmpuint(wm.data_records, ==, 0);
	g_assert_cmpuint(wm.data_set_tids->len, ==, 0);
	g_assert_cmpuint(wm.template_ids->len, ==, 4);
	gboolean has4 = FALSE, has6 = FALSE, has4nat = FALSE, has6nat = FALSE;
	for (guint i = 0; i < wm.template_ids->len; i++) {
		uint16_t tid = g_array_index(wm.template_ids, uint16_t, i);
		has4 |= tid == TID_FLOW4;
		has6 |= tid == TID_FLOW6;
		has4nat |= tid == TID_FLOW4_NAT;
		has6nat |= tid == TID_FLOW6_NAT;
	}
	g_assert_true(has4);
	g_assert_true(has6);
	g_assert_true(has4nat);
	g_assert_true(has6nat);

	struct tmpl *t4 = g_hash_table_lookup(ws.templates, GUINT_TO_POINTER(TID_FLOW4));
	struct tmpl *t6 = g_hash_table_lookup(ws.templates, GUINT_TO_POINTER(TID_FLOW6));
	struct tmpl *t4n = g_hash_table_lookup(ws.templates, GUINT_TO_POINTER(TID_FLOW4_NAT));
	struct tmpl *t6n = g_hash_table_lookup(ws.templates, GUINT_TO_POINTER(TID_FLOW6_NAT));
	g_assert_cmpuint(t4->reclen, ==, 80);
	g_assert_cmpuint(t6->reclen, ==, 104);
	g_assert_cmpuint(t4n->reclen, ==, 92);
	g_assert_cmpuint(t6n->reclen, ==, 140);
	check_template(t4, flow4_ies, G_N_ELEMENTS(flow4_ies));
	check_template(t6, flow6_ies, G_N_ELEMENTS(flow6_ies));
	check_template_with(t4n, flow4_ies, G_N_ELEMENTS(flow4_ies), nat4_ies,
			    G_N_ELEMENTS(nat4_ies));
	check_template_with(t6n, flow6_ies, G_N_ELEMENTS(flow6_ies), nat6_ies,
			    G_N_ELEMENTS(nat6_ies));
	wire_msg_clear(&wm);
	wire_session_clear(&ws);

	/* nothing pending: flushing sends nothing */
	flush_ok(enc);
	g_assert_cmpuint(c.msgs->len, ==, 1);
	encoder_free(enc);
	capture_clear(&c);
}

static void test_fields(void)
{
	const struct flow_record recs[] = {
		rec_udp4(), rec_tcp6(), rec_icmp4(), rec_icmp6(), rec_udp6_active(),
	};
	struct capture c;
	encoder *enc = new_encoder(65000, &c);
	struct wire_session ws;

	start_ok(enc);
	for (size_t i = 0; i < G_N_ELEMENTS(recs); i++) {
		add_ok(enc, &recs[i]);
		g_assert_cmpuint(encoder_pending(enc), ==, i + 1);
	}
	/* all fit in one message, which waits for a flush */
	g_assert_cmpuint(c.msgs->len, ==, 1);
	flush_ok(enc);
	g_assert_cmpuint(encoder_pending(enc), ==, 0);
	g_assert_cmpuint(c.msgs->len, ==, 2);
	g_assert_cmpuint(capture_count(&c, 1), ==, G_N_ELEMENTS(recs));

	wire_session_init(&ws);
	g_assert_cmpuint(check_session(&c, 0, c.msgs->len, 65000, &ws), ==, G_N_ELEMENTS(recs));
	wire_session_clear(&ws);

	g_autoptr(GArray) got = read_back(&c, 0, c.msgs->len);
	g_assert_cmpuint(got->len, ==, G_N_ELEMENTS(recs));
	for (guint i = 0; i < got->len; i++) {
		g_test_message("record %u", i);
		check_collected(&g_array_index(got, struct collected, i), &recs[i]);
	}

	/* a second flush has nothing to send */
	flush_ok(enc);
	g_assert_cmpuint(c.msgs->len, ==, 2);
	encoder_free(enc);
	capture_clear(&c);
}

/* Alternating families in one message: one data set per run of a template,
 * every record read back in order with the right template. */
static void test_mixed_families(void)
{
	struct flow_record recs[8];
	struct capture c;
	encoder *enc = new_encoder(65000, &c);
	struct wire_session ws;

	for (size_t i = 0; i < G_N_ELEMENTS(recs); i++)
		recs[i] = (i == 2 || i % 2) ? rec_tcp6() : rec_udp4(); /* 4 6 6 6 4 6 4 6 */
	for (size_t i = 0; i < G_N_ELEMENTS(recs); i++)
		recs[i].flow_id = 1000 + i;

	start_ok(enc);
	for (size_t i = 0; i < G_N_ELEMENTS(recs); i++)
		add_ok(enc, &recs[i]);
	flush_ok(enc);
	g_assert_cmpuint(c.msgs->len, ==, 2);
	g_assert_cmpuint(capture_count(&c, 1), ==, G_N_ELEMENTS(recs));

	wire_session_init(&ws);
	check_session(&c, 0, 1, 65000, &ws);
	gsize len;
	const uint8_t *data = g_bytes_get_data(g_ptr_array_index(c.msgs, 1), &len);
	struct wire_msg wm;
	parse_message(&ws, data, len, &wm);
	g_assert_cmpuint(wm.data_records, ==, G_N_ELEMENTS(recs));
	g_assert_cmpuint(wm.seq, ==, 0);
	/* rec_udp4 is masqueraded: its template is the IPv4 NAT one */
	static const uint16_t sets[] = {TID_FLOW4_NAT, TID_FLOW6, TID_FLOW4_NAT, TID_FLOW6,
					TID_FLOW4_NAT, TID_FLOW6};
	g_assert_cmpmem(wm.data_set_tids->data, wm.data_set_tids->len * sizeof(uint16_t), sets,
			sizeof(sets));
	wire_msg_clear(&wm);
	wire_session_clear(&ws);

	g_autoptr(GArray) got = read_back(&c, 0, c.msgs->len);
	g_assert_cmpuint(got->len, ==, G_N_ELEMENTS(recs));
	for (guint i = 0; i < got->len; i++)
		check_collected(&g_array_index(got, struct collected, i), &recs[i]);
	encoder_free(enc);
	capture_clear(&c);
}

/* Many records, a small MTU: several messages, none too big, each with the
 * right count and sequence number, and every record read back in order. */
static void check_many(guint mtu, guint n)
{
	struct capture c;
	encoder *enc = new_encoder(mtu, &c);
	struct wire_session ws;

	g_test_message("mtu %u, %u records", mtu, n);
	start_ok(enc);
	guint64 emitted_records = 0;
	for (guint i = 0; i < n; i++) {
		struct flow_record r = rec_numbered(i);
		guint msgs_before = c.msgs->len;
		add_ok(enc, &r);
		for (guint m = msgs_before; m < c.msgs->len; m++)
			emitted_records += capture_count(&c, m);
		/* what was added and not yet handed over */
		g_assert_cmpuint(encoder_pending(enc), ==, i + 1 - emitted_records);
	}
	flush_ok(enc);
	g_assert_cmpuint(encoder_pending(enc), ==, 0);
	g_assert_cmpuint(c.msgs->len, >, 2);

	wire_session_init(&ws);
	g_assert_cmpuint(check_session(&c, 0, c.msgs->len, mtu, &ws), ==, n);
	wire_session_clear(&ws);

	g_autoptr(GArray) got = read_back(&c, 0, c.msgs->len);
	g_assert_cmpuint(got->len, ==, n);
	for (guint i = 0; i < got->len; i++) {
		struct flow_record r = rec_numbered(i);
		check_collected(&g_array_index(got, struct collected, i), &r);
	}
	encoder_free(enc);
	capture_clear(&c);
}

static void test_mtu_small(void)
{
	check_many(512, 1000);
}

static void test_mtu_odd(void)
{
	/* a size that no record count fills exactly */
	check_many(1399, 3000);
}

static void test_mtu_large(void)
{
	check_many(65000, 5000);
}

/* Only IPv4 records and mtu 512: 16 + 4 + 6 * 80 = 500 fits, a seventh
 * (580) does not; with NAT (92 bytes a record) 16 + 4 + 5 * 92 = 480 fits
 * and a sixth (572) does not.  The message must be full before it is
 * sent. */
static void check_packing(const struct flow_record *r, guint fit, gsize full_len)
{
	struct capture c;
	encoder *enc = new_encoder(512, &c);

	g_assert_cmpuint(fit * (flow_is_translated(r) ? 92 : 80) + 20, ==, full_len);
	start_ok(enc);
	for (guint i = 0; i < fit; i++)
		add_ok(enc, r);
	g_assert_cmpuint(c.msgs->len, ==, 1);
	g_assert_cmpuint(encoder_pending(enc), ==, fit);
	add_ok(enc, r);
	g_assert_cmpuint(c.msgs->len, ==, 2);
	g_assert_cmpuint(capture_count(&c, 1), ==, fit);
	g_assert_cmpuint(g_bytes_get_size(g_ptr_array_index(c.msgs, 1)), ==, full_len);
	g_assert_cmpuint(encoder_pending(enc), ==, 1);
	flush_ok(enc);
	g_assert_cmpuint(c.msgs->len, ==, 3);
	g_assert_cmpuint(capture_count(&c, 2), ==, 1);

	struct wire_session ws;
	wire_session_init(&ws);
	check_session(&c, 0, c.msgs->len, 512, &ws);
	wire_session_clear(&ws);
	encoder_free(enc);
	capture_clear(&c);
}

static void test_mtu_packing(void)
{
	struct flow_record plain = rec_tcp6(), nat = rec_udp4();

	/* rec_tcp6 as an IPv4 record without NAT */
	plain.family = AF_INET;
	set_addr(plain.orig.src, AF_INET, "192.0.2.10");
	set_addr(plain.orig.dst, AF_INET, "198.51.100.20");
	memcpy(plain.reply.src, plain.orig.dst, 16);
	memcpy(plain.reply.dst, plain.orig.src, 16);
	g_assert_false(flow_is_translated(&plain));
	g_assert_true(flow_is_translated(&nat));
	check_packing(&plain, 6, 500);
	check_packing(&nat, 5, 480);
}

static void test_refresh_templates(void)
{
	struct capture c;
	encoder *enc = new_encoder(1400, &c);
	struct flow_record r4 = rec_udp4(), r6 = rec_tcp6();
	g_autoptr(GError) error = NULL;

	start_ok(enc);
	add_ok(enc, &r4);
	add_ok(enc, &r6);
	flush_ok(enc);
	g_assert_cmpuint(c.msgs->len, ==, 2);

	g_assert_true(encoder_refresh_templates(enc, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(c.msgs->len, ==, 3);
	g_assert_cmpuint(capture_count(&c, 2), ==, 0);

	/* records pending at a refresh go out first, in their own message */
	add_ok(enc, &r6);
	add_ok(enc, &r4);
	add_ok(enc, &r4);
	g_assert_true(encoder_refresh_templates(enc, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(encoder_pending(enc), ==, 0);
	g_assert_cmpuint(c.msgs->len, ==, 5);
	g_assert_cmpuint(capture_count(&c, 3), ==, 3);
	g_assert_cmpuint(capture_count(&c, 4), ==, 0);

	add_ok(enc, &r4);
	flush_ok(enc);
	g_assert_cmpuint(c.msgs->len, ==, 6);

	/* template messages carry the sequence number without adding to it */
	struct wire_session ws;
	wire_session_init(&ws);
	g_assert_cmpuint(check_session(&c, 0, c.msgs->len, 1400, &ws), ==, 6);
	for (guint m = 2; m <= 4; m += 2) {
		gsize len;
		const uint8_t *data = g_bytes_get_data(g_ptr_array_index(c.msgs, m), &len);
		struct wire_session fresh;
		struct wire_msg wm;
		wire_session_init(&fresh);
		parse_message(&fresh, data, len, &wm);
		g_assert_cmpuint(wm.template_ids->len, ==, 4);
		g_assert_cmpuint(wm.data_records, ==, 0);
		g_assert_cmpuint(wm.seq, ==, m == 2 ? 2 : 5);
		wire_msg_clear(&wm);
		wire_session_clear(&fresh);
	}
	wire_session_clear(&ws);

	g_autoptr(GArray) got = read_back(&c, 0, c.msgs->len);
	const struct flow_record *order[] = {&r4, &r6, &r6, &r4, &r4, &r4};
	g_assert_cmpuint(got->len, ==, G_N_ELEMENTS(order));
	for (guint i = 0; i < got->len; i++)
		check_collected(&g_array_index(got, struct collected, i), order[i]);
	encoder_free(enc);
	capture_clear(&c);
}

/* A new transport session (reconnect, new file) starts over: templates
 * first, sequence number 0, and a collector that only sees the new session
 * can decode it. */
static void test_second_session(void)
{
	struct capture c;
	encoder *enc = new_encoder(512, &c);
	struct wire_session ws;

	start_ok(enc);
	for (guint i = 0; i < 20; i++) {
		struct flow_record r = rec_numbered(i);
		add_ok(enc, &r);
	}
	flush_ok(enc);
	guint first_end = c.msgs->len;
	wire_session_init(&ws);
	g_assert_cmpuint(check_session(&c, 0, first_end, 512, &ws), ==, 20);
	wire_session_clear(&ws);

	/* records pending when the session ends are dropped with it: the
	 * caller resends from its spool position */
	struct flow_record lost = rec_udp4();
	add_ok(enc, &lost);
	add_ok(enc, &lost);
	g_assert_cmpuint(encoder_pending(enc), ==, 2);
	start_ok(enc);
	g_assert_cmpuint(encoder_pending(enc), ==, 0);
	g_assert_cmpuint(c.msgs->len, ==, first_end + 1);
	g_assert_cmpuint(capture_count(&c, first_end), ==, 0);
	flush_ok(enc);
	g_assert_cmpuint(c.msgs->len, ==, first_end + 1);

	for (guint i = 100; i < 130; i++) {
		struct flow_record r = rec_numbered(i);
		add_ok(enc, &r);
	}
	flush_ok(enc);
	wire_session_init(&ws);
	g_assert_cmpuint(check_session(&c, first_end, c.msgs->len, 512, &ws), ==, 30);
	wire_session_clear(&ws);

	g_autoptr(GArray) got = read_back(&c, first_end, c.msgs->len);
	g_assert_cmpuint(got->len, ==, 30);
	for (guint i = 0; i < got->len; i++) {
		struct flow_record r = rec_numbered(100 + i);
		check_collected(&g_array_index(got, struct collected, i), &r);
	}
	encoder_free(enc);
	capture_clear(&c);
}

/* Adds @n numbered records and flushes; returns the largest message. */
static gsize add_many_max_len(encoder *enc, struct capture *c, guint n)
{
	guint from = c->msgs->len;
	gsize largest = 0;

	for (guint i = 0; i < n; i++) {
		struct flow_record r = rec_numbered(i);
		add_ok(enc, &r);
	}
	flush_ok(enc);
	for (guint m = from; m < c->msgs->len; m++)
		largest = MAX(largest, g_bytes_get_size(g_ptr_array_index(c->msgs, m)));
	return largest;
}

/* mtu = auto (0): 65000 until the transport sets the path's limit, which
 * applies from the next session on and is kept within 512..65000. */
static void test_message_limit(void)
{
	struct capture c;
	encoder *enc = new_encoder(0, &c);
	struct wire_session ws;
	guint from;

	start_ok(enc);
	gsize largest = add_many_max_len(enc, &c, 2000);
	g_assert_cmpuint(largest, <=, 65000);
	g_assert_cmpuint(largest, >, 64000);

	/* the running session keeps its limit */
	encoder_set_message_limit(enc, 600);
	g_assert_cmpuint(add_many_max_len(enc, &c, 2000), >, 64000);

	from = c.msgs->len;
	start_ok(enc);
	largest = add_many_max_len(enc, &c, 300);
	g_assert_cmpuint(largest, <=, 600);
	g_assert_cmpuint(largest, >, 600 - 104);
	wire_session_init(&ws);
	g_assert_cmpuint(check_session(&c, from, c.msgs->len, 600, &ws), ==, 300);
	wire_session_clear(&ws);

	encoder_set_message_limit(enc, 100);
	from = c.msgs->len;
	start_ok(enc);
	largest = add_many_max_len(enc, &c, 300);
	g_assert_cmpuint(largest, <=, 512);
	g_assert_cmpuint(largest, >, 512 - 104);
	wire_session_init(&ws);
	g_assert_cmpuint(check_session(&c, from, c.msgs->len, 512, &ws), ==, 300);
	wire_session_clear(&ws);

	encoder_set_message_limit(enc, 1000000);
	start_ok(enc);
	largest = add_many_max_len(enc, &c, 2000);
	g_assert_cmpuint(largest, <=, 65000);
	g_assert_cmpuint(largest, >, 64000);

	encoder_free(enc);
	capture_clear(&c);
}

/* The export time in each header is the wall clock (RFC 7011 section 3.1),
 * not zero or the flow's time. */
static void test_export_time(void)
{
	struct capture c;
	encoder *enc = new_encoder(1400, &c);
	struct flow_record r = rec_udp4();

	start_ok(enc);
	add_ok(enc, &r);
	flush_ok(enc);
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	for (guint m = 0; m < c.msgs->len; m++) {
		const uint8_t *data = g_bytes_get_data(g_ptr_array_index(c.msgs, m), NULL);
		gint64 t = get32(data + 4);
		g_assert_cmpint(t, >, now - 600);
		g_assert_cmpint(t, <=, now + 1);
	}
	encoder_free(enc);
	capture_clear(&c);
}

/* A failed emit is the caller's error, unchanged. */
static void test_emit_error(void)
{
	struct capture c;
	encoder *enc = new_encoder(1400, &c);
	struct flow_record r = rec_udp4();
	g_autoptr(GError) error = NULL;

	c.fail = TRUE;
	g_assert_false(encoder_start_session(enc, &error));
	g_assert_error(error, TEST_ERROR, 42);
	g_clear_error(&error);

	start_ok(enc);
	add_ok(enc, &r);
	c.fail = TRUE;
	g_assert_false(encoder_flush(enc, &error));
	g_assert_error(error, TEST_ERROR, 42);
	encoder_free(enc);
	capture_clear(&c);
}

/* ipfixDump, as a collector that shares nothing with the encoder but the
 * library, must name the elements and count the records. */
static void test_ipfixdump(void)
{
	g_autofree char *ipfixdump = g_find_program_in_path("ipfixDump");
	if (!ipfixdump) {
		g_test_skip("ipfixDump (libfixbuf-tools) not installed");
		return;
	}
	struct capture c;
	encoder *enc = new_encoder(512, &c);
	const guint n = 57;

	start_ok(enc);
	for (guint i = 0; i < n; i++) {
		struct flow_record r = rec_numbered(i);
		add_ok(enc, &r);
	}
	flush_ok(enc);

	g_autoptr(GError) error = NULL;
	g_autofree char *path = NULL;
	int fd = g_file_open_tmp("ctflowd-ipfix-XXXXXX", &path, &error);
	g_assert_no_error(error);
	g_autoptr(GByteArray) all = g_byte_array_new();
	for (guint m = 0; m < c.msgs->len; m++) {
		gsize len;
		const uint8_t *data = g_bytes_get_data(g_ptr_array_index(c.msgs, m), &len);
		g_byte_array_append(all, data, (guint)len);
	}
	g_close(fd, NULL);
	g_assert_true(g_file_set_contents(path, (const char *)all->data, all->len, &error));
	g_assert_no_error(error);

	const char *argv[] = {ipfixdump, "--in", path, NULL};
	g_autofree char *out = NULL, *err = NULL;
	int status;
	g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out,
				   &err, &status, &error));
	g_assert_no_error(error);
	g_assert_true(g_spawn_check_wait_status(status, NULL));
	g_unlink(path);

	static const char *names[] = {"reverseOctetDeltaCount", "reversePacketDeltaCount",
				      "flowEndReason", "flowStartMilliseconds", "flowId",
				      "sourceIPv6Address", "icmpTypeCodeIPv4",
				      "postNATSourceIPv4Address", "postNATDestinationIPv6Address",
				      "postNAPTSourceTransportPort", "ingressVRFID"};
	for (size_t i = 0; i < G_N_ELEMENTS(names); i++)
		if (!strstr(out, names[i]))
			g_error("ipfixDump output lacks %s:\n%s", names[i], out);

	/* "*** File Stats: M Messages, N Data Records, ..." */
	const char *stats = strstr(out, "*** File Stats:");
	g_assert_nonnull(stats);
	guint messages = 0, records = 0;
	g_assert_cmpint(sscanf(stats, "*** File Stats: %u Messages, %u Data Records", &messages,
			       &records), ==, 2);
	g_assert_cmpuint(messages, ==, c.msgs->len);
	g_assert_cmpuint(records, ==, n);

	/* its reading of the sequence numbers: each one counts the data
	 * records of the messages before it */
	g_auto(GStrv) lines = g_strsplit(out, "\n", -1);
	guint64 before = 0;
	guint headers = 0;
	for (char **l = lines; *l; l++) {
		const char *seq = strstr(*l, "sequence number:");
		const char *stat = strstr(*l, "*** Msg Stats:");
		guint v;
		int end = 0;
		if (seq && sscanf(seq, "sequence number: %u", &v) == 1) {
			g_assert_cmpuint(v, ==, before);
			headers++;
		} else if (stat && sscanf(stat, "*** Msg Stats: %u Data Records%n", &v, &end) == 1 &&
			   end > 0) {
			before += v;
		}
	}
	g_assert_cmpuint(headers, ==, c.msgs->len);
	g_assert_cmpuint(before, ==, n);
	g_assert_null(strstr(err, "out of sequence"));
	encoder_free(enc);
	capture_clear(&c);
}


/* ------------------------------------------------------------------------ */
/* The statistics options record                                              */
/* ------------------------------------------------------------------------ */

#define PEN_DOC 32473   /* RFC 5612: the enterprise number for documentation */

static const struct export_statistics sample_stats = {
	.exporting_process_id = 3,
	.init_ms = 1764000000123,
	.messages = 17,
	.records = 1000,
	.octets = 54321,
	.not_sent = 1234,
	.destroy_events = 1100,
	.duplicates = 100,
	.overruns = 2,
	.malformed = 1,
	.spool_dropped = 1300,
};

/* the fields of template 258, in order, as RFC 7011 puts them on the wire */
static const struct {
	uint16_t id, len;
} stats_ies[] = {
	{144, 4}, {149, 4}, {323, 8}, {160, 8}, {41, 8}, {42, 8}, {40, 8}, {166, 8},
};

static void report_ok(encoder *enc, const struct export_statistics *st)
{
	g_autoptr(GError) error = NULL;

	g_assert_true(encoder_report_statistics(enc, st, &error));
	g_assert_no_error(error);
}

/*
 * Finds template 258 and its record on the wire: an options template set
 * (id 3) with the RFC 7011 section 4.3 scope, and a data set of its own.
 * Returns the record's message, or -1.
 */
static int find_stats(const struct capture *c, gboolean own, const uint8_t **record)
{
	int found = -1;
	gboolean saw_template = FALSE;
	guint nfields = G_N_ELEMENTS(stats_ies) + (own ? 5 : 0);

	for (guint m = 0; m < c->msgs->len; m++) {
		gsize len;
		const uint8_t *msg = g_bytes_get_data(g_ptr_array_index(c->msgs, m), &len);
		for (gsize off = 16; off + 4 <= len;) {
			uint16_t set_id = get16(msg + off), set_len = get16(msg + off + 2);
			g_assert_cmpuint(set_len, >=, 4);
			const uint8_t *body = msg + off + 4;
			if (set_id == OPTIONS_TEMPLATE_SET_ID && get16(body) == 258) {
				g_assert_cmpuint(get16(body + 2), ==, nfields);
				g_assert_cmpuint(get16(body + 4), ==, 2);   /* scope */
				const uint8_t *f = body + 6;
				for (size_t i = 0; i < G_N_ELEMENTS(stats_ies); i++, f += 4) {
					g_assert_cmpuint(get16(f), ==, stats_ies[i].id);
					g_assert_cmpuint(get16(f + 2), ==, stats_ies[i].len);
				}
				for (guint i = 0; own && i < 5; i++, f += 8) {
					/* enterprise bit, element 100 + i, 8 bytes, the PEN */
					g_assert_cmpuint(get16(f), ==, 0x8000 | (100 + i));
					g_assert_cmpuint(get16(f + 2), ==, 8);
					g_assert_cmpuint(get32(f + 4), ==, PEN_DOC);
				}
				saw_template = TRUE;
			} else if (set_id == 258) {
				g_assert_cmpuint(set_len, ==, 4 + 8 + 6 * 8 + (own ? 5 * 8 : 0));
				/* a message of its own: no flow records counted with it */
				g_assert_cmpuint(capture_count(c, m), ==, 0);
				*record = body;
				found = (int)m;
			}
			off += set_len;
		}
	}
	g_assert_true(saw_template);
	return found;
}

static guint64 get64(const uint8_t *p)
{
	return (guint64)get32(p) << 32 | get32(p + 4);
}

/* The counters go out as RFC 7011 section 4.3 says, after the flows that
 * were waiting, and fixbuf reads them back by name. */
/* The next record of the buffer set on @fbuf into @rec of @size bytes, and
 * the template it came with; FALSE at the end of the buffer. */
static gboolean next_collected(fBuf_t *fbuf, void *rec, size_t size, uint16_t *tid)
{
	g_autoptr(GError) error = NULL;
	size_t len = size;

	*tid = 0;
	if (!fBufNext(fbuf, rec, &len, &error)) {
		g_assert_error(error, FB_ERROR_DOMAIN, FB_ERROR_BUFSZ);
		return FALSE;
	}
	fBufGetCollectionTemplate(fbuf, tid);
	return TRUE;
}

static void test_statistics_report(void)
{
	struct capture c;
	encoder *enc = new_encoder(1400, &c);
	const uint8_t *rec = NULL;
	guint64 before_ms = (guint64)g_get_real_time() / 1000;

	start_ok(enc);
	for (guint i = 0; i < 3; i++) {
		struct flow_record r = rec_numbered(i);
		add_ok(enc, &r);
	}
	report_ok(enc, &sample_stats);
	/* the flows pending before it went out first, with their count */
	g_assert_cmpuint(encoder_pending(enc), ==, 0);
	guint counted = 0;
	for (guint m = 0; m < c.msgs->len; m++)
		counted += capture_count(&c, m);
	g_assert_cmpuint(counted, ==, 3);

	int m = find_stats(&c, FALSE, &rec);
	g_assert_cmpint(m, ==, (int)c.msgs->len - 1);
	g_assert_cmpuint(get32(rec), ==, 3);                 /* exportingProcessId */
	g_assert_cmpuint(get32(rec + 4), ==, DOMAIN);        /* observationDomainId */
	guint64 obs = get64(rec + 8);                        /* observationTimeMilliseconds */
	g_assert_cmpuint(obs, >=, before_ms);
	g_assert_cmpuint(obs, <=, (guint64)g_get_real_time() / 1000);
	g_assert_cmpuint(get64(rec + 16), ==, sample_stats.init_ms);
	g_assert_cmpuint(get64(rec + 24), ==, 17);           /* exportedMessageTotalCount */
	g_assert_cmpuint(get64(rec + 32), ==, 1000);         /* exportedFlowRecordTotalCount */
	g_assert_cmpuint(get64(rec + 40), ==, 54321);        /* exportedOctetTotalCount */
	g_assert_cmpuint(get64(rec + 48), ==, 1234);         /* notSentFlowTotalCount */

	/* and fixbuf, as a collector, reads it by element name */
	struct {
		uint64_t notSent, flows, messages, octets, init;
		uint32_t process, domain;
	} got = {0};
	static fbInfoElementSpec_t spec[] = {
		IE("notSentFlowTotalCount", 8), IE("exportedFlowRecordTotalCount", 8),
		IE("exportedMessageTotalCount", 8), IE("exportedOctetTotalCount", 8),
		IE("systemInitTimeMilliseconds", 8), IE("exportingProcessId", 4),
		IE("observationDomainId", 4), FB_IESPEC_NULL
	};
	g_autoptr(GError) error = NULL;
	fbInfoModel_t *model = fbInfoModelAlloc();
	fbSession_t *session = fbSessionAlloc(model);
	fbTemplate_t *tmpl = fbTemplateAlloc(model);
	g_assert_true(fbTemplateAppendSpecArray(tmpl, spec, UINT32_MAX, &error));
	g_assert_cmpuint(fbSessionAddTemplate(session, TRUE, 999, tmpl, &error), ==, 999);
	fBuf_t *fbuf = fBufAllocForCollection(session, NULL);
	g_assert_true(fBufSetInternalTemplate(fbuf, 999, &error));
	gboolean read = FALSE;
	for (guint i = 0; i < c.msgs->len; i++) {
		gsize len;
		const uint8_t *data = g_bytes_get_data(g_ptr_array_index(c.msgs, i), &len);
		g_autofree uint8_t *copy = g_memdup2(data, len);
		fBufSetBuffer(fbuf, copy, len);
		uint16_t tid;
		while (next_collected(fbuf, &got, sizeof(got), &tid))
			if (tid == 258)
				read = TRUE;
		if (read)
			break;
	}
	g_assert_true(read);
	g_assert_cmpuint(got.notSent, ==, 1234);
	g_assert_cmpuint(got.flows, ==, 1000);
	g_assert_cmpuint(got.messages, ==, 17);
	g_assert_cmpuint(got.octets, ==, 54321);
	g_assert_cmpuint(got.init, ==, sample_stats.init_ms);
	g_assert_cmpuint(got.process, ==, 3);
	g_assert_cmpuint(got.domain, ==, DOMAIN);
	fBufFree(fbuf);
	fbInfoModelFree(model);
	encoder_free(enc);
	capture_clear(&c);
}

static char *run_ipfixdump(const char *ipfixdump, const struct capture *c, gboolean rfc5610)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *path = NULL;
	int fd = g_file_open_tmp("ctflowd-ipfix-XXXXXX", &path, &error);
	g_assert_no_error(error);
	g_close(fd, NULL);
	g_autoptr(GByteArray) all = g_byte_array_new();
	for (guint m = 0; m < c->msgs->len; m++) {
		gsize len;
		const uint8_t *data = g_bytes_get_data(g_ptr_array_index(c->msgs, m), &len);
		g_byte_array_append(all, data, (guint)len);
	}
	g_assert_true(g_file_set_contents(path, (const char *)all->data, all->len, &error));
	const char *argv[] = {ipfixdump, "--in", path, rfc5610 ? "--rfc5610" : NULL, NULL};
	char *out = NULL;
	int status;
	g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL,
				   NULL, &out, NULL, &status, &error));
	g_assert_no_error(error);
	g_unlink(path);
	return out;
}

/* Under a PEN the daemon's counters follow as enterprise-specific
 * elements, and the RFC 5610 type records sent with the templates let
 * ipfixDump name them; without one, nothing enterprise-specific goes out. */
static void test_statistics_own_elements(void)
{
	struct capture c;
	encoder *enc = new_encoder_pen(1400, PEN_DOC, &c);
	const uint8_t *rec = NULL;

	start_ok(enc);
	report_ok(enc, &sample_stats);
	g_assert_cmpint(find_stats(&c, TRUE, &rec), >=, 0);
	g_assert_cmpuint(get64(rec + 56), ==, 1100);   /* DESTROY events */
	g_assert_cmpuint(get64(rec + 64), ==, 100);    /* duplicates */
	g_assert_cmpuint(get64(rec + 72), ==, 2);      /* overruns */
	g_assert_cmpuint(get64(rec + 80), ==, 1);      /* malformed */
	g_assert_cmpuint(get64(rec + 88), ==, 1300);   /* spool dropped */
	/* a template refresh (UDP) sends the type records again, before the
	 * templates that use them */
	guint before = c.msgs->len;
	g_autoptr(GError) error = NULL;
	g_assert_true(encoder_refresh_templates(enc, &error));
	g_assert_no_error(error);
	guint type_sets = 0, stats_templates = 0;
	for (guint m = before; m < c.msgs->len; m++) {
		gsize len;
		const uint8_t *msg = g_bytes_get_data(g_ptr_array_index(c.msgs, m), &len);
		for (gsize off = 16; off + 4 <= len; off += get16(msg + off + 2)) {
			if (get16(msg + off) == 259) {
				g_assert_cmpuint(stats_templates, ==, 0);
				type_sets++;
			} else if (get16(msg + off) == OPTIONS_TEMPLATE_SET_ID) {
				const uint8_t *body = msg + off + 4, *end = msg + off + get16(msg + off + 2);
				/* 258 among the options templates of the set */
				for (const uint8_t *t = body; t + 6 <= end;) {
					uint16_t count = get16(t + 2);
					if (get16(t) == 258)
						stats_templates++;
					const uint8_t *f = t + 6;
					for (uint16_t i = 0; i < count; i++)
						f += (get16(f) & 0x8000) ? 8 : 4;
					t = f;
				}
			}
		}
	}
	g_assert_cmpuint(type_sets, >=, 1);
	g_assert_cmpuint(stats_templates, ==, 1);

	g_autofree char *ipfixdump = g_find_program_in_path("ipfixDump");
	if (!ipfixdump) {
		g_test_skip("ipfixDump (libfixbuf-tools) not installed");
	} else {
		g_autofree char *out = run_ipfixdump(ipfixdump, &c, TRUE);
		static const char *want[] = {
			"ctflowdDestroyEventTotalCount", "ctflowdDuplicateTotalCount",
			"ctflowdOverrunTotalCount", "ctflowdMalformedTotalCount",
			"ctflowdSpoolDroppedTotalCount", "exportedFlowRecordTotalCount",
			"notSentFlowTotalCount",
		};
		for (size_t i = 0; i < G_N_ELEMENTS(want); i++)
			if (!strstr(out, want[i]))
				g_error("ipfixDump --rfc5610 output lacks %s:\n%s", want[i], out);
		g_autoptr(GRegex) re = g_regex_new("ctflowdDestroyEventTotalCount\\s*:\\s*1100\\b",
						   0, 0, NULL);
		if (!g_regex_match(re, out, 0, NULL))
			g_error("ipfixDump does not show 1100 DESTROY events:\n%s", out);
	}
	encoder_free(enc);
	capture_clear(&c);

	/* no PEN: only IANA's elements on the wire */
	enc = new_encoder(1400, &c);
	start_ok(enc);
	report_ok(enc, &sample_stats);
	g_assert_cmpint(find_stats(&c, FALSE, &rec), >=, 0);
	for (guint m = 0; m < c.msgs->len; m++) {
		gsize len;
		const uint8_t *msg = g_bytes_get_data(g_ptr_array_index(c.msgs, m), &len);
		for (gsize off = 16; off + 4 <= len; off += get16(msg + off + 2))
			g_assert_cmpuint(get16(msg + off), !=, 259);   /* no type records */
	}
	encoder_free(enc);
	capture_clear(&c);
}

/* What a collector that knows ctflowd's elements reads of a marks record. */
struct marks_rec {
	uint64_t flowId;
	uint32_t ctMark;
	uint8_t ctLabels[16];
	uint8_t biflowDirection;
	uint8_t paddingOctets[3];
};
_Static_assert(sizeof(struct marks_rec) == 32, "marks_rec size");

static GArray *read_back_marks(const struct capture *c, guint32 pen)
{
	static fbInfoElementSpec_t spec[] = {
		IE("flowId", 8), IE("ctMark", 4), IE("ctLabels", 16), IE("biflowDirection", 1),
		IE("paddingOctets", 3), FB_IESPEC_NULL,
	};
	GArray *out = g_array_new(FALSE, TRUE, sizeof(struct marks_rec));
	g_autoptr(GError) error = NULL;
	fbInfoModel_t *model = fbInfoModelAlloc();
	fbInfoElement_t mark = FB_IE_INIT_FULL("ctMark", pen, 105, 4, FB_IE_F_ENDIAN, 0, 0,
					       FB_UINT_32, NULL);
	fbInfoElement_t labels = FB_IE_INIT_FULL("ctLabels", pen, 106, 16, 0, 0, 0,
						 FB_OCTET_ARRAY, NULL);
	fbInfoModelAddElement(model, &mark);
	fbInfoModelAddElement(model, &labels);
	fbSession_t *session = fbSessionAlloc(model);
	fbTemplate_t *tmpl = fbTemplateAlloc(model);
	g_assert_true(fbTemplateAppendSpecArray(tmpl, spec, UINT32_MAX, &error));
	g_assert_cmpuint(fbSessionAddTemplate(session, TRUE, COLL_TID, tmpl, &error), ==,
			 COLL_TID);
	fBuf_t *fbuf = fBufAllocForCollection(session, NULL);
	g_assert_true(fBufSetInternalTemplate(fbuf, COLL_TID, &error));
	for (guint m = 0; m < c->msgs->len; m++) {
		gsize len;
		const uint8_t *data = g_bytes_get_data(g_ptr_array_index(c->msgs, m), &len);
		g_autofree uint8_t *copy = g_memdup2(data, len);

		fBufSetBuffer(fbuf, copy, len);
		struct marks_rec got = {0};
		uint16_t tid;
		while (next_collected(fbuf, &got, sizeof(got), &tid)) {
			if (tid >= 260 && tid <= 263)
				g_array_append_val(out, got);
			memset(&got, 0, sizeof(got));
		}
	}
	fBufFree(fbuf);
	fbInfoModelFree(model);
	return out;
}

/* marks = yes: every record, of either family, with and without NAT,
 * biflow and uniflow, carries the mark and labels in templates 260-263,
 * which ipfixDump names from the RFC 5610 type records. */
static void test_marks(void)
{
	for (int uniflow = 0; uniflow < 2; uniflow++) {
		struct export_config cfg = {
			.name = (char *)"test", .format = EXPORT_FORMAT_IPFIX,
			.transport = EXPORT_TRANSPORT_FILE, .mtu = 1400,
			.observation_domain = DOMAIN, .enterprise_number = PEN_DOC,
			.uniflow = uniflow, .marks = TRUE,
		};
		g_autoptr(GError) error = NULL;
		struct capture c;
		struct flow_record recs[] = { rec_udp4(), rec_tcp6(), rec_icmp4(), rec_udp6_active() };

		capture_init(&c);
		encoder *enc = encoder_new(&cfg, capture_emit, &c, &error);
		g_assert_no_error(error);
		start_ok(enc);
		guint want_records = 0;
		for (size_t i = 0; i < G_N_ELEMENTS(recs); i++) {
			recs[i].mark = 0x10u * (guint32)(i + 1) + 0xabc00000u;
			recs[i].labels[i] = 0x81;
			recs[i].labels[15] = (uint8_t)i;
			recs[i].flags |= FLOW_HAS_LABELS;
			add_ok(enc, &recs[i]);
			want_records += uniflow && recs[i].reply_packets ? 2 : 1;
		}
		flush_ok(enc);
		g_autoptr(GArray) got = read_back_marks(&c, PEN_DOC);
		g_assert_cmpuint(got->len, ==, want_records);
		guint k = 0;
		for (size_t i = 0; i < G_N_ELEMENTS(recs); i++) {
			guint n = uniflow && recs[i].reply_packets ? 2 : 1;
			for (guint d = 0; d < n; d++, k++) {
				const struct marks_rec *m = &g_array_index(got, struct marks_rec, k);
				g_assert_cmpuint(m->flowId, ==, recs[i].flow_id);
				g_assert_cmpuint(m->ctMark, ==, recs[i].mark);
				g_assert_cmpmem(m->ctLabels, 16, recs[i].labels, 16);
			}
		}
		g_autofree char *ipfixdump = g_find_program_in_path("ipfixDump");
		if (ipfixdump) {
			g_autofree char *out = run_ipfixdump(ipfixdump, &c, TRUE);
			g_autofree char *want = g_strdup_printf("ctMark\\s*:\\s*%u\\b", recs[1].mark);
			g_autoptr(GRegex) re = g_regex_new(want, 0, 0, NULL);
			if (!strstr(out, "ctLabels") || !g_regex_match(re, out, 0, NULL))
				g_error("ipfixDump --rfc5610 does not name ctMark and ctLabels:\n%s", out);
		}
		encoder_free(enc);
		capture_clear(&c);
	}
}

/* marks = yes without a PEN sends no marks (the configuration refuses it;
 * the encoder does not invent elements without a number to put them under). */
static void test_marks_need_pen(void)
{
	struct export_config cfg = {
		.name = (char *)"test", .format = EXPORT_FORMAT_IPFIX,
		.transport = EXPORT_TRANSPORT_FILE, .mtu = 1400,
		.observation_domain = DOMAIN, .marks = TRUE,
	};
	g_autoptr(GError) error = NULL;
	struct capture c;
	struct flow_record r = rec_udp4();

	capture_init(&c);
	encoder *enc = encoder_new(&cfg, capture_emit, &c, &error);
	g_assert_no_error(error);
	start_ok(enc);
	add_ok(enc, &r);
	flush_ok(enc);
	g_autoptr(GArray) got = read_back_marks(&c, PEN_DOC);
	g_assert_cmpuint(got->len, ==, 0);
	g_autoptr(GArray) plain = read_back(&c, 0, c.msgs->len);
	g_assert_cmpuint(plain->len, ==, 1);
	encoder_free(enc);
	capture_clear(&c);
}

/* zone_vrf maps the zones it lists to their VRF ids in ingressVRFID;
 * other zones keep their number, in both families, with and without NAT. */
static void test_zone_vrf(void)
{
	static const struct {
		uint16_t zone;
		uint32_t vrf;
	} cases[] = {
		{0x0102, 7000}, {5, 4294967295u}, {9, 9}, {0, 0}, {65535, 1},
	};
	struct capture c;
	encoder *enc = new_encoder_opts(1400, "258=7000, 5=4294967295, 65535=1", FALSE, &c);
	struct flow_record recs[2 * G_N_ELEMENTS(cases)];

	start_ok(enc);
	for (size_t i = 0; i < G_N_ELEMENTS(recs); i++) {
		recs[i] = i % 2 ? rec_tcp6() : rec_udp4();
		recs[i].zone = cases[i / 2].zone;
		add_ok(enc, &recs[i]);
	}
	flush_ok(enc);
	g_autoptr(GArray) got = read_back(&c, 0, c.msgs->len);
	g_assert_cmpuint(got->len, ==, G_N_ELEMENTS(recs));
	for (guint i = 0; i < got->len; i++)
		check_collected_vrf(&g_array_index(got, struct collected, i), &recs[i],
				    cases[i / 2].vrf);
	encoder_free(enc);
	capture_clear(&c);
}

/* One uniflow record: side @reply of @r, as its own flow. */
static void check_uni(const struct collected *got, const struct flow_record *r, gboolean reply)
{
	static const uint8_t zero16[16];
	const struct coll_rec *c = &got->rec;
	const struct flow_tuple *t = reply ? &r->reply : &r->orig;
	const struct flow_tuple *back = reply ? &r->orig : &r->reply; /* post-NAT, turned */
	const gboolean nat = flow_is_translated(r), v4 = r->family == AF_INET;
	const uint16_t type_code = reply ? (uint16_t)(r->reply_icmp_type << 8 | r->reply_icmp_code)
					 : (uint16_t)(r->icmp_type << 8 | r->icmp_code);

	g_assert_cmpuint(got->ext_tid, ==, v4 ? (nat ? TID_UNI4_NAT : TID_UNI4)
					      : (nat ? TID_UNI6_NAT : TID_UNI6));
	g_assert_cmpuint(c->biflowDirection, ==, reply ? 2 : 1);
	g_assert_cmpuint(c->flowId, ==, r->flow_id);
	g_assert_cmpuint(c->flowStartMilliseconds, ==, r->start_ns / 1000000);
	g_assert_cmpuint(c->flowEndMilliseconds, ==, r->end_ns / 1000000);
	g_assert_cmpuint(c->octetDeltaCount, ==, reply ? r->reply_bytes : r->bytes);
	g_assert_cmpuint(c->packetDeltaCount, ==, reply ? r->reply_packets : r->packets);
	g_assert_cmpuint(c->reverseOctetDeltaCount, ==, 0);
	g_assert_cmpuint(c->reversePacketDeltaCount, ==, 0);
	g_assert_cmpuint(c->octetTotalCount, ==, 0);
	g_assert_cmpuint(c->protocolIdentifier, ==, r->proto);
	g_assert_cmpuint(c->flowEndReason, ==, r->end_reason);
	g_assert_cmpuint(c->ingressVRFID, ==, r->zone);
	g_assert_cmpuint(c->observationDomainId, ==, DOMAIN);
	if (v4) {
		g_assert_cmphex(c->sourceIPv4Address, ==, v4_host(t->src));
		g_assert_cmphex(c->destinationIPv4Address, ==, v4_host(t->dst));
		g_assert_cmphex(c->postNATSourceIPv4Address, ==, nat ? v4_host(back->dst) : 0);
		g_assert_cmphex(c->postNATDestinationIPv4Address, ==, nat ? v4_host(back->src) : 0);
	} else {
		g_assert_cmpmem(c->sourceIPv6Address, 16, t->src, 16);
		g_assert_cmpmem(c->destinationIPv6Address, 16, t->dst, 16);
		g_assert_cmpmem(c->postNATSourceIPv6Address, 16, nat ? back->dst : zero16, 16);
		g_assert_cmpmem(c->postNATDestinationIPv6Address, 16, nat ? back->src : zero16, 16);
	}
	if (flow_is_icmp(r)) {
		g_assert_cmpuint(c->sourceTransportPort, ==, 0);
		g_assert_cmphex(c->destinationTransportPort, ==, type_code);
		g_assert_cmpuint(c->postNAPTSourceTransportPort, ==, 0);
		g_assert_cmpuint(c->postNAPTDestinationTransportPort, ==, 0);
	} else {
		g_assert_cmpuint(c->sourceTransportPort, ==, t->sport);
		g_assert_cmpuint(c->destinationTransportPort, ==, t->dport);
		g_assert_cmpuint(c->postNAPTSourceTransportPort, ==, nat ? back->dport : 0);
		g_assert_cmpuint(c->postNAPTDestinationTransportPort, ==, nat ? back->sport : 0);
	}
	g_assert_cmphex(c->icmpTypeCodeIPv4, ==, r->proto == IPPROTO_ICMP ? type_code : 0);
	g_assert_cmphex(c->icmpTypeCodeIPv6, ==, r->proto == IPPROTO_ICMPV6 ? type_code : 0);
}

/*
 * uniflow = yes: each connection as one record per direction that had
 * packets, both in the same message (the transport counts connections per
 * message), the message's count in connections; only uniflow templates.
 */
static void test_uniflow(void)
{
	struct capture c;
	encoder *enc = new_encoder_opts(512, NULL, TRUE, &c);
	const guint n = 200;
	guint64 want_records = 0;

	start_ok(enc);
	for (guint i = 0; i < n; i++) {
		struct flow_record r = rec_numbered(i);
		r.reply_icmp_type = (uint8_t)(i % 3);
		if (i % 7 == 3)
			r.reply_packets = 0;   /* nothing came back: one record */
		want_records += r.reply_packets ? 2 : 1;
		add_ok(enc, &r);
	}
	flush_ok(enc);

	/* per message: the data records it holds, against the connections
	 * counted for it, in order */
	guint flow = 0;
	guint64 total = 0;
	for (guint m = 0; m < c.msgs->len; m++) {
		gsize len;
		const uint8_t *data = g_bytes_get_data(g_ptr_array_index(c.msgs, m), &len);
		struct wire_session ws;
		struct wire_msg wm;
		wire_session_init(&ws);
		/* templates come in message 0: read it first for their lengths */
		gsize len0;
		const uint8_t *t0 = g_bytes_get_data(g_ptr_array_index(c.msgs, 0), &len0);
		struct wire_msg w0;
		parse_message(&ws, t0, len0, &w0);
		if (m == 0) {
			g_assert_cmpuint(w0.template_ids->len, ==, 4);
			for (guint k = 0; k < w0.template_ids->len; k++) {
				uint16_t tid = g_array_index(w0.template_ids, uint16_t, k);
				g_assert_cmpuint(tid, >=, TID_UNI4);
				g_assert_cmpuint(tid, <=, TID_UNI6_NAT);
			}
		}
		wire_msg_clear(&w0);
		if (m > 0) {
			parse_message(&ws, data, len, &wm);
			g_assert_cmpuint(len, <=, 512);
			guint expect = 0;
			for (guint k = 0; k < capture_count(&c, m); k++)
				expect += (flow + k) % 7 == 3 ? 1 : 2;
			g_assert_cmpuint(wm.data_records, ==, expect);
			flow += capture_count(&c, m);
			total += wm.data_records;
			wire_msg_clear(&wm);
		}
		wire_session_clear(&ws);
	}
	g_assert_cmpuint(flow, ==, n);
	g_assert_cmpuint(total, ==, want_records);

	g_autoptr(GArray) got = read_back(&c, 0, c.msgs->len);
	g_assert_cmpuint(got->len, ==, want_records);
	guint k = 0;
	for (guint i = 0; i < n && k < got->len; i++) {
		struct flow_record r = rec_numbered(i);
		r.reply_icmp_type = (uint8_t)(i % 3);
		if (i % 7 == 3)
			r.reply_packets = 0;
		check_uni(&g_array_index(got, struct collected, k++), &r, FALSE);
		if (r.reply_packets)
			check_uni(&g_array_index(got, struct collected, k++), &r, TRUE);
	}
	g_assert_cmpuint(k, ==, got->len);
	encoder_free(enc);
	capture_clear(&c);
}

/*
 * An interim record's counters, and a final record after it, per counters
 * key: delta sends what came since the previous record over the period
 * since then, total what came since the start over the whole connection,
 * both sends both sets from the start.  Uniflow records carry their
 * direction's share the same way.
 */
static void test_counters_modes(void)
{
	struct flow_record r = rec_numbered(5);
	interim_example(&r);

	for (int mode = EXPORT_COUNTERS_DELTA; mode <= EXPORT_COUNTERS_BOTH; mode++) {
		for (int uni = 0; uni < 2; uni++) {
			struct capture c;
			encoder *enc = new_encoder_counters(mode, uni, &c);
			start_ok(enc);
			add_ok(enc, &r);
			flush_ok(enc);
			g_autoptr(GArray) got = read_back(&c, 0, c.msgs->len);
			g_assert_cmpuint(got->len, ==, uni ? 2 : 1);
			gboolean delta = mode != EXPORT_COUNTERS_TOTAL;
			gboolean total = mode != EXPORT_COUNTERS_DELTA;
			for (guint i = 0; i < got->len; i++) {
				const struct coll_rec *k = &g_array_index(got, struct collected, i).rec;
				gboolean reply = uni && k->biflowDirection == 2;
				g_assert_cmpuint(k->flowStartMilliseconds, ==,
						 (mode == EXPORT_COUNTERS_DELTA ? r.period_start_ns
										: r.start_ns) / 1000000);
				g_assert_cmpuint(k->flowEndMilliseconds, ==, r.end_ns / 1000000);
				g_assert_cmpuint(k->flowEndReason, ==, FLOW_END_ACTIVE_TIMEOUT);
				g_assert_cmpuint(k->octetDeltaCount, ==, delta ? (reply ? 1000 : 4000) : 0);
				g_assert_cmpuint(k->packetDeltaCount, ==, delta ? (reply ? 10 : 40) : 0);
				g_assert_cmpuint(k->octetTotalCount, ==, total ? (reply ? 4000 : 10000) : 0);
				g_assert_cmpuint(k->packetTotalCount, ==, total ? (reply ? 40 : 100) : 0);
				g_assert_cmpuint(k->reverseOctetDeltaCount, ==, delta && !uni ? 1000 : 0);
				g_assert_cmpuint(k->reversePacketDeltaCount, ==, delta && !uni ? 10 : 0);
				g_assert_cmpuint(k->reverseOctetTotalCount, ==, total && !uni ? 4000 : 0);
				g_assert_cmpuint(k->reversePacketTotalCount, ==, total && !uni ? 40 : 0);
			}
			encoder_free(enc);
			capture_clear(&c);
		}
	}
}

/*
 * An export of a failover pair (failover set, or a standby) under a PEN
 * also reports its hand-offs, as elements 107 to 109 named by their type
 * records; without a PEN, only IANA's elements go out, as for any export.
 */
static void test_statistics_failover_elements(void)
{
	struct export_config cfg = {
		.name = (char *)"test",
		.format = EXPORT_FORMAT_IPFIX,
		.transport = EXPORT_TRANSPORT_FILE,
		.mtu = 1400,
		.observation_domain = DOMAIN,
		.enterprise_number = PEN_DOC,
		.failover = (char *)"spare",
	};
	struct export_statistics stats = sample_stats;
	g_autoptr(GError) error = NULL;
	struct capture c;

	stats.failover = TRUE;
	stats.takeovers = 3;
	stats.givebacks = 2;
	stats.doubtful = 7;
	capture_init(&c);
	encoder *enc = encoder_new(&cfg, capture_emit, &c, &error);
	g_assert_no_error(error);
	start_ok(enc);
	report_ok(enc, &stats);
	const uint8_t *rec = NULL;
	for (guint m = 0; m < c.msgs->len && !rec; m++) {
		gsize len;
		const uint8_t *msg = g_bytes_get_data(g_ptr_array_index(c.msgs, m), &len);
		for (gsize off = 16; off + 4 <= len; off += get16(msg + off + 2)) {
			if (get16(msg + off) != 258)
				continue;
			/* the 5 own elements and the 3 of failover */
			g_assert_cmpuint(get16(msg + off + 2), ==, 4 + 8 + 6 * 8 + 8 * 8);
			rec = msg + off + 4;
		}
	}
	g_assert_nonnull(rec);
	g_assert_cmpuint(get64(rec + 88), ==, 1300);   /* spool dropped, as before */
	g_assert_cmpuint(get64(rec + 96), ==, 3);
	g_assert_cmpuint(get64(rec + 104), ==, 2);
	g_assert_cmpuint(get64(rec + 112), ==, 7);
	g_autofree char *ipfixdump = g_find_program_in_path("ipfixDump");
	if (ipfixdump) {
		g_autofree char *out = run_ipfixdump(ipfixdump, &c, TRUE);
		g_autoptr(GRegex) re = g_regex_new("ctflowdFailoverDoubtfulTotalCount\\s*:\\s*7\\b",
						   0, 0, NULL);
		if (!g_regex_match(re, out, 0, NULL) || !strstr(out, "ctflowdFailoverTakeoverTotalCount") ||
		    !strstr(out, "ctflowdFailoverGivebackTotalCount"))
			g_error("ipfixDump --rfc5610 does not show the failover counts:\n%s", out);
	}
	encoder_free(enc);
	capture_clear(&c);

	/* the standby of a pair, without a PEN: IANA's elements only */
	cfg.failover = NULL;
	cfg.standby = TRUE;
	cfg.enterprise_number = 0;
	capture_init(&c);
	enc = encoder_new(&cfg, capture_emit, &c, &error);
	g_assert_no_error(error);
	start_ok(enc);
	report_ok(enc, &stats);
	g_assert_cmpint(find_stats(&c, FALSE, &rec), >=, 0);
	encoder_free(enc);
	capture_clear(&c);
}

/* ---- NAT session events (RFC 8158) ------------------------------------------------ */

#define NAT_TID 0x9998

/* the collector's own order: fixbuf matches elements by name */
struct coll_nat {
	uint64_t observationTimeMilliseconds;
	uint32_t ingressVRFID;
	uint32_t sourceIPv4Address;
	uint32_t destinationIPv4Address;
	uint32_t postNATSourceIPv4Address;
	uint32_t postNATDestinationIPv4Address;
	uint16_t sourceTransportPort;
	uint16_t destinationTransportPort;
	uint16_t postNAPTSourceTransportPort;
	uint16_t postNAPTDestinationTransportPort;
	uint8_t natEvent;
	uint8_t protocolIdentifier;
	uint8_t paddingOctets[2];
};
_Static_assert(sizeof(struct coll_nat) == 40, "coll_nat size");

static fbInfoElementSpec_t coll_nat_spec[] = {
	IE("observationTimeMilliseconds", 8),
	IE("ingressVRFID", 4),
	IE("sourceIPv4Address", 4),
	IE("destinationIPv4Address", 4),
	IE("postNATSourceIPv4Address", 4),
	IE("postNATDestinationIPv4Address", 4),
	IE("sourceTransportPort", 2),
	IE("destinationTransportPort", 2),
	IE("postNAPTSourceTransportPort", 2),
	IE("postNAPTDestinationTransportPort", 2),
	IE("natEvent", 1),
	IE("protocolIdentifier", 1),
	IE("paddingOctets", 2),
	FB_IESPEC_NULL
};

/* The next record of the buffer in @got; FALSE at the end of its message. */
static gboolean next_nat_record(fBuf_t *fbuf, struct coll_nat *got)
{
	g_autoptr(GError) error = NULL;
	size_t reclen = sizeof(*got);

	if (fBufNext(fbuf, (uint8_t *)got, &reclen, &error))
		return TRUE;
	g_assert_error(error, FB_ERROR_DOMAIN, FB_ERROR_BUFSZ);
	return FALSE;
}

/* The NAT events in @c, as a collector reads them (other records skipped). */
static GArray *read_nat_events(const struct capture *c)
{
	GArray *out = g_array_new(FALSE, TRUE, sizeof(struct coll_nat));
	g_autoptr(GError) error = NULL;
	fbInfoModel_t *model = NULL;
	fBuf_t *fbuf = collector_for(coll_nat_spec, NAT_TID, &model);
	for (guint m = 0; m < c->msgs->len; m++) {
		gsize len;
		const uint8_t *data = g_bytes_get_data(g_ptr_array_index(c->msgs, m), &len);
		g_autofree uint8_t *copy = g_memdup2(data, len);
		fBufSetBuffer(fbuf, copy, len);
		struct coll_nat got = {0};
		while (next_nat_record(fbuf, &got)) {
			if (got.natEvent)
				g_array_append_val(out, got);
			memset(&got, 0, sizeof(got));
		}
	}
	fBufFree(fbuf);
	fbInfoModelFree(model);
	return out;
}

static void check_nat_event(const struct coll_nat *e, const struct flow_record *r, uint8_t event,
			    uint64_t time_ns)
{
	g_assert_cmpuint(e->natEvent, ==, event);
	g_assert_cmpuint(e->observationTimeMilliseconds, ==, time_ns / 1000000);
	g_assert_cmpuint(e->sourceIPv4Address, ==, v4_host(r->orig.src));
	g_assert_cmpuint(e->postNATSourceIPv4Address, ==, v4_host(r->reply.dst));
	g_assert_cmpuint(e->destinationIPv4Address, ==, v4_host(r->orig.dst));
	g_assert_cmpuint(e->postNATDestinationIPv4Address, ==, v4_host(r->reply.src));
	g_assert_cmpuint(e->sourceTransportPort, ==, r->orig.sport);
	g_assert_cmpuint(e->postNAPTSourceTransportPort, ==, r->reply.dport);
	g_assert_cmpuint(e->destinationTransportPort, ==, r->orig.dport);
	g_assert_cmpuint(e->postNAPTDestinationTransportPort, ==, r->reply.sport);
	g_assert_cmpuint(e->protocolIdentifier, ==, r->proto);
	g_assert_cmpuint(e->ingressVRFID, ==, r->zone);
}

/*
 * records = nat-events: a create (natEvent 4) from a NAT create record, a
 * late create and a delete (5) from a translated DESTROY marked late, in
 * one message; nothing for untranslated, interim or NAT66 records, which
 * still count as passed.  Under a PEN the marks go out as
 * ctflowdNatEventFlags, named by a type record.
 */
static void test_nat_events(void)
{
	struct capture c;

	next_records = EXPORT_RECORDS_NAT_EVENTS;
	encoder *enc = new_encoder_pen(1400, PEN_DOC, &c);
	next_records = EXPORT_RECORDS_FLOWS;
	struct flow_record create = rec_udp4(), late_end = rec_udp4(), plain = rec_udp4();
	struct flow_record interim = rec_udp4(), nat66 = rec_tcp6();

	create.event = FLOW_EVENT_NEW;
	create.start_ns = create.end_ns = 1700000000500000000ull;
	create.flags |= FLOW_REFRESH;
	late_end.flags |= FLOW_LATE;
	memcpy(plain.reply.dst, plain.orig.src, 16);
	plain.reply.dport = plain.orig.sport;
	interim.end_reason = FLOW_END_ACTIVE_TIMEOUT;
	interim.event = FLOW_EVENT_DUMP;
	nat66.reply.dport = 40001;   /* its port translated */
	start_ok(enc);
	guint first = c.msgs->len;
	add_ok(enc, &create);
	add_ok(enc, &plain);
	add_ok(enc, &late_end);
	add_ok(enc, &interim);
	add_ok(enc, &nat66);
	flush_ok(enc);
	guint counted = 0;
	for (guint m = first; m < c.msgs->len; m++)
		counted += capture_count(&c, m);
	g_assert_cmpuint(counted, ==, 5);
	g_assert_cmpuint(encoder_pending(enc), ==, 0);

	g_autoptr(GArray) ev = read_nat_events(&c);
	g_assert_cmpuint(ev->len, ==, 3);
	check_nat_event(&g_array_index(ev, struct coll_nat, 0), &create, 4, create.end_ns);
	check_nat_event(&g_array_index(ev, struct coll_nat, 1), &late_end, 4, late_end.start_ns);
	check_nat_event(&g_array_index(ev, struct coll_nat, 2), &late_end, 5, late_end.end_ns);

	g_autofree char *ipfixdump = g_find_program_in_path("ipfixDump");
	if (!ipfixdump) {
		g_test_skip("ipfixDump (libfixbuf-tools) not installed");
	} else {
		g_autofree char *out = run_ipfixdump(ipfixdump, &c, TRUE);
		g_autoptr(GRegex) re = g_regex_new("ctflowdNatEventFlags\\s*:\\s*(\\d+)", 0, 0, NULL);
		g_autoptr(GMatchInfo) mi = NULL;
		g_autoptr(GString) marks = g_string_new(NULL);
		for (g_regex_match(re, out, 0, &mi); g_match_info_matches(mi);
		     g_match_info_next(mi, NULL)) {
			g_autofree char *v = g_match_info_fetch(mi, 1);
			g_string_append_printf(marks, "%s ", v);
		}
		/* refresh, late, none */
		if (strcmp(marks->str, "2 1 0 ") != 0)
			g_error("ipfixDump shows marks \"%s\", want \"2 1 0 \":\n%s", marks->str, out);
	}
	encoder_free(enc);
	capture_clear(&c);

	/* records = flows: a NAT create record is passed, not sent */
	enc = new_encoder(1400, &c);
	start_ok(enc);
	first = c.msgs->len;
	add_ok(enc, &create);
	flush_ok(enc);
	g_assert_cmpuint(c.msgs->len, ==, first + 1);
	g_assert_cmpuint(g_bytes_get_size(g_ptr_array_index(c.msgs, first)), ==, 0);
	g_assert_cmpuint(capture_count(&c, first), ==, 1);
	encoder_free(enc);
	capture_clear(&c);
}

/* records = both: the flow and its events (a late create and the delete)
 * go in one message, counted as the one record they come from, also when
 * messages are small. */
static void test_nat_events_with_flows(void)
{
	struct capture c;

	next_records = EXPORT_RECORDS_BOTH;
	encoder *enc = new_encoder(512, &c);
	next_records = EXPORT_RECORDS_FLOWS;
	struct flow_record end = rec_udp4();
	end.flags |= FLOW_LATE;
	start_ok(enc);
	guint first = c.msgs->len;
	for (guint i = 0; i < 20; i++) {
		end.flow_id = i;
		add_ok(enc, &end);
	}
	flush_ok(enc);
	guint counted = 0;
	for (guint m = first; m < c.msgs->len; m++)
		counted += capture_count(&c, m);
	g_assert_cmpuint(counted, ==, 20);
	/* each message holds whole records: a flow and its two events */
	g_autoptr(GArray) flows = read_back(&c, 0, c.msgs->len);
	g_autoptr(GArray) ev = read_nat_events(&c);
	g_assert_cmpuint(ev->len, ==, 40);
	guint flows_seen = 0;
	for (guint i = 0; i < flows->len; i++)
		flows_seen += g_array_index(flows, struct collected, i).rec.flowEndMilliseconds != 0;
	g_assert_cmpuint(flows_seen, ==, 20);
	encoder_free(enc);
	capture_clear(&c);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	/* One failing case is reported and the others still run. */
	g_test_set_nonfatal_assertions();

	g_test_add_func("/encoder_ipfix/session-starts-with-templates",
			test_session_starts_with_templates);
	g_test_add_func("/encoder_ipfix/fields", test_fields);
	g_test_add_func("/encoder_ipfix/nat-events", test_nat_events);
	g_test_add_func("/encoder_ipfix/nat-events-with-flows", test_nat_events_with_flows);
	g_test_add_func("/encoder_ipfix/statistics-report", test_statistics_report);
	g_test_add_func("/encoder_ipfix/statistics-own-elements", test_statistics_own_elements);
	g_test_add_func("/encoder_ipfix/marks", test_marks);
	g_test_add_func("/encoder_ipfix/marks-need-pen", test_marks_need_pen);
	g_test_add_func("/encoder_ipfix/zone-vrf", test_zone_vrf);
	g_test_add_func("/encoder_ipfix/uniflow", test_uniflow);
	g_test_add_func("/encoder_ipfix/mixed-families", test_mixed_families);
	g_test_add_func("/encoder_ipfix/mtu/packing", test_mtu_packing);
	g_test_add_func("/encoder_ipfix/mtu/512", test_mtu_small);
	g_test_add_func("/encoder_ipfix/mtu/1399", test_mtu_odd);
	g_test_add_func("/encoder_ipfix/mtu/65000", test_mtu_large);
	g_test_add_func("/encoder_ipfix/refresh-templates", test_refresh_templates);
	g_test_add_func("/encoder_ipfix/second-session", test_second_session);
	g_test_add_func("/encoder_ipfix/message-limit", test_message_limit);
	g_test_add_func("/encoder_ipfix/export-time", test_export_time);
	g_test_add_func("/encoder_ipfix/emit-error", test_emit_error);
	g_test_add_func("/encoder_ipfix/ipfixdump", test_ipfixdump);
	g_test_add_func("/encoder_ipfix/counters-modes", test_counters_modes);
	g_test_add_func("/encoder_ipfix/statistics-failover-elements", test_statistics_failover_elements);

	return g_test_run();
}
