/*
 * test_state_dir.c - a state directory others could write is refused, and
 * files in a checked one are opened without following links.
 *
 * Each case plants what someone who could write the directory would plant:
 * links to a file outside (whose contents must stay as they were), a FIFO,
 * wrong owners and modes.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctflowd/error.h"
#include "ctflowd/state_dir.h"

#define OUTSIDE_TEXT "a file ctflowd must not touch\n"
#define NOBODY 65534

struct dir {
	char *base;      /* private to the test: 0700 */
	char *state;     /* BASE/state, made by each test as it needs */
	char *outside;   /* BASE/outside, a file links point at */
};

static void dir_setup(struct dir *d, gconstpointer data)
{
	d->base = g_dir_make_tmp("ctflowd-statedir-XXXXXX", NULL);
	g_assert_nonnull(d->base);
	d->state = g_build_filename(d->base, "state", NULL);
	d->outside = g_build_filename(d->base, "outside", NULL);
	g_assert_true(g_file_set_contents(d->outside, OUTSIDE_TEXT, -1, NULL));
}

static void remove_tree(const char *path)
{
	GDir *dir = g_dir_open(path, 0, NULL);
	const char *name;
	GStatBuf st;

	if (dir) {
		while ((name = g_dir_read_name(dir))) {
			g_autofree char *child = g_build_filename(path, name, NULL);
			if (g_lstat(child, &st) == 0 && S_ISDIR(st.st_mode))
				remove_tree(child);
			else
				g_unlink(child);
		}
		g_dir_close(dir);
	}
	g_rmdir(path);
}

static void dir_teardown(struct dir *d, gconstpointer data)
{
	remove_tree(d->base);
	g_free(d->base);
	g_free(d->state);
	g_free(d->outside);
}

static void assert_outside_unchanged(struct dir *d)
{
	g_autofree char *text = NULL;
	GStatBuf st;

	g_assert_cmpint(g_lstat(d->outside, &st), ==, 0);
	g_assert_true(S_ISREG(st.st_mode));
	g_assert_true(g_file_get_contents(d->outside, &text, NULL, NULL));
	g_assert_cmpstr(text, ==, OUTSIDE_TEXT);
}

static void make_state(struct dir *d, mode_t mode)
{
	g_assert_cmpint(mkdir(d->state, 0700), ==, 0);
	g_assert_cmpint(chmod(d->state, mode), ==, 0);
}

/* The error of state_dir_prepare(@path): it must name the path and
 * contain every fragment of @want. */
static void assert_refused(const char *path, const char *const *want)
{
	g_autoptr(GError) error = NULL;

	g_assert_false(state_dir_prepare(path, &error));
	g_assert_nonnull(error);
	g_test_message("refused: %s", error->message);
	g_assert_nonnull(strstr(error->message, path));
	for (; *want; want++)
		g_assert_nonnull(strstr(error->message, *want));
}

/* ---- the directory ------------------------------------------------------ */

static void test_created(struct dir *d, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *deep = g_build_filename(d->state, "a", "b", NULL);
	mode_t old = umask(0);
	gboolean ok = state_dir_prepare(deep, &error);
	umask(old);
	GStatBuf st;

	g_assert_no_error(error);
	g_assert_true(ok);
	g_assert_cmpint(g_lstat(deep, &st), ==, 0);
	g_assert_true(S_ISDIR(st.st_mode));
	g_assert_cmpuint(st.st_mode & 07777, ==, 0750);
	/* and once it exists, it is used as it is */
	g_assert_true(state_dir_prepare(deep, &error));
	g_assert_no_error(error);
}

static void test_world_writable(struct dir *d, gconstpointer data)
{
	make_state(d, 0777);
	assert_refused(d->state, (const char *const[]){ "writable by others", "mode 0777", NULL });
	/* the sticky bit does not help: others still create names in it */
	g_assert_cmpint(chmod(d->state, 01777), ==, 0);
	assert_refused(d->state, (const char *const[]){ "writable by others", "mode 1777", NULL });
}

static void test_group_writable(struct dir *d, gconstpointer data)
{
	make_state(d, 0770);
	assert_refused(d->state, (const char *const[]){ "writable by its group", "mode 0770", NULL });
}

