/*
 * ctlisten - the barest ctnetlink DESTROY reader: the CPU floor for the
 * benchmarks and an independent witness for the integration tests.  libc only.
 *
 *   ctlisten [-b BYTES] [-R] [-M] [-i idle_s] [-T max_s] [-o FILE] [-r READY_FILE]
 *   ctlisten -L [COUNT]
 *
 *   -b  receive buffer, set with SO_RCVBUFFORCE (the kernel doubles it);
 *       default: leave the system default
 *   -R  reliable delivery: NETLINK_BROADCAST_ERROR + NETLINK_NO_ENOBUFS.  The
 *       kernel then parks and resends DESTROY events this socket could not
 *       take, for every listener of the namespace.
 *   -i  exit after this many seconds without an event, once one was seen
 *       (default 3)
 *   -T  exit after this many seconds in any case (default 600)
 *   -o  parse each DESTROY and write one line:
 *       PROTO SRC SPORT DST DPORT PKTS BYTES RPKTS RBYTES START_NS STOP_NS ID
 *       (original tuple; counters of the original and the reply direction;
 *       0 for what the event did not carry).  Without -o nothing is parsed.
 *   -r  create this file once subscribed, so a script can wait for it
 *   -M  read in batches the way ctflowd does (see drain_batched()), so that
 *       a benchmark can tell what ctflowd's way of reading costs from what
 *       it does with the events
 *   -L  instead of listening, dump the conntrack table COUNT times (default
 *       1) in 32 KiB reads, as ctflowd's table walk does, and look at
 *       nothing: the kernel's floor for a walk.  Prints per dump
 *         dump=I entries=N cpu_us=U wall_us=W
 *
 * By default it waits with poll() and takes one message per recv(), like a
 * simple event loop would.  On exit (also SIGINT/SIGTERM) it prints
 *   destroys=N overruns=N drops=N other=N rcvbuf=N reliable=0|1 batched=0|1
 *   reads=N elapsed_s=S
 * overruns: recv() failed with ENOBUFS (events were lost); drops: the
 * socket's drop counter in /proc/net/netlink (counts silent overruns with -R);
 * other: messages that are not DESTROY events, and with -M datagrams longer
 * than a slot; reads: recv()/recvmmsg() calls that returned events.
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
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ctflowd/coalesce.h"

/* -M: the same constants as ctflowd's src/source/ct_source.c */
#define BATCH 256            /* datagrams per recvmmsg() */
#define BATCH_SLOT 8192      /* bytes per datagram slot */
#define DRAIN_MAX_CALLS 16   /* recvmmsg() calls per drain */

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

static double mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "ctlisten: %s: %s\n", what, strerror(errno));
	exit(1);
}

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* ---------------------------------------------------------------- parsing */

struct ct_event {
	int family;
	uint8_t proto;
	uint8_t src[16], dst[16];
	uint16_t sport, dport;
	uint64_t pkts, bytes, rpkts, rbytes, start, stop;
	uint32_t id;
};

static int attr_ok(const struct nlattr *a, int rem)
{
	return rem >= (int)sizeof(*a) && a->nla_len >= sizeof(*a) && (int)a->nla_len <= rem;
}

static const struct nlattr *attr_next(const struct nlattr *a, int *rem)
{
	*rem -= NLA_ALIGN(a->nla_len);
	return (const struct nlattr *)((const char *)a + NLA_ALIGN(a->nla_len));
}

static const void *attr_data(const struct nlattr *a)
{
	return (const char *)a + NLA_HDRLEN;
}

static int attr_len(const struct nlattr *a)
{
	return (int)a->nla_len - NLA_HDRLEN;
}

static int attr_type(const struct nlattr *a)
{
	return a->nla_type & NLA_TYPE_MASK;
}

/* Walks the attributes in the @len bytes at @first (advancing @first). */
#define ATTR_EACH(a, first, len) \
	for (int rem_ = (len); attr_ok((a) = (first), rem_); (first) = attr_next((a), &rem_))

static uint64_t get_be64(const struct nlattr *a)
{
	uint64_t v = 0;
	if (attr_len(a) >= 8)
		memcpy(&v, attr_data(a), 8);
	return be64toh(v);
}

static void parse_counters(const struct nlattr *nest, uint64_t *pkts, uint64_t *bytes)
{
	const struct nlattr *a, *p = attr_data(nest);
	ATTR_EACH(a, p, attr_len(nest)) {
		if (attr_type(a) == CTA_COUNTERS_PACKETS)
			*pkts = get_be64(a);
		else if (attr_type(a) == CTA_COUNTERS_BYTES)
			*bytes = get_be64(a);
	}
}

