/*
 * log.h - where GLib's log messages go: stderr in the foreground, syslog
 * (daemon facility) otherwise.  Modules log with g_message / g_warning /
 * g_debug under G_LOG_DOMAIN "ctflowd"; a message says what failed and why.
 */
#pragma once

#include <glib.h>

/**
 * log_init:
 * @foreground: TRUE writes to stderr, FALSE to syslog.
 * @verbosity: 0 shows messages and worse, 1 adds info, 2 and more debug.
 */
void log_init(gboolean foreground, int verbosity);

/**
 * log_use_syslog:
 * From now on writes to syslog, as a daemon does: for a process that has
 * let go of the stderr it was started with.
 */
void log_use_syslog(void);
