/*
 * ct_source.c - drains conntrack events from a ctnetlink socket.
 *
 * Every conntrack event is its own datagram, so the cost per event is set by
 * system calls and wake-ups: recvmmsg() takes up to a batch per call, a
 * drain keeps calling until the socket is empty (bounded, to keep the loop
 * responsive), and in a burst the reader sleeps between drains so that each
 * wake-up finds many events (coalesce.h).
 */
#include <errno.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ctflowd/coalesce.h"
#include "ctflowd/error.h"
#include "ctflowd/ct_filter.h"
#include "ctflowd/ct_labels.h"
#include "ctflowd/ct_parse.h"
#include "ctflowd/ct_request.h"
#include "ctflowd/ct_source.h"
#include "ctflowd/state_dir.h"

#define RECV_BATCH 256           /* datagrams per recvmmsg() */
#define SLOT_SIZE 8192           /* an event is a few hundred bytes */
#define DRAIN_MAX_CALLS 16       /* per drain: about 4096 events */
#define LANDING_BATCH 192        /* hand on once this many events landed */
#define LANDING_HOLD_US 5000     /* or once the first has waited this long */
#define DRAIN_SLICE_US 20000     /* a drain returns to the loop at least this often */
#define DUMP_ATTEMPTS 4
/* A resync holds up the reader: past this the dump is given up, keeping
 * what it delivered, so a stuck or endless dump cannot stall reading. */
#define RESYNC_MAX_MS 30000
/* Connections whose labels a NEW brought are remembered for their DESTROY
 * (ct_labels.h); those with a label set are few, and each takes about 80
 * bytes: at most about 5 MiB. */
#define LABELS_REMEMBERED 65536
/* Messages from other senders come as fast as someone sends them: the
 * first is logged, then one line a minute says how many followed. */
#define NOT_KERNEL_LOG_US (60 * G_USEC_PER_SEC)

/*
 * A slot of the landing zone: one datagram from its start (its first word
 * is the length the message claims, 0 when the slot is free) and, at its
 * end, who sent it.  recvmmsg() writes both, so that a recovery judges the
 * sender of what it finds exactly as the drain would have.
 */
struct landing_slot {
	uint8_t event[SLOT_SIZE - 16];
	struct sockaddr_nl sender;
	uint32_t unused;
};
_Static_assert(sizeof(struct landing_slot) == SLOT_SIZE, "slots keep their size");
#define RECV_SIZE sizeof(((struct landing_slot *)NULL)->event)

struct ct_source {
	int fd;                          /* events socket, owned by the caller */
	ct_request *requests;            /* dumps; opened with the source: same namespace */
	ct_labels *labels;               /* labels from NEW events (NULL: not subscribed) */
	ct_source_records_fn deliver;
	void *user;
	struct ct_source_options opts;
	struct ct_source_stats stats;
	gint64 last_overrun_us;          /* monotonic; 0 = not in a burst */
	gint64 burst_seen_us;            /* monotonic; read by other threads */
	gboolean resync_pending;
	guint malformed_logged;
	gboolean check_sender;           /* a netlink socket: only the kernel may send */
	gboolean not_kernel_logged;
	gint64 not_kernel_logged_us;     /* monotonic, the last such line */
	guint64 not_kernel_unlogged;     /* dropped since that line */
	struct landing_slot *slots;      /* landing zone: one datagram per slot */
	guint used;                      /* slots holding events not yet handed on */
	size_t pending;                  /* records parsed from them */
	gint64 landed_us;                /* when the first of them arrived */
	struct coalesce coalesce;        /* pauses between drains in a burst */
	gboolean slots_mapped;
	struct mmsghdr msgs[RECV_BATCH];
	struct iovec iov[RECV_BATCH];
	struct flow_record records[RECV_BATCH];
};

/*
 * The landing zone: recvmmsg() writes each event straight into a slot of a
 * file mapped MAP_SHARED.  Once recvmmsg() returns, the kernel has taken the
 * events off the socket, and their bytes are already in the file's page
 * cache, which outlives the process.  A slot is cleared only after its
 * record was appended to the journal, so a worker killed at any point leaves
 * every event it took either in the journal or in a slot, where the next
 * worker finds it (ct_source_new), and the duplicate filter drops the ones
 * that made it into both.  A datagram not from the kernel is cleared as
 * soon as recvmmsg() returns; a worker killed before that leaves it in its
 * slot with its sender beside it, and the recovery drops it then.
 */
