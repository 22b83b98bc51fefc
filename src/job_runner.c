/* job_runner: see job_runner.h. */
#include "jobsd/job_runner.h"
#include "jobsd/db.h"
#include "jobsd/job_exec.h"
#include "jobsd/job_kinds.h"
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
    const char *types[JOB_KINDS_MAX]; /* the job types this process runs */
    size_t ntypes;
};

/* The pool's connection broke: hand it back (the pool closes it) and take another. */
static MUSTCHECK PGconn *reacquire(void *ctx, PGconn *broken, struct err *e)
{
    struct job_runner *r = ctx;
    if (broken)
        db_pool_release(r->pool, broken);
    return db_pool_acquire(r->pool, 2000, e);
}

static void run_claimed(struct worker *w, PGconn **c, struct job_claim *claim)
{
    struct job_runner *r = w->r;
    const struct job_kind *kind = job_kind_by_type(claim->job_type);
    pthread_mutex_lock(&r->lock);
    /* At shutdown a job past its grace is told to stop (cancelled) and its statement is
     * cancelled (a sync stores a rotated token again if the cancel lands there). */
    w->cancel = PQgetCancel(*c);
    w->busy = true;
    w->cancelled = 0;
    pthread_mutex_unlock(&r->lock);

    struct job_exec x = {
        .cfg = r->cfg,
        .ml = r->ml,
        .lease = r->lease,
        .metrics = r->metrics,
        .reconnect = reacquire,
        .reconnect_ctx = r,
        .cancel = &w->cancelled,
        .requeue_cancelled = true,
        .requeue_lost = true,
    };
    struct err e;
    err_clear(&e);
    enum job_outcome o = job_exec_run(&x, kind, claim, w->id, c, NULL, &e);
    if (log_enabled(LOG_DEBUG))
        log_event(LOG_DEBUG, "worker done with a job", "workerId", w->id, "jobLogId", claim->id,
                  "outcome", job_outcome_name(o), NULL);

    pthread_mutex_lock(&r->lock);
    PQfreeCancel(w->cancel);
    w->cancel = NULL;
    w->busy = false;
    pthread_mutex_unlock(&r->lock);
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
            claimed = job_store_claim_limited(c, w->id, r->types, r->ntypes,
                                              r->cfg->fleet_max_running, NULL, &claim, &e);
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
    r->ntypes = job_kinds_types(r->types, JOB_KINDS_MAX);
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
        if (!w->busy)
            continue;
        w->cancelled = 1;
        if (w->cancel) {
            char why[256];
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
