/* cpu.h: the CPU backend's insides, shared by the files of kernels/cpu/:
 * the instance (thread pool, scratch, tuning), the parallel-for, and the
 * table of row kernels that exists twice, AVX2/FMA and portable C.
 *
 * Threads and determinism: every op splits its work into pieces whose
 * results do not depend on how many threads compute them (rows, columns,
 * (sequence, head) pairs, fixed-size chunks summed in index order), so the
 * CPU backend's ops give bitwise the same results for any thread count,
 * the matmuls included: OpenBLAS runs single-threaded on pieces whose
 * bounds depend on the shape alone (gemm.c).
 *
 * An instance is used by one caller thread at a time. */
#ifndef RECD_KERNELS_CPU_H
#define RECD_KERNELS_CPU_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/backend.h"
#include "kernels/kernels.h"

#define CPU_MAX_THREADS 256

/* Knobs for tests and benchmarks; kern_cpu_new picks the defaults. */
struct kern_cpu_tune {
	int simd;           /* 1: AVX2/FMA row kernels when the CPU has them; 0: portable C */
	int xent_rows;      /* rows of h per cross-entropy block */
	int xent_cols;      /* catalog rows per block; V larger than this takes two passes */
	size_t min_work;    /* below this many elements of work an op runs on the caller alone */
	size_t min_work_cold; /* the same while the workers sleep: waking one costs 50-100 us */
};
void kern_cpu_get_tune(const struct kern *k, struct kern_cpu_tune *t);
/* Returns 0, or -EINVAL for a value out of range (nothing is changed then). */
int  kern_cpu_set_tune(struct kern *k, const struct kern_cpu_tune *t);
/* The row kernels in use: "avx2" or "generic". */
const char *kern_cpu_simd_name(const struct kern *k);
/* How many times a worker thread has joined a job (tests check that the
 * pool really splits work). */
unsigned long kern_cpu_joined(const struct kern *k);

/* Row kernels: the loops that BLAS does not cover, one query row, one
 * layer-norm row or one span of elements at a time. */
struct adamw_coef {
	float lr, beta1, beta2, eps, decay; /* decay = lr * weight_decay */
	float bc1, bc2;                     /* 1 - beta^t, bias corrections */
};
/* Query rows per tile in the attention backward pass. */
#define CPU_ATTN_TILE 32

/* Dropout on attention probabilities (kernels.h): the weight of key j (from
 * the first visible key) in query row i (from the row at row0) is kept when
 * drop_keep(j0 + j, ka, kb, thresh) with (ka, kb) the halves of
 * cpu_mix64(key + (row0 + i) CPU_GOLDEN64): the mask of the dropout op's
 * element (row0 + i) 2^32 + j0 + j.  Kept weights are multiplied by f. */
struct cpu_attn_drop {
	uint64_t key;     /* cpu_mix64(seed) */
	uint64_t row0;    /* (b NH + h) T + the first row's position */
	uint32_t j0;      /* the first visible key's position */
	uint32_t thresh;  /* round(p 2^24) */
	float f;          /* 1 / (1 - p) */
};

