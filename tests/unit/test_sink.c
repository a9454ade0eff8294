/*
 * test_sink.c - a destination's confirmed position against the spool.
 *
 * The real export thread, spool, JSON encoder and file transport, with a
 * file in a temporary directory.  Each record's flow_id is its position plus
 * one, so every line in an export file says which record it is.  The
 * export's path is DIR/cur/full, where cur is a symbolic link to a
 * directory (ctflowd never follows a link in the file's own name, but the
 * directories on the way are the operator's).  A destination that fails
 * has cur point at /dev, so the file is /dev/full, where every write fails
 * with ENOSPC; pointing cur at a directory of the test is the collector
 * coming back.  What the tests hold the sink to:
 *   - the spool's confirmed position for the destination is exactly what
 *     the files hold, never more (it advances only with delivery);
 *   - after a failure, what was not confirmed is sent again from there;
 *   - in the end every record is in the files exactly once.
 */
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctflowd/sink.h"
#include "ctflowd/spool.h"
#include "test_files.h"

#define ROOMY (64ull * 1024 * 1024)
/* generous: a loaded machine may take long; the tests never wait this out */
#define WAIT_US (20 * G_USEC_PER_SEC)

struct fixture {
	char *dir;
	char *link;                 /* the export's path: DIR/cur/full */
	struct export_config cfg;
	spool *spool;
	sink *sink;
	guint64 appended;
};

/* The spool and the sink for f->cfg. */
static void fixture_create(struct fixture *f)
{
	GError *error = NULL;

	f->spool = spool_new(ROOMY);
	f->sink = sink_new(&f->cfg, f->spool, &error);
	g_assert_no_error(error);
	g_assert_nonnull(f->sink);
}

/* A JSON export to a file; the sink is created by fixture_create(). */
static void fixture_configure(struct fixture *f, const char *name, guint flush_ms, guint mtu)
{
	GError *error = NULL;

	f->dir = g_dir_make_tmp("test_sink-XXXXXX", &error);
	g_assert_no_error(error);
	f->link = g_build_filename(f->dir, "cur", "full", NULL);
	f->cfg = (struct export_config){
		.name = (char *)name,
		.format = EXPORT_FORMAT_JSON,
		.transport = EXPORT_TRANSPORT_FILE,
		.path = f->link,
		.flush_interval_ms = flush_ms,
		.template_refresh_ms = 60000,
		.mtu = mtu,
		.observation_domain = 1,
		.reconnect_min_ms = 10,
		.reconnect_max_ms = 50,
	};
}

static void fixture_set_up(struct fixture *f, const char *name, guint flush_ms, guint mtu)
{
	fixture_configure(f, name, flush_ms, mtu);
	fixture_create(f);
}

/* Where the file named @name in the tests is: "flows.json" and its
 * renamed forms are in the directory cur points at first, any other name
 * is the file in a directory of its own, DIR/NAME.d/full. */
G_GNUC_NO_INLINE static char *path_of(struct fixture *f, const char *name)
{
	if (g_str_has_prefix(name, "flows.json"))
		return g_strconcat(f->dir, "/flows.d/full", name + strlen("flows.json"), NULL);
	return g_strdup_printf("%s/%s.d/full", f->dir, name);
}

/* Points the export's directory at the one holding @target (a name as in
 * path_of(), or "/dev/full") in one rename, as the export thread may open
 * the file any time. */
static void point_at(struct fixture *f, const char *target)
{
	g_autofree char *tmp = g_build_filename(f->dir, "cur.new", NULL);
	g_autofree char *cur = g_build_filename(f->dir, "cur", NULL);
	g_autofree char *file = g_str_equal(target, "/dev/full") ? g_strdup(target)
								  : path_of(f, target);
	g_autofree char *dir = g_path_get_dirname(file);

	g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
	g_assert_cmpint(symlink(dir, tmp), ==, 0);
	g_assert_cmpint(rename(tmp, cur), ==, 0);
}

/* A running sink named @name whose path points at @target (NULL: a plain
 * file the sink creates). */
static void fixture_start(struct fixture *f, const char *name, guint flush_ms, guint mtu,
			  const char *target)
{
	fixture_set_up(f, name, flush_ms, mtu);
	point_at(f, target ? target : "flows.json");
	g_assert_true(sink_start(f->sink, NULL));
}

static void append_family(struct fixture *f, guint n, uint8_t family)
{
	struct flow_record *recs = g_new0(struct flow_record, n);

	for (guint i = 0; i < n; i++) {
		struct flow_record *r = &recs[i];
		guint64 pos = f->appended + i;
		r->flow_id = pos + 1;
		r->family = family;
		r->proto = 17;
		r->orig.src[0] = 198, r->orig.src[1] = 18, r->orig.src[3] = 2;
		r->orig.dst[0] = 198, r->orig.dst[1] = 19, r->orig.dst[3] = 2;
		r->orig.sport = (uint16_t)(1024 + pos % 50000);
		r->orig.dport = 20000;
		r->reply = r->orig;
		r->packets = 2;
		r->bytes = 156 + pos;
		r->flags = FLOW_HAS_COUNTERS;
	}
	spool_append(f->spool, recs, n);
	f->appended += n;
	g_free(recs);
}

