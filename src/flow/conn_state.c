/*
 * conn_state.c - the table of connections that had interim records.
 *
 * Memory is what limits this table (a host can hold millions of long-lived
 * connections), so entries sit in fixed-size chunks, allocated as they
 * fill, with no per-entry allocation and no pointers; an open-addressing
 * index of 32-bit entry numbers (linear probing, at most half full) finds
 * them.  A removal moves the last entry into the hole, so the chunks stay
 * dense and a snapshot is a copy of them.
 *
 * The same table keeps the NAT sessions whose create event was logged
 * (CONN_NAT_CREATED, keyed by flow_nat_identity() with start 0): a few
 * dozen bytes per translated connection, and one index for both.
 *
 * Snapshot file (host byte order; the state directory is local):
 *   header   40 bytes  magic "CTFS", version (2; 1 is read too), entry size, header CRC,
 *                      entry count, journal position covered, reserved
 *   entries  72 bytes each (struct conn_state_entry)
 *   CRC-32C of the entries, 4 bytes
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctflowd/conn_state.h"
#include "ctflowd/error.h"
#include "ctflowd/state_dir.h"
#include "../spool/crc32c.h"

#define CHUNK_ENTRIES 4096u
#define SNAPSHOT_MAGIC 0x53465443u    /* "CTFS" in a little-endian file */
/* version 2 added NAT session entries (CONN_NAT_CREATED); a version 1 file
 * has none and reads the same */
#define SNAPSHOT_VERSION CONN_STATE_SNAPSHOT_VERSION
#define SNAPSHOT_VERSION_OLDEST 1u

struct snapshot_header {
	guint32 magic;
	guint32 version;
	guint32 entry_size;
	guint32 crc;
	guint64 count;
	guint64 position;
	guint64 reserved;
};

G_STATIC_ASSERT(sizeof(struct snapshot_header) == 40);

struct conn_state {
	GPtrArray *chunks;       /* struct conn_state_entry[CHUNK_ENTRIES] each */
	guint count;
	guint32 *index;          /* entry number + 1; 0: empty */
	guint32 mask;
};

static inline struct conn_state_entry *entry_at(const conn_state *cs, guint i)
{
	struct conn_state_entry *chunk = g_ptr_array_index(cs->chunks, i / CHUNK_ENTRIES);

	return &chunk[i % CHUNK_ENTRIES];
}

static inline gboolean same_connection(const struct conn_state_entry *e, guint64 identity,
				       guint64 start_ns, guint32 ct_id)
{
	return e->identity == identity && e->start_ns == start_ns && e->ct_id == ct_id;
}

conn_state *conn_state_new(void)
{
	conn_state *cs = g_new0(conn_state, 1);

	cs->chunks = g_ptr_array_new_with_free_func(g_free);
	cs->mask = 1023;
	cs->index = g_new0(guint32, cs->mask + 1);
	return cs;
}

/* The slot holding the entry of that connection, or the empty slot where
 * it would go. */
static guint32 find_slot(const conn_state *cs, guint64 identity, guint64 start_ns, guint32 ct_id)
{
	guint32 s = (guint32)identity & cs->mask;

	while (cs->index[s] &&
	       !same_connection(entry_at(cs, cs->index[s] - 1), identity, start_ns, ct_id))
		s = (s + 1) & cs->mask;
	return s;
}

static void grow_index(conn_state *cs)
{
	guint32 old_mask = cs->mask;
	g_autofree guint32 *old = cs->index;

	cs->mask = old_mask * 2 + 1;
	cs->index = g_new0(guint32, (gsize)cs->mask + 1);
	for (guint32 s = 0; s <= old_mask; s++) {
		if (!old[s])
			continue;
		guint32 t = (guint32)entry_at(cs, old[s] - 1)->identity & cs->mask;
		while (cs->index[t])
			t = (t + 1) & cs->mask;
		cs->index[t] = old[s];
	}
}

struct conn_state_entry *conn_state_find(conn_state *cs, const struct flow_record *r)
{
	guint32 s = find_slot(cs, flow_identity_hash(r), r->start_ns, r->ct_id);

	return cs->index[s] ? entry_at(cs, cs->index[s] - 1) : NULL;
}

static struct conn_state_entry *insert_entry(conn_state *cs, guint64 identity, guint64 start_ns,
					     guint32 ct_id)
{
	guint32 s = find_slot(cs, identity, start_ns, ct_id);

	if (cs->index[s])
		return entry_at(cs, cs->index[s] - 1);
	/* at most half full: probe chains stay short */
	if ((guint64)(cs->count + 1) * 2 > (guint64)cs->mask + 1) {
		grow_index(cs);
		s = find_slot(cs, identity, start_ns, ct_id);
	}
	if (cs->count == cs->chunks->len * CHUNK_ENTRIES)
		g_ptr_array_add(cs->chunks, g_new(struct conn_state_entry, CHUNK_ENTRIES));
	struct conn_state_entry *e = entry_at(cs, cs->count);
	memset(e, 0, sizeof(*e));
	e->identity = identity;
	e->start_ns = start_ns;
	e->ct_id = ct_id;
	cs->index[s] = ++cs->count;
	return e;
}

