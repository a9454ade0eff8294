/*
 * config.c - reads the INI configuration with GKeyFile and turns it into
 * struct ctflowd_config, refusing anything it does not understand.
 *
 * Each section is one table of keys: name, type, field, default, range and
 * help.  The rows drive reading, defaults, range checks and their messages,
 * config_to_string() and config_describe_keys(); adding a key is one row.
 * Rules that tie keys together (a destination only for udp and tcp) are a
 * check per section, run after its table.
 *
 * GKeyFile parses values and escapes, but it forgets where things were,
 * quietly merges repeated sections, keeps the last of repeated keys, and
 * stops at the first bad line.  So the text is also scanned here, line by
 * line: to find the line of every section and key (for messages), to reject
 * repetitions, and to set bad lines aside so that the rest is still read.
 * Every problem is collected and all are reported, in file order.
 */
#include "config-build.h"
#include "ctflowd/config.h"
#include "ctflowd/ct_filter.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

/* A configuration file is small; anything this big is a wrong -c argument
 * (a log, /dev/zero), and reading it whole would only waste memory. */
#define CONFIG_MAX_BYTES (1024 * 1024)

#define KIB G_GUINT64_CONSTANT(1024)
#define MIB (KIB * 1024)
#define GIB (MIB * 1024)

#define SECOND_MS 1000u
#define MINUTE_MS (60u * SECOND_MS)
#define HOUR_MS (60u * MINUTE_MS)
#define DAY_MS (24u * HOUR_MS)

G_DEFINE_QUARK(ctflowd-config-error-quark, config_error)

/* Indexed by the enums they spell. */
static const char *const format_names[] = { "ipfix", "json", "netflow9", "netflow5", "syslog", NULL };
static const char *const netflow_times_names[] = { "absolute", "uptime", NULL };
static const char *const transport_names[] = { "udp", "tcp", "file", "stdout", "local", NULL };
static const char *const counters_names[] = { "delta", "total", "both", NULL };
static const char *const spool_sync_names[] = { "none", "batch", "record", NULL };
/* RFC 5424 section 6.2.1: facilities and severities by number, with the
 * names syslog.conf uses (12 to 15 have none there; the RFC's words). */
static const char *const syslog_facility_names[] = {
	"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
	"authpriv", "ftp", "ntp", "security", "console", "solaris-cron", "local0", "local1",
	"local2", "local3", "local4", "local5", "local6", "local7", NULL,
};
static const char *const syslog_severity_names[] = {
	"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug", NULL,
};
/* No private enterprise number is ctflowd's: the default SD-ID is under
 * 32473, the one RFC 5612 reserves for documentation. */
#define SYSLOG_DEFAULT_SD_ID "ctflowd@32473"
static const char *const records_names[] = { "flows", "nat-events", "both", NULL };

const char *export_format_name(enum export_format format)
{
	if ((unsigned)format < G_N_ELEMENTS(format_names) - 1)
		return format_names[format];
	return "unknown";
}

gboolean config_nat_events(const struct ctflowd_config *config)
{
	for (guint i = 0; config->exports && i < config->exports->len; i++) {
		const struct export_config *e = g_ptr_array_index(config->exports, i);
		if (e->records != EXPORT_RECORDS_FLOWS)
			return TRUE;
	}
	return FALSE;
}

const char *export_transport_name(enum export_transport transport)
{
	if ((unsigned)transport < G_N_ELEMENTS(transport_names) - 1)
		return transport_names[transport];
	return "unknown";
}

/* ------------------------------------------------------------------------
 * Problems, collected to be reported all at once.
 */

/* Where a problem sorts: what is written wrong, in file order; then what is
 * left out (a key, at its section's line); then what has no line at all. */
enum problem_place { PLACE_LINE, PLACE_MISSING, PLACE_NONE };

struct problem {
	enum problem_place place;
	int line;               /* 0: none */
	guint seq;              /* order of discovery, among equals */
	int code;               /* enum config_error_code */
	char *group;            /* the section and key it is about, if any */
	char *key;
	char *message;          /* what follows "ORIGIN:LINE: " */
};

static struct problem *problem_new(int code, int line, enum problem_place place,
				   const char *group, const char *key, char *message)
{
	struct problem *pr = g_new0(struct problem, 1);

	pr->code = code;
	pr->line = line;
	pr->place = line > 0 ? place : PLACE_NONE;
	pr->group = g_strdup(group);
	pr->key = g_strdup(key);
	pr->message = message;
	return pr;
}

static void problem_free(gpointer data)
{
	struct problem *pr = data;

	if (!pr)
		return;
	g_free(pr->group);
	g_free(pr->key);
	g_free(pr->message);
	g_free(pr);
}

static gint problem_compare(gconstpointer a, gconstpointer b)
{
	const struct problem *x = *(const struct problem *const *)a;
	const struct problem *y = *(const struct problem *const *)b;

	if (x->place != y->place)
		return x->place < y->place ? -1 : 1;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* ------------------------------------------------------------------------
 * Where things are in the text.
 */

struct section_layout {
	char *name;             /* as GKeyFile names the group: text between [ and ] */
	int line;
	GPtrArray *keys;        /* key names in file order */
	GHashTable *key_lines;  /* key -> GINT_TO_POINTER(line) */
};

struct layout {
	GPtrArray *sections;    /* struct section_layout *, in file order */
	GHashTable *by_name;    /* name -> struct section_layout * */
	GPtrArray *syntax;      /* struct problem *: the lines GKeyFile refuses */
	GPtrArray *repeats;     /* struct problem *: sections and keys given twice */
	GString *kept;          /* the text with those lines blanked, for GKeyFile */
};

/* Where the scan stands between lines. */
struct scan_state {
	struct section_layout *current;  /* NULL: before any section */
	gboolean lost;                   /* after a header GKeyFile refuses: its
					  * keys belong nowhere, and are dropped
					  * rather than blamed on the section before */
};

static void section_layout_free(gpointer data)
{
	struct section_layout *s = data;

	g_free(s->name);
	g_ptr_array_unref(s->keys);
	g_hash_table_unref(s->key_lines);
	g_free(s);
}

static void layout_clear(struct layout *layout)
{
	g_clear_pointer(&layout->sections, g_ptr_array_unref);
	g_clear_pointer(&layout->by_name, g_hash_table_unref);
	g_clear_pointer(&layout->syntax, g_ptr_array_unref);
	g_clear_pointer(&layout->repeats, g_ptr_array_unref);
	if (layout->kept)
		g_string_free(g_steal_pointer(&layout->kept), TRUE);
}

/* The same tests GKeyFile applies to a group name; a name failing them makes
 * the load fail, and this is the line to blame. */
static gboolean is_group_name(const char *name, size_t len)
{
	if (len == 0)
		return FALSE;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c == '[' || c == ']' || c < 0x20 || c == 0x7f)
			return FALSE;
	}
	return TRUE;
}

/* A key as GKeyFile accepts it: "name" or "name[locale]". */
static gboolean is_key_name(const char *key)
{
	const char *open = strchr(key, '[');
	const char *close = strchr(key, ']');

	if (*key == '\0' || *key == '[')
		return FALSE;
	if (!open)
		return close == NULL;
	return close && close > open && close[1] == '\0' && strchr(open + 1, '[') == NULL;
}

static char *quote(const char *value);

G_GNUC_PRINTF(4, 5)
static void layout_note(GPtrArray *list, int code, int line, const char *format, ...)
{
	va_list args;
	char *message;

	va_start(args, format);
	message = g_strdup_vprintf(format, args);
	va_end(args);
	g_ptr_array_add(list, problem_new(code, line, PLACE_LINE, NULL, NULL, message));
}

static gboolean scan_header(struct layout *layout, struct scan_state *state, char *text, int line)
{
	const char *close = strchr(text, ']');
	const char *rest;
	g_autofree char *q = quote(text);

	state->lost = TRUE;
	if (!close) {
		layout_note(layout->syntax, CONFIG_ERROR_SYNTAX, line,
			    "syntax error: expected \"]\" to end the section header, got %s", q);
		return FALSE;
	}
	for (rest = close + 1; *rest == ' ' || *rest == '\t'; rest++)
		;
	if (*rest != '\0') {
		layout_note(layout->syntax, CONFIG_ERROR_SYNTAX, line,
			    "syntax error: expected nothing after the section header's \"]\", got %s", q);
		return FALSE;
	}
	if (!is_group_name(text + 1, (size_t)(close - text - 1))) {
		layout_note(layout->syntax, CONFIG_ERROR_SYNTAX, line,
			    "syntax error: expected a section name between \"[\" and \"]\", got %s", q);
		return FALSE;
	}
	state->lost = FALSE;

	char *name = g_strndup(text + 1, (size_t)(close - text - 1));
	struct section_layout *earlier = g_hash_table_lookup(layout->by_name, name);
	if (earlier) {
		layout_note(layout->repeats, CONFIG_ERROR_SYNTAX, line,
			    "section [%s] given twice (first on line %d)", name, earlier->line);
		/* Keys of the repetition go to the first, as in GKeyFile. */
		state->current = earlier;
		g_free(name);
		return TRUE;
	}
	struct section_layout *s = g_new0(struct section_layout, 1);
	s->name = name;
	s->line = line;
	s->keys = g_ptr_array_new();
	s->key_lines = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_ptr_array_add(layout->sections, s);
	g_hash_table_insert(layout->by_name, s->name, s);
	state->current = s;
	return TRUE;
}

static gboolean scan_key(struct layout *layout, struct scan_state *state, char *text, int line)
{
	const char *equals = strchr(text, '=');
	g_autofree char *q = quote(text);

	if (!equals || equals == text) {
		layout_note(layout->syntax, CONFIG_ERROR_SYNTAX, line,
			    "syntax error: expected KEY = VALUE, a [section] or a # comment, got %s", q);
		return FALSE;
	}
	g_autofree char *key = g_strchomp(g_strndup(text, (size_t)(equals - text)));
	if (!is_key_name(key)) {
		layout_note(layout->syntax, CONFIG_ERROR_SYNTAX, line,
			    "syntax error: expected a key name before \"=\", got %s", q);
		return FALSE;
	}
	if (state->lost)
		return FALSE;
	if (!state->current) {
		layout_note(layout->syntax, CONFIG_ERROR_SYNTAX, line,
			    "syntax error: expected a [section] before the first key, got %s", q);
		return FALSE;
	}
	struct section_layout *s = state->current;
	gpointer first;
	if (g_hash_table_lookup_extended(s->key_lines, key, NULL, &first)) {
		layout_note(layout->repeats, CONFIG_ERROR_SYNTAX, line,
			    "[%s] %s: given twice (first on line %d)", s->name, key, GPOINTER_TO_INT(first));
		return FALSE;
	}
	g_ptr_array_add(s->keys, key);
	g_hash_table_insert(s->key_lines, g_steal_pointer(&key), GINT_TO_POINTER(line));
	return TRUE;
}

/*
 * Classifies every line the way GKeyFile does.  Returns whether the line is
 * kept for GKeyFile: lines it would refuse, keys given again (GKeyFile would
 * keep the last, messages name the first) and keys under a refused header
 * are blanked, so that the rest of the file can still be read and checked.
 */
static gboolean scan_line(struct layout *layout, struct scan_state *state, char *text, int line)
{
	size_t len;

	while (g_ascii_isspace(*text))
		text++;
	len = strlen(text);
	if (len > 0 && text[len - 1] == '\r')
		text[--len] = '\0';
	if (len == 0 || text[0] == '#')
		return TRUE;
	if (text[0] == '[')
		return scan_header(layout, state, text, line);
	return scan_key(layout, state, text, line);
}

static void layout_scan(struct layout *layout, const char *data)
{
	g_auto(GStrv) lines = g_strsplit(data, "\n", -1);
	struct scan_state state = { 0 };

	layout->sections = g_ptr_array_new_with_free_func(section_layout_free);
	layout->by_name = g_hash_table_new(g_str_hash, g_str_equal);
	layout->syntax = g_ptr_array_new_with_free_func(problem_free);
	layout->repeats = g_ptr_array_new_with_free_func(problem_free);
	layout->kept = g_string_new(NULL);

	for (int i = 0; lines[i]; i++) {
		g_autofree char *copy = g_strdup(lines[i]);

		if (i > 0)
			g_string_append_c(layout->kept, '\n');
		if (scan_line(layout, &state, copy, i + 1))
			g_string_append(layout->kept, lines[i]);
	}
}

