/*
 * test_landing.c - the landing zone: events a killed worker had taken off
 * the socket, recovered by the next one.
 *
 * recvmmsg() writes each event into a slot of a file mapped MAP_SHARED; a
 * slot is cleared only once its record was handed on (journaled).  So a
 * worker killed after a read leaves the events in the file, and the next
 * ct_source_new() must deliver them before anything else, once, and cope
 * with whatever a crash or a disk left there.  The events socket here is
 * one end of a datagram socketpair: the source only reads it, and each
 * datagram is one event, as from the kernel.  Events are DESTROY messages
 * built the way the kernel builds them.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctflowd/ct_source.h"
#include "ctflowd/error.h"
#include "ctflowd/flow_id.h"
#include "ctflowd/intake.h"
#include "ctflowd/spool.h"
#include "test_files.h"

/* The file's layout (ct_source.c): this many slots of this many bytes, one
 * event at the start of each and its sender's address at SENDER_AT.
 * /landing/layout checks it. */
#define SLOTS 256
#define SLOT_SIZE 8192
#define SENDER_AT (SLOT_SIZE - 16)
#define EVENT_MAX 1024
#define ID_BASE 0x20000u
#define START_NS 1700000000000000000ull

/* ---- events --------------------------------------------------------------------- */

static void put_tuple(struct nlmsghdr *nlh, uint16_t type, uint32_t src, uint32_t dst,
		      uint16_t sport, uint16_t dport)
{
	struct nlattr *tuple = mnl_attr_nest_start(nlh, type);
	struct nlattr *ip = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
	mnl_attr_put_u32(nlh, CTA_IP_V4_SRC, htonl(src));
	mnl_attr_put_u32(nlh, CTA_IP_V4_DST, htonl(dst));
	mnl_attr_nest_end(nlh, ip);
	struct nlattr *proto = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
	mnl_attr_put_u8(nlh, CTA_PROTO_NUM, IPPROTO_UDP);
	mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(sport));
	mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(dport));
	mnl_attr_nest_end(nlh, proto);
	mnl_attr_nest_end(nlh, tuple);
}

static void put_pair(struct nlmsghdr *nlh, uint16_t nest, uint16_t a, uint16_t b,
		     uint64_t va, uint64_t vb)
{
	struct nlattr *n = mnl_attr_nest_start(nlh, nest);
	mnl_attr_put_u64(nlh, a, htobe64(va));
	mnl_attr_put_u64(nlh, b, htobe64(vb));
	mnl_attr_nest_end(nlh, n);
}

/* The DESTROY of flow @k into @buf (EVENT_MAX bytes); returns its length. */
static size_t put_destroy(void *buf, guint32 k)
{
	/* libmnl leaves attribute padding as it finds it; the kernel zeroes it */
	memset(buf, 0, EVENT_MAX);
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE;
	struct nfgenmsg *nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = AF_INET;
	nfg->version = NFNETLINK_V0;

	const uint32_t client = 0x0a000000u + 2 + (k >> 16), server = 0x0a000001u;
	const uint16_t port = (uint16_t)(1024 + k % 60000);
	put_tuple(nlh, CTA_TUPLE_ORIG, client, server, port, 53);
	put_tuple(nlh, CTA_TUPLE_REPLY, server, client, 53, port);
	mnl_attr_put_u32(nlh, CTA_STATUS, htonl(0x18e));
	mnl_attr_put_u32(nlh, CTA_ID, htonl(ID_BASE + k));
	put_pair(nlh, CTA_COUNTERS_ORIG, CTA_COUNTERS_PACKETS, CTA_COUNTERS_BYTES, 1, 100 + k);
	put_pair(nlh, CTA_COUNTERS_REPLY, CTA_COUNTERS_PACKETS, CTA_COUNTERS_BYTES, 1, 200);
	put_pair(nlh, CTA_TIMESTAMP, CTA_TIMESTAMP_START, CTA_TIMESTAMP_STOP, START_NS + k,
		 START_NS + k + 30000000000ull);
	return nlh->nlmsg_len;
}

