/*
 * encoder_ipfix.c - flow records as IPFIX biflows (RFC 7011, RFC 5103).
 *
 * libfixbuf encodes; ctflowd moves the bytes.  fixbuf runs in manual mode on
 * a memory exporter: fBufAppend() reports a full message instead of sending
 * it, and every finished message is handed over whole.  That keeps sockets,
 * reconnects and delivery confirmation in ctflowd's transports, where fixbuf's
 * own network exporters would block the caller and reconnect without
 * templates (libfixbuf 2.4: after a TCP error the next emit reconnects
 * silently, with the failed message still queued and no templates).
 *
 * One session per transport session: a new TCP connection or file starts
 * with templates and sequence number 0 (RFC 7011 section 3.1 counts data
 * records per session and observation domain).
 */
#include <arpa/inet.h>
#include <fixbuf/public.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>

#include "format.h"

#define TID_FLOW4 256
#define TID_FLOW6 257
#define TID_EXPORT_STATS 258   /* options: exporting process statistics (RFC 7011, 4.3) */
#define TID_TYPE_INFO 259      /* options: RFC 5610 type of ctflowd's own elements */

/* Internal record layouts: fixbuf copies them field by field in template
 * order, so the structs must match the specs below exactly.  The two
 * families differ only in the addresses between a common head and tail. */
struct ipfix_flow_head {
	uint64_t flowStartMilliseconds;
	uint64_t flowEndMilliseconds;
	uint64_t octetTotalCount;
	uint64_t packetTotalCount;
	uint64_t reverseOctetTotalCount;
	uint64_t reversePacketTotalCount;
	uint64_t flowId;
};

struct ipfix_flow_tail {
	uint32_t observationDomainId;
	uint16_t sourceTransportPort;
	uint16_t destinationTransportPort;
	uint16_t icmpTypeCode;   /* icmpTypeCodeIPv4 or icmpTypeCodeIPv6 */
	uint8_t protocolIdentifier;
	uint8_t flowEndReason;
	uint8_t paddingOctets[4];
};

struct ipfix_flow4 {
	struct ipfix_flow_head head;
	uint32_t sourceIPv4Address;
	uint32_t destinationIPv4Address;
	struct ipfix_flow_tail tail;
};
_Static_assert(offsetof(struct ipfix_flow4, tail.paddingOctets) == 76, "ipfix_flow4 layout");
_Static_assert(sizeof(struct ipfix_flow4) == 80, "ipfix_flow4 size");

struct ipfix_flow6 {
	struct ipfix_flow_head head;
	uint8_t sourceIPv6Address[16];
	uint8_t destinationIPv6Address[16];
	struct ipfix_flow_tail tail;
};
_Static_assert(offsetof(struct ipfix_flow6, tail.paddingOctets) == 100, "ipfix_flow6 layout");
_Static_assert(sizeof(struct ipfix_flow6) == 104, "ipfix_flow6 size");

/*
 * RFC 7011 section 4.3, the exporting process reliability statistics,
 * with the counts section 4.1 gives a metering process: this destination
 * is one exporting process.  notSentPacketTotalCount and
 * notSentOctetTotalCount are left out: the journal drops whole segments
 * without reading them, so the packets and bytes of the lost flows are not
 * known.  The same goes for the times of the first and last loss;
 * observationTimeMilliseconds is the time of the report, and
 * systemInitTimeMilliseconds when the counting began.  The daemon's own
 * counters follow, enterprise-specific, only when a PEN is configured.
 */
struct ipfix_export_stats {
	uint32_t exportingProcessId;
	uint32_t observationDomainId;
	uint64_t observationTimeMilliseconds;
	uint64_t systemInitTimeMilliseconds;
	uint64_t exportedMessageTotalCount;
	uint64_t exportedFlowRecordTotalCount;
	uint64_t exportedOctetTotalCount;
	uint64_t notSentFlowTotalCount;
	uint64_t own[5];   /* in the order of own_elements[] */
};
_Static_assert(offsetof(struct ipfix_export_stats, own) == 56, "ipfix_export_stats layout");
_Static_assert(sizeof(struct ipfix_export_stats) == 96, "ipfix_export_stats size");

