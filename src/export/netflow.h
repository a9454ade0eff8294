/*
 * netflow.h - what the NetFlow v9 and v5 encoders share: big-endian
 * writes into a message buffer, and the exporter's clock.
 *
 * Both headers carry sysUptime (ms since the exporter "booted") beside
 * the wall clock, and v5 (always) and v9 (netflow_times = uptime) give a
 * flow's start and end in sysUptime milliseconds; a collector turns them
 * into times as header time - sysUptime + FIRST.  For that to come out
 * right, the boot time (wall clock - sysUptime) must be the same in every
 * packet.  ctflowd has no boot of its own to report, and the flows it
 * exports began before it started (conntrack keeps connections across a
 * restart, and the journal resends old records), so the boot is put
 * NETFLOW_UPTIME_HEADROOM_MS (2^31 ms, about 24.8 days) before the
 * encoder was made: a connection up to that old still gets a positive
 * FIRST.  sysUptime is 32 bits and would wrap 49.7 days after the boot;
 * a day before that (once the encoder has run about 23.8 days) the boot is
 * moved forward to the same headroom before the packet being started,
 * which a collector sees as an exporter reboot.  A start or end before the boot
 * is sent as 0, the boot itself.
 *
 * The v9 header has the wall clock in whole seconds only (v5 has
 * nanoseconds too, which not every collector reads): a packet's time is
 * rounded up to the next whole second, so that header seconds * 1000 -
 * sysUptime is the boot to the millisecond in every decoder.  Up, not
 * down: a flow that ended in the current second must not end after the
 * header's sysUptime (pmacct's nfacctd takes uptime - LAST_SWITCHED as an
 * unsigned difference and puts such a flow 2^32 ms in the past).
 */
#pragma once

#include <stdint.h>
#include <string.h>

#include "format.h"

#define NETFLOW_UPTIME_HEADROOM_MS (UINT64_C(1) << 31)
/* the boot moves forward once sysUptime reaches this: a day before it wraps */
#define NETFLOW_UPTIME_REBASE_MS ((UINT64_C(1) << 32) - UINT64_C(86400000))

struct netflow_clock {
	uint64_t boot_ms;   /* wall clock ms the sysUptime counts from */
	uint64_t now_ms;    /* the header time of the last packet stamped */
};

/**
 * netflow_clock_start:
 * For a packet about to be built at @now_ms (ms since the epoch): picks the
 * boot, or moves it as the comment above says.  The records of the packet
 * are then timed against it.
 */
static inline void netflow_clock_start(struct netflow_clock *c, uint64_t now_ms)
{
	if (!c->boot_ms || now_ms < c->boot_ms || now_ms - c->boot_ms >= NETFLOW_UPTIME_REBASE_MS)
		c->boot_ms = now_ms > NETFLOW_UPTIME_HEADROOM_MS ? now_ms - NETFLOW_UPTIME_HEADROOM_MS : 1;
}

/**
 * netflow_clock_stamp:
 * The header time of the packet sent at @now_ms: rounded up to the whole
 * second, and taken when the packet is finished, so that no record added
 * while it was open ends after its sysUptime.  Returns the sysUptime.
 */
static inline uint32_t netflow_clock_stamp(struct netflow_clock *c, uint64_t now_ms)
{
	c->now_ms = now_ms % 1000u ? now_ms - now_ms % 1000u + 1000u : now_ms;
	if (c->now_ms < c->boot_ms)
		c->now_ms = c->boot_ms;   /* the wall clock stepped back */
	return (uint32_t)MIN(c->now_ms - c->boot_ms, UINT32_MAX);
}

/** netflow_uptime: sysUptime ms of the wall clock time @ns, 0 before the boot. */
static inline uint32_t netflow_uptime(const struct netflow_clock *c, uint64_t ns)
{
	uint64_t ms = ns / 1000000u;

	if (ms <= c->boot_ms)
		return 0;
	return ms - c->boot_ms > UINT32_MAX ? UINT32_MAX : (uint32_t)(ms - c->boot_ms);
}

static inline uint8_t *netflow_put8(uint8_t *p, uint8_t v)
{
	*p = v;
	return p + 1;
}

static inline uint8_t *netflow_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return p + 2;
}

static inline uint8_t *netflow_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return p + 4;
}

static inline uint8_t *netflow_put64(uint8_t *p, uint64_t v)
{
	netflow_put32(p, (uint32_t)(v >> 32));
	return netflow_put32(p + 4, (uint32_t)v);
}

/** netflow_put_addr: @len bytes of an address already in network order. */
static inline uint8_t *netflow_put_addr(uint8_t *p, const uint8_t *addr, size_t len)
{
	memcpy(p, addr, len);
	return p + len;
}
