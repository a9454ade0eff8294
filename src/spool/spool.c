/*
 * spool.c - records waiting for their destinations: in memory, and for a
 * durable spool also in a journal on disk (journal.c) with each named
 * reader's confirmed position beside it (cursor.c).
 *
 * Records live in fixed chunks so that appending costs a copy and, once per
 * chunk, an allocation; a chunk is freed when every reader has confirmed all
 * of it.  In a durable spool the chunks are a bounded cache of the newest
 * records, so a reader that keeps up never touches the disk; older records
 * are read back from the journal.
 *
 * Locking: the spool's mutex guards its own state: the chunks, the readers
 * and the end.  It also keeps what is held consistent across cache and
 * journal: everything that changes which positions the journal holds (an
 * append made visible, a segment taken off the list) happens with it held,
 * so that a decision taken under it sees cache and journal as one.  The
 * journal guards its own segment list with its own lock, which is always
 * taken last (journal.h).  File I/O runs outside the spool's mutex, so a
 * reader busy on the disk never holds up the netlink thread.
 *
 * A position is held while it is in a journal segment or in the cache.
 * When a held position stops being held before every reader confirmed it
 * (the size bound, or a record the journal could not take falling out of
 * memory), release() counts it against each reader that had not confirmed
 * it, once, and says so.
 */
#include <string.h>

#include "ctflowd/spool.h"
#include "cursor.h"
#include "journal.h"
#include "spool_tuning.h"

#define CHUNK_RECORDS 4096u
#define DEFAULT_CACHE_BYTES (64ull << 20)
/* After a failed journal write, the next attempt waits this long: a full
 * disk must not cost a failing system call per netlink batch. */
#define JOURNAL_RETRY_US G_USEC_PER_SEC
#define RECENT_BATCH 256u
#define NO_READER G_MAXUINT

struct chunk {
	guint64 first;   /* position of records[0] */
	guint n;
	struct flow_record records[CHUNK_RECORDS];
};

struct reader {
	guint64 confirmed;
	guint64 stored;           /* durable: what its cursor holds (<= confirmed) */
	guint64 lost;
	char *name;               /* NULL: unnamed */
	cursor *cursor;           /* named readers of a durable spool */
	gboolean store_failing;   /* its own thread only: report a failing cursor once */
};

struct spool {
	GMutex lock;
	GCond cond;
	GPtrArray *chunks;     /* struct chunk *, oldest first, all full but the last */
	struct chunk *spare;   /* one freed chunk kept to avoid malloc churn */
	guint64 base;          /* in memory: oldest position held */
	guint64 end;           /* one past the newest */
	guint64 max_records;   /* in memory: the bound; durable: the cache's size */
	GPtrArray *readers;    /* struct reader *: stays put while its thread runs */
	guint waiting;
	gboolean closed;
	guint64 dropped_total;

	journal *journal;      /* NULL: in memory only */
	enum spool_sync sync;
	guint64 max_bytes;
	/* appending thread only */
	gint64 journal_retry_us;   /* set while the journal fails: no attempt before it */
	guint64 unjournaled;       /* records kept in memory only since it failed */
};

static spool *spool_alloc(void)
{
	spool *s = g_new0(spool, 1);

	g_mutex_init(&s->lock);
	g_cond_init(&s->cond);
	s->chunks = g_ptr_array_new();
	s->readers = g_ptr_array_new();
	return s;
}

static guint64 records_for(guint64 bytes)
{
	guint64 n = bytes / sizeof(struct flow_record);

	/* two chunks at least, so the one being filled is never the one dropped */
	n = MAX(n, 2ull * CHUNK_RECORDS);
	return n - n % CHUNK_RECORDS;
}

spool *spool_new(guint64 max_bytes)
{
	spool *s = spool_alloc();

	s->max_bytes = max_bytes;
	s->max_records = records_for(max_bytes);
	return s;
}

