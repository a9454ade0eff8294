/*
 * test_files.h - temporary directories and deliberate damage to files, for
 * the tests of what ctflowd keeps on disk (journal, cursors, flowId
 * reservation, landing zone).  Every helper asserts that it worked.
 */
#pragma once

#include <glib.h>

/** make_dir: a new empty directory under the temporary directory (free with g_free). */
char *make_dir(void);

/** remove_tree: deletes @path and everything below it. */
void remove_tree(const char *path);

/** path_in: @dir/@name (free with g_free). */
char *path_in(const char *dir, const char *name);

/** file_size: the size of @path. */
guint64 file_size(const char *path);

/** write_file: replaces @path with @len bytes. */
void write_file(const char *path, const void *bytes, size_t len);

/** patch_file: overwrites @len bytes of @path at @offset. */
void patch_file(const char *path, guint64 offset, const void *bytes, size_t len);

/** flip_byte: flips a bit of the byte at @offset of @path. */
void flip_byte(const char *path, guint64 offset);
