/* test_store.c: the LMDB stores — round trips, event ordering, last-N reads,
 * pseudonymisation on disk, map growth, readers during a long write, schema
 * checks, the knowledge graph and model versions. */
#include "config.h"

#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "store/store.h"
#include "store/store_int.h"
#include "tests/test.h"

static char dir[4096];

static struct store *open_store(size_t map, int pseudo)
{
	struct store *st;
	struct store_options o = { map, pseudo, 0 };
	int r = store_open(&st, dir, &o);
	if (r < 0) {
		fprintf(stderr, "store_open: %s\n", store_errmsg(NULL));
		exit(1);
	}
	return st;
}

static void fresh(void)
{
	test_rmtree(dir);
	if (mkdir(dir, 0700) < 0) {
		perror(dir);
		exit(1);
	}
}

/* --- users, items, attributes ------------------------------------------- */

static const char RAW_USER[] = "alice.pseudonym-check-7f3a9e@example.org";

static int w_users(struct store_txn *tx, void *arg)
{
	uint32_t *ids = arg, again;
	CHECK_OK(store_user_get_or_add(tx, RAW_USER, strlen(RAW_USER), &ids[0]));
	CHECK_OK(store_user_get_or_add(tx, "bob", 3, &ids[1]));
	CHECK_OK(store_user_get_or_add(tx, RAW_USER, strlen(RAW_USER), &again));
	CHECK_EQ(again, ids[0]);
	CHECK_OK(store_user_set_attrs(tx, ids[0], "age=31\ngender=F", 15));
	CHECK_OK(store_item_get_or_add(tx, "sku-1", 5, &ids[2]));
	struct store_item it = { .title = "Blue Kettle", .title_len = 11, .categories = "kitchen|home", .categories_len = 12 };
	CHECK_OK(store_item_update(tx, ids[2], &it));
	struct store_item it2 = { .text = "Boils fast.", .text_len = 11 };
	CHECK_OK(store_item_update(tx, ids[2], &it2));  /* keeps the title */
	return 0;
}

static void test_users_items(void)
{
	uint32_t ids[3], id;
	struct store *st;
	struct store_txn *tx;
	const char *a;
	size_t n;
	struct store_item it;

	fresh();
	st = open_store(0, -1);
	CHECK(store_pseudonymised(st));
	CHECK_OK(store_write(st, w_users, ids));
	CHECK_EQ(ids[0], 1);
	CHECK_EQ(ids[1], 2);
	CHECK_OK(store_read_begin(st, &tx));
	CHECK_OK(store_user_lookup(tx, RAW_USER, strlen(RAW_USER), &id));
	CHECK_EQ(id, ids[0]);
	CHECK_EQ(store_user_lookup(tx, "carol", 5, &id), -ENOENT);
	CHECK_OK(store_user_get_attrs(tx, ids[0], &a, &n));
	CHECK_STREQ(a, n, "age=31\ngender=F");
	CHECK_OK(store_item_lookup(tx, "sku-1", 5, &id));
	CHECK_EQ(id, ids[2]);
	CHECK_OK(store_item_get(tx, id, &it));
	CHECK_STREQ(it.ext_id, it.ext_id_len, "sku-1");
	CHECK_STREQ(it.title, it.title_len, "Blue Kettle");
	CHECK_STREQ(it.text, it.text_len, "Boils fast.");
	CHECK_STREQ(it.categories, it.categories_len, "kitchen|home");
	char longid[STORE_ID_MAX_LEN + 2];
	memset(longid, 'x', sizeof longid);
	CHECK_EQ(store_user_lookup(tx, longid, sizeof longid, &id), -ENAMETOOLONG);
	store_txn_end(tx);
	store_close(st);

	/* The raw user ID never reaches the disk; the key file is private. */
	char path[4200];
	snprintf(path, sizeof path, "%s/data.mdb", dir);
	FILE *f = fopen(path, "rb");
	CHECK(f);
	static char buf[1 << 20];
	size_t got = fread(buf, 1, sizeof buf, f);
	fclose(f);
	CHECK(got > 0);
	CHECK(memmem(buf, got, RAW_USER, strlen(RAW_USER)) == NULL);
	CHECK(memmem(buf, got, "sku-1", 5) != NULL);  /* sanity: the scan sees plain IDs */
	struct stat sb;
	snprintf(path, sizeof path, "%s/user-id.key", dir);
	CHECK_OK(stat(path, &sb));
	CHECK_EQ(sb.st_mode & 0777, 0600);
	CHECK_EQ(sb.st_size, 32);

	/* A world-readable key is refused, with the fix in the message. */
	CHECK_OK(chmod(path, 0644));
	struct store_options o = { 0, -1, 0 };
	CHECK_EQ(store_open(&st, dir, &o), -EPERM);
	CHECK(strstr(store_errmsg(NULL), "chmod 600"));
	CHECK_OK(chmod(path, 0600));

	/* Opening with the other pseudonymisation setting is refused. */
	o.pseudonymise = 0;
	CHECK_EQ(store_open(&st, dir, &o), -EINVAL);
}

