/*
 * test_config.c - the configuration file: defaults, every key, the forms of
 * sizes, durations and destinations, every kind of error with the line it
 * names, and config_to_string() loading back to the same settings.
 */
#include "config-build.h"
#include "ctflowd/config.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>

#define ORIGIN "test.conf"
#define DEFAULT_STATE LOCALSTATEDIR "/lib/ctflowd"

/* The smallest valid file: one export, which needs no state directory. */
#define MINIMAL_EXPORT "[export out]\nformat = json\ntransport = stdout\n"

static struct ctflowd_config *load_ok(const char *text)
{
	g_autoptr(GError) error = NULL;
	struct ctflowd_config *config = config_load_data(text, ORIGIN, &error);

	g_assert_no_error(error);
	g_assert_nonnull(config);
	return config;
}

/* Loads @text expecting failure with @code and a message that starts with
 * @prefix (the "test.conf:LINE: [section] key: " part) and contains @part. */
static void check_error(const char *text, int code, const char *prefix, const char *part)
{
	g_autoptr(GError) error = NULL;
	struct ctflowd_config *config = config_load_data(text, ORIGIN, &error);

	if (config) {
		g_autofree char *printed = config_to_string(config);
		config_free(config);
		g_error("expected an error starting with \"%s\"; loaded:\n%s", prefix, printed);
	}
	g_assert_error(error, CONFIG_ERROR, code);
	if (!g_str_has_prefix(error->message, prefix))
		g_error("message \"%s\" does not start with \"%s\"", error->message, prefix);
	if (part && !strstr(error->message, part))
		g_error("message \"%s\" does not contain \"%s\"", error->message, part);
}

/* A single key of [source] or [daemon] next to a minimal export. */
static char *with_key(const char *section, const char *key, const char *value)
{
	return g_strdup_printf("[%s]\n%s = %s\n\n" MINIMAL_EXPORT, section, key, value);
}

/* A single key added to a udp export; the key sits on line 5. */
static char *udp_export_with(const char *key, const char *value)
{
	return g_strdup_printf("[export c]\nformat = ipfix\ntransport = udp\ndestination = 127.0.0.1:4739\n"
			       "%s = %s\n", key, value);
}

static const struct export_config *export_at(const struct ctflowd_config *config, guint i)
{
	g_assert_cmpuint(i, <, config->exports->len);
	return g_ptr_array_index(config->exports, i);
}

static void assert_same_config(const struct ctflowd_config *a, const struct ctflowd_config *b)
{
	g_assert_cmpstr(a->daemon.state_directory, ==, b->daemon.state_directory);
	g_assert_cmpstr(a->daemon.pid_file, ==, b->daemon.pid_file);
	g_assert_cmpuint(a->daemon.stats_interval_ms, ==, b->daemon.stats_interval_ms);
	g_assert_cmpuint(a->daemon.spool_max, ==, b->daemon.spool_max);
	g_assert_cmpstr(a->source.netns, ==, b->source.netns);
	g_assert_cmpuint(a->source.receive_buffer, ==, b->source.receive_buffer);
	g_assert_cmpint(a->source.reliable, ==, b->source.reliable);
	g_assert_cmpint(a->source.subscribe_new, ==, b->source.subscribe_new);
	g_assert_cmpint(a->source.manage_sysctls, ==, b->source.manage_sysctls);
	g_assert_cmpuint(a->source.dedup_window, ==, b->source.dedup_window);
	g_assert_cmpuint(a->source.resync_delay_ms, ==, b->source.resync_delay_ms);
	g_assert_cmpuint(a->exports->len, ==, b->exports->len);
	for (guint i = 0; i < a->exports->len; i++) {
		const struct export_config *x = export_at(a, i), *y = export_at(b, i);
		g_assert_cmpstr(x->name, ==, y->name);
		g_assert_cmpint(x->format, ==, y->format);
		g_assert_cmpint(x->transport, ==, y->transport);
		g_assert_cmpstr(x->host, ==, y->host);
		g_assert_cmpstr(x->port, ==, y->port);
		g_assert_cmpstr(x->path, ==, y->path);
		g_assert_cmpuint(x->flush_interval_ms, ==, y->flush_interval_ms);
		g_assert_cmpuint(x->template_refresh_ms, ==, y->template_refresh_ms);
		g_assert_cmpuint(x->mtu, ==, y->mtu);
		g_assert_cmpuint(x->observation_domain, ==, y->observation_domain);
		g_assert_cmpstr(x->zone_vrf, ==, y->zone_vrf);
		g_assert_cmpint(x->uniflow, ==, y->uniflow);
		g_assert_cmpuint(x->reconnect_min_ms, ==, y->reconnect_min_ms);
		g_assert_cmpuint(x->reconnect_max_ms, ==, y->reconnect_max_ms);
		g_assert_cmpint(x->sync, ==, y->sync);
		g_assert_cmpstr(x->failover, ==, y->failover);
		g_assert_cmpint(x->standby, ==, y->standby);
	}
}

/* Printing, loading the print and printing again must change nothing. */
static void assert_round_trip(const struct ctflowd_config *config)
{
	g_autofree char *first = config_to_string(config);
	g_autoptr(GError) error = NULL;
	struct ctflowd_config *again = config_load_data(first, "printed", &error);

	if (!again)
		g_error("config_to_string() output does not load: %s\n%s", error->message, first);
	assert_same_config(config, again);
	g_autofree char *second = config_to_string(again);
	g_assert_cmpstr(first, ==, second);
	config_free(again);
}

static char *shipped_config_path(void)
{
	return g_test_build_filename(G_TEST_DIST, "..", "etc", "ctflowd.conf", NULL);
}

/* ------------------------------------------------------------------------ */

static void test_shipped(void)
{
	g_autofree char *path = shipped_config_path();
	g_autoptr(GError) error = NULL;
	struct ctflowd_config *config = config_load(path, &error);

	g_assert_no_error(error);
	g_assert_cmpstr(config->path, ==, path);
	g_assert_cmpstr(config->daemon.state_directory, ==, DEFAULT_STATE);
	g_assert_true(config->source.reliable);
	g_assert_cmpuint(config->source.receive_buffer, ==, 8 * 1024 * 1024);

	/* It must run without a collector: both exports are files. */
	g_assert_cmpuint(config->exports->len, ==, 2);
	const struct export_config *ipfix = export_at(config, 0), *json = export_at(config, 1);
	g_assert_cmpstr(ipfix->name, ==, "ipfix-file");
	g_assert_cmpint(ipfix->format, ==, EXPORT_FORMAT_IPFIX);
	g_assert_cmpint(ipfix->transport, ==, EXPORT_TRANSPORT_FILE);
	g_assert_cmpstr(ipfix->path, ==, DEFAULT_STATE "/flows.ipfix");
	g_assert_null(ipfix->host);
	g_assert_cmpstr(json->name, ==, "json");
	g_assert_cmpint(json->format, ==, EXPORT_FORMAT_JSON);
	g_assert_cmpint(json->transport, ==, EXPORT_TRANSPORT_FILE);
	g_assert_cmpstr(json->path, ==, DEFAULT_STATE "/flows.json");

	assert_round_trip(config);
	config_free(config);
}

/* Every key the shipped file documents is one the parser knows, and every
 * key the parser knows is documented there. */
static void test_shipped_documents_every_key(void)
{
	static const char *const keys[] = {
		"state_directory", "pid_file", "stats_interval", "spool_max",
		"netns", "receive_buffer", "reliable", "events", "manage_sysctls",
		"dedup_window", "resync_delay",
		"format", "transport", "destination", "path", "flush_interval",
		"template_refresh", "mtu", "observation_domain", "zone_vrf", "reconnect_min",
		"reconnect_max", "sync", "uniflow", "template_packets", "netflow_times",
		"source_port", "engine_type", "engine_id",
		"syslog_facility", "syslog_severity", "syslog_app_name", "syslog_hostname",
		"syslog_sd_id", "syslog_text", NULL,
	};
	g_autofree char *path = shipped_config_path();
	g_autofree char *text = NULL;
	g_autoptr(GError) error = NULL;

	g_file_get_contents(path, &text, NULL, &error);
	g_assert_no_error(error);
	for (int i = 0; keys[i]; i++)
		if (!strstr(text, keys[i]))
			g_error("etc/ctflowd.conf does not mention %s", keys[i]);

	/* The commented-out settings and collector examples ("#key = value",
	 * "#[export ...]", no blank after the '#', unlike prose) are valid once
	 * uncommented. */
	g_autoptr(GString) uncommented = g_string_new(NULL);
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
	for (int i = 0; lines[i]; i++) {
		const char *line = lines[i];
		gboolean setting = line[0] == '#' && (line[1] == '[' || g_ascii_isalpha(line[1]));
		g_string_append(uncommented, setting ? line + 1 : line);
		g_string_append_c(uncommented, '\n');
	}
	struct ctflowd_config *config = load_ok(uncommented->str);
	g_assert_cmpuint(config->exports->len, ==, 9);
	const struct export_config *udp = export_at(config, 2), *tcp = export_at(config, 3);
	const struct export_config *nf9 = export_at(config, 4), *nf5 = export_at(config, 5);
	g_assert_cmpint(nf9->format, ==, EXPORT_FORMAT_NETFLOW9);
	g_assert_cmpuint(nf9->source_port, ==, 2056);
	g_assert_cmpuint(nf9->template_packets, ==, 20);
	g_assert_cmpint(nf9->netflow_times, ==, NETFLOW_TIMES_ABSOLUTE);
	g_assert_cmpint(nf5->format, ==, EXPORT_FORMAT_NETFLOW5);
	const struct export_config *siem = export_at(config, 6), *local = export_at(config, 7);
	g_assert_cmpstr(tcp->failover, ==, export_at(config, 8)->name);
	g_assert_true(export_at(config, 8)->standby);
	g_assert_false(tcp->standby);
	g_assert_cmpstr(udp->name, ==, "collector");
	g_assert_cmpint(udp->transport, ==, EXPORT_TRANSPORT_UDP);
	g_assert_cmpstr(udp->host, ==, "127.0.0.1");
	g_assert_cmpstr(udp->port, ==, "4739");
	g_assert_cmpint(tcp->transport, ==, EXPORT_TRANSPORT_TCP);
	g_assert_cmpint(siem->format, ==, EXPORT_FORMAT_SYSLOG);
	g_assert_cmpstr(siem->syslog_sd_id, ==, "ctflowd@32473");
	g_assert_cmpint(local->transport, ==, EXPORT_TRANSPORT_LOCAL);
	g_assert_cmpstr(local->path, ==, "/dev/log");
	g_assert_cmpstr(config->daemon.pid_file, ==, "/run/ctflowd.pid");
	config_free(config);
}