static void append(struct fixture *f, guint n)
{
	append_family(f, n, AF_INET);
}

/* flow_ids in a JSON export file, in file order; adds each to @seen */
static guint count_lines(const char *path, GHashTable *seen, guint *twice)
{
	g_autofree char *text = NULL;
	guint n = 0;

	if (!g_file_get_contents(path, &text, NULL, NULL))
		return 0;
	for (char *line = text; *line;) {
		char *end = strchr(line, '\n');
		g_assert_nonnull(end);   /* a file export never holds half a line */
		guint64 id;
		g_assert_cmpint(sscanf(line, "{\"flow_id\":%" SCNu64 ",", &id), ==, 1);
		g_assert_cmpuint(id, >=, 1);
		if (seen) {
			if (g_hash_table_contains(seen, GSIZE_TO_POINTER(id)))
				(*twice)++;
			g_hash_table_add(seen, GSIZE_TO_POINTER(id));
		}
		n++;
		line = end + 1;
	}
	return n;
}

static guint file_lines(struct fixture *f, const char *name)
{
	g_autofree char *path = path_of(f, name);

	return count_lines(path, NULL, NULL);
}

/* Waits until the sink's confirmed position reaches @pos (the sink is the
 * spool's only reader, index 0). */
static gboolean wait_confirmed(struct fixture *f, guint64 pos)
{
	gint64 until = g_get_monotonic_time() + WAIT_US;

	while (spool_confirmed(f->spool, 0) < pos) {
		if (g_get_monotonic_time() > until)
			return FALSE;
		g_usleep(2000);
	}
	return TRUE;
}

static struct sink_stats stats(struct fixture *f)
{
	struct sink_stats st;

	sink_get_stats(f->sink, &st);
	return st;
}

/* Waits until the counter at @offset in struct sink_stats reaches @n. */
static void wait_stat(struct fixture *f, glong offset, guint64 n)
{
	gint64 until = g_get_monotonic_time() + WAIT_US;
	struct sink_stats st = stats(f);

	while (G_STRUCT_MEMBER(guint64, &st, offset) < n && g_get_monotonic_time() < until) {
		g_usleep(2000);
		st = stats(f);
	}
	g_assert_cmpuint(G_STRUCT_MEMBER(guint64, &st, offset), >=, n);
}

/* Every record appended is in the files named, exactly once. */
static void assert_each_once(struct fixture *f, const char *const *names)
{
	g_autoptr(GHashTable) seen = g_hash_table_new(NULL, NULL);
	guint twice = 0, total = 0;

	for (guint i = 0; names[i]; i++) {
		g_autofree char *path = path_of(f, names[i]);
		total += count_lines(path, seen, &twice);
	}
	g_assert_cmpuint(twice, ==, 0);
	g_assert_cmpuint(total, ==, f->appended);
	for (guint64 id = 1; id <= f->appended; id++)
		g_assert_true(g_hash_table_contains(seen, GSIZE_TO_POINTER(id)));
}

static void fixture_tear_down(struct fixture *f)
{
	spool_close(f->spool);
	sink_stop(f->sink, 2000);
	sink_free(f->sink);
	spool_free(f->spool);
	remove_tree(f->dir);
	g_free(f->dir);
	g_free(f->link);
}

/*
 * Small messages (mtu 512: a few records each) and a long flush interval:
 * full messages go out, the last partial one waits.  At every quiet point
 * the confirmed position is exactly the records in the file.
 */
static void test_confirms_what_is_written(void)
{
	struct fixture f = {0};

	fixture_start(&f, "written", 3600 * 1000, 512, "a.json");

	append(&f, 1000);
	/* the full messages are written; the partial one stays in the encoder */
	g_assert_true(wait_confirmed(&f, 990));
	g_usleep(200 * 1000);
	guint64 confirmed = spool_confirmed(f.spool, 0);
	g_assert_cmpuint(confirmed, <, 1000);
	g_assert_cmpuint(confirmed, ==, file_lines(&f, "a.json"));
	g_assert_cmpuint(stats(&f).records, ==, confirmed);

	/* the stop sends the rest, and only then is it confirmed */
	spool_close(f.spool);
	sink_stop(f.sink, 2000);
	g_assert_cmpuint(spool_confirmed(f.spool, 0), ==, 1000);
	g_assert_cmpuint(file_lines(&f, "a.json"), ==, 1000);
	assert_each_once(&f, (const char *const[]){ "a.json", NULL });
	fixture_tear_down(&f);
}

