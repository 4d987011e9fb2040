/* serve.h: the serving side of the sequence recommender, shared by the
 * daemon's ring (daemon/ring.c), the spool's job engine (daemon/jobs.c) and
 * recctl's in-process commands.
 *
 * A struct serve keeps one model version resident and answers recommend,
 * score and ingest for users named by their external IDs.  It is safe to call
 * from several threads at once:
 *  - the resident model is reference counted: serve_use() loads a version
 *    and swaps it in with one pointer exchange; requests that started on the
 *    old version finish on it, and it is freed when the last one ends.  No
 *    request fails or waits for a load.
 *  - each calling thread gets its own activation workspace (a request never
 *    waits on another request's forward pass);
 *  - a per-user cache keeps the user representation h, the items the user
 *    has seen and the explanation, so a repeat recommend costs only the
 *    scoring pass.  An entry is valid for the model load and the user's
 *    event count it was computed from: an ingest for that user, events
 *    written by another process (recctl import) or a model swap make the
 *    next request recompute it.
 *
 * IDs: users and items are the external IDs the importer stored (strings, at
 * most SERVE_ID_MAX bytes).  An unknown user is -ENOENT with err naming it;
 * an unknown item in a filter or a candidate list is -ENOENT naming it.
 *
 * Errors are negative errnos; err (when not NULL) gets a one-line reason that
 * names the user, item or field at fault. */
#ifndef RECD_MODEL_SERVE_H
#define RECD_MODEL_SERVE_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define SERVE_ID_MAX      STORE_ID_MAX_LEN /* bytes of an external user or item ID: the
                                            * store's limit, so every stored ID fits */
#define SERVE_K_MAX       1000  /* largest k for recommend */
#define SERVE_CAND_MAX    10000 /* most candidates in one score call */
#define SERVE_FILTER_MAX  10000 /* most items in one include or exclude list */
#define SERVE_INGEST_MAX  10000 /* most events in one ingest call */
#define SERVE_WHY_MAX     32    /* most explanation entries a recommend gives */

struct serve;

#define SERVE_NAME_MAX     64   /* bytes of an action or device name (the importer's limit) */
#define SERVE_CONTEXTS_MAX 128  /* inference contexts: each request holds one LMDB reader
                                 * slot, of the 254 the store opens */
#define SERVE_THREADS_MAX  256

struct serve_options {
	int threads;          /* kernel threads per inference context; 1 keeps a
	                       * request on its caller's thread (what the ring wants) */
	size_t cache_users;   /* per-user cache entries; 0 = no cache */
	int contexts;         /* inference contexts (requests computed at once; more
	                       * wait for one to come free); 0 = twice the cores,
	                       * 4 to 64.  Each holds activations for one sequence
	                       * (about 2 MiB for the small preset) and a kern. */
	uint32_t version;     /* 0: serve the active version; else serve this one
	                       * without making it active (recctl recommend --model) */
};
void serve_options_default(struct serve_options *o);  /* threads 1, cache 65536, contexts 0, version 0 */

/* Opens a server over st (which must outlive it; o NULL = the defaults) and
 * loads the active model version: the one last chosen with serve_use() (or
 * recctl model use), persisted in the store, or else the latest.  A store
 * with no model is not an error: recommend and score then return -ENODATA
 * ("no model trained yet") until serve_use() or serve_reload() finds one. */
int  serve_open(struct serve **out, struct store *st, const struct serve_options *o,
                char *err, size_t errlen);
void serve_close(struct serve *s);

/* Loads version (0 = the latest in the store), makes it the active version
 * (persisted in the store, so a restart serves it too) and swaps it in.  On
 * failure the serving version is unchanged. */
int  serve_use(struct serve *s, uint32_t version, char *err, size_t errlen);
/* Re-reads the active version from the store and swaps to it if it changed
 * (what SIGHUP does).  *changed (may be NULL) says whether it did. */
int  serve_reload(struct serve *s, int *changed, char *err, size_t errlen);
uint32_t serve_version(struct serve *s);   /* 0 = none */

struct serve_filter {
	const char *const *include; size_t ninclude; /* only these items (none = all) */
	const char *const *exclude; size_t nexclude; /* never these */
	int include_seen;          /* also items the user already has events for */
};

struct serve_item {
	char  id[SERVE_ID_MAX + 1];  /* external item ID */
	float score;
};

/* One history event and its weight in the result: the attention-derived
 * influence of the last block's last position, summing to 1 over the events
 * the representation covered. */
struct serve_why {
	char     item[SERVE_ID_MAX + 1];
	int64_t  ts;
	uint8_t  action;
	float    weight;
};

struct serve_request {
	const char *user;          /* external user ID */
	int k;                     /* 1..SERVE_K_MAX */
	const struct serve_filter *filter;  /* may be NULL */
	struct serve_why *why;     /* NULL = no explanation */
	int why_cap;               /* entries in why; the heaviest first, at most
	                            * SERVE_WHY_MAX are written */
};

struct serve_result {
	uint32_t version;          /* the model version that answered */
	int n;                     /* items written (<= k) */
	int nwhy;                  /* explanation entries written */
	int cached;                /* 1 when the user's state came from the cache */
	int used;                  /* history events the representation covers */
};

/* Top-k for a user into items[0..k).  -ENOENT unknown user or filter item,
 * -ENODATA no model or no history the model knows, -EINVAL bad k/limits.
 * Items the serving model does not know are never recommended. */
int serve_recommend(struct serve *s, const struct serve_request *rq, struct serve_item *items,
                    struct serve_result *res, char *err, size_t errlen);

/* scores[i] for items[i], i < n <= SERVE_CAND_MAX; an unknown item is -ENOENT
 * naming it (nothing is scored).  An item the store has but the serving
 * model does not know (added after it was trained) scores -INFINITY. */
int serve_score(struct serve *s, const char *user, const char *const *items, int n, float *scores,
                uint32_t *version, char *err, size_t errlen);

/* One event to ingest: the fields of the importer's generic format. */
struct serve_event {
	const char *user;
	const char *item;
	int64_t     ts;
	const char *action;        /* NULL = none (action 0), as a generic-format line
	                            * without one: the importer's default */
	float       value; int has_value;
	float       lat, lon; int has_loc;
	const char *device;        /* NULL = none */
};

/* Appends n <= SERVE_INGEST_MAX events to the store in one transaction (new
 * users and items are created, as the importer does) and invalidates the
 * users' cached state, so the next recommend for them reflects the events.
 * Validation is the importer's: a bad event fails the call with err naming
 * its index and field, and nothing is written.  ts is taken as is (unix
 * seconds, or the dataset's unit); actions and devices are named as the
 * importer names them (custom ones are created, at most
 * SERVE_NAME_MAX bytes).  Call it without a read transaction of the store
 * open in this thread (store_write's rule). */
int serve_ingest(struct serve *s, const struct serve_event *ev, size_t n, char *err, size_t errlen);

/* Drops a user's cached state (by internal id); for callers that wrote
 * events to the store themselves. */
void serve_invalidate(struct serve *s, uint32_t user);

struct serve_stats {
	uint64_t recommends, scores, ingested_events;
	uint64_t cache_hits, cache_misses;
	uint64_t swaps;
	uint32_t version;
};
void serve_get_stats(struct serve *s, struct serve_stats *out);

#endif
