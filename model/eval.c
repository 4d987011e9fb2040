/* eval.c: leave-one-out metrics of the sequence model (eval.h): users are
 * run through the model in batches without dropout, the last position's
 * hidden state scores the catalog, and the target's rank gives HR@K,
 * NDCG@K (one relevant item: 1 / log2(rank + 2)) and MRR. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/eval.h"
#include "model/model_int.h"


struct acc {
	double hr10, ndcg10, hr50, ndcg50, hr200, ndcg200, mrr;
	uint64_t n;
};

static void acc_add(struct acc *a, uint64_t rank)  /* rank 0 = first */
{
	double g = 1.0 / log2((double)rank + 2.0);
	a->hr10 += rank < 10;
	a->ndcg10 += rank < 10 ? g : 0.0;
	a->hr50 += rank < 50;
	a->ndcg50 += rank < 50 ? g : 0.0;
	a->hr200 += rank < 200;
	a->ndcg200 += rank < 200 ? g : 0.0;
	a->mrr += 1.0 / ((double)rank + 1.0);
	a->n++;
}

static void acc_done(const struct acc *a, enum seqrec_split split, const char *protocol, struct seqrec_metrics *out)
{
	double n = a->n ? (double)a->n : 1.0;
	out->protocol = protocol;
	out->split = split == SEQREC_SPLIT_TEST ? "test" : "valid";
	out->users = a->n;
	out->hr10 = a->hr10 / n;
	out->ndcg10 = a->ndcg10 / n;
	out->hr50 = a->hr50 / n;
	out->ndcg50 = a->ndcg50 / n;
	out->hr200 = a->hr200 / n;
	out->ndcg200 = a->ndcg200 / n;
	out->mrr = a->mrr / n;
}

/* The users of split, or every k-th of them to keep max_users. */
static uint32_t eval_users(const struct seqrec_data *d, enum seqrec_split split, uint32_t max_users, uint32_t *out)
{
	uint32_t n = 0;
	for (uint32_t u = 0; u < d->nusers; u++) {
		uint64_t first, target;
		if (seqrec_split_input(d, u, split, &first, &target) > 0)
			out[n++] = u;
	}
	if (max_users == 0 || n <= max_users)
		return n;
	uint32_t k = 0;
	for (uint32_t i = 0; i < max_users; i++)
		out[k++] = out[(uint64_t)i * n / max_users];
	return k;
}

/* Runs users[0..nb) through the model; h gets each one's last hidden state (nb, C). */
static int eval_forward(struct seqrec *m, const struct seqrec_data *d, enum seqrec_split split,
                        const uint32_t *users, int nb, int32_t *in, int32_t *pad, float *h)
{
	int T = m->cfg.T, Tb = 1, C = m->cfg.C;
	for (int b = 0; b < nb; b++) {
		uint64_t first, target, n = seqrec_split_input(d, users[b], split, &first, &target);
		if ((int64_t)n > Tb)
			Tb = n < (uint64_t)T ? (int)n : T;
	}
	for (int b = 0; b < nb; b++) {
		uint64_t first, target, n = seqrec_split_input(d, users[b], split, &first, &target);
		seqrec_fill_row(d, first, n, in, NULL, pad, nb, Tb, b);
	}
	struct seqrec_batch bt = { nb, Tb, in, pad, NULL, 0, 0 };
	int r = seqrec_forward(m, &bt, 0, NULL);
	if (r < 0)
		return r;
	const float *hid = seqrec_hidden(m);
	for (int b = 0; b < nb; b++)
		memcpy(h + (size_t)b * C, hid + ((size_t)b * Tb + (size_t)(Tb - 1)) * C, (size_t)C * sizeof *h);
	return 0;
}

static int eval_full(struct seqrec *m, const struct seqrec_data *d, enum seqrec_split split,
                     uint32_t max_users, const uint32_t *only, uint32_t nonly, struct seqrec_metrics *out);

