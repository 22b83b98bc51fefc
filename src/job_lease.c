/* job_lease: see job_lease.h. */
#include "jobsd/job_lease.h"
#include "jobsd/db.h"
#include "jobsd/job_kinds.h"
#include "jobsd/job_store.h"
#include "jobsd/log.h"
#include "jobsd/metrics.h"
#include "jobsd/util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How often an operator's cancel is looked for while jobs run here (between renewals). */
#define CANCEL_POLL_MS 1000

struct entry {
    char id[JOB_ID_LEN];
    char worker[JOB_WORKER_ID_MAX];
    bool lost;
    bool cancel_requested; /* an operator asked (metadata.cancelRequested) */
    PGcancel *pgcancel;    /* the run's statement canceller (the runner's), may be NULL */
    atomic_int *flag;      /* the run's job_run.cancel_op, may be NULL */
};

struct job_lease {
    char *url;
    long long lease_ms;
    long long max_attempts;
    bool reap;
    struct metrics *metrics;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop;
    unsigned long long kicks_requested, kicks_done;
    struct entry *entries;
    size_t n, cap;
    struct job_expired seen; /* the reaper's candidates, for their second look (its thread) */
};

/* Operator cancellation: a job whose row says cancelRequested gets its statement cancelled
 * (PQcancel on the runner's canceller, under the lock so the runner cannot free it meanwhile);
 * the run then fails, rolls back, and job_exec records it `cancelled`. */
static void cancel_pass(struct job_lease *l, PGconn *c, const char *const *ids, size_t n)
{
    bool *req = util_calloc(n, sizeof *req);
    struct err e;
    err_clear(&e);
    if (job_store_cancel_requested(c, ids, NULL, n, req, &e) != 0) {
        free(req);
        return;
    }
    pthread_mutex_lock(&l->lock);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; req[i] && j < l->n; j++) {
            struct entry *en = &l->entries[j];
            if (strcmp(en->id, ids[i]) != 0 || en->cancel_requested)
                continue;
            en->cancel_requested = true;
            if (en->flag)
                atomic_store(en->flag, 1);
            char buf[256];
            if (en->pgcancel)
                (void)PQcancel(en->pgcancel, buf, sizeof buf);
            log_event(LOG_INFO, LOG_JOB_TAG "job cancel requested: cancelling its statement",
                      "jobLogId", en->id, NULL);
        }
    }
    pthread_mutex_unlock(&l->lock);
    free(req);
}

/* cancel_pass over the jobs this process runs now (between renewals). */
static void cancel_check(struct job_lease *l, PGconn *c)
{
    if (!c || db_is_broken(c))
        return;
    pthread_mutex_lock(&l->lock);
    size_t n = l->n;
    char(*ids)[JOB_ID_LEN] = util_calloc(n ? n : 1, sizeof *ids);
    for (size_t i = 0; i < n; i++)
        memcpy(ids[i], l->entries[i].id, sizeof ids[i]);
    pthread_mutex_unlock(&l->lock);
    const char **ptrs = util_calloc(n ? n : 1, sizeof *ptrs);
    for (size_t i = 0; i < n; i++)
        ptrs[i] = ids[i];
    if (n)
        cancel_pass(l, c, ptrs, n);
    free(ptrs);
    free(ids);
}

/* Renews every lease this process holds. Returns false when the renewal was stalled (it
 * took longer than the renewal interval: a lock on job_logs, a database that froze). */
static bool heartbeat(struct job_lease *l, PGconn *c)
{
    pthread_mutex_lock(&l->lock);
    size_t n = l->n;
    struct entry *copy = util_calloc(n ? n : 1, sizeof *copy);
    if (n)
        memcpy(copy, l->entries, n * sizeof *copy);
    pthread_mutex_unlock(&l->lock);
    if (n == 0) {
        free(copy);
        return true;
    }
    const char **ids = util_calloc(n, sizeof *ids);
    const char **workers = util_calloc(n, sizeof *workers);
    bool *lost = util_calloc(n, sizeof *lost);
    for (size_t i = 0; i < n; i++) {
        ids[i] = copy[i].id;
        workers[i] = copy[i].worker;
    }
    struct err e;
    err_clear(&e);
    long long began = util_mono_ms();
    int rc = job_store_heartbeat(c, ids, workers, n, lost, &e);
    bool prompt = util_mono_ms() - began <= l->lease_ms / 3;
    if (rc == 0) {
        pthread_mutex_lock(&l->lock);
        for (size_t i = 0; i < n; i++) {
            if (!lost[i])
                continue;
            for (size_t j = 0; j < l->n; j++)
                if (strcmp(l->entries[j].id, ids[i]) == 0 && !l->entries[j].lost) {
                    l->entries[j].lost = true;
                    log_event(LOG_WARN, LOG_JOB_TAG "lease lost", "jobLogId", ids[i], "workerId",
                              workers[i], NULL);
                }
        }
        pthread_mutex_unlock(&l->lock);
    } else {
        log_event(LOG_WARN, "lease renewal failed", "error", e.message, NULL);
    }
    if (rc == 0)
        cancel_pass(l, c, ids, n);
    free(ids);
    free(workers);
    free(lost);
    free(copy);
    return prompt;
}

