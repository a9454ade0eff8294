/*
 * config.h - the configuration file (INI, read with GKeyFile) and its
 * validated, typed form.
 *
 *   [daemon]          state_directory, pid_file, stats_interval, spool_max
 *   [source]          the kernel side: netns, receive_buffer, reliable, ...
 *   [export NAME]     one section per destination: format, transport,
 *                     destination (HOST:PORT) or path, ...
 *
 * Every error names the file, the line when it can be found, the section and
 * key, and what was expected.  Nothing is silently defaulted on a bad value.
 */
#pragma once

#include <glib.h>
#include <stdint.h>

#include "config-build.h"
#include "ctflowd/spool.h"

#define CTFLOWD_DEFAULT_CONFIG SYSCONFDIR "/ctflowd/ctflowd.conf"

#define CONFIG_ERROR (config_error_quark())
GQuark config_error_quark(void);

enum config_error_code {
	CONFIG_ERROR_IO,       /* file cannot be read */
	CONFIG_ERROR_SYNTAX,   /* not a valid INI file, or a section or key given twice */
	CONFIG_ERROR_UNKNOWN,  /* unknown section or key */
	CONFIG_ERROR_VALUE,    /* a value of the wrong form or out of range */
	CONFIG_ERROR_MISSING,  /* a required key or section is absent */
};

enum export_format {
	EXPORT_FORMAT_IPFIX,
	EXPORT_FORMAT_JSON,
	EXPORT_FORMAT_NETFLOW9,    /* RFC 3954 */
	EXPORT_FORMAT_NETFLOW5,
	EXPORT_FORMAT_SYSLOG,
};

/* How a NetFlow v9 record carries a flow's start and end. */
enum netflow_times {
	NETFLOW_TIMES_ABSOLUTE,    /* flowStart/EndMilliseconds (152/153) */
	NETFLOW_TIMES_UPTIME,      /* FIRST/LAST_SWITCHED (22/21), sysUptime ms */
};

/* What an export's counters mean (records of connections with interim records). */
enum export_counters {
	EXPORT_COUNTERS_DELTA,     /* since the connection's previous record */
	EXPORT_COUNTERS_TOTAL,     /* since the connection began */
	EXPORT_COUNTERS_BOTH,
};

/* What an export sends: flow records, NAT session events, or both. */
enum export_records {
	EXPORT_RECORDS_FLOWS,
	EXPORT_RECORDS_NAT_EVENTS,
	EXPORT_RECORDS_BOTH,
};

enum export_transport {
	EXPORT_TRANSPORT_UDP,
	EXPORT_TRANSPORT_TCP,
	EXPORT_TRANSPORT_FILE,
	EXPORT_TRANSPORT_STDOUT,
	EXPORT_TRANSPORT_LOCAL,    /* the local syslog socket (a Unix datagram socket) */
};

/* syslog: where the default local socket is, what RFC 5424 allows. */
#define SYSLOG_LOCAL_PATH "/dev/log"
#define SYSLOG_HOSTNAME_MAX 255   /* RFC 5424 section 6.2.4 */
#define SYSLOG_APP_NAME_MAX 48    /* section 6.2.5 */
#define SYSLOG_SD_NAME_MAX 32     /* section 6.3.2 */

struct daemon_config {
	char *state_directory;     /* default /var/lib/ctflowd; relative export paths live here */
	char *pid_file;            /* NULL: none */
	guint stats_interval_ms;   /* 0: never log statistics periodically */
	guint64 spool_max;         /* bytes of journal (state_directory/spool) */
	enum spool_sync spool_sync;
	guint handover_timeout_ms; /* a stopped ctflowd keeps its event socket this long
				    * for a successor (0: closes it) */
};

struct source_config {
	char *netns;               /* NULL: the daemon's own network namespace */
	guint64 receive_buffer;    /* bytes, set with SO_RCVBUFFORCE */
	gboolean reliable;         /* NETLINK_BROADCAST_ERROR */
	gboolean subscribe_new;    /* events = destroy,new */
	gboolean manage_sysctls;   /* set acct/timestamp/events instead of refusing */
	guint dedup_window;        /* recent DESTROY keys remembered */
	guint resync_delay_ms;     /* quiet time after an overrun before the table dump */
	guint guard_percent;       /* reliable delivery off past this % of nf_conntrack_max */
	guint64 guard_entries;     /* ... or past this many entries (wins); both 0: off */
	guint active_timeout_ms;   /* interim records this long after a connection's
				    * previous record; 0: off */
	guint walk_interval_ms;    /* table walks this often; 0: a fifth of the
				    * active timeout, from 1 s to 60 s */
	/* Only connections that match are exported (ct_filter.h); each is the
	 * canonical text of its key, NULL: not filtered on that. */
	char *filter_protocols;
	char *filter_addresses;
	char *filter_zones;
	char *filter_mark;
	guint nat_refresh_ms;      /* NAT sessions alive this long since their last create
				    * are logged again (a refresh); 0: off */
};

