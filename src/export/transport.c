/*
 * transport.c - UDP, TCP, file, standard output and local syslog socket
 * destinations.
 *
 * All of them run on their export thread and may block it: a transport never
 * runs on the thread that drains netlink.  Blocking is bounded (connect and
 * send time-outs) so that a dead TCP peer turns into a reconnect, and a
 * daemon that stops can give up on it.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <poll.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctflowd/datagrams.h"
#include "ctflowd/state_dir.h"
#include "ctflowd/transport.h"

#define CONNECT_TIMEOUT_MS 5000
#define SEND_TIMEOUT_S 30
/* UDP: what one transport_flush() may send, several wake-ups' messages */
#define QUEUE_BYTES (256 * 1024)
/* syslog: a message a record, a few hundred bytes each; a queue as long as
 * several wake-ups' records lets many of one length go as one GSO send */
#define SYSLOG_QUEUE_MESSAGES 1024
#define SYSLOG_QUEUE_BYTES (1024 * 1024)

G_DEFINE_QUARK(ctflowd-transport-error-quark, transport_error)

struct transport {
	const struct export_config *cfg;
	int fd;
	char *description;
	gboolean refused_reported;   /* UDP: one line per outage, not per datagram */
	guint64 written;             /* bytes since open */
	datagrams *queue;            /* UDP: messages for the next flush */
	gboolean gso;                /* UDP: runs of one size go as one GSO send */
	gboolean peer_closed;        /* TCP: the last session ended with the peer's FIN */
};

transport *transport_new(const struct export_config *cfg)
{
	transport *t = g_new0(transport, 1);

	t->cfg = cfg;
	t->fd = -1;
	switch (cfg->transport) {
	case EXPORT_TRANSPORT_UDP:
		/* syslog messages carry no sequence: their order is free */
		t->queue = cfg->format == EXPORT_FORMAT_SYSLOG
				   ? datagrams_new_any_order(SYSLOG_QUEUE_BYTES, SYSLOG_QUEUE_MESSAGES)
				   : datagrams_new(QUEUE_BYTES);
		/* fall through */
	case EXPORT_TRANSPORT_TCP:
		t->description = g_strdup_printf("%s %s%s%s:%s", export_transport_name(cfg->transport),
						 strchr(cfg->host, ':') ? "[" : "", cfg->host,
						 strchr(cfg->host, ':') ? "]" : "", cfg->port);
		break;
	case EXPORT_TRANSPORT_FILE:
		t->description = g_strdup_printf("file %s", cfg->path);
		break;
	case EXPORT_TRANSPORT_STDOUT:
		t->description = g_strdup("stdout");
		break;
	case EXPORT_TRANSPORT_LOCAL:
		t->description = g_strdup_printf("local %s", cfg->path);
		break;
	}
	return t;
}

const char *transport_describe(const transport *t)
{
	return t->description;
}

gboolean transport_is_open(const transport *t)
{
	return t->fd >= 0;
}

static gboolean fail_errno(transport *t, GError **error, int e, const char *what)
{
	g_set_error(error, TRANSPORT_ERROR, e, "%s: %s: %s", t->description, what, g_strerror(e));
	return FALSE;
}

/* Connect with a time-out: a collector host that drops SYNs must not hold
 * the export thread for the kernel's two minutes. */
static int connect_bounded(int fd, const struct sockaddr *sa, socklen_t len, int *err)
{
	int flags = fcntl(fd, F_GETFL);

	fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	int rc = connect(fd, sa, len);
	if (rc < 0 && errno == EINPROGRESS) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		rc = poll(&p, 1, CONNECT_TIMEOUT_MS);
		if (rc == 0) {
			*err = ETIMEDOUT;
			return -1;
		}
		if (rc < 0) {
			*err = errno;
			return -1;
		}
		/* POLLOUT says the attempt ended, not how: SO_ERROR tells */
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0) {
			*err = errno;
			return -1;
		}
		if (soerr) {
			*err = soerr;
			return -1;
		}
		rc = 0;
	} else if (rc < 0) {
		*err = errno;
		return -1;
	}
	fcntl(fd, F_SETFL, flags);
	return rc;
}

