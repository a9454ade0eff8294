/*
 * ct_labels.h - the conntrack labels of connections, kept from the events
 * that carry them until the connection's DESTROY, which does not.
 *
 * The kernel sends a connection's labels with NEW and UPDATE events and in
 * table dumps, never with DESTROY events, and a flow record is made from
 * the DESTROY.  With NEW events subscribed (events = destroy,new), the
 * labels a NEW carries (those set before the connection was confirmed,
 * such as nft's `ct label set` on its first packet) are remembered here,
 * and the DESTROY of the same connection gets them.  Only connections with
 * a label set take room, in bounded memory; a NEW the kernel could not
 * deliver (NEW events are not resent) leaves its connection's labels
 * unknown, as does a worker restart between NEW and DESTROY.
 */
#pragma once

#include <glib.h>
#include "ctflowd/flow.h"

typedef struct ct_labels ct_labels;

/** ct_labels_new: remembers the labels of at most @max connections. */
ct_labels *ct_labels_new(guint max);

/**
 * ct_labels_track:
 * Takes the labels of a NEW, UPDATE or dump record @r that has them
 * (FLOW_HAS_LABELS): remembered when any is set, forgotten when none is.
 * Gives a DESTROY record without labels those remembered for its
 * connection (same conntrack id, original tuple, zone), and forgets them.
 * Returns TRUE when it filled in @r's labels.
 */
gboolean ct_labels_track(ct_labels *labels, struct flow_record *r);

/** ct_labels_size: connections whose labels are remembered now. */
guint ct_labels_size(const ct_labels *labels);

/** ct_labels_refused: labels not remembered because @max were held. */
guint64 ct_labels_refused(const ct_labels *labels);

/** ct_labels_free: NULL is fine. */
void ct_labels_free(ct_labels *labels);
