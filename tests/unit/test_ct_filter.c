/*
 * test_ct_filter.c - a source's filter: its configuration syntax, the
 * match in user space, what goes to the kernel, and the socket filter
 * program itself, run by the kernel that runs the test.
 *
 * The program is judged without conntrack: it is attached to a
 * NETLINK_USERSOCK socket, and a second one unicasts ctnetlink DESTROY
 * messages to it (a socket filter runs on unicast delivery as on
 * broadcasts, and the program only looks at the message).  What arrives
 * must be exactly what the kernel parts of the filter let through, never
 * less than what the whole filter matches, and, when the kernel can
 * express the whole filter, exactly that.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/filter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib.h>

#include "ctflowd/ct_filter.h"
#include "ctflowd/ct_parse.h"
#include "netlink_bound.h"

/* ------------------------------------------------------------------------ */
/* Syntax                                                                    */
/* ------------------------------------------------------------------------ */

static void check_normal(enum ct_filter_key key, const char *text, const char *want)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *got = ct_filter_normalize(key, text, &error);

	if (!got)
		g_error("\"%s\" refused: %s", text, error->message);
	g_assert_cmpstr(got, ==, want);
	/* the canonical form reads back as itself */
	g_autofree char *again = ct_filter_normalize(key, got, &error);
	g_assert_cmpstr(again, ==, want);
}

static void check_refused(enum ct_filter_key key, const char *text, const char *why)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *got = ct_filter_normalize(key, text, &error);

	if (got)
		g_error("\"%s\" accepted as \"%s\"", text, got);
	g_assert_error(error, CONFIG_ERROR, CONFIG_ERROR_VALUE);
	if (!strstr(error->message, why))
		g_error("\"%s\": \"%s\", expected \"%s\"", text, error->message, why);
}

static void test_syntax(void)
{
	check_normal(CT_FILTER_PROTOCOLS, "", "");
	check_normal(CT_FILTER_PROTOCOLS, "  ", "");
	check_normal(CT_FILTER_PROTOCOLS, "UDP, tcp,tcp , 132, 200, icmpv6", "tcp, udp, icmpv6, sctp, 200");
	check_refused(CT_FILTER_PROTOCOLS, "tcp,,udp", "item 2 (\"\"): empty");
	check_refused(CT_FILTER_PROTOCOLS, "tcp,", "item 2");
	check_refused(CT_FILTER_PROTOCOLS, "0x11", "not a protocol");
	check_refused(CT_FILTER_PROTOCOLS, "-1", "not a protocol");
	check_refused(CT_FILTER_PROTOCOLS, "256", "not a protocol");

	check_normal(CT_FILTER_ADDRESSES, "10.0.0.0/8, 2001:DB8:0::/32,192.0.2.1, ::1",
		     "10.0.0.0/8, 2001:db8::/32, 192.0.2.1/32, ::1/128");
	check_normal(CT_FILTER_ADDRESSES, "0.0.0.0/0", "0.0.0.0/0");
	check_refused(CT_FILTER_ADDRESSES, "10.0.0.1/8", "the network is 10.0.0.0/8");
	check_refused(CT_FILTER_ADDRESSES, "2001:db8::1/64", "the network is 2001:db8::/64");
	check_refused(CT_FILTER_ADDRESSES, "10.0.0.0/33", "from 0 to 32");
	check_refused(CT_FILTER_ADDRESSES, "10.0.0.0/0x8", "from 0 to 32");
	check_refused(CT_FILTER_ADDRESSES, "10.0.0.0/", "from 0 to 32");
	check_refused(CT_FILTER_ADDRESSES, "host.example", "not an IPv4 or IPv6 address");
	check_refused(CT_FILTER_ADDRESSES, "10.0.0/8", "not an IPv4 or IPv6 address");

	check_normal(CT_FILTER_ZONES, "9, 1-3, 2-5, 0", "0-5, 9");
	check_normal(CT_FILTER_ZONES, "65535", "65535");
	check_refused(CT_FILTER_ZONES, "5-2", "must not end before it begins");
	check_refused(CT_FILTER_ZONES, "65536", "not a zone");
	check_refused(CT_FILTER_ZONES, "a", "not a zone");

	check_normal(CT_FILTER_MARK, "0x10/0xff", "0x10/0xff");
	check_normal(CT_FILTER_MARK, "16", "0x10/0xffffffff");
	check_normal(CT_FILTER_MARK, "0", "0x0/0xffffffff");
	check_normal(CT_FILTER_MARK, "", "");
	check_refused(CT_FILTER_MARK, "0x11/0x10", "bits outside the mask");
	check_refused(CT_FILTER_MARK, "1/0", "a mask of 0");
	check_refused(CT_FILTER_MARK, "0x100000000", "not MARK or MARK/MASK");
	check_refused(CT_FILTER_MARK, "0x10/", "not MARK or MARK/MASK");
}

