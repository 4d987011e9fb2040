/* serve.c: the serving engine of serve.h.
 *
 * Pieces and their locks (none of them is held across a model load, a
 * forward pass or a store write):
 *  - the resident model (struct smodel): one parameter arena in a seqrec
 *    loaded from the store, reference counted.  s->cur holds one reference;
 *    cur_mu guards only "read s->cur and take a reference" and the swap.
 *  - inference contexts (struct sctx): a kern and an inference instance of
 *    the model (seqrec_new_infer: its own activations, the model's
 *    parameters borrowed), plus scratch.  A kern serves one thread at a
 *    time (kernels/cpu/cpu.h), so each context has its own; with threads 1
 *    it is a calloc and a mutex, no thread, and the request runs on the
 *    caller's thread.  The loaded models share one kern that never computes.  A context is bound to the model
 *    it was built for and holds a reference to it; one that finds a newer
 *    model when taken is rebuilt, so a swap makes new contexts and the old
 *    model is freed when its last request ends.  A pool of at most
 *    s->maxctx, taken and given back under pool_mu.
 *  - the per-user cache: CACHE_SHARDS shards, each a hash table of slots
 *    under its own mutex with CLOCK eviction.  An entry (struct ustate) is
 *    immutable and reference counted, so a request reads it outside the
 *    shard's lock.  It is valid for the model instance (serial) and the
 *    user's event count it was computed from: an ingest, or events another
 *    process wrote, or a swap, make the next request recompute it.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "import/event.h"
#include "kernels/kernels.h"
#include "model/seqrec.h"
#include "model/serve.h"

#define CACHE_SHARDS     64
#define WHY_KEEP         SERVE_WHY_MAX
#define CTX_DEFAULT_MIN  4
#define CTX_DEFAULT_MAX  64

/* --- errors ------------------------------------------------------------------ */

