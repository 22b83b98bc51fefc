/* End-to-end tests of the JWT-authenticated API (SPEC 2.2-2.5) against a real jobsd: tokens
 * minted by Node's jsonwebtoken verify (and fail with one byte changed), tenant A never sees
 * tenant B's jobs on any of the three routes, pagination over HTTP returns every job once
 * while new jobs are created, invalid query values are 400, freshness uses JOBS_TIMEZONE.
 *
 * Node interop needs JOBSD_TEST_NODE_PATH (a node_modules with jsonwebtoken), which
 * scripts/test.sh installs from the npm registry into a temporary directory. */
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
#include "testgroup.h"
#include "testhttp.h"
#include "testproc.h"
#include "testtime.h"

#define SECRET "e2e-jwt-secret-0123456789abcdef-0123456789"
#define A      "aaaaaaaa-1111-4000-8000-000000000001"
#define B      "bbbbbbbb-2222-4000-8000-000000000002"

static struct testdb db;
static struct jobsd_proc proc;
static char token_a[2048], token_b[2048];

static void mint(const char *tenant, char *out, size_t cap)
{
    long long now = (long long)time(NULL);
    size_t n = jwt_sign((const unsigned char *)SECRET, strlen(SECRET), tenant, "user-1", now,
                        now + 600, NULL, NULL, out, cap);
    assert_true(n > 0);
}

static int setup(void **state)
{
    (void)state;
    testdb_create(&db, "jwtapi");
    fx_tenant(db.conn, A);
    fx_tenant(db.conn, B);
    /* 12 jobs of A, 3 of B (one failed). */
    tdb_exec(db.conn, "INSERT INTO job_logs (tenant_id, job_type, status, created_at) SELECT '" A
                      "', 'metrics_aggregation', 'success', now() - g * interval '1 minute' FROM "
                      "generate_series(1, 12) g");
    tdb_exec(db.conn, "INSERT INTO job_logs (tenant_id, job_type, status, error_message, "
                      "created_at) SELECT '" B "', 'metrics_aggregation', CASE WHEN g = 1 THEN "
                      "'error' ELSE 'success' END, CASE WHEN g = 1 THEN 'b-secret-failure' END, "
                      "now() - g * interval '1 minute' FROM generate_series(1, 3) g");
    const char *env[] = {"JWT_SECRET=" SECRET, "DB_QUERY_TIMEOUT_MS=2000", NULL};
    if (!jobsd_start(&proc, db.url, env))
        return -1;
    mint(A, token_a, sizeof token_a);
    mint(B, token_b, sizeof token_b);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int rc = jobsd_stop(&proc, 20000);
    testdb_drop(&db);
    return rc == 0 ? 0 : -1;
}

static int get(const char *path, const char *token, struct th_response *r)
{
    char h[2600] = "";
    if (token)
        snprintf(h, sizeof h, "Authorization: Bearer %s\r\n", token);
    assert_true(th_request(proc.port, "GET", path, h, NULL, r));
    return r->status;
}