/* 0 when neither the key nor its section is in the text. */
static int layout_line(const struct layout *layout, const char *group, const char *key)
{
	const struct section_layout *s;
	gpointer line;

	if (!group)
		return 0;
	s = g_hash_table_lookup(layout->by_name, group);
	if (!s)
		return 0;
	if (key && g_hash_table_lookup_extended(s->key_lines, key, NULL, &line))
		return GPOINTER_TO_INT(line);
	return s->line;
}

static gboolean layout_has_key(const struct layout *layout, const char *group, const char *key)
{
	const struct section_layout *s = g_hash_table_lookup(layout->by_name, group);

	return s && g_hash_table_contains(s->key_lines, key);
}

/* ------------------------------------------------------------------------
 * Messages.
 */

/* A value as it is shown in a message: in double quotes, with control
 * characters made visible so that a stray tab or \r cannot hide. */
static char *quote(const char *value)
{
	g_autofree char *valid = g_utf8_make_valid(value, -1);
	GString *out = g_string_new("\"");

	for (const char *c = valid; *c; c++) {
		unsigned char u = (unsigned char)*c;
		switch (u) {
		case '"':  g_string_append(out, "\\\""); break;
		case '\n': g_string_append(out, "\\n"); break;
		case '\t': g_string_append(out, "\\t"); break;
		case '\r': g_string_append(out, "\\r"); break;
		default:
			if (u < 0x20 || u == 0x7f)
				g_string_append_printf(out, "\\x%02x", u);
			else
				g_string_append_c(out, *c);
		}
	}
	g_string_append_c(out, '"');
	return g_string_free(out, FALSE);
}

/* Sizes and durations in messages, in the largest unit that is exact. */
static char *format_size_short(guint64 bytes)
{
	if (bytes != 0 && bytes % GIB == 0)
		return g_strdup_printf("%" G_GUINT64_FORMAT "G", bytes / GIB);
	if (bytes != 0 && bytes % MIB == 0)
		return g_strdup_printf("%" G_GUINT64_FORMAT "M", bytes / MIB);
	if (bytes != 0 && bytes % KIB == 0)
		return g_strdup_printf("%" G_GUINT64_FORMAT "K", bytes / KIB);
	return g_strdup_printf("%" G_GUINT64_FORMAT, bytes);
}

static char *format_duration_short(guint64 ms)
{
	if (ms != 0 && ms % HOUR_MS == 0)
		return g_strdup_printf("%" G_GUINT64_FORMAT "h", ms / HOUR_MS);
	if (ms != 0 && ms % MINUTE_MS == 0)
		return g_strdup_printf("%" G_GUINT64_FORMAT "m", ms / MINUTE_MS);
	if (ms % SECOND_MS == 0)
		return g_strdup_printf("%" G_GUINT64_FORMAT "s", ms / SECOND_MS);
	return g_strdup_printf("%" G_GUINT64_FORMAT "ms", ms);
}

/* How config_to_string() writes a duration: whole seconds when exact. */
static char *format_duration(guint64 ms)
{
	if (ms % SECOND_MS == 0)
		return g_strdup_printf("%" G_GUINT64_FORMAT "s", ms / SECOND_MS);
	return g_strdup_printf("%" G_GUINT64_FORMAT "ms", ms);
}

/* "ipfix or json", "one of udp, tcp, file, stdout". */
static char *describe_choices(const char *const *names)
{
	guint n = g_strv_length((char **)names);
	g_autofree char *list = g_strjoinv(", ", (char **)names);

	if (n == 2)
		return g_strdup_printf("%s or %s", names[0], names[1]);
	return g_strdup_printf("one of %s", list);
}

struct parser {
	const char *origin;
	GKeyFile *keys;
	struct layout layout;
	GPtrArray *problems;    /* struct problem * */
};

static void report(struct parser *p, struct problem *pr)
{
	pr->seq = p->problems->len;
	g_ptr_array_add(p->problems, pr);
}

static void report_all(struct parser *p, GPtrArray *list)
{
	for (guint i = 0; i < list->len; i++)
		report(p, g_steal_pointer(&g_ptr_array_index(list, i)));
	g_ptr_array_set_size(list, 0);
}

/*
 * Records "ORIGIN:LINE: [GROUP] KEY: message".  The line is the key's, or
 * its section's when the key is absent (a missing key, reported after what
 * is written wrong), or left out.  Always returns FALSE so that callers can
 * "return fail(...)".
 */
static gboolean failv(struct parser *p, int code, const char *group, const char *key,
		      const char *format, va_list args)
{
	g_autofree char *what = g_strdup_vprintf(format, args);
	char *message;

	if (group && key)
		message = g_strdup_printf("[%s] %s: %s", group, key, what);
	else if (group)
		message = g_strdup_printf("[%s]: %s", group, what);
	else
		message = g_steal_pointer(&what);
	gboolean absent = group && key && !layout_has_key(&p->layout, group, key);
	report(p, problem_new(code, layout_line(&p->layout, group, key),
			      absent ? PLACE_MISSING : PLACE_LINE, group, key, message));
	return FALSE;
}

G_GNUC_PRINTF(5, 6)
static gboolean fail(struct parser *p, int code, const char *group, const char *key,
		     const char *format, ...)
{
	va_list args;

	va_start(args, format);
	failv(p, code, group, key, format, args);
	va_end(args);
	return FALSE;
}

/* Takes back what was reported about @key of @group, when a later finding
 * (a key not used at all) makes it beside the point. */
static void forget(struct parser *p, const char *group, const char *key)
{
	for (guint i = p->problems->len; i-- > 0;) {
		const struct problem *pr = g_ptr_array_index(p->problems, i);
		if (g_strcmp0(pr->group, group) == 0 && g_strcmp0(pr->key, key) == 0)
			g_ptr_array_remove_index(p->problems, i);
	}
}

/* All problems, one a line in file order; the first one's code. */
static void set_error_from_problems(struct parser *p, GError **error)
{
	g_autoptr(GString) text = g_string_new(NULL);
	const struct problem *first;

	g_ptr_array_sort(p->problems, problem_compare);
	for (guint i = 0; i < p->problems->len; i++) {
		const struct problem *pr = g_ptr_array_index(p->problems, i);
		if (i > 0)
			g_string_append_c(text, '\n');
		if (pr->line > 0)
			g_string_append_printf(text, "%s:%d: %s", p->origin, pr->line, pr->message);
		else
			g_string_append_printf(text, "%s: %s", p->origin, pr->message);
	}
	first = g_ptr_array_index(p->problems, 0);
	g_set_error_literal(error, CONFIG_ERROR, first->code, text->str);
}

/* ------------------------------------------------------------------------
 * Values.
 */

/*
 * The text of a key, or NULL if it is absent.  Blanks at the end of a value
 * are dropped first: GKeyFile keeps them, and "path = flows.json " should not
 * name a file ending in a space (write \s to mean one).
 */
static gboolean get_value(struct parser *p, const char *group, const char *key, char **value)
{
	g_autofree char *raw = NULL;
	g_autoptr(GError) local = NULL;
	size_t len;

	*value = NULL;
	if (!g_key_file_has_key(p->keys, group, key, NULL))
		return TRUE;

	raw = g_key_file_get_value(p->keys, group, key, NULL);
	len = strlen(raw);
	while (len > 0 && (raw[len - 1] == ' ' || raw[len - 1] == '\t'))
		len--;
	if (raw[len] != '\0') {
		raw[len] = '\0';
		g_key_file_set_value(p->keys, group, key, raw);
	}

	/* GKeyFile returns the text even when it sets an error for a bad
	 * escape, so the error decides. */
	*value = g_key_file_get_string(p->keys, group, key, &local);
	if (!local)
		return TRUE;
	g_clear_pointer(value, g_free);
	if (g_error_matches(local, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_UNKNOWN_ENCODING)) {
		g_autofree char *q = quote(raw);
		return fail(p, CONFIG_ERROR_VALUE, group, key, "expected UTF-8 text, got %s", q);
	}
	g_autofree char *q = quote(raw);
	return fail(p, CONFIG_ERROR_VALUE, group, key,
		    "expected text with no escapes but \\s, \\n, \\t, \\r and \\\\, got %s", q);
}

enum number_result { NUMBER_OK, NUMBER_BAD, NUMBER_TOO_BIG };

struct unit {
	const char *suffix;
	guint64 factor;
};

static const struct unit size_units[] = {
	{ "", 1 }, { "b", 1 },
	{ "k", KIB }, { "kb", KIB }, { "kib", KIB },
	{ "m", MIB }, { "mb", MIB }, { "mib", MIB },
	{ "g", GIB }, { "gb", GIB }, { "gib", GIB },
	{ NULL, 0 },
};

/* A bare number is seconds, as in most daemons' configuration files. */
static const struct unit duration_units[] = {
	{ "", SECOND_MS }, { "ms", 1 }, { "s", SECOND_MS },
	{ "m", MINUTE_MS }, { "h", HOUR_MS },
	{ NULL, 0 },
};

static const struct unit no_units[] = { { "", 1 }, { NULL, 0 } };

/* Decimal digits, optional blanks, then one of @units (any case). */
static enum number_result parse_with_unit(const char *text, const struct unit *units, guint64 *out)
{
	const char *s = text;
	guint64 n = 0;

	if (!g_ascii_isdigit(*s))
		return NUMBER_BAD;
	gboolean too_big = FALSE;
	for (; g_ascii_isdigit(*s); s++) {
		unsigned digit = (unsigned)(*s - '0');
		if (n > (G_MAXUINT64 - digit) / 10)
			too_big = TRUE;
		else
			n = n * 10 + digit;
	}
	while (*s == ' ' || *s == '\t')
		s++;
	for (const struct unit *u = units; u->suffix; u++) {
		if (g_ascii_strcasecmp(s, u->suffix) != 0)
			continue;
		if (too_big || n > G_MAXUINT64 / u->factor)
			return NUMBER_TOO_BIG;
		*out = n * u->factor;
		return NUMBER_OK;
	}
	return NUMBER_BAD;
}

/* "HOST:PORT" or "[IPv6]:PORT" (IPv6 may carry a %zone). */
static gboolean is_hostname(const char *host)
{
	if (*host == '\0' || *host == '-' || *host == '.')
		return FALSE;
	for (const char *c = host; *c; c++)
		if (!g_ascii_isalnum(*c) && *c != '-' && *c != '.' && *c != '_')
			return FALSE;
	return TRUE;
}

/* "1.2.3" would reach getaddrinfo() as an odd legacy form; a host made of
 * digits and dots must be a real dotted quad. */
static gboolean looks_like_ipv4(const char *host)
{
	return host[strspn(host, "0123456789.")] == '\0';
}

static gboolean parse_destination(const char *value, char **host, char **port)
{
	g_autofree char *h = NULL;
	const char *port_text;

	if (value[0] == '[') {
		const char *close = strchr(value, ']');
		struct in6_addr addr6;

		if (!close || close[1] != ':')
			return FALSE;
		h = g_strndup(value + 1, (size_t)(close - value - 1));
		g_autofree char *bare = g_strdup(h);
		char *zone = strchr(bare, '%');
		if (zone) {
			if (zone[1] == '\0')
				return FALSE;
			*zone = '\0';
		}
		if (inet_pton(AF_INET6, bare, &addr6) != 1)
			return FALSE;
		port_text = close + 2;
	} else {
		const char *colon = strrchr(value, ':');
		struct in_addr addr4;

		if (!colon)
			return FALSE;
		h = g_strndup(value, (size_t)(colon - value));
		/* A colon left in HOST means IPv6 without brackets, where which
		 * colon starts the port cannot be known: is_hostname() refuses it. */
		if (!is_hostname(h))
			return FALSE;
		if (looks_like_ipv4(h) && inet_pton(AF_INET, h, &addr4) != 1)
			return FALSE;
		port_text = colon + 1;
	}

	guint64 n;
	if (!g_ascii_isdigit(*port_text) ||
	    !g_ascii_string_to_unsigned(port_text, 10, 1, 65535, &n, NULL))
		return FALSE;
	*host = g_steal_pointer(&h);
	*port = g_strdup_printf("%u", (unsigned)n);
	return TRUE;
}

