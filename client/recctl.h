/* recctl.h: what recctl's subcommands share.  Each subcommand lives in its own
 * client/cmd_*.c file and is called with argv[0] = its name; it parses the
 * rest with getopt_long and returns recctl's exit status (see recctl(1)). */
#ifndef RECD_RECCTL_H
#define RECD_RECCTL_H

#include <stdio.h>
#include "store/store.h"

/* Exit statuses, documented in recctl(1) under EXIT STATUS. */
enum {
	RECCTL_EXIT_OK      = 0, /* done */
	RECCTL_EXIT_FAIL    = 1, /* the operation failed; nothing was changed or it was rolled back */
	RECCTL_EXIT_USAGE   = 2, /* bad command line */
	RECCTL_EXIT_PARTIAL = 3, /* done, but some input units were skipped as bad */
};

struct recctl {
	const char *state_dir;  /* -d, $RECD_STATE_DIR, else /var/lib/recd */
	int json;               /* --json: one JSON document on stdout */
	int quiet;              /* -q: no progress on stderr */
};

/* Opens the store in ctl->state_dir, printing the reason on failure. */
int recctl_open_store(const struct recctl *ctl, struct store **st, int readonly);
/* Parses an option's whole-number value in [lo, hi]; on a bad one prints
 * "recctl: CMD: OPT: 'S' is not a whole number from LO to HI" and returns
 * -EINVAL (the caller exits with RECCTL_EXIT_USAGE). */
int recctl_parse_long(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out);
/* Prints o as recctl's --json output: one pretty-printed document, with
 * slashes left as they are (paths stay readable). */
struct json_object;
void recctl_print_json(struct json_object *o);
/* Prints "recctl: " + message to stderr. */
void recctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

int cmd_import(struct recctl *ctl, int argc, char **argv);
int cmd_generate(struct recctl *ctl, int argc, char **argv);
int cmd_stats(struct recctl *ctl, int argc, char **argv);
int cmd_events(struct recctl *ctl, int argc, char **argv);
int cmd_item(struct recctl *ctl, int argc, char **argv);
int cmd_train(struct recctl *ctl, int argc, char **argv);
int cmd_eval(struct recctl *ctl, int argc, char **argv);
int cmd_models(struct recctl *ctl, int argc, char **argv);
int cmd_recommend(struct recctl *ctl, int argc, char **argv);

#endif