/* --- events ------------------------------------------------------------- */

struct evbatch {
	uint32_t user, item[4];
	const int64_t *ts;
	size_t n;
};

static int w_events(struct store_txn *tx, void *arg)
{
	struct evbatch *b = arg;
	uint8_t act;
	uint16_t dev;
	CHECK_OK(store_user_get_or_add(tx, "u1", 2, &b->user));
	for (int i = 0; i < 4; i++) {
		char id[8];
		int l = snprintf(id, sizeof id, "i%d", i);
		CHECK_OK(store_item_get_or_add(tx, id, (size_t)l, &b->item[i]));
	}
	CHECK_OK(store_action_id(tx, "purchase", 8, &act));
	CHECK_EQ(act, STORE_ACTION_PURCHASE);
	CHECK_OK(store_device_id(tx, "phone", 5, &dev));
	for (size_t i = 0; i < b->n; i++) {
		struct store_event ev = { .ts = b->ts[i], .item = b->item[i % 4], .action = act,
		                          .device = dev, .value = (float)i, .flags = STORE_EV_VALUE };
		if (i == 2) {
			ev.flags |= STORE_EV_LOC;
			ev.lat = 40.5f;
			ev.lon = -73.9f;
		}
		CHECK_OK(store_event_add(tx, b->user, &ev, i == 1 ? "great" : NULL, 5));
	}
	return 0;
}

struct collect { struct store_event ev[64]; size_t n; };

static int w_single(struct store_txn *tx, void *arg)
{
	struct evbatch *b = arg;
	CHECK_OK(store_user_get_or_add(tx, "u2", 2, &b->user));
	struct store_event ev = { .ts = 12345, .item = b->item[3], .action = STORE_ACTION_VIEW };
	return store_event_add(tx, b->user, &ev, NULL, 0);
}

static int collect_ev(uint32_t user, const struct store_event *ev, void *arg)
{
	struct collect *c = arg;
	(void)user;
	if (c->n < 64)
		c->ev[c->n++] = *ev;
	return 0;
}

