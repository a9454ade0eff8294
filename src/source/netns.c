/*
 * netns.c - enter a network namespace for set-up, then return.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include "ctflowd/error.h"
#include "ctflowd/netns.h"

int netns_enter(const char *name_or_path, GError **error)
{
	g_autofree char *path = NULL;

	/* A bare name is what `ip netns add` creates under /run/netns. */
	if (strchr(name_or_path, '/'))
		path = g_strdup(name_or_path);
	else
		path = g_build_filename("/run/netns", name_or_path, NULL);

	int saved = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (saved < 0) {
		g_set_error(error, CTFLOWD_ERROR, errno,
			    "cannot open the current network namespace: %s", g_strerror(errno));
		return -1;
	}
	int target = open(path, O_RDONLY | O_CLOEXEC);
	if (target < 0) {
		int e = errno;
		close(saved);
		g_set_error(error, CTFLOWD_ERROR, e,
			    "network namespace %s: cannot open %s: %s", name_or_path, path,
			    g_strerror(e));
		return -1;
	}
	if (setns(target, CLONE_NEWNET) < 0) {
		int e = errno;
		close(target);
		close(saved);
		g_set_error(error, CTFLOWD_ERROR, e,
			    "network namespace %s: cannot enter %s: %s%s", name_or_path, path,
			    g_strerror(e), e == EPERM ? " (needs CAP_SYS_ADMIN)" : "");
		return -1;
	}
	close(target);
	return saved;
}

gboolean netns_leave(int saved, GError **error)
{
	if (saved < 0)
		return TRUE;
	int rc = setns(saved, CLONE_NEWNET);
	int e = errno;
	close(saved);
	if (rc < 0) {
		g_set_error(error, CTFLOWD_ERROR, e,
			    "cannot return to the original network namespace: %s", g_strerror(e));
		return FALSE;
	}
	return TRUE;
}
