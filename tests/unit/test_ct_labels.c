/*
 * test_ct_labels.c - labels from NEW events given to the DESTROY of the
 * same connection, and only to it, in bounded memory.
 */
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include <glib.h>

#include "ctflowd/ct_labels.h"

static struct flow_record record(enum flow_event event, guint32 id, guint16 sport)
{
	struct flow_record r;

	memset(&r, 0, sizeof(r));
	r.event = event;
	r.ct_id = id;
	r.family = AF_INET;
	r.proto = 17;
	inet_pton(AF_INET, "192.0.2.1", r.orig.src);
	inet_pton(AF_INET, "198.51.100.1", r.orig.dst);
	r.orig.sport = sport;
	r.orig.dport = 53;
	if (event == FLOW_EVENT_DESTROY) {
		r.start_ns = 1700000000000000000ull;
		r.end_ns = r.start_ns + 1000;
	}
	return r;
}

static struct flow_record with_labels(struct flow_record r, guint8 first, guint8 last)
{
	r.labels[0] = first;
	r.labels[15] = last;
	r.flags |= FLOW_HAS_LABELS;
	return r;
}

static void test_new_then_destroy(void)
{
	ct_labels *l = ct_labels_new(16);
	struct flow_record n = with_labels(record(FLOW_EVENT_NEW, 7, 1000), 0x08, 0x80);
	struct flow_record d = record(FLOW_EVENT_DESTROY, 7, 1000);
	struct flow_record other = record(FLOW_EVENT_DESTROY, 8, 1000);

	g_assert_false(ct_labels_track(l, &n));
	g_assert_cmpuint(ct_labels_size(l), ==, 1);
	/* another connection (another id) gets nothing */
	g_assert_false(ct_labels_track(l, &other));
	g_assert_false(other.flags & FLOW_HAS_LABELS);
	g_assert_true(ct_labels_track(l, &d));
	g_assert_true(d.flags & FLOW_HAS_LABELS);
	g_assert_cmpuint(d.labels[0], ==, 0x08);
	g_assert_cmpuint(d.labels[15], ==, 0x80);
	/* given once: a repeated DESTROY gets none */
	g_assert_cmpuint(ct_labels_size(l), ==, 0);
	struct flow_record again = record(FLOW_EVENT_DESTROY, 7, 1000);
	g_assert_false(ct_labels_track(l, &again));
	g_assert_false(again.flags & FLOW_HAS_LABELS);
	ct_labels_free(l);
}

static void test_updates(void)
{
	ct_labels *l = ct_labels_new(16);
	struct flow_record n = with_labels(record(FLOW_EVENT_NEW, 7, 1000), 0x01, 0);
	struct flow_record u = with_labels(record(FLOW_EVENT_UPDATE, 7, 1000), 0x02, 0);
	struct flow_record cleared = with_labels(record(FLOW_EVENT_DUMP, 7, 1000), 0, 0);
	struct flow_record plain = record(FLOW_EVENT_NEW, 9, 1000);
	struct flow_record d = record(FLOW_EVENT_DESTROY, 7, 1000);

	ct_labels_track(l, &n);
	ct_labels_track(l, &u);   /* the newest labels win */
	g_assert_true(ct_labels_track(l, &d));
	g_assert_cmpuint(d.labels[0], ==, 0x02);

	/* labels cleared since: forgotten, nothing to give */
	ct_labels_track(l, &n);
	ct_labels_track(l, &cleared);
	g_assert_cmpuint(ct_labels_size(l), ==, 0);
	/* a NEW without labels takes no room */
	ct_labels_track(l, &plain);
	g_assert_cmpuint(ct_labels_size(l), ==, 0);

	/* a DESTROY that has labels of its own keeps them, and the memo goes */
	ct_labels_track(l, &n);
	struct flow_record own = with_labels(record(FLOW_EVENT_DESTROY, 7, 1000), 0x40, 0);
	g_assert_false(ct_labels_track(l, &own));
	g_assert_cmpuint(own.labels[0], ==, 0x40);
	g_assert_cmpuint(ct_labels_size(l), ==, 0);
	ct_labels_free(l);
}

static void test_bounded(void)
{
	ct_labels *l = ct_labels_new(4);

	for (guint16 i = 0; i < 6; i++) {
		struct flow_record n = with_labels(record(FLOW_EVENT_NEW, i, 1000 + i), 1, 0);
		/* said once, not for every connection refused */
		if (i == 4)
			g_test_expect_message("ctflowd", G_LOG_LEVEL_WARNING, "*labels of 4 connections*");
		ct_labels_track(l, &n);
		if (i == 4)
			g_test_assert_expected_messages();
	}
	g_assert_cmpuint(ct_labels_size(l), ==, 4);
	g_assert_cmpuint(ct_labels_refused(l), ==, 2);
	/* the first four get theirs, the last two none */
	for (guint16 i = 0; i < 6; i++) {
		struct flow_record d = record(FLOW_EVENT_DESTROY, i, 1000 + i);
		g_assert_cmpint(ct_labels_track(l, &d), ==, i < 4);
	}
	ct_labels_free(l);
	ct_labels_free(NULL);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/ct_labels/new-then-destroy", test_new_then_destroy);
	g_test_add_func("/ct_labels/updates", test_updates);
	g_test_add_func("/ct_labels/bounded", test_bounded);
	return g_test_run();
}
