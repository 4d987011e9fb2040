/* test_kernels_grad.c: the CPU kernels against naive double-precision
 * references (forward) and central finite differences (every backward pass,
 * with respect to every input and parameter), for the AVX2 and the portable
 * row kernels, 1 and 2 threads; then determinism (bitwise, run to run and
 * 1 vs 2 threads), AdamW against a hand computation, and the lr schedule.
 *
 * Finite differences: the loss is sum(out * R) for a fixed random R (or the
 * op's own loss for cross-entropy), so dL/dout = R; each element x_i is
 * moved by +-eps and (L+ - L-) / (x+ - x-) must match the analytic gradient
 * within ATOL + RTOL * max(|fd|, |g|). */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu.h"
#include "kernels/kernels.h"
#include "tests/test.h"

#define EPS  1e-3
#define ATOL 1e-3
#define RTOL 1e-2

static struct kern *K;       /* backend under test */
static const char *config;   /* its description, for messages */
static int failures;

/* ---- random numbers (xorshift64*) ---- */

static uint64_t rng = 88172645463325252ull;

static double urand(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (double)((rng * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

/* Uniform in [-a, a). */
static void fill(float *x, size_t n, double a)
{
	for (size_t i = 0; i < n; i++)
		x[i] = (float)((2.0 * urand() - 1.0) * a);
}

static float *falloc(size_t n)
{
	float *p = calloc(n ? n : 1, sizeof(float));
	CHECK(p);
	return p;
}

static float *frand(size_t n, double a)
{
	float *p = falloc(n);
	fill(p, n, a);
	return p;
}

static float *fdup(const float *x, size_t n)
{
	float *p = falloc(n);
	memcpy(p, x, n * sizeof(float));
	return p;
}

static double dotR(const float *out, const float *R, size_t n)
{
	double s = 0.0;
	for (size_t i = 0; i < n; i++)
		s += (double)out[i] * R[i];
	return s;
}

/* ---- comparisons ---- */

static void expect_close(const char *what, const float *got, const double *want, size_t n, double atol, double rtol)
{
	for (size_t i = 0; i < n; i++) {
		double g = got[i], w = want[i];
		if (!(fabs(g - w) <= atol + rtol * fabs(w))) {
			fprintf(stderr, "[%s] %s[%zu] = %.7g, expected %.7g\n", config, what, i, g, w);
			failures++;
			return;
		}
	}
}

static void expect_closef(const char *what, const float *got, const float *want, size_t n, double atol, double rtol)
{
	for (size_t i = 0; i < n; i++) {
		double g = got[i], w = want[i];
		if (!(fabs(g - w) <= atol + rtol * fabs(w))) {
			fprintf(stderr, "[%s] %s[%zu] = %.7g, expected %.7g\n", config, what, i, g, w);
			failures++;
			return;
		}
	}
}

static void expect_same(const char *what, const void *a, const void *b, size_t bytes)
{
	if (memcmp(a, b, bytes) != 0) {
		fprintf(stderr, "[%s] %s: results differ bitwise\n", config, what);
		failures++;
	}
}

/* Central differences of f with respect to x[0..n) against g[0..n). */
typedef double (*loss_fn)(void *ctx);

/* Large tensors are sampled: every step-th element, step odd so that it
 * walks across rows and the q, k, v parts alike. */
#define FD_MAX 1500

static void fd_check(const char *what, float *x, const float *g, size_t n, loss_fn f, void *ctx)
{
	int bad = 0;
	size_t step = n > FD_MAX ? (n / FD_MAX) | 1 : 1;
	for (size_t i = 0; i < n; i += step) {
		float x0 = x[i];
		float xp = (float)(x0 + EPS), xm = (float)(x0 - EPS);
		x[i] = xp;
		double lp = f(ctx);
		x[i] = xm;
		double lm = f(ctx);
		x[i] = x0;
		double fd = (lp - lm) / ((double)xp - (double)xm);
		double an = g[i];
		if (!(fabs(fd - an) <= ATOL + RTOL * fmax(fabs(fd), fabs(an)))) {
			if (bad++ < 5)
				fprintf(stderr, "[%s] d/d%s[%zu]: analytic %.6g, finite differences %.6g\n", config, what, i, an, fd);
			failures++;
		}
	}
}

/* ---- matmul ---- */

struct mm_ctx {
	float *inp, *w, *bias, *out, *R;
	int N, C, OC;
};

static double mm_loss(void *p)
{
	struct mm_ctx *c = p;
	K->ops->matmul_forward(K, c->out, c->inp, c->w, c->bias, c->N, c->C, c->OC);
	return dotR(c->out, c->R, (size_t)c->N * c->OC);
}

static void test_matmul(int N, int C, int OC, int with_bias)
{
	struct mm_ctx c = { frand((size_t)N * C, 1), frand((size_t)OC * C, 1), with_bias ? frand((size_t)OC, 1) : NULL,
	                    falloc((size_t)N * OC), frand((size_t)N * OC, 1), N, C, OC };
	double *want = calloc((size_t)N * OC, sizeof(double));
	CHECK(want);
	for (int n = 0; n < N; n++)
		for (int o = 0; o < OC; o++) {
			double s = with_bias ? c.bias[o] : 0.0;
			for (int i = 0; i < C; i++)
				s += (double)c.inp[n * C + i] * c.w[o * C + i];
			want[n * OC + o] = s;
		}
	mm_loss(&c);
	expect_close("matmul out", c.out, want, (size_t)N * OC, 1e-5, 1e-5);

	/* dinp is written (garbage before), dw and dbias accumulate (G0 before). */
	float *dinp = frand((size_t)N * C, 100), *g0w = frand((size_t)OC * C, 1), *g0b = frand((size_t)OC, 1);
	float *dw = fdup(g0w, (size_t)OC * C), *db = fdup(g0b, (size_t)OC);
	K->ops->matmul_backward(K, dinp, dw, with_bias ? db : NULL, c.R, c.inp, c.w, N, C, OC);
	for (int i = 0; i < OC * C; i++)
		dw[i] -= g0w[i];
	for (int i = 0; i < OC; i++)
		db[i] -= g0b[i];
	fd_check("matmul inp", c.inp, dinp, (size_t)N * C, mm_loss, &c);
	fd_check("matmul w", c.w, dw, (size_t)OC * C, mm_loss, &c);
	if (with_bias)
		fd_check("matmul bias", c.bias, db, (size_t)OC, mm_loss, &c);
	free(dinp), free(g0w), free(g0b), free(dw), free(db), free(want);
	free(c.inp), free(c.w), free(c.bias), free(c.out), free(c.R);
}

/* ---- sgemm split over the pool ---- */

/* op(X)[i][k] of a row-major X with leading dimension ld. */
static inline double opx(const float *X, int trans, int ld, int i, int k)
{
	return trans ? X[(size_t)k * ld + i] : X[(size_t)i * ld + k];
}

/* Products big enough to be split by rows of C, by columns, and by slices
 * of K (partial products added afterwards), every transpose, beta 0 (C
 * holds NaN: must not be read) and beta 1, leading dimensions with slack. */
static void test_gemm(void)
{
	static const struct { int M, N, K; } shape[] = { { 700, 40, 80 }, { 40, 700, 80 }, { 24, 40, 4096 } };
	struct cpu *c = cpu_of(K);
	for (size_t si = 0; si < sizeof shape / sizeof shape[0]; si++)
		for (int tr = 0; tr < 4; tr++)
			for (int bi = 0; bi < 2; bi++) {
				int M = shape[si].M, N = shape[si].N, Kd = shape[si].K, ta = tr & 1, tb = tr >> 1;
				int lda = (ta ? M : Kd) + 3, ldb = (tb ? Kd : N) + 5, ldc = N + 2;
				float beta = (float)bi;
				float *A = frand((size_t)(ta ? Kd : M) * lda, 1), *B = frand((size_t)(tb ? N : Kd) * ldb, 1);
				float *Cm = frand((size_t)M * ldc, 1), *C0 = fdup(Cm, (size_t)M * ldc);
				double *want = calloc((size_t)M * N, sizeof(double));
				float *got = falloc((size_t)M * N);
				CHECK(want);
				if (!bi)
					for (size_t i = 0; i < (size_t)M * ldc; i++)
						Cm[i] = NAN;
				cpu_sgemm(c, ta, tb, M, N, Kd, 0.5f, A, lda, B, ldb, beta, Cm, ldc);
				for (int i = 0; i < M; i++)
					for (int x = 0; x < N; x++) {
						double sum = 0;
						for (int k = 0; k < Kd; k++)
							sum += opx(A, ta, lda, i, k) * opx(B, tb, ldb, k, x);
						want[(size_t)i * N + x] = 0.5 * sum + beta * C0[(size_t)i * ldc + x];
						got[(size_t)i * N + x] = Cm[(size_t)i * ldc + x];
					}
				char what[64];
				snprintf(what, sizeof what, "sgemm %dx%dx%d ta %d tb %d beta %d", M, N, Kd, ta, tb, bi);
				expect_close(what, got, want, (size_t)M * N, 1e-4, 1e-4);
				/* The slack between rows is left alone. */
				for (int i = 0; i < M; i++)
					for (int x = N; x < ldc; x++)
						CHECK(memcmp(&Cm[(size_t)i * ldc + x], bi ? &C0[(size_t)i * ldc + x] : &(float){ NAN },
						             sizeof(float)) == 0);
				free(A), free(B), free(Cm), free(C0), free(want), free(got);
			}
}

/* ---- embedding ---- */

struct emb_ctx {
	float *table, *out, *R;
	const int32_t *idx;
	int N, C;
};

static double emb_loss(void *p)
{
	struct emb_ctx *c = p;
	memset(c->out, 0, (size_t)c->N * c->C * sizeof(float));
	K->ops->embed_forward(K, c->out, c->table, c->idx, c->N, c->C);
	return dotR(c->out, c->R, (size_t)c->N * c->C);
}

static void test_embed(void)
{
	enum { ROWS = 6, N = 9, C = 21 };
	static const int32_t idx[N] = { 0, 3, 3, 5, 1, 3, 0, 2, 5 };
	struct emb_ctx c = { frand(ROWS * C, 1), falloc(N * C), frand(N * C, 1), idx, N, C };
	/* Forward adds into what is there. */
	float *o0 = frand(N * C, 1);
	memcpy(c.out, o0, sizeof(float) * N * C);
	K->ops->embed_forward(K, c.out, c.table, idx, N, C);
	double want[N * C];
	for (int n = 0; n < N; n++)
		for (int i = 0; i < C; i++)
			want[n * C + i] = (double)o0[n * C + i] + c.table[idx[n] * C + i];
	expect_close("embed out", c.out, want, N * C, 1e-6, 1e-6);
	float *g0 = frand(ROWS * C, 1), *dt = fdup(g0, ROWS * C);
	K->ops->embed_backward(K, dt, c.R, idx, N, C);
	for (int i = 0; i < ROWS * C; i++)
		dt[i] -= g0[i];
	fd_check("embed table", c.table, dt, ROWS * C, emb_loss, &c);
	free(o0), free(g0), free(dt), free(c.table), free(c.out), free(c.R);
}

/* ---- layer norm ---- */

struct ln_ctx {
	float *inp, *w, *b, *out, *mean, *rstd, *R;
	int N, C;
};

static double ln_loss(void *p)
{
	struct ln_ctx *c = p;
	K->ops->layernorm_forward(K, c->out, c->mean, c->rstd, c->inp, c->w, c->b, c->N, c->C);
	return dotR(c->out, c->R, (size_t)c->N * c->C);
}

static void test_layernorm(int N, int C)
{
	size_t nc = (size_t)N * C;
	struct ln_ctx c = { frand(nc, 2), frand((size_t)C, 1), frand((size_t)C, 1), falloc(nc), falloc((size_t)N),
	                    falloc((size_t)N), frand(nc, 1), N, C };
	for (int n = 0; n < N; n++)   /* rows with an offset, as real activations have */
		for (int i = 0; i < C; i++)
			c.inp[n * C + i] += (float)n * 0.5f;
	ln_loss(&c);
	double *want = calloc(nc, sizeof(double));
	CHECK(want);
	for (int n = 0; n < N; n++) {
		double m = 0, v = 0;
		for (int i = 0; i < C; i++)
			m += c.inp[n * C + i];
		m /= C;
		for (int i = 0; i < C; i++)
			v += (c.inp[n * C + i] - m) * (c.inp[n * C + i] - m);
		double r = 1.0 / sqrt(v / C + 1e-5);
		for (int i = 0; i < C; i++)
			want[n * C + i] = (c.inp[n * C + i] - m) * r * c.w[i] + c.b[i];
		double wm = m, wr = r;
		expect_close("layernorm mean", c.mean + n, &wm, 1, 1e-5, 1e-5);
		expect_close("layernorm rstd", c.rstd + n, &wr, 1, 1e-5, 1e-4);
	}
	expect_close("layernorm out", c.out, want, nc, 1e-5, 1e-4);
	float *dinp = frand(nc, 100), *g0w = frand((size_t)C, 1), *g0b = frand((size_t)C, 1);
	float *dw = fdup(g0w, (size_t)C), *db = fdup(g0b, (size_t)C);
	K->ops->layernorm_backward(K, dinp, dw, db, c.R, c.inp, c.w, c.mean, c.rstd, N, C);
	for (int i = 0; i < C; i++) {
		dw[i] -= g0w[i];
		db[i] -= g0b[i];
	}
	fd_check("layernorm inp", c.inp, dinp, nc, ln_loss, &c);
	fd_check("layernorm w", c.w, dw, (size_t)C, ln_loss, &c);
	fd_check("layernorm b", c.b, db, (size_t)C, ln_loss, &c);
	free(dinp), free(g0w), free(g0b), free(dw), free(db), free(want);
	free(c.inp), free(c.w), free(c.b), free(c.out), free(c.mean), free(c.rstd), free(c.R);
}

/* ---- attention ---- */

struct attn_ctx {
	float *qkv, *out, *lse, *R;
	struct kern_attn_shape s;
};

static double attn_loss(void *p)
{
	struct attn_ctx *c = p;
	K->ops->attention_forward(K, c->out, c->lse, c->qkv, &c->s);
	return dotR(c->out, c->R, (size_t)c->s.B * c->s.T * c->s.C);
}

/* The attention-dropout mask bit of kernels.h, written out from its
 * definition: dropout_forward's mask of element ((b NH + h) T + t) 2^32 + j. */
static int attn_keep(const struct kern_attn_shape *s, int b, int h, int t, int j)
{
	uint64_t row = ((uint64_t)b * (uint64_t)s->NH + (uint64_t)h) * (uint64_t)s->T + (uint64_t)t;
	uint64_t kk = cpu_mix64(cpu_mix64(s->seed) + row * CPU_GOLDEN64);
	uint32_t thresh = (uint32_t)((double)s->dropout * 16777216.0 + 0.5);
	return drop_keep((uint32_t)j, (uint32_t)kk, (uint32_t)(kk >> 32), thresh);
}

/* The straightforward (T, T) softmax, in double; wts are the softmax
 * weights before dropout, out is computed with it. */
static void attn_naive(double *out, double *lse, double *wts, const float *qkv, const struct kern_attn_shape *s)
{
	int B = s->B, T = s->T, C = s->C, NH = s->NH, hs = C / NH;
	double *sc = calloc((size_t)T, sizeof(double));
	CHECK(sc);
	for (int b = 0; b < B; b++)
		for (int h = 0; h < NH; h++)
			for (int t = 0; t < T; t++) {
				double *o = out + ((size_t)b * T + t) * C + h * hs;
				double *wr = wts + (((size_t)b * NH + h) * T + t) * T;
				for (int i = 0; i < hs; i++)
					o[i] = 0;
				for (int j = 0; j < T; j++)
					wr[j] = 0;
				lse[((size_t)b * NH + h) * T + t] = 0;
				int p = s->pad[b];
				if (t < p)
					continue;
				const float *q = qkv + ((size_t)b * T + t) * 3 * C + h * hs;
				double m = -INFINITY, sum = 0;
				for (int j = p; j <= t; j++) {
					const float *k = qkv + ((size_t)b * T + j) * 3 * C + C + h * hs;
					double d = 0;
					for (int i = 0; i < hs; i++)
						d += (double)q[i] * k[i];
					sc[j] = d / sqrt((double)hs);
					m = fmax(m, sc[j]);
				}
				for (int j = p; j <= t; j++)
					sum += exp(sc[j] - m);
				lse[((size_t)b * NH + h) * T + t] = m + log(sum);
				for (int j = p; j <= t; j++) {
					const float *v = qkv + ((size_t)b * T + j) * 3 * C + 2 * C + h * hs;
					double w = exp(sc[j] - m) / sum;
					wr[j] = w;
					if (s->dropout > 0.0f)
						w = attn_keep(s, b, h, t, j) ? w / (1.0 - (double)s->dropout) : 0.0;
					for (int i = 0; i < hs; i++)
						o[i] += w * v[i];
				}
			}
	free(sc);
}

/* pdrop > 0: dropout on the probabilities, with a fixed seed. */
static void test_attention(int B, int T, int C, int NH, const int32_t *pad, double a, float pdrop)
{
	size_t n3 = (size_t)B * T * 3 * C, no = (size_t)B * T * C, nl = (size_t)B * NH * T;
	struct attn_ctx c = { frand(n3, a), falloc(no), falloc(nl), frand(no, 1),
	                      { .B = B, .T = T, .C = C, .NH = NH, .pad = pad, .dropout = pdrop, .seed = 977 } };
	double *want = calloc(no, sizeof(double)), *wlse = calloc(nl, sizeof(double));
	double *wts = calloc(nl * T, sizeof(double));
	CHECK(want && wlse && wts);
	attn_naive(want, wlse, wts, c.qkv, &c.s);
	attn_loss(&c);
	expect_close("attention out", c.out, want, no, 1e-5, 1e-4);
	expect_close("attention lse", c.lse, wlse, nl, 1e-5, 1e-5);

	/* Explanations: each query row's weights, per head. */
	float *w = falloc((size_t)NH * T);
	double *ww = calloc((size_t)NH * T, sizeof(double));
	CHECK(ww);
	for (int b = 0; b < B; b++)
		for (int t = 0; t < T; t++) {
			K->ops->attention_row(K, w, c.qkv, c.lse, &c.s, b, t);
			for (int h = 0; h < NH; h++)
				memcpy(ww + (size_t)h * T, wts + (((size_t)b * NH + h) * T + t) * T, T * sizeof(double));
			expect_close("attention_row", w, ww, (size_t)NH * T, 1e-6, 1e-4);
		}

	float *dqkv = frand(n3, 100);
	K->ops->attention_backward(K, dqkv, c.R, c.out, c.lse, c.qkv, &c.s);
	fd_check(pdrop > 0.0f ? "attention qkv, dropout" : "attention qkv", c.qkv, dqkv, n3, attn_loss, &c);
	/* Padding positions get exactly zero. */
	for (int b = 0; b < B; b++)
		for (int t = 0; t < pad[b] && t < T; t++)
			for (int i = 0; i < 3 * C; i++)
				if (dqkv[((size_t)b * T + t) * 3 * C + i] != 0.0f) {
					fprintf(stderr, "[%s] attention: gradient at a padding position\n", config);
					failures++;
					b = B, t = T;
					break;
				}
	free(w), free(ww), free(dqkv), free(want), free(wlse), free(wts);
	free(c.qkv), free(c.out), free(c.lse), free(c.R);
}

/* Attention dropout drops about p of the weights, a different set per
 * seed, per head and per row; p = 0 changes nothing. */
static void test_attention_drop_rate(void)
{
	enum { B = 2, T = 64, C = 16, NH = 2 };
	static const int32_t pad[B] = { 0, 5 };
	struct kern_attn_shape s = { .B = B, .T = T, .C = C, .NH = NH, .pad = pad, .dropout = 0.25f, .seed = 5 };
	struct kern_attn_shape s2 = s;
	s2.seed = 6;
	/* a query row whose key vectors are zero weighs its keys equally, and
	 * with values v_j = e_(j mod hs) each output column sums its kept keys' weights */
	size_t n3 = (size_t)B * T * 3 * C;
	float *qkv = falloc(n3), *out = falloc((size_t)B * T * C), *out2 = falloc((size_t)B * T * C);
	float *out0 = falloc((size_t)B * T * C), *lse = falloc((size_t)B * NH * T);
	for (int b = 0; b < B; b++)
		for (int t = 0; t < T; t++)
			for (int i = 0; i < C; i++)
				qkv[((size_t)b * T + t) * 3 * C + 2 * C + i] = (float)(i % (C / NH) == t % (C / NH));
	K->ops->attention_forward(K, out, lse, qkv, &s);
	K->ops->attention_forward(K, out2, lse, qkv, &s2);
	struct kern_attn_shape s0 = s;
	s0.dropout = 0.0f;
	K->ops->attention_forward(K, out0, lse, qkv, &s0);
	size_t kept = 0, total = 0, differ = 0;
	for (int b = 0; b < B; b++)
		for (int h = 0; h < NH; h++)
			for (int t = pad[b]; t < T; t++) {
				int L = t - pad[b] + 1;
				for (int j = pad[b]; j <= t; j++) {
					int k1 = attn_keep(&s, b, h, t, j), k2 = attn_keep(&s2, b, h, t, j);
					kept += k1;
					differ += k1 != k2;
					total++;
				}
				/* the output equals the naive sum of the kept weights, column by column */
				for (int i = 0; i < C / NH; i++) {
					double want = 0.0, want0 = 0.0;
					for (int j = pad[b]; j <= t; j++)
						if (j % (C / NH) == i) {
							want += attn_keep(&s, b, h, t, j) ? 1.0 / L / 0.75 : 0.0;
							want0 += 1.0 / L;
						}
					size_t o = ((size_t)b * T + t) * C + (size_t)h * (C / NH) + i;
					if (fabs(out[o] - want) > 1e-5 || fabs(out0[o] - want0) > 1e-5) {
						fprintf(stderr, "[%s] attention dropout: out %g (want %g), p=0 %g (want %g) at b %d h %d t %d col %d\n",
						        config, out[o], want, out0[o], want0, b, h, t, i);
						failures++;
						return;
					}
				}
			}
	if (fabs((double)kept / total - 0.75) > 0.02 || differ < total / 4) {
		fprintf(stderr, "[%s] attention dropout: %zu of %zu weights kept at p 0.25, %zu differ between seeds\n",
		        config, kept, total, differ);
		failures++;
	}
	free(qkv), free(out), free(out2), free(out0), free(lse);
}

/* ---- elementwise ---- */

enum ew { EW_GELU, EW_RELU, EW_DROPOUT, EW_ADD };

struct ew_ctx {
	enum ew op;
	float *a, *b, *out, *R;
	size_t n;
	float p;
	uint64_t seed;
};

static double ew_loss(void *p)
{
	struct ew_ctx *c = p;
	switch (c->op) {
	case EW_GELU: K->ops->gelu_forward(K, c->out, c->a, c->n); break;
	case EW_RELU: K->ops->relu_forward(K, c->out, c->a, c->n); break;
	case EW_DROPOUT: K->ops->dropout_forward(K, c->out, c->a, c->n, c->p, c->seed); break;
	case EW_ADD: K->ops->add(K, c->out, c->a, c->b, c->n); break;
	}
	return dotR(c->out, c->R, c->n);
}

static double gelu_ref(double x)
{
	return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}

static void test_elementwise(void)
{
	enum { N = 45 };
	struct ew_ctx c = { EW_GELU, frand(N, 4), frand(N, 1), falloc(N), frand(N, 1), N, 0.0f, 0 };
	/* Away from ReLU's kink, so finite differences do not straddle it. */
	for (int i = 0; i < N; i++)
		if (fabsf(c.a[i]) < 0.05f)
			c.a[i] = c.a[i] < 0 ? -0.3f : 0.3f;
	double want[N];
	float *d = falloc(N);

	ew_loss(&c);
	for (int i = 0; i < N; i++)
		want[i] = gelu_ref(c.a[i]);
	expect_close("gelu out", c.out, want, N, 1e-5, 1e-5);
	K->ops->gelu_backward(K, d, c.a, c.R, N);
	fd_check("gelu inp", c.a, d, N, ew_loss, &c);

	c.op = EW_RELU;
	ew_loss(&c);
	for (int i = 0; i < N; i++)
		want[i] = c.a[i] > 0 ? c.a[i] : 0.0;
	expect_close("relu out", c.out, want, N, 0, 0);
	K->ops->relu_backward(K, d, c.a, c.R, N);
	fd_check("relu inp", c.a, d, N, ew_loss, &c);

	c.op = EW_ADD;
	ew_loss(&c);
	for (int i = 0; i < N; i++)
		want[i] = (double)(c.a[i] + c.b[i]);
	expect_close("add out", c.out, want, N, 0, 0);
	float *x = fdup(c.a, N);
	K->ops->add(K, x, x, c.b, N);     /* in place */
	expect_closef("add in place", x, c.out, N, 0, 0);

	c.op = EW_DROPOUT;
	c.p = 0.3f;
	c.seed = 1234;
	ew_loss(&c);
	for (int i = 0; i < N; i++)
		if (c.out[i] != 0.0f && fabsf(c.out[i] - c.a[i] / 0.7f) > 1e-6f * fabsf(c.a[i])) {
			fprintf(stderr, "[%s] dropout: out[%d] = %g from %g\n", config, i, c.out[i], c.a[i]);
			failures++;
		}
	K->ops->dropout_backward(K, d, c.R, N, c.p, c.seed);
	fd_check("dropout inp", c.a, d, N, ew_loss, &c);
	/* The same mask forward and backward. */
	for (int i = 0; i < N; i++)
		CHECK((c.out[i] == 0.0f) == (d[i] == 0.0f) || c.R[i] == 0.0f);
	/* p = 0 is the identity, also in place. */
	K->ops->dropout_forward(K, x, c.a, N, 0.0f, 9);
	expect_closef("dropout p=0", x, c.a, N, 0, 0);
	K->ops->dropout_forward(K, x, x, N, 0.0f, 9);
	expect_closef("dropout p=0 in place", x, c.a, N, 0, 0);

	/* The drop rate, and another seed giving another mask. */
	size_t big = 200000, zeros = 0, differ = 0;
	float *ones = falloc(big), *o1 = falloc(big), *o2 = falloc(big);
	for (size_t i = 0; i < big; i++)
		ones[i] = 1.0f;
	K->ops->dropout_forward(K, o1, ones, big, 0.25f, 7);
	K->ops->dropout_forward(K, o2, ones, big, 0.25f, 8);
	for (size_t i = 0; i < big; i++) {
		zeros += o1[i] == 0.0f;
		differ += (o1[i] == 0.0f) != (o2[i] == 0.0f);
	}
	if (fabs((double)zeros / big - 0.25) > 0.01 || differ < big / 4) {
		fprintf(stderr, "[%s] dropout: %zu of %zu dropped at p 0.25, %zu differ between seeds\n", config,
		        zeros, big, differ);
		failures++;
	}
	free(ones), free(o1), free(o2);
	free(x), free(d), free(c.a), free(c.b), free(c.out), free(c.R);
}

/* ---- cross-entropy ---- */

struct xe_ctx {
	float *h, *emb, *logq;
	const int32_t *neg;
	int S;
	struct kern_xent_shape s;
};

static double xe_full_loss(void *p)
{
	struct xe_ctx *c = p;
	return K->ops->xent_full(K, NULL, NULL, c->h, c->emb, &c->s, 1.0f);
}

static double xe_sampled_loss(void *p)
{
	struct xe_ctx *c = p;
	return K->ops->xent_sampled(K, NULL, NULL, c->h, c->emb, &c->s, c->neg, c->S, c->logq, 1.0f);
}

/* Is item in row n's history so far (c->s.seen), other than its target y? */
static int xe_masked(const struct xe_ctx *c, int n, int item, int y)
{
	if (!c->s.seen || item == y)
		return 0;
	for (int t = n - n % c->s.T; t <= n; t++)
		if (c->s.seen[t] == item)
			return 1;
	return 0;
}

/* Naive full softmax in double over items 1..V-1 (less the history so far
 * with s.seen); sampled if neg. */
static double xe_naive(const struct xe_ctx *c, int sampled)
{
	int N = c->s.N, C = c->s.C, V = c->s.V;
	double total = 0;
	for (int n = 0; n < N; n++) {
		int y = c->s.target[n];
		if (y == 0)
			continue;
		double lt = 0, m = -INFINITY, sum = 0;
		int cnt = sampled ? c->S + 1 : V;
		for (int q = sampled ? 0 : 1; q < cnt; q++) {
			int item = sampled ? (q == 0 ? y : c->neg[q - 1]) : q;
			if (sampled && q > 0 && (item == y || item == 0))
				continue;
			if (!sampled && xe_masked(c, n, item, y))
				continue;
			double l = 0;
			for (int i = 0; i < C; i++)
				l += (double)c->h[n * C + i] * c->emb[item * C + i];
			if (sampled && c->logq)
				l -= c->logq[item];
			if (sampled ? q == 0 : item == y)
				lt = l;
			m = fmax(m, l);
		}
		for (int q = sampled ? 0 : 1; q < cnt; q++) {
			int item = sampled ? (q == 0 ? y : c->neg[q - 1]) : q;
			if (sampled && q > 0 && (item == y || item == 0))
				continue;
			if (!sampled && xe_masked(c, n, item, y))
				continue;
			double l = 0;
			for (int i = 0; i < C; i++)
				l += (double)c->h[n * C + i] * c->emb[item * C + i];
			if (sampled && c->logq)
				l -= c->logq[item];
			sum += exp(l - m);
		}
		total += m + log(sum) - lt;
	}
	return total;
}

static void xe_check(struct xe_ctx *c, int sampled, const char *name)
{
	int N = c->s.N, C = c->s.C, V = c->s.V;
	double want = xe_naive(c, sampled);
	double got = sampled ? xe_sampled_loss(c) : xe_full_loss(c);
	if (!(fabs(got - want) <= 1e-5 * fabs(want) + 1e-5)) {
		fprintf(stderr, "[%s] %s loss %.9g, expected %.9g\n", config, name, got, want);
		failures++;
	}
	float *dh = frand((size_t)N * C, 100), *g0 = frand((size_t)V * C, 1), *demb = fdup(g0, (size_t)V * C);
	double got2 = sampled ? K->ops->xent_sampled(K, dh, demb, c->h, c->emb, &c->s, c->neg, c->S, c->logq, 1.0f)
	                      : K->ops->xent_full(K, dh, demb, c->h, c->emb, &c->s, 1.0f);
	CHECK(got2 == got);
	for (int i = 0; i < V * C; i++)
		demb[i] -= g0[i];
	char what[64];
	snprintf(what, sizeof what, "%s h", name);
	fd_check(what, c->h, dh, (size_t)N * C, sampled ? xe_sampled_loss : xe_full_loss, c);
	snprintf(what, sizeof what, "%s emb", name);
	fd_check(what, c->emb, demb, (size_t)V * C, sampled ? xe_sampled_loss : xe_full_loss, c);
	/* Padding rows: dh exactly zero; item 0 never gets gradient in full softmax. */
	for (int n = 0; n < N; n++)
		if (c->s.target[n] == 0)
			for (int i = 0; i < C; i++)
				CHECK(dh[n * C + i] == 0.0f);
	for (int i = 0; i < C; i++)
		CHECK(demb[i] == 0.0f);

	/* dscale scales both gradients. */
	float *dh2 = falloc((size_t)N * C), *demb2 = falloc((size_t)V * C);
	if (sampled)
		K->ops->xent_sampled(K, dh2, demb2, c->h, c->emb, &c->s, c->neg, c->S, c->logq, 0.25f);
	else
		K->ops->xent_full(K, dh2, demb2, c->h, c->emb, &c->s, 0.25f);
	for (int i = 0; i < N * C; i++)
		dh[i] *= 0.25f;
	for (int i = 0; i < V * C; i++)
		demb[i] *= 0.25f;
	snprintf(what, sizeof what, "%s dscale dh", name);
	expect_closef(what, dh2, dh, (size_t)N * C, 1e-6, 1e-4);
	snprintf(what, sizeof what, "%s dscale demb", name);
	expect_closef(what, demb2, demb, (size_t)V * C, 1e-6, 1e-3);
	free(dh), free(g0), free(demb), free(dh2), free(demb2);
}

static void test_xent(void)
{
	enum { N = 11, C = 6, V = 23, S = 9 };
	static const int32_t target[N] = { 3, 0, 22, 7, 7, 0, 1, 15, 0, 9, 2 };
	static const int32_t neg[S] = { 5, 7, 22, 11, 5, 0, 19, 3, 14 };  /* targets, a repeat, padding */
	/* rows as sequences of 4 for the history mask: a row's own target in
	 * its history (rows 4, 7, 10), padding (6), an id past V (9), repeats */
	static const int32_t seen[N] = { 4, 3, 9, 22, 7, 15, 0, 7, 1, 40, 2 };
	struct xe_ctx c = { frand((size_t)N * C, 1.5), frand((size_t)V * C, 1.5), frand(V, 2), neg, S,
	                    { N, C, V, target, NULL, 0 } };
	for (int i = 0; i < V; i++)
		c.logq[i] = -3.0f + c.logq[i];   /* log-probabilities */
	struct kern_cpu_tune t0, t;
	kern_cpu_get_tune(K, &t0);

	xe_check(&c, 0, "xent_full");
	xe_check(&c, 1, "xent_sampled");
	/* Several row blocks and item blocks (the two-pass form), and a row
	 * block cut down to fit the negatives. */
	t = t0;
	t.xent_rows = 3;
	t.xent_cols = 5;
	CHECK_OK(kern_cpu_set_tune(K, &t));
	xe_check(&c, 0, "xent_full blocked");
	xe_check(&c, 1, "xent_sampled blocked");
	/* The two forms agree. */
	float *dh1 = falloc((size_t)N * C), *de1 = falloc((size_t)V * C);
	float *dh2 = falloc((size_t)N * C), *de2 = falloc((size_t)V * C);
	double l1 = K->ops->xent_full(K, dh1, de1, c.h, c.emb, &c.s, 1.0f);
	CHECK_OK(kern_cpu_set_tune(K, &t0));
	double l2 = K->ops->xent_full(K, dh2, de2, c.h, c.emb, &c.s, 1.0f);
	CHECK(fabs(l1 - l2) <= 1e-5 * fabs(l2));
	expect_closef("xent_full blocked dh", dh1, dh2, (size_t)N * C, 1e-6, 1e-4);
	expect_closef("xent_full blocked demb", de1, de2, (size_t)V * C, 1e-6, 1e-4);
	/* No logq: plain sampled softmax. */
	float *logq = c.logq;
	c.logq = NULL;
	xe_check(&c, 1, "xent_sampled no logq");
	/* The history mask, in one block and in several. */
	c.s.seen = seen;
	c.s.T = 4;
	CHECK(fabs(xe_full_loss(&c) - l2) > 1e-3);  /* the mask changes the loss */
	xe_check(&c, 0, "xent_full seen");
	CHECK_OK(kern_cpu_set_tune(K, &t));
	xe_check(&c, 0, "xent_full seen blocked");
	CHECK_OK(kern_cpu_set_tune(K, &t0));
	free(dh1), free(de1), free(dh2), free(de2);
	free(c.h), free(c.emb), free(logq);
}

/* ---- scoring ---- */

static void test_score(int N)
{
	enum { C = 13, V = 40, NC = 7 };
	static const int32_t cand[NC] = { 4, 39, 0, 4, 17, 2, 31 };
	float *h = frand((size_t)N * C, 1), *emb = frand(V * C, 1), *out = falloc((size_t)N * V);
	double *want = calloc((size_t)N * V, sizeof(double));
	CHECK(want);
	for (int pass = 0; pass < 2; pass++) {
		int nc = pass ? NC : V;
		K->ops->score(K, out, h, emb, pass ? cand : NULL, N, C, nc);
		for (int n = 0; n < N; n++)
			for (int j = 0; j < nc; j++) {
				double s = 0;
				int item = pass ? cand[j] : j;
				for (int i = 0; i < C; i++)
					s += (double)h[n * C + i] * emb[item * C + i];
				want[(size_t)n * nc + j] = s;
			}
		expect_close("score", out, want, (size_t)N * nc, 1e-5, 1e-5);
	}
	free(h), free(emb), free(out), free(want);
}

/* ---- optimizer ---- */

static void test_optim(void)
{
	enum { N = 21 };
	float *p = frand(N, 1), *m = falloc(N), *v = falloc(N);
	uint8_t mask[N];
	double P[N], M[N], Vv[N];
	for (int i = 0; i < N; i++) {
		mask[i] = i % 3 != 0;
		P[i] = p[i];
		M[i] = Vv[i] = 0;
	}
	struct kern_adamw o = { 1e-2f, 0.9f, 0.98f, 1e-8f, 0.1f, 0 };
	float *g = falloc(N);
	for (int step = 1; step <= 3; step++) {
		fill(g, N, 1);
		o.t = step;
		K->ops->adamw(K, p, g, m, v, N, &o, mask);
		for (int i = 0; i < N; i++) {
			/* torch.optim.AdamW's update, by hand. */
			M[i] = 0.9 * M[i] + 0.1 * g[i];
			Vv[i] = 0.98 * Vv[i] + 0.02 * (double)g[i] * g[i];
			if (mask[i])
				P[i] *= 1.0 - 1e-2 * 0.1;
			double mh = M[i] / (1 - pow(0.9, step)), vh = Vv[i] / (1 - pow(0.98, step));
			P[i] -= 1e-2 * mh / (sqrt(vh) + 1e-8);
		}
		expect_close("adamw param", p, P, N, 1e-6, 1e-5);
		expect_close("adamw m", m, M, N, 1e-7, 1e-5);
		expect_close("adamw v", v, Vv, N, 1e-7, 1e-5);
	}
	/* No mask: every parameter decays; zero gradient leaves only decay. */
	float q[3] = { 1.0f, -2.0f, 0.5f }, z[3] = { 0 }, mm[3] = { 0 }, vv[3] = { 0 };
	o.t = 1;
	K->ops->adamw(K, q, z, mm, vv, 3, &o, NULL);
	double wq[3] = { 1.0 * 0.999, -2.0 * 0.999, 0.5 * 0.999 };
	expect_close("adamw decay", q, wq, 3, 1e-7, 1e-6);

	/* Gradient norm and scale. */
	size_t n = 100003;
	float *x = frand(n, 1);
	double want = 0;
	for (size_t i = 0; i < n; i++)
		want += (double)x[i] * x[i];
	double got = K->ops->sumsq(K, x, n);
	if (!(fabs(got - want) <= 1e-9 * want)) {
		fprintf(stderr, "[%s] sumsq %.12g, expected %.12g\n", config, got, want);
		failures++;
	}
	float *y = fdup(x, n);
	K->ops->scale(K, y, 0.5f, n);
	for (size_t i = 0; i < n; i++)
		CHECK(y[i] == x[i] * 0.5f);
	free(x), free(y), free(p), free(m), free(v), free(g);
}

static void test_lr_schedule(void)
{
	const float mx = 1e-3f, mn = 1e-5f;
	struct { int step, warmup, total; double want; } c[] = {
		{ 0, 10, 110, 0.0 }, { 5, 10, 110, 5e-4 }, { 10, 10, 110, 1e-3 },
		{ 60, 10, 110, (1e-3 + 1e-5) / 2 }, { 35, 10, 110, 1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + cos(M_PI / 4)) },
		{ 110, 10, 110, 1e-5 }, { 500, 10, 110, 1e-5 }, { 1, 0, 100, 1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + cos(M_PI / 100)) },
		{ 5, 10, 0, 5e-4 }, { 1000, 10, 0, 1e-3 }, { 0, 0, 0, 1e-3 },
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		float got = kern_lr_schedule(c[i].step, c[i].warmup, c[i].total, mx, mn);
		if (!(fabs(got - c[i].want) <= 1e-6 * c[i].want + 1e-12)) {
			fprintf(stderr, "lr_schedule(%d, %d, %d) = %.9g, expected %.9g\n", c[i].step, c[i].warmup,
			        c[i].total, got, c[i].want);
			failures++;
		}
	}
}

/* ---- the suite, per backend configuration ---- */

static struct kern *make(int threads, int simd, size_t min_work)
{
	struct kern *k;
	CHECK_OK(kern_cpu_new(&k, threads));
	CHECK_EQ(k->threads, threads);
	struct kern_cpu_tune t;
	kern_cpu_get_tune(k, &t);
	t.simd = simd;
	t.min_work = min_work;
	t.min_work_cold = min_work;   /* split by size only, whether workers sleep or not */
	CHECK_OK(kern_cpu_set_tune(k, &t));
	return k;
}

static void run_suite(void)
{
	static const int32_t pad3[3] = { 0, 3, 7 };     /* 7 = T: all padding */
	static const int32_t pad2[2] = { 2, 0 };
	static const int32_t pad1[1] = { 1 };
	test_gemm();
	test_matmul(5, 7, 6, 1);
	test_matmul(9, 17, 3, 0);
	test_matmul(4, 5, 37, 1);            /* the bias gradient in several column chunks */
	test_embed();
	test_layernorm(5, 13);
	test_layernorm(3, 64);
	test_attention(3, 7, 12, 3, pad3, 1.5, 0.0f);   /* hs 4: all tail */
	test_attention(2, 9, 20, 2, pad2, 1.5, 0.0f);   /* hs 10: a vector and a tail */
	test_attention(1, 11, 16, 1, pad1, 1.5, 0.0f);  /* hs 16: whole vectors */
	test_attention(1, 40, 72, 1, pad1, 0.6, 0.0f);  /* hs 72: a 64-column chunk and another; two query tiles */
	/* dropout on the probabilities: rows of 8+ keys take the vector path */
	test_attention(3, 7, 12, 3, pad3, 1.5, 0.3f);
	test_attention(2, 21, 20, 2, pad2, 1.5, 0.2f);
	test_attention(1, 40, 72, 1, pad1, 0.6, 0.1f);  /* two query tiles */
	test_attention_drop_rate();
	test_elementwise();
	test_xent();
	test_score(2);
	test_score(9);
	test_optim();
}

/* ---- determinism ---- */

/* Every op at a size large enough for the pool to split it; outputs of one
 * run, concatenated. */
struct det_out {
	float *buf;
	size_t n, cap;
	size_t blas_from;  /* outputs from here on went through sgemm (split over the pool) */
};

static void det_put(struct det_out *d, const float *x, size_t n)
{
	if (d->n + n > d->cap) {
		d->cap = (d->n + n) * 2;
		d->buf = realloc(d->buf, d->cap * sizeof(float));
		CHECK(d->buf);
	}
	memcpy(d->buf + d->n, x, n * sizeof(float));
	d->n += n;
}

static void det_run(struct kern *k, struct det_out *d)
{
	uint64_t saved = rng;
	rng = 42;
	enum { B = 6, T = 64, C = 48, NH = 2, N = B * T, V = 1500, S = 100 };
	int32_t pad[B] = { 0, 10, 63, 64, 30, 1 };
	struct kern_attn_shape as = { .B = B, .T = T, .C = C, .NH = NH, .pad = pad };
	float *qkv = frand((size_t)N * 3 * C, 1), *out = falloc((size_t)N * C), *lse = falloc((size_t)B * NH * T);
	float *dout = frand((size_t)N * C, 1), *dqkv = falloc((size_t)N * 3 * C);
	k->ops->attention_forward(k, out, lse, qkv, &as);
	k->ops->attention_backward(k, dqkv, dout, out, lse, qkv, &as);
	det_put(d, out, (size_t)N * C);
	det_put(d, lse, (size_t)B * NH * T);
	det_put(d, dqkv, (size_t)N * 3 * C);
	as.dropout = 0.1f;  /* and with dropout on the probabilities */
	as.seed = 31;
	k->ops->attention_forward(k, out, lse, qkv, &as);
	k->ops->attention_backward(k, dqkv, dout, out, lse, qkv, &as);
	det_put(d, out, (size_t)N * C);
	det_put(d, dqkv, (size_t)N * 3 * C);

	float *x = frand((size_t)N * C, 2), *w = frand(C, 1), *b = frand(C, 1), *mean = falloc(N), *rstd = falloc(N);
	float *dw = falloc(C), *db = falloc(C), *dx = falloc((size_t)N * C);
	k->ops->layernorm_forward(k, out, mean, rstd, x, w, b, N, C);
	k->ops->layernorm_backward(k, dx, dw, db, dout, x, w, mean, rstd, N, C);
	det_put(d, out, (size_t)N * C);
	det_put(d, dx, (size_t)N * C);
	det_put(d, dw, C);
	det_put(d, db, C);

	size_t ne = (size_t)N * C;
	k->ops->gelu_forward(k, out, x, ne);
	det_put(d, out, ne);
	k->ops->gelu_backward(k, dx, x, dout, ne);
	det_put(d, dx, ne);
	k->ops->dropout_forward(k, out, x, ne, 0.2f, 99);
	det_put(d, out, ne);
	k->ops->relu_backward(k, dx, x, dout, ne);
	det_put(d, dx, ne);

	int32_t *idx = malloc(N * sizeof(int32_t)), *tgt = malloc(N * sizeof(int32_t)), neg[S];
	CHECK(idx && tgt);
	for (int i = 0; i < N; i++) {
		idx[i] = (int32_t)(urand() * 50);
		tgt[i] = i % 5 == 0 ? 0 : (int32_t)(urand() * (V - 1)) + 1;
	}
	for (int i = 0; i < S; i++)
		neg[i] = (int32_t)(urand() * V);
	float *table = falloc((size_t)V * C), *emb0 = frand((size_t)V * C, 1);
	k->ops->embed_backward(k, table, dout, idx, N, C);
	det_put(d, table, 50 * C);
	float *dbias = falloc(C);
	k->ops->matmul_backward(k, NULL, NULL, dbias, dout, x, w, N, C, C);
	det_put(d, dbias, C);

	float *p = frand(ne, 1), *g = frand(ne, 1), *m = falloc(ne), *v = falloc(ne);
	struct kern_adamw o = { 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 1 };
	k->ops->adamw(k, p, g, m, v, ne, &o, NULL);
	det_put(d, p, ne);
	float ss = (float)k->ops->sumsq(k, g, ne);
	det_put(d, &ss, 1);

	/* Scores for a few users go without sgemm. */
	float *sco = falloc((size_t)3 * V);
	k->ops->score(k, sco, x, emb0, NULL, 3, C, V);
	det_put(d, sco, (size_t)3 * V);
	k->ops->score(k, sco, x, emb0, idx, 3, C, N);
	det_put(d, sco, (size_t)3 * N);
	free(sco);

	/* Through sgemm from here. */
	d->blas_from = d->n;
	float *emb = frand((size_t)V * C, 1), *demb = falloc((size_t)V * C), *logq = frand(V, 1);
	struct kern_xent_shape xs = { N, C, V, tgt, NULL, 0 };
	double l = k->ops->xent_full(k, dx, demb, x, emb, &xs, 0.01f);
	float lf = (float)l;
	det_put(d, &lf, 1);
	det_put(d, dx, ne);
	det_put(d, demb, (size_t)V * C);
	l = k->ops->xent_sampled(k, dx, demb, x, emb, &xs, neg, S, logq, 0.01f);
	lf = (float)l;
	det_put(d, &lf, 1);
	det_put(d, dx, ne);
	det_put(d, demb, (size_t)V * C);
	float *wm = frand((size_t)3 * C * C, 1), *mo = falloc((size_t)N * 3 * C), *dwm = falloc((size_t)3 * C * C);
	k->ops->matmul_forward(k, mo, x, wm, NULL, N, C, 3 * C);
	k->ops->matmul_backward(k, dx, dwm, NULL, mo, x, wm, N, C, 3 * C);
	det_put(d, mo, (size_t)N * 3 * C);
	det_put(d, dx, ne);
	det_put(d, dwm, (size_t)3 * C * C);
	/* A weight gradient summed over many rows: sgemm split over K. */
	int NB = 8192, CB = 32, OB = 16;
	float *xb = frand((size_t)NB * CB, 1), *gb = frand((size_t)NB * OB, 1), *wb = frand((size_t)OB * CB, 1);
	float *dwb = falloc((size_t)OB * CB), *dbb = falloc(OB);
	k->ops->matmul_backward(k, NULL, dwb, dbb, gb, xb, wb, NB, CB, OB);
	det_put(d, dwb, (size_t)OB * CB);
	det_put(d, dbb, OB);
	free(xb), free(gb), free(wb), free(dwb), free(dbb);

	free(qkv), free(out), free(lse), free(dout), free(dqkv), free(x), free(w), free(b), free(mean), free(rstd);
	free(dw), free(db), free(dx), free(idx), free(tgt), free(table), free(dbias), free(p), free(g), free(m), free(v);
	free(emb), free(demb), free(logq), free(wm), free(mo), free(dwm), free(emb0);
	rng = saved;
}

static void test_determinism(void)
{
	struct kern *k1 = make(1, 1, 8192), *k2 = make(2, 1, 8192), *kg = make(2, 0, 8192);
	struct det_out a = { 0 }, b = { 0 }, c = { 0 }, g = { 0 };
	config = "determinism";
	det_run(k2, &a);
	det_run(k2, &b);
	det_run(k1, &c);
	det_run(kg, &g);
	CHECK_EQ(a.n, b.n);
	CHECK_EQ(a.n, c.n);
	expect_same("2 threads, run to run", a.buf, b.buf, a.n * sizeof(float));
	/* The worker did take part (ops hand out chunks dynamically, so a
	 * worker that wakes late may find nothing left: on a busy machine keep
	 * giving it long jobs for a while). */
	size_t nbig = 1 << 22;
	float *big = frand(nbig, 1);
	for (int i = 0; i < 500 && kern_cpu_joined(k2) == 0; i++)
		k2->ops->gelu_forward(k2, big, big, nbig);
	free(big);
	if (kern_cpu_joined(k2) == 0) {
		fprintf(stderr, "[%s] the 2-thread pool never used its worker\n", config);
		failures++;
	}
	/* Bitwise the same for 1 and 2 threads, the sgemm-based ops included. */
	expect_same("1 vs 2 threads (row kernels)", a.buf, c.buf, a.blas_from * sizeof(float));
	expect_same("1 vs 2 threads (sgemm-based ops)", a.buf + a.blas_from, c.buf + a.blas_from,
	            (a.n - a.blas_from) * sizeof(float));
	/* The portable kernels agree with the AVX2 ones. */
	expect_closef("avx2 vs generic", g.buf, a.buf, a.n, 1e-5, 1e-3);
	free(a.buf), free(b.buf), free(c.buf), free(g.buf);
	kern_free(k1);
	kern_free(k2);
	kern_free(kg);
}

int main(void)
{
	static const struct { int threads, simd; size_t min_work; const char *name; } cfg[] = {
		{ 1, 1, 8192, "1 thread" },
		{ 2, 1, 1, "2 threads" },         /* min_work 1: even tiny ops are split */
		{ 2, 0, 1, "2 threads, generic" },
	};
	for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
		K = make(cfg[i].threads, cfg[i].simd, cfg[i].min_work);
		char name[128];
		snprintf(name, sizeof name, "%s, %s kernels", cfg[i].name, kern_cpu_simd_name(K));
		config = name;
		CHECK(strcmp(K->ops->name, "cpu") == 0);
		run_suite();
		kern_free(K);
		K = NULL;
	}
	config = "schedule";
	test_lr_schedule();
	test_determinism();
	/* 0 threads: one per core. */
	struct kern *k;
	CHECK_OK(kern_cpu_new(&k, 0));
	CHECK(k->threads >= 1);
	kern_free(k);
	CHECK(kern_cpu_new(&k, -1) == -EINVAL);
	kern_free(NULL);
	if (failures) {
		fprintf(stderr, "%d checks failed\n", failures);
		return 1;
	}
	printf("kernels: all checks passed\n");
	return 0;
}
