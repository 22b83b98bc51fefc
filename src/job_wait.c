/* job_wait: see job_wait.h. */
#include "jobsd/job_wait.h"
#include "jobsd/db.h"
#include "jobsd/log.h"
#include "jobsd/util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct waiter {
    char id[JOB_ID_LEN];
    enum job_status last;
    long long deadline;
    job_wait_fn fn;
    void *ctx;
    bool done;
    struct waiter *next;
};

struct job_waiters {
    struct db_pool *pool;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop;
    bool poll_now;
    struct waiter *head;
    size_t count;
};

/* A finished job's state, owned (job_state only borrows). */
struct finished {
    char *id, *job_type, *result, *error;
    enum job_status status;
};

struct poll_ctx {
    struct job_waiters *w;
    struct finished *finished;
    size_t nfinished, cap;
};

static void on_state(void *ctx, const struct job_state *s)
{
    struct poll_ctx *p = ctx;
    struct job_waiters *w = p->w;
    pthread_mutex_lock(&w->lock);
    for (struct waiter *x = w->head; x; x = x->next)
        if (strcmp(x->id, s->id) == 0)
            x->last = s->status;
    pthread_mutex_unlock(&w->lock);
    if (!job_status_finished(s->status))
        return;
    if (p->nfinished == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        struct finished *n = util_calloc(cap, sizeof *n);
        if (p->nfinished)
            memcpy(n, p->finished, p->nfinished * sizeof *n);
        free(p->finished);
        p->finished = n;
        p->cap = cap;
    }
    struct finished *c = &p->finished[p->nfinished++];
    c->id = util_strdup(s->id);
    c->status = s->status;
    c->job_type = util_strdup(s->job_type);
    c->result = util_strdup(s->result);
    c->error = util_strdup(s->error);
}

/* Removes the waiters matching (finished id) or (deadline passed / stopping) and calls them. */
static void fire(struct job_waiters *w, const struct finished *finished, size_t nfinished, bool all)
{
    long long now = util_mono_ms();
    struct waiter *ready = NULL;
    pthread_mutex_lock(&w->lock);
    struct waiter **pp = &w->head;
    while (*pp) {
        struct waiter *x = *pp;
        const struct finished *match = NULL;
        for (size_t i = 0; i < nfinished; i++)
            if (strcmp(finished[i].id, x->id) == 0)
                match = &finished[i];
        if (match || all || now >= x->deadline) {
            *pp = x->next;
            x->next = ready;
            ready = x;
            w->count--;
            if (match) {
                x->done = true;
                x->last = match->status;
            }
        } else {
            pp = &x->next;
        }
    }
    pthread_mutex_unlock(&w->lock);
    while (ready) {
        struct waiter *x = ready;
        ready = x->next;
        struct job_state s = {x->id, x->last, NULL, NULL, NULL};
        for (size_t i = 0; x->done && i < nfinished; i++) {
            if (strcmp(finished[i].id, x->id) == 0) {
                s.job_type = finished[i].job_type;
                s.result = finished[i].result;
                s.error = finished[i].error;
            }
        }
        x->fn(x->ctx, &s, !x->done);
        free(x);
    }
}

static void poll_once(struct job_waiters *w)
{
    pthread_mutex_lock(&w->lock);
    size_t n = w->count;
    char(*ids)[JOB_ID_LEN] = util_calloc(n ? n : 1, JOB_ID_LEN);
    const char **ptrs = util_calloc(n ? n : 1, sizeof *ptrs);
    size_t k = 0;
    for (struct waiter *x = w->head; x && k < n; x = x->next) {
        bool dup = false;
        for (size_t i = 0; i < k; i++)
            dup = dup || strcmp(ids[i], x->id) == 0;
        if (!dup) {
            memcpy(ids[k], x->id, JOB_ID_LEN);
            ptrs[k] = ids[k];
            k++;
        }
    }
    pthread_mutex_unlock(&w->lock);
    struct poll_ctx p = {w, NULL, 0, 0};
    if (k > 0) {
        struct err e;
        err_clear(&e);
        PGconn *c = db_pool_acquire(w->pool, 1000, &e);
        if (c) {
            if (job_store_poll(c, ptrs, k, on_state, &p, &e) != 0)
                log_event(LOG_WARN, "waiting requests: cannot read job_logs", "error", e.message,
                          NULL);
            db_pool_release(w->pool, c);
        }
    }
    fire(w, p.finished, p.nfinished, false);
    for (size_t i = 0; i < p.nfinished; i++) {
        free(p.finished[i].id);
        free(p.finished[i].job_type);
        free(p.finished[i].result);
        free(p.finished[i].error);
    }
    free(p.finished);
    free(ids);
    free(ptrs);
}

static void *run(void *arg)
{
    struct job_waiters *w = arg;
    pthread_mutex_lock(&w->lock);
    while (!w->stop) {
        if (w->count == 0) {
            pthread_cond_wait(&w->cond, &w->lock);
            continue;
        }
        if (!w->poll_now) {
            long long wait = JOB_WAIT_POLL_MS;
            long long now = util_mono_ms();
            for (struct waiter *x = w->head; x; x = x->next)
                if (x->deadline - now < wait)
                    wait = x->deadline - now;
            if (wait > 0)
                util_cond_wait_ms(&w->cond, &w->lock, wait);
        }
        w->poll_now = false;
        if (w->stop)
            break;
        pthread_mutex_unlock(&w->lock);
        poll_once(w);
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

struct job_waiters *job_waiters_start(struct db_pool *pool)
{
    struct job_waiters *w = util_calloc(1, sizeof *w);
    w->pool = pool;
    pthread_mutex_init(&w->lock, NULL);
    util_cond_init(&w->cond);
    if (pthread_create(&w->thread, NULL, run, w) != 0)
        util_fatal("cannot start the waiter thread");
    return w;
}

void job_waiters_add(struct job_waiters *w, const char *id, enum job_status last_known,
                     long long deadline_mono_ms, job_wait_fn fn, void *ctx)
{
    struct waiter *x = util_calloc(1, sizeof *x);
    snprintf(x->id, sizeof x->id, "%s", id);
    x->last = last_known;
    x->deadline = deadline_mono_ms;
    x->fn = fn;
    x->ctx = ctx;
    pthread_mutex_lock(&w->lock);
    if (w->stop) {
        /* Shutting down: answer at once with what is known. */
        pthread_mutex_unlock(&w->lock);
        struct job_state s = {x->id, last_known, NULL, NULL, NULL};
        fn(ctx, &s, true);
        free(x);
        return;
    }
    x->next = w->head;
    w->head = x;
    w->count++;
    /* Look at once: the job may already be over. */
    w->poll_now = true;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

void job_waiters_notify(struct job_waiters *w)
{
    pthread_mutex_lock(&w->lock);
    w->poll_now = true;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

size_t job_waiters_count(struct job_waiters *w)
{
    pthread_mutex_lock(&w->lock);
    size_t n = w->count;
    pthread_mutex_unlock(&w->lock);
    return n;
}

void job_waiters_stop(struct job_waiters *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    fire(w, NULL, 0, true);
}

void job_waiters_free(struct job_waiters *w)
{
    if (!w)
        return;
    fire(w, NULL, 0, true);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
    free(w);
}
