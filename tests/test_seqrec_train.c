/* test_seqrec_train.c: training and evaluation of the sequence model on
 * data it can learn: users walk a fixed cycle over the catalog, so the next
 * item follows from the last one.  Checks loading from the store, the
 * leave-one-out split, that training reaches high validation and test
 * NDCG@10 from chance, that it is deterministic for a seed, early stopping,
 * and full-ranking HR@10 against the top-K path. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "model/eval.h"
#include "model/seqrec.h"
#include "model/train.h"
#include "store/store.h"
#include "tests/test.h"

#define NUSERS 160
#define NITEMS 40

static uint64_t rs = 0x1234567ull;
static uint32_t rnd(uint32_t n)
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return (uint32_t)(rs % n);
}

/* A permutation of the items: item perm[i] is followed by perm[i + 1]. */
static int32_t perm[NITEMS];

static struct seqrec_data *cycle_data(const struct seqrec_config *c, uint64_t **offp, int32_t **itemsp)
{
	uint64_t *off = malloc((NUSERS + 1) * sizeof *off);
	int32_t *items = malloc(NUSERS * 40 * sizeof *items);
	uint64_t n = 0;
	for (int i = 0; i < NITEMS; i++)
		perm[i] = i + 1;
	for (int i = NITEMS - 1; i > 0; i--) {
		int j = (int)rnd((uint32_t)i + 1);
		int32_t t = perm[i]; perm[i] = perm[j]; perm[j] = t;
	}
	for (int u = 0; u < NUSERS; u++) {
		off[u] = n;
		int len = 5 + (int)rnd(30), at = (int)rnd(NITEMS);
		for (int t = 0; t < len; t++)
			items[n++] = perm[(at + t) % NITEMS];
	}
	off[NUSERS] = n;
	struct seqrec_data *d;
	CHECK_OK(seqrec_data_from_items(&d, c, NITEMS + 1, items, off, NUSERS));
	*offp = off;
	*itemsp = items;
	return d;
}

static struct seqrec_config small_config(void)
{
	struct seqrec_config c;
	memset(&c, 0, sizeof c);
	c.V = NITEMS + 1; c.C = 16; c.NH = 2; c.L = 1; c.T = 12; c.F = 32;
	c.dropout = 0.1f;
	c.act = SEQREC_ACT_GELU;
	c.features = 0;
	c.scale_emb = 0;
	c.loss = SEQREC_LOSS_FULL;
	return c;
}

static int reports, epoch_reports;
static int on_progress(const struct seqrec_progress *p, void *arg)
{
	(void)arg;
	reports++;
	if (p->end_of_epoch) {
		epoch_reports++;
		CHECK(p->epoch == epoch_reports);
		CHECK(isfinite(p->loss) && p->loss > 0);
		CHECK(p->examples_per_s > 0);
	}
	return 0;
}

static void test_split(void)
{
	struct seqrec_config c = small_config();
	int32_t items[7] = { 1, 2, 3, 4, 5, 6, 7 };
	uint64_t off[3] = { 0, 5, 7 };  /* a user with 5 events, one with 2 */
	struct seqrec_data *d;
	uint64_t first, target;
	CHECK_OK(seqrec_data_from_items(&d, &c, 8, items, off, 2));
	CHECK_EQ(seqrec_split_input(d, 0, SEQREC_SPLIT_TRAIN, &first, &target), 2);  /* 1,2 -> 2,3 */
	CHECK_EQ(seqrec_split_input(d, 0, SEQREC_SPLIT_VALID, &first, &target), 3);
	CHECK_EQ(target, 3);
	CHECK_EQ(seqrec_split_input(d, 0, SEQREC_SPLIT_TEST, &first, &target), 4);
	CHECK_EQ(target, 4);
	CHECK_EQ(seqrec_split_input(d, 1, SEQREC_SPLIT_TRAIN, &first, &target), 1);
	CHECK_EQ(first, 5);
	CHECK_EQ(seqrec_split_input(d, 1, SEQREC_SPLIT_TEST, &first, &target), 0);
	int32_t in[2 * 4], tg[2 * 4], pad[2];
	seqrec_fill_row(d, 0, 2, in, tg, pad, 2, 4, 1);
	CHECK_EQ(pad[1], 2);
	CHECK(in[4] == 0 && in[5] == 0 && in[6] == 1 && in[7] == 2);
	CHECK(tg[4] == 0 && tg[5] == 0 && tg[6] == 2 && tg[7] == 3);
	int32_t bad[1] = { 8 };
	uint64_t boff[2] = { 0, 1 };
	struct seqrec_data *d2;
	CHECK_EQ(seqrec_data_from_items(&d2, &c, 8, bad, boff, 1), -EINVAL);
	seqrec_data_free(d);
	printf("leave-one-out split: ok\n");
}