/* The reaper's account of each job it took back (the janitor always says why). */
static void on_reaped(void *ctx, const struct job_reaped *r)
{
    struct job_lease *l = ctx;
    const struct job_kind *k = job_kind_by_type(r->job_type);
    log_event(r->failed ? LOG_ERROR : LOG_WARN,
              r->failed ? LOG_JOB_TAG "job interrupted too many times: failed"
                        : LOG_JOB_TAG "job interrupted: requeued",
              "job", k ? k->name : r->job_type, "jobLogId", r->id, "tenantId", r->tenant_id,
              "attempts", r->attempts, "lostWorker", r->lost_worker, "reason", "lease expired",
              NULL);
    metrics_reaped(l->metrics, r->failed);
}

/* One reaper pass, in a transaction whose lock waits are short: a pass that would wait
 * behind a lock on job_logs gives up (the next one runs soon) rather than judge leases whose
 * renewals are queued behind the same lock. A job is taken back only when two looks found its
 * lease expired with the same heartbeat: this pass reaps what the previous one saw (l->seen)
 * and still finds so, then looks again. A renewal stalled behind a lock gets through the
 * moment the lock goes, so it lands between the two looks. Returns whether candidates are
 * waiting for their second look. */
static bool reap(struct job_lease *l, PGconn *c)
{
    long long wait_ms = l->lease_ms / 3 < 1000 ? l->lease_ms / 3 : 1000;
    struct err e;
    err_clear(&e);
    struct job_expired next;
    memset(&next, 0, sizeof next);
    if (db_begin(c, wait_ms, &e) != 0 ||
        (l->seen.n > 0 && job_store_reap_seen(c, l->lease_ms / 1000, l->max_attempts, &l->seen,
                                              on_reaped, l, &e) < 0) ||
        job_store_expired(c, l->lease_ms / 1000, &next, &e) < 0 || db_commit(c, &e) != 0) {
        db_rollback(c);
        job_store_expired_free(&next);
        log_event(strcmp(e.code, "timeout") == 0 ? LOG_INFO : LOG_WARN,
                  strcmp(e.code, "timeout") == 0 ? "reaper skipped a pass: job_logs is locked"
                                                 : "reaper failed",
                  "error", e.message, NULL);
    }
    job_store_expired_free(&l->seen);
    l->seen = next;
    return l->seen.n > 0;
}

static void *run(void *arg)
{
    struct job_lease *l = arg;
    PGconn *c = NULL;
    long long next_reap = 0; /* reap at once */
    long long backoff = 500;
    /* After this instance lost the database and got it back, it does not reap for one lease:
     * other instances may have been cut off by the same outage and need a chance to renew. */
    bool had_connection = false;
    long long quiet_until = 0;
    pthread_mutex_lock(&l->lock);
    while (!l->stop) {
        unsigned long long kick = l->kicks_requested;
        pthread_mutex_unlock(&l->lock);
        if (!c || db_is_broken(c)) {
            if (c)
                PQfinish(c);
            struct err e;
            err_clear(&e);
            c = db_connect(l->url, &e);
            if (c && had_connection)
                quiet_until = util_mono_ms() + l->lease_ms;
            if (c)
                had_connection = true;
            if (!c) {
                log_event(LOG_WARN, "lease keeper cannot reach the database", "error", e.message,
                          NULL);
                pthread_mutex_lock(&l->lock);
                if (!l->stop)
                    util_cond_wait_ms(&l->cond, &l->lock, backoff);
                backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
                continue;
            }
            backoff = 500;
        }
        if (!heartbeat(l, c) && l->reap) {
            /* What stalled this renewal stalled the other instances' too: give them one
             * lease to get through before judging theirs. */
            quiet_until = util_mono_ms() + l->lease_ms;
            log_event(LOG_WARN, "lease renewal was stalled: no reaping for one lease", NULL);
        }
        if (l->reap && util_mono_ms() >= next_reap && util_mono_ms() >= quiet_until) {
            /* Candidates get their second look half a lease later (a live instance renews
             * every third of a lease), otherwise the next pass is a lease away. */
            next_reap = util_mono_ms() + (reap(l, c) ? l->lease_ms / 2 : l->lease_ms);
        }
        pthread_mutex_lock(&l->lock);
        l->kicks_done = kick;
        pthread_cond_broadcast(&l->cond);
        /* Until the next renewal (a third of a lease), an operator's cancel is looked for
         * every CANCEL_POLL_MS while this process runs jobs: it takes effect within about a
         * second whichever instance took the request. */
        long long beat_due = util_mono_ms() + l->lease_ms / 3;
        while (!l->stop && l->kicks_requested == kick) {
            long long left = beat_due - util_mono_ms();
            if (left <= 0)
                break;
            util_cond_wait_ms(&l->cond, &l->lock, left < CANCEL_POLL_MS ? left : CANCEL_POLL_MS);
            if (l->stop || l->kicks_requested != kick || util_mono_ms() >= beat_due || l->n == 0)
                continue;
            pthread_mutex_unlock(&l->lock);
            cancel_check(l, c);
            pthread_mutex_lock(&l->lock);
        }
    }
    l->kicks_done = l->kicks_requested;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->lock);
    if (c)
        PQfinish(c);
    return NULL;
}

