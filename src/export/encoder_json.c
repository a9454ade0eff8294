/*
 * encoder_json.c - one JSON object per flow, one per line.
 *
 * What a billing pipeline ingests and what a person reads when trying
 * ctflowd.  Values the kernel did not send (counters or timestamps of entries
 * created before accounting was on) are null, never a made-up zero.
 * NAT session events are lines of their own, {"nat_event":...}.
 * Lines are gathered into messages of at most `mtu` bytes so a file or
 * socket sees few large writes.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>

#include "format.h"
#include "text.h"

#define JSON_LINE_MAX 2048   /* room for one line beyond a full message */

struct json_state {
	encoder *enc;
	GString *msg;
	guint in_message;
	guint mtu;
	guint64 reported_not_sent;   /* the not_sent line's total this session told */
	enum export_counters counters;
};

/*
 * A line is written straight into the message buffer (text.h, no printf):
 * JSON_LINE_MAX bytes of room are made first, more than the longest line
 * (two IPv6 tuples and a post-NAT one, every counter, 128 labels).
 */
#define KEY(at, k) text_copy((at), ",\"" k "\":")

static char *put_time(char *at, const char *key, uint64_t ns, gboolean known)
{
	at = text_copy(text_copy(text_copy(at, ",\""), key), "\":");
	if (!known)
		return text_copy(text_copy(text_copy(at, "null,\""), key), "_ns\":null");
	*at++ = '"';
	at = text_rfc3339(at, ns, 9);
	at = text_copy(text_copy(text_copy(at, "\",\""), key), "_ns\":");
	return text_decimal(at, ns, 1);
}

/* put_time() for the lines that are not flows */
static void append_time(GString *out, const char *key, uint64_t ns)
{
	char buf[128];

	g_string_append_len(out, buf, put_time(buf, key, ns, TRUE) - buf);
}

static char *put_number(char *at, const char *key, uint64_t v, gboolean known)
{
	at = text_copy(text_copy(text_copy(at, ",\""), key), "\":");
	return known ? text_decimal(at, v, 1) : text_copy(at, "null");
}

static char *put_tuple(char *at, const char *prefix, int family, const struct flow_tuple *t,
		       gboolean ports)
{
	at = text_copy(text_copy(text_copy(at, ",\""), prefix), "src\":\"");
	at = text_addr(at, family, t->src);
	at = text_copy(text_copy(text_copy(at, "\",\""), prefix), "dst\":\"");
	at = text_addr(at, family, t->dst);
	*at++ = '"';
	if (ports) {
		at = text_copy(text_copy(text_copy(at, ",\""), prefix), "sport\":");
		at = text_decimal(at, t->sport, 1);
		at = text_copy(text_copy(text_copy(at, ",\""), prefix), "dport\":");
		at = text_decimal(at, t->dport, 1);
	}
	return at;
}

/*
 * Counters and start as IPFIX has them (encoder_ipfix.c): with delta
 * counters the record starts where the connection's previous one ended;
 * total counters (and both sets) cover the connection from its start.
 * Both: packets... are the deltas, total_packets... the totals.
 */
static char *put_counters(char *at, const struct flow_record *r, enum export_counters mode,
			  gboolean known)
{
	struct flow_counts c = mode == EXPORT_COUNTERS_TOTAL ? flow_total_counts(r)
							     : flow_delta_counts(r);

	at = put_number(at, "packets", c.packets, known);
	at = put_number(at, "bytes", c.bytes, known);
	at = put_number(at, "reply_packets", c.reply_packets, known);
	at = put_number(at, "reply_bytes", c.reply_bytes, known);
	if (mode == EXPORT_COUNTERS_BOTH) {
		at = put_number(at, "total_packets", r->packets, known);
		at = put_number(at, "total_bytes", r->bytes, known);
		at = put_number(at, "total_reply_packets", r->reply_packets, known);
		at = put_number(at, "total_reply_bytes", r->reply_bytes, known);
	}
	return at;
}

/* The conntrack labels set, as the numbers nft and conntrack name them by
 * (ct label set N), [] when none is; null when none are known: the kernel
 * leaves them out of DESTROY events, and only a NEW event read before can
 * bring them (ct_labels.h). */
static char *put_labels(char *at, const struct flow_record *r)
{
	if (!(r->flags & FLOW_HAS_LABELS))
		return text_copy(KEY(at, "labels"), "null");
	at = KEY(at, "labels");
	*at++ = '[';
	for (unsigned n = 0; n < 8 * sizeof(r->labels); n++) {
		if (r->labels[n / 8] & (1u << (n % 8))) {
			if (at[-1] != '[')
				*at++ = ',';
			at = text_decimal(at, n, 1);
		}
	}
	*at++ = ']';
	return at;
}

