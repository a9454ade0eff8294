/*
 * coalesce.c - pauses between drains in a burst (see coalesce.h).
 */
#include "ctflowd/coalesce.h"

void coalesce_init(struct coalesce *c, guint64 rcvbuf)
{
	*c = (struct coalesce){ 0 };
	c->capacity = (guint)MIN(rcvbuf / COALESCE_EVENT_TRUESIZE, (guint64)G_MAXUINT / 2);
	c->capacity = MAX(c->capacity, 2u * COALESCE_BURST_MIN);
	c->aim = c->aim_max = c->capacity / 3;
}

guint coalesce_pause(struct coalesce *c, guint taken, gboolean overran, gint64 now_us)
{
	if (taken < COALESCE_BURST_MIN) {
		c->last_us = 0;
		return 0;
	}
	/* An overrun lowers the aim by a quarter, never below a burst's worth
	 * (or every drain would end the burst); each drain without one raises
	 * it by an event again.  Most overruns come from the reader being busy
	 * (a journal write, another thread on its CPU), not from the pause: an
	 * aim that only went down would end at its floor for good, and every
	 * few events would cost a wake-up again. */
	if (overran)
		c->aim = MAX(c->aim * 3 / 4, MAX(c->capacity / 8, (guint)COALESCE_BURST_MIN));
	else if (c->aim < c->aim_max)
		c->aim++;
	if (!c->last_us) {
		c->last_us = now_us;
		return COALESCE_FIRST_PAUSE_US;
	}
	double span = (double)MAX(now_us - c->last_us, (gint64)1);
	c->last_us = now_us;
	double rate = (double)taken / span;
	c->rate = c->rate > 0 ? 0.75 * c->rate + 0.25 * rate : rate;
	double pause = (double)c->aim / c->rate;
	if (pause < COALESCE_PAUSE_MIN_US)
		return 0;
	return (guint)MIN(pause, (double)COALESCE_PAUSE_MAX_US);
}
