/* job_exec: see job_exec.h. */
#include "jobsd/job_exec.h"
#include "jobsd/db.h"
#include "jobsd/job_fleet.h"
#include "jobsd/job_lease.h"
#include "jobsd/log.h"
#include "jobsd/metrics.h"
#include "jobsd/util.h"

#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------ submit */

void job_submission_clear(struct job_submission *s)
{
    job_request_clear(&s->req);
    memset(s, 0, sizeof *s);
}

int job_exec_submit(PGconn *c, const struct config *cfg, const struct job_kind *kind, json_t *body,
                    const struct job_origin *origin, const char *worker_id,
                    struct job_submission *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    if (db_begin(c, cfg->db_query_timeout_ms, e) != 0 ||
        job_exec_submit_in(c, cfg, kind, body, origin, worker_id, out, e) != 0 ||
        db_commit(c, e) != 0) {
        db_rollback(c);
        job_submission_clear(out);
        return -1;
    }
    return 0;
}

int job_exec_submit_in(PGconn *c, const struct config *cfg, const struct job_kind *kind,
                       json_t *body, const struct job_origin *origin, const char *worker_id,
                       struct job_submission *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    if (kind->resolve(cfg, c, body, &out->req, e) != 0 ||
        job_store_enqueue_limited(c, kind->type, &out->req, origin, worker_id,
                                  cfg->queue_max_queued, &out->enq, e) != 0) {
        job_submission_clear(out);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ run */

const char *job_outcome_name(enum job_outcome o)
{
    switch (o) {
    case JOB_OUTCOME_SUCCESS:
        return "success";
    case JOB_OUTCOME_PARTIAL:
        return "partial";
    case JOB_OUTCOME_FAILED:
        return "failed";
    case JOB_OUTCOME_REQUEUED:
        return "requeued";
    case JOB_OUTCOME_CANCELLED:
        return "cancelled";
    }
    return "failed";
}

/* A usable connection for recording the outcome (the run's, or a new one). */
static MUSTCHECK bool usable(const struct job_exec *x, PGconn **c, struct err *e)
{
    if (*c && !db_is_broken(*c))
        return true;
    *c = x->reconnect(x->reconnect_ctx, *c, e);
    return *c != NULL;
}

static void record_failure(const struct job_exec *x, PGconn **c, const struct job_claim *claim,
                           const char *worker, const struct err *job_err)
{
    struct err e;
    err_clear(&e);
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!usable(x, c, &e))
            continue;
        if (job_store_finish_error(*c, claim->id, worker, job_err, &e) == 0)
            return;
        if (strcmp(e.code, "interrupted") == 0)
            return; /* not ours any more: whoever has it records the outcome */
    }
    /* The lease is dropped by the caller: the reaper will requeue the job. */
    log_event(LOG_ERROR, LOG_JOB_TAG "could not record a failed job (the reaper will requeue it)",
              "jobLogId", claim->id, "error", e.message, NULL);
}

/* job_store_requeue on a new connection of its own, a few times within about 2 s (a database
 * that does not answer at all costs one connect_timeout): after a lost connection the pool's
 * idle ones are likely dead too (pg_terminate_backend of every backend, a failover), and the
 * job would otherwise wait for the reaper. */
static MUSTCHECK int requeue_fresh(const struct job_exec *x, const struct job_claim *claim,
                                   const char *worker, const char *reason, bool count_attempt,
                                   struct err *e)
{
    long long pause = 100, until = util_mono_ms() + 2000;
    for (int attempt = 0; attempt < 5 && (attempt == 0 || util_mono_ms() < until); attempt++) {
        if (attempt > 0) {
            util_sleep_ms(pause, NULL);
            pause *= 2;
        }
        err_clear(e);
        PGconn *fresh = db_connect(x->cfg->database_url, e);
        if (!fresh)
            continue;
        int rc = job_store_requeue(fresh, claim->id, worker, reason, count_attempt, e);
        PQfinish(fresh);
        if (rc == 0)
            return 0;
    }
    return -1;
}

/* Puts the job back in the queue: after a shutdown cancelled it (the attempt does not count),
 * or after its database connection was lost (it counts). The run's connection when it still
 * works, else a fresh one. */
