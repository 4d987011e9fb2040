/* finetune.c: a stored version continued on the events since its cut-off
 * (finetune.h): the catalog grown to the store's, the users with new events
 * trained at a lower rate within a step budget, parent and child evaluated
 * on the new users and the others, the child stored with its parent. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "model/finetune.h"
#include "model/model_int.h"

enum { FINETUNE_EVAL_BATCH = 16 };

void seqrec_finetune_defaults(struct seqrec_finetune_opts *o)
{
	memset(o, 0, sizeof *o);
	o->users = SEQREC_FT_USERS_NEW;
	o->lr = 3e-4f;
	struct seqrec_optim od;
	seqrec_optim_default(&od);
	o->beta2 = od.beta2;
	o->clip = od.clip;
	o->epochs = 5;
	o->batch = 128;
	o->patience = 2;
	o->eval_every = 1;
	o->seed = 1;
	o->init_std = 0.02f;
	o->evaluate = 1;
}

static float normal(uint64_t *s)
{
	double u1 = ((double)(seqrec_mix64(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
	double u2 = ((double)(seqrec_mix64(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
	return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

int seqrec_grow(struct seqrec **out, const struct seqrec *src, int V, int B, uint64_t seed, float std)
{
	struct seqrec_config cfg = src->cfg;
	struct seqrec *m;
	int r;

	if (V < src->cfg.V || !(std >= 0.0f))
		return -EINVAL;
	cfg.V = V;
	if (seqrec_config_check(&cfg, NULL, 0) < 0)
		return -EINVAL;
	if ((r = seqrec_new(&m, &cfg, src->k, B)) < 0)
		return r;
	/* the layouts differ only in the item table's rows: copy tensor by tensor */
	if (m->ntensors != src->ntensors) {
		seqrec_free(m);
		return -EINVAL;
	}
	size_t C = (size_t)cfg.C;
	for (int i = 0; i < m->ntensors; i++) {
		const struct seqrec_tensor *a = &src->tensors[i], *b = &m->tensors[i];
		size_t n = a->n < b->n ? a->n : b->n;
		if (strcmp(a->name, b->name) != 0 || (a->n != b->n && strcmp(a->name, "wte") != 0)) {
			seqrec_free(m);
			return -EINVAL;
		}
		memcpy(m->param_mem + b->off, src->param_mem + a->off, n * sizeof(float));
	}
	float *rows = m->params.wte + (size_t)src->cfg.V * C;
	size_t nnew = (size_t)(V - src->cfg.V) * C;
	uint64_t s = seed ^ 0x6a09e667f3bcc909ull;
	for (size_t j = 0; j < nnew; j++)
		rows[j] = std > 0.0f ? std * normal(&s) : 0.0f;
	*out = m;
	return 0;
}

int seqrec_meta_cutoff(const struct store_model_meta *meta, int64_t *ts)
{
	json_object *o, *v;
	int r = -ENOENT;
	if (!meta->metrics[0] || !(o = json_tokener_parse(meta->metrics)))
		return -ENOENT;
	if (json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, SEQREC_META_CUTOFF, &v) &&
	    json_object_is_type(v, json_type_int)) {
		*ts = json_object_get_int64(v);
		r = 0;
	}
	json_object_put(o);
	return r;
}

int seqrec_users_since(const struct seqrec_data *d, int64_t ts, uint32_t **out, uint32_t *n, uint64_t *nevents)
{
	uint32_t *u = malloc(((size_t)d->nusers + 1) * sizeof *u), k = 0;
	uint64_t ne = 0;
	if (!u)
		return -ENOMEM;
	for (uint32_t i = 0; i < d->nusers; i++) {
		uint64_t c = 0;
		for (uint64_t e = d->off[i]; e < d->off[i + 1]; e++)
			c += d->ts[e] > ts;
		if (c > 0)
			u[k++] = i;
		ne += c;
	}
	*out = u;
	*n = k;
	if (nevents)
		*nevents = ne;
	return 0;
}

