/*
 * ct_walk.c - the walker thread: dumps the conntrack table now and then,
 * hands the entries old enough for an interim record to the reader, and
 * persists the snapshots the reader hands back.
 *
 * Batches go to the reader through a short queue: the walker waits when it
 * is full, so a walk of millions of entries holds a bounded amount of
 * memory and the kernel's dump simply waits on the socket meanwhile.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ctflowd/ct_parse.h"
#include "ctflowd/ct_request.h"
#include "ctflowd/ct_walk.h"
#include "ctflowd/error.h"

#define WALK_BATCH 1024
#define WALK_QUEUE_MAX 4
/* a walk of a table of millions takes seconds (minutes while it yields to
 * the reader); past this it is cut short and the next one starts over */
#define WALK_DEADLINE_MS 300000

/*
 * Yielding to the reader.  The kernel builds the dump in the walker's
 * recvmsg(): about 2 us of CPU an entry, on a CPU the reader may need.
 * While the reader is behind (it found a burst in the last YIELD_RECENT_US),
 * the walker sleeps YIELD_SLEEP_US after every YIELD_EVERY entries.  It
 * never stops: at that pace a walk still reads about 25,000 entries a
 * second, some 6% of a CPU, so a host that is never quiet still gets its
 * interim records, only later.
 */
#define YIELD_EVERY 256
#define YIELD_SLEEP_US 10000
#define YIELD_RECENT_US 100000

struct walk_batch {
	size_t n;
	gboolean end;              /* the last batch of a walk (or of an interval) */
	struct flow_record records[WALK_BATCH];
};

struct ct_walk {
	ct_request *requests;
	guint interval_ms;
	guint64 min_age_ns;
	guint64 nat_min_age_ns;    /* translated entries (NAT refresh) */
	gboolean walk;
	ct_walk_persist_fn persist;
	void *user;
	ct_walk_burst_fn burst_seen;   /* NULL: never yields */
	const void *burst_user;
	GThread *thread;
	int efd;

	GMutex lock;               /* guards what follows */
	GCond cond;
	GQueue waiting;            /* batches for the reader, oldest first */
	GQueue spare;
	gboolean stopping;
	gboolean handed;           /* a snapshot (or NULL: no change) waits */
	GBytes *snapshot;          /* handed over, not yet persisted */
	guint64 snapshot_position;
	struct ct_walk_stats stats;

	struct walk_batch *filling;  /* walker thread only */
	guint64 walk_entries;
	guint64 walk_handed;
	guint64 walk_yields;
};

static struct walk_batch *get_spare(ct_walk *w)
{
	struct walk_batch *b = g_queue_pop_head(&w->spare);

	if (!b)
		b = g_new(struct walk_batch, 1);
	b->n = 0;
	b->end = FALSE;
	return b;
}

/* (walker) Queues the filling batch for the reader, waiting for room.
 * FALSE when stopping. */
