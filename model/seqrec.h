/* seqrec.h: recd's sequence recommender, a pre-LN causal transformer over a
 * user's events that predicts the next item: SASRec (Kang & McAuley, ICDM
 * 2018) trained with softmax cross-entropy over the whole catalog as SASRec+
 * (Klenitskiy & Vasilev, RecSys 2023) does, optionally leaving out the items
 * each row has already seen (seqrec_batch.mask_seen), or with sampled softmax
 * for large catalogs.
 *
 * Legend (kernels.h's): B batch, T sequence length, C channels, NH heads,
 * L blocks, F feed-forward width, V catalog rows (store item ids are the
 * rows; row 0 is padding), NI input slots per event (the item, then each
 * enabled feature).
 *
 * Memory (llm.c): parameters, gradients and the two AdamW moments are four
 * arenas of one layout; activations are one arena sized for (B, T) when the
 * model is created.  A model object is used by one thread at a time; the
 * kernels' own threads do the parallel work.
 */
#ifndef RECD_MODEL_SEQREC_H
#define RECD_MODEL_SEQREC_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/kernels.h"
#include "store/store.h"

/* --- per-event input features ---------------------------------------------
 * The input of position t is the sum of the embeddings of its item, its
 * position and every enabled feature.  Adding a feature: one enum value
 * before SEQREC_FEAT_COUNT and one line in seqrec.c's feature table (name,
 * rows, index function); the tables, checkpoints and the reference test
 * follow from the table. */
enum seqrec_feature {
	SEQREC_FEAT_ACTION = 0,  /* store_event.action (256 rows) */
	SEQREC_FEAT_HOUR,        /* hour of day of ts, ts in unix seconds (24 rows) */
	SEQREC_FEAT_WEEKDAY,     /* day of week of ts, ts in unix seconds (7 rows) */
	SEQREC_FEAT_GAP,         /* log2 bucket of ts - previous ts (32 rows) */
	SEQREC_FEAT_DEVICE,      /* store_event.device, ids past 254 share row 255 (256 rows) */
	SEQREC_FEAT_COUNT
};

struct seqrec_feature_def {
	const char *name;
	int rows;
	/* Row of this feature for ev; prev is the event before it, NULL for a
	 * user's first event.  Returns a value in [0, rows). */
	int32_t (*index)(const struct store_event *ev, const struct store_event *prev);
};
extern const struct seqrec_feature_def seqrec_features[SEQREC_FEAT_COUNT];
int seqrec_feature_by_name(const char *name);  /* enum value, or -ENOENT */

#define SEQREC_FEAT_BIT(f)     (1u << (f))
#define SEQREC_FEAT_DEFAULT    SEQREC_FEAT_BIT(SEQREC_FEAT_ACTION)

/* --- configuration --------------------------------------------------------- */
enum seqrec_act  { SEQREC_ACT_RELU = 0, SEQREC_ACT_GELU = 1 };
enum seqrec_loss { SEQREC_LOSS_FULL = 0, SEQREC_LOSS_SAMPLED = 1 };
/* The block's wiring:
 *  PRELN   pre-LN transformer (GPT-2):  x += attn(ln1(x));  x += ffn(ln2(x))
 *  SASREC  SASRec's reference code (pmixer's SASRec.pytorch, which SASRec+
 *          adapts): queries from ln1(x), keys and values from x itself, the
 *          residuals taken on the normalised values:
 *          y = ln1(x);  x = y + attn(q = y, kv = x);  y = ln2(x);  x = y + ffn(y)
 *          and, as nn.MultiheadAttention, no dropout on the attention's
 *          output (attn_dropout drops its probabilities instead) */
enum seqrec_block { SEQREC_BLOCK_PRELN = 0, SEQREC_BLOCK_SASREC = 1 };
/* Which position row an event gets:
 *  LAST   counted back from the latest event: the latest is always at
 *         position T-1 (SASRec's left-padded batches)
 *  FIRST  counted from the first event of the window: 0, 1, ... (SASRec+'s
 *         right-padded batches), so the latest event's position says how
 *         long the history is, up to T */
enum seqrec_pos { SEQREC_POS_LAST = 0, SEQREC_POS_FIRST = 1 };