static int serr(char *err, size_t errlen, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int serr(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* An ID for a message: at most 64 bytes, control characters as '?'. */
static const char *qid(char *buf, size_t cap, const char *p, size_t n)
{
	size_t o = 0, lim = n > 64 ? 64 : n;
	for (size_t i = 0; i < lim && o + 4 < cap; i++) {
		unsigned char c = (unsigned char)p[i];
		buf[o++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	if (lim < n && o + 4 < cap) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = 0;
	return buf;
}
#define QID(s) qid((char[80]){ 0 }, 80, (s), strlen(s))

/* --- the resident model -------------------------------------------------------- */

struct smodel {
	atomic_uint refs;
	uint32_t version;
	uint64_t serial;          /* which load: cache entries name it */
	struct seqrec *base;      /* the parameters; its kern (s->kload) never computes */
};

static void model_put(struct smodel *m)
{
	if (m && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1) {
		seqrec_free(m->base);
		free(m);
	}
}

/* --- per-user state and the cache ------------------------------------------------ */

struct uwhy {
	int64_t  ts;
	uint32_t item;
	float    w;
	uint8_t  action;
};

struct ustate {
	atomic_uint refs;
	uint64_t serial;          /* the model load it was computed with */
	size_t   nevents;         /* the user's events when it was computed */
	int      used;            /* events the representation covers */
	int      nwhy;            /* heaviest first, at most WHY_KEEP */
	uint32_t nseen;           /* distinct items of the user, sorted */
	float    *h;              /* (C) */
	uint32_t *seen;
	struct uwhy *why;
};

static void ustate_put(struct ustate *u)
{
	if (u && atomic_fetch_sub_explicit(&u->refs, 1, memory_order_acq_rel) == 1)
		free(u);
}

struct cslot {
	uint32_t user;
	int32_t  next;            /* bucket chain, or the free list */
	uint8_t  live, ref;       /* CLOCK's reference bit */
	struct ustate *st;
};

struct cshard {
	pthread_mutex_t mu;
	uint32_t cap, used, hand, nbuckets;
	int32_t free_head;
	struct cslot *slot;
	int32_t *bucket;
} __attribute__((aligned(64)));

static uint32_t user_hash(uint32_t u)
{
	uint64_t z = (uint64_t)u * 0x9e3779b97f4a7c15ull;
	return (uint32_t)(z >> 32) ^ (uint32_t)z;
}

/* --- inference contexts ------------------------------------------------------------ */

struct sctx {
	struct sctx *next;        /* the pool's free list */
	struct kern *k;
	struct smodel *model;     /* a reference, or NULL */
	struct seqrec *m;         /* inference instance over model->base */
	struct store_event *ev;   /* (T + 1) */
	float *h, *w;             /* (C), (T) */
	uint32_t *seen; size_t seen_cap;
	uint32_t *excl; size_t excl_cap;
	int32_t *cand; float *cscore; uint32_t *cid; size_t cand_cap;
	uint32_t *topi; float *tops;  /* (SERVE_K_MAX) */
};

struct serve {
	struct store *st;
	struct serve_options opt;
	struct kern *kload;       /* the loaded models' kern: never computes */

	pthread_mutex_t load_mu;  /* serialises loads and swaps (never taken by requests) */
	pthread_mutex_t cur_mu;   /* guards cur's read-and-reference and the swap */
	struct smodel *cur;
	_Atomic(struct smodel *) cur_peek;  /* cur, for pointer comparisons only */
	atomic_uint cur_version;
	uint64_t next_serial;     /* under load_mu */

	pthread_mutex_t pool_mu;
	pthread_cond_t pool_cv;
	struct sctx *free_ctx;
	int nctx, maxctx;

	struct cshard *shard;     /* CACHE_SHARDS, or NULL: no cache */

	atomic_uint_fast64_t n_recommends, n_scores, n_ingested, n_hits, n_misses, n_swaps;
};

void serve_options_default(struct serve_options *o)
{
	memset(o, 0, sizeof *o);
	o->threads = 1;
	o->cache_users = 65536;
}

/* --- cache ---------------------------------------------------------------------------- */

static int cache_new(struct serve *s, size_t users)
{
	if (!users)
		return 0;
	if (users > (size_t)1 << 30)
		users = (size_t)1 << 30;
	if (!(s->shard = calloc(CACHE_SHARDS, sizeof *s->shard)))
		return -ENOMEM;
	uint32_t per = (uint32_t)((users + CACHE_SHARDS - 1) / CACHE_SHARDS);
	for (int i = 0; i < CACHE_SHARDS; i++) {
		struct cshard *sh = &s->shard[i];
		pthread_mutex_init(&sh->mu, NULL);
		sh->cap = per;
		sh->free_head = -1;
		sh->nbuckets = 1;
		while (sh->nbuckets < 2 * per)
			sh->nbuckets <<= 1;
		sh->slot = calloc(per, sizeof *sh->slot);
		sh->bucket = malloc(sh->nbuckets * sizeof *sh->bucket);
		if (!sh->slot || !sh->bucket)
			return -ENOMEM;
		for (uint32_t b = 0; b < sh->nbuckets; b++)
			sh->bucket[b] = -1;
	}
	return 0;
}

static void cache_free(struct serve *s)
{
	if (!s->shard)
		return;
	for (int i = 0; i < CACHE_SHARDS; i++) {
		struct cshard *sh = &s->shard[i];
		if (sh->slot)
			for (uint32_t j = 0; j < sh->cap; j++)
				if (sh->slot[j].live)
					ustate_put(sh->slot[j].st);
		free(sh->slot);
		free(sh->bucket);
		pthread_mutex_destroy(&sh->mu);
	}
	free(s->shard);
	s->shard = NULL;
}

static struct cshard *cache_shard(struct serve *s, uint32_t user, uint32_t *h)
{
	*h = user_hash(user);
	return &s->shard[*h & (CACHE_SHARDS - 1)];
}

/* Unlinks a live slot from its bucket (under the shard's lock). */
static void slot_unlink(struct cshard *sh, int32_t idx, uint32_t h)
{
	int32_t *pp = &sh->bucket[(h >> 6) & (sh->nbuckets - 1)];
	while (*pp != idx)
		pp = &sh->slot[*pp].next;
	*pp = sh->slot[idx].next;
}

static int32_t slot_find(struct cshard *sh, uint32_t user, uint32_t h)
{
	for (int32_t i = sh->bucket[(h >> 6) & (sh->nbuckets - 1)]; i >= 0; i = sh->slot[i].next)
		if (sh->slot[i].user == user)
			return i;
	return -1;
}

/* A referenced entry, or NULL. */
static struct ustate *cache_get(struct serve *s, uint32_t user)
{
	uint32_t h;
	struct ustate *u = NULL;
	if (!s->shard)
		return NULL;
	struct cshard *sh = cache_shard(s, user, &h);
	pthread_mutex_lock(&sh->mu);
	int32_t i = slot_find(sh, user, h);
	if (i >= 0) {
		sh->slot[i].ref = 1;
		u = sh->slot[i].st;
		atomic_fetch_add_explicit(&u->refs, 1, memory_order_relaxed);
	}
	pthread_mutex_unlock(&sh->mu);
	return u;
}

/* Puts u in the cache (which takes a reference of its own). */
static void cache_put(struct serve *s, uint32_t user, struct ustate *u)
{
	uint32_t h;
	struct ustate *old = NULL;
	if (!s->shard)
		return;
	struct cshard *sh = cache_shard(s, user, &h);
	atomic_fetch_add_explicit(&u->refs, 1, memory_order_relaxed);
	pthread_mutex_lock(&sh->mu);
	int32_t i = slot_find(sh, user, h);
	if (i >= 0) {
		old = sh->slot[i].st;
		sh->slot[i].st = u;
		sh->slot[i].ref = 1;
		pthread_mutex_unlock(&sh->mu);
		ustate_put(old);
		return;
	}
	if (sh->free_head >= 0) {
		i = sh->free_head;
		sh->free_head = sh->slot[i].next;
	} else if (sh->used < sh->cap) {
		i = (int32_t)sh->used++;
	} else {
		/* CLOCK: the first slot whose reference bit is clear goes */
		for (;;) {
			struct cslot *c = &sh->slot[sh->hand];
			int32_t at = (int32_t)sh->hand;
			sh->hand = (sh->hand + 1) % sh->cap;
			if (c->ref) {
				c->ref = 0;
				continue;
			}
			slot_unlink(sh, at, user_hash(c->user));
			old = c->st;
			i = at;
			break;
		}
	}
	struct cslot *c = &sh->slot[i];
	c->user = user;
	c->st = u;
	c->live = 1;
	c->ref = 1;
	int32_t *head = &sh->bucket[(h >> 6) & (sh->nbuckets - 1)];
	c->next = *head;
	*head = i;
	pthread_mutex_unlock(&sh->mu);
	ustate_put(old);
}

void serve_invalidate(struct serve *s, uint32_t user)
{
	uint32_t h;
	struct ustate *old = NULL;
	if (!s->shard)
		return;
	struct cshard *sh = cache_shard(s, user, &h);
	pthread_mutex_lock(&sh->mu);
	int32_t i = slot_find(sh, user, h);
	if (i >= 0) {
		slot_unlink(sh, i, h);
		old = sh->slot[i].st;
		sh->slot[i].live = 0;
		sh->slot[i].st = NULL;
		sh->slot[i].next = sh->free_head;
		sh->free_head = i;
	}
	pthread_mutex_unlock(&sh->mu);
	ustate_put(old);
}

/* --- contexts ------------------------------------------------------------------------ */

static void ctx_unbind(struct sctx *c)
{
	seqrec_free(c->m);
	c->m = NULL;
	model_put(c->model);
	c->model = NULL;
}

static void ctx_free(struct sctx *c)
{
	if (!c)
		return;
	ctx_unbind(c);
	kern_free(c->k);
	free(c->ev);
	free(c->h);
	free(c->w);
	free(c->seen);
	free(c->excl);
	free(c->cand);
	free(c->cscore);
	free(c->cid);
	free(c->topi);
	free(c->tops);
	free(c);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 64;
	while (n < need)
		n *= 2;
	void *q = realloc(*p, n * elem);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = n;
	return 0;
}

/* Room for need candidates in cand, cscore and cid. */
static int ctx_cand(struct sctx *c, size_t need)
{
	if (need <= c->cand_cap)
		return 0;
	size_t n = need < 256 ? 256 : need;
	free(c->cand);
	free(c->cscore);
	free(c->cid);
	c->cand = malloc(n * sizeof *c->cand);
	c->cscore = malloc(n * sizeof *c->cscore);
	c->cid = malloc(n * sizeof *c->cid);
	if (!c->cand || !c->cscore || !c->cid) {
		free(c->cand); free(c->cscore); free(c->cid);
		c->cand = NULL; c->cscore = NULL; c->cid = NULL;
		c->cand_cap = 0;
		return -ENOMEM;
	}
	c->cand_cap = n;
	return 0;
}


/* A reference to the serving model, or NULL when there is none. */
static struct smodel *model_get(struct serve *s)
{
	pthread_mutex_lock(&s->cur_mu);
	struct smodel *m = s->cur;
	if (m)
		atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
	pthread_mutex_unlock(&s->cur_mu);
	return m;
}

static void ctx_release(struct serve *s, struct sctx *c)
{
	/* a context of a model that is no longer served lets it go now */
	if (c && c->model && c->model != atomic_load_explicit(&s->cur_peek, memory_order_acquire))
		ctx_unbind(c);
	pthread_mutex_lock(&s->pool_mu);
	if (c) {
		c->next = s->free_ctx;
		s->free_ctx = c;
	} else {
		s->nctx--;   /* a context that could not be made */
	}
	pthread_cond_signal(&s->pool_cv);
	pthread_mutex_unlock(&s->pool_mu);
}

/* A context bound to the serving model.  -ENODATA no model, -ENOMEM. */
static int ctx_take(struct serve *s, struct sctx **out, char *err, size_t errlen)
{
	struct sctx *c;
	int r;

	pthread_mutex_lock(&s->pool_mu);
	while (!s->free_ctx && s->nctx >= s->maxctx)
		pthread_cond_wait(&s->pool_cv, &s->pool_mu);
	if ((c = s->free_ctx))
		s->free_ctx = c->next;
	else
		s->nctx++;
	pthread_mutex_unlock(&s->pool_mu);
	if (!c) {
		if (!(c = calloc(1, sizeof *c)) ||
		    !(c->topi = malloc(SERVE_K_MAX * sizeof *c->topi)) ||
		    !(c->tops = malloc(SERVE_K_MAX * sizeof *c->tops))) {
			ctx_free(c);
			ctx_release(s, NULL);
			return serr(err, errlen, -ENOMEM, "out of memory");
		}
		if ((r = kern_cpu_new(&c->k, s->opt.threads)) < 0) {
			c->k = NULL;
			ctx_free(c);
			ctx_release(s, NULL);
			return serr(err, errlen, r, "cannot start the kernels: %s", strerror(-r));
		}
	}
	struct smodel *m = model_get(s);
	if (!m) {
		ctx_release(s, c);
		return serr(err, errlen, -ENODATA, "no model trained yet");
	}
	if (c->model == m) {
		model_put(m);   /* the context holds one already */
	} else {
		ctx_unbind(c);
		const struct seqrec_config *cfg = &m->base->cfg;
		float *h = realloc(c->h, (size_t)cfg->C * sizeof *h);
		if (h)
			c->h = h;
		float *w = realloc(c->w, (size_t)cfg->T * sizeof *w);
		if (w)
			c->w = w;
		struct store_event *ev = realloc(c->ev, ((size_t)cfg->T + 1) * sizeof *ev);
		if (ev)
			c->ev = ev;
		if (!h || !w || !ev || (r = seqrec_new_infer(&c->m, m->base, c->k)) < 0) {
			c->m = NULL;
			model_put(m);
			ctx_release(s, c);
			return serr(err, errlen, -ENOMEM, "out of memory for an inference context");
		}
		c->model = m;
	}
	*out = c;
	return 0;
}

/* Lets go of the models of idle contexts that are no longer served: the
 * idle list is taken out whole, trimmed outside the lock, and put back. */
static void pool_trim(struct serve *s)
{
	struct smodel *cur = atomic_load(&s->cur_peek);
	pthread_mutex_lock(&s->pool_mu);
	struct sctx *list = s->free_ctx, *last = NULL;
	s->free_ctx = NULL;
	pthread_mutex_unlock(&s->pool_mu);
	for (struct sctx *c = list; c; c = c->next) {
		if (c->model && c->model != cur)
			ctx_unbind(c);
		last = c;
	}
	if (!last)
		return;
	pthread_mutex_lock(&s->pool_mu);
	last->next = s->free_ctx;
	s->free_ctx = list;
	pthread_cond_broadcast(&s->pool_cv);
	pthread_mutex_unlock(&s->pool_mu);
}

/* --- loading and swapping -------------------------------------------------------------- */

/* Loads version (0 = latest) outside every lock requests take. */
static int model_load(struct serve *s, uint32_t version, struct smodel **out, char *err, size_t errlen)
{
	struct smodel *m = calloc(1, sizeof *m);
	struct store_model_meta meta;
	char why[512];
	if (!m)
		return serr(err, errlen, -ENOMEM, "out of memory");
	int r = seqrec_load_store(&m->base, s->kload, 1, s->st, version, &meta, why, sizeof why);
	if (r < 0) {
		free(m);
		if (r == -ENOENT && version == 0)
			return serr(err, errlen, -ENODATA, "no model trained yet");
		return serr(err, errlen, r, "%s", why);
	}
	atomic_init(&m->refs, 1);
	m->version = meta.version;
	m->serial = ++s->next_serial;
	*out = m;
	return 0;
}

/* Makes m the serving model (under load_mu); the old one goes when its
 * last request ends. */
static void model_swap(struct serve *s, struct smodel *m)
{
	pthread_mutex_lock(&s->cur_mu);
	struct smodel *old = s->cur;
	s->cur = m;
	atomic_store_explicit(&s->cur_peek, m, memory_order_release);
	atomic_store(&s->cur_version, m ? m->version : 0);
	pthread_mutex_unlock(&s->cur_mu);
	if (old)
		atomic_fetch_add(&s->n_swaps, 1);
	model_put(old);
	pool_trim(s);
}

static int active_get(struct serve *s, uint32_t *version, char *err, size_t errlen)
{
	struct store_txn *tx;
	int r = store_read_begin(s->st, &tx);
	if (r == 0) {
		r = store_model_active_get(tx, version);
		store_txn_end(tx);
	}
	return r < 0 ? serr(err, errlen, r, "reading the active model version: %s", store_errmsg(s->st)) : 0;
}

static int active_set_txn(struct store_txn *tx, void *arg)
{
	return store_model_active_set(tx, *(const uint32_t *)arg);
}

int serve_use(struct serve *s, uint32_t version, char *err, size_t errlen)
{
	struct smodel *m;
	pthread_mutex_lock(&s->load_mu);
	int r = model_load(s, version, &m, err, errlen);
	if (r == 0) {
		uint32_t v = m->version;
		if ((r = store_write(s->st, active_set_txn, &v)) < 0) {
			serr(err, errlen, r, "making model version %u active: %s", v, store_errmsg(s->st));
			model_put(m);
		} else {
			model_swap(s, m);
		}
	}
	pthread_mutex_unlock(&s->load_mu);
	return r;
}

int serve_reload(struct serve *s, int *changed, char *err, size_t errlen)
{
	uint32_t want = s->opt.version;
	struct smodel *m;
	int r = 0;
	if (changed)
		*changed = 0;
	pthread_mutex_lock(&s->load_mu);
	if (!want && (r = active_get(s, &want, err, errlen)) < 0)
		goto out;
	if (!want) {
		struct store_txn *tx;
		if ((r = store_read_begin(s->st, &tx)) < 0) {
			serr(err, errlen, r, "%s", store_errmsg(s->st));
			goto out;
		}
		r = store_model_latest(tx, &want);
		store_txn_end(tx);
		if (r == -ENOENT) {  /* still nothing trained */
			r = 0;
			goto out;
		}
		if (r < 0) {
			serr(err, errlen, r, "%s", store_errmsg(s->st));
			goto out;
		}
	}
	if (want == atomic_load(&s->cur_version))
		goto out;
	if ((r = model_load(s, want, &m, err, errlen)) < 0)
		goto out;
	model_swap(s, m);
	if (changed)
		*changed = 1;
out:
	pthread_mutex_unlock(&s->load_mu);
	return r;
}

uint32_t serve_version(struct serve *s)
{
	return atomic_load(&s->cur_version);
}

int serve_open(struct serve **out, struct store *st, const struct serve_options *o, char *err, size_t errlen)
{
	struct serve_options def;
	struct serve *s;
	int r;

	if (!o) {
		serve_options_default(&def);
		o = &def;
	}
	if (o->threads < 0 || o->threads > SERVE_THREADS_MAX)
		return serr(err, errlen, -EINVAL, "threads: %d is not from 0 to %d", o->threads, SERVE_THREADS_MAX);
	if (o->contexts < 0 || o->contexts > SERVE_CONTEXTS_MAX)
		return serr(err, errlen, -EINVAL, "contexts: %d is not from 0 to %d", o->contexts, SERVE_CONTEXTS_MAX);
	if (!(s = calloc(1, sizeof *s)))
		return serr(err, errlen, -ENOMEM, "out of memory");
	s->st = st;
	s->opt = *o;
	if (s->opt.threads == 0)
		s->opt.threads = 1;
	s->maxctx = o->contexts;
	if (!s->maxctx) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		s->maxctx = n > 0 ? (int)(2 * n) : CTX_DEFAULT_MIN;
		if (s->maxctx < CTX_DEFAULT_MIN)
			s->maxctx = CTX_DEFAULT_MIN;
		if (s->maxctx > CTX_DEFAULT_MAX)
			s->maxctx = CTX_DEFAULT_MAX;
	}
	pthread_mutex_init(&s->load_mu, NULL);
	pthread_mutex_init(&s->cur_mu, NULL);
	pthread_mutex_init(&s->pool_mu, NULL);
	pthread_cond_init(&s->pool_cv, NULL);
	atomic_init(&s->cur_peek, NULL);
	atomic_init(&s->cur_version, 0);
	if ((r = kern_cpu_new(&s->kload, 1)) < 0) {
		s->kload = NULL;
		serr(err, errlen, r, "cannot start the kernels: %s", strerror(-r));
		goto fail;
	}
	if ((r = cache_new(s, o->cache_users)) < 0) {
		serr(err, errlen, r, "out of memory for a cache of %zu users", o->cache_users);
		goto fail;
	}
	if ((r = serve_reload(s, NULL, err, errlen)) < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	serve_close(s);
	return r;
}

void serve_close(struct serve *s)
{
	if (!s)
		return;
	while (s->free_ctx) {
		struct sctx *n = s->free_ctx->next;
		ctx_free(s->free_ctx);
		s->free_ctx = n;
	}
	model_put(s->cur);
	cache_free(s);
	kern_free(s->kload);
	pthread_mutex_destroy(&s->load_mu);
	pthread_mutex_destroy(&s->cur_mu);
	pthread_mutex_destroy(&s->pool_mu);
	pthread_cond_destroy(&s->pool_cv);
	free(s);
}

/* --- a user's state ----------------------------------------------------------------------- */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static size_t sort_unique(uint32_t *v, size_t n)
{
	if (n < 2)
		return n;
	qsort(v, n, sizeof *v, cmp_u32);
	size_t o = 1;
	for (size_t i = 1; i < n; i++)
		if (v[i] != v[o - 1])
			v[o++] = v[i];
	return o;
}

static int in_sorted(const uint32_t *v, size_t n, uint32_t x)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (v[mid] < x)
			lo = mid + 1;
		else if (v[mid] > x)
			hi = mid;
		else
			return 1;
	}
	return 0;
}

struct seen_walk { struct sctx *c; size_t n; };

static int seen_add(uint32_t user, const struct store_event *ev, void *arg)
{
	struct seen_walk *sw = arg;
	(void)user;
	if (grow((void **)&sw->c->seen, &sw->c->seen_cap, sw->n + 1, sizeof *sw->c->seen) < 0)
		return -ENOMEM;
	sw->c->seen[sw->n++] = ev->item;
	return 0;
}

/* Computes a user's state with context c in read transaction tx. */
static int ustate_compute(struct serve *s, struct sctx *c, struct store_txn *tx, uint32_t uid,
                          size_t nevents, const char *user, struct ustate **out, char *err, size_t errlen)
{
	const struct seqrec_config *cfg = &c->m->cfg;
	int T = cfg->T, C = cfg->C, used, r;
	size_t nev;

	if ((r = store_events_last(tx, uid, (size_t)T + 1, c->ev, &nev)) < 0)
		return serr(err, errlen, r, "user '%s': reading events: %s", QID(user), store_errmsg(s->st));
	if ((r = seqrec_user_repr_events(c->m, c->ev, nev, c->h, &used)) < 0) {
		if (r == -ENODATA)
			return serr(err, errlen, r, "user '%s' has no event with an item model %u knows",
			            QID(user), c->model->version);
		return serr(err, errlen, r, "user '%s': computing the representation: %s", QID(user), strerror(-r));
	}
	if ((r = seqrec_influence(c->m, used, c->w)) < 0)
		return serr(err, errlen, r, "user '%s': explaining: %s", QID(user), strerror(-r));
	struct seen_walk sw = { c, 0 };
	if ((r = store_events_foreach(tx, uid, seen_add, &sw)) < 0)
		return serr(err, errlen, r, "user '%s': reading events: %s", QID(user),
		            r == -ENOMEM ? "out of memory" : store_errmsg(s->st));
	size_t nseen = sort_unique(c->seen, sw.n);

	/* The covered events: the last `used` of ev[] whose item the model
	 * knows (seqrec_encode_events leaves the others out), oldest first. */
	int nwhy = used < WHY_KEEP ? used : WHY_KEEP;
	size_t bytes = sizeof(struct ustate) + (size_t)C * sizeof(float) + nseen * sizeof(uint32_t);
	bytes = (bytes + 7) & ~(size_t)7;
	size_t why_off = bytes;
	bytes += (size_t)nwhy * sizeof(struct uwhy);
	struct ustate *u = malloc(bytes);
	if (!u)
		return serr(err, errlen, -ENOMEM, "out of memory");
	atomic_init(&u->refs, 1);
	u->serial = c->model->serial;
	u->nevents = nevents;
	u->used = used;
	u->nwhy = 0;
	u->nseen = (uint32_t)nseen;
	u->h = (float *)(u + 1);
	u->seen = (uint32_t *)(u->h + C);
	u->why = (struct uwhy *)((char *)u + why_off);
	memcpy(u->h, c->h, (size_t)C * sizeof(float));
	memcpy(u->seen, c->seen, nseen * sizeof(uint32_t));
	int pos = used;
	for (size_t i = nev; i > 0 && pos > 0; i--) {
		const struct store_event *e = &c->ev[i - 1];
		if (e->item == 0 || e->item >= (uint32_t)cfg->V)
			continue;
		pos--;
		struct uwhy x = { e->ts, e->item, c->w[pos], e->action };
		/* insertion into the heaviest-first list of at most nwhy; later
		 * (older) events lose ties, so recent ones come first */
		int at = u->nwhy;
		while (at > 0 && u->why[at - 1].w < x.w)
			at--;
		if (at >= nwhy)
			continue;
		int end = u->nwhy < nwhy ? u->nwhy : nwhy - 1;
		memmove(&u->why[at + 1], &u->why[at], (size_t)(end - at) * sizeof x);
		u->why[at] = x;
		if (u->nwhy < nwhy)
			u->nwhy++;
	}
	*out = u;
	return 0;
}

/* The state of user (external ID) in tx: from the cache when it is still
 * valid, else computed and cached. */
static int user_state(struct serve *s, struct sctx *c, struct store_txn *tx, const char *user,
                      uint32_t *uid_out, struct ustate **out, int *cached,
                      char *err, size_t errlen)
{
	uint32_t uid;
	size_t nevents;
	int r;

	if ((r = store_user_lookup(tx, user, strlen(user), &uid)) < 0) {
		if (r == -ENOENT)
			return serr(err, errlen, r, "no user '%s'", QID(user));
		return serr(err, errlen, r, "user '%s': %s", QID(user), store_errmsg(s->st));
	}
	if ((r = store_events_count(tx, uid, &nevents)) < 0)
		return serr(err, errlen, r, "user '%s': %s", QID(user), store_errmsg(s->st));
	if (nevents == 0)
		return serr(err, errlen, -ENODATA, "user '%s' has no events", QID(user));
	struct ustate *u = cache_get(s, uid);
	if (u && u->serial == c->model->serial && u->nevents == nevents) {
		atomic_fetch_add_explicit(&s->n_hits, 1, memory_order_relaxed);
		*cached = 1;
	} else {
		ustate_put(u);
		atomic_fetch_add_explicit(&s->n_misses, 1, memory_order_relaxed);
		if ((r = ustate_compute(s, c, tx, uid, nevents, user, &u, err, errlen)) < 0)
			return r;
		cache_put(s, uid, u);
		*cached = 0;
	}
	*uid_out = uid;
	*out = u;
	return 0;
}

static int check_id(const char *what, const char *id, char *err, size_t errlen)
{
	if (!id)
		return serr(err, errlen, -EINVAL, "%s: missing", what);
	size_t n = strlen(id);
	if (n == 0)
		return serr(err, errlen, -EINVAL, "%s: empty", what);
	if (n > SERVE_ID_MAX)
		return serr(err, errlen, -EINVAL, "%s: longer than %d bytes", what, SERVE_ID_MAX);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)id[i] < 0x20 || id[i] == 0x7f)
			return serr(err, errlen, -EINVAL, "%s: control character in ID '%s'", what, QID(id));
	return 0;
}

