/*
 * test_ct_parse.c - ct_parse_message() against hand-built ctnetlink messages.
 *
 * Messages are laid out the way the kernel's ctnetlink_conntrack_event() and
 * ctnetlink_fill_info() write them, so the parser is judged on what it will
 * really receive; libnetfilter_conntrack's own parser is the second opinion
 * on valid input.  Every parse runs on an exact-size heap copy of the
 * message, so a read past nlmsg_len shows up under valgrind or ASan.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <glib.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_conntrack_tcp.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include <libnetfilter_conntrack/libnetfilter_conntrack.h>

#include "ctflowd/ct_parse.h"

#define MSG_BUF_SIZE 2048

/* Sent by Linux 6.14 and later; newer than these headers. */
#ifndef CTA_TIMESTAMP_EVENT
#define CTA_TIMESTAMP_EVENT (CTA_STATUS_MASK + 1)
#endif

/* ------------------------------------------------------------------------ */
/* Message builder                                                           */
/* ------------------------------------------------------------------------ */

/* One direction.  Addresses are text; their family is taken from the text, so
 * a test can mix families inside a tuple on purpose.  For ICMP/ICMPv6 sport
 * carries the echo id. */
struct tuple_spec {
	const char *src, *dst; /* NULL: attribute left out */
	uint16_t sport, dport;
	uint8_t icmp_type, icmp_code;
	uint16_t zone;         /* CTA_TUPLE_ZONE, sent only when non-zero */
};

enum omit {
	OMIT_ORIG_TUPLE = 1u << 0,
	OMIT_REPLY_TUPLE = 1u << 1,
	OMIT_ORIG_IP = 1u << 2,      /* CTA_TUPLE_ORIG without CTA_TUPLE_IP */
	OMIT_REPLY_IP = 1u << 3,
	OMIT_PROTO_NUM = 1u << 4,    /* CTA_TUPLE_PROTO without CTA_PROTO_NUM */
	OMIT_COUNTERS_ORIG = 1u << 5,
	OMIT_COUNTERS_REPLY = 1u << 6,
	OMIT_TIMESTAMP = 1u << 7,
	OMIT_TSTAMP_STOP = 1u << 8,
	OMIT_ID = 1u << 9,
	OMIT_MARK = 1u << 10,
	OMIT_PROTOINFO = 1u << 11,
	OMIT_PACKETS_ORIG = 1u << 12, /* CTA_COUNTERS_ORIG without PACKETS */
};

struct msg_spec {
	uint16_t subsys, msg_type, nlflags;
	uint32_t portid;   /* nlmsg_pid: who asked for the deletion (0: the kernel) */
	uint8_t family, proto;
	struct tuple_spec orig, reply;
	uint32_t id, mark, status;
	uint16_t zone; /* CTA_ZONE, sent only when non-zero (as the kernel does) */
	uint64_t packets, bytes, reply_packets, reply_bytes;
	uint64_t start_ns, stop_ns;
	uint8_t tcp_state;
	unsigned omit;
	bool counters32;   /* CTA_COUNTERS32_* instead of the 64-bit ones */
	bool pad64;        /* *_PAD attributes before u64s, as nla_put_64bit() does
			    * on architectures without efficient unaligned access */
	bool extra_attrs;  /* CTA_LABELS and CTA_TIMESTAMP_EVENT, unused by the parser */
	/* The attribute at this path of types (0-terminated) gets a payload of
	 * bad_len bytes instead of its real one. */
	uint16_t bad_path[4];
	size_t bad_len;
};

struct builder {
	struct nlmsghdr *nlh;
	const struct msg_spec *spec;
	uint16_t path[4];
	int depth;
};

static bool builder_targets(const struct builder *b, uint16_t type)
{
	const uint16_t *want = b->spec->bad_path;

	if (!want[0])
		return false;
	for (int i = 0; i < b->depth; i++)
		if (want[i] != b->path[i])
			return false;
	return want[b->depth] == type && (b->depth + 1 == 4 || want[b->depth + 1] == 0);
}

static void put(struct builder *b, uint16_t type, const void *data, size_t len)
{
	if (builder_targets(b, type)) {
		uint8_t junk[64];

		g_assert_cmpuint(b->spec->bad_len, <=, sizeof(junk));
		memset(junk, 0x5a, sizeof(junk));
		memcpy(junk, data, MIN(len, b->spec->bad_len));
		mnl_attr_put(b->nlh, type, b->spec->bad_len, junk);
		return;
	}
	mnl_attr_put(b->nlh, type, len, data);
}

static void put_u8(struct builder *b, uint16_t type, uint8_t v)
{
	put(b, type, &v, sizeof(v));
}

static void put_be16(struct builder *b, uint16_t type, uint16_t v)
{
	v = htons(v);
	put(b, type, &v, sizeof(v));
}

static void put_be32(struct builder *b, uint16_t type, uint32_t v)
{
	v = htonl(v);
	put(b, type, &v, sizeof(v));
}

static void put_be64(struct builder *b, uint16_t type, uint16_t padtype, uint64_t v)
{
	if (b->spec->pad64)
		mnl_attr_put(b->nlh, padtype, 0, NULL);
	v = htobe64(v);
	put(b, type, &v, sizeof(v));
}

static struct nlattr *nest_start(struct builder *b, uint16_t type)
{
	g_assert_cmpint(b->depth, <, 3);
	b->path[b->depth++] = type;
	return mnl_attr_nest_start(b->nlh, type);
}

static void nest_end(struct builder *b, struct nlattr *nest)
{
	b->depth--;
	mnl_attr_nest_end(b->nlh, nest);
}

static void put_addr(struct builder *b, bool src, const char *text)
{
	uint8_t addr[16];

	if (!text)
		return;
	if (strchr(text, ':')) {
		g_assert_cmpint(inet_pton(AF_INET6, text, addr), ==, 1);
		put(b, src ? CTA_IP_V6_SRC : CTA_IP_V6_DST, addr, 16);
	} else {
		g_assert_cmpint(inet_pton(AF_INET, text, addr), ==, 1);
		put(b, src ? CTA_IP_V4_SRC : CTA_IP_V4_DST, addr, 4);
	}
}

/* ctnetlink_dump_tuples() + the tuple zone, as the kernel nests them. */
static void put_tuple(struct builder *b, uint16_t type, const struct tuple_spec *t, bool with_ip)
{
	const struct msg_spec *s = b->spec;
	struct nlattr *tuple = nest_start(b, type);

	if (with_ip) {
		struct nlattr *ip = nest_start(b, CTA_TUPLE_IP);
		put_addr(b, true, t->src);
		put_addr(b, false, t->dst);
		nest_end(b, ip);
	}

	struct nlattr *proto = nest_start(b, CTA_TUPLE_PROTO);
	if (!(s->omit & OMIT_PROTO_NUM))
		put_u8(b, CTA_PROTO_NUM, s->proto);
	if (s->proto == IPPROTO_ICMP) {
		put_be16(b, CTA_PROTO_ICMP_ID, t->sport);
		put_u8(b, CTA_PROTO_ICMP_TYPE, t->icmp_type);
		put_u8(b, CTA_PROTO_ICMP_CODE, t->icmp_code);
	} else if (s->proto == IPPROTO_ICMPV6) {
		put_be16(b, CTA_PROTO_ICMPV6_ID, t->sport);
		put_u8(b, CTA_PROTO_ICMPV6_TYPE, t->icmp_type);
		put_u8(b, CTA_PROTO_ICMPV6_CODE, t->icmp_code);
	} else {
		put_be16(b, CTA_PROTO_SRC_PORT, t->sport);
		put_be16(b, CTA_PROTO_DST_PORT, t->dport);
	}
	nest_end(b, proto);

	if (t->zone)
		put_be16(b, CTA_TUPLE_ZONE, t->zone);
	nest_end(b, tuple);
}

static void put_counters(struct builder *b, uint16_t type, uint64_t packets, uint64_t bytes,
			 bool with_packets)
{
	const struct msg_spec *s = b->spec;
	struct nlattr *nest = nest_start(b, type);

	if (s->counters32) {
		if (with_packets)
			put_be32(b, CTA_COUNTERS32_PACKETS, (uint32_t)packets);
		put_be32(b, CTA_COUNTERS32_BYTES, (uint32_t)bytes);
	} else {
		if (with_packets)
			put_be64(b, CTA_COUNTERS_PACKETS, CTA_COUNTERS_PAD, packets);
		put_be64(b, CTA_COUNTERS_BYTES, CTA_COUNTERS_PAD, bytes);
	}
	nest_end(b, nest);
}

static void put_protoinfo_tcp(struct builder *b, bool destroy)
{
	struct nlattr *info = nest_start(b, CTA_PROTOINFO);
	struct nlattr *tcp = nest_start(b, CTA_PROTOINFO_TCP);

	put_u8(b, CTA_PROTOINFO_TCP_STATE, b->spec->tcp_state);
	/* tcp_to_nlattr() leaves the window data out of DESTROY events. */
	if (!destroy) {
		struct nf_ct_tcp_flags flags = {.flags = 0x03, .mask = 0x03};

		put_u8(b, CTA_PROTOINFO_TCP_WSCALE_ORIGINAL, 7);
		put_u8(b, CTA_PROTOINFO_TCP_WSCALE_REPLY, 7);
		put(b, CTA_PROTOINFO_TCP_FLAGS_ORIGINAL, &flags, sizeof(flags));
		put(b, CTA_PROTOINFO_TCP_FLAGS_REPLY, &flags, sizeof(flags));
	}
	nest_end(b, tcp);
	nest_end(b, info);
}

/* Attribute order follows ctnetlink_conntrack_event() (Linux 6.x). */
static struct nlmsghdr *msg_build(const struct msg_spec *s, void *buf)
{
	struct builder b = {.spec = s};
	const bool destroy = s->msg_type == IPCTNL_MSG_CT_DELETE;
	const bool dump = s->nlflags & NLM_F_MULTI;

	memset(buf, 0, MSG_BUF_SIZE);
	b.nlh = mnl_nlmsg_put_header(buf);
	b.nlh->nlmsg_type = (uint16_t)((s->subsys << 8) | s->msg_type);
	b.nlh->nlmsg_flags = s->nlflags;
	b.nlh->nlmsg_pid = s->portid;
	struct nfgenmsg *nfg = mnl_nlmsg_put_extra_header(b.nlh, sizeof(*nfg));
	nfg->nfgen_family = s->family;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = 0;

