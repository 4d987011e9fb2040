/* train.c: reading the sequence model's data from the store, the
 * leave-one-out split and the training loop (epochs of shuffled user
 * batches, AdamW, validation NDCG@10, early stopping, progress reports). */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/eval.h"
#include "model/train.h"
#include "model/model_int.h"


static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* --- data ------------------------------------------------------------------------ */

void seqrec_data_free(struct seqrec_data *d)
{
	if (!d)
		return;
	free(d->user);
	free(d->off);
	free(d->ev);
	free(d->item_count);
	free(d->ts);
	free(d);
}

struct load_ctx {
	struct seqrec_data *d;
	const struct seqrec_config *cfg;
	uint64_t cap_ev;
	uint32_t cap_users;
	uint32_t cur_user;
	int have_user;
	struct store_event prev;
	int have_prev;
	int err;
};

static int load_event(uint32_t user, const struct store_event *ev, void *arg)
{
	struct load_ctx *x = arg;
	struct seqrec_data *d = x->d;
	if (ev->item == 0 || ev->item >= (uint32_t)d->V)
		return 0;  /* an item added after the count was taken cannot happen in one txn; be safe */
	if (!x->have_user || user != x->cur_user) {
		if (d->nusers + 1 >= x->cap_users) {
			uint32_t nc = x->cap_users * 2 + 16;
			uint32_t *nu = realloc(d->user, nc * sizeof *nu);
			uint64_t *no = nu ? realloc(d->off, ((size_t)nc + 1) * sizeof *no) : NULL;
			if (nu)
				d->user = nu;
			if (!nu || !no)
				return x->err = -ENOMEM;
			d->off = no;
			x->cap_users = nc;
		}
		d->user[d->nusers] = user;
		d->off[d->nusers] = d->nevents;
		d->nusers++;
		x->cur_user = user;
		x->have_user = 1;
		x->have_prev = 0;
	}
	if (d->nevents >= x->cap_ev) {
		uint64_t nc = x->cap_ev * 2 + 1024;
		int32_t *ne = realloc(d->ev, (size_t)nc * (size_t)d->NI * sizeof *ne);
		if (!ne)
			return x->err = -ENOMEM;
		d->ev = ne;
		int64_t *nt = realloc(d->ts, (size_t)nc * sizeof *nt);
		if (!nt)
			return x->err = -ENOMEM;
		d->ts = nt;
		x->cap_ev = nc;
	}
	d->ts[d->nevents] = ev->ts;
	if (ev->ts > d->max_ts)
		d->max_ts = ev->ts;
	int32_t *row = d->ev + d->nevents * (uint64_t)d->NI;
	row[0] = (int32_t)ev->item;
	int slot = 1;
	for (int f = 0; f < SEQREC_FEAT_COUNT; f++)
		if (x->cfg->features & SEQREC_FEAT_BIT(f))
			row[slot++] = seqrec_features[f].index(ev, x->have_prev ? &x->prev : NULL);
	x->prev = *ev;
	x->have_prev = 1;
	d->item_count[ev->item]++;
	d->nevents++;
	return 0;
}

