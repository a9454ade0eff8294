/*
 * datagrams.c - finished UDP messages sent together (see datagrams.h).
 *
 * The messages lie back to back in one buffer.  A send whose messages lie
 * together there (always, for a queue kept in order) takes them as one
 * iovec; a reordered run gathers them with one iovec apiece.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>

#include "ctflowd/datagrams.h"

/* A wake-up of the export thread reads 256 records, about 14 messages of
 * 1472 bytes; room for several such wake-ups when records come faster than
 * they go out. */
#define ORDERED_MESSAGES 128
/* UDP_MAX_SEGMENTS was 64 until Linux 6.9; a GSO send of more is EINVAL. */
#define GSO_MAX_SEGMENTS 64
/* A GSO send passes the stack as one UDP datagram: its payload and headers
 * must fit IP's 16-bit length.  The largest message (65000) also fits. */
#define GSO_MAX_BYTES 65000

union segment_control {
	char buf[CMSG_SPACE(sizeof(uint16_t))];
	struct cmsghdr align;
};

struct datagrams {
	uint8_t *buf;
	size_t max_bytes;
	size_t used;
	guint max_messages;
	gboolean any_order;
	guint count;
	/* One iovec per message, in the order they go out in: as added, or
	 * (any_order) longest first, so that messages of one size stand
	 * together.  A message's place in the buffer tells when it came. */
	struct iovec *iov;

	/* one entry per send: a single message, or a run that goes as one GSO send */
	struct mmsghdr *vec;
	struct iovec *whole;   /* per send: its messages, when they lie back to back */
	union segment_control *control;
	guint *first;          /* its first message, as a place in the order */
	guint *messages;
};

static datagrams *queue_new(size_t max_bytes, guint max_messages, gboolean any_order)
{
	datagrams *q = g_new0(datagrams, 1);

	q->max_bytes = max_bytes;
	q->max_messages = max_messages;
	q->any_order = any_order;
	q->buf = g_malloc(max_bytes);
	q->iov = g_new(struct iovec, max_messages);
	q->vec = g_new(struct mmsghdr, max_messages);
	q->whole = g_new(struct iovec, max_messages);
	q->control = g_new(union segment_control, max_messages);
	q->first = g_new(guint, max_messages);
	q->messages = g_new(guint, max_messages);
	return q;
}

datagrams *datagrams_new(size_t max_bytes)
{
	return queue_new(max_bytes, ORDERED_MESSAGES, FALSE);
}

datagrams *datagrams_new_any_order(size_t max_bytes, guint max_messages)
{
	return queue_new(max_bytes, MAX(max_messages, 1), TRUE);
}

gboolean datagrams_add(datagrams *q, const uint8_t *msg, size_t len)
{
	if (q->count == q->max_messages || len > q->max_bytes - q->used)
		return FALSE;
	memcpy(q->buf + q->used, msg, len);
	q->iov[q->count].iov_base = q->buf + q->used;
	q->iov[q->count].iov_len = len;
	q->count++;
	q->used += len;
	return TRUE;
}

guint datagrams_count(const datagrams *q)
{
	return q->count;
}

void datagrams_clear(datagrams *q)
{
	q->count = 0;
	q->used = 0;
}

/* Longest first; of one length, as added: earlier in the buffer (the sort
 * is thus stable). */
static int longest_first(const void *a, const void *b, void *user)
{
	const struct iovec *x = a, *y = b;

	(void)user;
	if (x->iov_len != y->iov_len)
		return x->iov_len > y->iov_len ? -1 : 1;
	return x->iov_base < y->iov_base ? -1 : x->iov_base > y->iov_base;
}

/* How many messages from place @i of the order go in one GSO send: a run of
 * one size, which may end with one shorter message (GSO cuts every segment
 * to the size of the first, the last may be shorter). */
static guint run_length(const datagrams *q, guint i)
{
	size_t seg = q->iov[i].iov_len, total = seg;
	guint k = 1;

	while (i + k < q->count && k < GSO_MAX_SEGMENTS && q->iov[i + k].iov_len <= seg &&
	       total + q->iov[i + k].iov_len <= GSO_MAX_BYTES) {
		total += q->iov[i + k].iov_len;
		k++;
		if (q->iov[i + k - 1].iov_len < seg)
			break;
	}
	return k;
}

