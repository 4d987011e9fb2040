/* test_serve.c: the serving engine (model/serve.h) over a store of generated
 * sample data and two tiny models trained on it: recommend and its filters,
 * explanations, errors naming what is wrong, the per-user cache, ingest,
 * a model swap under load from two threads, and the persisted active
 * version. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import/import.h"
#include "model/seqrec.h"
#include "model/serve.h"
#include "model/train.h"
#include "sample/sample.h"
#include "store/store.h"
#include "tests/test.h"

#define K 10

static char err[512];
static float scratch[SERVE_CAND_MAX + 1];

#define CHECK_ERR(expr, code, text) do { \
	err[0] = 0; \
	int check_e_ = (expr); \
	if (check_e_ != (code) || !strstr(err, (text))) { \
		fprintf(stderr, "%s:%d: %s returned %d (%s), expected %d with \"%s\"\n", __FILE__, __LINE__, \
		        #expr, check_e_, err, (code), (text)); \
		exit(1); \
	} \
} while (0)

#define CHECK_S(expr) do { \
	err[0] = 0; \
	int check_e_ = (expr); \
	if (check_e_ < 0) { \
		fprintf(stderr, "%s:%d: %s returned %d: %s\n", __FILE__, __LINE__, #expr, check_e_, err); \
		exit(1); \
	} \
} while (0)

static void quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

/* Trains a tiny model for a few epochs and stores it; returns its version. */
static uint32_t train_one(struct store *st, struct kern *k, uint64_t seed, int epochs)
{
	struct seqrec_config c;
	struct seqrec_data *d;
	struct seqrec *m;
	char why[256];
	CHECK_OK(seqrec_preset("small", &c));
	c.C = 16; c.F = 16; c.L = 1; c.NH = 1; c.T = 16;
	c.dropout = 0.0f;
	if (seqrec_data_load(&d, st, &c, why, sizeof why) < 0) {
		fprintf(stderr, "loading: %s\n", why);
		exit(1);
	}
	c.V = d->V;
	CHECK_OK(seqrec_new(&m, &c, k, 32));
	seqrec_init(m, seed, 0.05f);
	struct seqrec_train_opts o;
	struct seqrec_train_result res;
	seqrec_train_defaults(&o);
	o.epochs = epochs;
	o.eval_every = 0;
	o.batch = 32;
	o.seed = seed;
	o.optim.lr = o.optim.lr_min = 5e-3f;
	if (seqrec_train(m, d, &o, &res, why, sizeof why) < 0) {
		fprintf(stderr, "train: %s\n", why);
		exit(1);
	}
	struct store_model_meta meta;
	memset(&meta, 0, sizeof meta);
	meta.snapshot_events = d->snapshot_events;
	CHECK_OK(seqrec_save_store(m, st, &meta, why, sizeof why));
	seqrec_free(m);
	seqrec_data_free(d);
	return meta.version;
}

/* The distinct items of a user, from the store. */
struct items { uint32_t n; char id[512][16]; int64_t last_ts; };

static int collect(uint32_t user, const struct store_event *ev, void *arg)
{
	struct store_txn *tx = ((void **)arg)[0];
	struct items *it = ((void **)arg)[1];
	struct store_item si;
	(void)user;
	CHECK_OK(store_item_get(tx, ev->item, &si));
	it->last_ts = ev->ts;
	for (uint32_t i = 0; i < it->n; i++)
		if (strlen(it->id[i]) == si.ext_id_len && memcmp(it->id[i], si.ext_id, si.ext_id_len) == 0)
			return 0;
	CHECK(it->n < 512 && si.ext_id_len < 16);
	memcpy(it->id[it->n], si.ext_id, si.ext_id_len);
	it->id[it->n++][si.ext_id_len] = 0;
	return 0;
}

static void user_items(struct store *st, const char *user, struct items *it)
{
	struct store_txn *tx;
	uint32_t uid;
	memset(it, 0, sizeof *it);
	CHECK_OK(store_read_begin(st, &tx));
	CHECK_OK(store_user_lookup(tx, user, strlen(user), &uid));
	void *arg[2] = { tx, it };
	CHECK_OK(store_events_foreach(tx, uid, collect, arg));
	store_txn_end(tx);
}

