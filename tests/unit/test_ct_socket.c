/*
 * test_ct_socket.c - the checks on an event socket another process kept:
 * its family, its namespace, a filter on it and its groups.
 *
 * Joining conntrack groups and making a network namespace need
 * CAP_NET_ADMIN and CAP_SYS_ADMIN; those tests are skipped without them.
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib.h>

#include "ctflowd/ct_socket.h"
#include "ctflowd/error.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

static void assert_refused(int fd, gboolean check_groups, const char *why)
{
	g_autoptr(GError) error = NULL;

	g_assert_false(ct_socket_check_held(fd, check_groups, &error));
	g_assert_nonnull(error);
	if (!strstr(error->message, why))
		g_error("refused for \"%s\", expected \"%s\"", error->message, why);
}

static int open_or_fail(void)
{
	g_autoptr(GError) error = NULL;
	int fd = ct_socket_open(&error);

	g_assert_no_error(error);
	g_assert_cmpint(fd, >=, 0);
	return fd;
}

static gboolean join(int fd, int group)
{
	return setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)) == 0;
}

static void test_other_families(void)
{
	int pair[2];

	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), ==, 0);
	assert_refused(pair[0], FALSE, "not a netfilter netlink socket");
	close(pair[0]);
	close(pair[1]);
	int route = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	g_assert_cmpint(route, >=, 0);
	assert_refused(route, FALSE, "not a netfilter netlink socket");
	close(route);
}

static void test_fresh_socket_fits(void)
{
	g_autoptr(GError) error = NULL;
	int fd = open_or_fail();

	g_assert_true(ct_socket_check_held(fd, FALSE, &error));
	g_assert_no_error(error);
	/* subscribed to nothing: not one ctflowd left */
	assert_refused(fd, TRUE, "netlink groups (0x0)");
	close(fd);
}

static void test_groups(void)
{
	g_autoptr(GError) error = NULL;
	int fd = open_or_fail();

	if (!join(fd, NFNLGRP_CONNTRACK_DESTROY)) {
		g_test_skip("cannot join conntrack groups (needs CAP_NET_ADMIN)");
		close(fd);
		return;
	}
	g_assert_true(ct_socket_check_held(fd, TRUE, &error));
	g_assert_true(join(fd, NFNLGRP_CONNTRACK_NEW));
	g_assert_true(ct_socket_check_held(fd, TRUE, &error));
	g_assert_no_error(error);
	g_assert_true(join(fd, NFNLGRP_CONNTRACK_UPDATE));
	assert_refused(fd, TRUE, "netlink groups (0x7)");
	/* the groups are set again when configured: not checked for a socket
	 * from the service manager */
	g_assert_true(ct_socket_check_held(fd, FALSE, &error));
	close(fd);

	fd = open_or_fail();
	g_assert_true(join(fd, NFNLGRP_CONNTRACK_EXP_DESTROY));
	g_assert_true(join(fd, NFNLGRP_CONNTRACK_DESTROY));
	assert_refused(fd, TRUE, "are not the conntrack DESTROY events");
	close(fd);
}

static void test_filter(void)
{
	g_autoptr(GError) error = NULL;
	struct sock_filter drop_all = BPF_STMT(BPF_RET | BPF_K, 0);
	struct sock_fprog prog = { .len = 1, .filter = &drop_all };
	int fd = open_or_fail();

	g_assert_cmpint(setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)), ==, 0);
	/* a filter someone else attached is no reason to refuse the socket:
	 * the caller replaces it (ct_filter_attach, test_ct_filter) */
	g_assert_true(ct_socket_check_held(fd, FALSE, &error));
	g_assert_no_error(error);
	close(fd);

	/* one locked to the socket cannot go: the socket is refused */
	fd = open_or_fail();
	int on = 1;
	g_assert_cmpint(setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)), ==, 0);
	g_assert_cmpint(setsockopt(fd, SOL_SOCKET, SO_LOCK_FILTER, &on, sizeof(on)), ==, 0);
	assert_refused(fd, FALSE, "its socket filter is locked (SO_LOCK_FILTER, 1 instructions");
	assert_refused(fd, FALSE, "its socket filter is locked (SO_LOCK_FILTER, 1 instructions");
	close(fd);

	/* locked without a program: none could be attached later either */
	fd = open_or_fail();
	g_assert_cmpint(setsockopt(fd, SOL_SOCKET, SO_LOCK_FILTER, &on, sizeof(on)), ==, 0);
	assert_refused(fd, FALSE, "its socket filter is locked (SO_LOCK_FILTER, 0 instructions");
	close(fd);
}

/* A socket made in a namespace of its own, by a thread that then ends:
 * the namespace lives on with the socket. */
static gpointer open_elsewhere(gpointer data)
{
	int *fd = data;

	if (unshare(CLONE_NEWNET) < 0)
		return NULL;
	*fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	return NULL;
}

static void test_other_namespace(void)
{
	int fd = -1;

	g_thread_join(g_thread_new("elsewhere", open_elsewhere, &fd));
	if (fd < 0) {
		g_test_skip("cannot make a network namespace (needs CAP_SYS_ADMIN)");
		return;
	}
	assert_refused(fd, FALSE, "another network namespace");
	close(fd);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/ct_socket/other-families", test_other_families);
	g_test_add_func("/ct_socket/fresh-socket-fits", test_fresh_socket_fits);
	g_test_add_func("/ct_socket/groups", test_groups);
	g_test_add_func("/ct_socket/filter", test_filter);
	g_test_add_func("/ct_socket/other-namespace", test_other_namespace);
	return g_test_run();
}
