/* recctl.c: the command-line front end of recd.  A thin dispatcher: each
 * command lives in client/cmd_*.c over libraries that tests call directly. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "client/recctl.h"

#define RECCTL_DEFAULT_STATE_DIR "/var/lib/recd"

static const struct recctl_cmd {
	const char *name;
	int (*run)(struct recctl *ctl, int argc, char **argv);
	const char *summary;
} recctl_cmds[] = {
	{ "import",   cmd_import,   "import a dataset into the store" },
	{ "generate", cmd_generate, "write the built-in synthetic sample dataset" },
	{ "stats",    cmd_stats,    "show what the store holds" },
	{ "compact",  cmd_compact,  "move the recent events into the users' lists (recd does it itself)" },
	{ "events",   cmd_events,   "show a user's latest events" },
	{ "item",     cmd_item,     "show an item and its knowledge-graph links" },
	{ "train",    cmd_train,    "train the sequence model and store it as a new version" },
	{ "finetune", cmd_finetune, "continue a model version on the events since it was trained" },
	{ "eval",     cmd_eval,     "evaluate a stored model version (leave-one-out)" },
	{ "model",    cmd_model,    "list the stored model versions (list), choose the active one (use)" },
	{ "models",   cmd_models,   "the same as model list" },
	{ "recommend", cmd_recommend, "top items for a user, with --explain" },
	{ "status",   cmd_status,   "what the running recd reports: model, clients, counters" },
	{ "ping",     cmd_ping,     "round trips to the running recd" },
	{ "score",    cmd_score,    "the model's scores of given items for a user (recd, or the store)" },
	{ "ingest",   cmd_ingest,   "hand behaviour events to the running recd" },
	{ "config-check", cmd_config_check, "check a recd.conf file" },
	{ "submit",   cmd_submit,   "hand a job file to recd through its spool" },
	{ "run-job",  cmd_run_job,  "submit a job to the running recd over its socket; --wait for its result" },
	{ "keygen",   cmd_keygen,   "make an Ed25519 key pair for signing jobs" },
	{ "jobs",     cmd_jobs,     "list the batch jobs recd has run or is running" },
	{ "job",      cmd_job,      "one batch job's state; --watch follows it" },
	{ "cancel",   cmd_cancel,   "ask recd to stop a queued or running job" },
};

void recctl_err(const char *fmt, ...)
{
	va_list ap;
	fputs("recctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void recctl_print_json(struct json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
}

int recctl_split_list(const char *cmd, const char *opt, const char *arg, size_t max, char **buf,
                      const char ***items, size_t *n)
{
	size_t cap = 1;
	for (const char *p = arg; *p; p++)
		cap += *p == ',';
	if (cap > max) {
		recctl_err("%s: %s: %zu items, at most %zu", cmd, opt, cap, max);
		return -EINVAL;
	}
	free(*buf);
	free((void *)*items);
	*buf = strdup(arg);
	*items = calloc(cap, sizeof **items);
	if (!*buf || !*items) {
		recctl_err("%s: out of memory", cmd);
		return -ENOMEM;
	}
	*n = 0;
	char *save = NULL;
	for (char *t = strtok_r(*buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
		(*items)[(*n)++] = t;
	if (*n == 0) {
		recctl_err("%s: %s: no item in '%s'", cmd, opt, arg);
		return -EINVAL;
	}
	return 0;
}

int recctl_parse_long(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		recctl_err("%s: %s: '%s' is not a whole number from %ld to %ld", cmd, opt, s, lo, hi);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

int recctl_open_store(const struct recctl *ctl, struct store **st, int readonly)
{
	struct store_options o = { .map_size = 0, .pseudonymise = -1, .readonly = readonly };
	int r = store_open(st, ctl->state_dir, &o);
	if (r < 0)
		recctl_err("%s", store_errmsg(NULL));
	return r;
}

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: recctl [OPTIONS] COMMAND [ARGS]\n"
	        "\n"
	        "Options:\n"
	        "  -d, --state-dir DIR  the store's directory (default: $RECD_STATE_DIR, else %s)\n"
	        "      --socket PATH    recd's socket (default: $RECD_SOCKET, else /run/recd/recd.sock);\n"
	        "                       recommend and model use ask recd with it, or without -d\n"
	        "                       when the default socket exists\n"
	        "      --json           print one JSON document instead of text\n"
	        "  -q, --quiet          no progress messages\n"
	        "  -h, --help           this help; 'recctl COMMAND --help' for a command\n"
	        "  -V, --version        print the version\n"
	        "\n"
	        "Commands:\n", RECCTL_DEFAULT_STATE_DIR);
	for (size_t i = 0; i < sizeof recctl_cmds / sizeof recctl_cmds[0]; i++)
		fprintf(f, "  %-10s %s\n", recctl_cmds[i].name, recctl_cmds[i].summary);
	fprintf(f, "\nExit status: 0 done, 1 failed, 2 usage error, 3 done with bad input skipped.\n"
	           "See recctl(1).\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state-dir", required_argument, NULL, 'd' },
		{ "socket",    required_argument, NULL, 'S' },
		{ "json",      no_argument,       NULL, 'j' },
		{ "quiet",     no_argument,       NULL, 'q' },
		{ "help",      no_argument,       NULL, 'h' },
		{ "version",   no_argument,       NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct recctl ctl = { 0 };
	int c;

	ctl.state_dir = getenv("RECD_STATE_DIR");
	ctl.state_dir_given = ctl.state_dir && *ctl.state_dir;
	if (!ctl.state_dir || !*ctl.state_dir)
		ctl.state_dir = RECCTL_DEFAULT_STATE_DIR;
	/* '+': stop at the command name; what follows is the command's. */
	while ((c = getopt_long(argc, argv, "+d:qhV", opts, NULL)) != -1) {
		switch (c) {
		case 'd': ctl.state_dir = optarg; ctl.state_dir_given = 1; break;
		case 'S': ctl.socket = optarg; break;
		case 'j': ctl.json = 1; break;
		case 'q': ctl.quiet = 1; break;
		case 'h': usage(stdout); return RECCTL_EXIT_OK;
		case 'V': printf("recctl %s\n", PACKAGE_VERSION); return RECCTL_EXIT_OK;
		default:  usage(stderr); return RECCTL_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return RECCTL_EXIT_USAGE;
	}
	const char *name = argv[optind];
	if (strcmp(name, "help") == 0) {
		usage(stdout);
		return RECCTL_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof recctl_cmds / sizeof recctl_cmds[0]; i++) {
		if (strcmp(name, recctl_cmds[i].name) == 0) {
			int first = optind;
			/* Commands parse their own options: optind = 0 makes glibc's
			 * getopt start over on the command's argv. */
			optind = 0;
			return recctl_cmds[i].run(&ctl, argc - first, argv + first);
		}
	}
	recctl_err("unknown command '%s' (see recctl --help)", name);
	return RECCTL_EXIT_USAGE;
}
