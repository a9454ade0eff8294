/*
 * test_datagrams.c - finished UDP messages sent together.
 *
 * A stand-in for sendmmsg() records what each call was given and answers
 * as the kernel may: everything, only a part (a later call must go on
 * from there), an error for the first message of a call, or EIO for a GSO
 * send on a path without checksum offload.  What the tests hold the queue
 * to: every message goes out exactly once, in order, with its own size as
 * its own datagram; a refused message is counted and not retried; a run of
 * equal messages is one GSO send; a path that refuses GSO gets the same
 * messages one by one.  The last test sends over a real socket to
 * 127.0.0.1 and reads the datagrams back.
 */
#include <errno.h>
#include <glib.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>
#include <unistd.h>

#include "ctflowd/datagrams.h"
#include "ctflowd/transport.h"

/* one datagram as a collector would get it */
struct seen {
	size_t len;
	uint8_t first;   /* the message's first byte: its number */
};

struct fake {
	GArray *out;         /* struct seen, in send order */
	guint calls;
	guint max_per_call;  /* a partial sendmmsg() takes at most this many */
	int fail_errno;      /* refuse the send holding message fail_at */
	int fail_at;
	gboolean no_gso;     /* EIO for any GSO send */
	guint gso_sends;
	guint largest_run;
};

static uint16_t segment_size(const struct msghdr *h)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR((struct msghdr *)h); c;
	     c = CMSG_NXTHDR((struct msghdr *)h, c)) {
		if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_SEGMENT) {
			uint16_t seg;
			memcpy(&seg, CMSG_DATA(c), sizeof(seg));
			return seg;
		}
	}
	return 0;
}

/* What one send carries: its iovecs gathered, as the kernel reads them. */
static size_t gather(const struct msghdr *h, uint8_t *out, size_t size)
{
	size_t len = 0;

	for (size_t i = 0; i < h->msg_iovlen; i++) {
		g_assert_cmpuint(len + h->msg_iov[i].iov_len, <=, size);
		memcpy(out + len, h->msg_iov[i].iov_base, h->msg_iov[i].iov_len);
		len += h->msg_iov[i].iov_len;
	}
	return len;
}

/* Cuts one send into the datagrams the kernel would make of it.  Each
 * datagram must be one message, whole: its bytes all carry its number. */
static size_t cut(struct fake *f, const struct msghdr *h, uint16_t seg)
{
	static uint8_t p[70000];
	size_t len = gather(h, p, sizeof(p));

	g_assert_null(h->msg_name);   /* the socket is connected */
	guint run = 0;
	for (size_t off = 0; off < len; run++) {
		size_t n = seg ? MIN((size_t)seg, len - off) : len;
		struct seen s = { n, p[off] };
		for (size_t j = 0; j < n; j++)
			g_assert_cmpuint(p[off + j], ==, s.first);
		g_array_append_val(f->out, s);
		off += n;
	}
	f->largest_run = MAX(f->largest_run, run);
	return len;
}

static int fake_send(int fd, struct mmsghdr *vec, unsigned int n, void *user)
{
	struct fake *f = user;
	unsigned int i;

	(void)fd;
	f->calls++;
	g_assert_cmpuint(n, >, 0);
	for (i = 0; i < n && (!f->max_per_call || i < f->max_per_call); i++) {
		const struct msghdr *h = &vec[i].msg_hdr;
		const uint8_t *p = h->msg_iov[0].iov_base;   /* its first message's */
		uint16_t seg = segment_size(h);
		int e = 0;

		if (seg && f->no_gso)
			e = EIO;
		else if (f->fail_errno && p[0] == f->fail_at)
			e = f->fail_errno;
		if (e) {
			/* an error stops the call short; it is reported (once)
			 * when its message comes first */
			if (i)
				return (int)i;
			if (e != EIO)
				f->fail_errno = 0;
			errno = e;
			return -1;
		}
		if (seg)
			f->gso_sends++;
		vec[i].msg_len = (unsigned int)cut(f, h, seg);
	}
	return (int)i;
}

