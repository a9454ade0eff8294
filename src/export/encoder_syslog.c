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
/* the longest header but for header_tail or local_tag: PRI and VERSION,
 * and the TIMESTAMP or the local form's time (format_local_second()) */
#define HEADER_FIXED_MAX 80
#define MSGID_MAX 8

/* A literal and its length, for the names of params. */
#define N(literal) literal, sizeof(literal) - 1

struct name {
	const char *text;
	size_t len;
};

/* A param written: its name, and where its value lies in the message, for
 * the key=value text. */
struct param {
	const char *name;
	guint8 name_len;
	guint8 value_len;
	guint16 value_at;
};

struct syslog_state {
	encoder *enc;
	const struct export_config *cfg;
	enum syslog_framing framing;
	guint limit;
	char *header_tail;       /* " HOSTNAME APP-NAME PROCID ", the MSGID after it */
	size_t header_tail_len;
	char *local_tag;         /* " APP[PID]: " */
	size_t local_tag_len;
	char pri[8];             /* "<PRI>" */
	size_t pri_len;
	size_t sd_id_len;
	/* the message being built, and its end */
	char *msg;
	char *at;
	GString *batch;          /* streams: framed messages not yet emitted */
	GString *record;         /* streams: the framed messages of the record being added */
	guint in_batch;
	gboolean oversize_told;  /* once per session */
	/* the date and time of the last second formatted, for the next */
	time_t cached_sec;
	char cached_text[64];   /* room for any int the fields of struct tm hold */
	struct param params[PARAMS_MAX];
	guint n_params;
};

/*
 * A message is written straight into st->msg, which has room for the
 * longest (every param at its longest, twice with the text), without
 * escaping: every value is a number, an address, a time or a word of
 * ctflowd's own, none of which holds '"', '\' or ']' (RFC 5424 section
 * 6.3.3), and the SD-ID was checked when the configuration was read.
 */
static size_t message_max(size_t header_tail_len)
{
	return HEADER_FIXED_MAX + header_tail_len + MSGID_MAX + SYSLOG_SD_NAME_MAX + 2 +
	       PARAMS_MAX * (2 * PARAM_NAME_MAX + 2 * PARAM_VALUE_MAX + 6);
}

/*
 * ` NAME="` at the message's end; returns where the value goes.  These are
 * inlined so that a name's length is a constant where it is written, and
 * its copy a few moves rather than a call: it halves the cost of a message.
 */
G_ALWAYS_INLINE static inline char *open_param(struct syslog_state *st, const char *name,
					       size_t name_len)
{
	g_assert(st->n_params < PARAMS_MAX && name_len <= PARAM_NAME_MAX);
	struct param *p = &st->params[st->n_params++];
	char *at = st->at;

	*at++ = ' ';
	memcpy(at, name, name_len);
	at += name_len;
	*at++ = '=';
	*at++ = '"';
	p->name = name;
	p->name_len = (guint8)name_len;
	p->value_at = (guint16)(at - st->msg);
	return at;
}

/* the value written up to @end: the closing quote */
G_ALWAYS_INLINE static inline void close_param(struct syslog_state *st, char *end)
{
	struct param *p = &st->params[st->n_params - 1];
	size_t len = (size_t)(end - (st->msg + p->value_at));

	g_assert(len <= PARAM_VALUE_MAX);
	p->value_len = (guint8)len;
	*end++ = '"';
	st->at = end;
}

G_ALWAYS_INLINE static inline void add_uint(struct syslog_state *st, const char *name,
					    size_t name_len, uint64_t v)
{
	close_param(st, text_decimal(open_param(st, name, name_len), v, 1));
}

/* @text: one of ctflowd's own words, nothing to escape */
G_ALWAYS_INLINE static inline void add_word(struct syslog_state *st, const char *name,
					    size_t name_len, const char *text)
{
	close_param(st, text_copy(open_param(st, name, name_len), text));
}

G_ALWAYS_INLINE static inline void add_addr(struct syslog_state *st, const char *name,
					    size_t name_len, int family, const uint8_t *addr)
{
	close_param(st, text_addr(open_param(st, name, name_len), family, addr));
}

