/*
 * ct_parse.c - conntrack netlink message -> struct flow_record.
 *
 * Every DESTROY passes through here, so this is a single pass over the
 * attributes with no allocation; libnetfilter_conntrack's generic parser
 * (nfct_nlmsg_parse) costs nearly twice as much per message.  Lengths are
 * checked before every read: a malformed message is rejected, never trusted.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netfilter/nf_conntrack_tcp.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>

#include "ctflowd/ct_parse.h"

/*
 * Walks the attributes of a container.  After the loop, `a` must sit exactly
 * at the container's end: the kernel pads every attribute, so anything left
 * over is an attribute that runs past its container (a truncated or forged
 * message), which must not pass as a shorter, valid one.
 */
#define for_each_attr(a, start, len)                                             \
	for (a = (const struct nlattr *)(start);                                 \
	     attr_ok(a, (const char *)(start) + (len) - (const char *)a);        \
	     a = attr_next(a))

/* libmnl's attribute accessors, inlined: as calls into the shared library
 * they were a tenth of the parse time. Same checks as mnl_attr_ok(). */
static inline bool attr_ok(const struct nlattr *a, ptrdiff_t left)
{
	return left >= (ptrdiff_t)sizeof(struct nlattr) && a->nla_len >= sizeof(struct nlattr) &&
	       (ptrdiff_t)a->nla_len <= left;
}

static inline const struct nlattr *attr_next(const struct nlattr *a)
{
	return (const struct nlattr *)((const char *)a + MNL_ALIGN(a->nla_len));
}

static inline uint16_t attr_type(const struct nlattr *a)
{
	return a->nla_type & NLA_TYPE_MASK;
}

static inline const void *attr_payload(const struct nlattr *a)
{
	return (const char *)a + MNL_ATTR_HDRLEN;
}

static inline size_t attr_payload_len(const struct nlattr *a)
{
	return a->nla_len - MNL_ATTR_HDRLEN;
}

static inline bool walk_complete(const struct nlattr *a, const void *start, size_t len)
{
	return (const char *)a == (const char *)start + len;
}

#define WALK_INCOMPLETE "attribute runs past its container"

static inline const void *nested_payload(const struct nlattr *a) { return attr_payload(a); }
static inline size_t nested_len(const struct nlattr *a) { return attr_payload_len(a); }

static inline bool attr_len_is(const struct nlattr *a, size_t len)
{
	return attr_payload_len(a) == len;
}

static inline uint64_t be64_at(const struct nlattr *a)
{
	uint64_t v;
	memcpy(&v, attr_payload(a), sizeof(v));
	return be64toh(v);
}

static inline uint32_t be32_at(const struct nlattr *a)
{
	uint32_t v;
	memcpy(&v, attr_payload(a), sizeof(v));
	return ntohl(v);
}

static inline uint16_t be16_at(const struct nlattr *a)
{
	uint16_t v;
	memcpy(&v, attr_payload(a), sizeof(v));
	return ntohs(v);
}

static inline uint8_t u8_at(const struct nlattr *a)
{
	return *(const uint8_t *)attr_payload(a);
}

/* What a tuple attribute held, so that the caller can tell v4 from v6 and a
 * tuple without addresses from a complete one. */
struct tuple_seen {
	uint8_t family;
	uint8_t proto;
	bool have_proto;
	uint8_t icmp_type, icmp_code;
	bool have_icmp;
	bool have_zone;
	uint16_t zone;
};

static const char *parse_tuple_ip(const struct nlattr *nest, struct flow_tuple *t,
				  struct tuple_seen *seen)
{
	const struct nlattr *a;

	for_each_attr(a, nested_payload(nest), nested_len(nest)) {
		switch (attr_type(a)) {
		case CTA_IP_V4_SRC:
		case CTA_IP_V4_DST:
			if (!attr_len_is(a, 4))
				return "IPv4 address attribute of wrong length";
			memcpy(attr_type(a) == CTA_IP_V4_SRC ? t->src : t->dst,
			       attr_payload(a), 4);
			if (seen->family == AF_INET6)
				return "tuple mixes IPv4 and IPv6 addresses";
			seen->family = AF_INET;
			break;
		case CTA_IP_V6_SRC:
		case CTA_IP_V6_DST:
			if (!attr_len_is(a, 16))
				return "IPv6 address attribute of wrong length";
			memcpy(attr_type(a) == CTA_IP_V6_SRC ? t->src : t->dst,
			       attr_payload(a), 16);
			if (seen->family == AF_INET)
				return "tuple mixes IPv4 and IPv6 addresses";
			seen->family = AF_INET6;
			break;
		default:
			break;
		}
	}
	if (!walk_complete(a, nested_payload(nest), nested_len(nest)))
		return WALK_INCOMPLETE;
	return NULL;
}

