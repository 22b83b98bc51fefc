/* Chaos: three jobsd instances on one database (SPEC 1.3 "Queue", "Single flight",
 * "Waiting").
 *  - The same requests sent to the three instances at once: one job_logs row and one run per
 *    job identity, every caller answered 200 with that job's id and result; the callers of the
 *    two instances that did not run a job were answered from job_logs (exactly 2 of the 3 per
 *    identity).
 *  - Jobs queued on one instance only are run by the workers of all three.
 * Jobs are held back by the tenant's advisory lock, held by the test, until every request is
 * in: the workers claim jobs and wait on the lock, so which instance claims what is visible. */
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

#include "chaos.h"
#include "testdb.h"
#include "testgroup.h"
#include "testhttp.h"
#include "testproc.h"
#include "testtime.h"

#define TENANT     "3a3a3a3a-0000-4000-8000-00000000000c"
#define LOCK_SQL   "SELECT pg_advisory_lock(hashtextextended('jobsd:metrics:" TENANT "', 0))"
#define UNLOCK_SQL "SELECT pg_advisory_unlock(hashtextextended('jobsd:metrics:" TENANT "', 0))"
#define NINST      3
#define WORKERS    2

static struct testdb db;
static PGconn *locker;
static struct jobsd_proc inst[NINST];

static int setup(void **state)
{
    (void)state;
    testdb_create(&db, "chaos_instances");
    chaos_seed(db.conn, TENANT, 3, "2023-01-01", "2023-12-31");
    locker = PQconnectdb(db.url);
    assert_int_equal(PQstatus(locker), CONNECTION_OK);
    const char *env[] = {"JOB_WORKERS=2", NULL};
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

static int instance_of_pid(int pid)
{
    for (int i = 0; i < NINST; i++)
        if ((int)inst[i].pid == pid)
            return i;
    return -1;
}

/* ---------------------------------------------------------------- same requests */

struct caller {
    int instance;
    char from[11], to[11];
    char request_id[40];
    struct th_response resp;
    bool ok;
};

static void *call(void *arg)
{
    struct caller *c = arg;
    char headers[96];
    snprintf(headers, sizeof headers, "X-Request-Id: %s\r\n", c->request_id);
    c->ok = chaos_post_rebuild(inst[c->instance].port, TENANT, c->from, c->to, headers, &c->resp);
    return NULL;
}

struct in_count {
    int want;
};

/* Every request was accepted: triggered or attached, on some instance. */
static bool all_requests_in(void *ctx)
{
    struct in_count *n = ctx;
    int got = 0;
    for (int i = 0; i < NINST; i++)
        got += chaos_log_count(&inst[i], "[INTERNAL-JOB] job triggered", "requestId=same-") +
               chaos_log_count(&inst[i], "[INTERNAL-JOB] job request attached", "requestId=same-");
    return got >= n->want;
}

static bool running_is(void *ctx)
{
    long long want = *(long long *)ctx;
    return tdb_int(db.conn, "SELECT count(*) FROM job_logs WHERE status = 'running'") == want;
}

static void test_same_requests_on_three_instances(void **state)
{
    (void)state;
    enum { IDS = 10, N = IDS * NINST };
    tdb_exec(db.conn, "DELETE FROM job_logs"); /* the counts below are of this test's rows */
    tdb_exec(locker, LOCK_SQL);
    struct caller *callers = calloc(N, sizeof *callers);
    pthread_t threads[N];
    for (int i = 0; i < N; i++) {
        struct caller *c = &callers[i];
        int ident = i / NINST;
        c->instance = i % NINST;
        chaos_day(db.conn, "2023-01-01", ident * 30, c->from);
        chaos_day(db.conn, "2023-01-01", ident * 30 + 29, c->to);
        snprintf(c->request_id, sizeof c->request_id, "same-%d-%d", ident, c->instance);
    }
    /* Interleaved: each identity is asked of the three instances at about the same time. */
    for (int i = 0; i < N; i++)
        pthread_create(&threads[i], NULL, call, &callers[i]);
    struct in_count want = {N};
    assert_true(t_wait_until(all_requests_in, &want, 30000));

    /* One row per identity, whatever instance took each request. */
    assert_int_equal(tdb_int(db.conn, "SELECT count(*) FROM job_logs"), IDS);
    assert_int_equal(tdb_int(db.conn, "SELECT count(DISTINCT dedupe_key) FROM job_logs"), IDS);
    /* Every worker of every instance claimed one and waits for the lock. */
    long long busy = NINST * WORKERS;
    assert_true(t_wait_until(running_is, &busy, 10000));
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(DISTINCT split_part(worker_id, ':', 2)) FROM job_logs "
                             "WHERE status = 'running'"),
                     NINST);

    tdb_exec(locker, UNLOCK_SQL);
    int cross = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(threads[i], NULL);
        struct caller *c = &callers[i];
        assert_true(c->ok);
        if (c->resp.status != 200)
            fail_msg("%s: status %d body %s", c->request_id, c->resp.status, c->resp.body);
        const char *id = json_string_value(json_object_get(c->resp.json, "jobLogId"));
        assert_non_null(id);
        char *row = tdb_value(db.conn,
                              "SELECT status || ' ' || attempts || ' ' || worker_id || ' ' || "
                              "(metadata->'result'->>'daysProcessed') FROM job_logs WHERE id = "
                              "'%s' AND dedupe_key = 'metrics_aggregation:" TENANT ":%s:%s'",
                              id, c->from, c->to);
        if (!row)
            fail_msg("%s: job %s is not the job of %s..%s", c->request_id, id, c->from, c->to);
        char st[16], worker[128];
        int attempts = 0, days = 0;
        assert_int_equal(sscanf(row, "%15s %d %127s %d", st, &attempts, worker, &days), 4);
        assert_string_equal(st, "success");
        assert_int_equal(attempts, 1);
        assert_int_equal(days, 30);
        assert_int_equal(json_integer_value(json_object_get(c->resp.json, "daysProcessed")), 30);
        int ran_on = instance_of_pid(chaos_worker_pid(worker));
        assert_true(ran_on >= 0);
        if (ran_on != c->instance)
            cross++;
        free(row);
        th_free(&c->resp);
    }
    /* Each job ran on one instance and its three callers were on three instances. */
    assert_int_equal(cross, IDS * (NINST - 1));
    assert_int_equal(tdb_int(db.conn, "SELECT count(*) FROM job_logs WHERE status <> 'success'"),
                     0);
    free(callers);
}

