/* vec_avx2.c: the row kernels with AVX2/FMA intrinsics.  The whole file is
 * compiled for AVX2/FMA by the pragma below, whatever the build's -march,
 * and cpu.c uses it only when the CPU reports both (cpuid), so the binary
 * still runs on any x86-64.  Tails shorter than a vector go through the
 * same vector code (masked loads, or a small padded buffer), or through
 * scalar code only where that gives the same bits (max, one product, the
 * integer hash): every element is computed the same way wherever a
 * thread's chunk ends. */
#include "config.h"

#include "kernels/cpu/cpu.h"

#ifdef CPU_HAVE_AVX2_BUILD
#include <immintrin.h>
#ifdef __clang__
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx2,fma")
#endif
#include <math.h>
#include <string.h>

static const int32_t mask_tab[16] = { -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0 };

/* The first r (0..8) lanes set. */
static inline __m256i tail_mask(int r)
{
	return _mm256_loadu_si256((const __m256i *)(mask_tab + 8 - r));
}

/* The first r lanes of p, zeros after (r >= 8: all eight). */
static inline __m256 load_first(const float *p, int r)
{
	return r >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, tail_mask(r));
}

/* Stores the first r (0..8) lanes of v.  Not vmaskmovps: its store form is
 * slow on AMD's cores, and tails are on the hot path (head size 50). */
static inline void store_first(float *p, __m256 v, int r)
{
	if (r >= 8) {
		_mm256_storeu_ps(p, v);
		return;
	}
	float t[8];
	_mm256_storeu_ps(t, v);
	for (int u = 0; u < r; u++)
		p[u] = t[u];
}

static inline float hsum256(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

/* exp(x) for 8 floats: Cephes' expf (Moshier), range reduction by ln 2 in two
 * parts and a degree-6 polynomial, about 1 ulp on [-87, 88].  Inputs are
 * clamped (so -inf gives ~0, and results below 2^-126 flush to 0); NaN
 * stays NaN: max/min return their second operand when one is NaN. */
static inline __m256 exp256(__m256 x)
{
	x = _mm256_max_ps(_mm256_set1_ps(-88.3762626647949f), x);
	x = _mm256_min_ps(_mm256_set1_ps(88.0f), x);
	__m256 fx = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
	x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
	x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
	__m256 y = _mm256_set1_ps(1.9875691500e-4f);
	y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
	y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
	y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
	y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
	y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
	y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), x);
	y = _mm256_add_ps(y, _mm256_set1_ps(1.0f));
	__m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(fx), _mm256_set1_epi32(127)), 23);
	return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

static inline float v_dot(const float *a, const float *b, size_t n)
{
	__m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
	size_t i = 0;
	for (; i + 16 <= n; i += 16) {
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
		s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
	}
	for (; i + 8 <= n; i += 8)
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
	if (i < n) {
		__m256i m = tail_mask((int)(n - i));
		s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), s1);
	}
	return hsum256(_mm256_add_ps(s0, s1));
}

/* Eight keys at a time, so eight independent FMA chains (enough to keep
 * both FMA pipes busy) share each load of q; then four, then one. */
