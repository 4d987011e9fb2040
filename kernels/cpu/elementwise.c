/* elementwise.c: embedding, layer norm, GELU, ReLU, dropout, add, scale.
 * Row-wise work is split by rows; sums over rows (parameter gradients,
 * scatter-adds) are split by columns, each thread walking every row in
 * order, so results are the same for any thread count. */
#include "config.h"

#include <string.h>

#include "kernels/cpu/cpu.h"

/* ---- embedding ---- */

struct embed_job {
	const struct cpu_vec *vec;
	float *out;
	const float *in;
	const int32_t *idx;
	int N, C;
	struct cpu_chunks q;
	unsigned cmask;       /* backward: classes - 1 */
};

static void embed_fwd_task(void *arg, int tid, int nth)
{
	struct embed_job *j = arg;
	size_t lo, hi;
	while (cpu_chunk(&j->q, &lo, &hi))
		for (size_t n = lo; n < hi; n++)
			j->vec->acc(j->out + n * j->C, j->in + (size_t)j->idx[n] * j->C, (size_t)j->C);
}

void cpu_embed_forward(struct kern *k, float *out, const float *table, const int32_t *idx, int N, int C)
{
	struct cpu *c = cpu_of(k);
	struct embed_job j = { c->vec, out, table, idx, N, C, cpu_chunks((size_t)N, CPU_CHUNK_ROWS), 0 };
	cpu_parallel(c, embed_fwd_task, &j, (size_t)N * C);
}

/* Rows of the table repeat in idx, so threads take classes of table rows
 * (cpu_row_classes) and walk all of idx in order: every row sums its
 * contributions in the same order, whoever does it. */
static void embed_bwd_task(void *arg, int tid, int nth)
{
	struct embed_job *j = arg;
	size_t c0, c1;
	while (cpu_chunk(&j->q, &c0, &c1)) {
		for (int n = 0; n < j->N; n++) {
			int32_t r = j->idx[n];
			if (((unsigned)r >> 3 & j->cmask) == c0)
				j->vec->acc(j->out + (size_t)r * j->C, j->in + (size_t)n * j->C, (size_t)j->C);
		}
	}
}

void cpu_embed_backward(struct kern *k, float *dtable, const float *dout, const int32_t *idx, int N, int C)
{
	struct cpu *c = cpu_of(k);
	unsigned classes = cpu_row_classes(c);
	struct embed_job j = { c->vec, dtable, dout, idx, N, C, cpu_chunks(classes, 1), classes - 1 };
	cpu_parallel(c, embed_bwd_task, &j, (size_t)N * C);
}

/* Column sums: a chunk of columns is summed over all rows into the
 * thread's scratch (no cache line shared with another thread while it
 * works), then added to dst once. */
struct colsum_job {
	const struct cpu_vec *vec;
	float *dst, *ts;
	const float *src;
	size_t ts_stride;
	int N, C;
	struct cpu_chunks q;
};

static void colsum_task(void *arg, int tid, int nth)
{
	struct colsum_job *j = arg;
	float *acc = j->ts + (size_t)tid * j->ts_stride;
	size_t c0, c1;
	while (cpu_chunk(&j->q, &c0, &c1)) {
		memset(acc, 0, (c1 - c0) * sizeof(float));
		for (int n = 0; n < j->N; n++)
			j->vec->acc(acc, j->src + (size_t)n * j->C + c0, c1 - c0);
		j->vec->acc(j->dst + c0, acc, c1 - c0);
	}
}

void cpu_colsum(struct cpu *c, float *dst, const float *src, int N, int C)
{
	size_t w = cpu_col_chunk(c, (size_t)C);
	struct colsum_job j = { c->vec, dst, NULL, src, 0, N, C, cpu_chunks((size_t)C, w) };
	j.ts = cpu_tscratch(c, w, &j.ts_stride);
	cpu_parallel(c, colsum_task, &j, (size_t)N * C);
}

/* ---- layer norm ---- */

struct ln_job {
	const struct cpu_vec *vec;
	float *ts;
	size_t ts_stride;
	float *out, *mean, *rstd;         /* forward */
	float *dinp, *dw, *db;            /* backward */
	const float *inp, *w, *b, *dout;
	const float *cmean, *crstd;
	int N, C;
	struct cpu_chunks q;
};

