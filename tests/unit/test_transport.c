/*
 * test_transport.c - the message size a UDP export picks.
 *
 * mtu = auto follows the route's MTU but never past Ethernet's 1500, also on
 * loopback (MTU 65536), where pmacct's nfacctd would otherwise get datagrams
 * of 64 KB and read only their first 10 KB.  Opening a UDP transport only
 * connects its socket: no datagram is sent.
 */
#include <glib.h>

#include "ctflowd/transport.h"

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
	return g_test_run();
}
