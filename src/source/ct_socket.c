/*
 * ct_socket.c - opening and configuring the ctnetlink event socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter/nfnetlink.h>
#include <string.h>
#include <linux/netlink.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctflowd/ct_socket.h"
#include "ctflowd/error.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif
#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif
/* netlink multicast group n is bit n - 1 of the membership list */
#define GROUP_BIT(n) (1u << ((n) - 1))

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

static gboolean is_netfilter_socket(int fd)
{
	int domain = 0, protocol = 0;
	socklen_t len = sizeof(int);

	return getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 &&
	       getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len) == 0 &&
	       domain == AF_NETLINK && protocol == NETLINK_NETFILTER;
}

gboolean ct_socket_verify(int fd, GError **error)
{
	if (fcntl(fd, F_GETFD) < 0) {
		g_set_error(error, CTFLOWD_ERROR, EBADF, "descriptor %d is not open", fd);
		return FALSE;
	}
	if (!is_netfilter_socket(fd)) {
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

/* The namespace of a socket by its inode, for kernels before 5.14, which
 * have no SO_NETNS_COOKIE. */
static int same_netns_by_inode(int fd, int probe)
{
	int ns_a = ioctl(fd, SIOCGSKNS), ns_b = ioctl(probe, SIOCGSKNS);
	int same = -1;
	struct stat a, b;

	if (ns_a >= 0 && ns_b >= 0 && fstat(ns_a, &a) == 0 && fstat(ns_b, &b) == 0)
		same = a.st_dev == b.st_dev && a.st_ino == b.st_ino;
	int e = errno;
	if (ns_a >= 0)
		close(ns_a);
	if (ns_b >= 0)
		close(ns_b);
	errno = e;
	return same;
}

/* 1 when @fd lives in the calling thread's network namespace, 0 when not,
 * -1 with errno when that cannot be told.  A socket keeps the namespace it
 * was created in, so a socket made now is the yardstick. */
static int in_current_netns(int fd)
{
	int probe = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	guint64 mine = 0, now = 0;
	socklen_t len = sizeof(guint64);
	int same;

	if (probe < 0)
		return -1;
	if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &mine, &len) == 0 &&
	    getsockopt(probe, SOL_SOCKET, SO_NETNS_COOKIE, &now, &len) == 0)
		same = mine == now;
	else if (errno == ENOPROTOOPT)
		same = same_netns_by_inode(fd, probe);
	else
		same = -1;
	int e = errno;
	close(probe);
	errno = e;
	return same;
}

/* A filter decides what the reader sees: one ctflowd did not attach could
 * hide events from it.  ctflowd replaces whatever program is there with its
 * own, or removes it (ct_filter_attach()); only a socket whose filter is
 * locked (SO_LOCK_FILTER), which nobody can replace or remove, is unusable,
 * with or without a program on it now. */
static gboolean filter_replaceable(int fd, GError **error)
{
	int locked = 0;
	socklen_t len = sizeof(locked);

	if (getsockopt(fd, SOL_SOCKET, SO_LOCK_FILTER, &locked, &len) < 0) {
		int e = errno;
		g_set_error(error, CTFLOWD_ERROR, e, "whether its socket filter is locked cannot be"
			    " told: %s", g_strerror(e));
		return FALSE;
	}
	if (!locked)
		return TRUE;
	socklen_t instructions = 0;
	getsockopt(fd, SOL_SOCKET, SO_GET_FILTER, NULL, &instructions);
	g_set_error(error, CTFLOWD_ERROR, EPERM,
		    "its socket filter is locked (SO_LOCK_FILTER, %u instructions on it): ctflowd"
		    " could not put its own in place, and a program there would decide which"
		    " events it sees",
		    (guint)instructions);
	return FALSE;
}

static gboolean has_ctflowd_groups(int fd, GError **error)
{
	guint32 groups[8] = {0};
	socklen_t len = sizeof(groups);
	const guint32 wanted = GROUP_BIT(NFNLGRP_CONNTRACK_DESTROY);
	const guint32 allowed = wanted | GROUP_BIT(NFNLGRP_CONNTRACK_NEW);

	if (getsockopt(fd, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, groups, &len) < 0) {
		int e = errno;
		g_set_error(error, CTFLOWD_ERROR, e, "its groups cannot be read: %s",
			    g_strerror(e));
		return FALSE;
	}
	/* the kernel reports the length it needs, which may exceed the buffer */
	gsize words = MIN(len, sizeof(groups)) / sizeof(guint32);
	gboolean others = FALSE;
	for (gsize i = 1; i < words; i++)
		others |= groups[i] != 0;
	if (words && (groups[0] & wanted) && !(groups[0] & ~allowed) && !others &&
	    len <= sizeof(groups))
		return TRUE;
	g_set_error(error, CTFLOWD_ERROR, EPERM,
		    "its netlink groups (0x%x%s) are not the conntrack DESTROY events (0x%x), "
		    "with or without NEW (0x%x)",
		    words ? groups[0] : 0, others || len > sizeof(groups) ? " and higher ones" : "",
		    wanted, GROUP_BIT(NFNLGRP_CONNTRACK_NEW));
	return FALSE;
}

gboolean ct_socket_check_held(int fd, gboolean check_groups, GError **error)
{
	if (!is_netfilter_socket(fd)) {
		g_set_error(error, CTFLOWD_ERROR, ENOTSOCK,
			    "it is not a netfilter netlink socket");
		return FALSE;
	}
	int same = in_current_netns(fd);
	if (same <= 0) {
		int e = errno;
		if (same < 0)
			g_set_error(error, CTFLOWD_ERROR, e,
				    "its network namespace cannot be told: %s", g_strerror(e));
		else
			g_set_error(error, CTFLOWD_ERROR, EXDEV,
				    "it watches another network namespace than the configured one");
		return FALSE;
	}
	return filter_replaceable(fd, error) && (!check_groups || has_ctflowd_groups(fd, error));
}
