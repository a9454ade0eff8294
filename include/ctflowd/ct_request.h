/*
 * ct_request.h - asking ctnetlink: dumps of the conntrack table and of the
 * dying list, on a socket of their own.
 *
 * Requests go on a socket that is not subscribed to events, or the replies
 * would mix with them.  Three kernel behaviours shape this module:
 *  - A dump of the dying list is slow when the list is long: the kernel
 *    resumes each part of it by walking the list from its head to where it
 *    stopped, so about 240,000 parked entries take minutes.  Every wait is
 *    bounded by a deadline the caller gives, checked inside the dump.
 *  - The kernel keeps a dump's state on the socket until the dump reaches
 *    its end; a new dump on that socket fails with EBUSY meanwhile.  A dump
 *    left half-way (deadline passed, or the caller had seen enough) closes
 *    the socket, and the next request opens a new one in the network
 *    namespace the handle was created in.
 *  - Any process with CAP_NET_ADMIN in the namespace can unicast a message
 *    to the socket's port.  Only what the kernel sent (sender port 0) and
 *    answers the request (its sequence number and our port) counts.
 */
#pragma once

#include <glib.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <stddef.h>

typedef struct ct_request ct_request;

enum ct_request_list {
	CT_REQUEST_TABLE,  /* the conntrack table (conntrack -L) */
	CT_REQUEST_DYING,  /* entries parked by reliable delivery (conntrack -L dying) */
};

/*
 * What the kernel itself leaves out of a table dump (ctnetlink's dump
 * filters): every field is optional, and an entry must match all that are
 * set.  Linux 6.18 filters a dump by the address family (the request's
 * nfgen_family), mark under a mask (CTA_MARK, CTA_MARK_MASK, since 2.6.x),
 * one protocol number (CTA_FILTER, since 5.8; only in a dump of one family:
 * for both it fails with EOPNOTSUPP, so it is not sent without a family)
 * and one zone (a top-level
 * CTA_ZONE, since 6.8; older kernels ignore it and dump every zone).  It has
 * no address prefixes (CTA_FILTER compares whole addresses) and no lists:
 * a caller that wants more filters what it gets again.
 */
struct ct_dump_filter {
	guint8 family;              /* AF_INET or AF_INET6; 0: both */
	gboolean has_proto;
	guint8 proto;               /* L4 protocol number; used with a family only */
	gboolean has_zone;
	guint16 zone;
	gboolean has_mark;
	guint32 mark, mark_mask;    /* entries with (mark & mark_mask) == mark */
};

/**
 * ct_request_entry_fn:
 * Called with each entry of a dump, one whole message of nlh->nlmsg_len
 * bytes.  Returns FALSE when it has seen enough: the dump stops there.
 */
typedef gboolean (*ct_request_entry_fn)(const struct nlmsghdr *nlh, void *user);

/**
 * ct_request_new:
 * A request handle for the calling thread's current network namespace (see
 * netns_enter()); sockets it opens later go to that namespace too.  Returns
 * NULL with @error set when the socket or the namespace cannot be opened.
 */
ct_request *ct_request_new(GError **error);

/**
 * ct_request_dump:
 * Dumps @list, calling @fn for each entry, until the kernel's end of dump,
 * until @fn returns FALSE, or until @deadline_us (monotonic, as
 * g_get_monotonic_time()) passes, whichever comes first.  *@interrupted is
 * set when the kernel flagged a reply NLM_F_DUMP_INTR (the table changed
 * under the dump: entries may be missing or doubled; dump again for a
 * consistent view).  Returns TRUE when the dump ended or @fn stopped it;
 * FALSE with @error on a kernel error, a socket error, or the deadline
 * (code ETIMEDOUT).
 */
gboolean ct_request_dump(ct_request *req, enum ct_request_list list, gint64 deadline_us,
			 ct_request_entry_fn fn, void *user, gboolean *interrupted,
			 GError **error);

/**
 * ct_request_any_parked:
 * Whether the kernel's dying list holds any entry: in reliable mode, a
 * DESTROY that waits to be resent.  Stops at the first entry, so it costs
 * one reply however long the list is.  Returns FALSE with @error as
 * ct_request_dump() does.
 */
gboolean ct_request_any_parked(ct_request *req, gint64 deadline_us, gboolean *any,
			       GError **error);

/**
 * ct_request_set_filter:
 * Table dumps from now on ask the kernel for the entries @filter describes
 * only (NULL: all).  The dying list is always dumped whole: the kernel has
 * no filter for it.
 */
void ct_request_set_filter(ct_request *req, const struct ct_dump_filter *filter);

/** ct_request_free: closes the sockets (NULL is fine). */
void ct_request_free(ct_request *req);

/**
 * ct_request_collect:
 * The reading half of a request, for a socket the caller sent request @seq
 * on: reads replies from @fd and passes the entries to @fn,
 * as ct_request_dump() describes.  Messages that did not come from the
 * kernel, or that answer another request, are skipped, and do not extend
 * the wait past @deadline_us.  @what names the request in error messages.
 * After FALSE, or after @fn stopped it, a dump's state may remain on @fd.
 */
gboolean ct_request_collect(int fd, guint32 seq, gint64 deadline_us, ct_request_entry_fn fn,
			    void *user, gboolean *interrupted, const char *what,
			    GError **error);

/**
 * ct_request_next_message:
 * Steps through the netlink messages of one datagram of @len bytes at
 * @buf: returns the message that starts at *@offset and moves *@offset past
 * it (aligned), or NULL when no whole message is left.  Lengths are
 * compared unsigned against what is left, so a forged nlmsg_len (shorter
 * than a header, or past the datagram, 2^31 and more included) ends the
 * walk instead of moving it backwards, leaving it in place, or out of the
 * buffer.  After NULL, *@offset < @len means the datagram ended in bytes
 * that are not a whole message.
 */
const struct nlmsghdr *ct_request_next_message(const void *buf, size_t len, size_t *offset);

/**
 * ct_netlink_from_kernel:
 * Whether a datagram's sender address (as recvmsg() filled it in) is the
 * kernel's.  Any process with CAP_NET_ADMIN in the namespace, the owner of
 * a rootless container among them, can unicast to a socket's port id; only
 * the kernel sends from port id 0, and the kernel, not the sender, writes
 * the address.
 */
static inline gboolean ct_netlink_from_kernel(const struct sockaddr_nl *from)
{
	return from->nl_family == AF_NETLINK && from->nl_pid == 0;
}
