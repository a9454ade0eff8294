/*
 * main.c - ctflowd: conntrack DESTROY events -> flow records -> collectors.
 *
 * The process that starts owns the conntrack event socket and supervises a
 * worker that reads it (worker.c); the socket outlives any worker, and on a
 * stop it is left to systemd's descriptor store or to a holder for the next
 * ctflowd (handover.c), so that no restart loses events.  A worker whose
 * supervisor was killed outright stops by itself and leaves the socket the
 * same way.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config-build.h"
#include "ctflowd/config.h"
#include "ctflowd/ct_filter.h"
#include "ctflowd/ct_socket.h"
#include "ctflowd/error.h"
#include "ctflowd/guard.h"
#include "ctflowd/handover.h"
#include "ctflowd/host_check.h"
#include "ctflowd/log.h"
#include "ctflowd/netns.h"
#include "ctflowd/state_dir.h"
#include "ctflowd/supervisor.h"
#include "ctflowd/systemd.h"
#include "ctflowd/worker.h"

#define EXIT_CONFIG 1
#define EXIT_USAGE 2
#define SYSCTL_DIR "/proc/sys/net/netfilter"
#define FDSTORE_NAME "ctnetlink"
#define GUARD_INTERVAL_MS 200
/* past the worker's own bound on a stop, before the supervisor kills it */
#define SUPERVISOR_STOP_SLACK_MS 5000

struct options {
	char *config_path;
	gboolean foreground;
	gboolean check_only;
	gboolean version;
	int verbosity;
};

struct worker_args {
	const struct ctflowd_config *config;
	int events_fd;
	guard *host_guard;   /* the supervisor's, for a holder left by an orphan */
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
		g_clear_pointer(&opts->config_path, g_free);
		return FALSE;
	}
	if (*argc > 1) {
		fprintf(stderr, "ctflowd: unexpected argument \"%s\" (try --help)\n", (*argv)[1]);
		g_clear_pointer(&opts->config_path, g_free);
		return FALSE;
	}
	if (!opts->config_path)
		opts->config_path = g_strdup(CTFLOWD_DEFAULT_CONFIG);
	return TRUE;
}

static gboolean prepare_state_directory(const struct daemon_config *dc, GError **error)
{
	/* nothing ctflowd creates from here on (pid file, journal, export
	 * files, the handover socket, in the worker and the holder too) is
	 * writable by group or others, or readable by others */
	umask(027);
	return state_dir_prepare(dc->state_directory, error);
}

/*
 * A socket another process kept is used only when it is one ctflowd would
 * have opened itself: else it is closed and a new one opened.  A socket
 * from another namespace (left by a run with another `netns`) would export
 * that namespace's flows and none of ours; a filter ctflowd did not attach
 * would hide events: it is replaced by the configured one, and a socket
 * whose filter is locked is refused.  The holder's groups are ctflowd's
 * own; the service manager's socket may come from an older ctflowd, and
 * configuring sets the groups anyway.  Called in the watched namespace.
 */
static gboolean held_socket_fits(int fd, const char *origin, gboolean from_holder)
{
	g_autoptr(GError) error = NULL;

	if (ct_socket_check_held(fd, from_holder, &error))
		return TRUE;
	g_warning("refusing the conntrack event socket from %s: %s; closing it (the events "
		  "it still queued are lost) and opening a new one",
		  origin, error->message);
	if (!from_holder && systemd_notify_available() &&
	    !systemd_notify("FDSTOREREMOVE=1\nFDNAME=" FDSTORE_NAME, NULL, 0, &error))
		g_warning("%s; the service manager may keep the refused socket", error->message);
	return FALSE;
}

/* The source's filter, on the event socket: what it cannot express is
 * matched again by the worker. */
static gboolean attach_filter(int fd, const struct source_config *sc, GError **error)
{
	ct_filter *filter = ct_filter_new(sc->filter_protocols, sc->filter_addresses,
					  sc->filter_zones, sc->filter_mark, error);
	gboolean ok = filter && ct_filter_attach(fd, filter, error);

	ct_filter_free(filter);
	return ok;
}

