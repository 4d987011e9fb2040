/* jobs.h: recd's batch jobs: the job file format (recd-spool(5)), its
 * parser, what each job type does, and the engine that runs jobs on worker
 * threads, interactive ones (from the ring) before bulk ones (from the
 * spool).  The spool (daemon/spool.c) feeds it files and writes its results;
 * the ring hands it JSON with jobs_submit().
 *
 * Functions return 0 or a negative errno; a failure that belongs to the job
 * (bad input) also fills why with "FIELD: reason". */
#ifndef RECD_JOBS_H
#define RECD_JOBS_H

#include <stddef.h>
#include <stdint.h>

struct store;
struct serve;

#define JOBS_FORMAT_VERSION 1
#define JOBS_ID_MAX        128      /* bytes of a job ID (a spool file name) */
#define JOBS_UNITS_MAX     100000   /* users, requests or events in one job */
#define JOBS_JSON_DEPTH    16       /* nesting a job file may use */
#define JOBS_WHY_MAX       512      /* bytes of a failure reason */
#define JOBS_QUEUE_MAX     4096     /* jobs queued at once; more is -EAGAIN */

enum jobs_type {
	JOBS_RECOMMEND = 0, JOBS_SCORE, JOBS_INGEST, JOBS_TRAIN, JOBS_EVALUATE, JOBS_FINETUNE,
	JOBS_TYPE_COUNT,
};
/* Inline, so recctl (which reads job records from the store) shares them. */
static inline const char *jobs_type_name(unsigned t)
{
	static const char *const names[JOBS_TYPE_COUNT] = {
		"recommend", "score", "ingest", "train", "evaluate", "fine-tune",
	};
	return t < JOBS_TYPE_COUNT ? names[t] : "?";
}

enum jobs_state { JOBS_QUEUED = 0, JOBS_RUNNING, JOBS_DONE, JOBS_FAILED, JOBS_CANCELLED };
static inline const char *jobs_state_name(unsigned s)
{
	static const char *const names[] = { "queued", "running", "done", "failed", "cancelled" };
	return s < sizeof names / sizeof names[0] ? names[s] : "?";
}

/* A fine-tune job's "activate": when its new version becomes the one recd
 * serves (recd-spool(5)). */
enum jobs_activate { JOBS_ACTIVATE_IF_BETTER = 0, JOBS_ACTIVATE_ALWAYS, JOBS_ACTIVATE_NEVER };

enum jobs_priority { JOBS_PRIO_INTERACTIVE = 0, JOBS_PRIO_BULK = 1 };

/* A job ID / spool file name: 1 to JOBS_ID_MAX bytes of valid UTF-8, no
 * '/', no "..", no leading '.', no control characters, not ending in
 * ".error" or ".tmp".  0, or -EINVAL with why. */
int jobs_name_check(const char *name, size_t len, char *why, size_t whylen);

/* --- one job ------------------------------------------------------------ */
struct jobs_job;

/* Parses a job file's text (len bytes; JSON, recd-spool(5)).  id is the
 * job's ID (its file name): a job's own "id" field must equal it.  A
 * signature envelope is unwrapped and checked against the keys in keys_dir
 * when keys_dir is not NULL; require_sig refuses a job without one;
 * max_age (seconds) bounds its "created" time.  -EINVAL with why naming the
 * field on bad input, -EPERM for signature failures, -ENOMEM. */
struct jobs_sig_policy {
	int require;             /* unsigned jobs fail */
	const char *keys_dir;    /* NAME.pub files: 32-byte Ed25519 keys, raw or hex */
	unsigned max_age;        /* seconds; a job created longer ago (or later than now+max_age) fails */
	int64_t now;             /* unix seconds; 0 = time(NULL) */
};
int  jobs_parse(const char *text, size_t len, const char *id, const struct jobs_sig_policy *sig,
                struct jobs_job **out, char *why, size_t whylen);
void jobs_job_free(struct jobs_job *j);
enum jobs_type jobs_job_type(const struct jobs_job *j);
const char *jobs_job_id(const struct jobs_job *j);
size_t jobs_job_units(const struct jobs_job *j);   /* lines the result will have */
/* The key a signed job's ID is remembered under (replay protection); 0
 * when the job was signed, -ENOENT when not. */