/* Looks an item up: -ENOENT naming it and where it was given. */
static int item_id(struct serve *s, struct store_txn *tx, const char *what, size_t idx, const char *item,
                   uint32_t *id, char *err, size_t errlen)
{
	char where[64];
	snprintf(where, sizeof where, "%s[%zu]", what, idx);
	int r = check_id(where, item, err, errlen);
	if (r < 0)
		return r;
	if ((r = store_item_lookup(tx, item, strlen(item), id)) < 0) {
		if (r == -ENOENT)
			return serr(err, errlen, r, "no item '%s' (%s)", QID(item), where);
		return serr(err, errlen, r, "%s: %s", where, store_errmsg(s->st));
	}
	return 0;
}

static int item_name(struct serve *s, struct store_txn *tx, uint32_t id, char *out, char *err, size_t errlen)
{
	struct store_item it;
	int r = store_item_get(tx, id, &it);
	if (r < 0)
		return serr(err, errlen, r, "item %u: %s", id, store_errmsg(s->st));
	size_t n = it.ext_id_len > SERVE_ID_MAX ? SERVE_ID_MAX : it.ext_id_len;
	memcpy(out, it.ext_id, n);
	out[n] = 0;
	return 0;
}

/* a better than b: higher score, then lower id (deterministic ties, as seqrec_topk) */
static int better(float sa, uint32_t ia, float sb, uint32_t ib)
{
	return sa > sb || (sa == sb && ia < ib);
}

