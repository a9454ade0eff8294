/*
 * ct_source.c - drains conntrack events from a ctnetlink socket.
 *
 * Every conntrack event is its own datagram, so the cost per event is set by
 * system calls: recvmmsg() takes up to a batch per call, and a drain keeps
 * calling until the socket is empty (bounded, to keep the loop responsive).
 */
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ctflowd/error.h"
#include "ctflowd/ct_parse.h"
#include "ctflowd/ct_source.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

#define RECV_BATCH 64            /* datagrams per recvmmsg() */
#define RECV_SIZE 8192           /* an event is a few hundred bytes */
#define DELIVER_BATCH 1024       /* records handed on at once (one spool lock) */
#define DRAIN_MAX_CALLS 64       /* per drain: about 4096 events */
#define DRAIN_BURST 256          /* a drain this large means a burst is on */
#define DUMP_BUFFER 32768
#define DUMP_ATTEMPTS 4
#define DUMP_TIMEOUT_MS 5000

struct ct_source {
	struct mnl_socket *events;
	struct mnl_socket *dump;         /* opened with the events socket: same namespace */
	ct_source_records_fn deliver;
	void *user;
	struct ct_source_options opts;
	struct ct_source_stats stats;
	gint64 last_overrun_us;          /* monotonic; 0 = not in a burst */
	gboolean resync_pending;
	guint malformed_logged;
	struct mmsghdr msgs[RECV_BATCH];
	struct iovec iov[RECV_BATCH];
	struct flow_record records[DELIVER_BATCH];
	uint8_t buffers[RECV_BATCH][RECV_SIZE];
};

static gboolean set_sockopt(int fd, int level, int name, int value, const char *what,
			    GError **error)
{
	if (setsockopt(fd, level, name, &value, sizeof(value)) < 0) {
		int e = errno;
		g_set_error(error, CTFLOWD_ERROR, e, "cannot set %s: %s", what,
			    g_strerror(e));
		return FALSE;
	}
	return TRUE;
}

static gboolean set_receive_buffer(int fd, guint64 bytes, GError **error)
{
	int value = (int)MIN(bytes, (guint64)G_MAXINT / 2);

	/* SO_RCVBUFFORCE passes net.core.rmem_max; it needs CAP_NET_ADMIN,
	 * which opening the socket already required. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &value, sizeof(value)) < 0) {
		int e = errno;
		if (e != EPERM)
			return set_sockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, value,
					   "the receive buffer (SO_RCVBUFFORCE)", error);
		g_warning("SO_RCVBUFFORCE refused (%s); falling back to SO_RCVBUF, which "
			  "net.core.rmem_max caps",
			  g_strerror(e));
		if (!set_sockopt(fd, SOL_SOCKET, SO_RCVBUF, value, "the receive buffer (SO_RCVBUF)",
				 error))
			return FALSE;
	}
	int effective = 0;
	socklen_t len = sizeof(effective);
	getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &effective, &len);
	g_info("netlink receive buffer: asked %d bytes, kernel set %d", value, effective);
	return TRUE;
}

static struct mnl_socket *open_socket(unsigned int groups, GError **error)
{
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (!nl) {
		int e = errno;
		g_set_error(error, CTFLOWD_ERROR, e,
			    "cannot open a ctnetlink socket: %s%s", g_strerror(e),
			    e == EPERM ? " (needs CAP_NET_ADMIN)" : "");
		return NULL;
	}
	if (mnl_socket_bind(nl, groups, MNL_SOCKET_AUTOPID) < 0) {
		int e = errno;
		mnl_socket_close(nl);
		g_set_error(error, CTFLOWD_ERROR, e,
			    "cannot subscribe to conntrack events: %s%s", g_strerror(e),
			    e == EPERM ? " (needs CAP_NET_ADMIN)" : "");
		return NULL;
	}
	return nl;
}

ct_source *ct_source_new(const struct ct_source_options *opts, ct_source_records_fn fn,
			 void *user, GError **error)
{
	unsigned int groups = NF_NETLINK_CONNTRACK_DESTROY;

	if (opts->subscribe_new)
		groups |= NF_NETLINK_CONNTRACK_NEW;

	ct_source *src = g_new0(ct_source, 1);
	src->deliver = fn;
	src->user = user;
	src->opts = *opts;

	if (!(src->events = open_socket(groups, error)))
		goto fail;
	if (!(src->dump = open_socket(0, error)))
		goto fail;
	int fd = mnl_socket_get_fd(src->events);
	if (!set_receive_buffer(fd, opts->receive_buffer, error))
		goto fail;
	if (opts->reliable && !ct_source_set_reliable(src, TRUE, error))
		goto fail;

	for (guint i = 0; i < RECV_BATCH; i++) {
		src->iov[i].iov_base = src->buffers[i];
		src->iov[i].iov_len = RECV_SIZE;
		src->msgs[i].msg_hdr.msg_iov = &src->iov[i];
		src->msgs[i].msg_hdr.msg_iovlen = 1;
	}
	return src;

fail:
	ct_source_free(src);
	return NULL;
}

int ct_source_fd(const ct_source *src)
{
	return mnl_socket_get_fd(src->events);
}

gboolean ct_source_set_reliable(ct_source *src, gboolean on, GError **error)
{
	/* NETLINK_NO_ENOBUFS stays off: the ENOBUFS error is how an overrun
	 * becomes visible, to count it and to size the buffer. */
	if (!set_sockopt(ct_source_fd(src), SOL_NETLINK, NETLINK_BROADCAST_ERROR, on ? 1 : 0,
			 "NETLINK_BROADCAST_ERROR (reliable delivery)", error))
		return FALSE;
	src->opts.reliable = on;
	return TRUE;
}