/*
 * SO_SNDTIMEO is the only bound on a blocking send to a collector that
 * stopped reading: without it a stop could wait forever, so a socket that
 * refuses it is not used.  Keep-alive only finds a dead peer sooner.
 */
static gboolean bound_sends(int fd, int *err)
{
	struct timeval tv = { .tv_sec = SEND_TIMEOUT_S };

	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
		*err = errno;
		g_warning("cannot bound sends (SO_SNDTIMEO): %s", g_strerror(errno));
		return FALSE;
	}
	return TRUE;
}

static gboolean bound_tcp_sends(int fd, int *err)
{
	int on = 1;

	if (!bound_sends(fd, err))
		return FALSE;
	if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) < 0)
		g_debug("SO_KEEPALIVE: %s", g_strerror(errno));
	return TRUE;
}

/*
 * Setting UDP_SEGMENT to 0 (no size for every send) changes nothing; it
 * only fails on a kernel without UDP GSO (before 4.18).  Such a kernel
 * would skip the per-send size as a control message it does not know and
 * send a whole run of messages as one datagram.
 */
static gboolean kernel_has_udp_gso(int fd)
{
	int none = 0;

	return setsockopt(fd, SOL_UDP, UDP_SEGMENT, &none, sizeof(none)) == 0;
}

/*
 * source_port: a NetFlow v9 collector may key the templates it learnt on
 * the exporter's address and port; with a port of the kernel's choosing,
 * every restart looks like a new exporter whose templates are not known
 * yet.  SO_REUSEADDR lets a restarted worker bind while the socket of the
 * one before is still closing.
 */
/* The port kept in the export's port_file, 0: none (or not readable). */
static guint remembered_port(transport *t)
{
	g_autoptr(GError) error = NULL;
	char buf[16] = "";
	guint64 port = 0;

	if (!t->cfg->port_file)
		return 0;
	int fd = state_dir_open_path(t->cfg->port_file, O_RDONLY, 0, &error);
	if (fd < 0) {
		if (error->code != ENOENT)
			g_warning("%s: %s; the kernel picks the source port", t->description,
				  error->message);
		return 0;
	}
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0 || !g_ascii_string_to_unsigned(g_strchomp(buf), 10, 1, 65535, &port, NULL)) {
		g_warning("%s: %s does not hold a port; the kernel picks the source port",
			  t->description, t->cfg->port_file);
		return 0;
	}
	return (guint)port;
}

/* Keeps the port the socket sends from for the next start, when it changed. */
static void remember_port(transport *t, int fd)
{
	g_autoptr(GError) error = NULL;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (!t->cfg->port_file || getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return;
	guint port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						    : ((struct sockaddr_in *)&ss)->sin_port);
	if (port == remembered_port(t))
		return;
	g_autofree char *text = g_strdup_printf("%u\n", port);
	int out = state_dir_open_path(t->cfg->port_file, O_WRONLY | O_CREAT | O_TRUNC, 0640, &error);
	if (out < 0 || write(out, text, strlen(text)) != (ssize_t)strlen(text) || fsync(out) < 0)
		g_warning("%s: cannot keep the source port %u for the next start: %s",
			  t->description, port, error ? error->message : g_strerror(errno));
	if (out >= 0)
		close(out);
}

static gboolean bind_source_port(int fd, int family, guint port, int *err)
{
	int on = 1;
	struct sockaddr_storage ss = {0};
	socklen_t len;

	if (family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		a->sin6_addr = in6addr_any;
		len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		a->sin_addr.s_addr = htonl(INADDR_ANY);
		len = sizeof(*a);
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, len) < 0) {
		*err = errno;
		return FALSE;
	}
	return TRUE;
}

