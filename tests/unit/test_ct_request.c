/*
 * test_ct_request.c - the ctnetlink request module: the message walk, who
 * may answer a request, and the deadline.
 *
 * The walk runs on exact-size heap copies, so a read past the datagram shows
 * up under ASan.  Foreign senders are played by a second netlink socket of
 * the NETLINK_USERSOCK family, which may unicast to any port; the kernel's
 * own replies come from a NETLINK_ROUTE link dump.  The conntrack tests run
 * in a network namespace of their own, filled with entries through
 * ctnetlink, and are skipped without the privileges for that.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib.h>

#include "ctflowd/ct_request.h"
#include "ctflowd/error.h"
#include "netlink_bound.h"

/* ------------------------------------------------------------------------ */
/* The message walk                                                          */
/* ------------------------------------------------------------------------ */

/* Writes a message of @len bytes (header included, @len >= 16) at @at with
 * nlmsg_len set to @claimed. */
static void put_message(uint8_t *at, size_t len, guint32 claimed, guint16 type)
{
	struct nlmsghdr h = { .nlmsg_len = claimed, .nlmsg_type = type };

	memset(at, 0xA5, len);
	memcpy(at, &h, sizeof(h));
}

/* Walks an exact-size copy of @buf; returns how many messages came out, and
 * the final offset in *end.  Every message must lie inside the datagram and
 * every step must move forward. */
static guint walk(const uint8_t *buf, size_t len, size_t *end)
{
	g_autofree uint8_t *copy = g_memdup2(buf, len);
	size_t offset = 0, before = 0;
	const struct nlmsghdr *m;
	guint n = 0;

	while ((m = ct_request_next_message(copy, len, &offset))) {
		g_assert_true((const uint8_t *)m >= copy);
		g_assert_cmpuint((size_t)((const uint8_t *)m - copy) + m->nlmsg_len, <=, len);
		g_assert_cmpuint(offset, >, before);
		g_assert_cmpuint(offset, <=, len);
		before = offset;
		n++;
		g_assert_cmpuint(n, <=, len / sizeof(struct nlmsghdr));
	}
	*end = offset;
	return n;
}

static void test_walk_valid(void)
{
	uint8_t buf[16 + 20 + 17];
	size_t end;

	put_message(buf, 16, 16, NLMSG_MIN_TYPE);
	put_message(buf + 16, 20, 20, NLMSG_MIN_TYPE);
	/* the last message need not be padded to the alignment */
	put_message(buf + 36, 17, 17, NLMSG_MIN_TYPE);
	g_assert_cmpuint(walk(buf, sizeof(buf), &end), ==, 3);
	g_assert_cmpuint(end, ==, sizeof(buf));

	/* a datagram of nothing: no message, nothing left over */
	g_assert_cmpuint(walk(buf, 0, &end), ==, 0);
	g_assert_cmpuint(end, ==, 0);
}

static void test_walk_forged_lengths(void)
{
	/* lengths that would stand still, step backwards, or jump past the
	 * datagram; 2^31 and above pass libmnl's signed comparison */
	static const guint32 forged[] = {
		0, 1, 15, 49, 0x7fffffffu, 0x80000000u, 0x80000010u, 0xfffffff0u, 0xffffffffu,
	};
	uint8_t buf[32 + 48];

	for (size_t i = 0; i < G_N_ELEMENTS(forged); i++) {
		size_t end;
		/* forged first */
		put_message(buf, 48, forged[i], NLMSG_MIN_TYPE);
		g_assert_cmpuint(walk(buf, 48, &end), ==, 0);
		g_assert_cmpuint(end, ==, 0);
		/* forged after a good one: the good one comes out, the walk
		 * stops at the forged one and says bytes are left */
		put_message(buf, 32, 32, NLMSG_MIN_TYPE);
		put_message(buf + 32, 48, forged[i], NLMSG_MIN_TYPE);
		g_assert_cmpuint(walk(buf, sizeof(buf), &end), ==, 1);
		g_assert_cmpuint(end, ==, 32);
	}
}

static void test_walk_short_tail(void)
{
	uint8_t buf[32 + 12];
	size_t end;

	put_message(buf, 32, 32, NLMSG_MIN_TYPE);
	memset(buf + 32, 0, 12);   /* less than a header */
	g_assert_cmpuint(walk(buf, sizeof(buf), &end), ==, 1);
	g_assert_cmpuint(end, ==, 32);
	g_assert_cmpuint(end, <, sizeof(buf));
}

