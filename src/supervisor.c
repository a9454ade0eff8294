/*
 * supervisor.c - fork, wait, forward signals, restart.
 *
 * The parent never starts threads (forking a threaded process is unsafe)
 * and has no event loop: it waits for signals with sigtimedwait().
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctflowd/supervisor.h"
#include "ctflowd/systemd.h"

/* a worker that lived this long was not failing at start-up */
#define HEALTHY_RUN_MS 10000
/*
 * A worker whose reader has not beaten for this long is stuck, and is
 * killed and restarted (the landing zone and the journal make a kill
 * lossless).  The reader's longest legitimate pause is a resync dump,
 * bounded at 30 s (ct_source.h), together with the journal appends and
 * syncs it makes (spool_sync = record syncs every read, which a slow disk
 * can stretch to seconds); twice the dump's bound leaves room for both.
 * Before its first read a worker may be recovering its journal for a
 * while, which this does not bound.
 */
#define STALL_LIMIT_MS 60000
/* how often a running worker's heartbeat is looked at */
#define STALL_CHECK_MS 1000

/* One word shared with the worker across fork: when it last drained. */
static gint64 *worker_alive;
/* The supervisor's pid, taken before it forks: a worker that reads it from
 * getppid() could read its adoptive parent's. */
static pid_t supervisor_pid;
static gboolean in_worker;

static gint64 now_ms(void)
{
	return g_get_monotonic_time() / 1000;
}

/* The stop and control signals: held back wherever no handler waits for
 * them yet (see supervisor_hold_signals()). */
static void held_set(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGUSR1);
}

/* What the supervisor waits for: those, its worker's end and its word
 * that it runs. */
static void signal_set(sigset_t *set)
{
	held_set(set);
	sigaddset(set, SIGCHLD);
	sigaddset(set, SIGUSR2);
}

static void notify(const struct supervisor_options *opts, const char *state)
{
	if (opts->notify)
		systemd_notify(state, NULL, 0, NULL);
}

/* The heartbeat reads 0 while no worker runs; a new one has not read yet. */
static void forget_heartbeat(void)
{
	if (worker_alive)
		__atomic_store_n(worker_alive, 0, __ATOMIC_RELAXED);
}

static pid_t start_worker(supervisor_worker_fn fn, void *user, const sigset_t *saved)
{
	forget_heartbeat();
	pid_t pid = fork();

	if (pid < 0) {
		g_warning("cannot fork a worker: %s", g_strerror(errno));
		return -1;
	}
	if (pid == 0) {
		in_worker = TRUE;
		/* The stop and control signals stay blocked until the worker has
		 * its handlers (supervisor_worker_take_signals()): one that came
		 * during its set-up would otherwise kill it, and a stop asked for
		 * then would end ctflowd as a crash does.  (ctflowd's main()
		 * blocks them from the start; the mask is set whole here all the
		 * same.) */
		sigset_t mask = *saved, held;
		held_set(&held);
		sigorset(&mask, &mask, &held);
		sigprocmask(SIG_SETMASK, &mask, NULL);
		_exit(fn(user));
	}
	return pid;
}

/* Kills @worker if its reader stopped making progress. */
static void kill_if_stalled(pid_t worker)
{
	gint64 last_us = supervisor_worker_last_alive();

	if (last_us == 0 || now_ms() - last_us / 1000 < STALL_LIMIT_MS)
		return;
	g_warning("worker %d has not read conntrack events for %" G_GINT64_FORMAT
		  " s (its reader is stuck; the bound is %d s); killing it",
		  (int)worker, (now_ms() - last_us / 1000) / 1000, STALL_LIMIT_MS / 1000);
	kill(worker, SIGKILL);
	/* it beats no more: the check waits for the next worker's first read */
	forget_heartbeat();
}

static char *describe_status(int status)
{
	if (WIFSIGNALED(status))
		return g_strdup_printf("was killed by signal %d (%s)", WTERMSIG(status),
				       g_strsignal(WTERMSIG(status)));
	return g_strdup_printf("exited with status %d", WEXITSTATUS(status));
}