/* The k best of (score[i], id[i]), i < n, best first, into items/scores: a
 * min-heap of the k best so far, then sorted. */
static int select_topk(const float *score, const uint32_t *id, size_t n, int k, uint32_t *items, float *scores)
{
	int m = 0;
	for (size_t i = 0; i < n && k > 0; i++) {
		float sv = score[i];
		uint32_t iv = id[i];
		if (isnan(sv))
			continue;
		int j;
		if (m < k) {
			j = m++;
			while (j > 0) {
				int up = (j - 1) / 2;
				if (!better(scores[up], items[up], sv, iv))
					break;
				scores[j] = scores[up]; items[j] = items[up];
				j = up;
			}
		} else if (better(sv, iv, scores[0], items[0])) {
			j = 0;
			for (;;) {
				int l = 2 * j + 1, r = l + 1, w = j;
				float ws = sv; uint32_t wi = iv;
				if (l < m && better(ws, wi, scores[l], items[l])) { w = l; ws = scores[l]; wi = items[l]; }
				if (r < m && better(ws, wi, scores[r], items[r])) w = r;
				if (w == j)
					break;
				scores[j] = scores[w]; items[j] = items[w];
				j = w;
			}
		} else {
			continue;
		}
		scores[j] = sv; items[j] = iv;
	}
	/* insertion sort, best first: k is small next to n */
	for (int i = 1; i < m; i++) {
		float sv = scores[i]; uint32_t iv = items[i];
		int j = i;
		while (j > 0 && better(sv, iv, scores[j - 1], items[j - 1])) {
			scores[j] = scores[j - 1]; items[j] = items[j - 1];
			j--;
		}
		scores[j] = sv; items[j] = iv;
	}
	return m;
}

