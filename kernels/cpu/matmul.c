/* matmul.c: the dense layers and inference scoring, through OpenBLAS's
 * sgemm (row-major); the bias and its gradient through our pool. */
#include "config.h"

#include <string.h>

#include "kernels/cpu/cpu.h"

struct bias_job {
	float *out;
	const float *bias;
	int N, OC;
	struct cpu_chunks q;
};

static void bias_fill_task(void *arg, int tid, int nth)
{
	struct bias_job *j = arg;
	size_t lo, hi;
	while (cpu_chunk(&j->q, &lo, &hi))
		for (size_t n = lo; n < hi; n++)
			memcpy(j->out + n * j->OC, j->bias, (size_t)j->OC * sizeof(float));
}

/* out(N,OC) = inp(N,C) @ w(OC,C)^T + bias: the bias is copied into every
 * row first and sgemm adds to it (beta 1). */
void cpu_matmul_forward(struct kern *k, float *out, const float *inp, const float *w, const float *bias,
                        int N, int C, int OC)
{
	struct cpu *c = cpu_of(k);
	float beta = 0.0f;
	if (bias) {
		struct bias_job j = { out, bias, N, OC, cpu_chunks((size_t)N, CPU_CHUNK_ROWS) };
		cpu_parallel(c, bias_fill_task, &j, (size_t)N * OC);
		beta = 1.0f;
	}
	cpu_sgemm(c, 0, 1, N, OC, C, 1.0f, inp, C, w, C, beta, out, OC);
}

/* dinp(N,C) = dout(N,OC) @ w(OC,C); dw(OC,C) += dout^T @ inp; dbias += column sums of dout. */
void cpu_matmul_backward(struct kern *k, float *dinp, float *dw, float *dbias, const float *dout,
                         const float *inp, const float *w, int N, int C, int OC)
{
	struct cpu *c = cpu_of(k);
	if (dinp)
		cpu_sgemm(c, 0, 0, N, C, OC, 1.0f, dout, OC, w, C, 0.0f, dinp, C);
	if (dw)
		cpu_sgemm(c, 1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dw, C);
	if (dbias)
		cpu_colsum(c, dbias, dout, N, OC);
}

/* Scores for a few users go candidate by candidate (one pass over the item
 * rows, nothing copied); for many, candidates are gathered in blocks and
 * scored by sgemm. */
#define SCORE_DIRECT_ROWS 4

struct score_job {
	const struct cpu_vec *vec;
	float *out;
	const float *h, *emb;
	const int32_t *cand;
	int N, C, ncand;
	struct cpu_chunks q;
};

static void score_direct_task(void *arg, int tid, int nth)
{
	struct score_job *j = arg;
	size_t lo, hi;
	while (cpu_chunk(&j->q, &lo, &hi)) {
		for (int n = 0; n < j->N; n++) {
			const float *h = j->h + (size_t)n * j->C;
			float *o = j->out + (size_t)n * j->ncand;
			if (!j->cand) {
				j->vec->scores(o + lo, h, j->emb + lo * j->C, (size_t)j->C, (int)(hi - lo), j->C, 1.0f);
				continue;
			}
			for (size_t i = lo; i < hi; i++)
				o[i] = j->vec->dot(h, j->emb + (size_t)j->cand[i] * j->C, (size_t)j->C);
		}
	}
}

struct gather_job {
	float *dst;
	const float *src;
	const int32_t *idx;
	int n, C;
	struct cpu_chunks q;
};

static void gather_task(void *arg, int tid, int nth)
{
	struct gather_job *j = arg;
	size_t lo, hi;
	while (cpu_chunk(&j->q, &lo, &hi))
		for (size_t i = lo; i < hi; i++)
			memcpy(j->dst + i * j->C, j->src + (size_t)j->idx[i] * j->C, (size_t)j->C * sizeof(float));
}

void cpu_gather_rows(struct cpu *c, float *dst, const float *src, const int32_t *idx, int n, int C)
{
	struct gather_job gj = { dst, src, idx, n, C, cpu_chunks((size_t)n, CPU_CHUNK_ROWS) };
	cpu_parallel(c, gather_task, &gj, (size_t)n * C);
}

void cpu_score(struct kern *k, float *out, const float *h, const float *emb, const int32_t *cand, int N,
               int C, int ncand)
{
	struct cpu *c = cpu_of(k);
	if (N <= 0 || ncand <= 0)
		return;
	if (N <= SCORE_DIRECT_ROWS) {
		/* Chunks of 256 candidates: a multiple of 16, as scores() needs. */
		struct score_job j = { c->vec, out, h, emb, cand, N, C, ncand, cpu_chunks((size_t)ncand, 256) };
		cpu_parallel(c, score_direct_task, &j, (size_t)ncand * C * N);
		return;
	}
	if (!cand) {
		cpu_sgemm(c, 0, 1, N, ncand, C, 1.0f, h, C, emb, C, 0.0f, out, ncand);
		return;
	}
	int blk = c->tune.xent_cols;
	float *g = cpu_scratch(c, (size_t)blk * C);
	for (int j0 = 0; j0 < ncand; j0 += blk) {
		int nb = ncand - j0 < blk ? ncand - j0 : blk;
		cpu_gather_rows(c, g, emb, cand + j0, nb, C);
		cpu_sgemm(c, 0, 1, N, nb, C, 1.0f, h, C, g, C, 0.0f, out + j0, ncand);
	}
}
