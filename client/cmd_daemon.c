/* cmd_daemon.c: recctl's commands that talk to a running recd through
 * librecd (status, ping, ingest, and recommend, score and model use when
 * recd is asked rather than the store), and config-check.  The rule for
 * which of recommend, score and model use asks recd is recctl_via_daemon(). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "client/recctl.h"
#include "daemon/conf.h"
#include "import/csv.h"
#include "recd/recd.h"

#define INGEST_BATCH     1000            /* events per request */
#define INGEST_FILE_MAX  (1u << 30)      /* bytes of an events file */

#ifndef RECCTL_SYSCONFDIR
#define RECCTL_SYSCONFDIR "/etc"
#endif

const char *recctl_socket_path(const struct recctl *ctl)
{
	const char *e = getenv("RECD_SOCKET");
	if (ctl->socket)
		return ctl->socket;
	return e && *e ? e : RECD_SOCKET_DEFAULT;
}

int recctl_via_daemon(const struct recctl *ctl)
{
	const char *e = getenv("RECD_SOCKET");
	if (ctl->socket)
		return 1;
	if (ctl->state_dir_given)
		return 0;
	if (e && *e)
		return 1;
	return access(RECD_SOCKET_DEFAULT, F_OK) == 0;
}

struct recd_conn *recctl_daemon_connect(const struct recctl *ctl, const char *cmd)
{
	struct recd_conn *c = NULL;
	char err[RECD_ERR_MAX + 256];
	int r = recd_connect(&c, recctl_socket_path(ctl), err, sizeof err);
	if (r < 0) {
		recctl_err("%s: %s", cmd, err);
		return NULL;
	}
	return c;
}

int recctl_daemon_fail(struct recd_conn *c, const char *cmd, int r)
{
	const char *why = recd_conn_error(c);
	recctl_err("%s: %s", cmd, why && *why ? why : recd_strerror(r));
	return RECCTL_EXIT_FAIL;
}

/* Parses a command's options that are only --json and --help. */
static int simple_opts(struct recctl *ctl, int argc, char **argv, void (*usage)(FILE *))
{
	enum { O_JSON = 256 };
	static const struct option opts[] = {
		{ "json", no_argument, NULL, O_JSON }, { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case O_JSON: ctl->json = 1; break;
		case 'h': usage(stdout); return 1;
		default:  usage(stderr); return -1;
		}
	}
	return 0;
}

/* --- status ------------------------------------------------------------------------- */

static void status_usage(FILE *f)
{
	fprintf(f, "Usage: recctl [--socket PATH] [--json] status\n"
	           "What the running recd reports: version, uptime, the model served, clients\n"
	           "and request counters.\n");
}

