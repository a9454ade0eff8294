/*
 * format.h - the contract between encoder.c and the formats (one file
 * each: encoder_ipfix.c, encoder_json.c, encoder_syslog.c).  Private to src/export: the rest
 * of the daemon sees only encoder.h.
 *
 * A format keeps its own state and writes messages into its own buffer.
 * encoder.c owns what every format shares: the emit callback, the count of
 * records waiting in the unfinished message and the message limit.
 */
#pragma once

#include "ctflowd/encoder.h"

/*
 * NAT session events (RFC 8158), as encoder.c derives them from a record:
 * a create or a delete, and when it was observed.
 */
enum nat_event_type {
	NAT_EVENT_CREATE = 4,    /* natEvent: NAT44 session create */
	NAT_EVENT_DELETE = 5,    /* natEvent: NAT44 session delete */
};

struct nat_event {
	enum nat_event_type type;
	gboolean late;           /* a create whose NEW event was lost, sent after the fact */
	gboolean refresh;        /* a create repeated for a session still alive */
	uint64_t time_ns;        /* observationTime */
};

/*
 * One format.  Every function but create gets the state create returned.
 * start_session drops any unfinished message and emits what a collector
 * needs first; add buffers one record (and may emit the full message before
 * it); flush emits the unfinished message.  report_statistics may be NULL
 * for a format that cannot say it.
 *
 * add_nat_events may be NULL for a format without NAT session events (an
 * export with records = nat-events or both is then refused).  It buffers
 * the @n events of one record (in order; a late create comes before the
 * delete), after the record's flow itself when @with_flow, all counted as
 * that one record and in one message (the message before them may go
 * out first).  When it writes nothing for the record (an event its format
 * cannot say, and no flow), it counts nothing, returns TRUE and sets
 * *@written FALSE: encoder.c counts the record as passed over.
 */
struct encoder_ops {
	void *(*create)(const struct export_config *cfg, encoder *enc, GError **error);
	gboolean (*start_session)(void *state, guint message_limit, GError **error);
	gboolean (*add)(void *state, const struct flow_record *record, GError **error);
	gboolean (*flush)(void *state, GError **error);
	gboolean (*refresh_templates)(void *state, GError **error);
	gboolean (*report_statistics)(void *state, const struct export_statistics *stats,
				  GError **error);
	void (*destroy)(void *state);
	gboolean (*add_nat_events)(void *state, const struct flow_record *record,
				   const struct nat_event *events, guint n, gboolean with_flow,
				   gboolean *written, GError **error);
};

extern const struct encoder_ops encoder_ipfix_ops;
extern const struct encoder_ops encoder_json_ops;
extern const struct encoder_ops encoder_netflow9_ops;
extern const struct encoder_ops encoder_netflow5_ops;
extern const struct encoder_ops encoder_syslog_ops;

/**
 * encoder_emit:
 * Hands a finished message of @len bytes holding @records flow records to
 * the emit callback and keeps the pending count right (records the export
 * passed over since the previous message count with it).  FALSE with
 * @error when the callback could not deliver it.
 */
gboolean encoder_emit(encoder *enc, const uint8_t *msg, size_t len, guint records,
		      GError **error);

/** encoder_note_added: one more record is buffered in the unfinished message. */
void encoder_note_added(encoder *enc);

/**
 * encoder_note_skipped:
 * A record the format cannot carry was left out (NetFlow v5: IPv6); it
 * still counts in the message it would have been in, or in a message of 0
 * bytes of its own, so that its position counts as done.
 */
void encoder_note_skipped(encoder *enc);