static void test_node_jsonwebtoken_interop(void **state)
{
    (void)state;
    const char *node_path = getenv("JOBSD_TEST_NODE_PATH");
    if (!node_path || !*node_path)
        fail_msg("JOBSD_TEST_NODE_PATH is not set: scripts/test.sh installs jsonwebtoken");
    char cmd[1024];
    snprintf(
        cmd, sizeof cmd,
        "NODE_PATH='%s' node -e 'const jwt = require(\"jsonwebtoken\");"
        "console.log(jwt.sign({userId: \"u-9\", tenantId: \"%s\"}, \"%s\", {expiresIn: \"7d\"}));"
        "console.log(jwt.sign({userId: 42, tenantId: \"%s\"}, \"%s\", {expiresIn: 60, "
        "algorithm: \"HS384\"}));"
        "console.log(jwt.sign({userId: \"u-9\", tenantId: \"%s\"}, "
        "\"wrong-secret-0123456789abcdef-01\","
        " {expiresIn: \"7d\"}));'",
        node_path, A, SECRET, A, SECRET, A);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    char good[2048] = "", hs384[2048] = "", wrong[2048] = "";
    assert_non_null(fgets(good, sizeof good, f));
    assert_non_null(fgets(hs384, sizeof hs384, f));
    assert_non_null(fgets(wrong, sizeof wrong, f));
    assert_int_equal(pclose(f), 0);
    good[strcspn(good, "\n")] = '\0';
    hs384[strcspn(hs384, "\n")] = '\0';
    wrong[strcspn(wrong, "\n")] = '\0';
    struct th_response r;
    assert_int_equal(get("/api/v1/jobs/status", good, &r), 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "jobs")), 10);
    th_free(&r);
    /* One byte of the payload changed: rejected. */
    char *dot = strchr(good, '.');
    dot[5] = dot[5] == 'A' ? 'B' : 'A';
    assert_int_equal(get("/api/v1/jobs/status", good, &r), 401);
    char *www = th_header(&r, "WWW-Authenticate");
    assert_non_null(www);
    assert_string_equal(www, "Bearer error=\"invalid_token\"");
    free(www);
    th_free(&r);
    assert_int_equal(get("/api/v1/jobs/status", hs384, &r), 401);
    th_free(&r);
    assert_int_equal(get("/api/v1/jobs/status", wrong, &r), 401);
    th_free(&r);
}

static void test_bearer_scheme(void **state)
{
    (void)state;
    struct th_response r;
    const char *schemes[] = {"Bearer", "bearer", "BEARER"};
    for (size_t i = 0; i < 3; i++) {
        char h[2600];
        snprintf(h, sizeof h, "Authorization: %s %s\r\n", schemes[i], token_a);
        assert_true(th_request(proc.port, "GET", "/api/v1/jobs/stats", h, NULL, &r));
        assert_int_equal(r.status, 200);
        th_free(&r);
    }
    const char *bad[] = {"Authorization: Basic dXNlcjpwYXNz\r\n", "Authorization: Bearer\r\n",
                         "Authorization: Token abc\r\n", ""};
    for (size_t i = 0; i < 4; i++) {
        assert_true(th_request(proc.port, "GET", "/api/v1/jobs/stats", bad[i], NULL, &r));
        assert_int_equal(r.status, 401);
        assert_string_equal(th_error_code(&r), "unauthorized");
        th_free(&r);
    }
}

static void test_tenant_isolation(void **state)
{
    (void)state;
    struct th_response r;
    /* status: only A's jobs, whatever the filters. */
    const char *paths[] = {"/api/v1/jobs/status?limit=100", "/api/v1/jobs/status?status=error",
                           "/api/v1/jobs/status?jobType=metrics_aggregation&limit=100"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(get(paths[i], token_a, &r), 200);
        size_t k;
        json_t *j;
        json_array_foreach(json_object_get(r.json, "jobs"), k, j)
        {
            assert_string_equal(json_string_value(json_object_get(j, "tenantId")), A);
        }
        assert_null(strstr(r.body, B));
        assert_null(strstr(r.body, "b-secret-failure"));
        th_free(&r);
    }
    /* stats: A has 12 runs, no errors; B's error never shows. */
    assert_int_equal(get("/api/v1/jobs/stats", token_a, &r), 200);
    json_t *m = json_array_get(json_object_get(r.json, "stats"), 0);
    assert_int_equal(json_integer_value(json_object_get(m, "totalRuns")), 12);
    assert_int_equal(json_array_size(json_object_get(r.json, "recentErrors")), 0);
    th_free(&r);
    assert_int_equal(get("/api/v1/jobs/stats", token_b, &r), 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "recentErrors")), 1);
    th_free(&r);
    /* job by id: B's job through A's token is the same 404 as a job that does not exist. */
    char *b_job = tdb_value(db.conn, "SELECT id FROM job_logs WHERE tenant_id = '" B "' LIMIT 1");
    char *a_job = tdb_value(db.conn, "SELECT id FROM job_logs WHERE tenant_id = '" A "' LIMIT 1");
    char path[128];
    snprintf(path, sizeof path, "/api/v1/jobs/%s", b_job);
    assert_int_equal(get(path, token_a, &r), 404);
    assert_string_equal(th_error_code(&r), "job_not_found");
    th_free(&r);
    assert_int_equal(get("/api/v1/jobs/00000000-0000-4000-8000-00000000beef", token_a, &r), 404);
    assert_string_equal(th_error_code(&r), "job_not_found");
    th_free(&r);
    assert_int_equal(get(path, token_b, &r), 200);
    th_free(&r);
    snprintf(path, sizeof path, "/api/v1/jobs/%s", a_job);
    assert_int_equal(get(path, token_a, &r), 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "tenantId")), A);
    th_free(&r);
    /* The internal key sees any tenant's job. */
    snprintf(path, sizeof path, "/api/v1/jobs/%s", b_job);
    assert_true(th_request(proc.port, "GET", path, "X-Internal-Key: " TEST_KEY "\r\n", NULL, &r));
    assert_int_equal(r.status, 200);
    th_free(&r);
    free(a_job);
    free(b_job);
}