struct add_ctx {
	int n;
};

static int add_events(struct store_txn *tx, void *arg)
{
	(void)arg;
	/* user a: items x, y, z as view, click, purchase; user b: y, x */
	const char *seqs[2][3] = { { "x", "y", "z" }, { "y", "x", NULL } };
	const char *users[2] = { "a", "b" };
	for (int u = 0; u < 2; u++) {
		uint32_t uid;
		int r = store_user_get_or_add(tx, users[u], 1, &uid);
		if (r < 0)
			return r;
		for (int i = 0; i < 3 && seqs[u][i]; i++) {
			uint32_t iid;
			if ((r = store_item_get_or_add(tx, seqs[u][i], 1, &iid)) < 0)
				return r;
			struct store_event ev;
			memset(&ev, 0, sizeof ev);
			ev.ts = 1000 + 64 * i;
			ev.item = iid;
			ev.action = (uint8_t)(STORE_ACTION_VIEW + i);
			if ((r = store_event_add(tx, uid, &ev, NULL, 0)) < 0)
				return r;
		}
	}
	return 0;
}

static void test_load_store(void)
{
	char *dir = test_tmpdir();
	struct store *st;
	struct store_options so = { 0, 0, 0 };
	CHECK_OK(store_open(&st, dir, &so));
	struct add_ctx ac = { 0 };
	CHECK_OK(store_write(st, add_events, &ac));
	struct seqrec_config c = small_config();
	c.features = SEQREC_FEAT_BIT(SEQREC_FEAT_ACTION) | SEQREC_FEAT_BIT(SEQREC_FEAT_GAP);
	struct seqrec_data *d;
	char why[256];
	CHECK_OK(seqrec_data_load(&d, st, &c, why, sizeof why));
	CHECK_EQ(d->V, 4);
	CHECK_EQ(d->NI, 3);
	CHECK_EQ(d->nusers, 2);
	CHECK_EQ(d->nevents, 5);
	CHECK_EQ(d->off[1], 3);
	CHECK_EQ(d->snapshot_events, 5);
	/* user a's events: items 1, 2, 3; actions view, click, cart; gaps none, 64 s, 64 s */
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(d->ev[i * 3 + 0], i + 1);
		CHECK_EQ(d->ev[i * 3 + 1], STORE_ACTION_VIEW + i);
		CHECK_EQ(d->ev[i * 3 + 2], i == 0 ? 0 : 8);  /* 2 + log2(64) */
	}
	CHECK_EQ(d->ev[3 * 3 + 2], 0);  /* user b starts again without a gap */
	CHECK_EQ(d->item_count[2], 2);
	seqrec_data_free(d);
	store_close(st);
	test_rmtree(dir);
	printf("loading from the store: ok\n");
}