static void parse_tuple_ip(const struct nlattr *nest, struct ct_event *ev)
{
	const struct nlattr *a, *p = attr_data(nest);
	ATTR_EACH(a, p, attr_len(nest)) {
		switch (attr_type(a)) {
		case CTA_IP_V4_SRC: ev->family = AF_INET; memcpy(ev->src, attr_data(a), 4); break;
		case CTA_IP_V4_DST: ev->family = AF_INET; memcpy(ev->dst, attr_data(a), 4); break;
		case CTA_IP_V6_SRC: ev->family = AF_INET6; memcpy(ev->src, attr_data(a), 16); break;
		case CTA_IP_V6_DST: ev->family = AF_INET6; memcpy(ev->dst, attr_data(a), 16); break;
		}
	}
}

static void parse_tuple_proto(const struct nlattr *nest, struct ct_event *ev)
{
	const struct nlattr *a, *p = attr_data(nest);
	ATTR_EACH(a, p, attr_len(nest)) {
		uint16_t port;
		switch (attr_type(a)) {
		case CTA_PROTO_NUM: ev->proto = *(const uint8_t *)attr_data(a); break;
		case CTA_PROTO_SRC_PORT: memcpy(&port, attr_data(a), 2); ev->sport = ntohs(port); break;
		case CTA_PROTO_DST_PORT: memcpy(&port, attr_data(a), 2); ev->dport = ntohs(port); break;
		}
	}
}

static void parse_tuple(const struct nlattr *nest, struct ct_event *ev)
{
	const struct nlattr *a, *p = attr_data(nest);
	ATTR_EACH(a, p, attr_len(nest)) {
		if (attr_type(a) == CTA_TUPLE_IP)
			parse_tuple_ip(a, ev);
		else if (attr_type(a) == CTA_TUPLE_PROTO)
			parse_tuple_proto(a, ev);
	}
}

static void parse_timestamps(const struct nlattr *nest, struct ct_event *ev)
{
	const struct nlattr *a, *p = attr_data(nest);
	ATTR_EACH(a, p, attr_len(nest)) {
		if (attr_type(a) == CTA_TIMESTAMP_START)
			ev->start = get_be64(a);
		else if (attr_type(a) == CTA_TIMESTAMP_STOP)
			ev->stop = get_be64(a);
	}
}

static void parse_event(const struct nlmsghdr *nh, struct ct_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	int len = (int)nh->nlmsg_len - (int)NLMSG_LENGTH(NLMSG_ALIGN(sizeof(struct nfgenmsg)));
	const struct nlattr *a, *p = (const struct nlattr *)((const char *)NLMSG_DATA(nh) +
							 NLMSG_ALIGN(sizeof(struct nfgenmsg)));
	ATTR_EACH(a, p, len) {
		switch (attr_type(a)) {
		case CTA_TUPLE_ORIG: parse_tuple(a, ev); break;
		case CTA_COUNTERS_ORIG: parse_counters(a, &ev->pkts, &ev->bytes); break;
		case CTA_COUNTERS_REPLY: parse_counters(a, &ev->rpkts, &ev->rbytes); break;
		case CTA_TIMESTAMP: parse_timestamps(a, ev); break;
		case CTA_ID:
			if (attr_len(a) >= 4) {
				uint32_t id;
				memcpy(&id, attr_data(a), 4);
				ev->id = ntohl(id);
			}
			break;
		}
	}
}

static void write_event(FILE *out, const struct ct_event *ev)
{
	char s[INET6_ADDRSTRLEN] = "-", d[INET6_ADDRSTRLEN] = "-";
	if (ev->family) {
		inet_ntop(ev->family, ev->src, s, sizeof(s));
		inet_ntop(ev->family, ev->dst, d, sizeof(d));
	}
	fprintf(out, "%u %s %u %s %u %llu %llu %llu %llu %llu %llu %u\n", ev->proto, s, ev->sport, d,
		ev->dport, (unsigned long long)ev->pkts, (unsigned long long)ev->bytes,
		(unsigned long long)ev->rpkts, (unsigned long long)ev->rbytes,
		(unsigned long long)ev->start, (unsigned long long)ev->stop, ev->id);
}

/* The drop counter of our socket: /proc/net/netlink, row with our port id. */
static long socket_drops(uint32_t portid)
{
	FILE *f = fopen("/proc/net/netlink", "r");
	char line[512];
	long drops = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long sk;
		int proto;
		unsigned int pid, groups;
		long rmem, wmem, dump, locks, d;
		if (sscanf(line, "%llx %d %u %x %ld %ld %ld %ld %ld", &sk, &proto, &pid, &groups,
			   &rmem, &wmem, &dump, &locks, &d) == 9 &&
		    proto == NETLINK_NETFILTER && pid == portid) {
			drops = d;
			break;
		}
	}
	fclose(f);
	return drops;
}