/* The nice value of this process's thread named @comm; -100 when none is. */
static int thread_nice(const char *comm)
{
	g_autoptr(GDir) dir = g_dir_open("/proc/self/task", 0, NULL);
	const char *tid;

	while (dir && (tid = g_dir_read_name(dir))) {
		g_autofree char *comm_path = g_strdup_printf("/proc/self/task/%s/comm", tid);
		g_autofree char *stat_path = g_strdup_printf("/proc/self/task/%s/stat", tid);
		g_autofree char *name = NULL, *stat = NULL;
		if (!g_file_get_contents(comm_path, &name, NULL, NULL) ||
		    !g_str_equal(g_strchomp(name), comm) ||
		    !g_file_get_contents(stat_path, &stat, NULL, NULL))
			continue;
		/* after "PID (COMM) ": state, then fields 4 to 19, the nice */
		g_auto(GStrv) f = g_strsplit(strrchr(stat, ')') + 2, " ", -1);
		g_assert_cmpuint(g_strv_length(f), >, 16);
		return atoi(f[16]);
	}
	return -100;
}

/* The export thread runs below the rest of the process, so that the
 * DESTROY reader wins a CPU both want. */
static void test_export_thread_yields(void)
{
	struct fixture f = {0};
	int own = getpriority(PRIO_PROCESS, 0);

	fixture_start(&f, "nice", 3600 * 1000, 512, "a.json");
	append(&f, 10);
	g_assert_true(wait_confirmed(&f, 1));
	g_assert_cmpint(thread_nice("export-nice"), ==, MIN(own + 5, 19));
	g_assert_cmpint(getpriority(PRIO_PROCESS, 0), ==, own);
	spool_close(f.spool);
	sink_stop(f.sink, 2000);
	g_assert_cmpuint(spool_confirmed(f.spool, 0), ==, 10);
	fixture_tear_down(&f);
}

/*
 * A destination that refuses every write: nothing is confirmed, however
 * long it lasts.  Once it takes writes again, everything comes from the
 * confirmed position, once.
 */
static void test_nothing_confirmed_while_failing(void)
{
	struct fixture f = {0};

	fixture_start(&f, "failing", 20, 0, "/dev/full");

	append(&f, 500);
	wait_stat(&f, G_STRUCT_OFFSET(struct sink_stats, send_errors), 3);
	g_assert_cmpuint(spool_confirmed(f.spool, 0), ==, 0);
	g_assert_cmpuint(stats(&f).records, ==, 0);

	point_at(&f, "b.json");
	append(&f, 300);
	g_assert_true(wait_confirmed(&f, 800));
	g_assert_cmpuint(stats(&f).records, ==, 800);
	g_assert_cmpuint(stats(&f).resent, >=, 500);
	assert_each_once(&f, (const char *const[]){ "b.json", NULL });
	fixture_tear_down(&f);
}

/*
 * Delivered to one file, then the destination fails after a reopen, then
 * comes back as another file: the first file keeps what was confirmed
 * there, the second gets the rest from the confirmed position, and no
 * record is in both or in neither.
 */
static void test_rewinds_to_confirmed_position(void)
{
	struct fixture f = {0};

	fixture_start(&f, "rewind", 20, 0, "c1.json");

	append(&f, 700);
	g_assert_true(wait_confirmed(&f, 700));
	g_assert_cmpuint(file_lines(&f, "c1.json"), ==, 700);

	point_at(&f, "/dev/full");
	sink_reopen(f.sink);
	/* the reopen happens between two reads, within a second when idle */
	wait_stat(&f, G_STRUCT_OFFSET(struct sink_stats, reconnects), 1);
	append(&f, 600);
	wait_stat(&f, G_STRUCT_OFFSET(struct sink_stats, send_errors), 2);
	g_assert_cmpuint(spool_confirmed(f.spool, 0), ==, 700);

	point_at(&f, "c2.json");
	append(&f, 200);
	g_assert_true(wait_confirmed(&f, 1500));
	g_assert_cmpuint(file_lines(&f, "c1.json"), ==, 700);
	g_assert_cmpuint(file_lines(&f, "c2.json"), ==, 800);
	assert_each_once(&f, (const char *const[]){ "c1.json", "c2.json", NULL });
	fixture_tear_down(&f);
}

/*
 * sink_reopen() while records keep coming: what was written before the
 * reopen stays in the renamed file, the rest goes to the new one, each
 * record in exactly one of them.
 */
