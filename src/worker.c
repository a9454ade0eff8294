/*
 * worker.c - the process that reads conntrack events and exports them.
 *
 *   ct_source (landing zone) -> intake (dedup, flowId) -> spool -> sinks
 *
 * One GLib loop on the main thread drains the netlink socket and never waits
 * for a collector; each destination has its own thread (sink.c).  The
 * supervisor restarts this process if it dies; the event socket it reads
 * belongs to the supervisor.
 */
#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <glib-unix.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/prctl.h>

#include "config-build.h"
#include "ctflowd/conn_state.h"
#include "ctflowd/ct_filter.h"
#include "ctflowd/ct_source.h"
#include "ctflowd/ct_walk.h"
#include "ctflowd/error.h"
#include "ctflowd/flow_id.h"
#include "ctflowd/handover.h"
#include "ctflowd/intake.h"
#include "ctflowd/netns.h"
#include "ctflowd/sink.h"
#include "ctflowd/spool.h"
#include "ctflowd/state_dir.h"
#include "ctflowd/supervisor.h"
#include "ctflowd/worker.h"

#define STOP_GRACE_MS 10000      /* a stop delivers for this long, to all destinations */
#define HELD_BACK_CHECK_MS 250   /* how often a stop lists what the kernel holds back */
#define HELD_BACK_IDLE_MS 2000    /* ... gives up when no new flow came for this long */
#define HELD_BACK_MAX_MS 30000    /* ... and after this in any case */
/* the tail of a stop (joining threads, closing files) fits in what is left */
_Static_assert(HELD_BACK_MAX_MS + STOP_GRACE_MS + 2000 <= WORKER_STOP_LIMIT_MS,
	       "the phases of a stop fit in its bound");
#define HEARTBEAT_MS 250
/* the connection state's snapshot, in the state directory */
#define STATE_FILE "interim-state"
#define STATE_READER "interim-state"
/* walks come this often per active timeout, within these bounds: a record
 * is due at most a fifth of the timeout late */
#define WALKS_PER_TIMEOUT 5
#define WALK_MIN_MS 1000
#define WALK_MAX_MS 60000
/* how stale the counters the main loop logs may be */
#define STATS_PUBLISH_US (50 * 1000)

struct daemon {
	const struct ctflowd_config *config;
	int events_fd;
	gboolean supervised;
	spool *spool;
	flow_ids *flow_ids;
	intake *intake;
	ct_source *source;
	conn_state *state;           /* what interim records reported (reader thread) */
	gboolean state_kept;         /* a snapshot is kept, and the journal for it */
	guint state_reader;          /* the spool reader that keeps that journal */
	gint state_unsaved;          /* (atomic) the next snapshot must be written even
				      * if nothing changed: the last one was not, or
				      * the start folded records in */
	int state_dirfd;
	ct_walk *walk;
	gboolean walked;                 /* a walker ran: its last counts follow */
	struct ct_walk_stats walk_stats; /* its counts when it stopped */
	ct_filter *filter;           /* the source's filter_* keys */
	GPtrArray *sinks;
	GMainLoop *loop;
	GThread *reader;
	int stop_fd;                 /* eventfd: tells the reader to stop */
	GMutex stats_lock;           /* the reader's counters, as of its last drain */
	struct ct_source_stats source_stats;
	struct intake_stats intake_stats;
	guint state_size;
	gsize state_memory;
	int exit_status;
	GThread *watchdog;           /* ends a stop that overruns WORKER_STOP_LIMIT_MS */
	GMutex watchdog_lock;
	GCond watchdog_cond;
	gboolean stop_done;          /* under watchdog_lock */
	gint64 stop_started_us;
};

/* ---- the kernel side ---------------------------------------------------- */

/* ---- the connection state of interim records --------------------------- */

/*
 * (walker thread, or the main thread at the end) The snapshot goes to disk
 * before the journal it covers may go.  Without a snapshot (NULL), nothing
 * in the journal since the last one changed the state: the journal up to
 * @position may go at once, and the next start folds in from the later of
 * the snapshot's position and this one.
 */