static void test_defaults(void)
{
	struct ctflowd_config *config = load_ok(MINIMAL_EXPORT);

	g_assert_cmpstr(config->path, ==, ORIGIN);
	g_assert_cmpstr(config->daemon.state_directory, ==, DEFAULT_STATE);
	g_assert_null(config->daemon.pid_file);
	g_assert_cmpuint(config->daemon.stats_interval_ms, ==, 60000);
	g_assert_cmpuint(config->daemon.spool_max, ==, 256 * 1024 * 1024);

	g_assert_null(config->source.netns);
	g_assert_cmpuint(config->source.receive_buffer, ==, 8 * 1024 * 1024);
	g_assert_true(config->source.reliable);
	g_assert_false(config->source.subscribe_new);
	g_assert_true(config->source.manage_sysctls);
	g_assert_cmpuint(config->source.dedup_window, ==, 262144);
	g_assert_cmpuint(config->source.resync_delay_ms, ==, 2000);

	g_assert_cmpuint(config->exports->len, ==, 1);
	const struct export_config *e = export_at(config, 0);
	g_assert_cmpstr(e->name, ==, "out");
	g_assert_cmpint(e->format, ==, EXPORT_FORMAT_JSON);
	g_assert_cmpint(e->transport, ==, EXPORT_TRANSPORT_STDOUT);
	g_assert_null(e->host);
	g_assert_null(e->port);
	g_assert_null(e->path);
	g_assert_cmpuint(e->flush_interval_ms, ==, 1000);
	g_assert_cmpuint(e->template_refresh_ms, ==, 60000);
	g_assert_cmpuint(e->mtu, ==, 65000);
	g_assert_cmpuint(e->observation_domain, ==, 1);
	g_assert_cmpuint(e->reconnect_min_ms, ==, 1000);
	g_assert_cmpuint(e->reconnect_max_ms, ==, 60000);
	g_assert_false(e->sync);
	config_free(config);
}

static void test_every_key(void)
{
	struct ctflowd_config *config = load_ok(
		"[daemon]\n"
		"state_directory = /srv/ctflowd/\n"
		"pid_file = /run/ctflowd/ctflowd.pid\n"
		"stats_interval = 5m\n"
		"spool_max = 2G\n"
		"[source]\n"
		"netns = blue\n"
		"receive_buffer = 64MiB\n"
		"reliable = no\n"
		"events = destroy,new\n"
		"manage_sysctls = off\n"
		"dedup_window = 1048576\n"
		"resync_delay = 750ms\n"
		"[export tcp]\n"
		"format = ipfix\n"
		"transport = tcp\n"
		"destination = collector.example.net:4739\n"
		"flush_interval = 250ms\n"
		"template_refresh = 10m\n"
		"mtu = 9000\n"
		"observation_domain = 4294967295\n"
		"reconnect_min = 100ms\n"
		"reconnect_max = 2m\n"
		"sync = yes\n");

	g_assert_cmpstr(config->daemon.state_directory, ==, "/srv/ctflowd");
	g_assert_cmpstr(config->daemon.pid_file, ==, "/run/ctflowd/ctflowd.pid");
	g_assert_cmpuint(config->daemon.stats_interval_ms, ==, 300000);
	g_assert_cmpuint(config->daemon.spool_max, ==, G_GUINT64_CONSTANT(2) << 30);
	g_assert_cmpstr(config->source.netns, ==, "blue");
	g_assert_cmpuint(config->source.receive_buffer, ==, 64 << 20);
	g_assert_false(config->source.reliable);
	g_assert_true(config->source.subscribe_new);
	g_assert_false(config->source.manage_sysctls);
	g_assert_cmpuint(config->source.dedup_window, ==, 1048576);
	g_assert_cmpuint(config->source.resync_delay_ms, ==, 750);

	const struct export_config *e = export_at(config, 0);
	g_assert_cmpstr(e->name, ==, "tcp");
	g_assert_cmpint(e->format, ==, EXPORT_FORMAT_IPFIX);
	g_assert_cmpint(e->transport, ==, EXPORT_TRANSPORT_TCP);
	g_assert_cmpstr(e->host, ==, "collector.example.net");
	g_assert_cmpstr(e->port, ==, "4739");
	g_assert_null(e->path);
	g_assert_cmpuint(e->flush_interval_ms, ==, 250);
	g_assert_cmpuint(e->template_refresh_ms, ==, 600000);
	g_assert_cmpuint(e->mtu, ==, 9000);
	g_assert_cmpuint(e->observation_domain, ==, G_MAXUINT32);
	g_assert_cmpuint(e->reconnect_min_ms, ==, 100);
	g_assert_cmpuint(e->reconnect_max_ms, ==, 120000);
	g_assert_true(e->sync);

	assert_round_trip(config);
	config_free(config);
}

static guint64 spool_max_of(const char *value)
{
	g_autofree char *text = with_key("daemon", "spool_max", value);
	struct ctflowd_config *config = load_ok(text);
	guint64 bytes = config->daemon.spool_max;

	config_free(config);
	return bytes;
}

static guint64 receive_buffer_of(const char *value)
{
	g_autofree char *text = with_key("source", "receive_buffer", value);
	struct ctflowd_config *config = load_ok(text);
	guint64 bytes = config->source.receive_buffer;

	config_free(config);
	return bytes;
}

static void test_sizes(void)
{
	static const struct { const char *text; guint64 bytes; } good[] = {
		{ "1048576", 1 << 20 },
		{ "1024K", 1 << 20 }, { "1024k", 1 << 20 }, { "1024KB", 1 << 20 },
		{ "1024KiB", 1 << 20 }, { "1024kib", 1 << 20 },
		{ "1M", 1 << 20 }, { "1m", 1 << 20 }, { "1MB", 1 << 20 }, { "1MiB", 1 << 20 },
		{ "3 M", 3 << 20 }, { "1048576B", 1 << 20 }, { "001M", 1 << 20 },
		{ "1G", G_GUINT64_CONSTANT(1) << 30 }, { "1gib", G_GUINT64_CONSTANT(1) << 30 },
		/* Beyond 32 bits, so no truncation anywhere. */
		{ "16G", G_GUINT64_CONSTANT(16) << 30 },
		{ "17179869184", G_GUINT64_CONSTANT(16) << 30 },
		{ "17179869183G", G_GUINT64_CONSTANT(17179869183) << 30 },
	};
	for (gsize i = 0; i < G_N_ELEMENTS(good); i++) {
		g_test_message("spool_max = %s", good[i].text);
		g_assert_cmpuint(spool_max_of(good[i].text), ==, good[i].bytes);
	}

	static const char *const bad[] = {
		"-1M", "+1M", "1.5M", "M", "1T", "1MM", "1KM", "0x100000", "1 M B", "one",
		"1M 2", "1Mi", "1 000 000",
	};
	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autofree char *text = with_key("daemon", "spool_max", bad[i]);
		g_autofree char *got = g_strdup_printf("got \"%s\"", bad[i]);
		g_test_message("spool_max = %s", bad[i]);
		check_error(text, CONFIG_ERROR_VALUE, ORIGIN ":2: [daemon] spool_max: expected a size in bytes", got);
	}

	/* An empty value is not "use the default". */
	check_error("[daemon]\nspool_max =\n" MINIMAL_EXPORT, CONFIG_ERROR_VALUE,
		    ORIGIN ":2: [daemon] spool_max: expected a size in bytes", "got \"\"");

	/* Too big for 64 bits, in digits or through the suffix: out of range,
	 * not wrapped around to something small. */
	static const char *const huge[] = {
		"18446744073709551616", "99999999999999999999999", "17179869184G", "18014398509481984K",
	};
	for (gsize i = 0; i < G_N_ELEMENTS(huge); i++) {
		g_autofree char *text = with_key("daemon", "spool_max", huge[i]);
		g_test_message("spool_max = %s", huge[i]);
		check_error(text, CONFIG_ERROR_VALUE,
			    ORIGIN ":2: [daemon] spool_max: expected a size of at least 1M, got", huge[i]);
	}
	g_assert_cmpuint(spool_max_of("18446744073709551615"), ==, G_MAXUINT64);

	/* Bounds. */
	g_autofree char *small = with_key("daemon", "spool_max", "1023K");
	check_error(small, CONFIG_ERROR_VALUE,
		    ORIGIN ":2: [daemon] spool_max: expected a size of at least 1M, got \"1023K\"", NULL);
	g_assert_cmpuint(receive_buffer_of("4096"), ==, 4096);
	g_assert_cmpuint(receive_buffer_of("4K"), ==, 4096);
	g_assert_cmpuint(receive_buffer_of("1G"), ==, G_GUINT64_CONSTANT(1) << 30);
	static const char *const out_of_range[] = { "4095", "0", "1073741825", "2G", "1025M" };
	for (gsize i = 0; i < G_N_ELEMENTS(out_of_range); i++) {
		g_autofree char *text = with_key("source", "receive_buffer", out_of_range[i]);
		g_autofree char *got = g_strdup_printf("got \"%s\"", out_of_range[i]);
		check_error(text, CONFIG_ERROR_VALUE,
			    ORIGIN ":2: [source] receive_buffer: expected a size from 4K to 1G", got);
	}
}

static guint resync_delay_of(const char *value)
{
	g_autofree char *text = with_key("source", "resync_delay", value);
	struct ctflowd_config *config = load_ok(text);
	guint ms = config->source.resync_delay_ms;

	config_free(config);
	return ms;
}