static void test_reopen_splits_without_loss(void)
{
	struct fixture f = {0};
	g_autofree char *renamed = NULL;

	fixture_start(&f, "reopen", 10, 0, NULL);
	for (guint round = 0; round < 20; round++) {
		append(&f, 97);
		if (round == 10) {
			g_autofree char *old = path_of(&f, "flows.json.1");
			g_assert_cmpint(g_rename(f.link, old), ==, 0);
			sink_reopen(f.sink);
		}
		g_usleep(3000);
	}
	g_assert_true(wait_confirmed(&f, f.appended));
	g_assert_cmpuint(file_lines(&f, "flows.json.1"), >, 0);
	g_assert_cmpuint(file_lines(&f, "flows.json"), >, 0);
	g_assert_cmpuint(stats(&f).resent, ==, 0);
	assert_each_once(&f, (const char *const[]){ "flows.json.1", "flows.json", NULL });
	fixture_tear_down(&f);
}

/* A socket on 127.0.0.1 that takes the export's datagrams; its port in @port. */
static int collector_socket(char **port)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);

	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
	g_assert_cmpint(getsockname(fd, (struct sockaddr *)&sa, &sl), ==, 0);
	*port = g_strdup_printf("%u", ntohs(sa.sin_port));
	return fd;
}

/* Reads datagrams for up to @wait_us until @want flow records came (each a
 * JSON line, the flow_id its position plus one), checking that they come
 * in order, each once, after the @got already read.  Returns the number of
 * datagrams read. */
static guint receive_records(int fd, guint64 *got, guint64 want, gint64 wait_us)
{
	static char buf[65536];
	gint64 until = g_get_monotonic_time() + wait_us;
	guint datagrams = 0;

	while (*got < want) {
		gint64 left = until - g_get_monotonic_time();
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (left <= 0 || poll(&p, 1, (int)(left / 1000) + 1) <= 0)
			break;
		ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
		g_assert_cmpint(n, >, 0);
		g_assert_cmpint(n, <=, 1472);   /* mtu = auto on loopback */
		buf[n] = '\0';
		g_assert_cmpint(buf[n - 1], ==, '\n');   /* whole lines only */
		datagrams++;
		for (char *line = buf; *line; line = strchr(line, '\n') + 1) {
			guint64 id;
			g_assert_cmpint(sscanf(line, "{\"flow_id\":%" SCNu64 ",", &id), ==, 1);
			g_assert_cmpuint(id, ==, *got + 1);
			(*got)++;
		}
	}
	return datagrams;
}

/*
 * UDP, where the messages of a wake-up go out together: every record
 * reaches the collector once and in order, in datagrams of at most the
 * path's size, and the position follows what was sent.  Records in a
 * message not yet sent (the partial one, with a long flush interval) are
 * not confirmed; the stop sends it, and only then are they.
 */
static void test_udp_confirms_what_was_sent(void)
{
	struct fixture f = {0};
	g_autofree char *port = NULL;
	int rx = collector_socket(&port);
	guint64 got = 0;
	guint datagrams = 0;

	fixture_configure(&f, "udp", 3600 * 1000, 0);
	f.cfg.transport = EXPORT_TRANSPORT_UDP;
	f.cfg.host = (char *)"127.0.0.1";
	f.cfg.port = port;
	fixture_create(&f);
	g_assert_true(sink_start(f.sink, NULL));

	/* 100 records at a time, each read before the next: the socket's
	 * buffer never has to hold more than that */
	for (guint round = 0; round < 30; round++) {
		append(&f, 100);
		datagrams += receive_records(rx, &got, f.appended - 10, WAIT_US);
		g_assert_cmpuint(got, >=, f.appended - 10);
	}
	g_assert_true(wait_confirmed(&f, f.appended - 10));
	/* what is confirmed was sent: it all arrives */
	guint64 confirmed = spool_confirmed(f.spool, 0);
	datagrams += receive_records(rx, &got, confirmed, WAIT_US);
	g_assert_cmpuint(got, >=, confirmed);
	/* the last record waits in the unfinished message: neither sent nor
	 * confirmed */
	datagrams += receive_records(rx, &got, f.appended, 200 * 1000);
	g_assert_cmpuint(got, <, f.appended);
	g_assert_cmpuint(spool_confirmed(f.spool, 0), <, f.appended);

	spool_close(f.spool);
	sink_stop(f.sink, 2000);
	datagrams += receive_records(rx, &got, f.appended, WAIT_US);
	g_assert_cmpuint(got, ==, f.appended);
	g_assert_cmpuint(spool_confirmed(f.spool, 0), ==, f.appended);
	struct sink_stats st = stats(&f);
	g_assert_cmpuint(st.records, ==, f.appended);
	g_assert_cmpuint(st.sent, ==, f.appended);
	g_assert_cmpuint(st.messages, ==, datagrams);
	g_assert_cmpuint(st.send_errors, ==, 0);
	close(rx);
	fixture_tear_down(&f);
}

