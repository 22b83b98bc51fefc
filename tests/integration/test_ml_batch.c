/* Integration tests of ml_batch (the pull API of the Mercado Livre client) against the fake
 * API: each answer comes back once and requests start in order; 5xx are retried up to
 * max_attempts; the first 401 asks for one new token and every 401'd request is retried with
 * it, or fails with the refresh's error; cancellation and ml_batch_end abandon what is left
 * (err "interrupted") and give the in-flight slots back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobsd/ml_batch.h"
#include "jobsd/ml_client.h"
#include "jobsd/ml_path.h"
#include "testsupport.h"

#define SELLER        "2210987654"
#define CLIENT_ID     "5511223344556677"
#define CLIENT_SECRET "small-client-secret"
#define MAX_REQS      8

static struct fake_ml fake;

static struct ml_client *client(int concurrency, int max_attempts)
{
    struct ml_client_config cfg = {
        .base_url = fake.url,
        .max_rps = 100,
        .concurrency = concurrency,
        .timeout_ms = 10000,
        .client_id = CLIENT_ID,
        .client_secret = CLIENT_SECRET,
        .max_attempts = max_attempts,
        .backoff_base_ms = 10,
    };
    struct err e;
    err_clear(&e);
    struct ml_client *c = ml_client_new(&cfg, &e);
    assert_non_null(c);
    return c;
}

/* The seller's current token of that kind (access_token, refresh_token) into out. */
static void fake_token(const char *kind, char *out, size_t cap)
{
    json_t *t = fake_ml_get(&fake, "/__fake/sellers/" SELLER "/tokens");
    assert_non_null(t);
    const char *v = json_string_value(json_object_get(t, kind));
    assert_non_null(v);
    snprintf(out, cap, "%s", v);
    json_decref(t);
}

/* n visits requests for items of small.json served with 200 (MLB1100000007 is blocked). */
static void visits_requests(struct ml_request *reqs, size_t n)
{
    static const int items[MAX_REQS] = {1, 2, 3, 4, 5, 6, 8, 9};
    assert_true(n <= MAX_REQS);
    memset(reqs, 0, n * sizeof *reqs);
    for (size_t i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "MLB11000000%02d", items[i]);
        reqs[i].path_query = ml_path_item_visits(id, 5);
    }
}

/* n one-id multigets of the same items: endpoints other than visits answer a bad token with
 * 401 (the visits API answers 403 PolicyAgent, which the batch does not take for a 401). */
static void multiget_requests(struct ml_request *reqs, size_t n)
{
    static const int items[MAX_REQS] = {1, 2, 3, 4, 5, 6, 8, 9};
    assert_true(n <= MAX_REQS);
    memset(reqs, 0, n * sizeof *reqs);
    for (size_t i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "MLB11000000%02d", items[i]);
        const char *ids[] = {id};
        reqs[i].path_query = ml_path_items_multiget(ids, 1);
    }
}

static void free_requests(struct ml_request *reqs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ml_request_clear(&reqs[i]);
        free(reqs[i].path_query);
    }
}

static void set_faults(const char *rules)
{
    json_t *r = fake_ml_post(&fake, "/__fake/faults", rules);
    assert_non_null(r);
    json_decref(r);
}

static void test_each_answer_once_in_order(void **state)
{
    (void)state;
    struct ml_client *c = client(1, 0);
    char token[512];
    fake_token("access_token", token, sizeof token);
    struct ml_request reqs[6];
    visits_requests(reqs, 6);
    struct ml_batch *b = ml_batch_start(c, reqs, 6, token);
    size_t i, next = 0;
    enum ml_batch_event ev;
    while ((ev = ml_batch_next(b, NULL, NULL, &i)) == ML_BATCH_ANSWER) {
        /* One at a time: the answers come in the order the requests started. */
        assert_int_equal(i, next++);
        assert_int_equal(reqs[i].status, 200);
        assert_int_equal(reqs[i].attempts, 1);
        assert_false(err_is_set(&reqs[i].err));
        assert_non_null(reqs[i].body);
    }
    assert_int_equal(ev, ML_BATCH_DONE);
    assert_int_equal(next, 6);
    assert_int_equal(ml_batch_next(b, NULL, NULL, &i), ML_BATCH_DONE);
    ml_batch_end(b);
    struct ml_client_stats st;
    ml_client_stats(c, &st);
    assert_int_equal(st.requests, 6);
    assert_int_equal(st.status_2xx, 6);
    assert_int_equal(st.retries, 0);
    free_requests(reqs, 6);
    ml_client_free(c);
}

