/* test_store_writers.c: store_write from several threads of one process at
 * once (as recd's request workers ingest), on a map small enough that
 * writes keep failing with a full map, and with every other transaction
 * failing on purpose: the ID caches that a failed write clears and the map
 * that it grows must not be touched by the next writer meanwhile.  Every
 * user, item and event written must be there after, with distinct IDs, and
 * nothing of the failed transactions.  (Before the writers were serialised, this crashed with a
 * double free in the ID cache; under ASan it reports the first misuse.) */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/store.h"
#include "tests/test.h"

#define THREADS 4
#define TXNS    60     /* write transactions per thread */
#define PER_TXN 40     /* new users (one event each) per transaction */

struct job {
	struct store *st;
	int thread, txn;
	int fail;         /* add users "gone-...", then fail */
};

static int write_fn(struct store_txn *tx, void *arg)
{
	struct job *j = arg;
	char id[64];
	for (int i = 0; i < PER_TXN; i++) {
		uint32_t u, it;
		int n = snprintf(id, sizeof id, "%s-%d-%d-%d", j->fail ? "gone" : "user", j->thread, j->txn, i);
		int r = store_user_get_or_add(tx, id, (size_t)n, &u);
		if (r < 0)
			return r;
		/* Items shared by the threads: found in the cache or the store. */
		n = snprintf(id, sizeof id, "item-%d", (j->txn * PER_TXN + i) % 97);
		if ((r = store_item_get_or_add(tx, id, (size_t)n, &it)) < 0)
			return r;
		struct store_event ev;
		memset(&ev, 0, sizeof ev);
		ev.ts = 1700000000 + j->txn * PER_TXN + i;
		ev.item = it;
		if ((r = store_event_add(tx, u, &ev, NULL, 0)) < 0)
			return r;
	}
	return j->fail ? store_txn_error(tx, -ECANCELED, "failed on purpose") : 0;
}

static void *writer(void *arg)
{
	struct job j = *(struct job *)arg;
	for (j.txn = 0; j.txn < TXNS; j.txn++) {
		j.fail = 0;
		int r = store_write(j.st, write_fn, &j);
		if (r < 0) {
			fprintf(stderr, "thread %d txn %d: %s\n", j.thread, j.txn, store_errmsg(j.st));
			exit(1);
		}
		j.fail = 1;
		if ((r = store_write(j.st, write_fn, &j)) != -ECANCELED) {
			fprintf(stderr, "thread %d txn %d (failing): returned %d: %s\n", j.thread, j.txn, r,
			        store_errmsg(j.st));
			exit(1);
		}
	}
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

int main(void)
{
	char dir[4096];
	struct store *st;
	struct store_options o = { 64 * 1024, 0, 0 };   /* grows many times */
	pthread_t th[THREADS];
	struct job jobs[THREADS];

	snprintf(dir, sizeof dir, "%s", test_tmpdir());
	CHECK_OK(store_open(&st, dir, &o));
	for (int t = 0; t < THREADS; t++) {
		jobs[t].st = st;
		jobs[t].thread = t;
		jobs[t].txn = 0;
		CHECK_EQ(pthread_create(&th[t], NULL, writer, &jobs[t]), 0);
	}
	for (int t = 0; t < THREADS; t++)
		CHECK_EQ(pthread_join(th[t], NULL), 0);

	/* Everything is there once, each user with its one event. */
	struct store_txn *tx;
	struct store_counts c;
	static uint32_t ids[THREADS * TXNS * PER_TXN];
	size_t n = 0;
	CHECK_OK(store_read_begin(st, &tx));
	CHECK_OK(store_counts(tx, &c));
	CHECK_EQ(c.users, THREADS * TXNS * PER_TXN);
	CHECK_EQ(c.items, 97);
	CHECK_EQ(c.events, THREADS * TXNS * PER_TXN);
	for (int t = 0; t < THREADS; t++)
		for (int x = 0; x < TXNS; x++)
			for (int i = 0; i < PER_TXN; i++) {
				char id[64];
				struct store_event ev;
				size_t got = 0;
				int len = snprintf(id, sizeof id, "user-%d-%d-%d", t, x, i);
				CHECK_OK(store_user_lookup(tx, id, (size_t)len, &ids[n]));
				CHECK_OK(store_events_last(tx, ids[n], 4, &ev, &got));
				CHECK_EQ(got, 1);
				CHECK_EQ(ev.ts, 1700000000 + x * PER_TXN + i);
				n++;
				uint32_t gone;
				len = snprintf(id, sizeof id, "gone-%d-%d-%d", t, x, i);
				CHECK_EQ(store_user_lookup(tx, id, (size_t)len, &gone), -ENOENT);
			}
	store_txn_end(tx);
	qsort(ids, n, sizeof ids[0], cmp_u32);
	for (size_t i = 1; i < n; i++)
		CHECK(ids[i] != ids[i - 1]);
	store_close(st);
	test_rmtree(dir);
	printf("test_store_writers: %d threads x %d transactions on a growing map: all checks passed\n",
	       THREADS, TXNS);
	return 0;
}
