/* spool.h: recd's spool directory (recd-spool(5)): producers drop job files
 * into intake/; recd claims each into active/, checks it (regular file, one
 * link, bounded size, an allowed owner, a valid name, optionally a trusted
 * signature), runs it through the job engine (daemon/jobs.h) and leaves the
 * result in results/ID.jsonl and the job in finished/, or the job with an
 * ID.error file in failed/.  All file work on a job's path goes through
 * io_uring; a crash at any point leaves every job in exactly one folder and
 * re-runs the claimed ones at the next start. */
#ifndef RECD_SPOOL_H
#define RECD_SPOOL_H

#include <stddef.h>

#include "daemon/conf.h"

struct store;
struct serve;
struct spool;
struct jobs;

/* The folders under spool_dir, in this order. */
enum spool_dir {
	SPOOL_STAGING = 0, SPOOL_INTAKE, SPOOL_ACTIVE, SPOOL_FINISHED, SPOOL_FAILED, SPOOL_RESULTS,
	SPOOL_CANCEL,   /* an empty file named after a job asks for it to stop (recctl cancel) */
	SPOOL_NDIRS,
};
extern const char *const spool_dir_names[SPOOL_NDIRS];

/* Opens conf->spool_dir (creating missing folders in it: staging, intake
 * and cancel 02770, finished, failed and results 02750, active 0750; a missing spool_dir itself is logged and gives
 * *out = NULL, no spool), starts the spool thread and the job engine.  sv
 * serves recommend and score jobs; NULL opens one on st for the spool alone
 * (serve_open()).  Jobs left in active/ by a crash run first.  On failure err
 * says why. */
int  spool_start(struct spool **out, const struct recd_conf *conf, struct store *st, struct serve *sv,
                 char *err, size_t errlen);
/* Stops taking jobs, stops the engine (a running job is interrupted and
 * stays in active/, to run again at the next start) and frees. */
void spool_stop(struct spool *sp);

/* The engine, for the ring's job messages (jobs_submit and friends). */
struct jobs *spool_jobs(struct spool *sp);
/* results/ID.jsonl of a finished job: its path into buf; -ENOENT when there
 * is none (yet). *size gets its size. */
int  spool_result_path(struct spool *sp, const char *id, char *buf, size_t len, size_t *size);

#endif