struct seqrec_config {
	int C, NH, L, T, F;
	int V;                 /* catalog rows: the store's item count + 1 */
	float dropout;         /* on the input, inside the feed-forward and on the residual
	                        * branches of each block (the attention's: PRELN only) */
	float attn_dropout;    /* on the attention probabilities (0 in checkpoints written
	                        * before it existed) */
	enum seqrec_act act;   /* feed-forward activation */
	uint32_t features;     /* SEQREC_FEAT_BIT()s of the enabled input features */
	int scale_emb;         /* item embeddings times sqrt(C) at the input (SASRec) */
	enum seqrec_block block;
	enum seqrec_pos pos;   /* position rows */
	enum seqrec_loss loss; /* training loss */
	int neg;               /* negatives shared by a batch, SEQREC_LOSS_SAMPLED */
};

/* Named presets (V is left 0 for the caller to set from the catalog):
 *  small  SASRec's ML-1M model as SASRec+ trains it: C=64, L=2, NH=1, T=200,
 *         dropout 0.1, F=C with ReLU (SASRec's point-wise feed-forward),
 *         positions counted from the window's first event (SASRec+).
 *  large  HSTU-large's depth: 8 blocks, 2 heads, T=200, dropout 0.2 as in
 *         generative-recommenders' ML-1M config.  HSTU uses d=50 with no
 *         feed-forward; a standard block here gets C=64 (a multiple of the
 *         heads and of the SIMD width, near 50) and F=4C with GELU, the usual
 *         transformer ratio, so its capacity is at least HSTU-large's. */
int  seqrec_preset(const char *name, struct seqrec_config *out);
/* 0, or -EINVAL with the first field out of range described in why. */
int  seqrec_config_check(const struct seqrec_config *c, char *why, size_t whylen);
int  seqrec_config_inputs(const struct seqrec_config *c);  /* NI */

/* --- parameters ------------------------------------------------------------ */
struct seqrec_params {
	float *wte;      /* (V, C) item embeddings; also the output layer */
	float *wpe;      /* (T, C) learned positions; the last slot is the latest event */
	float *feat[SEQREC_FEAT_COUNT]; /* (rows_f, C) per enabled feature, NULL otherwise */
	float *ln1w;     /* (L, C) */
	float *ln1b;     /* (L, C) */
	float *qkvw;     /* (L, 3C, C) */
	float *qkvb;     /* (L, 3C) */
	float *attprojw; /* (L, C, C) */
	float *attprojb; /* (L, C) */
	float *ln2w;     /* (L, C) */
	float *ln2b;     /* (L, C) */
	float *fcw;      /* (L, F, C) */
	float *fcb;      /* (L, F) */
	float *fcprojw;  /* (L, C, F) */
	float *fcprojb;  /* (L, C) */
	float *lnfw;     /* (C) */
	float *lnfb;     /* (C) */
};

/* One parameter tensor of the arena, in arena order. */
struct seqrec_tensor {
	const char *name;
	size_t off, n;   /* in floats */
	int decay;       /* AdamW weight decay applies (weight matrices) */
};
#define SEQREC_MAX_TENSORS (16 + SEQREC_FEAT_COUNT)