/* The parent to continue: o->parent, else the active version, else the latest. */
static int pick_parent(struct store *st, uint32_t want, uint32_t *version, char *why, size_t whylen)
{
	struct store_txn *tx;
	int r;
	if (want) {
		*version = want;
		return 0;
	}
	if ((r = store_read_begin(st, &tx)) < 0)
		return seqrec_why(why, whylen, r, "%s", store_errmsg(st));
	uint32_t v = 0;
	if ((r = store_model_active_get(tx, &v)) < 0 && r != -ENOENT) {
		seqrec_why(why, whylen, r, "%s", store_errmsg(st));
	} else if (v == 0 && (r = store_model_latest(tx, &v)) < 0) {
		seqrec_why(why, whylen, r, r == -ENOENT ? "no model version is stored: train one first" : "%s",
		           store_errmsg(st));
	} else {
		r = 0;
	}
	store_txn_end(tx);
	if (r == 0)
		*version = v;
	return r;
}

struct put_ctx {
	struct store_model_meta *meta;
	const void *blob;
	size_t len;
	int activate;
};

static int put_in_txn(struct store_txn *tx, void *arg)
{
	struct put_ctx *p = arg;
	int r = store_model_put(tx, p->meta, p->blob, p->len);
	if (r == 0 && p->activate)
		r = store_model_active_set(tx, p->meta->version);
	return r;
}

/* The test metrics of m on the new users and on the others. */
static int eval_groups(struct seqrec *m, const struct seqrec_data *d, const uint32_t *nu, uint32_t nnu,
                       const uint32_t *ou, uint32_t nou, struct seqrec_metrics out[2])
{
	int r = seqrec_eval_full_users(m, d, SEQREC_SPLIT_TEST, nu, nnu, &out[0]);
	if (r == 0)
		r = seqrec_eval_full_users(m, d, SEQREC_SPLIT_TEST, ou, nou, &out[1]);
	return r;
}

/* The child's metrics JSON: its cut-off, how it was made and, when
 * evaluated, parent and child on the new users and the others. */
static int finetune_metrics(const struct seqrec_finetune_result *rs, const struct seqrec_finetune_opts *o,
                            char *buf, size_t len)
{
	json_object *m = json_object_new_object(), *f = json_object_new_object();
	if (!m || !f) {
		json_object_put(m);
		json_object_put(f);
		return -ENOMEM;
	}
	json_object_object_add(m, SEQREC_META_CUTOFF, json_object_new_int64(rs->cutoff_ts));
	json_object_object_add(f, "parent_cutoff_ts", rs->cutoff_known ? json_object_new_int64(rs->parent_cutoff_ts) : NULL);
	json_object_object_add(f, "users", json_object_new_string(o->users == SEQREC_FT_USERS_NEW ? "new" : "all"));
	json_object_object_add(f, "trained_users", json_object_new_int64(rs->trained_users));
	json_object_object_add(f, "new_users", json_object_new_int64(rs->new_users));
	json_object_object_add(f, "new_events", json_object_new_int64((int64_t)rs->new_events));
	json_object_object_add(f, "new_items", json_object_new_int(rs->items - rs->parent_items));
	json_object_object_add(f, "lr", json_object_new_double(o->lr));
	json_object_object_add(f, "epochs", json_object_new_int(rs->train.epochs));
	json_object_object_add(f, "best_epoch", json_object_new_int(rs->train.best_epoch));
	json_object_object_add(f, "steps", json_object_new_int64(rs->train.steps));
	json_object_object_add(f, "train_seconds", json_object_new_double(round(rs->train.seconds * 10) / 10));
	json_object_object_add(m, "finetune", f);
	if (rs->evaluated) {
		json_object_object_add(m, "protocol", json_object_new_string(SEQREC_PROTOCOL_FULL));
		json_object_object_add(m, "new_users_test_ndcg@10", json_object_new_double(rs->child_test[0].ndcg10));
		json_object_object_add(m, "parent_new_users_test_ndcg@10", json_object_new_double(rs->parent_test[0].ndcg10));
		json_object_object_add(m, "others_test_ndcg@10", json_object_new_double(rs->child_test[1].ndcg10));
		json_object_object_add(m, "parent_others_test_ndcg@10", json_object_new_double(rs->parent_test[1].ndcg10));
	}
	const char *s = json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN);
	if (strlen(s) < len)
		snprintf(buf, len, "%s", s);
	else  /* cannot happen with these fields; keep the one that matters */
		snprintf(buf, len, "{\"%s\":%lld}", SEQREC_META_CUTOFF, (long long)rs->cutoff_ts);
	json_object_put(m);
	return 0;
}

