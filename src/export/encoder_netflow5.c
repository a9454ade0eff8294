/*
 * encoder_netflow5.c - flow records as NetFlow v5 export packets.
 *
 * v5 has a fixed record: IPv4 only, one direction, 32-bit counters, and
 * start and end in sysUptime milliseconds (netflow.h has the clock).  So:
 * - a connection becomes a record for its original direction and, when
 *   the reply direction had packets, one for the reply with the reply
 *   tuple (the original one always, so that every connection shows);
 * - a direction whose packets or bytes do not fit 32 bits is split over
 *   as many records as it takes, each with an even share, so the sums a
 *   collector makes stay exact;
 * - IPv6 connections are left out, counted (encoder_skipped) and logged
 *   once.
 * At most 30 records go in a packet (what v5 collectors expect), fewer if
 * the message limit is smaller.  The header's flow_sequence counts the
 * records sent before the packet in this session.  Counters are deltas
 * (flow_delta_counts) from flow_period_start_ns().
 *
 * The sink counts connections per message; a connection split over more
 * records than a packet holds counts in the packet with its last record.
 */
#include <sys/socket.h>

#include "netflow.h"

#define NF5_VERSION 5
#define NF5_HEADER_LEN 24
#define NF5_RECORD_LEN 48
#define NF5_MAX_RECORDS 30
#define NF5_BUFFER (NF5_HEADER_LEN + NF5_MAX_RECORDS * NF5_RECORD_LEN)

struct nf5_state {
	encoder *enc;
	char *name;                 /* the export's, for the log */
	uint8_t engine_type;
	uint8_t engine_id;
	guint max_records;          /* per packet */
	uint8_t buf[NF5_BUFFER];
	guint count;                /* records in the unfinished packet */
	guint in_message;           /* connections ending in it */
	uint32_t flow_sequence;     /* records sent in this session */
	gboolean ipv6_logged;
	struct netflow_clock clock;
};

static gboolean emit_packet(struct nf5_state *st, GError **error)
{
	uint8_t *p = st->buf;
	uint32_t uptime = netflow_clock_stamp(&st->clock, (uint64_t)g_get_real_time() / 1000u);

	p = netflow_put16(p, NF5_VERSION);
	p = netflow_put16(p, (uint16_t)st->count);
	p = netflow_put32(p, uptime);
	p = netflow_put32(p, (uint32_t)(st->clock.now_ms / 1000u));
	p = netflow_put32(p, 0);   /* nanoseconds: the time is a whole second */
	p = netflow_put32(p, st->flow_sequence);
	p = netflow_put8(p, st->engine_type);
	p = netflow_put8(p, st->engine_id);
	netflow_put16(p, 0);   /* sampling: none */
	size_t len = NF5_HEADER_LEN + (size_t)st->count * NF5_RECORD_LEN;
	guint records = st->in_message;
	st->flow_sequence += st->count;
	st->count = 0;
	st->in_message = 0;
	return encoder_emit(st->enc, st->buf, len, records, error);
}

/* One direction of a connection, ready to be cut into records. */
struct nf5_side {
	const struct flow_tuple *t;
	uint64_t packets, bytes;
	uint16_t icmp_type_code;
};

static void put_record(struct nf5_state *st, const struct flow_record *r,
		       const struct nf5_side *d, uint32_t packets, uint32_t bytes)
{
	uint8_t *p = st->buf + NF5_HEADER_LEN + (size_t)st->count * NF5_RECORD_LEN;
	const bool icmp = flow_is_icmp(r);

	if (!st->count)
		netflow_clock_start(&st->clock, (uint64_t)g_get_real_time() / 1000u);
	p = netflow_put_addr(p, d->t->src, 4);
	p = netflow_put_addr(p, d->t->dst, 4);
	p = netflow_put32(p, 0);   /* nexthop */
	p = netflow_put16(p, 0);   /* input ifIndex */
	p = netflow_put16(p, 0);   /* output ifIndex */
	p = netflow_put32(p, packets);
	p = netflow_put32(p, bytes);
	p = netflow_put32(p, netflow_uptime(&st->clock, flow_period_start_ns(r)));
	p = netflow_put32(p, netflow_uptime(&st->clock, r->end_ns));
	/* ICMP type and code go where collectors look for them: the
	 * destination port */
	p = netflow_put16(p, icmp ? 0 : d->t->sport);
	p = netflow_put16(p, icmp ? d->icmp_type_code : d->t->dport);
	p = netflow_put8(p, 0);    /* pad */
	p = netflow_put8(p, 0);    /* TCP flags: conntrack has none */
	p = netflow_put8(p, r->proto);
	p = netflow_put8(p, 0);    /* ToS */
	p = netflow_put16(p, 0);   /* source AS */
	p = netflow_put16(p, 0);   /* destination AS */
	p = netflow_put8(p, 0);    /* source mask */
	p = netflow_put8(p, 0);    /* destination mask */
	netflow_put16(p, 0);       /* pad */
	st->count++;
}

