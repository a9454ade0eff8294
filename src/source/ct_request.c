/*
 * ct_request.c - dumps of the conntrack table and the dying list, bounded
 * in time, on a socket that is replaced when a dump is left half-way.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctflowd/ct_request.h"
#include "ctflowd/ct_socket.h"
#include "ctflowd/error.h"
#include "ctflowd/netns.h"

/* CTA_FILTER_ORIG_FLAGS bit for the protocol number: part of the ABI, but
 * defined in the kernel's net/netfilter/nf_internals.h, not in its uapi. */
#define FILTER_FLAG_PROTO_NUM (1u << 3)

/* The kernel sizes a dump's parts by the largest read the socket has seen,
 * up to 32 KiB; a buffer of that size never truncates one. */
#define REPLY_BUFFER 32768

struct ct_request {
	int fd;          /* -1 until the next request opens one */
	int netns_fd;    /* the namespace sockets are opened in */
	guint32 seq;
	struct ct_dump_filter filter;   /* of table dumps */
};

const struct nlmsghdr *ct_request_next_message(const void *buf, size_t len, size_t *offset)
{
	if (*offset >= len || len - *offset < sizeof(struct nlmsghdr))
		return NULL;
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)((const uint8_t *)buf + *offset);
	size_t left = len - *offset;
	size_t msg_len = nlh->nlmsg_len;

	if (msg_len < sizeof(struct nlmsghdr) || msg_len > left)
		return NULL;
	*offset += MIN(NLMSG_ALIGN(msg_len), left);
	return nlh;
}

static gboolean same_namespace(int netns_fd)
{
	struct stat want, now;
	int cur = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	gboolean same = cur >= 0 && fstat(cur, &now) == 0 && fstat(netns_fd, &want) == 0 &&
			now.st_dev == want.st_dev && now.st_ino == want.st_ino;

	if (cur >= 0)
		close(cur);
	return same;
}

/* A socket in the handle's namespace, whatever namespace the calling thread
 * is in now: sockets keep the namespace they were created in. */
static gboolean reopen(ct_request *req, GError **error)
{
	if (same_namespace(req->netns_fd)) {
		req->fd = ct_socket_open(error);
		return req->fd >= 0;
	}
	/* the descriptor's /proc link opens the namespace it refers to */
	g_autofree char *path = g_strdup_printf("/proc/self/fd/%d", req->netns_fd);
	int saved = netns_enter(path, error);
	if (saved < 0)
		return FALSE;
	req->fd = ct_socket_open(error);
	if (!netns_leave(saved, req->fd < 0 ? NULL : error)) {
		close(req->fd);
		req->fd = -1;
	}
	return req->fd >= 0;
}

/* After a dump left half-way the kernel still holds its state on the
 * socket: only a new socket takes the next request. */
static void abandon(ct_request *req)
{
	if (req->fd >= 0)
		close(req->fd);
	req->fd = -1;
}

ct_request *ct_request_new(GError **error)
{
	ct_request *req = g_new0(ct_request, 1);

	req->fd = -1;
	req->seq = (guint32)g_get_real_time();
	req->netns_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (req->netns_fd < 0) {
		int e = errno;
		g_set_error(error, CTFLOWD_ERROR, e,
			    "cannot open the current network namespace for conntrack requests: %s",
			    g_strerror(e));
		ct_request_free(req);
		return NULL;
	}
	req->fd = ct_socket_open(error);
	if (req->fd < 0) {
		ct_request_free(req);
		return NULL;
	}
	return req;
}

void ct_request_free(ct_request *req)
{
	if (!req)
		return;
	if (req->fd >= 0)
		close(req->fd);
	if (req->netns_fd >= 0)
		close(req->netns_fd);
	g_free(req);
}

static const char *list_name(enum ct_request_list list)
{
	return list == CT_REQUEST_DYING ? "dump of the conntrack dying list"
					: "dump of the conntrack table";
}

void ct_request_set_filter(ct_request *req, const struct ct_dump_filter *filter)
{
	if (filter)
		req->filter = *filter;
	else
		memset(&req->filter, 0, sizeof(req->filter));
}

