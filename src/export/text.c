/*
 * text.c - numbers, times and addresses as text, for the text formats.
 */
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include "text.h"

/* "00" to "99": two digits per division, half the divisions of one at a
 * time, which the numbers of a record (counters, nanoseconds) feel. */
static const char digit_pairs[201] =
	"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
	"8081828384858687888990919293949596979899";

/* @v (below 100) as two digits */
static char *put2(char *out, unsigned v)
{
	memcpy(out, digit_pairs + 2 * v, 2);
	return out + 2;
}

/* The number of digits of @v: from its bit length, a guess that is at
 * most one short (1233 / 4096 is just below log10(2)), then one compare. */
static int digits_of(uint64_t v)
{
	static const uint64_t powers[20] = {
		1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull, 10000000ull,
		100000000ull, 1000000000ull, 10000000000ull, 100000000000ull, 1000000000000ull,
		10000000000000ull, 100000000000000ull, 1000000000000000ull,
		10000000000000000ull, 100000000000000000ull, 1000000000000000000ull,
		10000000000000000000ull,
	};

	if (v < 10)
		return 1;
	int guess = (64 - __builtin_clzll(v)) * 1233 >> 12;
	return guess + (v >= powers[guess]);
}

char *text_decimal(char *out, uint64_t v, int width)
{
	int n = digits_of(v);

	for (; width > n; width--)
		*out++ = '0';
	/* written from the end: eight digits per 64-bit division, the rest
	 * with 32-bit ones, which are cheaper */
	char *end = out + n, *at = end;
	while (v >= 100000000u) {
		uint64_t q = v / 100000000u;
		uint32_t r = (uint32_t)(v - q * 100000000u);
		for (int i = 0; i < 4; i++, r /= 100)
			put2(at -= 2, r % 100);
		v = q;
	}
	uint32_t w = (uint32_t)v;
	for (; w >= 100; w /= 100)
		put2(at -= 2, w % 100);
	if (w >= 10)
		put2(at - 2, w);
	else
		at[-1] = (char)('0' + w);
	return end;
}

/* The civil date of a day counted from 1970-01-01, in eras of 400 years. */
static void civil_from_days(int64_t days, int64_t *year, unsigned *month, unsigned *day)
{
	days += 719468;
	int64_t era = (days >= 0 ? days : days - 146096) / 146097;
	unsigned doe = (unsigned)(days - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;

	*day = doy - (153 * mp + 2) / 5 + 1;
	*month = mp < 10 ? mp + 3 : mp - 9;
	*year = (int64_t)yoe + era * 400 + (*month <= 2);
}

char *text_rfc3339(char *out, uint64_t ns, int digits)
{
	uint64_t secs = ns / 1000000000u, frac = ns % 1000000000u;
	int64_t year;
	unsigned month, day, sod = (unsigned)(secs % 86400);

	civil_from_days((int64_t)(secs / 86400), &year, &month, &day);
	out = text_decimal(out, (uint64_t)year, 4);
	*out++ = '-';
	out = put2(out, month);
	*out++ = '-';
	out = put2(out, day);
	*out++ = 'T';
	out = put2(out, sod / 3600);
	*out++ = ':';
	out = put2(out, sod / 60 % 60);
	*out++ = ':';
	out = put2(out, sod % 60);
	*out++ = '.';
	for (int i = digits; i < 9; i++)
		frac /= 10;
	out = text_decimal(out, frac, digits);
	*out++ = 'Z';
	return out;
}

char *text_addr(char *out, int family, const uint8_t addr[16])
{
	if (family == AF_INET6) {
		if (!inet_ntop(AF_INET6, addr, out, TEXT_ADDR_MAX))
			return out;
		return out + strlen(out);
	}
	for (int i = 0; i < 4; i++) {
		if (i)
			*out++ = '.';
		out = text_decimal(out, addr[i], 1);
	}
	return out;
}
