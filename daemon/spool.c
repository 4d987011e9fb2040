/* spool.c: the spool directory protocol of recd-spool(5).  One thread
 * learns of new files (inotify, read through io_uring, plus a full scan at
 * start and on a timer), claims them by rename into active/, checks and
 * reads them in batches of io_uring operations and queues them on the job
 * engine; the engine's workers write results and move jobs on through
 * io_uring rings of their own.  Every file is treated as written by a
 * hostile user (Postfix's pickup): names checked, no link followed, no
 * special file opened, sizes bounded, contents copied before use. */
#define _GNU_SOURCE
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>
#include <sodium.h>

#include "daemon/jobs.h"
#include "daemon/log.h"
#include "daemon/spool.h"
#include "model/serve.h"
#include "store/store.h"

#define SPOOL_BATCH      32      /* files checked and read per batch of operations */
#define SPOOL_RING       128     /* submission queue entries of a work ring */
#define SPOOL_INFLIGHT   1024    /* jobs claimed but not ended; claiming waits above this */
#define SPOOL_INFLIGHT_BYTES (64u << 20) /* ... or above this much job text (one job always fits) */
#define SPOOL_SCAN_MAX   100000  /* names taken from one directory scan */
#define SPOOL_COMMIT_BATCH 256   /* results written in one batch of operations */
#define SPOOL_COMMIT_RING  512   /* the committer's ring */
#define SPOOL_COMMIT_WORKERS 64  /* its io-wq workers: fsyncs of a batch wait in parallel */
#define SPOOL_COMMIT_MAX   4096  /* results waiting to be written; workers wait above */
#define SPOOL_COMMIT_BYTES (256u << 20) /* ... or above this much result text (one always fits) */
#define SPOOL_COMMIT_ONE   (1u << 30) /* a larger result is written in pieces, alone */

const char *const spool_dir_names[SPOOL_NDIRS] = {
	"staging", "intake", "active", "finished", "failed", "results", "cancel",
};

enum { TAG_INOTIFY = 1, TAG_WAKE, TAG_TIMER };

struct spool {
	struct recd_conf conf;
	struct store *st;
	struct serve *sv;
	int own_sv;
	struct jobs *jobs;
	int root;                   /* spool_dir */
	int dir[SPOOL_NDIRS];
	int ino, wake;              /* inotify on intake; eventfd: stop or rescan */
	int wd_intake, wd_cancel;   /* the inotify watches */
	pthread_t thread;
	int thread_started;
	volatile int stopping;
	int inflight;               /* atomic: claimed jobs not yet ended */
	size_t inflight_bytes;      /* atomic: their job files' sizes */
	int throttled;              /* atomic: claiming waits for jobs to end */
	struct io_uring ring;       /* the spool thread's work ring */
	uid_t self;
	/* names waiting to be claimed (from inotify or a scan) */
	char **pending;
	size_t npending, cappending;
	/* results waiting for the committer thread (spool_commit) */
	pthread_mutex_t clock;
	pthread_cond_t cwork, croom;
	struct spool_result *chead, **ctail;
	size_t cn, cbytes;
	int cstop, cthread_started, clock_init;
	pthread_t cthread;
	struct io_uring cring;      /* the committer's */
};

/* A finished job's result on its way to results/. */
struct spool_result {
	struct spool_result *next;
	char id[JOBS_ID_MAX + 1];
	char tmp[JOBS_ID_MAX + 16], final[JOBS_ID_MAX + 8];
	char *data;
	size_t len;
	int from_spool;
	size_t bytes;               /* the job file's size, for the claim limit */
	int fd, wres, fsres, cres, rnres, mvres, ok;
};

/* --- io_uring helpers -------------------------------------------------- */
/* Each operation's result lands in the int its user_data points at. */
static struct io_uring_sqe *spool_sqe(struct io_uring *r, int *res)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(r);
	if (!sqe) {
		io_uring_submit(r);
		sqe = io_uring_get_sqe(r);
	}
	if (sqe)
		io_uring_sqe_set_data(sqe, res);
	return sqe;
}

/* Submits what is prepared and waits for n completions. */
static int spool_wait(struct io_uring *r, unsigned n)
{
	int rc = io_uring_submit(r);
	if (rc < 0)
		return rc;
	while (n) {
		struct io_uring_cqe *cqe;
		rc = io_uring_wait_cqe(r, &cqe);
		if (rc == -EINTR)
			continue;
		if (rc < 0)
			return rc;
		int *res = io_uring_cqe_get_data(cqe);
		if (res)
			*res = cqe->res;
		io_uring_cqe_seen(r, cqe);
		n--;
	}
	return 0;
}

/* One operation, waited for: for the rare single steps. */
#define SPOOL_ONE(ring, prep) ({                                   \
	int res_ = -ECANCELED, rc_;                                \
	struct io_uring_sqe *sqe_ = spool_sqe((ring), &res_);      \
	if (!sqe_) rc_ = -EBUSY; else {                            \
		prep;                                              \
		rc_ = spool_wait((ring), 1);                       \
	}                                                          \
	rc_ < 0 ? rc_ : res_; })

static int spool_write_all(struct io_uring *r, int fd, const char *p, size_t len)
{
	size_t off = 0;
	while (off < len) {
		size_t n = len - off > (1u << 30) ? (1u << 30) : len - off;
		int w = SPOOL_ONE(r, io_uring_prep_write(sqe_, fd, p + off, (unsigned)n, off));
		if (w == -EINTR || w == -EAGAIN)
			continue;
		if (w < 0)
			return w;
		if (w == 0)
			return -EIO;
		off += (size_t)w;
	}
	return 0;
}

/* Writes data to dir/final through dir/.final.tmp: write, fsync, close,
 * rename, fsync the folder.  Readers see the whole file or none. */
static int spool_put_file(struct io_uring *r, int dir, const char *final, const char *p, size_t len)
{
	char tmp[JOBS_ID_MAX + 32];
	int fd, rc, res[3];

	snprintf(tmp, sizeof tmp, ".%s.tmp", final);
	fd = SPOOL_ONE(r, io_uring_prep_openat(sqe_, dir, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	                                       O_NOFOLLOW | O_NOCTTY, 0640));
	if (fd < 0)
		return fd;
	rc = spool_write_all(r, fd, p, len);
	/* fsync and close in one submission: the close is linked after it. */
	struct io_uring_sqe *s1 = spool_sqe(r, &res[0]);
	io_uring_prep_fsync(s1, fd, 0);
	s1->flags |= IOSQE_IO_LINK;
	struct io_uring_sqe *s2 = spool_sqe(r, &res[1]);
	io_uring_prep_close(s2, fd);
	int w = spool_wait(r, 2);
	if (rc == 0)
		rc = w < 0 ? w : res[0] < 0 ? res[0] : 0;
	if (res[1] == -ECANCELED) /* the fsync failed, so the linked close did not run */
		close(fd);
	if (rc == 0) {
		struct io_uring_sqe *s3 = spool_sqe(r, &res[0]);
		io_uring_prep_renameat(s3, dir, tmp, dir, final, 0);
		s3->flags |= IOSQE_IO_LINK;
		struct io_uring_sqe *s4 = spool_sqe(r, &res[1]);
		io_uring_prep_fsync(s4, dir, 0);
		w = spool_wait(r, 2);
		rc = w < 0 ? w : res[0] < 0 ? res[0] : res[1] < 0 ? res[1] : 0;
	}
	if (rc < 0)
		(void)SPOOL_ONE(r, io_uring_prep_unlinkat(sqe_, dir, tmp, 0));
	return rc;
}