static void persist_state(GBytes *snapshot, guint64 position, void *user)
{
	struct daemon *d = user;
	g_autoptr(GError) error = NULL;
	gsize len;

	if (!snapshot) {
		if (position > spool_confirmed(d->spool, d->state_reader))
			spool_confirm(d->spool, d->state_reader, position);
		return;
	}
	const void *data = g_bytes_get_data(snapshot, &len);

	/* A snapshot must never be ahead of the journal on disk: after a power
	 * loss it would subtract interim records the journal no longer has. */
	if (!spool_wait_durable(d->spool, position, g_get_monotonic_time() + 5 * G_USEC_PER_SEC)) {
		g_warning("connection state: the journal is not synced up to record %" G_GUINT64_FORMAT
			  " after 5 s; the snapshot waits for the next walk", position);
		g_atomic_int_set(&d->state_unsaved, TRUE);
		return;
	}
	if (!state_dir_replace_file(d->state_dirfd, d->config->daemon.state_directory, STATE_FILE,
				    data, len, 0640, &error)) {
		/* the journal is kept from the last good snapshot on: nothing
		 * is lost, the journal only grows */
		g_warning("connection state: %s", error->message);
		g_atomic_int_set(&d->state_unsaved, TRUE);
		return;
	}
	spool_confirm(d->spool, d->state_reader, position);
}

/* NAT sessions are refreshed only when some export logs them. */
static guint nat_refresh_ms(const struct daemon *d)
{
	return config_nat_events(d->config) ? d->config->source.nat_refresh_ms : 0;
}

static gint64 walk_burst_seen(const void *source)
{
	return ct_source_burst_seen_us(source);
}

static ct_walk *open_walk(struct daemon *d, GError **error)
{
	guint timeout = d->config->source.active_timeout_ms;
	guint refresh = nat_refresh_ms(d);
	guint interval = d->config->source.walk_interval_ms;
	/* the walk serves the shorter of the two */
	guint shortest = timeout && refresh ? MIN(timeout, refresh) : MAX(timeout, refresh);

	if (!interval)
		interval = shortest ? CLAMP(shortest / WALKS_PER_TIMEOUT, WALK_MIN_MS, WALK_MAX_MS)
				    : WALK_MAX_MS;

	return ct_walk_new(interval, timeout ? (guint64)timeout * 1000000 : G_MAXUINT64,
			   refresh ? (guint64)refresh * 1000000 : G_MAXUINT64, shortest != 0,
			   persist_state, d, error);
}

/*
 * The snapshot covers the journal up to a position; the records after it
 * are folded in again.  Kept when interim records are on, and after they
 * were, for as long as a snapshot is there: connections that had interim
 * records still need their final records to subtract them.
 */
static gboolean load_state(struct daemon *d, GError **error)
{
	const char *dir = d->config->daemon.state_directory;
	g_autoptr(GError) load_error = NULL;
	guint64 covered = G_MAXUINT64;

	d->state_dirfd = state_dir_open(dir, TRUE, error);
	if (d->state_dirfd < 0)
		return FALSE;
	d->state = conn_state_load(d->state_dirfd, dir, STATE_FILE, &covered, &load_error);
	if (!d->state) {
		/* Not trusted.  A connection it listed would have its final
		 * record count again what its interim records reported: said
		 * loudly, and the journal folded from as far back as it goes. */
		g_critical("connection state: %s; connections that had interim records before the"
			   " journal's oldest record may have their final record count them again",
			   load_error->message);
		g_autofree char *aside = g_strconcat(STATE_FILE, ".bad", NULL);
		if (renameat(d->state_dirfd, STATE_FILE, d->state_dirfd, aside) < 0)
			g_warning("connection state: cannot set %s aside: %s", STATE_FILE,
				  g_strerror(errno));
		d->state = conn_state_new();
		covered = 0;
	}
	d->state_kept = d->config->source.active_timeout_ms != 0 || config_nat_events(d->config) ||
			covered != G_MAXUINT64;
	if (!d->state_kept)
		return TRUE;
	d->state_reader = spool_add_reader_named(d->spool, STATE_READER);
	/* past the snapshot, the reader's position may have moved on over
	 * records that changed nothing (persist_state) */
	guint64 confirmed = spool_confirmed(d->spool, d->state_reader);
	guint64 pos = covered == G_MAXUINT64 ? confirmed : MAX(covered, confirmed);
	guint64 end = spool_end(d->spool), folded = 0;
	if (pos > end)
		g_warning("connection state: the snapshot covers the journal up to record %"
			  G_GUINT64_FORMAT ", but it ends at %" G_GUINT64_FORMAT " (records lost"
			  " with the disk's cache?)", pos, end);
	struct flow_record buf[256];
	size_t n;
	while (pos < end && (n = spool_read(d->spool, d->state_reader, &pos, buf, 256, 0))) {
		for (size_t i = 0; i < n; i++)
			conn_state_apply(d->state, &buf[i]);
		folded += n;
	}
	g_message("connection state: %u connections with interim records (%" G_GUINT64_FORMAT
		  " journal records folded in)", conn_state_size(d->state), folded);
	d->state_unsaved = TRUE;   /* the first walk writes what this start found */
	return TRUE;
}

