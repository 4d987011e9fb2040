/* recd.h: librecd, the C client library of the recd recommendation daemon.
 *
 * Conventions: functions return 0 (or a count) on success and a negative
 * errno on failure; recd_strerror() turns one into words, and
 * recd_conn_error() gives the reason recd or the library stated for the last
 * failure on a connection (it names the user, item or field at fault).
 *
 * Thread safety: a struct recd_conn is used by one thread at a time (it
 * holds no lock; give each thread its own connection, they are cheap).
 * Different connections, and replies already received, are independent.
 * recd_version() and recd_strerror() may be called from any thread.
 *
 * Two ways to ask: the synchronous calls (recd_ping, recd_recommend, ...)
 * send one request and wait for its answer; the pipelined calls
 * (recd_send_*, then recd_receive) send many before reading any.  Replies
 * come in the order of the requests and carry the request's ID.  A
 * synchronous call while pipelined replies are still unread is -EBUSY.
 *
 * See librecd(3). */
#ifndef RECD_RECD_H
#define RECD_RECD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RECD_VERSION_MAJOR 0
#define RECD_VERSION_MINOR 1
#define RECD_VERSION_PATCH 0

/* The library's version as "MAJOR.MINOR.PATCH" (of the .so actually loaded,
 * which may be newer than the header a program was built with). */
const char *recd_version(void);

/* A message for a negative errno returned by librecd (or by recd over the
 * wire).  Never NULL; the string is static. */
const char *recd_strerror(int err);

/* --- limits ---------------------------------------------------------------- */
#define RECD_SOCKET_DEFAULT "/run/recd/recd.sock"
#define RECD_ID_MAX     255    /* bytes of a user or item ID, an action or device name */
#define RECD_K_MAX      1000   /* largest k of a recommendation */
#define RECD_WHY_MAX    200    /* most explanation entries */
#define RECD_LIST_MAX   10000  /* filter items, score candidates, events in one request */
#define RECD_ERR_MAX    512    /* bytes of an error text, NUL included */
#define RECD_JOB_ID_MAX 128    /* bytes of a job ID */
#define RECD_JOB_JSON_MAX (512 * 1024 - 16)  /* bytes of a submitted job */
#define RECD_JOB_CHUNK_MAX (256 * 1024)      /* result bytes one recd_job_result returns */

/* --- connections ------------------------------------------------------------- */
struct recd_conn;

/* Connects to recd at path; NULL means $RECD_SOCKET, else
 * RECD_SOCKET_DEFAULT.  Errors: -ENOENT (no socket there: recd is not
 * running), -ECONNREFUSED, -EACCES (this user is not in recd's allow_users or
 * allow_groups), -EUSERS (max_clients reached), -EPROTO (recd speaks another
 * protocol version), -ENOMEM.  *out is written only on success; on failure
 * errbuf (errlen bytes, may be NULL) says why. */
int recd_connect(struct recd_conn **out, const char *path, char *errbuf, size_t errlen);
/* Disconnects; unread replies are dropped.  NULL is allowed. */
void recd_close(struct recd_conn *c);
/* How long calls on c wait for room in the request ring and for a reply:
 * milliseconds, 0 = never wait (-EAGAIN at once), -1 = no limit.
 * Default: 30000. */
void recd_set_timeout(struct recd_conn *c, int timeout_ms);
/* The reason for the last failure on c ("" after a success).  Valid until
 * the next call on c. */
const char *recd_conn_error(const struct recd_conn *c);

/* --- requests ------------------------------------------------------------------ */

struct recd_item {
	char  id[RECD_ID_MAX + 1];   /* external item ID */
	float score;
};

/* One history event and its weight in the recommendation (the weights of a
 * reply sum to 1 over the events the model looked at). */
struct recd_why {
	char     item[RECD_ID_MAX + 1];
	int64_t  ts;
	unsigned action;             /* the store's action code (0 none, 1 view, ...) */
	float    weight;
};

struct recd_recommend_opts {
	const char *const *include;  /* only these items (ninclude 0 = all) */
	size_t ninclude;
	const char *const *exclude;  /* never these */
	size_t nexclude;
	int include_seen;            /* also items the user already has events for */
	int explain;                 /* ask for the history events that weighed most */
	int why_cap;                 /* how many of them (at most RECD_WHY_MAX) */
	/* Context of the request, reserved: sent, and ignored by this recd. */
	int has_context;
	int64_t ctx_ts;
	float ctx_lat, ctx_lon;
};