static void send_destroys(int fd, guint32 first, guint n)
{
	for (guint32 k = first; k < first + n; k++) {
		guint8 buf[EVENT_MAX];
		size_t len = put_destroy(buf, k);
		g_assert_cmpint(send(fd, buf, len, 0), ==, (ssize_t)len);
	}
}

/* The flow a parsed record is, checked field by field. */
static guint32 flow_of(const struct flow_record *r)
{
	g_assert_cmpint(r->event, ==, FLOW_EVENT_DESTROY);
	g_assert_cmpuint(r->ct_id, >=, ID_BASE);
	guint32 k = r->ct_id - ID_BASE;
	g_assert_cmpuint(r->bytes, ==, 100 + k);
	g_assert_cmpuint(r->reply_bytes, ==, 200);
	g_assert_cmpuint(r->start_ns, ==, START_NS + k);
	g_assert_cmpuint(r->orig.sport, ==, 1024 + k % 60000);
	return k;
}

/* ---- the source ------------------------------------------------------------------- */

struct sink {
	GArray *records;
	guint calls;
};

static void collect(const struct flow_record *records, size_t n, void *user)
{
	struct sink *s = user;

	g_array_append_vals(s->records, records, (guint)n);
	s->calls++;
}

/* A worker killed while it hands events on, before it could journal them. */
static void killed_on_delivery(const struct flow_record *records, size_t n, void *user)
{
	raise(SIGKILL);
}

static const struct ct_source_options options = {
	.receive_buffer = 1 << 20,
	.reliable = TRUE,
	.resync_delay_ms = 1000,
};

/* An events socket: [0] for the source, [1] to send on. */
static void events_pair(int fds[2])
{
	g_assert_cmpint(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, fds), ==, 0);
}

static ct_source *source_new(int fd, const char *landing, ct_source_records_fn fn, void *user)
{
	g_autoptr(GError) error = NULL;
	ct_source *src = ct_source_new(fd, landing, &options, fn, user, &error);

	g_assert_no_error(error);
	g_assert_nonnull(src);
	return src;
}

/* A landing file in a temporary directory, the source on it and its
 * events socket, and what it handed on. */
struct rig {
	char *dir;
	char *landing;
	struct sink sink;
	int fds[2];
	ct_source *src;
};

static void rig_init(struct rig *r)
{
	r->dir = make_dir();
	r->landing = path_in(r->dir, "landing");
	r->sink.records = g_array_new(FALSE, FALSE, sizeof(struct flow_record));
	r->sink.calls = 0;
	r->fds[0] = r->fds[1] = -1;
	r->src = NULL;
}

/* A new events socket and a source on the landing file, handing on to @fn
 * (NULL: to the rig's sink). */
static void rig_start(struct rig *r, ct_source_records_fn fn, void *user)
{
	events_pair(r->fds);
	r->src = source_new(r->fds[0], r->landing, fn ? fn : collect, fn ? user : &r->sink);
}

static void rig_stop(struct rig *r)
{
	ct_source_free(r->src);
	r->src = NULL;
	for (int i = 0; i < 2; i++) {
		if (r->fds[i] >= 0)
			close(r->fds[i]);
		r->fds[i] = -1;
	}
}

static void rig_clear(struct rig *r)
{
	rig_stop(r);
	g_array_free(r->sink.records, TRUE);
	remove_tree(r->dir);
	g_free(r->landing);
	g_free(r->dir);
}

/* A start after everything was handed on: the file gives nothing back. */
static void assert_restart_recovers_nothing(struct rig *r)
{
	rig_stop(r);
	g_array_set_size(r->sink.records, 0);
	rig_start(r, NULL, NULL);
	g_assert_cmpuint(r->sink.records->len, ==, 0);
	g_assert_cmpuint(ct_source_get_stats(r->src)->recovered, ==, 0);
	g_assert_cmpuint(file_size(r->landing), ==, SLOTS * SLOT_SIZE);
}

