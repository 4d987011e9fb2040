/* xent.c: softmax cross-entropy of the rows of h against the item table,
 * over the whole catalog (xent_full) or over shared sampled negatives with
 * log-Q correction (xent_sampled).
 *
 * Only rows with a target (0 < target < V) are computed: they are gathered,
 * xent_rows at a time, into a compact block hc(nb, C), so padding costs
 * nothing.  For one block, with logits l = hc @ emb^T and p = softmax over
 * items 1..V-1 (item 0 is padding and gets no probability):
 *   loss_i = logsumexp_j l_ij - l_i,y(i)
 *   dl = dscale (p - onehot(y))
 *   dh = dl @ emb,  demb += dl^T @ hc          (sgemm)
 * The logits block is turned in place into e = exp(l - m) (m the row max)
 * and never normalized or scaled: p = e / s per row, so the row factors
 * r = dscale / s go on the small side of each product instead,
 *   dh_i = r_i (e @ emb)_i - dscale emb[y_i]
 *   demb += e^T @ (r hc) - dscale scatter(hc_i into row y_i),
 * which saves a pass over the (nb, V) block.
 *
 * With s->seen, a row's history so far is masked to -inf in its logits
 * block before anything else reads it: those items get no probability and
 * no gradient, as if the catalog were the items the row could be ranked
 * against.
 *
 * When V is larger than xent_cols, the items are taken xent_cols at a
 * time: a first pass keeps each row's running max and sum (the online
 * log-sum-exp of Milakov & Gimelshein, 2018), a second recomputes each
 * block's logits and turns them into p = exp(l - lse) (dscale then goes
 * into sgemm's alpha).  Scratch is (xent_rows x min(V, xent_cols)) floats
 * whatever V is. */
#include "config.h"

#include <math.h>
#include <string.h>

#include "kernels/cpu/cpu.h"

struct xent_job {
	const struct cpu_vec *vec;
	float *L;              /* logits block (nb, ld) */
	int ld, nb, vb, v0;    /* items [v0, v0 + vb) of the block */
	const int32_t *rows;   /* (nb) rows of h in the block */
	const int32_t *tgt;    /* (nb) their targets */
	const int32_t *seen;   /* kern_xent_shape's; NULL: no mask */
	int T;
	float *m, *s, *tl;     /* (nb) running max, sum of exp, target logit */
	float *lse, *r;        /* (nb) log-sum-exp; factor of the row's dl */
	double *loss;          /* (nb) */
	float dscale;
	int grad, single;
	/* finishing dh */
	float *dh, *dhc, *hs;
	const float *hc, *emb;
	int C;
	/* sampled */
	const int32_t *neg;
	const float *lqn, *logq;
	float *dt;
	int S;
	struct cpu_chunks q;   /* over the block's rows; reset before each job */
};

/* Masks row i's history so far (but its target) out of its block of items. */
static inline void xent_mask_seen(const struct xent_job *j, size_t i, float *x)
{
	int32_t r = j->rows[i];
	const int32_t *sq = j->seen + (r - r % j->T);
	for (int t = 0; t <= r % j->T; t++) {
		int32_t it = sq[t];
		if (it != j->tgt[i] && it >= j->v0 && it - j->v0 < j->vb && it > 0)
			x[it - j->v0] = -INFINITY;
	}
}

/* Runs one row task of the block: rows in chunks of 8. */
static void xent_run(struct cpu *c, cpu_task_fn fn, struct xent_job *j, size_t work)
{
	j->q = cpu_chunks((size_t)j->nb, 8);
	cpu_parallel(c, fn, j, work);
}

/* Updates row statistics with one block of items; with a single block
 * (the whole catalog), also finishes the loss and leaves e = exp(l - m) in
 * the block, with r = dscale / s. */
