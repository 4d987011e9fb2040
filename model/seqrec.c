/* seqrec.c: the sequence recommender of seqrec.h: its arenas, forward and
 * backward passes over the kernel backend, AdamW step, inference helpers
 * and checkpoints.  Layer pairs follow llm.c's train_gpt2.c; the block is
 * pre-LN:  x += drop(attproj(attn(ln1(x))));  x += drop(fcproj(act(fc(ln2(x))))).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "model/seqrec.h"
#include "model/model_int.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "checkpoints store float32 little-endian; add byte swapping for this host"
#endif

/* --- small helpers -------------------------------------------------------- */

int seqrec_why(char *why, size_t whylen, int err, const char *fmt, ...)
{
	if (why && whylen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return err;
}


/* Seed of one dropout site (or the negative sampler) of a step.  Sites: 0
 * the input, 1 + 2l and 2 + 2l block l's residual branches, SITE_FFN_INNER + l
 * inside its feed-forward, SITE_ATTN + l its attention probabilities,
 * SITE_NEGATIVES the sampler. */
#define SITE_FFN_INNER  0x10000ull
#define SITE_ATTN       0x20000ull
#define SITE_NEGATIVES  0xfffffull
static uint64_t site_seed(uint64_t seed, uint64_t site)
{
	uint64_t s = seed ^ (site * 0xd1b54a32d192ed03ull);
	return seqrec_mix64(&s);
}

static double rng_uniform(uint64_t *s)  /* in (0, 1) */
{
	return ((double)(seqrec_mix64(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static float rng_normal(uint64_t *s)
{
	double u1 = rng_uniform(s), u2 = rng_uniform(s);
	return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

/* --- features ------------------------------------------------------------- */

static int32_t feat_action(const struct store_event *ev, const struct store_event *prev)
{
	(void)prev;
	return ev->action;
}

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int32_t feat_hour(const struct store_event *ev, const struct store_event *prev)
{
	(void)prev;
	int64_t s = ev->ts - floor_div(ev->ts, 86400) * 86400;
	return (int32_t)(s / 3600);
}

static int32_t feat_weekday(const struct store_event *ev, const struct store_event *prev)
{
	(void)prev;
	int64_t d = floor_div(ev->ts, 86400) + 4;  /* 1970-01-01 was a Thursday; 0 = Sunday */
	return (int32_t)(d - floor_div(d, 7) * 7);
}

/* 0: first event, 1: same or earlier time, 2 + floor(log2(gap)) after that. */
static int32_t feat_gap(const struct store_event *ev, const struct store_event *prev)
{
	if (!prev)
		return 0;
	if (ev->ts <= prev->ts)
		return 1;
	uint64_t d = (uint64_t)ev->ts - (uint64_t)prev->ts;
	int32_t r = 2 + (63 - __builtin_clzll(d));
	return r > 31 ? 31 : r;
}

static int32_t feat_device(const struct store_event *ev, const struct store_event *prev)
{
	(void)prev;
	return ev->device < 255 ? ev->device : 255;
}

const struct seqrec_feature_def seqrec_features[SEQREC_FEAT_COUNT] = {
	[SEQREC_FEAT_ACTION]  = { "action",  256, feat_action },
	[SEQREC_FEAT_HOUR]    = { "hour",     24, feat_hour },
	[SEQREC_FEAT_WEEKDAY] = { "weekday",   7, feat_weekday },
	[SEQREC_FEAT_GAP]     = { "gap",      32, feat_gap },
	[SEQREC_FEAT_DEVICE]  = { "device",  256, feat_device },
};

int seqrec_feature_by_name(const char *name)
{
	for (int f = 0; f < SEQREC_FEAT_COUNT; f++)
		if (strcmp(name, seqrec_features[f].name) == 0)
			return f;
	return -ENOENT;
}

/* --- configuration -------------------------------------------------------- */

int seqrec_preset(const char *name, struct seqrec_config *out)
{
	struct seqrec_config c;
	memset(&c, 0, sizeof c);
	c.features = SEQREC_FEAT_DEFAULT;
	c.scale_emb = 1;
	c.loss = SEQREC_LOSS_FULL;
	c.neg = 256;
	if (strcmp(name, "small") == 0) {
		c.C = 64; c.NH = 1; c.L = 2; c.T = 200; c.F = 64;
		c.dropout = 0.1f; c.act = SEQREC_ACT_RELU;
		c.pos = SEQREC_POS_FIRST;
	} else if (strcmp(name, "large") == 0) {
		c.C = 64; c.NH = 2; c.L = 8; c.T = 200; c.F = 256;
		c.dropout = 0.2f; c.act = SEQREC_ACT_GELU;
	} else {
		return -ENOENT;
	}
	*out = c;
	return 0;
}

int seqrec_config_inputs(const struct seqrec_config *c)
{
	return 1 + __builtin_popcount(c->features & (SEQREC_FEAT_BIT(SEQREC_FEAT_COUNT) - 1));
}

int seqrec_config_check(const struct seqrec_config *c, char *why, size_t whylen)
{
#define RANGE(field, lo, hi) do { \
	if ((long long)c->field < (long long)(lo) || (long long)c->field > (long long)(hi)) \
		return seqrec_why(why, whylen, -EINVAL, "config out of range: " #field " is %lld, expected %lld to %lld", \
		                  (long long)c->field, (long long)(lo), (long long)(hi)); \
} while (0)
	RANGE(C, 1, 4096);
	RANGE(NH, 1, 256);
	RANGE(L, 1, 64);
	RANGE(T, 1, 8192);
	RANGE(F, 1, 65536);
	RANGE(V, 2, 1 << 28);
	RANGE(act, 0, 1);
	RANGE(scale_emb, 0, 1);
	RANGE(loss, 0, 1);
	RANGE(block, 0, 1);
	RANGE(pos, 0, 1);
	RANGE(neg, 0, 1 << 20);
#undef RANGE
	if (c->C % c->NH)
		return seqrec_why(why, whylen, -EINVAL, "config out of range: C %d is not a multiple of NH %d", c->C, c->NH);
	if ((int64_t)c->V * c->C > INT32_MAX)
		return seqrec_why(why, whylen, -EINVAL, "config out of range: V*C = %lld exceeds %d",
		                  (long long)c->V * c->C, INT32_MAX);
	if (!(c->dropout >= 0.0f && c->dropout < 1.0f))
		return seqrec_why(why, whylen, -EINVAL, "config out of range: dropout is %g, expected [0, 1)", (double)c->dropout);
	if (!(c->attn_dropout >= 0.0f && c->attn_dropout < 1.0f))
		return seqrec_why(why, whylen, -EINVAL, "config out of range: attn_dropout is %g, expected [0, 1)",
		                  (double)c->attn_dropout);
	if (c->features >> SEQREC_FEAT_COUNT)
		return seqrec_why(why, whylen, -EINVAL, "config out of range: features 0x%x has bits beyond the %d known features",
		                  (unsigned)c->features, SEQREC_FEAT_COUNT);
	if (c->loss == SEQREC_LOSS_SAMPLED && c->neg < 1)
		return seqrec_why(why, whylen, -EINVAL, "config out of range: sampled softmax needs neg >= 1");
	return 0;
}

/* --- arenas ----------------------------------------------------------------- */

/* The parameter layout: fills tensors[] (name, offset, size, decay) and, when
 * base is not NULL, points p's fields into base.  Returns the total floats. */
static size_t seqrec_layout(const struct seqrec_config *c, struct seqrec_tensor *t, int *nt,
                            struct seqrec_params *p, float *base)
{
	size_t C = (size_t)c->C, L = (size_t)c->L, F = (size_t)c->F, off = 0;
	int i = 0;
	struct seqrec_params dummy;
	if (!p)
		p = &dummy;
	memset(p, 0, sizeof *p);
#define T_ADD(nm, field, size, dec) do { \
	t[i] = (struct seqrec_tensor){ nm, off, (size), (dec) }; \
	field = base ? base + off : NULL; \
	off += (size); i++; \
} while (0)
	T_ADD("wte", p->wte, (size_t)c->V * C, 0);
	T_ADD("wpe", p->wpe, (size_t)c->T * C, 0);
	for (int f = 0; f < SEQREC_FEAT_COUNT; f++)
		if (c->features & SEQREC_FEAT_BIT(f))
			T_ADD(seqrec_features[f].name, p->feat[f], (size_t)seqrec_features[f].rows * C, 0);
	T_ADD("ln1w", p->ln1w, L * C, 0);
	T_ADD("ln1b", p->ln1b, L * C, 0);
	T_ADD("qkvw", p->qkvw, L * 3 * C * C, 1);
	T_ADD("qkvb", p->qkvb, L * 3 * C, 0);
	T_ADD("attprojw", p->attprojw, L * C * C, 1);
	T_ADD("attprojb", p->attprojb, L * C, 0);
	T_ADD("ln2w", p->ln2w, L * C, 0);
	T_ADD("ln2b", p->ln2b, L * C, 0);
	T_ADD("fcw", p->fcw, L * F * C, 1);
	T_ADD("fcb", p->fcb, L * F, 0);
	T_ADD("fcprojw", p->fcprojw, L * C * F, 1);
	T_ADD("fcprojb", p->fcprojb, L * C, 0);
	T_ADD("lnfw", p->lnfw, C, 0);
	T_ADD("lnfb", p->lnfb, C, 0);
#undef T_ADD
	*nt = i;
	return off;
}

/* The activation layout for (B, T); base NULL only counts. */
static size_t seqrec_act_layout(const struct seqrec_config *c, int B, struct seqrec_acts *a, float *base)
{
	size_t BT = (size_t)B * (size_t)c->T, C = (size_t)c->C, L = (size_t)c->L, F = (size_t)c->F;
	size_t off = 0;
	struct seqrec_acts dummy;
	if (!a)
		a = &dummy;
#define A_ADD(field, size) do { field = base ? base + off : NULL; off += (size); } while (0)
	A_ADD(a->encoded, BT * C);
	A_ADD(a->resid, (L + 1) * BT * C);
	A_ADD(a->ln1, L * BT * C);
	A_ADD(a->ln1_mean, L * BT);
	A_ADD(a->ln1_rstd, L * BT);
	A_ADD(a->qkv, L * BT * 3 * C);
	A_ADD(a->atty, L * BT * C);
	A_ADD(a->lse, L * BT * (size_t)c->NH);
	A_ADD(a->resmid, L * BT * C);
	A_ADD(a->ln2, L * BT * C);
	A_ADD(a->ln2_mean, L * BT);
	A_ADD(a->ln2_rstd, L * BT);
	A_ADD(a->fch, L * BT * F);
	A_ADD(a->fcha, L * BT * F);
	A_ADD(a->lnf, BT * C);
	A_ADD(a->lnf_mean, BT);
	A_ADD(a->lnf_rstd, BT);
	A_ADD(a->tmp, BT * C);
	A_ADD(a->tmp2, BT * C);
	A_ADD(a->dlnf, BT * C);
	A_ADD(a->dres, BT * C);
	A_ADD(a->dt1, BT * C);
	A_ADD(a->dt2, BT * C);
	A_ADD(a->dF1, BT * F);
	A_ADD(a->dF2, BT * F);
	A_ADD(a->d3C, BT * 3 * C);
	A_ADD(a->d2C, c->block == SEQREC_BLOCK_SASREC ? BT * 2 * C : 0);
#undef A_ADD
	return off;
}

static float *arena_alloc(size_t nfloats)
{
	void *p = NULL;
	size_t bytes = nfloats * sizeof(float);
	if (nfloats > SIZE_MAX / sizeof(float) || posix_memalign(&p, 64, bytes ? bytes : 64))
		return NULL;
	memset(p, 0, bytes);
	return p;
}

/* A model for batches of B; params NULL: its own zeroed parameter arena,
 * else base's arena, borrowed (inference only). */
static int seqrec_alloc(struct seqrec **out, const struct seqrec_config *cfg, struct kern *k, int B,
                        float *params)
{
	struct seqrec *m;
	int NI = seqrec_config_inputs(cfg);

	if (seqrec_config_check(cfg, NULL, 0) < 0 || B < 1 || (int64_t)B * cfg->T > (1 << 24))
		return -EINVAL;
	if (!(m = calloc(1, sizeof *m)))
		return -ENOMEM;
	m->cfg = *cfg;
	m->k = k;
	m->B = B;
	m->T = cfg->T;
	m->nparams = seqrec_layout(cfg, m->tensors, &m->ntensors, NULL, NULL);
	m->params_borrowed = params != NULL;
	if (!(m->param_mem = params ? params : arena_alloc(m->nparams)))
		goto nomem;
	seqrec_layout(cfg, m->tensors, &m->ntensors, &m->params, m->param_mem);
	m->nacts = seqrec_act_layout(cfg, B, NULL, NULL);
	if (!(m->act_mem = arena_alloc(m->nacts)))
		goto nomem;
	seqrec_act_layout(cfg, B, &m->acts, m->act_mem);
	size_t BT = (size_t)B * cfg->T;
	m->in = calloc((size_t)NI * BT, sizeof *m->in);
	m->pos = calloc(BT, sizeof *m->pos);
	m->pad = calloc((size_t)B, sizeof *m->pad);
	m->scores = calloc((size_t)cfg->V, sizeof *m->scores);
	m->neg = calloc((size_t)(cfg->neg > 0 ? cfg->neg : 1), sizeof *m->neg);
	m->enc = calloc((size_t)NI * cfg->T, sizeof *m->enc);
	if (!m->in || !m->pos || !m->pad || !m->scores || !m->neg || !m->enc)
		goto nomem;
	if (!params) {  /* the sampler's tables serve training only */
		if (!(m->logq = calloc((size_t)cfg->V, sizeof *m->logq)))
			goto nomem;
		seqrec_set_sampling(m, NULL);
	}
	*out = m;
	return 0;
nomem:
	seqrec_free(m);
	return -ENOMEM;
}

int seqrec_new(struct seqrec **out, const struct seqrec_config *cfg, struct kern *k, int B)
{
	return seqrec_alloc(out, cfg, k, B, NULL);
}

int seqrec_new_infer(struct seqrec **out, const struct seqrec *base, struct kern *k)
{
	return seqrec_alloc(out, &base->cfg, k, 1, base->param_mem);
}

void seqrec_free(struct seqrec *m)
{
	if (!m)
		return;
	if (!m->params_borrowed)
		free(m->param_mem);
	free(m->grad_mem);
	free(m->m_mem);
	free(m->v_mem);
	free(m->act_mem);
	free(m->in);
	free(m->pos);
	free(m->pad);
	free(m->scores);
	free(m->logq);
	free(m->cdf);
	free(m->neg);
	free(m->enc);
	free(m);
}

void seqrec_init(struct seqrec *m, uint64_t seed, float std)
{
	seqrec_init_scheme(m, seed, std, SEQREC_INIT_SCALED);
}

const char *seqrec_init_name(enum seqrec_init_scheme scheme)
{
	return scheme == SEQREC_INIT_TORCH ? "torch" : "scaled";
}

int seqrec_init_by_name(const char *name)
{
	if (!strcmp(name, "scaled"))
		return SEQREC_INIT_SCALED;
	if (!strcmp(name, "torch"))
		return SEQREC_INIT_TORCH;
	return -ENOENT;
}

void seqrec_init_scheme(struct seqrec *m, uint64_t seed, float std, enum seqrec_init_scheme scheme)
{
	const struct seqrec_config *c = &m->cfg;
	uint64_t s = seed;
	float proj_std = std / sqrtf(2.0f * (float)c->L);
	size_t first_block = (size_t)(m->params.ln1w - m->param_mem);

	memset(m->param_mem, 0, m->nparams * sizeof(float));
	for (int i = 0; i < m->ntensors; i++) {
		const struct seqrec_tensor *t = &m->tensors[i];
		float *w = m->param_mem + t->off;
		float sd = 0.0f;
		if (!strcmp(t->name, "ln1w") || !strcmp(t->name, "ln2w") || !strcmp(t->name, "lnfw")) {
			for (size_t j = 0; j < t->n; j++)
				w[j] = 1.0f;
			continue;
		}
		if (!t->decay && t->off >= first_block)
			continue;  /* biases and layer-norm shifts stay 0 */
		if (std <= 0.0f) {
			/* Xavier normal on (rows, cols), as SASRec's reference code initialises */
			size_t cols = !strcmp(t->name, "fcprojw") ? (size_t)c->F : (size_t)c->C;
			size_t rows = t->n / cols / (t->off < first_block ? 1 : (size_t)c->L);
			sd = sqrtf(2.0f / (float)(rows + cols));
		} else if (scheme == SEQREC_INIT_TORCH && !strcmp(t->name, "qkvw")) {
			/* Xavier-uniform over (3C, C): U(-b, b), b = sqrt(6 / (3C + C)) */
			float b = sqrtf(6.0f / (4.0f * (float)c->C));
			for (size_t j = 0; j < t->n; j++)
				w[j] = b * (float)(2.0 * (double)(seqrec_mix64(&s) >> 11) * 0x1p-53 - 1.0);
			continue;
		} else if (scheme == SEQREC_INIT_SCALED && (!strcmp(t->name, "attprojw") || !strcmp(t->name, "fcprojw"))) {
			sd = proj_std;
		} else {
			sd = std;  /* weight matrices, embedding tables */
		}
		for (size_t j = 0; sd > 0.0f && j < t->n; j++)
			w[j] = sd * rng_normal(&s);
	}
	memset(m->params.wte, 0, (size_t)c->C * sizeof(float));  /* row 0: padding */
}

int seqrec_train_alloc(struct seqrec *m)
{
	if (m->params_borrowed)
		return -EINVAL;  /* an inference instance never changes the parameters */
	if (m->grad_mem)
		return 0;
	m->grad_mem = arena_alloc(m->nparams);
	m->m_mem = arena_alloc(m->nparams);
	m->v_mem = arena_alloc(m->nparams);
	if (!m->grad_mem || !m->m_mem || !m->v_mem) {
		free(m->grad_mem); free(m->m_mem); free(m->v_mem);
		m->grad_mem = m->m_mem = m->v_mem = NULL;
		return -ENOMEM;
	}
	int nt;
	seqrec_layout(&m->cfg, m->tensors, &nt, &m->grads, m->grad_mem);
	m->adam_t = 0;
	return 0;
}

void seqrec_zero_grad(struct seqrec *m)
{
	if (m->grad_mem)
		memset(m->grad_mem, 0, m->nparams * sizeof(float));
}

int seqrec_set_sampling(struct seqrec *m, const uint64_t *counts)
{
	int V = m->cfg.V;
	if (!m->logq)
		return -EINVAL;  /* an inference instance (seqrec_new_infer) */
	free(m->cdf);
	m->cdf = NULL;
	m->logq[0] = 0.0f;
	if (!counts) {
		float lq = -logf((float)(V - 1));
		for (int i = 1; i < V; i++)
			m->logq[i] = lq;
		return 0;
	}
	if (!(m->cdf = malloc((size_t)V * sizeof *m->cdf)))
		return -ENOMEM;
	double total = 0.0;
	for (int i = 1; i < V; i++)
		total += (double)counts[i] + 1.0;
	double acc = 0.0;
	m->cdf[0] = 0.0;
	for (int i = 1; i < V; i++) {
		double q = ((double)counts[i] + 1.0) / total;
		acc += q;
		m->cdf[i] = acc;
		m->logq[i] = (float)log(q);
	}
	m->cdf[V - 1] = 1.0;
	return 0;
}

static void sample_negatives(struct seqrec *m, uint64_t seed)
{
	uint64_t s = site_seed(seed, SITE_NEGATIVES);
	int V = m->cfg.V;
	for (int i = 0; i < m->cfg.neg; i++) {
		if (!m->cdf) {
			m->neg[i] = 1 + (int32_t)(seqrec_mix64(&s) % (uint64_t)(V - 1));
			continue;
		}
		double u = rng_uniform(&s);
		int lo = 1, hi = V - 1;   /* first i with cdf[i] >= u */
		while (lo < hi) {
			int mid = lo + (hi - lo) / 2;
			if (m->cdf[mid] >= u)
				hi = mid;
			else
				lo = mid + 1;
		}
		m->neg[i] = lo;
	}
}

/* --- forward / backward ------------------------------------------------------
 * Parameter gradients accumulate (+=); activation gradients are written. */

int seqrec_forward(struct seqrec *m, const struct seqrec_batch *bt, int train, double *loss)
{
	const struct seqrec_config *c = &m->cfg;
	const struct kern_ops *ops = m->k->ops;
	struct kern *k = m->k;
	const struct seqrec_params *p = &m->params;
	struct seqrec_acts *a = &m->acts;
	int B = bt->B, T = bt->T, C = c->C, F = c->F, NH = c->NH, L = c->L, V = c->V;
	int NI = seqrec_config_inputs(c);
	size_t N = (size_t)B * T, BTmax = (size_t)m->B * m->T;
	int ntargets = 0;

	if (B < 1 || B > m->B || T < 1 || T > m->T)
		return -EINVAL;
	if (train && !m->grad_mem)
		return -EINVAL;
	/* Indices are checked here, once, because the kernels trust them. */
	for (int b = 0; b < B; b++)
		if (bt->pad[b] < 0 || bt->pad[b] > T)
			return -EINVAL;
	for (size_t i = 0; i < N; i++)
		if (bt->inputs[i] < 0 || bt->inputs[i] >= V)
			return -EINVAL;
	{
		int slot = 1;
		for (int f = 0; f < SEQREC_FEAT_COUNT; f++) {
			if (!(c->features & SEQREC_FEAT_BIT(f)))
				continue;
			const int32_t *idx = bt->inputs + (size_t)slot++ * N;
			for (size_t i = 0; i < N; i++)
				if (idx[i] < 0 || idx[i] >= seqrec_features[f].rows)
					return -EINVAL;
		}
	}
	if (bt->targets)
		for (size_t i = 0; i < N; i++) {
			if (bt->targets[i] < 0 || bt->targets[i] >= V)
				return -EINVAL;
			ntargets += bt->targets[i] != 0;
		}

	memcpy(m->in, bt->inputs, (size_t)NI * N * sizeof *m->in);
	memcpy(m->pad, bt->pad, (size_t)B * sizeof *m->pad);
	/* padding slots take row 0 under SEQREC_POS_FIRST: nothing sees them */
	for (int b = 0; b < B; b++)
		for (int t = 0; t < T; t++)
			m->pos[(size_t)b * T + t] = c->pos == SEQREC_POS_FIRST ? (t >= bt->pad[b] ? t - bt->pad[b] : 0)
			                                                       : t + (m->T - T);
	m->cur_B = B;
	m->cur_T = T;
	m->cur_train = 0;
	m->cur_seed = bt->seed;
	m->cur_ntargets = ntargets;
	float pdrop = train ? c->dropout : 0.0f;
	int sasrec = c->block == SEQREC_BLOCK_SASREC;
	/* SASRec's wiring drops the attention probabilities, not the branch's
	 * output (nn.MultiheadAttention); pre-LN drops the branch's output */
	float pbranch = sasrec ? 0.0f : pdrop;
	struct kern_attn_shape sh = { .B = B, .T = T, .C = C, .NH = NH, .pad = m->pad,
	                              .dropout = train ? c->attn_dropout : 0.0f };

	/* the input: item (scaled) + position + features */
	memset(a->encoded, 0, N * C * sizeof(float));
	ops->embed_forward(k, a->encoded, p->wte, m->in, (int)N, C);
	if (c->scale_emb)
		ops->scale(k, a->encoded, sqrtf((float)C), N * C);
	ops->embed_forward(k, a->encoded, p->wpe, m->pos, (int)N, C);
	{
		int slot = 1;
		for (int f = 0; f < SEQREC_FEAT_COUNT; f++)
			if (c->features & SEQREC_FEAT_BIT(f))
				ops->embed_forward(k, a->encoded, p->feat[f], m->in + (size_t)slot++ * N, (int)N, C);
	}
	if (pdrop > 0.0f)
		ops->dropout_forward(k, a->resid, a->encoded, N * C, pdrop, site_seed(bt->seed, 0));
	else
		memcpy(a->resid, a->encoded, N * C * sizeof(float));

	for (int l = 0; l < L; l++) {
		float *x = a->resid + l * BTmax * C, *xnext = a->resid + (l + 1) * BTmax * C;
		float *ln1 = a->ln1 + l * BTmax * C, *m1 = a->ln1_mean + l * BTmax, *r1 = a->ln1_rstd + l * BTmax;
		float *qkv = a->qkv + l * BTmax * 3 * C, *atty = a->atty + l * BTmax * C;
		float *lse = a->lse + l * BTmax * NH, *resmid = a->resmid + l * BTmax * C;
		float *ln2 = a->ln2 + l * BTmax * C, *m2 = a->ln2_mean + l * BTmax, *r2 = a->ln2_rstd + l * BTmax;
		float *fch = a->fch + l * BTmax * F, *fcha = a->fcha + l * BTmax * F;
		size_t lc = (size_t)l * C, l3c = (size_t)l * 3 * C;

		ops->layernorm_forward(k, ln1, m1, r1, x, p->ln1w + lc, p->ln1b + lc, (int)N, C);
		if (sasrec) {
			/* q from ln1(x), k and v from x: two matmuls, then q|k|v side by side
			 * per row as the attention op takes them (d3C is free in the forward pass) */
			ops->matmul_forward(k, a->tmp, ln1, p->qkvw + l3c * C, p->qkvb + l3c, (int)N, C, C);
			ops->matmul_forward(k, a->d3C, x, p->qkvw + (l3c + C) * C, p->qkvb + l3c + C, (int)N, C, 2 * C);
			for (size_t n = 0; n < N; n++) {
				memcpy(qkv + n * 3 * C, a->tmp + n * C, (size_t)C * sizeof(float));
				memcpy(qkv + n * 3 * C + C, a->d3C + n * 2 * C, 2 * (size_t)C * sizeof(float));
			}
		} else {
			ops->matmul_forward(k, qkv, ln1, p->qkvw + l3c * C, p->qkvb + l3c, (int)N, C, 3 * C);
		}
		sh.seed = site_seed(bt->seed, SITE_ATTN + (uint64_t)l);
		ops->attention_forward(k, atty, lse, qkv, &sh);
		ops->matmul_forward(k, a->tmp, atty, p->attprojw + lc * C, p->attprojb + lc, (int)N, C, C);
		const float *branch = a->tmp;
		if (pbranch > 0.0f) {
			ops->dropout_forward(k, a->tmp2, a->tmp, N * C, pdrop, site_seed(bt->seed, 1 + 2 * (uint64_t)l));
			branch = a->tmp2;
		}
		ops->add(k, resmid, sasrec ? ln1 : x, branch, N * C);

		ops->layernorm_forward(k, ln2, m2, r2, resmid, p->ln2w + lc, p->ln2b + lc, (int)N, C);
		ops->matmul_forward(k, fch, ln2, p->fcw + (size_t)l * F * C, p->fcb + (size_t)l * F, (int)N, C, F);
		/* SASRec's point-wise feed-forward drops inside too: fcha keeps
		 * drop(act(fch)), what the projection saw; dF1 is free in the forward pass */
		float *act_out = pdrop > 0.0f ? a->dF1 : fcha;
		if (c->act == SEQREC_ACT_GELU)
			ops->gelu_forward(k, act_out, fch, N * F);
		else
			ops->relu_forward(k, act_out, fch, N * F);
		if (pdrop > 0.0f)
			ops->dropout_forward(k, fcha, act_out, N * F, pdrop, site_seed(bt->seed, SITE_FFN_INNER + (uint64_t)l));
		ops->matmul_forward(k, a->tmp, fcha, p->fcprojw + lc * F, p->fcprojb + lc, (int)N, F, C);
		branch = a->tmp;
		if (pdrop > 0.0f) {
			ops->dropout_forward(k, a->tmp2, a->tmp, N * C, pdrop, site_seed(bt->seed, 2 + 2 * (uint64_t)l));
			branch = a->tmp2;
		}
		ops->add(k, xnext, sasrec ? ln2 : resmid, branch, N * C);
	}
	ops->layernorm_forward(k, a->lnf, a->lnf_mean, a->lnf_rstd, a->resid + (size_t)L * BTmax * C,
	                       p->lnfw, p->lnfb, (int)N, C);

	double sum = 0.0;
	if (bt->targets && ntargets > 0) {
		struct kern_xent_shape xs = { (int)N, C, V, bt->targets, bt->mask_seen ? m->in : NULL, T };
		float dscale = 1.0f / (float)ntargets;
		float *dh = NULL, *demb = NULL;
		if (train) {
			memset(a->dlnf, 0, N * C * sizeof(float));
			dh = a->dlnf;
			demb = m->grads.wte;
		}
		if (c->loss == SEQREC_LOSS_SAMPLED && train) {
			sample_negatives(m, bt->seed);
			sum = ops->xent_sampled(k, dh, demb, a->lnf, p->wte, &xs, m->neg, c->neg, m->logq, dscale);
		} else {
			sum = ops->xent_full(k, dh, demb, a->lnf, p->wte, &xs, dscale);
		}
	} else if (train) {
		memset(a->dlnf, 0, N * C * sizeof(float));
	}
	m->cur_train = train;
	if (loss)
		*loss = ntargets ? sum / ntargets : 0.0;
	return 0;
}

int seqrec_backward(struct seqrec *m)
{
	const struct seqrec_config *c = &m->cfg;
	const struct kern_ops *ops = m->k->ops;
	struct kern *k = m->k;
	const struct seqrec_params *p = &m->params;
	const struct seqrec_params *g = &m->grads;
	struct seqrec_acts *a = &m->acts;
	int B = m->cur_B, T = m->cur_T, C = c->C, F = c->F, NH = c->NH, L = c->L;
	size_t N = (size_t)B * T, BTmax = (size_t)m->B * m->T;
	float pdrop = c->dropout;
	int sasrec = c->block == SEQREC_BLOCK_SASREC;
	float pbranch = sasrec ? 0.0f : pdrop;  /* as in seqrec_forward */
	struct kern_attn_shape sh = { .B = B, .T = T, .C = C, .NH = NH, .pad = m->pad, .dropout = c->attn_dropout };

	if (!m->cur_train || !m->grad_mem)
		return -EINVAL;
	m->cur_train = 0;  /* one backward per forward: the loss gradient is consumed */

	ops->layernorm_backward(k, a->dres, g->lnfw, g->lnfb, a->dlnf, a->resid + (size_t)L * BTmax * C,
	                        p->lnfw, a->lnf_mean, a->lnf_rstd, (int)N, C);
	for (int l = L - 1; l >= 0; l--) {
		float *x = a->resid + l * BTmax * C;
		float *ln1 = a->ln1 + l * BTmax * C, *m1 = a->ln1_mean + l * BTmax, *r1 = a->ln1_rstd + l * BTmax;
		float *qkv = a->qkv + l * BTmax * 3 * C, *atty = a->atty + l * BTmax * C;
		float *lse = a->lse + l * BTmax * NH, *resmid = a->resmid + l * BTmax * C;
		float *ln2 = a->ln2 + l * BTmax * C, *m2 = a->ln2_mean + l * BTmax, *r2 = a->ln2_rstd + l * BTmax;
		float *fch = a->fch + l * BTmax * F, *fcha = a->fcha + l * BTmax * F;
		size_t lc = (size_t)l * C, l3c = (size_t)l * 3 * C;

		/* x_{l+1} = resmid + drop(fcproj(act(fc(ln2(resmid))))); dres holds d x_{l+1} */
		const float *dbranch = a->dres;
		if (pdrop > 0.0f) {
			ops->dropout_backward(k, a->dt1, a->dres, N * C, pdrop, site_seed(m->cur_seed, 2 + 2 * (uint64_t)l));
			dbranch = a->dt1;
		}
		ops->matmul_backward(k, a->dF2, g->fcprojw + lc * F, g->fcprojb + lc, dbranch, fcha,
		                     p->fcprojw + lc * F, (int)N, F, C);
		const float *dact = a->dF2;
		if (pdrop > 0.0f) {
			ops->dropout_backward(k, a->dF1, a->dF2, N * F, pdrop, site_seed(m->cur_seed, SITE_FFN_INNER + (uint64_t)l));
			dact = a->dF1;
		}
		float *dfch = pdrop > 0.0f ? a->dF2 : a->dF1;
		if (c->act == SEQREC_ACT_GELU)
			ops->gelu_backward(k, dfch, fch, dact, N * F);
		else
			ops->relu_backward(k, dfch, fch, dact, N * F);
		ops->matmul_backward(k, a->dt2, g->fcw + (size_t)l * F * C, g->fcb + (size_t)l * F, dfch, ln2,
		                     p->fcw + (size_t)l * F * C, (int)N, C, F);
		if (sasrec) {
			/* x_{l+1} = y + ffn(y), y = ln2(resmid): the residual reaches y */
			ops->add(k, a->dt2, a->dt2, a->dres, N * C);
			ops->layernorm_backward(k, a->dres, g->ln2w + lc, g->ln2b + lc, a->dt2, resmid, p->ln2w + lc,
			                        m2, r2, (int)N, C);
		} else {
			ops->layernorm_backward(k, a->dt1, g->ln2w + lc, g->ln2b + lc, a->dt2, resmid, p->ln2w + lc,
			                        m2, r2, (int)N, C);
			ops->add(k, a->dres, a->dres, a->dt1, N * C);
		}

		/* resmid = x + drop(attproj(attn(ln1(x)))); dres holds d resmid */
		dbranch = a->dres;
		if (pbranch > 0.0f) {
			ops->dropout_backward(k, a->dt1, a->dres, N * C, pdrop, site_seed(m->cur_seed, 1 + 2 * (uint64_t)l));
			dbranch = a->dt1;
		}
		ops->matmul_backward(k, a->dt2, g->attprojw + lc * C, g->attprojb + lc, dbranch, atty,
		                     p->attprojw + lc * C, (int)N, C, C);
		sh.seed = site_seed(m->cur_seed, SITE_ATTN + (uint64_t)l);
		ops->attention_backward(k, a->d3C, a->dt2, atty, lse, qkv, &sh);
		if (sasrec) {
			/* resmid = y + attn(q = y, kv = x), y = ln1(x): split dq and dkv */
			for (size_t n = 0; n < N; n++) {
				memcpy(a->dt1 + n * C, a->d3C + n * 3 * C, (size_t)C * sizeof(float));
				memcpy(a->d2C + n * 2 * C, a->d3C + n * 3 * C + C, 2 * (size_t)C * sizeof(float));
			}
			ops->matmul_backward(k, a->dt2, g->qkvw + l3c * C, g->qkvb + l3c, a->dt1, ln1,
			                     p->qkvw + l3c * C, (int)N, C, C);
			ops->add(k, a->dt2, a->dt2, a->dres, N * C);  /* + the residual's, into y */
			ops->matmul_backward(k, a->dt1, g->qkvw + (l3c + C) * C, g->qkvb + l3c + C, a->d2C, x,
			                     p->qkvw + (l3c + C) * C, (int)N, C, 2 * C);
			ops->layernorm_backward(k, a->dres, g->ln1w + lc, g->ln1b + lc, a->dt2, x, p->ln1w + lc,
			                        m1, r1, (int)N, C);
			ops->add(k, a->dres, a->dres, a->dt1, N * C);  /* + through k and v */
		} else {
			ops->matmul_backward(k, a->dt1, g->qkvw + l3c * C, g->qkvb + l3c, a->d3C, ln1,
			                     p->qkvw + l3c * C, (int)N, C, 3 * C);
			ops->layernorm_backward(k, a->dt2, g->ln1w + lc, g->ln1b + lc, a->dt1, x, p->ln1w + lc,
			                        m1, r1, (int)N, C);
			ops->add(k, a->dres, a->dres, a->dt2, N * C);
		}
	}

	/* resid[0] = drop(encoded) */
	const float *dx = a->dres;
	if (pdrop > 0.0f) {
		ops->dropout_backward(k, a->dt1, a->dres, N * C, pdrop, site_seed(m->cur_seed, 0));
		dx = a->dt1;
	}
	ops->embed_backward(k, g->wpe, dx, m->pos, (int)N, C);
	int slot = 1;
	for (int f = 0; f < SEQREC_FEAT_COUNT; f++)
		if (c->features & SEQREC_FEAT_BIT(f))
			ops->embed_backward(k, g->feat[f], dx, m->in + (size_t)slot++ * N, (int)N, C);
	if (c->scale_emb) {
		memcpy(a->dt2, dx, N * C * sizeof(float));
		ops->scale(k, a->dt2, sqrtf((float)C), N * C);
		dx = a->dt2;
	}
	ops->embed_backward(k, g->wte, dx, m->in, (int)N, C);
	return 0;
}

void seqrec_optim_default(struct seqrec_optim *o)
{
	memset(o, 0, sizeof *o);
	o->lr = 1e-3f;
	o->lr_min = 1e-4f;
	/* SASRec+ uses torch.optim.Adam's defaults (beta2 0.999, no clipping);
	 * on ML-1M that recipe as a whole (with SASRec's wiring, attention
	 * dropout and last windows) tested below this one: see README */
	o->beta1 = 0.9f;
	o->beta2 = 0.98f;
	o->eps = 1e-8f;
	o->weight_decay = 0.0f;
	o->clip = 1.0f;
}

int seqrec_step(struct seqrec *m, const struct seqrec_optim *o, float *gnorm, float *lr_used)
{
	const struct kern_ops *ops = m->k->ops;
	if (!m->grad_mem)
		return -EINVAL;
	float norm = (float)sqrt(ops->sumsq(m->k, m->grad_mem, m->nparams));
	/* torch.nn.utils.clip_grad_norm_'s rule, so the reference test can use it */
	if (o->clip > 0.0f && norm > o->clip)
		ops->scale(m->k, m->grad_mem, o->clip / (norm + 1e-6f), m->nparams);
	m->adam_t++;
	float lr = kern_lr_schedule(m->adam_t, o->warmup, o->total, o->lr, o->lr_min);
	for (int i = 0; i < m->ntensors; i++) {
		const struct seqrec_tensor *t = &m->tensors[i];
		struct kern_adamw ao = { lr, o->beta1, o->beta2, o->eps,
		                         (t->decay || o->decay_all) ? o->weight_decay : 0.0f, m->adam_t };
		ops->adamw(m->k, m->param_mem + t->off, m->grad_mem + t->off, m->m_mem + t->off,
		           m->v_mem + t->off, t->n, &ao, NULL);
	}
	if (gnorm)
		*gnorm = norm;
	if (lr_used)
		*lr_used = lr;
	return 0;
}

/* --- inputs from the store ---------------------------------------------------- */

void seqrec_encode_events(const struct seqrec_config *c, const struct store_event *ev, size_t n,
                          int32_t *inputs, int B, int T, int b, int32_t *pad, int *used)
{
	size_t N = (size_t)B * T;
	int32_t *items = inputs + (size_t)b * T;
	int kept = 0;
	/* newest first from the right end, so only the last T known events are read */
	size_t i = n;
	int t = T;
	while (i > 0 && t > 0) {
		const struct store_event *e = &ev[--i];
		if (e->item == 0 || e->item >= (uint32_t)c->V)
			continue;
		/* the previous event the model knows, for features that need it */
		const struct store_event *prev = NULL;
		for (size_t j = i; j > 0; j--)
			if (ev[j - 1].item != 0 && ev[j - 1].item < (uint32_t)c->V) {
				prev = &ev[j - 1];
				break;
			}
		t--;
		items[t] = (int32_t)e->item;
		int slot = 1;
		for (int f = 0; f < SEQREC_FEAT_COUNT; f++)
			if (c->features & SEQREC_FEAT_BIT(f))
				inputs[(size_t)slot++ * N + (size_t)b * T + t] = seqrec_features[f].index(e, prev);
		kept++;
	}
	for (int s = 0; s < t; s++) {
		items[s] = 0;
		int slot = 1;
		for (int f = 0; f < SEQREC_FEAT_COUNT; f++)
			if (c->features & SEQREC_FEAT_BIT(f))
				inputs[(size_t)slot++ * N + (size_t)b * T + s] = 0;
	}
	*pad = t;
	if (used)
		*used = kept;
}

/* --- inference ----------------------------------------------------------------- */

int seqrec_user_repr(struct seqrec *m, const int32_t *inputs, int n, float *h)
{
	if (n < 1 || n > m->T)
		return -EINVAL;
	int32_t pad = 0;
	struct seqrec_batch bt = { 1, n, inputs, &pad, NULL, 0, 0 };
	int r = seqrec_forward(m, &bt, 0, NULL);
	if (r < 0)
		return r;
	memcpy(h, m->acts.lnf + (size_t)(n - 1) * m->cfg.C, (size_t)m->cfg.C * sizeof(float));
	return 0;
}

int seqrec_user_repr_events(struct seqrec *m, const struct store_event *ev, size_t n, float *h, int *used)
{
	int T = m->T, NI = seqrec_config_inputs(&m->cfg), got;
	int32_t pad;
	seqrec_encode_events(&m->cfg, ev, n, m->enc, 1, T, 0, &pad, &got);
	if (got == 0)
		return -ENODATA;
	/* (NI, 1, T) left-padded -> (NI, got) compact: the forward pass then
	 * costs what the history is long, not T */
	for (int s = 0; s < NI; s++)
		memmove(m->enc + (size_t)s * got, m->enc + (size_t)s * T + pad, (size_t)got * sizeof *m->enc);
	int r = seqrec_user_repr(m, m->enc, got, h);
	if (r == 0 && used)
		*used = got;
	return r;
}

const float *seqrec_hidden(const struct seqrec *m)
{
	return m->acts.lnf;
}

int seqrec_score(struct seqrec *m, const float *h, const int32_t *cand, int ncand, float *scores)
{
	for (int i = 0; i < ncand; i++)
		if (cand[i] < 1 || cand[i] >= m->cfg.V)
			return -EINVAL;
	if (ncand > 0)
		m->k->ops->score(m->k, scores, h, m->params.wte, cand, 1, m->cfg.C, ncand);
	return 0;
}

/* a better than b: higher score, then lower id (deterministic ties) */
static int topk_better(float sa, uint32_t ia, float sb, uint32_t ib)
{
	return sa > sb || (sa == sb && ia < ib);
}

int seqrec_topk(struct seqrec *m, const float *h, int k, const uint32_t *exclude, size_t nexclude,
                uint32_t *items, float *scores, int *got)
{
	int V = m->cfg.V, n = 0;
	float *s = m->scores;
	if (k < 0)
		return -EINVAL;
	m->k->ops->score(m->k, s, h, m->params.wte, NULL, 1, m->cfg.C, V);
	s[0] = -INFINITY;
	for (size_t i = 0; i < nexclude; i++)
		if (exclude[i] < (uint32_t)V)
			s[exclude[i]] = -INFINITY;
	/* a min-heap of the k best so far: the worst of them at the root */
	for (int i = 1; i < V && k > 0; i++) {
		if (s[i] == -INFINITY || isnan(s[i]))
			continue;
		if (n < k) {
			int j = n++;
			while (j > 0) {
				int up = (j - 1) / 2;
				if (!topk_better(scores[up], items[up], s[i], (uint32_t)i))
					break;
				scores[j] = scores[up]; items[j] = items[up];
				j = up;
			}
			scores[j] = s[i]; items[j] = (uint32_t)i;
		} else if (topk_better(s[i], (uint32_t)i, scores[0], items[0])) {
			int j = 0;
			for (;;) {
				int l = 2 * j + 1, r = l + 1, w = j;
				float ws = s[i]; uint32_t wi = (uint32_t)i;
				if (l < n && topk_better(ws, wi, scores[l], items[l])) { w = l; ws = scores[l]; wi = items[l]; }
				if (r < n && topk_better(ws, wi, scores[r], items[r])) { w = r; }
				if (w == j)
					break;
				scores[j] = scores[w]; items[j] = items[w];
				j = w;
			}
			scores[j] = s[i]; items[j] = (uint32_t)i;
		}
	}
	/* heap to best-first order: repeatedly move the worst to the end */
	for (int end = n - 1; end > 0; end--) {
		float ts = scores[end]; uint32_t ti = items[end];
		scores[end] = scores[0]; items[end] = items[0];
		int j = 0;
		for (;;) {
			int l = 2 * j + 1, r = l + 1, w = j;
			float ws = ts; uint32_t wi = ti;
			if (l < end && topk_better(ws, wi, scores[l], items[l])) { w = l; ws = scores[l]; wi = items[l]; }
			if (r < end && topk_better(ws, wi, scores[r], items[r])) { w = r; }
			if (w == j)
				break;
			scores[j] = scores[w]; items[j] = items[w];
			j = w;
		}
		scores[j] = ts; items[j] = ti;
	}
	*got = n;
	return 0;
}

int seqrec_influence(struct seqrec *m, int n, float *w)
{
	const struct seqrec_config *c = &m->cfg;
	size_t BTmax = (size_t)m->B * m->T;
	if (m->cur_B != 1 || m->cur_T != n || n < 1)
		return -EINVAL;
	int l = c->L - 1;
	struct kern_attn_shape sh = { .B = 1, .T = n, .C = c->C, .NH = c->NH, .pad = m->pad };
	float *row = m->acts.dt1;  /* (NH, n) fits: dt1 holds B*T*C >= NH*T floats */
	m->k->ops->attention_row(m->k, row, m->acts.qkv + l * BTmax * 3 * c->C, m->acts.lse + l * BTmax * c->NH,
	                         &sh, 0, n - 1);
	for (int t = 0; t < n; t++) {
		float acc = 0.0f;
		for (int h = 0; h < c->NH; h++)
			acc += row[(size_t)h * n + t];
		w[t] = acc / (float)c->NH;
	}
	return 0;
}

/* --- checkpoints ----------------------------------------------------------------- */

static void put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put_u64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get_u64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

size_t seqrec_ckpt_size(const struct seqrec *m)
{
	return SEQREC_CKPT_HEADER + m->nparams * sizeof(float);
}

int seqrec_serialize(const struct seqrec *m, void *buf, size_t cap)
{
	const struct seqrec_config *c = &m->cfg;
	uint8_t *h = buf;
	size_t pbytes = m->nparams * sizeof(float);
	if (cap < seqrec_ckpt_size(m))
		return -ENOSPC;
	memset(h, 0, SEQREC_CKPT_HEADER);
	memcpy(h, SEQREC_CKPT_MAGIC, 8);
	put_u32(h + 8, SEQREC_CKPT_VERSION);
	put_u32(h + 12, SEQREC_CKPT_HEADER);
	put_u32(h + 16, (uint32_t)c->C);
	put_u32(h + 20, (uint32_t)c->NH);
	put_u32(h + 24, (uint32_t)c->L);
	put_u32(h + 28, (uint32_t)c->T);
	put_u32(h + 32, (uint32_t)c->F);
	put_u32(h + 36, (uint32_t)c->V);
	put_u32(h + 40, (uint32_t)c->act);
	put_u32(h + 44, c->features);
	put_u32(h + 48, (uint32_t)c->scale_emb);
	put_u32(h + 52, (uint32_t)c->loss);
	put_u32(h + 56, (uint32_t)c->neg);
	memcpy(h + 60, &c->dropout, 4);
	put_u64(h + 64, m->nparams);
	put_u32(h + 104, (uint32_t)c->block);
	put_u32(h + 108, (uint32_t)c->pos);
	memcpy(h + 112, &c->attn_dropout, 4);
	crypto_generichash(h + 72, 32, (const unsigned char *)m->param_mem, pbytes, NULL, 0);
	memcpy(h + SEQREC_CKPT_HEADER, m->param_mem, pbytes);
	return 0;
}

/* The header's checks; *nparams gets the parameter count it declares. */
static int ckpt_header(const void *buf, size_t len, struct seqrec_config *cfg, uint64_t *nparams,
                       char *why, size_t whylen)
{
	const uint8_t *h = buf;
	struct seqrec_config c;
	int r;

	if (len < 16)
		return seqrec_why(why, whylen, -EINVAL, "truncated: %zu bytes, a checkpoint header needs %u",
		                  len, SEQREC_CKPT_HEADER);
	if (memcmp(h, SEQREC_CKPT_MAGIC, 8) != 0)
		return seqrec_why(why, whylen, -EPROTO, "bad magic: not a recd sequence-model checkpoint "
		                  "(expected \"%s\")", SEQREC_CKPT_MAGIC);
	if (get_u32(h + 8) != SEQREC_CKPT_VERSION)
		return seqrec_why(why, whylen, -EPROTO, "format version %u, expected %u",
		                  get_u32(h + 8), SEQREC_CKPT_VERSION);
	if (get_u32(h + 12) != SEQREC_CKPT_HEADER)
		return seqrec_why(why, whylen, -EINVAL, "header of %u bytes, expected %u",
		                  get_u32(h + 12), SEQREC_CKPT_HEADER);
	if (len < SEQREC_CKPT_HEADER)
		return seqrec_why(why, whylen, -EINVAL, "truncated: %zu bytes, a checkpoint header needs %u",
		                  len, SEQREC_CKPT_HEADER);
	memset(&c, 0, sizeof c);
	/* every u32 field must fit an int before the range checks look at it */
	static const struct { const char *name; unsigned off; } u32f[] = {
		{ "C", 16 }, { "NH", 20 }, { "L", 24 }, { "T", 28 }, { "F", 32 }, { "V", 36 }, { "act", 40 },
		{ "scale_emb", 48 }, { "loss", 52 }, { "neg", 56 }, { "block", 104 },
		{ "pos", 108 },
	};
	for (size_t i = 0; i < sizeof u32f / sizeof u32f[0]; i++)
		if (get_u32(h + u32f[i].off) > INT32_MAX)
			return seqrec_why(why, whylen, -EINVAL, "config out of range: %s is %u", u32f[i].name,
			                  get_u32(h + u32f[i].off));
	c.C = (int)get_u32(h + 16);
	c.NH = (int)get_u32(h + 20);
	c.L = (int)get_u32(h + 24);
	c.T = (int)get_u32(h + 28);
	c.F = (int)get_u32(h + 32);
	c.V = (int)get_u32(h + 36);
	c.act = (enum seqrec_act)get_u32(h + 40);
	c.features = get_u32(h + 44);
	c.scale_emb = (int)get_u32(h + 48);
	c.loss = (enum seqrec_loss)get_u32(h + 52);
	c.neg = (int)get_u32(h + 56);
	c.block = (enum seqrec_block)get_u32(h + 104);
	c.pos = (enum seqrec_pos)get_u32(h + 108);
	memcpy(&c.dropout, h + 60, 4);
	memcpy(&c.attn_dropout, h + 112, 4);
	if ((r = seqrec_config_check(&c, why, whylen)) < 0)
		return r;
	for (size_t i = 116; i < SEQREC_CKPT_HEADER; i++)
		if (h[i])
			return seqrec_why(why, whylen, -EINVAL, "reserved header byte %zu is not zero", i);
	struct seqrec_tensor t[SEQREC_MAX_TENSORS];
	int nt;
	size_t expect = seqrec_layout(&c, t, &nt, NULL, NULL);
	uint64_t np = get_u64(h + 64);
	if (np != expect)
		return seqrec_why(why, whylen, -EINVAL, "parameter count %llu does not match the config's %zu",
		                  (unsigned long long)np, expect);
	*cfg = c;
	*nparams = np;
	return 0;
}

int seqrec_ckpt_config(const void *buf, size_t len, struct seqrec_config *cfg, char *why, size_t whylen)
{
	uint64_t np;
	return ckpt_header(buf, len, cfg, &np, why, whylen);
}

int seqrec_deserialize(struct seqrec **out, struct kern *k, int B, const void *buf, size_t len,
                       char *why, size_t whylen)
{
	struct seqrec_config c;
	uint64_t np;
	uint8_t sum[32];
	const uint8_t *h = buf;
	struct seqrec *m;
	int r;

	if ((r = ckpt_header(buf, len, &c, &np, why, whylen)) < 0)
		return r;
	size_t want = SEQREC_CKPT_HEADER + np * sizeof(float);
	if (len < want)
		return seqrec_why(why, whylen, -EINVAL, "truncated: %zu bytes, expected %zu", len, want);
	if (len > want)
		return seqrec_why(why, whylen, -EINVAL, "%zu bytes after the parameters: %zu bytes, expected %zu",
		                  len - want, len, want);
	crypto_generichash(sum, sizeof sum, h + SEQREC_CKPT_HEADER, np * sizeof(float), NULL, 0);
	if (sodium_memcmp(sum, h + 72, sizeof sum) != 0)
		return seqrec_why(why, whylen, -EINVAL, "checksum mismatch: the parameters are corrupt");
	if ((r = seqrec_new(&m, &c, k, B)) < 0)
		return seqrec_why(why, whylen, r, "cannot create the model: %s", strerror(-r));
	memcpy(m->param_mem, h + SEQREC_CKPT_HEADER, np * sizeof(float));
	*out = m;
	return 0;
}

int seqrec_save_file(const struct seqrec *m, const char *path, char *why, size_t whylen)
{
	size_t len = seqrec_ckpt_size(m), plen = strlen(path);
	char *tmp = malloc(plen + 16);
	void *buf = malloc(len);
	int fd = -1, r;

	if (!tmp || !buf) {
		r = seqrec_why(why, whylen, -ENOMEM, "out of memory");
		goto out;
	}
	seqrec_serialize(m, buf, len);
	/* write beside the target, then rename: a crash leaves the old file whole */
	snprintf(tmp, plen + 16, "%s.tmpXXXXXX", path);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		r = seqrec_why(why, whylen, -errno, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	for (size_t done = 0; done < len;) {
		ssize_t w = write(fd, (const char *)buf + done, len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			r = seqrec_why(why, whylen, -errno, "%s: %s", tmp, strerror(errno));
			goto unlink;
		}
		done += (size_t)w;
	}
	if (fsync(fd) < 0 || close(fd) < 0) {
		fd = -1;
		r = seqrec_why(why, whylen, -errno, "%s: %s", tmp, strerror(errno));
		goto unlink;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		r = seqrec_why(why, whylen, -errno, "%s: %s", path, strerror(errno));
		goto unlink;
	}
	r = 0;
	goto out;
unlink:
	if (fd >= 0)
		close(fd);
	fd = -1;
	unlink(tmp);
out:
	if (fd >= 0)
		close(fd);
	free(tmp);
	free(buf);
	return r;
}

#define SEQREC_FILE_MAX ((size_t)1 << 36)  /* 64 GiB: more than any config can declare */

int seqrec_load_file(struct seqrec **out, struct kern *k, int B, const char *path, char *why, size_t whylen)
{
	struct stat sb;
	uint8_t *buf = NULL;
	int fd, r;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return seqrec_why(why, whylen, -errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &sb) < 0) {
		r = seqrec_why(why, whylen, -errno, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		r = seqrec_why(why, whylen, -EINVAL, "%s: not a regular file", path);
		goto out;
	}
	if ((uint64_t)sb.st_size > SEQREC_FILE_MAX) {
		r = seqrec_why(why, whylen, -EFBIG, "%s: %lld bytes is larger than any checkpoint", path,
		               (long long)sb.st_size);
		goto out;
	}
	size_t len = (size_t)sb.st_size;
	if (!(buf = malloc(len ? len : 1))) {
		r = seqrec_why(why, whylen, -ENOMEM, "out of memory");
		goto out;
	}
	size_t done = 0;
	while (done < len) {
		ssize_t n = read(fd, buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = seqrec_why(why, whylen, -errno, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	char inner[256];
	if ((r = seqrec_deserialize(out, k, B, buf, done, inner, sizeof inner)) < 0)
		seqrec_why(why, whylen, r, "%s: %s", path, inner);
out:
	free(buf);
	close(fd);
	return r;
}

struct save_ctx {
	struct store_model_meta *meta;
	const void *blob;
	size_t len;
};

static int save_in_txn(struct store_txn *tx, void *arg)
{
	struct save_ctx *s = arg;
	return store_model_put(tx, s->meta, s->blob, s->len);
}

int seqrec_save_store(const struct seqrec *m, struct store *st, struct store_model_meta *meta,
                      char *why, size_t whylen)
{
	size_t len = seqrec_ckpt_size(m);
	void *buf = malloc(len);
	if (!buf)
		return seqrec_why(why, whylen, -ENOMEM, "out of memory");
	seqrec_serialize(m, buf, len);
	snprintf(meta->kind, sizeof meta->kind, "%s", SEQREC_MODEL_KIND);
	struct save_ctx s = { meta, buf, len };
	int r = store_write(st, save_in_txn, &s);
	if (r < 0)
		seqrec_why(why, whylen, r, "%s", store_errmsg(st));
	free(buf);
	return r;
}

int seqrec_load_store(struct seqrec **out, struct kern *k, int B, struct store *st, uint32_t version,
                      struct store_model_meta *meta, char *why, size_t whylen)
{
	struct store_txn *tx;
	struct store_model_meta mm;
	const void *blob;
	size_t len;
	int r;

	if ((r = store_read_begin(st, &tx)) < 0)
		return seqrec_why(why, whylen, r, "%s", store_errmsg(st));
	if (version == 0 && (r = store_model_latest(tx, &version)) < 0) {
		seqrec_why(why, whylen, r, "%s", store_errmsg(st));
		goto out;
	}
	if ((r = store_model_get(tx, version, &mm, &blob, &len)) < 0) {
		seqrec_why(why, whylen, r, "%s", store_errmsg(st));
		goto out;
	}
	if (strcmp(mm.kind, SEQREC_MODEL_KIND) != 0) {
		r = seqrec_why(why, whylen, -EINVAL, "model version %u is a \"%s\", expected \"%s\"",
		               version, mm.kind, SEQREC_MODEL_KIND);
		goto out;
	}
	char inner[256];
	if ((r = seqrec_deserialize(out, k, B, blob, len, inner, sizeof inner)) < 0) {
		seqrec_why(why, whylen, r, "model version %u: %s", version, inner);
		goto out;
	}
	if (meta)
		*meta = mm;
out:
	store_txn_end(tx);
	return r;
}
