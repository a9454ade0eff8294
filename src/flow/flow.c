/*
 * flow.c - small helpers around struct flow_record shared by the exporters.
 */
#include <arpa/inet.h>
#include <sys/socket.h>

#include <glib.h>

#include "ctflowd/error.h"
#include "ctflowd/flow.h"

static inline guint64 mix64(guint64 x)
{
	/* splitmix64 finaliser: every input bit reaches every output bit */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

/* What both identities hash: the original tuple, protocol, family, zone
 * and conntrack id, from @seed. */
static guint64 hash_entry(const struct flow_record *r, guint64 seed)
{
	guint64 h = seed;
	guint64 w;

	for (size_t i = 0; i < 16; i += 8) {
		memcpy(&w, r->orig.src + i, 8);
		h = mix64(h ^ w);
		memcpy(&w, r->orig.dst + i, 8);
		h = mix64(h ^ w);
	}
	h = mix64(h ^ ((guint64)r->orig.sport << 48 | (guint64)r->orig.dport << 32 |
		       (guint64)r->proto << 24 | (guint64)r->family << 16 | r->zone));
	return mix64(h ^ r->ct_id);
}

uint64_t flow_identity_hash(const struct flow_record *r)
{
	return mix64(hash_entry(r, 0x6a09e667f3bcc909ULL) ^ r->start_ns);
}

uint64_t flow_nat_identity(const struct flow_record *r)
{
	/* another seed: never equal to the identity of the same entry */
	return hash_entry(r, 0xbb67ae8584caa73bULL);
}

const char *flow_end_reason_name(uint8_t reason)
{
	switch (reason) {
	case FLOW_END_IDLE_TIMEOUT:
		return "idle";
	case FLOW_END_ACTIVE_TIMEOUT:
		return "active";
	case FLOW_END_OF_FLOW:
		return "end";
	case FLOW_END_FORCED:
		return "forced";
	case FLOW_END_LACK_OF_RESOURCES:
		return "resources";
	default:
		return "unknown";
	}
}

char *flow_format_addr(int family, const uint8_t addr[16], char *buf, size_t len)
{
	if (!inet_ntop(family == AF_INET6 ? AF_INET6 : AF_INET, addr, buf, (socklen_t)len))
		buf[0] = '\0';
	return buf;
}

G_DEFINE_QUARK(ctflowd-error-quark, ctflowd_error)
