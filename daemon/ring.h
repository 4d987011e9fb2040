/* ring.h: recd's request server.  Local clients connect to a Unix socket,
 * are admitted by their credentials, and each gets its own shared-memory
 * region with a request ring and a response ring (daemon/proto.h); a few
 * worker threads answer the requests through the serving engine
 * (model/serve.h), and the batch-job requests through the spool's job
 * engine (daemon/jobs.h), off the daemon's signal loop.
 *
 * Threads: one I/O thread (accepts, admits, watches every client's socket
 * and doorbell in one epoll set) and RING_WORKERS_MAX or fewer workers (one
 * per CPU by default).  Threads do not grow with clients: a client is served
 * by whichever worker takes it from the run queue, one worker at a time, so
 * its responses come in the order of its requests. */
#ifndef RECD_DAEMON_RING_H
#define RECD_DAEMON_RING_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/conf.h"

struct serve;
struct spool;
struct ring_server;

#define RING_WORKERS_MAX   16
/* How long a worker keeps polling a client's rings before it arms the
 * doorbell and sleeps: a pipelining client keeps its worker without a
 * system call per request, and an idle one costs nothing after this. */
#define RING_SPIN_NS       20000
/* How long a stop waits for requests already in the rings to be answered:
 * well inside the unit's WatchdogSec=30s (pinged every 15 s) and
 * TimeoutStopSec=30s. */
#define RING_DRAIN_SEC     10

struct ring_options {
	unsigned workers;             /* 0 = one per online CPU, at most RING_WORKERS_MAX */
};

struct ring_counters {
	uint64_t requests, errors, recommends, scores, ingests, ingested_events;
	uint64_t connects, refused, disconnects_bad;
	unsigned clients, workers;
};

/* Binds runtime_dir/recd.sock (making runtime_dir when its parent exists;
 * replacing a stale socket, refusing when another recd answers on it) and
 * starts the threads.  sv may be NULL (every model request then fails with
 * -ENODATA).  conf's allow lists and max_clients are copied. */
int  ring_server_open(struct ring_server **out, const struct recd_conf *conf, struct serve *sv,
                      const struct ring_options *opt, char *err, size_t errlen);
/* The spool whose job engine answers the job requests (RP_JOB_*); NULL (the
 * start) answers them -ENOTSUP.  Set it to NULL, or stop the server, before
 * the spool stops. */
void ring_server_set_spool(struct ring_server *rs, struct spool *sp);
/* A reload: new allow lists and max_clients apply to the next connections. */
void ring_server_set_conf(struct ring_server *rs, const struct recd_conf *conf);
void ring_server_counters(struct ring_server *rs, struct ring_counters *out);
/* The socket's path. */
const char *ring_server_path(const struct ring_server *rs);
/* Stops taking connections and requests, answers every request already in
 * the rings (for at most RING_DRAIN_SEC), closes every connection and joins
 * the threads.  Idempotent. */
void ring_server_stop(struct ring_server *rs);
/* Stops (if not yet) and frees; removes the socket. */
void ring_server_close(struct ring_server *rs);

#endif