/* (reader thread) Takes what the walker found; after a walk, a snapshot. */
static void take_walk(struct daemon *d)
{
	if (!ct_walk_take(d->walk, intake_records, d->intake))
		return;
	guint64 end = spool_end(d->spool);
	/* both are taken: each must be cleared */
	gboolean changed = intake_take_state_changed(d->intake);
	changed |= g_atomic_int_exchange(&d->state_unsaved, FALSE);
	ct_walk_hand_snapshot(d->walk, changed ? conn_state_snapshot(d->state, end) : NULL, end);
}

/* The dump socket of a resync must be in the watched namespace too. */
static ct_source *open_source(struct daemon *d, GError **error)
{
	const struct source_config *sc = &d->config->source;
	struct ct_source_options opts = {
		.receive_buffer = sc->receive_buffer,
		.reliable = sc->reliable,
		.subscribe_new = sc->subscribe_new,
		.resync_delay_ms = sc->resync_delay_ms,
		.hand_on_each_read = d->config->daemon.spool_sync == SPOOL_SYNC_RECORD,
		.filter = d->filter,
	};
	g_autofree char *landing =
		g_build_filename(d->config->daemon.state_directory, "landing", NULL);
	int saved = -1;

	if (sc->netns && (saved = netns_enter(sc->netns, error)) < 0)
		return NULL;
	ct_source *src = ct_source_new(d->events_fd, landing, &opts, intake_records, d->intake,
				       error);
	/* what a predecessor left in the landing zone is taken */
	intake_recovered(d->intake);
	if (src && d->state_kept && !(d->walk = open_walk(d, error))) {
		ct_source_free(src);
		src = NULL;
	}
	if (saved >= 0) {
		g_autoptr(GError) leave_error = NULL;
		if (!netns_leave(saved, &leave_error)) {
			/* export sockets would open in the wrong namespace */
			ct_source_free(src);
			g_propagate_error(error, g_steal_pointer(&leave_error));
			return NULL;
		}
	}
	return src;
}

/*
 * The reader thread: poll, drain, repeat.  It owns the event socket, the
 * landing zone, the duplicate filter and the appending end of the spool.
 * It runs apart from the GLib loop, whose bookkeeping on every wake-up
 * (about 0.7 us) would cost as much again as the events themselves when a
 * small receive buffer wakes the reader for every few events.
 */
static gboolean on_reader_failed(gpointer data)
{
	struct daemon *d = data;

	d->exit_status = EXIT_FAILURE;
	g_main_loop_quit(d->loop);
	return G_SOURCE_REMOVE;
}

static void publish_stats(struct daemon *d)
{
	g_mutex_lock(&d->stats_lock);
	d->source_stats = *ct_source_get_stats(d->source);
	d->intake_stats = *intake_get_stats(d->intake);
	d->state_size = conn_state_size(d->state);
	d->state_memory = conn_state_memory(d->state);
	g_mutex_unlock(&d->stats_lock);
}

static int next_timeout_ms(struct daemon *d, gint64 now)
{
	gint64 ms = HEARTBEAT_MS;
	gint64 resync = ct_source_resync_due(d->source);
	gint64 sync_us = spool_sync_pending(d->spool, now);
	gint64 landed_us = ct_source_landed_due_us(d->source, now);

	if (landed_us >= 0)
		ms = MIN(ms, (landed_us + 999) / 1000);
	if (resync >= 0)
		ms = MIN(ms, resync);
	if (sync_us >= 0)
		ms = MIN(ms, (sync_us + 999) / 1000);
	return (int)ms;
}

/*
 * Two clock readings per wake-up, one for the drain and one after it (a
 * drain in a burst may sleep), serve every deadline below; with a small
 * receive buffer a burst wakes the reader every few events, and a reading
 * each for the landing zone, the group commit, the statistics and the
 * supervisor's heartbeat added up to a tenth of the reader's own work.
 */