static gboolean pass_on(ct_walk *w, gboolean end)
{
	static const guint64 one = 1;

	g_mutex_lock(&w->lock);
	while (g_queue_get_length(&w->waiting) >= WALK_QUEUE_MAX && !w->stopping)
		g_cond_wait(&w->cond, &w->lock);
	if (w->stopping) {
		g_mutex_unlock(&w->lock);
		return FALSE;
	}
	w->filling->end = end;
	g_queue_push_tail(&w->waiting, w->filling);
	w->filling = get_spare(w);
	g_mutex_unlock(&w->lock);
	if (write(w->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		g_warning("table walk: cannot wake the reader: %s", g_strerror(errno));
	return TRUE;
}

/* (walker) Sleeps a little when the reader was behind a moment ago.  The
 * dump waits in the kernel meanwhile: nothing is read twice or missed. */
static void maybe_yield(ct_walk *w)
{
	if (!w->burst_seen)
		return;
	gint64 seen = w->burst_seen(w->burst_user);
	if (!seen || g_get_monotonic_time() - seen > YIELD_RECENT_US)
		return;
	w->walk_yields++;
	g_mutex_lock(&w->lock);
	gint64 until = g_get_monotonic_time() + YIELD_SLEEP_US;
	while (!w->stopping && g_get_monotonic_time() < until)
		g_cond_wait_until(&w->cond, &w->lock, until);
	g_mutex_unlock(&w->lock);
}

static gboolean take_entry(const struct nlmsghdr *nlh, void *user)
{
	ct_walk *w = user;
	struct flow_record *r = &w->filling->records[w->filling->n];
	const guint want = FLOW_HAS_COUNTERS | FLOW_HAS_TIMESTAMPS;

	if (g_atomic_int_get(&w->stopping))
		return FALSE;
	if (++w->walk_entries % YIELD_EVERY == 0)
		maybe_yield(w);
	if (ct_parse_message(nlh, r, NULL) != CT_PARSE_OK || (r->flags & want) != want)
		return TRUE;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	guint64 now = (guint64)ts.tv_sec * G_GUINT64_CONSTANT(1000000000) + (guint64)ts.tv_nsec;
	/* younger than the timeout (or the NAT refresh, for a translated
	 * one): no record of it can be due */
	guint64 min_age = w->min_age_ns;
	if (w->nat_min_age_ns < min_age && flow_is_translated(r))
		min_age = w->nat_min_age_ns;
	if (r->start_ns > now || now - r->start_ns < min_age)
		return TRUE;
	r->event = FLOW_EVENT_DUMP;
	r->end_ns = now;   /* when it was read */
	w->walk_handed++;
	if (++w->filling->n == WALK_BATCH)
		return pass_on(w, FALSE);
	return TRUE;
}

static guint64 thread_cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (guint64)ts.tv_sec * 1000000 + (guint64)ts.tv_nsec / 1000;
}

static void walk_once(ct_walk *w)
{
	g_autoptr(GError) error = NULL;
	gint64 start = g_get_monotonic_time();
	guint64 cpu = thread_cpu_us();
	gboolean interrupted = FALSE;

	w->walk_entries = w->walk_handed = w->walk_yields = 0;
	gboolean ok = ct_request_dump(w->requests, CT_REQUEST_TABLE,
				      start + (gint64)WALK_DEADLINE_MS * 1000, take_entry, w,
				      &interrupted, &error);
	g_mutex_lock(&w->lock);
	if (!ok && !w->stopping) {
		w->stats.failed++;
		g_warning("conntrack table walk cut short after %" G_GUINT64_FORMAT " entries: %s;"
			  " the next walk finds what it missed", w->walk_entries, error->message);
	}
	if (interrupted)
		w->stats.interrupted++;
	w->stats.walks++;
	w->stats.entries += w->walk_entries;
	w->stats.handed += w->walk_handed;
	w->stats.yields += w->walk_yields;
	w->stats.last_entries = w->walk_entries;
	w->stats.last_us = (guint64)(g_get_monotonic_time() - start);
	w->stats.last_cpu_us = thread_cpu_us() - cpu;
	g_mutex_unlock(&w->lock);
}

static gpointer walker_thread(gpointer data)
{
	ct_walk *w = data;
	gint64 next = g_get_monotonic_time() + (gint64)w->interval_ms * 1000;

	/* The walk is background work: on a busy CPU the DESTROY reader must
	 * win.  The kernel builds the dump in this thread's recvmsg(), so at
	 * the default priority a walk of a large table took CPU time from the
	 * reader during a flush (more events parked and resent).  Nice 19,
	 * not SCHED_IDLE: a host that is never idle still gets its walks. */
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19) < 0)
		g_info("table walk: cannot lower its priority: %s", g_strerror(errno));

	for (;;) {
		g_mutex_lock(&w->lock);
		while (!w->stopping && g_get_monotonic_time() < next)
			g_cond_wait_until(&w->cond, &w->lock, next);
		gboolean stopping = w->stopping;
		g_mutex_unlock(&w->lock);
		if (stopping)
			break;
		next = g_get_monotonic_time() + (gint64)w->interval_ms * 1000;

		if (w->walk)
			walk_once(w);
		/* the end of the walk asks the reader for a snapshot */
		if (!pass_on(w, TRUE))
			break;
		g_mutex_lock(&w->lock);
		while (!w->handed && !w->stopping)
			g_cond_wait(&w->cond, &w->lock);
		gboolean handed = w->handed;
		GBytes *snap = g_steal_pointer(&w->snapshot);
		guint64 pos = w->snapshot_position;
		w->handed = FALSE;
		g_mutex_unlock(&w->lock);
		if (handed)
			w->persist(snap, pos, w->user);
		if (snap)
			g_bytes_unref(snap);
	}
	return NULL;
}