static void test_invalid_queries(void **state)
{
    (void)state;
    const char *bad[] = {
        "/api/v1/jobs/status?limit=0",         "/api/v1/jobs/status?limit=101",
        "/api/v1/jobs/status?limit=abc",       "/api/v1/jobs/status?limit=",
        "/api/v1/jobs/status?jobType=rebuild", "/api/v1/jobs/status?status=done",
        "/api/v1/jobs/status?before=garbage",  "/api/v1/jobs/status?limit=5&limit=6",
        "/api/v1/jobs/status?tenantId=" B,     "/api/v1/jobs/stats?window=1y",
        "/api/v1/jobs/stats?window=",          "/api/v1/jobs/stats?windows=7d",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct th_response r;
        int status = get(bad[i], token_a, &r);
        if (status != 400)
            fail_msg("%s: %d %s", bad[i], status, r.body);
        th_free(&r);
    }
}

static void test_pagination_while_creating(void **state)
{
    (void)state;
    char seen[64][37];
    size_t nseen = 0;
    char path[512] = "/api/v1/jobs/status?limit=5";
    for (int page = 0; page < 20; page++) {
        struct th_response r;
        assert_int_equal(get(path, token_a, &r), 200);
        size_t k;
        json_t *j;
        json_array_foreach(json_object_get(r.json, "jobs"), k, j)
        {
            assert_true(nseen < 64);
            snprintf(seen[nseen++], 37, "%s", json_string_value(json_object_get(j, "id")));
        }
        /* New jobs appear while the client pages through. */
        tdb_exec(db.conn, "INSERT INTO job_logs (tenant_id, job_type, status) VALUES ('" A
                          "', 'metrics_aggregation', 'queued')");
        json_t *next = json_object_get(r.json, "nextCursor");
        if (!json_is_string(next)) {
            th_free(&r);
            break;
        }
        snprintf(path, sizeof path, "/api/v1/jobs/status?limit=5&before=%s",
                 json_string_value(next));
        th_free(&r);
    }
    /* The 12 jobs that existed when paging began, each exactly once; the ones created
     * meanwhile are newer than every cursor and never show up late. */
    assert_int_equal(nseen, 12);
    for (size_t i = 0; i < nseen; i++)
        for (size_t k = i + 1; k < nseen; k++)
            assert_string_not_equal(seen[i], seen[k]);
    tdb_exec(db.conn, "DELETE FROM job_logs WHERE status = 'queued'");
}

