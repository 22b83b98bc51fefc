/* End-to-end tests of GET /metrics: the internal key (header or bearer) guards it, the text
 * format is Prometheus 0.0.4, and the counters move with what happened. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testdb.h"
#include "testfx.h"
#include "testgroup.h"
#include "testhttp.h"
#include "testproc.h"

#define TENANT "3e3e3e3e-0000-4000-8000-000000000001"

static struct testdb db;
static struct jobsd_proc proc;

static int setup(void **state)
{
    (void)state;
    testdb_create(&db, "metrics");
    fx_tenant(db.conn, TENANT);
    fx_listing(db.conn, TENANT, "MLB1", "active");
    return jobsd_start(&proc, db.url, NULL) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return jobsd_teardown_one(&db, &proc);
}

/* The value of one sample line "name{labels} value", or -1. */
static double sample(const char *body, const char *series)
{
    const char *p = strstr(body, series);
    while (p && p != body && p[-1] != '\n')
        p = strstr(p + 1, series);
    if (!p)
        return -1;
    p += strlen(series);
    if (*p != ' ')
        return -1;
    return strtod(p + 1, NULL);
}

static void test_guard(void **state)
{
    (void)state;
    struct th_response r;
    assert_true(th_request(proc.port, "GET", "/metrics", NULL, NULL, &r));
    assert_int_equal(r.status, 401);
    th_free(&r);
    assert_true(
        th_request(proc.port, "GET", "/metrics", "Authorization: Bearer wrong-key\r\n", NULL, &r));
    assert_int_equal(r.status, 401);
    th_free(&r);
    assert_true(th_request(proc.port, "GET", "/metrics", "Authorization: Bearer " TEST_KEY "\r\n",
                           NULL, &r));
    assert_int_equal(r.status, 200);
    char *ct = th_header(&r, "Content-Type");
    assert_non_null(strstr(ct, "text/plain; version=0.0.4"));
    free(ct);
    th_free(&r);
}

static void test_counters_move(void **state)
{
    (void)state;
    struct th_response r;
    assert_true(th_request(proc.port, "GET", "/healthz", NULL, NULL, &r));
    th_free(&r);
    assert_true(th_request(proc.port, "GET", "/no-such-path", NULL, NULL, &r));
    th_free(&r);
    assert_true(th_post_job(proc.port, "/api/v1/jobs/rebuild-daily-metrics", TEST_KEY,
                            "{\"tenantId\": \"" TENANT "\", \"from\": \"2024-01-01\", \"to\": "
                            "\"2024-01-02\"}",
                            NULL, &r));
    assert_int_equal(r.status, 200);
    th_free(&r);
    assert_true(
        th_request(proc.port, "GET", "/metrics", "X-Internal-Key: " TEST_KEY "\r\n", NULL, &r));
    assert_int_equal(r.status, 200);
    const char *b = r.body;
    assert_true(
        sample(b, "jobsd_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"}") >=
        1);
    assert_true(sample(b, "jobsd_http_requests_total{route=\"unmatched\",method=\"GET\","
                          "status=\"404\"}") >= 1);
    assert_true(sample(b, "jobsd_http_requests_total{route=\"/api/v1/jobs/rebuild-daily-metrics\","
                          "method=\"POST\",status=\"200\"}") >= 1);
    assert_true(
        sample(b, "jobsd_jobs_total{job_type=\"metrics_aggregation\",status=\"success\"}") >= 1);
    assert_true(sample(b, "jobsd_job_duration_seconds_count{job_type=\"metrics_aggregation\"}") >=
                1);
    assert_true(sample(b, "jobsd_http_request_duration_seconds_bucket{route=\"/healthz\","
                          "le=\"+Inf\"}") >= 1);
    assert_true(sample(b, "jobsd_jobs_in_queue{job_type=\"metrics_aggregation\","
                          "status=\"queued\"}") >= 0);
    assert_true(sample(b, "jobsd_db_pool_connections{state=\"idle\"}") >= 0);
    assert_true(sample(b, "jobsd_database_up") == 1);
    assert_true(sample(b, "jobsd_reaper_jobs_total{outcome=\"requeued\"}") >= 0);
    assert_true(sample(b, "jobsd_ml_retries_total") >= 0);
    /* Every family is declared before its samples. */
    assert_non_null(strstr(b, "# TYPE jobsd_http_requests_total counter"));
    assert_non_null(strstr(b, "# TYPE jobsd_job_duration_seconds histogram"));
    th_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_guard),
                                       cmocka_unit_test(test_counters_move)};
    return tgroup_run("metrics", tests, setup, teardown);
}