static void ln_fwd_task(void *arg, int tid, int nth)
{
	struct ln_job *j = arg;
	size_t lo, hi;
	while (cpu_chunk(&j->q, &lo, &hi))
		for (size_t n = lo; n < hi; n++)
			j->vec->layernorm_fwd_row(j->out + n * j->C, j->mean + n, j->rstd + n, j->inp + n * j->C, j->w, j->b, j->C);
}

void cpu_layernorm_forward(struct kern *k, float *out, float *mean, float *rstd, const float *inp,
                           const float *w, const float *b, int N, int C)
{
	struct cpu *c = cpu_of(k);
	struct ln_job j = { .vec = c->vec, .out = out, .mean = mean, .rstd = rstd, .inp = inp, .w = w, .b = b, .N = N, .C = C,
	                    .q = cpu_chunks((size_t)N, CPU_CHUNK_ROWS) };
	cpu_parallel(c, ln_fwd_task, &j, (size_t)N * C);
}

static void ln_bwd_rows_task(void *arg, int tid, int nth)
{
	struct ln_job *j = arg;
	size_t lo, hi;
	while (cpu_chunk(&j->q, &lo, &hi))
		for (size_t n = lo; n < hi; n++)
			j->vec->layernorm_bwd_row(j->dinp + n * j->C, j->dout + n * j->C, j->inp + n * j->C, j->w,
			                          j->cmean[n], j->crstd[n], j->C);
}

/* dw and db as column sums, per thread in scratch first (see colsum_task). */
static void ln_bwd_cols_task(void *arg, int tid, int nth)
{
	struct ln_job *j = arg;
	float *dw = j->ts + (size_t)tid * j->ts_stride, *db = dw + j->q.chunk;
	size_t c0, c1;
	while (cpu_chunk(&j->q, &c0, &c1)) {
		size_t w = c1 - c0;
		memset(dw, 0, 2 * j->q.chunk * sizeof(float));
		for (int n = 0; n < j->N; n++) {
			size_t o = (size_t)n * j->C + c0;
			j->vec->layernorm_param_row(dw, db, j->dout + o, j->inp + o, j->cmean[n], j->crstd[n], (int)w);
		}
		if (j->dw)
			j->vec->acc(j->dw + c0, dw, w);
		if (j->db)
			j->vec->acc(j->db + c0, db, w);
	}
}

void cpu_layernorm_backward(struct kern *k, float *dinp, float *dw, float *db, const float *dout,
                            const float *inp, const float *w, const float *mean, const float *rstd,
                            int N, int C)
{
	struct cpu *c = cpu_of(k);
	struct ln_job j = { .vec = c->vec, .dinp = dinp, .dw = dw, .db = db, .inp = inp, .w = w, .dout = dout,
	                    .cmean = mean, .crstd = rstd, .N = N, .C = C, .q = cpu_chunks((size_t)N, CPU_CHUNK_ROWS) };
	if (dinp)
		cpu_parallel(c, ln_bwd_rows_task, &j, (size_t)N * C);
	if (dw || db) {
		size_t width = cpu_col_chunk(c, (size_t)C);
		j.ts = cpu_tscratch(c, 2 * width, &j.ts_stride);
		j.q = cpu_chunks((size_t)C, width);
		cpu_parallel(c, ln_bwd_cols_task, &j, (size_t)N * C);
	}
}

/* ---- elementwise ---- */

enum ew_op { EW_GELU, EW_GELU_BWD, EW_RELU, EW_RELU_BWD, EW_DROPOUT, EW_ADD, EW_SCALE };

struct ew_job {
	const struct cpu_vec *vec;
	enum ew_op op;
	float *out;
	const float *a, *b;
	size_t n;
	float f;
	uint64_t key;
	uint64_t thresh;
	struct cpu_chunks q;
};


static void ew_span(struct ew_job *j, size_t lo, size_t hi);

static void ew_task(void *arg, int tid, int nth)
{
	struct ew_job *j = arg;
	size_t lo, hi;
	while (cpu_chunk(&j->q, &lo, &hi))
		ew_span(j, lo, hi);
}

