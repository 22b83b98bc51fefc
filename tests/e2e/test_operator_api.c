/* End-to-end tests of the operator API (issue 21) against a real jobsd: who may call it
 * (the internal key or an operator JWT; a tenant's JWT is 403, no or wrong credentials 401,
 * on every operator route), and the two actions: cancel (a queued job ends cancelled and
 * never runs; a finished one is 409 job_finished) and retry (409 job_active while the job is
 * queued or running; then a new job with the same request, linked by retry_of, that runs and
 * succeeds), each recorded in job_logs' metadata.
 *
 * Jobs are held deterministically with one worker and the tenant's rebuild advisory lock held
 * from the test: the first job runs and waits on the lock, the second stays queued. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobsd/jwt.h"
#include "testdb.h"
#include "testfx.h"
#include "testhttp.h"
#include "testproc.h"
#include "testtime.h"

#define SECRET     "e2e-operator-secret-0123456789abcdef-012345"
#define TENANT     "cccccccc-3333-4000-8000-000000000003"
#define STALE      "dddddddd-4444-4000-8000-000000000004"
#define PATH       "/api/v1/jobs/rebuild-daily-metrics"
#define LOCK_SQL   "SELECT pg_advisory_lock(hashtextextended('jobsd:metrics:" TENANT "', 0))"
#define UNLOCK_SQL "SELECT pg_advisory_unlock(hashtextextended('jobsd:metrics:" TENANT "', 0))"

static struct testdb db;
static struct jobsd_proc proc;
static PGconn *locker;
static char tenant_token[2048], operator_token[2048];
static char listing[64];

static void mint(const char *tenant, char *out, size_t cap)
{
    long long now = (long long)time(NULL);
    size_t n = jwt_sign((const unsigned char *)SECRET, strlen(SECRET), tenant, NULL, now, now + 600,
                        NULL, NULL, out, cap);
    assert_true(n > 0);
}

static int setup(void **state)
{
    (void)state;
    testdb_create(&db, "operator");
    fx_tenant(db.conn, TENANT);
    fx_tenant(db.conn, STALE);
    snprintf(listing, sizeof listing, "%s", fx_listing(db.conn, TENANT, "MLB1", "active"));
    locker = PQconnectdb(db.url);
    if (PQstatus(locker) != CONNECTION_OK)
        return -1;
    const char *env[] = {"JWT_SECRET=" SECRET, "JOB_WORKERS=1", "DB_QUERY_TIMEOUT_MS=5000",
                         "JOB_LEASE_SECONDS=3", NULL};
    if (!jobsd_start(&proc, db.url, env))
        return -1;
    mint(TENANT, tenant_token, sizeof tenant_token);
    mint(NULL, operator_token, sizeof operator_token);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int rc = jobsd_stop(&proc, 20000);
    PQfinish(locker);
    testdb_drop(&db);
    return rc == 0 ? 0 : -1;
}

/* A request with the given credential header (may be NULL); returns the status. */
static int call(const char *method, const char *path, const char *cred, struct th_response *r)
{
    char h[2600] = "";
    if (cred)
        snprintf(h, sizeof h, "%s\r\n", cred);
    memset(r, 0, sizeof *r);
    assert_true(th_request(proc.port, method, path, h, NULL, r));
    return r->status;
}

static void expect(const char *method, const char *path, const char *cred, int status,
                   const char *code)
{
    struct th_response r;
    int got = call(method, path, cred, &r);
    if (got != status || (code && strcmp(th_error_code(&r), code) != 0))
        fail_msg("%s %s with %.30s: %d %s, expected %d %s", method, path, cred ? cred : "nothing",
                 got, r.body ? r.body : "", status, code ? code : "");
    th_free(&r);
}

static const char *bearer(const char *token)
{
    static char h[2200];
    snprintf(h, sizeof h, "Authorization: Bearer %s", token);
    return h;
}

