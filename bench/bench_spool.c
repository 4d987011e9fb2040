/* bench_spool.c: bench/run spool.  Small recommend jobs end to end through
 * a running recd, three ways over the same users:
 *   spool: a job file submitted as recctl submit does (a unique name in
 *          staging/, O_CREAT|O_EXCL, write, fsync, rename into intake/);
 *   ring:  the same job's JSON through the request ring (recd_job_submit);
 *   direct: the job's users asked with recd_recommend, for reference;
 *   disk:  no recd: the spool's file system, for reference.  Per job, the
 *          job file written as spool does and a result of the same size
 *          written, fsynced and renamed into place (two new files made
 *          durable, what a spool job needs), one after the other, by the
 *          same submitters, in a folder next to the spool: a slow or busy
 *          disk shows in both figures.  Not a ceiling: recd commits a
 *          batch's results together and can beat it.
 * A job's latency runs from the start of its submission to its result file
 * appearing in results/ (inotify on results/ and failed/), so both job
 * paths are timed to the same point: the result durable and visible.  A
 * window bounds the jobs in flight (a producer that waits for results, as
 * batch producers do); submitter threads share it.  Every result is read
 * back and checked (one line per user, each with its items).  The last line
 * printed is one JSON object. */
#define _GNU_SOURCE
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "recd/recd.h"

#define BS_USERS_MAX  1000000
#define BS_JOBS_MAX   1000000
#define BS_THREADS_MAX 256

enum { MODE_DISK = 0, MODE_SPOOL, MODE_RING, MODE_DIRECT, MODE_COUNT };
static const char *const mode_names[MODE_COUNT] = { "disk", "spool", "ring", "direct" };

struct bs_job {
	double t0, ts, t1;          /* submission started, ended; result seen (monotonic s) */
	int state;                  /* 0 in flight, 1 result, 2 failed */
	char id[RECD_JOB_ID_MAX + 1];
};

/* Ring job IDs (given by recd) to job indices.  A result may show up
 * before its submitter has the ID: then it waits here with its time. */
struct bs_slot {
	char id[RECD_JOB_ID_MAX + 1];
	long job;                   /* -1: seen, submitter not yet back */
	double t;
	int failed;
};