/* ------------------------------------------------------------------------ */
/* Messages                                                                  */
/* ------------------------------------------------------------------------ */

struct msg {
	guint8 family, proto;
	guint32 mark;
	guint16 zone;
	int in_prefix;   /* 0: neither address, 1: the source, 2: the destination */
};

#define MSG_SIZE 512

/* A DESTROY as the kernel sends it: CTA_MARK only when not 0 (the kernel
 * leaves a mark of 0 out of events), CTA_ZONE only when not 0. */
static struct nlmsghdr *build(const struct msg *m, void *buf)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	const gboolean v6 = m->family == AF_INET6;
	static const guint8 in6[16] = {0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, [15] = 5};
	static const guint8 out6[16] = {0x20, 0x01, 0x0d, 0xb8, 0x00, 0x02, [15] = 5};
	static const guint8 out6b[16] = {0x20, 0x01, 0x0d, 0xb8, 0x00, 0x03, [15] = 5};
	guint32 in4 = htonl(0x0a010203), out4 = htonl(0xc0000201), out4b = htonl(0xc6336401);

	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE;
	struct nfgenmsg *nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = m->family;
	nfg->version = NFNETLINK_V0;
	for (int dir = 0; dir < 2; dir++) {
		gboolean src_in = m->in_prefix == 1, dst_in = m->in_prefix == 2;
		struct nlattr *tuple = mnl_attr_nest_start(nlh, dir ? CTA_TUPLE_REPLY : CTA_TUPLE_ORIG);
		struct nlattr *ip = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
		/* the reply tuple turned around: no NAT */
		gboolean a_in = dir ? dst_in : src_in, b_in = dir ? src_in : dst_in;
		if (v6) {
			mnl_attr_put(nlh, CTA_IP_V6_SRC, 16, a_in ? in6 : dir ? out6b : out6);
			mnl_attr_put(nlh, CTA_IP_V6_DST, 16, b_in ? in6 : dir ? out6 : out6b);
		} else {
			mnl_attr_put_u32(nlh, CTA_IP_V4_SRC, a_in ? in4 : dir ? out4b : out4);
			mnl_attr_put_u32(nlh, CTA_IP_V4_DST, b_in ? in4 : dir ? out4 : out4b);
		}
		mnl_attr_nest_end(nlh, ip);
		struct nlattr *proto = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
		mnl_attr_put_u8(nlh, CTA_PROTO_NUM, m->proto);
		if (m->proto != IPPROTO_ICMP && m->proto != IPPROTO_ICMPV6) {
			mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(dir ? 53 : 40000));
			mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(dir ? 40000 : 53));
		}
		mnl_attr_nest_end(nlh, proto);
		mnl_attr_nest_end(nlh, tuple);
	}
	mnl_attr_put_u32(nlh, CTA_STATUS, htonl(0x18e));
	if (m->mark)
		mnl_attr_put_u32(nlh, CTA_MARK, htonl(m->mark));
	if (m->zone)
		mnl_attr_put_u16(nlh, CTA_ZONE, htons(m->zone));
	mnl_attr_put_u32(nlh, CTA_ID, htonl(0x1234));
	return nlh;
}

