/* E2E: an operator's cancel of Mercado Livre syncs (issue 21), against the fake API with
 * every visits request slowed to 1.5 s, one worker, FLEET_MAX_RUNNING=1.
 *
 *  - A running sync is stopped between its requests (it is waiting on Mercado Livre, not in a
 *    statement, so only the cooperative check can stop it): it ends `cancelled`, no result,
 *    starts no request after the cancel, is not marked synced (last_synced_at); its listings
 *    phase, done before, is whole. The
 *    requests parked on it and on a queued sync with `Prefer: wait` get their final answer,
 *    409 job_cancelled, not a 202 when their wait runs out.
 *  - A fleet parent cancelled takes its children with it: the running one stops, the queued
 *    ones never start, none succeeds; one waiting with only queued children (no slot free)
 *    ends `cancelled` too, not `error` for its cancelled children.
 *  - A job requeued after its cancel was asked never runs again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testdb.h"
#include "testfake.h"
#include "testgroup.h"
#include "testhttp.h"
#include "testproc.h"
#include "testsync.h"
#include "testtime.h"

#define NSELLERS 3
#define NITEMS   12

static struct testdb db;
static struct fake_ml fake;
static struct jobsd_proc proc;
static const char *world;
static struct tsync_seller sellers[NSELLERS] = {
    {"6a6a6a6a-0000-4000-8000-000000000001", 5600000001LL, "APP_USR-c1", "TG-c1", 21600, NULL},
    {"6a6a6a6a-0000-4000-8000-000000000002", 5600000002LL, "APP_USR-c2", "TG-c2", 21600, NULL},
    {"6a6a6a6a-0000-4000-8000-000000000003", 5600000003LL, "APP_USR-c3", "TG-c3", 21600, NULL},
};

static int setup(void **state)
{
    (void)state;
    testdb_create(&db, "opcancel");
    for (int i = 0; i < NSELLERS; i++)
        sellers[i].extra =
            json_pack("{s:{s:i, s:s, s:I}}", "generate_items", "count", NITEMS, "prefix", "MLB",
                      "start", (json_int_t)(8100000001LL + i * 1000));
    world = tsync_world(sellers, NSELLERS, "opcancel", NULL);
    if (!fake_ml_start(&fake, world, NULL))
        return -1;
    for (int i = 0; i < NSELLERS; i++)
        tsync_connect(db.conn, &sellers[i], sellers[i].access, sellers[i].refresh,
                      "now() + interval '6 hours'");
    const char *env[] = {"JOB_WORKERS=1", "JOB_LEASE_SECONDS=3", "FLEET_MAX_RUNNING=1", NULL};
    return tsync_start_jobsd(&proc, db.url, &fake, "50", "2", true, env) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    int rc = jobsd_stop(&proc, 30000);
    fake_ml_stop(&fake);
    unlink(world);
    for (int i = 0; i < NSELLERS; i++)
        json_decref(sellers[i].extra);
    testdb_drop(&db);
    return rc == 0 ? 0 : -1;
}

/* Every visits request takes 1.5 s: a sync spends its time waiting on Mercado Livre. */
static void slow_visits(void)
{
    json_decref(fake_ml_post(&fake, "/__fake/faults",
                             "[{\"endpoint\": \"visits\", \"latency_ms\": 1500}]"));
    json_decref(fake_ml_post(&fake, "/__fake/reset-stats", NULL));
}

static long long visits_requests(void)
{
    return fake_ml_stat(&fake, "requests.visits");
}

/* A sync request answered in another thread (Prefer: wait=60). */
struct parked {
    pthread_t th;
    char body[256];
    struct th_response r;
};

static void *park(void *arg)
{
    struct parked *p = arg;
    memset(&p->r, 0, sizeof p->r);
    if (!th_post_job(proc.port, TSYNC_PATH, TEST_KEY, p->body, "Prefer: wait=60\r\n", &p->r))
        p->r.status = -1;
    return NULL;
}

static void park_sync(struct parked *p, const char *tenant)
{
    snprintf(p->body, sizeof p->body,
             "{\"tenantId\": \"%s\", \"daysBack\": 3, \"include\": [\"listings\", \"visits\"]}",
             tenant);
    assert_int_equal(pthread_create(&p->th, NULL, park, p), 0);
}

static bool visits_started(void *ctx)
{
    (void)ctx;
    return visits_requests() >= 1;
}

static char *job_of(const char *tenant, const char *status)
{
    return tdb_value(db.conn,
                     "SELECT id::text FROM job_logs WHERE tenant_id = '%s' AND status = '%s' "
                     "ORDER BY created_at DESC LIMIT 1",
                     tenant, status);
}

static int cancel(const char *id, struct th_response *r)
{
    char path[128];
    snprintf(path, sizeof path, "/api/v1/jobs/%s/cancel", id);
    memset(r, 0, sizeof *r);
    assert_true(th_request(proc.port, "POST", path, "X-Internal-Key: " TEST_KEY "\r\n", NULL, r));
    return r->status;
}