static void format_record(GString *out, const struct flow_record *r, enum export_counters mode)
{
	gboolean counters = (r->flags & FLOW_HAS_COUNTERS) != 0;
	gboolean times = (r->flags & FLOW_HAS_TIMESTAMPS) != 0;
	gboolean ports = !flow_is_icmp(r);
	gsize before = out->len;

	g_string_set_size(out, before + JSON_LINE_MAX);
	char *at = out->str + before;
	at = text_decimal(text_copy(at, "{\"flow_id\":"), r->flow_id, 1);
	at = text_copy(at, r->family == AF_INET6 ? ",\"family\":\"ipv6\"" : ",\"family\":\"ipv4\"");
	at = text_decimal(KEY(at, "proto"), r->proto, 1);
	at = put_tuple(at, "", r->family, &r->orig, ports);
	at = put_tuple(at, "reply_", r->family, &r->reply, ports);
	if (flow_is_translated(r)) {
		/* what the reply tuple says, named as IPFIX's post-NAT elements */
		const struct flow_tuple post = flow_post_nat(r);
		at = put_tuple(at, "post_nat_", r->family, &post, ports);
	}
	if (!ports) {
		at = text_decimal(KEY(at, "icmp_type"), r->icmp_type, 1);
		at = text_decimal(KEY(at, "icmp_code"), r->icmp_code, 1);
		at = text_decimal(KEY(at, "icmp_id"), r->orig.sport, 1);
	}
	at = put_counters(at, r, mode, counters);
	at = put_time(at, "start", mode == EXPORT_COUNTERS_DELTA ? flow_period_start_ns(r) : r->start_ns,
		      times);
	at = put_time(at, "end", r->end_ns, times);
	at = text_copy(text_copy(KEY(at, "end_reason"), "\""), flow_end_reason_name(r->end_reason));
	*at++ = '"';
	at = text_decimal(KEY(at, "ct_id"), r->ct_id, 1);
	at = text_decimal(KEY(at, "zone"), r->zone, 1);
	at = text_decimal(KEY(at, "mark"), r->mark, 1);
	at = put_labels(at, r);
	at = text_decimal(KEY(at, "status"), r->status, 1);
	at = text_copy(at, "}\n");
	g_string_truncate(out, (gsize)(at - out->str));
}

/*
 * A NAT session event: the inside (original) tuple and the outside one
 * (after translation), with the names flow lines use.  Late creates and
 * refreshes say so; the time is when the event was observed.
 */
static void format_nat_event(GString *out, const struct flow_record *r,
			      const struct nat_event *ev)
{
	const gboolean ports = !flow_is_icmp(r);
	const struct flow_tuple post = flow_post_nat(r);
	gsize before = out->len;

	g_string_set_size(out, before + JSON_LINE_MAX);
	char *at = out->str + before;
	at = text_copy(at, ev->type == NAT_EVENT_CREATE ? "{\"nat_event\":\"create\""
							 : "{\"nat_event\":\"delete\"");
	at = text_copy(KEY(at, "late"), ev->late ? "true" : "false");
	at = text_copy(KEY(at, "refresh"), ev->refresh ? "true" : "false");
	at = put_time(at, "time", ev->time_ns, TRUE);
	at = text_decimal(KEY(at, "flow_id"), r->flow_id, 1);
	at = text_copy(at, r->family == AF_INET6 ? ",\"family\":\"ipv6\"" : ",\"family\":\"ipv4\"");
	at = text_decimal(KEY(at, "proto"), r->proto, 1);
	at = put_tuple(at, "", r->family, &r->orig, ports);
	at = put_tuple(at, "post_nat_", r->family, &post, ports);
	if (!ports) {
		at = text_decimal(KEY(at, "icmp_id"), r->orig.sport, 1);
		at = text_decimal(KEY(at, "post_nat_icmp_id"), r->reply.sport, 1);
	}
	at = text_decimal(KEY(at, "ct_id"), r->ct_id, 1);
	at = text_decimal(KEY(at, "zone"), r->zone, 1);
	at = text_copy(at, "}\n");
	g_string_truncate(out, (gsize)(at - out->str));
}

static gboolean json_flush(void *state, GError **error)
{
	struct json_state *st = state;

	if (!st->msg->len)
		return TRUE;
	guint records = st->in_message;
	gboolean ok = encoder_emit(st->enc, (const uint8_t *)st->msg->str, st->msg->len, records,
				   error);
	g_string_truncate(st->msg, 0);
	st->in_message = 0;
	return ok;
}

/* The lines of one record, just appended from @before on, stay together:
 * when they do not fit, what was there goes out first. */