struct recd_result {
	uint32_t version;            /* the model version that answered */
	int n;                       /* items written */
	int nwhy;                    /* explanation entries written */
	int cached;                  /* the user's state came from recd's cache */
};

struct recd_event {
	const char *user, *item;
	int64_t ts;                  /* Unix seconds */
	const char *action;          /* NULL = recd's default ("view") */
	float value; int has_value;
	float lat, lon; int has_loc;
	const char *device;          /* NULL = none */
};

struct recd_stats {
	char     version[16];        /* recd's version */
	uint32_t pid;
	uint64_t uptime_ms;
	uint32_t model_version;      /* 0 = no model served */
	uint32_t clients, max_clients, workers;
	uint64_t requests, errors;   /* answered since start; errors among them */
	uint64_t recommends, scores, ingested_events;
	uint64_t cache_hits, cache_misses, swaps;
	uint64_t disconnects_bad;    /* clients dropped for breaking the protocol */
};

int recd_ping(struct recd_conn *c);
/* Top k (1..RECD_K_MAX) items for user into items[0..k); opt may be NULL;
 * why (opt->why_cap entries) may be NULL when opt->explain is 0.  Returns
 * res->n.  Errors from recd: -ENOENT unknown user or filter item, -ENODATA
 * no model (or no history it knows), -EINVAL. */
int recd_recommend(struct recd_conn *c, const char *user, int k, const struct recd_recommend_opts *opt,
                   struct recd_item *items, struct recd_why *why, struct recd_result *res);
/* scores[i] for items[i], i < n <= RECD_LIST_MAX; *version may be NULL. */
int recd_score(struct recd_conn *c, const char *user, const char *const *items, size_t n,
               float *scores, uint32_t *version);
/* Appends n <= RECD_LIST_MAX events in one transaction (all or none); the
 * next recommendation for these users reflects them.  Returns n. */
int recd_ingest(struct recd_conn *c, const struct recd_event *ev, size_t n);
int recd_stats(struct recd_conn *c, struct recd_stats *out);
/* Serves model version (0 = the latest stored) from now on, also after a
 * restart; *now (may be NULL) gets the version served. */
int recd_model_use(struct recd_conn *c, uint32_t version, uint32_t *now);

/* --- batch jobs ------------------------------------------------------------------ */
/* Long work (recommendations for many users, scoring, ingest, train,
 * evaluate, fine-tune) that recd's job engine runs in the background; the job
 * is JSON as in a spool file (recd-spool(5)), its result JSON lines.  Every
 * job call fails with -ENOTSUP when recd has no spool directory. */
enum recd_job_state {
	RECD_JOB_QUEUED = 0, RECD_JOB_RUNNING, RECD_JOB_DONE, RECD_JOB_FAILED, RECD_JOB_CANCELLED,
};

struct recd_job_status {
	unsigned state;              /* enum recd_job_state */
	char     state_name[16];     /* "queued", "running", "done", "failed", "cancelled" */
	char     type[16];           /* "recommend", "score", "ingest", "train", "evaluate", "fine-tune" */
	uint64_t done, total;        /* units: users, requests or events; optimizer steps for train and
	                              * fine-tune (total: the most the job may take) */
	double   elapsed_s;          /* while running; 0 else */
	double   eta_s;              /* seconds left, < 0 when unknown */
	unsigned epoch, epochs;      /* train and fine-tune: the epoch reached and the most there may
	                              * be; 0 for other jobs */
	double   loss;               /* train and fine-tune: the last training loss reported; NaN when
	                              * there is none yet, and for other jobs */
};

/* Submits a job (len <= RECD_JOB_JSON_MAX bytes of JSON) at interactive
 * priority; its ID (at most RECD_JOB_ID_MAX bytes) goes to id (idcap bytes,
 * NUL-terminated).  -EINVAL with recd_conn_error naming the field when the
 * job is bad, -EAGAIN when recd's job queue is full. */
