/*
 * test_journal.c - the durable spool: journal segments, cursors, recovery.
 *
 * As in test_spool.c, every record carries its own position (flow_id) and
 * values derived from it, so a record read back from the wrong place, twice
 * or not at all is caught.  Segments are made small (a few hundred or
 * thousand records) through spool_open_tuned(), so that a few thousand
 * records cross segment, cache and size bounds.  Damage is done to the files
 * by hand, the way a power loss or a bad disk would leave them.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctflowd/error.h"
#include "ctflowd/spool.h"
#include "src/spool/crc32c.h"
#include "spool_load.h"
#include "test_files.h"
#include "src/spool/cursor.h"
#include "src/spool/journal.h"
#include "src/spool/spool_tuning.h"

#define CHUNK 4096u          /* records in a cache chunk; the cache holds two at least */
#define ROOMY (1ull << 30)

/* ---- records ------------------------------------------------------------------ */

/* Appends positions @first..@first+@n-1 in batches of @batch. */
static void append_range(spool *s, guint64 first, size_t n, size_t batch)
{
	g_autofree struct flow_record *recs = g_new(struct flow_record, batch);

	for (size_t done = 0; done < n;) {
		size_t take = MIN(batch, n - done);
		load_fill(recs, first + done, take);
		spool_append(s, recs, take);
		done += take;
	}
}

/* Reads from *@pos until nothing is left and returns the positions read,
 * checking every record against its position. */
static GArray *read_rest(spool *s, guint reader, guint64 *pos, size_t max)
{
	GArray *got = g_array_new(FALSE, FALSE, sizeof(guint64));
	g_autofree struct flow_record *out = g_new(struct flow_record, max);

	for (;;) {
		guint64 before = *pos;
		size_t n = spool_read(s, reader, pos, out, max, 0);
		if (!n)
			break;
		for (size_t i = 0; i < n; i++) {
			if (!load_record_is(&out[i], out[i].flow_id))
				g_error("record %" G_GUINT64_FORMAT " damaged", out[i].flow_id);
			g_array_append_val(got, out[i].flow_id);
		}
		g_assert_cmpuint(*pos, ==, out[n - 1].flow_id + 1);
		g_assert_cmpuint(out[0].flow_id, >=, before);
	}
	return got;
}

/* Asserts @got is exactly the positions of the ranges [a0, b0), [a1, b1), ... */
static void assert_ranges(GArray *got, const guint64 *ranges, size_t nranges)
{
	guint k = 0;

	for (size_t i = 0; i < nranges; i++) {
		for (guint64 p = ranges[2 * i]; p < ranges[2 * i + 1]; p++, k++) {
			if (k >= got->len)
				g_error("read ended before position %" G_GUINT64_FORMAT, p);
			if (g_array_index(got, guint64, k) != p)
				g_error("read %" G_GUINT64_FORMAT " where %" G_GUINT64_FORMAT " belongs",
					g_array_index(got, guint64, k), p);
		}
	}
	g_assert_cmpuint(got->len, ==, k);
}

static void assert_reads(spool *s, guint reader, guint64 from, const guint64 *ranges,
			 size_t nranges)
{
	guint64 pos = from;
	g_autoptr(GArray) got = read_rest(s, reader, &pos, 333);

	assert_ranges(got, ranges, nranges);
}

/* ---- the directory -------------------------------------------------------------- */

static guint64 segment_bytes_for(guint64 records)
{
	return JOURNAL_HEADER_SIZE + records * JOURNAL_FRAME_SIZE;
}

/* Segments of @seg_records, at most @max_segments of them, the smallest cache. */
static spool *open_small(const char *dir, guint64 seg_records, guint64 max_segments,
			 enum spool_sync sync)
{
	struct spool_tuning t = {.segment_bytes = segment_bytes_for(seg_records), .cache_bytes = 1};
	g_autoptr(GError) error = NULL;
	spool *s = spool_open_tuned(dir, t.segment_bytes * max_segments, sync, &t, &error);

	g_assert_no_error(error);
	g_assert_nonnull(s);
	return s;
}

static char *segment_path(const char *dir, guint64 first)
{
	g_autofree char *name = journal_segment_name(first);

	return path_in(dir, name);
}

static gboolean exists(const char *dir, const char *name)
{
	g_autofree char *p = path_in(dir, name);

	return g_file_test(p, G_FILE_TEST_EXISTS);
}

static guint count_files(const char *dir, const char *prefix)
{
	GDir *d = g_dir_open(dir, 0, NULL);
	const char *name;
	guint n = 0;

	if (!d)
		return 0;
	while ((name = g_dir_read_name(d)))
		n += g_str_has_prefix(name, prefix);
	g_dir_close(d);
	return n;
}

/* The size of the one file in dir/corrupt/ whose name starts with @prefix. */
static guint64 set_aside_size(const char *dir, const char *prefix)
{
	g_autofree char *cdir = path_in(dir, JOURNAL_CORRUPT_DIR);
	GDir *d = g_dir_open(cdir, 0, NULL);
	const char *name;
	guint64 size = G_MAXUINT64;

	g_assert_nonnull(d);
	while ((name = g_dir_read_name(d))) {
		if (g_str_has_prefix(name, prefix)) {
			g_assert_cmpuint(size, ==, G_MAXUINT64);
			g_autofree char *p = path_in(cdir, name);
			size = file_size(p);
		}
	}
	g_dir_close(d);
	g_assert_cmpuint(size, !=, G_MAXUINT64);
	return size;
}

/* Offset of the frame holding @pos in the segment starting at @first. */
static guint64 frame_offset(guint64 first, guint64 pos)
{
	return JOURNAL_HEADER_SIZE + (pos - first) * JOURNAL_FRAME_SIZE;
}

/* A journal of @n records in segments of @seg_records, and reader "a"
 * that confirmed @confirmed of them; closed again. */
static void make_journal(const char *dir, guint64 seg_records, guint64 n, guint64 confirmed)
{
	spool *s = open_small(dir, seg_records, 1000, SPOOL_SYNC_NONE);
	guint a = spool_add_reader_named(s, "a");

	append_range(s, 0, n, 37);
	spool_confirm(s, a, confirmed);
	spool_free(s);
}

/* ---- tests ---------------------------------------------------------------------- */