/* An RFC 5610 information element type record. */
struct ipfix_type_info {
	uint32_t privateEnterpriseNumber;
	uint16_t informationElementId;
	uint8_t informationElementDataType;
	uint8_t informationElementSemantics;
	uint16_t informationElementUnits;
	uint8_t paddingOctets[6];
	uint64_t informationElementRangeBegin;
	uint64_t informationElementRangeEnd;
	fbVarfield_t informationElementName;
	fbVarfield_t informationElementDescription;
};
_Static_assert(offsetof(struct ipfix_type_info, informationElementName) == 32,
	       "ipfix_type_info layout");

/* RFC 5610 codes (IANA's IPFIX registries) for what own_elements[] need. */
#define IE_TYPE_UNSIGNED64 4
#define IE_SEMANTICS_TOTAL_COUNTER 2
#define IE_UNITS_NONE 0
#define IE_UNITS_FLOWS 4
#define IE_UNITS_MESSAGES 10

/*
 * ctflowd's own elements, numbered from 100 under the configured PEN so
 * that the numbers below stay free for flow fields.  The order is that of
 * ipfix_export_stats.own[].
 */
static const struct own_element {
	const char *name;
	uint16_t id;
	uint16_t units;
	const char *description;
} own_elements[] = {
	{ "ctflowdDestroyEventTotalCount", 100, IE_UNITS_FLOWS,
	  "conntrack DESTROY events read from the kernel" },
	{ "ctflowdDuplicateTotalCount", 101, IE_UNITS_FLOWS,
	  "DESTROY events dropped as repeats of one already taken" },
	{ "ctflowdOverrunTotalCount", 102, IE_UNITS_NONE,
	  "times the conntrack event socket overflowed (ENOBUFS)" },
	{ "ctflowdMalformedTotalCount", 103, IE_UNITS_MESSAGES,
	  "netlink messages rejected as malformed" },
	{ "ctflowdSpoolDroppedTotalCount", 104, IE_UNITS_FLOWS,
	  "flow records the journal's size bound dropped before every destination sent them" },
};
G_STATIC_ASSERT(G_N_ELEMENTS(own_elements) ==
		G_N_ELEMENTS(((struct ipfix_export_stats *)NULL)->own));

/* Flag 1 marks fields only the internal template has. */
#define INTERNAL_ONLY 1
/* fixbuf 2 takes element names as char * */
#define IE(name, len, flags) { (char *)(name), (len), (flags) }

static fbInfoElementSpec_t flow4_spec[] = {
	IE("flowStartMilliseconds", 8, 0),
	IE("flowEndMilliseconds", 8, 0),
	IE("octetTotalCount", 8, 0),
	IE("packetTotalCount", 8, 0),
	IE("reverseOctetTotalCount", 8, 0),
	IE("reversePacketTotalCount", 8, 0),
	IE("flowId", 8, 0),
	IE("sourceIPv4Address", 4, 0),
	IE("destinationIPv4Address", 4, 0),
	IE("observationDomainId", 4, 0),
	IE("sourceTransportPort", 2, 0),
	IE("destinationTransportPort", 2, 0),
	IE("icmpTypeCodeIPv4", 2, 0),
	IE("protocolIdentifier", 1, 0),
	IE("flowEndReason", 1, 0),
	IE("paddingOctets", 4, INTERNAL_ONLY),
	FB_IESPEC_NULL
};

static fbInfoElementSpec_t flow6_spec[] = {
	IE("flowStartMilliseconds", 8, 0),
	IE("flowEndMilliseconds", 8, 0),
	IE("octetTotalCount", 8, 0),
	IE("packetTotalCount", 8, 0),
	IE("reverseOctetTotalCount", 8, 0),
	IE("reversePacketTotalCount", 8, 0),
	IE("flowId", 8, 0),
	IE("sourceIPv6Address", 16, 0),
	IE("destinationIPv6Address", 16, 0),
	IE("observationDomainId", 4, 0),
	IE("sourceTransportPort", 2, 0),
	IE("destinationTransportPort", 2, 0),
	IE("icmpTypeCodeIPv6", 2, 0),
	IE("protocolIdentifier", 1, 0),
	IE("flowEndReason", 1, 0),
	IE("paddingOctets", 4, INTERNAL_ONLY),
	FB_IESPEC_NULL
};

/* Flag 2 marks ctflowd's own elements: in the templates only with a PEN. */
#define OWN_ELEMENT 2