static void requeue(const struct job_exec *x, PGconn **c, const struct job_claim *claim,
                    const char *worker, const char *reason, bool count_attempt)
{
    struct err e;
    err_clear(&e);
    bool done = *c && !db_is_broken(*c) &&
                job_store_requeue(*c, claim->id, worker, reason, count_attempt, &e) == 0;
    if (done || requeue_fresh(x, claim, worker, reason, count_attempt, &e) == 0) {
        if (count_attempt)
            log_event(LOG_WARN, LOG_JOB_TAG "job requeued: its database connection was lost",
                      "jobLogId", claim->id, "reason", reason, NULL);
        else
            log_event(LOG_WARN, LOG_JOB_TAG "job cancelled by shutdown: requeued", "jobLogId",
                      claim->id, "reason", reason, NULL);
        return;
    }
    log_event(LOG_ERROR, LOG_JOB_TAG "could not requeue the job (the reaper will)", "jobLogId",
              claim->id, "reason", reason, "error", e.message, NULL);
}

/* A failure that says nothing about the job: its connection to the database went away
 * (restart, terminated backend, network). Statement timeouts are not this: they are the
 * job's own outcome. */
static bool connection_lost(PGconn *c, const struct err *e)
{
    return strcmp(e->code, "database_unavailable") == 0 && db_is_broken(c);
}

/* SPEC 6: "[INTERNAL-JOB] rebuild-daily-metrics started jobLogId=… tenantId=…". */
static void log_started(const struct job_kind *kind, const struct job_claim *claim,
                        const char *worker)
{
    char msg[96], attempt[16];
    util_fmt(msg, sizeof msg, LOG_JOB_TAG "%s started", kind->name);
    util_fmt(attempt, sizeof attempt, "%d", claim->attempts);
    log_event(LOG_INFO, msg, "job", kind->name, "jobLogId", claim->id, "tenantId", claim->tenant_id,
              "attempt", attempt, "workerId", worker, "trigger", claim->trigger, "requestId",
              claim->request_id, NULL);
}

/* The finished line: the ids, every counter of the result (rowsUpserted, ...), durationMs,
 * then the request id and the job, in SPEC 6's order. */
static void log_finished(const struct job_kind *kind, const struct job_claim *claim, json_t *result,
                         bool partial)
{
    enum { MAX_FIELDS = 24, MAX_COUNTERS = 16 };
    const char *keys[MAX_FIELDS] = {"jobLogId", "tenantId"};
    const char *values[MAX_FIELDS] = {claim->id, claim->tenant_id};
    char nums[MAX_COUNTERS][24];
    size_t n = 2, k = 0;
    const char *key;
    json_t *v;
    json_object_foreach(result, key, v)
    {
        if (!json_is_integer(v) || k >= MAX_COUNTERS - 1 || strcmp(key, "duration") == 0)
            continue;
        util_fmt(nums[k], sizeof nums[k], "%lld", (long long)json_integer_value(v));
        keys[n] = key;
        values[n++] = nums[k++];
    }
    json_t *dur = json_object_get(result, "duration");
    if (json_is_integer(dur)) {
        util_fmt(nums[k], sizeof nums[k], "%lld", (long long)json_integer_value(dur));
        keys[n] = "durationMs";
        values[n++] = nums[k++];
    }
    keys[n] = "requestId";
    values[n++] = claim->request_id;
    keys[n] = "job";
    values[n++] = kind->name;
    char msg[96];
    util_fmt(msg, sizeof msg, LOG_JOB_TAG "%s %s", kind->name,
             partial ? "finished with errors" : "finished");
    log_eventv(partial ? LOG_WARN : LOG_INFO, msg, keys, values, n);
}

static void log_failed(const struct job_kind *kind, const struct job_claim *claim,
                       const struct err *e)
{
    char msg[96];
    util_fmt(msg, sizeof msg, LOG_JOB_TAG "%s failed", kind->name);
    log_event(LOG_ERROR, msg, "job", kind->name, "jobLogId", claim->id, "tenantId",
              claim->tenant_id, "code", e->code, "error", e->message, "requestId",
              claim->request_id, NULL);
}

/* The run a claim becomes: what a kind (or a fleet parent) is given. */
static void run_of(const struct job_exec *x, const struct job_claim *claim, const char *worker,
                   PGconn *c, const atomic_int *cancel_op, struct job_run *run)
{
    memset(run, 0, sizeof *run);
    run->cfg = x->cfg;
    run->ml = x->ml;
    run->conn = c;
    snprintf(run->id, sizeof run->id, "%s", claim->id);
    snprintf(run->tenant_id, sizeof run->tenant_id, "%s", claim->tenant_id);
    snprintf(run->worker_id, sizeof run->worker_id, "%s", worker);
    run->params = claim->params;
    run->attempt = claim->attempts;
    run->progress = x->progress;
    run->progress_ctx = x->progress_ctx;
    run->cancel = x->cancel;
    run->cancel_op = cancel_op;
}

