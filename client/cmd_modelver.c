/* cmd_modelver.c: recctl model list|use (and models, the old name of model
 * list): the stored model versions, and which one is active, i.e. served by
 * recd and by recctl recommend.  The choice is kept in the store
 * (store_model_active_set); a running recd picks it up on reload. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "client/recctl.h"
#include "store/store.h"

struct list_view {
	json_object *arr;
	uint32_t active;     /* the active version: the chosen one, else the latest */
	int chosen;          /* it was chosen with model use */
};

static int list_one(const struct store_model_meta *mm, size_t blob_len, void *arg)
{
	struct list_view *lv = arg;
	char when[32];
	time_t t = (time_t)mm->created;
	struct tm tm;
	int active = mm->version == lv->active;
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
	if (lv->arr) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "version", json_object_new_int64(mm->version));
		json_object_object_add(o, "parent", json_object_new_int64(mm->parent));
		json_object_object_add(o, "kind", json_object_new_string(mm->kind));
		json_object_object_add(o, "created", json_object_new_string(when));
		json_object_object_add(o, "snapshot_events", json_object_new_int64((int64_t)mm->snapshot_events));
		json_object_object_add(o, "bytes", json_object_new_int64((int64_t)blob_len));
		json_object_object_add(o, "active", json_object_new_boolean(active));
		json_object *met = mm->metrics[0] ? json_tokener_parse(mm->metrics) : NULL;
		json_object_object_add(o, "metrics", met ? met : json_object_new_object());
		json_object_array_add(lv->arr, o);
	} else {
		printf("%c%6u  %-7s %-20s %6u %10llu %8.1f  %s\n", active ? '*' : ' ', mm->version, mm->kind, when,
		       mm->parent, (unsigned long long)mm->snapshot_events, blob_len / 1048576.0, mm->metrics);
	}
	return 0;
}

static void list_usage(FILE *f)
{
	fprintf(f,
	        "Usage: recctl [-d DIR] [--json] model list\n"
	        "The stored model versions with their parent, creation time, events seen and\n"
	        "metrics; '*' marks the active one (chosen with model use, else the latest).\n");
}

static int model_list(struct recctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' }, { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	struct store *st = NULL;
	struct store_txn *tx = NULL;
	int c, r, status = RECCTL_EXIT_FAIL;

	optind = 0;  /* glibc: start over on this argv */
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'j': ctl->json = 1; break;
		case 'h': list_usage(stdout); return RECCTL_EXIT_OK;
		default:  list_usage(stderr); return RECCTL_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		recctl_err("model list: unexpected argument '%s'", argv[optind]);
		return RECCTL_EXIT_USAGE;
	}
	if (recctl_open_store(ctl, &st, 1) < 0)
		return RECCTL_EXIT_FAIL;
	struct list_view lv = { ctl->json ? json_object_new_array() : NULL, 0, 0 };
	if ((r = store_read_begin(st, &tx)) < 0 || (r = store_model_active_get(tx, &lv.active)) < 0)
		goto fail;
	lv.chosen = lv.active != 0;
	if (!lv.active && (r = store_model_latest(tx, &lv.active)) < 0 && r != -ENOENT)
		goto fail;
	if (!ctl->json)
		printf(" version kind    created              parent     events      MiB  metrics\n");
	if ((r = store_model_foreach(tx, list_one, &lv)) < 0)
		goto fail;
	if (lv.arr)
		recctl_print_json(lv.arr);
	else if (lv.active)
		printf("active: version %u (%s)\n", lv.active, lv.chosen ? "chosen with recctl model use" : "the latest");
	else
		printf("no model trained yet (recctl train)\n");
	status = RECCTL_EXIT_OK;
	goto out;
fail:
	recctl_err("model list: %s", store_errmsg(st));
out:
	json_object_put(lv.arr);
	store_txn_end(tx);
	store_close(st);
	return status;
}

static int use_txn(struct store_txn *tx, void *arg)
{
	uint32_t *v = arg;
	int r;
	if (*v == 0 && (r = store_model_latest(tx, v)) < 0)
		return r;
	return store_model_active_set(tx, *v);
}

static void use_usage(FILE *f)
{
	fprintf(f,
	        "Usage: recctl [-d DIR] [--json] model use VERSION|latest\n"
	        "Makes VERSION the active model version: the one recd serves (after a reload:\n"
	        "systemctl reload recd) and recctl recommend uses.  'latest' chooses the newest\n"
	        "version now; later training does not change the choice.\n");
}

static int model_use(struct recctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' }, { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	struct store *st = NULL;
	long v = 0;
	int c, r;

	optind = 0;  /* glibc: start over on this argv */
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'j': ctl->json = 1; break;
		case 'h': use_usage(stdout); return RECCTL_EXIT_OK;
		default:  use_usage(stderr); return RECCTL_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		use_usage(stderr);
		return RECCTL_EXIT_USAGE;
	}
	if (strcmp(argv[optind], "latest") != 0 &&
	    recctl_parse_long("model use", "VERSION", argv[optind], 1, 0xfffffffe, &v) < 0)
		return RECCTL_EXIT_USAGE;
	if (recctl_open_store(ctl, &st, 0) < 0)
		return RECCTL_EXIT_FAIL;
	uint32_t ver = (uint32_t)v;
	if ((r = store_write(st, use_txn, &ver)) < 0) {
		recctl_err("model use: %s", store_errmsg(st));
		store_close(st);
		return RECCTL_EXIT_FAIL;
	}
	store_close(st);
	if (ctl->json) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "active", json_object_new_int64(ver));
		recctl_print_json(o);
		json_object_put(o);
	} else {
		printf("model version %u is active\n", ver);
	}
	return RECCTL_EXIT_OK;
}

static void model_usage(FILE *f)
{
	fprintf(f,
	        "Usage: recctl [-d DIR] [--json] model list\n"
	        "       recctl [-d DIR] [--json] model use VERSION|latest\n"
	        "  list  the stored model versions, the active one marked\n"
	        "  use   make a version the active one (served by recd and recctl recommend)\n");
}

int cmd_model(struct recctl *ctl, int argc, char **argv)
{
	if (argc < 2) {
		model_usage(stderr);
		return RECCTL_EXIT_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		model_usage(stdout);
		return RECCTL_EXIT_OK;
	}
	if (strcmp(argv[1], "list") == 0)
		return model_list(ctl, argc - 1, argv + 1);
	if (strcmp(argv[1], "use") == 0)
		return recctl_via_daemon(ctl) ? cmd_daemon_model_use(ctl, argc - 1, argv + 1)
		                              : model_use(ctl, argc - 1, argv + 1);
	recctl_err("model: unknown subcommand '%s' (list, use)", argv[1]);
	model_usage(stderr);
	return RECCTL_EXIT_USAGE;
}

int cmd_models(struct recctl *ctl, int argc, char **argv)
{
	return model_list(ctl, argc, argv);
}
