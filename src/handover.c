/*
 * handover.c - a holder process that keeps the event socket for a successor.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctflowd/error.h"
#include "ctflowd/handover.h"
#include "ctflowd/systemd.h"

#define HOLD_TICK_MS 200
#define HANDOVER_SOCKET_NAME "handover.sock"
/* how long a successor waits for a holder that accepted it to answer */
#define TAKE_TIMEOUT_MS 5000
/* the exit status of the holder's first fork when it could not fork again */
#define HOLDER_NOT_STARTED 1

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

/* Waits until the successor closes the connection: from then on it holds
 * the socket, and the holder may let go of its own copy. */
static void wait_taken(int conn)
{
	char b;
	ssize_t n;

	while ((n = read(conn, &b, 1)) > 0 || (n < 0 && errno == EINTR))
		;
}

/*
 * A holder started by a worker whose stop overran runs beside a journal
 * that is still open: keeping nothing but its two descriptors, it cannot
 * keep the journal's lock from the next ctflowd.
 */
static void close_others(int a, int b)
{
	int lo = MIN(a, b), hi = MAX(a, b);

	if (lo > 3)
		close_range(3, lo - 1, 0);
	if (hi > lo + 1)
		close_range(lo + 1, hi - 1, 0);
	close_range(hi + 1, ~0U, 0);
}

/* The holder: no GLib main loop, no threads; it only waits. */
G_GNUC_NORETURN static void hold(int fd, int listener, const char *path, guint timeout_ms,
				  guard *g)
{
	struct pollfd p = { .fd = listener, .events = POLLIN };
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

	while (g_get_monotonic_time() < deadline) {
		gint64 left_ms = (deadline - g_get_monotonic_time()) / 1000;
		int rc = poll(&p, 1, (int)MIN(left_ms, (gint64)HOLD_TICK_MS));
		if (rc == 0 && g)
			guard_check(g, 0);
		if (rc <= 0)
			continue;
		int conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
		if (conn < 0)
			continue;
		gboolean sent = send_fd(conn, fd, path);
		if (sent)
			wait_taken(conn);
		close(conn);
		if (sent) {
			unlink(path);
			_exit(0);
		}
	}
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

gboolean handover_offer(int fd, const char *path, guint timeout_ms, guard *g, GError **error)
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
		/* forked by a worker's thread, it would carry that thread's name */
		prctl(PR_SET_NAME, "ctflowd");
		if (!g)
			close_others(fd, listener);
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

int handover_take(const char *path, GError **error)
{
	struct sockaddr_un addr;

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
	close(conn);
	if (fd < 0)
		g_set_error(error, CTFLOWD_ERROR, EPROTO,
			    "a holder answered at %s but passed no socket", path);
	return fd;
}
