/*
 * encoder.h - flow records -> messages of one export format (IPFIX, JSON
 * lines; NetFlow v9/v5 and syslog fit the same contract).
 *
 * An encoder is owned by one export thread.  It fills a message and hands
 * every finished message to @emit with the number of records in it, in
 * order; the export thread passes it to a transport.  A message is never
 * split: for datagram transports one message is one datagram.
 */
#pragma once

#include <glib.h>
#include <stdint.h>
#include "ctflowd/config.h"
#include "ctflowd/flow.h"

typedef struct encoder encoder;

/**
 * encoder_emit_fn:
 * Called with a finished message of @len bytes holding @records flow records
 * (0 for a message of templates only).  A message of 0 bytes (@msg may be
 * NULL) sends nothing: it passes @records records that give this export
 * nothing (records the format leaves out, encoder_skipped(); with records =
 * nat-events, a flow without NAT, say), in their order, and they count as
 * done once what went before them is.  Returns FALSE with @error set when
 * the message could not be delivered; the encoder then returns that error.
 */
typedef gboolean (*encoder_emit_fn)(const uint8_t *msg, size_t len, guint records, void *user,
				    GError **error);

/**
 * encoder_new: an encoder for @cfg->format, messages at most @cfg->mtu bytes
 * (65000 for mtu = auto until encoder_set_message_limit() says otherwise).
 */
encoder *encoder_new(const struct export_config *cfg, encoder_emit_fn emit, void *user,
		     GError **error);

/**
 * encoder_set_message_limit:
 * Largest message (bytes, 512..65000) for the sessions started from now on;
 * a transport that learns its path MTU sets it before each session.
 */
void encoder_set_message_limit(encoder *enc, guint limit);

/**
 * encoder_start_session:
 * Begins a new transport session (a new connection, a new file): drops any
 * unfinished message, restarts sequence numbers, and emits what a collector
 * needs before records (IPFIX templates).
 */
gboolean encoder_start_session(encoder *enc, GError **error);

/**
 * encoder_add:
 * Adds one record as the export's `records` key says: a flow, the NAT
 * session events it gives (a NAT create record, FLOW_EVENT_NEW, a create;
 * the final record of a translated connection a delete, after a late
 * create when it is marked FLOW_LATE), both, or nothing.  May emit the
 * previous, full message.
 */
gboolean encoder_add(encoder *enc, const struct flow_record *record, GError **error);

/** encoder_flush: emits the unfinished message, if it holds any record. */
gboolean encoder_flush(encoder *enc, GError **error);

/**
 * encoder_refresh_templates:
 * Emits the templates again (IPFIX over UDP, RFC 7011 section 8.4); a no-op
 * for formats without templates.
 */
gboolean encoder_refresh_templates(encoder *enc, GError **error);

/*
 * What an export says about itself: RFC 7011 section 4.3 (exporting process
 * reliability) with the counts of section 4.1, all for this destination,
 * and the daemon's own counters, the same for every destination.  Every
 * count is a total since init_ms, when the worker process started.
 */
struct export_statistics {
	guint32 exporting_process_id;  /* the export's number, in file order from 1 */
	guint64 init_ms;           /* since when these count, ms since the epoch */
	guint64 messages;          /* exportedMessageTotalCount: messages sent before this one */
	guint64 records;           /* exportedFlowRecordTotalCount: flow records sent, resends included */
	guint64 octets;            /* exportedOctetTotalCount: bytes of those messages */
	guint64 not_sent;          /* notSentFlowTotalCount: dropped by the spool before sent */
	/* the daemon's own */
	guint64 destroy_events;    /* DESTROY events read from the kernel */
	guint64 duplicates;        /* DESTROYs dropped as repeats */
	guint64 overruns;          /* times the event socket overflowed (ENOBUFS) */
	guint64 malformed;         /* netlink messages rejected as malformed */
	guint64 spool_dropped;     /* records the spool bound dropped, over all destinations */
	/* failover (failover.h), the same for both exports of a pair */
	gboolean failover;         /* the export has a backup or is one: the counts below
				    * are sent (IPFIX: under the enterprise number) */
	guint64 takeovers;         /* times the backup took over */
	guint64 givebacks;         /* times the export took its records back */
	guint64 doubtful;          /* records sent again after a hand-off: at most this many doubles */
};

/**
 * encoder_report_statistics:
 * Sends @stats in a message of its own, after the records added before it.
 * IPFIX: an options record of template 258 (scope exportingProcessId and
 * observationDomainId; the daemon's counters only under a configured
 * enterprise_number, as enterprise-specific elements named by RFC 5610
 * type records sent with the templates; the failover counts only for an
 * export of a failover pair).  JSON: a line
 * {"exporter_stats":{...},"time":...} (with "takeovers", "givebacks" and
 * "doubtful" for an export of a failover pair), preceded by the line
 * {"not_sent_flow_total_count":N,...} whenever that total changed in this
 * session.
 */
gboolean encoder_report_statistics(encoder *enc, const struct export_statistics *stats,
				   GError **error);

/**
 * encoder_skipped:
 * (any thread) Records left out because the format cannot carry them
 * (NetFlow v5: IPv6 connections), since the encoder was made.
 */
guint64 encoder_skipped(const encoder *enc);

/** encoder_pending: records added but not yet emitted. */
guint encoder_pending(const encoder *enc);

/** encoder_free: frees @enc (NULL is fine). */
void encoder_free(encoder *enc);
