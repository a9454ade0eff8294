/*
 * journal.c - segment files: recovery at start, appending, reading back.
 *
 * Recovery trusts nothing it has not checked: every frame's magic, length,
 * position and CRC.  What fails is moved to DIR/corrupt/ (never deleted:
 * someone may want to look at it) and the segment is cut back to its last
 * good frame, so that appends continue after good data only.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctflowd/error.h"
#include "ctflowd/state_dir.h"
#include "crc32c.h"
#include "journal.h"

#define SEGMENT_PREFIX "journal-"
#define UPGRADE_SUFFIX ".upgrade"   /* a segment being rewritten in this version's format */
#define LOCK_NAME "lock"
/* Frames gathered for one write(): far more than the netlink thread hands
 * over at once (1024), small enough not to matter as memory. */
#define WRITE_FRAMES 4096u
/* Recovery reads this many frames at a time. */
#define SCAN_FRAMES 4096u
/* A disk read serves at most this many records; a reader comes back for more. */
#define READ_FRAMES 1024u

/*
 * One segment file.  first, fd and name never change.  count is written
 * by the appender alone (segment_publish()) and read elsewhere with
 * segment_count(); sealed is the appender's alone.  A reader holds a
 * reference while it reads the file without the lock.
 */
struct segment {
	guint64 first;
	guint64 count;          /* good frames */
	gboolean sealed;        /* no appends: full, or a write to it failed */
	int fd;
	char *name;             /* journal-%016llx */
	gint refs;              /* atomic */
};

struct journal {
	char *dir;
	int dirfd;
	int lockfd;
	enum spool_sync sync;
	guint64 segment_records;   /* frames a segment takes */
	guint max_segments;
	/* the list: changed and walked only with the lock held */
	GMutex lock;
	GPtrArray *segments;       /* struct segment *, oldest first; holds a reference each */
	struct segment *tail;      /* takes appends (the newest listed); NULL when there is
				    * none.  Set by the appender, with the lock held */
	guint64 end;               /* after recovery */
	guint64 synced_end;        /* (atomic) positions before it are on disk */
	/* the appender's */
	guint8 *buf;               /* gather buffer, WRITE_FRAMES frames */
	gint64 committed_us;       /* SPOOL_SYNC_BATCH: last group commit handed on */
	gboolean dirty;            /* SPOOL_SYNC_BATCH: the tail was written since */
	struct syncer *syncer;     /* SPOOL_SYNC_BATCH: started by the first commit */
};

/* A segment's count, from any thread: the frames it covers are written. */
static guint64 segment_count(const struct segment *seg)
{
	return __atomic_load_n(&seg->count, __ATOMIC_ACQUIRE);
}

/* The appender's: @n more frames of @seg are written and now held. */
static void segment_publish(struct segment *seg, guint64 n)
{
	__atomic_store_n(&seg->count, seg->count + n, __ATOMIC_RELEASE);
}

/*
 * SPOOL_SYNC_BATCH: the appender never waits for the disk.  At each group
 * commit it hands the segment written since the last one to this thread,
 * which syncs it.  An fdatasync takes milliseconds; on the thread that
 * drains netlink each one let the receive buffer overflow, and the kernel
 * park and resend hundreds of events.
 */
struct syncer {
	GThread *thread;
	GMutex lock;
	GCond cond;
	GPtrArray *queue;          /* struct segment *, a reference each, not started */
	GArray *ends;              /* guint64 per queued segment: the position its sync covers */
	guint64 *synced_end;       /* the journal's: positions before it are on disk */
	gboolean busy;             /* one is being synced */
	gboolean stop;
	char *dir;
};

static void syncer_free(struct syncer *sy);
static void delete_segment(journal *j, struct segment *seg);

char *journal_segment_name(guint64 first)
{
	return g_strdup_printf(SEGMENT_PREFIX "%016" G_GINT64_MODIFIER "x", first);
}

static gboolean parse_segment_name(const char *name, guint64 *first)
{
	const char *hex = name + strlen(SEGMENT_PREFIX);

	if (strlen(hex) != 16)
		return FALSE;
	for (int i = 0; i < 16; i++)
		if (!g_ascii_isxdigit(hex[i]))
			return FALSE;
	*first = g_ascii_strtoull(hex, NULL, 16);
	return TRUE;
}

static void set_errno_error(GError **error, int e, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static void set_errno_error(GError **error, int e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	g_autofree char *what = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_set_error(error, CTFLOWD_ERROR, e, "%s: %s", what, g_strerror(e));
}

static gboolean pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	const guint8 *p = buf;

	while (len) {
		ssize_t w = pwrite(fd, p, len, off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			return FALSE;
		}
		p += w;
		len -= (size_t)w;
		off += w;
	}
	return TRUE;
}

