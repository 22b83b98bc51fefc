/* job_store: every statement on job_logs, the queue. Rows go queued → running → success or
 * error; claims use FOR UPDATE SKIP LOCKED; single flight is the unique partial index on
 * dedupe_key; leases are heartbeat_at, renewed by job_lease and expired by the reaper.
 * The store knows job types as strings, never the kinds: callers pass what it needs (the
 * types to claim, the type to enqueue) and get raw rows back; presenting them is theirs. */
#ifndef JOBSD_JOB_STORE_H
#define JOBSD_JOB_STORE_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "jobsd/err.h"
#include "jobsd/job.h"

/* "to_char(<col> AT TIME ZONE 'UTC', ...)": RFC 3339 UTC with milliseconds. */
#define JOB_STORE_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* The SET list of an operator's cancel of a job that is queued or running (by: a text SQL
 * expression naming who): a queued job ends cancelled at once; a running one is marked
 * cancelRequested, which the lease thread of the instance running it looks for (job_lease.c). */
// clang-format off
#define JOB_STORE_CANCEL_SET(by)                                                                   \
    " status = CASE WHEN status = 'queued' THEN 'cancelled' ELSE status END, "                     \
    " completed_at = CASE WHEN status = 'queued' THEN now() ELSE completed_at END, "               \
    " metadata = metadata || jsonb_build_object('cancelledBy', " by ") || "                        \
    "  CASE WHEN status = 'queued' THEN jsonb_build_object('cancelledAt', " JOB_STORE_TS("now()")  \
    ") ELSE jsonb_build_object('cancelRequested', true, 'cancelRequestedAt', "                     \
    JOB_STORE_TS("now()") ") END "
// clang-format on

/* The columns of a job as SPEC 2.3 shows it: one json value. */
#define JOB_STORE_JOB_JSON                                                                         \
    "json_build_object('id', id, 'tenantId', tenant_id, 'jobType', job_type, 'status', status, "   \
    "'createdAt', " JOB_STORE_TS("created_at") ", 'startedAt', " JOB_STORE_TS(                     \
        "started_at") ", 'completedAt', " JOB_STORE_TS("completed_at") ", "                        \
                                                                       "'durationMs', "            \
                                                                       "duration_ms, "             \
                                                                       "'recordsProcessed', "      \
                                                                       "records_processed, "       \
                                                                       "'attempts', "              \
                                                                       "attempts, "                \
                                                                       "'errorMessage', "          \
                                                                       "error_message, "           \
                                                                       "'metadata', metadata)"

struct job_enqueued {
    char id[JOB_ID_LEN];
    enum job_status status;
    bool deduplicated; /* an identical job was already queued or running */
};

/* Who triggered the job (stored in metadata). */
struct job_origin {
    const char *trigger;    /* "http" or "cli" */
    const char *user_agent; /* may be NULL */
    const char *request_id; /* may be NULL */
};

/* Queues a job of job_type, or attaches to the queued/running job with the same identity.
 * With worker_id (the CLI) the row is inserted already running, owned by that worker, and a
 * duplicate is reported in `out->deduplicated` without attaching. */
MUSTCHECK int job_store_enqueue(PGconn *c, const char *job_type, const struct job_request *req,
                                const struct job_origin *origin, const char *worker_id,
                                struct job_enqueued *out, struct err *e);

/* job_store_enqueue of a fleet child (queued, job_logs.parent_id = parent_id, never refused
 * by QUEUE_MAX_QUEUED nor counted by it): an identical job already queued or running is
 * joined as usual (it keeps its own parent, or none). */
MUSTCHECK int job_store_enqueue_child(PGconn *c, const char *job_type,
                                      const struct job_request *req,
                                      const struct job_origin *origin, const char *parent_id,
                                      struct job_enqueued *out, struct err *e);

