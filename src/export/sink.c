/*
 * sink.c - the export thread of one destination.
 *
 * Positions: records before `confirmed` (kept by the spool) are delivered;
 * records before `emitted` went out in finished messages; records before
 * `read` are in the encoder.  When a stream breaks, everything after
 * `confirmed` is read again and re-encoded in a new session, so a collector
 * that reconnects gets templates first and then every record the broken
 * connection may have lost.
 *
 * A file is reopened (sink_reopen) the same way, but only once everything
 * written to the old file is confirmed: then the rewind finds nothing to
 * send again, and each record is in exactly one of the two files.
 *
 * An export with a backup (failover.h) reads and confirms its position only
 * while it holds it.  When it cannot reach its destination it lets go, and
 * the backup's thread reads the same position, from what was confirmed,
 * and confirms on it; the export keeps trying its destination and, once
 * there, asks for the position back, which the backup returns after its
 * last message is confirmed.  Both start from the confirmed position after
 * every hand-off, as after a broken connection.
 */
#include <errno.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "ctflowd/encoder.h"
#include "ctflowd/failover.h"
#include "ctflowd/sink.h"
#include "ctflowd/transport.h"

#define READ_BATCH 256
#define IDLE_WAKE_US (1000 * 1000)
/* After a short read, let records gather before the next one: one wake-up
 * per batch instead of one per netlink drain keeps both threads' futex and
 * scheduling costs off the per-record budget.  Far below any flush interval. */
#define LINGER_US 5000
/* how often to look for TCP acknowledgements while some are outstanding */
#define ACK_POLL_US 10000
/* A backup giving the position back waits this long for its last bytes to
 * be acknowledged: a live collector's host acknowledges within a round
 * trip; one that does not within 2 s counts as broken, and what it did not
 * acknowledge goes to the export again (counted as doubtful). */
#define GIVEBACK_WAIT_US (2 * 1000 * 1000)
/* a standby export, until it holds another export's position */
#define NO_READER G_MAXUINT

/* Records handed to the encoder come from contiguous runs of positions; the
 * spool skips positions it no longer holds, so counting records is not
 * counting positions. */
struct run {
	guint64 first;
	guint64 count;
};

struct sent_message {
	guint64 end_offset;   /* transport bytes written after it */
	guint64 end_pos;      /* spool position after its records */
	gint64 acked_us;      /* TCP: when its last byte was seen acknowledged, 0: not yet */
};

struct sink {
	const struct export_config *cfg;
	spool *source;
	guint reader;
	encoder *enc;
	transport *tr;
	GThread *thread;

	guint64 read_pos;
	guint64 emitted_pos;
	guint64 confirmed_pos;       /* what the spool has as confirmed for us */
	guint64 reported_lost;       /* notSentFlowTotalCount the collector was told */
	guint32 process_id;          /* exportingProcessId of the statistics */
	guint64 init_ms;             /* since when the statistics count */
	sink_counters_fn counters;   /* the daemon's counters, or NULL */
	void *counters_user;
	gint64 next_stats_us;        /* next periodic statistics, with `statistics` set */
	gint64 message_started_us;   /* when the unfinished message got its first record */
	gint64 next_refresh_us;      /* IPFIX over UDP: next template refresh */
	guint backoff_ms;            /* wait before the next open; reset by a delivery */
	gboolean ever_opened;
	gboolean down_reported;

	/* failover: an export with a backup owns @fo and its own reader; a
	 * backup (cfg->standby) has no reader of its own and uses the export's
	 * while it holds its position */
	failover *fo;
	gboolean is_backup;
	gboolean holding;            /* this thread holds the position it reads: the
				    * export's own until it lets go, the backup's
				    * from taking it until giving it back */
	guint primary_reader;        /* backup: the export's reader */
	gint poked;                  /* atomic: woken by the other side of a hand-off */

	gint reopen_requested;       /* atomic: sink_reopen() was called */
	gint stopping;               /* atomic */
	gint64 stop_deadline_us;     /* atomic via the lock below */
	GMutex stop_lock;
	GCond stop_cond;

	/* Messages sent but not yet known to be delivered: over TCP until the
	 * peer's TCP stack acknowledged their last byte and ack_settle passed,
	 * to a synced file until the next sync.  Oldest first. */
	GArray *unconfirmed;         /* struct sent_message */
	GArray *runs;                /* struct run: positions in the encoder, oldest first */

	/* UDP: what the transport's queue holds, sent by send_queued() */
	struct {
		guint messages;
		guint64 bytes;
		guint64 records;
	} queued;