	if (!(s->omit & OMIT_ORIG_TUPLE))
		put_tuple(&b, CTA_TUPLE_ORIG, &s->orig, !(s->omit & OMIT_ORIG_IP));
	if (!(s->omit & OMIT_REPLY_TUPLE))
		put_tuple(&b, CTA_TUPLE_REPLY, &s->reply, !(s->omit & OMIT_REPLY_IP));
	if (s->zone)
		put_be16(&b, CTA_ZONE, s->zone);
	if (!(s->omit & OMIT_ID))
		put_be32(&b, CTA_ID, s->id);
	put_be32(&b, CTA_STATUS, s->status);
	put_be32(&b, CTA_TIMEOUT, destroy ? 0 : 30);

	/* Counters and timestamps come with DESTROY events and dumps only. */
	if (destroy || dump) {
		if (!(s->omit & OMIT_COUNTERS_ORIG))
			put_counters(&b, CTA_COUNTERS_ORIG, s->packets, s->bytes,
				     !(s->omit & OMIT_PACKETS_ORIG));
		if (!(s->omit & OMIT_COUNTERS_REPLY))
			put_counters(&b, CTA_COUNTERS_REPLY, s->reply_packets, s->reply_bytes, true);
		if (!(s->omit & OMIT_TIMESTAMP)) {
			struct nlattr *ts = nest_start(&b, CTA_TIMESTAMP);
			put_be64(&b, CTA_TIMESTAMP_START, CTA_TIMESTAMP_PAD, s->start_ns);
			if (!(s->omit & OMIT_TSTAMP_STOP))
				put_be64(&b, CTA_TIMESTAMP_STOP, CTA_TIMESTAMP_PAD, s->stop_ns);
			nest_end(&b, ts);
		}
	}
	if (s->proto == IPPROTO_TCP && !(s->omit & OMIT_PROTOINFO))
		put_protoinfo_tcp(&b, destroy);
	if (!(s->omit & OMIT_MARK))
		put_be32(&b, CTA_MARK, s->mark);
	if (dump)
		put_be32(&b, CTA_USE, 1);
	if (s->extra_attrs) {
		/* labels 0 and 127, as the kernel's bitmap of unsigned longs */
		unsigned long labels[16 / sizeof(unsigned long)] = {0};

		labels[0] |= 1ul;
		labels[G_N_ELEMENTS(labels) - 1] |= 1ul << (8 * sizeof(unsigned long) - 1);
		put(&b, CTA_LABELS, labels, sizeof(labels));
		uint64_t event_ns = htobe64(s->stop_ns + 1000);
		put(&b, CTA_TIMESTAMP_EVENT, &event_ns, sizeof(event_ns));
	}
	g_assert_cmpuint(b.nlh->nlmsg_len, <=, MSG_BUF_SIZE);
	return b.nlh;
}

/* Finds the attribute at a 0-terminated path of types, for tests that patch a
 * built message in place. */
static struct nlattr *msg_find_attr(struct nlmsghdr *nlh, const uint16_t *path)
{
	char *start = mnl_nlmsg_get_payload_offset(nlh, sizeof(struct nfgenmsg));
	size_t len = (size_t)((char *)nlh + nlh->nlmsg_len - start);
	struct nlattr *attr, *found = NULL;

	for (int d = 0; path[d]; d++) {
		found = NULL;
		mnl_attr_for_each_payload((void *)start, len) {
			if (mnl_attr_get_type(attr) == path[d]) {
				found = attr;
				break;
			}
		}
		if (!found)
			g_error("test message lacks attribute type %u at depth %d", path[d], d);
		start = mnl_attr_get_payload(found);
		len = mnl_attr_get_payload_len(found);
	}
	return found;
}

/* ------------------------------------------------------------------------ */
/* Typical entries                                                           */
/* ------------------------------------------------------------------------ */

/* Values are chosen so that a byte-order slip, a 32-bit truncation or a swap
 * of the directions changes them. */
static struct msg_spec spec_udp4(void)
{
	return (struct msg_spec){
		.subsys = NFNL_SUBSYS_CTNETLINK,
		.msg_type = IPCTNL_MSG_CT_DELETE,
		.family = AF_INET,
		.proto = IPPROTO_UDP,
		.orig = {.src = "192.0.2.10", .dst = "198.51.100.20", .sport = 40000, .dport = 53},
		.reply = {.src = "198.51.100.20", .dst = "192.0.2.10", .sport = 53, .dport = 40000},
		.id = 0x8badf00d,
		.mark = 0x80c0ffee,
		.status = IPS_SEEN_REPLY | IPS_CONFIRMED | IPS_SRC_NAT_DONE | IPS_DST_NAT_DONE,
		.zone = 0x0102,
		.packets = 0x0000000200000003ull,
		.bytes = 0x0000001234567890ull,
		.reply_packets = 5,
		.reply_bytes = 0x00000000deadbeefull,
		.start_ns = 1700000000123456789ull,
		.stop_ns = 1700000030987654321ull,
	};
}

static struct msg_spec spec_tcp6(uint8_t tcp_state)
{
	struct msg_spec s = spec_udp4();

	s.family = AF_INET6;
	s.proto = IPPROTO_TCP;
	s.orig = (struct tuple_spec){.src = "2001:db8:1:2:3:4:5:6",
				     .dst = "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff",
				     .sport = 51515, .dport = 443};
	s.reply = (struct tuple_spec){.src = "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff",
				      .dst = "2001:db8:1:2:3:4:5:6",
				      .sport = 443, .dport = 51515};
	s.status = IPS_SEEN_REPLY | IPS_ASSURED | IPS_CONFIRMED;
	s.tcp_state = tcp_state;
	s.zone = 0;
	return s;
}

static struct msg_spec spec_icmp4(void)
{
	struct msg_spec s = spec_udp4();

	s.proto = IPPROTO_ICMP;
	s.orig = (struct tuple_spec){.src = "192.0.2.10", .dst = "198.51.100.20",
				     .sport = 0x4d2e, .icmp_type = 8, .icmp_code = 0};
	s.reply = (struct tuple_spec){.src = "198.51.100.20", .dst = "192.0.2.10",
				      .sport = 0x4d2e, .icmp_type = 0, .icmp_code = 0};
	return s;
}

static struct msg_spec spec_icmp6(void)
{
	struct msg_spec s = spec_tcp6(0);

	s.proto = IPPROTO_ICMPV6;
	s.orig.sport = 0x1f2e;
	s.orig.dport = 0;
	s.orig.icmp_type = 128;
	s.reply.sport = 0x1f2e;
	s.reply.dport = 0;
	s.reply.icmp_type = 129;
	return s;
}

/* Masquerade: the reply goes back to the router's address and a new port. */
static struct msg_spec spec_snat4(void)
{
	struct msg_spec s = spec_udp4();

	s.proto = IPPROTO_TCP;
	s.tcp_state = TCP_CONNTRACK_ESTABLISHED;
	s.orig = (struct tuple_spec){.src = "10.0.0.5", .dst = "93.184.216.34",
				     .sport = 51000, .dport = 443};
	s.reply = (struct tuple_spec){.src = "93.184.216.34", .dst = "203.0.113.1",
				      .sport = 443, .dport = 61000};
	s.status = IPS_SEEN_REPLY | IPS_ASSURED | IPS_CONFIRMED | IPS_SRC_NAT | IPS_SRC_NAT_DONE |
		   IPS_DST_NAT_DONE;
	return s;
}

/* Port forward: the reply comes from the internal server. */
static struct msg_spec spec_dnat4(void)
{
	struct msg_spec s = spec_udp4();

	s.orig = (struct tuple_spec){.src = "198.51.100.7", .dst = "203.0.113.1",
				     .sport = 50000, .dport = 8080};
	s.reply = (struct tuple_spec){.src = "10.0.0.80", .dst = "198.51.100.7",
				      .sport = 80, .dport = 50000};
	s.status = IPS_SEEN_REPLY | IPS_CONFIRMED | IPS_DST_NAT | IPS_SRC_NAT_DONE |
		   IPS_DST_NAT_DONE;
	return s;
}

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

/* Tells "why was left alone" from "why was set". */
static const char why_unset[] = "why was not touched";

/* Parses an exact-size copy of @nlh: the parser is told the message is
 * nlmsg_len bytes, so it must not read one byte further. */
static enum ct_parse_result parse(const struct nlmsghdr *nlh, struct flow_record *out,
				  const char **why)
{
	size_t len = MAX(nlh->nlmsg_len, (uint32_t)sizeof(uint32_t));
	struct nlmsghdr *copy = g_malloc(len);
	enum ct_parse_result res;

	memcpy(copy, nlh, len);
	memset(out, 0xa5, sizeof(*out));
	if (why)
		*why = why_unset;
	res = ct_parse_message(copy, out, why);
	g_free(copy);
	return res;
}

static void addr_from_text(const char *text, uint8_t addr[16])
{
	memset(addr, 0, 16);
	if (!text)
		return;
	g_assert_cmpint(inet_pton(strchr(text, ':') ? AF_INET6 : AF_INET, text, addr), ==, 1);
}

static void tuple_from_spec(const struct tuple_spec *t, uint8_t proto, struct flow_tuple *out)
{
	memset(out, 0, sizeof(*out));
	addr_from_text(t->src, out->src);
	addr_from_text(t->dst, out->dst);
	out->sport = t->sport;
	out->dport = (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6) ? 0 : t->dport;
}

/* The record a message should turn into, for the fields that are a plain
 * copy; flags, event and end_reason are left to each test to state. */
static struct flow_record want_from_spec(const struct msg_spec *s)
{
	struct flow_record r;

	memset(&r, 0, sizeof(r));
	r.start_ns = s->start_ns;
	r.end_ns = s->stop_ns;
	r.packets = s->packets;
	r.bytes = s->bytes;
	r.reply_packets = s->reply_packets;
	r.reply_bytes = s->reply_bytes;
	r.flow_id = s->id;
	tuple_from_spec(&s->orig, s->proto, &r.orig);
	tuple_from_spec(&s->reply, s->proto, &r.reply);
	r.ct_id = s->id;
	r.mark = s->mark;
	r.status = s->status;
	r.zone = s->zone;
	r.family = s->family;
	r.proto = s->proto;
	r.icmp_type = s->orig.icmp_type;
	r.icmp_code = s->orig.icmp_code;
	r.reply_icmp_type = s->reply.icmp_type;
	r.reply_icmp_code = s->reply.icmp_code;
	r.tcp_state = s->proto == IPPROTO_TCP ? s->tcp_state : 0;
	return r;
}

/* Field by field for a readable failure, then the whole struct so that no
 * field (or padding) escapes. */