static gpointer reader_thread(gpointer data)
{
	struct daemon *d = data;
	struct pollfd fds[3] = {
		{ .fd = ct_source_fd(d->source), .events = POLLIN },
		{ .fd = d->stop_fd, .events = POLLIN },
		{ .fd = d->walk ? ct_walk_fd(d->walk) : -1, .events = POLLIN },
	};
	gint64 now = g_get_monotonic_time();
	gint64 next_publish = now;

	/* the pauses between drains in a burst are tens of microseconds; the
	 * default slack of 50 us would stretch them past the buffer's fill time */
	prctl(PR_SET_TIMERSLACK, 1UL);

	for (;;) {
		g_autoptr(GError) error = NULL;
		int timeout = next_timeout_ms(d, now);

		if (poll(fds, 3, timeout) < 0 && errno != EINTR) {
			g_critical("waiting for conntrack events: %s; stopping", g_strerror(errno));
			g_main_context_invoke(NULL, on_reader_failed, d);
			break;
		}
		if (fds[1].revents)
			break;
		now = g_get_monotonic_time();
		if ((fds[0].revents & (POLLIN | POLLERR)) &&
		    !ct_source_drain(d->source, now, &error)) {
			g_critical("%s; stopping", error->message);
			g_main_context_invoke(NULL, on_reader_failed, d);
			break;
		}
		/* events first: a walk only uses what time they leave */
		if (fds[2].revents & POLLIN)
			take_walk(d);
		now = g_get_monotonic_time();
		if (ct_source_landed_due_us(d->source, now) == 0)
			ct_source_deliver_landed(d->source);
		if (ct_source_resync_due(d->source) == 0 && !ct_source_resync(d->source, &error))
			g_warning("resync failed: %s", error->message);
		if (now >= next_publish) {
			publish_stats(d);
			next_publish = now + STATS_PUBLISH_US;
		}
		if (d->supervised)
			supervisor_worker_alive(now);
	}
	publish_stats(d);
	return NULL;
}

static gboolean start_reader(struct daemon *d, GError **error)
{
	d->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (d->stop_fd < 0) {
		g_set_error(error, CTFLOWD_ERROR, errno, "eventfd: %s", g_strerror(errno));
		return FALSE;
	}
	d->reader = g_thread_try_new("reader", reader_thread, d, error);
	return d->reader != NULL;
}

static void stop_reader(struct daemon *d)
{
	guint64 one = 1;

	if (!d->reader)
		return;
	if (write(d->stop_fd, &one, sizeof(one)) < 0)
		g_warning("cannot stop the reader: %s", g_strerror(errno));
	g_thread_join(d->reader);
	d->reader = NULL;
}

/* ---- statistics ----------------------------------------------------------- */

