/*
 * interim_example.h - one interim record (active timeout) with known
 * counters, shared by the encoder tests: totals 100/10000 packets/bytes
 * forward and 40/4000 reply, of which earlier records reported 60/6000 and
 * 30/3000, so its deltas are 40/4000 and 10/1000; its period starts 7 s
 * after the connection.
 */
#pragma once

#include "ctflowd/flow.h"

static inline void interim_example(struct flow_record *r)
{
	r->end_reason = FLOW_END_ACTIVE_TIMEOUT;
	r->packets = 100;
	r->bytes = 10000;
	r->reply_packets = 40;
	r->reply_bytes = 4000;
	r->base_packets = 60;
	r->base_bytes = 6000;
	r->base_reply_packets = 30;
	r->base_reply_bytes = 3000;
	r->period_start_ns = r->start_ns + 7000000000ull;
}