/* ct_source_new() also opens a ctnetlink socket for table dumps; a host
 * without nfnetlink cannot run these tests. */
static gboolean can_open_source(void)
{
	g_autoptr(GError) error = NULL;
	int fds[2];

	events_pair(fds);
	ct_source *src = ct_source_new(fds[0], NULL, &options, collect, NULL, &error);
	gboolean ok = src != NULL;
	if (!ok)
		g_test_skip(error->message);
	ct_source_free(src);
	close(fds[0]);
	close(fds[1]);
	return ok;
}

/* Runs @child_fn in a child process, which must die of SIGKILL. */
static void in_killed_child(void (*child_fn)(const char *dir), const char *dir)
{
	pid_t child = fork();
	int status;

	g_assert_cmpint(child, >=, 0);
	if (child == 0) {
		child_fn(dir);
		_exit(1);
	}
	g_assert_cmpint(waitpid(child, &status, 0), ==, child);
	g_assert_true(WIFSIGNALED(status));
	g_assert_cmpint(WTERMSIG(status), ==, SIGKILL);
}

/* Takes events 0..49 off its socket and is killed handing them on. */
static void land_fifty_and_die(const char *dir)
{
	g_autofree char *landing = path_in(dir, "landing");
	int fds[2];

	events_pair(fds);
	ct_source *src = source_new(fds[0], landing, killed_on_delivery, NULL);
	send_destroys(fds[1], 0, 50);
	g_autoptr(GError) error = NULL;
	if (!ct_source_drain(src, g_get_monotonic_time(), &error))
		_exit(2);
	/* off the socket now: whatever the drain did not hand on yet, this does */
	ct_source_deliver_landed(src);
}

static void assert_flows(GArray *got, guint32 first, guint n)
{
	g_assert_cmpuint(got->len, ==, n);
	for (guint i = 0; i < n; i++)
		g_assert_cmpuint(flow_of(&g_array_index(got, struct flow_record, i)), ==, first + i);
}

/* ---- tests ---------------------------------------------------------------------- */

/* The file has the layout the damage tests assume. */
static void test_layout(void)
{
	struct rig r;
	guint8 want[EVENT_MAX];

	if (!can_open_source())
		return;
	rig_init(&r);
	rig_start(&r, NULL, NULL);
	g_assert_cmpuint(file_size(r.landing), ==, SLOTS * SLOT_SIZE);
	send_destroys(r.fds[1], 0, 2);
	g_assert_true(ct_source_drain(r.src, g_get_monotonic_time(), NULL));
	/* landed, held back for a batch: in the file, not handed on */
	g_assert_cmpint(ct_source_landed_due_us(r.src, g_get_monotonic_time()), >=, 0);
	g_assert_cmpuint(r.sink.records->len, ==, 0);
	g_autofree char *bytes = NULL;
	gsize len = 0;
	g_assert_true(g_file_get_contents(r.landing, &bytes, &len, NULL));
	for (guint32 k = 0; k < 2; k++) {
		size_t n = put_destroy(want, k);
		g_assert_cmpmem(bytes + k * SLOT_SIZE, n, want, n);
	}
	ct_source_deliver_landed(r.src);
	assert_flows(r.sink.records, 0, 2);
	rig_clear(&r);
}

/*
 * A worker killed before it journaled what it had read: the next source
 * delivers those events first (before ct_source_new() returns, so before
 * any new event), each once, and clears them, so a third start finds none.
 */