static struct {
	const char *spool, *sock;
	char probe[PATH_MAX];       /* disk: SPOOL_DIR.probe */
	char **users;
	size_t nusers;
	long njobs;
	int upj, k, threads, window;
	int mode;
	char tag[64];               /* spool job names: TAG-INDEX */
	struct bs_job *jobs;
	long next;                  /* next job to submit (atomic) */
	long completed;             /* under lock */
	sem_t room;                 /* window */
	pthread_mutex_t lock;
	pthread_cond_t all_done;
	struct bs_slot *slots;
	size_t nslots;
	int ino, wd_res, wd_fail;
	volatile int stop;
	int errors;                 /* submissions that failed (atomic) */
	char first_err[512];
} B;

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void bs_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void bs_error(const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock(&B.lock);
	if (!B.errors++) {
		va_start(ap, fmt);
		vsnprintf(B.first_err, sizeof B.first_err, fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&B.lock);
}

static uint64_t bs_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

/* Under lock.  The slot for id, made when missing. */
static struct bs_slot *bs_slot(const char *id)
{
	size_t i = (size_t)bs_hash(id) & (B.nslots - 1);
	while (B.slots[i].id[0] && strcmp(B.slots[i].id, id) != 0)
		i = (i + 1) & (B.nslots - 1);
	if (!B.slots[i].id[0]) {
		snprintf(B.slots[i].id, sizeof B.slots[i].id, "%s", id);
		B.slots[i].job = -1;
		B.slots[i].t = 0;
	}
	return &B.slots[i];
}

/* Under lock. */
static void bs_complete(long job, double t, int failed)
{
	struct bs_job *j = &B.jobs[job];
	if (j->state)
		return;
	j->t1 = t;
	j->state = failed ? 2 : 1;
	sem_post(&B.room);
	if (++B.completed == B.njobs)
		pthread_cond_broadcast(&B.all_done);
}

/* A name that appeared in results/ (ID.jsonl) or failed/ (ID.error). */
static void bs_seen(const char *name, int failed, double t)
{
	char id[RECD_JOB_ID_MAX + 1];
	size_t n = strlen(name);
	const char *suffix = failed ? ".error" : ".jsonl";
	size_t m = strlen(suffix);
	if (n <= m || n - m > RECD_JOB_ID_MAX || strcmp(name + n - m, suffix) != 0 || name[0] == '.')
		return;
	memcpy(id, name, n - m);
	id[n - m] = '\0';
	pthread_mutex_lock(&B.lock);
	if (B.mode == MODE_SPOOL) {
		size_t tl = strlen(B.tag);
		if (strncmp(id, B.tag, tl) == 0 && id[tl] == '-') {
			char *end;
			long job = strtol(id + tl + 1, &end, 10);
			if (!*end && job >= 0 && job < B.njobs)
				bs_complete(job, t, failed);
		}
	} else if (B.mode == MODE_RING && id[0] == 'r') {
		struct bs_slot *s = bs_slot(id);
		if (s->job >= 0) {
			bs_complete(s->job, t, failed);
		} else if (s->t == 0) {
			s->t = t;
			s->failed = failed;
		}
	}
	pthread_mutex_unlock(&B.lock);
}

static void *bs_watch(void *arg)
{
	char buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
	(void)arg;
	while (!B.stop) {
		struct pollfd p = { B.ino, POLLIN, 0 };
		if (poll(&p, 1, 100) <= 0)
			continue;
		ssize_t n = read(B.ino, buf, sizeof buf);
		if (n <= 0)
			continue;
		double t = now_s();
		for (ssize_t off = 0; off < n;) {
			const struct inotify_event *e = (const void *)(buf + off);
			if (e->mask & IN_Q_OVERFLOW)
				bs_error("inotify queue overflowed: raise fs.inotify.max_queued_events");
			else if (e->len)
				bs_seen(e->name, e->wd == B.wd_fail, t);
			off += (ssize_t)(sizeof *e + e->len);
		}
	}
	return NULL;
}

/* The job's JSON: users u*j .. u*j+upj-1 (cycling through the list). */
static int bs_json(char *buf, size_t cap, long job, const char *id)
{
	size_t o = 0;
	int n;
	if (id)
		n = snprintf(buf, cap, "{\"format\":1,\"type\":\"recommend\",\"id\":\"%s\",\"k\":%d,\"users\":[", id, B.k);
	else
		n = snprintf(buf, cap, "{\"format\":1,\"type\":\"recommend\",\"k\":%d,\"users\":[", B.k);
	if (n < 0 || (size_t)n >= cap)
		return -ENOSPC;
	o = (size_t)n;
	for (int u = 0; u < B.upj; u++) {
		const char *user = B.users[((size_t)job * (size_t)B.upj + (size_t)u) % B.nusers];
		n = snprintf(buf + o, cap - o, "%s\"%s\"", u ? "," : "", user);
		if (n < 0 || (size_t)n >= cap - o)
			return -ENOSPC;
		o += (size_t)n;
	}
	n = snprintf(buf + o, cap - o, "]}\n");
	if (n < 0 || (size_t)n >= cap - o)
		return -ENOSPC;
	return (int)(o + (size_t)n);
}

static int bs_write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* dir/tmp made, written, fsynced, closed and renamed to todir/final;
 * removed again on failure.  0 or -errno. */
static int bs_write_durable(int dir, const char *tmp, int todir, const char *final, const char *p, size_t len)
{
	int fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0)
		return -errno;
	int r = bs_write_all(fd, p, len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && renameat(dir, tmp, todir, final) < 0)
		r = -errno;
	if (r < 0)
		(void)unlinkat(dir, tmp, 0);
	return r;
}