static const char *parse_tuple_proto(const struct nlattr *nest, struct flow_tuple *t,
				     struct tuple_seen *seen)
{
	const struct nlattr *a;

	for_each_attr(a, nested_payload(nest), nested_len(nest)) {
		switch (attr_type(a)) {
		case CTA_PROTO_NUM:
			if (!attr_len_is(a, 1))
				return "protocol number attribute of wrong length";
			seen->proto = u8_at(a);
			seen->have_proto = true;
			break;
		case CTA_PROTO_SRC_PORT:
		case CTA_PROTO_DST_PORT:
			if (!attr_len_is(a, 2))
				return "port attribute of wrong length";
			if (attr_type(a) == CTA_PROTO_SRC_PORT)
				t->sport = be16_at(a);
			else
				t->dport = be16_at(a);
			break;
		case CTA_PROTO_ICMP_TYPE:
		case CTA_PROTO_ICMPV6_TYPE:
			if (!attr_len_is(a, 1))
				return "ICMP type attribute of wrong length";
			seen->icmp_type = u8_at(a);
			seen->have_icmp = true;
			break;
		case CTA_PROTO_ICMP_CODE:
		case CTA_PROTO_ICMPV6_CODE:
			if (!attr_len_is(a, 1))
				return "ICMP code attribute of wrong length";
			seen->icmp_code = u8_at(a);
			break;
		case CTA_PROTO_ICMP_ID:
		case CTA_PROTO_ICMPV6_ID:
			/* The echo id stands where a port would (the kernel
			 * tracks it as one); keep it as the source port. */
			if (!attr_len_is(a, 2))
				return "ICMP id attribute of wrong length";
			t->sport = be16_at(a);
			break;
		default:
			break;
		}
	}
	if (!walk_complete(a, nested_payload(nest), nested_len(nest)))
		return WALK_INCOMPLETE;
	return NULL;
}

static const char *parse_tuple(const struct nlattr *nest, struct flow_tuple *t,
			       struct tuple_seen *seen)
{
	const char *why;
	bool have_ip = false;

	const struct nlattr *a;

	for_each_attr(a, nested_payload(nest), nested_len(nest)) {
		switch (attr_type(a)) {
		case CTA_TUPLE_IP:
			if ((why = parse_tuple_ip(a, t, seen)))
				return why;
			have_ip = true;
			break;
		case CTA_TUPLE_PROTO:
			if ((why = parse_tuple_proto(a, t, seen)))
				return why;
			break;
		case CTA_TUPLE_ZONE:
			if (!attr_len_is(a, 2))
				return "tuple zone attribute of wrong length";
			seen->zone = be16_at(a);
			seen->have_zone = true;
			break;
		default:
			break;
		}
	}
	if (!walk_complete(a, nested_payload(nest), nested_len(nest)))
		return WALK_INCOMPLETE;
	if (!have_ip || !seen->family)
		return "tuple without addresses";
	if (!seen->have_proto)
		return "tuple without protocol";
	return NULL;
}

static const char *parse_counters(const struct nlattr *nest, uint64_t *packets, uint64_t *bytes,
				  bool *have)
{
	bool p = false, b = false;

	const struct nlattr *a;

	for_each_attr(a, nested_payload(nest), nested_len(nest)) {
		switch (attr_type(a)) {
		case CTA_COUNTERS_PACKETS:
		case CTA_COUNTERS_BYTES:
			if (!attr_len_is(a, 8))
				return "64-bit counter attribute of wrong length";
			if (attr_type(a) == CTA_COUNTERS_PACKETS) {
				*packets = be64_at(a);
				p = true;
			} else {
				*bytes = be64_at(a);
				b = true;
			}
			break;
		case CTA_COUNTERS32_PACKETS:
		case CTA_COUNTERS32_BYTES:
			if (!attr_len_is(a, 4))
				return "32-bit counter attribute of wrong length";
			if (attr_type(a) == CTA_COUNTERS32_PACKETS) {
				*packets = be32_at(a);
				p = true;
			} else {
				*bytes = be32_at(a);
				b = true;
			}
			break;
		default:
			break;
		}
	}
	if (!walk_complete(a, nested_payload(nest), nested_len(nest)))
		return WALK_INCOMPLETE;
	*have = p && b;
	return NULL;
}

static const char *parse_timestamp(const struct nlattr *nest, struct flow_record *r, bool *start,
				   bool *stop)
{
	const struct nlattr *a;

	for_each_attr(a, nested_payload(nest), nested_len(nest)) {
		switch (attr_type(a)) {
		case CTA_TIMESTAMP_START:
			if (!attr_len_is(a, 8))
				return "start timestamp attribute of wrong length";
			r->start_ns = be64_at(a);
			*start = true;
			break;
		case CTA_TIMESTAMP_STOP:
			if (!attr_len_is(a, 8))
				return "stop timestamp attribute of wrong length";
			r->end_ns = be64_at(a);
			*stop = true;
			break;
		default:
			break;
		}
	}
	if (!walk_complete(a, nested_payload(nest), nested_len(nest)))
		return WALK_INCOMPLETE;
	return NULL;
}