static gboolean open_socket(transport *t, GError **error)
{
	gboolean tcp = t->cfg->transport == EXPORT_TRANSPORT_TCP;
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = tcp ? SOCK_STREAM : SOCK_DGRAM,
		.ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV,
	};
	struct addrinfo *res = NULL;
	int gai = getaddrinfo(t->cfg->host, t->cfg->port, &hints, &res);
	if (gai) {
		g_set_error(error, TRANSPORT_ERROR, EHOSTUNREACH, "%s: cannot resolve %s: %s",
			    t->description, t->cfg->host, gai_strerror(gai));
		return FALSE;
	}
	int last = ECONNREFUSED;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			last = errno;
			continue;
		}
		guint remembered = tcp || t->cfg->source_port ? 0 : remembered_port(t);
		if (remembered && !bind_source_port(fd, ai->ai_family, remembered, &last)) {
			/* taken by another program meanwhile: a new one, kept */
			g_warning("%s: cannot send from port %u again (%s); the kernel picks another",
				  t->description, remembered, g_strerror(last));
			close(fd);
			fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
			if (fd < 0) {
				last = errno;
				continue;
			}
		}
		if (!tcp && t->cfg->source_port &&
		    !bind_source_port(fd, ai->ai_family, t->cfg->source_port, &last)) {
			close(fd);
			g_set_error(error, TRANSPORT_ERROR, last, "%s: cannot send from port %u: %s",
				    t->description, t->cfg->source_port, g_strerror(last));
			freeaddrinfo(res);
			return FALSE;
		}
		if (connect_bounded(fd, ai->ai_addr, ai->ai_addrlen, &last) < 0) {
			close(fd);
			continue;
		}
		if (tcp && !bound_tcp_sends(fd, &last)) {
			close(fd);
			continue;
		}
		t->fd = fd;
		t->refused_reported = FALSE;
		if (!tcp)
			t->gso = kernel_has_udp_gso(fd);
		if (!tcp && !t->cfg->source_port)
			remember_port(t, fd);
		freeaddrinfo(res);
		return TRUE;
	}
	freeaddrinfo(res);
	return fail_errno(t, error, last, "cannot connect");
}

/*
 * The local syslog socket is a Unix datagram socket: a datagram is taken
 * whole into the reader's queue, or the send blocks while that queue is
 * full (bounded by SO_SNDTIMEO), or fails when the reader is gone (a
 * restarted syslog daemon binds a new socket: this one then refuses every
 * send until it is reopened).
 */
static gboolean open_local(transport *t, GError **error)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int err = 0;

	if (strlen(t->cfg->path) >= sizeof(sa.sun_path))
		return fail_errno(t, error, ENAMETOOLONG, "cannot connect");
	memcpy(sa.sun_path, t->cfg->path, strlen(t->cfg->path) + 1);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail_errno(t, error, errno, "cannot create a socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = errno;
		close(fd);
		return fail_errno(t, error, err, "cannot connect");
	}
	if (!bound_sends(fd, &err)) {
		close(fd);
		return fail_errno(t, error, err, "cannot connect");
	}
	t->fd = fd;
	return TRUE;
}

/* One whole datagram, or the transport is closed: what it refused goes
 * again to the reopened socket. */
static gboolean send_local(transport *t, const uint8_t *msg, size_t len, GError **error)
{
	for (;;) {
		ssize_t n = send(t->fd, msg, len, MSG_NOSIGNAL);
		if (n == (ssize_t)len) {
			t->written += len;
			return TRUE;
		}
		if (n < 0 && errno == EINTR)
			continue;
		int e = n < 0 ? (errno == EAGAIN ? ETIMEDOUT : errno) : EMSGSIZE;
		transport_close(t);
		return fail_errno(t, error, e, "datagram not sent");
	}
}

