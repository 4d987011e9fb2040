/* daemon.h: recd's life cycle as functions a test can call: open (config,
 * store, model metadata), the event loop (signals, timers, sd_notify), reload
 * and close.  daemon/recd.c is only the command line around these. */
#ifndef RECD_DAEMON_H
#define RECD_DAEMON_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/conf.h"

struct store;
struct daemon;

#define DAEMON_STATUS_MAX 256   /* bytes of the STATUS= line */
#define DAEMON_ERR_MAX    1536  /* bytes of an error message for the caller to log */

struct daemon_options {
	const char *conf_path;   /* the configuration file */
	int conf_required;       /* given on the command line: a missing file is an error */
	const char *state_dir;   /* -s, overriding state_dir in the file; NULL = none */
};

/* The configuration as the options say: the file (or the defaults when it is
 * missing and not required) with the command-line overrides applied.  On
 * failure err says why, naming the file and line. */
int daemon_conf_load(const struct daemon_options *opt, struct recd_conf *out,
                     char *err, size_t errlen);

/* Blocks the signals the loop takes through its signalfd (SIGHUP, SIGTERM,
 * SIGINT).  Call it first in main, so a SIGTERM that arrives while the store
 * opens waits for the loop instead of killing recd half-started. */
int daemon_block_signals(void);

/* Reads the configuration, opens the store in state_dir (creating an empty
 * one in an empty or missing last directory component: see store_open()),
 * reads the latest model version's metadata, loads the active model
 * (model/serve.h: a model that cannot be loaded fails the open), starts the
 * request server on runtime_dir/recd.sock (daemon/ring.h) and sets up the
 * loop's descriptors.  opt's strings must outlive the daemon.  Logs what it found
 * (the model version, or that there is none); on failure err says why. */
int daemon_open(struct daemon **out, const struct daemon_options *opt, char *err, size_t errlen);

/* Says READY=1 and runs until SIGTERM or SIGINT: SIGHUP reloads, timers send
 * WATCHDOG=1 and STATUS= updates.  On a stop: STOPPING=1, then the request
 * server answers what is already in its rings and closes.  Returns 0, or a
 * negative errno when the loop itself failed (logged). */
int daemon_run(struct daemon *d);

/* What SIGHUP does between RELOADING=1 and READY=1: re-reads the
 * configuration (a bad one is refused and the old one kept: returns the
 * error with err filled in) and the latest model version.  state_dir and
 * runtime_dir keep their old values until a restart. */
int daemon_reload(struct daemon *d, char *err, size_t errlen);

/* The STATUS= line: model version and store counts, read now. */
int daemon_status(struct daemon *d, char *buf, size_t len);

const struct recd_conf *daemon_conf(const struct daemon *d);
struct store *daemon_store(struct daemon *d);
/* The latest model version seen by open or the last reload; 0 = none. */
uint32_t daemon_model_version(const struct daemon *d);

void daemon_close(struct daemon *d);

#endif