/* ------------------------------------------------------------------------
 * Keys: one table per section.
 */

struct key;
struct section_pass;

/* A kind of value: how it is read, printed and described. */
struct value_type {
	/* Stores @value (escapes undone, trailing blanks dropped) in the
	 * fields of @k, or reports why not and returns FALSE. */
	gboolean (*parse)(struct section_pass *sp, const struct key *k, const char *value);
	/* Appends "KEY = VALUE\n", or nothing for a value that is not set. */
	void (*print)(GString *out, const struct key *k, const void *object);
	/* What the key takes, as a message says it after "expected". */
	char *(*expects)(const struct key *k);
	gboolean text;          /* the fields are allocated strings */
};

enum key_flag {
	KEY_REQUIRED = 1 << 0,   /* no default: an absent key is an error */
	KEY_ZERO_OFF = 1 << 1,   /* duration: 0, below the range, means never */
	KEY_EMPTY_NONE = 1 << 2, /* text: empty means none (NULL), printed as "KEY =" */
	KEY_RELATIVE = 1 << 3,   /* path: relative to state_directory unless absolute */
	KEY_FILE = 1 << 4,       /* path: a file, so not "dir/" */
	KEY_AUTO = 1 << 5,       /* size, duration: "auto" stores 0 (for a size, the
				  * section's check decides) */
};

struct key {
	const char *name;
	const struct value_type *type;
	size_t offset, size;        /* the field in the section's struct */
	size_t offset2, size2;      /* a second one (size2 0: none): destination's
				     * port, guard's entry count */
	guint64 fallback;           /* the default of a number, duration (ms),
				     * boolean or choice (index) */
	const char *fallback_text;  /* the default of text (NULL: none) */
	guint64 min, max;           /* the range of a number, size or duration */
	const char *const *choices; /* choice: the names, indexed by the enum */
	const char *share_of;       /* share: what a percentage is of */
	unsigned flags;             /* enum key_flag */
	const char *help;
};

struct section_keys {
	const char *shown;          /* the section as messages name it */
	const struct key *keys;
	size_t n_keys;
	size_t object_size;         /* of the struct the fields are in */
	/* Rules between keys, run once every key is read (NULL: none). */
	void (*check)(struct section_pass *sp);
};

/* One section being read. */
struct section_pass {
	struct parser *p;
	const struct section_keys *section;
	const char *group;          /* GKeyFile's name of the section */
	void *object;
	const char *base;           /* where relative paths start */
	guint64 given;              /* bit i: keys[i] is written */
	guint64 bad;                /* bit i: ... and was refused */
};

G_GNUC_PRINTF(3, 4)
static gboolean bad_value(struct section_pass *sp, const struct key *k, const char *format, ...)
{
	va_list args;

	va_start(args, format);
	failv(sp->p, CONFIG_ERROR_VALUE, sp->group, k->name, format, args);
	va_end(args);
	return FALSE;
}

/* "expected a size from 4K to 1G, got "2G"": the range from the table. */
static gboolean bad_range(struct section_pass *sp, const struct key *k, const char *value)
{
	g_autofree char *expected = k->type->expects(k);
	g_autofree char *q = quote(value);

	return bad_value(sp, k, "expected %s, got %s", expected, q);
}

/* Fields are reached through the table's offsets and sizes; memcpy keeps
 * that free of assumptions about alignment and aliasing. */
static void store_number(void *object, size_t offset, size_t size, guint64 value)
{
	char *at = (char *)object + offset;

	if (size == sizeof(guint64)) {
		memcpy(at, &value, sizeof value);
		return;
	}
	/* A row whose range does not fit its field is a mistake in the table. */
	g_assert(size == sizeof(guint32) && value <= G_MAXUINT32);
	guint32 narrow = (guint32)value;
	memcpy(at, &narrow, sizeof narrow);
}

static guint64 load_number(const void *object, size_t offset, size_t size)
{
	const char *at = (const char *)object + offset;

	if (size == sizeof(guint64)) {
		guint64 value;
		memcpy(&value, at, sizeof value);
		return value;
	}
	guint32 narrow;
	memcpy(&narrow, at, sizeof narrow);
	return narrow;
}

static void store_text(void *object, size_t offset, char *value)
{
	char **at = (char **)(void *)((char *)object + offset);

	g_free(*at);
	*at = value;
}

static const char *load_text(const void *object, size_t offset)
{
	return *(char *const *)(const void *)((const char *)object + offset);
}

static void key_set_default(const struct key *k, void *object)
{
	if (k->type->text) {
		store_text(object, k->offset, g_strdup(k->fallback_text));
		if (k->size2)
			store_text(object, k->offset2, NULL);
		return;
	}
	store_number(object, k->offset, k->size, k->fallback);
	if (k->size2)
		store_number(object, k->offset2, k->size2, 0);
}

static void key_free_fields(const struct key *k, void *object)
{
	if (!k->type->text)
		return;
	store_text(object, k->offset, NULL);
	if (k->size2)
		store_text(object, k->offset2, NULL);
}

/* The inverse of GKeyFile's unescaping, plus \s for blanks at either end,
 * which it would otherwise drop (leading) or get_value() would (trailing). */
static void append_value(GString *out, const char *value)
{
	size_t len = strlen(value);

	for (size_t i = 0; i < len; i++) {
		char c = value[i];
		switch (c) {
		case '\\': g_string_append(out, "\\\\"); break;
		case '\n': g_string_append(out, "\\n"); break;
		case '\r': g_string_append(out, "\\r"); break;
		case '\t': g_string_append(out, "\\t"); break;
		case ' ':
			if (i == 0 || i == len - 1)
				g_string_append(out, "\\s");
			else
				g_string_append_c(out, c);
			break;
		default:
			g_string_append_c(out, c);
		}
	}
}

static void append_key(GString *out, const char *key, const char *value)
{
	g_string_append_printf(out, "%s =", key);
	if (value && *value) {
		g_string_append_c(out, ' ');
		append_value(out, value);
	}
	g_string_append_c(out, '\n');
}

static void append_number(GString *out, const char *key, guint64 n)
{
	g_string_append_printf(out, "%s = %" G_GUINT64_FORMAT "\n", key, n);
}

/* --- size: bytes, or with K, M or G */

static gboolean parse_size_value(struct section_pass *sp, const struct key *k, const char *value)
{
	guint64 bytes = 0;
	enum number_result r;

	if ((k->flags & KEY_AUTO) && g_ascii_strcasecmp(value, "auto") == 0) {
		store_number(sp->object, k->offset, k->size, 0);
		return TRUE;
	}
	r = parse_with_unit(value, size_units, &bytes);
	if (r == NUMBER_BAD) {
		g_autofree char *q = quote(value);
		return bad_value(sp, k, "expected a size in bytes, optionally with K, M or G "
				 "(such as 16384, 16K, 8M, 1G), got %s", q);
	}
	if (r == NUMBER_TOO_BIG || bytes < k->min || bytes > k->max)
		return bad_range(sp, k, value);
	store_number(sp->object, k->offset, k->size, bytes);
	return TRUE;
}

static void print_size(GString *out, const struct key *k, const void *object)
{
	guint64 bytes = load_number(object, k->offset, k->size);

	if (bytes == 0 && (k->flags & KEY_AUTO))
		append_key(out, k->name, "auto");
	else
		append_number(out, k->name, bytes);
}

static char *expects_size(const struct key *k)
{
	g_autofree char *lo = format_size_short(k->min);
	g_autofree char *hi = format_size_short(k->max);

	if (k->max == G_MAXUINT64)
		return g_strdup_printf("a size of at least %s", lo);
	return g_strdup_printf("a size from %s to %s", lo, hi);
}

static const struct value_type size_type = { parse_size_value, print_size, expects_size, FALSE };

/* --- duration: milliseconds in a guint */

static gboolean parse_duration_value(struct section_pass *sp, const struct key *k, const char *value)
{
	guint64 ms = 0;
	enum number_result r = parse_with_unit(value, duration_units, &ms);

	/* words that stand for 0: "auto" (the section decides), "off" */
	if (((k->flags & KEY_AUTO) && g_ascii_strcasecmp(value, "auto") == 0) ||
	    ((k->flags & KEY_ZERO_OFF) &&
	     ((r == NUMBER_OK && ms == 0) || g_ascii_strcasecmp(value, "off") == 0))) {
		store_number(sp->object, k->offset, k->size, 0);
		return TRUE;
	}
	if (r == NUMBER_BAD) {
		g_autofree char *q = quote(value);
		return bad_value(sp, k, "expected a duration: a number of seconds, or with ms, s, m or h "
				 "(such as 500ms, 2s, 1m), got %s", q);
	}
	if (r == NUMBER_TOO_BIG || ms < k->min || ms > k->max)
		return bad_range(sp, k, value);
	store_number(sp->object, k->offset, k->size, ms);
	return TRUE;
}

static void print_duration(GString *out, const struct key *k, const void *object)
{
	guint64 ms = load_number(object, k->offset, k->size);
	g_autofree char *text = ms == 0 && (k->flags & KEY_AUTO) ? g_strdup("auto") : format_duration(ms);

	append_key(out, k->name, text);
}

static char *expects_duration(const struct key *k)
{
	g_autofree char *lo = format_duration_short(k->min);
	g_autofree char *hi = format_duration_short(k->max);

	return g_strdup_printf("%sa duration from %s to %s",
			       (k->flags & KEY_ZERO_OFF) ? "0 (off) or " :
			       (k->flags & KEY_AUTO) ? "auto or " : "", lo, hi);
}

static const struct value_type duration_type = {
	parse_duration_value, print_duration, expects_duration, FALSE
};

/* --- count: a whole number, no unit */

static gboolean parse_count_value(struct section_pass *sp, const struct key *k, const char *value)
{
	guint64 n = 0;

	if (parse_with_unit(value, no_units, &n) != NUMBER_OK || n < k->min || n > k->max)
		return bad_range(sp, k, value);
	store_number(sp->object, k->offset, k->size, n);
	return TRUE;
}

static void print_count(GString *out, const struct key *k, const void *object)
{
	append_number(out, k->name, load_number(object, k->offset, k->size));
}

static char *expects_count(const struct key *k)
{
	return g_strdup_printf("a whole number from %" G_GUINT64_FORMAT " to %" G_GUINT64_FORMAT,
			       k->min, k->max);
}

static const struct value_type count_type = { parse_count_value, print_count, expects_count, FALSE };

/* --- bool: yes or no, and the usual synonyms */

static gboolean parse_bool_value(struct section_pass *sp, const struct key *k, const char *value)
{
	static const char *const yes[] = { "yes", "true", "on", "1", NULL };
	static const char *const no[] = { "no", "false", "off", "0", NULL };

	for (int i = 0; yes[i]; i++) {
		if (g_ascii_strcasecmp(value, yes[i]) == 0 || g_ascii_strcasecmp(value, no[i]) == 0) {
			store_number(sp->object, k->offset, k->size, g_ascii_strcasecmp(value, yes[i]) == 0);
			return TRUE;
		}
	}
	return bad_range(sp, k, value);
}

static void print_bool(GString *out, const struct key *k, const void *object)
{
	append_key(out, k->name, load_number(object, k->offset, k->size) ? "yes" : "no");
}

static char *expects_bool(const struct key *k)
{
	(void)k;
	return g_strdup("yes or no");
}

static const struct value_type bool_type = { parse_bool_value, print_bool, expects_bool, FALSE };

/* --- choice: one of the names of an enum (any case) */