static void assert_record_eq(const struct flow_record *got, const struct flow_record *want)
{
	g_assert_cmpmem(got->orig.src, 16, want->orig.src, 16);
	g_assert_cmpmem(got->orig.dst, 16, want->orig.dst, 16);
	g_assert_cmpuint(got->orig.sport, ==, want->orig.sport);
	g_assert_cmpuint(got->orig.dport, ==, want->orig.dport);
	g_assert_cmpmem(got->reply.src, 16, want->reply.src, 16);
	g_assert_cmpmem(got->reply.dst, 16, want->reply.dst, 16);
	g_assert_cmpuint(got->reply.sport, ==, want->reply.sport);
	g_assert_cmpuint(got->reply.dport, ==, want->reply.dport);
	g_assert_cmpuint(got->family, ==, want->family);
	g_assert_cmpuint(got->proto, ==, want->proto);
	g_assert_cmpuint(got->packets, ==, want->packets);
	g_assert_cmpuint(got->bytes, ==, want->bytes);
	g_assert_cmpuint(got->reply_packets, ==, want->reply_packets);
	g_assert_cmpuint(got->reply_bytes, ==, want->reply_bytes);
	g_assert_cmpuint(got->start_ns, ==, want->start_ns);
	g_assert_cmpuint(got->end_ns, ==, want->end_ns);
	g_assert_cmpuint(got->ct_id, ==, want->ct_id);
	g_assert_cmpuint(got->flow_id, ==, want->flow_id);
	g_assert_cmpuint(got->mark, ==, want->mark);
	g_assert_cmpuint(got->status, ==, want->status);
	g_assert_cmpuint(got->zone, ==, want->zone);
	g_assert_cmpuint(got->icmp_type, ==, want->icmp_type);
	g_assert_cmpuint(got->icmp_code, ==, want->icmp_code);
	g_assert_cmpuint(got->tcp_state, ==, want->tcp_state);
	g_assert_cmpuint(got->flags, ==, want->flags);
	g_assert_cmpuint(got->event, ==, want->event);
	g_assert_cmpuint(got->end_reason, ==, want->end_reason);
	g_assert_cmpmem(got, sizeof(*got), want, sizeof(*want));
}

static void assert_zeroed(const struct flow_record *r)
{
	static const struct flow_record zero;

	g_assert_cmpmem(r, sizeof(*r), &zero, sizeof(zero));
}

/* Says what a record that should not exist holds, for the failure log. */
static void describe_record(const struct flow_record *r)
{
	char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];
	int family = r->family == AF_INET6 ? AF_INET6 : AF_INET;

	inet_ntop(family, r->orig.src, src, sizeof(src));
	inet_ntop(family, r->orig.dst, dst, sizeof(dst));
	g_test_message("record: %s %u -> %s %u proto %u flags %#x packets %" G_GUINT64_FORMAT
		       " start %" G_GUINT64_FORMAT " end %" G_GUINT64_FORMAT " mark %#x",
		       src, r->orig.sport, dst, r->orig.dport, r->proto, r->flags, r->packets,
		       r->start_ns, r->end_ns, r->mark);
}

static void assert_parse_error(const struct nlmsghdr *nlh)
{
	struct flow_record out;
	const char *why;
	enum ct_parse_result res = parse(nlh, &out, &why);

	g_assert_cmpint(res, ==, CT_PARSE_ERROR);
	if (res != CT_PARSE_ERROR) {
		if (res == CT_PARSE_OK)
			describe_record(&out);
		return;
	}
	g_assert_true(why != why_unset);
	g_assert_nonnull(why);
	if (why) {
		g_assert_cmpuint(strlen(why), >, 0);
		g_test_message("why: %s", why);
	}
	assert_zeroed(&out);
}

static void assert_spec_parses(const struct msg_spec *s)
{
	_Alignas(8) char buf[MSG_BUF_SIZE];
	struct flow_record out;
	const char *why;
	enum ct_parse_result res = parse(msg_build(s, buf), &out, &why);

	if (res != CT_PARSE_OK)
		g_test_message("unexpected failure: %s", res == CT_PARSE_ERROR ? why : "ignored");
	g_assert_cmpint(res, ==, CT_PARSE_OK);
}

static void assert_spec_fails(const struct msg_spec *s)
{
	_Alignas(8) char buf[MSG_BUF_SIZE];

	assert_parse_error(msg_build(s, buf));
}

/* ------------------------------------------------------------------------ */
/* Valid DESTROY events                                                      */
/* ------------------------------------------------------------------------ */

static void test_destroy_ipv4_udp(void)
{
	struct msg_spec s = spec_udp4();
	_Alignas(8) char buf[MSG_BUF_SIZE];
	struct flow_record got;
	const char *why;

	g_assert_cmpint(parse(msg_build(&s, buf), &got, &why), ==, CT_PARSE_OK);

	/* Spelled out rather than derived from the spec: this test pins the
	 * wire-to-record byte order for every field. */
	struct flow_record want = {0};
	const uint8_t a[4] = {192, 0, 2, 10}, b[4] = {198, 51, 100, 20};
	memcpy(want.orig.src, a, 4);
	memcpy(want.orig.dst, b, 4);
	want.orig.sport = 40000;
	want.orig.dport = 53;
	memcpy(want.reply.src, b, 4);
	memcpy(want.reply.dst, a, 4);
	want.reply.sport = 53;
	want.reply.dport = 40000;
	want.family = AF_INET;
	want.proto = 17;
	want.packets = 0x0000000200000003ull;
	want.bytes = 0x0000001234567890ull;
	want.reply_packets = 5;
	want.reply_bytes = 0xdeadbeefull;
	want.start_ns = 1700000000123456789ull;
	want.end_ns = 1700000030987654321ull;
	want.ct_id = 0x8badf00d;
	want.flow_id = 0x8badf00d;
	want.mark = 0x80c0ffee;
	want.status = 0x18a; /* SEEN_REPLY | CONFIRMED | SRC_NAT_DONE | DST_NAT_DONE */
	want.zone = 0x0102;
	want.flags = FLOW_HAS_COUNTERS | FLOW_HAS_TIMESTAMPS | FLOW_HAS_ID;
	want.event = FLOW_EVENT_DESTROY;
	want.end_reason = FLOW_END_IDLE_TIMEOUT;
	assert_record_eq(&got, &want);
}

static void check_tcp6(uint8_t state, uint8_t end_reason)
{
	struct msg_spec s = spec_tcp6(state);
	_Alignas(8) char buf[MSG_BUF_SIZE];
	struct flow_record got;
	const char *why;

	g_assert_cmpint(parse(msg_build(&s, buf), &got, &why), ==, CT_PARSE_OK);
	struct flow_record want = want_from_spec(&s);
	want.flags = FLOW_HAS_COUNTERS | FLOW_HAS_TIMESTAMPS | FLOW_HAS_ID;
	want.event = FLOW_EVENT_DESTROY;
	want.end_reason = end_reason;
	assert_record_eq(&got, &want);
}

static void test_destroy_ipv6_tcp_time_wait(void)
{
	check_tcp6(TCP_CONNTRACK_TIME_WAIT, FLOW_END_OF_FLOW);
}

static void test_destroy_ipv6_tcp_established(void)
{
	/* An established entry the kernel removed (no requester): its
	 * timeout ran out, which is not the end of the connection. */
	check_tcp6(TCP_CONNTRACK_ESTABLISHED, FLOW_END_IDLE_TIMEOUT);
}

/* Deleted on request (conntrack -D / -F): the DESTROY carries the
 * requester's port id.  A closed TCP connection still ended by itself, and
 * a dump (which carries the dumper's port id) ends nothing. */
static void test_destroy_forced_end_reason(void)
{
	static const struct {
		uint8_t proto, state;
		uint16_t msg_type, nlflags;
		uint32_t portid;
		uint8_t reason;
	} cases[] = {
		{IPPROTO_UDP, 0, IPCTNL_MSG_CT_DELETE, 0, 4994, FLOW_END_FORCED},
		{IPPROTO_UDP, 0, IPCTNL_MSG_CT_DELETE, 0, 0, FLOW_END_IDLE_TIMEOUT},
		{IPPROTO_UDP, 0, IPCTNL_MSG_CT_DELETE, 0, 0x80000000u, FLOW_END_FORCED},
		{IPPROTO_TCP, TCP_CONNTRACK_ESTABLISHED, IPCTNL_MSG_CT_DELETE, 0, 77, FLOW_END_FORCED},
		{IPPROTO_TCP, TCP_CONNTRACK_SYN_SENT, IPCTNL_MSG_CT_DELETE, 0, 77, FLOW_END_FORCED},
		{IPPROTO_TCP, TCP_CONNTRACK_TIME_WAIT, IPCTNL_MSG_CT_DELETE, 0, 77, FLOW_END_OF_FLOW},
		{IPPROTO_TCP, TCP_CONNTRACK_CLOSE, IPCTNL_MSG_CT_DELETE, 0, 77, FLOW_END_OF_FLOW},
		{IPPROTO_UDP, 0, IPCTNL_MSG_CT_NEW, NLM_F_MULTI, 4994, FLOW_END_IDLE_TIMEOUT},
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		struct msg_spec s = cases[i].proto == IPPROTO_TCP ? spec_tcp6(cases[i].state)
								  : spec_udp4();
		_Alignas(8) char buf[MSG_BUF_SIZE];
		struct flow_record got;
		const char *why = NULL;

		g_test_message("case %zu", i);
		s.msg_type = cases[i].msg_type;
		s.nlflags = cases[i].nlflags;
		s.portid = cases[i].portid;
		g_assert_cmpint(parse(msg_build(&s, buf), &got, &why), ==, CT_PARSE_OK);
		g_assert_cmpuint(got.end_reason, ==, cases[i].reason);
	}
}

static void test_destroy_tcp_end_reason_by_state(void)
{
	static const struct {
		uint8_t state, reason;
	} cases[] = {
		{TCP_CONNTRACK_NONE, FLOW_END_IDLE_TIMEOUT},
		{TCP_CONNTRACK_SYN_SENT, FLOW_END_IDLE_TIMEOUT},
		{TCP_CONNTRACK_SYN_RECV, FLOW_END_IDLE_TIMEOUT},
		{TCP_CONNTRACK_ESTABLISHED, FLOW_END_IDLE_TIMEOUT},
		{TCP_CONNTRACK_FIN_WAIT, FLOW_END_OF_FLOW},
		{TCP_CONNTRACK_CLOSE_WAIT, FLOW_END_OF_FLOW},
		{TCP_CONNTRACK_LAST_ACK, FLOW_END_OF_FLOW},
		{TCP_CONNTRACK_TIME_WAIT, FLOW_END_OF_FLOW},
		{TCP_CONNTRACK_CLOSE, FLOW_END_OF_FLOW},
		{TCP_CONNTRACK_SYN_SENT2, FLOW_END_IDLE_TIMEOUT},
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_test_message("tcp state %u", cases[i].state);
		check_tcp6(cases[i].state, cases[i].reason);
	}
}

