/*
 * guard.c - switches reliable delivery off before parked DESTROYs fill the
 * conntrack table, and back on when the reader catches up.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctflowd/ct_request.h"
#include "ctflowd/ct_socket.h"
#include "ctflowd/error.h"
#include "ctflowd/guard.h"

#define COUNT_PATH "/proc/sys/net/netfilter/nf_conntrack_count"
#define MAX_PATH "/proc/sys/net/netfilter/nf_conntrack_max"
#define NETLINK_STATS_PATH "/proc/thread-self/net/netlink"
/* back on only below this share of the threshold, so it does not flap */
#define RESUME_PERCENT 90
/* a worker that drained within this is reading */
#define READER_FRESH_US (G_USEC_PER_SEC)
/* Whether the table falls is judged against the latest reading at least
 * this old: two checks can come a moment apart (one that waited for the
 * kernel is followed at once by the next), with nothing freed in between,
 * and an older reading may still be from before the fall began. */
#define TREND_MIN_US (150 * 1000)
#define TREND_READINGS 8     /* two a check, every 200 ms: the last 0.8 s */
/* One look at the dying list is one reply: under a millisecond with tens
 * of thousands of entries parked, a few hundred milliseconds while a flush
 * of the table holds the kernel's locks.  The guard runs every 200 ms. */
#define LOOK_US (500 * 1000)

struct guard {
	int events_fd;
	ino_t socket_inode;
	int count_fd;        /* opened in the watched namespace: reads stay there */
	int netlink_fd;
	ct_request *requests; /* for looking at the parked entries */
	GByteArray *netlink_text;
	guint64 threshold;
	guint64 ceiling;     /* past this it acts even while the table falls */
	struct reading {
		guint64 count;
		gint64 at_us;        /* 0: none */
	} recent[TREND_READINGS]; /* the table lately, to tell whether it falls */
	guint next_reading;
	gboolean waiting;    /* held off while a reading worker empties the table */
	gboolean off;
	gint64 off_since_us;
	guint64 drops_at_off;
	struct guard_stats stats;
};

static gboolean read_number(int fd, guint64 *value)
{
	char buf[64];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return FALSE;
	buf[n] = '\0';
	*value = g_ascii_strtoull(buf, NULL, 10);
	return TRUE;
}

/* The whole of /proc/net/netlink, NUL-terminated: a host with many
 * netlink sockets has more than any fixed buffer holds. */
static const char *read_netlink_text(guard *g)
{
	GByteArray *text = g->netlink_text;
	guint8 chunk[16384];
	off_t at = 0;

	g_byte_array_set_size(text, 0);
	for (;;) {
		ssize_t n = pread(g->netlink_fd, chunk, sizeof(chunk), at);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return NULL;
		if (n == 0)
			break;
		g_byte_array_append(text, chunk, (guint)n);
		at += n;
	}
	g_byte_array_append(text, (const guint8 *)"", 1);
	return (const char *)text->data;
}

/* The Drops column of our socket's line in /proc/net/netlink. */
static gboolean read_drops(guard *g, guint64 *drops)
{
	const char *buf = read_netlink_text(g);

	if (!buf)
		return FALSE;
	for (const char *line = strchr(buf, '\n'); line && line[1];
	     line = strchr(line + 1, '\n')) {
		unsigned long long d = 0, inode = 0;
		if (sscanf(line + 1, "%*s %*d %*u %*x %*d %*d %*d %*d %llu %llu", &d, &inode) == 2 &&
		    inode == (unsigned long long)g->socket_inode) {
			*drops = d;
			return TRUE;
		}
	}
	return FALSE;
}

guard *guard_new(int events_fd, const struct guard_options *opts, GError **error)
{
	guard *g = g_new0(guard, 1);
	struct stat st;

	g->count_fd = g->netlink_fd = -1;
	g->events_fd = events_fd;
	g->netlink_text = g_byte_array_new();
	if (!(g->requests = ct_request_new(error))) {
		guard_free(g);
		return NULL;
	}
	g->count_fd = open(COUNT_PATH, O_RDONLY | O_CLOEXEC);
	g->netlink_fd = open(NETLINK_STATS_PATH, O_RDONLY | O_CLOEXEC);
	int max_fd = open(MAX_PATH, O_RDONLY | O_CLOEXEC);
	guint64 max = 0;
	if (g->count_fd < 0 || g->netlink_fd < 0 || max_fd < 0 || !read_number(max_fd, &max) ||
	    fstat(events_fd, &st) < 0) {
		int e = errno;
		if (max_fd >= 0)
			close(max_fd);
		g_set_error(error, CTFLOWD_ERROR, e,
			    "guard: cannot read %s, %s and %s: %s", COUNT_PATH, MAX_PATH,
			    NETLINK_STATS_PATH, g_strerror(e));
		guard_free(g);
		return NULL;
	}
	close(max_fd);
	g->socket_inode = st.st_ino;
	g->threshold = opts->entries ? opts->entries : max * opts->percent / 100;
	g->ceiling = g->threshold < max ? g->threshold + (max - g->threshold) / 2 : g->threshold;
	if (opts->entries && opts->entries > max)
		g_warning("guard threshold %" G_GUINT64_FORMAT " is above nf_conntrack_max %"
			  G_GUINT64_FORMAT ": the table would be full before it acts",
			  opts->entries, max);
	return g;
}

