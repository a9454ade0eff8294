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
 *
 * A translated connection (NAT) goes out with a template of its own that
 * adds the post-NAT addresses and ports: records of connections without
 * NAT keep their size and layout, and carry no elements that would only
 * repeat the original tuple.
 *
 * NAT session events (records = nat-events or both) go out with the
 * NAT44 session template of RFC 8158 (section 4.1.1): natEvent 4 or 5,
 * observationTimeMilliseconds, the inside and outside addresses and ports.
 * RFC 8158 has no natEvent for NAT66 sessions: those are left out (logged
 * once, counted).  Under an enterprise_number, a flags element of ctflowd's
 * own says which creates are late or refreshes.
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
/* marks = yes: every record carries the conntrack mark and labels.  An export
 * is either biflow or uniflow for its whole life, so the two kinds share
 * these ids. */
#define TID_FLOW4_MARKS 260
#define TID_FLOW6_MARKS 261
#define TID_FLOW4_NAT_MARKS 262
#define TID_FLOW6_NAT_MARKS 263
#define TID_UNI4_MARKS TID_FLOW4_MARKS
#define TID_UNI6_MARKS TID_FLOW6_MARKS
#define TID_UNI4_NAT_MARKS TID_FLOW4_NAT_MARKS
#define TID_UNI6_NAT_MARKS TID_FLOW6_NAT_MARKS
#define TID_FLOW4_NAT 264
#define TID_FLOW6_NAT 265
#define TID_UNI4 266        /* uniflow = yes: one record per direction */
#define TID_UNI6 267
#define TID_UNI4_NAT 268
#define TID_UNI6_NAT 269
#define TID_NAT_EVENT4 270  /* RFC 8158 NAT44 session create/delete events */

/* Internal record layouts: fixbuf copies them field by field in template
 * order, so the structs must match the specs below exactly.  The two
 * families differ only in the addresses between a common head and tail. */
struct ipfix_counts {
	uint64_t octetDeltaCount;   /* the export's counters key picks which go out */
	uint64_t packetDeltaCount;
	uint64_t octetTotalCount;
	uint64_t packetTotalCount;
};

struct ipfix_flow_head {
	uint64_t flowStartMilliseconds;
	uint64_t flowEndMilliseconds;
	struct ipfix_counts forward;
	struct ipfix_counts reverse;   /* the same, as RFC 5103 reverse elements */
	uint64_t flowId;
};

struct ipfix_flow_tail {
	uint32_t observationDomainId;
	uint16_t sourceTransportPort;
	uint16_t destinationTransportPort;
	uint16_t icmpTypeCode;   /* icmpTypeCodeIPv4 or icmpTypeCodeIPv6 */
	uint8_t protocolIdentifier;
	uint8_t flowEndReason;
	uint32_t ingressVRFID;   /* the conntrack zone, or its VRF (zone_vrf) */
};

struct ipfix_flow4 {
	struct ipfix_flow_head head;
	uint32_t sourceIPv4Address;
	uint32_t destinationIPv4Address;
	struct ipfix_flow_tail tail;
};
_Static_assert(offsetof(struct ipfix_flow4, tail.ingressVRFID) == 108, "ipfix_flow4 layout");
_Static_assert(sizeof(struct ipfix_flow4) == 112, "ipfix_flow4 size");

struct ipfix_flow6 {
	struct ipfix_flow_head head;
	uint8_t sourceIPv6Address[16];
	uint8_t destinationIPv6Address[16];
	struct ipfix_flow_tail tail;
};
_Static_assert(offsetof(struct ipfix_flow6, tail.ingressVRFID) == 132, "ipfix_flow6 layout");
_Static_assert(sizeof(struct ipfix_flow6) == 136, "ipfix_flow6 size");

/* What a NAT template adds after the flow (RFC 8158 / IANA 225-228,
 * 281/282): the original direction after translation, from the reply
 * tuple (flow_post_nat). */
struct ipfix_nat4 {
	uint32_t postNATSourceIPv4Address;
	uint32_t postNATDestinationIPv4Address;
	uint16_t postNAPTSourceTransportPort;
	uint16_t postNAPTDestinationTransportPort;
	uint8_t paddingOctets[4];
};

struct ipfix_flow4_nat {
	struct ipfix_flow4 flow;
	struct ipfix_nat4 nat;
};
_Static_assert(offsetof(struct ipfix_flow4_nat, nat.paddingOctets) == 124,
	       "ipfix_flow4_nat layout");
_Static_assert(sizeof(struct ipfix_flow4_nat) == 128, "ipfix_flow4_nat size");

struct ipfix_nat6 {
	uint8_t postNATSourceIPv6Address[16];
	uint8_t postNATDestinationIPv6Address[16];
	uint16_t postNAPTSourceTransportPort;
	uint16_t postNAPTDestinationTransportPort;
	uint8_t paddingOctets[4];
};

struct ipfix_flow6_nat {
	struct ipfix_flow6 flow;
	struct ipfix_nat6 nat;
};
_Static_assert(offsetof(struct ipfix_flow6_nat, nat.paddingOctets) == 172,
	       "ipfix_flow6_nat layout");
_Static_assert(sizeof(struct ipfix_flow6_nat) == 176, "ipfix_flow6_nat size");

/* Uniflow records: one direction's counters, no reverse elements, and
 * which direction it is. */
struct ipfix_uni_head {
	uint64_t flowStartMilliseconds;
	uint64_t flowEndMilliseconds;
	struct ipfix_counts counts;
	uint64_t flowId;
};

struct ipfix_uni_dir {
	uint8_t biflowDirection;  /* 1: the initiator sent it, 2: the responder */
	uint8_t paddingOctets[7];
};