static void v_scores(float *sc, const float *q, const float *k, size_t stride, int L, int hs, float scale)
{
	int nfull = hs & ~7, r = hs & 7;
	__m256i m = tail_mask(r);
	int j = 0;
	for (; j + 8 <= L; j += 8) {
		const float *kj = k + (size_t)j * stride;
		__m256 s[8];
#pragma GCC unroll 8
		for (int u = 0; u < 8; u++)
			s[u] = _mm256_setzero_ps();
		for (int c = 0; c < nfull; c += 8) {
			__m256 qv = _mm256_loadu_ps(q + c);
#pragma GCC unroll 8
			for (int u = 0; u < 8; u++)
				s[u] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(kj + (size_t)u * stride + c), s[u]);
		}
		if (r) {
			__m256 qv = _mm256_maskload_ps(q + nfull, m);
#pragma GCC unroll 8
			for (int u = 0; u < 8; u++)
				s[u] = _mm256_fmadd_ps(qv, _mm256_maskload_ps(kj + (size_t)u * stride + nfull, m), s[u]);
		}
		__m256 t0 = _mm256_hadd_ps(s[0], s[1]), t1 = _mm256_hadd_ps(s[2], s[3]);
		__m256 t2 = _mm256_hadd_ps(s[4], s[5]), t3 = _mm256_hadd_ps(s[6], s[7]);
		__m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
		__m256 sum = _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
		_mm256_storeu_ps(sc + j, _mm256_mul_ps(sum, _mm256_set1_ps(scale)));
	}
	for (; j + 4 <= L; j += 4) {
		const float *k0 = k + (size_t)j * stride, *k1 = k0 + stride, *k2 = k1 + stride, *k3 = k2 + stride;
		__m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
		__m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
		for (int c = 0; c < nfull; c += 8) {
			__m256 qv = _mm256_loadu_ps(q + c);
			s0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + c), s0);
			s1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k1 + c), s1);
			s2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k2 + c), s2);
			s3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k3 + c), s3);
		}
		if (r) {
			__m256 qv = _mm256_maskload_ps(q + nfull, m);
			s0 = _mm256_fmadd_ps(qv, _mm256_maskload_ps(k0 + nfull, m), s0);
			s1 = _mm256_fmadd_ps(qv, _mm256_maskload_ps(k1 + nfull, m), s1);
			s2 = _mm256_fmadd_ps(qv, _mm256_maskload_ps(k2 + nfull, m), s2);
			s3 = _mm256_fmadd_ps(qv, _mm256_maskload_ps(k3 + nfull, m), s3);
		}
		__m256 t0 = _mm256_hadd_ps(s0, s1), t1 = _mm256_hadd_ps(s2, s3);
		__m256 t2 = _mm256_hadd_ps(t0, t1);
		__m128 s = _mm_add_ps(_mm256_castps256_ps128(t2), _mm256_extractf128_ps(t2, 1));
		_mm_storeu_ps(sc + j, _mm_mul_ps(s, _mm_set1_ps(scale)));
	}
	for (; j < L; j++)
		sc[j] = v_dot(q, k + (size_t)j * stride, (size_t)hs) * scale;
}

/* One chunk of up to 64 columns of v_wsum: nfull whole vectors and, when
 * rem, a partial one.  Always inlined with constant nfull and rem, so each
 * case compiles to a branch-free loop with its accumulators in registers. */
static inline __attribute__((always_inline)) void wsum_chunk(float *out, const float *w, size_t ws,
                                                             const float *x, size_t xs, int n, int acc,
                                                             const int nfull, const int rem, __m256i m, int width)
{
	__m256 a[8];
#pragma GCC unroll 8
	for (int u = 0; u < 8; u++)
		a[u] = _mm256_setzero_ps();
	for (int i = 0; i < n; i++) {
		const float *xr = x + (size_t)i * xs;
		__m256 wv = _mm256_set1_ps(w[(size_t)i * ws]);
#pragma GCC unroll 8
		for (int u = 0; u < 8; u++) {
			if (u < nfull)
				a[u] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(xr + 8 * u), a[u]);
			else if (u == nfull && rem)
				a[u] = _mm256_fmadd_ps(wv, _mm256_maskload_ps(xr + 8 * u, m), a[u]);
		}
	}
#pragma GCC unroll 8
	for (int u = 0; u < 8; u++) {
		if (u < nfull + (rem ? 1 : 0)) {
			int r = width - 8 * u;
			__m256 v = a[u];
			if (acc)
				v = _mm256_add_ps(load_first(out + 8 * u, r), v);
			store_first(out + 8 * u, v, r);
		}
	}
}

/* out = (or += when acc) sum_i w[i ws] x_i, the rows x_i xs apart; 64
 * columns at a time in eight accumulators, eight FMA chains in flight. */