struct export_config {
	char *name;                /* NAME of [export NAME] */
	enum export_format format;
	enum export_transport transport;
	char *host;                /* udp, tcp */
	char *port;
	char *path;                /* file: absolute (resolved against state_directory) */
	guint flush_interval_ms;   /* a partly filled message waits at most this long */
	guint template_refresh_ms; /* IPFIX over UDP: templates re-sent this often */
	guint mtu;                 /* largest message; 0 (udp only, the default there):
				    * the route's MTU to the collector, at most 1500 */
	guint32 observation_domain;
	guint statistics_ms;       /* statistics sent this often and at stop; 0: only losses */
	guint32 enterprise_number; /* IPFIX: PEN of ctflowd's own elements, 0: none sent */
	char *zone_vrf;            /* ZONE=VRF pairs (zone_vrf_parse), NULL: the zone
				    * number is the VRF id */
	guint reconnect_min_ms;    /* tcp back-off */
	guint reconnect_max_ms;
	guint ack_settle_ms;       /* tcp: an acknowledged message is delivered once
				    * the acknowledgement stood this long; 0: at once */
	gboolean sync;             /* file: fdatasync after each flush */
	gboolean uniflow;          /* IPFIX: one record per direction, not a biflow */
	enum export_counters counters;
	guint template_packets;    /* netflow9: templates again every this many packets, 0: off */
	enum netflow_times netflow_times;
	guint source_port;         /* udp: bound local port, 0: the one remembered in
				    * port_file, else the kernel picks */
	char *port_file;           /* udp: where the port the kernel picked is kept for
				    * the next start (set by the loader) */
	guint engine_type;         /* netflow5 header */
	guint engine_id;
	/* format syslog */
	guint32 syslog_facility;   /* 0..23, RFC 5424 section 6.2.1 */
	guint32 syslog_severity;   /* 0..7 */
	char *syslog_app_name;     /* APP-NAME */
	char *syslog_hostname;     /* HOSTNAME; NULL: the host's name */
	char *syslog_sd_id;        /* SD-ID of the flow's structured data, NAME@PEN */
	gboolean syslog_text;      /* also key=value text as the MSG part */
	char *failover;            /* NAME of the export that takes over while this one is
				    * down (tcp and file only), NULL: none */
	gboolean standby;          /* named by another export's failover: sends only in its
				    * place, while it is down (set by the loader) */
	gboolean marks;            /* IPFIX: conntrack mark and labels, under the PEN */
	enum export_records records;
};

struct ctflowd_config {
	char *path;                /* file it was read from, or the origin given */
	struct daemon_config daemon;
	struct source_config source;
	GPtrArray *exports;        /* struct export_config *, in file order */
};

/* One pair of an export's zone_vrf: the ingressVRFID of a zone. */
struct zone_vrf {
	guint32 vrf;
	guint16 zone;
	guint8 pad[2];
};

/**
 * zone_vrf_parse:
 * Reads "ZONE=VRF, ZONE=VRF, ..." (zones 0 to 65535, VRF ids 0 to
 * 4294967295, each zone once; empty: no pair) into a GArray of struct
 * zone_vrf sorted by zone.  NULL with @error (CONFIG_ERROR_VALUE) saying
 * which pair is wrong and why.
 */
GArray *zone_vrf_parse(const char *text, GError **error);

/**
 * zone_vrf_lookup:
 * The VRF id of @zone in @map (from zone_vrf_parse, @n pairs), or @zone
 * itself when the map does not list it.
 */
guint32 zone_vrf_lookup(const struct zone_vrf *map, guint n, guint16 zone);

/**
 * config_load:
 * Reads and validates @path.  Returns NULL and sets @error (CONFIG_ERROR) on
 * any problem.  The message has one line per problem, every problem of the
 * file, in file order (keys and sections left out come after what is
 * written wrong); each line starts with "FILE:LINE:" or "FILE:" and names
 * the section and key.  The error's code is that of the first line.
 */
struct ctflowd_config *config_load(const char *path, GError **error);

/**
 * config_load_data:
 * Like config_load() for text already in memory; @origin stands in for the
 * file name in messages.
 */
struct ctflowd_config *config_load_data(const char *data, const char *origin, GError **error);

/**
 * config_to_string:
 * The effective settings, every key with its value after defaults, in the
 * file's own syntax (what `ctflowd -n` prints).  Free with g_free().
 */
char *config_to_string(const struct ctflowd_config *config);

/**
 * config_describe_keys:
 * Every key of every section, as the tables in config.c describe it: a
 * comment with its help and what it takes, then its default (or "required").
 * Free with g_free().
 */
char *config_describe_keys(void);

/** config_free: frees @config and everything it owns (NULL is fine). */
void config_free(struct ctflowd_config *config);

/** export_format_name / export_transport_name: the config-file spelling. */
const char *export_format_name(enum export_format format);
const char *export_transport_name(enum export_transport transport);

/**
 * config_nat_events:
 * Whether some export sends NAT session events (records = nat-events or
 * both).
 */
gboolean config_nat_events(const struct ctflowd_config *config);