static gboolean open_file(transport *t, GError **error)
{
	/* a link at the export path may point at any file of the host */
	int fd = open(t->cfg->path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (fd < 0)
		return fail_errno(t, error, errno,
				  errno == ELOOP ? "a symbolic link, not followed" :
						   "cannot open for appending");
	t->fd = fd;
	return TRUE;
}

gboolean transport_open(transport *t, GError **error)
{
	transport_close(t);
	t->written = 0;
	t->peer_closed = FALSE;
	switch (t->cfg->transport) {
	case EXPORT_TRANSPORT_UDP:
	case EXPORT_TRANSPORT_TCP:
		return open_socket(t, error);
	case EXPORT_TRANSPORT_FILE:
		return open_file(t, error);
	case EXPORT_TRANSPORT_STDOUT:
		t->fd = dup(STDOUT_FILENO);
		if (t->fd < 0)
			return fail_errno(t, error, errno, "cannot use standard output");
		return TRUE;
	case EXPORT_TRANSPORT_LOCAL:
		return open_local(t, error);
	}
	return FALSE;
}

static gboolean send_datagram(transport *t, const uint8_t *msg, size_t len, GError **error)
{
	for (;;) {
		ssize_t n = send(t->fd, msg, len, 0);
		if (n == (ssize_t)len) {
			t->refused_reported = FALSE;
			t->written += len;
			return TRUE;
		}
		if (n < 0 && errno == EINTR)
			continue;
		/* ECONNREFUSED reports an ICMP error for an earlier datagram: the
		 * collector is not listening.  The socket stays usable. */
		int e = n < 0 ? errno : EMSGSIZE;
		return fail_errno(t, error, e, "datagram not sent");
	}
}

/* Writes all of @msg; on a file, a failed write is cut back off so that the
 * file never holds half a message. */
static gboolean write_all(transport *t, const uint8_t *msg, size_t len, GError **error)
{
	gboolean is_file = t->cfg->transport == EXPORT_TRANSPORT_FILE;
	off_t before = is_file ? lseek(t->fd, 0, SEEK_END) : 0;
	size_t done = 0;

	while (done < len) {
		ssize_t n = is_file || t->cfg->transport == EXPORT_TRANSPORT_STDOUT
				    ? write(t->fd, msg + done, len - done)
				    : send(t->fd, msg + done, len - done, MSG_NOSIGNAL);
		if (n > 0) {
			done += (size_t)n;
			t->written += (guint64)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		int e = n < 0 ? errno : EIO;
		if (is_file && done && ftruncate(t->fd, before) < 0)
			g_warning("%s: cannot cut off a partly written message: %s", t->description,
				  g_strerror(errno));
		transport_close(t);
		return fail_errno(t, error, e == EAGAIN ? ETIMEDOUT : e,
				  done ? "write broke off mid-message" : "write failed");
	}
	return TRUE;
}

/* At most this much of what a collector sends back is read per check: a
 * chatty peer costs the export thread one bounded read, never a loop. */
#define DRAIN_MAX (64 * 1024)

/* IPFIX over TCP is one-way, but a collector may still send something (a
 * greeting, keepalive bytes).  That is read and dropped; only the end of the
 * stream, a hang-up or a socket error means the connection is gone. */
gboolean transport_check_peer(transport *t, GError **error)
{
	if (t->cfg->transport != EXPORT_TRANSPORT_TCP)
		return TRUE;
	if (t->fd < 0) {
		g_set_error(error, TRANSPORT_ERROR, ENOTCONN, "%s: not open", t->description);
		return FALSE;
	}
	struct pollfd p = { .fd = t->fd, .events = POLLIN | POLLRDHUP };
	if (poll(&p, 1, 0) <= 0)
		return TRUE;
	if (p.revents & (POLLERR | POLLNVAL)) {
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || !soerr)
			soerr = ECONNRESET;
		transport_close(t);
		return fail_errno(t, error, soerr, "connection lost");
	}
	gboolean eof = (p.revents & (POLLHUP | POLLRDHUP)) != 0;
	for (size_t drained = 0; !eof && drained < DRAIN_MAX;) {
		char junk[4096];
		ssize_t n = recv(t->fd, junk, sizeof(junk), MSG_DONTWAIT);
		if (n > 0) {
			drained += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return TRUE;
		if (n < 0) {
			int e = errno;
			transport_close(t);
			return fail_errno(t, error, e, "connection lost");
		}
		eof = TRUE;
	}
	if (!eof)
		return TRUE;
	transport_close(t);
	/* Not a reset: Linux resets a connection closed with bytes unread,
	 * so a FIN says the collector read all it had taken. */
	t->peer_closed = TRUE;
	g_set_error(error, TRANSPORT_ERROR, ECONNRESET, "%s: the collector closed the connection",
		    t->description);
	return FALSE;
}

gboolean transport_peer_closed(const transport *t)
{
	return t->peer_closed;
}

void transport_shutdown_write(transport *t)
{
	if (t->fd >= 0 && t->cfg->transport == EXPORT_TRANSPORT_TCP)
		(void)shutdown(t->fd, SHUT_WR);
}

gboolean transport_send(transport *t, const uint8_t *msg, size_t len, GError **error)
{
	if (t->fd < 0) {
		g_set_error(error, TRANSPORT_ERROR, ENOTCONN, "%s: not open", t->description);
		return FALSE;
	}
	if (t->cfg->transport == EXPORT_TRANSPORT_UDP)
		return send_datagram(t, msg, len, error);
	if (t->cfg->transport == EXPORT_TRANSPORT_LOCAL)
		return send_local(t, msg, len, error);
	/* a connection found gone before writing: the message is not sent
	 * into a void, where it would only be found missing later */
	if (!transport_check_peer(t, error))
		return FALSE;
	return write_all(t, msg, len, error);
}

gboolean transport_queue(transport *t, const uint8_t *msg, size_t len)
{
	return t->queue && t->fd >= 0 && datagrams_add(t->queue, msg, len);
}

guint transport_queued(const transport *t)
{
	return t->queue ? datagrams_count(t->queue) : 0;
}

static int send_many(int fd, struct mmsghdr *vec, unsigned int n, void *user)
{
	(void)user;
	return sendmmsg(fd, vec, n, 0);
}

guint transport_flush(transport *t, GError **error)
{
	if (!transport_queued(t))
		return 0;
	gboolean had_gso = t->gso;
	struct datagrams_result r = datagrams_send(t->queue, t->fd, &t->gso, send_many, NULL);
	if (had_gso && !t->gso)
		g_debug("%s: the path refuses UDP GSO; one datagram per send from now on",
			t->description);
	t->written += r.bytes;
	if (r.refused) {
		g_autofree char *what = g_strdup_printf("%u of %u datagrams not sent", r.refused,
							r.refused + r.sent);
		fail_errno(t, error, r.first_errno, what);
	}
	return r.refused;
}

guint64 transport_bytes_written(const transport *t)
{
	return t->written;
}

gboolean transport_unacked(const transport *t, guint64 *unacked)
{
	int queued = 0;

	*unacked = 0;
	if (t->fd < 0 || t->cfg->transport != EXPORT_TRANSPORT_TCP)
		return TRUE;
	if (ioctl(t->fd, SIOCOUTQ, &queued) < 0)
		return FALSE;
	*unacked = (guint64)MAX(queued, 0);
	return TRUE;
}

/*
 * The route's MTU, but never more than Ethernet's 1500: collectors size
 * their receive buffers for what hardware exporters send (pmacct's nfacctd
 * reads about 10 KB of a datagram and drops the rest), and a collector on
 * the same host would otherwise get loopback's 64 KB datagrams.
 */
#define ETHERNET_MTU 1500

guint transport_message_limit(const transport *t)
{
	if (t->cfg->mtu || t->fd < 0 || t->cfg->transport != EXPORT_TRANSPORT_UDP)
		return t->cfg->mtu ? t->cfg->mtu : 65000;

	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int mtu = 0;
	socklen_t ml = sizeof(mtu);
	gboolean v6 = getsockname(t->fd, (struct sockaddr *)&ss, &sl) == 0 &&
		      ss.ss_family == AF_INET6;
	int rc = v6 ? getsockopt(t->fd, IPPROTO_IPV6, IPV6_MTU, &mtu, &ml)
		    : getsockopt(t->fd, IPPROTO_IP, IP_MTU, &mtu, &ml);
	if (rc < 0 || mtu <= 0)
		return 1400;   /* fits any Ethernet path with room for tunnels */
	int headers = (v6 ? 40 : 20) + 8;
	return (guint)CLAMP(MIN(mtu, ETHERNET_MTU) - headers, 512, 65000);
}

gboolean transport_sync(transport *t, GError **error)
{
	if (t->fd < 0 || t->cfg->transport != EXPORT_TRANSPORT_FILE || !t->cfg->sync)
		return TRUE;
	if (fdatasync(t->fd) < 0) {
		int e = errno;
		transport_close(t);
		return fail_errno(t, error, e, "fdatasync failed");
	}
	return TRUE;
}

void transport_close(transport *t)
{
	/* unsent messages go again, re-encoded, after the rewind */
	if (t->queue)
		datagrams_clear(t->queue);
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
}

void transport_free(transport *t)
{
	if (!t)
		return;
	transport_close(t);
	datagrams_free(t->queue);
	g_free(t->description);
	g_free(t);
}