/* Moves a job between folders and makes the move durable. */
static int spool_move(struct io_uring *r, int from, const char *name, int to, const char *to_name)
{
	int res[2];
	struct io_uring_sqe *s1 = spool_sqe(r, &res[0]);
	io_uring_prep_renameat(s1, from, name, to, to_name, 0);
	s1->flags |= IOSQE_IO_LINK;
	struct io_uring_sqe *s2 = spool_sqe(r, &res[1]);
	io_uring_prep_fsync(s2, to, 0);
	int w = spool_wait(r, 2);
	return w < 0 ? w : res[0] < 0 ? res[0] : res[1] < 0 ? res[1] : 0;
}

/* Worker threads get a ring of their own on first use. */
static pthread_key_t spool_ring_key;
static pthread_once_t spool_ring_once = PTHREAD_ONCE_INIT;

static void spool_ring_free(void *p)
{
	io_uring_queue_exit(p);
	free(p);
}

static void spool_ring_key_init(void)
{
	(void)pthread_key_create(&spool_ring_key, spool_ring_free);
}

static struct io_uring *spool_thread_ring(void)
{
	pthread_once(&spool_ring_once, spool_ring_key_init);
	struct io_uring *r = pthread_getspecific(spool_ring_key);
	if (r)
		return r;
	if (!(r = malloc(sizeof *r)))
		return NULL;
	if (io_uring_queue_init(16, r, 0) < 0) {
		free(r);
		return NULL;
	}
	pthread_setspecific(spool_ring_key, r);
	return r;
}

/* --- failing a job --------------------------------------------------------- */
/* A name safe to print: control bytes and invalid UTF-8 as \xNN. */
static void spool_show(char *out, size_t cap, const char *s, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < n && o + 5 < cap; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c >= 0x7f || c == '\\')
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	out[o < cap ? o : cap - 1] = '\0';
}

/* failed/NAME.error, then NAME from its folder into failed/. */
static void spool_fail(struct spool *sp, struct io_uring *r, int from, const char *name,
                       const char *fail_name, const char *shown, const char *reason)
{
	char text[JOBS_WHY_MAX + 2 * JOBS_ID_MAX + 256], ename[JOBS_ID_MAX + 48];
	int n, rc;

	n = snprintf(text, sizeof text, "job: %s\nfile: %s/%s\nreason: %s\n", shown,
	             spool_dir_names[from == sp->dir[SPOOL_ACTIVE] ? SPOOL_ACTIVE : SPOOL_INTAKE], shown, reason);
	if (n < 0 || (size_t)n >= sizeof text)
		n = (int)strlen(text);
	snprintf(ename, sizeof ename, "%s.error", fail_name);
	if ((rc = spool_put_file(r, sp->dir[SPOOL_FAILED], ename, text, (size_t)n)) < 0)
		log_err("spool: %s: writing failed/%s: %s", shown, ename, strerror(-rc));
	if ((rc = spool_move(r, from, name, sp->dir[SPOOL_FAILED], fail_name)) < 0 && rc != -ENOENT)
		log_err("spool: %s: moving it to failed/: %s", shown, strerror(-rc));
	log_notice("spool: job %s failed: %s", shown, reason);
}

/* --- the engine's end of a job -------------------------------------------- */
/* A spool job has ended and its files are where they stay. */
static void spool_release(struct spool *sp, int from_spool, size_t bytes)
{
	if (!from_spool)
		return;
	__atomic_fetch_sub(&sp->inflight_bytes, bytes, __ATOMIC_SEQ_CST);
	__atomic_fetch_sub(&sp->inflight, 1, __ATOMIC_SEQ_CST);
	if (__atomic_exchange_n(&sp->throttled, 0, __ATOMIC_SEQ_CST)) {
		uint64_t one = 1;   /* claiming had paused: look at intake again */
		(void)!write(sp->wake, &one, sizeof one);
	}
}

/* A result that could not be written: the spool job goes to failed/; a ring
 * job's client reads the reason from failed/ID.error. */
static void spool_result_failed(struct spool *sp, struct io_uring *r, const char *id, int from_spool,
                                const char *rname, int rc)
{
	char why2[256];
	snprintf(why2, sizeof why2, "writing results/%s: %s", rname, strerror(-rc));
	if (from_spool) {
		spool_fail(sp, r, sp->dir[SPOOL_ACTIVE], id, id, id, why2);
	} else {
		char ename[JOBS_ID_MAX + 8], text[JOBS_WHY_MAX + 64 + sizeof why2];
		int n = snprintf(text, sizeof text, "job: %s\nreason: %s\n", id, why2);
		snprintf(ename, sizeof ename, "%s.error", id);
		(void)spool_put_file(r, sp->dir[SPOOL_FAILED], ename, text, (size_t)n);
		log_err("spool: job %s: %s", id, why2);
	}
}

/* One result written by itself: the path of a result too large for a
 * batch, or one whose batched write failed (it is tried once more). */
static void spool_result_one(struct spool *sp, struct io_uring *r, const char *id, int from_spool,
                             const char *p, size_t len)
{
	char rname[JOBS_ID_MAX + 8];
	int rc;
	snprintf(rname, sizeof rname, "%s.jsonl", id);
	if ((rc = spool_put_file(r, sp->dir[SPOOL_RESULTS], rname, p ? p : "", len)) < 0) {
		spool_result_failed(sp, r, id, from_spool, rname, rc);
		return;
	}
	if (from_spool && (rc = spool_move(r, sp->dir[SPOOL_ACTIVE], id, sp->dir[SPOOL_FINISHED], id)) < 0)
		log_err("spool: %s: moving it to finished/: %s", id, strerror(-rc));
	log_info("spool: job %s done (%zu bytes of results)", id, len);
}

/* The committer: writes the results pending in one batch of io_uring
 * operations.  Each file goes to a temporary name, is written, fsynced,
 * closed and renamed into place (linked operations: the rename runs only
 * after the fsync succeeded); then one fsync of results/ for the batch; then
 * the spool jobs move from active/ to finished/ and one fsync of finished/.
 * So, as when each job was written alone, a result is never visible before
 * its data is durable and a job reaches finished/ only after its result is
 * durable; the file system's journal commits a batch's fsyncs together. */