static void test_who_may_call(void **state)
{
    (void)state;
    static const char *const routes[][2] = {
        {"GET", "/api/v1/operator/queue"},
        {"GET", "/api/v1/operator/jobs"},
        {"GET", "/api/v1/operator/jobs/00000000-0000-4000-8000-000000000000"},
        {"GET", "/api/v1/operator/trends?days=30"},
        {"GET", "/api/v1/operator/fleet"},
        {"POST", "/api/v1/jobs/00000000-0000-4000-8000-000000000000/retry"},
        {"POST", "/api/v1/jobs/00000000-0000-4000-8000-000000000000/cancel"},
    };
    char tampered[2048];
    snprintf(tampered, sizeof tampered, "%s", operator_token);
    tampered[strlen(tampered) - 2] ^= 1;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const char *m = routes[i][0], *p = routes[i][1];
        expect(m, p, NULL, 401, "unauthorized");
        expect(m, p, "X-Internal-Key: wrong-key", 401, "unauthorized");
        expect(m, p, "Authorization: Bearer not-a-jwt", 401, "unauthorized");
        expect(m, p, bearer(tampered), 401, "unauthorized");
        expect(m, p, bearer(tenant_token), 403, "forbidden");
        int ok = strcmp(m, "GET") == 0 && !strstr(p, "/jobs/0") ? 200 : 404;
        expect(m, p, bearer(operator_token), ok, ok == 404 ? "job_not_found" : NULL);
        expect(m, p, "X-Internal-Key: " TEST_KEY, ok, ok == 404 ? "job_not_found" : NULL);
    }
    /* An operator token carries no tenant: a tenant's routes refuse it. */
    expect("GET", "/api/v1/jobs/status", bearer(operator_token), 403, "forbidden");
}

static char *submit(const char *from, const char *to)
{
    char body[256];
    snprintf(body, sizeof body, "{\"tenantId\": \"%s\", \"from\": \"%s\", \"to\": \"%s\"}", TENANT,
             from, to);
    struct th_response r;
    assert_true(th_post_job(proc.port, PATH, TEST_KEY, body, "Prefer: respond-async\r\n", &r));
    assert_int_equal(r.status, 202);
    char *id = strdup(json_string_value(json_object_get(r.json, "jobLogId")));
    th_free(&r);
    return id;
}

struct status_is {
    const char *id;
    const char *status;
};

static bool has_status(void *ctx)
{
    struct status_is *s = ctx;
    return tdb_int(db.conn, "SELECT count(*) FROM job_logs WHERE id = '%s' AND status = '%s'",
                   s->id, s->status) == 1;
}

static void wait_status(const char *id, const char *status)
{
    struct status_is s = {id, status};
    if (!t_wait_until(has_status, &s, 60000))
        fail_msg("job %s never reached %s", id, status);
}

static void check_reads(const char *done, const char *cancelled, const char *retry);

