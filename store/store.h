/* store.h: recd's LMDB-backed stores (users, items, events, knowledge graph,
 * model versions, metadata) in one environment under the state directory.
 *
 * Every function returns 0 or a negative errno; out parameters are written
 * only on success.  LMDB's own codes never leave store/: they are translated
 * here, and the reason in words is kept in store_errmsg() for the outermost
 * caller to log.  One writer at a time (LMDB serialises write transactions
 * across processes); readers never block it.
 */
#ifndef RECD_STORE_H
#define RECD_STORE_H

#include <stddef.h>
#include <stdint.h>

/* Version 2 added the "recent" table (real-time appends, store_event_append).
 * This code reads versions 1 and 2.  A version-1 store opens and works as it
 * is; it becomes version 2 in the transaction of its first append, so that a
 * recd that reads only version 1 refuses it rather than miss those events.
 * New stores are version 2. */
#define STORE_SCHEMA_VERSION 2u
#define STORE_SCHEMA_MIN     1u   /* the oldest version this code reads */
#define STORE_ID_MAX_LEN     255   /* longest external user/item/entity ID */
#define STORE_TEXT_MAX_LEN   (1u << 20) /* longest title/text/attribute blob */
#define STORE_USER_KEY_LEN   32    /* BLAKE2b-256 pseudonym of a user ID */
#define STORE_NONE           UINT32_MAX

struct store;
struct store_txn;

struct store_options {
	size_t map_size;    /* initial map size in bytes; 0 = 64 MiB */
	int    pseudonymise; /* -1 = keep the store's setting (new store: yes), 0 = no, 1 = yes */
	int    readonly;
};

/* Opens (creating if needed) the store in dir: dir/data.mdb, dir/lock.mdb and,
 * for pseudonymised stores, the key dir/user-id.key (mode 0600).  Clears stale
 * readers left by dead processes.  A store written by another schema version
 * fails with -EPROTO. */
int  store_open(struct store **out, const char *dir, const struct store_options *opt);
void store_close(struct store *st);
const char *store_errmsg(const struct store *st);  /* why the last call failed */
const char *store_dir(const struct store *st);
int  store_pseudonymised(const struct store *st);

/* --- transactions ------------------------------------------------------ */
/* Read transactions see one snapshot and may run for as long as needed. */
int  store_read_begin(struct store *st, struct store_txn **out);
void store_txn_end(struct store_txn *tx);    /* ends a read txn, aborts a write txn */

/* Runs fn inside one write transaction and commits it.  When the map is full
 * the transaction is aborted, the map is doubled and fn runs again from the
 * start: fn must keep its effects inside the transaction (or undo them when
 * called again).  fn's non-zero return aborts and is returned. */
typedef int (*store_write_fn)(struct store_txn *tx, void *arg);
int  store_write(struct store *st, store_write_fn fn, void *arg);

struct store *store_txn_store(struct store_txn *tx);
int  store_txn_error(struct store_txn *tx, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));  /* sets errmsg, returns err */

/* --- users ------------------------------------------------------------- */
/* Attributes are "key=value" pairs joined by '\n' (no NUL inside). */
int store_user_get_or_add(struct store_txn *tx, const char *ext_id, size_t len, uint32_t *id);
int store_user_lookup(struct store_txn *tx, const char *ext_id, size_t len, uint32_t *id);
int store_user_set_attrs(struct store_txn *tx, uint32_t id, const char *attrs, size_t len);
/* *attrs points into the map: valid until the transaction ends. */
int store_user_get_attrs(struct store_txn *tx, uint32_t id, const char **attrs, size_t *len);

/* --- items ------------------------------------------------------------- */
struct store_item {
	const char *ext_id;  size_t ext_id_len;
	const char *title;   size_t title_len;
	const char *text;    size_t text_len;      /* description, free text */
	const char *categories; size_t categories_len; /* '|'-separated */
	const char *attrs;   size_t attrs_len;     /* "k=v" joined by '\n' */
};
int store_item_get_or_add(struct store_txn *tx, const char *ext_id, size_t len, uint32_t *id);
int store_item_lookup(struct store_txn *tx, const char *ext_id, size_t len, uint32_t *id);
/* Replaces the item's descriptive fields (ext_id in it is ignored); fields
 * with a NULL pointer keep their stored value. */
int store_item_update(struct store_txn *tx, uint32_t id, const struct store_item *it);
int store_item_get(struct store_txn *tx, uint32_t id, struct store_item *it); /* points into the map */

/* --- events ------------------------------------------------------------ */
enum store_action {
	STORE_ACTION_NONE = 0, STORE_ACTION_VIEW, STORE_ACTION_CLICK, STORE_ACTION_CART,
	STORE_ACTION_PURCHASE, STORE_ACTION_RATE, STORE_ACTION_CHECKIN, STORE_ACTION_LIKE,
	STORE_ACTION_SHARE, STORE_ACTION_REVIEW, STORE_ACTION_PLAY,
	STORE_ACTION_BUILTIN_COUNT,
	/* ids from here up to 255 are custom actions, named in the store */
};
#define STORE_DEVICE_NONE 0