static void test_events(void)
{
	/* Out of order, with a tie at ts=20 that must keep arrival order, and a
	 * negative time. */
	static const int64_t ts[] = { 30, 10, 20, 20, -5, 40, 25 };
	static const int64_t want[] = { -5, 10, 20, 20, 25, 30, 40 };
	struct evbatch b = { .ts = ts, .n = 7 };
	struct store *st;
	struct store_txn *tx;
	struct collect c = { .n = 0 };
	struct store_event last[10];
	size_t got, n;

	fresh();
	st = open_store(0, 0);
	CHECK_OK(store_write(st, w_events, &b));
	CHECK_OK(store_read_begin(st, &tx));
	CHECK_OK(store_events_foreach(tx, b.user, collect_ev, &c));
	CHECK_EQ(c.n, 7);
	for (size_t i = 0; i < 7; i++)
		CHECK_EQ(c.ev[i].ts, want[i]);
	CHECK(c.ev[2].seq < c.ev[3].seq);          /* the tie keeps arrival order */
	CHECK_EQ(c.ev[2].value, 2.0);              /* arrived third: ts 20, with location */
	CHECK(c.ev[2].flags & STORE_EV_LOC);
	CHECK(fabsf(c.ev[2].lat - 40.5f) < 1e-6f && fabsf(c.ev[2].lon + 73.9f) < 1e-5f);
	CHECK_EQ(c.ev[3].value, 3.0);

	CHECK_OK(store_events_last(tx, b.user, 3, last, &got));
	CHECK_EQ(got, 3);
	CHECK_EQ(last[0].ts, 25);
	CHECK_EQ(last[1].ts, 30);
	CHECK_EQ(last[2].ts, 40);
	CHECK_OK(store_events_last(tx, b.user, 10, last, &got));
	CHECK_EQ(got, 7);
	CHECK_EQ(last[0].ts, -5);
	CHECK_EQ(last[6].ts, 40);
	CHECK_OK(store_events_count(tx, b.user, &n));
	CHECK_EQ(n, 7);
	CHECK_OK(store_events_last(tx, 999, 5, last, &got));
	CHECK_EQ(got, 0);


	/* The text of the event that arrived second (ts 10). */
	const char *t;
	size_t tl;
	CHECK_EQ(c.ev[1].ts, 10);
	CHECK(c.ev[1].flags & STORE_EV_TEXT);
	CHECK_OK(store_event_text(tx, b.user, &c.ev[1], &t, &tl));
	CHECK_STREQ(t, tl, "great");
	CHECK_EQ(store_event_text(tx, b.user, &c.ev[0], &t, &tl), -ENOENT);

	const char *name;
	size_t nl;
	CHECK_OK(store_device_name(tx, c.ev[0].device, &name, &nl));
	CHECK_STREQ(name, nl, "phone");
	CHECK_OK(store_action_name(tx, c.ev[0].action, &name, &nl));
	CHECK_STREQ(name, nl, "purchase");
	store_txn_end(tx);

	/* A user with a single event: LMDB keeps it outside a duplicate page. */
	CHECK_OK(store_write(st, w_single, &b));
	CHECK_OK(store_read_begin(st, &tx));
	c.n = 0;
	CHECK_OK(store_events_foreach(tx, b.user, collect_ev, &c));
	CHECK_EQ(c.n, 1);
	CHECK_EQ(c.ev[0].ts, 12345);
	CHECK_EQ(c.ev[0].item, b.item[3]);
	c.n = 0;
	CHECK_OK(store_events_foreach_all(tx, collect_ev, &c));
	CHECK_EQ(c.n, 8);
	CHECK_EQ(c.ev[6].ts, 40);     /* u1's last, then the single user's one */
	CHECK_EQ(c.ev[7].ts, 12345);
	store_txn_end(tx);
	store_close(st);
}

static int w_bad_event(struct store_txn *tx, void *arg)
{
	uint32_t u, i;
	(void)arg;
	CHECK_OK(store_user_get_or_add(tx, "u", 1, &u));
	CHECK_OK(store_item_get_or_add(tx, "i", 1, &i));
	struct store_event ev = { .ts = 1, .item = i, .flags = STORE_EV_LOC, .lat = 91.0f, .lon = 0 };
	return store_event_add(tx, u, &ev, NULL, 0);
}

static int w_custom_actions(struct store_txn *tx, void *arg)
{
	uint8_t a1, a2, a3;
	(void)arg;
	CHECK_OK(store_action_id(tx, "bookmark", 8, &a1));
	CHECK_OK(store_action_id(tx, "skip", 4, &a2));
	CHECK_OK(store_action_id(tx, "bookmark", 8, &a3));
	CHECK_EQ(a1, STORE_ACTION_BUILTIN_COUNT);
	CHECK_EQ(a2, STORE_ACTION_BUILTIN_COUNT + 1);
	CHECK_EQ(a3, a1);
	return 0;
}