static void test_retries_then_gives_up(void **state)
{
    (void)state;
    struct ml_client *c = client(2, 3);
    char token[512];
    fake_token("access_token", token, sizeof token);
    set_faults("[{\"endpoint\": \"visits\", \"status\": 503, \"count\": 2}]");
    struct ml_request reqs[1];
    visits_requests(reqs, 1);
    struct ml_batch *b = ml_batch_start(c, reqs, 1, token);
    size_t i;
    assert_int_equal(ml_batch_next(b, NULL, NULL, &i), ML_BATCH_ANSWER);
    assert_int_equal(reqs[0].status, 200);
    assert_int_equal(reqs[0].attempts, 3);
    assert_int_equal(ml_batch_next(b, NULL, NULL, &i), ML_BATCH_DONE);
    ml_batch_end(b);
    /* Always 503: max_attempts, then ml_unavailable with the last status. */
    set_faults("[{\"endpoint\": \"visits\", \"status\": 503}]");
    b = ml_batch_start(c, reqs, 1, token);
    assert_int_equal(ml_batch_next(b, NULL, NULL, &i), ML_BATCH_ANSWER);
    assert_int_equal(reqs[0].status, 503);
    assert_int_equal(reqs[0].attempts, 3);
    assert_string_equal(reqs[0].err.code, "ml_unavailable");
    assert_int_equal(reqs[0].err.http_status, 503);
    ml_batch_end(b);
    assert_int_equal(fake_ml_delete(&fake, "/__fake/faults"), 200);
    struct ml_client_stats st;
    ml_client_stats(c, &st);
    assert_int_equal(st.retries, 4);
    assert_int_equal(st.status_5xx, 5);
    free_requests(reqs, 1);
    ml_client_free(c);
}

/* Runs a batch whose token the fake has expired; answers its token requests with a refresh
 * (refresh_err NULL) or with refresh_err. Returns how many token requests came. */
static int run_expired(struct ml_client *c, struct ml_request *reqs, size_t n,
                       const struct err *refresh_err)
{
    char old[512];
    fake_token("access_token", old, sizeof old);
    json_decref(fake_ml_post(&fake, "/__fake/sellers/" SELLER "/expire-access-token", NULL));
    struct ml_batch *b = ml_batch_start(c, reqs, n, old);
    int asked = 0;
    size_t i, answers = 0;
    enum ml_batch_event ev;
    while ((ev = ml_batch_next(b, NULL, NULL, &i)) != ML_BATCH_DONE) {
        if (ev == ML_BATCH_ANSWER) {
            answers++;
            continue;
        }
        assert_int_equal(ev, ML_BATCH_TOKEN);
        asked++;
        if (refresh_err) {
            ml_batch_set_token(b, old, refresh_err);
            continue;
        }
        char refresh[512];
        fake_token("refresh_token", refresh, sizeof refresh);
        struct ml_token tok;
        struct ml_error me;
        struct err e;
        err_clear(&e);
        assert_int_equal(ml_refresh_token(c, refresh, &tok, &me, &e), 0);
        ml_batch_set_token(b, tok.access_token, NULL);
    }
    assert_int_equal(answers, n);
    ml_batch_end(b);
    return asked;
}

