/* test_finetune.c: fine-tuning (model/finetune.h) on generated data.
 * Checks seqrec_grow (the parent's parameters copied, new item rows drawn
 * or zero, a smaller catalog refused), the cut-off in a version's metrics,
 * and seqrec_finetune end to end on a store: users walk a cycle over the
 * catalog; later, half of them walk a second cycle through items that did
 * not exist before.  The child must record its parent, the store's event
 * count and its own cut-off, know the new items, become active when asked,
 * and rank the new users' test targets better than the parent.  Then the
 * refusals: nothing new since the cut-off, a missing version, bad options. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "model/eval.h"
#include "model/finetune.h"
#include "model/seqrec.h"
#include "model/train.h"
#include "store/store.h"
#include "tests/test.h"

#define NUSERS  120
#define NOLD    30   /* items of the first phase */
#define NNEW    6    /* items added in the second */

static uint64_t rs = 0x9e3779b9ull;
static uint32_t rnd(uint32_t n)
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return (uint32_t)(rs % n);
}

static struct seqrec_config small_config(int V)
{
	struct seqrec_config c;
	memset(&c, 0, sizeof c);
	c.V = V; c.C = 16; c.NH = 2; c.L = 1; c.T = 12; c.F = 32;
	c.dropout = 0.1f;
	c.act = SEQREC_ACT_GELU;
	c.features = SEQREC_FEAT_DEFAULT;
	c.loss = SEQREC_LOSS_FULL;
	return c;
}

static void test_grow(struct kern *k)
{
	struct seqrec_config c = small_config(NOLD + 1);
	struct seqrec *m, *g, *z;
	CHECK_OK(seqrec_new(&m, &c, k, 4));
	seqrec_init(m, 7, 0.02f);
	CHECK_OK(seqrec_grow(&g, m, NOLD + 1 + NNEW, 8, 3, 0.02f));
	CHECK_EQ(g->cfg.V, NOLD + 1 + NNEW);
	CHECK_EQ(g->B, 8);
	CHECK_EQ(g->ntensors, m->ntensors);
	size_t C = (size_t)c.C, oldn = (size_t)(NOLD + 1) * C;
	CHECK(memcmp(g->params.wte, m->params.wte, oldn * sizeof(float)) == 0);
	for (int i = 1; i < m->ntensors; i++) {
		CHECK_EQ(g->tensors[i].n, m->tensors[i].n);
		CHECK(memcmp(g->param_mem + g->tensors[i].off, m->param_mem + m->tensors[i].off,
		             m->tensors[i].n * sizeof(float)) == 0);
	}
	/* new rows: N(0, 0.02) */
	double ss = 0.0;
	size_t nn = (size_t)NNEW * C;
	for (size_t j = 0; j < nn; j++) {
		float x = g->params.wte[oldn + j];
		CHECK(isfinite(x));
		ss += (double)x * x;
	}
	double sd = sqrt(ss / (double)nn);
	CHECK(sd > 0.012 && sd < 0.03);
	/* std 0: zero rows; a smaller catalog is refused */
	CHECK_OK(seqrec_grow(&z, m, NOLD + 1 + NNEW, 1, 3, 0.0f));
	for (size_t j = 0; j < nn; j++)
		CHECK(z->params.wte[oldn + j] == 0.0f);
	seqrec_free(z);
	CHECK_EQ(seqrec_grow(&z, g, NOLD + 1, 1, 3, 0.02f), -EINVAL);
	CHECK_EQ(seqrec_grow(&z, m, NOLD + 1, 1, 3, -1.0f), -EINVAL);
	/* the grown model is a whole model: it round-trips through a checkpoint */
	size_t len = seqrec_ckpt_size(g);
	void *buf = malloc(len);
	char why[256];
	CHECK(buf);
	CHECK_OK(seqrec_serialize(g, buf, len));
	CHECK_OK(seqrec_deserialize(&z, k, 2, buf, len, why, sizeof why));
	CHECK_EQ(z->cfg.V, NOLD + 1 + NNEW);
	CHECK(memcmp(z->param_mem, g->param_mem, g->nparams * sizeof(float)) == 0);
	seqrec_free(z);
	free(buf);
	seqrec_free(g);
	seqrec_free(m);
	printf("growing the catalog: ok\n");
}