struct job_lease *job_lease_start(const char *db_url, long long lease_seconds,
                                  long long max_attempts, bool reap, struct metrics *metrics)
{
    struct job_lease *l = util_calloc(1, sizeof *l);
    l->metrics = metrics;
    l->url = util_strdup(db_url);
    l->lease_ms = lease_seconds * 1000;
    l->max_attempts = max_attempts;
    l->reap = reap;
    pthread_mutex_init(&l->lock, NULL);
    util_cond_init(&l->cond);
    if (pthread_create(&l->thread, NULL, run, l) != 0)
        util_fatal("cannot start the lease thread");
    return l;
}

void job_lease_add(struct job_lease *l, const char *id, const char *worker_id)
{
    pthread_mutex_lock(&l->lock);
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        struct entry *e = util_calloc(cap, sizeof *e);
        if (l->n)
            memcpy(e, l->entries, l->n * sizeof *e);
        free(l->entries);
        l->entries = e;
        l->cap = cap;
    }
    struct entry *e = &l->entries[l->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->id, sizeof e->id, "%s", id);
    snprintf(e->worker, sizeof e->worker, "%s", worker_id);
    pthread_mutex_unlock(&l->lock);
}

void job_lease_remove(struct job_lease *l, const char *id)
{
    pthread_mutex_lock(&l->lock);
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->entries[i].id, id) == 0) {
            l->entries[i] = l->entries[l->n - 1];
            l->n--;
            break;
        }
    }
    pthread_mutex_unlock(&l->lock);
}

bool job_lease_lost(struct job_lease *l, const char *id)
{
    bool lost = false;
    pthread_mutex_lock(&l->lock);
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->entries[i].id, id) == 0)
            lost = l->entries[i].lost;
    pthread_mutex_unlock(&l->lock);
    return lost;
}

void job_lease_kick(struct job_lease *l)
{
    pthread_mutex_lock(&l->lock);
    unsigned long long want = ++l->kicks_requested;
    pthread_cond_broadcast(&l->cond);
    while (l->kicks_done < want && !l->stop)
        util_cond_wait_ms(&l->cond, &l->lock, 100);
    pthread_mutex_unlock(&l->lock);
}

void job_lease_stop(struct job_lease *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->lock);
    l->stop = true;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->lock);
    pthread_join(l->thread, NULL);
    pthread_mutex_destroy(&l->lock);
    pthread_cond_destroy(&l->cond);
    free(l->entries);
    job_store_expired_free(&l->seen);
    free(l->url);
    free(l);
}

void job_lease_set_canceller(struct job_lease *l, const char *id, PGcancel *pc, atomic_int *flag)
{
    pthread_mutex_lock(&l->lock);
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->entries[i].id, id) == 0) {
            l->entries[i].pgcancel = pc;
            l->entries[i].flag = flag;
        }
    pthread_mutex_unlock(&l->lock);
}

bool job_lease_cancel_requested(struct job_lease *l, const char *id)
{
    bool r = false;
    pthread_mutex_lock(&l->lock);
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->entries[i].id, id) == 0)
            r = l->entries[i].cancel_requested;
    pthread_mutex_unlock(&l->lock);
    return r;
}