static void test_durations(void)
{
	static const struct { const char *text; guint ms; } good[] = {
		{ "0", 0 }, { "0ms", 0 }, { "5", 5000 }, { "500ms", 500 }, { "500MS", 500 },
		{ "2s", 2000 }, { "2S", 2000 }, { "10 s", 10000 }, { "1m", 60000 },
		{ "1h", 3600000 }, { "60m", 3600000 }, { "3600", 3600000 }, { "3600000ms", 3600000 },
		{ "007s", 7000 },
	};
	for (gsize i = 0; i < G_N_ELEMENTS(good); i++) {
		g_test_message("resync_delay = %s", good[i].text);
		g_assert_cmpuint(resync_delay_of(good[i].text), ==, good[i].ms);
	}

	static const char *const bad[] = {
		"", "-1s", "+1s", "1.5s", "1d", "s", "1sec", "1 m s", "1ms2", "2 seconds", "1y", "0x10",
	};
	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autofree char *text = with_key("source", "resync_delay", bad[i]);
		g_autofree char *got = g_strdup_printf("got \"%s\"", bad[i]);
		g_test_message("resync_delay = %s", bad[i]);
		check_error(text, CONFIG_ERROR_VALUE,
			    ORIGIN ":2: [source] resync_delay: expected a duration: a number of seconds", got);
	}

	/* Out of range, including values that do not fit the millisecond
	 * field (guint) or 64 bits. */
	static const char *const too_long[] = {
		"3601", "3600001ms", "2h", "4294967296ms", "4294968s", "99999999999999999999999h",
	};
	for (gsize i = 0; i < G_N_ELEMENTS(too_long); i++) {
		g_autofree char *text = with_key("source", "resync_delay", too_long[i]);
		g_autofree char *got = g_strdup_printf("got \"%s\"", too_long[i]);
		check_error(text, CONFIG_ERROR_VALUE,
			    ORIGIN ":2: [source] resync_delay: expected a duration from 0s to 1h", got);
	}

	/* flush_interval: 10ms .. 1h. */
	g_autofree char *nine = g_strdup_printf(MINIMAL_EXPORT "flush_interval = 9ms\n");
	check_error(nine, CONFIG_ERROR_VALUE,
		    ORIGIN ":4: [export out] flush_interval: expected a duration from 10ms to 1h, got \"9ms\"", NULL);
	struct ctflowd_config *config = load_ok(MINIMAL_EXPORT "flush_interval = 10ms\n");
	g_assert_cmpuint(export_at(config, 0)->flush_interval_ms, ==, 10);
	config_free(config);
	config = load_ok(MINIMAL_EXPORT "flush_interval = 1h\n");
	g_assert_cmpuint(export_at(config, 0)->flush_interval_ms, ==, 3600000);
	config_free(config);

	/* stats_interval: 0 is off; otherwise at least a second. */
	config = load_ok("[daemon]\nstats_interval = 0\n" MINIMAL_EXPORT);
	g_assert_cmpuint(config->daemon.stats_interval_ms, ==, 0);
	config_free(config);
	config = load_ok("[daemon]\nstats_interval = 1\n" MINIMAL_EXPORT);
	g_assert_cmpuint(config->daemon.stats_interval_ms, ==, 1000);
	config_free(config);
	check_error("[daemon]\nstats_interval = 500ms\n" MINIMAL_EXPORT, CONFIG_ERROR_VALUE,
		    ORIGIN ":2: [daemon] stats_interval: expected 0 (off) or a duration from 1s to 24h, got \"500ms\"",
		    NULL);
}

static void test_booleans(void)
{
	static const char *const yes[] = { "yes", "YES", "Yes", "true", "True", "on", "ON", "1" };
	static const char *const no[] = { "no", "NO", "false", "FALSE", "off", "Off", "0" };

	for (gsize i = 0; i < G_N_ELEMENTS(yes); i++) {
		g_autofree char *text = g_strdup_printf("[source]\nreliable = no\nmanage_sysctls = %s\n" MINIMAL_EXPORT "sync = %s\n",
							yes[i], yes[i]);
		struct ctflowd_config *config = load_ok(text);
		g_assert_true(config->source.manage_sysctls);
		g_assert_true(export_at(config, 0)->sync);
		config_free(config);
	}
	for (gsize i = 0; i < G_N_ELEMENTS(no); i++) {
		g_autofree char *text = g_strdup_printf("[source]\nreliable = %s\n\n" MINIMAL_EXPORT, no[i]);
		struct ctflowd_config *config = load_ok(text);
		g_assert_false(config->source.reliable);
		config_free(config);
	}
	static const char *const bad[] = { "maybe", "", "2", "y", "n", "yess", "enabled" };
	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autofree char *text = with_key("source", "reliable", bad[i]);
		g_autofree char *expected = g_strdup_printf(ORIGIN ":2: [source] reliable: expected yes or no, got \"%s\"",
							    bad[i]);
		check_error(text, CONFIG_ERROR_VALUE, expected, NULL);
	}
	g_autofree char *sync = udp_export_with("sync", "perhaps");
	check_error(sync, CONFIG_ERROR_VALUE, ORIGIN ":5: [export c] sync: expected yes or no, got \"perhaps\"", NULL);
}

static void test_counts(void)
{
	struct ctflowd_config *config = load_ok("[source]\ndedup_window = 1024\n" MINIMAL_EXPORT);
	g_assert_cmpuint(config->source.dedup_window, ==, 1024);
	config_free(config);
	config = load_ok("[source]\ndedup_window = 67108864\n" MINIMAL_EXPORT);
	g_assert_cmpuint(config->source.dedup_window, ==, 67108864);
	config_free(config);

	static const char *const bad_window[] = { "1023", "67108865", "64K", "-1", "1e6", "", "18446744073709551616" };
	for (gsize i = 0; i < G_N_ELEMENTS(bad_window); i++) {
		g_autofree char *text = with_key("source", "dedup_window", bad_window[i]);
		g_autofree char *expected = g_strdup_printf(
			ORIGIN ":2: [source] dedup_window: expected a whole number from 1024 to 67108864, got \"%s\"",
			bad_window[i]);
		check_error(text, CONFIG_ERROR_VALUE, expected, NULL);
	}

	static const struct { const char *text; guint32 domain; } domains[] = {
		{ "0", 0 }, { "1", 1 }, { "4294967295", G_MAXUINT32 },
	};
	for (gsize i = 0; i < G_N_ELEMENTS(domains); i++) {
		g_autofree char *text = udp_export_with("observation_domain", domains[i].text);
		config = load_ok(text);
		g_assert_cmpuint(export_at(config, 0)->observation_domain, ==, domains[i].domain);
		config_free(config);
	}
	static const char *const bad_domain[] = { "4294967296", "-1", "0x10", "1K", "one" };
	for (gsize i = 0; i < G_N_ELEMENTS(bad_domain); i++) {
		g_autofree char *text = udp_export_with("observation_domain", bad_domain[i]);
		g_autofree char *expected = g_strdup_printf(
			ORIGIN ":5: [export c] observation_domain: expected a whole number from 0 to 4294967295, got \"%s\"",
			bad_domain[i]);
		check_error(text, CONFIG_ERROR_VALUE, expected, NULL);
	}
}

/* zone_vrf: ZONE=VRF pairs, kept sorted and spelled one way; a zone not
 * listed keeps its number. */
static void test_zone_vrf(void)
{
	static const struct { const char *text, *canonical; } good[] = {
		{ "1=100", "1=100" },
		{ " 7 = 70 ,2=20, 65535=4294967295,0=0 ", "0=0, 2=20, 7=70, 65535=4294967295" },
		{ "", NULL },
	};
	for (gsize i = 0; i < G_N_ELEMENTS(good); i++) {
		g_autofree char *text = udp_export_with("zone_vrf", good[i].text);
		struct ctflowd_config *config = load_ok(text);
		g_assert_cmpstr(export_at(config, 0)->zone_vrf, ==, good[i].canonical);
		assert_round_trip(config);
		config_free(config);
	}

	static const struct { const char *text, *why; } bad[] = {
		{ "1=2,1=3", "pair 2 (\"1=3\"): zone 1 is given twice" },
		{ "65536=1", "pair 1 (\"65536=1\"): zones go from 0 to 65535" },
		{ "1=4294967296", "VRF ids from 0 to 4294967295" },
		{ "1", "pair 1 (\"1\") is not ZONE=VRF" },
		{ "1=2,", "pair 2 (\"\") is not ZONE=VRF" },
		{ "a=1", "is not ZONE=VRF with two whole numbers" },
		{ "1=-2", "is not ZONE=VRF" },
		{ "1=2=3", "is not ZONE=VRF" },
	};
	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autofree char *text = udp_export_with("zone_vrf", bad[i].text);
		check_error(text, CONFIG_ERROR_VALUE, ORIGIN ":5: [export c] zone_vrf: ", bad[i].why);
	}

	g_autoptr(GError) error = NULL;
	g_autoptr(GArray) map = zone_vrf_parse("300=3, 10=1, 20=2", &error);
	g_assert_no_error(error);
	const struct zone_vrf *m = (const struct zone_vrf *)(const void *)map->data;
	g_assert_cmpuint(map->len, ==, 3);
	g_assert_cmpuint(zone_vrf_lookup(m, map->len, 10), ==, 1);
	g_assert_cmpuint(zone_vrf_lookup(m, map->len, 20), ==, 2);
	g_assert_cmpuint(zone_vrf_lookup(m, map->len, 300), ==, 3);
	g_assert_cmpuint(zone_vrf_lookup(m, map->len, 0), ==, 0);
	g_assert_cmpuint(zone_vrf_lookup(m, map->len, 15), ==, 15);
	g_assert_cmpuint(zone_vrf_lookup(m, map->len, 65535), ==, 65535);
	g_assert_cmpuint(zone_vrf_lookup(m, 0, 20), ==, 20);
}

/* uniflow: IPFIX only, off unless asked for. */
static void test_uniflow(void)
{
	static const struct { const char *text; gboolean on; } good[] = {
		{ "yes", TRUE }, { "no", FALSE }, { "on", TRUE },
	};
	for (gsize i = 0; i < G_N_ELEMENTS(good); i++) {
		g_autofree char *text = udp_export_with("uniflow", good[i].text);
		struct ctflowd_config *config = load_ok(text);
		g_assert_cmpint(export_at(config, 0)->uniflow, ==, good[i].on);
		assert_round_trip(config);
		config_free(config);
	}
	struct ctflowd_config *config = load_ok(MINIMAL_EXPORT);
	g_assert_false(export_at(config, 0)->uniflow);
	config_free(config);

	check_error("[export j]\nformat = json\ntransport = stdout\nuniflow = yes\n", CONFIG_ERROR_VALUE,
		    ORIGIN ":4: [export j] uniflow: is for format ipfix", NULL);
	config = load_ok("[export j]\nformat = json\ntransport = stdout\nuniflow = no\n");
	config_free(config);
	g_autofree char *bad = udp_export_with("uniflow", "maybe");
	check_error(bad, CONFIG_ERROR_VALUE, ORIGIN ":5: [export c] uniflow: expected yes or no", NULL);
}

