/*
 * handover.c - a holder process that keeps the event socket for a successor.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "ctflowd/error.h"
#include "ctflowd/handover.h"
#include "ctflowd/log.h"
#include "ctflowd/systemd.h"

#define HOLD_TICK_MS 200
#define HANDOVER_SOCKET_NAME "handover.sock"
/* how long a successor waits for a holder that accepted it to answer */
#define TAKE_TIMEOUT_MS 5000
/* the exit status of the holder's first fork when it could not fork again */
#define HOLDER_NOT_STARTED 1
/* what a successor that took the socket tells the holder; closing the
 * connection without either means it gives the socket back */
#define HANDOVER_ANSWER_TAKEN 'T'
#define HANDOVER_ANSWER_REFUSED 'R'

static gboolean fill_address(struct sockaddr_un *addr, const char *path, GError **error)
{
	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(addr->sun_path)) {
		g_set_error(error, CTFLOWD_ERROR, ENAMETOOLONG, "handover socket path too long: %s",
			    path);
		return FALSE;
	}
	strcpy(addr->sun_path, path);
	return TRUE;
}

static gboolean send_fd(int conn, int fd, const char *path)
{
	char byte = 'S';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	char control[CMSG_SPACE(sizeof(int))];
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control,
		.msg_controllen = sizeof(control),
	};
	memset(control, 0, sizeof(control));
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	if (sendmsg(conn, &msg, MSG_NOSIGNAL) == 1)
		return TRUE;
	g_warning("cannot pass the conntrack event socket to the ctflowd that connected to %s: "
		  "%s; keeping it for another",
		  path, g_strerror(errno));
	return FALSE;
}

/* Only ctflowd itself may ask for the socket or offer one: anyone else
 * would read other users' connections, or blind ctflowd. */
static gboolean peer_is_ctflowd(int conn, uid_t *uid)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		*uid = (uid_t)-1;
		return FALSE;
	}
	*uid = cred.uid;
	return cred.uid == geteuid();
}

/* With a guard, the holder keeps what the guard reads through: files in
 * /proc and netlink sockets. */
static gboolean kept_for_guard(int n)
{
	struct statfs fs;
	int domain = 0;
	socklen_t len = sizeof(domain);

	if (fstatfs(n, &fs) == 0 && fs.f_type == PROC_SUPER_MAGIC)
		return TRUE;
	return getsockopt(n, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && domain == AF_NETLINK;
}

static void close_all_but(int a, int b)
{
	int lo = MIN(a, b), hi = MAX(a, b);

	if (lo > 3)
		close_range(3, lo - 1, 0);
	if (hi > lo + 1)
		close_range(lo + 1, hi - 1, 0);
	close_range(hi + 1, ~0U, 0);
}

static void close_all_but_guard(int fd, int listener)
{
	DIR *dir = opendir("/proc/self/fd");
	GArray *doomed = g_array_new(FALSE, FALSE, sizeof(int));
	struct dirent *e;

	while (dir && (e = readdir(dir))) {
		int n = atoi(e->d_name);
		if (n > 2 && n != fd && n != listener && n != dirfd(dir) && !kept_for_guard(n))
			g_array_append_val(doomed, n);
	}
	if (dir)
		closedir(dir);
	for (guint i = 0; i < doomed->len; i++)
		close(g_array_index(doomed, int, i));
	g_array_free(doomed, TRUE);
}

/*
 * What the holder inherited from whoever started ctflowd (its stdout, a
 * pipe, a file with a lock on it, a journal's lock when a worker leaves the
 * holder) must not live on in it: a pipe would not reach its end, and a
 * lock would not be released, until the holder ends.
 */
static void close_inherited(int fd, int listener, gboolean keep_guard)
{
	/* a connection to syslog is among what goes: closed here first, so
	 * that syslog() does not write to whatever reuses its number */
	closelog();
	if (keep_guard)
		close_all_but_guard(fd, listener);
	else
		close_all_but(fd, listener);
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		for (int i = 0; i <= 2; i++)
			if (i != fd && i != listener)
				dup2(null, i);
		if (null > 2)
			close(null);
	}
	/* stderr leads nowhere now: the holder logs as a daemon does */
	log_use_syslog();
}

/*
 * The successor keeps the connection open until it runs, then says so.
 * Until then the holder keeps its copy of the socket, so that a successor
 * that fails after taking it (a namespace it cannot enter, a sysctl set
 * wrong) loses nothing: the holder waits for the next one, for the time it
 * has left.  Returns TRUE when the holder is done.
 */
