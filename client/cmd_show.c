/* cmd_show.c: recctl events and recctl item — read what the store holds
 * about one user or one item, with titles and knowledge-graph links. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "client/recctl.h"

#define SHOW_EVENTS_MAX 10000  /* -n is bounded: one read, one buffer */
#define SHOW_EDGES_MAX  50     /* KG edges listed per item */

/* Is every dataset in the store timed in seconds?  Then times print as dates. */
static int show_unit_cb(const char *name, const char *json, void *arg)
{
	int *seconds = arg;
	(void)name;
	json_object *o = json_tokener_parse(json), *u;
	if (!o || !json_object_object_get_ex(o, "time_unit", &u) ||
	    strcmp(json_object_get_string(u), "second") != 0)
		*seconds = 0;
	json_object_put(o);
	return 0;
}

static void show_time(char *buf, size_t len, int64_t ts, int seconds)
{
	struct tm tm;
	time_t t = (time_t)ts;
	if (seconds && gmtime_r(&t, &tm))
		strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
	else
		snprintf(buf, len, "%" PRId64, ts);
}

static void events_usage(FILE *f)
{
	fprintf(f, "Usage: recctl [-d DIR] [--json] events [-n N] USER\n"
	           "The last N events (default 20, at most %d) of USER, oldest first, with\n"
	           "item titles, actions, values, places and devices.\n", SHOW_EVENTS_MAX);
}

int cmd_events(struct recctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "count", required_argument, NULL, 'n' },
		{ "json",  no_argument,       NULL, 'j' },
		{ "help",  no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct store *st = NULL;
	struct store_txn *tx = NULL;
	struct store_event *ev = NULL;
	long n = 20;
	size_t got;
	uint32_t uid;
	int c, r, seconds = 1, status = RECCTL_EXIT_FAIL;

	while ((c = getopt_long(argc, argv, "n:h", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			if (recctl_parse_long("events", "-n", optarg, 1, SHOW_EVENTS_MAX, &n) < 0)
				return RECCTL_EXIT_USAGE;
			break;
		case 'j': ctl->json = 1; break;
		case 'h': events_usage(stdout); return RECCTL_EXIT_OK;
		default:  events_usage(stderr); return RECCTL_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		events_usage(stderr);
		return RECCTL_EXIT_USAGE;
	}
	const char *user = argv[optind];
	if (recctl_open_store(ctl, &st, 1) < 0)
		return RECCTL_EXIT_FAIL;
	if (!(ev = calloc((size_t)n, sizeof *ev))) {
		recctl_err("events: out of memory");
		goto out;
	}
	if ((r = store_read_begin(st, &tx)) < 0)
		goto fail;
	if ((r = store_user_lookup(tx, user, strlen(user), &uid)) < 0) {
		if (r == -ENOENT) {
			recctl_err("events: no user '%s' in %s", user, ctl->state_dir);
			goto out;
		}
		goto fail;
	}
	if ((r = store_dataset_foreach(tx, show_unit_cb, &seconds)) < 0 ||
	    (r = store_events_last(tx, uid, (size_t)n, ev, &got)) < 0)
		goto fail;

	json_object *arr = ctl->json ? json_object_new_array() : NULL;
	if (!ctl->json)
		printf("user %s: last %zu event%s\n", user, got, got == 1 ? "" : "s");
	for (size_t i = 0; i < got; i++) {
		struct store_item it = { 0 };
		const char *act = "?", *dev = NULL;
		size_t actl = 1, devl = 0;
		char when[40];
		store_item_get(tx, ev[i].item, &it);
		store_action_name(tx, ev[i].action, &act, &actl);
		if (ev[i].device)
			store_device_name(tx, ev[i].device, &dev, &devl);
		show_time(when, sizeof when, ev[i].ts, seconds);
		if (ctl->json) {
			json_object *o = json_object_new_object();
			json_object_object_add(o, "time", json_object_new_int64(ev[i].ts));
			json_object_object_add(o, "item", json_object_new_string_len(it.ext_id ? it.ext_id : "", (int)it.ext_id_len));
			json_object_object_add(o, "title", json_object_new_string_len(it.title ? it.title : "", (int)it.title_len));
			json_object_object_add(o, "action", json_object_new_string_len(act, (int)actl));
			if (ev[i].flags & STORE_EV_VALUE)
				json_object_object_add(o, "value", json_object_new_double(ev[i].value));
			if (ev[i].flags & STORE_EV_LOC) {
				json_object_object_add(o, "lat", json_object_new_double(ev[i].lat));
				json_object_object_add(o, "lon", json_object_new_double(ev[i].lon));
			}
			if (dev)
				json_object_object_add(o, "device", json_object_new_string_len(dev, (int)devl));
			json_object_array_add(arr, o);
			continue;
		}
		printf("  %-20s %-8.*s %-10.*s %.*s", when, (int)actl, act, (int)it.ext_id_len, it.ext_id ? it.ext_id : "",
		       (int)(it.title_len > 48 ? 48 : it.title_len), it.title ? it.title : "");
		if (ev[i].flags & STORE_EV_VALUE)
			printf("  value=%g", ev[i].value);
		if (ev[i].flags & STORE_EV_LOC)
			printf("  at=%.5f,%.5f", ev[i].lat, ev[i].lon);
		if (dev)
			printf("  device=%.*s", (int)devl, dev);
		putchar('\n');
	}
	if (ctl->json) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "user", json_object_new_string(user));
		json_object_object_add(o, "events", arr);
		recctl_print_json(o);
		json_object_put(o);
	}
	status = RECCTL_EXIT_OK;
	goto out;
fail:
	recctl_err("events: %s", store_errmsg(st));
out:
	store_txn_end(tx);
	store_close(st);
	free(ev);
	return status;
}