static gboolean parse_choice_value(struct section_pass *sp, const struct key *k, const char *value)
{
	for (guint i = 0; k->choices[i]; i++) {
		if (g_ascii_strcasecmp(value, k->choices[i]) == 0) {
			store_number(sp->object, k->offset, k->size, i);
			return TRUE;
		}
	}
	return bad_range(sp, k, value);
}

static void print_choice(GString *out, const struct key *k, const void *object)
{
	guint64 i = load_number(object, k->offset, k->size);

	append_key(out, k->name, i < g_strv_length((char **)k->choices) ? k->choices[i] : "unknown");
}

static char *expects_choice(const struct key *k)
{
	return describe_choices(k->choices);
}

static const struct value_type choice_type = { parse_choice_value, print_choice, expects_choice, FALSE };

/* --- path: made absolute and lexically clean ("/a//b/../c/" is "/a/c") */

static gboolean parse_path(struct section_pass *sp, const struct key *k, const char *value)
{
	const char *base = (k->flags & KEY_RELATIVE) ? sp->base : NULL;
	g_autofree char *q = quote(value);

	if (*value == '\0' && (k->flags & KEY_EMPTY_NONE)) {
		store_text(sp->object, k->offset, NULL);
		return TRUE;
	}
	if ((k->flags & KEY_FILE) && g_str_has_suffix(value, "/"))
		return bad_value(sp, k, "expected a file, not a directory, got %s", q);
	if (*value == '\0')
		return bad_value(sp, k, "expected a path, got %s", q);
	if (!base && !g_path_is_absolute(value))
		return bad_value(sp, k, "expected an absolute path (starting with /), got %s", q);
	store_text(sp->object, k->offset, g_canonicalize_filename(value, base));
	return TRUE;
}

/* Text left unset is printed empty where empty means none, else left out
 * (a path where the transport takes none). */
static void print_text(GString *out, const struct key *k, const void *object)
{
	const char *text = load_text(object, k->offset);

	if (text || (k->flags & KEY_EMPTY_NONE))
		append_key(out, k->name, text);
}

static char *expects_path(const struct key *k)
{
	return g_strdup_printf("%s%s",
			       (k->flags & KEY_RELATIVE) ? "a path, relative to state_directory unless absolute"
							 : "an absolute path",
			       (k->flags & KEY_EMPTY_NONE) ? ", or nothing" : "");
}

static const struct value_type path_type = { parse_path, print_text, expects_path, TRUE };

/* --- zone_vrf: ZONE=VRF pairs, kept as text in a canonical form */

static gint zone_vrf_cmp(gconstpointer a, gconstpointer b)
{
	const struct zone_vrf *x = a, *y = b;

	return (gint)x->zone - (gint)y->zone;
}

GArray *zone_vrf_parse(const char *text, GError **error)
{
	g_autoptr(GArray) map = g_array_new(FALSE, TRUE, sizeof(struct zone_vrf));
	g_auto(GStrv) items = g_strsplit(text ? text : "", ",", -1);
	guint64 zone, vrf;

	for (int i = 0; items[i]; i++) {
		const char *item = g_strstrip(items[i]);
		if (!*item && !items[i + 1] && i == 0)
			break;   /* empty text: no pair */
		g_auto(GStrv) kv = g_strsplit(item, "=", 2);
		if (!kv[0] || !kv[1] ||
		    parse_with_unit(g_strstrip(kv[0]), no_units, &zone) != NUMBER_OK ||
		    parse_with_unit(g_strstrip(kv[1]), no_units, &vrf) != NUMBER_OK) {
			g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_VALUE,
				    "pair %d (\"%s\") is not ZONE=VRF with two whole numbers", i + 1, item);
			return NULL;
		}
		if (zone > G_MAXUINT16 || vrf > G_MAXUINT32) {
			g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_VALUE,
				    "pair %d (\"%s\"): zones go from 0 to 65535, VRF ids from 0 to 4294967295",
				    i + 1, item);
			return NULL;
		}
		for (guint j = 0; j < map->len; j++) {
			if (g_array_index(map, struct zone_vrf, j).zone == zone) {
				g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_VALUE,
					    "pair %d (\"%s\"): zone %" G_GUINT64_FORMAT " is given twice",
					    i + 1, item, zone);
				return NULL;
			}
		}
		struct zone_vrf pair = {.zone = (guint16)zone, .vrf = (guint32)vrf};
		g_array_append_val(map, pair);
	}
	g_array_sort(map, zone_vrf_cmp);
	return g_steal_pointer(&map);
}

guint32 zone_vrf_lookup(const struct zone_vrf *map, guint n, guint16 zone)
{
	guint lo = 0, hi = n;

	while (lo < hi) {
		guint mid = lo + (hi - lo) / 2;
		if (map[mid].zone == zone)
			return map[mid].vrf;
		if (map[mid].zone < zone)
			lo = mid + 1;
		else
			hi = mid;
	}
	return zone;
}

static gboolean parse_zone_vrf_value(struct section_pass *sp, const struct key *k, const char *value)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GArray) map = zone_vrf_parse(value, &error);

	if (!map)
		return bad_value(sp, k, "%s", error->message);
	if (!map->len) {
		store_text(sp->object, k->offset, NULL);
		return TRUE;
	}
	GString *text = g_string_new(NULL);
	for (guint i = 0; i < map->len; i++) {
		const struct zone_vrf *z = &g_array_index(map, struct zone_vrf, i);
		g_string_append_printf(text, "%s%u=%u", i ? ", " : "", z->zone, z->vrf);
	}
	store_text(sp->object, k->offset, g_string_free(text, FALSE));
	return TRUE;
}

static char *expects_zone_vrf(const struct key *k)
{
	(void)k;
	return g_strdup("ZONE=VRF pairs separated by commas, or nothing");
}

static const struct value_type zone_vrf_type = { parse_zone_vrf_value, print_text, expects_zone_vrf, TRUE };

/* --- filter_*: a source's filter (ct_filter.h), kept as text in a canonical form */

static enum ct_filter_key filter_key_of(const struct key *k)
{
	if (strcmp(k->name, "filter_protocols") == 0)
		return CT_FILTER_PROTOCOLS;
	if (strcmp(k->name, "filter_addresses") == 0)
		return CT_FILTER_ADDRESSES;
	if (strcmp(k->name, "filter_zones") == 0)
		return CT_FILTER_ZONES;
	return CT_FILTER_MARK;
}

static gboolean parse_filter_value(struct section_pass *sp, const struct key *k, const char *value)
{
	g_autoptr(GError) error = NULL;
	char *text = ct_filter_normalize(filter_key_of(k), value, &error);

	if (!text)
		return bad_value(sp, k, "%s", error->message);
	if (!*text) {
		g_free(text);
		text = NULL;
	}
	store_text(sp->object, k->offset, text);
	return TRUE;
}

static char *expects_filter(const struct key *k)
{
	switch (filter_key_of(k)) {
	case CT_FILTER_PROTOCOLS:
		return g_strdup("protocol names (tcp, udp, udplite, icmp, icmpv6, sctp, dccp, gre) or"
				" numbers separated by commas, or nothing");
	case CT_FILTER_ADDRESSES:
		return g_strdup("IPv4 and IPv6 addresses or prefixes (ADDRESS/LENGTH) separated by"
				" commas, or nothing");
	case CT_FILTER_ZONES:
		return g_strdup("zones (0 to 65535) or ranges (FIRST-LAST) separated by commas, or"
				" nothing");
	case CT_FILTER_MARK:
	default:
		return g_strdup("MARK or MARK/MASK (0 to 0xffffffff), or nothing");
	}
}

static const struct value_type filter_type = { parse_filter_value, print_text, expects_filter, TRUE };

/* --- netns: a name under /run/netns or an absolute path such as /proc/PID/ns/net */

static gboolean parse_netns(struct section_pass *sp, const struct key *k, const char *value)
{
	if (*value == '\0' && (k->flags & KEY_EMPTY_NONE)) {
		store_text(sp->object, k->offset, NULL);
		return TRUE;
	}
	if (*value == '\0' ||
	    (strchr(value, '/') ? !g_path_is_absolute(value)
				: strcmp(value, ".") == 0 || strcmp(value, "..") == 0))
		return bad_range(sp, k, value);
	store_text(sp->object, k->offset, g_strdup(value));
	return TRUE;
}

static char *expects_netns(const struct key *k)
{
	(void)k;
	return g_strdup("a name under /run/netns or an absolute path");
}

static const struct value_type netns_type = { parse_netns, print_text, expects_netns, TRUE };

/* --- events: "destroy" or "destroy,new", stored as whether NEW is wanted */

static gboolean parse_events(struct section_pass *sp, const struct key *k, const char *value)
{
	g_auto(GStrv) items = g_strsplit(value, ",", -1);
	gboolean destroy = FALSE, new = FALSE;

	for (int i = 0; items[i]; i++) {
		const char *item = g_strstrip(items[i]);
		if (g_ascii_strcasecmp(item, "destroy") == 0)
			destroy = TRUE;
		else if (g_ascii_strcasecmp(item, "new") == 0)
			new = TRUE;
		else
			return bad_range(sp, k, value);
	}
	/* Only DESTROY carries the final counters; NEW alone yields no flows. */
	if (!destroy) {
		g_autofree char *q = quote(value);
		return bad_value(sp, k, "expected destroy or destroy,new (destroy events carry the counters), got %s", q);
	}
	store_number(sp->object, k->offset, k->size, new);
	return TRUE;
}

static void print_events(GString *out, const struct key *k, const void *object)
{
	append_key(out, k->name, load_number(object, k->offset, k->size) ? "destroy,new" : "destroy");
}

static char *expects_events(const struct key *k)
{
	(void)k;
	return g_strdup("destroy or destroy,new");
}

static const struct value_type events_type = { parse_events, print_events, expects_events, FALSE };

/* --- share: "N%" of something (field, N in the range), a count (second
 * field, at least 1), or "off" (both 0) */

static gboolean parse_share(struct section_pass *sp, const struct key *k, const char *value)
{
	char *end = NULL;
	guint64 n;

	store_number(sp->object, k->offset, k->size, 0);
	store_number(sp->object, k->offset2, k->size2, 0);
	if (g_ascii_strcasecmp(value, "off") == 0)
		return TRUE;
	errno = 0;
	n = g_ascii_strtoull(value, &end, 10);
	if (end == value || errno || !g_ascii_isdigit(value[0]))
		return bad_range(sp, k, value);
	if (g_strcmp0(end, "%") == 0) {
		if (n < k->min || n > k->max) {
			g_autofree char *q = quote(value);
			return bad_value(sp, k, "expected a percentage from %" G_GUINT64_FORMAT "%% to %"
					 G_GUINT64_FORMAT "%%, got %s", k->min, k->max, q);
		}
		store_number(sp->object, k->offset, k->size, n);
		return TRUE;
	}
	if (*end || n < 1)
		return bad_range(sp, k, value);
	store_number(sp->object, k->offset2, k->size2, n);
	return TRUE;
}

static void print_share(GString *out, const struct key *k, const void *object)
{
	guint64 percent = load_number(object, k->offset, k->size);
	guint64 count = load_number(object, k->offset2, k->size2);

	if (count) {
		append_number(out, k->name, count);
	} else if (percent) {
		g_autofree char *text = g_strdup_printf("%" G_GUINT64_FORMAT "%%", percent);
		append_key(out, k->name, text);
	} else {
		append_key(out, k->name, "off");
	}
}

static char *expects_share(const struct key *k)
{
	return g_strdup_printf("a share of %s (such as %" G_GUINT64_FORMAT "%%), a number of entries, or off",
			       k->share_of, k->fallback);
}

static const struct value_type share_type = { parse_share, print_share, expects_share, FALSE };

/* --- address: HOST:PORT into host (field) and port (second field) */

static gboolean parse_address(struct section_pass *sp, const struct key *k, const char *value)
{
	char *host = NULL, *port = NULL;

	if (!parse_destination(value, &host, &port))
		return bad_range(sp, k, value);
	store_text(sp->object, k->offset, host);
	store_text(sp->object, k->offset2, port);
	return TRUE;
}