int seqrec_eval_full(struct seqrec *m, const struct seqrec_data *d, enum seqrec_split split,
                     uint32_t max_users, struct seqrec_metrics *out)
{
	return eval_full(m, d, split, max_users, NULL, 0, out);
}

int seqrec_eval_full_users(struct seqrec *m, const struct seqrec_data *d, enum seqrec_split split,
                           const uint32_t *users, uint32_t nusers, struct seqrec_metrics *out)
{
	return eval_full(m, d, split, 0, users, nusers, out);
}

static int eval_full(struct seqrec *m, const struct seqrec_data *d, enum seqrec_split split,
                     uint32_t max_users, const uint32_t *only, uint32_t nonly, struct seqrec_metrics *out)
{
	const struct kern_ops *ops = m->k->ops;
	int V = m->cfg.V, C = m->cfg.C, T = m->cfg.T, NI = d->NI;
	/* scores of one batch are (B, V): keep them under 64 Mi floats */
	int B = m->B;
	if ((int64_t)B * V > (64 << 20))
		B = (int)((64 << 20) / V) > 0 ? (int)((64 << 20) / V) : 1;
	uint32_t *users = malloc(((size_t)d->nusers + 1) * sizeof *users);
	uint32_t *stamp = calloc((size_t)V, sizeof *stamp);
	int32_t *in = malloc((size_t)NI * B * T * sizeof *in), *pad = malloc((size_t)B * sizeof *pad);
	float *h = malloc((size_t)B * C * sizeof *h), *sc = malloc((size_t)B * V * sizeof *sc);
	struct acc a;
	int r = 0;

	memset(&a, 0, sizeof a);
	if (!users || !stamp || !in || !pad || !h || !sc) {
		r = -ENOMEM;
		goto out;
	}
	if (split != SEQREC_SPLIT_VALID && split != SEQREC_SPLIT_TEST) {
		r = -EINVAL;
		goto out;
	}
	if (d->V > V || d->NI != seqrec_config_inputs(&m->cfg)) {
		r = -EINVAL;  /* items the model cannot score, or other inputs */
		goto out;
	}
	uint32_t nu = 0;
	if (only) {
		for (uint32_t i = 0; i < nonly; i++) {
			uint64_t first, target;
			if (only[i] < d->nusers && seqrec_split_input(d, only[i], split, &first, &target) > 0)
				users[nu++] = only[i];
		}
	} else {
		nu = eval_users(d, split, max_users, users);
	}
	for (uint32_t s0 = 0; s0 < nu; s0 += (uint32_t)B) {
		int nb = (int)(nu - s0 < (uint32_t)B ? nu - s0 : (uint32_t)B);
		if ((r = eval_forward(m, d, split, users + s0, nb, in, pad, h)) < 0)
			goto out;
		ops->score(m->k, sc, h, m->params.wte, NULL, nb, C, V);
		for (int b = 0; b < nb; b++) {
			uint32_t u = users[s0 + (uint32_t)b], mark = s0 + (uint32_t)b + 1;
			uint64_t first, target, n = seqrec_split_input(d, u, split, &first, &target);
			const float *s = sc + (size_t)b * V;
			int32_t ti = d->ev[target * (uint64_t)NI];
			float st = s[ti];
			/* rank = items other than the target scoring at least as high,
			 * minus those in the input history (each counted once) */
			uint64_t above = 0;
			for (int i = 1; i < V; i++)
				above += s[i] >= st;
			above -= 1;  /* the target itself */
			stamp[ti] = mark;
			for (uint64_t e = first; e < first + n; e++) {
				int32_t it = d->ev[e * (uint64_t)NI];
				if (stamp[it] != mark) {
					stamp[it] = mark;
					above -= s[it] >= st;
				}
			}
			acc_add(&a, above);
		}
	}
	acc_done(&a, split, SEQREC_PROTOCOL_FULL, out);
out:
	free(users);
	free(stamp);
	free(in);
	free(pad);
	free(h);
	free(sc);
	return r;
}