int seqrec_data_load(struct seqrec_data **out, struct store *st, const struct seqrec_config *cfg,
                     char *why, size_t whylen)
{
	struct store_txn *tx = NULL;
	struct store_counts c;
	struct seqrec_data *d;
	int r;

	if (!(d = calloc(1, sizeof *d)))
		return seqrec_why(why, whylen, -ENOMEM, "out of memory");
	d->NI = seqrec_config_inputs(cfg);
	d->max_ts = INT64_MIN;
	if ((r = store_read_begin(st, &tx)) < 0 || (r = store_counts(tx, &c)) < 0) {
		seqrec_why(why, whylen, r, "%s", store_errmsg(st));
		goto fail;
	}
	if (c.items + 1 > (1u << 28)) {
		r = seqrec_why(why, whylen, -E2BIG, "%llu items is more than the model takes", (unsigned long long)c.items);
		goto fail;
	}
	d->V = (int)c.items + 1;
	d->snapshot_events = c.events;
	struct load_ctx x = { d, cfg, c.events, 0, 0, 0, { 0 }, 0, 0 };
	x.cap_users = (uint32_t)(c.users < UINT32_MAX - 2 ? c.users + 1 : UINT32_MAX - 1);
	d->user = malloc((size_t)x.cap_users * sizeof *d->user);
	d->off = malloc(((size_t)x.cap_users + 1) * sizeof *d->off);
	d->ev = malloc(((size_t)c.events + 1) * (size_t)d->NI * sizeof *d->ev);
	d->ts = malloc(((size_t)c.events + 1) * sizeof *d->ts);
	d->item_count = calloc((size_t)d->V, sizeof *d->item_count);
	if (!d->user || !d->off || !d->ev || !d->ts || !d->item_count) {
		r = seqrec_why(why, whylen, -ENOMEM, "out of memory for %llu events", (unsigned long long)c.events);
		goto fail;
	}
	r = store_events_foreach_all(tx, load_event, &x);
	if (x.err) {
		r = seqrec_why(why, whylen, x.err, "out of memory reading events");
		goto fail;
	}
	if (r < 0) {
		seqrec_why(why, whylen, r, "%s", store_errmsg(st));
		goto fail;
	}
	store_txn_end(tx);
	d->off[d->nusers] = d->nevents;
	*out = d;
	return 0;
fail:
	if (tx)
		store_txn_end(tx);
	seqrec_data_free(d);
	return r;
}

int seqrec_data_from_items(struct seqrec_data **out, const struct seqrec_config *cfg, int V,
                           const int32_t *items, const uint64_t *user_off, uint32_t nusers)
{
	struct seqrec_data *d = calloc(1, sizeof *d);
	uint64_t n = user_off[nusers];
	if (!d)
		return -ENOMEM;
	d->NI = seqrec_config_inputs(cfg);
	d->V = V;
	d->nusers = nusers;
	d->nevents = n;
	d->snapshot_events = n;
	d->user = malloc(((size_t)nusers + 1) * sizeof *d->user);
	d->off = malloc(((size_t)nusers + 1) * sizeof *d->off);
	d->ev = calloc((size_t)n * (size_t)d->NI + 1, sizeof *d->ev);
	d->ts = calloc((size_t)n + 1, sizeof *d->ts);
	d->item_count = calloc((size_t)V, sizeof *d->item_count);
	if (!d->user || !d->off || !d->ev || !d->ts || !d->item_count) {
		seqrec_data_free(d);
		return -ENOMEM;
	}
	d->max_ts = INT64_MIN;
	for (uint32_t u = 0; u < nusers; u++)
		for (uint64_t i = user_off[u]; i < user_off[u + 1]; i++) {
			d->ts[i] = (int64_t)(i - user_off[u]);
			if (d->ts[i] > d->max_ts)
				d->max_ts = d->ts[i];
		}
	for (uint32_t u = 0; u < nusers; u++)
		d->user[u] = u + 1;
	memcpy(d->off, user_off, ((size_t)nusers + 1) * sizeof *d->off);
	for (uint64_t i = 0; i < n; i++) {
		if (items[i] < 1 || items[i] >= V) {
			seqrec_data_free(d);
			return -EINVAL;
		}
		d->ev[i * (uint64_t)d->NI] = items[i];
		d->item_count[items[i]]++;
	}
	*out = d;
	return 0;
}

uint64_t seqrec_split_input(const struct seqrec_data *d, uint32_t u, enum seqrec_split split,
                            uint64_t *first, uint64_t *target)
{
	uint64_t a = d->off[u], n = d->off[u + 1] - a;
	*first = a;
	*target = UINT64_MAX;
	switch (split) {
	case SEQREC_SPLIT_TRAIN: {
		uint64_t len = n >= 3 ? n - 2 : n;  /* the training part ... */
		return len >= 2 ? len - 1 : 0;      /* ... as inputs, each predicting the next */
	}
	case SEQREC_SPLIT_VALID:
		if (n < 3)
			return 0;
		*target = a + n - 2;
		return n - 2;
	case SEQREC_SPLIT_TEST:
		if (n < 3)
			return 0;
		*target = a + n - 1;
		return n - 1;
	}
	return 0;
}

