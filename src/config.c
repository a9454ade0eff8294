/*
 * config.c - reads the INI configuration with GKeyFile and turns it into
 * struct ctflowd_config, refusing anything it does not understand.
 *
 * GKeyFile parses values and escapes, but it forgets where things were and
 * quietly merges repeated sections and keeps the last of repeated keys.  So
 * the text is also scanned here, line by line, to find the line of every
 * section and key (for messages) and to reject repetitions.
 */
#include "config-build.h"
#include "ctflowd/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
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

static const char *const daemon_keys[] = {
	"state_directory", "pid_file", "stats_interval", "spool_max", "spool_sync",
	"handover_timeout", NULL,
};

static const char *const source_keys[] = {
	"netns", "receive_buffer", "reliable", "events", "manage_sysctls",
	"dedup_window", "resync_delay", "guard", NULL,
};

static const char *const export_keys[] = {
	"format", "transport", "destination", "path", "flush_interval",
	"template_refresh", "mtu", "observation_domain", "reconnect_min",
	"reconnect_max", "sync", NULL,
};

/* Indexed by enum export_format / enum export_transport. */
static const char *const format_names[] = { "ipfix", "json", NULL };
static const char *const transport_names[] = { "udp", "tcp", "file", "stdout", NULL };

const char *export_format_name(enum export_format format)
{
	if ((unsigned)format < G_N_ELEMENTS(format_names) - 1)
		return format_names[format];
	return "unknown";
}

const char *export_transport_name(enum export_transport transport)
{
	if ((unsigned)transport < G_N_ELEMENTS(transport_names) - 1)
		return transport_names[transport];
	return "unknown";
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
	int bad_line;           /* first line GKeyFile will refuse; 0: none seen */
	char *repeated;         /* message for the first repeated section or key */
	int repeated_line;
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
	g_clear_pointer(&layout->repeated, g_free);
}