/* Lays out the sends for the messages from place @from of the order on;
 * returns how many. */
static guint plan(datagrams *q, guint from, gboolean gso)
{
	guint n = 0;

	for (guint i = from; i < q->count; n++) {
		guint k = gso ? run_length(q, i) : 1;
		struct msghdr *h = &q->vec[n].msg_hdr;

		memset(&q->vec[n], 0, sizeof(q->vec[n]));
		/* one iovec for messages that lie back to back (always, in
		 * order), one each otherwise */
		const uint8_t *next = (const uint8_t *)q->iov[i].iov_base + q->iov[i].iov_len;
		guint j = 1;
		for (; j < k && q->iov[i + j].iov_base == next; j++)
			next += q->iov[i + j].iov_len;
		if (j == k) {
			q->whole[n].iov_base = q->iov[i].iov_base;
			q->whole[n].iov_len = (size_t)(next - (const uint8_t *)q->iov[i].iov_base);
			h->msg_iov = &q->whole[n];
			h->msg_iovlen = 1;
		} else {
			h->msg_iov = &q->iov[i];
			h->msg_iovlen = k;
		}
		if (k > 1) {
			uint16_t seg = (uint16_t)q->iov[i].iov_len;
			h->msg_control = q->control[n].buf;
			h->msg_controllen = sizeof(q->control[n].buf);
			struct cmsghdr *c = CMSG_FIRSTHDR(h);
			c->cmsg_level = SOL_UDP;
			c->cmsg_type = UDP_SEGMENT;
			c->cmsg_len = CMSG_LEN(sizeof(seg));
			memcpy(CMSG_DATA(c), &seg, sizeof(seg));
		}
		q->first[n] = i;
		q->messages[n] = k;
		i += k;
	}
	return n;
}

static size_t send_bytes(const datagrams *q, guint n)
{
	size_t total = 0;

	for (guint j = 0; j < q->messages[n]; j++)
		total += q->iov[q->first[n] + j].iov_len;
	return total;
}

/* Errors by which the path refuses a GSO send as such: no checksum
 * offload (EIO), a segment over the path's MTU or too many segments
 * (EINVAL, EMSGSIZE), no GSO at all (EOPNOTSUPP, ENOPROTOOPT). */
static gboolean gso_refused(int e)
{
	return e == EIO || e == EINVAL || e == EMSGSIZE || e == EOPNOTSUPP || e == ENOPROTOOPT;
}

struct datagrams_result datagrams_send(datagrams *q, int fd, gboolean *gso,
				       datagrams_send_fn send, void *user)
{
	struct datagrams_result res = { 0 };

	/* reordering only pays where runs of one size can form */
	if (q->any_order && *gso)
		g_qsort_with_data(q->iov, (gint)q->count, sizeof(struct iovec), longest_first, NULL);
	guint sends = plan(q, 0, *gso);
	guint done = 0;

	while (done < sends) {
		int r = send(fd, &q->vec[done], sends - done, user);
		if (r > 0) {
			guint upto = done + MIN((guint)r, sends - done);
			for (; done < upto; done++) {
				res.sent += q->messages[done];
				res.bytes += send_bytes(q, done);
			}
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		/* the send at @done failed (sendmmsg() reports an error only
		 * for the first message it tried) */
		int e = r < 0 ? errno : EIO;
		if (q->messages[done] > 1 && gso_refused(e)) {
			*gso = FALSE;
			sends = plan(q, q->first[done], FALSE);
			done = 0;
			continue;
		}
		res.refused += q->messages[done];
		if (!res.first_errno)
			res.first_errno = e;
		done++;
	}
	datagrams_clear(q);
	return res;
}

void datagrams_free(datagrams *q)
{
	if (!q)
		return;
	g_free(q->buf);
	g_free(q->iov);
	g_free(q->vec);
	g_free(q->whole);
	g_free(q->control);
	g_free(q->first);
	g_free(q->messages);
	g_free(q);
}