static void test_other_owner(struct dir *d, gconstpointer data)
{
	if (geteuid() != 0) {
		g_test_skip("changing a directory's owner needs root");
		return;
	}
	make_state(d, 0750);
	g_assert_cmpint(chown(d->state, NOBODY, NOBODY), ==, 0);
	assert_refused(d->state, (const char *const[]){ "owned by uid 65534", "mode 0750",
							"ctflowd runs as uid 0", NULL });
}

static void test_symbolic_link(struct dir *d, gconstpointer data)
{
	g_autofree char *real = g_build_filename(d->base, "real", NULL);

	g_assert_cmpint(mkdir(real, 0750), ==, 0);
	g_assert_cmpint(symlink(real, d->state), ==, 0);
	assert_refused(d->state, (const char *const[]){ "is a symbolic link", real, NULL });
	/* state_dir_open() (what the worker and the journal use) refuses it too */
	g_autoptr(GError) error = NULL;
	g_assert_cmpint(state_dir_open(d->state, TRUE, &error), ==, -1);
	g_assert_error(error, CTFLOWD_ERROR, ELOOP);
}

static void test_not_a_directory(struct dir *d, gconstpointer data)
{
	g_assert_true(g_file_set_contents(d->state, "", -1, NULL));
	assert_refused(d->state, (const char *const[]){ "not a directory", "a regular file", NULL });
}

/* spool/ and spool/corrupt/, when they exist, are held to the same rules. */
static void test_subdirectories(struct dir *d, gconstpointer data)
{
	g_autofree char *spool = g_build_filename(d->state, "spool", NULL);
	g_autofree char *corrupt = g_build_filename(spool, "corrupt", NULL);
	g_autofree char *elsewhere = g_build_filename(d->base, "elsewhere", NULL);
	g_autoptr(GError) error = NULL;

	make_state(d, 0750);
	g_assert_cmpint(mkdir(spool, 0750), ==, 0);
	g_assert_cmpint(chmod(spool, 0777), ==, 0);
	assert_refused(spool, (const char *const[]){ "writable by others", NULL });
	g_assert_cmpint(chmod(spool, 0750), ==, 0);
	g_assert_true(state_dir_prepare(d->state, &error));
	g_assert_no_error(error);

	g_assert_cmpint(mkdir(elsewhere, 0750), ==, 0);
	g_assert_cmpint(symlink(elsewhere, corrupt), ==, 0);
	g_assert_false(state_dir_prepare(d->state, &error));
	g_assert_nonnull(strstr(error->message, corrupt));
	g_assert_nonnull(strstr(error->message, "symbolic link"));
}

/* ---- files in it ---------------------------------------------------------- */

static int open_dir(struct dir *d)
{
	g_autoptr(GError) error = NULL;
	int fd = state_dir_open(d->state, TRUE, &error);

	g_assert_no_error(error);
	g_assert_cmpint(fd, >=, 0);
	return fd;
}

/* With O_CREAT a link is replaced by a file of ctflowd's own; without it,
 * the open fails.  Neither writes through it. */
static void test_open_file_link(struct dir *d, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *landing = g_build_filename(d->state, "landing", NULL);
	int dirfd = open_dir(d);
	GStatBuf st;

	g_assert_cmpint(symlink(d->outside, landing), ==, 0);
	int fd = state_dir_open_file(dirfd, d->state, "landing", O_RDONLY, 0, &error);
	g_assert_cmpint(fd, ==, -1);
	g_assert_error(error, CTFLOWD_ERROR, ELOOP);
	g_assert_nonnull(strstr(error->message, landing));
	g_clear_error(&error);

	g_test_expect_message("ctflowd", G_LOG_LEVEL_WARNING,
			      "*landing was a symbolic link*not followed; removed it*");
	fd = state_dir_open_path(landing, O_RDWR | O_CREAT, 0600, &error);
	g_test_assert_expected_messages();
	g_assert_no_error(error);
	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(ftruncate(fd, 1 << 20), ==, 0);
	g_assert_cmpint(write(fd, "x", 1), ==, 1);
	close(fd);
	g_assert_cmpint(g_lstat(landing, &st), ==, 0);
	g_assert_true(S_ISREG(st.st_mode));
	g_assert_cmpint(st.st_size, ==, 1 << 20);
	assert_outside_unchanged(d);
	close(dirfd);
}

