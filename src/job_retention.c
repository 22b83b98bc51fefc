/* job_retention: see job_retention.h. */
#include "jobsd/job_retention.h"
#include "jobsd/db.h"
#include "jobsd/job_store.h"
#include "jobsd/log.h"
#include "jobsd/util.h"

#include <pthread.h>
#include <stdlib.h>

long long job_retention_prune(PGconn *c, long long days, const volatile int *stop,
                              void (*progress)(void *ctx, long long batch, long long total),
                              void *ctx, struct err *e)
{
    long long total = 0;
    while (!(stop && *stop)) {
        long long n = job_store_prune_batch(c, days, JOB_RETENTION_BATCH, e);
        if (n < 0)
            return -1;
        total += n;
        if (n > 0 && progress)
            progress(ctx, n, total);
        /* A short batch: nothing older is left (or the rest is locked: next time). */
        if (n < JOB_RETENTION_BATCH)
            break;
    }
    return total;
}

struct job_retention {
    struct db_pool *pool;
    long long days;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    volatile int stopping;
};

static void prune_once(struct job_retention *r)
{
    struct err e;
    err_clear(&e);
    PGconn *c = db_pool_acquire(r->pool, 5000, &e);
    if (!c) {
        log_event(LOG_WARN, "retention: no database connection (next try in an hour)", "error",
                  e.message, NULL);
        return;
    }
    long long started = util_mono_ms();
    long long n = job_retention_prune(c, r->days, &r->stopping, NULL, NULL, &e);
    db_pool_release(r->pool, c);
    char days[24], count[24], ms[24];
    util_fmt(days, sizeof days, "%lld", r->days);
    util_fmt(count, sizeof count, "%lld", n);
    util_fmt(ms, sizeof ms, "%lld", util_mono_ms() - started);
    if (n < 0)
        log_event(LOG_WARN, "retention: pruning finished jobs failed (next try in an hour)",
                  "olderThanDays", days, "error", e.message, NULL);
    else if (n > 0)
        log_event(LOG_INFO, "retention: finished jobs deleted", "deleted", count, "olderThanDays",
                  days, "durationMs", ms, NULL);
}

static void *run(void *arg)
{
    struct job_retention *r = arg;
    for (;;) {
        prune_once(r);
        pthread_mutex_lock(&r->lock);
        if (!r->stopping)
            util_cond_wait_ms(&r->cond, &r->lock, JOB_RETENTION_INTERVAL_MS);
        bool stop = r->stopping;
        pthread_mutex_unlock(&r->lock);
        if (stop)
            break;
    }
    return NULL;
}

struct job_retention *job_retention_start(struct db_pool *pool, long long days)
{
    if (days <= 0)
        return NULL;
    struct job_retention *r = util_calloc(1, sizeof *r);
    r->pool = pool;
    r->days = days;
    pthread_mutex_init(&r->lock, NULL);
    util_cond_init(&r->cond);
    if (pthread_create(&r->thread, NULL, run, r) != 0)
        util_fatal("cannot start the retention thread");
    return r;
}

void job_retention_stop(struct job_retention *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    r->stopping = 1;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    free(r);
}