static void test_killed_predecessor(void)
{
	struct rig r;

	if (!can_open_source())
		return;
	rig_init(&r);
	in_killed_child(land_fifty_and_die, r.dir);

	/* new events are already queued when the successor starts */
	events_pair(r.fds);
	send_destroys(r.fds[1], 1000, 10);
	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE,
			      "recovered 50 conntrack events a previous worker had received but"
			      " not yet journaled");
	r.src = source_new(r.fds[0], r.landing, collect, &r.sink);
	g_test_assert_expected_messages();
	assert_flows(r.sink.records, 0, 50);
	g_assert_cmpuint(ct_source_get_stats(r.src)->recovered, ==, 50);
	g_assert_cmpuint(ct_source_get_stats(r.src)->malformed, ==, 0);

	g_assert_true(ct_source_drain(r.src, g_get_monotonic_time(), NULL));
	ct_source_deliver_landed(r.src);
	g_assert_cmpuint(r.sink.records->len, ==, 60);
	for (guint i = 0; i < 10; i++)
		g_assert_cmpuint(flow_of(&g_array_index(r.sink.records, struct flow_record, 50 + i)),
				 ==, 1000 + i);
	assert_restart_recovers_nothing(&r);
	rig_clear(&r);
}

/* ---- with the journal behind it ----------------------------------------------------- */

struct worker {
	spool *spool;
	flow_ids *ids;
	conn_state *state;
	intake *in;
};

static void worker_open(struct worker *w, const char *dir)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *spool_dir = path_in(dir, "spool");
	g_autofree char *id_path = path_in(dir, "flow-id");

	w->spool = spool_open(spool_dir, 1ull << 30, SPOOL_SYNC_NONE, &error);
	g_assert_no_error(error);
	w->ids = flow_ids_open(id_path, &error);
	g_assert_no_error(error);
	w->state = conn_state_new();
	w->in = intake_new(w->spool, w->ids, w->state, 4096, &error);
	g_assert_no_error(error);
	spool_recent(w->spool, 4096, intake_remember, w->in);
}

static void worker_close(struct worker *w)
{
	intake_free(w->in);
	conn_state_free(w->state);
	flow_ids_free(w->ids);
	spool_free(w->spool);
}

/* Journals what it hands on, and is killed before the slots are cleared. */
static void journal_then_die(const struct flow_record *records, size_t n, void *user)
{
	intake_records(records, n, user);
	raise(SIGKILL);
}

static void journal_fifty_and_die(const char *dir)
{
	g_autofree char *landing = path_in(dir, "landing");
	struct worker w;
	int fds[2];

	worker_open(&w, dir);
	events_pair(fds);
	ct_source *src = source_new(fds[0], landing, journal_then_die, w.in);
	send_destroys(fds[1], 0, 50);
	if (!ct_source_drain(src, g_get_monotonic_time(), NULL))
		_exit(2);
	ct_source_deliver_landed(src);
}

/*
 * Killed between the journal append and the clearing of the slots: the
 * events come again from the landing zone, and the duplicate filter,
 * taught from the journal at start, drops them.  The journal holds every
 * flow once.
 */
static void test_journaled_once(void)
{
	struct rig r;
	struct worker w;

	if (!can_open_source())
		return;
	rig_init(&r);
	in_killed_child(journal_fifty_and_die, r.dir);

	worker_open(&w, r.dir);
	g_assert_cmpuint(spool_end(w.spool), ==, 50);
	events_pair(r.fds);
	send_destroys(r.fds[1], 50, 10);
	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, "recovered 50 conntrack events*");
	r.src = source_new(r.fds[0], r.landing, intake_records, w.in);
	g_test_assert_expected_messages();
	g_assert_cmpuint(intake_get_stats(w.in)->duplicates, ==, 50);
	g_assert_true(ct_source_drain(r.src, g_get_monotonic_time(), NULL));
	ct_source_deliver_landed(r.src);
	g_assert_cmpuint(intake_get_stats(w.in)->accepted, ==, 10);

	guint reader = spool_add_reader(w.spool);
	struct flow_record out[64];
	guint64 pos = 0;
	size_t n;
	while ((n = spool_read(w.spool, reader, &pos, out, G_N_ELEMENTS(out), 0)))
		g_array_append_vals(r.sink.records, out, (guint)n);
	assert_flows(r.sink.records, 0, 60);
	rig_stop(&r);
	worker_close(&w);
	rig_clear(&r);
}

/* ---- damage ------------------------------------------------------------------------ */

