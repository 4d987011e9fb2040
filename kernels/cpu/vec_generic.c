/* vec_generic.c: the row kernels in portable C, for CPUs without AVX2/FMA
 * and for other architectures; also the reference the AVX2 ones are tested
 * against.  Sums run in index order. */
#include "config.h"

#include <math.h>

#include "kernels/cpu/cpu.h"

static inline float v_dot(const float *a, const float *b, size_t n)
{
	float s = 0.0f;
	for (size_t i = 0; i < n; i++)
		s += a[i] * b[i];
	return s;
}

static void v_scores(float *sc, const float *q, const float *k, size_t stride, int L, int hs, float scale)
{
	for (int j = 0; j < L; j++)
		sc[j] = v_dot(q, k + (size_t)j * stride, (size_t)hs) * scale;
}

/* out = (or += when acc) sum_i w[i ws] x_i, the rows x_i xs apart. */
static void v_wsum(float *out, const float *w, size_t ws, const float *x, size_t xs, int n, int hs, int acc)
{
	for (int c = 0; c < hs; c++) {
		float s = 0.0f;
		for (int i = 0; i < n; i++)
			s += w[(size_t)i * ws] * x[(size_t)i * xs + c];
		out[c] = acc ? out[c] + s : s;
	}
}

static float v_max(const float *x, size_t n)
{
	float m = -INFINITY;
	for (size_t i = 0; i < n; i++)
		m = x[i] > m ? x[i] : m;
	return m;
}

static float v_expsub_sum(float *x, size_t n, float sub)
{
	float s = 0.0f;
	for (size_t i = 0; i < n; i++) {
		x[i] = expf(x[i] - sub);
		s += x[i];
	}
	return s;
}

static void v_expsub_scale(float *x, size_t n, float sub, float mul)
{
	for (size_t i = 0; i < n; i++)
		x[i] = expf(x[i] - sub) * mul;
}

#include "kernels/cpu/vec_body.h"

/* Layer norm (Ba et al., 2016) over one row; eps as PyTorch's default. */
static void layernorm_fwd_row(float *out, float *mean, float *rstd, const float *x, const float *w,
                              const float *b, int C)
{
	float s = 0.0f;
	for (int i = 0; i < C; i++)
		s += x[i];
	float m = s / (float)C;
	float v = 0.0f;
	for (int i = 0; i < C; i++)
		v += (x[i] - m) * (x[i] - m);
	float r = 1.0f / sqrtf(v / (float)C + 1e-5f);
	for (int i = 0; i < C; i++)
		out[i] = (x[i] - m) * r * w[i] + b[i];
	*mean = m;
	*rstd = r;
}

/* dx = rstd (g - mean(g) - xhat mean(g xhat)), g = dout * w. */
static void layernorm_bwd_row(float *dx, const float *dout, const float *x, const float *w, float mean,
                              float rstd, int C)
{
	float a = 0.0f, bsum = 0.0f;
	for (int i = 0; i < C; i++) {
		float g = dout[i] * w[i];
		a += g;
		bsum += g * (x[i] - mean) * rstd;
	}
	a /= (float)C;
	bsum /= (float)C;
	for (int i = 0; i < C; i++)
		dx[i] = (dout[i] * w[i] - a - (x[i] - mean) * rstd * bsum) * rstd;
}

static void layernorm_param_row(float *dw, float *db, const float *dout, const float *x, float mean,
                                float rstd, int n)
{
	for (int i = 0; i < n; i++) {
		dw[i] += dout[i] * ((x[i] - mean) * rstd);
		db[i] += dout[i];
	}
}

static void acc(float *y, const float *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		y[i] += x[i];
}

/* v < 0 ? 0 : v rather than v > 0 ? v : 0: NaN passes through, as in the
 * AVX2 kernel (max(0, v) returns its second operand on NaN). */
static void relu_fwd(float *out, const float *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = x[i] < 0.0f ? 0.0f : x[i];
}

static void relu_bwd(float *dx, const float *x, const float *dout, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dx[i] = x[i] > 0.0f ? dout[i] : 0.0f;
}

static void dropout(float *out, const float *in, size_t n, uint32_t lo0, uint32_t ka, uint32_t kb,
                    uint32_t thresh, float f)
{
	for (size_t i = 0; i < n; i++)
		out[i] = drop_keep(lo0 + (uint32_t)i, ka, kb, thresh) ? in[i] * f : 0.0f;
}

/* GELU, tanh form (Hendrycks & Gimpel 2016; GPT-2; PyTorch's
 * gelu(approximate='tanh')). */
static void vscale(float *x, size_t n, float a)
{
	for (size_t i = 0; i < n; i++)
		x[i] *= a;
}

#define GELU_K 0.7978845608028654f  /* sqrt(2 / pi) */
#define GELU_A 0.044715f

static void gelu_fwd(float *out, const float *x, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		float u = x[i];
		out[i] = 0.5f * u * (1.0f + tanhf(GELU_K * (u + GELU_A * u * u * u)));
	}
}

static void gelu_bwd(float *dx, const float *x, const float *dout, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		float u = x[i];
		float t = tanhf(GELU_K * (u + GELU_A * u * u * u));
		float g = 0.5f * (1.0f + t) + 0.5f * u * (1.0f - t * t) * GELU_K * (1.0f + 3.0f * GELU_A * u * u);
		dx[i] = g * dout[i];
	}
}

/* AdamW (Loshchilov & Hutter, ICLR 2019) in PyTorch's order: decay first,
 * p *= 1 - lr wd, then p -= lr mhat / (sqrt(vhat) + eps). */
static void adamw(float *p, const float *g, float *m, float *v, const uint8_t *mask, size_t n,
                  const struct adamw_coef *c)
{
	for (size_t i = 0; i < n; i++) {
		float mi = c->beta1 * m[i] + (1.0f - c->beta1) * g[i];
		float vi = c->beta2 * v[i] + (1.0f - c->beta2) * g[i] * g[i];
		m[i] = mi;
		v[i] = vi;
		float pi = p[i];
		if (!mask || mask[i])
			pi -= c->decay * pi;
		p[i] = pi - c->lr * (mi / c->bc1) / (sqrtf(vi / c->bc2) + c->eps);
	}
}

static double sumsq(const float *x, size_t n)
{
	double s = 0.0;
	for (size_t i = 0; i < n; i++)
		s += (double)x[i] * x[i];
	return s;
}

static float dot(const float *a, const float *b, size_t n)
{
	return v_dot(a, b, n);
}

const struct cpu_vec cpu_vec_generic = {
	.name = "generic",
	.attn_fwd_row = attn_fwd_row,
	.attn_bwd_seq = attn_bwd_seq,
	.attn_probs_row = attn_probs_row,
	.layernorm_fwd_row = layernorm_fwd_row,
	.layernorm_bwd_row = layernorm_bwd_row,
	.layernorm_param_row = layernorm_param_row,
	.acc = acc,
	.vscale = vscale,
	.relu_fwd = relu_fwd,
	.relu_bwd = relu_bwd,
	.dropout = dropout,
	.vmax = v_max,
	.expsub_sum = v_expsub_sum,
	.expsub_scale = v_expsub_scale,
	.dot = dot,
	.scores = v_scores,
	.gelu_fwd = gelu_fwd,
	.gelu_bwd = gelu_bwd,
	.adamw = adamw,
	.sumsq = sumsq,
};
