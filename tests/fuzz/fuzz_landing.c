/*
 * fuzz_landing.c - the landing zone a killed worker left, and with it the
 * walk over netlink messages that every received datagram goes through.
 *
 * The input is cut into datagrams (each preceded by a 16-bit length), which
 * are written into consecutive slots of a landing file, as recvmmsg() would
 * have left them, headers and all: a slot's first word is the length the
 * message claims.  ct_source_new() recovers the file and hands on the
 * records it parsed.  Beyond memory safety, recovery must empty the file,
 * and no datagram yields more records than it can hold messages.
 */
#include <fcntl.h>
#include <linux/netlink.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctflowd/ct_source.h"
#include "fuzz.h"

/* the landing file's layout (ct_source.c) */
#define SLOTS 256
#define SLOT_SIZE 8192
#define MAX_DATAGRAMS 16

static char *dir;     /* scratch, removed at exit */
static char *path;
static int events[2] = { -1, -1 };

struct seen {
	size_t records;
	size_t possible;
};

static void quiet(const gchar *domain, GLogLevelFlags level, const gchar *message, gpointer data)
{
}

static void collect(const struct flow_record *records, size_t n, void *user)
{
	((struct seen *)user)->records += n;
}

/* The scratch directory goes when the run ends: libFuzzer and the replayer
 * both leave through exit(). */
static void remove_dir(void)
{
	unlink(path);
	rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!path) {
		g_log_set_default_handler(quiet, NULL);
		dir = g_dir_make_tmp("ctflowd-fuzz-XXXXXX", NULL);
		if (!dir || socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, events) < 0 ||
		    atexit(remove_dir) != 0)
			abort();
		path = g_build_filename(dir, "landing", NULL);
	}
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)SLOTS * SLOT_SIZE) < 0)
		abort();

	struct seen seen = {0};
	for (guint slot = 0; slot < MAX_DATAGRAMS && size >= 2; slot++) {
		size_t len = MIN((size_t)(data[0] | data[1] << 8), size - 2);
		len = MIN(len, (size_t)SLOT_SIZE);
		if (pwrite(fd, data + 2, len, (off_t)slot * SLOT_SIZE) != (ssize_t)len)
			abort();
		/* a datagram may hold several messages, none shorter than a header */
		seen.possible += len / NLMSG_HDRLEN;
		data += 2 + len, size -= 2 + len;
	}
	close(fd);

	struct ct_source_options opts = { .receive_buffer = 1 << 20, .reliable = TRUE };
	GError *error = NULL;
	ct_source *src = ct_source_new(events[0], path, &opts, collect, &seen, &error);
	if (!src) {
		/* a landing zone is recovered whatever it holds */
		abort();
	}
	ct_source_free(src);
	if (seen.records > seen.possible)
		abort();   /* records out of nothing: a walk that went round */

	/* what was recovered is gone from the file */
	g_autofree char *after = NULL;
	gsize after_len = 0;
	if (!g_file_get_contents(path, &after, &after_len, NULL))
		abort();
	for (gsize i = 0; i < after_len; i += SLOT_SIZE)
		if (after[i] || after[i + 1] || after[i + 2] || after[i + 3])
			abort();
	return 0;
}