/* --- activations (the arena sized at creation for (B, T)) ----------------- */
struct seqrec_acts {
	float *encoded;  /* (B, T, C) sum of the input embeddings */
	float *resid;    /* (L+1, B, T, C) block inputs; resid[0] = dropout(encoded), resid[L] the last output */
	float *ln1;      /* (L, B, T, C) */
	float *ln1_mean; /* (L, B, T) */
	float *ln1_rstd; /* (L, B, T) */
	float *qkv;      /* (L, B, T, 3C) */
	float *atty;     /* (L, B, T, C) heads' outputs before the projection */
	float *lse;      /* (L, B, NH, T) attention log-sum-exp, for the backward pass */
	float *resmid;   /* (L, B, T, C) after the attention residual */
	float *ln2;      /* (L, B, T, C) */
	float *ln2_mean; /* (L, B, T) */
	float *ln2_rstd; /* (L, B, T) */
	float *fch;      /* (L, B, T, F) feed-forward pre-activation */
	float *fcha;     /* (L, B, T, F) after the activation */
	float *lnf;      /* (B, T, C) final hidden states */
	float *lnf_mean; /* (B, T) */
	float *lnf_rstd; /* (B, T) */
	float *tmp;      /* (B, T, C) a branch's output before dropout */
	float *tmp2;     /* (B, T, C) after dropout */
	/* gradients of activations, written by the backward pass */
	float *dlnf;     /* (B, T, C) loss gradient at the final hidden states */
	float *dres;     /* (B, T, C) gradient of the residual stream */
	float *dt1;      /* (B, T, C) */
	float *dt2;      /* (B, T, C) */
	float *dF1;      /* (B, T, F) */
	float *dF2;      /* (B, T, F) */
	float *d3C;      /* (B, T, 3C) */
	float *d2C;      /* (B, T, 2C) keys' and values' gradient, SEQREC_BLOCK_SASREC only */
};

struct seqrec {
	struct seqrec_config cfg;
	struct kern *k;
	int B;                  /* the batch the activation arena holds */
	int T;                  /* its length (cfg.T) */

	struct seqrec_params params;   /* into param_mem */
	struct seqrec_params grads;    /* into grad_mem, NULL until seqrec_train_alloc */
	float *param_mem, *grad_mem, *m_mem, *v_mem;
	int params_borrowed;           /* param_mem is another model's (seqrec_new_infer) */
	size_t nparams;                /* floats in each arena */
	struct seqrec_tensor tensors[SEQREC_MAX_TENSORS];
	int ntensors;
	int adam_t;                    /* AdamW steps taken */

	struct seqrec_acts acts;
	float *act_mem;
	size_t nacts;

	/* the last forward pass, for backward() and the inference helpers */
	int32_t *in;            /* (NI, B, T) copy of the inputs */
	int32_t *pos;           /* (B, T) position rows */
	int32_t *pad;           /* (B) */
	int cur_B, cur_T, cur_train, cur_ntargets;
	uint64_t cur_seed;

	/* sampled softmax */
	int32_t *neg;           /* (neg) this step's negatives */
	float *logq;            /* (V) log of each item's sampling probability */
	double *cdf;            /* (V) cumulative sampling distribution, NULL = uniform */

	float *scores;          /* (V) inference scratch */
	int32_t *enc;           /* (NI, T) inference scratch */
};

/* Creates a model for batches up to B sequences of up to cfg->T events:
 * parameters (zero; see seqrec_init) and activations.  -EINVAL on a bad
 * config, -ENOMEM. */
int  seqrec_new(struct seqrec **out, const struct seqrec_config *cfg, struct kern *k, int B);
void seqrec_free(struct seqrec *m);
/* An inference-only instance (B = 1: one sequence at a time) that shares
 * base's parameter arena instead of copying it: its own activations and
 * scratch, no gradients, optimizer state or sampler (seqrec_train_alloc and
 * seqrec_set_sampling return -EINVAL).  base must outlive it and keep its
 * parameters unchanged meanwhile.  Instances over one base may run in
 * different threads at once, each with its own kern.  -ENOMEM. */
int  seqrec_new_infer(struct seqrec **out, const struct seqrec *base, struct kern *k);
/* Random initialisation from seed: weight matrices N(0, std) (the output
 * projections of each block scaled by 1/sqrt(2L), GPT-2), embeddings
 * N(0, std) with row 0 of the item table zero, layer norms 1 and 0, biases 0.
 * std <= 0: Xavier normal, N(0, 2 / (rows + cols)) per matrix and table, as
 * SASRec's reference implementation does. */
void seqrec_init(struct seqrec *m, uint64_t seed, float std);
/* Initialisation schemes for seqrec_init_scheme:
 *  SCALED  seqrec_init's: N(0, std), the blocks' output projections scaled
 *          by 1/sqrt(2L) (GPT-2)
 *  TORCH   what PyTorch's modules give SASRec+'s code: N(0, std) for every
 *          linear layer and table, unscaled, and the attention's input
 *          projection (q, k, v) Xavier-uniform over its (3C, C) matrix, as
 *          nn.MultiheadAttention initialises it.  On ML-1M it learns faster
 *          per epoch (validation NDCG@10 0.1415 against 0.1391 after 10
 *          epochs with SASRec's wiring, matching PyTorch's 0.1415). */
