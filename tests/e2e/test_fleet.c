/* E2E: one trigger for every tenant (issue 20 item 1). Three jobsd instances on one database,
 * 50 active tenants (and one inactive, never run), one of them with broken data (a trigger
 * refuses its metrics rows). `{"allTenants": true}` rebuilds sent to instance A:
 *  - one parent, 50 children, each run once (one job_logs row per tenant, attempts 1), spread
 *    over the three instances' workers;
 *  - while it runs (the last tenant's rebuild is held by the test's advisory lock on it),
 *    GET /api/v1/jobs/{parent} shows its progress, and the same trigger sent again (to B)
 *    joins it (deduplicated, same id);
 *  - the broken tenant's child fails, only itself: the parent's result counts 50 tenants, 49
 *    succeeded, 1 failed, 0 skipped and names the failure;
 *  - FLEET_MAX_RUNNING=6 (every worker: the limit held exactly with fewer is
 *    tests/chaos/test_chaos_fleet.c): never more running at once (sampled).
 * Then the CLI: `rebuild-daily-metrics --all-tenants` runs the whole fleet in-process (no
 * server needed), prints a progress line and the counted result, exit 1 (a child failed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testdb.h"
#include "testfx.h"
#include "testgroup.h"
#include "testhttp.h"
#include "testproc.h"
#include "testtime.h"

#define NTENANTS 50
#define NINST    3
#define MAXRUN   6
#define REBUILD  "/api/v1/jobs/rebuild-daily-metrics"
#define BODY     "{\"allTenants\": true, \"from\": \"2024-03-01\", \"to\": \"2024-03-02\"}"
#define KEYH     "X-Internal-Key: " TEST_KEY "\r\n"

static struct testdb db;
static struct jobsd_proc inst[NINST];
static PGconn *locker;

static void tenant_id(int i, char out[37])
{
    snprintf(out, 37, "5f000000-0000-4000-8000-%012d", i + 1);
}

static int setup(void **state)
{
    (void)state;
    testdb_create(&db, "fleet");
    for (int i = 0; i < NTENANTS + 1; i++) {
        char t[37];
        tenant_id(i, t);
        fx_tenant(db.conn, t);
        tdb_execf(db.conn,
                  "INSERT INTO listings (tenant_id, external_id, status, title) "
                  "SELECT '%s', 'MLB' || g, 'active', 'l' || g FROM generate_series(1, 3) g",
                  t);
    }
    char t[37];
    tenant_id(NTENANTS, t); /* the 51st: inactive, not part of the fleet */
    tdb_execf(db.conn, "UPDATE tenants SET status = 'inactive' WHERE id = '%s'", t);
    tenant_id(6, t); /* the broken one */
    tdb_execf(db.conn,
              "CREATE FUNCTION fleet_broken() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
              "IF NEW.tenant_id = '%s' THEN RAISE EXCEPTION 'broken data'; END IF; "
              "PERFORM pg_sleep(0.01); RETURN NEW; END $$",
              t);
    tdb_exec(db.conn, "CREATE TRIGGER fleet_broken BEFORE INSERT OR UPDATE ON "
                      "listing_metrics_daily FOR EACH ROW EXECUTE FUNCTION fleet_broken()");
    locker = PQconnectdb(db.url);
    assert_int_equal(PQstatus(locker), CONNECTION_OK);
    const char *env[] = {"JOB_WORKERS=2", "FLEET_MAX_RUNNING=6", "PER_IP_CONNECTIONS=0", NULL};
    for (int i = 0; i < NINST; i++)
        if (!jobsd_start(&inst[i], db.url, env))
            return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int bad = 0;
    for (int i = 0; i < NINST; i++)
        bad += jobsd_stop(&inst[i], 20000) != 0;
    PQfinish(locker);
    testdb_drop(&db);
    return bad ? -1 : 0;
}

static bool parent_waits_for_last(void *ctx)
{
    const char *id = ctx;
    /* Every child but the held one has ended. */
    return tdb_int(db.conn,
                   "SELECT count(*) FROM job_logs WHERE parent_id = '%s' AND status IN "
                   "('success', 'error')",
                   id) == NTENANTS - 1;
}

static bool parent_final(void *ctx)
{
    return tdb_int(db.conn,
                   "SELECT count(*) FROM job_logs WHERE id = '%s' AND status IN ('success', "
                   "'error')",
                   (const char *)ctx) == 1;
}

static int instance_of(const char *worker)
{
    const char *p = strchr(worker, ':');
    int pid = p ? (int)strtol(p + 1, NULL, 10) : 0;
    for (int i = 0; i < NINST; i++)
        if ((int)inst[i].pid == pid)
            return i;
    return -1;
}

static json_t *get_job(unsigned port, const char *id)
{
    char path[80];
    snprintf(path, sizeof path, "/api/v1/jobs/%s", id);
    struct th_response r;
    assert_true(th_request(port, "GET", path, KEYH, NULL, &r));
    if (r.status != 200)
        fail_msg("GET %s: %d %s", path, r.status, r.body);
    json_t *j = json_incref(r.json);
    th_free(&r);
    return j;
}

static void check_running_progress(const char *id)
{
    json_t *job = get_job(inst[2].port, id);
    assert_string_equal(json_string_value(json_object_get(job, "status")), "running");
    json_t *p = json_object_get(job, "progress");
    if (!json_is_object(p))
        fail_msg("no progress in %s", json_dumps(job, 0));
    assert_int_equal(json_integer_value(json_object_get(p, "tenants")), NTENANTS);
    assert_int_equal(json_integer_value(json_object_get(p, "enqueued")), NTENANTS);
    assert_int_equal(json_integer_value(json_object_get(p, "done")), NTENANTS - 1);
    assert_int_equal(json_integer_value(json_object_get(p, "succeeded")), NTENANTS - 2);
    assert_int_equal(json_integer_value(json_object_get(p, "failed")), 1);
    assert_int_equal(json_integer_value(json_object_get(p, "running")), 1);
    json_decref(job);
}