/* what the daemon's counters say in test_statistics() */
static void fake_counters(struct export_statistics *out, void *user)
{
	guint *calls = user;

	__atomic_add_fetch(calls, 1, __ATOMIC_SEQ_CST);
	out->destroy_events = 777;
	out->duplicates = 7;
	out->overruns = 3;
	out->malformed = 2;
	out->spool_dropped = 1;
}

/* the number after "KEY": in @line, or -1 */
static gint64 json_number(const char *line, const char *key)
{
	g_autofree char *k = g_strdup_printf("\"%s\":", key);
	const char *p = strstr(line, k);

	return p ? g_ascii_strtoll(p + strlen(k), NULL, 10) : -1;
}

/*
 * With `statistics`, the export thread reports every interval and at stop,
 * after its last records: the counts are its own (records sent, messages,
 * the bytes before the report), the daemon's come from the callback, and
 * the exporting process id is the one it was given.
 */
static void test_statistics(void)
{
	struct fixture f = {0};
	guint calls = 0;

	fixture_configure(&f, "stats", 50, 512);
	f.cfg.statistics_ms = 1000;
	fixture_create(&f);
	sink_set_statistics(f.sink, 4, fake_counters, &calls);
	point_at(&f, "flows.json");
	g_assert_true(sink_start(f.sink, NULL));

	append(&f, 300);
	g_assert_true(wait_confirmed(&f, 300));
	/* a periodic report comes within the interval (and some slack) */
	gint64 until = g_get_monotonic_time() + WAIT_US;
	while (!__atomic_load_n(&calls, __ATOMIC_SEQ_CST) && g_get_monotonic_time() < until)
		g_usleep(10 * 1000);
	g_assert_cmpuint(__atomic_load_n(&calls, __ATOMIC_SEQ_CST), >=, 1);
	append(&f, 200);
	spool_close(f.spool);
	sink_stop(f.sink, 2000);

	g_autofree char *path = path_of(&f, "flows.json");
	g_autofree char *text = NULL;
	gsize len = 0;
	g_assert_true(g_file_get_contents(path, &text, &len, NULL));
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
	guint flows = 0, reports = 0;
	gsize offset = 0;
	gint64 last_records = -1, last_octets = -1;
	gsize last_at = 0;
	for (char **l = lines; *l && **l; l++) {
		if (strstr(*l, "\"flow_id\":")) {
			flows++;
		} else {
			g_assert_true(g_str_has_prefix(*l, "{\"exporter_stats\":"));
			g_assert_cmpint(json_number(*l, "exporting_process_id"), ==, 4);
			g_assert_cmpint(json_number(*l, "destroy_events"), ==, 777);
			g_assert_cmpint(json_number(*l, "duplicates"), ==, 7);
			g_assert_cmpint(json_number(*l, "overruns"), ==, 3);
			g_assert_cmpint(json_number(*l, "malformed"), ==, 2);
			g_assert_cmpint(json_number(*l, "spool_dropped"), ==, 1);
			g_assert_cmpint(json_number(*l, "not_sent_flow_total_count"), ==, 0);
			/* every flow line before it is counted */
			g_assert_cmpint(json_number(*l, "records"), ==, flows);
			last_records = json_number(*l, "records");
			last_octets = json_number(*l, "octets");
			last_at = offset;
			reports++;
		}
		offset += strlen(*l) + 1;
	}
	g_assert_cmpuint(flows, ==, 500);
	g_assert_cmpuint(reports, >=, 2);
	/* the last line is the report at stop, counting everything before it */
	g_assert_cmpint(last_records, ==, 500);
	g_assert_cmpint(last_octets, ==, (gint64)last_at);
	g_assert_cmpuint(offset, ==, len);
	g_assert_cmpuint(last_at + strlen(lines[g_strv_length(lines) - 2]) + 1, ==, len);
	fixture_tear_down(&f);
}

/*
 * A format that leaves records out (netflow5: IPv6) hands them over as
 * done, with the packet they would have been in or on their own: they are
 * confirmed like the others and counted as skipped, and the file holds
 * only the records of the rest.
 */
static void test_skipped_records_confirmed(void)
{
	struct fixture f = {0};
	g_autofree char *path = NULL;
	gsize len = 0;
	g_autofree char *data = NULL;

	fixture_configure(&f, "skipping", 20, 0);
	f.cfg.format = EXPORT_FORMAT_NETFLOW5;
	fixture_create(&f);
	point_at(&f, "c.nf5");
	g_assert_true(sink_start(f.sink, NULL));

	append_family(&f, 100, AF_INET6);
	g_assert_true(wait_confirmed(&f, 100));
	append(&f, 50);
	append_family(&f, 50, AF_INET6);
	g_assert_true(wait_confirmed(&f, 200));
	spool_close(f.spool);
	sink_stop(f.sink, 2000);
	g_assert_cmpuint(stats(&f).records, ==, 200);
	g_assert_cmpuint(stats(&f).skipped, ==, 150);
	path = path_of(&f, "c.nf5");
	g_assert_true(g_file_get_contents(path, &data, &len, NULL));
	/* 50 records of 48 bytes in packets of a 24-byte header */
	g_assert_cmpuint(len, >, 50 * 48);
	g_assert_cmpuint((len - 50 * 48) % 24, ==, 0);
	g_assert_cmpuint(stats(&f).messages, ==, (len - 50 * 48) / 24);
	fixture_tear_down(&f);
}

