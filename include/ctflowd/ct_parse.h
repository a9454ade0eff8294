/*
 * ct_parse.h - one ctnetlink conntrack message -> one flow record.
 *
 * A lean libmnl attribute walk that picks only what a flow record needs: the
 * hot path of the daemon (every DESTROY goes through it), so no allocation.
 * Wire formats: addresses and ports network order, CTA_ID / CTA_MARK /
 * CTA_STATUS / CTA_ZONE and the 64-bit counters and timestamps big-endian.
 */
#pragma once

#include <linux/netlink.h>
#include "ctflowd/flow.h"

enum ct_parse_result {
	CT_PARSE_OK,       /* @out holds a record */
	CT_PARSE_IGNORED,  /* a valid message that is not a conntrack entry of IPv4/IPv6 */
	CT_PARSE_ERROR,    /* malformed: *why says what is wrong */
};

/**
 * ct_parse_message:
 * Parses a conntrack message (IPCTNL_MSG_CT_NEW or _DELETE, from an event or
 * a dump) of exactly nlh->nlmsg_len bytes.  Fills every field of @out
 * (zeroing what the message lacks, and recording that in out->flags), derives
 * out->end_reason, and sets out->flow_id to the conntrack id.
 * On CT_PARSE_ERROR, *why (if @why is not NULL) points to a static text.
 */
enum ct_parse_result ct_parse_message(const struct nlmsghdr *nlh, struct flow_record *out,
				      const char **why);