static fbInfoElementSpec_t export_stats_spec[] = {
	IE("exportingProcessId", 4, 0),
	IE("observationDomainId", 4, 0),
	IE("observationTimeMilliseconds", 8, 0),
	IE("systemInitTimeMilliseconds", 8, 0),
	IE("exportedMessageTotalCount", 8, 0),
	IE("exportedFlowRecordTotalCount", 8, 0),
	IE("exportedOctetTotalCount", 8, 0),
	IE("notSentFlowTotalCount", 8, 0),
	IE("ctflowdDestroyEventTotalCount", 8, OWN_ELEMENT),
	IE("ctflowdDuplicateTotalCount", 8, OWN_ELEMENT),
	IE("ctflowdOverrunTotalCount", 8, OWN_ELEMENT),
	IE("ctflowdMalformedTotalCount", 8, OWN_ELEMENT),
	IE("ctflowdSpoolDroppedTotalCount", 8, OWN_ELEMENT),
	FB_IESPEC_NULL
};
#define EXPORT_STATS_SCOPE 2

static fbInfoElementSpec_t type_info_spec[] = {
	IE("privateEnterpriseNumber", 4, 0),
	IE("informationElementId", 2, 0),
	IE("informationElementDataType", 1, 0),
	IE("informationElementSemantics", 1, 0),
	IE("informationElementUnits", 2, 0),
	IE("paddingOctets", 6, INTERNAL_ONLY),
	/* fixbuf's collectors take a type record only with every field of
	 * the RFC 5610 type template, the range too (0 and 0: none) */
	IE("informationElementRangeBegin", 8, 0),
	IE("informationElementRangeEnd", 8, 0),
	IE("informationElementName", FB_IE_VARLEN, 0),
	IE("informationElementDescription", FB_IE_VARLEN, 0),
	FB_IESPEC_NULL
};
#define TYPE_INFO_SCOPE 2

struct ipfix_state {
	encoder *enc;
	guint32 domain;
	guint32 pen;             /* enterprise_number: 0, no own elements */
	fbInfoModel_t *model;
	fBuf_t *fbuf;            /* owns session and exporter */
	fbExporter_t *exporter;
	uint16_t current_tid;    /* template the buffer is set to, 0 = none */
	guint in_message;        /* data records in the unfinished message */
	gboolean has_content;    /* the unfinished message holds templates or records */
	uint8_t *msgbuf;
	guint capacity;          /* bytes of msgbuf */
};

static gboolean export_type_info(struct ipfix_state *st, GError **error);

/* The internal template takes the spec entries whose flags are all in
 * @internal_flags, the external one those without INTERNAL_ONLY as well. */
static gboolean add_template_pair(fbSession_t *session, fbInfoModel_t *model, uint16_t tid,
				  fbInfoElementSpec_t *spec, uint16_t scope,
				  uint32_t internal_flags, GError **error)
{
	fbTemplate_t *internal = fbTemplateAlloc(model);
	if (!fbTemplateAppendSpecArray(internal, spec, internal_flags, error)) {
		fbTemplateFreeUnused(internal);
		return FALSE;
	}
	if (scope)
		fbTemplateSetOptionsScope(internal, scope);
	if (!fbSessionAddTemplate(session, TRUE, tid, internal, error)) {
		fbTemplateFreeUnused(internal);
		return FALSE;
	}
	fbTemplate_t *external = fbTemplateAlloc(model);
	if (!fbTemplateAppendSpecArray(external, spec, internal_flags & ~(uint32_t)INTERNAL_ONLY,
				       error)) {
		fbTemplateFreeUnused(external);
		return FALSE;
	}
	if (scope)
		fbTemplateSetOptionsScope(external, scope);
	if (!fbSessionAddTemplate(session, FALSE, tid, external, error)) {
		fbTemplateFreeUnused(external);
		return FALSE;
	}
	return TRUE;
}

static gboolean add_templates(fbSession_t *session, fbInfoModel_t *model, uint16_t tid,
			      fbInfoElementSpec_t *spec, uint16_t scope, GError **error)
{
	return add_template_pair(session, model, tid, spec, scope, UINT32_MAX, error);
}

/* The statistics template, with ctflowd's own elements and the template of
 * their type records only under a PEN. */
