/*
 * ct_filter.c - the filter_* keys of a source: parsing, matching in user
 * space, the event socket's BPF program and the dump filter.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "ctflowd/ct_filter.h"
#include "ctflowd/error.h"

/* More would make the linear match a cost per event; a real filter names
 * a few networks. */
#define MAX_PREFIXES 256

struct prefix {
	guint8 family;
	guint8 len;
	guint8 addr[16];
};

struct zone_range {
	guint16 lo, hi;
};

struct ct_filter {
	guint8 protocols[32];      /* bit N: protocol N passes */
	guint n_protocols;         /* 0: any protocol */
	GArray *prefixes;          /* struct prefix; empty: any address */
	gboolean v4, v6;           /* families the prefixes name */
	GArray *zones;             /* struct zone_range, sorted, disjoint; empty: any */
	gboolean has_mark;
	guint32 mark, mask;
};

/* The protocols conntrack tracks by name; others pass by number. */
static const struct {
	const char *name;
	guint8 number;
} protocol_names[] = {
	{ "icmp", IPPROTO_ICMP }, { "tcp", IPPROTO_TCP },         { "udp", IPPROTO_UDP },
	{ "dccp", IPPROTO_DCCP }, { "gre", IPPROTO_GRE },         { "icmpv6", IPPROTO_ICMPV6 },
	{ "sctp", IPPROTO_SCTP }, { "udplite", IPPROTO_UDPLITE },
};

static const char *protocol_name(guint8 number)
{
	for (size_t i = 0; i < G_N_ELEMENTS(protocol_names); i++)
		if (protocol_names[i].number == number)
			return protocol_names[i].name;
	return NULL;
}

G_GNUC_PRINTF(4, 5)
static gboolean bad_item(GError **error, int n, const char *item, const char *format, ...)
{
	va_list args;

	va_start(args, format);
	g_autofree char *why = g_strdup_vprintf(format, args);
	va_end(args);
	g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_VALUE, "item %d (\"%s\"): %s", n, item, why);
	return FALSE;
}

/* A whole unsigned number of @text in @base (0: decimal, or hex with 0x)
 * up to @max. */
static gboolean parse_number(const char *text, guint base, guint64 max, guint64 *out)
{
	char *end = NULL;

	if (!g_ascii_isdigit(*text))
		return FALSE;
	errno = 0;
	*out = g_ascii_strtoull(text, &end, base);
	return errno == 0 && end != text && *end == '\0' && *out <= max;
}

/* Calls @fn for each item of a comma-separated list; an empty list has no
 * item, an empty item is an error. */
static gboolean each_item(const char *text, gboolean (*fn)(ct_filter *, const char *, int, GError **),
			  ct_filter *f, GError **error)
{
	g_auto(GStrv) items = g_strsplit(text ? text : "", ",", -1);

	if (!items[0] || (!items[1] && !*g_strstrip(items[0])))
		return TRUE;
	for (int i = 0; items[i]; i++) {
		const char *item = g_strstrip(items[i]);
		if (!*item)
			return bad_item(error, i + 1, item, "empty: two commas, or one at an end");
		if (!fn(f, item, i + 1, error))
			return FALSE;
	}
	return TRUE;
}

static gboolean add_protocol(ct_filter *f, const char *item, int n, GError **error)
{
	guint64 number;
	gboolean named = FALSE;

	for (size_t i = 0; i < G_N_ELEMENTS(protocol_names); i++) {
		if (g_ascii_strcasecmp(item, protocol_names[i].name) == 0) {
			number = protocol_names[i].number;
			named = TRUE;
		}
	}
	if (!named && !parse_number(item, 10, 255, &number))
		return bad_item(error, n, item,
				"not a protocol: a name (tcp, udp, udplite, icmp, icmpv6, sctp, dccp,"
				" gre) or a number from 0 to 255");
	if (!(f->protocols[number / 8] & (1u << (number % 8))))
		f->n_protocols++;
	f->protocols[number / 8] |= (guint8)(1u << (number % 8));
	return TRUE;
}

static gboolean in_prefix(const guint8 *addr, const struct prefix *p)
{
	guint whole = p->len / 8, rest = p->len % 8;

	if (memcmp(addr, p->addr, whole) != 0)
		return FALSE;
	return rest == 0 || ((addr[whole] ^ p->addr[whole]) & (guint8)(0xff << (8 - rest))) == 0;
}