static void spool_commit(struct spool *sp, struct spool_result **v, size_t n)
{
	struct io_uring *r = &sp->cring;
	unsigned waits = 0;
	int rc, dres = 0, any = 0;

	/* 1. open the temporary files */
	for (size_t i = 0; i < n; i++) {
		struct spool_result *x = v[i];
		snprintf(x->final, sizeof x->final, "%s.jsonl", x->id);
		snprintf(x->tmp, sizeof x->tmp, ".%s.tmp", x->final);
		x->fd = -1;
		x->ok = 0;
		x->wres = x->fsres = x->cres = x->rnres = x->mvres = -ECANCELED;
		if (x->len > SPOOL_COMMIT_ONE)
			continue;
		io_uring_prep_openat(spool_sqe(r, &x->fd), sp->dir[SPOOL_RESULTS], x->tmp,
		                     O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0640);
		waits++;
	}
	if ((rc = spool_wait(r, waits)) < 0)
		goto fallback;
	/* 2. write */
	waits = 0;
	for (size_t i = 0; i < n; i++) {
		struct spool_result *x = v[i];
		if (x->fd < 0)
			continue;
		io_uring_prep_write(spool_sqe(r, &x->wres), x->fd, x->data ? x->data : "", (unsigned)x->len, 0);
		waits++;
	}
	if ((rc = spool_wait(r, waits)) < 0)
		goto fallback;
	/* 3. fsync (in parallel: SPOOL_COMMIT_WORKERS) */
	waits = 0;
	for (size_t i = 0; i < n; i++) {
		struct spool_result *x = v[i];
		if (x->fd < 0 || x->wres != (int)x->len)
			continue;
		io_uring_prep_fsync(spool_sqe(r, &x->fsres), x->fd, 0);
		waits++;
	}
	if ((rc = spool_wait(r, waits)) < 0)
		goto fallback;
	/* 4. close; rename into place what was made durable */
	waits = 0;
	for (size_t i = 0; i < n; i++) {
		struct spool_result *x = v[i];
		if (x->fd < 0)
			continue;
		io_uring_prep_close(spool_sqe(r, &x->cres), x->fd);
		waits++;
	}
	if ((rc = spool_wait(r, waits)) < 0)
		goto fallback;
	waits = 0;
	for (size_t i = 0; i < n; i++) {
		struct spool_result *x = v[i];
		if (x->fd < 0 || x->fsres != 0 || x->cres != 0)
			continue;
		io_uring_prep_renameat(spool_sqe(r, &x->rnres), sp->dir[SPOOL_RESULTS], x->tmp, sp->dir[SPOOL_RESULTS],
		                       x->final, 0);
		waits++;
	}
	if ((rc = spool_wait(r, waits)) < 0)
		goto fallback;
	for (size_t i = 0; i < n; i++) {
		struct spool_result *x = v[i];
		if (x->fd < 0)
			continue;
		if (x->cres < 0)
			log_warning("spool: %s: closing %s: %s", x->id, x->tmp, strerror(-x->cres));
		x->fd = -1;
		x->ok = x->wres == (int)x->len && x->fsres == 0 && x->cres == 0 && x->rnres == 0;
		if (!x->ok && x->rnres != 0)
			(void)unlinkat(sp->dir[SPOOL_RESULTS], x->tmp, 0);
		any |= x->ok;
	}
	/* 5. the renames made durable */
	if (any) {
		dres = SPOOL_ONE(r, io_uring_prep_fsync(sqe_, sp->dir[SPOOL_RESULTS], 0));
		if (dres < 0) {
			log_err("spool: fsync of results/: %s", strerror(-dres));
			for (size_t i = 0; i < n; i++)
				v[i]->ok = 0;
		}
	}
	/* 6. the spool jobs into finished/, made durable */
	waits = 0;
	any = 0;
	for (size_t i = 0; i < n; i++) {
		struct spool_result *x = v[i];
		if (!x->ok || !x->from_spool)
			continue;
		io_uring_prep_renameat(spool_sqe(r, &x->mvres), sp->dir[SPOOL_ACTIVE], x->id, sp->dir[SPOOL_FINISHED],
		                       x->id, 0);
		waits++;
	}
	if (waits && (rc = spool_wait(r, waits)) < 0)
		goto fallback;
	for (size_t i = 0; i < n; i++) {
		struct spool_result *x = v[i];
		if (!x->ok || !x->from_spool)
			continue;
		if (x->mvres < 0)
			log_err("spool: %s: moving it to finished/: %s", x->id, strerror(-x->mvres));
		else
			any = 1;
	}
	if (any && (dres = SPOOL_ONE(r, io_uring_prep_fsync(sqe_, sp->dir[SPOOL_FINISHED], 0))) < 0)
		log_err("spool: fsync of finished/: %s (a restart finishes the moves again)", strerror(-dres));
	rc = 0;
fallback:
	if (rc < 0)
		log_err("spool: writing a batch of results: %s; writing them one by one", strerror(-rc));
	for (size_t i = 0; i < n; i++) {
		struct spool_result *x = v[i];
		if (rc < 0 && x->fd >= 0 && x->cres == -ECANCELED)   /* opened, not closed */
			close(x->fd);
		if (rc < 0 || !x->ok) {
			struct io_uring *wr = spool_thread_ring();
			if (wr)
				spool_result_one(sp, wr, x->id, x->from_spool, x->data, x->len);
			else
				log_err("spool: %s: no io_uring to write its result; the job stays in active/", x->id);
		} else {
			log_info("spool: job %s done (%zu bytes of results)", x->id, x->len);
		}
		jobs_ended(sp->jobs, x->id);
		spool_release(sp, x->from_spool, x->bytes);
		free(x->data);
		free(x);
	}
}

static void *spool_committer(void *arg)
{
	struct spool *sp = arg;
	struct spool_result *v[SPOOL_COMMIT_BATCH];

	/* A batch's fsyncs wait together for the journal's commit, each in an
	 * io-wq worker: more workers than io_uring's default of 4 a CPU for file
	 * work (the fsyncs would take turns; measured with bench/run spool,
	 * 64 did better than 8 and than 256).  The limit is the submitting
	 * thread's, so it is set here. */
	unsigned wq[2] = { SPOOL_COMMIT_WORKERS, SPOOL_COMMIT_WORKERS };
	int rc = io_uring_register_iowq_max_workers(&sp->cring, wq);
	if (rc < 0)
		log_warning("spool: io_uring workers for results: %s; results are written more slowly",
		            strerror(-rc));
	pthread_mutex_lock(&sp->clock);
	for (;;) {
		while (!sp->chead && !sp->cstop)
			pthread_cond_wait(&sp->cwork, &sp->clock);
		if (!sp->chead)
			break;
		size_t n = 0;
		while (sp->chead && n < SPOOL_COMMIT_BATCH) {
			sp->cbytes -= sp->chead->len;
			v[n++] = sp->chead;
			sp->chead = sp->chead->next;
		}
		if (!sp->chead)
			sp->ctail = &sp->chead;
		sp->cn -= n;
		pthread_cond_broadcast(&sp->croom);
		pthread_mutex_unlock(&sp->clock);
		spool_commit(sp, v, n);
		pthread_mutex_lock(&sp->clock);
	}
	pthread_mutex_unlock(&sp->clock);
	return NULL;
}

/* Hands a done job's result to the committer (taking its buffer): 0, or
 * -ENOMEM / -ESHUTDOWN when the caller must write it itself. */
static int spool_hand_over(struct spool *sp, const char *id, struct jobs_buf *result, int from_spool,
                           size_t bytes)
{
	struct spool_result *x;
	if (!sp->cthread_started || !(x = calloc(1, sizeof *x)))
		return -ENOMEM;
	snprintf(x->id, sizeof x->id, "%s", id);
	x->from_spool = from_spool;
	x->bytes = bytes;
	pthread_mutex_lock(&sp->clock);
	while ((sp->cn >= SPOOL_COMMIT_MAX || (sp->cn && sp->cbytes + result->len > SPOOL_COMMIT_BYTES)) &&
	       !sp->cstop)
		pthread_cond_wait(&sp->croom, &sp->clock);
	if (sp->cstop) {
		pthread_mutex_unlock(&sp->clock);
		free(x);
		return -ESHUTDOWN;
	}
	x->data = result->p;
	x->len = result->len;
	sp->cbytes += x->len;
	result->p = NULL;
	result->len = result->cap = 0;
	*sp->ctail = x;
	sp->ctail = &x->next;
	sp->cn++;
	pthread_cond_signal(&sp->cwork);
	pthread_mutex_unlock(&sp->clock);
	return 0;
}