	struct sink_stats stats;     /* updated with atomics, read from any thread */
	struct flow_record batch[READ_BATCH];
};

static void stat_add(guint64 *counter, guint64 n)
{
	__atomic_add_fetch(counter, n, __ATOMIC_RELAXED);
}

static gboolean is_udp(const sink *s)
{
	return s->cfg->transport == EXPORT_TRANSPORT_UDP;
}

static gboolean needs_confirmation(const sink *s)
{
	return s->cfg->transport == EXPORT_TRANSPORT_TCP ||
	       (s->cfg->transport == EXPORT_TRANSPORT_FILE && s->cfg->sync);
}

/* The position after the next @records records handed to the encoder. */
static guint64 take_positions(sink *s, guint64 records)
{
	guint done = 0;
	guint64 pos = s->emitted_pos;

	while (records && done < s->runs->len) {
		struct run *r = &g_array_index(s->runs, struct run, done);
		guint64 take = MIN(records, r->count);
		r->first += take;
		r->count -= take;
		records -= take;
		pos = r->first;
		if (!r->count)
			done++;
	}
	g_array_remove_range(s->runs, 0, done);
	/* with nothing left in the encoder, skipped positions are passed too */
	return s->runs->len ? pos : MAX(pos, s->read_pos);
}

static void note_run(sink *s, guint64 first, guint64 count)
{
	if (s->runs->len) {
		struct run *last = &g_array_index(s->runs, struct run, s->runs->len - 1);
		if (last->first + last->count == first) {
			last->count += count;
			return;
		}
	}
	struct run r = { first, count };
	g_array_append_val(s->runs, r);
}

/* Records before @pos are delivered. */
static void confirm(sink *s, guint64 pos)
{
	if (pos > s->confirmed_pos) {
		stat_add(&s->stats.records, pos - s->confirmed_pos);
		s->confirmed_pos = pos;
	}
	spool_confirm(s->source, s->reader, pos);
}

/* A refused datagram is reported once per outage and counted; UDP cannot
 * confirm delivery, so its records are gone either way. */
static void note_udp_outcome(sink *s, guint refused, GError *error)
{
	if (refused) {
		stat_add(&s->stats.send_errors, refused);
		if (!s->down_reported)
			g_warning("export %s: %s (further errors counted, not logged)",
				  s->cfg->name, error->message);
		s->down_reported = TRUE;
	} else if (s->down_reported) {
		s->down_reported = FALSE;
		g_message("export %s: datagrams accepted again", s->cfg->name);
	}
}

/*
 * UDP: sends the messages queued since the last call, all at once, and only
 * then passes their records as delivered ("sent" is all UDP can confirm):
 * one system call, one position update and one cursor write per batch
 * instead of per message.  A crash before this loses nothing: the records
 * of queued messages are not confirmed and are sent again after a restart.
 */
static void send_queued(sink *s)
{
	g_autoptr(GError) error = NULL;

	if (!s->queued.messages)
		return;
	guint refused = transport_flush(s->tr, &error);
	note_udp_outcome(s, refused, error);
	stat_add(&s->stats.messages, s->queued.messages);
	stat_add(&s->stats.bytes, s->queued.bytes);
	stat_add(&s->stats.sent, s->queued.records);
	memset(&s->queued, 0, sizeof(s->queued));
	if (s->emitted_pos > s->confirmed_pos) {
		confirm(s, s->emitted_pos);
		s->backoff_ms = s->cfg->reconnect_min_ms;
	}
}

/* UDP: the finished message waits in the transport's queue for send_queued();
 * a full queue is sent first. */
static void queue_datagram(sink *s, const uint8_t *msg, size_t len, guint records)
{
	if (!transport_queue(s->tr, msg, len)) {
		send_queued(s);
		if (!transport_queue(s->tr, msg, len)) {
			/* only a closed transport refuses an empty queue */
			g_autoptr(GError) error = g_error_new(TRANSPORT_ERROR, ENOTCONN, "%s: not open",
							      transport_describe(s->tr));
			note_udp_outcome(s, 1, error);
			stat_add(&s->stats.messages, 1);
			stat_add(&s->stats.bytes, len);
			stat_add(&s->stats.sent, records);
			return;
		}
	}
	s->queued.messages++;
	s->queued.bytes += len;
	s->queued.records += records;
}

/* Called by the encoder with every finished message.  A message of 0 bytes
 * only hands over records the format left out: nothing is sent, and they
 * are done once what went before them is. */
