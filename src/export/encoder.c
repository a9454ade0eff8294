/*
 * encoder.c - the format-independent part of an encoder: dispatch to the
 * format, and the count of records waiting in the unfinished message.
 */
#include "format.h"

struct encoder {
	const struct encoder_ops *ops;
	void *state;
	encoder_emit_fn emit;
	void *user;
	guint pending;
	guint message_limit;
	guint64 skipped;     /* atomic: read from any thread */
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
	return enc->ops->start_session(enc->state, enc->message_limit, error);
}

void encoder_set_message_limit(encoder *enc, guint limit)
{
	enc->message_limit = CLAMP(limit, MESSAGE_LIMIT_MIN, MESSAGE_LIMIT_MAX);
}

gboolean encoder_add(encoder *enc, const struct flow_record *record, GError **error)
{
	return enc->ops->add(enc->state, record, error);
}

gboolean encoder_flush(encoder *enc, GError **error)
{
	if (!enc->pending)
		return TRUE;
	return enc->ops->flush(enc->state, error);
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
