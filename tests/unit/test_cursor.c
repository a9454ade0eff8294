/*
 * test_cursor.c - a destination's confirmed position on disk.
 *
 * The cursor decides where a destination resumes after a restart, so both
 * directions of error matter: a position too far ahead loses records that
 * were never confirmed, one too far back sends records again.  Only the
 * second is acceptable, and only when the file cannot be trusted.  The
 * module is tested on its own (states, every kind of damage, errors), then
 * through the spool with a process that dies without closing anything.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctflowd/error.h"
#include "ctflowd/spool.h"
#include "spool_load.h"
#include "test_files.h"
#include "src/spool/crc32c.h"
#include "src/spool/cursor.h"

struct opened {
	cursor *c;
	enum cursor_state state;
	guint64 saved;
	char *problem;
};

static int open_dir_fd(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	g_assert_cmpint(fd, >=, 0);
	return fd;
}

/* cursor_open() that must succeed; *@o gets what it said. */
static void open_ok(const char *dir, const char *name, guint64 initial, enum spool_sync sync,
		    struct opened *o)
{
	g_autoptr(GError) error = NULL;
	int dirfd = open_dir_fd(dir);

	o->saved = G_MAXUINT64;   /* must stay so unless the state is CURSOR_SAVED */
	o->c = cursor_open(dirfd, dir, name, initial, sync, &o->state, &o->saved, &o->problem,
			   &error);
	close(dirfd);
	g_assert_no_error(error);
	g_assert_nonnull(o->c);
}

static void closed(struct opened *o)
{
	cursor_free(o->c);
	g_clear_pointer(&o->problem, g_free);
}

static void store_ok(cursor *c, guint64 position, enum spool_sync sync)
{
	g_autoptr(GError) error = NULL;

	g_assert_true(cursor_store(c, position, sync, &error));
	g_assert_no_error(error);
}

/* A good record for @position, as the module writes it. */
static struct cursor_record good_record(guint64 position)
{
	struct cursor_record r = {
		.magic = CURSOR_MAGIC,
		.version = CURSOR_VERSION,
		.position = position,
	};

	r.crc = crc32c(0, &r, sizeof(r));
	return r;
}

/* A new cursor holds its initial position; every store replaces it in
 * place, in each sync mode. */
static void test_new_then_saved(void)
{
	static const enum spool_sync modes[] = {SPOOL_SYNC_NONE, SPOOL_SYNC_BATCH,
						SPOOL_SYNC_RECORD};
	static const guint64 positions[] = {0, 1, 4096, G_MAXUINT32 + 7ull, G_MAXUINT64 - 1};

	for (size_t m = 0; m < G_N_ELEMENTS(modes); m++) {
		g_autofree char *dir = make_dir();
		g_autofree char *file = path_in(dir, "cursor-collector");
		struct opened o = {0};

		open_ok(dir, "collector", 1234, modes[m], &o);
		g_assert_cmpint(o.state, ==, CURSOR_NEW);
		g_assert_null(o.problem);
		g_assert_cmpuint(o.saved, ==, G_MAXUINT64);
		g_assert_cmpstr(cursor_path(o.c), ==, file);
		g_assert_cmpuint(file_size(file), ==, sizeof(struct cursor_record));
		closed(&o);

		open_ok(dir, "collector", 99, modes[m], &o);
		g_assert_cmpint(o.state, ==, CURSOR_SAVED);
		g_assert_cmpuint(o.saved, ==, 1234);   /* the stored one, not the initial */
		for (size_t i = 0; i < G_N_ELEMENTS(positions); i++) {
			store_ok(o.c, positions[i], modes[m]);
			g_assert_cmpuint(file_size(file), ==, sizeof(struct cursor_record));
			struct opened again = {0};
			open_ok(dir, "collector", 0, modes[m], &again);
			g_assert_cmpint(again.state, ==, CURSOR_SAVED);
			g_assert_cmpuint(again.saved, ==, positions[i]);
			closed(&again);
		}
		closed(&o);

		/* the bytes on disk are the documented record */
		g_autofree char *bytes = NULL;
		gsize len = 0;
		g_assert_true(g_file_get_contents(file, &bytes, &len, NULL));
		struct cursor_record want = good_record(positions[G_N_ELEMENTS(positions) - 1]);
		g_assert_cmpmem(bytes, len, &want, sizeof(want));
		remove_tree(dir);
	}
}