int main(void)
{
	struct kern *k;
	CHECK_OK(kern_cpu_new(&k, 2));
	test_split();
	test_load_store();

	struct seqrec_config c = small_config();
	uint64_t *off;
	int32_t *items;
	struct seqrec_data *d = cycle_data(&c, &off, &items);
	struct seqrec *m;
	CHECK_OK(seqrec_new(&m, &c, k, 32));
	seqrec_init(m, 1, 0.05f);

	struct seqrec_metrics before, val, test, sampled;
	CHECK_OK(seqrec_eval_full(m, d, SEQREC_SPLIT_TEST, 0, &before));
	CHECK_EQ(before.users, NUSERS);

	struct seqrec_train_opts o;
	seqrec_train_defaults(&o);
	o.epochs = 25;
	o.patience = 3;
	o.batch = 32;
	o.seed = 7;
	o.optim.lr = o.optim.lr_min = 1e-2f;
	o.report_every = 2;
	o.progress = on_progress;
	struct seqrec_train_result res;
	char why[256] = "";
	int r = seqrec_train(m, d, &o, &res, why, sizeof why);
	if (r < 0) {
		fprintf(stderr, "train: %s\n", why);
		return 1;
	}
	CHECK_EQ(epoch_reports, res.epochs);
	CHECK(reports > epoch_reports);
	CHECK_OK(seqrec_eval_full(m, d, SEQREC_SPLIT_VALID, 0, &val));
	CHECK_OK(seqrec_eval_full(m, d, SEQREC_SPLIT_TEST, 0, &test));
	CHECK_OK(seqrec_eval_sampled(m, d, SEQREC_SPLIT_TEST, 20, 3, &sampled));
	char js[512];
	seqrec_metrics_json(&test, js, sizeof js);
	printf("trained %d epochs (%lld steps, best epoch %d, stopped %d) in %.2f s\n", res.epochs,
	       (long long)res.steps, res.best_epoch, res.stopped, res.seconds);
	printf("test NDCG@10 %.4f before, %.4f after; valid %.4f (best %.4f); %s\n", before.ndcg10, test.ndcg10,
	       val.ndcg10, res.best_ndcg10, js);
	CHECK(fabs(val.ndcg10 - res.best_ndcg10) < 1e-9);  /* the best parameters were kept */
	CHECK(test.ndcg10 > 0.9 && test.hr10 > 0.95);
	CHECK(before.ndcg10 < 0.5);
	CHECK(sampled.hr10 > 0.9);

	/* HR@10 through the top-K path: the history excluded, the target kept */
	int NI = d->NI, hits = 0, users = 0;
	for (uint32_t u = 0; u < d->nusers; u++) {
		uint64_t first, target, n = seqrec_split_input(d, u, SEQREC_SPLIT_TEST, &first, &target);
		if (!n)
			continue;
		int len = n < (uint64_t)c.T ? (int)n : c.T;
		int32_t in[64];
		uint32_t excl[64], top[10];
		size_t ne = 0;
		for (int t = 0; t < len; t++)
			in[t] = d->ev[(first + n - (uint64_t)len + (uint64_t)t) * (uint64_t)NI];
		for (uint64_t e = first; e < first + n && ne < 64; e++)
			if ((uint32_t)d->ev[e * (uint64_t)NI] != (uint32_t)d->ev[target * (uint64_t)NI])
				excl[ne++] = (uint32_t)d->ev[e * (uint64_t)NI];
		float h[16], sc[10];
		int got;
		CHECK_OK(seqrec_user_repr(m, in, len, h));
		CHECK_OK(seqrec_topk(m, h, 10, excl, ne, top, sc, &got));
		for (int i = 0; i < got; i++)
			hits += top[i] == (uint32_t)d->ev[target * (uint64_t)NI];
		users++;
	}
	CHECK(fabs((double)hits / users - test.hr10) < 1e-9);

	/* the same seed trains the same model */
	struct seqrec *m2;
	CHECK_OK(seqrec_new(&m2, &c, k, 32));
	seqrec_init(m2, 1, 0.05f);
	o.progress = NULL;
	struct seqrec_train_result res2;
	CHECK_OK(seqrec_train(m2, d, &o, &res2, why, sizeof why));
	CHECK_EQ(res2.epochs, res.epochs);
	CHECK(memcmp(m2->param_mem, m->param_mem, m->nparams * sizeof(float)) == 0);
	printf("deterministic for a seed: ok\n");

	/* sampled softmax with popularity-drawn negatives learns the cycle too */
	struct seqrec_config cs = c;
	cs.loss = SEQREC_LOSS_SAMPLED;
	cs.neg = 8;
	struct seqrec *ms;
	CHECK_OK(seqrec_new(&ms, &cs, k, 32));
	seqrec_init(ms, 2, 0.05f);
	o.neg_popular = 1;
	CHECK_OK(seqrec_train(ms, d, &o, &res2, why, sizeof why));
	CHECK_OK(seqrec_eval_full(ms, d, SEQREC_SPLIT_TEST, 0, &test));
	printf("sampled softmax (8 negatives): test NDCG@10 %.4f after %d epochs\n", test.ndcg10, res2.epochs);
	CHECK(test.ndcg10 > 0.8);
	o.neg_popular = 0;
	seqrec_free(ms);

	/* a cancel flag stops after the current step */
	volatile int cancel = 1;
	o.cancel = &cancel;
	o.epochs = 3;
	CHECK_OK(seqrec_train(m2, d, &o, &res2, why, sizeof why));
	CHECK_EQ(res2.stopped, 2);
	CHECK_EQ(res2.steps, 1);

	/* fine-tuning's knobs: a step budget and a subset of users */
	uint32_t some[3] = { 4, 9, 150 };
	o.cancel = NULL;
	o.max_steps = 2;
	o.batch = 1;
	o.users = some;
	o.nusers = 3;
	CHECK_OK(seqrec_train(m2, d, &o, &res2, why, sizeof why));
	CHECK_EQ(res2.stopped, 3);
	CHECK_EQ(res2.steps, 2);
	CHECK_EQ(m2->adam_t, 2);

	seqrec_free(m);
	seqrec_free(m2);
	seqrec_data_free(d);
	free(off);
	free(items);
	kern_free(k);
	printf("ok\n");
	return 0;
}
