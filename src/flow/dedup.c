/*
 * dedup.c - remembers the identities of recent DESTROY events.
 *
 * An identity is reduced to a 64-bit fingerprint (flow_identity_hash(): a
 * mix of id, original tuple, zone and start time).  With a window of 2^18 entries the
 * chance that a new flow collides with a remembered one is about 2^-46 per
 * flow: far below any other source of error in accounting.
 *
 * Layout: an open-addressing table (linear probing, power-of-two size at
 * least twice the window) for look-ups, and a ring of the fingerprints in
 * arrival order for FIFO eviction.  Deletion shifts the probe chain back, so
 * no tombstones build up over a long run.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "ctflowd/dedup.h"
#include "ctflowd/error.h"

struct dedup {
	guint64 *table;     /* 0 = empty slot */
	guint64 mask;
	guint64 *ring;      /* fingerprints, oldest at ring_head */
	guint window;
	guint ring_head;
	guint count;
	size_t table_bytes, ring_bytes;
};

static guint64 fingerprint(const struct flow_record *r)
{
	return flow_connection_key(r, true);
}

/*
 * Table and ring are megabytes touched at random.  Huge pages (where the
 * kernel gives them) spare a TLB miss on top of the cache miss of each
 * look-up, and touching every page now spares the page faults a first
 * burst would otherwise take, one per 4 KiB, on the thread that drains
 * the socket.
 */
static guint64 *alloc_words(size_t n, size_t *bytes, const char *what, guint window,
			    GError **error)
{
	*bytes = n * sizeof(guint64);
	void *p = mmap(NULL, *bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		int e = errno;
		*bytes = 0;
		g_set_error(error, CTFLOWD_ERROR, e,
			    "dedup: cannot map %zu bytes for the %s of a window of %u identities"
			    " ([source] dedup_window): %s",
			    n * sizeof(guint64), what, window, g_strerror(e));
		return NULL;
	}
#ifdef MADV_HUGEPAGE
	madvise(p, *bytes, MADV_HUGEPAGE);
#endif
	memset(p, 0, *bytes);
	return p;
}

dedup *dedup_new(guint window, GError **error)
{
	dedup *d = g_new0(dedup, 1);
	guint64 size = 16;

	d->window = MAX(window, 1);
	while (size < 2ULL * d->window)
		size <<= 1;
	d->mask = size - 1;
	d->table = alloc_words(size, &d->table_bytes, "table", d->window, error);
	if (d->table)
		d->ring = alloc_words(d->window, &d->ring_bytes, "ring", d->window, error);
	if (!d->ring) {
		dedup_free(d);
		return NULL;
	}
	return d;
}

static void table_remove(dedup *d, guint64 fp)
{
	guint64 i = fp & d->mask;

	while (d->table[i] != fp) {
		if (d->table[i] == 0)
			return;
		i = (i + 1) & d->mask;
	}
	/* Backward-shift deletion: move later members of the probe chain into
	 * the hole when their home slot does not lie between hole and them. */
	guint64 hole = i;
	for (guint64 j = (i + 1) & d->mask; d->table[j]; j = (j + 1) & d->mask) {
		guint64 home = d->table[j] & d->mask;
		if (((j - home) & d->mask) >= ((j - hole) & d->mask)) {
			d->table[hole] = d->table[j];
			hole = j;
		}
	}
	d->table[hole] = 0;
}

static gboolean seen_fingerprint(dedup *d, guint64 fp)
{
	guint64 i = fp & d->mask;

	while (d->table[i]) {
		if (d->table[i] == fp)
			return TRUE;
		i = (i + 1) & d->mask;
	}

	if (d->count == d->window) {
		table_remove(d, d->ring[d->ring_head]);
		d->ring_head = (d->ring_head + 1) % d->window;
		d->count--;
		/* the removal may have shifted entries into the slot we found */
		i = fp & d->mask;
		while (d->table[i])
			i = (i + 1) & d->mask;
	}
	d->table[i] = fp;
	d->ring[(d->ring_head + d->count) % d->window] = fp;
	d->count++;
	return FALSE;
}

gboolean dedup_has(const dedup *d, const struct flow_record *r)
{
	guint64 fp = fingerprint(r);

	for (guint64 i = fp & d->mask; d->table[i]; i = (i + 1) & d->mask) {
		if (d->table[i] == fp)
			return TRUE;
	}
	return FALSE;
}

gboolean dedup_seen(dedup *d, const struct flow_record *r)
{
	return seen_fingerprint(d, fingerprint(r));
}

/* The table is megabytes and every look-up lands somewhere random in it:
 * two cache misses per record (the new slot and the evicted one) dominate
 * the cost.  Fetching the slots of a whole chunk first overlaps them. */
#define FILTER_CHUNK 64

size_t dedup_filter(dedup *d, struct flow_record *records, size_t n)
{
	guint64 fps[FILTER_CHUNK];
	size_t kept = 0;

	for (size_t base = 0; base < n; base += FILTER_CHUNK) {
		size_t m = MIN(n - base, (size_t)FILTER_CHUNK);
		for (size_t i = 0; i < m; i++) {
			fps[i] = fingerprint(&records[base + i]);
			__builtin_prefetch(&d->table[fps[i] & d->mask]);
			if (d->count == d->window) {
				guint64 victim = d->ring[(d->ring_head + i) % d->window];
				__builtin_prefetch(&d->table[victim & d->mask]);
			}
		}
		for (size_t i = 0; i < m; i++) {
			if (!seen_fingerprint(d, fps[i]))
				records[kept++] = records[base + i];
		}
	}
	return kept;
}

guint dedup_size(const dedup *d)
{
	return d->count;
}

void dedup_free(dedup *d)
{
	if (!d)
		return;
	if (d->table)
		munmap(d->table, d->table_bytes);
	if (d->ring)
		munmap(d->ring, d->ring_bytes);
	g_free(d);
}
