/* kernels.h: the math recd's models are built from, as a backend interface
 * (a table of function pointers, as ggml does) so that a CUDA backend can be
 * added without touching model code.  The CPU backend (kernels/cpu/) is the
 * reference every other backend is tested against, op by op.
 *
 * Legend (llm.c's):  B batch, T sequence length, C channels, NH heads,
 * hs = C / NH head size, N rows (usually B*T), OC output channels,
 * V catalog size (rows of the item table; row 0 is padding), F feed-forward
 * width.  Tensors are row-major float32, the last dimension contiguous.
 *
 * Gradient conventions (say it once): parameter gradients ACCUMULATE (+=),
 * so a step can sum several micro-batches; activation gradients are WRITTEN
 * (=).  Where an activation gradient flows into a tensor from two places
 * (a residual), the model adds them explicitly with kern->add.
 *
 * Every op is deterministic for a given thread count: reductions across
 * threads are done in a fixed order.
 */
#ifndef RECD_KERNELS_H
#define RECD_KERNELS_H

#include <stddef.h>
#include <stdint.h>

struct kern;  /* a backend instance: thread pool, scratch memory */

/* Attention over a batch of left-padded sequences: position t of sequence b
 * is a real event when t >= pad[b], so keys before pad[b] are masked and the
 * outputs of padding queries are zero.  Causal: query t sees keys s <= t.
 *
 * Dropout on the attention probabilities (dropout > 0, training; as
 * PyTorch's nn.MultiheadAttention): O_t = sum_s P_ts m_ts / (1 - p) V_s with
 * the mask m_ts of head h of sequence b a pure function of (seed, b, h, t, s),
 * so the backward pass regenerates it and no (T, T) mask is stored:
 * m_ts is dropout_forward's mask bit, for the same p and seed, of element
 * index ((b NH + h) T + t) 2^32 + s.  Every backend computes the same mask.
 * The log-sum-exp kept for the backward pass is the undropped softmax's. */
struct kern_attn_shape {
	int B, T, C, NH;
	const int32_t *pad;  /* (B) first real position of each sequence */
	float dropout;       /* probability of dropping an attention weight, in [0, 1); 0: none */
	uint64_t seed;       /* of the dropout mask */
};

/* Rows that carry a training target: row r of h predicts item target[r];
 * rows with target 0 (padding) are skipped by the loss. */
struct kern_xent_shape {
	int N, C, V;
	const int32_t *target; /* (N) item ids in [0, V) */
	/* Optional (NULL: none): the rows are sequences of T, and row r's
	 * softmax leaves out the items seen[r - r % T] .. seen[r] (its
	 * sequence's inputs so far) other than its own target, as ranking
	 * leaves out a user's history.  Ids outside [1, V) are ignored. */
	const int32_t *seen;
	int T;
};

struct kern_adamw {
	float lr, beta1, beta2, eps, weight_decay;
	int   t;               /* step number, from 1, for bias correction */
};

struct kern_ops {
	const char *name;

	/* out(N,OC) = inp(N,C) @ w(OC,C)^T + bias(OC); bias may be NULL. */
	void (*matmul_forward)(struct kern *k, float *out, const float *inp, const float *w,
	                       const float *bias, int N, int C, int OC);
	/* dinp(N,C) = dout @ w; dw(OC,C) += dout^T @ inp; dbias(OC) += sum over rows.
	 * dinp, dbias may be NULL when not needed. */
	void (*matmul_backward)(struct kern *k, float *dinp, float *dw, float *dbias,
	                        const float *dout, const float *inp, const float *w, int N, int C, int OC);

	/* out(N,C) += table[idx[n]] (adds, so several feature tables sum into one
	 * input); dtable += scatter of dout by idx.  idx[n] < rows is checked by
	 * the caller. */
	void (*embed_forward)(struct kern *k, float *out, const float *table, const int32_t *idx, int N, int C);
	void (*embed_backward)(struct kern *k, float *dtable, const float *dout, const int32_t *idx, int N, int C);

	/* Layer norm over C: out = (x - mean) * rstd * w + b; keeps mean(N), rstd(N). */
	void (*layernorm_forward)(struct kern *k, float *out, float *mean, float *rstd, const float *inp,
	                          const float *w, const float *b, int N, int C);
	void (*layernorm_backward)(struct kern *k, float *dinp, float *dw, float *db, const float *dout,
	                           const float *inp, const float *w, const float *mean, const float *rstd,
	                           int N, int C);

