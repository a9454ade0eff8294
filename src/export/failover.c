/*
 * failover.c - the hand-off of an export's journal position between the
 * export and its backup (see failover.h).
 *
 * One lock guards the phase and the counters; the notify callbacks run
 * after it is let go, so a woken thread never waits for it.
 */
#include "ctflowd/failover.h"

struct failover {
	char *primary;
	char *backup;
	failover_notify_fn notify_primary;
	void *primary_user;
	failover_notify_fn notify_backup;
	void *backup_user;

	GMutex lock;
	enum failover_phase phase;
	struct failover_stats stats;
};

failover *failover_new(const char *primary, const char *backup, failover_notify_fn notify_primary,
		       void *primary_user, failover_notify_fn notify_backup, void *backup_user)
{
	failover *fo = g_new0(failover, 1);

	fo->primary = g_strdup(primary);
	fo->backup = g_strdup(backup);
	fo->notify_primary = notify_primary;
	fo->primary_user = primary_user;
	fo->notify_backup = notify_backup;
	fo->backup_user = backup_user;
	fo->phase = FAILOVER_PRIMARY;
	g_mutex_init(&fo->lock);
	return fo;
}

enum failover_phase failover_phase_get(failover *fo)
{
	g_mutex_lock(&fo->lock);
	enum failover_phase phase = fo->phase;
	g_mutex_unlock(&fo->lock);
	return phase;
}

gboolean failover_primary_holds(failover *fo)
{
	return failover_phase_get(fo) == FAILOVER_PRIMARY;
}

static void wake(failover_notify_fn fn, void *user)
{
	if (fn)
		fn(user);
}

void failover_primary_down(failover *fo, guint64 unconfirmed)
{
	gboolean to_backup = FALSE;

	g_mutex_lock(&fo->lock);
	if (fo->phase == FAILOVER_PRIMARY) {
		fo->phase = FAILOVER_DOWN;
		fo->stats.doubtful += unconfirmed;
		to_backup = TRUE;
	} else if (fo->phase == FAILOVER_RETURNING) {
		fo->phase = FAILOVER_BACKUP;
	}
	g_mutex_unlock(&fo->lock);
	if (!to_backup)
		return;
	if (unconfirmed)
		g_warning("export %s: down; export %s takes over, and sends again %" G_GUINT64_FORMAT
			  " records this one sent without a confirmation", fo->primary, fo->backup,
			  unconfirmed);
	else
		g_warning("export %s: down; export %s takes over", fo->primary, fo->backup);
	wake(fo->notify_backup, fo->backup_user);
}

gboolean failover_primary_up(failover *fo)
{
	g_mutex_lock(&fo->lock);
	gboolean holds = fo->phase == FAILOVER_PRIMARY || fo->phase == FAILOVER_DOWN;
	gboolean ask = fo->phase == FAILOVER_BACKUP;
	if (holds)
		fo->phase = FAILOVER_PRIMARY;
	else if (ask)
		fo->phase = FAILOVER_RETURNING;
	g_mutex_unlock(&fo->lock);
	if (ask) {
		g_message("export %s: back; asking export %s to give its records back", fo->primary,
			  fo->backup);
		wake(fo->notify_backup, fo->backup_user);
	}
	return holds;
}

gboolean failover_backup_take(failover *fo)
{
	gboolean took = FALSE;

	g_mutex_lock(&fo->lock);
	if (fo->phase == FAILOVER_DOWN) {
		fo->phase = FAILOVER_BACKUP;
		fo->stats.takeovers++;
		took = TRUE;
	}
	gboolean holds = fo->phase != FAILOVER_PRIMARY;
	g_mutex_unlock(&fo->lock);
	if (took)
		g_message("export %s: taking over the records of export %s", fo->backup, fo->primary);
	return holds;
}

gboolean failover_backup_must_release(failover *fo)
{
	return failover_phase_get(fo) == FAILOVER_RETURNING;
}

void failover_backup_release(failover *fo, guint64 unconfirmed)
{
	g_mutex_lock(&fo->lock);
	gboolean released = fo->phase == FAILOVER_RETURNING;
	if (released) {
		fo->phase = FAILOVER_PRIMARY;
		fo->stats.givebacks++;
		fo->stats.doubtful += unconfirmed;
	}
	g_mutex_unlock(&fo->lock);
	if (!released)
		return;
	if (unconfirmed)
		g_warning("export %s: gives the records of export %s back; %" G_GUINT64_FORMAT
			  " it sent were not confirmed and go to export %s again", fo->backup,
			  fo->primary, unconfirmed, fo->primary);
	else
		g_message("export %s: gives the records of export %s back", fo->backup, fo->primary);
	wake(fo->notify_primary, fo->primary_user);
}

void failover_backup_finished(failover *fo)
{
	wake(fo->notify_primary, fo->primary_user);
}

void failover_get_stats(failover *fo, struct failover_stats *out)
{
	g_mutex_lock(&fo->lock);
	*out = fo->stats;
	g_mutex_unlock(&fo->lock);
}

void failover_free(failover *fo)
{
	if (!fo)
		return;
	g_mutex_clear(&fo->lock);
	g_free(fo->primary);
	g_free(fo->backup);
	g_free(fo);
}
