/*
 * conn_state.h - what was already reported of connections that are still
 * alive: for each connection that had an interim record (active timeout),
 * the counters that record reported, when it ended, and its flowId.
 *
 * The next record of the connection, interim or final, reports the
 * difference, so the records of a connection add up to the kernel's final
 * counters.  Connections without an interim record have no entry: that is
 * most of them, and they cost nothing here.
 *
 * With NAT event logging, the same table holds the translated connections
 * whose session create was journaled (CONN_NAT_CREATED): keyed by
 * flow_nat_identity() with start 0, because a NEW event has no start time.
 * Their last_ns is the time of the last create (or refresh), their flow_id
 * that of the create.  They let a DESTROY tell whether its create was
 * logged, and a repeated NEW be dropped.
 *
 * The journal is the truth; this is a fold of it.  A snapshot file covers
 * the journal up to a position, and conn_state_apply() of every record from
 * there on gives the state again after a crash: an interim record sets its
 * connection's entry, a NAT create record (FLOW_EVENT_NEW) its NAT session
 * entry, a final record removes both.  The owner keeps the journal from
 * that position on until the next snapshot (a spool reader of its own).
 *
 * One thread owns a table; a snapshot is a copy taken on that thread and
 * written on any other.
 */
#pragma once

#include <glib.h>
#include "ctflowd/flow.h"

typedef struct conn_state conn_state;

/* One connection.  72 bytes; the table adds 4 to 16 bytes of index. */
struct conn_state_entry {
	guint64 identity;        /* flow_identity_hash() */
	guint64 start_ns;        /* the connection's start (checked beside the hash) */
	guint64 last_ns;         /* end of its last record: the next one's period start */
	guint64 flow_id;         /* every record of the connection has this flowId */
	guint64 packets, bytes, reply_packets, reply_bytes;   /* totals already reported */
	guint32 ct_id;
	guint32 flags;           /* enum conn_state_flags */
};

enum conn_state_flags {
	CONN_NAT_CREATED = 1u << 0,  /* a NAT session entry: its create was journaled */
};

G_STATIC_ASSERT(sizeof(struct conn_state_entry) == 72);

/** conn_state_new: an empty table. */
conn_state *conn_state_new(void);

/** conn_state_find: the entry of @r's connection, or NULL. */
struct conn_state_entry *conn_state_find(conn_state *cs, const struct flow_record *r);

/**
 * conn_state_insert:
 * The entry of @r's connection, added (identity, start and ct_id set, the
 * rest zero) if it had none.  The pointer is valid until the next insert or
 * remove.
 */
struct conn_state_entry *conn_state_insert(conn_state *cs, const struct flow_record *r);

/** conn_state_remove: removes @r's connection's entry, if any. */
void conn_state_remove(conn_state *cs, const struct flow_record *r);

/** conn_state_find_nat: the NAT session entry of @r's connection (any event), or NULL. */
struct conn_state_entry *conn_state_find_nat(conn_state *cs, const struct flow_record *r);

/**
 * conn_state_insert_nat:
 * The NAT session entry of @r's connection, added (flags CONN_NAT_CREATED,
 * the rest zero) if it had none.  Valid until the next insert or remove.
 */
struct conn_state_entry *conn_state_insert_nat(conn_state *cs, const struct flow_record *r);

/** conn_state_remove_nat: removes the NAT session entry of @r's connection, if any. */
void conn_state_remove_nat(conn_state *cs, const struct flow_record *r);

/**
 * conn_state_apply:
 * Folds one journaled record into the table: an interim record sets its
 * connection's entry to what it reported, a NAT create record
 * (FLOW_EVENT_NEW) adds or updates its NAT session entry (last_ns its
 * end_ns), a final record (a DESTROY) removes both; other records change
 * nothing.  Returns TRUE if the table changed.
 */
gboolean conn_state_apply(conn_state *cs, const struct flow_record *r);

/** conn_state_size: entries held (interim and NAT session ones). */
guint conn_state_size(const conn_state *cs);

/** conn_state_memory: bytes the table has allocated. */
gsize conn_state_memory(const conn_state *cs);

/* The snapshot format conn_state_snapshot() writes; conn_state_parse()
 * also reads version 1, which had no NAT session entries. */
#define CONN_STATE_SNAPSHOT_VERSION 2u

/**
 * conn_state_snapshot:
 * The table as a file's contents, covering the journal up to @position
 * (records before it are folded in).  Free with g_bytes_unref().
 */
GBytes *conn_state_snapshot(const conn_state *cs, guint64 position);

/**
 * conn_state_load:
 * Reads the snapshot @name in the checked directory @dirfd (@dir names it
 * in messages; see state_dir.h, which also writes snapshots:
 * state_dir_replace_file()) into a new table and sets *@position to what
 * it covers.  A missing file is an empty table covering nothing
 * (*@position = G_MAXUINT64: the caller folds from wherever it can).  A file
 * that fails its checks (or is a link) is not trusted: NULL with @error
 * saying what is wrong.
 */
conn_state *conn_state_load(int dirfd, const char *dir, const char *name, guint64 *position,
			    GError **error);

/** conn_state_parse: conn_state_load() for contents in memory; @origin names them. */
conn_state *conn_state_parse(const guint8 *data, gsize len, const char *origin,
			     guint64 *position, GError **error);

/** conn_state_free: frees @cs (NULL is fine). */
void conn_state_free(conn_state *cs);
