/*
 * datagrams.h - finished UDP messages sent together.
 *
 * Each datagram sent on its own costs a system call and, worse, a trip
 * through the whole IP stack: routing, the netfilter hooks and conntrack on
 * the way out and, to a collector on the same host, on the way in too.
 * With messages capped near Ethernet's MTU (what collectors read whole) that
 * is thousands of trips for a burst of flows.  A queue keeps the messages of
 * one wake-up of the export thread and sends them with one sendmmsg(); runs
 * of messages of the same size go as one UDP GSO send (UDP_SEGMENT, Linux
 * 4.18): the stack is crossed once for up to 64 of them, and the kernel (or
 * the network card) cuts them into separate datagrams of that size.  The
 * collector gets the same datagrams it would get one send() at a time.
 *
 * Where the path refuses GSO (no checksum offload, a segment larger than the
 * path's MTU), the messages go one per datagram and GSO stays off.
 *
 * Messages whose order means nothing to the receiver (syslog: RFC 5426 puts
 * one message in a datagram, each with its own timestamp, and UDP keeps no
 * order anyway) vary in length, so runs of one size hardly form as they
 * come.  A queue made for them sends longest first, so that every size
 * stands together: the stack is then crossed once for many of them too.
 * Formats with sequence numbers (IPFIX, NetFlow) keep their order.
 */
#pragma once

#include <glib.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct datagrams datagrams;

/** datagrams_send_fn: sendmmsg(), or a stand-in with its contract. */
typedef int (*datagrams_send_fn)(int fd, struct mmsghdr *vec, unsigned int n, void *user);

/** What one datagrams_send() did with the queued messages. */
struct datagrams_result {
	guint sent;        /* messages the kernel took */
	guint64 bytes;     /* their bytes */
	guint refused;     /* messages it refused (counted, not retried) */
	int first_errno;   /* why the first refused one was, 0 if none */
};

/** datagrams_new: an empty queue for up to @max_bytes of messages, sent in order. */
datagrams *datagrams_new(size_t max_bytes);

/**
 * datagrams_new_any_order:
 * An empty queue for up to @max_bytes in up to @max_messages messages that
 * may go out in any order: with GSO, longest first, those of one length in
 * the order they came.
 */
datagrams *datagrams_new_any_order(size_t max_bytes, guint max_messages);

/**
 * datagrams_add:
 * Keeps a copy of @msg for the next send.  FALSE, keeping nothing, when
 * the queue is full; an empty queue takes any message up to its size.
 */
gboolean datagrams_add(datagrams *q, const uint8_t *msg, size_t len);

/** datagrams_count: messages waiting to be sent. */
guint datagrams_count(const datagrams *q);

/** datagrams_clear: drops every waiting message unsent. */
void datagrams_clear(datagrams *q);

/**
 * datagrams_send:
 * Sends every waiting message on the connected datagram socket @fd, in
 * order (or as datagrams_new_any_order() says), through @send (sendmmsg() and its partial returns: a call that
 * stops short at a refused message is resumed after it).  *@gso says
 * whether runs of messages of one size may go as one GSO send; it turns
 * FALSE, for good, when the path refuses one, and those messages are sent
 * again one by one.  The queue is empty afterwards: each message was
 * either taken by the kernel or refused.
 */
struct datagrams_result datagrams_send(datagrams *q, int fd, gboolean *gso,
				       datagrams_send_fn send, void *user);

/** datagrams_free: frees @q (NULL is fine). */
void datagrams_free(datagrams *q);
