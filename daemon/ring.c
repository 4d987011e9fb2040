/* ring.c: recd's request server (see ring.h for the threads, proto.h for
 * the wire format).  Everything a client writes is hostile: positions are
 * checked against recd's own copies, a message is copied out of the ring
 * before any of it is read, and a client that breaks the protocol is
 * disconnected with a log line while the others go on. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "daemon/jobs.h"
#include "daemon/log.h"
#include "daemon/proto.h"
#include "daemon/ring.h"
#include "daemon/spool.h"
#include "model/serve.h"

#define RING_GROUPS_MAX 256   /* supplementary groups of a peer looked at */

struct ring_client {
	struct ring_server *rs;
	uint64_t no;                  /* connection number, for log lines */
	int sock, bell;               /* the lifeline socket; the doorbell eventfd */
	pid_t pid;
	uid_t uid;
	gid_t gid;
	int admitted;                 /* counted in rs->nadmitted */
	struct rp_region *rg;         /* NULL until admitted */
	uint8_t *req, *resp;          /* the rings inside rg */
	uint32_t req_tail, resp_head; /* recd's own copies: never read back from rg */
	/* Under rs->mu: */
	int queued, busy, dead;
	int again;                    /* the doorbell rang while a worker had it */
	struct ring_client *next_run; /* in the run queue */
	struct ring_client *prev, *next;  /* in rs->clients */
	struct ring_client *next_free;    /* in a deferred-free list */
};

struct ring_worker {
	struct ring_server *rs;
	pthread_t th;
	unsigned no;
	uint8_t *in, *out;            /* a private copy of the request; the response */
	char *strs;                   /* NUL-terminated copies of a request's strings */
	const char **list;            /* 2 x RP_LIST_MAX pointers into strs */
	struct serve_item *items;     /* RP_K_MAX */
	struct serve_why *why;        /* RP_WHY_MAX */
	float *scores;                /* RP_LIST_MAX */
	struct serve_event *evs;      /* RP_LIST_MAX */
};

struct ring_server {
	struct serve *sv;
	struct spool *spool;          /* batch jobs; NULL = none (atomic: set after the start) */
	char spool_dir[PATH_MAX];     /* conf's spool_dir, for the errors without one */
	struct ring_options opt;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int lfd, epfd, wakefd;        /* listening socket, the I/O thread's epoll, its wake-up */
	pthread_t io;
	int io_started;
	unsigned nworkers;
	struct ring_worker *workers;
	struct timespec started;

	pthread_mutex_t mu;
	pthread_cond_t cv;            /* workers wait here for the run queue */
	pthread_cond_t idle_cv;       /* a stop waits here for clients to go idle */
	struct ring_client *clients;  /* all connections, admitted or not */
	unsigned nclients;            /* connections, with those not admitted yet */
	unsigned nadmitted;           /* clients with a region */
	struct ring_client *run_head, *run_tail;
	struct ring_client *reap;     /* dead clients a worker let go, for the I/O thread */
	int stopping, quit;
	uid_t allow_uids[CONF_ALLOW_MAX];
	size_t n_allow_uids;
	gid_t allow_gids[CONF_ALLOW_MAX];
	size_t n_allow_gids;
	unsigned max_clients;
	uint64_t next_no;

	/* Counters, updated with atomics. */
	uint64_t n_requests, n_errors, n_recommends, n_scores, n_ingests, n_ingested, n_jobs;
	uint64_t n_connects, n_refused, n_bad;
};

#define ATOMIC_ADD(p, v) __atomic_add_fetch((p), (v), __ATOMIC_RELAXED)
#define ATOMIC_GET(p)    __atomic_load_n((p), __ATOMIC_RELAXED)

static void ring_wake_io(struct ring_server *rs)
{
	uint64_t one = 1;
	if (write(rs->wakefd, &one, sizeof one) < 0) {
		/* The counter is full only after 2^64-2 writes: cannot happen. */
	}
}

/* --- admission -------------------------------------------------------------- */

static int ring_allowed(struct ring_server *rs, int fd, const struct ucred *cr)
{
	gid_t groups[RING_GROUPS_MAX];
	socklen_t glen = sizeof groups;
	int ok = 0;

	if (cr->uid == 0 || cr->uid == geteuid())
		return 1;
	pthread_mutex_lock(&rs->mu);
	for (size_t i = 0; i < rs->n_allow_uids && !ok; i++)
		ok = rs->allow_uids[i] == cr->uid;
	for (size_t i = 0; i < rs->n_allow_gids && !ok; i++)
		ok = rs->allow_gids[i] == cr->gid;
	if (!ok && rs->n_allow_gids &&
	    getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) == 0) {
		size_t ng = glen / sizeof groups[0];
		for (size_t g = 0; g < ng && !ok; g++)
			for (size_t i = 0; i < rs->n_allow_gids && !ok; i++)
				ok = rs->allow_gids[i] == groups[g];
	}
	pthread_mutex_unlock(&rs->mu);
	return ok;
}

