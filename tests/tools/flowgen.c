/*
 * flowgen - traffic with known flows and known per-direction counts, for the
 * integration tests and benchmarks of ctflowd.  libc only.
 *
 *   flowgen udp -d DST -n N [-P pkts] [-l payload] [-p dport_base]
 *               [-S sport_lo] [-s SRC] [-b batch] [-r flows_per_s]
 *       Raw IPv4 UDP (IP_HDRINCL) sent with sendmmsg, so that many distinct
 *       flows go out fast.  Flow i:
 *         sport = sport_lo + i % (65536 - sport_lo)
 *         dport = dport_base + i / (65536 - sport_lo)
 *       Each packet is 28 + payload bytes at L3, which is what conntrack
 *       counts.  Nothing is expected back.
 *
 *   flowgen udp6 -d DST6 -n N [-P pkts] [-l payload] [-p dport] [-S sport_base]
 *       IPv6 UDP through ordinary sockets, flow i bound to source port
 *       sport_base + i.  Each packet is 48 + payload bytes at L3.
 *
 *   flowgen tcp -d DST -n N -p PORT [-l bytes] [-c concurrency] [-o FILE]
 *       N real TCP connections: connect, send `bytes`, shut down the write
 *       side, read to EOF, close.  How many segments a connection takes is
 *       up to the two TCP stacks (delayed ACKs, piggybacked FINs), so each
 *       connection's own counts are taken from TCP_INFO when it ends and
 *       turned into L3 packets/bytes per direction; -o writes one line per
 *       connection: "6 SRC SPORT DST DPORT FWD_PKTS FWD_BYTES REV_PKTS REV_BYTES".
 *
 *   flowgen tcp-server -p PORT [-t seconds]
 *       Accepts, reads to EOF, closes; exits after `seconds` or on SIGTERM.
 *
 * Every mode prints one line of key=value pairs on stdout.  Exit status is
 * non-zero when not every flow could be created as asked.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static double mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double wall_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void vfail(int err, const char *fmt, va_list ap)
{
	fprintf(stderr, "flowgen: ");
	vfprintf(stderr, fmt, ap);
	if (err)
		fprintf(stderr, ": %s", strerror(err));
	fputc('\n', stderr);
	exit(1);
}

/* fail: a usage or data problem; fail_sys: a system call failed (errno). */
static void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(0, fmt, ap);
	va_end(ap);
}

static void fail_sys(const char *fmt, ...)
{
	int err = errno;
	va_list ap;
	va_start(ap, fmt);
	vfail(err, fmt, ap);
	va_end(ap);
}

struct opts {
	const char *src, *dst, *out;
	long n;
	long pkts, len, port, sport, batch, conc;
	double rate, secs;
};

static long parse_long(const char *s, long lo, long hi, char opt)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < lo || v > hi) {
		fprintf(stderr, "flowgen: -%c wants an integer in %ld..%ld, got '%s'\n", opt, lo, hi, s);
		exit(2);
	}
	return v;
}

/* ------------------------------------------------------------- udp (IPv4) */