/* Queues messages numbered from 0 with the sizes in @lens (0 ends). */
static guint queue_sizes(datagrams *q, const size_t *lens)
{
	uint8_t buf[2000];
	guint n = 0;

	for (; lens[n]; n++) {
		memset(buf, (int)n, lens[n]);
		g_assert_true(datagrams_add(q, buf, lens[n]));
	}
	return n;
}

static void assert_each_once_in_order(struct fake *f, const size_t *lens, guint n, int skipped)
{
	guint k = 0;

	for (guint i = 0; i < n; i++) {
		if ((int)i == skipped)
			continue;
		g_assert_cmpuint(k, <, f->out->len);
		struct seen *s = &g_array_index(f->out, struct seen, k);
		g_assert_cmpuint(s->first, ==, i);
		g_assert_cmpuint(s->len, ==, lens[i]);
		k++;
	}
	g_assert_cmpuint(k, ==, f->out->len);
}

static struct fake fake_new(void)
{
	return (struct fake){ .out = g_array_new(FALSE, FALSE, sizeof(struct seen)) };
}

/* Same-sized messages, then a shorter one: one GSO send; a larger one
 * starts the next send. */
static void test_runs_go_as_one_gso_send(void)
{
	static const size_t lens[] = { 1460, 1460, 1460, 900, 1460, 1460, 200, 300, 0 };
	datagrams *q = datagrams_new(64 * 1024);
	struct fake f = fake_new();
	gboolean gso = TRUE;
	guint n = queue_sizes(q, lens);

	struct datagrams_result r = datagrams_send(q, 3, &gso, fake_send, &f);
	g_assert_cmpuint(r.sent, ==, n);
	g_assert_cmpuint(r.refused, ==, 0);
	g_assert_cmpuint(r.bytes, ==, 1460 * 5 + 900 + 200 + 300);
	g_assert_cmpuint(f.calls, ==, 1);
	/* 1460 x3 + 900, 1460 x2 + 200, 300 */
	g_assert_cmpuint(f.gso_sends, ==, 2);
	g_assert_cmpuint(f.largest_run, ==, 4);
	g_assert_true(gso);
	assert_each_once_in_order(&f, lens, n, -1);
	g_assert_cmpuint(datagrams_count(q), ==, 0);
	g_array_free(f.out, TRUE);
	datagrams_free(q);
}

/* A GSO send holds at most 64 segments and 65000 bytes. */
static void test_runs_are_bounded(void)
{
	size_t lens[129];
	datagrams *q = datagrams_new(256 * 1024);
	struct fake f = fake_new();
	gboolean gso = TRUE;

	for (guint i = 0; i < 128; i++)
		lens[i] = 1000;
	lens[128] = 0;
	guint n = queue_sizes(q, lens);
	struct datagrams_result r = datagrams_send(q, 3, &gso, fake_send, &f);
	g_assert_cmpuint(r.sent, ==, 128);
	g_assert_cmpuint(f.largest_run, ==, 64);
	assert_each_once_in_order(&f, lens, n, -1);
	g_array_set_size(f.out, 0);

	/* 1460-byte messages: 44 of them fit in 65000 bytes */
	for (guint i = 0; i < 100; i++)
		lens[i] = 1460;
	lens[100] = 0;
	f.largest_run = 0;
	n = queue_sizes(q, lens);
	r = datagrams_send(q, 3, &gso, fake_send, &f);
	g_assert_cmpuint(r.sent, ==, 100);
	g_assert_cmpuint(f.largest_run, ==, 44);
	assert_each_once_in_order(&f, lens, n, -1);
	g_array_free(f.out, TRUE);
	datagrams_free(q);
}

/* sendmmsg() may take fewer messages than it was given: the rest follow in
 * later calls, none twice. */
static void test_partial_sendmmsg_goes_on(void)
{
	static const size_t lens[] = { 100, 200, 300, 400, 500, 600, 700, 0 };
	datagrams *q = datagrams_new(64 * 1024);
	struct fake f = fake_new();
	gboolean gso = TRUE;
	guint n = queue_sizes(q, lens);

	f.max_per_call = 2;
	struct datagrams_result r = datagrams_send(q, 3, &gso, fake_send, &f);
	g_assert_cmpuint(r.sent, ==, n);
	g_assert_cmpuint(r.refused, ==, 0);
	g_assert_cmpuint(f.calls, ==, 4);
	assert_each_once_in_order(&f, lens, n, -1);
	g_array_free(f.out, TRUE);
	datagrams_free(q);
}