/* Names are file names of their own: readers never share a cursor. */
static void test_names_apart(void)
{
	g_autofree char *dir = make_dir();
	struct opened a = {0}, b = {0}, dots = {0};

	open_ok(dir, "a", 10, SPOOL_SYNC_NONE, &a);
	open_ok(dir, "b", 20, SPOOL_SYNC_NONE, &b);
	open_ok(dir, "../a", 30, SPOOL_SYNC_NONE, &dots);
	g_assert_cmpint(dots.state, ==, CURSOR_NEW);
	store_ok(a.c, 11, SPOOL_SYNC_NONE);
	closed(&a);
	closed(&b);
	closed(&dots);

	open_ok(dir, "a", 0, SPOOL_SYNC_NONE, &a);
	open_ok(dir, "b", 0, SPOOL_SYNC_NONE, &b);
	open_ok(dir, "../a", 0, SPOOL_SYNC_NONE, &dots);
	g_assert_cmpuint(a.saved, ==, 11);
	g_assert_cmpuint(b.saved, ==, 20);
	g_assert_cmpuint(dots.saved, ==, 30);
	closed(&a);
	closed(&b);
	closed(&dots);
	/* nothing was written outside the directory */
	g_autofree char *parent = g_path_get_dirname(dir);
	g_autofree char *outside = path_in(parent, "cursor-a");
	g_assert_false(g_file_test(outside, G_FILE_TEST_EXISTS));
	remove_tree(dir);
}

struct damage {
	const char *what;
	const char *problem;      /* what cursor_open() must say, a glob */
	guint8 bytes[40];
	size_t len;
};

static struct damage damage_case(const char *what, const char *problem, const void *bytes,
				 size_t len)
{
	struct damage d = {.what = what, .problem = problem, .len = len};

	g_assert_cmpuint(len, <=, sizeof(d.bytes));
	memcpy(d.bytes, bytes, len);
	return d;
}

/*
 * Every kind of damage is detected, its position is not used (*saved stays
 * untouched), and its bytes are kept in corrupt/ before anything rewrites
 * the file; the same cursor going bad again keeps the earlier copy.
 */
static void test_damage(void)
{
	struct cursor_record r = good_record(777);
	struct damage cases[8];
	size_t n = 0;

	struct cursor_record flipped = r;
	flipped.position ^= 1u << 20;   /* ahead: trusting it would lose records */
	cases[n++] = damage_case("position flipped", "fails its CRC (it says position 1049353)*",
				 &flipped, sizeof(flipped));
	struct cursor_record bad_crc = r;
	bad_crc.crc ^= 0x100;
	cases[n++] = damage_case("CRC flipped", "fails its CRC (it says position 777)*", &bad_crc,
				 sizeof(bad_crc));
	struct cursor_record magic = r;
	magic.magic = 0x4a465443u;   /* a journal segment's */
	cases[n++] = damage_case("wrong magic", "not a cursor (magic 0x4a465443)*", &magic,
				 sizeof(magic));
	struct cursor_record version = r;
	version.version = CURSOR_VERSION + 1;
	version.crc = 0;
	version.crc = crc32c(0, &version, sizeof(version));
	cases[n++] = damage_case("newer version", "cursor format version 2, this build reads"
				 " version 1*", &version, sizeof(version));
	cases[n++] = damage_case("torn short", "10 bytes, a cursor has 24*", &r, 10);
	cases[n++] = damage_case("empty", "0 bytes, a cursor has 24*", &r, 0);
	guint8 longer[30] = {0};
	memcpy(longer, &r, sizeof(r));
	cases[n++] = damage_case("too long", "30 bytes, a cursor has 24*", longer, sizeof(longer));
	cases[n++] = damage_case("text", "7 bytes, a cursor has 24*", "garbage", 7);

	for (size_t i = 0; i < n; i++) {
		g_autofree char *dir = make_dir();
		g_autofree char *file = path_in(dir, "cursor-d");
		g_autofree char *kept = path_in(dir, "corrupt/cursor-d");
		g_autofree char *kept_again = path_in(dir, "corrupt/cursor-d.1");
		struct opened o = {0};

		g_test_message("damage: %s", cases[i].what);
		write_file(file, cases[i].bytes, cases[i].len);
		open_ok(dir, "d", 5, SPOOL_SYNC_NONE, &o);
		g_assert_cmpint(o.state, ==, CURSOR_DAMAGED);
		g_assert_cmpuint(o.saved, ==, G_MAXUINT64);
		g_assert_nonnull(o.problem);
		g_assert_true(g_pattern_match_simple(cases[i].problem, o.problem));
		g_assert_nonnull(strstr(o.problem, "kept in corrupt/cursor-d"));
		g_autofree char *copy = NULL;
		gsize len = 0;
		g_assert_true(g_file_get_contents(kept, &copy, &len, NULL));
		g_assert_cmpmem(copy, len, cases[i].bytes, cases[i].len);

		/* the owner rewrites it; it is good again */
		store_ok(o.c, 5, SPOOL_SYNC_NONE);
		closed(&o);
		open_ok(dir, "d", 0, SPOOL_SYNC_NONE, &o);
		g_assert_cmpint(o.state, ==, CURSOR_SAVED);
		g_assert_cmpuint(o.saved, ==, 5);
		closed(&o);

		/* damaged again later: the first copy stays, the second goes beside it */
		flip_byte(file, G_STRUCT_OFFSET(struct cursor_record, position));
		open_ok(dir, "d", 0, SPOOL_SYNC_NONE, &o);
		g_assert_cmpint(o.state, ==, CURSOR_DAMAGED);
		g_assert_nonnull(strstr(o.problem, "kept in corrupt/cursor-d.1"));
		g_assert_cmpuint(file_size(kept), ==, cases[i].len);
		g_assert_cmpuint(file_size(kept_again), ==, sizeof(struct cursor_record));
		closed(&o);
		remove_tree(dir);
	}
}

