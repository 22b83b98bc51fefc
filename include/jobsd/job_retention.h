/* job_retention: finished jobs (success, error) are deleted once older than
 * JOB_RETENTION_DAYS (0 = kept forever), so job_logs stops growing. Deletion goes in batches
 * of JOB_RETENTION_BATCH rows, one short statement each (job_store_prune_batch): no long lock,
 * nothing waits behind it, and queued or running jobs are never touched. A serving instance
 * prunes at start-up and every JOB_RETENTION_INTERVAL_MS; `jobsd prune` does it by hand. */
#ifndef JOBSD_JOB_RETENTION_H
#define JOBSD_JOB_RETENTION_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "jobsd/err.h"

#define JOB_RETENTION_BATCH       1000
#define JOB_RETENTION_INTERVAL_MS (3600LL * 1000)

struct db_pool;

/* Deletes every job that finished more than days days ago, JOB_RETENTION_BATCH at a time,
 * until none is left or *stop (may be NULL) becomes non-zero. progress (may be NULL) is called
 * after each batch that deleted rows, with that batch's count and the running total. Returns
 * the total, or -1 with e (the batches before the failure stay deleted). */
MUSTCHECK long long job_retention_prune(PGconn *c, long long days, const volatile int *stop,
                                        void (*progress)(void *ctx, long long batch,
                                                         long long total),
                                        void *ctx, struct err *e);

struct job_retention;
/* The serving instance's pruning thread (a pooled connection while it prunes). NULL when
 * days is 0 (retention off). */
struct job_retention *job_retention_start(struct db_pool *pool, long long days);
/* Stops it (a prune in progress stops after its current batch). NULL is fine. */
void job_retention_stop(struct job_retention *r);

#endif