/* Every combination the filters below tell apart. */
static GArray *all_messages(void)
{
	static const guint8 families[] = { AF_INET, AF_INET6 };
	static const guint8 protos[] = { IPPROTO_UDP, IPPROTO_TCP, IPPROTO_ICMP, IPPROTO_SCTP };
	static const guint32 marks[] = { 0, 0x10, 0x1010, 0x20, 0xffffffff };
	static const guint16 zones[] = { 0, 5, 7 };
	GArray *all = g_array_new(FALSE, TRUE, sizeof(struct msg));

	for (size_t a = 0; a < G_N_ELEMENTS(families); a++)
		for (size_t b = 0; b < G_N_ELEMENTS(protos); b++)
			for (size_t c = 0; c < G_N_ELEMENTS(marks); c++)
				for (size_t d = 0; d < G_N_ELEMENTS(zones); d++)
					for (int e = 0; e < 3; e++) {
						struct msg m = { families[a], protos[b], marks[c],
								 zones[d], e };
						if (m.family == AF_INET6 && m.proto == IPPROTO_ICMP)
							m.proto = IPPROTO_ICMPV6;
						g_array_append_val(all, m);
					}
	return all;
}

static struct flow_record record_of(const struct nlmsghdr *nlh)
{
	struct flow_record r;
	const char *why = NULL;

	if (ct_parse_message(nlh, &r, &why) != CT_PARSE_OK)
		g_error("test message does not parse: %s", why ? why : "ignored");
	return r;
}

/* ------------------------------------------------------------------------ */
/* Matching in user space                                                    */
/* ------------------------------------------------------------------------ */

static ct_filter *filter_or_fail(const char *protocols, const char *addresses, const char *zones,
				 const char *mark)
{
	g_autoptr(GError) error = NULL;
	ct_filter *f = ct_filter_new(protocols, addresses, zones, mark, &error);

	g_assert_no_error(error);
	g_assert_nonnull(f);
	return f;
}

/* The filter's meaning, written out independently of ct_filter.c. */
struct meaning {
	const char *protocols, *addresses, *zones, *mark;
	gboolean (*want)(const struct msg *m);
	guint kernel_parts;
	gboolean complete;
};

static gboolean want_tcp_udp(const struct msg *m) { return m->proto == IPPROTO_TCP || m->proto == IPPROTO_UDP; }
static gboolean want_mark_10(const struct msg *m) { return (m->mark & 0xff) == 0x10; }
static gboolean want_mark_0(const struct msg *m) { return m->mark == 0; }
static gboolean want_v4_prefix(const struct msg *m) { return m->family == AF_INET && m->in_prefix; }
static gboolean want_v6_prefix(const struct msg *m) { return m->family == AF_INET6 && m->in_prefix; }
static gboolean want_any_prefix(const struct msg *m) { return m->in_prefix != 0; }
static gboolean want_zone_7(const struct msg *m) { return m->zone == 7; }
static gboolean want_combined(const struct msg *m)
{
	return m->proto == IPPROTO_UDP && (m->mark & 0xff) == 0x10 && want_v6_prefix(m) &&
	       m->zone <= 5;
}
static gboolean want_all(const struct msg *m) { return TRUE; }

static const struct meaning meanings[] = {
	{ "tcp, udp", NULL, NULL, NULL, want_tcp_udp, CT_FILTER_KERNEL_PROTOCOLS, TRUE },
	{ NULL, NULL, NULL, "0x10/0xff", want_mark_10, CT_FILTER_KERNEL_MARK, TRUE },
	{ NULL, NULL, NULL, "0", want_mark_0, CT_FILTER_KERNEL_MARK, TRUE },
	{ NULL, "10.1.0.0/16", NULL, NULL, want_v4_prefix, CT_FILTER_KERNEL_FAMILY, FALSE },
	{ NULL, "2001:db8:1::/48", NULL, NULL, want_v6_prefix, CT_FILTER_KERNEL_FAMILY, FALSE },
	{ NULL, "10.1.2.3, 2001:db8:1::/48", NULL, NULL, want_any_prefix, 0, FALSE },
	{ NULL, NULL, "7", NULL, want_zone_7, 0, FALSE },
	{ "udp", "2001:db8:1::/48", "0-5", "0x10/0xff", want_combined,
	  CT_FILTER_KERNEL_PROTOCOLS | CT_FILTER_KERNEL_MARK | CT_FILTER_KERNEL_FAMILY, FALSE },
	{ NULL, NULL, NULL, NULL, want_all, 0, TRUE },
};

