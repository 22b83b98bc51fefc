/* The runbook's SQL (seed/OPERATIONS_SCHEDULER.md, "Validacao da Execucao" and "Plano de
 * Rollback") run VERBATIM against a real PostgreSQL after real rebuilds (CLI): the text below
 * is copied exactly from the runbook (markdown list indentation included); only the
 * placeholder 'SEU_TENANT_ID' is replaced by a test tenant's id. Each query must return what
 * the runbook says it returns. One database per program; each test has its own tenants. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testdb.h"
#include "testfx.h"
#include "testproc.h"

/* ---------------------------------------------------------- the runbook's SQL, verbatim */

/* "Via job_logs no Banco de Dados" */
static const char RUNBOOK_JOB_LOGS[] = "-- Ultimas execucoes de rebuild-daily-metrics\n"
                                       "SELECT \n"
                                       "  id,\n"
                                       "  job_type,\n"
                                       "  status,\n"
                                       "  started_at,\n"
                                       "  completed_at,\n"
                                       "  duration_ms,\n"
                                       "  records_processed,\n"
                                       "  error_message,\n"
                                       "  metadata\n"
                                       "FROM job_logs\n"
                                       "WHERE job_type = 'metrics_aggregation'\n"
                                       "ORDER BY started_at DESC\n"
                                       "LIMIT 10;";

/* "Validar que listing_metrics_daily esta Atualizado", first statement */
static const char RUNBOOK_MAX_DATE[] = "-- Verificar MAX(date) por tenant\n"
                                       "SELECT \n"
                                       "  tenant_id,\n"
                                       "  MAX(date) as max_date,\n"
                                       "  COUNT(*) as total_records\n"
                                       "FROM listing_metrics_daily\n"
                                       "GROUP BY tenant_id;";

/* "Validar que listing_metrics_daily esta Atualizado", second statement */
static const char RUNBOOK_FRESHNESS[] =
    "-- Verificar se MAX(date) e hoje ou ontem\n"
    "SELECT \n"
    "  CASE \n"
    "    WHEN MAX(date) >= CURRENT_DATE - INTERVAL '1 day' THEN 'OK'\n"
    "    ELSE 'DESATUALIZADO'\n"
    "  END as status,\n"
    "  MAX(date) as ultima_data\n"
    "FROM listing_metrics_daily\n"
    "WHERE tenant_id = 'SEU_TENANT_ID';";

/* "Cenario 2", step 1 */
static const char RUNBOOK_SOURCES[] = "SELECT date, COUNT(*), source\n"
                                      "   FROM listing_metrics_daily\n"
                                      "   WHERE tenant_id = 'SEU_TENANT_ID'\n"
                                      "   GROUP BY date, source\n"
                                      "   ORDER BY date DESC;";

/* "Cenario 2", step 2 (its dates are the runbook's: January 2024) */
static const char RUNBOOK_ROLLBACK_DELETE[] =
    "DELETE FROM listing_metrics_daily\n"
    "   WHERE tenant_id = 'SEU_TENANT_ID'\n"
    "     AND date BETWEEN '2024-01-01' AND '2024-01-31'\n"
    "     AND source = 'internal_job';";

/* ------------------------------------------------------------------ helpers */

static struct testdb db;
static long long next_external_id = 5000;

/* The runbook's text with every SEU_TENANT_ID replaced by tenant (malloc'ed). */
static char *runbook_sql(const char *text, const char *tenant)
{
    static const char PH[] = "SEU_TENANT_ID";
    size_t n = 0;
    for (const char *p = strstr(text, PH); p; p = strstr(p + 1, PH))
        n++;
    size_t cap = strlen(text) + n * strlen(tenant) + 1;
    char *out = malloc(cap);
    assert_non_null(out);
    char *o = out;
    const char *p = text;
    for (const char *q = strstr(p, PH); q; q = strstr(p, PH)) {
        memcpy(o, p, (size_t)(q - p));
        o += q - p;
        memcpy(o, tenant, strlen(tenant));
        o += strlen(tenant);
        p = q + strlen(PH);
    }
    memcpy(o, p, strlen(p) + 1);
    return out;
}

