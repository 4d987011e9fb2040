/* test_store_recent.c: the recent table (store_event_append) and compaction.
 * Every reader (count, last N, foreach, foreach_all, texts, counts) is
 * checked against a model of the events: users' lists and the recent table
 * mixed, timestamps out of order, users only in the recent table, partial
 * and full compactions, a snapshot older than a compaction, another process
 * (before and after its handle saw the table), reopening, a version-1 store
 * upgraded on its first append, and readers racing a writer. */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "store/store.h"
#include "store/store_int.h"
#include "tests/test.h"

#define NUSERS 24
#define NITEMS 50
#define MAXEV  20000

static char dir[4096];
static uint32_t uid[NUSERS + 1], iid[NITEMS + 1];

/* The model: every event the store should hold, with the seq it assigned. */
struct mev {
	uint32_t user;     /* index 1..NUSERS */
	struct store_event ev;
	char text[24];     /* "" = none */
};
static struct mev model[MAXEV];
static size_t nmodel;

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

static struct store *open_store(int readonly)
{
	struct store *st;
	struct store_options o = { 0, 0, readonly };
	if (store_open(&st, dir, &o) < 0) {
		fprintf(stderr, "store_open: %s\n", store_errmsg(NULL));
		exit(1);
	}
	return st;
}

static int w_ids(struct store_txn *tx, void *arg)
{
	char name[16];
	(void)arg;
	for (int u = 1; u <= NUSERS; u++) {
		snprintf(name, sizeof name, "u%d", u);
		CHECK_OK(store_user_get_or_add(tx, name, strlen(name), &uid[u]));
	}
	for (int i = 1; i <= NITEMS; i++) {
		snprintf(name, sizeof name, "i%d", i);
		CHECK_OK(store_item_get_or_add(tx, name, strlen(name), &iid[i]));
	}
	return 0;
}

/* A batch of events for users lo..hi, k each, ts around base (some out of
 * order, some equal), every fifth with a text; applied with add or append. */
struct batch {
	int append;
	size_t first, n;   /* model[first .. first + n) */
};

static void gen(struct batch *b, int append, int lo, int hi, int k, int64_t base)
{
	b->append = append;
	b->first = nmodel;
	for (int u = lo; u <= hi; u++) {
		for (int j = 0; j < k; j++) {
			struct mev *m = &model[nmodel++];
			CHECK(nmodel <= MAXEV);
			memset(m, 0, sizeof *m);
			m->user = (uint32_t)u;
			m->ev.ts = base + j * 10 + (rnd(4) == 0 ? -(int64_t)rnd(200) : 0);
			if (rnd(6) == 0 && j)
				m->ev.ts = model[nmodel - 2].ev.ts;   /* a tie: seq decides */
			m->ev.item = iid[1 + rnd(NITEMS)];
			m->ev.action = (uint8_t)(1 + rnd(5));
			if (rnd(2)) {
				m->ev.flags |= STORE_EV_VALUE;
				m->ev.value = (float)rnd(50) / 10;
			}
			if (rnd(5) == 0)
				snprintf(m->text, sizeof m->text, "t%zu-%d", nmodel, u);
		}
	}
	b->n = nmodel - b->first;
	/* Interleave users, as real-time ingest does. */
	for (size_t i = b->n; i > 1; i--) {
		size_t j = rnd((uint32_t)i);
		struct mev t = model[b->first + i - 1];
		model[b->first + i - 1] = model[b->first + j];
		model[b->first + j] = t;
	}
}

static int w_batch(struct store_txn *tx, void *arg)
{
	const struct batch *b = arg;
	for (size_t i = b->first; i < b->first + b->n; i++) {
		struct mev *m = &model[i];
		struct store_event ev = m->ev;
		const char *t = m->text[0] ? m->text : NULL;
		size_t tl = t ? strlen(t) : 0;
		int r = b->append ? store_event_append(tx, uid[m->user], &ev, t, tl)
		                  : store_event_add(tx, uid[m->user], &ev, t, tl);
		if (r < 0)
			return r;
		m->ev.seq = ev.seq;
		m->ev.flags = ev.flags;
	}
	return 0;
}

static void apply(struct store *st, struct batch *b)
{
	int r = store_write(st, w_batch, b);
	if (r < 0) {
		fprintf(stderr, "write: %s\n", store_errmsg(st));
		exit(1);
	}
}