struct cpu_vec {
	const char *name;
	/* Attention for one query row with L visible keys, k and v rows stride
	 * floats apart: out (hs) written, returns the row's log-sum-exp (of the
	 * undropped softmax).  sc is L floats of scratch.  drop: NULL, or the
	 * row's dropout (row0 is this row's). */
	float (*attn_fwd_row)(float *out, float *sc, const float *q, const float *k, const float *v,
	                      size_t stride, int L, int hs, float scale, const struct cpu_attn_drop *drop);
	/* The backward pass of one (sequence, head) over its n real positions:
	 * q, k, v, dq, dk, dv rows stride apart, out, dout rows ostride apart,
	 * lse (n).  dq written; dk, dv accumulated.  Scratch: 2 CPU_ATTN_TILE n.
	 * drop: NULL, or the forward pass's dropout (row0 is the first real row's). */
	void (*attn_bwd_seq)(float *dq, float *dk, float *dv, float *scratch, const float *q, const float *k,
	                     const float *v, const float *out, const float *dout, const float *lse,
	                     size_t stride, size_t ostride, int n, int hs, float scale,
	                     const struct cpu_attn_drop *drop);
	/* The row's softmax weights p (L) from the scores and lse. */
	void (*attn_probs_row)(float *p, const float *q, const float *k, size_t stride, int L, int hs,
	                       float scale, float lse);
	void (*layernorm_fwd_row)(float *out, float *mean, float *rstd, const float *x, const float *w,
	                          const float *b, int C);
	void (*layernorm_bwd_row)(float *dx, const float *dout, const float *x, const float *w, float mean,
	                          float rstd, int C);
	/* dw += dout * (x - mean) * rstd and db += dout over n columns of one row. */
	void (*layernorm_param_row)(float *dw, float *db, const float *dout, const float *x, float mean,
	                            float rstd, int n);
	/* y += x */
	void (*acc)(float *y, const float *x, size_t n);
	/* x *= a */
	void (*vscale)(float *x, size_t n, float a);
	/* out = max(inp, 0), NaN kept; dinp = dout where inp > 0, else 0 */
	void (*relu_fwd)(float *out, const float *x, size_t n);
	void (*relu_bwd)(float *dx, const float *x, const float *dout, size_t n);
	/* out[i] = in[i] * f when drop_keep(lo0 + i, ka, kb, thresh), else 0;
	 * lo0 + n must not pass 2^32. */
	void (*dropout)(float *out, const float *in, size_t n, uint32_t lo0, uint32_t ka, uint32_t kb,
	                uint32_t thresh, float f);
	float (*vmax)(const float *x, size_t n);
	/* x = exp(x - sub) in place; returns the sum of the new x. */
	float (*expsub_sum)(float *x, size_t n, float sub);
	/* x = exp(x - sub) * mul in place. */
	void (*expsub_scale)(float *x, size_t n, float sub, float mul);
	float (*dot)(const float *a, const float *b, size_t n);
	/* sc[j] = scale q . k_j for L rows k_j stride apart; rows are taken in
	 * groups from the first, so callers split at multiples of 16. */
	void (*scores)(float *sc, const float *q, const float *k, size_t stride, int L, int hs, float scale);
	void (*gelu_fwd)(float *out, const float *x, size_t n);
	void (*gelu_bwd)(float *dx, const float *x, const float *dout, size_t n);
	void (*adamw)(float *p, const float *g, float *m, float *v, const uint8_t *mask, size_t n,
	              const struct adamw_coef *c);
	double (*sumsq)(const float *x, size_t n);
};
extern const struct cpu_vec cpu_vec_generic;

/* Dropout's mask, a pure function of the element index, so forward and
 * backward regenerate it and threads need not share a generator state:
 * Wellons' lowbias32 integer hash (2018), twice, keyed by (ka, kb) drawn
 * from the seed and the index's high 32 bits.  32-bit lanes, so the AVX2
 * kernel computes the same mask eight at a time.  Element kept when the
 * hash's top 24 bits are >= thresh = round(p 2^24). */
static inline uint32_t lowbias32(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352du;
	x ^= x >> 15;
	x *= 0x846ca68bu;
	x ^= x >> 16;
	return x;
}

static inline int drop_keep(uint32_t lo, uint32_t ka, uint32_t kb, uint32_t thresh)
{
	return (lowbias32(lowbias32(lo ^ ka) + kb) >> 8) >= thresh;
}

/* splitmix64's output function (Steele, Lea & Flood, OOPSLA 2014): turns a
 * seed into the key, and the key and an index's high 32 bits into the
 * (ka, kb) of drop_keep(). */
#define CPU_GOLDEN64 0x9e3779b97f4a7c15ull
static inline uint64_t cpu_mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}
/* vec_avx2.c needs GCC's or clang's target pragmas; other compilers and
 * architectures get the portable kernels only. */
#if defined(__x86_64__) && defined(__GNUC__)
#define CPU_HAVE_AVX2_BUILD 1
extern const struct cpu_vec cpu_vec_avx2;
#endif

typedef void (*cpu_task_fn)(void *arg, int tid, int nth);

