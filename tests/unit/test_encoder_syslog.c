/*
 * test_encoder_syslog.c - flow records as syslog messages.
 *
 * A fixed record is checked against the exact bytes a receiver gets, per
 * framing: RFC 5424 in one datagram (udp), octet counted (tcp, RFC 6587),
 * one a line (file), and the RFC 3164 form of the local socket.  Then what
 * the counters key, NAT, ICMP, IPv6 and missing kernel values change, that
 * no value ever needs escaping as a PARAM-VALUE, the batching of a stream under its limit, and
 * the configuration's errors for the syslog keys.
 */
#include <arpa/inet.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ctflowd/encoder.h"
#include "../../src/export/format.h"
#include "encoder_capture.h"

static char *capture_text(const struct capture *c, guint i)
{
	gsize len;
	const char *data = g_bytes_get_data(g_ptr_array_index(c->msgs, i), &len);

	return g_strndup(data, len);
}

/* The defaults of the configuration, with a fixed host name. */
static struct export_config syslog_config(enum export_transport transport)
{
	return (struct export_config){
		.name = (char *)"siem",
		.format = EXPORT_FORMAT_SYSLOG,
		.transport = transport,
		.syslog_facility = 16,
		.syslog_severity = 6,
		.syslog_app_name = (char *)"ctflowd",
		.syslog_hostname = (char *)"fw1",
		.syslog_sd_id = (char *)"ctflowd@32473",
	};
}

static encoder *start(const struct export_config *cfg, struct capture *c, guint limit)
{
	g_autoptr(GError) error = NULL;

	capture_init(c);
	encoder *enc = encoder_new(cfg, capture_emit, c, &error);
	g_assert_no_error(error);
	if (limit)
		encoder_set_message_limit(enc, limit);
	g_assert_true(encoder_start_session(enc, &error));
	g_assert_no_error(error);
	return enc;
}

static void put4(uint8_t a[16], const char *text)
{
	memset(a, 0, 16);
	g_assert_cmpint(inet_pton(AF_INET, text, a), ==, 1);
}

/* 2026-01-01T00:00:00.123456789Z to 2026-01-01T00:01:01.987654321Z */
#define T_START G_GUINT64_CONSTANT(1767225600123456789)
#define T_END G_GUINT64_CONSTANT(1767225661987654321)

/* TCP 192.0.2.1:40000 -> 198.51.100.2:443, source NAT to 203.0.113.5:50000 */
static struct flow_record nat_record(void)
{
	struct flow_record r = {0};

	r.family = AF_INET;
	r.proto = 6;
	put4(r.orig.src, "192.0.2.1");
	put4(r.orig.dst, "198.51.100.2");
	r.orig.sport = 40000;
	r.orig.dport = 443;
	put4(r.reply.src, "198.51.100.2");
	put4(r.reply.dst, "203.0.113.5");
	r.reply.sport = 443;
	r.reply.dport = 50000;
	r.packets = 10;
	r.bytes = 1000;
	r.reply_packets = 8;
	r.reply_bytes = 6000;
	r.start_ns = T_START;
	r.end_ns = T_END;
	r.flow_id = 42;
	r.zone = 3;
	r.mark = 16;
	r.end_reason = FLOW_END_IDLE_TIMEOUT;
	r.flags = FLOW_HAS_COUNTERS | FLOW_HAS_TIMESTAMPS | FLOW_HAS_ID;
	r.event = FLOW_EVENT_DESTROY;
	return r;
}

#define NAT_SD                                                                                   \
	"[ctflowd@32473 flowId=\"42\" proto=\"6\" src=\"192.0.2.1\" dst=\"198.51.100.2\""       \
	" sport=\"40000\" dport=\"443\" postNatSrc=\"203.0.113.5\" postNatDst=\"198.51.100.2\"" \
	" postNatSport=\"50000\" postNatDport=\"443\" packets=\"10\" bytes=\"1000\""            \
	" replyPackets=\"8\" replyBytes=\"6000\" start=\"2026-01-01T00:00:00.123456789Z\""     \
	" end=\"2026-01-01T00:01:01.987654321Z\" endReason=\"idle\" interim=\"0\" zone=\"3\""   \
	" mark=\"16\"]"

