/*
 * encoder_syslog.c - one syslog message per flow record.
 *
 * What compliance archives and SIEMs read.  Remote receivers get RFC 5424
 * messages: the header's TIMESTAMP is when the record's period ended, and
 * the fields are the structured data of one SD-ELEMENT (SD-ID configurable,
 * NAME@PEN), optionally repeated as key=value text for tools that only look
 * at the message text.  How messages are framed depends on the transport:
 *
 *   udp     one message per datagram (RFC 5426), never truncated
 *   tcp     octet counting, "LEN SP MSG" (RFC 6587 section 3.4.1), messages
 *           gathered into writes of at most `mtu` bytes
 *   local   the local syslog socket (/dev/log): one datagram per message
 *           in the form both journald and rsyslog's imuxsock parse,
 *           "<PRI>Mmm dd hh:mm:ss APP[PID]: MSG" (RFC 3164 section 4.1.2),
 *           with the structured data at the start of MSG.  journald reads
 *           only that form from /dev/log; its header says nothing that is
 *           not also in the structured data.
 *   file, stdout   RFC 5424 messages, one per line
 *
 * NAT session events (records = nat-events or both): one message per event,
 * with the MSGIDs NAT devices use, SADD (session added) or SDEL (session
 * deleted), the header's TIMESTAMP the
 * event's time, and the session in the structured data: the event again
 * (the local form has no MSGID), the protocol, the inside (pre-NAT) and
 * outside (post-NAT) source address and port, the destination before and
 * after NAT, the zone, and whether a create is late (its NEW event was
 * lost) or a refresh.  A record's messages go together: in one write over
 * a stream, counted as delivered with the last datagram otherwise.
 *
 * Values the kernel did not send (counters or timestamps of entries created
 * before accounting was on) are left out, never a made-up zero.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "format.h"
#include "text.h"

#define SYSLOG_MSGID "flow"

enum syslog_framing {
	FRAMING_DATAGRAM,        /* RFC 5424, one message per datagram */
	FRAMING_LOCAL,           /* RFC 3164 header, one message per datagram */
	FRAMING_OCTET_COUNTING,  /* RFC 6587 */
	FRAMING_LINES,           /* LF after each message */
};

/* One SD-PARAM: values are short (an IPv6 address at most). */
#define PARAM_VALUE_MAX 48
#define PARAMS_MAX 32
#define PARAM_NAME_MAX 32   /* SD-NAME, RFC 5424 section 6.3.3 */

struct param {
	const char *name;
	char value[PARAM_VALUE_MAX];
};

struct syslog_state {
	encoder *enc;
	const struct export_config *cfg;
	enum syslog_framing framing;
	guint limit;
	char *header_tail;       /* " HOSTNAME APP-NAME PROCID ", the MSGID after it */
	char *local_tag;         /* " APP[PID]: " */
	guint pri;
	GString *one;            /* the message being built */
	GString *batch;          /* streams: framed messages not yet emitted */
	GString *record;         /* streams: the framed messages of the record being added */
	guint in_batch;
	gboolean oversize_told;  /* once per session */
	/* the date and time of the last second formatted, for the next */
	time_t cached_sec;
	char cached_text[64];   /* room for any int the fields of struct tm hold */
	struct param params[PARAMS_MAX];
	guint n_params;
	/* SD-ID, every param escaped, and the text: within this */
	char body[SYSLOG_SD_NAME_MAX + 2 + PARAMS_MAX * (2 * PARAM_NAME_MAX + 3 * PARAM_VALUE_MAX + 8)];
};

/* @value as an RFC 5424 PARAM-VALUE at @out (room for twice its length):
 * '"', '\' and ']' escaped (section 6.3.3); returns the end. */
static char *put_param_value(char *out, const char *value)
{
	for (; *value; value++) {
		if (*value == '"' || *value == '\\' || *value == ']')
			*out++ = '\\';
		*out++ = *value;
	}
	return out;
}