/* A listening TCP socket on 127.0.0.1 with a receive buffer of @rcvbuf
 * bytes for what it accepts; its port in @port. */
static int listen_loopback(int rcvbuf, char **port)
{
	int lst = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);

	g_assert_cmpint(lst, >=, 0);
	g_assert_cmpint(setsockopt(lst, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), ==, 0);
	g_assert_cmpint(bind(lst, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
	g_assert_cmpint(listen(lst, 4), ==, 0);
	g_assert_cmpint(getsockname(lst, (struct sockaddr *)&sa, &sl), ==, 0);
	*port = g_strdup_printf("%u", ntohs(sa.sin_port));
	return lst;
}

/* The export goes to a TCP collector on 127.0.0.1:@tcp_port or, when that
 * is NULL, to a file that cannot be opened (a dangling link); its backup, a
 * standby writing the file @spare, is linked and both threads run. */
static sink *start_with_backup(struct fixture *f, struct export_config *backup_cfg, char **spare,
			       const char *tcp_port)
{
	GError *error = NULL;

	fixture_configure(f, "main", 20, 512);
	if (tcp_port) {
		f->cfg.transport = EXPORT_TRANSPORT_TCP;
		f->cfg.host = (char *)"127.0.0.1";
		f->cfg.port = (char *)tcp_port;
	}
	fixture_create(f);
	g_autofree char *missing = g_build_filename(f->dir, "missing", NULL);
	g_autofree char *cur = g_build_filename(f->dir, "cur", NULL);
	g_assert_cmpint(symlink(missing, cur), ==, 0);

	*backup_cfg = f->cfg;
	backup_cfg->transport = EXPORT_TRANSPORT_FILE;
	*spare = path_of(f, "spare");
	g_autofree char *spare_dir = g_path_get_dirname(*spare);
	g_assert_cmpint(g_mkdir_with_parents(spare_dir, 0700), ==, 0);
	backup_cfg->name = (char *)"spare";
	backup_cfg->path = *spare;
	backup_cfg->standby = TRUE;
	sink *backup = sink_new(backup_cfg, f->spool, &error);
	g_assert_no_error(error);
	sink_set_failover(f->sink, backup);
	g_assert_true(sink_start(f->sink, NULL));
	g_assert_true(sink_start(backup, NULL));
	return backup;
}

static void stop_with_backup(struct fixture *f, sink *backup)
{
	spool_close(f->spool);
	sink_stop(backup, 2000);
	sink_free(backup);
	fixture_tear_down(f);
}

/*
 * failover: the export's file cannot be opened at first (its directory is
 * missing), so its backup, a standby writing a file of its own, takes its
 * records; once the directory is there the export takes them back.  Each
 * record is in exactly one of the two files, the export's confirmed
 * position covers both, and the backup sent nothing before the takeover
 * nor after the giveback.
 */
static void test_failover_hands_over_and_back(void)
{
	struct fixture f = {0};
	struct export_config backup_cfg;
	g_autofree char *spare = NULL;
	sink *backup = start_with_backup(&f, &backup_cfg, &spare, NULL);

	append(&f, 500);
	g_assert_true(wait_confirmed(&f, 500));
	struct sink_stats st;
	sink_get_stats(backup, &st);
	g_assert_cmpuint(st.takeovers, ==, 1);
	g_assert_cmpuint(st.givebacks, ==, 0);
	g_assert_cmpuint(st.records, ==, 500);
	g_assert_cmpuint(file_lines(&f, "spare"), ==, 500);
	g_assert_cmpuint(file_lines(&f, "flows.json"), ==, 0);

	point_at(&f, "flows.json");
	wait_stat(&f, G_STRUCT_OFFSET(struct sink_stats, givebacks), 1);
	append(&f, 700);
	g_assert_true(wait_confirmed(&f, 1200));
	g_assert_cmpuint(file_lines(&f, "flows.json"), ==, 700);
	g_assert_cmpuint(file_lines(&f, "spare"), ==, 500);
	assert_each_once(&f, (const char *const[]){ "flows.json", "spare", NULL });

	st = stats(&f);
	g_assert_cmpuint(st.takeovers, ==, 1);
	g_assert_cmpuint(st.givebacks, ==, 1);
	g_assert_cmpuint(st.doubtful, ==, 0);
	g_assert_cmpuint(st.records, ==, 700);
	stop_with_backup(&f, backup);
}

/*
 * The hand-back while records keep coming: the export reconnects while its
 * backup is still sending, and must start from what the backup confirmed
 * when it let go, not from where things stood at its reconnect.
 */
static void test_failover_back_while_sending(void)
{
	struct fixture f = {0};
	struct export_config backup_cfg;
	g_autofree char *spare = NULL;
	sink *backup = start_with_backup(&f, &backup_cfg, &spare, NULL);

	for (guint i = 0; i < 300; i++) {
		append(&f, 10);
		if (i == 100)
			point_at(&f, "flows.json");
		g_usleep(1000);
	}
	g_assert_true(wait_confirmed(&f, 3000));
	struct sink_stats st = stats(&f);
	g_assert_cmpuint(st.takeovers, ==, 1);
	g_assert_cmpuint(st.givebacks, ==, 1);
	g_assert_cmpuint(st.doubtful, ==, 0);
	g_assert_cmpuint(file_lines(&f, "spare"), >, 0);
	g_assert_cmpuint(file_lines(&f, "flows.json"), >, 0);
	assert_each_once(&f, (const char *const[]){ "flows.json", "spare", NULL });
	stop_with_backup(&f, backup);
}

/*
 * What the export sent without a confirmation when it went down is counted
 * as doubtful, and it is exactly what the backup sends again: a collector
 * that takes a connection, reads nothing (a tiny receive window, so most
 * of what is written stays unacknowledged), then resets it and is gone.
 */
static void test_failover_counts_doubtful(void)
{
	struct fixture f = {0};
	struct export_config backup_cfg;
	g_autofree char *spare = NULL;
	g_autofree char *port = NULL;
	int lst = listen_loopback(4096, &port);
	sink *backup = start_with_backup(&f, &backup_cfg, &spare, port);
	int conn = accept(lst, NULL, NULL);
	g_assert_cmpint(conn, >=, 0);

	append(&f, 2000);
	wait_stat(&f, G_STRUCT_OFFSET(struct sink_stats, sent), 100);
	g_usleep(200 * 1000);
	struct linger reset = { .l_onoff = 1, .l_linger = 0 };
	g_assert_cmpint(setsockopt(conn, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset)), ==, 0);
	close(conn);
	close(lst);

	g_assert_true(wait_confirmed(&f, 2000));
	struct sink_stats st = stats(&f);
	g_assert_cmpuint(st.takeovers, ==, 1);
	g_assert_cmpuint(st.records, <, st.sent);
	g_assert_cmpuint(st.doubtful, ==, st.sent - st.records);
	/* the backup starts at the export's confirmed position, no later */
	g_autoptr(GHashTable) seen = g_hash_table_new(NULL, NULL);
	guint twice = 0;
	g_assert_cmpuint(count_lines(spare, seen, &twice), ==, 2000 - st.records);
	g_assert_cmpuint(twice, ==, 0);
	for (guint64 id = st.records + 1; id <= 2000; id++)
		g_assert_true(g_hash_table_contains(seen, GSIZE_TO_POINTER(id)));
	stop_with_backup(&f, backup);
}

