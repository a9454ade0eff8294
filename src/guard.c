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

struct guard {
	int events_fd;
	ino_t socket_inode;
	int count_fd;        /* opened in the watched namespace: reads stay there */
	int netlink_fd;
	int query_fd;        /* for listing parked entries */
	guint64 threshold;
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

/* The Drops column of our socket's line in /proc/net/netlink. */
static gboolean read_drops(guard *g, guint64 *drops)
{
	char buf[65536];
	ssize_t n = pread(g->netlink_fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return FALSE;
	buf[n] = '\0';
	for (char *line = strchr(buf, '\n'); line && line[1]; line = strchr(line + 1, '\n')) {
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

	g->count_fd = g->netlink_fd = g->query_fd = -1;
	g->events_fd = events_fd;
	g->query_fd = ct_socket_open(error);
	if (g->query_fd < 0) {
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
	if (opts->entries && opts->entries > max)
		g_warning("guard threshold %" G_GUINT64_FORMAT " is above nf_conntrack_max %"
			  G_GUINT64_FORMAT ": the table would be full before it acts",
			  opts->entries, max);
	return g;
}

static void switch_off(guard *g, guint64 count, guint64 parked)
{
	g_autoptr(GError) error = NULL;

	if (!ct_socket_set_reliable(g->events_fd, FALSE, &error)) {
		g_warning("guard: %s", error->message);
		return;
	}
	g->off = TRUE;
	g->off_since_us = g_get_monotonic_time();
	g->drops_at_off = 0;
	read_drops(g, &g->drops_at_off);
	g->stats.activations++;
	g_warning("GUARD: the conntrack table holds %" G_GUINT64_FORMAT " entries (threshold %"
		  G_GUINT64_FORMAT "), %" G_GUINT64_FORMAT " of them parked until ctflowd takes "
		  "their DESTROY; reliable delivery is OFF so the firewall keeps working: events "
		  "that do not fit are lost until it is back",
		  count, g->threshold, parked);
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

void guard_check(guard *g, gint64 reader_alive_us)
{
	guint64 count;

	if (!read_number(g->count_fd, &count))
		return;
	if (!g->off) {
		/* A full table of live connections is the firewall's business;
		 * only entries parked for ctflowd are ours to let go. */
		guint64 parked = 0;
		g_autoptr(GError) error = NULL;
		if (count < g->threshold)
			return;
		if (!ct_socket_count_parked(g->query_fd, &parked, &error)) {
			g_warning("guard: %s", error->message);
			parked = count;
		}
		if (parked)
			switch_off(g, count, parked);
		return;
	}
	gboolean reading = reader_alive_us &&
			   g_get_monotonic_time() - reader_alive_us < READER_FRESH_US;
	if (reading && count < g->threshold * RESUME_PERCENT / 100)
		switch_on(g, count);
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
	if (g->query_fd >= 0)
		close(g->query_fd);
	g_free(g);
}