static void test_crc32c(void)
{
	guint8 buf[1000];

	g_assert_cmphex(crc32c(0, "123456789", 9), ==, 0xe3069283);
	g_assert_cmphex(crc32c_portable(0, "123456789", 9), ==, 0xe3069283);
	g_assert_cmphex(crc32c(0, "", 0), ==, 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (guint8)g_test_rand_int();
	/* every length and alignment the frame code can meet, and pieces */
	for (size_t off = 0; off < 9; off++) {
		for (size_t len = 0; len + off <= 300; len++) {
			guint32 whole = crc32c(0, buf + off, len);
			g_assert_cmphex(whole, ==, crc32c_portable(0, buf + off, len));
			guint32 split = crc32c(crc32c(0, buf + off, len / 3), buf + off + len / 3,
					       len - len / 3);
			g_assert_cmphex(whole, ==, split);
		}
	}
}

static void test_cursor_file_name(void)
{
	g_autofree char *plain = cursor_file_name("collector-1.eu_west");
	g_autofree char *path = cursor_file_name("../a b/c");
	g_autofree char *empty = cursor_file_name("");

	g_assert_cmpstr(plain, ==, "cursor-collector-1.eu_west");
	g_assert_cmpstr(path, ==, "cursor-%2E.%2Fa%20b%2Fc");
	g_assert_cmpstr(empty, ==, "cursor-");
}

/* Records and positions survive a clean close. */
static void test_reopen(void)
{
	g_autofree char *dir = make_dir();
	spool *s = open_small(dir, 1000, 1000, SPOOL_SYNC_NONE);
	guint a = spool_add_reader_named(s, "a");

	g_assert_cmpuint(spool_end(s), ==, 0);
	g_assert_cmpuint(spool_confirmed(s, a), ==, 0);
	append_range(s, 0, 5500, 64);
	g_assert_cmpuint(spool_end(s), ==, 5500);
	spool_free(s);
	g_assert_cmpuint(count_files(dir, "journal-"), ==, 6);
	g_assert_true(exists(dir, "cursor-a"));

	s = open_small(dir, 1000, 1000, SPOOL_SYNC_NONE);
	a = spool_add_reader_named(s, "a");
	g_assert_cmpuint(spool_end(s), ==, 5500);
	g_assert_cmpuint(spool_confirmed(s, a), ==, 0);
	const guint64 all[] = {0, 5500};
	assert_reads(s, a, 0, all, 1);

	/* appends go on from the end, in the segment that had room */
	append_range(s, 5500, 700, 64);
	g_assert_cmpuint(count_files(dir, "journal-"), ==, 7);
	const guint64 more[] = {5000, 6200};
	assert_reads(s, a, 5000, more, 1);
	spool_free(s);
	remove_tree(dir);
}

/* A process that dies without any cleanup: every record it appended is
 * there for the next one. */
static void test_crash(void)
{
	g_autofree char *dir = make_dir();
	const guint64 total = 25000;

	pid_t child = fork();
	g_assert_cmpint(child, >=, 0);
	if (child == 0) {
		spool *s = open_small(dir, 3000, 1000, SPOOL_SYNC_NONE);
		guint a = spool_add_reader_named(s, "a");
		append_range(s, 0, total, 1024);
		spool_confirm(s, a, 777);
		_exit(spool_end(s) == total ? 0 : 1);
	}
	int status;
	g_assert_cmpint(waitpid(child, &status, 0), ==, child);
	g_assert_true(WIFEXITED(status));
	g_assert_cmpint(WEXITSTATUS(status), ==, 0);

	spool *s = open_small(dir, 3000, 1000, SPOOL_SYNC_NONE);
	guint a = spool_add_reader_named(s, "a");
	g_assert_cmpuint(spool_end(s), ==, total);
	g_assert_cmpuint(spool_confirmed(s, a), ==, 777);
	const guint64 all[] = {0, total};
	assert_reads(s, a, 0, all, 1);
	g_assert_cmpuint(spool_lost(s, a), ==, 0);
	spool_free(s);
	remove_tree(dir);
}

/* Each named reader resumes at its own confirmed position; records after it
 * come again.  A name not seen before starts at the end. */
static void test_named_readers(void)
{
	g_autofree char *dir = make_dir();
	spool *s = open_small(dir, 1000, 1000, SPOOL_SYNC_NONE);
	guint a = spool_add_reader_named(s, "a");
	guint b = spool_add_reader_named(s, "b");
	guint anon = spool_add_reader(s);

	append_range(s, 0, 5000, 100);
	guint64 pa = 0, pb = 0;
	g_autoptr(GArray) ra = read_rest(s, a, &pa, 500);
	g_autoptr(GArray) rb = read_rest(s, b, &pb, 500);
	g_assert_cmpuint(ra->len, ==, 5000);
	g_assert_cmpuint(rb->len, ==, 5000);
	spool_confirm(s, a, 3000);
	spool_confirm(s, b, 5000);
	spool_confirm(s, anon, 5000);
	spool_free(s);

	s = open_small(dir, 1000, 1000, SPOOL_SYNC_NONE);
	/* registered in another order: the name counts, not the index */
	b = spool_add_reader_named(s, "b");
	guint c = spool_add_reader_named(s, "c");
	a = spool_add_reader_named(s, "a");
	g_assert_cmpuint(spool_confirmed(s, a), ==, 3000);
	g_assert_cmpuint(spool_confirmed(s, b), ==, 5000);
	g_assert_cmpuint(spool_confirmed(s, c), ==, 5000);
	g_assert_true(exists(dir, "cursor-c"));

	append_range(s, 5000, 10, 10);
	const guint64 for_a[] = {3000, 5010};
	const guint64 for_b[] = {5000, 5010};
	assert_reads(s, a, spool_confirmed(s, a), for_a, 1);
	assert_reads(s, b, spool_confirmed(s, b), for_b, 1);
	assert_reads(s, c, spool_confirmed(s, c), for_b, 1);

	/* a confirm is saved at once, not at close */
	spool_confirm(s, a, 4000);
	g_autofree char *cursor_a = path_in(dir, "cursor-a");
	g_autofree char *text = NULL;
	gsize len;
	g_assert_true(g_file_get_contents(cursor_a, &text, &len, NULL));
	struct cursor_record rec;
	g_assert_cmpuint(len, ==, sizeof(rec));
	memcpy(&rec, text, sizeof(rec));
	g_assert_cmpuint(rec.position, ==, 4000);
	spool_free(s);
	remove_tree(dir);
}

/* Past the size bound the oldest segment goes; each reader loses exactly
 * what it had not confirmed of it, and says so. */
static void test_bound(void)
{
	g_autofree char *dir = make_dir();
	/* 3 segments of 5000 records; the cache (2 chunks) is smaller */
	spool *s = open_small(dir, 5000, 3, SPOOL_SYNC_NONE);
	guint idle = spool_add_reader_named(s, "idle");
	guint part = spool_add_reader_named(s, "part");
	guint keen = spool_add_reader_named(s, "keen");

	for (guint64 p = 0; p < 15000; p += 500) {
		append_range(s, p, 500, 500);
		spool_confirm(s, keen, p + 500);
	}
	spool_confirm(s, part, 3000);
	g_assert_cmpuint(spool_lost(s, idle), ==, 0);
	g_assert_cmpuint(spool_dropped_total(s), ==, 0);
	g_assert_cmpuint(count_files(dir, "journal-"), ==, 3);

	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING,
			      "*size bound*journal-0000000000000000*5000 records not yet delivered*"
			      "positions 0 to 4999*idle 5000, part 2000");
	append_range(s, 15000, 1, 1);
	g_test_assert_expected_messages();
	g_assert_cmpuint(spool_lost(s, idle), ==, 5000);
	g_assert_cmpuint(spool_lost(s, part), ==, 2000);
	g_assert_cmpuint(spool_lost(s, keen), ==, 0);
	g_assert_cmpuint(spool_dropped_total(s), ==, 5000);
	g_assert_cmpuint(spool_confirmed(s, idle), ==, 5000);
	g_assert_false(exists(dir, "journal-0000000000000000"));
	g_assert_cmpuint(count_files(dir, "journal-"), ==, 3);

	/* a reader left behind jumps to the oldest record held, read from disk */
	const guint64 held[] = {5000, 15001};
	assert_reads(s, idle, 0, held, 1);
	g_assert_cmpuint(spool_lost(s, idle), ==, 5000);

	/* keen confirming alone deletes nothing the others still need */
	spool_confirm(s, keen, 15001);
	g_assert_cmpuint(count_files(dir, "journal-"), ==, 3);
	spool_free(s);

	/* the next process sees what idle missed: counted and said again */
	s = open_small(dir, 5000, 3, SPOOL_SYNC_NONE);
	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING,
			      "*idle resumes after record 0, but 5000 records*no longer held*");
	idle = spool_add_reader_named(s, "idle");
	g_test_assert_expected_messages();
	g_assert_cmpuint(spool_lost(s, idle), ==, 5000);
	g_assert_cmpuint(spool_confirmed(s, idle), ==, 5000);
	spool_free(s);
	remove_tree(dir);
}