static void check_result(json_t *res, const char *broken)
{
    assert_int_equal(json_integer_value(json_object_get(res, "tenants")), NTENANTS);
    assert_int_equal(json_integer_value(json_object_get(res, "succeeded")), NTENANTS - 1);
    assert_int_equal(json_integer_value(json_object_get(res, "failed")), 1);
    assert_int_equal(json_integer_value(json_object_get(res, "skipped")), 0);
    assert_true(json_is_false(json_object_get(res, "success")));
    json_t *f = json_object_get(res, "failures");
    assert_int_equal(json_array_size(f), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(f, 0), "tenantId")),
                        broken);
}

static void test_all_tenants_over_three_instances(void **state)
{
    (void)state;
    char last[37], broken[37];
    tenant_id(NTENANTS - 1, last);
    tenant_id(6, broken);
    tdb_execf(locker, "SELECT pg_advisory_lock(hashtextextended('jobsd:metrics:%s', 0))", last);
    struct th_response r;
    assert_true(
        th_post_job(inst[0].port, REBUILD, TEST_KEY, BODY, "Prefer: respond-async\r\n", &r));
    if (r.status != 202)
        fail_msg("first trigger: %d %s", r.status, r.body);
    char id[40];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(r.json, "jobLogId")));
    assert_true(json_is_false(json_object_get(r.json, "deduplicated")));
    th_free(&r);
    struct tdb_sampler s;
    tdb_sampler_start(&s, db.url, 5);

    assert_true(t_wait_until(parent_waits_for_last, id, 60000));
    check_running_progress(id);
    /* The same trigger again (an EventBridge retry), to another instance: it joins. */
    assert_true(
        th_post_job(inst[1].port, REBUILD, TEST_KEY, BODY, "Prefer: respond-async\r\n", &r));
    assert_int_equal(r.status, 202);
    assert_true(json_is_true(json_object_get(r.json, "deduplicated")));
    assert_string_equal(json_string_value(json_object_get(r.json, "jobLogId")), id);
    th_free(&r);

    tdb_execf(locker, "SELECT pg_advisory_unlock(hashtextextended('jobsd:metrics:%s', 0))", last);
    assert_true(t_wait_until(parent_final, id, 60000));
    tdb_sampler_stop(&s);

    /* One parent, one child per active tenant, each run once. */
    assert_int_equal(tdb_int(db.conn, "SELECT count(*) FROM job_logs WHERE tenant_id IS NULL"), 1);
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM job_logs WHERE parent_id = '%s' AND attempts "
                             "= 1",
                             id),
                     NTENANTS);
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(DISTINCT tenant_id) FROM job_logs WHERE parent_id = "
                             "'%s'",
                             id),
                     NTENANTS);
    assert_int_equal(tdb_int(db.conn, "SELECT count(*) FROM job_logs WHERE status = 'error'"), 2);
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM job_logs WHERE status = 'error' AND tenant_id "
                             "= '%s'",
                             broken),
                     1);
    /* Spread over the three instances. */
    int by[NINST] = {0};
    PGresult *w = PQexecParams(db.conn, "SELECT worker_id FROM job_logs WHERE parent_id = $1", 1,
                               NULL, (const char *const[]){id}, NULL, NULL, 0);
    for (int i = 0; i < PQntuples(w); i++) {
        int k = instance_of(PQgetvalue(w, i, 0));
        assert_true(k >= 0);
        by[k]++;
    }
    PQclear(w);
    print_message("children per instance: %d/%d/%d; at most %lld running at once\n", by[0], by[1],
                  by[2], s.max);
    assert_true(by[0] > 0 && by[1] > 0 && by[2] > 0);
    assert_true(s.max <= MAXRUN && s.max >= 3);

    /* The parent's answer counts them and names the failure (GET, any instance). */
    json_t *job = get_job(inst[1].port, id);
    assert_string_equal(json_string_value(json_object_get(job, "status")), "error");
    check_result(json_object_get(job, "result"), broken);
    assert_null(json_object_get(job, "progress")); /* finished: the result counts them */
    json_decref(job);
}

/* ---------------------------------------------------------------- the CLI */

static void test_cli_all_tenants(void **state)
{
    (void)state;
    char url[700];
    snprintf(url, sizeof url, "DATABASE_URL=%s", db.url);
    const char *env[] = {url, "FLEET_MAX_RUNNING=2", NULL};
    const char *argv[] = {"rebuild-daily-metrics",
                          "--all-tenants",
                          "--from",
                          "2024-03-03",
                          "--to",
                          "2024-03-03",
                          NULL};
    char *out = NULL, *err = NULL;
    int rc = jobsd_run(argv, env, &out, &err);
    if (rc != 1)
        fail_msg("exit %d; stdout %s; stderr %s", rc, out, err);
    assert_non_null(strstr(err, "fleet: 50/50 tenants done (49 succeeded, 1 failed, 0 skipped)"));
    json_t *res = json_loads(out, 0, NULL);
    assert_non_null(res);
    char broken[37];
    tenant_id(6, broken);
    check_result(res, broken);
    json_decref(res);
    free(out);
    free(err);
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM job_logs WHERE metadata->'request'->>'from' = "
                             "'2024-03-03' AND tenant_id IS NOT NULL"),
                     NTENANTS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_tenants_over_three_instances),
        cmocka_unit_test(test_cli_all_tenants),
    };
    return tgroup_run("fleet", tests, setup, teardown);
}
