/* bench_serve.c: recommendations and real-time ingest through recd's
 * request ring against a store with a trained model (bench/run serve).
 *
 *   bench/serve_bin SOCKET -u USERS -i ITEMS [-n REQUESTS] [-k K] [-c CLIENTS]
 *                   [-e EVENTS] [-b BATCH] [-w WINDOW] [-f FINETUNE_JOB] [-M LABEL] [-I]
 *
 * USERS and ITEMS: files with one user (item) ID a line, from the store recd
 * serves.  The phases, in this order, all against the same recd:
 * 1. cold: the first recommendation of top K (default 10) for each user
 *    (at most 100000), in file order: the user's state is computed from the
 *    store (recd's reply says it did not come from the cache);
 * 2. cached, 1 client: REQUESTS (default 50000) round trips over the users
 *    in turn, each with its state in recd's cache: p50, p99;
 * 3. cached, CLIENTS (default 4) client threads at once, REQUESTS each:
 *    recommendations per second over them all, p50, p99;
 * 4. recd's memory: VmRSS and VmHWM of its pid (from a stats request) in
 *    /proc, after serving;
 * 5. ingest: CLIENTS threads each send EVENTS (default 50000) events in
 *    requests of BATCH (default 1000; each one transaction, applied whole
 *    and synced to disk before recd replies),
 *    WINDOW (default 4) requests in flight: events per second whose
 *    application recd confirmed in its replies;
 * 6. with -f: the users' states again (the ingest invalidated them), then 1
 *    client's cached round trips without a job, then the fine-tune job in the
 *    file FINETUNE_JOB is submitted and the same round trips are timed for
 *    as long as recd reports it running (at most FT_MAX_S seconds; then it
 *    is cancelled); recd's VmHWM after it.
 * With -I only the ingest phase runs (for a profiler's sake).
 * Prints a human summary, then one JSON object as the last line. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "recd/recd.h"

#define IDS_MAX 100000
#define CLIENTS_MAX 64
#define FT_MAX_S    120   /* seconds a fine-tune job is measured at most */

