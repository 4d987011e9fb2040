/* cmd_import.c: recctl import FORMAT PATH: imports a dataset into the store
 * through import/ and reports what it did, as text or as one JSON object. */
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

static void cli_usage(FILE *f)
{
	fprintf(f,
	        "Usage: recctl [-d DIR] [--json] import [OPTIONS] FORMAT PATH\n"
	        "       recctl [-d DIR] [--json] import [OPTIONS] generic [DIR] [--events F] [--items F]\n"
	        "              [--users F] [--triples F] [--links F]\n"
	        "\n"
	        "Formats:\n"
	        "  ml1m-seq FILE   'user item' lines, each user's in time order (no timestamps)\n"
	        "  ml1m DIR        MovieLens-1M: movies.dat, users.dat, ratings.dat, kg/\n"
	        "  ml100k DIR      RecBole atomic files NAME.inter/.item/.user/.kg/.link (alias: recbole)\n"
	        "  foursquare DIR  *_checkins.tsv and *_pois.tsv\n"
	        "  amazon FILE     Amazon reviews, one JSON object per line\n"
	        "  generic         CSV or TSV files with a header line (see recctl(1))\n"
	        "\n"
	        "Options:\n"
	        "      --events F     generic: the events file\n"
	        "      --items F      generic: the items file\n"
	        "      --users F      generic: the users file\n"
	        "      --triples F    generic: the knowledge-graph triples file\n"
	        "      --links F      generic: the item-to-entity links file\n"
	        "      --dataset NAME the name the import is recorded under (default: from PATH)\n"
	        "      --strict       a bad line fails the import and nothing is imported\n"
	        "      --batch N      lines per write transaction (default %u, at most %u)\n"
	        "  -q, --quiet        no progress messages\n"
	        "  -h, --help         this help\n", IMPORT_BATCH_DEFAULT, IMPORT_BATCH_MAX);
}

struct import_cli {
	int quiet;
	int tty;
	struct timespec start, last;
	int shown;      /* a progress line is on the terminal */
};

static double elapsed(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) * 1e-9;
}

/* At most one progress line a second, so a fast import prints none. */
static void cli_progress(void *arg, const char *file, uint64_t lines, uint64_t bytes_done,
                            uint64_t bytes_total)
{
	struct import_cli *cli = arg;
	struct timespec now;
	if (cli->quiet)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (elapsed(&cli->last, &now) < 1.0)
		return;
	cli->last = now;
	double secs = elapsed(&cli->start, &now);
	fprintf(stderr, "%simport: %s: %llu lines, %.0f%%, %.0f lines/s%s", cli->tty ? "\r" : "",
	        file, (unsigned long long)lines, bytes_total ? 100.0 * (double)bytes_done / (double)bytes_total : 100.0,
	        secs > 0 ? (double)lines / secs : 0.0, cli->tty ? "\033[K" : "\n");
	cli->shown = cli->tty;
}

/* Bad-line messages: on their own line even while progress is shown. */
static void cli_message(void *arg, const char *msg)
{
	struct import_cli *cli = arg;
	if (cli->shown) {
		fputs("\r\033[K", stderr);
		cli->shown = 0;
	}
	fprintf(stderr, "%s\n", msg);
}

static uint64_t delta(uint64_t after, uint64_t before)
{
	return after > before ? after - before : 0;
}

