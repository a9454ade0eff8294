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
#include "ctflowd/state_dir.h"

#define BLOCK (1ull << 20)
#define CLOCK_SHIFT 28   /* room for 2^28 records a second before the clock is passed */
/* The clock floor reaches 2^63 only in the year 3058: a reservation past it
 * is no number ctflowd handed out, and counting on from one near 2^64 would
 * wrap round to 0 and repeat numbers. */
#define RESERVATION_MAX (1ull << 63)
#define FILE_MAX 64      /* bytes of the file read: a number and a newline */

struct flow_ids {
	int dirfd;           /* the state directory, checked once at open */
	char *dir;
	char *name;
	char *path;
	uint64_t next;
	uint64_t reserved_end;
};

static uint64_t clock_floor(void)
{
	return (uint64_t)(g_get_real_time() / G_USEC_PER_SEC) << CLOCK_SHIFT;
}

/* write, sync, rename: after a crash the file holds the old or the new
 * reservation, never a torn one */
static gboolean write_reservation(flow_ids *ids, uint64_t end, GError **error)
{
	char text[32];
	int len = snprintf(text, sizeof(text), "%" PRIu64 "\n", end);

	if (!state_dir_replace_file(ids->dirfd, ids->dir, ids->name, text, (gsize)len, 0640,
				    error)) {
		g_prefix_error(error, "flowId reservation: ");
		return FALSE;
	}
	return TRUE;
}

static gboolean reserve(flow_ids *ids, GError **error)
{
	uint64_t start = MAX(ids->reserved_end, clock_floor());

	if (!write_reservation(ids, start + BLOCK, error))
		return FALSE;
	ids->next = start;
	ids->reserved_end = start + BLOCK;
	return TRUE;
}

/* The reservation the file holds, or 0 (then the clock floor rules) with
 * the reason logged. */
static uint64_t read_reservation(flow_ids *ids)
{
	g_autoptr(GError) error = NULL;
	char text[FILE_MAX + 1];
	int fd = state_dir_open_file(ids->dirfd, ids->dir, ids->name, O_RDONLY, 0, &error);
	ssize_t len = -1;

	if (fd < 0) {
		if (error->code != ENOENT)
			g_warning("%s; continuing from the clock", error->message);
		return 0;
	}
	do
		len = read(fd, text, FILE_MAX);
	while (len < 0 && errno == EINTR);
	int e = errno;
	close(fd);
	if (len < 0) {
		g_warning("cannot read %s: %s; continuing from the clock", ids->path, g_strerror(e));
		return 0;
	}
	text[len] = '\0';

	char *end = NULL;
	errno = 0;
	guint64 v = g_ascii_strtoull(text, &end, 10);
	if (errno || end == text || (*end && *end != '\n') || len == FILE_MAX) {
		/* the clock floor still keeps numbers from repeating */
		g_warning("%s: not a flowId reservation (\"%.20s\"); continuing from the clock",
			  ids->path, g_strstrip(text));
		return 0;
	}
	if (v > RESERVATION_MAX) {
		g_warning("%s: flowId reservation %" G_GUINT64_FORMAT " is past 2^63, where no "
			  "number of ctflowd's can be; counting on from it would wrap past 2^64 and "
			  "repeat numbers: continuing from the clock",
			  ids->path, v);
		return 0;
	}
	return v;
}

flow_ids *flow_ids_open(const char *path, GError **error)
{
	flow_ids *ids = g_new0(flow_ids, 1);

	ids->path = g_strdup(path);
	ids->dir = g_path_get_dirname(path);
	ids->name = g_path_get_basename(path);
	ids->dirfd = state_dir_open(ids->dir, FALSE, error);
	if (ids->dirfd < 0) {
		g_prefix_error(error, "flowId reservation %s: ", path);
		flow_ids_free(ids);
		return NULL;
	}
	ids->reserved_end = read_reservation(ids);
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
	if (ids->dirfd >= 0)
		close(ids->dirfd);
	g_free(ids->path);
	g_free(ids->dir);
	g_free(ids->name);
	g_free(ids);
}