/* A cursor that cannot be opened or written is an error naming the file. */
static void test_cannot_open(void)
{
	g_autofree char *dir = make_dir();
	g_autofree char *in_the_way = path_in(dir, "cursor-x");
	g_autoptr(GError) error = NULL;
	enum cursor_state state;
	guint64 saved = 0;
	g_autofree char *problem = NULL;

	g_assert_cmpint(g_mkdir(in_the_way, 0750), ==, 0);
	int dirfd = open_dir_fd(dir);
	cursor *c = cursor_open(dirfd, dir, "x", 0, SPOOL_SYNC_NONE, &state, &saved, &problem,
				&error);
	g_assert_null(c);
	g_assert_error(error, CTFLOWD_ERROR, EISDIR);
	g_autofree char *want = g_strdup_printf("cannot open %s: %s", in_the_way,
						g_strerror(EISDIR));
	g_assert_cmpstr(error->message, ==, want);
	g_clear_error(&error);

	/* a directory that takes no new file (root may write anyway) */
	if (geteuid() != 0) {
		g_assert_cmpint(chmod(dir, 0500), ==, 0);
		c = cursor_open(dirfd, dir, "y", 0, SPOOL_SYNC_NONE, &state, &saved, &problem,
				&error);
		g_assert_null(c);
		g_assert_error(error, CTFLOWD_ERROR, EACCES);
		g_assert_nonnull(strstr(error->message, "cursor-y"));
		g_assert_cmpint(chmod(dir, 0750), ==, 0);
	}
	close(dirfd);
	remove_tree(dir);
}

/* ---- through the spool ----------------------------------------------------------- */

static spool *open_spool(const char *dir, enum spool_sync sync)
{
	g_autoptr(GError) error = NULL;
	spool *s = spool_open(dir, 1ull << 30, sync, &error);

	g_assert_no_error(error);
	g_assert_nonnull(s);
	return s;
}

static void append_numbered(spool *s, guint64 first, size_t n)
{
	g_autofree struct flow_record *recs = g_new(struct flow_record, n);

	load_fill(recs, first, n);
	spool_append(s, recs, n);
}

/* Reads from @from to the end; asserts it is exactly @from..@end-1. */
static void assert_reads_from(spool *s, guint reader, guint64 from, guint64 end)
{
	struct flow_record out[128];
	guint64 pos = from, want = from;

	for (;;) {
		size_t n = spool_read(s, reader, &pos, out, G_N_ELEMENTS(out), 0);
		if (!n)
			break;
		for (size_t i = 0; i < n; i++, want++)
			g_assert_true(load_record_is(&out[i], want));
	}
	g_assert_cmpuint(want, ==, end);
	g_assert_cmpuint(pos, ==, end);
}

/*
 * A worker killed at any point after spool_confirm() returned: the next
 * one resumes exactly at the confirmed position, neither behind it (the
 * destination has them) nor beyond it (records read but not confirmed
 * were not delivered).
 */
