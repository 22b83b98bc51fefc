/* job_fleet: one job for every tenant (issue 20 item 1). A fleet parent is an ordinary
 * job_logs row (tenant_id NULL, its request `"allTenants": true`) claimed and leased like any
 * job. Its run fans out one ordinary child job per eligible tenant (the kind's
 * fleet_tenants), each deduplicated like any job and mapped once in job_fleet_children (so a
 * parent taken over after its instance died enqueues only what is missing), then waits for
 * every child to end, running its own children while it waits (a process with one worker, or
 * the CLI, still makes progress), and records a result that counts them. Nothing depends on
 * the process that started it staying alive: a parent whose lease expires is requeued by the
 * reaper and resumed by whichever instance claims it. */
#ifndef JOBSD_JOB_FLEET_H
#define JOBSD_JOB_FLEET_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>

#include "jobsd/err.h"
#include "jobsd/job.h"

/* Is this resolved request (or body) a fleet parent's? */
bool job_fleet_is_parent(const json_t *params);

/* What job_fleet_run needs from its caller (job_exec). */
struct job_fleet_hooks {
    /* Claims one queued child of parent_id (within the fleet-wide limit) and runs it on *c
     * (which it may replace). 1 = ran one, 0 = none to claim now, -1 = e. */
    int (*run_child)(void *ctx, PGconn **c, const char *parent_id, struct err *e);
    /* Has the parent's lease been lost? */
    bool (*lost)(void *ctx);
    void *ctx;
    const char *trigger;    /* the parent's trigger, given to its children */
    const char *request_id; /* the parent's triggering request, "" when none */
};

/* Runs a fleet parent: run->params is its resolved request, run->conn its connection
 * (replaced in run->conn when a child's run reconnected). On success the parent is recorded
 * (success, or a partial failure when a child failed: status error with the 200 body) and
 * the 200 body is returned (new reference). NULL with e when it could not finish (cancelled,
 * lease lost, database error): nothing of the parent is recorded, the children stay queued. */
MUSTCHECK json_t *job_fleet_run(const struct job_kind *kind, struct job_run *run,
                                const struct job_fleet_hooks *hooks, struct err *e);

/* A parent's progress as GET /api/v1/jobs/{id} shows it (new reference): tenants, enqueued,
 * queued, running, succeeded, failed, skipped, done. NULL with e on a database error. */
MUSTCHECK json_t *job_fleet_progress(PGconn *c, const char *parent_id, long long timeout_ms,
                                     struct err *e);

#endif