/* ---------------------------------------------------------------- reading */

struct counts {
	long destroys, overruns, other;
	long reads;   /* recv()/recvmmsg() calls that returned events */
};

/* Counts (and with @out writes) the messages of one datagram. */
static void take_datagram(const char *buf, int len, struct counts *n, FILE *out)
{
	for (const struct nlmsghdr *nh = (const struct nlmsghdr *)buf; NLMSG_OK(nh, len);
	     nh = NLMSG_NEXT(nh, len)) {
		if (NFNL_SUBSYS_ID(nh->nlmsg_type) != NFNL_SUBSYS_CTNETLINK ||
		    NFNL_MSG_TYPE(nh->nlmsg_type) != IPCTNL_MSG_CT_DELETE) {
			n->other++;
			continue;
		}
		n->destroys++;
		if (out) {
			struct ct_event ev;
			parse_event(nh, &ev);
			write_event(out, &ev);
		}
	}
}

/* The default mode: one datagram per recv().  Returns 1 when it saw
 * anything (an event or an overrun). */
static int read_one(int fd, struct counts *n, FILE *out)
{
	/* Large enough for any single conntrack message. */
	static char buf[65536];
	ssize_t got = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (got < 0) {
		if (errno == ENOBUFS) {
			n->overruns++;
			return 1;
		}
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		die("recv");
	}
	n->reads++;
	take_datagram(buf, (int)got, n, out);
	return 1;
}

static char (*slots)[BATCH_SLOT];
static struct mmsghdr msgs[BATCH];
static struct iovec iov[BATCH];

static void batch_init(void)
{
	slots = calloc(BATCH, sizeof(*slots));
	if (!slots)
		die("calloc");
	for (int i = 0; i < BATCH; i++) {
		iov[i].iov_base = slots[i];
		iov[i].iov_len = sizeof(*slots);
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
}

/* One drain as ctflowd does it: recvmmsg() of up to BATCH datagrams until
 * the socket is empty (a short batch or EAGAIN), at most DRAIN_MAX_CALLS
 * calls.  Returns the datagrams taken. */
static long drain_once(int fd, struct counts *n, FILE *out)
{
	long taken = 0;
	for (int call = 0; call < DRAIN_MAX_CALLS; call++) {
		int got = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			if (errno == ENOBUFS) {
				n->overruns++;
				continue;
			}
			die("recvmmsg");
		}
		n->reads++;
		taken += got;
		for (int i = 0; i < got; i++) {
			if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
				n->other++;
				continue;
			}
			take_datagram(slots[i], (int)msgs[i].msg_len, n, out);
		}
		if (got < BATCH)
			break;
	}
	return taken;
}

/* -M: drains, sleeping between drains for as long as ctflowd's read
 * coalescing says (src/source/coalesce.c, the same code), until a drain
 * comes back short of a burst; then back to poll().  Returns 1 when it saw
 * anything. */
static int drain_batched(int fd, struct coalesce *co, struct counts *n, FILE *out)
{
	long overruns = n->overruns, total = 0;
	for (;;) {
		long before = n->overruns;
		long taken = drain_once(fd, n, out);
		total += taken;
		unsigned int pause = coalesce_pause(co, (guint)taken, n->overruns != before,
						    g_get_monotonic_time());
		if (!pause || stop_requested)
			break;
		struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)pause * 1000 };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	return total > 0 || n->overruns != overruns;
}

/* -L: one dump of the table; entries seen, or -1 */
static long dump_table(int fd, uint32_t seq)
{
	static char buf[32768];   /* what ctflowd's walk reads at a time */
	struct {
		struct nlmsghdr nh;
		struct nfgenmsg nfg;
	} req = {
		.nh = { .nlmsg_len = sizeof(req),
			.nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET,
			.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = seq },
		.nfg = { .nfgen_family = AF_UNSPEC, .version = NFNETLINK_V0 },
	};
	long entries = 0;

	if (send(fd, &req, sizeof(req), 0) < 0)
		return -1;
	for (;;) {
		ssize_t len = recv(fd, buf, sizeof(buf), 0);
		if (len < 0 && errno == EINTR)
			continue;
		if (len <= 0)
			return -1;
		const struct nlmsghdr *nh = (const struct nlmsghdr *)buf;
		int rem = (int)len;
		for (; NLMSG_OK(nh, rem); nh = NLMSG_NEXT(nh, rem)) {
			if (nh->nlmsg_seq != seq)
				continue;
			if (nh->nlmsg_type == NLMSG_DONE)
				return entries;
			if (nh->nlmsg_type == NLMSG_ERROR)
				return -1;
			entries++;
		}
	}
}