static gboolean deliver(const uint8_t *msg, size_t len, guint records, void *user,
			GError **error)
{
	sink *s = user;

	if (len && is_udp(s)) {
		queue_datagram(s, msg, len, records);
	} else if (len) {
		if (!transport_send(s->tr, msg, len, error)) {
			stat_add(&s->stats.send_errors, 1);
			return FALSE;
		}
		stat_add(&s->stats.messages, 1);
		stat_add(&s->stats.bytes, len);
		stat_add(&s->stats.sent, records);
	}
	if (!records)
		return TRUE;
	s->emitted_pos = take_positions(s, records);
	if (is_udp(s)) {
		/* send_queued() confirms them with the queued datagrams */
		if (!len && !s->queued.messages)
			confirm(s, s->emitted_pos);
		return TRUE;
	}
	if (needs_confirmation(s)) {
		struct sent_message m = { transport_bytes_written(s->tr), s->emitted_pos, 0 };
		g_array_append_val(s->unconfirmed, m);
	} else {
		/* an unsynced file has it once written; the local syslog
		 * socket once the datagram is in its reader's queue */
		confirm(s, s->emitted_pos);
		s->backoff_ms = s->cfg->reconnect_min_ms;
	}
	return TRUE;
}

/* Confirms the oldest @done messages. */
static void confirm_first(sink *s, guint done)
{
	if (!done)
		return;
	confirm(s, g_array_index(s->unconfirmed, struct sent_message, done - 1).end_pos);
	g_array_remove_range(s->unconfirmed, 0, done);
	s->backoff_ms = s->cfg->reconnect_min_ms;
}

/* Confirms the messages whose last byte is at or below @offset. */
static void confirm_upto(sink *s, guint64 offset)
{
	guint done = 0;

	while (done < s->unconfirmed->len &&
	       g_array_index(s->unconfirmed, struct sent_message, done).end_offset <= offset)
		done++;
	confirm_first(s, done);
}

/* TCP: the messages acknowledged at @now; whether every one is. */
static gboolean note_acknowledged(sink *s, guint64 offset, gint64 now)
{
	for (guint i = 0; i < s->unconfirmed->len; i++) {
		struct sent_message *m = &g_array_index(s->unconfirmed, struct sent_message, i);
		if (m->end_offset > offset)
			return FALSE;
		if (!m->acked_us)
			m->acked_us = now;
	}
	return TRUE;
}

/* TCP: confirms the messages acknowledged at least ack_settle ago, or
 * every acknowledged one (@all). */
static void confirm_settled(sink *s, gint64 now, gboolean all)
{
	gint64 settle = (gint64)s->cfg->ack_settle_ms * 1000;
	guint done = 0;

	while (done < s->unconfirmed->len) {
		const struct sent_message *m =
			&g_array_index(s->unconfirmed, struct sent_message, done);
		if (!m->acked_us || (!all && now - m->acked_us < settle))
			break;
		done++;
	}
	confirm_first(s, done);
}

/*
 * TCP: what the peer acknowledged is delivered once the acknowledgement
 * stood for ack_settle with the connection up.  An acknowledgement comes
 * from the collector's host, not the collector: bytes in its socket that
 * it never read (it stopped, it crashed) are lost with the connection,
 * which its host then resets.  So the last ack_settle of acknowledged
 * messages stays unconfirmed, and is sent again after a reset.  A close
 * with a FIN instead says the collector read everything its host took:
 * then what was acknowledged is delivered at once.  Acknowledged bytes are
 * counted before the connection is checked: SIOCOUTQ still tells them
 * apart after a reset.  Then the check itself: acknowledgements that will
 * never come (the collector reset or closed it) must end the session now,
 * not at the next send, which may be a long way off when no flows end.
 * @all_acked: set to whether every message sent was acknowledged.
 */
static gboolean poll_acknowledged_all(sink *s, gboolean *all_acked, GError **error)
{
	guint64 unacked;
	gint64 now = g_get_monotonic_time();

	*all_acked = FALSE;
	if (s->cfg->transport != EXPORT_TRANSPORT_TCP)
		return TRUE;
	if (s->unconfirmed->len && transport_unacked(s->tr, &unacked))
		*all_acked = note_acknowledged(s, transport_bytes_written(s->tr) - unacked, now);
	if (!transport_check_peer(s->tr, error)) {
		confirm_settled(s, now, transport_peer_closed(s->tr));
		return FALSE;
	}
	confirm_settled(s, now, FALSE);
	return TRUE;
}