static gboolean add_stats_templates(const struct ipfix_state *st, fbSession_t *session,
				    GError **error)
{
	uint32_t flags = st->pen ? UINT32_MAX : ~(uint32_t)OWN_ELEMENT;

	return add_template_pair(session, st->model, TID_EXPORT_STATS, export_stats_spec,
				 EXPORT_STATS_SCOPE, flags, error) &&
	       (!st->pen || add_templates(session, st->model, TID_TYPE_INFO, type_info_spec,
					  TYPE_INFO_SCOPE, error));
}

static gboolean emit_message(struct ipfix_state *st, GError **error)
{
	if (!fBufEmit(st->fbuf, error))
		return FALSE;
	guint records = st->in_message;
	st->in_message = 0;
	st->has_content = FALSE;
	return encoder_emit(st->enc, st->msgbuf, fbExporterGetMsgLen(st->exporter), records,
			    error);
}

/*
 * In manual mode fixbuf refuses the first template of a message with
 * FB_ERROR_EOM ("start a new message for template export") and notes that
 * templates come next; the second attempt then goes through.  @tid 0
 * exports all templates, another only that one.
 */
static gboolean export_template_set(struct ipfix_state *st, uint16_t tid, GError **error)
{
	fbSession_t *session = fBufGetSession(st->fbuf);

	for (int attempt = 0;; attempt++) {
		GError *local = NULL;
		if (tid ? fbSessionExportTemplate(session, tid, &local)
			: fbSessionExportTemplates(session, &local)) {
			st->has_content = TRUE;
			st->current_tid = 0;
			return TRUE;
		}
		if (attempt > 0 || !g_error_matches(local, FB_ERROR_DOMAIN, FB_ERROR_EOM)) {
			g_propagate_error(error, local);
			return FALSE;
		}
		g_clear_error(&local);
		if (st->has_content && !emit_message(st, error))
			return FALSE;
	}
}

static gboolean export_templates(struct ipfix_state *st, GError **error)
{
	/* A collector names an element from its type record only when that
	 * came before the template using it (ipfixDump reads the template as
	 * alien otherwise): the type records go first, with their own template. */
	if (st->pen && !(export_template_set(st, TID_TYPE_INFO, error) && export_type_info(st, error)))
		return FALSE;
	return export_template_set(st, 0, error);
}

static void free_session(struct ipfix_state *st)
{
	if (st->fbuf)
		fBufFree(st->fbuf);
	st->fbuf = NULL;
	st->exporter = NULL;
	st->current_tid = 0;
	st->in_message = 0;
	st->has_content = FALSE;
}

static gboolean ipfix_start_session(void *state, guint message_limit, GError **error)
{
	struct ipfix_state *st = state;

	free_session(st);
	fbSession_t *session = fbSessionAlloc(st->model);
	/* External templates belong to an observation domain: pick it first. */
	fbSessionSetDomain(session, st->domain);
	if (!add_templates(session, st->model, TID_FLOW4, flow4_spec, 0, error) ||
	    !add_templates(session, st->model, TID_FLOW6, flow6_spec, 0, error) ||
	    !add_stats_templates(st, session, error)) {
		fbSessionFree(session);
		return FALSE;
	}
	st->exporter = fbExporterAllocBuffer(st->msgbuf, (uint16_t)MIN(message_limit, st->capacity));
	st->fbuf = fBufAllocForExport(session, st->exporter);
	fBufSetAutomaticMode(st->fbuf, FALSE);
	if (!export_templates(st, error))
		return FALSE;
	/* Templates go out at once: a collector must know them before the
	 * first record, whenever that comes. */
	return emit_message(st, error);
}

static gboolean set_template(struct ipfix_state *st, uint16_t tid, GError **error)
{
	if (st->current_tid == tid)
		return TRUE;
	if (!fBufSetInternalTemplate(st->fbuf, tid, error) ||
	    !fBufSetExportTemplate(st->fbuf, tid, error))
		return FALSE;
	st->current_tid = tid;
	return TRUE;
}

static uint16_t icmp_type_code(const struct flow_record *r)
{
	return (uint16_t)(r->icmp_type << 8 | r->icmp_code);
}

/* ICMP has no ports; NetFlow collectors show type/code in the destination
 * port, so both places carry it. */
