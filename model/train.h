/* train.h: the sequence model's data (every user's events, read from the
 * store in one read transaction), the leave-one-out split of
 * ../shared/EVALUATION.md, and the training loop with validation, early
 * stopping and progress reports. */
#ifndef RECD_MODEL_TRAIN_H
#define RECD_MODEL_TRAIN_H

#include <stdint.h>

#include "model/seqrec.h"
#include "store/store.h"

/* Every user's events as model inputs, users in id order, events in time order. */
struct seqrec_data {
	int NI;                   /* input slots per event: the config's seqrec_config_inputs() */
	int V;                    /* catalog rows: the store's items + 1 */
	uint32_t nusers;          /* users with at least one event */
	uint32_t *user;           /* (nusers) store user ids */
	uint64_t *off;            /* (nusers + 1) user u's events are [off[u], off[u + 1]) */
	int32_t *ev;              /* (nevents, NI) per event: item row, then each enabled feature's row */
	uint64_t nevents;
	uint64_t *item_count;     /* (V) events per item */
	uint64_t snapshot_events; /* events in the store when it was read */
	int64_t *ts;              /* (nevents) each event's time (store_event.ts) */
	int64_t max_ts;           /* the latest of them (INT64_MIN with no event): the
	                           * cut-off a model trained on this data has seen, which
	                           * fine-tuning compares new events against */
};

/* Reads every event of the store (one read transaction) for a model with
 * config cfg; cfg->V is not needed (the data's V is the store's). */
int  seqrec_data_load(struct seqrec_data **out, struct store *st, const struct seqrec_config *cfg,
                      char *why, size_t whylen);
/* The same from memory: items[i] in [1, V), users' events contiguous in
 * time order, user_off (nusers + 1) their bounds; features are 0 (no
 * timestamps or actions) and an event's time is its position in its
 * user's sequence.  For tests and benchmarks. */
int  seqrec_data_from_items(struct seqrec_data **out, const struct seqrec_config *cfg, int V,
                            const int32_t *items, const uint64_t *user_off, uint32_t nusers);
void seqrec_data_free(struct seqrec_data *d);

/* Leave-one-out (EVALUATION.md): a user's last event is the test target,
 * the one before it the validation target, the rest is training.  Users
 * with fewer than 3 events only train. */
enum seqrec_split { SEQREC_SPLIT_TRAIN = 0, SEQREC_SPLIT_VALID = 1, SEQREC_SPLIT_TEST = 2 };
/* Events of user u that are the input for split (the history before the
 * target); *target gets the target's event index, or UINT64_MAX for
 * SEQREC_SPLIT_TRAIN (whose targets are the next events).  0 when the user
 * has no example in that split. */
uint64_t seqrec_split_input(const struct seqrec_data *d, uint32_t u, enum seqrec_split split,
                            uint64_t *first, uint64_t *target);

/* Row b of a (NI, B, T) batch from events [first, first + n) of d: the last
 * T of them, left-padded.  targets (may be NULL): slot t's target is the item
 * of the event after it, which must exist (n + 1 events from first). */
void seqrec_fill_row(const struct seqrec_data *d, uint64_t first, uint64_t n, int32_t *inputs,
                     int32_t *targets, int32_t *pad, int B, int T, int b);

/* --- training --------------------------------------------------------------- */
struct seqrec_progress {
	int epoch, epochs;          /* epoch from 1; epochs: the most there may be */
	int64_t step, steps;        /* optimizer steps so far; steps: the most there may be */
	int end_of_epoch;           /* this report closes an epoch */
	double loss;                /* mean training cross-entropy of the epoch so far */
	double examples_per_s;      /* training target positions per second this epoch */
	double elapsed_s, eta_s;    /* eta: for the remaining epochs at this epoch's pace */
	float lr, grad_norm;        /* of the last step */
	double val_ndcg10;          /* validation NDCG@10 after this epoch, NaN when not validated */
	double best_ndcg10;
	int best_epoch;             /* 0: none yet */
};
/* Returning non-zero stops training (the best parameters are kept). */
typedef int (*seqrec_progress_fn)(const struct seqrec_progress *p, void *arg);

struct seqrec_train_opts {
	int epochs;                 /* at most this many */
	int patience;               /* stop after this many validations without a better NDCG@10; 0 = never */
	int batch;                  /* users per step (<= the model's B) */
	int eval_every;             /* epochs between validations; 0 = never validate */
	uint32_t valid_users;       /* validate on an evenly spread subset of this many users; 0 = all */
	uint64_t seed;              /* batch order and dropout */
	int bucket;                 /* sort users by length within pools of this many batches; 0 = off.
	                             * Less padding computed (T = 200 on ML-1M: about a third less
	                             * time), but less random batches: ML-1M validation NDCG@10 was
	                             * 0.151 with 16 against 0.155 without at epoch 33 (T = 50) */
	struct seqrec_optim optim;  /* optim.total < 0: set to epochs * steps per epoch */
	int64_t max_steps;          /* a step budget (fine-tuning); 0 = none */
	const uint32_t *users;      /* train on these users only (indices into the data, */
	uint32_t nusers;            /* e.g. those with new events when fine-tuning); NULL = all */
	int neg_popular;            /* sampled softmax: draw negatives by popularity, log-Q corrected; 0 = uniform */
	enum seqrec_init_scheme init; /* for the caller's seqrec_init_scheme (the trainer starts from
	                             * the parameters it is given); default SEQREC_INIT_SCALED */
	int windows;                /* a user with more than T training events: 0 = always their last T
	                             * (SASRec's and SASRec+'s code), 1 = a window ending at a point drawn
	                             * each epoch from (seed, epoch, user), so early history is trained
	                             * on too (the default) */
	int mask_seen;              /* leave each position's history so far out of its softmax, as
	                             * ranking leaves out the user's history (the default); 0 = the
	                             * whole catalog */
	int report_every;           /* steps between progress reports; 0 = at epoch ends only */
	seqrec_progress_fn progress;
	void *progress_arg;
	const volatile int *cancel; /* set non-zero from elsewhere to stop after the current step */
};
void seqrec_train_defaults(struct seqrec_train_opts *o);

struct seqrec_train_result {
	int epochs;                 /* epochs run */
	int64_t steps;
	int best_epoch;             /* whose parameters the model holds at the end; 0: the last */
	double best_ndcg10;         /* NaN when never validated */
	double seconds;
	int stopped;                /* 1 early stopping, 2 the callback or cancel, 3 the step budget, 0 ran all epochs */
};

/* Trains m (initialised or loaded by the caller, gradients allocated here)
 * on the training part of every user, validates every eval_every epochs by
 * full-ranking NDCG@10 on the validation targets, keeps the best parameters
 * and puts them back in m at the end.  Deterministic for a given seed and
 * thread count. */
int  seqrec_train(struct seqrec *m, const struct seqrec_data *d, const struct seqrec_train_opts *o,
                  struct seqrec_train_result *res, char *why, size_t whylen);

#endif