/*
 * The kernel sends the labels as its bitmap of unsigned longs, in host order
 * (CTA_LABELS, 16 bytes: 128 labels).  flow.h keeps label N at byte N / 8,
 * bit N % 8, whatever the host's word size and byte order.
 */
static const char *parse_labels(const struct nlattr *a, struct flow_record *r)
{
	size_t len = attr_payload_len(a);
	const size_t word = sizeof(unsigned long);

	if (len == 0 || len > sizeof(r->labels) || len % word)
		return "labels attribute of wrong length";
	for (size_t w = 0; w < len / word; w++) {
		unsigned long bits;
		memcpy(&bits, (const char *)attr_payload(a) + w * word, word);
		for (size_t b = 0; b < 8 * word; b++)
			if (bits >> b & 1ul)
				r->labels[(w * 8 * word + b) / 8] |= (uint8_t)(1u << (b % 8));
	}
	r->flags |= FLOW_HAS_LABELS;
	return NULL;
}

static const char *parse_protoinfo(const struct nlattr *nest, struct flow_record *r)
{
	const struct nlattr *a;

	for_each_attr(a, nested_payload(nest), nested_len(nest)) {
		if (attr_type(a) != CTA_PROTOINFO_TCP)
			continue;
		const struct nlattr *b;
		for_each_attr(b, nested_payload(a), nested_len(a)) {
			if (attr_type(b) != CTA_PROTOINFO_TCP_STATE)
				continue;
			if (!attr_len_is(b, 1))
				return "TCP state attribute of wrong length";
			r->tcp_state = u8_at(b);
		}
		if (!walk_complete(b, nested_payload(a), nested_len(a)))
			return WALK_INCOMPLETE;
	}
	if (!walk_complete(a, nested_payload(nest), nested_len(nest)))
		return WALK_INCOMPLETE;
	return NULL;
}

/*
 * Why an entry ended, as far as a DESTROY lets anyone tell:
 * - TCP's state tells a closed connection (FIN or RST seen) apart, whatever
 *   removed the entry afterwards: the connection itself had ended (3).
 * - An entry deleted on request (conntrack -D / -F, any ctnetlink delete)
 *   carries the requester's netlink port id in nlmsg_pid, kept by the
 *   kernel also when it resends a DESTROY it held back; the kernel's own
 *   deletions carry 0 (forced end, 4).
 * - The kernel's own deletions look alike: a timeout, an early drop when
 *   the table is full, or a cleanup when an interface or NAT rule goes
 *   away.  They are reported as idle timeouts (1); lack of resources (5)
 *   cannot be told apart.
 * Table dumps carry the dumper's port id and end nothing: they keep 1.
 */
static uint8_t derive_end_reason(const struct flow_record *r, uint32_t nlmsg_pid)
{
	if (r->proto == IPPROTO_TCP) {
		switch (r->tcp_state) {
		case TCP_CONNTRACK_FIN_WAIT:
		case TCP_CONNTRACK_CLOSE_WAIT:
		case TCP_CONNTRACK_LAST_ACK:
		case TCP_CONNTRACK_TIME_WAIT:
		case TCP_CONNTRACK_CLOSE:
			return FLOW_END_OF_FLOW;
		default:
			break;
		}
	}
	if (r->event == FLOW_EVENT_DESTROY && nlmsg_pid != 0)
		return FLOW_END_FORCED;
	return FLOW_END_IDLE_TIMEOUT;
}

