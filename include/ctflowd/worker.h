/*
 * worker.h - the pipeline process: reads the event socket it is given,
 * journals and exports until SIGTERM.
 */
#pragma once

#include <glib.h>
#include "ctflowd/config.h"

/**
 * worker_run:
 * Runs the pipeline on @events_fd (configured, owned by the caller) until
 * SIGTERM or SIGINT.  With @supervised, tells the supervisor when it is up.
 * Returns the exit status; SUPERVISOR_EXIT_FATAL when set-up fails.
 */
int worker_run(const struct ctflowd_config *config, int events_fd, gboolean supervised);