static int run_udp(const struct opts *o)
{
	struct in_addr saddr = { 0 }, daddr;
	if (o->src && inet_pton(AF_INET, o->src, &saddr) != 1)
		fail("bad source address '%s'", o->src);
	if (inet_pton(AF_INET, o->dst, &daddr) != 1)
		fail("bad IPv4 destination '%s'", o->dst);
	if (o->len > 1400)
		fail("payload %ld too large (keep packets below the MTU)", o->len);

	long nsport = 65536 - o->sport;
	long last_dport = o->port + (o->n - 1) / nsport;
	if (last_dport > 65535)
		fail("%ld flows do not fit above dport %ld", o->n, o->port);

	int fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
	if (fd < 0)
		fail_sys("socket(AF_INET, SOCK_RAW)");
	int sndbuf = 4 << 20;
	/* A large send buffer keeps sendmmsg from blocking between batches. */
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));

	size_t plen = 28 + (size_t)o->len;
	size_t nb = (size_t)o->batch;
	/* each packet starts on an 8-byte boundary: the IP header is read
	 * as a struct */
	size_t stride = (plen + 7) & ~(size_t)7;
	unsigned char *pkts = calloc(nb, stride);
	struct mmsghdr *msgs = calloc(nb, sizeof(*msgs));
	struct iovec *iov = calloc(nb, sizeof(*iov));
	if (!pkts || !msgs || !iov)
		fail("out of memory");
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_addr = daddr };
	for (size_t k = 0; k < nb; k++) {
		unsigned char *p = pkts + k * stride;
		struct iphdr *ip = (struct iphdr *)p;
		ip->version = 4;
		ip->ihl = 5;
		ip->ttl = 64;
		ip->protocol = IPPROTO_UDP;
		ip->tot_len = htons((uint16_t)plen);
		/* saddr 0, id 0 and check 0 are filled in by the kernel. */
		ip->saddr = saddr.s_addr;
		ip->daddr = daddr.s_addr;
		struct udphdr *uh = (struct udphdr *)(p + 20);
		uh->len = htons((uint16_t)(8 + o->len));
		uh->check = 0; /* no UDP checksum is legal over IPv4 */
		memset(p + 28, 'u', (size_t)o->len);
		iov[k].iov_base = p;
		iov[k].iov_len = plen;
		msgs[k].msg_hdr.msg_iov = &iov[k];
		msgs[k].msg_hdr.msg_iovlen = 1;
		msgs[k].msg_hdr.msg_name = &to;
		msgs[k].msg_hdr.msg_namelen = sizeof(to);
	}

	/* Packet j of the run belongs to flow j / pkts: a flow's packets go out
	 * back to back, so a flow is complete as soon as its packets are sent. */
	long total = o->n * o->pkts, sent = 0, retries = 0;
	double w0 = wall_now(), t0 = mono_now();
	while (sent < total) {
		size_t k = 0;
		for (; k < nb && sent + (long)k < total; k++) {
			long flow = (sent + (long)k) / o->pkts;
			struct udphdr *uh = (struct udphdr *)(pkts + k * stride + 20);
			uh->source = htons((uint16_t)(o->sport + flow % nsport));
			uh->dest = htons((uint16_t)(o->port + flow / nsport));
		}
		int r = sendmmsg(fd, msgs, (unsigned)k, 0);
		if (r < 0) {
			if (errno == ENOBUFS || errno == EAGAIN || errno == EINTR) {
				retries++;
				usleep(100);
				continue;
			}
			fail_sys("sendmmsg");
		}
		sent += r;
		if (o->rate > 0) {
			double due = (double)(sent / o->pkts) / o->rate, el = mono_now() - t0;
			if (due > el)
				usleep((useconds_t)((due - el) * 1e6));
		}
	}
	double el = mono_now() - t0;
	close(fd);
	printf("mode=udp flows=%ld pkts_per_flow=%ld bytes_per_flow=%ld pkt_bytes=%zu "
	       "pkts=%ld bytes=%ld dport_first=%ld dport_last=%ld sport_lo=%ld "
	       "send_retries=%ld elapsed_s=%.4f flows_per_s=%.0f start_wall=%.6f end_wall=%.6f\n",
	       o->n, o->pkts, (long)plen * o->pkts, plen, sent, sent * (long)plen, o->port,
	       last_dport, o->sport, retries, el, el > 0 ? o->n / el : 0.0, w0, w0 + el);
	free(pkts);
	free(msgs);
	free(iov);
	return 0;
}

/* ------------------------------------------------------------- udp6 */

static int run_udp6(const struct opts *o)
{
	struct sockaddr_in6 to = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)o->port) };
	struct sockaddr_in6 from = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT };
	if (inet_pton(AF_INET6, o->dst, &to.sin6_addr) != 1)
		fail("bad IPv6 destination '%s'", o->dst);
	if (o->src && inet_pton(AF_INET6, o->src, &from.sin6_addr) != 1)
		fail("bad IPv6 source '%s'", o->src);
	if (o->sport + o->n - 1 > 65535)
		fail("%ld flows do not fit above sport %ld", o->n, o->sport);
	if (o->len > 1400)
		fail("payload %ld too large (keep packets below the MTU)", o->len);

	char *payload = malloc((size_t)o->len + 1);
	if (!payload)
		fail("out of memory");
	memset(payload, '6', (size_t)o->len + 1);
	long sent = 0, retries = 0;
	double w0 = wall_now(), t0 = mono_now();
	for (long i = 0; i < o->n; i++) {
		int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			fail_sys("socket(AF_INET6)");
		from.sin6_port = htons((uint16_t)(o->sport + i));
		if (bind(fd, (struct sockaddr *)&from, sizeof(from)) < 0)
			fail_sys("bind to source port %ld", o->sport + i);
		for (long k = 0; k < o->pkts;) {
			if (sendto(fd, payload, (size_t)o->len, 0, (struct sockaddr *)&to, sizeof(to)) < 0) {
				if (errno == ENOBUFS || errno == EAGAIN || errno == EINTR) {
					retries++;
					usleep(100);
					continue;
				}
				fail_sys("sendto");
			}
			k++;
			sent++;
		}
		close(fd);
		if (o->rate > 0) {
			double due = (double)(i + 1) / o->rate, el = mono_now() - t0;
			if (due > el)
				usleep((useconds_t)((due - el) * 1e6));
		}
	}
	double el = mono_now() - t0;
	long plen = 48 + o->len;
	printf("mode=udp6 flows=%ld pkts_per_flow=%ld bytes_per_flow=%ld pkt_bytes=%ld "
	       "pkts=%ld bytes=%ld dport=%ld sport_first=%ld sport_last=%ld send_retries=%ld "
	       "elapsed_s=%.4f flows_per_s=%.0f start_wall=%.6f end_wall=%.6f\n",
	       o->n, o->pkts, plen * o->pkts, plen, sent, sent * plen, o->port, o->sport,
	       o->sport + o->n - 1, retries, el, el > 0 ? o->n / el : 0.0, w0, w0 + el);
	free(payload);
	return 0;
}