/* Runs a runbook statement for tenant; aborts the test on an SQL error. */
static PGresult *runbook_exec(const char *text, const char *tenant)
{
    char *sql = runbook_sql(text, tenant);
    PGresult *r = PQexec(db.conn, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        print_error("runbook SQL failed: %s\n--- %s\n", PQerrorMessage(db.conn), sql);
        free(sql);
        PQclear(r);
        fail();
    }
    free(sql);
    return r;
}

struct result {
    char job[40];
    long long upserted, unchanged, deleted, listings, days, duration;
    char from[16], to[16];
};

static int cli(const char *const *args, const char *const *env, char **out, char **err)
{
    const char *argv[16];
    size_t n = 0;
    argv[n++] = "rebuild-daily-metrics";
    for (size_t i = 0; args[i]; i++) {
        assert_true(n < 15);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    char url[600];
    snprintf(url, sizeof url, "DATABASE_URL=%s", db.url);
    const char *envp[8];
    size_t k = 0;
    envp[k++] = url;
    for (size_t i = 0; env && env[i]; i++) {
        assert_true(k < 7);
        envp[k++] = env[i];
    }
    envp[k] = NULL;
    return jobsd_run(argv, envp, out, err);
}

static struct result rebuild_args(const char *const *args)
{
    char *out = NULL, *err = NULL;
    int rc = cli(args, NULL, &out, &err);
    if (rc != 0) {
        print_error("jobsd rebuild-daily-metrics exited %d\nstdout: %s\nstderr: %s\n", rc, out,
                    err);
        free(out);
        free(err);
        fail();
    }
    json_t *j = json_loads(out, 0, NULL);
    free(out);
    free(err);
    assert_non_null(j);
    struct result r;
    memset(&r, 0, sizeof r);
    snprintf(r.job, sizeof r.job, "%s", json_string_value(json_object_get(j, "jobLogId")));
    r.upserted = (long long)json_integer_value(json_object_get(j, "rowsUpserted"));
    r.unchanged = (long long)json_integer_value(json_object_get(j, "rowsUnchanged"));
    r.deleted = (long long)json_integer_value(json_object_get(j, "rowsDeleted"));
    r.listings = (long long)json_integer_value(json_object_get(j, "listingsProcessed"));
    r.days = (long long)json_integer_value(json_object_get(j, "daysProcessed"));
    r.duration = (long long)json_integer_value(json_object_get(j, "duration"));
    json_t *range = json_object_get(j, "dateRange");
    snprintf(r.from, sizeof r.from, "%s", json_string_value(json_object_get(range, "from")));
    snprintf(r.to, sizeof r.to, "%s", json_string_value(json_object_get(range, "to")));
    json_decref(j);
    assert_int_equal(strlen(r.job), 36);
    return r;
}

static struct result rebuild(const char *tenant, const char *from, const char *to)
{
    const char *args[] = {"--tenant", tenant, "--from", from, "--to", to, NULL};
    return rebuild_args(args);
}

static void listing(const char *tenant, const char *ext, const char *status, char out[40])
{
    snprintf(out, 40, "%s", fx_listing(db.conn, tenant, ext, status));
}

static void order1(const char *tenant, const char *at, const char *listing_id, int qty,
                   const char *price)
{
    char oid[40];
    snprintf(oid, sizeof oid, "%s", fx_order(db.conn, tenant, next_external_id++, "paid", at));
    fx_item(db.conn, tenant, oid, listing_id, qty, price);
}

static int col(const PGresult *r, const char *name)
{
    int c = PQfnumber(r, name);
    if (c < 0)
        fail_msg("the runbook query has no column %s", name);
    return c;
}

static const char *val(const PGresult *r, int row, const char *name)
{
    int c = col(r, name);
    return PQgetisnull(r, row, c) ? NULL : PQgetvalue(r, row, c);
}

/* The values of a tenant's rows (ROW text: NULL empty, 0 as 0), ordered. */
static char *snap_values(const char *tenant, const char *extra)
{
    return tdb_value(db.conn,
                     "SELECT coalesce(string_agg(ROW(listing_id, date, visits, orders, units, gmv, "
                     " conversion, impressions, clicks, ctr, source)::text, E'\\n' "
                     " ORDER BY listing_id, date), '') "
                     "FROM listing_metrics_daily WHERE tenant_id = '%s' %s",
                     tenant, extra ? extra : "");
}

/* ------------------------------------------------------------------ tests */

/* "Cada execucao de job cria um registro na tabela job_logs": the runbook's listing shows
 * every run of metrics_aggregation, newest started_at first, with the columns it names;
 * a failed run shows its error_message. */
static void test_runbook_job_logs_listing(void **state)
{
    (void)state;
    const char *T = "00000000-0000-4000-8000-000000000101";
    const char *F = "00000000-0000-4000-8000-000000000102";
    fx_tenant(db.conn, T);
    fx_tenant(db.conn, F);
    char L[40];
    listing(T, "MLB1", "active", L);
    listing(F, "MLB1", "active", L);
    /* a run of another job type, started later than everything else: filtered out */
    tdb_exec(db.conn, "INSERT INTO job_logs (job_type, status, trigger, started_at, completed_at) "
                      "VALUES ('mercadolivre_sync', 'success', 'http', now() + interval '1 hour', "
                      " now() + interval '1 hour')");
    struct result r1 = rebuild(T, "2024-01-01", "2024-01-31"); /* 31 new rows */
    struct result r2 = rebuild(T, "2024-01-01", "2024-01-31"); /* 0 written */
    /* a failing run: a trigger raises for tenant F's rows -> job failed (exit 1) */
    tdb_exec(db.conn, "CREATE OR REPLACE FUNCTION runbook_boom() RETURNS trigger LANGUAGE plpgsql "
                      "AS $$ BEGIN RAISE EXCEPTION 'boom for the runbook test'; END $$");
    tdb_execf(db.conn,
              "CREATE TRIGGER runbook_boom BEFORE INSERT ON listing_metrics_daily FOR EACH ROW "
              "WHEN (NEW.tenant_id = '%s') EXECUTE FUNCTION runbook_boom()",
              F);
    const char *fargs[] = {"--tenant", F, "--from", "2024-01-01", "--to", "2024-01-31", NULL};
    char *out = NULL, *err = NULL;
    int rc = cli(fargs, NULL, &out, &err);
    tdb_exec(db.conn, "DROP TRIGGER runbook_boom ON listing_metrics_daily");
    tdb_exec(db.conn, "DROP FUNCTION runbook_boom()");
    free(out);
    free(err);
    assert_int_equal(rc, 1);
    struct result r3 = rebuild(T, "2024-02-01", "2024-02-05"); /* 5 new rows */

    PGresult *r = runbook_exec(RUNBOOK_JOB_LOGS, T);
    /* exactly the columns it names, in its order */
    static const char *const cols[] = {
        "id",          "job_type",          "status",        "started_at", "completed_at",
        "duration_ms", "records_processed", "error_message", "metadata"};
    assert_int_equal(PQnfields(r), 9);
    for (int i = 0; i < 9; i++)
        assert_string_equal(PQfname(r, i), cols[i]);
    /* other tests of this program may have run earlier; these 4 runs are the newest */
    int n = PQntuples(r);
    assert_true(n >= 4 && n <= 10);
    for (int i = 0; i < n; i++)
        assert_string_equal(val(r, i, "job_type"), "metrics_aggregation");
    assert_string_equal(val(r, 0, "id"), r3.job);
    assert_string_equal(val(r, 2, "id"), r2.job);
    assert_string_equal(val(r, 3, "id"), r1.job);
    /* newest first */
    for (int i = 1; i < n; i++) {
        const char *newer = val(r, i - 1, "started_at"), *older = val(r, i, "started_at");
        assert_non_null(newer);
        assert_non_null(older);
        char *ordered = tdb_value(db.conn, "SELECT ('%s'::timestamptz >= '%s'::timestamptz)::text",
                                  newer ? newer : "", older ? older : "");
        assert_string_equal(ordered, "true");
        free(ordered);
    }
    /* the successful runs: records_processed = rowsUpserted + rowsDeleted, duration */
    const struct result *ok[] = {&r3, &r2, &r1};
    const int ok_row[] = {0, 2, 3};
    const char *records[] = {"5", "0", "31"}; /* 5 x 1 new; nothing; 31 x 1 new */
    for (int i = 0; i < 3; i++) {
        int row = ok_row[i];
        assert_string_equal(val(r, row, "status"), "success");
        assert_non_null(val(r, row, "started_at"));
        assert_non_null(val(r, row, "completed_at"));
        assert_string_equal(val(r, row, "records_processed"), records[i]);
        assert_int_equal(strtoll(val(r, row, "duration_ms"), NULL, 10), ok[i]->duration);
        assert_null(val(r, row, "error_message"));
        json_t *meta = json_loads(val(r, row, "metadata"), 0, NULL);
        assert_non_null(meta);
        assert_string_equal(json_string_value(json_object_get(meta, "trigger")), "cli");
        json_t *req = json_object_get(meta, "request");
        assert_string_equal(json_string_value(json_object_get(req, "tenantId")), T);
        assert_string_equal(json_string_value(json_object_get(req, "from")), ok[i]->from);
        assert_string_equal(json_string_value(json_object_get(req, "to")), ok[i]->to);
        json_decref(meta);
    }
    /* the failed run */
    assert_string_equal(val(r, 1, "status"), "error");
    assert_non_null(val(r, 1, "completed_at"));
    assert_non_null(strstr(val(r, 1, "error_message"), "boom for the runbook test"));
    json_t *meta = json_loads(val(r, 1, "metadata"), 0, NULL);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(meta, "request"), "tenantId")), F);
    assert_string_equal(json_string_value(json_object_get(json_object_get(meta, "error"), "code")),
                        "internal_error");
    json_decref(meta);
    PQclear(r);
    /* and the failed run left F without rows */
    assert_int_equal(
        tdb_int(db.conn, "SELECT count(*) FROM listing_metrics_daily WHERE tenant_id = '%s'", F),
        0);
}

