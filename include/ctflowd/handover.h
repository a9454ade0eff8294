/*
 * handover.h - keeps the event socket open between a stop and the next
 * start when no service manager stores it.
 *
 * A conntrack destroyed while no socket is subscribed produces no event at
 * all.  On a stop, ctflowd leaves a small holder process with the socket:
 * the kernel keeps queueing into it (and, in reliable mode, parks what does
 * not fit), and the next ctflowd takes it over a Unix socket in the state
 * directory.  If no successor comes within the timeout, the holder closes
 * the socket and says how much it lets go.  Both ends check that the other
 * runs as ctflowd's uid: a socket from anyone else could be read by them
 * too, or filtered.
 *
 * Whoever holds the last copy of the socket when it stops leaves it this
 * way: the supervisor, or a worker whose supervisor was killed outright.
 */
#pragma once

#include <glib.h>
#include "ctflowd/config.h"
#include "ctflowd/guard.h"

/** handover_path: where a holder for the state directory of @dc listens. */
char *handover_path(const struct daemon_config *dc);

/**
 * handover_keeps_socket:
 * TRUE when a stop of ctflowd started with @dc leaves the socket for the
 * next one (a service manager's descriptor store, or a holder), so that
 * what the kernel still queues or holds back for it is not lost.
 */
gboolean handover_keeps_socket(const struct daemon_config *dc);

/**
 * handover_leave:
 * Leaves @fd for the next ctflowd started with @dc: under a service manager
 * nothing needs doing (its descriptor store has had the socket since the
 * start); otherwise a holder keeps it for handover_timeout, unless that is 0.
 * FALSE with @error, which says what is lost, when no holder could be
 * started.
 */
gboolean handover_leave(const struct daemon_config *dc, int fd, guard *g, GError **error);

/**
 * handover_take:
 * Takes the socket a holder offers at @path.  Returns the descriptor, or -1:
 * with @error unset when no holder is there or the one there is not of
 * ctflowd's own uid (refused with a warning), set when one was there but the
 * transfer failed.  With a descriptor, *@holder is the connection to the
 * holder, which keeps its copy of the socket until handover_answer() (else
 * -1).
 */
int handover_take(const char *path, int *holder, GError **error);

enum handover_answer {
	HANDOVER_TAKEN,        /* ctflowd runs on the socket: the holder ends */
	HANDOVER_REFUSED,      /* the socket failed its checks: the holder closes it */
	HANDOVER_GIVEN_BACK,   /* ctflowd could not start: the holder keeps it */
};

/**
 * handover_answer:
 * Tells the holder behind @holder (from handover_take(); -1 does nothing)
 * what became of the socket, and closes @holder.  A successor that ends
 * without answering gives the socket back as HANDOVER_GIVEN_BACK does.
 */
void handover_answer(int holder, enum handover_answer answer);