ct_walk *ct_walk_new(guint interval_ms, guint64 min_age_ns, guint64 nat_min_age_ns,
		     gboolean walk, ct_walk_persist_fn persist, void *user, GError **error)
{
	ct_request *req = ct_request_new(error);

	if (!req)
		return NULL;
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (efd < 0) {
		g_set_error(error, CTFLOWD_ERROR, errno, "table walk: eventfd: %s",
			    g_strerror(errno));
		ct_request_free(req);
		return NULL;
	}
	ct_walk *w = g_new0(ct_walk, 1);
	w->requests = req;
	w->interval_ms = MAX(interval_ms, 1);
	w->min_age_ns = min_age_ns;
	w->nat_min_age_ns = nat_min_age_ns;
	w->walk = walk;
	w->persist = persist;
	w->user = user;
	w->efd = efd;
	g_mutex_init(&w->lock);
	g_cond_init(&w->cond);
	g_queue_init(&w->waiting);
	g_queue_init(&w->spare);
	w->filling = get_spare(w);
	return w;
}

void ct_walk_yield_to(ct_walk *w, ct_walk_burst_fn burst_seen, const void *user)
{
	w->burst_seen = burst_seen;
	w->burst_user = user;
}

gboolean ct_walk_start(ct_walk *w, GError **error)
{
	w->thread = g_thread_try_new("table-walk", walker_thread, w, error);
	return w->thread != NULL;
}

int ct_walk_fd(const ct_walk *w)
{
	return w->efd;
}

gboolean ct_walk_take(ct_walk *w, ct_source_records_fn fn, void *user)
{
	guint64 count;
	gboolean ended = FALSE;

	/* cleared before the queue is looked at: a batch queued after the
	 * look wakes the reader again */
	if (read(w->efd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		g_warning("table walk: %s", g_strerror(errno));
	for (;;) {
		g_mutex_lock(&w->lock);
		struct walk_batch *b = g_queue_pop_head(&w->waiting);
		g_cond_broadcast(&w->cond);
		g_mutex_unlock(&w->lock);
		if (!b)
			break;
		if (b->n)
			fn(b->records, b->n, user);
		ended |= b->end;
		g_mutex_lock(&w->lock);
		g_queue_push_tail(&w->spare, b);
		g_mutex_unlock(&w->lock);
	}
	return ended;
}

void ct_walk_hand_snapshot(ct_walk *w, GBytes *snapshot, guint64 position)
{
	g_mutex_lock(&w->lock);
	if (w->snapshot)
		g_bytes_unref(w->snapshot);
	w->snapshot = snapshot;
	w->snapshot_position = position;
	w->handed = TRUE;
	g_cond_broadcast(&w->cond);
	g_mutex_unlock(&w->lock);
}

void ct_walk_get_stats(ct_walk *w, struct ct_walk_stats *out)
{
	g_mutex_lock(&w->lock);
	*out = w->stats;
	g_mutex_unlock(&w->lock);
}

void ct_walk_free(ct_walk *w)
{
	if (!w)
		return;
	if (w->thread) {
		g_mutex_lock(&w->lock);
		g_atomic_int_set(&w->stopping, TRUE);
		g_cond_broadcast(&w->cond);
		g_mutex_unlock(&w->lock);
		g_thread_join(w->thread);
	}
	/* a snapshot handed over as the walker stopped is still worth keeping */
	if (w->handed)
		w->persist(w->snapshot, w->snapshot_position, w->user);
	if (w->snapshot)
		g_bytes_unref(w->snapshot);
	g_queue_clear_full(&w->waiting, g_free);
	g_queue_clear_full(&w->spare, g_free);
	g_free(w->filling);
	ct_request_free(w->requests);
	close(w->efd);
	g_mutex_clear(&w->lock);
	g_cond_clear(&w->cond);
	g_free(w);
}
