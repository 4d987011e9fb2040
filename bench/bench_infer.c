/* bench_infer.c: top-k recommend latency through the serving engine
 * (model/serve.h), one request at a time on the caller's thread (threads 1,
 * as recd's ring does).  Used by bench/run infer, which imports the data.
 *
 *   bench/infer_bin -s STORE -u USERS_FILE [-n REQUESTS] [-k K] [--fresh]
 *                   [--seed N] [--preset small|large]
 *
 * USERS_FILE: external user IDs, one a line (the first field of each line).
 * --fresh: store a freshly initialised model of the preset as a new version
 * and serve it (latency does not depend on training); otherwise the store's
 * active or latest version.
 * Two runs: cold (cache off: every request reads the user's events and runs
 * the forward pass) and cached (cache warmed with every sampled user, then
 * repeats: only the scoring pass over the catalog).  Prints a summary and,
 * last, one JSON object. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/kernels.h"
#include "model/seqrec.h"
#include "model/serve.h"
#include "store/store.h"

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

struct lat { double p50, p99, mean, max; };

static struct lat summarise(double *t, int n)
{
	struct lat l = { 0, 0, 0, 0 };
	double sum = 0;
	qsort(t, (size_t)n, sizeof *t, cmp_d);
	for (int i = 0; i < n; i++)
		sum += t[i];
	l.p50 = t[n / 2];
	l.p99 = t[(int)((n - 1) * 0.99)];
	l.mean = sum / n;
	l.max = t[n - 1];
	return l;
}

static uint64_t rng(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static int fresh_model(struct store *st, const char *preset, uint64_t seed, uint32_t *version)
{
	struct seqrec_config c;
	struct store_txn *tx;
	struct store_counts cnt;
	struct kern *k;
	struct seqrec *m;
	struct store_model_meta meta;
	char why[256];
	int r;
	if (seqrec_preset(preset, &c) < 0) {
		fprintf(stderr, "bench_infer: unknown preset '%s'\n", preset);
		return -EINVAL;
	}
	if ((r = store_read_begin(st, &tx)) < 0 || (r = store_counts(tx, &cnt)) < 0) {
		fprintf(stderr, "bench_infer: %s\n", store_errmsg(st));
		return r;
	}
	store_txn_end(tx);
	c.V = (int)cnt.items + 1;
	if ((r = kern_cpu_new(&k, 1)) < 0)
		return r;
	if ((r = seqrec_new(&m, &c, k, 1)) < 0) {
		kern_free(k);
		return r;
	}
	seqrec_init(m, seed, 0.02f);
	memset(&meta, 0, sizeof meta);
	snprintf(meta.metrics, sizeof meta.metrics, "{\"note\":\"bench_infer: freshly initialised, untrained\"}");
	r = seqrec_save_store(m, st, &meta, why, sizeof why);
	if (r < 0)
		fprintf(stderr, "bench_infer: saving: %s\n", why);
	else
		*version = meta.version;
	seqrec_free(m);
	kern_free(k);
	return r;
}

/* n requests for users picked from pick[]; times[i] in microseconds. */
static int run(struct serve *s, char **users, const uint32_t *pick, int n, int k, double *times,
               long *cached, uint32_t *version)
{
	struct serve_item *items = calloc((size_t)k, sizeof *items);
	struct serve_result res;
	char err[512];
	if (!items)
		return -ENOMEM;
	*cached = 0;
	for (int i = 0; i < n; i++) {
		struct serve_request rq = { users[pick[i]], k, NULL, NULL, 0 };
		double t0 = now_us();
		int r = serve_recommend(s, &rq, items, &res, err, sizeof err);
		times[i] = now_us() - t0;
		if (r < 0) {
			fprintf(stderr, "bench_infer: recommend %s: %s\n", users[pick[i]], err);
			free(items);
			return r;
		}
		if (res.n != k) {
			fprintf(stderr, "bench_infer: recommend %s: %d items, expected %d\n", users[pick[i]], res.n, k);
			free(items);
			return -EIO;
		}
		*cached += res.cached;
		*version = res.version;
	}
	free(items);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "store", required_argument, NULL, 's' }, { "users", required_argument, NULL, 'u' },
		{ "requests", required_argument, NULL, 'n' }, { "k", required_argument, NULL, 'k' },
		{ "fresh", no_argument, NULL, 'f' }, { "seed", required_argument, NULL, 'S' },
		{ "preset", required_argument, NULL, 'p' }, { NULL, 0, NULL, 0 },
	};
	const char *dir = NULL, *ufile = NULL, *preset = "small";
	int n = 2000, k = 10, fresh = 0, c;
	uint64_t seed = 1;
	while ((c = getopt_long(argc, argv, "s:u:n:k:fS:p:", opts, NULL)) != -1) {
		switch (c) {
		case 's': dir = optarg; break;
		case 'u': ufile = optarg; break;
		case 'n': n = atoi(optarg); break;
		case 'k': k = atoi(optarg); break;
		case 'f': fresh = 1; break;
		case 'S': seed = strtoull(optarg, NULL, 10); break;
		case 'p': preset = optarg; break;
		default:
			fprintf(stderr, "usage: bench_infer -s STORE -u USERS_FILE [-n N] [-k K] [--fresh] [--seed N] [--preset P]\n");
			return 2;
		}
	}
	if (!dir || !ufile || n < 100 || n > 10000000 || k < 1 || k > SERVE_K_MAX) {
		fprintf(stderr, "bench_infer: -s STORE and -u USERS_FILE are needed; -n 100.., -k 1..%d\n", SERVE_K_MAX);
		return 2;
	}

	/* the users */
	FILE *f = fopen(ufile, "re");
	if (!f) {
		perror(ufile);
		return 1;
	}
	char line[512], **users = NULL;
	size_t nu = 0, cap = 0;
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, " \t\r\n,")] = 0;
		if (!line[0] || (nu && strcmp(users[nu - 1], line) == 0))
			continue;
		if (nu == cap) {
			cap = cap ? cap * 2 : 1024;
			users = realloc(users, cap * sizeof *users);
			if (!users)
				return 1;
		}
		if (!(users[nu++] = strdup(line)))
			return 1;
	}
	fclose(f);
	if (nu == 0) {
		fprintf(stderr, "bench_infer: no users in %s\n", ufile);
		return 1;
	}

	struct store *st;
	struct store_options so = { 0, -1, 0 };
	if (store_open(&st, dir, &so) < 0) {
		fprintf(stderr, "bench_infer: %s\n", store_errmsg(NULL));
		return 1;
	}
	uint32_t ver = 0;
	if (fresh && fresh_model(st, preset, seed, &ver) < 0)
		return 1;

	uint32_t *pick = malloc((size_t)n * sizeof *pick);
	double *t = malloc((size_t)n * sizeof *t);
	if (!pick || !t)
		return 1;
	uint64_t rs = seed;
	for (int i = 0; i < n; i++)
		pick[i] = (uint32_t)(rng(&rs) % nu);

	struct serve_options o;
	struct serve *s;
	char err[512];
	struct lat cold, hot, repeat_first;
	long ncached;
	uint32_t served = 0;

	/* cold: no cache */
	serve_options_default(&o);
	o.cache_users = 0;
	o.version = ver;
	if (serve_open(&s, st, &o, err, sizeof err) < 0) {
		fprintf(stderr, "bench_infer: %s\n", err);
		return 1;
	}
	if (run(s, users, pick, n < 50 ? n : 50, k, t, &ncached, &served) < 0)  /* warm-up: page in */
		return 1;
	if (run(s, users, pick, n, k, t, &ncached, &served) < 0)
		return 1;
	cold = summarise(t, n);
	serve_close(s);

	/* cached: warm every picked user once, then time the repeats */
	o.cache_users = 4 * nu + 1024;  /* no shard overflows: every user stays */
	if (serve_open(&s, st, &o, err, sizeof err) < 0) {
		fprintf(stderr, "bench_infer: %s\n", err);
		return 1;
	}
	if (run(s, users, pick, n, k, t, &ncached, &served) < 0)
		return 1;
	repeat_first = summarise(t, n);
	for (int i = 0; i < n; i++)  /* a new order, the same users */
		pick[i] = pick[rng(&rs) % (uint64_t)n];
	if (run(s, users, pick, n, k, t, &ncached, &served) < 0)
		return 1;
	hot = summarise(t, n);
	struct serve_stats ss;
	serve_get_stats(s, &ss);
	serve_close(s);

	/* the model's shape, for the record */
	struct seqrec *m;
	struct kern *kk;
	struct store_model_meta meta;
	char why[256];
	kern_cpu_new(&kk, 1);
	if (seqrec_load_store(&m, kk, 1, st, served, &meta, why, sizeof why) < 0) {
		fprintf(stderr, "bench_infer: %s\n", why);
		return 1;
	}
	const char *what = fresh ? "freshly initialised (untrained)" : "stored";
	printf("model version %u (%s): C=%d L=%d heads=%d T=%d, catalog %d items; %zu users\n", served, what,
	       m->cfg.C, m->cfg.L, m->cfg.NH, m->cfg.T, m->cfg.V - 1, nu);
	printf("top-%d recommend, one request at a time, 1 thread, %d requests each:\n", k, n);
	printf("  cold (cache off: events read + forward pass + scoring)  p50 %8.1f us  p99 %8.1f us  mean %8.1f us\n",
	       cold.p50, cold.p99, cold.mean);
	printf("  first request with the cache on (mostly misses)         p50 %8.1f us  p99 %8.1f us  mean %8.1f us\n",
	       repeat_first.p50, repeat_first.p99, repeat_first.mean);
	printf("  cached (repeat: scoring over the catalog + top-k)        p50 %8.1f us  p99 %8.1f us  mean %8.1f us  (%ld of %d from the cache)\n",
	       hot.p50, hot.p99, hot.mean, ncached, n);
	printf("  target: cached top-10 p50 <= 100 us: %s\n", hot.p50 <= 100 ? "met" : "NOT met");
	printf("{\"bench\":\"infer\",\"model\":\"%s\",\"version\":%u,\"C\":%d,\"L\":%d,\"T\":%d,\"items\":%d,"
	       "\"users\":%zu,\"k\":%d,\"requests\":%d,\"threads\":1,"
	       "\"cold_p50_us\":%.1f,\"cold_p99_us\":%.1f,\"cold_mean_us\":%.1f,"
	       "\"cached_p50_us\":%.1f,\"cached_p99_us\":%.1f,\"cached_mean_us\":%.1f,\"cached_hits\":%ld,"
	       "\"cache_hits_total\":%llu,\"cache_misses_total\":%llu,\"target_cached_p50_us\":100}\n",
	       fresh ? "fresh" : "stored", served, m->cfg.C, m->cfg.L, m->cfg.T, m->cfg.V - 1, nu, k, n,
	       cold.p50, cold.p99, cold.mean, hot.p50, hot.p99, hot.mean, ncached,
	       (unsigned long long)ss.cache_hits, (unsigned long long)ss.cache_misses);
	seqrec_free(m);
	kern_free(kk);
	store_close(st);
	for (size_t i = 0; i < nu; i++)
		free(users[i]);
	free(users);
	free(pick);
	free(t);
	return 0;
}