static void test_event_errors(void)
{
	struct store *st;
	struct store_txn *tx;
	struct store_counts c;

	fresh();
	st = open_store(0, 0);
	/* A bad event aborts its whole transaction: the user added in it is gone. */
	CHECK_EQ(store_write(st, w_bad_event, NULL), -EINVAL);
	CHECK(strstr(store_errmsg(st), "latitude"));
	CHECK_OK(store_write(st, w_custom_actions, NULL));
	CHECK_OK(store_read_begin(st, &tx));
	CHECK_OK(store_counts(tx, &c));
	CHECK_EQ(c.users, 0);
	CHECK_EQ(c.events, 0);
	const char *name;
	size_t nl;
	CHECK_OK(store_action_name(tx, STORE_ACTION_BUILTIN_COUNT + 1, &name, &nl));
	CHECK_STREQ(name, nl, "skip");
	store_txn_end(tx);
	store_close(st);
}

/* --- map growth and concurrent readers ------------------------------------ */

struct bulk { int from, to; };

static int w_bulk(struct store_txn *tx, void *arg)
{
	struct bulk *b = arg;
	for (int u = b->from; u < b->to; u++) {
		char id[32];
		uint32_t uid, iid;
		int l = snprintf(id, sizeof id, "user-%d", u);
		int r = store_user_get_or_add(tx, id, (size_t)l, &uid);
		if (r < 0)
			return r;   /* -ENOSPC when the map is full: store_write grows and reruns */
		for (int k = 0; k < 50; k++) {
			l = snprintf(id, sizeof id, "item-%d", (u * 7 + k) % 5000);
			if ((r = store_item_get_or_add(tx, id, (size_t)l, &iid)) < 0)
				return r;
			struct store_event ev = { .ts = k, .item = iid, .action = STORE_ACTION_VIEW };
			if ((r = store_event_add(tx, uid, &ev, NULL, 0)) < 0)
				return r;
		}
	}
	return 0;
}

struct reader_arg {
	struct store *st;
	volatile int stop;
	long snapshots;
	int bad;
};

/* Keeps opening read transactions while the writer runs: each must start
 * at once and see a consistent snapshot (events == 50 x users). */
static void *reader(void *p)
{
	struct reader_arg *ra = p;
	while (!ra->stop) {
		struct store_txn *tx;
		struct store_counts c;
		if (store_read_begin(ra->st, &tx) < 0) {
			ra->bad = 1;
			break;
		}
		if (store_counts(tx, &c) < 0 || c.events != c.users * 50)
			ra->bad = 1;
		store_txn_end(tx);
		ra->snapshots++;
	}
	return NULL;
}

static void test_growth_and_readers(void)
{
	struct store *st;
	struct store_txn *tx, *old;
	struct store_counts c, c0;
	struct reader_arg ra = { 0 };
	pthread_t th;

	fresh();
	st = open_store((size_t)1 << 20, 0);   /* 1 MiB: far too small */
	struct bulk b0 = { 0, 100 };
	CHECK_OK(store_write(st, w_bulk, &b0));
	/* A long-lived reader keeps its snapshot through later writes. */
	CHECK_OK(store_read_begin(st, &old));
	CHECK_OK(store_counts(old, &c0));
	CHECK_EQ(c0.events, 5000);
	store_txn_end(old);  /* the map cannot grow under an open txn in this process */

	ra.st = st;
	CHECK_EQ(pthread_create(&th, NULL, reader, &ra), 0);
	struct bulk b1 = { 100, 4100 };   /* 200,000 events, several map doublings */
	CHECK_OK(store_write(st, w_bulk, &b1));
	ra.stop = 1;
	pthread_join(th, NULL);
	CHECK(!ra.bad);
	CHECK(ra.snapshots > 0);

	CHECK_OK(store_read_begin(st, &tx));
	CHECK_OK(store_counts(tx, &c));
	CHECK_EQ(c.users, 4100);
	CHECK_EQ(c.items, 5000);
	CHECK_EQ(c.events, 4100 * 50);
	CHECK(c.map_bytes > ((size_t)1 << 20));
	store_txn_end(tx);
	store_close(st);

	/* Reopening with the small default keeps everything. */
	st = open_store((size_t)1 << 20, 0);
	CHECK_OK(store_read_begin(st, &tx));
	CHECK_OK(store_counts(tx, &c));
	CHECK_EQ(c.events, 4100 * 50);
	store_txn_end(tx);
	struct bulk b2 = { 4100, 4200 };
	CHECK_OK(store_write(st, w_bulk, &b2));
	store_close(st);
}

