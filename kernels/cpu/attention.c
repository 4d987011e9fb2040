/* attention.c: causal multi-head self-attention over left-padded
 * sequences, flash style (see vec_body.h for the row kernels and the
 * papers).  Memory beyond the inputs and outputs is O(T) per thread.
 *
 * qkv(B,T,3C): q, k, v side by side; head h uses columns [h hs, (h+1) hs)
 * of each.  Query t of sequence b sees keys pad[b] <= s <= t; the outputs,
 * lse and gradients of padding queries (t < pad[b]) are zero.  Dropout on
 * the probabilities: kernels.h's mask, applied by the row kernels
 * (vec_body.h) from struct cpu_attn_drop. */
#include "config.h"

#include <math.h>
#include <string.h>

#include "kernels/cpu/cpu.h"

struct attn_job {
	const struct cpu_vec *vec;
	float *out, *lse, *dqkv, *ts;
	const float *qkv, *dout, *cout, *clse;
	const int32_t *pad;
	size_t ts_stride;
	int B, T, C, NH, hs;
	float scale;
	int drop;                  /* dropout on: dtmpl holds key, thresh and f */
	struct cpu_attn_drop dtmpl;
	struct cpu_chunks q;
};

/* The job's dropout for rows from (b, h, t0) on, keys from position p. */
static const struct cpu_attn_drop *attn_drop_at(const struct attn_job *j, struct cpu_attn_drop *d,
                                                int b, int h, int t0, int p)
{
	if (!j->drop)
		return NULL;
	*d = j->dtmpl;
	d->row0 = ((uint64_t)b * (uint64_t)j->NH + (uint64_t)h) * (uint64_t)j->T + (uint64_t)t0;
	d->j0 = (uint32_t)p;
	return d;
}

static void attn_drop_setup(struct attn_job *j, const struct kern_attn_shape *s)
{
	j->drop = s->dropout > 0.0f;
	if (j->drop) {
		j->dtmpl.key = cpu_mix64(s->seed);
		j->dtmpl.thresh = (uint32_t)((double)s->dropout * 16777216.0 + 0.5);
		j->dtmpl.f = 1.0f / (1.0f - s->dropout);
	}
}

static inline int attn_pad(const struct attn_job *j, int b)
{
	int p = j->pad ? j->pad[b] : 0;
	return p < 0 ? 0 : p > j->T ? j->T : p;
}

/* Query rows r = ((b NH) + h) T + t, taken 16 at a time. */
static void attn_fwd_task(void *arg, int tid, int nth)
{
	struct attn_job *j = arg;
	int T = j->T, C = j->C, NH = j->NH, hs = j->hs;
	size_t C3 = 3 * (size_t)C;
	float *sc = j->ts + (size_t)tid * j->ts_stride;
	size_t r0, r1;
	while (cpu_chunk(&j->q, &r0, &r1)) {
		for (size_t r = r0; r < r1; r++) {
			int t = (int)(r % (size_t)T), h = (int)(r / (size_t)T % (size_t)NH), b = (int)(r / ((size_t)T * NH));
			int p = attn_pad(j, b);
			float *o = j->out + ((size_t)b * T + t) * C + (size_t)h * hs;
			if (t < p) {
				memset(o, 0, (size_t)hs * sizeof(float));
				j->lse[r] = 0.0f;
				continue;
			}
			const float *q = j->qkv + ((size_t)b * T + t) * C3 + (size_t)h * hs;
			const float *kk = j->qkv + ((size_t)b * T + p) * C3 + C + (size_t)h * hs;
			struct cpu_attn_drop d;
			j->lse[r] = j->vec->attn_fwd_row(o, sc, q, kk, kk + C, C3, t - p + 1, hs, j->scale,
			                                 attn_drop_at(j, &d, b, h, t, p));
		}
	}
}

static int attn_check(const struct kern_attn_shape *s)
{
	return s->B > 0 && s->T > 0 && s->NH > 0 && s->C % s->NH == 0 &&
	       s->dropout >= 0.0f && s->dropout < 1.0f;
}

