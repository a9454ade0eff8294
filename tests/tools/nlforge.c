/*
 * nlforge - sends hand-made netlink messages to another socket's port id,
 * as any process with CAP_NET_ADMIN in a network namespace can: the attacks
 * a conntrack event reader must withstand.  libc only.
 *
 *   nlforge -p PORTID KIND [options]
 *
 *   KIND  destroy       a well-formed conntrack DESTROY event (IPv4 UDP) of a
 *                       flow that never existed
 *         len-fffffff0  a datagram whose first header claims 0xFFFFFFF0 bytes
 *         len-ffffffff  ... 0xFFFFFFFF bytes
 *         len-zero      ... 0 bytes (a walk that trusts it stands still)
 *   -s ADDR -d ADDR     the forged flow's addresses (default 203.0.113.66 ->
 *                       198.51.100.77)
 *   -S PORT -D PORT     its ports (default 4444 -> 5555)
 *   -B BYTES -P PKTS    its counters (default 999999999999 bytes, 1000000 pkts)
 *   -n COUNT            send it this many times (default 1)
 *
 * Exits 0 once every message was sent (the kernel accepted it for delivery).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct msg {
	uint8_t buf[512];
	size_t len;
};

static struct nlattr *put(struct msg *m, uint16_t type, const void *data, size_t len)
{
	struct nlattr *a = (struct nlattr *)(m->buf + m->len);

	a->nla_type = type;
	a->nla_len = (uint16_t)(NLA_HDRLEN + len);
	if (len)
		memcpy((uint8_t *)a + NLA_HDRLEN, data, len);
	m->len += NLA_ALIGN(a->nla_len);
	return a;
}

static struct nlattr *nest(struct msg *m, uint16_t type)
{
	return put(m, type | NLA_F_NESTED, NULL, 0);
}

static void end(struct msg *m, struct nlattr *a)
{
	a->nla_len = (uint16_t)(m->buf + m->len - (uint8_t *)a);
}

static void put_u8(struct msg *m, uint16_t t, uint8_t v) { put(m, t, &v, 1); }
static void put_be16(struct msg *m, uint16_t t, uint16_t v) { v = htons(v); put(m, t, &v, 2); }
static void put_be32(struct msg *m, uint16_t t, uint32_t v) { v = htonl(v); put(m, t, &v, 4); }
static void put_be64(struct msg *m, uint16_t t, uint64_t v) { v = htobe64(v); put(m, t, &v, 8); }

static void put_tuple(struct msg *m, uint16_t type, struct in_addr src, struct in_addr dst,
		      uint16_t sport, uint16_t dport)
{
	struct nlattr *t = nest(m, type), *ip = nest(m, CTA_TUPLE_IP);

	put(m, CTA_IP_V4_SRC, &src, 4);
	put(m, CTA_IP_V4_DST, &dst, 4);
	end(m, ip);
	struct nlattr *proto = nest(m, CTA_TUPLE_PROTO);
	put_u8(m, CTA_PROTO_NUM, IPPROTO_UDP);
	put_be16(m, CTA_PROTO_SRC_PORT, sport);
	put_be16(m, CTA_PROTO_DST_PORT, dport);
	end(m, proto);
	end(m, t);
}

static void build_destroy(struct msg *m, struct in_addr src, struct in_addr dst, uint16_t sport,
			  uint16_t dport, uint64_t bytes, uint64_t pkts)
{
	struct nlmsghdr *h = (struct nlmsghdr *)m->buf;
	struct nfgenmsg *g = (struct nfgenmsg *)(m->buf + NLMSG_HDRLEN);
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	uint64_t now_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
	memset(m, 0, sizeof(*m));
	h->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE;
	h->nlmsg_flags = 0;
	g->nfgen_family = AF_INET;
	g->version = NFNETLINK_V0;
	m->len = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(*g));
	put_tuple(m, CTA_TUPLE_ORIG, src, dst, sport, dport);
	put_tuple(m, CTA_TUPLE_REPLY, dst, src, dport, sport);
	put_be32(m, CTA_STATUS, 0x18e);
	put_be32(m, CTA_ID, 0x4f524745);
	struct nlattr *c = nest(m, CTA_COUNTERS_ORIG);
	put_be64(m, CTA_COUNTERS_PACKETS, pkts);
	put_be64(m, CTA_COUNTERS_BYTES, bytes);
	end(m, c);
	c = nest(m, CTA_COUNTERS_REPLY);
	put_be64(m, CTA_COUNTERS_PACKETS, 0);
	put_be64(m, CTA_COUNTERS_BYTES, 0);
	end(m, c);
	struct nlattr *ts = nest(m, CTA_TIMESTAMP);
	put_be64(m, CTA_TIMESTAMP_START, now_ns - 5000000000ull);
	put_be64(m, CTA_TIMESTAMP_STOP, now_ns);
	end(m, ts);
	h->nlmsg_len = (uint32_t)m->len;
}

/* a DESTROY whose header lies about its length */
static void build_bad_length(struct msg *m, uint32_t claimed)
{
	build_destroy(m, (struct in_addr){ htonl(0xcb007142) }, (struct in_addr){ htonl(0xc633644d) },
		      1, 2, 1, 1);
	((struct nlmsghdr *)m->buf)->nlmsg_len = claimed;
}

