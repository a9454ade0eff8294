/*
 * encoder_netflow9.c - flow records as NetFlow v9 export packets (RFC 3954).
 *
 * One export packet is one message (one datagram over UDP).  Templates:
 * per family one without and one with NAT, as biflows (the original
 * direction in IN_BYTES/IN_PKTS, the reply in OUT_BYTES/OUT_PKTS, all
 * 64 bits) or, with uniflow = yes, one record per direction.  A session
 * (a transport session: a socket or a file) starts with a packet of
 * templates and sequence number 0; the templates go again at the head of
 * a packet every template_packets packets, and over UDP in a packet of
 * their own every template_refresh (the sink's timer).
 *
 * The package sequence counts export packets (RFC 3954 section 5.1, unlike
 * IPFIX, which counts data records), and the header's count is the number
 * of records in the packet, template records included.  The source ID is
 * the observation_domain.
 *
 * NAT session events (records = nat-events or both) go out with a
 * template of their own, the NAT44 session record of RFC 8158 (section
 * 4.1.1) in v9 form: v9 collectors read IANA's numbers for observation
 * time, natEvent and the post-NAT fields.  It is sent only to such an
 * export, so the templates of a flow export keep their bytes.  v9 has no
 * enterprise fields: a late or refreshed create looks like any other
 * create.  RFC 8158 has no NAT66 session event: IPv6 sessions are left
 * out (logged once, counted).
 *
 * NetFlow counters are deltas: a record carries flow_delta_counts() and
 * starts at flow_period_start_ns().  Times go as absolute milliseconds
 * (152/153) or, with netflow_times = uptime, as sysUptime milliseconds
 * (FIRST_SWITCHED 22, LAST_SWITCHED 21) against the clock of netflow.h.
 */
#include <sys/socket.h>

#include "netflow.h"

#define NF9_VERSION 9
#define NF9_HEADER_LEN 20
#define NF9_SET_HEADER_LEN 4
#define NF9_TEMPLATE_SET_ID 0
#define NF9_MAX_FIELDS 24
#define NF9_BUFFER 65536

/* Field types: RFC 3954 section 8, and IANA's IPFIX numbers above 127,
 * which v9 collectors read too. */
enum nf9_field_type {
	NF9_IN_BYTES = 1,
	NF9_IN_PKTS = 2,
	NF9_PROTOCOL = 4,
	NF9_L4_SRC_PORT = 7,
	NF9_IPV4_SRC_ADDR = 8,
	NF9_L4_DST_PORT = 11,
	NF9_IPV4_DST_ADDR = 12,
	NF9_LAST_SWITCHED = 21,
	NF9_FIRST_SWITCHED = 22,
	NF9_OUT_BYTES = 23,
	NF9_OUT_PKTS = 24,
	NF9_IPV6_SRC_ADDR = 27,
	NF9_IPV6_DST_ADDR = 28,
	NF9_ICMP_TYPE = 32,
	NF9_ICMP_TYPE_IPV6 = 139,
	NF9_FLOW_END_REASON = 136,
	NF9_FLOW_ID = 148,
	NF9_FLOW_START_MS = 152,
	NF9_FLOW_END_MS = 153,
	NF9_POST_NAT_SRC_IPV4 = 225,
	NF9_POST_NAT_DST_IPV4 = 226,
	NF9_POST_NAPT_SRC_PORT = 227,
	NF9_POST_NAPT_DST_PORT = 228,
	NF9_NAT_EVENT = 230,
	NF9_INGRESS_VRFID = 234,
	NF9_BIFLOW_DIRECTION = 239,
	NF9_POST_NAT_SRC_IPV6 = 281,
	NF9_POST_NAT_DST_IPV6 = 282,
	NF9_OBSERVATION_TIME_MS = 323,
};

struct nf9_field {
	uint16_t type;
	uint16_t len;
};

struct nf9_template {
	uint16_t id;
	uint16_t n_fields;
	uint16_t record_len;
	struct nf9_field fields[NF9_MAX_FIELDS];
};

/* Template ids by family (v6), NAT and direction (uniflow). */
#define NF9_TID_BASE 256
#define NF9_N_TEMPLATES 4
/* the NAT session event template, after the flow ones of both layouts */
#define NF9_TID_NAT_EVENT4 (NF9_TID_BASE + 2 * NF9_N_TEMPLATES)