int seqrec_finetune(struct store *st, struct kern *k, const struct seqrec_finetune_opts *o,
                    struct seqrec_finetune_result *res, char *why, size_t whylen)
{
	struct seqrec_finetune_result rs;
	struct store_model_meta pmeta, meta;
	struct seqrec *parent = NULL, *child = NULL, *pgrown = NULL;
	struct seqrec_data *d = NULL;
	uint32_t *newu = NULL, nnew = 0, *other = NULL, nother = 0, *train_users = NULL, ntrain = 0;
	void *blob = NULL;
	char inner[256];
	int r;

	memset(&rs, 0, sizeof rs);
	if (o->epochs < 1 || o->batch < 1 || o->batch > 65536 || !(o->lr > 0.0f && o->lr <= 1.0f) ||
	    o->max_steps < 0 || o->patience < 0 || o->eval_every < 0 || !(o->init_std >= 0.0f && o->init_std <= 1.0f) ||
	    !(o->beta2 >= 0.0f && o->beta2 < 1.0f) || !(o->clip >= 0.0f && o->clip <= 1e6f) ||
	    (o->users != SEQREC_FT_USERS_NEW && o->users != SEQREC_FT_USERS_ALL))
		return seqrec_why(why, whylen, -EINVAL,
		                  "bad fine-tuning options (epochs %d, batch %d, lr %g, max steps %lld, init std %g, "
		                  "beta2 %g, clip %g)",
		                  o->epochs, o->batch, (double)o->lr, (long long)o->max_steps, (double)o->init_std,
		                  (double)o->beta2, (double)o->clip);
	if ((r = pick_parent(st, o->parent, &rs.parent, why, whylen)) < 0)
		return r;
	if ((r = seqrec_load_store(&parent, k, 1, st, rs.parent, &pmeta, inner, sizeof inner)) < 0) {
		seqrec_why(why, whylen, r, "parent: %s", inner);
		goto out;
	}
	rs.cutoff_known = seqrec_meta_cutoff(&pmeta, &rs.parent_cutoff_ts) == 0;
	if ((r = seqrec_data_load(&d, st, &parent->cfg, inner, sizeof inner)) < 0) {
		seqrec_why(why, whylen, r, "reading the store: %s", inner);
		goto out;
	}
	rs.cutoff_ts = d->max_ts;
	rs.parent_items = parent->cfg.V - 1;
	rs.items = d->V - 1;
	if (d->V < parent->cfg.V) {
		r = seqrec_why(why, whylen, -EINVAL, "model version %u knows %d items, the store only %d: "
		               "it was trained on another store", rs.parent, parent->cfg.V - 1, d->V - 1);
		goto out;
	}
	if ((r = seqrec_users_since(d, rs.cutoff_known ? rs.parent_cutoff_ts : INT64_MIN, &newu, &nnew,
	                            &rs.new_events)) < 0 ||
	    !(other = malloc(((size_t)d->nusers + 1) * sizeof *other))) {
		r = seqrec_why(why, whylen, -ENOMEM, "out of memory");
		goto out;
	}
	rs.new_users = nnew;
	for (uint32_t i = 0, j = 0; i < d->nusers; i++) {
		if (j < nnew && newu[j] == i)
			j++;
		else
			other[nother++] = i;
	}
	if (o->users == SEQREC_FT_USERS_NEW) {
		train_users = newu;
		ntrain = nnew;
	} else {
		train_users = NULL;  /* every user */
		ntrain = d->nusers;
	}
	if (ntrain == 0) {
		r = seqrec_why(why, whylen, -ENODATA, "no events after version %u's cut-off (time %lld): nothing to fine-tune on",
		               rs.parent, (long long)rs.parent_cutoff_ts);
		goto out;
	}
	rs.trained_users = ntrain;
	if ((r = seqrec_grow(&child, parent, d->V, o->batch, o->seed, o->init_std)) < 0) {
		seqrec_why(why, whylen, r, "cannot make a model of %d items: %s", d->V - 1, strerror(-r));
		goto out;
	}
	if (o->evaluate) {
		/* Evaluation needs no training batch: a small one keeps the
		 * parent's activations from doubling the peak memory while the
		 * child's are allocated (ML-1M, batch 128: 522 MB peak before,
		 * the child's 238 MB of activations counted twice). */
		int eb = o->batch < FINETUNE_EVAL_BATCH ? o->batch : FINETUNE_EVAL_BATCH;
		if ((r = seqrec_grow(&pgrown, parent, d->V, eb, o->seed, o->init_std)) < 0 ||
		    (r = eval_groups(pgrown, d, newu, nnew, other, nother, rs.parent_test)) < 0) {
			seqrec_why(why, whylen, r, "evaluating the parent: %s", strerror(-r));
			goto out;
		}
		seqrec_free(pgrown);
		pgrown = NULL;
	}
	seqrec_free(parent);
	parent = NULL;

