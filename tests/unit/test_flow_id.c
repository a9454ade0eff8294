/*
 * test_flow_id.c - flowId numbers never repeat: not within a run, not
 * across restarts, not when the reservation file is damaged or lost.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctflowd/flow_id.h"

struct dir {
	char *path;
	char *file;
};

static void dir_setup(struct dir *d, gconstpointer data)
{
	d->path = g_dir_make_tmp("ctflowd-flowid-XXXXXX", NULL);
	g_assert_nonnull(d->path);
	d->file = g_build_filename(d->path, "flow-id", NULL);
}

static void dir_teardown(struct dir *d, gconstpointer data)
{
	g_autofree char *tmp = g_strconcat(d->file, ".tmp", NULL);
	g_unlink(d->file);
	g_unlink(tmp);
	g_rmdir(d->path);
	g_free(d->file);
	g_free(d->path);
}

static uint64_t clock_floor(void)
{
	return (uint64_t)(g_get_real_time() / G_USEC_PER_SEC) << 28;
}

static void test_increasing_within_run(struct dir *d, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	/* read before opening: the block is reserved from the clock at
	 * flow_ids_open(), and a second may begin in between */
	uint64_t before = clock_floor();
	flow_ids *ids = flow_ids_open(d->file, &error);
	g_assert_no_error(error);

	uint64_t prev = flow_ids_next(ids);
	g_assert_cmpuint(prev, >=, before);
	/* cross several block boundaries (blocks are 2^20) */
	for (int i = 0; i < 3 * (1 << 20) + 17; i++) {
		uint64_t v = flow_ids_next(ids);
		g_assert_cmpuint(v, >, prev);
		prev = v;
	}
	flow_ids_free(ids);
}

static void test_restart_never_repeats(struct dir *d, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	uint64_t last = 0;

	for (int run = 0; run < 5; run++) {
		flow_ids *ids = flow_ids_open(d->file, &error);
		g_assert_no_error(error);
		uint64_t first = flow_ids_next(ids);
		g_assert_cmpuint(first, >, last);
		for (int i = 0; i < 1000; i++)
			last = flow_ids_next(ids);
		flow_ids_free(ids);
	}
}