/* Segments every reader has confirmed go at once; nothing counts as lost. */
static void test_confirmed_segments_deleted(void)
{
	g_autofree char *dir = make_dir();
	spool *s = open_small(dir, 1000, 4, SPOOL_SYNC_NONE);
	guint a = spool_add_reader_named(s, "a");
	guint b = spool_add_reader(s);

	for (guint64 p = 0; p < 20000; p += 250) {
		append_range(s, p, 250, 250);
		spool_confirm(s, a, p + 250);
		spool_confirm(s, b, p + 250);
		g_assert_cmpuint(count_files(dir, "journal-"), <=, 2);
	}
	g_assert_cmpuint(spool_dropped_total(s), ==, 0);
	g_assert_cmpuint(spool_lost(s, a), ==, 0);
	g_assert_cmpuint(spool_lost(s, b), ==, 0);
	spool_free(s);

	s = open_small(dir, 1000, 4, SPOOL_SYNC_NONE);
	a = spool_add_reader_named(s, "a");
	g_assert_cmpuint(spool_end(s), ==, 20000);
	g_assert_cmpuint(spool_confirmed(s, a), ==, 20000);
	spool_free(s);
	remove_tree(dir);
}

/* A reader far behind reads from the segment files; one that keeps up from
 * memory.  Both get the same records. */
static void test_read_from_disk(void)
{
	g_autofree char *dir = make_dir();
	spool *s = open_small(dir, 2000, 1000, SPOOL_SYNC_NONE);
	guint slow = spool_add_reader_named(s, "slow");
	guint fast = spool_add_reader_named(s, "fast");
	const guint64 total = 6 * CHUNK + 123;   /* three times the cache */
	guint64 pfast = 0;

	for (guint64 p = 0; p < total; p += 1000) {
		append_range(s, p, (size_t)MIN(1000, total - p), 1000);
		g_autoptr(GArray) got = read_rest(s, fast, &pfast, 256);
		g_assert_cmpuint(got->len, >, 0);
		spool_confirm(s, fast, pfast);
	}
	g_assert_cmpuint(pfast, ==, total);
	const guint64 all[] = {0, total};
	assert_reads(s, slow, 0, all, 1);

	/* reads that start anywhere, across segment and cache boundaries */
	static const guint64 starts[] = {0, 1999, 2000, 4095, 4096, 12000, 6 * CHUNK - 1};
	struct flow_record out[700];
	for (size_t i = 0; i < G_N_ELEMENTS(starts); i++) {
		guint64 pos = starts[i];
		size_t n = spool_read(s, slow, &pos, out, G_N_ELEMENTS(out), 0);
		g_assert_cmpuint(n, >, 0);
		g_assert_cmpuint(pos, ==, starts[i] + n);
		for (size_t k = 0; k < n; k++)
			g_assert_true(load_record_is(&out[k], starts[i] + k));
	}
	g_assert_cmpuint(spool_lost(s, slow), ==, 0);
	spool_free(s);
	remove_tree(dir);
}

static void collect(const struct flow_record *r, void *user)
{
	g_assert_true(load_record_is(r, r->flow_id));
	g_array_append_val((GArray *)user, r->flow_id);
}

static void test_recent(void)
{
	g_autofree char *dir = make_dir();
	spool *s = open_small(dir, 1000, 1000, SPOOL_SYNC_NONE);
	const guint64 total = 3 * CHUNK + 10;

	g_autoptr(GArray) none = g_array_new(FALSE, FALSE, sizeof(guint64));
	spool_recent(s, 100, collect, none);
	g_assert_cmpuint(none->len, ==, 0);
	append_range(s, 0, total, 500);

	for (int round = 0; round < 2; round++) {
		/* first from memory, then after a restart from disk */
		g_autoptr(GArray) last = g_array_new(FALSE, FALSE, sizeof(guint64));
		spool_recent(s, 10, collect, last);
		const guint64 tail[] = {total - 10, total};
		assert_ranges(last, tail, 1);

		g_autoptr(GArray) many = g_array_new(FALSE, FALSE, sizeof(guint64));
		spool_recent(s, 2 * CHUNK + 7, collect, many);
		const guint64 tail2[] = {total - 2 * CHUNK - 7, total};
		assert_ranges(many, tail2, 1);

		g_autoptr(GArray) all = g_array_new(FALSE, FALSE, sizeof(guint64));
		spool_recent(s, 1000000, collect, all);
		const guint64 whole[] = {0, total};
		assert_ranges(all, whole, 1);

		g_autoptr(GArray) zero = g_array_new(FALSE, FALSE, sizeof(guint64));
		spool_recent(s, 0, collect, zero);
		g_assert_cmpuint(zero->len, ==, 0);

		spool_free(s);
		s = open_small(dir, 1000, 1000, SPOOL_SYNC_NONE);
	}
	spool_free(s);
	remove_tree(dir);
}

