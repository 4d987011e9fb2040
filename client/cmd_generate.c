/* cmd_generate.c: recctl generate — writes the built-in synthetic dataset
 * (sample/sample.c) into a directory and, with --import, imports it into the
 * store through the generic importer. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "client/recctl.h"
#include "import/import.h"
#include "sample/sample.h"

static void generate_usage(FILE *f)
{
	fprintf(f,
	        "Usage: recctl [-d DIR] [--json] generate [OPTIONS] OUTDIR\n"
	        "Writes a synthetic dataset (events, items, users, knowledge graph) into\n"
	        "OUTDIR in the generic import format; the same options give the same bytes.\n"
	        "\n"
	        "  --seed N             random seed, 0 to 2^64-1 (default %d)\n"
	        "  --users N            users, 1 to %u (default %u)\n"
	        "  --items N            items, 1 to %u (default %u)\n"
	        "  --days N             days of activity from 2026-01-01, 1 to %u (default %u)\n"
	        "  --events-per-user N  average events per user, 1 to %u (default %u)\n"
	        "  --format csv|tsv     separator of the tables (default csv)\n"
	        "  --import             then import OUTDIR into the store (-d DIR)\n"
	        "  -h, --help           this help\n"
	        "See sample/FORMAT.md and recctl(1).\n",
	        SAMPLE_DEFAULT_SEED, SAMPLE_USERS_MAX, SAMPLE_DEFAULT_USERS,
	        SAMPLE_ITEMS_MAX, SAMPLE_DEFAULT_ITEMS, SAMPLE_DAYS_MAX, SAMPLE_DEFAULT_DAYS,
	        SAMPLE_EVENTS_PER_USER_MAX, SAMPLE_DEFAULT_EVENTS_PER_USER);
}

/* A decimal number in [lo, hi]: digits only, no sign, no spaces. */
static int parse_number(const char *opt, const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = s;
	if (!*p)
		goto bad;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			goto bad;
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			goto bad;
		v = v * 10 + d;
	}
	if (v < lo || v > hi)
		goto bad;
	*out = v;
	return 0;
bad:
	recctl_err("generate: %s: '%s' is not a whole number from %llu to %llu", opt, s,
	           (unsigned long long)lo, (unsigned long long)hi);
	return -EINVAL;
}

static void generate_progress(void *arg, uint64_t done, uint64_t total)
{
	(void)arg;
	fprintf(stderr, "\rgenerate: %3llu%% of %llu users", (unsigned long long)(done * 100 / total),
	        (unsigned long long)total);
	if (done == total)
		fputc('\n', stderr);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static json_object *j_u64(uint64_t v)
{
	return json_object_new_int64(v > INT64_MAX ? INT64_MAX : (int64_t)v);
}

/* Seconds with millisecond digits, not the 17 that %.17g would print. */
static json_object *j_seconds(double s)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%.3f", s);
	return json_object_new_double_s(s, buf);
}

/* Imports the files just written.  Returns a recctl exit status; *jres gets
 * a summary object for --json. */