/* One direction of a connection as a record shows it. */
struct nf9_view {
	const struct flow_record *r;
	const struct flow_tuple *t;     /* addresses and ports as its packets had them */
	const struct flow_tuple *back;  /* the other direction's: the translated values */
	struct flow_counts counts;      /* uniflow: this direction's in packets/bytes */
	uint16_t icmp_type_code;
	uint8_t direction;              /* biflowDirection: 1 initiator, 2 responder */
	uint32_t vrf;
	const struct nat_event *ev;     /* a NAT session event record: its event */
};

struct nf9_state {
	encoder *enc;
	uint32_t source_id;
	gboolean uniflow;
	enum netflow_times times;
	guint template_packets;
	GArray *zone_vrf;               /* struct zone_vrf, sorted by zone */
	char *name;                     /* the export's */
	/* the flow templates (template_for), then the NAT event one */
	struct nf9_template templates[NF9_N_TEMPLATES + 1];
	guint n_templates;              /* the NAT event one only with records != flows */
	guint64 nat66_skipped;          /* records of NAT66 sessions whose events were left out */

	uint8_t *buf;
	size_t len;                     /* bytes of the unfinished packet, 0: none */
	size_t limit;                   /* largest packet */
	size_t set_start;               /* offset of the open data flowset, 0: none */
	uint16_t set_id;
	guint count;                    /* header count: records of every flowset */
	guint in_message;               /* connections in the unfinished packet */
	uint32_t sequence;              /* export packets sent in this session */
	guint since_templates;          /* packets since the last one with templates */
	gboolean templates_due;
	struct netflow_clock clock;
};

static void add_field(struct nf9_template *t, uint16_t type, uint16_t len)
{
	g_assert(t->n_fields < NF9_MAX_FIELDS);
	t->fields[t->n_fields++] = (struct nf9_field){ type, len };
	t->record_len += len;
}

static void build_template(struct nf9_state *st, struct nf9_template *t, uint16_t id, bool v6,
			   bool nat)
{
	memset(t, 0, sizeof(*t));
	t->id = id;
	add_field(t, NF9_IN_BYTES, 8);
	add_field(t, NF9_IN_PKTS, 8);
	if (!st->uniflow) {
		add_field(t, NF9_OUT_BYTES, 8);
		add_field(t, NF9_OUT_PKTS, 8);
	}
	if (st->times == NETFLOW_TIMES_UPTIME) {
		add_field(t, NF9_FIRST_SWITCHED, 4);
		add_field(t, NF9_LAST_SWITCHED, 4);
	} else {
		add_field(t, NF9_FLOW_START_MS, 8);
		add_field(t, NF9_FLOW_END_MS, 8);
	}
	add_field(t, NF9_FLOW_ID, 8);
	add_field(t, v6 ? NF9_IPV6_SRC_ADDR : NF9_IPV4_SRC_ADDR, v6 ? 16 : 4);
	add_field(t, v6 ? NF9_IPV6_DST_ADDR : NF9_IPV4_DST_ADDR, v6 ? 16 : 4);
	add_field(t, NF9_L4_SRC_PORT, 2);
	add_field(t, NF9_L4_DST_PORT, 2);
	add_field(t, v6 ? NF9_ICMP_TYPE_IPV6 : NF9_ICMP_TYPE, 2);
	add_field(t, NF9_PROTOCOL, 1);
	add_field(t, NF9_FLOW_END_REASON, 1);
	add_field(t, NF9_INGRESS_VRFID, 4);
	if (st->uniflow)
		add_field(t, NF9_BIFLOW_DIRECTION, 1);
	if (nat) {
		add_field(t, v6 ? NF9_POST_NAT_SRC_IPV6 : NF9_POST_NAT_SRC_IPV4, v6 ? 16 : 4);
		add_field(t, v6 ? NF9_POST_NAT_DST_IPV6 : NF9_POST_NAT_DST_IPV4, v6 ? 16 : 4);
		add_field(t, NF9_POST_NAPT_SRC_PORT, 2);
		add_field(t, NF9_POST_NAPT_DST_PORT, 2);
	}
}