static int spool_done(void *arg, struct jobs_job *j, void *origin, enum jobs_state state,
                      struct jobs_buf *result, const char *why)
{
	struct spool *sp = arg;
	struct io_uring *r = NULL;
	const char *id = jobs_job_id(j);
	int from_spool = origin != NULL;
	size_t bytes = 0;

	if (from_spool) {
		bytes = *(size_t *)origin;   /* the job file's size, for the claim limit */
		free(origin);
	}

	/* A job cut short by the stop stays in active/ and runs again. */
	if (state == JOBS_CANCELLED && sp->stopping)
		goto out;
	if (state == JOBS_DONE && spool_hand_over(sp, id, result, from_spool, bytes) == 0)
		return JOBS_DONE_LATER;
	if (!(r = spool_thread_ring())) {
		log_err("spool: %s: no io_uring for the worker; the job stays in active/", id);
		goto out;
	}
	if (state == JOBS_DONE) {
		spool_result_one(sp, r, id, from_spool, result->p, result->len);
	} else if (from_spool) {
		spool_fail(sp, r, sp->dir[SPOOL_ACTIVE], id, id, id, why && *why ? why : jobs_state_name(state));
	} else {
		char ename[JOBS_ID_MAX + 8], text[JOBS_WHY_MAX + 64];
		int n = snprintf(text, sizeof text, "job: %s\nreason: %s\n", id, why && *why ? why : jobs_state_name(state));
		snprintf(ename, sizeof ename, "%s.error", id);
		(void)spool_put_file(r, sp->dir[SPOOL_FAILED], ename, text, (size_t)n);
	}
out:
	spool_release(sp, from_spool, bytes);
	return 0;
}

/* --- owners ------------------------------------------------------------- */
static int spool_owner_ok(struct spool *sp, uid_t uid, gid_t gid)
{
	if (uid == 0 || uid == sp->self)
		return 1;
	for (size_t i = 0; i < sp->conf.n_allow_uids; i++)
		if (sp->conf.allow_uids[i] == uid)
			return 1;
	if (!sp->conf.n_allow_gids)
		return 0;
	/* The owner's groups, not the file's group: staging is setgid, so every
	 * file there has the spool's group whoever wrote it. */
	(void)gid;
	struct passwd pw, *res = NULL;
	char buf[4096];
	gid_t groups[256];
	int ng = 256;
	if (getpwuid_r(uid, &pw, buf, sizeof buf, &res) != 0 || !res)
		return 0;
	if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &ng) < 0)
		ng = 256;
	for (int g = 0; g < ng; g++)
		for (size_t i = 0; i < sp->conf.n_allow_gids; i++)
			if (groups[g] == sp->conf.allow_gids[i])
				return 1;
	return 0;
}

static const char *spool_kind(mode_t m)
{
	if (S_ISLNK(m))  return "a symbolic link";
	if (S_ISFIFO(m)) return "a fifo";
	if (S_ISCHR(m))  return "a character device";
	if (S_ISBLK(m))  return "a block device";
	if (S_ISDIR(m))  return "a directory";
	if (S_ISSOCK(m)) return "a socket";
	return "not a regular file";
}

/* Signed jobs: their ID is remembered in the store when first accepted, so
 * the same signed file dropped in again is refused as a replay. */
static int spool_remember_fn(struct store_txn *tx, void *arg)
{
	const uint8_t *key = arg;
	struct store_import_progress p;
	int r = store_import_get(tx, key, &p);
	if (r == 0)
		return -EEXIST;
	if (r != -ENOENT)
		return r;
	memset(&p, 0, sizeof p);
	p.complete = 1;
	return store_import_put(tx, key, &p);
}

static int spool_remember(struct spool *sp, const uint8_t key[32])
{
	return store_write(sp->st, spool_remember_fn, (void *)key);
}

/* --- claiming and reading ------------------------------------------------- */
struct spool_item {
	char name[JOBS_ID_MAX + 1];
	int recovering;            /* found in active/ at start */
	int claim, st_res, fin_res, resfile_res, fd, fst_res, close_res;
	struct statx stx, fin_stx, res_stx, fstx;
	char *buf;
	size_t len;
	int skip;                  /* nothing more to do for it */
};

static void spool_bad_name(struct spool *sp, const char *name, const char *why)
{
	char shown[4 * 256 + 1], fname[64], reason[JOBS_WHY_MAX];
	uint8_t h[8];
	size_t n = strlen(name);

	crypto_generichash(h, sizeof h, (const unsigned char *)name, n, NULL, 0);
	snprintf(fname, sizeof fname, "badname-%02x%02x%02x%02x%02x%02x%02x%02x", h[0], h[1], h[2], h[3],
	         h[4], h[5], h[6], h[7]);
	spool_show(shown, sizeof shown, name, n);
	snprintf(reason, sizeof reason, "file name: %.400s", why);
	spool_fail(sp, &sp->ring, sp->dir[SPOOL_INTAKE], name, fname, shown, reason);
}