static gboolean poll_acknowledged(sink *s, GError **error)
{
	gboolean all_acked;

	return poll_acknowledged_all(s, &all_acked, error);
}

static gboolean stop_expired(sink *s);

/*
 * Waits until what was sent is confirmed, a stop's deadline or @until.
 * Once the collector acknowledged everything, ctflowd's side of the
 * connection is closed (FIN): a collector that reads to the end and closes
 * says so, and nothing need wait for ack_settle.  @error is set when the
 * connection broke (or ended, with everything confirmed).
 */
static void wait_confirmed(sink *s, gint64 until, GError **error)
{
	gboolean shut = FALSE;

	while (s->unconfirmed->len && !stop_expired(s) && g_get_monotonic_time() < until) {
		gboolean all_acked;
		if (!poll_acknowledged_all(s, &all_acked, error))
			return;
		if (all_acked && !shut && s->unconfirmed->len) {
			transport_shutdown_write(s->tr);
			shut = TRUE;
		}
		if (s->unconfirmed->len)
			g_usleep(ACK_POLL_US);
	}
}

static gboolean sync_and_confirm(sink *s, GError **error)
{
	send_queued(s);
	if (!transport_sync(s->tr, error))
		return FALSE;
	if (s->cfg->transport == EXPORT_TRANSPORT_FILE)
		confirm_upto(s, G_MAXUINT64);
	return TRUE;
}

sink *sink_new(const struct export_config *cfg, spool *source, GError **error)
{
	sink *s = g_new0(sink, 1);

	s->cfg = cfg;
	s->source = source;
	s->enc = encoder_new(cfg, deliver, s, error);
	if (!s->enc) {
		g_free(s);
		return NULL;
	}
	s->tr = transport_new(cfg);
	s->is_backup = cfg->standby;
	s->unconfirmed = g_array_new(FALSE, FALSE, sizeof(struct sent_message));
	s->runs = g_array_new(FALSE, FALSE, sizeof(struct run));
	s->backoff_ms = cfg->reconnect_min_ms;
	s->init_ms = (guint64)g_get_real_time() / 1000u;
	/* named: a destination resumes where it stopped, across restarts; a
	 * standby keeps no position of its own (it would hold the journal) */
	s->reader = s->is_backup ? NO_READER : spool_add_reader_named(source, cfg->name);
	if (!s->is_backup)
		s->read_pos = s->emitted_pos = s->confirmed_pos = spool_confirmed(source, s->reader);
	g_mutex_init(&s->stop_lock);
	g_cond_init(&s->stop_cond);
	return s;
}

void sink_set_statistics(sink *s, guint32 process_id, sink_counters_fn fn, void *user)
{
	s->process_id = process_id;
	s->counters = fn;
	s->counters_user = user;
}

const char *sink_name(const sink *s)
{
	return s->cfg->name;
}

static gboolean stop_expired(sink *s)
{
	if (!g_atomic_int_get(&s->stopping))
		return FALSE;
	g_mutex_lock(&s->stop_lock);
	gboolean expired = g_get_monotonic_time() >= s->stop_deadline_us;
	g_mutex_unlock(&s->stop_lock);
	return expired;
}

/* Sleeps up to @us, waking early when the daemon stops. */
static void pause_for(sink *s, gint64 us)
{
	gint64 until = g_get_monotonic_time() + us;

	g_mutex_lock(&s->stop_lock);
	while (g_get_monotonic_time() < until &&
	       !g_atomic_int_compare_and_exchange(&s->poked, 1, 0)) {
		gint64 wake = until;
		if (g_atomic_int_get(&s->stopping))
			wake = MIN(wake, s->stop_deadline_us);
		if (!g_cond_wait_until(&s->stop_cond, &s->stop_lock, wake) &&
		    g_get_monotonic_time() >= wake)
			break;
	}
	g_mutex_unlock(&s->stop_lock);
}

/* An export with a backup that cannot reach its destination lets its
 * position go, with what it sent unconfirmed since its last rewind, and
 * forgets where it was: whoever holds the position next starts from what
 * is confirmed then. */
static void let_go(sink *s)
{
	if (!s->holding)
		return;
	s->holding = FALSE;
	failover_primary_down(s->fo, s->emitted_pos - s->confirmed_pos);
	s->read_pos = s->emitted_pos = s->confirmed_pos;
}

/* Opens the destination and starts a session there; rewinds to the last
 * confirmed record so nothing a broken session held is skipped. */