struct cpu {
	struct kern_backend base;   /* first: kern_free finds destroy here */
	struct kern kern;
	const struct cpu_vec *vec;
	struct kern_cpu_tune tune;
	int nthreads;

	/* The pool: nthreads - 1 workers; the caller is thread 0.  A job is
	 * published in state (see cpu.c); workers spin briefly, then sleep on
	 * cv_work.  tid only picks a thread's scratch: which thread computes
	 * which chunk of an op changes nothing in its results. */
	pthread_t *workers;
	pthread_mutex_t mu;
	pthread_cond_t cv_work, cv_done;
	uint64_t state;             /* atomic: generation, open flag, workers inside */
	uint32_t gen;               /* the caller's generation counter */
	unsigned sleeping;          /* atomic: workers asleep on cv_work */
	unsigned long joined;       /* atomic: times a worker joined a job */
	int stop;
	int job_nth;                /* threads that may take part in the current job */
	cpu_task_fn job_fn;
	void *job_arg;

	/* Scratch, grown on demand and kept: floats for the caller's buffers,
	 * per-thread rows for attention. */
	float *scratch;
	size_t scratch_cap;
	float *tscratch;
	size_t tscratch_cap;        /* floats per thread */
	float *gscratch;            /* sgemm's partial products (gemm.c) */
	size_t gscratch_cap;
};

static inline struct cpu *cpu_of(struct kern *k)
{
	return (struct cpu *)k->impl;
}

/* Runs fn(arg, tid, nth) for tid in [0, nth) and returns when all are done;
 * nth is 1 when work (in elements) is below tune.min_work, or below
 * tune.min_work_cold while workers sleep.  That choice depends on timing,
 * which is safe only because every op's results are the same for any nth. */
void cpu_parallel(struct cpu *c, cpu_task_fn fn, void *arg, size_t work);

/* At least n floats of caller scratch, 64-byte aligned, valid until the next
 * call.  The ops cannot return an error, so running out of memory here aborts
 * with a message; the sizes are bounded by the tuning, not by V or N. */
float *cpu_scratch(struct cpu *c, size_t n);
/* cpu_sgemm's own scratch, apart from cpu_scratch's, which callers of
 * cpu_sgemm hold while they call it. */
float *cpu_gemm_scratch(struct cpu *c, size_t n);
/* At least n floats per thread; thread tid's part starts at tid * stride. */
float *cpu_tscratch(struct cpu *c, size_t n, size_t *stride);

/* Work handed out in chunks from a shared counter: a thread that the OS
 * delays (this machine has other work) does not hold up the others, and
 * what a chunk computes does not depend on which thread takes it.  chunk
 * is a multiple of any alignment the op needs. */
struct cpu_chunks {
	size_t n, chunk;
	size_t next;   /* atomic */
};

static inline struct cpu_chunks cpu_chunks(size_t n, size_t chunk)
{
	struct cpu_chunks q = { n, chunk ? chunk : 1, 0 };
	return q;
}

/* Chunk sizes: elementwise ops (a multiple of 16), rows of C-wide ops. */
#define CPU_CHUNK_ELEMS 16384
#define CPU_CHUNK_ROWS  64

/* How finely to split work whose results do not depend on the split at all,
 * so it can follow the thread count: column sums (each column summed over
 * the rows in order), in one chunk of columns per thread, a multiple of 16
 * (a cache line); and scatter-adds by row index, in classes of destination
 * rows, (row / 8) & (classes - 1), a power of two, two per thread. */
static inline size_t cpu_col_chunk(const struct cpu *c, size_t C)
{
	size_t w = (C + (size_t)c->nthreads - 1) / (size_t)c->nthreads;
	return (w + 15) & ~(size_t)15;
}

static inline unsigned cpu_row_classes(const struct cpu *c)
{
	unsigned k = 1;
	while (c->nthreads > 1 && k < 2u * (unsigned)c->nthreads)
		k *= 2;
	return k;
}