static void test_walk_random(void)
{
	GRand *rand = g_rand_new_with_seed(7);
	uint8_t buf[256];

	for (int round = 0; round < 20000; round++) {
		size_t len = (size_t)g_rand_int_range(rand, 0, sizeof(buf) + 1), end;
		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)g_rand_int(rand);
		/* plausible lengths now and then, so walks go past the first */
		for (size_t at = 0; at + 4 <= len; at += 4 * (size_t)g_rand_int_range(rand, 1, 8)) {
			guint32 l = (guint32)g_rand_int_range(rand, 0, 80);
			if (g_rand_boolean(rand))
				memcpy(buf + at, &l, sizeof(l));
		}
		walk(buf, len, &end);
		g_assert_cmpuint(end, <=, len);
	}
	g_rand_free(rand);
}

/* ------------------------------------------------------------------------ */
/* Who may answer                                                            */
/* ------------------------------------------------------------------------ */

static gboolean count_entry(const struct nlmsghdr *nlh, void *user)
{
	(*(guint *)user)++;
	return TRUE;
}

static gboolean stop_at_first(const struct nlmsghdr *nlh, void *user)
{
	(*(guint *)user)++;
	return FALSE;
}

/* A reply as the kernel would send it to @port for request @seq: an entry,
 * then the end of the dump. */
static void send_forged_reply(int from, guint32 port, guint32 seq)
{
	struct {
		struct nlmsghdr entry;
		uint8_t payload[16];
		struct nlmsghdr done;
		int status;
	} msg = {
		.entry = { .nlmsg_len = NLMSG_LENGTH(16), .nlmsg_type = NLMSG_MIN_TYPE,
			   .nlmsg_flags = NLM_F_MULTI, .nlmsg_seq = seq, .nlmsg_pid = port },
		.done = { .nlmsg_len = NLMSG_LENGTH(sizeof(int)), .nlmsg_type = NLMSG_DONE,
			  .nlmsg_flags = NLM_F_MULTI, .nlmsg_seq = seq, .nlmsg_pid = port },
	};
	struct sockaddr_nl to = { .nl_family = AF_NETLINK, .nl_pid = port };

	G_STATIC_ASSERT(sizeof(msg) == NLMSG_LENGTH(16) + NLMSG_LENGTH(sizeof(int)));
	g_assert_cmpint(sendto(from, &msg, sizeof(msg), 0, (struct sockaddr *)&to, sizeof(to)), ==,
			(int)sizeof(msg));
}

struct flood {
	int fd;
	guint32 port, seq;
	gint stop;
};

/* Forged replies, one about every millisecond, until told to stop. */
static gpointer flood_thread(gpointer data)
{
	struct flood *f = data;

	while (!g_atomic_int_get(&f->stop)) {
		send_forged_reply(f->fd, f->port, f->seq);
		g_usleep(1000);
	}
	return NULL;
}

static void test_foreign_sender_ignored(void)
{
	guint32 port, other_port;
	int fd = netlink_bound_open(NETLINK_USERSOCK, &port);
	int other = netlink_bound_open(NETLINK_USERSOCK, &other_port);
	g_autoptr(GError) error = NULL;
	gboolean interrupted = TRUE;
	guint entries = 0;

	/* a complete, well-formed answer, but not from the kernel */
	send_forged_reply(other, port, 42);
	gint64 t0 = g_get_monotonic_time();
	gboolean ok = ct_request_collect(fd, 42, t0 + 300 * 1000, count_entry, &entries,
					 &interrupted, "test request", &error);
	gint64 took = g_get_monotonic_time() - t0;
	g_assert_false(ok);
	g_assert_error(error, CTFLOWD_ERROR, ETIMEDOUT);
	g_assert_nonnull(strstr(error->message, "test request"));
	g_assert_cmpuint(entries, ==, 0);
	g_assert_false(interrupted);
	g_assert_cmpint(took, >=, 300 * 1000);
	close(other);
	close(fd);
}

