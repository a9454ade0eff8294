/*
 * transport.h - moves finished messages to a destination: UDP, TCP, a file,
 * standard output, or the local syslog socket (a Unix datagram socket,
 * /dev/log unless cfg->path says otherwise).
 *
 * A transport is owned by one export thread and may block that thread (never
 * the one that drains netlink), but not forever: a TCP connect waits at most
 * 5 s and a TCP send at most 30 s (SO_SNDTIMEO) before the connection is
 * given up and reopened.
 */
#pragma once

#include <glib.h>
#include <stdint.h>
#include "ctflowd/config.h"

#define TRANSPORT_ERROR (transport_error_quark())
GQuark transport_error_quark(void);

typedef struct transport transport;

/** transport_new: a closed transport for @cfg. */
transport *transport_new(const struct export_config *cfg);

/**
 * transport_open:
 * Opens (or reopens) the destination: resolves and connects a socket, opens
 * a file for appending.  FALSE with @error when the destination cannot be
 * reached; the caller retries with back-off.
 */
gboolean transport_open(transport *t, GError **error);

/** transport_is_open: TRUE between a successful open and close/failure. */
gboolean transport_is_open(const transport *t);

/**
 * transport_send:
 * Sends one whole message.  On a stream, FALSE means the connection broke
 * and was closed: what was sent since the last confirmation may be lost.
 * On UDP, a refused datagram (no collector listening) is reported but the
 * transport stays open: UDP cannot confirm delivery.  On the local syslog
 * socket one message is one datagram, taken whole by the reader's queue:
 * FALSE means it was not taken (the reader is gone or stayed full for the
 * send time-out), and the transport is closed.
 */
gboolean transport_send(transport *t, const uint8_t *msg, size_t len, GError **error);

/**
 * transport_queue:
 * UDP: keeps a copy of the datagram @msg for the next transport_flush().
 * FALSE, keeping nothing, when the transport is not UDP or not open, or its
 * queue is full (flush first; an empty queue takes any message).
 */
gboolean transport_queue(transport *t, const uint8_t *msg, size_t len);

/** transport_queued: UDP: datagrams waiting for transport_flush(). */
guint transport_queued(const transport *t);

/**
 * transport_flush:
 * UDP: sends the queued datagrams, in order, in as few system calls and
 * trips through the IP stack as the path allows (see datagrams.h).  Each
 * one is either taken by the kernel or refused (no collector listening):
 * returns how many were refused, with the first reason in @error; the
 * transport stays open.  The queue is empty afterwards.  Closing the
 * transport drops what is queued, unsent.
 */
guint transport_flush(transport *t, GError **error);

/**
 * transport_message_limit:
 * The largest message to send over the open transport: cfg->mtu, or for
 * mtu = auto on UDP the MTU of the route to the collector (IP_MTU), at most
 * 1500, less the IP and UDP headers: 1472 bytes to an IPv4 collector and
 * 1452 to an IPv6 one on Ethernet or loopback.
 */
guint transport_message_limit(const transport *t);

/** transport_bytes_written: bytes sent since the transport was last opened. */
guint64 transport_bytes_written(const transport *t);

/**
 * transport_unacked:
 * TCP: bytes written but not yet acknowledged by the peer's TCP stack
 * (SIOCOUTQ), so that bytes_written - unacked is what the collector's host
 * really has.  Other transports: 0.
 */
gboolean transport_unacked(const transport *t, guint64 *unacked);

/**
 * transport_check_peer:
 * TCP: reads and discards what the collector sent back (at most 64 KiB a
 * call, never waiting), then says whether the connection still stands.
 * FALSE with @error, and the transport closed, when the collector closed it
 * (end of stream, hang-up), reset it, or the socket reports an error
 * (SO_ERROR, e.g. a keepalive time-out), or when it is not open.  Bytes
 * from the collector alone never count as a close.  Cheap enough to call on
 * every wake-up, so that a connection lost while nothing is being sent is
 * noticed without waiting for the next send.  Other transports: TRUE.
 */
gboolean transport_check_peer(transport *t, GError **error);

/**
 * transport_peer_closed:
 * TCP: whether the last transport_check_peer() that failed found the end of
 * the stream (the collector's FIN) and nothing worse.  A collector's host
 * answers a close with bytes still unread by a reset instead, so after a
 * FIN every byte it acknowledged was read by the collector.  Cleared by
 * transport_open().
 */
gboolean transport_peer_closed(const transport *t);

/**
 * transport_shutdown_write:
 * TCP: tells the collector that nothing more comes (FIN), keeping the
 * connection open for reading; a collector closes its side once it has
 * read everything, which transport_check_peer() then reports.  Others:
 * nothing.
 */
void transport_shutdown_write(transport *t);

/** transport_sync: file: fdatasync() when cfg->sync; others: nothing. */
gboolean transport_sync(transport *t, GError **error);

/** transport_close: closes the destination (a no-op when closed). */
void transport_close(transport *t);

/** transport_free: closes and frees @t (NULL is fine). */
void transport_free(transport *t);

/** transport_describe: "udp 127.0.0.1:4739", "file /var/lib/...", for logs. */
const char *transport_describe(const transport *t);