int seqrec_eval_sampled(struct seqrec *m, const struct seqrec_data *d, enum seqrec_split split,
                        int nneg, uint64_t seed, struct seqrec_metrics *out)
{
	int V = m->cfg.V, C = m->cfg.C, T = m->cfg.T, NI = d->NI, B = m->B;
	uint32_t *users = malloc(((size_t)d->nusers + 1) * sizeof *users);
	uint32_t *stamp = calloc((size_t)V, sizeof *stamp);
	int32_t *in = malloc((size_t)NI * B * T * sizeof *in), *pad = malloc((size_t)B * sizeof *pad);
	int32_t *cand = malloc(((size_t)nneg + 1) * sizeof *cand);
	float *h = malloc((size_t)B * C * sizeof *h), *sc = malloc(((size_t)nneg + 1) * sizeof *sc);
	struct acc a;
	int r = 0;

	memset(&a, 0, sizeof a);
	if (!users || !stamp || !in || !pad || !cand || !h || !sc) {
		r = -ENOMEM;
		goto out;
	}
	if ((split != SEQREC_SPLIT_VALID && split != SEQREC_SPLIT_TEST) || nneg < 1 || d->V > V ||
	    d->NI != seqrec_config_inputs(&m->cfg)) {
		r = -EINVAL;
		goto out;
	}
	uint32_t nu = eval_users(d, split, 0, users);
	uint64_t rng = seed;
	for (uint32_t s0 = 0; s0 < nu; s0 += (uint32_t)B) {
		int nb = (int)(nu - s0 < (uint32_t)B ? nu - s0 : (uint32_t)B);
		if ((r = eval_forward(m, d, split, users + s0, nb, in, pad, h)) < 0)
			goto out;
		for (int b = 0; b < nb; b++) {
			uint32_t u = users[s0 + (uint32_t)b], mark = s0 + (uint32_t)b + 1, distinct = 0;
			uint64_t first, target;
			seqrec_split_input(d, u, split, &first, &target);
			/* everything the user interacted with, test item included, is not a negative */
			for (uint64_t e = d->off[u]; e < d->off[u + 1]; e++) {
				int32_t it = d->ev[e * (uint64_t)NI];
				if (stamp[it] != mark) {
					stamp[it] = mark;
					distinct++;
				}
			}
			if ((uint64_t)V - 1 - distinct < (uint64_t)nneg)
				continue;  /* not enough unseen items to draw from */
			cand[0] = d->ev[target * (uint64_t)NI];
			for (int j = 1; j <= nneg; j++) {
				int32_t it;
				do
					it = 1 + (int32_t)(seqrec_mix64(&rng) % (uint64_t)(V - 1));
				while (stamp[it] == mark);
				cand[j] = it;  /* drawn with replacement, as SASRec's evaluation does */
			}
			if ((r = seqrec_score(m, h + (size_t)b * C, cand, nneg + 1, sc)) < 0)
				goto out;
			uint64_t above = 0;
			for (int j = 1; j <= nneg; j++)
				above += sc[j] >= sc[0];
			acc_add(&a, above);
		}
	}
	acc_done(&a, split, SEQREC_PROTOCOL_SAMPLED, out);
out:
	free(users);
	free(stamp);
	free(in);
	free(pad);
	free(cand);
	free(h);
	free(sc);
	return r;
}

int seqrec_metrics_json(const struct seqrec_metrics *mt, char *buf, size_t len)
{
	return snprintf(buf, len,
	                "{\"protocol\":\"%s\",\"split\":\"%s\",\"users\":%llu,\"hr@10\":%.4f,\"ndcg@10\":%.4f,"
	                "\"hr@50\":%.4f,\"ndcg@50\":%.4f,\"hr@200\":%.4f,\"ndcg@200\":%.4f,\"mrr\":%.4f}",
	                mt->protocol, mt->split, (unsigned long long)mt->users, mt->hr10, mt->ndcg10, mt->hr50,
	                mt->ndcg50, mt->hr200, mt->ndcg200, mt->mrr);
}