static void test_meta_cutoff(void)
{
	struct store_model_meta mm;
	int64_t ts = 0;
	memset(&mm, 0, sizeof mm);
	CHECK_EQ(seqrec_meta_cutoff(&mm, &ts), -ENOENT);
	snprintf(mm.metrics, sizeof mm.metrics, "{\"test_hr@10\":0.5,\"cutoff_ts\":-1234567890123}");
	CHECK_OK(seqrec_meta_cutoff(&mm, &ts));
	CHECK_EQ(ts, -1234567890123ll);
	snprintf(mm.metrics, sizeof mm.metrics, "{\"cutoff_ts\":\"12\"}");
	CHECK_EQ(seqrec_meta_cutoff(&mm, &ts), -ENOENT);
	snprintf(mm.metrics, sizeof mm.metrics, "{\"cutoff_ts\":12");
	CHECK_EQ(seqrec_meta_cutoff(&mm, &ts), -ENOENT);
	snprintf(mm.metrics, sizeof mm.metrics, "[1]");
	CHECK_EQ(seqrec_meta_cutoff(&mm, &ts), -ENOENT);
	printf("the cut-off in a version's metrics: ok\n");
}

/* --- the store ------------------------------------------------------------- */

static int cyc1[NOLD], cyc2[NOLD + NNEW];
static int len1[NUSERS], at1[NUSERS], at2[NUSERS];

struct phase { int which; };

static int add_item(struct store_txn *tx, int idx, uint32_t *id)
{
	char name[16];
	int n = snprintf(name, sizeof name, "item%d", idx);
	return store_item_get_or_add(tx, name, (size_t)n, id);
}

static int add_phase(struct store_txn *tx, void *arg)
{
	const struct phase *ph = arg;
	int r;
	/* items first, in index order, so item idx gets store id idx + 1 */
	int nitems = ph->which == 1 ? NOLD : NOLD + NNEW;
	for (int i = 0; i < nitems; i++) {
		uint32_t id;
		if ((r = add_item(tx, i, &id)) < 0)
			return r;
		if (id != (uint32_t)i + 1)
			return -EPROTO;
	}
	for (int u = 0; u < NUSERS; u++) {
		char name[16];
		int n = snprintf(name, sizeof name, "user%d", u);
		uint32_t uid;
		if ((r = store_user_get_or_add(tx, name, (size_t)n, &uid)) < 0)
			return r;
		if (ph->which == 2 && u % 2)
			continue;  /* only the even users come back */
		int len = ph->which == 1 ? len1[u] : 10;
		for (int t = 0; t < len; t++) {
			struct store_event ev;
			memset(&ev, 0, sizeof ev);
			if (ph->which == 1) {
				ev.ts = 1000 + 60 * t;
				ev.item = (uint32_t)cyc1[(at1[u] + t) % NOLD] + 1;
			} else {
				ev.ts = 100000 + 60 * t;
				ev.item = (uint32_t)cyc2[(at2[u] + t) % (NOLD + NNEW)] + 1;
			}
			ev.action = STORE_ACTION_VIEW;
			if ((r = store_event_add(tx, uid, &ev, NULL, 0)) < 0)
				return r;
		}
	}
	return 0;
}

static void shuffle(int *a, int n)
{
	for (int i = 0; i < n; i++)
		a[i] = i;
	for (int i = n - 1; i > 0; i--) {
		int j = (int)rnd((uint32_t)i + 1), t = a[i];
		a[i] = a[j];
		a[j] = t;
	}
}

