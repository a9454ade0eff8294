/*
 * state_dir.c - checking the state directory, and opening files in it
 * without following links.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctflowd/error.h"
#include "ctflowd/state_dir.h"

#define DIR_MODE 0750
/* the subdirectories ctflowd makes itself (journal.h: JOURNAL_CORRUPT_DIR) */
static const char *const made_here[] = { "spool", "spool/corrupt" };

static char *user_name(uid_t uid)
{
	struct passwd pw, *found = NULL;
	char buf[1024];

	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &found) == 0 && found)
		return g_strdup_printf("uid %u (%s)", (unsigned)uid, found->pw_name);
	return g_strdup_printf("uid %u", (unsigned)uid);
}

static const char *file_kind(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: return "a regular file";
	case S_IFDIR: return "a directory";
	case S_IFLNK: return "a symbolic link";
	case S_IFIFO: return "a FIFO";
	case S_IFSOCK: return "a socket";
	case S_IFCHR: return "a character device";
	case S_IFBLK: return "a block device";
	default: return "of an unknown file type";
	}
}

static gboolean set_errno_error(GError **error, int e, const char *what, const char *path)
{
	g_set_error(error, CTFLOWD_ERROR, e, "%s %s: %s", what, path, g_strerror(e));
	return FALSE;
}

/* What the directory's status says about whether it can be trusted; @st
 * comes from lstat() or from fstat() of the open directory. */
static gboolean check_dir_status(const struct stat *st, const char *path, GError **error)
{
	uid_t me = geteuid();

	if (S_ISLNK(st->st_mode)) {
		g_autofree char *target = g_file_read_link(path, NULL);
		g_set_error(error, CTFLOWD_ERROR, ELOOP,
			    "%s is a symbolic link (to %s): ctflowd does not follow a link to a "
			    "directory it writes; name the directory itself",
			    path, target ? target : "?");
		return FALSE;
	}
	if (!S_ISDIR(st->st_mode)) {
		g_set_error(error, CTFLOWD_ERROR, ENOTDIR, "%s is not a directory but %s", path,
			    file_kind(st->st_mode));
		return FALSE;
	}
	g_autofree char *owner = user_name(st->st_uid);
	g_autofree char *self = user_name(me);
	unsigned mode = st->st_mode & 07777;
	if (st->st_uid != me) {
		g_set_error(error, CTFLOWD_ERROR, EPERM,
			    "%s is owned by %s, mode %04o, and ctflowd runs as %s: it only "
			    "writes in a directory of its own (chown %u %s)",
			    path, owner, mode, self, (unsigned)me, path);
		return FALSE;
	}
	if (st->st_mode & (S_IWGRP | S_IWOTH)) {
		g_set_error(error, CTFLOWD_ERROR, EPERM,
			    "%s is writable by %s (owner %s, mode %04o): whoever can write it can "
			    "make ctflowd overwrite any file (chmod go-w %s)",
			    path, st->st_mode & S_IWOTH ? "others" : "its group", owner, mode, path);
		return FALSE;
	}
	return TRUE;
}

/* Opens @name (a path relative to @atfd, or absolute) as a checked
 * directory.  When it does not exist and @missing is given, returns -1
 * with *@missing set and @error unset. */
static int open_checked(int atfd, const char *name, const char *path, gboolean *missing,
			GError **error)
{
	struct stat st;

	/* lstat first: a link must be named as such, not as "not a directory" */
	if (fstatat(atfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT && missing)
			*missing = TRUE;
		else
			set_errno_error(error, errno, "cannot use directory", path);
		return -1;
	}
	if (!check_dir_status(&st, path, error))
		return -1;
	int fd = openat(atfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		set_errno_error(error, errno, "cannot open directory", path);
		return -1;
	}
	/* what counts is the directory now open, whatever happened since */
	if (fstat(fd, &st) < 0) {
		set_errno_error(error, errno, "cannot use directory", path);
		close(fd);
		return -1;
	}
	if (!check_dir_status(&st, path, error)) {
		close(fd);
		return -1;
	}
	return fd;
}

int state_dir_open(const char *path, gboolean create, GError **error)
{
	struct stat st;

	if (create && lstat(path, &st) < 0 && errno == ENOENT &&
	    g_mkdir_with_parents(path, DIR_MODE) < 0) {
		set_errno_error(error, errno, "cannot create directory", path);
		return -1;
	}
	return open_checked(AT_FDCWD, path, path, NULL, error);
}