static gboolean count_lines(struct json_state *st, gsize before, GError **error)
{
	if (st->msg->len > st->mtu && before > 0) {
		/* The lines do not fit: send what was there, keep the lines. */
		g_autofree char *line = g_strndup(st->msg->str + before, st->msg->len - before);
		g_string_truncate(st->msg, before);
		if (!json_flush(st, error))
			return FALSE;
		g_string_append(st->msg, line);
	}
	st->in_message++;
	encoder_note_added(st->enc);
	return TRUE;
}

static gboolean json_add(void *state, const struct flow_record *r, GError **error)
{
	struct json_state *st = state;
	gsize before = st->msg->len;

	format_record(st->msg, r, st->counters);
	return count_lines(st, before, error);
}

/* Both families: a JSON line names its family. */
static gboolean json_add_nat_events(void *state, const struct flow_record *r,
				    const struct nat_event *events, guint n, gboolean with_flow,
				    gboolean *written, GError **error)
{
	struct json_state *st = state;
	gsize before = st->msg->len;

	if (with_flow)
		format_record(st->msg, r, st->counters);
	for (guint i = 0; i < n; i++)
		format_nat_event(st->msg, r, &events[i]);
	*written = TRUE;
	return count_lines(st, before, error);
}

static gboolean json_start_session(void *state, guint message_limit, GError **error)
{
	struct json_state *st = state;

	st->mtu = message_limit;
	g_string_truncate(st->msg, 0);
	st->in_message = 0;
	st->reported_not_sent = 0;   /* a new session learns the total again */
	return TRUE;
}

static gboolean json_refresh_templates(void *state, GError **error)
{
	return TRUE;
}

/*
 * Lines of their own, in a message of their own, told apart from flows by
 * having no flow_id.  The not_sent line says how many records this export
 * has lost so far, as IPFIX says it with notSentFlowTotalCount, whenever
 * that grew; the exporter_stats line carries every counter, with the names
 * the log uses.
 */
static void put_not_sent(GString *out, guint64 total, guint64 now_ns)
{
	g_string_append_printf(out, "{\"not_sent_flow_total_count\":%" PRIu64, total);
	append_time(out, "time", now_ns);
	g_string_append(out, "}\n");
}

static void put_statistics(GString *out, const struct export_statistics *st, guint64 now_ns)
{
	g_string_append_printf(out,
			       "{\"exporter_stats\":{\"exporting_process_id\":%" PRIu32
			       ",\"messages\":%" PRIu64 ",\"records\":%" PRIu64
			       ",\"octets\":%" PRIu64 ",\"not_sent_flow_total_count\":%" PRIu64
			       ",\"destroy_events\":%" PRIu64 ",\"duplicates\":%" PRIu64
			       ",\"overruns\":%" PRIu64 ",\"malformed\":%" PRIu64
			       ",\"spool_dropped\":%" PRIu64,
			       st->exporting_process_id, st->messages, st->records, st->octets,
			       st->not_sent, st->destroy_events, st->duplicates, st->overruns,
			       st->malformed, st->spool_dropped);
	if (st->failover)
		g_string_append_printf(out,
				       ",\"takeovers\":%" PRIu64 ",\"givebacks\":%" PRIu64
				       ",\"doubtful\":%" PRIu64,
				       st->takeovers, st->givebacks, st->doubtful);
	append_time(out, "since", st->init_ms * 1000000u);
	g_string_append_c(out, '}');
	append_time(out, "time", now_ns);
	g_string_append(out, "}\n");
}

static gboolean json_report_statistics(void *state, const struct export_statistics *stats,
				       GError **error)
{
	struct json_state *st = state;
	guint64 now_ns = (guint64)g_get_real_time() * 1000u;

	if (!json_flush(st, error))
		return FALSE;
	if (stats->not_sent != st->reported_not_sent)
		put_not_sent(st->msg, stats->not_sent, now_ns);
	put_statistics(st->msg, stats, now_ns);
	gboolean ok = encoder_emit(st->enc, (const uint8_t *)st->msg->str, st->msg->len, 0, error);
	g_string_truncate(st->msg, 0);
	if (ok)
		st->reported_not_sent = stats->not_sent;
	return ok;
}

static void json_destroy(void *state)
{
	struct json_state *st = state;

	g_string_free(st->msg, TRUE);
	g_free(st);
}

static void *json_create(const struct export_config *cfg, encoder *enc, GError **error)
{
	struct json_state *st = g_new0(struct json_state, 1);

	st->enc = enc;
	st->mtu = cfg->mtu ? cfg->mtu : 65000u;
	st->counters = cfg->counters;
	st->msg = g_string_sized_new(st->mtu + JSON_LINE_MAX);
	return st;
}

const struct encoder_ops encoder_json_ops = {
	.create = json_create,
	.start_session = json_start_session,
	.add = json_add,
	.flush = json_flush,
	.refresh_templates = json_refresh_templates,
	.report_statistics = json_report_statistics,
	.destroy = json_destroy,
	.add_nat_events = json_add_nat_events,
};