static void v_wsum(float *out, const float *w, size_t ws, const float *x, size_t xs, int n, int hs, int acc)
{
	for (int c0 = 0; c0 < hs; c0 += 64) {
		int width = hs - c0 < 64 ? hs - c0 : 64;
		__m256i m = tail_mask(width % 8);
		float *o = out + c0;
		const float *xc = x + c0;
#define WSUM_CASE(nf) \
	case 2 * (nf): wsum_chunk(o, w, ws, xc, xs, n, acc, nf, 0, m, width); break; \
	case 2 * (nf) + 1: wsum_chunk(o, w, ws, xc, xs, n, acc, nf, 1, m, width); break;
		switch (2 * (width / 8) + (width % 8 != 0)) {
		WSUM_CASE(0) WSUM_CASE(1) WSUM_CASE(2) WSUM_CASE(3)
		WSUM_CASE(4) WSUM_CASE(5) WSUM_CASE(6) WSUM_CASE(7)
		case 16: wsum_chunk(o, w, ws, xc, xs, n, acc, 8, 0, m, width); break;
		}
#undef WSUM_CASE
	}
}

static float v_max(const float *x, size_t n)
{
	__m256 mv = _mm256_set1_ps(-INFINITY);
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		mv = _mm256_max_ps(mv, _mm256_loadu_ps(x + i));
	float t[8];
	_mm256_storeu_ps(t, mv);
	float m = -INFINITY;
	for (int u = 0; u < 8; u++)
		m = t[u] > m ? t[u] : m;
	for (; i < n; i++)
		m = x[i] > m ? x[i] : m;
	return m;
}

static float v_expsub_sum(float *x, size_t n, float sub)
{
	__m256 s = _mm256_set1_ps(sub), acc = _mm256_setzero_ps();
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), s));
		_mm256_storeu_ps(x + i, e);
		acc = _mm256_add_ps(acc, e);
	}
	if (i < n) {
		/* Padding lanes hold -inf, whose exp is 0. */
		float t[8];
		for (int u = 0; u < 8; u++)
			t[u] = i + (size_t)u < n ? x[i + u] : -INFINITY;
		__m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(t), s));
		_mm256_storeu_ps(t, e);
		acc = _mm256_add_ps(acc, e);
		memcpy(x + i, t, (n - i) * sizeof(float));
	}
	return hsum256(acc);
}

static void v_expsub_scale(float *x, size_t n, float sub, float mul)
{
	__m256 s = _mm256_set1_ps(sub), mv = _mm256_set1_ps(mul);
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(x + i, _mm256_mul_ps(exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), s)), mv));
	if (i < n) {
		__m256i m = tail_mask((int)(n - i));
		__m256 e = exp256(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), s));
		store_first(x + i, _mm256_mul_ps(e, mv), (int)(n - i));
	}
}

#include "kernels/cpu/vec_body.h"

static inline float v_sum(const float *x, int n)
{
	__m256 s = _mm256_setzero_ps();
	int i = 0;
	for (; i + 8 <= n; i += 8)
		s = _mm256_add_ps(s, _mm256_loadu_ps(x + i));
	if (i < n)
		s = _mm256_add_ps(s, _mm256_maskload_ps(x + i, tail_mask(n - i)));
	return hsum256(s);
}

/* As vec_generic.c's, eps 1e-5. */
static void layernorm_fwd_row(float *out, float *mean, float *rstd, const float *x, const float *w,
                              const float *b, int C)
{
	float m = v_sum(x, C) / (float)C;
	__m256 mv = _mm256_set1_ps(m), acc = _mm256_setzero_ps();
	int i = 0;
	for (; i + 8 <= C; i += 8) {
		__m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i), mv);
		acc = _mm256_fmadd_ps(d, d, acc);
	}
	if (i < C) {
		__m256i mk = tail_mask(C - i);
		__m256 d = _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, mk), mv), _mm256_castsi256_ps(mk));
		acc = _mm256_fmadd_ps(d, d, acc);
	}
	float r = 1.0f / sqrtf(hsum256(acc) / (float)C + 1e-5f);
	__m256 rv = _mm256_set1_ps(r);
	for (i = 0; i + 8 <= C; i += 8) {
		__m256 d = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv), rv);
		_mm256_storeu_ps(out + i, _mm256_fmadd_ps(d, _mm256_loadu_ps(w + i), _mm256_loadu_ps(b + i)));
	}
	if (i < C) {
		__m256i mk = tail_mask(C - i);
		__m256 d = _mm256_mul_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, mk), mv), rv);
		store_first(out + i, _mm256_fmadd_ps(d, _mm256_maskload_ps(w + i, mk), _mm256_maskload_ps(b + i, mk)), C - i);
	}
	*mean = m;
	*rstd = r;
}