struct ipfix_uni4 {
	struct ipfix_uni_head head;
	uint32_t sourceIPv4Address;
	uint32_t destinationIPv4Address;
	struct ipfix_flow_tail tail;
	struct ipfix_uni_dir dir;
};
_Static_assert(offsetof(struct ipfix_uni4, dir.paddingOctets) == 81, "ipfix_uni4 layout");
_Static_assert(sizeof(struct ipfix_uni4) == 88, "ipfix_uni4 size");

struct ipfix_uni6 {
	struct ipfix_uni_head head;
	uint8_t sourceIPv6Address[16];
	uint8_t destinationIPv6Address[16];
	struct ipfix_flow_tail tail;
	struct ipfix_uni_dir dir;
};
_Static_assert(offsetof(struct ipfix_uni6, dir.paddingOctets) == 105, "ipfix_uni6 layout");
_Static_assert(sizeof(struct ipfix_uni6) == 112, "ipfix_uni6 size");

struct ipfix_uni4_nat {
	struct ipfix_uni4 flow;
	struct ipfix_nat4 nat;
};
_Static_assert(sizeof(struct ipfix_uni4_nat) == 104, "ipfix_uni4_nat size");

struct ipfix_uni6_nat {
	struct ipfix_uni6 flow;
	struct ipfix_nat6 nat;
};
_Static_assert(sizeof(struct ipfix_uni6_nat) == 152, "ipfix_uni6_nat size");

/* What marks = yes appends to any of the records above: the conntrack mark
 * and labels, as ctflowd's own elements under the configured PEN. */
struct ipfix_marks {
	uint32_t ctMark;
	uint8_t ctLabels[16];    /* label N: byte N / 8, bit N % 8 (flow.h) */
	uint8_t paddingOctets[4];
};
_Static_assert(sizeof(struct ipfix_marks) == 24, "ipfix_marks size");

/* A NAT44 session event (RFC 8158, 4.1.1), with ctflowd's own marks. */
struct ipfix_nat_event4 {
	uint64_t observationTimeMilliseconds;
	uint32_t ingressVRFID;
	uint32_t sourceIPv4Address;
	uint32_t postNATSourceIPv4Address;
	uint32_t destinationIPv4Address;
	uint32_t postNATDestinationIPv4Address;
	uint16_t sourceTransportPort;
	uint16_t postNAPTSourceTransportPort;
	uint16_t destinationTransportPort;
	uint16_t postNAPTDestinationTransportPort;
	uint8_t natEvent;
	uint8_t protocolIdentifier;
	uint8_t ctflowdNatEventFlags;   /* NAT_MARK_*; sent only under a PEN */
	uint8_t paddingOctets[1];
};
_Static_assert(offsetof(struct ipfix_nat_event4, ctflowdNatEventFlags) == 38,
	       "ipfix_nat_event4 layout");
_Static_assert(sizeof(struct ipfix_nat_event4) == 40, "ipfix_nat_event4 size");

/* ctflowdNatEventFlags bits */
#define NAT_MARK_LATE 0x01      /* a create sent late: its NEW event was lost */
#define NAT_MARK_REFRESH 0x02   /* a create repeated for a session still alive */

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
	uint64_t own[8];   /* in the order of own_elements[]; the failover ones last */
};
_Static_assert(offsetof(struct ipfix_export_stats, own) == 56, "ipfix_export_stats layout");
_Static_assert(sizeof(struct ipfix_export_stats) == 120, "ipfix_export_stats size");

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
#define IE_TYPE_OCTET_ARRAY 0
#define IE_TYPE_UNSIGNED8 1
#define IE_TYPE_UNSIGNED32 3
#define IE_TYPE_UNSIGNED64 4
#define IE_SEMANTICS_DEFAULT 0
#define IE_SEMANTICS_TOTAL_COUNTER 2
#define IE_SEMANTICS_FLAGS 5
#define IE_UNITS_NONE 0
#define IE_UNITS_FLOWS 4
#define IE_UNITS_MESSAGES 10

/*
 * ctflowd's own elements, numbered from 100 under the configured PEN so
 * that the numbers below stay free for flow fields.  The statistics come
 * first, in the order of ipfix_export_stats.own[] (those with ids from
 * FIRST_FAILOVER_ID to LAST_FAILOVER_ID only an export of a failover pair
 * sends); the flow fields of marks = yes follow.  Every one is announced
 * with an RFC 5610 type record.
 */
