/*
 * test_transport.c - what a transport does on its own: the message size a
 * UDP export picks, and how a TCP export reads its peer.
 *
 * mtu = auto follows the route's MTU but never past Ethernet's 1500, also on
 * loopback (MTU 65536), where pmacct's nfacctd would otherwise get datagrams
 * of 64 KB and read only their first 10 KB.  Opening a UDP transport only
 * connects its socket: no datagram is sent.
 *
 * Each TCP case connects a real transport to a listener of its own on
 * 127.0.0.1 (an ephemeral port) and plays the collector with the accepted
 * socket: it talks back, floods, closes or resets.  Bytes from the peer
 * must never count as a close; the end of the stream, a reset or a socket
 * error must, and must close the transport with an error that says which.
 */
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctflowd/transport.h"

struct link {
	struct export_config cfg;
	char port[8];
	transport *t;
	int peer;    /* the collector's end */
};

/* A transport connected to a listener on 127.0.0.1; the collector's end is
 * accepted with a receive buffer of @peer_rcvbuf bytes (0: the default). */
static void link_open(struct link *l, int peer_rcvbuf)
{
	int lsock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	g_autoptr(GError) error = NULL;

	g_assert_cmpint(lsock, >=, 0);
	/* set before listen(): the accepted socket inherits it and advertises
	 * its window from it during the handshake */
	if (peer_rcvbuf)
		g_assert_cmpint(setsockopt(lsock, SOL_SOCKET, SO_RCVBUF, &peer_rcvbuf,
					   sizeof(peer_rcvbuf)), ==, 0);
	g_assert_cmpint(bind(lsock, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
	g_assert_cmpint(listen(lsock, 1), ==, 0);
	g_assert_cmpint(getsockname(lsock, (struct sockaddr *)&sa, &sl), ==, 0);
	g_snprintf(l->port, sizeof(l->port), "%u", ntohs(sa.sin_port));
	l->cfg = (struct export_config){
		.name = (char *)"test",
		.format = EXPORT_FORMAT_IPFIX,
		.transport = EXPORT_TRANSPORT_TCP,
		.host = (char *)"127.0.0.1",
		.port = l->port,
		.reconnect_min_ms = 100,
		.reconnect_max_ms = 1000,
	};
	l->t = transport_new(&l->cfg);
	g_assert_true(transport_open(l->t, &error));
	g_assert_no_error(error);
	l->peer = accept4(lsock, NULL, NULL, SOCK_CLOEXEC);
	g_assert_cmpint(l->peer, >=, 0);
	close(lsock);
}

static void link_close(struct link *l)
{
	transport_free(l->t);
	if (l->peer >= 0)
		close(l->peer);
}

static void peer_write(struct link *l, const void *buf, size_t len)
{
	g_assert_cmpint(send(l->peer, buf, len, MSG_NOSIGNAL), ==, (ssize_t)len);
}

/* The collector reads exactly @len bytes and compares them with @want. */
static void peer_expect(struct link *l, const char *want, size_t len)
{
	g_autofree char *got = g_malloc(len);
	size_t done = 0;

	while (done < len) {
		ssize_t n = recv(l->peer, got + done, len - done, 0);
		g_assert_cmpint(n, >, 0);
		done += (size_t)n;
	}
	g_assert_cmpmem(got, len, want, len);
}

/* Closes the collector's end with a reset (SO_LINGER 0) instead of a FIN. */
static void peer_reset(struct link *l)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	g_assert_cmpint(setsockopt(l->peer, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), ==, 0);
	close(l->peer);
	l->peer = -1;
}

static void check_ok(struct link *l)
{
	g_autoptr(GError) error = NULL;

	g_assert_true(transport_check_peer(l->t, &error));
	g_assert_no_error(error);
	g_assert_true(transport_is_open(l->t));
}

static void send_ok(struct link *l, const char *msg)
{
	g_autoptr(GError) error = NULL;

	g_assert_true(transport_send(l->t, (const uint8_t *)msg, strlen(msg), &error));
	g_assert_no_error(error);
}

/* Repeats the check until it fails (the loopback may take a moment to
 * deliver a FIN or RST); returns the error, the transport must be closed. */
static GError *check_until_broken(struct link *l)
{
	GError *error = NULL;

	for (int i = 0; i < 200 && transport_check_peer(l->t, &error); i++)
		g_usleep(10 * 1000);
	g_assert_nonnull(error);
	g_assert_false(transport_is_open(l->t));
	return error;
}

/* A collector that greets, and talks now and then: every message still goes
 * out on the same connection, whole and in order. */
static void test_peer_talks(void)
{
	struct link l;

	link_open(&l, 0);
	peer_write(&l, "!", 1);
	g_usleep(20 * 1000);
	check_ok(&l);
	send_ok(&l, "first message");
	peer_expect(&l, "first message", 13);
	for (int i = 0; i < 20; i++) {
		peer_write(&l, "keepalive\n", 10);
		check_ok(&l);
		send_ok(&l, "more");
		peer_expect(&l, "more", 4);
	}
	check_ok(&l);
	link_close(&l);
}

struct flood {
	int fd;
	size_t total;
	gint done;   /* atomic */
};

static gpointer flood_thread(gpointer data)
{
	struct flood *f = data;
	static char chunk[65536];
	size_t sent = 0;

	memset(chunk, 'z', sizeof(chunk));
	while (sent < f->total) {
		ssize_t n = send(f->fd, chunk, MIN(sizeof(chunk), f->total - sent), MSG_NOSIGNAL);
		if (n <= 0)
			break;
		sent += (size_t)n;
	}
	g_atomic_int_set(&f->done, 1);
	return NULL;
}

/* A collector that sends far more than a socket buffer holds: each check
 * takes a bounded share and returns, and since what it takes is drained the
 * flood gets through (a check that did not read would leave the sender
 * blocked for good; one that read until the flood ends would never
 * return). */
static void test_peer_floods(void)
{
	struct link l;
	struct flood f = { .total = 32u << 20 };

	link_open(&l, 0);
	f.fd = l.peer;
	GThread *th = g_thread_new("flood", flood_thread, &f);
	int checks = 0;
	while (!g_atomic_int_get(&f.done)) {
		g_assert_cmpint(checks, <, 100000);
		check_ok(&l);
		checks++;
		if (checks % 16 == 0) {
			send_ok(&l, "record");
			peer_expect(&l, "record", 6);
		}
		g_usleep(1000);
	}
	g_thread_join(th);
	/* 32 MiB, less what both socket buffers can hold (a few MiB), cannot
	 * have been drained in fewer checks of at most 64 KiB */
	g_assert_cmpint(checks, >=, 256);
	check_ok(&l);
	link_close(&l);
}

/* The end of the stream is a close. */
static void test_peer_closes(void)
{
	struct link l;

	link_open(&l, 0);
	peer_write(&l, "bye", 3);
	shutdown(l.peer, SHUT_WR);
	g_autoptr(GError) error = check_until_broken(&l);
	g_assert_true(g_error_matches(error, TRANSPORT_ERROR, ECONNRESET));
	g_assert_nonnull(strstr(error->message, "closed the connection"));
	g_assert_nonnull(strstr(error->message, transport_describe(l.t)));
	link_close(&l);
}

/* A reset is noticed without anything being sent, and named as one. */
static void test_peer_resets(void)
{
	struct link l;

	link_open(&l, 0);
	send_ok(&l, "records");
	peer_expect(&l, "records", 7);
	peer_write(&l, "x", 1);
	peer_reset(&l);
	g_autoptr(GError) error = check_until_broken(&l);
	g_assert_true(g_error_matches(error, TRANSPORT_ERROR, ECONNRESET));
	g_assert_nonnull(strstr(error->message, g_strerror(ECONNRESET)));
	/* and a send afterwards says the transport is closed, it does not write */
	g_clear_error(&error);
	g_assert_false(transport_send(l.t, (const uint8_t *)"late", 4, &error));
	g_assert_true(g_error_matches(error, TRANSPORT_ERROR, ENOTCONN));
	link_close(&l);
}

/* What the collector's kernel did not acknowledge before it reset the
 * connection is still counted as unacknowledged: the export relies on this
 * to resend it rather than count it delivered. */
static void test_reset_keeps_unacked(void)
{
	struct link l;
	char msg[9000];
	guint64 unacked = 0;

	link_open(&l, 1);   /* the smallest window the kernel allows */
	memset(msg, 'r', sizeof(msg));
	msg[sizeof(msg) - 1] = 0;
	send_ok(&l, msg);
	for (int i = 0; i < 100; i++) {
		g_assert_true(transport_unacked(l.t, &unacked));
		g_usleep(10 * 1000);
	}
	g_assert_cmpuint(unacked, >, 0);
	guint64 before = unacked;
	peer_reset(&l);
	g_usleep(50 * 1000);
	g_assert_true(transport_unacked(l.t, &unacked));
	g_assert_cmpuint(unacked, ==, before);
	g_autoptr(GError) error = check_until_broken(&l);
	g_assert_true(g_error_matches(error, TRANSPORT_ERROR, ECONNRESET));
	link_close(&l);
}

/* Only TCP has a peer to check; a file transport always passes. */
static void test_not_tcp(void)
{
	g_autofree char *dir = g_dir_make_tmp("ctflowd-transport-XXXXXX", NULL);
	g_autofree char *path = g_build_filename(dir, "out", NULL);
	struct export_config cfg = {
		.name = (char *)"test",
		.format = EXPORT_FORMAT_JSON,
		.transport = EXPORT_TRANSPORT_FILE,
		.path = path,
	};
	transport *t = transport_new(&cfg);
	g_autoptr(GError) error = NULL;

	g_assert_true(transport_open(t, &error));
	g_assert_true(transport_check_peer(t, &error));
	g_assert_no_error(error);
	transport_free(t);
	g_unlink(path);
	g_rmdir(dir);
}

static guint limit_for(const char *host, guint mtu, gboolean *opened)
{
	struct export_config cfg = {
		.name = (char *)"t",
		.format = EXPORT_FORMAT_IPFIX,
		.transport = EXPORT_TRANSPORT_UDP,
		.host = (char *)host,
		.port = (char *)"4739",
		.mtu = mtu,
	};
	transport *t = transport_new(&cfg);
	g_autoptr(GError) error = NULL;

	*opened = transport_open(t, &error);
	guint limit = *opened ? transport_message_limit(t) : 0;
	transport_free(t);
	return limit;
}

static void test_auto_capped_ipv4(void)
{
	gboolean opened;

	g_assert_cmpuint(limit_for("127.0.0.1", 0, &opened), ==, 1500 - 20 - 8);
	g_assert_true(opened);
}

static void test_auto_capped_ipv6(void)
{
	gboolean opened;
	guint limit = limit_for("::1", 0, &opened);

	if (!opened) {
		g_test_skip("no IPv6 loopback here");
		return;
	}
	g_assert_cmpuint(limit, ==, 1500 - 40 - 8);
}

/* an explicit value is the operator's choice, larger than 1500 too */
static void test_explicit_kept(void)
{
	gboolean opened;

	g_assert_cmpuint(limit_for("127.0.0.1", 9000, &opened), ==, 9000);
	g_assert_cmpuint(limit_for("127.0.0.1", 65000, &opened), ==, 65000);
	g_assert_cmpuint(limit_for("127.0.0.1", 512, &opened), ==, 512);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/transport/udp-auto-mtu-capped-ipv4", test_auto_capped_ipv4);
	g_test_add_func("/transport/udp-auto-mtu-capped-ipv6", test_auto_capped_ipv6);
	g_test_add_func("/transport/udp-explicit-mtu-kept", test_explicit_kept);
	g_test_add_func("/transport/tcp/peer-talks", test_peer_talks);
	g_test_add_func("/transport/tcp/peer-floods", test_peer_floods);
	g_test_add_func("/transport/tcp/peer-closes", test_peer_closes);
	g_test_add_func("/transport/tcp/peer-resets", test_peer_resets);
	g_test_add_func("/transport/tcp/reset-keeps-unacked", test_reset_keeps_unacked);
	g_test_add_func("/transport/not-tcp", test_not_tcp);
	return g_test_run();
}