static void fill_ports(const struct flow_record *r, uint16_t *sport, uint16_t *dport)
{
	if (flow_is_icmp(r)) {
		*sport = 0;
		*dport = icmp_type_code(r);
	} else {
		*sport = r->orig.sport;
		*dport = r->orig.dport;
	}
}

/*
 * Appends one record of template @tid to the unfinished message.  fixbuf
 * answers FB_ERROR_EOM when the message is full, and also once for the first
 * data set of a fresh message; either way what the message holds goes out
 * and the record starts the next one, in a new set for its template.
 */
static gboolean append_in_message(struct ipfix_state *st, uint16_t tid, const void *rec,
				  size_t len, GError **error)
{
	GError *local = NULL;

	if (!set_template(st, tid, error))
		return FALSE;
	if (!fBufAppend(st->fbuf, (uint8_t *)rec, len, &local)) {
		if (!g_error_matches(local, FB_ERROR_DOMAIN, FB_ERROR_EOM)) {
			g_propagate_error(error, local);
			return FALSE;
		}
		g_clear_error(&local);
		if (st->has_content && !emit_message(st, error))
			return FALSE;
		st->current_tid = 0;
		if (!set_template(st, tid, error) ||
		    !fBufAppend(st->fbuf, (uint8_t *)rec, len, error))
			return FALSE;
	}
	st->has_content = TRUE;
	return TRUE;
}

static gboolean append_record(struct ipfix_state *st, uint16_t tid, const void *rec, size_t len,
			      GError **error)
{
	if (!append_in_message(st, tid, rec, len, error))
		return FALSE;
	st->in_message++;
	encoder_note_added(st->enc);
	return TRUE;
}

/*
 * RFC 5610 type records for ctflowd's own elements, after the templates:
 * a collector learns their names and types with them, and over UDP again
 * with every template refresh.
 */
static gboolean export_type_info(struct ipfix_state *st, GError **error)
{
	for (size_t i = 0; st->pen && i < G_N_ELEMENTS(own_elements); i++) {
		const struct own_element *e = &own_elements[i];
		struct ipfix_type_info rec = {
			.privateEnterpriseNumber = st->pen,
			.informationElementId = e->id,
			.informationElementDataType = IE_TYPE_UNSIGNED64,
			.informationElementSemantics = IE_SEMANTICS_TOTAL_COUNTER,
			.informationElementUnits = e->units,
			.informationElementName = { strlen(e->name), (uint8_t *)e->name },
			.informationElementDescription = { strlen(e->description),
							   (uint8_t *)e->description },
		};
		if (!append_in_message(st, TID_TYPE_INFO, &rec, sizeof(rec), error))
			return FALSE;
	}
	st->current_tid = 0;
	return TRUE;
}

static void fill_head(struct ipfix_flow_head *h, const struct flow_record *r)
{
	h->flowStartMilliseconds = r->start_ns / 1000000;
	h->flowEndMilliseconds = r->end_ns / 1000000;
	h->octetTotalCount = r->bytes;
	h->packetTotalCount = r->packets;
	h->reverseOctetTotalCount = r->reply_bytes;
	h->reversePacketTotalCount = r->reply_packets;
	h->flowId = r->flow_id;
}

static void fill_tail(struct ipfix_flow_tail *t, const struct flow_record *r, uint32_t domain,
		      uint8_t icmp_proto)
{
	t->observationDomainId = domain;
	t->icmpTypeCode = r->proto == icmp_proto ? icmp_type_code(r) : 0;
	t->protocolIdentifier = r->proto;
	t->flowEndReason = r->end_reason;
	fill_ports(r, &t->sourceTransportPort, &t->destinationTransportPort);
}

static gboolean ipfix_add(void *state, const struct flow_record *r, GError **error)
{
	struct ipfix_state *st = state;

	if (r->family == AF_INET) {
		struct ipfix_flow4 rec = {0};
		uint32_t a;
		fill_head(&rec.head, r);
		memcpy(&a, r->orig.src, 4);
		rec.sourceIPv4Address = ntohl(a);
		memcpy(&a, r->orig.dst, 4);
		rec.destinationIPv4Address = ntohl(a);
		fill_tail(&rec.tail, r, st->domain, 1);
		return append_record(st, TID_FLOW4, &rec, sizeof(rec), error);
	}

	struct ipfix_flow6 rec = {0};
	fill_head(&rec.head, r);
	memcpy(rec.sourceIPv6Address, r->orig.src, 16);
	memcpy(rec.destinationIPv6Address, r->orig.dst, 16);
	fill_tail(&rec.tail, r, st->domain, 58);
	return append_record(st, TID_FLOW6, &rec, sizeof(rec), error);
}