/* ------------------------------------------------------------- tcp client */

/* TCP option bytes, as Linux lays them out (tcp_syn_options,
 * tcp_synack_options, tcp_established_options), for one set of options. */
static int syn_option_bytes(int ts, int sack, int ws)
{
	return 4 /* MSS */ + (ts ? 12 : (sack ? 4 : 0)) + (ws ? 4 : 0);
}

static int read_sysctl_int(const char *path, int dflt)
{
	FILE *f = fopen(path, "r");
	int v = dflt;
	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = dflt;
		fclose(f);
	}
	return v;
}

struct tcp_totals {
	long fwd_pkts_min, fwd_pkts_max, rev_pkts_min, rev_pkts_max;
	long fwd_bytes_min, fwd_bytes_max, rev_bytes_min, rev_bytes_max;
	long retrans;
};

struct tcp_conn {
	int fd;
	int reading; /* request sent, waiting for EOF */
	struct sockaddr_in local; /* taken while connected: a closed socket has no name */
};

static int tcp_connect(const struct sockaddr_in *to)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fail_sys("socket(AF_INET, SOCK_STREAM)");
	int one = 1;
	/* The request must leave as its own segment, not wait for an ACK. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)to, sizeof(*to)) < 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

static void minmax(long v, long *lo, long *hi)
{
	if (*lo < 0 || v < *lo)
		*lo = v;
	if (v > *hi)
		*hi = v;
}

/* Counts of one finished connection from the client's TCP_INFO, converted to
 * what a router in the path counts at L3. */
static int tcp_account(const struct tcp_conn *c, const struct sockaddr_in *peer, int syn_opts,
		       FILE *out, struct tcp_totals *tt)
{
	int fd = c->fd;
	struct tcp_info ti;
	socklen_t tl = sizeof(ti);
	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) < 0 ||
	    tl < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof(ti.tcpi_bytes_received))
		return -1;
	int ts = !!(ti.tcpi_options & TCPI_OPT_TIMESTAMPS);
	int sack = !!(ti.tcpi_options & TCPI_OPT_SACK);
	int ws = !!(ti.tcpi_options & TCPI_OPT_WSCALE);
	int hdr = 40 + (ts ? 12 : 0);
	/* The SYN carries what this host offers; the SYN-ACK what was agreed.
	 * bytes_received counts the peer's FIN as one byte (it follows
	 * rcv_nxt); the caller only gets here after reading EOF. */
	long fwd_pkts = ti.tcpi_segs_out, rev_pkts = ti.tcpi_segs_in;
	long fwd_bytes = 40 + syn_opts + (fwd_pkts - 1) * hdr + (long)ti.tcpi_bytes_sent;
	long rev_bytes = 40 + syn_option_bytes(ts, sack, ws) + (rev_pkts - 1) * hdr +
			 (long)ti.tcpi_bytes_received - 1;
	tt->retrans += ti.tcpi_total_retrans;
	minmax(fwd_pkts, &tt->fwd_pkts_min, &tt->fwd_pkts_max);
	minmax(rev_pkts, &tt->rev_pkts_min, &tt->rev_pkts_max);
	minmax(fwd_bytes, &tt->fwd_bytes_min, &tt->fwd_bytes_max);
	minmax(rev_bytes, &tt->rev_bytes_min, &tt->rev_bytes_max);
	if (out) {
		char ls[INET_ADDRSTRLEN], rs[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &c->local.sin_addr, ls, sizeof(ls));
		inet_ntop(AF_INET, &peer->sin_addr, rs, sizeof(rs));
		fprintf(out, "6 %s %u %s %u %ld %ld %ld %ld%s\n", ls, ntohs(c->local.sin_port), rs,
			ntohs(peer->sin_port), fwd_pkts, fwd_bytes, rev_pkts, rev_bytes,
			ti.tcpi_total_retrans ? " retrans" : "");
	}
	return 0;
}