int supervisor_run(supervisor_worker_fn fn, void *user, const struct supervisor_options *opts)
{
	sigset_t set, saved;
	pid_t worker;
	gboolean stopping = FALSE, ready = FALSE;
	gint64 started = 0, restart_at = -1, kill_at = -1;
	guint delay = opts->restart_min_ms;
	int result = 0;

	signal_set(&set);
	sigprocmask(SIG_BLOCK, &set, &saved);
	supervisor_pid = getpid();
	if (!worker_alive) {
		void *page = mmap(NULL, sizeof(gint64), PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		worker_alive = page == MAP_FAILED ? NULL : page;
	}
	gint64 next_tick = opts->tick_ms ? now_ms() + opts->tick_ms : -1;
	worker = start_worker(fn, user, &saved);
	if (worker < 0)
		return 1;
	started = now_ms();

	for (;;) {
		/* wake for the next restart or forced kill, else wait for a signal */
		gint64 wake = next_tick;
		if (restart_at >= 0 && (wake < 0 || restart_at < wake))
			wake = restart_at;
		if (kill_at >= 0 && (wake < 0 || kill_at < wake))
			wake = kill_at;
		gint64 stall_check = worker > 0 && !stopping ? now_ms() + STALL_CHECK_MS : -1;
		if (stall_check >= 0 && (wake < 0 || stall_check < wake))
			wake = stall_check;
		struct timespec ts, *tsp = NULL;
		if (wake >= 0) {
			gint64 left = MAX(wake - now_ms(), 0);
			ts.tv_sec = left / 1000;
			ts.tv_nsec = (left % 1000) * 1000000;
			tsp = &ts;
		}
		siginfo_t info;
		int sig = tsp ? sigtimedwait(&set, &info, tsp) : sigwaitinfo(&set, &info);

		if (next_tick >= 0 && now_ms() >= next_tick) {
			next_tick = now_ms() + opts->tick_ms;
			opts->tick(opts->tick_user);
		}
		/* its death (SIGCHLD) restarts it as any other */
		if (worker > 0 && !stopping)
			kill_if_stalled(worker);
		if (sig < 0 && errno == EAGAIN) {
			if (kill_at >= 0 && now_ms() >= kill_at && worker > 0) {
				g_warning("worker %d did not stop in %u ms; killing it", (int)worker,
					  opts->stop_timeout_ms);
				kill(worker, SIGKILL);
				kill_at = -1;
			}
			if (restart_at >= 0 && now_ms() >= restart_at && !stopping) {
				restart_at = -1;
				worker = start_worker(fn, user, &saved);
				started = now_ms();
				if (worker < 0)
					restart_at = now_ms() + delay;
			}
			continue;
		}
		if (sig < 0)
			continue;

		switch (sig) {
		case SIGTERM:
		case SIGINT:
			if (stopping)
				break;
			stopping = TRUE;
			restart_at = -1;
			notify(opts, "STOPPING=1");
			if (worker <= 0)
				goto out;
			kill(worker, SIGTERM);
			kill_at = now_ms() + opts->stop_timeout_ms;
			break;
		case SIGHUP:
		case SIGUSR1:
			if (worker > 0)
				kill(worker, sig);
			break;
		case SIGUSR2:
			if (!ready) {
				ready = TRUE;
				notify(opts, "READY=1");
			}
			break;
		case SIGCHLD: {
			int status;
			pid_t pid;
			while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
				if (pid != worker)
					continue;
				worker = -1;
				forget_heartbeat();
				g_autofree char *how = describe_status(status);
				if (stopping) {
					result = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
					if (result)
						g_warning("worker %d %s while stopping", (int)pid, how);
					goto out;
				}
				if (WIFEXITED(status) && (WEXITSTATUS(status) == 0 ||
							  WEXITSTATUS(status) == SUPERVISOR_EXIT_FATAL)) {
					result = WEXITSTATUS(status) ? 1 : 0;
					goto out;
				}
				delay = now_ms() - started >= HEALTHY_RUN_MS
						? opts->restart_min_ms
						: MIN(delay * 2, opts->restart_max_ms);
				g_warning("worker %d %s; restarting it in %u ms (the event socket "
					  "stays open meanwhile)",
					  (int)pid, how, delay);
				restart_at = now_ms() + delay;
			}
			break;
		}
		default:
			break;
		}
	}
out:
	sigprocmask(SIG_SETMASK, &saved, NULL);
	return result;
}

void supervisor_worker_ready(void)
{
	/* not to whoever adopted an orphan */
	if (!supervisor_worker_orphaned())
		kill(supervisor_pid, SIGUSR2);
}

gint64 supervisor_worker_last_alive(void)
{
	return worker_alive ? __atomic_load_n(worker_alive, __ATOMIC_RELAXED) : 0;
}

void supervisor_worker_alive(gint64 now_us)
{
	if (worker_alive)
		__atomic_store_n(worker_alive, now_us, __ATOMIC_RELAXED);
}

void supervisor_hold_signals(void)
{
	sigset_t set;

	held_set(&set);
	sigprocmask(SIG_BLOCK, &set, NULL);
}

void supervisor_worker_take_signals(void)
{
	sigset_t set;

	held_set(&set);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

gboolean supervisor_worker_watch(void)
{
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
		g_warning("cannot ask to be told of the supervisor's death: %s", g_strerror(errno));
	/* a supervisor that died before the request was made sent nothing */
	return !supervisor_worker_orphaned();
}

gboolean supervisor_worker_orphaned(void)
{
	return in_worker && getppid() != supervisor_pid;
}
