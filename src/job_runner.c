/* job_runner: see job_runner.h. */
#include "jobsd/job_runner.h"
#include "jobsd/db.h"
#include "jobsd/job_lease.h"
#include "jobsd/job_store.h"
#include "jobsd/job_wait.h"
#include "jobsd/log.h"
#include "jobsd/metrics.h"
#include "jobsd/util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How often an idle worker looks for jobs queued by other instances. */
#define CLAIM_POLL_MS 500

struct worker {
    struct job_runner *r;
    pthread_t thread;
    char id[JOB_WORKER_ID_MAX];
    /* The running job, for cancellation at shutdown (under r->lock). */
    PGcancel *cancel;
    bool busy;
    volatile int cancelled;
};

struct job_runner {
    const struct config *cfg;
    struct ml_client *ml;
    struct metrics *metrics;
    struct db_pool *pool;
    struct job_lease *lease;
    struct job_waiters *waiters;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stopping;
    unsigned long long wakes;
    struct worker *workers;
    int nworkers;
};

json_t *job_runner_execute(struct job_run *run, const struct job_kind *kind, struct err *e)
{
    json_t *result = kind->run(run, e);
    if (result)
        return result;
    db_rollback(run->conn);
    if (!err_is_set(e))
        err_set(e, 500, "internal_error", "job failed without a reason");
    return NULL;
}

static void record_failure(struct job_runner *r, PGconn **c, const char *id, const char *worker,
                           const struct err *job_err)
{
    struct err e;
    err_clear(&e);
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!*c || db_is_broken(*c)) {
            if (*c)
                db_pool_release(r->pool, *c);
            *c = db_pool_acquire(r->pool, 2000, &e);
            if (!*c)
                continue;
        }
        if (job_store_finish_error(*c, id, worker, job_err, &e) == 0)
            return;
        if (strcmp(e.code, "interrupted") == 0)
            return; /* not ours any more: whoever has it records the outcome */
    }
    /* The lease is dropped by the caller: the reaper will requeue the job. */
    log_event(LOG_ERROR, LOG_JOB_TAG "could not record a failed job (the reaper will requeue it)",
              "jobLogId", id, "error", e.message, NULL);
}

/* Puts the job back in the queue: after a shutdown cancelled it (the attempt does not count),
 * or after its database connection was lost (it counts). */
static void requeue(struct job_runner *r, PGconn **c, const char *id, const char *worker,
                    const char *reason, bool count_attempt)
{
    struct err e;
    err_clear(&e);
    if (!*c || db_is_broken(*c)) {
        if (*c)
            db_pool_release(r->pool, *c);
        *c = db_pool_acquire(r->pool, 2000, &e);
    }
    if (*c && job_store_requeue(*c, id, worker, reason, count_attempt, &e) == 0) {
        if (count_attempt)
            log_event(LOG_WARN, LOG_JOB_TAG "job requeued: its database connection was lost",
                      "jobLogId", id, "reason", reason, NULL);
        else
            log_event(LOG_WARN, LOG_JOB_TAG "job cancelled by shutdown: requeued", "jobLogId", id,
                      "reason", reason, NULL);
        return;
    }
    log_event(LOG_ERROR, LOG_JOB_TAG "could not requeue the job (the reaper will)", "jobLogId", id,
              "reason", reason, "error", e.message, NULL);
}

/* A failure that says nothing about the job: its connection to the database went away
 * (restart, terminated backend, network). Statement timeouts are not this: they are the
 * job's own outcome. */
static bool connection_lost(PGconn *c, const struct err *e)
{
    return strcmp(e->code, "database_unavailable") == 0 && db_is_broken(c);
}