/* A run's result, or NULL with e set (a reason given when the kind gave none) and nothing it
 * did committed. */
static json_t *run_ended(json_t *result, PGconn *c, struct err *e)
{
    if (result)
        return result;
    db_rollback(c);
    if (!err_is_set(e))
        err_set(e, 500, "internal_error", "job failed without a reason");
    return NULL;
}

/* Calls the kind. On failure nothing it did is committed. */
static MUSTCHECK json_t *call_kind(const struct job_exec *x, const struct job_kind *kind,
                                   const struct job_claim *claim, const char *worker, PGconn *c,
                                   const atomic_int *cancel_op, struct err *e)
{
    struct job_run run;
    run_of(x, claim, worker, c, cancel_op, &run);
    return run_ended(kind->run(&run, e), c, e);
}

/* ------------------------------------------------------------------ fleet parents */

struct fleet_ctx {
    const struct job_exec *x;
    const struct job_kind *kind;
    const char *worker;
    const char *parent_id;
};

/* Claims one queued child of the parent (within FLEET_MAX_RUNNING) and runs it here. */
static MUSTCHECK int fleet_child(void *ctx, PGconn **c, const char *parent_id, struct err *e)
{
    struct fleet_ctx *f = ctx;
    const char *types[] = {f->kind->type};
    struct job_claim claim;
    int got = job_store_claim_limited(*c, f->worker, types, 1, f->x->cfg->fleet_max_running,
                                      parent_id, &claim, e);
    if (got <= 0)
        return got;
    struct err child_err;
    err_clear(&child_err);
    enum job_outcome o = job_exec_run(f->x, f->kind, &claim, f->worker, c, NULL, &child_err);
    if (log_enabled(LOG_DEBUG))
        log_event(LOG_DEBUG, "fleet parent ran a child", "jobLogId", claim.id, "parentId",
                  parent_id, "outcome", job_outcome_name(o), NULL);
    job_claim_clear(&claim);
    return 1;
}

static bool fleet_lost(void *ctx)
{
    struct fleet_ctx *f = ctx;
    return f->x->lease && job_lease_lost(f->x->lease, f->parent_id);
}

/* A fleet parent's run (job_fleet): its children are run with this same path. */
static MUSTCHECK json_t *call_fleet(const struct job_exec *x, const struct job_kind *kind,
                                    const struct job_claim *claim, const char *worker, PGconn **c,
                                    const atomic_int *cancel_op, struct err *e)
{
    struct job_run run;
    run_of(x, claim, worker, *c, cancel_op, &run);
    struct fleet_ctx f = {x, kind, worker, claim->id};
    struct job_fleet_hooks h = {fleet_child, fleet_lost, &f,
                                claim->trigger[0] ? claim->trigger : "http", claim->request_id};
    json_t *result = job_fleet_run(kind, &run, &h, e);
    *c = run.conn;
    return run_ended(result, *c, e);
}

/* A run an operator cancelled (its statement was cancelled by the lease thread, its
 * transaction rolled back): the job ends `cancelled`, nothing it did is kept. */
static enum job_outcome finish_cancelled(const struct job_exec *x, const struct job_kind *kind,
                                         const struct job_claim *claim, const char *worker,
                                         PGconn **c, struct err *e)
{
    (void)x;
    db_rollback(*c);
    struct err fe;
    err_clear(&fe);
    if (job_store_finish_cancelled(*c, claim->id, worker, &fe) != 0)
        log_event(LOG_ERROR, LOG_JOB_TAG "could not record a cancelled job", "jobLogId", claim->id,
                  "error", fe.message, NULL);
    else
        log_event(LOG_INFO, LOG_JOB_TAG "job cancelled", "job", kind->name, "jobLogId", claim->id,
                  "tenantId", claim->tenant_id, NULL);
    err_clear(e);
    err_set(e, 409, "job_cancelled",
            "job %s was cancelled by an operator; its open transaction was rolled back", claim->id);
    return JOB_OUTCOME_CANCELLED;
}

/* Whether an operator cancelled the run: its flag (the lease thread saw the row), the claim
 * (a job requeued after the cancel was asked), or the row itself (a fleet parent that saw it
 * in its counts before the lease thread did). */