static gboolean map_landing_zone(ct_source *src, const char *path, GError **error)
{
	const size_t size = sizeof(*src->slots) * RECV_BATCH;
	int fd = state_dir_open_path(path, O_RDWR | O_CREAT, 0600, error);

	if (fd < 0) {
		g_prefix_error(error, "landing zone: ");
		return FALSE;
	}
	if (ftruncate(fd, (off_t)size) < 0) {
		int e = errno;
		close(fd);
		g_set_error(error, CTFLOWD_ERROR, e, "landing zone %s: %s", path, g_strerror(e));
		return FALSE;
	}
	void *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	int e = errno;
	close(fd);
	if (map == MAP_FAILED) {
		g_set_error(error, CTFLOWD_ERROR, e, "cannot map landing zone %s: %s", path,
			    g_strerror(e));
		return FALSE;
	}
	src->slots = map;
	src->slots_mapped = TRUE;
	return TRUE;
}

static void clear_slot(ct_source *src, guint i)
{
	((struct nlmsghdr *)src->slots[i].event)->nlmsg_len = 0;
}

static void clear_slots(ct_source *src, guint n)
{
	for (guint i = 0; i < n; i++)
		clear_slot(src, i);
}

/* Counts and logs, rate-limited, a datagram from another sender. */
static void note_not_kernel(ct_source *src, const struct sockaddr_nl *from, gint64 now_us)
{
	src->stats.not_kernel++;
	src->not_kernel_unlogged++;
	if (src->not_kernel_logged && now_us - src->not_kernel_logged_us < NOT_KERNEL_LOG_US)
		return;
	g_autofree char *who = from->nl_family == AF_NETLINK
				       ? g_strdup_printf("port id %u", from->nl_pid)
				       : g_strdup_printf("address family %u", from->nl_family);
	if (!src->not_kernel_logged)
		g_warning("conntrack event socket: dropped a message from %s, not from the "
			  "kernel: a local process with CAP_NET_ADMIN in the watched namespace "
			  "sends forged events (more are logged at most once a minute)",
			  who);
	else
		g_warning("conntrack event socket: dropped %" G_GUINT64_FORMAT " more messages not "
			  "from the kernel, the latest from %s (%" G_GUINT64_FORMAT " in all)",
			  src->not_kernel_unlogged, who, src->stats.not_kernel);
	src->not_kernel_logged = TRUE;
	src->not_kernel_logged_us = now_us;
	src->not_kernel_unlogged = 0;
}

static void parse_datagram(ct_source *src, const uint8_t *buf, size_t len, size_t *n);
static void coalesce_setup(ct_source *src);

/* Events a previous worker took off the socket but had not journaled. */
static void recover_landing_zone(ct_source *src, const char *path)
{
	size_t n = 0;
	guint found = 0, unrecorded = 0;

	for (guint i = 0; i < RECV_BATCH; i++) {
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)src->slots[i].event;
		if (nlh->nlmsg_len == 0)
			continue;
		const struct sockaddr_nl *from = &src->slots[i].sender;
		if (src->check_sender && from->nl_family == AF_UNSPEC) {
			/* written by a build that recorded no senders: it took
			 * every event as this one would have, and dropping them
			 * would lose flows across an upgrade */
			if (!unrecorded++)
				g_message("landing zone %s: events without a recorded sender,"
					  " left by an earlier version; taken as the kernel's",
					  path);
		} else if (src->check_sender && !ct_netlink_from_kernel(from)) {
			note_not_kernel(src, from, g_get_monotonic_time());
			continue;
		}
		found++;
		if (nlh->nlmsg_len >= sizeof(*nlh) && nlh->nlmsg_len <= RECV_SIZE) {
			parse_datagram(src, src->slots[i].event, nlh->nlmsg_len, &n);
		} else {
			src->stats.malformed++;
			g_warning("landing zone %s: slot %u says %u bytes, not a message a slot"
				  " holds (%zu to %zu); dropped",
				  path, i, nlh->nlmsg_len, sizeof(*nlh), RECV_SIZE);
		}
	}
	if (found) {
		g_message("recovered %u conntrack events a previous worker had received but "
			  "not yet journaled",
			  found);
		src->stats.recovered += found;
	}
	if (n)
		src->deliver(src->records, n, src->user);
	/* also when none was found: writing every slot now takes the page
	 * faults here, not in the first burst */
	clear_slots(src, RECV_BATCH);
}

/*
 * Whether senders are checked.  Production hands over only netfilter
 * netlink sockets (ct_socket_verify), whose senders are checked one by one.
 * A socket of another family has no netlink sender to judge: it is taken
 * only when connected (a socketpair, as the tests and fuzzers use), as it
 * then takes datagrams from its one peer, which whoever made it holds.
 */