/* Writes @n bytes of event @k (its first @n, or all of it for 0) into slot @slot. */
static void put_slot(int fd, guint slot, guint32 k, size_t n)
{
	guint8 buf[EVENT_MAX];
	size_t len = put_destroy(buf, k);

	if (n)
		len = MIN(len, n);
	g_assert_cmpint(pwrite(fd, buf, len, (off_t)slot * SLOT_SIZE), ==, (ssize_t)len);
}

/* A rig whose landing file the test writes itself: the file's descriptor. */
static int rig_init_file(struct rig *r)
{
	rig_init(r);
	int fd = open(r->landing, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	g_assert_cmpint(fd, >=, 0);
	return fd;
}

static void put_header(int fd, guint slot, uint32_t len, uint16_t type)
{
	struct nlmsghdr h = {.nlmsg_len = len, .nlmsg_type = type};

	g_assert_cmpint(pwrite(fd, &h, sizeof(h), (off_t)slot * SLOT_SIZE), ==, sizeof(h));
}

/*
 * What a crash, a disk or a hand can leave in the file: slots whose length
 * cannot be right, a message cut short, bytes that are no message.  Each
 * bad slot is logged and counted, every good one is still delivered, in
 * slot order, and afterwards the file is clean.
 */
static void test_damaged_file(void)
{
	const uint16_t delete = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE;
	struct rig r;

	if (!can_open_source())
		return;
	int fd = rig_init_file(&r);
	put_slot(fd, 0, 0, 0);
	put_header(fd, 1, 0xfffffff0u, delete);          /* past the slot */
	put_slot(fd, 2, 2, 0);
	put_header(fd, 3, 3, delete);                    /* shorter than a header */
	put_slot(fd, 4, 4, 40);                          /* cut short, length still whole */
	guint8 noise[200];
	for (size_t i = 0; i < sizeof(noise); i++)
		noise[i] = (guint8)(i * 37 + 11);
	struct nlmsghdr h = {.nlmsg_len = sizeof(noise), .nlmsg_type = delete};
	memcpy(noise, &h, sizeof(h));
	noise[sizeof(h)] = AF_INET;   /* past the family check, into the attributes */
	g_assert_cmpint(pwrite(fd, noise, sizeof(noise), 5 * SLOT_SIZE), ==, sizeof(noise));
	put_slot(fd, SLOTS - 1, 255, 0);                 /* the last slot */
	close(fd);
	/* written by a build with fewer slots: the file is shorter */
	guint8 last[EVENT_MAX];
	g_assert_cmpuint(file_size(r.landing), ==, (SLOTS - 1) * SLOT_SIZE + put_destroy(last, 255));

	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING,
			      "landing zone *landing: slot 1 says 4294967280 bytes, not a message a"
			      " slot holds (16 to 8176); dropped");
	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING,
			      "landing zone *landing: slot 3 says 3 bytes,*dropped");
	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING,
			      "malformed conntrack message (type 0x0102, * bytes) dropped: *");
	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING,
			      "malformed conntrack message (type 0x0102, 200 bytes) dropped: *");
	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, "recovered 7 conntrack events*");
	rig_start(&r, NULL, NULL);
	g_test_assert_expected_messages();
	GArray *got = r.sink.records;
	g_assert_cmpuint(got->len, ==, 3);
	g_assert_cmpuint(flow_of(&g_array_index(got, struct flow_record, 0)), ==, 0);
	g_assert_cmpuint(flow_of(&g_array_index(got, struct flow_record, 1)), ==, 2);
	g_assert_cmpuint(flow_of(&g_array_index(got, struct flow_record, 2)), ==, 255);
	g_assert_cmpuint(ct_source_get_stats(r.src)->malformed, ==, 4);
	g_assert_cmpuint(ct_source_get_stats(r.src)->recovered, ==, 7);
	/* every slot was cleared, the bad ones too */
	assert_restart_recovers_nothing(&r);
	rig_clear(&r);
}

