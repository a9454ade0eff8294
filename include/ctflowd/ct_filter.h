/*
 * ct_filter.h - which connections a source exports: by protocol, address
 * prefix (either side, either family), conntrack zone and mark under a
 * mask.  Within a key any value matches; every key given must match.
 *
 * A busy host should not pay for flows nobody wants, so the kernel drops
 * what it can before ctflowd reads it:
 *  - On the event socket, a classic BPF program that libnetfilter_conntrack
 *    builds (nfct_filter).  Debian's 1.0.9 expresses a list of protocols
 *    and marks under masks.  It cannot express the rest: it has no zones
 *    (NFCT_FILTER_ZONE came in a later release), and its source and
 *    destination address lists must both match, so "either side in a
 *    prefix" is beyond it.  Of the addresses, the program keeps only the
 *    families the prefixes name (an IPv4-only filter drops every IPv6
 *    event in the kernel).  A filtered event is not a delivery failure:
 *    the kernel deletes such an entry at once even with reliable delivery
 *    and a full socket.
 *  - On table dumps, the kernel's own dump filter (struct ct_dump_filter):
 *    family, mark, one protocol, one zone.
 *  - What the kernel let through is matched again in user space
 *    (ct_filter_match), and what fails is counted: events queued before
 *    the program was attached, dumps, and whatever the kernel cannot
 *    express.
 */
#pragma once

#include <glib.h>

#include "ctflowd/config.h"
#include "ctflowd/ct_request.h"
#include "ctflowd/flow.h"

typedef struct ct_filter ct_filter;

/* The [source] keys a filter is made of. */
enum ct_filter_key {
	CT_FILTER_PROTOCOLS,   /* filter_protocols = tcp, udp, 132 */
	CT_FILTER_ADDRESSES,   /* filter_addresses = 10.0.0.0/8, 2001:db8::/32 */
	CT_FILTER_ZONES,       /* filter_zones = 0, 5, 10-19 */
	CT_FILTER_MARK,        /* filter_mark = 0x10/0xff */
};

/* What the event socket's program does itself (ct_filter_kernel_parts). */
enum ct_filter_part {
	CT_FILTER_KERNEL_PROTOCOLS = 1 << 0,
	CT_FILTER_KERNEL_MARK = 1 << 1,
	CT_FILTER_KERNEL_FAMILY = 1 << 2,   /* the address families, not the prefixes */
};

/**
 * ct_filter_normalize:
 * Checks the value of filter key @key and returns it in canonical form
 * (protocols by name, prefixes as inet_ntop() writes them, zones sorted
 * with ranges, the mark as VALUE/MASK in hex); "" for an empty value,
 * which means no filter.  NULL with @error (CONFIG_ERROR_VALUE) saying
 * which item is wrong and why.
 */
char *ct_filter_normalize(enum ct_filter_key key, const char *text, GError **error);

/**
 * ct_filter_new:
 * The filter of a source's filter_* keys (NULL or empty: not filtered on
 * that).  NULL with @error when a value is wrong (as ct_filter_normalize()).
 */
ct_filter *ct_filter_new(const char *protocols, const char *addresses, const char *zones,
			 const char *mark, GError **error);

/** ct_filter_free: NULL is fine. */
void ct_filter_free(ct_filter *f);

/** ct_filter_is_empty: TRUE when @f (NULL too) lets every connection through. */
gboolean ct_filter_is_empty(const ct_filter *f);

/**
 * ct_filter_match:
 * Whether record @r passes @f (NULL passes everything): its protocol, its
 * original tuple's source or destination address in a prefix, its zone,
 * its mark under the mask.
 */
gboolean ct_filter_match(const ct_filter *f, const struct flow_record *r);

/**
 * ct_filter_kernel_parts:
 * Which parts of @f the event socket's program applies (enum
 * ct_filter_part); the rest is matched in user space only.
 */
guint ct_filter_kernel_parts(const ct_filter *f);

/**
 * ct_filter_complete_in_kernel:
 * TRUE when the event socket's program drops every event @f does not
 * match, so that ct_filter_match() only catches events queued before it
 * was attached.
 */
gboolean ct_filter_complete_in_kernel(const ct_filter *f);

/**
 * ct_filter_attach:
 * Makes @f the socket filter of @fd, replacing whatever filter was there
 * (another program would decide what ctflowd sees); with nothing the
 * kernel can do for @f, the socket is left without one.  A program found
 * there that is not the one @f makes (another configuration's, or another
 * process's) is logged as a warning.  FALSE with @error when the filter
 * cannot be replaced (one locked with SO_LOCK_FILTER) or attached.
 */
gboolean ct_filter_attach(int fd, const ct_filter *f, GError **error);

/**
 * ct_filter_dump_filter:
 * The kernel dump filter that fits @f: what of it a table dump can ask
 * for (the family when the prefixes are of one, the mark, a protocol or
 * zone when @f names exactly one).  The dump may return more.
 */
struct ct_dump_filter ct_filter_dump_filter(const ct_filter *f);

/**
 * ct_filter_describe:
 * A line for the log saying what is matched where, e.g. "in the kernel:
 * protocols udp, mark 0x10/0xff; in user space only: zones 7".  Free with
 * g_free().
 */
char *ct_filter_describe(const ct_filter *f);
