/*
 * flow.c - small helpers around struct flow_record shared by the exporters.
 */
#include <arpa/inet.h>
#include <sys/socket.h>

#include <glib.h>

#include "ctflowd/error.h"
#include "ctflowd/flow.h"

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