static void log_stats(struct daemon *d, const char *when)
{
	struct ct_source_stats src;
	struct intake_stats in;
	const struct ct_source_stats *cs = &src;
	const struct intake_stats *is = &in;
	g_autoptr(GString) line = g_string_new(NULL);

	guint state_size;
	gsize state_memory;

	g_mutex_lock(&d->stats_lock);
	src = d->source_stats;
	in = d->intake_stats;
	state_size = d->state_size;
	state_memory = d->state_memory;
	g_mutex_unlock(&d->stats_lock);

	g_string_append_printf(line,
			       "%s: destroy events %" G_GUINT64_FORMAT ", duplicates %" G_GUINT64_FORMAT
			       ", accepted %" G_GUINT64_FORMAT ", malformed %" G_GUINT64_FORMAT
			       ", overruns %" G_GUINT64_FORMAT " in %" G_GUINT64_FORMAT
			       " bursts, without counters %" G_GUINT64_FORMAT
			       ", without timestamps %" G_GUINT64_FORMAT ", recovered %" G_GUINT64_FORMAT
			       ", not from the kernel %" G_GUINT64_FORMAT
			       ", filtered out in user space %" G_GUINT64_FORMAT,
			       when, cs->destroys, is->duplicates, is->accepted, cs->malformed,
			       cs->overruns, cs->overrun_bursts, cs->no_counters, cs->no_timestamps,
			       cs->recovered, cs->not_kernel, cs->filtered);
	for (guint i = 0; i < d->sinks->len; i++) {
		sink *s = g_ptr_array_index(d->sinks, i);
		struct sink_stats st;
		sink_get_stats(s, &st);
		g_string_append_printf(line,
				       "; export %s: records %" G_GUINT64_FORMAT
				       ", sent %" G_GUINT64_FORMAT ", messages %" G_GUINT64_FORMAT ", send errors %" G_GUINT64_FORMAT
				       ", reconnects %" G_GUINT64_FORMAT ", resent %" G_GUINT64_FORMAT
				       ", lost %" G_GUINT64_FORMAT ", skipped %" G_GUINT64_FORMAT,
				       sink_name(s), st.records, st.sent, st.messages, st.send_errors,
				       st.reconnects, st.resent, st.lost, st.skipped);
		const struct export_config *ec = g_ptr_array_index(d->config->exports, i);
		if (ec->failover || ec->standby)
			g_string_append_printf(line,
					       ", takeovers %" G_GUINT64_FORMAT
					       ", givebacks %" G_GUINT64_FORMAT
					       ", doubtful %" G_GUINT64_FORMAT,
					       st.takeovers, st.givebacks, st.doubtful);
	}
	if (d->state_kept) {
		g_string_append_printf(line, "; interim records %" G_GUINT64_FORMAT
				       ", connections with interim records %u (%" G_GSIZE_FORMAT
				       " bytes)", in.interim, state_size, state_memory);
	}
	if (config_nat_events(d->config)) {
		g_string_append_printf(line, "; NAT creates %" G_GUINT64_FORMAT ", late %"
				       G_GUINT64_FORMAT ", refreshes %" G_GUINT64_FORMAT
				       ", repeated NEW events %" G_GUINT64_FORMAT,
				       in.nat_creates, in.nat_late, in.nat_refreshes, in.nat_repeats);
	}
	if (d->walk || d->walked) {
		struct ct_walk_stats ws = d->walk_stats;
		if (d->walk)
			ct_walk_get_stats(d->walk, &ws);
		g_string_append_printf(line, ", table walks %" G_GUINT64_FORMAT " (interrupted %"
				       G_GUINT64_FORMAT ", cut short %" G_GUINT64_FORMAT
				       ", paused for the reader %" G_GUINT64_FORMAT
				       "), last walk %" G_GUINT64_FORMAT " entries in %" G_GUINT64_FORMAT
				       " ms, %" G_GUINT64_FORMAT " ms CPU",
				       ws.walks, ws.interrupted, ws.failed, ws.yields, ws.last_entries,
				       ws.last_us / 1000, ws.last_cpu_us / 1000);
	}
	g_string_append_printf(line, "; spool dropped %" G_GUINT64_FORMAT,
			       spool_dropped_total(d->spool));
	g_message("%s", line->str);
}

static gboolean on_stats_timer(gpointer data)
{
	log_stats(data, "statistics");
	return G_SOURCE_CONTINUE;
}

static gboolean on_usr1(gpointer data)
{
	log_stats(data, "statistics");
	return G_SOURCE_CONTINUE;
}

/* logrotate's postrotate sends SIGHUP after renaming the files */
static gboolean on_hangup(gpointer data)
{
	struct daemon *d = data;

	g_message("SIGHUP: reopening the files of file exports");
	for (guint i = 0; d->sinks && i < d->sinks->len; i++)
		sink_reopen(g_ptr_array_index(d->sinks, i));
	return G_SOURCE_CONTINUE;
}

static gboolean on_terminate(gpointer data)
{
	struct daemon *d = data;

	if (d->supervised && supervisor_worker_orphaned())
		g_warning("the supervisor is gone; stopping, and leaving the event socket for "
			  "the next ctflowd");
	else
		g_message("stopping on signal");
	g_main_loop_quit(d->loop);
	return G_SOURCE_CONTINUE;
}

/* ---- the bound of a stop ------------------------------------------------ */

/*
 * Each phase of a stop has a bound of its own, but a call can still block
 * past it (a TCP send to a stalled collector, a dump the kernel is slow to
 * walk), and an orphaned worker has no supervisor to kill it.  Ending early
 * is what a kill does: the journal keeps what was not delivered.  An orphan
 * leaves the socket first, so that the next ctflowd loses no event.
 */