static void test_killed_resumes_at_confirmed(void)
{
	static const enum spool_sync modes[] = {SPOOL_SYNC_NONE, SPOOL_SYNC_BATCH,
						SPOOL_SYNC_RECORD};

	for (size_t m = 0; m < G_N_ELEMENTS(modes); m++) {
		g_autofree char *dir = make_dir();
		pid_t child = fork();

		g_assert_cmpint(child, >=, 0);
		if (child == 0) {
			spool *s = open_spool(dir, modes[m]);
			guint d = spool_add_reader_named(s, "d");
			guint e = spool_add_reader_named(s, "e");
			struct flow_record out[1000];
			guint64 pos = 0;
			append_numbered(s, 0, 1000);
			if (spool_read(s, d, &pos, out, 600, 0) != 600)
				_exit(10);
			spool_confirm(s, d, 400);
			spool_confirm(s, d, 600);
			spool_confirm(s, d, 300);   /* backwards: ignored */
			/* read further, not confirmed: a send in flight */
			if (spool_read(s, d, &pos, out, 300, 0) != 300)
				_exit(11);
			spool_confirm(s, e, 5000);  /* past the end: as far as the end */
			if (spool_confirmed(s, e) != 1000)
				_exit(12);
			raise(SIGKILL);
			_exit(13);
		}
		int status;
		g_assert_cmpint(waitpid(child, &status, 0), ==, child);
		g_assert_true(WIFSIGNALED(status));
		g_assert_cmpint(WTERMSIG(status), ==, SIGKILL);

		spool *s = open_spool(dir, modes[m]);
		guint d = spool_add_reader_named(s, "d");
		guint e = spool_add_reader_named(s, "e");
		g_assert_cmpuint(spool_end(s), ==, 1000);
		g_assert_cmpuint(spool_confirmed(s, d), ==, 600);
		g_assert_cmpuint(spool_confirmed(s, e), ==, 1000);
		g_assert_cmpuint(spool_lost(s, d), ==, 0);
		assert_reads_from(s, d, spool_confirmed(s, d), 1000);
		spool_free(s);
		remove_tree(dir);
	}
}

/*
 * A damaged cursor after a kill: the reader replays from the oldest record
 * held, which is never past what it had confirmed, and the other readers
 * keep their own positions.
 */
static void test_damaged_replays_oldest(void)
{
	g_autofree char *dir = make_dir();
	g_autofree char *file = path_in(dir, "cursor-d");
	pid_t child = fork();

	g_assert_cmpint(child, >=, 0);
	if (child == 0) {
		spool *s = open_spool(dir, SPOOL_SYNC_RECORD);
		guint d = spool_add_reader_named(s, "d");
		guint e = spool_add_reader_named(s, "e");
		append_numbered(s, 0, 500);
		spool_confirm(s, d, 450);
		spool_confirm(s, e, 120);
		raise(SIGKILL);
		_exit(1);
	}
	int status;
	g_assert_cmpint(waitpid(child, &status, 0), ==, child);
	g_assert_true(WIFSIGNALED(status));

	/* the torn write a crash can leave: half of a new record */
	struct cursor_record newer = good_record(490);
	patch_file(file, 0, &newer, sizeof(newer) / 2);
	spool *s = open_spool(dir, SPOOL_SYNC_RECORD);
	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING,
			      "*cursor-d: fails its CRC (it says position *); its 24 bytes are kept in"
			      " corrupt/cursor-d; d starts from the oldest record held (0, 500"
			      " records to send)");
	guint d = spool_add_reader_named(s, "d");
	guint e = spool_add_reader_named(s, "e");
	g_test_assert_expected_messages();
	g_assert_cmpuint(spool_confirmed(s, d), ==, 0);
	g_assert_cmpuint(spool_confirmed(s, e), ==, 120);
	assert_reads_from(s, d, 0, 500);
	assert_reads_from(s, e, 120, 500);
	/* the position it starts from was written back: a second restart
	 * does not need to guess again */
	spool_free(s);
	s = open_spool(dir, SPOOL_SYNC_RECORD);
	d = spool_add_reader_named(s, "d");
	g_assert_cmpuint(spool_confirmed(s, d), ==, 0);
	spool_free(s);
	remove_tree(dir);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);

	g_test_add_func("/cursor/new-then-saved", test_new_then_saved);
	g_test_add_func("/cursor/names-apart", test_names_apart);
	g_test_add_func("/cursor/damage", test_damage);
	g_test_add_func("/cursor/cannot-open", test_cannot_open);
	g_test_add_func("/cursor/spool/killed-resumes-at-confirmed",
			test_killed_resumes_at_confirmed);
	g_test_add_func("/cursor/spool/damaged-replays-oldest", test_damaged_replays_oldest);

	return g_test_run();
}