/* recctl submit's protocol. */
static int bs_submit_spool(int staging, int intake, long job, char *buf, size_t cap)
{
	char name[RECD_JOB_ID_MAX + 1];
	snprintf(name, sizeof name, "%s-%ld", B.tag, job);
	int len = bs_json(buf, cap, job, name);
	return len < 0 ? len : bs_write_durable(staging, name, intake, name, buf, (size_t)len);
}

/* The disk reference: the job file as bs_submit_spool writes it (in
 * probe/, renamed to NAME.job), then its result written as recd writes one
 * (.NAME.tmp, fsync, rename to NAME.jsonl). */
static int bs_submit_disk(int probe, long job, char *buf, size_t cap)
{
	char name[RECD_JOB_ID_MAX + 1], tmp[RECD_JOB_ID_MAX + 16], to[RECD_JOB_ID_MAX + 16];
	snprintf(name, sizeof name, "%s-%ld", B.tag, job);
	int len = bs_json(buf, cap, job, name);
	if (len < 0)
		return len;
	snprintf(to, sizeof to, "%s.job", name);
	int r = bs_write_durable(probe, name, probe, to, buf, (size_t)len);
	if (r < 0)
		return r;
	snprintf(tmp, sizeof tmp, ".%s.tmp", name);
	snprintf(to, sizeof to, "%s.jsonl", name);
	return bs_write_durable(probe, tmp, probe, to, buf, (size_t)len);
}

