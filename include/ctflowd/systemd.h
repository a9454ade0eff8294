/*
 * systemd.h - the two parts of systemd's service protocol ctflowd speaks,
 * written against the documented protocol (sd_notify(3),
 * sd_listen_fds(3)) rather than libsystemd:
 *
 *   NOTIFY_SOCKET   datagrams "READY=1", "STOPPING=1", "STATUS=...", and
 *                   "FDSTORE=1" + "FDNAME=..." with descriptors attached
 *                   (SCM_RIGHTS): systemd keeps them across restarts.
 *   LISTEN_FDS      descriptors passed back from the store at start, from
 *                   fd 3 on, named by LISTEN_FDNAMES, for LISTEN_PID.
 */
#pragma once

#include <glib.h>

/** systemd_notify_available: TRUE when NOTIFY_SOCKET is set. */
gboolean systemd_notify_available(void);

/**
 * systemd_notify:
 * Sends @state (newline-separated assignments) with @n_fds descriptors
 * attached.  FALSE with @error when NOTIFY_SOCKET is unset or the send fails.
 */
gboolean systemd_notify(const char *state, const int *fds, guint n_fds, GError **error);

/**
 * systemd_take_listen_fd:
 * The descriptor named @name among those passed with LISTEN_FDS (for this
 * process, per LISTEN_PID), or -1 if there is none.  Descriptors passed but
 * not taken are closed; the LISTEN_* variables are removed from the
 * environment so that workers do not see them.
 */
int systemd_take_listen_fd(const char *name);
