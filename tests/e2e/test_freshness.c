/* End-to-end tests of freshness (issue 20 item 3) with a real jobsd and PostgreSQL: a tenant
 * whose last rebuild is older than FRESHNESS_MAX_AGE_HOURS is listed by GET
 * /api/v1/jobs/freshness, counted by jobsd_tenants_stale{job_type} and by the periodic
 * "[INTERNAL-JOB] freshness" line; a fresh one is not; once the stale tenant's rebuild runs it
 * leaves all three. The old rebuild is a job_logs row written by the test (nobody waits a
 * day); the new one is a real job. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testdb.h"
#include "testfx.h"
#include "testgroup.h"
#include "testhttp.h"
#include "testproc.h"
#include "testtime.h"

#define STALE    "f7e50000-0000-4000-8000-000000000001"
#define FRESH    "f7e50000-0000-4000-8000-000000000002"
#define INACTIVE "f7e50000-0000-4000-8000-000000000003"
#define KEY_HDR  "X-Internal-Key: " TEST_KEY "\r\n"
#define PATH     "/api/v1/jobs/freshness"

static struct testdb db;
static struct jobsd_proc proc;

/* A finished job of the tenant, completed hours_ago hours ago. */
static void past_job(const char *tenant, const char *type, const char *status, int hours_ago)
{
    tdb_execf(db.conn,
              "INSERT INTO job_logs (tenant_id, job_type, status, trigger, created_at, "
              "started_at, completed_at, duration_ms) VALUES ('%s', '%s', '%s', 'http', "
              "now() - interval '%d hours', now() - interval '%d hours', "
              "now() - interval '%d hours', 10)",
              tenant, type, status, hours_ago, hours_ago, hours_ago);
}

static int setup(void **state)
{
    (void)state;
    testdb_create(&db, "freshness");
    fx_tenant(db.conn, STALE);
    fx_tenant(db.conn, FRESH);
    fx_tenant(db.conn, INACTIVE);
    tdb_exec(db.conn, "UPDATE tenants SET status = 'inactive' WHERE id = '" INACTIVE "'");
    fx_listing(db.conn, STALE, "MLB1", "active");
    fx_listing(db.conn, FRESH, "MLB2", "active");
    /* STALE: last rebuild 30 h ago (an error since: not a success), no connection (so the
     * sync does not apply to it). FRESH: rebuilt and synced an hour ago, connected. */
    past_job(STALE, "metrics_aggregation", "success", 30);
    past_job(STALE, "metrics_aggregation", "error", 2);
    past_job(FRESH, "metrics_aggregation", "success", 1);
    past_job(FRESH, "mercadolivre_sync", "success", 1);
    tdb_exec(db.conn, "INSERT INTO marketplace_connections (tenant_id, seller_id) VALUES ('" FRESH
                      "', 4242)");
    tdb_exec(db.conn, "INSERT INTO listing_metrics_daily (tenant_id, listing_id, date) "
                      "SELECT tenant_id, id, (now() AT TIME ZONE 'UTC')::date - 5 FROM listings "
                      "WHERE tenant_id = '" STALE "'");
    static const char *const env[] = {"FRESHNESS_MAX_AGE_HOURS=24", "FRESHNESS_CHECK_SECONDS=1",
                                      "JOBS_TIMEZONE=UTC", NULL};
    return jobsd_start(&proc, db.url, env) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    int rc = jobsd_stop(&proc, 20000);
    testdb_drop(&db);
    return rc == 0 ? 0 : -1;
}

static json_t *get_report(const char *query)
{
    char path[128];
    snprintf(path, sizeof path, "%s%s", PATH, query);
    struct th_response r;
    assert_true(th_request(proc.port, "GET", path, KEY_HDR, NULL, &r));
    assert_int_equal(r.status, 200);
    json_t *body = json_loads(r.body, 0, NULL);
    th_free(&r);
    assert_non_null(body);
    return body;
}

static long long int_at(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    assert_true(json_is_integer(v));
    return (long long)json_integer_value(v);
}

/* The jobTypes entry of a type. */
static json_t *type_entry(json_t *report, const char *type)
{
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(report, "jobTypes"), i, t)
    {
        if (strcmp(json_string_value(json_object_get(t, "jobType")), type) == 0)
            return t;
    }
    fail_msg("no jobTypes entry for %s", type);
    return NULL;
}

/* The value of one sample line "name{labels} value" of /metrics, or -1 when absent. */
static double gauge(const char *series)
{
    struct th_response r;
    assert_true(th_request(proc.port, "GET", "/metrics", KEY_HDR, NULL, &r));
    assert_int_equal(r.status, 200);
    double v = -1;
    for (const char *p = strstr(r.body, series); p; p = strstr(p + 1, series)) {
        size_t n = strlen(series);
        if ((p == r.body || p[-1] == '\n') && p[n] == ' ') {
            v = strtod(p + n + 1, NULL);
            break;
        }
    }
    th_free(&r);
    return v;
}

struct gauge_wait {
    const char *series;
    double want;
};

static bool gauge_is(void *ctx)
{
    struct gauge_wait *g = ctx;
    return gauge(g->series) == g->want;
}

static bool log_has(void *ctx)
{
    return jobsd_log_contains(&proc, ctx);
}

