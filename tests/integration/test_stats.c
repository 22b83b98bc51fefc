/* Integration tests of stats (the web app's read side) on a real PostgreSQL: keyset
 * pagination returns every job once, filters, tenant scoping, the statistics definitions of
 * SPEC 2.4, freshness in JOBS_TIMEZONE at 22:00 São Paulo (when the UTC date has already
 * changed), and the status query served by the index on a million job rows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "jobsd/job_kinds.h"
#include "jobsd/stats.h"
#include "testsupport.h"

#define A "aaaaaaaa-0000-4000-8000-000000000001"
#define B "bbbbbbbb-0000-4000-8000-000000000002"

static struct testdb db;

/* stats_compute for every registered job type, in JOBS_TIMEZONE America/Sao_Paulo. */
static json_t *compute(const char *tenant, const char *window, const char *now, struct err *e)
{
    const char *types[JOB_KINDS_MAX];
    struct stats_query q = {tenant, window, "America/Sao_Paulo",
                            now,    types,  job_kinds_types(types, JOB_KINDS_MAX)};
    return stats_compute(db.conn, &q, 0, e);
}

static int setup(void **state)
{
    (void)state;
    testdb_create(&db, "stats");
    fx_tenant(db.conn, A);
    fx_tenant(db.conn, B);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    testdb_drop(&db);
    return 0;
}

/* One job of tenant at `created` (an SQL expression); duration < 0 = unfinished. */
/* stats_status's body, parsed (NULL when it failed); the text must be compact JSON. */
static json_t *status_page(const struct status_query *q, struct err *e)
{
    char *text = stats_status(db.conn, q, 5000, e); /* one round trip, as jobsd reads */
    if (!text)
        return NULL;
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    if (!j)
        fail_msg("stats_status returned invalid JSON (%s): %s", je.text, text);
    /* compact, keys in SPEC order: exactly what jansson writes for the same value */
    char *again = json_dumps(j, JSON_COMPACT);
    assert_non_null(again);
    assert_string_equal(text, again);
    free(again);
    free(text);
    return j;
}

static void insert_job(const char *tenant, const char *type, const char *status,
                       const char *created, long long duration, const char *error)
{
    bool finished = strcmp(status, "success") == 0 || strcmp(status, "error") == 0;
    char dur[32] = "NULL";
    if (duration >= 0)
        snprintf(dur, sizeof dur, "%lld", duration);
    tdb_execf(db.conn,
              "INSERT INTO job_logs (tenant_id, job_type, status, created_at, started_at, "
              "completed_at, duration_ms, error_message) VALUES ('%s', '%s', '%s', %s, %s, %s, "
              "%s, %s)",
              tenant, type, status, created, created, finished ? created : "NULL", dur,
              error ? "'boom'" : "NULL");
}

static void test_pagination_exactly_once(void **state)
{
    (void)state;
    /* 25 jobs of A, several sharing one created_at (ties broken by id), 5 of B. */
    tdb_exec(db.conn, "INSERT INTO job_logs (tenant_id, job_type, status, created_at) "
                      "SELECT '" A "', 'metrics_aggregation', 'success', "
                      "timestamptz '2024-01-01 00:00:00+00' + (g / 3) * interval '1 second' "
                      "FROM generate_series(1, 25) g");
    tdb_exec(db.conn,
             "INSERT INTO job_logs (tenant_id, job_type, status) "
             "SELECT '" B "', 'metrics_aggregation', 'success' FROM generate_series(1, 5)");
    struct err e;
    err_clear(&e);
    struct status_query q = {A, NULL, NULL, 7, NULL};
    char seen[32][37];
    size_t nseen = 0;
    char *cursor = NULL;
    for (int page = 0; page < 10; page++) {
        q.before = cursor;
        json_t *r = status_page(&q, &e);
        assert_non_null(r);
        json_t *jobs = json_object_get(r, "jobs");
        size_t i;
        json_t *j;
        json_array_foreach(jobs, i, j)
        {
            assert_string_equal(json_string_value(json_object_get(j, "tenantId")), A);
            assert_true(nseen < 32);
            snprintf(seen[nseen++], 37, "%s", json_string_value(json_object_get(j, "id")));
            /* A job created between pages (newer than every cursor) never appears late. */
            if (page == 1 && i == 0)
                tdb_exec(db.conn, "INSERT INTO job_logs (tenant_id, job_type, status) VALUES "
                                  "('" A "', 'metrics_aggregation', 'queued')");
        }
        free(cursor);
        json_t *next = json_object_get(r, "nextCursor");
        cursor = json_is_string(next) ? strdup(json_string_value(next)) : NULL;
        json_decref(r);
        if (!cursor)
            break;
    }
    /* Page 1 started before the new job existed: 25 old jobs, each exactly once. */
    assert_int_equal(nseen, 25);
    for (size_t i = 0; i < nseen; i++)
        for (size_t k = i + 1; k < nseen; k++)
            assert_string_not_equal(seen[i], seen[k]);
    /* Filters and bad cursors. */
    struct status_query f = {A, "metrics_aggregation", "queued", 100, NULL};
    json_t *r = status_page(&f, &e);
    assert_int_equal(json_array_size(json_object_get(r, "jobs")), 1);
    assert_true(json_is_null(json_object_get(r, "nextCursor")));
    json_decref(r);
    struct status_query bad = {A, NULL, NULL, 10, "not-a-cursor"};
    assert_null(stats_status(db.conn, &bad, 0, &e));
    assert_int_equal(e.http_status, 400);
    tdb_exec(db.conn, "DELETE FROM job_logs");
}