static int generate_import(struct recctl *ctl, const struct sample_opts *o, const char *outdir,
                           json_object **jres)
{
	char paths[5][4096];
	static const enum sample_file files[5] = {
		SAMPLE_FILE_EVENTS, SAMPLE_FILE_ITEMS, SAMPLE_FILE_USERS,
		SAMPLE_FILE_TRIPLES, SAMPLE_FILE_LINKS,
	};
	struct import_options io;
	struct import_ctx *ictx = NULL;
	struct import_result *res = NULL;
	struct store *st = NULL;
	int r, status = RECCTL_EXIT_FAIL;

	for (int k = 0; k < 5; k++) {
		int n = snprintf(paths[k], sizeof(paths[k]), "%s/%s", outdir,
		                 sample_file_name(o->format, files[k]));
		if (n < 0 || (size_t)n >= sizeof(paths[k])) {
			recctl_err("generate: %s: path too long", outdir);
			return RECCTL_EXIT_FAIL;
		}
	}
	memset(&io, 0, sizeof(io));
	io.format = "generic";
	io.events = paths[0];
	io.items = paths[1];
	io.users = paths[2];
	io.triples = paths[3];
	io.links = paths[4];
	io.dataset = "sample";

	res = calloc(1, sizeof(*res));  /* holds a path per file: too big for the stack */
	if (!res) {
		recctl_err("generate: --import: %s", strerror(ENOMEM));
		return RECCTL_EXIT_FAIL;
	}
	if (recctl_open_store(ctl, &st, 0) < 0)
		goto out;
	r = import_new(&ictx, st, &io);
	if (r < 0) {
		recctl_err("generate: --import: %s", ictx ? import_errmsg(ictx) : strerror(-r));
		goto out;
	}
	r = import_run(ictx, res);
	if (r < 0) {
		recctl_err("generate: --import: %s", import_errmsg(ictx));
		goto out;
	}
	status = res->bad_lines ? RECCTL_EXIT_PARTIAL : RECCTL_EXIT_OK;
	if (ctl->json) {
		json_object *j = json_object_new_object();
		json_object_object_add(j, "state_dir", json_object_new_string(ctl->state_dir));
		json_object_object_add(j, "dataset", json_object_new_string(res->dataset));
		json_object_object_add(j, "already_done", json_object_new_boolean(res->already_done));
		json_object_object_add(j, "lines", j_u64(res->lines));
		json_object_object_add(j, "bad_lines", j_u64(res->bad_lines));
		json_object_object_add(j, "events_added", j_u64(res->events_added));
		json_object_object_add(j, "triples_added", j_u64(res->triples_added));
		json_object_object_add(j, "links_added", j_u64(res->links_added));
		json_object_object_add(j, "users_added", j_u64(res->after.users - res->before.users));
		json_object_object_add(j, "items_added", j_u64(res->after.items - res->before.items));
		json_object_object_add(j, "seconds", j_seconds(res->seconds));
		*jres = j;
	} else if (res->already_done) {
		printf("imported into %s: nothing to do, dataset '%s' was imported before\n",
		       ctl->state_dir, res->dataset);
	} else {
		printf("imported into %s as dataset '%s': %llu users, %llu items, %llu events, "
		       "%llu triples added (%.1f s)\n", ctl->state_dir, res->dataset,
		       (unsigned long long)(res->after.users - res->before.users),
		       (unsigned long long)(res->after.items - res->before.items),
		       (unsigned long long)res->events_added, (unsigned long long)res->triples_added,
		       res->seconds);
		if (res->bad_lines)
			printf("  %llu bad lines skipped\n", (unsigned long long)res->bad_lines);
	}
out:
	import_free(ictx);
	store_close(st);
	free(res);
	return status;
}

