/*
 * message_capture.h - an encoder whose messages are kept for a test to read
 * back, with the record count handed over with each.
 */
#pragma once

#include <glib.h>
#include <stdint.h>

#include "ctflowd/encoder.h"

struct capture {
	GPtrArray *msgs;   /* GBytes, in the order emitted */
	GArray *records;   /* guint: the record count of each */
};

/** capture_encoder: an encoder for @cfg emitting into @c, its session started. */
encoder *capture_encoder(const struct export_config *cfg, struct capture *c);

/** capture_records: the record count handed over with message @i. */
guint capture_records(const struct capture *c, guint i);

/** capture_clear: frees what @c holds. */
void capture_clear(struct capture *c);

/** capture_get16 / capture_get32: big-endian numbers, as on the wire. */
uint16_t capture_get16(const uint8_t *p);
uint32_t capture_get32(const uint8_t *p);

/** capture_set_addr: @text of @family into @out, zero-filled to 16 bytes. */
void capture_set_addr(uint8_t out[16], int family, const char *text);