spool *spool_open_tuned(const char *dir, guint64 max_bytes, enum spool_sync sync,
			const struct spool_tuning *tuning, GError **error)
{
	guint64 segment_bytes = tuning ? tuning->segment_bytes : 0;
	guint64 cache_bytes = tuning && tuning->cache_bytes ? tuning->cache_bytes :
							      DEFAULT_CACHE_BYTES;
	journal *j = journal_open(dir, max_bytes, segment_bytes, sync, error);

	if (!j)
		return NULL;
	spool *s = spool_alloc();
	s->journal = j;
	s->sync = sync;
	s->max_bytes = max_bytes;
	s->end = s->base = journal_end(j);
	s->max_records = records_for(MIN(cache_bytes, max_bytes));
	return s;
}

spool *spool_open(const char *dir, guint64 max_bytes, enum spool_sync sync, GError **error)
{
	return spool_open_tuned(dir, max_bytes, sync, NULL, error);
}

static struct reader *reader_at(spool *s, guint idx)
{
	return g_ptr_array_index(s->readers, idx);
}

static char *reader_label(spool *s, guint idx)
{
	struct reader *r = reader_at(s, idx);

	return r->name ? g_strdup(r->name) : g_strdup_printf("reader %u", idx);
}

/* ---- what is held ----------------------------------------------------------- */

static guint64 cache_first(spool *s)
{
	if (!s->chunks->len)
		return s->end;
	return ((struct chunk *)g_ptr_array_index(s->chunks, 0))->first;
}

/* The lowest held position >= @pos, or the end. */
static guint64 next_held(spool *s, guint64 pos)
{
	if (!s->journal)
		return MAX(pos, s->base);
	/* a reader that keeps up is served from the cache without asking the
	 * journal (and taking its lock) */
	if (pos >= cache_first(s))
		return MIN(pos, s->end);
	guint64 held = MIN(journal_next_held(s->journal, pos), cache_first(s));
	return MIN(held, s->end);
}

/* How many positions in [@from, @to) are held. */
static guint64 held_between(spool *s, guint64 from, guint64 to)
{
	if (from >= to)
		return 0;
	if (!s->journal)
		return to - MIN(MAX(from, s->base), to);
	guint64 held = journal_held_between(s->journal, from, to);
	guint64 c = MAX(from, cache_first(s));
	if (c < to)
		held += (to - c) - journal_held_between(s->journal, c, to);
	return held;
}

/*
 * Positions [@a, @b), all held until now, are gone.  Each reader that had
 * not confirmed some of them loses those; one whose confirmed position was
 * among them moves past, so that a rewind lands on something held.
 */
static void release(spool *s, guint64 a, guint64 b, const char *why)
{
	g_autoptr(GString) who = g_string_new(NULL);
	guint64 low = s->readers->len ? G_MAXUINT64 : a;

	for (guint i = 0; i < s->readers->len; i++) {
		struct reader *r = reader_at(s, i);
		low = MIN(low, r->confirmed);
		if (r->confirmed >= b)
			continue;
		guint64 lose = b - MAX(r->confirmed, a);
		r->lost += lose;
		if (r->confirmed >= a)
			r->confirmed = b;
		g_autofree char *label = reader_label(s, i);
		g_string_append_printf(who, "%s%s %" G_GUINT64_FORMAT, who->len ? ", " : "", label,
				       lose);
	}
	guint64 dropped = b - CLAMP(low, a, b);
	s->dropped_total += dropped;
	if (!dropped)
		return;
	if (s->journal)
		g_warning("spool: %s: %" G_GUINT64_FORMAT " records not yet delivered are gone"
			  " (positions %" G_GUINT64_FORMAT " to %" G_GUINT64_FORMAT "); lost for %s",
			  why, dropped, a, b - 1, who->len ? who->str : "no reader yet");
	else
		g_debug("spool: %s: %" G_GUINT64_FORMAT " records dropped", why, dropped);
}

/* ---- the chunks ------------------------------------------------------------- */

static void release_chunk(spool *s, struct chunk *c)
{
	if (!s->spare)
		s->spare = c;
	else
		g_free(c);
}