static uint64_t cpu_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static int dump_mode(int count)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };

	if (fd < 0)
		die("socket(NETLINK_NETFILTER)");
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("bind");
	for (int i = 1; i <= count; i++) {
		uint64_t c0 = cpu_now_us();
		double t0 = mono_now();
		long n = dump_table(fd, (uint32_t)i);
		if (n < 0)
			die("conntrack dump");
		printf("dump=%d entries=%ld cpu_us=%llu wall_us=%.0f\n", i, n,
		       (unsigned long long)(cpu_now_us() - c0), (mono_now() - t0) * 1e6);
	}
	close(fd);
	return 0;
}

static double parse_secs(const char *s, char opt)
{
	char *end;
	double v = strtod(s, &end);
	if (*end || end == s || v < 0) {
		fprintf(stderr, "ctlisten: -%c wants seconds, got '%s'\n", opt, s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	long rcvbuf = 0;
	int reliable = 0, batched = 0, c;
	double idle = 3, tmax = 600;
	const char *out_path = NULL, *ready = NULL;
	if (argc >= 2 && strcmp(argv[1], "-L") == 0)
		return dump_mode(argc >= 3 ? atoi(argv[2]) : 1);
	while ((c = getopt(argc, argv, "b:RMi:T:o:r:")) != -1) {
		switch (c) {
		case 'b': {
			char *end;
			rcvbuf = strtol(optarg, &end, 10);
			if (*end || rcvbuf <= 0 || rcvbuf > (1L << 30)) {
				fprintf(stderr, "ctlisten: -b wants a byte count, got '%s'\n", optarg);
				return 2;
			}
			break;
		}
		case 'R': reliable = 1; break;
		case 'M': batched = 1; break;
		case 'i': idle = parse_secs(optarg, 'i'); break;
		case 'T': tmax = parse_secs(optarg, 'T'); break;
		case 'o': out_path = optarg; break;
		case 'r': ready = optarg; break;
		default:
			fprintf(stderr, "usage: ctlisten [-b BYTES] [-R] [-M] [-i idle_s] [-T max_s] [-o FILE] "
					"[-r READY]\n       ctlisten -L [COUNT]\n");
			return 2;
		}
	}
	FILE *out = NULL;
	if (out_path && !(out = fopen(out_path, "w")))
		die(out_path);

	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	if (fd < 0)
		die("socket(NETLINK_NETFILTER)");
	if (rcvbuf > 0) {
		int v = (int)rcvbuf;
		if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) < 0)
			die("SO_RCVBUFFORCE");
	}
	if (reliable) {
		int on = 1;
		if (setsockopt(fd, SOL_NETLINK, NETLINK_BROADCAST_ERROR, &on, sizeof(on)) < 0)
			die("NETLINK_BROADCAST_ERROR");
		if (setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &on, sizeof(on)) < 0)
			die("NETLINK_NO_ENOBUFS");
	}
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK,
				  .nl_groups = 1u << (NFNLGRP_CONNTRACK_DESTROY - 1) };
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("bind");
	socklen_t sl = sizeof(sa);
	if (getsockname(fd, (struct sockaddr *)&sa, &sl) < 0)
		die("getsockname");
	int eff = 0;
	sl = sizeof(eff);
	getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &eff, &sl);

	struct sigaction sig = { .sa_handler = on_signal };
	sigaction(SIGINT, &sig, NULL);
	sigaction(SIGTERM, &sig, NULL);
	if (ready) {
		FILE *r = fopen(ready, "w");
		if (!r || fclose(r) != 0)
			die(ready);
	}

	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	struct counts n = { 0 };
	double t0 = mono_now(), last = 0;
	struct coalesce co;
	if (batched) {
		batch_init();
		coalesce_init(&co, (guint64)(eff > 0 ? eff : 0));
		/* as ctflowd's reader: pauses of tens of microseconds */
		prctl(PR_SET_TIMERSLACK, 1UL);
	}
	while (!stop_requested) {
		double t = mono_now();
		if (t - t0 >= tmax || (last > 0 && t - last >= idle))
			break;
		int pr = poll(&pfd, 1, 100);
		if (pr < 0 && errno != EINTR)
			die("poll");
		if (pr <= 0)
			continue;
		if (batched ? drain_batched(fd, &co, &n, out) : read_one(fd, &n, out))
			last = mono_now();
	}
	if (out && fclose(out) != 0)
		die(out_path);
	printf("destroys=%ld overruns=%ld drops=%ld other=%ld rcvbuf=%d reliable=%d "
	       "batched=%d reads=%ld elapsed_s=%.3f\n",
	       n.destroys, n.overruns, socket_drops(sa.nl_pid), n.other, eff, reliable, batched,
	       n.reads, mono_now() - t0);
	return 0;
}