static void test_match(void)
{
	g_autoptr(GArray) all = all_messages();

	for (size_t i = 0; i < G_N_ELEMENTS(meanings); i++) {
		const struct meaning *mn = &meanings[i];
		ct_filter *f = filter_or_fail(mn->protocols, mn->addresses, mn->zones, mn->mark);
		guint matched = 0;

		g_assert_cmpuint(ct_filter_kernel_parts(f), ==, mn->kernel_parts);
		g_assert_cmpint(ct_filter_complete_in_kernel(f), ==, mn->complete);
		g_assert_cmpint(ct_filter_is_empty(f), ==, mn->want == want_all);
		for (guint k = 0; k < all->len; k++) {
			const struct msg *m = &g_array_index(all, struct msg, k);
			_Alignas(8) char buf[MSG_SIZE];
			struct flow_record r = record_of(build(m, buf));
			if (ct_filter_match(f, &r) != mn->want(m))
				g_error("filter %zu, message %u: matched %d", i, k, !mn->want(m));
			matched += mn->want(m);
		}
		g_assert_cmpuint(matched, >, 0);
		if (mn->want != want_all)
			g_assert_cmpuint(matched, <, all->len);
		ct_filter_free(f);
	}
	/* NULL matches everything */
	_Alignas(8) char buf[MSG_SIZE];
	struct msg m = { AF_INET, IPPROTO_UDP, 0, 0, 0 };
	struct flow_record r = record_of(build(&m, buf));
	g_assert_true(ct_filter_match(NULL, &r));
}

/* Behind NAT a host shows in the reply tuple only: it matches there too. */
static void test_match_nat(void)
{
	ct_filter *f = filter_or_fail(NULL, "10.9.0.0/16", NULL, NULL);
	struct flow_record r = {0};

	r.family = AF_INET;
	r.proto = IPPROTO_TCP;
	inet_pton(AF_INET, "192.0.2.1", r.orig.src);
	inet_pton(AF_INET, "198.51.100.1", r.orig.dst);     /* DNAT to 10.9.0.5 */
	inet_pton(AF_INET, "10.9.0.5", r.reply.src);
	inet_pton(AF_INET, "192.0.2.1", r.reply.dst);
	g_assert_true(ct_filter_match(f, &r));
	inet_pton(AF_INET, "10.8.0.5", r.reply.src);
	g_assert_false(ct_filter_match(f, &r));
	ct_filter_free(f);
}

static void test_dump_filter(void)
{
	ct_filter *f = filter_or_fail("udp", "2001:db8::/32", "7", "0x10/0xff");
	struct ct_dump_filter d = ct_filter_dump_filter(f);

	g_assert_cmpuint(d.family, ==, AF_INET6);
	g_assert_true(d.has_proto);
	g_assert_cmpuint(d.proto, ==, IPPROTO_UDP);
	g_assert_true(d.has_zone);
	g_assert_cmpuint(d.zone, ==, 7);
	g_assert_true(d.has_mark);
	g_assert_cmpuint(d.mark, ==, 0x10);
	g_assert_cmpuint(d.mark_mask, ==, 0xff);
	ct_filter_free(f);

	/* lists the kernel cannot take: not asked for */
	f = filter_or_fail("udp, tcp", "10.0.0.0/8, 2001:db8::/32", "7-8", NULL);
	d = ct_filter_dump_filter(f);
	g_assert_cmpuint(d.family, ==, 0);
	g_assert_false(d.has_proto);
	g_assert_false(d.has_zone);
	g_assert_false(d.has_mark);
	ct_filter_free(f);
	d = ct_filter_dump_filter(NULL);
	g_assert_false(d.family || d.has_proto || d.has_zone || d.has_mark);
}

