/*
 * test_coalesce.c - the pauses between drains in a burst.
 *
 * Too short a pause wastes wake-ups; too long a one overflows the receive
 * buffer, and every event that finds it full is parked and resent by the
 * kernel.  The arithmetic is checked against drains at known rates.
 */
#include <glib.h>

#include "ctflowd/coalesce.h"

/* Drains of @taken events every @every_us, @n times; returns the last pause. */
static guint steady(struct coalesce *c, guint taken, gint64 every_us, int n, gint64 *now)
{
	guint pause = 0;
	for (int i = 0; i < n; i++) {
		*now += every_us;
		pause = coalesce_pause(c, taken, FALSE, *now);
	}
	return pause;
}

static void test_capacity(void)
{
	struct coalesce c;

	coalesce_init(&c, 32768);   /* a 16 KiB setting, doubled by the kernel */
	g_assert_cmpuint(c.capacity, ==, 32);
	g_assert_cmpuint(c.aim, ==, 10);

	/* a buffer too small to hold a burst still aims above the burst minimum */
	coalesce_init(&c, 1024);
	g_assert_cmpuint(c.capacity, ==, 2 * COALESCE_BURST_MIN);
	g_assert_cmpuint(c.aim, >=, 1);
}

static void test_no_burst(void)
{
	struct coalesce c;
	gint64 now = 1000000;

	coalesce_init(&c, 32768);
	/* a few events a wake-up: no pause, poll() serves them best */
	for (int i = 0; i < 10; i++) {
		now += 1000;
		g_assert_cmpuint(coalesce_pause(&c, COALESCE_BURST_MIN - 1, FALSE, now), ==, 0);
		g_assert_cmpint(c.last_us, ==, 0);
	}
}

static void test_rate(void)
{
	struct coalesce c;
	gint64 now = 1000000;

	coalesce_init(&c, 32768);
	g_assert_cmpuint(coalesce_pause(&c, 8, FALSE, now), ==, COALESCE_FIRST_PAUSE_US);
	/* 10 events every 40 us: 0.25 per us; aiming at 10 events means 40 us */
	guint pause = steady(&c, 10, 40, 20, &now);
	g_assert_cmpuint(pause, >=, 38);
	g_assert_cmpuint(pause, <=, 42);
	/* twice the rate: half the pause, once the average caught up */
	pause = steady(&c, 10, 20, 30, &now);
	g_assert_cmpuint(pause, >=, 19);
	g_assert_cmpuint(pause, <=, 21);

	/* the burst ends; the next one measures again first */
	g_assert_cmpuint(coalesce_pause(&c, 1, FALSE, now + 10), ==, 0);
	g_assert_cmpuint(coalesce_pause(&c, 9, FALSE, now + 5000), ==, COALESCE_FIRST_PAUSE_US);
}

static void test_too_fast_for_the_buffer(void)
{
	struct coalesce c;
	gint64 now = 1000000;

	coalesce_init(&c, 32768);
	coalesce_pause(&c, 8, FALSE, now);
	/* 40 events a microsecond fill 32 events' worth before any sleep
	 * would end: straight back to poll() */
	g_assert_cmpuint(steady(&c, 400, 10, 10, &now), ==, 0);
}

static void test_large_buffer_capped(void)
{
	struct coalesce c;
	gint64 now = 1000000;

	coalesce_init(&c, 16u << 20);
	coalesce_pause(&c, 8, FALSE, now);
	/* 16 MiB at 0.25 events/us would allow 20 ms: capped */
	g_assert_cmpuint(steady(&c, 250, 1000, 10, &now), ==, COALESCE_PAUSE_MAX_US);
}

static void test_overrun_lowers_the_aim(void)
{
	struct coalesce c;
	gint64 now = 1000000;

	coalesce_init(&c, 32768);
	coalesce_pause(&c, 8, FALSE, now);
	guint before = steady(&c, 10, 40, 20, &now);
	now += 40;
	guint after = coalesce_pause(&c, 10, TRUE, now);
	g_assert_cmpuint(after, <, before);
	/* overruns on every drain: the aim stops at an eighth of the buffer
	 * and never below a burst */
	for (int i = 0; i < 50; i++) {
		now += 40;
		coalesce_pause(&c, 10, TRUE, now);
	}
	g_assert_cmpuint(c.aim, ==, MAX(c.capacity / 8, (guint)COALESCE_BURST_MIN));
	g_assert_cmpuint(c.aim, >=, COALESCE_BURST_MIN);

	/* drains without overruns raise it back, an event each, to a third */
	guint low = c.aim;
	now += 40;
	coalesce_pause(&c, 10, FALSE, now);
	g_assert_cmpuint(c.aim, ==, low + 1);
	for (int i = 0; i < 50; i++) {
		now += 40;
		coalesce_pause(&c, 10, FALSE, now);
	}
	g_assert_cmpuint(c.aim, ==, c.capacity / 3);
	g_assert_cmpuint(steady(&c, 10, 40, 20, &now), ==, before);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/coalesce/capacity", test_capacity);
	g_test_add_func("/coalesce/no-burst", test_no_burst);
	g_test_add_func("/coalesce/rate", test_rate);
	g_test_add_func("/coalesce/too-fast", test_too_fast_for_the_buffer);
	g_test_add_func("/coalesce/large-buffer", test_large_buffer_capped);
	g_test_add_func("/coalesce/overrun", test_overrun_lowers_the_aim);
	return g_test_run();
}
