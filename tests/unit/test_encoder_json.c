/*
 * test_encoder_json.c - flow records as JSON lines.
 *
 * Fixed records are checked against the exact line a consumer will read, so
 * a renamed key, a lost field or a changed number format shows up as a diff.
 * Generated records go through a small strict JSON parser (RFC 8259
 * grammar, duplicate keys refused) and have their values compared field by
 * field.  Framing: lines are never split across messages, no message is
 * larger than the limit, and the record count handed over with each message
 * is its number of lines.
 */
#include <arpa/inet.h>
#include <glib.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "ctflowd/encoder.h"
#include "interim_example.h"

/* ------------------------------------------------------------------------ */
/* Capturing what the encoder emits                                          */
/* ------------------------------------------------------------------------ */

struct capture {
	GPtrArray *msgs;   /* char *, NUL-terminated copies */
	GArray *lens;      /* gsize */
	GArray *records;   /* guint */
	gboolean fail;
};

#define TEST_ERROR (g_quark_from_static_string("test-error"))

static gboolean capture_emit(const uint8_t *msg, size_t len, guint records, void *user,
			     GError **error)
{
	struct capture *c = user;

	if (c->fail) {
		c->fail = FALSE;
		g_set_error(error, TEST_ERROR, 7, "disk full");
		return FALSE;
	}
	g_ptr_array_add(c->msgs, g_strndup((const char *)msg, len));
	g_array_append_val(c->lens, len);
	g_array_append_val(c->records, records);
	return TRUE;
}

static encoder *new_encoder_with(guint mtu, enum export_counters counters,
				 enum export_records records, struct capture *c)
{
	struct export_config cfg = {
		.name = (char *)"test",
		.format = EXPORT_FORMAT_JSON,
		.transport = EXPORT_TRANSPORT_FILE,
		.mtu = mtu,
		.observation_domain = 1,
		.counters = counters,
		.records = records,
	};
	g_autoptr(GError) error = NULL;

	c->msgs = g_ptr_array_new_with_free_func(g_free);
	c->lens = g_array_new(FALSE, FALSE, sizeof(gsize));
	c->records = g_array_new(FALSE, FALSE, sizeof(guint));
	c->fail = FALSE;
	encoder *enc = encoder_new(&cfg, capture_emit, c, &error);
	g_assert_no_error(error);
	g_assert_nonnull(enc);
	return enc;
}

static encoder *new_encoder_counters(guint mtu, enum export_counters counters,
				     struct capture *c)
{
	return new_encoder_with(mtu, counters, EXPORT_RECORDS_FLOWS, c);
}

static encoder *new_encoder_records(enum export_records records, struct capture *c)
{
	return new_encoder_with(65000, EXPORT_COUNTERS_DELTA, records, c);
}

static encoder *new_encoder(guint mtu, struct capture *c)
{
	return new_encoder_counters(mtu, EXPORT_COUNTERS_DELTA, c);
}

static void capture_clear(struct capture *c)
{
	g_ptr_array_unref(c->msgs);
	g_array_unref(c->lens);
	g_array_unref(c->records);
}

static const char *capture_msg(const struct capture *c, guint i)
{
	return g_ptr_array_index(c->msgs, i);
}

static gsize capture_len(const struct capture *c, guint i)
{
	return g_array_index(c->lens, gsize, i);
}

static guint capture_count(const struct capture *c, guint i)
{
	return g_array_index(c->records, guint, i);
}

static void add_ok(encoder *enc, const struct flow_record *r)
{
	g_autoptr(GError) error = NULL;

	g_assert_true(encoder_add(enc, r, &error));
	g_assert_no_error(error);
}

static void flush_ok(encoder *enc)
{
	g_autoptr(GError) error = NULL;

	g_assert_true(encoder_flush(enc, &error));
	g_assert_no_error(error);
}

static void start_ok(encoder *enc)
{
	g_autoptr(GError) error = NULL;

	g_assert_true(encoder_start_session(enc, &error));
	g_assert_no_error(error);
}

/* The one line @r becomes, from an encoder of its own. */
static char *line_of(const struct flow_record *r)
{
	struct capture c;
	encoder *enc = new_encoder(65000, &c);

	start_ok(enc);
	add_ok(enc, r);
	flush_ok(enc);
	g_assert_cmpuint(c.msgs->len, ==, 1);
	g_assert_cmpuint(capture_count(&c, 0), ==, 1);
	char *line = g_strdup(capture_msg(&c, 0));
	g_assert_cmpuint(strlen(line), ==, capture_len(&c, 0));
	encoder_free(enc);
	capture_clear(&c);
	return line;
}

/* ------------------------------------------------------------------------ */
/* Records                                                                   */
/* ------------------------------------------------------------------------ */

static void set_addr(uint8_t out[16], int family, const char *text)
{
	memset(out, 0, 16);
	g_assert_cmpint(inet_pton(family, text, out), ==, 1);
}

static struct flow_record rec_udp4_snat(void)
{
	struct flow_record r = {
		.start_ns = 1700000000123456789ull,
		.end_ns = 1700000030987654321ull,
		.packets = 0x0000000200000003ull,
		.bytes = 0x0000001234567890ull,
		.reply_packets = 5,
		.reply_bytes = 0x00000000deadbeefull,
		.flow_id = 0xfedcba9876543210ull,
		.orig = {.sport = 40000, .dport = 53},
		/* masqueraded: replies go back to the router's address and port */
		.reply = {.sport = 53, .dport = 61000},
		.ct_id = 0x8badf00d,
		.mark = 0x80c0ffee,
		.status = 0x18e,
		.zone = 0x0102,
		.family = AF_INET,
		.proto = IPPROTO_UDP,
		.end_reason = FLOW_END_IDLE_TIMEOUT,
		.flags = FLOW_HAS_COUNTERS | FLOW_HAS_TIMESTAMPS | FLOW_HAS_ID,
		.event = FLOW_EVENT_DESTROY,
	};
	set_addr(r.orig.src, AF_INET, "192.0.2.10");
	set_addr(r.orig.dst, AF_INET, "198.51.100.20");
	set_addr(r.reply.src, AF_INET, "198.51.100.20");
	set_addr(r.reply.dst, AF_INET, "203.0.113.5");
	return r;
}

static const char line_udp4_snat[] =
	"{\"flow_id\":18364758544493064720,\"family\":\"ipv4\",\"proto\":17,"
	"\"src\":\"192.0.2.10\",\"dst\":\"198.51.100.20\",\"sport\":40000,\"dport\":53,"
	"\"reply_src\":\"198.51.100.20\",\"reply_dst\":\"203.0.113.5\","
	"\"reply_sport\":53,\"reply_dport\":61000,"
	"\"post_nat_src\":\"203.0.113.5\",\"post_nat_dst\":\"198.51.100.20\","
	"\"post_nat_sport\":61000,\"post_nat_dport\":53,"
	"\"packets\":8589934595,\"bytes\":78187493520,"
	"\"reply_packets\":5,\"reply_bytes\":3735928559,"
	"\"start\":\"2023-11-14T22:13:20.123456789Z\",\"start_ns\":1700000000123456789,"
	"\"end\":\"2023-11-14T22:13:50.987654321Z\",\"end_ns\":1700000030987654321,"
	"\"end_reason\":\"idle\",\"ct_id\":2343432205,\"zone\":258,\"mark\":2160132078,\"labels\":null,"
	"\"status\":398}\n";