/* "Verificar MAX(date) por tenant": one row per tenant with its MAX(date) and row count. */
static void test_runbook_max_date_per_tenant(void **state)
{
    (void)state;
    const char *A = "00000000-0000-4000-8000-000000000201";
    const char *B = "00000000-0000-4000-8000-000000000202";
    fx_tenant(db.conn, A);
    fx_tenant(db.conn, B);
    char L[40];
    listing(A, "MLB1", "active", L);
    listing(A, "MLB2", "active", L);
    listing(B, "MLB1", "active", L);
    rebuild(A, "2024-01-01", "2024-01-31"); /* 2 listings x 31 days = 62 */
    rebuild(A, "2024-02-01", "2024-02-03"); /* + 2 x 3 = 6 -> 68, max Feb 3 */
    rebuild(B, "2024-01-01", "2024-01-10"); /* 1 x 10 = 10, max Jan 10 */
    PGresult *r = runbook_exec(RUNBOOK_MAX_DATE, A);
    assert_int_equal(PQnfields(r), 3);
    int seen = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *t = val(r, i, "tenant_id");
        if (strcmp(t, A) == 0) {
            assert_string_equal(val(r, i, "max_date"), "2024-02-03");
            assert_string_equal(val(r, i, "total_records"), "68");
            seen++;
        } else if (strcmp(t, B) == 0) {
            assert_string_equal(val(r, i, "max_date"), "2024-01-10");
            assert_string_equal(val(r, i, "total_records"), "10");
            seen++;
        }
    }
    assert_int_equal(seen, 2);
    /* one row per tenant that has rows */
    assert_int_equal(
        PQntuples(r),
        tdb_int(db.conn, "SELECT count(DISTINCT tenant_id) FROM listing_metrics_daily"));
    PQclear(r);
}