static void test_events(void)
{
	static const struct { const char *text; gboolean subscribe_new; } good[] = {
		{ "destroy", FALSE }, { "DESTROY", FALSE }, { "destroy,new", TRUE },
		{ "new,destroy", TRUE }, { "destroy , new", TRUE },
	};
	for (gsize i = 0; i < G_N_ELEMENTS(good); i++) {
		g_autofree char *text = with_key("source", "events", good[i].text);
		struct ctflowd_config *config = load_ok(text);
		g_assert_cmpint(config->source.subscribe_new, ==, good[i].subscribe_new);
		config_free(config);
	}

	/* NEW alone would export nothing: only DESTROY carries the counters. */
	g_autofree char *only_new = with_key("source", "events", "new");
	check_error(only_new, CONFIG_ERROR_VALUE,
		    ORIGIN ":2: [source] events: expected destroy or destroy,new (destroy events carry the counters), got \"new\"",
		    NULL);

	static const char *const bad[] = { "", "destroy,", "destroy,,new", "destroy,old", "destroy;new", "all" };
	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autofree char *text = with_key("source", "events", bad[i]);
		g_autofree char *got = g_strdup_printf("got \"%s\"", bad[i]);
		check_error(text, CONFIG_ERROR_VALUE, ORIGIN ":2: [source] events: expected destroy or destroy,new", got);
	}
}

static void test_netns(void)
{
	static const struct { const char *text; const char *netns; } good[] = {
		{ "blue", "blue" }, { "/proc/1/ns/net", "/proc/1/ns/net" },
		{ "/run/netns/red", "/run/netns/red" }, { "", NULL },
	};
	for (gsize i = 0; i < G_N_ELEMENTS(good); i++) {
		g_autofree char *text = with_key("source", "netns", good[i].text);
		struct ctflowd_config *config = load_ok(text);
		g_assert_cmpstr(config->source.netns, ==, good[i].netns);
		assert_round_trip(config);
		config_free(config);
	}
	static const char *const bad[] = { "a/b", "..", ".", "proc/1/ns/net" };
	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autofree char *text = with_key("source", "netns", bad[i]);
		g_autofree char *expected = g_strdup_printf(
			ORIGIN ":2: [source] netns: expected a name under /run/netns or an absolute path, got \"%s\"", bad[i]);
		check_error(text, CONFIG_ERROR_VALUE, expected, NULL);
	}
}

static void test_destination(void)
{
	static const struct { const char *text; const char *host, *port, *printed; } good[] = {
		{ "127.0.0.1:4739", "127.0.0.1", "4739", "127.0.0.1:4739" },
		{ "collector.example.net:2055", "collector.example.net", "2055", NULL },
		{ "localhost:1", "localhost", "1", NULL },
		{ "my_collector-2:65535", "my_collector-2", "65535", NULL },
		{ "[::1]:4739", "::1", "4739", "[::1]:4739" },
		{ "[2001:db8::10]:4739", "2001:db8::10", "4739", "[2001:db8::10]:4739" },
		{ "[::ffff:192.0.2.1]:4739", "::ffff:192.0.2.1", "4739", NULL },
		{ "[fe80::1%eth0]:4739", "fe80::1%eth0", "4739", "[fe80::1%eth0]:4739" },
		/* The port is a number; leading zeros are just that. */
		{ "127.0.0.1:04739", "127.0.0.1", "4739", "127.0.0.1:4739" },
	};
	for (gsize i = 0; i < G_N_ELEMENTS(good); i++) {
		g_autofree char *text = g_strdup_printf("[export c]\nformat = ipfix\ntransport = udp\ndestination = %s\n",
							good[i].text);
		g_test_message("destination = %s", good[i].text);
		struct ctflowd_config *config = load_ok(text);
		const struct export_config *e = export_at(config, 0);
		g_assert_cmpstr(e->host, ==, good[i].host);
		g_assert_cmpstr(e->port, ==, good[i].port);
		g_assert_null(e->path);
		if (good[i].printed) {
			g_autofree char *printed = config_to_string(config);
			g_autofree char *line = g_strdup_printf("\ndestination = %s\n", good[i].printed);
			g_assert_nonnull(strstr(printed, line));
		}
		assert_round_trip(config);
		config_free(config);
	}

	static const char *const bad[] = {
		"::1:4739",            /* IPv6 without brackets */
		"2001:db8::1",
		"127.0.0.1",           /* no port */
		"127.0.0.1:",
		":4739",               /* no host */
		"127.0.0.1:0",         /* port out of range */
		"127.0.0.1:65536",
		"127.0.0.1:-1",
		"127.0.0.1:+80",
		"127.0.0.1:47x",
		"127.0.0.1:ipfix",     /* a number, not a service name */
		"300.1.1.1:4739",      /* not an IPv4 address */
		"1.2.3:4739",
		"[::1]4739",
		"[::1]",
		"[::1]:",
		"[zz::1]:4739",
		"[127.0.0.1]:4739",
		"[fe80::1%]:4739",
		"host name:4739",
		"-host:4739",
		"",
	};
	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autofree char *text = g_strdup_printf("[export c]\nformat = ipfix\ntransport = tcp\ndestination = %s\n",
							bad[i]);
		g_autofree char *expected = g_strdup_printf(
			ORIGIN ":4: [export c] destination: expected HOST:PORT with a port from 1 to 65535, "
			"an IPv6 address in brackets as in [::1]:4739, got \"%s\"", bad[i]);
		g_test_message("destination = %s", bad[i]);
		check_error(text, CONFIG_ERROR_VALUE, expected, NULL);
	}
}

static void test_transport_rules(void)
{
	struct ctflowd_config *config;
	const struct export_config *e;

	/* A path alone means a file. */
	config = load_ok("[export f]\nformat = json\npath = /tmp/flows.json\n");
	e = export_at(config, 0);
	g_assert_cmpint(e->transport, ==, EXPORT_TRANSPORT_FILE);
	g_assert_cmpstr(e->path, ==, "/tmp/flows.json");
	g_assert_cmpuint(e->mtu, ==, 65000);
	config_free(config);

	/* JSON goes over udp (a datagram per message) and tcp too. */
	config = load_ok("[export u]\nformat = json\ntransport = udp\ndestination = 127.0.0.1:5140\n"
			 "[export t]\nformat = json\ntransport = tcp\ndestination = 127.0.0.1:5141\n"
			 "[export i]\nformat = ipfix\ntransport = stdout\n");
	g_assert_cmpint(export_at(config, 0)->transport, ==, EXPORT_TRANSPORT_UDP);
	g_assert_cmpint(export_at(config, 0)->format, ==, EXPORT_FORMAT_JSON);
	/* 0: taken from the route to the collector (mtu = auto) */
	g_assert_cmpuint(export_at(config, 0)->mtu, ==, 0);
	g_assert_cmpint(export_at(config, 1)->transport, ==, EXPORT_TRANSPORT_TCP);
	g_assert_cmpuint(export_at(config, 1)->mtu, ==, 65000);
	g_assert_cmpint(export_at(config, 2)->transport, ==, EXPORT_TRANSPORT_STDOUT);
	g_assert_cmpint(export_at(config, 2)->format, ==, EXPORT_FORMAT_IPFIX);
	config_free(config);

	/* Keywords in any case. */
	config = load_ok("[export u]\nformat = IPFIX\ntransport = Udp\ndestination = 127.0.0.1:4739\n");
	g_assert_cmpint(export_at(config, 0)->format, ==, EXPORT_FORMAT_IPFIX);
	g_assert_cmpint(export_at(config, 0)->transport, ==, EXPORT_TRANSPORT_UDP);
	config_free(config);

	check_error("[export c]\nformat = ipfix\ntransport = udpp\n", CONFIG_ERROR_VALUE,
		    ORIGIN ":3: [export c] transport: expected one of udp, tcp, file, stdout, local, got \"udpp\"", NULL);
	check_error("[export c]\nformat = netflow\ntransport = stdout\n", CONFIG_ERROR_VALUE,
		    ORIGIN ":2: [export c] format: expected one of ipfix, json, netflow9, netflow5, syslog, got \"netflow\"", NULL);

	/* Missing keys are reported on the section's line. */
	check_error("# comment\n[export c]\ntransport = stdout\n", CONFIG_ERROR_MISSING,
		    ORIGIN ":2: [export c] format: missing; expected one of ipfix, json, netflow9, netflow5, syslog", NULL);
	check_error("\n\n[export c]\nformat = ipfix\ndestination = 127.0.0.1:4739\n", CONFIG_ERROR_MISSING,
		    ORIGIN ":3: [export c] transport: missing; expected one of udp, tcp, file, stdout, local", NULL);
	check_error("[export c]\nformat = ipfix\ntransport = udp\n", CONFIG_ERROR_MISSING,
		    ORIGIN ":1: [export c] destination: missing; transport udp needs HOST:PORT", NULL);
	check_error("[export c]\nformat = ipfix\ntransport = tcp\n", CONFIG_ERROR_MISSING,
		    ORIGIN ":1: [export c] destination: missing; transport tcp needs HOST:PORT", NULL);
	check_error("[export c]\nformat = ipfix\ntransport = file\n", CONFIG_ERROR_MISSING,
		    ORIGIN ":1: [export c] path: missing; transport file needs a path", NULL);

	/* Keys of another transport are an error, not ignored. */
	check_error("[export c]\nformat = ipfix\npath = f\ndestination = 127.0.0.1:4739\n", CONFIG_ERROR_VALUE,
		    ORIGIN ":4: [export c] destination: not used with transport file", NULL);
	check_error("[export c]\nformat = ipfix\ntransport = udp\ndestination = 127.0.0.1:4739\npath = f\n",
		    CONFIG_ERROR_VALUE, ORIGIN ":5: [export c] path: not used with transport udp", NULL);
	check_error("[export c]\nformat = ipfix\ntransport = stdout\npath = f\n", CONFIG_ERROR_VALUE,
		    ORIGIN ":4: [export c] path: not used with transport stdout", NULL);
	check_error("[export c]\nformat = json\ntransport = stdout\ndestination = h:1\n", CONFIG_ERROR_VALUE,
		    ORIGIN ":4: [export c] destination: not used with transport stdout", NULL);
}