static gpointer watchdog_thread(gpointer data)
{
	struct daemon *d = data;
	gint64 deadline = d->stop_started_us + (gint64)WORKER_STOP_LIMIT_MS * 1000;

	g_mutex_lock(&d->watchdog_lock);
	while (!d->stop_done && g_get_monotonic_time() < deadline)
		g_cond_wait_until(&d->watchdog_cond, &d->watchdog_lock, deadline);
	gboolean done = d->stop_done;
	g_mutex_unlock(&d->watchdog_lock);
	if (done)
		return NULL;
	g_critical("the stop did not end within %d ms; ending it now (records not delivered "
		   "stay in the journal for the next start)",
		   WORKER_STOP_LIMIT_MS);
	if (d->supervised && supervisor_worker_orphaned()) {
		g_autoptr(GError) error = NULL;
		if (!handover_leave(&d->config->daemon, d->events_fd, NULL, &error))
			g_warning("%s", error->message);
	}
	_exit(EXIT_FAILURE);
}

static void arm_watchdog(struct daemon *d)
{
	g_autoptr(GError) error = NULL;

	d->stop_started_us = g_get_monotonic_time();
	g_mutex_init(&d->watchdog_lock);
	g_cond_init(&d->watchdog_cond);
	d->watchdog = g_thread_try_new("stop-watchdog", watchdog_thread, d, &error);
	if (!d->watchdog)
		g_warning("%s: only the supervisor bounds this stop", error->message);
}

static void disarm_watchdog(struct daemon *d)
{
	if (!d->watchdog)
		return;
	g_mutex_lock(&d->watchdog_lock);
	d->stop_done = TRUE;
	g_cond_broadcast(&d->watchdog_cond);
	g_mutex_unlock(&d->watchdog_lock);
	g_thread_join(d->watchdog);
	d->watchdog = NULL;
	g_mutex_clear(&d->watchdog_lock);
	g_cond_clear(&d->watchdog_cond);
}

/* ---- destinations --------------------------------------------------------- */

/* For the export threads' statistics: the reader's counters as it last
 * published them (the lock is held for a copy, so the reader never waits
 * for an export), and the spool's own. */
static void daemon_counters(struct export_statistics *out, void *user)
{
	struct daemon *d = user;

	g_mutex_lock(&d->stats_lock);
	out->destroy_events = d->source_stats.destroys;
	out->duplicates = d->intake_stats.duplicates;
	out->overruns = d->source_stats.overruns;
	out->malformed = d->source_stats.malformed;
	g_mutex_unlock(&d->stats_lock);
	out->spool_dropped = spool_dropped_total(d->spool);
}

/* Each export with `failover` gets its backup (the configuration checked
 * that the name exists, is a standby and backs this export alone). */
static void link_failovers(struct daemon *d)
{
	GPtrArray *exports = d->config->exports;

	for (guint i = 0; i < exports->len; i++) {
		const struct export_config *ec = g_ptr_array_index(exports, i);
		if (!ec->failover)
			continue;
		for (guint j = 0; j < exports->len; j++) {
			const struct export_config *bc = g_ptr_array_index(exports, j);
			if (strcmp(bc->name, ec->failover) == 0)
				sink_set_failover(g_ptr_array_index(d->sinks, i),
						  g_ptr_array_index(d->sinks, j));
		}
	}
}

static gboolean start_sinks(struct daemon *d, GError **error)
{
	for (guint i = 0; i < d->config->exports->len; i++) {
		const struct export_config *ec = g_ptr_array_index(d->config->exports, i);
		sink *s = sink_new(ec, d->spool, error);
		if (!s) {
			g_prefix_error(error, "export %s: ", ec->name);
			return FALSE;
		}
		sink_set_statistics(s, i + 1, daemon_counters, d);
		g_ptr_array_add(d->sinks, s);
	}
	link_failovers(d);
	for (guint i = 0; i < d->sinks->len; i++) {
		if (!sink_start(g_ptr_array_index(d->sinks, i), error))
			return FALSE;
	}
	return TRUE;
}

/*
 * Reliable delivery keeps DESTROYs the socket had no room for on the
 * kernel's dying list and resends them as the socket drains.  Closing the
 * socket before they come loses them, so a stop keeps reading until that
 * list is empty: as long as flows it had not taken yet keep coming (a large
 * backlog takes a while), and no longer than HELD_BACK_MAX_MS.  Entries
 * that another reliable listener does not take stay on the list, and the
 * kernel keeps resending them to every socket: repeats are no progress.
 *
 * A worker whose supervisor was killed does not wait for them when the
 * socket goes on to the next ctflowd, which reads them there: until this
 * worker is gone, the next one cannot have the journal.
 */
