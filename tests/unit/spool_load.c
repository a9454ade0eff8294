/*
 * spool_load.c - see spool_load.h.
 */
#include <string.h>

#include "spool_load.h"

#define MAX_READERS 4

void load_fill(struct flow_record *out, guint64 first, size_t n)
{
	memset(out, 0, n * sizeof(*out));
	for (size_t i = 0; i < n; i++) {
		out[i].flow_id = first + i;
		out[i].ct_id = (guint32)((first + i) * 2654435761u) ^ 0x5a5a5a5au;
		out[i].bytes = ~(first + i);
	}
}

gboolean load_record_is(const struct flow_record *r, guint64 want)
{
	return r->flow_id == want && r->ct_id == ((guint32)(want * 2654435761u) ^ 0x5a5a5a5au) &&
	       r->bytes == ~want;
}

static gpointer read_all(gpointer data)
{
	struct load_reader *c = data;
	g_autofree struct flow_record *out = g_new(struct flow_record, c->max);
	guint64 pos = spool_confirmed(c->s, c->reader);
	guint reads = 0;

	c->ok = TRUE;
	/* the reader was added before the first append; what the appender
	 * dropped before this thread got going is a gap like any other */
	c->next = 0;
	for (;;) {
		size_t n = spool_read(c->s, c->reader, &pos, out, c->max,
				      g_get_monotonic_time() + G_USEC_PER_SEC);
		if (!n) {
			if (spool_is_closed(c->s) && pos == spool_end(c->s)) {
				/* records dropped after the last one read */
				c->gaps += pos - c->next;
				break;
			}
			continue;
		}
		guint64 first = out[0].flow_id;
		if (first < c->next || pos != first + n) {
			c->ok = FALSE;
			break;
		}
		for (size_t i = 0; i < n; i++)
			if (!load_record_is(&out[i], first + i))
				c->ok = FALSE;
		c->gaps += first - c->next;
		c->delivered += n;
		c->next = first + n;
		spool_confirm(c->s, c->reader, pos);
		if (c->slow && ++reads % 8 == 0)
			g_usleep(300);
	}
	return NULL;
}

void load_run(spool *s, guint64 total, struct load_reader *readers, size_t n, gboolean named)
{
	GThread *threads[MAX_READERS];
	g_autofree struct flow_record *batch = g_new(struct flow_record, 300);

	g_assert_cmpuint(n, <=, MAX_READERS);
	for (size_t i = 0; i < n; i++) {
		g_autofree char *name = g_strdup_printf("consumer-%zu", i);
		readers[i].s = s;
		readers[i].reader = named ? spool_add_reader_named(s, name) : spool_add_reader(s);
	}
	for (size_t i = 0; i < n; i++)
		threads[i] = g_thread_new("consumer", read_all, &readers[i]);
	for (guint64 done = 0; done < total;) {
		size_t take = (size_t)MIN(total - done, 1 + done % 300);
		load_fill(batch, done, take);
		spool_append(s, batch, take);
		done += take;
	}
	spool_close(s);
	for (size_t i = 0; i < n; i++) {
		g_thread_join(threads[i]);
		readers[i].lost = spool_lost(s, readers[i].reader);
	}
}
