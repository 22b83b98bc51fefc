/* ml_batch: see ml_batch.h. One curl multi handle per batch, driven only from ml_batch_next
 * in the caller's thread: it starts what the client's limits allow (in order), performs,
 * and reads libcurl's finished transfers one at a time, handing each final answer back
 * before reading the next; it waits (curl_multi_poll) only when nothing finished. */
#include "jobsd/ml_batch.h"
#include "jobsd/util.h"
#include "ml_client_private.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POLL_MAX_MS 100

enum state {
    PENDING, /* waiting to start (again), not before not_before */
    ACTIVE,  /* on the multi handle */
    TOKEN,   /* answered 401: waiting for ml_batch_set_token; its transfer is kept */
    DONE,    /* final answer given back */
};

struct job {
    enum state state;
    long long not_before;
    bool retried_401;
    struct ml_transfer t;
};

struct ml_batch {
    struct ml_client *c;
    struct ml_request *reqs;
    struct job *jobs;
    size_t n;
    CURLM *multi;
    char token[512];
    size_t done;       /* requests given back with their final answer */
    int active;        /* transfers on the multi handle */
    size_t scan_from;  /* requests start in order: nothing before this one is waiting */
    long long wake;    /* when a waiting request may start (mono ms) */
    bool reading;      /* handing out what the last curl_multi_perform finished */
    bool finished_any; /* ...and something did: start the next at once, no poll */
    bool token_asked;  /* the batch asked for a new token (once per batch) */
    bool token_given;  /* ...and ml_batch_set_token answered */
    size_t token_job;  /* the request whose 401 asked (state TOKEN until answered) */
    struct err refresh_err;
    bool cancelled;
};

struct ml_batch *ml_batch_start(struct ml_client *c, struct ml_request *reqs, size_t n,
                                const char *token)
{
    struct ml_batch *b = util_calloc(1, sizeof *b);
    b->c = c;
    b->reqs = reqs;
    b->n = n;
    b->jobs = util_calloc(n ? n : 1, sizeof *b->jobs);
    b->multi = curl_multi_init();
    if (!b->multi)
        util_fatal("curl_multi_init failed");
    snprintf(b->token, sizeof b->token, "%s", token ? token : "");
    for (size_t i = 0; i < n; i++) {
        reqs[i].status = 0;
        reqs[i].attempts = 0;
        err_clear(&reqs[i].err);
        ml_request_clear(&reqs[i]);
    }
    return b;
}

/* Starts what the limits allow, in order; sets b->wake for what has to wait. */
static void start_some(struct ml_batch *b)
{
    long long now = util_mono_ms();
    b->wake = now + POLL_MAX_MS;
    for (size_t i = b->scan_from; i < b->n && b->active < b->c->concurrency; i++) {
        struct job *j = &b->jobs[i];
        if (j->state != PENDING)
            continue;
        if (j->not_before > now) {
            if (j->not_before < b->wake)
                b->wake = j->not_before;
            continue;
        }
        long long wait;
        if (!ml_client_admit(b->c, now, &wait)) {
            if (wait > 0 && now + wait < b->wake)
                b->wake = now + wait;
            break;
        }
        ml_client_transfer_open(b->c, &j->t, b->reqs[i].path_query, b->token, NULL);
        b->reqs[i].attempts++;
        curl_multi_add_handle(b->multi, j->t.easy);
        j->state = ACTIVE;
        b->active++;
    }
    while (b->scan_from < b->n && b->jobs[b->scan_from].state == DONE)
        b->scan_from++;
}

/* Settles a transfer that ended: again = start it once more (after not_before), else its
 * result goes into the request, which is final. Counts the attempt either way. */
static void settle(struct ml_batch *b, size_t i, CURLcode res, long status, bool again)
{
    struct job *j = &b->jobs[i];
    struct ml_request *r = &b->reqs[i];
    ml_client_count(b->c, status, res != CURLE_OK, again);
    if (again) {
        ml_client_transfer_close(&j->t);
        j->state = PENDING;
        if (i < b->scan_from)
            b->scan_from = i;
        return;
    }
    if (res == CURLE_OK && !j->t.too_big) {
        r->len = j->t.body.len;
        r->body = buf_take(&j->t.body);
    } else {
        ml_client_fail_final(r, status, res, j->t.too_big, j->t.errbuf);
    }
    if (res == CURLE_OK && !j->t.too_big && (status == 429 || status >= 500))
        ml_client_fail_final(r, status, res, false, j->t.errbuf);
    ml_client_transfer_close(&j->t);
    j->state = DONE;
    b->done++;
}

/* The outcome of the transfer of request i that libcurl finished. Returns ML_BATCH_ANSWER
 * (final), ML_BATCH_TOKEN (the batch's first 401: a token is needed) or -1 (retried). */