static void drain_kernel(struct daemon *d)
{
	gboolean leave_held_back = d->supervised && supervisor_worker_orphaned() &&
				   handover_keeps_socket(&d->config->daemon);
	gint64 start = g_get_monotonic_time();
	gint64 progress = start, next_check = start;
	guint64 before = intake_get_stats(d->intake)->accepted;
	/* one look at the dying list is one reply: this only bounds a kernel
	 * that does not answer */
	const gint64 look_us = 1000 * 1000;
	struct pollfd p = { .fd = ct_source_fd(d->source), .events = POLLIN };

	for (;;) {
		g_autoptr(GError) error = NULL;
		if (!ct_source_drain(d->source, g_get_monotonic_time(), &error)) {
			g_warning("last read of conntrack events: %s", error->message);
			break;
		}
		if (leave_held_back)
			break;
		/* through the filter at once, which tells new flows from repeats */
		ct_source_deliver_landed(d->source);
		gint64 now = g_get_monotonic_time();
		guint64 taken = intake_get_stats(d->intake)->accepted;
		if (taken != before) {
			before = taken;
			progress = now;
		}
		if (!d->config->source.reliable)
			break;
		/* look at the dying list now and then, and keep reading in
		 * between */
		if (now >= next_check) {
			gboolean held = FALSE;
			next_check = now + HELD_BACK_CHECK_MS * 1000;
			if (!ct_source_held_back(d->source,
						 MIN(now + look_us, start + HELD_BACK_MAX_MS * 1000),
						 &held, &error)) {
				g_warning("cannot look for DESTROY events the kernel holds back: %s",
					  error->message);
				break;
			}
			if (!held)
				break;
		}
		if (now - progress >= HELD_BACK_IDLE_MS * 1000 ||
		    now - start >= HELD_BACK_MAX_MS * 1000) {
			g_warning("stopping while the kernel still holds back DESTROY events; "
				  "flows among them that were not for ctflowd's socket belong "
				  "to another reliable listener");
			break;
		}
		poll(&p, 1, 10);
	}
	ct_source_deliver_landed(d->source);
}

/* Takes what the kernel queued or holds back, then lets every destination
 * send what it holds before the threads end. */
static void stop_pipeline(struct daemon *d)
{
	arm_watchdog(d);
	stop_reader(d);
	if (d->walk) {
		/* the final statistics still say what the walks did */
		ct_walk_get_stats(d->walk, &d->walk_stats);
		d->walked = TRUE;
	}
	ct_walk_free(g_steal_pointer(&d->walk));
	if (d->source) {
		drain_kernel(d);
		publish_stats(d);
	}
	if (!d->spool)
		return;
	spool_close(d->spool);
	/* after the close, which syncs the journal: the next start folds in
	 * nothing but what comes after this */
	if (d->state_kept && d->intake) {
		guint64 end = spool_end(d->spool);
		gboolean changed = intake_take_state_changed(d->intake);
		changed |= g_atomic_int_exchange(&d->state_unsaved, FALSE);
		g_autoptr(GBytes) last = changed ? conn_state_snapshot(d->state, end) : NULL;
		persist_state(last, end, d);
	}
	/* one deadline for all: the destinations stop one after the other */
	gint64 deliver_by = g_get_monotonic_time() + (gint64)STOP_GRACE_MS * 1000;
	for (guint i = 0; i < d->sinks->len; i++) {
		gint64 left_ms = MAX(deliver_by - g_get_monotonic_time(), 0) / 1000;
		sink_stop(g_ptr_array_index(d->sinks, i), (guint)left_ms);
	}
}

/* ---- running -------------------------------------------------------------- */

static flow_ids *open_flow_ids(const struct daemon_config *dc, GError **error)
{
	g_autofree char *path = g_build_filename(dc->state_directory, "flow-id", NULL);

	return flow_ids_open(path, error);
}