enum seqrec_init_scheme { SEQREC_INIT_SCALED = 0, SEQREC_INIT_TORCH = 1 };
void seqrec_init_scheme(struct seqrec *m, uint64_t seed, float std, enum seqrec_init_scheme scheme);
const char *seqrec_init_name(enum seqrec_init_scheme scheme);
int seqrec_init_by_name(const char *name);  /* the scheme, or -ENOENT */
/* Gradients and the AdamW moments (three arenas), zeroed.  -ENOMEM. */
int  seqrec_train_alloc(struct seqrec *m);
void seqrec_zero_grad(struct seqrec *m);
/* Sampling distribution of negatives for SEQREC_LOSS_SAMPLED: proportional
 * to counts[i] + 1 over rows 1..V-1 (counts NULL: uniform, the default). */
int  seqrec_set_sampling(struct seqrec *m, const uint64_t *counts);

/* --- training -------------------------------------------------------------- */
struct seqrec_batch {
	int B, T;                /* B <= the model's B, T <= cfg.T */
	const int32_t *inputs;   /* (NI, B, T) slot 0 item rows, then each enabled feature's rows in enum order */
	const int32_t *pad;      /* (B) first real position of each left-padded row, in [0, T] */
	const int32_t *targets;  /* (B, T) item row each position predicts, 0 = none; NULL = no loss */
	uint64_t seed;           /* dropout masks and negatives of this step */
	int mask_seen;           /* full softmax: each target is scored against the items its row
	                          * has not seen so far in the window (kern_xent_shape's seen) */
};
/* Forward pass.  The T slots of a batch are the last T positions of the
 * model's cfg.T (so the latest event always sits at the last position).
 * train: dropout on, and the loss's gradient at the final hidden states is
 * computed in the same pass over the catalog as the loss (the kernels fuse
 * them): it accumulates into grads.wte, so call seqrec_zero_grad() first and
 * seqrec_backward() next.  *loss (may be NULL) gets the mean cross-entropy
 * over the target positions (0 when there are none).  -EINVAL with the
 * offending value when an index is out of range; -ENOMEM. */
int  seqrec_forward(struct seqrec *m, const struct seqrec_batch *b, int train, double *loss);
/* Backward pass of the last train-mode forward: accumulates every
 * parameter's gradient.  -EINVAL if the last forward was not train mode. */
int  seqrec_backward(struct seqrec *m);

struct seqrec_optim {
	float lr, lr_min;         /* peak and final learning rate */
	int warmup, total;        /* steps, for kern_lr_schedule (total 0: constant) */
	float beta1, beta2, eps;
	float weight_decay;
	int decay_all;            /* also decay embeddings, layer norms and biases */
	float clip;               /* global gradient-norm clip, 0 = none */
};
void seqrec_optim_default(struct seqrec_optim *o);
/* One AdamW step with the learning rate of step (adam_t + 1) of the schedule;
 * clips the gradient norm first.  *gnorm (may be NULL) gets the norm before
 * clipping, *lr_used (may be NULL) the rate.  -EINVAL without gradients. */
int  seqrec_step(struct seqrec *m, const struct seqrec_optim *o, float *gnorm, float *lr_used);

/* --- inputs from the store ------------------------------------------------- */
/* Writes the last events of one user (ev[0..n), oldest first) into row b of a
 * (NI, B, T) input batch, left-padded; events whose item the model does not
 * know (item >= V, or 0) are left out.  *pad gets the row's first real
 * position, *used the number of events kept (<= T). */
void seqrec_encode_events(const struct seqrec_config *c, const struct store_event *ev, size_t n,
                          int32_t *inputs, int B, int T, int b, int32_t *pad, int *used);

/* --- inference (no dropout) ------------------------------------------------ */
/* The user representation h(C): the final hidden state of the last position
 * for one sequence inputs (NI, n) of n <= cfg.T events, oldest first, run as
 * a batch of one sequence of length n. */