static void ring_refuse(struct ring_server *rs, struct ring_client *c, int status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void ring_refuse(struct ring_server *rs, struct ring_client *c, int status, const char *fmt, ...)
{
	struct rp_welcome w;
	va_list ap;

	memset(&w, 0, sizeof w);
	w.magic = RP_MAGIC;
	w.version = RP_VERSION;
	w.status = status;
	va_start(ap, fmt);
	vsnprintf(w.msg, sizeof w.msg, fmt, ap);
	va_end(ap);
	/* Best effort: the peer may be gone already. */
	if (send(c->sock, &w, sizeof w, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
	}
	ATOMIC_ADD(&rs->n_refused, 1);
	log_warning("refused client %" PRIu64 " (pid %ld, uid %lu): %s", c->no, (long)c->pid,
	            (unsigned long)c->uid, w.msg);
}

/* Makes the client's region: a sealed memfd and a doorbell eventfd, both
 * for the client (ring_welcome sends them); recd keeps its mapping and the
 * doorbell.  Returns the memfd, or -errno with nothing left behind. */
static int ring_admit(struct ring_client *c)
{
	void *map = MAP_FAILED;
	int mfd = -1, r;

	mfd = memfd_create("recd-client", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0) {
		r = -errno;
		goto fail;
	}
	if (ftruncate(mfd, RP_REGION_SIZE) < 0 ||
	    fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		r = -errno;
		goto fail;
	}
	map = mmap(NULL, RP_REGION_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (map == MAP_FAILED) {
		r = -errno;
		goto fail;
	}
	c->bell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->bell < 0) {
		r = -errno;
		goto fail;
	}
	c->rg = map;
	c->rg->magic = RP_MAGIC;
	c->rg->version = RP_VERSION;
	c->rg->region_size = RP_REGION_SIZE;
	c->rg->req_off = RP_HDR_SIZE;
	c->rg->resp_off = RP_HDR_SIZE + RP_RING_SIZE;
	c->rg->ring_size = RP_RING_SIZE;
	c->rg->msg_max = RP_MSG_MAX;
	c->req = (uint8_t *)map + RP_HDR_SIZE;
	c->resp = (uint8_t *)map + RP_HDR_SIZE + RP_RING_SIZE;
	c->req_tail = c->resp_head = 0;
	/* The worker that first takes this client will find it idle and arm the
	 * doorbell; until then the client must ring. */
	__atomic_store_n(&c->rg->doorbell, RP_BELL_REQUEST, __ATOMIC_SEQ_CST);
	return mfd;
fail:
	if (mfd >= 0)
		close(mfd);
	if (c->bell >= 0) {
		close(c->bell);
		c->bell = -1;
	}
	if (map != MAP_FAILED)
		munmap(map, RP_REGION_SIZE);
	c->rg = NULL;
	return r;
}

/* Sends the welcome with the region's memfd and the doorbell, and closes the
 * memfd (the client holds it now).  Returns 0 or -errno. */
static int ring_welcome(struct ring_client *c, int mfd)
{
	char cmsgbuf[CMSG_SPACE(2 * sizeof(int))];
	struct rp_welcome w;
	struct msghdr mh;
	struct iovec iov;
	struct cmsghdr *cm;
	int r = 0;

	memset(&w, 0, sizeof w);
	w.magic = RP_MAGIC;
	w.version = RP_VERSION;
	w.region_size = RP_REGION_SIZE;
	iov.iov_base = &w;
	iov.iov_len = sizeof w;
	memset(&mh, 0, sizeof mh);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cmsgbuf;
	mh.msg_controllen = sizeof cmsgbuf;
	memset(cmsgbuf, 0, sizeof cmsgbuf);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(2 * sizeof(int));
	int fds[2] = { mfd, c->bell };
	memcpy(CMSG_DATA(cm), fds, sizeof fds);
	errno = 0;
	if (sendmsg(c->sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)sizeof w)
		r = errno ? -errno : -EIO;
	close(mfd);
	return r;
}

/* --- the run queue ------------------------------------------------------------ */

/* Under rs->mu.  A client is in the queue or with a worker at most once. */
static void ring_schedule_locked(struct ring_server *rs, struct ring_client *c)
{
	if (c->busy) {
		/* Its worker may have looked for work already and be about to let
		 * it go: it queues it again instead (no lost doorbell). */
		c->again = 1;
		return;
	}
	if (c->queued || c->dead || !c->rg)
		return;
	c->queued = 1;
	c->next_run = NULL;
	if (rs->run_tail)
		rs->run_tail->next_run = c;
	else
		rs->run_head = c;
	rs->run_tail = c;
	pthread_cond_signal(&rs->cv);
}

/* --- freeing (the I/O thread only, so epoll never hands it a freed client) -- */

static void ring_client_free(struct ring_server *rs, struct ring_client *c)
{
	if (c->rg) {
		/* First, so a client woken by the hang-up sees it: nothing more comes. */
		__atomic_store_n(&c->rg->state, RP_STATE_CLOSED, __ATOMIC_SEQ_CST);
		rp_futex_wake(&c->rg->resp_head);
		rp_futex_wake(&c->rg->req_tail);
	}
	if (c->sock >= 0) {
		epoll_ctl(rs->epfd, EPOLL_CTL_DEL, c->sock, NULL);
		close(c->sock);
	}
	if (c->bell >= 0) {
		epoll_ctl(rs->epfd, EPOLL_CTL_DEL, c->bell, NULL);
		close(c->bell);
	}
	if (c->rg)
		munmap(c->rg, RP_REGION_SIZE);
	free(c);
}

/* Under rs->mu: marks c dead and unlinks it; returns 1 when the caller (the
 * I/O thread) may free it now, 0 when a worker holds it and will hand it to
 * the reap list. */
static int ring_kill_locked(struct ring_server *rs, struct ring_client *c)
{
	if (!c->dead) {
		c->dead = 1;
		if (c->prev)
			c->prev->next = c->next;
		else
			rs->clients = c->next;
		if (c->next)
			c->next->prev = c->prev;
		rs->nclients--;
		if (c->admitted)
			rs->nadmitted--;
		pthread_cond_broadcast(&rs->idle_cv);
	}
	if (c->busy)
		return 0;
	if (c->queued) {
		/* Take it out of the run queue. */
		struct ring_client **pp = &rs->run_head, *last = NULL;
		while (*pp && *pp != c) {
			last = *pp;
			pp = &(*pp)->next_run;
		}
		if (*pp) {
			*pp = c->next_run;
			if (rs->run_tail == c)
				rs->run_tail = last;
		}
		c->queued = 0;
	}
	return 1;
}

/* --- serving one client --------------------------------------------------------- */

struct ring_req {
	struct ring_worker *w;
	struct ring_client *c;
	struct rp_msg hdr;
	struct rp_cur cur;            /* the body */
	struct rp_put out;            /* the response body after status and error text */
	char err[RP_ERR_MAX];
	size_t nstrs;                 /* bytes used in w->strs */
};

/* The largest response a valid request of this type may get, so that a
 * request is taken only when its answer fits: nothing is dropped. */
static uint32_t ring_resp_bound(const struct rp_msg *h, const uint8_t *body, uint32_t blen)
{
	uint32_t base = RP_MSG_MIN + 4 + 2 + RP_ERR_MAX, k = 0, why = 0, n = 0;
	struct rp_cur cur = { body, blen, 0, 0 };

	switch (h->type) {
	case RP_STATS:
		return base + (uint32_t)sizeof(struct rp_stats);
	case RP_RECOMMEND:
		k = rp_get_u32(&cur);
		rp_get_u32(&cur);
		why = rp_get_u32(&cur);
		k = k > RP_K_MAX ? RP_K_MAX : k;
		why = why > RP_WHY_MAX ? RP_WHY_MAX : why;
		return base + 16 + k * (4 + 2 + RP_STR_MAX) + why * (8 + 4 + 1 + 2 + RP_STR_MAX);
	case RP_SCORE:
		n = rp_get_u32(&cur);
		n = n > RP_LIST_MAX ? RP_LIST_MAX : n;
		return base + 8 + 4 * n;
	case RP_JOB_SUBMIT:
		return base + 2 + RP_JOB_ID_MAX;
	case RP_JOB_STATUS:
		return base + (uint32_t)sizeof(struct rp_job_status);
	case RP_JOB_RESULT:
		rp_get_i64(&cur);
		n = rp_get_u32(&cur);
		n = n > RP_JOB_CHUNK_MAX ? RP_JOB_CHUNK_MAX : n;
		return base + (uint32_t)sizeof(struct rp_job_chunk) + n;
	default:
		return base + 8;
	}
}
_Static_assert(RP_MSG_MIN + 4 + 2 + RP_ERR_MAX + 16 + RP_K_MAX * (4 + 2 + RP_STR_MAX) +
               RP_WHY_MAX * (8 + 4 + 1 + 2 + RP_STR_MAX) <= RP_MSG_MAX,
               "the largest recommend response fits in one message");
_Static_assert(RP_MSG_MIN + 4 + 2 + RP_ERR_MAX + sizeof(struct rp_job_chunk) + RP_JOB_CHUNK_MAX <= RP_MSG_MAX,
               "the largest job result chunk fits in one message");
_Static_assert(RP_JOB_ID_MAX == JOBS_ID_MAX, "job ID limits agree");

static int ring_fail(struct ring_req *q, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int ring_fail(struct ring_req *q, int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(q->err, sizeof q->err, fmt, ap);
	va_end(ap);
	return status;
}

/* A string from the request as a NUL-terminated copy in the worker's arena.
 * Returns NULL (and sets the cursor bad) on a malformed one; a string with a
 * control character is a request error, reported by the caller. */
static const char *ring_str(struct ring_req *q, size_t *len_out)
{
	const char *s;
	size_t n;
	rp_get_str(&q->cur, RP_STR_MAX, &s, &n);
	if (q->cur.bad)
		return NULL;
	/* The arena holds the whole message plus one NUL per string: a message
	 * of RP_MSG_MAX bytes has fewer than RP_MSG_MAX / 2 strings. */
	char *d = q->w->strs + q->nstrs;
	memcpy(d, s, n);
	d[n] = '\0';
	q->nstrs += n + 1;
	if (len_out)
		*len_out = n;
	return d;
}

static int ring_bad_chars(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* Returns 1 for a malformed body (disconnect), else 0 with the status in *st. */
#define RING_MALFORMED 1

static int ring_do_stats(struct ring_req *q, int *st)
{
	struct ring_server *rs = q->w->rs;
	struct rp_stats s;
	struct ring_counters rc;
	struct timespec now;

	if (q->cur.off != q->cur.len)
		return RING_MALFORMED;
	memset(&s, 0, sizeof s);
	ring_server_counters(rs, &rc);
	clock_gettime(CLOCK_MONOTONIC, &now);
	s.uptime_ms = (uint64_t)(now.tv_sec - rs->started.tv_sec) * 1000u +
	              (uint64_t)((now.tv_nsec - rs->started.tv_nsec) / 1000000);
	s.requests = rc.requests;
	s.errors = rc.errors;
	s.recommends = rc.recommends;
	s.scores = rc.scores;
	s.ingested_events = rc.ingested_events;
	s.disconnects_bad = rc.disconnects_bad;
	s.pid = (uint32_t)getpid();
	s.clients = rc.clients;
	pthread_mutex_lock(&rs->mu);
	s.max_clients = rs->max_clients;
	pthread_mutex_unlock(&rs->mu);
	s.workers = rc.workers;
	if (rs->sv) {
		struct serve_stats ss;
		serve_get_stats(rs->sv, &ss);
		s.model_version = ss.version;
		s.cache_hits = ss.cache_hits;
		s.cache_misses = ss.cache_misses;
		s.swaps = ss.swaps;
	}
	snprintf(s.version, sizeof s.version, "%s", PACKAGE_VERSION);
	rp_put(&q->out, &s, sizeof s);
	*st = 0;
	return 0;
}

static int ring_do_recommend(struct ring_req *q, int *st)
{
	struct ring_worker *w = q->w;
	struct ring_server *rs = w->rs;
	uint32_t k = rp_get_u32(&q->cur), flags = rp_get_u32(&q->cur), why_cap = rp_get_u32(&q->cur);
	uint32_t ninc = rp_get_u32(&q->cur), nexc = rp_get_u32(&q->cur);
	struct serve_filter f;
	struct serve_request rq;
	struct serve_result res;

	rp_get_i64(&q->cur);      /* ctx_ts, ctx_lat, ctx_lon: reserved */
	rp_get_f32(&q->cur);
	rp_get_f32(&q->cur);
	if (q->cur.bad || (flags & ~RP_REC_FLAGS) || ninc > RP_LIST_MAX || nexc > RP_LIST_MAX)
		return RING_MALFORMED;
	const char *user = ring_str(q, NULL);
	for (uint32_t i = 0; i < ninc + nexc && !q->cur.bad; i++)
		w->list[i] = ring_str(q, NULL);
	if (q->cur.bad || q->cur.off != q->cur.len)
		return RING_MALFORMED;
	ATOMIC_ADD(&rs->n_recommends, 1);
	if (!*user || ring_bad_chars(user)) {
		*st = ring_fail(q, -EINVAL, "recommend: the user ID is empty or holds a control character");
		return 0;
	}
	for (uint32_t i = 0; i < ninc + nexc; i++)
		if (!*w->list[i] || ring_bad_chars(w->list[i])) {
			*st = ring_fail(q, -EINVAL, "recommend: %s item %u is empty or holds a control character",
			                i < ninc ? "include" : "exclude", i < ninc ? i : i - ninc);
			return 0;
		}
	if (k < 1 || k > RP_K_MAX) {
		*st = ring_fail(q, -EINVAL, "recommend: k = %" PRIu32 " is not from 1 to %u", k, RP_K_MAX);
		return 0;
	}
	if (!(flags & RP_REC_EXPLAIN))
		why_cap = 0;
	if (why_cap > RP_WHY_MAX)
		why_cap = RP_WHY_MAX;
	if (!rs->sv) {
		*st = ring_fail(q, -ENODATA, "recommend: no model is loaded");
		return 0;
	}
	memset(&f, 0, sizeof f);
	f.include = w->list;
	f.ninclude = ninc;
	f.exclude = w->list + ninc;
	f.nexclude = nexc;
	f.include_seen = !!(flags & RP_REC_INCLUDE_SEEN);
	memset(&rq, 0, sizeof rq);
	rq.user = user;
	rq.k = (int)k;
	rq.filter = &f;
	rq.why = why_cap ? w->why : NULL;
	rq.why_cap = (int)why_cap;
	memset(&res, 0, sizeof res);
	*st = serve_recommend(rs->sv, &rq, w->items, &res, q->err, sizeof q->err);
	if (*st < 0)
		return 0;
	if (res.n < 0 || res.n > (int)k)
		res.n = 0;
	if (res.nwhy < 0 || res.nwhy > (int)why_cap)
		res.nwhy = 0;
	rp_put_u32(&q->out, res.version);
	rp_put_u32(&q->out, (uint32_t)res.n);
	rp_put_u32(&q->out, (uint32_t)res.nwhy);
	rp_put_u32(&q->out, (uint32_t)res.cached);
	for (int i = 0; i < res.n; i++) {
		rp_put_f32(&q->out, w->items[i].score);
		rp_put_str(&q->out, w->items[i].id, strnlen(w->items[i].id, RP_STR_MAX));
	}
	for (int i = 0; i < res.nwhy; i++) {
		rp_put_i64(&q->out, w->why[i].ts);
		rp_put_f32(&q->out, w->why[i].weight);
		rp_put_u8(&q->out, w->why[i].action);
		rp_put_str(&q->out, w->why[i].item, strnlen(w->why[i].item, RP_STR_MAX));
	}
	return 0;
}

static int ring_do_score(struct ring_req *q, int *st)
{
	struct ring_worker *w = q->w;
	struct ring_server *rs = w->rs;
	uint32_t n = rp_get_u32(&q->cur), version = 0;

	if (q->cur.bad || n > RP_LIST_MAX)
		return RING_MALFORMED;
	const char *user = ring_str(q, NULL);
	for (uint32_t i = 0; i < n && !q->cur.bad; i++)
		w->list[i] = ring_str(q, NULL);
	if (q->cur.bad || q->cur.off != q->cur.len)
		return RING_MALFORMED;
	ATOMIC_ADD(&rs->n_scores, 1);
	if (!*user || ring_bad_chars(user)) {
		*st = ring_fail(q, -EINVAL, "score: the user ID is empty or holds a control character");
		return 0;
	}
	for (uint32_t i = 0; i < n; i++)
		if (!*w->list[i] || ring_bad_chars(w->list[i])) {
			*st = ring_fail(q, -EINVAL, "score: item %u is empty or holds a control character", i);
			return 0;
		}
	if (n == 0) {
		*st = ring_fail(q, -EINVAL, "score: no candidate items");
		return 0;
	}
	if (!rs->sv) {
		*st = ring_fail(q, -ENODATA, "score: no model is loaded");
		return 0;
	}
	*st = serve_score(rs->sv, user, w->list, (int)n, w->scores, &version, q->err, sizeof q->err);
	if (*st < 0)
		return 0;
	rp_put_u32(&q->out, version);
	rp_put_u32(&q->out, n);
	for (uint32_t i = 0; i < n; i++)
		rp_put_f32(&q->out, w->scores[i]);
	return 0;
}

static int ring_do_ingest(struct ring_req *q, int *st)
{
	struct ring_worker *w = q->w;
	struct ring_server *rs = w->rs;
	uint32_t n = rp_get_u32(&q->cur);

	if (q->cur.bad || n > RP_LIST_MAX)
		return RING_MALFORMED;
	for (uint32_t i = 0; i < n && !q->cur.bad; i++) {
		struct serve_event *e = &w->evs[i];
		uint8_t fl;
		memset(e, 0, sizeof *e);
		e->ts = rp_get_i64(&q->cur);
		e->value = rp_get_f32(&q->cur);
		e->lat = rp_get_f32(&q->cur);
		e->lon = rp_get_f32(&q->cur);
		fl = rp_get_u8(&q->cur);
		if (fl & ~RP_EV_FLAGS)
			return RING_MALFORMED;
		e->has_value = !!(fl & RP_EV_VALUE);
		e->has_loc = !!(fl & RP_EV_LOC);
		e->user = ring_str(q, NULL);
		e->item = ring_str(q, NULL);
		e->action = ring_str(q, NULL);
		e->device = ring_str(q, NULL);
	}
	if (q->cur.bad || q->cur.off != q->cur.len)
		return RING_MALFORMED;
	ATOMIC_ADD(&rs->n_ingests, 1);
	if (n == 0) {
		*st = ring_fail(q, -EINVAL, "ingest: no events");
		return 0;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct serve_event *e = &w->evs[i];
		const char *field = NULL;
		if (!*e->user || ring_bad_chars(e->user))
			field = "user";
		else if (!*e->item || ring_bad_chars(e->item))
			field = "item";
		else if (ring_bad_chars(e->action))
			field = "action";
		else if (ring_bad_chars(e->device))
			field = "device";
		if (field) {
			*st = ring_fail(q, -EINVAL, "ingest: event %u: %s is empty or holds a control character",
			                i, field);
			return 0;
		}
		if (!*e->action)
			e->action = NULL;
		if (!*e->device)
			e->device = NULL;
	}
	if (!rs->sv) {
		*st = ring_fail(q, -ENODATA, "ingest: the serving engine is not running");
		return 0;
	}
	*st = serve_ingest(rs->sv, w->evs, n, q->err, sizeof q->err);
	if (*st < 0)
		return 0;
	ATOMIC_ADD(&rs->n_ingested, n);
	rp_put_u32(&q->out, n);
	return 0;
}

static int ring_do_model_use(struct ring_req *q, int *st)
{
	struct ring_server *rs = q->w->rs;
	uint32_t v = rp_get_u32(&q->cur), now = 0;

	if (q->cur.bad || q->cur.off != q->cur.len)
		return RING_MALFORMED;
	if (!rs->sv) {
		*st = ring_fail(q, -ENODATA, "model use: the serving engine is not running");
	} else {
		*st = serve_use(rs->sv, v, q->err, sizeof q->err);
		now = serve_version(rs->sv);
	}
	if (*st >= 0) {
		*st = 0;
		rp_put_u32(&q->out, now);
	}
	return 0;
}

/* --- batch jobs -------------------------------------------------------------------- */

/* Reads at most cap - 1 bytes of the start of spool_dir/failed/ID.error
 * (a small file recd wrote) and leaves its "reason: " line in out. */
static int ring_job_reason(struct ring_server *rs, const char *id, char *out, size_t cap)
{
	char path[PATH_MAX + JOBS_ID_MAX + 32], buf[JOBS_WHY_MAX + 2 * JOBS_ID_MAX + 256];
	ssize_t n;
	int fd;

	if (snprintf(path, sizeof path, "%s/failed/%s.error", rs->spool_dir, id) >= (int)sizeof path)
		return -ENAMETOOLONG;
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)) < 0)
		return -errno;
	n = pread(fd, buf, sizeof buf - 1, 0);
	int e = errno;
	close(fd);
	if (n < 0)
		return -e;
	buf[n] = '\0';
	const char *r = strstr(buf, "reason: ");
	r = r ? r + 8 : buf;
	size_t len = strcspn(r, "\n");
	if (len >= cap)
		len = cap - 1;
	memcpy(out, r, len);
	out[len] = '\0';
	for (char *c = out; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	return 0;
}

/* A chunk of results/ID.jsonl: -ENOENT when there is none (yet). */
static int ring_job_chunk(struct ring_req *q, struct spool *sp, const char *id, uint64_t off, uint32_t max)
{
	char path[PATH_MAX + JOBS_ID_MAX + 32];
	struct rp_job_chunk ch;
	struct stat sb;
	size_t size;
	int fd, r;

	if ((r = spool_result_path(sp, id, path, sizeof path, &size)) < 0)
		return r;
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)) < 0)
		return -errno;
	if (fstat(fd, &sb) < 0) {
		r = -errno;
		close(fd);
		return ring_fail(q, r, "job %s: results/%s.jsonl: %s", id, id, strerror(-r));
	}
	if (!S_ISREG(sb.st_mode)) {
		close(fd);
		return ring_fail(q, -EINVAL, "job %s: results/%s.jsonl is not a regular file", id, id);
	}
	if (off > (uint64_t)sb.st_size) {
		close(fd);
		return ring_fail(q, -EINVAL, "job %s: offset %" PRIu64 " is past the end of its result "
		                 "(%lld bytes)", id, off, (long long)sb.st_size);
	}
	uint64_t left = (uint64_t)sb.st_size - off;
	uint32_t want = left < max ? (uint32_t)left : max, got = 0;
	/* The chunk goes straight into the response, after its header. */
	size_t at = q->out.off + sizeof ch;
	if (q->out.cap - q->out.off < sizeof ch + want) {   /* ring_resp_bound reserved it */
		close(fd);
		return ring_fail(q, -EMSGSIZE, "job %s: the chunk does not fit in a reply", id);
	}
	while (got < want) {
		ssize_t n = pread(fd, q->out.p + at + got, want - got, (off_t)(off + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			close(fd);
			return ring_fail(q, r, "job %s: reading results/%s.jsonl: %s", id, id, strerror(-r));
		}
		if (n == 0)
			break;   /* cannot happen: results are renamed into place whole */
		got += (uint32_t)n;
	}
	close(fd);
	memset(&ch, 0, sizeof ch);
	ch.total = (uint64_t)sb.st_size;
	ch.offset = off;
	ch.len = got;
	rp_put(&q->out, &ch, sizeof ch);
	q->out.off += got;
	return 0;
}