void seqrec_fill_row(const struct seqrec_data *d, uint64_t first, uint64_t n, int32_t *inputs,
                     int32_t *targets, int32_t *pad, int B, int T, int b)
{
	size_t N = (size_t)B * T;
	int NI = d->NI;
	int len = n < (uint64_t)T ? (int)n : T;
	int p = T - len;
	uint64_t start = first + n - (uint64_t)len;
	for (int s = 0; s < NI; s++) {
		int32_t *dst = inputs + (size_t)s * N + (size_t)b * T;
		memset(dst, 0, (size_t)p * sizeof *dst);
		for (int t = 0; t < len; t++)
			dst[p + t] = d->ev[(start + (uint64_t)t) * (uint64_t)NI + (uint64_t)s];
	}
	if (targets) {
		int32_t *tg = targets + (size_t)b * T;
		memset(tg, 0, (size_t)p * sizeof *tg);
		for (int t = 0; t < len; t++)
			tg[p + t] = d->ev[(start + (uint64_t)t + 1) * (uint64_t)NI];
	}
	pad[b] = p;
}

/* --- training ------------------------------------------------------------------ */

/* qsort has no context argument; training runs one at a time per data set
 * and the comparison only reads it. */
static _Thread_local const struct seqrec_data *sort_ctx_data;

static int by_train_length(const void *a, const void *b)
{
	uint32_t ua = *(const uint32_t *)a, ub = *(const uint32_t *)b;
	uint64_t la = sort_ctx_data->off[ua + 1] - sort_ctx_data->off[ua];
	uint64_t lb = sort_ctx_data->off[ub + 1] - sort_ctx_data->off[ub];
	if (la != lb)
		return la < lb ? -1 : 1;
	return ua < ub ? -1 : ua > ub;  /* a total order: the same result for a seed */
}

void seqrec_train_defaults(struct seqrec_train_opts *o)
{
	memset(o, 0, sizeof *o);
	o->epochs = 100;
	o->patience = 10;
	o->batch = 128;
	o->eval_every = 1;
	o->seed = 1;
	o->bucket = 0;  /* length bucketing trades a little accuracy for speed; see train.h */
	o->windows = 1;
	/* ML-1M validation NDCG@10 about 0.01 higher at equal epochs than the
	 * whole catalog's softmax, from the first epochs on (README) */
	o->mask_seen = 1;
	seqrec_optim_default(&o->optim);
	o->optim.total = -1;
	o->optim.lr_min = o->optim.lr;  /* SASRec+: a constant rate */
}

int seqrec_train(struct seqrec *m, const struct seqrec_data *d, const struct seqrec_train_opts *o,
                 struct seqrec_train_result *res, char *why, size_t whylen)
{
	int B = o->batch, T = m->cfg.T, NI = d->NI, r;
	uint32_t *order = NULL, *border = NULL, nex = 0;
	int32_t *in = NULL, *tg = NULL, *pad = NULL;
	float *best = NULL;
	struct seqrec_train_result rs = { 0, 0, 0, NAN, 0.0, 0 };
	struct seqrec_optim opt = o->optim;
	double t0 = now_s();

	if (B < 1 || B > m->B)
		return seqrec_why(why, whylen, -EINVAL, "batch %d: the model was made for batches of 1 to %d", B, m->B);
	if (NI != seqrec_config_inputs(&m->cfg) || d->V != m->cfg.V)
		return seqrec_why(why, whylen, -EINVAL, "the data has %d items and %d inputs per event, the model %d and %d",
		                 d->V - 1, NI, m->cfg.V - 1, seqrec_config_inputs(&m->cfg));
	if (o->epochs < 1)
		return seqrec_why(why, whylen, -EINVAL, "epochs %d: at least 1", o->epochs);
	if ((r = seqrec_train_alloc(m)) < 0)
		return seqrec_why(why, whylen, r, "out of memory for gradients");
	/* a run starts its own optimizer: fresh moments, the schedule from step 1 */
	memset(m->m_mem, 0, m->nparams * sizeof(float));
	memset(m->v_mem, 0, m->nparams * sizeof(float));
	m->adam_t = 0;