static void xent_stats_task(void *arg, int tid, int nth)
{
	struct xent_job *j = arg;
	size_t lo, hi;
	while (cpu_chunk(&j->q, &lo, &hi)) {
		for (size_t i = lo; i < hi; i++) {
			float *x = j->L + i * (size_t)j->ld;
			int y = j->tgt[i] - j->v0;
			int skip = j->v0 == 0;   /* column 0 is item 0: padding */
			if (y >= 0 && y < j->vb)
				j->tl[i] = x[y];
			if (j->seen)
				xent_mask_seen(j, i, x);
			float *xs = x + skip;
			size_t n = (size_t)(j->vb - skip);
			if (skip)
				x[0] = 0.0f;
			if (n == 0)
				continue;
			float bm = j->vec->vmax(xs, n);
			if (bm > j->m[i]) {
				j->s[i] *= expf(j->m[i] - bm);
				j->m[i] = bm;
			}
			j->s[i] += j->vec->expsub_sum(xs, n, j->m[i]);
			if (!j->single)
				continue;
			/* In double: a float lse's rounding would be most of the error. */
			j->loss[i] = (double)j->m[i] + log((double)j->s[i]) - (double)j->tl[i];
			j->r[i] = j->dscale / j->s[i];
		}
	}
}

/* Second pass of the two-pass form: p for one block of items. */
static void xent_probs_task(void *arg, int tid, int nth)
{
	struct xent_job *j = arg;
	size_t lo, hi;
	while (cpu_chunk(&j->q, &lo, &hi)) {
		for (size_t i = lo; i < hi; i++) {
			float *x = j->L + i * (size_t)j->ld;
			if (j->seen)
				xent_mask_seen(j, i, x);
			j->vec->expsub_scale(x, (size_t)j->vb, j->lse[i], 1.0f);
			if (j->v0 == 0)
				x[0] = 0.0f;
		}
	}
}

/* hs_i = r_i hc_i */
static void xent_scale_rows_task(void *arg, int tid, int nth)
{
	struct xent_job *j = arg;
	size_t lo, hi;
	while (cpu_chunk(&j->q, &lo, &hi)) {
		for (size_t i = lo; i < hi; i++) {
			const float *x = j->hc + i * j->C;
			float *o = j->hs + i * j->C;
			for (int cc = 0; cc < j->C; cc++)
				o[cc] = j->r[i] * x[cc];
		}
	}
}

/* dh[row_i] = r_i dhc_i - dscale emb[y_i] */
static void xent_dh_task(void *arg, int tid, int nth)
{
	struct xent_job *j = arg;
	size_t lo, hi;
	while (cpu_chunk(&j->q, &lo, &hi)) {
		for (size_t i = lo; i < hi; i++) {
			float *d = j->dh + (size_t)j->rows[i] * j->C;
			const float *g = j->dhc + i * j->C, *e = j->emb + (size_t)j->tgt[i] * j->C;
			float a = j->r[i], ds = j->dscale;
			for (int cc = 0; cc < j->C; cc++)
				d[cc] = a * g[cc] - ds * e[cc];
		}
	}
}

struct rowacc_job {
	float *dst;
	const float *src;
	const int32_t *idx;
	const float *coef;   /* NULL: a for every row */
	float a;
	int n, C;
	struct cpu_chunks q;
	unsigned cmask;      /* classes - 1 */
};

static void rowacc(struct cpu *c, float *dst, const float *src, const int32_t *idx, const float *coef, float a,
                   int n, int C);

/* dst[idx[i]] += coef[i] * src[i] for i in order.  idx repeats, so threads
 * take classes of dst rows (cpu_row_classes), as embed_backward does: every
 * row sums its contributions in the same order, whoever does it. */
static void rowacc_task(void *arg, int tid, int nth)
{
	struct rowacc_job *j = arg;
	size_t c0, c1;
	while (cpu_chunk(&j->q, &c0, &c1)) {
		for (int i = 0; i < j->n; i++) {
			int32_t r = j->idx[i];
			if (((unsigned)r >> 3 & j->cmask) != c0)
				continue;
			float a = j->coef ? j->coef[i] : j->a;
			float *d = j->dst + (size_t)r * j->C;
			const float *x = j->src + (size_t)i * j->C;
			for (int cc = 0; cc < j->C; cc++)
				d[cc] += a * x[cc];
		}
	}
}