/* A power loss in the middle of a write: the last frame is cut short. */
static void test_truncated_last_frame(void)
{
	g_autofree char *dir = make_dir();
	make_journal(dir, 100, 250, 0);
	/* b had confirmed everything, up to a record the disk never got; a
	 * (registered too, or its records would go) nothing */
	spool *s = open_small(dir, 100, 1000, SPOOL_SYNC_NONE);
	guint a = spool_add_reader_named(s, "a");
	guint b = spool_add_reader_named(s, "b");
	spool_confirm(s, b, 250);
	spool_free(s);

	g_autofree char *last = segment_path(dir, 200);
	guint64 size = file_size(last);
	g_assert_cmpint(truncate(last, (off_t)(size - 50)), ==, 0);

	const guint64 cut_at = frame_offset(200, 249), cut = JOURNAL_FRAME_SIZE - 50;
	g_autofree char *cut_msg = g_strdup_printf(
		"*journal-00000000000000c8: last frame cut short (%" G_GUINT64_FORMAT " of %"
		G_GUINT64_FORMAT " bytes) at offset %" G_GUINT64_FORMAT "; moved the %"
		G_GUINT64_FORMAT " bytes*corrupt/journal-00000000000000c8.from-%" G_GUINT64_FORMAT
		"*kept the 49 records before it", cut, (guint64)JOURNAL_FRAME_SIZE, cut_at, cut, cut_at);
	g_autofree char *cut_name = g_strdup_printf("journal-00000000000000c8.from-%" G_GUINT64_FORMAT,
						    cut_at);
	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, cut_msg);
	s = open_small(dir, 100, 1000, SPOOL_SYNC_NONE);
	g_test_assert_expected_messages();
	g_assert_cmpuint(spool_end(s), ==, 249);
	g_assert_cmpuint(set_aside_size(dir, cut_name), ==, cut);
	g_assert_cmpuint(file_size(last), ==, frame_offset(200, 249));

	a = spool_add_reader_named(s, "a");
	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING,
			      "*cursor-b says 250 records are delivered, but the journal ends at 249*");
	b = spool_add_reader_named(s, "b");
	g_test_assert_expected_messages();
	g_assert_cmpuint(spool_confirmed(s, b), ==, 249);
	const guint64 all[] = {0, 249};
	assert_reads(s, a, 0, all, 1);

	/* appends continue right after the last good frame */
	append_range(s, 249, 60, 7);
	spool_free(s);
	s = open_small(dir, 100, 1000, SPOOL_SYNC_NONE);
	a = spool_add_reader_named(s, "a");
	const guint64 after[] = {0, 309};
	assert_reads(s, a, 0, after, 1);
	spool_free(s);
	remove_tree(dir);
}

/* Bad bytes inside a segment: the frames before them stay, the rest of
 * that segment is set aside, later segments stay. */
static void test_flipped_byte(void)
{
	g_autofree char *dir = make_dir();
	make_journal(dir, 100, 300, 0);
	g_autofree char *middle = segment_path(dir, 100);
	guint64 size = file_size(middle);
	guint64 bad = frame_offset(100, 150);
	flip_byte(middle, bad + sizeof(struct journal_frame_header) + 77);

	g_autofree char *msg = g_strdup_printf(
		"*journal-0000000000000064: frame fails its CRC (position 150) at offset %"
		G_GUINT64_FORMAT "; moved the %" G_GUINT64_FORMAT " bytes*kept the 50 records before it",
		bad, size - bad);
	g_autofree char *name = g_strdup_printf("journal-0000000000000064.from-%" G_GUINT64_FORMAT, bad);
	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, msg);
	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING,
			      "*records 150 to 199 (50) are missing between journal-0000000000000064"
			      " and journal-00000000000000c8");
	spool *s = open_small(dir, 100, 1000, SPOOL_SYNC_NONE);
	g_test_assert_expected_messages();
	g_assert_cmpuint(bad, ==, JOURNAL_HEADER_SIZE + 50 * JOURNAL_FRAME_SIZE);
	g_assert_cmpuint(set_aside_size(dir, name), ==,
			 size - bad);
	g_assert_cmpuint(spool_end(s), ==, 300);

	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING,
			      "*a resumes after record 0, but 50 records*no longer held*");
	guint a = spool_add_reader_named(s, "a");
	g_test_assert_expected_messages();
	g_assert_cmpuint(spool_lost(s, a), ==, 50);
	const guint64 kept[] = {0, 150, 200, 300};
	assert_reads(s, a, 0, kept, 2);
	/* a reader positioned inside the hole moves to what comes after it */
	assert_reads(s, a, 170, kept + 2, 1);
	spool_free(s);

	/* the bad bytes are out of the way: the next start only notes the gap */
	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING,
			      "*records 150 to 199 (50) are missing*");
	s = open_small(dir, 100, 1000, SPOOL_SYNC_NONE);
	g_test_assert_expected_messages();
	spool_free(s);
	remove_tree(dir);
}

/* A segment created just before a crash, before its header was written. */
static void test_zero_length_segment(void)
{
	g_autofree char *dir = make_dir();
	make_journal(dir, 100, 300, 0);
	/* the next segment was created, and the process died before its header */
	g_autofree char *next = segment_path(dir, 300);
	write_file(next, "", 0);

	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING,
			      "*journal-000000000000012c: empty file; moved the file (0 bytes) to*"
			      "corrupt/journal-000000000000012c");
	spool *s = open_small(dir, 100, 1000, SPOOL_SYNC_NONE);
	g_test_assert_expected_messages();
	g_assert_cmpuint(spool_end(s), ==, 300);
	g_assert_cmpuint(set_aside_size(dir, "journal-000000000000012c"), ==, 0);
	guint a = spool_add_reader_named(s, "a");
	g_assert_cmpuint(spool_confirmed(s, a), ==, 0);
	append_range(s, 300, 10, 10);
	const guint64 all[] = {0, 310};
	assert_reads(s, a, 0, all, 1);
	spool_free(s);
	remove_tree(dir);
}