static gboolean add_prefix(ct_filter *f, const char *item, int n, GError **error)
{
	struct prefix p = {0};
	g_autofree char *addr = g_strdup(item);
	char *slash = strchr(addr, '/');
	guint64 len;

	if (slash)
		*slash = '\0';
	if (inet_pton(AF_INET, addr, p.addr) == 1)
		p.family = AF_INET;
	else if (inet_pton(AF_INET6, addr, p.addr) == 1)
		p.family = AF_INET6;
	else
		return bad_item(error, n, item, "not an IPv4 or IPv6 address, with or without /LENGTH");
	const guint bits = p.family == AF_INET ? 32 : 128;
	if (!slash)
		len = bits;
	else if (!parse_number(slash + 1, 10, bits, &len))
		return bad_item(error, n, item, "the prefix length must be a number from 0 to %u", bits);
	p.len = (guint8)len;
	struct prefix network = p;
	memset(network.addr, 0, sizeof(network.addr));
	for (guint b = 0; b < p.len; b++)
		network.addr[b / 8] |= p.addr[b / 8] & (guint8)(0x80 >> (b % 8));
	if (memcmp(network.addr, p.addr, sizeof(p.addr)) != 0) {
		char text[INET6_ADDRSTRLEN];
		inet_ntop(p.family, network.addr, text, sizeof(text));
		return bad_item(error, n, item,
				"address bits are set past the prefix length (the network is %s/%u)",
				text, p.len);
	}
	if (f->prefixes->len >= MAX_PREFIXES)
		return bad_item(error, n, item, "more than %d prefixes", MAX_PREFIXES);
	g_array_append_val(f->prefixes, p);
	f->v4 |= p.family == AF_INET;
	f->v6 |= p.family == AF_INET6;
	return TRUE;
}

static gint zone_range_cmp(gconstpointer a, gconstpointer b)
{
	const struct zone_range *x = a, *y = b;

	return (gint)x->lo - (gint)y->lo;
}

static gboolean add_zones(ct_filter *f, const char *item, int n, GError **error)
{
	g_auto(GStrv) ends = g_strsplit(item, "-", 2);
	guint64 lo, hi;

	if (!parse_number(g_strstrip(ends[0]), 10, G_MAXUINT16, &lo) ||
	    (ends[1] && !parse_number(g_strstrip(ends[1]), 10, G_MAXUINT16, &hi)))
		return bad_item(error, n, item,
				"not a zone (0 to 65535) or a range of zones (FIRST-LAST)");
	if (!ends[1])
		hi = lo;
	if (hi < lo)
		return bad_item(error, n, item, "a range must not end before it begins");
	struct zone_range r = { (guint16)lo, (guint16)hi };
	g_array_append_val(f->zones, r);
	return TRUE;
}

/* Sorted, overlapping and adjacent ranges joined: the canonical form, and
 * one range of one zone is what a dump filter can take. */
static void merge_zones(GArray *zones)
{
	guint out = 0;

	g_array_sort(zones, zone_range_cmp);
	for (guint i = 0; i < zones->len; i++) {
		struct zone_range r = g_array_index(zones, struct zone_range, i);
		struct zone_range *last = out ? &g_array_index(zones, struct zone_range, out - 1) : NULL;
		if (last && (guint)r.lo <= (guint)last->hi + 1)
			last->hi = MAX(last->hi, r.hi);
		else
			g_array_index(zones, struct zone_range, out++) = r;
	}
	g_array_set_size(zones, out);
}

static gboolean parse_mark(ct_filter *f, const char *text, GError **error)
{
	g_autofree char *copy = g_strstrip(g_strdup(text ? text : ""));
	char *slash = strchr(copy, '/');
	guint64 value, mask = G_MAXUINT32;

	if (!*copy)
		return TRUE;
	if (slash)
		*slash = '\0';
	if (!parse_number(g_strstrip(copy), 0, G_MAXUINT32, &value) ||
	    (slash && !parse_number(g_strstrip(slash + 1), 0, G_MAXUINT32, &mask))) {
		g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_VALUE,
			    "\"%s\" is not MARK or MARK/MASK, numbers from 0 to 0xffffffff", text);
		return FALSE;
	}
	if (mask == 0) {
		g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_VALUE,
			    "\"%s\": a mask of 0 matches every mark (leave filter_mark empty for that)",
			    text);
		return FALSE;
	}
	if (value & ~mask) {
		g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_VALUE,
			    "\"%s\": the mark has bits outside the mask (0x%" G_GINT64_MODIFIER
			    "x), so no connection could match",
			    text, value & ~mask);
		return FALSE;
	}
	f->has_mark = TRUE;
	f->mark = (guint32)value;
	f->mask = (guint32)mask;
	return TRUE;
}