/* Returns the bytes read: fewer than @len only at the end of the file. */
static gssize pread_full(int fd, void *buf, size_t len, off_t off)
{
	guint8 *p = buf;
	size_t got = 0;

	while (got < len) {
		ssize_t r = pread(fd, p + got, len - got, off + (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (gssize)got;
}

static gboolean must_sync(const journal *j)
{
	return j->sync != SPOOL_SYNC_NONE;
}

static void segment_ref(struct segment *seg)
{
	g_atomic_int_inc(&seg->refs);
}

static void segment_unref(struct segment *seg)
{
	if (!seg || !g_atomic_int_dec_and_test(&seg->refs))
		return;
	if (seg->fd >= 0)
		close(seg->fd);
	g_free(seg->name);
	g_free(seg);
}

static struct segment *segment_new(char *name, int fd, guint64 first)
{
	struct segment *seg = g_new0(struct segment, 1);

	seg->name = name;
	seg->fd = fd;
	seg->first = first;
	seg->refs = 1;
	return seg;
}

static void fill_segment_header(struct journal_segment_header *h, guint64 first)
{
	memset(h, 0, sizeof(*h));
	h->magic = JOURNAL_SEGMENT_MAGIC;
	h->version = JOURNAL_VERSION;
	h->record_size = sizeof(struct flow_record);
	h->first = first;
	h->crc = crc32c(0, h, sizeof(*h));
}

/* bytes of a full segment of this journal */
static guint64 segment_full_bytes(const journal *j)
{
	return JOURNAL_HEADER_SIZE + j->segment_records * JOURNAL_FRAME_SIZE;
}

/*
 * Allocates the blocks a segment will fill, beyond its size (which keeps
 * saying where the frames end).  Extending a file costs the kernel a block
 * reservation per page written; done once here, it takes a quarter off
 * each append.  Best effort: without it, writes just cost more.
 */
static void reserve_space(journal *j, int fd, guint64 from)
{
	guint64 full = segment_full_bytes(j);

	if (from < full)
		(void)fallocate(fd, FALLOC_FL_KEEP_SIZE, (off_t)from, (off_t)(full - from));
}

/* ---- setting damaged data aside ----------------------------------------- */

static int open_corrupt_dir(journal *j)
{
	if (mkdirat(j->dirfd, JOURNAL_CORRUPT_DIR, 0750) < 0 && errno != EEXIST)
		return -1;
	return openat(j->dirfd, JOURNAL_CORRUPT_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* A name in corrupt/ not taken yet: @base, else @base.1, @base.2, ... (the
 * same segment can go bad again after a later start). */
static char *free_corrupt_name(int cdir, const char *base)
{
	char *name = g_strdup(base);
	struct stat st;

	for (guint i = 1; fstatat(cdir, name, &st, AT_SYMLINK_NOFOLLOW) == 0; i++) {
		g_free(name);
		name = g_strdup_printf("%s.%u", base, i);
	}
	return name;
}

/* Moves a whole file to corrupt/; returns its new path relative to the
 * journal directory, or NULL (errno set). */
static char *set_aside_file(journal *j, const char *name)
{
	int cdir = open_corrupt_dir(j);

	if (cdir < 0)
		return NULL;
	g_autofree char *target = free_corrupt_name(cdir, name);
	int rc = renameat(j->dirfd, name, cdir, target);
	int e = errno;
	close(cdir);
	errno = e;
	return rc < 0 ? NULL : g_build_filename(JOURNAL_CORRUPT_DIR, target, NULL);
}

/* Copies [@from, @size) of a segment to corrupt/NAME.from-OFFSET; the
 * caller truncates only once the copy is safely written.  Blocks of zeros
 * are left as holes: a damaged tail can be a hole of any length, and the
 * copy must not take real disk space for it. */
static char *set_aside_tail(journal *j, int fd, const char *name, guint64 from, guint64 size)
{
	int cdir = open_corrupt_dir(j);
	int out = -1;
	char *rel = NULL;
	g_autofree guint8 *buf = NULL;

	if (cdir < 0)
		return NULL;
	g_autofree char *base = g_strdup_printf("%s.from-%" G_GUINT64_FORMAT, name, from);
	g_autofree char *target = free_corrupt_name(cdir, base);
	out = openat(cdir, target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (out < 0)
		goto done;
	buf = g_malloc(1 << 20);
	for (guint64 off = from; off < size;) {
		size_t want = (size_t)MIN(size - off, (guint64)(1 << 20));
		gssize got = pread_full(fd, buf, want, (off_t)off);
		if (got <= 0) {
			if (got == 0)
				errno = EIO;
			goto done;
		}
		gboolean zeros = buf[0] == 0 && memcmp(buf, buf + 1, (size_t)got - 1) == 0;
		if (!zeros && !pwrite_all(out, buf, (size_t)got, (off_t)(off - from)))
			goto done;
		off += (guint64)got;
	}
	/* the original bytes go once truncated: the copy must be on disk first */
	if (ftruncate(out, (off_t)(size - from)) < 0 || fsync(out) < 0)
		goto done;
	rel = g_build_filename(JOURNAL_CORRUPT_DIR, target, NULL);
done:;
	int e = errno;
	if (out >= 0)
		close(out);
	if (!rel && out >= 0)
		unlinkat(cdir, target, 0);
	close(cdir);
	errno = e;
	return rel;
}

static void reject_file(journal *j, const char *name, guint64 size, const char *why)
{
	g_autofree char *moved = set_aside_file(j, name);

	if (moved)
		g_warning("spool: %s/%s: %s; moved the file (%" G_GUINT64_FORMAT " bytes) to %s/%s",
			  j->dir, name, why, size, j->dir, moved);
	else
		g_warning("spool: %s/%s: %s; not used (cannot move it to %s/%s/: %s)", j->dir, name,
			  why, j->dir, JOURNAL_CORRUPT_DIR, g_strerror(errno));
}

/* ---- recovery --------------------------------------------------------------- */

static char *check_segment_header(const struct journal_segment_header *h, guint64 named_first)
{
	struct journal_segment_header copy = *h;

	if (h->magic != JOURNAL_SEGMENT_MAGIC)
		return g_strdup_printf("not a journal segment (magic 0x%08x)", h->magic);
	if (h->version != JOURNAL_VERSION)
		return g_strdup_printf("format version %u, this build reads version %u",
				       h->version, JOURNAL_VERSION);
	if (h->record_size != sizeof(struct flow_record))
		return g_strdup_printf("records of %u bytes, this build's are %zu bytes",
				       h->record_size, sizeof(struct flow_record));
	copy.crc = 0;
	if (crc32c(0, &copy, sizeof(copy)) != h->crc)
		return g_strdup("segment header fails its CRC");
	if (h->first > JOURNAL_MAX_FIRST)
		return g_strdup_printf("first position %" G_GUINT64_FORMAT " is past 2^62: "
				       "later positions would wrap", (guint64)h->first);
	if (h->first != named_first)
		return g_strdup_printf("header says first position %" G_GUINT64_FORMAT
				       ", the file name %" G_GUINT64_FORMAT,
				       (guint64)h->first, named_first);
	return NULL;
}

/* NULL if the frame at @f is good, carries @length bytes and holds position @want. */
static char *check_frame_of(const guint8 *f, guint32 length, guint64 want)
{
	struct journal_frame_header h;

	memcpy(&h, f, sizeof(h));
	if (h.magic != JOURNAL_FRAME_MAGIC)
		return g_strdup_printf("no frame (magic 0x%08x)", h.magic);
	if (h.length != length)
		return g_strdup_printf("frame of %u bytes, records have %u", h.length, length);
	guint32 stored = h.crc;
	h.crc = 0;
	guint32 crc = crc32c(0, &h, sizeof(h));
	crc = crc32c(crc, f + sizeof(h), length);
	if (crc != stored)
		return g_strdup_printf("frame fails its CRC (position %" G_GUINT64_FORMAT ")",
				       (guint64)h.position);
	if (h.position != want)
		return g_strdup_printf("frame holds position %" G_GUINT64_FORMAT ", expected %"
				       G_GUINT64_FORMAT, (guint64)h.position, want);
	return NULL;
}

static char *check_frame(const guint8 *f, guint64 want)
{
	return check_frame_of(f, sizeof(struct flow_record), want);
}

static void fill_frame(guint8 *out, const struct flow_record *record, guint64 position)
{
	struct journal_frame_header h = {
		.magic = JOURNAL_FRAME_MAGIC,
		.length = sizeof(struct flow_record),
		.position = position,
	};

	memcpy(out, &h, sizeof(h));
	memcpy(out + sizeof(h), record, sizeof(struct flow_record));
	guint32 crc = crc32c(0, out, JOURNAL_FRAME_SIZE);
	memcpy(out + offsetof(struct journal_frame_header, crc), &crc, sizeof(crc));
}

/*
 * A segment of format version 1 (records of 160 bytes, before interim
 * records and labels) is rewritten in this version's format before it is
 * recovered: each good record is copied, zero-extended, into a frame of its
 * own position, and from the first frame that fails its checks on, the
 * bytes are copied as they are, so that recovery sets them aside as it
 * would have.  The copy is synced and renamed over the original, so a crash
 * leaves one or the other whole.  FALSE with @error when it cannot be done:
 * the start fails rather than lose the records.
 */
static gboolean upgrade_segment(journal *j, const char *name, GError **error)
{
	struct journal_segment_header h, copy;
	g_autofree char *tmp = g_strconcat(name, UPGRADE_SUFFIX, NULL);
	const size_t old_frame = sizeof(struct journal_frame_header) + JOURNAL_V1_RECORD_SIZE;
	int in = openat(j->dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	int out = -1;
	gboolean ok = FALSE;
	guint64 records = 0, size, off = JOURNAL_HEADER_SIZE, woff = JOURNAL_HEADER_SIZE;
	g_autofree guint8 *buf = g_malloc(MAX(old_frame, (size_t)4096));
	guint8 frame[JOURNAL_FRAME_SIZE];
	struct journal_segment_header nh;
	struct stat st;

	if (in < 0)
		return TRUE;   /* recovery says what is wrong with it */
	if (fstat(in, &st) < 0 || pread_full(in, &h, sizeof(h), 0) != (gssize)sizeof(h))
		goto not_v1;
	copy = h;
	copy.crc = 0;
	if (h.magic != JOURNAL_SEGMENT_MAGIC || h.version != 1 ||
	    h.record_size != JOURNAL_V1_RECORD_SIZE || crc32c(0, &copy, sizeof(copy)) != h.crc ||
	    h.first > JOURNAL_MAX_FIRST)
		goto not_v1;

	unlinkat(j->dirfd, tmp, 0);
	out = openat(j->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (out < 0)
		goto fail;
	fill_segment_header(&nh, h.first);
	if (!pwrite_all(out, &nh, sizeof(nh), 0))
		goto fail;

	size = (guint64)st.st_size;
	while (off + old_frame <= size) {
		if (pread_full(in, buf, old_frame, (off_t)off) != (gssize)old_frame)
			goto fail;
		char *bad = check_frame_of(buf, JOURNAL_V1_RECORD_SIZE, h.first + records);
		g_free(bad);
		if (bad)
			break;
		struct flow_record r = {0};
		memcpy(&r, buf + sizeof(struct journal_frame_header), JOURNAL_V1_RECORD_SIZE);
		fill_frame(frame, &r, h.first + records);
		if (!pwrite_all(out, frame, sizeof(frame), (off_t)woff))
			goto fail;
		records++;
		off += old_frame;
		woff += sizeof(frame);
	}
	/* what follows the good records goes on unchanged, to be set aside */
	while (off < size) {
		gssize got = pread_full(in, buf, (size_t)MIN(size - off, (guint64)4096), (off_t)off);
		if (got <= 0 || !pwrite_all(out, buf, (size_t)got, (off_t)woff))
			goto fail;
		off += (guint64)got;
		woff += (guint64)got;
	}
	if (fsync(out) < 0 || renameat(j->dirfd, tmp, j->dirfd, name) < 0 || fsync(j->dirfd) < 0)
		goto fail;
	g_message("spool: %s/%s: %" G_GUINT64_FORMAT " records upgraded from journal format"
		  " version 1 to %u", j->dir, name, records, JOURNAL_VERSION);
	ok = TRUE;
	goto done;
fail:
	g_set_error(error, CTFLOWD_ERROR, errno,
		    "spool: cannot upgrade %s/%s from journal format version 1: %s (nothing was"
		    " changed; it needs %" G_GUINT64_FORMAT " bytes more on disk)",
		    j->dir, name, g_strerror(errno ? errno : EIO),
		    (guint64)st.st_size / old_frame * (JOURNAL_FRAME_SIZE - old_frame));
	unlinkat(j->dirfd, tmp, 0);
	goto done;
not_v1:
	ok = TRUE;
done:
	close(in);
	if (out >= 0)
		close(out);
	return ok;
}

/* Offset of the first frame that is not good, and why (NULL: all good). */
static guint64 scan_frames(int fd, guint64 first, guint64 size, char **why)
{
	g_autofree guint8 *buf = g_malloc(SCAN_FRAMES * JOURNAL_FRAME_SIZE);
	guint64 off = JOURNAL_HEADER_SIZE;
	guint64 pos = first;

	*why = NULL;
	while (off < size) {
		size_t want = (size_t)MIN(size - off, (guint64)SCAN_FRAMES * JOURNAL_FRAME_SIZE);
		gssize got = pread_full(fd, buf, want, (off_t)off);
		if (got < 0) {
			*why = g_strdup_printf("read error: %s", g_strerror(errno));
			return off;
		}
		size_t frames = (size_t)got / JOURNAL_FRAME_SIZE;
		for (size_t i = 0; i < frames; i++, pos++, off += JOURNAL_FRAME_SIZE) {
			if ((*why = check_frame(buf + i * JOURNAL_FRAME_SIZE, pos)))
				return off;
		}
		if ((size_t)got < want || (size_t)got % JOURNAL_FRAME_SIZE) {
			*why = g_strdup_printf("last frame cut short (%" G_GUINT64_FORMAT " of %"
					       G_GUINT64_FORMAT " bytes)",
					       size - off, JOURNAL_FRAME_SIZE);
			return off;
		}
	}
	return off;
}

/* Opens and checks one segment; NULL when the whole file was rejected. */
static struct segment *recover_segment(journal *j, const char *name, guint64 named_first,
				       guint64 prev_end, gboolean have_prev)
{
	struct journal_segment_header h;
	struct stat st;
	int fd = openat(j->dirfd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0 && errno == ELOOP) {
		/* not a segment of this journal's, and what it points to is
		 * never opened: the link itself goes to corrupt/ */
		reject_file(j, name, 0, "a symbolic link, not followed");
		return NULL;
	}
	if (fd < 0 || fstat(fd, &st) < 0) {
		g_warning("spool: %s/%s: cannot open: %s; not used", j->dir, name,
			  g_strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	guint64 size = (guint64)st.st_size;
	g_autofree char *why = NULL;
	if (size == 0)
		why = g_strdup("empty file");
	else if (size < JOURNAL_HEADER_SIZE ||
		 pread_full(fd, &h, sizeof(h), 0) != (gssize)sizeof(h))
		why = g_strdup_printf("%" G_GUINT64_FORMAT " bytes, shorter than a segment header",
				      size);
	else
		why = check_segment_header(&h, named_first);
	if (!why && have_prev && named_first < prev_end)
		why = g_strdup_printf("starts at position %" G_GUINT64_FORMAT
				      ", inside the previous segment (which ends at %"
				      G_GUINT64_FORMAT ")", named_first, prev_end);
	if (why) {
		close(fd);
		reject_file(j, name, size, why);
		return NULL;
	}

	struct segment *seg = segment_new(g_strdup(name), fd, named_first);
	g_autofree char *bad = NULL;
	guint64 good_end = scan_frames(fd, named_first, size, &bad);
	seg->count = (good_end - JOURNAL_HEADER_SIZE) / JOURNAL_FRAME_SIZE;
	if (good_end < size) {
		/* more than a whole segment is no records of this journal's
		 * (unless spool_max was lowered since), and copied in full, a
		 * hole of any size would become real bytes outside spool_max */
		guint64 kept = MIN(size - good_end, segment_full_bytes(j));
		g_autofree char *moved = set_aside_tail(j, fd, name, good_end, good_end + kept);
		g_autofree char *dropped = kept < size - good_end ?
			g_strdup_printf(" (the %" G_GUINT64_FORMAT " bytes past a segment's size"
					" of %" G_GUINT64_FORMAT " are dropped)",
					size - good_end - kept, segment_full_bytes(j)) :
			g_strdup("");
		if (moved && ftruncate(fd, (off_t)good_end) == 0 &&
		    (!must_sync(j) || fdatasync(fd) == 0)) {
			g_warning("spool: %s/%s: %s at offset %" G_GUINT64_FORMAT
				  "; moved the %" G_GUINT64_FORMAT " bytes from there to %s/%s%s"
				  " and kept the %" G_GUINT64_FORMAT " records before it",
				  j->dir, name, bad, good_end, kept, j->dir, moved, dropped,
				  seg->count);
		} else {
			/* appends must not follow bad bytes: the next ones go to a
			 * new segment, and the next start tries again */
			seg->sealed = TRUE;
			g_warning("spool: %s/%s: %s at offset %" G_GUINT64_FORMAT
				  "; cannot set the %" G_GUINT64_FORMAT " bytes from there aside (%s):"
				  " kept the %" G_GUINT64_FORMAT " records before it, no appends here",
				  j->dir, name, bad, good_end, size - good_end, g_strerror(errno),
				  seg->count);
		}
	}
	return seg;
}

static gint compare_positions(gconstpointer a, gconstpointer b)
{
	guint64 x = *(const guint64 *)a, y = *(const guint64 *)b;

	return x < y ? -1 : x > y;
}

static gboolean recover(journal *j, GError **error)
{
	g_autoptr(GError) dir_error = NULL;
	GDir *d = g_dir_open(j->dir, 0, &dir_error);
	g_autoptr(GArray) firsts = g_array_new(FALSE, FALSE, sizeof(guint64));
	const char *name;

	if (!d) {
		g_propagate_prefixed_error(error, g_steal_pointer(&dir_error), "spool: ");
		return FALSE;
	}
	while ((name = g_dir_read_name(d))) {
		guint64 first;
		if (!g_str_has_prefix(name, SEGMENT_PREFIX))
			continue;
		if (g_str_has_suffix(name, UPGRADE_SUFFIX)) {
			/* a copy a crash cut short: the original is still there */
			unlinkat(j->dirfd, name, 0);
			continue;
		}
		if (parse_segment_name(name, &first)) {
			g_array_append_val(firsts, first);
			continue;
		}
		struct stat st;
		guint64 size = fstatat(j->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 ?
			(guint64)st.st_size : 0;
		reject_file(j, name, size, "not a segment name (journal- and 16 hex digits)");
	}
	g_dir_close(d);
	g_array_sort(firsts, compare_positions);

	for (guint i = 0; i < firsts->len; i++) {
		guint64 first = g_array_index(firsts, guint64, i);
		g_autofree char *seg_name = journal_segment_name(first);
		if (!upgrade_segment(j, seg_name, error))
			return FALSE;
		struct segment *prev = j->segments->len ?
			g_ptr_array_index(j->segments, j->segments->len - 1) : NULL;
		guint64 prev_end = prev ? prev->first + prev->count : 0;
		struct segment *seg = recover_segment(j, seg_name, first, prev_end, prev != NULL);
		if (!seg)
			continue;
		/* a segment left with nothing in it holds no position either */
		if (prev && prev->count == 0 && !prev->sealed) {
			g_ptr_array_remove_index(j->segments, j->segments->len - 1);
			delete_segment(j, prev);
			prev = j->segments->len ?
				g_ptr_array_index(j->segments, j->segments->len - 1) : NULL;
			prev_end = prev ? prev->first + prev->count : 0;
		}
		if (prev && seg->first > prev_end)
			g_warning("spool: %s: records %" G_GUINT64_FORMAT " to %" G_GUINT64_FORMAT
				  " (%" G_GUINT64_FORMAT ") are missing between %s and %s",
				  j->dir, prev_end, seg->first - 1, seg->first - prev_end,
				  prev->name, seg->name);
		g_ptr_array_add(j->segments, seg);
	}
	if (j->segments->len) {
		struct segment *last = g_ptr_array_index(j->segments, j->segments->len - 1);
		j->end = last->first + last->count;
		j->synced_end = j->end;   /* an earlier process's: as synced as it left them */
		j->tail = last;
		if (journal_tail_room(j))
			reserve_space(j, last->fd,
				      JOURNAL_HEADER_SIZE + last->count * JOURNAL_FRAME_SIZE);
	}
	return TRUE;
}

static gboolean lock_directory(journal *j, GError **error)
{
	j->lockfd = openat(j->dirfd, LOCK_NAME, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (j->lockfd < 0) {
		set_errno_error(error, errno, "spool: cannot create %s/%s", j->dir, LOCK_NAME);
		return FALSE;
	}
	if (flock(j->lockfd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		if (e == EWOULDBLOCK)
			g_set_error(error, CTFLOWD_ERROR, e,
				    "spool: %s is in use by another process (it holds %s/%s)",
				    j->dir, j->dir, LOCK_NAME);
		else
			set_errno_error(error, e, "spool: cannot lock %s/%s", j->dir, LOCK_NAME);
		return FALSE;
	}
	return TRUE;
}

journal *journal_open(const char *dir, guint64 max_bytes, guint64 segment_bytes,
		      enum spool_sync sync, GError **error)
{
	journal *j = g_new0(journal, 1);

	j->dir = g_strdup(dir);
	j->dirfd = j->lockfd = -1;
	j->sync = sync;
	g_mutex_init(&j->lock);
	j->segments = g_ptr_array_new();
	if (!segment_bytes)
		segment_bytes = JOURNAL_DEFAULT_SEGMENT_BYTES;
	/* two segments at least, so the one being filled is never the one dropped */
	segment_bytes = MIN(segment_bytes, max_bytes / 2);
	segment_bytes = MAX(segment_bytes, JOURNAL_HEADER_SIZE + JOURNAL_FRAME_SIZE);
	j->segment_records = (segment_bytes - JOURNAL_HEADER_SIZE) / JOURNAL_FRAME_SIZE;
	j->max_segments = (guint)MIN(MAX(max_bytes / segment_bytes, 2), G_MAXUINT);

	j->dirfd = state_dir_open(dir, TRUE, error);
	if (j->dirfd < 0) {
		g_prefix_error(error, "spool: ");
		goto fail;
	}
	if (!lock_directory(j, error) || !recover(j, error))
		goto fail;
	/* a first segment now: an unwritable directory stops the start, and
	 * the end position is on disk even before the first record */
	if (!j->tail && !journal_add_segment(j, j->end, error))
		goto fail;
	return j;
fail:
	journal_free(j);
	return NULL;
}

void journal_free(journal *j)
{
	if (!j)
		return;
	syncer_free(j->syncer);
	for (guint i = 0; i < j->segments->len; i++)
		segment_unref(g_ptr_array_index(j->segments, i));
	g_ptr_array_free(j->segments, TRUE);
	g_mutex_clear(&j->lock);
	if (j->lockfd >= 0)
		close(j->lockfd);
	if (j->dirfd >= 0)
		close(j->dirfd);
	g_free(j->buf);
	g_free(j->dir);
	g_free(j);
}

const char *journal_dir(const journal *j)
{
	return j->dir;
}

int journal_dir_fd(const journal *j)
{
	return j->dirfd;
}

guint64 journal_end(const journal *j)
{
	return j->end;
}


/* ---- the segment list (lock held unless said otherwise) --------------------- */

/* Index of the first segment ending after @pos (segments are few: a linear
 * search costs less than keeping anything smarter up to date). */
static guint first_ending_after(journal *j, guint64 pos)
{
	guint i = 0;

	while (i < j->segments->len) {
		struct segment *seg = g_ptr_array_index(j->segments, i);
		guint64 count = segment_count(seg);
		/* an empty segment holds no position, not even its first */
		if (count && seg->first + count > pos)
			break;
		i++;
	}
	return i;
}

guint64 journal_next_held(journal *j, guint64 pos)
{
	guint64 held = G_MAXUINT64;

	g_mutex_lock(&j->lock);
	guint i = first_ending_after(j, pos);
	if (i < j->segments->len) {
		struct segment *seg = g_ptr_array_index(j->segments, i);
		held = MAX(pos, seg->first);
	}
	g_mutex_unlock(&j->lock);
	return held;
}

guint64 journal_next_unheld(journal *j, guint64 pos)
{
	g_mutex_lock(&j->lock);
	for (guint i = first_ending_after(j, pos); i < j->segments->len; i++) {
		struct segment *seg = g_ptr_array_index(j->segments, i);
		guint64 count = segment_count(seg);
		if (seg->first > pos)
			break;
		if (count)
			pos = MAX(pos, seg->first + count);
	}
	g_mutex_unlock(&j->lock);
	return pos;
}

guint64 journal_held_between(journal *j, guint64 from, guint64 to)
{
	guint64 held = 0;

	g_mutex_lock(&j->lock);
	for (guint i = first_ending_after(j, from); i < j->segments->len; i++) {
		struct segment *seg = g_ptr_array_index(j->segments, i);
		guint64 a = MAX(from, seg->first), b = MIN(to, seg->first + segment_count(seg));
		if (seg->first >= to)
			break;
		if (b > a)
			held += b - a;
	}
	g_mutex_unlock(&j->lock);
	return held;
}

/* The appender's, without the lock: only it sets the tail and its count. */
guint64 journal_tail_room(journal *j)
{
	struct segment *t = j->tail;

	if (!t || t->sealed || t->count >= j->segment_records)
		return 0;
	return j->segment_records - t->count;
}

void journal_publish(journal *j, guint64 n)
{
	segment_publish(j->tail, n);
}

static struct segment *detach_at(journal *j, guint index)
{
	struct segment *seg = g_ptr_array_remove_index(j->segments, index);

	if (seg == j->tail)
		j->tail = NULL;
	return seg;
}

void journal_detach_before(journal *j, guint64 pos, GPtrArray *detached)
{
	g_mutex_lock(&j->lock);
	while (j->segments->len > 1) {
		struct segment *seg = g_ptr_array_index(j->segments, 0);
		if (seg->first + segment_count(seg) > pos)
			break;
		g_ptr_array_add(detached, detach_at(j, 0));
	}
	g_mutex_unlock(&j->lock);
}

gboolean journal_at_bound(journal *j)
{
	g_mutex_lock(&j->lock);
	gboolean full = j->segments->len >= j->max_segments;
	g_mutex_unlock(&j->lock);
	return full;
}

const char *journal_detach_oldest(journal *j, GPtrArray *detached, guint64 *first,
				  guint64 *end)
{
	g_mutex_lock(&j->lock);
	struct segment *seg = j->segments->len ? detach_at(j, 0) : NULL;
	g_mutex_unlock(&j->lock);
	if (!seg) {
		*first = *end = 0;
		return NULL;
	}
	g_ptr_array_add(detached, seg);
	*first = seg->first;
	*end = seg->first + segment_count(seg);
	return seg->name;
}

/* Deletes the file of a segment off the list and drops the list's reference
 * (without the lock: the segment is no one else's to find). */
static void delete_segment(journal *j, struct segment *seg)
{
	if (unlinkat(j->dirfd, seg->name, 0) < 0 && errno != ENOENT)
		g_warning("spool: cannot delete %s/%s: %s", j->dir, seg->name, g_strerror(errno));
	segment_unref(seg);
}

void journal_discard(journal *j, GPtrArray *detached)
{
	for (guint i = 0; i < detached->len; i++)
		delete_segment(j, g_ptr_array_index(detached, i));
	g_ptr_array_free(detached, TRUE);
}

/* ---- appending ------------------------------------------------------------ */

static struct segment *create_segment(journal *j, guint64 first, GError **error)
{
	struct journal_segment_header h;
	g_autofree char *name = journal_segment_name(first);
	int fd = openat(j->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);

	if (fd < 0) {
		set_errno_error(error, errno, "spool: cannot create %s/%s", j->dir, name);
		return NULL;
	}
	fill_segment_header(&h, first);
	if (!pwrite_all(fd, &h, sizeof(h), 0) ||
	    (must_sync(j) && (fdatasync(fd) < 0 || fsync(j->dirfd) < 0))) {
		set_errno_error(error, errno, "spool: cannot write %s/%s", j->dir, name);
		close(fd);
		unlinkat(j->dirfd, name, 0);
		return NULL;
	}
	reserve_space(j, fd, JOURNAL_HEADER_SIZE);
	return segment_new(g_steal_pointer(&name), fd, first);
}

gboolean journal_add_segment(journal *j, guint64 first, GError **error)
{
	struct segment *seg = create_segment(j, first, error);

	if (!seg)
		return FALSE;
	/* what the old tail got since the last commit is synced with it */
	journal_commit(j, g_get_monotonic_time());
	if (j->tail)
		j->tail->sealed = TRUE;
	g_mutex_lock(&j->lock);
	g_ptr_array_add(j->segments, seg);
	j->tail = seg;
	g_mutex_unlock(&j->lock);
	return TRUE;
}

static void build_frames(guint8 *out, guint64 pos, const struct flow_record *records, size_t n)
{
	for (size_t i = 0; i < n; i++, out += JOURNAL_FRAME_SIZE)
		fill_frame(out, &records[i], pos + i);
}

/* Moves *@synced up to @end (never back), from any thread. */
static void advance_synced(guint64 *synced, guint64 end)
{
	guint64 cur = __atomic_load_n(synced, __ATOMIC_ACQUIRE);

	while (cur < end &&
	       !__atomic_compare_exchange_n(synced, &cur, end, FALSE, __ATOMIC_RELEASE,
					    __ATOMIC_ACQUIRE))
		;
}

static gpointer syncer_thread(gpointer data)
{
	struct syncer *sy = data;

	g_mutex_lock(&sy->lock);
	for (;;) {
		while (!sy->queue->len && !sy->stop)
			g_cond_wait(&sy->cond, &sy->lock);
		if (!sy->queue->len)
			break;
		struct segment *seg = g_ptr_array_steal_index(sy->queue, 0);
		guint64 end = g_array_index(sy->ends, guint64, 0);
		g_array_remove_index(sy->ends, 0);
		sy->busy = TRUE;
		g_mutex_unlock(&sy->lock);
		gboolean synced = fdatasync(seg->fd) == 0;
		if (!synced)
			g_warning("spool: cannot sync %s/%s: %s (the records are written; a power "
				  "loss may take them)",
				  sy->dir, seg->name, g_strerror(errno));
		segment_unref(seg);
		g_mutex_lock(&sy->lock);
		if (synced)
			advance_synced(sy->synced_end, end);
		sy->busy = FALSE;
		g_cond_broadcast(&sy->cond);
	}
	g_mutex_unlock(&sy->lock);
	return NULL;
}

/* Waits until every segment handed on is synced. */
static void syncer_wait(struct syncer *sy)
{
	g_mutex_lock(&sy->lock);
	while (sy->queue->len || sy->busy)
		g_cond_wait(&sy->cond, &sy->lock);
	g_mutex_unlock(&sy->lock);
}

static void syncer_free(struct syncer *sy)
{
	if (!sy)
		return;
	g_mutex_lock(&sy->lock);
	sy->stop = TRUE;
	g_cond_broadcast(&sy->cond);
	g_mutex_unlock(&sy->lock);
	g_thread_join(sy->thread);
	g_ptr_array_free(sy->queue, TRUE);
	g_array_free(sy->ends, TRUE);
	g_mutex_clear(&sy->lock);
	g_cond_clear(&sy->cond);
	g_free(sy->dir);
	g_free(sy);
}

void journal_commit(journal *j, gint64 now_us)
{
	if (!j->dirty || !j->tail)
		return;
	if (!j->syncer) {
		struct syncer *sy = g_new0(struct syncer, 1);
		g_mutex_init(&sy->lock);
		g_cond_init(&sy->cond);
		sy->queue = g_ptr_array_new();
		sy->ends = g_array_new(FALSE, FALSE, sizeof(guint64));
		sy->synced_end = &j->synced_end;
		sy->dir = g_strdup(j->dir);
		sy->thread = g_thread_new("journal-sync", syncer_thread, sy);
		j->syncer = sy;
	}
	struct syncer *sy = j->syncer;
	guint64 end = j->tail->first + segment_count(j->tail);
	g_mutex_lock(&sy->lock);
	/* a request not yet started covers what was written since it was made */
	gboolean queued = FALSE;
	for (guint i = 0; i < sy->queue->len; i++) {
		if (g_ptr_array_index(sy->queue, i) == j->tail) {
			g_array_index(sy->ends, guint64, i) = end;
			queued = TRUE;
		}
	}
	if (!queued) {
		segment_ref(j->tail);
		g_ptr_array_add(sy->queue, j->tail);
		g_array_append_val(sy->ends, end);
		g_cond_signal(&sy->cond);
	}
	g_mutex_unlock(&sy->lock);
	j->dirty = FALSE;
	j->committed_us = now_us;
}

gboolean journal_wait_synced(journal *j, guint64 end, gint64 deadline_us)
{
	if (j->sync != SPOOL_SYNC_BATCH)
		return TRUE;
	/* a group commit is at most JOURNAL_GROUP_COMMIT_US away: a short
	 * poll is all the waiting there is */
	while (__atomic_load_n(&j->synced_end, __ATOMIC_ACQUIRE) < end) {
		if (g_get_monotonic_time() >= deadline_us)
			return FALSE;
		g_usleep(5 * 1000);
	}
	return TRUE;
}

gboolean journal_sync(journal *j, GError **error)
{
	if (j->syncer)
		syncer_wait(j->syncer);
	if (!j->dirty || !j->tail)
		return TRUE;
	if (fdatasync(j->tail->fd) < 0) {
		set_errno_error(error, errno, "spool: cannot sync %s/%s", j->dir, j->tail->name);
		return FALSE;
	}
	advance_synced(&j->synced_end, j->tail->first + segment_count(j->tail));
	j->dirty = FALSE;
	j->committed_us = g_get_monotonic_time();
	return TRUE;
}

gint64 journal_sync_due_us(const journal *j, gint64 now_us)
{
	if (!j->dirty)
		return -1;
	return MAX(j->committed_us + JOURNAL_GROUP_COMMIT_US - now_us, 0);
}

gboolean journal_write(journal *j, guint64 pos, const struct flow_record *records, size_t n,
		       GError **error)
{
	struct segment *t = j->tail;
	const off_t start = t ? (off_t)(JOURNAL_HEADER_SIZE + t->count * JOURNAL_FRAME_SIZE) : 0;
	off_t off = start;

	if (n > journal_tail_room(j)) {
		g_set_error(error, CTFLOWD_ERROR, ENOSPC, "spool: %" G_GSIZE_FORMAT " records do not fit"
			    " in %s/%s", n, j->dir, t ? t->name : "(no segment)");
		return FALSE;
	}
	if (!j->buf)
		j->buf = g_malloc(WRITE_FRAMES * JOURNAL_FRAME_SIZE);
	for (size_t done = 0; done < n;) {
		size_t take = MIN(n - done, (size_t)WRITE_FRAMES);
		size_t bytes = take * JOURNAL_FRAME_SIZE;
		build_frames(j->buf, pos + done, records + done, take);
		/* SPOOL_SYNC_RECORD: the records of one call are synced before
		 * it returns, and the caller takes no more events off the socket
		 * before that (ct_source's hand_on_each_read) */
		if (!pwrite_all(t->fd, j->buf, bytes, off) ||
		    (j->sync == SPOOL_SYNC_RECORD && fdatasync(t->fd) < 0))
			goto fail;
		off += (off_t)bytes;
		done += take;
	}
	/* the group commit is the appender's, through spool_sync_pending() */
	if (j->sync == SPOOL_SYNC_BATCH)
		j->dirty = TRUE;
	return TRUE;
fail:;
	int e = errno;
	set_errno_error(error, e, "spool: cannot write %s/%s at offset %lld", j->dir, t->name,
			(long long)start);
	/* a torn frame at the end would hide every frame after it */
	if (ftruncate(t->fd, start) < 0)
		g_warning("spool: cannot cut %s/%s back to %lld bytes: %s", j->dir, t->name,
			  (long long)start, g_strerror(errno));
	t->sealed = TRUE;
	/* a segment that never got a record is no use to anyone */
	if (!t->count) {
		g_mutex_lock(&j->lock);
		g_ptr_array_remove(j->segments, t);
		j->tail = NULL;
		g_mutex_unlock(&j->lock);
		delete_segment(j, t);
	}
	return FALSE;
}

/* ---- reading ---------------------------------------------------------------- */

static size_t read_frames(journal *j, struct segment *seg, guint64 pos, struct flow_record *out,
			  size_t n, GError **error)
{
	g_autofree guint8 *buf = g_malloc(n * JOURNAL_FRAME_SIZE);
	guint64 off = JOURNAL_HEADER_SIZE + (pos - seg->first) * JOURNAL_FRAME_SIZE;
	gssize got = pread_full(seg->fd, buf, n * JOURNAL_FRAME_SIZE, (off_t)off);

	if (got < 0) {
		set_errno_error(error, errno, "%s/%s: cannot read at offset %" G_GUINT64_FORMAT,
				j->dir, seg->name, off);
		return 0;
	}
	size_t frames = (size_t)got / JOURNAL_FRAME_SIZE;
	for (size_t i = 0; i < frames; i++) {
		const guint8 *f = buf + i * JOURNAL_FRAME_SIZE;
		g_autofree char *why = check_frame(f, pos + i);
		if (why) {
			g_set_error(error, CTFLOWD_ERROR, EIO, "%s/%s: %s at offset %" G_GUINT64_FORMAT,
				    j->dir, seg->name, why, off + i * JOURNAL_FRAME_SIZE);
			return i;
		}
		memcpy(&out[i], f + sizeof(struct journal_frame_header), sizeof(*out));
	}
	if (frames < n)
		g_set_error(error, CTFLOWD_ERROR, EIO,
			    "%s/%s: ends at offset %" G_GUINT64_FORMAT " (%" G_GSSIZE_FORMAT
			    " bytes), before position %" G_GUINT64_FORMAT,
			    j->dir, seg->name, off + (guint64)got, got, pos + frames);
	return frames;
}

/* The segment holding @pos, referenced, and how many positions from @pos on
 * it holds; NULL if none. */
static struct segment *ref_segment_at(journal *j, guint64 pos, guint64 *held)
{
	struct segment *seg = NULL;

	g_mutex_lock(&j->lock);
	guint i = first_ending_after(j, pos);
	if (i < j->segments->len) {
		seg = g_ptr_array_index(j->segments, i);
		if (pos >= seg->first) {
			*held = seg->first + segment_count(seg) - pos;
			segment_ref(seg);
		} else {
			seg = NULL;
		}
	}
	g_mutex_unlock(&j->lock);
	return seg;
}

size_t journal_read(journal *j, guint64 pos, struct flow_record *out, size_t n,
		    GError **error)
{
	guint64 held = 0;
	struct segment *seg = ref_segment_at(j, pos, &held);

	if (!seg)
		return 0;
	n = (size_t)MIN((guint64)MIN(n, (size_t)READ_FRAMES), held);
	size_t got = read_frames(j, seg, pos, out, n, error);
	segment_unref(seg);
	return got;
}
