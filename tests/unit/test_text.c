/*
 * test_text.c - the numbers, times and addresses of the text formats.
 *
 * JSON and syslog write them without printf or gmtime_r, for speed; here
 * every one is checked against what the C library writes for the same
 * value: each number of digits and its neighbours, padding, times across
 * leap days, centuries and the end of 64-bit nanoseconds, and addresses.
 */
#include <arpa/inet.h>
#include <glib.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "../../src/export/text.h"

static char *decimal(uint64_t v, int width)
{
	char buf[64];

	memset(buf, 'x', sizeof(buf));
	char *end = text_decimal(buf, v, width);
	g_assert_cmpint(end - buf, <, 40);
	return g_strndup(buf, (gsize)(end - buf));
}

static void check_decimal(uint64_t v)
{
	for (int width = 1; width <= 22; width++) {
		char want[64];
		g_snprintf(want, sizeof(want), "%0*" PRIu64, width, v);
		g_autofree char *got = decimal(v, width);
		g_assert_cmpstr(got, ==, want);
	}
}

/* every power of ten and its neighbours, to the largest value */
static void test_decimal(void)
{
	check_decimal(0);
	for (uint64_t p = 1; p <= G_GUINT64_CONSTANT(10000000000000000000); p *= 10) {
		check_decimal(p - 1);
		check_decimal(p);
		check_decimal(p + 1);
		if (p > G_MAXUINT64 / 10)
			break;
	}
	check_decimal(G_MAXUINT64);
	check_decimal(G_MAXUINT64 - 1);
	GRand *rand = g_rand_new_with_seed(7);
	for (int i = 0; i < 10000; i++) {
		uint64_t v = (uint64_t)g_rand_int(rand) << 32 | g_rand_int(rand);
		check_decimal(v >> g_rand_int_range(rand, 0, 64));
	}
	g_rand_free(rand);
}

static void check_time(uint64_t ns)
{
	time_t secs = (time_t)(ns / 1000000000u);
	struct tm tm;

	g_assert_nonnull(gmtime_r(&secs, &tm));
	for (int digits = 1; digits <= 9; digits++) {
		char want[64], date[32], buf[64];
		uint64_t frac = ns % 1000000000u;
		for (int i = digits; i < 9; i++)
			frac /= 10;
		strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
		g_snprintf(want, sizeof(want), "%s.%0*" PRIu64 "Z", date, digits, frac);
		char *end = text_rfc3339(buf, ns, digits);
		g_assert_cmpint(end - buf, <=, 32);
		*end = '\0';
		g_assert_cmpstr(buf, ==, want);
	}
}

/* the epoch, leap days, the turns of centuries, and the last nanosecond a
 * uint64_t holds, each against gmtime_r */
static void test_rfc3339(void)
{
	static const uint64_t secs[] = {
		0, 59, 86399, 86400,
		951782399, 951782400, 951868800,   /* 2000-02-28/29, 2000-03-01 */
		1709164800, 1709251200,            /* 2024-02-29, 2024-03-01 */
		4107456000, 4107542400,            /* 2100-02-28, 2100-03-01 */
		1767225599, 1767225600,            /* the turn of 2026 */
		G_GUINT64_CONSTANT(18446744073),   /* 2554-07-21, the last */
	};

	for (gsize i = 0; i < G_N_ELEMENTS(secs); i++) {
		check_time(secs[i] * 1000000000u);
		check_time(secs[i] * 1000000000u + 999999999u);
		check_time(secs[i] * 1000000000u + 1000u);
	}
	check_time(G_MAXUINT64);
	GRand *rand = g_rand_new_with_seed(11);
	for (int i = 0; i < 20000; i++)
		check_time(((uint64_t)g_rand_int(rand) << 32 | g_rand_int(rand)) >>
			   g_rand_int_range(rand, 0, 8));
	g_rand_free(rand);
}

static void check_addr(int family, const char *text)
{
	uint8_t addr[16] = {0};
	char buf[TEXT_ADDR_MAX + 1], want[INET6_ADDRSTRLEN];

	g_assert_cmpint(inet_pton(family, text, addr), ==, 1);
	g_assert_nonnull(inet_ntop(family, addr, want, sizeof(want)));
	*text_addr(buf, family, addr) = '\0';
	g_assert_cmpstr(buf, ==, want);
}

static void test_addr(void)
{
	check_addr(AF_INET, "0.0.0.0");
	check_addr(AF_INET, "255.255.255.255");
	check_addr(AF_INET, "10.0.99.100");
	check_addr(AF_INET, "192.0.2.9");
	check_addr(AF_INET6, "::");
	check_addr(AF_INET6, "2001:db8::1");
	check_addr(AF_INET6, "::ffff:192.0.2.1");
	check_addr(AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/text/decimal", test_decimal);
	g_test_add_func("/text/rfc3339", test_rfc3339);
	g_test_add_func("/text/addr", test_addr);
	return g_test_run();
}