/* --- requests ------------------------------------------------------------------------------ */

static int check_filter(const struct serve_filter *f, char *err, size_t errlen)
{
	if (!f)
		return 0;
	if (f->ninclude > SERVE_FILTER_MAX)
		return serr(err, errlen, -EINVAL, "filter.include: %zu items, at most %d", f->ninclude, SERVE_FILTER_MAX);
	if (f->nexclude > SERVE_FILTER_MAX)
		return serr(err, errlen, -EINVAL, "filter.exclude: %zu items, at most %d", f->nexclude, SERVE_FILTER_MAX);
	if ((f->ninclude && !f->include) || (f->nexclude && !f->exclude))
		return serr(err, errlen, -EINVAL, "filter.%s: %zu items but no list", f->ninclude && !f->include ?
		            "include" : "exclude", f->ninclude && !f->include ? f->ninclude : f->nexclude);
	return 0;
}

int serve_recommend(struct serve *s, const struct serve_request *rq, struct serve_item *items,
                    struct serve_result *res, char *err, size_t errlen)
{
	const struct serve_filter *f;
	struct store_txn *tx = NULL;
	struct ustate *u = NULL;
	struct sctx *c = NULL;
	uint32_t uid;
	int r, cached = 0, got = 0;

	if (!rq || !items || !res)
		return serr(err, errlen, -EINVAL, "request, items and result are required");
	f = rq->filter;
	if ((r = check_id("user", rq->user, err, errlen)) < 0)
		return r;
	if (rq->k < 1 || rq->k > SERVE_K_MAX)
		return serr(err, errlen, -EINVAL, "k: %d is not from 1 to %d", rq->k, SERVE_K_MAX);
	if (rq->why_cap < 0 || (rq->why_cap > 0 && !rq->why))
		return serr(err, errlen, -EINVAL, "why_cap: %d with %s explanation array", rq->why_cap,
		            rq->why ? "an" : "no");
	if ((r = check_filter(f, err, errlen)) < 0)
		return r;
	atomic_fetch_add_explicit(&s->n_recommends, 1, memory_order_relaxed);
	if ((r = ctx_take(s, &c, err, errlen)) < 0)
		return r;
	int V = c->m->cfg.V, need_why = rq->why ? rq->why_cap : 0;
	if ((r = store_read_begin(s->st, &tx)) < 0) {
		serr(err, errlen, r, "%s", store_errmsg(s->st));
		goto out;
	}
	if ((r = user_state(s, c, tx, rq->user, &uid, &u, &cached, err, errlen)) < 0)
		goto out;