#define FIRST_FAILOVER_ID 107
#define LAST_FAILOVER_ID 109
static const struct own_element {
	const char *name;
	uint16_t id;
	uint16_t length;
	uint8_t data_type;
	uint8_t semantics;
	uint16_t units;
	const char *description;
} own_elements[] = {
	{ "ctflowdDestroyEventTotalCount", 100, 8, IE_TYPE_UNSIGNED64, IE_SEMANTICS_TOTAL_COUNTER,
	  IE_UNITS_FLOWS, "conntrack DESTROY events read from the kernel that pass the filter" },
	{ "ctflowdDuplicateTotalCount", 101, 8, IE_TYPE_UNSIGNED64, IE_SEMANTICS_TOTAL_COUNTER,
	  IE_UNITS_FLOWS, "DESTROY events dropped as repeats of one already taken" },
	{ "ctflowdOverrunTotalCount", 102, 8, IE_TYPE_UNSIGNED64, IE_SEMANTICS_TOTAL_COUNTER,
	  IE_UNITS_NONE, "times the conntrack event socket overflowed (ENOBUFS)" },
	{ "ctflowdMalformedTotalCount", 103, 8, IE_TYPE_UNSIGNED64, IE_SEMANTICS_TOTAL_COUNTER,
	  IE_UNITS_MESSAGES, "netlink messages rejected as malformed" },
	{ "ctflowdSpoolDroppedTotalCount", 104, 8, IE_TYPE_UNSIGNED64, IE_SEMANTICS_TOTAL_COUNTER,
	  IE_UNITS_FLOWS,
	  "flow records the journal's size bound dropped before every destination sent them" },
	{ "ctflowdFailoverTakeoverTotalCount", 107, 8, IE_TYPE_UNSIGNED64, IE_SEMANTICS_TOTAL_COUNTER,
	  IE_UNITS_NONE, "times the backup of the export took over its records" },
	{ "ctflowdFailoverGivebackTotalCount", 108, 8, IE_TYPE_UNSIGNED64, IE_SEMANTICS_TOTAL_COUNTER,
	  IE_UNITS_NONE, "times the export took its records back from its backup" },
	{ "ctflowdFailoverDoubtfulTotalCount", 109, 8, IE_TYPE_UNSIGNED64, IE_SEMANTICS_TOTAL_COUNTER,
	  IE_UNITS_FLOWS, "flow records sent again after a hand-off without a confirmation of the"
	  " first sending: at most this many doubles" },
	/* a mark is often used as bits under a mask (nft's ct mark and), so
	 * its semantics are flags */
	{ "ctMark", 105, 4, IE_TYPE_UNSIGNED32, IE_SEMANTICS_FLAGS, IE_UNITS_NONE,
	  "the conntrack mark of the connection (nft ct mark, iptables CONNMARK)" },
	{ "ctLabels", 106, 16, IE_TYPE_OCTET_ARRAY, IE_SEMANTICS_DEFAULT, IE_UNITS_NONE,
	  "the conntrack labels of the connection, 128 bits: label N is bit N % 8 of octet N / 8" },
	/* the marks of NAT session events */
	{ "ctflowdNatEventFlags", 110, 1, IE_TYPE_UNSIGNED8, IE_SEMANTICS_FLAGS, IE_UNITS_NONE,
	  "marks of a NAT session create event: 1 late (the connection's NEW event was lost;"
	  " the time is the connection's start), 2 refresh (the session is still alive)" },
};
#define OWN_STATISTICS 8
G_STATIC_ASSERT(OWN_STATISTICS == G_N_ELEMENTS(((struct ipfix_export_stats *)NULL)->own));
G_STATIC_ASSERT(OWN_STATISTICS <= G_N_ELEMENTS(own_elements));

/* Flag 1 marks fields only the internal template has. */
#define INTERNAL_ONLY 1
/* Flags 4 and 8 mark the delta and the total counters: the internal
 * template has both, the external one those the counters key picks. */
#define COUNT_DELTA 4
#define COUNT_TOTAL 8
/* fixbuf 2 takes element names as char * */
#define IE(name, len, flags) { (char *)(name), (len), (flags) }

/* The templates are built from these pieces, in the order of the structs
 * above (add_flow_templates). */
static fbInfoElementSpec_t times_counts_spec[] = {
	IE("flowStartMilliseconds", 8, 0),
	IE("flowEndMilliseconds", 8, 0),
	IE("octetDeltaCount", 8, COUNT_DELTA),
	IE("packetDeltaCount", 8, COUNT_DELTA),
	IE("octetTotalCount", 8, COUNT_TOTAL),
	IE("packetTotalCount", 8, COUNT_TOTAL),
	FB_IESPEC_NULL
};

static fbInfoElementSpec_t reverse_counts_spec[] = {
	IE("reverseOctetDeltaCount", 8, COUNT_DELTA),
	IE("reversePacketDeltaCount", 8, COUNT_DELTA),
	IE("reverseOctetTotalCount", 8, COUNT_TOTAL),
	IE("reversePacketTotalCount", 8, COUNT_TOTAL),
	FB_IESPEC_NULL
};

static fbInfoElementSpec_t flow_id_spec[] = {
	IE("flowId", 8, 0),
	FB_IESPEC_NULL
};

static fbInfoElementSpec_t addr4_spec[] = {
	IE("sourceIPv4Address", 4, 0),
	IE("destinationIPv4Address", 4, 0),
	FB_IESPEC_NULL
};

static fbInfoElementSpec_t addr6_spec[] = {
	IE("sourceIPv6Address", 16, 0),
	IE("destinationIPv6Address", 16, 0),
	FB_IESPEC_NULL
};

/* struct ipfix_flow_tail, with the family's ICMP element */
#define TAIL_SPEC(icmp_element)                          \
	{                                                \
		IE("observationDomainId", 4, 0),         \
		IE("sourceTransportPort", 2, 0),         \
		IE("destinationTransportPort", 2, 0),    \
		IE(icmp_element, 2, 0),                  \
		IE("protocolIdentifier", 1, 0),          \
		IE("flowEndReason", 1, 0),               \
		IE("ingressVRFID", 4, 0),                \
		FB_IESPEC_NULL                           \
	}
static fbInfoElementSpec_t tail4_spec[] = TAIL_SPEC("icmpTypeCodeIPv4");
static fbInfoElementSpec_t tail6_spec[] = TAIL_SPEC("icmpTypeCodeIPv6");

static fbInfoElementSpec_t uni_dir_spec[] = {
	IE("biflowDirection", 1, 0),
	IE("paddingOctets", 7, INTERNAL_ONLY),
	FB_IESPEC_NULL
};

static fbInfoElementSpec_t nat4_spec[] = {
	IE("postNATSourceIPv4Address", 4, 0),
	IE("postNATDestinationIPv4Address", 4, 0),
	FB_IESPEC_NULL
};

static fbInfoElementSpec_t nat6_spec[] = {
	IE("postNATSourceIPv6Address", 16, 0),
	IE("postNATDestinationIPv6Address", 16, 0),
	FB_IESPEC_NULL
};

/* after either family's post-NAT addresses */
static fbInfoElementSpec_t napt_spec[] = {
	IE("postNAPTSourceTransportPort", 2, 0),
	IE("postNAPTDestinationTransportPort", 2, 0),
	IE("paddingOctets", 4, INTERNAL_ONLY),
	FB_IESPEC_NULL
};