/* A FIFO under a file's name neither hangs the open nor is used. */
static void test_open_file_fifo(struct dir *d, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *fifo = g_build_filename(d->state, "flow-id", NULL);
	int dirfd = open_dir(d);

	g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);
	g_assert_cmpint(state_dir_open_file(dirfd, d->state, "flow-id", O_RDONLY, 0, &error), ==, -1);
	g_assert_nonnull(error);
	g_assert_nonnull(strstr(error->message, "not a regular file but a FIFO"));
	g_clear_error(&error);
	g_assert_cmpint(state_dir_open_file(dirfd, d->state, "missing", O_RDONLY, 0, &error), ==, -1);
	g_assert_error(error, CTFLOWD_ERROR, ENOENT);
	close(dirfd);
}

/* The temporary file is made anew (a stale one, a link included, is
 * removed first), and the rename replaces a link at the name. */
static void test_replace_file(struct dir *d, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *file = g_build_filename(d->state, "flow-id", NULL);
	g_autofree char *tmp = g_build_filename(d->state, "flow-id.tmp", NULL);
	g_autofree char *text = NULL;
	int dirfd = open_dir(d);
	GStatBuf st;

	g_assert_cmpint(symlink(d->outside, file), ==, 0);
	g_assert_cmpint(symlink(d->outside, tmp), ==, 0);
	g_assert_true(state_dir_replace_file(dirfd, d->state, "flow-id", "42\n", 3, 0640, &error));
	g_assert_no_error(error);
	g_assert_cmpint(g_lstat(file, &st), ==, 0);
	g_assert_true(S_ISREG(st.st_mode));
	g_assert_cmpuint(st.st_mode & 0137, ==, 0);   /* 0640 at most */
	g_assert_cmpint(g_lstat(tmp, &st), ==, -1);
	g_assert_true(g_file_get_contents(file, &text, NULL, NULL));
	g_assert_cmpstr(text, ==, "42\n");
	assert_outside_unchanged(d);

	/* a directory at the temporary name cannot be removed: an error that
	 * names it, and the file keeps its contents */
	g_assert_cmpint(mkdir(tmp, 0700), ==, 0);
	g_assert_false(state_dir_replace_file(dirfd, d->state, "flow-id", "43\n", 3, 0640, &error));
	g_assert_nonnull(error);
	g_assert_nonnull(strstr(error->message, tmp));
	g_clear_pointer(&text, g_free);
	g_assert_true(g_file_get_contents(file, &text, NULL, NULL));
	g_assert_cmpstr(text, ==, "42\n");
	close(dirfd);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/state_dir/created", struct dir, NULL, dir_setup, test_created, dir_teardown);
	g_test_add("/state_dir/refused/world-writable", struct dir, NULL, dir_setup,
		   test_world_writable, dir_teardown);
	g_test_add("/state_dir/refused/group-writable", struct dir, NULL, dir_setup,
		   test_group_writable, dir_teardown);
	g_test_add("/state_dir/refused/other-owner", struct dir, NULL, dir_setup, test_other_owner,
		   dir_teardown);
	g_test_add("/state_dir/refused/symbolic-link", struct dir, NULL, dir_setup,
		   test_symbolic_link, dir_teardown);
	g_test_add("/state_dir/refused/not-a-directory", struct dir, NULL, dir_setup,
		   test_not_a_directory, dir_teardown);
	g_test_add("/state_dir/refused/subdirectories", struct dir, NULL, dir_setup,
		   test_subdirectories, dir_teardown);
	g_test_add("/state_dir/file/link", struct dir, NULL, dir_setup, test_open_file_link,
		   dir_teardown);
	g_test_add("/state_dir/file/fifo", struct dir, NULL, dir_setup, test_open_file_fifo,
		   dir_teardown);
	g_test_add("/state_dir/file/replace", struct dir, NULL, dir_setup, test_replace_file,
		   dir_teardown);
	return g_test_run();
}
