/*
 * encoder.c - the format-independent part of an encoder: what a record
 * becomes at this export (a flow, NAT session events, both or nothing),
 * dispatch to the format, and the count of records waiting in the
 * unfinished message.
 *
 * A record that gives this export nothing (a NAT create at an export of
 * flows, an untranslated connection at one of NAT events) is still a
 * position of the journal that the export must pass: it counts with the
 * next message, or, when nothing else waits, goes in an empty one that the
 * sink confirms without sending anything.
 */
#include <errno.h>

#include "ctflowd/error.h"
#include "format.h"

struct encoder {
	const struct encoder_ops *ops;
	void *state;
	encoder_emit_fn emit;
	void *user;
	guint pending;
	guint passed;            /* of the pending ones: records giving nothing */
	guint message_limit;
	guint64 skipped;     /* atomic: read from any thread */
	enum export_records records;
};

#define MESSAGE_LIMIT_MIN 512u
#define MESSAGE_LIMIT_MAX 65000u

encoder *encoder_new(const struct export_config *cfg, encoder_emit_fn emit, void *user,
		     GError **error)
{
	encoder *enc = g_new0(encoder, 1);

	switch (cfg->format) {
	case EXPORT_FORMAT_IPFIX:
		enc->ops = &encoder_ipfix_ops;
		break;
	case EXPORT_FORMAT_JSON:
		enc->ops = &encoder_json_ops;
		break;
	case EXPORT_FORMAT_NETFLOW9:
		enc->ops = &encoder_netflow9_ops;
		break;
	case EXPORT_FORMAT_NETFLOW5:
		enc->ops = &encoder_netflow5_ops;
		break;
	case EXPORT_FORMAT_SYSLOG:
		enc->ops = &encoder_syslog_ops;
		break;
	}
	if (cfg->records != EXPORT_RECORDS_FLOWS && !enc->ops->add_nat_events) {
		g_set_error(error, CTFLOWD_ERROR, EINVAL, "export %s: format %s cannot carry NAT"
			    " session events (records = flows only)", cfg->name,
			    export_format_name(cfg->format));
		g_free(enc);
		return NULL;
	}
	enc->records = cfg->records;
	enc->message_limit = cfg->mtu ? cfg->mtu : MESSAGE_LIMIT_MAX;
	enc->emit = emit;
	enc->user = user;
	enc->state = enc->ops->create(cfg, enc, error);
	if (!enc->state) {
		g_free(enc);
		return NULL;
	}
	return enc;
}

gboolean encoder_start_session(encoder *enc, GError **error)
{
	enc->pending = 0;
	enc->passed = 0;
	return enc->ops->start_session(enc->state, enc->message_limit, error);
}

void encoder_set_message_limit(encoder *enc, guint limit)
{
	enc->message_limit = CLAMP(limit, MESSAGE_LIMIT_MIN, MESSAGE_LIMIT_MAX);
}

static gboolean pass_over(encoder *enc)
{
	enc->pending++;
	enc->passed++;
	return TRUE;
}

/*
 * The NAT session events of @r, in order: a NAT create record is a create
 * (its time when it was read, or for a late one the connection's start);
 * the final record of a translated connection a delete at its end, after a
 * late create at its start when the create was never logged.
 */
static guint nat_events_of(const struct flow_record *r, struct nat_event ev[2])
{
	const gboolean late = (r->flags & FLOW_LATE) != 0;
	guint n = 0;

	if (r->event == FLOW_EVENT_NEW) {
		ev[0] = (struct nat_event){ NAT_EVENT_CREATE, late, (r->flags & FLOW_REFRESH) != 0,
					    late ? r->start_ns : r->end_ns };
		return 1;
	}
	if (r->event != FLOW_EVENT_DESTROY || !flow_is_translated(r))
		return 0;
	if (late)
		ev[n++] = (struct nat_event){ NAT_EVENT_CREATE, TRUE, FALSE, r->start_ns };
	ev[n++] = (struct nat_event){ NAT_EVENT_DELETE, FALSE, FALSE, r->end_ns };
	return n;
}

gboolean encoder_add(encoder *enc, const struct flow_record *record, GError **error)
{
	/* a NAT create record is no flow */
	gboolean flow = record->event != FLOW_EVENT_NEW && enc->records != EXPORT_RECORDS_NAT_EVENTS;
	struct nat_event ev[2];
	guint n = enc->records == EXPORT_RECORDS_FLOWS ? 0 : nat_events_of(record, ev);
	gboolean written = TRUE;

	if (!n)
		return flow ? enc->ops->add(enc->state, record, error) : pass_over(enc);
	if (!enc->ops->add_nat_events(enc->state, record, ev, n, flow, &written, error))
		return FALSE;
	return written || pass_over(enc);
}

gboolean encoder_flush(encoder *enc, GError **error)
{
	if (!enc->pending)
		return TRUE;
	if (!enc->ops->flush(enc->state, error))
		return FALSE;
	if (!enc->passed)
		return TRUE;
	/* only records that give nothing are left: an empty message passes them */
	guint n = enc->passed;
	enc->passed = 0;
	enc->pending -= MIN(n, enc->pending);
	return enc->emit(NULL, 0, n, enc->user, error);
}

gboolean encoder_refresh_templates(encoder *enc, GError **error)
{
	return enc->ops->refresh_templates(enc->state, error);
}

gboolean encoder_report_statistics(encoder *enc, const struct export_statistics *stats,
				   GError **error)
{
	if (!enc->ops->report_statistics)
		return TRUE;
	return enc->ops->report_statistics(enc->state, stats, error);
}

guint encoder_pending(const encoder *enc)
{
	return enc->pending;
}

gboolean encoder_emit(encoder *enc, const uint8_t *msg, size_t len, guint records,
		      GError **error)
{
	/* Records passed over went by after the message's first record, or
	 * with nothing else waiting: either way they end with this message.
	 * A message of templates only, sent while the format holds records,
	 * must not take them: their positions come after those records. */
	if (records || enc->pending == enc->passed) {
		records += enc->passed;
		enc->passed = 0;
	}
	enc->pending -= MIN(records, enc->pending);
	return enc->emit(msg, len, records, enc->user, error);
}

void encoder_note_added(encoder *enc)
{
	enc->pending++;
}

void encoder_note_skipped(encoder *enc)
{
	__atomic_add_fetch(&enc->skipped, 1, __ATOMIC_RELAXED);
}

guint64 encoder_skipped(const encoder *enc)
{
	return __atomic_load_n(&enc->skipped, __ATOMIC_RELAXED);
}

void encoder_free(encoder *enc)
{
	if (!enc)
		return;
	enc->ops->destroy(enc->state);
	g_free(enc);
}