static void print_address(GString *out, const struct key *k, const void *object)
{
	const char *host = load_text(object, k->offset);
	const char *port = load_text(object, k->offset2);

	if (!host)
		return;
	g_autofree char *text = strchr(host, ':') ? g_strdup_printf("[%s]:%s", host, port)
						  : g_strdup_printf("%s:%s", host, port);
	append_key(out, k->name, text);
}

static char *expects_address(const struct key *k)
{
	(void)k;
	return g_strdup("HOST:PORT with a port from 1 to 65535, an IPv6 address in brackets as in [::1]:4739");
}

static const struct value_type address_type = { parse_address, print_address, expects_address, TRUE };

/* --- syslog_code: a name from the choices (the enum's index), or its number */

static gboolean parse_syslog_code(struct section_pass *sp, const struct key *k, const char *value)
{
	guint64 n = 0;

	for (guint i = 0; k->choices[i]; i++) {
		if (g_ascii_strcasecmp(value, k->choices[i]) == 0) {
			store_number(sp->object, k->offset, k->size, i);
			return TRUE;
		}
	}
	if (parse_with_unit(value, no_units, &n) != NUMBER_OK || n > k->max)
		return bad_range(sp, k, value);
	store_number(sp->object, k->offset, k->size, n);
	return TRUE;
}

static char *expects_syslog_code(const struct key *k)
{
	g_autofree char *names = g_strjoinv(", ", (char **)k->choices);

	return g_strdup_printf("a name (%s) or a number from 0 to %" G_GUINT64_FORMAT, names, k->max);
}

static const struct value_type syslog_code_type = {
	parse_syslog_code, print_choice, expects_syslog_code, FALSE
};

/* --- syslog_name: printable US-ASCII without blanks, at most k->max bytes
 * (RFC 5424 section 6: PRINTUSASCII); KEY_EMPTY_NONE: empty is none */

static gboolean is_print_us_ascii(const char *value)
{
	for (const char *c = value; *c; c++)
		if (*c < 33 || *c > 126)
			return FALSE;
	return TRUE;
}

static gboolean parse_syslog_name(struct section_pass *sp, const struct key *k, const char *value)
{
	g_autofree char *q = quote(value);

	if (*value == '\0' && (k->flags & KEY_EMPTY_NONE)) {
		store_text(sp->object, k->offset, NULL);
		return TRUE;
	}
	if (*value == '\0' || !is_print_us_ascii(value))
		return bad_value(sp, k, "expected printable US-ASCII without blanks (RFC 5424), got %s", q);
	if (strlen(value) > k->max)
		return bad_value(sp, k, "expected at most %" G_GUINT64_FORMAT " characters (RFC 5424),"
				 " got %zu in %s", k->max, strlen(value), q);
	store_text(sp->object, k->offset, g_strdup(value));
	return TRUE;
}

/* --- an export's name, as another export refers to it */

static gboolean parse_export_name(struct section_pass *sp, const struct key *k, const char *value)
{
	g_autofree char *q = quote(value);

	if (*value == '\0' || strpbrk(value, " \t[]"))
		return bad_value(sp, k, "expected the NAME of an [export NAME] section, got %s", q);
	store_text(sp->object, k->offset, g_strdup(value));
	return TRUE;
}

static char *expects_syslog_name(const struct key *k)
{
	return g_strdup_printf("printable US-ASCII without blanks, at most %" G_GUINT64_FORMAT
			       " characters%s", k->max,
			       (k->flags & KEY_EMPTY_NONE) ? ", or nothing" : "");
}

static const struct value_type syslog_name_type = {
	parse_syslog_name, print_text, expects_syslog_name, TRUE
};

/* --- sd_id: an SD-NAME (RFC 5424 section 6.3.2) of the form NAME@PEN:
 * names without "@" are IANA's (section 7.2) */

static gboolean parse_sd_id(struct section_pass *sp, const struct key *k, const char *value)
{
	g_autofree char *q = quote(value);
	const char *at = strchr(value, '@');

	if (!is_print_us_ascii(value) || strpbrk(value, "=]\"") || strlen(value) > k->max)
		return bad_value(sp, k, "expected an SD-ID of at most %" G_GUINT64_FORMAT " printable"
				 " US-ASCII characters without blanks, =, ] or \" (RFC 5424), got %s",
				 k->max, q);
	if (!at || at == value || at[1] == '\0' || at[strspn(at + 1, "0123456789") + 1] != '\0' ||
	    strchr(at + 1, '@'))
		return bad_value(sp, k, "expected NAME@NUMBER with your private enterprise number"
				 " (RFC 5424 section 7.2: names without @ are IANA's), got %s", q);
	store_text(sp->object, k->offset, g_strdup(value));
	return TRUE;
}

static char *expects_sd_id(const struct key *k)
{
	return g_strdup_printf("NAME@NUMBER, at most %" G_GUINT64_FORMAT " characters", k->max);
}

static const struct value_type sd_id_type = { parse_sd_id, print_text, expects_sd_id, TRUE };

static char *expects_export_name(const struct key *k)
{
	(void)k;
	return g_strdup("the NAME of another [export NAME] section");
}

static const struct value_type export_name_type = { parse_export_name, print_text, expects_export_name, TRUE };

/* --- the tables */

#define FIELD(type, member) \
	.offset = offsetof(type, member), .size = sizeof(((type *)NULL)->member)
#define SECOND_FIELD(type, member) \
	.offset2 = offsetof(type, member), .size2 = sizeof(((type *)NULL)->member)
#define DAEMON(member) FIELD(struct daemon_config, member)
#define SOURCE(member) FIELD(struct source_config, member)
#define EXPORT(member) FIELD(struct export_config, member)

static const struct key daemon_keys[] = {
	/* Relative export paths start here and must come out absolute,
	 * whatever the daemon's working directory turns out to be. */
	{ "state_directory", &path_type, DAEMON(state_directory),
	  .fallback_text = LOCALSTATEDIR "/lib/ctflowd",
	  .help = "where ctflowd keeps its journal and files, and where relative export paths start" },
	/* Empty means none, so that config_to_string() can write "pid_file =". */
	{ "pid_file", &path_type, DAEMON(pid_file), .flags = KEY_EMPTY_NONE,
	  .help = "the process id is written here after start-up" },
	{ "stats_interval", &duration_type, DAEMON(stats_interval_ms),
	  .fallback = 60 * SECOND_MS, .min = SECOND_MS, .max = DAY_MS, .flags = KEY_ZERO_OFF,
	  .help = "the counters are logged this often" },
	{ "spool_max", &size_type, DAEMON(spool_max), .fallback = 256 * MIB, .min = MIB, .max = G_MAXUINT64,
	  .help = "bytes of journal on disk (when full, the oldest records are dropped and counted)" },
	{ "spool_sync", &choice_type, DAEMON(spool_sync), .fallback = SPOOL_SYNC_BATCH,
	  .choices = spool_sync_names, .help = "when the journal is forced to disk" },
	{ "handover_timeout", &duration_type, DAEMON(handover_timeout_ms),
	  .fallback = 60 * SECOND_MS, .min = SECOND_MS, .max = HOUR_MS, .flags = KEY_ZERO_OFF,
	  .help = "a stopped ctflowd keeps its event socket this long for the next start" },
};

static const struct key source_keys[] = {
	{ "netns", &netns_type, SOURCE(netns), .flags = KEY_EMPTY_NONE,
	  .help = "the network namespace watched (none: the daemon's own)" },
	{ "receive_buffer", &size_type, SOURCE(receive_buffer), .fallback = 8 * MIB, .min = 4096, .max = GIB,
	  .help = "receive buffer of the event socket, set with SO_RCVBUFFORCE" },
	{ "reliable", &bool_type, SOURCE(reliable), .fallback = TRUE,
	  .help = "reliable event delivery (NETLINK_BROADCAST_ERROR)" },
	{ "events", &events_type, SOURCE(subscribe_new), .fallback = FALSE,
	  .help = "the conntrack events read" },
	{ "manage_sysctls", &bool_type, SOURCE(manage_sysctls), .fallback = TRUE,
	  .help = "set the conntrack sysctls ctflowd needs instead of refusing to start" },
	{ "dedup_window", &count_type, SOURCE(dedup_window), .fallback = 262144, .min = 1024, .max = 67108864,
	  .help = "recent connections remembered so that each is exported once" },
	{ "resync_delay", &duration_type, SOURCE(resync_delay_ms),
	  .fallback = 2 * SECOND_MS, .min = 0, .max = HOUR_MS,
	  .help = "quiet time after an overrun before the conntrack table is read again" },
	{ "guard", &share_type, SOURCE(guard_percent), SECOND_FIELD(struct source_config, guard_entries),
	  .fallback = 90, .min = 1, .max = 100, .share_of = "nf_conntrack_max",
	  .help = "reliable delivery is switched off past this fill of the conntrack table" },
	{ "active_timeout", &duration_type, SOURCE(active_timeout_ms),
	  .fallback = 0, .min = 10 * SECOND_MS, .max = DAY_MS, .flags = KEY_ZERO_OFF,
	  .help = "a connection still alive this long after its previous record gets an interim"
		  " record (flowEndReason 2) with its traffic since; off: one record, at the end" },
	{ "walk_interval", &duration_type, SOURCE(walk_interval_ms),
	  .fallback = 0, .min = 100, .max = HOUR_MS, .flags = KEY_AUTO,
	  .help = "with an active timeout, the conntrack table is read this often (auto: a fifth"
		  " of active_timeout, from 1s to 1m); an interim record comes at most this late" },
	{ "filter_protocols", &filter_type, SOURCE(filter_protocols), .flags = KEY_EMPTY_NONE,
	  .help = "only connections of these protocols are exported (none: all)" },
	{ "filter_addresses", &filter_type, SOURCE(filter_addresses), .flags = KEY_EMPTY_NONE,
	  .help = "only connections with an address in one of these prefixes, on either side,"
		  " are exported (none: all)" },
	{ "filter_zones", &filter_type, SOURCE(filter_zones), .flags = KEY_EMPTY_NONE,
	  .help = "only connections in these conntrack zones are exported (none: all)" },
	{ "filter_mark", &filter_type, SOURCE(filter_mark), .flags = KEY_EMPTY_NONE,
	  .help = "only connections whose conntrack mark under the mask is this are exported"
		  " (none: all)" },
	{ "nat_refresh", &duration_type, SOURCE(nat_refresh_ms),
	  .fallback = 0, .min = MINUTE_MS, .max = 7 * DAY_MS, .flags = KEY_ZERO_OFF,
	  .help = "with NAT event logging, a session still alive this long after its last create"
		  " event is logged again as a create marked as a refresh; off: never" },
};