	/* Causal multi-head self-attention, flash style: never stores (T,T)
	 * scores; keeps the row log-sum-exp lse(B,NH,T) for the backward pass,
	 * which recomputes the scores.  qkv(B,T,3C) holds q, k, v side by side;
	 * out(B,T,C) is the heads' outputs concatenated. */
	void (*attention_forward)(struct kern *k, float *out, float *lse, const float *qkv,
	                          const struct kern_attn_shape *s);
	/* dqkv(B,T,3C) is written.  s (dropout and seed included) must be the
	 * forward pass's. */
	void (*attention_backward)(struct kern *k, float *dqkv, const float *dout, const float *out,
	                           const float *lse, const float *qkv, const struct kern_attn_shape *s);
	/* The attention weights of one query row, per head, for explanations:
	 * w(NH, T) = softmax of query t of sequence b over its visible keys
	 * (zeros for masked keys).  Recomputed from qkv and lse; s->dropout is
	 * not applied. */
	void (*attention_row)(struct kern *k, float *w, const float *qkv, const float *lse,
	                      const struct kern_attn_shape *s, int b, int t);

	void (*gelu_forward)(struct kern *k, float *out, const float *inp, size_t n);
	void (*gelu_backward)(struct kern *k, float *dinp, const float *inp, const float *dout, size_t n);
	void (*relu_forward)(struct kern *k, float *out, const float *inp, size_t n);
	void (*relu_backward)(struct kern *k, float *dinp, const float *inp, const float *dout, size_t n);

	/* Inverted dropout: out = inp * mask / (1 - p).  The mask is a pure
	 * function of (seed, element index), so the backward pass regenerates it
	 * instead of storing it, and results do not depend on the thread count. */
	void (*dropout_forward)(struct kern *k, float *out, const float *inp, size_t n, float p, uint64_t seed);
	void (*dropout_backward)(struct kern *k, float *dinp, const float *dout, size_t n, float p, uint64_t seed);

	/* out = a + b (out may alias a or b). */
	void (*add)(struct kern *k, float *out, const float *a, const float *b, size_t n);

	/* Softmax cross-entropy of h(N,C) against every row of the item table
	 * emb(V,C) (logits = h @ emb^T, row 0 = padding is excluded from the
	 * softmax), computed in blocks of rows so memory stays bounded whatever V
	 * is.  Returns the summed loss over rows with a target, and writes
	 * dh(N,C) (=) and accumulates demb(V,C) (+=), both scaled by dscale
	 * (usually 1 / number of target rows).  dh and demb NULL: loss only. */
	double (*xent_full)(struct kern *k, float *dh, float *demb, const float *h, const float *emb,
	                    const struct kern_xent_shape *s, float dscale);
	/* Sampled softmax with log-Q correction (Yi et al., RecSys 2019): each
	 * row scores its target and the S shared negatives neg[S], with logit
	 * corrections -logq[item]; a negative equal to the row's target is
	 * masked.  Same outputs as xent_full; s->seen is not used. */
	double (*xent_sampled)(struct kern *k, float *dh, float *demb, const float *h, const float *emb,
	                       const struct kern_xent_shape *s, const int32_t *neg, int S,
	                       const float *logq, float dscale);
	/* Scores of candidates for inference: out(N, ncand) = h @ emb[cand]^T;
	 * cand NULL scores every row of emb (ncand = V). */
	void (*score)(struct kern *k, float *out, const float *h, const float *emb, const int32_t *cand,
	              int N, int C, int ncand);

	/* Sum of squares of g(n), in double, for gradient-norm clipping. */
	double (*sumsq)(struct kern *k, const float *g, size_t n);
	void (*scale)(struct kern *k, float *x, float a, size_t n);
	/* AdamW (Loshchilov & Hutter): decoupled weight decay applied to the
	 * parameters where decay_mask is NULL or decay_mask[i] != 0. */
	void (*adamw)(struct kern *k, float *param, const float *grad, float *m, float *v, size_t n,
	              const struct kern_adamw *o, const uint8_t *decay_mask);
};

/* A backend: the op table plus the instance it runs on. */
struct kern {
	const struct kern_ops *ops;
	int threads;
	void *impl;
};

/* The CPU backend with nthreads worker threads (0: the number of cores).
 * BLAS (OpenBLAS) is used for the matmuls with the same thread count. */
int  kern_cpu_new(struct kern **out, int nthreads);
void kern_free(struct kern *k);

/* Learning-rate schedule: linear warm-up over warmup steps from 0 to lr_max,
 * then cosine decay to lr_min at total steps (constant lr_max if total is 0). */
float kern_lr_schedule(int step, int warmup, int total, float lr_max, float lr_min);

#endif
