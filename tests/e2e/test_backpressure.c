/* End-to-end tests of issue 19 item 8 against real jobsd processes: a queue limit
 * (QUEUE_MAX_QUEUED: past it a new job is 503 queue_full with Retry-After, while a request
 * identical to a queued job still attaches to it) and retention of finished jobs
 * (JOB_RETENTION_DAYS at start-up of `serve`, and `jobsd prune [--older-than DAYS]
 * [--dry-run]` in batches of 1000 with progress), which never deletes queued or running jobs.
 *
 * Rows of the job type "test_blocker" stand for queued jobs no instance takes (no kind runs
 * that type), so the queue holds still while the test looks at it. */
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
#include "testhttp.h"
#include "testproc.h"
#include "testtime.h"

#define TENANT "3c0ffee0-0000-4000-8000-0000000000b8"
#define PATH   "/api/v1/jobs/rebuild-daily-metrics"
#define ASYNC  "Prefer: respond-async\r\n"

static struct testdb db;
static char dburl[600];

static int setup(void **state)
{
    (void)state;
    testdb_create(&db, "backpressure");
    snprintf(dburl, sizeof dburl, "DATABASE_URL=%s", db.url);
    fx_tenant(db.conn, TENANT);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    testdb_drop(&db);
    return 0;
}

static int post(const struct jobsd_proc *p, const char *from, const char *to, const char *headers,
                struct th_response *r)
{
    char body[256];
    snprintf(body, sizeof body, "{\"tenantId\": \"%s\", \"from\": \"%s\", \"to\": \"%s\"}", TENANT,
             from, to);
    assert_true(th_post_job(p->port, PATH, TEST_KEY, body, headers, r));
    return r->status;
}

static void test_queue_limit(void **state)
{
    (void)state;
    struct jobsd_proc p;
    const char *env[] = {"QUEUE_MAX_QUEUED=3", NULL};
    assert_true(jobsd_start(&p, db.url, env));
    struct th_response r;
    /* A job runs and ends: its identity, for a queued twin below. */
    assert_int_equal(post(&p, "2024-01-01", "2024-01-02", NULL, &r), 200);
    char *key = tdb_value(db.conn, "SELECT dedupe_key FROM job_logs WHERE id = '%s'",
                          json_string_value(json_object_get(r.json, "jobLogId")));
    th_free(&r);
    /* Three jobs queued (the limit), one of them identical to that request. */
    tdb_exec(db.conn, "INSERT INTO job_logs (tenant_id, job_type, status) SELECT '" TENANT
                      "', 'test_blocker', 'queued' FROM generate_series(1, 2)");
    char *twin = tdb_value(db.conn,
                           "INSERT INTO job_logs (tenant_id, job_type, status, dedupe_key) VALUES "
                           "('" TENANT "', 'test_blocker', 'queued', '%s') RETURNING id",
                           key);
    long long rows = tdb_int(db.conn, "SELECT count(*) FROM job_logs");
    /* The identical request attaches to the queued job, as always. */
    assert_int_equal(post(&p, "2024-01-01", "2024-01-02", ASYNC, &r), 202);
    assert_true(json_is_true(json_object_get(r.json, "deduplicated")));
    assert_string_equal(json_string_value(json_object_get(r.json, "jobLogId")), twin);
    th_free(&r);
    /* A new job is refused: 503 queue_full, Retry-After, nothing inserted. */
    if (post(&p, "2024-02-01", "2024-02-02", ASYNC, &r) != 503 ||
        strcmp(th_error_code(&r), "queue_full") != 0)
        fail_msg("want 503 queue_full past QUEUE_MAX_QUEUED=3, got %d: %s", r.status, r.body);
    char *ra = th_header(&r, "Retry-After");
    assert_non_null(ra);
    assert_string_equal(ra, "30");
    free(ra);
    assert_non_null(json_object_get(r.json, "requestId"));
    assert_null(json_object_get(r.json, "jobLogId"));
    th_free(&r);
    assert_int_equal(tdb_int(db.conn, "SELECT count(*) FROM job_logs"), rows);
    assert_true(jobsd_log_contains(&p, "queue_full"));
    /* Room again: accepted. */
    tdb_exec(db.conn,
             "DELETE FROM job_logs WHERE job_type = 'test_blocker' AND dedupe_key IS NULL");
    int st = post(&p, "2024-02-01", "2024-02-02", ASYNC, &r);
    if (st != 202 && st != 200)
        fail_msg("with room in the queue: got %d: %s", st, r.body);
    th_free(&r);
    tdb_exec(db.conn, "DELETE FROM job_logs WHERE job_type = 'test_blocker'");
    free(key);
    free(twin);
    assert_int_equal(jobsd_stop(&p, 20000), 0);
}

/* Jobs that finished 100 days ago (n success + 10 error), 5 that finished 10 days ago, and
 * old queued and running rows that must survive. */