static void test_destroy_tcp_without_protoinfo(void)
{
	struct msg_spec s = spec_tcp6(TCP_CONNTRACK_TIME_WAIT);
	_Alignas(8) char buf[MSG_BUF_SIZE];
	struct flow_record got;
	const char *why;

	s.omit |= OMIT_PROTOINFO;
	g_assert_cmpint(parse(msg_build(&s, buf), &got, &why), ==, CT_PARSE_OK);
	g_assert_cmpuint(got.tcp_state, ==, 0);
	g_assert_cmpuint(got.end_reason, ==, FLOW_END_IDLE_TIMEOUT);
}

/* The state of a non-TCP entry must not be mistaken for a TCP close. */
static void test_destroy_udp_end_reason(void)
{
	struct msg_spec s = spec_udp4();
	_Alignas(8) char buf[MSG_BUF_SIZE];
	struct flow_record got;
	const char *why;

	s.tcp_state = TCP_CONNTRACK_TIME_WAIT; /* not sent: UDP has no protoinfo */
	g_assert_cmpint(parse(msg_build(&s, buf), &got, &why), ==, CT_PARSE_OK);
	g_assert_cmpuint(got.tcp_state, ==, 0);
	g_assert_cmpuint(got.end_reason, ==, FLOW_END_IDLE_TIMEOUT);
}

static void check_nat(const struct msg_spec *s)
{
	_Alignas(8) char buf[MSG_BUF_SIZE];
	struct flow_record got;
	const char *why;

	g_assert_cmpint(parse(msg_build(s, buf), &got, &why), ==, CT_PARSE_OK);
	struct flow_record want = want_from_spec(s);
	want.flags = FLOW_HAS_COUNTERS | FLOW_HAS_TIMESTAMPS | FLOW_HAS_ID;
	want.event = FLOW_EVENT_DESTROY;
	want.end_reason = FLOW_END_IDLE_TIMEOUT;
	assert_record_eq(&got, &want);
}

static void test_destroy_snat(void)
{
	struct msg_spec s = spec_snat4();

	check_nat(&s);

	/* The translation is only visible as a reply tuple that is not the
	 * mirror of the original one. */
	_Alignas(8) char buf[MSG_BUF_SIZE];
	struct flow_record got;
	uint8_t router[16];
	addr_from_text("203.0.113.1", router);
	g_assert_cmpint(parse(msg_build(&s, buf), &got, NULL), ==, CT_PARSE_OK);
	g_assert_cmpmem(got.reply.dst, 16, router, 16);
	g_assert_cmpuint(got.reply.dport, ==, 61000);
	g_assert_cmpuint(got.orig.sport, ==, 51000);
}

static void test_destroy_dnat(void)
{
	struct msg_spec s = spec_dnat4();

	check_nat(&s);

	_Alignas(8) char buf[MSG_BUF_SIZE];
	struct flow_record got;
	uint8_t server[16], public[16];
	addr_from_text("10.0.0.80", server);
	addr_from_text("203.0.113.1", public);
	g_assert_cmpint(parse(msg_build(&s, buf), &got, NULL), ==, CT_PARSE_OK);
	g_assert_cmpmem(got.orig.dst, 16, public, 16);
	g_assert_cmpmem(got.reply.src, 16, server, 16);
	g_assert_cmpuint(got.orig.dport, ==, 8080);
	g_assert_cmpuint(got.reply.sport, ==, 80);
}

static void test_destroy_snat_ipv6(void)
{
	struct msg_spec s = spec_tcp6(TCP_CONNTRACK_CLOSE);

	s.reply.dst = "2001:db8:ffff::1";
	s.reply.dport = 1024;
	s.status |= IPS_SRC_NAT | IPS_SRC_NAT_DONE;
	_Alignas(8) char buf[MSG_BUF_SIZE];
	struct flow_record got;
	g_assert_cmpint(parse(msg_build(&s, buf), &got, NULL), ==, CT_PARSE_OK);
	struct flow_record want = want_from_spec(&s);
	want.flags = FLOW_HAS_COUNTERS | FLOW_HAS_TIMESTAMPS | FLOW_HAS_ID;
	want.event = FLOW_EVENT_DESTROY;
	want.end_reason = FLOW_END_OF_FLOW;
	assert_record_eq(&got, &want);
}

static void check_icmp(const struct msg_spec *s, uint8_t type, uint16_t echo_id)
{
	_Alignas(8) char buf[MSG_BUF_SIZE];
	struct flow_record got;
	const char *why;

	g_assert_cmpint(parse(msg_build(s, buf), &got, &why), ==, CT_PARSE_OK);
	g_assert_cmpuint(got.icmp_type, ==, type);
	g_assert_cmpuint(got.icmp_code, ==, 0);
	g_assert_cmpuint(got.orig.sport, ==, echo_id);
	g_assert_cmpuint(got.orig.dport, ==, 0);
	g_assert_cmpuint(got.reply.sport, ==, echo_id);
	g_assert_true(flow_is_icmp(&got));

	struct flow_record want = want_from_spec(s);
	want.flags = FLOW_HAS_COUNTERS | FLOW_HAS_TIMESTAMPS | FLOW_HAS_ID;
	want.event = FLOW_EVENT_DESTROY;
	want.end_reason = FLOW_END_IDLE_TIMEOUT;
	assert_record_eq(&got, &want);
}

static void test_destroy_icmp(void)
{
	struct msg_spec s = spec_icmp4();

	check_icmp(&s, 8, 0x4d2e);

	/* Destination unreachable, port unreachable: type and code both kept. */
	s.orig.icmp_type = 3;
	s.orig.icmp_code = 3;
	_Alignas(8) char buf[MSG_BUF_SIZE];
	struct flow_record got;
	g_assert_cmpint(parse(msg_build(&s, buf), &got, NULL), ==, CT_PARSE_OK);
	g_assert_cmpuint(got.icmp_type, ==, 3);
	g_assert_cmpuint(got.icmp_code, ==, 3);
}

static void test_destroy_icmpv6(void)
{
	struct msg_spec s = spec_icmp6();

	check_icmp(&s, 128, 0x1f2e);
}

static void check_without_counters(unsigned omit)
{
	struct msg_spec s = spec_udp4();
	_Alignas(8) char buf[MSG_BUF_SIZE];
	struct flow_record got;
	const char *why;

	s.omit |= omit;
	g_assert_cmpint(parse(msg_build(&s, buf), &got, &why), ==, CT_PARSE_OK);
	struct flow_record want = want_from_spec(&s);
	want.packets = want.bytes = want.reply_packets = want.reply_bytes = 0;
	want.flags = FLOW_HAS_TIMESTAMPS | FLOW_HAS_ID;
	want.event = FLOW_EVENT_DESTROY;
	want.end_reason = FLOW_END_IDLE_TIMEOUT;
	assert_record_eq(&got, &want);
}

static void test_destroy_no_counters(void)
{
	check_without_counters(OMIT_COUNTERS_ORIG | OMIT_COUNTERS_REPLY);
}

/* Half the counters would make a record that looks like a one-way flow. */
static void test_destroy_counters_one_direction(void)
{
	g_test_message("original direction only");
	check_without_counters(OMIT_COUNTERS_REPLY);
	g_test_message("reply direction only");
	check_without_counters(OMIT_COUNTERS_ORIG);
	g_test_message("original direction without packets");
	check_without_counters(OMIT_PACKETS_ORIG);
}

static void test_destroy_counters32(void)
{
	struct msg_spec s = spec_udp4();
	_Alignas(8) char buf[MSG_BUF_SIZE];
	struct flow_record got;

	s.counters32 = true;
	s.packets = 0x01020304;
	s.bytes = 0xa1b2c3d4;
	s.reply_packets = 7;
	s.reply_bytes = 0x00010000;
	g_assert_cmpint(parse(msg_build(&s, buf), &got, NULL), ==, CT_PARSE_OK);
	g_assert_cmpuint(got.packets, ==, 0x01020304);
	g_assert_cmpuint(got.bytes, ==, 0xa1b2c3d4);
	g_assert_cmpuint(got.reply_packets, ==, 7);
	g_assert_cmpuint(got.reply_bytes, ==, 0x00010000);
	g_assert_cmpuint(got.flags & FLOW_HAS_COUNTERS, ==, FLOW_HAS_COUNTERS);
}

static void test_destroy_no_timestamps(void)
{
	struct msg_spec s = spec_udp4();
	_Alignas(8) char buf[MSG_BUF_SIZE];
	struct flow_record got;
	const char *why;

	s.omit |= OMIT_TIMESTAMP;
	g_assert_cmpint(parse(msg_build(&s, buf), &got, &why), ==, CT_PARSE_OK);
	struct flow_record want = want_from_spec(&s);
	want.start_ns = want.end_ns = 0;
	want.flags = FLOW_HAS_COUNTERS | FLOW_HAS_ID;
	want.event = FLOW_EVENT_DESTROY;
	want.end_reason = FLOW_END_IDLE_TIMEOUT;
	assert_record_eq(&got, &want);
}

/* A DESTROY without a stop time gives no duration: not a timed record. */
static void test_destroy_start_without_stop(void)
{
	struct msg_spec s = spec_udp4();
	_Alignas(8) char buf[MSG_BUF_SIZE];
	struct flow_record got;

	s.omit |= OMIT_TSTAMP_STOP;
	g_assert_cmpint(parse(msg_build(&s, buf), &got, NULL), ==, CT_PARSE_OK);
	g_assert_cmpuint(got.flags & FLOW_HAS_TIMESTAMPS, ==, 0);
	g_assert_cmpuint(got.end_ns, ==, 0);
	g_assert_cmpuint(got.flags & FLOW_HAS_COUNTERS, ==, FLOW_HAS_COUNTERS);
}

