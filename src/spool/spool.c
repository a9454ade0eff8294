/*
 * spool.c - records waiting for their destinations, in memory.
 *
 * Records live in fixed chunks so that appending costs a copy and, once per
 * chunk, an allocation; a chunk is freed when every reader has confirmed all
 * of it.  One mutex guards everything: the netlink thread holds it for one
 * memcpy per batch, export threads for one copy per read.
 */
#include <string.h>

#include "ctflowd/spool.h"

#define CHUNK_RECORDS 4096u

struct chunk {
	guint64 first;   /* position of records[0] */
	guint n;
	struct flow_record records[CHUNK_RECORDS];
};

struct reader {
	guint64 confirmed;
	guint64 lost;
};

struct spool {
	GMutex lock;
	GCond cond;
	GPtrArray *chunks;     /* struct chunk *, oldest first, all full but the last */
	struct chunk *spare;   /* one freed chunk kept to avoid malloc churn */
	guint64 base;          /* oldest position held */
	guint64 end;           /* one past the newest */
	guint64 max_records;
	GArray *readers;       /* struct reader */
	guint waiting;
	gboolean closed;
};

spool *spool_new(guint64 max_bytes)
{
	spool *s = g_new0(spool, 1);

	g_mutex_init(&s->lock);
	g_cond_init(&s->cond);
	s->chunks = g_ptr_array_new();
	s->readers = g_array_new(FALSE, TRUE, sizeof(struct reader));
	s->max_records = max_bytes / sizeof(struct flow_record);
	/* two chunks at least, so the one being filled is never the one dropped */
	s->max_records = MAX(s->max_records, 2ull * CHUNK_RECORDS);
	s->max_records -= s->max_records % CHUNK_RECORDS;
	return s;
}

guint spool_add_reader(spool *s)
{
	struct reader r = {0};

	g_mutex_lock(&s->lock);
	r.confirmed = s->end;
	g_array_append_val(s->readers, r);
	guint idx = s->readers->len - 1;
	g_mutex_unlock(&s->lock);
	return idx;
}

static struct reader *reader_at(spool *s, guint idx)
{
	return &g_array_index(s->readers, struct reader, idx);
}

static void release_chunk(spool *s, struct chunk *c)
{
	if (!s->spare)
		s->spare = c;
	else
		g_free(c);
}

/* Drops the oldest chunk to make room; readers that had not confirmed its
 * records lose them, and say so in their counters. */
static void drop_oldest(spool *s)
{
	struct chunk *c = g_ptr_array_index(s->chunks, 0);
	guint64 new_base = c->first + c->n;

	for (guint i = 0; i < s->readers->len; i++) {
		struct reader *r = reader_at(s, i);
		if (r->confirmed < new_base) {
			r->lost += new_base - MAX(r->confirmed, s->base);
			r->confirmed = new_base;
		}
	}
	g_ptr_array_remove_index(s->chunks, 0);
	s->base = new_base;
	release_chunk(s, c);
}

static struct chunk *tail_with_room(spool *s)
{
	if (s->chunks->len) {
		struct chunk *t = g_ptr_array_index(s->chunks, s->chunks->len - 1);
		if (t->n < CHUNK_RECORDS)
			return t;
	}
	if ((guint64)s->chunks->len * CHUNK_RECORDS >= s->max_records)
		drop_oldest(s);
	struct chunk *c = s->spare ? s->spare : g_malloc(sizeof(struct chunk));
	s->spare = NULL;
	c->first = s->end;
	c->n = 0;
	g_ptr_array_add(s->chunks, c);
	return c;
}

void spool_append(spool *s, const struct flow_record *records, size_t n)
{
	if (!n)
		return;
	g_mutex_lock(&s->lock);
	if (s->closed) {
		g_mutex_unlock(&s->lock);
		g_critical("records appended to a closed spool");
		return;
	}
	while (n) {
		struct chunk *c = tail_with_room(s);
		guint take = MIN((guint)MIN(n, G_MAXUINT), CHUNK_RECORDS - c->n);
		memcpy(&c->records[c->n], records, take * sizeof(*records));
		c->n += take;
		s->end += take;
		records += take;
		n -= take;
	}
	if (s->waiting)
		g_cond_broadcast(&s->cond);
	g_mutex_unlock(&s->lock);
}