gboolean state_dir_prepare(const char *path, GError **error)
{
	int fd = state_dir_open(path, TRUE, error);

	if (fd < 0)
		return FALSE;
	for (guint i = 0; i < G_N_ELEMENTS(made_here); i++) {
		g_autofree char *sub = g_build_filename(path, made_here[i], NULL);
		gboolean missing = FALSE;
		int subfd = open_checked(fd, made_here[i], sub, &missing, error);
		if (missing)
			break;   /* nothing further down exists either */
		if (subfd < 0) {
			close(fd);
			return FALSE;
		}
		close(subfd);
	}
	close(fd);
	return TRUE;
}

static int open_nofollow(int dirfd, const char *name, int flags, mode_t mode)
{
	/* O_NONBLOCK: a FIFO planted under a file's name must not hang the
	 * open; it is refused below */
	return openat(dirfd, name, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, mode);
}

int state_dir_open_file(int dirfd, const char *dir, const char *name, int flags, mode_t mode,
			GError **error)
{
	g_autofree char *path = g_build_filename(dir, name, NULL);
	int fd = open_nofollow(dirfd, name, flags, mode);

	if (fd < 0 && errno == ELOOP && (flags & O_CREAT)) {
		/* the link is not ctflowd's file: what it points to stays as it
		 * is, and the name gets a file of ctflowd's own */
		g_autofree char *target = g_file_read_link(path, NULL);
		if (unlinkat(dirfd, name, 0) < 0) {
			set_errno_error(error, errno, "cannot remove the symbolic link", path);
			return -1;
		}
		g_warning("%s was a symbolic link (to %s): not followed; removed it and made a "
			  "new file",
			  path, target ? target : "?");
		fd = open_nofollow(dirfd, name, flags | O_EXCL, mode);
	}
	if (fd < 0) {
		if (errno == ELOOP)
			g_set_error(error, CTFLOWD_ERROR, ELOOP,
				    "%s is a symbolic link: ctflowd does not follow links in its "
				    "state directory",
				    path);
		else
			set_errno_error(error, errno, "cannot open", path);
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		set_errno_error(error, errno, "cannot use", path);
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		g_set_error(error, CTFLOWD_ERROR, EINVAL, "%s is not a regular file but %s: not used",
			    path, file_kind(st.st_mode));
		close(fd);
		return -1;
	}
	if (!(flags & O_NONBLOCK))
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
}

int state_dir_open_path(const char *path, int flags, mode_t mode, GError **error)
{
	g_autofree char *dir = g_path_get_dirname(path);
	g_autofree char *name = g_path_get_basename(path);
	int dirfd = state_dir_open(dir, FALSE, error);

	if (dirfd < 0)
		return -1;
	int fd = state_dir_open_file(dirfd, dir, name, flags, mode, error);
	close(dirfd);
	return fd;
}

gboolean state_dir_replace_file(int dirfd, const char *dir, const char *name, const void *data,
				gsize len, mode_t mode, GError **error)
{
	g_autofree char *tmp = g_strconcat(name, ".tmp", NULL);
	g_autofree char *tmp_path = g_build_filename(dir, tmp, NULL);
	g_autofree char *path = g_build_filename(dir, name, NULL);

	/* a stale temporary file (or whatever was planted there) goes first:
	 * the new one is made with O_EXCL, so nothing at that name is ever
	 * opened or followed */
	if (unlinkat(dirfd, tmp, 0) < 0 && errno != ENOENT)
		return set_errno_error(error, errno, "cannot remove", tmp_path);
	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return set_errno_error(error, errno, "cannot create", tmp_path);
	ssize_t w;
	do
		w = write(fd, data, len);
	while (w < 0 && errno == EINTR);
	int e = 0;
	if (w != (ssize_t)len)
		e = w < 0 ? errno : EIO;
	else if (fsync(fd) < 0)
		e = errno;
	if (e) {
		close(fd);
		unlinkat(dirfd, tmp, 0);
		return set_errno_error(error, e, "cannot write", tmp_path);
	}
	close(fd);
	/* rename replaces whatever is at @name, a link included, without
	 * looking at what a link points to */
	if (renameat(dirfd, tmp, dirfd, name) < 0) {
		e = errno;
		unlinkat(dirfd, tmp, 0);
		return set_errno_error(error, e, "cannot replace", path);
	}
	return TRUE;
}
