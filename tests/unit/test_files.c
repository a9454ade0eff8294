/*
 * test_files.c - see test_files.h.
 */
#include <fcntl.h>
#include <glib/gstdio.h>
#include <unistd.h>

#include "test_files.h"

void remove_tree(const char *path)
{
	GDir *d = g_dir_open(path, 0, NULL);
	const char *name;

	if (d) {
		while ((name = g_dir_read_name(d))) {
			g_autofree char *child = g_build_filename(path, name, NULL);
			/* never into a link: a test may point one at /dev */
			if (g_file_test(child, G_FILE_TEST_IS_DIR) &&
			    !g_file_test(child, G_FILE_TEST_IS_SYMLINK))
				remove_tree(child);
			else
				g_unlink(child);
		}
		g_dir_close(d);
	}
	g_rmdir(path);
}

char *make_dir(void)
{
	g_autoptr(GError) error = NULL;
	char *dir = g_dir_make_tmp("ctflowd-test-XXXXXX", &error);

	g_assert_no_error(error);
	return dir;
}

char *path_in(const char *dir, const char *name)
{
	return g_build_filename(dir, name, NULL);
}

guint64 file_size(const char *path)
{
	GStatBuf st;

	g_assert_cmpint(g_stat(path, &st), ==, 0);
	return (guint64)st.st_size;
}

void patch_file(const char *path, guint64 offset, const void *bytes, size_t len)
{
	int fd = open(path, O_WRONLY);

	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(pwrite(fd, bytes, len, (off_t)offset), ==, (ssize_t)len);
	close(fd);
}

void flip_byte(const char *path, guint64 offset)
{
	int fd = open(path, O_RDWR);
	guint8 b;

	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(pread(fd, &b, 1, (off_t)offset), ==, 1);
	b ^= 0x10;
	g_assert_cmpint(pwrite(fd, &b, 1, (off_t)offset), ==, 1);
	close(fd);
}

void write_file(const char *path, const void *bytes, size_t len)
{
	g_autoptr(GError) error = NULL;

	g_file_set_contents(path, bytes, (gssize)len, &error);
	g_assert_no_error(error);
}

