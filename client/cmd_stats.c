/* cmd_stats.c: recctl stats — what the store holds, for people or scripts. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "client/recctl.h"

struct stats_datasets {
	json_object *arr;  /* --json: array of { name, ...metadata } */
	int human;
};

static int stats_dataset(const char *name, const char *json, void *arg)
{
	struct stats_datasets *ds = arg;
	json_object *meta = json_tokener_parse(json);

	if (ds->human) {
		printf("dataset %s\n", name);
		if (meta && json_object_is_type(meta, json_type_object)) {
			json_object_object_foreach(meta, key, val) {
				const char *v = json_object_is_type(val, json_type_string) ? json_object_get_string(val) :
					json_object_to_json_string_ext(val, JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
				printf("  %-14s %s\n", key, v);
			}
		} else {
			printf("  %s\n", json);
		}
		json_object_put(meta);
		return 0;
	}
	json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "metadata", meta ? meta : json_object_new_string(json));
	json_object_array_add(ds->arr, o);
	return 0;
}

static void stats_usage(FILE *f)
{
	fprintf(f, "Usage: recctl [-d DIR] [--json] stats\n"
	           "Counts of users, items, events (and of those, the recent ones not yet\n"
	           "compacted: recctl compact), entities, relations, triples and model\n"
	           "versions; the store's size on disk; what each imported dataset was.\n");
}

int cmd_stats(struct recctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	struct store *st = NULL;
	struct store_txn *tx = NULL;
	struct store_counts c;
	int ch, r, status = RECCTL_EXIT_FAIL;

	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'h': stats_usage(stdout); return RECCTL_EXIT_OK;
		case 'j': ctl->json = 1; break;
		default:  stats_usage(stderr); return RECCTL_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		recctl_err("stats: unexpected argument '%s'", argv[optind]);
		return RECCTL_EXIT_USAGE;
	}
	if (recctl_open_store(ctl, &st, 1) < 0)
		return RECCTL_EXIT_FAIL;
	if ((r = store_read_begin(st, &tx)) < 0 || (r = store_counts(tx, &c)) < 0) {
		recctl_err("stats: %s", store_errmsg(st));
		goto out;
	}
	if (ctl->json) {
		json_object *o = json_object_new_object();
		struct stats_datasets ds = { json_object_new_array(), 0 };
		json_object_object_add(o, "state_dir", json_object_new_string(ctl->state_dir));
		json_object_object_add(o, "users", json_object_new_int64((int64_t)c.users));
		json_object_object_add(o, "items", json_object_new_int64((int64_t)c.items));
		json_object_object_add(o, "events", json_object_new_int64((int64_t)c.events));
		json_object_object_add(o, "recent_events", json_object_new_int64((int64_t)c.recent));
		json_object_object_add(o, "entities", json_object_new_int64((int64_t)c.entities));
		json_object_object_add(o, "relations", json_object_new_int64((int64_t)c.relations));
		json_object_object_add(o, "triples", json_object_new_int64((int64_t)c.triples));
		json_object_object_add(o, "models", json_object_new_int64((int64_t)c.models));
		json_object_object_add(o, "store_bytes", json_object_new_int64((int64_t)c.file_bytes));
		json_object_object_add(o, "map_bytes", json_object_new_int64((int64_t)c.map_bytes));
		json_object_object_add(o, "pseudonymised_user_ids", json_object_new_boolean(store_pseudonymised(st)));
		r = store_dataset_foreach(tx, stats_dataset, &ds);
		json_object_object_add(o, "datasets", ds.arr);
		if (r == 0)
			recctl_print_json(o);
		json_object_put(o);
	} else {
		struct stats_datasets ds = { NULL, 1 };
		printf("store        %s\n", ctl->state_dir);
		printf("users        %llu%s\n", (unsigned long long)c.users,
		       store_pseudonymised(st) ? " (IDs pseudonymised)" : "");
		printf("items        %llu\n", (unsigned long long)c.items);
		printf("events       %llu", (unsigned long long)c.events);
		if (c.recent)
			printf(" (%llu recent, not yet compacted)", (unsigned long long)c.recent);
		putchar('\n');
		printf("entities     %llu\n", (unsigned long long)c.entities);
		printf("relations    %llu\n", (unsigned long long)c.relations);
		printf("triples      %llu\n", (unsigned long long)c.triples);
		printf("models       %llu\n", (unsigned long long)c.models);
		printf("size         %.1f MiB on disk (map %.0f MiB)\n", c.file_bytes / 1048576.0, c.map_bytes / 1048576.0);
		r = store_dataset_foreach(tx, stats_dataset, &ds);
	}
	if (r < 0)
		recctl_err("stats: %s", store_errmsg(st));
	else
		status = RECCTL_EXIT_OK;
out:
	store_txn_end(tx);
	store_close(st);
	return status;
}