int cmd_status(struct recctl *ctl, int argc, char **argv)
{
	struct recd_conn *c;
	struct recd_stats s;
	int r = simple_opts(ctl, argc, argv, status_usage);

	if (r)
		return r > 0 ? RECCTL_EXIT_OK : RECCTL_EXIT_USAGE;
	if (optind != argc) {
		status_usage(stderr);
		return RECCTL_EXIT_USAGE;
	}
	if (!(c = recctl_daemon_connect(ctl, "status")))
		return RECCTL_EXIT_FAIL;
	if ((r = recd_stats(c, &s)) < 0) {
		r = recctl_daemon_fail(c, "status", r);
		recd_close(c);
		return r;
	}
	recd_close(c);
	if (ctl->json) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "socket", json_object_new_string(recctl_socket_path(ctl)));
		json_object_object_add(o, "version", json_object_new_string(s.version));
		json_object_object_add(o, "pid", json_object_new_int64(s.pid));
		json_object_object_add(o, "uptime_ms", json_object_new_int64((int64_t)s.uptime_ms));
		json_object_object_add(o, "model_version", json_object_new_int64(s.model_version));
		json_object_object_add(o, "clients", json_object_new_int64(s.clients));
		json_object_object_add(o, "max_clients", json_object_new_int64(s.max_clients));
		json_object_object_add(o, "workers", json_object_new_int64(s.workers));
		json_object_object_add(o, "requests", json_object_new_int64((int64_t)s.requests));
		json_object_object_add(o, "errors", json_object_new_int64((int64_t)s.errors));
		json_object_object_add(o, "recommends", json_object_new_int64((int64_t)s.recommends));
		json_object_object_add(o, "scores", json_object_new_int64((int64_t)s.scores));
		json_object_object_add(o, "ingested_events", json_object_new_int64((int64_t)s.ingested_events));
		json_object_object_add(o, "cache_hits", json_object_new_int64((int64_t)s.cache_hits));
		json_object_object_add(o, "cache_misses", json_object_new_int64((int64_t)s.cache_misses));
		json_object_object_add(o, "model_swaps", json_object_new_int64((int64_t)s.swaps));
		json_object_object_add(o, "disconnects_bad", json_object_new_int64((int64_t)s.disconnects_bad));
		recctl_print_json(o);
		json_object_put(o);
		return RECCTL_EXIT_OK;
	}
	uint64_t up = s.uptime_ms / 1000;
	printf("recd %s (pid %u) at %s, up %llud %02llu:%02llu:%02llu\n", s.version, s.pid,
	       recctl_socket_path(ctl), (unsigned long long)(up / 86400), (unsigned long long)(up / 3600 % 24),
	       (unsigned long long)(up / 60 % 60), (unsigned long long)(up % 60));
	if (s.model_version)
		printf("model:     version %u served\n", s.model_version);
	else
		printf("model:     none served\n");
	printf("clients:   %u of %u (%u workers)\n", s.clients, s.max_clients, s.workers);
	printf("requests:  %llu answered, %llu with an error\n", (unsigned long long)s.requests,
	       (unsigned long long)s.errors);
	printf("           %llu recommend, %llu score, %llu events ingested\n",
	       (unsigned long long)s.recommends, (unsigned long long)s.scores,
	       (unsigned long long)s.ingested_events);
	printf("cache:     %llu hits, %llu misses; %llu model swaps\n", (unsigned long long)s.cache_hits,
	       (unsigned long long)s.cache_misses, (unsigned long long)s.swaps);
	printf("dropped:   %llu clients that broke the protocol\n", (unsigned long long)s.disconnects_bad);
	return RECCTL_EXIT_OK;
}

/* --- ping ----------------------------------------------------------------------------- */

static void ping_usage(FILE *f)
{
	fprintf(f, "Usage: recctl [--socket PATH] [--json] ping [-c COUNT]\n"
	           "Round trips to recd through its request ring (default 1).\n");
}

static double mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int cmd_ping(struct recctl *ctl, int argc, char **argv)
{
	enum { O_JSON = 256 };
	static const struct option opts[] = {
		{ "count", required_argument, NULL, 'c' }, { "json", no_argument, NULL, O_JSON },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	struct recd_conn *rc;
	long count = 1;
	double min = 1e30, max = 0, sum = 0;
	int c, r;

	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			if (recctl_parse_long("ping", "-c", optarg, 1, 10000000, &count) < 0)
				return RECCTL_EXIT_USAGE;
			break;
		case O_JSON: ctl->json = 1; break;
		case 'h': ping_usage(stdout); return RECCTL_EXIT_OK;
		default:  ping_usage(stderr); return RECCTL_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		ping_usage(stderr);
		return RECCTL_EXIT_USAGE;
	}
	if (!(rc = recctl_daemon_connect(ctl, "ping")))
		return RECCTL_EXIT_FAIL;
	for (long i = 0; i < count; i++) {
		double t0 = mono_us(), dt;
		if ((r = recd_ping(rc)) < 0) {
			r = recctl_daemon_fail(rc, "ping", r);
			recd_close(rc);
			return r;
		}
		dt = mono_us() - t0;
		sum += dt;
		min = dt < min ? dt : min;
		max = dt > max ? dt : max;
	}
	recd_close(rc);
	if (ctl->json) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "count", json_object_new_int64(count));
		json_object_object_add(o, "min_us", json_object_new_double(min));
		json_object_object_add(o, "avg_us", json_object_new_double(sum / (double)count));
		json_object_object_add(o, "max_us", json_object_new_double(max));
		recctl_print_json(o);
		json_object_put(o);
	} else {
		printf("%ld replies from recd at %s: min %.1f us, avg %.1f us, max %.1f us\n", count,
		       recctl_socket_path(ctl), min, sum / (double)count, max);
	}
	return RECCTL_EXIT_OK;
}