static void test_freshness_uses_jobs_timezone(void **state)
{
    (void)state;
    /* Pick a zone whose date differs from UTC's right now (an offset of +14 or -12 hours),
     * start a jobsd with it, and put the newest metrics row on that zone's yesterday: OK in
     * the zone even though, read in UTC, it may be stale (or the reverse). */
    char *utc_hour = tdb_value(db.conn, "SELECT extract(hour FROM now() AT TIME ZONE 'UTC')");
    int hour = (int)strtol(utc_hour, NULL, 10);
    free(utc_hour);
    const char *zone = hour >= 10 ? "Pacific/Kiritimati" : "Etc/GMT+12";
    char tzenv[64];
    snprintf(tzenv, sizeof tzenv, "JOBS_TIMEZONE=%s", zone);
    const char *env[] = {"JWT_SECRET=" SECRET, tzenv, NULL};
    struct jobsd_proc p;
    assert_true(jobsd_start(&p, db.url, env));
    const char *l = fx_listing(db.conn, A, "MLB-TZ", "active");
    tdb_execf(db.conn,
              "INSERT INTO listing_metrics_daily (tenant_id, listing_id, date) VALUES ('" A
              "', '%s', (now() AT TIME ZONE '%s')::date - 1)",
              l, zone);
    char *expect_max = tdb_value(db.conn,
                                 "SELECT to_char((now() AT TIME ZONE '%s')::date - 1, "
                                 "'YYYY-MM-DD')",
                                 zone);
    char h[2600];
    snprintf(h, sizeof h, "Authorization: Bearer %s\r\n", token_a);
    struct th_response r;
    assert_true(th_request(p.port, "GET", "/api/v1/jobs/stats", h, NULL, &r));
    assert_int_equal(r.status, 200);
    json_t *f = json_object_get(r.json, "freshness");
    assert_string_equal(json_string_value(json_object_get(f, "maxDate")), expect_max);
    assert_string_equal(json_string_value(json_object_get(f, "status")), "OK");
    assert_int_equal(json_integer_value(json_object_get(f, "lagDays")), 1);
    th_free(&r);
    free(expect_max);
    tdb_exec(db.conn, "DELETE FROM listing_metrics_daily");
    assert_int_equal(jobsd_stop(&p, 20000), 0);
}

static void test_jwt_not_configured(void **state)
{
    (void)state;
    struct jobsd_proc p;
    assert_true(jobsd_start(&p, db.url, NULL));
    struct th_response r;
    char h[2600];
    snprintf(h, sizeof h, "Authorization: Bearer %s\r\n", token_a);
    assert_true(th_request(p.port, "GET", "/api/v1/jobs/status", h, NULL, &r));
    assert_int_equal(r.status, 503);
    assert_string_equal(th_error_code(&r), "jwt_not_configured");
    th_free(&r);
    assert_int_equal(jobsd_stop(&p, 20000), 0);
}

