/*
 * text.h - the pieces of text formats (JSON lines, syslog) that every
 * record needs, written without printf: at a few hundred thousand records
 * a second, printf and gmtime_r cost more than all the rest of a record.
 * Private to src/export.  Each writes at @out, which has room, and returns
 * the end (nothing is terminated).
 */
#pragma once

#include <stdint.h>
#include <string.h>

/* room text_addr() needs: INET6_ADDRSTRLEN */
#define TEXT_ADDR_MAX 46

/** text_decimal: @v in decimal, at least @width digits (zero-padded). */
char *text_decimal(char *out, uint64_t v, int width);

/**
 * text_rfc3339:
 * "2026-12-02T09:30:58.123456789Z": @ns since the epoch as an RFC 3339 UTC
 * time with @digits (1 to 9) of fraction (at most 32 bytes; the proleptic
 * Gregorian calendar, computed, without gmtime_r's locks).
 */
char *text_rfc3339(char *out, uint64_t ns, int digits);

/** text_addr: @addr of @family (AF_INET6, else IPv4) in its usual text form. */
char *text_addr(char *out, int family, const uint8_t addr[16]);

/** text_copy: the bytes of @s (a literal or a NUL-terminated string).
 * Inline, so that a literal's length is a constant and its copy a few
 * moves: keys and names are most of a text record's pieces. */
static inline char *text_copy(char *out, const char *s)
{
	size_t n = strlen(s);

	memcpy(out, s, n);
	return out + n;
}