static void spool_process(struct spool *sp, struct spool_item *it, size_t n)
{
	const uint64_t max = sp->conf.spool_max_job_size;
	unsigned waits;
	char why[JOBS_WHY_MAX];

	/* 1. claim: rename into active/, never over a job already there */
	waits = 0;
	for (size_t i = 0; i < n; i++) {
		it[i].fd = -1;
		if (it[i].recovering)
			continue;
		struct io_uring_sqe *s = spool_sqe(&sp->ring, &it[i].claim);
		io_uring_prep_renameat(s, sp->dir[SPOOL_INTAKE], it[i].name, sp->dir[SPOOL_ACTIVE], it[i].name,
		                       RENAME_NOREPLACE);
		waits++;
	}
	if (spool_wait(&sp->ring, waits) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		if (it[i].recovering || it[i].claim == 0)
			continue;
		it[i].skip = 1;
		if (it[i].claim == -EEXIST)
			log_warning("spool: %s: a job of that name is running; it waits in intake/", it[i].name);
		else if (it[i].claim != -ENOENT)
			log_err("spool: %s: claiming it: %s", it[i].name, strerror(-it[i].claim));
	}
	/* 2. what it is (without following a link), and whether its ID is used */
	waits = 0;
	for (size_t i = 0; i < n; i++) {
		if (it[i].skip)
			continue;
		char rname[JOBS_ID_MAX + 8];
		snprintf(rname, sizeof rname, "%s.jsonl", it[i].name);
		io_uring_prep_statx(spool_sqe(&sp->ring, &it[i].st_res), sp->dir[SPOOL_ACTIVE], it[i].name,
		                    AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &it[i].stx);
		io_uring_prep_statx(spool_sqe(&sp->ring, &it[i].fin_res), sp->dir[SPOOL_FINISHED], it[i].name,
		                    AT_SYMLINK_NOFOLLOW, STATX_TYPE, &it[i].fin_stx);
		/* The kernel copies a statx path when the operation is submitted,
		 * and rname is reused by the next iteration: submit now. */
		io_uring_prep_statx(spool_sqe(&sp->ring, &it[i].resfile_res), sp->dir[SPOOL_RESULTS], rname,
		                    AT_SYMLINK_NOFOLLOW, STATX_TYPE, &it[i].res_stx);
		io_uring_submit(&sp->ring);
		waits += 3;
	}
	if (spool_wait(&sp->ring, waits) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		if (it[i].skip)
			continue;
		const struct statx *x = &it[i].stx;
		if (it[i].st_res < 0) {
			if (it[i].st_res != -ENOENT)
				log_err("spool: %s: statx: %s", it[i].name, strerror(-it[i].st_res));
			it[i].skip = 1;
			continue;
		}
		why[0] = '\0';
		if (!S_ISREG(x->stx_mode))
			snprintf(why, sizeof why, "file: %s, not a regular file", spool_kind(x->stx_mode));
		else if (x->stx_nlink != 1)
			snprintf(why, sizeof why, "file: has %u hard links (a job file must have exactly one)",
			         (unsigned)x->stx_nlink);
		else if (x->stx_size > max)
			snprintf(why, sizeof why, "file: %" PRIu64 " bytes, larger than spool_max_job_size (%" PRIu64 ")",
			         (uint64_t)x->stx_size, max);
		else if (!spool_owner_ok(sp, x->stx_uid, x->stx_gid))
			snprintf(why, sizeof why, "file: owner uid %u is not allowed to submit jobs "
			         "(allow_users, allow_groups)", (unsigned)x->stx_uid);
		else if (it[i].fin_res == 0)
			snprintf(why, sizeof why, "id: job ID already used (finished/%s exists)", it[i].name);
		else if (it[i].resfile_res == 0 && !it[i].recovering)
			snprintf(why, sizeof why, "id: job ID already used (results/%s.jsonl exists)", it[i].name);
		if (why[0]) {
			spool_fail(sp, &sp->ring, sp->dir[SPOOL_ACTIVE], it[i].name, it[i].name, it[i].name, why);
			it[i].skip = 1;
		} else if (it[i].resfile_res == 0) {
			/* Recovery: the result was complete (it is renamed into
			 * place whole) when recd stopped; only the move was left. */
			int rc = spool_move(&sp->ring, sp->dir[SPOOL_ACTIVE], it[i].name, sp->dir[SPOOL_FINISHED],
			                    it[i].name);
			if (rc < 0)
				log_err("spool: %s: moving it to finished/: %s", it[i].name, strerror(-rc));
			else
				log_info("spool: job %s had finished before the restart", it[i].name);
			it[i].skip = 1;
		}
	}
	/* 3. open: no link followed, no blocking on a fifo swapped in since */
	waits = 0;
	for (size_t i = 0; i < n; i++) {
		if (it[i].skip)
			continue;
		io_uring_prep_openat(spool_sqe(&sp->ring, &it[i].fd), sp->dir[SPOOL_ACTIVE], it[i].name,
		                     O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, 0);
		waits++;
	}
	if (spool_wait(&sp->ring, waits) < 0)
		return;
	/* 4. the open file is the file that was checked */
	waits = 0;
	for (size_t i = 0; i < n; i++) {
		if (it[i].skip)
			continue;
		if (it[i].fd < 0) {
			snprintf(why, sizeof why, "file: cannot open: %s", strerror(-it[i].fd));
			spool_fail(sp, &sp->ring, sp->dir[SPOOL_ACTIVE], it[i].name, it[i].name, it[i].name, why);
			it[i].skip = 1;
			it[i].fd = -1;
			continue;
		}
		io_uring_prep_statx(spool_sqe(&sp->ring, &it[i].fst_res), it[i].fd, "", AT_EMPTY_PATH,
		                    STATX_BASIC_STATS, &it[i].fstx);
		waits++;
	}
	if (spool_wait(&sp->ring, waits) < 0)
		goto close;
	for (size_t i = 0; i < n; i++) {
		if (it[i].skip)
			continue;
		const struct statx *a = &it[i].stx, *b = &it[i].fstx;
		if (it[i].fst_res < 0 || !S_ISREG(b->stx_mode) || b->stx_ino != a->stx_ino ||
		    b->stx_dev_major != a->stx_dev_major || b->stx_dev_minor != a->stx_dev_minor ||
		    b->stx_nlink != 1 || b->stx_size > max) {
			spool_fail(sp, &sp->ring, sp->dir[SPOOL_ACTIVE], it[i].name, it[i].name, it[i].name,
			           "file: changed between its check and its opening");
			it[i].skip = 1;
			continue;
		}
		/* One byte more than allowed: a file that grew is caught. */
		it[i].len = (size_t)b->stx_size;
		if (!(it[i].buf = malloc(it[i].len + 2))) {
			it[i].skip = 1;
			continue;
		}
	}
	/* 5. read, resubmitting short reads until end of file */
	{
		size_t got[SPOOL_BATCH] = { 0 };
		int done[SPOOL_BATCH] = { 0 }, res[SPOOL_BATCH];
		for (;;) {
			waits = 0;
			for (size_t i = 0; i < n; i++) {
				if (it[i].skip || done[i])
					continue;
				size_t cap = it[i].len + 1;   /* expect EOF at len */
				io_uring_prep_read(spool_sqe(&sp->ring, &res[i]), it[i].fd, it[i].buf + got[i],
				                   (unsigned)(cap + 1 - got[i]), got[i]);
				waits++;
			}
			if (!waits)
				break;
			if (spool_wait(&sp->ring, waits) < 0)
				goto close;
			for (size_t i = 0; i < n; i++) {
				if (it[i].skip || done[i])
					continue;
				if (res[i] == -EINTR || res[i] == -EAGAIN)
					continue;
				if (res[i] < 0) {
					snprintf(why, sizeof why, "file: read: %s", strerror(-res[i]));
					spool_fail(sp, &sp->ring, sp->dir[SPOOL_ACTIVE], it[i].name, it[i].name,
					           it[i].name, why);
					it[i].skip = 1;
					continue;
				}
				size_t asked = it[i].len + 2 - got[i];
				got[i] += (size_t)res[i];
				if (got[i] > max || got[i] > it[i].len) {
					spool_fail(sp, &sp->ring, sp->dir[SPOOL_ACTIVE], it[i].name, it[i].name,
					           it[i].name, "file: grew while it was read");
					it[i].skip = 1;
				} else if (res[i] == 0 || ((size_t)res[i] < asked && got[i] == it[i].len)) {
					/* end of file: nothing more, or a regular file's
					 * short read that stopped at its checked size */
					done[i] = 1;
					it[i].len = got[i];
				}
			}
		}
	}
close:
	/* 6. close */
	waits = 0;
	for (size_t i = 0; i < n; i++) {
		if (it[i].fd < 0)
			continue;
		io_uring_prep_close(spool_sqe(&sp->ring, &it[i].close_res), it[i].fd);
		it[i].fd = -1;
		waits++;
	}
	(void)spool_wait(&sp->ring, waits);
	/* 7. parse (and check the signature), queue */
	struct jobs_sig_policy pol = {
		sp->conf.spool_require_signature, sp->conf.spool_trusted_keys,
		sp->conf.spool_signature_max_age, 0,
	};
	for (size_t i = 0; i < n; i++) {
		struct jobs_job *j = NULL;
		int r;
		if (it[i].skip || !it[i].buf)
			goto next;
		r = jobs_parse(it[i].buf, it[i].len, it[i].name, &pol, &j, why, sizeof why);
		if (r == -ENOMEM) {
			log_err("spool: %s: out of memory; it stays in active/", it[i].name);
			goto next;
		}
		if (r < 0) {
			spool_fail(sp, &sp->ring, sp->dir[SPOOL_ACTIVE], it[i].name, it[i].name, it[i].name, why);
			goto next;
		}
		uint8_t key[32];
		if (jobs_job_seen_key(j, key) == 0 && !it[i].recovering) {
			r = spool_remember(sp, key);
			if (r == -EEXIST) {
				jobs_job_free(j);
				spool_fail(sp, &sp->ring, sp->dir[SPOOL_ACTIVE], it[i].name, it[i].name, it[i].name,
				           "id: replayed: a signed job with this ID was accepted before");
				goto next;
			}
			if (r < 0) {
				jobs_job_free(j);
				log_err("spool: %s: remembering its ID: %s; it stays in active/", it[i].name,
				        store_errmsg(sp->st));
				goto next;
			}
		}
		size_t *origin = malloc(sizeof *origin);
		if (!origin) {
			jobs_job_free(j);
			log_err("spool: %s: out of memory; it stays in active/", it[i].name);
			goto next;
		}
		*origin = it[i].len;
		__atomic_fetch_add(&sp->inflight, 1, __ATOMIC_SEQ_CST);
		__atomic_fetch_add(&sp->inflight_bytes, it[i].len, __ATOMIC_SEQ_CST);
		if ((r = jobs_enqueue(sp->jobs, j, JOBS_PRIO_BULK, origin)) < 0) {
			__atomic_fetch_sub(&sp->inflight, 1, __ATOMIC_SEQ_CST);
			__atomic_fetch_sub(&sp->inflight_bytes, it[i].len, __ATOMIC_SEQ_CST);
			free(origin);
			log_err("spool: %s: queueing: %s; it stays in active/", it[i].name, strerror(-r));
		} else {
			log_debug("spool: job %s queued", it[i].name);
		}
next:
		free(it[i].buf);
		it[i].buf = NULL;
	}
}