static ct_filter *filter_alloc(void)
{
	ct_filter *f = g_new0(ct_filter, 1);

	f->prefixes = g_array_new(FALSE, TRUE, sizeof(struct prefix));
	f->zones = g_array_new(FALSE, TRUE, sizeof(struct zone_range));
	return f;
}

void ct_filter_free(ct_filter *f)
{
	if (!f)
		return;
	g_array_unref(f->prefixes);
	g_array_unref(f->zones);
	g_free(f);
}

static gboolean parse_key(ct_filter *f, enum ct_filter_key key, const char *text, GError **error)
{
	switch (key) {
	case CT_FILTER_PROTOCOLS:
		return each_item(text, add_protocol, f, error);
	case CT_FILTER_ADDRESSES:
		return each_item(text, add_prefix, f, error);
	case CT_FILTER_ZONES:
		if (!each_item(text, add_zones, f, error))
			return FALSE;
		merge_zones(f->zones);
		return TRUE;
	case CT_FILTER_MARK:
	default:
		return parse_mark(f, text, error);
	}
}

static void append_protocols(GString *out, const ct_filter *f)
{
	const char *sep = "";

	for (guint p = 0; p < 256; p++) {
		if (!(f->protocols[p / 8] & (1u << (p % 8))))
			continue;
		const char *name = protocol_name((guint8)p);
		g_string_append(out, sep);
		sep = ", ";
		if (name)
			g_string_append(out, name);
		else
			g_string_append_printf(out, "%u", p);
	}
}

static void append_prefixes(GString *out, const ct_filter *f)
{
	for (guint i = 0; i < f->prefixes->len; i++) {
		const struct prefix *p = &g_array_index(f->prefixes, struct prefix, i);
		char text[INET6_ADDRSTRLEN];
		inet_ntop(p->family, p->addr, text, sizeof(text));
		g_string_append_printf(out, "%s%s/%u", i ? ", " : "", text, p->len);
	}
}

static void append_zones(GString *out, const ct_filter *f)
{
	for (guint i = 0; i < f->zones->len; i++) {
		const struct zone_range *r = &g_array_index(f->zones, struct zone_range, i);
		g_string_append_printf(out, "%s%u", i ? ", " : "", r->lo);
		if (r->hi != r->lo)
			g_string_append_printf(out, "-%u", r->hi);
	}
}

char *ct_filter_normalize(enum ct_filter_key key, const char *text, GError **error)
{
	ct_filter *f = filter_alloc();
	GString *out = g_string_new(NULL);

	if (!parse_key(f, key, text, error)) {
		ct_filter_free(f);
		g_string_free(out, TRUE);
		return NULL;
	}
	switch (key) {
	case CT_FILTER_PROTOCOLS:
		append_protocols(out, f);
		break;
	case CT_FILTER_ADDRESSES:
		append_prefixes(out, f);
		break;
	case CT_FILTER_ZONES:
		append_zones(out, f);
		break;
	case CT_FILTER_MARK:
	default:
		if (f->has_mark)
			g_string_append_printf(out, "0x%x/0x%x", f->mark, f->mask);
		break;
	}
	ct_filter_free(f);
	return g_string_free(out, FALSE);
}

ct_filter *ct_filter_new(const char *protocols, const char *addresses, const char *zones,
			 const char *mark, GError **error)
{
	ct_filter *f = filter_alloc();
	static const char *const names[] = {
		"filter_protocols", "filter_addresses", "filter_zones", "filter_mark",
	};
	const char *texts[] = { protocols, addresses, zones, mark };

	for (int k = CT_FILTER_PROTOCOLS; k <= CT_FILTER_MARK; k++) {
		if (!parse_key(f, (enum ct_filter_key)k, texts[k], error)) {
			g_prefix_error(error, "%s: ", names[k]);
			ct_filter_free(f);
			return NULL;
		}
	}
	return f;
}

gboolean ct_filter_is_empty(const ct_filter *f)
{
	return !f || (!f->n_protocols && !f->prefixes->len && !f->zones->len && !f->has_mark);
}

static gboolean address_matches(const ct_filter *f, const struct flow_record *r)
{
	/* the original tuple's ends, and the reply's: behind NAT the host a
	 * prefix names may show only in the translated tuple */
	const guint8 *addrs[] = { r->orig.src, r->orig.dst, r->reply.src, r->reply.dst };

	for (guint i = 0; i < f->prefixes->len; i++) {
		const struct prefix *p = &g_array_index(f->prefixes, struct prefix, i);
		if (p->family != r->family)
			continue;
		for (size_t a = 0; a < G_N_ELEMENTS(addrs); a++)
			if (in_prefix(addrs[a], p))
				return TRUE;
	}
	return FALSE;
}