/* An empty file (created, never sized) holds nothing and is no error. */
static void test_empty_file(void)
{
	struct rig r;

	if (!can_open_source())
		return;
	rig_init(&r);
	write_file(r.landing, "", 0);
	assert_restart_recovers_nothing(&r);
	rig_clear(&r);
}

/* A landing path that cannot be a file is an error that names it. */
static void test_unusable_path(void)
{
	g_autoptr(GError) error = NULL;
	struct rig r;

	if (!can_open_source())
		return;
	rig_init(&r);
	g_assert_cmpint(g_mkdir(r.landing, 0700), ==, 0);
	events_pair(r.fds);
	ct_source *src = ct_source_new(r.fds[0], r.landing, &options, collect, NULL, &error);
	g_assert_null(src);
	g_assert_error(error, CTFLOWD_ERROR, EISDIR);
	g_autofree char *want = g_strdup_printf("landing zone: cannot open %s: %s", r.landing,
						g_strerror(EISDIR));
	g_assert_cmpstr(error->message, ==, want);
	rig_clear(&r);
}

/* ---- senders and lengths a local process forges ------------------------------------ */

/*
 * An events socket of the netlink family: [0] for the source, [1] a socket
 * of another process's kind that sends to [0]'s port id, as any process
 * with CAP_NET_ADMIN can to ctflowd's.  NETLINK_USERSOCK lets anyone
 * unicast, so this needs no privilege.  Returns [1]'s port id.
 */
