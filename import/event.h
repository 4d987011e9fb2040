/* event.h: behaviour events checked one at a time exactly as the importer
 * checks a line of the generic format (import/FORMATS.md), then applied in a
 * transaction the caller owns.  For writers outside import/: the spool's
 * ingest jobs, which must record "job applied" in the same transaction. */
#ifndef RECD_IMPORT_EVENT_H
#define RECD_IMPORT_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* The generic format's event columns; a field with p == NULL is absent. */
enum import_ev_field {
	IMPORT_EV_USER = 0, IMPORT_EV_ITEM, IMPORT_EV_TIME, IMPORT_EV_ACTION, IMPORT_EV_VALUE,
	IMPORT_EV_LAT, IMPORT_EV_LON, IMPORT_EV_DEVICE, IMPORT_EV_TEXT,
	IMPORT_EV_COUNT,
};
struct import_ev_text {
	const char *p;
	size_t n;
};

/* 1 when p[0..n) is well-formed UTF-8 (no overlongs, surrogates or code
 * points past U+10FFFF): the importer's test of text fields, for others
 * that accept names and text (the spool's job names). */
int  import_utf8_valid(const unsigned char *p, size_t n);

struct import_events;

int  import_events_new(struct import_events **out, struct store *st);
void import_events_free(struct import_events *b);

/* Checks one event (user, item and time required).  0: kept for apply (the
 * field texts must stay valid until then); -EINVAL: why holds the importer's
 * reason ("field 'time': ..."), nothing is kept; -ENOMEM. */
int  import_events_add(struct import_events *b, const struct import_ev_text f[IMPORT_EV_COUNT],
                       char *why, size_t whylen);
size_t import_events_count(const struct import_events *b);

/* Where import_events_apply puts the events (store.h). */
enum import_events_mode {
	IMPORT_EVENTS_ADD = 0,  /* into each user's list (store_event_add), as `recctl import` does */
	IMPORT_EVENTS_APPEND,   /* into the recent table (store_event_append): for real-time ingest,
	                         * a few pages written per thousand events of random users */
};

/* Applies every kept event inside tx, in the order added; uids[i] (NULL, or
 * room for import_events_count()) gets event i's internal user ID. */
int  import_events_apply(struct store_txn *tx, const struct import_events *b,
                         enum import_events_mode mode, uint32_t *uids);

#endif