static void test_destroy_no_id_no_mark(void)
{
	struct msg_spec s = spec_udp4();
	_Alignas(8) char buf[MSG_BUF_SIZE];
	struct flow_record got;

	s.omit |= OMIT_ID | OMIT_MARK;
	g_assert_cmpint(parse(msg_build(&s, buf), &got, NULL), ==, CT_PARSE_OK);
	struct flow_record want = want_from_spec(&s);
	want.ct_id = want.flow_id = 0;
	want.mark = 0;
	want.flags = FLOW_HAS_COUNTERS | FLOW_HAS_TIMESTAMPS;
	want.event = FLOW_EVENT_DESTROY;
	want.end_reason = FLOW_END_IDLE_TIMEOUT;
	assert_record_eq(&got, &want);
}

static void test_destroy_zones(void)
{
	_Alignas(8) char buf[MSG_BUF_SIZE];
	struct flow_record got;
	struct msg_spec s = spec_udp4();

	/* Default zone: the kernel sends no zone at all. */
	s.zone = 0;
	g_assert_cmpint(parse(msg_build(&s, buf), &got, NULL), ==, CT_PARSE_OK);
	g_assert_cmpuint(got.zone, ==, 0);

	/* A zone for the original direction only travels inside that tuple. */
	s.orig.zone = 0x0a0b;
	g_assert_cmpint(parse(msg_build(&s, buf), &got, NULL), ==, CT_PARSE_OK);
	g_assert_cmpuint(got.zone, ==, 0x0a0b);
	g_assert_cmpuint(got.orig.sport, ==, 40000);
}

/* Pad attributes (some architectures), attributes the parser has no use for
 * and ones newer than it (CTA_TIMESTAMP_EVENT, Linux 6.14) must be
 * skipped, not rejected. */
static void test_destroy_padding_and_unknown_attrs(void)
{
	struct msg_spec s = spec_tcp6(TCP_CONNTRACK_FIN_WAIT);
	_Alignas(8) char buf[MSG_BUF_SIZE];
	struct flow_record got;
	const char *why;

	s.pad64 = true;
	s.extra_attrs = true;
	s.zone = 7;
	g_assert_cmpint(parse(msg_build(&s, buf), &got, &why), ==, CT_PARSE_OK);
	struct flow_record want = want_from_spec(&s);
	want.flags = FLOW_HAS_COUNTERS | FLOW_HAS_TIMESTAMPS | FLOW_HAS_ID | FLOW_HAS_LABELS;
	want.labels[0] = 0x01;     /* label 0 */
	want.labels[15] = 0x80;    /* label 127 */
	want.event = FLOW_EVENT_DESTROY;
	want.end_reason = FLOW_END_OF_FLOW;
	assert_record_eq(&got, &want);
}

/* Labels as the kernel sends them (its bitmap of unsigned longs) come out
 * as label N at byte N / 8, bit N % 8, the same as libnetfilter_conntrack
 * reads them. */
static void test_destroy_labels(void)
{
	static const unsigned label_numbers[] = { 1, 5, 31, 32, 64, 100, 127 };
	unsigned long words[16 / sizeof(unsigned long)] = {0};
	const size_t word_bits = 8 * sizeof(unsigned long);
	struct msg_spec s = spec_udp4();
	_Alignas(8) char buf[MSG_BUF_SIZE];
	struct flow_record got;

	for (size_t i = 0; i < G_N_ELEMENTS(label_numbers); i++)
		words[label_numbers[i] / word_bits] |= 1ul << (label_numbers[i] % word_bits);
	struct nlmsghdr *nlh = msg_build(&s, buf);
	mnl_attr_put(nlh, CTA_LABELS, sizeof(words), words);
	g_assert_cmpint(parse(nlh, &got, NULL), ==, CT_PARSE_OK);
	g_assert_true(got.flags & FLOW_HAS_LABELS);
	for (unsigned n = 0; n < 128; n++) {
		bool want = false;
		for (size_t i = 0; i < G_N_ELEMENTS(label_numbers); i++)
			want |= label_numbers[i] == n;
		g_assert_cmpint(!!(got.labels[n / 8] & (1u << (n % 8))), ==, want);
	}

	struct nf_conntrack *ct = nfct_new();
	g_assert_cmpint(nfct_nlmsg_parse(nlh, ct), ==, 0);
	const struct nfct_bitmask *b = nfct_get_attr(ct, ATTR_CONNLABELS);
	g_assert_nonnull(b);
	for (unsigned n = 0; n < 128; n++)
		g_assert_cmpint(!!(got.labels[n / 8] & (1u << (n % 8))), ==,
				nfct_bitmask_test_bit(b, n));
	nfct_destroy(ct);

	/* without the attribute: no labels, and the flag says so */
	s = spec_udp4();
	g_assert_cmpint(parse(msg_build(&s, buf), &got, NULL), ==, CT_PARSE_OK);
	g_assert_false(got.flags & FLOW_HAS_LABELS);
}

/* A labels attribute of no words, of a part of a word, or larger than the
 * 128 labels a record keeps is malformed. */
static void test_destroy_labels_bad_length(void)
{
	static const size_t lengths[] = { 0, 3, 17, 20, 32 };
	uint8_t bytes[32] = {0xff};

	for (size_t i = 0; i < G_N_ELEMENTS(lengths); i++) {
		struct msg_spec s = spec_udp4();
		_Alignas(8) char buf[MSG_BUF_SIZE];
		struct nlmsghdr *nlh = msg_build(&s, buf);
		mnl_attr_put(nlh, CTA_LABELS, lengths[i], bytes);
		assert_parse_error(nlh);
	}
}

/* ------------------------------------------------------------------------ */
/* Event classification                                                      */
/* ------------------------------------------------------------------------ */

static void test_event_new(void)
{
	struct msg_spec s = spec_snat4();
	_Alignas(8) char buf[MSG_BUF_SIZE];
	struct flow_record got;

	s.msg_type = IPCTNL_MSG_CT_NEW;
	s.nlflags = NLM_F_CREATE | NLM_F_EXCL;
	s.tcp_state = TCP_CONNTRACK_SYN_SENT;
	g_assert_cmpint(parse(msg_build(&s, buf), &got, NULL), ==, CT_PARSE_OK);
	struct flow_record want = want_from_spec(&s);
	/* NEW events carry neither counters nor timestamps. */
	want.packets = want.bytes = want.reply_packets = want.reply_bytes = 0;
	want.start_ns = want.end_ns = 0;
	want.flags = FLOW_HAS_ID;
	want.event = FLOW_EVENT_NEW;
	want.end_reason = FLOW_END_IDLE_TIMEOUT;
	assert_record_eq(&got, &want);
}

static void test_event_update(void)
{
	struct msg_spec s = spec_snat4();
	_Alignas(8) char buf[MSG_BUF_SIZE];
	struct flow_record got;

	s.msg_type = IPCTNL_MSG_CT_NEW;
	s.nlflags = 0;
	s.tcp_state = TCP_CONNTRACK_TIME_WAIT;
	g_assert_cmpint(parse(msg_build(&s, buf), &got, NULL), ==, CT_PARSE_OK);
	g_assert_cmpuint(got.event, ==, FLOW_EVENT_UPDATE);
	g_assert_cmpuint(got.flags, ==, FLOW_HAS_ID);
	g_assert_cmpuint(got.tcp_state, ==, TCP_CONNTRACK_TIME_WAIT);
}

/* A live entry in a dump has a start time but no stop time yet; that is
 * still a complete set of timestamps for it. */
static void test_event_dump_entry(void)
{
	struct msg_spec s = spec_udp4();
	_Alignas(8) char buf[MSG_BUF_SIZE];
	struct flow_record got;

	s.msg_type = IPCTNL_MSG_CT_NEW;
	s.nlflags = NLM_F_MULTI;
	s.omit |= OMIT_TSTAMP_STOP;
	g_assert_cmpint(parse(msg_build(&s, buf), &got, NULL), ==, CT_PARSE_OK);
	struct flow_record want = want_from_spec(&s);
	want.end_ns = 0;
	want.flags = FLOW_HAS_COUNTERS | FLOW_HAS_TIMESTAMPS | FLOW_HAS_ID;
	want.event = FLOW_EVENT_DUMP;
	want.end_reason = FLOW_END_IDLE_TIMEOUT;
	assert_record_eq(&got, &want);
}

/* ------------------------------------------------------------------------ */
/* Messages that are not conntrack entries                                   */
/* ------------------------------------------------------------------------ */

static void assert_ignored(const struct nlmsghdr *nlh)
{
	struct flow_record out;
	const char *why;

	g_assert_cmpint(parse(nlh, &out, &why), ==, CT_PARSE_IGNORED);
}

/* An expectation event (helper-created, e.g. FTP data), as
 * ctnetlink_expect_event() lays it out. */
static void test_ignored_expectation(void)
{
	struct msg_spec s = spec_udp4();
	_Alignas(8) char buf[MSG_BUF_SIZE];
	struct builder b = {.spec = &s};

	memset(buf, 0, sizeof(buf));
	b.nlh = mnl_nlmsg_put_header(buf);
	b.nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK_EXP << 8) | IPCTNL_MSG_EXP_NEW;
	b.nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
	struct nfgenmsg *nfg = mnl_nlmsg_put_extra_header(b.nlh, sizeof(*nfg));
	nfg->nfgen_family = AF_INET;
	put_tuple(&b, CTA_EXPECT_MASTER, &s.orig, true);
	put_tuple(&b, CTA_EXPECT_TUPLE, &s.reply, true);
	put_tuple(&b, CTA_EXPECT_MASK, &s.orig, true);
	put_be32(&b, CTA_EXPECT_TIMEOUT, 300);
	put_be32(&b, CTA_EXPECT_ID, 0x11223344);
	assert_ignored(b.nlh);

	/* The same as a DELETE, and an expectation that happens to use the
	 * conntrack message number. */
	b.nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK_EXP << 8) | IPCTNL_MSG_EXP_DELETE;
	assert_ignored(b.nlh);
	b.nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK_EXP << 8) | IPCTNL_MSG_CT_DELETE;
	assert_ignored(b.nlh);
}

static void test_ignored_other_messages(void)
{
	struct msg_spec s = spec_udp4();
	_Alignas(8) char buf[MSG_BUF_SIZE];
	struct nlmsghdr *nlh;
	static const struct {
		uint16_t subsys, type;
	} cases[] = {
		{NFNL_SUBSYS_QUEUE, 0},
		{NFNL_SUBSYS_ULOG, 0},
		{NFNL_SUBSYS_CTNETLINK_TIMEOUT, 0},
		{NFNL_SUBSYS_NFTABLES, 0},
		{NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET},
		{NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET_CTRZERO},
		{NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET_STATS_CPU},
		{NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET_DYING},
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_test_message("subsys %u type %u", cases[i].subsys, cases[i].type);
		s.subsys = cases[i].subsys;
		s.msg_type = cases[i].type;
		nlh = msg_build(&s, buf);
		assert_ignored(nlh);
	}
}