/* job_store_enqueue with a queue limit: when max_queued > 0 and max_queued jobs (of any
 * type) are queued already, a new job is refused with 503 queue_full (retry_after
 * JOB_STORE_QUEUE_FULL_RETRY_AFTER), while a request identical to a queued or running job
 * still attaches to it. The limit is soft by the few enqueues racing the count. The CLI
 * (worker_id set) inserts running jobs: never limited. */
#define JOB_STORE_QUEUE_FULL_RETRY_AFTER 30
MUSTCHECK int job_store_enqueue_limited(PGconn *c, const char *job_type,
                                        const struct job_request *req,
                                        const struct job_origin *origin, const char *worker_id,
                                        long long max_queued, struct job_enqueued *out,
                                        struct err *e);

/* Retention: deletes at most `batch` jobs that finished (success or error) more than
 * older_than_days days ago (completed_at), oldest first, in one statement (a transaction of its own
 * when none is open), skipping rows locked by others. Queued and running jobs are never deleted.
 * Returns how many were deleted, or -1. */
MUSTCHECK long long job_store_prune_batch(PGconn *c, long long older_than_days, long long batch,
                                          struct err *e);
/* How many finished jobs job_store_prune_batch would delete in all (a dry run), or -1. */
MUSTCHECK long long job_store_prune_count(PGconn *c, long long older_than_days, struct err *e);

/* A job taken to run: claimed from the queue, or inserted running by the CLI. */
struct job_claim {
    char id[JOB_ID_LEN];
    char job_type[JOB_TYPE_MAX];
    char tenant_id[JOB_TENANT_LEN]; /* "" when the job has no tenant */
    char request_id[65];            /* the triggering request's, "" when none */
    char trigger[16];               /* "http", "cli" */
    json_t *params;                 /* the resolved request (owned) */
    int attempts;
    bool cancel_requested; /* an operator cancelled it while it ran, then it was requeued */
};
void job_claim_clear(struct job_claim *c);

/* Claims the oldest queued job whose type is one of types[0..ntypes) (the kinds this
 * process can run). 1 = claimed, 0 = none, -1 = error. */
MUSTCHECK int job_store_claim(PGconn *c, const char *worker_id, const char *const *types,
                              size_t ntypes, struct job_claim *out, struct err *e);

/* Inside the job's own transaction, as its last statement: marks it success with its result
 * (borrowed) and records_processed. Fails (503 interrupted) when the lease was lost, so the
 * caller rolls back. duration_ms receives the run's duration. */
MUSTCHECK int job_store_finish_success(PGconn *c, const char *id, const char *worker_id,
                                       long long records, json_t *result, long long *duration_ms,
                                       struct err *e);
/* A job that ran to its end but partly failed: status error, its 200 body as result (callers
 * get that body), job_err as metadata.error with httpStatus 200. */
MUSTCHECK int job_store_finish_partial(PGconn *c, const char *id, const char *worker_id,
                                       long long records, json_t *result, const struct err *job_err,
                                       long long *duration_ms, struct err *e);
/* job_store_claim for workers with the fleet-wide limit on fleet children running at once:
 * a job that is no fleet child is taken first (one statement, no lock); then, when
 * max_children > 0, a fleet child (parent_id set) only while fewer than max_children are
 * running, every instance counted, with the child claims serialised by a transaction-scoped
 * advisory lock (taken only when a child is queued) so the limit is exact. With parent_id,
 * only that parent's children are claimed (the parent runs them itself while it waits). */
MUSTCHECK int job_store_claim_limited(PGconn *c, const char *worker_id, const char *const *types,
                                      size_t ntypes, long long max_children, const char *parent_id,
                                      struct job_claim *out, struct err *e);

/* Marks a job failed with job_err as metadata.error. 0 when the row was still ours. */
MUSTCHECK int job_store_finish_error(PGconn *c, const char *id, const char *worker_id,
                                     const struct err *job_err, struct err *e);
/* Puts a running job back in the queue: without counting the attempt (shutdown), or counting
 * it (the job's database connection was lost). */
MUSTCHECK int job_store_requeue(PGconn *c, const char *id, const char *worker_id,
                                const char *reason, bool count_attempt, struct err *e);