static void test_deadline_despite_flood(void)
{
	guint32 port;
	int fd = netlink_bound_open(NETLINK_USERSOCK, &port);
	guint32 flood_port;
	struct flood f = { .fd = netlink_bound_open(NETLINK_USERSOCK, &flood_port), .port = port, .seq = 7 };
	g_autoptr(GError) error = NULL;
	gboolean interrupted;
	guint entries = 0;

	/* messages keep arriving the whole time: none of them may keep the
	 * wait going past its deadline */
	GThread *t = g_thread_new("flood", flood_thread, &f);
	gint64 t0 = g_get_monotonic_time();
	gboolean ok = ct_request_collect(fd, 7, t0 + 200 * 1000, count_entry, &entries,
					 &interrupted, "flooded request", &error);
	gint64 took = g_get_monotonic_time() - t0;
	g_atomic_int_set(&f.stop, 1);
	g_thread_join(t);
	g_assert_false(ok);
	g_assert_error(error, CTFLOWD_ERROR, ETIMEDOUT);
	g_assert_cmpuint(entries, ==, 0);
	g_assert_cmpint(took, >=, 200 * 1000);
	/* generous: a loaded machine, but far from "as long as they come" */
	g_assert_cmpint(took, <, 2 * G_USEC_PER_SEC);
	close(f.fd);
	close(fd);
}

/* A link dump: replies that really come from the kernel. */
static guint32 request_links(int fd, guint32 seq, guint16 type)
{
	struct {
		struct nlmsghdr nlh;
		struct rtgenmsg gen;
	} req = {
		.nlh = { .nlmsg_len = sizeof(req), .nlmsg_type = type,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = seq },
		.gen = { .rtgen_family = AF_UNSPEC },
	};
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };

	g_assert_cmpint(sendto(fd, &req, sizeof(req), 0, (struct sockaddr *)&kernel,
			       sizeof(kernel)), ==, (int)sizeof(req));
	return seq;
}

static void test_kernel_replies(void)
{
	guint32 port;
	int fd = netlink_bound_open(NETLINK_ROUTE, &port);
	g_autoptr(GError) error = NULL;
	gboolean interrupted;
	guint entries = 0;

	gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
	g_assert_true(ct_request_collect(fd, request_links(fd, 1, RTM_GETLINK), deadline,
					 count_entry, &entries, &interrupted, "link dump", &error));
	g_assert_no_error(error);
	g_assert_cmpuint(entries, >=, 1);   /* lo at least */

	/* a kernel error comes back as one, with the request named: a
	 * message type rtnetlink does not know */
	g_assert_false(ct_request_collect(fd, request_links(fd, 2, RTM_MAX + 1), deadline,
					  count_entry, &entries, &interrupted, "bogus request",
					  &error));
	g_assert_nonnull(error);
	g_assert_cmpint(error->code, !=, ETIMEDOUT);
	g_assert_nonnull(strstr(error->message, "bogus request failed"));
	close(fd);
}

/* ------------------------------------------------------------------------ */
/* Conntrack dumps, in a namespace of their own                              */
/* ------------------------------------------------------------------------ */

#define CT_ENTRIES 400   /* a few parts of a dump: about 100 fit in one */

/* What an entry made by add_entry_with() differs in. */
struct entry_spec {
	guint8 family;    /* AF_INET (default) or AF_INET6 */
	guint8 proto;     /* IPPROTO_UDP (default) or IPPROTO_TCP */
	guint16 zone;
	guint32 mark;
};

static void put_tuple_of(struct nlmsghdr *nlh, guint16 type, const struct entry_spec *e,
			 gboolean reply, guint16 sport, guint16 dport)
{
	static const guint8 v6[2][16] = {
		{0x20, 0x01, 0x0d, 0xb8, [15] = 1}, {0x20, 0x01, 0x0d, 0xb8, [15] = 2},
	};
	guint32 v4[2] = { htonl(0x0a000001), htonl(0x0a000002) };
	struct nlattr *tuple = mnl_attr_nest_start(nlh, type);
	struct nlattr *ip = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
	if (e->family == AF_INET6) {
		mnl_attr_put(nlh, CTA_IP_V6_SRC, 16, v6[reply]);
		mnl_attr_put(nlh, CTA_IP_V6_DST, 16, v6[!reply]);
	} else {
		mnl_attr_put_u32(nlh, CTA_IP_V4_SRC, v4[reply]);
		mnl_attr_put_u32(nlh, CTA_IP_V4_DST, v4[!reply]);
	}
	mnl_attr_nest_end(nlh, ip);
	struct nlattr *proto = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
	mnl_attr_put_u8(nlh, CTA_PROTO_NUM, e->proto ? e->proto : IPPROTO_UDP);
	mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(sport));
	mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(dport));
	mnl_attr_nest_end(nlh, proto);
	mnl_attr_nest_end(nlh, tuple);
}

