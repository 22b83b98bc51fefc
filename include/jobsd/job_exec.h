/* job_exec: the two paths every job takes, whoever triggers it. Submit: validate and
 * resolve a body with its kind and enqueue it, in one transaction (HTTP, CLI, and any later
 * trigger). Run: execute one claimed job with its kind, write its SPEC 6 log lines
 * (started, finished with its counters, failed) and record the outcome, for the worker
 * threads and the CLI alike. A success is recorded by the kind inside the transaction that
 * did the work; a failure or a requeue is recorded here. */
#ifndef JOBSD_JOB_EXEC_H
#define JOBSD_JOB_EXEC_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>

#include "jobsd/config.h"
#include "jobsd/err.h"
#include "jobsd/job.h"
#include "jobsd/job_store.h"

struct job_lease;
struct metrics;
struct ml_client;

/* A submitted job: where it is in the queue and the request it resolved to. */
struct job_submission {
    struct job_enqueued enq;
    struct job_request req; /* owned: job_submission_clear */
};
void job_submission_clear(struct job_submission *s);

/* Validates and resolves body (borrowed) with kind, then queues it (or, with worker_id, the
 * CLI's case, inserts it already running), in one transaction on c bounded by
 * DB_QUERY_TIMEOUT_MS. On failure nothing is written and e says why (400/404 for the
 * request, 503 when the database is unavailable). */
MUSTCHECK int job_exec_submit(PGconn *c, const struct config *cfg, const struct job_kind *kind,
                              json_t *body, const struct job_origin *origin, const char *worker_id,
                              struct job_submission *out, struct err *e);
/* The same inside the caller's transaction on c (the scheduler claims its slot in it): the
 * caller commits, or rolls back on failure. */
MUSTCHECK int job_exec_submit_in(PGconn *c, const struct config *cfg, const struct job_kind *kind,
                                 json_t *body, const struct job_origin *origin,
                                 const char *worker_id, struct job_submission *out, struct err *e);

/* How a caller runs jobs. */
struct job_exec {
    const struct config *cfg;
    struct ml_client *ml;
    struct job_lease *lease; /* renews the run's lease */
    struct metrics *metrics; /* may be NULL */
    /* Gives a usable connection back after the run's own broke (to record its outcome): the
     * broken one is handed over; NULL with e when none can be had. */
    PGconn *(*reconnect)(void *ctx, PGconn *broken, struct err *e);
    void *reconnect_ctx;
    void (*progress)(void *ctx, const char *phase); /* may be NULL */
    void *progress_ctx;
    volatile int *cancel; /* non-zero: the run must stop */
    /* A cancelled run is put back in the queue without counting the attempt (a worker at
     * shutdown); otherwise it fails as interrupted (the CLI on a signal). */
    bool requeue_cancelled;
    /* A run whose database connection was lost goes back to the queue (the attempt counts)
     * while attempts remain (workers); otherwise the failure is recorded (the CLI). */
    bool requeue_lost;
};

enum job_outcome {
    JOB_OUTCOME_SUCCESS,
    JOB_OUTCOME_PARTIAL, /* it ran to its end with errors: its body says success false */
    JOB_OUTCOME_FAILED,
    JOB_OUTCOME_REQUEUED,
    JOB_OUTCOME_CANCELLED, /* an operator cancelled it: it ended `cancelled`, nothing kept */
};
const char *job_outcome_name(enum job_outcome o);

/* Runs claim (a row running under worker_id) with kind on *c, which may be replaced by a
 * reconnection. result (may be NULL) receives the 200 body for SUCCESS and PARTIAL (new
 * reference); e the failure for FAILED and REQUEUED. */
MUSTCHECK enum job_outcome job_exec_run(const struct job_exec *x, const struct job_kind *kind,
                                        const struct job_claim *claim, const char *worker_id,
                                        PGconn **c, json_t **result, struct err *e);

#endif