struct conn_state_entry *conn_state_insert(conn_state *cs, const struct flow_record *r)
{
	return insert_entry(cs, flow_identity_hash(r), r->start_ns, r->ct_id);
}

/* Empties slot @hole, moving later members of its probe chain back when
 * their home slot does not lie between the hole and them. */
static void clear_slot(conn_state *cs, guint32 hole)
{
	for (guint32 j = (hole + 1) & cs->mask; cs->index[j]; j = (j + 1) & cs->mask) {
		guint32 home = (guint32)entry_at(cs, cs->index[j] - 1)->identity & cs->mask;
		if (((j - home) & cs->mask) >= ((j - hole) & cs->mask)) {
			cs->index[hole] = cs->index[j];
			hole = j;
		}
	}
	cs->index[hole] = 0;
}

static void remove_entry(conn_state *cs, guint64 identity, guint64 start_ns, guint32 ct_id)
{
	guint32 s = find_slot(cs, identity, start_ns, ct_id);

	if (!cs->index[s])
		return;
	guint32 gone = cs->index[s] - 1, last = cs->count - 1;
	clear_slot(cs, s);
	if (gone != last) {
		/* the last entry fills the hole, and its slot follows it */
		struct conn_state_entry *moved = entry_at(cs, last);
		guint32 t = find_slot(cs, moved->identity, moved->start_ns, moved->ct_id);
		*entry_at(cs, gone) = *moved;
		cs->index[t] = gone + 1;
	}
	cs->count--;
	/* a chunk emptied by removals goes, but one stays spare so that a
	 * connection ending and another starting do not allocate each time */
	while (cs->chunks->len >= 2 && cs->count + 2 * CHUNK_ENTRIES <= cs->chunks->len * CHUNK_ENTRIES)
		g_ptr_array_remove_index(cs->chunks, cs->chunks->len - 1);
}

void conn_state_remove(conn_state *cs, const struct flow_record *r)
{
	remove_entry(cs, flow_identity_hash(r), r->start_ns, r->ct_id);
}

/* NAT sessions are keyed without the start (NEW events have none), with
 * start 0 beside the key: an interim entry always has a start. */
struct conn_state_entry *conn_state_find_nat(conn_state *cs, const struct flow_record *r)
{
	guint32 s = find_slot(cs, flow_nat_identity(r), 0, r->ct_id);

	return cs->index[s] ? entry_at(cs, cs->index[s] - 1) : NULL;
}

struct conn_state_entry *conn_state_insert_nat(conn_state *cs, const struct flow_record *r)
{
	struct conn_state_entry *e = insert_entry(cs, flow_nat_identity(r), 0, r->ct_id);

	e->flags |= CONN_NAT_CREATED;
	return e;
}

void conn_state_remove_nat(conn_state *cs, const struct flow_record *r)
{
	remove_entry(cs, flow_nat_identity(r), 0, r->ct_id);
}

gboolean conn_state_apply(conn_state *cs, const struct flow_record *r)
{
	if (r->event == FLOW_EVENT_DESTROY) {
		guint before = cs->count;
		conn_state_remove(cs, r);
		if (flow_is_translated(r))
			conn_state_remove_nat(cs, r);
		return cs->count != before;
	}
	if (r->event == FLOW_EVENT_NEW) {
		/* a NAT session create (first, late or refresh) */
		struct conn_state_entry *e = conn_state_insert_nat(cs, r);
		e->last_ns = r->end_ns;
		e->flow_id = r->flow_id;
		return TRUE;
	}
	if (!flow_is_interim(r))
		return FALSE;
	struct conn_state_entry *e = conn_state_insert(cs, r);
	e->last_ns = r->end_ns;
	e->flow_id = r->flow_id;
	e->packets = r->packets;
	e->bytes = r->bytes;
	e->reply_packets = r->reply_packets;
	e->reply_bytes = r->reply_bytes;
	return TRUE;
}

guint conn_state_size(const conn_state *cs)
{
	return cs->count;
}

gsize conn_state_memory(const conn_state *cs)
{
	return sizeof(*cs) + (gsize)cs->chunks->len * CHUNK_ENTRIES * sizeof(struct conn_state_entry) +
	       ((gsize)cs->mask + 1) * sizeof(guint32) + cs->chunks->len * sizeof(gpointer);
}

void conn_state_free(conn_state *cs)
{
	if (!cs)
		return;
	g_ptr_array_free(cs->chunks, TRUE);
	g_free(cs->index);
	g_free(cs);
}

/* ---- snapshots ------------------------------------------------------------ */