static void rowacc(struct cpu *c, float *dst, const float *src, const int32_t *idx, const float *coef, float a,
                   int n, int C)
{
	unsigned classes = cpu_row_classes(c);
	struct rowacc_job j = { dst, src, idx, coef, a, n, C, cpu_chunks(classes, 1), classes - 1 };
	cpu_parallel(c, rowacc_task, &j, (size_t)n * C);
}

/* The next block of rows with a target, from row *cursor on; rows without
 * one get dh = 0 on the way. */
static int next_rows(int32_t *rows, int32_t *tgt, int max, int *cursor, const struct kern_xent_shape *s,
                     float *dh)
{
	int nb = 0;
	while (*cursor < s->N && nb < max) {
		int r = (*cursor)++;
		/* Ids outside [1, V) carry no target (0 is padding; others would be
		 * out of bounds, which kernels.h leaves to the caller). */
		if (s->target[r] > 0 && s->target[r] < s->V) {
			rows[nb] = r;
			tgt[nb] = s->target[r];
			nb++;
		} else if (dh) {
			memset(dh + (size_t)r * s->C, 0, (size_t)s->C * sizeof(float));
		}
	}
	return nb;
}

static inline size_t align16(size_t n)
{
	return (n + 15) & ~(size_t)15;
}

double cpu_xent_full(struct kern *k, float *dh, float *demb, const float *h, const float *emb,
                     const struct kern_xent_shape *s, float dscale)
{
	struct cpu *c = cpu_of(k);
	int N = s->N, C = s->C, V = s->V;
	int grad = dh || demb;
	if (N <= 0)
		return 0.0;
	if (V < 2) {   /* no item besides padding: nothing to predict */
		if (dh)
			memset(dh, 0, (size_t)N * C * sizeof(float));
		return 0.0;
	}
	int Rb = c->tune.xent_rows;
	int Vb = V < c->tune.xent_cols ? V : c->tune.xent_cols;
	int single = Vb == V;

	size_t o_hc = 0, o_hs = o_hc + align16((size_t)Rb * C), o_dhc = o_hs + align16((size_t)Rb * C);
	size_t o_L = o_dhc + align16((size_t)Rb * C), o_st = o_L + align16((size_t)Rb * Vb);
	size_t o_loss = o_st + align16(5 * (size_t)Rb);    /* m, s, tl, lse, r */
	size_t o_idx = o_loss + align16(2 * (size_t)Rb);   /* doubles */
	float *sc = cpu_scratch(c, o_idx + 2 * (size_t)Rb);
	float *hc = sc + o_hc, *hs = sc + o_hs, *dhc = sc + o_dhc, *L = sc + o_L;
	double *loss = (double *)(sc + o_loss);
	int32_t *rows = (int32_t *)(sc + o_idx), *tgt = rows + Rb;

	struct xent_job j = { .vec = c->vec, .L = L, .ld = Vb, .rows = rows, .tgt = tgt,
	                      .seen = s->seen && s->T > 0 ? s->seen : NULL, .T = s->T, .m = sc + o_st,
	                      .s = sc + o_st + Rb, .tl = sc + o_st + 2 * Rb, .lse = sc + o_st + 3 * Rb,
	                      .r = sc + o_st + 4 * Rb, .loss = loss, .dscale = dscale, .grad = grad,
	                      .single = single, .dh = dh, .dhc = dhc, .hs = hs, .hc = hc, .emb = emb, .C = C };
	double total = 0.0;
	int cursor = 0, nb;
	while ((nb = next_rows(rows, tgt, Rb, &cursor, s, dh)) > 0) {
		j.nb = nb;
		cpu_gather_rows(c, hc, h, rows, nb, C);
		for (int i = 0; i < nb; i++) {
			j.m[i] = -INFINITY;
			j.s[i] = 0.0f;
		}
		for (int v0 = 0; v0 < V; v0 += Vb) {
			j.v0 = v0;
			j.vb = V - v0 < Vb ? V - v0 : Vb;
			cpu_sgemm(c, 0, 1, nb, j.vb, C, 1.0f, hc, C, emb + (size_t)v0 * C, C, 0.0f, L, j.ld);
			xent_run(c, xent_stats_task, &j, (size_t)nb * j.vb);
		}
		if (single && grad) {
			/* L holds e; the row factors r go on dhc and hc. */
			if (dh)
				cpu_sgemm(c, 0, 0, nb, C, V, 1.0f, L, j.ld, emb, C, 0.0f, dhc, C);
			if (demb) {
				xent_run(c, xent_scale_rows_task, &j, (size_t)nb * C);
				cpu_sgemm(c, 1, 0, V, C, nb, 1.0f, L, j.ld, hs, C, 1.0f, demb, C);
			}
		} else if (!single) {
			for (int i = 0; i < nb; i++) {
				j.lse[i] = j.m[i] + logf(j.s[i]);
				loss[i] = (double)j.m[i] + log((double)j.s[i]) - (double)j.tl[i];
				j.r[i] = 1.0f;   /* dscale is in sgemm's alpha */
			}
			for (int v0 = 0; grad && v0 < V; v0 += Vb) {
				j.v0 = v0;
				j.vb = V - v0 < Vb ? V - v0 : Vb;
				const float *e = emb + (size_t)v0 * C;
				cpu_sgemm(c, 0, 1, nb, j.vb, C, 1.0f, hc, C, e, C, 0.0f, L, j.ld);
				xent_run(c, xent_probs_task, &j, (size_t)nb * j.vb);
				if (dh)
					cpu_sgemm(c, 0, 0, nb, C, j.vb, dscale, L, j.ld, e, C, v0 == 0 ? 0.0f : 1.0f, dhc, C);
				if (demb)
					cpu_sgemm(c, 1, 0, j.vb, C, nb, dscale, L, j.ld, hc, C, 1.0f, demb + (size_t)v0 * C, C);
			}
		}
		/* The one-hot part of dl. */
		if (dh && grad)
			xent_run(c, xent_dh_task, &j, (size_t)nb * C);
		if (demb) {
			rowacc(c, demb, hc, tgt, NULL, -dscale, nb, C);
		}
		for (int i = 0; i < nb; i++)
			total += loss[i];
	}
	return total;
}