/* Adds an entry as @e says, port @sport -> 53, acknowledged. */
static void add_entry_with(int fd, const struct entry_spec *e, guint16 sport)
{
	uint8_t buf[1024];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);

	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK;
	nlh->nlmsg_seq = sport;
	struct nfgenmsg *nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = e->family ? e->family : AF_INET;
	nfg->version = NFNETLINK_V0;
	put_tuple_of(nlh, CTA_TUPLE_ORIG, e, FALSE, sport, 53);
	put_tuple_of(nlh, CTA_TUPLE_REPLY, e, TRUE, 53, sport);
	mnl_attr_put_u32(nlh, CTA_TIMEOUT, htonl(600));
	if (e->zone)
		mnl_attr_put_u16(nlh, CTA_ZONE, htons(e->zone));
	if (e->mark)
		mnl_attr_put_u32(nlh, CTA_MARK, htonl(e->mark));
	if (e->proto == IPPROTO_TCP) {
		struct nlattr *info = mnl_attr_nest_start(nlh, CTA_PROTOINFO);
		struct nlattr *tcp = mnl_attr_nest_start(nlh, CTA_PROTOINFO_TCP);
		mnl_attr_put_u8(nlh, CTA_PROTOINFO_TCP_STATE, 3);   /* ESTABLISHED */
		mnl_attr_nest_end(nlh, tcp);
		mnl_attr_nest_end(nlh, info);
	}
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	g_assert_cmpint(sendto(fd, buf, nlh->nlmsg_len, 0, (struct sockaddr *)&kernel,
			       sizeof(kernel)), ==, (int)nlh->nlmsg_len);

	g_autoptr(GError) error = NULL;
	gboolean interrupted;
	guint none = 0;
	g_assert_true(ct_request_collect(fd, sport, g_get_monotonic_time() + 5 * G_USEC_PER_SEC,
					 count_entry, &none, &interrupted, "adding an entry",
					 &error));
	g_assert_no_error(error);
}

/* A UDP entry 10.0.0.1:@sport -> 10.0.0.2:53 (conntrack -I). */
static void add_entry(int fd, guint16 sport)
{
	const struct entry_spec udp4 = { AF_INET, IPPROTO_UDP, 0, 0 };

	add_entry_with(fd, &udp4, sport);
}

/* Moves the calling thread to a network namespace of its own; returns a
 * descriptor of the one it was in, or -1 with the test skipped. */
static int enter_own_netns(void)
{
	int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);

	g_assert_cmpint(home, >=, 0);
	if (unshare(CLONE_NEWNET) < 0) {
		g_test_skip("needs CAP_SYS_ADMIN for a network namespace of its own");
		close(home);
		return -1;
	}
	return home;
}

static guint dump_table(ct_request *req, gint64 deadline_us, ct_request_entry_fn fn,
			GError **error, gboolean *ok)
{
	gboolean interrupted;
	guint entries = 0;

	*ok = ct_request_dump(req, CT_REQUEST_TABLE, deadline_us, fn, &entries, &interrupted,
			      error);
	return entries;
}

static void test_conntrack_dumps(void)
{
	int home = enter_own_netns();

	if (home < 0)
		return;
	guint32 port;
	int fd = netlink_bound_open(NETLINK_NETFILTER, &port);
	for (guint i = 0; i < CT_ENTRIES; i++)
		add_entry(fd, (guint16)(10000 + i));
	close(fd);

	g_autoptr(GError) error = NULL;
	ct_request *req = ct_request_new(&error);
	g_assert_no_error(error);
	gint64 later = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
	gboolean ok, any = TRUE;

	g_assert_cmpuint(dump_table(req, later, count_entry, &error, &ok), ==, CT_ENTRIES);
	g_assert_no_error(error);
	g_assert_true(ok);

	/* stopped at the first entry: the kernel still holds that dump's
	 * state, so the next dump needs the fresh socket */
	g_assert_cmpuint(dump_table(req, later, stop_at_first, &error, &ok), ==, 1);
	g_assert_true(ok);
	g_assert_cmpuint(dump_table(req, later, count_entry, &error, &ok), ==, CT_ENTRIES);
	g_assert_no_error(error);
	g_assert_true(ok);

	/* a deadline that passed: the part already read is all, then an
	 * error; the next dump works again */
	guint seen = dump_table(req, g_get_monotonic_time(), count_entry, &error, &ok);
	g_assert_false(ok);
	g_assert_error(error, CTFLOWD_ERROR, ETIMEDOUT);
	g_assert_nonnull(strstr(error->message, "dump of the conntrack table"));
	g_assert_cmpuint(seen, <, CT_ENTRIES);
	g_clear_error(&error);

	/* the dying list of a namespace without a reliable listener is empty */
	g_assert_true(ct_request_any_parked(req, later, &any, &error));
	g_assert_no_error(error);
	g_assert_false(any);

	/* from another namespace, sockets still open in the handle's one */
	g_assert_cmpuint(dump_table(req, later, stop_at_first, &error, &ok), ==, 1);
	g_assert_cmpint(setns(home, CLONE_NEWNET), ==, 0);
	g_assert_cmpuint(dump_table(req, later, count_entry, &error, &ok), ==, CT_ENTRIES);
	g_assert_no_error(error);
	g_assert_true(ok);

	ct_request_free(req);
	close(home);
}