static void layout_note_repeat(struct layout *layout, int line, char *message)
{
	if (layout->repeated) {
		g_free(message);
		return;
	}
	layout->repeated = message;
	layout->repeated_line = line;
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

/*
 * Classifies every line the way GKeyFile does.  Lines it would refuse are
 * only remembered (GKeyFile reports those); repeated sections and keys, which
 * it would accept, are remembered as this module's own error.
 */
static void layout_scan(struct layout *layout, const char *data)
{
	g_auto(GStrv) lines = g_strsplit(data, "\n", -1);
	struct section_layout *current = NULL;

	layout->sections = g_ptr_array_new_with_free_func(section_layout_free);
	layout->by_name = g_hash_table_new(g_str_hash, g_str_equal);

	for (int i = 0; lines[i]; i++) {
		int line = i + 1;
		char *text = lines[i];
		size_t len;

		while (g_ascii_isspace(*text))
			text++;
		len = strlen(text);
		if (len > 0 && text[len - 1] == '\r')
			text[--len] = '\0';
		if (len == 0 || text[0] == '#')
			continue;

		if (text[0] == '[') {
			const char *close = strchr(text, ']');
			const char *rest;

			if (!close) {
				if (!layout->bad_line)
					layout->bad_line = line;
				continue;
			}
			for (rest = close + 1; *rest == ' ' || *rest == '\t'; rest++)
				;
			if (*rest != '\0' || !is_group_name(text + 1, (size_t)(close - text - 1))) {
				if (!layout->bad_line)
					layout->bad_line = line;
				continue;
			}

			char *name = g_strndup(text + 1, (size_t)(close - text - 1));
			struct section_layout *earlier = g_hash_table_lookup(layout->by_name, name);
			if (earlier) {
				layout_note_repeat(layout, line, g_strdup_printf(
					"section [%s] given twice (first on line %d)", name, earlier->line));
				/* Keys of the repetition go to the first, as in GKeyFile. */
				current = earlier;
				g_free(name);
				continue;
			}
			current = g_new0(struct section_layout, 1);
			current->name = name;
			current->line = line;
			current->keys = g_ptr_array_new();
			current->key_lines = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
			g_ptr_array_add(layout->sections, current);
			g_hash_table_insert(layout->by_name, current->name, current);
			continue;
		}

		const char *equals = strchr(text, '=');
		if (!equals || equals == text || !current) {
			if (!layout->bad_line)
				layout->bad_line = line;
			continue;
		}
		char *key = g_strchomp(g_strndup(text, (size_t)(equals - text)));
		if (!is_key_name(key)) {
			if (!layout->bad_line)
				layout->bad_line = line;
			g_free(key);
			continue;
		}
		gpointer first;
		if (g_hash_table_lookup_extended(current->key_lines, key, NULL, &first)) {
			layout_note_repeat(layout, line, g_strdup_printf(
				"[%s] %s: given twice (first on line %d)",
				current->name, key, GPOINTER_TO_INT(first)));
			g_free(key);
			continue;
		}
		g_hash_table_insert(current->key_lines, key, GINT_TO_POINTER(line));
		g_ptr_array_add(current->keys, key);
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

static char *format_duration_short(guint ms)
{
	if (ms != 0 && ms % HOUR_MS == 0)
		return g_strdup_printf("%uh", ms / HOUR_MS);
	if (ms != 0 && ms % MINUTE_MS == 0)
		return g_strdup_printf("%um", ms / MINUTE_MS);
	if (ms % SECOND_MS == 0)
		return g_strdup_printf("%us", ms / SECOND_MS);
	return g_strdup_printf("%ums", ms);
}

/* How config_to_string() writes a duration: whole seconds when exact. */
static char *format_duration(guint ms)
{
	if (ms % SECOND_MS == 0)
		return g_strdup_printf("%us", ms / SECOND_MS);
	return g_strdup_printf("%ums", ms);
}

struct parser {
	const char *origin;
	GKeyFile *keys;
	struct layout layout;
	GError **error;
};

static void set_error(GError **error, int code, const char *origin, int line, const char *message)
{
	if (line > 0)
		g_set_error(error, CONFIG_ERROR, code, "%s:%d: %s", origin, line, message);
	else
		g_set_error(error, CONFIG_ERROR, code, "%s: %s", origin, message);
}

/*
 * Fails with "ORIGIN:LINE: [GROUP] KEY: message".  The line is the key's, or
 * its section's when the key is absent (a missing key), or left out.
 * Always returns FALSE so that callers can "return fail(...)".
 */
G_GNUC_PRINTF(5, 6)
static gboolean fail(struct parser *p, int code, const char *group, const char *key,
		     const char *format, ...)
{
	g_autofree char *what = NULL;
	g_autofree char *message = NULL;
	va_list args;

	va_start(args, format);
	what = g_strdup_vprintf(format, args);
	va_end(args);

	if (group && key)
		message = g_strdup_printf("[%s] %s: %s", group, key, what);
	else if (group)
		message = g_strdup_printf("[%s]: %s", group, what);
	else
		message = g_steal_pointer(&what);
	set_error(p->error, code, p->origin, layout_line(&p->layout, group, key), message);
	return FALSE;
}

/* ------------------------------------------------------------------------
 * Values.
 */

/*
 * The value of @key with escapes undone, or NULL when absent.  Trailing blanks
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

static enum number_result parse_size(const char *text, guint64 *bytes)
{
	return parse_with_unit(text, size_units, bytes);
}

static enum number_result parse_duration(const char *text, guint *ms)
{
	guint64 value;
	enum number_result r = parse_with_unit(text, duration_units, &value);

	if (r != NUMBER_OK)
		return r;
	if (value > G_MAXUINT)
		return NUMBER_TOO_BIG;
	*ms = (guint)value;
	return NUMBER_OK;
}

static gboolean parse_size_key(struct parser *p, const char *group, const char *key,
			       guint64 fallback, guint64 min, guint64 max, guint64 *out)
{
	g_autofree char *value = NULL;
	g_autofree char *q = NULL;
	g_autofree char *lo = format_size_short(min);
	g_autofree char *hi = format_size_short(max);
	guint64 bytes = 0;
	enum number_result r;

	if (!get_value(p, group, key, &value))
		return FALSE;
	if (!value) {
		*out = fallback;
		return TRUE;
	}
	q = quote(value);
	r = parse_size(value, &bytes);
	if (r == NUMBER_BAD)
		return fail(p, CONFIG_ERROR_VALUE, group, key,
			    "expected a size in bytes, optionally with K, M or G (such as 16384, 16K, 8M, 1G), got %s", q);
	if (r == NUMBER_TOO_BIG || bytes < min || bytes > max) {
		if (max == G_MAXUINT64)
			return fail(p, CONFIG_ERROR_VALUE, group, key,
				    "expected a size of at least %s, got %s", lo, q);
		return fail(p, CONFIG_ERROR_VALUE, group, key,
			    "expected a size from %s to %s, got %s", lo, hi, q);
	}
	*out = bytes;
	return TRUE;
}

/* @zero_means_off: 0 is accepted below @min, meaning "never". */
static gboolean parse_duration_key(struct parser *p, const char *group, const char *key,
				   guint fallback, guint min, guint max, gboolean zero_means_off,
				   guint *out)
{
	g_autofree char *value = NULL;
	g_autofree char *q = NULL;
	g_autofree char *lo = format_duration_short(min);
	g_autofree char *hi = format_duration_short(max);
	guint ms = 0;
	enum number_result r;

	if (!get_value(p, group, key, &value))
		return FALSE;
	if (!value) {
		*out = fallback;
		return TRUE;
	}
	q = quote(value);
	r = parse_duration(value, &ms);
	if (r == NUMBER_BAD)
		return fail(p, CONFIG_ERROR_VALUE, group, key,
			    "expected a duration: a number of seconds, or with ms, s, m or h (such as 500ms, 2s, 1m), got %s", q);
	if (r == NUMBER_OK && zero_means_off && ms == 0) {
		*out = 0;
		return TRUE;
	}
	if (r == NUMBER_TOO_BIG || ms < min || ms > max)
		return fail(p, CONFIG_ERROR_VALUE, group, key,
			    "expected %sa duration from %s to %s, got %s",
			    zero_means_off ? "0 (off) or " : "", lo, hi, q);
	*out = ms;
	return TRUE;
}

static gboolean parse_count_key(struct parser *p, const char *group, const char *key,
				guint64 fallback, guint64 min, guint64 max, guint64 *out)
{
	static const struct unit no_units[] = { { "", 1 }, { NULL, 0 } };
	g_autofree char *value = NULL;
	g_autofree char *q = NULL;
	guint64 n = 0;
	enum number_result r;

	if (!get_value(p, group, key, &value))
		return FALSE;
	if (!value) {
		*out = fallback;
		return TRUE;
	}
	q = quote(value);
	r = parse_with_unit(value, no_units, &n);
	if (r != NUMBER_OK || n < min || n > max)
		return fail(p, CONFIG_ERROR_VALUE, group, key,
			    "expected a whole number from %" G_GUINT64_FORMAT " to %" G_GUINT64_FORMAT ", got %s",
			    min, max, q);
	*out = n;
	return TRUE;
}

static gboolean parse_bool_key(struct parser *p, const char *group, const char *key,
			       gboolean fallback, gboolean *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1", NULL };
	static const char *const no[] = { "no", "false", "off", "0", NULL };
	g_autofree char *value = NULL;

	if (!get_value(p, group, key, &value))
		return FALSE;
	if (!value) {
		*out = fallback;
		return TRUE;
	}
	for (int i = 0; yes[i]; i++) {
		if (g_ascii_strcasecmp(value, yes[i]) == 0) {
			*out = TRUE;
			return TRUE;
		}
		if (g_ascii_strcasecmp(value, no[i]) == 0) {
			*out = FALSE;
			return TRUE;
		}
	}
	g_autofree char *q = quote(value);
	return fail(p, CONFIG_ERROR_VALUE, group, key, "expected yes or no, got %s", q);
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

/* *@out is left alone (the caller's default) when the key is absent and
 * *@present says so; a missing required key is the caller's business. */
static gboolean parse_choice_key(struct parser *p, const char *group, const char *key,
				 const char *const *names, int *out, gboolean *present)
{
	g_autofree char *value = NULL;

	if (!get_value(p, group, key, &value))
		return FALSE;
	*present = value != NULL;
	if (!value)
		return TRUE;
	for (int i = 0; names[i]; i++) {
		if (g_ascii_strcasecmp(value, names[i]) == 0) {
			*out = i;
			return TRUE;
		}
	}
	g_autofree char *expected = describe_choices(names);
	g_autofree char *q = quote(value);
	return fail(p, CONFIG_ERROR_VALUE, group, key, "expected %s, got %s", expected, q);
}

/* An absolute path, lexically cleaned ("/a//b/../c/" is "/a/c"); @base
 * resolves a relative one, and without @base a relative one is an error. */
static gboolean parse_path_value(struct parser *p, const char *group, const char *key,
				 const char *value, const char *base, char **out)
{
	g_autofree char *q = quote(value);

	if (*value == '\0')
		return fail(p, CONFIG_ERROR_VALUE, group, key, "expected a path, got %s", q);
	if (!base && !g_path_is_absolute(value))
		return fail(p, CONFIG_ERROR_VALUE, group, key,
			    "expected an absolute path (starting with /), got %s", q);
	*out = g_canonicalize_filename(value, base);
	return TRUE;
}

/* ------------------------------------------------------------------------
 * Sections.
 */

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

static gboolean check_key(struct parser *p, const char *group, const char *shown,
			  const char *const *known, const char *key)
{
	if (g_strv_contains(known, key))
		return TRUE;
	g_autofree char *list = g_strjoinv(", ", (char **)known);
	return fail(p, CONFIG_ERROR_UNKNOWN, group, key, "unknown key; [%s] takes %s", shown, list);
}

/* The keys of the scan come first, to report the first unknown key in file
 * order and because g_key_file_get_keys() leaves out "key[locale]" entries;
 * GKeyFile's own list is checked too in case the two ever disagree. */
static gboolean check_keys(struct parser *p, const char *group, const char *shown,
			   const char *const *known)
{
	const struct section_layout *s = g_hash_table_lookup(p->layout.by_name, group);
	g_auto(GStrv) keys = g_key_file_get_keys(p->keys, group, NULL, NULL);

	for (guint i = 0; s && i < s->keys->len; i++)
		if (!check_key(p, group, shown, known, g_ptr_array_index(s->keys, i)))
			return FALSE;
	for (int i = 0; keys && keys[i]; i++)
		if (!check_key(p, group, shown, known, keys[i]))
			return FALSE;
	return TRUE;
}

/* Every section known, every export named once, every key known: checked
 * before any value so that a typo in a key is not reported as a missing key. */
static gboolean check_structure(struct parser *p)
{
	g_auto(GStrv) groups = g_key_file_get_groups(p->keys, NULL);
	g_autoptr(GHashTable) names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	gboolean any_export = FALSE;

	for (int i = 0; groups[i]; i++) {
		g_autofree char *name = NULL;
		const char *const *known = NULL;

		switch (classify_section(groups[i], &name)) {
		case SECTION_DAEMON:
			known = daemon_keys;
			break;
		case SECTION_SOURCE:
			known = source_keys;
			break;
		case SECTION_EXPORT:
			if (*name == '\0')
				return fail(p, CONFIG_ERROR_MISSING, groups[i], NULL,
					    "the section needs a name, as in [export collector]");
			gpointer first;
			if (g_hash_table_lookup_extended(names, name, NULL, &first))
				return fail(p, CONFIG_ERROR_SYNTAX, groups[i], NULL,
					    "export name \"%s\" given twice (first on line %d)",
					    name, GPOINTER_TO_INT(first));
			g_hash_table_insert(names, g_strdup(name),
					    GINT_TO_POINTER(layout_line(&p->layout, groups[i], NULL)));
			any_export = TRUE;
			known = export_keys;
			break;
		case SECTION_UNKNOWN:
		default: {
			g_autofree char *message = g_strdup_printf(
				"unknown section [%s]; expected [daemon], [source] or [export NAME]",
				groups[i]);
			set_error(p->error, CONFIG_ERROR_UNKNOWN, p->origin,
				  layout_line(&p->layout, groups[i], NULL), message);
			return FALSE;
		}
		}
		if (!check_keys(p, groups[i], known == export_keys ? "export NAME" : groups[i], known))
			return FALSE;
	}
	if (!any_export) {
		set_error(p->error, CONFIG_ERROR_MISSING, p->origin, 0,
			  "no [export NAME] section; at least one destination is required");
		return FALSE;
	}
	return TRUE;
}

static const char *const spool_sync_names[] = { "none", "batch", "record" };

static gboolean parse_spool_sync(struct parser *p, const char *g, enum spool_sync *out)
{
	g_autofree char *value = NULL;

	if (!get_value(p, g, "spool_sync", &value))
		return FALSE;
	*out = SPOOL_SYNC_BATCH;
	if (!value)
		return TRUE;
	for (guint i = 0; i < G_N_ELEMENTS(spool_sync_names); i++) {
		if (g_ascii_strcasecmp(value, spool_sync_names[i]) == 0) {
			*out = (enum spool_sync)i;
			return TRUE;
		}
	}
	g_autofree char *q = quote(value);
	return fail(p, CONFIG_ERROR_VALUE, g, "spool_sync",
		    "expected one of none, batch, record, got %s", q);
}

static gboolean parse_daemon(struct parser *p, struct daemon_config *d)
{
	const char *g = "daemon";
	g_autofree char *state = NULL;
	g_autofree char *pid = NULL;

	if (!get_value(p, g, "state_directory", &state))
		return FALSE;
	/* Relative export paths are resolved against it and must come out
	 * absolute, whatever the daemon's working directory turns out to be. */
	if (!parse_path_value(p, g, "state_directory", state ? state : LOCALSTATEDIR "/lib/ctflowd",
			      NULL, &d->state_directory))
		return FALSE;

	if (!get_value(p, g, "pid_file", &pid))
		return FALSE;
	/* Empty means none, so that config_to_string() can write "pid_file =". */
	if (pid && *pid != '\0' && !parse_path_value(p, g, "pid_file", pid, NULL, &d->pid_file))
		return FALSE;

	return parse_duration_key(p, g, "stats_interval", 60 * SECOND_MS, SECOND_MS, DAY_MS, TRUE,
				  &d->stats_interval_ms) &&
	       parse_size_key(p, g, "spool_max", 256 * MIB, MIB, G_MAXUINT64, &d->spool_max) &&
	       parse_duration_key(p, g, "handover_timeout", 60 * SECOND_MS, SECOND_MS, HOUR_MS,
				  TRUE, &d->handover_timeout_ms) &&
	       parse_spool_sync(p, g, &d->spool_sync);
}

/* A name under /run/netns or an absolute path such as /proc/PID/ns/net. */
static gboolean parse_netns(struct parser *p, const char *group, const char *value, char **out)
{
	if (*value == '\0')
		return TRUE;
	if (strchr(value, '/') ? !g_path_is_absolute(value)
			       : strcmp(value, ".") == 0 || strcmp(value, "..") == 0) {
		g_autofree char *q = quote(value);
		return fail(p, CONFIG_ERROR_VALUE, group, "netns",
			    "expected a name under /run/netns or an absolute path, got %s", q);
	}
	*out = g_strdup(value);
	return TRUE;
}

static gboolean parse_events(struct parser *p, const char *group, gboolean *subscribe_new)
{
	g_autofree char *value = NULL;
	gboolean destroy = FALSE, new = FALSE;

	if (!get_value(p, group, "events", &value))
		return FALSE;
	*subscribe_new = FALSE;
	if (!value)
		return TRUE;

	g_auto(GStrv) items = g_strsplit(value, ",", -1);
	g_autofree char *q = quote(value);
	for (int i = 0; items[i]; i++) {
		const char *item = g_strstrip(items[i]);
		if (g_ascii_strcasecmp(item, "destroy") == 0)
			destroy = TRUE;
		else if (g_ascii_strcasecmp(item, "new") == 0)
			new = TRUE;
		else
			return fail(p, CONFIG_ERROR_VALUE, group, "events",
				    "expected destroy or destroy,new, got %s", q);
	}
	/* Only DESTROY carries the final counters; NEW alone yields no flows. */
	if (!destroy)
		return fail(p, CONFIG_ERROR_VALUE, group, "events",
			    "expected destroy or destroy,new (destroy events carry the counters), got %s", q);
	*subscribe_new = new;
	return TRUE;
}

/* "90%" of nf_conntrack_max, an entry count, or "off". */
static gboolean parse_guard(struct parser *p, const char *g, struct source_config *s)
{
	g_autofree char *value = NULL;

	if (!get_value(p, g, "guard", &value))
		return FALSE;
	s->guard_percent = 90;
	s->guard_entries = 0;
	if (!value)
		return TRUE;
	if (g_ascii_strcasecmp(value, "off") == 0) {
		s->guard_percent = 0;
		return TRUE;
	}
	g_autofree char *q = quote(value);
	char *end = NULL;
	errno = 0;
	guint64 n = g_ascii_strtoull(value, &end, 10);
	if (end == value || errno || !g_ascii_isdigit(value[0]))
		goto bad;
	if (g_strcmp0(end, "%") == 0) {
		if (n < 1 || n > 100)
			return fail(p, CONFIG_ERROR_VALUE, g, "guard",
				    "expected a percentage from 1%% to 100%%, got %s", q);
		s->guard_percent = (guint)n;
		return TRUE;
	}
	if (*end || n < 1)
		goto bad;
	s->guard_entries = n;
	s->guard_percent = 0;
	return TRUE;
bad:
	return fail(p, CONFIG_ERROR_VALUE, g, "guard",
		    "expected a share of nf_conntrack_max (such as 90%%), a number of entries, "
		    "or off, got %s",
		    q);
}

static gboolean parse_source(struct parser *p, struct source_config *s)
{
	const char *g = "source";
	g_autofree char *netns = NULL;
	guint64 dedup;

	if (!get_value(p, g, "netns", &netns))
		return FALSE;
	if (netns && !parse_netns(p, g, netns, &s->netns))
		return FALSE;
	if (!parse_size_key(p, g, "receive_buffer", 8 * MIB, 4096, GIB, &s->receive_buffer) ||
	    !parse_bool_key(p, g, "reliable", TRUE, &s->reliable) ||
	    !parse_events(p, g, &s->subscribe_new) ||
	    !parse_bool_key(p, g, "manage_sysctls", TRUE, &s->manage_sysctls) ||
	    !parse_count_key(p, g, "dedup_window", 262144, 1024, 67108864, &dedup) ||
	    !parse_duration_key(p, g, "resync_delay", 2 * SECOND_MS, 0, HOUR_MS, FALSE,
				&s->resync_delay_ms) ||
	    !parse_guard(p, g, s))
		return FALSE;
	s->dedup_window = (guint)dedup;
	return TRUE;
}

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

/* "HOST:PORT" or "[IPv6]:PORT" (IPv6 may carry a %zone). */
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

static void export_config_free(gpointer data)
{
	struct export_config *e = data;

	if (!e)
		return;
	g_free(e->name);
	g_free(e->host);
	g_free(e->port);
	g_free(e->path);
	g_free(e);
}

static gboolean parse_export(struct parser *p, const char *g, const char *state_directory,
			     struct export_config *e)
{
	g_autofree char *path = NULL;
	g_autofree char *destination = NULL;
	int format = 0, transport = EXPORT_TRANSPORT_FILE;
	gboolean has_format, has_transport;

	if (!parse_choice_key(p, g, "format", format_names, &format, &has_format))
		return FALSE;
	if (!has_format)
		return fail(p, CONFIG_ERROR_MISSING, g, "format", "missing; expected ipfix or json");
	e->format = format;

	if (!get_value(p, g, "path", &path) || !get_value(p, g, "destination", &destination) ||
	    !parse_choice_key(p, g, "transport", transport_names, &transport, &has_transport))
		return FALSE;
	if (!has_transport && !path)
		return fail(p, CONFIG_ERROR_MISSING, g, "transport",
			    "missing; expected one of udp, tcp, file, stdout (file is implied only by a path)");
	e->transport = transport;

	const char *tname = export_transport_name(e->transport);
	switch (e->transport) {
	case EXPORT_TRANSPORT_UDP:
	case EXPORT_TRANSPORT_TCP:
		if (path)
			return fail(p, CONFIG_ERROR_VALUE, g, "path",
				    "not used with transport %s (a path is for transport file)", tname);
		if (!destination)
			return fail(p, CONFIG_ERROR_MISSING, g, "destination",
				    "missing; transport %s needs HOST:PORT", tname);
		if (!parse_destination(destination, &e->host, &e->port)) {
			g_autofree char *q = quote(destination);
			return fail(p, CONFIG_ERROR_VALUE, g, "destination",
				    "expected HOST:PORT with a port from 1 to 65535, an IPv6 address "
				    "in brackets as in [::1]:4739, got %s", q);
		}
		break;
	case EXPORT_TRANSPORT_FILE:
		if (destination)
			return fail(p, CONFIG_ERROR_VALUE, g, "destination",
				    "not used with transport file (a destination is for udp or tcp)");
		if (!path)
			return fail(p, CONFIG_ERROR_MISSING, g, "path", "missing; transport file needs a path");
		if (g_str_has_suffix(path, "/")) {
			g_autofree char *q = quote(path);
			return fail(p, CONFIG_ERROR_VALUE, g, "path", "expected a file, not a directory, got %s", q);
		}
		if (!parse_path_value(p, g, "path", path, state_directory, &e->path))
			return FALSE;
		break;
	case EXPORT_TRANSPORT_STDOUT:
	default:
		if (destination)
			return fail(p, CONFIG_ERROR_VALUE, g, "destination",
				    "not used with transport %s (a destination is for udp or tcp)", tname);
		if (path)
			return fail(p, CONFIG_ERROR_VALUE, g, "path",
				    "not used with transport %s (a path is for transport file)", tname);
		break;
	}

	guint64 mtu = 0, domain;
	/* An IPFIX message carries its length in 16 bits (RFC 7011, 3.1).  Over
	 * UDP a message must fit the path MTU: "auto" (0) takes it from the
	 * route to the collector once the socket is connected. */
	guint64 mtu_default = e->transport == EXPORT_TRANSPORT_UDP ? 0 : 65000;
	g_autofree char *mtu_text = NULL;
	if (!get_value(p, g, "mtu", &mtu_text))
		return FALSE;
	gboolean mtu_auto = mtu_text ? g_ascii_strcasecmp(mtu_text, "auto") == 0
				     : mtu_default == 0;
	if (mtu_auto && e->transport != EXPORT_TRANSPORT_UDP)
		return fail(p, CONFIG_ERROR_VALUE, g, "mtu",
			    "\"auto\" is for transport udp; expected a size from 512 to 65000");
	if ((!mtu_auto && !parse_size_key(p, g, "mtu", mtu_default, 512, 65000, &mtu)) ||
	    !parse_duration_key(p, g, "flush_interval", SECOND_MS, 10, HOUR_MS, FALSE,
				&e->flush_interval_ms) ||
	    !parse_duration_key(p, g, "template_refresh", 60 * SECOND_MS, SECOND_MS, DAY_MS, FALSE,
				&e->template_refresh_ms) ||
	    !parse_count_key(p, g, "observation_domain", 1, 0, G_MAXUINT32, &domain) ||
	    !parse_duration_key(p, g, "reconnect_min", SECOND_MS, 10, HOUR_MS, FALSE,
				&e->reconnect_min_ms) ||
	    !parse_duration_key(p, g, "reconnect_max", 60 * SECOND_MS, 10, HOUR_MS, FALSE,
				&e->reconnect_max_ms) ||
	    !parse_bool_key(p, g, "sync", FALSE, &e->sync))
		return FALSE;
	e->mtu = (guint)mtu;
	e->observation_domain = (guint32)domain;

	if (e->reconnect_max_ms < e->reconnect_min_ms) {
		g_autofree char *lo = format_duration_short(e->reconnect_min_ms);
		g_autofree char *hi = format_duration_short(e->reconnect_max_ms);
		g_autofree char *text = NULL;
		g_autofree char *q = NULL;
		/* Blame the key that was written: with reconnect_max left at its
		 * default, reconnect_min is the one out of line. */
		gboolean max_written = g_key_file_has_key(p->keys, g, "reconnect_max", NULL);
		const char *key = max_written ? "reconnect_max" : "reconnect_min";

		if (!get_value(p, g, key, &text))
			return FALSE;
		q = quote(text);
		if (max_written)
			return fail(p, CONFIG_ERROR_VALUE, g, key,
				    "expected at least reconnect_min (%s), got %s", lo, q);
		return fail(p, CONFIG_ERROR_VALUE, g, key,
			    "expected at most reconnect_max (%s, the default), got %s", hi, q);
	}
	return TRUE;
}

/* ------------------------------------------------------------------------
 * Loading.
 */

static struct ctflowd_config *parse(struct parser *p)
{
	struct ctflowd_config *config = g_new0(struct ctflowd_config, 1);
	g_auto(GStrv) groups = NULL;

	config->path = g_strdup(p->origin);
	config->exports = g_ptr_array_new_with_free_func(export_config_free);

	if (!check_structure(p) ||
	    !parse_daemon(p, &config->daemon) ||
	    !parse_source(p, &config->source))
		goto failed;

	groups = g_key_file_get_groups(p->keys, NULL);
	for (int i = 0; groups[i]; i++) {
		g_autofree char *name = NULL;
		if (classify_section(groups[i], &name) != SECTION_EXPORT)
			continue;
		struct export_config *e = g_new0(struct export_config, 1);
		e->name = g_steal_pointer(&name);
		g_ptr_array_add(config->exports, e);
		if (!parse_export(p, groups[i], config->daemon.state_directory, e))
			goto failed;
	}
	return config;

failed:
	config_free(config);
	return NULL;
}

struct ctflowd_config *config_load_data(const char *data, const char *origin, GError **error)
{
	struct parser p = { .origin = origin, .error = error };
	g_autoptr(GKeyFile) keys = g_key_file_new();
	g_autoptr(GError) local = NULL;
	struct ctflowd_config *config = NULL;

	g_return_val_if_fail(data != NULL, NULL);
	g_return_val_if_fail(origin != NULL, NULL);
	g_return_val_if_fail(error == NULL || *error == NULL, NULL);

	layout_scan(&p.layout, data);
	if (!g_key_file_load_from_data(keys, data, strlen(data), G_KEY_FILE_NONE, &local)) {
		g_autofree char *message = g_strdup_printf("syntax error: %s", local->message);
		set_error(error, CONFIG_ERROR_SYNTAX, origin, p.layout.bad_line, message);
		goto out;
	}
	if (p.layout.repeated) {
		set_error(error, CONFIG_ERROR_SYNTAX, origin, p.layout.repeated_line, p.layout.repeated);
		goto out;
	}
	p.keys = keys;
	config = parse(&p);
out:
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
		set_error(error, CONFIG_ERROR_SYNTAX, path, line,
			  "syntax error: a NUL byte; this is not a text file");
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

static void append_duration(GString *out, const char *key, guint ms)
{
	g_autofree char *text = format_duration(ms);
	append_key(out, key, text);
}

static void append_number(GString *out, const char *key, guint64 n)
{
	g_string_append_printf(out, "%s = %" G_GUINT64_FORMAT "\n", key, n);
}

static void append_bool(GString *out, const char *key, gboolean value)
{
	append_key(out, key, value ? "yes" : "no");
}

char *config_to_string(const struct ctflowd_config *config)
{
	g_return_val_if_fail(config != NULL, NULL);

	GString *out = g_string_new(NULL);
	const struct daemon_config *d = &config->daemon;
	const struct source_config *s = &config->source;

	/* No comment naming the origin: the output, saved, must load and print
	 * back byte for byte. */
	g_string_append(out, "[daemon]\n");
	append_key(out, "state_directory", d->state_directory);
	append_key(out, "pid_file", d->pid_file);
	append_duration(out, "stats_interval", d->stats_interval_ms);
	append_number(out, "spool_max", d->spool_max);
	append_key(out, "spool_sync", spool_sync_names[d->spool_sync]);
	append_duration(out, "handover_timeout", d->handover_timeout_ms);

	g_string_append(out, "\n[source]\n");
	append_key(out, "netns", s->netns);
	append_number(out, "receive_buffer", s->receive_buffer);
	append_bool(out, "reliable", s->reliable);
	append_key(out, "events", s->subscribe_new ? "destroy,new" : "destroy");
	append_bool(out, "manage_sysctls", s->manage_sysctls);
	append_number(out, "dedup_window", s->dedup_window);
	append_duration(out, "resync_delay", s->resync_delay_ms);
	if (s->guard_entries) {
		append_number(out, "guard", s->guard_entries);
	} else if (s->guard_percent) {
		g_autofree char *pct = g_strdup_printf("%u%%", s->guard_percent);
		append_key(out, "guard", pct);
	} else {
		append_key(out, "guard", "off");
	}

	for (guint i = 0; config->exports && i < config->exports->len; i++) {
		const struct export_config *e = g_ptr_array_index(config->exports, i);

		g_string_append_printf(out, "\n[export %s]\n", e->name);
		append_key(out, "format", export_format_name(e->format));
		append_key(out, "transport", export_transport_name(e->transport));
		if (e->host) {
			g_autofree char *destination = strchr(e->host, ':')
				? g_strdup_printf("[%s]:%s", e->host, e->port)
				: g_strdup_printf("%s:%s", e->host, e->port);
			append_key(out, "destination", destination);
		}
		if (e->path)
			append_key(out, "path", e->path);
		append_duration(out, "flush_interval", e->flush_interval_ms);
		append_duration(out, "template_refresh", e->template_refresh_ms);
		if (e->mtu)
			append_number(out, "mtu", e->mtu);
		else
			append_key(out, "mtu", "auto");
		append_number(out, "observation_domain", e->observation_domain);
		append_duration(out, "reconnect_min", e->reconnect_min_ms);
		append_duration(out, "reconnect_max", e->reconnect_max_ms);
		append_bool(out, "sync", e->sync);
	}
	return g_string_free(out, FALSE);
}

void config_free(struct ctflowd_config *config)
{
	if (!config)
		return;
	g_free(config->path);
	g_free(config->daemon.state_directory);
	g_free(config->daemon.pid_file);
	g_free(config->source.netns);
	if (config->exports)
		g_ptr_array_unref(config->exports);
	g_free(config);
}
