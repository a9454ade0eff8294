/*
 * flow.h - the flow record: the one type every stage of the pipeline shares.
 *
 * Data flows one way: kernel events (source/) -> flow records -> spool ->
 * exporters (export/).  A record is complete on its own: everything a
 * collector needs comes from one conntrack DESTROY event, because the kernel
 * only sends counters and timestamps with DESTROY (never with NEW).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* One direction of a conntrack entry: addresses in network order (IPv4 in the
 * first four bytes, the rest zero), ports in host order. */
struct flow_tuple {
	uint8_t src[16];
	uint8_t dst[16];
	uint16_t sport;
	uint16_t dport;
};

/* IPFIX flowEndReason values (RFC 7011 / IANA registry, element 136). */
enum flow_end_reason {
	FLOW_END_IDLE_TIMEOUT = 0x01,
	FLOW_END_ACTIVE_TIMEOUT = 0x02,
	FLOW_END_OF_FLOW = 0x03,
	FLOW_END_FORCED = 0x04,
	FLOW_END_LACK_OF_RESOURCES = 0x05,
};

/* What a record holds; the kernel leaves counters or timestamps out for
 * entries created before nf_conntrack_acct / nf_conntrack_timestamp were on. */
enum flow_flags {
	FLOW_HAS_COUNTERS = 1u << 0,
	FLOW_HAS_TIMESTAMPS = 1u << 1,
	FLOW_HAS_ID = 1u << 2,
	FLOW_HAS_LABELS = 1u << 3,  /* labels[] holds the entry's conntrack labels */
	FLOW_LATE = 1u << 4,        /* NAT create built from the DESTROY: its NEW was lost */
	FLOW_REFRESH = 1u << 5,     /* NAT create repeated for a session still alive */
};

/* The kernel event a record came from. */
enum flow_event {
	FLOW_EVENT_DESTROY = 1,
	FLOW_EVENT_NEW = 2,
	FLOW_EVENT_UPDATE = 3,
	FLOW_EVENT_DUMP = 4,
};

struct flow_record {
	uint64_t start_ns;         /* kernel timestamp: entry confirmed (ns since epoch) */
	uint64_t end_ns;           /* kernel timestamp: entry deleted, backdated to expiry */
	uint64_t packets;          /* original direction */
	uint64_t bytes;
	uint64_t reply_packets;    /* reply direction */
	uint64_t reply_bytes;
	uint64_t flow_id;          /* exported flowId: numbered at intake (flow_id.h) */
	struct flow_tuple orig;
	struct flow_tuple reply;
	uint32_t ct_id;            /* conntrack id (not unique over time) */
	uint32_t mark;
	uint32_t status;           /* IPS_* bits */
	uint16_t zone;
	uint8_t family;            /* AF_INET or AF_INET6 */
	uint8_t proto;             /* L4 protocol number */
	uint8_t icmp_type;         /* ICMP / ICMPv6 only, original direction */
	uint8_t icmp_code;
	uint8_t tcp_state;         /* TCP_CONNTRACK_*, 0 when not TCP */
	uint8_t end_reason;        /* enum flow_end_reason */
	uint8_t flags;             /* enum flow_flags */
	uint8_t event;             /* enum flow_event */
	uint8_t reply_icmp_type;   /* ICMP / ICMPv6 only, reply direction (0 in */
	uint8_t reply_icmp_code;   /* records journaled before it was kept) */
	uint8_t pad[8];           /* explicit: the size is part of the spool format */
	/* Journal version 2 added what follows; version 1 records read as zero. */
	uint64_t period_start_ns;  /* start of what the deltas cover: the end of the
				    * connection's previous record (0: start_ns) */
	uint64_t base_packets;     /* counters the connection's earlier (interim) */
	uint64_t base_bytes;       /* records already reported: this record's */
	uint64_t base_reply_packets; /* deltas are the totals minus these */
	uint64_t base_reply_bytes;
	uint8_t labels[16];        /* conntrack labels: bit N is labels[N / 8] bit N % 8 */
	uint8_t reserved[8];
};

/* Records are copied into the spool and across threads by value; keep the
 * size fixed so a change is deliberate. */
_Static_assert(sizeof(struct flow_record) == 224, "flow_record layout changed");
_Static_assert(offsetof(struct flow_record, period_start_ns) == 160,
	       "version 1 journal records are a prefix of version 2 ones");

/*
 * The counters of one record.  packets, bytes, reply_packets and
 * reply_bytes of a record are the kernel's totals for the connection; a
 * connection that had interim records (active timeout) also carries what
 * those already reported, and its deltas are the difference.  A connection
 * without interim records has zero bases, so its deltas are its totals.
 */
struct flow_counts {
	uint64_t packets;
	uint64_t bytes;
	uint64_t reply_packets;
	uint64_t reply_bytes;
};

/** flow_total_counts: the kernel's counters for the whole connection so far. */
static inline struct flow_counts flow_total_counts(const struct flow_record *r)
{
	return (struct flow_counts){ r->packets, r->bytes, r->reply_packets, r->reply_bytes };
}

/**
 * flow_delta_counts:
 * What this record adds to the connection's earlier records.  A total below
 * its base (another tool zeroed the kernel's counters) counts from zero.
 */