static bool operator_cancelled(const struct job_exec *x, const struct job_claim *claim,
                               const char *worker, const atomic_int *cancel_op, PGconn *c)
{
    if (atomic_load(cancel_op) || claim->cancel_requested ||
        job_lease_cancel_requested(x->lease, claim->id))
        return true;
    if (!c || db_is_broken(c))
        return false;
    db_rollback(c);
    const char *ids[] = {claim->id};
    bool requested = false;
    struct err e;
    err_clear(&e);
    return job_store_cancel_requested(c, ids, worker, 1, &requested, &e) == 0 && requested;
}

/* What a run that returned no result becomes. */
static MUSTCHECK enum job_outcome
after_failure(const struct job_exec *x, const struct job_kind *kind, const struct job_claim *claim,
              const char *worker, const atomic_int *cancel_op, PGconn **c, struct err *e)
{
    if (operator_cancelled(x, claim, worker, cancel_op, *c))
        return finish_cancelled(x, kind, claim, worker, c, e);
    bool cancelled = x->cancel && *x->cancel;
    if (cancelled && x->requeue_cancelled) {
        requeue(x, c, claim, worker, "shutdown", false);
        return JOB_OUTCOME_REQUEUED;
    }
    if (cancelled)
        err_set(e, 503, "interrupted",
                "cancelled before it finished; its open transaction was rolled back");
    if (!cancelled && x->requeue_lost && connection_lost(*c, e) &&
        claim->attempts < x->cfg->job_max_attempts) {
        char attempt[16];
        util_fmt(attempt, sizeof attempt, "%d", claim->attempts);
        log_event(LOG_WARN, LOG_JOB_TAG "job lost its database connection", "job", kind->name,
                  "jobLogId", claim->id, "attempt", attempt, "error", e->message, NULL);
        requeue(x, c, claim, worker, "database connection lost", true);
        return JOB_OUTCOME_REQUEUED;
    }
    log_failed(kind, claim, e);
    if (strcmp(e->code, "interrupted") != 0 || cancelled)
        record_failure(x, c, claim, worker, e);
    return JOB_OUTCOME_FAILED;
}

enum job_outcome job_exec_run(const struct job_exec *x, const struct job_kind *kind,
                              const struct job_claim *claim, const char *worker, PGconn **c,
                              json_t **result_out, struct err *e)
{
    if (result_out)
        *result_out = NULL;
    job_lease_add(x->lease, claim->id, worker);
    /* Set by the lease thread when an operator cancels the job: the kind stops at its next
     * check, and its statement in flight is cancelled (PQcancel: a rebuild is one statement,
     * a sync may wait on a lock). Not a fleet parent's: it waits between short statements,
     * and its child, on the same connection, has an entry that cancels the child's. */
    PGcancel *canceller = job_fleet_is_parent(claim->params) ? NULL : PQgetCancel(*c);
    atomic_int cancel_op = 0;
    job_lease_set_canceller(x->lease, claim->id, canceller, &cancel_op);
    log_started(kind, claim, worker);
    long long started = util_mono_ms();
    /* Cancelled before it started (a signal to the CLI right after it submitted): not run. */
    bool cancelled = (x->cancel && *x->cancel) || claim->cancel_requested;
    json_t *result = cancelled ? NULL
                     : job_fleet_is_parent(claim->params)
                         ? call_fleet(x, kind, claim, worker, c, &cancel_op, e)
                         : call_kind(x, kind, claim, worker, *c, &cancel_op, e);
    double seconds = (double)(util_mono_ms() - started) / 1000.0;
    enum job_outcome outcome;
    if (result) {
        bool partial = json_is_false(json_object_get(result, "success"));
        outcome = partial ? JOB_OUTCOME_PARTIAL : JOB_OUTCOME_SUCCESS;
        log_finished(kind, claim, result, partial);
        metrics_job(x->metrics, kind->type, partial ? "error" : "success", seconds);
    } else {
        outcome = after_failure(x, kind, claim, worker, &cancel_op, c, e);
        if (outcome == JOB_OUTCOME_FAILED || outcome == JOB_OUTCOME_CANCELLED)
            metrics_job(x->metrics, kind->type,
                        outcome == JOB_OUTCOME_FAILED ? "error" : "cancelled", seconds);
    }
    job_lease_remove(x->lease, claim->id);
    if (canceller)
        PQfreeCancel(canceller);
    if (result_out)
        *result_out = result;
    else
        json_decref(result);
    return outcome;
}