static gboolean open_session(sink *s)
{
	g_autoptr(GError) error = NULL;

	if (!transport_open(s->tr, &error)) {
		if (!s->down_reported)
			g_warning("export %s: %s; retrying with back-off up to %u ms", s->cfg->name,
				  error->message, s->cfg->reconnect_max_ms);
		s->down_reported = TRUE;
		if (s->fo && !s->is_backup)
			let_go(s);
		pause_for(s, (gint64)s->backoff_ms * 1000);
		s->backoff_ms = MIN(s->backoff_ms * 2, s->cfg->reconnect_max_ms);
		return FALSE;
	}
	guint64 confirmed = spool_confirmed(s->source, s->reader);
	if (s->read_pos > confirmed)
		stat_add(&s->stats.resent, s->read_pos - confirmed);
	s->read_pos = s->emitted_pos = s->confirmed_pos = confirmed;
	g_array_set_size(s->unconfirmed, 0);
	g_array_set_size(s->runs, 0);
	/* whatever the closed transport still queued went nowhere */
	memset(&s->queued, 0, sizeof(s->queued));
	s->message_started_us = 0;
	encoder_set_message_limit(s->enc, transport_message_limit(s->tr));
	if (!encoder_start_session(s->enc, &error)) {
		g_warning("export %s: cannot start a session: %s", s->cfg->name, error->message);
		transport_close(s->tr);
		pause_for(s, (gint64)s->backoff_ms * 1000);
		return FALSE;
	}
	if (s->ever_opened)
		stat_add(&s->stats.reconnects, 1);
	if (s->down_reported || !s->ever_opened)
		g_message("export %s: sending to %s", s->cfg->name, transport_describe(s->tr));
	s->ever_opened = TRUE;
	s->down_reported = FALSE;
	s->reported_lost = 0;   /* a new session learns the total again */
	s->next_refresh_us = g_get_monotonic_time() + (gint64)s->cfg->template_refresh_ms * 1000;
	return TRUE;
}

static void session_broke(sink *s, GError *error)
{
	g_warning("export %s: %s; reconnecting in %u ms", s->cfg->name, error->message,
		  s->backoff_ms);
	transport_close(s->tr);
	/* A peer that accepts and then fails at once must not turn into a
	 * busy loop: each broken session waits like a failed connect. */
	pause_for(s, (gint64)s->backoff_ms * 1000);
	s->backoff_ms = MIN(s->backoff_ms * 2, s->cfg->reconnect_max_ms);
}

static gint64 next_wake(sink *s, gint64 now)
{
	gint64 wake = now + IDLE_WAKE_US;

	/* queued datagrams go out before the thread waits for anything */
	if (s->queued.messages)
		return now;
	if (encoder_pending(s->enc))
		wake = MIN(wake, s->message_started_us + (gint64)s->cfg->flush_interval_ms * 1000);
	if (is_udp(s) && (s->cfg->format == EXPORT_FORMAT_IPFIX ||
			  s->cfg->format == EXPORT_FORMAT_NETFLOW9))
		wake = MIN(wake, s->next_refresh_us);
	if (s->cfg->statistics_ms)
		wake = MIN(wake, s->next_stats_us);
	if (s->unconfirmed->len && s->cfg->transport == EXPORT_TRANSPORT_TCP) {
		/* acknowledgements are watched for closely; once all are in,
		 * the next is the oldest one's settling */
		const struct sent_message *last = &g_array_index(
			s->unconfirmed, struct sent_message, s->unconfirmed->len - 1);
		const struct sent_message *first = &g_array_index(
			s->unconfirmed, struct sent_message, 0);
		wake = MIN(wake, last->acked_us
				 ? first->acked_us + (gint64)s->cfg->ack_settle_ms * 1000
				 : now + ACK_POLL_US);
	}
	return wake;
}

/*
 * The counts cover every message before the report: the flows waiting in
 * the encoder go first, and over UDP the queued datagrams are sent, so that
 * a collector can hold exportedMessageTotalCount against what it received.
 */
static gboolean report_statistics(sink *s, GError **error)
{
	struct export_statistics st = {0};

	if (!encoder_flush(s->enc, error))
		return FALSE;
	send_queued(s);
	if (s->counters)
		s->counters(&st, s->counters_user);
	st.exporting_process_id = s->process_id;
	st.init_ms = s->init_ms;
	st.messages = s->stats.messages;   /* only this thread writes them */
	st.records = s->stats.sent;
	st.octets = s->stats.bytes;
	st.not_sent = spool_lost(s->source, s->reader);
	if (s->fo) {
		struct failover_stats fs;
		failover_get_stats(s->fo, &fs);
		st.failover = TRUE;
		st.takeovers = fs.takeovers;
		st.givebacks = fs.givebacks;
		st.doubtful = fs.doubtful;
	}
	if (!encoder_report_statistics(s->enc, &st, error))
		return FALSE;
	s->reported_lost = st.not_sent;
	/* the records flushed here are confirmed like any others, not only
	 * when the next flow comes */
	return sync_and_confirm(s, error);
}