static gboolean hear_successor(int conn, const char *path)
{
	char answer = 0;
	ssize_t n;

	while ((n = read(conn, &answer, 1)) < 0 && errno == EINTR)
		;
	if (n == 1 && answer == HANDOVER_ANSWER_TAKEN)
		return TRUE;
	if (n == 1 && answer == HANDOVER_ANSWER_REFUSED) {
		g_warning("the ctflowd that connected to %s refused the conntrack event socket "
			  "(its log says why) and opened its own; closing this one with the "
			  "events it still queued",
			  path);
		return TRUE;
	}
	g_warning("the ctflowd that took the conntrack event socket at %s did not start; "
		  "keeping the socket for the next one",
		  path);
	return FALSE;
}

/* The holder: no GLib main loop, no threads; it only waits. */
G_GNUC_NORETURN static void hold(int fd, int listener, const char *path, guint timeout_ms,
				  guard *g)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
	int conn = -1;   /* a successor that has the socket and has not answered yet */

	for (;;) {
		/* a successor checking the socket at the deadline gets the time
		 * a take may last to answer: it may be running on it already */
		gint64 end = deadline + (conn >= 0 ? TAKE_TIMEOUT_MS * 1000 : 0);
		gint64 left_ms = (end - g_get_monotonic_time()) / 1000;
		if (left_ms <= 0)
			break;
		struct pollfd p = { .fd = conn >= 0 ? conn : listener, .events = POLLIN };
		int rc = poll(&p, 1, (int)MIN(left_ms, (gint64)HOLD_TICK_MS));
		if (rc == 0 && g)
			guard_check(g, 0);
		if (rc <= 0)
			continue;
		if (conn >= 0) {
			gboolean done = hear_successor(conn, path);
			close(conn);
			conn = -1;
			if (done) {
				unlink(path);
				_exit(0);
			}
			continue;
		}
		if ((conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC)) < 0)
			continue;
		uid_t uid;
		if (!peer_is_ctflowd(conn, &uid)) {
			g_warning("refusing the conntrack event socket held at %s to a process of "
				  "uid %d: only ctflowd's own uid %u may take it",
				  path, (int)uid, (guint)geteuid());
			close(conn);
			conn = -1;
		} else if (!send_fd(conn, fd, path)) {
			close(conn);
			conn = -1;
		}
	}
	if (conn >= 0)
		close(conn);
	int queued = 0;
	if (ioctl(fd, FIONREAD, &queued) < 0)
		g_warning("no ctflowd took over the conntrack event socket within %u ms; closing "
			  "it (how much it still queues is unknown: %s): flows that end from now "
			  "on are not seen",
			  timeout_ms, g_strerror(errno));
	else
		g_warning("no ctflowd took over the conntrack event socket within %u ms; closing "
			  "it, with %d bytes of events still queued: flows that end from now on "
			  "are not seen",
			  timeout_ms, queued);
	unlink(path);
	_exit(1);
}

/*
 * Starts a detached holder for @fd, listening on @path, that lives at most
 * @timeout_ms and meanwhile runs @g (may be NULL): with nobody reading, the
 * guard is what keeps parked events from filling the table.  The holder
 * keeps nothing else it inherited (the caller's stdio, a pipe, a journal's
 * lock): descriptors 0-2 lead to /dev/null and it logs to syslog.  It hands
 * the socket only to a process of its own uid, and lets go of its copy only
 * once that one answers (see handover_answer()).  Returns once the holder is
 * listening.
 */