	size_t N = (size_t)B * T;
	order = malloc(((size_t)d->nusers + 1) * sizeof *order);
	border = malloc(((size_t)d->nusers / (size_t)B + 2) * sizeof *border);
	in = malloc((size_t)NI * N * sizeof *in);
	tg = malloc(N * sizeof *tg);
	pad = malloc((size_t)B * sizeof *pad);
	best = malloc(m->nparams * sizeof *best);
	if (!order || !border || !in || !tg || !pad || !best) {
		r = seqrec_why(why, whylen, -ENOMEM, "out of memory");
		goto out;
	}
	for (uint32_t i = 0; i < (o->users ? o->nusers : d->nusers); i++) {
		uint32_t u = o->users ? o->users[i] : i;
		uint64_t first, target;
		if (u < d->nusers && seqrec_split_input(d, u, SEQREC_SPLIT_TRAIN, &first, &target) > 0 && nex < d->nusers)
			order[nex++] = u;
	}
	if (nex == 0) {
		r = seqrec_why(why, whylen, -ENODATA, "no user has two training events");
		goto out;
	}
	uint32_t nbatches = (nex + (uint32_t)B - 1) / (uint32_t)B;
	for (uint32_t i = 0; i < nbatches; i++)
		border[i] = i;
	int64_t steps_per_epoch = nbatches;
	int64_t steps_max = steps_per_epoch * o->epochs;
	if (m->cfg.loss == SEQREC_LOSS_SAMPLED && (r = seqrec_set_sampling(m, o->neg_popular ? d->item_count : NULL)) < 0) {
		seqrec_why(why, whylen, r, "out of memory");
		goto out;
	}
	if (o->max_steps > 0 && o->max_steps < steps_max)
		steps_max = o->max_steps;
	if (opt.total < 0)
		opt.total = (int)(steps_max < INT32_MAX ? steps_max : INT32_MAX);