static void note_malformed(ct_source *src, const struct nlmsghdr *nlh, const char *why)
{
	src->stats.malformed++;
	/* A kernel that sends malformed messages sends many: log the first few
	 * and then every thousandth, never silently. */
	if (src->malformed_logged < 10 || src->stats.malformed % 1000 == 0) {
		src->malformed_logged++;
		g_warning("malformed conntrack message (type 0x%04x, %u bytes) dropped: %s "
			  "(%" G_GUINT64_FORMAT " so far)",
			  nlh->nlmsg_type, nlh->nlmsg_len, why, src->stats.malformed);
	}
}

/* Parses the messages of one datagram into src->records starting at *n,
 * delivering whenever the array fills. */
static void parse_datagram(ct_source *src, const uint8_t *buf, size_t len, size_t *n)
{
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
	int left = (int)len;

	while (mnl_nlmsg_ok(nlh, left)) {
		if (nlh->nlmsg_type >= NLMSG_MIN_TYPE) {
			const char *why = NULL;
			struct flow_record *r = &src->records[*n];
			src->stats.messages++;
			switch (ct_parse_message(nlh, r, &why)) {
			case CT_PARSE_OK:
				if (r->event == FLOW_EVENT_DESTROY) {
					src->stats.destroys++;
					if (!(r->flags & FLOW_HAS_COUNTERS))
						src->stats.no_counters++;
					if (!(r->flags & FLOW_HAS_TIMESTAMPS))
						src->stats.no_timestamps++;
				} else if (r->event == FLOW_EVENT_NEW) {
					src->stats.news++;
				} else if (r->event == FLOW_EVENT_DUMP) {
					src->stats.dumped++;
				}
				if (++*n == DELIVER_BATCH) {
					src->deliver(src->records, *n, src->user);
					*n = 0;
				}
				break;
			case CT_PARSE_IGNORED:
				src->stats.ignored++;
				break;
			case CT_PARSE_ERROR:
				note_malformed(src, nlh, why);
				break;
			}
		}
		nlh = mnl_nlmsg_next(nlh, &left);
	}
	if (left > 0)
		src->stats.malformed++;
}