/* Renews the leases of (ids[i], workers[i]); lost[i] becomes true for a job that is no
 * longer running under that worker. The time recorded is the database clock once the rows
 * are locked (a renewal that waited on a lock records when it got through). */
MUSTCHECK int job_store_heartbeat(PGconn *c, const char *const *ids, const char *const *workers,
                                  size_t n, bool *lost, struct err *e);

/* A running job the reaper took back. Strings are borrowed for the call. */
struct job_reaped {
    const char *id, *job_type, *tenant_id, *attempts, *lost_worker;
    bool failed; /* out of attempts: ended as error (interrupted), else requeued */
};
/* Requeues running jobs whose lease expired by the database clock (clock_timestamp()) (or
 * fails them as `interrupted` once they had max_attempts claims), skipping rows being
 * renewed, calling fn (may be NULL) once per job. Returns how many were reaped, or -1. Run
 * it in a transaction with a short lock_timeout (job_lease does). */
MUSTCHECK int job_store_reap(PGconn *c, long long lease_seconds, long long max_attempts,
                             void (*fn)(void *ctx, const struct job_reaped *r), void *ctx,
                             struct err *e);

/* The running jobs whose lease has expired now (at most 1,000, oldest first): the reaper's
 * candidates, each with its heartbeat as the database printed it. */
struct job_expired {
    char **ids, **heartbeats;
    size_t n;
};
MUSTCHECK int job_store_expired(PGconn *c, long long lease_seconds, struct job_expired *out,
                                struct err *e);
void job_store_expired_free(struct job_expired *x);
/* job_store_reap limited to the jobs of seen (NULL: every expired job) whose heartbeat is still
 * the one seen: a job is taken back only when two looks, some time apart, found its lease
 * expired and not renewed in between. */
MUSTCHECK int job_store_reap_seen(PGconn *c, long long lease_seconds, long long max_attempts,
                                  const struct job_expired *seen,
                                  void (*fn)(void *ctx, const struct job_reaped *r), void *ctx,
                                  struct err *e);

/* One job as SPEC 2.5 shows it (new reference), or NULL with e: 404 job_not_found when it
 * does not exist or (tenant_id not NULL) belongs to another tenant. Its "result" is the
 * stored copy (jsonb key order): presenting it is the caller's. */
MUSTCHECK json_t *job_store_get(PGconn *c, const char *id, const char *tenant_id,
                                long long timeout_ms, struct err *e);

/* Jobs queued and running now (every instance), per type of types[0..ntypes): fn is
 * called once per (type, status) pair, zeros included. */
MUSTCHECK int job_store_queue_counts(PGconn *c, const char *const *types, size_t ntypes,
                                     void (*fn)(void *ctx, const char *job_type, const char *status,
                                                long long count),
                                     void *ctx, struct err *e);

/* The state of waited-for jobs. fn is called once per row found. */
struct job_state {
    const char *id;
    enum job_status status;
    const char *job_type;
    const char *result; /* JSON text or NULL */
    const char *error;  /* JSON text or NULL */
};
MUSTCHECK int job_store_poll(PGconn *c, const char *const *ids, size_t n,
                             void (*fn)(void *ctx, const struct job_state *s), void *ctx,
                             struct err *e);

/* Operator cancellation (issue 21): which of the running jobs ids[0..n) (held by worker_id,
 * unless NULL) an operator asked to cancel (metadata.cancelRequested), into requested[]. */
MUSTCHECK int job_store_cancel_requested(PGconn *c, const char *const *ids, const char *worker_id,
                                         size_t n, bool *requested, struct err *e);
/* Ends a running job of worker_id `cancelled` (its work was rolled back); a fleet parent's
 * children that are still queued or running are cancelled with it (JOB_STORE_CANCEL_SET). */
MUSTCHECK int job_store_finish_cancelled(PGconn *c, const char *id, const char *worker_id,
                                         struct err *e);

#endif
