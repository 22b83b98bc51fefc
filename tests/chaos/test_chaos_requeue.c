/* Chaos: every jobsd backend terminated (pg_terminate_backend) while NJOBS jobs run (issue 19
 * item 12). Each worker's job loses its connection and must put itself back in the queue at
 * once, on a connection that works: the pool's idle connections were terminated too (the
 * test makes sure there are some, with parallel requests before the kill). The reaper is out
 * of the picture (JOB_LEASE_SECONDS=60: it runs a minute later). Asserted: within 5 s of the
 * kill every job is requeued by its own worker (its metadata lists the requeue; no
 * interruption, which only the reaper records), then every job ends success. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chaos.h"
#include "testdb.h"
#include "testfx.h"
#include "testgroup.h"
#include "testhttp.h"
#include "testproc.h"
#include "testtime.h"

#define NJOBS 6

static struct testdb db;
static struct jobsd_proc proc;
static unsigned long long mark;
static char tenants[NJOBS][37];
static char ids[NJOBS][40];

static bool all_writing(void *ctx)
{
    (void)ctx;
    return tdb_int(db.conn, "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                            "current_database() AND application_name = 'jobsd' AND "
                            "wait_event = 'PgSleep'") >= NJOBS;
}

/* Jobs neither requeued by their worker nor finished. */
static long long not_requeued(void)
{
    return tdb_int(db.conn,
                   "SELECT count(*) FROM job_logs WHERE status NOT IN ('success', 'error') AND "
                   "coalesce(jsonb_array_length(metadata->'requeues'), 0) = 0");
}

static bool requeued(void *ctx)
{
    (void)ctx;
    return not_requeued() == 0;
}

static bool all_final(void *ctx)
{
    (void)ctx;
    return tdb_int(db.conn,
                   "SELECT count(*) FROM job_logs WHERE status IN ('queued', 'running')") == 0;
}

/* A few reads at once: the pool then holds several idle connections for the kill to reach. */
static void *reader(void *arg)
{
    (void)arg;
    for (int i = 0; i < 5; i++) {
        struct th_response r;
        char path[80];
        snprintf(path, sizeof path, "/api/v1/jobs/%s", ids[i % NJOBS]);
        if (th_request(proc.port, "GET", path, "X-Internal-Key: " TEST_KEY "\r\n", NULL, &r))
            th_free(&r);
    }
    return NULL;
}

static int setup(void **state)
{
    (void)state;
    mark = children_mark();
    testdb_create(&db, "chaos_requeue");
    for (int i = 0; i < NJOBS; i++) {
        /* One tenant per job: rebuilds of one tenant wait for each other. */
        snprintf(tenants[i], sizeof tenants[i], "7e7e7e7e-0000-4000-8000-0000000000%02d", i + 1);
        chaos_seed(db.conn, tenants[i], 20, "2024-01-01", "2024-03-01");
    }
    chaos_slow_writes(db.conn, "0.004");
    char workers[32];
    snprintf(workers, sizeof workers, "JOB_WORKERS=%d", NJOBS);
    const char *env[] = {workers, "HTTP_THREADS=4", "JOB_LEASE_SECONDS=60", NULL};
    return jobsd_start(&proc, db.url, env) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    bool ok = true;
    if (proc.pid > 0 && jobsd_stop(&proc, 30000) != 0)
        ok = false;
    children_kill_since(mark);
    testdb_drop(&db);
    return ok ? 0 : -1;
}

static void test_requeued_at_once_after_backends_terminated(void **state)
{
    (void)state;
    for (int i = 0; i < NJOBS; i++) {
        struct th_response r;
        assert_true(chaos_post_rebuild(proc.port, tenants[i], "2024-01-01", "2024-02-20",
                                       "Prefer: respond-async\r\n", &r));
        assert_int_equal(r.status, 202);
        snprintf(ids[i], sizeof ids[i], "%s",
                 json_string_value(json_object_get(r.json, "jobLogId")));
        th_free(&r);
    }
    if (!t_wait_until(all_writing, NULL, 20000))
        fail_msg("the %d jobs are not all writing 20 s after they were queued", NJOBS);
    pthread_t readers[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&readers[i], NULL, reader, NULL), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(readers[i], NULL);
    long long idle = tdb_int(db.conn, "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                                      "current_database() AND application_name = 'jobsd' AND "
                                      "state = 'idle'");
    long long killed =
        tdb_int(db.conn, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                         "WHERE datname = current_database() AND application_name = 'jobsd'");
    long long t0 = t_now_ms();
    assert_int_equal(not_requeued(), NJOBS); /* none requeued or finished yet */
    print_message("terminated %lld jobsd backends (%lld idle) while %d jobs ran\n", killed, idle,
                  NJOBS);
    assert_true(killed >= NJOBS);
    bool ok = t_wait_until(requeued, NULL, 5000);
    long long took = t_now_ms() - t0;
    long long left = not_requeued();
    print_message("%s: %lld job(s) not requeued %lld ms after the kill\n", ok ? "ok" : "FAILED",
                  left, took);
    if (!ok)
        fail_msg("%lld of %d jobs were not requeued by their workers within 5 s of the kill "
                 "(they wait for the reaper)",
                 left, NJOBS);
    assert_int_equal(tdb_int(db.conn, "SELECT count(*) FROM job_logs WHERE "
                                      "metadata ? 'interruptions'"),
                     0);
    if (!t_wait_until(all_final, NULL, 40000))
        fail_msg("jobs still queued or running 40 s after the kill");
    assert_int_equal(tdb_int(db.conn, "SELECT count(*) FROM job_logs WHERE status <> 'success'"),
                     0);
    assert_true(jobsd_running(&proc));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requeued_at_once_after_backends_terminated),
    };
    return tgroup_run("chaos_requeue", tests, setup, teardown);
}
