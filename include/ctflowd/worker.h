/*
 * worker.h - the pipeline process: reads the event socket it is given,
 * journals and exports until SIGTERM.
 */
#pragma once

#include <glib.h>
#include "ctflowd/config.h"

/*
 * A stop (SIGTERM, or the supervisor's death) ends within this: at most
 * 30 s reading what the kernel still holds back, then at most 10 s of
 * delivery; a worker whose stop still overruns ends itself at this bound
 * (what it did not deliver stays in the journal).
 */
#define WORKER_STOP_LIMIT_MS 45000

/**
 * worker_run:
 * Runs the pipeline on @events_fd (configured, owned by the caller) until
 * SIGTERM or SIGINT.  With @supervised, tells the supervisor when it is up
 * and stops when the supervisor dies.
 * Returns the exit status; SUPERVISOR_EXIT_FATAL when set-up fails.
 */
int worker_run(const struct ctflowd_config *config, int events_fd, gboolean supervised);