/* The filter attributes of a table dump (see struct ct_dump_filter). */
static void put_dump_filter(struct nlmsghdr *nlh, const struct ct_dump_filter *f)
{
	if (f->has_mark) {
		mnl_attr_put_u32(nlh, CTA_MARK, htonl(f->mark));
		mnl_attr_put_u32(nlh, CTA_MARK_MASK, htonl(f->mark_mask));
	}
	if (f->has_zone)
		mnl_attr_put_u16(nlh, CTA_ZONE, htons(f->zone));
	/* the kernel takes a tuple filter only for one family (EOPNOTSUPP
	 * for both): a protocol without one is left to the caller */
	if (f->has_proto && f->family) {
		struct nlattr *filter = mnl_attr_nest_start(nlh, CTA_FILTER);
		mnl_attr_put_u32(nlh, CTA_FILTER_ORIG_FLAGS, FILTER_FLAG_PROTO_NUM);
		mnl_attr_put_u32(nlh, CTA_FILTER_REPLY_FLAGS, 0);
		mnl_attr_nest_end(nlh, filter);
		struct nlattr *tuple = mnl_attr_nest_start(nlh, CTA_TUPLE_ORIG);
		struct nlattr *proto = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
		mnl_attr_put_u8(nlh, CTA_PROTO_NUM, f->proto);
		mnl_attr_nest_end(nlh, proto);
		mnl_attr_nest_end(nlh, tuple);
	}
}

static gboolean send_dump(ct_request *req, enum ct_request_list list, GError **error)
{
	_Alignas(struct nlmsghdr) uint8_t buf[256];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	const gboolean table = list == CT_REQUEST_TABLE;

	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) |
			  (table ? IPCTNL_MSG_CT_GET : IPCTNL_MSG_CT_GET_DYING);
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = ++req->seq;
	struct nfgenmsg *nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = table ? req->filter.family : AF_UNSPEC;
	nfg->version = NFNETLINK_V0;
	if (table)
		put_dump_filter(nlh, &req->filter);
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };

	if (sendto(req->fd, nlh, nlh->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0) {
		int e = errno;
		g_set_error(error, CTFLOWD_ERROR, e, "cannot request a %s: %s%s", list_name(list),
			    g_strerror(e), e == EPERM ? " (needs CAP_NET_ADMIN)" : "");
		return FALSE;
	}
	return TRUE;
}

/* Tells a stop by the caller's callback from the end of the dump. */
struct stop_watch {
	ct_request_entry_fn fn;
	void *user;
	gboolean stopped;
};

static gboolean watch_entry(const struct nlmsghdr *nlh, void *user)
{
	struct stop_watch *w = user;

	if (w->fn(nlh, w->user))
		return TRUE;
	w->stopped = TRUE;
	return FALSE;
}

gboolean ct_request_dump(ct_request *req, enum ct_request_list list, gint64 deadline_us,
			 ct_request_entry_fn fn, void *user, gboolean *interrupted,
			 GError **error)
{
	struct stop_watch watch = { .fn = fn, .user = user };

	*interrupted = FALSE;
	if (req->fd < 0 && !reopen(req, error))
		return FALSE;
	gboolean ok = send_dump(req, list, error) &&
		      ct_request_collect(req->fd, req->seq, deadline_us, watch_entry, &watch,
					 interrupted, list_name(list), error);
	if (!ok || watch.stopped)
		abandon(req);
	return ok;
}

static gboolean stop_at_first(const struct nlmsghdr *nlh, void *user)
{
	*(gboolean *)user = TRUE;
	return FALSE;
}

gboolean ct_request_any_parked(ct_request *req, gint64 deadline_us, gboolean *any,
			       GError **error)
{
	gboolean interrupted;

	*any = FALSE;
	return ct_request_dump(req, CT_REQUEST_DYING, deadline_us, stop_at_first, any,
			       &interrupted, error);
}

/* Milliseconds for poll() until @deadline_us, rounded up so that a wait
 * does not end just before it; 0 once it passed. */
static int ms_until(gint64 deadline_us)
{
	gint64 left = deadline_us - g_get_monotonic_time();

	return left <= 0 ? 0 : (int)MIN((left + 999) / 1000, G_MAXINT);
}

/* One datagram from the kernel into @buf: its length, 0 when the deadline
 * passed first, -1 on an error (set). */
