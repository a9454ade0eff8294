/*
 * state_dir.h - the state directory, used only once it is checked.
 *
 * ctflowd runs as root and writes its landing zone, journal, positions and
 * flowId reservation under state_directory.  Whoever can write a directory
 * can plant a symbolic link where ctflowd is about to write, and a root
 * process that opens the link by name resizes, overwrites or replaces the
 * file it points to, anywhere on the host.  So a directory is used only when
 * it is a real directory (a link to one is refused), owned by ctflowd's
 * effective uid and writable by nobody else; and the files in it are opened
 * relative to the checked directory's descriptor, never through a link.
 * Once the descriptor is checked, nobody else can change the names in it,
 * however the path to it was reached.
 */
#pragma once

#include <glib.h>
#include <sys/types.h>

/**
 * state_dir_prepare:
 * At start: creates @path (mode 0750, missing parents too) if it does not
 * exist, and refuses, naming the path, its owner and its mode, a @path that
 * is a symbolic link or not a directory, not owned by the effective uid, or
 * writable by group or others.  The subdirectories ctflowd made before
 * (spool/, spool/corrupt/) must pass the same checks when they exist.
 */
gboolean state_dir_prepare(const char *path, GError **error);

/**
 * state_dir_open:
 * A descriptor (O_DIRECTORY, O_CLOEXEC) of the directory @path, once it
 * passed the checks of state_dir_prepare().  With @create, the directory
 * is made first (mode 0750, parents too) when missing.  Returns -1 with
 * @error set.
 */
int state_dir_open(const char *path, gboolean create, GError **error);

/**
 * state_dir_open_file:
 * Opens @name in the checked directory @dirfd (@dir names it in messages)
 * with @flags plus O_NOFOLLOW and O_CLOEXEC, and accepts only a regular
 * file.  With O_CREAT in @flags, a symbolic link at @name is removed (the
 * link, never what it points to), logged, and a new file made in its place;
 * without it, a link is an error.  The error's code is the errno (ENOENT
 * for a missing file).  Returns the descriptor, or -1 with @error set.
 */
int state_dir_open_file(int dirfd, const char *dir, const char *name, int flags, mode_t mode,
			GError **error);

/**
 * state_dir_open_path:
 * state_dir_open_file() for a file given by its path: its directory must
 * pass the checks of state_dir_open() (without creating it).
 */
int state_dir_open_path(const char *path, int flags, mode_t mode, GError **error);

/**
 * state_dir_replace_file:
 * Gives @name in @dirfd the @len bytes of @data (file mode @mode) all at
 * once: they are written to NAME.tmp (created with O_EXCL, after removing a
 * stale one), synced, and renamed over @name, so that a crash leaves the old
 * or the new contents, never a mix.  A symbolic link at @name is replaced by
 * the file, never followed.  @dir names the directory in messages.
 */
gboolean state_dir_replace_file(int dirfd, const char *dir, const char *name, const void *data,
				gsize len, mode_t mode, GError **error);