static inline struct flow_counts flow_delta_counts(const struct flow_record *r)
{
#define FLOW_DELTA(t, b) ((t) >= (b) ? (t) - (b) : (t))
	return (struct flow_counts){
		FLOW_DELTA(r->packets, r->base_packets), FLOW_DELTA(r->bytes, r->base_bytes),
		FLOW_DELTA(r->reply_packets, r->base_reply_packets),
		FLOW_DELTA(r->reply_bytes, r->base_reply_bytes),
	};
#undef FLOW_DELTA
}

/**
 * flow_period_start_ns:
 * When the period of this record's deltas began: the end of the
 * connection's previous record, or the connection's start for its first.
 */
static inline uint64_t flow_period_start_ns(const struct flow_record *r)
{
	return r->period_start_ns ? r->period_start_ns : r->start_ns;
}

/** flow_is_interim: a record of a connection still alive (active timeout). */
static inline bool flow_is_interim(const struct flow_record *r)
{
	return r->end_reason == FLOW_END_ACTIVE_TIMEOUT;
}

/**
 * flow_is_icmp:
 * True for ICMP (IPv4) and ICMPv6 records, whose tuples carry type/code
 * instead of ports.
 */
static inline bool flow_is_icmp(const struct flow_record *r)
{
	return r->proto == 1 || r->proto == 58;
}

/**
 * flow_is_translated:
 * True when NAT changed the connection (SNAT, DNAT, masquerade, NAT66):
 * the reply tuple is then not the original one turned around.  ICMP has
 * its echo id where ports would be, and a translation may change it too.
 */
static inline bool flow_is_translated(const struct flow_record *r)
{
	static const uint8_t none[16];

	/* a message without a reply tuple says nothing about NAT */
	if (memcmp(r->reply.src, none, 16) == 0 && memcmp(r->reply.dst, none, 16) == 0)
		return false;
	if (memcmp(r->reply.src, r->orig.dst, sizeof(r->orig.dst)) != 0 ||
	    memcmp(r->reply.dst, r->orig.src, sizeof(r->orig.src)) != 0)
		return true;
	if (flow_is_icmp(r))
		return r->reply.sport != r->orig.sport;
	return r->reply.sport != r->orig.dport || r->reply.dport != r->orig.sport;
}

/**
 * flow_post_nat:
 * The original direction as it left the translation: the reply tuple seen
 * from the other end (its destination is the post-NAT source, its source
 * the post-NAT destination).  Only meaningful when flow_is_translated().
 */
static inline struct flow_tuple flow_post_nat(const struct flow_record *r)
{
	struct flow_tuple t;

	memcpy(t.src, r->reply.dst, sizeof(t.src));
	memcpy(t.dst, r->reply.src, sizeof(t.dst));
	t.sport = r->reply.dport;
	t.dport = r->reply.sport;
	return t;
}

/* splitmix64's finaliser: every input bit reaches every output bit. */
static inline uint64_t flow_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

/**
 * flow_connection_key:
 * A 64-bit fingerprint of the connection of @r: a keyed mix of its
 * conntrack id, original tuple and zone, and, with @with_start, its start
 * time, which tells apart connections that reuse an id and tuple over time
 * (NEW events carry no start time).  Never 0 with @with_start.
 */
static inline uint64_t flow_connection_key(const struct flow_record *r, bool with_start)
{
	uint64_t h = 0x6a09e667f3bcc909ULL, w;

	for (size_t i = 0; i < 16; i += 8) {
		memcpy(&w, r->orig.src + i, 8);
		h = flow_mix64(h ^ w);
		memcpy(&w, r->orig.dst + i, 8);
		h = flow_mix64(h ^ w);
	}
	h = flow_mix64(h ^ ((uint64_t)r->orig.sport << 48 | (uint64_t)r->orig.dport << 32 |
			    (uint64_t)r->proto << 24 | (uint64_t)r->family << 16 | r->zone));
	h = flow_mix64(h ^ r->ct_id);
	if (!with_start)
		return h;
	h = flow_mix64(h ^ r->start_ns);
	return h ? h : 1;
}

/**
 * flow_identity_hash:
 * What identifies a conntrack entry over time, start included (the id
 * alone is a hash of the entry's address, and is reused): every record of
 * one connection, from a dump or its DESTROY, has the same.  Never 0.
 */
static inline uint64_t flow_identity_hash(const struct flow_record *r)
{
	return flow_connection_key(r, true);
}

/**
 * flow_nat_identity:
 * flow_identity_hash() without the start timestamp: what a NEW event (which
 * carries no timestamps) and the DESTROY of the same entry share.  Two live
 * entries never have the same id and original tuple, so this tells live
 * connections apart; over time it repeats when the kernel reuses both.
 */
static inline uint64_t flow_nat_identity(const struct flow_record *r)
{
	/* another seed than the identity's: never equal to it by design */
	return flow_connection_key(r, false) ^ 0xbb67ae8584caa73bULL;
}

/**
 * flow_end_reason_name:
 * Short name of an IPFIX flowEndReason ("idle", "active", "end", "forced",
 * "resources"), or "unknown".
 */
const char *flow_end_reason_name(uint8_t reason);

/**
 * flow_format_addr:
 * Writes the text form of an address of @family (AF_INET6, else IPv4) into
 * @buf of @len bytes (INET6_ADDRSTRLEN is always enough; an empty string
 * if it does not fit).  Returns @buf.
 */
char *flow_format_addr(int family, const uint8_t addr[16], char *buf, size_t len);
