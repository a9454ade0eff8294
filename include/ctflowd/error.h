/*
 * error.h - the GError domain for system-level failures: the code is the
 * errno value that caused it (or the closest one), the message says what
 * was being done.
 */
#pragma once

#include <glib.h>

#define CTFLOWD_ERROR (ctflowd_error_quark())
GQuark ctflowd_error_quark(void);
