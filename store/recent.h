/* recent.h: the in-process index of the store's recent table (store.c):
 * user -> that user's recent events (arrival number and record), each list in
 * (ts, seq) order, so a reader finds one user's events without scanning the
 * table.  It is a cache that holds exactly the table's entries with arrival
 * numbers in [horizon, next): entries never change once appended, so any
 * snapshot whose table starts at or after horizon can use it.  Not
 * thread-safe by itself: store.c holds its lock around every call. */
#ifndef RECD_STORE_RECENT_H
#define RECD_STORE_RECENT_H

#include <stddef.h>
#include <stdint.h>

#include "store/store_int.h"

struct recent_ent {
	uint64_t arrival;
	uint8_t  rec[STORE_EVENT_REC_LEN];
};

struct recent_list {
	uint32_t user;        /* 0: a free slot */
	uint32_t n, cap;
	uint64_t min_arrival; /* of e[0..n); meaningless when n == 0 */
	uint64_t max_arrival; /* the last added */
	struct recent_ent *e; /* sorted by rec (ts, seq) */
};

struct recent_index {
	struct recent_list *slot;
	size_t cap, used;     /* slots (a power of two), slots with a user */
	size_t entries;       /* in every list */
	uint64_t horizon, next;
};

void recent_index_init(struct recent_index *ri);
void recent_index_free(struct recent_index *ri);
/* Empties it: horizon = next = at. */
void recent_index_reset(struct recent_index *ri, uint64_t at);
/* Adds one entry; arrival is past every entry already there.  -ENOMEM. */
int  recent_index_add(struct recent_index *ri, uint64_t arrival, uint32_t user,
                      const uint8_t rec[STORE_EVENT_REC_LEN]);
/* Drops every entry below horizon (compacted away) and sets ri->horizon. */
void recent_index_prune(struct recent_index *ri, uint64_t horizon);
/* The user's list, or NULL when it has none. */
const struct recent_list *recent_index_find(const struct recent_index *ri, uint32_t user);

#endif