static void test_stats_definitions(void **state)
{
    (void)state;
    /* A: 3 success (100, 200, 1000 ms), 1 error (300 ms), 1 running, 1 queued, 1 old success
     * outside the 7d window; B: noise. */
    insert_job(A, "metrics_aggregation", "success", "now() - interval '1 hour'", 100, NULL);
    insert_job(A, "metrics_aggregation", "success", "now() - interval '2 hours'", 200, NULL);
    insert_job(A, "metrics_aggregation", "success", "now() - interval '3 hours'", 1000, NULL);
    insert_job(A, "metrics_aggregation", "error", "now() - interval '4 hours'", 300, "boom");
    insert_job(A, "metrics_aggregation", "running", "now() - interval '5 minutes'", -1, NULL);
    insert_job(A, "metrics_aggregation", "queued", "now()", -1, NULL);
    insert_job(A, "metrics_aggregation", "success", "now() - interval '8 days'", 99999, NULL);
    insert_job(B, "metrics_aggregation", "error", "now()", 5, "boom");
    struct err e;
    err_clear(&e);
    json_t *s = compute(A, "7d", NULL, &e);
    assert_non_null(s);
    assert_string_equal(json_string_value(json_object_get(s, "window")), "7d");
    json_t *stats = json_object_get(s, "stats");
    assert_int_equal(json_array_size(stats), 2);
    json_t *m = json_array_get(stats, 0);
    assert_string_equal(json_string_value(json_object_get(m, "jobType")), "metrics_aggregation");
    assert_int_equal(json_integer_value(json_object_get(m, "totalRuns")), 6);
    assert_int_equal(json_integer_value(json_object_get(m, "success")), 3);
    assert_int_equal(json_integer_value(json_object_get(m, "error")), 1);
    assert_int_equal(json_integer_value(json_object_get(m, "running")), 1);
    assert_int_equal(json_integer_value(json_object_get(m, "queued")), 1);
    /* 3 / (3 + 1) */
    assert_true(json_number_value(json_object_get(m, "successRate")) == 0.75);
    /* avg of 100, 200, 1000, 300 = 400 */
    assert_int_equal((long long)json_number_value(json_object_get(m, "avgDurationMs")), 400);
    /* percentile_cont(0.95) of 100,200,300,1000 = 300 + 0.85 * 700 = 895 */
    assert_int_equal((long long)json_number_value(json_object_get(m, "p95DurationMs")), 895);
    assert_non_null(json_string_value(json_object_get(m, "lastErrorAt")));
    json_t *sync = json_array_get(stats, 1);
    assert_string_equal(json_string_value(json_object_get(sync, "jobType")), "mercadolivre_sync");
    assert_int_equal(json_integer_value(json_object_get(sync, "totalRuns")), 0);
    assert_true(json_is_null(json_object_get(sync, "successRate")));
    assert_true(json_is_null(json_object_get(sync, "p95DurationMs")));
    json_t *errors = json_object_get(s, "recentErrors");
    assert_int_equal(json_array_size(errors), 1);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(errors, 0), "errorMessage")), "boom");
    json_decref(s);
    /* 30d includes the old run; 24h excludes nothing recent. */
    s = compute(A, "30d", NULL, &e);
    assert_int_equal(json_integer_value(json_object_get(
                         json_array_get(json_object_get(s, "stats"), 0), "totalRuns")),
                     7);
    json_decref(s);
    assert_null(compute(A, "1y", NULL, &e));
    assert_int_equal(e.http_status, 400);
    tdb_exec(db.conn, "DELETE FROM job_logs");
}

static const char *freshness_status(const char *now, long long *lag, char **max)
{
    struct err e;
    err_clear(&e);
    json_t *s = compute(A, "7d", now, &e);
    assert_non_null(s);
    json_t *f = json_object_get(s, "freshness");
    static char status[32];
    snprintf(status, sizeof status, "%s", json_string_value(json_object_get(f, "status")));
    json_t *l = json_object_get(f, "lagDays");
    *lag = json_is_integer(l) ? (long long)json_integer_value(l) : -999;
    json_t *md = json_object_get(f, "maxDate");
    *max = json_is_string(md) ? strdup(json_string_value(md)) : NULL;
    json_decref(s);
    return status;
}

