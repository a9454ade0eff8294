/*
 * systemd.c - sd_notify and sd_listen_fds, per their documented protocol.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctflowd/error.h"
#include "ctflowd/systemd.h"

#define LISTEN_FDS_START 3

gboolean systemd_notify_available(void)
{
	const char *path = g_getenv("NOTIFY_SOCKET");
	return path && *path;
}

gboolean systemd_notify(const char *state, const int *fds, guint n_fds, GError **error)
{
	const char *path = g_getenv("NOTIFY_SOCKET");
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	if (!path || !*path) {
		g_set_error(error, CTFLOWD_ERROR, ENOENT, "NOTIFY_SOCKET is not set");
		return FALSE;
	}
	size_t len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof(addr.sun_path)) {
		g_set_error(error, CTFLOWD_ERROR, EINVAL, "NOTIFY_SOCKET \"%s\" is not a socket path",
			    path);
		return FALSE;
	}
	memcpy(addr.sun_path, path, len);
	if (path[0] == '@')
		addr.sun_path[0] = '\0';   /* abstract namespace */

	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		int e = errno;
		g_set_error(error, CTFLOWD_ERROR, e, "notify socket: %s", g_strerror(e));
		return FALSE;
	}
	struct iovec iov = { .iov_base = (void *)state, .iov_len = strlen(state) };
	struct msghdr msg = {
		.msg_name = &addr,
		.msg_namelen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len),
		.msg_iov = &iov,
		.msg_iovlen = 1,
	};
	char control[CMSG_SPACE(sizeof(int) * 8)];
	if (n_fds) {
		g_return_val_if_fail(n_fds <= 8, FALSE);
		memset(control, 0, sizeof(control));
		msg.msg_control = control;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
	}
	ssize_t sent = sendmsg(fd, &msg, MSG_NOSIGNAL);
	int e = errno;
	close(fd);
	if (sent < 0) {
		g_set_error(error, CTFLOWD_ERROR, e, "cannot notify %s: %s", path, g_strerror(e));
		return FALSE;
	}
	return TRUE;
}

static void forget_listen_env(void)
{
	g_unsetenv("LISTEN_PID");
	g_unsetenv("LISTEN_FDS");
	g_unsetenv("LISTEN_FDNAMES");
}

int systemd_take_listen_fd(const char *name)
{
	const char *pid_text = g_getenv("LISTEN_PID");
	const char *fds_text = g_getenv("LISTEN_FDS");
	const char *names_text = g_getenv("LISTEN_FDNAMES");
	int found = -1;

	if (!pid_text || !fds_text) {
		forget_listen_env();
		return -1;
	}
	/* the variables are for one process; a child that inherited them
	 * must not take descriptors it does not own */
	if (g_ascii_strtoll(pid_text, NULL, 10) != (gint64)getpid()) {
		forget_listen_env();
		return -1;
	}
	gint64 n = g_ascii_strtoll(fds_text, NULL, 10);
	g_auto(GStrv) names = names_text ? g_strsplit(names_text, ":", -1) : NULL;
	guint n_names = names ? g_strv_length(names) : 0;

	for (gint64 i = 0; i < n && i < 1024; i++) {
		int fd = LISTEN_FDS_START + (int)i;
		const char *fd_name = (guint)i < n_names ? names[i] : "unknown";
		if (found < 0 && g_strcmp0(fd_name, name) == 0) {
			found = fd;
			fcntl(fd, F_SETFD, FD_CLOEXEC);
		} else {
			g_warning("closing descriptor %d (\"%s\") passed by the service manager: "
				  "not one ctflowd stores",
				  fd, fd_name);
			close(fd);
		}
	}
	forget_listen_env();
	return found;
}