/* A collector on 127.0.0.1 for a JSON export over TCP: its listening
 * socket, port in @port; the export is set up (not started) in @f with
 * @settle_ms. */
static int tcp_collector_listen(struct fixture *f, char **port, guint settle_ms)
{
	/* roomy: everything sent fits, acknowledged and never read */
	int lst = listen_loopback(1 << 20, port);

	fixture_configure(f, "tcp", 20, 512);
	f->cfg.transport = EXPORT_TRANSPORT_TCP;
	f->cfg.host = (char *)"127.0.0.1";
	f->cfg.port = *port;
	f->cfg.ack_settle_ms = settle_ms;
	fixture_create(f);
	return lst;
}

/* Bytes waiting unread in @fd once @want of them are there (or 20 s). */
static int wait_unread(int fd, int want)
{
	gint64 until = g_get_monotonic_time() + WAIT_US;
	int n = 0;

	while (ioctl(fd, FIONREAD, &n) == 0 && n < want && g_get_monotonic_time() < until)
		g_usleep(2000);
	return n;
}

/* Reads @fd to its end; the flow_ids of its lines go into @seen. */
static guint read_to_end(int fd, GHashTable *seen, guint *twice)
{
	GString *all = g_string_new(NULL);
	char buf[65536];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
		g_string_append_len(all, buf, n);
	g_assert_cmpint(n, ==, 0);
	g_autofree char *dir = g_dir_make_tmp("test_sink-read-XXXXXX", NULL);
	g_autofree char *path = g_build_filename(dir, "got", NULL);
	g_assert_true(g_file_set_contents(path, all->str, (gssize)all->len, NULL));
	guint lines = count_lines(path, seen, twice);
	remove_tree(dir);
	g_string_free(all, TRUE);
	return lines;
}