static gboolean zone_matches(const ct_filter *f, guint16 zone)
{
	for (guint i = 0; i < f->zones->len; i++) {
		const struct zone_range *z = &g_array_index(f->zones, struct zone_range, i);
		if (zone >= z->lo && zone <= z->hi)
			return TRUE;
	}
	return FALSE;
}

gboolean ct_filter_match(const ct_filter *f, const struct flow_record *r)
{
	if (!f)
		return TRUE;
	if (f->n_protocols && !(f->protocols[r->proto / 8] & (1u << (r->proto % 8))))
		return FALSE;
	if (f->has_mark && (r->mark & f->mask) != f->mark)
		return FALSE;
	if (f->zones->len && !zone_matches(f, r->zone))
		return FALSE;
	return !f->prefixes->len || address_matches(f, r);
}

guint ct_filter_kernel_parts(const ct_filter *f)
{
	guint parts = 0;

	if (!f)
		return 0;
	if (f->n_protocols)
		parts |= CT_FILTER_KERNEL_PROTOCOLS;
	if (f->has_mark)
		parts |= CT_FILTER_KERNEL_MARK;
	if (f->v4 != f->v6)
		parts |= CT_FILTER_KERNEL_FAMILY;
	return parts;
}

gboolean ct_filter_complete_in_kernel(const ct_filter *f)
{
	return !f || (!f->prefixes->len && !f->zones->len);
}

/*
 * The program, with libnetfilter_conntrack's builder: attribute kinds are
 * ANDed, the values of one kind ORed, and an event without the attribute
 * passes that kind (an IPv6 event passes the IPv4 checks).  A family is
 * dropped by a negative match of its whole address space: "the source is
 * not in ::/0" fails for every IPv6 event and no IPv4 one.  An event
 * without CTA_MARK (the kernel leaves out a mark of 0) is checked as mark 0.
 */
static struct nfct_filter *build_program(const ct_filter *f)
{
	struct nfct_filter *nf = nfct_filter_create();

	if (!nf)
		return NULL;
	for (guint p = 0; p < 256; p++)
		if (f->protocols[p / 8] & (1u << (p % 8)))
			nfct_filter_add_attr_u32(nf, NFCT_FILTER_L4PROTO, p);
	if (f->has_mark) {
		struct nfct_filter_dump_mark m = { .val = f->mark, .mask = f->mask };
		nfct_filter_add_attr(nf, NFCT_FILTER_MARK, &m);
	}
	if (f->v4 && !f->v6) {
		struct nfct_filter_ipv6 any = {{0}, {0}};
		nfct_filter_add_attr(nf, NFCT_FILTER_SRC_IPV6, &any);
		nfct_filter_set_logic(nf, NFCT_FILTER_SRC_IPV6, NFCT_FILTER_LOGIC_NEGATIVE);
	} else if (f->v6 && !f->v4) {
		struct nfct_filter_ipv4 any = { 0, 0 };
		nfct_filter_add_attr(nf, NFCT_FILTER_SRC_IPV4, &any);
		nfct_filter_set_logic(nf, NFCT_FILTER_SRC_IPV4, NFCT_FILTER_LOGIC_NEGATIVE);
	}
	return nf;
}

/*
 * The classic program attached to @fd, NULL when none is; an eBPF program
 * has no instructions to read back (EACCES), and reads as an empty array.
 */
static GArray *attached_program(int fd)
{
	socklen_t count = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_GET_FILTER, NULL, &count) < 0)
		return errno == EACCES ? g_array_new(FALSE, TRUE, sizeof(struct sock_filter)) : NULL;
	if (count == 0)
		return NULL;
	GArray *prog = g_array_sized_new(FALSE, TRUE, sizeof(struct sock_filter), count);
	g_array_set_size(prog, count);
	/* SO_GET_FILTER counts in instructions, not bytes */
	if (getsockopt(fd, SOL_SOCKET, SO_GET_FILTER, prog->data, &count) < 0)
		g_array_set_size(prog, 0);
	return prog;
}

static gboolean same_program(const GArray *a, const GArray *b)
{
	if (!a || !b)
		return a == b;
	return a->len && a->len == b->len &&
	       memcmp(a->data, b->data, a->len * sizeof(struct sock_filter)) == 0;
}

/* A program found on the socket that is not the one this configuration
 * attaches came from another configuration, or from another process. */