static const struct key export_keys[] = {
	{ "format", &choice_type, EXPORT(format), .choices = format_names, .flags = KEY_REQUIRED,
	  .help = "the records' format, IPFIX (RFC 7011), JSON lines or syslog (RFC 5424)" },
	/* file is implied by a path alone: check_export(). */
	{ "transport", &choice_type, EXPORT(transport), .fallback = EXPORT_TRANSPORT_FILE,
	  .choices = transport_names, .help = "where records go (file when only a path is given)" },
	{ "destination", &address_type, EXPORT(host), SECOND_FIELD(struct export_config, port),
	  .help = "the collector, for transport udp and tcp" },
	{ "path", &path_type, EXPORT(path), .flags = KEY_RELATIVE | KEY_FILE,
	  .help = "the file records are appended to, for transport file; for transport local, the"
		  " syslog socket (default " SYSLOG_LOCAL_PATH ")" },
	{ "flush_interval", &duration_type, EXPORT(flush_interval_ms),
	  .fallback = SECOND_MS, .min = 10, .max = HOUR_MS,
	  .help = "a partly filled message is sent at most this long after its first record" },
	{ "template_refresh", &duration_type, EXPORT(template_refresh_ms),
	  .fallback = 60 * SECOND_MS, .min = SECOND_MS, .max = DAY_MS,
	  .help = "IPFIX and netflow9 over UDP, templates are sent again this often (RFC 7011, 8.4;"
		  " RFC 3954, 9)" },
	/* An IPFIX message carries its length in 16 bits (RFC 7011, 3.1).
	 * Over UDP the default is "auto": check_export(). */
	{ "mtu", &size_type, EXPORT(mtu), .fallback = 65000, .min = 512, .max = 65000, .flags = KEY_AUTO,
	  .help = "the largest message (auto, udp only and its default there: the route's MTU, at most"
		  " 1500, less headers: 1472 bytes to IPv4 collectors, 1452 to IPv6, also on loopback)" },
	{ "observation_domain", &count_type, EXPORT(observation_domain),
	  .fallback = 1, .min = 0, .max = G_MAXUINT32, .help = "the IPFIX Observation Domain ID" },
	{ "statistics", &duration_type, EXPORT(statistics_ms),
	  .fallback = 0, .min = SECOND_MS, .max = DAY_MS, .flags = KEY_ZERO_OFF,
	  .help = "the exporter's statistics are sent this often and at stop (IPFIX: an options"
		  " record, RFC 7011 section 4.3; JSON: an exporter_stats line); off: only losses,"
		  " when they grow" },
	/* No number is IANA's for ctflowd: its own elements go out only under
	 * one the operator holds. */
	{ "enterprise_number", &count_type, EXPORT(enterprise_number),
	  .fallback = 0, .min = 0, .max = G_MAXUINT32,
	  .help = "IPFIX, the private enterprise number ctflowd's own statistics elements are sent"
		  " under (0: they are left out, only standard elements are sent)" },
	{ "zone_vrf", &zone_vrf_type, EXPORT(zone_vrf), .flags = KEY_EMPTY_NONE,
	  .help = "IPFIX ingressVRFID of conntrack zones (ZONE=VRF, ...); other zones: their number" },
	{ "reconnect_min", &duration_type, EXPORT(reconnect_min_ms),
	  .fallback = SECOND_MS, .min = 10, .max = HOUR_MS,
	  .help = "tcp, the shortest wait before reconnecting to a collector" },
	{ "reconnect_max", &duration_type, EXPORT(reconnect_max_ms),
	  .fallback = 60 * SECOND_MS, .min = 10, .max = HOUR_MS,
	  .help = "tcp, the longest wait before reconnecting, not less than reconnect_min" },
	{ "ack_settle", &duration_type, EXPORT(ack_settle_ms),
	  .fallback = 2 * SECOND_MS, .min = 10, .max = 10 * MINUTE_MS, .flags = KEY_ZERO_OFF,
	  .help = "tcp, how long the collector's acknowledgement of a message must stand before"
		  " the message counts as delivered: a collector that stops with messages"
		  " unread resets the connection, and what it acknowledged within this time is"
		  " sent again; one that closes cleanly (as at ctflowd's stop) had read everything"
		  " (0: delivered when acknowledged)" },
	{ "sync", &bool_type, EXPORT(sync), .fallback = FALSE,
	  .help = "file, fdatasync() after every flush" },
	{ "uniflow", &bool_type, EXPORT(uniflow), .fallback = FALSE,
	  .help = "IPFIX, a record per direction instead of one biflow (RFC 5103) per connection" },
	{ "counters", &choice_type, EXPORT(counters), .fallback = EXPORT_COUNTERS_DELTA,
	  .choices = counters_names,
	  .help = "what the counters of a record are: delta (since the connection's previous"
		  " record), total (since it began) or both" },
	{ "template_packets", &count_type, EXPORT(template_packets), .fallback = 20, .min = 0,
	  .max = 1000000,
	  .help = "netflow9, templates are sent again before every this many export packets"
		  " (0: only by template_refresh over udp)" },
	{ "netflow_times", &choice_type, EXPORT(netflow_times), .fallback = NETFLOW_TIMES_ABSOLUTE,
	  .choices = netflow_times_names,
	  .help = "netflow9, flow start and end as absolute milliseconds (152/153, what nfdump,"
		  " nfacctd and Wireshark all decode) or sysUptime milliseconds (22/21)" },
	{ "source_port", &count_type, EXPORT(source_port), .fallback = 0, .min = 0, .max = 65535,
	  .help = "udp, the local port datagrams are sent from (0: the one the kernel picked at"
		  " the first start, kept in the state directory and used again after restarts)" },
	{ "engine_type", &count_type, EXPORT(engine_type), .fallback = 0, .min = 0, .max = 255,
	  .help = "netflow5, the engine type in the header" },
	{ "engine_id", &count_type, EXPORT(engine_id), .fallback = 0, .min = 0, .max = 255,
	  .help = "netflow5, the engine id in the header" },
	{ "syslog_facility", &syslog_code_type, EXPORT(syslog_facility), .fallback = 16,
	  .max = G_N_ELEMENTS(syslog_facility_names) - 2, .choices = syslog_facility_names,
	  .help = "syslog, the facility of the messages (RFC 5424, 6.2.1)" },
	{ "syslog_severity", &syslog_code_type, EXPORT(syslog_severity), .fallback = 6,
	  .max = G_N_ELEMENTS(syslog_severity_names) - 2, .choices = syslog_severity_names,
	  .help = "syslog, the severity of the messages" },
	{ "syslog_app_name", &syslog_name_type, EXPORT(syslog_app_name), .fallback_text = "ctflowd",
	  .max = SYSLOG_APP_NAME_MAX, .help = "syslog, the APP-NAME of the messages" },
	{ "syslog_hostname", &syslog_name_type, EXPORT(syslog_hostname), .flags = KEY_EMPTY_NONE,
	  .max = SYSLOG_HOSTNAME_MAX,
	  .help = "syslog, the HOSTNAME of the messages (none: the host's name)" },
	{ "syslog_sd_id", &sd_id_type, EXPORT(syslog_sd_id), .fallback_text = SYSLOG_DEFAULT_SD_ID,
	  .max = SYSLOG_SD_NAME_MAX,
	  .help = "syslog, the SD-ID of a flow's structured data; 32473 is the documentation"
		  " number of RFC 5612: set your own private enterprise number" },
	{ "syslog_text", &bool_type, EXPORT(syslog_text), .fallback = FALSE,
	  .help = "syslog, the fields also as key=value text in the message, for tools that"
		  " ignore structured data" },
	{ "failover", &export_name_type, EXPORT(failover),
	  .help = "tcp and file, the export that sends this one's records while it cannot be"
		  " reached, until it is back; that export then sends nothing else" },
	{ "marks", &bool_type, EXPORT(marks), .fallback = FALSE,
	  .help = "IPFIX, each record carries the conntrack mark and labels (ctMark, ctLabels),"
		  " elements of ctflowd's own under enterprise_number, which it needs" },
	{ "records", &choice_type, EXPORT(records), .fallback = EXPORT_RECORDS_FLOWS,
	  .choices = records_names,
	  .help = "what is sent: flows, NAT session create and delete events (nat-events, RFC 8158;"
		  " needs events = destroy,new), or both" },
};

/* section_pass keeps a bit per key. */
G_STATIC_ASSERT(G_N_ELEMENTS(daemon_keys) <= 64);
G_STATIC_ASSERT(G_N_ELEMENTS(source_keys) <= 64);
G_STATIC_ASSERT(G_N_ELEMENTS(export_keys) <= 64);
/* Enum fields are stored as 32-bit numbers. */
G_STATIC_ASSERT(sizeof(enum export_format) == sizeof(guint32));
G_STATIC_ASSERT(sizeof(enum export_transport) == sizeof(guint32));
G_STATIC_ASSERT(sizeof(enum spool_sync) == sizeof(guint32));
G_STATIC_ASSERT(sizeof(enum export_counters) == sizeof(guint32));
G_STATIC_ASSERT(sizeof(enum netflow_times) == sizeof(guint32));
G_STATIC_ASSERT(sizeof(enum export_records) == sizeof(guint32));

static void check_export(struct section_pass *sp);

static const struct section_keys daemon_section = {
	"daemon", daemon_keys, G_N_ELEMENTS(daemon_keys), sizeof(struct daemon_config), NULL,
};
static const struct section_keys source_section = {
	"source", source_keys, G_N_ELEMENTS(source_keys), sizeof(struct source_config), NULL,
};
static const struct section_keys export_section = {
	"export NAME", export_keys, G_N_ELEMENTS(export_keys), sizeof(struct export_config), check_export,
};

/* ------------------------------------------------------------------------
 * Sections.
 */

static size_t key_index(const struct section_pass *sp, const char *name)
{
	for (size_t i = 0; i < sp->section->n_keys; i++)
		if (strcmp(sp->section->keys[i].name, name) == 0)
			return i;
	g_assert_not_reached();
}

static gboolean is_given(const struct section_pass *sp, const char *name)
{
	return (sp->given >> key_index(sp, name)) & 1;
}

static gboolean is_bad(const struct section_pass *sp, const char *name)
{
	return (sp->bad >> key_index(sp, name)) & 1;
}

/* Sets defaults, then reads every key of the table that is written. */
static void read_section(struct section_pass *sp)
{
	const struct section_keys *s = sp->section;

	for (size_t i = 0; i < s->n_keys; i++) {
		const struct key *k = &s->keys[i];
		guint64 bit = G_GUINT64_CONSTANT(1) << i;
		g_autofree char *value = NULL;

		key_set_default(k, sp->object);
		if (!get_value(sp->p, sp->group, k->name, &value)) {
			sp->given |= bit;
			sp->bad |= bit;
			continue;
		}
		if (!value) {
			if (k->flags & KEY_REQUIRED) {
				g_autofree char *expected = k->type->expects(k);
				fail(sp->p, CONFIG_ERROR_MISSING, sp->group, k->name, "missing; expected %s", expected);
			}
			continue;
		}
		sp->given |= bit;
		if (!k->type->parse(sp, k, value))
			sp->bad |= bit;
	}
	if (s->check)
		s->check(sp);
}

/* A key written that the transport does not use is an error, not ignored;
 * whatever its value, the key itself is the fault. */
G_GNUC_PRINTF(3, 4)
static void not_used(struct section_pass *sp, const char *key, const char *format, ...)
{
	va_list args;

	forget(sp->p, sp->group, key);
	sp->bad |= G_GUINT64_CONSTANT(1) << key_index(sp, key);
	va_start(args, format);
	failv(sp->p, CONFIG_ERROR_VALUE, sp->group, key, format, args);
	va_end(args);
}

static void check_export_transport(struct section_pass *sp, struct export_config *e)
{
	const char *tname = export_transport_name(e->transport);
	gboolean path = is_given(sp, "path"), destination = is_given(sp, "destination");

	switch (e->transport) {
	case EXPORT_TRANSPORT_UDP:
	case EXPORT_TRANSPORT_TCP:
		if (path)
			not_used(sp, "path", "not used with transport %s (a path is for transport file)", tname);
		if (!destination)
			fail(sp->p, CONFIG_ERROR_MISSING, sp->group, "destination",
			     "missing; transport %s needs HOST:PORT", tname);
		break;
	case EXPORT_TRANSPORT_FILE:
		if (destination)
			not_used(sp, "destination", "not used with transport file (a destination is for udp or tcp)");
		if (!path)
			fail(sp->p, CONFIG_ERROR_MISSING, sp->group, "path", "missing; transport file needs a path");
		break;
	case EXPORT_TRANSPORT_LOCAL:
		if (destination)
			not_used(sp, "destination", "not used with transport local (a destination is for udp or tcp)");
		if (!path)
			store_text(e, offsetof(struct export_config, path), g_strdup(SYSLOG_LOCAL_PATH));
		break;
	case EXPORT_TRANSPORT_STDOUT:
	default:
		if (destination)
			not_used(sp, "destination", "not used with transport %s (a destination is for udp or tcp)",
				 tname);
		if (path)
			not_used(sp, "path", "not used with transport %s (a path is for transport file)", tname);
		break;
	}
}