static void run_claimed(struct worker *w, PGconn **c, struct job_claim *claim)
{
    struct job_runner *r = w->r;
    const struct job_kind *kind = claim->kind;
    job_lease_add(r->lease, claim->id, w->id);
    pthread_mutex_lock(&r->lock);
    w->cancel = PQgetCancel(*c);
    w->busy = true;
    w->cancelled = 0;
    pthread_mutex_unlock(&r->lock);

    char attempt[16];
    util_fmt(attempt, sizeof attempt, "%d", claim->attempts);
    /* SPEC 6: "[INTERNAL-JOB] rebuild-daily-metrics finished jobLogId=... tenantId=..." */
    char msg[96];
    util_fmt(msg, sizeof msg, LOG_JOB_TAG "%s started", kind->name);
    log_event(LOG_INFO, msg, "job", kind->name, "jobLogId", claim->id, "tenantId", claim->tenant_id,
              "attempt", attempt, "workerId", w->id, "requestId", claim->request_id, NULL);

    struct job_run run;
    memset(&run, 0, sizeof run);
    run.cfg = r->cfg;
    run.ml = r->ml;
    run.conn = *c;
    snprintf(run.id, sizeof run.id, "%s", claim->id);
    snprintf(run.tenant_id, sizeof run.tenant_id, "%s", claim->tenant_id);
    snprintf(run.worker_id, sizeof run.worker_id, "%s", w->id);
    run.params = claim->params;
    run.attempt = claim->attempts;
    run.cancel = &w->cancelled;
    struct err e;
    err_clear(&e);
    long long started = util_mono_ms();
    json_t *result = job_runner_execute(&run, kind, &e);
    double seconds = (double)(util_mono_ms() - started) / 1000.0;

    pthread_mutex_lock(&r->lock);
    PQfreeCancel(w->cancel);
    w->cancel = NULL;
    w->busy = false;
    bool cancelled = w->cancelled != 0;
    pthread_mutex_unlock(&r->lock);

    if (result) {
        /* ids, every counter of the result (rowsUpserted, ..., durationMs), then the request
         * id and the job, in SPEC 6's order. */
        const char *keys[24] = {"jobLogId", "tenantId"};
        const char *values[24] = {claim->id, claim->tenant_id};
        char nums[16][24];
        size_t n = 2, k = 0;
        const char *key;
        json_t *v;
        json_object_foreach(result, key, v)
        {
            if (!json_is_integer(v) || k >= 15 || strcmp(key, "duration") == 0)
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
        bool partial = json_is_false(json_object_get(result, "success"));
        metrics_job(r->metrics, kind->type, partial ? "error" : "success", seconds);
        util_fmt(msg, sizeof msg, LOG_JOB_TAG "%s %s", kind->name,
                 partial ? "finished with errors" : "finished");
        log_eventv(partial ? LOG_WARN : LOG_INFO, msg, keys, values, n);
        json_decref(result);
    } else if (cancelled) {
        requeue(r, c, claim->id, w->id, "shutdown", false);
    } else if (connection_lost(*c, &e) && claim->attempts < r->cfg->job_max_attempts) {
        log_event(LOG_WARN, LOG_JOB_TAG "job lost its database connection", "job", kind->name,
                  "jobLogId", claim->id, "attempt", attempt, "error", e.message, NULL);
        requeue(r, c, claim->id, w->id, "database connection lost", true);
    } else {
        util_fmt(msg, sizeof msg, LOG_JOB_TAG "%s failed", kind->name);
        log_event(LOG_ERROR, msg, "job", kind->name, "jobLogId", claim->id, "tenantId",
                  claim->tenant_id, "code", e.code, "error", e.message, "requestId",
                  claim->request_id, NULL);
        if (strcmp(e.code, "interrupted") != 0)
            record_failure(r, c, claim->id, w->id, &e);
        metrics_job(r->metrics, kind->type, "error", seconds);
    }
    job_lease_remove(r->lease, claim->id);
    job_waiters_notify(r->waiters);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct job_runner *r = w->r;
    long long backoff = 250;
    for (;;) {
        pthread_mutex_lock(&r->lock);
        bool stop = r->stopping;
        unsigned long long wakes = r->wakes;
        pthread_mutex_unlock(&r->lock);
        if (stop)
            break;
        struct err e;
        err_clear(&e);
        PGconn *c = db_pool_acquire(r->pool, 1000, &e);
        int claimed = 0;
        struct job_claim claim;
        memset(&claim, 0, sizeof claim);
        if (c) {
            claimed = job_store_claim(c, w->id, &claim, &e);
            if (claimed > 0) {
                run_claimed(w, &c, &claim);
                job_claim_clear(&claim);
            }
            if (c)
                db_pool_release(r->pool, c);
        }
        if (claimed > 0) {
            backoff = 250;
            continue; /* there may be more */
        }
        long long wait = CLAIM_POLL_MS;
        if (claimed < 0 || !c) {
            log_event(LOG_WARN, "worker cannot claim jobs", "workerId", w->id, "error", e.message,
                      NULL);
            wait = backoff;
            backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
        }
        pthread_mutex_lock(&r->lock);
        if (!r->stopping && r->wakes == wakes)
            util_cond_wait_ms(&r->cond, &r->lock, wait);
        pthread_mutex_unlock(&r->lock);
    }
    return NULL;
}

struct job_runner *job_runner_start(const struct config *cfg, struct db_pool *pool,
                                    struct job_lease *lease, struct job_waiters *waiters,
                                    struct ml_client *ml, struct metrics *metrics, int workers)
{
    struct job_runner *r = util_calloc(1, sizeof *r);
    r->cfg = cfg;
    r->ml = ml;
    r->metrics = metrics;
    r->pool = pool;
    r->lease = lease;
    r->waiters = waiters;
    r->nworkers = workers;
    r->workers = util_calloc((size_t)workers, sizeof *r->workers);
    pthread_mutex_init(&r->lock, NULL);
    util_cond_init(&r->cond);
    for (int i = 0; i < workers; i++) {
        struct worker *w = &r->workers[i];
        w->r = r;
        char suffix[16];
        util_fmt(suffix, sizeof suffix, "w%d", i + 1);
        job_worker_id(w->id, sizeof w->id, suffix);
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
            util_fatal("cannot start a worker thread");
    }
    return r;
}

void job_runner_wake(struct job_runner *r)
{
    pthread_mutex_lock(&r->lock);
    r->wakes++;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

int job_runner_busy(struct job_runner *r)
{
    int n = 0;
    pthread_mutex_lock(&r->lock);
    for (int i = 0; i < r->nworkers; i++)
        n += r->workers[i].busy ? 1 : 0;
    pthread_mutex_unlock(&r->lock);
    return n;
}

void job_runner_stop(struct job_runner *r, long long grace_ms)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    r->stopping = true;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    long long deadline = util_mono_ms() + grace_ms;
    while (job_runner_busy(r) > 0 && util_mono_ms() < deadline)
        util_sleep_ms(50, NULL);
    pthread_mutex_lock(&r->lock);
    for (int i = 0; i < r->nworkers; i++) {
        struct worker *w = &r->workers[i];
        if (w->busy && w->cancel) {
            char why[256];
            w->cancelled = 1;
            if (!PQcancel(w->cancel, why, (int)sizeof why))
                log_event(LOG_WARN, "could not cancel a running job", "workerId", w->id, "error",
                          why, NULL);
        }
    }
    pthread_mutex_unlock(&r->lock);
    for (int i = 0; i < r->nworkers; i++)
        pthread_join(r->workers[i].thread, NULL);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    free(r->workers);
    free(r);
}