/* Port-forwarded to an inside server: the reply comes from its address. */
static struct flow_record rec_tcp6_dnat(void)
{
	struct flow_record r = rec_udp4_snat();

	r.family = AF_INET6;
	r.proto = IPPROTO_TCP;
	set_addr(r.orig.src, AF_INET6, "2001:db8:1:2:3:4:5:6");
	set_addr(r.orig.dst, AF_INET6, "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff");
	set_addr(r.reply.src, AF_INET6, "2001:db8::53");
	set_addr(r.reply.dst, AF_INET6, "2001:db8:1:2:3:4:5:6");
	r.orig.sport = 51515;
	r.orig.dport = 443;
	r.reply.sport = 8443;
	r.reply.dport = 51515;
	r.packets = 0xffffffffffffffffull;
	r.bytes = 0x8000000000000001ull;
	r.reply_packets = 0x100000000ull;
	r.reply_bytes = 0x1122334455667788ull;
	r.start_ns = 999999;
	r.end_ns = 0xffffffffffffffffull;
	r.flow_id = 1;
	r.ct_id = 0;
	r.zone = 0;
	r.mark = 0;
	r.status = 0xffffffffu;
	r.end_reason = FLOW_END_OF_FLOW;
	r.tcp_state = 7;
	return r;
}

static const char line_tcp6_dnat[] =
	"{\"flow_id\":1,\"family\":\"ipv6\",\"proto\":6,"
	"\"src\":\"2001:db8:1:2:3:4:5:6\",\"dst\":\"2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff\","
	"\"sport\":51515,\"dport\":443,"
	"\"reply_src\":\"2001:db8::53\",\"reply_dst\":\"2001:db8:1:2:3:4:5:6\","
	"\"reply_sport\":8443,\"reply_dport\":51515,"
	"\"post_nat_src\":\"2001:db8:1:2:3:4:5:6\",\"post_nat_dst\":\"2001:db8::53\","
	"\"post_nat_sport\":51515,\"post_nat_dport\":8443,"
	"\"packets\":18446744073709551615,\"bytes\":9223372036854775809,"
	"\"reply_packets\":4294967296,\"reply_bytes\":1234605616436508552,"
	"\"start\":\"1970-01-01T00:00:00.000999999Z\",\"start_ns\":999999,"
	"\"end\":\"2554-07-21T23:34:33.709551615Z\",\"end_ns\":18446744073709551615,"
	"\"end_reason\":\"end\",\"ct_id\":0,\"zone\":0,\"mark\":0,\"labels\":null,\"status\":4294967295}\n";

static struct flow_record rec_icmp4(void)
{
	struct flow_record r = rec_udp4_snat();

	r.proto = IPPROTO_ICMP;
	r.icmp_type = 8;
	r.icmp_code = 0;
	r.orig.sport = 0x4d2e; /* the echo id stands where a port would */
	r.orig.dport = 0;
	set_addr(r.reply.dst, AF_INET, "192.0.2.10");
	r.reply.sport = 0x4d2e;
	r.reply.dport = 0;
	r.end_reason = FLOW_END_FORCED;
	r.flow_id = 77;
	r.start_ns = 1700000000000000007ull;
	r.end_ns = 4102444800000000000ull;
	return r;
}

static const char line_icmp4[] =
	"{\"flow_id\":77,\"family\":\"ipv4\",\"proto\":1,"
	"\"src\":\"192.0.2.10\",\"dst\":\"198.51.100.20\","
	"\"reply_src\":\"198.51.100.20\",\"reply_dst\":\"192.0.2.10\","
	"\"icmp_type\":8,\"icmp_code\":0,\"icmp_id\":19758,"
	"\"packets\":8589934595,\"bytes\":78187493520,"
	"\"reply_packets\":5,\"reply_bytes\":3735928559,"
	"\"start\":\"2023-11-14T22:13:20.000000007Z\",\"start_ns\":1700000000000000007,"
	"\"end\":\"2100-01-01T00:00:00.000000000Z\",\"end_ns\":4102444800000000000,"
	"\"end_reason\":\"forced\",\"ct_id\":2343432205,\"zone\":258,\"mark\":2160132078,\"labels\":null,"
	"\"status\":398}\n";

static struct flow_record rec_icmp6(void)
{
	struct flow_record r = rec_tcp6_dnat();

	r.proto = IPPROTO_ICMPV6;
	r.icmp_type = 128;
	r.icmp_code = 0;
	r.orig.sport = 0x1f2e;
	r.orig.dport = 0;
	set_addr(r.reply.src, AF_INET6, "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff");
	r.reply.sport = 0x1f2e;
	r.reply.dport = 0;
	r.packets = 1;
	r.bytes = 104;
	r.reply_packets = 1;
	r.reply_bytes = 104;
	r.start_ns = 0;
	r.end_ns = 1000000;
	r.end_reason = FLOW_END_LACK_OF_RESOURCES;
	r.status = 0x8;
	return r;
}

static const char line_icmp6[] =
	"{\"flow_id\":1,\"family\":\"ipv6\",\"proto\":58,"
	"\"src\":\"2001:db8:1:2:3:4:5:6\",\"dst\":\"2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff\","
	"\"reply_src\":\"2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff\","
	"\"reply_dst\":\"2001:db8:1:2:3:4:5:6\","
	"\"icmp_type\":128,\"icmp_code\":0,\"icmp_id\":7982,"
	"\"packets\":1,\"bytes\":104,\"reply_packets\":1,\"reply_bytes\":104,"
	"\"start\":\"1970-01-01T00:00:00.000000000Z\",\"start_ns\":0,"
	"\"end\":\"1970-01-01T00:00:00.001000000Z\",\"end_ns\":1000000,"
	"\"end_reason\":\"resources\",\"ct_id\":0,\"zone\":0,\"mark\":0,\"labels\":null,\"status\":8}\n";

/* The kernel sent no counters (nf_conntrack_acct was off when the entry
 * was made): whatever the record holds there must not be shown as data. */
static struct flow_record rec_no_counters(void)
{
	struct flow_record r = rec_udp4_snat();

	r.flags = FLOW_HAS_TIMESTAMPS | FLOW_HAS_ID;
	r.end_reason = FLOW_END_ACTIVE_TIMEOUT;
	return r;
}