#define STORE_EV_VALUE   0x01u /* value is set */
#define STORE_EV_LOC     0x02u /* lat, lon are set */
#define STORE_EV_TEXT    0x04u /* a text is attached (store_event_text) */

struct store_event {
	int64_t  ts;      /* seconds, or the dataset's time unit (see dataset metadata) */
	uint32_t seq;     /* tie-break among equal ts: arrival order; set by the store */
	uint32_t item;
	float    value;   /* rating etc., valid with STORE_EV_VALUE */
	float    lat, lon;/* degrees WGS84, valid with STORE_EV_LOC */
	uint16_t device;  /* 0 = none, else an id from store_device_id() */
	uint8_t  action;  /* enum store_action or a custom id */
	uint8_t  flags;   /* STORE_EV_* */
};

/* Inserts in time order: out-of-order arrivals land where their ts puts them.
 * text (may be NULL) is attached to the event and indexed under its item.
 * On success ev->seq holds the assigned tie-break.  Each event goes into its
 * user's list: cheap for a bulk import (one user's events after another),
 * about one page written per event when the users are random. */
int store_event_add(struct store_txn *tx, uint32_t user, struct store_event *ev,
                    const char *text, size_t text_len);
/* The same event, checked the same way, appended to the store's table of
 * recent events instead (a few pages per thousand events, whatever the
 * users): for real-time ingest.  Every reader below sees it at once, in its
 * place in the user's time order; store_compact() later moves it into the
 * user's list. */
int store_event_append(struct store_txn *tx, uint32_t user, struct store_event *ev,
                       const char *text, size_t text_len);
/* The last n events of a user, oldest first, into out[0..*got).  One cursor scan. */
int store_events_last(struct store_txn *tx, uint32_t user, size_t n,
                      struct store_event *out, size_t *got);
/* Calls fn for each event of a user in time order; fn returning non-zero stops
 * the walk and is returned. */
typedef int (*store_event_fn)(uint32_t user, const struct store_event *ev, void *arg);
int store_events_foreach(struct store_txn *tx, uint32_t user, store_event_fn fn, void *arg);
/* All users in id order, each user's events in time order. */
int store_events_foreach_all(struct store_txn *tx, store_event_fn fn, void *arg);
int store_events_count(struct store_txn *tx, uint32_t user, size_t *n);
/* Readers see the users' lists and the recent table as one: a read costs two
 * cursor operations more while the recent table is empty, and a lookup in a
 * per-process index of it otherwise (rebuilt lazily from the table). */
int store_event_text(struct store_txn *tx, uint32_t user, const struct store_event *ev,
                     const char **text, size_t *len);

/* Names for actions and devices.  Custom ones are created on first use. */
const char *store_action_builtin_name(unsigned action);  /* NULL if not builtin */
int store_action_id(struct store_txn *tx, const char *name, size_t len, uint8_t *id);
int store_action_name(struct store_txn *tx, uint8_t id, const char **name, size_t *len);
int store_device_id(struct store_txn *tx, const char *name, size_t len, uint16_t *id);
int store_device_name(struct store_txn *tx, uint16_t id, const char **name, size_t *len);

/* --- knowledge graph -------------------------------------------------- */
int store_entity_get_or_add(struct store_txn *tx, const char *name, size_t len,
                            const char *type, size_t type_len, uint32_t *id);
int store_entity_lookup(struct store_txn *tx, const char *name, size_t len, uint32_t *id);
int store_entity_get(struct store_txn *tx, uint32_t id, const char **name, size_t *len,
                     const char **type, size_t *type_len);
int store_relation_get_or_add(struct store_txn *tx, const char *name, size_t len, uint32_t *id);
int store_relation_name(struct store_txn *tx, uint32_t id, const char **name, size_t *len);
/* Adds head -rel-> tail; *added = 0 when the triple was already there. */
int store_triple_add(struct store_txn *tx, uint32_t head, uint32_t rel, uint32_t tail, int *added);
enum store_dir { STORE_OUT = 0, STORE_IN = 1 };
/* Neighbours of entity e over rel: tails (STORE_OUT) or heads (STORE_IN).
 * Fills out[0..*got) up to cap, *total is the full count.  One cursor scan. */
int store_kg_neighbours(struct store_txn *tx, uint32_t e, uint32_t rel, enum store_dir dir,
                        uint32_t *out, size_t cap, size_t *got, size_t *total);
/* Every edge of entity e in direction dir, by relation then neighbour; one
 * cursor scan.  fn returning non-zero stops the walk and is returned. */
typedef int (*store_edge_fn)(uint32_t rel, uint32_t other, void *arg);
int store_kg_foreach_edge(struct store_txn *tx, uint32_t e, enum store_dir dir, store_edge_fn fn, void *arg);
int store_item_link(struct store_txn *tx, uint32_t item, uint32_t entity);
int store_item_entities(struct store_txn *tx, uint32_t item, uint32_t *out, size_t cap, size_t *got);
int store_entity_item(struct store_txn *tx, uint32_t entity, uint32_t *item);