/* Records the spool had to drop for us are reported, not only logged: a
 * collector can tell a gap from a quiet network only this way. */
static gboolean report_losses(sink *s, GError **error)
{
	if (spool_lost(s->source, s->reader) == s->reported_lost)
		return TRUE;
	return report_statistics(s, error);
}

/* Timers: flush a message that has waited long enough, refresh templates,
 * report losses. */
static gboolean run_timers(sink *s, gint64 now, GError **error)
{
	if (!report_losses(s, error))
		return FALSE;
	if (encoder_pending(s->enc) &&
	    now >= s->message_started_us + (gint64)s->cfg->flush_interval_ms * 1000) {
		if (!encoder_flush(s->enc, error) || !sync_and_confirm(s, error))
			return FALSE;
	}
	if (!poll_acknowledged(s, error))
		return FALSE;
	if (s->cfg->statistics_ms && now >= s->next_stats_us) {
		s->next_stats_us = now + (gint64)s->cfg->statistics_ms * 1000;
		if (!report_statistics(s, error))
			return FALSE;
	}
	if (is_udp(s) && now >= s->next_refresh_us) {
		s->next_refresh_us = now + (gint64)s->cfg->template_refresh_ms * 1000;
		if (!encoder_refresh_templates(s->enc, error))
			return FALSE;
	}
	return TRUE;
}

/* The last message of a stop, and with `statistics` the report that
 * counts it, synced and confirmed as far as the transport can. */
static gboolean send_last(sink *s, GError **error)
{
	if (s->cfg->statistics_ms)
		return report_statistics(s, error);
	return encoder_flush(s->enc, error) && sync_and_confirm(s, error);
}

static gboolean export_batch(sink *s, size_t n, GError **error)
{
	for (size_t i = 0; i < n; i++) {
		if (!encoder_pending(s->enc))
			s->message_started_us = g_get_monotonic_time();
		if (!encoder_add(s->enc, &s->batch[i], error))
			return FALSE;
	}
	return TRUE;
}

/*
 * Closes the file after what it holds is confirmed; the loop then opens the
 * path again.  Should the last flush or sync fail, the file is closed all
 * the same and what was not confirmed goes to the new file.
 */
static void close_for_reopen(sink *s)
{
	g_autoptr(GError) error = NULL;

	if (!encoder_flush(s->enc, &error) || !sync_and_confirm(s, &error)) {
		session_broke(s, error);
		return;
	}
	g_message("export %s: reopening %s", s->cfg->name, transport_describe(s->tr));
	transport_close(s->tr);
}

/* Starts where the position is confirmed now: after a hand-off, what the
 * other side confirmed is not sent again. */
static void rewind_to_confirmed(sink *s)
{
	s->read_pos = s->emitted_pos = s->confirmed_pos = spool_confirmed(s->source, s->reader);
	g_array_set_size(s->unconfirmed, 0);
	g_array_set_size(s->runs, 0);
}

/*
 * A backup gives the position back: its last message goes out and gets
 * GIVEBACK_WAIT_US to be confirmed; what is still unconfirmed then (or was
 * when its connection broke) is counted, and the export sends it again.
 * Its session ends: the next takeover starts a new one, templates first.
 */
static void give_back(sink *s)
{
	g_autoptr(GError) error = NULL;

	if (transport_is_open(s->tr) && encoder_flush(s->enc, &error) &&
	    sync_and_confirm(s, &error))
		wait_confirmed(s, g_get_monotonic_time() + GIVEBACK_WAIT_US, &error);
	if (error && s->unconfirmed->len)
		g_warning("export %s: %s", s->cfg->name, error->message);
	guint64 doubtful = s->emitted_pos - s->confirmed_pos;
	transport_close(s->tr);
	s->holding = FALSE;
	s->reader = NO_READER;
	s->backoff_ms = s->cfg->reconnect_min_ms;
	failover_backup_release(s->fo, doubtful);
}

enum turn { TURN_SEND, TURN_WAIT, TURN_DONE };