static const char line_no_counters[] =
	"{\"flow_id\":18364758544493064720,\"family\":\"ipv4\",\"proto\":17,"
	"\"src\":\"192.0.2.10\",\"dst\":\"198.51.100.20\",\"sport\":40000,\"dport\":53,"
	"\"reply_src\":\"198.51.100.20\",\"reply_dst\":\"203.0.113.5\","
	"\"reply_sport\":53,\"reply_dport\":61000,"
	"\"post_nat_src\":\"203.0.113.5\",\"post_nat_dst\":\"198.51.100.20\","
	"\"post_nat_sport\":61000,\"post_nat_dport\":53,"
	"\"packets\":null,\"bytes\":null,\"reply_packets\":null,\"reply_bytes\":null,"
	"\"start\":\"2023-11-14T22:13:20.123456789Z\",\"start_ns\":1700000000123456789,"
	"\"end\":\"2023-11-14T22:13:50.987654321Z\",\"end_ns\":1700000030987654321,"
	"\"end_reason\":\"active\",\"ct_id\":2343432205,\"zone\":258,\"mark\":2160132078,\"labels\":null,"
	"\"status\":398}\n";

static struct flow_record rec_no_timestamps(void)
{
	struct flow_record r = rec_udp4_snat();

	r.flags = FLOW_HAS_COUNTERS | FLOW_HAS_ID;
	r.end_reason = 0;
	return r;
}

static const char line_no_timestamps[] =
	"{\"flow_id\":18364758544493064720,\"family\":\"ipv4\",\"proto\":17,"
	"\"src\":\"192.0.2.10\",\"dst\":\"198.51.100.20\",\"sport\":40000,\"dport\":53,"
	"\"reply_src\":\"198.51.100.20\",\"reply_dst\":\"203.0.113.5\","
	"\"reply_sport\":53,\"reply_dport\":61000,"
	"\"post_nat_src\":\"203.0.113.5\",\"post_nat_dst\":\"198.51.100.20\","
	"\"post_nat_sport\":61000,\"post_nat_dport\":53,"
	"\"packets\":8589934595,\"bytes\":78187493520,"
	"\"reply_packets\":5,\"reply_bytes\":3735928559,"
	"\"start\":null,\"start_ns\":null,\"end\":null,\"end_ns\":null,"
	"\"end_reason\":\"unknown\",\"ct_id\":2343432205,\"zone\":258,\"mark\":2160132078,\"labels\":null,"
	"\"status\":398}\n";

struct fixed_case {
	const char *name;
	struct flow_record (*make)(void);
	const char *line;
};

static const struct fixed_case fixed_cases[] = {
	{"udp4-snat", rec_udp4_snat, line_udp4_snat},
	{"tcp6-dnat", rec_tcp6_dnat, line_tcp6_dnat},
	{"icmp4", rec_icmp4, line_icmp4},
	{"icmp6", rec_icmp6, line_icmp6},
	{"no-counters", rec_no_counters, line_no_counters},
	{"no-timestamps", rec_no_timestamps, line_no_timestamps},
};

/* ------------------------------------------------------------------------ */
/* A strict JSON reader for one flat object                                  */
/* ------------------------------------------------------------------------ */

struct jp {
	const char *p, *end;
};

static void jp_ws(struct jp *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static gboolean jp_lit(struct jp *j, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0)
		return FALSE;
	j->p += n;
	return TRUE;
}

static gboolean jp_string(struct jp *j, GString *out)
{
	if (j->p >= j->end || *j->p != '"')
		return FALSE;
	j->p++;
	while (j->p < j->end) {
		unsigned char ch = (unsigned char)*j->p++;
		if (ch == '"')
			return TRUE;
		if (ch < 0x20)
			return FALSE;
		if (ch != '\\') {
			g_string_append_c(out, (char)ch);
			continue;
		}
		if (j->p >= j->end)
			return FALSE;
		ch = (unsigned char)*j->p++;
		switch (ch) {
		case '"': case '\\': case '/':
			g_string_append_c(out, (char)ch);
			break;
		case 'b': g_string_append_c(out, '\b'); break;
		case 'f': g_string_append_c(out, '\f'); break;
		case 'n': g_string_append_c(out, '\n'); break;
		case 'r': g_string_append_c(out, '\r'); break;
		case 't': g_string_append_c(out, '\t'); break;
		case 'u':
			for (int i = 0; i < 4; i++)
				if (j->p >= j->end || !g_ascii_isxdigit(*j->p++))
					return FALSE;
			g_string_append_c(out, '?');
			break;
		default:
			return FALSE;
		}
	}
	return FALSE;
}

static gboolean jp_digits(struct jp *j)
{
	const char *start = j->p;

	while (j->p < j->end && g_ascii_isdigit(*j->p))
		j->p++;
	return j->p > start;
}

static gboolean jp_number(struct jp *j)
{
	if (j->p < j->end && *j->p == '-')
		j->p++;
	if (j->p < j->end && *j->p == '0')
		j->p++;
	else if (!jp_digits(j))
		return FALSE;
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (!jp_digits(j))
			return FALSE;
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		if (!jp_digits(j))
			return FALSE;
	}
	return TRUE;
}

/* An array of numbers (the labels), its text as written in @out. */
static gboolean jp_number_array(struct jp *j, GString *out)
{
	const char *start = j->p;

	if (!jp_lit(j, "["))
		return FALSE;
	jp_ws(j);
	if (!jp_lit(j, "]")) {
		for (;;) {
			jp_ws(j);
			if (!jp_number(j))
				return FALSE;
			jp_ws(j);
			if (jp_lit(j, "]"))
				break;
			if (!jp_lit(j, ","))
				return FALSE;
		}
	}
	g_string_append_len(out, start, j->p - start);
	return TRUE;
}

/* A scalar value; its text (strings unquoted, "null" for null) in @out.
 * Other nested values than an array of numbers do not occur in a flow
 * line and are refused. */
static gboolean jp_scalar(struct jp *j, GString *out, gboolean *is_string)
{
	const char *start = j->p;

	*is_string = FALSE;
	if (j->p >= j->end)
		return FALSE;
	if (*j->p == '[')
		return jp_number_array(j, out);
	if (*j->p == '"') {
		*is_string = TRUE;
		return jp_string(j, out);
	}
	if (jp_lit(j, "null") || jp_lit(j, "true") || jp_lit(j, "false") || jp_number(j)) {
		g_string_append_len(out, start, j->p - start);
		return TRUE;
	}
	return FALSE;
}

struct jfield {
	char *value;
	gboolean is_string;
};

static void jfield_free(gpointer p)
{
	struct jfield *f = p;

	g_free(f->value);
	g_free(f);
}

/* Parses @text (one object, then only a newline) into key -> field, keeping
 * the key order in @keys.  NULL if it is not valid JSON of that shape. */