/* A reader in another process during a long write: it must not block, and
 * sees the last committed snapshot until the writer commits. */
static int hold_fds[2];

static int w_bulk_and_hold(struct store_txn *tx, void *arg)
{
	char ch;
	int r = w_bulk(tx, arg);
	if (r < 0)
		return r;
	/* Tell the parent the write is in flight, then wait for its go. */
	if (write(hold_fds[1], "w", 1) != 1 || read(hold_fds[0], &ch, 1) != 1)
		return -EIO;
	return 0;
}

static void test_reader_process(void)
{
	struct store *st;
	int up[2], down[2];
	char ch;

	CHECK_OK(pipe(up));
	CHECK_OK(pipe(down));
	fresh();
	st = open_store((size_t)64 << 20, 0);
	struct bulk b0 = { 0, 10 };
	CHECK_OK(store_write(st, w_bulk, &b0));
	store_close(st);

	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct store *cs = open_store((size_t)64 << 20, 0);
		struct bulk b = { 10, 1000 };
		hold_fds[0] = down[0];
		hold_fds[1] = up[1];
		int r = store_write(cs, w_bulk_and_hold, &b);
		store_close(cs);
		_exit(r == 0 ? 0 : 1);
	}
	CHECK_EQ(read(up[0], &ch, 1), 1);   /* the child's write txn is open */
	st = open_store((size_t)64 << 20, 0);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 100; i++) {
		struct store_txn *tx;
		struct store_counts c;
		CHECK_OK(store_read_begin(st, &tx));
		CHECK_OK(store_counts(tx, &c));
		CHECK_EQ(c.events, 500);        /* not the uncommitted 50,000 */
		store_txn_end(tx);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	CHECK(t1.tv_sec - t0.tv_sec < 5);
	CHECK_EQ(write(down[1], "g", 1), 1);
	int status;
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	struct store_txn *tx;
	struct store_counts c;
	CHECK_OK(store_read_begin(st, &tx));
	CHECK_OK(store_counts(tx, &c));
	CHECK_EQ(c.events, 50000);
	store_txn_end(tx);
	store_close(st);
	close(up[0]); close(up[1]); close(down[0]); close(down[1]);
}

/* --- schema version --------------------------------------------------------- */

