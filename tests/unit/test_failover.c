/*
 * test_failover.c - the hand-off of an export's position between the
 * export and its backup, as transitions alone (no threads, no I/O).
 *
 * What the tests hold it to: at any time exactly one side may send (or,
 * in DOWN, none until the backup takes over); a backup only takes what the
 * export let go and only gives it back when the export asked; every
 * takeover and giveback is counted once, and so is every record one side
 * sent unconfirmed before letting go.
 */
#include <glib.h>

#include "ctflowd/failover.h"

struct wakes {
	guint primary;
	guint backup;
};

static void wake_primary(void *user)
{
	((struct wakes *)user)->primary++;
}

static void wake_backup(void *user)
{
	((struct wakes *)user)->backup++;
}

static failover *new_pair(struct wakes *w)
{
	return failover_new("main", "spare", wake_primary, w, wake_backup, w);
}

/* The number of sides allowed to send: never more than one. */
static guint senders(failover *fo)
{
	enum failover_phase phase = failover_phase_get(fo);
	guint n = failover_primary_holds(fo) ? 1 : 0;

	/* the backup holds the position in BACKUP and RETURNING */
	if (phase == FAILOVER_BACKUP || phase == FAILOVER_RETURNING)
		n++;
	return n;
}

static void assert_stats(failover *fo, guint64 takeovers, guint64 givebacks, guint64 doubtful)
{
	struct failover_stats st;

	failover_get_stats(fo, &st);
	g_assert_cmpuint(st.takeovers, ==, takeovers);
	g_assert_cmpuint(st.givebacks, ==, givebacks);
	g_assert_cmpuint(st.doubtful, ==, doubtful);
}

/* down, taken over, back, asked, given back: one round trip */
static void test_round_trip(void)
{
	struct wakes w = {0};
	failover *fo = new_pair(&w);

	g_assert_cmpint(failover_phase_get(fo), ==, FAILOVER_PRIMARY);
	g_assert_true(failover_primary_holds(fo));
	g_assert_false(failover_backup_take(fo));
	g_assert_false(failover_backup_must_release(fo));
	g_assert_cmpuint(senders(fo), ==, 1);

	failover_primary_down(fo, 3);
	g_assert_cmpint(failover_phase_get(fo), ==, FAILOVER_DOWN);
	g_assert_cmpuint(w.backup, ==, 1);
	g_assert_cmpuint(senders(fo), ==, 0);
	g_assert_true(failover_backup_take(fo));
	g_assert_cmpint(failover_phase_get(fo), ==, FAILOVER_BACKUP);
	g_assert_cmpuint(senders(fo), ==, 1);
	/* asking again while holding takes nothing new */
	g_assert_true(failover_backup_take(fo));
	assert_stats(fo, 1, 0, 3);

	/* the export is back: it must wait for the backup */
	g_assert_false(failover_primary_up(fo));
	g_assert_cmpint(failover_phase_get(fo), ==, FAILOVER_RETURNING);
	g_assert_cmpuint(w.backup, ==, 2);
	g_assert_false(failover_primary_holds(fo));
	g_assert_true(failover_backup_must_release(fo));
	g_assert_cmpuint(senders(fo), ==, 1);
	g_assert_false(failover_primary_up(fo));

	failover_backup_release(fo, 2);
	g_assert_cmpuint(w.primary, ==, 1);
	g_assert_true(failover_primary_holds(fo));
	g_assert_false(failover_backup_take(fo));
	g_assert_cmpuint(senders(fo), ==, 1);
	g_assert_true(failover_primary_up(fo));
	assert_stats(fo, 1, 1, 5);
	failover_free(fo);
}

/* back before the backup noticed: no takeover, nothing to give back */
static void test_back_before_takeover(void)
{
	struct wakes w = {0};
	failover *fo = new_pair(&w);

	failover_primary_down(fo, 0);
	g_assert_true(failover_primary_up(fo));
	g_assert_cmpint(failover_phase_get(fo), ==, FAILOVER_PRIMARY);
	g_assert_false(failover_backup_take(fo));
	assert_stats(fo, 0, 0, 0);
	failover_free(fo);
}

/* the connection the export opened to take over breaks before the backup
 * let go: the backup keeps sending, and is not asked to stop */
static void test_down_while_returning(void)
{
	struct wakes w = {0};
	failover *fo = new_pair(&w);

	failover_primary_down(fo, 0);
	g_assert_true(failover_backup_take(fo));
	g_assert_false(failover_primary_up(fo));
	failover_primary_down(fo, 7);
	g_assert_cmpint(failover_phase_get(fo), ==, FAILOVER_BACKUP);
	g_assert_false(failover_backup_must_release(fo));
	/* a release nobody asked for changes nothing */
	failover_backup_release(fo, 1);
	g_assert_cmpint(failover_phase_get(fo), ==, FAILOVER_BACKUP);
	g_assert_cmpuint(w.primary, ==, 0);
	/* it had sent nothing on that connection: nothing counted */
	assert_stats(fo, 1, 0, 0);
	failover_free(fo);
}

/* calls out of turn change nothing */
static void test_out_of_turn(void)
{
	struct wakes w = {0};
	failover *fo = new_pair(&w);

	failover_backup_release(fo, 4);
	g_assert_cmpint(failover_phase_get(fo), ==, FAILOVER_PRIMARY);
	failover_primary_down(fo, 1);
	failover_primary_down(fo, 9);   /* down again before the takeover */
	g_assert_cmpint(failover_phase_get(fo), ==, FAILOVER_DOWN);
	g_assert_cmpuint(w.backup, ==, 1);
	assert_stats(fo, 0, 0, 1);
	failover_free(fo);
	failover_free(NULL);
}

/* many round trips: the counters add up, one sender throughout */
static void test_many_rounds(void)
{
	struct wakes w = {0};
	failover *fo = new_pair(&w);

	for (guint i = 0; i < 100; i++) {
		failover_primary_down(fo, i % 3);
		g_assert_cmpuint(senders(fo), <=, 1);
		g_assert_true(failover_backup_take(fo));
		g_assert_false(failover_primary_up(fo));
		g_assert_cmpuint(senders(fo), ==, 1);
		failover_backup_release(fo, 0);
		g_assert_true(failover_primary_up(fo));
	}
	assert_stats(fo, 100, 100, 99);
	g_assert_cmpuint(w.primary, ==, 100);
	g_assert_cmpuint(w.backup, ==, 200);
	failover_free(fo);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	/* the hand-offs are logged as warnings, by design */
	g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
	g_test_add_func("/failover/round-trip", test_round_trip);
	g_test_add_func("/failover/back-before-takeover", test_back_before_takeover);
	g_test_add_func("/failover/down-while-returning", test_down_while_returning);
	g_test_add_func("/failover/out-of-turn", test_out_of_turn);
	g_test_add_func("/failover/many-rounds", test_many_rounds);
	return g_test_run();
}