G_ALWAYS_INLINE static inline void add_time(struct syslog_state *st, const char *name,
					    size_t name_len, uint64_t ns)
{
	close_param(st, text_rfc3339(open_param(st, name, name_len), ns, 9));
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

static void add_counts(struct syslog_state *st, const struct name names[4], struct flow_counts c)
{
	add_uint(st, names[0].text, names[0].len, c.packets);
	add_uint(st, names[1].text, names[1].len, c.bytes);
	add_uint(st, names[2].text, names[2].len, c.reply_packets);
	add_uint(st, names[3].text, names[3].len, c.reply_bytes);
}

/* The message time: when the record's period ended, or now when the
 * kernel sent no timestamps. */
static uint64_t message_time_ns(const struct flow_record *r)
{
	if (r->flags & FLOW_HAS_TIMESTAMPS)
		return r->end_ns;
	return (uint64_t)g_get_real_time() * 1000u;
}

/* A new message: its header (time @when, MSGID @msgid) and the opening of
 * the SD-ELEMENT, the params to follow. */
static void open_message(struct syslog_state *st, uint64_t when, const char *msgid)
{
	char *at = st->msg;

	memcpy(at, st->pri, st->pri_len);
	at += st->pri_len;
	if (st->framing == FRAMING_LOCAL) {
		at = text_copy(at, format_local_second(st, (time_t)(when / 1000000000u)));
		memcpy(at, st->local_tag, st->local_tag_len);
		at += st->local_tag_len;
	} else {
		*at++ = '1';
		*at++ = ' ';
		/* RFC 5424 section 6.2.3: at most six digits of fraction */
		at = text_rfc3339(at, when, 6);
		memcpy(at, st->header_tail, st->header_tail_len);
		at += st->header_tail_len;
		at = text_copy(at, msgid);
		*at++ = ' ';
	}
	*at++ = '[';
	memcpy(at, st->cfg->syslog_sd_id, st->sd_id_len);
	st->at = at + st->sd_id_len;
	st->n_params = 0;
}

/* The SD-ELEMENT closed, and the key=value text when configured. */
static void close_message(struct syslog_state *st)
{
	char *at = st->at;

	*at++ = ']';
	for (guint i = 0; st->cfg->syslog_text && i < st->n_params; i++) {
		const struct param *p = &st->params[i];
		*at++ = ' ';
		memcpy(at, p->name, p->name_len);
		at += p->name_len;
		*at++ = '=';
		memcpy(at, st->msg + p->value_at, p->value_len);
		at += p->value_len;
	}
	st->at = at;
}

static size_t message_len(const struct syslog_state *st)
{
	return (size_t)(st->at - st->msg);
}

/* The message of a record: the fields, in the order they are written. */
static void format_flow(struct syslog_state *st, const struct flow_record *r)
{
	static const struct name plain[4] = { { N("packets") }, { N("bytes") },
					      { N("replyPackets") }, { N("replyBytes") } };
	static const struct name total[4] = { { N("totalPackets") }, { N("totalBytes") },
					      { N("totalReplyPackets") }, { N("totalReplyBytes") } };
	gboolean ports = !flow_is_icmp(r);
	enum export_counters counters = st->cfg->counters;

	open_message(st, message_time_ns(r), SYSLOG_MSGID);
	add_uint(st, N("flowId"), r->flow_id);
	add_uint(st, N("proto"), r->proto);
	add_addr(st, N("src"), r->family, r->orig.src);
	add_addr(st, N("dst"), r->family, r->orig.dst);
	if (ports) {
		add_uint(st, N("sport"), r->orig.sport);
		add_uint(st, N("dport"), r->orig.dport);
	} else {
		add_uint(st, N("icmpType"), r->icmp_type);
		add_uint(st, N("icmpCode"), r->icmp_code);
		add_uint(st, N("icmpId"), r->orig.sport);
	}
	if (flow_is_translated(r)) {
		const struct flow_tuple post = flow_post_nat(r);
		add_addr(st, N("postNatSrc"), r->family, post.src);
		add_addr(st, N("postNatDst"), r->family, post.dst);
		if (ports) {
			add_uint(st, N("postNatSport"), post.sport);
			add_uint(st, N("postNatDport"), post.dport);
		} else {
			/* the echo id as the reply tuple carries it */
			add_uint(st, N("postNatIcmpId"), r->reply.sport);
		}
	}
	if (r->flags & FLOW_HAS_COUNTERS) {
		add_counts(st, plain, counters == EXPORT_COUNTERS_TOTAL ? flow_total_counts(r)
									: flow_delta_counts(r));
		if (counters == EXPORT_COUNTERS_BOTH)
			add_counts(st, total, flow_total_counts(r));
	}
	if (r->flags & FLOW_HAS_TIMESTAMPS) {
		add_time(st, N("start"), r->start_ns);
		add_time(st, N("end"), r->end_ns);
		/* what the deltas cover, when that is less than the connection */
		if (counters != EXPORT_COUNTERS_TOTAL && flow_period_start_ns(r) != r->start_ns)
			add_time(st, N("periodStart"), flow_period_start_ns(r));
	}
	add_word(st, N("endReason"), flow_end_reason_name(r->end_reason));
	add_uint(st, N("interim"), flow_is_interim(r));
	add_uint(st, N("zone"), r->zone);
	add_uint(st, N("mark"), r->mark);
	close_message(st);
}

/* The message of a NAT session event: who was behind the translation, as
 * what, and to where. */
static void format_event(struct syslog_state *st, const struct flow_record *r,
			 const struct nat_event *ev)
{
	const struct flow_tuple post = flow_post_nat(r);
	const char *type = ev->type == NAT_EVENT_CREATE ? "SADD" : "SDEL";

	open_message(st, ev->time_ns, type);
	add_word(st, N("event"), type);
	add_time(st, N("time"), ev->time_ns);
	add_uint(st, N("proto"), r->proto);
	add_addr(st, N("src"), r->family, r->orig.src);
	add_addr(st, N("postNatSrc"), r->family, post.src);
	if (flow_is_icmp(r)) {
		/* the query id is the session's "port", and NAT may change it */
		add_uint(st, N("icmpId"), r->orig.sport);
		add_uint(st, N("postNatIcmpId"), r->reply.sport);
		add_addr(st, N("dst"), r->family, r->orig.dst);
		add_addr(st, N("postNatDst"), r->family, post.dst);
	} else {
		add_uint(st, N("sport"), r->orig.sport);
		add_uint(st, N("postNatSport"), post.sport);
		add_addr(st, N("dst"), r->family, r->orig.dst);
		add_addr(st, N("postNatDst"), r->family, post.dst);
		add_uint(st, N("dport"), r->orig.dport);
		add_uint(st, N("postNatDport"), post.dport);
	}
	add_uint(st, N("zone"), r->zone);
	add_uint(st, N("late"), ev->late);
	add_uint(st, N("refresh"), ev->refresh);
	close_message(st);
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

/* The message as the stream frames it, onto @out: octet counting (RFC 6587
 * section 3.4.1) or a line. */
static void frame_onto(struct syslog_state *st, GString *out)
{
	size_t len = message_len(st);

	if (st->framing == FRAMING_OCTET_COUNTING) {
		char prefix[24], *end = text_decimal(prefix, len, 1);
		*end++ = ' ';
		g_string_append_len(out, prefix, end - prefix);
		g_string_append_len(out, st->msg, len);
	} else {
		g_string_append_len(out, st->msg, len);
		g_string_append_c(out, '\n');
	}
}

/* The bytes frame_onto() adds. */
static size_t framed_len(const struct syslog_state *st)
{
	size_t n = message_len(st) + 1;

	if (st->framing == FRAMING_OCTET_COUNTING)
		for (size_t v = message_len(st); v >= 10; v /= 10)
			n++;
	return n;
}

/*
 * Sends the message just formatted, one of the record being added; @last: the record's
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
		size_t len = message_len(st);
		if (len > st->limit && !st->oversize_told) {
			g_warning("export %s: a syslog message of %zu bytes is larger than the message"
				  " limit of %u bytes; it is sent whole in one datagram, which IP"
				  " fragments (said once per session)",
				  st->cfg->name, len, st->limit);
			st->oversize_told = TRUE;
		}
		return encoder_emit(st->enc, (const uint8_t *)st->msg, len, last ? 1 : 0, error);
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
		format_event(st, r, &events[i]);
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

	g_free(st->msg);
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
	st->pri_len = (size_t)g_snprintf(st->pri, sizeof(st->pri), "<%u>",
					 cfg->syslog_facility * 8u + cfg->syslog_severity);
	st->sd_id_len = strlen(cfg->syslog_sd_id);
	g_assert(st->sd_id_len <= SYSLOG_SD_NAME_MAX);
	/* PROCID: the process that sends, as a receiver sees it (section 6.2.6) */
	st->header_tail = g_strdup_printf(" %s %s %ld ", host, app, (long)getpid());
	st->header_tail_len = strlen(st->header_tail);
	st->local_tag = g_strdup_printf(" %s[%ld]: ", app, (long)getpid());
	st->local_tag_len = strlen(st->local_tag);
	st->msg = g_malloc(message_max(MAX(st->header_tail_len, st->local_tag_len)));
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