/* RFC 8158 section 4.1.1, in the order of the IPFIX encoder's record */
static const struct nf9_field nat_event4_fields[] = {
	{ NF9_OBSERVATION_TIME_MS, 8 }, { NF9_INGRESS_VRFID, 4 },
	{ NF9_IPV4_SRC_ADDR, 4 }, { NF9_POST_NAT_SRC_IPV4, 4 },
	{ NF9_IPV4_DST_ADDR, 4 }, { NF9_POST_NAT_DST_IPV4, 4 },
	{ NF9_L4_SRC_PORT, 2 }, { NF9_POST_NAPT_SRC_PORT, 2 },
	{ NF9_L4_DST_PORT, 2 }, { NF9_POST_NAPT_DST_PORT, 2 },
	{ NF9_NAT_EVENT, 1 }, { NF9_PROTOCOL, 1 },
};

static void build_nat_event_template(struct nf9_template *t)
{
	memset(t, 0, sizeof(*t));
	t->id = NF9_TID_NAT_EVENT4;
	for (size_t i = 0; i < G_N_ELEMENTS(nat_event4_fields); i++)
		add_field(t, nat_event4_fields[i].type, nat_event4_fields[i].len);
}

static struct nf9_template *template_for(struct nf9_state *st, bool v6, bool nat)
{
	return &st->templates[(v6 ? 1 : 0) + (nat ? 2 : 0)];
}

static uint8_t *put_field(uint8_t *p, const struct nf9_field *f, const struct nf9_view *v,
			  const struct nf9_state *st)
{
	const struct flow_record *r = v->r;
	const bool icmp = flow_is_icmp(r);
	const size_t alen = r->family == AF_INET6 ? 16 : 4;

	/* An ICMP session is keyed by its query id, which NAT may change:
	 * the events carry it (both sides) where the source ports are. */
	if (v->ev && icmp) {
		switch (f->type) {
		case NF9_L4_SRC_PORT:
			return netflow_put16(p, r->orig.sport);
		case NF9_POST_NAPT_SRC_PORT:
			return netflow_put16(p, r->reply.sport);
		case NF9_L4_DST_PORT:
			return netflow_put16(p, 0);
		default:
			break;
		}
	}
	switch (f->type) {
	case NF9_IN_BYTES:
		return netflow_put64(p, v->counts.bytes);
	case NF9_IN_PKTS:
		return netflow_put64(p, v->counts.packets);
	case NF9_OUT_BYTES:
		return netflow_put64(p, v->counts.reply_bytes);
	case NF9_OUT_PKTS:
		return netflow_put64(p, v->counts.reply_packets);
	case NF9_FIRST_SWITCHED:
		return netflow_put32(p, netflow_uptime(&st->clock, flow_period_start_ns(r)));
	case NF9_LAST_SWITCHED:
		return netflow_put32(p, netflow_uptime(&st->clock, r->end_ns));
	case NF9_FLOW_START_MS:
		return netflow_put64(p, flow_period_start_ns(r) / 1000000u);
	case NF9_FLOW_END_MS:
		return netflow_put64(p, r->end_ns / 1000000u);
	case NF9_FLOW_ID:
		return netflow_put64(p, r->flow_id);
	case NF9_IPV4_SRC_ADDR:
	case NF9_IPV6_SRC_ADDR:
		return netflow_put_addr(p, v->t->src, alen);
	case NF9_IPV4_DST_ADDR:
	case NF9_IPV6_DST_ADDR:
		return netflow_put_addr(p, v->t->dst, alen);
	/* ICMP has no ports; NetFlow collectors show type and code in the
	 * destination port, so both places carry them, as in IPFIX. */
	case NF9_L4_SRC_PORT:
		return netflow_put16(p, icmp ? 0 : v->t->sport);
	case NF9_L4_DST_PORT:
		return netflow_put16(p, icmp ? v->icmp_type_code : v->t->dport);
	case NF9_ICMP_TYPE:
		return netflow_put16(p, r->proto == 1 ? v->icmp_type_code : 0);
	case NF9_ICMP_TYPE_IPV6:
		return netflow_put16(p, r->proto == 58 ? v->icmp_type_code : 0);
	case NF9_PROTOCOL:
		return netflow_put8(p, r->proto);
	case NF9_FLOW_END_REASON:
		return netflow_put8(p, r->end_reason);
	case NF9_INGRESS_VRFID:
		return netflow_put32(p, v->vrf);
	case NF9_BIFLOW_DIRECTION:
		return netflow_put8(p, v->direction);
	case NF9_OBSERVATION_TIME_MS:
		return netflow_put64(p, v->ev->time_ns / 1000000u);
	case NF9_NAT_EVENT:
		return netflow_put8(p, (uint8_t)v->ev->type);
	/* the original direction after translation, from the other
	 * direction's tuple turned around (flow_post_nat) */
	case NF9_POST_NAT_SRC_IPV4:
	case NF9_POST_NAT_SRC_IPV6:
		return netflow_put_addr(p, v->back->dst, alen);
	case NF9_POST_NAT_DST_IPV4:
	case NF9_POST_NAT_DST_IPV6:
		return netflow_put_addr(p, v->back->src, alen);
	case NF9_POST_NAPT_SRC_PORT:
		return netflow_put16(p, icmp ? 0 : v->back->dport);
	case NF9_POST_NAPT_DST_PORT:
		return netflow_put16(p, icmp ? 0 : v->back->sport);
	default:
		g_assert_not_reached();
	}
}

