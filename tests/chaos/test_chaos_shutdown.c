/* Chaos: SIGTERM during a long rebuild (SPEC 1.3 "Shutdown"). The rebuild is made long
 * deterministically, two ways: the tenant's advisory lock held by the test (the job waits in
 * pg_advisory_xact_lock, as a real rebuild queued behind another would), and a trigger that
 * sleeps 60 s inside the rebuild statement after its rows were written. Either way:
 *  - a waiting request gets its 202 at once;
 *  - the process exits 0 within SHUTDOWN_GRACE_SECONDS + 5 s;
 *  - the job is back in the queue, `attempts` as before the claim, the shutdown recorded in
 *    metadata.requeues, and the window untouched (the cancelled transaction rolled back);
 *  - another instance then completes it (success, its own worker id, the window complete).
 * And a second signal ends the process at once; the reaper of another instance recovers the
 * job it left `running`. */
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
#include "testhttp.h"
#include "testproc.h"
#include "testtime.h"

#define TENANT     "5d0c0000-0000-4000-8000-00000000000d"
#define LOCK_SQL   "SELECT pg_advisory_lock(hashtextextended('jobsd:metrics:" TENANT "', 0))"
#define UNLOCK_SQL "SELECT pg_advisory_unlock(hashtextextended('jobsd:metrics:" TENANT "', 0))"
#define GRACE_S    2
/* The exit bound of SPEC 1.3 (grace + 5 s); under valgrind its own exit work (the leak check)
 * gets 10 s more. */
#define EXIT_BOUND_MS ((GRACE_S + 5) * 1000LL + (t_scale() > 1 ? 10000 : 0))

static struct testdb db;
static PGconn *locker;

static int setup(void **state)
{
    (void)state;
    testdb_create(&db, "chaos_shutdown");
    chaos_seed(db.conn, TENANT, 10, "2024-01-01", "2024-03-31");
    chaos_prefill_stale(db.conn, TENANT, "2024-01-01", "2024-03-31");
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

struct waiter {
    unsigned port;
    const char *from, *to;
    struct th_response resp;
    bool ok;
};

static void *wait_for_job(void *arg)
{
    struct waiter *w = arg;
    w->ok = chaos_post_rebuild(w->port, TENANT, w->from, w->to, NULL, &w->resp);
    return NULL;
}

struct job_on {
    const char *id;
    const char *status;
    int pid; /* 0 = any worker */
};

static bool job_on(void *ctx)
{
    struct job_on *j = ctx;
    char *s = tdb_value(db.conn,
                        "SELECT status || ' ' || coalesce(worker_id, '-') FROM job_logs WHERE "
                        "id = '%s'",
                        j->id);
    bool ok = false;
    if (s) {
        size_t n = strlen(j->status);
        ok = strncmp(s, j->status, n) == 0 && s[n] == ' ' &&
             (j->pid == 0 || chaos_worker_pid(s + n + 1) == j->pid);
    }
    free(s);
    return ok;
}

static bool statement_sleeping(void *ctx)
{
    (void)ctx;
    return tdb_int(db.conn, "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                            "current_database() AND application_name = 'jobsd' AND "
                            "wait_event = 'PgSleep'") > 0;
}

static bool no_jobsd_sessions(void *ctx)
{
    (void)ctx;
    return tdb_int(db.conn, "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                            "current_database() AND application_name = 'jobsd'") == 0;
}

static bool job_id_known(void *ctx)
{
    const char *key = ctx;
    return tdb_int(db.conn, "SELECT count(*) FROM job_logs WHERE dedupe_key = '%s'", key) == 1;
}

/* One shutdown: a job made long by `how` ("lock" or "statement"), SIGTERM, then another
 * instance. */
static void sigterm_during_long_rebuild(const char *how, const char *from, const char *to)
{
    bool by_lock = strcmp(how, "lock") == 0;
    char *pre = chaos_window_digest(db.conn, TENANT, from, to);
    char *complete = chaos_expected_digest(db.conn, TENANT, from, to);
    assert_string_not_equal(pre, complete);
    if (by_lock)
        tdb_exec(locker, LOCK_SQL);
    else
        tdb_exec(db.conn,
                 "CREATE OR REPLACE FUNCTION chaos_60s() RETURNS trigger LANGUAGE plpgsql AS $$ "
                 "BEGIN PERFORM pg_sleep(60); RETURN NULL; END $$; "
                 "CREATE TRIGGER chaos_60s AFTER INSERT OR UPDATE ON listing_metrics_daily "
                 "FOR EACH STATEMENT EXECUTE FUNCTION chaos_60s()");

    char grace[40];
    snprintf(grace, sizeof grace, "SHUTDOWN_GRACE_SECONDS=%d", GRACE_S);
    const char *env[] = {grace, "JOB_WORKERS=1", NULL};
    struct jobsd_proc a;
    assert_true(jobsd_start(&a, db.url, env));

    /* A request that waits for the job (SYNC_WAIT_SECONDS is 100 s). */
    struct waiter w = {a.port, from, to, {0}, false};
    pthread_t t;
    pthread_create(&t, NULL, wait_for_job, &w);
    char key[160];
    snprintf(key, sizeof key, "metrics_aggregation:%s:%s:%s", TENANT, from, to);
    assert_true(t_wait_until(job_id_known, key, 10000));
    char *id = tdb_value(db.conn, "SELECT id FROM job_logs WHERE dedupe_key = '%s'", key);
    struct job_on running_a = {id, "running", (int)a.pid};
    assert_true(t_wait_until(job_on, &running_a, 10000));
    if (!by_lock)
        assert_true(t_wait_until(statement_sleeping, NULL, 10000));
    assert_int_equal(tdb_int(db.conn, "SELECT attempts FROM job_logs WHERE id = '%s'", id), 1);

    long long t0 = t_now_ms();
    jobsd_signal(&a, SIGTERM);
    int rc = jobsd_wait(&a, EXIT_BOUND_MS);
    long long took = t_now_ms() - t0;
    pthread_join(t, NULL);
    if (rc != 0)
        fail_msg("jobsd exited with %d %lld ms after SIGTERM (want 0 within %lld ms)", rc, took,
                 EXIT_BOUND_MS);
    assert_true(took <= EXIT_BOUND_MS);
    /* The waiter got its 202 (before the server stopped), naming the job. */
    assert_true(w.ok);
    assert_int_equal(w.resp.status, 202);
    assert_string_equal(json_string_value(json_object_get(w.resp.json, "jobLogId")), id);
    th_free(&w.resp);

    /* Back in the queue, the claim's increment undone, the shutdown on record. */
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM job_logs WHERE id = '%s' AND status = 'queued' "
                             "AND attempts = 0 AND worker_id IS NULL AND heartbeat_at IS NULL "
                             "AND metadata->'requeues'->-1->>'reason' = 'shutdown'",
                             id),
                     1);
    assert_true(jobsd_log_contains(&a, "job cancelled by shutdown: requeued"));
    /* Nothing of the cancelled transaction is left. */
    char *now = chaos_window_digest(db.conn, TENANT, from, to);
    assert_string_equal(now, pre);
    free(now);
    /* Its sessions are gone: nothing keeps running in the database after the exit. */
    assert_true(t_wait_until(no_jobsd_sessions, NULL, 5000));

    /* Another instance completes it. */
    if (by_lock)
        tdb_exec(locker, UNLOCK_SQL);
    else
        tdb_exec(db.conn, "DROP TRIGGER chaos_60s ON listing_metrics_daily");
    struct jobsd_proc b;
    assert_true(jobsd_start(&b, db.url, NULL));
    struct job_on done_b = {id, "success", (int)b.pid};
    assert_true(t_wait_until(job_on, &done_b, 30000));
    assert_int_equal(tdb_int(db.conn, "SELECT attempts FROM job_logs WHERE id = '%s'", id), 1);
    now = chaos_window_digest(db.conn, TENANT, from, to);
    assert_string_equal(now, complete);
    free(now);
    assert_int_equal(jobsd_stop(&b, 20000), 0);
    free(id);
    free(pre);
    free(complete);
}

