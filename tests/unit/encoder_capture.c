/*
 * encoder_capture.c - see encoder_capture.h.
 */
#include <arpa/inet.h>
#include <string.h>

#include "encoder_capture.h"

gboolean capture_emit(const uint8_t *msg, size_t len, guint records, void *user, GError **error)
{
	struct capture *c = user;

	if (c->fail) {
		c->fail = FALSE;
		g_set_error(error, TEST_ERROR, 42, "collector went away");
		return FALSE;
	}
	g_ptr_array_add(c->msgs, g_bytes_new(msg, len));
	g_array_append_val(c->records, records);
	return TRUE;
}

void capture_init(struct capture *c)
{
	c->msgs = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	c->records = g_array_new(FALSE, FALSE, sizeof(guint));
	c->fail = FALSE;
}

void capture_clear(struct capture *c)
{
	g_ptr_array_unref(c->msgs);
	g_array_unref(c->records);
}

guint capture_count(const struct capture *c, guint i)
{
	return g_array_index(c->records, guint, i);
}

encoder *capture_encoder(const struct export_config *cfg, struct capture *c)
{
	g_autoptr(GError) error = NULL;

	capture_init(c);
	encoder *enc = encoder_new(cfg, capture_emit, c, &error);
	g_assert_no_error(error);
	g_assert_true(encoder_start_session(enc, &error));
	g_assert_no_error(error);
	return enc;
}

uint16_t capture_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

uint32_t capture_get32(const uint8_t *p)
{
	return (uint32_t)capture_get16(p) << 16 | capture_get16(p + 2);
}

void capture_set_addr(uint8_t out[16], int family, const char *text)
{
	memset(out, 0, 16);
	g_assert_cmpint(inet_pton(family, text, out), ==, 1);
}