static void expect_cancelled_answer(struct parked *p, const char *id)
{
    assert_int_equal(pthread_join(p->th, NULL), 0);
    if (p->r.status != 409 || strcmp(th_error_code(&p->r), "job_cancelled") != 0)
        fail_msg("the request parked on job %s got %d %s, expected 409 job_cancelled", id,
                 p->r.status, p->r.body ? p->r.body : "");
    th_free(&p->r);
}

static void test_cancel_running_sync(void **state)
{
    (void)state;
    slow_visits();
    struct parked a, b;
    park_sync(&a, sellers[0].tenant);
    tdb_wait(db.conn, 30000,
             "SELECT count(*) FROM job_logs WHERE "
             "tenant_id = '%s' AND status = 'running'",
             sellers[0].tenant);
    if (!t_wait_until(visits_started, NULL, 30000))
        fail_msg("the sync never reached its visits");
    char *running = job_of(sellers[0].tenant, "running");

    /* A second sync waits in the queue behind it (one worker), its caller parked on it. */
    park_sync(&b, sellers[1].tenant);
    tdb_wait(db.conn, 30000,
             "SELECT count(*) FROM job_logs WHERE "
             "tenant_id = '%s' AND status = 'queued'",
             sellers[1].tenant);
    char *queued = job_of(sellers[1].tenant, "queued");
    struct th_response r;
    assert_int_equal(cancel(queued, &r), 200);
    th_free(&r);
    expect_cancelled_answer(&b, queued);

    /* The running one: 202 cancelling, then cancelled; its parked caller gets 409. */
    assert_int_equal(cancel(running, &r), 202);
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "cancelling");
    th_free(&r);
    expect_cancelled_answer(&a, running);
    long long at_end = visits_requests();
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM job_logs WHERE id = '%s' AND status = "
                             "'cancelled' AND NOT metadata ? 'result' AND completed_at IS NOT "
                             "NULL AND worker_id IS NULL AND metadata ? 'cancelledAt'",
                             running),
                     1);
    /* It stopped early (12 listings: 12 visits requests when it runs to its end) and starts
     * nothing more. */
    if (at_end >= NITEMS)
        fail_msg("the cancelled sync made all its %lld visits requests", at_end);
    usleep(2000 * 1000);
    assert_int_equal(visits_requests(), at_end);
    /* Its timeline, as the console shows it: ... started, cancel_requested, cancelled. */
    char path[128];
    snprintf(path, sizeof path, "/api/v1/operator/jobs/%s", running);
    memset(&r, 0, sizeof r);
    assert_true(th_request(proc.port, "GET", path, "X-Internal-Key: " TEST_KEY "\r\n", NULL, &r));
    assert_int_equal(r.status, 200);
    json_t *tl = json_object_get(json_object_get(r.json, "job"), "timeline");
    size_t n = json_array_size(tl);
    assert_true(n >= 4);
    assert_string_equal(json_string_value(json_object_get(json_array_get(tl, n - 2), "event")),
                        "cancel_requested");
    assert_string_equal(json_string_value(json_object_get(json_array_get(tl, n - 1), "event")),
                        "cancelled");
    th_free(&r);
    /* Not marked synced. */
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM marketplace_connections WHERE tenant_id = "
                             "'%s' AND last_synced_at IS NULL",
                             sellers[0].tenant),
                     1);
    /* The phase it had finished is whole: every listing of the seller. */
    assert_int_equal(
        tdb_int(db.conn, "SELECT count(*) FROM listings WHERE tenant_id = '%s'", sellers[0].tenant),
        NITEMS);
    /* The queued one never started. */
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM job_logs WHERE id = '%s' AND status = "
                             "'cancelled' AND started_at IS NULL AND attempts = 0",
                             queued),
                     1);
    free(running);
    free(queued);
}