/* ---- sampled softmax ---- */

/* Per row: the target's logit and the S shared negatives', each minus its
 * log-probability of being sampled, so the sampled softmax estimates the
 * full one without the popularity bias of the sampler (Yi et al., RecSys
 * 2019; Bengio & Senecal, 2008).  A negative equal to the row's target, or
 * to item 0 (padding), is masked.  Then, as for the full softmax, dl turns
 * into dh and demb; the target's column is kept apart in dt. */
static void sampled_task(void *arg, int tid, int nth)
{
	struct xent_job *j = arg;
	size_t lo, hi;
	while (cpu_chunk(&j->q, &lo, &hi)) {
		for (size_t i = lo; i < hi; i++) {
			float *x = j->L + i * (size_t)j->ld;
			int y = j->tgt[i];
			float lt = j->vec->dot(j->hc + i * (size_t)j->C, j->emb + (size_t)y * j->C, (size_t)j->C) -
			           (j->logq ? j->logq[y] : 0.0f);
			for (int q = 0; q < j->S; q++)
				x[q] = j->neg[q] == y || j->neg[q] == 0 ? -INFINITY : x[q] - j->lqn[q];
			float m = j->vec->vmax(x, (size_t)j->S);
			m = lt > m ? lt : m;
			float et = expf(lt - m);
			float sum = et + j->vec->expsub_sum(x, (size_t)j->S, m);
			j->loss[i] = (double)m + log((double)sum) - (double)lt;
			if (j->grad) {
				j->vec->vscale(x, (size_t)j->S, j->dscale / sum);
				j->dt[i] = (et / sum - 1.0f) * j->dscale;
			}
		}
	}
}