static GHashTable *parse_line(const char *text, size_t len, GPtrArray *keys)
{
	struct jp j = {.p = text, .end = text + len};
	g_autoptr(GHashTable) fields =
		g_hash_table_new_full(g_str_hash, g_str_equal, g_free, jfield_free);

	jp_ws(&j);
	if (!jp_lit(&j, "{"))
		return NULL;
	jp_ws(&j);
	if (!jp_lit(&j, "}")) {
		for (;;) {
			g_autoptr(GString) key = g_string_new(NULL);
			g_autoptr(GString) value = g_string_new(NULL);
			gboolean is_string;

			jp_ws(&j);
			if (!jp_string(&j, key))
				return NULL;
			jp_ws(&j);
			if (!jp_lit(&j, ":"))
				return NULL;
			jp_ws(&j);
			if (!jp_scalar(&j, value, &is_string))
				return NULL;
			if (g_hash_table_contains(fields, key->str))
				return NULL; /* duplicate key */
			struct jfield *f = g_new0(struct jfield, 1);
			f->value = g_strdup(value->str);
			f->is_string = is_string;
			if (keys)
				g_ptr_array_add(keys, g_strdup(key->str));
			g_hash_table_insert(fields, g_strdup(key->str), f);
			jp_ws(&j);
			if (jp_lit(&j, "}"))
				break;
			if (!jp_lit(&j, ","))
				return NULL;
		}
	}
	jp_ws(&j);
	if (j.p != j.end)
		return NULL;
	return g_steal_pointer(&fields);
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                     */
/* ------------------------------------------------------------------------ */

static void test_fixed_line(gconstpointer data)
{
	const struct fixed_case *fc = data;
	struct flow_record r = fc->make();
	g_autofree char *line = line_of(&r);

	g_assert_cmpstr(line, ==, fc->line);
	/* and what is expected is JSON itself */
	g_autoptr(GHashTable) fields = parse_line(line, strlen(line), NULL);
	g_assert_nonnull(fields);
}

static void test_end_reasons(void)
{
	static const struct {
		uint8_t reason;
		const char *name;
	} reasons[] = {
		{FLOW_END_IDLE_TIMEOUT, "idle"},   {FLOW_END_ACTIVE_TIMEOUT, "active"},
		{FLOW_END_OF_FLOW, "end"},         {FLOW_END_FORCED, "forced"},
		{FLOW_END_LACK_OF_RESOURCES, "resources"}, {0, "unknown"},
		{6, "unknown"},                    {255, "unknown"},
	};

	for (size_t i = 0; i < G_N_ELEMENTS(reasons); i++) {
		struct flow_record r = rec_udp4_snat();
		r.end_reason = reasons[i].reason;
		g_autofree char *line = line_of(&r);
		g_autofree char *want = g_strdup_printf("\"end_reason\":\"%s\",", reasons[i].name);
		if (!strstr(line, want))
			g_error("end reason %u: %s", reasons[i].reason, line);
	}
}

/* Record @i of a reproducible mix of families, protocols and flags. */
static struct flow_record rec_numbered(guint64 i)
{
	struct flow_record r;

	switch (i % 4) {
	case 0: r = rec_udp4_snat(); break;
	case 1: r = rec_tcp6_dnat(); break;
	case 2: r = rec_icmp4(); break;
	default: r = rec_icmp6(); break;
	}
	r.flow_id = i * 0x9e3779b97f4a7c15ull;
	r.ct_id = (guint32)(i * 2654435761u);
	r.bytes ^= i << 20;
	r.start_ns = 1600000000000000000ull + i * 999999937ull;
	r.end_ns = r.start_ns + i * 12345;
	r.zone = (uint16_t)(i % 65536);
	r.mark = (guint32)~i;
	r.status = (guint32)(i * 31);
	r.end_reason = (uint8_t)(i % 7);
	r.orig.src[2] = (uint8_t)i;
	r.reply.dst[3] = (uint8_t)(i >> 8);
	r.icmp_code = (uint8_t)(i % 16);
	if (!flow_is_icmp(&r))
		r.orig.sport = (uint16_t)(i * 7);
	r.flags = FLOW_HAS_ID;
	if (i % 3 != 0)
		r.flags |= FLOW_HAS_COUNTERS;
	if (i % 5 != 0)
		r.flags |= FLOW_HAS_TIMESTAMPS;
	/* labels: none, some, all 128; and some bits without the flag, which
	 * must not show */
	memset(r.labels, 0, sizeof(r.labels));
	if (i % 4 == 1)
		memset(r.labels, 0xff, sizeof(r.labels));
	else if (i % 4 >= 2)
		r.labels[i % 16] = (uint8_t)(i | 1);
	if (i % 4 != 3)
		r.flags |= FLOW_HAS_LABELS;
	return r;
}

static void expect_field(GHashTable *fields, const char *key, gboolean is_string,
			 const char *value)
{
	struct jfield *f = g_hash_table_lookup(fields, key);

	if (!f)
		g_error("no \"%s\"", key);
	if (f->is_string != is_string || strcmp(f->value, value) != 0)
		g_error("\"%s\" is %s%s%s, want %s%s%s", key, f->is_string ? "\"" : "", f->value,
			f->is_string ? "\"" : "", is_string ? "\"" : "", value, is_string ? "\"" : "");
}

static void expect_u64(GHashTable *fields, const char *key, guint64 v, gboolean known)
{
	g_autofree char *text = known ? g_strdup_printf("%" G_GUINT64_FORMAT, v) : g_strdup("null");

	expect_field(fields, key, FALSE, text);
}

static void expect_addr(GHashTable *fields, const char *key, int family, const uint8_t *a)
{
	char buf[INET6_ADDRSTRLEN];

	g_assert_nonnull(inet_ntop(family, a, buf, sizeof(buf)));
	expect_field(fields, key, TRUE, buf);
}

static void expect_time(GHashTable *fields, const char *key, guint64 ns, gboolean known)
{
	g_autofree char *ns_key = g_strconcat(key, "_ns", NULL);

	expect_u64(fields, ns_key, ns, known);
	if (!known) {
		expect_field(fields, key, FALSE, "null");
		return;
	}
	g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc((gint64)(ns / 1000000000u));
	g_autofree char *secs = g_date_time_format(dt, "%Y-%m-%dT%H:%M:%S");
	g_autofree char *text = g_strdup_printf("%s.%09" G_GUINT64_FORMAT "Z", secs, ns % 1000000000u);
	expect_field(fields, key, TRUE, text);
}

/* Every field of a parsed line against the record it came from. */
static void check_fields(GHashTable *fields, GPtrArray *keys, const struct flow_record *r)
{
	gboolean icmp = flow_is_icmp(r);
	gboolean counters = (r->flags & FLOW_HAS_COUNTERS) != 0;
	gboolean times = (r->flags & FLOW_HAS_TIMESTAMPS) != 0;
	int family = r->family;

	expect_u64(fields, "flow_id", r->flow_id, TRUE);
	expect_field(fields, "family", TRUE, family == AF_INET6 ? "ipv6" : "ipv4");
	expect_u64(fields, "proto", r->proto, TRUE);
	expect_addr(fields, "src", family, r->orig.src);
	expect_addr(fields, "dst", family, r->orig.dst);
	expect_addr(fields, "reply_src", family, r->reply.src);
	expect_addr(fields, "reply_dst", family, r->reply.dst);
	if (icmp) {
		expect_u64(fields, "icmp_type", r->icmp_type, TRUE);
		expect_u64(fields, "icmp_code", r->icmp_code, TRUE);
		expect_u64(fields, "icmp_id", r->orig.sport, TRUE);
	} else {
		expect_u64(fields, "sport", r->orig.sport, TRUE);
		expect_u64(fields, "dport", r->orig.dport, TRUE);
		expect_u64(fields, "reply_sport", r->reply.sport, TRUE);
		expect_u64(fields, "reply_dport", r->reply.dport, TRUE);
	}
	/* post-NAT fields only on translated connections: the original
	 * direction after the translation, which is the reply tuple reversed */
	guint nat_keys = 0;
	if (flow_is_translated(r)) {
		expect_addr(fields, "post_nat_src", family, r->reply.dst);
		expect_addr(fields, "post_nat_dst", family, r->reply.src);
		nat_keys = 2;
		if (!icmp) {
			expect_u64(fields, "post_nat_sport", r->reply.dport, TRUE);
			expect_u64(fields, "post_nat_dport", r->reply.sport, TRUE);
			nat_keys = 4;
		}
	} else {
		g_assert_null(g_hash_table_lookup(fields, "post_nat_src"));
	}
	expect_u64(fields, "packets", r->packets, counters);
	expect_u64(fields, "bytes", r->bytes, counters);
	expect_u64(fields, "reply_packets", r->reply_packets, counters);
	expect_u64(fields, "reply_bytes", r->reply_bytes, counters);
	expect_time(fields, "start", r->start_ns, times);
	expect_time(fields, "end", r->end_ns, times);
	expect_field(fields, "end_reason", TRUE, flow_end_reason_name(r->end_reason));
	expect_u64(fields, "ct_id", r->ct_id, TRUE);
	expect_u64(fields, "zone", r->zone, TRUE);
	expect_u64(fields, "mark", r->mark, TRUE);
	g_autoptr(GString) labels = g_string_new("[");
	for (unsigned n = 0; n < 128; n++)
		if (r->labels[n / 8] >> (n % 8) & 1)
			g_string_append_printf(labels, "%s%u", labels->len > 1 ? "," : "", n);
	g_string_append_c(labels, ']');
	/* null: the kernel sent no labels, whatever the bytes hold */
	expect_field(fields, "labels", FALSE, r->flags & FLOW_HAS_LABELS ? labels->str : "null");
	expect_u64(fields, "status", r->status, TRUE);
	/* nothing else: 25 keys, or 24 with the ICMP fields instead of ports,
	 * and the post-NAT ones */
	g_assert_cmpuint(keys->len, ==, (icmp ? 24 : 25) + nat_keys);
	g_assert_cmpuint(g_hash_table_size(fields), ==, keys->len);
}

static void test_generated_records(void)
{
	for (guint64 i = 0; i < 600; i++) {
		struct flow_record r = rec_numbered(i);
		g_autofree char *line = line_of(&r);
		g_autoptr(GPtrArray) keys = g_ptr_array_new_with_free_func(g_free);
		size_t len = strlen(line);

		g_assert_cmpuint(len, >, 1);
		g_assert_cmpint(line[len - 1], ==, '\n');
		g_assert_null(memchr(line, '\n', len - 1));
		g_autoptr(GHashTable) fields = parse_line(line, len - 1, keys);
		if (!fields)
			g_error("record %" G_GUINT64_FORMAT ": not a JSON object: %s", i, line);
		check_fields(fields, keys, &r);
	}
}

/* The parser itself must refuse what is not JSON, or the test above proves
 * nothing. */
static void test_parser_refuses(void)
{
	static const char *bad[] = {
		"", "{", "}", "{\"a\":}", "{\"a\":1,}", "{\"a\":01}", "{\"a\":1.}",
		"{\"a\":\"x}", "{a:1}", "{\"a\":1}{", "{\"a\":1,\"a\":2}", "{\"a\":nul}",
		"{\"a\":\"\x01\"}", "{\"a\":\"\\x\"}", "{\"a\":1 \"b\":2}", "{\"a\":+1}",
		"{\"a\":[1,]}", "{\"a\":[\"x\"]}", "{\"a\":[1}", "{\"a\":[[1]]}",
	};
	static const char *good[] = {
		"{}", "{\"a\":1}", "{\"a\":-0.5e+3,\"b\":null,\"c\":\"x\\\"y\",\"d\":true}",
		"{\"a\":[],\"b\":[1,2]}",
	};

	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GHashTable) f = parse_line(bad[i], strlen(bad[i]), NULL);
		if (f)
			g_error("accepted %s", bad[i]);
	}
	for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
		g_autoptr(GHashTable) f = parse_line(good[i], strlen(good[i]), NULL);
		if (!f)
			g_error("refused %s", good[i]);
	}
}

