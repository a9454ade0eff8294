/*
 * log.c - one writer for all of GLib's logging.
 *
 * In the foreground, lines go to stderr with a timestamp and level; as a
 * daemon, to syslog where the level maps onto syslog priorities.
 */
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "ctflowd/log.h"

static gboolean log_foreground;
static int log_verbosity;

static int syslog_priority(GLogLevelFlags level)
{
	if (level & G_LOG_LEVEL_ERROR)
		return LOG_CRIT;
	if (level & G_LOG_LEVEL_CRITICAL)
		return LOG_ERR;
	if (level & G_LOG_LEVEL_WARNING)
		return LOG_WARNING;
	if (level & G_LOG_LEVEL_MESSAGE)
		return LOG_NOTICE;
	if (level & G_LOG_LEVEL_INFO)
		return LOG_INFO;
	return LOG_DEBUG;
}

static const char *level_name(GLogLevelFlags level)
{
	if (level & G_LOG_LEVEL_ERROR)
		return "fatal";
	if (level & G_LOG_LEVEL_CRITICAL)
		return "critical";
	if (level & G_LOG_LEVEL_WARNING)
		return "warning";
	if (level & G_LOG_LEVEL_MESSAGE)
		return "notice";
	if (level & G_LOG_LEVEL_INFO)
		return "info";
	return "debug";
}

static gboolean level_shown(GLogLevelFlags level)
{
	if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING |
		     G_LOG_LEVEL_MESSAGE))
		return TRUE;
	if (level & G_LOG_LEVEL_INFO)
		return log_verbosity >= 1;
	return log_verbosity >= 2;
}

static GLogWriterOutput write_log(GLogLevelFlags level, const GLogField *fields, gsize n,
				  gpointer user)
{
	const char *message = NULL;

	if (!level_shown(level))
		return G_LOG_WRITER_HANDLED;
	for (gsize i = 0; i < n; i++) {
		if (g_strcmp0(fields[i].key, "MESSAGE") == 0)
			message = fields[i].value;
	}
	if (!message)
		message = "(no message)";

	if (log_foreground) {
		g_autoptr(GDateTime) now = g_date_time_new_now_local();
		g_autofree char *ts = g_date_time_format(now, "%Y-%m-%d %H:%M:%S.%f");
		/* %f gives microseconds; milliseconds are enough to read a log */
		if (ts && strlen(ts) > 3)
			ts[strlen(ts) - 3] = '\0';
		fprintf(stderr, "%s ctflowd[%d] %s: %s\n", ts ? ts : "", (int)getpid(),
			level_name(level), message);
		fflush(stderr);
	} else {
		syslog(syslog_priority(level), "%s", message);
	}
	return G_LOG_WRITER_HANDLED;
}

void log_init(gboolean foreground, int verbosity)
{
	log_foreground = foreground;
	log_verbosity = verbosity;
	if (!foreground)
		openlog("ctflowd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	g_log_set_writer_func(write_log, NULL, NULL);
}

void log_use_syslog(void)
{
	openlog("ctflowd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	log_foreground = FALSE;
}
