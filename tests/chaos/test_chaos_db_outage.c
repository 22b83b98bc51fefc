/* Chaos: the database goes away while jobs run and requests arrive (SECURITY.md target 5).
 * A private PostgreSQL cluster (never the shared one: other test programs use it) is
 *  - stopped with pg_ctl -m fast, then started again on the same port,
 *  - stopped with pg_ctl -m immediate (a crash, recovery at start), then started again,
 *  - left up while every jobsd backend is killed with pg_terminate_backend,
 * each time while a rebuild is half-way through its writes (a trigger makes them slow).
 * Meanwhile a client thread keeps sending rebuilds, job reads, /readyz, /healthz and /metrics
 * (the group's setup starts it; its teardown stops it and judges everything it saw).
 * Asserted:
 *  - jobsd never crashes: it is running after every outage and exits 0 at SIGTERM;
 *  - every request gets an answer within DB_QUERY_TIMEOUT_MS + 5 s (+ its Prefer wait): no
 *    hang, no dropped connection, no 500; while the database is down, requests that need it
 *    answer 503 with Retry-After (database_unavailable), /readyz is 503, /healthz 200;
 *  - /readyz is 200 again within 10 s of the database accepting connections;
 *  - the rebuild interrupted by each outage completes (success, its window complete), and no
 *    job is left queued or running. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chaos.h"
#include "testdb.h"
#include "testfx.h"
#include "testgroup.h"
#include "testhttp.h"
#include "testpgc.h"
#include "testproc.h"
#include "testtime.h"

#define TENANT        "0d0d0d0d-0000-4000-8000-00000000000b"
#define EMPTY_TENANT  "0d0d0d0d-0000-4000-8000-0000000000e0" /* no listings: fast rebuilds */
#define QUERY_TIMEOUT 2000
#define BOUND_MS      (QUERY_TIMEOUT + 5000)

static struct pgcluster pg;
static struct testdb db;
static struct jobsd_proc proc;

/* ---------------------------------------------------------------- the client thread */

struct load {
    pthread_t thread;
    atomic_int stop;
    pthread_mutex_t lock;
    long long requests, answered_503, max_ms;
    int failures;
    char first_failure[1024];
    bool running; /* the thread was started (and not joined yet) */
};

static struct load load;

static void load_fail(const char *what, const struct th_response *r, long long ms)
{
    pthread_mutex_lock(&load.lock);
    if (load.failures++ == 0)
        snprintf(load.first_failure, sizeof load.first_failure,
                 "%s: status %d after %lld ms: %.300s", what, r ? r->status : 0, ms,
                 r && r->body ? r->body : "(no answer)");
    pthread_mutex_unlock(&load.lock);
}

/* A 503 as SPEC section 2 wants it: Retry-After and a JSON error naming the cause. */
static bool proper_503(const struct th_response *r)
{
    char *ra = th_header(r, "Retry-After");
    bool ok = ra && strtol(ra, NULL, 10) > 0 &&
              (strcmp(th_error_code(r), "database_unavailable") == 0 ||
               strcmp(th_error_code(r), "timeout") == 0);
    free(ra);
    return ok;
}