/* A refused message (the collector's port was unreachable) is counted,
 * with its reason, and not sent again; the ones after it go out. */
static void test_refused_message_is_counted_not_retried(void)
{
	static const size_t lens[] = { 100, 200, 300, 400, 500, 0 };
	datagrams *q = datagrams_new(64 * 1024);
	struct fake f = fake_new();
	gboolean gso = TRUE;
	guint n = queue_sizes(q, lens);

	f.fail_errno = ECONNREFUSED;
	f.fail_at = 2;
	struct datagrams_result r = datagrams_send(q, 3, &gso, fake_send, &f);
	g_assert_cmpuint(r.sent, ==, n - 1);
	g_assert_cmpuint(r.refused, ==, 1);
	g_assert_cmpint(r.first_errno, ==, ECONNREFUSED);
	g_assert_cmpuint(r.bytes, ==, 100 + 200 + 400 + 500);
	/* the call that stopped at it, one that failed on it, one for the rest */
	g_assert_cmpuint(f.calls, ==, 3);
	assert_each_once_in_order(&f, lens, n, 2);
	g_assert_cmpuint(datagrams_count(q), ==, 0);
	g_array_free(f.out, TRUE);
	datagrams_free(q);
}

/* A path without GSO: the run goes again one message at a time, nothing is
 * counted as refused, and GSO stays off for the sends after. */
static void test_path_without_gso(void)
{
	static const size_t lens[] = { 50, 1460, 1460, 1460, 1460, 700, 0 };
	datagrams *q = datagrams_new(64 * 1024);
	struct fake f = fake_new();
	gboolean gso = TRUE;
	guint n = queue_sizes(q, lens);

	f.no_gso = TRUE;
	struct datagrams_result r = datagrams_send(q, 3, &gso, fake_send, &f);
	g_assert_false(gso);
	g_assert_cmpuint(r.sent, ==, n);
	g_assert_cmpuint(r.refused, ==, 0);
	g_assert_cmpuint(f.gso_sends, ==, 0);
	assert_each_once_in_order(&f, lens, n, -1);

	guint calls = f.calls;
	g_array_set_size(f.out, 0);
	n = queue_sizes(q, lens);
	r = datagrams_send(q, 3, &gso, fake_send, &f);
	g_assert_cmpuint(r.sent, ==, n);
	g_assert_cmpuint(f.calls, ==, calls + 1);   /* no GSO tried: no refusal */
	assert_each_once_in_order(&f, lens, n, -1);
	g_array_free(f.out, TRUE);
	datagrams_free(q);
}

/* Each message once, whole, in any order: what a queue of messages without
 * a sequence (syslog) must do. */
static void assert_each_once(struct fake *f, const size_t *lens, guint n)
{
	g_autofree guint *times = g_new0(guint, n);

	g_assert_cmpuint(f->out->len, ==, n);
	for (guint k = 0; k < f->out->len; k++) {
		struct seen *s = &g_array_index(f->out, struct seen, k);
		g_assert_cmpuint(s->first, <, n);
		g_assert_cmpuint(s->len, ==, lens[s->first]);
		times[s->first]++;
	}
	for (guint i = 0; i < n; i++)
		g_assert_cmpuint(times[i], ==, 1);
}

/* Messages of many lengths, mixed as syslog's are: a queue free to order
 * them sends those of one length together, longest first and, within a
 * length, as they came; every message still goes whole, once. */