static void fmt_range(char *buf, size_t len, long lo, long hi)
{
	if (lo < 0)
		snprintf(buf, len, "none");
	else if (lo == hi)
		snprintf(buf, len, "%ld", lo);
	else
		snprintf(buf, len, "varies(%ld-%ld)", lo, hi);
}

static int run_tcp(const struct opts *o)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)o->port) };
	if (inet_pton(AF_INET, o->dst, &to.sin_addr) != 1)
		fail("bad IPv4 destination '%s'", o->dst);
	FILE *out = NULL;
	if (o->out && !(out = fopen(o->out, "w")))
		fail_sys("cannot write %s", o->out);
	int syn_opts = syn_option_bytes(read_sysctl_int("/proc/sys/net/ipv4/tcp_timestamps", 1) != 0,
					read_sysctl_int("/proc/sys/net/ipv4/tcp_sack", 1) != 0,
					read_sysctl_int("/proc/sys/net/ipv4/tcp_window_scaling", 1) != 0);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		fail_sys("epoll_create1");
	char *payload = malloc((size_t)o->len + 1);
	char rbuf[4096];
	struct tcp_conn *cs = calloc((size_t)o->conc, sizeof(*cs));
	if (!payload || !cs)
		fail("out of memory");
	memset(payload, 't', (size_t)o->len + 1);
	for (long i = 0; i < o->conc; i++)
		cs[i].fd = -1;
	struct tcp_totals tt = { -1, 0, -1, 0, -1, 0, -1, 0, 0 };
	long started = 0, done = 0, failed = 0, unaccounted = 0, active = 0;
	double w0 = wall_now(), t0 = mono_now();
	struct epoll_event ev;

	for (;;) {
		/* keep `conc` connections in flight */
		for (long i = 0; i < o->conc && started < o->n; i++) {
			if (cs[i].fd >= 0)
				continue;
			int fd = tcp_connect(&to);
			started++;
			if (fd < 0) {
				failed++;
				continue;
			}
			cs[i].fd = fd;
			cs[i].reading = 0;
			ev.events = EPOLLOUT;
			ev.data.u64 = (uint64_t)i;
			if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
				fail_sys("epoll_ctl");
			active++;
		}
		if (active == 0)
			break;
		struct epoll_event evs[256];
		int n = epoll_wait(ep, evs, 256, (int)(o->secs * 1000));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "flowgen: tcp: no progress for %.0f s, %ld connections open\n",
				o->secs, active);
			failed += active;
			break;
		}
		for (int j = 0; j < n; j++) {
			struct tcp_conn *c = &cs[evs[j].data.u64];
			int finished = 0, bad = 0;
			if (!c->reading) {
				int err = 0;
				socklen_t el = sizeof(err);
				getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
				socklen_t ll = sizeof(c->local);
				if (err || (evs[j].events & (EPOLLERR | EPOLLHUP)) ||
				    getsockname(c->fd, (struct sockaddr *)&c->local, &ll) < 0) {
					bad = 1;
				} else {
					if (o->len > 0 && write(c->fd, payload, (size_t)o->len) != o->len)
						bad = 1;
					else if (shutdown(c->fd, SHUT_WR) < 0)
						bad = 1;
					c->reading = 1;
					ev.events = EPOLLIN | EPOLLRDHUP;
					ev.data.u64 = evs[j].data.u64;
					if (!bad && epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
						fail_sys("epoll_ctl");
				}
			} else {
				ssize_t r;
				while ((r = read(c->fd, rbuf, sizeof(rbuf))) > 0)
					;
				if (r == 0)
					finished = 1;
				else if (errno != EAGAIN)
					bad = 1;
			}
			if (finished) {
				if (tcp_account(c, &to, syn_opts, out, &tt) < 0)
					unaccounted++;
				done++;
			}
			if (finished || bad) {
				if (bad)
					failed++;
				close(c->fd);
				c->fd = -1;
				active--;
			}
		}
	}
	double el = mono_now() - t0;
	if (out && fclose(out) != 0)
		fail_sys("writing %s", o->out);
	char fp[64], fb[64], rp[64], rb[64];
	fmt_range(fp, sizeof(fp), tt.fwd_pkts_min, tt.fwd_pkts_max);
	fmt_range(fb, sizeof(fb), tt.fwd_bytes_min, tt.fwd_bytes_max);
	fmt_range(rp, sizeof(rp), tt.rev_pkts_min, tt.rev_pkts_max);
	fmt_range(rb, sizeof(rb), tt.rev_bytes_min, tt.rev_bytes_max);
	printf("mode=tcp flows=%ld failed=%ld payload=%ld pkts_per_flow=%s bytes_per_flow=%s "
	       "rev_pkts_per_flow=%s rev_bytes_per_flow=%s retrans=%ld unaccounted=%ld dport=%ld "
	       "elapsed_s=%.4f flows_per_s=%.0f start_wall=%.6f end_wall=%.6f\n",
	       done, failed, o->len, fp, fb, rp, rb, tt.retrans, unaccounted, o->port, el,
	       el > 0 ? done / el : 0.0, w0, w0 + el);
	free(payload);
	free(cs);
	return (failed || unaccounted || done != o->n) ? 1 : 0;
}

