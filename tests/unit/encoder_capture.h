/*
 * encoder_capture.h - an emit callback for encoder tests: keeps every
 * message an encoder hands over, with its record count, and can make the
 * next one fail as a broken transport would; and the small readers of
 * wire bytes the binary formats' tests share.
 */
#pragma once

#include <glib.h>
#include <stdint.h>

#include "ctflowd/encoder.h"

struct capture {
	GPtrArray *msgs;    /* GBytes *, in order */
	GArray *records;    /* guint: the count passed with each message */
	gboolean fail;      /* make the next emit fail */
};

#define TEST_ERROR (g_quark_from_static_string("test-error"))

/** capture_emit: an encoder_emit_fn; @user is a struct capture. */
gboolean capture_emit(const uint8_t *msg, size_t len, guint records, void *user, GError **error);

/** capture_init / capture_clear: an empty capture, and freeing one. */
void capture_init(struct capture *c);
void capture_clear(struct capture *c);

/** capture_count: the record count of message @i. */
guint capture_count(const struct capture *c, guint i);

/** capture_encoder: an encoder for @cfg emitting into @c (initialised here), its session started. */
encoder *capture_encoder(const struct export_config *cfg, struct capture *c);

/** capture_get16 / capture_get32: big-endian numbers, as on the wire. */
uint16_t capture_get16(const uint8_t *p);
uint32_t capture_get32(const uint8_t *p);

/** capture_set_addr: @text of @family into @out, zero-filled to 16 bytes. */
void capture_set_addr(uint8_t out[16], int family, const char *text);