static int print_json(const char *format, const struct import_result *r)
{
	json_object *o = json_object_new_object(), *files = json_object_new_array();
	if (!o || !files) {
		json_object_put(o);
		json_object_put(files);
		return -ENOMEM;
	}
	json_object_object_add(o, "dataset", json_object_new_string(r->dataset));
	json_object_object_add(o, "format", json_object_new_string(format));
	json_object_object_add(o, "time_unit", json_object_new_string(r->time_unit));
	json_object_object_add(o, "already_imported", json_object_new_boolean(r->already_done));
	json_object_object_add(o, "resumed", json_object_new_boolean(r->resumed));
	json_object_object_add(o, "lines", json_object_new_int64((int64_t)r->lines));
	json_object_object_add(o, "events_added", json_object_new_int64((int64_t)r->events_added));
	json_object_object_add(o, "users", json_object_new_int64((int64_t)delta(r->after.users, r->before.users)));
	json_object_object_add(o, "items", json_object_new_int64((int64_t)delta(r->after.items, r->before.items)));
	json_object_object_add(o, "entities", json_object_new_int64((int64_t)delta(r->after.entities, r->before.entities)));
	json_object_object_add(o, "relations", json_object_new_int64((int64_t)delta(r->after.relations, r->before.relations)));
	json_object_object_add(o, "triples", json_object_new_int64((int64_t)delta(r->after.triples, r->before.triples)));
	json_object_object_add(o, "links", json_object_new_int64((int64_t)r->links_added));
	json_object_object_add(o, "bad_lines", json_object_new_int64((int64_t)r->bad_lines));
	json_object_object_add(o, "seconds", json_object_new_double(r->seconds));
	json_object_object_add(o, "events_per_s",
	                       json_object_new_double(r->seconds > 0 ? (double)r->events_added / r->seconds : 0));
	json_object *tot = json_object_new_object();
	json_object_object_add(tot, "users", json_object_new_int64((int64_t)r->after.users));
	json_object_object_add(tot, "items", json_object_new_int64((int64_t)r->after.items));
	json_object_object_add(tot, "events", json_object_new_int64((int64_t)r->after.events));
	json_object_object_add(tot, "entities", json_object_new_int64((int64_t)r->after.entities));
	json_object_object_add(tot, "relations", json_object_new_int64((int64_t)r->after.relations));
	json_object_object_add(tot, "triples", json_object_new_int64((int64_t)r->after.triples));
	json_object_object_add(tot, "file_bytes", json_object_new_int64((int64_t)r->after.file_bytes));
	json_object_object_add(o, "store", tot);
	json_object_object_add(o, "store_bytes", json_object_new_int64((int64_t)r->after.file_bytes));
	for (size_t i = 0; i < r->nfiles; i++) {
		const struct import_file_result *f = &r->files[i];
		json_object *jf = json_object_new_object();
		json_object_object_add(jf, "path", json_object_new_string(f->path));
		json_object_object_add(jf, "role", json_object_new_string(import_kind_name(f->kind)));
		json_object_object_add(jf, "found", json_object_new_boolean(f->present));
		json_object_object_add(jf, "lines", json_object_new_int64((int64_t)f->lines));
		json_object_object_add(jf, "records", json_object_new_int64((int64_t)f->records));
		json_object_object_add(jf, "bad_lines", json_object_new_int64((int64_t)f->bad_lines));
		json_object_array_add(files, jf);
	}
	json_object_object_add(o, "files", files);
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return 0;
}

static void print_text(const char *state_dir, const char *format, const struct import_result *r)
{
	if (r->already_done) {
		printf("nothing to import: these files were imported into %s before (format %s); nothing was applied\n",
		       state_dir, format);
		return;
	}
	printf("imported dataset '%s' (format %s, time unit %s) into %s in %.2f s%s\n", r->dataset, format,
	       r->time_unit, state_dir, r->seconds, r->resumed ? ", resuming an interrupted import" : "");
	for (size_t i = 0; i < r->nfiles; i++) {
		const struct import_file_result *f = &r->files[i];
		if (!f->present)
			printf("  %-8s %s: not found, skipped\n", import_kind_name(f->kind), f->path);
		else
			printf("  %-8s %s: %llu lines, %llu records, %llu bad\n", import_kind_name(f->kind), f->path,
			       (unsigned long long)f->lines, (unsigned long long)f->records,
			       (unsigned long long)f->bad_lines);
	}
	printf("  added: %llu events, %llu users, %llu items, %llu entities, %llu relations, %llu triples, %llu links\n",
	       (unsigned long long)r->events_added,
	       (unsigned long long)delta(r->after.users, r->before.users),
	       (unsigned long long)delta(r->after.items, r->before.items),
	       (unsigned long long)delta(r->after.entities, r->before.entities),
	       (unsigned long long)delta(r->after.relations, r->before.relations),
	       (unsigned long long)delta(r->after.triples, r->before.triples),
	       (unsigned long long)r->links_added);
	if (r->seconds >= 0.01 && r->events_added)
		printf("  %.0f events/s\n", (double)r->events_added / r->seconds);
	if (r->bad_lines)
		printf("  %llu bad line%s skipped (see the messages above)\n", (unsigned long long)r->bad_lines,
		       r->bad_lines == 1 ? "" : "s");
}

