/*
 * fuzz_state.c - the connection state snapshot a start reads back
 * (conn_state.c): a file in the state directory, which a crash, a full
 * disk or another local user may have left in any shape.
 *
 * Beyond memory safety: a snapshot that is accepted must come out of
 * conn_state_snapshot() byte for byte as it went in (no entry is dropped,
 * doubled or changed), and a connection added and removed beside its
 * entries must be found and gone as it should.
 */
#include <stdlib.h>
#include <string.h>

#include "ctflowd/conn_state.h"
#include "fuzz.h"

static void quiet(const gchar *domain, GLogLevelFlags level, const gchar *message, gpointer data)
{
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static gboolean once;
	guint64 position = 0;
	GError *error = NULL;

	if (!once) {
		g_log_set_default_handler(quiet, NULL);
		once = TRUE;
	}
	conn_state *cs = conn_state_parse(data, size, "fuzz", &position, &error);
	if (!cs) {
		if (!error)
			abort();   /* a refusal always says why */
		g_error_free(error);
		return 0;
	}
	GBytes *again = conn_state_snapshot(cs, position);
	gsize len;
	const void *bytes = g_bytes_get_data(again, &len);
	/* entries come back in file order: removals are what reorder them;
	 * a file of an older version comes back in the current one, with
	 * its header's version and CRC changed and nothing else */
	guint32 version;
	memcpy(&version, data + 4, sizeof(version));
	const gsize keep = version == CONN_STATE_SNAPSHOT_VERSION ? 4 : 16;
	if (len != size || memcmp(bytes, data, 4) != 0 ||
	    memcmp((const guint8 *)bytes + keep, data + keep, size - keep) != 0)
		abort();
	g_bytes_unref(again);

	/* a connection added beside the entries and removed again leaves
	 * them as they were (the index's deletion shifts probe chains) */
	guint n = conn_state_size(cs);
	struct flow_record r = {0};
	r.start_ns = 1;
	r.end_reason = FLOW_END_ACTIVE_TIMEOUT;
	r.end_ns = 2;
	gboolean known = conn_state_find(cs, &r) != NULL;
	conn_state_apply(cs, &r);
	if (conn_state_size(cs) != n + !known || !conn_state_find(cs, &r))
		abort();
	r.event = FLOW_EVENT_DESTROY;
	conn_state_apply(cs, &r);
	if (conn_state_size(cs) != n - known || conn_state_find(cs, &r))
		abort();
	conn_state_free(cs);
	return 0;
}