struct show_edges {
	struct store_txn *tx;
	json_object *arr;
	int n;
};

static int show_edge(uint32_t rel, uint32_t other, void *arg)
{
	struct show_edges *se = arg;
	const char *rn = "?", *on = "?", *ot = "";
	size_t rl = 1, ol = 1, otl = 0;
	if (se->n++ >= SHOW_EDGES_MAX)
		return 1;
	store_relation_name(se->tx, rel, &rn, &rl);
	store_entity_get(se->tx, other, &on, &ol, &ot, &otl);
	if (se->arr) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "relation", json_object_new_string_len(rn, (int)rl));
		json_object_object_add(o, "entity", json_object_new_string_len(on, (int)ol));
		if (otl)
			json_object_object_add(o, "type", json_object_new_string_len(ot, (int)otl));
		json_object_array_add(se->arr, o);
	} else {
		printf("  %-24.*s %.*s%s%.*s%s\n", (int)rl, rn, (int)ol, on, otl ? " (" : "", (int)otl, ot, otl ? ")" : "");
	}
	return 0;
}

static void item_usage(FILE *f)
{
	fprintf(f, "Usage: recctl [-d DIR] [--json] item ITEM\n"
	           "An item's title, categories, text, attributes and knowledge-graph links\n"
	           "(at most %d edges are listed).\n", SHOW_EDGES_MAX);
}

int cmd_item(struct recctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct store *st = NULL;
	struct store_txn *tx = NULL;
	struct store_item it;
	uint32_t id, ents[16];
	size_t nents = 0;
	int c, r, status = RECCTL_EXIT_FAIL;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'j': ctl->json = 1; break;
		case 'h': item_usage(stdout); return RECCTL_EXIT_OK;
		default:  item_usage(stderr); return RECCTL_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		item_usage(stderr);
		return RECCTL_EXIT_USAGE;
	}
	const char *ext = argv[optind];
	if (recctl_open_store(ctl, &st, 1) < 0)
		return RECCTL_EXIT_FAIL;
	if ((r = store_read_begin(st, &tx)) < 0)
		goto fail;
	if ((r = store_item_lookup(tx, ext, strlen(ext), &id)) < 0) {
		if (r == -ENOENT) {
			recctl_err("item: no item '%s' in %s", ext, ctl->state_dir);
			goto out;
		}
		goto fail;
	}
	if ((r = store_item_get(tx, id, &it)) < 0 ||
	    (r = store_item_entities(tx, id, ents, 16, &nents)) < 0)
		goto fail;
	struct show_edges se = { tx, ctl->json ? json_object_new_array() : NULL, 0 };
	if (ctl->json) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "item", json_object_new_string(ext));
		json_object_object_add(o, "id", json_object_new_int64(id));
		json_object_object_add(o, "title", json_object_new_string_len(it.title ? it.title : "", (int)it.title_len));
		json_object_object_add(o, "categories", json_object_new_string_len(it.categories ? it.categories : "", (int)it.categories_len));
		json_object_object_add(o, "text", json_object_new_string_len(it.text ? it.text : "", (int)it.text_len));
		json_object_object_add(o, "attributes", json_object_new_string_len(it.attrs ? it.attrs : "", (int)it.attrs_len));
		for (size_t i = 0; i < nents; i++)
			store_kg_foreach_edge(tx, ents[i], STORE_OUT, show_edge, &se);
		json_object_object_add(o, "kg", se.arr);
		recctl_print_json(o);
		json_object_put(o);
	} else {
		printf("item %s (internal %u)\n", ext, id);
		printf("  title       %.*s\n", (int)it.title_len, it.title ? it.title : "");
		printf("  categories  %.*s\n", (int)it.categories_len, it.categories ? it.categories : "");
		if (it.text_len)
			printf("  text        %.*s%s\n", (int)(it.text_len > 200 ? 200 : it.text_len), it.text,
			       it.text_len > 200 ? "..." : "");
		if (it.attrs_len) {
			/* one attribute per line */
			const char *p = it.attrs, *end = it.attrs + it.attrs_len;
			while (p < end) {
				const char *nl = memchr(p, '\n', (size_t)(end - p));
				if (!nl)
					nl = end;
				printf("  attribute   %.*s\n", (int)(nl - p), p);
				p = nl + 1;
			}
		}
		if (nents)
			printf("knowledge graph:\n");
		for (size_t i = 0; i < nents; i++)
			store_kg_foreach_edge(tx, ents[i], STORE_OUT, show_edge, &se);
		if (se.n > SHOW_EDGES_MAX)
			printf("  ... (more edges not shown)\n");
	}
	status = RECCTL_EXIT_OK;
	goto out;
fail:
	recctl_err("item: %s", store_errmsg(st));
out:
	store_txn_end(tx);
	store_close(st);
	return status;
}