static guint32 netlink_pair(int fds[2])
{
	struct sockaddr_nl addr = { .nl_family = AF_NETLINK };
	socklen_t len = sizeof(addr);

	for (int i = 0; i < 2; i++) {
		fds[i] = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_USERSOCK);
		g_assert_cmpint(fds[i], >=, 0);
		g_assert_cmpint(bind(fds[i], (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
	}
	g_assert_cmpint(getsockname(fds[0], (struct sockaddr *)&addr, &len), ==, 0);
	g_assert_cmpint(connect(fds[1], (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
	len = sizeof(addr);
	g_assert_cmpint(getsockname(fds[1], (struct sockaddr *)&addr, &len), ==, 0);
	g_assert_cmpuint(addr.nl_pid, !=, 0);
	return addr.nl_pid;
}

/* Every slot of the landing file is free (its length word 0). */
static void assert_slots_free(const char *landing)
{
	g_autofree char *bytes = NULL;
	gsize len = 0;

	g_assert_true(g_file_get_contents(landing, &bytes, &len, NULL));
	g_assert_cmpuint(len, ==, SLOTS * SLOT_SIZE);
	for (gsize slot = 0; slot < SLOTS; slot++) {
		guint32 word;
		memcpy(&word, bytes + slot * SLOT_SIZE, sizeof(word));
		g_assert_cmpuint(word, ==, 0);
	}
}

/*
 * DESTROYs sent to the event socket by another process are dropped before
 * they are parsed: nothing is handed on, their slots are free at once (a
 * worker killed now would leave nothing to recover), they are counted, and
 * logged with the sender's port id, the first at once and then at most one
 * line a minute with the number since.
 */
static void test_foreign_sender(void)
{
	struct rig r;
	const gint64 t0 = g_get_monotonic_time();

	if (!can_open_source())
		return;
	rig_init(&r);
	guint32 forger = netlink_pair(r.fds);
	r.src = source_new(r.fds[0], r.landing, collect, &r.sink);

	send_destroys(r.fds[1], 0, 3);
	g_autofree char *first = g_strdup_printf(
		"conntrack event socket: dropped a message from port id %u, not from the kernel:*",
		forger);
	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, first);
	g_assert_true(ct_source_drain(r.src, t0, NULL));
	g_test_assert_expected_messages();
	assert_slots_free(r.landing);
	const struct ct_source_stats *st = ct_source_get_stats(r.src);
	g_assert_cmpuint(st->not_kernel, ==, 3);
	g_assert_cmpuint(st->messages, ==, 0);
	g_assert_cmpuint(st->malformed, ==, 0);

	/* within the minute: counted, not logged (a warning would fail the test) */
	send_destroys(r.fds[1], 3, 5);
	g_assert_true(ct_source_drain(r.src, t0 + 59 * G_USEC_PER_SEC, NULL));
	g_assert_cmpuint(st->not_kernel, ==, 8);
	/* a minute on: one line for the eight since the first */
	send_destroys(r.fds[1], 8, 1);
	g_autofree char *later = g_strdup_printf(
		"conntrack event socket: dropped 8 more messages not from the kernel, the latest "
		"from port id %u (9 in all)", forger);
	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, later);
	g_assert_true(ct_source_drain(r.src, t0 + 61 * G_USEC_PER_SEC, NULL));
	g_test_assert_expected_messages();

	ct_source_deliver_landed(r.src);
	g_assert_cmpuint(r.sink.records->len, ==, 0);
	g_assert_cmpuint(st->destroys, ==, 0);
	rig_stop(&r);
	rig_clear(&r);
}

static void put_sender(int fd, guint slot, guint16 family, guint32 port_id)
{
	struct sockaddr_nl from = { .nl_family = family, .nl_pid = port_id };

	g_assert_cmpint(pwrite(fd, &from, sizeof(from), (off_t)slot * SLOT_SIZE + SENDER_AT), ==,
			sizeof(from));
}

/*
 * A worker killed between recvmmsg() and the sender check leaves a forged
 * event in its slot, with the sender the kernel wrote beside it: the
 * recovery drops it too.  Only the event the kernel sent is recovered.
 */
static void test_foreign_sender_recovered(void)
{
	struct rig r;

	if (!can_open_source())
		return;
	int fd = rig_init_file(&r);
	g_assert_cmpint(ftruncate(fd, SLOTS * SLOT_SIZE), ==, 0);
	put_slot(fd, 0, 0, 0);
	put_sender(fd, 0, AF_NETLINK, 4242);
	put_slot(fd, 1, 1, 0);
	put_sender(fd, 1, AF_NETLINK, 0);
	/* no sender written: a build that recorded none took it, as this
	 * one would have; dropping it would lose a flow across an upgrade */
	put_slot(fd, 2, 2, 0);
	put_slot(fd, 3, 3, 0);
	put_sender(fd, 3, AF_INET, 0);         /* no netlink sender at all */
	close(fd);

	netlink_pair(r.fds);
	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING,
			      "conntrack event socket: dropped a message from port id 4242, not "
			      "from the kernel:*");
	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE,
			      "landing zone *: events without a recorded sender, left by an "
			      "earlier version*");
	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, "recovered 2 conntrack events*");
	r.src = source_new(r.fds[0], r.landing, collect, &r.sink);
	g_test_assert_expected_messages();
	assert_flows(r.sink.records, 1, 2);
	g_assert_cmpuint(ct_source_get_stats(r.src)->not_kernel, ==, 2);
	g_assert_cmpuint(ct_source_get_stats(r.src)->recovered, ==, 2);
	assert_slots_free(r.landing);
	rig_clear(&r);
}

/* A DESTROY whose header claims @claimed bytes. */
static size_t put_lying_destroy(void *buf, guint32 k, guint32 claimed)
{
	size_t len = put_destroy(buf, k);

	((struct nlmsghdr *)buf)->nlmsg_len = claimed;
	return len;
}

/*
 * Lengths a forger writes, as the walk over a received datagram meets them
 * (a socketpair: no sender check in the way).  0xFFFFFFF0 once jumped the
 * walk out of the buffer, 0xFFFFFFFF made it stand still, 0 too.  Each
 * datagram is dropped as malformed, a drain returns, and the events around
 * them still arrive, also one packed behind a good message.
 */
