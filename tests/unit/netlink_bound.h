/*
 * netlink_bound.h - a netlink socket for tests: bound, non-blocking.
 */
#pragma once

#include <glib.h>

/**
 * netlink_bound_open:
 * A non-blocking netlink socket of @protocol bound to a port id the kernel
 * picks, which goes to *@port.  Fails the test when it cannot be made.
 */
int netlink_bound_open(int protocol, guint32 *port);
