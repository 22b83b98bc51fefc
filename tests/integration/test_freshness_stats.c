/* Integration test of freshness against the statistics (issue 20 item 3: "the stats endpoint
 * already shows one tenant's freshness; keep them consistent"): for tenants in every state
 * (no metrics, old metrics, metrics of yesterday and of today in São Paulo, successes and
 * failures of both job types, no job at all), freshness_report's per-tenant `freshness` is
 * exactly stats_compute's, and its `lastSuccessAt` per type is the stats' `lastSuccessAt`, with
 * the clock pinned at 22:00 São Paulo (01:00 UTC the next day: the UTC date has changed). Also
 * the listing order (never succeeded first, then the oldest success) and the counts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "jobsd/freshness.h"
#include "jobsd/job_kinds.h"
#include "jobsd/stats.h"
#include "testdb.h"
#include "testfx.h"
#include "testgroup.h"

#define NOW "2024-03-10T01:00:00Z" /* 2024-03-09 22:00 in São Paulo */
#define TZ  "America/Sao_Paulo"

/* Every tenant is stale with a one-hour limit (no success within the last hour), so the
 * report lists them all. */
static const char *const TENANTS[] = {
    "f5000000-0000-4000-8000-000000000001", /* no metrics, rebuilt 2 h ago */
    "f5000000-0000-4000-8000-000000000002", /* metrics 3 days old, rebuilt 30 h ago, sync failed */
    "f5000000-0000-4000-8000-000000000003", /* metrics of yesterday (SP), never succeeded */
    "f5000000-0000-4000-8000-000000000004", /* metrics of today (SP), both types 5 h ago */
    "f5000000-0000-4000-8000-000000000005", /* no job at all, metrics of today (UTC: tomorrow) */
};
#define NT (sizeof TENANTS / sizeof TENANTS[0])

static struct testdb db;

static void job(const char *tenant, const char *type, const char *status, const char *ago)
{
    tdb_execf(db.conn,
              "INSERT INTO job_logs (tenant_id, job_type, status, created_at, started_at, "
              "completed_at, duration_ms) VALUES ('%s', '%s', '%s', "
              "timestamptz '" NOW "' - interval '%s', timestamptz '" NOW "' - interval '%s', "
              "timestamptz '" NOW "' - interval '%s', 1000)",
              tenant, type, status, ago, ago, ago);
}

/* One metrics row of the tenant's listing on a date (an SQL date expression). */
static void metrics(const char *tenant, const char *date)
{
    const char *l = fx_listing(db.conn, tenant, "MLB-X", "active");
    tdb_execf(db.conn,
              "INSERT INTO listing_metrics_daily (tenant_id, listing_id, date) VALUES "
              "('%s', '%s', %s)",
              tenant, l, date);
}

static int setup(void **state)
{
    (void)state;
    testdb_create(&db, "freshstats");
    for (size_t i = 0; i < NT; i++)
        fx_tenant(db.conn, TENANTS[i]);
    job(TENANTS[0], "metrics_aggregation", "success", "2 hours");
    metrics(TENANTS[1], "date '2024-03-06'");
    job(TENANTS[1], "metrics_aggregation", "success", "30 hours");
    job(TENANTS[1], "metrics_aggregation", "success", "54 hours");
    job(TENANTS[1], "mercadolivre_sync", "error", "1 hour");
    metrics(TENANTS[2], "date '2024-03-08'");
    job(TENANTS[2], "metrics_aggregation", "error", "3 hours");
    metrics(TENANTS[3], "date '2024-03-09'");
    job(TENANTS[3], "metrics_aggregation", "success", "5 hours");
    job(TENANTS[3], "mercadolivre_sync", "success", "5 hours");
    metrics(TENANTS[4], "date '2024-03-10'");
    /* Every tenant connected: the sync applies to all of them. */
    for (size_t i = 0; i < NT; i++)
        tdb_execf(db.conn,
                  "INSERT INTO marketplace_connections (tenant_id, seller_id) VALUES ('%s', %zu)",
                  TENANTS[i], 7000 + i);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    testdb_drop(&db);
    return 0;
}

static json_t *stats_of(const char *tenant)
{
    const char *types[JOB_KINDS_MAX];
    struct stats_query q = {tenant, "30d", TZ, NOW, types, job_kinds_types(types, JOB_KINDS_MAX)};
    struct err e;
    err_clear(&e);
    json_t *s = stats_compute(db.conn, &q, 0, &e);
    if (!s)
        fail_msg("stats_compute: %s", e.message);
    return s;
}

static json_t *report(long long limit)
{
    struct freshness_query q = {1, TZ, NOW, limit};
    struct err e;
    err_clear(&e);
    json_t *r = freshness_report(db.conn, &q, 0, &e);
    if (!r)
        fail_msg("freshness_report: %s", e.message);
    return r;
}

static json_t *listed(json_t *rep, const char *tenant)
{
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(rep, "tenants"), i, t)
    {
        if (strcmp(json_string_value(json_object_get(t, "tenantId")), tenant) == 0)
            return t;
    }
    fail_msg("tenant %s not listed", tenant);
    return NULL;
}

static void test_same_definitions_as_stats(void **state)
{
    (void)state;
    json_t *rep = report(100);
    for (size_t i = 0; i < NT; i++) {
        json_t *t = listed(rep, TENANTS[i]);
        json_t *st = stats_of(TENANTS[i]);
        if (!json_equal(json_object_get(t, "freshness"), json_object_get(st, "freshness"))) {
            char *a = json_dumps(json_object_get(t, "freshness"), JSON_COMPACT);
            char *b = json_dumps(json_object_get(st, "freshness"), JSON_COMPACT);
            fail_msg("tenant %zu: freshness %s, stats %s", i + 1, a, b);
        }
        size_t k;
        json_t *row;
        json_array_foreach(json_object_get(st, "stats"), k, row)
        {
            const char *type = json_string_value(json_object_get(row, "jobType"));
            json_t *mine = json_object_get(json_object_get(t, "lastSuccessAt"), type);
            assert_non_null(mine); /* every type is present, null when none */
            assert_true(json_equal(mine, json_object_get(row, "lastSuccessAt")));
        }
        json_decref(st);
    }
    json_decref(rep);
}

static void test_order_and_counts(void **state)
{
    (void)state;
    json_t *rep = report(100);
    assert_int_equal(json_integer_value(json_object_get(rep, "activeTenants")), NT);
    assert_int_equal(json_integer_value(json_object_get(rep, "staleTenants")), NT);
    assert_string_equal(json_string_value(json_object_get(rep, "checkedAt")),
                        "2024-03-10T01:00:00.000Z");
    /* Never succeeded on some type first (3 and 5 on both types, 1 and 2 on the sync, by
     * id), then by the oldest success: 4 (5 h ago). */
    static const int order[] = {0, 1, 2, 4, 3};
    json_t *list = json_object_get(rep, "tenants");
    assert_int_equal(json_array_size(list), NT);
    for (size_t i = 0; i < NT; i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(list, i), "tenantId")),
                            TENANTS[order[i]]);
    json_decref(rep);
    rep = report(2);
    assert_int_equal(json_array_size(json_object_get(rep, "tenants")), 2);
    assert_int_equal(json_integer_value(json_object_get(rep, "staleTenants")), NT);
    json_decref(rep);
    rep = report(0);
    assert_int_equal(json_array_size(json_object_get(rep, "tenants")), 0);
    json_decref(rep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_same_definitions_as_stats),
                                       cmocka_unit_test(test_order_and_counts)};
    return tgroup_run("freshness_stats", tests, setup, teardown);
}