int cmd_generate(struct recctl *ctl, int argc, char **argv)
{
	enum { OPT_SEED = 256, OPT_USERS, OPT_ITEMS, OPT_DAYS, OPT_EPU, OPT_FORMAT, OPT_IMPORT, OPT_JSON };
	static const struct option opts[] = {
		{ "seed",            required_argument, NULL, OPT_SEED },
		{ "users",           required_argument, NULL, OPT_USERS },
		{ "items",           required_argument, NULL, OPT_ITEMS },
		{ "days",            required_argument, NULL, OPT_DAYS },
		{ "events-per-user", required_argument, NULL, OPT_EPU },
		{ "format",          required_argument, NULL, OPT_FORMAT },
		{ "import",          no_argument,       NULL, OPT_IMPORT },
		{ "json",            no_argument,       NULL, OPT_JSON },
		{ "help",            no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sample_opts o;
	struct sample_stats st;
	char why[512];
	uint64_t v;
	int ch, do_import = 0, status;
	json_object *jimport = NULL;

	sample_opts_default(&o);
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case OPT_SEED:
			if (parse_number("--seed", optarg, 0, UINT64_MAX, &v) < 0)
				return RECCTL_EXIT_USAGE;
			o.seed = v;
			break;
		case OPT_USERS:
			if (parse_number("--users", optarg, 1, SAMPLE_USERS_MAX, &v) < 0)
				return RECCTL_EXIT_USAGE;
			o.users = (uint32_t)v;
			break;
		case OPT_ITEMS:
			if (parse_number("--items", optarg, 1, SAMPLE_ITEMS_MAX, &v) < 0)
				return RECCTL_EXIT_USAGE;
			o.items = (uint32_t)v;
			break;
		case OPT_DAYS:
			if (parse_number("--days", optarg, 1, SAMPLE_DAYS_MAX, &v) < 0)
				return RECCTL_EXIT_USAGE;
			o.days = (uint32_t)v;
			break;
		case OPT_EPU:
			if (parse_number("--events-per-user", optarg, 1, SAMPLE_EVENTS_PER_USER_MAX, &v) < 0)
				return RECCTL_EXIT_USAGE;
			o.events_per_user = (uint32_t)v;
			break;
		case OPT_FORMAT:
			if (strcmp(optarg, "csv") == 0) {
				o.format = SAMPLE_FORMAT_CSV;
			} else if (strcmp(optarg, "tsv") == 0) {
				o.format = SAMPLE_FORMAT_TSV;
			} else {
				recctl_err("generate: --format: '%s' is not csv or tsv", optarg);
				return RECCTL_EXIT_USAGE;
			}
			break;
		case OPT_IMPORT: do_import = 1; break;
		case OPT_JSON:   ctl->json = 1; break;
		case 'h':        generate_usage(stdout); return RECCTL_EXIT_OK;
		default:         generate_usage(stderr); return RECCTL_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		recctl_err("generate: missing OUTDIR (see recctl generate --help)");
		return RECCTL_EXIT_USAGE;
	}
	if (optind + 1 < argc) {
		recctl_err("generate: unexpected argument '%s'", argv[optind + 1]);
		return RECCTL_EXIT_USAGE;
	}
	const char *outdir = argv[optind];
	if (!*outdir) {
		recctl_err("generate: OUTDIR is empty");
		return RECCTL_EXIT_USAGE;
	}

	if (!ctl->quiet && !ctl->json && isatty(STDERR_FILENO) && o.users >= 10000)
		o.progress = generate_progress;
	double t0 = now_s();
	int r = sample_generate(&o, outdir, &st, why, sizeof(why));
	double secs = now_s() - t0;
	if (r < 0) {
		recctl_err("generate: %s", why);
		return RECCTL_EXIT_FAIL;
	}

	status = RECCTL_EXIT_OK;
	if (!ctl->json) {
		printf("wrote %s in %.2f s (seed %llu, %u days from 2026-01-01)\n", outdir, secs,
		       (unsigned long long)o.seed, o.days);
		printf("  %-12s %llu users\n", sample_file_name(o.format, SAMPLE_FILE_USERS),
		       (unsigned long long)st.users);
		printf("  %-12s %llu items (%llu in %llu series)\n",
		       sample_file_name(o.format, SAMPLE_FILE_ITEMS), (unsigned long long)st.items,
		       (unsigned long long)st.series_items, (unsigned long long)st.series);
		printf("  %-12s %llu events in %llu sessions: %llu view, %llu click, %llu cart, "
		       "%llu purchase, %llu rate\n", sample_file_name(o.format, SAMPLE_FILE_EVENTS),
		       (unsigned long long)st.events, (unsigned long long)st.sessions,
		       (unsigned long long)st.actions[SAMPLE_ACTION_VIEW],
		       (unsigned long long)st.actions[SAMPLE_ACTION_CLICK],
		       (unsigned long long)st.actions[SAMPLE_ACTION_CART],
		       (unsigned long long)st.actions[SAMPLE_ACTION_PURCHASE],
		       (unsigned long long)st.actions[SAMPLE_ACTION_RATE]);
		printf("  %-12s %llu triples over %llu entities\n", "triples.tsv",
		       (unsigned long long)st.triples, (unsigned long long)st.entities);
		printf("  %-12s %llu links\n", sample_file_name(o.format, SAMPLE_FILE_LINKS),
		       (unsigned long long)st.links);
		printf("  %-12s what was generated, with the options\n", "README");
		fflush(stdout);
	}
	if (do_import)
		status = generate_import(ctl, &o, outdir, &jimport);

	if (ctl->json) {
		json_object *j = json_object_new_object();
		json_object *files = json_object_new_array();
		json_object *actions = json_object_new_object();
		for (int f = 0; f < SAMPLE_FILE_COUNT; f++)
			json_object_array_add(files, json_object_new_string(sample_file_name(o.format, f)));
		for (int a = 0; a < SAMPLE_ACTION_COUNT; a++)
			json_object_object_add(actions, sample_action_name(a), j_u64(st.actions[a]));
		json_object_object_add(j, "outdir", json_object_new_string(outdir));
		json_object_object_add(j, "seed", j_u64(o.seed));
		json_object_object_add(j, "format", json_object_new_string(o.format == SAMPLE_FORMAT_TSV ? "tsv" : "csv"));
		json_object_object_add(j, "days", j_u64(o.days));
		json_object_object_add(j, "events_per_user", j_u64(o.events_per_user));
		json_object_object_add(j, "users", j_u64(st.users));
		json_object_object_add(j, "items", j_u64(st.items));
		json_object_object_add(j, "events", j_u64(st.events));
		json_object_object_add(j, "sessions", j_u64(st.sessions));
		json_object_object_add(j, "actions", actions);
		json_object_object_add(j, "triples", j_u64(st.triples));
		json_object_object_add(j, "entities", j_u64(st.entities));
		json_object_object_add(j, "links", j_u64(st.links));
		json_object_object_add(j, "series", j_u64(st.series));
		json_object_object_add(j, "series_items", j_u64(st.series_items));
		json_object_object_add(j, "creators", j_u64(st.creators));
		json_object_object_add(j, "bytes", j_u64(st.bytes));
		json_object_object_add(j, "files", files);
		json_object_object_add(j, "seconds", j_seconds(secs));
		if (jimport)
			json_object_object_add(j, "import", jimport);
		printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY |
		                                                 JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(j);
	}
	return status;
}