/* A segment written by another format version is not read. */
static void test_wrong_version(void)
{
	g_autofree char *dir = make_dir();
	make_journal(dir, 100, 300, 0);
	g_autofree char *middle = segment_path(dir, 100);
	struct journal_segment_header h;
	int fd = open(middle, O_RDONLY);
	g_assert_cmpint(pread(fd, &h, sizeof(h), 0), ==, (ssize_t)sizeof(h));
	close(fd);
	h.version = JOURNAL_VERSION + 1;
	h.crc = 0;
	h.crc = crc32c(0, &h, sizeof(h));
	patch_file(middle, 0, &h, sizeof(h));

	g_autofree char *refused = g_strdup_printf(
		"*journal-0000000000000064: format version %u, this build reads version %u;"
		" moved the file*", JOURNAL_VERSION + 1, JOURNAL_VERSION);
	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, refused);
	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING,
			      "*records 100 to 199 (100) are missing*");
	spool *s = open_small(dir, 100, 1000, SPOOL_SYNC_NONE);
	g_test_assert_expected_messages();
	g_assert_false(exists(dir, "journal-0000000000000064"));
	g_assert_cmpuint(set_aside_size(dir, "journal-0000000000000064"), ==,
			 frame_offset(100, 200));

	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, "*a resumes*100 records*");
	guint a = spool_add_reader_named(s, "a");
	g_test_assert_expected_messages();
	const guint64 kept[] = {0, 100, 200, 300};
	assert_reads(s, a, 0, kept, 2);
	spool_free(s);
	remove_tree(dir);
}

/* Files that only look like segments by name. */
/* Writes a version 1 segment (records of 160 bytes) of positions
 * @first..@first+@n-1, followed by @tail bytes of garbage. */
static void write_v1_segment(const char *dir, guint64 first, size_t n, size_t tail)
{
	g_autofree char *path = segment_path(dir, first);
	g_autoptr(GByteArray) out = g_byte_array_new();
	struct journal_segment_header h = {
		.magic = JOURNAL_SEGMENT_MAGIC, .version = 1,
		.record_size = JOURNAL_V1_RECORD_SIZE, .first = first,
	};
	h.crc = crc32c(0, &h, sizeof(h));
	g_byte_array_append(out, (const guint8 *)&h, sizeof(h));
	for (size_t i = 0; i < n; i++) {
		struct flow_record r;
		guint8 frame[sizeof(struct journal_frame_header) + JOURNAL_V1_RECORD_SIZE];
		struct journal_frame_header fh = {
			.magic = JOURNAL_FRAME_MAGIC, .length = JOURNAL_V1_RECORD_SIZE,
			.position = first + i,
		};
		load_fill(&r, first + i, 1);
		memcpy(frame, &fh, sizeof(fh));
		memcpy(frame + sizeof(fh), &r, JOURNAL_V1_RECORD_SIZE);
		fh.crc = crc32c(0, frame, sizeof(frame));
		memcpy(frame, &fh, sizeof(fh));
		g_byte_array_append(out, frame, sizeof(frame));
	}
	for (size_t i = 0; i < tail; i++)
		g_byte_array_append(out, (const guint8 *)"\xa5", 1);
	g_assert_true(g_file_set_contents(path, (const char *)out->data, out->len, NULL));
}

/*
 * Segments an earlier version wrote (format version 1, records of 160
 * bytes) are rewritten at start: every record is read back as it was, the
 * fields added since are zero, a torn tail is set aside as before, and
 * appends go on after the last record.
 */
static void test_upgrade_v1(void)
{
	g_autofree char *dir = make_dir();
	write_v1_segment(dir, 0, 300, 0);
	write_v1_segment(dir, 300, 200, 100);
	/* a copy a crash cut short is not a segment, and goes */
	g_autofree char *stale = g_build_filename(dir, "journal-0000000000000000.upgrade", NULL);
	g_assert_true(g_file_set_contents(stale, "partial", -1, NULL));

	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE,
			      "*journal-0000000000000000: 300 records upgraded from journal format"
			      " version 1 to 2*");
	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE,
			      "*journal-000000000000012c: 200 records upgraded*");
	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING,
			      "*journal-000000000000012c: last frame cut short*moved the 100 bytes*");
	spool *s = open_small(dir, 1000, 1000, SPOOL_SYNC_NONE);
	g_test_assert_expected_messages();
	g_assert_false(exists(dir, "journal-0000000000000000.upgrade"));
	g_assert_cmpuint(spool_end(s), ==, 500);
	append_range(s, 500, 50, 50);

	guint64 pos = 0;
	g_autofree struct flow_record *out = g_new(struct flow_record, 600);
	guint r = spool_add_reader(s);
	size_t n = 0, got;
	while ((got = spool_read(s, r, &pos, out + n, 600 - n, 0)))
		n += got;
	g_assert_cmpuint(n, ==, 550);
	for (size_t i = 0; i < n; i++) {
		struct flow_record want;
		load_fill(&want, i, 1);
		g_assert_cmpmem(&out[i], sizeof(out[i]), &want, sizeof(want));
		g_assert_true(load_record_is(&out[i], i));
	}
	g_autofree char *first = segment_path(dir, 0);
	g_assert_cmpuint(file_size(first), ==, frame_offset(0, 300));
	spool_free(s);
	remove_tree(dir);
}

static void test_garbage_files(void)
{
	g_autofree char *dir = make_dir();
	make_journal(dir, 100, 200, 0);
	guint8 junk[1000];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (guint8)g_test_rand_int();
	g_autofree char *after = segment_path(dir, 5000);
	g_autofree char *misnamed = path_in(dir, "journal-notes.txt");
	write_file(after, junk, sizeof(junk));

	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING,
			      "*journal-0000000000001388: not a journal segment (magic 0x*moved the"
			      " file (1000 bytes)*");
	spool *s = open_small(dir, 100, 1000, SPOOL_SYNC_NONE);
	g_test_assert_expected_messages();
	spool_free(s);

	write_file(misnamed, "hello", 5);
	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING,
			      "*journal-notes.txt: not a segment name*moved the file (5 bytes)*");
	s = open_small(dir, 100, 1000, SPOOL_SYNC_NONE);
	g_test_assert_expected_messages();
	g_assert_cmpuint(spool_end(s), ==, 200);
	g_assert_cmpuint(set_aside_size(dir, "journal-notes.txt"), ==, 5);
	g_assert_cmpuint(set_aside_size(dir, "journal-0000000000001388"), ==, 1000);
	guint a = spool_add_reader_named(s, "a");
	const guint64 all[] = {0, 200};
	assert_reads(s, a, 0, all, 1);
	spool_free(s);
	remove_tree(dir);
}

/* A cursor that fails its check is not believed: the reader starts from
 * the oldest record held, and the file is put right. */
