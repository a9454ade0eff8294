/*
 * fuzz_journal.c - recovery of a state directory's journal and cursor.
 *
 * The input becomes a segment file (and optionally a reader's cursor file)
 * in an empty spool directory, which spool_open() recovers.  Flag bits in
 * the first byte make the target structure-aware: it can recompute every
 * CRC, so that mutations reach the checks behind them instead of stopping
 * at the first checksum.  Whatever the files held, what recovery keeps must
 * be readable, and a record appended afterwards must be there after the
 * next start.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctflowd/spool.h"
#include "fuzz.h"
#include "src/spool/crc32c.h"
#include "src/spool/cursor.h"
#include "src/spool/journal.h"

#define FLAG_FIX_CRCS 0x01      /* recompute header and frame CRCs */
#define FLAG_CURSOR 0x02        /* a cursor file follows the flag byte */
#define FLAG_NAME_FROM_HEADER 0x04  /* name the segment after its header's first */
#define SPOOL_BYTES (1u << 20)
#define MARK 0x5a5a5a5a5a5a5a5aull

static char *dir;

static void quiet(const gchar *domain, GLogLevelFlags level, const gchar *message, gpointer data)
{
}

static void write_file(const char *name, const uint8_t *data, size_t len)
{
	g_autofree char *path = g_build_filename(dir, name, NULL);
	FILE *f = fopen(path, "wb");

	if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0)
		abort();
}

static void remove_tree(const char *path)
{
	g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
	const char *name;

	while (d && (name = g_dir_read_name(d))) {
		g_autofree char *child = g_build_filename(path, name, NULL);
		if (g_file_test(child, G_FILE_TEST_IS_DIR) &&
		    !g_file_test(child, G_FILE_TEST_IS_SYMLINK)) {
			remove_tree(child);
			rmdir(child);
		} else {
			unlink(child);
		}
	}
}

static void fix_crcs(uint8_t *seg, size_t len)
{
	if (len < JOURNAL_HEADER_SIZE)
		return;
	struct journal_segment_header h;
	memcpy(&h, seg, sizeof(h));
	h.crc = 0;
	h.crc = crc32c(0, &h, sizeof(h));
	memcpy(seg, &h, sizeof(h));
	for (size_t off = JOURNAL_HEADER_SIZE; off + JOURNAL_FRAME_SIZE <= len;
	     off += JOURNAL_FRAME_SIZE) {
		struct journal_frame_header f;
		memcpy(&f, seg + off, sizeof(f));
		f.crc = 0;
		memcpy(seg + off, &f, sizeof(f));
		guint32 crc = crc32c(0, seg + off, JOURNAL_FRAME_SIZE);
		memcpy(seg + off + offsetof(struct journal_frame_header, crc), &crc, sizeof(crc));
	}
}

static void fix_cursor_crc(uint8_t *rec, size_t len)
{
	struct cursor_record c;

	if (len != sizeof(c))
		return;
	memcpy(&c, rec, sizeof(c));
	c.crc = 0;
	c.crc = crc32c(0, &c, sizeof(c));
	memcpy(rec, &c, sizeof(c));
}

static void remember_last(const struct flow_record *r, void *user)
{
	*(struct flow_record *)user = *r;
}

/* The scratch directory goes when the run ends: libFuzzer and the replayer
 * both leave through exit(). */
static void remove_dir(void)
{
	remove_tree(dir);
	rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!dir) {
		g_log_set_default_handler(quiet, NULL);
		dir = g_dir_make_tmp("ctflowd-fuzz-XXXXXX", NULL);
		if (!dir || atexit(remove_dir) != 0)
			abort();
	}
	if (size < 1)
		return 0;
	guint8 flags = data[0];
	data++, size--;

	if (flags & FLAG_CURSOR) {
		if (size < 1)
			return 0;
		size_t clen = MIN((size_t)data[0], size - 1);
		g_autofree uint8_t *c = g_memdup2(data + 1, clen);
		if (flags & FLAG_FIX_CRCS)
			fix_cursor_crc(c, clen);
		write_file("cursor-fuzz", c, clen);
		data += 1 + clen, size -= 1 + clen;
	}
	g_autofree uint8_t *seg = g_memdup2(data, size);
	guint64 first = 0;
	if ((flags & FLAG_NAME_FROM_HEADER) && size >= JOURNAL_HEADER_SIZE)
		memcpy(&first, seg + offsetof(struct journal_segment_header, first), sizeof(first));
	if (flags & FLAG_FIX_CRCS)
		fix_crcs(seg, size);
	g_autofree char *name = journal_segment_name(first);
	write_file(name, seg, size);

	/* recovery: whatever it keeps must read back */
	GError *error = NULL;
	spool *s = spool_open(dir, SPOOL_BYTES, SPOOL_SYNC_NONE, &error);
	if (!s) {
		/* only a directory that cannot be used at all may fail */
		fprintf(stderr, "spool_open refused: %s\n", error->message);
		abort();
	}
	guint r = spool_add_reader_named(s, "fuzz");
	guint64 pos = spool_confirmed(s, r), end = spool_end(s);
	struct flow_record out[64];
	size_t n;
	while (pos < end && (n = spool_read(s, r, &pos, out, G_N_ELEMENTS(out), 0)) > 0) {
		if (pos > end)
			abort();
	}
	struct flow_record mark = { .flow_id = MARK, .bytes = end };
	spool_append(s, &mark, 1);
	spool_free(s);

	/* the next start finds the appended record as the newest one */
	s = spool_open(dir, SPOOL_BYTES, SPOOL_SYNC_NONE, &error);
	if (!s)
		abort();
	struct flow_record last = {0};
	spool_recent(s, 1, remember_last, &last);
	if (memcmp(&last, &mark, sizeof(mark)) != 0)
		abort();
	spool_free(s);

	remove_tree(dir);
	return 0;
}