	int since_best = 0;
	double best_ndcg = -1.0;
	for (int epoch = 1; epoch <= o->epochs; epoch++) {
		double te = now_s(), loss_sum = 0.0;
		uint64_t ntgt = 0;
		float lr = 0.0f, gnorm = 0.0f;
		/* Fisher-Yates with a generator of (seed, epoch): the same order for a seed */
		uint64_t rs_state = o->seed ^ (0x5851f42d4c957f2dull * (uint64_t)epoch);
		for (uint32_t i = nex - 1; i > 0; i--) {
			uint32_t j = (uint32_t)(seqrec_mix64(&rs_state) % ((uint64_t)i + 1));
			uint32_t tmp = order[i];
			order[i] = order[j];
			order[j] = tmp;
		}
		/* Length bucketing: within pools of o->bucket batches, users are
		 * sorted by length and cut into batches, whose order is shuffled
		 * again; a batch is as long as its longest user, so this cuts the
		 * padding computed, and the pools keep the batches random. */
		if (o->bucket > 0) {
			uint64_t pool = (uint64_t)o->bucket * (uint64_t)B;
			for (uint64_t p0 = 0; p0 < nex; p0 += pool) {
				uint32_t pn = (uint32_t)(nex - p0 < pool ? nex - p0 : pool);
				sort_ctx_data = d;
				qsort(order + p0, pn, sizeof *order, by_train_length);
			}
			for (uint32_t i = nbatches - 1; i > 0; i--) {
				uint32_t j = (uint32_t)(seqrec_mix64(&rs_state) % ((uint64_t)i + 1));
				uint32_t tmp = border[i];
				border[i] = border[j];
				border[j] = tmp;
			}
		}
		for (uint32_t bi = 0; bi < nbatches; bi++) {
			uint32_t s0 = border[bi] * (uint32_t)B;
			int nb = (int)(nex - s0 < (uint32_t)B ? nex - s0 : (uint32_t)B);
			int Tb = 1;
			for (int b = 0; b < nb; b++) {
				uint64_t first, target, n = seqrec_split_input(d, order[s0 + b], SEQREC_SPLIT_TRAIN, &first, &target);
				if ((int64_t)n > Tb)
					Tb = n < (uint64_t)T ? (int)n : T;
			}
			/* the batch is only as long as its longest row: short users cost less */
			for (int b = 0; b < nb; b++) {
				uint64_t first, target, n = seqrec_split_input(d, order[s0 + b], SEQREC_SPLIT_TRAIN, &first, &target);
				if (o->windows && n > (uint64_t)T) {
					/* the window's end e in [T, n], uniform: each of the
					 * user's positions is trained on, not only the last T */
					uint64_t ws = o->seed ^ ((uint64_t)epoch << 32) ^ ((uint64_t)order[s0 + b] * 0xd6e8feb86659fd93ull);
					n = (uint64_t)T + seqrec_mix64(&ws) % (n - (uint64_t)T + 1);
				}
				seqrec_fill_row(d, first, n, in, tg, pad, nb, Tb, b);
			}
			uint64_t sseed = o->seed * 0x9e3779b97f4a7c15ull + (uint64_t)rs.steps + 1;
			struct seqrec_batch bt = { nb, Tb, in, pad, tg, seqrec_mix64(&sseed), o->mask_seen };
			double loss;
			seqrec_zero_grad(m);
			if ((r = seqrec_forward(m, &bt, 1, &loss)) < 0 || (r = seqrec_backward(m)) < 0 ||
			    (r = seqrec_step(m, &opt, &gnorm, &lr)) < 0) {
				seqrec_why(why, whylen, r, "step %lld failed: %s", (long long)rs.steps + 1, strerror(-r));
				goto out;
			}
			if (!isfinite(loss)) {
				r = seqrec_why(why, whylen, -EDOM, "step %lld: the loss is %g (diverged; lower the learning rate)",
				              (long long)rs.steps + 1, loss);
				goto out;
			}
			rs.steps++;
			loss_sum += loss * m->cur_ntargets;
			ntgt += (uint64_t)m->cur_ntargets;
			int last = bi + 1 == nbatches;
			int cancel = o->cancel && *o->cancel;
			if (o->progress && o->report_every > 0 && rs.steps % o->report_every == 0 && !last) {
				double el = now_s() - te;
				struct seqrec_progress p = { epoch, o->epochs, rs.steps, steps_max, 0,
				                             ntgt ? loss_sum / ntgt : 0.0, el > 0 ? ntgt / el : 0.0,
				                             now_s() - t0, 0.0, lr, gnorm, NAN,
				                             best_ndcg >= 0 ? best_ndcg : NAN, rs.best_epoch };
				double frac = (double)(bi + 1) / nbatches;
				p.eta_s = el / frac * ((o->epochs - epoch) + (1.0 - frac));
				if (o->progress(&p, o->progress_arg))
					cancel = 1;
			}
			if (cancel) {
				rs.stopped = 2;
				break;
			}
			if (o->max_steps > 0 && rs.steps >= o->max_steps) {
				rs.stopped = 3;
				break;
			}
		}
		rs.epochs = epoch;
		double el = now_s() - te;
		struct seqrec_progress p = { epoch, o->epochs, rs.steps, steps_max, 1, ntgt ? loss_sum / ntgt : 0.0,
		                             el > 0 ? ntgt / el : 0.0, now_s() - t0, el * (o->epochs - epoch), lr, gnorm,
		                             NAN, NAN, rs.best_epoch };
		if (o->eval_every > 0 && (epoch % o->eval_every == 0 || epoch == o->epochs || rs.stopped)) {
			struct seqrec_metrics mt;
			if ((r = seqrec_eval_full(m, d, SEQREC_SPLIT_VALID, o->valid_users, &mt)) < 0) {
				seqrec_why(why, whylen, r, "validation failed: %s", strerror(-r));
				goto out;
			}
			p.val_ndcg10 = mt.ndcg10;
			if (mt.ndcg10 > best_ndcg) {
				best_ndcg = mt.ndcg10;
				rs.best_epoch = epoch;
				memcpy(best, m->param_mem, m->nparams * sizeof *best);
				since_best = 0;
			} else {
				since_best++;
			}
			p.best_epoch = rs.best_epoch;
		}
		p.best_ndcg10 = best_ndcg >= 0 ? best_ndcg : NAN;
		if (o->progress && o->progress(&p, o->progress_arg) && !rs.stopped)
			rs.stopped = 2;
		if (rs.stopped)
			break;
		if (o->patience > 0 && o->eval_every > 0 && since_best >= o->patience) {
			rs.stopped = 1;
			break;
		}
	}
	if (rs.best_epoch > 0 && rs.best_epoch != rs.epochs)
		memcpy(m->param_mem, best, m->nparams * sizeof *best);
	rs.best_ndcg10 = best_ndcg >= 0 ? best_ndcg : NAN;
	r = 0;
out:
	rs.seconds = now_s() - t0;
	if (res)
		*res = rs;
	free(order);
	free(border);
	free(in);
	free(tg);
	free(pad);
	free(best);
	return r;
}