static gboolean ipfix_flush(void *state, GError **error)
{
	struct ipfix_state *st = state;

	if (!st->has_content)
		return TRUE;
	if (!emit_message(st, error))
		return FALSE;
	st->current_tid = 0;
	return TRUE;
}

static gboolean ipfix_refresh_templates(void *state, GError **error)
{
	struct ipfix_state *st = state;

	/* Templates and records may share a message; emit first so the
	 * template set is not split from its message by a full buffer. */
	if (st->has_content && !ipfix_flush(st, error))
		return FALSE;
	return export_templates(st, error) && emit_message(st, error);
}

/* Builds the templates once against the information model, so that an
 * element name fixbuf does not know fails at start-up, not at first export. */
static gboolean check_templates(struct ipfix_state *st, GError **error)
{
	fbSession_t *session = fbSessionAlloc(st->model);
	gboolean ok = add_templates(session, st->model, TID_FLOW4, flow4_spec, 0, error) &&
		      add_templates(session, st->model, TID_FLOW6, flow6_spec, 0, error) &&
		      add_stats_templates(st, session, error);
	fbSessionFree(session);
	return ok;
}

/* Sent in a message of its own: a collector reads it apart from flows. */
static gboolean ipfix_report_statistics(void *state, const struct export_statistics *stats,
					GError **error)
{
	struct ipfix_state *st = state;
	struct ipfix_export_stats rec = {
		.exportingProcessId = stats->exporting_process_id,
		.observationDomainId = st->domain,
		.observationTimeMilliseconds = (uint64_t)g_get_real_time() / 1000u,
		.systemInitTimeMilliseconds = stats->init_ms,
		.exportedMessageTotalCount = stats->messages,
		.exportedFlowRecordTotalCount = stats->records,
		.exportedOctetTotalCount = stats->octets,
		.notSentFlowTotalCount = stats->not_sent,
		.own = { stats->destroy_events, stats->duplicates, stats->overruns,
			 stats->malformed, stats->spool_dropped },
	};

	if (st->has_content && !ipfix_flush(st, error))
		return FALSE;
	st->current_tid = 0;
	if (!append_in_message(st, TID_EXPORT_STATS, &rec, sizeof(rec), error))
		return FALSE;
	if (!emit_message(st, error))
		return FALSE;
	st->current_tid = 0;
	return TRUE;
}

static void ipfix_destroy(void *state)
{
	struct ipfix_state *st = state;

	free_session(st);
	if (st->model)
		fbInfoModelFree(st->model);
	g_free(st->msgbuf);
	g_free(st);
}

static void add_own_elements(fbInfoModel_t *model, uint32_t pen)
{
	for (size_t i = 0; i < G_N_ELEMENTS(own_elements); i++) {
		const struct own_element *e = &own_elements[i];
		fbInfoElement_t ie = FB_IE_INIT_FULL(e->name, pen, e->id, 8,
						     FB_IE_F_ENDIAN | FB_IE_TOTALCOUNTER |
						     ((uint32_t)e->units << 16),
						     0, 0, FB_UINT_64, (char *)e->description);
		fbInfoModelAddElement(model, &ie);
	}
}

static void *ipfix_create(const struct export_config *cfg, encoder *enc, GError **error)
{
	struct ipfix_state *st = g_new0(struct ipfix_state, 1);

	st->enc = enc;
	st->domain = cfg->observation_domain;
	st->pen = cfg->enterprise_number;
	st->capacity = 65000;
	st->msgbuf = g_malloc(st->capacity);
	st->model = fbInfoModelAlloc();
	if (st->pen)
		add_own_elements(st->model, st->pen);
	if (!check_templates(st, error)) {
		ipfix_destroy(st);
		return NULL;
	}
	return st;
}

const struct encoder_ops encoder_ipfix_ops = {
	.create = ipfix_create,
	.start_session = ipfix_start_session,
	.add = ipfix_add,
	.flush = ipfix_flush,
	.refresh_templates = ipfix_refresh_templates,
	.report_statistics = ipfix_report_statistics,
	.destroy = ipfix_destroy,
};