/* In memory: drops the oldest chunk to make room. */
static void drop_oldest_chunk(spool *s)
{
	struct chunk *c = g_ptr_array_index(s->chunks, 0);
	guint64 new_base = c->first + c->n;

	release(s, s->base, new_base, "spool full");
	g_ptr_array_remove_index(s->chunks, 0);
	s->base = new_base;
	release_chunk(s, c);
}

/* Durable: the oldest chunk leaves the cache; only records the journal
 * could not take are gone with it. */
static void evict_oldest_chunk(spool *s)
{
	struct chunk *c = g_ptr_array_index(s->chunks, 0);
	guint64 a = c->first, b = c->first + c->n;
	guint64 oldest_on_disk = journal_next_held(s->journal, 0);

	for (guint64 p = a; p < b;) {
		guint64 q = MIN(journal_next_held(s->journal, p), b);
		/* below the oldest segment: the size bound deleted theirs while
		 * the cache still had them (a cache larger than the bound) */
		if (q > p)
			release(s, p, q, q <= oldest_on_disk ?
				 "size bound reached, records left the memory cache" :
				 "records the journal could not take left the memory cache");
		if (q >= b)
			break;
		p = journal_next_unheld(s->journal, q);
	}
	g_ptr_array_remove_index(s->chunks, 0);
	release_chunk(s, c);
}

static struct chunk *tail_with_room(spool *s)
{
	if (s->chunks->len) {
		struct chunk *t = g_ptr_array_index(s->chunks, s->chunks->len - 1);
		if (t->n < CHUNK_RECORDS)
			return t;
	}
	if ((guint64)s->chunks->len * CHUNK_RECORDS >= s->max_records) {
		if (s->journal)
			evict_oldest_chunk(s);
		else
			drop_oldest_chunk(s);
	}
	struct chunk *c = s->spare ? s->spare : g_malloc(sizeof(struct chunk));
	s->spare = NULL;
	c->first = s->end;
	c->n = 0;
	g_ptr_array_add(s->chunks, c);
	return c;
}