/* "Verificar se MAX(date) e hoje ou ontem", with the session's time zone pinned to São Paulo
 * (CURRENT_DATE is the session's date): only old data -> DESATUALIZADO; after a rebuild of a
 * window ending today -> OK with today's date. No rows at all -> DESATUALIZADO (MAX is NULL:
 * the runbook's query cannot tell "no data" apart). */
static void test_runbook_freshness(void **state)
{
    (void)state;
    const char *T = "00000000-0000-4000-8000-000000000301";
    const char *E = "00000000-0000-4000-8000-000000000302";
    fx_tenant(db.conn, T);
    fx_tenant(db.conn, E);
    char L[40];
    listing(T, "MLB1", "active", L);
    tdb_exec(db.conn, "SET TIME ZONE 'America/Sao_Paulo'");
    rebuild(T, "2024-01-01", "2024-01-31");
    PGresult *r = runbook_exec(RUNBOOK_FRESHNESS, T);
    assert_int_equal(PQntuples(r), 1);
    assert_string_equal(val(r, 0, "status"), "DESATUALIZADO");
    assert_string_equal(val(r, 0, "ultima_data"), "2024-01-31");
    PQclear(r);

    r = runbook_exec(RUNBOOK_FRESHNESS, E);
    assert_int_equal(PQntuples(r), 1);
    assert_string_equal(val(r, 0, "status"), "DESATUALIZADO");
    assert_null(val(r, 0, "ultima_data"));
    PQclear(r);

    /* the default window: yesterday and today in JOBS_TIMEZONE (America/Sao_Paulo) */
    const char *args[] = {"--tenant", T, NULL};
    char *before = tdb_value(db.conn, "SELECT CURRENT_DATE::text");
    struct result res = rebuild_args(args);
    char *after = tdb_value(db.conn, "SELECT CURRENT_DATE::text");
    /* today, as the run resolved it between the two reads (they differ only across midnight) */
    if (strcmp(res.to, before) != 0)
        assert_string_equal(res.to, after);
    char *yesterday = tdb_value(db.conn, "SELECT ('%s'::date - 1)::text", res.to);
    assert_string_equal(res.from, yesterday);
    assert_int_equal(res.days, 2);
    r = runbook_exec(RUNBOOK_FRESHNESS, T);
    assert_string_equal(val(r, 0, "status"), "OK");
    assert_string_equal(val(r, 0, "ultima_data"), res.to);
    PQclear(r);
    free(before);
    free(after);
    free(yesterday);
    tdb_exec(db.conn, "RESET TIME ZONE");
}