/* ---------------------------------------------------------------- shared queue */

static bool all_final(void *ctx)
{
    (void)ctx;
    return tdb_int(db.conn,
                   "SELECT count(*) FROM job_logs WHERE status IN ('queued', 'running')") == 0;
}

static void test_queue_shared_between_instances(void **state)
{
    (void)state;
    enum { JOBS = 12 };
    tdb_exec(db.conn, "DELETE FROM job_logs");
    tdb_exec(locker, LOCK_SQL);
    /* Every job is queued on instance 0 (which wakes its own workers at once). */
    char ids[JOBS][40];
    for (int j = 0; j < JOBS; j++) {
        char from[11], to[11];
        chaos_day(db.conn, "2023-02-01", j * 20, from);
        chaos_day(db.conn, "2023-02-01", j * 20 + 9, to);
        struct th_response r;
        assert_true(
            chaos_post_rebuild(inst[0].port, TENANT, from, to, "Prefer: respond-async\r\n", &r));
        assert_int_equal(r.status, 202);
        assert_true(json_is_false(json_object_get(r.json, "deduplicated")));
        snprintf(ids[j], sizeof ids[j], "%s",
                 json_string_value(json_object_get(r.json, "jobLogId")));
        th_free(&r);
    }
    /* The other instances' workers find them by polling job_logs. */
    long long busy = NINST * WORKERS;
    assert_true(t_wait_until(running_is, &busy, 10000));
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(DISTINCT split_part(worker_id, ':', 2)) FROM job_logs "
                             "WHERE status = 'running'"),
                     NINST);
    assert_int_equal(tdb_int(db.conn, "SELECT count(*) FROM job_logs WHERE status = 'queued'"),
                     JOBS - busy);
    tdb_exec(locker, UNLOCK_SQL);
    assert_true(t_wait_until(all_final, NULL, 60000));
    int by[NINST] = {0};
    for (int j = 0; j < JOBS; j++) {
        char *w = tdb_value(db.conn,
                            "SELECT worker_id FROM job_logs WHERE id = '%s' AND status = "
                            "'success' AND attempts = 1",
                            ids[j]);
        if (!w)
            fail_msg("job %s did not succeed in one attempt", ids[j]);
        int i = instance_of_pid(chaos_worker_pid(w));
        assert_true(i >= 0);
        by[i]++;
        free(w);
    }
    print_message("jobs queued on instance 0 ran on instances 0/1/2: %d/%d/%d\n", by[0], by[1],
                  by[2]);
    assert_true(by[1] > 0 && by[2] > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_requests_on_three_instances),
        cmocka_unit_test(test_queue_shared_between_instances),
    };
    return tgroup_run("chaos_instances", tests, setup, teardown);
}
