/*
 * ct_socket.h - the ctnetlink event socket itself, apart from reading it.
 *
 * The socket must outlive the process that reads it: a conntrack destroyed
 * while no socket is subscribed produces no event at all, and what is queued
 * in a closed socket is gone.  So it is opened (or inherited) by the
 * supervising parent, handed to each worker, kept by systemd's file
 * descriptor store across restarts, or held for a successor.
 */
#pragma once

#include <glib.h>

struct ct_socket_options {
	guint64 receive_buffer;     /* bytes for SO_RCVBUFFORCE (the kernel doubles it) */
	gboolean reliable;          /* NETLINK_BROADCAST_ERROR */
	gboolean subscribe_new;     /* NEW events as well as DESTROY */
};

/**
 * ct_socket_open:
 * A new ctnetlink socket in the calling thread's network namespace,
 * non-blocking, close-on-exec, not yet subscribed to anything.
 * Returns the descriptor or -1 with @error set.
 */
int ct_socket_open(GError **error);

/**
 * ct_socket_configure:
 * Applies @opts to @fd, whether new or inherited: receive buffer, reliable
 * delivery, and group membership (DESTROY, and NEW only when asked, so a
 * changed configuration takes effect on an inherited socket too).
 */
gboolean ct_socket_configure(int fd, const struct ct_socket_options *opts, GError **error);

/**
 * ct_socket_verify:
 * Checks that @fd is a netlink socket of the netfilter family, so that an
 * inherited descriptor that is something else is refused with a clear error.
 */
gboolean ct_socket_verify(int fd, GError **error);

/**
 * ct_socket_check_held:
 * Checks a socket that another process held before ctflowd got it (systemd's
 * descriptor store, a holder): a netfilter netlink socket of the calling
 * thread's network namespace (call it there, see netns_enter()), whose
 * socket filter is not locked (SO_LOCK_FILTER) and, when @check_groups,
 * subscribed to conntrack DESTROY events (and NEW at most), as ctflowd
 * leaves it.  A filter on it is no reason to refuse it: the caller replaces
 * it with its own or removes it (ct_filter_attach()), so a program another
 * process put there never decides what ctflowd sees.  FALSE with @error
 * saying what is wrong.
 */
gboolean ct_socket_check_held(int fd, gboolean check_groups, GError **error);

/** ct_socket_set_reliable: switches NETLINK_BROADCAST_ERROR on or off. */
gboolean ct_socket_set_reliable(int fd, gboolean on, GError **error);