/* dh[row_i] = dhc_i + dt_i emb[y_i] */
static void sampled_dh_task(void *arg, int tid, int nth)
{
	struct xent_job *j = arg;
	size_t lo, hi;
	while (cpu_chunk(&j->q, &lo, &hi)) {
		for (size_t i = lo; i < hi; i++) {
			float *d = j->dh + (size_t)j->rows[i] * j->C;
			const float *g = j->dhc + i * j->C, *e = j->emb + (size_t)j->tgt[i] * j->C;
			for (int cc = 0; cc < j->C; cc++)
				d[cc] = g[cc] + j->dt[i] * e[cc];
		}
	}
}

double cpu_xent_sampled(struct kern *k, float *dh, float *demb, const float *h, const float *emb,
                        const struct kern_xent_shape *s, const int32_t *neg, int S, const float *logq,
                        float dscale)
{
	struct cpu *c = cpu_of(k);
	int N = s->N, C = s->C;
	int grad = dh || demb;
	if (N <= 0)
		return 0.0;
	if (S < 0)
		S = 0;
	/* Keep the logits block near xent_rows x xent_cols floats. */
	size_t budget = (size_t)c->tune.xent_rows * c->tune.xent_cols;
	int Rb = c->tune.xent_rows;
	if (S > 0 && (size_t)Rb * S > budget)
		Rb = budget / S > 0 ? (int)(budget / S) : 1;

	size_t o_E = 0, o_dE = o_E + align16((size_t)S * C), o_lqn = o_dE + align16((size_t)S * C);
	size_t o_hc = o_lqn + align16((size_t)S), o_dhc = o_hc + align16((size_t)Rb * C);
	size_t o_L = o_dhc + align16((size_t)Rb * C), o_dt = o_L + align16((size_t)Rb * S);
	size_t o_loss = o_dt + align16((size_t)Rb), o_idx = o_loss + align16(2 * (size_t)Rb);
	float *sc = cpu_scratch(c, o_idx + 2 * (size_t)Rb);
	float *E = sc + o_E, *dE = sc + o_dE, *lqn = sc + o_lqn, *hc = sc + o_hc, *dhc = sc + o_dhc;
	double *loss = (double *)(sc + o_loss);
	int32_t *rows = (int32_t *)(sc + o_idx), *tgt = rows + Rb;

	cpu_gather_rows(c, E, emb, neg, S, C);
	for (int q = 0; q < S; q++)
		lqn[q] = logq ? logq[neg[q]] : 0.0f;
	if (demb)
		memset(dE, 0, (size_t)S * C * sizeof(float));

	struct xent_job j = { .vec = c->vec, .L = sc + o_L, .ld = S, .rows = rows, .tgt = tgt, .loss = loss,
	                      .dscale = dscale, .grad = grad, .dh = dh, .dhc = dhc, .hc = hc, .emb = emb, .C = C,
	                      .neg = neg, .lqn = lqn, .logq = logq, .dt = sc + o_dt, .S = S };
	double total = 0.0;
	int cursor = 0, nb;
	while ((nb = next_rows(rows, tgt, Rb, &cursor, s, dh)) > 0) {
		j.nb = nb;
		cpu_gather_rows(c, hc, h, rows, nb, C);
		cpu_sgemm(c, 0, 1, nb, S, C, 1.0f, hc, C, E, C, 0.0f, j.L, S);
		xent_run(c, sampled_task, &j, (size_t)nb * (S + C));
		for (int i = 0; i < nb; i++)
			total += loss[i];
		if (dh) {
			/* S = 0: sgemm's K = 0 leaves dhc = 0. */
			cpu_sgemm(c, 0, 0, nb, C, S, 1.0f, j.L, S, E, C, 0.0f, dhc, C);
			xent_run(c, sampled_dh_task, &j, (size_t)nb * C);
		}
		if (demb) {
			cpu_sgemm(c, 1, 0, S, C, nb, 1.0f, j.L, S, hc, C, 1.0f, dE, C);
			rowacc(c, demb, hc, tgt, j.dt, 0.0f, nb, C);
		}
	}
	if (demb && S > 0) {
		rowacc(c, demb, dE, neg, NULL, 1.0f, S, C);
	}
	return total;
}