static int has(const struct items *it, const char *id)
{
	for (uint32_t i = 0; i < it->n; i++)
		if (strcmp(it->id[i], id) == 0)
			return 1;
	return 0;
}

static int rec(struct serve *s, const char *user, int k, const struct serve_filter *f,
               struct serve_item *out, struct serve_result *res)
{
	struct serve_request rq = { user, k, f, NULL, 0 };
	err[0] = 0;
	return serve_recommend(s, &rq, out, res, err, sizeof err);
}

struct behind { const char *user, *item; int64_t ts; };

static int write_behind(struct store_txn *tx, void *arg)
{
	struct behind *b = arg;
	struct store_event ev;
	uint32_t uid;
	memset(&ev, 0, sizeof ev);
	ev.ts = b->ts;
	ev.action = STORE_ACTION_VIEW;
	int r = store_user_lookup(tx, b->user, strlen(b->user), &uid);
	if (r == 0)
		r = store_item_lookup(tx, b->item, strlen(b->item), &ev.item);
	return r ? r : store_event_add(tx, uid, &ev, NULL, 0);
}

/* The same top-k computed directly on a model of its own (what recctl
 * recommend did before serve): representation, seen items, seqrec_topk. */
static void direct_check(struct store *st, uint32_t version, const char *user, const struct serve_item *want)
{
	struct kern *k;
	struct seqrec *m;
	struct store_txn *tx;
	struct store_event ev[64];
	uint32_t uid, seen[512], items[K];
	float h[64], scores[K];
	size_t nev, nseen = 0;
	int used, got;
	char why[256];
	CHECK_OK(kern_cpu_new(&k, 1));
	CHECK_OK(seqrec_load_store(&m, k, 1, st, version, NULL, why, sizeof why));
	CHECK(m->cfg.T + 1 <= 64 && m->cfg.C <= 64);
	CHECK_OK(store_read_begin(st, &tx));
	CHECK_OK(store_user_lookup(tx, user, strlen(user), &uid));
	CHECK_OK(store_events_last(tx, uid, (size_t)m->cfg.T + 1, ev, &nev));
	CHECK_OK(seqrec_user_repr_events(m, ev, nev, h, &used));
	struct items it;
	user_items(st, user, &it);
	for (uint32_t i = 0; i < it.n; i++)
		CHECK_OK(store_item_lookup(tx, it.id[i], strlen(it.id[i]), &seen[nseen++]));
	CHECK_OK(seqrec_topk(m, h, K, seen, nseen, items, scores, &got));
	CHECK_EQ(got, K);
	for (int i = 0; i < K; i++) {
		struct store_item si;
		CHECK_OK(store_item_get(tx, items[i], &si));
		CHECK_STREQ(si.ext_id, si.ext_id_len, want[i].id);
		CHECK(scores[i] == want[i].score);
	}
	store_txn_end(tx);
	seqrec_free(m);
	kern_free(k);
}

static int set_active(struct store_txn *tx, void *arg)
{
	return store_model_active_set(tx, *(uint32_t *)arg);
}

/* --- the swap under load ----------------------------------------------------- */

struct hammer {
	struct serve *s;
	int id;
	atomic_int *stop;
	atomic_long done;
	long failed;
	uint32_t last_version;
};

static void *hammer_run(void *arg)
{
	struct hammer *h = arg;
	struct serve_item out[K];
	struct serve_result res;
	char e[256], user[16];
	/* until stopped (at least 50), then one more that starts after the stop */
	for (long i = 0, last = 0; !last; i++) {
		last = atomic_load(h->stop) && i >= 50;
		snprintf(user, sizeof user, "U%05ld", 1 + (i * 7 + h->id * 13) % 40);
		struct serve_request rq = { user, K, NULL, NULL, 0 };
		int r = serve_recommend(h->s, &rq, out, &res, e, sizeof e);
		if (r < 0 || res.n != K) {
			fprintf(stderr, "thread %d: %s: %d %s\n", h->id, user, r, e);
			h->failed++;
		}
		atomic_fetch_add(&h->done, 1);
		h->last_version = res.version;
	}
	return NULL;
}