static void test_cancel_and_retry(void **state)
{
    (void)state;
    tdb_exec(locker, LOCK_SQL);
    char *running = submit("2024-01-01", "2024-01-31");
    wait_status(running, "running");
    char *queued = submit("2024-02-01", "2024-02-29");
    char path[160];
    /* Retry of a job still queued or running: 409 job_active. */
    snprintf(path, sizeof path, "/api/v1/jobs/%s/retry", running);
    expect("POST", path, bearer(operator_token), 409, "job_active");
    snprintf(path, sizeof path, "/api/v1/jobs/%s/retry", queued);
    expect("POST", path, "X-Internal-Key: " TEST_KEY, 409, "job_active");
    /* Cancel of the queued job: 200, it ends cancelled and never runs. */
    snprintf(path, sizeof path, "/api/v1/jobs/%s/cancel", queued);
    struct th_response r;
    assert_int_equal(call("POST", path, bearer(operator_token), &r), 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "cancelled");
    assert_string_equal(json_string_value(json_object_get(r.json, "jobLogId")), queued);
    th_free(&r);
    tdb_exec(locker, UNLOCK_SQL);
    wait_status(running, "success");
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM job_logs WHERE id = '%s' AND status = "
                             "'cancelled' AND started_at IS NULL AND attempts = 0 AND "
                             "metadata->>'cancelledBy' = 'operator' AND metadata ? 'cancelledAt'",
                             queued),
                     1);
    /* Cancel of a finished job: 409 job_finished (the cancelled one too). */
    expect("POST", path, "X-Internal-Key: " TEST_KEY, 409, "job_finished");
    snprintf(path, sizeof path, "/api/v1/jobs/%s/cancel", running);
    expect("POST", path, bearer(operator_token), 409, "job_finished");
    /* Retry of the finished job: a new job, same request, linked; it runs and succeeds. */
    snprintf(path, sizeof path, "/api/v1/jobs/%s/retry", running);
    assert_int_equal(call("POST", path, "X-Internal-Key: " TEST_KEY, &r), 202);
    assert_string_equal(json_string_value(json_object_get(r.json, "retryOf")), running);
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "queued");
    char *retry = strdup(json_string_value(json_object_get(r.json, "jobLogId")));
    th_free(&r);
    assert_string_not_equal(retry, running);
    wait_status(retry, "success");
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM job_logs n JOIN job_logs o ON o.id = n.retry_of "
                             "WHERE n.id = '%s' AND o.id = '%s' AND n.job_type = o.job_type AND "
                             "n.metadata->'request' = o.metadata->'request' AND "
                             "n.metadata->>'retriedBy' = 'internal-key'",
                             retry, running),
                     1);
    check_reads(running, queued, retry);
    /* The cancelled job still never ran. */
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM job_logs WHERE id = '%s' AND "
                             "status = 'cancelled' AND started_at IS NULL",
                             queued),
                     1);
    free(retry);
    free(running);
    free(queued);
}

static json_t *get_json(const char *path, struct th_response *r)
{
    if (call("GET", path, bearer(operator_token), r) != 200)
        fail_msg("GET %s: %d %s", path, r->status, r->body ? r->body : "");
    return r->json;
}

/* The fleet: the test's tenant is fresh on the rebuild (its retry just succeeded, the last
 * job); a second active tenant with no job at all is stale and listed first. */
static void check_fleet(const char *last_job)
{
    struct th_response r;
    json_t *tenants = json_object_get(get_json("/api/v1/operator/fleet", &r), "tenants");
    assert_int_equal(json_array_size(tenants), 2);
    json_t *first = json_array_get(tenants, 0), *second = json_array_get(tenants, 1);
    assert_string_equal(json_string_value(json_object_get(first, "tenantId")), STALE);
    assert_true(json_is_true(json_object_get(first, "stale")));
    assert_string_equal(json_string_value(json_object_get(second, "tenantId")), TENANT);
    json_t *rebuild = json_object_get(json_object_get(second, "types"), "metrics_aggregation");
    assert_true(json_is_false(json_object_get(rebuild, "stale")));
    assert_string_equal(json_string_value(json_object_get(rebuild, "lastStatus")), "success");
    assert_string_equal(json_string_value(json_object_get(rebuild, "lastJobId")), last_job);
    th_free(&r);
}

/* The list pages through every job once (limit 1), filters by status; the detail links a
 * retry both ways with its timeline; the trends count today's outcomes. */