/* --- finding work ----------------------------------------------------------- */
static int spool_pending_add(struct spool *sp, const char *name)
{
	if (sp->npending >= SPOOL_SCAN_MAX)
		return -E2BIG;
	for (size_t i = 0; i < sp->npending; i++)
		if (strcmp(sp->pending[i], name) == 0)
			return 0;
	if (sp->npending == sp->cappending) {
		size_t nc = sp->cappending ? sp->cappending * 2 : 256;
		char **np = realloc(sp->pending, nc * sizeof *np);
		if (!np)
			return -ENOMEM;
		sp->pending = np;
		sp->cappending = nc;
	}
	if (!(sp->pending[sp->npending] = strdup(name)))
		return -ENOMEM;
	sp->npending++;
	return 0;
}

/* The names in a folder (readdir: there is no io_uring getdents). */
static int spool_list(int dirfd, int (*fn)(struct spool *sp, const char *name), struct spool *sp)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		int r = -errno;
		close(fd);
		return r;
	}
	struct dirent *de;
	int r = 0;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if ((r = fn(sp, de->d_name)) < 0)
			break;
	}
	closedir(d);
	return r;
}

static int spool_scan_one(struct spool *sp, const char *name)
{
	return spool_pending_add(sp, name);
}

/* Runs what is pending, a batch at a time, while the engine has room. */
static void spool_drain(struct spool *sp)
{
	struct spool_item *it = calloc(SPOOL_BATCH, sizeof *it);
	char why[JOBS_WHY_MAX];
	size_t done = 0;

	if (!it)
		return;
	while (done < sp->npending && !sp->stopping) {
		int n_in = __atomic_load_n(&sp->inflight, __ATOMIC_SEQ_CST);
		if (n_in >= SPOOL_INFLIGHT ||
		    (n_in && __atomic_load_n(&sp->inflight_bytes, __ATOMIC_SEQ_CST) >= SPOOL_INFLIGHT_BYTES)) {
			__atomic_store_n(&sp->throttled, 1, __ATOMIC_SEQ_CST);
			/* a job may have ended between the check and the flag */
			if (__atomic_load_n(&sp->inflight, __ATOMIC_SEQ_CST) < n_in)
				continue;
			break;
		}
		size_t n = 0;
		while (done < sp->npending && n < SPOOL_BATCH) {
			const char *name = sp->pending[done++];
			if (jobs_name_check(name, strlen(name), why, sizeof why) < 0) {
				spool_bad_name(sp, name, why);
				continue;
			}
			memset(&it[n], 0, sizeof it[n]);
			snprintf(it[n].name, sizeof it[n].name, "%s", name);
			n++;
		}
		if (n)
			spool_process(sp, it, n);
	}
	for (size_t i = 0; i < done; i++)
		free(sp->pending[i]);
	if (done)
		memmove(sp->pending, sp->pending + done, (sp->npending - done) * sizeof *sp->pending);
	sp->npending -= done;
	free(it);
}

static void spool_scan(struct spool *sp)
{
	int r = spool_list(sp->dir[SPOOL_INTAKE], spool_scan_one, sp);
	if (r < 0 && r != -E2BIG)
		log_err("spool: scanning intake/: %s", strerror(-r));
	spool_drain(sp);
}

/* Jobs a crash left in active/ run again, before anything new. */
static struct spool_item *spool_recover_items;
static size_t spool_recover_n;

static int spool_recover_one(struct spool *sp, const char *name)
{
	char why[JOBS_WHY_MAX];
	if (jobs_name_check(name, strlen(name), why, sizeof why) < 0) {
		/* Only recd writes active/: a bad name there is not a job. */
		log_warning("spool: active/: ignoring '%s': %s", name, why);
		return 0;
	}
	struct spool_item *it = &spool_recover_items[spool_recover_n++];
	memset(it, 0, sizeof *it);
	snprintf(it->name, sizeof it->name, "%s", name);
	it->recovering = 1;
	if (spool_recover_n == SPOOL_BATCH) {
		spool_process(sp, spool_recover_items, spool_recover_n);
		spool_recover_n = 0;
	}
	return 0;
}

/* Temporary files of a write that a crash cut short: never visible under
 * a real name, removed at start. */
static int spool_tmp_dir;

static int spool_tmp_one(struct spool *sp, const char *name)
{
	size_t n = strlen(name);
	if (name[0] != '.' || n < 5 || strcmp(name + n - 4, ".tmp") != 0)
		return 0;
	int r = SPOOL_ONE(&sp->ring, io_uring_prep_unlinkat(sqe_, sp->dir[spool_tmp_dir], name, 0));
	if (r < 0 && r != -ENOENT)
		log_warning("spool: removing %s/%s: %s", spool_dir_names[spool_tmp_dir], name, strerror(-r));
	else
		log_info("spool: removed %s/%s, left by an interrupted write", spool_dir_names[spool_tmp_dir], name);
	return 0;
}

static void spool_recover(struct spool *sp)
{
	struct spool_item items[SPOOL_BATCH];
	spool_tmp_dir = SPOOL_RESULTS;
	(void)spool_list(sp->dir[SPOOL_RESULTS], spool_tmp_one, sp);
	spool_tmp_dir = SPOOL_FAILED;
	(void)spool_list(sp->dir[SPOOL_FAILED], spool_tmp_one, sp);
	spool_recover_items = items;
	spool_recover_n = 0;
	int r = spool_list(sp->dir[SPOOL_ACTIVE], spool_recover_one, sp);
	if (r < 0)
		log_err("spool: scanning active/: %s", strerror(-r));
	if (spool_recover_n)
		spool_process(sp, items, spool_recover_n);
	spool_recover_items = NULL;
}