static void usage(void)
{
	fprintf(stderr, "usage: nlforge -p PORTID destroy|len-fffffff0|len-ffffffff|len-zero "
			"[-s ADDR] [-d ADDR] [-S PORT] [-D PORT] [-B BYTES] [-P PKTS] [-n COUNT]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct in_addr src, dst;
	unsigned long port = 0, sport = 4444, dport = 5555, count = 1;
	unsigned long long bytes = 999999999999ull, pkts = 1000000;
	int opt;

	inet_pton(AF_INET, "203.0.113.66", &src);
	inet_pton(AF_INET, "198.51.100.77", &dst);
	while ((opt = getopt(argc, argv, "p:s:d:S:D:B:P:n:")) != -1) {
		switch (opt) {
		case 'p': port = strtoul(optarg, NULL, 0); break;
		case 's': if (inet_pton(AF_INET, optarg, &src) != 1) usage(); break;
		case 'd': if (inet_pton(AF_INET, optarg, &dst) != 1) usage(); break;
		case 'S': sport = strtoul(optarg, NULL, 0); break;
		case 'D': dport = strtoul(optarg, NULL, 0); break;
		case 'B': bytes = strtoull(optarg, NULL, 0); break;
		case 'P': pkts = strtoull(optarg, NULL, 0); break;
		case 'n': count = strtoul(optarg, NULL, 0); break;
		default: usage();
		}
	}
	if (optind != argc - 1 || port == 0 || port > UINT32_MAX)
		usage();
	struct msg m;
	const char *kind = argv[optind];
	if (strcmp(kind, "destroy") == 0)
		build_destroy(&m, src, dst, (uint16_t)sport, (uint16_t)dport, bytes, pkts);
	else if (strcmp(kind, "len-fffffff0") == 0)
		build_bad_length(&m, 0xfffffff0u);
	else if (strcmp(kind, "len-ffffffff") == 0)
		build_bad_length(&m, 0xffffffffu);
	else if (strcmp(kind, "len-zero") == 0)
		build_bad_length(&m, 0);
	else
		usage();

	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	if (fd < 0) {
		perror("nlforge: socket");
		return 1;
	}
	struct sockaddr_nl to = { .nl_family = AF_NETLINK, .nl_pid = (uint32_t)port };
	for (unsigned long i = 0; i < count; i++) {
		if (sendto(fd, m.buf, m.len, 0, (struct sockaddr *)&to, sizeof(to)) < 0) {
			fprintf(stderr, "nlforge: sending to port id %lu: %s\n", port, strerror(errno));
			return 1;
		}
	}
	close(fd);
	return 0;
}