static gboolean sender_check_for(int fd, gboolean *check, GError **error)
{
	int domain = 0;
	socklen_t len = sizeof(domain);
	struct sockaddr_storage peer;
	socklen_t peer_len = sizeof(peer);

	*check = getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 &&
		 domain == AF_NETLINK;
	if (*check || getpeername(fd, (struct sockaddr *)&peer, &peer_len) == 0)
		return TRUE;
	g_set_error(error, CTFLOWD_ERROR, ENOTCONN,
		    "conntrack event socket (descriptor %d) is neither a netlink socket nor "
		    "connected: who sends to it cannot be told",
		    fd);
	return FALSE;
}

ct_source *ct_source_new(int events_fd, const char *landing_path,
			 const struct ct_source_options *opts, ct_source_records_fn fn,
			 void *user, GError **error)
{
	ct_source *src = g_new0(ct_source, 1);

	src->fd = events_fd;
	src->deliver = fn;
	src->user = user;
	src->opts = *opts;
	coalesce_setup(src);

	if (!sender_check_for(events_fd, &src->check_sender, error) ||
	    !(src->requests = ct_request_new(error)))
		goto fail;
	if (opts->subscribe_new)
		src->labels = ct_labels_new(LABELS_REMEMBERED);
	if (!ct_filter_is_empty(opts->filter)) {
		struct ct_dump_filter dump = ct_filter_dump_filter(opts->filter);
		ct_request_set_filter(src->requests, &dump);
	}
	if (landing_path) {
		if (!map_landing_zone(src, landing_path, error))
			goto fail;
	} else {
		src->slots = g_malloc0(sizeof(*src->slots) * RECV_BATCH);
	}
	for (guint i = 0; i < RECV_BATCH; i++) {
		src->iov[i].iov_base = src->slots[i].event;
		src->iov[i].iov_len = RECV_SIZE;
		src->msgs[i].msg_hdr.msg_iov = &src->iov[i];
		src->msgs[i].msg_hdr.msg_iovlen = 1;
		if (src->check_sender)
			src->msgs[i].msg_hdr.msg_name = &src->slots[i].sender;
	}
	recover_landing_zone(src, landing_path ? landing_path : "in memory");
	return src;

fail:
	ct_source_free(src);
	return NULL;
}

int ct_source_fd(const ct_source *src)
{
	return src->fd;
}

static void note_malformed(ct_source *src, const struct nlmsghdr *nlh, const char *why)
{
	src->stats.malformed++;
	/* A kernel that sends malformed messages sends many: log the first few
	 * and then every thousandth, never silently. */
	if (src->malformed_logged < 10 || src->stats.malformed % 1000 == 0) {
		src->malformed_logged++;
		g_warning("malformed conntrack message (type 0x%04x, %u bytes) dropped: %s "
			  "(%" G_GUINT64_FORMAT " so far)",
			  nlh->nlmsg_type, nlh->nlmsg_len, why, src->stats.malformed);
	}
}

/* Parses the messages of one datagram into src->records starting at *n,
 * delivering whenever the array fills. */
static void parse_datagram(ct_source *src, const uint8_t *buf, size_t len, size_t *n)
{
	const struct nlmsghdr *nlh;
	size_t offset = 0;

	while ((nlh = ct_request_next_message(buf, len, &offset))) {
		if (nlh->nlmsg_type >= NLMSG_MIN_TYPE) {
			const char *why = NULL;
			struct flow_record *r = &src->records[*n];
			src->stats.messages++;
			switch (ct_parse_message(nlh, r, &why)) {
			case CT_PARSE_OK:
				/* the second stage: what the kernel's filters
				 * cannot express, or let through before they were
				 * in place */
				if (!ct_filter_match(src->opts.filter, r)) {
					src->stats.filtered++;
					break;
				}
				/* DESTROYs carry no labels: those of the NEW */
				if (src->labels)
					ct_labels_track(src->labels, r);
				if (r->event == FLOW_EVENT_DESTROY) {
					src->stats.destroys++;
					if (!(r->flags & FLOW_HAS_COUNTERS))
						src->stats.no_counters++;
					if (!(r->flags & FLOW_HAS_TIMESTAMPS))
						src->stats.no_timestamps++;
				} else if (r->event == FLOW_EVENT_NEW) {
					src->stats.news++;
				} else if (r->event == FLOW_EVENT_DUMP) {
					src->stats.dumped++;
				}
				if (++*n == RECV_BATCH) {
					src->deliver(src->records, *n, src->user);
					*n = 0;
				}
				break;
			case CT_PARSE_IGNORED:
				src->stats.ignored++;
				break;
			case CT_PARSE_ERROR:
				note_malformed(src, nlh, why);
				break;
			}
		}
	}
	if (offset < len)
		src->stats.malformed++;
}