static char **users, **items;
static size_t nusers, nitems;
static int rec_k = 10;
static const char *sock_path;

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Sorts v and gives its p-th quantile (nearest rank). */
static double pct(double *v, size_t n, double p, int sort)
{
	if (!n)
		return 0;
	if (sort)
		qsort(v, n, sizeof *v, cmp_double);
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

static void die(const char *what, int r, struct recd_conn *c)
{
	fprintf(stderr, "bench_serve: %s: %s (%s)\n", what, recd_strerror(r), c ? recd_conn_error(c) : "");
	exit(1);
}

static struct recd_conn *conn(void)
{
	struct recd_conn *c;
	char err[600];
	if (recd_connect(&c, sock_path, err, sizeof err) < 0) {
		fprintf(stderr, "bench_serve: connect to %s: %s\n", sock_path, err);
		exit(1);
	}
	return c;
}

static size_t read_ids(const char *path, char ***out)
{
	FILE *f = fopen(path, "re");
	char line[512];
	size_t n = 0, lineno = 0;
	if (!f) {
		perror(path);
		exit(1);
	}
	while (fgets(line, sizeof line, f)) {
		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		if (!*line)
			continue;
		if (strlen(line) > RECD_ID_MAX) {
			fprintf(stderr, "%s:%zu: an ID longer than %d bytes\n", path, lineno, RECD_ID_MAX);
			exit(1);
		}
		if (n == IDS_MAX)
			break;
		if (!(*out = realloc(*out, (n + 1) * sizeof **out)) || !((*out)[n] = strdup(line))) {
			fprintf(stderr, "bench_serve: out of memory\n");
			exit(1);
		}
		n++;
	}
	fclose(f);
	if (!n) {
		fprintf(stderr, "%s: no IDs\n", path);
		exit(1);
	}
	return n;
}

/* One recommendation; its latency in *us; returns whether it was cached. */
static int recommend(struct recd_conn *c, size_t u, double *us)
{
	struct recd_item it[RECD_K_MAX];
	struct recd_result res;
	double t0 = now_us();
	int r = recd_recommend(c, users[u % nusers], rec_k, NULL, it, NULL, &res);
	*us = now_us() - t0;
	if (r < 0)
		die(users[u % nusers], r, c);
	if (res.n != rec_k && res.n != (int)nitems) {
		fprintf(stderr, "bench_serve: %d items for user %s, asked for %d\n", res.n, users[u % nusers], rec_k);
		exit(1);
	}
	return res.cached;
}

struct proc_mem {
	double rss_mb, hwm_mb, anon_mb, file_mb;
};

static void proc_mem(uint32_t pid, struct proc_mem *m)
{
	char path[64], line[256];
	FILE *f;
	memset(m, 0, sizeof *m);
	snprintf(path, sizeof path, "/proc/%lu/status", (unsigned long)pid);
	if (!(f = fopen(path, "re"))) {
		perror(path);
		exit(1);
	}
	while (fgets(line, sizeof line, f)) {
		double kb;
		if (sscanf(line, "VmRSS: %lf", &kb) == 1)
			m->rss_mb = kb / 1024;
		else if (sscanf(line, "VmHWM: %lf", &kb) == 1)
			m->hwm_mb = kb / 1024;
		else if (sscanf(line, "RssAnon: %lf", &kb) == 1)
			m->anon_mb = kb / 1024;
		else if (sscanf(line, "RssFile: %lf", &kb) == 1)
			m->file_mb = kb / 1024;
	}
	fclose(f);
}

static void loadavg(char *out, size_t cap)
{
	FILE *f = fopen("/proc/loadavg", "re");
	double a = 0, b = 0, c = 0;
	if (!f || fscanf(f, "%lf %lf %lf", &a, &b, &c) != 3)
		a = b = c = -1;
	if (f)
		fclose(f);
	snprintf(out, cap, "%.2f %.2f %.2f", a, b, c);
}

static uint64_t stats_ingested(struct recd_conn *c, uint32_t *pid)
{
	struct recd_stats s;
	int r = recd_stats(c, &s);
	if (r < 0)
		die("stats", r, c);
	if (pid)
		*pid = s.pid;
	return s.ingested_events;
}

/* --- cached round trips from several threads ---------------------------------- */

struct thr {
	long n, first;
	double *v;
	pthread_barrier_t *bar;
	/* ingest */
	long events, batch, window;
	int64_t ts0;
	uint64_t seed, applied;
};

static void *rec_thread(void *arg)
{
	struct thr *t = arg;
	struct recd_conn *c = conn();
	pthread_barrier_wait(t->bar);
	for (long i = 0; i < t->n; i++)
		recommend(c, (size_t)(t->first + i), &t->v[i]);
	recd_close(c);
	return NULL;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void *ingest_thread(void *arg)
{
	struct thr *t = arg;
	struct recd_conn *c = conn();
	struct recd_event *ev = calloc((size_t)t->batch, sizeof *ev);
	long sent = 0;
	int64_t ts = t->ts0;
	int r;
	if (!ev) {
		fprintf(stderr, "bench_serve: out of memory\n");
		exit(1);
	}
	pthread_barrier_wait(t->bar);
	while (sent < t->events || recd_pending(c)) {
		while (sent < t->events && recd_pending(c) < (unsigned long)t->window) {
			long nb = t->events - sent < t->batch ? t->events - sent : t->batch;
			for (long j = 0; j < nb; j++) {
				ev[j].user = users[rnd(&t->seed) % nusers];
				ev[j].item = items[rnd(&t->seed) % nitems];
				ev[j].ts = ts++;
			}
			if ((r = recd_send_ingest(c, ev, (size_t)nb, NULL)) < 0)
				die("send ingest", r, c);
			sent += nb;
		}
		struct recd_reply *rep;
		if ((r = recd_receive(c, 60000, &rep)) < 0)
			die("receive", r, c);
		if ((r = recd_reply_ingest(rep)) < 0) {
			fprintf(stderr, "bench_serve: ingest: %s (%s)\n", recd_strerror(r), recd_reply_error(rep));
			exit(1);
		}
		t->applied += (uint64_t)r;
		recd_reply_free(rep);
	}
	free(ev);
	recd_close(c);
	return NULL;
}

/* Runs nthr threads of fn; returns the seconds from the common start to the
 * last one's end. */
static double run_threads(void *(*fn)(void *), struct thr *ts, long nthr)
{
	pthread_t th[CLIENTS_MAX];
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, (unsigned)nthr + 1);
	for (long i = 0; i < nthr; i++) {
		ts[i].bar = &bar;
		if (pthread_create(&th[i], NULL, fn, &ts[i]) != 0) {
			fprintf(stderr, "bench_serve: cannot start a thread\n");
			exit(1);
		}
	}
	pthread_barrier_wait(&bar);
	double t0 = now_us();
	for (long i = 0; i < nthr; i++)
		pthread_join(th[i], NULL);
	double el = (now_us() - t0) / 1e6;
	pthread_barrier_destroy(&bar);
	return el;
}

/* 1 client's cached round trips: n of them from user first on, p50/p99. */
static void one_client(struct recd_conn *c, long n, long first, double *v, double *p50, double *p99,
                       long *cached)
{
	*cached = 0;
	for (long i = 0; i < n; i++)
		*cached += recommend(c, (size_t)(first + i), &v[i]);
	*p50 = pct(v, (size_t)n, 0.5, 1);
	*p99 = pct(v, (size_t)n, 0.99, 0);
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rbe");
	char *b = malloc(RECD_JOB_JSON_MAX + 1);
	if (!f || !b) {
		perror(path);
		exit(1);
	}
	*len = fread(b, 1, RECD_JOB_JSON_MAX + 1, f);
	fclose(f);
	if (*len == 0 || *len > RECD_JOB_JSON_MAX) {
		fprintf(stderr, "%s: empty, or more than %d bytes\n", path, RECD_JOB_JSON_MAX);
		exit(1);
	}
	b[*len] = '\0';
	return b;
}

static void usage(const char *me)
{
	fprintf(stderr, "usage: %s SOCKET -u USERS -i ITEMS [-n REQUESTS (100 to 10^7)] [-k K] [-c CLIENTS<=%d]\n"
	        "       [-e EVENTS<=10^8] [-b BATCH<=%d] [-w WINDOW<=64] [-f FINETUNE_JOB] [-M LABEL] [-I]\n",
	        me, CLIENTS_MAX, RECD_LIST_MAX);
	exit(2);
}

int main(int argc, char **argv)
{
	long n = 50000, nthr = 4, events = 50000, batch = 1000, window = 4;
	const char *ufile = NULL, *ifile = NULL, *ftfile = NULL, *label = "";
	int ingest_only = 0;
	char load0[64], load1[64];
	int o;

	while ((o = getopt(argc, argv, "u:i:n:k:c:e:b:w:f:M:I")) != -1) {
		switch (o) {
		case 'u': ufile = optarg; break;
		case 'i': ifile = optarg; break;
		case 'n': n = atol(optarg); break;
		case 'k': rec_k = atoi(optarg); break;
		case 'c': nthr = atol(optarg); break;
		case 'e': events = atol(optarg); break;
		case 'b': batch = atol(optarg); break;
		case 'w': window = atol(optarg); break;
		case 'f': ftfile = optarg; break;
		case 'M': label = optarg; break;
		case 'I': ingest_only = 1; break;
		default: usage(argv[0]);
		}
	}
	if (optind != argc - 1 || !ufile || !ifile || n < 100 || n > 10000000 || rec_k < 1 || rec_k > RECD_K_MAX ||
	    nthr < 1 || nthr > CLIENTS_MAX || events < 1 || events > 100000000 || batch < 1 ||
	    batch > RECD_LIST_MAX || window < 1 || window > 64)
		usage(argv[0]);
	for (const char *p = label; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr(" ,.:-_/()=", *p)) {
			fprintf(stderr, "bench_serve: -M: only letters, digits and \" ,.:-_/()=\"\n");
			return 2;
		}
	if (ingest_only)
		ftfile = NULL;
	sock_path = argv[optind];
	signal(SIGPIPE, SIG_IGN);
	nusers = read_ids(ufile, &users);
	nitems = read_ids(ifile, &items);
	loadavg(load0, sizeof load0);

	double *v = malloc((size_t)(n * nthr > (long)nusers ? n * nthr : (long)nusers) * sizeof *v);
	struct thr ts[CLIENTS_MAX];
	struct recd_conn *c = conn();
	uint32_t pid;
	uint64_t ing0 = stats_ingested(c, &pid);
	if (!v) {
		fprintf(stderr, "bench_serve: out of memory\n");
		return 1;
	}

	double cold50 = 0, cold99 = 0, r50 = 0, r99 = 0, el, rate = 0, m50 = 0, m99 = 0;
	size_t ncold = 0;
	long cached;
	if (!ingest_only) {
		/* 1. cold: each user's first recommendation. */
		for (size_t u = 0; u < nusers; u++) {
			double us;
			if (!recommend(c, u, &us))
				v[ncold++] = us;
		}
		cold50 = pct(v, ncold, 0.5, 1), cold99 = pct(v, ncold, 0.99, 0);
		printf("cold (first request per user, state from the store): %zu of %zu users, p50 %.1f us  p99 %.1f us\n",
		       ncold, nusers, cold50, cold99);

		/* 2. cached, 1 client. */
		for (size_t u = 0; u < nusers; u++) {   /* all in the cache (a user recd evicted comes back) */
			double us;
			recommend(c, u, &us);
		}
		one_client(c, n, 0, v, &r50, &r99, &cached);
		printf("cached, 1 client, %ld requests over %zu users in turn (%ld answered from the cache): "
		       "p50 %.1f us  p99 %.1f us\n", n, nusers, cached, r50, r99);

		/* 3. cached, nthr clients at once. */
		for (long i = 0; i < nthr; i++) {
			memset(&ts[i], 0, sizeof ts[i]);
			ts[i].n = n;
			ts[i].first = i * (long)(nusers / (size_t)nthr);
			ts[i].v = v + i * n;
		}
		el = run_threads(rec_thread, ts, nthr);
		rate = (double)(n * nthr) / el;
		m50 = pct(v, (size_t)(n * nthr), 0.5, 1), m99 = pct(v, (size_t)(n * nthr), 0.99, 0);
		printf("cached, %ld clients at once, %ld requests each: %.0f recommendations/s, p50 %.1f us  p99 %.1f us\n",
		       nthr, n, rate, m50, m99);
	}

	/* 4. memory while serving. */
	struct proc_mem mem;
	proc_mem(pid, &mem);
	printf("recd (pid %lu) after serving: VmRSS %.1f MiB (anon %.1f, file %.1f), VmHWM %.1f MiB\n",
	       (unsigned long)pid, mem.rss_mb, mem.anon_mb, mem.file_mb, mem.hwm_mb);

	/* 5. ingest. */
	/* Times up to now, one second apart: after the model's cut-off. */
	int64_t ts0 = (int64_t)time(NULL) - (int64_t)nthr * events;
	for (long i = 0; i < nthr; i++) {
		memset(&ts[i], 0, sizeof ts[i]);
		ts[i].events = events;
		ts[i].batch = batch;
		ts[i].window = window;
		ts[i].ts0 = ts0 + i * events;
		ts[i].seed = 0x9e3779b97f4a7c15u * (uint64_t)(i + 1);
	}
	el = run_threads(ingest_thread, ts, nthr);
	uint64_t applied = 0;
	for (long i = 0; i < nthr; i++)
		applied += ts[i].applied;
	uint64_t ing1 = stats_ingested(c, NULL);
	if (applied != (uint64_t)(events * nthr) || ing1 - ing0 != applied) {
		fprintf(stderr, "bench_serve: ingest: %llu events confirmed and recd counts %llu, %ld sent\n",
		        (unsigned long long)applied, (unsigned long long)(ing1 - ing0), events * nthr);
		return 1;
	}
	double irate = (double)applied / el;
	struct proc_mem mem2;
	proc_mem(pid, &mem2);
	printf("ingest: %ld clients x %ld events in requests of %ld (%ld in flight each): %llu events "
	       "confirmed in %.2f s, %.0f events/s\n", nthr, events, batch, window,
	       (unsigned long long)applied, el, irate);
	printf("recd after ingest: VmRSS %.1f MiB (anon %.1f, file %.1f), VmHWM %.1f MiB\n",
	       mem2.rss_mb, mem2.anon_mb, mem2.file_mb, mem2.hwm_mb);

	/* 6. during a fine-tune. */
	double b50 = 0, b99 = 0, f50 = 0, f99 = 0, ft_s = 0;
	long ft_n = 0;
	struct proc_mem mem3 = mem2;
	char job[RECD_JOB_ID_MAX + 1] = "";
	if (ftfile) {
		size_t jlen;
		char *json = read_file(ftfile, &jlen);
		struct recd_job_status js;
		struct recd_conn *cs = conn();
		int r;
		for (size_t u = 0; u < nusers; u++) {   /* the ingest invalidated them */
			double us;
			recommend(c, u, &us);
		}
		one_client(c, n, 0, v, &b50, &b99, &cached);
		printf("cached, 1 client, no job running: p50 %.1f us  p99 %.1f us\n", b50, b99);
		if ((r = recd_job_submit(cs, json, jlen, job, sizeof job)) < 0)
			die("fine-tune job", r, cs);
		free(json);
		double t0 = now_us();
		do {
			if ((r = recd_job_status(cs, job, &js)) < 0)
				die("job status", r, cs);
			if (js.state > RECD_JOB_RUNNING) {
				fprintf(stderr, "bench_serve: job %s ended (%s) before it could be measured\n", job,
				        js.state_name);
				return 1;
			}
			if (js.state != RECD_JOB_RUNNING)
				usleep(10000);
		} while (js.state != RECD_JOB_RUNNING && now_us() - t0 < 120e6);
		if (js.state != RECD_JOB_RUNNING) {
			fprintf(stderr, "bench_serve: job %s still queued after 120 s\n", job);
			return 1;
		}
		/* Round trips for as long as it runs (at most FT_MAX_S seconds,
		 * then it is cancelled): loading its data, evaluating the parent,
		 * the optimizer steps, evaluating and storing the child.  Its
		 * state is asked every 500 round trips. */
		size_t cap = (size_t)n;
		double *fv = malloc(cap * sizeof *fv);
		t0 = now_us();
		while (fv) {
			double us;
			if ((size_t)ft_n == cap) {
				double *nv = realloc(fv, 2 * cap * sizeof *fv);
				if (!nv)
					break;
				fv = nv;
				cap *= 2;
			}
			recommend(c, (size_t)ft_n, &us);
			fv[ft_n++] = us;
			if (ft_n % 500 == 0) {
				if ((r = recd_job_status(cs, job, &js)) < 0)
					die("job status", r, cs);
				if (js.state != RECD_JOB_RUNNING || now_us() - t0 > FT_MAX_S * 1e6)
					break;
			}
		}
		if (!fv) {
			fprintf(stderr, "bench_serve: out of memory\n");
			return 1;
		}
		ft_s = (now_us() - t0) / 1e6;
		if (js.state == RECD_JOB_FAILED) {
			char buf[1];
			r = recd_job_result(cs, job, 0, buf, sizeof buf, NULL, NULL);
			fprintf(stderr, "bench_serve: fine-tune job %s failed: %s\n", job,
			        r == -EREMOTEIO ? recd_conn_error(cs) : recd_strerror(r));
			return 1;
		}
		f50 = pct(fv, (size_t)ft_n, 0.5, 1);
		f99 = pct(fv, (size_t)ft_n, 0.99, 0);
		free(fv);
		proc_mem(pid, &mem3);   /* VmHWM: the peak, the job's included */
		printf("cached, 1 client, while fine-tune job %s ran (%s after %.1f s): %ld requests, "
		       "p50 %.1f us  p99 %.1f us\n", job, js.state_name, ft_s, ft_n, f50, f99);
		if (js.state <= RECD_JOB_RUNNING) {
			if ((r = recd_job_cancel(cs, job)) < 0 && r != -ENOENT)
				die("job cancel", r, cs);
			t0 = now_us();
			do {
				if ((r = recd_job_status(cs, job, &js)) < 0)
					die("job status", r, cs);
				if (js.state <= RECD_JOB_RUNNING)
					usleep(20000);
			} while (js.state <= RECD_JOB_RUNNING && now_us() - t0 < 60e6);
			printf("fine-tune job %s: still running after %.0f s, cancelled: %s %.1f s later\n", job,
			       (double)FT_MAX_S, js.state_name, (now_us() - t0) / 1e6);
		}
		printf("recd's VmHWM after the fine-tune: %.1f MiB\n", mem3.hwm_mb);
		recd_close(cs);
		if (ft_n < 1000) {
			fprintf(stderr, "bench_serve: the job ran for only %ld round trips\n", ft_n);
			return 1;
		}
	}
	recd_close(c);
	loadavg(load1, sizeof load1);
	printf("load average %s before, %s after\n", load0, load1);

	printf("{\"bench\":\"serve\",\"model\":\"%s\",\"users\":%zu,\"items\":%zu", label, nusers, nitems);
	if (!ingest_only)
		printf(",\"k\":%d,\"requests\":%ld,\"recommend_p50_us\":%.2f,\"recommend_p99_us\":%.2f,"
		       "\"recommend_cold_p50_us\":%.2f,\"recommend_cold_p99_us\":%.2f,\"cold_requests\":%zu,"
		       "\"recommend_per_s\":%.0f,\"recommend_multi_p50_us\":%.2f,\"recommend_multi_p99_us\":%.2f,"
		       "\"rss_mb\":%.1f,\"vmrss_mb\":%.1f",
		       rec_k, n, r50, r99, cold50, cold99, ncold, rate, m50, m99, mem.hwm_mb, mem.rss_mb);
	printf(",\"clients\":%ld,\"ingest_events_per_s\":%.0f,\"ingest_events\":%llu,\"ingest_batch\":%ld,"
	       "\"rss_mb_after_ingest\":%.1f", nthr, irate, (unsigned long long)applied, batch, mem2.hwm_mb);
	if (ftfile)
		printf(",\"recommend_p50_us_no_finetune\":%.2f,\"recommend_p99_us_no_finetune\":%.2f,"
		       "\"recommend_p50_us_during_finetune\":%.2f,\"recommend_p99_us_during_finetune\":%.2f,"
		       "\"requests_during_finetune\":%ld,\"finetune_measured_s\":%.1f,\"rss_mb_with_finetune\":%.1f",
		       b50, b99, f50, f99, ft_n, ft_s, mem3.hwm_mb);
	printf(",\"loadavg_before\":\"%s\",\"loadavg_after\":\"%s\"}\n", load0, load1);
	free(v);
	return 0;
}