static void test_mtu(void)
{
	static const struct { const char *text; guint mtu; } good[] = {
		{ "512", 512 }, { "65000", 65000 }, { "1500", 1500 }, { "9000", 9000 }, { "32K", 32768 },
	};
	for (gsize i = 0; i < G_N_ELEMENTS(good); i++) {
		g_autofree char *text = udp_export_with("mtu", good[i].text);
		struct ctflowd_config *config = load_ok(text);
		g_assert_cmpuint(export_at(config, 0)->mtu, ==, good[i].mtu);
		config_free(config);
	}
	static const char *const bad[] = { "511", "65001", "65535", "64K", "0" };
	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autofree char *text = udp_export_with("mtu", bad[i]);
		g_autofree char *expected = g_strdup_printf(
			ORIGIN ":5: [export c] mtu: expected a size from 512 to 65000, got \"%s\"", bad[i]);
		check_error(text, CONFIG_ERROR_VALUE, expected, NULL);
	}
	g_autofree char *file = g_strdup_printf("[export f]\nformat = ipfix\npath = /x\nmtu = 70000\n");
	check_error(file, CONFIG_ERROR_VALUE, ORIGIN ":4: [export f] mtu: expected a size from 512 to 65000", NULL);
}

static void test_reconnect(void)
{
	g_autofree char *equal = g_strdup_printf("%s%s", "[export c]\nformat = ipfix\ntransport = tcp\n",
						 "destination = h:1\nreconnect_min = 5s\nreconnect_max = 5000ms\n");
	struct ctflowd_config *config = load_ok(equal);
	g_assert_cmpuint(export_at(config, 0)->reconnect_min_ms, ==, 5000);
	g_assert_cmpuint(export_at(config, 0)->reconnect_max_ms, ==, 5000);
	config_free(config);

	check_error("[export c]\nformat = ipfix\ntransport = tcp\ndestination = h:1\n"
		    "reconnect_min = 10s\nreconnect_max = 5s\n", CONFIG_ERROR_VALUE,
		    ORIGIN ":6: [export c] reconnect_max: expected at least reconnect_min (10s), got \"5s\"", NULL);
	/* With reconnect_max defaulted the fault lies with reconnect_min. */
	check_error("[export c]\nformat = ipfix\ntransport = tcp\ndestination = h:1\nreconnect_min = 2m\n",
		    CONFIG_ERROR_VALUE,
		    ORIGIN ":5: [export c] reconnect_min: expected at most reconnect_max (1m, the default), got \"2m\"",
		    NULL);
	check_error("[export c]\nformat = ipfix\ntransport = tcp\ndestination = h:1\nreconnect_min = 5ms\n",
		    CONFIG_ERROR_VALUE,
		    ORIGIN ":5: [export c] reconnect_min: expected a duration from 10ms to 1h, got \"5ms\"", NULL);

	g_autofree char *refresh = udp_export_with("template_refresh", "500ms");
	check_error(refresh, CONFIG_ERROR_VALUE,
		    ORIGIN ":5: [export c] template_refresh: expected a duration from 1s to 24h, got \"500ms\"", NULL);
}

static void test_paths(void)
{
	static const struct { const char *state, *path, *resolved; } cases[] = {
		{ NULL, "flows.json", DEFAULT_STATE "/flows.json" },
		{ "/srv/ct", "flows.json", "/srv/ct/flows.json" },
		{ "/srv/ct/", "sub/flows.json", "/srv/ct/sub/flows.json" },
		{ "/srv/ct", "./a/../flows.json", "/srv/ct/flows.json" },
		{ "/srv/ct", "../elsewhere/flows.json", "/srv/elsewhere/flows.json" },
		{ "/srv/ct", "/var/log/flows.json", "/var/log/flows.json" },
		{ "/srv//ct/.", "/var/log//./flows.json", "/var/log/flows.json" },
		{ "/srv//ct/.", "flows.json", "/srv/ct/flows.json" },
		{ "/srv/ct", "with space.json", "/srv/ct/with space.json" },
	};
	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *daemon = cases[i].state
			? g_strdup_printf("[daemon]\nstate_directory = %s\n", cases[i].state) : g_strdup("");
		g_autofree char *text = g_strdup_printf("%s[export f]\nformat = json\npath = %s\n", daemon, cases[i].path);
		struct ctflowd_config *config = load_ok(text);
		g_assert_cmpstr(export_at(config, 0)->path, ==, cases[i].resolved);
		g_assert_true(g_path_is_absolute(config->daemon.state_directory));
		assert_round_trip(config);
		config_free(config);
	}

	/* The state directory comes first in the code, not in the file. */
	struct ctflowd_config *config = load_ok("[export f]\nformat = json\npath = x.json\n"
						 "[daemon]\nstate_directory = /late\n");
	g_assert_cmpstr(export_at(config, 0)->path, ==, "/late/x.json");
	config_free(config);

	check_error("[daemon]\nstate_directory = var/lib\n" MINIMAL_EXPORT, CONFIG_ERROR_VALUE,
		    ORIGIN ":2: [daemon] state_directory: expected an absolute path (starting with /), got \"var/lib\"", NULL);
	check_error("[daemon]\nstate_directory =\n" MINIMAL_EXPORT, CONFIG_ERROR_VALUE,
		    ORIGIN ":2: [daemon] state_directory: expected a path, got \"\"", NULL);
	check_error("[daemon]\npid_file = ctflowd.pid\n" MINIMAL_EXPORT, CONFIG_ERROR_VALUE,
		    ORIGIN ":2: [daemon] pid_file: expected an absolute path (starting with /), got \"ctflowd.pid\"", NULL);
	check_error("[export f]\nformat = json\npath = logs/\n", CONFIG_ERROR_VALUE,
		    ORIGIN ":3: [export f] path: expected a file, not a directory, got \"logs/\"", NULL);
	check_error("[export f]\nformat = json\npath =\n", CONFIG_ERROR_VALUE,
		    ORIGIN ":3: [export f] path: expected a path, got \"\"", NULL);

	/* An empty pid_file is no pid file (what config_to_string writes). */
	config = load_ok("[daemon]\npid_file =\n" MINIMAL_EXPORT);
	g_assert_null(config->daemon.pid_file);
	config_free(config);
}

/* Values are text as GKeyFile reads it: escapes undone, blanks after the
 * value ignored, and written back so that they survive. */
static void test_text_values(void)
{
	struct ctflowd_config *config = load_ok(
		"[daemon]\n"
		"state_directory = /srv/a\\sb\\\\c \t \n"
		"[export f]\n"
		"format = json   \n"
		"path = \\sleading and trailing\\s\n"
		"[export g]\n"
		"format = json\n"
		"path = /tmp/tab\\there\\nnewline\n");
	g_assert_cmpstr(config->daemon.state_directory, ==, "/srv/a b\\c");
	g_assert_cmpint(export_at(config, 0)->format, ==, EXPORT_FORMAT_JSON);
	g_assert_cmpstr(export_at(config, 0)->path, ==, "/srv/a b\\c/ leading and trailing ");
	g_assert_cmpstr(export_at(config, 1)->path, ==, "/tmp/tab\there\nnewline");
	assert_round_trip(config);
	config_free(config);

	check_error("[daemon]\n\nstate_directory = /srv/\\q\n" MINIMAL_EXPORT, CONFIG_ERROR_VALUE,
		    ORIGIN ":3: [daemon] state_directory: expected text with no escapes but", "got \"/srv/\\q\"");
	check_error("[daemon]\nstate_directory = /srv/\xff\xfe\n" MINIMAL_EXPORT, CONFIG_ERROR_VALUE,
		    ORIGIN ":2: [daemon] state_directory: expected UTF-8 text, got \"/srv/", NULL);
	/* A control character in a bad value is shown, not printed raw. */
	check_error("[source]\nreliable = y\x01s\n" MINIMAL_EXPORT, CONFIG_ERROR_VALUE,
		    ORIGIN ":2: [source] reliable: expected yes or no, got \"y\\x01s\"", NULL);
}

static void test_layout_tolerance(void)
{
	/* No blanks, indentation, CRLF, comments between lines, blanks after a
	 * section header: all GKeyFile accepts, and the lines still count. */
	struct ctflowd_config *config = load_ok(
		"# leading comment\r\n"
		"   [source]   \r\n"
		"reliable=no\r\n"
		"\t  # indented comment\r\n"
		"  receive_buffer   =   16K\r\n"
		"[export a b]\r\n"
		"format=json\r\n"
		"transport=stdout\r\n");
	g_assert_false(config->source.reliable);
	g_assert_cmpuint(config->source.receive_buffer, ==, 16384);
	g_assert_cmpstr(export_at(config, 0)->name, ==, "a b");
	assert_round_trip(config);
	config_free(config);

	check_error("# c\r\n[source]\r\nreliable=no\r\n  receive_buffer = 16Q\r\n" MINIMAL_EXPORT,
		    CONFIG_ERROR_VALUE, ORIGIN ":4: [source] receive_buffer: expected a size", "got \"16Q\"");

	/* Blanks around an export name are not part of it. */
	config = load_ok("[export   spaced  ]\nformat = json\ntransport = stdout\n");
	g_assert_cmpstr(export_at(config, 0)->name, ==, "spaced");
	assert_round_trip(config);
	config_free(config);

	/* Exports keep file order. */
	config = load_ok("[export z]\nformat = json\ntransport = stdout\n"
			 "[daemon]\n"
			 "[export a]\nformat = json\ntransport = stdout\n"
			 "[export m]\nformat = ipfix\ntransport = stdout\n");
	g_assert_cmpuint(config->exports->len, ==, 3);
	g_assert_cmpstr(export_at(config, 0)->name, ==, "z");
	g_assert_cmpstr(export_at(config, 1)->name, ==, "a");
	g_assert_cmpstr(export_at(config, 2)->name, ==, "m");
	config_free(config);
}

