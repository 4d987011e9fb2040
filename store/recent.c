/* recent.c: the per-user index of the recent table (see recent.h): an open
 * addressing table of users, each with its entries sorted by record. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/recent.h"

void recent_index_init(struct recent_index *ri)
{
	memset(ri, 0, sizeof *ri);
}

static void recent_slots_free(struct recent_list *slot, size_t cap)
{
	for (size_t i = 0; i < cap; i++)
		free(slot[i].e);
	free(slot);
}

void recent_index_free(struct recent_index *ri)
{
	recent_slots_free(ri->slot, ri->cap);
	memset(ri, 0, sizeof *ri);
}

void recent_index_reset(struct recent_index *ri, uint64_t at)
{
	recent_index_free(ri);
	ri->horizon = ri->next = at;
}

static size_t recent_hash(uint32_t user, size_t cap)
{
	/* murmur3's finaliser: user IDs are dense, and the low bits pick the slot */
	user ^= user >> 16;
	user *= 0x85ebca6bu;
	user ^= user >> 13;
	user *= 0xc2b2ae35u;
	user ^= user >> 16;
	return user & (cap - 1);
}

static struct recent_list *recent_slot(struct recent_list *slot, size_t cap, uint32_t user)
{
	for (size_t i = recent_hash(user, cap);; i = (i + 1) & (cap - 1))
		if (slot[i].user == user || slot[i].user == 0)
			return &slot[i];
}

/* Rebuilds the table with room for want users; users whose lists are empty
 * are left out, so memory follows what the table holds now. */
static int recent_rehash(struct recent_index *ri, size_t want)
{
	size_t cap = 64, used = 0;
	while (cap * 3 < want * 4 + 4)
		cap *= 2;
	struct recent_list *n = calloc(cap, sizeof *n);
	if (!n)
		return -ENOMEM;
	for (size_t i = 0; i < ri->cap; i++) {
		struct recent_list *l = &ri->slot[i];
		if (!l->user)
			continue;
		if (!l->n) {
			free(l->e);
			continue;
		}
		*recent_slot(n, cap, l->user) = *l;
		used++;
	}
	free(ri->slot);
	ri->slot = n;
	ri->cap = cap;
	ri->used = used;
	return 0;
}

const struct recent_list *recent_index_find(const struct recent_index *ri, uint32_t user)
{
	if (!ri->cap || user == 0)
		return NULL;
	const struct recent_list *l = recent_slot(ri->slot, ri->cap, user);
	return l->user && l->n ? l : NULL;
}

int recent_index_add(struct recent_index *ri, uint64_t arrival, uint32_t user,
                     const uint8_t rec[STORE_EVENT_REC_LEN])
{
	if (user == 0)
		return -EINVAL;
	if ((ri->used + 1) * 4 > ri->cap * 3 && recent_rehash(ri, ri->used * 2 + 1) < 0)
		return -ENOMEM;
	struct recent_list *l = recent_slot(ri->slot, ri->cap, user);
	if (l->n == l->cap) {
		uint32_t nc = l->cap ? l->cap * 2 : 4;
		struct recent_ent *e = realloc(l->e, (size_t)nc * sizeof *e);
		if (!e)
			return -ENOMEM;
		l->e = e;
		l->cap = nc;
	}
	if (!l->user) {
		l->user = user;
		ri->used++;
	}
	/* Mostly in time order: then the entry goes at the end. */
	uint32_t at = l->n;
	if (at && memcmp(rec, l->e[at - 1].rec, STORE_EVENT_REC_LEN) < 0) {
		uint32_t lo = 0, hi = at;
		while (lo < hi) {
			uint32_t mid = lo + (hi - lo) / 2;
			if (memcmp(l->e[mid].rec, rec, STORE_EVENT_REC_LEN) <= 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		at = lo;
		memmove(&l->e[at + 1], &l->e[at], (size_t)(l->n - at) * sizeof *l->e);
	}
	l->e[at].arrival = arrival;
	memcpy(l->e[at].rec, rec, STORE_EVENT_REC_LEN);
	if (l->n == 0 || arrival < l->min_arrival)
		l->min_arrival = arrival;
	l->max_arrival = arrival;
	l->n++;
	ri->entries++;
	return 0;
}

void recent_index_prune(struct recent_index *ri, uint64_t horizon)
{
	size_t empty = 0;
	if (horizon <= ri->horizon)
		return;
	ri->horizon = horizon;
	if (ri->next < horizon)
		ri->next = horizon;
	for (size_t i = 0; i < ri->cap; i++) {
		struct recent_list *l = &ri->slot[i];
		if (!l->user)
			continue;
		if (l->n && l->min_arrival < horizon) {
			uint32_t k = 0;
			uint64_t min = UINT64_MAX;
			if (l->max_arrival >= horizon) {
				for (uint32_t j = 0; j < l->n; j++) {
					if (l->e[j].arrival < horizon)
						continue;
					if (l->e[j].arrival < min)
						min = l->e[j].arrival;
					l->e[k++] = l->e[j];
				}
			}
			ri->entries -= l->n - k;
			l->n = k;
			l->min_arrival = min;
			if (k == 0) {
				free(l->e);
				l->e = NULL;
				l->cap = 0;
			}
		}
		empty += l->n == 0;
	}
	/* Free the slots of users with nothing left once they are most of them
	 * (best effort: without memory the slots just stay). */
	if (empty > 64 && empty * 2 > ri->used)
		(void)recent_rehash(ri, ri->used - empty);
}
