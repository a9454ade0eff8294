/*
 * text.c - numbers, times and addresses as text, for the text formats.
 */
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include "text.h"

char *text_decimal(char *out, uint64_t v, int width)
{
	int n = 1;

	for (uint64_t rest = v / 10; rest; rest /= 10)
		n++;
	if (n < width)
		n = width;
	char *end = out + n;
	for (char *at = end; at > out; v /= 10)
		*--at = (char)('0' + v % 10);
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
	out = text_decimal(out, month, 2);
	*out++ = '-';
	out = text_decimal(out, day, 2);
	*out++ = 'T';
	out = text_decimal(out, sod / 3600, 2);
	*out++ = ':';
	out = text_decimal(out, sod / 60 % 60, 2);
	*out++ = ':';
	out = text_decimal(out, sod % 60, 2);
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

char *text_copy(char *out, const char *s)
{
	size_t n = strlen(s);

	memcpy(out, s, n);
	return out + n;
}
