/* cmd_compact.c: recctl compact — moves the store's recent events (where
 * real-time ingest appends them) into the users' lists, for stores used
 * without recd, which does this itself. */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "client/recctl.h"

#define COMPACT_TXN_EVENTS 65536   /* events per transaction */

static void compact_usage(FILE *f)
{
	fprintf(f, "Usage: recctl [-d DIR] [--json] compact [--max N]\n"
	           "Moves the store's recent events (real-time ingest appends them to a table\n"
	           "of their own) into the users' lists, oldest first, in transactions of at\n"
	           "most %d events, until none is left.  recd does this in the background and\n"
	           "when it stops; this is for stores used without it.  Safe while recd runs:\n"
	           "its writes wait for each transaction, and readers see every event all along.\n"
	           "\n"
	           "  --max N   move at most N events (1 to 10^12)\n", COMPACT_TXN_EVENTS);
}

static int compact_left(struct store *st, uint64_t *left)
{
	struct store_txn *tx;
	struct store_recent_info info;
	int r = store_read_begin(st, &tx);
	if (r == 0) {
		r = store_recent_info(tx, &info);
		store_txn_end(tx);
	}
	if (r == 0)
		*left = info.events;
	return r;
}

int cmd_compact(struct recctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument,       NULL, 'h' },
		{ "json", no_argument,       NULL, 'j' },
		{ "max",  required_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	struct store *st = NULL;
	uint64_t max = UINT64_MAX, moved = 0, left = 0;
	long v;
	int ch, r;

	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'h': compact_usage(stdout); return RECCTL_EXIT_OK;
		case 'j': ctl->json = 1; break;
		case 'm':
			if (recctl_parse_long("compact", "--max", optarg, 1, 1000000000000L, &v) < 0)
				return RECCTL_EXIT_USAGE;
			max = (uint64_t)v;
			break;
		default:  compact_usage(stderr); return RECCTL_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		recctl_err("compact: unexpected argument '%s'", argv[optind]);
		return RECCTL_EXIT_USAGE;
	}
	if (recctl_open_store(ctl, &st, 0) < 0)
		return RECCTL_EXIT_FAIL;
	while (moved < max) {
		uint64_t want = max - moved < COMPACT_TXN_EVENTS ? max - moved : COMPACT_TXN_EVENTS;
		size_t n;
		if ((r = store_compact(st, (size_t)want, UINT64_MAX, &n)) < 0) {
			recctl_err("compact: %s (%" PRIu64 " events moved before)", store_errmsg(st), moved);
			store_close(st);
			return RECCTL_EXIT_FAIL;
		}
		moved += n;
		if (!ctl->quiet && !ctl->json && n)
			fprintf(stderr, "\rrecctl: compact: %" PRIu64 " events moved", moved);
		if (n < want)
			break;
	}
	if (!ctl->quiet && !ctl->json && moved)
		fputc('\n', stderr);
	if ((r = compact_left(st, &left)) < 0) {
		recctl_err("compact: %s", store_errmsg(st));
		store_close(st);
		return RECCTL_EXIT_FAIL;
	}
	store_close(st);
	if (ctl->json) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "moved", json_object_new_int64((int64_t)moved));
		json_object_object_add(o, "recent_events", json_object_new_int64((int64_t)left));
		recctl_print_json(o);
		json_object_put(o);
	} else {
		printf("%" PRIu64 " recent events moved into the users' lists, %" PRIu64 " left\n", moved, left);
	}
	return RECCTL_EXIT_OK;
}
