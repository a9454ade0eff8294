/*
 * encoder_capture.c - see encoder_capture.h.
 */
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