static fbInfoElementSpec_t marks_spec[] = {
	IE("ctMark", 4, 0),
	IE("ctLabels", 16, 0),
	IE("paddingOctets", 4, INTERNAL_ONLY),
	FB_IESPEC_NULL
};

/* Flag 2 marks ctflowd's own elements: in the templates only with a PEN. */
#define OWN_ELEMENT 2
/* ... and of those, the ones only an export of a failover pair sends */
#define FAILOVER_ELEMENT 4
/* Flag 16 marks what takes their place without one (padding). */
#define NO_PEN 16

static fbInfoElementSpec_t nat_event4_spec[] = {
	IE("observationTimeMilliseconds", 8, 0),
	IE("ingressVRFID", 4, 0),
	IE("sourceIPv4Address", 4, 0),
	IE("postNATSourceIPv4Address", 4, 0),
	IE("destinationIPv4Address", 4, 0),
	IE("postNATDestinationIPv4Address", 4, 0),
	IE("sourceTransportPort", 2, 0),
	IE("postNAPTSourceTransportPort", 2, 0),
	IE("destinationTransportPort", 2, 0),
	IE("postNAPTDestinationTransportPort", 2, 0),
	IE("natEvent", 1, 0),
	IE("protocolIdentifier", 1, 0),
	IE("ctflowdNatEventFlags", 1, OWN_ELEMENT),
	IE("paddingOctets", 1, INTERNAL_ONLY | OWN_ELEMENT),
	IE("paddingOctets", 2, INTERNAL_ONLY | NO_PEN),
	FB_IESPEC_NULL
};

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
	IE("ctflowdFailoverTakeoverTotalCount", 8, OWN_ELEMENT | FAILOVER_ELEMENT),
	IE("ctflowdFailoverGivebackTotalCount", 8, OWN_ELEMENT | FAILOVER_ELEMENT),
	IE("ctflowdFailoverDoubtfulTotalCount", 8, OWN_ELEMENT | FAILOVER_ELEMENT),
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
	GArray *zone_vrf;        /* struct zone_vrf, sorted by zone */
	gboolean uniflow;        /* a record per direction (uniflow = yes) */
	enum export_counters counters;
	gboolean failover;       /* one of a failover pair: its statistics count hand-offs */
	gboolean marks;          /* records carry the conntrack mark and labels */
	guint64 nat66_skipped;   /* records of NAT66 sessions whose events were left out */
	char *name;              /* the export's, for the log */
	gboolean nat_events;     /* records = nat-events or both: the event template */
};

static gboolean export_type_info(struct ipfix_state *st, GError **error);

/* One template of @specs in a row (a NULL-terminated list), as the internal
 * (with @flags) or external one; NULL with @error. */
static fbTemplate_t *build_template(fbInfoModel_t *model, fbInfoElementSpec_t *const *specs,
				    uint32_t flags, uint16_t scope, GError **error)
{
	fbTemplate_t *t = fbTemplateAlloc(model);
	for (; *specs; specs++) {
		if (!fbTemplateAppendSpecArray(t, *specs, flags, error)) {
			fbTemplateFreeUnused(t);
			return NULL;
		}
	}
	if (scope)
		fbTemplateSetOptionsScope(t, scope);
	return t;
}

/* The internal template takes the spec entries whose flags are all in
 * @internal_flags, the external one those whose flags are all in
 * @external_flags (which never has INTERNAL_ONLY). */
static gboolean add_template_pair(fbSession_t *session, fbInfoModel_t *model, uint16_t tid,
				  fbInfoElementSpec_t *const *specs, uint16_t scope,
				  uint32_t internal_flags, uint32_t external_flags, GError **error)
{
	fbTemplate_t *internal = build_template(model, specs, internal_flags, scope, error);
	if (!internal)
		return FALSE;
	if (!fbSessionAddTemplate(session, TRUE, tid, internal, error)) {
		fbTemplateFreeUnused(internal);
		return FALSE;
	}
	fbTemplate_t *external = build_template(model, specs,
						external_flags & ~(uint32_t)INTERNAL_ONLY, scope,
						error);
	if (!external)
		return FALSE;
	if (!fbSessionAddTemplate(session, FALSE, tid, external, error)) {
		fbTemplateFreeUnused(external);
		return FALSE;
	}
	return TRUE;
}

static gboolean add_templates(fbSession_t *session, fbInfoModel_t *model, uint16_t tid,
			      fbInfoElementSpec_t *spec, uint16_t scope, GError **error)
{
	fbInfoElementSpec_t *const specs[] = {spec, NULL};

	return add_template_pair(session, model, tid, specs, scope, UINT32_MAX, UINT32_MAX, error);
}

/* The statistics template, with ctflowd's own elements and the template of
 * their type records only under a PEN. */
static gboolean add_stats_templates(const struct ipfix_state *st, fbSession_t *session,
				    GError **error)
{
	uint32_t flags = !st->pen ? ~(uint32_t)OWN_ELEMENT
			 : st->failover ? UINT32_MAX : ~(uint32_t)FAILOVER_ELEMENT;
	fbInfoElementSpec_t *const specs[] = {export_stats_spec, NULL};

	return add_template_pair(session, st->model, TID_EXPORT_STATS, specs,
				 EXPORT_STATS_SCOPE, flags, flags, error) &&
	       (!st->pen || add_templates(session, st->model, TID_TYPE_INFO, type_info_spec,
					  TYPE_INFO_SCOPE, error));
}

/* The NAT44 session event template: its marks only under a PEN. */
static gboolean add_nat_event_templates(const struct ipfix_state *st, fbSession_t *session,
					GError **error)
{
	uint32_t flags = st->pen ? ~(uint32_t)NO_PEN : ~(uint32_t)OWN_ELEMENT;
	fbInfoElementSpec_t *const specs[] = {nat_event4_spec, NULL};

	return add_template_pair(session, st->model, TID_NAT_EVENT4, specs, 0, flags, flags,
				 error);
}