/* Staging files older than spool_stale_age: a producer that died midway. */
struct spool_stale {
	char name[NAME_MAX + 1];
	struct statx stx;
	int res, unl;
};
static struct spool_stale *spool_stale_v;
static size_t spool_stale_n;

static int spool_stale_one(struct spool *sp, const char *name)
{
	(void)sp;
	if (spool_stale_n == 256)
		return -E2BIG;
	snprintf(spool_stale_v[spool_stale_n++].name, NAME_MAX + 1, "%s", name);
	return 0;
}

static void spool_clean_staging(struct spool *sp)
{
	struct spool_stale *v;
	unsigned waits = 0;
	int64_t now = (int64_t)time(NULL);

	if (!sp->conf.spool_stale_age || !(v = calloc(256, sizeof *v)))
		return;
	spool_stale_v = v;
	spool_stale_n = 0;
	(void)spool_list(sp->dir[SPOOL_STAGING], spool_stale_one, sp);
	for (size_t i = 0; i < spool_stale_n; i++) {
		io_uring_prep_statx(spool_sqe(&sp->ring, &v[i].res), sp->dir[SPOOL_STAGING], v[i].name,
		                    AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &v[i].stx);
		io_uring_submit(&sp->ring);
		waits++;
	}
	(void)spool_wait(&sp->ring, waits);
	waits = 0;
	for (size_t i = 0; i < spool_stale_n; i++) {
		if (v[i].res < 0 || now - v[i].stx.stx_mtime.tv_sec < (int64_t)sp->conf.spool_stale_age)
			continue;
		io_uring_prep_unlinkat(spool_sqe(&sp->ring, &v[i].unl), sp->dir[SPOOL_STAGING], v[i].name,
		                       S_ISDIR(v[i].stx.stx_mode) ? AT_REMOVEDIR : 0);
		io_uring_submit(&sp->ring);
		waits++;
	}
	(void)spool_wait(&sp->ring, waits);
	for (size_t i = 0; i < spool_stale_n; i++)
		if (v[i].unl == 0 && v[i].res == 0 &&
		    now - v[i].stx.stx_mtime.tv_sec >= (int64_t)sp->conf.spool_stale_age)
			log_info("spool: removed staging/%s, older than %u s", v[i].name, sp->conf.spool_stale_age);
	spool_stale_v = NULL;
	free(v);
}

/* cancel/ID: ask the engine to stop job ID, then remove the request (it
 * is acted on once; a job not queued or running is not affected). */
static int spool_cancel_one(struct spool *sp, const char *name)
{
	char why[JOBS_WHY_MAX];
	int r = -EINVAL;
	if (jobs_name_check(name, strlen(name), why, sizeof why) == 0) {
		r = jobs_cancel(sp->jobs, name);
		if (r == 0)
			log_notice("spool: job %s: cancel requested", name);
		else
			log_info("spool: cancel/%s: no such job queued or running", name);
	}
	(void)SPOOL_ONE(&sp->ring, io_uring_prep_unlinkat(sqe_, sp->dir[SPOOL_CANCEL], name, 0));
	return 0;
}

/* --- the spool thread ------------------------------------------------------ */
static void *spool_thread(void *arg)
{
	struct spool *sp = arg;
	struct io_uring ev;
	char inobuf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	uint64_t wakebuf;
	struct __kernel_timespec ts = { (long long)sp->conf.spool_rescan_interval, 0 };
	int rc;

	if ((rc = io_uring_queue_init(8, &ev, 0)) < 0) {
		log_err("spool: io_uring: %s; the spool is not running", strerror(-rc));
		return NULL;
	}
	/* Claims and reads rename and open in two folders whose locks the
	 * operations would fight over in parallel: one io-wq worker (the limit
	 * is this thread's) does them in turn, faster. */
	unsigned wq[2] = { 1, 1 };
	if ((rc = io_uring_register_iowq_max_workers(&sp->ring, wq)) < 0)
		log_info("spool: io_uring worker limit: %s", strerror(-rc));
	spool_recover(sp);
	spool_clean_staging(sp);
	spool_scan(sp);

	/* The waits: inotify, the wake eventfd and the rescan timer. */
	struct io_uring_sqe *s;
	s = io_uring_get_sqe(&ev);
	io_uring_prep_read(s, sp->ino, inobuf, sizeof inobuf, 0);
	io_uring_sqe_set_data64(s, TAG_INOTIFY);
	s = io_uring_get_sqe(&ev);
	io_uring_prep_read(s, sp->wake, &wakebuf, sizeof wakebuf, 0);
	io_uring_sqe_set_data64(s, TAG_WAKE);
	s = io_uring_get_sqe(&ev);
	io_uring_prep_timeout(s, &ts, 0, 0);
	io_uring_sqe_set_data64(s, TAG_TIMER);
	while (!sp->stopping) {
		struct io_uring_cqe *cqe;
		int scan = 0;
		if ((rc = io_uring_submit_and_wait(&ev, 1)) < 0 && rc != -EINTR) {
			log_err("spool: io_uring_submit_and_wait: %s; the spool stops", strerror(-rc));
			break;
		}
		while (io_uring_peek_cqe(&ev, &cqe) == 0) {
			uint64_t tag = io_uring_cqe_get_data64(cqe);
			int res = cqe->res;
			io_uring_cqe_seen(&ev, cqe);
			if (tag == TAG_INOTIFY) {
				if (res < 0 && res != -EINTR && res != -EAGAIN) {
					log_err("spool: reading inotify: %s; rescans only", strerror(-res));
					continue;
				}
				for (int off = 0; res > 0 && off < res;) {
					const struct inotify_event *ie = (const void *)(inobuf + off);
					if (ie->mask & IN_Q_OVERFLOW)
						scan = 1;
					else if (ie->len && ie->name[0] && ie->wd == sp->wd_cancel)
						(void)spool_cancel_one(sp, ie->name);
					else if (ie->len && ie->name[0])
						(void)spool_pending_add(sp, ie->name);
					off += (int)(sizeof *ie + ie->len);
				}
				s = io_uring_get_sqe(&ev);
				io_uring_prep_read(s, sp->ino, inobuf, sizeof inobuf, 0);
				io_uring_sqe_set_data64(s, TAG_INOTIFY);
			} else if (tag == TAG_WAKE) {
				scan = 1;
				if (!sp->stopping) {
					s = io_uring_get_sqe(&ev);
					io_uring_prep_read(s, sp->wake, &wakebuf, sizeof wakebuf, 0);
					io_uring_sqe_set_data64(s, TAG_WAKE);
				}
			} else if (tag == TAG_TIMER) {
				scan = 1;
				spool_clean_staging(sp);
				(void)spool_list(sp->dir[SPOOL_CANCEL], spool_cancel_one, sp);
				s = io_uring_get_sqe(&ev);
				io_uring_prep_timeout(s, &ts, 0, 0);
				io_uring_sqe_set_data64(s, TAG_TIMER);
			}
		}
		if (sp->stopping)
			break;
		if (scan)
			spool_scan(sp);
		else
			spool_drain(sp);
	}
	io_uring_queue_exit(&ev);
	return NULL;
}