static void test_ignored_family(void)
{
	static const uint8_t families[] = {AF_UNSPEC, AF_BRIDGE, AF_DECnet, 3 /* NFPROTO_ARP */};
	_Alignas(8) char buf[MSG_BUF_SIZE];

	for (size_t i = 0; i < G_N_ELEMENTS(families); i++) {
		struct msg_spec s = spec_udp4();

		g_test_message("family %u", families[i]);
		s.family = families[i];
		assert_ignored(msg_build(&s, buf));
	}
}

/* ------------------------------------------------------------------------ */
/* Malformed messages                                                        */
/* ------------------------------------------------------------------------ */

static void test_error_short_header(void)
{
	struct msg_spec s = spec_udp4();
	_Alignas(8) char buf[MSG_BUF_SIZE];
	struct nlmsghdr *nlh = msg_build(&s, buf);

	for (uint32_t len = NLMSG_HDRLEN; len < NLMSG_HDRLEN + sizeof(struct nfgenmsg); len++) {
		g_test_message("nlmsg_len %u", len);
		nlh->nlmsg_len = len;
		assert_parse_error(nlh);
	}
}

static void test_error_headers_only(void)
{
	struct msg_spec s = spec_udp4();
	_Alignas(8) char buf[MSG_BUF_SIZE];
	struct nlmsghdr *nlh = msg_build(&s, buf);

	nlh->nlmsg_len = NLMSG_HDRLEN + sizeof(struct nfgenmsg);
	assert_parse_error(nlh);
}

static void test_error_why_may_be_null(void)
{
	struct msg_spec s = spec_udp4();
	_Alignas(8) char buf[MSG_BUF_SIZE];
	struct flow_record out;

	s.omit |= OMIT_ORIG_TUPLE;
	g_assert_cmpint(parse(msg_build(&s, buf), &out, NULL), ==, CT_PARSE_ERROR);
	assert_zeroed(&out);
}

struct length_case {
	const char *name;
	struct msg_spec (*base)(void);
	uint16_t path[4];
	size_t len;
};

static struct msg_spec spec_tcp4_zoned(void)
{
	struct msg_spec s = spec_snat4();

	s.zone = 0;
	s.orig.zone = 3;
	return s;
}

static const struct length_case length_cases[] = {
	{"orig-ipv4-src-short", spec_udp4, {CTA_TUPLE_ORIG, CTA_TUPLE_IP, CTA_IP_V4_SRC}, 3},
	{"orig-ipv4-dst-ipv6-sized", spec_udp4, {CTA_TUPLE_ORIG, CTA_TUPLE_IP, CTA_IP_V4_DST}, 16},
	{"reply-ipv4-dst-long", spec_udp4, {CTA_TUPLE_REPLY, CTA_TUPLE_IP, CTA_IP_V4_DST}, 5},
	{"orig-ipv6-src-ipv4-sized", spec_icmp6, {CTA_TUPLE_ORIG, CTA_TUPLE_IP, CTA_IP_V6_SRC}, 4},
	{"reply-ipv6-dst-short", spec_icmp6, {CTA_TUPLE_REPLY, CTA_TUPLE_IP, CTA_IP_V6_DST}, 15},
	{"orig-sport-short", spec_udp4, {CTA_TUPLE_ORIG, CTA_TUPLE_PROTO, CTA_PROTO_SRC_PORT}, 1},
	{"reply-dport-long", spec_udp4, {CTA_TUPLE_REPLY, CTA_TUPLE_PROTO, CTA_PROTO_DST_PORT}, 4},
	{"proto-num", spec_udp4, {CTA_TUPLE_ORIG, CTA_TUPLE_PROTO, CTA_PROTO_NUM}, 2},
	{"icmp-type", spec_icmp4, {CTA_TUPLE_ORIG, CTA_TUPLE_PROTO, CTA_PROTO_ICMP_TYPE}, 2},
	{"icmp-id", spec_icmp4, {CTA_TUPLE_ORIG, CTA_TUPLE_PROTO, CTA_PROTO_ICMP_ID}, 4},
	{"icmpv6-code-empty", spec_icmp6, {CTA_TUPLE_ORIG, CTA_TUPLE_PROTO, CTA_PROTO_ICMPV6_CODE}, 0},
	{"tuple-zone", spec_tcp4_zoned, {CTA_TUPLE_ORIG, CTA_TUPLE_ZONE}, 4},
	{"packets-orig", spec_udp4, {CTA_COUNTERS_ORIG, CTA_COUNTERS_PACKETS}, 4},
	{"bytes-reply", spec_udp4, {CTA_COUNTERS_REPLY, CTA_COUNTERS_BYTES}, 7},
	{"bytes-orig-long", spec_udp4, {CTA_COUNTERS_ORIG, CTA_COUNTERS_BYTES}, 16},
	{"timestamp-start", spec_udp4, {CTA_TIMESTAMP, CTA_TIMESTAMP_START}, 4},
	{"timestamp-stop", spec_udp4, {CTA_TIMESTAMP, CTA_TIMESTAMP_STOP}, 12},
	{"id-short", spec_udp4, {CTA_ID}, 2},
	{"id-long", spec_udp4, {CTA_ID}, 8},
	{"zone-long", spec_udp4, {CTA_ZONE}, 4},
	{"zone-short", spec_udp4, {CTA_ZONE}, 1},
	{"mark-short", spec_udp4, {CTA_MARK}, 2},
	{"mark-long", spec_udp4, {CTA_MARK}, 8},
	{"status-long", spec_udp4, {CTA_STATUS}, 8},
	{"tcp-state", spec_snat4, {CTA_PROTOINFO, CTA_PROTOINFO_TCP, CTA_PROTOINFO_TCP_STATE}, 2},
};

static void test_error_attr_length(gconstpointer data)
{
	const struct length_case *c = data;
	struct msg_spec s = c->base();

	/* The message is valid with the right length: the error below is the
	 * length's doing. */
	assert_spec_parses(&s);
	memcpy(s.bad_path, c->path, sizeof(s.bad_path));
	s.bad_len = c->len;
	assert_spec_fails(&s);
}

static void test_error_no_orig_tuple(void)
{
	struct msg_spec s = spec_udp4();

	s.omit |= OMIT_ORIG_TUPLE;
	assert_spec_fails(&s);
}

static void test_error_tuple_without_addresses(void)
{
	struct msg_spec s;

	g_test_message("original tuple without CTA_TUPLE_IP");
	s = spec_udp4();
	s.omit |= OMIT_ORIG_IP;
	assert_spec_fails(&s);

	g_test_message("original tuple with an empty CTA_TUPLE_IP");
	s = spec_udp4();
	s.orig.src = s.orig.dst = NULL;
	assert_spec_fails(&s);

	g_test_message("reply tuple without CTA_TUPLE_IP");
	s = spec_tcp6(TCP_CONNTRACK_CLOSE);
	s.omit |= OMIT_REPLY_IP;
	assert_spec_fails(&s);

	g_test_message("reply tuple with an empty CTA_TUPLE_IP");
	s = spec_tcp6(TCP_CONNTRACK_CLOSE);
	s.reply.src = s.reply.dst = NULL;
	assert_spec_fails(&s);
}

static void test_error_tuple_without_protocol(void)
{
	struct msg_spec s = spec_udp4();

	s.omit |= OMIT_PROTO_NUM;
	assert_spec_fails(&s);
}

static void test_error_tuple_mixes_families(void)
{
	struct msg_spec s;

	s = spec_udp4();
	s.orig.dst = "2001:db8::20";
	assert_spec_fails(&s);

	s = spec_tcp6(TCP_CONNTRACK_CLOSE);
	s.reply.src = "198.51.100.20";
	assert_spec_fails(&s);

	/* IPv6 first, then IPv4, in every tuple of an IPv4 message: the last
	 * address alone would make it look like a consistent IPv4 entry. */
	s = spec_udp4();
	s.orig.src = "2001:db8::10";
	s.reply.src = "2001:db8::20";
	assert_spec_fails(&s);
}

static void test_error_reply_family_differs(void)
{
	struct msg_spec s = spec_udp4();

	s.reply.src = "2001:db8::20";
	s.reply.dst = "2001:db8::10";
	assert_spec_fails(&s);
}

static void test_error_message_family_differs(void)
{
	struct msg_spec s;

	s = spec_tcp6(TCP_CONNTRACK_CLOSE);
	s.family = AF_INET;
	assert_spec_fails(&s);

	s = spec_udp4();
	s.family = AF_INET6;
	assert_spec_fails(&s);
}

struct overrun_case {
	const char *name;
	struct msg_spec (*base)(void);
	uint16_t path[4];
	size_t past; /* bytes past the end of the enclosing nest or message */
};

static const struct overrun_case overrun_cases[] = {
	/* Top-level attributes whose length runs past the end of the message. */
	{"message/orig-tuple", spec_udp4, {CTA_TUPLE_ORIG}, 4},
	{"message/counters-orig", spec_udp4, {CTA_COUNTERS_ORIG}, 4},
	{"message/timestamp", spec_udp4, {CTA_TIMESTAMP}, 64},
	{"message/mark", spec_udp4, {CTA_MARK}, 4},
	/* Attributes whose length runs past the end of the nest holding them. */
	{"nest/orig-ip", spec_udp4, {CTA_TUPLE_ORIG, CTA_TUPLE_IP}, 4},
	{"nest/orig-ipv4-dst", spec_udp4, {CTA_TUPLE_ORIG, CTA_TUPLE_IP, CTA_IP_V4_DST}, 4},
	{"nest/reply-dport", spec_udp4, {CTA_TUPLE_REPLY, CTA_TUPLE_PROTO, CTA_PROTO_DST_PORT}, 4},
	{"nest/timestamp-stop", spec_udp4, {CTA_TIMESTAMP, CTA_TIMESTAMP_STOP}, 4},
	{"nest/bytes-reply", spec_udp4, {CTA_COUNTERS_REPLY, CTA_COUNTERS_BYTES}, 4},
};

