/* store_int.h: on-disk layouts of the store's records, shared by store.c and
 * the tests that check them.  Nothing outside store/ and tests/ includes it.
 *
 * Named databases (all in one LMDB environment):
 *   meta        string -> value        schema version, user-ID mode, event seq,
 *                                      "model_active": u64 active model version (0/absent: none)
 *   user_key    pseudonym|raw -> u32   external user ID -> internal ID
 *   user        u32 -> user record     the ID's pseudonym (or raw ID) + attributes
 *   item_key    ext ID -> u32
 *   item        u32 -> item record
 *   events      u32 user -> dup 32-byte event records, sorted by (ts, seq)
 *   event_text  16-byte event key -> text
 *   item_text   u32 item -> dup 16-byte event keys (the events with a text)
 *   vocab       'a'|'d' name -> id, 'A'|'D' + BE id -> name  (actions, devices)
 *   entity_key  name -> u32;  entity  u32 -> entity record
 *   relation_key name -> u32; relation u32 -> name
 *   kg_out      (head BE, rel BE) -> dup u32 tail;  kg_in (tail BE, rel BE) -> dup u32 head
 *   item_ent    u32 item -> dup u32 entity;  ent_item  u32 entity -> u32 item
 *   model       u32 version -> struct store_model_rec;  model_blob u32 -> bytes
 *   dataset     name -> JSON text
 *   import      32-byte source identity -> struct store_import_progress
 *   recent      u64 arrival -> u32 user + 32-byte event record   (schema 2)
 *               real-time appends (store_event_append), keyed by the event's
 *               full 64-bit sequence (meta "seq": only grows, never reused),
 *               so appends go at the end and compaction (store_compact)
 *               removes the oldest: the table's keys are always every
 *               appended arrival in [first, last] of its snapshot.
 * Internal IDs of users, items, entities, relations and model versions start
 * at 1: 0 is free for "none" and for the model's padding position.
 */
#ifndef RECD_STORE_INT_H
#define RECD_STORE_INT_H

#include <stdint.h>
#include <string.h>
#include "store/store.h"

/* Batch jobs live in meta too: "job/" + job ID -> struct store_job as is. */
#define STORE_JOB_PREFIX "job/"

#define STORE_EVENT_REC_LEN 32
#define STORE_EVENT_KEY_LEN 16
#define STORE_RECENT_VAL_LEN (4 + STORE_EVENT_REC_LEN)  /* user (host order), record */

/* Event record: the first 12 bytes sort as (ts, seq) under memcmp, so LMDB's
 * duplicate ordering is time order.
 *   0  ts, big-endian, sign bit flipped      8  seq, big-endian
 *   12 item   16 value   20 lat   24 lon     28 device  30 action  31 flags
 * (fields from 12 on are in host order: an LMDB file is not portable across
 * byte orders anyway). */
static inline void store_put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) { p[i] = (uint8_t)v; v >>= 8; }
}
static inline uint64_t store_get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++) v = v << 8 | p[i];
	return v;
}
static inline void store_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline uint32_t store_get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void store_event_encode(uint8_t rec[STORE_EVENT_REC_LEN], const struct store_event *ev)
{
	store_put_be64(rec, (uint64_t)ev->ts ^ (UINT64_C(1) << 63));
	store_put_be32(rec + 8, ev->seq);
	memcpy(rec + 12, &ev->item, 4);
	memcpy(rec + 16, &ev->value, 4);
	memcpy(rec + 20, &ev->lat, 4);
	memcpy(rec + 24, &ev->lon, 4);
	memcpy(rec + 28, &ev->device, 2);
	rec[30] = ev->action;
	rec[31] = ev->flags;
}

static inline void store_event_decode(struct store_event *ev, const uint8_t rec[STORE_EVENT_REC_LEN])
{
	ev->ts = (int64_t)(store_get_be64(rec) ^ (UINT64_C(1) << 63));
	ev->seq = store_get_be32(rec + 8);
	memcpy(&ev->item, rec + 12, 4);
	memcpy(&ev->value, rec + 16, 4);
	memcpy(&ev->lat, rec + 20, 4);
	memcpy(&ev->lon, rec + 24, 4);
	memcpy(&ev->device, rec + 28, 2);
	ev->action = rec[30];
	ev->flags = rec[31];
}

/* The model metadata record, stored as is. */
struct store_model_rec {
	uint32_t version, parent;
	int64_t  created;
	uint64_t snapshot_events;
	uint64_t blob_len;
	char     kind[32];
	char     metrics[1024];
};

#endif