static int ring_do_job(struct ring_req *q, int *st)
{
	struct ring_server *rs = q->w->rs;
	struct spool *sp = __atomic_load_n(&rs->spool, __ATOMIC_ACQUIRE);
	const char *json = NULL, *what;
	char id[JOBS_ID_MAX + 1], why[JOBS_WHY_MAX];
	uint64_t off = 0;
	uint32_t max = 0;
	size_t idlen = 0;

	switch (q->hdr.type) {
	case RP_JOB_SUBMIT:
		what = "job submit";
		json = (const char *)q->cur.p;
		q->cur.off = q->cur.len;
		break;
	case RP_JOB_RESULT:
		what = "job result";
		off = (uint64_t)rp_get_i64(&q->cur);
		max = rp_get_u32(&q->cur);
		/* fall through */
	default: {
		const char *s;
		what = q->hdr.type == RP_JOB_STATUS ? "job status" : q->hdr.type == RP_JOB_CANCEL ?
		       "job cancel" : "job result";
		rp_get_str(&q->cur, RP_STR_MAX, &s, &idlen);
		if (q->cur.bad || q->cur.off != q->cur.len)
			return RING_MALFORMED;
		if (jobs_name_check(s, idlen, why, sizeof why) < 0) {
			char show[JOBS_ID_MAX + 1];
			size_t n = idlen < JOBS_ID_MAX ? idlen : JOBS_ID_MAX;
			for (size_t i = 0; i < n; i++)
				show[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
			show[n] = '\0';
			*st = ring_fail(q, -EINVAL, "%s: job ID '%s': %s", what, show, why);
			return 0;
		}
		memcpy(id, s, idlen);
		id[idlen] = '\0';
	}
	}
	ATOMIC_ADD(&rs->n_jobs, 1);
	if (!sp) {
		*st = ring_fail(q, -ENOTSUP, "%s: batch jobs need the spool directory %s, which does not exist",
		                what, rs->spool_dir[0] ? rs->spool_dir : "(spool_dir is not set)");
		return 0;
	}
	struct jobs *e = spool_jobs(sp);
	struct jobs_status js;
	int r;
	switch (q->hdr.type) {
	case RP_JOB_SUBMIT:
		if (q->cur.len == 0) {
			*st = ring_fail(q, -EINVAL, "job submit: the job is empty (expected its JSON, recd-spool(5))");
			return 0;
		}
		why[0] = '\0';
		if ((r = jobs_submit(e, json, q->cur.len, JOBS_PRIO_INTERACTIVE, id, why, sizeof why)) < 0) {
			*st = ring_fail(q, r, "job submit: %s", why[0] ? why : strerror(-r));
			return 0;
		}
		rp_put_str(&q->out, id, strlen(id));
		log_info("ring: client %" PRIu64 " (uid %lu) submitted job %s", q->c->no,
		         (unsigned long)q->c->uid, id);
		return 0;
	case RP_JOB_STATUS: {
		struct rp_job_status o;
		if ((r = jobs_status(e, id, &js)) < 0) {
			*st = ring_fail(q, r, "job status: %s%s", r == -ENOENT ? "no job " : "",
			                r == -ENOENT ? id : strerror(-r));
			return 0;
		}
		memset(&o, 0, sizeof o);
		o.state = (uint32_t)js.state;
		o.type = (uint32_t)js.type;
		o.done = js.done;
		o.total = js.total;
		o.elapsed_s = js.elapsed_s;
		o.eta_s = js.eta_s;
		o.epoch = js.epoch > 0 ? (uint32_t)js.epoch : 0;
		o.epochs = js.epochs > 0 ? (uint32_t)js.epochs : 0;
		o.loss = js.loss;   /* NaN without epochs */
		rp_put(&q->out, &o, sizeof o);
		return 0;
	}
	case RP_JOB_CANCEL:
		if ((r = jobs_cancel(e, id)) < 0) {
			if (jobs_status(e, id, &js) == 0)
				*st = ring_fail(q, r, "job cancel: job %s has already ended (%s)", id,
				                jobs_state_name(js.state));
			else
				*st = ring_fail(q, r, "job cancel: no job %s", id);
			return 0;
		}
		log_info("ring: client %" PRIu64 " (uid %lu) cancelled job %s", q->c->no,
		         (unsigned long)q->c->uid, id);
		return 0;
	default:
		break;
	}
	/* RP_JOB_RESULT */
	if (max < 1 || max > RP_JOB_CHUNK_MAX) {
		*st = ring_fail(q, -EINVAL, "job result: chunk size %" PRIu32 " is not from 1 to %u", max,
		                RP_JOB_CHUNK_MAX);
		return 0;
	}
	r = jobs_status(e, id, &js);
	if (r < 0 && r != -ENOENT) {
		*st = ring_fail(q, r, "job result: job %s: %s", id, strerror(-r));
		return 0;
	}
	if (r == 0 && js.state <= JOBS_RUNNING) {
		*st = ring_fail(q, -EINPROGRESS, "job result: job %s is %s (%" PRIu64 " of %" PRIu64 " done)",
		                id, jobs_state_name(js.state), js.done, js.total);
		return 0;
	}
	if (r < 0 || js.state == JOBS_DONE) {
		int rc = ring_job_chunk(q, sp, id, off, max);
		if (rc != -ENOENT) {
			*st = rc;
			return 0;
		}
	}
	/* Failed, cancelled, or done without a result file: the reason. */
	char reason[RP_ERR_MAX - 64];
	int rr = ring_job_reason(rs, id, reason, sizeof reason);
	if (rr == 0) {
		int cancelled = (r == 0 && js.state == JOBS_CANCELLED) || strcmp(reason, "cancelled") == 0;
		*st = ring_fail(q, cancelled ? -ECANCELED : RP_JOB_FAILED, "job %s %s: %s", id,
		                cancelled ? "was cancelled" : "failed", reason);
	} else if (r == 0) {
		/* The engine has ended it; its result or reason is being written. */
		*st = ring_fail(q, -EINPROGRESS, "job result: job %s has ended (%s); its %s is being written",
		                id, jobs_state_name(js.state), js.state == JOBS_DONE ? "result" : "reason");
	} else {
		*st = ring_fail(q, -ENOENT, "job result: no job %s", id);
	}
	return 0;
}

/* Answers one request (a private copy in q).  Returns RING_MALFORMED for a
 * message to disconnect over, else 0 with the response built in q. */
static int ring_dispatch(struct ring_req *q, int *st)
{
	*st = 0;
	switch (q->hdr.type) {
	case RP_PING:
		return q->cur.len == 0 ? 0 : RING_MALFORMED;
	case RP_STATS:
		return ring_do_stats(q, st);
	case RP_RECOMMEND:
		return ring_do_recommend(q, st);
	case RP_SCORE:
		return ring_do_score(q, st);
	case RP_INGEST:
		return ring_do_ingest(q, st);
	case RP_MODEL_USE:
		return ring_do_model_use(q, st);
	case RP_JOB_SUBMIT:
	case RP_JOB_STATUS:
	case RP_JOB_RESULT:
	case RP_JOB_CANCEL:
		return ring_do_job(q, st);
	default:
		return RING_MALFORMED;
	}
}

static int ring_type_known(uint16_t t)
{
	return (t >= RP_PING && t <= RP_MODEL_USE) || (t >= RP_JOB_SUBMIT && t <= RP_JOB_CANCEL);
}

enum { RING_IDLE, RING_BLOCKED, RING_BAD };

/* Writes the response for q into the response ring; the caller checked the
 * room.  Publishes resp_head and wakes a sleeping client. */
static void ring_respond(struct ring_client *c, struct ring_req *q, int st)
{
	uint8_t *o = q->w->out;
	size_t elen = st < 0 ? strnlen(q->err, RP_ERR_MAX - 1) : 0;
	struct rp_msg h;
	struct rp_put hdr = { o, RP_MSG_MAX, 0, 0 };

	if (st < 0 && elen == 0)
		elen = (size_t)snprintf(q->err, sizeof q->err, "%s", strerror(-st));
	if (st < 0)
		q->out.off = 0;   /* an error carries no body */
	h.len = (uint32_t)(RP_MSG_MIN + 4 + 2 + elen + q->out.off);
	h.type = (uint16_t)(q->hdr.type | RP_RESPONSE);
	h.flags = 0;
	h.id = q->hdr.id;
	rp_put(&hdr, &h, sizeof h);
	rp_put_i32(&hdr, st);
	rp_put_str(&hdr, q->err, elen);
	/* The body was built at o + RP_MSG_MIN + 4 + 2 + RP_ERR_MAX; move it up. */
	memmove(o + hdr.off, o + RP_MSG_MIN + 4 + 2 + RP_ERR_MAX, q->out.off);
	rp_ring_write(c->resp, RP_RING_SIZE, c->resp_head, o, h.len);
	c->resp_head += rp_align(h.len);
	__atomic_store_n(&c->rg->resp_head, c->resp_head, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&c->rg->resp_waiters, __ATOMIC_SEQ_CST))
		rp_futex_wake(&c->rg->resp_head);
}