static void test_error_attr_overrun(gconstpointer data)
{
	const struct overrun_case *c = data;
	struct msg_spec s = c->base();
	_Alignas(8) char buf[MSG_BUF_SIZE];
	struct nlmsghdr *nlh = msg_build(&s, buf);
	struct nlattr *attr = msg_find_attr(nlh, c->path);
	char *end = (char *)nlh + nlh->nlmsg_len;

	if (c->path[1]) {
		uint16_t parent_path[4] = {0};
		memcpy(parent_path, c->path, sizeof(parent_path));
		for (int i = 3; i > 0; i--)
			if (parent_path[i]) {
				parent_path[i] = 0;
				break;
			}
		struct nlattr *parent = msg_find_attr(nlh, parent_path);
		end = (char *)parent + parent->nla_len;
		/* Stay inside the message: only the nest's bound is crossed. */
		g_assert_cmpuint(end + c->past - (char *)nlh, <=, nlh->nlmsg_len);
	}
	attr->nla_len = (uint16_t)(end - (char *)attr + c->past);
	assert_parse_error(nlh);
}

/* A message cut short inside its last attributes (nlmsg_len says so, and the
 * bytes are gone) is as malformed as one with a wrong attribute length. */
static void test_error_cut_inside_attribute(void)
{
	struct msg_spec s = spec_tcp6(TCP_CONNTRACK_TIME_WAIT);
	_Alignas(8) char buf[MSG_BUF_SIZE];
	struct nlmsghdr *nlh = msg_build(&s, buf);
	const uint16_t ts_path[] = {CTA_TIMESTAMP, 0};
	struct nlattr *ts = msg_find_attr(nlh, ts_path);

	/* Cut in the middle of the stop timestamp. */
	nlh->nlmsg_len = (uint32_t)((char *)ts - (char *)nlh) + ts->nla_len - 6;
	assert_parse_error(nlh);
}

/* ------------------------------------------------------------------------ */
/* Parity with libnetfilter_conntrack                                        */
/* ------------------------------------------------------------------------ */

static struct msg_spec spec_dump6_zoned(void)
{
	struct msg_spec s = spec_tcp6(TCP_CONNTRACK_ESTABLISHED);

	s.msg_type = IPCTNL_MSG_CT_NEW;
	s.nlflags = NLM_F_MULTI;
	s.omit |= OMIT_TSTAMP_STOP;
	s.zone = 0x0304;
	s.pad64 = true;
	return s;
}

static struct msg_spec spec_destroy4_no_accounting(void)
{
	struct msg_spec s = spec_dnat4();

	s.omit |= OMIT_COUNTERS_ORIG | OMIT_COUNTERS_REPLY | OMIT_TIMESTAMP | OMIT_MARK;
	return s;
}

static struct msg_spec spec_tcp6_time_wait(void)
{
	return spec_tcp6(TCP_CONNTRACK_TIME_WAIT);
}

static struct msg_spec spec_new4(void)
{
	struct msg_spec s = spec_snat4();

	s.msg_type = IPCTNL_MSG_CT_NEW;
	s.nlflags = NLM_F_CREATE | NLM_F_EXCL;
	s.tcp_state = TCP_CONNTRACK_SYN_SENT;
	return s;
}

static struct msg_spec (*const parity_specs[])(void) = {
	spec_udp4, spec_tcp6_time_wait, spec_snat4, spec_dnat4, spec_icmp4, spec_icmp6,
	spec_tcp4_zoned, spec_dump6_zoned, spec_destroy4_no_accounting, spec_new4,
};

static void compare_tuple_with_nfct(const struct nf_conntrack *ct, const struct flow_tuple *t,
				    uint8_t family, uint8_t proto, bool orig)
{
	if (family == AF_INET) {
		uint32_t src = nfct_get_attr_u32(ct, orig ? ATTR_ORIG_IPV4_SRC : ATTR_REPL_IPV4_SRC);
		uint32_t dst = nfct_get_attr_u32(ct, orig ? ATTR_ORIG_IPV4_DST : ATTR_REPL_IPV4_DST);
		static const uint8_t zero[12];

		g_assert_cmpmem(t->src, 4, &src, 4);
		g_assert_cmpmem(t->dst, 4, &dst, 4);
		g_assert_cmpmem(t->src + 4, 12, zero, 12);
		g_assert_cmpmem(t->dst + 4, 12, zero, 12);
	} else {
		const void *src = nfct_get_attr(ct, orig ? ATTR_ORIG_IPV6_SRC : ATTR_REPL_IPV6_SRC);
		const void *dst = nfct_get_attr(ct, orig ? ATTR_ORIG_IPV6_DST : ATTR_REPL_IPV6_DST);

		g_assert_nonnull(src);
		g_assert_nonnull(dst);
		if (!src || !dst)
			return;
		g_assert_cmpmem(t->src, 16, src, 16);
		g_assert_cmpmem(t->dst, 16, dst, 16);
	}
	if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6) {
		/* libnetfilter_conntrack keeps only the original echo id. */
		if (orig)
			g_assert_cmpuint(t->sport, ==, ntohs(nfct_get_attr_u16(ct, ATTR_ICMP_ID)));
	} else {
		g_assert_cmpuint(t->sport, ==,
				 ntohs(nfct_get_attr_u16(ct, orig ? ATTR_ORIG_PORT_SRC
								  : ATTR_REPL_PORT_SRC)));
		g_assert_cmpuint(t->dport, ==,
				 ntohs(nfct_get_attr_u16(ct, orig ? ATTR_ORIG_PORT_DST
								  : ATTR_REPL_PORT_DST)));
	}
}

static void compare_with_nfct(const struct nlmsghdr *nlh)
{
	struct flow_record r;
	const char *why = NULL;
	struct nf_conntrack *ct = nfct_new();

	g_assert_nonnull(ct);
	g_assert_cmpint(nfct_nlmsg_parse(nlh, ct), ==, 0);
	g_assert_cmpint(parse(nlh, &r, &why), ==, CT_PARSE_OK);

	g_assert_cmpuint(r.family, ==, nfct_get_attr_u8(ct, ATTR_ORIG_L3PROTO));
	g_assert_cmpuint(r.family, ==, nfct_get_attr_u8(ct, ATTR_REPL_L3PROTO));
	g_assert_cmpuint(r.proto, ==, nfct_get_attr_u8(ct, ATTR_ORIG_L4PROTO));
	compare_tuple_with_nfct(ct, &r.orig, r.family, r.proto, true);
	compare_tuple_with_nfct(ct, &r.reply, r.family, r.proto, false);
	if (flow_is_icmp(&r)) {
		g_assert_cmpuint(r.icmp_type, ==, nfct_get_attr_u8(ct, ATTR_ICMP_TYPE));
		g_assert_cmpuint(r.icmp_code, ==, nfct_get_attr_u8(ct, ATTR_ICMP_CODE));
	}

	bool counters = nfct_attr_is_set(ct, ATTR_ORIG_COUNTER_PACKETS) > 0 &&
			nfct_attr_is_set(ct, ATTR_ORIG_COUNTER_BYTES) > 0 &&
			nfct_attr_is_set(ct, ATTR_REPL_COUNTER_PACKETS) > 0 &&
			nfct_attr_is_set(ct, ATTR_REPL_COUNTER_BYTES) > 0;
	g_assert_cmpint(!!(r.flags & FLOW_HAS_COUNTERS), ==, counters);
	if (counters) {
		g_assert_cmpuint(r.packets, ==, nfct_get_attr_u64(ct, ATTR_ORIG_COUNTER_PACKETS));
		g_assert_cmpuint(r.bytes, ==, nfct_get_attr_u64(ct, ATTR_ORIG_COUNTER_BYTES));
		g_assert_cmpuint(r.reply_packets, ==, nfct_get_attr_u64(ct, ATTR_REPL_COUNTER_PACKETS));
		g_assert_cmpuint(r.reply_bytes, ==, nfct_get_attr_u64(ct, ATTR_REPL_COUNTER_BYTES));
	}

	bool start = nfct_attr_is_set(ct, ATTR_TIMESTAMP_START) > 0;
	bool stop = nfct_attr_is_set(ct, ATTR_TIMESTAMP_STOP) > 0;
	g_assert_cmpint(!!(r.flags & FLOW_HAS_TIMESTAMPS), ==,
			start && (stop || r.event != FLOW_EVENT_DESTROY));
	if (start)
		g_assert_cmpuint(r.start_ns, ==, nfct_get_attr_u64(ct, ATTR_TIMESTAMP_START));
	g_assert_cmpuint(r.end_ns, ==, stop ? nfct_get_attr_u64(ct, ATTR_TIMESTAMP_STOP) : 0);

	g_assert_cmpint(!!(r.flags & FLOW_HAS_ID), ==, nfct_attr_is_set(ct, ATTR_ID) > 0);
	g_assert_cmpuint(r.ct_id, ==, nfct_get_attr_u32(ct, ATTR_ID));
	g_assert_cmpuint(r.flow_id, ==, nfct_get_attr_u32(ct, ATTR_ID));
	g_assert_cmpuint(r.mark, ==, nfct_get_attr_u32(ct, ATTR_MARK));
	g_assert_cmpuint(r.status, ==, nfct_get_attr_u32(ct, ATTR_STATUS));
	/* CTA_ZONE names the entry; without it a zone comes from the original
	 * tuple (a direction-specific zone). */
	uint16_t zone = nfct_attr_is_set(ct, ATTR_ZONE) > 0 ? nfct_get_attr_u16(ct, ATTR_ZONE)
							    : nfct_get_attr_u16(ct, ATTR_ORIG_ZONE);
	g_assert_cmpuint(r.zone, ==, zone);
	if (r.proto == IPPROTO_TCP)
		g_assert_cmpuint(r.tcp_state, ==, nfct_get_attr_u8(ct, ATTR_TCP_STATE));

	nfct_destroy(ct);
}

static void test_parity_with_libnetfilter_conntrack(void)
{
	_Alignas(8) char buf[MSG_BUF_SIZE];

	for (size_t i = 0; i < G_N_ELEMENTS(parity_specs); i++) {
		struct msg_spec s = parity_specs[i]();

		g_test_message("message %zu", i);
		compare_with_nfct(msg_build(&s, buf));
	}
}

/* ------------------------------------------------------------------------ */
/* Robustness                                                                */
/* ------------------------------------------------------------------------ */

/* Both can be raised at build time (-D...) for a longer run by hand. */
#ifndef FUZZ_SEED
#define FUZZ_SEED 0x5eedc7f1u
#endif
#ifndef FUZZ_ROUNDS_PER_MESSAGE
#define FUZZ_ROUNDS_PER_MESSAGE 5000
#endif

struct fuzz_tally {
	unsigned ok, ignored, error;
};

/* What must hold whatever the input: the result agrees with the headers, an
 * error leaves a zeroed record and a reason, a record is self-consistent. */