/* Copies @n records to the chunks and publishes them (lock held). */
static void cache_append(spool *s, const struct flow_record *records, size_t n)
{
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

/* Frees cache chunks every reader has confirmed (lock held). */
static void free_confirmed_chunks(spool *s)
{
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
}

/* ---- the journal's segments -------------------------------------------------- */

/* Takes off the list the segments every reader's saved position is past
 * (lock held); the caller deletes them without the lock. */
static void collect_confirmed_segments(spool *s, GPtrArray *gone)
{
	guint64 low = G_MAXUINT64;

	/* with no reader yet, nothing is confirmed: readers of the last run
	 * come back by name */
	if (!s->readers->len)
		return;
	for (guint i = 0; i < s->readers->len; i++)
		low = MIN(low, reader_at(s, i)->stored);
	journal_detach_before(s->journal, low, gone);
}

/* The size bound: the oldest segment goes (lock held). */
static void drop_oldest_segment(spool *s, GPtrArray *gone)
{
	guint64 a, end;
	const char *name = journal_detach_oldest(s->journal, gone, &a, &end);
	/* what the cache still holds stays readable */
	guint64 b = MIN(end, cache_first(s));

	if (b > a) {
		g_autofree char *why =
			g_strdup_printf("size bound (%" G_GUINT64_FORMAT " bytes) reached, deleted %s",
					s->max_bytes, name);
		release(s, a, b, why);
	}
}

/* A new last segment starting at @pos, making room for it first. */
static gboolean rotate(spool *s, guint64 pos, GError **error)
{
	GPtrArray *gone = g_ptr_array_new();

	g_mutex_lock(&s->lock);
	collect_confirmed_segments(s, gone);
	while (journal_at_bound(s->journal))
		drop_oldest_segment(s, gone);
	g_mutex_unlock(&s->lock);
	journal_discard(s->journal, gone);

	if (!journal_add_segment(s->journal, pos, error))
		return FALSE;
	gone = g_ptr_array_new();
	g_mutex_lock(&s->lock);
	/* the segment just filled may be confirmed already */
	collect_confirmed_segments(s, gone);
	g_mutex_unlock(&s->lock);
	journal_discard(s->journal, gone);
	return TRUE;
}

static void journal_failed(spool *s, GError *error)
{
	if (!s->journal_retry_us)
		g_warning("%s; records are kept in memory only (%" G_GUINT64_FORMAT
			  " at most) until the journal can be written again",
			  error->message, s->max_records);
	s->journal_retry_us = g_get_monotonic_time() + JOURNAL_RETRY_US;
}

/* Frames the journal can take at @pos now; 0 while it fails. */
static size_t journal_room(spool *s, guint64 pos)
{
	g_autoptr(GError) error = NULL;

	if (s->journal_retry_us && g_get_monotonic_time() < s->journal_retry_us)
		return 0;
	guint64 room = journal_tail_room(s->journal);
	if (!room) {
		if (!rotate(s, pos, &error)) {
			journal_failed(s, error);
			return 0;
		}
		room = journal_tail_room(s->journal);
	}
	return (size_t)MIN(room, (guint64)G_MAXSIZE);
}

/* ---- the API ------------------------------------------------------------------- */

guint spool_add_reader(spool *s)
{
	struct reader *r = g_new0(struct reader, 1);

	g_mutex_lock(&s->lock);
	r->confirmed = r->stored = s->end;
	g_ptr_array_add(s->readers, r);
	guint idx = s->readers->len - 1;
	g_mutex_unlock(&s->lock);
	return idx;
}

/* Where a reader with a saved cursor starts (lock held). */
static void resume_saved(spool *s, struct reader *r, guint64 saved, gboolean *store)
{
	if (saved > s->end) {
		g_warning("spool: %s says %" G_GUINT64_FORMAT " records are delivered, but the"
			  " journal ends at %" G_GUINT64_FORMAT " (the rest was lost before it"
			  " reached the disk, or set aside as damaged); %s resumes there",
			  cursor_path(r->cursor), saved, s->end, r->name);
		r->confirmed = s->end;
		*store = TRUE;
		return;
	}
	guint64 missing = (s->end - saved) - held_between(s, saved, s->end);
	r->confirmed = next_held(s, saved);
	r->stored = saved;
	if (missing) {
		r->lost += missing;
		g_warning("spool: %s resumes after record %" G_GUINT64_FORMAT ", but %"
			  G_GUINT64_FORMAT " records after it are no longer held (dropped by the size"
			  " bound or set aside as damaged): lost for it; next is %" G_GUINT64_FORMAT,
			  r->name, saved, missing, r->confirmed);
	}
}

guint spool_add_reader_named(spool *s, const char *name)
{
	enum cursor_state state = CURSOR_NEW;
	guint64 saved = 0;
	g_autofree char *problem = NULL;
	g_autoptr(GError) error = NULL;
	gboolean store = FALSE;

	g_mutex_lock(&s->lock);
	for (guint i = 0; i < s->readers->len; i++) {
		if (g_strcmp0(reader_at(s, i)->name, name) == 0) {
			g_mutex_unlock(&s->lock);
			g_critical("spool: reader %s registered twice", name);
			return i;
		}
	}
	guint64 end = s->end;
	g_mutex_unlock(&s->lock);

	struct reader *r = g_new0(struct reader, 1);
	r->name = g_strdup(name);
	if (s->journal) {
		r->cursor = cursor_open(journal_dir_fd(s->journal), journal_dir(s->journal), name,
					end, s->sync, &state, &saved, &problem, &error);
		if (!r->cursor)
			g_warning("spool: %s; %s starts at the end, and where it gets to will not"
				  " survive a restart", error->message, name);
	}

	g_mutex_lock(&s->lock);
	r->confirmed = r->stored = end;
	if (r->cursor && state == CURSOR_SAVED) {
		resume_saved(s, r, saved, &store);
	} else if (r->cursor && state == CURSOR_DAMAGED) {
		r->confirmed = next_held(s, 0);
		store = TRUE;
		g_warning("spool: %s: %s; %s starts from the oldest record held (%" G_GUINT64_FORMAT
			  ", %" G_GUINT64_FORMAT " records to send)",
			  cursor_path(r->cursor), problem, name, r->confirmed, s->end - r->confirmed);
	}
	if (store) {
		g_clear_error(&error);
		if (cursor_store(r->cursor, r->confirmed, s->sync, &error))
			r->stored = r->confirmed;
		else
			g_warning("spool: %s", error->message);
	}
	g_ptr_array_add(s->readers, r);
	guint idx = s->readers->len - 1;
	g_mutex_unlock(&s->lock);
	return idx;
}

static void append_in_memory(spool *s, const struct flow_record *records, size_t n)
{
	g_mutex_lock(&s->lock);
	if (s->closed) {
		g_mutex_unlock(&s->lock);
		g_critical("records appended to a closed spool");
		return;
	}
	cache_append(s, records, n);
	g_mutex_unlock(&s->lock);
}

void spool_append(spool *s, const struct flow_record *records, size_t n)
{
	if (!n)
		return;
	if (!s->journal) {
		append_in_memory(s, records, n);
		return;
	}
	g_mutex_lock(&s->lock);
	gboolean closed = s->closed;
	guint64 pos = s->end;   /* only this thread moves it */
	g_mutex_unlock(&s->lock);
	if (closed) {
		g_critical("records appended to a closed spool");
		return;
	}
	while (n) {
		size_t room = journal_room(s, pos);
		size_t take = room ? MIN(n, room) : n;
		gboolean written = FALSE;
		if (room) {
			g_autoptr(GError) error = NULL;
			written = journal_write(s->journal, pos, records, take, &error);
			if (!written)
				journal_failed(s, error);
		}
		g_mutex_lock(&s->lock);
		if (written)
			journal_publish(s->journal, take);
		cache_append(s, records, take);
		g_mutex_unlock(&s->lock);

		if (!written) {
			s->unjournaled += take;
		} else if (s->journal_retry_us) {
			g_message("spool: the journal takes records again; %" G_GUINT64_FORMAT
				  " records before were kept in memory only",
				  s->unjournaled);
			s->journal_retry_us = 0;
			s->unjournaled = 0;
		}
		pos += take;
		records += take;
		n -= take;
	}
}

/*
 * Copies records from *@pos, which is held (lock held).  From the journal,
 * the lock is let go for the read.  Returns 0 only after skipping a record
 * that fails its check on disk (counted as lost for @reader).
 */
static size_t take_held(spool *s, guint reader, guint64 *pos, struct flow_record *out,
			size_t max)
{
	if (*pos >= cache_first(s)) {
		size_t n = copy_out(s, *pos, out, max);
		*pos += n;
		return n;
	}
	guint64 at = *pos;
	size_t want = (size_t)MIN((guint64)max, cache_first(s) - at);
	g_autoptr(GError) error = NULL;

	g_mutex_unlock(&s->lock);
	size_t got = journal_read(s->journal, at, out, want, &error);
	g_mutex_lock(&s->lock);
	if (got) {
		*pos = at + got;
		return got;
	}
	/* the size bound took it meanwhile: the caller moves on to what is held */
	if (!error)
		return 0;
	g_warning("spool: %s; record %" G_GUINT64_FORMAT " skipped", error->message, at);
	if (reader != NO_READER)
		reader_at(s, reader)->lost++;
	*pos = at + 1;
	return 0;
}

size_t spool_read(spool *s, guint reader, guint64 *pos, struct flow_record *out, size_t max,
		  gint64 deadline_us)
{
	size_t n = 0;

	g_mutex_lock(&s->lock);
	for (;;) {
		guint64 held = next_held(s, *pos);
		if (held > *pos)
			*pos = held;
		if (*pos < s->end && max) {
			n = take_held(s, reader, pos, out, max);
			if (n)
				break;
			continue;
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
	return n;
}

void spool_confirm(spool *s, guint reader, guint64 upto)
{
	g_mutex_lock(&s->lock);
	struct reader *r = reader_at(s, reader);
	if (upto > r->confirmed)
		r->confirmed = MIN(upto, s->end);
	free_confirmed_chunks(s);
	if (!s->journal) {
		g_mutex_unlock(&s->lock);
		return;
	}
	guint64 target = r->confirmed;
	gboolean store = r->cursor && target > r->stored;
	if (!r->cursor)
		r->stored = r->confirmed;
	if (store) {
		/* saved before anything is deleted for it: a crash in between must
		 * not leave a cursor pointing at records that are gone */
		g_mutex_unlock(&s->lock);
		g_autoptr(GError) error = NULL;
		store = cursor_store(r->cursor, target, s->sync, &error);
		if (!store && !r->store_failing)
			g_warning("spool: %s; what %s confirmed stays in the journal until its"
				  " position can be saved", error->message, r->name);
		else if (store && r->store_failing)
			g_message("spool: %s is written again", cursor_path(r->cursor));
		r->store_failing = !store;
		g_mutex_lock(&s->lock);
		if (store)
			r->stored = MAX(r->stored, target);
	}
	GPtrArray *gone = g_ptr_array_new();
	collect_confirmed_segments(s, gone);
	g_mutex_unlock(&s->lock);
	journal_discard(s->journal, gone);
}

guint64 spool_confirmed(spool *s, guint reader)
{
	g_mutex_lock(&s->lock);
	guint64 v = reader_at(s, reader)->confirmed;
	g_mutex_unlock(&s->lock);
	return v;
}

gboolean spool_wait_durable(spool *s, guint64 end, gint64 deadline_us)
{
	return !s->journal || journal_wait_synced(s->journal, end, deadline_us);
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

guint64 spool_dropped_total(spool *s)
{
	g_mutex_lock(&s->lock);
	guint64 v = s->dropped_total;
	g_mutex_unlock(&s->lock);
	return v;
}

void spool_recent(spool *s, size_t max, void (*fn)(const struct flow_record *r, void *user),
		  void *user)
{
	g_autofree struct flow_record *batch = g_new(struct flow_record, RECENT_BATCH);

	g_mutex_lock(&s->lock);
	guint64 stop = s->end;
	guint64 pos = stop - MIN((guint64)max, stop);
	for (;;) {
		guint64 held = next_held(s, pos);
		if (held > pos)
			pos = held;
		if (pos >= stop)
			break;
		size_t n = take_held(s, NO_READER, &pos, batch, (size_t)MIN(RECENT_BATCH, stop - pos));
		g_mutex_unlock(&s->lock);
		for (size_t i = 0; i < n; i++)
			fn(&batch[i], user);
		g_mutex_lock(&s->lock);
	}
	g_mutex_unlock(&s->lock);
}

gint64 spool_sync_pending(spool *s, gint64 now_us)
{
	if (!s->journal)
		return -1;
	gint64 due = journal_sync_due_us(s->journal, now_us);
	if (due != 0)
		return due;
	journal_commit(s->journal, now_us);
	return journal_sync_due_us(s->journal, now_us);
}

void spool_close(spool *s)
{
	if (s->journal) {
		g_autoptr(GError) error = NULL;
		if (!journal_sync(s->journal, &error))
			g_warning("%s", error->message);
	}
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
	for (guint i = 0; i < s->readers->len; i++) {
		struct reader *r = reader_at(s, i);
		cursor_free(r->cursor);
		g_free(r->name);
		g_free(r);
	}
	g_ptr_array_free(s->readers, TRUE);
	journal_free(s->journal);
	g_mutex_clear(&s->lock);
	g_cond_clear(&s->cond);
	g_free(s);
}