static int spool_open_dirs(struct spool *sp, char *err, size_t errlen)
{
	sp->root = open(sp->conf.spool_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sp->root < 0 && errno == ENOENT)
		return 1;   /* no spool here: the caller runs without one */
	if (sp->root < 0) {
		snprintf(err, errlen, "spool_dir %s: %s", sp->conf.spool_dir, strerror(errno));
		return -errno;
	}
	for (int i = 0; i < SPOOL_NDIRS; i++) {
		mode_t mode = i == SPOOL_STAGING || i == SPOOL_INTAKE || i == SPOOL_CANCEL ? 02770 :
		              i == SPOOL_ACTIVE ? 0750 : 02750;
		if (mkdirat(sp->root, spool_dir_names[i], mode) == 0)
			(void)fchmodat(sp->root, spool_dir_names[i], mode, 0);   /* past the umask */
		sp->dir[i] = openat(sp->root, spool_dir_names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sp->dir[i] < 0) {
			int r = -errno;
			snprintf(err, errlen, "%s/%s: %s", sp->conf.spool_dir, spool_dir_names[i], strerror(-r));
			return r;
		}
	}
	return 0;
}

int spool_start(struct spool **out, const struct recd_conf *conf, struct store *st, struct serve *sv,
                char *err, size_t errlen)
{
	struct spool *sp = calloc(1, sizeof *sp);
	char path[CONF_SPOOL_DIR_MAX + 16];
	int r;

	if (!sp) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	sp->conf = *conf;
	sp->st = st;
	sp->self = geteuid();
	sp->root = sp->ino = sp->wake = -1;
	for (int i = 0; i < SPOOL_NDIRS; i++)
		sp->dir[i] = -1;
	sp->ring.ring_fd = -1;
	sp->cring.ring_fd = -1;
	sp->ctail = &sp->chead;
	pthread_mutex_init(&sp->clock, NULL);
	pthread_cond_init(&sp->cwork, NULL);
	pthread_cond_init(&sp->croom, NULL);
	sp->clock_init = 1;
	if ((r = spool_open_dirs(sp, err, errlen)) < 0)
		goto fail;
	if (r == 1) {
		log_warning("spool_dir %s does not exist: no batch jobs (recd-spool(5); "
		            "systemd-tmpfiles makes it from recd.tmpfiles)", sp->conf.spool_dir);
		spool_stop(sp);
		*out = NULL;
		return 0;
	}
	if ((r = io_uring_queue_init(SPOOL_RING, &sp->ring, 0)) < 0) {
		snprintf(err, errlen, "spool: io_uring: %s", strerror(-r));
		sp->ring.ring_fd = -1;
		goto fail;
	}
	if ((sp->ino = inotify_init1(IN_CLOEXEC)) < 0 || (sp->wake = eventfd(0, EFD_CLOEXEC)) < 0) {
		r = -errno;
		snprintf(err, errlen, "spool: %s", strerror(-r));
		goto fail;
	}
	for (int w = 0; w < 2; w++) {
		snprintf(path, sizeof path, "%s/%s", sp->conf.spool_dir, w ? "cancel" : "intake");
		int wd = inotify_add_watch(sp->ino, path, IN_MOVED_TO | IN_CLOSE_WRITE | IN_CREATE | IN_ONLYDIR |
		                           IN_DONT_FOLLOW);
		if (wd < 0) {
			r = -errno;
			snprintf(err, errlen, "spool: watching %s: %s", path, strerror(-r));
			goto fail;
		}
		*(w ? &sp->wd_cancel : &sp->wd_intake) = wd;
	}
	if (sv) {
		sp->sv = sv;
	} else {
		struct serve_options so;
		serve_options_default(&so);
		if ((r = serve_open(&sp->sv, st, &so, err, errlen)) < 0)
			goto fail;
		sp->own_sv = 1;
	}
	if ((r = io_uring_queue_init(SPOOL_COMMIT_RING, &sp->cring, 0)) < 0) {
		snprintf(err, errlen, "spool: io_uring: %s", strerror(-r));
		sp->cring.ring_fd = -1;
		goto fail;
	}

	if ((r = -pthread_create(&sp->cthread, NULL, spool_committer, sp)) < 0) {
		snprintf(err, errlen, "spool: starting its result thread: %s", strerror(-r));
		goto fail;
	}
	sp->cthread_started = 1;
	struct jobs_options jo = { st, sp->sv, conf->spool_workers, spool_done, sp };
	if ((r = jobs_open(&sp->jobs, &jo)) < 0) {
		snprintf(err, errlen, "spool: starting the job engine: %s", strerror(-r));
		goto fail;
	}
	if ((r = -pthread_create(&sp->thread, NULL, spool_thread, sp)) < 0) {
		snprintf(err, errlen, "spool: starting its thread: %s", strerror(-r));
		goto fail;
	}
	sp->thread_started = 1;
	log_info("spool %s: %u workers, jobs up to %u bytes, signatures %s", sp->conf.spool_dir,
	         conf->spool_workers, conf->spool_max_job_size,
	         conf->spool_require_signature ? "required" : "optional");
	*out = sp;
	return 0;
fail:
	spool_stop(sp);
	return r;
}

void spool_stop(struct spool *sp)
{
	if (!sp)
		return;
	sp->stopping = 1;
	if (sp->thread_started) {
		uint64_t one = 1;
		(void)!write(sp->wake, &one, sizeof one);
		pthread_join(sp->thread, NULL);
	}
	/* The workers stop, then the results they handed over are written,
	 * then the engine writes its last records. */
	jobs_stop(sp->jobs);
	if (sp->cthread_started) {
		pthread_mutex_lock(&sp->clock);
		sp->cstop = 1;
		pthread_cond_broadcast(&sp->cwork);
		pthread_cond_broadcast(&sp->croom);
		pthread_mutex_unlock(&sp->clock);
		pthread_join(sp->cthread, NULL);
	}
	jobs_close(sp->jobs);
	if (sp->own_sv)
		serve_close(sp->sv);
	if (sp->ring.ring_fd >= 0)
		io_uring_queue_exit(&sp->ring);
	if (sp->cring.ring_fd >= 0)
		io_uring_queue_exit(&sp->cring);

	if (sp->clock_init) {
		pthread_cond_destroy(&sp->croom);
		pthread_cond_destroy(&sp->cwork);
		pthread_mutex_destroy(&sp->clock);
	}
	for (size_t i = 0; i < sp->npending; i++)
		free(sp->pending[i]);
	free(sp->pending);
	if (sp->ino >= 0)
		close(sp->ino);
	if (sp->wake >= 0)
		close(sp->wake);
	for (int i = 0; i < SPOOL_NDIRS; i++)
		if (sp->dir[i] >= 0)
			close(sp->dir[i]);
	if (sp->root >= 0)
		close(sp->root);
	free(sp);
}

struct jobs *spool_jobs(struct spool *sp)
{
	return sp->jobs;
}

int spool_result_path(struct spool *sp, const char *id, char *buf, size_t len, size_t *size)
{
	char why[JOBS_WHY_MAX], name[JOBS_ID_MAX + 8];
	struct stat sb;
	if (jobs_name_check(id, strlen(id), why, sizeof why) < 0)
		return -EINVAL;
	snprintf(name, sizeof name, "%s.jsonl", id);
	if (fstatat(sp->dir[SPOOL_RESULTS], name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (snprintf(buf, len, "%s/results/%s", sp->conf.spool_dir, name) >= (int)len)
		return -ENAMETOOLONG;
	*size = (size_t)sb.st_size;
	return 0;
}