static void check_fuzz_result(const struct nlmsghdr *nlh, enum ct_parse_result res,
			      const struct flow_record *r, const char *why, struct fuzz_tally *tally)
{
	static const uint8_t zero_pad[sizeof(r->pad)];

	if (nlh->nlmsg_len < NLMSG_HDRLEN + sizeof(struct nfgenmsg)) {
		g_assert_cmpint(res, ==, CT_PARSE_ERROR);
	} else {
		const struct nfgenmsg *nfg = mnl_nlmsg_get_payload(nlh);
		uint8_t type = NFNL_MSG_TYPE(nlh->nlmsg_type);
		bool not_ct = NFNL_SUBSYS_ID(nlh->nlmsg_type) != NFNL_SUBSYS_CTNETLINK ||
			      (type != IPCTNL_MSG_CT_NEW && type != IPCTNL_MSG_CT_DELETE) ||
			      (nfg->nfgen_family != AF_INET && nfg->nfgen_family != AF_INET6);

		g_assert_cmpint(res == CT_PARSE_IGNORED, ==, not_ct);
	}

	switch (res) {
	case CT_PARSE_IGNORED:
		tally->ignored++;
		break;
	case CT_PARSE_ERROR:
		tally->error++;
		g_assert_true(why != why_unset);
		g_assert_nonnull(why);
		if (why)
			g_assert_cmpuint(strlen(why), >, 0);
		assert_zeroed(r);
		break;
	case CT_PARSE_OK: {
		const struct nfgenmsg *nfg = mnl_nlmsg_get_payload(nlh);

		tally->ok++;
		g_assert_cmpuint(r->family, ==, nfg->nfgen_family);
		g_assert_cmpuint(r->flow_id, ==, r->ct_id);
		g_assert_cmpuint(r->flags & ~(unsigned)(FLOW_HAS_COUNTERS | FLOW_HAS_TIMESTAMPS |
							FLOW_HAS_ID), ==, 0);
		if (!(r->flags & FLOW_HAS_COUNTERS)) {
			g_assert_cmpuint(r->packets | r->bytes | r->reply_packets | r->reply_bytes,
					 ==, 0);
		}
		if (!(r->flags & FLOW_HAS_ID))
			g_assert_cmpuint(r->ct_id, ==, 0);
		if (NFNL_MSG_TYPE(nlh->nlmsg_type) == IPCTNL_MSG_CT_DELETE)
			g_assert_cmpuint(r->event, ==, FLOW_EVENT_DESTROY);
		else
			g_assert_true(r->event == FLOW_EVENT_NEW || r->event == FLOW_EVENT_UPDATE ||
				      r->event == FLOW_EVENT_DUMP);
		g_assert_true(r->end_reason == FLOW_END_IDLE_TIMEOUT ||
			      (r->end_reason == FLOW_END_OF_FLOW && r->proto == IPPROTO_TCP) ||
			      (r->end_reason == FLOW_END_FORCED && r->event == FLOW_EVENT_DESTROY &&
			       nlh->nlmsg_pid != 0));
		g_assert_cmpmem(r->pad, sizeof(r->pad), zero_pad, sizeof(zero_pad));
		break;
	}
	default:
		g_assert_not_reached();
	}
}

static void fuzz_one(GRand *rng, const struct nlmsghdr *base, struct fuzz_tally *tally)
{
	uint32_t len = base->nlmsg_len;
	uint8_t *buf = g_malloc(len);
	struct nlmsghdr *nlh = (struct nlmsghdr *)buf;
	int kind = g_rand_int_range(rng, 0, 3); /* 0 flip, 1 truncate, 2 both */

	memcpy(buf, base, len);
	if (kind != 0) {
		len = (uint32_t)g_rand_int_range(rng, NLMSG_HDRLEN, (gint32)len);
		nlh->nlmsg_len = len;
	}
	if (kind != 1) {
		int flips = g_rand_int_range(rng, 1, 6);

		for (int i = 0; i < flips; i++) {
			uint32_t pos = (uint32_t)g_rand_int_range(rng, 0, (gint32)len);

			if (g_rand_boolean(rng))
				buf[pos] ^= (uint8_t)(1u << g_rand_int_range(rng, 0, 8));
			else
				buf[pos] = (uint8_t)g_rand_int_range(rng, 0, 256);
		}
	}
	/* Callers hand over only what mnl_nlmsg_ok() accepted: nlmsg_len never
	 * exceeds the bytes received, but it may claim fewer. */
	if (nlh->nlmsg_len > len)
		nlh->nlmsg_len = len;

	struct flow_record r;
	const char *why;
	enum ct_parse_result res = parse(nlh, &r, &why);
	check_fuzz_result(nlh, res, &r, why, tally);
	g_free(buf);
}

static void test_robustness_corrupted_messages(void)
{
	static struct msg_spec (*const bases[])(void) = {
		spec_udp4, spec_tcp6_time_wait, spec_snat4, spec_icmp4, spec_icmp6,
		spec_tcp4_zoned, spec_dump6_zoned, spec_new4,
	};
	GRand *rng = g_rand_new_with_seed(FUZZ_SEED);
	struct fuzz_tally tally = {0};
	_Alignas(8) char buf[MSG_BUF_SIZE];

	for (size_t i = 0; i < G_N_ELEMENTS(bases); i++) {
		struct msg_spec s = bases[i]();
		const struct nlmsghdr *nlh = msg_build(&s, buf);

		for (int round = 0; round < FUZZ_ROUNDS_PER_MESSAGE; round++)
			fuzz_one(rng, nlh, &tally);
	}
	g_test_message("seed %#x: %u ok, %u ignored, %u errors", FUZZ_SEED, tally.ok,
		       tally.ignored, tally.error);
	/* Corruption that never produced an error (or never left a message
	 * intact enough to parse) would mean the inputs miss the parser. */
	g_assert_cmpuint(tally.ok, >, 0);
	g_assert_cmpuint(tally.error, >, 0);
	g_assert_cmpuint(tally.ignored, >, 0);
	g_rand_free(rng);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	/* One failing case is reported and the others still run. */
	g_test_set_nonfatal_assertions();

	g_test_add_func("/ct_parse/destroy/forced-end-reason", test_destroy_forced_end_reason);
	g_test_add_func("/ct_parse/destroy/ipv4-udp", test_destroy_ipv4_udp);
	g_test_add_func("/ct_parse/destroy/ipv6-tcp-time-wait", test_destroy_ipv6_tcp_time_wait);
	g_test_add_func("/ct_parse/destroy/ipv6-tcp-established",
			test_destroy_ipv6_tcp_established);
	g_test_add_func("/ct_parse/destroy/tcp-end-reason-by-state",
			test_destroy_tcp_end_reason_by_state);
	g_test_add_func("/ct_parse/destroy/tcp-without-protoinfo",
			test_destroy_tcp_without_protoinfo);
	g_test_add_func("/ct_parse/destroy/udp-end-reason", test_destroy_udp_end_reason);
	g_test_add_func("/ct_parse/destroy/snat", test_destroy_snat);
	g_test_add_func("/ct_parse/destroy/dnat", test_destroy_dnat);
	g_test_add_func("/ct_parse/destroy/snat-ipv6", test_destroy_snat_ipv6);
	g_test_add_func("/ct_parse/destroy/icmp", test_destroy_icmp);
	g_test_add_func("/ct_parse/destroy/icmpv6", test_destroy_icmpv6);
	g_test_add_func("/ct_parse/destroy/no-counters", test_destroy_no_counters);
	g_test_add_func("/ct_parse/destroy/counters-one-direction",
			test_destroy_counters_one_direction);
	g_test_add_func("/ct_parse/destroy/counters32", test_destroy_counters32);
	g_test_add_func("/ct_parse/destroy/no-timestamps", test_destroy_no_timestamps);
	g_test_add_func("/ct_parse/destroy/start-without-stop", test_destroy_start_without_stop);
	g_test_add_func("/ct_parse/destroy/no-id-no-mark", test_destroy_no_id_no_mark);
	g_test_add_func("/ct_parse/destroy/zones", test_destroy_zones);
	g_test_add_func("/ct_parse/destroy/padding-and-unknown-attrs",
			test_destroy_padding_and_unknown_attrs);

	g_test_add_func("/ct_parse/destroy/labels", test_destroy_labels);
	g_test_add_func("/ct_parse/destroy/labels-bad-length", test_destroy_labels_bad_length);
	g_test_add_func("/ct_parse/event/new", test_event_new);
	g_test_add_func("/ct_parse/event/update", test_event_update);
	g_test_add_func("/ct_parse/event/dump-entry", test_event_dump_entry);

	g_test_add_func("/ct_parse/ignored/expectation", test_ignored_expectation);
	g_test_add_func("/ct_parse/ignored/other-messages", test_ignored_other_messages);
	g_test_add_func("/ct_parse/ignored/family", test_ignored_family);

	g_test_add_func("/ct_parse/error/short-header", test_error_short_header);
	g_test_add_func("/ct_parse/error/headers-only", test_error_headers_only);
	g_test_add_func("/ct_parse/error/why-may-be-null", test_error_why_may_be_null);
	for (size_t i = 0; i < G_N_ELEMENTS(length_cases); i++) {
		g_autofree char *path =
			g_strdup_printf("/ct_parse/error/length/%s", length_cases[i].name);
		g_test_add_data_func(path, &length_cases[i], test_error_attr_length);
	}
	for (size_t i = 0; i < G_N_ELEMENTS(overrun_cases); i++) {
		g_autofree char *path =
			g_strdup_printf("/ct_parse/error/overrun/%s", overrun_cases[i].name);
		g_test_add_data_func(path, &overrun_cases[i], test_error_attr_overrun);
	}
	g_test_add_func("/ct_parse/error/cut-inside-attribute", test_error_cut_inside_attribute);
	g_test_add_func("/ct_parse/error/no-orig-tuple", test_error_no_orig_tuple);
	g_test_add_func("/ct_parse/error/tuple-without-addresses",
			test_error_tuple_without_addresses);
	g_test_add_func("/ct_parse/error/tuple-without-protocol",
			test_error_tuple_without_protocol);
	g_test_add_func("/ct_parse/error/tuple-mixes-families", test_error_tuple_mixes_families);
	g_test_add_func("/ct_parse/error/reply-family-differs", test_error_reply_family_differs);
	g_test_add_func("/ct_parse/error/message-family-differs",
			test_error_message_family_differs);

	g_test_add_func("/ct_parse/parity/libnetfilter_conntrack",
			test_parity_with_libnetfilter_conntrack);
	g_test_add_func("/ct_parse/robustness/corrupted-messages",
			test_robustness_corrupted_messages);

	return g_test_run();
}