static size_t copy_out(spool *s, guint64 pos, struct flow_record *out, size_t max)
{
	size_t copied = 0;
	struct chunk *first = g_ptr_array_index(s->chunks, 0);
	guint idx = (guint)((pos - first->first) / CHUNK_RECORDS);

	while (copied < max && idx < s->chunks->len) {
		struct chunk *c = g_ptr_array_index(s->chunks, idx);
		guint off = (guint)(pos - c->first);
		size_t take = MIN(max - copied, (size_t)(c->n - off));
		memcpy(out + copied, &c->records[off], take * sizeof(*out));
		copied += take;
		pos += take;
		idx++;
	}
	return copied;
}

size_t spool_read(spool *s, guint reader, guint64 *pos, struct flow_record *out, size_t max,
		  gint64 deadline_us)
{
	size_t n = 0;

	g_mutex_lock(&s->lock);
	for (;;) {
		if (*pos < s->base)
			*pos = s->base;
		if (*pos < s->end) {
			n = copy_out(s, *pos, out, max);
			*pos += n;
			break;
		}
		if (s->closed || !max)
			break;
		s->waiting++;
		gboolean signalled = g_cond_wait_until(&s->cond, &s->lock, deadline_us);
		s->waiting--;
		if (!signalled && g_get_monotonic_time() >= deadline_us)
			break;
	}
	g_mutex_unlock(&s->lock);
	(void)reader;
	return n;
}

void spool_confirm(spool *s, guint reader, guint64 upto)
{
	g_mutex_lock(&s->lock);
	struct reader *r = reader_at(s, reader);
	if (upto > r->confirmed)
		r->confirmed = MIN(upto, s->end);

	guint64 low = G_MAXUINT64;
	for (guint i = 0; i < s->readers->len; i++)
		low = MIN(low, reader_at(s, i)->confirmed);
	while (s->chunks->len) {
		struct chunk *c = g_ptr_array_index(s->chunks, 0);
		/* keep the chunk being filled: appends go there */
		if (c->n < CHUNK_RECORDS || c->first + c->n > low)
			break;
		g_ptr_array_remove_index(s->chunks, 0);
		s->base = c->first + c->n;
		release_chunk(s, c);
	}
	g_mutex_unlock(&s->lock);
}

guint64 spool_confirmed(spool *s, guint reader)
{
	g_mutex_lock(&s->lock);
	guint64 v = reader_at(s, reader)->confirmed;
	g_mutex_unlock(&s->lock);
	return v;
}

guint64 spool_end(spool *s)
{
	g_mutex_lock(&s->lock);
	guint64 v = s->end;
	g_mutex_unlock(&s->lock);
	return v;
}

guint64 spool_lost(spool *s, guint reader)
{
	g_mutex_lock(&s->lock);
	guint64 v = reader_at(s, reader)->lost;
	g_mutex_unlock(&s->lock);
	return v;
}

void spool_close(spool *s)
{
	g_mutex_lock(&s->lock);
	s->closed = TRUE;
	g_cond_broadcast(&s->cond);
	g_mutex_unlock(&s->lock);
}

gboolean spool_is_closed(spool *s)
{
	g_mutex_lock(&s->lock);
	gboolean v = s->closed;
	g_mutex_unlock(&s->lock);
	return v;
}

void spool_free(spool *s)
{
	if (!s)
		return;
	for (guint i = 0; i < s->chunks->len; i++)
		g_free(g_ptr_array_index(s->chunks, i));
	g_ptr_array_free(s->chunks, TRUE);
	g_free(s->spare);
	g_array_free(s->readers, TRUE);
	g_mutex_clear(&s->lock);
	g_cond_clear(&s->cond);
	g_free(s);
}