/*
 * Adds @n generated records to an encoder limited to @limit and checks the
 * framing: each message whole lines only, within the limit unless it is a
 * single line longer than the limit, counted right, and full (the first line
 * of the next message would not have fitted).  The lines, in order, are
 * those of the records.
 */
static void check_framing(encoder *enc, struct capture *c, guint limit, guint n)
{
	g_autoptr(GString) want = g_string_new(NULL);
	guint from = c->msgs->len;
	guint64 emitted = 0;

	for (guint i = 0; i < n; i++) {
		struct flow_record r = rec_numbered(i);
		g_autofree char *line = line_of(&r);
		guint before = c->msgs->len;

		g_string_append(want, line);
		add_ok(enc, &r);
		for (guint m = before; m < c->msgs->len; m++)
			emitted += capture_count(c, m);
		g_assert_cmpuint(encoder_pending(enc), ==, i + 1 - emitted);
	}
	flush_ok(enc);
	g_assert_cmpuint(encoder_pending(enc), ==, 0);

	g_autoptr(GString) got = g_string_new(NULL);
	guint multi_line = 0, too_big = 0, not_full = 0;
	for (guint m = from; m < c->msgs->len; m++) {
		const char *msg = capture_msg(c, m);
		gsize len = capture_len(c, m);
		guint lines = 0;

		g_assert_cmpuint(len, >, 0);
		g_assert_cmpint(msg[len - 1], ==, '\n');
		for (gsize k = 0; k < len; k++)
			lines += msg[k] == '\n';
		g_assert_cmpuint(capture_count(c, m), ==, lines);
		if (lines > 1) {
			multi_line++;
			if (len > limit && !too_big++)
				g_test_message("message %u: %zu bytes, %u lines, limit %u", m, len,
					       lines, limit);
		}
		if (m + 1 < c->msgs->len) {
			const char *next = capture_msg(c, m + 1);
			gsize first = (gsize)(strchr(next, '\n') - next) + 1;
			if (len + first <= limit && !not_full++)
				g_test_message("message %u sent with room for the next line", m);
		}
		g_string_append_len(got, msg, (gssize)len);
	}
	g_assert_cmpstr(got->str, ==, want->str);
	/* lines are gathered whenever two fit into one message */
	gsize longest = 0;
	for (const char *l = want->str; *l;) {
		const char *nl = strchr(l, '\n');
		longest = MAX(longest, (gsize)(nl - l) + 1);
		l = nl + 1;
	}
	if (limit >= 2 * longest)
		g_assert_cmpuint(multi_line, >, 0);
	g_assert_cmpuint(too_big, ==, 0);
	g_assert_cmpuint(not_full, ==, 0);
}