/* --- recommend (through recd) ----------------------------------------------------------- */

static void drecommend_usage(FILE *f)
{
	fprintf(f, "Usage: recctl [--socket PATH] [--json] recommend [-k N] [--explain] [--include-seen]\n"
	           "                 [--include I1,I2,..] [--exclude I1,I2,..] USER\n"
	           "Top items for USER from the running recd (see recctl(1) for when recctl asks\n"
	           "recd and when it reads the store itself).\n");
}

int cmd_daemon_recommend(struct recctl *ctl, int argc, char **argv)
{
	enum { O_EXPLAIN = 256, O_SEEN, O_MODEL, O_JSON, O_INCLUDE, O_EXCLUDE };
	static const struct option opts[] = {
		{ "explain", no_argument, NULL, O_EXPLAIN },    { "include-seen", no_argument, NULL, O_SEEN },
		{ "model", required_argument, NULL, O_MODEL },  { "json", no_argument, NULL, O_JSON },
		{ "include", required_argument, NULL, O_INCLUDE }, { "exclude", required_argument, NULL, O_EXCLUDE },
		{ "help", no_argument, NULL, 'h' },             { NULL, 0, NULL, 0 },
	};
	struct recd_recommend_opts o;
	char *inc_buf = NULL, *exc_buf = NULL;
	struct recd_item *items = NULL;
	struct recd_why why[10];
	struct recd_result res;
	struct recd_conn *rc = NULL;
	long kk = 10;
	int c, r, status = RECCTL_EXIT_USAGE;

	memset(&o, 0, sizeof o);
	while ((c = getopt_long(argc, argv, "k:h", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			if (recctl_parse_long("recommend", "-k", optarg, 1, RECD_K_MAX, &kk) < 0)
				goto out;
			break;
		case O_EXPLAIN: o.explain = 1; o.why_cap = 10; break;
		case O_SEEN:    o.include_seen = 1; break;
		case O_MODEL:
			recctl_err("recommend: --model reads the store: give -d DIR (recd answers with "
			           "the version it serves; see recctl model use)");
			goto out;
		case O_INCLUDE:
			if (recctl_split_list("recommend", "--include", optarg, RECD_LIST_MAX, &inc_buf,
			                      (const char ***)&o.include, &o.ninclude) < 0)
				goto out;
			break;
		case O_EXCLUDE:
			if (recctl_split_list("recommend", "--exclude", optarg, RECD_LIST_MAX, &exc_buf,
			                      (const char ***)&o.exclude, &o.nexclude) < 0)
				goto out;
			break;
		case O_JSON: ctl->json = 1; break;
		case 'h': drecommend_usage(stdout); status = RECCTL_EXIT_OK; goto out;
		default:  drecommend_usage(stderr); goto out;
		}
	}
	if (optind != argc - 1) {
		drecommend_usage(stderr);
		goto out;
	}
	status = RECCTL_EXIT_FAIL;
	const char *user = argv[optind];
	if (!(items = calloc((size_t)kk, sizeof *items))) {
		recctl_err("recommend: out of memory");
		goto out;
	}
	if (!(rc = recctl_daemon_connect(ctl, "recommend")))
		goto out;
	if ((r = recd_recommend(rc, user, (int)kk, &o, items, why, &res)) < 0) {
		status = recctl_daemon_fail(rc, "recommend", r);
		goto out;
	}
	if (ctl->json) {
		struct json_object *j = json_object_new_object(), *a = json_object_new_array();
		json_object_object_add(j, "user", json_object_new_string(user));
		json_object_object_add(j, "model_version", json_object_new_int64(res.version));
		json_object_object_add(j, "source", json_object_new_string("recd"));
		for (int i = 0; i < res.n; i++) {
			struct json_object *it = json_object_new_object();
			json_object_object_add(it, "item", json_object_new_string(items[i].id));
			json_object_object_add(it, "score", json_object_new_double(items[i].score));
			json_object_array_add(a, it);
		}
		json_object_object_add(j, "items", a);
		if (o.explain) {
			struct json_object *w = json_object_new_array();
			for (int i = 0; i < res.nwhy; i++) {
				struct json_object *e = json_object_new_object();
				json_object_object_add(e, "item", json_object_new_string(why[i].item));
				json_object_object_add(e, "time", json_object_new_int64(why[i].ts));
				json_object_object_add(e, "action", json_object_new_int64(why[i].action));
				json_object_object_add(e, "weight", json_object_new_double(why[i].weight));
				json_object_array_add(w, e);
			}
			json_object_object_add(j, "because", w);
		}
		recctl_print_json(j);
		json_object_put(j);
	} else {
		printf("top %d for user %s (model version %u, from recd)\n", res.n, user, res.version);
		for (int i = 0; i < res.n; i++)
			printf("  %3d. %-20s %8.3f\n", i + 1, items[i].id, items[i].score);
		if (o.explain && res.nwhy) {
			printf("because of (history events, heaviest first):\n");
			for (int i = 0; i < res.nwhy; i++)
				printf("  %-20s  time %lld  weight %.3f\n", why[i].item, (long long)why[i].ts,
				       why[i].weight);
		}
	}
	status = RECCTL_EXIT_OK;
out:
	recd_close(rc);
	free(items);
	free((void *)o.include);
	free((void *)o.exclude);
	free(inc_buf);
	free(exc_buf);
	return status;
}

/* --- score ---------------------------------------------------------------------------- */

static void score_usage(FILE *f)
{
	fprintf(f, "Usage: recctl [-d DIR | --socket PATH] [--json] score USER ITEM...\n"
	           "The model's score of each ITEM (at most %d) for USER, from the running recd,\n"
	           "or computed in this process from the store when -d is given (the rule is\n"
	           "recommend's).\n", RECD_LIST_MAX);
}

int cmd_score(struct recctl *ctl, int argc, char **argv)
{
	struct recd_conn *rc;
	float *scores;
	uint32_t v = 0;
	int r = simple_opts(ctl, argc, argv, score_usage);

	if (r)
		return r > 0 ? RECCTL_EXIT_OK : RECCTL_EXIT_USAGE;
	if (argc - optind < 2) {
		score_usage(stderr);
		return RECCTL_EXIT_USAGE;
	}
	size_t n = (size_t)(argc - optind - 1);
	if (n > RECD_LIST_MAX) {
		recctl_err("score: %zu items; at most %d", n, RECD_LIST_MAX);
		return RECCTL_EXIT_USAGE;
	}
	const char *user = argv[optind];
	const char *const *items = (const char *const *)argv + optind + 1;
	if (!(scores = calloc(n, sizeof *scores))) {
		recctl_err("score: out of memory");
		return RECCTL_EXIT_FAIL;
	}
	if (!recctl_via_daemon(ctl)) {
		r = recctl_local_score(ctl, user, items, n, scores, &v);
		if (r < 0) {
			free(scores);
			return RECCTL_EXIT_FAIL;
		}
	} else {
		if (!(rc = recctl_daemon_connect(ctl, "score"))) {
			free(scores);
			return RECCTL_EXIT_FAIL;
		}
		if ((r = recd_score(rc, user, items, n, scores, &v)) < 0) {
			r = recctl_daemon_fail(rc, "score", r);
			recd_close(rc);
			free(scores);
			return r;
		}
		recd_close(rc);
	}
	if (ctl->json) {
		struct json_object *j = json_object_new_object(), *a = json_object_new_array();
		json_object_object_add(j, "user", json_object_new_string(user));
		json_object_object_add(j, "model_version", json_object_new_int64(v));
		for (size_t i = 0; i < n; i++) {
			struct json_object *it = json_object_new_object();
			json_object_object_add(it, "item", json_object_new_string(items[i]));
			json_object_object_add(it, "score", json_object_new_double(scores[i]));
			json_object_array_add(a, it);
		}
		json_object_object_add(j, "scores", a);
		recctl_print_json(j);
		json_object_put(j);
	} else {
		printf("scores for user %s (model version %u)\n", user, v);
		for (size_t i = 0; i < n; i++)
			printf("  %-20s %8.3f\n", items[i], scores[i]);
	}
	free(scores);
	return RECCTL_EXIT_OK;
}

/* --- ingest ------------------------------------------------------------------------------- */

static void ingest_usage(FILE *f)
{
	fprintf(f,
	        "Usage: recctl [--socket PATH] [--json] ingest [--time T] [--action A] [--value V]\n"
	        "                 [--lat LAT --lon LON] [--device D] USER ITEM\n"
	        "       recctl [--socket PATH] [--json] ingest --file EVENTS.csv|.tsv\n"
	        "Hands behaviour events to the running recd, which stores them and reflects\n"
	        "them in the users' next recommendations.  A file has the columns of the\n"
	        "generic import format's events (user, item, time, action, value, lat, lon,\n"
	        "device; text is ignored), and goes in requests of %d events, each applied\n"
	        "whole or not at all.  T: Unix seconds or YYYY-MM-DDTHH:MM:SS[Z] (UTC);\n"
	        "default now.\n", INGEST_BATCH);
}

/* Unix seconds, or YYYY-MM-DDTHH:MM:SS with an optional Z, taken as UTC. */
static int parse_time(const char *s, size_t n, int64_t *out)
{
	char buf[32], *end;
	struct tm tm;
	if (n == 0 || n >= sizeof buf)
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (strchr(buf, 'T')) {
		memset(&tm, 0, sizeof tm);
		end = strptime(buf, "%Y-%m-%dT%H:%M:%S", &tm);
		if (!end || (*end && strcmp(end, "Z") != 0))
			return -EINVAL;
		*out = (int64_t)timegm(&tm);
		return 0;
	}
	errno = 0;
	long long v = strtoll(buf, &end, 10);
	if (errno || *end || end == buf)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_float(const char *s, size_t n, float *out)
{
	char buf[64], *end;
	if (n == 0 || n >= sizeof buf)
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	errno = 0;
	double v = strtod(buf, &end);
	if (errno || *end || end == buf || !isfinite(v))
		return -EINVAL;
	*out = (float)v;
	return 0;
}

struct ingest_run {
	struct recctl *ctl;
	struct recd_conn *rc;
	const char *file;
	struct recd_event ev[INGEST_BATCH];
	char *strs[INGEST_BATCH][4];     /* copies of user, item, action, device */
	unsigned long line[INGEST_BATCH];
	size_t n;
	unsigned long sent;              /* events recd took */
};

static void ingest_clear(struct ingest_run *g)
{
	for (size_t i = 0; i < g->n; i++)
		for (int k = 0; k < 4; k++) {
			free(g->strs[i][k]);
			g->strs[i][k] = NULL;
		}
	g->n = 0;
}

static int ingest_flush(struct ingest_run *g)
{
	int r;
	if (!g->n)
		return 0;
	r = recd_ingest(g->rc, g->ev, g->n);
	if (r < 0) {
		if (g->file)
			recctl_err("ingest: %s: the events of lines %lu to %lu were refused: %s (%lu events "
			           "before them were stored)", g->file, g->line[0], g->line[g->n - 1],
			           recd_conn_error(g->rc), g->sent);
		else
			recctl_daemon_fail(g->rc, "ingest", r);
		ingest_clear(g);
		return r;
	}
	g->sent += (unsigned long)r;
	ingest_clear(g);
	return 0;
}

static char *dup_field(const struct csv_field *f)
{
	char *s = malloc(f->len + 1);
	if (s) {
		memcpy(s, f->p, f->len);
		s[f->len] = '\0';
	}
	return s;
}

static int ingest_file(struct ingest_run *g)
{
	static const char *const names[8][4] = {
		{ "user", "user_id", NULL }, { "item", "item_id", NULL }, { "time", "timestamp", "ts", NULL },
		{ "action", NULL }, { "value", "rating", NULL }, { "lat", "latitude", NULL },
		{ "lon", "lng", "longitude", NULL }, { "device", NULL },
	};
	struct csv_field f[CSV_MAX_FIELDS];
	int col[8], fd, r = -EINVAL;
	char *buf = NULL, *scratch = NULL, delim = ',';
	size_t len = 0, off = 0, nf, errf;
	unsigned long lineno = 1;
	struct stat sb;
	int64_t now = (int64_t)time(NULL);

	if ((fd = open(g->file, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &sb) < 0) {
		recctl_err("ingest: %s: %s", g->file, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	if (!S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > INGEST_FILE_MAX) {
		recctl_err("ingest: %s: not a regular file of at most %u bytes", g->file, INGEST_FILE_MAX);
		close(fd);
		return -EINVAL;
	}
	buf = malloc((size_t)sb.st_size + 1);
	scratch = malloc((size_t)sb.st_size + 1);
	if (!buf || !scratch) {
		recctl_err("ingest: out of memory");
		r = -ENOMEM;
		goto out;
	}
	while (len < (size_t)sb.st_size) {
		ssize_t k = read(fd, buf + len, (size_t)sb.st_size - len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			recctl_err("ingest: %s: %s", g->file, k < 0 ? strerror(errno) : "shorter than its size");
			goto out;
		}
		len += (size_t)k;
	}
	for (;;) {
		size_t rec_len, next;
		unsigned inner = 0;
		if (off >= len) {
			if (lineno == 1) {
				recctl_err("ingest: %s: empty file (expected a header line)", g->file);
				goto out;
			}
			break;
		}
		if (!csv_record_end(buf + off, len - off, lineno == 1 ? '\n' : delim, lineno == 1 ? 0 : delim == ',',
		                    &rec_len, &next, &inner)) {
			csv_record_last(buf + off, len - off, &rec_len, &inner);
			next = len - off;
		}
		const char *rec = buf + off;
		off += next;
		if (lineno == 1) {
			/* The header: a tab makes it TSV, else CSV. */
			delim = csv_guess_delim(rec, rec_len);
			int nh = csv_split(rec, rec_len, delim, delim == ',', f, CSV_MAX_FIELDS, scratch, &errf);
			if (nh < 0) {
				recctl_err("ingest: %s:1: a header line of at most %d columns", g->file, CSV_MAX_FIELDS);
				goto out;
			}
			nf = (size_t)nh;
			for (int k = 0; k < 8; k++) {
				col[k] = -1;
				for (size_t i = 0; i < nf && col[k] < 0; i++) {
					size_t L = f[i].len;
					const char *colon = memchr(f[i].p, ':', L);
					if (colon)
						L = (size_t)(colon - f[i].p);
					while (L && (f[i].p[L - 1] == ' '))
						L--;
					for (int a = 0; names[k][a]; a++)
						if (strlen(names[k][a]) == L && strncasecmp(f[i].p, names[k][a], L) == 0)
							col[k] = (int)i;
				}
			}
			if (col[0] < 0 || col[1] < 0) {
				recctl_err("ingest: %s:1: the header needs a user and an item column", g->file);
				goto out;
			}
			if ((col[5] < 0) != (col[6] < 0)) {
				recctl_err("ingest: %s:1: lat and lon come together", g->file);
				goto out;
			}
			lineno += 1 + inner;
			continue;
		}
		unsigned long this_line = lineno;
		lineno += 1 + inner;
		if (rec_len == 0 || strspn(rec, delim == ',' ? " \t," : " \t") >= rec_len)
			continue;   /* a blank line */
		int k = csv_split(rec, rec_len, delim, delim == ',', f, CSV_MAX_FIELDS, scratch, &errf);
		if (k < 0 || (size_t)k != nf) {
			recctl_err("ingest: %s:%lu: %s", g->file, this_line,
			           k < 0 ? "bad quoting" : "not as many fields as the header");
			r = -EINVAL;
			goto out;
		}
		struct recd_event *e = &g->ev[g->n];
		const char *bad = NULL;
		memset(e, 0, sizeof *e);
		e->ts = now;
		if (col[2] >= 0 && f[col[2]].len && parse_time(f[col[2]].p, f[col[2]].len, &e->ts) < 0)
			bad = "time";
		if (!bad && col[4] >= 0 && f[col[4]].len) {
			if (parse_float(f[col[4]].p, f[col[4]].len, &e->value) < 0)
				bad = "value";
			e->has_value = 1;
		}
		if (!bad && col[5] >= 0 && (f[col[5]].len || f[col[6]].len)) {
			if (parse_float(f[col[5]].p, f[col[5]].len, &e->lat) < 0 ||
			    parse_float(f[col[6]].p, f[col[6]].len, &e->lon) < 0)
				bad = "lat/lon";
			e->has_loc = 1;
		}
		if (!bad && (f[col[0]].len > RECD_ID_MAX || f[col[1]].len > RECD_ID_MAX))
			bad = "user or item (longer than 255 bytes)";
		if (bad) {
			recctl_err("ingest: %s:%lu: field '%s' is not valid", g->file, this_line, bad);
			r = -EINVAL;
			goto out;
		}
		g->strs[g->n][0] = dup_field(&f[col[0]]);
		g->strs[g->n][1] = dup_field(&f[col[1]]);
		if (col[3] >= 0 && f[col[3]].len)
			g->strs[g->n][2] = dup_field(&f[col[3]]);
		if (col[7] >= 0 && f[col[7]].len)
			g->strs[g->n][3] = dup_field(&f[col[7]]);
		e->user = g->strs[g->n][0];
		e->item = g->strs[g->n][1];
		e->action = g->strs[g->n][2];
		e->device = g->strs[g->n][3];
		if (!e->user || !e->item) {
			recctl_err("ingest: out of memory");
			r = -ENOMEM;
			g->n++;
			goto out;
		}
		g->line[g->n++] = this_line;
		if (g->n == INGEST_BATCH && (r = ingest_flush(g)) < 0)
			goto out;
	}
	r = ingest_flush(g);
out:
	ingest_clear(g);
	free(buf);
	free(scratch);
	close(fd);
	return r;
}

int cmd_ingest(struct recctl *ctl, int argc, char **argv)
{
	enum { O_JSON = 256, O_TIME, O_ACTION, O_VALUE, O_LAT, O_LON, O_DEVICE, O_FILE };
	static const struct option opts[] = {
		{ "time", required_argument, NULL, O_TIME }, { "action", required_argument, NULL, O_ACTION },
		{ "value", required_argument, NULL, O_VALUE }, { "lat", required_argument, NULL, O_LAT },
		{ "lon", required_argument, NULL, O_LON }, { "device", required_argument, NULL, O_DEVICE },
		{ "file", required_argument, NULL, O_FILE }, { "json", no_argument, NULL, O_JSON },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	struct ingest_run *g;
	struct recd_event one;
	int c, r, has_lat = 0, has_lon = 0, status = RECCTL_EXIT_USAGE;

	if (!(g = calloc(1, sizeof *g))) {
		recctl_err("ingest: out of memory");
		return RECCTL_EXIT_FAIL;
	}
	g->ctl = ctl;
	memset(&one, 0, sizeof one);
	one.ts = (int64_t)time(NULL);
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case O_TIME:
			if (parse_time(optarg, strlen(optarg), &one.ts) < 0) {
				recctl_err("ingest: --time: '%s' is not Unix seconds or YYYY-MM-DDTHH:MM:SS[Z]", optarg);
				goto out;
			}
			break;
		case O_ACTION: one.action = optarg; break;
		case O_DEVICE: one.device = optarg; break;
		case O_VALUE:
			if (parse_float(optarg, strlen(optarg), &one.value) < 0) {
				recctl_err("ingest: --value: '%s' is not a finite number", optarg);
				goto out;
			}
			one.has_value = 1;
			break;
		case O_LAT:
			if (parse_float(optarg, strlen(optarg), &one.lat) < 0 || fabsf(one.lat) > 90) {
				recctl_err("ingest: --lat: '%s' is not a latitude from -90 to 90", optarg);
				goto out;
			}
			has_lat = 1;
			break;
		case O_LON:
			if (parse_float(optarg, strlen(optarg), &one.lon) < 0 || fabsf(one.lon) > 180) {
				recctl_err("ingest: --lon: '%s' is not a longitude from -180 to 180", optarg);
				goto out;
			}
			has_lon = 1;
			break;
		case O_FILE: g->file = optarg; break;
		case O_JSON: ctl->json = 1; break;
		case 'h': ingest_usage(stdout); status = RECCTL_EXIT_OK; goto out;
		default:  ingest_usage(stderr); goto out;
		}
	}
	if (has_lat != has_lon) {
		recctl_err("ingest: --lat and --lon come together");
		goto out;
	}
	one.has_loc = has_lat;
	if (g->file ? optind != argc : optind != argc - 2) {
		ingest_usage(stderr);
		goto out;
	}
	status = RECCTL_EXIT_FAIL;
	if (!(g->rc = recctl_daemon_connect(ctl, "ingest")))
		goto out;
	if (g->file) {
		r = ingest_file(g);
	} else {
		one.user = argv[optind];
		one.item = argv[optind + 1];
		r = recd_ingest(g->rc, &one, 1);
		if (r < 0)
			recctl_daemon_fail(g->rc, "ingest", r);
		else
			g->sent = (unsigned long)r;
	}
	if (ctl->json) {
		struct json_object *j = json_object_new_object();
		json_object_object_add(j, "events", json_object_new_int64((int64_t)g->sent));
		json_object_object_add(j, "ok", json_object_new_boolean(r >= 0));
		recctl_print_json(j);
		json_object_put(j);
	} else if (r >= 0) {
		printf("%lu events stored by recd\n", g->sent);
	}
	if (r >= 0)
		status = RECCTL_EXIT_OK;
out:
	if (g->rc)
		recd_close(g->rc);
	free(g);
	return status;
}

/* --- model use (through recd) ------------------------------------------------------------ */

int cmd_daemon_model_use(struct recctl *ctl, int argc, char **argv)
{
	struct recd_conn *rc;
	long v = 0;
	uint32_t now = 0;
	int r;

	/* argv: use VERSION|latest [--json] */
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--json") == 0) {
			ctl->json = 1;
			memmove(argv + i, argv + i + 1, (size_t)(argc - i - 1) * sizeof *argv);
			argc--;
			i--;
		}
	if (argc != 2) {
		recctl_err("model use: give one VERSION or 'latest'");
		return RECCTL_EXIT_USAGE;
	}
	if (strcmp(argv[1], "latest") != 0 &&
	    recctl_parse_long("model use", "VERSION", argv[1], 1, 0xfffffffe, &v) < 0)
		return RECCTL_EXIT_USAGE;
	if (!(rc = recctl_daemon_connect(ctl, "model use")))
		return RECCTL_EXIT_FAIL;
	if ((r = recd_model_use(rc, (uint32_t)v, &now)) < 0) {
		r = recctl_daemon_fail(rc, "model use", r);
		recd_close(rc);
		return r;
	}
	recd_close(rc);
	if (ctl->json) {
		struct json_object *j = json_object_new_object();
		json_object_object_add(j, "model_version", json_object_new_int64(now));
		json_object_object_add(j, "source", json_object_new_string("recd"));
		recctl_print_json(j);
		json_object_put(j);
	} else {
		printf("recd now serves model version %u\n", now);
	}
	return RECCTL_EXIT_OK;
}

/* --- config-check ---------------------------------------------------------------------------- */

static void cc_usage(FILE *f)
{
	fprintf(f, "Usage: recctl [--json] config-check [FILE]\n"
	           "Checks a recd configuration file (default %s/recd/recd.conf) as recd would\n"
	           "read it: exit 0 when it is good, 1 with FILE:LINE: why when it is not.\n",
	        RECCTL_SYSCONFDIR);
}

int cmd_config_check(struct recctl *ctl, int argc, char **argv)
{
	struct recd_conf conf;
	char err[1024];
	const char *path = RECCTL_SYSCONFDIR "/recd/recd.conf";
	int r = simple_opts(ctl, argc, argv, cc_usage);

	if (r)
		return r > 0 ? RECCTL_EXIT_OK : RECCTL_EXIT_USAGE;
	if (argc - optind > 1) {
		cc_usage(stderr);
		return RECCTL_EXIT_USAGE;
	}
	if (optind < argc)
		path = argv[optind];
	r = conf_load(&conf, path, 0, err, sizeof err);
	if (ctl->json) {
		struct json_object *j = json_object_new_object();
		json_object_object_add(j, "file", json_object_new_string(path));
		json_object_object_add(j, "ok", json_object_new_boolean(r >= 0));
		if (r < 0)
			json_object_object_add(j, "error", json_object_new_string(err));
		recctl_print_json(j);
		json_object_put(j);
	}
	if (r < 0) {
		recctl_err("%s", err);
		return RECCTL_EXIT_FAIL;
	}
	if (!ctl->json)
		printf("%s: configuration OK\n", path);
	return RECCTL_EXIT_OK;
}