static void test_guard_and_query(void **state)
{
    (void)state;
    struct th_response r;
    assert_true(th_request(proc.port, "GET", PATH, NULL, NULL, &r));
    assert_int_equal(r.status, 401);
    th_free(&r);
    assert_true(th_request(proc.port, "GET", PATH, "X-Internal-Key: wrong\r\n", NULL, &r));
    assert_int_equal(r.status, 401);
    th_free(&r);
    assert_true(th_request(proc.port, "GET", PATH "?limit=0", KEY_HDR, NULL, &r));
    assert_int_equal(r.status, 400);
    assert_string_equal(th_error_code(&r), "invalid_field");
    th_free(&r);
    assert_true(th_request(proc.port, "GET", PATH "?limit=1&limit=2", KEY_HDR, NULL, &r));
    assert_int_equal(r.status, 400);
    assert_string_equal(th_error_code(&r), "invalid_field");
    th_free(&r);
    assert_true(th_request(proc.port, "GET", PATH "?tenantId=" STALE, KEY_HDR, NULL, &r));
    assert_int_equal(r.status, 400);
    assert_string_equal(th_error_code(&r), "unknown_field");
    th_free(&r);
    assert_true(th_request(proc.port, "HEAD", PATH, KEY_HDR, NULL, &r));
    assert_int_equal(r.status, 200);
    th_free(&r);
    /* Not a CORS route: an OPTIONS is 405 like any other method. */
    assert_true(
        th_request(proc.port, "OPTIONS", PATH, "Origin: https://app.example\r\n", NULL, &r));
    assert_int_equal(r.status, 405);
    th_free(&r);
}

/* The stale tenant, not the fresh one nor the inactive one, in the report. */
static void test_endpoint_lists_stale_only(void **state)
{
    (void)state;
    json_t *rep = get_report("");
    assert_int_equal(int_at(rep, "maxAgeHours"), 24);
    assert_int_equal(int_at(rep, "activeTenants"), 2);
    assert_int_equal(int_at(rep, "staleTenants"), 1);
    json_t *rebuild = type_entry(rep, "metrics_aggregation");
    assert_int_equal(int_at(rebuild, "eligibleTenants"), 2);
    assert_int_equal(int_at(rebuild, "staleTenants"), 1);
    json_t *sync = type_entry(rep, "mercadolivre_sync");
    assert_int_equal(int_at(sync, "eligibleTenants"), 1);
    assert_int_equal(int_at(sync, "staleTenants"), 0);
    json_t *tenants = json_object_get(rep, "tenants");
    assert_int_equal(json_array_size(tenants), 1);
    json_t *t = json_array_get(tenants, 0);
    assert_string_equal(json_string_value(json_object_get(t, "tenantId")), STALE);
    json_t *types = json_object_get(t, "staleJobTypes");
    assert_int_equal(json_array_size(types), 1);
    assert_string_equal(json_string_value(json_array_get(types, 0)), "metrics_aggregation");
    /* lastSuccessAt: the success 30 h ago, not the error since. */
    const char *last = json_string_value(
        json_object_get(json_object_get(t, "lastSuccessAt"), "metrics_aggregation"));
    char *want = tdb_value(db.conn, "SELECT to_char(max(completed_at) AT TIME ZONE 'UTC', "
                                    "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM job_logs "
                                    "WHERE tenant_id = '" STALE "' AND status = 'success'");
    assert_non_null(last);
    assert_string_equal(last, want);
    free(want);
    /* The metrics date as GET /api/v1/jobs/stats judges it. */
    json_t *f = json_object_get(t, "freshness");
    assert_string_equal(json_string_value(json_object_get(f, "status")), "DESATUALIZADO");
    assert_int_equal(int_at(f, "lagDays"), 5);
    json_decref(rep);
    rep = get_report("?limit=1");
    assert_int_equal(json_array_size(json_object_get(rep, "tenants")), 1);
    json_decref(rep);
}

/* The gauge and the log line count it too; a real rebuild makes it fresh everywhere. */
static void test_gauge_log_and_recovery(void **state)
{
    (void)state;
    struct gauge_wait g = {"jobsd_tenants_stale{job_type=\"metrics_aggregation\"}", 1};
    assert_true(t_wait_until(gauge_is, &g, 10000));
    assert_true(gauge("jobsd_tenants_stale{job_type=\"mercadolivre_sync\"}") == 0);
    assert_true(gauge("jobsd_tenants_eligible{job_type=\"mercadolivre_sync\"}") == 1);
    assert_true(
        gauge("jobsd_job_last_success_timestamp_seconds{job_type=\"metrics_aggregation\"}") > 0);
    assert_true(
        t_wait_until(log_has, "[INTERNAL-JOB] freshness staleTenants=1 activeTenants=2", 10000));
    assert_true(jobsd_log_contains(&proc, "staleByType=metrics_aggregation:1,mercadolivre_sync:0"));
    assert_false(jobsd_log_contains(&proc, "[INTERNAL-JOB] freshness staleTenants=0"));

    struct th_response r;
    assert_true(th_post_job(proc.port, "/api/v1/jobs/rebuild-daily-metrics", TEST_KEY,
                            "{\"tenantId\": \"" STALE "\", \"from\": \"2024-01-01\", \"to\": "
                            "\"2024-01-02\"}",
                            NULL, &r));
    assert_int_equal(r.status, 200);
    th_free(&r);
    json_t *rep = get_report("");
    assert_int_equal(int_at(rep, "staleTenants"), 0);
    assert_int_equal(json_array_size(json_object_get(rep, "tenants")), 0);
    json_decref(rep);
    g.want = 0;
    assert_true(t_wait_until(gauge_is, &g, 10000));
    assert_true(
        t_wait_until(log_has, "[INTERNAL-JOB] freshness staleTenants=0 activeTenants=2", 10000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_guard_and_query),
                                       cmocka_unit_test(test_endpoint_lists_stale_only),
                                       cmocka_unit_test(test_gauge_log_and_recovery)};
    return tgroup_run("freshness", tests, setup, teardown);
}