static void test_any_order_groups_lengths(void)
{
	size_t lens[201];
	datagrams *q = datagrams_new_any_order(256 * 1024, 200);
	struct fake f = fake_new();
	gboolean gso = TRUE;

	for (guint i = 0; i < 200; i++)
		lens[i] = 300 + (i * 7) % 5;   /* 5 lengths, interleaved */
	lens[200] = 0;
	guint n = queue_sizes(q, lens);
	g_assert_false(datagrams_add(q, (const uint8_t *)"x", 1));   /* 200 messages at most */
	struct datagrams_result r = datagrams_send(q, 3, &gso, fake_send, &f);
	g_assert_cmpuint(r.sent, ==, n);
	g_assert_cmpuint(r.refused, ==, 0);
	assert_each_once(&f, lens, n);
	/* 40 of each length, one GSO send each (with the next length's first
	 * message as its shorter tail): 5 sends, not 200 */
	g_assert_cmpuint(f.calls, ==, 1);
	g_assert_cmpuint(f.gso_sends, ==, 5);
	for (guint k = 1; k < f.out->len; k++) {
		struct seen *a = &g_array_index(f.out, struct seen, k - 1);
		struct seen *b = &g_array_index(f.out, struct seen, k);
		g_assert_cmpuint(a->len, >=, b->len);
		if (a->len == b->len)
			g_assert_cmpuint(a->first, <, b->first);
	}
	g_array_set_size(f.out, 0);

	/* a path without GSO: no reason to reorder, they go as they came */
	f.no_gso = TRUE;
	n = queue_sizes(q, lens);
	r = datagrams_send(q, 3, &gso, fake_send, &f);
	g_assert_false(gso);
	g_assert_cmpuint(r.sent, ==, n);
	assert_each_once(&f, lens, n);
	g_array_set_size(f.out, 0);
	n = queue_sizes(q, lens);
	r = datagrams_send(q, 3, &gso, fake_send, &f);
	assert_each_once_in_order(&f, lens, n, -1);
	g_array_free(f.out, TRUE);
	datagrams_free(q);
}

/* A refused message in a reordered queue: counted once, the rest sent. */
static void test_any_order_refusal(void)
{
	static const size_t lens[] = { 100, 300, 100, 200, 300, 100, 0 };
	datagrams *q = datagrams_new_any_order(64 * 1024, 16);
	struct fake f = fake_new();
	gboolean gso = TRUE;
	guint n = queue_sizes(q, lens);

	f.fail_errno = ECONNREFUSED;
	f.fail_at = 1;   /* the first 300-byte message starts the first send */
	struct datagrams_result r = datagrams_send(q, 3, &gso, fake_send, &f);
	/* that whole GSO send (300, 300, 200 as its tail) is refused */
	g_assert_cmpuint(r.refused, ==, 3);
	g_assert_cmpuint(r.sent, ==, n - 3);
	g_assert_cmpint(r.first_errno, ==, ECONNREFUSED);
	g_assert_true(gso);
	g_assert_cmpuint(f.out->len, ==, 3);
	for (guint k = 0; k < f.out->len; k++)
		g_assert_cmpuint(g_array_index(f.out, struct seen, k).len, ==, 100);
	g_array_free(f.out, TRUE);
	datagrams_free(q);
}

/* A full queue refuses a message and keeps nothing of it; an empty one
 * takes a message as large as the queue. */
static void test_full_queue(void)
{
	uint8_t buf[1000] = { 0 };
	datagrams *q = datagrams_new(2500);

	g_assert_true(datagrams_add(q, buf, 1000));
	g_assert_true(datagrams_add(q, buf, 1000));
	g_assert_false(datagrams_add(q, buf, 1000));
	g_assert_cmpuint(datagrams_count(q), ==, 2);
	datagrams_clear(q);
	g_assert_cmpuint(datagrams_count(q), ==, 0);
	datagrams_free(q);

	uint8_t *big = g_malloc0(65000);
	q = datagrams_new(65000);
	g_assert_true(datagrams_add(q, big, 65000));
	g_assert_false(datagrams_add(q, big, 1));
	datagrams_free(q);
	g_free(big);
}

/* Over loopback: the collector reads each message as a datagram of its own,
 * in order, whether the kernel segmented a GSO send or not. */