static void check_export_mtu(struct section_pass *sp, struct export_config *e)
{
	const struct key *k = &sp->section->keys[key_index(sp, "mtu")];

	/* Over UDP a message must fit the path MTU: "auto" (0) takes it from
	 * the route to the collector once the socket is connected. */
	if (!is_given(sp, "mtu")) {
		if (e->transport == EXPORT_TRANSPORT_UDP)
			e->mtu = 0;
		return;
	}
	if (!is_bad(sp, "mtu") && e->mtu == 0 && e->transport != EXPORT_TRANSPORT_UDP) {
		g_autofree char *expected = k->type->expects(k);
		fail(sp->p, CONFIG_ERROR_VALUE, sp->group, "mtu", "\"auto\" is for transport udp; expected %s",
		     expected);
	}
}

static void check_export_reconnect(struct section_pass *sp, const struct export_config *e)
{
	if (is_bad(sp, "reconnect_min") || is_bad(sp, "reconnect_max") ||
	    e->reconnect_max_ms >= e->reconnect_min_ms)
		return;

	g_autofree char *lo = format_duration_short(e->reconnect_min_ms);
	g_autofree char *hi = format_duration_short(e->reconnect_max_ms);
	g_autofree char *text = NULL;
	g_autofree char *q = NULL;
	/* Blame the key that was written: with reconnect_max left at its
	 * default, reconnect_min is the one out of line. */
	gboolean max_written = is_given(sp, "reconnect_max");
	const char *key = max_written ? "reconnect_max" : "reconnect_min";

	if (!get_value(sp->p, sp->group, key, &text) || !text)
		return;
	q = quote(text);
	if (max_written)
		fail(sp->p, CONFIG_ERROR_VALUE, sp->group, key,
		     "expected at least reconnect_min (%s), got %s", lo, q);
	else
		fail(sp->p, CONFIG_ERROR_VALUE, sp->group, key,
		     "expected at most reconnect_max (%s, the default), got %s", hi, q);
}

/* RFC 5103 gives 29305 to reverse elements: own elements under it would
 * read as the reverse of IANA's elements of the same number. */
#define PEN_REVERSE 29305

static void check_export_enterprise(struct section_pass *sp, const struct export_config *e)
{
	if (is_bad(sp, "enterprise_number") || e->enterprise_number != PEN_REVERSE)
		return;
	fail(sp->p, CONFIG_ERROR_VALUE, sp->group, "enterprise_number",
	     "29305 is the enterprise number of RFC 5103 reverse elements; expected one of your own");
}

/* NetFlow is a datagram protocol: a stream has no framing for it, and
 * nfcapd and nfacctd read it over UDP only.  A file holds the datagrams
 * back to back, as they went out. */
static void check_export_netflow(struct section_pass *sp, const struct export_config *e)
{
	gboolean netflow = e->format == EXPORT_FORMAT_NETFLOW9 || e->format == EXPORT_FORMAT_NETFLOW5;

	if (is_bad(sp, "format"))
		return;
	if (netflow && e->transport == EXPORT_TRANSPORT_TCP)
		fail(sp->p, CONFIG_ERROR_VALUE, sp->group, "transport",
		     "tcp is not for format %s (NetFlow has no framing on a stream, and its collectors"
		     " read it over UDP only); expected udp or file", export_format_name(e->format));
	if (netflow && e->counters != EXPORT_COUNTERS_DELTA && !is_bad(sp, "counters"))
		fail(sp->p, CONFIG_ERROR_VALUE, sp->group, "counters",
		     "format %s carries deltas only (a NetFlow collector sums the records of a"
		     " flow); expected delta", export_format_name(e->format));
	if (e->uniflow && e->format == EXPORT_FORMAT_NETFLOW5)
		not_used(sp, "uniflow", "is implied by format netflow5 (a v5 record has one direction)");
	if (netflow && e->statistics_ms && !is_bad(sp, "statistics"))
		not_used(sp, "statistics", "is for formats ipfix and json (NetFlow exports send none)");
	if (netflow && e->enterprise_number && !is_bad(sp, "enterprise_number"))
		not_used(sp, "enterprise_number", "is for format ipfix");
	if (e->zone_vrf && e->format == EXPORT_FORMAT_NETFLOW5 && !is_bad(sp, "zone_vrf"))
		not_used(sp, "zone_vrf", "is not for format netflow5 (a v5 record has no VRF)");
	if (e->format == EXPORT_FORMAT_NETFLOW5 && e->records != EXPORT_RECORDS_FLOWS &&
	    !is_bad(sp, "records"))
		fail(sp->p, CONFIG_ERROR_VALUE, sp->group, "records",
		     "format netflow5 cannot carry NAT session events (a v5 record has no NAT"
		     " fields); expected flows, or format ipfix, netflow9, syslog or json");
	if (e->source_port && e->transport != EXPORT_TRANSPORT_UDP)
		not_used(sp, "source_port", "is for transport udp");
}

/* The value of key @name is its default. */
static gboolean is_default(const struct section_pass *sp, const char *name)
{
	const struct key *k = &sp->section->keys[key_index(sp, name)];

	if (k->type->text)
		return g_strcmp0(load_text(sp->object, k->offset), k->fallback_text) == 0;
	return load_number(sp->object, k->offset, k->size) == k->fallback;
}

/* The syslog keys belong to format syslog, and transport local only takes
 * syslog: the local socket reads nothing else. */
static void check_export_syslog(struct section_pass *sp, const struct export_config *e)
{
	static const char *const keys[] = {
		"syslog_facility", "syslog_severity", "syslog_app_name", "syslog_hostname",
		"syslog_sd_id", "syslog_text",
	};
	const char *fname = export_format_name(e->format);

	if (e->format != EXPORT_FORMAT_SYSLOG) {
		/* defaults pass: config_to_string() writes every key */
		for (gsize i = 0; i < G_N_ELEMENTS(keys); i++)
			if (is_given(sp, keys[i]) && !is_default(sp, keys[i]))
				not_used(sp, keys[i], "is for format syslog, not %s", fname);
		if (e->transport == EXPORT_TRANSPORT_LOCAL && !is_bad(sp, "transport"))
			fail(sp->p, CONFIG_ERROR_VALUE, sp->group, "transport",
			     "local is the local syslog socket, for format syslog, not %s", fname);
		return;
	}
	if (e->uniflow)
		not_used(sp, "uniflow", "is for format ipfix (a syslog message has both directions by name)");
	if (e->statistics_ms)
		not_used(sp, "statistics", "is for format ipfix and json (syslog carries flows only;"
			 " the log has the counters)");
}

/* The mark and labels are not IANA elements: in IPFIX they exist only under
 * an enterprise number; JSON always has them. */
static void check_export_marks(struct section_pass *sp, const struct export_config *e)
{
	if (!e->marks || is_bad(sp, "format"))
		return;
	if (e->format == EXPORT_FORMAT_JSON)
		not_used(sp, "marks", "is for format ipfix (a JSON line always has mark and labels)");
	else if (e->format != EXPORT_FORMAT_IPFIX)
		not_used(sp, "marks", "is for format ipfix");
	else if (!e->enterprise_number && !is_bad(sp, "enterprise_number"))
		fail(sp->p, CONFIG_ERROR_VALUE, sp->group, "marks",
		     "needs enterprise_number: the conntrack mark and labels are sent as elements of"
		     " ctflowd's own, under a private enterprise number you hold");
}

/* The rules between keys of an export, most about its transport. */
static void check_export(struct section_pass *sp)
{
	struct export_config *e = sp->object;

	check_export_reconnect(sp, e);
	check_export_enterprise(sp, e);
	/* With a refused transport, which keys belong is not known. */
	if (is_bad(sp, "transport"))
		return;
	if (!is_given(sp, "transport") && !is_given(sp, "path")) {
		const struct key *k = &sp->section->keys[key_index(sp, "transport")];
		g_autofree char *expected = k->type->expects(k);
		fail(sp->p, CONFIG_ERROR_MISSING, sp->group, "transport",
		     "missing; expected %s (file is implied only by a path)", expected);
		return;
	}
	check_export_transport(sp, e);
	check_export_mtu(sp, e);
	if (e->uniflow && e->format == EXPORT_FORMAT_JSON && !is_bad(sp, "format"))
		not_used(sp, "uniflow", "is for format ipfix (a JSON line has both directions by name)");
	check_export_netflow(sp, e);
	if (!is_bad(sp, "format"))
		check_export_syslog(sp, e);
	check_export_marks(sp, e);
}

enum section_kind { SECTION_DAEMON, SECTION_SOURCE, SECTION_EXPORT, SECTION_UNKNOWN };

/* For [export NAME], *@name is NAME without surrounding blanks (may be ""). */
static enum section_kind classify_section(const char *group, char **name)
{
	*name = NULL;
	if (strcmp(group, "daemon") == 0)
		return SECTION_DAEMON;
	if (strcmp(group, "source") == 0)
		return SECTION_SOURCE;
	if (g_str_has_prefix(group, "export") &&
	    (group[6] == '\0' || group[6] == ' ' || group[6] == '\t')) {
		*name = g_strstrip(g_strdup(group + 6));
		return SECTION_EXPORT;
	}
	return SECTION_UNKNOWN;
}

static gboolean is_known_key(const struct section_keys *s, const char *key)
{
	for (size_t i = 0; i < s->n_keys; i++)
		if (strcmp(s->keys[i].name, key) == 0)
			return TRUE;
	return FALSE;
}

static void check_key(struct parser *p, const char *group, const struct section_keys *s, const char *key)
{
	if (is_known_key(s, key))
		return;
	g_autoptr(GString) list = g_string_new(NULL);
	for (size_t i = 0; i < s->n_keys; i++)
		g_string_append_printf(list, "%s%s", i ? ", " : "", s->keys[i].name);
	fail(p, CONFIG_ERROR_UNKNOWN, group, key, "unknown key; [%s] takes %s", s->shown, list->str);
}

/* The keys of the scan, in file order, and any GKeyFile knows beyond them
 * (g_key_file_get_keys() leaves out "key[locale]" entries, so it cannot be
 * the only list). */
static void check_keys(struct parser *p, const char *group, const struct section_keys *s)
{
	const struct section_layout *layout = g_hash_table_lookup(p->layout.by_name, group);
	g_auto(GStrv) keys = g_key_file_get_keys(p->keys, group, NULL, NULL);

	for (guint i = 0; layout && i < layout->keys->len; i++)
		check_key(p, group, s, g_ptr_array_index(layout->keys, i));
	for (int i = 0; keys && keys[i]; i++)
		if (!layout_has_key(&p->layout, group, keys[i]))
			check_key(p, group, s, keys[i]);
}

static void export_config_free(gpointer data)
{
	struct export_config *e = data;

	if (!e)
		return;
	for (size_t i = 0; i < export_section.n_keys; i++)
		key_free_fields(&export_section.keys[i], e);
	g_free(e->name);
	g_free(e->port_file);
	g_free(e);
}

/* The state file that keeps an export's UDP source port: the name is the
 * export's, with anything but letters, digits, '-', '_' and '.' as '_'. */
static char *port_file_of(const char *state_directory, const char *name)
{
	g_autofree char *safe = g_strdup(name);

	for (char *c = safe; *c; c++)
		if (!g_ascii_isalnum(*c) && *c != '-' && *c != '_' && *c != '.')
			*c = '_';
	g_autofree char *file = g_strconcat("source-port-", safe, NULL);
	return g_build_filename(state_directory, file, NULL);
}

/* [export NAME]: named, once. @names maps the names seen to their lines. */
static void check_export_name(struct parser *p, const char *group, const char *name, GHashTable *names)
{
	gpointer first;

	if (*name == '\0') {
		fail(p, CONFIG_ERROR_MISSING, group, NULL, "the section needs a name, as in [export collector]");
		return;
	}
	if (g_hash_table_lookup_extended(names, name, NULL, &first)) {
		fail(p, CONFIG_ERROR_SYNTAX, group, NULL, "export name \"%s\" given twice (first on line %d)",
		     name, GPOINTER_TO_INT(first));
		return;
	}
	g_hash_table_insert(names, g_strdup(name), GINT_TO_POINTER(layout_line(&p->layout, group, NULL)));
}

static guint find_export(const struct ctflowd_config *config, const char *name)
{
	for (guint i = 0; i < config->exports->len; i++)
		if (strcmp(((struct export_config *)g_ptr_array_index(config->exports, i))->name, name) == 0)
			return i;
	return G_MAXUINT;
}