static void switch_off(guard *g, guint64 count)
{
	g_autoptr(GError) error = NULL;

	if (!ct_socket_set_reliable(g->events_fd, FALSE, &error)) {
		g_warning("guard: %s", error->message);
		return;
	}
	g->off = TRUE;
	g->off_since_us = g_get_monotonic_time();
	g->drops_at_off = 0;
	if (!read_drops(g, &g->drops_at_off))
		g_warning("guard: cannot find ctflowd's socket (inode %lu) in %s: events lost "
			  "while reliable delivery is off cannot be counted",
			  (unsigned long)g->socket_inode, NETLINK_STATS_PATH);
	g->stats.activations++;
	g_warning("GUARD: the conntrack table holds %" G_GUINT64_FORMAT " entries (threshold %"
		  G_GUINT64_FORMAT "), some of them parked until ctflowd takes their DESTROY; "
		  "reliable delivery is OFF so the firewall keeps working: events that do not "
		  "fit are lost until it is back",
		  count, g->threshold);
}

static void switch_on(guard *g, guint64 count)
{
	g_autoptr(GError) error = NULL;
	guint64 drops = g->drops_at_off;

	if (!ct_socket_set_reliable(g->events_fd, TRUE, &error)) {
		g_warning("guard: %s", error->message);
		return;
	}
	read_drops(g, &drops);
	guint64 lost = drops - MIN(drops, g->drops_at_off);
	guint64 off_ms = (guint64)(g_get_monotonic_time() - g->off_since_us) / 1000;
	g->stats.dropped += lost;
	g->stats.off_ms += off_ms;
	g->off = FALSE;
	g_warning("GUARD: reliable delivery is back on after %" G_GUINT64_FORMAT " ms (table "
		  "at %" G_GUINT64_FORMAT " entries); %" G_GUINT64_FORMAT " events were dropped "
		  "meanwhile (%" G_GUINT64_FORMAT " in all)",
		  off_ms, count, lost, g->stats.dropped);
}

static gboolean reader_reading(guard_reader_fn reader_alive_us)
{
	gint64 alive = reader_alive_us ? reader_alive_us() : 0;

	return alive && g_get_monotonic_time() - alive < READER_FRESH_US;
}

/* Whether the dying list holds anything.  When the kernel cannot be asked
 * in time, it assumes so: the host comes first. */
static gboolean any_parked(guard *g)
{
	g_autoptr(GError) error = NULL;
	gboolean any = FALSE;

	if (ct_request_any_parked(g->requests, g_get_monotonic_time() + LOOK_US, &any, &error))
		return any;
	g_warning("guard: %s; acting as if entries were parked", error->message);
	return TRUE;
}

/* Whether @count is below the latest reading at least TREND_MIN_US old;
 * notes @count for later calls. */
static gboolean table_falling(guard *g, guint64 count)
{
	gint64 now = g_get_monotonic_time();
	const struct reading *ref = NULL;

	for (guint i = 0; i < TREND_READINGS; i++) {
		const struct reading *r = &g->recent[i];
		if (r->at_us && now - r->at_us >= TREND_MIN_US && (!ref || r->at_us > ref->at_us))
			ref = r;
	}
	gboolean falling = ref && count < ref->count;
	g->recent[g->next_reading] = (struct reading){ .count = count, .at_us = now };
	g->next_reading = (g->next_reading + 1) % TREND_READINGS;
	return falling;
}

void guard_check(guard *g, guard_reader_fn reader_alive_us)
{
	guint64 count;

	if (!read_number(g->count_fd, &count))
		return;
	if (g->off) {
		table_falling(g, count);
		if (reader_reading(reader_alive_us) && count < g->threshold * RESUME_PERCENT / 100)
			switch_on(g, count);
		return;
	}
	/* A full table of live connections is the firewall's business; only
	 * entries parked for ctflowd are ours to let go. */
	if (count < g->threshold || !any_parked(g)) {
		if (count < g->threshold)
			g->waiting = FALSE;
		table_falling(g, count);
		return;
	}
	/* Decide on fresh facts, read after the look: a worker that resumed
	 * meanwhile and is emptying the table loses nothing if left alone.
	 * Past the ceiling, the host is too close to dropping connections to
	 * wait for it. */
	if (!read_number(g->count_fd, &count))
		return;
	gboolean falling = table_falling(g, count);
	if (count < g->threshold)
		return;
	if (count < g->ceiling && falling && reader_reading(reader_alive_us)) {
		if (!g->waiting)
			g_message("guard: the conntrack table holds %" G_GUINT64_FORMAT
				  " entries (threshold %" G_GUINT64_FORMAT "), but the worker "
				  "is reading and the table is falling: reliable delivery stays on",
				  count, g->threshold);
		g->waiting = TRUE;
		return;
	}
	g->waiting = FALSE;
	switch_off(g, count);
}

guint64 guard_threshold(const guard *g)
{
	return g->threshold;
}

void guard_get_stats(const guard *g, struct guard_stats *out)
{
	*out = g->stats;
	if (g->off)
		out->off_ms += (guint64)(g_get_monotonic_time() - g->off_since_us) / 1000;
}

void guard_free(guard *g)
{
	if (!g)
		return;
	if (g->count_fd >= 0)
		close(g->count_fd);
	if (g->netlink_fd >= 0)
		close(g->netlink_fd);
	ct_request_free(g->requests);
	if (g->netlink_text)
		g_byte_array_unref(g->netlink_text);
	g_free(g);
}