/* ------------------------------------------------------------- tcp server */

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static int run_tcp_server(const struct opts *o)
{
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
	if (lfd < 0)
		fail_sys("socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)o->port) };
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0)
		fail_sys("bind to port %ld", o->port);
	if (listen(lfd, 4096) < 0)
		fail_sys("listen");
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd }, evs[256];
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	long accepted = 0, closed = 0;
	static char buf[65536];
	double end = mono_now() + o->secs;
	fprintf(stderr, "flowgen: tcp-server listening on port %ld\n", o->port);
	while (!stop_requested && mono_now() < end) {
		int n = epoll_wait(ep, evs, 256, 200);
		for (int j = 0; j < n; j++) {
			int fd = evs[j].data.fd;
			if (fd == lfd) {
				int c;
				while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					struct epoll_event ce = { .events = EPOLLIN | EPOLLRDHUP, .data.fd = c };
					epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
					accepted++;
				}
				continue;
			}
			ssize_t r;
			while ((r = read(fd, buf, sizeof(buf))) > 0)
				;
			if (r == 0 || errno != EAGAIN) {
				close(fd); /* our FIN goes out with it */
				closed++;
			}
		}
	}
	printf("mode=tcp-server accepted=%ld closed=%ld\n", accepted, closed);
	return 0;
}

/* ------------------------------------------------------------- main */

static void usage(void)
{
	fprintf(stderr,
		"usage: flowgen udp -d DST -n N [-P pkts] [-l payload] [-p dport_base] [-S sport_lo]\n"
		"                   [-s SRC] [-b batch] [-r flows_per_s]\n"
		"       flowgen udp6 -d DST6 -n N [-P pkts] [-l payload] [-p dport] [-S sport_base]\n"
		"                   [-s SRC6] [-r flows_per_s]\n"
		"       flowgen tcp -d DST -n N -p PORT [-l bytes] [-c concurrency] [-o FILE] [-t stall_s]\n"
		"       flowgen tcp-server -p PORT [-t seconds]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	const char *mode = argv[1];
	int udp = !strcmp(mode, "udp"), udp6 = !strcmp(mode, "udp6");
	int tcp = !strcmp(mode, "tcp"), server = !strcmp(mode, "tcp-server");
	if (!udp && !udp6 && !tcp && !server)
		usage();
	struct opts o = {
		.n = 1000, .pkts = 1, .len = 32, .batch = 256, .conc = 32,
		.port = (tcp || server) ? 5001 : 20000,
		.sport = udp6 ? 30000 : 1024,
		.secs = server ? 600 : 10,
	};
	int c;
	optind = 2;
	while ((c = getopt(argc, argv, "d:s:n:P:l:p:S:b:r:c:t:o:")) != -1) {
		switch (c) {
		case 'd': o.dst = optarg; break;
		case 's': o.src = optarg; break;
		case 'n': o.n = parse_long(optarg, 1, 100000000, 'n'); break;
		case 'P': o.pkts = parse_long(optarg, 1, 1000000, 'P'); break;
		case 'l': o.len = parse_long(optarg, 0, 65000, 'l'); break;
		case 'p': o.port = parse_long(optarg, 1, 65535, 'p'); break;
		case 'S': o.sport = parse_long(optarg, 1, 65535, 'S'); break;
		case 'b': o.batch = parse_long(optarg, 1, 1024, 'b'); break;
		case 'c': o.conc = parse_long(optarg, 1, 10000, 'c'); break;
		case 'r': o.rate = atof(optarg); break;
		case 't': o.secs = atof(optarg); break;
		case 'o': o.out = optarg; break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (server)
		return run_tcp_server(&o);
	if (!o.dst)
		usage();
	if (udp)
		return run_udp(&o);
	if (udp6)
		return run_udp6(&o);
	return run_tcp(&o);
}