/*
 * TCP: an acknowledgement comes from the collector's host, not from the
 * collector.  A collector whose host took every message but that read
 * none, then reset the connection (as a collector stopped or killed with
 * its socket full does), must get every record again on the next
 * connection: nothing was confirmed while the acknowledgements were younger
 * than ack_settle.  The second connection is read to the end and closed
 * cleanly after ctflowd's FIN at the stop; that confirms everything at
 * once, ack_settle (a minute) notwithstanding.
 */
static void test_tcp_unread_sent_again(void)
{
	struct fixture f = {0};
	g_autofree char *port = NULL;
	int lst = tcp_collector_listen(&f, &port, 60 * 1000);

	g_assert_true(sink_start(f.sink, NULL));
	int first = accept4(lst, NULL, NULL, SOCK_CLOEXEC);
	g_assert_cmpint(first, >=, 0);
	append(&f, 200);
	wait_stat(&f, G_STRUCT_OFFSET(struct sink_stats, sent), 200);
	int unread = wait_unread(first, (int)stats(&f).bytes);
	g_assert_cmpint(unread, ==, (int)stats(&f).bytes);
	g_usleep(100 * 1000);   /* many acknowledgement polls */
	g_assert_cmpuint(spool_confirmed(f.spool, 0), ==, 0);
	g_assert_cmpuint(stats(&f).records, ==, 0);

	struct linger reset = { .l_onoff = 1, .l_linger = 0 };
	g_assert_cmpint(setsockopt(first, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset)), ==, 0);
	close(first);
	int second = accept4(lst, NULL, NULL, SOCK_CLOEXEC);
	g_assert_cmpint(second, >=, 0);
	wait_stat(&f, G_STRUCT_OFFSET(struct sink_stats, resent), 200);

	/* the stop: ctflowd's FIN once all is acknowledged, then ours */
	spool_close(f.spool);
	g_autoptr(GHashTable) seen = g_hash_table_new(NULL, NULL);
	guint twice = 0;
	g_assert_cmpuint(read_to_end(second, seen, &twice), ==, 200);
	g_assert_cmpuint(twice, ==, 0);
	for (guint64 id = 1; id <= 200; id++)
		g_assert_true(g_hash_table_contains(seen, GSIZE_TO_POINTER(id)));
	close(second);
	g_assert_true(wait_confirmed(&f, 200));
	g_assert_cmpuint(stats(&f).records, ==, 200);
	close(lst);
	fixture_tear_down(&f);
}

/*
 * TCP, a collector that reads everything and keeps the connection: each
 * message is confirmed once its acknowledgement stood for ack_settle, not
 * before.
 */
static void test_tcp_confirms_after_settling(void)
{
	struct fixture f = {0};
	g_autofree char *port = NULL;
	int lst = tcp_collector_listen(&f, &port, 400);

	g_assert_true(sink_start(f.sink, NULL));
	int conn = accept4(lst, NULL, NULL, SOCK_CLOEXEC);
	g_assert_cmpint(conn, >=, 0);
	gint64 t0 = g_get_monotonic_time();
	append(&f, 100);
	g_assert_true(wait_confirmed(&f, 100));
	g_assert_cmpint(g_get_monotonic_time() - t0, >=, 400 * 1000);
	g_assert_cmpint(wait_unread(conn, (int)stats(&f).bytes), ==, (int)stats(&f).bytes);
	close(conn);
	close(lst);
	fixture_tear_down(&f);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	/* the failures these tests cause are logged as warnings, by design */
	g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
	g_test_add_func("/sink/confirms-what-is-written", test_confirms_what_is_written);
	g_test_add_func("/sink/export-thread-yields", test_export_thread_yields);
	g_test_add_func("/sink/nothing-confirmed-while-failing", test_nothing_confirmed_while_failing);
	g_test_add_func("/sink/rewinds-to-confirmed-position", test_rewinds_to_confirmed_position);
	g_test_add_func("/sink/reopen-splits-without-loss", test_reopen_splits_without_loss);
	g_test_add_func("/sink/udp-confirms-what-was-sent", test_udp_confirms_what_was_sent);
	g_test_add_func("/sink/statistics", test_statistics);
	g_test_add_func("/sink/skipped-records-confirmed", test_skipped_records_confirmed);
	g_test_add_func("/sink/failover-hands-over-and-back", test_failover_hands_over_and_back);
	g_test_add_func("/sink/failover-back-while-sending", test_failover_back_while_sending);
	g_test_add_func("/sink/failover-counts-doubtful", test_failover_counts_doubtful);
	g_test_add_func("/sink/tcp-unread-sent-again", test_tcp_unread_sent_again);
	g_test_add_func("/sink/tcp-confirms-after-settling", test_tcp_confirms_after_settling);
	return g_test_run();
}