static void test_corrupt_cursor(void)
{
	g_autofree char *dir = make_dir();
	make_journal(dir, 100, 300, 250);
	g_autofree char *cursor_a = path_in(dir, "cursor-a");
	flip_byte(cursor_a, G_STRUCT_OFFSET(struct cursor_record, position));
	g_autofree char *cursor_b = path_in(dir, "cursor-b");
	write_file(cursor_b, "garbage", 7);

	/* a had confirmed 250: the segments before 200 are gone, 200 is the oldest */
	spool *s = open_small(dir, 100, 1000, SPOOL_SYNC_NONE);
	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING,
			      "*cursor-a: fails its CRC (it says position 234); its 24 bytes are"
			      " kept in corrupt/cursor-a; a starts from the oldest record held"
			      " (200, 100 records to send)");
	guint a = spool_add_reader_named(s, "a");
	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING,
			      "*cursor-b: 7 bytes, a cursor has 24; its 7 bytes are kept in"
			      " corrupt/cursor-b; b starts from the oldest*");
	guint b = spool_add_reader_named(s, "b");
	g_test_assert_expected_messages();
	/* the damaged cursors are kept, not overwritten away */
	g_autofree char *kept_a = path_in(dir, "corrupt/cursor-a");
	g_autofree char *kept_b = path_in(dir, "corrupt/cursor-b");
	g_assert_true(g_file_test(kept_a, G_FILE_TEST_IS_REGULAR));
	g_assert_true(g_file_test(kept_b, G_FILE_TEST_IS_REGULAR));
	g_assert_cmpuint(spool_confirmed(s, a), ==, 200);
	g_assert_cmpuint(spool_confirmed(s, b), ==, 200);
	const guint64 held[] = {200, 300};
	assert_reads(s, a, spool_confirmed(s, a), held, 1);
	spool_free(s);

	s = open_small(dir, 100, 1000, SPOOL_SYNC_NONE);
	a = spool_add_reader_named(s, "a");
	g_assert_cmpuint(spool_confirmed(s, a), ==, 200);
	spool_free(s);
	remove_tree(dir);
}

static void test_sync_modes(void)
{
	static const enum spool_sync modes[] = {SPOOL_SYNC_NONE, SPOOL_SYNC_BATCH,
						SPOOL_SYNC_RECORD};

	for (size_t m = 0; m < G_N_ELEMENTS(modes); m++) {
		g_autofree char *dir = make_dir();
		/* fdatasync per record is slow on real disks: fewer records then */
		const guint64 total = modes[m] == SPOOL_SYNC_RECORD ? 300 : 3000;
		spool *s = open_small(dir, 250, 1000, modes[m]);
		guint a = spool_add_reader_named(s, "a");
		append_range(s, 0, total, 64);
		guint64 pos = 0;
		g_autoptr(GArray) got = read_rest(s, a, &pos, 100);
		g_assert_cmpuint(got->len, ==, total);
		spool_confirm(s, a, total / 2);
		spool_free(s);

		s = open_small(dir, 250, 1000, modes[m]);
		a = spool_add_reader_named(s, "a");
		g_assert_cmpuint(spool_end(s), ==, total);
		g_assert_cmpuint(spool_confirmed(s, a), ==, total / 2);
		const guint64 rest[] = {total / 2, total};
		assert_reads(s, a, spool_confirmed(s, a), rest, 1);
		spool_free(s);
		remove_tree(dir);
	}
}

/* SPOOL_SYNC_BATCH: the appender hands a commit on when one is due, never
 * sooner, and never waits for it; closing waits for all of them. */
static void test_group_commit(void)
{
	g_autofree char *dir = make_dir();
	spool *s = open_small(dir, 250, 1000, SPOOL_SYNC_BATCH);
	guint a = spool_add_reader_named(s, "a");
	gint64 t0 = g_get_monotonic_time();

	g_assert_cmpint(spool_sync_pending(s, t0), ==, -1);   /* nothing written */
	append_range(s, 0, 100, 50);
	/* the first commit is due at once, and then nothing waits */
	g_assert_cmpint(spool_sync_pending(s, t0), ==, -1);
	append_range(s, 100, 100, 50);
	gint64 wait = spool_sync_pending(s, t0 + 1000);
	g_assert_cmpint(wait, ==, 100 * 1000 - 1000);
	g_assert_cmpint(spool_sync_pending(s, t0 + 100 * 1000), ==, -1);
	/* commits across segment boundaries (250 records each) */
	for (guint64 i = 2; i < 12; i++) {
		append_range(s, i * 100, 100, 100);
		g_assert_cmpint(spool_sync_pending(s, t0 + (gint64)i * 100 * 1000), ==, -1);
	}
	append_range(s, 1200, 34, 34);   /* left for the close to sync */
	spool_free(s);

	s = open_small(dir, 250, 1000, SPOOL_SYNC_BATCH);
	a = spool_add_reader_named(s, "a");
	g_assert_cmpuint(spool_end(s), ==, 1234);
	const guint64 all[] = {0, 1234};
	assert_reads(s, a, 0, all, 1);
	spool_free(s);
	remove_tree(dir);
}

/* Two processes on one directory would wreck each other's journal. */
static void test_directory_lock(void)
{
	g_autofree char *dir = make_dir();
	g_autoptr(GError) error = NULL;
	spool *s = spool_open(dir, ROOMY, SPOOL_SYNC_NONE, &error);

	g_assert_no_error(error);
	spool *other = spool_open(dir, ROOMY, SPOOL_SYNC_NONE, &error);
	g_assert_null(other);
	g_assert_error(error, CTFLOWD_ERROR, EWOULDBLOCK);
	g_assert_nonnull(strstr(error->message, "in use by another process"));
	spool_free(s);

	g_clear_error(&error);
	s = spool_open(dir, ROOMY, SPOOL_SYNC_NONE, &error);
	g_assert_no_error(error);
	spool_free(s);
	remove_tree(dir);
}

/* A directory spool_open() makes itself gets mode 0750. */
static void test_creates_directory(void)
{
	g_autofree char *parent = make_dir();
	g_autofree char *dir = g_build_filename(parent, "state", "spool", NULL);
	g_autoptr(GError) error = NULL;
	mode_t old = umask(0);
	spool *s = spool_open(dir, ROOMY, SPOOL_SYNC_NONE, &error);
	umask(old);
	GStatBuf st;

	g_assert_no_error(error);
	g_assert_cmpint(g_stat(dir, &st), ==, 0);
	g_assert_cmpuint(st.st_mode & 0777, ==, 0750);
	g_assert_true(exists(dir, "journal-0000000000000000"));
	spool_free(s);
	remove_tree(parent);
}