static void test_describe(void)
{
	ct_filter *f = filter_or_fail("udp", "2001:db8::/32", "7", "0x10/0xff");
	g_autofree char *text = ct_filter_describe(f);

	g_assert_cmpstr(text, ==,
			"in the kernel: protocols udp; mark 0x10/0xff; IPv6 only; in user space only:"
			" addresses 2001:db8::/32; zones 7");
	ct_filter_free(f);
	g_autofree char *none = ct_filter_describe(NULL);
	g_assert_nonnull(strstr(none, "every connection"));
}

/* ------------------------------------------------------------------------ */
/* The program, in the kernel                                                */
/* ------------------------------------------------------------------------ */

static int usersock(guint32 *port)
{
	return netlink_bound_open(NETLINK_USERSOCK, port);
}

/* Sends @m to @port and tells whether it arrived at @rx: unicast delivery
 * is done, or dropped by the filter, when sendto() returns. */
static gboolean delivered(int tx, int rx, guint32 port, const struct msg *m)
{
	_Alignas(8) char buf[MSG_SIZE];
	struct nlmsghdr *nlh = build(m, buf);
	struct sockaddr_nl to = { .nl_family = AF_NETLINK, .nl_pid = port };
	char in[MSG_SIZE];

	g_assert_cmpint(sendto(tx, nlh, nlh->nlmsg_len, 0, (struct sockaddr *)&to, sizeof(to)), ==,
			(int)nlh->nlmsg_len);
	ssize_t n = recv(rx, in, sizeof(in), MSG_DONTWAIT);
	if (n < 0) {
		g_assert_cmpint(errno, ==, EAGAIN);
		return FALSE;
	}
	g_assert_cmpint(n, ==, (int)nlh->nlmsg_len);
	g_assert_cmpmem(in, n, nlh, nlh->nlmsg_len);
	return TRUE;
}

/* What the kernel parts alone let through. */
static gboolean kernel_passes(const struct meaning *mn, const struct msg *m)
{
	if ((mn->kernel_parts & CT_FILTER_KERNEL_PROTOCOLS) &&
	    !(mn->want == want_combined ? m->proto == IPPROTO_UDP : want_tcp_udp(m)))
		return FALSE;
	if ((mn->kernel_parts & CT_FILTER_KERNEL_MARK) &&
	    !(mn->want == want_mark_0 ? want_mark_0(m) : want_mark_10(m)))
		return FALSE;
	if ((mn->kernel_parts & CT_FILTER_KERNEL_FAMILY) &&
	    m->family != (mn->want == want_v4_prefix ? AF_INET : AF_INET6))
		return FALSE;
	return TRUE;
}

static void test_program(void)
{
	g_autoptr(GArray) all = all_messages();
	guint32 port, unused;
	int rx = usersock(&port), tx = usersock(&unused);

	for (size_t i = 0; i < G_N_ELEMENTS(meanings); i++) {
		const struct meaning *mn = &meanings[i];
		ct_filter *f = filter_or_fail(mn->protocols, mn->addresses, mn->zones, mn->mark);
		g_autoptr(GError) error = NULL;
		guint arrived = 0;
		int none = 0;

		/* a fresh start each time: the previous filter's program is not
		 * what this one is replacing (test_attach_replaces) */
		setsockopt(rx, SOL_SOCKET, SO_DETACH_FILTER, &none, sizeof(none));
		g_assert_true(ct_filter_attach(rx, f, &error));
		g_assert_no_error(error);
		/* attached again, the same program: nothing to say (a restart
		 * with the same configuration; warnings are fatal here) */
		g_assert_true(ct_filter_attach(rx, f, &error));
		g_assert_no_error(error);
		for (guint k = 0; k < all->len; k++) {
			const struct msg *m = &g_array_index(all, struct msg, k);
			gboolean got = delivered(tx, rx, port, m);
			if (got != kernel_passes(mn, m))
				g_error("filter %zu, message %u (family %u proto %u mark 0x%x zone %u"
					" prefix %d): %s", i, k, m->family, m->proto, m->mark, m->zone,
					m->in_prefix, got ? "arrived" : "dropped");
			/* never less than the whole filter matches */
			if (mn->want(m))
				g_assert_true(got);
			if (mn->complete)
				g_assert_cmpint(got, ==, mn->want(m));
			arrived += got;
		}
		g_test_message("filter %zu: %u of %u messages pass the kernel", i, arrived, all->len);
		ct_filter_free(f);
	}
	close(rx);
	close(tx);
}