static struct nf9_view view_of(const struct nf9_state *st, const struct flow_record *r,
			       bool reply)
{
	struct nf9_view v = { .r = r };
	struct flow_counts c = flow_delta_counts(r);

	v.vrf = st->zone_vrf->len ?
		zone_vrf_lookup((const struct zone_vrf *)(const void *)st->zone_vrf->data,
				st->zone_vrf->len, r->zone) : r->zone;
	if (!reply) {
		v.t = &r->orig;
		v.back = &r->reply;
		v.counts = c;
		v.icmp_type_code = (uint16_t)(r->icmp_type << 8 | r->icmp_code);
		v.direction = 1;
		return v;
	}
	v.t = &r->reply;
	v.back = &r->orig;
	v.counts = (struct flow_counts){ c.reply_packets, c.reply_bytes, 0, 0 };
	v.icmp_type_code = (uint16_t)(r->reply_icmp_type << 8 | r->reply_icmp_code);
	v.direction = 2;
	return v;
}

/* Ends the open flowset: padded to 32 bits (RFC 3954 section 5.3). */
static void close_set(struct nf9_state *st)
{
	if (!st->set_start)
		return;
	while ((st->len - st->set_start) % 4)
		st->buf[st->len++] = 0;
	netflow_put16(st->buf + st->set_start + 2, (uint16_t)(st->len - st->set_start));
	st->set_start = 0;
}

static size_t templates_len(const struct nf9_state *st)
{
	size_t n = NF9_SET_HEADER_LEN;

	for (size_t i = 0; i < st->n_templates; i++)
		n += 4 + 4u * st->templates[i].n_fields;
	return n;
}

static void put_templates(struct nf9_state *st)
{
	uint8_t *p = st->buf + st->len;
	uint8_t *set = p;

	p = netflow_put16(p, NF9_TEMPLATE_SET_ID);
	p += 2;   /* length, below */
	for (size_t i = 0; i < st->n_templates; i++) {
		const struct nf9_template *t = &st->templates[i];
		p = netflow_put16(p, t->id);
		p = netflow_put16(p, t->n_fields);
		for (size_t f = 0; f < t->n_fields; f++) {
			p = netflow_put16(p, t->fields[f].type);
			p = netflow_put16(p, t->fields[f].len);
		}
		st->count++;
	}
	netflow_put16(set + 2, (uint16_t)(p - set));
	st->len = (size_t)(p - st->buf);
}

/* Starts a packet: header space, and the templates when they are due. */
static void start_packet(struct nf9_state *st)
{
	netflow_clock_start(&st->clock, (uint64_t)g_get_real_time() / 1000u);
	st->len = NF9_HEADER_LEN;
	st->count = 0;
	st->in_message = 0;
	st->set_start = 0;
	if (st->template_packets && st->since_templates >= st->template_packets)
		st->templates_due = TRUE;
	if (st->templates_due) {
		put_templates(st);
		st->templates_due = FALSE;
		st->since_templates = 0;
	}
}