/* The kernel's dump filters, on the kernel that runs the test: entries of
 * every combination of family, protocol, zone and mark, and each filter
 * field alone and together returns exactly the entries that match. */
static void test_dump_filter(void)
{
	static const guint8 families[] = { AF_INET, AF_INET6 };
	static const guint8 protos[] = { IPPROTO_UDP, IPPROTO_TCP };
	static const guint16 zones[] = { 0, 7 };
	static const guint32 marks[] = { 0, 0x10, 0x1010 };
	static const struct {
		struct ct_dump_filter f;
		guint want;   /* of the 24 entries */
	} cases[] = {
		{ {0}, 24 },
		{ {.family = AF_INET6}, 12 },
		/* a protocol alone the kernel refuses: not sent */
		{ {.has_proto = TRUE, .proto = IPPROTO_TCP}, 24 },
		{ {.family = AF_INET6, .has_proto = TRUE, .proto = IPPROTO_TCP}, 6 },
		{ {.has_zone = TRUE, .zone = 7}, 12 },
		{ {.has_zone = TRUE, .zone = 0}, 12 },
		{ {.has_mark = TRUE, .mark = 0x10, .mark_mask = 0xff}, 16 },
		{ {.has_mark = TRUE, .mark = 0x10, .mark_mask = 0xffffffff}, 8 },
		{ {.has_mark = TRUE, .mark = 0, .mark_mask = 0xffffffff}, 8 },
		{ {.family = AF_INET, .has_proto = TRUE, .proto = IPPROTO_UDP, .has_zone = TRUE,
		   .zone = 7, .has_mark = TRUE, .mark = 0x1000, .mark_mask = 0xf000}, 1 },
	};
	int home = enter_own_netns();

	if (home < 0)
		return;
	guint32 port;
	int fd = netlink_bound_open(NETLINK_NETFILTER, &port);
	guint16 sport = 20000;
	for (size_t a = 0; a < G_N_ELEMENTS(families); a++)
		for (size_t b = 0; b < G_N_ELEMENTS(protos); b++)
			for (size_t c = 0; c < G_N_ELEMENTS(zones); c++)
				for (size_t d = 0; d < G_N_ELEMENTS(marks); d++) {
					struct entry_spec e = { families[a], protos[b], zones[c],
								marks[d] };
					add_entry_with(fd, &e, sport++);
				}
	close(fd);

	g_autoptr(GError) error = NULL;
	ct_request *req = ct_request_new(&error);
	g_assert_no_error(error);
	gint64 later = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		gboolean ok;
		ct_request_set_filter(req, &cases[i].f);
		guint got = dump_table(req, later, count_entry, &error, &ok);
		if (error)
			g_error("dump filter case %zu: %s", i, error->message);
		g_assert_true(ok);
		if (got != cases[i].want)
			g_error("dump filter case %zu: %u entries, want %u", i, got, cases[i].want);
	}
	/* no filter again: all */
	gboolean ok;
	ct_request_set_filter(req, NULL);
	g_assert_cmpuint(dump_table(req, later, count_entry, &error, &ok), ==, 24);
	ct_request_free(req);
	g_assert_cmpint(setns(home, CLONE_NEWNET), ==, 0);
	close(home);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/ct_request/walk/valid", test_walk_valid);
	g_test_add_func("/ct_request/walk/forged-lengths", test_walk_forged_lengths);
	g_test_add_func("/ct_request/walk/short-tail", test_walk_short_tail);
	g_test_add_func("/ct_request/walk/random", test_walk_random);
	g_test_add_func("/ct_request/collect/foreign-sender", test_foreign_sender_ignored);
	g_test_add_func("/ct_request/collect/deadline-despite-flood", test_deadline_despite_flood);
	g_test_add_func("/ct_request/collect/kernel-replies", test_kernel_replies);
	g_test_add_func("/ct_request/dump/conntrack", test_conntrack_dumps);
	g_test_add_func("/ct_request/dump/filter", test_dump_filter);
	return g_test_run();
}