static char *rfc5424_header(void)
{
	/* PRI 134: local0 (16) * 8 + info (6); the time is the record's end */
	return g_strdup_printf("<134>1 2026-01-01T00:01:01.987654Z fw1 ctflowd %ld flow ",
			       (long)getpid());
}

/* The record formatted alone, over @transport, as one string. */
static char *one_message(const struct export_config *cfg, const struct flow_record *r)
{
	struct capture c;
	g_autoptr(GError) error = NULL;
	encoder *enc = start(cfg, &c, 0);

	g_assert_true(encoder_add(enc, r, &error));
	g_assert_true(encoder_flush(enc, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(c.msgs->len, ==, 1);
	g_assert_cmpuint(capture_count(&c, 0), ==, 1);
	char *text = capture_text(&c, 0);
	encoder_free(enc);
	capture_clear(&c);
	return text;
}

static void test_udp_exact(void)
{
	struct export_config cfg = syslog_config(EXPORT_TRANSPORT_UDP);
	struct flow_record r = nat_record();
	g_autofree char *header = rfc5424_header();
	g_autofree char *want = g_strconcat(header, NAT_SD, NULL);
	g_autofree char *got = one_message(&cfg, &r);

	g_assert_cmpstr(got, ==, want);
}

static void test_udp_one_per_datagram(void)
{
	struct export_config cfg = syslog_config(EXPORT_TRANSPORT_UDP);
	struct flow_record r = nat_record();
	g_autoptr(GError) error = NULL;
	struct capture c;
	encoder *enc = start(&cfg, &c, 512);

	/* each add is a datagram of its own, nothing waits for a flush */
	for (int i = 0; i < 3; i++) {
		r.flow_id = 100 + (guint64)i;
		g_assert_true(encoder_add(enc, &r, &error));
		g_assert_cmpuint(c.msgs->len, ==, (guint)i + 1);
		g_assert_cmpuint(encoder_pending(enc), ==, 0);
	}
	for (guint i = 0; i < 3; i++) {
		g_autofree char *m = capture_text(&c, i);
		g_autofree char *id = g_strdup_printf("flowId=\"%u\"", 100 + i);
		g_assert_cmpuint(capture_count(&c, i), ==, 1);
		g_assert_nonnull(strstr(m, id));
		g_assert_true(g_str_has_prefix(m, "<134>1 "));
		g_assert_true(g_str_has_suffix(m, "mark=\"16\"]"));
	}
	encoder_free(enc);
	capture_clear(&c);
}

static void test_tcp_octet_counting(void)
{
	struct export_config cfg = syslog_config(EXPORT_TRANSPORT_TCP);
	struct flow_record r = nat_record();
	g_autofree char *header = rfc5424_header();
	g_autofree char *msg = g_strconcat(header, NAT_SD, NULL);
	g_autofree char *want = g_strdup_printf("%zu %s%zu %s", strlen(msg), msg, strlen(msg), msg);
	g_autoptr(GError) error = NULL;
	struct capture c;
	encoder *enc = start(&cfg, &c, 0);

	g_assert_true(encoder_add(enc, &r, &error));
	g_assert_true(encoder_add(enc, &r, &error));
	g_assert_cmpuint(c.msgs->len, ==, 0);
	g_assert_cmpuint(encoder_pending(enc), ==, 2);
	g_assert_true(encoder_flush(enc, &error));
	g_assert_cmpuint(c.msgs->len, ==, 1);
	g_assert_cmpuint(capture_count(&c, 0), ==, 2);
	g_autofree char *got = capture_text(&c, 0);
	g_assert_cmpstr(got, ==, want);
	encoder_free(enc);
	capture_clear(&c);
}

/* Parses "LEN SP MSG" frames, each whole within one write. */
static guint count_frames(const char *data, gsize len)
{
	guint n = 0;
	gsize at = 0;

	while (at < len) {
		char *end;
		guint64 msg_len = g_ascii_strtoull(data + at, &end, 10);
		g_assert_true(end > data + at && *end == ' ');
		at = (gsize)(end - data) + 1 + msg_len;
		g_assert_cmpuint(at, <=, len);
		g_assert_true(data[at - 1] == ']');
		n++;
	}
	return n;
}

static void test_tcp_batches_under_limit(void)
{
	struct export_config cfg = syslog_config(EXPORT_TRANSPORT_TCP);
	struct flow_record r = nat_record();
	g_autoptr(GError) error = NULL;
	struct capture c;
	encoder *enc = start(&cfg, &c, 1400);
	guint frames = 0, records = 0;

	for (int i = 0; i < 50; i++) {
		r.flow_id = (guint64)i * 1000003u;
		g_assert_true(encoder_add(enc, &r, &error));
	}
	g_assert_true(encoder_flush(enc, &error));
	g_assert_cmpuint(c.msgs->len, >, 1);
	for (guint i = 0; i < c.msgs->len; i++) {
		gsize len;
		const char *data = g_bytes_get_data(g_ptr_array_index(c.msgs, i), &len);
		guint n = count_frames(data, len);
		g_assert_cmpuint(len, <=, 1400);
		g_assert_cmpuint(n, ==, capture_count(&c, i));
		frames += n;
		records += capture_count(&c, i);
	}
	g_assert_cmpuint(frames, ==, 50);
	g_assert_cmpuint(records, ==, 50);
	g_assert_cmpuint(encoder_pending(enc), ==, 0);
	encoder_free(enc);
	capture_clear(&c);
}

/* A stream that breaks: the error comes back, and the next session starts
 * with an empty batch (its records are sent again by the sink). */
static void test_stream_error(void)
{
	struct export_config cfg = syslog_config(EXPORT_TRANSPORT_TCP);
	struct flow_record r = nat_record();
	g_autoptr(GError) error = NULL;
	struct capture c;
	encoder *enc = start(&cfg, &c, 0);

	g_assert_true(encoder_add(enc, &r, &error));
	c.fail = TRUE;
	g_assert_false(encoder_flush(enc, &error));
	g_assert_error(error, TEST_ERROR, 42);
	g_clear_error(&error);
	g_assert_true(encoder_start_session(enc, &error));
	r.flow_id = 43;
	g_assert_true(encoder_add(enc, &r, &error));
	g_assert_true(encoder_flush(enc, &error));
	g_assert_cmpuint(c.msgs->len, ==, 1);
	g_assert_cmpuint(capture_count(&c, 0), ==, 1);
	g_autofree char *m = capture_text(&c, 0);
	g_assert_null(strstr(m, "flowId=\"42\""));
	g_assert_nonnull(strstr(m, "flowId=\"43\""));
	encoder_free(enc);
	capture_clear(&c);
}

/* A message larger than the limit still goes whole, in one datagram, and
 * the log says so once. */
static void test_udp_oversize(void)
{
	struct export_config cfg = syslog_config(EXPORT_TRANSPORT_UDP);
	struct flow_record r = nat_record();
	g_autoptr(GError) error = NULL;
	struct capture c;

	cfg.syslog_text = TRUE;
	encoder *enc = start(&cfg, &c, 512);
	g_test_expect_message("ctflowd", G_LOG_LEVEL_WARNING,
			      "export siem: a syslog message of * bytes is larger than the message limit"
			      " of 512 bytes; it is sent whole*");
	g_assert_true(encoder_add(enc, &r, &error));
	g_assert_true(encoder_add(enc, &r, &error));
	g_test_assert_expected_messages();
	g_assert_cmpuint(c.msgs->len, ==, 2);
	for (guint i = 0; i < 2; i++) {
		gsize len;
		const char *data = g_bytes_get_data(g_ptr_array_index(c.msgs, i), &len);
		g_assert_cmpuint(len, >, 512);
		g_assert_true(data[len - 1] == '6');   /* ends with the text's mark=16 */
		g_assert_cmpuint(capture_count(&c, i), ==, 1);
	}
	encoder_free(enc);
	capture_clear(&c);
}

static void test_file_lines(void)
{
	struct export_config cfg = syslog_config(EXPORT_TRANSPORT_FILE);
	struct flow_record r = nat_record();
	g_autofree char *header = rfc5424_header();
	g_autofree char *want = g_strconcat(header, NAT_SD, "\n", NULL);
	g_autofree char *got = one_message(&cfg, &r);

	g_assert_cmpstr(got, ==, want);
}

static void test_local_rfc3164(void)
{
	struct export_config cfg = syslog_config(EXPORT_TRANSPORT_LOCAL);
	struct flow_record r = nat_record();
	g_autofree char *want = g_strdup_printf("<134>Jan  1 00:01:01 ctflowd[%ld]: %s",
						(long)getpid(), NAT_SD);
	g_autofree char *got = one_message(&cfg, &r);

	/* local time; main() runs the tests in UTC */
	g_assert_cmpstr(got, ==, want);
}

static void test_text(void)
{
	struct export_config cfg = syslog_config(EXPORT_TRANSPORT_UDP);
	struct flow_record r = nat_record();
	g_autofree char *got = NULL;

	cfg.syslog_text = TRUE;
	cfg.syslog_facility = 23;
	cfg.syslog_severity = 0;
	cfg.syslog_app_name = (char *)"flows";
	cfg.syslog_hostname = (char *)"gw.example.net";
	cfg.syslog_sd_id = (char *)"flow@64496";
	got = one_message(&cfg, &r);
	g_autofree char *want = g_strdup_printf(
		"<184>1 2026-01-01T00:01:01.987654Z gw.example.net flows %ld flow [flow@64496 flowId=\"42\"",
		(long)getpid());
	g_assert_true(g_str_has_prefix(got, want));
	g_assert_true(g_str_has_suffix(got,
		" mark=\"16\"] flowId=42 proto=6 src=192.0.2.1 dst=198.51.100.2 sport=40000 dport=443"
		" postNatSrc=203.0.113.5 postNatDst=198.51.100.2 postNatSport=50000 postNatDport=443"
		" packets=10 bytes=1000 replyPackets=8 replyBytes=6000"
		" start=2026-01-01T00:00:00.123456789Z end=2026-01-01T00:01:01.987654321Z"
		" endReason=idle interim=0 zone=3 mark=16"));
}

/* An interim record of a connection whose earlier records reported 4/400
 * and 3/2000, the period beginning 30 s after the start. */
static struct flow_record interim_record(void)
{
	struct flow_record r = nat_record();

	r.end_reason = FLOW_END_ACTIVE_TIMEOUT;
	r.base_packets = 4;
	r.base_bytes = 400;
	r.base_reply_packets = 3;
	r.base_reply_bytes = 2000;
	r.period_start_ns = T_START + G_GUINT64_CONSTANT(30000000000);
	return r;
}

static void test_counters(void)
{
	struct export_config cfg = syslog_config(EXPORT_TRANSPORT_UDP);
	struct flow_record r = interim_record();
	const char *counts_delta = " packets=\"6\" bytes=\"600\" replyPackets=\"5\" replyBytes=\"4000\" ";
	const char *counts_total = " packets=\"10\" bytes=\"1000\" replyPackets=\"8\" replyBytes=\"6000\" ";
	const char *period = " periodStart=\"2026-01-01T00:00:30.123456789Z\"";

	cfg.counters = EXPORT_COUNTERS_DELTA;
	g_autofree char *delta = one_message(&cfg, &r);
	g_assert_nonnull(strstr(delta, counts_delta));
	g_assert_nonnull(strstr(delta, period));
	g_assert_nonnull(strstr(delta, " endReason=\"active\" interim=\"1\" "));
	g_assert_null(strstr(delta, "total"));

	cfg.counters = EXPORT_COUNTERS_TOTAL;
	g_autofree char *total = one_message(&cfg, &r);
	g_assert_nonnull(strstr(total, counts_total));
	g_assert_null(strstr(total, "periodStart"));

	cfg.counters = EXPORT_COUNTERS_BOTH;
	g_autofree char *both = one_message(&cfg, &r);
	g_assert_nonnull(strstr(both, " packets=\"6\" bytes=\"600\" replyPackets=\"5\" replyBytes=\"4000\""
				      " totalPackets=\"10\" totalBytes=\"1000\" totalReplyPackets=\"8\""
				      " totalReplyBytes=\"6000\" start="));
	g_assert_nonnull(strstr(both, period));

	/* a connection without interim records: deltas are totals, no period */
	struct flow_record plain = nat_record();
	cfg.counters = EXPORT_COUNTERS_DELTA;
	g_autofree char *first = one_message(&cfg, &plain);
	g_assert_nonnull(strstr(first, counts_total));
	g_assert_null(strstr(first, "periodStart"));
}

static void test_icmp6_no_nat_no_kernel_values(void)
{
	struct export_config cfg = syslog_config(EXPORT_TRANSPORT_UDP);
	struct flow_record r = {0};

	r.family = AF_INET6;
	r.proto = 58;
	g_assert_cmpint(inet_pton(AF_INET6, "2001:db8::1", r.orig.src), ==, 1);
	g_assert_cmpint(inet_pton(AF_INET6, "2001:db8::2", r.orig.dst), ==, 1);
	memcpy(r.reply.src, r.orig.dst, 16);
	memcpy(r.reply.dst, r.orig.src, 16);
	r.orig.sport = r.reply.sport = 77;
	r.icmp_type = 128;
	r.flow_id = 7;
	r.end_reason = FLOW_END_FORCED;
	r.flags = FLOW_HAS_ID;   /* no counters, no timestamps */

	g_autofree char *got = one_message(&cfg, &r);
	g_assert_nonnull(strstr(got, "[ctflowd@32473 flowId=\"7\" proto=\"58\" src=\"2001:db8::1\""
				     " dst=\"2001:db8::2\" icmpType=\"128\" icmpCode=\"0\" icmpId=\"77\""
				     " endReason=\"forced\" interim=\"0\" zone=\"0\" mark=\"0\"]"));
	g_assert_null(strstr(got, "postNat"));
	g_assert_null(strstr(got, "packets"));

	/* the same through a NAT that changed the echo id */
	r.reply.sport = 99;
	g_autofree char *nat = one_message(&cfg, &r);
	g_assert_nonnull(strstr(nat, " icmpId=\"77\" postNatSrc=\"2001:db8::1\" postNatDst=\"2001:db8::2\""
				     " postNatIcmpId=\"99\" endReason="));
	g_assert_null(strstr(got, "start"));
	/* the header's time is then when it was sent: an RFC 3339 UTC time */
	g_assert_true(g_str_has_prefix(got, "<134>1 20"));
	g_assert_nonnull(strstr(got, "Z fw1 ctflowd "));
}

/*
 * Checks that @sd is one SD-ELEMENT whose every PARAM-VALUE holds none of
 * the characters RFC 5424 section 6.3.3 says must be escaped ('"', '\',
 * ']'): values are written without escaping, so none may ever need it.
 * Returns the number of params.
 */
static const char *found(const char *at)
{
	if (!at)
		g_error("the structured data ends early");
	return at;
}

static guint check_sd_unescaped(const char *sd)
{
	guint n = 0;

	g_assert_cmpint(*sd, ==, '[');
	sd = found(strchr(sd, ' '));
	while (*sd == ' ') {
		const char *eq = found(strchr(sd, '='));
		for (const char *c = sd + 1; c < eq; c++)
			g_assert_true(*c > 32 && *c < 127 && *c != '"' && *c != ']');
		g_assert_cmpint(eq[1], ==, '"');
		const char *v = eq + 2, *end = found(strchr(v, '"'));
		for (const char *c = v; c < end; c++)
			g_assert_true(*c >= 32 && *c < 127 && *c != '\\' && *c != ']');
		n++;
		sd = end + 1;
	}
	g_assert_cmpint(*sd, ==, ']');
	return n;
}

/* Every end reason, the longest addresses and the largest numbers: values
 * at their longest, none that would need escaping, the text repeating them
 * exactly. */
static void test_values_need_no_escaping(void)
{
	struct export_config cfg = syslog_config(EXPORT_TRANSPORT_UDP);
	struct flow_record r = nat_record();

	cfg.syslog_text = TRUE;
	cfg.counters = EXPORT_COUNTERS_BOTH;
	r.family = AF_INET6;
	memset(r.orig.src, 0xff, 16);
	memset(r.orig.dst, 0xfe, 16);
	memset(r.reply.src, 0xfd, 16);
	memset(r.reply.dst, 0xfc, 16);
	r.packets = r.bytes = r.reply_packets = r.reply_bytes = G_MAXUINT64;
	r.flow_id = G_MAXUINT64;
	r.zone = G_MAXUINT16;
	r.mark = G_MAXUINT32;
	r.end_ns = G_MAXUINT64;
	for (guint reason = 0; reason < 256; reason++) {
		r.end_reason = (uint8_t)reason;
		g_autofree char *got = one_message(&cfg, &r);
		const char *sd = found(strchr(got, '['));
		guint n = check_sd_unescaped(sd);
		g_assert_cmpuint(n, >=, 20);
		/* the text: each param again, as name=value */
		const char *text = found(strstr(sd, "] "));
		g_auto(GStrv) pairs = g_strsplit(text + 2, " ", -1);
		g_assert_cmpuint(g_strv_length(pairs), ==, n);
		for (guint i = 0; i < n; i++) {
			g_auto(GStrv) kv = g_strsplit(pairs[i], "=", 2);
			g_autofree char *param = g_strdup_printf(" %s=\"%s\"", kv[0], kv[1]);
			g_assert_nonnull(strstr(sd, param));
		}
		g_assert_nonnull(strstr(got, " bytes=\"18446744073709551615\""));
		g_assert_nonnull(strstr(got, " src=\"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff\""));
		g_assert_nonnull(strstr(got, " end=\"2554-07-21T23:34:33.709551615Z\""));
	}
}

/* The header's fields obey RFC 5424's limits with the longest values the
 * configuration takes. */
static void test_longest_header(void)
{
	struct export_config cfg = syslog_config(EXPORT_TRANSPORT_UDP);
	struct flow_record r = nat_record();
	g_autofree char *host = g_strnfill(SYSLOG_HOSTNAME_MAX, 'h');
	g_autofree char *app = g_strnfill(SYSLOG_APP_NAME_MAX, 'a');

	cfg.syslog_hostname = host;
	cfg.syslog_app_name = app;
	g_autofree char *got = one_message(&cfg, &r);
	g_auto(GStrv) f = g_strsplit(got, " ", 7);
	g_assert_cmpstr(f[2], ==, host);
	g_assert_cmpstr(f[3], ==, app);
	g_assert_cmpstr(f[5], ==, "flow");
}

/* ------------------------------------------------------------------------
 * Configuration
 */

static const char *const head = "[export s]\nformat = syslog\ntransport = udp\n"
				"destination = 127.0.0.1:514\n";

static char *config_error(const char *extra)
{
	g_autofree char *text = g_strconcat(head, extra, NULL);
	g_autoptr(GError) error = NULL;
	struct ctflowd_config *config = config_load_data(text, "t.conf", &error);

	g_assert_null(config);
	g_assert_nonnull(error);
	return g_strdup(error->message);
}

static struct ctflowd_config *config_ok(const char *extra)
{
	g_autofree char *text = g_strconcat(head, extra, NULL);
	g_autoptr(GError) error = NULL;
	struct ctflowd_config *config = config_load_data(text, "t.conf", &error);

	g_assert_no_error(error);
	return config;
}

static void test_config_values(void)
{
	struct ctflowd_config *c = config_ok("");
	const struct export_config *e = g_ptr_array_index(c->exports, 0);
	g_assert_cmpuint(e->syslog_facility, ==, 16);
	g_assert_cmpuint(e->syslog_severity, ==, 6);
	g_assert_cmpstr(e->syslog_app_name, ==, "ctflowd");
	g_assert_null(e->syslog_hostname);
	g_assert_cmpstr(e->syslog_sd_id, ==, "ctflowd@32473");
	g_assert_false(e->syslog_text);
	g_assert_cmpuint(e->mtu, ==, 0);   /* udp: auto */
	config_free(c);

	c = config_ok("syslog_facility = LOCAL7\nsyslog_severity = 3\nsyslog_hostname =\n");
	e = g_ptr_array_index(c->exports, 0);
	g_assert_cmpuint(e->syslog_facility, ==, 23);
	g_assert_cmpuint(e->syslog_severity, ==, 3);
	g_autofree char *printed = config_to_string(c);
	g_assert_nonnull(strstr(printed, "syslog_facility = local7\nsyslog_severity = err\n"));
	config_free(c);

	c = config_load_data("[export j]\nformat = syslog\ntransport = local\n", "t.conf", NULL);
	g_assert_nonnull(c);
	e = g_ptr_array_index(c->exports, 0);
	g_assert_cmpstr(e->path, ==, "/dev/log");
	config_free(c);
}

static void test_config_errors(void)
{
	static const struct {
		const char *extra;
		const char *want;
	} cases[] = {
		{ "syslog_facility = 24\n", "t.conf:5: [export s] syslog_facility: expected a name (kern," },
		{ "syslog_facility = lokal0\n", "got \"lokal0\"" },
		{ "syslog_severity = 8\n", "t.conf:5: [export s] syslog_severity: expected a name (emerg," },
		{ "syslog_app_name = caf\xc3\xa9\n",
		  "t.conf:5: [export s] syslog_app_name: expected printable US-ASCII" },
		{ "syslog_app_name = aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
		  "syslog_app_name: expected at most 48 characters (RFC 5424), got 49" },
		{ "syslog_hostname = a\\sb\n", "syslog_hostname: expected printable US-ASCII" },
		{ "syslog_sd_id = flow\n", "syslog_sd_id: expected NAME@NUMBER" },
		{ "syslog_sd_id = flow@\n", "syslog_sd_id: expected NAME@NUMBER" },
		{ "syslog_sd_id = flow@12x\n", "syslog_sd_id: expected NAME@NUMBER" },
		{ "syslog_sd_id = f=w@1\n", "syslog_sd_id: expected an SD-ID of at most 32" },
		{ "syslog_sd_id = aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@1\n", "expected an SD-ID of at most 32" },
		{ "syslog_text = maybe\n", "syslog_text: expected yes or no" },
		{ "uniflow = yes\n", "uniflow: is for format ipfix" },
		{ "statistics = 60s\n", "statistics: is for format ipfix and json" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *msg = config_error(cases[i].extra);
		if (!strstr(msg, cases[i].want))
			g_error("case %zu: \"%s\" lacks \"%s\"", i, msg, cases[i].want);
	}
}

/* records = nat-events: the session in the form of the IETF syslog NAT
 * logging draft, one message per event. */
#define EVENT_SD(ev, time, late)                                                                  \
	"[ctflowd@32473 event=\"" ev "\" time=\"" time "\" proto=\"6\" src=\"192.0.2.1\""        \
	" postNatSrc=\"203.0.113.5\" sport=\"40000\" postNatSport=\"50000\" dst=\"198.51.100.2\"" \
	" postNatDst=\"198.51.100.2\" dport=\"443\" postNatDport=\"443\" zone=\"3\" late=\"" late  \
	"\" refresh=\"0\"]"

static struct export_config events_config(enum export_transport transport,
					  enum export_records records)
{
	struct export_config cfg = syslog_config(transport);

	cfg.records = records;
	return cfg;
}

/* A DESTROY whose NEW was lost: a late SADD at the start, then the SDEL
 * at the end, a datagram each, the record counted with the last. */
static void test_nat_events_udp(void)
{
	struct export_config cfg = events_config(EXPORT_TRANSPORT_UDP, EXPORT_RECORDS_NAT_EVENTS);
	struct flow_record r = nat_record();
	g_autoptr(GError) error = NULL;
	struct capture c;
	encoder *enc = start(&cfg, &c, 0);

	r.flags |= FLOW_LATE;
	g_assert_true(encoder_add(enc, &r, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(c.msgs->len, ==, 2);
	g_assert_cmpuint(capture_count(&c, 0), ==, 0);
	g_assert_cmpuint(capture_count(&c, 1), ==, 1);
	g_assert_cmpuint(encoder_pending(enc), ==, 0);
	g_autofree char *add = g_strdup_printf(
		"<134>1 2026-01-01T00:00:00.123456Z fw1 ctflowd %ld SADD "
		EVENT_SD("SADD", "2026-01-01T00:00:00.123456789Z", "1"), (long)getpid());
	g_autofree char *del = g_strdup_printf(
		"<134>1 2026-01-01T00:01:01.987654Z fw1 ctflowd %ld SDEL "
		EVENT_SD("SDEL", "2026-01-01T00:01:01.987654321Z", "0"), (long)getpid());
	g_autofree char *got_add = capture_text(&c, 0);
	g_autofree char *got_del = capture_text(&c, 1);
	g_assert_cmpstr(got_add, ==, add);
	g_assert_cmpstr(got_del, ==, del);
	encoder_free(enc);
	capture_clear(&c);
}

/* records = both over TCP: a create record (no flow) is a refreshed SADD;
 * a DESTROY is its flow message and then its SDEL, framed in one write. */
static void test_nat_events_tcp_both(void)
{
	struct export_config cfg = events_config(EXPORT_TRANSPORT_TCP, EXPORT_RECORDS_BOTH);
	struct flow_record create = nat_record(), r = nat_record();
	g_autoptr(GError) error = NULL;
	struct capture c;
	encoder *enc = start(&cfg, &c, 0);

	create.event = FLOW_EVENT_NEW;
	create.flags |= FLOW_REFRESH;
	g_assert_true(encoder_add(enc, &create, &error));
	g_assert_true(encoder_add(enc, &r, &error));
	g_assert_true(encoder_flush(enc, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(c.msgs->len, ==, 1);
	g_assert_cmpuint(capture_count(&c, 0), ==, 2);
	g_autofree char *header = rfc5424_header();
	g_autofree char *flow = g_strconcat(header, NAT_SD, NULL);
	g_autofree char *add = g_strdup_printf(
		"<134>1 2026-01-01T00:01:01.987654Z fw1 ctflowd %ld SADD "
		"[ctflowd@32473 event=\"SADD\" time=\"2026-01-01T00:01:01.987654321Z\" proto=\"6\""
		" src=\"192.0.2.1\" postNatSrc=\"203.0.113.5\" sport=\"40000\" postNatSport=\"50000\""
		" dst=\"198.51.100.2\" postNatDst=\"198.51.100.2\" dport=\"443\" postNatDport=\"443\""
		" zone=\"3\" late=\"0\" refresh=\"1\"]", (long)getpid());
	g_autofree char *del = g_strdup_printf(
		"<134>1 2026-01-01T00:01:01.987654Z fw1 ctflowd %ld SDEL "
		EVENT_SD("SDEL", "2026-01-01T00:01:01.987654321Z", "0"), (long)getpid());
	g_autofree char *want = g_strdup_printf("%zu %s%zu %s%zu %s", strlen(add), add,
						strlen(flow), flow, strlen(del), del);
	g_autofree char *got = capture_text(&c, 0);
	g_assert_cmpstr(got, ==, want);
	encoder_free(enc);
	capture_clear(&c);
}

/* The local form has no MSGID: the event is in the structured data. */
static void test_nat_event_local(void)
{
	struct export_config cfg = events_config(EXPORT_TRANSPORT_LOCAL, EXPORT_RECORDS_NAT_EVENTS);
	struct flow_record r = nat_record();
	g_autofree char *got = one_message(&cfg, &r);
	g_autofree char *tag = g_strdup_printf(" ctflowd[%ld]: ", (long)getpid());

	g_assert_true(g_str_has_prefix(got, "<134>"));
	g_assert_nonnull(strstr(got, tag));
	g_assert_true(g_str_has_suffix(got, EVENT_SD("SDEL", "2026-01-01T00:01:01.987654321Z", "0")));
}

int main(int argc, char **argv)
{
	/* the RFC 3164 header of the local socket is in local time */
	setenv("TZ", "UTC", 1);
	tzset();
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/encoder_syslog/udp-exact", test_udp_exact);
	g_test_add_func("/encoder_syslog/udp-one-per-datagram", test_udp_one_per_datagram);
	g_test_add_func("/encoder_syslog/tcp-octet-counting", test_tcp_octet_counting);
	g_test_add_func("/encoder_syslog/tcp-batches-under-limit", test_tcp_batches_under_limit);
	g_test_add_func("/encoder_syslog/stream-error", test_stream_error);
	g_test_add_func("/encoder_syslog/udp-oversize", test_udp_oversize);
	g_test_add_func("/encoder_syslog/file-lines", test_file_lines);
	g_test_add_func("/encoder_syslog/local-rfc3164", test_local_rfc3164);
	g_test_add_func("/encoder_syslog/text", test_text);
	g_test_add_func("/encoder_syslog/counters", test_counters);
	g_test_add_func("/encoder_syslog/icmp6-no-nat-no-kernel-values",
			test_icmp6_no_nat_no_kernel_values);
	g_test_add_func("/encoder_syslog/values-need-no-escaping", test_values_need_no_escaping);
	g_test_add_func("/encoder_syslog/longest-header", test_longest_header);
	g_test_add_func("/encoder_syslog/config-values", test_config_values);
	g_test_add_func("/encoder_syslog/config-errors", test_config_errors);
	g_test_add_func("/encoder_syslog/nat-events-udp", test_nat_events_udp);
	g_test_add_func("/encoder_syslog/nat-events-tcp-both", test_nat_events_tcp_both);
	g_test_add_func("/encoder_syslog/nat-event-local", test_nat_event_local);
	return g_test_run();
}
