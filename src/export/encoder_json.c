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

#define JSON_LINE_MAX 1024   /* room for one line beyond a full message */

struct json_state {
	encoder *enc;
	GString *msg;
	guint in_message;
	guint mtu;
	guint64 reported_not_sent;   /* the not_sent line's total this session told */
	enum export_counters counters;
};

static void put_time(GString *out, const char *key, uint64_t ns, gboolean known)
{
	if (!known) {
		g_string_append_printf(out, ",\"%s\":null,\"%s_ns\":null", key, key);
		return;
	}
	time_t secs = (time_t)(ns / 1000000000u);
	struct tm tm;
	char buf[32];
	gmtime_r(&secs, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	g_string_append_printf(out, ",\"%s\":\"%s.%09" PRIu64 "Z\",\"%s_ns\":%" PRIu64, key, buf,
			       ns % 1000000000u, key, ns);
}

static void put_counter(GString *out, const char *key, uint64_t v, gboolean known)
{
	if (known)
		g_string_append_printf(out, ",\"%s\":%" PRIu64, key, v);
	else
		g_string_append_printf(out, ",\"%s\":null", key);
}

static void put_tuple(GString *out, const char *prefix, int family, const struct flow_tuple *t,
		      gboolean ports)
{
	char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];

	g_string_append_printf(out, ",\"%ssrc\":\"%s\",\"%sdst\":\"%s\"", prefix,
			       flow_format_addr(family, t->src, a, sizeof(a)), prefix,
			       flow_format_addr(family, t->dst, b, sizeof(b)));
	if (ports)
		g_string_append_printf(out, ",\"%ssport\":%u,\"%sdport\":%u", prefix, t->sport,
				       prefix, t->dport);
}

/*
 * Counters and start as IPFIX has them (encoder_ipfix.c): with delta
 * counters the record starts where the connection's previous one ended;
 * total counters (and both sets) cover the connection from its start.
 * Both: packets... are the deltas, total_packets... the totals.
 */
static void put_counters(GString *out, const struct flow_record *r, enum export_counters mode,
			 gboolean known)
{
	struct flow_counts c = mode == EXPORT_COUNTERS_TOTAL ? flow_total_counts(r)
							     : flow_delta_counts(r);

	put_counter(out, "packets", c.packets, known);
	put_counter(out, "bytes", c.bytes, known);
	put_counter(out, "reply_packets", c.reply_packets, known);
	put_counter(out, "reply_bytes", c.reply_bytes, known);
	if (mode == EXPORT_COUNTERS_BOTH) {
		put_counter(out, "total_packets", r->packets, known);
		put_counter(out, "total_bytes", r->bytes, known);
		put_counter(out, "total_reply_packets", r->reply_packets, known);
		put_counter(out, "total_reply_bytes", r->reply_bytes, known);
	}
}

static void format_record(GString *out, const struct flow_record *r, enum export_counters mode)
{
	gboolean counters = (r->flags & FLOW_HAS_COUNTERS) != 0;
	gboolean times = (r->flags & FLOW_HAS_TIMESTAMPS) != 0;
	gboolean ports = !flow_is_icmp(r);

	g_string_append_printf(out, "{\"flow_id\":%" PRIu64 ",\"family\":\"%s\",\"proto\":%u",
			       r->flow_id, r->family == AF_INET6 ? "ipv6" : "ipv4", r->proto);
	put_tuple(out, "", r->family, &r->orig, ports);
	put_tuple(out, "reply_", r->family, &r->reply, ports);
	if (flow_is_translated(r)) {
		/* what the reply tuple says, named as IPFIX's post-NAT elements */
		const struct flow_tuple post = flow_post_nat(r);
		put_tuple(out, "post_nat_", r->family, &post, ports);
	}
	if (!ports)
		g_string_append_printf(out, ",\"icmp_type\":%u,\"icmp_code\":%u,\"icmp_id\":%u",
				       r->icmp_type, r->icmp_code, r->orig.sport);
	put_counters(out, r, mode, counters);
	put_time(out, "start", mode == EXPORT_COUNTERS_DELTA ? flow_period_start_ns(r) : r->start_ns,
		 times);
	put_time(out, "end", r->end_ns, times);
	g_string_append_printf(out,
			       ",\"end_reason\":\"%s\",\"ct_id\":%" PRIu32 ",\"zone\":%u,\"mark\":%" PRIu32
			       ",\"status\":%" PRIu32 "}\n",
			       flow_end_reason_name(r->end_reason), r->ct_id, r->zone, r->mark,
			       r->status);
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

	g_string_append_printf(out, "{\"nat_event\":\"%s\",\"late\":%s,\"refresh\":%s",
			       ev->type == NAT_EVENT_CREATE ? "create" : "delete",
			       ev->late ? "true" : "false", ev->refresh ? "true" : "false");
	put_time(out, "time", ev->time_ns, TRUE);
	g_string_append_printf(out, ",\"flow_id\":%" PRIu64 ",\"family\":\"%s\",\"proto\":%u",
			       r->flow_id, r->family == AF_INET6 ? "ipv6" : "ipv4", r->proto);
	put_tuple(out, "", r->family, &r->orig, ports);
	put_tuple(out, "post_nat_", r->family, &post, ports);
	if (!ports)
		g_string_append_printf(out, ",\"icmp_id\":%u,\"post_nat_icmp_id\":%u", r->orig.sport,
				       r->reply.sport);
	g_string_append_printf(out, ",\"ct_id\":%" PRIu32 ",\"zone\":%u}\n", r->ct_id, r->zone);
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
	put_time(out, "time", now_ns, TRUE);
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
	put_time(out, "since", st->init_ms * 1000000u, TRUE);
	g_string_append_c(out, '}');
	put_time(out, "time", now_ns, TRUE);
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
