/*
 * coalesce.h - how long the reader sleeps between drains in a burst.
 *
 * A reader that goes back to poll() after every drain is woken by the very
 * next event, and each wake-up (a context switch, a poll, a recvmmsg) costs
 * more than the few events it finds.  Sleeping between drains lets events
 * gather in the receive buffer, so each wake-up takes many.  The pause must
 * stay well short of the time the buffer takes to fill: an event that finds
 * it full is parked by the kernel and sent again later, which costs the host
 * more than the wake-up saved.  So the pause is sized from the arrival rate
 * just measured and the number of events the buffer holds, aiming to find
 * it about a third full; a drain that overran lowers the aim, and drains
 * without overruns raise it back.  Plain arithmetic, no I/O: the reader
 * does the sleeping.
 */
#pragma once

#include <glib.h>

/* receive-buffer bytes a conntrack event takes (skb and data, about 1 KiB
 * on 6.x kernels: a 32 KiB buffer holds 27 to 35 events) */
#define COALESCE_EVENT_TRUESIZE 1024
/* a drain that finds fewer events ends the burst: back to poll() */
#define COALESCE_BURST_MIN 4
/* pauses shorter than this are not worth a sleep */
#define COALESCE_PAUSE_MIN_US 10
/* the longest pause, whatever the buffer: the loop's deadlines come first */
#define COALESCE_PAUSE_MAX_US 5000
/* the first pause of a burst, which measures the arrival rate */
#define COALESCE_FIRST_PAUSE_US 20

struct coalesce {
	guint capacity;     /* events the receive buffer holds, about */
	guint aim;          /* events a drain in a burst aims to find */
	guint aim_max;      /* a third of the capacity */
	gint64 last_us;     /* previous drain of the burst (monotonic); 0: no burst */
	double rate;        /* events per microsecond, smoothed over the burst */
};

/** coalesce_init: for a socket whose receive buffer is @rcvbuf bytes (SO_RCVBUF, as granted). */
void coalesce_init(struct coalesce *c, guint64 rcvbuf);

/**
 * coalesce_pause:
 * After a drain at @now_us that took @taken events (@overran: the socket
 * reported an overrun meanwhile), microseconds to sleep before the next
 * drain, or 0 to go back to poll().
 */
guint coalesce_pause(struct coalesce *c, guint taken, gboolean overran, gint64 now_us);