static void test_401_one_new_token_one_retry(void **state)
{
    (void)state;
    struct ml_client *c = client(4, 0);
    struct ml_request reqs[MAX_REQS];
    multiget_requests(reqs, MAX_REQS);
    assert_int_equal(run_expired(c, reqs, MAX_REQS, NULL), 1);
    for (size_t i = 0; i < MAX_REQS; i++) {
        assert_int_equal(reqs[i].status, 200);
        assert_false(err_is_set(&reqs[i].err));
        /* The first four went out with the old token; the rest may have too. */
        assert_true(reqs[i].attempts == 1 || reqs[i].attempts == 2);
        if (i < 4)
            assert_int_equal(reqs[i].attempts, 2);
    }
    free_requests(reqs, MAX_REQS);
    ml_client_free(c);
}

static void test_401_fails_with_the_refresh_error(void **state)
{
    (void)state;
    struct ml_client *c = client(3, 0);
    struct ml_request reqs[3];
    multiget_requests(reqs, 3);
    struct err refresh_err;
    err_set(&refresh_err, 422, "reauth_required", "the seller must reconnect");
    assert_int_equal(run_expired(c, reqs, 3, &refresh_err), 1);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(reqs[i].status, 401);
        assert_int_equal(reqs[i].attempts, 1);
        assert_string_equal(reqs[i].err.code, "reauth_required");
    }
    free_requests(reqs, 3);
    /* Leave the fake with a working token for the next tests. */
    char refresh[512];
    fake_token("refresh_token", refresh, sizeof refresh);
    struct ml_token tok;
    struct ml_error me;
    struct err e;
    err_clear(&e);
    assert_int_equal(ml_refresh_token(c, refresh, &tok, &me, &e), 0);
    ml_client_free(c);
}

struct delayed_cancel {
    volatile int *flag;
    long long after_ms;
};

/* A stop flag for ml_batch_next, as a kind's would be. */
struct flag {
    const volatile int *v;
};

static bool flag_up(const void *ctx)
{
    const struct flag *f = ctx;
    return *f->v != 0;
}

static void *cancel_later(void *arg)
{
    struct delayed_cancel *d = arg;
    usleep((useconds_t)(d->after_ms * 1000));
    *d->flag = 1;
    return NULL;
}

/* The client's in-flight slots were all given back: a batch of 2 x concurrency slow requests
 * reaches `concurrency` in flight at the fake (a leaked slot lowers it, or blocks the batch
 * until a 10 s guard cancels it). */
static void assert_slots_free(struct ml_client *c, const char *token, int concurrency)
{
    long long deadline = t_now_ms() + 10000;
    while (fake_ml_stat(&fake, "in_flight") > 0 && t_now_ms() < deadline)
        usleep(20 * 1000);
    assert_int_equal(fake_ml_stat(&fake, "in_flight"), 0);
    set_faults("[{\"endpoint\": \"visits\", \"latency_ms\": 200}]");
    json_decref(fake_ml_post(&fake, "/__fake/reset-stats", NULL));
    volatile int guard = 0;
    struct flag guard_flag = {&guard};
    struct delayed_cancel d = {&guard, 10000};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, cancel_later, &d), 0);
    size_t n = 2 * (size_t)concurrency;
    struct ml_request reqs[MAX_REQS];
    visits_requests(reqs, n);
    struct ml_batch *b = ml_batch_start(c, reqs, n, token);
    size_t i;
    enum ml_batch_event ev;
    while ((ev = ml_batch_next(b, flag_up, &guard_flag, &i)) == ML_BATCH_ANSWER)
        assert_int_equal(reqs[i].status, 200);
    assert_int_equal(ev, ML_BATCH_DONE);
    ml_batch_end(b);
    free_requests(reqs, n);
    pthread_cancel(th);
    pthread_join(th, NULL);
    assert_int_equal(fake_ml_stat(&fake, "max_in_flight"), concurrency);
    assert_int_equal(fake_ml_delete(&fake, "/__fake/faults"), 200);
}

static size_t count_interrupted(const struct ml_request *reqs, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(reqs[i].err.code, "interrupted") == 0)
            k++;
    return k;
}

