/*
 * test_conn_state.c - the table of connections with interim records.
 *
 * The table is checked against a plain hash table doing the same inserts
 * and removals in random order (removals move the last entry into the
 * hole, and the index shifts probe chains back: both must keep every
 * entry findable), and snapshots against what went in.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "ctflowd/conn_state.h"
#include "ctflowd/error.h"
#include "ctflowd/state_dir.h"
#include "test_files.h"
#include "src/spool/crc32c.h"

static struct flow_record conn(guint32 k)
{
	struct flow_record r = {
		.start_ns = 1700000000000000000ull + (guint64)k * 7919,
		.ct_id = k * 2654435761u,
		.family = 2,
		.proto = 17,
		.orig = {.sport = (guint16)k, .dport = 53},
		.end_reason = FLOW_END_ACTIVE_TIMEOUT,
		.event = FLOW_EVENT_DUMP,
	};

	r.orig.src[0] = 10;
	r.orig.src[1] = (guint8)(k >> 16);
	r.end_ns = r.start_ns + 10;
	r.packets = k + 1;
	r.bytes = 100ull * k;
	r.reply_packets = k / 2;
	r.reply_bytes = 50ull * k;
	r.flow_id = 1000000 + k;
	return r;
}

static void check_entry(const struct conn_state_entry *e, guint32 k)
{
	struct flow_record r = conn(k);

	g_assert_nonnull(e);
	g_assert_cmpuint(e->start_ns, ==, r.start_ns);
	g_assert_cmpuint(e->flow_id, ==, r.flow_id);
	g_assert_cmpuint(e->bytes, ==, r.bytes);
	g_assert_cmpuint(e->reply_bytes, ==, r.reply_bytes);
	g_assert_cmpuint(e->last_ns, ==, r.end_ns);
}

static void test_random_against_model(void)
{
	conn_state *cs = conn_state_new();
	g_autoptr(GHashTable) model = g_hash_table_new(NULL, NULL);
	GRand *rand = g_rand_new_with_seed(42);

	for (int step = 0; step < 300000; step++) {
		guint32 k = g_rand_int_range(rand, 0, 40000);
		struct flow_record r = conn(k);
		if (g_rand_int_range(rand, 0, 3)) {
			g_assert_true(conn_state_apply(cs, &r));
			g_hash_table_add(model, GUINT_TO_POINTER(k + 1));
		} else {
			r.event = FLOW_EVENT_DESTROY;
			gboolean had = g_hash_table_remove(model, GUINT_TO_POINTER(k + 1));
			g_assert_cmpint(conn_state_apply(cs, &r), ==, had);
		}
		if (step % 50000 == 0 || step == 299999) {
			g_assert_cmpuint(conn_state_size(cs), ==, g_hash_table_size(model));
			for (guint32 j = 0; j < 40000; j++) {
				struct flow_record q = conn(j);
				struct conn_state_entry *e = conn_state_find(cs, &q);
				if (g_hash_table_contains(model, GUINT_TO_POINTER(j + 1)))
					check_entry(e, j);
				else
					g_assert_null(e);
			}
		}
	}
	/* another connection with the same identity hash but another start is
	 * another connection */
	struct flow_record other = conn(1);
	other.start_ns++;
	g_assert_null(conn_state_find(cs, &other));
	g_rand_free(rand);
	conn_state_free(cs);
}

/* Memory stays near the 72 bytes of an entry: a benchmark measures the
 * daemon; this keeps the table's own layout from drifting. */
static void test_memory_per_entry(void)
{
	conn_state *cs = conn_state_new();

	for (guint32 k = 0; k < 300000; k++) {
		struct flow_record r = conn(k);
		conn_state_apply(cs, &r);
	}
	gsize per = conn_state_memory(cs) / conn_state_size(cs);
	g_test_message("%" G_GSIZE_FORMAT " bytes per connection at 300,000", per);
	g_assert_cmpuint(per, <=, 100);
	/* removing most gives memory back */
	for (guint32 k = 0; k < 290000; k++) {
		struct flow_record r = conn(k);
		r.event = FLOW_EVENT_DESTROY;
		conn_state_apply(cs, &r);
	}
	g_assert_cmpuint(conn_state_size(cs), ==, 10000);
	g_assert_cmpuint(conn_state_memory(cs), <, 8u << 20);
	conn_state_free(cs);
}

/* A snapshot written and loaded back holds the same connections and says
 * what it covers; a missing file is an empty table covering nothing; a
 * damaged one, a link or a repeat is refused with a reason. */