static gboolean emit_packet(struct nf9_state *st, GError **error)
{
	uint8_t *p = st->buf;

	close_set(st);
	uint32_t uptime = netflow_clock_stamp(&st->clock, (uint64_t)g_get_real_time() / 1000u);
	p = netflow_put16(p, NF9_VERSION);
	p = netflow_put16(p, (uint16_t)st->count);
	p = netflow_put32(p, uptime);
	p = netflow_put32(p, (uint32_t)(st->clock.now_ms / 1000u));
	p = netflow_put32(p, st->sequence);
	netflow_put32(p, st->source_id);
	size_t len = st->len;
	guint records = st->in_message;
	st->len = 0;
	st->in_message = 0;
	st->sequence++;
	st->since_templates++;
	return encoder_emit(st->enc, st->buf, len, records, error);
}

/* Room for @n records of @t (none: NULL) and then @n_events NAT event
 * records in the unfinished packet, new flowset headers and the padding
 * of the sets before them included. */
static gboolean has_room(const struct nf9_state *st, const struct nf9_template *t, guint n,
			 guint n_events)
{
	const struct nf9_template *et = &st->templates[NF9_N_TEMPLATES];
	size_t need = 0;

	if (t) {
		need += (size_t)n * t->record_len;
		if (st->set_id != t->id || !st->set_start)
			need += 3 + NF9_SET_HEADER_LEN;
	}
	if (n_events) {
		need += (size_t)n_events * et->record_len;
		if (t || st->set_id != et->id || !st->set_start)
			need += 3 + NF9_SET_HEADER_LEN;
	}
	return st->len + need + 3 <= st->limit;
}

/* Makes room for what has_room() is asked for: the unfinished packet goes
 * out first when it is too full, and templates due at the head of a small
 * packet leave it too little room: they go alone. */
static gboolean make_room(struct nf9_state *st, const struct nf9_template *t, guint n,
			  guint n_events, GError **error)
{
	if (st->len && !has_room(st, t, n, n_events) && !emit_packet(st, error))
		return FALSE;
	if (!st->len)
		start_packet(st);
	if (!has_room(st, t, n, n_events)) {
		if (!emit_packet(st, error))
			return FALSE;
		start_packet(st);
	}
	return TRUE;
}

static void put_record(struct nf9_state *st, const struct nf9_template *t,
		       const struct nf9_view *v)
{
	if (!st->set_start || st->set_id != t->id) {
		close_set(st);
		st->set_start = st->len;
		st->set_id = t->id;
		netflow_put16(st->buf + st->len, t->id);
		st->len += NF9_SET_HEADER_LEN;
	}
	uint8_t *p = st->buf + st->len;
	for (size_t i = 0; i < t->n_fields; i++)
		p = put_field(p, &t->fields[i], v, st);
	st->len = (size_t)(p - st->buf);
	st->count++;
}

/*
 * A connection is one record, or with uniflow one per direction that had
 * packets (the original one always, so that every connection shows).  The
 * sink counts connections per packet, so both records of one go in the
 * same packet.
 */
static const struct nf9_template *flow_template(struct nf9_state *st,
						const struct flow_record *r, guint *n)
{
	*n = st->uniflow && flow_delta_counts(r).reply_packets ? 2 : 1;
	return template_for(st, r->family == AF_INET6, flow_is_translated(r));
}

static void put_flow(struct nf9_state *st, const struct nf9_template *t,
		     const struct flow_record *r, guint n)
{
	struct nf9_view v = view_of(st, r, false);
	put_record(st, t, &v);
	if (n == 2) {
		v = view_of(st, r, true);
		put_record(st, t, &v);
	}
}

static gboolean nf9_add(void *state, const struct flow_record *r, GError **error)
{
	struct nf9_state *st = state;
	guint n;
	const struct nf9_template *t = flow_template(st, r, &n);

	if (!make_room(st, t, n, 0, error))
		return FALSE;
	put_flow(st, t, r, n);
	st->in_message++;
	encoder_note_added(st->enc);
	return TRUE;
}

/*
 * The events of one record (after its flow, records = both) in one
 * packet: the sink counts the record delivered with the packet, so a
 * record cut over two would send its first part again after a resend.
 */
