/* job_wait: answers requests that wait for a job. One thread watches job_logs for the jobs
 * being waited on (every JOB_WAIT_POLL_MS, and at once when a local worker finishes one), so
 * a wait ends when the job finishes on ANY instance, or at the waiter's deadline. */
#ifndef JOBSD_JOB_WAIT_H
#define JOBSD_JOB_WAIT_H

#include <stdbool.h>

#include "jobsd/job.h"
#include "jobsd/job_store.h"

#define JOB_WAIT_POLL_MS 250

struct db_pool;
struct job_waiters;

/* Called once per waiter from the waiter thread: finished (state->status success/error), or
 * timed out / shut down (timed_out; state->status is the last status seen). */
typedef void (*job_wait_fn)(void *ctx, const struct job_state *state, bool timed_out);

struct job_waiters *job_waiters_start(struct db_pool *pool);
/* Waits for job `id` until deadline_mono_ms (util_mono_ms clock). */
void job_waiters_add(struct job_waiters *w, const char *id, enum job_status last_known,
                     long long deadline_mono_ms, job_wait_fn fn, void *ctx);
/* A local worker finished a job: look now. */
void job_waiters_notify(struct job_waiters *w);
size_t job_waiters_count(struct job_waiters *w);
/* Answers every remaining waiter as timed out and stops the thread; later adds are answered
 * at once (shutdown). */
void job_waiters_stop(struct job_waiters *w);
void job_waiters_free(struct job_waiters *w);

#endif
