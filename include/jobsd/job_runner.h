/* job_runner: the worker threads of `serve`. Each claims queued jobs of every registered
 * kind (any instance may have queued them), runs them with a pooled connection through
 * job_exec_run (which records the outcome) and wakes the waiters. */
#ifndef JOBSD_JOB_RUNNER_H
#define JOBSD_JOB_RUNNER_H

#include <jansson.h>
#include <stdbool.h>

#include "jobsd/config.h"
#include "jobsd/err.h"
#include "jobsd/job.h"

struct db_pool;
struct job_lease;
struct job_waiters;
struct job_runner;

struct ml_client;
struct metrics;

struct job_runner *job_runner_start(const struct config *cfg, struct db_pool *pool,
                                    struct job_lease *lease, struct job_waiters *waiters,
                                    struct ml_client *ml, struct metrics *metrics, int workers);
/* A job was queued locally: claim it now rather than at the next poll. */
void job_runner_wake(struct job_runner *r);
/* Stops claiming; waits up to grace_ms for running jobs; cancels the rest (their
 * transactions roll back) and puts them back in the queue without counting the attempt. */
void job_runner_stop(struct job_runner *r, long long grace_ms);
/* Jobs running right now in this process. */
int job_runner_busy(struct job_runner *r);

#endif
