/* compact.c: the compaction thread (compact.h).  It polls the recent table
 * once a second (a read txn: two cursor operations and a stat) and, when a
 * round is due, calls store_compact in chunks whose size it adapts so that
 * one transaction takes about COMPACT_TXN_MS, then leaves the writer alone
 * for as long: LMDB has one writer, and an ingest that arrives meanwhile
 * waits for the chunk's commit.
 *
 * What a transaction costs is mostly the pages of the distinct users it
 * touches (about two each, copied, written and synced at commit): on the
 * shared 2-core machine 64 events of random ML-1M users took 9 ms, 1024 took
 * 51 ms, 65536 took 350 ms, so 20 ms transactions move only some 5,000
 * events/s, and random-user ingest easily outruns them.  The table's size is
 * the backlog: at f times the threshold (f up to COMPACT_ESCALATE_MAX) a
 * transaction may take f times as long and the writer is left alone 1/f as
 * long, so compaction speeds up and ingest slows down until the table stops
 * growing.  That bounds the table, and the index readers keep of it. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/compact.h"
#include "daemon/log.h"
#include "store/store.h"

#define COMPACT_POLL_MS        1000
#define COMPACT_TXN_MS         20     /* one transaction's target length */
#define COMPACT_ESCALATE_MAX   16     /* ... times this at 16x the threshold */
#define COMPACT_CHUNK_MIN      64
#define COMPACT_CHUNK_FIRST    2048
#define COMPACT_CHUNK_MAX      65536
#define COMPACT_OBS            16     /* remembered (time, last arrival) pairs */

struct compactor {
	struct store *st;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;            /* stop, a new configuration */
	int stop;                     /* under mu */
	unsigned threshold, max_age;  /* under mu */
	/* The thread's own: */
	size_t chunk;
	/* obs[i]: every recent event with an arrival up to last was in the table
	 * at t_ms; oldest first.  The age of the table's events, read off them. */
	struct { uint64_t t_ms, last; } obs[COMPACT_OBS];
	size_t nobs;
	int warned;                   /* a failed poll was logged */
};

static uint64_t compact_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int compact_info(struct compactor *c, struct store_recent_info *info)
{
	struct store_txn *tx;
	int r;

	if ((r = store_read_begin(c->st, &tx)) == 0) {
		r = store_recent_info(tx, info);
		store_txn_end(tx);
	}
	if (r < 0) {
		if (!c->warned)
			log_warning("compaction: reading the recent table: %s", store_errmsg(c->st));
		c->warned = 1;
		return r;
	}
	c->warned = 0;
	return 0;
}

/* How far past its threshold the table is: 1 .. COMPACT_ESCALATE_MAX. */
static unsigned compact_escalation(uint64_t events, unsigned threshold)
{
	uint64_t f = threshold ? events / threshold : 1;
	return f < 1 ? 1 : f > COMPACT_ESCALATE_MAX ? COMPACT_ESCALATE_MAX : (unsigned)f;
}

/* Whether a round is due, and up to which arrival it goes.  An event waits
 * for at most about max_age seconds (plus an eighth of it and a poll):
 * observations are taken an eighth of max_age apart. */
static int compact_due(struct compactor *c, unsigned threshold, unsigned max_age, uint64_t *upto)
{
	struct store_recent_info info;

	if (compact_info(c, &info) < 0)
		return 0;
	/* Forget what has been compacted (here or by another process). */
	size_t drop = 0;
	while (drop < c->nobs && (info.events == 0 || c->obs[drop].last < info.first))
		drop++;
	memmove(c->obs, c->obs + drop, (c->nobs - drop) * sizeof c->obs[0]);
	c->nobs -= drop;
	if (info.events == 0)
		return 0;
	uint64_t now = compact_now_ms();
	if (max_age) {
		uint64_t every = (uint64_t)max_age * 1000u / 8;
		if (every < COMPACT_POLL_MS)
			every = COMPACT_POLL_MS;
		if (c->nobs == 0 || (c->obs[c->nobs - 1].last != info.last &&
		                     now - c->obs[c->nobs - 1].t_ms >= every)) {
			if (c->nobs == COMPACT_OBS) {
				memmove(c->obs, c->obs + 1, (COMPACT_OBS - 1) * sizeof c->obs[0]);
				c->nobs--;
			}
			c->obs[c->nobs].t_ms = now;
			c->obs[c->nobs].last = info.last;
			c->nobs++;
		}
	}
	if (threshold && info.events >= threshold) {
		*upto = info.last;
		return 1;
	}
	for (size_t i = c->nobs; max_age && i > 0; i--) {
		if (now - c->obs[i - 1].t_ms >= (uint64_t)max_age * 1000u) {
			*upto = c->obs[i - 1].last;
			return 1;
		}
	}
	return 0;
}