static void ring_log_bad(struct ring_client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void ring_log_bad(struct ring_client *c, const char *fmt, ...)
{
	char why[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	ATOMIC_ADD(&c->rs->n_bad, 1);
	log_warning("client %" PRIu64 " (pid %ld, uid %lu): %s; disconnecting", c->no, (long)c->pid,
	            (unsigned long)c->uid, why);
}

/* Answers what is in c's request ring.  Returns RING_IDLE when it is empty,
 * RING_BLOCKED when the next answer does not fit in the response ring (the
 * client has to read first), RING_BAD when c broke the protocol. */
static int ring_serve_client(struct ring_worker *w, struct ring_client *c)
{
	struct ring_server *rs = w->rs;

	for (;;) {
		uint32_t head = __atomic_load_n(&c->rg->req_head, __ATOMIC_ACQUIRE);
		uint32_t avail = head - c->req_tail;
		uint32_t rtail = __atomic_load_n(&c->rg->resp_tail, __ATOMIC_ACQUIRE);
		uint32_t rused = c->resp_head - rtail;
		struct ring_req q;
		struct rp_msg h;
		int st;

		if (avail == 0)
			return RING_IDLE;
		if (avail > RP_RING_SIZE || avail < RP_MSG_MIN || avail % RP_ALIGN) {
			ring_log_bad(c, "request ring head %" PRIu32 " is not a valid position (tail %" PRIu32 ")",
			             head, c->req_tail);
			return RING_BAD;
		}
		if (rused > RP_RING_SIZE || rused % RP_ALIGN) {
			ring_log_bad(c, "response ring tail %" PRIu32 " is not a valid position (head %" PRIu32 ")",
			             rtail, c->resp_head);
			return RING_BAD;
		}
		rp_ring_read(c->req, RP_RING_SIZE, c->req_tail, &h, sizeof h);
		if (h.len < RP_MSG_MIN || h.len > RP_MSG_MAX || rp_align(h.len) > avail) {
			ring_log_bad(c, "request at %" PRIu32 ": length %" PRIu32 " is out of range "
			             "(%u to %u, and %" PRIu32 " bytes written)", c->req_tail, h.len,
			             (unsigned)RP_MSG_MIN, (unsigned)RP_MSG_MAX, avail);
			return RING_BAD;
		}
		if (!ring_type_known(h.type) || h.flags != 0) {
			ring_log_bad(c, "request at %" PRIu32 ": unknown message type %u (flags %u)",
			             c->req_tail, (unsigned)h.type, (unsigned)h.flags);
			return RING_BAD;
		}
		/* The one copy: everything below reads w->in, never the ring. */
		rp_ring_read(c->req, RP_RING_SIZE, c->req_tail, w->in, h.len);
		memcpy(&h, w->in, sizeof h);   /* the header as copied, not as first read */
		if (h.len < RP_MSG_MIN || h.len > RP_MSG_MAX || rp_align(h.len) > avail ||
		    !ring_type_known(h.type) || h.flags != 0) {
			ring_log_bad(c, "request at %" PRIu32 " changed while it was read", c->req_tail);
			return RING_BAD;
		}
		uint32_t bound = rp_align(ring_resp_bound(&h, w->in + RP_MSG_MIN, h.len - RP_MSG_MIN));
		if (RP_RING_SIZE - rused < bound)
			return RING_BLOCKED;

		c->req_tail += rp_align(h.len);
		__atomic_store_n(&c->rg->req_tail, c->req_tail, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&c->rg->req_space_waiters, __ATOMIC_SEQ_CST))
			rp_futex_wake(&c->rg->req_tail);

		memset(&q, 0, sizeof q);
		q.w = w;
		q.c = c;
		q.hdr = h;
		q.cur.p = w->in + RP_MSG_MIN;
		q.cur.len = h.len - RP_MSG_MIN;
		/* The body goes after room for the header, status and the longest
		 * error text; ring_respond moves it next to them. */
		q.out.p = w->out + RP_MSG_MIN + 4 + 2 + RP_ERR_MAX;
		q.out.cap = RP_MSG_MAX - (RP_MSG_MIN + 4 + 2 + RP_ERR_MAX);
		if (ring_dispatch(&q, &st) == RING_MALFORMED) {
			ring_log_bad(c, "request %" PRIu64 " (type %u, %" PRIu32 " bytes) is malformed",
			             h.id, (unsigned)h.type, h.len);
			return RING_BAD;
		}
		if (q.out.bad) {   /* cannot happen: ring_resp_bound covers every body */
			st = ring_fail(&q, -EMSGSIZE, "the response does not fit in one message");
		}
		ATOMIC_ADD(&rs->n_requests, 1);
		if (st < 0)
			ATOMIC_ADD(&rs->n_errors, 1);
		ring_respond(c, &q, st);
	}
}

static int ring_has_work(struct ring_client *c, int blocked)
{
	uint32_t head = __atomic_load_n(&c->rg->req_head, __ATOMIC_SEQ_CST);
	if (head == c->req_tail)
		return 0;
	if (!blocked)
		return 1;
	/* Blocked on the response ring: only the client reading helps. */
	uint32_t rtail = __atomic_load_n(&c->rg->resp_tail, __ATOMIC_SEQ_CST);
	return c->resp_head - rtail <= RP_RING_SIZE - RP_MSG_MAX;
}

static uint64_t ring_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *ring_worker_main(void *arg)
{
	struct ring_worker *w = arg;
	struct ring_server *rs = w->rs;

	pthread_mutex_lock(&rs->mu);
	for (;;) {
		struct ring_client *c;
		int r;

		while (!rs->run_head && !rs->quit)
			pthread_cond_wait(&rs->cv, &rs->mu);
		if (!rs->run_head)
			break;
		c = rs->run_head;
		rs->run_head = c->next_run;
		if (!rs->run_head)
			rs->run_tail = NULL;
		c->queued = 0;
		c->busy = 1;
		c->again = 0;
		pthread_mutex_unlock(&rs->mu);

		__atomic_store_n(&c->rg->doorbell, RP_BELL_NONE, __ATOMIC_SEQ_CST);
		for (;;) {
			r = ring_serve_client(w, c);
			if (r == RING_BAD)
				break;
			/* Spin a little while nobody else waits for a worker: the
			 * next request of a pipelining client costs no system call. */
			uint64_t until = ring_now_ns() + RING_SPIN_NS;
			int more = 0;
			while (!(more = ring_has_work(c, r == RING_BLOCKED)) && ring_now_ns() < until &&
			       !__atomic_load_n(&rs->run_head, __ATOMIC_RELAXED))
				rp_cpu_relax();
			if (more)
				continue;
			/* Dekker with the client: it publishes req_head (or resp_tail)
			 * and then reads doorbell; we publish doorbell and then read
			 * them.  Both SEQ_CST, so one of us sees the other. */
			__atomic_store_n(&c->rg->doorbell, r == RING_BLOCKED ? RP_BELL_SPACE : RP_BELL_REQUEST, __ATOMIC_SEQ_CST);
			if (!ring_has_work(c, r == RING_BLOCKED))
				break;
			__atomic_store_n(&c->rg->doorbell, RP_BELL_NONE, __ATOMIC_SEQ_CST);
		}

		pthread_mutex_lock(&rs->mu);
		c->busy = 0;
		if (r == RING_BAD)
			ring_kill_locked(rs, c);
		else if (c->again)
			ring_schedule_locked(rs, c);
		c->again = 0;
		if (c->dead) {
			/* The I/O thread frees it: it owns the epoll set. */
			c->next_free = rs->reap;
			rs->reap = c;
			ring_wake_io(rs);
		}
		pthread_cond_broadcast(&rs->idle_cv);
	}
	pthread_mutex_unlock(&rs->mu);
	return NULL;
}

/* --- the I/O thread ------------------------------------------------------------ */

enum { RING_TAG_LISTEN = 1, RING_TAG_WAKE = 2 };
/* epoll data: the client pointer with its low bit set for the doorbell. */

static int ring_epoll_add(struct ring_server *rs, int fd, uint64_t data, uint32_t events)
{
	struct epoll_event ev;
	memset(&ev, 0, sizeof ev);
	ev.events = events;
	ev.data.u64 = data;
	return epoll_ctl(rs->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static void ring_accept(struct ring_server *rs)
{
	for (;;) {
		int fd = accept4(rs->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		struct ring_client *c;
		struct ucred cr;
		socklen_t crlen = sizeof cr;
		unsigned max;

		if (fd < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_warning("accepting a client: %s", strerror(errno));
			return;
		}
		if (!(c = calloc(1, sizeof *c))) {
			log_err("accepting a client: out of memory");
			close(fd);
			continue;
		}
		c->rs = rs;
		c->sock = fd;
		c->bell = -1;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) < 0) {
			log_warning("SO_PEERCRED: %s", strerror(errno));
			close(fd);
			free(c);
			continue;
		}
		c->pid = cr.pid;
		c->uid = cr.uid;
		c->gid = cr.gid;
		pthread_mutex_lock(&rs->mu);
		c->no = ++rs->next_no;
		max = rs->max_clients;
		/* Connections that have not said hello yet count too, so a flood
		 * of silent ones is bounded; the answer to a client comes after its
		 * hello (closing a socket with the hello unread would reset it
		 * before the client could read why). */
		int flood = rs->nclients >= 2 * max + 16;
		pthread_mutex_unlock(&rs->mu);
		if (flood) {
			ATOMIC_ADD(&rs->n_refused, 1);
			log_warning("refused client %" PRIu64 " (pid %ld, uid %lu): %u connections are open",
			            c->no, (long)c->pid, (unsigned long)c->uid, 2 * max + 16);
			goto drop;
		}
		if (ring_epoll_add(rs, fd, (uint64_t)(uintptr_t)c, EPOLLIN | EPOLLRDHUP) < 0) {
			log_warning("client %" PRIu64 ": epoll: %s", c->no, strerror(errno));
			goto drop;
		}
		pthread_mutex_lock(&rs->mu);
		c->next = rs->clients;
		if (rs->clients)
			rs->clients->prev = c;
		rs->clients = c;
		rs->nclients++;
		pthread_mutex_unlock(&rs->mu);
		ATOMIC_ADD(&rs->n_connects, 1);
		continue;
drop:
		close(fd);
		free(c);
	}
}

/* The client's socket is readable: the hello, or (after it) a hang-up or a
 * protocol violation.  Returns 1 when the client is to be closed. */
static int ring_client_sock(struct ring_server *rs, struct ring_client *c, uint32_t events)
{
	struct rp_hello h;
	ssize_t n;

	if (c->rg) {
		/* Nothing is sent after the hello: anything is a hang-up or garbage. */
		char b;
		n = recv(c->sock, &b, 1, MSG_DONTWAIT);
		if (n > 0)
			ring_log_bad(c, "sent data on the socket after the hello");
		else if (n == 0 || (events & (EPOLLHUP | EPOLLRDHUP | EPOLLERR)))
			log_info("client %" PRIu64 " (pid %ld) disconnected", c->no, (long)c->pid);
		else if (errno == EAGAIN || errno == EINTR)
			return 0;
		return 1;
	}
	n = recv(c->sock, &h, sizeof h, MSG_DONTWAIT | MSG_TRUNC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n == 0 || n < 0)
		return 1;
	if (n != (ssize_t)sizeof h || h.magic != RP_MAGIC) {
		ring_refuse(rs, c, -EPROTO, "not a recd client: the hello has no recd magic number");
		return 1;
	}
	if (h.version != RP_VERSION || h.flags != 0) {
		ring_refuse(rs, c, -EPROTO, "protocol version mismatch: the client speaks version %" PRIu32
		            ", recd speaks version %u", h.version, RP_VERSION);
		return 1;
	}
	struct ucred cr = { c->pid, c->uid, c->gid };
	pthread_mutex_lock(&rs->mu);
	unsigned max = rs->max_clients;
	int full = rs->nadmitted >= max, stopping = rs->stopping;
	pthread_mutex_unlock(&rs->mu);
	if (stopping) {
		ring_refuse(rs, c, -ESHUTDOWN, "recd is stopping");
		return 1;
	}
	if (!ring_allowed(rs, c->sock, &cr)) {
		ring_refuse(rs, c, -EACCES, "uid %lu (gid %lu) is not in allow_users or allow_groups",
		            (unsigned long)cr.uid, (unsigned long)cr.gid);
		return 1;
	}
	if (full) {
		ring_refuse(rs, c, -EUSERS, "too many clients (max_clients = %u)", max);
		return 1;
	}
	int mfd = ring_admit(c);
	if (mfd < 0) {
		log_err("client %" PRIu64 ": setting up its shared memory: %s", c->no, strerror(-mfd));
		return 1;
	}
	if (ring_epoll_add(rs, c->bell, (uint64_t)(uintptr_t)c | 1u, EPOLLIN) < 0) {
		log_err("client %" PRIu64 ": epoll: %s", c->no, strerror(errno));
		close(mfd);
		return 1;
	}
	/* Counted before the welcome: once the client has it, it may send
	 * requests and ask recd's status, which must include it. */
	pthread_mutex_lock(&rs->mu);
	rs->nadmitted++;
	c->admitted = 1;
	pthread_mutex_unlock(&rs->mu);
	int r = ring_welcome(c, mfd);
	if (r < 0) {
		log_err("client %" PRIu64 ": sending the welcome: %s", c->no, strerror(-r));
		return 1;
	}
	log_info("client %" PRIu64 " connected (pid %ld, uid %lu)", c->no, (long)c->pid,
	         (unsigned long)c->uid);
	return 0;
}

static void *ring_io_main(void *arg)
{
	struct ring_server *rs = arg;
	struct epoll_event evs[64];

	for (;;) {
		struct ring_client *dead = NULL, *c;
		int n = epoll_wait(rs->epfd, evs, 64, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			log_err("ring: epoll_wait: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			uint64_t d = evs[i].data.u64, cnt;
			if (d == RING_TAG_LISTEN) {
				ring_accept(rs);
			} else if (d == RING_TAG_WAKE) {
				if (read(rs->wakefd, &cnt, sizeof cnt) < 0) {
				}
			} else if (d & 1u) {
				c = (struct ring_client *)(uintptr_t)(d & ~(uint64_t)1);
				if (read(c->bell, &cnt, sizeof cnt) < 0) {
				}
				pthread_mutex_lock(&rs->mu);
				ring_schedule_locked(rs, c);
				pthread_mutex_unlock(&rs->mu);
			} else {
				c = (struct ring_client *)(uintptr_t)d;
				if (c->dead)
					continue;
				if (ring_client_sock(rs, c, evs[i].events)) {
					pthread_mutex_lock(&rs->mu);
					if (ring_kill_locked(rs, c)) {
						c->next_free = dead;
						dead = c;
					}
					pthread_mutex_unlock(&rs->mu);
				}
			}
		}
		pthread_mutex_lock(&rs->mu);
		/* Clients a worker dropped (garbage) or let go after a hang-up. */
		while ((c = rs->reap)) {
			rs->reap = c->next_free;
			if (ring_kill_locked(rs, c)) {
				c->next_free = dead;
				dead = c;
			}
		}
		int quit = rs->quit;
		pthread_mutex_unlock(&rs->mu);
		/* After the whole batch, so no event of this batch names a freed client. */
		while ((c = dead)) {
			dead = c->next_free;
			ring_client_free(rs, c);
		}
		if (quit)
			break;
	}
	return NULL;
}

/* --- the socket ------------------------------------------------------------------ */

static int ring_bind(struct ring_server *rs, const char *dir, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	int r, fd;

	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		r = -errno;
		snprintf(err, errlen, "runtime_dir %s: %s", dir, strerror(-r));
		return r;
	}
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	if ((size_t)snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%s", dir, RP_SOCKET_NAME) >=
	    sizeof sa.sun_path) {
		snprintf(err, errlen, "runtime_dir %s: too long for a socket path", dir);
		return -ENAMETOOLONG;
	}
	snprintf(rs->path, sizeof rs->path, "%s", sa.sun_path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "socket: %s", strerror(-r));
		return r;
	}
	r = bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ? -errno : 0;
	if (r == -EADDRINUSE) {
		/* A socket left by a recd that died, or one that still runs: ask it. */
		struct stat sb;
		int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		int live = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0;
		if (probe >= 0)
			close(probe);
		if (live) {
			close(fd);
			snprintf(err, errlen, "%s: another recd is running there", sa.sun_path);
			return -EADDRINUSE;
		}
		if (lstat(sa.sun_path, &sb) == 0 && !S_ISSOCK(sb.st_mode)) {
			close(fd);
			snprintf(err, errlen, "%s: exists and is not a socket", sa.sun_path);
			return -EEXIST;
		}
		unlink(sa.sun_path);
		r = bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ? -errno : 0;
	}
	if (r < 0) {
		close(fd);
		snprintf(err, errlen, "%s: bind: %s", sa.sun_path, strerror(-r));
		return r;
	}
	/* Who may connect is decided by SO_PEERCRED against allow_users and
	 * allow_groups, not by the file mode: anyone may reach the socket. */
	if (chmod(sa.sun_path, 0666) < 0 || listen(fd, 128) < 0) {
		r = -errno;
		close(fd);
		unlink(sa.sun_path);
		snprintf(err, errlen, "%s: %s", sa.sun_path, strerror(-r));
		return r;
	}
	rs->lfd = fd;
	return 0;
}

/* --- life cycle -------------------------------------------------------------------- */

static void ring_set_conf_locked(struct ring_server *rs, const struct recd_conf *conf)
{
	memcpy(rs->allow_uids, conf->allow_uids, sizeof rs->allow_uids);
	rs->n_allow_uids = conf->n_allow_uids;
	memcpy(rs->allow_gids, conf->allow_gids, sizeof rs->allow_gids);
	rs->n_allow_gids = conf->n_allow_gids;
	rs->max_clients = conf->max_clients;
}

void ring_server_set_spool(struct ring_server *rs, struct spool *sp)
{
	if (rs)
		__atomic_store_n(&rs->spool, sp, __ATOMIC_RELEASE);
}

void ring_server_set_conf(struct ring_server *rs, const struct recd_conf *conf)
{
	pthread_mutex_lock(&rs->mu);
	ring_set_conf_locked(rs, conf);
	pthread_mutex_unlock(&rs->mu);
}

static int ring_worker_alloc(struct ring_worker *w)
{
	w->in = malloc(RP_MSG_MAX);
	w->out = malloc(RP_MSG_MAX);
	w->strs = malloc(RP_MSG_MAX + RP_MSG_MAX / 2);
	w->list = calloc(2 * RP_LIST_MAX, sizeof *w->list);
	w->items = calloc(RP_K_MAX, sizeof *w->items);
	w->why = calloc(RP_WHY_MAX, sizeof *w->why);
	w->scores = calloc(RP_LIST_MAX, sizeof *w->scores);
	w->evs = calloc(RP_LIST_MAX, sizeof *w->evs);
	return w->in && w->out && w->strs && w->list && w->items && w->why && w->scores && w->evs
	       ? 0 : -ENOMEM;
}

static void ring_worker_free(struct ring_worker *w)
{
	free(w->in);
	free(w->out);
	free(w->strs);
	free(w->list);
	free(w->items);
	free(w->why);
	free(w->scores);
	free(w->evs);
}

int ring_server_open(struct ring_server **out, const struct recd_conf *conf, struct serve *sv,
                     const struct ring_options *opt, char *err, size_t errlen)
{
	struct ring_server *rs;
	long ncpu;
	int r;

	if (!(rs = calloc(1, sizeof *rs))) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rs->lfd = rs->epfd = rs->wakefd = -1;
	rs->sv = sv;
	snprintf(rs->spool_dir, sizeof rs->spool_dir, "%s", conf->spool_dir);
	if (opt)
		rs->opt = *opt;
	pthread_mutex_init(&rs->mu, NULL);
	pthread_cond_init(&rs->cv, NULL);
	pthread_cond_init(&rs->idle_cv, NULL);
	ring_set_conf_locked(rs, conf);
	clock_gettime(CLOCK_MONOTONIC, &rs->started);

	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	rs->nworkers = rs->opt.workers ? rs->opt.workers : (ncpu > 0 ? (unsigned)ncpu : 1);
	if (rs->nworkers > RING_WORKERS_MAX)
		rs->nworkers = RING_WORKERS_MAX;
	if (!(rs->workers = calloc(rs->nworkers, sizeof *rs->workers))) {
		r = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (unsigned i = 0; i < rs->nworkers; i++) {
		rs->workers[i].rs = rs;
		rs->workers[i].no = i;
		if ((r = ring_worker_alloc(&rs->workers[i])) < 0) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	if ((r = ring_bind(rs, conf->runtime_dir, err, errlen)) < 0)
		goto fail;
	if ((rs->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    (rs->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		r = -errno;
		snprintf(err, errlen, "ring: %s", strerror(-r));
		goto fail;
	}
	if ((r = ring_epoll_add(rs, rs->lfd, RING_TAG_LISTEN, EPOLLIN)) < 0 ||
	    (r = ring_epoll_add(rs, rs->wakefd, RING_TAG_WAKE, EPOLLIN)) < 0) {
		snprintf(err, errlen, "ring: epoll: %s", strerror(-r));
		goto fail;
	}
	for (unsigned i = 0; i < rs->nworkers; i++) {
		if ((r = -pthread_create(&rs->workers[i].th, NULL, ring_worker_main, &rs->workers[i])) < 0) {
			snprintf(err, errlen, "starting a ring worker: %s", strerror(-r));
			/* Those started so far stop on quit. */
			pthread_mutex_lock(&rs->mu);
			rs->quit = 1;
			pthread_cond_broadcast(&rs->cv);
			pthread_mutex_unlock(&rs->mu);
			for (unsigned j = 0; j < i; j++)
				pthread_join(rs->workers[j].th, NULL);
			goto fail;
		}
	}
	if ((r = -pthread_create(&rs->io, NULL, ring_io_main, rs)) < 0) {
		snprintf(err, errlen, "starting the ring's I/O thread: %s", strerror(-r));
		pthread_mutex_lock(&rs->mu);
		rs->quit = 1;
		pthread_cond_broadcast(&rs->cv);
		pthread_mutex_unlock(&rs->mu);
		for (unsigned j = 0; j < rs->nworkers; j++)
			pthread_join(rs->workers[j].th, NULL);
		goto fail;
	}
	rs->io_started = 1;
	*out = rs;
	return 0;
fail:
	if (rs->lfd >= 0) {
		close(rs->lfd);
		unlink(rs->path);
	}
	if (rs->epfd >= 0)
		close(rs->epfd);
	if (rs->wakefd >= 0)
		close(rs->wakefd);
	for (unsigned i = 0; rs->workers && i < rs->nworkers; i++)
		ring_worker_free(&rs->workers[i]);
	free(rs->workers);
	pthread_mutex_destroy(&rs->mu);
	pthread_cond_destroy(&rs->cv);
	pthread_cond_destroy(&rs->idle_cv);
	free(rs);
	return r;
}

const char *ring_server_path(const struct ring_server *rs)
{
	return rs->path;
}

void ring_server_counters(struct ring_server *rs, struct ring_counters *o)
{
	memset(o, 0, sizeof *o);
	o->requests = ATOMIC_GET(&rs->n_requests);
	o->errors = ATOMIC_GET(&rs->n_errors);
	o->recommends = ATOMIC_GET(&rs->n_recommends);
	o->scores = ATOMIC_GET(&rs->n_scores);
	o->ingests = ATOMIC_GET(&rs->n_ingests);
	o->ingested_events = ATOMIC_GET(&rs->n_ingested);
	o->connects = ATOMIC_GET(&rs->n_connects);
	o->refused = ATOMIC_GET(&rs->n_refused);
	o->disconnects_bad = ATOMIC_GET(&rs->n_bad);
	pthread_mutex_lock(&rs->mu);
	o->clients = rs->nadmitted;
	pthread_mutex_unlock(&rs->mu);
	o->workers = rs->nworkers;
}

/* Under rs->mu: whether every request already in a ring has been answered
 * (or cannot be, because its client does not read its responses). */
static int ring_drained_locked(struct ring_server *rs)
{
	for (struct ring_client *c = rs->clients; c; c = c->next) {
		if (!c->rg)
			continue;
		if (c->busy || c->queued)
			return 0;
		if (__atomic_load_n(&c->rg->req_head, __ATOMIC_SEQ_CST) != c->req_tail)
			return 0;
	}
	return 1;
}

void ring_server_stop(struct ring_server *rs)
{
	struct timespec deadline;

	pthread_mutex_lock(&rs->mu);
	if (rs->stopping) {
		pthread_mutex_unlock(&rs->mu);
		return;
	}
	rs->stopping = 1;
	/* No new connections: the socket's name goes away now.  The descriptor
	 * stays open until the I/O thread is gone (it may be about to accept
	 * one more, which is then told that recd is stopping). */
	epoll_ctl(rs->epfd, EPOLL_CTL_DEL, rs->lfd, NULL);
	unlink(rs->path);
	/* librecd sends nothing more once it sees STOPPING; what is already in
	 * a ring is answered.  Every client is looked at once more. */
	for (struct ring_client *c = rs->clients; c; c = c->next) {
		if (!c->rg)
			continue;
		__atomic_store_n(&c->rg->state, RP_STATE_STOPPING, __ATOMIC_SEQ_CST);
		rp_futex_wake(&c->rg->resp_head);
		rp_futex_wake(&c->rg->req_tail);
		ring_schedule_locked(rs, c);
	}
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += RING_DRAIN_SEC;
	/* Workers broadcast idle_cv when they let a client go; a client that
	 * rings its doorbell in between is queued again, and waited for. */
	while (!ring_drained_locked(rs)) {
		struct timespec step;
		clock_gettime(CLOCK_REALTIME, &step);
		step.tv_nsec += 50 * 1000000;
		if (step.tv_nsec >= 1000000000) {
			step.tv_sec++;
			step.tv_nsec -= 1000000000;
		}
		if (step.tv_sec > deadline.tv_sec ||
		    (step.tv_sec == deadline.tv_sec && step.tv_nsec > deadline.tv_nsec)) {
			log_warning("stopping with requests unanswered after %d s: a client is not "
			            "reading its responses", RING_DRAIN_SEC);
			break;
		}
		/* A client blocked on a full response ring may have read since:
		 * look again. */
		for (struct ring_client *c = rs->clients; c; c = c->next)
			if (c->rg && ring_has_work(c, 0))
				ring_schedule_locked(rs, c);
		pthread_cond_timedwait(&rs->idle_cv, &rs->mu, &step);
	}
	rs->quit = 1;
	pthread_cond_broadcast(&rs->cv);
	pthread_mutex_unlock(&rs->mu);
	for (unsigned i = 0; i < rs->nworkers; i++)
		pthread_join(rs->workers[i].th, NULL);
	ring_wake_io(rs);
	if (rs->io_started)
		pthread_join(rs->io, NULL);
	rs->io_started = 0;
	close(rs->lfd);
	rs->lfd = -1;
	/* Every thread is gone: close what is left. */
	while (rs->reap) {
		struct ring_client *c = rs->reap;
		rs->reap = c->next_free;
		c->busy = 0;
		if (!c->dead)
			ring_kill_locked(rs, c);
		ring_client_free(rs, c);
	}
	while (rs->clients) {
		struct ring_client *c = rs->clients;
		c->busy = c->queued = 0;
		ring_kill_locked(rs, c);
		ring_client_free(rs, c);
	}
	log_info("request server stopped; %" PRIu64 " requests answered",
	         ATOMIC_GET(&rs->n_requests));
}

void ring_server_close(struct ring_server *rs)
{
	if (!rs)
		return;
	ring_server_stop(rs);
	close(rs->epfd);
	close(rs->wakefd);
	for (unsigned i = 0; i < rs->nworkers; i++)
		ring_worker_free(&rs->workers[i]);
	free(rs->workers);
	pthread_mutex_destroy(&rs->mu);
	pthread_cond_destroy(&rs->cv);
	pthread_cond_destroy(&rs->idle_cv);
	free(rs);
}
