/*
 * main.c - ctflowd: conntrack DESTROY events -> flow records -> collectors.
 *
 *   kernel (ctnetlink) -> ct_source -> intake (dedup) -> spool -> sink
 *                                                          (encoder + transport,
 *                                                           one thread each)
 *
 * The main thread runs one GLib loop that drains the netlink socket and
 * does nothing that can block on a collector.
 */
#include <errno.h>
#include <glib-unix.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config-build.h"
#include "ctflowd/error.h"
#include "ctflowd/config.h"
#include "ctflowd/ct_source.h"
#include "ctflowd/flow_id.h"
#include "ctflowd/host_check.h"
#include "ctflowd/intake.h"
#include "ctflowd/log.h"
#include "ctflowd/netns.h"
#include "ctflowd/sink.h"
#include "ctflowd/spool.h"

#define EXIT_CONFIG 1
#define EXIT_USAGE 2
#define STOP_GRACE_MS 10000
#define HELD_BACK_GRACE_MS 5000
#define SYSCTL_DIR "/proc/sys/net/netfilter"

struct options {
	char *config_path;
	gboolean foreground;
	gboolean check_only;
	gboolean version;
	int verbosity;
};

struct daemon {
	struct ctflowd_config *config;
	spool *spool;
	flow_ids *flow_ids;
	intake *intake;
	ct_source *source;
	GPtrArray *sinks;
	GMainLoop *loop;
	guint resync_timer;
	int exit_status;
};

static gboolean count_verbose(const char *name, const char *value, gpointer data, GError **error)
{
	((struct options *)data)->verbosity++;
	return TRUE;
}

static gboolean parse_command_line(int *argc, char ***argv, struct options *opts)
{
	GOptionEntry entries[] = {
		{ "config", 'c', 0, G_OPTION_ARG_FILENAME, &opts->config_path,
		  "Configuration file (default " CTFLOWD_DEFAULT_CONFIG ")", "FILE" },
		{ "foreground", 'f', 0, G_OPTION_ARG_NONE, &opts->foreground,
		  "Stay in the foreground and log to stderr", NULL },
		{ "check", 'n', 0, G_OPTION_ARG_NONE, &opts->check_only,
		  "Check the configuration, print the effective settings and exit", NULL },
		{ "verbose", 'v', G_OPTION_FLAG_NO_ARG, G_OPTION_ARG_CALLBACK, count_verbose,
		  "More logging (twice: debug)", NULL },
		{ "version", 'V', 0, G_OPTION_ARG_NONE, &opts->version, "Print the version and exit",
		  NULL },
		{ NULL, 0, 0, 0, NULL, NULL, NULL },
	};
	g_autoptr(GOptionContext) ctx =
		g_option_context_new("- export conntrack flows as IPFIX and JSON");
	g_autoptr(GError) error = NULL;
	GOptionGroup *main_group = g_option_group_new(NULL, NULL, NULL, opts, NULL);

	g_option_group_add_entries(main_group, entries);
	g_option_context_set_main_group(ctx, main_group);
	if (!g_option_context_parse(ctx, argc, argv, &error)) {
		fprintf(stderr, "ctflowd: %s (try --help)\n", error->message);
		return FALSE;
	}
	if (*argc > 1) {
		fprintf(stderr, "ctflowd: unexpected argument \"%s\" (try --help)\n", (*argv)[1]);
		return FALSE;
	}
	if (!opts->config_path)
		opts->config_path = g_strdup(CTFLOWD_DEFAULT_CONFIG);
	return TRUE;
}

/* ---- the kernel side ---------------------------------------------------- */