/**
 * How many records a direction of @packets and @bytes needs so that each
 * fits 32 bits (at least one).
 */
static uint64_t records_needed(uint64_t packets, uint64_t bytes)
{
	uint64_t n_p = packets / UINT32_MAX + (packets % UINT32_MAX != 0);
	uint64_t n_b = bytes / UINT32_MAX + (bytes % UINT32_MAX != 0);

	return MAX(MAX(n_p, n_b), 1);
}

/* A direction in records of an even share each: the first (total % n)
 * get one more, so every share is at most ceil(total / n), which fits. */
static gboolean put_side(struct nf5_state *st, const struct flow_record *r,
			 const struct nf5_side *d, GError **error)
{
	uint64_t n = records_needed(d->packets, d->bytes);

	for (uint64_t i = 0; i < n; i++) {
		if (st->count == st->max_records && !emit_packet(st, error))
			return FALSE;
		uint64_t packets = d->packets / n + (i < d->packets % n);
		uint64_t bytes = d->bytes / n + (i < d->bytes % n);
		put_record(st, r, d, (uint32_t)packets, (uint32_t)bytes);
	}
	return TRUE;
}

static gboolean skip_ipv6(struct nf5_state *st, GError **error)
{
	encoder_note_skipped(st->enc);
	if (!st->ipv6_logged)
		g_message("export %s: netflow5 carries IPv4 only; IPv6 connections are left out"
			  " and counted (skipped, in the statistics)", st->name);
	st->ipv6_logged = TRUE;
	if (!st->count)
		/* nothing to ride with: done on its own, without a packet */
		return encoder_emit(st->enc, st->buf, 0, 1, error);
	st->in_message++;
	encoder_note_added(st->enc);
	return TRUE;
}

static gboolean nf5_add(void *state, const struct flow_record *r, GError **error)
{
	struct nf5_state *st = state;

	if (r->family != AF_INET)
		return skip_ipv6(st, error);

	struct flow_counts c = flow_delta_counts(r);
	struct nf5_side orig = { &r->orig, c.packets, c.bytes,
				 (uint16_t)(r->icmp_type << 8 | r->icmp_code) };
	struct nf5_side reply = { &r->reply, c.reply_packets, c.reply_bytes,
				  (uint16_t)(r->reply_icmp_type << 8 | r->reply_icmp_code) };
	uint64_t n = records_needed(orig.packets, orig.bytes) +
		     (reply.packets ? records_needed(reply.packets, reply.bytes) : 0);

	/* a connection that fits a packet is not split between two */
	if (st->count && n <= st->max_records && st->count + n > st->max_records &&
	    !emit_packet(st, error))
		return FALSE;
	if (!put_side(st, r, &orig, error))
		return FALSE;
	if (reply.packets && !put_side(st, r, &reply, error))
		return FALSE;
	st->in_message++;
	encoder_note_added(st->enc);
	return TRUE;
}

static gboolean nf5_flush(void *state, GError **error)
{
	struct nf5_state *st = state;

	if (!st->count) {
		/* only skipped connections are waiting */
		guint records = st->in_message;
		st->in_message = 0;
		return !records || encoder_emit(st->enc, st->buf, 0, records, error);
	}
	return emit_packet(st, error);
}

static gboolean nf5_start_session(void *state, guint message_limit, GError **error)
{
	struct nf5_state *st = state;

	st->max_records = CLAMP((message_limit - NF5_HEADER_LEN) / NF5_RECORD_LEN, 1,
				NF5_MAX_RECORDS);
	st->count = 0;
	st->in_message = 0;
	st->flow_sequence = 0;
	return TRUE;
}

/* v5 has no templates */
static gboolean nf5_refresh_templates(void *state, GError **error)
{
	return TRUE;
}

static void nf5_destroy(void *state)
{
	struct nf5_state *st = state;

	g_free(st->name);
	g_free(st);
}

static void *nf5_create(const struct export_config *cfg, encoder *enc, GError **error)
{
	struct nf5_state *st = g_new0(struct nf5_state, 1);

	st->enc = enc;
	st->name = g_strdup(cfg->name ? cfg->name : "");
	st->engine_type = (uint8_t)cfg->engine_type;
	st->engine_id = (uint8_t)cfg->engine_id;
	st->max_records = NF5_MAX_RECORDS;
	return st;
}

const struct encoder_ops encoder_netflow5_ops = {
	.create = nf5_create,
	.start_session = nf5_start_session,
	.add = nf5_add,
	.flush = nf5_flush,
	.refresh_templates = nf5_refresh_templates,
	.report_statistics = NULL,
	.destroy = nf5_destroy,
};