static void seed_old(int n)
{
    tdb_exec(db.conn, "DELETE FROM job_logs");
    tdb_execf(db.conn,
              "INSERT INTO job_logs (tenant_id, job_type, status, created_at, completed_at) "
              "SELECT '" TENANT "', 'metrics_aggregation', CASE WHEN g <= 10 THEN 'error' ELSE "
              "'success' END, now() - interval '100 days', now() - interval '100 days' "
              "FROM generate_series(1, %d) g",
              n + 10);
    tdb_exec(db.conn, "INSERT INTO job_logs (tenant_id, job_type, status, created_at, "
                      "completed_at) SELECT '" TENANT "', 'metrics_aggregation', 'success', "
                      "now() - interval '10 days', now() - interval '10 days' FROM "
                      "generate_series(1, 5)");
    tdb_exec(db.conn, "INSERT INTO job_logs (tenant_id, job_type, status, created_at, worker_id, "
                      "heartbeat_at) VALUES "
                      "('" TENANT "', 'test_blocker', 'queued', now() - interval '200 days', NULL, "
                      "NULL), "
                      "('" TENANT "', 'test_blocker', 'running', now() - interval '200 days', "
                      "'elsewhere', now())");
}

static long long remaining(const char *where)
{
    return tdb_int(db.conn, "SELECT count(*) FROM job_logs WHERE %s", where);
}

static void test_prune_cli(void **state)
{
    (void)state;
    seed_old(2490);
    char *out, *err;
    const char *env[] = {dburl, NULL};
    const char *dry[] = {"prune", "--older-than", "90", "--dry-run", NULL};
    assert_int_equal(jobsd_run(dry, env, &out, &err), 0);
    if (!strstr(out, "2500 job(s) finished more than 90 day(s) ago would be deleted"))
        fail_msg("dry run said: %s%s", out, err);
    free(out);
    free(err);
    assert_int_equal(remaining("true"), 2507);
    const char *argv[] = {"prune", "--older-than", "90", NULL};
    assert_int_equal(jobsd_run(argv, env, &out, &err), 0);
    /* One line per batch of 1000, then the total. */
    if (!strstr(out, "deleted 1000 (1000 so far)\ndeleted 1000 (2000 so far)\n"
                     "deleted 500 (2500 so far)\n"
                     "2500 job(s) finished more than 90 day(s) ago deleted"))
        fail_msg("prune said: %s%s", out, err);
    free(out);
    free(err);
    assert_int_equal(remaining("status IN ('success', 'error')"), 5);
    assert_int_equal(remaining("status = 'queued'"), 1);
    assert_int_equal(remaining("status = 'running'"), 1);
    /* Nothing left that old: 0, exit 0. The default age is JOB_RETENTION_DAYS. */
    const char *env5[] = {dburl, "JOB_RETENTION_DAYS=5", NULL};
    const char *plain[] = {"prune", NULL};
    assert_int_equal(jobsd_run(plain, env5, &out, &err), 0);
    assert_non_null(strstr(out, "5 job(s) finished more than 5 day(s) ago deleted"));
    free(out);
    free(err);
    assert_int_equal(remaining("true"), 2);
    /* Usage errors: exit 2. */
    const char *env0[] = {dburl, "JOB_RETENTION_DAYS=0", NULL};
    assert_int_equal(jobsd_run(plain, env0, &out, &err), 2);
    assert_non_null(strstr(err, "JOB_RETENTION_DAYS is 0"));
    free(out);
    free(err);
    const char *zero[] = {"prune", "--older-than", "0", NULL};
    assert_int_equal(jobsd_run(zero, env, &out, &err), 2);
    free(out);
    free(err);
    const char *bad[] = {"prune", "--older", NULL};
    assert_int_equal(jobsd_run(bad, env, &out, &err), 2);
    free(out);
    free(err);
}

static bool pruned(void *ctx)
{
    (void)ctx;
    return remaining("completed_at < now() - interval '50 days' AND status IN ('success', "
                     "'error')") == 0;
}

static void test_serve_prunes(void **state)
{
    (void)state;
    seed_old(20);
    struct jobsd_proc p;
    const char *env[] = {"JOB_RETENTION_DAYS=30", NULL};
    assert_true(jobsd_start(&p, db.url, env));
    if (!t_wait_until(pruned, NULL, 10000))
        fail_msg("serve with JOB_RETENTION_DAYS=30 left %lld old finished jobs",
                 remaining("completed_at < now() - interval '50 days' AND status IN ('success', "
                           "'error')"));
    assert_int_equal(remaining("status IN ('success', 'error')"), 5);
    assert_int_equal(remaining("status IN ('queued', 'running')"), 2);
    assert_int_equal(jobsd_stop(&p, 20000), 0);
    assert_true(jobsd_log_contains(&p, "retention: finished jobs deleted"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_limit),
        cmocka_unit_test(test_prune_cli),
        cmocka_unit_test(test_serve_prunes),
    };
    return cmocka_run_group_tests_name("backpressure", tests, setup, teardown);
}
