/*
 * host_check.h - the sysctls accurate accounting needs, in the watched
 * namespace: nf_conntrack_acct=1 (counters), nf_conntrack_timestamp=1
 * (start/stop), nf_conntrack_events=1 (not 2, "auto": in auto mode entries
 * created while no listener existed never produce a DESTROY).
 */
#pragma once

#include <glib.h>

/**
 * host_check_sysctls:
 * Checks the three sysctls under @proc_dir (normally
 * "/proc/sys/net/netfilter", read in the current namespace).  With @manage,
 * a wrong value is set and logged; without, the first wrong one is an error
 * naming it, its value, what is needed and why.
 */
gboolean host_check_sysctls(const char *proc_dir, gboolean manage, GError **error);
