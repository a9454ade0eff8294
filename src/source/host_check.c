/*
 * host_check.c - the sysctls that make conntrack's DESTROY events complete.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ctflowd/error.h"
#include "ctflowd/host_check.h"

struct required_sysctl {
	const char *name;
	const char *why;
};

static const struct required_sysctl required[] = {
	{ "nf_conntrack_acct", "without it DESTROY events carry no packet or byte counters" },
	{ "nf_conntrack_timestamp", "without it DESTROY events carry no start or end time" },
	{ "nf_conntrack_events",
	  "0 sends no events; 2 (auto) gives no DESTROY for entries created while no "
	  "listener was subscribed" },
};

static gboolean read_value(const char *path, long *value, GError **error)
{
	g_autofree char *text = NULL;
	g_autoptr(GError) e = NULL;

	if (!g_file_get_contents(path, &text, NULL, &e)) {
		g_set_error(error, CTFLOWD_ERROR, ENOENT,
			    "cannot read %s: %s (is conntrack active in this network namespace?)",
			    path, e->message);
		return FALSE;
	}
	char *end = NULL;
	errno = 0;
	*value = strtol(text, &end, 10);
	if (errno || end == text) {
		g_set_error(error, CTFLOWD_ERROR, EINVAL,
			    "%s holds \"%s\", not a number", path, g_strstrip(text));
		return FALSE;
	}
	return TRUE;
}

static gboolean write_one(const char *path, GError **error)
{
	FILE *f = fopen(path, "w");
	if (!f || fputs("1\n", f) == EOF || fclose(f) != 0) {
		int e = errno;
		g_set_error(error, CTFLOWD_ERROR, e, "cannot write 1 to %s: %s",
			    path, g_strerror(e));
		return FALSE;
	}
	return TRUE;
}

gboolean host_check_sysctls(const char *proc_dir, gboolean manage, GError **error)
{
	for (size_t i = 0; i < G_N_ELEMENTS(required); i++) {
		g_autofree char *path = g_build_filename(proc_dir, required[i].name, NULL);
		long value;

		if (!read_value(path, &value, error))
			return FALSE;
		if (value == 1)
			continue;
		if (!manage) {
			g_set_error(error, CTFLOWD_ERROR, EINVAL,
				    "net.netfilter.%s is %ld, needs 1: %s (set it, or allow "
				    "ctflowd to with manage_sysctls = yes)",
				    required[i].name, value, required[i].why);
			return FALSE;
		}
		if (!write_one(path, error))
			return FALSE;
		g_message("set net.netfilter.%s from %ld to 1: %s; entries created before "
			  "this lack what it adds",
			  required[i].name, value, required[i].why);
	}
	return TRUE;
}