static int transfer_done(struct ml_batch *b, size_t i, CURLcode res)
{
    struct job *j = &b->jobs[i];
    struct ml_request *r = &b->reqs[i];
    long status = 0;
    curl_easy_getinfo(j->t.easy, CURLINFO_RESPONSE_CODE, &status);
    curl_off_t retry_after = 0;
    curl_easy_getinfo(j->t.easy, CURLINFO_RETRY_AFTER, &retry_after);
    curl_multi_remove_handle(b->multi, j->t.easy);
    ml_client_release(b->c);
    b->active--;
    r->status = res == CURLE_OK ? status : 0;
    bool again = false;
    if (res == CURLE_OK && status == 401 && !j->retried_401) {
        /* One new token per batch, then one retry per request. */
        j->retried_401 = true;
        if (!b->token_asked) {
            b->token_asked = true;
            b->token_job = i;
            j->state = TOKEN;
            return ML_BATCH_TOKEN;
        }
        again = !err_is_set(&b->refresh_err);
        if (!again)
            r->err = b->refresh_err;
    } else if (ml_client_retryable(status, res, j->t.too_big) && r->attempts < b->c->max_attempts) {
        again = true;
        j->not_before =
            util_mono_ms() + ml_client_backoff_ms(b->c, r->attempts, (long long)retry_after);
    }
    settle(b, i, res, status, again);
    return again ? -1 : ML_BATCH_ANSWER;
}

/* Reads libcurl's next finished transfer: an event for the caller, or -1 when it was
 * retried, or -2 when nothing is left to read. */
static int read_one(struct ml_batch *b, size_t *index)
{
    int left;
    CURLMsg *msg = curl_multi_info_read(b->multi, &left);
    if (!msg)
        return -2;
    b->finished_any = true;
    if (msg->msg != CURLMSG_DONE)
        return -1;
    struct ml_transfer *t = NULL;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
    struct job *j = (struct job *)(void *)((char *)t - offsetof(struct job, t));
    *index = (size_t)(j - b->jobs);
    return transfer_done(b, *index, msg->data.result);
}

/* Waits for network activity, or until something may start, at most POLL_MAX_MS. */
static void wait_some(struct ml_batch *b)
{
    long long timeout = b->wake - util_mono_ms();
    if (timeout < 1)
        timeout = 1;
    if (timeout > POLL_MAX_MS)
        timeout = POLL_MAX_MS;
    curl_multi_poll(b->multi, NULL, 0, (int)timeout, NULL);
}

/* Stops every unfinished request: transfers removed, slots given back, err "interrupted". */
static void abandon(struct ml_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        struct job *j = &b->jobs[i];
        if (j->state == ACTIVE) {
            curl_multi_remove_handle(b->multi, j->t.easy);
            ml_client_release(b->c);
        }
        ml_client_transfer_close(&j->t);
        if (j->state != DONE)
            err_set(&b->reqs[i].err, 503, "interrupted", "the sync was cancelled");
    }
    b->active = 0;
    b->cancelled = true;
}

enum ml_batch_event ml_batch_next(struct ml_batch *b, ml_batch_stop_fn stop, const void *stop_ctx,
                                  size_t *index)
{
    if (b->cancelled)
        return ML_BATCH_CANCELLED;
    if (b->token_asked && !b->token_given)
        return ML_BATCH_TOKEN;
    if (b->token_asked && b->jobs[b->token_job].state == TOKEN) {
        /* The request whose 401 asked for the token: retried with it, or failed. */
        size_t i = b->token_job;
        bool again = !err_is_set(&b->refresh_err);
        if (!again)
            b->reqs[i].err = b->refresh_err;
        settle(b, i, CURLE_OK, 401, again);
        if (!again) {
            *index = i;
            return ML_BATCH_ANSWER;
        }
    }
    for (;;) {
        if (b->reading) {
            int ev = read_one(b, index);
            if (ev >= 0)
                return (enum ml_batch_event)ev;
            if (ev == -1)
                continue;
            b->reading = false;
            if (b->done >= b->n)
                return ML_BATCH_DONE;
            if (!b->finished_any)
                wait_some(b);
        }
        if (b->done >= b->n)
            return ML_BATCH_DONE;
        if (stop && stop(stop_ctx)) {
            abandon(b);
            return ML_BATCH_CANCELLED;
        }
        start_some(b);
        int running = 0;
        curl_multi_perform(b->multi, &running);
        b->reading = true;
        b->finished_any = false;
    }
}

void ml_batch_set_token(struct ml_batch *b, const char *token, const struct err *refresh_err)
{
    if (token && token != b->token) {
        util_wipe(b->token, sizeof b->token);
        snprintf(b->token, sizeof b->token, "%s", token);
    }
    if (refresh_err)
        b->refresh_err = *refresh_err;
    b->token_given = true;
}

void ml_batch_end(struct ml_batch *b)
{
    if (!b)
        return;
    if (!b->cancelled && b->done < b->n)
        abandon(b);
    curl_multi_cleanup(b->multi);
    util_wipe(b->token, sizeof b->token);
    free(b->jobs);
    free(b);
}
