/*
 * netns.h - run a piece of set-up inside another network namespace.
 *
 * Conntrack, its sysctls and its netlink events are per namespace.  A socket
 * keeps the namespace it was created in, so the daemon enters the watched
 * namespace only to open its netlink socket and check sysctls, then returns;
 * export sockets stay in the daemon's own namespace.
 */
#pragma once

#include <glib.h>

/**
 * netns_enter:
 * Switches the calling thread into @name_or_path (a name under /run/netns,
 * or a path such as /proc/PID/ns/net).  Returns a descriptor of the previous
 * namespace for netns_leave(), or -1 with @error set.
 */
int netns_enter(const char *name_or_path, GError **error);

/** netns_leave: returns to the namespace saved by netns_enter() and closes it. */
gboolean netns_leave(int saved, GError **error);
