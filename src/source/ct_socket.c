/*
 * ct_socket.c - opening and configuring the ctnetlink event socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter/nfnetlink.h>
#include <string.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctflowd/ct_socket.h"
#include "ctflowd/error.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

static gboolean set_int(int fd, int level, int name, int value, const char *what, GError **error)
{
	if (setsockopt(fd, level, name, &value, sizeof(value)) < 0) {
		int e = errno;
		g_set_error(error, CTFLOWD_ERROR, e, "cannot set %s: %s", what, g_strerror(e));
		return FALSE;
	}
	return TRUE;
}

int ct_socket_open(GError **error)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_NETFILTER);
	if (fd < 0) {
		int e = errno;
		g_set_error(error, CTFLOWD_ERROR, e, "cannot open a ctnetlink socket: %s%s",
			    g_strerror(e), e == EPERM || e == EACCES ? " (needs CAP_NET_ADMIN)" : "");
		return -1;
	}
	struct sockaddr_nl addr = { .nl_family = AF_NETLINK };
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int e = errno;
		close(fd);
		g_set_error(error, CTFLOWD_ERROR, e, "cannot bind the ctnetlink socket: %s",
			    g_strerror(e));
		return -1;
	}
	return fd;
}

static gboolean set_receive_buffer(int fd, guint64 bytes, GError **error)
{
	int value = (int)MIN(bytes, (guint64)G_MAXINT / 2);

	/* SO_RCVBUFFORCE passes net.core.rmem_max; it needs CAP_NET_ADMIN,
	 * which subscribing to conntrack events already requires. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &value, sizeof(value)) < 0) {
		int e = errno;
		if (e != EPERM)
			return set_int(fd, SOL_SOCKET, SO_RCVBUFFORCE, value,
				       "the receive buffer (SO_RCVBUFFORCE)", error);
		g_warning("SO_RCVBUFFORCE refused (%s); falling back to SO_RCVBUF, which "
			  "net.core.rmem_max caps",
			  g_strerror(e));
		if (!set_int(fd, SOL_SOCKET, SO_RCVBUF, value, "the receive buffer (SO_RCVBUF)",
			     error))
			return FALSE;
	}
	int effective = 0;
	socklen_t len = sizeof(effective);
	getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &effective, &len);
	g_info("netlink receive buffer: asked %d bytes, kernel set %d", value, effective);
	return TRUE;
}

static gboolean set_membership(int fd, int group, gboolean on, GError **error)
{
	if (setsockopt(fd, SOL_NETLINK, on ? NETLINK_ADD_MEMBERSHIP : NETLINK_DROP_MEMBERSHIP,
		       &group, sizeof(group)) < 0) {
		int e = errno;
		/* dropping a group the socket is not in is not an error worth stopping for */
		if (!on)
			return TRUE;
		g_set_error(error, CTFLOWD_ERROR, e, "cannot subscribe to conntrack events: %s%s",
			    g_strerror(e), e == EPERM ? " (needs CAP_NET_ADMIN)" : "");
		return FALSE;
	}
	return TRUE;
}

gboolean ct_socket_set_reliable(int fd, gboolean on, GError **error)
{
	/* NETLINK_NO_ENOBUFS stays off: the ENOBUFS error is how an overrun
	 * becomes visible, to count it and to size the buffer. */
	return set_int(fd, SOL_NETLINK, NETLINK_BROADCAST_ERROR, on ? 1 : 0,
		       "NETLINK_BROADCAST_ERROR (reliable delivery)", error);
}

gboolean ct_socket_configure(int fd, const struct ct_socket_options *opts, GError **error)
{
	return set_receive_buffer(fd, opts->receive_buffer, error) &&
	       ct_socket_set_reliable(fd, opts->reliable, error) &&
	       set_membership(fd, NFNLGRP_CONNTRACK_DESTROY, TRUE, error) &&
	       set_membership(fd, NFNLGRP_CONNTRACK_NEW, opts->subscribe_new, error);
}

gboolean ct_socket_verify(int fd, GError **error)
{
	int domain = 0, protocol = 0;
	socklen_t len = sizeof(int);

	if (fcntl(fd, F_GETFD) < 0) {
		g_set_error(error, CTFLOWD_ERROR, EBADF, "descriptor %d is not open", fd);
		return FALSE;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len) < 0 ||
	    domain != AF_NETLINK || protocol != NETLINK_NETFILTER) {
		g_set_error(error, CTFLOWD_ERROR, ENOTSOCK,
			    "descriptor %d is not a netfilter netlink socket", fd);
		return FALSE;
	}
	/* inherited descriptors may come blocking; the reader relies on EAGAIN */
	int flags = fcntl(fd, F_GETFL);
	if (flags >= 0 && !(flags & O_NONBLOCK))
		fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	return TRUE;
}
