/*
 * datagrams.c - finished UDP messages sent together (see datagrams.h).
 *
 * The messages lie back to back in one buffer, so a run of them is one
 * iovec whether it goes as one GSO send or not.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>

#include "ctflowd/datagrams.h"

/* A wake-up of the export thread reads 256 records, about 14 messages of
 * 1472 bytes; room for several such wake-ups when records come faster than
 * they go out. */
#define MAX_MESSAGES 128
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
	guint count;
	size_t offset[MAX_MESSAGES];
	size_t len[MAX_MESSAGES];

	/* one entry per send: a single message, or a run that goes as one GSO send */
	struct mmsghdr vec[MAX_MESSAGES];
	struct iovec iov[MAX_MESSAGES];
	union segment_control control[MAX_MESSAGES];
	guint first[MAX_MESSAGES];   /* its first message */
	guint messages[MAX_MESSAGES];
};

datagrams *datagrams_new(size_t max_bytes)
{
	datagrams *q = g_new0(datagrams, 1);

	q->max_bytes = max_bytes;
	q->buf = g_malloc(max_bytes);
	return q;
}

gboolean datagrams_add(datagrams *q, const uint8_t *msg, size_t len)
{
	if (q->count == MAX_MESSAGES || len > q->max_bytes - q->used)
		return FALSE;
	memcpy(q->buf + q->used, msg, len);
	q->offset[q->count] = q->used;
	q->len[q->count] = len;
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

/* How many messages from @i go in one GSO send: a run of one size, which
 * may end with one shorter message (GSO cuts every segment to the size of
 * the first, the last may be shorter). */
static guint run_length(const datagrams *q, guint i)
{
	size_t seg = q->len[i], total = seg;
	guint k = 1;

	while (i + k < q->count && k < GSO_MAX_SEGMENTS && q->len[i + k] <= seg &&
	       total + q->len[i + k] <= GSO_MAX_BYTES) {
		total += q->len[i + k];
		k++;
		if (q->len[i + k - 1] < seg)
			break;
	}
	return k;
}

/* Lays out the sends for the messages from @from on; returns how many. */
static guint plan(datagrams *q, guint from, gboolean gso)
{
	guint n = 0;

	for (guint i = from; i < q->count; n++) {
		guint k = gso ? run_length(q, i) : 1;
		size_t total = q->offset[i + k - 1] + q->len[i + k - 1] - q->offset[i];
		struct msghdr *h = &q->vec[n].msg_hdr;

		memset(&q->vec[n], 0, sizeof(q->vec[n]));
		q->iov[n].iov_base = q->buf + q->offset[i];
		q->iov[n].iov_len = total;
		h->msg_iov = &q->iov[n];
		h->msg_iovlen = 1;
		if (k > 1) {
			uint16_t seg = (uint16_t)q->len[i];
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
	guint sends = plan(q, 0, *gso);
	guint done = 0;

	while (done < sends) {
		int r = send(fd, &q->vec[done], sends - done, user);
		if (r > 0) {
			guint upto = done + MIN((guint)r, sends - done);
			for (; done < upto; done++) {
				res.sent += q->messages[done];
				res.bytes += q->iov[done].iov_len;
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
	g_free(q);
}
