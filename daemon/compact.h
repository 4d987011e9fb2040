/* compact.h: recd's compaction thread.  Real-time ingest appends events to
 * the store's recent table (store_event_append); this thread moves them into
 * the users' lists (store_compact) once the table holds compact_threshold
 * events or its oldest has waited compact_max_age seconds, in transactions
 * short enough that an ingest waits at most tens of milliseconds for the
 * store's writer.  At a clean stop it moves what is left. */
#ifndef RECD_COMPACT_H
#define RECD_COMPACT_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/conf.h"

struct store;
struct compactor;

/* Starts the thread; err says why on failure. */
int  compact_start(struct compactor **out, struct store *st, const struct recd_conf *conf,
                   char *err, size_t errlen);
/* A reloaded configuration's compact_threshold and compact_max_age. */
void compact_set_conf(struct compactor *c, const struct recd_conf *conf);
/* Stops the thread, then (final) moves every recent event, logging what it
 * did; call it once nothing else writes.  Frees c.  NULL is a no-op. */
void compact_stop(struct compactor *c, int final);

#endif