static void note_overrun(ct_source *src)
{
	gint64 now = g_get_monotonic_time();
	gboolean new_burst = src->last_overrun_us == 0 ||
			     now - src->last_overrun_us > (gint64)src->opts.resync_delay_ms * 1000;

	src->stats.overruns++;
	src->last_overrun_us = now;
	if (!new_burst)
		return;
	src->stats.overrun_bursts++;
	if (src->opts.reliable) {
		/* DESTROYs that did not fit stay with the kernel and come again;
		 * NEW events (when subscribed) are gone. */
		g_message("netlink receive buffer overrun: the kernel holds back the DESTROY "
			  "events that did not fit and resends them%s; a larger receive_buffer "
			  "saves the retries",
			  src->opts.subscribe_new ? " (NEW events were lost)" : "");
	} else {
		g_warning("netlink receive buffer overrun: conntrack events were LOST (reliable = "
			  "no); flows that ended meanwhile will not be exported; use reliable = "
			  "yes or a larger receive_buffer");
	}
	/* A dump can only recover the state of flows that are still running,
	 * which matters when NEW events or unreliable delivery are in play. */
	if (!src->opts.reliable || src->opts.subscribe_new)
		src->resync_pending = TRUE;
}

/* Reads until the socket is empty or DRAIN_MAX_CALLS batches were taken;
 * *taken counts the datagrams. */
static gboolean drain_once(ct_source *src, guint *taken, GError **error)
{
	int fd = ct_source_fd(src);
	size_t n = 0;

	*taken = 0;

	for (int call = 0; call < DRAIN_MAX_CALLS; call++) {
		int got = recvmmsg(fd, src->msgs, RECV_BATCH, MSG_DONTWAIT, NULL);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == ENOBUFS) {
				note_overrun(src);
				continue;
			}
			int e = errno;
			if (n)
				src->deliver(src->records, n, src->user);
			g_set_error(error, CTFLOWD_ERROR, e,
				    "reading conntrack events: %s", g_strerror(e));
			return FALSE;
		}
		*taken += (guint)got;
		for (int i = 0; i < got; i++) {
			if (src->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
				src->stats.malformed++;
				g_warning("conntrack event larger than %d bytes dropped", RECV_SIZE);
				continue;
			}
			parse_datagram(src, src->buffers[i], src->msgs[i].msg_len, &n);
		}
		if (got < RECV_BATCH)
			break;
	}
	if (n)
		src->deliver(src->records, n, src->user);
	return TRUE;
}

/*
 * In a burst, waking up for every few events costs more than the events
 * themselves.  With a buffer large enough to hold what arrives meanwhile, a
 * short pause between drains lets each read take thousands at once.  With a
 * small buffer the pause would overflow it and make the kernel park and
 * resend, so small buffers are drained straight away.
 */
static guint drain_pause_us(const ct_source *src)
{
	if (src->opts.receive_buffer >= 4u << 20)
		return 5000;
	if (src->opts.receive_buffer >= 1u << 20)
		return 1000;
	return 0;
}

gboolean ct_source_drain(ct_source *src, GError **error)
{
	guint pause = drain_pause_us(src);
	guint taken;

	for (;;) {
		if (!drain_once(src, &taken, error))
			return FALSE;
		if (!pause || taken < DRAIN_BURST)
			return TRUE;
		g_usleep(pause);
	}
}

gint64 ct_source_resync_due(const ct_source *src)
{
	if (!src->resync_pending)
		return -1;
	gint64 due = src->last_overrun_us + (gint64)src->opts.resync_delay_ms * 1000;
	gint64 now = g_get_monotonic_time();
	return due <= now ? 0 : (due - now + 999) / 1000;
}

/*
 * One dump of @msg_type (the table, or the dying list); *interrupted is set
 * when the table changed under it.  With @count, entries are only counted
 * there; otherwise they are delivered as FLOW_EVENT_DUMP records.
 */