static int ev_cmp(const struct store_event *a, const struct store_event *b)
{
	if (a->ts != b->ts)
		return a->ts < b->ts ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int mev_cmp(const void *a, const void *b)
{
	const struct mev *x = a, *y = b;
	if (x->user != y->user)
		return x->user < y->user ? -1 : 1;
	return ev_cmp(&x->ev, &y->ev);
}

static void check_same(const struct store_event *got, const struct mev *want, int line)
{
	if (got->ts != want->ev.ts || got->seq != want->ev.seq || got->item != want->ev.item ||
	    got->action != want->ev.action || got->flags != want->ev.flags ||
	    ((got->flags & STORE_EV_VALUE) && got->value != want->ev.value)) {
		fprintf(stderr, "line %d: event (ts %lld seq %u item %u) expected (ts %lld seq %u item %u) of user %u\n",
		        line, (long long)got->ts, got->seq, got->item, (long long)want->ev.ts, want->ev.seq,
		        want->ev.item, want->user);
		exit(1);
	}
}

struct walk {
	const struct mev *want;   /* sorted */
	size_t n, at;
	int bad;
};

static int walk_fn(uint32_t user, const struct store_event *ev, void *arg)
{
	struct walk *w = arg;
	if (w->at >= w->n || uid[w->want[w->at].user] != user) {
		fprintf(stderr, "walk: event %zu of %zu: user %u unexpected\n", w->at, w->n, user);
		exit(1);
	}
	check_same(ev, &w->want[w->at], __LINE__);
	w->at++;
	return 0;
}

/* Checks every reader in tx against model[0..nm); recent < 0: any count. */
static void verify(struct store_txn *tx, const struct mev *m, size_t nm, long long recent)
{
	static struct mev sorted[MAXEV];
	static struct store_event out[MAXEV];
	memcpy(sorted, m, nm * sizeof *m);
	qsort(sorted, nm, sizeof *sorted, mev_cmp);

	struct walk wa = { sorted, nm, 0, 0 };
	CHECK_OK(store_events_foreach_all(tx, walk_fn, &wa));
	CHECK_EQ(wa.at, nm);

	size_t at = 0;
	for (uint32_t u = 1; u <= NUSERS; u++) {
		size_t n = 0, cnt, got;
		while (at + n < nm && sorted[at + n].user == u)
			n++;
		const struct mev *mine = &sorted[at];
		CHECK_OK(store_events_count(tx, uid[u], &cnt));
		CHECK_EQ(cnt, n);
		struct walk w = { mine, n, 0, 0 };
		CHECK_OK(store_events_foreach(tx, uid[u], walk_fn, &w));
		CHECK_EQ(w.at, n);
		const size_t lasts[] = { 1, 2, 5, n, n + 3 };
		for (size_t k = 0; k < sizeof lasts / sizeof lasts[0]; k++) {
			size_t want = lasts[k] < n ? lasts[k] : n;
			CHECK_OK(store_events_last(tx, uid[u], lasts[k], out, &got));
			CHECK_EQ(got, want);
			for (size_t i = 0; i < got; i++)
				check_same(&out[i], &mine[n - want + i], __LINE__);
		}
		for (size_t i = 0; i < n; i++) {
			const char *t;
			size_t tl;
			int r = store_event_text(tx, uid[u], &mine[i].ev, &t, &tl);
			if (mine[i].text[0]) {
				CHECK_OK(r);
				CHECK_STREQ(t, tl, mine[i].text);
			} else {
				CHECK_EQ(r, -ENOENT);
			}
		}
		at += n;
	}
	size_t none;
	CHECK_OK(store_events_count(tx, 999999, &none));
	CHECK_EQ(none, 0);
	struct store_counts c;
	CHECK_OK(store_counts(tx, &c));
	CHECK_EQ(c.events, nm);
	if (recent >= 0)
		CHECK_EQ(c.recent, recent);
	struct store_recent_info ri;
	CHECK_OK(store_recent_info(tx, &ri));
	CHECK_EQ(ri.events, c.recent);
}

static void verify_now(struct store *st, long long recent)
{
	struct store_txn *tx;
	CHECK_OK(store_read_begin(st, &tx));
	verify(tx, model, nmodel, recent);
	store_txn_end(tx);
}

/* The same checks inside a write txn (the index is not used there). */
static int w_verify(struct store_txn *tx, void *arg)
{
	verify(tx, model, nmodel, *(long long *)arg);
	return 0;
}

static void fresh(void)
{
	test_rmtree(dir);
	CHECK_OK(mkdir(dir, 0700));
	nmodel = 0;
}

/* --- the readers, compaction --------------------------------------------- */

static void test_mixed_and_compaction(void)
{
	struct store *st;
	struct batch b;
	size_t moved;
	long long rc;

	fresh();
	st = open_store(0);
	CHECK_OK(store_write(st, w_ids, NULL));
	gen(&b, 0, 1, 12, 10, 1000);      /* the users' lists */
	apply(st, &b);
	verify_now(st, 0);
	gen(&b, 1, 6, 18, 8, 1000);       /* 13..18 only in the recent table */
	apply(st, &b);
	verify_now(st, 13 * 8);
	rc = 13 * 8;
	CHECK_OK(store_write(st, w_verify, &rc));

	/* Partial: the 30 oldest. */
	CHECK_OK(store_compact(st, 30, UINT64_MAX, &moved));
	CHECK_EQ(moved, 30);
	verify_now(st, 13 * 8 - 30);
	gen(&b, 1, 10, 24, 5, 900);       /* 19..24 new, ts before the rest */
	apply(st, &b);
	rc = 13 * 8 - 30 + 15 * 5;
	verify_now(st, rc);
	CHECK_OK(store_write(st, w_verify, &rc));

	/* Up to an arrival: the first 11 (one txn's appends are consecutive). */
	struct store_txn *tx;
	struct store_recent_info ri;
	CHECK_OK(store_read_begin(st, &tx));
	CHECK_OK(store_recent_info(tx, &ri));
	store_txn_end(tx);
	CHECK(ri.last > ri.first);
	CHECK_OK(store_compact(st, 1000, ri.first + 10, &moved));
	CHECK_EQ(moved, 11);
	verify_now(st, rc - 11);

	/* A mix in one txn: adds and appends interleaved cannot happen through
	 * one batch here, but a list add after appends must still sort in. */
	gen(&b, 0, 13, 16, 3, 950);
	apply(st, &b);
	verify_now(st, rc - 11);

	/* Full, in chunks. */
	size_t total = 0;
	do {
		CHECK_OK(store_compact(st, 17, UINT64_MAX, &moved));
		total += moved;
		verify_now(st, -1);
	} while (moved);
	CHECK_EQ(total, (size_t)(rc - 11));
	verify_now(st, 0);
	CHECK_OK(store_compact(st, 100, UINT64_MAX, &moved));
	CHECK_EQ(moved, 0);
	long long zero = 0;
	CHECK_OK(store_write(st, w_verify, &zero));

	/* Appending again after the table emptied. */
	gen(&b, 1, 1, 24, 2, 5000);
	apply(st, &b);
	verify_now(st, 48);
	store_close(st);

	/* Reopened: the index is rebuilt from the table. */
	st = open_store(0);
	verify_now(st, 48);
	store_close(st);
	st = open_store(1);
	verify_now(st, 48);
	store_close(st);
}

/* --- a snapshot older than a compaction ----------------------------------- */

static void *compact_thread(void *arg)
{
	size_t moved, total = 0;
	do {
		if (store_compact(arg, 40, UINT64_MAX, &moved) < 0) {
			fprintf(stderr, "compact: %s\n", store_errmsg(arg));
			exit(1);
		}
		total += moved;
	} while (moved);
	return (void *)(uintptr_t)total;
}

static void test_old_snapshot(void)
{
	struct store *st;
	struct store_txn *t1, *t2;
	struct batch b;
	static struct mev before[MAXEV];

	fresh();
	st = open_store(0);
	CHECK_OK(store_write(st, w_ids, NULL));
	gen(&b, 0, 1, 8, 6, 100);
	apply(st, &b);
	gen(&b, 1, 4, 20, 6, 100);
	apply(st, &b);
	size_t nbefore = nmodel;
	memcpy(before, model, nmodel * sizeof *model);

	CHECK_OK(store_read_begin(st, &t1));
	verify(t1, before, nbefore, 17 * 6);      /* builds the index */
	gen(&b, 1, 1, 24, 3, 200);
	apply(st, &b);

	pthread_t th;
	void *moved;
	CHECK_OK(-pthread_create(&th, NULL, compact_thread, st));
	pthread_join(th, &moved);
	CHECK_EQ((uintptr_t)moved, 17 * 6 + 24 * 3);

	/* t1 before anyone saw the compaction, then after a newer reader did
	 * (it prunes the index past t1's first arrival: t1 scans instead). */
	verify(t1, before, nbefore, 17 * 6);
	CHECK_OK(store_read_begin(st, &t2));
	verify(t2, model, nmodel, 0);
	verify(t1, before, nbefore, 17 * 6);
	store_txn_end(t2);

	/* Appends after the compaction, a snapshot between two compactions. */
	gen(&b, 1, 2, 22, 4, 300);
	apply(st, &b);
	CHECK_OK(store_read_begin(st, &t2));
	verify(t2, model, nmodel, 21 * 4);
	size_t m2;
	CHECK_OK(store_compact(st, 10, UINT64_MAX, &m2));
	CHECK_EQ(m2, 10);
	verify_now(st, 21 * 4 - 10);
	verify(t2, model, nmodel, 21 * 4);
	verify(t1, before, nbefore, 17 * 6);
	store_txn_end(t2);
	store_txn_end(t1);
	verify_now(st, 21 * 4 - 10);
	store_close(st);
}

/* --- another process --------------------------------------------------------- */

static void send_model(int fd)
{
	size_t n = nmodel;
	CHECK_EQ(write(fd, &n, sizeof n), (ssize_t)sizeof n);
	const char *p = (const char *)model;
	size_t len = n * sizeof *model, off = 0;
	while (off < len) {
		ssize_t w = write(fd, p + off, len - off);
		CHECK(w > 0);
		off += (size_t)w;
	}
}

static void recv_model(int fd)
{
	size_t n;
	CHECK_EQ(read(fd, &n, sizeof n), (ssize_t)sizeof n);
	CHECK(n <= MAXEV);
	char *p = (char *)model;
	size_t len = n * sizeof *model, off = 0;
	while (off < len) {
		ssize_t r = read(fd, p + off, len - off);
		CHECK(r > 0);
		off += (size_t)r;
	}
	nmodel = n;
}

/* The child opens the store, checks it, says so, then checks it again with
 * the model the parent sends after writing more. */
static void child_reader(int up, int down, int readonly)
{
	struct store *cs = open_store(readonly);
	verify_now(cs, -1);
	CHECK_EQ(write(up, "o", 1), 1);
	recv_model(down);
	verify_now(cs, -1);
	store_close(cs);
	_exit(0);
}

static void run_with_child(struct store **st, int readonly, void (*more)(struct store *))
{
	int up[2], down[2], status;
	char ch;

	CHECK_OK(pipe(up));
	CHECK_OK(pipe(down));
	store_close(*st);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		child_reader(up[1], down[0], readonly);
	CHECK_EQ(read(up[0], &ch, 1), 1);
	*st = open_store(0);
	more(*st);
	send_model(down[1]);
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(up[0]); close(up[1]); close(down[0]); close(down[1]);
}

static void more_appends(struct store *st)
{
	struct batch b;
	size_t moved;
	gen(&b, 1, 1, 24, 4, 700);
	apply(st, &b);
	CHECK_OK(store_compact(st, 25, UINT64_MAX, &moved));
	CHECK_EQ(moved, 25);
	gen(&b, 1, 3, 9, 2, 650);
	apply(st, &b);
	verify_now(st, -1);
}

static void test_other_process(void)
{
	struct store *st;
	struct batch b;

	fresh();
	st = open_store(0);
	CHECK_OK(store_write(st, w_ids, NULL));
	gen(&b, 0, 1, 10, 5, 500);
	apply(st, &b);
	gen(&b, 1, 5, 15, 5, 500);
	apply(st, &b);
	run_with_child(&st, 0, more_appends);
	run_with_child(&st, 1, more_appends);
	store_close(st);
}

/* --- a version-1 store ------------------------------------------------------- */

static void make_v1(void)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi meta, recent;
	uint64_t v = 1;

	CHECK_EQ(mdb_env_create(&env), 0);
	CHECK_EQ(mdb_env_set_maxdbs(env, 32), 0);
	CHECK_EQ(mdb_env_open(env, dir, 0, 0640), 0);
	CHECK_EQ(mdb_txn_begin(env, NULL, 0, &txn), 0);
	CHECK_EQ(mdb_dbi_open(txn, "meta", 0, &meta), 0);
	CHECK_EQ(mdb_dbi_open(txn, "recent", MDB_INTEGERKEY, &recent), 0);
	CHECK_EQ(mdb_drop(txn, recent, 1), 0);
	MDB_val k = { 6, "schema" }, d = { sizeof v, &v };
	CHECK_EQ(mdb_put(txn, meta, &k, &d, 0), 0);
	CHECK_EQ(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

static uint64_t schema_of(void)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi meta;
	MDB_val k = { 6, "schema" }, d;
	uint64_t v;

	CHECK_EQ(mdb_env_create(&env), 0);
	CHECK_EQ(mdb_env_set_maxdbs(env, 32), 0);
	CHECK_EQ(mdb_env_open(env, dir, MDB_RDONLY, 0640), 0);
	CHECK_EQ(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	CHECK_EQ(mdb_dbi_open(txn, "meta", 0, &meta), 0);
	CHECK_EQ(mdb_get(txn, meta, &k, &d), 0);
	memcpy(&v, d.mv_data, sizeof v);
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return v;
}

static void test_version1(void)
{
	struct store *st;
	struct batch b;

	fresh();
	st = open_store(0);
	CHECK_OK(store_write(st, w_ids, NULL));
	gen(&b, 0, 1, 12, 6, 100);
	apply(st, &b);
	store_close(st);
	make_v1();
	CHECK_EQ(schema_of(), 1);

	/* Read as it is, read-only too, and written without appends. */
	st = open_store(1);
	verify_now(st, 0);
	store_close(st);
	st = open_store(0);
	verify_now(st, 0);
	gen(&b, 0, 3, 5, 2, 400);
	apply(st, &b);
	verify_now(st, 0);
	store_close(st);
	CHECK_EQ(schema_of(), 1);

	/* A read-only handle opened before the first append sees it (it opens
	 * the table when its snapshot has one); the append makes it version 2. */
	st = open_store(0);
	run_with_child(&st, 1, more_appends);
	verify_now(st, -1);
	store_close(st);
	CHECK_EQ(schema_of(), STORE_SCHEMA_VERSION);
	st = open_store(0);
	verify_now(st, -1);
	store_close(st);
}

/* --- readers racing a writer ---------------------------------------------- */

struct race {
	struct store *st;
	atomic_int stop;
	int bad;
	long reads;
};

struct race_walk { uint32_t user; struct store_event last; size_t n; int bad; };

static int race_fn(uint32_t user, const struct store_event *ev, void *arg)
{
	struct race_walk *w = arg;
	if (user != w->user || (w->n && ev_cmp(&w->last, ev) >= 0))
		w->bad = 1;   /* out of order, or seen twice */
	w->last = *ev;
	w->n++;
	return 0;
}

static void *race_reader(void *arg)
{
	struct race *ra = arg;
	size_t seen[NUSERS + 1] = { 0 };
	while (!atomic_load(&ra->stop)) {
		struct store_txn *tx;
		if (store_read_begin(ra->st, &tx) < 0) {
			ra->bad = 1;
			break;
		}
		for (uint32_t u = 1; u <= NUSERS; u++) {
			size_t n;
			struct race_walk w = { uid[u], { 0 }, 0, 0 };
			if (store_events_count(tx, uid[u], &n) < 0 ||
			    store_events_foreach(tx, uid[u], race_fn, &w) < 0 || w.bad || w.n != n ||
			    n < seen[u])   /* events are never lost */
				ra->bad = 1;
			seen[u] = n;
		}
		store_txn_end(tx);
		ra->reads++;
	}
	return NULL;
}

static void test_race(void)
{
	struct store *st;
	struct batch b;
	struct race ra = { NULL, 0, 0, 0 };
	pthread_t th[2];

	fresh();
	st = open_store(0);
	CHECK_OK(store_write(st, w_ids, NULL));
	gen(&b, 0, 1, 24, 4, 0);
	apply(st, &b);
	ra.st = st;
	for (int i = 0; i < 2; i++)
		CHECK_OK(-pthread_create(&th[i], NULL, race_reader, &ra));
	for (int round = 0; round < 40; round++) {
		size_t moved;
		gen(&b, 1, 1, 24, 3, 100 + round * 50);
		apply(st, &b);
		if (round % 3 == 2)
			CHECK_OK(store_compact(st, 50 + rnd(100), UINT64_MAX, &moved));
	}
	atomic_store(&ra.stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	CHECK(!ra.bad);
	CHECK(ra.reads > 0);
	verify_now(st, -1);
	store_close(st);
}

int main(void)
{
	if (snprintf(dir, sizeof dir, "%s/store", test_tmpdir()) >= (int)sizeof dir)
		return 1;
	test_mixed_and_compaction();
	test_old_snapshot();
	test_other_process();
	test_version1();
	test_race();
	char *slash = strrchr(dir, '/');
	*slash = '\0';
	test_rmtree(dir);
	return 0;
}