/* "Identificar o periodo afetado": rows per date and source, newest date first; the rebuild
 * writes source = 'internal_job' (the value the rollback DELETE filters on). */
static void test_runbook_source_breakdown(void **state)
{
    (void)state;
    const char *T = "00000000-0000-4000-8000-000000000401";
    fx_tenant(db.conn, T);
    char L[40];
    listing(T, "MLB1", "active", L);
    listing(T, "MLB2", "paused", L);
    listing(T, "MLB3", "active", L);
    rebuild(T, "2024-01-01", "2024-01-05");
    PGresult *r = runbook_exec(RUNBOOK_SOURCES, T);
    assert_int_equal(PQnfields(r), 3);
    /* 5 dates x 1 source; 3 listings each */
    assert_int_equal(PQntuples(r), 5);
    const char *dates[] = {"2024-01-05", "2024-01-04", "2024-01-03", "2024-01-02", "2024-01-01"};
    for (int i = 0; i < 5; i++) {
        assert_string_equal(val(r, i, "date"), dates[i]);
        assert_string_equal(val(r, i, "count"), "3");
        assert_string_equal(val(r, i, "source"), "internal_job");
    }
    PQclear(r);
}

/* "Deletar registros corrompidos": deletes exactly the tenant's January rows (not February's,
 * not another tenant's); "Executar rebuild manual" then restores every value. */