static void test_cancel_in_flight(void **state)
{
    (void)state;
    struct ml_client *c = client(2, 0);
    char token[512];
    fake_token("access_token", token, sizeof token);
    set_faults("[{\"endpoint\": \"visits\", \"latency_ms\": 2000}]");
    volatile int cancel = 0;
    struct flag cancel_flag = {&cancel};
    struct delayed_cancel d = {&cancel, 200};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, cancel_later, &d), 0);
    struct ml_request reqs[4];
    visits_requests(reqs, 4);
    struct ml_batch *b = ml_batch_start(c, reqs, 4, token);
    size_t i;
    assert_int_equal(ml_batch_next(b, flag_up, &cancel_flag, &i), ML_BATCH_CANCELLED);
    assert_int_equal(ml_batch_next(b, flag_up, &cancel_flag, &i), ML_BATCH_CANCELLED);
    ml_batch_end(b);
    pthread_join(th, NULL);
    assert_int_equal(count_interrupted(reqs, 4), 4);
    assert_int_equal(reqs[0].err.http_status, 503);
    free_requests(reqs, 4);
    assert_slots_free(c, token, 2);
    ml_client_free(c);
}

static void test_cancel_between_answers(void **state)
{
    (void)state;
    struct ml_client *c = client(2, 0);
    char token[512];
    fake_token("access_token", token, sizeof token);
    set_faults("[{\"endpoint\": \"visits\", \"latency_ms\": 300}]");
    volatile int cancel = 0;
    struct flag cancel_flag = {&cancel};
    struct ml_request reqs[6];
    visits_requests(reqs, 6);
    struct ml_batch *b = ml_batch_start(c, reqs, 6, token);
    size_t i, answered = 0;
    enum ml_batch_event ev;
    while ((ev = ml_batch_next(b, flag_up, &cancel_flag, &i)) == ML_BATCH_ANSWER) {
        answered++;
        cancel = 1;
    }
    assert_int_equal(ev, ML_BATCH_CANCELLED);
    ml_batch_end(b);
    /* What libcurl had already finished is still handed out; nothing new starts. */
    assert_true(answered >= 1 && answered <= 2);
    assert_int_equal(count_interrupted(reqs, 6), 6 - answered);
    free_requests(reqs, 6);
    assert_int_equal(fake_ml_delete(&fake, "/__fake/faults"), 200);
    assert_slots_free(c, token, 2);
    ml_client_free(c);
}

static void test_end_abandons(void **state)
{
    (void)state;
    struct ml_client *c = client(2, 0);
    char token[512];
    fake_token("access_token", token, sizeof token);
    /* The first request to reach the fake is slow: the other one started with it answers
     * while it is still in flight. */
    set_faults("[{\"endpoint\": \"visits\", \"latency_ms\": 3000, \"count\": 1}]");
    struct ml_request reqs[4];
    visits_requests(reqs, 4);
    struct ml_batch *b = ml_batch_start(c, reqs, 4, token);
    size_t i;
    assert_int_equal(ml_batch_next(b, NULL, NULL, &i), ML_BATCH_ANSWER);
    assert_true(i <= 1);
    ml_batch_end(b);
    assert_false(err_is_set(&reqs[i].err));
    assert_string_equal(reqs[1 - i].err.code, "interrupted");
    assert_int_equal(count_interrupted(reqs, 4), 3);
    free_requests(reqs, 4);
    assert_int_equal(fake_ml_delete(&fake, "/__fake/faults"), 200);
    assert_slots_free(c, token, 2);
    ml_client_free(c);
}

static int setup(void **state)
{
    (void)state;
    return fake_ml_start(&fake, "small.json", NULL) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    fake_ml_stop(&fake);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_answer_once_in_order),
        cmocka_unit_test(test_retries_then_gives_up),
        cmocka_unit_test(test_401_one_new_token_one_retry),
        cmocka_unit_test(test_401_fails_with_the_refresh_error),
        cmocka_unit_test(test_cancel_in_flight),
        cmocka_unit_test(test_cancel_between_answers),
        cmocka_unit_test(test_end_abandons),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