static gboolean nf9_add_nat_events(void *state, const struct flow_record *r,
				   const struct nat_event *events, guint n_events,
				   gboolean with_flow, gboolean *written, GError **error)
{
	struct nf9_state *st = state;
	const struct nf9_template *t = NULL;
	guint n = 0;

	*written = TRUE;
	if (r->family != AF_INET) {
		if (!st->nat66_skipped++)
			g_message("export %s: NetFlow v9 has no NAT66 session events (RFC 8158"
				  " defines NAT44 and NAT64 ones): IPv6 sessions are left out of NAT"
				  " event logging (counted, the total logged at stop)", st->name);
		if (with_flow)
			return nf9_add(st, r, error);
		*written = FALSE;
		return TRUE;
	}
	if (with_flow)
		t = flow_template(st, r, &n);
	if (!make_room(st, t, n, n_events, error))
		return FALSE;
	if (t)
		put_flow(st, t, r, n);
	struct nf9_view v = view_of(st, r, false);
	for (guint i = 0; i < n_events; i++) {
		v.ev = &events[i];
		put_record(st, &st->templates[NF9_N_TEMPLATES], &v);
	}
	st->in_message++;
	encoder_note_added(st->enc);
	return TRUE;
}

static gboolean nf9_flush(void *state, GError **error)
{
	struct nf9_state *st = state;

	if (!st->len)
		return TRUE;
	return emit_packet(st, error);
}

static gboolean nf9_start_session(void *state, guint message_limit, GError **error)
{
	struct nf9_state *st = state;

	st->limit = MIN(message_limit, NF9_BUFFER);
	st->len = 0;
	st->in_message = 0;
	st->sequence = 0;
	st->templates_due = TRUE;
	/* templates before anything else, whenever the first record comes */
	start_packet(st);
	return emit_packet(st, error);
}

static gboolean nf9_refresh_templates(void *state, GError **error)
{
	struct nf9_state *st = state;

	if (st->len && !emit_packet(st, error))
		return FALSE;
	st->templates_due = TRUE;
	start_packet(st);
	return emit_packet(st, error);
}

static void nf9_destroy(void *state)
{
	struct nf9_state *st = state;

	if (st->zone_vrf)
		g_array_unref(st->zone_vrf);
	if (st->nat66_skipped)
		g_message("export %s: %" G_GUINT64_FORMAT " records of NAT66 sessions had their"
			  " NAT events left out", st->name, st->nat66_skipped);
	g_free(st->name);
	g_free(st->buf);
	g_free(st);
}

static void *nf9_create(const struct export_config *cfg, encoder *enc, GError **error)
{
	struct nf9_state *st = g_new0(struct nf9_state, 1);

	st->enc = enc;
	st->source_id = cfg->observation_domain;
	st->uniflow = cfg->uniflow;
	st->times = cfg->netflow_times;
	st->template_packets = cfg->template_packets;
	st->name = g_strdup(cfg->name);
	st->buf = g_malloc(NF9_BUFFER);
	st->limit = NF9_BUFFER;
	for (int i = 0; i < NF9_N_TEMPLATES; i++)
		build_template(st, &st->templates[i], (uint16_t)(NF9_TID_BASE + i + (st->uniflow ? 4 : 0)),
			       i & 1, i & 2);
	build_nat_event_template(&st->templates[NF9_N_TEMPLATES]);
	/* the NAT event template is sent only to an export of NAT events */
	st->n_templates = NF9_N_TEMPLATES + (cfg->records != EXPORT_RECORDS_FLOWS);
	/* a connection's records, and two NAT events after them, fit a packet
	 * of the smallest limit; the templates may need one of their own
	 * (make_room) */
	g_assert(NF9_HEADER_LEN + 2 * (3 + NF9_SET_HEADER_LEN) +
		 2u * template_for(st, true, true)->record_len +
		 2u * st->templates[NF9_N_TEMPLATES].record_len <= 512);
	g_assert(NF9_HEADER_LEN + templates_len(st) <= 512);
	st->zone_vrf = zone_vrf_parse(cfg->zone_vrf, error);
	if (!st->zone_vrf) {
		nf9_destroy(st);
		return NULL;
	}
	return st;
}

const struct encoder_ops encoder_netflow9_ops = {
	.create = nf9_create,
	.start_session = nf9_start_session,
	.add = nf9_add,
	.flush = nf9_flush,
	.refresh_templates = nf9_refresh_templates,
	.report_statistics = NULL,
	.destroy = nf9_destroy,
	.add_nat_events = nf9_add_nat_events,
};