static void note_overrun(ct_source *src)
{
	gint64 now = g_get_monotonic_time();
	gboolean new_burst = src->last_overrun_us == 0 ||
			     now - src->last_overrun_us > (gint64)src->opts.resync_delay_ms * 1000;

	src->stats.overruns++;
	src->last_overrun_us = now;
	if (!new_burst)
		return;
	src->stats.overrun_bursts++;
	if (src->opts.reliable) {
		/* DESTROYs that did not fit stay with the kernel and come again;
		 * NEW events (when subscribed) are gone. */
		g_message("netlink receive buffer overrun: the kernel holds back the DESTROY "
			  "events that did not fit and resends them%s; a larger receive_buffer "
			  "saves the retries",
			  src->opts.subscribe_new ? " (NEW events were lost)" : "");
	} else {
		g_warning("netlink receive buffer overrun: conntrack events were LOST (reliable = "
			  "no); flows that ended meanwhile will not be exported; use reliable = "
			  "yes or a larger receive_buffer");
	}
	/* A dump can only recover the state of flows that are still running,
	 * which matters when NEW events or unreliable delivery are in play. */
	if (!src->opts.reliable || src->opts.subscribe_new)
		src->resync_pending = TRUE;
}

/* Hands on what the landing zone holds, then frees its slots. */
static void deliver_landed(ct_source *src)
{
	if (src->pending)
		src->deliver(src->records, src->pending, src->user);
	src->pending = 0;
	clear_slots(src, src->used);
	src->used = 0;
}

/*
 * Events stay in the landing zone until a batch is worth handing on: the
 * journal then takes one write for many records instead of one per wake-up,
 * which with a small receive buffer comes every two or three events.  The
 * zone is a file, so holding them there costs no safety.
 */
static gboolean landing_due(const ct_source *src, gint64 now_us)
{
	return src->used >= LANDING_BATCH ||
	       (src->used && now_us - src->landed_us >= LANDING_HOLD_US);
}

/* Reads until the socket is empty or DRAIN_MAX_CALLS batches were taken;
 * *taken counts the datagrams. */
static gboolean drain_once(ct_source *src, gint64 now_us, guint *taken, GError **error)
{
	int fd = ct_source_fd(src);

	*taken = 0;
	for (int call = 0; call < DRAIN_MAX_CALLS; call++) {
		if (src->used == RECV_BATCH)
			deliver_landed(src);
		guint room = RECV_BATCH - src->used;
		/* the kernel writes each sender's address length back */
		if (src->check_sender)
			for (guint i = src->used; i < RECV_BATCH; i++)
				src->msgs[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_nl);
		int got = recvmmsg(fd, &src->msgs[src->used], room, MSG_DONTWAIT, NULL);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == ENOBUFS) {
				note_overrun(src);
				continue;
			}
			int e = errno;
			deliver_landed(src);
			g_set_error(error, CTFLOWD_ERROR, e,
				    "reading conntrack events: %s", g_strerror(e));
			return FALSE;
		}
		if (got > 0 && src->used == 0)
			src->landed_us = now_us;
		*taken += (guint)got;
		for (guint i = src->used; i < src->used + (guint)got; i++) {
			const struct msghdr *mh = &src->msgs[i].msg_hdr;
			/* neither parsed nor left for a recovery to find */
			if (src->check_sender && (mh->msg_namelen < sizeof(struct sockaddr_nl) ||
						  !ct_netlink_from_kernel(&src->slots[i].sender))) {
				note_not_kernel(src, &src->slots[i].sender, now_us);
				clear_slot(src, i);
				continue;
			}
			if (mh->msg_flags & MSG_TRUNC) {
				src->stats.malformed++;
				g_warning("conntrack event larger than %zu bytes dropped", RECV_SIZE);
				clear_slot(src, i);
				continue;
			}
			parse_datagram(src, src->slots[i].event, src->msgs[i].msg_len,
				       &src->pending);
		}
		src->used += (guint)got;
		/* spool_sync = record: durable before the next read */
		if (src->opts.hand_on_each_read)
			deliver_landed(src);
		if ((guint)got < room)
			break;
	}
	if (landing_due(src, now_us))
		deliver_landed(src);
	return TRUE;
}