static void test_freshness_at_22h_sao_paulo(void **state)
{
    (void)state;
    long long lag;
    char *max;
    /* No rows: SEM_DADOS with nulls. */
    assert_string_equal(freshness_status("2024-02-01T01:00:00Z", &lag, &max), "SEM_DADOS");
    assert_null(max);
    assert_int_equal(lag, -999);
    const char *l = fx_listing(db.conn, A, "MLB-F", "active");
    tdb_execf(db.conn,
              "INSERT INTO listing_metrics_daily (tenant_id, listing_id, date) VALUES "
              "('%s', '%s', '2024-01-30')",
              A, l);
    /* 2024-02-01T01:00Z is 2024-01-31 22:00 in São Paulo: today is Jan 31 there, so Jan 30
     * is yesterday → OK with lag 1 (a UTC reading would say Feb 1 and lag 2 → stale). */
    assert_string_equal(freshness_status("2024-02-01T01:00:00Z", &lag, &max), "OK");
    assert_string_equal(max, "2024-01-30");
    assert_int_equal(lag, 1);
    free(max);
    /* At 03:00 São Paulo on Feb 1 it is stale. */
    assert_string_equal(freshness_status("2024-02-01T06:00:00Z", &lag, &max), "DESATUALIZADO");
    assert_int_equal(lag, 2);
    free(max);
    tdb_exec(db.conn, "DELETE FROM listing_metrics_daily");
}

static void test_index_on_a_million_jobs(void **state)
{
    (void)state;
    tdb_exec(db.conn, "INSERT INTO job_logs (tenant_id, job_type, status, created_at) "
                      "SELECT (ARRAY['" A "', '" B "'])[1 + g % 2]::uuid, "
                      "(ARRAY['metrics_aggregation', 'mercadolivre_sync'])[1 + g % 2], "
                      "(ARRAY['success', 'error', 'success'])[1 + g % 3], "
                      "now() - g * interval '1 second' FROM generate_series(1, 1000000) g");
    tdb_exec(db.conn, "ANALYZE job_logs");
    const char *plans[] = {
        "EXPLAIN SELECT id FROM job_logs WHERE tenant_id = '" A "' ORDER BY created_at DESC, id "
        "DESC LIMIT 11",
        "EXPLAIN SELECT id FROM job_logs WHERE tenant_id = '" A "' AND (created_at, id) < "
        "(now() - interval '1 day', 'aaaaaaaa-0000-4000-8000-000000000000'::uuid) ORDER BY "
        "created_at DESC, id DESC LIMIT 11",
        "EXPLAIN SELECT id FROM job_logs WHERE tenant_id = '" A "' AND job_type = "
        "'metrics_aggregation' AND status = 'error' ORDER BY created_at DESC, id DESC LIMIT 11",
    };
    for (size_t i = 0; i < sizeof plans / sizeof plans[0]; i++) {
        PGresult *r = PQexec(db.conn, plans[i]);
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        char plan[4096] = "";
        for (int k = 0; k < PQntuples(r); k++) {
            size_t used = strlen(plan);
            snprintf(plan + used, sizeof plan - used, "%s\n", PQgetvalue(r, k, 0));
        }
        PQclear(r);
        if (strstr(plan, "Seq Scan") || !strstr(plan, "job_logs_tenant_created"))
            fail_msg("plan %zu does not use the index:\n%s", i, plan);
    }
    /* The real statement, with its parameters bound as jobsd binds them: an index walk that
     * stops after page size + 1 rows (+ 1 the window function reads ahead). */
    const char *const params[][6] = {
        {A, NULL, NULL, NULL, NULL, "10"},
        {A, "metrics_aggregation", "error", NULL, NULL, "10"},
        {A, NULL, NULL, "2000-01-01T00:00:00Z", "aaaaaaaa-0000-4000-8000-000000000000", "10"},
    };
    char sql[8192];
    snprintf(sql, sizeof sql, "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) %s", stats_status_sql());
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
        PGresult *r = PQexecParams(db.conn, sql, 6, NULL, params[i], NULL, NULL, 0);
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        char plan[8192] = "";
        long long scanned = -1;
        for (int k = 0; k < PQntuples(r); k++) {
            const char *line = PQgetvalue(r, k, 0);
            size_t used = strlen(plan);
            snprintf(plan + used, sizeof plan - used, "%s\n", line);
            const char *rows = strstr(line, "rows=");
            if (strstr(line, "Index Scan") && rows)
                scanned = strtoll(rows + 5, NULL, 10);
        }
        PQclear(r);
        if (strstr(plan, "Seq Scan") || !strstr(plan, "job_logs_tenant_created") || scanned < 0 ||
            scanned > 12)
            fail_msg("the status statement (parameters %zu) is not a bounded index walk:\n%s", i,
                     plan);
    }
    /* And the real query answers a deep page fast enough to be an index walk. */
    struct err e;
    err_clear(&e);
    struct status_query q = {A, NULL, NULL, 100, NULL};
    json_t *r = status_page(&q, &e);
    assert_non_null(r);
    assert_int_equal(json_array_size(json_object_get(r, "jobs")), 100);
    json_decref(r);
    tdb_exec(db.conn, "TRUNCATE job_logs CASCADE");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pagination_exactly_once),
        cmocka_unit_test(test_stats_definitions),
        cmocka_unit_test(test_freshness_at_22h_sao_paulo),
        cmocka_unit_test(test_index_on_a_million_jobs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