/*
 * failover ties two exports together: the backup named must exist, be
 * another export, back only this one and have no backup of its own (so no
 * chain, and no cycle, can form).  @groups holds each export's section as
 * GKeyFile names it, for the lines of messages.  Marks each backup standby.
 */
static void check_failover(struct parser *p, struct ctflowd_config *config, GPtrArray *groups)
{
	g_autofree guint *backs = g_new(guint, config->exports->len + 1);

	for (guint i = 0; i < config->exports->len; i++)
		backs[i] = G_MAXUINT;
	for (guint i = 0; i < config->exports->len; i++) {
		struct export_config *e = g_ptr_array_index(config->exports, i);
		const char *group = g_ptr_array_index(groups, i);

		if (!e->failover)
			continue;
		if (e->transport == EXPORT_TRANSPORT_UDP || e->transport == EXPORT_TRANSPORT_STDOUT) {
			fail(p, CONFIG_ERROR_VALUE, group, "failover",
			     "is for transport tcp or file (over %s nothing tells that the destination is down)",
			     export_transport_name(e->transport));
			continue;
		}
		if (strcmp(e->failover, e->name) == 0) {
			fail(p, CONFIG_ERROR_VALUE, group, "failover",
			     "names this export itself; expected another export");
			continue;
		}
		guint b = find_export(config, e->failover);
		if (b == G_MAXUINT) {
			fail(p, CONFIG_ERROR_VALUE, group, "failover", "no [export %s] section; expected the"
			     " name of another export", e->failover);
			continue;
		}
		struct export_config *backup = g_ptr_array_index(config->exports, b);
		const char *bgroup = g_ptr_array_index(groups, b);
		if (backup->failover && strcmp(backup->failover, e->name) == 0) {
			fail(p, CONFIG_ERROR_VALUE, group, "failover",
			     "export %s names this one as its failover (line %d): a cycle; a backup cannot"
			     " have a failover of its own", backup->name,
			     layout_line(&p->layout, bgroup, "failover"));
			continue;
		}
		if (backup->failover) {
			fail(p, CONFIG_ERROR_VALUE, group, "failover",
			     "export %s has a failover of its own (line %d); a backup cannot have one",
			     backup->name, layout_line(&p->layout, bgroup, "failover"));
			continue;
		}
		if (backs[b] != G_MAXUINT) {
			const char *other = g_ptr_array_index(groups, backs[b]);
			fail(p, CONFIG_ERROR_VALUE, group, "failover",
			     "export %s already backs export %s (line %d); a backup serves one export",
			     backup->name,
			     ((struct export_config *)g_ptr_array_index(config->exports, backs[b]))->name,
			     layout_line(&p->layout, other, "failover"));
			continue;
		}
		backs[b] = i;
		backup->standby = TRUE;
	}
}

/* Every section and key of the file, whatever goes wrong on the way. */
static struct ctflowd_config *parse(struct parser *p)
{
	struct ctflowd_config *config = g_new0(struct ctflowd_config, 1);
	g_auto(GStrv) groups = g_key_file_get_groups(p->keys, NULL);
	g_autoptr(GHashTable) names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	gboolean any_export = FALSE;

	config->path = g_strdup(p->origin);
	config->exports = g_ptr_array_new_with_free_func(export_config_free);

	/* [daemon] first, wherever it is in the file: relative export paths
	 * start at its state directory. */
	read_section(&(struct section_pass){ .p = p, .section = &daemon_section, .group = "daemon",
					     .object = &config->daemon });
	read_section(&(struct section_pass){ .p = p, .section = &source_section, .group = "source",
					     .object = &config->source });

	g_autoptr(GPtrArray) export_groups = g_ptr_array_new();

	for (int i = 0; groups[i]; i++) {
		g_autofree char *name = NULL;

		switch (classify_section(groups[i], &name)) {
		case SECTION_DAEMON:
			check_keys(p, groups[i], &daemon_section);
			break;
		case SECTION_SOURCE:
			check_keys(p, groups[i], &source_section);
			break;
		case SECTION_EXPORT: {
			struct export_config *e = g_new0(struct export_config, 1);

			any_export = TRUE;
			check_export_name(p, groups[i], name, names);
			check_keys(p, groups[i], &export_section);
			e->name = g_steal_pointer(&name);
			g_ptr_array_add(config->exports, e);
			g_ptr_array_add(export_groups, groups[i]);
			read_section(&(struct section_pass){ .p = p, .section = &export_section,
							     .group = groups[i], .object = e,
							     .base = config->daemon.state_directory });
			if (e->transport == EXPORT_TRANSPORT_UDP && config->daemon.state_directory)
				e->port_file = port_file_of(config->daemon.state_directory, e->name);
			/* a create event comes from a NEW event; without them
			 * every create would be a late one */
			if (e->records != EXPORT_RECORDS_FLOWS && !config->source.subscribe_new)
				fail(p, CONFIG_ERROR_VALUE, groups[i], "records",
				     "%s needs NEW events: set events = destroy,new in [source]",
				     records_names[e->records]);
			break;
		}
		case SECTION_UNKNOWN:
		default:
			report(p, problem_new(CONFIG_ERROR_UNKNOWN, layout_line(&p->layout, groups[i], NULL),
					      PLACE_LINE, groups[i], NULL, g_strdup_printf(
						"unknown section [%s]; expected [daemon], [source] or [export NAME]",
						groups[i])));
			break;
		}
	}
	if (!any_export)
		fail(p, CONFIG_ERROR_MISSING, NULL, NULL,
		     "no [export NAME] section; at least one destination is required");
	check_failover(p, config, export_groups);
	if (any_export && config->source.nat_refresh_ms && !config_nat_events(config))
		fail(p, CONFIG_ERROR_VALUE, "source", "nat_refresh",
		     "refreshes NAT session events, but no export has records = nat-events or both");
	return config;
}

/* ------------------------------------------------------------------------
 * Loading.
 */

/*
 * GKeyFile has the last word on syntax.  When it refuses the text, the
 * lines the scan found are the problems, and the text without them is read
 * on so that one run shows every fault.  Repeated keys are read from the
 * text without the repetitions, so that a value and the line a message
 * names are the same one.
 */
static gboolean load_keys(struct parser *p, const char *data)
{
	g_autoptr(GError) local = NULL;
	gboolean loaded = g_key_file_load_from_data(p->keys, data, strlen(data), G_KEY_FILE_NONE, &local);

	if (!loaded && p->layout.syntax->len == 0) {
		fail(p, CONFIG_ERROR_SYNTAX, NULL, NULL, "syntax error: %s", local->message);
		return FALSE;
	}
	if (!loaded)
		report_all(p, p->layout.syntax);
	gboolean reload = !loaded || (p->layout.repeats->len > 0 && p->layout.syntax->len == 0);
	report_all(p, p->layout.repeats);
	if (!reload)
		return TRUE;

	g_clear_error(&local);
	g_key_file_unref(p->keys);
	p->keys = g_key_file_new();
	return g_key_file_load_from_data(p->keys, p->layout.kept->str, p->layout.kept->len,
					 G_KEY_FILE_NONE, NULL);
}

struct ctflowd_config *config_load_data(const char *data, const char *origin, GError **error)
{
	struct parser p = { .origin = origin };
	struct ctflowd_config *config = NULL;

	g_return_val_if_fail(data != NULL, NULL);
	g_return_val_if_fail(origin != NULL, NULL);
	g_return_val_if_fail(error == NULL || *error == NULL, NULL);

	p.problems = g_ptr_array_new_with_free_func(problem_free);
	p.keys = g_key_file_new();
	layout_scan(&p.layout, data);
	if (load_keys(&p, data))
		config = parse(&p);
	if (p.problems->len > 0) {
		set_error_from_problems(&p, error);
		g_clear_pointer(&config, config_free);
	}
	g_key_file_unref(p.keys);
	g_ptr_array_unref(p.problems);
	layout_clear(&p.layout);
	return config;
}

/* Read by hand rather than with g_file_get_contents() to report the bare
 * reason (the message already starts with the file name) and to stop early
 * on something that cannot be a configuration file. */
static char *read_config_file(const char *path, GError **error)
{
	g_autoptr(GString) text = g_string_new(NULL);
	char chunk[8192];
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		goto failed;
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int saved = errno;
			close(fd);
			errno = saved;
			goto failed;
		}
		if (n == 0)
			break;
		if (text->len + (size_t)n > CONFIG_MAX_BYTES) {
			close(fd);
			g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_IO,
				    "%s: cannot read: larger than %d bytes, not a configuration file",
				    path, CONFIG_MAX_BYTES);
			return NULL;
		}
		g_string_append_len(text, chunk, n);
	}
	close(fd);

	const char *nul = memchr(text->str, '\0', text->len);
	if (nul) {
		int line = 1;
		for (const char *c = text->str; c < nul; c++)
			line += *c == '\n';
		g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_SYNTAX,
			    "%s:%d: syntax error: a NUL byte; this is not a text file", path, line);
		return NULL;
	}
	return g_string_free(g_steal_pointer(&text), FALSE);

failed:
	g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_IO, "%s: cannot read: %s", path, g_strerror(errno));
	return NULL;
}

struct ctflowd_config *config_load(const char *path, GError **error)
{
	g_autofree char *data = NULL;

	g_return_val_if_fail(path != NULL, NULL);

	data = read_config_file(path, error);
	if (!data)
		return NULL;
	return config_load_data(data, path, error);
}

/* ------------------------------------------------------------------------
 * Writing it back.
 */

static void print_section(GString *out, const struct section_keys *s, const void *object)
{
	for (size_t i = 0; i < s->n_keys; i++)
		s->keys[i].type->print(out, &s->keys[i], object);
}

char *config_to_string(const struct ctflowd_config *config)
{
	g_return_val_if_fail(config != NULL, NULL);

	GString *out = g_string_new(NULL);

	/* No comment naming the origin: the output, saved, must load and print
	 * back byte for byte. */
	g_string_append(out, "[daemon]\n");
	print_section(out, &daemon_section, &config->daemon);
	g_string_append(out, "\n[source]\n");
	print_section(out, &source_section, &config->source);
	for (guint i = 0; config->exports && i < config->exports->len; i++) {
		const struct export_config *e = g_ptr_array_index(config->exports, i);

		g_string_append_printf(out, "\n[export %s]\n", e->name);
		print_section(out, &export_section, e);
	}
	return g_string_free(out, FALSE);
}

char *config_describe_keys(void)
{
	static const struct section_keys *const sections[] = {
		&daemon_section, &source_section, &export_section,
	};
	GString *out = g_string_new(NULL);

	for (gsize i = 0; i < G_N_ELEMENTS(sections); i++) {
		const struct section_keys *s = sections[i];
		g_autofree void *defaults = g_malloc0(s->object_size);

		g_string_append_printf(out, "%s[%s]\n", i ? "\n" : "", s->shown);
		for (size_t j = 0; j < s->n_keys; j++) {
			const struct key *k = &s->keys[j];
			g_autofree char *expected = k->type->expects(k);
			gsize before;

			g_string_append_printf(out, "# %s: %s. Takes %s.\n", k->name, k->help, expected);
			key_set_default(k, defaults);
			before = out->len;
			if (!(k->flags & KEY_REQUIRED))
				k->type->print(out, k, defaults);
			if (out->len == before)
				g_string_append_printf(out, "#%s = (%s)\n", k->name,
						       (k->flags & KEY_REQUIRED) ? "required" : "no default");
			key_free_fields(k, defaults);
		}
	}
	return g_string_free(out, FALSE);
}

void config_free(struct ctflowd_config *config)
{
	if (!config)
		return;
	for (size_t i = 0; i < daemon_section.n_keys; i++)
		key_free_fields(&daemon_section.keys[i], &config->daemon);
	for (size_t i = 0; i < source_section.n_keys; i++)
		key_free_fields(&source_section.keys[i], &config->source);
	g_free(config->path);
	if (config->exports)
		g_ptr_array_unref(config->exports);
	g_free(config);
}