	/* The items never recommended, sorted: what the user has seen, unless
	 * include_seen, and the exclude list. */
	size_t nx = 0, nexc = f ? f->nexclude : 0, nseen = f && f->include_seen ? 0 : u->nseen;
	if (grow((void **)&c->excl, &c->excl_cap, nseen + nexc + 1, sizeof *c->excl) < 0) {
		r = serr(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nexc; i++)
		if ((r = item_id(s, tx, "filter.exclude", i, f->exclude[i], &c->excl[nx++], err, errlen)) < 0)
			goto out;
	if (nseen) {
		memcpy(c->excl + nx, u->seen, nseen * sizeof *c->excl);
		nx += nseen;
	}
	if (nexc)
		nx = sort_unique(c->excl, nx);

	if (f && f->ninclude) {
		/* only the include list: score those the model knows, then select */
		if (ctx_cand(c, f->ninclude) < 0) {
			r = serr(err, errlen, -ENOMEM, "out of memory");
			goto out;
		}
		size_t n = 0;
		for (size_t i = 0; i < f->ninclude; i++) {
			uint32_t id;
			if ((r = item_id(s, tx, "filter.include", i, f->include[i], &id, err, errlen)) < 0)
				goto out;
			if (id < (uint32_t)V && !in_sorted(c->excl, nx, id))
				c->cid[n++] = id;
		}
		n = sort_unique(c->cid, n);
		for (size_t i = 0; i < n; i++)
			c->cand[i] = (int32_t)c->cid[i];
		if (n && (r = seqrec_score(c->m, u->h, c->cand, (int)n, c->cscore)) < 0) {
			serr(err, errlen, r, "scoring: %s", strerror(-r));
			goto out;
		}
		got = select_topk(c->cscore, c->cid, n, rq->k, c->topi, c->tops);
	} else {
		if ((r = seqrec_topk(c->m, u->h, rq->k, c->excl, nx, c->topi, c->tops, &got)) < 0) {
			serr(err, errlen, r, "ranking: %s", strerror(-r));
			goto out;
		}
	}
	for (int i = 0; i < got; i++) {
		if ((r = item_name(s, tx, c->topi[i], items[i].id, err, errlen)) < 0)
			goto out;
		items[i].score = c->tops[i];
	}
	int nwhy = 0;
	for (int i = 0; i < u->nwhy && i < need_why; i++) {
		struct serve_why *w = &rq->why[nwhy++];
		if ((r = item_name(s, tx, u->why[i].item, w->item, err, errlen)) < 0)
			goto out;
		w->ts = u->why[i].ts;
		w->action = u->why[i].action;
		w->weight = u->why[i].w;
	}
	res->version = c->model->version;
	res->n = got;
	res->nwhy = nwhy;
	res->cached = cached;
	res->used = u->used;
	r = 0;
out:
	store_txn_end(tx);
	ustate_put(u);
	ctx_release(s, c);
	return r;
}

int serve_score(struct serve *s, const char *user, const char *const *items, int n, float *scores,
                uint32_t *version, char *err, size_t errlen)
{
	struct store_txn *tx = NULL;
	struct ustate *u = NULL;
	struct sctx *c = NULL;
	uint32_t uid;
	int r, cached;

	if ((r = check_id("user", user, err, errlen)) < 0)
		return r;
	if (n < 0 || n > SERVE_CAND_MAX)
		return serr(err, errlen, -EINVAL, "items: %d candidates, at most %d", n, SERVE_CAND_MAX);
	if (n > 0 && (!items || !scores))
		return serr(err, errlen, -EINVAL, "items: %d candidates but no list", n);
	atomic_fetch_add_explicit(&s->n_scores, 1, memory_order_relaxed);
	if ((r = ctx_take(s, &c, err, errlen)) < 0)
		return r;
	if ((r = store_read_begin(s->st, &tx)) < 0) {
		serr(err, errlen, r, "%s", store_errmsg(s->st));
		goto out;
	}
	if ((r = user_state(s, c, tx, user, &uid, &u, &cached, err, errlen)) < 0)
		goto out;
	if (ctx_cand(c, (size_t)n) < 0) {
		r = serr(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	int V = c->m->cfg.V, nk = 0;
	for (int i = 0; i < n; i++) {
		uint32_t id;
		if ((r = item_id(s, tx, "items", (size_t)i, items[i], &id, err, errlen)) < 0)
			goto out;
		c->cid[i] = id;
		if (id < (uint32_t)V)
			c->cand[nk++] = (int32_t)id;
	}
	if (nk && (r = seqrec_score(c->m, u->h, c->cand, nk, c->cscore)) < 0) {
		serr(err, errlen, r, "scoring: %s", strerror(-r));
		goto out;
	}
	for (int i = 0, j = 0; i < n; i++)
		scores[i] = c->cid[i] < (uint32_t)V ? c->cscore[j++] : -INFINITY;
	if (version)
		*version = c->model->version;
	r = 0;
out:
	store_txn_end(tx);
	ustate_put(u);
	ctx_release(s, c);
	return r;
}

/* --- ingest ------------------------------------------------------------------------------------- */

/* The events go through the importer's own checks (import/event.h): each
 * field as the text a line of the generic format would hold, and into the
 * store's recent table (store_event_append): one request, one durable
 * commit of a few pages. */
struct ingest_ctx {
	struct import_events *b;
	uint32_t *uid;
};

static int ingest_txn(struct store_txn *tx, void *arg)
{
	struct ingest_ctx *ic = arg;
	return import_events_apply(tx, ic->b, IMPORT_EVENTS_APPEND, ic->uid);
}

/* v in decimal into buf (room for 21 bytes and a NUL): what "%lld" prints,
 * without printf's cost, which was a tenth of the check of every event. */
static const char *ingest_i64(char buf[32], int64_t v)
{
	char *p = buf + 31;
	uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;
	*p = '\0';
	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--p = '-';
	return p;
}

int serve_ingest(struct serve *s, const struct serve_event *ev, size_t n, char *err, size_t errlen)
{
	struct ingest_ctx ic = { NULL, NULL };
	int r;
	if (n > SERVE_INGEST_MAX)
		return serr(err, errlen, -EINVAL, "events: %zu, at most %d in one call", n, SERVE_INGEST_MAX);
	if (n == 0)
		return 0;
	if (!ev)
		return serr(err, errlen, -EINVAL, "events: %zu but no list", n);
	if ((r = import_events_new(&ic.b, s->st)) < 0)
		return serr(err, errlen, r, "cannot check events: %s", strerror(-r));
	/* room for the numbers as text: 24 bytes each for ts, value, lat, lon */
	char (*num)[4][32] = malloc(n * sizeof *num);
	if (!num || !(ic.uid = calloc(n, sizeof *ic.uid))) {
		r = serr(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const struct serve_event *e = &ev[i];
		struct import_ev_text f[IMPORT_EV_COUNT];
		char why[256];
		memset(f, 0, sizeof f);
#define TXT(slot, str) do { if (str) { f[slot].p = (str); f[slot].n = strlen(str); } } while (0)
		TXT(IMPORT_EV_USER, e->user);
		TXT(IMPORT_EV_ITEM, e->item);
		TXT(IMPORT_EV_TIME, ingest_i64(num[i][0], e->ts));
		TXT(IMPORT_EV_ACTION, e->action);
		if (e->has_value) {
			snprintf(num[i][1], sizeof num[i][1], "%.9g", (double)e->value);
			TXT(IMPORT_EV_VALUE, num[i][1]);
		}
		if (e->has_loc) {
			snprintf(num[i][2], sizeof num[i][2], "%.9g", (double)e->lat);
			snprintf(num[i][3], sizeof num[i][3], "%.9g", (double)e->lon);
			TXT(IMPORT_EV_LAT, num[i][2]);
			TXT(IMPORT_EV_LON, num[i][3]);
		}
		TXT(IMPORT_EV_DEVICE, e->device);
#undef TXT
		if ((r = import_events_add(ic.b, f, why, sizeof why)) < 0) {
			if (r == -EINVAL)
				serr(err, errlen, r, "event %zu: %s", i, why);
			else
				serr(err, errlen, r, "event %zu: %s", i, strerror(-r));
			goto out;
		}
	}
	if ((r = store_write(s->st, ingest_txn, &ic)) < 0) {
		serr(err, errlen, r, "writing %zu events: %s", n, store_errmsg(s->st));
		goto out;
	}
	atomic_fetch_add_explicit(&s->n_ingested, n, memory_order_relaxed);
	for (size_t i = 0; i < n; i++)
		if (i == 0 || ic.uid[i] != ic.uid[i - 1])
			serve_invalidate(s, ic.uid[i]);
out:
	import_events_free(ic.b);
	free(ic.uid);
	free(num);
	return r;
}

void serve_get_stats(struct serve *s, struct serve_stats *out)
{
	memset(out, 0, sizeof *out);
	out->recommends = atomic_load(&s->n_recommends);
	out->scores = atomic_load(&s->n_scores);
	out->ingested_events = atomic_load(&s->n_ingested);
	out->cache_hits = atomic_load(&s->n_hits);
	out->cache_misses = atomic_load(&s->n_misses);
	out->swaps = atomic_load(&s->n_swaps);
	out->version = atomic_load(&s->cur_version);
}