/* The example of the brief, verbatim. */
static void test_error_message_form(void)
{
	g_autoptr(GError) error = NULL;
	const char *text =
		"# ctflowd.conf\n"                    /* 1 */
		"\n"
		"[daemon]\n"                          /* 3 */
		"stats_interval = 60s\n"
		"\n"
		"[source]\n"                          /* 6 */
		"reliable = yes\n"
		"receive_buffer = 8M\n"
		"\n"
		"[export collector]\n"                /* 10 */
		"format = ipfix\n"
		"transport = udpp\n"                  /* 12 */
		"destination = 127.0.0.1:4739\n";
	struct ctflowd_config *config = config_load_data(text, "/etc/ctflowd/ctflowd.conf", &error);

	g_assert_null(config);
	g_assert_error(error, CONFIG_ERROR, CONFIG_ERROR_VALUE);
	g_assert_cmpstr(error->message, ==,
			"/etc/ctflowd/ctflowd.conf:12: [export collector] transport: "
			"expected one of udp, tcp, file, stdout, local, got \"udpp\"");
}

static void test_syntax_errors(void)
{
	check_error("[daemon]\nstats_interval = 1s\nnot a key value pair\n" MINIMAL_EXPORT, CONFIG_ERROR_SYNTAX,
		    ORIGIN ":3: syntax error: ", NULL);
	check_error("# a comment\nstats_interval = 1s\n[daemon]\n" MINIMAL_EXPORT, CONFIG_ERROR_SYNTAX,
		    ORIGIN ":2: syntax error: ", NULL);
	check_error(MINIMAL_EXPORT "\n[daemon\n", CONFIG_ERROR_SYNTAX, ORIGIN ":5: syntax error: ", NULL);
	check_error(MINIMAL_EXPORT "[daemon] trailing\n", CONFIG_ERROR_SYNTAX, ORIGIN ":4: syntax error: ", NULL);
	check_error(MINIMAL_EXPORT "[]\n", CONFIG_ERROR_SYNTAX, ORIGIN ":4: syntax error: ", NULL);
	check_error(MINIMAL_EXPORT "= value\n", CONFIG_ERROR_SYNTAX, ORIGIN ":4: syntax error: ", NULL);
	check_error(MINIMAL_EXPORT "; a semicolon is not a comment to GKeyFile\n", CONFIG_ERROR_SYNTAX,
		    ORIGIN ":4: syntax error: ", NULL);
}

static void test_repeats(void)
{
	/* GKeyFile would keep the last silently. */
	check_error("[source]\nreliable = yes\nreceive_buffer = 8M\nreliable = no\n" MINIMAL_EXPORT,
		    CONFIG_ERROR_SYNTAX, ORIGIN ":4: [source] reliable: given twice (first on line 2)", NULL);
	check_error(MINIMAL_EXPORT "format = ipfix\n", CONFIG_ERROR_SYNTAX,
		    ORIGIN ":4: [export out] format: given twice (first on line 2)", NULL);
	/* Blanks around "=" do not make it another key. */
	check_error("[source]\nreliable=yes\nreliable   =   no\n" MINIMAL_EXPORT, CONFIG_ERROR_SYNTAX,
		    ORIGIN ":3: [source] reliable: given twice (first on line 2)", NULL);
	/* GKeyFile would merge the two sections. */
	check_error("[daemon]\nspool_max = 1G\n" MINIMAL_EXPORT "[daemon]\nstats_interval = 0\n",
		    CONFIG_ERROR_SYNTAX, ORIGIN ":6: section [daemon] given twice (first on line 1)", NULL);
	check_error(MINIMAL_EXPORT MINIMAL_EXPORT, CONFIG_ERROR_SYNTAX,
		    ORIGIN ":4: section [export out] given twice (first on line 1)", NULL);
	/* Same name once blanks are trimmed. */
	check_error(MINIMAL_EXPORT "[export  out ]\nformat = ipfix\ntransport = stdout\n", CONFIG_ERROR_SYNTAX,
		    ORIGIN ":4: [export  out ]: export name \"out\" given twice (first on line 1)", NULL);
	/* The same key in two sections is no repeat. */
	struct ctflowd_config *config = load_ok("[export a]\nformat = json\ntransport = stdout\n"
						 "[export b]\nformat = json\ntransport = stdout\n");
	g_assert_cmpuint(config->exports->len, ==, 2);
	config_free(config);
}

static void test_unknown(void)
{
	check_error(MINIMAL_EXPORT "\n[collector]\nformat = ipfix\n", CONFIG_ERROR_UNKNOWN,
		    ORIGIN ":5: unknown section [collector]; expected [daemon], [source] or [export NAME]", NULL);
	check_error("[Daemon]\n" MINIMAL_EXPORT, CONFIG_ERROR_UNKNOWN, ORIGIN ":1: unknown section [Daemon]", NULL);
	check_error("[exporter]\n" MINIMAL_EXPORT, CONFIG_ERROR_UNKNOWN, ORIGIN ":1: unknown section [exporter]", NULL);
	check_error("[export-x]\n" MINIMAL_EXPORT, CONFIG_ERROR_UNKNOWN, ORIGIN ":1: unknown section [export-x]", NULL);
	check_error("[daemon]\nstate_dir = /x\n" MINIMAL_EXPORT, CONFIG_ERROR_UNKNOWN,
		    ORIGIN ":2: [daemon] state_dir: unknown key; [daemon] takes state_directory, pid_file, "
		    "stats_interval, spool_max", NULL);
	check_error("[source]\nreliable = yes\nrecieve_buffer = 8M\n" MINIMAL_EXPORT, CONFIG_ERROR_UNKNOWN,
		    ORIGIN ":3: [source] recieve_buffer: unknown key; [source] takes netns, receive_buffer", NULL);
	check_error(MINIMAL_EXPORT "Format = json\n", CONFIG_ERROR_UNKNOWN,
		    ORIGIN ":4: [export out] Format: unknown key; [export NAME] takes format, transport", NULL);
	/* A localised key is another key to GKeyFile, and unknown here. */
	check_error(MINIMAL_EXPORT "format[de] = json\n", CONFIG_ERROR_UNKNOWN,
		    ORIGIN ":4: [export out] format[de]: unknown key", NULL);
	/* A key of one section in another. */
	check_error("[daemon]\nreliable = yes\n" MINIMAL_EXPORT, CONFIG_ERROR_UNKNOWN,
		    ORIGIN ":2: [daemon] reliable: unknown key", NULL);
	/* A misspelt key is reported as such, not as the required key missing. */
	check_error("[export c]\nfromat = json\ntransport = stdout\n", CONFIG_ERROR_UNKNOWN,
		    ORIGIN ":2: [export c] fromat: unknown key", NULL);
}

static void test_missing(void)
{
	check_error("", CONFIG_ERROR_MISSING,
		    ORIGIN ": no [export NAME] section; at least one destination is required", NULL);
	check_error("# only comments\n\n", CONFIG_ERROR_MISSING, ORIGIN ": no [export NAME] section", NULL);
	check_error("[daemon]\n[source]\nreliable = yes\n", CONFIG_ERROR_MISSING, ORIGIN ": no [export NAME] section",
		    NULL);
	check_error("[export]\nformat = json\ntransport = stdout\n", CONFIG_ERROR_MISSING,
		    ORIGIN ":1: [export]: the section needs a name, as in [export collector]", NULL);
	check_error("[export   ]\nformat = json\ntransport = stdout\n", CONFIG_ERROR_MISSING,
		    ORIGIN ":1: [export   ]: the section needs a name", NULL);
}

/* Loads @text expecting failure with @code and exactly the problems in
 * @expected (NULL-terminated), one a line, each after "test.conf". */
static void check_errors(const char *text, int code, const char *const *expected)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GString) want = g_string_new(NULL);
	struct ctflowd_config *config = config_load_data(text, ORIGIN, &error);

	g_assert_null(config);
	for (int i = 0; expected[i]; i++)
		g_string_append_printf(want, "%s" ORIGIN "%s", i ? "\n" : "", expected[i]);
	g_assert_error(error, CONFIG_ERROR, code);
	g_assert_cmpstr(error->message, ==, want->str);
}

/* One run shows every problem: in file order, what is left out after what
 * is written wrong, the code that of the first. */
