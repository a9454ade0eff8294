/*
 * cursor.c - readers' confirmed positions on disk.
 *
 * One record at offset 0, overwritten in place: 24 bytes lie inside one
 * sector, and the CRC catches the rare write that is torn anyway.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#include "ctflowd/error.h"
#include "crc32c.h"
#include "cursor.h"

struct cursor {
	int fd;
	char *path;
	gint64 synced_us;
	gboolean too_long;   /* damaged by bytes past the record: cut at the next store */
};

char *cursor_file_name(const char *name)
{
	GString *out = g_string_new("cursor-");

	/* export names are free text: keep them readable, but never a path */
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		if (g_ascii_isalnum(*p) || *p == '_' || *p == '-' ||
		    (*p == '.' && p != (const unsigned char *)name))
			g_string_append_c(out, (char)*p);
		else
			g_string_append_printf(out, "%%%02X", *p);
	}
	return g_string_free(out, FALSE);
}

static void fill_record(struct cursor_record *r, guint64 position)
{
	memset(r, 0, sizeof(*r));
	r->magic = CURSOR_MAGIC;
	r->version = CURSOR_VERSION;
	r->position = position;
	r->crc = crc32c(0, r, sizeof(*r));
}

static char *check_record(const guint8 *buf, ssize_t len, guint64 *position)
{
	struct cursor_record r;

	if (len != (ssize_t)sizeof(r))
		return g_strdup_printf("%zd bytes, a cursor has %zu", len, sizeof(r));
	memcpy(&r, buf, sizeof(r));
	if (r.magic != CURSOR_MAGIC)
		return g_strdup_printf("not a cursor (magic 0x%08x)", r.magic);
	if (r.version != CURSOR_VERSION)
		return g_strdup_printf("cursor format version %u, this build reads version %u",
				       r.version, CURSOR_VERSION);
	guint32 stored = r.crc;
	r.crc = 0;
	if (crc32c(0, &r, sizeof(r)) != stored)
		return g_strdup_printf("fails its CRC (it says position %" G_GUINT64_FORMAT ")",
				       (guint64)r.position);
	*position = r.position;
	return NULL;
}

/* A damaged cursor is about to be rewritten: its bytes go to corrupt/ first,
 * like damaged journal parts, and *problem says where. */
static void keep_damaged(int dirfd, const char *file, const guint8 *buf, size_t len,
			 char **problem)
{
	g_autofree char *name = NULL;
	int fd = -1;

	if (mkdirat(dirfd, "corrupt", 0750) < 0 && errno != EEXIST)
		return;
	for (int i = 0; i < 1000 && fd < 0; i++) {
		g_free(name);
		name = i ? g_strdup_printf("corrupt/%s.%d", file, i) : g_strdup_printf("corrupt/%s", file);
		fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
		if (fd < 0 && errno != EEXIST)
			return;
	}
	if (fd < 0)
		return;
	gboolean ok = write(fd, buf, len) == (ssize_t)len;
	close(fd);
	if (!ok)
		return;
	char *with_place = g_strdup_printf("%s; its %zu bytes are kept in %s", *problem, len, name);
	g_free(*problem);
	*problem = with_place;
}

cursor *cursor_open(int dirfd, const char *dir, const char *name, guint64 initial,
		    enum spool_sync sync, enum cursor_state *state, guint64 *saved,
		    char **problem, GError **error)
{
	g_autofree char *file = cursor_file_name(name);
	cursor *c = g_new0(cursor, 1);

	c->path = g_build_filename(dir, file, NULL);
	*problem = NULL;
	c->fd = openat(dirfd, file, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (c->fd < 0 && errno == ELOOP && unlinkat(dirfd, file, 0) == 0) {
		/* a link holds no position of ours, and what it points to is
		 * never written: a new cursor replaces the link, and the reader
		 * starts from the oldest record, as after a damaged cursor */
		c->fd = openat(dirfd, file, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
		if (c->fd < 0)
			goto fail;
		*state = CURSOR_DAMAGED;
		*problem = g_strdup("a symbolic link, not followed: replaced by a new cursor");
		return c;
	}
	if (c->fd < 0 && errno == ENOENT) {
		c->fd = openat(dirfd, file, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
		if (c->fd < 0)
			goto fail;
		*state = CURSOR_NEW;
		/* the entry must survive too, or the reader starts at the end again */
		if (!cursor_store(c, initial, sync, error)) {
			cursor_free(c);
			return NULL;
		}
		if (sync != SPOOL_SYNC_NONE && fsync(dirfd) < 0) {
			int e = errno;
			g_set_error(error, CTFLOWD_ERROR, e, "cannot sync %s: %s", dir, g_strerror(e));
			cursor_free(c);
			return NULL;
		}
		return c;
	}
	if (c->fd < 0)
		goto fail;

	guint8 buf[2 * sizeof(struct cursor_record)];
	ssize_t len;
	do
		len = pread(c->fd, buf, sizeof(buf), 0);
	while (len < 0 && errno == EINTR);
	if (len < 0)
		goto fail;
	*problem = check_record(buf, len, saved);
	*state = *problem ? CURSOR_DAMAGED : CURSOR_SAVED;
	if (*problem)
		keep_damaged(dirfd, file, buf, (size_t)len, problem);
	/* else every later start would find it damaged again, and replay */
	c->too_long = len > (ssize_t)sizeof(struct cursor_record);
	return c;
fail:;
	int e = errno;
	g_set_error(error, CTFLOWD_ERROR, e, "cannot open %s: %s", c->path, g_strerror(e));
	cursor_free(c);
	return NULL;
}

gboolean cursor_store(cursor *c, guint64 position, enum spool_sync sync, GError **error)
{
	struct cursor_record r;
	ssize_t w;

	fill_record(&r, position);
	do
		w = pwrite(c->fd, &r, sizeof(r), 0);
	while (w < 0 && errno == EINTR);
	if (w == (ssize_t)sizeof(r) && c->too_long) {
		if (ftruncate(c->fd, sizeof(r)) == 0)
			c->too_long = FALSE;
		else
			w = -1;
	}
	/* With SPOOL_SYNC_BATCH a position is synced at most every 100 ms: one
	 * that lags after a power loss only means records are sent again. */
	gboolean due = sync == SPOOL_SYNC_RECORD ||
		       (sync == SPOOL_SYNC_BATCH &&
			g_get_monotonic_time() - c->synced_us >= 100 * 1000);
	if (w == (ssize_t)sizeof(r) && due) {
		if (fdatasync(c->fd) == 0)
			c->synced_us = g_get_monotonic_time();
		else
			w = -1;
	}
	if (w != (ssize_t)sizeof(r)) {
		int e = w >= 0 && w != (ssize_t)sizeof(r) ? EIO : errno;
		g_set_error(error, CTFLOWD_ERROR, e, "cannot write %s: %s", c->path, g_strerror(e));
		return FALSE;
	}
	return TRUE;
}

const char *cursor_path(const cursor *c)
{
	return c->path;
}

void cursor_free(cursor *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	g_free(c->path);
	g_free(c);
}