int cmd_import(struct recctl *ctl, int argc, char **argv)
{
	enum { O_EVENTS = 256, O_ITEMS, O_USERS, O_TRIPLES, O_LINKS, O_DATASET, O_STRICT, O_BATCH };
	static const struct option opts[] = {
		{ "events",  required_argument, NULL, O_EVENTS },
		{ "items",   required_argument, NULL, O_ITEMS },
		{ "users",   required_argument, NULL, O_USERS },
		{ "triples", required_argument, NULL, O_TRIPLES },
		{ "links",   required_argument, NULL, O_LINKS },
		{ "dataset", required_argument, NULL, O_DATASET },
		{ "strict",  no_argument,       NULL, O_STRICT },
		{ "batch",   required_argument, NULL, O_BATCH },
		{ "quiet",   no_argument,       NULL, 'q' },
		{ "help",    no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct import_options opt = { 0 };
	struct import_cli cli = { .quiet = ctl->quiet };
	struct import_result *res = NULL;
	struct import_ctx *ctx = NULL;
	struct store *st = NULL;
	int c, rc, ret = RECCTL_EXIT_FAIL;

	while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
		switch (c) {
		case O_EVENTS:  opt.events = optarg; break;
		case O_ITEMS:   opt.items = optarg; break;
		case O_USERS:   opt.users = optarg; break;
		case O_TRIPLES: opt.triples = optarg; break;
		case O_LINKS:   opt.links = optarg; break;
		case O_DATASET: opt.dataset = optarg; break;
		case O_STRICT:  opt.strict = 1; break;
		case O_BATCH: {
			char *end;
			errno = 0;
			unsigned long v = strtoul(optarg, &end, 10);
			if (errno || *end || end == optarg || v == 0 || v > IMPORT_BATCH_MAX) {
				recctl_err("import: --batch: a number of lines from 1 to %u", IMPORT_BATCH_MAX);
				return RECCTL_EXIT_USAGE;
			}
			opt.batch_lines = v;
			break;
		}
		case 'q': cli.quiet = 1; break;
		case 'h': cli_usage(stdout); return RECCTL_EXIT_OK;
		default:  cli_usage(stderr); return RECCTL_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		recctl_err("import: no format given");
		cli_usage(stderr);
		return RECCTL_EXIT_USAGE;
	}
	opt.format = argv[optind++];
	int known = 0;
	for (const char *const *n = import_format_names; *n; n++)
		known |= strcmp(*n, opt.format) == 0;
	if (!known) {
		recctl_err("import: unknown format '%s'", opt.format);
		cli_usage(stderr);
		return RECCTL_EXIT_USAGE;
	}
	int generic = strcmp(opt.format, "generic") == 0;
	if (!generic && (opt.events || opt.items || opt.users || opt.triples || opt.links)) {
		recctl_err("import: --events, --items, --users, --triples and --links are for the generic format");
		return RECCTL_EXIT_USAGE;
	}
	if (optind < argc)
		opt.path = argv[optind++];
	if (optind < argc) {
		recctl_err("import: one PATH only (unexpected '%s')", argv[optind]);
		return RECCTL_EXIT_USAGE;
	}
	if (generic && opt.path && (opt.events || opt.items || opt.users || opt.triples || opt.links)) {
		recctl_err("import: generic takes a DIR or --events/--items/--users/--triples/--links, not both");
		return RECCTL_EXIT_USAGE;
	}
	if (!opt.path && !(generic && (opt.events || opt.items || opt.users || opt.triples || opt.links))) {
		recctl_err("import: %s needs a %s", opt.format, generic ? "DIR or --events FILE" : "PATH");
		return RECCTL_EXIT_USAGE;
	}

	cli.tty = isatty(STDERR_FILENO);
	clock_gettime(CLOCK_MONOTONIC, &cli.start);
	cli.last = cli.start;
	opt.message = cli_message;
	opt.progress = cli_progress;
	opt.cb_arg = &cli;

	if (!(res = malloc(sizeof(*res)))) {
		recctl_err("import: out of memory");
		return RECCTL_EXIT_FAIL;
	}
	if (recctl_open_store(ctl, &st, 0) < 0)
		goto out;
	if ((rc = import_new(&ctx, st, &opt)) < 0) {
		recctl_err("import: %s", strerror(-rc));
		goto out;
	}
	rc = import_run(ctx, res);
	if (cli.shown)
		fputs("\r\033[K", stderr);
	if (rc < 0) {
		recctl_err("import: %s", import_errmsg(ctx));
		goto out;
	}
	if (ctl->json) {
		if (print_json(opt.format, res) < 0) {
			recctl_err("import: out of memory");
			goto out;
		}
	} else {
		print_text(ctl->state_dir, opt.format, res);
	}
	ret = res->bad_lines ? RECCTL_EXIT_PARTIAL : RECCTL_EXIT_OK;
out:
	import_free(ctx);
	if (st)
		store_close(st);
	free(res);
	return ret;
}