/* A program someone else attached is replaced, or removed when the filter
 * has nothing for the kernel, with a warning; one locked to the socket is
 * reported. */
static void test_attach_replaces(void)
{
	struct sock_filter drop_all = BPF_STMT(BPF_RET | BPF_K, 0);
	struct sock_fprog prog = { .len = 1, .filter = &drop_all };
	guint32 port, unused;
	int rx = usersock(&port), tx = usersock(&unused);
	struct msg udp = { AF_INET, IPPROTO_UDP, 0x10, 0, 0 };
	struct msg tcp = { AF_INET, IPPROTO_TCP, 0x10, 0, 0 };
	g_autoptr(GError) error = NULL;

	g_assert_cmpint(setsockopt(rx, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)), ==, 0);
	g_assert_false(delivered(tx, rx, port, &udp));
	ct_filter *f = filter_or_fail("udp", NULL, NULL, NULL);
	g_test_expect_message("ctflowd", G_LOG_LEVEL_WARNING,
			      "*socket filter (1 instructions) that is not this configuration's*"
			      "replaced by the configured one");
	g_assert_true(ct_filter_attach(rx, f, &error));
	g_test_assert_expected_messages();
	g_assert_true(delivered(tx, rx, port, &udp));
	g_assert_false(delivered(tx, rx, port, &tcp));
	ct_filter_free(f);

	g_assert_cmpint(setsockopt(rx, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)), ==, 0);
	f = filter_or_fail(NULL, NULL, "7", NULL);   /* nothing for the kernel */
	g_test_expect_message("ctflowd", G_LOG_LEVEL_WARNING,
			      "*socket filter (1 instructions)*removed, as none is configured");
	g_assert_true(ct_filter_attach(rx, f, &error));
	g_test_assert_expected_messages();
	g_assert_true(delivered(tx, rx, port, &udp));
	g_assert_true(delivered(tx, rx, port, &tcp));
	g_assert_true(ct_filter_attach(rx, NULL, &error));   /* none there: fine */
	g_assert_no_error(error);

	int on = 1;
	g_assert_cmpint(setsockopt(rx, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)), ==, 0);
	g_assert_cmpint(setsockopt(rx, SOL_SOCKET, SO_LOCK_FILTER, &on, sizeof(on)), ==, 0);
	g_assert_false(ct_filter_attach(rx, f, &error));
	g_assert_nonnull(strstr(error->message, "SO_LOCK_FILTER"));
	g_clear_error(&error);
	ct_filter_free(f);
	f = filter_or_fail("udp", NULL, NULL, NULL);
	g_assert_false(ct_filter_attach(rx, f, &error));
	g_assert_nonnull(strstr(error->message, "SO_LOCK_FILTER"));
	ct_filter_free(f);
	close(rx);
	close(tx);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/ct_filter/syntax", test_syntax);
	g_test_add_func("/ct_filter/match", test_match);
	g_test_add_func("/ct_filter/match-nat", test_match_nat);
	g_test_add_func("/ct_filter/dump-filter", test_dump_filter);
	g_test_add_func("/ct_filter/describe", test_describe);
	g_test_add_func("/ct_filter/program", test_program);
	g_test_add_func("/ct_filter/attach-replaces", test_attach_replaces);
	return g_test_run();
}
