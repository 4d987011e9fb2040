/* vec_body.h: the attention row kernels, written once over a few vector
 * primitives and included by vec_generic.c (portable C) and vec_avx2.c
 * (AVX2/FMA), which define the primitives first:
 *   v_scores(sc, q, k, stride, L, hs, scale)  sc[j] = scale * q . k_j
 *   v_max(x, n), v_expsub_sum(x, n, sub), v_dot(a, b, n)
 *   v_wsum(out, w, ws, x, xs, n, hs, acc)     out (+)= sum_i w[i ws] x_i
 *
 * Attention is FlashAttention's (Dao et al., NeurIPS 2022, and
 * FlashAttention-2, 2023) restated for one CPU thread and one query row:
 * the row's L <= T scores live in O(T) scratch, never a (T, T) matrix; the
 * forward pass keeps only the row's log-sum-exp, and the backward pass
 * recomputes p_j = exp(s_j - lse) and uses D = dout . out:
 *   dp_j = dout . v_j,   ds_j = p_j (dp_j - D),
 *   dq = scale sum_j ds_j k_j,  dk_j += scale ds_j q,  dv_j += p_j dout.
 * The backward pass goes CPU_ATTN_TILE query rows at a time: their p and ds
 * rows (O(T) scratch each) are kept, so each key row's dk and dv are summed
 * over the tile's queries in registers and written once per tile, not once
 * per query (FlashAttention-2's loop order, by tiles of queries).
 *
 * With dropout on the probabilities (cpu_attn_drop, mask m_j, f = 1/(1-p)):
 * out = sum_j p_j m_j f v_j, and backward dv_j += p_j m_j f dout,
 * ds_j = p_j (dp_j m_j f - D); D = dout . out holds as it is, since
 * sum_j p_j (dp_j m_j f) = dout . out.  The file including this one defines
 * dropout(out, in, n, lo0, ka, kb, thresh, f) (cpu_vec.dropout). */

static void dropout(float *out, const float *in, size_t n, uint32_t lo0, uint32_t ka, uint32_t kb,
                    uint32_t thresh, float f);

/* x[j] = x[j] m_j f over the L keys of query row i of d. */
static inline void attn_drop_row(float *x, int L, const struct cpu_attn_drop *d, uint64_t i)
{
	uint64_t kk = cpu_mix64(d->key + (d->row0 + i) * CPU_GOLDEN64);
	dropout(x, x, (size_t)L, d->j0, (uint32_t)kk, (uint32_t)(kk >> 32), d->thresh, d->f);
}

static float attn_fwd_row(float *out, float *sc, const float *q, const float *k, const float *v,
                          size_t stride, int L, int hs, float scale, const struct cpu_attn_drop *drop)
{
	v_scores(sc, q, k, stride, L, hs, scale);
	float m = v_max(sc, (size_t)L);
	float sum = v_expsub_sum(sc, (size_t)L, m);
	float inv = 1.0f / sum;
	for (int j = 0; j < L; j++)
		sc[j] *= inv;
	if (drop)
		attn_drop_row(sc, L, drop, 0);
	v_wsum(out, sc, 1, v, stride, L, hs, 0);
	return m + logf(sum);
}

static void attn_probs_row(float *p, const float *q, const float *k, size_t stride, int L, int hs,
                           float scale, float lse)
{
	v_scores(p, q, k, stride, L, hs, scale);
	v_expsub_sum(p, (size_t)L, lse);
}

static void attn_bwd_seq(float *dq, float *dk, float *dv, float *scratch, const float *q, const float *k,
                         const float *v, const float *out, const float *dout, const float *lse,
                         size_t stride, size_t ostride, int n, int hs, float scale,
                         const struct cpu_attn_drop *drop)
{
	float *P = scratch, *dS = scratch + (size_t)CPU_ATTN_TILE * n;
	for (int t0 = 0; t0 < n; t0 += CPU_ATTN_TILE) {
		int t1 = t0 + CPU_ATTN_TILE < n ? t0 + CPU_ATTN_TILE : n;
		for (int t = t0; t < t1; t++) {
			int L = t + 1;
			float *p = P + (size_t)(t - t0) * n, *ds = dS + (size_t)(t - t0) * n;
			const float *qt = q + (size_t)t * stride, *dt = dout + (size_t)t * ostride;
			attn_probs_row(p, qt, k, stride, L, hs, scale, lse[t]);
			v_scores(ds, dt, v, stride, L, hs, 1.0f);              /* dp */
			if (drop)
				attn_drop_row(ds, L, drop, (uint64_t)t);       /* dp m f */
			float D = v_dot(dt, out + (size_t)t * ostride, (size_t)hs);
			for (int j = 0; j < L; j++)
				ds[j] = p[j] * (ds[j] - D) * scale;
			if (drop)
				attn_drop_row(p, L, drop, (uint64_t)t);        /* p m f, for dv */
			v_wsum(dq + (size_t)t * stride, ds, 1, k, stride, L, hs, 0);
		}
		/* Key j hears from the tile's queries t >= j. */
		for (int j = 0; j < t1; j++) {
			int ta = j > t0 ? j : t0;
			size_t o = (size_t)(ta - t0) * n + j;
			v_wsum(dk + (size_t)j * stride, dS + o, (size_t)n, q + (size_t)ta * stride, stride, t1 - ta, hs, 1);
			v_wsum(dv + (size_t)j * stride, P + o, (size_t)n, dout + (size_t)ta * ostride, ostride, t1 - ta, hs, 1);
		}
	}
}
