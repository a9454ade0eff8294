/*
 * flow_id.c - a persistent 64-bit counter for flowId, reserved in blocks.
 *
 * The file holds the end of the last reserved block.  A crash skips the
 * rest of the block: numbers may be wasted, never repeated.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "ctflowd/error.h"
#include "ctflowd/flow_id.h"

#define BLOCK (1ull << 20)
#define CLOCK_SHIFT 28   /* room for 2^28 records a second before the clock is passed */

struct flow_ids {
	char *path;
	uint64_t next;
	uint64_t reserved_end;
};

static uint64_t clock_floor(void)
{
	return (uint64_t)(g_get_real_time() / G_USEC_PER_SEC) << CLOCK_SHIFT;
}

static gboolean write_reservation(const char *path, uint64_t end, GError **error)
{
	char text[32];
	int len = snprintf(text, sizeof(text), "%" PRIu64 "\n", end);
	g_autofree char *tmp = g_strconcat(path, ".tmp", NULL);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);

	/* write, sync, rename: after a crash the file holds the old or the new
	 * reservation, never a torn one */
	if (fd < 0 || write(fd, text, (size_t)len) != len || fsync(fd) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		unlink(tmp);
		g_set_error(error, CTFLOWD_ERROR, e, "cannot write flowId reservation %s: %s", tmp,
			    g_strerror(e));
		return FALSE;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		g_set_error(error, CTFLOWD_ERROR, e, "cannot replace %s: %s", path, g_strerror(e));
		return FALSE;
	}
	return TRUE;
}

static gboolean reserve(flow_ids *ids, GError **error)
{
	uint64_t start = MAX(ids->reserved_end, clock_floor());

	if (!write_reservation(ids->path, start + BLOCK, error))
		return FALSE;
	ids->next = start;
	ids->reserved_end = start + BLOCK;
	return TRUE;
}

flow_ids *flow_ids_open(const char *path, GError **error)
{
	flow_ids *ids = g_new0(flow_ids, 1);
	g_autofree char *text = NULL;
	g_autoptr(GError) read_error = NULL;

	ids->path = g_strdup(path);
	if (g_file_get_contents(path, &text, NULL, &read_error)) {
		char *end = NULL;
		errno = 0;
		guint64 v = g_ascii_strtoull(text, &end, 10);
		if (errno || end == text || (*end && *end != '\n')) {
			/* the clock floor still keeps numbers from repeating */
			g_warning("%s: not a flowId reservation (\"%.20s\"); continuing from the clock",
				  path, g_strstrip(text));
		} else {
			ids->reserved_end = v;
		}
	} else if (!g_error_matches(read_error, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
		g_warning("%s: %s; continuing from the clock", path, read_error->message);
	}
	if (!reserve(ids, error)) {
		flow_ids_free(ids);
		return NULL;
	}
	return ids;
}

uint64_t flow_ids_next(flow_ids *ids)
{
	if (ids->next == ids->reserved_end) {
		g_autoptr(GError) error = NULL;
		if (!reserve(ids, &error)) {
			g_warning("%s; numbering goes on from the clock", error->message);
			ids->next = MAX(ids->reserved_end, clock_floor());
			ids->reserved_end = ids->next + BLOCK;
		}
	}
	return ids->next++;
}

void flow_ids_free(flow_ids *ids)
{
	if (!ids)
		return;
	g_free(ids->path);
	g_free(ids);
}