/*
 * The disk refuses writes (a file size limit stands in for a full disk):
 * records stay readable from memory, the journal is left without a torn
 * frame, and once writes work again the journal goes on after a gap.
 */
static void test_write_failure(void)
{
	g_autofree char *dir = make_dir();
	const guint64 seg = 2000;
	/* room for the header and 300 frames and a bit of the next */
	const rlim_t limit = (rlim_t)(frame_offset(0, 300) + 100);

	pid_t child = fork();
	g_assert_cmpint(child, >=, 0);
	if (child == 0) {
		struct rlimit rl = {limit, limit};
		signal(SIGXFSZ, SIG_IGN);
		if (setrlimit(RLIMIT_FSIZE, &rl) < 0)
			_exit(10);
		spool *s = open_small(dir, seg, 1000, SPOOL_SYNC_NONE);
		guint a = spool_add_reader_named(s, "a");
		append_range(s, 0, 250, 50);
		g_autofree char *refused = g_strdup_printf(
			"*cannot write*journal-0000000000000000 at offset %" G_GUINT64_FORMAT
			": File too large; records are kept in memory only*",
			(guint64)frame_offset(0, 250));
		g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, refused);
		append_range(s, 250, 100, 100);   /* crosses the limit: all 100 refused */
		append_range(s, 350, 100, 100);   /* no new attempt so soon */
		g_test_assert_expected_messages();
		guint64 pos = 0;
		struct flow_record out[500];
		size_t n = spool_read(s, a, &pos, out, 500, 0);
		if (n != 450)
			_exit(11);
		for (size_t i = 0; i < n; i++)
			if (!load_record_is(&out[i], i))
				_exit(12);
		/* a second later a new segment is tried, and takes records */
		g_usleep(G_USEC_PER_SEC + 100 * 1000);
		g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE,
				      "*journal takes records again; 200 records*memory only*");
		append_range(s, 450, 50, 50);
		g_test_assert_expected_messages();
		if (spool_end(s) != 500 || spool_lost(s, a) != 0)
			_exit(13);
		_exit(0);
	}
	int status;
	g_assert_cmpint(waitpid(child, &status, 0), ==, child);
	g_assert_true(WIFEXITED(status));
	g_assert_cmpint(WEXITSTATUS(status), ==, 0);

	/* nothing torn: the first segment ends cleanly at 250 */
	g_autofree char *first = segment_path(dir, 0);
	g_assert_cmpuint(file_size(first), ==, frame_offset(0, 250));
	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING,
			      "*records 250 to 449 (200) are missing between journal-0000000000000000"
			      " and journal-00000000000001c2");
	spool *s = open_small(dir, seg, 1000, SPOOL_SYNC_NONE);
	g_test_assert_expected_messages();
	g_assert_cmpuint(spool_end(s), ==, 500);
	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, "*a resumes*200 records*");
	guint a = spool_add_reader_named(s, "a");
	g_test_assert_expected_messages();
	const guint64 kept[] = {0, 250, 450, 500};
	assert_reads(s, a, 0, kept, 2);
	spool_free(s);
	remove_tree(dir);
}

/* ---- threads, as in the daemon -------------------------------------------------- */

/* A slow reader falls out of the cache and goes on from disk while the
 * appender fills new segments: nothing lost, nothing out of order. */
static void test_threads_no_loss(void)
{
	g_autofree char *dir = make_dir();
	const guint64 total = 200000;
	struct load_reader cons[2] = {{.max = 256}, {.max = 37, .slow = TRUE}};
	spool *s = open_small(dir, 10000, 1000, SPOOL_SYNC_NONE);

	load_run(s, total, cons, 2, TRUE);
	for (size_t i = 0; i < 2; i++) {
		g_assert_true(cons[i].ok);
		g_assert_cmpuint(cons[i].delivered, ==, total);
		g_assert_cmpuint(cons[i].gaps, ==, 0);
		g_assert_cmpuint(cons[i].lost, ==, 0);
	}
	g_assert_cmpuint(spool_dropped_total(s), ==, 0);
	spool_free(s);
	remove_tree(dir);
}

static guint quiet_warnings;

static gboolean drops_are_expected(const char *domain, GLogLevelFlags level, const char *msg,
				   gpointer data)
{
	return !(level & G_LOG_LEVEL_WARNING) || !strstr(msg, "size bound");
}

static void count_warning(const char *domain, GLogLevelFlags level, const char *msg,
			  gpointer data)
{
	if (strstr(msg, "size bound"))
		g_atomic_int_inc(&quiet_warnings);
	else
		g_log_default_handler(domain, level, msg, data);
}

/* Segments deleted by the size bound while readers read them from disk:
 * readers skip what was dropped and count it, and never go backwards. */
static void test_threads_lossy(void)
{
	g_autofree char *dir = make_dir();
	const guint64 total = 300000;
	struct load_reader cons[2] = {{.max = 64, .slow = TRUE}, {.max = 500, .slow = TRUE}};
	spool *s = open_small(dir, 5000, 4, SPOOL_SYNC_NONE);

	g_test_log_set_fatal_handler(drops_are_expected, NULL);
	/* under g_test_init() warnings come flagged fatal; the handler must say it takes those */
	guint handler = g_log_set_handler(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING | G_LOG_FLAG_FATAL,
					  count_warning, NULL);
	load_run(s, total, cons, 2, TRUE);
	g_log_remove_handler(G_LOG_DOMAIN, handler);
	g_test_log_set_fatal_handler(NULL, NULL);

	guint64 most = 0;
	for (size_t i = 0; i < 2; i++) {
		g_test_message("reader %zu: delivered %" G_GUINT64_FORMAT ", skipped %"
			       G_GUINT64_FORMAT ", lost %" G_GUINT64_FORMAT,
			       i, cons[i].delivered, cons[i].gaps, cons[i].lost);
		g_assert_true(cons[i].ok);
		g_assert_cmpuint(cons[i].delivered + cons[i].gaps, ==, total);
		g_assert_cmpuint(cons[i].gaps, <=, cons[i].lost);
		most = MAX(most, cons[i].lost);
	}
	/* every drop was said, and counted once overall */
	g_assert_cmpuint(most, >, 0);
	g_assert_cmpuint(g_atomic_int_get(&quiet_warnings), >, 0);
	g_assert_cmpuint(spool_dropped_total(s), >=, most);
	g_assert_cmpuint(spool_dropped_total(s), <=, cons[0].lost + cons[1].lost);
	spool_free(s);
	remove_tree(dir);
}

/*
 * A damaged tail is set aside up to what a segment holds, and a hole in it
 * takes no disk space: a segment with a valid header followed by a 512 MiB
 * hole once became 512 MiB really written to corrupt/, outside spool_max.
 */