void cpu_attention_forward(struct kern *k, float *out, float *lse, const float *qkv,
                           const struct kern_attn_shape *s)
{
	struct cpu *c = cpu_of(k);
	if (!attn_check(s))
		return;
	int hs = s->C / s->NH;
	struct attn_job j = { .vec = c->vec, .out = out, .lse = lse, .qkv = qkv, .pad = s->pad,
	                      .B = s->B, .T = s->T, .C = s->C, .NH = s->NH, .hs = hs,
	                      .scale = 1.0f / sqrtf((float)hs), .q = cpu_chunks((size_t)s->B * s->NH * s->T, 16) };
	attn_drop_setup(&j, s);
	j.ts = cpu_tscratch(c, (size_t)s->T, &j.ts_stride);
	cpu_parallel(c, attn_fwd_task, &j, (size_t)s->B * s->NH * s->T * (size_t)s->T / 2 * hs);
}

/* One (sequence, head) pair at a time: a pair's keys and values gather
 * gradient from all its queries, so one thread does the whole pair. */
static void attn_bwd_task(void *arg, int tid, int nth)
{
	struct attn_job *j = arg;
	int T = j->T, C = j->C, NH = j->NH, hs = j->hs;
	size_t C3 = 3 * (size_t)C;
	float *sc = j->ts + (size_t)tid * j->ts_stride;
	size_t p0, p1;
	while (cpu_chunk(&j->q, &p0, &p1)) {
		int pi = (int)p0, b = pi / NH, h = pi % NH;
		int p = attn_pad(j, b);
		size_t hoff = (size_t)h * hs;
		float *dbase = j->dqkv + (size_t)b * T * C3 + hoff;
		for (int t = 0; t < T; t++) {
			memset(dbase + t * C3, 0, (size_t)hs * sizeof(float));
			memset(dbase + t * C3 + C, 0, (size_t)hs * sizeof(float));
			memset(dbase + t * C3 + 2 * (size_t)C, 0, (size_t)hs * sizeof(float));
		}
		if (p == T)
			continue;
		const float *q = j->qkv + ((size_t)b * T + p) * C3 + hoff;
		size_t o = ((size_t)b * T + p) * C + hoff;
		float *dq = dbase + (size_t)p * C3;
		struct cpu_attn_drop d;
		j->vec->attn_bwd_seq(dq, dq + C, dq + 2 * (size_t)C, sc, q, q + C, q + 2 * (size_t)C, j->cout + o,
		                     j->dout + o, j->clse + (size_t)pi * T + p, C3, (size_t)C, T - p, hs, j->scale,
		                     attn_drop_at(j, &d, b, h, p, p));
	}
}

void cpu_attention_backward(struct kern *k, float *dqkv, const float *dout, const float *out,
                            const float *lse, const float *qkv, const struct kern_attn_shape *s)
{
	struct cpu *c = cpu_of(k);
	if (!attn_check(s))
		return;
	int hs = s->C / s->NH;
	struct attn_job j = { .vec = c->vec, .dqkv = dqkv, .qkv = qkv, .dout = dout, .cout = out, .clse = lse,
	                      .pad = s->pad, .B = s->B, .T = s->T, .C = s->C, .NH = s->NH, .hs = hs,
	                      .scale = 1.0f / sqrtf((float)hs), .q = cpu_chunks((size_t)s->B * s->NH, 1) };
	attn_drop_setup(&j, s);
	j.ts = cpu_tscratch(c, 2 * (size_t)CPU_ATTN_TILE * s->T, &j.ts_stride);
	cpu_parallel(c, attn_bwd_task, &j, (size_t)s->B * s->NH * s->T * (size_t)s->T * hs);
}

void cpu_attention_row(struct kern *k, float *w, const float *qkv, const float *lse,
                       const struct kern_attn_shape *s, int b, int t)
{
	struct cpu *c = cpu_of(k);
	if (!attn_check(s))
		return;
	int T = s->T, C = s->C, NH = s->NH, hs = C / NH;
	struct attn_job j = { .pad = s->pad, .T = T };
	int p = attn_pad(&j, b);
	size_t C3 = 3 * (size_t)C;
	memset(w, 0, (size_t)NH * T * sizeof(float));
	if (t < p || t >= T)
		return;
	for (int h = 0; h < NH; h++) {
		const float *q = qkv + ((size_t)b * T + t) * C3 + (size_t)h * hs;
		const float *kk = qkv + ((size_t)b * T + p) * C3 + C + (size_t)h * hs;
		c->vec->attn_probs_row(w + (size_t)h * T + p, q, kk, C3, t - p + 1, hs, 1.0f / sqrtf((float)hs),
		                       lse[((size_t)b * NH + h) * T + t]);
	}
}