/*
 * The event socket, from the first place that has one: systemd's
 * descriptor store, a holder left by the previous ctflowd, or a new one.
 * The sysctls are checked in the watched namespace whichever it is.  A
 * holder keeps its copy until this ctflowd has all it needs to run, so
 * that a failure here gives the socket back rather than losing it.
 */
static int acquire_socket(const struct ctflowd_config *config, guard **guard_out,
			  GError **error)
{
	const struct source_config *sc = &config->source;
	struct ct_socket_options opts = {
		.receive_buffer = sc->receive_buffer,
		.reliable = sc->reliable,
		.subscribe_new = sc->subscribe_new,
	};
	g_autofree char *handover = handover_path(&config->daemon);
	int fd = systemd_take_listen_fd(FDSTORE_NAME);
	const char *origin = "the service manager's descriptor store";
	int holder = -1;

	if (fd < 0) {
		fd = handover_take(handover, &holder, error);
		origin = "the previous ctflowd";
		if (fd < 0 && *error)
			return -1;
	}
	int saved = -1;
	if (sc->netns && (saved = netns_enter(sc->netns, error)) < 0)
		goto fail;
	if (fd >= 0 && !held_socket_fits(fd, origin, holder >= 0)) {
		close(fd);
		fd = -1;
		handover_answer(holder, HANDOVER_REFUSED);
		holder = -1;
	}
	if (!host_check_sysctls(SYSCTL_DIR, sc->manage_sysctls, error))
		goto fail;
	if (fd < 0) {
		origin = NULL;
		if ((fd = ct_socket_open(error)) < 0)
			goto fail;
	}
	/* the filter goes on before a new socket subscribes, so that nothing
	 * it would drop is queued; on a socket another process kept it
	 * replaces whatever filter that one had */
	if (!ct_socket_verify(fd, error) || !attach_filter(fd, sc, error) ||
	    !ct_socket_configure(fd, &opts, error))
		goto fail;
	/* the guard reads the table of the watched namespace */
	if (sc->reliable && (sc->guard_percent || sc->guard_entries)) {
		struct guard_options gopts = {
			.percent = sc->guard_percent,
			.entries = sc->guard_entries,
		};
		if (!(*guard_out = guard_new(fd, &gopts, error)))
			goto fail;
	}
	if (saved >= 0 && !netns_leave(saved, error)) {
		saved = -1;
		goto fail;
	}
	saved = -1;
	if (origin)
		g_message("took over the conntrack event socket from %s", origin);
	handover_answer(holder, HANDOVER_TAKEN);
	return fd;

fail:
	if (saved >= 0)
		netns_leave(saved, NULL);
	handover_answer(holder, HANDOVER_GIVEN_BACK);
	if (fd >= 0)
		close(fd);
	return -1;
}

/* Under systemd the descriptor store keeps the socket across restarts
 * (needs FileDescriptorStoreMax= in the unit, as the shipped one has). */
static void store_socket(int fd)
{
	g_autoptr(GError) error = NULL;

	if (!systemd_notify_available())
		return;
	/* FDPOLL=0: an overrun leaves an error on the socket, which systemd
	 * would otherwise take for a dead descriptor and drop from the store */
	if (!systemd_notify("FDSTORE=1\nFDNAME=" FDSTORE_NAME "\nFDPOLL=0", &fd, 1, &error))
		g_warning("%s; a restart will lose the events of its gap", error->message);
}

/* Whoever has the last copy of the socket keeps it for the next ctflowd:
 * the supervisor, or a worker that outlived it. */
static void leave_socket(const struct ctflowd_config *config, int fd, guard *g)
{
	g_autoptr(GError) error = NULL;

	if (!handover_leave(&config->daemon, fd, g, &error))
		g_warning("%s", error->message);
}

/* The pid file may be anywhere (/run, the state directory): written to a
 * new file and renamed into place, so that whatever is at its name, a
 * symbolic link included, is replaced and never written through. */