static void layernorm_bwd_row(float *dx, const float *dout, const float *x, const float *w, float mean,
                              float rstd, int C)
{
	__m256 mv = _mm256_set1_ps(mean), rv = _mm256_set1_ps(rstd);
	__m256 sa = _mm256_setzero_ps(), sb = _mm256_setzero_ps();
	for (int i = 0; i < C; i += 8) {
		int r = C - i;
		__m256 g = _mm256_mul_ps(load_first(dout + i, r), load_first(w + i, r));
		/* Padding lanes: x - mean is -mean there, but g is 0. */
		__m256 xh = _mm256_mul_ps(_mm256_sub_ps(load_first(x + i, r), mv), rv);
		sa = _mm256_add_ps(sa, g);
		sb = _mm256_fmadd_ps(g, xh, sb);
	}
	__m256 a = _mm256_set1_ps(hsum256(sa) / (float)C), bb = _mm256_set1_ps(hsum256(sb) / (float)C);
	for (int i = 0; i < C; i += 8) {
		int r = C - i;
		__m256 g = _mm256_mul_ps(load_first(dout + i, r), load_first(w + i, r));
		__m256 xh = _mm256_mul_ps(_mm256_sub_ps(load_first(x + i, r), mv), rv);
		__m256 d = _mm256_fnmadd_ps(xh, bb, _mm256_sub_ps(g, a));
		store_first(dx + i, _mm256_mul_ps(d, rv), r);
	}
}

static void layernorm_param_row(float *dw, float *db, const float *dout, const float *x, float mean,
                                float rstd, int n)
{
	__m256 mv = _mm256_set1_ps(mean), rv = _mm256_set1_ps(rstd);
	for (int i = 0; i < n; i += 8) {
		int r = n - i;
		__m256 d = load_first(dout + i, r);
		__m256 xh = _mm256_mul_ps(_mm256_sub_ps(load_first(x + i, r), mv), rv);
		store_first(dw + i, _mm256_fmadd_ps(d, xh, load_first(dw + i, r)), r);
		store_first(db + i, _mm256_add_ps(d, load_first(db + i, r)), r);
	}
}

static void acc(float *y, const float *x, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_loadu_ps(x + i)));
	if (i < n) {
		__m256i m = tail_mask((int)(n - i));
		store_first(y + i, _mm256_add_ps(_mm256_maskload_ps(y + i, m), _mm256_maskload_ps(x + i, m)), (int)(n - i));
	}
}

static void vscale(float *x, size_t n, float a)
{
	__m256 av = _mm256_set1_ps(a);
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), av));
	for (; i < n; i++)
		x[i] *= a;
}

static void relu_fwd(float *out, const float *x, size_t n)
{
	__m256 z = _mm256_setzero_ps();
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(out + i, _mm256_max_ps(z, _mm256_loadu_ps(x + i)));
	for (; i < n; i++)
		out[i] = x[i] < 0.0f ? 0.0f : x[i];
}

static void relu_bwd(float *dx, const float *x, const float *dout, size_t n)
{
	__m256 z = _mm256_setzero_ps();
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m256 pos = _mm256_cmp_ps(_mm256_loadu_ps(x + i), z, _CMP_GT_OQ);
		_mm256_storeu_ps(dx + i, _mm256_and_ps(pos, _mm256_loadu_ps(dout + i)));
	}
	for (; i < n; i++)
		dx[i] = x[i] > 0.0f ? dout[i] : 0.0f;
}