static void test_cancel_fleet_parent(void **state)
{
    (void)state;
    slow_visits();
    struct th_response r;
    assert_true(th_post_job(
        proc.port, TSYNC_PATH, TEST_KEY,
        "{\"allTenants\": true, \"daysBack\": 3, \"include\": [\"listings\", \"visits\"]}",
        "Prefer: respond-async\r\n", &r));
    assert_int_equal(r.status, 202);
    char *parent = strdup(json_string_value(json_object_get(r.json, "jobLogId")));
    th_free(&r);
    tdb_wait(db.conn, 30000,
             "SELECT count(*) FROM job_logs WHERE "
             "parent_id = '%s' AND status = 'running'",
             parent);
    if (!t_wait_until(visits_started, NULL, 30000))
        fail_msg("the first child never reached its visits");
    assert_int_equal(
        tdb_int(db.conn, "SELECT count(*) FROM job_logs WHERE parent_id = '%s'", parent), NSELLERS);

    assert_int_equal(cancel(parent, &r), 202);
    th_free(&r);
    tdb_wait(db.conn, 30000,
             "SELECT count(*) FROM job_logs WHERE "
             "id = '%s' AND status = 'cancelled'",
             parent);
    /* Every child ended cancelled (none succeeded); the two queued ones never started. */
    tdb_wait(db.conn, 30000,
             "SELECT count(*) FROM job_logs WHERE "
             "id = '%s' AND NOT EXISTS (SELECT 1 FROM job_logs k WHERE k.parent_id = "
             "job_logs.id AND k.status IN ('queued', 'running'))",
             parent);
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM job_logs WHERE parent_id = '%s' AND status = "
                             "'cancelled' AND metadata->>'cancelledBy' IS NOT NULL",
                             parent),
                     NSELLERS);
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM job_logs WHERE parent_id = '%s' AND "
                             "started_at IS NULL",
                             parent),
                     NSELLERS - 1);
    long long at_end = visits_requests();
    if (at_end >= NITEMS)
        fail_msg("the cancelled fleet made %lld visits requests", at_end);
    free(parent);
}

/* A fleet parent that waits with only queued children (the one FLEET_MAX_RUNNING slot is
 * held by another fleet's running child): the cancel ends its children at once, and the
 * parent, which sees none left before its own flag is raised, still ends `cancelled`, not
 * `error` with "3 of 3 tenants' jobs failed". */
static void test_cancel_waiting_fleet_parent(void **state)
{
    (void)state;
    slow_visits();
    tdb_exec(db.conn, "INSERT INTO job_logs (job_type, status, parent_id, worker_id, "
                      "heartbeat_at, started_at, attempts) VALUES ('mercadolivre_sync', "
                      "'running', gen_random_uuid(), 'ghost:1:w', now() + interval '1 hour', "
                      "now(), 1)");
    struct th_response r;
    assert_true(th_post_job(proc.port, TSYNC_PATH, TEST_KEY,
                            "{\"allTenants\": true, \"daysBack\": 3, \"include\": [\"listings\"]}",
                            "Prefer: respond-async\r\n", &r));
    assert_int_equal(r.status, 202);
    char *parent = strdup(json_string_value(json_object_get(r.json, "jobLogId")));
    th_free(&r);
    tdb_wait(db.conn, 30000,
             "SELECT count(*) FROM job_logs WHERE "
             "id = '%s' AND status = 'running' AND (SELECT count(*) FROM job_logs k WHERE "
             "k.parent_id = job_logs.id AND k.status = 'queued') = %d",
             parent, NSELLERS);
    t_sleep_ms(300); /* it is waiting: the slot is taken */
    assert_int_equal(cancel(parent, &r), 202);
    th_free(&r);
    tdb_wait(db.conn, 30000,
             "SELECT count(*) FROM job_logs WHERE "
             "id = '%s' AND status NOT IN ('queued', 'running')",
             parent);
    char *status = tdb_value(db.conn, "SELECT status FROM job_logs WHERE id = '%s'", parent);
    assert_string_equal(status, "cancelled");
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM job_logs WHERE parent_id = '%s' AND status = "
                             "'cancelled' AND started_at IS NULL",
                             parent),
                     NSELLERS);
    tdb_exec(db.conn, "DELETE FROM job_logs WHERE worker_id = 'ghost:1:w'");
    free(status);
    free(parent);
}

/* A job whose cancel was asked while it ran, then requeued (its instance stopped, say) before
 * it could be stopped: claimed again, it ends cancelled without running at all. */
static void test_requeued_after_cancel_never_runs(void **state)
{
    (void)state;
    slow_visits();
    char sql[1024];
    snprintf(sql, sizeof sql,
             "INSERT INTO job_logs (tenant_id, job_type, status, dedupe_key, attempts, metadata) "
             "VALUES ('%s', 'mercadolivre_sync', 'queued', 'mercadolivre_sync:%s', 1, "
             "jsonb_build_object('request', jsonb_build_object('tenantId', '%s', 'daysBack', 3, "
             "'include', jsonb_build_array('listings', 'visits')), 'cancelRequested', true, "
             "'cancelledBy', 'operator')) RETURNING id",
             sellers[2].tenant, sellers[2].tenant, sellers[2].tenant);
    char *id = tdb_value(db.conn, "%s", sql);
    tdb_wait(db.conn, 30000,
             "SELECT count(*) FROM job_logs WHERE "
             "id = '%s' AND status = 'cancelled'",
             id);
    assert_int_equal(fake_ml_stat(&fake, "requests_total"), 0);
    free(id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cancel_running_sync),
        cmocka_unit_test(test_cancel_fleet_parent),
        cmocka_unit_test(test_cancel_waiting_fleet_parent),
        cmocka_unit_test(test_requeued_after_cancel_never_runs),
    };
    return tgroup_run("operator_cancel", tests, setup, teardown);
}