static void *bs_submitter(void *arg)
{
	size_t cap = 256 + (size_t)B.upj * (RECD_ID_MAX + 4);
	char *buf = malloc(cap);
	int staging = -1, intake = -1, probe = -1;
	struct recd_conn *c = NULL;
	struct recd_item *items = calloc((size_t)B.k, sizeof *items);
	char err[256];
	(void)arg;

	if (!buf || !items) {
		bs_error("out of memory");
		goto out;
	}
	if (B.mode == MODE_SPOOL) {
		char path[PATH_MAX];
		snprintf(path, sizeof path, "%s/staging", B.spool);
		staging = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		snprintf(path, sizeof path, "%s/intake", B.spool);
		intake = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (staging < 0 || intake < 0) {
			bs_error("%s/staging, intake: %s", B.spool, strerror(errno));
			goto out;
		}
	} else if (B.mode == MODE_DISK) {
		if ((probe = open(B.probe, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
			bs_error("%s: %s", B.probe, strerror(errno));
			goto out;
		}
	} else if (recd_connect(&c, B.sock, err, sizeof err) < 0) {
		bs_error("connecting to %s: %s", B.sock, err);
		goto out;
	}
	for (;;) {
		long job = __atomic_fetch_add(&B.next, 1, __ATOMIC_SEQ_CST);
		if (job >= B.njobs || B.stop)
			break;
		struct bs_job *j = &B.jobs[job];
		int r = 0;
		if (B.mode == MODE_DIRECT) {
			j->t0 = now_s();
			for (int u = 0; u < B.upj && r >= 0; u++) {
				struct recd_result res;
				const char *user = B.users[((size_t)job * (size_t)B.upj + (size_t)u) % B.nusers];
				r = recd_recommend(c, user, B.k, NULL, items, NULL, &res);
				if (r == 0 && res.n < 1)
					r = -ENODATA;
			}
			pthread_mutex_lock(&B.lock);
			bs_complete(job, now_s(), r < 0);
			pthread_mutex_unlock(&B.lock);
			if (r < 0)
				bs_error("recommend: %s", r == -ENODATA ? "no items" : recd_conn_error(c));
			continue;
		}
		while (sem_wait(&B.room) < 0 && errno == EINTR)
			;
		j->t0 = now_s();
		if (B.mode == MODE_DISK) {
			r = bs_submit_disk(probe, job, buf, cap);
			if (r < 0)
				bs_error("writing job %ld in %s: %s", job, B.probe, strerror(-r));
			j->ts = now_s();
			pthread_mutex_lock(&B.lock);
			bs_complete(job, j->ts, r < 0);
			pthread_mutex_unlock(&B.lock);
			continue;
		}
		if (B.mode == MODE_SPOOL) {
			r = bs_submit_spool(staging, intake, job, buf, cap);
			if (r < 0)
				bs_error("submitting job %ld: %s", job, strerror(-r));
		} else {
			int len = bs_json(buf, cap, job, NULL);
			r = len < 0 ? len : recd_job_submit(c, buf, (size_t)len, j->id, sizeof j->id);
			if (r < 0) {
				bs_error("recd_job_submit: %s", recd_conn_error(c));
			} else {
				pthread_mutex_lock(&B.lock);
				struct bs_slot *s = bs_slot(j->id);
				s->job = job;
				if (s->t)
					bs_complete(job, s->t, s->failed);
				pthread_mutex_unlock(&B.lock);
			}
		}
		j->ts = now_s();
		if (r < 0) {
			pthread_mutex_lock(&B.lock);
			bs_complete(job, now_s(), 1);
			pthread_mutex_unlock(&B.lock);
		}
	}
out:
	if (c)
		recd_close(c);
	if (staging >= 0)
		close(staging);
	if (intake >= 0)
		close(intake);
	if (probe >= 0)
		close(probe);
	free(items);
	free(buf);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Reads a result back: one line per user, each with its items. */
static int bs_check_result(const char *id, char *why, size_t whylen)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/results/%s.jsonl", B.spool, id);
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return -1;
	}
	char line[65536];
	int lines = 0, bad = 0;
	while (fgets(line, sizeof line, f)) {
		lines++;
		if (!strstr(line, "\"items\"") || strstr(line, "\"error\""))
			bad++;
	}
	fclose(f);
	if (lines != B.upj || bad) {
		snprintf(why, whylen, "%s: %d lines (%d without items), expected %d with items", path, lines, bad,
		         B.upj);
		return -1;
	}
	return 0;
}

struct bs_figures {
	double per_s, p50_ms, p99_ms, max_ms;
	double submit_p50_ms, submit_p99_ms;   /* the submission alone (spool: staging, fsync, rename) */
	long failed;
};

static int bs_phase(int mode, struct bs_figures *fig)
{
	pthread_t th[BS_THREADS_MAX];
	int nth = 0;

	B.mode = mode;
	B.next = 0;
	B.completed = 0;
	B.errors = 0;
	B.first_err[0] = '\0';
	memset(B.jobs, 0, (size_t)B.njobs * sizeof *B.jobs);
	memset(B.slots, 0, B.nslots * sizeof *B.slots);
	snprintf(B.tag, sizeof B.tag, "bench-%ld-%s-%ld", (long)getpid(), mode_names[mode], (long)time(NULL));
	sem_destroy(&B.room);
	sem_init(&B.room, 0, (unsigned)B.window);

	double t0 = now_s();
	for (int i = 0; i < B.threads; i++)
		if (pthread_create(&th[nth], NULL, bs_submitter, NULL) == 0)
			nth++;
	/* Bounded: a job that never ends fails the run, it does not hang it. */
	pthread_mutex_lock(&B.lock);
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 60 + B.njobs / 100;
	int timed_out = 0;
	while (B.completed < B.njobs && !timed_out)
		timed_out = pthread_cond_timedwait(&B.all_done, &B.lock, &dl) == ETIMEDOUT;
	long completed = B.completed;
	pthread_mutex_unlock(&B.lock);
	double t1 = now_s();
	if (timed_out) {
		B.stop = 1;
		for (long i = 0; i < B.njobs; i++)   /* let blocked submitters out */
			sem_post(&B.room);
	}
	for (int i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	if (timed_out) {
		fprintf(stderr, "spool_bin: %s: only %ld of %ld jobs ended within the time limit\n",
		        mode_names[mode], completed, B.njobs);
		return -1;
	}
	if (B.errors) {
		fprintf(stderr, "spool_bin: %s: %d failures; the first: %s\n", mode_names[mode], B.errors, B.first_err);
		return -1;
	}
	double *lat = malloc((size_t)B.njobs * sizeof *lat);
	if (!lat)
		return -1;
	double last = t0;
	fig->failed = 0;
	for (long i = 0; i < B.njobs; i++) {
		lat[i] = (B.jobs[i].t1 - B.jobs[i].t0) * 1e3;
		if (B.jobs[i].t1 > last)
			last = B.jobs[i].t1;
		if (B.jobs[i].state != 1)
			fig->failed++;
	}
	(void)t1;
	qsort(lat, (size_t)B.njobs, sizeof *lat, cmp_double);
	fig->per_s = (double)B.njobs / (last - t0);
	fig->p50_ms = lat[(size_t)((double)(B.njobs - 1) * 0.50)];
	fig->p99_ms = lat[(size_t)((double)(B.njobs - 1) * 0.99)];
	fig->max_ms = lat[B.njobs - 1];
	for (long i = 0; i < B.njobs; i++)
		lat[i] = mode == MODE_DIRECT ? 0 : (B.jobs[i].ts - B.jobs[i].t0) * 1e3;
	qsort(lat, (size_t)B.njobs, sizeof *lat, cmp_double);
	fig->submit_p50_ms = lat[(size_t)((double)(B.njobs - 1) * 0.50)];
	fig->submit_p99_ms = lat[(size_t)((double)(B.njobs - 1) * 0.99)];
	free(lat);
	if (fig->failed) {
		fprintf(stderr, "spool_bin: %s: %ld jobs failed (see %s/failed/)\n", mode_names[mode], fig->failed,
		        B.spool);
		return -1;
	}
	/* Every result, read back. */
	if (mode == MODE_SPOOL || mode == MODE_RING) {
		char why[PATH_MAX + 128], id[RECD_JOB_ID_MAX + 1];
		for (long i = 0; i < B.njobs; i++) {
			if (mode == MODE_SPOOL)
				snprintf(id, sizeof id, "%s-%ld", B.tag, i);
			else
				snprintf(id, sizeof id, "%s", B.jobs[i].id);
			if (bs_check_result(id, why, sizeof why) < 0) {
				fprintf(stderr, "spool_bin: %s: job %ld: %s\n", mode_names[mode], i, why);
				return -1;
			}
		}
	}
	printf("%-6s %7ld jobs of %d user%s  %8.0f jobs/s  p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms",
	       mode_names[mode], B.njobs, B.upj, B.upj == 1 ? "" : "s", fig->per_s, fig->p50_ms, fig->p99_ms,
	       fig->max_ms);
	if (mode == MODE_SPOOL || mode == MODE_RING)
		printf("  (submitting: p50 %.2f ms, p99 %.2f ms)", fig->submit_p50_ms, fig->submit_p99_ms);
	printf("\n");
	fflush(stdout);
	return 0;
}

static int read_users(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[RECD_ID_MAX + 2];
	size_t cap = 0;
	if (!f) {
		fprintf(stderr, "spool_bin: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof line, f) && B.nusers < BS_USERS_MAX) {
		line[strcspn(line, "\r\n")] = '\0';
		if (!line[0])
			continue;
		if (strchr(line, '"') || strchr(line, '\\')) {
			fprintf(stderr, "spool_bin: %s: user '%s' needs JSON escaping; not supported here\n", path, line);
			fclose(f);
			return -1;
		}
		if (B.nusers == cap) {
			cap = cap ? cap * 2 : 1024;
			char **nu = realloc(B.users, cap * sizeof *nu);
			if (!nu) {
				fclose(f);
				return -1;
			}
			B.users = nu;
		}
		if (!(B.users[B.nusers++] = strdup(line))) {
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	if (!B.nusers) {
		fprintf(stderr, "spool_bin: %s: no users\n", path);
		return -1;
	}
	return 0;
}

/* Empties and removes the disk reference's folder (not timed, after the others). */
static void bs_probe_clean(void)
{
	DIR *d = opendir(B.probe);
	struct dirent *e;
	if (!d)
		return;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			(void)unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
	(void)rmdir(B.probe);
}

static long arg_num(const char *opt, const char *v, long lo, long hi)
{
	char *end;
	errno = 0;
	long x = strtol(v, &end, 10);
	if (errno || end == v || *end || x < lo || x > hi) {
		fprintf(stderr, "spool_bin: %s '%s' is not a number from %ld to %ld\n", opt, v, lo, hi);
		exit(2);
	}
	return x;
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: spool_bin SPOOL_DIR SOCKET USERS_FILE [-n JOBS] [-u USERS_PER_JOB] [-k K]\n"
	        "                 [-c SUBMITTERS] [-w WINDOW] [-m disk,spool,ring,direct]\n"
	        "  SPOOL_DIR: the running recd's spool_dir; SOCKET: its ring socket;\n"
	        "  USERS_FILE: one user ID a line.  Defaults: -n 5000 -u 1 -k 10 -c 16 -w 256.\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *modes = "disk,spool,ring,direct";
	int c;

	B.njobs = 5000;
	B.upj = 1;
	B.k = 10;
	B.threads = 16;
	B.window = 256;
	while ((c = getopt(argc, argv, "n:u:k:c:w:m:h")) != -1) {
		switch (c) {
		case 'n': B.njobs = arg_num("-n", optarg, 1, BS_JOBS_MAX); break;
		case 'u': B.upj = (int)arg_num("-u", optarg, 1, 1000); break;
		case 'k': B.k = (int)arg_num("-k", optarg, 1, RECD_K_MAX); break;
		case 'c': B.threads = (int)arg_num("-c", optarg, 1, BS_THREADS_MAX); break;
		case 'w': B.window = (int)arg_num("-w", optarg, 1, 100000); break;
		case 'm': modes = optarg; break;
		default: usage();
		}
	}
	if (argc - optind != 3)
		usage();
	B.spool = argv[optind];
	B.sock = argv[optind + 1];
	if (read_users(argv[optind + 2]) < 0)
		return 1;
	int want[MODE_COUNT] = { 0 };
	{
		char *m = strdup(modes), *save = NULL;
		for (char *t = strtok_r(m, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			int found = 0;
			for (int i = 0; i < MODE_COUNT; i++)
				if (strcmp(t, mode_names[i]) == 0)
					want[i] = found = 1;
			if (!found) {
				fprintf(stderr, "spool_bin: -m: unknown mode '%s' (disk, spool, ring, direct)\n", t);
				return 2;
			}
		}
		free(m);
	}
	B.jobs = calloc((size_t)B.njobs, sizeof *B.jobs);
	for (B.nslots = 1024; B.nslots < (size_t)B.njobs * 2; B.nslots *= 2)
		;
	B.slots = calloc(B.nslots, sizeof *B.slots);
	if (!B.jobs || !B.slots)
		return 1;
	pthread_mutex_init(&B.lock, NULL);
	pthread_cond_init(&B.all_done, NULL);
	sem_init(&B.room, 0, 1);

	char path[PATH_MAX];
	B.ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	snprintf(path, sizeof path, "%s/results", B.spool);
	B.wd_res = B.ino < 0 ? -1 : inotify_add_watch(B.ino, path, IN_MOVED_TO | IN_ONLYDIR);
	snprintf(path, sizeof path, "%s/failed", B.spool);
	B.wd_fail = B.ino < 0 ? -1 : inotify_add_watch(B.ino, path, IN_MOVED_TO | IN_ONLYDIR);
	if (B.wd_res < 0 || B.wd_fail < 0) {
		fprintf(stderr, "spool_bin: watching %s/results and failed: %s\n", B.spool, strerror(errno));
		return 1;
	}
	pthread_t w;
	if (pthread_create(&w, NULL, bs_watch, NULL) != 0)
		return 1;

	struct bs_figures fig[MODE_COUNT];
	int rc = 0;
	printf("%ld jobs each way, %d user%s a job, k %d; %d submitters sharing a window of %d jobs in flight\n",
	       B.njobs, B.upj, B.upj == 1 ? "" : "s", B.k, B.threads, B.window);
	snprintf(B.probe, sizeof B.probe, "%s.probe", B.spool);
	if (want[MODE_DISK] && mkdir(B.probe, 0750) < 0 && errno != EEXIST) {
		fprintf(stderr, "spool_bin: %s: %s\n", B.probe, strerror(errno));
		return 1;
	}
	for (int m = 0; m < MODE_COUNT && rc == 0; m++)
		if (want[m] && bs_phase(m, &fig[m]) < 0)
			rc = 1;
	/* Only now: ext4 makes new inodes slower to allocate for a while
	 * after many were deleted (it skips the recently freed ones), which
	 * would slow the phases after this one. */
	if (want[MODE_DISK])
		bs_probe_clean();
	B.stop = 1;
	pthread_join(w, NULL);
	if (rc)
		return rc;

	char json[2048];
	size_t o = 0;
	o += (size_t)snprintf(json + o, sizeof json - o, "{\"jobs\":%ld,\"users_per_job\":%d,\"k\":%d,"
	                      "\"submitters\":%d,\"window\":%d", B.njobs, B.upj, B.k, B.threads, B.window);
	if (want[MODE_SPOOL])
		o += (size_t)snprintf(json + o, sizeof json - o, ",\"jobs_per_s\":%.0f,\"p50_ms\":%.2f,\"p99_ms\":%.2f,"
		                      "\"submit_p50_ms\":%.2f", fig[MODE_SPOOL].per_s, fig[MODE_SPOOL].p50_ms,
		                      fig[MODE_SPOOL].p99_ms, fig[MODE_SPOOL].submit_p50_ms);
	if (want[MODE_RING])
		o += (size_t)snprintf(json + o, sizeof json - o,
		                      ",\"ring_jobs_per_s\":%.0f,\"ring_p50_ms\":%.2f,\"ring_p99_ms\":%.2f",
		                      fig[MODE_RING].per_s, fig[MODE_RING].p50_ms, fig[MODE_RING].p99_ms);
	if (want[MODE_DISK])
		o += (size_t)snprintf(json + o, sizeof json - o, ",\"disk_jobs_per_s\":%.0f,\"disk_p50_ms\":%.2f",
		                      fig[MODE_DISK].per_s, fig[MODE_DISK].p50_ms);
	if (want[MODE_SPOOL] && want[MODE_DISK])
		o += (size_t)snprintf(json + o, sizeof json - o, ",\"spool_over_disk\":%.2f",
		                      fig[MODE_SPOOL].per_s / fig[MODE_DISK].per_s);
	if (want[MODE_SPOOL] && want[MODE_RING])
		o += (size_t)snprintf(json + o, sizeof json - o, ",\"spool_over_ring\":%.2f",
		                      fig[MODE_SPOOL].per_s / fig[MODE_RING].per_s);
	if (want[MODE_DIRECT])
		o += (size_t)snprintf(json + o, sizeof json - o,
		                      ",\"direct_jobs_per_s\":%.0f,\"direct_p50_ms\":%.3f,\"direct_p99_ms\":%.3f",
		                      fig[MODE_DIRECT].per_s, fig[MODE_DIRECT].p50_ms, fig[MODE_DIRECT].p99_ms);
	snprintf(json + o, sizeof json - o, "}");
	printf("%s\n", json);
	return 0;
}