static void test_real_socket(void)
{
	int rx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int big = 4 * 1024 * 1024;

	g_assert_cmpint(rx, >=, 0);
	g_assert_cmpint(bind(rx, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
	g_assert_cmpint(getsockname(rx, (struct sockaddr *)&sa, &sl), ==, 0);
	setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	g_autofree char *port = g_strdup_printf("%u", ntohs(sa.sin_port));
	struct export_config cfg = {
		.name = (char *)"t",
		.format = EXPORT_FORMAT_IPFIX,
		.transport = EXPORT_TRANSPORT_UDP,
		.host = (char *)"127.0.0.1",
		.port = port,
	};
	transport *t = transport_new(&cfg);
	g_autoptr(GError) error = NULL;
	g_assert_true(transport_open(t, &error));
	g_assert_cmpuint(transport_message_limit(t), ==, 1472);

	/* templates, 30 full messages, a last short one (within the default
	 * receive buffer) */
	uint8_t msg[1472];
	size_t lens[32];
	lens[0] = 180;
	for (guint i = 1; i < 31; i++)
		lens[i] = 1472;
	lens[31] = 333;
	for (guint i = 0; i < G_N_ELEMENTS(lens); i++) {
		memset(msg, (int)i, lens[i]);
		g_assert_true(transport_queue(t, msg, lens[i]));
	}
	g_assert_cmpuint(transport_queued(t), ==, G_N_ELEMENTS(lens));
	g_assert_cmpuint(transport_flush(t, &error), ==, 0);
	g_assert_no_error(error);
	g_assert_cmpuint(transport_queued(t), ==, 0);
	g_assert_cmpuint(transport_bytes_written(t), ==, 180 + 30 * 1472 + 333);

	uint8_t in[70000];
	for (guint i = 0; i < G_N_ELEMENTS(lens); i++) {
		ssize_t n = recv(rx, in, sizeof(in), MSG_DONTWAIT);
		g_assert_cmpint(n, ==, (ssize_t)lens[i]);
		g_assert_cmpuint(in[0], ==, i);
		g_assert_cmpuint(in[n - 1], ==, i);
	}
	g_assert_cmpint(recv(rx, in, sizeof(in), MSG_DONTWAIT), ==, -1);

	/* closing drops what is queued, unsent */
	g_assert_true(transport_queue(t, msg, 100));
	transport_close(t);
	g_assert_cmpuint(transport_queued(t), ==, 0);
	g_assert_false(transport_queue(t, msg, 100));
	transport_free(t);

	/* syslog: 120 messages of 3 lengths, mixed; the kernel cuts the GSO
	 * sends of gathered messages into one datagram each, every one whole */
	cfg.format = EXPORT_FORMAT_SYSLOG;
	t = transport_new(&cfg);
	g_assert_true(transport_open(t, &error));
	guint times[120] = { 0 };
	for (guint i = 0; i < 120; i++) {
		memset(msg, (int)i, 200 + (i % 3) * 10);
		g_assert_true(transport_queue(t, msg, 200 + (i % 3) * 10));
	}
	g_assert_cmpuint(transport_flush(t, &error), ==, 0);
	g_assert_no_error(error);
	for (guint k = 0; k < 120; k++) {
		ssize_t n = recv(rx, in, sizeof(in), MSG_DONTWAIT);
		g_assert_cmpint(n, >, 0);
		g_assert_cmpuint(in[0], <, 120);
		g_assert_cmpint(n, ==, 200 + (in[0] % 3) * 10);
		for (ssize_t j = 0; j < n; j++)
			g_assert_cmpuint(in[j], ==, in[0]);
		times[in[0]]++;
	}
	g_assert_cmpint(recv(rx, in, sizeof(in), MSG_DONTWAIT), ==, -1);
	for (guint i = 0; i < 120; i++)
		g_assert_cmpuint(times[i], ==, 1);
	transport_free(t);
	close(rx);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/datagrams/runs-go-as-one-gso-send", test_runs_go_as_one_gso_send);
	g_test_add_func("/datagrams/runs-are-bounded", test_runs_are_bounded);
	g_test_add_func("/datagrams/partial-sendmmsg-goes-on", test_partial_sendmmsg_goes_on);
	g_test_add_func("/datagrams/refused-message-counted-not-retried",
			test_refused_message_is_counted_not_retried);
	g_test_add_func("/datagrams/path-without-gso", test_path_without_gso);
	g_test_add_func("/datagrams/full-queue", test_full_queue);
	g_test_add_func("/datagrams/any-order-groups-lengths", test_any_order_groups_lengths);
	g_test_add_func("/datagrams/any-order-refusal", test_any_order_refusal);
	g_test_add_func("/datagrams/real-socket", test_real_socket);
	return g_test_run();
}