static void test_sigterm_while_waiting_for_the_tenant_lock(void **state)
{
    (void)state;
    sigterm_during_long_rebuild("lock", "2024-01-01", "2024-01-31");
}

static void test_sigterm_inside_a_60s_statement(void **state)
{
    (void)state;
    sigterm_during_long_rebuild("statement", "2024-02-01", "2024-02-29");
}

static bool log_says_shutting_down(void *ctx)
{
    return jobsd_log_contains(ctx, "shutting down");
}

/* A second signal does not wait for the grace period; the job it leaves `running` is
 * recovered by another instance's reaper once its lease expires. */
static void test_second_signal_exits_at_once(void **state)
{
    (void)state;
    tdb_exec(locker, LOCK_SQL);
    const char *env[] = {"SHUTDOWN_GRACE_SECONDS=60", NULL};
    struct jobsd_proc a;
    assert_true(jobsd_start(&a, db.url, env));
    struct th_response r;
    assert_true(chaos_post_rebuild(a.port, TENANT, "2024-03-01", "2024-03-31",
                                   "Prefer: respond-async\r\n", &r));
    assert_int_equal(r.status, 202);
    char *id = strdup(json_string_value(json_object_get(r.json, "jobLogId")));
    th_free(&r);
    struct job_on running_a = {id, "running", (int)a.pid};
    assert_true(t_wait_until(job_on, &running_a, 10000));

    jobsd_signal(&a, SIGTERM);
    assert_true(t_wait_until(log_says_shutting_down, &a, 10000));
    long long t0 = t_now_ms();
    jobsd_signal(&a, SIGTERM);
    long long bound = 5000 + (t_scale() > 1 ? 10000 : 0);
    int rc = jobsd_wait(&a, bound);
    long long took = t_now_ms() - t0;
    if (rc < 0)
        fail_msg("jobsd still running %lld ms after a second SIGTERM (grace is 60 s)", bound);
    assert_true(rc > 0 && rc < 128); /* exited by itself, not killed by the signal */
    assert_true(took < bound);
    /* Left as it was: running under the dead instance's lease. */
    assert_true(job_on(&running_a));

    tdb_exec(locker, UNLOCK_SQL);
    struct jobsd_proc b;
    assert_true(jobsd_start(&b, db.url, NULL));
    struct job_on done_b = {id, "success", (int)b.pid};
    assert_true(t_wait_until(job_on, &done_b, 30000));
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM job_logs WHERE id = '%s' AND attempts = 2 AND "
                             "jsonb_array_length(metadata->'interruptions') = 1",
                             id),
                     1);
    assert_int_equal(jobsd_stop(&b, 20000), 0);
    free(id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigterm_while_waiting_for_the_tenant_lock),
        cmocka_unit_test(test_sigterm_inside_a_60s_statement),
        cmocka_unit_test(test_second_signal_exits_at_once),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
