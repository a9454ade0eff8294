/*
 * handover.h - keeps the event socket open between a stop and the next
 * start when no service manager stores it.
 *
 * A conntrack destroyed while no socket is subscribed produces no event at
 * all.  On a stop, ctflowd leaves a small holder process with the socket:
 * the kernel keeps queueing into it (and, in reliable mode, parks what does
 * not fit), and the next ctflowd takes it over a Unix socket in the state
 * directory.  If no successor comes within the timeout, the holder closes
 * the socket and says how much it lets go.
 */
#pragma once

#include <glib.h>
#include "ctflowd/guard.h"

/**
 * handover_offer:
 * Starts a detached holder for @fd, listening on @path, that lives at most
 * @timeout_ms and meanwhile runs @g (may be NULL): with nobody reading, the
 * guard is what keeps parked events from filling the table.  Returns once
 * the holder is listening.
 */
gboolean handover_offer(int fd, const char *path, guint timeout_ms, guard *g, GError **error);

/**
 * handover_take:
 * Takes the socket a holder offers at @path.  Returns the descriptor, or -1:
 * with @error unset when no holder is there, set when one was there but the
 * transfer failed.
 */
int handover_take(const char *path, GError **error);