static inline __m256i lowbias32_8(__m256i x)
{
	x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 16));
	x = _mm256_mullo_epi32(x, _mm256_set1_epi32(0x7feb352d));
	x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 15));
	x = _mm256_mullo_epi32(x, _mm256_set1_epi32((int)0x846ca68bu));
	x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 16));
	return x;
}

/* drop_keep() eight lanes at a time; the same mask bit for bit. */
static void dropout(float *out, const float *in, size_t n, uint32_t lo0, uint32_t ka, uint32_t kb,
                    uint32_t thresh, float f)
{
	__m256i lo = _mm256_add_epi32(_mm256_set1_epi32((int)lo0), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
	__m256i vka = _mm256_set1_epi32((int)ka), vkb = _mm256_set1_epi32((int)kb);
	/* (h >> 8) < 2^24, so a signed compare with thresh - 1 >= -1 is exact. */
	__m256i th = _mm256_set1_epi32((int)thresh - 1), eight = _mm256_set1_epi32(8);
	__m256 fv = _mm256_set1_ps(f);
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m256i h = lowbias32_8(_mm256_add_epi32(lowbias32_8(_mm256_xor_si256(lo, vka)), vkb));
		__m256i keep = _mm256_cmpgt_epi32(_mm256_srli_epi32(h, 8), th);
		_mm256_storeu_ps(out + i, _mm256_and_ps(_mm256_castsi256_ps(keep), _mm256_mul_ps(_mm256_loadu_ps(in + i), fv)));
		lo = _mm256_add_epi32(lo, eight);
	}
	for (; i < n; i++)
		out[i] = drop_keep(lo0 + (uint32_t)i, ka, kb, thresh) ? in[i] * f : 0.0f;
}

#define GELU_K 0.7978845608028654f
#define GELU_A 0.044715f

/* tanh(u) = 1 - 2 / (exp(2u) + 1): saturates cleanly to +-1. */
static inline __m256 tanh256(__m256 u)
{
	__m256 e = exp256(_mm256_add_ps(u, u));
	__m256 one = _mm256_set1_ps(1.0f);
	return _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
}

static inline __m256 gelu8(__m256 u)
{
	__m256 u2 = _mm256_mul_ps(u, u);
	__m256 arg = _mm256_mul_ps(_mm256_set1_ps(GELU_K), _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(GELU_A), u2), u, u));
	__m256 t = tanh256(arg);
	return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), u), _mm256_add_ps(_mm256_set1_ps(1.0f), t));
}

static inline __m256 gelu_grad8(__m256 u)
{
	__m256 one = _mm256_set1_ps(1.0f), half = _mm256_set1_ps(0.5f);
	__m256 u2 = _mm256_mul_ps(u, u);
	__m256 arg = _mm256_mul_ps(_mm256_set1_ps(GELU_K), _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(GELU_A), u2), u, u));
	__m256 t = tanh256(arg);
	__m256 sech2 = _mm256_fnmadd_ps(t, t, one);
	__m256 darg = _mm256_mul_ps(_mm256_set1_ps(GELU_K), _mm256_fmadd_ps(_mm256_set1_ps(3.0f * GELU_A), u2, one));
	/* 0.5 (1 + t) + 0.5 u sech^2 darg */
	return _mm256_fmadd_ps(_mm256_mul_ps(half, u), _mm256_mul_ps(sech2, darg), _mm256_mul_ps(half, _mm256_add_ps(one, t)));
}

static void gelu_fwd(float *out, const float *x, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(out + i, gelu8(_mm256_loadu_ps(x + i)));
	if (i < n) {
		__m256i m = tail_mask((int)(n - i));
		store_first(out + i, gelu8(_mm256_maskload_ps(x + i, m)), (int)(n - i));
	}
}

static void gelu_bwd(float *dx, const float *x, const float *dout, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(dx + i, _mm256_mul_ps(gelu_grad8(_mm256_loadu_ps(x + i)), _mm256_loadu_ps(dout + i)));
	if (i < n) {
		__m256i m = tail_mask((int)(n - i));
		store_first(dx + i, _mm256_mul_ps(gelu_grad8(_mm256_maskload_ps(x + i, m)), _mm256_maskload_ps(dout + i, m)), (int)(n - i));
	}
}

