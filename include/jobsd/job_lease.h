/* job_lease: keeps the leases of this process's running jobs alive and reaps the expired
 * leases of dead instances. One thread with its own database connection (never the job's
 * own, whose transaction must not touch its job_logs row before the end): it renews every
 * JOB_LEASE_SECONDS/3 and, when reaping is on, reaps at start-up and every
 * JOB_LEASE_SECONDS. */
#ifndef JOBSD_JOB_LEASE_H
#define JOBSD_JOB_LEASE_H

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdbool.h>

struct job_lease;

struct metrics;

struct job_lease *job_lease_start(const char *db_url, long long lease_seconds,
                                  long long max_attempts, bool reap, struct metrics *metrics);
/* Starts renewing the lease of a job owned by worker_id. */
void job_lease_add(struct job_lease *l, const char *id, const char *worker_id);
void job_lease_remove(struct job_lease *l, const char *id);
/* Has the database said this job is no longer ours? */
bool job_lease_lost(struct job_lease *l, const char *id);
/* Runs one heartbeat + reap pass now and waits for it (tests). */
void job_lease_kick(struct job_lease *l);
/* Operator cancellation (issue 21): the run's canceller (PQgetCancel of its connection, the
 * runner's to free after job_lease_remove), sent by the lease thread when the job's row says
 * cancelRequested (looked for every second while jobs run here), which then also sets *flag
 * (the run's job_run.cancel_op; must outlive job_lease_remove, may be NULL); and whether that
 * happened. */
void job_lease_set_canceller(struct job_lease *l, const char *id, PGcancel *pc, atomic_int *flag);
bool job_lease_cancel_requested(struct job_lease *l, const char *id);
void job_lease_stop(struct job_lease *l);

#endif