static void test_schema_mismatch(void)
{
	struct store *st;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	uint64_t v = STORE_SCHEMA_VERSION + 1;

	fresh();
	st = open_store(0, 0);
	store_close(st);
	/* Rewrite the version behind the store's back, as a future recd would. */
	CHECK_EQ(mdb_env_create(&env), 0);
	CHECK_EQ(mdb_env_set_maxdbs(env, 32), 0);
	CHECK_EQ(mdb_env_open(env, dir, 0, 0640), 0);
	CHECK_EQ(mdb_txn_begin(env, NULL, 0, &txn), 0);
	CHECK_EQ(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
	MDB_val k = { 6, "schema" }, d = { sizeof v, &v };
	CHECK_EQ(mdb_put(txn, dbi, &k, &d, 0), 0);
	CHECK_EQ(mdb_txn_commit(txn), 0);
	mdb_env_close(env);

	struct store_options o = { 0, -1, 0 };
	CHECK_EQ(store_open(&st, dir, &o), -EPROTO);
	char want[64];
	snprintf(want, sizeof want, "schema version %llu", (unsigned long long)v);
	CHECK(strstr(store_errmsg(NULL), want));
	o.readonly = 1;
	CHECK_EQ(store_open(&st, dir, &o), -EPROTO);
}

static void test_readonly_missing(void)
{
	struct store *st;
	struct store_options o = { 0, -1, 1 };
	char path[4200];
	snprintf(path, sizeof path, "%s/nothing-here", dir);
	CHECK(store_open(&st, path, &o) < 0);
}

/* --- knowledge graph and models ------------------------------------------- */

static int w_kg(struct store_txn *tx, void *arg)
{
	uint32_t *e = arg, r1, r2, item;
	int added;
	CHECK_OK(store_entity_get_or_add(tx, "film:1", 6, "film", 4, &e[0]));
	CHECK_OK(store_entity_get_or_add(tx, "film:2", 6, "film", 4, &e[1]));
	CHECK_OK(store_entity_get_or_add(tx, "person:ada", 10, "person", 6, &e[2]));
	CHECK_OK(store_entity_get_or_add(tx, "genre:noir", 10, "genre", 5, &e[3]));
	CHECK_OK(store_relation_get_or_add(tx, "directed_by", 11, &r1));
	CHECK_OK(store_relation_get_or_add(tx, "has_genre", 9, &r2));
	CHECK_EQ(r1, 1);
	CHECK_EQ(r2, 2);
	CHECK_OK(store_triple_add(tx, e[0], r1, e[2], &added));
	CHECK_EQ(added, 1);
	CHECK_OK(store_triple_add(tx, e[1], r1, e[2], &added));
	CHECK_OK(store_triple_add(tx, e[0], r2, e[3], &added));
	CHECK_OK(store_triple_add(tx, e[0], r1, e[2], &added));
	CHECK_EQ(added, 0);
	CHECK_OK(store_item_get_or_add(tx, "m1", 2, &item));
	CHECK_OK(store_item_link(tx, item, e[0]));
	e[4] = item;
	return 0;
}

struct edges { uint32_t rel[8], other[8]; size_t n; };

static int collect_edge(uint32_t rel, uint32_t other, void *arg)
{
	struct edges *ed = arg;
	if (ed->n < 8) {
		ed->rel[ed->n] = rel;
		ed->other[ed->n] = other;
	}
	ed->n++;
	return 0;
}

static void test_kg(void)
{
	uint32_t e[5], out[8], id;
	size_t got, total;
	struct store *st;
	struct store_txn *tx;
	struct store_counts c;
	const char *n, *t;
	size_t nl, tl;

	fresh();
	st = open_store(0, 0);
	CHECK_OK(store_write(st, w_kg, e));
	CHECK_OK(store_read_begin(st, &tx));
	CHECK_OK(store_counts(tx, &c));
	CHECK_EQ(c.entities, 4);
	CHECK_EQ(c.relations, 2);
	CHECK_EQ(c.triples, 3);
	/* Who did person:ada direct?  Both films, from the reverse index. */
	CHECK_OK(store_kg_neighbours(tx, e[2], 1, STORE_IN, out, 8, &got, &total));
	CHECK_EQ(got, 2);
	CHECK_EQ(total, 2);
	CHECK_EQ(out[0], e[0]);
	CHECK_EQ(out[1], e[1]);
	CHECK_OK(store_kg_neighbours(tx, e[0], 1, STORE_OUT, out, 8, &got, &total));
	CHECK_EQ(got, 1);
	CHECK_EQ(out[0], e[2]);
	CHECK_OK(store_kg_neighbours(tx, e[2], 1, STORE_IN, out, 1, &got, &total));
	CHECK_EQ(got, 1);   /* capped */
	CHECK_EQ(total, 2);
	CHECK_OK(store_entity_get(tx, e[2], &n, &nl, &t, &tl));
	CHECK_STREQ(n, nl, "person:ada");
	CHECK_STREQ(t, tl, "person");
	CHECK_OK(store_entity_lookup(tx, "genre:noir", 10, &id));
	CHECK_EQ(id, e[3]);
	CHECK_OK(store_item_entities(tx, e[4], out, 8, &got));
	CHECK_EQ(got, 1);
	CHECK_EQ(out[0], e[0]);
	CHECK_OK(store_entity_item(tx, e[0], &id));
	CHECK_EQ(id, e[4]);
	struct edges ed = { 0 };
	CHECK_OK(store_kg_foreach_edge(tx, e[0], STORE_OUT, collect_edge, &ed));
	CHECK_EQ(ed.n, 2);   /* film:1 directed_by person:ada, has_genre genre:noir */
	CHECK_EQ(ed.rel[0], 1);
	CHECK_EQ(ed.other[0], e[2]);
	CHECK_EQ(ed.rel[1], 2);
	CHECK_EQ(ed.other[1], e[3]);
	ed.n = 0;
	CHECK_OK(store_kg_foreach_edge(tx, e[2], STORE_IN, collect_edge, &ed));
	CHECK_EQ(ed.n, 2);
	ed.n = 0;
	CHECK_OK(store_kg_foreach_edge(tx, e[3], STORE_OUT, collect_edge, &ed));
	CHECK_EQ(ed.n, 0);
	CHECK_OK(store_relation_name(tx, 2, &n, &nl));
	CHECK_STREQ(n, nl, "has_genre");
	store_txn_end(tx);
	store_close(st);
}

static int w_models(struct store_txn *tx, void *arg)
{
	static const float blob1[4] = { 1, 2, 3, 4 };
	static float blob2[100000];
	struct store_model_meta m = { .snapshot_events = 42 };
	uint32_t *v = arg;
	strcpy(m.kind, "sasrec");
	strcpy(m.metrics, "{\"ndcg@10\":0.1}");
	CHECK_OK(store_model_put(tx, &m, blob1, sizeof blob1));
	v[0] = m.version;
	m.parent = v[0];
	blob2[99999] = 7;
	CHECK_OK(store_model_put(tx, &m, blob2, sizeof blob2));
	v[1] = m.version;
	m.parent = 77;
	CHECK_EQ(store_model_put(tx, &m, blob1, sizeof blob1), -ENOENT);
	return 0;
}

static void test_models(void)
{
	uint32_t v[2], latest;
	struct store *st;
	struct store_txn *tx;
	struct store_model_meta m;
	const void *blob;
	size_t len;

	fresh();
	st = open_store(0, 0);
	CHECK_OK(store_write(st, w_models, v));
	CHECK_EQ(v[0], 1);
	CHECK_EQ(v[1], 2);
	CHECK_OK(store_read_begin(st, &tx));
	CHECK_OK(store_model_latest(tx, &latest));
	CHECK_EQ(latest, 2);
	CHECK_OK(store_model_get(tx, 2, &m, &blob, &len));
	CHECK_EQ(m.parent, 1);
	CHECK_EQ(m.snapshot_events, 42);
	CHECK(m.created > 0);
	CHECK_EQ(len, 400000);
	CHECK_EQ(((const float *)blob)[99999], 7);
	CHECK(strcmp(m.kind, "sasrec") == 0);
	CHECK_OK(store_model_get(tx, 1, &m, &blob, &len));
	CHECK_EQ(len, 16);
	CHECK_EQ(((const float *)blob)[3], 4);
	CHECK(strcmp(m.metrics, "{\"ndcg@10\":0.1}") == 0);
	CHECK_EQ(store_model_get(tx, 3, &m, &blob, &len), -ENOENT);
	store_txn_end(tx);
	store_close(st);
}

int main(void)
{
	snprintf(dir, sizeof dir, "%s", test_tmpdir());
	test_users_items();
	test_events();
	test_event_errors();
	test_growth_and_readers();
	test_reader_process();
	test_schema_mismatch();
	test_readonly_missing();
	test_kg();
	test_models();
	test_rmtree(dir);
	printf("test_store: all checks passed\n");
	return 0;
}