static void ew_span(struct ew_job *j, size_t lo, size_t hi)
{
	float *out = j->out;
	const float *a = j->a, *b = j->b;
	switch (j->op) {
	case EW_GELU:
		j->vec->gelu_fwd(out + lo, a + lo, hi - lo);
		break;
	case EW_GELU_BWD:
		j->vec->gelu_bwd(out + lo, a + lo, b + lo, hi - lo);
		break;
	case EW_RELU:
		j->vec->relu_fwd(out + lo, a + lo, hi - lo);
		break;
	case EW_RELU_BWD:   /* a = inp, b = dout */
		j->vec->relu_bwd(out + lo, a + lo, b + lo, hi - lo);
		break;
	case EW_DROPOUT:
		/* In spans of constant high 32 index bits, each with its keys. */
		while (lo < hi) {
			uint64_t hi32 = (uint64_t)lo >> 32;
			uint64_t boundary = (hi32 + 1) << 32;
			size_t end = boundary < (uint64_t)hi ? (size_t)boundary : hi;
			uint64_t kk = cpu_mix64(j->key + hi32 * CPU_GOLDEN64);
			j->vec->dropout(out + lo, a + lo, end - lo, (uint32_t)lo, (uint32_t)kk, (uint32_t)(kk >> 32),
			                (uint32_t)j->thresh, j->f);
			lo = end;
		}
		break;
	case EW_ADD:
		for (size_t i = lo; i < hi; i++)
			out[i] = a[i] + b[i];
		break;
	case EW_SCALE:
		for (size_t i = lo; i < hi; i++)
			out[i] *= j->f;
		break;
	}
}

static void ew_run(struct kern *k, enum ew_op op, float *out, const float *a, const float *b, size_t n, float f)
{
	struct cpu *c = cpu_of(k);
	struct ew_job j = { .vec = c->vec, .op = op, .out = out, .a = a, .b = b, .n = n, .f = f,
	                    .q = cpu_chunks(n, CPU_CHUNK_ELEMS) };
	cpu_parallel(c, ew_task, &j, n);
}

void cpu_gelu_forward(struct kern *k, float *out, const float *inp, size_t n)
{
	ew_run(k, EW_GELU, out, inp, NULL, n, 0.0f);
}

void cpu_gelu_backward(struct kern *k, float *dinp, const float *inp, const float *dout, size_t n)
{
	ew_run(k, EW_GELU_BWD, dinp, inp, dout, n, 0.0f);
}

void cpu_relu_forward(struct kern *k, float *out, const float *inp, size_t n)
{
	ew_run(k, EW_RELU, out, inp, NULL, n, 0.0f);
}

void cpu_relu_backward(struct kern *k, float *dinp, const float *inp, const float *dout, size_t n)
{
	ew_run(k, EW_RELU_BWD, dinp, inp, dout, n, 0.0f);
}

void cpu_add(struct kern *k, float *out, const float *a, const float *b, size_t n)
{
	ew_run(k, EW_ADD, out, a, b, n, 0.0f);
}

void cpu_scale(struct kern *k, float *x, float a, size_t n)
{
	ew_run(k, EW_SCALE, x, x, NULL, n, a);
}

/* Inverted dropout (Srivastava et al., JMLR 2014): the mask is regenerated
 * from (seed, i), so forward and backward apply the same one. */
static void dropout(struct kern *k, float *out, const float *inp, size_t n, float p, uint64_t seed)
{
	struct cpu *c = cpu_of(k);
	if (!(p > 0.0f)) {
		if (out != inp)
			memmove(out, inp, n * sizeof(float));
		return;
	}
	if (p >= 1.0f) {
		memset(out, 0, n * sizeof(float));
		return;
	}
	struct ew_job j = { .vec = c->vec, .op = EW_DROPOUT, .out = out, .a = inp, .n = n,
	                    .f = 1.0f / (1.0f - p), .key = cpu_mix64(seed),
	                    .thresh = (uint64_t)((double)p * 16777216.0 + 0.5), .q = cpu_chunks(n, CPU_CHUNK_ELEMS) };
	cpu_parallel(c, ew_task, &j, n);
}

void cpu_dropout_forward(struct kern *k, float *out, const float *inp, size_t n, float p, uint64_t seed)
{
	dropout(k, out, inp, n, p, seed);
}

void cpu_dropout_backward(struct kern *k, float *dinp, const float *dout, size_t n, float p, uint64_t seed)
{
	dropout(k, dinp, dout, n, p, seed);
}