static void check_reads(const char *done, const char *cancelled, const char *retry)
{
    struct th_response r;
    char path[256] = "/api/v1/operator/jobs?limit=1";
    long long total = tdb_int(db.conn, "SELECT count(*) FROM job_logs"), seen = 0;
    for (int guard = 0; guard < 100; guard++) {
        json_t *body = get_json(path, &r);
        seen += (long long)json_array_size(json_object_get(body, "jobs"));
        const char *next = json_string_value(json_object_get(body, "nextCursor"));
        if (next)
            snprintf(path, sizeof path, "/api/v1/operator/jobs?limit=1&before=%s", next);
        th_free(&r);
        if (!next)
            break;
    }
    assert_int_equal(seen, total);
    json_t *body = get_json("/api/v1/operator/jobs?status=cancelled&tenantId=" TENANT, &r);
    json_t *jobs = json_object_get(body, "jobs");
    assert_int_equal(json_array_size(jobs), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(jobs, 0), "id")),
                        cancelled);
    th_free(&r);
    expect("GET", "/api/v1/operator/jobs?before=garbage", bearer(operator_token), 400,
           "invalid_field");
    expect("GET", "/api/v1/operator/jobs?colour=red", bearer(operator_token), 400, "unknown_field");
    snprintf(path, sizeof path, "/api/v1/operator/jobs/%s", done);
    json_t *job = json_object_get(get_json(path, &r), "job");
    assert_string_equal(json_string_value(json_array_get(json_object_get(job, "retriedBy"), 0)),
                        retry);
    json_t *tl = json_object_get(job, "timeline");
    const char *want[] = {"queued", "started", "finished", "retried"};
    assert_int_equal(json_array_size(tl), 4);
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(tl, i), "event")),
                            want[i]);
    th_free(&r);
    snprintf(path, sizeof path, "/api/v1/operator/jobs/%s", retry);
    job = json_object_get(get_json(path, &r), "job");
    assert_string_equal(json_string_value(json_object_get(job, "retryOf")), done);
    th_free(&r);
    json_t *days =
        json_object_get(json_object_get(get_json("/api/v1/operator/trends?days=30", &r), "types"),
                        "metrics_aggregation");
    assert_int_equal(json_array_size(days), 30);
    json_t *today = json_array_get(days, 29);
    assert_int_equal(json_integer_value(json_object_get(today, "success")), 2);
    assert_int_equal(json_integer_value(json_object_get(today, "cancelled")), 1);
    assert_true(json_is_integer(json_object_get(today, "p95Ms")));
    assert_true(json_is_null(json_object_get(json_array_get(days, 0), "p50Ms")));
    th_free(&r);
    check_fleet(retry);
}

static void test_queue(void **state)
{
    (void)state;
    struct th_response r;
    assert_int_equal(call("GET", "/api/v1/operator/queue", bearer(operator_token), &r), 200);
    json_t *q = json_object_get(r.json, "queued"), *run = json_object_get(r.json, "running");
    assert_true(json_is_integer(json_object_get(q, "metrics_aggregation")));
    assert_true(json_is_integer(json_object_get(run, "mercadolivre_sync")));
    th_free(&r);
}

/* `jobsd token --operator` mints a token the operator routes accept and the tenant routes
 * refuse; --operator with --tenant is a usage error. */
static void test_cli_token(void **state)
{
    (void)state;
    const char *env[] = {"JWT_SECRET=" SECRET, NULL};
    const char *argv[] = {"token", "--operator", "--ttl", "600", NULL};
    char *out = NULL, *err = NULL;
    assert_int_equal(jobsd_run(argv, env, &out, &err), 0);
    assert_non_null(out);
    out[strcspn(out, "\n")] = '\0';
    expect("GET", "/api/v1/operator/queue", bearer(out), 200, NULL);
    expect("GET", "/api/v1/jobs/status", bearer(out), 403, "forbidden");
    free(out);
    free(err);
    const char *both[] = {"token", "--operator", "--tenant", TENANT, NULL};
    assert_int_equal(jobsd_run(both, env, &out, &err), 2);
    free(out);
    free(err);
    /* --tenant still mints a tenant's token: 403 on the operator routes. */
    const char *tenant[] = {"token", "--tenant", TENANT, NULL};
    assert_int_equal(jobsd_run(tenant, env, &out, &err), 0);
    out[strcspn(out, "\n")] = '\0';
    expect("GET", "/api/v1/operator/queue", bearer(out), 403, "forbidden");
    free(out);
    free(err);
}