static void *load_main(void *arg)
{
    (void)arg;
    unsigned n = 0;
    while (!atomic_load(&load.stop)) {
        char req[1024];
        const char *what;
        int allowed[3] = {0, 0, 0};
        long long bound = BOUND_MS;
        switch (n++ % 5) {
        case 0: {
            char body[160];
            snprintf(body, sizeof body,
                     "{\"tenantId\": \"" EMPTY_TENANT "\", \"from\": \"2024-05-%02u\", "
                     "\"to\": \"2024-05-%02u\"}",
                     1 + n % 20, 2 + n % 20);
            snprintf(req, sizeof req,
                     "POST " CHAOS_REBUILD " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     "X-Internal-Key: " TEST_KEY "\r\nContent-Type: application/json\r\n"
                     "Prefer: wait=1\r\nContent-Length: %zu\r\n\r\n%s",
                     strlen(body), body);
            what = "POST rebuild";
            allowed[0] = 200, allowed[1] = 202, allowed[2] = 503;
            bound += 1000;
            break;
        }
        case 1:
            snprintf(req, sizeof req,
                     "GET /api/v1/jobs/00000000-0000-4000-8000-%012u HTTP/1.1\r\nHost: x\r\n"
                     "Connection: close\r\nX-Internal-Key: " TEST_KEY "\r\n\r\n",
                     n);
            what = "GET job";
            allowed[0] = 404, allowed[1] = 503;
            break;
        case 2:
            snprintf(req, sizeof req,
                     "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            what = "GET /readyz";
            allowed[0] = 200, allowed[1] = 503;
            break;
        case 3:
            snprintf(req, sizeof req,
                     "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     "X-Internal-Key: " TEST_KEY "\r\n\r\n");
            what = "GET /metrics";
            allowed[0] = 200, allowed[1] = 503;
            break;
        default:
            snprintf(req, sizeof req,
                     "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            what = "GET /healthz";
            allowed[0] = 200;
            break;
        }
        long long t0 = t_now_ms();
        struct th_response r;
        bool got = th_raw(proc.port, req, strlen(req), &r, bound + 10000);
        long long ms = t_now_ms() - t0;
        pthread_mutex_lock(&load.lock);
        load.requests++;
        if (ms > load.max_ms)
            load.max_ms = ms;
        pthread_mutex_unlock(&load.lock);
        if (!got || r.status == 0) {
            load_fail(what, NULL, ms);
            continue;
        }
        if (ms > bound)
            load_fail(what, &r, ms);
        if (r.status != allowed[0] && r.status != allowed[1] && r.status != allowed[2])
            load_fail(what, &r, ms);
        if (r.status == 503) {
            if (!proper_503(&r))
                load_fail(what, &r, ms);
            pthread_mutex_lock(&load.lock);
            load.answered_503++;
            pthread_mutex_unlock(&load.lock);
        }
        th_free(&r);
        t_sleep_ms(20); /* pacing: about 40 requests a second */
    }
    return NULL;
}

/* ---------------------------------------------------------------- helpers */

static int status_of(const char *method, const char *path, const char *headers, const char *body,
                     struct th_response *r)
{
    long long t0 = t_now_ms();
    if (!th_request(proc.port, method, path, headers, body, r))
        fail_msg("%s %s: no answer", method, path);
    long long ms = t_now_ms() - t0;
    if (ms > BOUND_MS)
        fail_msg("%s %s: answered after %lld ms", method, path, ms);
    return r->status;
}

static bool readyz_is(int want)
{
    struct th_response r;
    int st = status_of("GET", "/readyz", NULL, NULL, &r);
    th_free(&r);
    return st == want;
}

static bool ready(void *ctx)
{
    (void)ctx;
    return readyz_is(200);
}

/* While the database is down: the routes that need it answer 503 properly, /healthz 200. */
static void check_down_answers(void)
{
    struct th_response r;
    assert_int_equal(status_of("GET", "/readyz", NULL, NULL, &r), 503);
    assert_true(proper_503(&r));
    th_free(&r);
    long long t0 = t_now_ms();
    assert_true(chaos_post_rebuild(proc.port, TENANT, "2024-03-25", "2024-03-31", NULL, &r));
    if (r.status != 503 || !proper_503(&r))
        fail_msg("POST while the database is down: %d %s", r.status, r.body);
    assert_true(t_now_ms() - t0 <= BOUND_MS);
    th_free(&r);
    assert_int_equal(status_of("GET", "/api/v1/jobs/00000000-0000-4000-8000-000000000001",
                               "X-Internal-Key: " TEST_KEY "\r\n", NULL, &r),
                     503);
    assert_true(proper_503(&r));
    th_free(&r);
    assert_int_equal(status_of("GET", "/healthz", NULL, NULL, &r), 200);
    th_free(&r);
    assert_true(jobsd_running(&proc));
}

static bool writing(void *ctx)
{
    (void)ctx;
    return tdb_int(db.conn, "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                            "current_database() AND application_name = 'jobsd' AND "
                            "wait_event = 'PgSleep'") > 0;
}

static bool final(void *ctx)
{
    return chaos_job_final(db.conn, ctx);
}

static bool load_saw_503s(void *ctx)
{
    long long since = *(long long *)ctx;
    pthread_mutex_lock(&load.lock);
    long long n = load.answered_503;
    pthread_mutex_unlock(&load.lock);
    return n >= since + 5;
}

/* Queues a rebuild of from..to and waits until it is half-way through its writes. */
static void start_interruptible_job(const char *from, const char *to, char id[40])
{
    struct th_response r;
    assert_true(chaos_post_rebuild(proc.port, TENANT, from, to, "Prefer: respond-async\r\n", &r));
    assert_int_equal(r.status, 202);
    snprintf(id, 40, "%s", json_string_value(json_object_get(r.json, "jobLogId")));
    th_free(&r);
    assert_true(t_wait_until(writing, NULL, 15000));
}

/* After the database came back: ready within 10 s, the interrupted job completed. */
static void check_recovery(const char *id, const char *from, const char *to, long long back_at)
{
    assert_true(t_wait_until(ready, NULL, 10000));
    long long took = t_now_ms() - back_at;
    print_message("ready again %lld ms after the database came back\n", took);
    assert_true(took <= 10000);
    assert_true(testdb_reconnect(&db));
    char job[40]; /* t_wait_until's context is not const */
    snprintf(job, sizeof job, "%s", id);
    if (!t_wait_until(final, job, 30000))
        fail_msg("job %s not finished 30 s after the database came back", id);
    char *row = tdb_value(db.conn,
                          "SELECT status || ' after ' || attempts || ' attempt(s): ' || "
                          "coalesce(metadata->'error'->>'code', '') || ' ' || "
                          "coalesce(error_message, '') FROM job_logs WHERE id = '%s'",
                          id);
    char shown[512];
    snprintf(shown, sizeof shown, "%s", row);
    free(row);
    if (strncmp(shown, "success ", 8) != 0)
        fail_msg("the interrupted job %s did not complete: %s", id, shown);
    char *now = chaos_window_digest(db.conn, TENANT, from, to);
    char *want = chaos_expected_digest(db.conn, TENANT, from, to);
    bool same = strcmp(now, want) == 0;
    free(now);
    free(want);
    if (!same)
        fail_msg("job %s succeeded but its window %s..%s is not complete", id, from, to);
}

static void outage(const char *mode, const char *from, const char *to)
{
    char id[40];
    start_interruptible_job(from, to, id);
    pthread_mutex_lock(&load.lock);
    long long before = load.answered_503;
    pthread_mutex_unlock(&load.lock);
    assert_true(pgc_stop(&pg, mode));
    check_down_answers();
    /* Let the client thread run into the outage too. */
    assert_true(t_wait_until(load_saw_503s, &before, 10000));
    assert_true(pgc_resume(&pg));
    long long back = t_now_ms();
    check_recovery(id, from, to, back);
}

static bool nothing_pending(void *ctx)
{
    (void)ctx;
    return tdb_int(db.conn,
                   "SELECT count(*) FROM job_logs WHERE status IN ('queued', 'running')") == 0;
}

/* ---------------------------------------------------------------- the group */

/* The private cluster, jobsd, and the client thread running against a ready jobsd. */
static int setup(void **state)
{
    (void)state;
    if (!pgc_start(&pg))
        return -1;
    testdb_create_at(&db, pg.url, "chaos_outage");
    chaos_seed(db.conn, TENANT, 20, "2024-01-01", "2024-03-31");
    chaos_prefill_stale(db.conn, TENANT, "2024-01-01", "2024-03-31");
    fx_tenant(db.conn, EMPTY_TENANT);
    chaos_slow_writes(db.conn, "0.002");
    char timeout[64];
    snprintf(timeout, sizeof timeout, "DB_QUERY_TIMEOUT_MS=%d", QUERY_TIMEOUT);
    const char *env[] = {timeout, "SYNC_WAIT_SECONDS=5", "JOB_WORKERS=2", NULL};
    if (!jobsd_start(&proc, db.url, env))
        return -1;
    pthread_mutex_init(&load.lock, NULL);
    if (pthread_create(&load.thread, NULL, load_main, NULL) != 0)
        return -1;
    load.running = true;
    if (!t_wait_until(ready, NULL, 10000)) {
        print_error("jobsd is not ready 10 s after its start\n");
        return -1;
    }
    return 0;
}

/* Once every outage ran: the client thread's verdict over the whole group (every request
 * answered properly, 503s seen), no job left pending, every rebuild of the interrupted tenant
 * successful, and a clean exit. A failed check fails the program (tgroup_run); the clean-up
 * happens whatever the checks found. */
static int teardown(void **state)
{
    (void)state;
    bool ok = true;
    if (load.running) {
        atomic_store(&load.stop, 1);
        pthread_join(load.thread, NULL);
        load.running = false;
        print_message("client: %lld requests, %lld answered 503, slowest %lld ms\n", load.requests,
                      load.answered_503, load.max_ms);
        if (load.failures) {
            print_error("%d requests were not answered properly; the first: %s\n", load.failures,
                        load.first_failure);
            ok = false;
        }
        if (load.answered_503 < 10) {
            print_error("the client saw %lld 503 answers, want at least 10\n", load.answered_503);
            ok = false;
        }
        pthread_mutex_destroy(&load.lock);
    }
    if (proc.pid > 0 && db.conn) {
        if (!t_wait_until(nothing_pending, NULL, 30000)) {
            print_error("jobs still queued or running 30 s after the last outage\n");
            ok = false;
        }
        /* The interrupted jobs (and the client's) all completed. */
        long long not_ok =
            tdb_int(db.conn, "SELECT count(*) FROM job_logs WHERE tenant_id = '" TENANT
                             "' AND status <> 'success'");
        if (not_ok != 0) {
            print_error("%lld rebuild(s) of the interrupted tenant did not succeed\n", not_ok);
            ok = false;
        }
        int code = jobsd_stop(&proc, 20000);
        if (code != 0) {
            print_error("jobsd exited with %d at SIGTERM, want 0\n", code);
            ok = false;
        }
    } else {
        print_error("jobsd is not running (it did not start, or it exited during the tests)\n");
        ok = false;
    }
    if (proc.pid > 0)
        jobsd_kill9(&proc);
    if (db.conn)
        PQfinish(db.conn);
    pgc_destroy(&pg);
    return ok ? 0 : -1;
}

/* ---------------------------------------------------------------- tests */

static void test_postgres_fast_stop(void **state)
{
    (void)state;
    outage("fast", "2024-01-01", "2024-01-20");
}

static void test_postgres_immediate_stop(void **state)
{
    (void)state;
    outage("immediate", "2024-02-01", "2024-02-20");
}

static void test_backends_terminated(void **state)
{
    (void)state;
    const char *from = "2024-03-01", *to = "2024-03-20";
    char id[40];
    start_interruptible_job(from, to, id);
    long long killed =
        tdb_int(db.conn, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                         "WHERE datname = current_database() AND application_name = "
                         "'jobsd'");
    print_message("terminated %lld jobsd backends\n", killed);
    assert_true(killed >= 2); /* at least the job's and the lease keeper's */
    assert_true(jobsd_running(&proc));
    check_recovery(id, from, to, t_now_ms());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_postgres_fast_stop),
        cmocka_unit_test(test_postgres_immediate_stop),
        cmocka_unit_test(test_backends_terminated),
    };
    return tgroup_run("chaos_db_outage", tests, setup, teardown);
}
