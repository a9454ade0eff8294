/*
 * ct_labels.c - labels from NEW events, for the DESTROY of the connection.
 *
 * A connection is known by the fingerprint of its conntrack id, original
 * tuple and zone (flow_connection_key() without the start time, which a
 * NEW does not carry).
 */
#include <string.h>

#include "ctflowd/ct_labels.h"

struct memo {
	guint64 key;       /* the hash table's key points here */
	guint8 labels[16];
};

struct ct_labels {
	GHashTable *memos;   /* &memo.key -> struct memo */
	guint max;
	guint64 refused;
	gboolean full_logged;
};


ct_labels *ct_labels_new(guint max)
{
	ct_labels *l = g_new0(ct_labels, 1);

	l->memos = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, g_free);
	l->max = max;
	return l;
}

static gboolean any_set(const guint8 labels[16])
{
	static const guint8 none[16];

	return memcmp(labels, none, sizeof(none)) != 0;
}

gboolean ct_labels_track(ct_labels *l, struct flow_record *r)
{
	guint64 key = flow_connection_key(r, false);

	if (r->event == FLOW_EVENT_DESTROY) {
		struct memo *m = g_hash_table_lookup(l->memos, &key);
		gboolean filled = m && !(r->flags & FLOW_HAS_LABELS);
		if (filled) {
			memcpy(r->labels, m->labels, sizeof(r->labels));
			r->flags |= FLOW_HAS_LABELS;
		}
		if (m)
			g_hash_table_remove(l->memos, &key);
		return filled;
	}
	if (!(r->flags & FLOW_HAS_LABELS))
		return FALSE;
	if (!any_set(r->labels)) {
		g_hash_table_remove(l->memos, &key);
		return FALSE;
	}
	struct memo *m = g_hash_table_lookup(l->memos, &key);
	if (!m) {
		if (g_hash_table_size(l->memos) >= l->max) {
			if (!l->full_logged)
				g_warning("conntrack labels of %u connections are remembered for their"
					  " end, the most there is room for: the records of further"
					  " labelled connections will have no labels",
					  l->max);
			l->full_logged = TRUE;
			l->refused++;
			return FALSE;
		}
		m = g_new(struct memo, 1);
		m->key = key;
		g_hash_table_insert(l->memos, &m->key, m);
	}
	memcpy(m->labels, r->labels, sizeof(m->labels));
	return FALSE;
}

guint ct_labels_size(const ct_labels *l)
{
	return g_hash_table_size(l->memos);
}

guint64 ct_labels_refused(const ct_labels *l)
{
	return l->refused;
}

void ct_labels_free(ct_labels *l)
{
	if (!l)
		return;
	g_hash_table_destroy(l->memos);
	g_free(l);
}