void syslog_append_param_value(GString *out, const char *value)
{
	gsize at = out->len;

	g_string_set_size(out, at + 2 * strlen(value));
	char *end = put_param_value(out->str + at, value);
	g_string_truncate(out, (gsize)(end - out->str));
}

static struct param *next_param(struct syslog_state *st, const char *name)
{
	g_assert(st->n_params < PARAMS_MAX);
	struct param *p = &st->params[st->n_params++];
	p->name = name;
	return p;
}

static void add_uint(struct syslog_state *st, const char *name, uint64_t v)
{
	*text_decimal(next_param(st, name)->value, v, 1) = '\0';
}

static void add_text(struct syslog_state *st, const char *name, const char *text)
{
	g_strlcpy(next_param(st, name)->value, text, PARAM_VALUE_MAX);
}

static void add_addr(struct syslog_state *st, const char *name, int family, const uint8_t *addr)
{
	*text_addr(next_param(st, name)->value, family, addr) = '\0';
}

/* "Dec  2 09:30:58" in local time, English month names whatever the
 * locale (RFC 3164 section 4.1.2), computed once per second. */
static const char *format_local_second(struct syslog_state *st, time_t sec)
{
	static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

	if (sec != st->cached_sec || !st->cached_text[0]) {
		struct tm tm;
		localtime_r(&sec, &tm);
		snprintf(st->cached_text, sizeof(st->cached_text), "%s %2d %02d:%02d:%02d",
			 months[tm.tm_mon % 12], tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		st->cached_sec = sec;
	}
	return st->cached_text;
}

static void add_time(struct syslog_state *st, const char *name, uint64_t ns)
{
	*text_rfc3339(next_param(st, name)->value, ns, 9) = '\0';
}

static void add_counts(struct syslog_state *st, const char *const names[4], struct flow_counts c)
{
	add_uint(st, names[0], c.packets);
	add_uint(st, names[1], c.bytes);
	add_uint(st, names[2], c.reply_packets);
	add_uint(st, names[3], c.reply_bytes);
}

/* The fields of a record, in the order they are written. */
static void collect_params(struct syslog_state *st, const struct flow_record *r)
{
	static const char *const plain[4] = { "packets", "bytes", "replyPackets", "replyBytes" };
	static const char *const total[4] = { "totalPackets", "totalBytes", "totalReplyPackets",
					      "totalReplyBytes" };
	gboolean ports = !flow_is_icmp(r);
	enum export_counters counters = st->cfg->counters;

	st->n_params = 0;
	add_uint(st, "flowId", r->flow_id);
	add_uint(st, "proto", r->proto);
	add_addr(st, "src", r->family, r->orig.src);
	add_addr(st, "dst", r->family, r->orig.dst);
	if (ports) {
		add_uint(st, "sport", r->orig.sport);
		add_uint(st, "dport", r->orig.dport);
	} else {
		add_uint(st, "icmpType", r->icmp_type);
		add_uint(st, "icmpCode", r->icmp_code);
		add_uint(st, "icmpId", r->orig.sport);
	}
	if (flow_is_translated(r)) {
		const struct flow_tuple post = flow_post_nat(r);
		add_addr(st, "postNatSrc", r->family, post.src);
		add_addr(st, "postNatDst", r->family, post.dst);
		if (ports) {
			add_uint(st, "postNatSport", post.sport);
			add_uint(st, "postNatDport", post.dport);
		} else {
			/* the echo id as the reply tuple carries it */
			add_uint(st, "postNatIcmpId", r->reply.sport);
		}
	}
	if (r->flags & FLOW_HAS_COUNTERS) {
		add_counts(st, plain, counters == EXPORT_COUNTERS_TOTAL ? flow_total_counts(r)
									 : flow_delta_counts(r));
		if (counters == EXPORT_COUNTERS_BOTH)
			add_counts(st, total, flow_total_counts(r));
	}
	if (r->flags & FLOW_HAS_TIMESTAMPS) {
		add_time(st, "start", r->start_ns);
		add_time(st, "end", r->end_ns);
		/* what the deltas cover, when that is less than the connection */
		if (counters != EXPORT_COUNTERS_TOTAL && flow_period_start_ns(r) != r->start_ns)
			add_time(st, "periodStart", flow_period_start_ns(r));
	}
	add_text(st, "endReason", flow_end_reason_name(r->end_reason));
	add_uint(st, "interim", flow_is_interim(r));
	add_uint(st, "zone", r->zone);
	add_uint(st, "mark", r->mark);
}

static char *put_text(char *out, const char *text)
{
	size_t n = strlen(text);

	memcpy(out, text, n);
	return out + n;
}

/* The structured data, and the key=value text when configured, into
 * st->body: one append to the message instead of one per piece. */
static void append_body(struct syslog_state *st, GString *out)
{
	char *at = st->body;

	*at++ = '[';
	at = put_text(at, st->cfg->syslog_sd_id);
	for (guint i = 0; i < st->n_params; i++) {
		*at++ = ' ';
		at = put_text(at, st->params[i].name);
		*at++ = '=';
		*at++ = '"';
		at = put_param_value(at, st->params[i].value);
		*at++ = '"';
	}
	*at++ = ']';
	for (guint i = 0; st->cfg->syslog_text && i < st->n_params; i++) {
		*at++ = ' ';
		at = put_text(at, st->params[i].name);
		*at++ = '=';
		at = put_text(at, st->params[i].value);
	}
	g_string_append_len(out, st->body, at - st->body);
}

/* The message time: when the record's period ended, or now when the
 * kernel sent no timestamps. */
static uint64_t message_time_ns(const struct flow_record *r)
{
	if (r->flags & FLOW_HAS_TIMESTAMPS)
		return r->end_ns;
	return (uint64_t)g_get_real_time() * 1000u;
}

/* The message of the params collected: header (time @when, MSGID
 * @msgid) and body. */
static void format_message(struct syslog_state *st, GString *out, uint64_t when,
			   const char *msgid)
{
	char head[64], *at = head;

	*at++ = '<';
	at = text_decimal(at, st->pri, 1);
	*at++ = '>';
	if (st->framing == FRAMING_LOCAL) {
		g_string_append_len(out, head, at - head);
		g_string_append(out, format_local_second(st, (time_t)(when / 1000000000u)));
		g_string_append(out, st->local_tag);
	} else {
		*at++ = '1';
		*at++ = ' ';
		/* RFC 5424 section 6.2.3: at most six digits of fraction */
		at = text_rfc3339(at, when, 6);
		g_string_append_len(out, head, at - head);
		g_string_append(out, st->header_tail);
		g_string_append(out, msgid);
		g_string_append_c(out, ' ');
	}
	append_body(st, out);
}

/* The fields of a NAT session event: who was behind the translation, as
 * what, and to where. */
static void collect_event_params(struct syslog_state *st, const struct flow_record *r,
				 const struct nat_event *ev)
{
	const struct flow_tuple post = flow_post_nat(r);

	st->n_params = 0;
	add_text(st, "event", ev->type == NAT_EVENT_CREATE ? "SADD" : "SDEL");
	add_time(st, "time", ev->time_ns);
	add_uint(st, "proto", r->proto);
	add_addr(st, "src", r->family, r->orig.src);
	add_addr(st, "postNatSrc", r->family, post.src);
	if (flow_is_icmp(r)) {
		/* the query id is the session's "port", and NAT may change it */
		add_uint(st, "icmpId", r->orig.sport);
		add_uint(st, "postNatIcmpId", r->reply.sport);
		add_addr(st, "dst", r->family, r->orig.dst);
		add_addr(st, "postNatDst", r->family, post.dst);
	} else {
		add_uint(st, "sport", r->orig.sport);
		add_uint(st, "postNatSport", post.sport);
		add_addr(st, "dst", r->family, r->orig.dst);
		add_addr(st, "postNatDst", r->family, post.dst);
		add_uint(st, "dport", r->orig.dport);
		add_uint(st, "postNatDport", post.dport);
	}
	add_uint(st, "zone", r->zone);
	add_uint(st, "late", ev->late);
	add_uint(st, "refresh", ev->refresh);
}

static gboolean syslog_flush(void *state, GError **error)
{
	struct syslog_state *st = state;

	if (!st->batch->len)
		return TRUE;
	guint records = st->in_batch;
	gboolean ok = encoder_emit(st->enc, (const uint8_t *)st->batch->str, st->batch->len,
				   records, error);
	g_string_truncate(st->batch, 0);
	st->in_batch = 0;
	return ok;
}

/* st->one as the stream frames it, onto @out: octet counting (RFC 6587
 * section 3.4.1) or a line. */
static void frame_onto(struct syslog_state *st, GString *out)
{
	if (st->framing == FRAMING_OCTET_COUNTING) {
		char prefix[24];
		int n = snprintf(prefix, sizeof(prefix), "%zu ", st->one->len);
		g_string_append_len(out, prefix, n);
		g_string_append_len(out, st->one->str, st->one->len);
	} else {
		g_string_append_len(out, st->one->str, st->one->len);
		g_string_append_c(out, '\n');
	}
}

/* The bytes frame_onto() adds. */
static size_t framed_len(const struct syslog_state *st)
{
	size_t n = st->one->len + 1;

	if (st->framing == FRAMING_OCTET_COUNTING)
		for (size_t v = st->one->len; v >= 10; v /= 10)
			n++;
	return n;
}

/*
 * Sends st->one, a message of the record being added; @last: the record's
 * last.  A datagram is sent at once, the record counted with its last; a
 * stream gathers the record's messages and adds them to the batch
 * together.
 */
static gboolean put_message(struct syslog_state *st, gboolean last, GError **error)
{
	if (st->framing == FRAMING_DATAGRAM || st->framing == FRAMING_LOCAL) {
		/* One message, one datagram, whole: a datagram above the path's
		 * MTU is fragmented by IP rather than cut (RFC 5426 section 3.2
		 * allows up to 65507 bytes over IPv4). */
		if (st->one->len > st->limit && !st->oversize_told) {
			g_warning("export %s: a syslog message of %zu bytes is larger than the message"
				  " limit of %u bytes; it is sent whole in one datagram, which IP"
				  " fragments (said once per session)",
				  st->cfg->name, st->one->len, st->limit);
			st->oversize_told = TRUE;
		}
		return encoder_emit(st->enc, (const uint8_t *)st->one->str, st->one->len,
				    last ? 1 : 0, error);
	}

	/* the record's last message (a flow's only one) is framed straight
	 * into the batch, the ones before it wait in st->record */
	if (!last) {
		frame_onto(st, st->record);
		return TRUE;
	}
	if (st->batch->len && st->batch->len + st->record->len + framed_len(st) > st->limit &&
	    !syslog_flush(st, error))
		return FALSE;
	g_string_append_len(st->batch, st->record->str, st->record->len);
	g_string_truncate(st->record, 0);
	frame_onto(st, st->batch);
	st->in_batch++;
	return TRUE;
}

static void format_flow(struct syslog_state *st, const struct flow_record *r)
{
	g_string_truncate(st->one, 0);
	collect_params(st, r);
	format_message(st, st->one, message_time_ns(r), SYSLOG_MSGID);
}

static gboolean syslog_add(void *state, const struct flow_record *r, GError **error)
{
	struct syslog_state *st = state;

	format_flow(st, r);
	encoder_note_added(st->enc);
	return put_message(st, TRUE, error);
}

/* The record's flow first (records = both), then its events. */
static gboolean syslog_add_nat_events(void *state, const struct flow_record *r,
				      const struct nat_event *events, guint n, gboolean with_flow,
				      gboolean *written, GError **error)
{
	struct syslog_state *st = state;

	*written = TRUE;
	encoder_note_added(st->enc);
	if (with_flow) {
		format_flow(st, r);
		if (!put_message(st, FALSE, error))
			return FALSE;
	}
	for (guint i = 0; i < n; i++) {
		g_string_truncate(st->one, 0);
		collect_event_params(st, r, &events[i]);
		format_message(st, st->one, events[i].time_ns,
			       events[i].type == NAT_EVENT_CREATE ? "SADD" : "SDEL");
		if (!put_message(st, i + 1 == n, error))
			return FALSE;
	}
	return TRUE;
}

static gboolean syslog_start_session(void *state, guint message_limit, GError **error)
{
	struct syslog_state *st = state;

	st->limit = message_limit;
	g_string_truncate(st->batch, 0);
	g_string_truncate(st->record, 0);
	st->in_batch = 0;
	st->oversize_told = FALSE;
	return TRUE;
}

static gboolean syslog_refresh_templates(void *state, GError **error)
{
	return TRUE;
}

static void syslog_destroy(void *state)
{
	struct syslog_state *st = state;

	g_string_free(st->one, TRUE);
	g_string_free(st->batch, TRUE);
	g_string_free(st->record, TRUE);
	g_free(st->header_tail);
	g_free(st->local_tag);
	g_free(st);
}

static enum syslog_framing framing_of(enum export_transport transport)
{
	switch (transport) {
	case EXPORT_TRANSPORT_UDP:
		return FRAMING_DATAGRAM;
	case EXPORT_TRANSPORT_LOCAL:
		return FRAMING_LOCAL;
	case EXPORT_TRANSPORT_TCP:
		return FRAMING_OCTET_COUNTING;
	case EXPORT_TRANSPORT_FILE:
	case EXPORT_TRANSPORT_STDOUT:
	default:
		return FRAMING_LINES;
	}
}

/* The host's name as RFC 5424 wants it: printable US-ASCII, at most 255
 * characters, NILVALUE when there is none. */
static char *local_hostname(void)
{
	g_autofree char *name = g_strndup(g_get_host_name(), SYSLOG_HOSTNAME_MAX);

	for (char *c = name; *c; c++)
		if (*c < 33 || *c > 126)
			*c = '_';
	return *name ? g_steal_pointer(&name) : g_strdup("-");
}

static void *syslog_create(const struct export_config *cfg, encoder *enc, GError **error)
{
	struct syslog_state *st = g_new0(struct syslog_state, 1);
	g_autofree char *host = cfg->syslog_hostname ? g_strdup(cfg->syslog_hostname)
						     : local_hostname();
	const char *app = cfg->syslog_app_name ? cfg->syslog_app_name : "ctflowd";

	st->enc = enc;
	st->cfg = cfg;
	st->framing = framing_of(cfg->transport);
	st->limit = cfg->mtu ? cfg->mtu : 65000u;
	st->pri = cfg->syslog_facility * 8u + cfg->syslog_severity;
	/* PROCID: the process that sends, as a receiver sees it (section 6.2.6) */
	st->header_tail = g_strdup_printf(" %s %s %ld ", host, app, (long)getpid());
	st->local_tag = g_strdup_printf(" %s[%ld]: ", app, (long)getpid());
	st->one = g_string_sized_new(1024);
	st->batch = g_string_sized_new(st->limit + 1024);
	st->record = g_string_sized_new(1024);
	return st;
}

const struct encoder_ops encoder_syslog_ops = {
	.create = syslog_create,
	.start_session = syslog_start_session,
	.add = syslog_add,
	.flush = syslog_flush,
	.refresh_templates = syslog_refresh_templates,
	.report_statistics = NULL,
	.destroy = syslog_destroy,
	.add_nat_events = syslog_add_nat_events,
};