/* The counters of the external templates (the counters key). */
static uint32_t counter_flags(enum export_counters counters)
{
	switch (counters) {
	case EXPORT_COUNTERS_TOTAL:
		return ~(uint32_t)COUNT_DELTA;
	case EXPORT_COUNTERS_BOTH:
		return UINT32_MAX;
	case EXPORT_COUNTERS_DELTA:
	default:
		return ~(uint32_t)COUNT_TOTAL;
	}
}

/* The flow templates: per family, one without and one with NAT, as
 * biflows or (@uniflow) as uniflows, with or without (@marks) the mark and
 * labels: an export sends only those it uses. */
static gboolean add_flow_templates(fbSession_t *session, fbInfoModel_t *model, gboolean uniflow,
				   enum export_counters counters, gboolean marks, GError **error)
{
#define BI4 times_counts_spec, reverse_counts_spec, flow_id_spec, addr4_spec, tail4_spec
#define BI6 times_counts_spec, reverse_counts_spec, flow_id_spec, addr6_spec, tail6_spec
#define UNI4 times_counts_spec, flow_id_spec, addr4_spec, tail4_spec, uni_dir_spec
#define UNI6 times_counts_spec, flow_id_spec, addr6_spec, tail6_spec, uni_dir_spec
	static fbInfoElementSpec_t *const flow4[] = {BI4, NULL};
	static fbInfoElementSpec_t *const flow6[] = {BI6, NULL};
	static fbInfoElementSpec_t *const flow4_nat[] = {BI4, nat4_spec, napt_spec, NULL};
	static fbInfoElementSpec_t *const flow6_nat[] = {BI6, nat6_spec, napt_spec, NULL};
	static fbInfoElementSpec_t *const uni4[] = {UNI4, NULL};
	static fbInfoElementSpec_t *const uni6[] = {UNI6, NULL};
	static fbInfoElementSpec_t *const uni4_nat[] = {UNI4, nat4_spec, napt_spec, NULL};
	static fbInfoElementSpec_t *const uni6_nat[] = {UNI6, nat6_spec, napt_spec, NULL};
	static fbInfoElementSpec_t *const flow4_m[] = {BI4, marks_spec, NULL};
	static fbInfoElementSpec_t *const flow6_m[] = {BI6, marks_spec, NULL};
	static fbInfoElementSpec_t *const flow4_nat_m[] = {BI4, nat4_spec, napt_spec, marks_spec, NULL};
	static fbInfoElementSpec_t *const flow6_nat_m[] = {BI6, nat6_spec, napt_spec, marks_spec, NULL};
	static fbInfoElementSpec_t *const uni4_m[] = {UNI4, marks_spec, NULL};
	static fbInfoElementSpec_t *const uni6_m[] = {UNI6, marks_spec, NULL};
	static fbInfoElementSpec_t *const uni4_nat_m[] = {UNI4, nat4_spec, napt_spec, marks_spec, NULL};
	static fbInfoElementSpec_t *const uni6_nat_m[] = {UNI6, nat6_spec, napt_spec, marks_spec, NULL};
#undef BI4
#undef BI6
#undef UNI4
#undef UNI6
	static const struct {
		uint16_t tid;
		fbInfoElementSpec_t *const *specs;
		gboolean uniflow, marks;
	} all[] = {
		{TID_FLOW4, flow4, FALSE, FALSE}, {TID_FLOW6, flow6, FALSE, FALSE},
		{TID_FLOW4_NAT, flow4_nat, FALSE, FALSE}, {TID_FLOW6_NAT, flow6_nat, FALSE, FALSE},
		{TID_UNI4, uni4, TRUE, FALSE}, {TID_UNI6, uni6, TRUE, FALSE},
		{TID_UNI4_NAT, uni4_nat, TRUE, FALSE}, {TID_UNI6_NAT, uni6_nat, TRUE, FALSE},
		{TID_FLOW4_MARKS, flow4_m, FALSE, TRUE}, {TID_FLOW6_MARKS, flow6_m, FALSE, TRUE},
		{TID_FLOW4_NAT_MARKS, flow4_nat_m, FALSE, TRUE},
		{TID_FLOW6_NAT_MARKS, flow6_nat_m, FALSE, TRUE},
		{TID_UNI4_MARKS, uni4_m, TRUE, TRUE}, {TID_UNI6_MARKS, uni6_m, TRUE, TRUE},
		{TID_UNI4_NAT_MARKS, uni4_nat_m, TRUE, TRUE},
		{TID_UNI6_NAT_MARKS, uni6_nat_m, TRUE, TRUE},
	};