/*
 * A backup sends only while it holds the export's position: it waits for
 * it, takes it (from what is confirmed) and gives it back when asked.  At
 * a stop, one that holds nothing has nothing to send.
 */
static enum turn backup_turn(sink *s)
{
	if (!s->holding) {
		if (spool_is_closed(s->source) && failover_phase_get(s->fo) == FAILOVER_PRIMARY)
			return TURN_DONE;
		if (!failover_backup_take(s->fo)) {
			pause_for(s, IDLE_WAKE_US);
			return TURN_WAIT;
		}
		s->holding = TRUE;
		s->reader = s->primary_reader;
		rewind_to_confirmed(s);
	}
	if (failover_backup_must_release(s->fo)) {
		give_back(s);
		return TURN_WAIT;
	}
	return TURN_SEND;
}

/*
 * An export whose backup holds its position keeps trying its destination;
 * once there, it asks for the position back and, while the backup finishes,
 * watches the new connection.  At a stop it is done once the backup
 * delivered everything.
 */
static enum turn primary_turn(sink *s)
{
	g_autoptr(GError) error = NULL;

	if (s->holding)
		return TURN_SEND;
	if (spool_is_closed(s->source) &&
	    spool_confirmed(s->source, s->reader) == spool_end(s->source))
		return TURN_DONE;
	if (!transport_is_open(s->tr) && !open_session(s))
		return TURN_WAIT;
	if (failover_primary_up(s->fo)) {
		/* what the backup confirmed meanwhile is not sent again */
		s->holding = TRUE;
		rewind_to_confirmed(s);
		return TURN_SEND;
	}
	if (!transport_check_peer(s->tr, &error)) {
		failover_primary_down(s->fo, 0);
		session_broke(s, error);
		return TURN_WAIT;
	}
	pause_for(s, IDLE_WAKE_US);
	return TURN_WAIT;
}

/*
 * An export thread runs EXPORT_NICE steps below the rest of ctflowd.  When
 * the two compete for a CPU (a flush, a host that gives ctflowd one), the
 * DESTROY reader must win: every event it is too late for is parked by the
 * kernel and sent again, which costs the host more, and a reader that
 * falls far behind fills the conntrack table.  What an export has not sent
 * yet waits in the journal; it catches up once the burst is over.  Raising
 * a thread's nice value needs no privilege; a CPU to spare leaves it
 * without effect.
 */
#define EXPORT_NICE 5

static void yield_to_reader(sink *s)
{
	id_t tid = (id_t)gettid();

	errno = 0;
	int now = getpriority(PRIO_PROCESS, tid);
	if (now == -1 && errno)
		return;
	if (setpriority(PRIO_PROCESS, tid, MIN(now + EXPORT_NICE, 19)) < 0)
		g_message("export %s: cannot lower the export thread's priority: %s",
			  s->cfg->name, g_strerror(errno));
}

static gpointer sink_thread(gpointer data)
{
	sink *s = data;

	yield_to_reader(s);
	for (;;) {
		/* a stop gives the destination a deadline, also for a backlog it
		 * is still sending: the rest stays in the journal */
		if (stop_expired(s))
			break;
		if (s->fo) {
			enum turn t = s->is_backup ? backup_turn(s) : primary_turn(s);
			if (t == TURN_DONE)
				break;
			if (t == TURN_WAIT)
				continue;
		}
		if (g_atomic_int_compare_and_exchange(&s->reopen_requested, 1, 0) &&
		    transport_is_open(s->tr))
			close_for_reopen(s);
		if (!transport_is_open(s->tr)) {
			if (!open_session(s))
				continue;
		}

		g_autoptr(GError) error = NULL;
		gint64 now = g_get_monotonic_time();
		size_t n = spool_read(s->source, s->reader, &s->read_pos, s->batch, READ_BATCH,
				      next_wake(s, now));
		if (n)
			note_run(s, s->read_pos - n, n);
		if (!export_batch(s, n, &error) || !run_timers(s, g_get_monotonic_time(), &error)) {
			session_broke(s, error);
			continue;
		}
		/* a full read means more records are there: their messages join
		 * the same batch */
		if (n < READ_BATCH)
			send_queued(s);
		if (n > 0 && n < READ_BATCH && !spool_is_closed(s->source))
			g_usleep(LINGER_US);
		if (n == 0 && spool_is_closed(s->source) &&
		    s->read_pos == spool_end(s->source)) {
			/* Everything read: send the last message, wait until it
			 * is confirmed, then leave. */
			if (!send_last(s, &error)) {
				session_broke(s, error);
				continue;
			}
			wait_confirmed(s, G_MAXINT64, &error);
			if (error && s->unconfirmed->len) {
				/* resent to a new connection while the grace lasts */
				session_broke(s, error);
				continue;
			}
			break;
		}
	}

	/* an export waiting for its backup to finish need not wait longer */
	if (s->is_backup && s->fo)
		failover_backup_finished(s->fo);
	guint64 unsent = s->reader == NO_READER ? 0
			 : spool_end(s->source) - spool_confirmed(s->source, s->reader);
	if (unsent)
		g_warning("export %s: stopping with %" G_GUINT64_FORMAT
			  " records not delivered to %s",
			  s->cfg->name, unsent, transport_describe(s->tr));
	transport_close(s->tr);
	return NULL;
}

