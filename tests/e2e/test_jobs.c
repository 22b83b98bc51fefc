/* End-to-end tests of the job lifecycle with real jobsd processes: single flight across two
 * instances, waiting answered by the instance that did not run the job, Prefer and 202,
 * deadlines, failures propagated with their status, the reaper recovering a job whose
 * instance was killed, and a waiter answered 202 at shutdown.
 *
 * Jobs are held back deterministically by holding the tenant's rebuild advisory lock from
 * the test's own connection (the job waits on pg_advisory_xact_lock). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testdb.h"
#include "testfx.h"
#include "testhttp.h"
#include "testproc.h"
#include "testtime.h"

#define TENANT     "3c0ffee0-0000-4000-8000-00000000000a"
#define PATH       "/api/v1/jobs/rebuild-daily-metrics"
#define LOCK_SQL   "SELECT pg_advisory_lock(hashtextextended('jobsd:metrics:" TENANT "', 0))"
#define UNLOCK_SQL "SELECT pg_advisory_unlock(hashtextextended('jobsd:metrics:" TENANT "', 0))"

static struct testdb db;
static PGconn *locker;

static int setup(void **state)
{
    (void)state;
    testdb_create(&db, "jobs");
    fx_tenant(db.conn, TENANT);
    fx_listing(db.conn, TENANT, "MLB1", "active");
    fx_listing(db.conn, TENANT, "MLB2", "active");
    locker = PQconnectdb(db.url);
    assert_int_equal(PQstatus(locker), CONNECTION_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    PQfinish(locker);
    testdb_drop(&db);
    return 0;
}

static void hold_lock(void)
{
    tdb_exec(locker, LOCK_SQL);
}

static void release_lock(void)
{
    tdb_exec(locker, UNLOCK_SQL);
}

static char *body_for(const char *from, const char *to)
{
    char *b = malloc(256);
    snprintf(b, 256, "{\"tenantId\": \"%s\", \"from\": \"%s\", \"to\": \"%s\"}", TENANT, from, to);
    return b;
}

static const char *json_str(const struct th_response *r, const char *key)
{
    return json_string_value(json_object_get(r->json, key));
}

struct poll_job {
    const char *id;
    const char *status;
};

static bool job_has_status(void *ctx)
{
    struct poll_job *p = ctx;
    char *s = tdb_value(db.conn, "SELECT status FROM job_logs WHERE id = '%s'", p->id);
    bool ok = s && strcmp(s, p->status) == 0;
    free(s);
    return ok;
}

/* ---------------------------------------------------------------- single flight */

struct caller {
    unsigned port;
    const char *body;
    struct th_response resp;
    bool ok;
};

static void *call(void *arg)
{
    struct caller *c = arg;
    c->ok = th_post_job(c->port, PATH, TEST_KEY, c->body, NULL, &c->resp);
    return NULL;
}

struct log_count {
    struct jobsd_proc *a, *b;
    int want;
};

