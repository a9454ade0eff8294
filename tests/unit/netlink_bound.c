/*
 * netlink_bound.c - a netlink socket for tests: bound, non-blocking.
 */
#include <linux/netlink.h>
#include <sys/socket.h>

#include "netlink_bound.h"

int netlink_bound_open(int protocol, guint32 *port)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
	struct sockaddr_nl addr = { .nl_family = AF_NETLINK };
	socklen_t len = sizeof(addr);

	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
	g_assert_cmpint(getsockname(fd, (struct sockaddr *)&addr, &len), ==, 0);
	*port = addr.nl_pid;
	return fd;
}