static gboolean dump_once(ct_source *src, uint16_t msg_type, gboolean *interrupted,
			  guint64 *count, GError **error)
{
	uint8_t *buf = g_malloc(DUMP_BUFFER);
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	int fd = mnl_socket_get_fd(src->dump);
	unsigned int seq = (unsigned int)time(NULL);
	unsigned int portid = mnl_socket_get_portid(src->dump);
	gboolean ok = FALSE;
	size_t n = 0;

	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | msg_type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	struct nfgenmsg *nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = AF_UNSPEC;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = 0;

	*interrupted = FALSE;
	if (mnl_socket_sendto(src->dump, nlh, nlh->nlmsg_len) < 0) {
		int e = errno;
		g_set_error(error, CTFLOWD_ERROR, e,
			    "cannot request a conntrack table dump: %s", g_strerror(e));
		goto out;
	}
	for (;;) {
		ssize_t len = recv(fd, buf, DUMP_BUFFER, 0);
		if (len < 0 && (errno == EAGAIN || errno == EINTR)) {
			struct pollfd pfd = { .fd = fd, .events = POLLIN };
			if (poll(&pfd, 1, DUMP_TIMEOUT_MS) == 0) {
				g_set_error(error, CTFLOWD_ERROR, ETIMEDOUT,
					    "conntrack table dump: no answer for %d ms",
					    DUMP_TIMEOUT_MS);
				goto out;
			}
			continue;
		}
		if (len < 0) {
			int e = errno;
			g_set_error(error, CTFLOWD_ERROR, e,
				    "reading the conntrack table dump: %s", g_strerror(e));
			goto out;
		}
		const struct nlmsghdr *m = (const struct nlmsghdr *)buf;
		int left = (int)len;
		for (; mnl_nlmsg_ok(m, left); m = mnl_nlmsg_next(m, &left)) {
			if (m->nlmsg_seq != seq || m->nlmsg_pid != portid)
				continue;
			if (m->nlmsg_flags & NLM_F_DUMP_INTR)
				*interrupted = TRUE;
			if (m->nlmsg_type == NLMSG_DONE) {
				ok = TRUE;
				goto out;
			}
			if (m->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *err = mnl_nlmsg_get_payload(m);
				g_set_error(error, CTFLOWD_ERROR, -err->error,
					    "conntrack table dump failed: %s",
					    g_strerror(-err->error));
				goto out;
			}
			if (count)
				(*count)++;
			else
				parse_datagram(src, (const uint8_t *)m, m->nlmsg_len, &n);
		}
	}
out:
	if (n)
		src->deliver(src->records, n, src->user);
	g_free(buf);
	return ok;
}

gboolean ct_source_resync(ct_source *src, GError **error)
{
	src->resync_pending = FALSE;
	src->last_overrun_us = 0;
	for (int attempt = 1; attempt <= DUMP_ATTEMPTS; attempt++) {
		gboolean interrupted;
		if (!dump_once(src, IPCTNL_MSG_CT_GET, &interrupted, NULL, error))
			return FALSE;
		if (!interrupted) {
			src->stats.resyncs++;
			g_info("conntrack table resynchronised");
			return TRUE;
		}
		g_info("conntrack table dump interrupted by changes, attempt %d of %d", attempt,
		       DUMP_ATTEMPTS);
	}
	g_warning("conntrack table kept changing during %d dumps; the last one is used",
		  DUMP_ATTEMPTS);
	src->stats.resyncs++;
	return TRUE;
}

gboolean ct_source_held_back(ct_source *src, guint64 *count, GError **error)
{
	gboolean interrupted;

	*count = 0;
	return dump_once(src, IPCTNL_MSG_CT_GET_DYING, &interrupted, count, error);
}

const struct ct_source_stats *ct_source_get_stats(const ct_source *src)
{
	return &src->stats;
}

void ct_source_free(ct_source *src)
{
	if (!src)
		return;
	if (src->events)
		mnl_socket_close(src->events);
	if (src->dump)
		mnl_socket_close(src->dump);
	g_free(src);
}