/* Waits ms (or until a stop); returns 1 on a stop. */
static int compact_wait(struct compactor *c, unsigned ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&c->mu);
	while (!c->stop && pthread_cond_timedwait(&c->cv, &c->mu, &ts) != ETIMEDOUT)
		;
	int stop = c->stop;
	pthread_mutex_unlock(&c->mu);
	return stop;
}

/* Returns how many events it moved. */
static uint64_t compact_round(struct compactor *c, uint64_t upto, unsigned threshold)
{
	uint64_t t0 = compact_now_ms(), total = 0, txns = 0;

	for (;;) {
		struct store_recent_info info;
		if (compact_info(c, &info) < 0)
			break;
		unsigned f = compact_escalation(info.events, threshold), target = COMPACT_TXN_MS * f;
		size_t asked = c->chunk, moved;
		uint64_t s = compact_now_ms();
		if (store_compact(c->st, asked, upto, &moved) < 0) {
			log_warning("compaction: %s", store_errmsg(c->st));
			break;
		}
		uint64_t ms = compact_now_ms() - s;
		total += moved;
		txns++;
		if (ms * 2 < target && c->chunk < COMPACT_CHUNK_MAX)
			c->chunk *= 2;
		else if (ms > target && c->chunk > COMPACT_CHUNK_MIN)
			c->chunk /= 2;
		if (moved < asked)
			break;   /* reached upto */
		/* Let the ingests that waited for this commit take the writer. */
		if (compact_wait(c, (unsigned)(ms / f) + 1))
			break;
	}
	if (total)
		log_debug("compaction: %" PRIu64 " recent events moved into the users' lists in %" PRIu64
		          " transactions, %" PRIu64 " ms", total, txns, compact_now_ms() - t0);
	return total;
}

static void *compact_main(void *arg)
{
	struct compactor *c = arg;

	pthread_mutex_lock(&c->mu);
	while (!c->stop) {
		unsigned threshold = c->threshold, max_age = c->max_age;
		uint64_t upto;
		pthread_mutex_unlock(&c->mu);
		/* After a round that moved events, look again at once: what came
		 * in meanwhile may be due too, and a second's wait is a second of
		 * ingest with the writer to itself. */
		if (!(compact_due(c, threshold, max_age, &upto) && compact_round(c, upto, threshold)) &&
		    compact_wait(c, COMPACT_POLL_MS))
			return NULL;
		pthread_mutex_lock(&c->mu);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

int compact_start(struct compactor **out, struct store *st, const struct recd_conf *conf,
                  char *err, size_t errlen)
{
	struct compactor *c = calloc(1, sizeof *c);
	pthread_condattr_t ca;
	int r;

	if (!c) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	c->st = st;
	c->threshold = conf->compact_threshold;
	c->max_age = conf->compact_max_age;
	c->chunk = COMPACT_CHUNK_FIRST;
	pthread_mutex_init(&c->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv, &ca);
	pthread_condattr_destroy(&ca);
	if ((r = -pthread_create(&c->th, NULL, compact_main, c)) < 0) {
		snprintf(err, errlen, "starting the compaction thread: %s", strerror(-r));
		pthread_cond_destroy(&c->cv);
		pthread_mutex_destroy(&c->mu);
		free(c);
		return r;
	}
	*out = c;
	return 0;
}

void compact_set_conf(struct compactor *c, const struct recd_conf *conf)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->threshold = conf->compact_threshold;
	c->max_age = conf->compact_max_age;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

void compact_stop(struct compactor *c, int final)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->stop = 1;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->th, NULL);
	if (final) {
		uint64_t t0 = compact_now_ms(), total = 0;
		size_t moved;
		int r;
		/* Nothing else writes now: big transactions, each user's pages once. */
		while ((r = store_compact(c->st, COMPACT_CHUNK_MAX, UINT64_MAX, &moved)) == 0 && moved)
			total += moved;
		if (r < 0)
			log_warning("compaction at stop: %s (the rest stays in the recent table)", store_errmsg(c->st));
		if (total)
			log_info("moved %" PRIu64 " recent events into the users' lists in %.1f s", total,
			         (double)(compact_now_ms() - t0) / 1000.0);
	}
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
}