GBytes *conn_state_snapshot(const conn_state *cs, guint64 position)
{
	gsize body = (gsize)cs->count * sizeof(struct conn_state_entry);
	gsize len = sizeof(struct snapshot_header) + body + sizeof(guint32);
	guint8 *buf = g_malloc(len);
	struct snapshot_header h = {
		.magic = SNAPSHOT_MAGIC,
		.version = SNAPSHOT_VERSION,
		.entry_size = sizeof(struct conn_state_entry),
		.count = cs->count,
		.position = position,
	};
	guint8 *p = buf + sizeof(h);

	h.crc = crc32c(0, &h, sizeof(h));
	memcpy(buf, &h, sizeof(h));
	for (guint done = 0; done < cs->count; done += CHUNK_ENTRIES) {
		gsize n = MIN(cs->count - done, CHUNK_ENTRIES) * sizeof(struct conn_state_entry);
		memcpy(p, g_ptr_array_index(cs->chunks, done / CHUNK_ENTRIES), n);
		p += n;
	}
	guint32 crc = crc32c(0, buf + sizeof(h), body);
	memcpy(p, &crc, sizeof(crc));
	return g_bytes_new_take(buf, len);
}

conn_state *conn_state_parse(const guint8 *data, gsize len, const char *origin,
			     guint64 *position, GError **error)
{
	struct snapshot_header h, copy;
	const gsize esz = sizeof(struct conn_state_entry);

	if (len < sizeof(h) + sizeof(guint32)) {
		g_set_error(error, CTFLOWD_ERROR, EINVAL, "%s: %" G_GSIZE_FORMAT " bytes, shorter"
			    " than a snapshot", origin, len);
		return NULL;
	}
	memcpy(&h, data, sizeof(h));
	copy = h;
	copy.crc = 0;
	const char *why = NULL;
	if (h.magic != SNAPSHOT_MAGIC)
		why = "not a connection state snapshot (wrong magic)";
	else if (h.version < SNAPSHOT_VERSION_OLDEST || h.entry_size != esz)
		why = "a snapshot format this build does not read";
	else if (crc32c(0, &copy, sizeof(copy)) != h.crc)
		why = "header fails its CRC";
	else if (h.reserved)
		why = "its reserved header field is not zero (not written by ctflowd)";
	else if (h.count > (len - sizeof(h) - sizeof(guint32)) / esz ||
		 sizeof(h) + h.count * esz + sizeof(guint32) != len)
		why = "its length does not match its entry count";
	if (why) {
		g_set_error(error, CTFLOWD_ERROR, EINVAL, "%s: %s", origin, why);
		return NULL;
	}
	if (h.version > SNAPSHOT_VERSION) {
		/* a later build's file: its entries may mean what this one cannot */
		g_set_error(error, CTFLOWD_ERROR, EINVAL, "%s: snapshot format version %u, written by"
			    " a later ctflowd; this build reads versions %u to %u", origin, h.version,
			    SNAPSHOT_VERSION_OLDEST, SNAPSHOT_VERSION);
		return NULL;
	}
	guint32 stored;
	memcpy(&stored, data + len - sizeof(stored), sizeof(stored));
	if (crc32c(0, data + sizeof(h), h.count * esz) != stored) {
		g_set_error(error, CTFLOWD_ERROR, EINVAL, "%s: entries fail their CRC", origin);
		return NULL;
	}
	conn_state *cs = conn_state_new();
	for (guint64 i = 0; i < h.count; i++) {
		struct conn_state_entry in;
		memcpy(&in, data + sizeof(h) + i * esz, esz);
		guint before = cs->count;
		struct conn_state_entry *e = insert_entry(cs, in.identity, in.start_ns, in.ct_id);
		if (cs->count == before) {
			g_set_error(error, CTFLOWD_ERROR, EINVAL, "%s: entry %" G_GUINT64_FORMAT
				    " repeats a connection", origin, i);
			conn_state_free(cs);
			return NULL;
		}
		*e = in;
	}
	*position = h.position;
	return cs;
}

conn_state *conn_state_load(int dirfd, const char *dir, const char *name, guint64 *position,
			    GError **error)
{
	g_autoptr(GError) open_error = NULL;
	int fd = state_dir_open_file(dirfd, dir, name, O_RDONLY, 0, &open_error);
	struct stat st;

	if (fd < 0 && open_error->code == ENOENT) {
		*position = G_MAXUINT64;
		return conn_state_new();
	}
	if (fd < 0) {
		g_propagate_error(error, g_steal_pointer(&open_error));
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		g_set_error(error, CTFLOWD_ERROR, e, "%s/%s: %s", dir, name, g_strerror(e));
		return NULL;
	}
	gsize len = (gsize)st.st_size, got = 0;
	g_autofree guint8 *data = g_malloc(MAX(len, 1));
	while (got < len) {
		ssize_t r = read(fd, data + got, len - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int e = r < 0 ? errno : EIO;
			close(fd);
			g_set_error(error, CTFLOWD_ERROR, e, "%s/%s: cannot read: %s", dir, name,
				    r < 0 ? g_strerror(e) : "shorter than it was");
			return NULL;
		}
		got += (gsize)r;
	}
	close(fd);
	g_autofree char *origin = g_build_filename(dir, name, NULL);
	return conn_state_parse(data, len, origin, position, error);
}