int  jobs_job_seen_key(const struct jobs_job *j, uint8_t key[32]);

/* A growing result buffer: JSON lines. */
struct jobs_buf {
	char *p;
	size_t len, cap;
};
void jobs_buf_free(struct jobs_buf *b);

/* How far a running job is.  Units are users, requests or events; for train
 * and fine-tune they are optimizer steps, total the most the job may take
 * (epochs times steps an epoch, or its step budget), so done/total is the
 * share of the work done even when early stopping ends it sooner. */
struct jobs_progress {
	uint64_t done, total;
	int epoch, epochs;      /* train and fine-tune: the epoch running (from 1), the most; 0 else */
	double loss;            /* train and fine-tune: the epoch's mean training loss so far; NaN else */
};

struct jobs_run_env {
	struct store *st;
	struct serve *sv;
	const volatile int *cancel;        /* non-zero: stop at the next unit */
	/* called at most every few units, every step of train and fine-tune (may be NULL) */
	void (*progress)(void *arg, const struct jobs_progress *p);
	void *arg;
};
/* Runs j: one result line per unit, in input order, into out (appended).
 * Per-unit failures (an unknown user, a bad event) are error lines, not a
 * failed job.  -ECANCELED when cancelled; other errors fail the job (why). */
int jobs_run(struct jobs_job *j, const struct jobs_run_env *env, struct jobs_buf *out,
             char *why, size_t whylen);

/* --- the engine ---------------------------------------------------------- */
struct jobs;

/* Called on a worker thread when a job ends: state is DONE (result holds
 * the lines), FAILED (why says why) or CANCELLED.  It may take result's
 * buffer (leaving result->p NULL); it must copy anything else it keeps.
 * Returns 0 when the job's result or reason is in place, so the engine
 * records its end in the store now; or, for a DONE job, JOBS_DONE_LATER:
 * the result is being written elsewhere and jobs_ended() will be called
 * once it is (the store's "done" always means the result can be read). */
#define JOBS_DONE_LATER 1
typedef int (*jobs_done_fn)(void *arg, struct jobs_job *j, void *origin, enum jobs_state state,
                            struct jobs_buf *result, const char *why);

struct jobs_options {
	struct store *st;
	struct serve *sv;
	unsigned workers;          /* threads for bulk jobs (1 ..) */
	jobs_done_fn done;
	void *done_arg;
};
int  jobs_open(struct jobs **out, const struct jobs_options *o);
/* Stops the workers: waits for running jobs to end their current unit (they
 * are cancelled) and drops queued ones (they stay where their origin keeps
 * them).  jobs_ended() still works after it; jobs_close() calls it too. */
void jobs_stop(struct jobs *e);
/* Stops (jobs_stop), writes the last records and frees. */
void jobs_close(struct jobs *e);
/* The result of job id, whose done callback returned JOBS_DONE_LATER, is in
 * place: records the job's end. */
void jobs_ended(struct jobs *e, const char *id);

/* Queues a parsed job (ownership passes to the engine, also on failure).
 * origin is handed back to done.  -EAGAIN when JOBS_QUEUE_MAX jobs wait. */
int  jobs_enqueue(struct jobs *e, struct jobs_job *j, enum jobs_priority prio, void *origin);

/* The ring's entry point: parses json (len bytes) as a job with a fresh ID
 * ("r" + a number), queues it and writes the ID to id (JOBS_ID_MAX + 1). */
int  jobs_submit(struct jobs *e, const char *json, size_t len, enum jobs_priority prio,
                 char *id, char *why, size_t whylen);

struct jobs_status {
	enum jobs_state state;
	enum jobs_type type;
	uint64_t done, total;      /* units (struct jobs_progress) */
	double elapsed_s, eta_s;   /* eta < 0: unknown */
	int epoch, epochs;         /* train and fine-tune; 0 else */
	double loss;               /* NaN: none */
};
/* The state of a job this engine has seen since it started; -ENOENT else. */
int  jobs_status(struct jobs *e, const char *id, struct jobs_status *st);
/* Asks a queued or running job to stop: 0, or -ENOENT (unknown or ended). */
int  jobs_cancel(struct jobs *e, const char *id);

#endif