static void test_mtu(gconstpointer data)
{
	guint mtu = GPOINTER_TO_UINT(data);
	struct capture c;
	encoder *enc = new_encoder(mtu, &c);

	start_ok(enc);
	check_framing(enc, &c, mtu ? mtu : 65000, mtu ? 400 : 1000);
	g_assert_cmpuint(c.msgs->len, >, 1);
	encoder_free(enc);
	capture_clear(&c);
}

/* A transport that learns its path MTU sets the limit for the next session. */
static void test_message_limit(void)
{
	struct capture c;
	encoder *enc = new_encoder(0, &c);

	encoder_set_message_limit(enc, 1500);
	start_ok(enc);
	check_framing(enc, &c, 1500, 300);
	encoder_set_message_limit(enc, 3000);
	start_ok(enc);
	check_framing(enc, &c, 3000, 300);
	encoder_free(enc);
	capture_clear(&c);
}

static void test_flush(void)
{
	struct capture c;
	encoder *enc = new_encoder(65000, &c);
	struct flow_record r = rec_udp4_snat();
	g_autoptr(GError) error = NULL;

	start_ok(enc);
	/* nothing to send: nothing sent */
	flush_ok(enc);
	g_assert_cmpuint(c.msgs->len, ==, 0);
	/* no templates in JSON */
	g_assert_true(encoder_refresh_templates(enc, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(c.msgs->len, ==, 0);

	add_ok(enc, &r);
	add_ok(enc, &r);
	g_assert_cmpuint(c.msgs->len, ==, 0);
	g_assert_cmpuint(encoder_pending(enc), ==, 2);
	flush_ok(enc);
	g_assert_cmpuint(c.msgs->len, ==, 1);
	g_assert_cmpuint(capture_count(&c, 0), ==, 2);
	g_autofree char *two = g_strconcat(line_udp4_snat, line_udp4_snat, NULL);
	g_assert_cmpstr(capture_msg(&c, 0), ==, two);
	g_assert_cmpuint(encoder_pending(enc), ==, 0);
	flush_ok(enc);
	g_assert_cmpuint(c.msgs->len, ==, 1);

	/* a new session drops the unfinished message */
	add_ok(enc, &r);
	start_ok(enc);
	g_assert_cmpuint(encoder_pending(enc), ==, 0);
	flush_ok(enc);
	g_assert_cmpuint(c.msgs->len, ==, 1);
	struct flow_record r6 = rec_tcp6_dnat();
	add_ok(enc, &r6);
	flush_ok(enc);
	g_assert_cmpuint(c.msgs->len, ==, 2);
	g_assert_cmpstr(capture_msg(&c, 1), ==, line_tcp6_dnat);

	/* a failed write is the caller's error */
	add_ok(enc, &r);
	c.fail = TRUE;
	g_assert_false(encoder_flush(enc, &error));
	g_assert_error(error, TEST_ERROR, 7);
	encoder_free(enc);
	capture_clear(&c);
}

static void report_ok(encoder *enc, const struct export_statistics *st)
{
	g_autoptr(GError) error = NULL;

	g_assert_true(encoder_report_statistics(enc, st, &error));
	g_assert_no_error(error);
}

/* "time":"...","time_ns":N}: N, checked to lie in [before, now] */
static void check_time_ns(const char *line, const char *key, gint64 before)
{
	g_autofree char *pattern = g_strdup_printf(
		"\"%s\":\"\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{9}Z\",\"%s_ns\":(\\d+)\\}\n$",
		key, key);
	g_autoptr(GRegex) re = g_regex_new(pattern, 0, 0, NULL);
	g_autoptr(GMatchInfo) m = NULL;
	if (!g_regex_match(re, line, 0, &m))
		g_error("no %s at the end of %s", key, line);
	g_autofree char *ns = g_match_info_fetch(m, 1);
	guint64 t = g_ascii_strtoull(ns, NULL, 10);
	g_assert_cmpuint(t, >=, (guint64)before * 1000);
	g_assert_cmpuint(t, <=, (guint64)g_get_real_time() * 1000);
}

/* Records the spool dropped are said in a line of their own, after the
 * records before it, and told apart from flows by having no flow_id; the
 * statistics follow in a line of their own with every counter. */
static void test_statistics(void)
{
	struct capture c;
	encoder *enc = new_encoder(65000, &c);
	struct flow_record r = rec_udp4_snat();
	gint64 before = g_get_real_time();
	struct export_statistics st = {
		.exporting_process_id = 2,
		.init_ms = 1764000000123,
		.messages = 5,
		.records = 700,
		.octets = 9000,
		.not_sent = 12288,
		.destroy_events = 13000,
		.duplicates = 12,
		.overruns = 3,
		.malformed = 1,
		.spool_dropped = 12288,
	};

	start_ok(enc);
	add_ok(enc, &r);
	add_ok(enc, &r);
	report_ok(enc, &st);
	g_assert_cmpuint(c.msgs->len, ==, 2);
	g_assert_cmpuint(capture_count(&c, 0), ==, 2);
	g_assert_cmpuint(capture_count(&c, 1), ==, 0);
	g_assert_cmpuint(encoder_pending(enc), ==, 0);

	g_auto(GStrv) lines = g_strsplit(capture_msg(&c, 1), "\n", -1);
	g_assert_cmpuint(g_strv_length(lines), ==, 3);   /* two lines and the empty rest */
	g_autofree char *not_sent = g_strconcat(lines[0], "\n", NULL);
	g_autofree char *stats = g_strconcat(lines[1], "\n", NULL);
	g_assert_true(g_str_has_prefix(not_sent, "{\"not_sent_flow_total_count\":12288,\"time\":"));
	check_time_ns(not_sent, "time", before);
	const char *want =
		"{\"exporter_stats\":{\"exporting_process_id\":2,\"messages\":5,\"records\":700,"
		"\"octets\":9000,\"not_sent_flow_total_count\":12288,\"destroy_events\":13000,"
		"\"duplicates\":12,\"overruns\":3,\"malformed\":1,\"spool_dropped\":12288,"
		"\"since\":\"2025-11-24T16:00:00.123000000Z\",\"since_ns\":1764000000123000000},"
		"\"time\":";
	g_assert_true(g_str_has_prefix(stats, want));
	check_time_ns(stats, "time", before);
	g_assert_null(strstr(capture_msg(&c, 1), "flow_id"));

	/* records after it go on as before; with no new loss, only the
	 * statistics line */
	add_ok(enc, &r);
	flush_ok(enc);
	g_assert_cmpuint(c.msgs->len, ==, 3);
	g_assert_cmpstr(capture_msg(&c, 2), ==, line_udp4_snat);
	st.records = 701;
	report_ok(enc, &st);
	g_assert_cmpuint(c.msgs->len, ==, 4);
	g_assert_true(g_str_has_prefix(capture_msg(&c, 3), "{\"exporter_stats\":"));
	g_assert_nonnull(strstr(capture_msg(&c, 3), "\"records\":701,"));
	g_assert_cmpuint(strlen(capture_msg(&c, 3)), ==, strchr(capture_msg(&c, 3), '\n') + 1 - capture_msg(&c, 3));

	/* a new session (a reopened file) is told the loss again */
	start_ok(enc);
	report_ok(enc, &st);
	g_assert_true(g_str_has_prefix(capture_msg(&c, c.msgs->len - 1),
				       "{\"not_sent_flow_total_count\":12288,"));
	encoder_free(enc);
	capture_clear(&c);
}

/* The longest line there can be (IPv6 tuples of the longest text, NAT,
 * every counter at its largest in both sets, every label set) is whole and
 * parses; labels come as their numbers. */
static void test_longest_line(void)
{
	struct flow_record r = rec_tcp6_dnat();
	struct capture c;

	set_addr(r.orig.src, AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe");
	set_addr(r.orig.dst, AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffd");
	set_addr(r.reply.src, AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffc");
	set_addr(r.reply.dst, AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffb");
	r.flow_id = r.base_bytes = G_MAXUINT64;
	r.ct_id = r.mark = r.status = G_MAXUINT32;
	r.zone = G_MAXUINT16;
	r.flags |= FLOW_HAS_LABELS | FLOW_HAS_COUNTERS | FLOW_HAS_TIMESTAMPS;
	memset(r.labels, 0xff, sizeof(r.labels));
	encoder *enc = new_encoder_counters(65000, EXPORT_COUNTERS_BOTH, &c);
	start_ok(enc);
	add_ok(enc, &r);
	flush_ok(enc);
	g_autoptr(GPtrArray) keys = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GHashTable) f = parse_line(capture_msg(&c, 0), capture_len(&c, 0), keys);
	expect_addr(f, "post_nat_src", AF_INET6, r.reply.dst);
	expect_u64(f, "total_packets", G_MAXUINT64, TRUE);
	expect_u64(f, "status", G_MAXUINT32, TRUE);
	g_assert_nonnull(strstr(capture_msg(&c, 0), "\"labels\":[0,1,2,"));
	g_assert_nonnull(strstr(capture_msg(&c, 0), ",126,127],"));
	g_test_message("%" G_GSIZE_FORMAT " bytes", capture_len(&c, 0));
	encoder_free(enc);
	capture_clear(&c);
}

/* An interim record per counters key: the same meanings as IPFIX's. */
static void test_counters_modes(void)
{
	struct flow_record r = rec_numbered(4);
	r.flags = FLOW_HAS_ID | FLOW_HAS_COUNTERS | FLOW_HAS_TIMESTAMPS;
	interim_example(&r);

	for (int mode = EXPORT_COUNTERS_DELTA; mode <= EXPORT_COUNTERS_BOTH; mode++) {
		struct capture c;
		encoder *enc = new_encoder_counters(65000, mode, &c);
		start_ok(enc);
		add_ok(enc, &r);
		flush_ok(enc);
		g_autoptr(GPtrArray) keys = g_ptr_array_new_with_free_func(g_free);
		g_autoptr(GHashTable) f = parse_line(capture_msg(&c, 0), capture_len(&c, 0), keys);
		gboolean total = mode == EXPORT_COUNTERS_TOTAL;
		expect_u64(f, "packets", total ? 100 : 40, TRUE);
		expect_u64(f, "bytes", total ? 10000 : 4000, TRUE);
		expect_u64(f, "reply_packets", total ? 40 : 10, TRUE);
		expect_u64(f, "reply_bytes", total ? 4000 : 1000, TRUE);
		expect_time(f, "start", mode == EXPORT_COUNTERS_DELTA ? r.period_start_ns : r.start_ns,
			    TRUE);
		expect_time(f, "end", r.end_ns, TRUE);
		expect_field(f, "end_reason", TRUE, "active");
		g_assert_cmpint(g_hash_table_contains(f, "total_bytes"), ==,
				mode == EXPORT_COUNTERS_BOTH);
		if (mode == EXPORT_COUNTERS_BOTH) {
			expect_u64(f, "total_packets", 100, TRUE);
			expect_u64(f, "total_bytes", 10000, TRUE);
			expect_u64(f, "total_reply_packets", 40, TRUE);
			expect_u64(f, "total_reply_bytes", 4000, TRUE);
		}
		encoder_free(enc);
		capture_clear(&c);
	}
}

/* An export of a failover pair also says how often its records changed
 * hands, after the daemon's counters; other exports' lines stay as they
 * were (test_statistics). */
static void test_statistics_failover(void)
{
	struct capture c;
	encoder *enc = new_encoder(65000, &c);
	struct export_statistics st = {
		.exporting_process_id = 1,
		.spool_dropped = 4,
		.failover = TRUE,
		.takeovers = 3,
		.givebacks = 2,
		.doubtful = 7,
	};

	start_ok(enc);
	report_ok(enc, &st);
	g_assert_nonnull(strstr(capture_msg(&c, c.msgs->len - 1),
				"\"spool_dropped\":4,\"takeovers\":3,\"givebacks\":2,\"doubtful\":7,"
				"\"since\":"));
	encoder_free(enc);
	capture_clear(&c);
}

/* ------------------------------------------------------------------------ */
/* NAT session events                                                        */
/* ------------------------------------------------------------------------ */

#define NAT_EVENT_TAIL \
	"\"flow_id\":18364758544493064720,\"family\":\"ipv4\",\"proto\":17," \
	"\"src\":\"192.0.2.10\",\"dst\":\"198.51.100.20\",\"sport\":40000,\"dport\":53," \
	"\"post_nat_src\":\"203.0.113.5\",\"post_nat_dst\":\"198.51.100.20\"," \
	"\"post_nat_sport\":61000,\"post_nat_dport\":53,\"ct_id\":2343432205,\"zone\":258}\n"

/*
 * records = nat-events: a NAT create record is a create line at its time;
 * a translated final record a delete at its end, after a late create at
 * its start when marked late; untranslated and interim records give
 * nothing, and every record still counts once in the message.
 */
static void test_nat_events(void)
{
	struct capture c;
	encoder *enc = new_encoder_records(EXPORT_RECORDS_NAT_EVENTS, &c);
	struct flow_record create = rec_udp4_snat(), late_end = rec_udp4_snat();
	struct flow_record plain = rec_icmp4(), interim = rec_udp4_snat(), end = rec_udp4_snat();

	create.event = FLOW_EVENT_NEW;
	create.start_ns = create.end_ns = 1700000000500000000ull;
	create.flags |= FLOW_REFRESH;
	late_end.flags |= FLOW_LATE;
	interim.end_reason = FLOW_END_ACTIVE_TIMEOUT;
	interim.event = FLOW_EVENT_DUMP;
	start_ok(enc);
	add_ok(enc, &create);
	add_ok(enc, &plain);
	add_ok(enc, &late_end);
	add_ok(enc, &interim);
	add_ok(enc, &end);
	flush_ok(enc);
	g_assert_cmpuint(c.msgs->len, ==, 1);
	g_assert_cmpuint(capture_count(&c, 0), ==, 5);
	g_assert_cmpstr(capture_msg(&c, 0), ==,
		"{\"nat_event\":\"create\",\"late\":false,\"refresh\":true,"
		"\"time\":\"2023-11-14T22:13:20.500000000Z\",\"time_ns\":1700000000500000000,"
		NAT_EVENT_TAIL
		"{\"nat_event\":\"create\",\"late\":true,\"refresh\":false,"
		"\"time\":\"2023-11-14T22:13:20.123456789Z\",\"time_ns\":1700000000123456789,"
		NAT_EVENT_TAIL
		"{\"nat_event\":\"delete\",\"late\":false,\"refresh\":false,"
		"\"time\":\"2023-11-14T22:13:50.987654321Z\",\"time_ns\":1700000030987654321,"
		NAT_EVENT_TAIL
		"{\"nat_event\":\"delete\",\"late\":false,\"refresh\":false,"
		"\"time\":\"2023-11-14T22:13:50.987654321Z\",\"time_ns\":1700000030987654321,"
		NAT_EVENT_TAIL);
	encoder_free(enc);
	capture_clear(&c);
}

/*
 * Records that give an export nothing are passed in order: with the next
 * message when one is open, alone in an empty message when nothing else
 * waits.  records = both: the flow line and its delete, one record.
 */
static void test_nat_passed_over(void)
{
	struct capture c;
	encoder *enc = new_encoder_records(EXPORT_RECORDS_FLOWS, &c);
	struct flow_record create = rec_udp4_snat(), end = rec_udp4_snat(), icmp = rec_icmp4();

	create.event = FLOW_EVENT_NEW;
	start_ok(enc);
	add_ok(enc, &create);
	add_ok(enc, &create);
	g_assert_cmpuint(encoder_pending(enc), ==, 2);
	flush_ok(enc);
	g_assert_cmpuint(c.msgs->len, ==, 1);
	g_assert_cmpuint(capture_len(&c, 0), ==, 0);
	g_assert_cmpuint(capture_count(&c, 0), ==, 2);
	g_assert_cmpuint(encoder_pending(enc), ==, 0);
	add_ok(enc, &icmp);
	add_ok(enc, &create);
	add_ok(enc, &icmp);
	flush_ok(enc);
	g_assert_cmpuint(c.msgs->len, ==, 2);
	g_assert_cmpuint(capture_count(&c, 1), ==, 3);
	g_autofree char *two = g_strconcat(line_icmp4, line_icmp4, NULL);
	g_assert_cmpstr(capture_msg(&c, 1), ==, two);
	encoder_free(enc);
	capture_clear(&c);

	enc = new_encoder_records(EXPORT_RECORDS_BOTH, &c);
	start_ok(enc);
	add_ok(enc, &create);
	add_ok(enc, &end);
	flush_ok(enc);
	g_assert_cmpuint(c.msgs->len, ==, 1);
	g_assert_cmpuint(capture_count(&c, 0), ==, 2);
	gchar **lines = g_strsplit(capture_msg(&c, 0), "\n", -1);
	g_assert_cmpuint(g_strv_length(lines), ==, 4);   /* create, flow, delete, "" */
	g_assert_true(g_str_has_prefix(lines[0], "{\"nat_event\":\"create\""));
	g_autofree char *flow = g_strndup(line_udp4_snat, sizeof(line_udp4_snat) - 2);
	g_assert_cmpstr(lines[1], ==, flow);
	g_assert_true(g_str_has_prefix(lines[2], "{\"nat_event\":\"delete\""));
	g_strfreev(lines);
	encoder_free(enc);
	capture_clear(&c);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	/* One failing case is reported and the others still run. */
	g_test_set_nonfatal_assertions();

	for (size_t i = 0; i < G_N_ELEMENTS(fixed_cases); i++) {
		g_autofree char *path = g_strdup_printf("/encoder_json/line/%s", fixed_cases[i].name);
		g_test_add_data_func(path, &fixed_cases[i], test_fixed_line);
	}
	g_test_add_func("/encoder_json/end-reasons", test_end_reasons);
	g_test_add_func("/encoder_json/parser-refuses", test_parser_refuses);
	g_test_add_func("/encoder_json/generated-records", test_generated_records);
	g_test_add_data_func("/encoder_json/mtu/512", GUINT_TO_POINTER(512), test_mtu);
	g_test_add_data_func("/encoder_json/mtu/1400", GUINT_TO_POINTER(1400), test_mtu);
	g_test_add_data_func("/encoder_json/mtu/9000", GUINT_TO_POINTER(9000), test_mtu);
	g_test_add_data_func("/encoder_json/mtu/auto", GUINT_TO_POINTER(0), test_mtu);
	g_test_add_func("/encoder_json/message-limit", test_message_limit);
	g_test_add_func("/encoder_json/flush", test_flush);
	g_test_add_func("/encoder_json/statistics", test_statistics);
	g_test_add_func("/encoder_json/counters-modes", test_counters_modes);
	g_test_add_func("/encoder_json/longest-line", test_longest_line);
	g_test_add_func("/encoder_json/nat-events", test_nat_events);
	g_test_add_func("/encoder_json/nat-passed-over", test_nat_passed_over);

	g_test_add_func("/encoder_json/statistics-failover", test_statistics_failover);
	return g_test_run();
}