/* Everything the rebuild writes for the tenant, as one hash. */
static char *metrics_hash(void)
{
    return tdb_value(db.conn,
                     "SELECT coalesce(md5(string_agg(m::text, '|' ORDER BY m::text)), "
                     "'none') FROM listing_metrics_daily m WHERE tenant_id = '" TENANT "'");
}

/* A running rebuild cancelled: 202 cancelling, it ends cancelled, its window exactly as
 * before (its transaction rolled back); its retry then runs and does change the window. */
static void test_cancel_running(void **state)
{
    (void)state;
    tdb_exec(locker, LOCK_SQL);
    const char *o = fx_order(db.conn, TENANT, 4242, "paid", "2024-03-10 12:00:00-03");
    fx_item(db.conn, TENANT, o, listing, 3, "19.90");
    char *id = submit("2024-03-01", "2024-03-31");
    wait_status(id, "running");
    char *before = metrics_hash();
    char path[160];
    snprintf(path, sizeof path, "/api/v1/jobs/%s/cancel", id);
    struct th_response r;
    assert_int_equal(call("POST", path, bearer(operator_token), &r), 202);
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "cancelling");
    th_free(&r);
    wait_status(id, "cancelled");
    tdb_exec(locker, UNLOCK_SQL);
    char *after = metrics_hash();
    assert_string_equal(after, before);
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM job_logs WHERE id = '%s' AND "
                             "metadata->>'cancelledBy' = 'operator' AND metadata ? 'cancelledAt' "
                             "AND completed_at IS NOT NULL AND worker_id IS NULL",
                             id),
                     1);
    expect("POST", path, bearer(operator_token), 409, "job_finished");
    /* The same request retried runs to its end and writes March: the cancel did undo work. */
    snprintf(path, sizeof path, "/api/v1/jobs/%s/retry", id);
    assert_int_equal(call("POST", path, bearer(operator_token), &r), 202);
    char *retry = strdup(json_string_value(json_object_get(r.json, "jobLogId")));
    th_free(&r);
    wait_status(retry, "success");
    char *done = metrics_hash();
    assert_string_not_equal(done, before);
    free(done);
    free(retry);
    free(after);
    free(before);
    free(id);
}

/* A cancelled job is a finished one: the tenant's status page filters on it, and retention
 * prunes it like the others. */
static void test_cancelled_is_finished(void **state)
{
    (void)state;
    struct th_response r;
    assert_int_equal(
        call("GET", "/api/v1/jobs/status?status=cancelled&limit=100", bearer(tenant_token), &r),
        200);
    size_t n = json_array_size(json_object_get(r.json, "jobs"));
    th_free(&r);
    assert_int_equal((long long)n, tdb_int(db.conn, "SELECT count(*) FROM job_logs WHERE status "
                                                    "= 'cancelled'"));
    assert_true(n >= 2);
    tdb_exec(db.conn, "UPDATE job_logs SET completed_at = now() - interval '100 days' WHERE "
                      "status = 'cancelled'");
    char url[700];
    snprintf(url, sizeof url, "DATABASE_URL=%s", db.url);
    const char *env[] = {url, NULL};
    const char *argv[] = {"prune", "--older-than", "90", NULL};
    char *out = NULL, *err = NULL;
    assert_int_equal(jobsd_run(argv, env, &out, &err), 0);
    free(out);
    free(err);
    assert_int_equal(tdb_int(db.conn, "SELECT count(*) FROM job_logs WHERE status = 'cancelled'"),
                     0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_who_may_call),   cmocka_unit_test(test_cancel_and_retry),
        cmocka_unit_test(test_queue),          cmocka_unit_test(test_cli_token),
        cmocka_unit_test(test_cancel_running), cmocka_unit_test(test_cancelled_is_finished),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