/* The next chunk [lo, hi); 0 when none is left. */
static inline int cpu_chunk(struct cpu_chunks *q, size_t *lo, size_t *hi)
{
	size_t i = __atomic_fetch_add(&q->next, 1, __ATOMIC_RELAXED);
	if (i >= (q->n + q->chunk - 1) / q->chunk)
		return 0;
	*lo = i * q->chunk;
	*hi = *lo + q->chunk < q->n ? *lo + q->chunk : q->n;
	return 1;
}

/* The ops, by file. */
void cpu_matmul_forward(struct kern *k, float *out, const float *inp, const float *w, const float *bias,
                        int N, int C, int OC);
void cpu_matmul_backward(struct kern *k, float *dinp, float *dw, float *dbias, const float *dout,
                         const float *inp, const float *w, int N, int C, int OC);
void cpu_score(struct kern *k, float *out, const float *h, const float *emb, const int32_t *cand, int N,
               int C, int ncand);
/* dst(n, C) = rows idx[0..n) of src. */
void cpu_gather_rows(struct cpu *c, float *dst, const float *src, const int32_t *idx, int n, int C);
/* Cm(M,N) = alpha op(A) op(B) + beta Cm, row-major; op transposes when
 * trans*.  Split over the pool in pieces that depend on the shape only, so
 * the result is the same for any thread count (gemm.c). */
void cpu_sgemm(struct cpu *c, int transa, int transb, int M, int N, int K, float alpha, const float *A,
               int lda, const float *B, int ldb, float beta, float *Cm, int ldc);

void cpu_attention_forward(struct kern *k, float *out, float *lse, const float *qkv,
                           const struct kern_attn_shape *s);
void cpu_attention_backward(struct kern *k, float *dqkv, const float *dout, const float *out,
                            const float *lse, const float *qkv, const struct kern_attn_shape *s);
void cpu_attention_row(struct kern *k, float *w, const float *qkv, const float *lse,
                       const struct kern_attn_shape *s, int b, int t);

double cpu_xent_full(struct kern *k, float *dh, float *demb, const float *h, const float *emb,
                     const struct kern_xent_shape *s, float dscale);
double cpu_xent_sampled(struct kern *k, float *dh, float *demb, const float *h, const float *emb,
                        const struct kern_xent_shape *s, const int32_t *neg, int S, const float *logq,
                        float dscale);

void cpu_embed_forward(struct kern *k, float *out, const float *table, const int32_t *idx, int N, int C);
void cpu_embed_backward(struct kern *k, float *dtable, const float *dout, const int32_t *idx, int N, int C);
void cpu_layernorm_forward(struct kern *k, float *out, float *mean, float *rstd, const float *inp,
                           const float *w, const float *b, int N, int C);
void cpu_layernorm_backward(struct kern *k, float *dinp, float *dw, float *db, const float *dout,
                            const float *inp, const float *w, const float *mean, const float *rstd,
                            int N, int C);
void cpu_gelu_forward(struct kern *k, float *out, const float *inp, size_t n);
void cpu_gelu_backward(struct kern *k, float *dinp, const float *inp, const float *dout, size_t n);
void cpu_relu_forward(struct kern *k, float *out, const float *inp, size_t n);
void cpu_relu_backward(struct kern *k, float *dinp, const float *inp, const float *dout, size_t n);
void cpu_dropout_forward(struct kern *k, float *out, const float *inp, size_t n, float p, uint64_t seed);
void cpu_dropout_backward(struct kern *k, float *dinp, const float *dout, size_t n, float p, uint64_t seed);
void cpu_add(struct kern *k, float *out, const float *a, const float *b, size_t n);
void cpu_scale(struct kern *k, float *x, float a, size_t n);
/* Adds src(N, C) into dst(N, C) columnwise-parallel: dst[c] += sum over rows,
 * in row order, so the result does not depend on the thread count. */
void cpu_colsum(struct cpu *c, float *dst, const float *src, int N, int C);

double cpu_sumsq(struct kern *k, const float *g, size_t n);
void cpu_adamw(struct kern *k, float *param, const float *grad, float *m, float *v, size_t n,
               const struct kern_adamw *o, const uint8_t *decay_mask);

#endif