static gboolean set_up(struct daemon *d, GError **error)
{
	g_autofree char *spool_dir =
		g_build_filename(d->config->daemon.state_directory, "spool", NULL);

	d->sinks = g_ptr_array_new_with_free_func((GDestroyNotify)sink_free);
	d->spool = spool_open(spool_dir, d->config->daemon.spool_max, d->config->daemon.spool_sync,
			      error);
	if (!d->spool || !(d->flow_ids = open_flow_ids(&d->config->daemon, error)))
		return FALSE;
	if (!load_state(d, error))
		return FALSE;
	d->intake = intake_new(d->spool, d->flow_ids, d->state, d->config->source.dedup_window,
			       error);
	if (!d->intake)
		return FALSE;
	intake_set_active_timeout(d->intake,
				  (guint64)d->config->source.active_timeout_ms * 1000000);
	intake_set_nat_events(d->intake, config_nat_events(d->config),
			      (guint64)nat_refresh_ms(d) * 1000000);
	/* a DESTROY journaled before a crash may come again from the landing
	 * zone or the kernel: the filter must know what was taken */
	spool_recent(d->spool, d->config->source.dedup_window, intake_remember, d->intake);
	/* destinations first: the source may deliver recovered events at once */
	if (!start_sinks(d, error))
		return FALSE;
	d->filter = ct_filter_new(d->config->source.filter_protocols,
				  d->config->source.filter_addresses, d->config->source.filter_zones,
				  d->config->source.filter_mark, error);
	if (!d->filter)
		return FALSE;
	if (!ct_filter_is_empty(d->filter)) {
		g_autofree char *how = ct_filter_describe(d->filter);
		g_message("connections filtered %s", how);
	}
	if (!(d->source = open_source(d, error)))
		return FALSE;
	publish_stats(d);
	if (d->walk) {
		ct_walk_yield_to(d->walk, walk_burst_seen, d->source);
		if (!ct_walk_start(d->walk, error))
			return FALSE;
	}
	return start_reader(d, error);
}

static void tear_down(struct daemon *d)
{
	if (d->sinks)
		g_ptr_array_free(d->sinks, TRUE);
	ct_walk_free(d->walk);
	ct_source_free(d->source);
	ct_filter_free(d->filter);
	intake_free(d->intake);
	conn_state_free(d->state);
	if (d->state_dirfd >= 0)
		close(d->state_dirfd);
	flow_ids_free(d->flow_ids);
	spool_free(d->spool);
	if (d->loop)
		g_main_loop_unref(d->loop);
	if (d->stop_fd >= 0)
		close(d->stop_fd);
	g_mutex_clear(&d->stats_lock);
	disarm_watchdog(d);
}

int worker_run(const struct ctflowd_config *config, int events_fd, gboolean supervised)
{
	struct daemon d = {
		.config = config,
		.events_fd = events_fd,
		.supervised = supervised,
		.stop_fd = -1,
		.state_dirfd = -1,
	};
	g_autoptr(GError) error = NULL;

	/* Before set-up, which may recover a journal for a while: a signal
	 * meanwhile must not kill the worker.  Each is handled once the loop
	 * runs; a stop asked for during set-up is then a stop like any other.
	 * The supervisor forks the worker with them blocked, until now. */
	g_unix_signal_add(SIGHUP, on_hangup, &d);
	g_unix_signal_add(SIGTERM, on_terminate, &d);
	g_unix_signal_add(SIGINT, on_terminate, &d);
	g_unix_signal_add(SIGUSR1, on_usr1, &d);
	supervisor_worker_take_signals();
	if (!set_up(&d, &error)) {
		g_critical("%s", error->message);
		stop_pipeline(&d);
		tear_down(&d);
		return SUPERVISOR_EXIT_FATAL;
	}
	d.loop = g_main_loop_new(NULL, FALSE);
	if (config->daemon.stats_interval_ms)
		g_timeout_add(config->daemon.stats_interval_ms, on_stats_timer, &d);
	g_message("ctflowd %s running: %s delivery, %u destination%s", CTFLOWD_VERSION,
		  config->source.reliable ? "reliable" : "UNRELIABLE", d.sinks->len,
		  d.sinks->len == 1 ? "" : "s");
	if (supervised) {
		/* a supervisor killed outright must not leave this worker reading
		 * on, holding the journal from the next ctflowd */
		if (!supervisor_worker_watch())
			raise(SIGTERM);
		supervisor_worker_ready();
	}

	g_main_loop_run(d.loop);

	stop_pipeline(&d);
	log_stats(&d, "final");
	int status = d.exit_status;
	tear_down(&d);
	return status;
}