static void test_forged_lengths(void)
{
	static const guint32 lengths[] = { 0xfffffff0u, 0xffffffffu, 0, 8, 0x80000000u };
	struct rig r;
	guint8 buf[2 * EVENT_MAX];

	if (!can_open_source())
		return;
	rig_init(&r);
	rig_start(&r, NULL, NULL);
	send_destroys(r.fds[1], 0, 1);
	for (guint i = 0; i < G_N_ELEMENTS(lengths); i++) {
		size_t len = put_lying_destroy(buf, 100 + i, lengths[i]);
		g_assert_cmpint(send(r.fds[1], buf, len, 0), ==, (ssize_t)len);
	}
	/* a good message, then a lying one in the same datagram */
	size_t good = put_destroy(buf, 1);
	size_t len = good + put_lying_destroy(buf + good, 200, 0xffffffffu);
	g_assert_cmpint(send(r.fds[1], buf, len, 0), ==, (ssize_t)len);
	send_destroys(r.fds[1], 2, 1);

	g_assert_true(ct_source_drain(r.src, g_get_monotonic_time(), NULL));
	ct_source_deliver_landed(r.src);
	assert_flows(r.sink.records, 0, 3);
	g_assert_cmpuint(ct_source_get_stats(r.src)->malformed, ==, G_N_ELEMENTS(lengths) + 1);
	assert_slots_free(r.landing);
	rig_clear(&r);
}

/* The same lengths left in the landing zone: each slot is dropped, logged. */
static void test_forged_lengths_recovered(void)
{
	static const guint32 lengths[] = { 0xfffffff0u, 0xffffffffu, 8, 0x80000000u };
	struct rig r;

	if (!can_open_source())
		return;
	int fd = rig_init_file(&r);
	for (guint i = 0; i < G_N_ELEMENTS(lengths); i++) {
		guint8 buf[EVENT_MAX];
		size_t len = put_lying_destroy(buf, i, lengths[i]);
		g_assert_cmpint(pwrite(fd, buf, len, (off_t)i * SLOT_SIZE), ==, (ssize_t)len);
		g_autofree char *want = g_strdup_printf(
			"landing zone *landing: slot %u says %u bytes, not a message a slot holds*",
			i, lengths[i]);
		g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, want);
	}
	put_slot(fd, G_N_ELEMENTS(lengths), 7, 0);
	close(fd);
	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, "recovered 5 conntrack events*");
	rig_start(&r, NULL, NULL);
	g_test_assert_expected_messages();
	assert_flows(r.sink.records, 7, 1);
	g_assert_cmpuint(ct_source_get_stats(r.src)->malformed, ==, G_N_ELEMENTS(lengths));
	assert_restart_recovers_nothing(&r);
	rig_clear(&r);
}

/* A socket that is neither netlink nor connected could take datagrams from
 * anyone, and tells nothing about them: refused, naming it. */
static void test_unconnected_socket(void)
{
	g_autoptr(GError) error = NULL;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	g_assert_cmpint(fd, >=, 0);
	ct_source *src = ct_source_new(fd, NULL, &options, collect, NULL, &error);
	g_assert_null(src);
	g_assert_error(error, CTFLOWD_ERROR, ENOTCONN);
	g_autofree char *want = g_strdup_printf(
		"conntrack event socket (descriptor %d) is neither a netlink socket nor "
		"connected: who sends to it cannot be told", fd);
	g_assert_cmpstr(error->message, ==, want);
	close(fd);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);

	g_test_add_func("/landing/layout", test_layout);
	g_test_add_func("/landing/killed-predecessor", test_killed_predecessor);
	g_test_add_func("/landing/journaled-once", test_journaled_once);
	g_test_add_func("/landing/damaged-file", test_damaged_file);
	g_test_add_func("/landing/empty-file", test_empty_file);
	g_test_add_func("/landing/unusable-path", test_unusable_path);
	g_test_add_func("/landing/foreign-sender", test_foreign_sender);
	g_test_add_func("/landing/foreign-sender-recovered", test_foreign_sender_recovered);
	g_test_add_func("/landing/forged-lengths", test_forged_lengths);
	g_test_add_func("/landing/forged-lengths-recovered", test_forged_lengths_recovered);
	g_test_add_func("/landing/unconnected-socket", test_unconnected_socket);

	return g_test_run();
}
