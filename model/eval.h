/* eval.h: leave-one-out evaluation of the sequence model, the protocols of
 * ../shared/EVALUATION.md: full ranking (every item scored, the user's input
 * history left out of the ranking) and the SASRec paper's 100 sampled
 * negatives.  A tie with the target counts against it, so a model that
 * scores everything alike ranks the target last, not first. */
#ifndef RECD_MODEL_EVAL_H
#define RECD_MODEL_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "model/seqrec.h"
#include "model/train.h"

#define SEQREC_PROTOCOL_FULL    "full-ranking leave-one-out, seen items excluded"
#define SEQREC_PROTOCOL_SAMPLED "sampled-100 leave-one-out (100 uniform unseen negatives)"

struct seqrec_metrics {
	const char *protocol;
	const char *split;          /* "valid" or "test" */
	uint64_t users;             /* users evaluated */
	double hr10, ndcg10, hr50, ndcg50, hr200, ndcg200, mrr;
};

/* Full ranking on split (SEQREC_SPLIT_VALID or _TEST) for every user with an
 * example there, or an evenly spread subset of max_users (0 = all). */
int seqrec_eval_full(struct seqrec *m, const struct seqrec_data *d, enum seqrec_split split,
                     uint32_t max_users, struct seqrec_metrics *out);
/* The same for the users users[0..nusers) (indices into d, each counted
 * once; those without an example in split are left out), e.g. the users
 * with events since a model's cut-off.  -EINVAL when d has items the model
 * cannot score (grow it first: seqrec_grow) or other inputs per event. */
int seqrec_eval_full_users(struct seqrec *m, const struct seqrec_data *d, enum seqrec_split split,
                           const uint32_t *users, uint32_t nusers, struct seqrec_metrics *out);
/* The target against nneg items drawn uniformly (seeded) from those the user
 * never interacted with; the HR/NDCG cut-offs at or past nneg + 1 are 1. */
int seqrec_eval_sampled(struct seqrec *m, const struct seqrec_data *d, enum seqrec_split split,
                        int nneg, uint64_t seed, struct seqrec_metrics *out);
/* {"protocol":..., "split":..., "users":N, "hr@10":..., ...}; returns the
 * length snprintf would write. */
int seqrec_metrics_json(const struct seqrec_metrics *mt, char *buf, size_t len);

#endif