/* --- model versions ---------------------------------------------------- */
struct store_model_meta {
	uint32_t version;        /* set by the store on put */
	uint32_t parent;         /* 0 = none */
	int64_t  created;        /* unix seconds; 0 = now on put */
	uint64_t snapshot_events;/* events in the store when training read it */
	char     kind[32];       /* e.g. "sasrec" */
	char     metrics[1024];  /* JSON object text, may be empty */
};
int store_model_put(struct store_txn *tx, struct store_model_meta *meta, const void *blob, size_t len);
int store_model_get(struct store_txn *tx, uint32_t version, struct store_model_meta *meta,
                    const void **blob, size_t *len);
typedef int (*store_model_fn)(const struct store_model_meta *meta, size_t blob_len, void *arg);
int store_model_foreach(struct store_txn *tx, store_model_fn fn, void *arg);
int store_model_latest(struct store_txn *tx, uint32_t *version);
/* The active version: the one serving answers with (recctl model use,
 * serve_use), kept in the store so a restart serves it too.  *version = 0
 * when none has been chosen (serve the latest). */
int store_model_active_get(struct store_txn *tx, uint32_t *version);
/* Chooses it; -ENOENT when the version does not exist.  0 clears the choice. */
int store_model_active_set(struct store_txn *tx, uint32_t version);

/* --- metadata --------------------------------------------------------- */
/* Datasets: name -> JSON object text describing it (source, time unit, counts). */
int store_dataset_put(struct store_txn *tx, const char *name, const char *json);
typedef int (*store_dataset_fn)(const char *name, const char *json, void *arg);
int store_dataset_foreach(struct store_txn *tx, store_dataset_fn fn, void *arg);

/* Import progress, keyed by a 32-byte identity of the source (a hash of its
 * content and the import options).  Written in the same transaction as the
 * data it accounts for, so a killed import resumes exactly where its last
 * commit ended. */
struct store_import_progress {
	uint64_t units_done;  /* lines (or records) applied */
	uint32_t complete;
	uint32_t pad;
};
int store_import_get(struct store_txn *tx, const uint8_t key[32], struct store_import_progress *p);
int store_import_put(struct store_txn *tx, const uint8_t key[32], const struct store_import_progress *p);

/* Batch jobs (daemon/jobs.c): the state of each job the daemon has run,
 * by job ID (1..STORE_JOB_ID_MAX bytes), so `recctl jobs` shows them across
 * restarts.  Kept in the meta database under "job/" + ID. */
#define STORE_JOB_ID_MAX     128
#define STORE_JOB_REASON_MAX 384
struct store_job {
	uint8_t  state;        /* enum jobs_state (daemon/jobs.h) */
	uint8_t  type;         /* enum jobs_type */
	uint8_t  pad[6];
	uint64_t done, total;  /* units */
	int64_t  queued, started, ended;  /* unix seconds; 0 = not yet */
	char     reason[STORE_JOB_REASON_MAX]; /* why it failed; NUL-terminated */
	/* Train and fine-tune jobs (done/total are optimizer steps then); a
	 * record written before these fields existed reads with them zero. */
	int32_t  epoch, epochs;  /* the epoch running (from 1), the most; 0 = none */
	float    loss;           /* the epoch's mean training loss so far; NaN = none */
	float    eta_s;          /* seconds left while running, as the trainer estimates; < 0 = unknown */
	int64_t  updated_ms;     /* unix milliseconds of the record; 0 = not given */
};
/* The size of a record from before epoch..updated_ms. */
#define STORE_JOB_V1_SIZE (offsetof(struct store_job, epoch))
int store_job_put(struct store_txn *tx, const char *id, size_t len, const struct store_job *j);
int store_job_get(struct store_txn *tx, const char *id, size_t len, struct store_job *j);
int store_job_del(struct store_txn *tx, const char *id, size_t len);
/* Every job in ID order; fn returning non-zero stops the walk and is returned. */
typedef int (*store_job_fn)(const char *id, size_t len, const struct store_job *j, void *arg);
int store_job_foreach(struct store_txn *tx, store_job_fn fn, void *arg);

struct store_counts {
	uint64_t users, items, events, entities, relations, triples, models, datasets;
	uint64_t recent;      /* of events: those still in the recent table */
	uint64_t file_bytes;  /* data.mdb size on disk */
	uint64_t map_bytes;   /* current map size */
};
int store_counts(struct store_txn *tx, struct store_counts *c);

/* --- compaction ---------------------------------------------------------- */
/* The recent table in tx's snapshot: how many events, and the first and last
 * arrival numbers (the 64-bit event sequence, which only grows; first = last
 * = 0 when empty). */
struct store_recent_info {
	uint64_t events;
	uint64_t first, last;
};
int store_recent_info(struct store_txn *tx, struct store_recent_info *info);
/* Moves up to max_events of the oldest recent events, those with arrival
 * numbers up to upto (UINT64_MAX: any), into their users' lists, in one
 * durable write transaction; *moved gets how many.  Readers see the same
 * events before, during and after.  The time it takes grows with the number
 * of distinct users moved: callers that must not hold the writer long pass a
 * few thousand and call again. */
int store_compact(struct store *st, size_t max_events, uint64_t upto, size_t *moved);

#endif
