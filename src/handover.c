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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctflowd/error.h"
#include "ctflowd/handover.h"

#define HOLD_TICK_MS 200

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

static void send_fd(int conn, int fd)
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
	sendmsg(conn, &msg, MSG_NOSIGNAL);
}

/* The holder: no GLib main loop, no threads; it only waits. */
G_GNUC_NORETURN static void hold(int fd, int listener, const char *path, guint timeout_ms,
				  guard *g)
{
	struct pollfd p = { .fd = listener, .events = POLLIN };
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
	int rc = 0;

	while (rc == 0 && g_get_monotonic_time() < deadline) {
		gint64 left_ms = (deadline - g_get_monotonic_time()) / 1000;
		rc = poll(&p, 1, (int)MIN(left_ms, (gint64)HOLD_TICK_MS));
		if (rc == 0 && g)
			guard_check(g, 0);
	}

	if (rc > 0) {
		int conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
		if (conn >= 0) {
			send_fd(conn, fd);
			/* wait for the successor to close: it holds the socket now */
			char b;
			while (read(conn, &b, 1) > 0)
				;
			close(conn);
			unlink(path);
			_exit(0);
		}
	}
	int queued = 0;
	ioctl(fd, FIONREAD, &queued);
	g_warning("no ctflowd took over the conntrack event socket within %u ms; closing "
		  "it, with %d bytes of events still queued: flows that end from now on are "
		  "not seen",
		  timeout_ms, queued);
	unlink(path);
	_exit(1);
}

gboolean handover_offer(int fd, const char *path, guint timeout_ms, guard *g, GError **error)
{
	struct sockaddr_un addr;

	if (!fill_address(&addr, path, error))
		return FALSE;
	unlink(path);
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
		g_set_error(error, CTFLOWD_ERROR, e, "cannot start the socket holder: %s",
			    g_strerror(e));
		return FALSE;
	}
	if (child == 0) {
		setsid();
		if (fork() != 0)
			_exit(0);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		hold(fd, listener, path, timeout_ms, g);
	}
	close(listener);
	waitpid(child, NULL, 0);
	g_message("conntrack event socket held for a successor at %s for up to %u ms", path,
		  timeout_ms);
	return TRUE;
}

int handover_take(const char *path, GError **error)
{
	struct sockaddr_un addr;

	if (!fill_address(&addr, path, error))
		return -1;
	int conn = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (conn < 0)
		return -1;
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
	if (poll(&p, 1, 5000) > 0 && recvmsg(conn, &msg, MSG_CMSG_CLOEXEC) > 0) {
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(&fd, CMSG_DATA(c), sizeof(int));
	}
	close(conn);
	if (fd < 0)
		g_set_error(error, CTFLOWD_ERROR, EPROTO,
			    "a holder answered at %s but passed no socket", path);
	return fd;
}
