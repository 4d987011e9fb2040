/* finetune.h: continuing a stored model version on the events that arrived
 * since it was trained, producing a new version whose parent is recorded.
 *
 * The cut-off.  A version records the latest event time of the data it was
 * trained on as "cutoff_ts" in its metrics JSON (seqrec_meta_cutoff reads
 * it; `recctl train`, seqrec_finetune and any other producer of versions
 * should write it: SEQREC_META_CUTOFF).  "New events" are the events with a
 * time after the parent's cut-off; "new users" those who have one.  An event
 * that arrives late with a time at or before the cut-off is not new by this
 * rule (it is trained on only with --users all).  A parent without a
 * recorded cut-off is fine-tuned on every user, and the result says so.
 *
 * The catalog.  Items added since the parent get new rows of the item table
 * (N(0, init_std)); the parent's rows are copied, so the child's V is the
 * store's item count + 1 (seqrec_grow).
 *
 * The run.  The same leave-one-out split as `recctl train` (every user's
 * last event held out for testing, the one before for validation), AdamW
 * from fresh moments at the fine-tuning rate (constant), at most `epochs`
 * passes over the chosen users and at most max_steps steps, validation on
 * every user's validation target after each epoch with the best epoch kept.
 * Then, when evaluate is set, the parent (its catalog grown the same way)
 * and the child are both evaluated by full ranking on the test targets of
 * the new users and of the other users, so a caller sees whether the new
 * slice improved and whether the rest held.
 */
#ifndef RECD_MODEL_FINETUNE_H
#define RECD_MODEL_FINETUNE_H

#include <stdint.h>

#include "kernels/kernels.h"
#include "model/eval.h"
#include "model/seqrec.h"
#include "model/train.h"
#include "store/store.h"

#define SEQREC_META_CUTOFF "cutoff_ts"  /* key of the metrics JSON: latest event time trained on */

enum seqrec_ft_users {
	SEQREC_FT_USERS_NEW = 0,  /* users with an event after the parent's cut-off */
	SEQREC_FT_USERS_ALL = 1,  /* every user */
};

struct seqrec_finetune_opts {
	uint32_t parent;          /* version to continue; 0 = the active version, else the latest */
	enum seqrec_ft_users users;
	float lr;                 /* constant learning rate; default 3e-4 (0.3 x training's: on ML-1M 1e-4 moved the
	                           * new users' NDCG@10 little in 5 epochs, 3e-4 by 10%, 1e-3 by 12%) */
	float beta2, clip;        /* Adam's second-moment decay in [0, 1) and the gradient-norm clip
	                           * (0 = none, up to 1e6); default seqrec_optim_default's, as training */
	int epochs;               /* at most this many passes over the chosen users; default 5 */
	int64_t max_steps;        /* step budget, 0 = none; default 0 */
	int batch;                /* sequences per step; default 128 */
	int patience;             /* validations without improvement before stopping; 0 = never (default 2) */
	int eval_every;           /* epochs between validations; 0 = never, keep the last (default 1) */
	uint32_t valid_users;     /* validate on an evenly spread subset; 0 = all (default) */
	uint64_t seed;            /* batch order, dropout, new item rows; default 1 */
	float init_std;           /* new item rows N(0, init_std); default 0.02 as `recctl train` */
	int evaluate;             /* test parent and child on new and other users; default 1 */
	int activate;             /* make the child the store's active version; default 0 */
	int report_every;         /* as seqrec_train_opts */
	seqrec_progress_fn progress;
	void *progress_arg;
	const volatile int *cancel;  /* non-zero: stop after the current step, store what there is */
};
void seqrec_finetune_defaults(struct seqrec_finetune_opts *o);

struct seqrec_finetune_result {
	uint32_t parent;          /* the version continued */
	uint32_t version;         /* the version stored */
	int cutoff_known;         /* the parent recorded its cut-off */
	int64_t parent_cutoff_ts; /* valid when cutoff_known */
	int64_t cutoff_ts;        /* the latest event time of the data now trained on */
	uint64_t new_events;      /* events after the parent's cut-off (all events when unknown) */
	uint32_t new_users;       /* users with such events */
	uint32_t trained_users;   /* users the run trained on */
	int parent_items, items;  /* catalog sizes of parent and child */
	struct seqrec_train_result train;
	int evaluated;
	/* full ranking, test split: [0] new users, [1] the other users */
	struct seqrec_metrics parent_test[2], child_test[2];
};

/* Fine-tunes version o->parent of the store st with kernels k (the caller's
 * thread count), stores the child (meta.parent = the parent, snapshot_events
 * and the metrics JSON with "cutoff_ts", the parent and the run's figures)
 * and, with o->activate, makes it the active version.  Self-contained: it
 * reads the store in its own read transaction and writes in its own write
 * transaction; st may be shared with other threads (LMDB's rules).
 * Errors: -ENOENT no such version (or none stored), -EINVAL not a sequence
 * model or a bad option, -ENODATA nothing new to train on (no user with an
 * event after the cut-off and two training events), -ENOMEM, -ECANCELED
 * when cancelled before the first step finished; why says which.  Nothing
 * is stored on error. */
int seqrec_finetune(struct store *st, struct kern *k, const struct seqrec_finetune_opts *o,
                    struct seqrec_finetune_result *res, char *why, size_t whylen);

/* A model for batches of B with catalog rows V >= src's: src's parameters
 * copied, item rows [src V, V) drawn from N(0, std) with seed (std 0: zero,
 * so those items score 0).  Everything else about the config is src's.
 * -EINVAL when V is smaller than src's or out of range, -ENOMEM. */
int seqrec_grow(struct seqrec **out, const struct seqrec *src, int V, int B, uint64_t seed, float std);

/* The "cutoff_ts" of a version's metrics JSON: 0 and *ts, or -ENOENT when
 * the metrics do not record it. */
int seqrec_meta_cutoff(const struct store_model_meta *meta, int64_t *ts);

/* Indices into d of the users with an event after ts, in order, into a
 * malloc'd *out (free it); *n their count.  -ENOMEM. */
int seqrec_users_since(const struct seqrec_data *d, int64_t ts, uint32_t **out, uint32_t *n, uint64_t *nevents);

#endif