static void test_runbook_rollback_delete_and_rebuild(void **state)
{
    (void)state;
    const char *T = "00000000-0000-4000-8000-000000000501";
    const char *O = "00000000-0000-4000-8000-000000000502";
    fx_tenant(db.conn, T);
    fx_tenant(db.conn, O);
    char A[40], B[40], OA[40];
    listing(T, "MLB1", "active", A);
    listing(T, "MLB2", "active", B);
    listing(O, "MLB1", "active", OA);
    order1(T, "2024-01-31T23:30:00-03:00", A, 2, "15.50");
    fx_visits(db.conn, T, A, "2024-01-31", 8); /* 1 / 8 = 0.125 */
    fx_visits(db.conn, T, B, "2024-01-15", 0);
    rebuild(T, "2023-12-30", "2024-01-31"); /* 2 x 33 days */
    rebuild(T, "2024-02-01", "2024-02-02"); /* 2 x 2 */
    rebuild(O, "2024-01-01", "2024-01-31"); /* 1 x 31 */
    char *jan = snap_values(T, "AND date BETWEEN '2024-01-01' AND '2024-01-31'");
    char *outside = tdb_value(db.conn,
                              "SELECT string_agg(ROW(id, xmin::text, tenant_id, listing_id, date, "
                              " job_log_id)::text, ',' ORDER BY id) FROM listing_metrics_daily "
                              "WHERE tenant_id <> '%s' OR date NOT BETWEEN '2024-01-01' AND "
                              "'2024-01-31'",
                              T);
    PGresult *r = runbook_exec(RUNBOOK_ROLLBACK_DELETE, T);
    assert_string_equal(PQcmdTuples(r), "62"); /* 2 listings x 31 days */
    PQclear(r);
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM listing_metrics_daily WHERE tenant_id = '%s' "
                             "AND date BETWEEN '2024-01-01' AND '2024-01-31'",
                             T),
                     0);
    /* Dec 30..31 (2 x 2) + Feb 1..2 (2 x 2) of T and O's 31 rows: untouched */
    char *outside_after = tdb_value(
        db.conn,
        "SELECT string_agg(ROW(id, xmin::text, tenant_id, listing_id, date, job_log_id)::text, "
        "',' ORDER BY id) FROM listing_metrics_daily");
    assert_string_equal(outside, outside_after);
    free(outside_after);
    free(outside);
    /* the runbook's source breakdown now shows no January date */
    r = runbook_exec(RUNBOOK_SOURCES, T);
    assert_int_equal(PQntuples(r), 4); /* Feb 2, Feb 1, Dec 31, Dec 30 */
    assert_string_equal(val(r, 0, "date"), "2024-02-02");
    assert_string_equal(val(r, 2, "date"), "2023-12-31");
    PQclear(r);
    /* the manual rebuild of the runbook's window restores every value */
    struct result res = rebuild(T, "2024-01-01", "2024-01-31");
    assert_int_equal(res.upserted, 62);
    assert_int_equal(res.deleted, 0);
    char *jan_after = snap_values(T, "AND date BETWEEN '2024-01-01' AND '2024-01-31'");
    assert_string_equal(jan, jan_after);
    free(jan_after);
    free(jan);
    char *row = tdb_value(db.conn,
                          "SELECT concat_ws('|', visits, orders, units, gmv, conversion) FROM "
                          "listing_metrics_daily WHERE listing_id = '%s' AND date = '2024-01-31'",
                          A);
    assert_string_equal(row, "8|1|2|31.00|0.1250"); /* 2 x 15.50; 1 / 8 */
    free(row);
}

/* ------------------------------------------------------------------ main */

static int setup(void **state)
{
    (void)state;
    testdb_create(&db, "runbook");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    testdb_drop(&db);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runbook_job_logs_listing),
        cmocka_unit_test(test_runbook_max_date_per_tenant),
        cmocka_unit_test(test_runbook_freshness),
        cmocka_unit_test(test_runbook_source_breakdown),
        cmocka_unit_test(test_runbook_rollback_delete_and_rebuild),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