static void note_replaced(GArray *before, GArray *after)
{
	if (before && !same_program(before, after)) {
		g_autofree char *what = before->len ? g_strdup_printf("%u instructions", before->len)
						    : g_strdup("eBPF");
		g_warning("the conntrack event socket had a socket filter (%s) that is not this"
			  " configuration's (another configuration's, or another process's): %s",
			  what, after ? "replaced by the configured one" : "removed, as none is configured");
	}
	if (before)
		g_array_unref(before);
	if (after)
		g_array_unref(after);
}

static gboolean attach_program(int fd, const ct_filter *f, GError **error)
{
	int e;

	if (!ct_filter_kernel_parts(f)) {
		/* nfct_filter_attach() attaches nothing for an empty filter and
		 * would leave a program already there in place */
		int unused = 0;
		if (setsockopt(fd, SOL_SOCKET, SO_DETACH_FILTER, &unused, sizeof(unused)) == 0 ||
		    errno == ENOENT)
			return TRUE;
		e = errno;
		g_set_error(error, CTFLOWD_ERROR, e,
			    "cannot remove the socket filter of the conntrack event socket: %s%s",
			    g_strerror(e), e == EPERM ? " (it is locked: SO_LOCK_FILTER)" : "");
		return FALSE;
	}
	struct nfct_filter *nf = build_program(f);
	if (!nf) {
		g_set_error(error, CTFLOWD_ERROR, ENOMEM, "cannot build the socket filter");
		return FALSE;
	}
	/* SO_ATTACH_FILTER replaces a program already attached */
	int rc = nfct_filter_attach(fd, nf);
	e = errno;
	nfct_filter_destroy(nf);
	if (rc == 0)
		return TRUE;
	g_set_error(error, CTFLOWD_ERROR, e,
		    "cannot attach the socket filter to the conntrack event socket: %s%s",
		    g_strerror(e), e == EPERM ? " (a locked filter is there: SO_LOCK_FILTER)" : "");
	return FALSE;
}

gboolean ct_filter_attach(int fd, const ct_filter *f, GError **error)
{
	GArray *before = attached_program(fd);

	if (!attach_program(fd, f, error)) {
		if (before)
			g_array_unref(before);
		return FALSE;
	}
	note_replaced(before, attached_program(fd));
	return TRUE;
}

struct ct_dump_filter ct_filter_dump_filter(const ct_filter *f)
{
	struct ct_dump_filter d = {0};

	if (!f)
		return d;
	if (f->v4 != f->v6)
		d.family = f->v4 ? AF_INET : AF_INET6;
	if (f->n_protocols == 1) {
		for (guint p = 0; p < 256; p++)
			if (f->protocols[p / 8] & (1u << (p % 8)))
				d.proto = (guint8)p;
		d.has_proto = TRUE;
	}
	if (f->zones->len == 1) {
		const struct zone_range *z = &g_array_index(f->zones, struct zone_range, 0);
		if (z->lo == z->hi) {
			d.has_zone = TRUE;
			d.zone = z->lo;
		}
	}
	if (f->has_mark) {
		d.has_mark = TRUE;
		d.mark = f->mark;
		d.mark_mask = f->mask;
	}
	return d;
}

char *ct_filter_describe(const ct_filter *f)
{
	GString *kernel = g_string_new(NULL), *user = g_string_new(NULL);

	if (ct_filter_is_empty(f)) {
		g_string_free(user, TRUE);
		g_string_free(kernel, TRUE);
		return g_strdup("none: every connection is exported");
	}
	if (f->n_protocols) {
		g_string_append(kernel, "protocols ");
		append_protocols(kernel, f);
	}
	if (f->has_mark)
		g_string_append_printf(kernel, "%smark 0x%x/0x%x", kernel->len ? "; " : "", f->mark,
				       f->mask);
	if (f->v4 != f->v6)
		g_string_append_printf(kernel, "%s%s only", kernel->len ? "; " : "",
				       f->v4 ? "IPv4" : "IPv6");
	if (f->prefixes->len) {
		g_string_append(user, "addresses ");
		append_prefixes(user, f);
	}
	if (f->zones->len) {
		g_string_append_printf(user, "%szones ", user->len ? "; " : "");
		append_zones(user, f);
	}
	char *text = g_strdup_printf("in the kernel: %s; in user space only: %s",
				     kernel->len ? kernel->str : "nothing",
				     user->len ? user->str : "nothing");
	g_string_free(user, TRUE);
	g_string_free(kernel, TRUE);
	return text;
}