/* As vec_generic.c's: decay first, then the Adam step. */
static inline void adamw8(float *p, const float *g, float *m, float *v, __m256 decay, const struct adamw_coef *c)
{
	__m256 gv = _mm256_loadu_ps(g);
	__m256 b1 = _mm256_set1_ps(c->beta1), b2 = _mm256_set1_ps(c->beta2);
	__m256 mv = _mm256_fmadd_ps(b1, _mm256_loadu_ps(m), _mm256_mul_ps(_mm256_set1_ps(1.0f - c->beta1), gv));
	__m256 vv = _mm256_fmadd_ps(b2, _mm256_loadu_ps(v), _mm256_mul_ps(_mm256_set1_ps(1.0f - c->beta2), _mm256_mul_ps(gv, gv)));
	_mm256_storeu_ps(m, mv);
	_mm256_storeu_ps(v, vv);
	__m256 pv = _mm256_loadu_ps(p);
	pv = _mm256_fnmadd_ps(decay, pv, pv);
	__m256 mhat = _mm256_div_ps(mv, _mm256_set1_ps(c->bc1));
	__m256 den = _mm256_add_ps(_mm256_sqrt_ps(_mm256_div_ps(vv, _mm256_set1_ps(c->bc2))), _mm256_set1_ps(c->eps));
	pv = _mm256_fnmadd_ps(_mm256_set1_ps(c->lr), _mm256_div_ps(mhat, den), pv);
	_mm256_storeu_ps(p, pv);
}

static void adamw(float *p, const float *g, float *m, float *v, const uint8_t *mask, size_t n,
                  const struct adamw_coef *c)
{
	__m256 all = _mm256_set1_ps(c->decay), none = _mm256_setzero_ps();
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m256 decay = all;
		if (mask) {
			__m128i b = _mm_loadl_epi64((const __m128i *)(mask + i));
			__m256i z = _mm256_cmpeq_epi32(_mm256_cvtepu8_epi32(b), _mm256_setzero_si256());
			decay = _mm256_blendv_ps(all, none, _mm256_castsi256_ps(z));
		}
		adamw8(p + i, g + i, m + i, v + i, decay, c);
	}
	if (i < n) {
		/* The tail through 8-float buffers, so it is computed as the rest is. */
		float tp[8] = { 0 }, tg[8] = { 0 }, tm[8] = { 0 }, tv[8] = { 0 }, td[8] = { 0 };
		size_t r = n - i;
		memcpy(tp, p + i, r * sizeof(float));
		memcpy(tg, g + i, r * sizeof(float));
		memcpy(tm, m + i, r * sizeof(float));
		memcpy(tv, v + i, r * sizeof(float));
		for (size_t u = 0; u < r; u++)
			td[u] = !mask || mask[i + u] ? c->decay : 0.0f;
		adamw8(tp, tg, tm, tv, _mm256_loadu_ps(td), c);
		memcpy(p + i, tp, r * sizeof(float));
		memcpy(m + i, tm, r * sizeof(float));
		memcpy(v + i, tv, r * sizeof(float));
	}
}

static double sumsq(const float *x, size_t n)
{
	__m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m256 f = _mm256_loadu_ps(x + i);
		__m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(f)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(f, 1));
		a0 = _mm256_fmadd_pd(lo, lo, a0);
		a1 = _mm256_fmadd_pd(hi, hi, a1);
	}
	double t[4];
	_mm256_storeu_pd(t, _mm256_add_pd(a0, a1));
	double s = (t[0] + t[1]) + (t[2] + t[3]);
	for (; i < n; i++)
		s += (double)x[i] * x[i];
	return s;
}

static float dot(const float *a, const float *b, size_t n)
{
	return v_dot(a, b, n);
}

const struct cpu_vec cpu_vec_avx2 = {
	.name = "avx2",
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
#ifdef __clang__
#pragma clang attribute pop
#endif
#endif