int recd_job_submit(struct recd_conn *c, const char *json, size_t len, char *id, size_t idcap);
/* The state of a job recd has seen: -ENOENT for an unknown ID. */
int recd_job_status(struct recd_conn *c, const char *id, struct recd_job_status *out);
/* Up to cap (1 .. RECD_JOB_CHUNK_MAX) bytes of a finished job's result from
 * byte offset into buf; *got gets the bytes read, *total the result's size
 * (either may be NULL).  Read from offset 0 until offset reaches *total.
 * -EINPROGRESS while the job is queued or running, -EREMOTEIO when it failed
 * (recd_conn_error gives the reason), -ECANCELED when it was cancelled,
 * -ENOENT for an unknown ID, -EINVAL for an offset past the end. */
int recd_job_result(struct recd_conn *c, const char *id, uint64_t offset, void *buf, size_t cap,
                    size_t *got, uint64_t *total);
/* Asks a queued or running job to stop (it ends "cancelled"); -ENOENT when
 * it is unknown or has ended. */
int recd_job_cancel(struct recd_conn *c, const char *id);

/* --- pipelining ------------------------------------------------------------------ */
/* Each recd_send_* queues one request and returns at once with its ID in
 * *id (may be NULL).  When the request ring is full it waits for room up to
 * the connection's timeout, then fails with -EAGAIN; nothing is dropped.
 * -ESHUTDOWN: recd is stopping and takes no new requests. */
int recd_send_ping(struct recd_conn *c, uint64_t *id);
int recd_send_stats(struct recd_conn *c, uint64_t *id);
int recd_send_recommend(struct recd_conn *c, const char *user, int k,
                        const struct recd_recommend_opts *opt, uint64_t *id);
int recd_send_score(struct recd_conn *c, const char *user, const char *const *items, size_t n,
                    uint64_t *id);
int recd_send_ingest(struct recd_conn *c, const struct recd_event *ev, size_t n, uint64_t *id);
int recd_send_model_use(struct recd_conn *c, uint32_t version, uint64_t *id);
int recd_send_job_submit(struct recd_conn *c, const char *json, size_t len, uint64_t *id);
int recd_send_job_status(struct recd_conn *c, const char *job, uint64_t *id);
int recd_send_job_result(struct recd_conn *c, const char *job, uint64_t offset, size_t cap, uint64_t *id);
int recd_send_job_cancel(struct recd_conn *c, const char *job, uint64_t *id);
/* Requests sent whose replies have not been received. */
unsigned long recd_pending(const struct recd_conn *c);

struct recd_reply;
/* The next reply, waiting up to timeout_ms (0 = not at all, -1 = no limit):
 * -EAGAIN when none is there (timeout 0), -ETIMEDOUT, -ENOMSG when nothing is
 * pending, -ECONNRESET when recd went away.  Free it with recd_reply_free. */
int recd_receive(struct recd_conn *c, int timeout_ms, struct recd_reply **out);
uint64_t recd_reply_id(const struct recd_reply *r);
/* 0, or recd's negative errno for the request; recd_reply_error says why. */
int recd_reply_status(const struct recd_reply *r);
const char *recd_reply_error(const struct recd_reply *r);
/* The reply's content, by the request's type; -EINVAL when the reply is of
 * another type, its status when that is an error. */
int recd_reply_recommend(const struct recd_reply *r, struct recd_item *items, int cap,
                         struct recd_why *why, int why_cap, struct recd_result *res);
int recd_reply_score(const struct recd_reply *r, float *scores, size_t cap, uint32_t *version);
int recd_reply_ingest(const struct recd_reply *r);
int recd_reply_stats(const struct recd_reply *r, struct recd_stats *out);
int recd_reply_model_use(const struct recd_reply *r, uint32_t *now);
int recd_reply_job_submit(const struct recd_reply *r, char *id, size_t idcap);
int recd_reply_job_status(const struct recd_reply *r, struct recd_job_status *out);
/* Copies at most cap bytes of the chunk; returns the bytes copied. */
int recd_reply_job_result(const struct recd_reply *r, void *buf, size_t cap, size_t *got, uint64_t *total);
int recd_reply_job_cancel(const struct recd_reply *r);
void recd_reply_free(struct recd_reply *r);

#ifdef __cplusplus
}
#endif
#endif