static void test_several_errors(void)
{
	/* A bad value and no export: both, the value first. */
	check_errors("[source]\nreliable = maybe\n", CONFIG_ERROR_VALUE, (const char *const[]){
		":2: [source] reliable: expected yes or no, got \"maybe\"",
		": no [export NAME] section; at least one destination is required",
		NULL });

	/* Two bad values in two sections: file order, not the order they are
	 * read in ([daemon] is read first wherever it is). */
	check_errors("[source]\nreceive_buffer = 2G\n" MINIMAL_EXPORT "[daemon]\nstats_interval = 500ms\n",
		     CONFIG_ERROR_VALUE, (const char *const[]){
		":2: [source] receive_buffer: expected a size from 4K to 1G, got \"2G\"",
		":7: [daemon] stats_interval: expected 0 (off) or a duration from 1s to 24h, got \"500ms\"",
		NULL });

	/* Two in one section, written in the opposite order of the table. */
	check_errors(MINIMAL_EXPORT "sync = perhaps\nflush_interval = 2h\n", CONFIG_ERROR_VALUE,
		     (const char *const[]){
		":4: [export out] sync: expected yes or no, got \"perhaps\"",
		":5: [export out] flush_interval: expected a duration from 10ms to 1h, got \"2h\"",
		NULL });

	/* A missing key comes after a bad value that follows its section. */
	check_errors("[export a]\ntransport = udp\ndestination = h:1\n"
		     "[export b]\nformat = json\ntransport = stdout\nobservation_domain = -1\n",
		     CONFIG_ERROR_VALUE, (const char *const[]){
		":7: [export b] observation_domain: expected a whole number from 0 to 4294967295, got \"-1\"",
		":1: [export a] format: missing; expected one of ipfix, json, netflow9, netflow5, syslog",
		NULL });

	/* The code is the first problem's: an unknown section before a value. */
	check_errors("[collector]\nhost = x\n[source]\nevents = new\n" MINIMAL_EXPORT, CONFIG_ERROR_UNKNOWN,
		     (const char *const[]){
		":1: unknown section [collector]; expected [daemon], [source] or [export NAME]",
		":4: [source] events: expected destroy or destroy,new (destroy events carry the counters), "
		"got \"new\"",
		NULL });

	/* A syntax error does not stop the reading: the lines after it are
	 * checked as well. */
	check_errors("[source]\nreceive_buffer 8M\nreliable = maybe\n" MINIMAL_EXPORT "[daemon\n",
		     CONFIG_ERROR_SYNTAX, (const char *const[]){
		":2: syntax error: expected KEY = VALUE, a [section] or a # comment, got \"receive_buffer 8M\"",
		":3: [source] reliable: expected yes or no, got \"maybe\"",
		":7: syntax error: expected \"]\" to end the section header, got \"[daemon\"",
		NULL });

	/* Keys under a header that cannot be read belong to no section: they
	 * are not blamed on the section before it. */
	check_errors(MINIMAL_EXPORT "[source] x\nreliable = maybe\nfoo = 1\n", CONFIG_ERROR_SYNTAX,
		     (const char *const[]){
		":4: syntax error: expected nothing after the section header's \"]\", got \"[source] x\"",
		NULL });

	/* A repeated key: the value checked is that of the line the message
	 * names, the first. */
	check_errors("[source]\nreliable = maybe\nreliable = yes\n" MINIMAL_EXPORT, CONFIG_ERROR_VALUE,
		     (const char *const[]){
		":2: [source] reliable: expected yes or no, got \"maybe\"",
		":3: [source] reliable: given twice (first on line 2)",
		NULL });

	/* A key the transport does not use is reported as such, once, whatever
	 * its value. */
	check_errors("[export c]\nformat = ipfix\ntransport = stdout\npath = logs/\ndestination = x\n",
		     CONFIG_ERROR_VALUE, (const char *const[]){
		":4: [export c] path: not used with transport stdout (a path is for transport file)",
		":5: [export c] destination: not used with transport stdout (a destination is for udp or tcp)",
		NULL });

	/* A transport that is not one leaves open which keys belong to it; the
	 * others are still checked. */
	check_errors("[export c]\nformat = ipfix\ntransport = udpp\npath = f\nmtu = 1\n", CONFIG_ERROR_VALUE,
		     (const char *const[]){
		":3: [export c] transport: expected one of udp, tcp, file, stdout, local, got \"udpp\"",
		":5: [export c] mtu: expected a size from 512 to 65000, got \"1\"",
		NULL });

	/* Every missing key of every export, in file order, then no export
	 * named at all. */
	check_errors("[export a]\n[export b]\ntransport = file\n[export]\nformat = json\ntransport = stdout\n",
		     CONFIG_ERROR_MISSING, (const char *const[]){
		":4: [export]: the section needs a name, as in [export collector]",
		":1: [export a] format: missing; expected one of ipfix, json, netflow9, netflow5, syslog",
		":1: [export a] transport: missing; expected one of udp, tcp, file, stdout, local "
		"(file is implied only by a path)",
		":2: [export b] format: missing; expected one of ipfix, json, netflow9, netflow5, syslog",
		":2: [export b] path: missing; transport file needs a path",
		NULL });
}

/* The tables' own account of the keys: each documented in the shipped
 * file, and each default the one a file without the key gets. */
static void test_describe_keys(void)
{
	g_autofree char *described = config_describe_keys();
	g_autofree char *path = shipped_config_path();
	g_autofree char *shipped = NULL;
	g_autoptr(GError) error = NULL;
	guint keys = 0;

	g_file_get_contents(path, &shipped, NULL, &error);
	g_assert_no_error(error);

	g_auto(GStrv) lines = g_strsplit(described, "\n", -1);
	g_autoptr(GString) settings = g_string_new(NULL);
	gboolean in_export = FALSE;
	for (int i = 0; lines[i]; i++) {
		const char *line = lines[i];
		if (g_str_has_prefix(line, "# ")) {
			g_autofree char *key = g_strndup(line + 2, strcspn(line + 2, ":"));
			g_autofree char *documented = g_strdup_printf("%s =", key);
			g_autofree char *listed = g_strdup_printf("#   %s ", key);
			/* A help text, and a word on what the key takes. */
			g_assert_cmpuint(strlen(line), >, strlen(key) + 12);
			g_assert_nonnull(strstr(line, ". Takes "));
			if (!strstr(shipped, documented) && !strstr(shipped, listed))
				g_error("etc/ctflowd.conf does not document %s", key);
			keys++;
			continue;
		}
		in_export = in_export || g_str_has_prefix(line, "[export");
		if (!in_export && line[0] != '#')
			g_string_append_printf(settings, "%s\n", line);
	}
	g_assert_cmpuint(keys, >=, 25);

	/* [daemon] and [source] with every default written out load to what
	 * nothing written gives. */
	g_string_append(settings, MINIMAL_EXPORT);
	struct ctflowd_config *written = load_ok(settings->str);
	struct ctflowd_config *defaults = load_ok(MINIMAL_EXPORT);
	g_autofree char *a = config_to_string(written);
	g_autofree char *b = config_to_string(defaults);
	g_assert_cmpstr(a, ==, b);
	config_free(written);
	config_free(defaults);

	g_assert_nonnull(strstr(described, "#format = (required)\n"));
	g_assert_nonnull(strstr(described, "\nguard = 90%\n"));
}

