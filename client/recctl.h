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
	int state_dir_given;    /* -d or $RECD_STATE_DIR: recommend and model use read the store */
	const char *socket;     /* --socket; NULL: $RECD_SOCKET, else /run/recd/recd.sock */
	int json;               /* --json: one JSON document on stdout */
	int quiet;              /* -q: no progress on stderr */
};

/* Opens the store in ctl->state_dir, printing the reason on failure. */
int recctl_open_store(const struct recctl *ctl, struct store **st, int readonly);
/* Parses an option's whole-number value in [lo, hi]; on a bad one prints
 * "recctl: CMD: OPT: 'S' is not a whole number from LO to HI" and returns
 * -EINVAL (the caller exits with RECCTL_EXIT_USAGE). */
int recctl_parse_long(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out);
/* Splits an option's "I1,I2,.." (at most max entries) into *items[0..*n),
 * pointing into *buf, a copy of arg; both replace what they held (freed)
 * and are the caller's to free.  An error is printed as "CMD: OPT: why"
 * and returned (-EINVAL, -ENOMEM). */
int recctl_split_list(const char *cmd, const char *opt, const char *arg, size_t max, char **buf,
                      const char ***items, size_t *n);
/* Prints o as recctl's --json output: one pretty-printed document, with
 * slashes left as they are (paths stay readable). */
struct json_object;
struct recd_conn;

/* cmd_daemon.c: a connection to the running recd at recctl_socket_path(),
 * or NULL after saying why (prefixed with cmd); and a failed call's
 * message, recd's own words when it gave some.  Returns RECCTL_EXIT_FAIL. */
struct recd_conn *recctl_daemon_connect(const struct recctl *ctl, const char *cmd);
int recctl_daemon_fail(struct recd_conn *c, const char *cmd, int r);
void recctl_print_json(struct json_object *o);
/* Prints "recctl: " + message to stderr. */
void recctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

int cmd_import(struct recctl *ctl, int argc, char **argv);
int cmd_generate(struct recctl *ctl, int argc, char **argv);
int cmd_stats(struct recctl *ctl, int argc, char **argv);
int cmd_compact(struct recctl *ctl, int argc, char **argv);
int cmd_events(struct recctl *ctl, int argc, char **argv);
int cmd_item(struct recctl *ctl, int argc, char **argv);
int cmd_train(struct recctl *ctl, int argc, char **argv);
int cmd_finetune(struct recctl *ctl, int argc, char **argv);
int cmd_eval(struct recctl *ctl, int argc, char **argv);
int cmd_models(struct recctl *ctl, int argc, char **argv);
int cmd_model(struct recctl *ctl, int argc, char **argv);
int cmd_recommend(struct recctl *ctl, int argc, char **argv);
/* client/cmd_daemon.c: through the running recd (librecd). */
int cmd_status(struct recctl *ctl, int argc, char **argv);
int cmd_ping(struct recctl *ctl, int argc, char **argv);
int cmd_score(struct recctl *ctl, int argc, char **argv);
int cmd_ingest(struct recctl *ctl, int argc, char **argv);
int cmd_config_check(struct recctl *ctl, int argc, char **argv);
int cmd_daemon_recommend(struct recctl *ctl, int argc, char **argv);
int cmd_daemon_model_use(struct recctl *ctl, int argc, char **argv);
/* score computed in this process from the store (client/cmd_model.c);
 * prints the reason and returns < 0 on failure. */
int recctl_local_score(const struct recctl *ctl, const char *user, const char *const *items, size_t n,
                       float *scores, uint32_t *version);
/* Whether recommend, score and model use ask recd rather than read the store:
 * with --socket or $RECD_SOCKET, or when neither -d nor $RECD_STATE_DIR is
 * given and recd's default socket exists.  recctl(1) says the same. */
int recctl_via_daemon(const struct recctl *ctl);
const char *recctl_socket_path(const struct recctl *ctl);
int cmd_submit(struct recctl *ctl, int argc, char **argv);
int cmd_keygen(struct recctl *ctl, int argc, char **argv);
int cmd_jobs(struct recctl *ctl, int argc, char **argv);
int cmd_job(struct recctl *ctl, int argc, char **argv);
int cmd_cancel(struct recctl *ctl, int argc, char **argv);
/* client/cmd_ringjobs.c: batch jobs through the running recd (librecd). */
int cmd_run_job(struct recctl *ctl, int argc, char **argv);
/* job and cancel when recctl_via_daemon(): recd's own view of job id. */
/* A job's progress: "[#########-----------]  45%  450/1000  ETA 12 s"; with
 * steps, "450/1000 steps", then "  epoch 3/7  loss 5.1234" when epochs > 0
 * (loss when finite); the ETA when eta >= 0.  recctl job, from recd's status
 * or the store's record. */
void recctl_job_bar(char *buf, size_t len, uint64_t done, uint64_t total, int steps, int epoch, int epochs,
                    double loss, double eta);
int recctl_daemon_job(struct recctl *ctl, const char *id, int watch);
int recctl_daemon_cancel(struct recctl *ctl, const char *id);
/* job --result: an ended job's result lines on stdout, chunk bytes a request. */
int recctl_daemon_job_result(struct recctl *ctl, const char *id, size_t chunk);

#endif