	struct seqrec_train_opts to;
	seqrec_train_defaults(&to);
	to.epochs = o->epochs;
	to.patience = o->patience;
	to.batch = o->batch;
	to.eval_every = o->eval_every;
	to.valid_users = o->valid_users;
	to.seed = o->seed;
	to.optim.lr = to.optim.lr_min = o->lr;
	to.optim.beta2 = o->beta2;
	to.optim.clip = o->clip;
	to.optim.warmup = 0;
	to.max_steps = o->max_steps;
	to.users = train_users;
	to.nusers = train_users ? ntrain : 0;
	to.report_every = o->report_every;
	to.progress = o->progress;
	to.progress_arg = o->progress_arg;
	to.cancel = o->cancel;
	if ((r = seqrec_train(child, d, &to, &rs.train, inner, sizeof inner)) < 0) {
		seqrec_why(why, whylen, r, "%s", inner);
		goto out;
	}
	if (rs.train.steps == 0) {
		r = seqrec_why(why, whylen, -ECANCELED, "cancelled before the first step");
		goto out;
	}
	if (o->evaluate) {
		if ((r = eval_groups(child, d, newu, nnew, other, nother, rs.child_test)) < 0) {
			seqrec_why(why, whylen, r, "evaluating the fine-tuned model: %s", strerror(-r));
			goto out;
		}
		rs.evaluated = 1;
	}

	memset(&meta, 0, sizeof meta);
	meta.parent = rs.parent;
	meta.snapshot_events = d->snapshot_events;
	if ((r = finetune_metrics(&rs, o, meta.metrics, sizeof meta.metrics)) < 0) {
		seqrec_why(why, whylen, r, "out of memory");
		goto out;
	}
	snprintf(meta.kind, sizeof meta.kind, "%s", SEQREC_MODEL_KIND);
	size_t blen = seqrec_ckpt_size(child);
	if (!(blob = malloc(blen))) {
		r = seqrec_why(why, whylen, -ENOMEM, "out of memory");
		goto out;
	}
	seqrec_serialize(child, blob, blen);
	struct put_ctx pc = { &meta, blob, blen, o->activate };
	if ((r = store_write(st, put_in_txn, &pc)) < 0) {
		seqrec_why(why, whylen, r, "storing the fine-tuned model: %s", store_errmsg(st));
		goto out;
	}
	rs.version = meta.version;
	r = 0;
out:
	if (res)
		*res = rs;
	free(blob);
	free(newu);
	free(other);
	seqrec_free(parent);
	seqrec_free(pgrown);
	seqrec_free(child);
	seqrec_data_free(d);
	return r;
}