	for (size_t i = 0; i < G_N_ELEMENTS(all); i++)
		if (all[i].uniflow == uniflow && all[i].marks == marks &&
		    !add_template_pair(session, model, all[i].tid, all[i].specs, 0, UINT32_MAX,
				       counter_flags(counters), error))
			return FALSE;
	return TRUE;
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
	if (!add_flow_templates(session, st->model, st->uniflow, st->counters, st->marks, error) ||
	    !add_stats_templates(st, session, error) ||
	    (st->nat_events && !add_nat_event_templates(st, session, error))) {
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
		if (e->id >= FIRST_FAILOVER_ID && e->id <= LAST_FAILOVER_ID && !st->failover)
			continue;
		struct ipfix_type_info rec = {
			.privateEnterpriseNumber = st->pen,
			.informationElementId = e->id,
			.informationElementDataType = e->data_type,
			.informationElementSemantics = e->semantics,
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

/*
 * One direction of a connection as its record shows it: the original one
 * (what a biflow's forward elements show) or the reply one (uniflow only).
 */
struct side {
	const struct flow_tuple *t;  /* addresses and ports as the packets had them */
	const struct flow_tuple *back; /* the other direction's: turned around, the
					* translated values (NAT templates) */
	uint64_t packets, bytes;     /* since the connection's previous record */
	uint64_t total_packets, total_bytes;   /* since it began */
	uint16_t icmp_type_code;
	uint8_t direction;           /* biflowDirection: 1 initiator, 2 responder */
};

static struct side side_of(const struct flow_record *r, bool reply)
{
	struct side d;
	struct flow_counts delta = flow_delta_counts(r);

	if (!reply) {
		d.t = &r->orig;
		d.back = &r->reply;
		d.packets = delta.packets;
		d.bytes = delta.bytes;
		d.total_packets = r->packets;
		d.total_bytes = r->bytes;
		d.icmp_type_code = (uint16_t)(r->icmp_type << 8 | r->icmp_code);
		d.direction = 1;
		return d;
	}
	/* replies are translated back to the original tuple turned around */
	d.t = &r->reply;
	d.back = &r->orig;
	d.packets = delta.reply_packets;
	d.bytes = delta.reply_bytes;
	d.total_packets = r->reply_packets;
	d.total_bytes = r->reply_bytes;
	d.icmp_type_code = (uint16_t)(r->reply_icmp_type << 8 | r->reply_icmp_code);
	d.direction = 2;
	return d;
}

static void fill_counts(struct ipfix_counts *c, const struct side *d)
{
	c->octetDeltaCount = d->bytes;
	c->packetDeltaCount = d->packets;
	c->octetTotalCount = d->total_bytes;
	c->packetTotalCount = d->total_packets;
}

/* Delta counters cover the period since the connection's previous record,
 * so that is where the record starts; total counters cover the whole
 * connection, and with them (both included) it starts where it began. */
static uint64_t start_ms(const struct ipfix_state *st, const struct flow_record *r)
{
	return (st->counters == EXPORT_COUNTERS_DELTA ? flow_period_start_ns(r) : r->start_ns) /
	       1000000;
}

static void fill_head(struct ipfix_flow_head *h, const struct flow_record *r,
		      const struct ipfix_state *st)
{
	struct side fwd = side_of(r, false), rev = side_of(r, true);

	h->flowStartMilliseconds = start_ms(st, r);
	h->flowEndMilliseconds = r->end_ns / 1000000;
	fill_counts(&h->forward, &fwd);
	fill_counts(&h->reverse, &rev);
	h->flowId = r->flow_id;
}

static void fill_uni_head(struct ipfix_uni_head *h, const struct flow_record *r,
			  const struct side *d, const struct ipfix_state *st)
{
	h->flowStartMilliseconds = start_ms(st, r);
	h->flowEndMilliseconds = r->end_ns / 1000000;
	fill_counts(&h->counts, d);
	h->flowId = r->flow_id;
}

/* ICMP has no ports; NetFlow collectors show type/code in the destination
 * port, so both places carry it. */
static void fill_tail(struct ipfix_flow_tail *t, const struct flow_record *r,
		      const struct side *d, const struct ipfix_state *st, uint8_t icmp_proto)
{
	t->observationDomainId = st->domain;
	t->ingressVRFID = st->zone_vrf->len ?
		zone_vrf_lookup((const struct zone_vrf *)(const void *)st->zone_vrf->data,
				st->zone_vrf->len, r->zone) : r->zone;
	t->icmpTypeCode = r->proto == icmp_proto ? d->icmp_type_code : 0;
	t->protocolIdentifier = r->proto;
	t->flowEndReason = r->end_reason;
	t->sourceTransportPort = flow_is_icmp(r) ? 0 : d->t->sport;
	t->destinationTransportPort = flow_is_icmp(r) ? d->icmp_type_code : d->t->dport;
}

static uint32_t v4_host(const uint8_t addr[16])
{
	uint32_t a;

	memcpy(&a, addr, 4);
	return ntohl(a);
}

/* ICMP has no ports to translate (the echo id stands in the tuple's port
 * place): its post-NAPT ports are 0, as its original ones are. */
static void fill_nat4(struct ipfix_nat4 *n, const struct flow_record *r, const struct side *d)
{
	n->postNATSourceIPv4Address = v4_host(d->back->dst);
	n->postNATDestinationIPv4Address = v4_host(d->back->src);
	n->postNAPTSourceTransportPort = flow_is_icmp(r) ? 0 : d->back->dport;
	n->postNAPTDestinationTransportPort = flow_is_icmp(r) ? 0 : d->back->sport;
	memset(n->paddingOctets, 0, sizeof(n->paddingOctets));
}

static void fill_nat6(struct ipfix_nat6 *n, const struct flow_record *r, const struct side *d)
{
	memcpy(n->postNATSourceIPv6Address, d->back->dst, 16);
	memcpy(n->postNATDestinationIPv6Address, d->back->src, 16);
	n->postNAPTSourceTransportPort = flow_is_icmp(r) ? 0 : d->back->dport;
	n->postNAPTDestinationTransportPort = flow_is_icmp(r) ? 0 : d->back->sport;
	memset(n->paddingOctets, 0, sizeof(n->paddingOctets));
}

/* A record on the stack, of the largest layout and the marks after it;
 * which one a template uses is chosen by encode(). */
union ipfix_any {
	struct ipfix_flow4_nat flow4;
	struct ipfix_flow6_nat flow6;
	struct ipfix_uni4_nat uni4;
	struct ipfix_uni6_nat uni6;
	uint8_t bytes[sizeof(struct ipfix_flow6_nat) + sizeof(struct ipfix_marks)];
};

/* The marks template of a record's template. */
static uint16_t marks_template(uint16_t tid)
{
	switch (tid) {
	case TID_FLOW4: return TID_FLOW4_MARKS;
	case TID_FLOW6: return TID_FLOW6_MARKS;
	case TID_FLOW4_NAT: return TID_FLOW4_NAT_MARKS;
	case TID_FLOW6_NAT: return TID_FLOW6_NAT_MARKS;
	case TID_UNI4: return TID_UNI4_MARKS;
	case TID_UNI6: return TID_UNI6_MARKS;
	case TID_UNI4_NAT: return TID_UNI4_NAT_MARKS;
	default: return TID_UNI6_NAT_MARKS;
	}
}

/* With marks = yes, the mark and labels go after the record @tid of @len
 * bytes: returns the template of the whole and makes @len its size. */
static uint16_t append_marks(const struct flow_record *r, uint16_t tid, union ipfix_any *rec,
			     size_t *len)
{
	struct ipfix_marks m = { .ctMark = r->mark };

	memcpy(m.ctLabels, r->labels, sizeof(m.ctLabels));
	memcpy(rec->bytes + *len, &m, sizeof(m));
	*len += sizeof(m);
	return marks_template(tid);
}

/* Fills @rec with side @d of @r (every field of the layout it picks: no
 * clearing of the whole union per record); returns its template and sets
 * @len. */
static uint16_t encode_flow(const struct ipfix_state *st, const struct flow_record *r,
		       const struct side *d, bool nat, union ipfix_any *rec, size_t *len)
{
	const bool v4 = r->family == AF_INET;

	if (!st->uniflow && v4) {
		struct ipfix_flow4 *f = &rec->flow4.flow;
		fill_head(&f->head, r, st);
		f->sourceIPv4Address = v4_host(r->orig.src);
		f->destinationIPv4Address = v4_host(r->orig.dst);
		fill_tail(&f->tail, r, d, st, 1);
		if (nat)
			fill_nat4(&rec->flow4.nat, r, d);
		*len = nat ? sizeof(rec->flow4) : sizeof(*f);
		return nat ? TID_FLOW4_NAT : TID_FLOW4;
	}
	if (!st->uniflow) {
		struct ipfix_flow6 *f = &rec->flow6.flow;
		fill_head(&f->head, r, st);
		memcpy(f->sourceIPv6Address, r->orig.src, 16);
		memcpy(f->destinationIPv6Address, r->orig.dst, 16);
		fill_tail(&f->tail, r, d, st, 58);
		if (nat)
			fill_nat6(&rec->flow6.nat, r, d);
		*len = nat ? sizeof(rec->flow6) : sizeof(*f);
		return nat ? TID_FLOW6_NAT : TID_FLOW6;
	}
	if (v4) {
		struct ipfix_uni4 *f = &rec->uni4.flow;
		fill_uni_head(&f->head, r, d, st);
		f->sourceIPv4Address = v4_host(d->t->src);
		f->destinationIPv4Address = v4_host(d->t->dst);
		fill_tail(&f->tail, r, d, st, 1);
		f->dir.biflowDirection = d->direction;
		memset(f->dir.paddingOctets, 0, sizeof(f->dir.paddingOctets));
		if (nat)
			fill_nat4(&rec->uni4.nat, r, d);
		*len = nat ? sizeof(rec->uni4) : sizeof(*f);
		return nat ? TID_UNI4_NAT : TID_UNI4;
	}
	struct ipfix_uni6 *f = &rec->uni6.flow;
	fill_uni_head(&f->head, r, d, st);
	memcpy(f->sourceIPv6Address, d->t->src, 16);
	memcpy(f->destinationIPv6Address, d->t->dst, 16);
	fill_tail(&f->tail, r, d, st, 58);
	f->dir.biflowDirection = d->direction;
	memset(f->dir.paddingOctets, 0, sizeof(f->dir.paddingOctets));
	if (nat)
		fill_nat6(&rec->uni6.nat, r, d);
	*len = nat ? sizeof(rec->uni6) : sizeof(*f);
	return nat ? TID_UNI6_NAT : TID_UNI6;
}

static uint16_t encode(const struct ipfix_state *st, const struct flow_record *r,
		       const struct side *d, bool nat, union ipfix_any *rec, size_t *len)
{
	uint16_t tid = encode_flow(st, r, d, nat, rec, len);

	return st->marks ? append_marks(r, tid, rec, len) : tid;
}

static gboolean ipfix_flush(void *state, GError **error);

/*
 * A connection is one record, or with uniflow one per direction that had
 * packets (the original one always, so that every connection shows).  The
 * transport counts connections per message to know what was delivered, so
 * both records of a connection go in the same message: when the message
 * has no room for two, it goes out first.
 */
static gboolean append_flow(struct ipfix_state *st, const struct flow_record *r, gboolean count,
			    GError **error)
{
	union ipfix_any rec;
	size_t len;
	const bool nat = flow_is_translated(r);
	struct side orig = side_of(r, false);
	uint16_t tid = encode(st, r, &orig, nat, &rec, &len);

	if (st->uniflow && r->reply_packets) {
		/* two records and a set header, whatever the set holds now */
		if (st->has_content && fBufRemaining(st->fbuf) < 2 * len + 4 && !ipfix_flush(st, error))
			return FALSE;
		if (!append_in_message(st, tid, &rec, len, error))
			return FALSE;
		struct side reply = side_of(r, true);
		tid = encode(st, r, &reply, nat, &rec, &len);
	}
	return count ? append_record(st, tid, &rec, len, error)
		     : append_in_message(st, tid, &rec, len, error);
}

static gboolean ipfix_add(void *state, const struct flow_record *r, GError **error)
{
	return append_flow(state, r, TRUE, error);
}

static void fill_nat_event4(const struct ipfix_state *st, struct ipfix_nat_event4 *e,
			    const struct flow_record *r, const struct nat_event *ev)
{
	/* ICMP: the query id stands where the ports are, and NAT may change it */
	const gboolean icmp = flow_is_icmp(r);

	e->observationTimeMilliseconds = ev->time_ns / 1000000;
	e->ingressVRFID = st->zone_vrf->len ?
		zone_vrf_lookup((const struct zone_vrf *)(const void *)st->zone_vrf->data,
				st->zone_vrf->len, r->zone) : r->zone;
	e->sourceIPv4Address = v4_host(r->orig.src);
	e->postNATSourceIPv4Address = v4_host(r->reply.dst);
	e->destinationIPv4Address = v4_host(r->orig.dst);
	e->postNATDestinationIPv4Address = v4_host(r->reply.src);
	e->sourceTransportPort = r->orig.sport;
	e->postNAPTSourceTransportPort = icmp ? r->reply.sport : r->reply.dport;
	e->destinationTransportPort = icmp ? 0 : r->orig.dport;
	e->postNAPTDestinationTransportPort = icmp ? 0 : r->reply.sport;
	e->natEvent = (uint8_t)ev->type;
	e->protocolIdentifier = r->proto;
	e->ctflowdNatEventFlags = (uint8_t)((ev->late ? NAT_MARK_LATE : 0) |
					    (ev->refresh ? NAT_MARK_REFRESH : 0));
	e->paddingOctets[0] = 0;
}

/*
 * The events of one record (and its flow first, records = both), in one
 * message: the record is delivered with its last byte, so a message cut
 * between them would send the first part again after a reconnect.
 */
static gboolean ipfix_add_nat_events(void *state, const struct flow_record *r,
				     const struct nat_event *events, guint n, gboolean with_flow,
				     gboolean *written, GError **error)
{
	struct ipfix_state *st = state;

	*written = TRUE;
	if (r->family != AF_INET) {
		if (!st->nat66_skipped++)
			g_message("export %s: IPFIX has no NAT66 session events (RFC 8158 defines"
				  " NAT44 and NAT64 ones): IPv6 sessions are left out of NAT event"
				  " logging (counted, the total logged at stop)", st->name);
		if (with_flow)
			return ipfix_add(st, r, error);
		*written = FALSE;
		return TRUE;
	}
	/* room for the flow (two with uniflow), the events and a set header each */
	size_t need = n * (sizeof(struct ipfix_nat_event4) + 4) +
		      (with_flow ? 2 * sizeof(union ipfix_any) + 8 : 0);
	if (st->has_content && fBufRemaining(st->fbuf) < need && !ipfix_flush(st, error))
		return FALSE;
	if (with_flow && !append_flow(st, r, FALSE, error))
		return FALSE;
	for (guint i = 0; i < n; i++) {
		struct ipfix_nat_event4 rec;
		fill_nat_event4(st, &rec, r, &events[i]);
		if (!(i + 1 < n ? append_in_message(st, TID_NAT_EVENT4, &rec, sizeof(rec), error)
				: append_record(st, TID_NAT_EVENT4, &rec, sizeof(rec), error)))
			return FALSE;
	}
	return TRUE;
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
	gboolean ok = add_stats_templates(st, session, error) &&
		      add_nat_event_templates(st, session, error);

	fbSessionFree(session);
	/* per counters key; biflow and uniflow marks templates share their
	 * ids: a session each */
	for (int c = EXPORT_COUNTERS_DELTA; ok && c <= EXPORT_COUNTERS_BOTH; c++) {
		session = fbSessionAlloc(st->model);
		ok = add_flow_templates(session, st->model, FALSE, c, FALSE, error) &&
		     add_flow_templates(session, st->model, TRUE, c, FALSE, error);
		fbSessionFree(session);
		for (int uniflow = 0; ok && st->marks && uniflow < 2; uniflow++) {
			session = fbSessionAlloc(st->model);
			ok = add_flow_templates(session, st->model, uniflow, c, TRUE, error);
			fbSessionFree(session);
		}
	}
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
			 stats->malformed, stats->spool_dropped, stats->takeovers,
			 stats->givebacks, stats->doubtful },
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

	if (st->nat66_skipped)
		g_message("export %s: %" G_GUINT64_FORMAT " records of NAT66 sessions had their"
			  " NAT events left out", st->name, st->nat66_skipped);
	g_free(st->name);
	free_session(st);
	if (st->model)
		fbInfoModelFree(st->model);
	g_free(st->msgbuf);
	if (st->zone_vrf)
		g_array_unref(st->zone_vrf);
	g_free(st);
}

static void add_own_elements(fbInfoModel_t *model, uint32_t pen)
{
	for (size_t i = 0; i < G_N_ELEMENTS(own_elements); i++) {
		const struct own_element *e = &own_elements[i];
		gboolean integer = e->data_type != IE_TYPE_OCTET_ARRAY;
		/* fixbuf's flags: byte order, then RFC 5610 semantics and units */
		fbInfoElement_t ie = FB_IE_INIT_FULL(e->name, pen, e->id, e->length,
						     (integer ? FB_IE_F_ENDIAN : 0) |
						     ((uint32_t)e->semantics << 8) |
						     ((uint32_t)e->units << 16),
						     0, 0, e->data_type, (char *)e->description);
		fbInfoModelAddElement(model, &ie);
	}
}

static void *ipfix_create(const struct export_config *cfg, encoder *enc, GError **error)
{
	struct ipfix_state *st = g_new0(struct ipfix_state, 1);

	st->enc = enc;
	st->name = g_strdup(cfg->name);
	st->domain = cfg->observation_domain;
	st->pen = cfg->enterprise_number;
	st->uniflow = cfg->uniflow;
	st->counters = cfg->counters;
	st->failover = cfg->failover || cfg->standby;
	st->marks = cfg->marks && cfg->enterprise_number;
	st->nat_events = cfg->records != EXPORT_RECORDS_FLOWS;
	st->capacity = 65000;
	st->msgbuf = g_malloc(st->capacity);
	st->model = fbInfoModelAlloc();
	if (st->pen)
		add_own_elements(st->model, st->pen);
	st->zone_vrf = zone_vrf_parse(cfg->zone_vrf, error);
	if (!st->zone_vrf || !check_templates(st, error)) {
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
	.add_nat_events = ipfix_add_nat_events,
};