static int count_in_log(const struct jobsd_proc *p, const char *needle)
{
    FILE *f = fopen(p->log_path, "r");
    if (!f)
        return 0;
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

static bool all_requests_in(void *ctx)
{
    struct log_count *lc = ctx;
    int n = count_in_log(lc->a, "job triggered") + count_in_log(lc->b, "job triggered") +
            count_in_log(lc->a, "attached to a running job") +
            count_in_log(lc->b, "attached to a running job");
    return n >= lc->want;
}

static void test_single_flight_two_instances(void **state)
{
    (void)state;
    struct jobsd_proc a, b;
    assert_true(jobsd_start(&a, db.url, NULL));
    assert_true(jobsd_start(&b, db.url, NULL));
    hold_lock();
    enum { N = 20 };
    char *body = body_for("2024-01-01", "2024-01-31");
    struct caller callers[N];
    pthread_t threads[N];
    for (int i = 0; i < N; i++) {
        memset(&callers[i], 0, sizeof callers[i]);
        callers[i].port = i % 2 ? b.port : a.port;
        callers[i].body = body;
        pthread_create(&threads[i], NULL, call, &callers[i]);
    }
    /* Every request is attached to the one job before it may run. */
    struct log_count lc = {&a, &b, N};
    assert_true(t_wait_until(all_requests_in, &lc, 30000));
    assert_int_equal(tdb_int(db.conn, "SELECT count(*) FROM job_logs WHERE dedupe_key = "
                                      "'metrics_aggregation:" TENANT ":2024-01-01:2024-01-31'"),
                     1);
    release_lock();
    int fresh = 0;
    const char *id = NULL;
    for (int i = 0; i < N; i++) {
        pthread_join(threads[i], NULL);
        assert_true(callers[i].ok);
        if (callers[i].resp.status != 200)
            fail_msg("request %d: status %d body %s", i, callers[i].resp.status,
                     callers[i].resp.body);
        const char *jid = json_str(&callers[i].resp, "jobLogId");
        assert_non_null(jid);
        if (!id)
            id = jid;
        assert_string_equal(jid, id);
        json_t *dedup = json_object_get(callers[i].resp.json, "deduplicated");
        assert_true(json_is_boolean(dedup));
        fresh += json_is_false(dedup) ? 1 : 0;
        assert_int_equal(json_integer_value(json_object_get(callers[i].resp.json, "daysProcessed")),
                         31);
    }
    assert_int_equal(fresh, 1);
    /* One run: one row, one claim; both instances answered 200 for it, so the instance that
     * did not run it answered from job_logs. (The window is this test's alone.) */
    assert_int_equal(tdb_int(db.conn, "SELECT count(*) FROM job_logs WHERE dedupe_key = "
                                      "'metrics_aggregation:" TENANT ":2024-01-01:2024-01-31' "
                                      "AND status = 'success'"),
                     1);
    assert_int_equal(tdb_int(db.conn, "SELECT attempts FROM job_logs WHERE id = '%s'", id), 1);
    char *worker = tdb_value(db.conn, "SELECT worker_id FROM job_logs WHERE id = '%s'", id);
    char apid[16], bpid[16];
    snprintf(apid, sizeof apid, ":%d:", (int)a.pid);
    snprintf(bpid, sizeof bpid, ":%d:", (int)b.pid);
    assert_true(strstr(worker, apid) || strstr(worker, bpid));
    free(worker);
    for (int i = 0; i < N; i++)
        th_free(&callers[i].resp);
    free(body);
    assert_int_equal(jobsd_stop(&a, 20000), 0);
    assert_int_equal(jobsd_stop(&b, 20000), 0);
}

/* ---------------------------------------------------------------- Prefer and deadlines */

static void test_prefer_and_deadline(void **state)
{
    (void)state;
    const char *env[] = {"SYNC_WAIT_SECONDS=2", NULL};
    struct jobsd_proc p;
    assert_true(jobsd_start(&p, db.url, env));
    hold_lock();
    char *body = body_for("2024-02-01", "2024-02-29");
    struct th_response r;

    /* respond-async: 202 at once while the job cannot finish. */
    long long t0 = t_now_ms();
    assert_true(th_post_job(p.port, PATH, TEST_KEY, body, "Prefer: respond-async\r\n", &r));
    assert_true(t_now_ms() - t0 < 1500);
    assert_int_equal(r.status, 202);
    char *id = strdup(json_str(&r, "jobLogId"));
    char location[128];
    snprintf(location, sizeof location, "/api/v1/jobs/%s", id);
    char *loc = th_header(&r, "Location");
    assert_string_equal(loc, location);
    assert_string_equal(json_str(&r, "statusUrl"), location);
    assert_true(json_is_false(json_object_get(r.json, "deduplicated")));
    char *applied = th_header(&r, "Preference-Applied");
    assert_string_equal(applied, "respond-async");
    free(loc);
    free(applied);
    th_free(&r);

    /* wait=1 (with respond-async as a parameter): 202 after about a second, attached. */
    t0 = t_now_ms();
    assert_true(th_post_job(p.port, PATH, TEST_KEY, body, "Prefer: respond-async; wait=1\r\n", &r));
    long long took = t_now_ms() - t0;
    assert_true(took >= 900 && took < 2500);
    assert_int_equal(r.status, 202);
    assert_string_equal(json_str(&r, "jobLogId"), id);
    assert_true(json_is_true(json_object_get(r.json, "deduplicated")));
    assert_string_equal(json_str(&r, "status"), "running");
    applied = th_header(&r, "Preference-Applied");
    assert_non_null(strstr(applied, "wait=1"));
    free(applied);
    th_free(&r);

    /* No preference: SYNC_WAIT_SECONDS (2 s here) then 202. A larger wait is capped. */
    t0 = t_now_ms();
    assert_true(th_post_job(p.port, PATH, TEST_KEY, body, "Prefer: wait=60\r\n", &r));
    took = t_now_ms() - t0;
    assert_true(took >= 1900 && took < 4000);
    assert_int_equal(r.status, 202);
    th_free(&r);

    /* Once the job can run, a waiting request gets its 200. */
    struct caller c = {p.port, body, {0}, false};
    pthread_t t;
    pthread_create(&t, NULL, call, &c);
    struct poll_job pj = {id, "running"};
    assert_true(t_wait_until(job_has_status, &pj, 5000));
    release_lock();
    pthread_join(t, NULL);
    assert_true(c.ok);
    /* The caller may have been attached to the running job (200) or, if it finished first,
     * answered by a new identical run (200 too). */
    assert_int_equal(c.resp.status, 200);
    th_free(&c.resp);
    pj.status = "success";
    assert_true(t_wait_until(job_has_status, &pj, 10000));
    /* SPEC 6: "[INTERNAL-JOB] rebuild-daily-metrics finished jobLogId=… tenantId=…
     * rowsUpserted=… durationMs=… requestId=…" */
    char line[256];
    snprintf(line, sizeof line,
             "[INTERNAL-JOB] rebuild-daily-metrics finished jobLogId=%s tenantId=" TENANT, id);
    assert_true(jobsd_log_contains(&p, line));
    assert_true(jobsd_log_contains(&p, "rowsUpserted="));
    assert_true(jobsd_log_contains(&p, "listingsProcessed=2 durationMs="));
    assert_true(jobsd_log_contains(&p, "[INTERNAL-JOB] rebuild-daily-metrics started"));

    /* The job's page shows the result. */
    assert_true(th_request(p.port, "GET", location, "X-Internal-Key: " TEST_KEY "\r\n", NULL, &r));
    assert_int_equal(r.status, 200);
    assert_string_equal(json_str(&r, "status"), "success");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(r.json, "result"), "daysProcessed")),
        29);
    th_free(&r);
    free(id);
    free(body);
    assert_int_equal(jobsd_stop(&p, 20000), 0);
}

