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
#include <glib-unix.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "config-build.h"
#include "ctflowd/ct_source.h"
#include "ctflowd/flow_id.h"
#include "ctflowd/intake.h"
#include "ctflowd/netns.h"
#include "ctflowd/sink.h"
#include "ctflowd/spool.h"
#include "ctflowd/supervisor.h"
#include "ctflowd/worker.h"

#define STOP_GRACE_MS 10000
#define HELD_BACK_GRACE_MS 5000
#define HEARTBEAT_MS 250

struct daemon {
	const struct ctflowd_config *config;
	int events_fd;
	gboolean supervised;
	spool *spool;
	flow_ids *flow_ids;
	intake *intake;
	ct_source *source;
	GPtrArray *sinks;
	GMainLoop *loop;
	guint resync_timer;
	int exit_status;
};

/* ---- the kernel side ---------------------------------------------------- */

/* The dump socket of a resync must be in the watched namespace too. */
static ct_source *open_source(struct daemon *d, GError **error)
{
	const struct source_config *sc = &d->config->source;
	struct ct_source_options opts = {
		.receive_buffer = sc->receive_buffer,
		.reliable = sc->reliable,
		.subscribe_new = sc->subscribe_new,
		.resync_delay_ms = sc->resync_delay_ms,
	};
	g_autofree char *landing =
		g_build_filename(d->config->daemon.state_directory, "landing", NULL);
	int saved = -1;

	if (sc->netns && (saved = netns_enter(sc->netns, error)) < 0)
		return NULL;
	ct_source *src = ct_source_new(d->events_fd, landing, &opts, intake_records, d->intake,
				       error);
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

static gboolean on_resync(gpointer data)
{
	struct daemon *d = data;
	g_autoptr(GError) error = NULL;

	d->resync_timer = 0;
	if (!ct_source_resync(d->source, &error))
		g_warning("resync failed: %s", error->message);
	return G_SOURCE_REMOVE;
}

static void schedule_resync(struct daemon *d)
{
	gint64 due = ct_source_resync_due(d->source);

	if (due < 0 || d->resync_timer)
		return;
	d->resync_timer = g_timeout_add((guint)due, on_resync, d);
}

static gboolean on_netlink_readable(gint fd, GIOCondition cond, gpointer data)
{
	struct daemon *d = data;
	g_autoptr(GError) error = NULL;

	if (!ct_source_drain(d->source, &error)) {
		g_critical("%s; stopping", error->message);
		d->exit_status = EXIT_FAILURE;
		g_main_loop_quit(d->loop);
		return G_SOURCE_REMOVE;
	}
	schedule_resync(d);
	if (d->supervised)
		supervisor_worker_alive();
	return G_SOURCE_CONTINUE;
}

static void watch_netlink(struct daemon *d)
{
	GSource *watch = g_unix_fd_source_new(ct_source_fd(d->source), G_IO_IN);

	/* GLib blocks a source while it is dispatched by taking its fd out of
	 * the poll set and putting it back, which wakes the loop through its
	 * eventfd twice per dispatch: two extra system calls per netlink read.
	 * The callback never iterates the loop, so recursion cannot happen. */
	g_source_set_can_recurse(watch, TRUE);
	g_source_set_callback(watch, G_SOURCE_FUNC(on_netlink_readable), d, NULL);
	g_source_attach(watch, NULL);
	g_source_unref(watch);
}

/* ---- statistics ----------------------------------------------------------- */

static void log_stats(struct daemon *d, const char *when)
{
	const struct ct_source_stats *cs = ct_source_get_stats(d->source);
	const struct intake_stats *is = intake_get_stats(d->intake);
	g_autoptr(GString) line = g_string_new(NULL);

	g_string_append_printf(line,
			       "%s: destroy events %" G_GUINT64_FORMAT ", duplicates %" G_GUINT64_FORMAT
			       ", accepted %" G_GUINT64_FORMAT ", malformed %" G_GUINT64_FORMAT
			       ", overruns %" G_GUINT64_FORMAT " in %" G_GUINT64_FORMAT
			       " bursts, without counters %" G_GUINT64_FORMAT
			       ", without timestamps %" G_GUINT64_FORMAT,
			       when, cs->destroys, is->duplicates, is->accepted, cs->malformed,
			       cs->overruns, cs->overrun_bursts, cs->no_counters, cs->no_timestamps);
	for (guint i = 0; i < d->sinks->len; i++) {
		sink *s = g_ptr_array_index(d->sinks, i);
		struct sink_stats st;
		sink_get_stats(s, &st);
		g_string_append_printf(line,
				       "; export %s: records %" G_GUINT64_FORMAT
				       ", sent %" G_GUINT64_FORMAT ", messages %" G_GUINT64_FORMAT ", send errors %" G_GUINT64_FORMAT
				       ", reconnects %" G_GUINT64_FORMAT ", resent %" G_GUINT64_FORMAT
				       ", lost %" G_GUINT64_FORMAT,
				       sink_name(s), st.records, st.sent, st.messages, st.send_errors,
				       st.reconnects, st.resent, st.lost);
	}
	g_message("%s", line->str);
}

/* The supervisor's guard needs to know the reader is alive while no
 * events come, too. */
static gboolean on_heartbeat(gpointer data)
{
	supervisor_worker_alive();
	return G_SOURCE_CONTINUE;
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

static gboolean on_terminate(gpointer data)
{
	struct daemon *d = data;

	g_message("stopping on signal");
	g_main_loop_quit(d->loop);
	return G_SOURCE_CONTINUE;
}

/* ---- destinations --------------------------------------------------------- */

static gboolean start_sinks(struct daemon *d, GError **error)
{
	for (guint i = 0; i < d->config->exports->len; i++) {
		const struct export_config *ec = g_ptr_array_index(d->config->exports, i);
		sink *s = sink_new(ec, d->spool, error);
		if (!s) {
			g_prefix_error(error, "export %s: ", ec->name);
			return FALSE;
		}
		g_ptr_array_add(d->sinks, s);
	}
	for (guint i = 0; i < d->sinks->len; i++) {
		if (!sink_start(g_ptr_array_index(d->sinks, i), error))
			return FALSE;
	}
	return TRUE;
}

/*
 * Reliable delivery keeps DESTROYs the socket had no room for on the
 * kernel's dying list and resends them (the first retry after about a
 * second).  Closing the socket before they come loses them, so a stop keeps
 * reading until that list is empty, for at most HELD_BACK_GRACE_MS.
 */
static void drain_kernel(struct daemon *d)
{
	gint64 deadline = g_get_monotonic_time() + HELD_BACK_GRACE_MS * 1000;
	guint64 held = 0;

	for (;;) {
		g_autoptr(GError) error = NULL;
		if (!ct_source_drain(d->source, &error)) {
			g_warning("last read of conntrack events: %s", error->message);
			return;
		}
		if (!d->config->source.reliable)
			return;
		if (!ct_source_held_back(d->source, &held, &error)) {
			g_warning("cannot list DESTROY events the kernel holds back: %s",
				  error->message);
			return;
		}
		if (held == 0)
			return;
		if (g_get_monotonic_time() >= deadline)
			break;
		g_usleep(20 * 1000);
	}
	g_warning("stopping while the kernel still holds back %" G_GUINT64_FORMAT
		  " DESTROY events; flows among them that were not for ctflowd's "
		  "socket belong to another reliable listener",
		  held);
}

/* Takes what the kernel queued or holds back, then lets every destination
 * send what it holds before the threads end. */
static void stop_pipeline(struct daemon *d)
{
	if (d->source)
		drain_kernel(d);
	spool_close(d->spool);
	for (guint i = 0; i < d->sinks->len; i++)
		sink_stop(g_ptr_array_index(d->sinks, i), STOP_GRACE_MS);
}

/* ---- running -------------------------------------------------------------- */

static flow_ids *open_flow_ids(const struct daemon_config *dc, GError **error)
{
	g_autofree char *path = g_build_filename(dc->state_directory, "flow-id", NULL);

	return flow_ids_open(path, error);
}

static gboolean set_up(struct daemon *d, GError **error)
{
	d->sinks = g_ptr_array_new_with_free_func((GDestroyNotify)sink_free);
	d->spool = spool_new(d->config->daemon.spool_max);
	if (!(d->flow_ids = open_flow_ids(&d->config->daemon, error)))
		return FALSE;
	d->intake = intake_new(d->spool, d->flow_ids, d->config->source.dedup_window);
	/* destinations first: the source may deliver recovered events at once */
	if (!start_sinks(d, error))
		return FALSE;
	return (d->source = open_source(d, error)) != NULL;
}

static void tear_down(struct daemon *d)
{
	if (d->sinks)
		g_ptr_array_free(d->sinks, TRUE);
	ct_source_free(d->source);
	intake_free(d->intake);
	flow_ids_free(d->flow_ids);
	spool_free(d->spool);
	if (d->loop)
		g_main_loop_unref(d->loop);
}

int worker_run(const struct ctflowd_config *config, int events_fd, gboolean supervised)
{
	struct daemon d = { .config = config, .events_fd = events_fd, .supervised = supervised };
	g_autoptr(GError) error = NULL;

	if (!set_up(&d, &error)) {
		g_critical("%s", error->message);
		stop_pipeline(&d);
		tear_down(&d);
		return SUPERVISOR_EXIT_FATAL;
	}
	d.loop = g_main_loop_new(NULL, FALSE);
	watch_netlink(&d);
	g_unix_signal_add(SIGTERM, on_terminate, &d);
	g_unix_signal_add(SIGINT, on_terminate, &d);
	g_unix_signal_add(SIGUSR1, on_usr1, &d);
	if (config->daemon.stats_interval_ms)
		g_timeout_add(config->daemon.stats_interval_ms, on_stats_timer, &d);
	g_message("ctflowd %s running: %s delivery, %u destination%s", CTFLOWD_VERSION,
		  config->source.reliable ? "reliable" : "UNRELIABLE", d.sinks->len,
		  d.sinks->len == 1 ? "" : "s");
	if (supervised) {
		g_timeout_add(HEARTBEAT_MS, on_heartbeat, &d);
		supervisor_worker_alive();
		supervisor_worker_ready();
	}

	g_main_loop_run(d.loop);

	stop_pipeline(&d);
	log_stats(&d, "final");
	int status = d.exit_status;
	tear_down(&d);
	return status;
}