static void test_load_file(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *dir = g_dir_make_tmp("test_config-XXXXXX", &error);
	g_assert_no_error(error);

	/* Missing file. */
	g_autofree char *missing = g_build_filename(dir, "missing.conf", NULL);
	g_assert_null(config_load(missing, &error));
	g_assert_error(error, CONFIG_ERROR, CONFIG_ERROR_IO);
	g_autofree char *expected = g_strdup_printf("%s: cannot read: %s", missing, g_strerror(ENOENT));
	g_assert_cmpstr(error->message, ==, expected);
	g_clear_error(&error);

	/* A directory. */
	g_assert_null(config_load(dir, &error));
	g_assert_error(error, CONFIG_ERROR, CONFIG_ERROR_IO);
	g_assert_true(g_str_has_prefix(error->message, dir));
	g_assert_nonnull(strstr(error->message, ": cannot read: "));
	g_clear_error(&error);

	/* A good file: its name is kept, and errors name it. */
	g_autofree char *good = g_build_filename(dir, "good.conf", NULL);
	g_file_set_contents(good, "[export f]\nformat = ipfix\npath = f.ipfix\n", -1, &error);
	g_assert_no_error(error);
	struct ctflowd_config *config = config_load(good, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(config->path, ==, good);
	config_free(config);

	g_autofree char *bad = g_build_filename(dir, "bad.conf", NULL);
	g_file_set_contents(bad, "[export f]\nformat = ipfix\npath = f.ipfix\nsync = sometimes\n", -1, &error);
	g_assert_no_error(error);
	g_assert_null(config_load(bad, &error));
	g_autofree char *prefix = g_strdup_printf("%s:4: [export f] sync: ", bad);
	g_assert_error(error, CONFIG_ERROR, CONFIG_ERROR_VALUE);
	g_assert_true(g_str_has_prefix(error->message, prefix));
	g_clear_error(&error);

	/* A NUL byte would silently end the text GKeyFile sees. */
	g_autofree char *binary = g_build_filename(dir, "binary.conf", NULL);
	static const char with_nul[] = "[export f]\nformat = ipfix\n\0path = f\n";
	g_file_set_contents(binary, with_nul, sizeof with_nul - 1, &error);
	g_assert_no_error(error);
	g_assert_null(config_load(binary, &error));
	g_assert_error(error, CONFIG_ERROR, CONFIG_ERROR_SYNTAX);
	g_autofree char *nul_prefix = g_strdup_printf("%s:3: syntax error: ", binary);
	g_assert_true(g_str_has_prefix(error->message, nul_prefix));
	g_clear_error(&error);

	/* Something far too big to be a configuration file. */
	g_autofree char *big = g_build_filename(dir, "big.conf", NULL);
	g_autofree char *filler = g_strnfill(2 * 1024 * 1024, '#');
	g_file_set_contents(big, filler, -1, &error);
	g_assert_no_error(error);
	g_assert_null(config_load(big, &error));
	g_assert_error(error, CONFIG_ERROR, CONFIG_ERROR_IO);
	g_clear_error(&error);

	g_assert_cmpint(g_remove(big), ==, 0);
	g_assert_cmpint(g_remove(binary), ==, 0);
	g_assert_cmpint(g_remove(bad), ==, 0);
	g_assert_cmpint(g_remove(good), ==, 0);
	g_assert_cmpint(g_rmdir(dir), ==, 0);
}

static void test_round_trip(void)
{
	struct ctflowd_config *config = load_ok(
		"[daemon]\nstate_directory = /srv\npid_file = /run/c.pid\nstats_interval = 1500ms\nspool_max = 3G\n"
		"[source]\nnetns = /proc/1/ns/net\nreceive_buffer = 12345\nreliable = off\nevents = new,destroy\n"
		"manage_sysctls = no\ndedup_window = 4096\nresync_delay = 0\n"
		"[export u]\nformat = ipfix\ntransport = udp\ndestination = [2001:db8::1]:4739\n"
		"template_refresh = 90m\nobservation_domain = 0\nmtu = 512\n"
		"[export t]\nformat = json\ntransport = tcp\ndestination = h.example:1\nreconnect_min = 10ms\n"
		"reconnect_max = 1h\nflush_interval = 10ms\n"
		"[export f]\nformat = ipfix\npath = rel/f.ipfix\nsync = 1\n"
		"[export s]\nformat = json\ntransport = stdout\n");

	g_autofree char *printed = config_to_string(config);
	/* What -n shows: every key, in the file's syntax. */
	static const char *const lines[] = {
		"[daemon]\n", "\nstate_directory = /srv\n", "\npid_file = /run/c.pid\n",
		"\nstats_interval = 1500ms\n", "\nspool_max = 3221225472\n",
		"\n[source]\n", "\nnetns = /proc/1/ns/net\n", "\nreceive_buffer = 12345\n",
		"\nreliable = no\n", "\nevents = destroy,new\n", "\nmanage_sysctls = no\n",
		"\ndedup_window = 4096\n", "\nresync_delay = 0s\n",
		"\n[export u]\n", "\ndestination = [2001:db8::1]:4739\n", "\ntemplate_refresh = 5400s\n",
		"\nobservation_domain = 0\n", "\nmtu = 512\n",
		"\n[export t]\n", "\nreconnect_min = 10ms\n", "\nreconnect_max = 3600s\n",
		"\n[export f]\n", "\npath = /srv/rel/f.ipfix\n", "\nsync = yes\n",
		"\n[export s]\n", "\ntransport = stdout\n",
	};
	for (gsize i = 0; i < G_N_ELEMENTS(lines); i++)
		if (!strstr(printed, lines[i]))
			g_error("config_to_string() lacks \"%s\":\n%s", g_strstrip(g_strdup(lines[i])), printed);
	/* A key foreign to the transport is left out rather than printed empty. */
	g_autofree char *stdout_part = g_strdup(strstr(printed, "[export s]"));
	g_assert_null(strstr(stdout_part, "destination"));
	g_assert_null(strstr(stdout_part, "path"));

	assert_round_trip(config);
	config_free(config);

	/* Defaults are printed too: every key of every section. */
	config = load_ok(MINIMAL_EXPORT);
	g_free(printed);
	printed = config_to_string(config);
	static const char *const keys[] = {
		"state_directory", "pid_file", "stats_interval", "spool_max", "netns", "receive_buffer",
		"reliable", "events", "manage_sysctls", "dedup_window", "resync_delay", "format",
		"transport", "flush_interval", "template_refresh", "mtu", "observation_domain",
		"reconnect_min", "reconnect_max", "sync",
	};
	for (gsize i = 0; i < G_N_ELEMENTS(keys); i++) {
		g_autofree char *key = g_strdup_printf("\n%s =", keys[i]);
		g_assert_nonnull(strstr(printed, key));
	}
	assert_round_trip(config);
	config_free(config);
}

/* The "# expect: TEXT" lines a bad sample starts with, one per problem. */
static GPtrArray *sample_expectations(const char *text)
{
	GPtrArray *expect = g_ptr_array_new_with_free_func(g_free);
	const char *line = text;

	while (g_str_has_prefix(line, "# expect: ")) {
		size_t len = strcspn(line + 10, "\n");
		g_ptr_array_add(expect, g_strndup(line + 10, len));
		line += 10 + len;
		if (*line == '\n')
			line++;
	}
	return expect;
}

/* tests/config: each bad-*.conf starts with one "# expect: TEXT" line per
 * problem and fails with a message of that many lines, each starting with
 * its own path and containing its TEXT, in order; each good-*.conf loads and
 * prints back to itself. */
static void test_samples(void)
{
	g_autofree char *dir = g_test_build_filename(G_TEST_DIST, "config", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(GDir) listing = g_dir_open(dir, 0, &error);
	guint good = 0, bad = 0, several = 0;
	const char *name;

	g_assert_no_error(error);
	while ((name = g_dir_read_name(listing))) {
		if (!g_str_has_suffix(name, ".conf"))
			continue;
		g_autofree char *path = g_build_filename(dir, name, NULL);
		g_test_message("%s", path);
		struct ctflowd_config *config = config_load(path, &error);

		if (g_str_has_prefix(name, "good-")) {
			g_assert_no_error(error);
			assert_round_trip(config);
			config_free(config);
			good++;
		} else if (g_str_has_prefix(name, "bad-")) {
			g_autofree char *text = NULL;
			g_file_get_contents(path, &text, NULL, NULL);
			g_assert_nonnull(text);
			g_autoptr(GPtrArray) expect = sample_expectations(text);
			g_assert_cmpuint(expect->len, >, 0);
			if (config)
				g_error("%s loaded", path);
			g_assert_nonnull(error);
			g_auto(GStrv) lines = g_strsplit(error->message, "\n", -1);
			if (g_strv_length(lines) != expect->len)
				g_error("%s: %u problems expected, got:\n%s", name, expect->len, error->message);
			for (guint i = 0; i < expect->len; i++) {
				const char *want = g_ptr_array_index(expect, i);
				g_assert_cmpstr(want, !=, "");
				g_assert_true(g_str_has_prefix(lines[i], path));
				if (!strstr(lines[i], want))
					g_error("%s: line %u \"%s\" lacks \"%s\"", name, i + 1, lines[i], want);
			}
			several += expect->len > 1;
			g_clear_error(&error);
			bad++;
		}
	}
	g_assert_cmpuint(good, >=, 3);
	g_assert_cmpuint(bad, >=, 20);
	g_assert_cmpuint(several, >=, 5);
}

static void test_names(void)
{
	g_assert_cmpstr(export_format_name(EXPORT_FORMAT_IPFIX), ==, "ipfix");
	g_assert_cmpstr(export_format_name(EXPORT_FORMAT_JSON), ==, "json");
	g_assert_cmpstr(export_format_name((enum export_format)42), ==, "unknown");
	g_assert_cmpstr(export_transport_name(EXPORT_TRANSPORT_UDP), ==, "udp");
	g_assert_cmpstr(export_transport_name(EXPORT_TRANSPORT_TCP), ==, "tcp");
	g_assert_cmpstr(export_transport_name(EXPORT_TRANSPORT_FILE), ==, "file");
	g_assert_cmpstr(export_transport_name(EXPORT_TRANSPORT_STDOUT), ==, "stdout");
	g_assert_cmpstr(export_transport_name((enum export_transport)42), ==, "unknown");
	g_assert_cmpuint(CONFIG_ERROR, !=, 0);
	g_assert_cmpuint(CONFIG_ERROR, ==, config_error_quark());
	config_free(NULL);
}

static void test_netflow(void)
{
	struct ctflowd_config *config = load_ok("[export n]\nformat = netflow9\ntransport = udp\n"
						"destination = 127.0.0.1:2055\n");
	const struct export_config *e = export_at(config, 0);
	g_assert_cmpint(e->format, ==, EXPORT_FORMAT_NETFLOW9);
	g_assert_cmpuint(e->template_packets, ==, 20);
	g_assert_cmpint(e->netflow_times, ==, NETFLOW_TIMES_ABSOLUTE);
	g_assert_cmpuint(e->source_port, ==, 0);
	assert_round_trip(config);
	config_free(config);

	check_error("[export n]\nformat = netflow5\ntransport = udp\ndestination = 127.0.0.1:2055\n"
		    "uniflow = yes\n", CONFIG_ERROR_VALUE,
		    ORIGIN ":5: [export n] uniflow: is implied by format netflow5", NULL);
	check_error("[export n]\nformat = netflow5\ntransport = udp\ndestination = 127.0.0.1:2055\n"
		    "counters = both\n", CONFIG_ERROR_VALUE,
		    ORIGIN ":5: [export n] counters: format netflow5 carries deltas only", NULL);
	check_error("[export n]\nformat = netflow9\ntransport = stdout\nsource_port = 9\n",
		    CONFIG_ERROR_VALUE, ORIGIN ":4: [export n] source_port: is for transport udp", NULL);
	check_error("[export n]\nformat = netflow9\ntransport = udp\ndestination = 127.0.0.1:2055\n"
		    "source_port = 65536\n", CONFIG_ERROR_VALUE,
		    ORIGIN ":5: [export n] source_port: expected a whole number from 0 to 65535", NULL);
	check_error("[export n]\nformat = netflow9\ntransport = udp\ndestination = 127.0.0.1:2055\n"
		    "netflow_times = relative\n", CONFIG_ERROR_VALUE,
		    ORIGIN ":5: [export n] netflow_times: expected absolute or uptime", NULL);
	check_error("[export n]\nformat = netflow9\ntransport = udp\ndestination = 127.0.0.1:2055\n"
		    "statistics = 60s\n", CONFIG_ERROR_VALUE,
		    ORIGIN ":5: [export n] statistics: is for formats ipfix and json", NULL);
	check_error("[export n]\nformat = netflow5\ntransport = udp\ndestination = 127.0.0.1:2055\n"
		    "zone_vrf = 1=2\n", CONFIG_ERROR_VALUE,
		    ORIGIN ":5: [export n] zone_vrf: is not for format netflow5", NULL);
	check_error("[export n]\nformat = netflow5\ntransport = udp\ndestination = 127.0.0.1:2055\n"
		    "engine_id = 256\n", CONFIG_ERROR_VALUE,
		    ORIGIN ":5: [export n] engine_id: expected a whole number from 0 to 255", NULL);
	check_error("[source]\nevents = destroy,new\n[export n]\nformat = netflow5\ntransport = udp\n"
		    "destination = 127.0.0.1:2055\nrecords = nat-events\n", CONFIG_ERROR_VALUE,
		    ORIGIN ":7: [export n] records: format netflow5 cannot carry NAT session events",
		    NULL);
	config = load_ok("[source]\nevents = destroy,new\n[export n]\nformat = netflow9\n"
			 "transport = udp\ndestination = 127.0.0.1:2055\nrecords = both\n");
	g_assert_cmpint(export_at(config, 0)->records, ==, EXPORT_RECORDS_BOTH);
	config_free(config);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);

	g_test_add_func("/config/shipped", test_shipped);
	g_test_add_func("/config/shipped-documents-every-key", test_shipped_documents_every_key);
	g_test_add_func("/config/defaults", test_defaults);
	g_test_add_func("/config/every-key", test_every_key);
	g_test_add_func("/config/sizes", test_sizes);
	g_test_add_func("/config/durations", test_durations);
	g_test_add_func("/config/booleans", test_booleans);
	g_test_add_func("/config/counts", test_counts);
	g_test_add_func("/config/events", test_events);
	g_test_add_func("/config/netns", test_netns);
	g_test_add_func("/config/destination", test_destination);
	g_test_add_func("/config/transport-rules", test_transport_rules);
	g_test_add_func("/config/mtu", test_mtu);
	g_test_add_func("/config/reconnect", test_reconnect);
	g_test_add_func("/config/paths", test_paths);
	g_test_add_func("/config/text-values", test_text_values);
	g_test_add_func("/config/layout-tolerance", test_layout_tolerance);
	g_test_add_func("/config/error-message-form", test_error_message_form);
	g_test_add_func("/config/syntax-errors", test_syntax_errors);
	g_test_add_func("/config/repeats", test_repeats);
	g_test_add_func("/config/unknown", test_unknown);
	g_test_add_func("/config/missing", test_missing);
	g_test_add_func("/config/several-errors", test_several_errors);
	g_test_add_func("/config/describe-keys", test_describe_keys);
	g_test_add_func("/config/zone-vrf", test_zone_vrf);
	g_test_add_func("/config/uniflow", test_uniflow);
	g_test_add_func("/config/load-file", test_load_file);
	g_test_add_func("/config/round-trip", test_round_trip);
	g_test_add_func("/config/samples", test_samples);
	g_test_add_func("/config/names", test_names);
	g_test_add_func("/config/netflow", test_netflow);

	return g_test_run();
}