/* ---------------------------------------------------------------- failures */

static void test_failure_propagates(void **state)
{
    (void)state;
    const char *env[] = {"REBUILD_TIMEOUT_SECONDS=1", NULL};
    struct jobsd_proc p;
    assert_true(jobsd_start(&p, db.url, env));
    hold_lock();
    char *body = body_for("2024-03-01", "2024-03-31");
    struct th_response r;
    assert_true(th_post_job(p.port, PATH, TEST_KEY, body, NULL, &r));
    release_lock();
    /* Waiting for the tenant lock past REBUILD_TIMEOUT_SECONDS: transient, retry later. */
    assert_int_equal(r.status, 503);
    assert_string_equal(th_error_code(&r), "timeout");
    char *ra = th_header(&r, "Retry-After");
    assert_non_null(ra);
    free(ra);
    const char *id = json_str(&r, "jobLogId");
    assert_non_null(id);
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM job_logs WHERE id = '%s' AND status = 'error' "
                             "AND metadata->'error'->>'code' = 'timeout' AND "
                             "(metadata->'error'->>'httpStatus')::int = 503",
                             id),
                     1);
    assert_true(jobsd_log_contains(&p, "[INTERNAL-JOB] rebuild-daily-metrics failed"));
    /* SPEC 2.5: the failed job carries error {code, httpStatus, message} and no result. */
    char location[128];
    snprintf(location, sizeof location, "/api/v1/jobs/%s", id);
    struct th_response g;
    assert_true(th_request(p.port, "GET", location, "X-Internal-Key: " TEST_KEY "\r\n", NULL, &g));
    assert_int_equal(g.status, 200);
    assert_string_equal(json_str(&g, "status"), "error");
    json_t *err = json_object_get(g.json, "error");
    assert_true(json_is_object(err));
    assert_string_equal(json_string_value(json_object_get(err, "code")), "timeout");
    assert_int_equal(json_integer_value(json_object_get(err, "httpStatus")), 503);
    const char *msg = json_string_value(json_object_get(err, "message"));
    assert_non_null(msg);
    assert_true(msg[0] != '\0');
    assert_null(json_object_get(g.json, "result"));
    th_free(&g);
    th_free(&r);
    free(body);
    assert_int_equal(jobsd_stop(&p, 20000), 0);
}