gboolean sink_start(sink *s, GError **error)
{
	/* Linux keeps 15 bytes of a thread's name and GLib sets none that is
	 * longer: cut, so that top and perf tell the export threads apart */
	g_autofree char *full = g_strdup_printf("export-%s", s->cfg->name);
	g_autofree char *name = g_strndup(full, 15);

	/* a standby has no position of its own to send from */
	g_return_val_if_fail(!s->is_backup || s->fo, FALSE);
	s->next_stats_us = g_get_monotonic_time() + (gint64)s->cfg->statistics_ms * 1000;
	s->thread = g_thread_try_new(name, sink_thread, s, error);
	return s->thread != NULL;
}

void sink_stop(sink *s, guint grace_ms)
{
	if (!s->thread)
		return;
	g_mutex_lock(&s->stop_lock);
	s->stop_deadline_us = g_get_monotonic_time() + (gint64)grace_ms * 1000;
	g_atomic_int_set(&s->stopping, 1);
	g_cond_broadcast(&s->stop_cond);
	g_mutex_unlock(&s->stop_lock);
	g_thread_join(s->thread);
	s->thread = NULL;
}

void sink_reopen(sink *s)
{
	if (s->cfg->transport == EXPORT_TRANSPORT_FILE)
		g_atomic_int_set(&s->reopen_requested, 1);
}

void sink_get_stats(sink *s, struct sink_stats *out)
{
	out->records = __atomic_load_n(&s->stats.records, __ATOMIC_RELAXED);
	out->sent = __atomic_load_n(&s->stats.sent, __ATOMIC_RELAXED);
	out->messages = __atomic_load_n(&s->stats.messages, __ATOMIC_RELAXED);
	out->bytes = __atomic_load_n(&s->stats.bytes, __ATOMIC_RELAXED);
	out->send_errors = __atomic_load_n(&s->stats.send_errors, __ATOMIC_RELAXED);
	out->reconnects = __atomic_load_n(&s->stats.reconnects, __ATOMIC_RELAXED);
	out->resent = __atomic_load_n(&s->stats.resent, __ATOMIC_RELAXED);
	/* a backup's losses are those of the export it backs, counted there */
	out->lost = s->is_backup ? 0 : spool_lost(s->source, s->reader);
	out->skipped = encoder_skipped(s->enc);
	struct failover_stats fs = {0};
	if (s->fo)
		failover_get_stats(s->fo, &fs);
	out->takeovers = fs.takeovers;
	out->givebacks = fs.givebacks;
	out->doubtful = fs.doubtful;
}

/* Wakes the thread from pause_for(): the other side of a hand-off moved. */
static void poke(void *user)
{
	sink *s = user;

	g_atomic_int_set(&s->poked, 1);
	g_mutex_lock(&s->stop_lock);
	g_cond_broadcast(&s->stop_cond);
	g_mutex_unlock(&s->stop_lock);
}

void sink_set_failover(sink *primary, sink *backup)
{
	g_return_if_fail(!primary->is_backup && backup->is_backup && !backup->fo);
	primary->fo = failover_new(primary->cfg->name, backup->cfg->name, poke, primary, poke, backup);
	primary->holding = TRUE;
	backup->fo = primary->fo;
	backup->primary_reader = primary->reader;
}

void sink_free(sink *s)
{
	if (!s)
		return;
	if (s->thread)
		sink_stop(s, 0);
	if (!s->is_backup)
		failover_free(s->fo);
	encoder_free(s->enc);
	transport_free(s->tr);
	g_array_free(s->unconfirmed, TRUE);
	g_array_free(s->runs, TRUE);
	g_mutex_clear(&s->stop_lock);
	g_cond_clear(&s->stop_cond);
	g_free(s);
}