int  seqrec_user_repr(struct seqrec *m, const int32_t *inputs, int n, float *h);
/* The same from a user's events (oldest first, as store_events_last gives
 * them; pass one more than cfg.T so the first kept event has its
 * predecessor for the gap feature).  *used gets the number of events the
 * representation covers; -ENODATA when none is an item the model knows. */
int  seqrec_user_repr_events(struct seqrec *m, const struct store_event *ev, size_t n, float *h, int *used);
/* The k best items for h, best first, leaving out row 0 and the items in
 * exclude[0..nexclude).  *got = min(k, items left). */
int  seqrec_topk(struct seqrec *m, const float *h, int k, const uint32_t *exclude, size_t nexclude,
                 uint32_t *items, float *scores, int *got);
/* scores[i] = h . item_emb[cand[i]]; every cand[i] in [1, V). */
int  seqrec_score(struct seqrec *m, const float *h, const int32_t *cand, int ncand, float *scores);
/* Right after seqrec_user_repr over n events: how much each history event
 * weighed in the result, from the last block's attention row of the last
 * position, averaged over heads: w[0..n) sums to 1. */
int  seqrec_influence(struct seqrec *m, int n, float *w);
/* The final hidden states of the last forward pass, (cur_B, cur_T, C). */
const float *seqrec_hidden(const struct seqrec *m);

/* --- checkpoints ------------------------------------------------------------
 * A checkpoint is a 128-byte header and the parameter arena:
 *   0   "RECDSEQ1"             magic
 *   8   u32 format version     SEQREC_CKPT_VERSION
 *   12  u32 header bytes       128
 *   16  u32 C, NH, L, T, F, V
 *   40  u32 act, features, scale_emb, loss, neg
 *   60  f32 dropout
 *   64  u64 parameter count    (floats)
 *   72  32 bytes BLAKE2b-256 (crypto_generichash) of the parameter bytes
 *   104 u32 block
 *   108 u32 pos                (0 in checkpoints written before it existed)
 *   112 f32 attn_dropout       (0 in checkpoints written before it existed)
 *   116 zero to 128
 * little-endian, then the parameters as little-endian float32 in arena order. */
#define SEQREC_CKPT_MAGIC    "RECDSEQ1"
#define SEQREC_CKPT_VERSION  1u
#define SEQREC_CKPT_HEADER   128u
#define SEQREC_MODEL_KIND    "sasrec"

size_t seqrec_ckpt_size(const struct seqrec *m);
/* Writes seqrec_ckpt_size(m) bytes into buf (cap bytes).  -ENOSPC if short. */
int  seqrec_serialize(const struct seqrec *m, void *buf, size_t cap);
/* Checks a checkpoint's header alone: 0 and *cfg, or -EINVAL/-EPROTO with
 * what is wrong in why. */
int  seqrec_ckpt_config(const void *buf, size_t len, struct seqrec_config *cfg, char *why, size_t whylen);
/* A new model (for batches of B) from a checkpoint; every header field and
 * the checksum are checked: -EPROTO (magic, version), -EINVAL (truncated,
 * config out of range, checksum mismatch), -ENOMEM; why says which. */
int  seqrec_deserialize(struct seqrec **out, struct kern *k, int B, const void *buf, size_t len,
                        char *why, size_t whylen);
int  seqrec_save_file(const struct seqrec *m, const char *path, char *why, size_t whylen);
int  seqrec_load_file(struct seqrec **out, struct kern *k, int B, const char *path, char *why, size_t whylen);
/* Stores the model as a new version of kind "sasrec" (meta: parent,
 * snapshot_events and metrics as the caller sets them; version and created
 * are filled in). */
int  seqrec_save_store(const struct seqrec *m, struct store *st, struct store_model_meta *meta,
                       char *why, size_t whylen);
/* Loads version (0 = the latest) from the store; *meta (may be NULL) gets its
 * metadata.  -ENOENT when there is none, -EINVAL when it is not a "sasrec". */
int  seqrec_load_store(struct seqrec **out, struct kern *k, int B, struct store *st, uint32_t version,
                       struct store_model_meta *meta, char *why, size_t whylen);

#endif