static gboolean handover_offer(int fd, const char *path, guint timeout_ms, guard *g,
			       GError **error)
{
	struct sockaddr_un addr;

	if (!fill_address(&addr, path, error))
		return FALSE;
	if (unlink(path) < 0 && errno != ENOENT) {
		int e = errno;
		g_set_error(error, CTFLOWD_ERROR, e, "cannot remove the old %s: %s", path,
			    g_strerror(e));
		return FALSE;
	}
	int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/* the mode of the socket's inode is what bind() gives the file
	 * (less the umask); chmod() on the path after it would follow a link */
	if (listener < 0 || fchmod(listener, 0600) < 0 ||
	    bind(listener, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(listener, 1) < 0) {
		int e = errno;
		if (listener >= 0)
			close(listener);
		g_set_error(error, CTFLOWD_ERROR, e, "cannot listen on %s: %s", path,
			    g_strerror(e));
		return FALSE;
	}

	/* Double fork: the holder is nobody's child, so the service manager or
	 * shell that waits for ctflowd sees it exit now. */
	pid_t child = fork();
	if (child < 0) {
		int e = errno;
		close(listener);
		unlink(path);
		g_set_error(error, CTFLOWD_ERROR, e, "cannot start the socket holder: %s",
			    g_strerror(e));
		return FALSE;
	}
	if (child == 0) {
		setsid();
		pid_t holder = fork();
		if (holder < 0)
			_exit(HOLDER_NOT_STARTED);
		if (holder > 0)
			_exit(0);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		/* whatever its parent held back: SIGTERM ends the holder */
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		/* forked by a worker's thread, it would carry that thread's name */
		prctl(PR_SET_NAME, "ctflowd");
		close_inherited(fd, listener, g != NULL);
		hold(fd, listener, path, timeout_ms, g);
	}
	close(listener);
	int status = 0;
	pid_t waited;
	while ((waited = waitpid(child, &status, 0)) < 0 && errno == EINTR)
		;
	if (waited < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		unlink(path);
		g_set_error(error, CTFLOWD_ERROR, ECHILD,
			    "cannot start the socket holder: its parent process failed");
		return FALSE;
	}
	g_message("conntrack event socket held for a successor at %s for up to %u ms", path,
		  timeout_ms);
	return TRUE;
}

char *handover_path(const struct daemon_config *dc)
{
	return g_build_filename(dc->state_directory, HANDOVER_SOCKET_NAME, NULL);
}

gboolean handover_keeps_socket(const struct daemon_config *dc)
{
	return systemd_notify_available() || dc->handover_timeout_ms;
}

gboolean handover_leave(const struct daemon_config *dc, int fd, guard *g, GError **error)
{
	g_autofree char *path = handover_path(dc);
	GError *local = NULL;

	if (systemd_notify_available() || !dc->handover_timeout_ms)
		return TRUE;
	if (handover_offer(fd, path, dc->handover_timeout_ms, g, &local))
		return TRUE;
	g_set_error(error, local->domain, local->code,
		    "%s; events of flows ending before the next start are lost", local->message);
	g_error_free(local);
	return FALSE;
}

int handover_take(const char *path, int *holder, GError **error)
{
	struct sockaddr_un addr;

	*holder = -1;
	if (!fill_address(&addr, path, error))
		return -1;
	int conn = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (conn < 0) {
		int e = errno;
		g_set_error(error, CTFLOWD_ERROR, e, "cannot ask for a held socket at %s: %s", path,
			    g_strerror(e));
		return -1;
	}
	if (connect(conn, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		/* nobody holds a socket: the normal first start */
		close(conn);
		return -1;
	}
	uid_t uid;
	if (!peer_is_ctflowd(conn, &uid)) {
		g_warning("refusing the conntrack event socket offered at %s by a process of uid "
			  "%d: only one of ctflowd's own uid %u is taken; opening a new one",
			  path, (int)uid, (guint)geteuid());
		close(conn);
		return -1;
	}
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	char control[CMSG_SPACE(sizeof(int))];
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control,
		.msg_controllen = sizeof(control),
	};
	struct pollfd p = { .fd = conn, .events = POLLIN };
	int fd = -1;
	if (poll(&p, 1, TAKE_TIMEOUT_MS) > 0 && recvmsg(conn, &msg, MSG_CMSG_CLOEXEC) > 0 &&
	    !(msg.msg_flags & MSG_CTRUNC)) {
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(&fd, CMSG_DATA(c), sizeof(int));
	}
	if (fd < 0) {
		close(conn);
		g_set_error(error, CTFLOWD_ERROR, EPROTO,
			    "a holder answered at %s but passed no socket", path);
		return -1;
	}
	*holder = conn;
	return fd;
}

void handover_answer(int holder, enum handover_answer answer)
{
	char byte = answer == HANDOVER_TAKEN ? HANDOVER_ANSWER_TAKEN : HANDOVER_ANSWER_REFUSED;

	if (holder < 0)
		return;
	if (answer == HANDOVER_GIVEN_BACK)
		g_warning("giving the conntrack event socket back to the holder, which keeps it, "
			  "and what it queues, for the next start");
	else if (send(holder, &byte, 1, MSG_NOSIGNAL) != 1)
		g_warning("cannot tell the holder of the conntrack event socket that it was %s: "
			  "%s; it lets go of its copy at its timeout at the latest",
			  answer == HANDOVER_TAKEN ? "taken" : "refused", g_strerror(errno));
	close(holder);
}