static ssize_t receive_from_kernel(int fd, uint8_t *buf, size_t size, gint64 deadline_us,
				   const char *what, GError **error)
{
	for (;;) {
		struct sockaddr_nl from;
		struct iovec iov = { .iov_base = buf, .iov_len = size };
		struct msghdr mh = {
			.msg_name = &from, .msg_namelen = sizeof(from),
			.msg_iov = &iov, .msg_iovlen = 1,
		};
		ssize_t len = recvmsg(fd, &mh, MSG_DONTWAIT);

		if (len < 0) {
			int e = errno;
			if (e == EINTR)
				continue;
			if (e != EAGAIN && e != EWOULDBLOCK) {
				g_set_error(error, CTFLOWD_ERROR, e, "reading the %s: %s", what,
					    g_strerror(e));
				return -1;
			}
			int wait_ms = ms_until(deadline_us);
			struct pollfd p = { .fd = fd, .events = POLLIN };
			if (wait_ms == 0)
				return 0;
			if (poll(&p, 1, wait_ms) < 0 && errno != EINTR) {
				e = errno;
				g_set_error(error, CTFLOWD_ERROR, e, "waiting for the %s: %s", what,
					    g_strerror(e));
				return -1;
			}
			continue;
		}
		if (mh.msg_flags & MSG_TRUNC) {
			g_set_error(error, CTFLOWD_ERROR, EMSGSIZE,
				    "reading the %s: a reply is larger than %zu bytes", what, size);
			return -1;
		}
		/* anything else is a forgery by a local process */
		if (mh.msg_namelen >= sizeof(from) && ct_netlink_from_kernel(&from))
			return len;
		if (ms_until(deadline_us) == 0)
			return 0;
	}
}

gboolean ct_request_collect(int fd, guint32 seq, gint64 deadline_us, ct_request_entry_fn fn,
			    void *user, gboolean *interrupted, const char *what,
			    GError **error)
{
	g_autofree uint8_t *buf = g_malloc(REPLY_BUFFER);
	struct sockaddr_nl self;
	socklen_t self_len = sizeof(self);
	guint64 entries = 0;

	*interrupted = FALSE;
	if (getsockname(fd, (struct sockaddr *)&self, &self_len) < 0) {
		int e = errno;
		g_set_error(error, CTFLOWD_ERROR, e, "%s: not a netlink socket: %s", what,
			    g_strerror(e));
		return FALSE;
	}
	for (;;) {
		ssize_t len = receive_from_kernel(fd, buf, REPLY_BUFFER, deadline_us, what, error);
		if (len < 0)
			return FALSE;
		if (len == 0)
			break;
		const struct nlmsghdr *m;
		size_t offset = 0;
		while ((m = ct_request_next_message(buf, (size_t)len, &offset))) {
			if (m->nlmsg_seq != seq || m->nlmsg_pid != self.nl_pid)
				continue;
			if (m->nlmsg_flags & NLM_F_DUMP_INTR)
				*interrupted = TRUE;
			if (m->nlmsg_type == NLMSG_DONE) {
				int status = 0;
				if (m->nlmsg_len >= NLMSG_LENGTH(sizeof(status)))
					memcpy(&status, NLMSG_DATA(m), sizeof(status));
				if (status < 0) {
					g_set_error(error, CTFLOWD_ERROR, -status, "%s failed: %s",
						    what, g_strerror(-status));
					return FALSE;
				}
				return TRUE;
			}
			if (m->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr err = { .error = -EBADMSG };
				if (m->nlmsg_len >= NLMSG_LENGTH(sizeof(err.error)))
					memcpy(&err.error, NLMSG_DATA(m), sizeof(err.error));
				if (err.error == 0)
					return TRUE;
				g_set_error(error, CTFLOWD_ERROR, -err.error, "%s failed: %s", what,
					    g_strerror(-err.error));
				return FALSE;
			}
			if (m->nlmsg_type < NLMSG_MIN_TYPE)
				continue;
			entries++;
			if (!fn(m, user))
				return TRUE;
		}
		/* a dump that keeps sending is bounded too, not only the waits */
		if (ms_until(deadline_us) == 0)
			break;
	}
	g_set_error(error, CTFLOWD_ERROR, ETIMEDOUT,
		    "%s: no end by the deadline (%" G_GUINT64_FORMAT " entries read); left unfinished",
		    what, entries);
	return FALSE;
}