/* ---------------------------------------------------------------- reaper */

static void test_reaper_recovers_killed_instance(void **state)
{
    (void)state;
    struct jobsd_proc a, b;
    assert_true(jobsd_start(&a, db.url, NULL));
    hold_lock();
    char *body = body_for("2024-04-01", "2024-04-30");
    struct th_response r;
    assert_true(th_post_job(a.port, PATH, TEST_KEY, body, "Prefer: respond-async\r\n", &r));
    assert_int_equal(r.status, 202);
    char *id = strdup(json_str(&r, "jobLogId"));
    th_free(&r);
    struct poll_job pj = {id, "running"};
    assert_true(t_wait_until(job_has_status, &pj, 10000));
    jobsd_kill9(&a);
    release_lock();
    /* The row is still `running` under the dead worker until its lease (3 s) expires. */
    assert_true(job_has_status(&pj));
    assert_true(jobsd_start(&b, db.url, NULL));
    pj.status = "success";
    assert_true(t_wait_until(job_has_status, &pj, 30000));
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM job_logs WHERE id = '%s' AND attempts = 2 AND "
                             "jsonb_array_length(metadata->'interruptions') = 1",
                             id),
                     1);
    assert_true(jobsd_log_contains(&b, "[INTERNAL-JOB] job interrupted: requeued"));
    free(id);
    free(body);
    assert_int_equal(jobsd_stop(&b, 20000), 0);
}

/* ---------------------------------------------------------------- shutdown with a waiter */

static void test_shutdown_answers_waiters(void **state)
{
    (void)state;
    struct jobsd_proc p;
    const char *env[] = {"SHUTDOWN_GRACE_SECONDS=1", NULL};
    assert_true(jobsd_start(&p, db.url, env));
    hold_lock();
    char *body = body_for("2024-05-01", "2024-05-31");
    struct caller c = {p.port, body, {0}, false};
    pthread_t t;
    pthread_create(&t, NULL, call, &c);
    struct log_count lc = {&p, &p, 2}; /* "job triggered" is counted for a and b */
    assert_true(t_wait_until(all_requests_in, &lc, 10000));
    char *id = tdb_value(db.conn, "SELECT id FROM job_logs WHERE dedupe_key = "
                                  "'metrics_aggregation:" TENANT ":2024-05-01:2024-05-31'");
    struct poll_job pj = {id, "running"};
    assert_true(t_wait_until(job_has_status, &pj, 10000));
    long long t0 = t_now_ms();
    int rc = jobsd_stop(&p, 20000);
    pthread_join(t, NULL);
    release_lock();
    assert_int_equal(rc, 0);
    assert_true(t_now_ms() - t0 < 8000);
    assert_true(c.ok);
    assert_int_equal(c.resp.status, 202);
    /* The job was cancelled and put back in the queue without counting the attempt. */
    pj.status = "queued";
    assert_true(job_has_status(&pj));
    assert_int_equal(tdb_int(db.conn, "SELECT attempts FROM job_logs WHERE id = '%s'", id), 0);
    tdb_execf(db.conn, "UPDATE job_logs SET status = 'error' WHERE id = '%s'", id);
    th_free(&c.resp);
    free(id);
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_flight_two_instances),
        cmocka_unit_test(test_prefer_and_deadline),
        cmocka_unit_test(test_failure_propagates),
        cmocka_unit_test(test_reaper_recovers_killed_instance),
        cmocka_unit_test(test_shutdown_answers_waiters),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