gint64 ct_source_burst_seen_us(const ct_source *src)
{
	return __atomic_load_n(&src->burst_seen_us, __ATOMIC_RELAXED);
}

gint64 ct_source_landed_due_us(const ct_source *src, gint64 now_us)
{
	if (!src->used)
		return -1;
	return MAX(src->landed_us + LANDING_HOLD_US - now_us, 0);
}

void ct_source_deliver_landed(ct_source *src)
{
	deliver_landed(src);
}

static void coalesce_setup(ct_source *src)
{
	int rcvbuf = 0;
	socklen_t len = sizeof(rcvbuf);

	/* the buffer really granted: a socket handed over may differ from
	 * the configuration */
	if (getsockopt(src->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, &len) < 0 || rcvbuf <= 0)
		coalesce_init(&src->coalesce, src->opts.receive_buffer * 2);
	else
		coalesce_init(&src->coalesce, (guint64)rcvbuf);
}

gboolean ct_source_drain(ct_source *src, gint64 now_us, GError **error)
{
	/* a burst that never ends must not starve the loop's deadlines (group
	 * commit, heartbeat, stop); the burst's state carries over */
	const gint64 until = now_us + DRAIN_SLICE_US;

	for (;;) {
		guint taken;
		guint64 overruns = src->stats.overruns;
		if (!drain_once(src, now_us, &taken, error))
			return FALSE;
		gboolean overran = src->stats.overruns != overruns;
		/* a whole batch in one read, or an overrun: the reader is behind */
		if (overran || taken >= RECV_BATCH)
			__atomic_store_n(&src->burst_seen_us, now_us, __ATOMIC_RELAXED);
		guint pause = coalesce_pause(&src->coalesce, taken, overran, now_us);
		if (!pause || now_us + pause >= until)
			return TRUE;
		struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)pause * 1000 };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		now_us = g_get_monotonic_time();
	}
}

gint64 ct_source_resync_due(const ct_source *src)
{
	if (!src->resync_pending)
		return -1;
	gint64 due = src->last_overrun_us + (gint64)src->opts.resync_delay_ms * 1000;
	gint64 now = g_get_monotonic_time();
	return due <= now ? 0 : (due - now + 999) / 1000;
}

/* Parses each entry of a resync dump into the record array. */
struct dump_take {
	ct_source *src;
	size_t n;
};

static gboolean take_dumped(const struct nlmsghdr *nlh, void *user)
{
	struct dump_take *take = user;

	parse_datagram(take->src, (const uint8_t *)nlh, nlh->nlmsg_len, &take->n);
	return TRUE;
}

gboolean ct_source_resync(ct_source *src, GError **error)
{
	const gint64 deadline = g_get_monotonic_time() + RESYNC_MAX_MS * 1000;

	/* the dump parses into the same record array the landed events use */
	deliver_landed(src);
	src->resync_pending = FALSE;
	src->last_overrun_us = 0;
	for (int attempt = 1; attempt <= DUMP_ATTEMPTS; attempt++) {
		struct dump_take take = { .src = src };
		gboolean interrupted;
		gboolean ok = ct_request_dump(src->requests, CT_REQUEST_TABLE, deadline,
					      take_dumped, &take, &interrupted, error);
		if (take.n)
			src->deliver(src->records, take.n, src->user);
		if (!ok)
			return FALSE;
		if (!interrupted) {
			src->stats.resyncs++;
			g_info("conntrack table resynchronised");
			return TRUE;
		}
		g_info("conntrack table dump interrupted by changes, attempt %d of %d", attempt,
		       DUMP_ATTEMPTS);
	}
	g_warning("conntrack table kept changing during %d dumps; the last one is used",
		  DUMP_ATTEMPTS);
	src->stats.resyncs++;
	return TRUE;
}

gboolean ct_source_held_back(ct_source *src, gint64 deadline_us, gboolean *any, GError **error)
{
	return ct_request_any_parked(src->requests, deadline_us, any, error);
}

const struct ct_source_stats *ct_source_get_stats(const ct_source *src)
{
	return &src->stats;
}

void ct_source_free(ct_source *src)
{
	if (!src)
		return;
	ct_request_free(src->requests);
	ct_labels_free(src->labels);
	if (src->slots_mapped)
		munmap(src->slots, sizeof(*src->slots) * RECV_BATCH);
	else
		g_free(src->slots);
	g_free(src);
}