static void test_finetune(struct kern *k)
{
	char *dir = test_tmpdir(), why[512];
	struct store *st;
	struct store_options so = { 0, 0, 0 };
	struct store_txn *tx;
	CHECK_OK(store_open(&st, dir, &so));
	shuffle(cyc1, NOLD);
	shuffle(cyc2, NOLD + NNEW);
	for (int u = 0; u < NUSERS; u++) {
		len1[u] = 8 + (int)rnd(12);
		at1[u] = (int)rnd(NOLD);
		at2[u] = (int)rnd(NOLD + NNEW);
	}
	struct phase p1 = { 1 }, p2 = { 2 };
	CHECK_OK(store_write(st, add_phase, &p1));

	/* the parent: trained on the first phase, its cut-off recorded */
	struct seqrec_config c = small_config(0);
	struct seqrec_data *d;
	CHECK_OK(seqrec_data_load(&d, st, &c, why, sizeof why));
	CHECK_EQ(d->V, NOLD + 1);
	int64_t maxts = 0;
	for (int u = 0; u < NUSERS; u++)
		if (1000 + 60 * (len1[u] - 1) > maxts)
			maxts = 1000 + 60 * (len1[u] - 1);
	CHECK_EQ(d->max_ts, maxts);
	c.V = d->V;
	struct seqrec *m;
	CHECK_OK(seqrec_new(&m, &c, k, 32));
	seqrec_init(m, 1, 0.05f);
	struct seqrec_train_opts to;
	struct seqrec_train_result tr;
	seqrec_train_defaults(&to);
	to.epochs = 30;
	to.batch = 32;
	to.eval_every = 0;
	to.optim.lr = to.optim.lr_min = 3e-3f;
	CHECK_OK(seqrec_train(m, d, &to, &tr, why, sizeof why));
	struct store_model_meta meta;
	memset(&meta, 0, sizeof meta);
	meta.snapshot_events = d->snapshot_events;
	snprintf(meta.metrics, sizeof meta.metrics, "{\"%s\":%lld}", SEQREC_META_CUTOFF, (long long)d->max_ts);
	CHECK_OK(seqrec_save_store(m, st, &meta, why, sizeof why));
	CHECK_EQ(meta.version, 1);
	uint64_t events1 = d->nevents;
	seqrec_free(m);
	seqrec_data_free(d);

	struct seqrec_finetune_opts fo;
	struct seqrec_finetune_result res;
	seqrec_finetune_defaults(&fo);
	fo.batch = 32;
	fo.epochs = 40;
	fo.patience = 0;
	fo.lr = 3e-3f;

	/* nothing new yet */
	CHECK_EQ(seqrec_finetune(st, k, &fo, &res, why, sizeof why), -ENODATA);
	CHECK(strstr(why, "nothing to fine-tune") != NULL);

	/* the second phase: new items, the even users come back */
	CHECK_OK(store_write(st, add_phase, &p2));
	fo.activate = 1;
	CHECK_OK(seqrec_finetune(st, k, &fo, &res, why, sizeof why));
	CHECK_EQ(res.parent, 1);
	CHECK_EQ(res.version, 2);
	CHECK(res.cutoff_known);
	CHECK_EQ(res.parent_cutoff_ts, maxts);
	CHECK_EQ(res.cutoff_ts, 100000 + 60 * 9);
	CHECK_EQ(res.new_users, NUSERS / 2);
	CHECK_EQ(res.trained_users, NUSERS / 2);
	CHECK_EQ(res.new_events, (uint64_t)NUSERS / 2 * 10);
	CHECK_EQ(res.parent_items, NOLD);
	CHECK_EQ(res.items, NOLD + NNEW);
	CHECK(res.evaluated);
	CHECK_EQ(res.child_test[0].users, NUSERS / 2);
	CHECK_EQ(res.child_test[1].users, NUSERS / 2);
	printf("new users' test NDCG@10: parent %.4f, fine-tuned %.4f; others %.4f -> %.4f\n",
	       res.parent_test[0].ndcg10, res.child_test[0].ndcg10, res.parent_test[1].ndcg10, res.child_test[1].ndcg10);
	CHECK(res.child_test[0].ndcg10 > res.parent_test[0].ndcg10 + 0.1);

	/* the stored child: its parent, the store's events, its cut-off, the new catalog, active */
	struct seqrec *child;
	struct store_model_meta cm;
	CHECK_OK(seqrec_load_store(&child, k, 1, st, 2, &cm, why, sizeof why));
	CHECK_EQ(cm.parent, 1);
	CHECK_EQ(cm.snapshot_events, events1 + NUSERS / 2 * 10);
	int64_t cts;
	CHECK_OK(seqrec_meta_cutoff(&cm, &cts));
	CHECK_EQ(cts, 100000 + 60 * 9);
	CHECK(strstr(cm.metrics, "\"new_items\":6") != NULL);
	CHECK_EQ(child->cfg.V, NOLD + NNEW + 1);
	seqrec_free(child);
	uint32_t active = 0;
	CHECK_OK(store_read_begin(st, &tx));
	CHECK_OK(store_model_active_get(tx, &active));
	store_txn_end(tx);
	CHECK_EQ(active, 2);

	/* from the active version (2) nothing is new; --users all still trains */
	fo.activate = 0;
	fo.epochs = 1;
	CHECK_EQ(seqrec_finetune(st, k, &fo, &res, why, sizeof why), -ENODATA);
	fo.users = SEQREC_FT_USERS_ALL;
	fo.max_steps = 2;
	fo.evaluate = 0;
	CHECK_OK(seqrec_finetune(st, k, &fo, &res, why, sizeof why));
	CHECK_EQ(res.parent, 2);
	CHECK_EQ(res.version, 3);
	CHECK_EQ(res.trained_users, NUSERS);
	CHECK_EQ(res.train.steps, 2);
	CHECK_EQ(res.train.stopped, 3);
	CHECK(!res.evaluated);

	/* a parent without a recorded cut-off: everyone's events count as new */
	CHECK_OK(seqrec_load_store(&m, k, 1, st, 1, NULL, why, sizeof why));
	memset(&meta, 0, sizeof meta);
	CHECK_OK(seqrec_save_store(m, st, &meta, why, sizeof why));
	seqrec_free(m);
	fo.parent = meta.version;
	fo.users = SEQREC_FT_USERS_NEW;
	CHECK_OK(seqrec_finetune(st, k, &fo, &res, why, sizeof why));
	CHECK(!res.cutoff_known);
	CHECK_EQ(res.new_users, NUSERS);
	CHECK_EQ(res.parent, meta.version);

	/* refusals */
	fo.parent = 99;
	CHECK_EQ(seqrec_finetune(st, k, &fo, &res, why, sizeof why), -ENOENT);
	fo.parent = 1;
	fo.lr = 0.0f;
	CHECK_EQ(seqrec_finetune(st, k, &fo, &res, why, sizeof why), -EINVAL);
	fo.lr = 1e-4f;
	fo.epochs = 0;
	CHECK_EQ(seqrec_finetune(st, k, &fo, &res, why, sizeof why), -EINVAL);
	fo.epochs = 1;
	fo.beta2 = 1.0f;  /* Adam's bias correction would divide by zero */
	CHECK_EQ(seqrec_finetune(st, k, &fo, &res, why, sizeof why), -EINVAL);
	CHECK(strstr(why, "beta2 1"));
	fo.beta2 = 0.999f;
	fo.clip = -1.0f;
	CHECK_EQ(seqrec_finetune(st, k, &fo, &res, why, sizeof why), -EINVAL);
	CHECK(strstr(why, "clip -1"));
	store_close(st);
	test_rmtree(dir);
	printf("fine-tuning from the store: ok\n");
}

int main(void)
{
	struct kern *k;
	CHECK_OK(kern_cpu_new(&k, 2));
	test_grow(k);
	test_meta_cutoff();
	test_finetune(k);
	kern_free(k);
	return 0;
}
