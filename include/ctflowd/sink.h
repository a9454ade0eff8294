/*
 * sink.h - one export destination: a thread that reads records from the
 * spool, encodes them and sends them through a transport.
 *
 * Flush timer, template refresh, reconnect with back-off and rewinding to the
 * last confirmed record all live here, off the thread that drains netlink.
 */
#pragma once

#include <glib.h>
#include "ctflowd/config.h"
#include "ctflowd/encoder.h"
#include "ctflowd/spool.h"

typedef struct sink sink;

struct sink_stats {
	guint64 records;        /* records delivered: sent (UDP), written (file), written
				 * and synced (file, sync = yes), acknowledged (TCP),
				 * taken by the local syslog socket (local) */
	guint64 sent;           /* records handed to the transport, resends included */
	guint64 messages;
	guint64 bytes;
	guint64 send_errors;    /* failed sends (connection broke, datagram refused) */
	guint64 reconnects;     /* sessions opened after the first (reconnects, reopened files) */
	guint64 resent;         /* records sent again after a rewind */
	guint64 lost;           /* dropped by the spool before this sink confirmed them */
	guint64 skipped;        /* left out: the format cannot carry them (netflow5: IPv6) */
	/* failover, the same on both sides of the pair (zero without one) */
	guint64 takeovers;      /* times the backup took over from the export */
	guint64 givebacks;      /* times the export took its records back */
	guint64 doubtful;       /* records the side letting go had sent unconfirmed: the
				 * other sent them again (at most this many doubles) */
};

/**
 * sink_new:
 * A destination for @cfg reading from @source (registers itself as a
 * reader, unless @cfg is a standby: that one sends only for the export it
 * backs, see sink_set_failover(), which must be called before it starts).
 * Fails if the format cannot be set up.
 */
sink *sink_new(const struct export_config *cfg, spool *source, GError **error);

/**
 * sink_counters_fn:
 * Fills the daemon's own counters in @out (destroy_events, duplicates,
 * overruns, malformed, spool_dropped).  Runs on the export thread: it may
 * take a lock for a copy, nothing longer.
 */
typedef void (*sink_counters_fn)(struct export_statistics *out, void *user);

/**
 * sink_set_statistics:
 * (before sink_start) The statistics the destination reports
 * (encoder_report_statistics(): every `statistics` and at stop, and
 * whenever its losses grow) carry @process_id as exportingProcessId and
 * the daemon's counters from @fn.  Without this call they carry 0 and
 * zeros.
 */
void sink_set_statistics(sink *s, guint32 process_id, sink_counters_fn fn, void *user);

/**
 * sink_set_failover:
 * (before sink_start) @backup, the sink of an export configured as a
 * standby (cfg->standby), sends the records of @primary while @primary
 * cannot reach its destination, from @primary's position in the spool and
 * confirming on it, and gives them back when @primary reaches it again
 * (failover.h).  @backup sends nothing else.  @primary owns the hand-off;
 * free @backup first or together, after both are stopped.
 */
void sink_set_failover(sink *primary, sink *backup);

/** sink_start: starts the export thread. */
gboolean sink_start(sink *s, GError **error);

/**
 * sink_stop:
 * After spool_close(): sends what is left, flushes and joins the thread.
 * A destination that cannot take it gets @grace_ms before it is abandoned
 * (what was not sent is counted and logged).
 */
void sink_stop(sink *s, guint grace_ms);

/**
 * sink_reopen:
 * (any thread; returns at once) Asks a file export to reopen its file, as
 * after logrotate renamed it: at the next message boundary, within about a
 * second, the export thread sends the unfinished message to the old file
 * and confirms what it wrote there (after fdatasync() with sync = yes),
 * then opens the path again, creating a new file, and starts a new session
 * in it (IPFIX: templates first).  No record goes to both files, none is
 * skipped.  Other transports ignore it.
 */
void sink_reopen(sink *s);

/** sink_get_stats: a snapshot of the counters (any thread). */
void sink_get_stats(sink *s, struct sink_stats *out);

/** sink_name: NAME of [export NAME]. */
const char *sink_name(const sink *s);

/** sink_free: frees a stopped sink (NULL is fine). */
void sink_free(sink *s);