static void test_cors(void **state)
{
    (void)state;
    const char *env[] = {"JWT_SECRET=" SECRET,
                         "CORS_ALLOWED_ORIGINS=https://app.example.com, http://localhost:5173",
                         NULL};
    struct jobsd_proc p;
    assert_true(jobsd_start(&p, db.url, env));
    struct th_response r;
    /* Preflight from an allowed origin. */
    assert_true(th_request(p.port, "OPTIONS", "/api/v1/jobs/status",
                           "Origin: http://localhost:5173\r\nAccess-Control-Request-Method: GET\r\n"
                           "Access-Control-Request-Headers: authorization\r\n",
                           NULL, &r));
    assert_int_equal(r.status, 204);
    char *h = th_header(&r, "Access-Control-Allow-Origin");
    assert_string_equal(h, "http://localhost:5173");
    free(h);
    h = th_header(&r, "Access-Control-Allow-Headers");
    assert_non_null(strstr(h, "Authorization"));
    free(h);
    h = th_header(&r, "Access-Control-Allow-Methods");
    assert_non_null(strstr(h, "GET"));
    free(h);
    th_free(&r);
    /* Preflight from another origin: nothing that would let the browser through. */
    assert_true(th_request(p.port, "OPTIONS", "/api/v1/jobs/stats",
                           "Origin: https://evil.example.com\r\n", NULL, &r));
    assert_null(th_header(&r, "Access-Control-Allow-Origin"));
    th_free(&r);
    /* Real requests: the allowed origin gets the header, on success and on 401 alike. */
    char hdr[2800];
    snprintf(hdr, sizeof hdr, "Origin: https://app.example.com\r\nAuthorization: Bearer %s\r\n",
             token_a);
    assert_true(th_request(p.port, "GET", "/api/v1/jobs/status", hdr, NULL, &r));
    assert_int_equal(r.status, 200);
    h = th_header(&r, "Access-Control-Allow-Origin");
    assert_string_equal(h, "https://app.example.com");
    free(h);
    th_free(&r);
    assert_true(th_request(p.port, "GET", "/api/v1/jobs/status",
                           "Origin: https://app.example.com\r\n", NULL, &r));
    assert_int_equal(r.status, 401);
    h = th_header(&r, "Access-Control-Allow-Origin");
    assert_string_equal(h, "https://app.example.com");
    free(h);
    th_free(&r);
    snprintf(hdr, sizeof hdr, "Origin: https://evil.example.com\r\nAuthorization: Bearer %s\r\n",
             token_a);
    assert_true(th_request(p.port, "GET", "/api/v1/jobs/status", hdr, NULL, &r));
    assert_int_equal(r.status, 200);
    assert_null(th_header(&r, "Access-Control-Allow-Origin"));
    th_free(&r);
    /* Internal-key routes never speak CORS. */
    assert_true(th_request(p.port, "OPTIONS", "/api/v1/jobs/rebuild-daily-metrics",
                           "Origin: https://app.example.com\r\n", NULL, &r));
    assert_int_equal(r.status, 405);
    assert_null(th_header(&r, "Access-Control-Allow-Origin"));
    th_free(&r);
    assert_int_equal(jobsd_stop(&p, 20000), 0);
    /* CORS off (the suite's main instance): preflights are 405, no headers. */
    assert_true(th_request(proc.port, "OPTIONS", "/api/v1/jobs/status",
                           "Origin: https://app.example.com\r\n", NULL, &r));
    assert_int_equal(r.status, 405);
    assert_null(th_header(&r, "Access-Control-Allow-Origin"));
    th_free(&r);
}

/* Each read is one round trip (BEGIN, the timeouts, the statement, COMMIT pipelined) and is
 * bounded by DB_QUERY_TIMEOUT_MS: with job_logs locked, all three routes answer 503 with
 * Retry-After in about 2 s, and 200 again once the lock is gone. */
static void test_reads_bounded_by_query_timeout(void **state)
{
    (void)state;
    static const char *const paths[] = {"/api/v1/jobs/status", "/api/v1/jobs/stats",
                                        "/api/v1/jobs/7a1d3b52-8d4e-4f00-9c11-00000000abcd"};
    tdb_exec(db.conn, "BEGIN");
    tdb_exec(db.conn, "LOCK TABLE job_logs IN ACCESS EXCLUSIVE MODE");
    for (size_t i = 0; i < 3; i++) {
        struct th_response r;
        long long t0 = t_now_ms();
        int st = get(paths[i], token_a, &r);
        long long ms = t_now_ms() - t0;
        if (st != 503 || !strstr(r.headers, "Retry-After") || ms < 1500 || ms > 8000)
            fail_msg("%s with job_logs locked: %d after %lld ms:\n%s%s", paths[i], st, ms,
                     r.headers, r.body ? r.body : "");
        th_free(&r);
    }
    tdb_exec(db.conn, "ROLLBACK");
    static const int after[] = {200, 200, 404};
    for (size_t i = 0; i < 3; i++) {
        struct th_response r;
        assert_int_equal(get(paths[i], token_a, &r), after[i]);
        th_free(&r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_jsonwebtoken_interop),
        cmocka_unit_test(test_bearer_scheme),
        cmocka_unit_test(test_tenant_isolation),
        cmocka_unit_test(test_invalid_queries),
        cmocka_unit_test(test_pagination_while_creating),
        cmocka_unit_test(test_freshness_uses_jobs_timezone),
        cmocka_unit_test(test_jwt_not_configured),
        cmocka_unit_test(test_cors),
        cmocka_unit_test(test_reads_bounded_by_query_timeout),
    };
    return tgroup_run("jwt_api", tests, setup, teardown);
}