static void test_reservation_in_the_future(struct dir *d, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	/* a reservation far ahead of the clock (the clock went back) wins */
	uint64_t ahead = clock_floor() + (1000ull << 28);
	g_autofree char *text = g_strdup_printf("%" G_GUINT64_FORMAT "\n", ahead);
	g_assert_true(g_file_set_contents(d->file, text, -1, NULL));

	flow_ids *ids = flow_ids_open(d->file, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(flow_ids_next(ids), ==, ahead);
	flow_ids_free(ids);
}

/* Opening logs @warning and numbers from the clock on. */
static void assert_numbers_from_clock(struct dir *d, const char *warning)
{
	g_autoptr(GError) error = NULL;

	g_test_expect_message("ctflowd", G_LOG_LEVEL_WARNING, warning);
	uint64_t before = clock_floor();
	flow_ids *ids = flow_ids_open(d->file, &error);
	g_test_assert_expected_messages();
	g_assert_no_error(error);
	g_assert_cmpuint(flow_ids_next(ids), >=, before);
	flow_ids_free(ids);
}

static void test_corrupt_file(struct dir *d, gconstpointer data)
{
	g_assert_true(g_file_set_contents(d->file, "12ab\n", -1, NULL));
	assert_numbers_from_clock(d, "*not a flowId reservation*continuing from the clock*");
}

static void test_unwritable(struct dir *d, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *missing = g_build_filename(d->path, "no-such-dir", "flow-id", NULL);

	flow_ids *ids = flow_ids_open(missing, &error);
	g_assert_null(ids);
	g_assert_nonnull(error);
	g_assert_true(strstr(error->message, "no-such-dir") != NULL);
}

/* A reservation near 2^64 would make numbers wrap round and repeat: it is
 * not used, and numbering goes on from the clock. */
static void test_reservation_near_wrap(struct dir *d, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	const uint64_t near = G_MAXUINT64 - 5;
	g_autofree char *text = g_strdup_printf("%" G_GUINT64_FORMAT "\n", near);
	g_assert_true(g_file_set_contents(d->file, text, -1, NULL));

	g_test_expect_message("ctflowd", G_LOG_LEVEL_WARNING,
			      "*flow-id: flowId reservation 18446744073709551610 is past 2^63*"
			      "wrap*continuing from the clock");
	uint64_t before = clock_floor();
	flow_ids *ids = flow_ids_open(d->file, &error);
	g_test_assert_expected_messages();
	g_assert_no_error(error);
	uint64_t prev = flow_ids_next(ids);
	g_assert_cmpuint(prev, >=, before);
	g_assert_cmpuint(prev, <, 1ull << 63);
	/* past the first block: the next reservation does not wrap either */
	for (int i = 0; i < (1 << 20) + 5; i++) {
		uint64_t v = flow_ids_next(ids);
		g_assert_cmpuint(v, >, prev);
		prev = v;
	}
	flow_ids_free(ids);

	/* the file now holds a reservation from the clock, which a restart uses */
	ids = flow_ids_open(d->file, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(flow_ids_next(ids), >, prev);
	flow_ids_free(ids);
}

/* 2^63 itself is still a reservation: numbers go on from it. */
static void test_reservation_at_limit(struct dir *d, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *text = g_strdup_printf("%" G_GUINT64_FORMAT "\n", (guint64)1 << 63);
	g_assert_true(g_file_set_contents(d->file, text, -1, NULL));

	flow_ids *ids = flow_ids_open(d->file, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(flow_ids_next(ids), ==, 1ull << 63);
	flow_ids_free(ids);
}

/* Links planted as flow-id or flow-id.tmp are never written through: the
 * reservation replaces them, and the files they point to stay as they were. */
static void test_symbolic_links(struct dir *d, gconstpointer data)
{
	g_autofree char *tmp = g_strconcat(d->file, ".tmp", NULL);
	g_autofree char *target = g_build_filename(d->path, "target", NULL);
	g_autofree char *target_tmp = g_build_filename(d->path, "target-tmp", NULL);
	const char *keep = "99999999999999\n";

	g_assert_true(g_file_set_contents(target, keep, -1, NULL));
	g_assert_true(g_file_set_contents(target_tmp, keep, -1, NULL));
	g_assert_cmpint(symlink(target, d->file), ==, 0);
	g_assert_cmpint(symlink(target_tmp, tmp), ==, 0);

	assert_numbers_from_clock(d, "*flow-id is a symbolic link*continuing from the clock");

	GStatBuf st;
	g_assert_cmpint(g_lstat(d->file, &st), ==, 0);
	g_assert_true(S_ISREG(st.st_mode));
	g_assert_cmpint(g_lstat(tmp, &st), ==, -1);
	for (int i = 0; i < 2; i++) {
		g_autofree char *text = NULL;
		g_assert_true(g_file_get_contents(i ? target_tmp : target, &text, NULL, NULL));
		g_assert_cmpstr(text, ==, keep);
	}
	g_unlink(target);
	g_unlink(target_tmp);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/flow_id/increasing-within-run", struct dir, NULL, dir_setup,
		   test_increasing_within_run, dir_teardown);
	g_test_add("/flow_id/restart-never-repeats", struct dir, NULL, dir_setup,
		   test_restart_never_repeats, dir_teardown);
	g_test_add("/flow_id/reservation-ahead-of-clock", struct dir, NULL, dir_setup,
		   test_reservation_in_the_future, dir_teardown);
	g_test_add("/flow_id/corrupt-file", struct dir, NULL, dir_setup, test_corrupt_file,
		   dir_teardown);
	g_test_add("/flow_id/unwritable", struct dir, NULL, dir_setup, test_unwritable,
		   dir_teardown);
	g_test_add("/flow_id/reservation-near-wrap", struct dir, NULL, dir_setup,
		   test_reservation_near_wrap, dir_teardown);
	g_test_add("/flow_id/reservation-at-limit", struct dir, NULL, dir_setup,
		   test_reservation_at_limit, dir_teardown);
	g_test_add("/flow_id/symbolic-links", struct dir, NULL, dir_setup, test_symbolic_links,
		   dir_teardown);
	return g_test_run();
}