static ct_source *open_source(struct daemon *d, GError **error)
{
	const struct source_config *sc = &d->config->source;
	struct ct_source_options opts = {
		.receive_buffer = sc->receive_buffer,
		.reliable = sc->reliable,
		.subscribe_new = sc->subscribe_new,
		.resync_delay_ms = sc->resync_delay_ms,
	};
	int saved = -1;

	if (sc->netns && (saved = netns_enter(sc->netns, error)) < 0)
		return NULL;
	/* Sysctls and the socket belong to the namespace we are in now. */
	ct_source *src = NULL;
	if (host_check_sysctls(SYSCTL_DIR, sc->manage_sysctls, error))
		src = ct_source_new(&opts, intake_records, d->intake, error);
	if (saved >= 0) {
		g_autoptr(GError) leave_error = NULL;
		if (!netns_leave(saved, &leave_error)) {
			/* Export sockets would open in the wrong namespace. */
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
				       ", messages %" G_GUINT64_FORMAT ", send errors %" G_GUINT64_FORMAT
				       ", reconnects %" G_GUINT64_FORMAT ", resent %" G_GUINT64_FORMAT
				       ", lost %" G_GUINT64_FORMAT,
				       sink_name(s), st.records, st.messages, st.send_errors,
				       st.reconnects, st.resent, st.lost);
	}
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

/* ---- process set-up ------------------------------------------------------- */

static gboolean prepare_state_directory(const struct daemon_config *dc, GError **error)
{
	if (g_mkdir_with_parents(dc->state_directory, 0750) < 0) {
		int e = errno;
		g_set_error(error, CTFLOWD_ERROR, e,
			    "cannot create state directory %s: %s", dc->state_directory,
			    g_strerror(e));
		return FALSE;
	}
	return TRUE;
}

static flow_ids *open_flow_ids(const struct daemon_config *dc, GError **error)
{
	g_autofree char *path = g_build_filename(dc->state_directory, "flow-id", NULL);

	return flow_ids_open(path, error);
}

static gboolean write_pid_file(const char *path, GError **error)
{
	g_autofree char *text = g_strdup_printf("%d\n", (int)getpid());

	return !path || g_file_set_contents(path, text, -1, error);
}

static int run(struct daemon *d, const struct options *opts)
{
	g_autoptr(GError) error = NULL;

	d->sinks = g_ptr_array_new_with_free_func((GDestroyNotify)sink_free);
	d->spool = spool_new(d->config->daemon.spool_max);

	if (!prepare_state_directory(&d->config->daemon, &error) ||
	    !(d->flow_ids = open_flow_ids(&d->config->daemon, &error))) {
		g_critical("%s", error->message);
		return EXIT_FAILURE;
	}
	d->intake = intake_new(d->spool, d->flow_ids, d->config->source.dedup_window);
	if (!(d->source = open_source(d, &error))) {
		g_critical("%s", error->message);
		return EXIT_FAILURE;
	}
	/* Detach only once the kernel side works, so that a failure is seen
	 * by whoever started ctflowd; threads start after the fork. */
	if (!opts->foreground && daemon(0, 0) < 0) {
		g_critical("cannot detach: %s", g_strerror(errno));
		return EXIT_FAILURE;
	}
	if (!write_pid_file(d->config->daemon.pid_file, &error) || !start_sinks(d, &error)) {
		g_critical("%s", error->message);
		stop_pipeline(d);
		return EXIT_FAILURE;
	}

	d->loop = g_main_loop_new(NULL, FALSE);
	watch_netlink(d);
	g_unix_signal_add(SIGTERM, on_terminate, d);
	g_unix_signal_add(SIGINT, on_terminate, d);
	g_unix_signal_add(SIGUSR1, on_usr1, d);
	if (d->config->daemon.stats_interval_ms)
		g_timeout_add(d->config->daemon.stats_interval_ms, on_stats_timer, d);
	g_message("ctflowd %s running: %s delivery, %u destination%s", CTFLOWD_VERSION,
		  d->config->source.reliable ? "reliable" : "UNRELIABLE", d->sinks->len,
		  d->sinks->len == 1 ? "" : "s");

	g_main_loop_run(d->loop);

	stop_pipeline(d);
	log_stats(d, "final");
	if (d->config->daemon.pid_file)
		unlink(d->config->daemon.pid_file);
	return d->exit_status;
}

static void daemon_free(struct daemon *d)
{
	if (d->sinks)
		g_ptr_array_free(d->sinks, TRUE);
	ct_source_free(d->source);
	intake_free(d->intake);
	flow_ids_free(d->flow_ids);
	spool_free(d->spool);
	if (d->loop)
		g_main_loop_unref(d->loop);
	config_free(d->config);
}

int main(int argc, char **argv)
{
	struct options opts = {0};
	struct daemon d = {0};
	g_autoptr(GError) error = NULL;

	if (!parse_command_line(&argc, &argv, &opts))
		return EXIT_USAGE;
	if (opts.version) {
		printf("ctflowd %s\n", CTFLOWD_VERSION);
		return EXIT_SUCCESS;
	}
	log_init(opts.foreground || opts.check_only, opts.verbosity);
	/* A collector or stdout that goes away must not kill the daemon. */
	signal(SIGPIPE, SIG_IGN);

	d.config = config_load(opts.config_path, &error);
	if (!d.config) {
		fprintf(stderr, "ctflowd: %s\n", error->message);
		g_free(opts.config_path);
		return EXIT_CONFIG;
	}
	if (opts.check_only) {
		g_autofree char *text = config_to_string(d.config);
		fputs(text, stdout);
		config_free(d.config);
		g_free(opts.config_path);
		return EXIT_SUCCESS;
	}

	int status = run(&d, &opts);
	daemon_free(&d);
	g_free(opts.config_path);
	return status;
}