enum ct_parse_result ct_parse_message(const struct nlmsghdr *nlh, struct flow_record *out,
				      const char **why)
{
	const char *err = NULL;
	struct tuple_seen orig_seen = {0}, reply_seen = {0};
	bool have_orig = false, have_reply = false;
	bool have_cnt_orig = false, have_cnt_reply = false;
	bool have_start = false, have_stop = false;
	bool have_zone = false;
	const size_t hdrlen = NLMSG_HDRLEN + sizeof(struct nfgenmsg);

	memset(out, 0, sizeof(*out));
	if (nlh->nlmsg_len < hdrlen) {
		err = "message shorter than its headers";
		goto fail;
	}
	if (NFNL_SUBSYS_ID(nlh->nlmsg_type) != NFNL_SUBSYS_CTNETLINK)
		return CT_PARSE_IGNORED;

	switch (NFNL_MSG_TYPE(nlh->nlmsg_type)) {
	case IPCTNL_MSG_CT_DELETE:
		out->event = FLOW_EVENT_DESTROY;
		break;
	case IPCTNL_MSG_CT_NEW:
		if (nlh->nlmsg_flags & NLM_F_MULTI)
			out->event = FLOW_EVENT_DUMP;
		else if ((nlh->nlmsg_flags & (NLM_F_CREATE | NLM_F_EXCL)) ==
			 (NLM_F_CREATE | NLM_F_EXCL))
			out->event = FLOW_EVENT_NEW;
		else
			out->event = FLOW_EVENT_UPDATE;
		break;
	default:
		return CT_PARSE_IGNORED;
	}

	const struct nfgenmsg *nfg = mnl_nlmsg_get_payload(nlh);
	if (nfg->nfgen_family != AF_INET && nfg->nfgen_family != AF_INET6)
		return CT_PARSE_IGNORED;

	const char *attrs = (const char *)nlh + hdrlen;
	const size_t attrs_len = nlh->nlmsg_len - hdrlen;
	const struct nlattr *a;
	for_each_attr(a, attrs, attrs_len) {
		switch (attr_type(a)) {
		case CTA_TUPLE_ORIG:
			err = parse_tuple(a, &out->orig, &orig_seen);
			have_orig = true;
			break;
		case CTA_TUPLE_REPLY:
			err = parse_tuple(a, &out->reply, &reply_seen);
			have_reply = true;
			break;
		case CTA_STATUS:
			if (!attr_len_is(a, 4))
				err = "status attribute of wrong length";
			else
				out->status = be32_at(a);
			break;
		case CTA_MARK:
			if (!attr_len_is(a, 4))
				err = "mark attribute of wrong length";
			else
				out->mark = be32_at(a);
			break;
		case CTA_ID:
			if (!attr_len_is(a, 4)) {
				err = "id attribute of wrong length";
			} else {
				out->ct_id = be32_at(a);
				out->flags |= FLOW_HAS_ID;
			}
			break;
		case CTA_ZONE:
			if (!attr_len_is(a, 2)) {
				err = "zone attribute of wrong length";
			} else {
				out->zone = be16_at(a);
				have_zone = true;
			}
			break;
		case CTA_COUNTERS_ORIG:
			err = parse_counters(a, &out->packets, &out->bytes, &have_cnt_orig);
			break;
		case CTA_COUNTERS_REPLY:
			err = parse_counters(a, &out->reply_packets, &out->reply_bytes,
					     &have_cnt_reply);
			break;
		case CTA_TIMESTAMP:
			err = parse_timestamp(a, out, &have_start, &have_stop);
			break;
		case CTA_PROTOINFO:
			err = parse_protoinfo(a, out);
			break;
		case CTA_LABELS:
			err = parse_labels(a, out);
			break;
		default:
			break;
		}
		if (err)
			goto fail;
	}
	if (!walk_complete(a, attrs, attrs_len)) {
		err = WALK_INCOMPLETE;
		goto fail;
	}

	if (!have_orig) {
		err = "no original tuple";
		goto fail;
	}
	if (orig_seen.family != nfg->nfgen_family) {
		err = "original tuple family differs from the message family";
		goto fail;
	}
	if (have_reply && reply_seen.family != orig_seen.family) {
		err = "reply tuple family differs from the original tuple";
		goto fail;
	}
	out->family = orig_seen.family;
	out->proto = orig_seen.proto;
	if (orig_seen.have_icmp) {
		out->icmp_type = orig_seen.icmp_type;
		out->icmp_code = orig_seen.icmp_code;
	}
	if (reply_seen.have_icmp) {
		out->reply_icmp_type = reply_seen.icmp_type;
		out->reply_icmp_code = reply_seen.icmp_code;
	}
	/* CTA_ZONE is the entry's zone; a zone inside a tuple is only sent
	 * for direction-specific zones, which still name the same entry. */
	if (!have_zone && orig_seen.have_zone)
		out->zone = orig_seen.zone;
	else if (!have_zone && reply_seen.have_zone)
		out->zone = reply_seen.zone;
	if (have_cnt_orig && have_cnt_reply)
		out->flags |= FLOW_HAS_COUNTERS;
	else
		out->packets = out->bytes = out->reply_packets = out->reply_bytes = 0;
	if (have_start && (have_stop || out->event != FLOW_EVENT_DESTROY))
		out->flags |= FLOW_HAS_TIMESTAMPS;
	else
		out->start_ns = out->end_ns = 0;
	out->flow_id = out->ct_id;
	out->end_reason = derive_end_reason(out, nlh->nlmsg_pid);
	return CT_PARSE_OK;

fail:
	memset(out, 0, sizeof(*out));
	if (why)
		*why = err;
	return CT_PARSE_ERROR;
}