int main(void)
{
	char *dir = test_tmpdir();
	char data[4200], stdir[4200];
	snprintf(data, sizeof data, "%s/data", dir);
	snprintf(stdir, sizeof stdir, "%s/st", dir);

	/* --- data: 60 users, 80 items, generated and imported ---------------------- */
	struct sample_opts so;
	sample_opts_default(&so);
	so.seed = 5;
	so.users = 60;
	so.items = 80;
	so.days = 30;
	so.events_per_user = 25;
	char why[512];
	struct sample_stats sst;
	if (sample_generate(&so, data, &sst, why, sizeof why) < 0) {
		fprintf(stderr, "generate: %s\n", why);
		return 1;
	}
	struct store *st;
	struct store_options sto = { 0, -1, 0 };
	CHECK_OK(store_open(&st, stdir, &sto));
	struct import_ctx *ic;
	struct import_options io;
	struct import_result ir;
	memset(&io, 0, sizeof io);
	io.format = "generic";
	io.path = data;
	io.message = quiet;
	CHECK_OK(import_new(&ic, st, &io));
	if (import_run(ic, &ir) < 0) {
		fprintf(stderr, "import: %s\n", import_errmsg(ic));
		return 1;
	}
	import_free(ic);
	printf("imported %llu events\n", (unsigned long long)ir.events_added);

	/* --- no model yet ------------------------------------------------------------ */
	struct serve_options opt;
	struct serve *s;
	struct serve_item out[K], out2[K], tmp[K];
	struct serve_result res, res2;
	serve_options_default(&opt);
	opt.cache_users = 1000;
	CHECK_S(serve_open(&s, st, &opt, err, sizeof err));
	CHECK_EQ(serve_version(s), 0);
	CHECK_ERR(rec(s, "U00001", K, NULL, out, &res), -ENODATA, "no model trained yet");
	float sc;
	const char *one[] = { "I00001" };
	CHECK_ERR(serve_score(s, "U00001", one, 1, &sc, NULL, err, sizeof err), -ENODATA, "no model trained yet");
	serve_close(s);

	struct kern *k;
	CHECK_OK(kern_cpu_new(&k, 2));
	uint32_t v1 = train_one(st, k, 11, 3);
	uint32_t v2 = train_one(st, k, 12, 1);
	CHECK_EQ(v1, 1);
	CHECK_EQ(v2, 2);
	kern_free(k);

	/* no active version chosen: the latest */
	CHECK_S(serve_open(&s, st, &opt, err, sizeof err));
	CHECK_EQ(serve_version(s), v2);
	CHECK_S(serve_use(s, v1, err, sizeof err));
	CHECK_EQ(serve_version(s), v1);
	CHECK_ERR(serve_use(s, 99, err, sizeof err), -ENOENT, "99");
	CHECK_EQ(serve_version(s), v1);  /* a failed use changes nothing */

	/* --- recommend: k items, none seen, the cache ------------------------------- */
	const char *user = "U00003";
	struct items seen;
	user_items(st, user, &seen);
	CHECK(seen.n > 0);
	CHECK_S(rec(s, user, K, NULL, out, &res));
	CHECK_EQ(res.n, K);
	CHECK_EQ(res.version, v1);
	CHECK_EQ(res.cached, 0);
	CHECK(res.used > 0 && res.used <= 16);
	for (int i = 0; i < K; i++) {
		CHECK(!has(&seen, out[i].id));
		CHECK(i == 0 || out[i - 1].score >= out[i].score);
		for (int j = 0; j < i; j++)
			CHECK(strcmp(out[i].id, out[j].id) != 0);
	}
	CHECK_S(rec(s, user, K, NULL, out2, &res2));
	CHECK_EQ(res2.cached, 1);
	CHECK_EQ(res2.n, K);
	CHECK(memcmp(out, out2, sizeof out) == 0);
	direct_check(st, v1, user, out);
	struct serve_stats ss;
	serve_get_stats(s, &ss);
	CHECK_EQ(ss.cache_hits, 1);
	CHECK_EQ(ss.cache_misses, 1);
	CHECK_EQ(ss.version, v1);
	printf("recommend: %s first %s %.3f, cached repeat identical\n", user, out[0].id, out[0].score);

	/* explanations: heaviest first, events of the user, weights within (0, 1] */
	struct serve_why why5[5];
	struct serve_request rq = { user, K, NULL, why5, 5 };
	CHECK_S(serve_recommend(s, &rq, out2, &res2, err, sizeof err));
	CHECK_EQ(res2.cached, 1);
	CHECK_EQ(res2.nwhy, res.used < 5 ? res.used : 5);
	float wsum = 0;
	for (int i = 0; i < res2.nwhy; i++) {
		CHECK(has(&seen, why5[i].item));
		CHECK(why5[i].weight > 0 && why5[i].weight <= 1.0f + 1e-5f);
		CHECK(i == 0 || why5[i - 1].weight >= why5[i].weight);
		CHECK(why5[i].ts > 0);
		wsum += why5[i].weight;
	}
	CHECK(wsum <= 1.0f + 1e-4f);

	/* include_seen: the best over every item, seen ones too */
	struct serve_filter f = { 0 };
	f.include_seen = 1;
	CHECK_S(rec(s, user, K, &f, out2, &res2));
	CHECK_EQ(res2.n, K);
	{
		/* score every item: the top one must be the argmax */
		const char *all[80];
		char names[80][8];
		float scs[80];
		for (int i = 0; i < 80; i++) {
			snprintf(names[i], sizeof names[i], "I%05d", i + 1);
			all[i] = names[i];
		}
		uint32_t ver = 0;
		CHECK_S(serve_score(s, user, all, 80, scs, &ver, err, sizeof err));
		CHECK_EQ(ver, v1);
		int best = 0;
		for (int i = 1; i < 80; i++)
			if (scs[i] > scs[best])
				best = i;
		CHECK(strcmp(out2[0].id, names[best]) == 0);
		CHECK(fabsf(out2[0].score - scs[best]) < 1e-4f);
		/* and serve_score agrees with recommend's scores */
		for (int i = 0; i < K; i++) {
			int idx = atoi(out[i].id + 1) - 1;
			CHECK(fabsf(scs[idx] - out[i].score) < 1e-4f);
		}
	}

	/* include: only those items, seen ones left out */
	const char *inc[6] = { out[9].id, out[0].id, seen.id[0], out[5].id, out[0].id, "I00080" };
	memset(&f, 0, sizeof f);
	f.include = inc;
	f.ninclude = 6;
	CHECK_S(rec(s, user, K, &f, out2, &res2));
	int want = 3 + !has(&seen, "I00080");
	CHECK_EQ(res2.n, want);
	for (int i = 0; i < res2.n; i++) {
		int ok = 0;
		for (int j = 0; j < 6; j++)
			ok |= strcmp(out2[i].id, inc[j]) == 0;
		CHECK(ok);
		CHECK(!has(&seen, out2[i].id));
	}
	CHECK(strcmp(out2[0].id, out[0].id) == 0);
	/* exclude: the top three go, the rest move up */
	const char *exc[3] = { out[0].id, out[1].id, out[2].id };
	memset(&f, 0, sizeof f);
	f.exclude = exc;
	f.nexclude = 3;
	CHECK_S(rec(s, user, K, &f, out2, &res2));
	CHECK_EQ(res2.n, K);
	for (int i = 0; i < K - 3; i++)
		CHECK(strcmp(out2[i].id, out[i + 3].id) == 0);
	for (int i = 0; i < K; i++)
		CHECK(strcmp(out2[i].id, exc[0]) && strcmp(out2[i].id, exc[1]) && strcmp(out2[i].id, exc[2]));
	printf("filters: include, exclude, include_seen honoured\n");

	/* --- errors name what is wrong --------------------------------------------- */
	CHECK_ERR(rec(s, "NOBODY-42", K, NULL, out2, &res2), -ENOENT, "NOBODY-42");
	CHECK_ERR(rec(s, user, 0, NULL, out2, &res2), -EINVAL, "k:");
	CHECK_ERR(rec(s, user, SERVE_K_MAX + 1, NULL, out2, &res2), -EINVAL, "k:");
	CHECK_ERR(rec(s, "", K, NULL, out2, &res2), -EINVAL, "user");
	const char *bad[2] = { "I00002", "NO-SUCH-ITEM" };
	memset(&f, 0, sizeof f);
	f.exclude = bad;
	f.nexclude = 2;
	CHECK_ERR(rec(s, user, K, &f, out2, &res2), -ENOENT, "NO-SUCH-ITEM");
	CHECK(strstr(err, "filter.exclude[1]"));
	memset(&f, 0, sizeof f);
	f.include = bad;
	f.ninclude = 2;
	CHECK_ERR(rec(s, user, K, &f, out2, &res2), -ENOENT, "filter.include[1]");
	f.ninclude = SERVE_FILTER_MAX + 1;
	CHECK_ERR(rec(s, user, K, &f, out2, &res2), -EINVAL, "filter.include");
	CHECK_ERR(serve_score(s, user, bad, 2, scratch, NULL, err, sizeof err), -ENOENT, "NO-SUCH-ITEM");
	CHECK_ERR(serve_score(s, user, bad, SERVE_CAND_MAX + 1, scratch, NULL, err, sizeof err), -EINVAL, "items");
	printf("errors: unknown user, unknown items, limits named\n");

	/* --- ingest invalidates ----------------------------------------------------- */
	float before[2], after[2];
	const char *probe[2] = { out[0].id, out[1].id };
	CHECK_S(serve_score(s, user, probe, 2, before, NULL, err, sizeof err));
	struct serve_event ev = { 0 };
	ev.user = user;
	ev.item = out[0].id;
	ev.ts = seen.last_ts + 60;
	ev.action = "purchase";
	struct store_counts c0, c1;
	struct store_txn *tx;
	/* a bad event: nothing of the call is written */
	struct serve_event evs[2] = { ev, ev };
	evs[1].item = "";
	CHECK_OK(store_read_begin(st, &tx));
	CHECK_OK(store_counts(tx, &c0));
	store_txn_end(tx);
	CHECK_ERR(serve_ingest(s, evs, 2, err, sizeof err), -EINVAL, "event 1");
	CHECK(strstr(err, "item"));
	evs[1] = ev;
	evs[1].has_loc = 1;
	evs[1].lat = 123;
	CHECK_ERR(serve_ingest(s, evs, 2, err, sizeof err), -EINVAL, "lat");
	CHECK_OK(store_read_begin(st, &tx));
	CHECK_OK(store_counts(tx, &c1));
	store_txn_end(tx);
	CHECK_EQ(c1.events, c0.events);
	CHECK_S(serve_ingest(s, &ev, 1, err, sizeof err));
	CHECK_S(rec(s, user, K, NULL, out2, &res2));
	CHECK_EQ(res2.cached, 0);
	for (int i = 0; i < K; i++)
		CHECK(strcmp(out2[i].id, out[0].id) != 0);  /* now seen */
	CHECK(strcmp(out2[0].id, out[0].id) != 0);
	CHECK_S(serve_score(s, user, probe, 2, after, NULL, err, sizeof err));
	CHECK(before[0] != after[0] || before[1] != after[1]);  /* h changed */
	/* a new user and a new item through ingest */
	struct serve_event nev[3] = {
		{ "NEW-USER", "I00004", 1767225600, NULL, 0, 0, 0, 0, 0, NULL },
		{ "NEW-USER", "I00005", 1767225700, "click", 4.5f, 1, 50.8f, -0.1f, 1, "phone" },
		{ "NEW-USER", "NEW-ITEM", 1767225800, "view", 0, 0, 0, 0, 0, NULL },
	};
	CHECK_S(serve_ingest(s, nev, 3, err, sizeof err));
	{
		/* stored as the importer stores them: no action = 0, the rest as given */
		struct store_event got[4];
		size_t ngot;
		uint32_t uid;
		const char *an;
		size_t al;
		CHECK_OK(store_read_begin(st, &tx));
		CHECK_OK(store_user_lookup(tx, "NEW-USER", 8, &uid));
		CHECK_OK(store_events_last(tx, uid, 4, got, &ngot));
		CHECK_EQ(ngot, 3);
		CHECK_EQ(got[0].action, STORE_ACTION_NONE);
		CHECK_EQ(got[1].action, STORE_ACTION_CLICK);
		CHECK_EQ(got[1].flags, STORE_EV_VALUE | STORE_EV_LOC);
		CHECK(got[1].value == 4.5f && fabsf(got[1].lat - 50.8f) < 1e-5f && got[1].device != 0);
		CHECK_OK(store_device_name(tx, got[1].device, &an, &al));
		CHECK_STREQ(an, al, "phone");
		CHECK_EQ(got[2].ts, 1767225800);
		store_txn_end(tx);
	}
	CHECK_S(rec(s, "NEW-USER", K, NULL, out2, &res2));
	CHECK_EQ(res2.n, K);
	CHECK_EQ(res2.used, 2);  /* NEW-ITEM is not in model 1's catalog */
	const char *ni[1] = { "NEW-ITEM" };
	CHECK_S(serve_score(s, "NEW-USER", ni, 1, &sc, NULL, err, sizeof err));
	CHECK(isinf(sc) && sc < 0);
	serve_get_stats(s, &ss);
	CHECK_EQ(ss.ingested_events, 4);
	printf("ingest: bad events write nothing; the next recommend reflects new ones\n");

	/* an event written behind serve's back still invalidates (event count) */
	CHECK_S(rec(s, user, K, NULL, out, &res));
	CHECK_S(rec(s, user, K, NULL, out, &res));
	CHECK_EQ(res.cached, 1);
	struct behind bh = { user, out[0].id, seen.last_ts + 120 };
	CHECK_OK(store_write(st, write_behind, &bh));
	CHECK_S(rec(s, user, K, NULL, out2, &res2));
	CHECK_EQ(res2.cached, 0);
	for (int i = 0; i < K; i++)
		CHECK(strcmp(out2[i].id, out[0].id) != 0);

	/* --- swap under load ------------------------------------------------------------ */
	atomic_int stop = 0;
	struct hammer h[2] = { { s, 0, &stop, 0, 0, 0 }, { s, 1, &stop, 0, 0, 0 } };
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		CHECK(pthread_create(&th[i], NULL, hammer_run, &h[i]) == 0);
	/* swaps while both threads are busy: each after 40 more requests */
	for (int i = 0; i < 5; i++) {
		while (atomic_load(&h[0].done) + atomic_load(&h[1].done) < 40 * (i + 1))
			sched_yield();
		CHECK_S(serve_use(s, i % 2 ? v1 : v2, err, sizeof err));
		CHECK_S(rec(s, user, K, NULL, out, &res));
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	CHECK_EQ(h[0].failed + h[1].failed, 0);
	CHECK_EQ(h[0].last_version, v2);
	CHECK_EQ(h[1].last_version, v2);
	serve_get_stats(s, &ss);
	CHECK(ss.swaps >= 5);
	CHECK_S(rec(s, user, K, NULL, out, &res));
	CHECK_EQ(res.version, v2);
	printf("swap under load: %ld + %ld requests, none failed, version %u after\n", (long)atomic_load(&h[0].done),
	       (long)atomic_load(&h[1].done), v2);

	/* the same answers as a fresh server of version 2 without a cache, and
	 * one context shared by two threads */
	struct serve_options o2;
	struct serve *s2;
	serve_options_default(&o2);
	o2.cache_users = 0;
	o2.contexts = 1;
	o2.version = v1;
	CHECK_S(serve_open(&s2, st, &o2, err, sizeof err));
	CHECK_EQ(serve_version(s2), v1);     /* pinned, not the active one */
	CHECK_S(serve_reload(s2, NULL, err, sizeof err));
	CHECK_EQ(serve_version(s2), v1);
	serve_close(s2);
	o2.version = 0;
	o2.threads = 2;  /* the kernels give the same bits for any thread count */
	CHECK_S(serve_open(&s2, st, &o2, err, sizeof err));
	CHECK_EQ(serve_version(s2), v2);
	CHECK_S(rec(s2, user, K, NULL, out2, &res2));
	CHECK_EQ(res2.cached, 0);
	CHECK(memcmp(out, out2, sizeof out) == 0);
	CHECK_S(rec(s2, user, K, NULL, tmp, &res2));
	CHECK_EQ(res2.cached, 0);
	atomic_store(&stop, 1);
	struct hammer h2[2] = { { s2, 0, &stop, 0, 0, 0 }, { s2, 1, &stop, 0, 0, 0 } };
	for (int i = 0; i < 2; i++)
		CHECK(pthread_create(&th[i], NULL, hammer_run, &h2[i]) == 0);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	CHECK_EQ(h2[0].failed + h2[1].failed, 0);
	serve_close(s2);

	/* a cache far smaller than the users (one entry a shard): CLOCK evicts,
	 * answers stay those of the uncached server */
	o2.threads = 1;
	o2.contexts = 0;
	o2.cache_users = 64;
	CHECK_S(serve_open(&s2, st, &o2, err, sizeof err));
	struct serve *s3;
	serve_options_default(&o2);
	o2.cache_users = 0;
	CHECK_S(serve_open(&s3, st, &o2, err, sizeof err));
	for (int round = 0; round < 3; round++)
		for (int u = 1; u <= 60; u++) {
			char uname[16];
			snprintf(uname, sizeof uname, "U%05d", u);
			CHECK_S(rec(s2, uname, K, NULL, out, &res));
			CHECK_S(rec(s3, uname, K, NULL, out2, &res2));
			CHECK(memcmp(out, out2, sizeof out) == 0);
		}
	serve_get_stats(s2, &ss);
	CHECK(ss.cache_misses > 60);   /* evicted entries were recomputed */
	CHECK_EQ(ss.cache_hits + ss.cache_misses, 180);
	/* serve_invalidate drops one user's entry */
	CHECK_S(rec(s2, user, K, NULL, out, &res));
	CHECK_S(rec(s2, user, K, NULL, out, &res));
	CHECK_EQ(res.cached, 1);
	{
		uint32_t uid;
		CHECK_OK(store_read_begin(st, &tx));
		CHECK_OK(store_user_lookup(tx, user, strlen(user), &uid));
		store_txn_end(tx);
		serve_invalidate(s2, uid);
	}
	CHECK_S(rec(s2, user, K, NULL, out2, &res2));
	CHECK_EQ(res2.cached, 0);
	CHECK(memcmp(out, out2, sizeof out) == 0);
	serve_close(s3);
	serve_close(s2);
	printf("small cache: evictions recomputed, invalidate drops an entry\n");

	/* --- the active version persists --------------------------------------------- */
	serve_close(s);
	CHECK_S(serve_open(&s, st, &opt, err, sizeof err));
	CHECK_EQ(serve_version(s), v2);
	CHECK_S(serve_use(s, v1, err, sizeof err));
	serve_close(s);
	uint32_t active = 0;
	CHECK_OK(store_read_begin(st, &tx));
	CHECK_OK(store_model_active_get(tx, &active));
	store_txn_end(tx);
	CHECK_EQ(active, v1);
	uint32_t nine = 99;
	CHECK_EQ(store_write(st, set_active, &nine), -ENOENT);  /* no such version */
	CHECK(strstr(store_errmsg(st), "99"));
	CHECK_S(serve_open(&s, st, &opt, err, sizeof err));
	CHECK_EQ(serve_version(s), v1);
	int changed = -1;
	CHECK_S(serve_reload(s, &changed, err, sizeof err));
	CHECK_EQ(changed, 0);
	serve_close(s);
	printf("active version persists across close and open\n");

	store_close(st);
	test_rmtree(dir);
	printf("ok\n");
	return 0;
}