static void test_sparse_tail(void)
{
	g_autofree char *dir = make_dir();
	make_journal(dir, 100, 250, 0);
	g_autofree char *last = segment_path(dir, 200);
	g_assert_cmpint(truncate(last, (off_t)(512ull << 20)), ==, 0);

	const guint64 at = frame_offset(200, 250), seg = segment_bytes_for(100);
	g_autofree char *msg = g_strdup_printf(
		"*journal-00000000000000c8: no frame (magic 0x00000000) at offset %" G_GUINT64_FORMAT
		"; moved the %" G_GUINT64_FORMAT " bytes from there to*corrupt/journal-00000000000000c8"
		".from-%" G_GUINT64_FORMAT " (the %" G_GUINT64_FORMAT " bytes past a segment's size of %"
		G_GUINT64_FORMAT " are dropped) and kept the 50 records before it",
		at, seg, at, (guint64)(512ull << 20) - at - seg, seg);
	g_autofree char *name = g_strdup_printf("journal-00000000000000c8.from-%" G_GUINT64_FORMAT, at);
	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, msg);
	spool *s = open_small(dir, 100, 1000, SPOOL_SYNC_NONE);
	g_test_assert_expected_messages();
	g_assert_cmpuint(spool_end(s), ==, 250);
	g_assert_cmpuint(file_size(last), ==, frame_offset(200, 250));
	g_assert_cmpuint(set_aside_size(dir, name), ==, seg);
	g_autofree char *rel = g_strconcat("corrupt/", name, NULL);
	g_autofree char *kept = path_in(dir, rel);
	GStatBuf st;
	g_assert_cmpint(g_stat(kept, &st), ==, 0);
	/* zeros are left as a hole: no block of the copy is allocated */
	g_assert_cmpint(st.st_blocks, ==, 0);
	guint a = spool_add_reader_named(s, "a");
	const guint64 all[] = {0, 250};
	assert_reads(s, a, 0, all, 1);
	spool_free(s);
	remove_tree(dir);
}

/* A file outside the journal with known contents, for links to point at. */
static char *make_target(const char *dir)
{
	char *target = g_strdup_printf("%s-target", dir);

	g_assert_true(g_file_set_contents(target, "not ctflowd's\n", -1, NULL));
	return target;
}

static void assert_target_unchanged(const char *target)
{
	g_autofree char *text = NULL;

	g_assert_true(g_file_get_contents(target, &text, NULL, NULL));
	g_assert_cmpstr(text, ==, "not ctflowd's\n");
}

/* Symbolic links where the journal keeps its files are never followed: a
 * segment name is moved to corrupt/ as it is, a cursor is replaced (and
 * its reader replays from the oldest record), and what they point to stays
 * as it was. */
static void test_symbolic_links(void)
{
	g_autofree char *dir = make_dir();
	g_autofree char *target = make_target(dir);
	/* the first segment goes once a confirmed all of it */
	make_journal(dir, 100, 250, 120);
	g_autofree char *cursor_a = path_in(dir, "cursor-a");
	g_autofree char *next_seg = segment_path(dir, 250);
	g_assert_cmpint(g_unlink(cursor_a), ==, 0);
	g_assert_cmpint(symlink(target, cursor_a), ==, 0);
	g_assert_cmpint(symlink(target, next_seg), ==, 0);

	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING,
			      "*journal-00000000000000fa: a symbolic link, not followed; moved the"
			      " file*corrupt/journal-00000000000000fa");
	spool *s = open_small(dir, 100, 1000, SPOOL_SYNC_NONE);
	g_test_assert_expected_messages();
	g_assert_cmpuint(spool_end(s), ==, 250);
	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING,
			      "*cursor-a: a symbolic link, not followed: replaced by a new cursor;"
			      " a starts from the oldest record held*");
	guint a = spool_add_reader_named(s, "a");
	g_test_assert_expected_messages();
	g_assert_cmpuint(spool_confirmed(s, a), ==, 100);
	append_range(s, 250, 10, 10);
	const guint64 held[] = {100, 260};
	assert_reads(s, a, 100, held, 1);
	spool_free(s);

	GStatBuf st;
	g_assert_cmpint(g_lstat(cursor_a, &st), ==, 0);
	g_assert_true(S_ISREG(st.st_mode));
	g_assert_cmpint(g_lstat(next_seg, &st), ==, -1);
	g_autofree char *moved = path_in(dir, "corrupt/journal-00000000000000fa");
	g_assert_cmpint(g_lstat(moved, &st), ==, 0);
	g_assert_true(S_ISLNK(st.st_mode));
	assert_target_unchanged(target);
	g_unlink(target);
	remove_tree(dir);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_set_nonfatal_assertions();

	g_test_add_func("/journal/crc32c", test_crc32c);
	g_test_add_func("/journal/cursor-file-name", test_cursor_file_name);
	g_test_add_func("/journal/reopen", test_reopen);
	g_test_add_func("/journal/crash", test_crash);
	g_test_add_func("/journal/named-readers", test_named_readers);
	g_test_add_func("/journal/bound", test_bound);
	g_test_add_func("/journal/confirmed-segments-deleted", test_confirmed_segments_deleted);
	g_test_add_func("/journal/read-from-disk", test_read_from_disk);
	g_test_add_func("/journal/recent", test_recent);
	g_test_add_func("/journal/damage/truncated-last-frame", test_truncated_last_frame);
	g_test_add_func("/journal/damage/flipped-byte", test_flipped_byte);
	g_test_add_func("/journal/damage/zero-length-segment", test_zero_length_segment);
	g_test_add_func("/journal/damage/wrong-version", test_wrong_version);
	g_test_add_func("/journal/damage/garbage-files", test_garbage_files);
	g_test_add_func("/journal/upgrade-v1", test_upgrade_v1);
	g_test_add_func("/journal/damage/cursor", test_corrupt_cursor);
	g_test_add_func("/journal/damage/sparse-tail", test_sparse_tail);
	g_test_add_func("/journal/damage/symbolic-links", test_symbolic_links);
	g_test_add_func("/journal/sync-modes", test_sync_modes);
	g_test_add_func("/journal/group-commit", test_group_commit);
	g_test_add_func("/journal/directory-lock", test_directory_lock);
	g_test_add_func("/journal/creates-directory", test_creates_directory);
	g_test_add_func("/journal/write-failure", test_write_failure);
	g_test_add_func("/journal/threads/no-loss", test_threads_no_loss);
	g_test_add_func("/journal/threads/lossy", test_threads_lossy);

	return g_test_run();
}