static gboolean write_pid_file(const char *path, GError **error)
{
	g_autofree char *text = g_strdup_printf("%d\n", (int)getpid());
	g_autofree char *dir = NULL, *name = NULL;

	if (!path)
		return TRUE;
	dir = g_path_get_dirname(path);
	name = g_path_get_basename(path);
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		int e = errno;
		g_set_error(error, CTFLOWD_ERROR, e, "cannot write pid file %s: %s", path,
			    g_strerror(e));
		return FALSE;
	}
	gboolean ok = state_dir_replace_file(dirfd, dir, name, text, strlen(text), 0644, error);
	close(dirfd);
	return ok;
}

static void guard_tick(void *data)
{
	guard_check(data, supervisor_worker_last_alive);
}

static int run_worker(void *data)
{
	struct worker_args *args = data;
	int status = worker_run(args->config, args->events_fd, TRUE);

	if (supervisor_worker_orphaned())
		leave_socket(args->config, args->events_fd, args->host_guard);
	return status;
}

int main(int argc, char **argv)
{
	struct options opts = {0};
	g_autoptr(GError) error = NULL;

	if (!parse_command_line(&argc, &argv, &opts))
		return EXIT_USAGE;
	if (opts.version) {
		printf("ctflowd %s\n", CTFLOWD_VERSION);
		g_free(opts.config_path);
		return EXIT_SUCCESS;
	}
	log_init(opts.foreground || opts.check_only, opts.verbosity);
	/* A collector or stdout that goes away must not kill the daemon. */
	signal(SIGPIPE, SIG_IGN);
	/* Nor may a stop asked for while ctflowd starts: it may be taking the
	 * event socket over from a holder, full of events that closing it
	 * would lose.  The signals wait; the supervisor takes them in its
	 * loop, the worker once its handlers are in place. */
	supervisor_hold_signals();

	struct ctflowd_config *config = config_load(opts.config_path, &error);
	g_free(opts.config_path);
	if (!config) {
		/* one line per problem in the file, each said by ctflowd */
		g_auto(GStrv) lines = g_strsplit(error->message, "\n", -1);
		for (guint i = 0; lines[i]; i++)
			fprintf(stderr, "ctflowd: %s\n", lines[i]);
		return EXIT_CONFIG;
	}
	if (opts.check_only) {
		g_autofree char *text = config_to_string(config);
		fputs(text, stdout);
		config_free(config);
		return EXIT_SUCCESS;
	}

	int events_fd = -1;
	guard *host_guard = NULL;
	if (!prepare_state_directory(&config->daemon, &error) ||
	    (events_fd = acquire_socket(config, &host_guard, &error)) < 0) {
		g_critical("%s", error->message);
		config_free(config);
		return EXIT_FAILURE;
	}
	/* detach only once the kernel side works, so a failure is seen by
	 * whoever started ctflowd */
	if (!opts.foreground && daemon(0, 0) < 0) {
		g_critical("cannot detach: %s", g_strerror(errno));
		return EXIT_FAILURE;
	}
	if (!write_pid_file(config->daemon.pid_file, &error))
		g_warning("%s", error->message);
	store_socket(events_fd);

	struct worker_args args = {
		.config = config,
		.events_fd = events_fd,
		.host_guard = host_guard,
	};
	struct supervisor_options sup = {
		.restart_min_ms = 100,
		.restart_max_ms = 5000,
		/* the worker bounds its own stop; this is for one that cannot */
		.stop_timeout_ms = WORKER_STOP_LIMIT_MS + SUPERVISOR_STOP_SLACK_MS,
		.notify = systemd_notify_available(),
		.tick_ms = host_guard ? GUARD_INTERVAL_MS : 0,
		.tick = guard_tick,
		.tick_user = host_guard,
	};
	if (host_guard)
		g_message("guard: reliable delivery goes off at %" G_GUINT64_FORMAT
			  " conntrack entries",
			  guard_threshold(host_guard));
	int status = supervisor_run(run_worker, &args, &sup);

	leave_socket(config, events_fd, host_guard);
	guard_free(host_guard);
	close(events_fd);
	if (config->daemon.pid_file)
		unlink(config->daemon.pid_file);
	config_free(config);
	return status;
}