static void test_snapshot_files(void)
{
	g_autofree char *dir = make_dir();
	g_autoptr(GError) error = NULL;
	int dirfd = state_dir_open(dir, FALSE, &error);
	g_assert_no_error(error);
	guint64 covered = 0;

	conn_state *none = conn_state_load(dirfd, dir, "interim-state", &covered, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(conn_state_size(none), ==, 0);
	g_assert_cmpuint(covered, ==, G_MAXUINT64);
	conn_state_free(none);

	conn_state *cs = conn_state_new();
	for (guint32 k = 0; k < 5000; k++) {
		struct flow_record r = conn(k);
		conn_state_apply(cs, &r);
	}
	g_autoptr(GBytes) snap = conn_state_snapshot(cs, 777);
	gsize len;
	const guint8 *data = g_bytes_get_data(snap, &len);
	g_assert_true(state_dir_replace_file(dirfd, dir, "interim-state", data, len, 0640, &error));
	g_assert_no_error(error);
	conn_state *back = conn_state_load(dirfd, dir, "interim-state", &covered, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(covered, ==, 777);
	g_assert_cmpuint(conn_state_size(back), ==, 5000);
	for (guint32 k = 0; k < 5000; k++) {
		struct flow_record q = conn(k);
		check_entry(conn_state_find(back, &q), k);
	}
	conn_state_free(back);

	/* damage: one flipped byte in an entry, a cut tail, a repeat */
	g_autofree guint8 *bad = g_memdup2(data, len);
	bad[40 + 72 * 3 + 5] ^= 1;
	g_assert_null(conn_state_parse(bad, len, "flipped", &covered, &error));
	g_assert_error(error, CTFLOWD_ERROR, EINVAL);
	g_assert_nonnull(strstr(error->message, "flipped: entries fail their CRC"));
	g_clear_error(&error);
	g_assert_null(conn_state_parse(data, len - 1, "cut", &covered, &error));
	g_assert_nonnull(strstr(error->message, "cut: its length does not match"));
	g_clear_error(&error);

	/* a symbolic link in its place is not followed */
	g_autofree char *path = g_build_filename(dir, "interim-state", NULL);
	g_autofree char *elsewhere = g_build_filename(dir, "elsewhere", NULL);
	g_assert_cmpint(g_rename(path, elsewhere), ==, 0);
	g_assert_cmpint(symlink(elsewhere, path), ==, 0);
	g_assert_null(conn_state_load(dirfd, dir, "interim-state", &covered, &error));
	g_assert_nonnull(error);
	g_test_message("link: %s", error->message);
	g_clear_error(&error);

	close(dirfd);
	conn_state_free(cs);
	remove_tree(dir);
}

/* @data's header with @version, its CRC made right again. */
static guint8 *with_version(const guint8 *data, gsize len, guint32 version)
{
	guint8 *copy = g_memdup2(data, len);
	guint32 crc = 0;

	memcpy(copy + 4, &version, 4);
	memcpy(copy + 12, &crc, 4);
	crc = crc32c(0, copy, 40);
	memcpy(copy + 12, &crc, 4);
	return copy;
}

/*
 * NAT session entries sit beside interim ones (start 0, their own key)
 * and go through snapshots; version 1 files (before NAT entries) still
 * read, and a later version is refused with a message that says so.
 */
static void test_snapshot_versions(void)
{
	g_autoptr(GError) error = NULL;
	conn_state *cs = conn_state_new();
	guint64 covered = 0;

	for (guint32 k = 0; k < 100; k++) {
		struct flow_record r = conn(k);
		conn_state_apply(cs, &r);
		r.event = FLOW_EVENT_NEW;   /* the same connection's NAT create */
		r.end_reason = 0;
		r.end_ns = r.start_ns + 5;
		conn_state_apply(cs, &r);
	}
	g_assert_cmpuint(conn_state_size(cs), ==, 200);
	struct flow_record q = conn(7);
	struct conn_state_entry *n = conn_state_find_nat(cs, &q);
	g_assert_nonnull(n);
	g_assert_cmpuint(n->flags, ==, CONN_NAT_CREATED);
	g_assert_cmpuint(n->start_ns, ==, 0);
	g_assert_cmpuint(n->last_ns, ==, q.start_ns + 5);
	check_entry(conn_state_find(cs, &q), 7);

	g_autoptr(GBytes) snap = conn_state_snapshot(cs, 9);
	gsize len;
	const guint8 *data = g_bytes_get_data(snap, &len);
	conn_state *back = conn_state_parse(data, len, "v2", &covered, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(conn_state_size(back), ==, 200);
	g_assert_cmpmem(conn_state_find_nat(back, &q), sizeof(*n), n, sizeof(*n));
	conn_state_free(back);

	g_autofree guint8 *v1 = with_version(data, len, 1);
	back = conn_state_parse(v1, len, "v1", &covered, &error);
	g_assert_no_error(error);
	conn_state_free(back);
	g_autofree guint8 *v3 = with_version(data, len, 3);
	g_assert_null(conn_state_parse(v3, len, "v3", &covered, &error));
	g_assert_error(error, CTFLOWD_ERROR, EINVAL);
	g_assert_nonnull(strstr(error->message, "v3: snapshot format version 3, written by a later"
				" ctflowd; this build reads versions 1 to 2"));

	/* a DESTROY removes both entries of its connection */
	struct flow_record end = conn(7);
	end.event = FLOW_EVENT_DESTROY;
	end.end_reason = FLOW_END_IDLE_TIMEOUT;
	memcpy(end.reply.src, end.orig.dst, 16);
	end.reply.dst[0] = 198;   /* translated: the NAT key goes too */
	g_assert_true(conn_state_apply(cs, &end));
	g_assert_null(conn_state_find(cs, &q));
	g_assert_null(conn_state_find_nat(cs, &q));
	g_assert_cmpuint(conn_state_size(cs), ==, 198);
	conn_state_free(cs);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/conn_state/random-against-model", test_random_against_model);
	g_test_add_func("/conn_state/memory-per-entry", test_memory_per_entry);
	g_test_add_func("/conn_state/snapshot-files", test_snapshot_files);
	g_test_add_func("/conn_state/snapshot-versions", test_snapshot_versions);
	return g_test_run();
}
